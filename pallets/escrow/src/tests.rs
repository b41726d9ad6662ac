use crate::{impls::weighted_sample, mock::*, AwaitingDraw, Error, Event, HoldReason, Requests};
use agora_primitives::RequestStatus;
use pallet_agora_providers::Candidate;
use polkadot_sdk::frame_support::{
    assert_noop, assert_ok,
    traits::{
        fungible::{Inspect, InspectHold},
        Hooks, Randomness,
    },
};

fn create(k: u32, max_price: u64) -> polkadot_sdk::sp_runtime::DispatchResult {
    Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(k, max_price)).map(|_| ()).map_err(|e| e.error)
}

fn held(who: u64) -> u64 {
    Balances::balance_on_hold(&HoldReason::RequestEscrow.into(), &who)
}

fn open_jobs(who: u64) -> u32 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().open_jobs
}

#[test]
fn create_holds_k_times_max_cost_then_draws_next_block() {
    new_test_ext(|| {
        assert_ok!(create(3, 15));
        // max cost = (1000 + 1000) × 15 / 1000 = 30; k = 3.
        assert_eq!(held(CLIENT), 90);
        System::assert_last_event(Event::RequestCreated { request: 0, client: CLIENT, escrow: 90 }.into());
        let r = Requests::<Test>::get(0).unwrap();
        assert_eq!((r.status, r.escrow, r.providers.len()), (RequestStatus::Pending, 90, 0));
        assert_eq!(AwaitingDraw::<Test>::get().into_inner(), vec![0]);

        next_block();
        let r = Requests::<Test>::get(0).unwrap();
        assert_eq!(r.status, RequestStatus::Assigned);
        assert_eq!(r.providers.len(), 3);
        let mut distinct = r.providers.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert!(r.prices.iter().all(|p| *p == (PRICE, PRICE)));
        assert_eq!((r.commit_deadline, r.reveal_deadline), (2 + 3, 2 + 3 + 5));
        for p in r.providers.iter() {
            assert_eq!(open_jobs(*p), 1);
        }
        assert!(AwaitingDraw::<Test>::get().is_empty());
    });
}

#[test]
fn create_rejects_bad_input_and_moves_nothing() {
    new_test_ext(|| {
        let before = Balances::balance(&CLIENT);
        let mut p = params(1, 15);
        p.release = [9; 32];
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), pallet_agora_models::Error::<Test>::UnknownRelease);
        assert_noop!(create(0, 15), Error::<Test>::BadRedundancy);
        assert_noop!(create(agora_primitives::MAX_REDUNDANCY + 1, 15), Error::<Test>::BadRedundancy);
        assert_noop!(create(5, 15), Error::<Test>::NotEnoughProviders);
        assert_noop!(create(1, PRICE - 1), Error::<Test>::NotEnoughProviders);
        let mut p = params(1, 15);
        p.prompt_tokens = 0;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), Error::<Test>::ZeroTokens);
        let mut p = params(1, 15);
        p.max_output_tokens = 0;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), Error::<Test>::ZeroTokens);
        let mut p = params(1, 15);
        p.commit_blocks = 1;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p.clone()), Error::<Test>::BadCommitWindow);
        p.commit_blocks = 51;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), Error::<Test>::BadCommitWindow);
        let mut p = params(8, u64::MAX);
        p.prompt_tokens = u32::MAX;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), Error::<Test>::PriceOverflow);
        // k × max cost overflows even though one provider's max cost fits.
        let mut p = params(4, u64::MAX / 1500);
        p.prompt_tokens = 1000;
        assert_noop!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), p), Error::<Test>::PriceOverflow);
        assert_noop!(
            Escrow::create_request(RuntimeOrigin::signed(POOR_CLIENT), params(3, 15)),
            Error::<Test>::InsufficientBalance
        );
        assert_ok!(Models::revoke(RuntimeOrigin::root(), RELEASE));
        assert_noop!(create(1, 15), pallet_agora_models::Error::<Test>::ReleaseRevoked);
        assert_eq!(Balances::balance(&CLIENT), before);
    });
}

#[test]
fn a_block_takes_a_bounded_number_of_requests() {
    new_test_ext(|| {
        for _ in 0..3 {
            assert_ok!(create(1, 15));
        }
        assert_noop!(create(1, 15), Error::<Test>::TooManyRequests);
        next_block();
        assert_ok!(create(1, 15));
        assert_eq!(Requests::<Test>::get(2).unwrap().status, RequestStatus::Assigned);
    });
}

#[test]
fn cancel_only_by_client_before_draw() {
    new_test_ext(|| {
        assert_ok!(create(2, 15));
        assert_noop!(Escrow::cancel_request(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotClient);
        assert_noop!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), 7), Error::<Test>::UnknownRequest);
        assert_ok!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), 0));
        assert_eq!(held(CLIENT), 0);
        assert_eq!(Requests::<Test>::get(0).unwrap().status, RequestStatus::Cancelled);
        assert!(AwaitingDraw::<Test>::get().is_empty());
        assert_noop!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), 0), Error::<Test>::NotPending);
        assert_ok!(create(2, 15));
        next_block();
        assert_noop!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), 1), Error::<Test>::NotPending);
    });
}

#[test]
fn draw_refunds_when_providers_left() {
    new_test_ext(|| {
        assert_ok!(create(3, 15));
        for p in &PROVIDERS[..2] {
            assert_ok!(Providers::go_offline(RuntimeOrigin::signed(*p)));
        }
        next_block();
        assert_eq!(Requests::<Test>::get(0).unwrap().status, RequestStatus::Refunded);
        assert_eq!(held(CLIENT), 0);
        System::assert_last_event(Event::AssignmentFailed { request: 0 }.into());
    });
}

#[test]
fn refund_expired_after_settle_window_only() {
    new_test_ext(|| {
        assert_ok!(create(2, 15));
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotOpen);
        next_block();
        let r = Requests::<Test>::get(0).unwrap();
        let expires = r.reveal_deadline + 10;
        System::set_block_number(expires);
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotExpired);
        System::set_block_number(expires + 1);
        assert_ok!(Escrow::refund_expired(RuntimeOrigin::signed(PUBLISHER), 0));
        System::assert_last_event(Event::RequestRefunded { request: 0, amount: 60 }.into());
        assert_eq!(held(CLIENT), 0);
        assert!(r.providers.iter().all(|p| open_jobs(*p) == 0));
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotOpen);
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(PUBLISHER), 9), Error::<Test>::UnknownRequest);
    });
}

#[test]
fn pay_and_close_conserve_escrow() {
    new_test_ext(|| {
        assert_ok!(create(2, 15));
        next_block();
        let r = Requests::<Test>::get(0).unwrap();
        let winner = r.providers[0];
        let before = Balances::balance(&winner);
        assert_noop!(Escrow::pay(0, &winner, 61), Error::<Test>::InsufficientBalance);
        assert_ok!(Escrow::pay(0, &winner, 20));
        assert_eq!(Balances::balance(&winner), before + 20);
        assert_eq!(held(CLIENT), 40);
        assert_eq!(Requests::<Test>::get(0).unwrap().escrow, 40);
        // A dispute keeps the escrow held, and is not closed by expiry.
        assert_ok!(Escrow::mark(0, RequestStatus::Disputed));
        assert_noop!(Escrow::mark(0, RequestStatus::Disputed), Error::<Test>::NotOpen);
        assert_noop!(Escrow::close(0, RequestStatus::Disputed), Error::<Test>::NotOpen);
        assert_eq!(held(CLIENT), 40);
        System::set_block_number(100);
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), 0), Error::<Test>::NotOpen);
        assert_eq!(Escrow::close(0, RequestStatus::Settled).map(|closed| closed.refund), Ok(40));
        assert_eq!(held(CLIENT), 0);
        assert_noop!(Escrow::pay(0, &winner, 1), Error::<Test>::NotOpen);
        assert_noop!(Escrow::close(0, RequestStatus::Settled), Error::<Test>::NotOpen);
        assert_noop!(Escrow::pay(5, &winner, 1), Error::<Test>::UnknownRequest);
    });
}

#[test]
fn weighted_sample_is_distinct_and_favours_weight() {
    let mut heavy_first = 0;
    for seed in 0u32..2000 {
        let mut candidates = vec![
            Candidate { who: 1u8, weight: 9 },
            Candidate { who: 2u8, weight: 1 },
            Candidate { who: 3u8, weight: 0 },
        ];
        let chosen = weighted_sample(&mut candidates, 2, &seed.to_le_bytes());
        assert_eq!(chosen.len(), 2);
        assert_ne!(chosen[0], chosen[1]);
        if chosen[0] == 1 {
            heavy_first += 1;
        }
    }
    // Weight 9 of 10 (zero counts as 1, so 9 of 11): expect about 1636 of 2000.
    assert!((1500..1780).contains(&heavy_first), "heavy first {heavy_first} times");
    let mut few = vec![Candidate { who: 1u8, weight: 1 }];
    assert_eq!(weighted_sample(&mut few, 3, b"s"), vec![1]);
}

/// Hole: the draw used randomness that was known before the request's block was built, so the
/// author of that block (or a client who could predict it) knew the providers in advance. With
/// the dev chain's source (a seed read in block n became known in block n - 1), the draw waits
/// for the first seed that became known after the request's block.
#[test]
fn the_draw_waits_for_randomness_nobody_knew_when_the_request_was_included() {
    new_test_ext(|| {
        RandomnessLag::set(1);
        let included = System::block_number();
        assert_ok!(create(2, 10));
        next_block();
        assert_eq!(TestRandomness::random(b"").1, included, "this block's seed was known in the request's block");
        assert_eq!(Requests::<Test>::get(0).unwrap().status, RequestStatus::Pending);
        assert!(AwaitingDraw::<Test>::get().contains(&0));
        next_block();
        assert!(TestRandomness::random(b"").1 > included);
        let request = Requests::<Test>::get(0).unwrap();
        assert_eq!(request.status, RequestStatus::Assigned);
        assert_eq!(request.providers.len(), 2);
        assert!(AwaitingDraw::<Test>::get().is_empty());
    });
}

/// A source that stalls holds requests in the queue, never drops them; a full queue refuses new
/// ones by name, and a waiting request can still be cancelled.
#[test]
fn a_stalled_randomness_source_queues_requests_without_losing_them() {
    new_test_ext(|| {
        RandomnessLag::set(100);
        for _ in 0..3 {
            assert_ok!(create(1, 10));
            next_block();
        }
        assert_noop!(create(1, 10), Error::<Test>::TooManyRequests);
        assert_ok!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), 1));
        assert_eq!(held(CLIENT), 2 * 20);
        RandomnessLag::set(0);
        next_block();
        assert_eq!(Requests::<Test>::get(0).unwrap().status, RequestStatus::Assigned);
        assert_eq!(Requests::<Test>::get(1).unwrap().status, RequestStatus::Cancelled);
        assert_eq!(Requests::<Test>::get(2).unwrap().status, RequestStatus::Assigned);
    });
}

/// Issue 13: the draw read every full provider record of the release (317 KB of proof on the
/// runtime for 64 full manifests). It reads the release and profile's packed listings, and
/// then only the records of the providers it draws.
#[test]
fn a_draw_proves_the_listings_and_the_drawn_records_only() {
    use codec::Encode;
    let mut ext = test_ext();
    let record_size = ext.execute_with(|| {
        for p in PROVIDERS {
            assert_ok!(Providers::update_manifest(RuntimeOrigin::signed(p), full_manifest(PRICE)));
        }
        assert_ok!(create(1, PRICE));
        System::set_block_number(2);
        pallet_agora_providers::Providers::<Test>::get(PROVIDERS[0]).unwrap().encoded_size()
    });
    ext.commit_all().unwrap();
    let (_, proof) = ext.execute_and_prove(|| {
        Escrow::on_initialize(2);
    });
    ext.execute_with(|| assert_eq!(Requests::<Test>::get(0).unwrap().status, RequestStatus::Assigned));
    let proof_size = proof.encoded_size();
    // Reading all four records (as the draw did) proves at least 4 × record_size; the drawn
    // record, the request and the listings of four come to under 3 ×.
    assert!(record_size > 1_000, "the fixture's records are full: {record_size} bytes");
    assert!(proof_size < 3 * record_size, "the draw proved {proof_size} bytes; a record is {record_size}");
}
