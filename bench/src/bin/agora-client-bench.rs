//! End-to-end figures on a local devnet (printed as tables; nothing here is a timed test):
//!
//! - a k = 3, 64-token request through the SDK, split into escrow inclusion, the draw, dial,
//!   time to first token, generation and commit/reveal/settle, against generating the same
//!   64 tokens with a plain llama-cpp-2 loop in this process;
//! - the same prompt on a pooled ticket (bought and drawn ahead): time to first token, to the
//!   verified answer (a strict majority of signed outcomes) and from the answer to its
//!   on-chain settlement, against the same local loop;
//! - the OpenAI-compatible gateway against the SDK called directly (time to first streamed
//!   token and to the end of the response).
//!
//! Starts its own devnet (chain, three providers) on a free port unless `--chain-url` is given:
//! `cargo test --workspace --no-run && $CARGO_TARGET_DIR/debug/agora-client-bench`

use agora_client::{gateway, Client, ClientConfig, Job, PoolConfig, Prompt, RunEvent};
use agora_fixtures::models;
use agora_engine::{Engine, EngineConfig, GenEvent, GenerateRequest, Progress};
use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
struct Args {
    /// Use a running chain instead of starting a devnet.
    #[arg(long)]
    chain_url: Option<String>,
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    #[arg(long, default_value_t = 64)]
    tokens: u32,
    #[arg(long, default_value = "Once upon a time, in a lighthouse by the sea, there lived")]
    prompt: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The same tokens, generated here: TTFT and generation time of the plain path.
fn local_loop(model: &std::path::Path, prompt: &[u32], tokens: u32, repeats: usize) -> Result<(f64, f64)> {
    let config = EngineConfig { n_ctx: 2048, n_batch: 512, slots: 1, threads_per_slot: 1, queue_depth: 1, ..EngineConfig::default() };
    let engine = Engine::open(model, config, Progress::Hidden)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut ttft, mut total) = (vec![], vec![]);
    for _ in 0..repeats {
        let started = Instant::now();
        let request = GenerateRequest { prompt: prompt.to_vec(), max_output_tokens: tokens, sampling: Default::default(), seed: 0, logprobs: false };
        let mut handle = engine.submit(request)?;
        let mut first = None;
        runtime.block_on(async {
            while let Some(event) = handle.next().await {
                match event {
                    GenEvent::Token { .. } => {
                        first.get_or_insert_with(|| started.elapsed());
                    },
                    GenEvent::Finished(_) => break,
                }
            }
        });
        ttft.push(ms(first.context("no token")?));
        total.push(ms(started.elapsed()));
    }
    Ok((median(ttft), median(total)))
}

/// One streamed chat call through the gateway over plain HTTP/1.1: (first content chunk, end).
async fn through_gateway(addr: std::net::SocketAddr, body: &serde_json::Value) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let body = body.to_string();
    let head = format!("POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut lines = BufReader::new(stream).lines();
    let mut first = None;
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("data: {") && line.contains("\"text\":\"") && !line.contains("\"text\":\"\"") {
            first.get_or_insert_with(|| started.elapsed());
        }
        if line.starts_with("data: [DONE]") {
            break;
        }
        anyhow::ensure!(!line.contains("\"error\""), "the gateway failed: {line}");
    }
    Ok((first.context("no token through the gateway")?, started.elapsed()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace")?;
    let model = models::fetch_smollm2(root)?;
    let devnet_dir = std::env::temp_dir().join(format!("agora-bench-{}", std::process::id()));
    // The devnet as a user starts it: `agora devnet up` beside this binary.
    let agora = std::env::current_exe()?.with_file_name("agora");
    let devnet = |args: &[&str]| {
        let mut command = std::process::Command::new(&agora);
        command.arg("devnet").args(args).arg("--dir").arg(&devnet_dir);
        command
    };
    let chain_url = match &args.chain_url {
        Some(url) => url.clone(),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port().to_string();
            let up = devnet(&["up", "--json", "--port", &port]).arg("--model").arg(&model).output()?;
            anyhow::ensure!(up.status.success(), "agora devnet up failed:\n{}", String::from_utf8_lossy(&up.stderr));
            let state: serde_json::Value = serde_json::from_slice(&up.stdout)?;
            state["chain_url"].as_str().context("no chain_url in the devnet's state")?.to_string()
        },
    };
    let result = bench(&args, &chain_url, &model).await;
    if args.chain_url.is_none() {
        devnet(&["down"]).status()?;
    }
    result
}

async fn bench(args: &Args, chain_url: &str, model: &PathBuf) -> Result<()> {
    let mut config = ClientConfig::dev(chain_url);
    config.model_files = vec![model.clone()];
    let client = Arc::new(Client::connect(config).await?);
    let mut job = Job::new("smollm2-135m-instruct".parse()?, Prompt::Text(args.prompt.clone()));
    job.max_tokens = args.tokens;
    job.k = 3;
    job.commit_blocks = 10;

    let (mut escrow, mut draw, mut dial, mut ttft, mut generation, mut settle, mut total) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut prompt_ids = vec![];
    for _ in 0..args.repeats {
        let prepared = client.prepare(&job).await?;
        prompt_ids = prepared.prompt.clone();
        let started = Instant::now();
        let result = client.run_prepared(prepared, |_: RunEvent| {}).await?;
        anyhow::ensure!(result.verified && result.tokens.len() == args.tokens as usize, "an unverified or short answer: {result:?}");
        let t = &result.timings;
        escrow.push(ms(t.escrow));
        draw.push(ms(t.assignment));
        dial.push(ms(t.dial));
        ttft.push(ms(t.first_token));
        generation.push(ms(t.generation));
        settle.push(ms(t.settlement));
        total.push(ms(started.elapsed()));
    }
    let (local_ttft, local_total) = tokio::task::block_in_place(|| local_loop(model, &prompt_ids, args.tokens, args.repeats))?;

    println!("## k = 3, {} tokens, devnet with 2 s blocks (median of {}, ms)", args.tokens, args.repeats);
    println!("| escrow included | draw (next block) | dial | first token after dial | generation | commit/reveal/settle | total | local loop TTFT | local loop total |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        median(escrow),
        median(draw.clone()),
        median(dial),
        median(ttft.clone()),
        median(generation),
        median(settle),
        median(total),
        local_ttft,
        local_total
    );
    let after_escrow: Vec<f64> = draw.iter().zip(&ttft).map(|(d, t)| d + t).collect();
    println!(
        "time to first token after the escrow is included: {:.0} ms = local loop + {:.0} ms (target: one block time, 2000 ms, + 50 ms)",
        median(after_escrow.clone()),
        median(after_escrow) - local_ttft
    );

    pooled_tickets(args, &client, &job, local_ttft, local_total).await?;

    // The gateway in this process, against the SDK above.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = gateway::GatewayConfig { commit_blocks: 10, ..Default::default() };
    tokio::spawn(gateway::serve(listener, client.clone(), config));
    let body = serde_json::json!({ "model": "smollm2-135m-instruct", "prompt": args.prompt, "max_tokens": args.tokens, "stream": true });
    let (mut g_first, mut g_total, mut s_first, mut s_total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..args.repeats {
        let (first, end) = through_gateway(addr, &body).await?;
        g_first.push(ms(first));
        g_total.push(ms(end));
        let started = Instant::now();
        let mut first = None;
        client
            .run(&job, |event| {
                if matches!(event, RunEvent::Token { .. }) {
                    first.get_or_insert_with(|| started.elapsed());
                }
            })
            .await?;
        s_first.push(ms(first.context("no token")?));
        s_total.push(ms(started.elapsed()));
    }
    let (gf, gt, sf, st) = (median(g_first), median(g_total), median(s_first), median(s_total));
    println!("\n## Gateway (streamed /v1/completions) against the SDK directly (median of {}, ms)", args.repeats);
    println!("| | first token | whole response (settled) |");
    println!("|---|---|---|");
    println!("| SDK `Client::run` | {sf:.0} | {st:.0} |");
    println!("| gateway | {gf:.0} | {gt:.0} |");
    println!("| overhead | {:+.0} | {:+.0} |", gf - sf, gt - st);
    Ok(())
}

/// The prompt on pooled tickets: one warm-up use, then `repeats` timed ones.
async fn pooled_tickets(args: &Args, client: &Arc<Client>, job: &Job, local_ttft: f64, local_total: f64) -> Result<()> {
    let config = PoolConfig { batch: args.repeats as u32 + 2, max_prompt_tokens: 64, refill: true };
    let pool = client.ticket_pool(job, config).await?;
    pool.run(&job.prompt, args.tokens, &job.sampling, |_| {}).await?;
    let (mut ttft, mut verified, mut answered, mut settled, mut blocks) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..args.repeats {
        let answer = pool.run(&job.prompt, args.tokens, &job.sampling, |_| {}).await?;
        anyhow::ensure!(answer.verified && answer.tokens.len() == args.tokens as usize, "an unverified or short answer: {answer:?}");
        let done_at = (Instant::now(), client.chain().best_block_number().await?);
        let receipt = pool.receipt(answer.ticket).await?.receipt;
        settled.push(ms(done_at.0.elapsed()));
        blocks.push(f64::from(receipt.settled_at.saturating_sub(done_at.1)));
        ttft.push(ms(answer.timings.first_token));
        verified.push(ms(answer.timings.verified.context("verified")?));
        answered.push(ms(answer.timings.answered));
    }
    let (ttft, verified) = (median(ttft), median(verified));
    println!("\n## k = 3, {} tokens on a pooled ticket (median of {}, ms; local loop from the same run)", args.tokens, args.repeats);
    println!("| first token | verified (majority signed) | all k answered | answer to settlement | settlement, blocks after the answer | local loop TTFT | local loop total |");
    println!("|---|---|---|---|---|---|---|");
    println!("| {ttft:.0} | {verified:.0} | {:.0} | {:.0} | {:.0} | {local_ttft:.0} | {local_total:.0} |", median(answered), median(settled), median(blocks));
    println!("first token: local loop {:+.0} ms (target: +150 ms or less)", ttft - local_ttft);
    println!(
        "verified answer: {:.2} × the local loop's whole answer (target: 1.3 × it + 150 ms = {:.0} ms)",
        verified / local_total,
        1.3 * local_total + 150.0
    );
    Ok(())
}
