//! Tickets: a request's k providers, bought from a deposit and drawn before the prompt exists.
//!
//! A client buys tickets ahead of its prompts; a later block draws each ticket's providers with
//! randomness the buyer could not know when buying. Serving a ticket then needs no transaction
//! before the first token: the client signs a `Use` of it and dials the drawn providers.

use crate::{Hash256, MaxRedundancy, ReleaseId};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::sp_runtime::BoundedVec;
use scale_info::TypeInfo;

/// Tickets are numbered in purchase order.
pub type TicketId = u64;

/// What each ticket of a purchase buys: k providers of one release and runtime profile, for one
/// prompt of at most `max_prompt_tokens` and an output of at most `max_output_tokens`.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct TicketSpec<Balance> {
    pub release: ReleaseId,
    /// The runtime profile every drawn provider shares, so exact-hash voting works.
    pub runtime_profile: Hash256,
    /// How many independent providers answer the ticket's prompt (k).
    pub redundancy: u32,
    pub max_prompt_tokens: u32,
    pub max_output_tokens: u32,
    /// The most the buyer pays any provider per 1k tokens, input or output.
    pub max_price_per_1k: Balance,
}

/// Where a ticket is in its life.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum TicketStatus {
    /// Paid for; its providers are drawn once the chain has randomness nobody knew at purchase.
    AwaitingDraw,
    /// Its providers are drawn; it can be used until it expires.
    Drawn,
}

/// A ticket as the escrow pallet keeps it.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Ticket<AccountId, Balance, BlockNumber> {
    pub buyer: AccountId,
    pub spec: TicketSpec<Balance>,
    /// Taken from the buyer's deposit at purchase: k × the most the spec can cost.
    pub escrow: Balance,
    pub status: TicketStatus,
    /// The drawn providers, in draw order (empty before the draw).
    pub providers: BoundedVec<AccountId, MaxRedundancy>,
    /// Each drawn provider's (input, output) price per 1k tokens, fixed at the draw.
    pub prices: BoundedVec<(Balance, Balance), MaxRedundancy>,
    pub bought_at: BlockNumber,
    /// Set at the draw: the last block in which the ticket may be used; after it, an unused
    /// ticket expires and pays its providers their reservation fee.
    pub expires_at: BlockNumber,
}
