//! Benchmarks (v2) for the request escrow.

use super::*;
use crate::benchmark_helpers::{assigned_request, params, served_release, ticket_spec, until_fresh_randomness};
use agora_primitives::{RequestStatus, TicketStatus, MAX_REDUNDANCY};
use pallet_agora_providers::benchmark_helpers::fund;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_support::weights::Weight;
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

    #[benchmark]
    fn deposit() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let amount = 1_000_000u32.into();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), amount);

        assert_eq!(Deposits::<T>::get(&caller), amount);
    }

    #[benchmark]
    fn withdraw() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        Pallet::<T>::do_deposit(caller.clone(), 1_000_000u32.into()).unwrap();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller.clone()), 400_000u32.into());

        assert_eq!(Deposits::<T>::get(&caller), 600_000u32.into());
    }

    /// `n` tickets bought at once; `p` providers listed for the release, each checked.
    #[benchmark]
    fn buy_tickets(n: Linear<1, { T::MaxTicketsPerPurchase::get() }>, p: Linear<2, { T::MaxProvidersPerRelease::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(p);
        let spec = ticket_spec::<T>(release, 2);
        let each = Pallet::<T>::ticket_escrow(&spec).unwrap();
        Pallet::<T>::do_deposit(caller.clone(), each.saturating_mul(n.into())).unwrap();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), spec, n);

        assert_eq!(NextTicketId::<T>::get(), u64::from(n));
    }

    /// One purchase of `n` tickets drawn in `on_initialize` from `p` listed providers, each
    /// ticket drawing the most providers.
    #[benchmark]
    fn draw_tickets(n: Linear<1, { T::MaxTicketsPerPurchase::get() }>, p: Linear<2, { T::MaxProvidersPerRelease::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(p);
        let spec = ticket_spec::<T>(release, p.min(MAX_REDUNDANCY));
        let each = Pallet::<T>::ticket_escrow(&spec).unwrap();
        Pallet::<T>::do_deposit(caller.clone(), each.saturating_mul(n.into())).unwrap();
        Pallet::<T>::do_buy_tickets(caller, spec, n).unwrap();
        until_fresh_randomness::<T>(system::Pallet::<T>::block_number());

        #[block]
        {
            Pallet::<T>::draw_purchases();
        }

        assert_eq!(Tickets::<T>::get(u64::from(n) - 1).unwrap().status, TicketStatus::Drawn);
    }

    /// The most providers to pay a reservation fee.
    #[benchmark]
    fn expire_ticket() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let k = MAX_REDUNDANCY.min(T::MaxProvidersPerRelease::get());
        let release = served_release::<T>(k);
        let spec = ticket_spec::<T>(release, k);
        Pallet::<T>::do_deposit(caller.clone(), Pallet::<T>::ticket_escrow(&spec).unwrap()).unwrap();
        Pallet::<T>::do_buy_tickets(caller.clone(), spec, 1).unwrap();
        until_fresh_randomness::<T>(system::Pallet::<T>::block_number());
        Pallet::<T>::draw_purchases();
        let ticket = Tickets::<T>::get(0).unwrap();
        let expired = ticket.expires_at.saturating_add(T::SettleWindow::get()).saturating_add(1u32.into());
        system::Pallet::<T>::set_block_number(expired);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), 0);

        assert!(Tickets::<T>::get(0).is_none());
    }

    /// One closed request's record pruned in `on_idle`.
    #[benchmark]
    fn forget_request() {
        let caller: T::AccountId = whitelisted_caller();
        fund::<T>(&caller);
        let release = served_release::<T>(1);
        Pallet::<T>::do_create(caller.clone(), params::<T>(release, 1)).unwrap();
        Pallet::<T>::do_cancel(caller, 0).unwrap();
        let due = system::Pallet::<T>::block_number().saturating_add(T::RecordRetention::get());

        #[block]
        {
            Pallet::<T>::forget_due(due, Weight::MAX);
        }

        assert!(Requests::<T>::get(0).is_none());
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
