//! Benchmarks (v2) for the model registry.

use super::*;
use crate::benchmark_helpers::release_info;
use agora_primitives::ReleaseStatus;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_system::RawOrigin;

#[benchmarks]
mod benchmarks {
    use super::*;

    /// `n` releases already in the family, each read to check the new version is unused.
    #[benchmark]
    fn publish(n: Linear<0, { T::MaxReleasesPerFamily::get().saturating_sub(1) }>) {
        let caller: T::AccountId = whitelisted_caller();
        let family = [b'f'; 64];
        for i in 0..n {
            Pallet::<T>::do_publish(caller.clone(), release_info(&family, i, None)).unwrap();
        }
        let parent = (n > 0).then(|| release_info(&family, 0, None).sha256);
        let info = release_info(&family, n, parent);
        let id = info.sha256;

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), info);

        assert!(Releases::<T>::contains_key(id));
    }

    #[benchmark]
    fn deprecate() {
        let caller: T::AccountId = whitelisted_caller();
        let info = release_info(b"f", 1, None);
        let id = info.sha256;
        Pallet::<T>::do_publish(caller.clone(), info).unwrap();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert_eq!(Releases::<T>::get(id).unwrap().status, ReleaseStatus::Deprecated);
    }

    #[benchmark]
    fn revoke() {
        let caller: T::AccountId = whitelisted_caller();
        let info = release_info(b"f", 1, None);
        let id = info.sha256;
        Pallet::<T>::do_publish(caller.clone(), info).unwrap();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);

        assert_eq!(Releases::<T>::get(id).unwrap().status, ReleaseStatus::Revoked);
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::bench_ext(), crate::mock::Test);
}
