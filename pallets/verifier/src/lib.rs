//! # Verifier: commit, reveal, tally, settle
//!
//! Each assigned provider commits `H(domain, request, provider, output_hash, token_count, salt)`
//! ([`agora_primitives::commitment::commitment`]) before the commit deadline, then reveals once
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
//! With no reveal at all the client gets everything back and every provider counts as a
//! no-show. With reveals but no majority the request is marked disputed and its escrow stays
//! held for the dispute path (re-scoring verification), which comes with the verifier issue;
//! until then `refund_expired` in the escrow pallet returns it after the settle window.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
use polkadot_sdk::frame_system;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use agora_primitives::{Hash256, Outcome, Receipt, RequestId, MAX_REDUNDANCY};
    use pallet_agora_providers::BalanceOf;
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::Perbill;

    pub type ReceiptOf<T> =
        Receipt<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> + pallet_agora_escrow::Config
    {
        /// Share of its stake a provider loses for revealing a result the majority did not share.
        #[pallet::constant]
        type WrongResultSlash: Get<Perbill>;
        /// Share of its stake a provider loses for not committing or not revealing.
        #[pallet::constant]
        type NoShowSlash: Get<Perbill>;
        type WeightInfo: WeightInfo;
    }

    #[pallet::storage]
    pub type Commitments<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, Hash256>;

    #[pallet::storage]
    pub type Reveals<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, Outcome>;

    #[pallet::storage]
    pub type Receipts<T: Config> = StorageMap<_, Twox64Concat, RequestId, ReceiptOf<T>>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        Committed { request: RequestId, provider: T::AccountId },
        Revealed { request: RequestId, provider: T::AccountId, outcome: Outcome },
        Settled { request: RequestId, winning: Outcome, paid: BalanceOf<T>, refunded: BalanceOf<T> },
        /// Nobody revealed: everything went back to the client.
        Abandoned { request: RequestId, refunded: BalanceOf<T> },
        /// Reveals without a strict majority: the escrow stays held for the dispute path.
        Disputed { request: RequestId },
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
        /// Settlement waits for every reveal or the reveal deadline.
        TooEarly,
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

        /// Tally and pay out. Anyone may call it; winners have the reason to.
        #[pallet::call_index(2)]
        #[pallet::weight(<T as Config>::WeightInfo::settle(MAX_REDUNDANCY))]
        pub fn settle(origin: OriginFor<T>, request: RequestId) -> DispatchResultWithPostInfo {
            ensure_signed(origin)?;
            let assigned = Self::do_settle(request)?;
            Ok(Some(<T as Config>::WeightInfo::settle(assigned)).into())
        }
    }
}
