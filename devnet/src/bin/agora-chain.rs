//! `agora-chain`: start, inspect and stop the local Agora dev chain.

#[cfg(feature = "demo")]
use agora_chain_client::ChainClient;
#[cfg(feature = "demo")]
use agora_devnet::demo;
use agora_devnet::{spec, DevChain, DevChainConfig};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "The local Agora dev chain (chopsticks running the Agora runtime on 127.0.0.1)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the dev chain and keep it running until Ctrl-C (or in the background with --detach).
    Up {
        #[arg(long, default_value_t = 9944, env = "AGORA_CHAIN_PORT")]
        port: u16,
        #[arg(long, default_value = ".agora-chain", env = "AGORA_CHAIN_DIR")]
        dir: PathBuf,
        /// Return once the chain is up, leaving it running; `agora-chain down` stops it.
        #[arg(long)]
        detach: bool,
        /// Skip the demo round (a release, three providers and one settled k = 3 request).
        #[arg(long)]
        no_demo: bool,
    },
    /// Print the releases, providers and a request's receipt held by a running chain.
    #[cfg(feature = "demo")]
    Status {
        #[arg(long, default_value = "ws://127.0.0.1:9944", env = "AGORA_CHAIN_URL")]
        url: String,
        /// Also print this request's receipt.
        #[arg(long)]
        request: Option<u64>,
    },
    /// Stop a chain started with `up --detach`.
    Down {
        #[arg(long, default_value = ".agora-chain", env = "AGORA_CHAIN_DIR")]
        dir: PathBuf,
    },
    /// Write the raw chain spec of the development preset.
    Spec {
        #[arg(long, default_value = "agora-dev.raw.json")]
        out: PathBuf,
    },
    /// Print the settle path's weights and how many settlements fit in one block.
    Weights,
    /// Write the runtime metadata the client crate compiles against.
    Metadata {
        #[arg(long, default_value = "chain-client/metadata/agora.scale")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Up { port, dir, detach, no_demo } => up(port, dir, detach, no_demo),
        #[cfg(feature = "demo")]
        Command::Status { url, request } => status(&url, request),
        Command::Down { dir } => down(&dir),
        Command::Spec { out } => {
            spec::write_raw_chain_spec(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        },
        Command::Weights => {
            print!("{}", agora_devnet::weights::table());
            Ok(())
        },
        Command::Metadata { out } => {
            spec::write_metadata(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        },
    }
}

#[cfg(feature = "demo")]
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

#[cfg_attr(not(feature = "demo"), allow(unused_variables))]
fn up(port: u16, dir: PathBuf, detach: bool, no_demo: bool) -> Result<()> {
    let chain = DevChain::start(DevChainConfig { dir: dir.clone(), port })?;
    println!("Agora dev chain listening on {}", chain.ws_url());
    #[cfg(feature = "demo")]
    if !no_demo {
        let url = chain.ws_url();
        let summary = runtime()?.block_on(async {
            let client = ChainClient::connect(&url).await?;
            println!("Playing a demo round: SmolLM2 published, three providers staked, one k = 3 request");
            println!("(chain only: two providers agree, one lies, with stand-in output hashes; `agora devnet up` runs real providers)...");
            let request = demo::play_round(&client, &demo::Actors::dev()).await?;
            demo::describe(&client, Some(request)).await
        })?;
        println!("\n{summary}");
    }
    if detach {
        let pid = chain.detach();
        std::fs::write(dir.join("chopsticks.pid"), pid.to_string())?;
        println!("running in the background (pid {pid}); stop it with `agora-chain down`");
        return Ok(());
    }
    println!("Ctrl-C stops it.");
    let status = chain.wait()?;
    anyhow::ensure!(status.success(), "chopsticks exited with {status}");
    Ok(())
}

#[cfg(feature = "demo")]
fn status(url: &str, request: Option<u64>) -> Result<()> {
    let summary = runtime()?.block_on(async {
        let client = ChainClient::connect(url).await?;
        demo::describe(&client, request).await
    })?;
    println!("{summary}");
    Ok(())
}

fn down(dir: &std::path::Path) -> Result<()> {
    let pid_file = dir.join("chopsticks.pid");
    let pid = std::fs::read_to_string(&pid_file).with_context(|| format!("no dev chain recorded in {}", pid_file.display()))?;
    let status = std::process::Command::new("kill").arg(pid.trim()).status()?;
    std::fs::remove_file(&pid_file)?;
    anyhow::ensure!(status.success(), "no process {} (already stopped?)", pid.trim());
    println!("stopped the dev chain (pid {})", pid.trim());
    Ok(())
}
