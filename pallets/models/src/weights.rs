//! Weights for `pallet_agora_models`.
//!
//! PROVISIONAL: hand-estimated from the storage each call touches (reads/writes below) plus a
//! compute allowance, until the v2 benchmarks in `benchmarking.rs` are run on reference hardware
//! and this file is regenerated from their output.
#![allow(unused_parens, unused_imports)]

use core::marker::PhantomData;
use polkadot_sdk::frame_support::{traits::Get, weights::{constants::RocksDbWeight, Weight}};

pub trait WeightInfo {
    /// `n`: releases already in the family (each is read to check the version is new).
    fn publish(n: u32) -> Weight;
    fn deprecate() -> Weight;
    fn revoke() -> Weight;
}

pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
    /// Reads: Releases (new id), Releases (parent), Families, Releases × n. Writes: Families, Releases.
    fn publish(n: u32) -> Weight {
        Weight::from_parts(40_000_000, 4_000)
            .saturating_add(Weight::from_parts(4_000_000, 700).saturating_mul(n.into()))
            .saturating_add(T::DbWeight::get().reads(3u64 + n as u64))
            .saturating_add(T::DbWeight::get().writes(2))
    }
    /// Reads: Releases. Writes: Releases.
    fn deprecate() -> Weight {
        Weight::from_parts(25_000_000, 1_000)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn revoke() -> Weight {
        Self::deprecate()
    }
}

impl WeightInfo for () {
    fn publish(n: u32) -> Weight {
        Weight::from_parts(40_000_000, 4_000)
            .saturating_add(Weight::from_parts(4_000_000, 700).saturating_mul(n.into()))
            .saturating_add(RocksDbWeight::get().reads(3u64 + n as u64))
            .saturating_add(RocksDbWeight::get().writes(2))
    }
    fn deprecate() -> Weight {
        Weight::from_parts(25_000_000, 1_000)
            .saturating_add(RocksDbWeight::get().reads(1))
            .saturating_add(RocksDbWeight::get().writes(1))
    }
    fn revoke() -> Weight {
        Self::deprecate()
    }
}
