//! Token choice under the determinism contract (docs/DESIGN.md section 4).
//!
//! Greedy takes the highest logit. For temperature > 0 the sampler is ours, not llama.cpp's
//! `dist`, whose `std::uniform_real_distribution` differs between C++ standard libraries: one
//! uniform number per position from ChaCha20 keyed by the request's seed (stream = position),
//! f64 softmax, inverse CDF. Candidates are ordered by logit, highest first, ties by lower token
//! id, so every implementation walks them in the same order. The verifier replays this exact
//! function on its own logits.

use agora_primitives::SamplingParams;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::cmp::Ordering;

/// Separates the sampler's key from every other use of the request seed.
const SAMPLER_DOMAIN: &[u8] = b"agora/sampler/v1";

/// Descending logit, then ascending token id; NaN sorts last so a broken logit is never chosen
/// over a real one.
fn rank(a: (u32, f32), b: (u32, f32)) -> Ordering {
    let key = |l: f32| if l.is_nan() { f32::NEG_INFINITY } else { l };
    key(b.1).total_cmp(&key(a.1)).then(a.0.cmp(&b.0))
}

/// The greedy choice: the highest logit, the lowest id among equals.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (id, &logit) in logits.iter().enumerate() {
        if rank((id as u32, logit), best) == Ordering::Less {
            best = (id as u32, logit);
        }
    }
    best.0
}

/// The uniform number in `[0, 1)` used at `position` of the output of a request with `seed`.
pub fn uniform(seed: u64, position: u32) -> f64 {
    let mut key = [0u8; 32];
    let digest = sha2_of(&[SAMPLER_DOMAIN, &seed.to_le_bytes()]);
    key.copy_from_slice(&digest);
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(u64::from(position));
    // 53 random bits: every value is exactly representable and strictly below 1.
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn sha2_of(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `ln softmax(logits)[token]`, in f64 for a stable log-sum-exp.
pub fn logprob(logits: &[f32], token: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let chosen = logits.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY) as f64;
    (chosen - max - sum.ln()) as f32
}

/// Picks the token at `position` of the output.
pub fn pick(logits: &[f32], sampling: &SamplingParams, seed: u64, position: u32) -> u32 {
    if sampling.temperature_milli == 0 || logits.is_empty() {
        return argmax(logits);
    }
    let mut candidates: Vec<(u32, f32)> = logits.iter().enumerate().map(|(id, &l)| (id as u32, l)).collect();
    let top_k = sampling.top_k as usize;
    if top_k > 0 && top_k < candidates.len() {
        candidates.select_nth_unstable_by(top_k - 1, |a, b| rank(*a, *b));
        candidates.truncate(top_k);
    }
    candidates.sort_unstable_by(|a, b| rank(*a, *b));
    candidates.retain(|c| !c.1.is_nan());
    if candidates.is_empty() {
        return argmax(logits);
    }

    let temperature = f64::from(sampling.temperature_milli) / 1000.0;
    let max = f64::from(candidates[0].1);
    let weights: Vec<f64> = candidates.iter().map(|c| ((f64::from(c.1) - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();

    // Nucleus cut: the shortest prefix whose mass reaches top_p (at least one candidate).
    let mut keep = weights.len();
    if sampling.top_p_milli > 0 && sampling.top_p_milli < 1000 {
        let target = f64::from(sampling.top_p_milli) / 1000.0 * total;
        let mut mass = 0.0;
        for (i, w) in weights.iter().enumerate() {
            mass += w;
            if mass >= target {
                keep = i + 1;
                break;
            }
        }
    }
    let kept = &weights[..keep];
    let kept_total: f64 = kept.iter().sum();
    let target = uniform(seed, position) * kept_total;
    let mut cumulative = 0.0;
    for (i, w) in kept.iter().enumerate() {
        cumulative += w;
        if target < cumulative {
            return candidates[i].0;
        }
    }
    candidates[keep - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(temperature_milli: u32, top_k: u32, top_p_milli: u32) -> SamplingParams {
        SamplingParams { temperature_milli, top_k, top_p_milli }
    }

    #[test]
    fn greedy_takes_the_highest_logit_and_the_lowest_id_on_ties() {
        assert_eq!(argmax(&[0.1, 3.0, -1.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0, -7.0]), 1);
        assert_eq!(pick(&[0.1, 3.0, 2.9], &SamplingParams::default(), 42, 0), 1);
    }

    #[test]
    fn the_uniform_stream_depends_on_seed_and_position_only() {
        let u = uniform(7, 3);
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, uniform(7, 3));
        assert_ne!(u, uniform(7, 4));
        assert_ne!(u, uniform(8, 3));
    }

    #[test]
    fn top_k_one_is_greedy_whatever_the_seed() {
        let logits = [0.5, 2.0, 1.9, -3.0];
        for seed in 0..50 {
            assert_eq!(pick(&logits, &sampled(1000, 1, 0), seed, seed as u32), 1);
        }
    }

    #[test]
    fn sampling_follows_the_softmax() {
        // Two equal logits and a hopeless one: over many positions both favourites come up about
        // half the time each and the third never at this temperature.
        let logits = [1.0, 1.0, -60.0];
        let mut counts = [0u32; 3];
        for position in 0..4000 {
            counts[pick(&logits, &sampled(1000, 0, 0), 99, position) as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((1800..2200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn top_p_drops_the_tail() {
        // Mass ~0.88 on token 0, ~0.12 on token 1: a nucleus of 0.5 keeps only token 0.
        let logits = [2.0, 0.0, -1.0];
        for position in 0..500 {
            assert_eq!(pick(&logits, &sampled(1000, 0, 500), 5, position), 0);
        }
    }

    #[test]
    fn logprob_is_the_log_softmax_of_the_token() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        for (token, &l) in logits.iter().enumerate() {
            assert!((logprob(&logits, token as u32) as f64 - (l as f64 - z.ln())).abs() < 1e-6);
        }
        let total: f64 = (0..3).map(|t| (logprob(&logits, t) as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(logprob(&logits, 9), f32::NEG_INFINITY);
    }
}
