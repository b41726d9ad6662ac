//! Local-first routing on the project's prompt set (`cli/data/routing-prompts.txt`):
//! the local model's confidence on each prompt, and, at several thresholds, how many prompts
//! stay local and what that saves against sending every one to the marketplace at k = 3 with
//! the devnet's prices (2, 3 and 4 thousandths of a unit per 1k tokens).
//!
//! `cargo test --workspace --no-run && $CARGO_TARGET_DIR/debug/agora-route-bench`

use agora_client::{ChatTurn, LocalModel, Prompt};
use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The local GGUF (default: the project's SmolLM2).
    #[arg(long)]
    gguf: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 32)]
    max_tokens: u32,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// The devnet providers' prices per 1k tokens, input and output alike, in the chain's unit.
const PRICES: [f64; 3] = [0.002, 0.003, 0.004];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace")?;
    let gguf = match args.gguf {
        Some(p) => p,
        None => agora_fixtures::models::fetch_smollm2(root)?,
    };
    let prompts: Vec<String> = std::fs::read_to_string(root.join("cli/data/routing-prompts.txt"))?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let local = LocalModel::load(&gguf, args.threads, 0.0)?;
    let mut rows = Vec::new();
    for text in &prompts {
        let prompt = Prompt::Chat(vec![ChatTurn { role: "user".into(), content: text.clone() }]);
        let prompt_tokens = local.tokenize(&prompt)?.len();
        let answer = local.answer(&prompt, args.max_tokens).await?;
        // What the marketplace would have been paid for it: each provider its price per token.
        let tokens = (prompt_tokens + answer.tokens.len()) as f64;
        let cost: f64 = PRICES.iter().map(|p| tokens * p / 1000.0).sum();
        rows.push((text.clone(), answer, cost));
    }
    println!("## Confidence of the local model ({} prompts, greedy, up to {} tokens)", rows.len(), args.max_tokens);
    println!("| prompt | mean log-prob | local answer |");
    println!("|---|---|---|");
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by(|a, b| b.1.mean_logprob.total_cmp(&a.1.mean_logprob));
    for (prompt, answer, _) in &sorted {
        let text: String = answer.text.replace('\n', " ").chars().take(60).collect();
        println!("| {prompt} | {:.3} | {text} |", answer.mean_logprob);
    }
    let all_cost: f64 = rows.iter().map(|r| r.2).sum();
    let all_seconds: f64 = rows.iter().map(|r| 3.0 * r.1.elapsed.as_secs_f64()).sum();
    println!("\n## Routing at several thresholds (marketplace: k = 3, devnet prices)");
    println!("| threshold | stay local | to the marketplace | paid, all to the marketplace (units) | paid with routing | saved | provider-seconds saved |");
    println!("|---|---|---|---|---|---|---|");
    for threshold in [-0.25f32, -0.5, -0.75, -1.0, -1.5] {
        let local: Vec<_> = rows.iter().filter(|r| r.1.confident(threshold)).collect();
        let saved: f64 = local.iter().map(|r| r.2).sum();
        let seconds: f64 = local.iter().map(|r| 3.0 * r.1.elapsed.as_secs_f64()).sum();
        println!(
            "| {threshold} | {} | {} | {:.6} | {:.6} | {:.0} % | {:.1} of {:.1} |",
            local.len(),
            rows.len() - local.len(),
            all_cost,
            (all_cost - saved),
            100.0 * saved / all_cost,
            seconds,
            all_seconds
        );
    }
    Ok(())
}
