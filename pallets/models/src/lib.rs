//! # Model-release registry
//!
//! Publishers register GGUF files as releases of a model family: the sha256 of the bytes (which
//! is also the release id), version, size, architecture, quantisation, licence, the parent
//! release it derives from and a metadata hash. A publisher (or root) can later deprecate or
//! revoke a release; status only moves forward. The full history of every family stays
//! queryable for auditors.
//!
//! Other pallets ask [`Pallet::ensure_servable`] before a release is advertised or requested.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
use polkadot_sdk::frame_system;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmark_helpers;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{FamilyName, ModelRelease, ReleaseId, ReleaseInfo};
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;

    pub type ReleaseOf<T> = ModelRelease<<T as frame_system::Config>::AccountId, BlockNumberFor<T>>;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// How many releases one family may hold (its history is bounded for queries).
        #[pallet::constant]
        type MaxReleasesPerFamily: Get<u32>;
        type WeightInfo: WeightInfo;
    }

    /// Every release ever published, by the sha256 of its GGUF.
    #[pallet::storage]
    pub type Releases<T: Config> = StorageMap<_, Identity, ReleaseId, ReleaseOf<T>>;

    /// The releases of each family, in publication order.
    #[pallet::storage]
    pub type Families<T: Config> =
        StorageMap<_, Blake2_128Concat, FamilyName, BoundedVec<ReleaseId, T::MaxReleasesPerFamily>, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        ReleasePublished { release: ReleaseId, family: FamilyName, publisher: T::AccountId },
        ReleaseDeprecated { release: ReleaseId },
        ReleaseRevoked { release: ReleaseId },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// A release with this sha256 is already registered.
        ReleaseExists,
        /// No release has this sha256.
        UnknownRelease,
        /// The release was revoked and may not be served or requested.
        ReleaseRevoked,
        /// The named parent release does not exist.
        UnknownParent,
        /// A release cannot be its own parent.
        SelfParent,
        /// The family already holds this version.
        VersionExists,
        /// The family holds `MaxReleasesPerFamily` releases.
        FamilyFull,
        /// Family and version must not be empty.
        EmptyName,
        /// A GGUF of zero bytes is not a model.
        ZeroSize,
        /// Only the publisher or root may change a release.
        NotPublisher,
        /// The release is already deprecated.
        AlreadyDeprecated,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Register a GGUF file as a new release of its family.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::publish(T::MaxReleasesPerFamily::get()))]
        pub fn publish(origin: OriginFor<T>, info: ReleaseInfo) -> DispatchResult {
            let publisher = ensure_signed(origin)?;
            Self::do_publish(publisher, info)
        }

        /// Mark a release as superseded. It stays servable.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::deprecate())]
        pub fn deprecate(origin: OriginFor<T>, release: ReleaseId) -> DispatchResult {
            let who = polkadot_sdk::frame_system::ensure_signed_or_root(origin)?;
            Self::do_deprecate(who, release)
        }

        /// Withdraw a release: it may no longer be advertised or requested.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::revoke())]
        pub fn revoke(origin: OriginFor<T>, release: ReleaseId) -> DispatchResult {
            let who = polkadot_sdk::frame_system::ensure_signed_or_root(origin)?;
            Self::do_revoke(who, release)
        }
    }
}
