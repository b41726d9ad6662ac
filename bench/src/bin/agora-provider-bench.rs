//! Benchmarks of the provider's inference path, printed as tables (figures go in the issue
//! notes, never into timed tests).
//!
//! - generation throughput through the engine against a plain llama-cpp-2 greedy loop on the same
//!   model and settings, 1 and 2 threads;
//! - time to first token of the engine against the plain loop;
//! - aggregate tokens/s with 1, 2 and 4 concurrent requests, each checked bit-exact against its
//!   serial result;
//! - peak RSS of a `generate` process over the model file size.
//!
//! `cargo run -p agora-provider-node --bin agora-provider-bench -- [--model PATH] [--tokens N]`

use agora_primitives::SamplingParams;
use agora_fixtures::models::{fetch_smollm2, smollm2_sha256};
use agora_engine::{sampler, Engine, EngineConfig, GenerateRequest, Progress};
use anyhow::{Context, Result};
use clap::Parser;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// GGUF to measure; default: the project's SmolLM2, fetched if needed.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Tokens generated per measured run.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Runs per figure; the median is printed.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Only the single-request table.
    #[arg(long)]
    single_only: bool,
    /// The prompt every run starts from.
    #[arg(long, default_value = PROMPT)]
    prompt: String,
    /// Internal: run only the plain loop with this many threads and print its timings as JSON.
    /// The bench runs the baseline in a process of its own, so that no idle OpenMP team of one
    /// side spins beside the other.
    #[arg(long, hide = true)]
    plain: Option<i32>,
    /// Idle time before each plain-loop run, as a served request finds the machine.
    #[arg(long, default_value_t = 0)]
    gap_ms: u64,
}

const N_CTX: u32 = 2048;
const N_BATCH: u32 = 512;
const PROMPT: &str = "Write a detailed story about a lighthouse keeper who finds a message in a bottle.";

struct Timing {
    first_token: Duration,
    total: Duration,
    tokens: usize,
}

impl Timing {
    /// Decode speed: tokens after the first over the time after the first.
    fn tokens_per_sec(&self) -> f64 {
        (self.tokens.saturating_sub(1)) as f64 / (self.total - self.first_token).as_secs_f64()
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The baseline: llama-cpp-2 used directly, as its examples do, with the same context settings.
fn plain_loop(engine: &Engine, prompt: &[u32], tokens: u32, threads: i32) -> Result<(Vec<u32>, Timing)> {
    let model = engine.model();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(N_CTX))
        .with_n_batch(N_BATCH)
        .with_n_ubatch(N_BATCH)
        .with_n_seq_max(1)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
    let backend = engine_backend()?;
    let mut ctx = model.new_context(backend, params)?;
    let started = Instant::now();
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    for (i, &t) in prompt.iter().enumerate() {
        batch.add(LlamaToken(t as i32), i as i32, &[0], i + 1 == prompt.len())?;
    }
    ctx.decode(&mut batch)?;
    let mut out = Vec::new();
    let mut first_token = Duration::ZERO;
    let mut index = batch.n_tokens() - 1;
    while out.len() < tokens as usize {
        let token = sampler::argmax(ctx.get_logits_ith(index));
        if out.is_empty() {
            first_token = started.elapsed();
        }
        if model.vocab().is_eog(LlamaToken(token as i32)) {
            break;
        }
        out.push(token);
        if out.len() == tokens as usize {
            break;
        }
        batch.clear();
        batch.add(LlamaToken(token as i32), (prompt.len() + out.len() - 1) as i32, &[0], true)?;
        ctx.decode(&mut batch)?;
        index = 0;
    }
    let total = started.elapsed();
    Ok((out.clone(), Timing { first_token, total, tokens: out.len() }))
}

/// The backend is a process-wide singleton the engine owns; loading any engine initialises it.
fn engine_backend() -> Result<&'static llama_cpp_2::llama_backend::LlamaBackend> {
    agora_engine::backend().context("llama.cpp backend")
}

fn through_engine(engine: &Engine, prompt: &[u32], tokens: u32) -> Result<(Vec<u32>, Timing)> {
    let request = GenerateRequest {
        prompt: prompt.to_vec(),
        max_output_tokens: tokens,
        sampling: SamplingParams::default(),
        seed: 0,
        logprobs: false,
    };
    let started = Instant::now();
    let mut handle = engine.submit(request)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut first_token = Duration::ZERO;
    let generation = runtime.block_on(async {
        while let Some(event) = handle.next().await {
            match event {
                agora_engine::GenEvent::Token { index: 0, .. } => first_token = started.elapsed(),
                agora_engine::GenEvent::Token { .. } => {},
                agora_engine::GenEvent::Finished(result) => return result.map_err(anyhow::Error::from),
            }
        }
        anyhow::bail!("the engine stopped")
    })?;
    let total = started.elapsed();
    let n = generation.tokens.len();
    Ok((generation.tokens, Timing { first_token, total, tokens: n }))
}

fn load(model: &Path, slots: usize, threads: usize) -> Result<Engine> {
    let config = EngineConfig { n_ctx: N_CTX, n_batch: N_BATCH, slots, threads_per_slot: threads, queue_depth: 16, ..EngineConfig::default() };
    Ok(Engine::open(model, config, Progress::Hidden)?)
}

/// Runs the plain loop `repeats` times in a child process; returns its tokens and, per run,
/// (tokens/s, TTFT ms).
fn plain_in_own_process(model: &Path, threads: usize, args: &Args) -> Result<(Vec<u32>, Vec<(f64, f64)>)> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--model")
        .arg(model)
        .args(["--tokens", &args.tokens.to_string(), "--repeats", &args.repeats.to_string()])
        .args(["--plain", &threads.to_string(), "--prompt", &args.prompt])
        .output()?;
    anyhow::ensure!(out.status.success(), "the plain loop failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn plain_only(model: &Path, threads: i32, args: &Args) -> Result<()> {
    let engine = load(model, 1, 1)?;
    let prompt = engine.tokenize(&args.prompt, false);
    let mut runs = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..args.repeats {
        std::thread::sleep(Duration::from_millis(args.gap_ms));
        let (out, t) = plain_loop(&engine, &prompt, args.tokens, threads)?;
        runs.push((t.tokens_per_sec(), t.first_token.as_secs_f64() * 1000.0));
        tokens = out;
    }
    println!("{}", serde_json::to_string(&(tokens, runs))?);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    let model = match args.model.clone() {
        Some(path) => path,
        None => fetch_smollm2(root)?,
    };
    if let Some(threads) = args.plain {
        return plain_only(&model, threads, &args);
    }
    let model_size = std::fs::metadata(&model)?.len();
    let cores = std::thread::available_parallelism()?.get();
    println!("model {} ({} bytes), {} tokens per run, median of {}, {cores} cores", model.display(), model_size, args.tokens, args.repeats);
    if model_size > 0 && smollm2_sha256() == agora_engine::model_file::sha256_file(&model, Progress::Hidden)? {
        println!("(SmolLM2-135M-Instruct Q4_1, the project's real model)");
    }

    println!("\n## Single request: engine against a plain llama-cpp-2 greedy loop");
    println!("| threads | plain tok/s | engine tok/s | ratio | plain TTFT ms | engine TTFT ms | Δ TTFT ms | bit-exact |");
    println!("|---|---|---|---|---|---|---|---|");
    for threads in [1usize, 2] {
        let engine = load(&model, 1, threads)?;
        let prompt = engine.tokenize(&args.prompt, false);
        let plain = plain_in_own_process(&model, threads, &args)?;
        let (plain_tps, plain_ttft) = (plain.1.iter().map(|t| t.0).collect(), plain.1.iter().map(|t| t.1).collect());
        let (mut engine_tps, mut engine_ttft) = (vec![], vec![]);
        let mut exact = true;
        for _ in 0..args.repeats {
            let (b, t) = through_engine(&engine, &prompt, args.tokens)?;
            engine_tps.push(t.tokens_per_sec());
            engine_ttft.push(t.first_token.as_secs_f64() * 1000.0);
            exact &= b == plain.0;
        }
        let (p, e, pt, et) = (median(plain_tps), median(engine_tps), median(plain_ttft), median(engine_ttft));
        println!("| {threads} | {p:.2} | {e:.2} | {:.3} | {pt:.1} | {et:.1} | {:+.1} | {exact} |", e / p, et - pt);
    }

    if args.single_only {
        return Ok(());
    }

    println!("\n## Concurrent requests: one context per request, threads split between the slots");
    println!("| concurrent | slots × threads | aggregate tok/s | wall s | bit-exact vs serial |");
    println!("|---|---|---|---|---|");
    let serial_engine = load(&model, 1, 1)?;
    let prompts: Vec<Vec<u32>> = (0..4).map(|i| serial_engine.tokenize(&format!("{} Chapter {}.", args.prompt, i + 1), false)).collect();
    let serial: Vec<Vec<u32>> = prompts.iter().map(|p| through_engine(&serial_engine, p, args.tokens).map(|r| r.0)).collect::<Result<_>>()?;
    drop(serial_engine);
    for (concurrent, slots) in [(1usize, 1usize), (2, 2), (4, 2), (4, 4)] {
        let threads = (cores / slots).max(1);
        let engine = load(&model, slots, threads)?;
        let (mut rates, mut walls) = (vec![], vec![]);
        let mut exact = true;
        for _ in 0..args.repeats {
            let started = Instant::now();
            let handles: Vec<_> = prompts[..concurrent]
                .iter()
                .map(|p| {
                    engine.submit(GenerateRequest {
                        prompt: p.clone(),
                        max_output_tokens: args.tokens,
                        sampling: SamplingParams::default(),
                        seed: 0,
                        logprobs: false,
                    })
                })
                .collect::<Result<_, _>>()?;
            let results: Vec<_> = handles.into_iter().map(|h| h.finish_blocking()).collect::<Result<_, _>>()?;
            let wall = started.elapsed().as_secs_f64();
            let tokens: usize = results.iter().map(|r| r.tokens.len()).sum();
            exact &= results.iter().zip(&serial).all(|(r, s)| &r.tokens == s);
            rates.push(tokens as f64 / wall);
            walls.push(wall);
        }
        println!("| {concurrent} | {slots} × {threads} | {:.1} | {:.2} | {exact} |", median(rates), median(walls));
    }

    println!("\n## Memory");
    let out = std::process::Command::new(std::env::current_exe()?.with_file_name("agora-provider"))
        .args(["generate", "--model"])
        .arg(&model)
        .args(["--prompt", &args.prompt, "--max-tokens", &args.tokens.to_string(), "--threads", "2"])
        .output()
        .context("run `agora-provider generate` (build it with `cargo build -p agora-provider-node`)")?;
    anyhow::ensure!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let peak = report["peak_rss_bytes"].as_u64().context("peak_rss_bytes in the report")?;
    println!("peak RSS of `agora-provider generate` (model loaded, {} tokens): {peak} bytes = {:.2} × the model file", args.tokens, peak as f64 / model_size as f64);
    Ok(())
}
