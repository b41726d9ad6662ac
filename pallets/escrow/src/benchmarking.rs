//! Benchmarks (v2) for the request escrow.

use super::*;
use crate::benchmark_helpers::{assigned_request, params, served_release, until_fresh_randomness};
use agora_primitives::{RequestStatus, MAX_REDUNDANCY};
use pallet_agora_providers::benchmark_helpers::fund;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_system::{self as system, RawOrigin};
use polkadot_sdk::sp_runtime::traits::Saturating;

#[benchmarks]
mod benchmarks {
    use super::*;

    /// `p`: providers indexed for the release, each checked for eligibility.
    #[benchmark]
    fn create_request(p: Linear<1, { T::MaxProvidersPerRelease::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(p);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), params::<T>(release, 1));

        assert_eq!(Requests::<T>::get(0).unwrap().status, RequestStatus::Pending);
    }

    #[benchmark]
    fn cancel_request() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(1);
        Pallet::<T>::do_create(caller.clone(), params::<T>(release, 1)).unwrap();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), 0);

        assert_eq!(Requests::<T>::get(0).unwrap().status, RequestStatus::Cancelled);
    }

    /// The most providers to free.
    #[benchmark]
    fn refund_expired() {
        let caller: T::AccountId = whitelisted_caller();
        let k = MAX_REDUNDANCY.min(T::MaxProvidersPerRelease::get());
        let (id, _) = assigned_request::<T>(&caller, k);
        let request = Requests::<T>::get(id).unwrap();
        let expired = request.reveal_deadline.saturating_add(T::SettleWindow::get()).saturating_add(1u32.into());
        system::Pallet::<T>::set_block_number(expired);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert_eq!(Requests::<T>::get(id).unwrap().status, RequestStatus::Refunded);
    }

    /// One request's draw in `on_initialize`: `p` candidates, the most providers drawn.
    #[benchmark]
    fn draw(p: Linear<1, { T::MaxProvidersPerRelease::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(p);
        let k = p.min(MAX_REDUNDANCY);
        let id = Pallet::<T>::do_create(caller, params::<T>(release, k)).unwrap().request;
        until_fresh_randomness::<T>(system::Pallet::<T>::block_number());

        #[block]
        {
            Pallet::<T>::draw_all();
        }

        assert_eq!(Requests::<T>::get(id).unwrap().providers.len() as u32, k);
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
