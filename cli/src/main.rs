//! `agora`: the marketplace from a terminal, thin over `agora_client`. One file per command in
//! `commands/`; each prints a typed value, as JSON with `--json` and as lines for humans without.

mod commands;
mod devnet;
mod fetch;
mod output;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "agora", version, about = "Agora: paid, verified LLM inference from a decentralized marketplace")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Settings every command takes.
#[derive(Args)]
pub struct Global {
    /// The chain's WebSocket endpoint.
    #[arg(long, global = true, env = "AGORA_CHAIN_URL", default_value = "ws://127.0.0.1:9944")]
    pub chain_url: String,
    /// The paying account's secret URI (the default is a development account).
    #[arg(long, global = true, env = "AGORA_ACCOUNT_URI", default_value = "//Eve", hide_default_value = true)]
    pub account_uri: String,
    /// A GGUF file or a directory of them to tokenise prompts with (default: ~/.cache/agora-models).
    #[arg(long, global = true, env = "AGORA_GGUF")]
    pub gguf: Vec<PathBuf>,
    /// Print JSON for scripts instead of text for humans.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where `agora run` keeps each request's prompt and answer for `agora challenge`
    /// (default: ~/.local/share/agora/runs).
    #[arg(long, global = true, env = "AGORA_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
    /// More log lines on stderr (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run a prompt on k providers, stream the answer, then print the receipt.
    Run(commands::run::RunArgs),
    /// Model releases: history of a family, one release.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Providers and their reputation.
    #[command(subcommand)]
    Providers(commands::providers::ProvidersCommand),
    /// A settled request's receipt, or `agora receipt verify FILE`: a saved ticket receipt
    /// checked offline.
    Receipt(commands::receipt::ReceiptArgs),
    /// Challenge the settled result of one of your requests run with `agora run`: a bond is
    /// held and drawn verifiers re-score the answer. A wrong answer's providers are slashed and
    /// you are repaid; a right one keeps the bond.
    Challenge {
        /// Default: the last request `agora run` kept.
        request: Option<u64>,
    },
    /// Hash a GGUF (with a progress bar) and publish it as a model release.
    Publish(commands::publish::PublishArgs),
    /// An OpenAI-compatible HTTP API; every call is paid and verified through the marketplace.
    Gateway(commands::gateway::GatewayArgs),
    /// The whole system on this machine: dev chain, the model published, three providers.
    #[command(subcommand)]
    Devnet(commands::devnet::DevnetCommand),
}

async fn main_async(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Run(args) => commands::run::run(global, args).await,
        Command::Models(command) => commands::models::run(global, command).await,
        Command::Providers(command) => commands::providers::run(global, command).await,
        Command::Receipt(args) => commands::receipt::run(global, args).await,
        Command::Challenge { request } => commands::challenge::run(global, request).await,
        Command::Publish(args) => commands::publish::run(global, args).await,
        Command::Gateway(args) => commands::gateway::run(global, args).await,
        Command::Devnet(command) => commands::devnet::run(global, command).await,
    }
}

fn log_filter(verbose: u8) -> tracing_subscriber::EnvFilter {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        return filter;
    }
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::EnvFilter::new(format!("{level},llama_cpp_2=off,libp2p_kad=error"))
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_env_filter(log_filter(cli.global.verbose)).with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(main_async(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
