//! A settled request's receipt and resolution go with its record, after `RecordRetention`
//! (issue 13, hole 5: they were kept forever); a challenge under way keeps them.

use crate::tests::{assigned_request, bad, commit_and_reveal, good, verdict};
use crate::{mock::*, Disputes, Receipts, Resolutions};
use pallet_agora_escrow::Requests;
use polkadot_sdk::frame_support::{assert_ok, traits::Get};

fn retention() -> u64 {
    <Test as pallet_agora_escrow::Config>::RecordRetention::get()
}

#[test]
fn a_settled_requests_record_and_receipt_stay_through_their_retention_then_go() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        commit_and_reveal(id, &p, &[good(), good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        let due = System::block_number() + retention();
        run_to(due - 1);
        assert!(Requests::<Test>::get(id).is_some() && Receipts::<Test>::get(id).is_some());
        next_block();
        assert!(Requests::<Test>::get(id).is_none());
        assert!(Receipts::<Test>::get(id).is_none());
        assert_eq!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Err(crate::Error::<Test>::UnknownRequest.into()));
    });
}

/// A settled request verifiers could judge, and the block its record falls due.
fn settled_with_verifiers() -> (u64, u64) {
    let (id, p) = assigned_request(2);
    commit_and_reveal(id, &p, &[bad(), bad()]);
    assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
    opt_in_verifiers(3);
    (id, System::block_number() + retention())
}

/// [`settled_with_verifiers`], challenged near the end of its challenge window.
fn challenged_late() -> (u64, u64) {
    let (id, due) = settled_with_verifiers();
    run_to(System::block_number() + 5);
    assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
    (id, due)
}

#[test]
fn a_challenge_keeps_the_record_until_it_is_resolved_then_both_go() {
    new_test_ext(|| {
        let (id, due) = challenged_late();
        // The verifiers are drawn but nobody judges before the retention ends: all is kept.
        run_to(due);
        assert!(Disputes::<Test>::get(id).is_some());
        assert!(Requests::<Test>::get(id).is_some() && Receipts::<Test>::get(id).is_some());
        assert_ok!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id));
        assert!(Resolutions::<Test>::get(id).is_some());
        // Looked at again a retention after it was kept.
        let again = due + retention();
        run_to(again - 1);
        assert!(Requests::<Test>::get(id).is_some() && Resolutions::<Test>::get(id).is_some());
        next_block();
        assert!(Requests::<Test>::get(id).is_none());
        assert!(Receipts::<Test>::get(id).is_none() && Resolutions::<Test>::get(id).is_none());
    });
}

/// Found in review: resolved in the block its record fell due (before `on_idle`), the
/// resolution went in the same block and nobody saw it in state.
#[test]
fn a_resolution_made_in_the_block_its_record_falls_due_stays_a_retention() {
    new_test_ext(|| {
        let (id, due) = challenged_late();
        run_to(due - 1);
        start_next_block();
        assert_ok!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id));
        end_block();
        assert!(Resolutions::<Test>::get(id).is_some() && Requests::<Test>::get(id).is_some());
        run_to(due + retention() - 1);
        assert!(Resolutions::<Test>::get(id).is_some());
        next_block();
        assert!(Resolutions::<Test>::get(id).is_none() && Requests::<Test>::get(id).is_none());
    });
}

#[test]
fn a_resolution_stays_a_retention_after_it_is_made_then_goes_with_the_record() {
    new_test_ext(|| {
        let (id, due) = settled_with_verifiers();
        assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        for v in VERIFIERS {
            assert_ok!(verdict(v, id, &[(bad(), false)]));
        }
        assert!(Resolutions::<Test>::get(id).is_some());
        // Resolved a block after the challenge: younger than a retention when its record falls due.
        run_to(due);
        assert!(Requests::<Test>::get(id).is_some() && Resolutions::<Test>::get(id).is_some());
        run_to(due + retention());
        assert!(Requests::<Test>::get(id).is_none() && Resolutions::<Test>::get(id).is_none());
    });
}

/// Every byte of state outside `System` (whose events the mock never clears).
fn state_bytes() -> usize {
    use polkadot_sdk::sp_io::{hashing::twox_128, storage};
    let system = twox_128(b"System");
    let (mut total, mut key) = (0, Vec::new());
    while let Some(next) = storage::next_key(&key) {
        if !next.starts_with(&system) {
            total += next.len() + storage::get(&next).map_or(0, |value| value.len());
        }
        key = next;
    }
    total
}

/// The figure issue 13 asks for: state per settled request, during its retention and after.
#[test]
fn a_settled_request_leaves_no_state_behind_once_pruned() {
    new_test_ext(|| {
        // A first request settled and pruned, so that what stays per provider (its exposure
        // record) and the queue's bounds exist before the one measured.
        let (id, p) = assigned_request(PROVIDERS.len() as u32);
        commit_and_reveal(id, &p, &[good(); PROVIDERS.len()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        run_to(System::block_number() + retention());
        assert!(Requests::<Test>::get(id).is_none());

        let before = state_bytes();
        let (id, p) = assigned_request(3);
        commit_and_reveal(id, &p, &[good(), good(), good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        let during = state_bytes() - before;
        run_to(System::block_number() + retention());
        let after = state_bytes();
        println!("state per settled k = 3 request: {during} B until pruned, {} B after", after as i64 - before as i64);
        assert!(during > 0);
        assert_eq!(after, before, "a pruned request leaves nothing behind");
    });
}
