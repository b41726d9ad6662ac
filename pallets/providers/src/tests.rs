use crate::{mock::*, Error, Event, HoldReason, Providers as ProviderRecords, ServersOf};
use agora_primitives::{JobOutcome, ProviderStatus, Reputation};
use polkadot_sdk::frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
};
use polkadot_sdk::sp_runtime::{BoundedVec, Perbill};

fn register(who: u64, stake: u64) -> polkadot_sdk::sp_runtime::DispatchResult {
    Providers::register(RuntimeOrigin::signed(who), stake, manifest(&[RELEASE], 10, 20))
}

fn held(who: u64) -> u64 {
    Balances::balance_on_hold(&HoldReason::ProviderStake.into(), &who)
}

#[test]
fn register_holds_stake_and_indexes_offers() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        assert_eq!(held(ALICE), 500);
        assert_eq!(Balances::balance(&ALICE), 9_500);
        let record = ProviderRecords::<Test>::get(ALICE).unwrap();
        assert_eq!(record.status, ProviderStatus::Online);
        assert_eq!(record.reputation, Reputation::new());
        assert_eq!(ServersOf::<Test>::get(RELEASE).into_inner(), vec![ALICE]);
        System::assert_last_event(Event::Registered { provider: ALICE, stake: 500 }.into());
    });
}

#[test]
fn register_rejects_bad_input() {
    new_test_ext(|| {
        assert_noop!(register(ALICE, MIN_STAKE - 1), Error::<Test>::StakeTooLow);
        assert_noop!(register(POOR, 200), Error::<Test>::InsufficientBalance);
        assert_noop!(
            Providers::register(RuntimeOrigin::signed(ALICE), 500, manifest(&[], 1, 1)),
            Error::<Test>::NoOffers
        );
        assert_noop!(
            Providers::register(RuntimeOrigin::signed(ALICE), 500, manifest(&[RELEASE, RELEASE], 1, 1)),
            Error::<Test>::DuplicateOffer
        );
        assert_noop!(
            Providers::register(RuntimeOrigin::signed(ALICE), 500, manifest(&[[9; 32]], 1, 1)),
            pallet_agora_models::Error::<Test>::UnknownRelease
        );
        let mut m = manifest(&[RELEASE], 1, 1);
        m.max_concurrent_jobs = 0;
        assert_noop!(Providers::register(RuntimeOrigin::signed(ALICE), 500, m), Error::<Test>::ZeroLimit);
        let mut m = manifest(&[RELEASE], 1, 1);
        m.multiaddrs = BoundedVec::new();
        assert_noop!(Providers::register(RuntimeOrigin::signed(ALICE), 500, m), Error::<Test>::NoAddress);
        assert_ok!(Models::revoke(RuntimeOrigin::root(), OTHER_RELEASE));
        assert_noop!(
            Providers::register(RuntimeOrigin::signed(ALICE), 500, manifest(&[OTHER_RELEASE], 1, 1)),
            pallet_agora_models::Error::<Test>::ReleaseRevoked
        );
        assert_ok!(register(ALICE, 500));
        assert_noop!(register(ALICE, 500), Error::<Test>::AlreadyRegistered);
    });
}

#[test]
fn release_index_is_bounded() {
    new_test_ext(|| {
        for who in [ALICE, BOB, CHARLIE] {
            assert_ok!(register(who, 500));
        }
        assert_noop!(register(DAVE, 500), Error::<Test>::TooManyProviders);
        // DAVE can still serve the other release.
        assert_ok!(Providers::register(RuntimeOrigin::signed(DAVE), 500, manifest(&[OTHER_RELEASE], 1, 1)));
    });
}

#[test]
fn update_manifest_moves_the_index() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        assert_ok!(Providers::update_manifest(RuntimeOrigin::signed(ALICE), manifest(&[OTHER_RELEASE], 5, 6)));
        assert!(ServersOf::<Test>::get(RELEASE).is_empty());
        assert!(!ServersOf::<Test>::contains_key(RELEASE));
        assert_eq!(ServersOf::<Test>::get(OTHER_RELEASE).into_inner(), vec![ALICE]);
        assert_eq!(Providers::prices(&ALICE), Some((5, 6)));
        assert_noop!(
            Providers::update_manifest(RuntimeOrigin::signed(BOB), manifest(&[RELEASE], 1, 1)),
            Error::<Test>::NotRegistered
        );
        assert_noop!(
            Providers::update_manifest(RuntimeOrigin::signed(ALICE), manifest(&[[9; 32]], 1, 1)),
            pallet_agora_models::Error::<Test>::UnknownRelease
        );
        System::assert_last_event(Event::ManifestUpdated { provider: ALICE }.into());
    });
}

#[test]
fn add_stake_holds_more() {
    new_test_ext(|| {
        assert_noop!(Providers::add_stake(RuntimeOrigin::signed(ALICE), 5), Error::<Test>::NotRegistered);
        assert_ok!(register(ALICE, 500));
        assert_ok!(Providers::add_stake(RuntimeOrigin::signed(ALICE), 250));
        assert_eq!(held(ALICE), 750);
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().stake, 750);
        assert_noop!(Providers::add_stake(RuntimeOrigin::signed(ALICE), 0), Error::<Test>::NoChange);
        assert_noop!(Providers::add_stake(RuntimeOrigin::signed(ALICE), 1_000_000), Error::<Test>::InsufficientBalance);
        assert_noop!(Providers::add_stake(RuntimeOrigin::signed(ALICE), u64::MAX), Error::<Test>::Overflow);
    });
}

#[test]
fn offline_online_and_eligibility() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        assert_ok!(register(BOB, 100));
        let weights = |max_price| {
            Providers::eligible(&RELEASE, &PROFILE, max_price, 100)
                .into_iter()
                .map(|c| (c.who, c.weight))
                .collect::<Vec<_>>()
        };
        assert_eq!(weights(20), vec![(ALICE, 5 * 500_000), (BOB, 500_000)]);
        // Price above the client's maximum, wrong profile, too long a context: not eligible.
        assert!(weights(19).is_empty());
        assert!(Providers::eligible(&RELEASE, &[0; 32], 20, 100).is_empty());
        assert!(Providers::eligible(&RELEASE, &PROFILE, 20, 4096).is_empty());
        assert_ok!(Providers::go_offline(RuntimeOrigin::signed(ALICE)));
        assert_noop!(Providers::go_offline(RuntimeOrigin::signed(ALICE)), Error::<Test>::NoChange);
        assert_eq!(weights(20), vec![(BOB, 500_000)]);
        assert_ok!(Providers::go_online(RuntimeOrigin::signed(ALICE)));
        assert_noop!(Providers::go_online(RuntimeOrigin::signed(ALICE)), Error::<Test>::NoChange);
        // A provider at its concurrency limit is not drawn.
        Providers::note_assigned(&BOB);
        Providers::note_assigned(&BOB);
        assert_eq!(weights(20), vec![(ALICE, 5 * 500_000)]);
        Providers::note_released(&BOB);
        assert_eq!(weights(20).len(), 2);
        assert_noop!(Providers::go_online(RuntimeOrigin::signed(CHARLIE)), Error::<Test>::NotRegistered);
    });
}

#[test]
fn quote_lists_cheapest_first() {
    new_test_ext(|| {
        assert_ok!(Providers::register(RuntimeOrigin::signed(ALICE), 500, manifest(&[RELEASE], 30, 30)));
        assert_ok!(Providers::register(RuntimeOrigin::signed(BOB), 500, manifest(&[RELEASE], 10, 10)));
        let quotes = Providers::quote(&RELEASE, &PROFILE, 100, 900);
        assert_eq!(quotes.iter().map(|q| (q.provider, q.max_cost)).collect::<Vec<_>>(), vec![(BOB, 10), (ALICE, 30)]);
        assert!(Providers::quote(&RELEASE, &PROFILE, 2000, 900).is_empty());
        assert!(Providers::quote(&[9; 32], &PROFILE, 1, 1).is_empty());
    });
}

#[test]
fn unbond_then_withdraw_after_delay_with_no_open_jobs() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::NotUnbonding);
        Providers::note_assigned(&ALICE);
        assert_ok!(Providers::unbond(RuntimeOrigin::signed(ALICE)));
        System::assert_last_event(Event::Unbonding { provider: ALICE, unlocks_at: 11 }.into());
        assert_noop!(Providers::unbond(RuntimeOrigin::signed(ALICE)), Error::<Test>::Unbonding);
        assert_noop!(Providers::go_online(RuntimeOrigin::signed(ALICE)), Error::<Test>::Unbonding);
        assert!(Providers::eligible(&RELEASE, &PROFILE, 100, 1).is_empty());
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::StillLocked);
        System::set_block_number(11);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::OpenJobs);
        Providers::note_released(&ALICE);
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(ALICE)));
        assert_eq!(held(ALICE), 0);
        assert_eq!(Balances::balance(&ALICE), 10_000);
        assert!(ProviderRecords::<Test>::get(ALICE).is_none());
        assert!(!ServersOf::<Test>::contains_key(RELEASE));
        assert_noop!(Providers::unbond(RuntimeOrigin::signed(ALICE)), Error::<Test>::NotRegistered);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::NotRegistered);
    });
}

#[test]
fn slash_moves_stake_to_treasury() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 1_000));
        let issuance = Balances::total_issuance();
        assert_eq!(Providers::slash(&ALICE, Perbill::from_percent(10)), 100);
        assert_eq!(held(ALICE), 900);
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().stake, 900);
        assert_eq!(Balances::balance(&TREASURY), 100);
        assert_eq!(Balances::total_issuance(), issuance);
        // Slashing an unknown account or nothing at all moves nothing.
        assert_eq!(Providers::slash(&BOB, Perbill::from_percent(50)), 0);
        assert_eq!(Providers::slash(&ALICE, Perbill::zero()), 0);
        assert_eq!(Providers::slash(&ALICE, Perbill::one()), 900);
        assert_eq!(held(ALICE), 0);
        // Below the minimum stake a provider is no longer drawn.
        assert!(Providers::eligible(&RELEASE, &PROFILE, 100, 1).is_empty());
    });
}

#[test]
fn reputation_follows_the_formula() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        Providers::record_outcome(&ALICE, JobOutcome::Agreed);
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().reputation.score_ppm, 525_000);
        Providers::record_outcome(&ALICE, JobOutcome::Wrong);
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().reputation.score_ppm, 393_750);
        Providers::record_outcome(&ALICE, JobOutcome::NoShow);
        let rep = ProviderRecords::<Test>::get(ALICE).unwrap().reputation;
        assert_eq!((rep.score_ppm, rep.agreed, rep.wrong, rep.no_shows), (354_375, 1, 1, 1));
        for _ in 0..1000 {
            Providers::record_outcome(&ALICE, JobOutcome::Wrong);
        }
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().reputation.score_ppm, 1);
        for _ in 0..1000 {
            Providers::record_outcome(&ALICE, JobOutcome::Agreed);
        }
        assert!(ProviderRecords::<Test>::get(ALICE).unwrap().reputation.score_ppm <= Reputation::MAX_PPM);
    });
}

#[test]
fn try_state_catches_stake_drift() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        ProviderRecords::<Test>::mutate(ALICE, |r| r.as_mut().unwrap().stake = 499);
        assert!(Providers::do_try_state().is_err());
        ProviderRecords::<Test>::mutate(ALICE, |r| r.as_mut().unwrap().stake = 500);
    });
}
