//! # Provider registry
//!
//! A provider registers with a stake (held under [`HoldReason::ProviderStake`]) and a signed
//! capability manifest: where to reach it (libp2p PeerId and multiaddrs), which releases it
//! serves under which runtime profile, its prices, limits, measured speed, hardware class and
//! settlement key. It can go offline and online, add stake, and leave by unbonding: after
//! `UnbondingDelay` blocks, with no job open and nothing it was paid for still open to a
//! challenge or a dispute ([`Exposure`]), the stake is released.
//!
//! The escrow and verifier pallets use this pallet's interface: [`Pallet::eligible`] to draw
//! providers (from [`Listings`], a packed index the draw reads instead of full records), [`Pallet::note_assigned`]/[`Pallet::note_released`] to count open jobs,
//! [`Pallet::slash`] to punish, and [`Pallet::record_outcome`] to move reputation (the formula
//! is [`agora_primitives::Reputation::record`]).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
use polkadot_sdk::frame_system;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmark_helpers;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
pub use impls::Candidate;
mod listings;
pub use listings::ListingOf;
pub mod migrations;
mod types;
pub use types::{Eligible, Exposure, Listing, Slashed};
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{CapabilityManifest, Hash256, ProviderRecord, ReleaseId};
    use polkadot_sdk::frame_support::{
        pallet_prelude::*,
        traits::fungible::{Inspect, Mutate, MutateHold},
    };
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::traits::Zero;

    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
    pub type ManifestOf<T> = CapabilityManifest<BalanceOf<T>>;
    pub type ProviderOf<T> = ProviderRecord<BalanceOf<T>, BlockNumberFor<T>>;

    /// 1: [`Exposure`] added (no migration: an absent entry is no exposure).
    /// 2: [`Listings`] replace `ServersOf` ([`migrations::v2`]).
    pub(crate) const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> + pallet_agora_models::Config
    {
        type Currency: Mutate<Self::AccountId> + MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
        type RuntimeHoldReason: From<HoldReason>;
        /// Stake a provider must keep held to be registered and drawn.
        #[pallet::constant]
        type MinStake: Get<BalanceOf<Self>>;
        /// Blocks between `unbond` and `withdraw`, so late slashes still find the stake.
        #[pallet::constant]
        type UnbondingDelay: Get<BlockNumberFor<Self>>;
        /// Most providers listed under one release and runtime profile (and so one draw's work).
        #[pallet::constant]
        type MaxProvidersPerRelease: Get<u32>;
        /// Where slashed stake goes.
        type Treasury: Get<Self::AccountId>;
        type WeightInfo: WeightInfo;
    }

    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A provider's stake: slashable while it is registered.
        ProviderStake,
    }

    #[pallet::storage]
    pub type Providers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, ProviderOf<T>>;

    /// For each release and runtime profile, a [`Listing`] of each provider offering it: all a
    /// draw reads.
    #[pallet::storage]
    pub type Listings<T: Config> = StorageDoubleMap<
        _,
        Identity,
        ReleaseId,
        Identity,
        Hash256,
        BoundedVec<ListingOf<T>, T::MaxProvidersPerRelease>,
        ValueQuery,
    >;

    /// What still holds each stake after its jobs closed: challengeable results, open disputes.
    #[pallet::storage]
    pub type Exposures<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Exposure<BlockNumberFor<T>>, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        Registered { provider: T::AccountId, stake: BalanceOf<T> },
        ManifestUpdated { provider: T::AccountId },
        StakeAdded { provider: T::AccountId, amount: BalanceOf<T> },
        WentOffline { provider: T::AccountId },
        WentOnline { provider: T::AccountId },
        Unbonding { provider: T::AccountId, unlocks_at: BlockNumberFor<T> },
        Withdrawn { provider: T::AccountId, stake: BalanceOf<T> },
        Slashed { provider: T::AccountId, amount: BalanceOf<T> },
    }

    #[pallet::error]
    pub enum Error<T> {
        AlreadyRegistered,
        NotRegistered,
        /// The stake is below `MinStake`.
        StakeTooLow,
        /// The account cannot hold that much.
        InsufficientBalance,
        /// A manifest must offer at least one release.
        NoOffers,
        /// The manifest offers the same release twice.
        DuplicateOffer,
        /// `max_context` and `max_concurrent_jobs` must be positive.
        ZeroLimit,
        /// The manifest needs a PeerId and at least one multiaddr.
        NoAddress,
        /// So many providers already offer this release under this runtime profile.
        TooManyProviders,
        /// The provider is unbonding and can no longer go online.
        Unbonding,
        /// Only an unbonding provider can withdraw.
        NotUnbonding,
        /// The unbonding delay has not passed.
        StillLocked,
        /// The provider still has assigned requests that are not settled.
        OpenJobs,
        /// A result the provider was paid for can still be challenged, or a dispute it is party
        /// to is open: withdraw after the block `Exposures` names and once its disputes close.
        StillSlashable,
        /// The provider is already in that state.
        NoChange,
        /// Adding stake overflowed.
        Overflow,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(T::UnbondingDelay::get() > Zero::zero(), "UnbondingDelay must be positive: late slashes need a stake to find");
            assert!(T::MaxProvidersPerRelease::get() > 0, "MaxProvidersPerRelease must be positive");
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Stake and advertise. The stake is held, not transferred.
        #[pallet::call_index(0)]
        #[pallet::weight(<T as Config>::WeightInfo::register())]
        pub fn register(origin: OriginFor<T>, stake: BalanceOf<T>, manifest: ManifestOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_register(who, stake, manifest)
        }

        /// Replace the manifest (new prices, releases, addresses, measured speed).
        #[pallet::call_index(1)]
        #[pallet::weight(<T as Config>::WeightInfo::update_manifest())]
        pub fn update_manifest(origin: OriginFor<T>, manifest: ManifestOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_update_manifest(who, manifest)
        }

        #[pallet::call_index(2)]
        #[pallet::weight(<T as Config>::WeightInfo::add_stake())]
        pub fn add_stake(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_add_stake(who, amount)
        }

        /// Stop being drawn for new requests; open jobs continue.
        #[pallet::call_index(3)]
        #[pallet::weight(<T as Config>::WeightInfo::set_online())]
        pub fn go_offline(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_set_online(who, false)
        }

        #[pallet::call_index(4)]
        #[pallet::weight(<T as Config>::WeightInfo::set_online())]
        pub fn go_online(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_set_online(who, true)
        }

        /// Start leaving: no new work; the stake stays slashable for `UnbondingDelay` blocks.
        #[pallet::call_index(5)]
        #[pallet::weight(<T as Config>::WeightInfo::unbond())]
        pub fn unbond(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_unbond(who)
        }

        /// Release the stake and leave the registry.
        #[pallet::call_index(6)]
        #[pallet::weight(<T as Config>::WeightInfo::withdraw())]
        pub fn withdraw(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_withdraw(who)
        }
    }
}
