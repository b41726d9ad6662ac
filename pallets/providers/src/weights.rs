//! Weights for `pallet_agora_providers`.
//!
//! PROVISIONAL: hand-estimated from the storage each call touches plus a compute allowance,
//! until the v2 benchmarks in `benchmarking.rs` are run on reference hardware and this file is
//! regenerated from their output.

use core::marker::PhantomData;
use polkadot_sdk::frame_support::{traits::Get, weights::{constants::RocksDbWeight, RuntimeDbWeight, Weight}};

pub trait WeightInfo {
    fn register() -> Weight;
    fn update_manifest() -> Weight;
    fn add_stake() -> Weight;
    fn set_online() -> Weight;
    fn unbond() -> Weight;
    fn withdraw() -> Weight;
}

fn estimate(db: RuntimeDbWeight, ref_time: u64, proof: u64, reads: u64, writes: u64) -> Weight {
    Weight::from_parts(ref_time, proof).saturating_add(db.reads(reads)).saturating_add(db.writes(writes))
}

macro_rules! provider_weights {
    ($db:expr) => {
        /// Reads: Providers, Releases × 16, ServersOf × 16, Holds, Account. Writes: ServersOf × 16, Holds, Account, Providers.
        fn register() -> Weight { estimate($db, 120_000_000, 60_000, 35, 19) }
        /// Reads: Providers, Releases × 16, ServersOf × 32. Writes: ServersOf × 32, Providers.
        fn update_manifest() -> Weight { estimate($db, 150_000_000, 90_000, 49, 33) }
        fn add_stake() -> Weight { estimate($db, 50_000_000, 6_000, 3, 3) }
        fn set_online() -> Weight { estimate($db, 20_000_000, 3_000, 1, 1) }
        fn unbond() -> Weight { estimate($db, 20_000_000, 3_000, 1, 1) }
        /// Reads: Providers, ServersOf × 16, Holds, Account. Writes: ServersOf × 16, Holds, Account, Providers.
        fn withdraw() -> Weight { estimate($db, 90_000_000, 50_000, 19, 19) }
    };
}

pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
    provider_weights!(T::DbWeight::get());
}

impl WeightInfo for () {
    provider_weights!(RocksDbWeight::get());
}
