//! Setup shared with the benchmarks of the pallets built on this one.

use crate::{BalanceOf, Config, ManifestOf, Pallet};
use agora_primitives::{CapabilityManifest, Offer, ReleaseId};
use codec::Encode;
use polkadot_sdk::frame_support::traits::{fungible::Mutate, Get};
use polkadot_sdk::sp_runtime::{traits::Saturating, BoundedVec};

/// The runtime profile every benchmark provider advertises.
pub const PROFILE: [u8; 32] = [7; 32];

/// A manifest offering every release in `releases` at `price` per 1k tokens.
pub fn manifest<T: Config>(releases: &[ReleaseId], price: BalanceOf<T>) -> ManifestOf<T> {
    let address = BoundedVec::truncate_from(b"/ip4/127.0.0.1/tcp/30333/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".to_vec());
    CapabilityManifest {
        peer_id: BoundedVec::truncate_from([0x24u8; 38].to_vec()),
        multiaddrs: BoundedVec::truncate_from(alloc::vec![address; 8]),
        offers: BoundedVec::truncate_from(
            releases
                .iter()
                .map(|r| Offer { release: *r, runtime_profile: PROFILE, milli_tokens_per_sec: 55_000 })
                .collect(),
        ),
        price_per_1k_input: price,
        price_per_1k_output: price,
        max_context: 4096,
        max_concurrent_jobs: 64,
        hardware_class: BoundedVec::truncate_from(b"cpu-x86-64-v3".to_vec()),
        settlement_key: [3; 32],
    }
}

/// Gives `who` enough to stake and to pay escrows many times over.
pub fn fund<T: Config>(who: &T::AccountId) {
    let plenty = T::MinStake::get().saturating_mul(1_000_000u32.into());
    T::Currency::set_balance(who, plenty);
}

/// Registers `who` with the minimum stake, serving `releases` at `price`.
pub fn register_provider<T: Config>(who: &T::AccountId, releases: &[ReleaseId], price: BalanceOf<T>) {
    fund::<T>(who);
    // No two benchmark providers are byte-identical: each has its own peer id.
    let mut manifest = manifest::<T>(releases, price);
    let mut peer = who.encode();
    peer.resize(38, 0x24);
    manifest.peer_id = BoundedVec::truncate_from(peer);
    Pallet::<T>::do_register(who.clone(), T::MinStake::get(), manifest).expect("a funded provider registers");
}
