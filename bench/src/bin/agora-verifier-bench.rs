//! What verification costs, on the real model (SmolLM2-135M-Instruct Q4_1):
//!
//! 1. re-scoring time against generation time for the same output, at 32, 128 and 512 output
//!    tokens, with 1 and 2 threads (median of `--repeat` runs each);
//! 2. provider-seconds per request of verification by voting at k = 3 against k = 1 with the
//!    spot-check probability the chain's formula gives, at escrow sizes from the devnet's up.
//!
//! `cargo test --workspace --no-run && $CARGO_TARGET_DIR/debug/agora-verifier-bench`

use agora_tokenizer::{ChatTurn, Tokenizer};
use agora_fixtures::models;
use agora_engine::{Engine, EngineConfig, GenerateRequest, Progress};
use agora_primitives::SamplingParams;
use agora_verifier::audit::{audit_probability, caught_within, AuditPolicy};
use agora_verifier::rescore::{rescore, Claim};
use anyhow::{ensure, Context, Result};
use clap::Parser;
use polkadot_sdk::sp_arithmetic::Perbill;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_values_t = [32u32, 128, 512])]
    lengths: Vec<u32>,
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// The runtime's audit policy and slash (runtime/src/configs.rs) and the devnet's stake.
const UNIT: u128 = 1_000_000_000_000;
const DEVNET_STAKE: u128 = 1_000 * UNIT;
const WRONG_RESULT_SLASH_PERCENT: u128 = 10;
fn policy() -> AuditPolicy {
    AuditPolicy { floor: Perbill::from_percent(5), ceiling: Perbill::from_percent(100), safety_percent: 200 }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace")?;
    let smollm2 = models::fetch_smollm2(root)?;
    let tokenizer = Tokenizer::load(&smollm2, &models::smollm2_sha256(), Progress::Hidden)?;
    let prompt = tokenizer.chat(&[ChatTurn {
        role: "user".into(),
        content: "Write a very long story about a lighthouse keeper, the sea and a storm.".into(),
    }])?;

    println!("## Re-scoring against generation (prompt {} tokens, median of {})", prompt.len(), args.repeat);
    println!();
    println!("| output tokens | threads | generation | re-scoring | of which the model's pass | ratio |");
    println!("|---|---|---|---|---|---|");
    let mut at_128 = None;
    for threads in [1usize, 2] {
        let config = EngineConfig { threads_per_slot: threads, ..EngineConfig::default() };
        let engine = Engine::load(&smollm2, &models::smollm2_sha256(), config, Progress::Hidden)?;
        for &length in &args.lengths {
            // A sampled story rarely ends early; try seeds until one runs to the full length.
            let sampling = SamplingParams { temperature_milli: 800, top_k: 40, top_p_milli: 950 };
            let mut request = GenerateRequest { prompt: prompt.clone(), max_output_tokens: length, sampling, seed: 0, logprobs: false };
            let mut output = Vec::new();
            for seed in 0..20 {
                request.seed = seed;
                output = engine.generate_blocking(request.clone())?.tokens;
                if output.len() == length as usize {
                    break;
                }
            }
            let claim = Claim { prompt: prompt.clone(), output: output.clone(), max_output_tokens: length, sampling, seed: request.seed };
            let mut generation = Vec::new();
            let mut rescoring = Vec::new();
            let mut prefill = Vec::new();
            for _ in 0..args.repeat {
                // The scoring pass alone, judging nothing: what the model costs of re-scoring.
                let started = Instant::now();
                let _visitor = engine.score_blocking(&prompt, &output, |_: usize, _: &[f32]| std::ops::ControlFlow::Continue(()))?;
                prefill.push(started.elapsed());
                let started = Instant::now();
                let again = engine.generate_blocking(request.clone())?;
                generation.push(started.elapsed());
                ensure!(again.tokens == output, "generation is not deterministic");
                let started = Instant::now();
                let verdict = rescore(&engine, &claim)?;
                rescoring.push(started.elapsed());
                ensure!(verdict.accepted(), "an honest output was rejected: {verdict:?}");
            }
            let (generation, rescoring, prefill) = (median(generation), median(rescoring), median(prefill));
            let ratio = rescoring.as_secs_f64() / generation.as_secs_f64();
            println!(
                "| {} | {threads} | {} ms | {} ms | {} ms | {ratio:.2} |",
                output.len(),
                generation.as_millis(),
                rescoring.as_millis(),
                prefill.as_millis()
            );
            if length == 128 && threads == 2 {
                at_128 = Some((generation.as_secs_f64(), rescoring.as_secs_f64()));
            }
        }
    }

    let Some((generation, rescoring)) = at_128 else { return Ok(()) };
    let slash = DEVNET_STAKE * WRONG_RESULT_SLASH_PERCENT / 100;
    println!();
    println!(
        "## Verification cost per request, 128 output tokens, 2 threads (generation {generation:.2} s, re-scoring {rescoring:.2} s), stake {} UNIT, slash {} %",
        DEVNET_STAKE / UNIT,
        WRONG_RESULT_SLASH_PERCENT
    );
    println!();
    println!("| escrow (UNIT) | audit p (reputation 0.5) | k = 3 voting | k = 1 + audit | saving | caught within 20 / 100 cheats |");
    println!("|---|---|---|---|---|---|");
    // The devnet's prices (2–4 milli-UNIT per 1k tokens) make a 128-token request cost ~0.0005 UNIT.
    for escrow_milli in [1u128, 1_000, 100_000, 1_000_000, 10_000_000] {
        let escrow = escrow_milli * UNIT / 1_000;
        let p = audit_probability(&policy(), escrow, slash, 500_000);
        let p = f64::from(p.deconstruct()) / 1e9;
        let voting = 3.0 * generation;
        let audited = generation + p * rescoring;
        println!(
            "| {} | {:.1} % | {voting:.2} s | {audited:.2} s | {:.0} % | {:.1} % / {:.1} % |",
            escrow as f64 / UNIT as f64,
            100.0 * p,
            100.0 * (1.0 - audited / voting),
            100.0 * caught_within(p, 0.99, 20),
            100.0 * caught_within(p, 0.99, 100)
        );
    }
    Ok(())
}
