//! `agora devnet`: the whole system on one machine. A supervisor process runs the dev chain
//! (chopsticks executing the runtime's WASM, with blocks at a steady pace), publishes the real
//! model's release, and runs three `agora-provider` processes on loopback serving it (each also a
//! verifier of the others' disputes). `up` starts the supervisor in the background and returns
//! once every provider is online; `down` stops it. Its state (endpoint, processes) is in `<dir>/devnet.json`, its logs beside it.

use agora_chain_client::ChainClient;
use agora_devnet::demo::{self, UNIT};
use agora_devnet::chopsticks::{free_port, last_lines};
use agora_devnet::{DevChain, DevChainConfig};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The dev accounts that serve, with their price per 1k tokens in thousandths of a unit.
const PROVIDERS: [(&str, &str, u128); 3] = [("bob", "//Bob", 2), ("charlie", "//Charlie", 3), ("dave", "//Dave", 4)];

#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub dir: PathBuf,
    pub port: u16,
    /// Time between blocks (chopsticks also builds one soon after transactions arrive).
    pub block_time: Duration,
    /// The `agora-provider` binary.
    pub provider_binary: PathBuf,
    /// The GGUF the providers serve (SmolLM2, the demo release).
    pub model: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevnetProvider {
    pub name: String,
    pub account: String,
    pub pid: u32,
    pub listen: String,
    pub metrics: String,
    pub log: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevnetState {
    pub chain_url: String,
    pub supervisor_pid: u32,
    pub model: PathBuf,
    pub providers: Vec<DevnetProvider>,
    pub ready: bool,
    /// Set when the supervisor failed while starting.
    pub error: Option<String>,
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

pub fn read_state(dir: &Path) -> Option<DevnetState> {
    serde_json::from_slice(&std::fs::read(state_path(dir)).ok()?).ok()
}

fn write_state(dir: &Path, state: &DevnetState) -> Result<()> {
    let tmp = dir.join("devnet.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(tmp, state_path(dir))?;
    Ok(())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// Starts the supervisor in the background (its own process group, so the terminal's Ctrl-C
/// does not reach it) and waits until it reports every provider online.
pub fn up(config: &DevnetConfig, agora_binary: &Path) -> Result<DevnetState> {
    std::fs::create_dir_all(&config.dir)?;
    if let Some(state) = read_state(&config.dir).filter(|s| s.ready && alive(s.supervisor_pid)) {
        return Ok(state);
    }
    if !config.provider_binary.exists() {
        bail!(
            "{} is missing: install it beside agora with `cargo install --path provider-node`, or pass --provider-binary",
            config.provider_binary.display()
        );
    }
    let _ = std::fs::remove_file(state_path(&config.dir));
    let log_path = config.dir.join("devnet.log");
    let log = std::fs::File::create(&log_path)?;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(agora_binary)
        .args(["devnet", "serve", "--port", &config.port.to_string()])
        .arg("--dir")
        .arg(&config.dir)
        .args(["--block-ms", &config.block_time.as_millis().to_string()])
        .arg("--model")
        .arg(&config.model)
        .arg("--provider-binary")
        .arg(&config.provider_binary)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the devnet supervisor")?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(state) = read_state(&config.dir) {
            if let Some(error) = state.error {
                bail!("the devnet failed to start: {error}\n(log: {})", log_path.display());
            }
            if state.ready {
                return Ok(state);
            }
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the devnet supervisor exited ({status}):\n{}", last_lines(&log, 20));
        }
        if Instant::now() > deadline {
            bail!("the devnet was not ready within 15 minutes; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Where the devnet keeps its state and logs unless told: `~/.local/share/agora/devnet`, so that
/// `agora devnet down` finds it from any directory.
pub fn default_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".local/share/agora/devnet")
}

/// Stops a devnet started by `up`: its supervisor stops the providers and the chain.
pub fn down(dir: &Path) -> Result<bool> {
    let Some(state) = read_state(dir) else { return Ok(false) };
    if alive(state.supervisor_pid) {
        Command::new("kill").arg(state.supervisor_pid.to_string()).status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while alive(state.supervisor_pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if alive(state.supervisor_pid) {
            Command::new("kill").args(["-9", &state.supervisor_pid.to_string()]).status()?;
        }
    }
    for p in &state.providers {
        if alive(p.pid) {
            let _ = Command::new("kill").args(["-9", &p.pid.to_string()]).status();
        }
    }
    let _ = std::fs::remove_file(state_path(dir));
    Ok(true)
}

struct Supervised {
    children: Vec<Child>,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for child in &mut self.children {
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The supervisor: runs until SIGTERM or SIGINT.
pub async fn serve(config: DevnetConfig) -> Result<()> {
    let dir = std::fs::canonicalize(&config.dir)?;
    let mut state = DevnetState {
        chain_url: String::new(),
        supervisor_pid: std::process::id(),
        model: config.model.clone(),
        providers: vec![],
        ready: false,
        error: None,
    };
    let result = run_supervisor(&config, &dir, &mut state).await;
    if let Err(e) = &result {
        state.error = Some(format!("{e:#}"));
        let _ = write_state(&dir, &state);
    }
    result
}

async fn run_supervisor(config: &DevnetConfig, dir: &Path, state: &mut DevnetState) -> Result<()> {
    let chain_config = DevChainConfig { dir: dir.join("chain"), port: config.port };
    let chain = tokio::task::spawn_blocking(move || DevChain::start(chain_config)).await??;
    state.chain_url = chain.ws_url();
    println!("dev chain on {}", state.chain_url);
    let client = ChainClient::connect(&state.chain_url).await?;
    let ticker = demo::spawn_block_ticker(client.clone(), config.block_time);
    if client.release(demo::SMOLLM2_SHA256).await?.is_none() {
        demo::publish(&client, &demo::Actors::dev().publisher, demo::smollm2_release()).await?;
        println!("published {} ({})", demo::SMOLLM2_FAMILY, hex::encode(demo::SMOLLM2_SHA256));
    }

    let mut supervised = Supervised { children: vec![] };
    let mut serving = Vec::new();
    for (name, uri, milli) in PROVIDERS {
        let data = dir.join("providers").join(name);
        std::fs::create_dir_all(&data)?;
        // Every devnet chain starts from genesis: a journal of an earlier one is void (the node
        // would refuse it); the keys stay.
        let _ = std::fs::remove_dir_all(data.join("journal"));
        let (p2p, metrics) = (free_port()?, free_port()?);
        let log = data.join("provider.log");
        let price = (milli * UNIT / 1000).to_string();
        let child = Command::new(&config.provider_binary)
            .arg("run")
            .arg("--data-dir")
            .arg(&data)
            .args(["--chain-url", &state.chain_url, "--account-uri", uri])
            .arg("--model")
            .arg(&config.model)
            .args(["--release", &hex::encode(demo::SMOLLM2_SHA256)])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{p2p}"), "--metrics", &format!("127.0.0.1:{metrics}")])
            .args(["--mdns", "false", "--threads", "1", "--max-concurrent", "1"])
            // Each verifies the others' disputes: spot checks of k = 1 requests, split votes of k = 2.
            .args(["--verifier", "true"])
            .args(["--stake", &(1_000 * UNIT).to_string(), "--price-per-1k-input", &price, "--price-per-1k-output", &price])
            // Three providers and a chain share this machine: its load says nothing about theirs.
            .args(["--max-load-per-core", "1000"])
            .env("RUST_LOG", "info,llama_cpp_2=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", config.provider_binary.display()))?;
        let account = demo::account(&agora_client::account_from_uri(uri)?);
        serving.push((account.clone(), format!("127.0.0.1:{metrics}")));
        state.providers.push(DevnetProvider {
            name: name.into(),
            account: account.to_string(),
            pid: child.id(),
            listen: format!("/ip4/127.0.0.1/tcp/{p2p}"),
            metrics: format!("http://127.0.0.1:{metrics}/metrics"),
            log,
        });
        supervised.children.push(child);
    }
    write_state(dir, state)?;

    let deadline = Instant::now() + Duration::from_secs(600);
    for (i, (account, metrics)) in serving.iter().enumerate() {
        let name = &state.providers[i].name;
        loop {
            let record = client.provider(account).await?;
            let online = record.is_some_and(|r| r.status == agora_chain_client::types::ProviderStatus::Online);
            if online && std::net::TcpStream::connect(metrics).is_ok() {
                println!("{name} online");
                break;
            }
            if let Some(status) = supervised.children[i].try_wait()? {
                let log = std::fs::read_to_string(&state.providers[i].log).unwrap_or_default();
                return Err(anyhow!("provider {name} exited ({status}); its log ends:\n{}", last_lines(&log, 15)));
            }
            if Instant::now() > deadline {
                return Err(anyhow!("provider {name} was not online within 10 minutes; see {}", state.providers[i].log.display()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    state.ready = true;
    write_state(dir, state)?;
    println!("devnet ready");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    println!("stopping");
    drop(supervised);
    ticker.abort();
    drop(chain);
    let _ = std::fs::remove_file(state_path(dir));
    Ok(())
}
