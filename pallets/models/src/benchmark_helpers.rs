//! Setup shared with the benchmarks of the pallets built on this one.

use crate::{Config, Pallet};
use agora_primitives::{ReleaseId, ReleaseInfo};
use alloc::vec::Vec;
use polkadot_sdk::frame_benchmarking::account;
use polkadot_sdk::sp_runtime::BoundedVec;

/// A release of `family`, its id made unique by `version`.
pub fn release_info(family: &[u8], version: u32, parent: Option<ReleaseId>) -> ReleaseInfo {
    let mut sha256 = [0u8; 32];
    let n = family.len().min(28);
    sha256[..n].copy_from_slice(&family[..n]);
    sha256[28..].copy_from_slice(&version.to_le_bytes());
    ReleaseInfo {
        family: BoundedVec::truncate_from(family.to_vec()),
        version: BoundedVec::truncate_from(alloc::format!("{version}").into_bytes()),
        sha256,
        size_bytes: 98_362_432,
        architecture: BoundedVec::truncate_from(b"llama".to_vec()),
        quantization: BoundedVec::truncate_from(b"Q4_1".to_vec()),
        license: BoundedVec::truncate_from(b"Apache-2.0".to_vec()),
        parent,
        metadata_hash: [1; 32],
    }
}

/// Publishes `count` releases, each in a family of its own; returns their ids.
pub fn publish_releases<T: Config>(count: u32) -> Vec<ReleaseId> {
    let publisher: T::AccountId = account("publisher", 0, 0);
    (0..count)
        .map(|i| {
            let info = release_info(&[b'r', i as u8, (i >> 8) as u8], i, None);
            let id = info.sha256;
            Pallet::<T>::do_publish(publisher.clone(), info).expect("a fresh release publishes");
            id
        })
        .collect()
}
