//! Weights for `pallet_agora_escrow`.
//!
//! PROVISIONAL: hand-estimated from the storage each call touches plus a compute allowance,
//! until the v2 benchmarks in `benchmarking.rs` are run on reference hardware and this file is
//! regenerated from their output.

use core::marker::PhantomData;
use polkadot_sdk::frame_support::{traits::Get, weights::{constants::RocksDbWeight, RuntimeDbWeight, Weight}};

pub trait WeightInfo {
    /// `p`: providers indexed for the release (each is read to count the eligible ones).
    fn create_request(p: u32) -> Weight;
    fn cancel_request() -> Weight;
    fn refund_expired() -> Weight;
    /// One request's draw in `on_initialize`; `p` as above.
    fn draw(p: u32) -> Weight;
}

fn estimate(db: RuntimeDbWeight, ref_time: u64, proof: u64, reads: u64, writes: u64) -> Weight {
    Weight::from_parts(ref_time, proof).saturating_add(db.reads(reads)).saturating_add(db.writes(writes))
}

macro_rules! escrow_weights {
    ($db:expr) => {
        /// Reads: Releases, ServersOf, Providers × p, NextRequestId, AwaitingDraw, Holds, Account. Writes: AwaitingDraw, Holds, Account, NextRequestId, Requests.
        fn create_request(p: u32) -> Weight {
            estimate($db, 90_000_000, 12_000, 6, 5)
                .saturating_add(estimate($db, 8_000_000, 3_000, 1, 0).saturating_mul(p.into()))
        }
        /// Reads: Requests, AwaitingDraw, Holds, Account. Writes: the same.
        fn cancel_request() -> Weight { estimate($db, 60_000_000, 8_000, 4, 4) }
        /// Reads: Requests, Holds, Account, Providers × 8. Writes: Requests, Holds, Account,
        /// Providers × 8, and `OnClose` removing up to 8 commitments and 8 reveals.
        fn refund_expired() -> Weight { estimate($db, 110_000_000, 30_000, 27, 27) }
        /// Reads: Requests, ServersOf, Providers × p, randomness, Providers × 8. Writes: Requests, Providers × 8.
        fn draw(p: u32) -> Weight {
            estimate($db, 80_000_000, 30_000, 11, 9)
                .saturating_add(estimate($db, 8_000_000, 3_000, 1, 0).saturating_mul(p.into()))
        }
    };
}

pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
    escrow_weights!(T::DbWeight::get());
}

impl WeightInfo for () {
    escrow_weights!(RocksDbWeight::get());
}
