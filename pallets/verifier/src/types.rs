//! The verifier pallet's own returned types.

/// What one `settle_tickets` call settled, for its weight: bundles, outcomes beyond the two
/// every bundle carries at least, signed results the majority did not share (each a slash),
/// and distinct accounts credited or recorded (providers and buyers).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TicketsSettled {
    pub bundles: u32,
    pub extra_outcomes: u32,
    pub dissents: u32,
    pub accounts: u32,
}
