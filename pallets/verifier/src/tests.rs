use crate::{mock::*, Commitments, Error, Event, Receipts, Reveals};
use agora_primitives::{commitment::commitment, JobOutcome, Outcome, RequestStatus};
use pallet_agora_escrow::Requests;
use polkadot_sdk::frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
};

const SALT: [u8; 32] = [42; 32];

fn good() -> Outcome {
    Outcome { output_hash: [0xaa; 32], token_count: 500 }
}

fn bad() -> Outcome {
    Outcome { output_hash: [0xbb; 32], token_count: 500 }
}

/// Creates a request with redundancy `k` at the providers' price and draws it.
fn assigned_request(k: u32) -> (u64, Vec<u64>) {
    let id = pallet_agora_escrow::NextRequestId::<Test>::get();
    assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(k, PRICE)));
    next_block();
    (id, Requests::<Test>::get(id).unwrap().providers.to_vec())
}

fn commit(who: u64, id: u64, outcome: Outcome) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::commit(RuntimeOrigin::signed(who), id, commitment(id, &who, &outcome, &SALT))
}

fn reveal(who: u64, id: u64, outcome: Outcome) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::reveal(RuntimeOrigin::signed(who), id, outcome, SALT)
}

fn stake(who: u64) -> u64 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().stake
}

fn score(who: u64) -> u32 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().reputation.score_ppm
}

fn escrow_held() -> u64 {
    Balances::balance_on_hold(&pallet_agora_escrow::HoldReason::RequestEscrow.into(), &CLIENT)
}

#[test]
fn two_agree_one_lies_pays_slashes_refunds_and_keeps_a_receipt() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        // Escrow: 3 × (2000 tokens × 10 / 1000) = 60.
        assert_eq!(escrow_held(), 60);
        let before: Vec<u64> = p.iter().map(|a| Balances::balance(a)).collect();
        let client_before = Balances::balance(&CLIENT);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        assert_ok!(commit(p[2], id, bad()));
        for (who, o) in [(p[0], good()), (p[1], good()), (p[2], bad())] {
            assert_ok!(reveal(who, id, o));
        }
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(PUBLISHER), id));

        // Each winner: ceil((1000 × 10 + 500 × 10) / 1000) = 15.
        assert_eq!(Balances::balance(&p[0]), before[0] + 15);
        assert_eq!(Balances::balance(&p[1]), before[1] + 15);
        assert_eq!(Balances::balance(&p[2]), before[2]);
        assert_eq!(stake(p[2]), 900);
        assert_eq!(Balances::balance(&TREASURY), 100);
        assert_eq!(escrow_held(), 0);
        assert_eq!(Balances::balance(&CLIENT), client_before + 30);
        assert_eq!((score(p[0]), score(p[1]), score(p[2])), (525_000, 525_000, 375_000));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Settled);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.winning, Some(good()));
        assert_eq!(receipt.paid.to_vec(), vec![(p[0], 15), (p[1], 15)]);
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 100, JobOutcome::Wrong)]);
        assert_eq!(receipt.refunded, 30);
        assert_eq!(Commitments::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 0);
        assert!(p.iter().all(|a| pallet_agora_providers::Providers::<Test>::get(a).unwrap().open_jobs == 0));
        System::assert_last_event(Event::Settled { request: id, winning: good(), paid: 30, refunded: 30 }.into());
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(PUBLISHER), id), Error::<Test>::NotActive);
    });
}

#[test]
fn no_show_is_slashed_less_and_majority_still_wins() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        // p[2] never commits: reveals open only after the commit deadline.
        assert_noop!(reveal(p[0], id, good()), Error::<Test>::RevealNotOpen);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.commit_deadline + 1);
        assert_noop!(commit(p[2], id, good()), Error::<Test>::CommitClosed);
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(reveal(p[1], id, good()));
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::TooEarly);
        run_to(r.reveal_deadline + 1);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(stake(p[2]), 980);
        assert_eq!(score(p[2]), 450_000);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 20, JobOutcome::NoShow)]);
        assert_eq!(receipt.paid.len(), 2);
    });
}

#[test]
fn split_vote_is_disputed_and_keeps_escrow() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        let third = Outcome { output_hash: [0xcc; 32], token_count: 3 };
        for (who, o) in [(p[0], good()), (p[1], bad()), (p[2], third)] {
            assert_ok!(commit(who, id, o));
        }
        for (who, o) in [(p[0], good()), (p[1], bad()), (p[2], third)] {
            assert_ok!(reveal(who, id, o));
        }
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Disputed);
        assert_eq!(escrow_held(), 60);
        assert!(Receipts::<Test>::get(id).is_none());
        assert!(p.iter().all(|a| stake(*a) == 1_000));
        System::assert_last_event(Event::Disputed { request: id }.into());
        // Until the dispute path exists, the escrow comes back after the settle window.
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 11);
        assert_ok!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(escrow_held(), 0);
    });
}

#[test]
fn nobody_reveals_refunds_everything() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        let before = Balances::balance(&CLIENT);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Balances::balance(&CLIENT), before + 40);
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Refunded);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.winning, None);
        assert_eq!(receipt.slashed.len(), 2);
        assert!(p.iter().all(|a| stake(*a) == 980));
        System::assert_last_event(Event::Abandoned { request: id, refunded: 40 }.into());
    });
}

#[test]
fn single_provider_request_settles_on_its_own_reveal() {
    new_test_ext(|| {
        let (id, p) = assigned_request(1);
        assert_ok!(commit(p[0], id, good()));
        // All (one) commitments are in, so the reveal opens before the deadline.
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Receipts::<Test>::get(id).unwrap().paid.to_vec(), vec![(p[0], 15)]);
    });
}

#[test]
fn commit_rejects_bad_input() {
    new_test_ext(|| {
        assert_noop!(commit(10, 99, good()), Error::<Test>::UnknownRequest);
        assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(2, PRICE)));
        // Not drawn yet.
        assert_noop!(commit(10, 0, good()), Error::<Test>::NotActive);
        next_block();
        let p = Requests::<Test>::get(0).unwrap().providers.to_vec();
        let outsider = PROVIDERS.iter().copied().find(|a| !p.contains(a)).unwrap();
        assert_noop!(commit(outsider, 0, good()), Error::<Test>::NotAssigned);
        assert_noop!(commit(CLIENT, 0, good()), Error::<Test>::NotAssigned);
        assert_ok!(commit(p[0], 0, good()));
        assert_noop!(commit(p[0], 0, bad()), Error::<Test>::AlreadyCommitted);
    });
}

#[test]
fn reveal_rejects_bad_input() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::RevealNotOpen);
        let too_long = Outcome { output_hash: [1; 32], token_count: 1001 };
        assert_ok!(Verifier::commit(RuntimeOrigin::signed(p[1]), id, commitment(id, &p[1], &too_long, &SALT)));
        assert_noop!(reveal(p[1], id, too_long), Error::<Test>::TooManyTokens);
        // A reveal that differs from the commitment in any part is refused.
        assert_noop!(reveal(p[0], id, bad()), Error::<Test>::CommitmentMismatch);
        assert_noop!(
            Verifier::reveal(RuntimeOrigin::signed(p[0]), id, good(), [0; 32]),
            Error::<Test>::CommitmentMismatch
        );
        // Copying another provider's commitment does not work: the provider is in the hash.
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::CommitmentMismatch);
        assert_ok!(reveal(p[0], id, good()));
        assert_noop!(reveal(p[0], id, good()), Error::<Test>::AlreadyRevealed);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        assert_noop!(reveal(p[1], id, too_long), Error::<Test>::RevealClosed);
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(CLIENT), 77), Error::<Test>::UnknownRequest);
    });
}

#[test]
fn reveal_needs_a_commitment() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.commit_deadline + 1);
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::NotCommitted);
    });
}

#[test]
fn an_expiry_refund_drops_commitments_and_reveals() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        assert_ok!(reveal(p[0], id, good()));
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 11);
        assert_ok!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Commitments::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(escrow_held(), 0);
    });
}

#[test]
fn payment_uses_prices_fixed_at_assignment() {
    new_test_ext(|| {
        let (id, p) = assigned_request(1);
        // Raising the price after the draw changes nothing for this request.
        assert_ok!(Providers::update_manifest(RuntimeOrigin::signed(p[0]), manifest(PRICE * 3)));
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Receipts::<Test>::get(id).unwrap().paid.to_vec(), vec![(p[0], 15)]);
    });
}
