//! One module per `agora` command.

pub mod challenge;
pub mod devnet;
pub mod gateway;
pub mod models;
pub mod providers;
pub mod publish;
pub mod receipt;
pub mod run;

use crate::Global;
use agora_client::{Client, ClientConfig, RunStore};
use anyhow::Context;

/// The client every chain-facing command connects with.
pub async fn client(global: &Global) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(&global.chain_url, agora_client::account_from_uri(&global.account_uri)?);
    if !global.gguf.is_empty() {
        config.model_files = global.gguf.clone();
    }
    Client::connect(config).await.with_context(|| format!("connecting to {}", global.chain_url))
}

/// Where `agora run` keeps runs and `agora challenge` finds them.
pub fn runs(global: &Global) -> RunStore {
    RunStore::new(global.runs_dir.clone().unwrap_or_else(RunStore::default_dir))
}
