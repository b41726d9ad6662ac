//! Setup shared with the verifier's benchmarks.

use crate::{Config, Pallet, ParamsOf, Requests, TicketSpecOf};
use agora_primitives::{RequestId, RequestParams, SamplingParams, TicketSpec};
use alloc::vec::Vec;
use pallet_agora_models::benchmark_helpers::publish_releases;
use pallet_agora_providers::benchmark_helpers::{fund, register_provider, PROFILE};
use polkadot_sdk::frame_benchmarking::account;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::traits::One;

/// Moves the clock on until the chain's randomness has a seed nobody knew in block `after`,
/// as every draw needs (the next block in the mocks, the one after on the dev runtime).
pub fn until_fresh_randomness<T: Config>(after: BlockNumberFor<T>) {
    let mut now = after;
    for _ in 0..100 {
        if Pallet::<T>::fresh_seed(b"agora/bench", after).is_some() {
            return;
        }
        now += One::one();
        frame_system::Pallet::<T>::set_block_number(now);
    }
    panic!("the randomness source never moved past the request's block");
}

/// A request for `release` by `k` providers at up to 1,000 per 1k tokens.
pub fn params<T: Config>(release: agora_primitives::ReleaseId, k: u32) -> ParamsOf<T> {
    RequestParams {
        release,
        runtime_profile: PROFILE,
        prompt_hash: [5; 32],
        prompt_tokens: 1000,
        max_output_tokens: 1000,
        max_price_per_1k: 1_000u32.into(),
        redundancy: k,
        sampling: SamplingParams::default(),
        commit_blocks: T::MinCommitBlocks::get(),
    }
}

/// Tickets for `release` with `k` providers, for prompts and outputs of up to 1,000 tokens at
/// up to 1,000 per 1k tokens.
pub fn ticket_spec<T: Config>(release: agora_primitives::ReleaseId, k: u32) -> TicketSpecOf<T> {
    TicketSpec {
        release,
        runtime_profile: PROFILE,
        redundancy: k,
        max_prompt_tokens: 1000,
        max_output_tokens: 1000,
        max_price_per_1k: 1_000u32.into(),
    }
}

/// A release served by `p` registered providers, each with its own peer id and price.
pub fn served_release<T: Config>(p: u32) -> agora_primitives::ReleaseId {
    let release = publish_releases::<T>(1)[0];
    for i in 0..p {
        // Each at its own price: the draw fixes every drawn provider's.
        register_provider::<T>(&account("provider", i, 0), &[release], (10 + i).into());
    }
    release
}

/// A request by `client` with `k` providers drawn from `k` registered ones.
pub fn assigned_request<T: Config>(client: &T::AccountId, k: u32) -> (RequestId, Vec<T::AccountId>) {
    let release = served_release::<T>(k);
    fund::<T>(client);
    let id = Pallet::<T>::do_create(client.clone(), params::<T>(release, k)).expect("the request is valid").request;
    until_fresh_randomness::<T>(frame_system::Pallet::<T>::block_number());
    Pallet::<T>::draw_all();
    let drawn = Requests::<T>::get(id).expect("the request exists").providers.into_inner();
    (id, drawn)
}
