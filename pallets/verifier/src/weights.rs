//! Weights for `pallet_agora_verifier`.
//!
//! PROVISIONAL: hand-estimated from the storage each call touches plus a compute allowance,
//! until the v2 benchmarks in `benchmarking.rs` are run on reference hardware and this file is
//! regenerated from their output.

use core::marker::PhantomData;
use polkadot_sdk::frame_support::{traits::Get, weights::{constants::RocksDbWeight, RuntimeDbWeight, Weight}};

pub trait WeightInfo {
    fn commit() -> Weight;
    fn reveal() -> Weight;
    /// `k`: providers assigned to the request (each is paid or slashed).
    fn settle(k: u32) -> Weight;
}

fn estimate(db: RuntimeDbWeight, ref_time: u64, proof: u64, reads: u64, writes: u64) -> Weight {
    Weight::from_parts(ref_time, proof).saturating_add(db.reads(reads)).saturating_add(db.writes(writes))
}

macro_rules! verifier_weights {
    ($db:expr) => {
        /// Reads: Requests, Commitments. Writes: Commitments.
        fn commit() -> Weight { estimate($db, 35_000_000, 6_000, 2, 1) }
        /// Reads: Requests, Commitments × 9, Reveals. Writes: Reveals.
        fn reveal() -> Weight { estimate($db, 60_000_000, 12_000, 11, 1) }
        /// Per provider — reads: Reveals, Providers, Holds, Account × 2; writes: Providers,
        /// Holds, Account × 2. Fixed — reads: Requests, Holds, Account; writes: Requests,
        /// Holds, Account, Receipts, the two prefix clears.
        fn settle(k: u32) -> Weight {
            estimate($db, 90_000_000, 15_000, 3, 6)
                .saturating_add(estimate($db, 70_000_000, 8_000, 5, 4).saturating_mul(k.into()))
        }
    };
}

pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
    verifier_weights!(T::DbWeight::get());
}

impl WeightInfo for () {
    verifier_weights!(RocksDbWeight::get());
}
