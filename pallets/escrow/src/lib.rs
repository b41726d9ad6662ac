//! # Request escrow
//!
//! A client creates a request: the release and runtime profile, the prompt's hash and token
//! count, the output limit, the most it pays per 1k tokens, the redundancy `k`, sampling
//! parameters and the commit window. The pallet holds `k ×` the maximum cost under
//! [`HoldReason::RequestEscrow`] and draws `k` distinct eligible providers at random, weighted
//! by stake × reputation, in the first block whose randomness (`Config::Randomness`) became
//! known after the block that included the request ([`Pallet::fresh_seed`], the `Randomness`
//! trait's own contract). So neither the client nor the author of the request's block can
//! choose its providers by timing. The verifier pallet draws its audits and verifiers the same
//! way.
//!
//! The client may cancel before the draw. Once drawn, the verifier pallet settles the request
//! through [`Pallet::pay`] and [`Pallet::close`], or holds it open ([`Pallet::mark`]) for its
//! spot-check draw or while re-scoring verifiers judge it; if nobody settles an
//! assigned request within `SettleWindow` blocks after the reveal deadline, anyone may return
//! the escrow with `refund_expired`.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use impls::weighted_sample;
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

/// Told when a request closes (settled, refunded, cancelled, or parked as disputed), so pallets
/// keeping per-request state can drop it. The verifier pallet implements it for its
/// commitments and reveals; the runtime wires it in as `OnClose`.
pub trait OnRequestClosed {
    fn on_request_closed(request: agora_primitives::RequestId);
}

impl OnRequestClosed for () {
    fn on_request_closed(_: agora_primitives::RequestId) {}
}

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{Request, RequestId, RequestParams};
    use pallet_agora_providers::BalanceOf;
    use polkadot_sdk::frame_support::{pallet_prelude::*, traits::Randomness};
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::traits::Zero;

    pub type RequestOf<T> =
        Request<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
    pub type ParamsOf<T> = RequestParams<BalanceOf<T>, BlockNumberFor<T>>;

    /// 1: requests wait in `AwaitingDraw` for fresh randomness; `RequestStatus::AwaitingAudit`
    /// (no migration: appended variant, same encoding of the others).
    const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>>
        + pallet_agora_providers::Config<RuntimeHoldReason: From<HoldReason>>
    {
        /// Source of every draw (providers here; audits and verifiers in the verifier pallet).
        /// Its reported block must be the one from which its output was determinable: a seed is
        /// used only for requests included before that block. Production: the relay chain's
        /// per-block BABE VRF output from the relay state proof; dev: the parent block's hash.
        type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
        #[pallet::constant]
        type MinCommitBlocks: Get<BlockNumberFor<Self>>;
        #[pallet::constant]
        type MaxCommitBlocks: Get<BlockNumberFor<Self>>;
        /// Blocks after the commit deadline in which reveals are accepted.
        #[pallet::constant]
        type RevealWindow: Get<BlockNumberFor<Self>>;
        /// Blocks after the reveal deadline in which settlement must happen before anyone can
        /// return the escrow to the client.
        #[pallet::constant]
        type SettleWindow: Get<BlockNumberFor<Self>>;
        /// How many requests may wait for their draw at once (two blocks' worth on the dev
        /// chain, whose randomness arrives one block after the request's block).
        #[pallet::constant]
        type MaxAssignmentsPerBlock: Get<u32>;
        /// Cleans up other pallets' per-request state when a request closes.
        type OnClose: OnRequestClosed;
        type WeightInfo: WeightInfo;
    }

    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A client's payment for an open request.
        RequestEscrow,
    }

    #[pallet::storage]
    pub type NextRequestId<T> = StorageValue<_, RequestId, ValueQuery>;

    #[pallet::storage]
    pub type Requests<T: Config> = StorageMap<_, Twox64Concat, RequestId, RequestOf<T>>;

    /// Requests waiting for randomness that became known after their block.
    #[pallet::storage]
    pub type AwaitingDraw<T: Config> = StorageValue<_, BoundedVec<RequestId, T::MaxAssignmentsPerBlock>, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        RequestCreated { request: RequestId, client: T::AccountId, escrow: BalanceOf<T> },
        RequestAssigned {
            request: RequestId,
            providers: BoundedVec<T::AccountId, agora_primitives::MaxRedundancy>,
            commit_deadline: BlockNumberFor<T>,
            reveal_deadline: BlockNumberFor<T>,
        },
        /// Too few providers were eligible at draw time; the escrow went back.
        AssignmentFailed { request: RequestId },
        RequestCancelled { request: RequestId },
        RequestRefunded { request: RequestId, amount: BalanceOf<T> },
    }

    #[pallet::error]
    pub enum Error<T> {
        UnknownRequest,
        /// Redundancy must be between 1 and `MAX_REDUNDANCY`.
        BadRedundancy,
        /// The prompt and the output limit must both be at least one token.
        ZeroTokens,
        /// The commit window is outside `[MinCommitBlocks, MaxCommitBlocks]`.
        BadCommitWindow,
        /// The escrow (k × tokens × price) does not fit in a balance.
        PriceOverflow,
        /// Fewer eligible providers than the redundancy asked for.
        NotEnoughProviders,
        /// The client cannot hold the escrow.
        InsufficientBalance,
        /// This block takes no more requests; try the next one.
        TooManyRequests,
        /// Only the client may do this.
        NotClient,
        /// The request was already drawn or closed.
        NotPending,
        /// The request holds no escrow any more.
        NotOpen,
        /// The settle window has not passed yet.
        NotExpired,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
            Self::draw_all()
        }

        fn integrity_test() {
            assert!(T::MinCommitBlocks::get() <= T::MaxCommitBlocks::get(), "MinCommitBlocks must not exceed MaxCommitBlocks");
            assert!(T::MinCommitBlocks::get() > Zero::zero(), "a commit window needs a block");
            assert!(T::MaxAssignmentsPerBlock::get() > 0, "MaxAssignmentsPerBlock must be positive");
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Open a request and hold `k ×` its maximum cost.
        #[pallet::call_index(0)]
        #[pallet::weight(<T as Config>::WeightInfo::create_request(T::MaxProvidersPerRelease::get()))]
        pub fn create_request(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResultWithPostInfo {
            let client = ensure_signed(origin)?;
            let created = Self::do_create(client, params)?;
            Ok(Some(<T as Config>::WeightInfo::create_request(created.listed.max(1))).into())
        }

        /// Withdraw a request before its providers are drawn.
        #[pallet::call_index(1)]
        #[pallet::weight(<T as Config>::WeightInfo::cancel_request())]
        pub fn cancel_request(origin: OriginFor<T>, request: RequestId) -> DispatchResult {
            let client = ensure_signed(origin)?;
            Self::do_cancel(client, request)
        }

        /// Return the escrow of a request nobody settled within the settle window.
        #[pallet::call_index(2)]
        #[pallet::weight(<T as Config>::WeightInfo::refund_expired())]
        pub fn refund_expired(origin: OriginFor<T>, request: RequestId) -> DispatchResult {
            ensure_signed(origin)?;
            Self::do_refund_expired(request)
        }
    }
}
