//! Benchmarks (v2) for the provider registry. Manifests carry the most offers and addresses:
//! a provider's own calls rewrite all its listings.

use super::*;
use crate::benchmark_helpers::{fund, manifest, register_provider};
use agora_primitives::{MaxOffers, ProviderStatus};
use pallet_agora_models::benchmark_helpers::publish_releases;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_system::{self as system, RawOrigin};
use polkadot_sdk::sp_runtime::traits::Saturating;

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let releases = publish_releases::<T>(<MaxOffers as Get<u32>>::get());
        let m = manifest::<T>(&releases, 10u32.into());

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), T::MinStake::get(), m);

        assert!(Providers::<T>::contains_key(&caller));
    }

    /// Moves every offer: all old index entries are left and all new ones joined.
    #[benchmark]
    fn update_manifest() {
        let caller: T::AccountId = whitelisted_caller();
        let releases = publish_releases::<T>(2 * <MaxOffers as Get<u32>>::get());
        let (old, new) = releases.split_at(<MaxOffers as Get<u32>>::get() as usize);
        register_provider::<T>(&caller, old, 10u32.into());
        let m = manifest::<T>(new, 20u32.into());

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), m);

        assert_eq!(Providers::<T>::get(&caller).unwrap().manifest.price_per_1k_input, 20u32.into());
    }

    #[benchmark]
    fn add_stake() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(<MaxOffers as Get<u32>>::get()), 10u32.into());

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), T::MinStake::get());

        assert_eq!(Providers::<T>::get(&caller).unwrap().stake, T::MinStake::get().saturating_mul(2u32.into()));
    }

    #[benchmark]
    fn set_online() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(<MaxOffers as Get<u32>>::get()), 10u32.into());
        Pallet::<T>::do_set_online(caller.clone(), false).unwrap();

        #[extrinsic_call]
        go_online(RawOrigin::Signed(caller.clone()));

        assert_eq!(Providers::<T>::get(&caller).unwrap().status, ProviderStatus::Online);
    }

    #[benchmark]
    fn unbond() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(<MaxOffers as Get<u32>>::get()), 10u32.into());

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()));

        assert!(matches!(Providers::<T>::get(&caller).unwrap().status, ProviderStatus::Unbonding { .. }));
    }

    #[benchmark]
    fn withdraw() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(<MaxOffers as Get<u32>>::get()), 10u32.into());
        Pallet::<T>::do_unbond(caller.clone()).unwrap();
        let unlocked = system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
        system::Pallet::<T>::set_block_number(unlocked);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()));

        assert!(!Providers::<T>::contains_key(&caller));
    }

    /// A record change rewriting `l` listings, each in a full list: what a provider with `l`
    /// offers costs every call that changes its record, over the one listing those calls'
    /// benchmarks measure.
    #[benchmark]
    fn relist(l: Linear<1, { <MaxOffers as Get<u32>>::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        let releases = publish_releases::<T>(l);
        register_provider::<T>(&caller, &releases, 10u32.into());
        let mut record = Providers::<T>::get(&caller).expect("registered");
        let others = T::MaxProvidersPerRelease::get().saturating_sub(1);
        let filler = Pallet::<T>::listing(&caller, &record);
        for release in releases.iter() {
            Listings::<T>::mutate(release, crate::benchmark_helpers::PROFILE, |listings| {
                for i in 0..others {
                    let _ = listings.try_push(Listing { who: account("filler", i, 0), ..filler.clone() });
                }
            });
        }
        record.open_jobs = 1;

        #[block]
        {
            let _ = Pallet::<T>::store(&caller, record);
        }

        let listed = Listings::<T>::get(releases[0], crate::benchmark_helpers::PROFILE);
        assert_eq!(listed.len() as u32, T::MaxProvidersPerRelease::get());
        assert!(listed.iter().any(|listing| listing.who == caller && listing.free_jobs == filler.free_jobs - 1));
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
