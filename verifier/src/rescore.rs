//! Re-scoring: is a claimed output what the registered model produces for this prompt?
//!
//! The verifier runs one teacher-forced prefill of prompt + claimed output
//! ([`Engine::score_blocking`]) and judges each claimed token against its own logits at that
//! position. Prefill and the claimant's token-by-token decode run different kernels, so honest
//! logits differ a little; the [`Tolerances`] of the release's runtime profile say how much.
//!
//! - **Greedy** (temperature 0): the claimed token must be within the verifier's top
//!   `max_rank + 1` and within `max_margin_milli` of its top logit.
//! - **Sampled**: the sampler ([`sampler::pick`]) is replayed with the request's seed. A claimed
//!   token is accepted if the seeded uniform draw `u` falls in the share of probability mass it
//!   could own had every logit been off by up to `max_logit_delta_milli`: tokens within δ of it
//!   may sit on either side of it in the sampler's order, and every probability may scale by up
//!   to `e^(2δ/T)`.
//! - **The end**: an output shorter than the request allowed, in a context not yet full, claims
//!   that the model stopped there; an end-of-generation token must then pass the same test at
//!   the position after the last token. This is what catches a truncated output. An output that
//!   contains an end-of-generation token was never produced by an honest engine.
//! - **Greedy, over the whole output**: at least `min_match_ppm` of the positions must be exactly
//!   the verifier's argmax (rounded in the claimant's favour: one mismatch is always allowed).
//!   Sampled outputs have no such rule: where the draw lands deep in a flat tail of thousands of
//!   tiny probabilities, a shift of 0.1 logit moves the pick by hundreds of tokens, so honest
//!   sampled outputs are often not the verifier's exact pick (calibration: 23 % of positions at
//!   T = 1 without a top-k cut) while needing a δ far under the tolerance.
//!
//! A rejection carries the evidence: the first failing position, the claimed and expected
//! tokens, the claimed token's rank and log-probability, and the tolerance it broke.

use agora_engine::{sampler, Engine, EngineError};
use agora_primitives::wire::Tolerances;
use agora_primitives::SamplingParams;
use std::ops::ControlFlow;

/// A claimed output and what the request says about how it was produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub prompt: Vec<u32>,
    pub output: Vec<u32>,
    /// The request's limit; an output of exactly this length claims no end.
    pub max_output_tokens: u32,
    pub sampling: SamplingParams,
    /// The request's sampling seed ([`agora_primitives::sampling_seed`]).
    pub seed: u64,
}

/// Why a claim cannot be checked at all (as opposed to a checked claim being rejected).
#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error("the claimed output has {claimed} tokens but the request allowed at most {allowed}")]
    OutputTooLong { claimed: usize, allowed: u32 },
    #[error("claimed output token {position} has id {token}, outside the model's vocabulary of {n_vocab}")]
    TokenOutOfVocabulary { position: usize, token: u32, n_vocab: u32 },
    #[error("prompt ({prompt} tokens) and claimed output ({output} tokens) do not fit the context of {n_ctx} tokens")]
    TooLong { prompt: usize, output: usize, n_ctx: u32 },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What the claim says was produced at one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    Token(u32),
    /// Generation ended here (one of the model's end-of-generation tokens).
    End,
}

/// Which tolerance a position broke.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Broken {
    /// A claimed output token is an end-of-generation token: generation would have stopped.
    EndTokenInOutput,
    /// Greedy: the claimed token's rank is above `max_rank`.
    Rank { rank: u32, max_rank: u32 },
    /// Greedy: the claimed token's logit is further than `max_margin` below the top one.
    Margin { margin: f32, max_margin: f32 },
    /// Sampled: the seeded draw `u` is outside `[low, high)`, the widest share of mass the claimed
    /// token could own with every logit off by up to `max_delta`.
    Draw { u: f64, low: f64, high: f64, max_delta: f32 },
    /// Too few positions are the verifier's own choice.
    Matches { matched: u32, checked: u32, min_match_ppm: u32 },
}

/// Why a claim was rejected, pointing at the first position that fails.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Position in the output; `output.len()` means the claimed end.
    pub position: u32,
    pub claimed: Claimed,
    /// The verifier's own choice there.
    pub expected: u32,
    /// The claimed token's rank among the verifier's logits (0 = the top one).
    pub rank: u32,
    /// The claimed token's log-probability under the verifier's logits (temperature 1).
    pub logprob: f32,
    pub broken: Broken,
}

/// The outcome of re-scoring a claim, with the figures calibration needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// `None`: accepted.
    pub rejection: Option<Evidence>,
    /// Positions judged (output tokens, plus the end if one is claimed).
    pub checked: u32,
    /// Positions whose claimed token is exactly the verifier's own choice.
    pub matched: u32,
    /// Largest rank of a claimed token.
    pub worst_rank: u32,
    /// Largest gap between the top logit and a claimed token's.
    pub worst_margin: f32,
    /// Sampled requests: the largest logit difference a claimed token needed to be accepted.
    pub worst_delta: f32,
    pub min_logprob: f32,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.rejection.is_none()
    }
}

/// Re-scores `claim` with `engine`, under the tolerances of the engine's runtime profile, and
/// stops at the first failing position. The engine must run the request's release under the
/// request's runtime profile (its [`Engine::profile_hash`]); the caller checks that.
pub fn rescore(engine: &Engine, claim: &Claim) -> Result<Verdict, RescoreError> {
    run(engine, claim, engine.profile().tolerances, true)
}

/// [`rescore`] under other tolerances than the profile's: for calibrating them.
pub fn rescore_under(engine: &Engine, claim: &Claim, tolerances: Tolerances) -> Result<Verdict, RescoreError> {
    run(engine, claim, tolerances, true)
}

/// Like [`rescore`] but judges every position, so the verdict's figures cover the whole output
/// (what calibration measures).
pub fn measure(engine: &Engine, claim: &Claim) -> Result<Verdict, RescoreError> {
    run(engine, claim, engine.profile().tolerances, false)
}

fn run(engine: &Engine, claim: &Claim, tolerances: Tolerances, stop_at_failure: bool) -> Result<Verdict, RescoreError> {
    if claim.output.len() > claim.max_output_tokens as usize {
        return Err(RescoreError::OutputTooLong { claimed: claim.output.len(), allowed: claim.max_output_tokens });
    }
    let n_vocab = engine.n_vocab();
    if let Some((position, &token)) = claim.output.iter().enumerate().find(|(_, &t)| t >= n_vocab) {
        return Err(RescoreError::TokenOutOfVocabulary { position, token, n_vocab });
    }
    let n_ctx = engine.config().n_ctx;
    if claim.prompt.len() + claim.output.len() > n_ctx as usize {
        return Err(RescoreError::TooLong { prompt: claim.prompt.len(), output: claim.output.len(), n_ctx });
    }
    // An engine stops at the request's limit or a full context; anything shorter ended by choice.
    let claims_end = claim.output.len() < claim.max_output_tokens as usize
        && claim.prompt.len() + claim.output.len() < n_ctx as usize;
    let checked = claim.output.len() as u32 + u32::from(claims_end);
    let judge = Judge {
        output: claim.output.clone(),
        claims_end,
        sampling: claim.sampling,
        seed: claim.seed,
        tolerances,
        allowed_mismatches: if claim.sampling.temperature_milli == 0 {
            allowed_mismatches(checked, tolerances.min_match_ppm)
        } else {
            u32::MAX
        },
        end_tokens: engine.end_tokens().to_vec(),
        stop_at_failure,
        first_mismatch: None,
        verdict: Verdict {
            rejection: None,
            checked: 0,
            matched: 0,
            worst_rank: 0,
            worst_margin: 0.0,
            worst_delta: 0.0,
            min_logprob: 0.0,
        },
    };
    let mut judge = engine.score_blocking(&claim.prompt, &claim.output, judge)?;
    judge.finish();
    Ok(judge.verdict)
}

/// Mismatches tolerated among `checked` positions: the share `min_match_ppm` leaves, rounded up,
/// and at least one (a short honest output may hold one near-tie).
pub fn allowed_mismatches(checked: u32, min_match_ppm: u32) -> u32 {
    let share = u64::from(1_000_000u32.saturating_sub(min_match_ppm));
    (u64::from(checked) * share).div_ceil(1_000_000).max(1) as u32
}

/// The visitor of the scoring pass: judges each position as its logits arrive.
struct Judge {
    output: Vec<u32>,
    claims_end: bool,
    sampling: SamplingParams,
    seed: u64,
    tolerances: Tolerances,
    allowed_mismatches: u32,
    end_tokens: Vec<u32>,
    stop_at_failure: bool,
    /// Where the claim first differs from the verifier's own choice.
    first_mismatch: Option<Evidence>,
    verdict: Verdict,
}

impl agora_engine::ScoreVisitor for Judge {
    fn visit(&mut self, index: usize, logits: &[f32]) -> ControlFlow<()> {
        let claimed = match self.output.get(index) {
            Some(&token) => Claimed::Token(token),
            None if self.claims_end => Claimed::End,
            None => return ControlFlow::Break(()),
        };
        let position = judge_position(logits, claimed, index as u32, &self.sampling, self.seed, &self.tolerances, &self.end_tokens);
        let v = &mut self.verdict;
        v.checked += 1;
        v.worst_rank = v.worst_rank.max(position.evidence.rank);
        v.worst_margin = v.worst_margin.max(position.margin);
        v.worst_delta = v.worst_delta.max(position.delta);
        v.min_logprob = v.min_logprob.min(position.evidence.logprob);
        if position.matched {
            v.matched += 1;
        } else if self.first_mismatch.is_none() {
            self.first_mismatch = Some(position.evidence);
        }
        if position.failed && v.rejection.is_none() {
            v.rejection = Some(position.evidence);
        }
        let mismatches = v.checked - v.matched;
        let hopeless = v.rejection.is_some() || mismatches > self.allowed_mismatches;
        if hopeless && self.stop_at_failure {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl Judge {
    fn finish(&mut self) {
        let v = &mut self.verdict;
        if v.rejection.is_none() && v.checked - v.matched > self.allowed_mismatches {
            if let Some(first) = self.first_mismatch {
                let broken = Broken::Matches { matched: v.matched, checked: v.checked, min_match_ppm: self.tolerances.min_match_ppm };
                v.rejection = Some(Evidence { broken, ..first });
            }
        }
    }
}

/// One judged position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionJudgement {
    /// The claimed token is exactly the verifier's choice.
    pub matched: bool,
    /// The claimed token breaks a tolerance (`evidence.broken` says which).
    pub failed: bool,
    /// Gap between the top logit and the claimed token's.
    pub margin: f32,
    /// Sampled: the logit difference the claimed token needs to be accepted (0 if it matched).
    pub delta: f32,
    pub evidence: Evidence,
}

/// Judges the claim at one position (`position` indexes the output; it also picks the sampler's
/// draw) against the verifier's `logits` there.
pub fn judge_position(
    logits: &[f32],
    claimed: Claimed,
    position: u32,
    sampling: &SamplingParams,
    seed: u64,
    tolerances: &Tolerances,
    end_tokens: &[u32],
) -> PositionJudgement {
    let sampled = sampling.temperature_milli > 0;
    // The tokens the claim may stand on: the claimed one, or for a claimed end every end token.
    let probes = match claimed {
        Claimed::Token(token) => vec![token],
        Claimed::End => end_tokens.to_vec(),
    };
    let scan = Scan::new(logits, &probes);
    let expected = if sampled { sampler::pick(logits, sampling, seed, position) } else { scan.argmax };
    // For a claimed end, the end token the verifier ranks highest.
    let (token, token_rank) = probes.iter().copied().zip(scan.ahead.iter().copied()).min_by_key(|&(_, ahead)| ahead).unwrap_or((u32::MAX, logits.len() as u32));
    let matched = match claimed {
        Claimed::Token(token) => token == expected,
        Claimed::End => end_tokens.contains(&expected),
    };
    let logit = |t: u32| logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY);
    let margin = (logit(scan.argmax) - logit(token)).max(0.0);
    let mut evidence = Evidence {
        position,
        claimed,
        expected,
        rank: token_rank,
        logprob: (f64::from(logit(token)) - scan.log_normaliser) as f32,
        broken: Broken::Matches { matched: 0, checked: 0, min_match_ppm: tolerances.min_match_ppm },
    };
    let mut delta = 0.0;
    let broken = if matches!(claimed, Claimed::Token(t) if end_tokens.contains(&t)) {
        Some(Broken::EndTokenInOutput)
    } else if !sampled {
        let max_margin = tolerances.max_margin_milli as f32 / 1000.0;
        if token_rank > tolerances.max_rank {
            Some(Broken::Rank { rank: token_rank, max_rank: tolerances.max_rank })
        } else if margin > max_margin {
            Some(Broken::Margin { margin, max_margin })
        } else {
            None
        }
    } else if matched {
        None
    } else {
        let distribution = Distribution::new(logits, sampling);
        let u = sampler::uniform(seed, position);
        let candidates: Vec<u32> = match claimed {
            Claimed::Token(token) => vec![token],
            Claimed::End => end_tokens.to_vec(),
        };
        delta = candidates.iter().map(|&t| distribution.required_delta(logits, t, u)).fold(f64::INFINITY, f64::min) as f32;
        let max_delta = tolerances.max_logit_delta_milli as f64 / 1000.0;
        if f64::from(delta) <= max_delta {
            None
        } else {
            let (low, high) = distribution.interval(logits, token, max_delta);
            Some(Broken::Draw { u, low, high, max_delta: max_delta as f32 })
        }
    };
    if let Some(broken) = broken {
        evidence.broken = broken;
    }
    PositionJudgement { matched, failed: broken.is_some(), margin, delta, evidence }
}

/// What judging needs of one position's logits, read in a single pass over the vocabulary (it is
/// 49k wide, and the passes used to be five: on the hot path of re-scoring).
struct Scan {
    /// The sampler's greedy choice (highest logit, lowest id among equals; NaN lowest).
    argmax: u32,
    /// For each probe token, how many tokens the sampler's order puts before it ([`rank`]).
    ahead: Vec<u32>,
    /// `ln Σ exp(logit)`, so a token's log-probability is its logit minus this.
    log_normaliser: f64,
}

impl Scan {
    fn new(logits: &[f32], probes: &[u32]) -> Self {
        let own: Vec<Option<f32>> = probes.iter().map(|&t| logits.get(t as usize).map(|&l| key(l))).collect();
        let mut ahead: Vec<u32> = own.iter().map(|o| if o.is_some() { 0 } else { logits.len() as u32 }).collect();
        let (mut argmax, mut best) = (0u32, f32::NEG_INFINITY);
        // Log-sum-exp kept online: `sum` is relative to the running maximum `max`.
        let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0f64);
        for (id, &raw) in logits.iter().enumerate() {
            let (id, l) = (id as u32, key(raw));
            if l.total_cmp(&best) == core::cmp::Ordering::Greater {
                (argmax, best) = (id, l);
            }
            for ((count, own), &probe) in ahead.iter_mut().zip(&own).zip(probes) {
                if let Some(own) = *own {
                    if l > own || (l == own && id < probe) {
                        *count += 1;
                    }
                }
            }
            let x = f64::from(raw);
            if x > max {
                sum = sum * (max - x).exp() + 1.0;
                max = x;
            } else {
                sum += (x - max).exp();
            }
        }
        Self { argmax, ahead, log_normaliser: max + sum.ln() }
    }
}

/// NaN is the lowest logit, as in the sampler.
fn key(logit: f32) -> f32 {
    if logit.is_nan() {
        f32::NEG_INFINITY
    } else {
        logit
    }
}

/// How many tokens the sampler's order (logit descending, then id ascending) puts before `token`.
pub fn rank(logits: &[f32], token: u32) -> u32 {
    let Some(&own) = logits.get(token as usize) else { return logits.len() as u32 };
    let own = key(own);
    logits
        .iter()
        .enumerate()
        .filter(|&(id, &l)| {
            let l = key(l);
            l > own || (l == own && (id as u32) < token)
        })
        .count() as u32
}

/// The least share of mass a set holding `mass` of it can keep when its logits drop by δ and all
/// others rise by δ (`scale = e^(2δ/T)`). A share past 1 (outside the nucleus) stays as it is.
fn shrink(mass: f64, scale: f64) -> f64 {
    if mass >= 1.0 {
        return mass;
    }
    mass / (mass + (1.0 - mass) * scale)
}

/// The most share of mass a set holding `mass` of it can reach the other way round.
fn grow(mass: f64, scale: f64) -> f64 {
    if mass >= 1.0 {
        return mass;
    }
    mass / (mass + (1.0 - mass) / scale)
}

/// The sampler's candidates at one position, sorted as it walks them, with their weights.
struct Distribution {
    /// Candidate logits, descending (after the top-k cut).
    logits: Vec<f32>,
    /// `prefix[j]`: total weight of the first `j` candidates.
    prefix: Vec<f64>,
    /// How many candidates the sampler's nucleus keeps (the draw is scaled to their weight).
    keep: usize,
    /// Nucleus share, 0 for none.
    top_p: f64,
    top: f32,
    temperature: f64,
    top_k: usize,
}

impl Distribution {
    fn new(logits: &[f32], sampling: &SamplingParams) -> Self {
        let mut sorted: Vec<f32> = logits.iter().map(|&l| key(l)).collect();
        let top_k = sampling.top_k as usize;
        let descending = |a: &f32, b: &f32| b.total_cmp(a);
        if top_k > 0 && top_k < sorted.len() {
            sorted.select_nth_unstable_by(top_k - 1, descending);
            sorted.truncate(top_k);
        }
        sorted.sort_unstable_by(descending);
        let temperature = f64::from(sampling.temperature_milli.max(1)) / 1000.0;
        let top = sorted.first().copied().unwrap_or(0.0);
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(0.0);
        for &l in &sorted {
            let last = *prefix.last().unwrap_or(&0.0);
            prefix.push(last + ((f64::from(l) - f64::from(top)) / temperature).exp());
        }
        let total = *prefix.last().unwrap_or(&0.0);
        let mut keep = sorted.len();
        let top_p = f64::from(sampling.top_p_milli) / 1000.0;
        if sampling.top_p_milli > 0 && sampling.top_p_milli < 1000 {
            let target = top_p * total;
            if let Some(j) = prefix.iter().skip(1).position(|&mass| mass >= target) {
                keep = j + 1;
            }
        }
        Self { logits: sorted, prefix, keep, top_p, top, temperature, top_k }
    }

    /// The widest `[low, high)` of the draw for which the sampler could pick `token` if every
    /// logit were off by up to `delta`. Empty (`low >= high`) if it could not be picked at all.
    fn interval(&self, logits: &[f32], token: u32, delta: f64) -> (f64, f64) {
        let own = f64::from(key(logits.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY)));
        // Candidates surely before the token, and those that may be before it.
        let surely = self.logits.partition_point(|&l| f64::from(l) > own + delta);
        let maybe = self.logits.partition_point(|&l| f64::from(l) >= own - delta);
        if self.top_k > 0 && surely >= self.top_k {
            return (1.0, 0.0);
        }
        let weight = ((own - f64::from(self.top)) / self.temperature).exp();
        // The token is among the candidates if its logit is there; its own weight is not mass
        // before it.
        let in_candidates = self.logits.iter().take(maybe).any(|&l| f64::from(l) == own);
        let before_max = self.prefix[maybe] - if in_candidates { weight } else { 0.0 };
        let scale = (2.0 * delta / self.temperature).exp();
        // The draw is scaled to the nucleus, whose size the logits' error can move too: take the
        // union over the smallest, the verifier's own and the largest nucleus the sampler could
        // have kept, among those the token could be in.
        let (mut low, mut high) = (1.0f64, 0.0f64);
        for kept in self.nuclei(scale) {
            if surely >= kept {
                continue;
            }
            let mass = self.prefix[kept];
            low = low.min(shrink(self.prefix[surely] / mass, scale));
            high = high.max(grow((before_max.max(0.0) + weight) / mass, scale).min(1.0));
        }
        (low, high)
    }

    /// How many candidates the nucleus could keep with every probability share moved by up to
    /// `scale`: the fewest, the verifier's own count, the most.
    fn nuclei(&self, scale: f64) -> [usize; 3] {
        let all = self.logits.len();
        let total = self.prefix[all];
        if self.top_p <= 0.0 || self.top_p >= 1.0 || total <= 0.0 {
            return [all; 3];
        }
        // The shortest prefix whose share, moved as far as `moved` allows, reaches top_p.
        let first_reaching = |moved: &dyn Fn(f64) -> f64| {
            (1..=all).find(|&j| moved(self.prefix[j] / total) >= self.top_p).unwrap_or(all)
        };
        [first_reaching(&|m| grow(m, scale)), self.keep, first_reaching(&|m| shrink(m, scale))]
    }

    /// The least logit difference at which `token` could own the draw `u`; infinite past 30
    /// logits (nothing honest is that far off).
    fn required_delta(&self, logits: &[f32], token: u32, u: f64) -> f64 {
        let owns = |delta: f64| {
            let (low, high) = self.interval(logits, token, delta);
            low <= u && u < high
        };
        if owns(0.0) {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, 30.0);
        if !owns(hi) {
            return f64::INFINITY;
        }
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            if owns(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_END: &[u32] = &[];

    fn greedy() -> SamplingParams {
        SamplingParams::default()
    }

    fn judge(logits: &[f32], claimed: Claimed, sampling: &SamplingParams, end: &[u32]) -> PositionJudgement {
        judge_position(logits, claimed, 0, sampling, 7, &Tolerances::default(), end)
    }

    #[test]
    fn rank_follows_the_samplers_order() {
        let logits = [1.0, 3.0, 3.0, f32::NAN, 2.0];
        assert_eq!(rank(&logits, 1), 0);
        assert_eq!(rank(&logits, 2), 1);
        assert_eq!(rank(&logits, 4), 2);
        assert_eq!(rank(&logits, 0), 3);
        assert_eq!(rank(&logits, 3), 4);
        assert_eq!(rank(&logits, 99), 5);
    }

    #[test]
    fn one_scan_agrees_with_the_samplers_argmax_rank_and_log_probability() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for case in 0..200 {
            // Coarse values make ties common; some NaN and -inf, as broken logits would be.
            let mut logits: Vec<f32> = (0..300).map(|_| (rng.next_u32() % 40) as f32 / 4.0 - 5.0).collect();
            if case % 3 == 0 {
                logits[(rng.next_u32() % 300) as usize] = f32::NAN;
                logits[(rng.next_u32() % 300) as usize] = f32::NEG_INFINITY;
            }
            let probes = [rng.next_u32() % 300, rng.next_u32() % 300, 400];
            let scan = Scan::new(&logits, &probes);
            assert_eq!(scan.argmax, sampler::argmax(&logits), "case {case}");
            assert_eq!(scan.ahead, probes.map(|p| rank(&logits, p)).to_vec(), "case {case}");
            for p in &probes[..2] {
                let (fused, plain) = ((f64::from(logits[*p as usize]) - scan.log_normaliser) as f32, sampler::logprob(&logits, *p));
                assert!(fused == plain || (fused - plain).abs() < 1e-5 || (fused.is_nan() && plain.is_nan()), "case {case}: {fused} vs {plain}");
            }
        }
    }

    #[test]
    fn greedy_accepts_near_ties_and_rejects_by_rank_and_margin() {
        let mut logits = vec![-1.0f32; 64];
        logits[5] = 10.0;
        logits[6] = 9.5;
        logits[7] = 5.0;
        let top = judge(&logits, Claimed::Token(5), &greedy(), NO_END);
        assert!(top.matched && !top.failed);
        let near = judge(&logits, Claimed::Token(6), &greedy(), NO_END);
        assert!(!near.matched && !near.failed, "{near:?}");
        assert_eq!(near.evidence.rank, 1);
        // Far below the top: the margin breaks (rank 2 is within the default 4).
        let far = judge(&logits, Claimed::Token(7), &greedy(), NO_END);
        assert!(matches!(far.evidence.broken, Broken::Margin { .. }), "{far:?}");
        // Many tokens just under the top: the rank breaks even though the margin is small.
        let crowded: Vec<f32> = (0..64).map(|i| 10.0 - i as f32 * 0.01).collect();
        let deep = judge(&crowded, Claimed::Token(20), &greedy(), NO_END);
        assert_eq!(deep.evidence.broken, Broken::Rank { rank: 20, max_rank: 4 });
    }

    #[test]
    fn a_claimed_end_needs_a_plausible_end_token_and_no_output_holds_one() {
        let mut logits = vec![0.0f32; 16];
        logits[2] = 8.0; // the end token
        logits[3] = 5.0;
        assert!(judge(&logits, Claimed::End, &greedy(), &[2]).matched);
        logits[2] = -5.0;
        let early = judge(&logits, Claimed::End, &greedy(), &[2]);
        assert!(early.failed && !early.matched, "{early:?}");
        assert_eq!(early.evidence.expected, 3);
        let inside = judge(&logits, Claimed::Token(2), &greedy(), &[2]);
        assert_eq!(inside.evidence.broken, Broken::EndTokenInOutput);
    }

    #[test]
    fn sampled_replays_the_seeded_draw_and_widens_it_by_the_logit_tolerance() {
        let sampling = SamplingParams { temperature_milli: 1000, top_k: 0, top_p_milli: 0 };
        // Token 0 owns the draws in [0, p0), token 1 the rest (the other two have no mass).
        let logits = [2.0f32, 1.0, -40.0, -40.0];
        let p0 = 1.0f64.exp() / (1.0f64.exp() + 1.0);
        // With every logit off by up to 0.3, token 0's share can shrink to p0 / (p0 + (1 - p0) e^0.6),
        // and token 1 could own every draw above that.
        let lowest_for_1 = p0 / (p0 + (1.0 - p0) * 0.6f64.exp());
        let tolerances = Tolerances { max_logit_delta_milli: 300, ..Tolerances::default() };
        let (mut swapped_accepted, mut swapped_rejected) = (0, 0);
        for position in 0..200 {
            let u = sampler::uniform(7, position);
            let expected = sampler::pick(&logits, &sampling, 7, position);
            assert_eq!(expected, u32::from(u >= p0));
            let own = judge_position(&logits, Claimed::Token(expected), position, &sampling, 7, &tolerances, NO_END);
            assert!(own.matched && !own.failed && own.delta == 0.0);
            if expected == 0 && (u - lowest_for_1).abs() > 1e-3 {
                let swapped = judge_position(&logits, Claimed::Token(1), position, &sampling, 7, &tolerances, NO_END);
                assert!(!swapped.matched);
                assert_eq!(swapped.failed, u < lowest_for_1, "u = {u}: {swapped:?}");
                if swapped.failed {
                    swapped_rejected += 1;
                    assert!(matches!(swapped.evidence.broken, Broken::Draw { .. }));
                } else {
                    swapped_accepted += 1;
                    assert!(swapped.delta > 0.0 && swapped.delta <= 0.3, "{swapped:?}");
                }
            }
            // A token without mass is never accepted.
            let hopeless = judge_position(&logits, Claimed::Token(3), position, &sampling, 7, &tolerances, NO_END);
            assert!(matches!(hopeless.evidence.broken, Broken::Draw { .. }), "{hopeless:?}");
        }
        assert!(swapped_accepted > 0 && swapped_rejected > 0);
    }

    #[test]
    fn sampled_allows_for_a_nucleus_the_error_moves() {
        // The top token holds just under 95 % of the mass: the verifier's nucleus of 0.95 keeps
        // two tokens, but a claimant whose top logit was a little higher kept only the top one
        // and picks it whatever the draw. A draw past the verifier's boundary for the top token
        // must still let it through within the tolerance, and a token outside any nucleus never.
        let sampling = SamplingParams { temperature_milli: 700, top_k: 40, top_p_milli: 950 };
        // Shares at T = 0.7: 0.9485, 0.0267, 0.0248 (the last token none).
        let logits = [3.0f32, 0.5, 0.45, -30.0];
        let distribution = Distribution::new(&logits, &sampling);
        assert_eq!(distribution.keep, 2);
        let tolerances = Tolerances { max_logit_delta_milli: 100, ..Tolerances::default() };
        // Within the two-token nucleus the top token owns draws below 0.973.
        let position = (0..400u32).find(|&p| sampler::uniform(3, p) > 0.98).unwrap();
        assert_eq!(sampler::pick(&logits, &sampling, 3, position), 1);
        let top = judge_position(&logits, Claimed::Token(0), position, &sampling, 3, &tolerances, NO_END);
        assert!(!top.failed && !top.matched, "{top:?}");
        let outside = judge_position(&logits, Claimed::Token(3), position, &sampling, 3, &tolerances, NO_END);
        assert!(outside.failed, "{outside:?}");
    }

    #[test]
    fn sampled_respects_top_k() {
        let sampling = SamplingParams { temperature_milli: 1000, top_k: 2, top_p_milli: 0 };
        let logits = [3.0f32, 2.9, 2.8, -9.0];
        for position in 0..32 {
            let third = judge_position(&logits, Claimed::Token(2), position, &sampling, 1, &Tolerances { max_logit_delta_milli: 0, ..Tolerances::default() }, NO_END);
            assert!(third.failed, "{third:?}");
        }
    }

    #[test]
    fn mismatches_allowed_round_up_and_never_reach_zero() {
        assert_eq!(allowed_mismatches(0, 900_000), 1);
        assert_eq!(allowed_mismatches(2, 900_000), 1);
        assert_eq!(allowed_mismatches(64, 900_000), 7);
        assert_eq!(allowed_mismatches(64, 1_000_000), 1);
        assert_eq!(allowed_mismatches(100, 0), 100);
    }
}
