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
mod ledger;
pub mod migrations;
mod pruning;
mod tickets;
pub use tickets::{TicketOf, TicketSpecOf};
pub mod types;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod pruning_tests;
#[cfg(test)]
mod ticket_tests;
pub mod weights;

pub use weights::WeightInfo;

/// Told when a request closes (settled, refunded or cancelled) and when its record is pruned,
/// so pallets keeping per-request state can drop it. The verifier pallet implements it for its
/// commitments, reveals, receipts and resolutions; the runtime wires it in as `OnClose`.
pub trait OnRequestClosed {
    fn on_request_closed(request: agora_primitives::RequestId);
    /// Whether a closed request's record must outlive its retention: something still judges it
    /// (a challenge under way). It is looked at again a retention later.
    fn keeps_record(_request: agora_primitives::RequestId) -> bool {
        false
    }
    /// The request's record is pruned: drop what was kept beside it.
    fn on_request_forgotten(_request: agora_primitives::RequestId) {}
    /// The most `keeps_record` and `on_request_forgotten` weigh together, for one request.
    fn forget_weight() -> polkadot_sdk::frame_support::weights::Weight {
        polkadot_sdk::frame_support::weights::Weight::zero()
    }
}

impl OnRequestClosed for () {
    fn on_request_closed(_: agora_primitives::RequestId) {}
}

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{Request, RequestId, RequestParams, TicketId};
    use polkadot_sdk::frame_support::PalletId;
    use polkadot_sdk::sp_runtime::Perbill;
    use pallet_agora_providers::BalanceOf;
    use polkadot_sdk::frame_support::{pallet_prelude::*, traits::Randomness};
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::traits::Zero;

    pub type RequestOf<T> =
        Request<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
    pub type ParamsOf<T> = RequestParams<BalanceOf<T>, BlockNumberFor<T>>;

    /// 1: requests wait in `AwaitingDraw` for fresh randomness; `RequestStatus::AwaitingAudit`
    /// (no migration: appended variant, same encoding of the others).
    /// 2: the deposit ledger and tickets ([`Deposits`], [`Tickets`]); the pallet's account is
    /// given its existential deposit ([`migrations::v2`]).
    /// 3: closed requests are pruned after `RecordRetention` ([`ClosedQueue`]); the ones closed
    /// before are queued by [`migrations::v3`].
    pub(crate) const STORAGE_VERSION: StorageVersion = StorageVersion::new(3);

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
        /// Cleans up other pallets' per-request state when a request closes and when its
        /// record is pruned.
        type OnClose: OnRequestClosed;
        /// Blocks a closed request's record (and the receipt beside it) stays before it is
        /// pruned: at least as long as its result can be challenged.
        #[pallet::constant]
        type RecordRetention: Get<BlockNumberFor<Self>>;
        /// Names the account that holds every deposit and ticket escrow.
        #[pallet::constant]
        type PalletId: Get<PalletId>;
        /// Most tickets one `buy_tickets` buys (and so one purchase's draw).
        #[pallet::constant]
        type MaxTicketsPerPurchase: Get<u32>;
        /// Most purchases waiting for their draw at once.
        #[pallet::constant]
        type MaxPurchasesAwaitingDraw: Get<u32>;
        /// Blocks from a ticket's draw to its expiry: how long it may wait in a client's pool.
        #[pallet::constant]
        type TicketLifetime: Get<BlockNumberFor<Self>>;
        /// What an expired, unused ticket pays each drawn provider: this share of the most the
        /// ticket could have paid it, for keeping capacity for a prompt that never came.
        #[pallet::constant]
        type TicketReservationFee: Get<Perbill>;
        /// Blocks after a ticket's expiry in which only its buyer may fall it back to
        /// commit–reveal: a bundle sent just before expiry still lands first.
        #[pallet::constant]
        type TicketFallbackGrace: Get<BlockNumberFor<Self>>;
        /// The commit window of the request a ticket falls back to: its providers hold their
        /// results already, and only need to see the fallback.
        #[pallet::constant]
        type FallbackCommitBlocks: Get<BlockNumberFor<Self>>;
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

    /// Each account's balance in the ledger: deposits not yet spent on tickets, refunds, and
    /// providers' earnings, all held in the pallet's account ([`Pallet::account_id`]).
    #[pallet::storage]
    pub type Deposits<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, BalanceOf<T>, ValueQuery>;

    /// The id the next ticket bought gets.
    #[pallet::storage]
    pub type NextTicketId<T> = StorageValue<_, TicketId, ValueQuery>;

    /// Tickets bought and not yet used up or expired.
    #[pallet::storage]
    pub type Tickets<T: Config> = StorageMap<_, Twox64Concat, TicketId, TicketOf<T>>;

    /// Purchases waiting for randomness that became known after their block.
    #[pallet::storage]
    pub type PurchasesAwaitingDraw<T: Config> =
        StorageValue<_, BoundedVec<types::Purchase<BlockNumberFor<T>>, T::MaxPurchasesAwaitingDraw>, ValueQuery>;

    /// Each request a ticket fell back to: the ticket and the `Use` it runs. Its escrow stays
    /// in the pallet's account, paid and refunded through the ledger, never held on its client
    /// (whose account may be gone). Until the record is pruned.
    #[pallet::storage]
    pub type FellBack<T: Config> = StorageMap<_, Twox64Concat, RequestId, types::TicketOrigin>;

    /// Closed requests in the order they closed, each with the block from which its record may
    /// be pruned; `on_idle` prunes from the front.
    #[pallet::storage]
    pub type ClosedQueue<T: Config> = StorageMap<_, Twox64Concat, u64, (RequestId, BlockNumberFor<T>)>;

    /// The front of `ClosedQueue` and one past its back.
    #[pallet::storage]
    pub type ClosedQueueBounds<T> = StorageValue<_, (u64, u64), ValueQuery>;

    #[pallet::genesis_config]
    #[derive(polkadot_sdk::frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        #[serde(skip)]
        pub _config: core::marker::PhantomData<T>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            Pallet::<T>::ensure_account_exists();
        }
    }

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
        /// `amount` moved from `who`'s balance into its ledger entry.
        Deposited { who: T::AccountId, amount: BalanceOf<T> },
        /// `amount` moved from `who`'s ledger entry back to its balance.
        Withdrawn { who: T::AccountId, amount: BalanceOf<T> },
        /// Tickets `first .. first + count` bought, each holding `escrow_each`; drawn later.
        TicketsBought { buyer: T::AccountId, first: TicketId, count: u32, escrow_each: BalanceOf<T> },
        /// Tickets `first .. first + count` have their providers (in `Tickets`), usable until
        /// `expires_at`.
        TicketsDrawn { first: TicketId, count: u32, expires_at: BlockNumberFor<T> },
        /// Too few providers were eligible at the draw: tickets `first .. first + count` are gone
        /// and their escrow is back in the buyer's ledger entry.
        TicketsRefunded { first: TicketId, count: u32 },
        /// An unused ticket closed: `fees` went to its providers, `refund` to its buyer.
        TicketExpired { ticket: TicketId, fees: BalanceOf<T>, refund: BalanceOf<T> },
        /// Ticket `ticket`, used and never settled from a bundle, is now request `request`
        /// (assigned to the ticket's providers at their prices, in commit–reveal) under the
        /// `Use` whose hash is `use_hash`; `refund` of its escrow, beyond the request's, went
        /// back to the buyer's ledger entry.
        TicketFellBack { ticket: TicketId, request: RequestId, use_hash: agora_primitives::Hash256, refund: BalanceOf<T> },
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
        /// An amount of zero moves nothing.
        ZeroAmount,
        /// The ledger entry holds less than that: deposit more, or buy fewer tickets.
        InsufficientDeposit,
        /// A purchase is between 1 and `MaxTicketsPerPurchase` tickets.
        BadTicketCount,
        /// Enough purchases wait for their draw; try the next block.
        TooManyPurchases,
        /// No such ticket (never bought, used up, or expired).
        UnknownTicket,
        /// The ticket's providers are not drawn yet.
        NotDrawn,
        /// A ticket needs k ≥ 2: a single provider's result is trusted only after its spot
        /// check, which tickets do not have yet. Create a request for k = 1.
        SingleProviderTicket,
        /// The ticket's settle window has passed: it can only expire now (`expire_ticket`).
        TicketClosed,
        /// Only the ticket's buyer may fall it back before `TicketFallbackGrace` blocks after
        /// its expiry: until then its bundle may still be on its way.
        FallbackTooEarly,
        /// The ticket was settled from a bundle already: it cannot fall back.
        TicketSettled,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
            Self::draw_all().saturating_add(Self::draw_purchases())
        }

        fn on_idle(now: BlockNumberFor<T>, limit: Weight) -> Weight {
            Self::forget_due(now, limit)
        }

        fn integrity_test() {
            assert!(T::MinCommitBlocks::get() <= T::MaxCommitBlocks::get(), "MinCommitBlocks must not exceed MaxCommitBlocks");
            assert!(T::MinCommitBlocks::get() > Zero::zero(), "a commit window needs a block");
            assert!(T::MaxAssignmentsPerBlock::get() > 0, "MaxAssignmentsPerBlock must be positive");
            assert!(T::MaxTicketsPerPurchase::get() > 0, "MaxTicketsPerPurchase must be positive");
            assert!(T::MaxPurchasesAwaitingDraw::get() > 0, "MaxPurchasesAwaitingDraw must be positive");
            assert!(T::TicketLifetime::get() > Zero::zero(), "a ticket must live at least a block");
            assert!(T::RecordRetention::get() > Zero::zero(), "a closed request's record must stay at least a block");
            // A ticket past its settle window can only expire: the grace must leave room to fall back.
            assert!(T::TicketFallbackGrace::get() < T::SettleWindow::get(), "TicketFallbackGrace must be shorter than SettleWindow");
            let fallback = T::FallbackCommitBlocks::get();
            assert!(
                fallback >= T::MinCommitBlocks::get() && fallback <= T::MaxCommitBlocks::get(),
                "FallbackCommitBlocks must be a commit window a request may have"
            );
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
        #[pallet::weight(<T as Config>::WeightInfo::refund_expired().saturating_add(
            pallet_agora_providers::Pallet::<T>::most_relisting_weight(agora_primitives::MAX_REDUNDANCY)
        ))]
        pub fn refund_expired(origin: OriginFor<T>, request: RequestId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let relisted = Self::do_refund_expired(request)?;
            Ok(Some(<T as Config>::WeightInfo::refund_expired().saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(relisted))).into())
        }

        /// Move `amount` of the caller's balance into its ledger entry, to buy tickets with.
        #[pallet::call_index(3)]
        #[pallet::weight(<T as Config>::WeightInfo::deposit())]
        pub fn deposit(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_deposit(who, amount)
        }

        /// Move `amount` of the caller's ledger entry (unspent deposit, refunds, earnings) back
        /// to its balance.
        #[pallet::call_index(4)]
        #[pallet::weight(<T as Config>::WeightInfo::withdraw())]
        pub fn withdraw(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_withdraw(who, amount)
        }

        /// Buy `count` tickets of `spec` from the caller's ledger entry (each `k ×` the most
        /// the spec can cost); their providers are drawn in a later block.
        #[pallet::call_index(5)]
        #[pallet::weight(<T as Config>::WeightInfo::buy_tickets(*count, T::MaxProvidersPerRelease::get()))]
        pub fn buy_tickets(origin: OriginFor<T>, spec: TicketSpecOf<T>, count: u32) -> DispatchResultWithPostInfo {
            let buyer = ensure_signed(origin)?;
            let listed = Self::do_buy_tickets(buyer, spec, count)?;
            Ok(Some(<T as Config>::WeightInfo::buy_tickets(count, listed.max(1))).into())
        }

        /// Close `ticket`, drawn and never used, once the settle window after its expiry has
        /// passed: its providers get their reservation fees, its buyer the rest. Anyone may.
        #[pallet::call_index(6)]
        #[pallet::weight(<T as Config>::WeightInfo::expire_ticket())]
        pub fn expire_ticket(origin: OriginFor<T>, ticket: TicketId) -> DispatchResult {
            ensure_signed(origin)?;
            Self::do_expire(ticket).map(|_| ())
        }
    }
}
