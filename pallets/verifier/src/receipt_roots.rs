//! Each block that settles tickets commits to their receipts in its header.
//!
//! A ticket's receipt is only an event: nothing of it stays in storage, and proving an event
//! from a header takes a proof of the block's whole `System::Events`. So the leaf of every
//! receipt deposited in a block is gathered in `BlockReceipts` (written and cleared within the
//! block: it never reaches the state of a finished block), and `on_finalize` puts their Merkle
//! root in the header's digest. A receipt, its block's header and its leaf's path then prove
//! offline that it was settled there ([`agora_primitives::receipts`]).

use super::*;
use agora_primitives::receipts::{leaf, ReceiptRoot};
use codec::Encode;
use polkadot_sdk::frame_support::pallet_prelude::*;

impl<T: Config> Pallet<T> {
    /// Adds a receipt's leaf to this block's tree; receipts are deposited in the order of
    /// their leaves.
    pub(crate) fn note_receipt(receipt: &TicketReceiptOf<T>) -> DispatchResult {
        BlockReceipts::<T>::try_append(leaf(&receipt.encode())).map_err(|_| Error::<T>::TooManyReceiptsThisBlock.into())
    }

    /// Refuses a block whose author put a receipt root in its digest: otherwise its header
    /// could carry a root of receipts nobody settled, ahead of the one the runtime seals.
    pub(crate) fn refuse_authored_roots() {
        let logs = frame_system::Pallet::<T>::digest().logs;
        assert!(!logs.iter().any(ReceiptRoot::is_tagged), "a block's author put a receipt root in its digest");
    }

    /// Puts the root of this block's receipts in its header, if it settled any.
    pub(crate) fn seal_receipts() {
        let leaves = BlockReceipts::<T>::take();
        if !leaves.is_empty() {
            frame_system::Pallet::<T>::deposit_log(ReceiptRoot::of(&leaves).digest_item());
        }
    }

    /// What `on_initialize` takes for reading the digest and reserves for `on_finalize`'s
    /// seal; every receipt's share of the seal is charged to the call that deposits it
    /// ([`Self::receipt_leaves_weight`]).
    pub(crate) fn seal_base_weight() -> Weight {
        <T as Config>::WeightInfo::seal_receipts(0).saturating_add(T::DbWeight::get().reads(1))
    }

    /// The seal's cost of `n` more receipts in this block.
    pub(crate) fn receipt_leaves_weight(n: u32) -> Weight {
        <T as Config>::WeightInfo::seal_receipts(n).saturating_sub(<T as Config>::WeightInfo::seal_receipts(0))
    }
}
