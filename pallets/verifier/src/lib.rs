//! # Verifier: commit, reveal, tally, settle, disputes and spot checks
//!
//! Each assigned provider commits `H(domain, request, provider, output_hash, token_count, salt)`
//! ([`agora_verifier::commitment::commitment`]) before the commit deadline, then reveals once
//! every commitment is in or the deadline has passed. Settlement groups the reveals by
//! `(output_hash, token_count)`; a strict majority of the assigned providers wins:
//!
//! - each winner is paid its own price (fixed at assignment) for the prompt and the tokens it
//!   produced, from the client's escrow with `transfer_on_hold`;
//! - a provider that revealed another result is slashed `WrongResultSlash` of its stake, one
//!   that did not commit or reveal `NoShowSlash`, both to the treasury;
//! - reputation moves for every assigned provider by the public formula
//!   ([`agora_primitives::Reputation::record`]): the score, in parts per million, starts at
//!   500,000; agreeing closes 5% of the distance to 1,000,000; a wrong result takes 25% of the
//!   score and a no-show 10% (both rounded up, never below 1). Gains are slow and losses fast,
//!   so reputation cannot be banked and then spent on cheating. Providers are drawn with
//!   weight stake × score;
//! - the rest of the escrow returns to the client and a [`Receipt`] is stored.
//!
//! A provider that revealed nothing is a no-show only if it took the job: it committed, or
//! the client proved its signed acknowledgement of the client's `Use` before the reveal
//! deadline (`prove_ack`). One that did neither may never have been sent the prompt: it is not
//! slashed and its reputation does not move; it is paid `ReservationShare` of its maximum pay
//! for the capacity it held (the receipt's `reserved`). With no reveal at all the client gets
//! the rest back.
//!
//! ## Disputes (re-scoring verifiers, docs/DESIGN.md section 4, tier 1)
//!
//! Providers that `opt_in_verifier` serve re-scoring for the releases they offer. A dispute
//! draws verifiers among them like providers (stake × reputation, `Randomness`), excluding the
//! request's client and providers, that offer the request's release under its runtime profile.
//! Each posts one signed verdict per disputed result (`submit_verdict`): accepted or rejected
//! by re-scoring. A result is accepted when at least as many verdicts accept it as reject it,
//! and at least one does. The dispute resolves on the last verdict, or when anyone calls
//! `resolve_dispute` after the verdict window; verifiers that stayed silent are slashed
//! `NoShowSlash`. Each verifier that voted with the decision is paid `VerifierFee` from the
//! treasury, which every slash and every lost bond feeds.
//!
//! - **Split vote**: reveals without a strict majority put the request under dispute (its
//!   escrow stays held) with `DisputeVerifiers` verifiers judging every distinct result.
//!   Providers whose result is accepted are paid, those whose result is rejected are slashed
//!   `WrongResultSlash`. With no verifier to draw, the client is refunded and only no-shows
//!   are slashed.
//! - **Challenge**: within `ChallengeWindow` blocks of settlement the client may challenge the
//!   winning result, holding `ChallengeBond`. If the verifiers reject it, every winner is
//!   slashed `WrongResultSlash`, the client gets back what it paid them (from their slashed
//!   stake) and its bond; if they accept it, the bond goes to the treasury.
//! - **Spot check**: a single-provider request (k = 1) is audited with the probability
//!   [`agora_verifier::audit::audit_probability`] gives (it grows with the value at risk and
//!   shrinks with the provider's reputation; `AuditFloor`, `AuditCeiling`,
//!   `AuditSafetyPercent`). Settling it only tallies (`AwaitingAudit`); the audit bit is drawn in
//!   a later block. An audited request waits for `AuditVerifiers` verdicts like a split vote.
//!
//! Every draw here (the audit bit, the verifiers of a split vote, an audit or a challenge) comes
//! from randomness that became known after the block that asked for it
//! ([`pallet_agora_escrow::Pallet::fresh_seed`]), run in `on_initialize` from `PendingDraws`:
//! neither the settler nor a challenger can time its transaction to choose the outcome.
//!
//! Every receipt and resolution is kept for clients and auditors as long as the escrow pallet
//! keeps the request's record: `RecordRetention` after it closes, and while a challenge is under
//! way and a retention after it is resolved.
//!
//! ## Tickets, settled from signed outcomes
//!
//! `settle_tickets` settles many drawn tickets in one call with no commit or reveal: each bundle
//! is the buyer's signed `TicketUse` and outcomes its providers signed over `H(Use)`. A strict
//! majority of the ticket's k pays its signers and slashes each signer of another result, all
//! through the escrow pallet's ledger, each account written once per call; the receipt is an
//! event. A provider the bundle leaves out keeps its most under the `Use` held in the ticket,
//! so the settler cannot short it: it claims with its own signed outcome
//! (`claim_ticket_outcome`: paid if it is the winner, slashed if not) until the settle window
//! closes, and unclaimed it earns the reservation fee at expiry. A bundle without a majority,
//! or with any signature, position or limit that does not hold, refuses the call. Each block
//! that settles tickets puts the Merkle root of their receipts in its header's digest, so a
//! receipt, the header and the leaf's path prove offline that the block settled it.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
use polkadot_sdk::frame_system;

mod acks;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod disputes;
mod draws;
mod fallback;
mod impls;
mod receipt_roots;
mod tickets;
pub use tickets::{TicketBundleOf, TicketReceiptOf};
pub mod types;
#[cfg(test)]
mod fallback_tests;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod pruning_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod ticket_tests;
pub mod migrations;
pub mod weights;

pub use weights::WeightInfo;

/// What the benchmarks need of the runtime: an account whose off-chain signatures they can make.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
    /// The `index`th account whose key the benchmark holds (distinct for distinct indices).
    fn signer(index: u32) -> AccountId;
    /// `signer`'s signature over `message`.
    fn sign(signer: &AccountId, message: &[u8]) -> Signature;
}

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{
        Dispute, DisputeKind, Hash256, MaxRedundancy, MaxVerifiers, Outcome, OutcomeVerdict, Receipt, RequestId,
        Resolution, MAX_REDUNDANCY, MAX_VERIFIERS,
    };
    use pallet_agora_providers::BalanceOf;
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::traits::{IdentifyAccount, Verify};
    use polkadot_sdk::sp_runtime::Perbill;

    pub type ReceiptOf<T> =
        Receipt<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
    pub type DisputeOf<T> =
        Dispute<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
    pub type DisputeKindOf<T> = DisputeKind<<T as frame_system::Config>::AccountId, BalanceOf<T>>;
    pub type ResolutionOf<T> =
        Resolution<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
    pub type VerdictsOf = BoundedVec<OutcomeVerdict, MaxRedundancy>;
    /// A client's libp2p PeerId, as the `Use` a provider acknowledged names it.
    pub type PeerIdOf = BoundedVec<u8, ConstU32<{ agora_primitives::wire::MAX_PEER_ID_BYTES as u32 }>>;

    /// 1: `PendingDraws`; undrawn disputes; requests `AwaitingAudit` (no migration: nothing
    /// stored changed its encoding). 2: `Acknowledged`; receipts name the providers paid a
    /// reservation fee ([`crate::migrations::v2`]).
    pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>>
        + pallet_agora_escrow::Config
        + pallet_agora_providers::Config<RuntimeHoldReason: From<HoldReason>>
    {
        /// Share of its stake a provider loses for revealing a result the majority did not share.
        #[pallet::constant]
        type WrongResultSlash: Get<Perbill>;
        /// Share of its stake a provider loses for not committing or not revealing.
        #[pallet::constant]
        type NoShowSlash: Get<Perbill>;
        /// Verifiers drawn for a split vote or a challenge.
        #[pallet::constant]
        type DisputeVerifiers: Get<u32>;
        /// Verifiers drawn for a spot check of a single-provider request.
        #[pallet::constant]
        type AuditVerifiers: Get<u32>;
        /// Blocks the drawn verifiers have to post their verdicts.
        #[pallet::constant]
        type VerdictWindow: Get<BlockNumberFor<Self>>;
        /// Blocks after settlement in which the client may challenge the result.
        #[pallet::constant]
        type ChallengeWindow: Get<BlockNumberFor<Self>>;
        /// What a challenging client holds; the treasury's if the verifiers accept the result.
        #[pallet::constant]
        type ChallengeBond: Get<BalanceOf<Self>>;
        /// Paid from the treasury to each verifier whose verdict agrees with the decision.
        #[pallet::constant]
        type VerifierFee: Get<BalanceOf<Self>>;
        /// Least probability that a single-provider request is audited.
        #[pallet::constant]
        type AuditFloor: Get<Perbill>;
        /// Greatest probability that a single-provider request is audited.
        #[pallet::constant]
        type AuditCeiling: Get<Perbill>;
        /// Audit probability as a multiple (percent) of the break-even `value / (slash + value)`.
        #[pallet::constant]
        type AuditSafetyPercent: Get<u32>;
        /// Audit draws and verifier draws that may wait at once for randomness of a later block.
        #[pallet::constant]
        type MaxPendingDraws: Get<u32>;
        /// Share of its pay for the request's whole output that an assigned provider gets when it
        /// neither acknowledged a `Use` nor committed: the price of the capacity it held.
        #[pallet::constant]
        type ReservationShare: Get<Perbill>;
        /// A provider's signature over an off-chain message, its acknowledgement of a `Use`
        /// (sr25519 through `MultiSignature` in the runtime).
        type OffchainSignature: Verify<Signer: IdentifyAccount<AccountId = Self::AccountId>> + Parameter + DecodeWithMemTracking;
        /// Most tickets one `settle_tickets` settles.
        #[pallet::constant]
        type MaxBundlesPerSettle: Get<u32>;
        /// Most ticket receipts one block commits to in its header's receipt root.
        #[pallet::constant]
        type MaxBlockReceipts: Get<u32>;
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: crate::BenchmarkHelper<Self::AccountId, Self::OffchainSignature>;
        type WeightInfo: WeightInfo;
    }

    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A client's bond on its challenge of a settled result.
        ChallengeBond,
    }

    /// Each assigned provider's commitment to its result, until its request closes.
    #[pallet::storage]
    pub type Commitments<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, Hash256>;

    /// Each assigned provider's revealed result, until its request closes.
    #[pallet::storage]
    pub type Reveals<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, Outcome>;

    /// Providers proven to have acknowledged their request's `Use`: not revealing is a no-show.
    #[pallet::storage]
    pub type Acknowledged<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, (), OptionQuery>;

    /// What settling each request did, until its record is pruned.
    #[pallet::storage]
    pub type Receipts<T: Config> = StorageMap<_, Twox64Concat, RequestId, ReceiptOf<T>>;

    /// Providers that serve re-scoring for the releases they offer.
    #[pallet::storage]
    pub type Verifiers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, (), OptionQuery>;

    /// Requests under judgement.
    #[pallet::storage]
    pub type Disputes<T: Config> = StorageMap<_, Twox64Concat, RequestId, DisputeOf<T>>;

    /// Verdicts posted so far, per dispute and verifier.
    #[pallet::storage]
    pub type Verdicts<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, VerdictsOf>;

    /// Draws waiting for randomness that became known after the block named: the audit bit of
    /// a request `AwaitingAudit`, or the verifiers of a dispute that has none yet.
    #[pallet::storage]
    pub type PendingDraws<T: Config> =
        StorageValue<_, BoundedVec<(RequestId, BlockNumberFor<T>), T::MaxPendingDraws>, ValueQuery>;

    /// How each dispute ended.
    #[pallet::storage]
    pub type Resolutions<T: Config> = StorageMap<_, Twox64Concat, RequestId, ResolutionOf<T>>;

    /// Providers of a fell-back request proven to have served another `Use` its buyer signed:
    /// paid their most at settlement, never judged by a result. Cleared when the request closes.
    #[pallet::storage]
    pub type Equivocated<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, (), OptionQuery>;

    /// The leaves of the ticket receipts deposited so far in this block, for its header's
    /// receipt root; taken in `on_finalize`, so no finished block's state holds it.
    #[pallet::storage]
    #[pallet::whitelist_storage]
    pub type BlockReceipts<T: Config> = StorageValue<_, BoundedVec<Hash256, T::MaxBlockReceipts>, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        Committed { request: RequestId, provider: T::AccountId },
        /// A provider's acknowledgement of the request's `Use` was proven: it had the prompt.
        Acknowledged { request: RequestId, provider: T::AccountId },
        Revealed { request: RequestId, provider: T::AccountId, outcome: Outcome },
        Settled { request: RequestId, winning: Outcome, paid: BalanceOf<T>, refunded: BalanceOf<T> },
        /// Nobody revealed: everything went back to the client.
        Abandoned { request: RequestId, refunded: BalanceOf<T> },
        /// Reveals without a strict majority and no verifier to judge them: refunded.
        Disputed { request: RequestId },
        /// A single provider's result is tallied; whether it is audited is drawn in a later block.
        AwaitingAudit { request: RequestId },
        VerifierOptedIn { who: T::AccountId },
        VerifierOptedOut { who: T::AccountId },
        /// Verifiers were drawn to judge a request's results (a block or more after the dispute
        /// opened); the verdict window starts now.
        DisputeOpened {
            request: RequestId,
            kind: DisputeKindOf<T>,
            verifiers: BoundedVec<T::AccountId, MaxVerifiers>,
            verdict_deadline: BlockNumberFor<T>,
        },
        VerdictPosted { request: RequestId, verifier: T::AccountId },
        /// The verifiers' majority decided each disputed result.
        DisputeResolved { request: RequestId, decided: BoundedVec<OutcomeVerdict, MaxRedundancy> },
        /// A ticket was settled from its signed `Use` and outcomes; the receipt says who was
        /// credited, slashed or paid a reservation fee (nothing per ticket stays in storage).
        TicketSettled { receipt: TicketReceiptOf<T> },
        /// A provider a settlement left out brought its signed outcome: `paid` from the share
        /// held for it (the winner) or `slashed` (another result).
        TicketOutcomeClaimed { ticket: agora_primitives::TicketId, provider: T::AccountId, outcome: Outcome, paid: BalanceOf<T>, slashed: BalanceOf<T> },
        /// `provider` proved the buyer of `ticket` signed two `Use`s of it: `paid` its most from
        /// the share held for it, or (`None`) at the settlement of the request it fell back to.
        Equivocation { ticket: agora_primitives::TicketId, provider: T::AccountId, paid: Option<BalanceOf<T>> },
    }

    #[pallet::error]
    pub enum Error<T> {
        UnknownRequest,
        /// The request is not in its commit–reveal phase.
        NotActive,
        /// The caller is not one of the request's providers.
        NotAssigned,
        /// The commit deadline has passed.
        CommitClosed,
        AlreadyCommitted,
        /// Reveals open when every commitment is in or the commit deadline has passed.
        RevealNotOpen,
        /// The reveal deadline has passed.
        RevealClosed,
        /// No commitment to reveal against.
        NotCommitted,
        AlreadyRevealed,
        /// The reveal does not hash to the commitment.
        CommitmentMismatch,
        /// More tokens than the request allowed.
        TooManyTokens,
        /// Settlement waits for every reveal or the reveal deadline; a dispute's resolution for
        /// its verifiers' draw, then every verdict or the verdict deadline.
        TooEarly,
        /// Only registered providers can serve as verifiers.
        NotAProvider,
        AlreadyVerifier,
        NotVerifier,
        /// The request is not under dispute.
        NoDispute,
        /// The caller was not drawn to judge this dispute.
        NotSelectedVerifier,
        /// The verdict window has passed.
        VerdictClosed,
        AlreadyVoted,
        /// A verdict must judge every disputed result once, and nothing else.
        VerdictMismatch,
        /// Only the request's client may challenge it.
        NotClient,
        /// Only a settled result, within the challenge window, with no dispute yet, can be
        /// challenged.
        NotChallengeable,
        /// No verifier can be drawn for this request.
        NoVerifiers,
        /// This block's queue of audit and verifier draws is full: settle or challenge in the next.
        TooManyPendingDraws,
        /// Acknowledgements are proven up to the request's reveal deadline.
        AckClosed,
        /// The provider's acknowledgement was proven already.
        AlreadyAcknowledged,
        /// The signature is not the provider's over the request's `Use` for that client peer.
        BadAcknowledgement,
        /// The `Use` asks for a longer prompt or output than the ticket was bought for, or an
        /// empty prompt.
        UseExceedsTicket,
        /// The `Use` is not signed by the ticket's buyer.
        BadUseSignature,
        /// An outcome names a position at which the ticket has no provider.
        NotTicketProvider,
        /// A bundle carries two outcomes of one provider.
        DuplicateOutcome,
        /// An outcome is not signed by its provider over this `Use` and result.
        BadOutcomeSignature,
        /// No strict majority of the ticket's providers signed one result: the bundle cannot
        /// settle it (wait for more outcomes).
        NoMajority,
        /// The bundles credit or record more distinct accounts (providers and buyers) than the
        /// call's `accounts` witness: send the real count.
        AccountsWitnessTooLow,
        /// The providers the bundles name rewrite more listings than the call's `relisted`
        /// witness: count each provider's offers less one, once for its outcomes and once more
        /// for each dissent.
        ListingsWitnessTooLow,
        /// The ticket was settled already: a left-out provider's outcome is claimed with
        /// `claim_ticket_outcome`.
        AlreadySettled,
        /// The ticket has not been settled: settle it with a bundle first.
        NotSettled,
        /// Nothing is held at that position: its outcome was in the bundle or claimed already.
        NotOpen,
        /// The `Use` names another chain's genesis hash: it was signed for that chain.
        WrongChain,
        /// This block's receipt root holds `MaxBlockReceipts` receipts already: settle the
        /// bundles in the next block.
        TooManyReceiptsThisBlock,
        /// No ticket fell back to that request.
        NotFellBack,
        /// That is the `Use` the ticket was settled under or fell back with: nothing was signed
        /// twice.
        NotEquivocation,
        /// The provider's equivocation was proven already.
        AlreadyProven,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
            Self::refuse_authored_roots();
            Self::draw_pending().saturating_add(Self::seal_base_weight())
        }

        fn on_finalize(_now: BlockNumberFor<T>) {
            Self::seal_receipts()
        }

        fn integrity_test() {
            use polkadot_sdk::sp_runtime::traits::{Saturating, Zero};
            // Defence in depth beside `Exposures`: a stake that starts unbonding as its last
            // result is paid is still held when a challenge of it could be resolved.
            let covered = T::ChallengeWindow::get().saturating_add(T::VerdictWindow::get());
            assert!(
                <T as pallet_agora_providers::Config>::UnbondingDelay::get() >= covered,
                "UnbondingDelay must cover ChallengeWindow + VerdictWindow"
            );
            // A receipt pruned before its challenge window closes could not be challenged.
            assert!(
                <T as pallet_agora_escrow::Config>::RecordRetention::get() >= covered,
                "RecordRetention must cover ChallengeWindow + VerdictWindow"
            );
            assert!(T::VerdictWindow::get() > Zero::zero(), "VerdictWindow must be positive");
            assert!(T::DisputeVerifiers::get() >= 1 && T::AuditVerifiers::get() >= 1, "a dispute needs a verifier");
            assert!(T::AuditFloor::get() <= T::AuditCeiling::get(), "AuditFloor must not exceed AuditCeiling");
            assert!(T::MaxPendingDraws::get() > 0, "MaxPendingDraws must be positive");
            assert!(T::MaxBundlesPerSettle::get() > 0, "MaxBundlesPerSettle must be positive");
            // Otherwise a full settle_tickets could never land, whatever the block.
            assert!(T::MaxBlockReceipts::get() >= T::MaxBundlesPerSettle::get(), "MaxBlockReceipts must hold a full settle_tickets");
            // A provider that never acknowledges earns this share for nothing: it must stay a
            // small part of the pay for serving.
            assert!(T::ReservationShare::get() < Perbill::from_percent(50), "ReservationShare must stay well under the pay for serving");
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        #[pallet::call_index(0)]
        #[pallet::weight(<T as Config>::WeightInfo::commit())]
        pub fn commit(origin: OriginFor<T>, request: RequestId, commitment: Hash256) -> DispatchResult {
            let provider = ensure_signed(origin)?;
            Self::do_commit(provider, request, commitment)
        }

        #[pallet::call_index(1)]
        #[pallet::weight(<T as Config>::WeightInfo::reveal())]
        pub fn reveal(origin: OriginFor<T>, request: RequestId, outcome: Outcome, salt: Hash256) -> DispatchResult {
            let provider = ensure_signed(origin)?;
            Self::do_reveal(provider, request, outcome, salt)
        }

        /// Tally and pay out, put the request under dispute (a split vote), or hold a single
        /// provider's result for its audit draw. Anyone may call it; winners have the reason to.
        #[pallet::call_index(2)]
        #[pallet::weight(
            <T as Config>::WeightInfo::settle_to_dispute(MAX_REDUNDANCY).max(<T as Config>::WeightInfo::settle(MAX_REDUNDANCY))
                .saturating_add(pallet_agora_providers::Pallet::<T>::most_relisting_weight(draws::CLOSE_STORES))
        )]
        pub fn settle(origin: OriginFor<T>, request: RequestId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let settled = Self::do_settle(request)?;
            let w = <T as Config>::WeightInfo::settle(settled.assigned);
            // Looking for verifiers reads every provider of the release; only that path pays for it.
            let w = if settled.looked_for_verifiers { w.max(<T as Config>::WeightInfo::settle_to_dispute(settled.assigned)) } else { w };
            Ok(Some(w.saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(settled.relisted))).into())
        }

        /// Serve re-scoring for the releases the caller offers as a provider.
        #[pallet::call_index(3)]
        #[pallet::weight(<T as Config>::WeightInfo::opt_in_verifier())]
        pub fn opt_in_verifier(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_opt_in(who)
        }

        #[pallet::call_index(4)]
        #[pallet::weight(<T as Config>::WeightInfo::opt_out_verifier())]
        pub fn opt_out_verifier(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_opt_out(who)
        }

        /// The client disputes its settled result, holding `ChallengeBond` on it.
        #[pallet::call_index(5)]
        #[pallet::weight(<T as Config>::WeightInfo::challenge())]
        pub fn challenge(origin: OriginFor<T>, request: RequestId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_challenge(who, request)
        }

        /// A drawn verifier's judgement of every disputed result. The last one resolves the
        /// dispute.
        #[pallet::call_index(6)]
        #[pallet::weight(
            <T as Config>::WeightInfo::submit_verdict(MAX_VERIFIERS, MAX_REDUNDANCY)
                .saturating_add(pallet_agora_providers::Pallet::<T>::most_relisting_weight(draws::RESOLVE_STORES))
        )]
        pub fn submit_verdict(origin: OriginFor<T>, request: RequestId, verdicts: VerdictsOf) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let relisted = Self::do_submit_verdict(who, request, verdicts)?;
            let w = <T as Config>::WeightInfo::submit_verdict(MAX_VERIFIERS, MAX_REDUNDANCY);
            Ok(Some(w.saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(relisted))).into())
        }

        /// Resolves a dispute with the verdicts cast, once its verdict window has passed.
        #[pallet::call_index(7)]
        #[pallet::weight(
            <T as Config>::WeightInfo::resolve_dispute(MAX_VERIFIERS, MAX_REDUNDANCY)
                .saturating_add(pallet_agora_providers::Pallet::<T>::most_relisting_weight(draws::RESOLVE_STORES))
        )]
        pub fn resolve_dispute(origin: OriginFor<T>, request: RequestId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let relisted = Self::do_resolve_after_deadline(request)?;
            let w = <T as Config>::WeightInfo::resolve_dispute(MAX_VERIFIERS, MAX_REDUNDANCY);
            Ok(Some(w.saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(relisted))).into())
        }

        /// Proves that `provider` acknowledged the request's `Use` for the client's libp2p
        /// `client_peer`: its `signature` over [`agora_primitives::wire::Use::ack_payload`].
        /// If it then reveals nothing it is a no-show. Anyone may call it, until the reveal
        /// deadline; the client has the reason to.
        #[pallet::call_index(8)]
        #[pallet::weight(<T as Config>::WeightInfo::prove_ack())]
        pub fn prove_ack(
            origin: OriginFor<T>,
            request: RequestId,
            provider: T::AccountId,
            client_peer: PeerIdOf,
            signature: T::OffchainSignature,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            Self::do_prove_ack(request, provider, client_peer, signature)
        }

        /// Settles each ticket of `bundles` from its buyer's signed `Use` and the outcomes its
        /// providers signed over it, with no commit or reveal: a strict majority of the
        /// ticket's providers pays, slashes and refunds through the ledger (each account
        /// written once per call). All or nothing: one bundle that does not hold refuses the
        /// call with its reason. `accounts`: how many distinct accounts the bundles credit or
        /// record, providers and buyers (the weight charged for their entries and records).
        /// `relisted`: for each provider the bundles name, its offers less one, counted once
        /// for its outcomes and once more for each result of it the majority does not share (0
        /// when every provider offers one release; the weight charged for rewriting the
        /// draw's listings of its other offers). A provider a bundle leaves out keeps its share
        /// held for `claim_ticket_outcome`. Anyone may call it.
        #[pallet::call_index(9)]
        #[pallet::weight(Pallet::<T>::settle_tickets_weight(bundles, *accounts, *relisted))]
        pub fn settle_tickets(
            origin: OriginFor<T>,
            bundles: BoundedVec<TicketBundleOf<T>, T::MaxBundlesPerSettle>,
            accounts: u32,
            relisted: u32,
        ) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let settled = Self::do_settle_tickets(bundles.into_inner(), accounts, relisted)?;
            Ok(Some(Self::tickets_weight(settled)).into())
        }

        /// Brings the signed outcome of a provider that `ticket`'s settlement left out, within
        /// the settle window: the winning result is paid from the share held for it, another is
        /// slashed; the rest of the share goes back to the buyer. Anyone may call it; the
        /// provider has the reason to.
        #[pallet::call_index(10)]
        #[pallet::weight(<T as Config>::WeightInfo::claim_ticket_outcome().saturating_add(pallet_agora_providers::Pallet::<T>::most_relisting_weight(1)))]
        pub fn claim_ticket_outcome(
            origin: OriginFor<T>,
            ticket: agora_primitives::TicketId,
            outcome: agora_primitives::SignedOutcome<T::OffchainSignature>,
        ) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let relisted = Self::do_claim_outcome(ticket, outcome)?;
            let w = <T as Config>::WeightInfo::claim_ticket_outcome();
            Ok(Some(w.saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(relisted))).into())
        }

        /// Falls `authorised.ticket`, drawn and not settled, back to commit–reveal under
        /// `authorised` (`buyer_signature` is its buyer's, over its signing payload): it becomes
        /// an assigned request of the same providers at their drawn prices, and its providers
        /// commit and reveal the results they hold. Its buyer may call it at any time (its
        /// outcomes have no majority); anyone else `TicketFallbackGrace` blocks after its expiry
        /// (the buyer never settled), up to the settle window.
        #[pallet::call_index(11)]
        #[pallet::weight(<T as Config>::WeightInfo::fall_back_ticket().saturating_add(
            pallet_agora_providers::Pallet::<T>::most_relisting_weight(MAX_REDUNDANCY)
        ))]
        pub fn fall_back_ticket(
            origin: OriginFor<T>,
            authorised: agora_primitives::TicketUse,
            buyer_signature: T::OffchainSignature,
        ) -> DispatchResultWithPostInfo {
            let caller = ensure_signed(origin)?;
            let fell_back = Self::do_fall_back(caller, authorised, buyer_signature)?;
            let w = <T as Config>::WeightInfo::fall_back_ticket();
            Ok(Some(w.saturating_add(pallet_agora_providers::Pallet::<T>::relisting_weight(fell_back.relisted))).into())
        }

        /// Proves that the buyer of `authorised.ticket` signed `authorised` (`buyer_signature`)
        /// beside the `Use` the ticket was settled under (`request` = `None`; the caller must
        /// be a provider the bundle left out) or fell back with (`request`: the request it fell
        /// back to, until its reveal deadline; the caller must not have committed). The caller,
        /// who served `authorised`, is paid the most it could have earned under the `Use` that
        /// counts.
        #[pallet::call_index(12)]
        #[pallet::weight(<T as Config>::WeightInfo::prove_equivocation())]
        pub fn prove_equivocation(
            origin: OriginFor<T>,
            authorised: agora_primitives::TicketUse,
            buyer_signature: T::OffchainSignature,
            request: Option<RequestId>,
        ) -> DispatchResult {
            let provider = ensure_signed(origin)?;
            Self::do_prove_equivocation(provider, authorised, buyer_signature, request)
        }
    }
}
