//! Random operation sequences over all four pallets; every invariant is checked after each step.

use crate::mock::*;
use agora_primitives::{Outcome, OutcomeVerdict};
use agora_verifier::commitment::commitment;
use pallet_agora_escrow::Requests;
use polkadot_sdk::sp_runtime::traits::Hash as _;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Create { k: u32, max_price: u64, commit_blocks: u64 },
    Cancel { request: u64 },
    Commit { request: u64, slot: usize, lie: bool },
    Reveal { request: u64, slot: usize },
    Settle { request: u64 },
    RefundExpired { request: u64 },
    Advance { blocks: u64 },
    Offline { provider: usize },
    Online { provider: usize },
    Unbond { provider: usize },
    Withdraw { provider: usize },
    Reregister { provider: usize, price: u64 },
    RaisePrice { provider: usize, price: u64 },
    PublishNext,
    Revoke,
    OptIn { verifier: usize },
    OptOut { verifier: usize },
    Challenge { request: u64 },
    /// A verifier judges every result of a dispute: honest (accepts exactly the honest result)
    /// or not (rejects everything).
    Verdict { request: u64, verifier: usize, honest: bool },
    Resolve { request: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..=4, 5u64..=25, 2u64..=6).prop_map(|(k, max_price, commit_blocks)| Op::Create { k, max_price, commit_blocks }),
        1 => (0u64..8).prop_map(|request| Op::Cancel { request }),
        6 => (0u64..8, 0usize..4, prop::bool::weighted(0.2)).prop_map(|(request, slot, lie)| Op::Commit { request, slot, lie }),
        6 => (0u64..8, 0usize..4).prop_map(|(request, slot)| Op::Reveal { request, slot }),
        3 => (0u64..8).prop_map(|request| Op::Settle { request }),
        1 => (0u64..8).prop_map(|request| Op::RefundExpired { request }),
        4 => (1u64..12).prop_map(|blocks| Op::Advance { blocks }),
        1 => (0usize..4).prop_map(|provider| Op::Offline { provider }),
        1 => (0usize..4).prop_map(|provider| Op::Online { provider }),
        1 => (0usize..4).prop_map(|provider| Op::Unbond { provider }),
        1 => (0usize..4).prop_map(|provider| Op::Withdraw { provider }),
        1 => (0usize..4, 5u64..25).prop_map(|(provider, price)| Op::Reregister { provider, price }),
        1 => (0usize..4, 5u64..25).prop_map(|(provider, price)| Op::RaisePrice { provider, price }),
        1 => Just(Op::PublishNext),
        1 => Just(Op::Revoke),
        2 => (0usize..3).prop_map(|verifier| Op::OptIn { verifier }),
        1 => (0usize..3).prop_map(|verifier| Op::OptOut { verifier }),
        1 => (0u64..8).prop_map(|request| Op::Challenge { request }),
        4 => (0u64..8, 0usize..3, prop::bool::weighted(0.8)).prop_map(|(request, verifier, honest)| Op::Verdict { request, verifier, honest }),
        1 => (0u64..8).prop_map(|request| Op::Resolve { request }),
    ]
}

/// What an honest provider outputs for a request; a liar outputs something else.
fn outcome(request: u64, lie: bool) -> Outcome {
    let seed = if lie { 1u8 } else { 0u8 };
    let output_hash = <Test as polkadot_sdk::frame_system::Config>::Hashing::hash(&[seed, request as u8]).0;
    Outcome { output_hash, token_count: 100 + request as u32 % 900 }
}

fn salt(provider: u64) -> [u8; 32] {
    [provider as u8; 32]
}

fn apply(op: &Op, liars: &mut std::collections::BTreeSet<(u64, u64)>) {
    let signed = RuntimeOrigin::signed;
    let provider_of = |request: u64, slot: usize| {
        Requests::<Test>::get(request).and_then(|r| r.providers.get(slot % r.providers.len().max(1)).copied())
    };
    // Results are ignored on purpose: failing calls must change nothing, which the invariants check.
    let _ = match op.clone() {
        Op::Create { k, max_price, commit_blocks } => {
            let mut p = params(k, max_price);
            p.commit_blocks = commit_blocks;
            Escrow::create_request(signed(CLIENT), p).map(|_| ()).map_err(|e| e.error)
        },
        Op::Cancel { request } => Escrow::cancel_request(signed(CLIENT), request),
        Op::Commit { request, slot, lie } => match provider_of(request, slot) {
            Some(who) => {
                let result = Verifier::commit(signed(who), request, commitment(request, &who, &outcome(request, lie), &salt(who)));
                if result.is_ok() && lie {
                    liars.insert((request, who));
                }
                result
            },
            None => Ok(()),
        },
        Op::Reveal { request, slot } => match provider_of(request, slot) {
            Some(who) => {
                let lie = liars.contains(&(request, who));
                Verifier::reveal(signed(who), request, outcome(request, lie), salt(who))
            },
            None => Ok(()),
        },
        Op::Settle { request } => Verifier::settle(signed(PUBLISHER), request).map(|_| ()).map_err(|e| e.error),
        Op::RefundExpired { request } => Escrow::refund_expired(signed(PUBLISHER), request).map(|_| ()).map_err(|e| e.error),
        Op::Advance { blocks } => {
            run_to(System::block_number() + blocks);
            Ok(())
        },
        Op::Offline { provider } => Providers::go_offline(signed(PROVIDERS[provider])),
        Op::Online { provider } => Providers::go_online(signed(PROVIDERS[provider])),
        Op::Unbond { provider } => Providers::unbond(signed(PROVIDERS[provider])),
        Op::Withdraw { provider } => Providers::withdraw(signed(PROVIDERS[provider])),
        Op::Reregister { provider, price } => Providers::register(signed(PROVIDERS[provider]), 1_000, manifest(price)),
        Op::RaisePrice { provider, price } => Providers::update_manifest(signed(PROVIDERS[provider]), manifest(price)),
        Op::PublishNext => {
            let n = pallet_agora_models::Families::<Test>::iter().map(|(_, v)| v.len()).sum::<usize>() as u8;
            let mut info = pallet_agora_models::Releases::<Test>::get(RELEASE).unwrap().info;
            info.sha256 = [n.wrapping_add(100); 32];
            info.version = vec![b'v', n].try_into().unwrap();
            info.parent = Some(RELEASE);
            Models::publish(signed(PUBLISHER), info)
        },
        Op::Revoke => Models::revoke(signed(PUBLISHER), RELEASE),
        Op::OptIn { verifier } => {
            let who = VERIFIERS[verifier];
            if pallet_agora_providers::Providers::<Test>::get(who).is_none() {
                let _ = Providers::register(signed(who), 1_000, manifest(PRICE));
            }
            Verifier::opt_in_verifier(signed(who))
        },
        Op::OptOut { verifier } => Verifier::opt_out_verifier(signed(VERIFIERS[verifier])),
        Op::Challenge { request } => Verifier::challenge(signed(CLIENT), request),
        Op::Verdict { request, verifier, honest } => match crate::Disputes::<Test>::get(request) {
            Some(dispute) => {
                let judged: Vec<OutcomeVerdict> = dispute
                    .outcomes
                    .iter()
                    .map(|o| OutcomeVerdict { outcome: *o, accepted: honest && *o == outcome(request, false) })
                    .collect();
                Verifier::submit_verdict(signed(VERIFIERS[verifier]), request, judged.try_into().unwrap()).map(|_| ()).map_err(|e| e.error)
            },
            None => Ok(()),
        },
        Op::Resolve { request } => Verifier::resolve_dispute(signed(PUBLISHER), request).map(|_| ()).map_err(|e| e.error),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_operation_sequences(ops in prop::collection::vec(op(), 1..40)) {
        new_test_ext(|| {
            let mut liars = Default::default();
            for op in &ops {
                apply(op, &mut liars);
                check_invariants();
            }
        });
    }
}
