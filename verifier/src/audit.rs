//! Spot checks: which single-provider (k = 1) requests a re-scoring verifier audits.
//!
//! A provider that cheats on a request saves at most what it is paid for it, `v` (never more
//! than the escrow). If an audit catches it with probability `p` and costs it `S` (the stake
//! slashed for a wrong result), cheating loses money on average once `p · S > (1 − p) · v`,
//! that is once `p > v / (S + v)`. The chain audits with
//!
//! ```text
//! p = clamp(floor, ceiling, safety · v / (S + v) · (1.5 − r))
//! ```
//!
//! where `r` is the provider's reputation score in `[0, 1]`: a new provider (0.5) gets the plain
//! `safety` margin, the best (1.0) half of it, the worst (near 0) one and a half times it. The
//! floor keeps every job at risk whatever its size; the ceiling can be 100 %. The draw uses
//! chain randomness from after the reveal, mixed with the request id, so a provider cannot know
//! at commit time whether its answer will be checked.
//!
//! Over `n` jobs on which a provider cheats, each audited with probability at least `p` and
//! each audit detecting the cheat with probability `d` (calibration: `d` ≥ 0.99 for outputs that
//! differ in more than 2 tokens), the chance it is never caught is `(1 − p·d)^n`
//! ([`caught_within`]). At the devnet's sizes `v / (S + v)` is about 10⁻⁵, so the floor decides.

use polkadot_sdk::sp_arithmetic::Perbill;
use polkadot_sdk::sp_crypto_hashing::blake2_256;

/// The chain's audit parameters (runtime constants of the verifier pallet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditPolicy {
    /// Least probability of an audit.
    pub floor: Perbill,
    /// Greatest probability of an audit.
    pub ceiling: Perbill,
    /// Multiple of the break-even probability `v / (S + v)`, in percent (200 = twice).
    pub safety_percent: u32,
}

const BILLION: u128 = 1_000_000_000;
const MILLION: u128 = 1_000_000;

/// The probability that a k = 1 request is audited: `value` is what the provider stands to be
/// paid (at most the escrow), `slash` what an audit that catches it takes from its stake,
/// `reputation_ppm` its public score.
pub fn audit_probability(policy: &AuditPolicy, value: u128, slash: u128, reputation_ppm: u32) -> Perbill {
    let floor = u128::from(policy.floor.deconstruct());
    let ceiling = u128::from(policy.ceiling.deconstruct()).max(floor);
    // Halved together until S + v fits and v · 10^9 cannot overflow; the ratio barely moves.
    let (mut value, mut slash) = (value, slash);
    while value.checked_add(slash).is_none_or(|d| d > u128::MAX / BILLION) {
        (value, slash) = (value / 2, slash / 2);
    }
    let denominator = value + slash;
    if denominator == 0 {
        return Perbill::from_parts(ceiling as u32);
    }
    // v / (S + v) in parts per billion, rounded up; then the safety margin and the reputation
    // factor (1.5 − r), both exact in integers.
    let break_even = (value * BILLION).div_ceil(denominator);
    let reputation = MILLION.saturating_mul(3) / 2 - u128::from(reputation_ppm).min(MILLION);
    let p = break_even.saturating_mul(u128::from(policy.safety_percent)).saturating_mul(reputation) / (100 * MILLION);
    Perbill::from_parts(p.clamp(floor, ceiling) as u32)
}

/// Whether the request is audited: a uniform draw from `randomness` (chain randomness taken
/// after the reveal) and the request id, against `probability`.
pub fn is_audited(probability: Perbill, randomness: &[u8; 32], request: u64) -> bool {
    let digest = blake2_256(&[&b"agora/audit/v1"[..], randomness, &request.to_le_bytes()].concat());
    let draw = u64::from_le_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]]);
    // Uniform in [0, 10^9) up to a bias below 10^-9 (2^64 is not a multiple of 10^9).
    (draw % BILLION as u64) < u64::from(probability.deconstruct())
}

/// The chance that a provider cheating on `jobs` requests, each audited with `probability` and
/// each audit detecting the cheat with `detection`, is caught at least once.
#[cfg(feature = "std")]
pub fn caught_within(probability: f64, detection: f64, jobs: u32) -> f64 {
    1.0 - (1.0 - probability * detection).powi(jobs as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AuditPolicy {
        AuditPolicy { floor: Perbill::from_percent(5), ceiling: Perbill::from_percent(100), safety_percent: 200 }
    }

    #[test]
    fn grows_with_the_value_and_shrinks_with_reputation() {
        let p = |value, reputation| audit_probability(&policy(), value, 1_000, reputation);
        // Tiny value against the slash: the floor.
        assert_eq!(p(1, 500_000), Perbill::from_percent(5));
        // v / (S + v) = 1/11; twice that at reputation 0.5: 18.18...%.
        assert_eq!(p(100, 500_000), Perbill::from_parts(181_818_182));
        // Best reputation halves it; the worst raises it by half.
        assert_eq!(p(100, 1_000_000), Perbill::from_parts(90_909_091));
        assert_eq!(p(100, 0), Perbill::from_parts(272_727_273));
        assert!(p(200, 500_000) > p(100, 500_000));
        // Value as large as the slash: capped at certainty.
        assert_eq!(p(1_000, 0), Perbill::from_percent(100));
        // Nothing at stake on either side: always audit rather than divide by zero.
        assert_eq!(audit_probability(&policy(), 0, 0, 500_000), Perbill::from_percent(100));
        // Amounts near u128::MAX neither wrap nor lose the ratio.
        assert_eq!(audit_probability(&policy(), u128::MAX / 2, 1, 500_000), Perbill::from_percent(100));
        assert_eq!(audit_probability(&policy(), u128::MAX / 22, u128::MAX / 22 * 10, 500_000), Perbill::from_parts(181_818_182));
    }

    #[test]
    fn the_draw_follows_the_probability() {
        let randomness = [7u8; 32];
        let audited = |p: Perbill| (0..20_000u64).filter(|&r| is_audited(p, &randomness, r)).count();
        assert_eq!(audited(Perbill::zero()), 0);
        assert_eq!(audited(Perbill::one()), 20_000);
        let five = audited(Perbill::from_percent(5));
        assert!((800..1200).contains(&five), "{five}");
        // Other randomness, other requests audited.
        let other = [8u8; 32];
        let differ = (0..2_000u64).filter(|&r| is_audited(Perbill::from_percent(50), &randomness, r) != is_audited(Perbill::from_percent(50), &other, r)).count();
        assert!(differ > 500, "{differ}");
    }

    #[test]
    fn a_persistent_cheat_is_caught_quickly() {
        assert!((caught_within(0.05, 1.0, 1) - 0.05).abs() < 1e-12);
        assert!(caught_within(0.05, 0.99, 100) > 0.99);
        assert!(caught_within(0.05, 0.99, 20) < 0.65);
    }
}
