//! Types of the provider registry that only the chain uses.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// How long an account's stake must stay held for work that has already closed: a paid result
/// can be challenged until `until`, and each open dispute the account is party to (a challenge
/// of a result it won, a dispute it was drawn to judge) can still slash it. Open requests are
/// counted apart, in the provider record's `open_jobs`.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, PartialEq, Eq, Debug, Default)]
pub struct Exposure<BlockNumber> {
    /// The last block in which a challenge of one of its paid results can open.
    pub until: BlockNumber,
    /// Open disputes that can still slash it.
    pub disputes: u32,
}

/// One provider's offer of a release, as the draw reads it: tens of bytes, where its full
/// record (manifest, addresses, offers) is kilobytes. Kept in [`crate::Listings`] under the
/// release and the runtime profile of the offer, and rewritten whenever its record changes.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, PartialEq, Eq, Debug)]
pub struct Listing<AccountId, Balance> {
    pub who: AccountId,
    pub price_per_1k_input: Balance,
    pub price_per_1k_output: Balance,
    pub max_context: u32,
    /// Jobs it can take now: its manifest's limit less its open jobs; none while it is not
    /// online or its stake is under `MinStake`.
    pub free_jobs: u32,
    /// Its draw weight: stake in units of `MinStake`, times reputation in parts per million.
    pub weight: u128,
}

/// The providers free to take a request, and how many the index listed for its release and
/// profile (what reading it cost, and so the weight charged).
pub struct Eligible<AccountId, Balance> {
    pub listings: alloc::vec::Vec<Listing<AccountId, Balance>>,
    pub listed: u32,
}

/// What a slash took, and the listings it rewrote beyond the first (see
/// [`crate::Pallet::relisting_weight`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Slashed<Balance> {
    pub taken: Balance,
    pub relisted: u32,
}
