//! Tickets: a request's k providers, bought from a deposit and drawn before the prompt exists.
//!
//! A client buys tickets ahead of its prompts; a later block draws each ticket's providers with
//! randomness the buyer could not know when buying. Serving a ticket then needs no transaction
//! before the first token: the client signs a [`TicketUse`] of it and dials the drawn
//! providers; each returns an outcome signed over it, and anyone settles the ticket from the
//! bundle of the `Use` and its signed outcomes ([`TicketBundle`]) with no commit or reveal.

use crate::{Hash256, JobOutcome, MaxRedundancy, Outcome, PeerIdBytes, ReleaseId, SamplingParams};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::sp_crypto_hashing::blake2_256;
use polkadot_sdk::sp_runtime::BoundedVec;
use scale_info::TypeInfo;

/// Domain of a buyer's signature over a [`TicketUse`], so that it is valid as no other message.
pub const TICKET_USE_DOMAIN: &[u8] = b"agora/ticket-use/2";

/// Domain of a provider's signed outcome for a [`TicketUse`].
pub const TICKET_OUTCOME_DOMAIN: &[u8] = b"agora/ticket-outcome/2";

/// Domain of a provider's acknowledgement of a [`TicketUse`]: it has the prompt and takes the
/// job, so from now on not answering is its fault.
pub const TICKET_ACK_DOMAIN: &[u8] = b"agora/ticket-ack/2";

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
    /// Settled by a bundle that left some providers out: each one's most under the `Use` stays
    /// held (the ticket's escrow) until its signed outcome is claimed or the settle window ends.
    Settled(Settlement),
}

/// What a settlement fixed, kept while left-out providers may still claim.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Settlement {
    /// `H(Use)` the ticket was settled under: a claimed outcome must be signed over it.
    pub use_hash: Hash256,
    pub winning: Outcome,
    pub prompt_tokens: u32,
    pub max_output_tokens: u32,
    /// Positions whose outcome can still be claimed, one bit each.
    pub open: u8,
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

impl<Balance> TicketSpec<Balance> {
    /// Whether a `Use` stays within what the ticket was bought for.
    pub fn admits(&self, authorised: &TicketUse) -> bool {
        authorised.prompt_tokens > 0
            && authorised.prompt_tokens <= self.max_prompt_tokens
            && authorised.max_output_tokens <= self.max_output_tokens
    }
}

/// What a ticket's buyer authorises its providers to run, and for whom, signed with the buyer's
/// account key. A provider serves a ticket only under its buyer's `Use`, to the libp2p peer
/// the `Use` names, and signs its result over `H(Use)`: every outcome of a bundle is bound to
/// the one prompt the buyer signed for.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct TicketUse {
    /// The genesis hash of the chain the ticket is on: a `Use` signed for one chain is valid on
    /// no other.
    pub chain: Hash256,
    pub ticket: TicketId,
    /// `token_hash` of the prompt's token ids.
    pub prompt_hash: Hash256,
    pub prompt_tokens: u32,
    /// At most the ticket's `max_output_tokens`.
    pub max_output_tokens: u32,
    pub sampling: SamplingParams,
    /// The client's libp2p PeerId, as bytes.
    pub client_peer: PeerIdBytes,
}

impl TicketUse {
    /// The bytes the buyer signs: the domain, then the `Use`.
    pub fn signing_payload(&self) -> Vec<u8> {
        (TICKET_USE_DOMAIN, self).encode()
    }

    /// `H(Use)`: blake2-256 of its SCALE encoding; what outcomes and receipts name.
    pub fn hash(&self) -> Hash256 {
        blake2_256(&self.encode())
    }

    /// The bytes a provider signs over the result it stands by for this `Use`.
    pub fn outcome_payload(&self, outcome: &Outcome) -> Vec<u8> {
        outcome_payload(self.ticket, &self.hash(), outcome)
    }

    /// The bytes a provider signs to acknowledge this `Use` before prefill.
    pub fn ack_payload(&self) -> Vec<u8> {
        ack_payload(self.ticket, &self.hash())
    }
}

/// What a provider signs over its result for the `Use` of `ticket` whose hash is `use_hash`.
pub fn outcome_payload(ticket: TicketId, use_hash: &Hash256, outcome: &Outcome) -> Vec<u8> {
    (TICKET_OUTCOME_DOMAIN, ticket, use_hash, outcome).encode()
}

/// What a provider signs to acknowledge the `Use` of `ticket` whose hash is `use_hash`.
pub fn ack_payload(ticket: TicketId, use_hash: &Hash256) -> Vec<u8> {
    (TICKET_ACK_DOMAIN, ticket, use_hash).encode()
}

/// One provider's result for a ticket, signed over [`TicketUse::outcome_payload`].
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct SignedOutcome<Signature> {
    /// The provider's position among the ticket's drawn providers.
    pub provider: u8,
    pub outcome: Outcome,
    pub signature: Signature,
}

/// Everything needed to settle one ticket: the buyer's signed `Use` and the providers' signed
/// outcomes for it (a strict majority of the ticket's k is enough).
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct TicketBundle<Signature> {
    pub authorised: TicketUse,
    /// The buyer's signature over [`TicketUse::signing_payload`].
    pub buyer_signature: Signature,
    pub outcomes: BoundedVec<SignedOutcome<Signature>, MaxRedundancy>,
}

/// What settling one ticket did; deposited as an event, so nothing per ticket stays in storage.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct TicketReceipt<AccountId, Balance, BlockNumber> {
    pub ticket: TicketId,
    pub buyer: AccountId,
    /// `H(Use)` of the prompt the ticket was used for.
    pub use_hash: Hash256,
    pub winning: Outcome,
    /// Each provider that signed the winning result, and what its ledger entry was credited.
    pub paid: BoundedVec<(AccountId, Balance), MaxRedundancy>,
    /// Each provider that signed another result, and the stake it lost.
    pub slashed: BoundedVec<(AccountId, Balance, JobOutcome), MaxRedundancy>,
    /// Each provider whose outcome the bundle did not carry, and its most under the `Use`,
    /// held for it to claim with its signed outcome; unclaimed, it earns the reservation fee.
    pub held: BoundedVec<(AccountId, Balance), MaxRedundancy>,
    /// Back to the buyer's ledger entry.
    pub refunded: Balance,
    pub settled_at: BlockNumber,
}
