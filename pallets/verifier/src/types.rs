//! The verifier pallet's own returned types.

/// What one `settle_tickets` call settled, for its weight: bundles, outcomes beyond the two
/// every bundle carries at least, signed results the majority did not share (each a slash),
/// tickets kept for a claim, and distinct accounts credited or recorded (providers and buyers).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TicketsSettled {
    pub bundles: u32,
    pub extra_outcomes: u32,
    pub dissents: u32,
    /// Tickets written back because a provider was left out (its share held for a claim).
    pub held: u32,
    pub accounts: u32,
    /// Listings rewritten beyond the first of each provider record written.
    pub relisted: u32,
}
