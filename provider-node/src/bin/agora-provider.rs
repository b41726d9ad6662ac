//! `agora-provider`: the provider daemon and its tools, thin over the `agora_provider_node` library.

use agora_primitives::SamplingParams;
use agora_engine::{model_file, Engine, EngineConfig, GenerateRequest, Progress};
use agora_provider_node::config::{Config, ConfigLayer};
use agora_provider_node::keys::NodeKeys;
use agora_provider_node::node::Node;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "agora-provider", version, about = "Agora provider node: serve verified LLM inference for pay")]
struct Cli {
    /// More log lines (-v: every crate's info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The node's own steps at info; libp2p's and llama.cpp's chatter (the model's metadata dump)
/// only when asked for.
fn log_filter(verbose: u8) -> tracing_subscriber::EnvFilter {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        return filter;
    }
    tracing_subscriber::EnvFilter::new(match verbose {
        0 => "warn,agora_provider_node=info,agora_engine=info,agora_provider=info",
        1 => "info,llama_cpp_2=warn",
        _ => "debug",
    })
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider: register, serve inference over libp2p, commit, reveal and settle.
    Run(RunArgs),
    /// Start leaving: no new work; the stake can be withdrawn after the unbonding delay.
    Unbond(RunArgs),
    /// Withdraw the stake after unbonding, once no job is open.
    Withdraw(RunArgs),
    /// Run one generation locally under the determinism contract and print the result.
    Generate(GenerateArgs),
    /// Print the sha256 of a GGUF file, as releases are registered.
    Hash { model: PathBuf },
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration; flags and AGORA_PROVIDER_* variables override its values.
    #[arg(long, short, env = "AGORA_PROVIDER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: ConfigLayer,
}

impl RunArgs {
    fn layer(self) -> Result<ConfigLayer> {
        let file = match &self.config {
            Some(path) => ConfigLayer::from_file(path)?,
            None => ConfigLayer::default(),
        };
        Ok(self.settings.over(file))
    }

    fn resolve(self) -> Result<Config> {
        Ok(Config::resolve(self.layer()?)?)
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long)]
    model: PathBuf,
    /// Refuse the model unless its sha256 is this (hex); by default the file's own hash is used.
    #[arg(long)]
    sha256: Option<String>,
    /// Prompt text, tokenised with the model's tokenizer.
    #[arg(long, conflicts_with = "prompt_ids", required_unless_present = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    #[arg(long, default_value_t = 32)]
    max_tokens: u32,
    #[arg(long, default_value_t = 0)]
    temperature_milli: u32,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 0)]
    top_p_milli: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 2048)]
    n_ctx: u32,
    #[arg(long, default_value_t = 512)]
    n_batch: u32,
}


/// The process's peak resident set (`VmHWM`), where /proc has it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

fn generate(args: GenerateArgs) -> Result<()> {
    let config = EngineConfig { n_ctx: args.n_ctx, n_batch: args.n_batch, slots: 1, threads_per_slot: args.threads, queue_depth: 1, ..EngineConfig::default() };
    let engine = match &args.sha256 {
        Some(h) => Engine::load(&args.model, &agora_provider_node::config::parse_hash("sha256", h)?, config, Progress::Bar)?,
        None => Engine::open(&args.model, config, Progress::Bar)?,
    };
    let prompt = match (args.prompt, args.prompt_ids) {
        (Some(text), _) => engine.tokenize(&text, true),
        (None, Some(ids)) => ids,
        (None, None) => unreachable!("clap requires one of them"),
    };
    let sampling = SamplingParams { temperature_milli: args.temperature_milli, top_k: args.top_k, top_p_milli: args.top_p_milli };
    let started = std::time::Instant::now();
    let generation = engine
        .generate_blocking(GenerateRequest { prompt: prompt.clone(), max_output_tokens: args.max_tokens, sampling, seed: args.seed, logprobs: false })
        .context("generation failed")?;
    let out = serde_json::json!({
        "prompt_ids": prompt,
        "tokens": generation.tokens,
        "text": engine.detokenize(&generation.tokens),
        "output_hash": hex::encode(generation.output_hash),
        "stop": format!("{:?}", generation.stop),
        "runtime_profile": hex::encode(engine.profile_hash()),
        "peak_rss_bytes": peak_rss_bytes(),
        "generation_seconds": started.elapsed().as_secs_f64(),
    });
    println!("{out}");
    Ok(())
}

async fn run(config: Config) -> Result<()> {
    let node = Node::start(config).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    node.shutdown().await;
    Ok(())
}

/// Signs one providers-pallet call with the node's account; needs only the data directory, the
/// chain and the account of the configuration.
async fn account_call(layer: ConfigLayer, call: &str) -> Result<()> {
    use agora_chain_client::{agora, ChainClient};
    let data_dir = layer.data_dir.ok_or_else(|| anyhow!("missing setting `data_dir` (--data-dir)"))?;
    let keys = NodeKeys::load_or_create(&data_dir.join("keys"), layer.account_uri.as_deref())?;
    let chain_url = layer.chain_url.unwrap_or_else(|| "ws://127.0.0.1:9944".into());
    let chain = ChainClient::connect(&chain_url).await?;
    match call {
        "unbond" => chain.submit(&agora::tx().providers().unbond(), &keys.account).await?,
        _ => chain.submit(&agora::tx().providers().withdraw(), &keys.account).await?,
    };
    println!("{call}: done");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_env_filter(log_filter(cli.verbose)).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Run(args) => runtime()?.block_on(run(args.resolve()?)),
        Command::Unbond(args) => runtime()?.block_on(account_call(args.layer()?, "unbond")),
        Command::Withdraw(args) => runtime()?.block_on(account_call(args.layer()?, "withdraw")),
        Command::Generate(args) => generate(args),
        Command::Hash { model } => {
            println!("{}", hex::encode(model_file::sha256_file(&model, Progress::Bar)?));
            Ok(())
        },
    }
}
