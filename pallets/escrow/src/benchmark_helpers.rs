//! Setup shared with the verifier's benchmarks.

use crate::{Config, NextTicketId, Pallet, ParamsOf, Requests, TicketOf, TicketSpecOf, Tickets};
use agora_primitives::{RequestId, RequestParams, SamplingParams, TicketId, TicketSpec, TicketStatus};
use alloc::vec::Vec;
use pallet_agora_models::benchmark_helpers::publish_releases;
use pallet_agora_providers::benchmark_helpers::{fund, register_provider, PROFILE};
use polkadot_sdk::frame_benchmarking::account;
use polkadot_sdk::frame_support::traits::{fungible::Mutate, Get};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::{
    traits::{One, Saturating},
    BoundedVec,
};

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
    let providers: Vec<T::AccountId> = (0..p).map(|i| account("provider", i, 0)).collect();
    release_served_by::<T>(&providers)
}

/// A release served by each of `providers`, each with its own peer id and price.
pub fn release_served_by<T: Config>(providers: &[T::AccountId]) -> agora_primitives::ReleaseId {
    let release = publish_releases::<T>(1)[0];
    for (i, who) in providers.iter().enumerate() {
        // Each at its own price: the draw fixes every drawn provider's.
        register_provider::<T>(who, &[release], (10 + i as u32).into());
    }
    release
}

/// Ticket `id` of `buyer` for `release`, drawn to `providers` at their prices, its escrow in
/// the pallet's account as a purchase leaves it.
pub fn drawn_ticket<T: Config>(id: TicketId, buyer: &T::AccountId, release: agora_primitives::ReleaseId, providers: &[T::AccountId]) {
    let spec = ticket_spec::<T>(release, providers.len() as u32);
    let escrow = Pallet::<T>::ticket_escrow(&spec).expect("the spec's cost fits");
    <T as pallet_agora_providers::Config>::Currency::mint_into(&Pallet::<T>::account_id(), escrow).expect("the escrow can be minted");
    let prices = providers.iter().map(|p| pallet_agora_providers::Pallet::<T>::prices(p).expect("a registered provider")).collect();
    let now = frame_system::Pallet::<T>::block_number();
    let ticket = TicketOf::<T> {
        buyer: buyer.clone(),
        spec,
        escrow,
        status: TicketStatus::Drawn,
        providers: BoundedVec::truncate_from(providers.to_vec()),
        prices: BoundedVec::truncate_from(prices),
        bought_at: now,
        expires_at: now.saturating_add(T::TicketLifetime::get()),
    };
    Tickets::<T>::insert(id, ticket);
    NextTicketId::<T>::mutate(|next| *next = (*next).max(id.saturating_add(1)));
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
