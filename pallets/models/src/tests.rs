use crate::{mock::*, Error, Event, Families, Releases};
use agora_primitives::ReleaseStatus;
use polkadot_sdk::frame_support::{assert_noop, assert_ok};
use polkadot_sdk::sp_runtime::DispatchError;

fn publish(who: u64, info: agora_primitives::ReleaseInfo) -> polkadot_sdk::sp_runtime::DispatchResult {
    Models::publish(RuntimeOrigin::signed(who), info)
}

#[test]
fn publish_stores_release_and_history() {
    new_test_ext(|| {
        assert_ok!(publish(PUBLISHER, release("smollm2", "1.0", 1, None)));
        System::set_block_number(5);
        assert_ok!(publish(OTHER, release("smollm2", "1.1-ft", 2, Some([1; 32]))));
        let r = Releases::<Test>::get([2; 32]).unwrap();
        assert_eq!(r.publisher, OTHER);
        assert_eq!(r.status, ReleaseStatus::Active);
        assert_eq!(r.published_at, 5);
        assert_eq!(r.info.parent, Some([1; 32]));
        let history = Models::history(b"smollm2");
        assert_eq!(history.iter().map(|r| r.info.sha256[0]).collect::<Vec<_>>(), vec![1, 2]);
        assert!(Models::history(b"other").is_empty());
        assert!(Models::history(&[b'x'; 100]).is_empty());
        System::assert_last_event(
            Event::ReleasePublished { release: [2; 32], family: r.info.family, publisher: OTHER }.into(),
        );
    });
}

#[test]
fn publish_rejects_bad_input() {
    new_test_ext(|| {
        assert_ok!(publish(PUBLISHER, release("f", "1", 1, None)));
        assert_noop!(publish(PUBLISHER, release("f", "2", 1, None)), Error::<Test>::ReleaseExists);
        assert_noop!(publish(PUBLISHER, release("f", "1", 2, None)), Error::<Test>::VersionExists);
        assert_noop!(publish(PUBLISHER, release("f", "2", 2, Some([9; 32]))), Error::<Test>::UnknownParent);
        assert_noop!(publish(PUBLISHER, release("f", "2", 2, Some([2; 32]))), Error::<Test>::SelfParent);
        assert_noop!(publish(PUBLISHER, release("", "2", 2, None)), Error::<Test>::EmptyName);
        assert_noop!(publish(PUBLISHER, release("f", "", 2, None)), Error::<Test>::EmptyName);
        let mut empty = release("f", "2", 2, None);
        empty.size_bytes = 0;
        assert_noop!(publish(PUBLISHER, empty), Error::<Test>::ZeroSize);
        assert_noop!(
            Models::publish(RuntimeOrigin::root(), release("f", "2", 2, None)),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn family_is_bounded() {
    new_test_ext(|| {
        for i in 0..4u8 {
            assert_ok!(publish(PUBLISHER, release("f", &format!("{i}"), i + 1, None)));
        }
        assert_noop!(publish(PUBLISHER, release("f", "9", 9, None)), Error::<Test>::FamilyFull);
        // Other families are unaffected.
        assert_ok!(publish(PUBLISHER, release("g", "9", 9, None)));
        assert_eq!(Families::<Test>::get(release("f", "0", 0, None).family).len(), 4);
    });
}

#[test]
fn deprecate_and_revoke_move_forward_only() {
    new_test_ext(|| {
        assert_ok!(publish(PUBLISHER, release("f", "1", 1, None)));
        assert_ok!(Models::ensure_servable(&[1; 32]));
        System::set_block_number(3);
        assert_ok!(Models::deprecate(RuntimeOrigin::signed(PUBLISHER), [1; 32]));
        System::assert_last_event(Event::ReleaseDeprecated { release: [1; 32] }.into());
        assert_eq!(Releases::<Test>::get([1; 32]).unwrap().status_changed_at, 3);
        assert_ok!(Models::ensure_servable(&[1; 32]));
        assert_noop!(
            Models::deprecate(RuntimeOrigin::signed(PUBLISHER), [1; 32]),
            Error::<Test>::AlreadyDeprecated
        );
        assert_ok!(Models::revoke(RuntimeOrigin::signed(PUBLISHER), [1; 32]));
        System::assert_last_event(Event::ReleaseRevoked { release: [1; 32] }.into());
        assert_noop!(Models::ensure_servable(&[1; 32]), Error::<Test>::ReleaseRevoked);
        assert_noop!(Models::revoke(RuntimeOrigin::signed(PUBLISHER), [1; 32]), Error::<Test>::ReleaseRevoked);
        assert_noop!(
            Models::deprecate(RuntimeOrigin::signed(PUBLISHER), [1; 32]),
            Error::<Test>::ReleaseRevoked
        );
        // A revoked release can still be a parent: lineage is history, not endorsement.
        assert_ok!(publish(PUBLISHER, release("f", "2", 2, Some([1; 32]))));
    });
}

#[test]
fn only_publisher_or_root_changes_a_release() {
    new_test_ext(|| {
        assert_ok!(publish(PUBLISHER, release("f", "1", 1, None)));
        assert_ok!(publish(PUBLISHER, release("f", "2", 2, None)));
        assert_noop!(Models::deprecate(RuntimeOrigin::signed(OTHER), [1; 32]), Error::<Test>::NotPublisher);
        assert_noop!(Models::revoke(RuntimeOrigin::signed(OTHER), [1; 32]), Error::<Test>::NotPublisher);
        assert_ok!(Models::revoke(RuntimeOrigin::root(), [1; 32]));
        assert_ok!(Models::deprecate(RuntimeOrigin::root(), [2; 32]));
        assert_noop!(Models::revoke(RuntimeOrigin::none(), [2; 32]), DispatchError::BadOrigin);
    });
}

#[test]
fn unknown_release_is_named() {
    new_test_ext(|| {
        assert_noop!(Models::deprecate(RuntimeOrigin::root(), [7; 32]), Error::<Test>::UnknownRelease);
        assert_noop!(Models::revoke(RuntimeOrigin::signed(PUBLISHER), [7; 32]), Error::<Test>::UnknownRelease);
        assert_noop!(Models::ensure_servable(&[7; 32]), Error::<Test>::UnknownRelease);
    });
}

#[test]
fn try_state_catches_a_broken_index() {
    new_test_ext(|| {
        assert_ok!(publish(PUBLISHER, release("f", "1", 1, None)));
        Families::<Test>::remove(release("f", "1", 1, None).family);
        assert!(Models::do_try_state().is_err());
        // Restore so the harness's final check passes.
        Families::<Test>::insert(release("f", "1", 1, None).family, polkadot_sdk::sp_runtime::BoundedVec::truncate_from(vec![[1u8; 32]]));
    });
}
