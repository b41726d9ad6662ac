//! Closed requests are pruned after `RecordRetention` (issue 13, hole 5: they were kept forever).

use crate::{migrations, mock::*, ClosedQueue, ClosedQueueBounds, NextRequestId, Requests};
use agora_primitives::RequestStatus;
use polkadot_sdk::frame_support::{
    assert_ok,
    traits::{Get, GetStorageVersion, Hooks, StorageVersion, UncheckedOnRuntimeUpgrade},
    weights::Weight,
};

const RETENTION: u64 = 30;

fn cancelled() -> u64 {
    let id = NextRequestId::<Test>::get();
    assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(1, 15)));
    assert_ok!(Escrow::cancel_request(RuntimeOrigin::signed(CLIENT), id));
    id
}

#[test]
fn a_closed_request_is_forgotten_once_its_retention_has_passed_and_an_open_one_is_kept() {
    new_test_ext(|| {
        let closed = cancelled();
        let open = NextRequestId::<Test>::get();
        assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(1, 15)));
        let due = System::block_number() + RETENTION;
        run_to(due - 1);
        assert!(Requests::<Test>::get(closed).is_some());
        next_block();
        assert!(Requests::<Test>::get(closed).is_none());
        assert_eq!(ClosedQueueBounds::<Test>::get(), (1, 1));
        assert_eq!(ClosedQueue::<Test>::iter().count(), 0);
        run_to(due + 2 * RETENTION);
        assert_eq!(Requests::<Test>::get(open).unwrap().status, RequestStatus::Assigned);
    });
}

#[test]
fn on_idle_forgets_oldest_first_and_only_what_its_weight_allows() {
    new_test_ext(|| {
        let ids = [cancelled(), cancelled(), cancelled()];
        let due = System::block_number() + RETENTION;
        let db: polkadot_sdk::frame_support::weights::RuntimeDbWeight = <Test as polkadot_sdk::frame_system::Config>::DbWeight::get();
        assert_eq!(Escrow::on_idle(due, Weight::zero()), Weight::zero());
        let one = db.reads(1).saturating_add(Escrow::forget_weight()).saturating_add(db.writes(1));
        let used = Escrow::on_idle(due, one);
        assert!(one.all_gte(used), "used {used:?} of {one:?}");
        assert_eq!(ids.map(|id| Requests::<Test>::get(id).is_some()), [false, true, true]);
        // Not due yet: nothing goes, whatever the weight.
        Escrow::on_idle(due - 1, Weight::MAX);
        assert_eq!(ids.map(|id| Requests::<Test>::get(id).is_some()), [false, true, true]);
        Escrow::on_idle(due, Weight::MAX);
        assert!(ids.iter().all(|id| Requests::<Test>::get(id).is_none()));
        assert_eq!(ClosedQueueBounds::<Test>::get(), (3, 3));
    });
}

#[test]
fn version_3_queues_the_requests_closed_before_it() {
    new_test_ext(|| {
        let closed = [cancelled(), cancelled()];
        assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(1, 15)));
        // A version 2 chain: closed requests, no queue.
        let _ = ClosedQueue::<Test>::clear(u32::MAX, None);
        ClosedQueueBounds::<Test>::kill();
        StorageVersion::new(2).put::<Escrow>();
        assert!(Escrow::do_try_state().is_err(), "try_state must see an unqueued closed request");

        migrations::v3::UncheckedMigrateV2ToV3::<Test>::on_runtime_upgrade();
        StorageVersion::new(3).put::<Escrow>();
        assert_eq!(Escrow::on_chain_storage_version(), Escrow::in_code_storage_version());
        assert_eq!(ClosedQueueBounds::<Test>::get(), (0, 2));
        let due = System::block_number() + RETENTION;
        assert_eq!(ClosedQueue::<Test>::get(0), Some((closed[0], due)));
        assert_eq!(ClosedQueue::<Test>::get(1), Some((closed[1], due)));
    });
}
