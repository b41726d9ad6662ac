//! Calibrates re-scoring on the real model and prints the tables of `verifier/README.md`.
//!
//! For every prompt of `verifier/data/calibration-prompts.txt` (a user turn in the chat
//! template) and every sampling mode, it generates the honest output with 1 and with 2 threads,
//! re-scores it (every position, by prefill) and records how far from the verifier's own choice
//! the honest tokens were. Then it builds the cheats of that request and re-scores each under
//! the tolerances given (default: the ones the runtime profile ships with):
//!
//! - another model: SmolLM2 with half its transformer blocks pruned (same tokenizer);
//! - another quantization: SmolLM2 requantized by llama.cpp's quantizer to Q4_0 (about as
//!   cheap) and Q2_K (much cheaper); and to Q8_0, which is no cheat (dearer to run, and holding
//!   Q4_1's weights almost exactly) but shows where re-scoring's power ends;
//! - truncated: the first half of the honest output, claiming the model stopped there;
//! - padded: the honest output plus 8 more tokens (its own first ones) where it had ended;
//! - random tokens, as many as the honest output has;
//! - an honest prefix (half) followed by random tokens.
//!
//! `cargo test --workspace --no-run && $CARGO_TARGET_DIR/debug/agora-verifier-calibrate`

use agora_tokenizer::{ChatTurn, Tokenizer};
use agora_fixtures::models::{self, Variant};
use agora_engine::{Engine, EngineConfig, GenerateRequest, Progress};
use agora_primitives::wire::{StopReason, Tolerances};
use agora_primitives::{sampling_seed, SamplingParams};
use agora_verifier::rescore::{measure, rescore_under, Claim, Verdict};
use anyhow::{Context, Result};
use clap::Parser;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Parser)]
struct Args {
    /// Use only the first N prompts of the set.
    #[arg(long)]
    prompts: Option<usize>,
    /// The request's output limit.
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
    /// Only these sampling modes (indices into greedy, T=0.7 k=40 p=0.95, T=1.0).
    #[arg(long, value_delimiter = ',')]
    modes: Option<Vec<usize>>,
    /// Judge the cheats under these instead of the profile's tolerances:
    /// max_rank,max_margin_milli,max_logit_delta_milli,min_match_ppm.
    #[arg(long)]
    tolerances: Option<String>,
}

const MODES: [(&str, SamplingParams); 3] = [
    ("greedy", SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 }),
    ("T=0.7 k=40 p=0.95", SamplingParams { temperature_milli: 700, top_k: 40, top_p_milli: 950 }),
    ("T=1.0", SamplingParams { temperature_milli: 1000, top_k: 0, top_p_milli: 0 }),
];

const CHEATS: [&str; 8] = [
    "other model (half the blocks)",
    "Q4_0 requantized",
    "Q2_K requantized",
    "Q8_0 requantized (not cheaper)",
    "truncated",
    "padded",
    "random tokens",
    "honest prefix + junk",
];

#[derive(Default)]
struct Honest {
    outputs: u32,
    thread_mismatches: u32,
    rejected: u32,
    positions: u64,
    mismatches: u64,
    worst_rank: u32,
    worst_margin: f32,
    worst_delta: f32,
    worst_match: f64,
}

#[derive(Default)]
struct Detection {
    /// Cheats whose output differs from the honest one in more than 2 tokens.
    differing: u32,
    detected: u32,
    /// Of the detected, those whose evidence names the first differing position.
    at_first_difference: u32,
    /// Cheats that differ in at most 2 tokens (identical ones included), and how many of those
    /// were rejected.
    close: u32,
    close_rejected: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace")?.to_path_buf();
    let smollm2 = models::fetch_smollm2(&root)?;
    let prompts: Vec<String> = std::fs::read_to_string(root.join("verifier/data/calibration-prompts.txt"))?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .take(args.prompts.unwrap_or(usize::MAX))
        .collect();
    let tolerances = match &args.tolerances {
        Some(text) => parse_tolerances(text)?,
        None => Tolerances::default(),
    };

    let config = |threads: usize| EngineConfig { threads_per_slot: threads, ..EngineConfig::default() };
    let honest_1 = Engine::load(&smollm2, &models::smollm2_sha256(), config(1), Progress::Hidden)?;
    let honest_2 = Engine::load(&smollm2, &models::smollm2_sha256(), config(2), Progress::Hidden)?;
    // The cheats' models, in the order of the first rows of `CHEATS`.
    let cheaters: Vec<Engine> = [Variant::HalfBlocks, Variant::Q4_0, Variant::Q2K, Variant::Q8_0]
        .into_iter()
        .map(|variant| Engine::open(&models::smollm2_variant(&smollm2, variant)?, config(2), Progress::Hidden))
        .collect::<Result<_, _>>()?;
    let (tokenizer, _) = Tokenizer::open(&smollm2, Progress::Hidden)?;
    let end_tokens = honest_2.end_tokens().to_vec();
    let n_vocab = honest_2.n_vocab();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut random_token = || loop {
        let t = rng.next_u32() % n_vocab;
        if !end_tokens.contains(&t) {
            break t;
        }
    };

    let mut honest: BTreeMap<(usize, usize), Honest> = BTreeMap::new();
    let mut detection: BTreeMap<(usize, usize), Detection> = BTreeMap::new();
    let started = std::time::Instant::now();
    for (index, text) in prompts.iter().enumerate() {
        let prompt = tokenizer.chat(&[ChatTurn { role: "user".into(), content: text.clone() }])?;
        for (mode, (_, sampling)) in MODES.iter().enumerate() {
            if args.modes.as_ref().is_some_and(|m| !m.contains(&mode)) {
                continue;
            }
            let request = GenerateRequest {
                prompt: prompt.clone(),
                max_output_tokens: args.max_tokens,
                sampling: *sampling,
                seed: sampling_seed(index as u64),
                logprobs: false,
            };
            let claim = |output: Vec<u32>| Claim {
                prompt: prompt.clone(),
                output,
                max_output_tokens: args.max_tokens,
                sampling: *sampling,
                seed: request.seed,
            };
            let reference = honest_2.generate_blocking(request.clone())?;
            for (threads, engine) in [(1usize, &honest_1), (2, &honest_2)] {
                let generation = if threads == 2 { reference.clone() } else { engine.generate_blocking(request.clone())? };
                let verdict = measure(&honest_2, &claim(generation.tokens.clone()))?;
                let row = honest.entry((mode, threads)).or_default();
                row.outputs += 1;
                row.thread_mismatches += u32::from(generation.tokens != reference.tokens);
                row.rejected += u32::from(!verdict.accepted());
                row.positions += u64::from(verdict.checked);
                row.mismatches += u64::from(verdict.checked - verdict.matched);
                row.worst_rank = row.worst_rank.max(verdict.worst_rank);
                row.worst_margin = row.worst_margin.max(verdict.worst_margin);
                row.worst_delta = row.worst_delta.max(verdict.worst_delta);
                let share = if verdict.checked == 0 { 1.0 } else { f64::from(verdict.matched) / f64::from(verdict.checked) };
                row.worst_match = if row.outputs == 1 { share } else { row.worst_match.min(share) };
                if !verdict.accepted() {
                    eprintln!("false reject: prompt {index} ({text}), {}: {:?}", MODES[mode].0, verdict.rejection);
                }
            }

            let honest_tokens = &reference.tokens;
            let half = honest_tokens.len() / 2;
            let mut cheats: Vec<(usize, Vec<u32>)> = Vec::new();
            for (which, cheater) in cheaters.iter().enumerate() {
                cheats.push((which, cheater.generate_blocking(request.clone())?.tokens));
            }
            if honest_tokens.len() >= 2 {
                cheats.push((4, honest_tokens[..half].to_vec()));
            }
            if reference.stop == StopReason::EndOfGeneration && honest_tokens.len() + 8 <= args.max_tokens as usize {
                let mut padded = honest_tokens.clone();
                padded.extend(honest_tokens.iter().cycle().take(8));
                cheats.push((5, padded));
            }
            cheats.push((6, (0..honest_tokens.len().max(1)).map(|_| random_token()).collect()));
            if honest_tokens.len() >= 4 {
                let mut junk = honest_tokens[..half].to_vec();
                junk.extend((half..honest_tokens.len()).map(|_| random_token()));
                cheats.push((7, junk));
            }
            for (cheat, output) in cheats {
                let differing = difference(honest_tokens, &output);
                let verdict = rescore_under(&honest_2, &claim(output.clone()), tolerances)?;
                let row = detection.entry((cheat, mode)).or_default();
                if differing.count > 2 {
                    row.differing += 1;
                    row.detected += u32::from(!verdict.accepted());
                    let at_first = verdict.rejection.is_some_and(|e| Some(e.position) == differing.first);
                    row.at_first_difference += u32::from(at_first);
                    if !at_first {
                        log_late(cheat, &differing, &verdict);
                    }
                } else {
                    row.close += 1;
                    row.close_rejected += u32::from(!verdict.accepted());
                }
            }
        }
        eprintln!("{}/{} prompts, {:.0} s", index + 1, prompts.len(), started.elapsed().as_secs_f64());
    }
    print_tables(&args, &prompts, &tolerances, &honest, &detection);
    Ok(())
}

struct Difference {
    /// Positions (and length difference) at which the outputs differ.
    count: usize,
    /// The first position that differs: a differing token, or where the shorter one ends.
    first: Option<u32>,
}

fn difference(honest: &[u32], claimed: &[u32]) -> Difference {
    let common = honest.len().min(claimed.len());
    let differing = (0..common).filter(|&i| honest[i] != claimed[i]).count() + honest.len().abs_diff(claimed.len());
    let first = (0..common).find(|&i| honest[i] != claimed[i]).or((honest.len() != claimed.len()).then_some(common));
    Difference { count: differing, first: first.map(|p| p as u32) }
}

fn log_late(cheat: usize, differing: &Difference, verdict: &Verdict) {
    match verdict.rejection {
        Some(e) => eprintln!("{}: first difference at {:?}, evidence at {} ({:?})", CHEATS[cheat], differing.first, e.position, e.broken),
        None => eprintln!(
            "{}: accepted although {} tokens differ (first at {:?}): worst rank {}, margin {:.3}, δ {:.3}, {} of {} matched",
            CHEATS[cheat], differing.count, differing.first, verdict.worst_rank, verdict.worst_margin, verdict.worst_delta, verdict.matched, verdict.checked
        ),
    }
}

fn parse_tolerances(text: &str) -> Result<Tolerances> {
    let values: Vec<u32> = text.split(',').map(|v| v.trim().parse::<u32>()).collect::<Result<_, _>>()?;
    let [max_rank, max_margin_milli, max_logit_delta_milli, min_match_ppm] = values[..] else {
        anyhow::bail!("--tolerances wants four numbers: max_rank,max_margin_milli,max_logit_delta_milli,min_match_ppm");
    };
    Ok(Tolerances { max_rank, max_margin_milli, max_logit_delta_milli, min_match_ppm })
}

fn print_tables(
    args: &Args,
    prompts: &[String],
    tolerances: &Tolerances,
    honest: &BTreeMap<(usize, usize), Honest>,
    detection: &BTreeMap<(usize, usize), Detection>,
) {
    println!("## Honest outputs ({} prompts, up to {} tokens, SmolLM2-135M-Instruct Q4_1)", prompts.len(), args.max_tokens);
    println!();
    println!("| sampling | threads | outputs | differ from 2 threads | rejected | positions | not the verifier's choice | worst rank | worst margin | worst δ needed | worst match share |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for ((mode, threads), row) in honest {
        println!(
            "| {} | {threads} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            MODES[*mode].0,
            row.outputs,
            row.thread_mismatches,
            row.rejected,
            row.positions,
            row.mismatches,
            row.worst_rank,
            row.worst_margin,
            row.worst_delta,
            row.worst_match
        );
    }
    println!();
    println!(
        "## Cheats, judged under max_rank {}, max_margin {:.3}, max δ {:.3}, min match {:.1} %",
        tolerances.max_rank,
        f64::from(tolerances.max_margin_milli) / 1000.0,
        f64::from(tolerances.max_logit_delta_milli) / 1000.0,
        f64::from(tolerances.min_match_ppm) / 10_000.0
    );
    println!();
    println!("| cheat | sampling | differ in > 2 tokens | detected | rate | evidence at the first difference | differ in ≤ 2 | of those rejected |");
    println!("|---|---|---|---|---|---|---|---|");
    for ((cheat, mode), row) in detection {
        let rate = if row.differing == 0 { "–".to_string() } else { format!("{:.1} %", 100.0 * f64::from(row.detected) / f64::from(row.differing)) };
        println!(
            "| {} | {} | {} | {} | {rate} | {} | {} | {} |",
            CHEATS[*cheat], MODES[*mode].0, row.differing, row.detected, row.at_first_difference, row.close, row.close_rejected
        );
    }
}
