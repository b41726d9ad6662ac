//! The node's configuration: a TOML file, every value of which a flag or an environment variable
//! (`AGORA_PROVIDER_*`) overrides. Flags and environment beat the file; the file beats defaults.

use agora_primitives::Hash256;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One layer of settings; each value is optional so layers can be stacked.
#[derive(Args, Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// Directory of keys, journal and other state.
    #[arg(long, env = "AGORA_PROVIDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// WebSocket JSON-RPC endpoint of an Agora chain node.
    #[arg(long, env = "AGORA_PROVIDER_CHAIN_URL")]
    pub chain_url: Option<String>,
    /// Secret URI of the chain account (e.g. `//Bob` on the dev chain); default: `account.key`.
    #[arg(long, env = "AGORA_PROVIDER_ACCOUNT_URI")]
    pub account_uri: Option<String>,
    /// The GGUF file to serve.
    #[arg(long, env = "AGORA_PROVIDER_MODEL")]
    pub model: Option<PathBuf>,
    /// The release (sha256 of the GGUF, hex) the model is served as; default: the file's own hash.
    #[arg(long, env = "AGORA_PROVIDER_RELEASE")]
    pub release: Option<String>,
    /// libp2p listen addresses.
    #[arg(long, env = "AGORA_PROVIDER_LISTEN", value_delimiter = ',')]
    pub listen: Option<Vec<String>>,
    /// Addresses to advertise instead of the listen addresses (behind NAT).
    #[arg(long, env = "AGORA_PROVIDER_EXTERNAL", value_delimiter = ',')]
    pub external: Option<Vec<String>>,
    /// Peers to join the DHT through (multiaddrs ending in `/p2p/<peer id>`).
    #[arg(long, env = "AGORA_PROVIDER_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Option<Vec<String>>,
    /// Discover peers on the local network with mDNS.
    #[arg(long, env = "AGORA_PROVIDER_MDNS")]
    pub mdns: Option<bool>,
    /// Stake to hold at registration, in the chain's smallest unit.
    #[arg(long, env = "AGORA_PROVIDER_STAKE")]
    pub stake: Option<u64>,
    #[arg(long, env = "AGORA_PROVIDER_PRICE_PER_1K_INPUT")]
    pub price_per_1k_input: Option<u64>,
    #[arg(long, env = "AGORA_PROVIDER_PRICE_PER_1K_OUTPUT")]
    pub price_per_1k_output: Option<u64>,
    #[arg(long, env = "AGORA_PROVIDER_HARDWARE_CLASS")]
    pub hardware_class: Option<String>,
    /// Requests run at once, each in its own llama.cpp context.
    #[arg(long, env = "AGORA_PROVIDER_MAX_CONCURRENT")]
    pub max_concurrent: Option<usize>,
    /// Requests that may wait for a free slot. The manifest offers slots plus queue as the jobs
    /// this provider takes at once.
    #[arg(long, env = "AGORA_PROVIDER_QUEUE_DEPTH")]
    pub queue_depth: Option<usize>,
    /// Inference threads in all, split between the slots.
    #[arg(long, env = "AGORA_PROVIDER_THREADS")]
    pub threads: Option<usize>,
    #[arg(long, env = "AGORA_PROVIDER_N_CTX")]
    pub n_ctx: Option<u32>,
    #[arg(long, env = "AGORA_PROVIDER_N_BATCH")]
    pub n_batch: Option<u32>,
    /// Where Prometheus metrics are served.
    #[arg(long, env = "AGORA_PROVIDER_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Stop taking jobs when the 1-minute load average per core passes this; resume below 80 % of it.
    #[arg(long, env = "AGORA_PROVIDER_MAX_LOAD_PER_CORE")]
    pub max_load_per_core: Option<f64>,
    /// Stop taking jobs above this CPU temperature (°C, from /sys where it exists); resume 5 °C below.
    #[arg(long, env = "AGORA_PROVIDER_MAX_TEMPERATURE")]
    pub max_temperature_c: Option<f64>,
    /// Concurrent inference streams one peer may hold.
    #[arg(long, env = "AGORA_PROVIDER_MAX_STREAMS_PER_PEER")]
    pub max_streams_per_peer: Option<usize>,
    /// Established connections in all.
    #[arg(long, env = "AGORA_PROVIDER_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// Also verify: opt in on-chain to be drawn for disputes of the release this node serves,
    /// and judge the results brought to it by re-scoring them (off: opt out).
    #[arg(long, env = "AGORA_PROVIDER_VERIFIER")]
    pub verifier: Option<bool>,
    /// Fault injection for the end-to-end tests of cheating: stream, commit and reveal tokens
    /// shifted by this much (0: honest). Never set it on a real provider: it is slashed for
    /// every job.
    #[arg(long, hide = true, env = "AGORA_PROVIDER_TEST_LIE")]
    pub test_lie: Option<u32>,
    /// Fault injection for the tests of a stalling provider: after the first token, wait this
    /// many milliseconds before sending each later frame (generation, journal and commitment
    /// stay honest).
    #[arg(long, hide = true, env = "AGORA_PROVIDER_TEST_DRIP_MS")]
    pub test_drip_ms: Option<u32>,
    /// Fault injection for the tests of a flooding provider: stream this many tokens more than
    /// were asked for before the closing frame.
    #[arg(long, hide = true, env = "AGORA_PROVIDER_TEST_OVERRUN")]
    pub test_overrun: Option<u32>,
}

macro_rules! overlay {
    ($top:expr, $bottom:expr, $($field:ident),*) => {
        ConfigLayer { $($field: $top.$field.or($bottom.$field),)* }
    };
}

impl ConfigLayer {
    /// Values of `self` win; `base` fills the gaps.
    pub fn over(self, base: ConfigLayer) -> ConfigLayer {
        overlay!(self, base, data_dir, chain_url, account_uri, model, release, listen, external, bootstrap, mdns, stake,
            price_per_1k_input, price_per_1k_output, hardware_class, max_concurrent, queue_depth, threads, n_ctx,
            n_batch, metrics, max_load_per_core, max_temperature_c, max_streams_per_peer, max_connections, verifier, test_lie,
            test_drip_ms, test_overrun)
    }

    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("missing setting `{0}` (in the file, as --{flag}, or as AGORA_PROVIDER_{env})", flag = .0.replace('_', "-"), env = .0.to_uppercase())]
    Missing(&'static str),
    #[error("invalid setting `{name}`: {message}")]
    Invalid { name: &'static str, message: String },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub chain_url: String,
    pub account_uri: Option<String>,
    pub model: PathBuf,
    pub release: Option<Hash256>,
    pub listen: Vec<libp2p::Multiaddr>,
    pub external: Vec<libp2p::Multiaddr>,
    pub bootstrap: Vec<libp2p::Multiaddr>,
    pub mdns: bool,
    pub stake: u128,
    pub price_per_1k_input: u128,
    pub price_per_1k_output: u128,
    pub hardware_class: String,
    pub max_concurrent: usize,
    pub queue_depth: usize,
    pub threads: usize,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub metrics: SocketAddr,
    pub max_load_per_core: f64,
    pub max_temperature_c: f64,
    pub max_streams_per_peer: usize,
    pub max_connections: u32,
    pub verifier: bool,
    /// Shift of the tokens a lying test provider reports; 0 for every real one.
    pub test_lie: u32,
    /// Pause a dripping test provider takes before each frame after its first token; 0 for
    /// every real one.
    pub test_drip_ms: u32,
    /// Tokens a flooding test provider streams past those asked for; 0 for every real one.
    pub test_overrun: u32,
}

/// A fault of the tests of misbehaving providers (`test_lie`, `test_drip_ms`, `test_overrun`),
/// which only a build with the `fault-injection` feature (the workspace's test build) accepts:
/// release builds cannot be told to misbehave.
fn fault_injection(name: &'static str, value: Option<u32>) -> Result<u32, ConfigError> {
    match value.unwrap_or(0) {
        0 => Ok(0),
        value if cfg!(feature = "fault-injection") => Ok(value),
        _ => Err(ConfigError::Invalid { name, message: "this build has no fault injection (feature `fault-injection`)".into() }),
    }
}

fn addrs(name: &'static str, values: Option<Vec<String>>, default: &[&str]) -> Result<Vec<libp2p::Multiaddr>, ConfigError> {
    let values = values.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|e| ConfigError::Invalid { name, message: format!("{v:?}: {e}") }))
        .collect()
}

pub fn parse_hash(name: &'static str, value: &str) -> Result<Hash256, ConfigError> {
    hex::decode(value.trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ConfigError::Invalid { name, message: format!("{value:?} is not 32 bytes of hex") })
}

impl Config {
    pub fn resolve(layer: ConfigLayer) -> Result<Config, ConfigError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let max_concurrent = layer.max_concurrent.unwrap_or(1);
        if max_concurrent == 0 {
            return Err(ConfigError::Invalid { name: "max_concurrent", message: "must be at least 1".into() });
        }
        let n_batch = layer.n_batch.unwrap_or(512);
        if n_batch == 0 {
            return Err(ConfigError::Invalid { name: "n_batch", message: "must be at least 1".into() });
        }
        Ok(Config {
            data_dir: layer.data_dir.ok_or(ConfigError::Missing("data_dir"))?,
            chain_url: layer.chain_url.unwrap_or_else(|| "ws://127.0.0.1:9944".into()),
            account_uri: layer.account_uri,
            model: layer.model.ok_or(ConfigError::Missing("model"))?,
            release: layer.release.as_deref().map(|r| parse_hash("release", r)).transpose()?,
            listen: addrs("listen", layer.listen, &["/ip4/0.0.0.0/tcp/0"])?,
            external: addrs("external", layer.external, &[])?,
            bootstrap: addrs("bootstrap", layer.bootstrap, &[])?,
            mdns: layer.mdns.unwrap_or(true),
            stake: u128::from(layer.stake.ok_or(ConfigError::Missing("stake"))?),
            price_per_1k_input: u128::from(layer.price_per_1k_input.ok_or(ConfigError::Missing("price_per_1k_input"))?),
            price_per_1k_output: u128::from(layer.price_per_1k_output.ok_or(ConfigError::Missing("price_per_1k_output"))?),
            hardware_class: layer.hardware_class.unwrap_or_else(|| "cpu-x86-64-v3".into()),
            max_concurrent,
            queue_depth: layer.queue_depth.unwrap_or(8),
            threads: layer.threads.unwrap_or(cores).max(1),
            n_ctx: layer.n_ctx.unwrap_or(2048),
            n_batch,
            metrics: layer.metrics.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9615))),
            max_load_per_core: layer.max_load_per_core.unwrap_or(4.0),
            max_temperature_c: layer.max_temperature_c.unwrap_or(90.0),
            max_streams_per_peer: layer.max_streams_per_peer.unwrap_or(4),
            max_connections: layer.max_connections.unwrap_or(256),
            verifier: layer.verifier.unwrap_or(false),
            test_lie: fault_injection("test_lie", layer.test_lie)?,
            test_drip_ms: fault_injection("test_drip_ms", layer.test_drip_ms)?,
            test_overrun: fault_injection("test_overrun", layer.test_overrun)?,
        })
    }

    /// Threads each slot gets: the total split evenly, at least one.
    pub fn threads_per_slot(&self) -> usize {
        (self.threads / self.max_concurrent).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provider.toml");
        std::fs::write(
            &path,
            r#"
            data_dir = "/var/lib/agora"
            model = "/models/m.gguf"
            stake = 500
            price_per_1k_input = 1
            price_per_1k_output = 2
            max_concurrent = 2
            threads = 4
            listen = ["/ip4/127.0.0.1/tcp/4001"]
            "#,
        )
        .unwrap();
        let file = ConfigLayer::from_file(&path).unwrap();
        let flags = ConfigLayer { stake: Some(900), n_ctx: Some(1024), ..Default::default() };
        let config = Config::resolve(flags.over(file)).unwrap();
        assert_eq!(config.stake, 900);
        assert_eq!(config.n_ctx, 1024);
        assert_eq!(config.price_per_1k_output, 2);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/agora"));
        assert_eq!(config.listen[0].to_string(), "/ip4/127.0.0.1/tcp/4001");
        assert_eq!(config.threads_per_slot(), 2);
        assert_eq!(config.n_batch, 512);
    }

    #[test]
    fn the_example_configuration_is_complete_and_valid() {
        let layer: ConfigLayer = toml::from_str(include_str!("../provider.example.toml")).unwrap();
        let config = Config::resolve(layer).unwrap();
        assert_eq!(config.max_concurrent, 2);
        assert_eq!(config.listen[0].to_string(), "/ip4/0.0.0.0/tcp/4001");
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "stake = 1\nprice = 3\n").unwrap();
        let err = ConfigLayer::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("price"), "{err}");

        let err = Config::resolve(ConfigLayer::default()).unwrap_err().to_string();
        assert!(err.contains("data_dir") && err.contains("--data-dir") && err.contains("AGORA_PROVIDER_DATA_DIR"), "{err}");

        let layer = ConfigLayer {
            data_dir: Some("/d".into()),
            model: Some("/m".into()),
            stake: Some(1),
            price_per_1k_input: Some(1),
            price_per_1k_output: Some(1),
            listen: Some(vec!["not an address".into()]),
            ..Default::default()
        };
        let err = Config::resolve(layer.clone()).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::resolve(ConfigLayer { listen: None, release: Some("abc".into()), ..layer }).unwrap_err().to_string();
        assert!(err.contains("release"), "{err}");
    }
}
