//! The provider daemon: ties the engine, the journal, libp2p and the chain together.
//!
//! - **Start**: keys, chain connection, the GGUF checked against the release it claims, the
//!   release checked on-chain (exists, not revoked), a short self-benchmark for the advertised tokens/s, libp2p, then
//!   register (or update the manifest and go online) and announce the release in the DHT.
//! - **Serving** (`/agora/infer/1`): a client's prompt is checked against the on-chain request
//!   (exists and open, this provider assigned, release and runtime profile ours, prompt hash and
//!   length equal) before it runs; tokens stream back as they are produced. The job runs on even
//!   if the client goes away: the chain still expects a commitment.
//! - **Chain worker**: reads each new block's assignments, and moves every journaled job along:
//!   commit once generated, reveal when the reveal window opens, settle, close. Each step is
//!   journaled (synced) before the chain call it enables, and the chain is asked before each
//!   call whether it already happened, so a restart after a kill at any point neither commits
//!   twice nor reveals a different value.
//! - **Verifying** (`--verifier`, [`verify`]): opted in on-chain, the node judges the disputes it
//!   is drawn for by re-scoring the outputs brought to it over `/agora/verify/1`. As a provider,
//!   it brings its own result to the verifiers when one of its requests goes to dispute.
//! - **Operations**: Prometheus metrics, the load safeguard (offline on-chain while overloaded),
//!   graceful shutdown.

mod chain_worker;
mod disputes;
mod faults;
mod jobs;
mod safeguard;
mod serving;
mod startup;
mod tickets;
mod verify;

use crate::config::Config;
use agora_engine::{Engine, EngineConfig, EngineError, GenEvent, GenerateRequest, Progress};
use crate::journal::{JobParams, JobRecord, JobState, Journal, TicketJob, TicketState};
use crate::keys::NodeKeys;
use crate::load;
use crate::metrics::{KindLabel, Metrics, StateLabel};
use agora_net::limits::Admission;
use agora_net::{infer, Location, NetConfig, Network, StreamError};
use agora_chain_client::{agora, bounded, types, AccountId, BlockNumber, ChainClient, Keypair, Rejection, VerifierError};
use agora_primitives::wire::{Authorised, InferErrorKind, InferFrame, InferOpen, InferRequest, StopReason, TicketRequest, VerifyReply, VerifyRequest};
use agora_verifier::commitment::commitment;
use agora_primitives::{sampling_seed, Hash256, Outcome, ReleaseId, RequestId, SamplingParams, TicketId};
use anyhow::{anyhow, bail, Context};
use libp2p::{Multiaddr, PeerId};
use rand::RngCore;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;


/// How long a client has to send its request after opening a stream.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the chain worker asks for the block number when nothing wakes it.
const CHAIN_POLL: Duration = Duration::from_millis(200);
/// A provider that did not reveal first waits this many blocks past the reveal deadline before
/// settling itself, so one settle call usually suffices.
const SETTLE_GRACE_BLOCKS: BlockNumber = 2;

type Refusal = (InferErrorKind, String);


struct Inner {
    config: Config,
    signer: Keypair,
    account: AccountId,
    release: ReleaseId,
    profile_hash: Hash256,
    engine: Engine,
    journal: Journal,
    chain: ChainClient,
    network: Network,
    metrics: Arc<Metrics>,
    /// Requests and tickets whose generation is running now.
    running: Mutex<HashSet<jobs::Running>>,
    wake: Notify,
    /// Serialises changes to the journaled verifications.
    verifying: Mutex<()>,
    judging: tokio::sync::Mutex<()>,
    /// Disputed requests whose result this node has brought to their verifiers.
    pushed: Mutex<HashSet<RequestId>>,
    /// The escrow pallet's settle window, read the first time a ticket needs it.
    settle_window: tokio::sync::OnceCell<BlockNumber>,
    fallback_grace: tokio::sync::OnceCell<BlockNumber>,
}

/// A running provider node.
pub struct Node {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    addresses: Vec<Multiaddr>,
}

impl Node {
    /// Starts the node: everything in the module docs up to serving. Fails with a clear error if
    /// the model is not the release it claims or the release cannot be served.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let keys = NodeKeys::load_or_create(&config.data_dir.join("keys"), config.account_uri.as_deref())?;
        let chain = ChainClient::connect(&config.chain_url)
            .await
            .with_context(|| format!("cannot reach the chain at {}", config.chain_url))?;
        let engine_config = EngineConfig {
            n_ctx: config.n_ctx,
            n_batch: config.n_batch,
            slots: config.max_concurrent,
            threads_per_slot: config.threads_per_slot(),
            queue_depth: config.queue_depth,
            ..EngineConfig::default()
        };
        let (model_path, claimed) = (config.model.clone(), config.release);
        // The file is hashed once: against the release it claims, or to learn which it is.
        let engine = tokio::task::spawn_blocking(move || match claimed {
            Some(release) => Engine::load(&model_path, &release, engine_config, Progress::Bar),
            None => Engine::open(&model_path, engine_config, Progress::Bar),
        })
        .await??;
        let release = engine.profile().model_sha256;
        let on_chain = chain
            .release(release)
            .await?
            .ok_or_else(|| anyhow!("release {} is not registered on the chain", hex::encode(release)))?;
        if on_chain.status == types::ReleaseStatus::Revoked {
            bail!("release {} is revoked on the chain; refusing to serve it", hex::encode(release));
        }
        let (engine, milli_tokens_per_sec) = tokio::task::spawn_blocking(move || {
            let speed = startup::self_benchmark(&engine)?;
            Ok::<_, EngineError>((engine, speed))
        })
        .await??;
        let profile_hash = engine.profile_hash();
        tracing::info!(
            release = %hex::encode(release),
            profile = %hex::encode(profile_hash),
            tokens_per_sec = f64::from(milli_tokens_per_sec) / 1000.0,
            "model verified and loaded"
        );

        let journal = Journal::open(&config.data_dir.join("journal"))?;
        journal.bind_to_chain(chain.genesis_hash())?;
        let network = Network::start(
            keys.network.clone(),
            NetConfig {
                listen: config.listen.clone(),
                external: config.external.clone(),
                bootstrap: config.bootstrap.clone(),
                mdns: config.mdns,
                max_connections: config.max_connections,
                max_connections_per_peer: 2,
            },
        )
        .await?;
        let addresses = if config.external.is_empty() { network.listen_addrs().await? } else { config.external.clone() };

        let manifest = types::CapabilityManifest {
            peer_id: bounded(keys.peer_id().to_bytes()),
            multiaddrs: bounded(addresses.iter().take(8).map(|a| bounded(a.to_string().into_bytes())).collect::<Vec<_>>()),
            offers: bounded(vec![types::Offer { release, runtime_profile: profile_hash, milli_tokens_per_sec }]),
            price_per_1k_input: config.price_per_1k_input,
            price_per_1k_output: config.price_per_1k_output,
            max_context: engine.config().n_ctx,
            // Every job the engine takes at once, running or queued for a slot. A job stays open
            // on-chain until settlement, long after its generation: counting the slots alone
            // would idle them while commitments and reveals go through.
            max_concurrent_jobs: (config.max_concurrent + config.queue_depth) as u32,
            hardware_class: bounded(config.hardware_class.clone().into_bytes()),
            settlement_key: keys.settlement_public(),
        };
        let account = keys.account.public_key().to_account_id();
        let inner = Arc::new(Inner {
            signer: keys.account.clone(),
            account,
            release,
            profile_hash,
            engine,
            journal,
            chain,
            network: network.clone(),
            metrics: Metrics::new(),
            running: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            verifying: Mutex::new(()),
            judging: tokio::sync::Mutex::new(()),
            pushed: Mutex::default(),
            settle_window: tokio::sync::OnceCell::new(),
            fallback_grace: tokio::sync::OnceCell::new(),
            config,
        });
        // A dropped RPC answer (seen from chopsticks while a transaction was being watched) must
        // not stop the node: every attempt reads the chain again first, so a call that landed
        // is not repeated. What the chain refuses is final.
        let mut attempts = 0;
        loop {
            match inner.ensure_registered(manifest.clone()).await {
                Ok(()) => break,
                Err(e) if attempts < 4 && e.downcast_ref::<agora_chain_client::Error>().is_some_and(|c| !c.is_refusal()) => {
                    attempts += 1;
                    tracing::warn!(error = %format!("{e:#}"), attempts, "registration step failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                },
                Err(e) => return Err(e),
            }
        }
        if inner.journal.last_block()?.is_none() {
            // A new node: its assignments can only come after its registration.
            inner.journal.set_last_block(inner.chain.best_block_number().await?)?;
        }
        network.provide(release)?;

        let (shutdown, stopping) = watch::channel(false);
        let incoming = network.accept(agora_net::INFER_PROTOCOL)?;
        let verifications = network.accept(agora_net::VERIFY_PROTOCOL)?;
        let per_peer = inner.config.max_streams_per_peer;
        let (serving, verifying) = (inner.clone(), inner.clone());
        let mut tasks = vec![
            tokio::spawn(agora_net::limits::serve(incoming, per_peer, stopping.clone(), move |peer, stream, admission| {
                serving.clone().serve_inference(peer, stream, admission)
            })),
            tokio::spawn(agora_net::limits::serve(verifications, per_peer, stopping.clone(), move |peer, stream, admission| {
                verifying.clone().serve_verification(peer, stream, admission)
            })),
            tokio::spawn(inner.clone().chain_worker(stopping.clone())),
            tokio::spawn(inner.clone().load_monitor(stopping.clone())),
        ];
        tasks.push(inner.metrics.clone().serve(inner.config.metrics).await.context("cannot serve metrics")?);
        inner.metrics.accepting.set(1);
        tracing::info!(peer = %network.peer_id(), account = %inner.account, ?addresses, "provider node serving");
        Ok(Node { inner, shutdown, tasks, addresses })
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.network.peer_id()
    }

    pub fn account(&self) -> &AccountId {
        &self.inner.account
    }

    /// The addresses advertised in the manifest.
    pub fn addresses(&self) -> &[Multiaddr] {
        &self.addresses
    }

    pub fn profile_hash(&self) -> Hash256 {
        self.inner.profile_hash
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// Graceful shutdown: off-line on-chain so no new work is drawn, no new streams, running
    /// generations finished and journaled, committable results committed. What is left (reveals
    /// whose window is not open yet) stays in the journal for the next start.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.shutdown.send(true);
        if let Err(e) = self.inner.submit(&agora::tx().providers().go_offline()).await {
            tracing::warn!(error = %e, "could not go offline on-chain");
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.inner.running.lock().map(|r| r.is_empty()).unwrap_or(true) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pass = async { self.inner.chain_pass(self.inner.chain.best_block_number().await?).await };
        if let Err(e) = pass.await {
            tracing::warn!(error = %e, "final chain pass failed; the journal keeps the jobs");
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

impl Inner {
    async fn submit<C: agora_chain_client::subxt::transactions::Payload>(
        &self,
        call: &C,
    ) -> Result<agora_chain_client::Events, agora_chain_client::Error> {
        self.chain.submit(call, &self.signer).await
    }


    fn chain_error(&self, kind: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.chain_errors.get_or_create(&KindLabel { kind }).inc();
        tracing::warn!(kind, error = %error, "chain call failed");
    }
}
