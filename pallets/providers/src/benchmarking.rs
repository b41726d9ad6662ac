//! Benchmarks (v2) for the provider registry. Manifests carry the most offers and addresses.

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
        register_provider::<T>(&caller, &publish_releases::<T>(1), 10u32.into());

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), T::MinStake::get());

        assert_eq!(Providers::<T>::get(&caller).unwrap().stake, T::MinStake::get().saturating_mul(2u32.into()));
    }

    #[benchmark]
    fn set_online() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(1), 10u32.into());
        Pallet::<T>::do_set_online(caller.clone(), false).unwrap();

        #[extrinsic_call]
        go_online(RawOrigin::Signed(caller.clone()));

        assert_eq!(Providers::<T>::get(&caller).unwrap().status, ProviderStatus::Online);
    }

    #[benchmark]
    fn unbond() {
        let caller: T::AccountId = whitelisted_caller();
        register_provider::<T>(&caller, &publish_releases::<T>(1), 10u32.into());

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

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
