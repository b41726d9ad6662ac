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
