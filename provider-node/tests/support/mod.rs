//! Fixtures for the provider tests over a real dev chain: provider processes, a libp2p client,
//! the real model.

#![allow(dead_code)]

use agora_chain_client::{agora, subxt_signer::sr25519::Keypair, types, AccountId, ChainClient};
use agora_devnet::demo::{self, UNIT};
use agora_primitives::wire::{token_hash, InferFrame, InferOpen, InferRequest, Use, MAX_FRAME_BYTES};
use agora_fixtures::models::{fetch_smollm2, smollm2_sha256};
use agora_engine::{Engine, EngineConfig, Progress};
use agora_net::{frame, NetConfig, Network};
use futures::AsyncWriteExt;
use libp2p::{Multiaddr, PeerId};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tests of one binary run one at a time: each starts a chain and several model-serving
/// processes, and two cores do not carry two such setups without RPC timeouts.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub const N_CTX: u32 = 2048;
pub const N_BATCH: u32 = 512;

pub fn workspace_root() -> &'static Path {
    agora_fixtures::workspace_root()
}

pub fn smollm2() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| fetch_smollm2(workspace_root()).expect("the real model is fetched"))
}

/// The model in this process, for tokenising prompts and computing the expected answer.
pub fn local_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = EngineConfig { n_ctx: N_CTX, n_batch: N_BATCH, slots: 1, threads_per_slot: 1, queue_depth: 4, ..EngineConfig::default() };
        Engine::load(smollm2(), &smollm2_sha256(), config, Progress::Hidden).unwrap()
    })
}

/// A loopback port free now, and never handed out before in this test process: the OS may
/// give a port back as soon as it is released, and two providers told the same port both
/// listen on it (libp2p reuses ports), so a client dialing one reaches the other.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The `agora-provider` binary: cargo's own in this crate's tests. Elsewhere (the client's tests
/// include this module too) the one beside the test executable, which `cargo test --workspace`
/// (`./scripts/test`) builds before any test runs. No cargo is run from here: inside a test,
/// cargo's per-package variables would change build-script fingerprints and rebuild crates.
pub fn provider_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = option_env!("CARGO_BIN_EXE_agora-provider") {
            return PathBuf::from(path);
        }
        workspace_binary("agora-provider")
    })
}

/// A binary of another workspace crate, beside the test executable (`cargo test --workspace`
/// builds every binary before any test runs).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(binary.exists(), "{} is missing: run the tests with ./scripts/test, or build it first with `cargo test --workspace --no-run`", binary.display());
    binary
}

/// One `agora-provider run` process.
pub struct Provider {
    pub name: String,
    pub uri: String,
    pub dir: PathBuf,
    pub port: u16,
    pub metrics_port: u16,
    chain_url: String,
    model: PathBuf,
    /// Flags added to every start.
    extra: Vec<String>,
    child: Option<Child>,
}

impl Provider {
    pub fn start(chain_url: &str, root: &Path, name: &str, uri: &str, price: u128) -> Provider {
        Self::start_with(chain_url, root, name, uri, price, smollm2(), &[])
    }

    pub fn start_with(chain_url: &str, root: &Path, name: &str, uri: &str, price: u128, model: &Path, extra: &[&str]) -> Provider {
        let mut provider = Provider {
            model: model.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            name: name.into(),
            uri: uri.into(),
            dir: root.join(name),
            port: free_port(),
            metrics_port: free_port(),
            chain_url: chain_url.into(),
            child: None,
        };
        provider.spawn(price);
        provider
    }

    fn spawn(&mut self, price: u128) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("provider-{}.log", Instant::now().elapsed().as_nanos()))).unwrap();
        let child = Command::new(provider_binary())
            .arg("run")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--chain-url", &self.chain_url, "--account-uri", &self.uri])
            .arg("--model")
            .arg(&self.model)
            .args(["--release", agora_fixtures::models::SMOLLM2_SHA256_HEX])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", self.port)])
            .args(["--metrics", &format!("127.0.0.1:{}", self.metrics_port)])
            .args(["--mdns", "false", "--threads", "2", "--max-concurrent", "2"])
            .args(["--n-ctx", &N_CTX.to_string(), "--n-batch", &N_BATCH.to_string()])
            .args(self.unless_given("--stake", &(1_000 * UNIT).to_string()))
            .args(["--price-per-1k-input", &price.to_string(), "--price-per-1k-output", &price.to_string()])
            .args(&self.extra)
            // Two cores running chains, several model processes and the compiler reach load
            // averages that would trip the safeguard; only the test of the safeguard sets one.
            .args(self.unless_given("--max-load-per-core", "1000"))
            .env("RUST_LOG", "info,agora_provider_node=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// `flag value`, unless the extra flags set `flag` themselves.
    fn unless_given(&self, flag: &str, value: &str) -> Vec<String> {
        if self.extra.iter().any(|a| a == flag) { vec![] } else { vec![flag.to_string(), value.to_string()] }
    }

    /// Starts the process again on the same data directory (keys, journal) and port.
    pub fn restart(&mut self, price: u128) {
        self.spawn(price);
    }

    /// Waits for the process to exit by itself and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Sends SIGTERM, which starts the graceful shutdown, and returns at once.
    pub fn send_term(&self) {
        let pid = self.child.as_ref().expect("running").id();
        assert!(Command::new("kill").arg(pid.to_string()).status().unwrap().success());
    }

    /// SIGTERM, then the exit status once the process is gone.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.send_term();
        self.wait_exit(within)
    }

    /// Runs `agora-provider <subcommand>` on this provider's data directory and account.
    pub fn account_command(&self, subcommand: &str) -> std::process::Output {
        Command::new(provider_binary())
            .arg(subcommand)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--chain-url", &self.chain_url, "--account-uri", &self.uri])
            .output()
            .unwrap()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn account(&self) -> AccountId {
        keypair(&self.uri).public_key().to_account_id()
    }

    /// The process's log, for failure messages.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("provider-") {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }

    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first so a graceful shutdown runs; then make sure.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn keypair(uri: &str) -> Keypair {
    Keypair::from_uri(&uri.parse().unwrap()).unwrap()
}

/// Waits until the provider process serves (its metrics port answers: the last step of its
/// start) and its manifest is on-chain and online.
pub async fn wait_online(chain: &ChainClient, provider: &Provider) -> types::ProviderRecord<u128, u32> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let serving = std::net::TcpStream::connect(("127.0.0.1", provider.metrics_port)).is_ok();
        if let Some(record) = chain.provider(&provider.account()).await.unwrap().filter(|_| serving) {
            if record.status == types::ProviderStatus::Online && !record.manifest.offers.0.is_empty() {
                let addr = String::from_utf8(record.manifest.multiaddrs.0[0].0.clone()).unwrap();
                if addr.ends_with(&format!("/tcp/{}", provider.port)) {
                    return record;
                }
            }
        }
        assert!(Instant::now() < deadline, "{} never came online:\n{}", provider.name, provider.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn publish_smollm2(chain: &ChainClient) {
    if chain.release(smollm2_sha256()).await.unwrap().is_none() {
        demo::publish(chain, &demo::Actors::dev().publisher, demo::smollm2_release()).await.unwrap();
    }
}

pub fn params(profile: [u8; 32], prompt: &[u32], max_output_tokens: u32, redundancy: u32) -> types::RequestParams<u128, u32> {
    types::RequestParams {
        release: smollm2_sha256(),
        runtime_profile: profile,
        prompt_hash: token_hash(prompt),
        prompt_tokens: prompt.len() as u32,
        max_output_tokens,
        max_price_per_1k: UNIT / 100,
        redundancy,
        sampling: types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 },
        commit_blocks: 60,
    }
}

/// Creates a request as Eve and builds the block that draws it. Returns its id and providers.
pub async fn open_request(chain: &ChainClient, params: types::RequestParams<u128, u32>) -> (u64, Vec<AccountId>) {
    let (id, _, request) = demo::open_request(chain, &demo::Actors::dev().client, params).await.unwrap();
    assert_eq!(request.status, types::RequestStatus::Assigned);
    (id, request.providers.0)
}

/// A libp2p client, as a dApp runs one.
pub async fn client_network() -> Network {
    Network::start(libp2p::identity::Keypair::generate_ed25519(), NetConfig::default()).await.unwrap()
}

/// Where the manifest says a provider is.
pub async fn locate(chain: &ChainClient, provider: &AccountId) -> (PeerId, Multiaddr) {
    let record = chain.provider(provider).await.unwrap().expect("registered");
    let peer = PeerId::from_bytes(&record.manifest.peer_id.0).unwrap();
    let addr: Multiaddr = String::from_utf8(record.manifest.multiaddrs.0[0].0.clone()).unwrap().parse().unwrap();
    (peer, addr.with(libp2p::multiaddr::Protocol::P2p(peer)))
}

/// Opens an inference stream to a provider.
pub async fn open(net: &Network, chain: &ChainClient, provider: &AccountId) -> libp2p::Stream {
    let (peer, addr) = locate(chain, provider).await;
    net.dial(addr).await.unwrap();
    net.control().open_stream(peer, agora_net::infer_protocol()).await.unwrap()
}

/// `prompt` for `request` under `key`'s signature for the chain whose genesis hash is `genesis`,
/// to be read on `net`'s peer.
pub fn signed_request_by(key: &Keypair, genesis: [u8; 32], request: u64, prompt: &[u32], net: &Network) -> InferRequest {
    let client_peer = net.peer_id().to_bytes();
    let signature = key.sign(&Use::new(genesis, request, prompt, client_peer.clone()).signing_payload()).0;
    InferRequest { request, prompt: prompt.to_vec(), client_peer, signature }
}

/// Whether `signature` is `provider`'s (sr25519, its account key) over `payload`.
pub fn signed_by(provider: &AccountId, signature: &[u8; 64], payload: &[u8]) -> bool {
    agora_chain_client::signed_by(&provider.0, signature, payload)
}

/// The request as its client (the dev client, who opens every test request) sends it from `net`.
pub fn signed_request(genesis: [u8; 32], request: u64, prompt: &[u32], net: &Network) -> InferRequest {
    signed_request_by(&demo::Actors::dev().client, genesis, request, prompt, net)
}

/// Sends `request` from `net` and reads every frame until the stream ends.
pub async fn send(net: &Network, chain: &ChainClient, provider: &AccountId, request: &InferRequest) -> Vec<InferFrame> {
    exchange(net, chain, provider, &InferOpen::from(request.clone())).await
}

/// Opens a stream to `provider`, sends `first` and reads every frame until the stream ends.
async fn exchange(net: &Network, chain: &ChainClient, provider: &AccountId, first: &InferOpen) -> Vec<InferFrame> {
    let mut stream = open(net, chain, provider).await;
    frame::write(&mut stream, first).await.unwrap();
    read_all(&mut stream).await
}

/// Sends the client's signed request and reads every frame until the stream ends.
pub async fn infer(net: &Network, chain: &ChainClient, provider: &AccountId, request: u64, prompt: &[u32]) -> Vec<InferFrame> {
    send(net, chain, provider, &signed_request(chain.genesis_hash(), request, prompt, net)).await
}

pub async fn read_all(stream: &mut libp2p::Stream) -> Vec<InferFrame> {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), frame::read::<InferFrame, _>(stream, MAX_FRAME_BYTES)).await {
            Ok(Ok(Some(frame))) => frames.push(frame),
            _ => break,
        }
    }
    let _ = stream.close().await;
    frames
}

/// The tokens of a stream and its closing frame.
pub fn tokens_and_end(frames: &[InferFrame]) -> (Vec<u32>, Option<InferFrame>) {
    let tokens = frames.iter().filter_map(|f| if let InferFrame::Token { token, .. } = f { Some(*token) } else { None }).collect();
    (tokens, frames.last().filter(|f| !matches!(f, InferFrame::Token { .. })).cloned())
}

/// Waits until the request has a receipt. Commitments, reveals and settlement are the
/// providers' own transactions, each in a block of its own; a k = 1 result's audit draw comes
/// in a later block, which this builds (the chain here has no block ticker, and empty blocks
/// would only move the other requests' deadlines).
pub async fn wait_receipt(chain: &ChainClient, request: u64, providers: &[&Provider]) -> types::Receipt<AccountId, u128, u32> {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(receipt) = chain.receipt(request).await.unwrap() {
            return receipt;
        }
        if chain.request(request).await.unwrap().is_some_and(|r| r.status == types::RequestStatus::AwaitingAudit) {
            chain.new_blocks(1).await.unwrap();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = providers.iter().map(|p| format!("--- {}\n{}", p.name, p.log())).collect();
            panic!("request {request} never settled\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `provider` has committed to `request`.
pub async fn wait_commitment(chain: &ChainClient, request: u64, provider: &Provider) -> [u8; 32] {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(c) = chain.commitment(request, &provider.account()).await.unwrap() {
            return c;
        }
        assert!(Instant::now() < deadline, "{} never committed:\n{}", provider.name, provider.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Counts `Verifier::Committed` events of `provider` for `request` in every block so far.
pub async fn commit_events(chain: &ChainClient, request: u64, provider: &AccountId) -> usize {
    let best = chain.best_block_number().await.unwrap();
    let mut count = 0;
    for number in 1..=best {
        let at = chain.api().at_block(u64::from(number)).await.unwrap();
        let events = at.events().fetch().await.unwrap();
        count += events
            .find::<agora::verifier::events::Committed>()
            .filter_map(Result::ok)
            .filter(|e| e.request == request && &e.provider == provider)
            .count();
    }
    count
}

/// Eve's tickets of the dev release (k = `redundancy`, prompts up to 64 tokens, outputs up to
/// `max_output_tokens`), bought from a fresh deposit, once a block has drawn them.
pub async fn drawn_tickets(chain: &ChainClient, profile: [u8; 32], redundancy: u32, max_output_tokens: u32, count: u32) -> Vec<(u64, agora_chain_client::Ticket)> {
    let eve = demo::Actors::dev().client;
    let spec = agora_chain_client::TicketSpec {
        release: smollm2_sha256(),
        runtime_profile: profile,
        redundancy,
        max_prompt_tokens: 64,
        max_output_tokens,
        max_price_per_1k: UNIT / 100,
    };
    chain.deposit(UNIT, &eve).await.unwrap();
    let purchase = chain.buy_tickets(spec, count, &eve).await.unwrap();
    for _ in 0..10 {
        chain.new_blocks(1).await.unwrap();
        let tickets: Vec<_> = futures::future::join_all(purchase.ids().map(|id| chain.ticket(id))).await.into_iter().map(|t| t.unwrap().unwrap()).collect();
        if tickets.iter().all(|t| t.status == agora_chain_client::TicketStatus::Drawn) {
            return purchase.ids().zip(tickets).collect();
        }
    }
    panic!("tickets {:?} were never drawn", purchase.ids());
}

/// `key`'s `Use` of `ticket` for `prompt` on the chain whose genesis hash is `genesis`, to be read
/// on `net`'s peer.
pub fn ticket_request_by(
    key: &Keypair,
    genesis: [u8; 32],
    ticket: u64,
    prompt: &[u32],
    max_output_tokens: u32,
    net: &Network,
) -> agora_primitives::wire::TicketRequest {
    let authorised = agora_primitives::TicketUse {
        chain: genesis,
        ticket,
        prompt_hash: token_hash(prompt),
        prompt_tokens: prompt.len() as u32,
        max_output_tokens,
        sampling: Default::default(),
        client_peer: agora_primitives::PeerIdBytes::truncate_from(net.peer_id().to_bytes()),
    };
    let signature = key.sign(&authorised.signing_payload()).0;
    agora_primitives::wire::TicketRequest { authorised, prompt: prompt.to_vec(), signature }
}

/// Sends a ticket's `Use` from `net` and reads every frame until the stream ends.
pub async fn send_ticket(net: &Network, chain: &ChainClient, provider: &AccountId, request: &agora_primitives::wire::TicketRequest) -> Vec<InferFrame> {
    exchange(net, chain, provider, &InferOpen::from(request.clone())).await
}
