//! The Agora client: what dApps, users and auditors use to reach the marketplace.
//!
//! A [`Client`] connects to a chain endpoint and starts a libp2p node. [`Client::run`] takes a
//! [`Job`] (model, prompt, max tokens, k, price limit, sampling) through the whole protocol:
//! checks (before any money moves), escrow, the on-chain draw of k providers, the prompt sent
//! to each over libp2p, tokens streamed back as soon as the first provider answers, the k
//! answers compared, and settlement awaited; the [`RunResult`] carries the majority answer and
//! the on-chain [`Receipt`](agora_chain_client::Receipt). A request that goes to verifiers (a
//! split vote, or a k = 1 request drawn for a spot check) is seen through: the client brings them
//! the prompt and the answers and waits for their verdict ([`DisputeReport`]);
//! [`Client::challenge`] has a settled answer re-scored, against a bond. Auditor calls read the
//! release history, releases, provider records and receipts. A [`TicketPool`]
//! ([`Client::ticket_pool`]) serves prompts from tickets bought and drawn ahead: no transaction
//! before the first token, the answer verified when a strict majority of its providers signed
//! it, the bundles settled in batches in the background. [`RunStore`] keeps each run's prompt
//! and answer so that it can be challenged later; [`report`] has typed views of every record, for
//! JSON and for humans.
//!
//! Features: `gateway` (the OpenAI-compatible HTTP API, axum), `local-first` (a local model that
//! answers first, the marketplace the rest; it runs llama.cpp). Without them the library compiles
//! no C++: prompts are tokenised by `agora-tokenizer` in pure Rust.
//!
//! ```no_run
//! # async fn demo() -> agora_client::Result<()> {
//! use agora_client::{Client, ClientConfig, Job, Prompt};
//! let client = Client::connect(ClientConfig::dev("ws://127.0.0.1:9944")).await?;
//! let mut job = Job::new("smollm2-135m-instruct".parse()?, Prompt::Text("The capital of France is".into()));
//! job.k = 3;
//! let result = client
//!     .run(&job, |event| {
//!         if let agora_client::RunEvent::Token { piece, .. } = event {
//!             print!("{}", String::from_utf8_lossy(&piece));
//!         }
//!     })
//!     .await?;
//! println!("\nrequest {} verified: {}", result.request, result.verified);
//! # Ok(()) }
//! ```

pub mod dispute;
pub mod error;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "local-first")]
pub mod local;
pub mod models;
pub mod publish;
pub mod receipt_file;
pub mod report;
pub mod run;
pub mod runs;
mod stream;
pub mod tickets;

pub use agora_tokenizer::ChatTurn;
pub use dispute::{DisputeCause, DisputeReport};
pub use error::{ClientError, Result};
pub use models::{ModelFiles, ModelRef};
pub use publish::ReleaseMeta;
#[cfg(feature = "local-first")]
pub use local::{LocalAnswer, LocalModel, Routed};
pub use runs::{RunRecord, RunStore};
pub use run::{Job, Prepared, Prompt, ProviderReport, RunEvent, RunResult, Timeouts, Timings};
pub use receipt_file::{ReceiptCheckError, ReceiptFile, VerifiedReceipt};
pub use tickets::{HeldTicket, PoolConfig, SettledTicket, TicketAnswer, TicketPool, TicketTimings};

use agora_chain_client::{subxt_signer::sr25519::Keypair, AccountId, ChainClient, ModelRelease, ProviderRecord, Receipt};
use agora_primitives::Hash256;
use agora_net::{Location, NetConfig, Network};
use std::path::PathBuf;

/// How to reach the marketplace.
pub struct ClientConfig {
    pub chain_url: String,
    /// The account that pays (sr25519).
    pub account: Keypair,
    /// GGUF files, or directories of them, where releases' tokenizers are found.
    pub model_files: Vec<PathBuf>,
    pub timeouts: Timeouts,
}

impl ClientConfig {
    /// A development account (`//Eve`) on `chain_url`, models from [`ModelFiles::default_dir`].
    pub fn dev(chain_url: &str) -> Self {
        Self::new(chain_url, dev_account("//Eve"))
    }

    pub fn new(chain_url: &str, account: Keypair) -> Self {
        Self { chain_url: chain_url.into(), account, model_files: vec![ModelFiles::default_dir()], timeouts: Timeouts::default() }
    }
}

/// A development key from a secret URI such as `//Eve`.
pub fn dev_account(uri: &str) -> Keypair {
    account_from_uri(uri).expect("a valid dev URI")
}

/// An sr25519 key from a secret URI (`//Name`, a mnemonic, or `0x` + seed).
pub fn account_from_uri(uri: &str) -> Result<Keypair> {
    let parsed = uri.parse().map_err(|e| ClientError::BadAccountUri(format!("{e:?}")))?;
    Keypair::from_uri(&parsed).map_err(|e| ClientError::BadAccountUri(e.to_string()))
}

/// Where a provider's manifest says it listens.
pub(crate) fn location_of(record: &ProviderRecord) -> std::result::Result<Location, agora_net::NetError> {
    let (peer, addrs) = agora_chain_client::manifest_endpoint(record);
    Location::from_manifest(peer, addrs)
}

/// A connection to the chain and to the provider network.
pub struct Client {
    pub(crate) chain: ChainClient,
    pub(crate) signer: Keypair,
    pub(crate) net: Network,
    pub(crate) models: ModelFiles,
    pub(crate) timeouts: Timeouts,
}

impl Client {
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let chain = ChainClient::connect(&config.chain_url).await?;
        let net = Network::start(agora_net::identity::Keypair::generate_ed25519(), NetConfig::default()).await?;
        Ok(Self {
            chain,
            signer: config.account,
            net,
            models: ModelFiles::new(config.model_files),
            timeouts: config.timeouts,
        })
    }

    pub fn chain(&self) -> &ChainClient {
        &self.chain
    }

    pub fn account(&self) -> AccountId {
        self.signer.public_key().to_account_id()
    }

    /// Every release of a family, oldest first.
    pub async fn history(&self, family: &str) -> Result<Vec<ModelRelease>> {
        let history = self.chain.release_history(family).await?;
        if history.is_empty() {
            return Err(ClientError::UnknownModel(family.into()));
        }
        Ok(history)
    }

    /// The release a reference names.
    pub async fn release(&self, model: &ModelRef) -> Result<ModelRelease> {
        match model {
            // A revoked release is still shown to auditors.
            ModelRef::Release(hash) => self.chain.release(*hash).await?.ok_or_else(|| ClientError::UnknownModel(model.to_string())),
            _ => models::resolve(&self.chain, model).await,
        }
    }

    /// `prompt` as the tokens `model`'s release reads (its chat template applied), for example
    /// to size a ticket to it.
    pub async fn tokenize(&self, model: &ModelRef, prompt: &Prompt) -> Result<Vec<u32>> {
        let release = models::resolve(&self.chain, model).await?;
        prompt.token_ids(&*self.models.tokenizer(&release).await?)
    }

    /// A provider's record: stake, manifest, status, reputation.
    pub async fn provider(&self, who: &AccountId) -> Result<ProviderRecord> {
        self.chain.provider(who).await?.ok_or_else(|| ClientError::UnknownProvider(who.to_string()))
    }

    /// Registered providers, of one release or all, best reputation first.
    pub async fn providers(&self, release: Option<Hash256>) -> Result<Vec<(AccountId, ProviderRecord)>> {
        let mut all = match release {
            Some(id) => {
                let mut out = Vec::new();
                for who in self.chain.servers_of(id).await? {
                    if let Some(record) = self.chain.provider(&who).await? {
                        out.push((who, record));
                    }
                }
                out
            },
            None => self.chain.providers().await?,
        };
        all.sort_by_key(|(who, r)| (std::cmp::Reverse(r.reputation.score_ppm), who.to_string()));
        Ok(all)
    }

    /// A settled request's receipt.
    pub async fn receipt(&self, request: u64) -> Result<Receipt> {
        if let Some(receipt) = self.chain.receipt(request).await? {
            return Ok(receipt);
        }
        match self.chain.request(request).await? {
            None => Err(ClientError::UnknownRequest(request)),
            Some(r) => Err(ClientError::NotSettled { request, status: run::status_name(r.status) }),
        }
    }
}
