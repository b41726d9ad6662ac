//! Fixtures for the end-to-end tests: a fresh dev chain per test, on a free loopback port.

use agora_chain_client::ChainClient;
use agora_devnet::{DevChain, DevChainConfig};

/// A running dev chain. Dropping it stops chopsticks and removes its directory, unless the
/// test is failing: then the spec and `chopsticks.log` stay for a look.
pub struct TestChain(Option<DevChain>);

impl TestChain {
    /// The chain's WebSocket endpoint, for processes that connect on their own.
    pub fn ws_url(&self) -> String {
        self.0.as_ref().map(|c| c.ws_url()).unwrap_or_default()
    }
}

impl Drop for TestChain {
    fn drop(&mut self) {
        let Some(chain) = self.0.take() else { return };
        let dir = chain.dir().to_path_buf();
        drop(chain);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts chopsticks on the runtime's WASM in a directory of its own and connects to it.
pub async fn start_chain(name: &str) -> anyhow::Result<(TestChain, ChainClient)> {
    let dir = std::env::temp_dir().join(format!("agora-e2e-{name}-{}", std::process::id()));
    let config = DevChainConfig { dir, port: 0 };
    let chain = tokio::task::spawn_blocking(move || DevChain::start(config)).await??;
    let client = ChainClient::connect(&chain.ws_url()).await?;
    Ok((TestChain(Some(chain)), client))
}
