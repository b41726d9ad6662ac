//! Benchmarks (v2) for commit, reveal and settlement.

use super::*;
use agora_primitives::{commitment::commitment, Outcome, RequestStatus, MAX_REDUNDANCY};
use pallet_agora_escrow::{benchmark_helpers::assigned_request, Requests};
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_system::RawOrigin;

fn outcome(byte: u8) -> Outcome {
    Outcome { output_hash: [byte; 32], token_count: 500 }
}

const SALT: [u8; 32] = [9; 32];

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn commit() {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, MAX_REDUNDANCY);
        let who = providers[0].clone();
        let hash = commitment(id, &who, &outcome(1), &SALT);

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), id, hash);

        assert!(Commitments::<T>::contains_key(id, &who));
    }

    /// Every commitment is in, so the reveal reads them all to see the phase is open.
    #[benchmark]
    fn reveal() {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, MAX_REDUNDANCY);
        for who in &providers {
            Pallet::<T>::do_commit(who.clone(), id, commitment(id, who, &outcome(1), &SALT)).unwrap();
        }
        let who = providers[0].clone();

        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), id, outcome(1), SALT);

        assert!(Reveals::<T>::contains_key(id, &who));
    }

    /// `k` providers, all revealed; from three on, one of them lies and is slashed.
    #[benchmark]
    fn settle(k: Linear<1, MAX_REDUNDANCY>) {
        let client: T::AccountId = whitelisted_caller();
        let (id, providers) = assigned_request::<T>(&client, k);
        let claimed = |i: usize| if k >= 3 && i == 0 { outcome(2) } else { outcome(1) };
        for (i, who) in providers.iter().enumerate() {
            Pallet::<T>::do_commit(who.clone(), id, commitment(id, who, &claimed(i), &SALT)).unwrap();
        }
        for (i, who) in providers.iter().enumerate() {
            Pallet::<T>::do_reveal(who.clone(), id, claimed(i), SALT).unwrap();
        }

        #[extrinsic_call]
        _(RawOrigin::Signed(client), id);

        assert_eq!(Requests::<T>::get(id).unwrap().status, RequestStatus::Settled);
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
