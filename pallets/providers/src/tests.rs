use crate::{mock::*, Error, Event, HoldReason, Listings, Providers as ProviderRecords};
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
        assert_eq!(Providers::servers_of(&RELEASE), vec![ALICE]);
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
        assert!(Providers::servers_of(&RELEASE).is_empty());
        assert!(!Listings::<Test>::contains_key(RELEASE, PROFILE));
        assert_eq!(Providers::servers_of(&OTHER_RELEASE), vec![ALICE]);
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
                .listings
                .into_iter()
                .map(|c| (c.who, c.weight))
                .collect::<Vec<_>>()
        };
        assert_eq!(weights(20), vec![(ALICE, 5 * 500_000), (BOB, 500_000)]);
        // Price above the client's maximum, wrong profile, too long a context: not eligible.
        assert!(weights(19).is_empty());
        assert!(Providers::eligible(&RELEASE, &[0; 32], 20, 100).listings.is_empty());
        assert!(Providers::eligible(&RELEASE, &PROFILE, 20, 4096).listings.is_empty());
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
        assert!(Providers::eligible(&RELEASE, &PROFILE, 100, 1).listings.is_empty());
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::StillLocked);
        System::set_block_number(11);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::OpenJobs);
        Providers::note_released(&ALICE);
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(ALICE)));
        assert_eq!(held(ALICE), 0);
        assert_eq!(Balances::balance(&ALICE), 10_000);
        assert!(ProviderRecords::<Test>::get(ALICE).is_none());
        assert!(!Listings::<Test>::contains_key(RELEASE, PROFILE));
        assert_noop!(Providers::unbond(RuntimeOrigin::signed(ALICE)), Error::<Test>::NotRegistered);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(ALICE)), Error::<Test>::NotRegistered);
    });
}

#[test]
fn slash_moves_stake_to_treasury() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 1_000));
        let issuance = Balances::total_issuance();
        assert_eq!(Providers::slash(&ALICE, Perbill::from_percent(10)).taken, 100);
        assert_eq!(held(ALICE), 900);
        assert_eq!(ProviderRecords::<Test>::get(ALICE).unwrap().stake, 900);
        assert_eq!(Balances::balance(&TREASURY), 100);
        assert_eq!(Balances::total_issuance(), issuance);
        // Slashing an unknown account or nothing at all moves nothing.
        assert_eq!(Providers::slash(&BOB, Perbill::from_percent(50)).taken, 0);
        assert_eq!(Providers::slash(&ALICE, Perbill::zero()).taken, 0);
        assert_eq!(Providers::slash(&ALICE, Perbill::one()).taken, 900);
        assert_eq!(held(ALICE), 0);
        // Below the minimum stake a provider is no longer drawn.
        assert!(Providers::eligible(&RELEASE, &PROFILE, 100, 1).listings.is_empty());
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

/// The draw reads one packed list per release and profile: each change to a record (stake,
/// status, jobs, reputation, slash, manifest) shows in its listing at once, and `try_state`
/// (after every test) checks that listings and records agree.
#[test]
fn listings_follow_every_change_of_a_record() {
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        let listing = || Listings::<Test>::get(RELEASE, PROFILE).into_iter().find(|l| l.who == ALICE);
        let first = listing().unwrap();
        assert_eq!((first.price_per_1k_input, first.price_per_1k_output, first.max_context), (10, 20, 2048));
        assert_eq!((first.free_jobs, first.weight), (2, 5 * 500_000));
        assert_ok!(Providers::add_stake(RuntimeOrigin::signed(ALICE), 500));
        assert_eq!(listing().unwrap().weight, 10 * 500_000);
        Providers::note_assigned(&ALICE);
        assert_eq!(listing().unwrap().free_jobs, 1);
        Providers::record_outcome(&ALICE, JobOutcome::Agreed);
        let score = ProviderRecords::<Test>::get(ALICE).unwrap().reputation.score_ppm;
        assert_eq!(listing().unwrap().weight, 10 * u128::from(score));
        assert_ok!(Providers::go_offline(RuntimeOrigin::signed(ALICE)));
        assert_eq!(listing().unwrap().free_jobs, 0, "listed, but not drawn while offline");
        assert_ok!(Providers::go_online(RuntimeOrigin::signed(ALICE)));
        Providers::slash(&ALICE, Perbill::from_percent(95));
        assert_eq!(listing().unwrap().free_jobs, 0, "under MinStake it is not drawn");
        // A new profile for the release moves the listing; the old list goes with its last entry.
        let mut moved = manifest(&[RELEASE], 1, 2);
        moved.offers[0].runtime_profile = [9; 32];
        assert_ok!(Providers::update_manifest(RuntimeOrigin::signed(ALICE), moved));
        assert!(!Listings::<Test>::contains_key(RELEASE, PROFILE));
        assert_eq!(Listings::<Test>::get(RELEASE, [9; 32])[0].price_per_1k_output, 2);
    });
}

/// Version 1 kept `ServersOf`; the migration drops it and lists every registered provider.
#[test]
fn migration_to_v2_lists_every_provider_and_drops_the_old_index() {
    use crate::migrations::v2;
    use polkadot_sdk::frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
    new_test_ext(|| {
        assert_ok!(register(ALICE, 500));
        assert_ok!(register(BOB, 100));
        let sorted = || {
            let mut listed = Listings::<Test>::get(RELEASE, PROFILE).into_inner();
            listed.sort_by_key(|l| l.who);
            listed
        };
        let listed = sorted();
        assert_eq!(listed.len(), 2);
        // Back to what version 1 stored.
        let _ = Listings::<Test>::clear(u32::MAX, None);
        v2::ServersOf::<Test>::insert(RELEASE, BoundedVec::truncate_from(vec![ALICE, BOB]));
        StorageVersion::new(1).put::<Providers>();

        v2::MigrateV1ToV2::<Test>::on_runtime_upgrade();

        assert_eq!(Providers::on_chain_storage_version(), 2);
        assert_eq!(v2::ServersOf::<Test>::iter().count(), 0);
        // In the order the records are stored in, which the draw does not depend on.
        assert_eq!(sorted(), listed);
    });
}
