//! Benchmarks (v2) for commit, reveal, settlement and disputes.

use super::*;
use agora_primitives::wire::{Use, MAX_PEER_ID_BYTES};
use agora_primitives::{DisputeKind, Outcome, OutcomeVerdict, RequestId, RequestStatus, MAX_REDUNDANCY, MAX_VERIFIERS};
use agora_verifier::commitment::commitment;
use alloc::vec::Vec;
use agora_primitives::{SamplingParams, SignedOutcome, TicketBundle, TicketUse};
use pallet_agora_escrow::{
    benchmark_helpers::{assigned_request, drawn_ticket, release_served_by},
    Requests, Tickets,
};
use polkadot_sdk::sp_runtime::traits::Verify;
use pallet_agora_providers::benchmark_helpers::{fund, register_provider};
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_system::{self, RawOrigin};
use polkadot_sdk::sp_runtime::{traits::Saturating, BoundedVec};

fn outcome(byte: u8) -> Outcome {
    Outcome { output_hash: [byte; 32], token_count: 500 }
}

const SALT: [u8; 32] = [9; 32];

type Signer<T> = <T as Config>::BenchmarkHelper;

/// The dearest `Use` of `ticket`: the whole prompt and output, and the longest peer id.
fn ticket_use<T: Config>(ticket: u64) -> TicketUse {
    TicketUse {
        chain: Pallet::<T>::chain(),
        ticket,
        prompt_hash: [5; 32],
        prompt_tokens: 1000,
        max_output_tokens: 1000,
        sampling: SamplingParams::default(),
        client_peer: BoundedVec::truncate_from(alloc::vec![7u8; MAX_PEER_ID_BYTES]),
    }
}

/// `count` providers of the request's release that opt in as verifiers (registered after the
/// draw, so none of them is one of its providers).
fn verifiers<T: Config>(request: RequestId, count: u32) -> Vec<T::AccountId> {
    let release = Requests::<T>::get(request).expect("the request exists").params.release;
    (0..count)
        .map(|i| {
            let who: T::AccountId = account("verifier", i, 0);
            register_provider::<T>(&who, &[release], 10u32.into());
            Pallet::<T>::do_opt_in(who.clone()).expect("a provider opts in");
            who
        })
        .collect()
}

/// Every one of `providers` commits and reveals `claimed(i)`.
fn commit_and_reveal<T: Config>(id: RequestId, providers: &[T::AccountId], claimed: impl Fn(usize) -> Outcome) {
    for (i, who) in providers.iter().enumerate() {
        Pallet::<T>::do_commit(who.clone(), id, commitment(id, who, &claimed(i), &SALT)).unwrap();
    }
    for (i, who) in providers.iter().enumerate() {
        Pallet::<T>::do_reveal(who.clone(), id, claimed(i), SALT).unwrap();
    }
}

/// A request of `k` providers that all revealed different results, under dispute before `v`
/// verifiers, the first `voted` of which have judged it (accepting the first result only).
fn split_dispute<T: Config>(k: u32, v: u32, voted: u32) -> (RequestId, Vec<T::AccountId>) {
    let client: T::AccountId = whitelisted_caller();
    let (id, providers) = assigned_request::<T>(&client, k);
    let drawn = verifiers::<T>(id, v);
    commit_and_reveal::<T>(id, &providers, |i| outcome(i as u8 + 1));
    Pallet::<T>::do_settle(id).unwrap();
    // Whatever the runtime draws, this dispute is judged by all `v`.
    Disputes::<T>::mutate(id, |d| d.as_mut().expect("a split vote opens a dispute").verifiers = BoundedVec::truncate_from(drawn.clone()));
    // The treasury can pay every fee.
    fund::<T>(&<T as pallet_agora_providers::Config>::Treasury::get());
    for who in drawn.iter().take(voted as usize) {
        Pallet::<T>::do_submit_verdict(who.clone(), id, verdicts::<T>(id)).unwrap();
    }
    (id, drawn)
}

fn verdicts<T: Config>(id: RequestId) -> VerdictsOf {
    let outcomes = Disputes::<T>::get(id).expect("under dispute").outcomes;
    BoundedVec::truncate_from(
        outcomes.iter().enumerate().map(|(i, o)| OutcomeVerdict { outcome: *o, accepted: i == 0 }).collect::<Vec<_>>(),
    )
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn commit() {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, MAX_REDUNDANCY);
        let who = providers[0].clone();
        let hash = commitment(id, &who, &outcome(1), &SALT);

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), id, hash);

        assert!(Commitments::<T>::contains_key(id, &who));
    }

    /// Every commitment is in, so the reveal reads them all to see the phase is open.
    #[benchmark]
    fn reveal() {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, MAX_REDUNDANCY);
        for who in &providers {
            Pallet::<T>::do_commit(who.clone(), id, commitment(id, who, &outcome(1), &SALT)).unwrap();
        }
        let who = providers[0].clone();

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), id, outcome(1), SALT);

        assert!(Reveals::<T>::contains_key(id, &who));
    }

    /// `k` providers, all revealed; from three on, one of them lies and is slashed.
    #[benchmark]
    fn settle(k: Linear<1, MAX_REDUNDANCY>) {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, k);
        commit_and_reveal::<T>(id, &providers, |i| if k >= 3 && i == 0 { outcome(2) } else { outcome(1) });

        #[extrinsic_call]
        settle(RawOrigin::Signed(client), id);

        let status = Requests::<T>::get(id).unwrap().status;
        // A single provider's result waits for its audit draw, which `on_initialize` pays for.
        assert_eq!(status, if k == 1 { RequestStatus::AwaitingAudit } else { RequestStatus::Settled });
    }

    /// The dearest settlement: `k` providers that all revealed different results, so verifiers
    /// are drawn among every other provider of the release, all opted in.
    #[benchmark]
    fn settle_to_dispute(k: Linear<2, MAX_REDUNDANCY>) {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, k);
        let others = <T as pallet_agora_providers::Config>::MaxProvidersPerRelease::get().saturating_sub(k);
        verifiers::<T>(id, others);
        commit_and_reveal::<T>(id, &providers, |i| outcome(i as u8 + 1));

        #[extrinsic_call]
        settle(RawOrigin::Signed(client), id);

        assert_eq!(Requests::<T>::get(id).unwrap().status, RequestStatus::Disputed);
    }

    /// The dearest acknowledgement: a `Use` naming the longest peer id.
    #[benchmark]
    fn prove_ack() {
        let client: T::AccountId = whitelisted_caller();
        let (id, _) = assigned_request::<T>(&client, MAX_REDUNDANCY);
        let signer = <T as Config>::BenchmarkHelper::signer(0);
        Requests::<T>::mutate(id, |r| {
            if let Some(first) = r.as_mut().and_then(|r| r.providers.iter_mut().next()) {
                *first = signer.clone();
            }
        });
        let r = Requests::<T>::get(id).expect("the request exists");
        let peer: PeerIdOf = BoundedVec::truncate_from(alloc::vec![7u8; MAX_PEER_ID_BYTES]);
        let authorised = Use { chain: Pallet::<T>::chain(), request: id, prompt_hash: r.params.prompt_hash, prompt_tokens: r.params.prompt_tokens, client_peer: peer.to_vec() };
        let signature = <T as Config>::BenchmarkHelper::sign(&signer, &authorised.ack_payload());

        #[extrinsic_call]
        _(RawOrigin::Signed(client), id, signer.clone(), peer, signature);

        assert!(Acknowledged::<T>::contains_key(id, &signer));
    }

    #[benchmark]
    fn opt_in_verifier() {
        let client: T::AccountId = whitelisted_caller();
        let (_, providers) = assigned_request::<T>(&client, 1);

        #[extrinsic_call]
        _(RawOrigin::Signed(providers[0].clone()));

        assert!(Verifiers::<T>::contains_key(&providers[0]));
    }

    #[benchmark]
    fn opt_out_verifier() {
        let client: T::AccountId = whitelisted_caller();
        let (id, _) = assigned_request::<T>(&client, 1);
        let who = verifiers::<T>(id, 1).remove(0);

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));

        assert!(!Verifiers::<T>::contains_key(&who));
    }

    /// A settled request of two agreeing providers; every other provider of the release is an
    /// opted-in candidate verifier.
    #[benchmark]
    fn challenge() {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, 2);
        commit_and_reveal::<T>(id, &providers, |_| outcome(1));
        Pallet::<T>::do_settle(id).unwrap();
        let others = <T as pallet_agora_providers::Config>::MaxProvidersPerRelease::get().saturating_sub(2);
        verifiers::<T>(id, others);

        #[extrinsic_call]
        _(RawOrigin::Signed(client), id);

        assert!(matches!(Disputes::<T>::get(id).unwrap().kind, DisputeKind::Challenge { .. }));
    }

    /// The last of `v` verdicts on a split vote of `k` results: it resolves the dispute.
    #[benchmark]
    fn submit_verdict(v: Linear<1, MAX_VERIFIERS>, k: Linear<2, MAX_REDUNDANCY>) {
        let (id, drawn) = split_dispute::<T>(k, v, v - 1);
        let last = drawn[v as usize - 1].clone();
        let judged = verdicts::<T>(id);

        #[extrinsic_call]
        _(RawOrigin::Signed(last), id, judged);

        assert!(Resolutions::<T>::contains_key(id));
    }

    /// Resolution after the deadline of a split vote of `k` results, with `v` verifiers of which
    /// one stayed silent.
    #[benchmark]
    fn resolve_dispute(v: Linear<1, MAX_VERIFIERS>, k: Linear<2, MAX_REDUNDANCY>) {
        let (id, _) = split_dispute::<T>(k, v, v - 1);
        let deadline = Disputes::<T>::get(id).unwrap().verdict_deadline;
        frame_system::Pallet::<T>::set_block_number(deadline.saturating_add(1u32.into()));
        let caller: T::AccountId = whitelisted_caller();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert!(Resolutions::<T>::contains_key(id));
    }

    /// `n` tickets of one buyer, each with two signed, agreeing outcomes (a bundle's least),
    /// from `a` providers taken in turn so that every one of them is written. The weight
    /// charges any account the call credits or records, a buyer too, at `a`'s rate.
    #[benchmark]
    fn settle_tickets(n: Linear<1, { T::MaxBundlesPerSettle::get() }>, a: Linear<2, { T::MaxProvidersPerRelease::get() }>) {
        let providers: Vec<T::AccountId> = (0..a).map(|i| Signer::<T>::signer(i)).collect();
        let release = release_served_by::<T>(&providers);
        let result = outcome(1);
        let buyer = Signer::<T>::signer(a);
        let p = a;
        let bundles: Vec<TicketBundleOf<T>> = (0..n)
            .map(|i| {
                let pair = [providers[(2 * i % p) as usize].clone(), providers[((2 * i + 1) % p) as usize].clone()];
                drawn_ticket::<T>(u64::from(i), &buyer, release, &pair);
                let authorised = ticket_use::<T>(u64::from(i));
                let outcomes = pair
                    .iter()
                    .enumerate()
                    .map(|(j, who)| SignedOutcome {
                        provider: j as u8,
                        outcome: result,
                        signature: Signer::<T>::sign(who, &authorised.outcome_payload(&result)),
                    })
                    .collect();
                TicketBundle {
                    buyer_signature: Signer::<T>::sign(&buyer, &authorised.signing_payload()),
                    authorised,
                    outcomes: BoundedVec::truncate_from(outcomes),
                }
            })
            .collect();
        let caller: T::AccountId = whitelisted_caller();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), BoundedVec::truncate_from(bundles), a + 1, 0);

        assert!(Tickets::<T>::get(0).is_none() && Tickets::<T>::get(u64::from(n) - 1).is_none());
    }

    /// One outcome beyond a bundle's two: its signature checked.
    #[benchmark]
    fn ticket_outcome() {
        let who = Signer::<T>::signer(0);
        let authorised = ticket_use::<T>(0);
        let result = outcome(2);
        let signature = Signer::<T>::sign(&who, &authorised.outcome_payload(&result));

        #[block]
        {
            assert!(signature.verify(&authorised.outcome_payload(&result)[..], &who));
        }
    }

    /// One signed result the majority did not share: its signer slashed.
    #[benchmark]
    fn ticket_dissent() {
        let who = Signer::<T>::signer(0);
        release_served_by::<T>(core::slice::from_ref(&who));
        let stake = pallet_agora_providers::Providers::<T>::get(&who).expect("registered").stake;

        #[block]
        {
            pallet_agora_providers::Pallet::<T>::slash(&who, T::WrongResultSlash::get());
        }

        assert!(pallet_agora_providers::Providers::<T>::get(&who).expect("registered").stake < stake);
    }

    /// A left-out provider's outcome claimed at its dearest: not the fixed winner, so its
    /// signer is slashed.
    #[benchmark]
    fn claim_ticket_outcome() {
        let providers: Vec<T::AccountId> = (0..3).map(|i| Signer::<T>::signer(i)).collect();
        let release = release_served_by::<T>(&providers);
        let buyer = Signer::<T>::signer(3);
        drawn_ticket::<T>(0, &buyer, release, &providers);
        let authorised = ticket_use::<T>(0);
        let sign_outcome = |position: usize, result: Outcome| SignedOutcome {
            provider: position as u8,
            outcome: result,
            signature: Signer::<T>::sign(&providers[position], &authorised.outcome_payload(&result)),
        };
        let bundle = TicketBundle {
            buyer_signature: Signer::<T>::sign(&buyer, &authorised.signing_payload()),
            outcomes: BoundedVec::truncate_from(alloc::vec![sign_outcome(0, outcome(1)), sign_outcome(1, outcome(1))]),
            authorised: authorised.clone(),
        };
        Pallet::<T>::do_settle_tickets(alloc::vec![bundle], 3, 0).expect("the bundle settles");
        let dissent = sign_outcome(2, outcome(2));
        let caller: T::AccountId = whitelisted_caller();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), 0, dissent);

        assert!(Tickets::<T>::get(0).is_none());
    }

    /// A ticket of the most providers falls back, called by its buyer (no wait for the grace).
    #[benchmark]
    fn fall_back_ticket() {
        let providers: Vec<T::AccountId> = (0..MAX_REDUNDANCY).map(|i| Signer::<T>::signer(i)).collect();
        let release = release_served_by::<T>(&providers);
        let buyer = Signer::<T>::signer(MAX_REDUNDANCY);
        drawn_ticket::<T>(0, &buyer, release, &providers);
        let authorised = ticket_use::<T>(0);
        let signature = Signer::<T>::sign(&buyer, &authorised.signing_payload());
        let request = pallet_agora_escrow::NextRequestId::<T>::get();

        #[extrinsic_call]
        _(RawOrigin::Signed(buyer), authorised, signature);

        assert!(Tickets::<T>::get(0).is_none());
        assert_eq!(Requests::<T>::get(request).expect("the ticket is a request").providers.len() as u32, MAX_REDUNDANCY);
    }

    /// A provider of a fell-back request proves that the buyer signed another `Use` of its
    /// ticket (the dearer of the two cases: a request, its origin and commitment read).
    #[benchmark]
    fn prove_equivocation() {
        let providers: Vec<T::AccountId> = (0..3).map(|i| Signer::<T>::signer(i)).collect();
        let release = release_served_by::<T>(&providers);
        let buyer = Signer::<T>::signer(3);
        drawn_ticket::<T>(0, &buyer, release, &providers);
        let authorised = ticket_use::<T>(0);
        let signature = Signer::<T>::sign(&buyer, &authorised.signing_payload());
        let request = Pallet::<T>::do_fall_back(buyer.clone(), authorised.clone(), signature).expect("the ticket falls back").request;
        let other = TicketUse { prompt_hash: [6; 32], ..authorised };
        let other_signature = Signer::<T>::sign(&buyer, &other.signing_payload());

        #[extrinsic_call]
        _(RawOrigin::Signed(providers[2].clone()), other, other_signature, Some(request));

        assert!(Equivocated::<T>::contains_key(request, &providers[2]));
    }

    /// The end of a block that settled `n` tickets: the root of their `n` distinct leaves put
    /// in the header.
    #[benchmark]
    fn seal_receipts(n: Linear<0, { T::MaxBlockReceipts::get() }>) {
        let leaves: Vec<agora_primitives::Hash256> = (0..n).map(|i| agora_primitives::receipts::leaf(&i.to_le_bytes())).collect();
        BlockReceipts::<T>::put(BoundedVec::truncate_from(leaves));

        #[block]
        {
            Pallet::<T>::seal_receipts();
        }

        assert!(BlockReceipts::<T>::get().is_empty());
        assert_eq!(frame_system::Pallet::<T>::digest().logs.len(), usize::from(n > 0));
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
