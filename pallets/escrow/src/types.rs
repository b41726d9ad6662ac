//! The escrow pallet's own stored and returned types.

use agora_primitives::{Hash256, RequestId, TicketId};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// One purchase's tickets, waiting for their draw: ids `first .. first + count`, bought in
/// block `bought_at` (their draw takes randomness that became known after it).
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Purchase<BlockNumber> {
    pub first: TicketId,
    pub count: u32,
    pub bought_at: BlockNumber,
}

impl<BlockNumber> Purchase<BlockNumber> {
    pub fn ids(&self) -> impl Iterator<Item = TicketId> {
        self.first..self.first.saturating_add(self.count.into())
    }
}

/// What drawing one purchase did, for its weight: how many tickets it drew (or refunded) and
/// how many providers the release and profile listed.
pub struct PurchaseDrawn {
    pub tickets: u32,
    pub listed: u32,
}

/// What an expired ticket paid: the reservation fees to its providers and the refund to its
/// buyer.
pub struct Expired<Balance> {
    pub fees: Balance,
    pub refund: Balance,
}

/// Where a fell-back request came from: its ticket, and `H(Use)` of the buyer's `Use` it runs
/// (what its providers acknowledged, and what a proof of equivocation must differ from).
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct TicketOrigin {
    pub ticket: TicketId,
    pub use_hash: Hash256,
}

/// What falling a ticket back did: the request it became, and the listings its providers'
/// new jobs rewrote beyond each one's first.
pub struct Fallen {
    pub request: RequestId,
    pub relisted: u32,
}

/// What closing a request did: the escrow left to its client, and the listings its providers'
/// release rewrote beyond each one's first (see
/// [`pallet_agora_providers::Pallet::relisting_weight`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Closed<Balance> {
    pub refund: Balance,
    pub relisted: u32,
}

/// What a draw did, for its weight: how many providers the release and profile listed, and the
/// listings the drawn providers' new jobs rewrote beyond each one's first.
pub struct Drawn {
    pub listed: u32,
    pub relisted: u32,
}
