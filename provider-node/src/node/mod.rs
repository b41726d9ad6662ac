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

mod verify;

use crate::config::Config;
use agora_engine::{Engine, EngineConfig, EngineError, GenEvent, GenerateRequest, Progress};
use crate::journal::{JobParams, JobRecord, JobState, Journal};
use crate::keys::NodeKeys;
use crate::load;
use crate::metrics::{KindLabel, Metrics, StateLabel};
use crate::net::{self, frame, NetConfig, Network};
use agora_chain_client::{agora, bounded, types, AccountId, BlockNumber, ChainClient, Keypair};
use agora_primitives::wire::{token_hash, InferErrorKind, InferFrame, InferRequest, VerifyReply, VerifyRequest, MAX_FRAME_BYTES};
use agora_verifier::commitment::commitment;
use agora_primitives::{sampling_seed, Hash256, Outcome, ReleaseId, RequestId, SamplingParams};
use anyhow::{anyhow, bail, Context};
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId};
use rand::RngCore;
use std::collections::{HashMap, HashSet};
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
    /// Requests whose generation is running now.
    running: Mutex<HashSet<RequestId>>,
    /// One signed call at a time, so nonces never collide.
    submitting: tokio::sync::Mutex<()>,
    wake: Notify,
    /// Serialises changes to the journaled verifications.
    verifying: Mutex<()>,
    judging: tokio::sync::Mutex<()>,
    /// Disputed requests whose result this node has brought to their verifiers.
    pushed: Mutex<HashSet<RequestId>>,
}

/// Streams open per peer, on one protocol, so that one peer cannot take every task.
#[derive(Default, Clone)]
struct PeerStreams(Arc<Mutex<HashMap<PeerId, usize>>>);

/// One counted stream; dropping it uncounts it.
struct StreamSlot {
    streams: PeerStreams,
    peer: PeerId,
    /// The peer's open streams, this one included.
    count: usize,
}

impl PeerStreams {
    fn open(&self, peer: PeerId) -> StreamSlot {
        let mut streams = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = streams.entry(peer).or_default();
        *count += 1;
        StreamSlot { streams: self.clone(), peer, count: *count }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = streams.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                streams.remove(&self.peer);
            }
        }
    }
}

/// A running provider node.
pub struct Node {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    addresses: Vec<Multiaddr>,
}

fn kind_name(kind: InferErrorKind) -> &'static str {
    match kind {
        InferErrorKind::Malformed => "malformed",
        InferErrorKind::UnknownRequest => "unknown_request",
        InferErrorKind::NotAssigned => "not_assigned",
        InferErrorKind::PromptMismatch => "prompt_mismatch",
        InferErrorKind::PromptInvalid => "prompt_invalid",
        InferErrorKind::UnsupportedRelease => "unsupported_release",
        InferErrorKind::Busy => "busy",
        InferErrorKind::AlreadyServed => "already_served",
        InferErrorKind::Internal => "internal",
    }
}

fn sampling(params: &types::SamplingParams) -> SamplingParams {
    SamplingParams { temperature_milli: params.temperature_milli, top_k: params.top_k, top_p_milli: params.top_p_milli }
}

/// Measures generation speed on this machine, as the manifest advertises it.
fn self_benchmark(engine: &Engine) -> Result<u32, EngineError> {
    let prompt = engine.tokenize("Count from one to twenty in words:", true);
    let request = GenerateRequest { prompt, max_output_tokens: 32, sampling: SamplingParams::default(), seed: 0, logprobs: false };
    let started = Instant::now();
    let generation = engine.generate_blocking(request)?;
    let tokens = generation.tokens.len().max(1) as f64;
    Ok((tokens / started.elapsed().as_secs_f64() * 1000.0).min(f64::from(u32::MAX)) as u32)
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
            let speed = self_benchmark(&engine)?;
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
            max_concurrent_jobs: config.max_concurrent as u32,
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
            submitting: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            verifying: Mutex::new(()),
            judging: tokio::sync::Mutex::new(()),
            pushed: Mutex::default(),
            config,
        });
        // A dropped RPC answer (seen from chopsticks while a transaction was being watched) must
        // not stop the node: every attempt reads the chain again first, so a call that landed
        // is not repeated. What the chain refuses is final.
        let mut attempts = 0;
        loop {
            match inner.ensure_registered(manifest.clone()).await {
                Ok(()) => break,
                Err(e) if attempts < 4 && e.downcast_ref::<agora_chain_client::Error>().is_some_and(|c| c.rejection().is_none()) => {
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
        let incoming = network
            .control()
            .accept(net::infer_protocol())
            .map_err(|_| anyhow!("the inference protocol is already being served"))?;
        let verifications = network
            .control()
            .accept(net::verify_protocol())
            .map_err(|_| anyhow!("the verification protocol is already being served"))?;
        let mut tasks = vec![
            tokio::spawn(inner.clone().accept(incoming, stopping.clone(), Inner::serve_inference)),
            tokio::spawn(inner.clone().accept(verifications, stopping.clone(), Inner::serve_verification)),
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
        let _one_at_a_time = self.submitting.lock().await;
        self.chain.submit(call, &self.signer).await
    }

    /// Brings the held stake back to the configured amount (after a slash, or a raised setting).
    async fn top_up(&self, record: &agora_chain_client::ProviderRecord) -> Result<(), agora_chain_client::Error> {
        if record.stake < self.config.stake {
            self.submit(&agora::tx().providers().add_stake(self.config.stake - record.stake)).await?;
        }
        Ok(())
    }

    fn chain_error(&self, kind: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.chain_errors.get_or_create(&KindLabel { kind }).inc();
        tracing::warn!(kind, error = %error, "chain call failed");
    }

    async fn ensure_registered(&self, manifest: types::CapabilityManifest<u128>) -> anyhow::Result<()> {
        match self.chain.provider(&self.account).await? {
            None => {
                self.submit(&agora::tx().providers().register(self.config.stake, manifest))
                    .await
                    .context("registering as a provider")?;
                tracing::info!(stake = self.config.stake, "registered as a provider");
            },
            Some(record) => {
                if record.manifest != manifest {
                    self.submit(&agora::tx().providers().update_manifest(manifest)).await.context("updating the manifest")?;
                }
                self.top_up(&record).await.context("topping up the stake")?;
                match record.status {
                    types::ProviderStatus::Offline => {
                        self.submit(&agora::tx().providers().go_online()).await.context("going online")?;
                    },
                    types::ProviderStatus::Unbonding { unlocks_at } => {
                        tracing::warn!(unlocks_at, "this provider is unbonding: it finishes its jobs but takes no new ones");
                    },
                    types::ProviderStatus::Online => {},
                }
            },
        }
        self.set_verifier(self.config.verifier).await
    }

    /// Opts in to verifying disputes, or out, as configured.
    async fn set_verifier(&self, wanted: bool) -> anyhow::Result<()> {
        if self.chain.is_verifier(&self.account).await? == wanted {
            return Ok(());
        }
        if wanted {
            self.submit(&agora::tx().verifier().opt_in_verifier()).await.context("opting in as a verifier")?;
            tracing::info!("opted in to verify disputes");
        } else {
            self.submit(&agora::tx().verifier().opt_out_verifier()).await.context("opting out of verifying")?;
            tracing::info!("opted out of verifying disputes");
        }
        Ok(())
    }

    // ---- serving -------------------------------------------------------------------------

    /// Serves one protocol's streams until shutdown, each in its own task. `handle` gets the
    /// stream and whether its peer already holds `max_streams_per_peer` others on this protocol
    /// (then it refuses it), and hands it back to be closed.
    async fn accept<F, Fut>(self: Arc<Self>, mut incoming: libp2p_stream::IncomingStreams, mut stopping: watch::Receiver<bool>, handle: F)
    where
        F: Fn(Arc<Self>, PeerId, libp2p::Stream, bool) -> Fut,
        Fut: std::future::Future<Output = libp2p::Stream> + Send + 'static,
    {
        let streams = PeerStreams::default();
        loop {
            let (peer, stream) = tokio::select! {
                next = incoming.next() => match next { Some(s) => s, None => return },
                _ = stopping.changed() => return,
            };
            let slot = streams.open(peer);
            let served = handle(self.clone(), peer, stream, slot.count > self.config.max_streams_per_peer);
            tokio::spawn(async move {
                let mut stream = served.await;
                let _ = stream.close().await;
                drop(slot);
            });
        }
    }

    async fn serve_inference(self: Arc<Self>, peer: PeerId, mut stream: libp2p::Stream, over_limit: bool) -> libp2p::Stream {
        if over_limit {
            self.refuse(&mut stream, (InferErrorKind::Busy, "too many streams from this peer".into())).await;
        } else {
            self.handle_stream(peer, &mut stream).await;
        }
        stream
    }

    async fn refuse(&self, stream: &mut libp2p::Stream, (kind, message): Refusal) {
        self.metrics.protocol_errors.get_or_create(&KindLabel { kind: kind_name(kind) }).inc();
        tracing::debug!(?kind, %message, "refusing an inference stream");
        let _ = frame::write(stream, &InferFrame::Error { kind, message: message.into_bytes() }).await;
    }

    async fn handle_stream(self: &Arc<Self>, peer: PeerId, stream: &mut libp2p::Stream) {
        let request = match tokio::time::timeout(REQUEST_TIMEOUT, frame::read::<InferRequest, _>(stream, MAX_FRAME_BYTES)).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                // Broken framing: answer once, then drop the peer; the node serves the others.
                self.refuse(stream, (InferErrorKind::Malformed, e.to_string())).await;
                self.network.disconnect(peer);
                return;
            },
            Err(_) => {
                self.refuse(stream, (InferErrorKind::Malformed, "no request within 10 s".into())).await;
                return;
            },
        };
        let mut frames = match self.admit(request).await {
            Ok(frames) => frames,
            Err(refusal) => return self.refuse(stream, refusal).await,
        };
        while let Some(frame) = frames.recv().await {
            let last = !matches!(frame, InferFrame::Token { .. });
            if frame::write(stream, &frame).await.is_err() || last {
                break;
            }
        }
    }

    /// The journal entry of a request assigned to this provider, built from chain state.
    fn record_from_chain(&self, id: RequestId, request: &agora_chain_client::Request) -> JobRecord {
        let p = &request.params;
        let params = JobParams {
            runtime_profile: p.runtime_profile,
            prompt_hash: p.prompt_hash,
            prompt_tokens: p.prompt_tokens,
            max_output_tokens: p.max_output_tokens,
            sampling: sampling(&p.sampling),
        };
        JobRecord::assigned(id, p.release, request.commit_deadline, request.reveal_deadline, params)
    }

    /// Checks a client's request and starts (or replays) its generation. The request's terms
    /// come from the journal, where the chain worker copied them when it read the assignment;
    /// only a prompt that outruns the worker costs a chain query.
    async fn admit(self: &Arc<Self>, request: InferRequest) -> Result<mpsc::UnboundedReceiver<InferFrame>, Refusal> {
        let id = request.request;
        let started = Instant::now();
        let internal = |e: &dyn std::fmt::Display| (InferErrorKind::Internal, e.to_string());
        let mut asked_chain = false;
        let record = match self.journal.get(id).map_err(|e| internal(&e))? {
            Some(record) if record.state == JobState::Closed => {
                return Err((InferErrorKind::UnknownRequest, format!("request {id} is closed")));
            },
            Some(record) => record,
            None => {
                let on_chain = self
                    .chain
                    .request(id)
                    .await
                    .map_err(|e| internal(&format!("chain unavailable: {e}")))?
                    .ok_or((InferErrorKind::UnknownRequest, format!("request {id} does not exist on-chain")))?;
                if on_chain.status != types::RequestStatus::Assigned {
                    let status = on_chain.status;
                    return Err((InferErrorKind::UnknownRequest, format!("request {id} is not awaiting results ({status:?})")));
                }
                if !on_chain.providers.0.contains(&self.account) {
                    return Err((InferErrorKind::NotAssigned, format!("this provider is not assigned to request {id}")));
                }
                asked_chain = true;
                self.record_from_chain(id, &on_chain)
            },
        };
        if record.release != self.release || record.params.runtime_profile != self.profile_hash {
            return Err((InferErrorKind::UnsupportedRelease, "this provider does not serve that release and runtime profile".into()));
        }
        let params = &record.params;
        if request.prompt.len() != params.prompt_tokens as usize || token_hash(&request.prompt) != params.prompt_hash {
            return Err((
                InferErrorKind::PromptMismatch,
                format!("the prompt ({} tokens) does not match the hash and length on-chain", request.prompt.len()),
            ));
        }
        self.engine.validate_prompt(&request.prompt).map_err(|e| (InferErrorKind::PromptInvalid, e.to_string()))?;

        let (tx, rx) = mpsc::unbounded_channel();
        if record.output.is_some() {
            self.replay(&record, &tx);
            return Ok(rx);
        }
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return Err((InferErrorKind::AlreadyServed, format!("request {id} is already being generated")));
        }
        let record = JobRecord { state: JobState::PromptReceived, prompt: Some(request.prompt), ..record };
        let checked = started.elapsed();
        let result = self.clone().generate(record, Some(tx));
        if result.is_err() {
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
        tracing::debug!(request = id, asked_chain, ?checked, admitted_in = ?started.elapsed(), "admitted");
        result.map(|()| rx)
    }

    /// Streams a finished job's journaled output again (a client that reconnects).
    fn replay(&self, record: &JobRecord, tx: &mpsc::UnboundedSender<InferFrame>) {
        let (Some(output), Some(outcome)) = (&record.output, &record.outcome) else { return };
        for (index, &token) in output.iter().enumerate() {
            let _ = tx.send(InferFrame::Token { index: index as u32, token, piece: self.engine.piece(token) });
        }
        let stop = record.stop.unwrap_or(agora_primitives::wire::StopReason::MaxTokens);
        let _ = tx.send(InferFrame::Done { output_hash: outcome.output_hash, token_count: outcome.token_count, stop });
    }

    /// Runs a job's generation. The prompt is journaled while the prefill runs (off the path to
    /// the first token); the result (output, salt, commitment) is journaled before the client
    /// hears `Done` and before anything goes on-chain. The caller has put the request into
    /// `running`; this removes it when the job ends.
    fn generate(self: Arc<Self>, mut record: JobRecord, frames: Option<mpsc::UnboundedSender<InferFrame>>) -> Result<(), Refusal> {
        let id = record.request;
        let request = GenerateRequest {
            prompt: record.prompt.clone().unwrap_or_default(),
            max_output_tokens: record.params.max_output_tokens,
            sampling: record.params.sampling,
            seed: sampling_seed(id),
            logprobs: false,
        };
        let mut handle = self.engine.submit(request).map_err(|e| match e {
            EngineError::Busy { .. } => (InferErrorKind::Busy, e.to_string()),
            other => (InferErrorKind::Internal, other.to_string()),
        })?;
        self.metrics.queue_depth.set(self.engine.queued() as i64);
        tokio::spawn(async move {
            let send = |frame| {
                if let Some(frames) = &frames {
                    let _ = frames.send(frame);
                }
            };
            if let Err(e) = self.journal.put(&record) {
                tracing::error!(request = id, error = %e, "cannot journal a received prompt");
            }
            let mut first_token: Option<Instant> = None;
            while let Some(event) = handle.next().await {
                match event {
                    GenEvent::Token { index, token, piece } => {
                        first_token.get_or_insert_with(Instant::now);
                        self.metrics.tokens_generated.inc();
                        let token = self.falsified(index, token);
                        let piece = if self.config.test_lie > 0 { self.engine.piece(token) } else { piece };
                        send(InferFrame::Token { index, token, piece });
                    },
                    GenEvent::Finished(Ok(mut generation)) => {
                        if self.config.test_lie > 0 {
                            generation.tokens = generation.tokens.iter().enumerate().map(|(i, &t)| self.falsified(i as u32, t)).collect();
                            generation.output_hash = agora_primitives::wire::token_hash(&generation.tokens);
                        }
                        if let Some(first) = first_token {
                            let decoded = generation.tokens.len().saturating_sub(1) as f64;
                            let elapsed = first.elapsed().as_secs_f64();
                            if decoded > 0.0 && elapsed > 0.0 {
                                self.metrics.tokens_per_second.set(decoded / elapsed);
                            }
                        }
                        let mut salt = [0u8; 32];
                        rand::rng().fill_bytes(&mut salt);
                        let outcome = Outcome { output_hash: generation.output_hash, token_count: generation.tokens.len() as u32 };
                        record.commitment = Some(commitment(id, &self.account.0, &outcome, &salt));
                        record.state = JobState::Generated;
                        record.outcome = Some(outcome);
                        record.salt = Some(salt);
                        record.stop = Some(generation.stop);
                        record.output = Some(generation.tokens);
                        match self.journal.put(&record) {
                            Ok(()) => send(InferFrame::Done {
                                output_hash: outcome.output_hash,
                                token_count: outcome.token_count,
                                stop: generation.stop,
                            }),
                            Err(e) => {
                                tracing::error!(request = id, error = %e, "cannot journal a finished job");
                                send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                            },
                        }
                        self.wake.notify_one();
                    },
                    GenEvent::Finished(Err(e)) => {
                        tracing::error!(request = id, error = %e, "generation failed");
                        send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                    },
                }
            }
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            self.metrics.queue_depth.set(self.engine.queued() as i64);
        });
        Ok(())
    }

    /// The token a lying provider (`test_lie`, for the tests of cheating) puts at `index`: the
    /// first stays honest, the rest are shifted, so the answer looks plausible and is wrong.
    fn falsified(&self, index: u32, token: u32) -> u32 {
        if self.config.test_lie > 0 && index > 0 {
            (token + self.config.test_lie) % self.engine.n_vocab().max(1)
        } else {
            token
        }
    }

    // ---- chain ---------------------------------------------------------------------------

    /// Runs a pass whenever the chain has a new block (so an assignment is usually journaled
    /// before its client's prompt arrives) or a job has finished. Between blocks it only polls
    /// the block number, which keeps the load on the chain node low.
    async fn chain_worker(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut last_pass: Option<BlockNumber> = None;
        let mut woken = true;
        loop {
            match self.chain.best_block_number().await {
                Ok(best) if woken || last_pass != Some(best) => {
                    if let Err(e) = self.chain_pass(best).await {
                        self.chain_error("pass", &e);
                    }
                    last_pass = Some(best);
                },
                Ok(_) => {},
                Err(e) => self.chain_error("best_block", &e),
            }
            woken = tokio::select! {
                _ = self.wake.notified() => true,
                _ = tokio::time::sleep(CHAIN_POLL) => false,
                _ = stopping.changed() => return,
            };
        }
    }

    /// Reads new assignments, then moves every pending job one step if it can.
    async fn chain_pass(self: &Arc<Self>, best: BlockNumber) -> anyhow::Result<()> {
        let mut last = self.journal.last_block()?.unwrap_or(best);
        while last < best {
            let block = last + 1;
            let news = self.chain.block_news(block).await?;
            for dispute in news.disputes.iter().filter(|d| d.verifiers.contains(&self.account)) {
                self.drawn(dispute.request, dispute.verdict_deadline)?;
            }
            for assignment in news.assignments {
                let id = assignment.request;
                if assignment.providers.contains(&self.account) && self.journal.get(id)?.is_none() {
                    if let Some(request) = self.chain.request(id).await? {
                        tracing::info!(request = id, "assigned");
                        self.journal.put(&self.record_from_chain(id, &request))?;
                    }
                }
            }
            self.journal.set_last_block(block)?;
            last = block;
        }
        for record in self.journal.pending()? {
            let id = record.request;
            if let Err(e) = self.step(record, best).await {
                self.chain_error("job", &format!("request {id}: {e}"));
            }
        }
        if let Err(e) = self.verdicts_due(best).await {
            self.chain_error("verdicts", &format!("{e:#}"));
        }
        let all = self.journal.all()?;
        for state in JobState::ALL {
            let count = all.iter().filter(|r| r.state == state).count();
            self.metrics.jobs.get_or_create(&StateLabel { state: state.name() }).set(count as i64);
        }
        self.metrics.running_jobs.set(self.engine.running() as i64);
        self.metrics.queue_depth.set(self.engine.queued() as i64);
        Ok(())
    }

    async fn all_committed(&self, request: &agora_chain_client::Request, id: RequestId) -> anyhow::Result<bool> {
        for provider in &request.providers.0 {
            if self.chain.commitment(id, provider).await?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves one job forward. Calls land in the next block, so deadlines are checked against
    /// `best + 1`, and the chain is asked first whether the step already happened (a restart
    /// after the call and before its journal entry).
    async fn step(self: &Arc<Self>, mut record: JobRecord, best: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let next = best + 1;
        let Some(request) = self.chain.request(id).await? else {
            record.state = JobState::Closed;
            return Ok(self.journal.put(&record)?);
        };
        if request.status == types::RequestStatus::Disputed {
            // Held for verifiers: this node's result is judged by the tokens it stands for. If
            // some verifiers stay silent, the dispute is resolved with the verdicts cast.
            self.push_own_result(&record);
            if let Some(dispute) = self.chain.dispute(id).await? {
                if next > dispute.verdict_deadline + SETTLE_GRACE_BLOCKS {
                    match self.submit(&agora::tx().verifier().resolve_dispute(id)).await {
                        Ok(_) => tracing::info!(request = id, "resolved the dispute"),
                        Err(e) if e.rejection() == Some("Verifier::NoDispute") => {},
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            return Ok(());
        }
        if request.status != types::RequestStatus::Assigned {
            record.state = JobState::Closed;
            self.journal.put(&record)?;
            self.closed(id).await;
            return Ok(());
        }
        match record.state {
            JobState::Assigned | JobState::Closed => {},
            JobState::PromptReceived => {
                // A restart lost the running generation: run it again from the journaled
                // prompt (deterministic, so the same output) while it can still be committed.
                let idle = self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                if idle && next <= record.commit_deadline {
                    tracing::info!(request = id, "resuming an interrupted generation");
                    if let Err((_, e)) = self.clone().generate(record, None) {
                        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                        bail!("cannot resume: {e}");
                    }
                } else if idle {
                    self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                }
            },
            JobState::Generated => {
                let commitment = record.commitment.ok_or_else(|| anyhow!("journal lost the commitment"))?;
                if self.chain.commitment(id, &self.account).await?.is_none() {
                    if next > record.commit_deadline {
                        return Ok(());
                    }
                    match self.submit(&agora::tx().verifier().commit(id, commitment)).await {
                        Ok(_) => tracing::info!(request = id, "committed"),
                        Err(e) if e.rejection() == Some("Verifier::AlreadyCommitted") => {},
                        Err(e) => return Err(e.into()),
                    }
                }
                record.state = JobState::Committed;
                self.journal.put(&record)?;
            },
            JobState::Committed => {
                let (outcome, salt) = record.outcome.zip(record.salt).ok_or_else(|| anyhow!("journal lost the result"))?;
                if self.chain.reveal(id, &self.account).await?.is_none() {
                    let open = next > record.commit_deadline || self.all_committed(&request, id).await?;
                    if !open || next > record.reveal_deadline {
                        return Ok(());
                    }
                    let outcome = types::Outcome { output_hash: outcome.output_hash, token_count: outcome.token_count };
                    match self.submit(&agora::tx().verifier().reveal(id, outcome, salt)).await {
                        Ok(_) => tracing::info!(request = id, "revealed"),
                        Err(e) if e.rejection() == Some("Verifier::AlreadyRevealed") => {},
                        Err(e) => return Err(e.into()),
                    }
                }
                record.state = JobState::Revealed;
                self.journal.put(&record)?;
                self.wake.notify_one();
            },
            JobState::Revealed => {
                let mut revealed = Vec::new();
                for provider in &request.providers.0 {
                    if self.chain.reveal(id, provider).await?.is_some() {
                        revealed.push(provider.clone());
                    }
                }
                let everyone = revealed.len() == request.providers.0.len();
                // The first provider that revealed settles as soon as it can; the others only
                // if it has not some blocks after the deadline, so one settle usually suffices.
                let settler = revealed.first() == Some(&self.account);
                let due = (settler && (everyone || next > record.reveal_deadline)) ||
                    next > record.reveal_deadline + SETTLE_GRACE_BLOCKS;
                if due {
                    match self.submit(&agora::tx().verifier().settle(id)).await {
                        Ok(_) => tracing::info!(request = id, "settled"),
                        Err(e) if e.rejection() == Some("Verifier::NotActive") => {},
                        Err(e) => return Err(e.into()),
                    }
                }
            },
        }
        Ok(())
    }

    /// Brings this node's prompt and output of a disputed request to each of its verifiers, once
    /// (again after a failure, at the next pass).
    fn push_own_result(self: &Arc<Self>, record: &JobRecord) {
        let id = record.request;
        let (Some(prompt), Some(output)) = (record.prompt.clone(), record.output.clone()) else { return };
        if !self.pushed.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let push = VerifyRequest { request: id, prompt, outputs: vec![output] };
            let result = node.push_to_verifiers(&push).await;
            if let Err(e) = result {
                node.chain_error("push_result", &format!("request {id}: {e:#}"));
                node.pushed.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            }
        });
    }

    async fn push_to_verifiers(&self, push: &VerifyRequest) -> anyhow::Result<()> {
        let id = push.request;
        let Some(dispute) = self.chain.dispute(id).await? else { return Ok(()) };
        let mut failed = 0;
        for verifier in &dispute.verifiers.0 {
            let record = self.chain.provider(verifier).await?.ok_or_else(|| anyhow!("verifier {verifier} is not registered"))?;
            let location = net::manifest_location(&record).map_err(|e| anyhow!(e))?;
            match net::verify::push(&self.network, &location, push, Duration::from_secs(10)).await {
                Ok(VerifyReply::Error { kind, message }) => {
                    failed += 1;
                    tracing::warn!(request = id, %verifier, ?kind, message = %String::from_utf8_lossy(&message), "a verifier refused our result");
                },
                Ok(reply) => tracing::info!(request = id, %verifier, ?reply, "result brought to a verifier"),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(request = id, %verifier, error = %e, "cannot reach a verifier");
                },
            }
        }
        if failed > 0 {
            bail!("{failed} of {} verifiers did not take the result", dispute.verifiers.0.len());
        }
        Ok(())
    }

    /// After a request closed: report what settlement did to this provider and keep the stake
    /// at its configured level.
    async fn closed(&self, id: RequestId) {
        let Ok(Some(receipt)) = self.chain.receipt(id).await else { return };
        if let Some((_, amount, why)) = receipt.slashed.0.iter().find(|(who, _, _)| who == &self.account) {
            tracing::warn!(request = id, amount, ?why, "slashed");
            self.metrics.chain_errors.get_or_create(&KindLabel { kind: "slashed" }).inc();
            if let Ok(Some(record)) = self.chain.provider(&self.account).await {
                if let Err(e) = self.top_up(&record).await {
                    self.chain_error("top_up", &e);
                }
            }
        } else if let Some((_, amount)) = receipt.paid.0.iter().find(|(who, _)| who == &self.account) {
            tracing::info!(request = id, amount, "paid");
        }
    }

    // ---- load ----------------------------------------------------------------------------

    async fn load_monitor(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let limits = load::Limits {
            max_load_per_core: self.config.max_load_per_core,
            max_temperature_c: self.config.max_temperature_c,
        };
        let mut gate = load::Gate::new(limits);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {},
                _ = stopping.changed() => return,
            }
            let reading = load::read(Path::new("/proc"), Path::new("/sys"));
            let was_open = gate.is_open();
            let open = gate.update(reading);
            if open == was_open {
                continue;
            }
            self.metrics.accepting.set(i64::from(open));
            tracing::warn!(?reading, open, "load safeguard");
            let result = if open {
                self.submit(&agora::tx().providers().go_online()).await
            } else {
                self.submit(&agora::tx().providers().go_offline()).await
            };
            if let Err(e) = result {
                self.chain_error("load_safeguard", &e);
            }
        }
    }
}
