//! Typed access to the Agora chain.
//!
//! The client is generated at compile time from `metadata/agora.scale`, the runtime's own
//! metadata (regenerate it with `cargo run -p agora-devnet --bin agora-chain -- metadata`; a test in
//! `agora-devnet` fails while it is stale). Every off-chain crate talks to the chain through
//! this one crate, so the generated code compiles once.

#[subxt::subxt(
    runtime_metadata_path = "metadata/agora.scale",
    derive_for_all_types = "Clone, PartialEq, Eq",
    // A ticket's receipt file keeps both as the chain encodes them: its receipt root is over
    // the receipt's SCALE bytes.
    derive_for_type(path = "agora_primitives::tickets::TicketReceipt", derive = "::subxt::ext::codec::Encode, ::subxt::ext::codec::Decode", recursive),
    derive_for_type(path = "agora_primitives::tickets::TicketBundle", derive = "::subxt::ext::codec::Encode, ::subxt::ext::codec::Decode", recursive)
)]
pub mod agora {}

pub use agora::runtime_types::agora_primitives as types;
pub use agora::runtime_types::bounded_collections::bounded_vec::BoundedVec;
pub use subxt;
pub use subxt_signer;

mod submit;
mod tickets;
pub use tickets::{BlockReceipts, Purchase, SettleWitness, SettledTickets, Signature, SignedOutcome, Ticket, TicketBundle, TicketReceipt, TicketSpec, TicketStatus, TicketUse};

use subxt::OnlineClient;

/// The runtime's transaction format is Polkadot's: `MultiAddress<AccountId32, ()>`, u32 blocks.
pub type AgoraConfig = subxt::PolkadotConfig;
pub type AccountId = subxt::utils::AccountId32;
pub type Keypair = subxt_signer::sr25519::Keypair;

/// Whether `signature` is `account`'s (sr25519, its account key) over `payload`: how every
/// signed off-chain message of the protocol is checked (a client's `Use`, a provider's
/// acknowledgement and outcome).
pub fn signed_by(account: &[u8; 32], signature: &[u8; 64], payload: &[u8]) -> bool {
    use subxt_signer::sr25519;
    sr25519::verify(&sr25519::Signature(*signature), payload, &sr25519::PublicKey(*account))
}
pub type Events = subxt::extrinsics::ExtrinsicEvents<AgoraConfig>;
pub type Balance = u128;
pub type BlockNumber = u32;
pub type ModelRelease = types::ModelRelease<AccountId, BlockNumber>;
pub type ProviderRecord = types::ProviderRecord<Balance, BlockNumber>;
pub type Request = types::Request<AccountId, Balance, BlockNumber>;
pub type Receipt = types::Receipt<AccountId, Balance, BlockNumber>;
pub type Quote = types::Quote<AccountId, Balance>;
pub type Dispute = types::Dispute<AccountId, Balance, BlockNumber>;
pub type Resolution = types::Resolution<AccountId, Balance, BlockNumber>;

/// A call argument's bounded vector; the chain checks the bound when it decodes the call.
pub fn bounded<T>(items: impl Into<Vec<T>>) -> BoundedVec<T> {
    BoundedVec(items.into())
}

/// The peer id and addresses a provider's manifest advertises, as the bytes the chain keeps
/// (what `agora_net::Location::from_manifest` reads).
pub fn manifest_endpoint(record: &ProviderRecord) -> (&[u8], impl Iterator<Item = &[u8]>) {
    (&record.manifest.peer_id.0, record.manifest.multiaddrs.0.iter().map(|a| &a.0[..]))
}

/// A request drawn for its providers, as the escrow pallet announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub request: u64,
    pub providers: Vec<AccountId>,
    pub commit_deadline: BlockNumber,
    pub reveal_deadline: BlockNumber,
}

/// A dispute opened, as the verifier pallet announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisputeNotice {
    pub request: u64,
    pub verifiers: Vec<AccountId>,
    pub verdict_deadline: BlockNumber,
}

/// One block's assignments, drawn tickets and opened disputes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockNews {
    pub assignments: Vec<Assignment>,
    /// The ids of the tickets whose providers this block drew, one range per purchase.
    pub drawn_tickets: Vec<std::ops::Range<u64>>,
    pub disputes: Vec<DisputeNotice>,
    /// Tickets this block fell back to requests.
    pub fell_back: Vec<FellBackTicket>,
}

/// A ticket that fell back to commit–reveal as `request`, under the `Use` hashing to `use_hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FellBackTicket {
    pub ticket: u64,
    pub request: u64,
    pub use_hash: [u8; 32],
}

/// A pallet's refusal of a call, decoded into the runtime's own error enum (`Verifier(..)`,
/// `Escrow(..)`, ...), so callers match variants, never names.
pub type Rejection = agora::Error;
pub use agora::runtime_types::pallet_agora_escrow::pallet::Error as EscrowError;
pub use agora::runtime_types::pallet_agora_models::pallet::Error as ModelsError;
pub use agora::runtime_types::pallet_agora_providers::pallet::Error as ProvidersError;
pub use agora::runtime_types::pallet_agora_verifier::pallet::Error as VerifierError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pallet refused the call; `name` is `Pallet::Error`, as `Escrow::ZeroTokens`.
    #[error("the chain rejected the call: {name}")]
    Rejected { rejection: Box<Rejection>, name: String },
    /// The runtime refused the call outside any pallet's errors (bad origin, funds, ...).
    #[error("the chain rejected the call: {0}")]
    Dispatch(String),
    /// The node answered with something this client does not understand (an old or foreign node?).
    #[error("unexpected answer from the chain node: {0}")]
    Unexpected(String),
    /// The node dropped the transaction before any block included it; sending it again is safe.
    #[error("the transaction was not included in a block ({0}); send it again")]
    NotIncluded(String),
    #[error(transparent)]
    Subxt(#[from] subxt::Error),
}

impl Error {
    /// The pallet error that refused the call.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Rejected { rejection, .. } => Some(rejection),
            _ => None,
        }
    }

    /// Whether a pallet refused the call with exactly `expected`.
    pub fn is_rejected(&self, expected: Rejection) -> bool {
        self.rejection() == Some(&expected)
    }

    /// `Pallet::Error` of a refused call, for messages and logs.
    pub fn rejection_name(&self) -> Option<&str> {
        match self {
            Error::Rejected { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether the chain itself refused the call (final), rather than the connection failing
    /// (worth a retry, after reading the chain again).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Rejected { .. } | Error::Dispatch(_))
    }
}

fn subxt_err(e: impl Into<subxt::Error>) -> Error {
    Error::Subxt(e.into())
}

/// A connection to an Agora node (chopsticks in development, omni-node in deployment).
#[derive(Clone)]
pub struct ChainClient {
    api: OnlineClient<AgoraConfig>,
    rpc: subxt::rpcs::RpcClient,
    nonces: std::sync::Arc<submit::Nonces>,
}

impl ChainClient {
    /// Connects over WebSocket; plain `ws://` is allowed because the dev chain is on loopback.
    ///
    /// The runtime version is read once here and pinned for every block: otherwise subxt asks
    /// the runtime for it (`Core_version`, a WASM call) before every query, which alone keeps
    /// chopsticks busy when a few nodes poll it. A client must reconnect after a runtime upgrade.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        use subxt::config::polkadot::{PolkadotConfigBuilder, SpecVersionForRange};
        let rpc = subxt::rpcs::RpcClient::from_insecure_url(url).await.map_err(subxt_err)?;
        let version: serde_json::Value =
            rpc.request("state_getRuntimeVersion", subxt::rpcs::rpc_params![]).await.map_err(subxt_err)?;
        let field = |name: &str| {
            version[name].as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| Error::Unexpected(format!("no {name} in the runtime version")))
        };
        let pinned = SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: field("specVersion")?,
            transaction_version: field("transactionVersion")?,
        };
        let config = PolkadotConfigBuilder::new().use_historic_types(false).set_spec_version_for_block_ranges([pinned]).build();
        let api = OnlineClient::<AgoraConfig>::from_rpc_client_with_config(config, rpc.clone()).await.map_err(subxt_err)?;
        Ok(Self { api, rpc, nonces: Default::default() })
    }

    pub fn api(&self) -> &OnlineClient<AgoraConfig> {
        &self.api
    }

    /// Asks a chopsticks dev chain to build `count` blocks now (otherwise it builds one only for
    /// waiting transactions). Used to reach deadlines and to run `on_initialize` work such as the
    /// draw. Asked for a few at a time: hundreds in one call outlast the RPC request timeout.
    pub async fn new_blocks(&self, count: u32) -> Result<(), Error> {
        const PER_CALL: u32 = 20;
        let mut left = count;
        while left > 0 {
            let now = left.min(PER_CALL);
            let params = subxt::rpcs::rpc_params![serde_json::json!({ "count": now })];
            let _: serde_json::Value = self.rpc.request("dev_newBlock", params).await.map_err(subxt_err)?;
            left -= now;
        }
        Ok(())
    }

    pub fn genesis_hash(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    /// The best block's number, from its header alone (no runtime call).
    pub async fn best_block_number(&self) -> Result<BlockNumber, Error> {
        let header: serde_json::Value =
            self.rpc.request("chain_getHeader", subxt::rpcs::rpc_params![]).await.map_err(subxt_err)?;
        header["number"]
            .as_str()
            .and_then(|n| BlockNumber::from_str_radix(n.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| Error::Unexpected(format!("a header without a block number: {header}")))
    }

    pub async fn free_balance(&self, who: &AccountId) -> Result<Balance, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        let entry = at.storage().entry(agora::storage().system().account()).map_err(subxt_err)?;
        let account = entry.fetch((who.clone(),)).await.map_err(subxt_err)?.decode().map_err(subxt_err)?;
        Ok(account.data.free)
    }

    /// The value stored at `address` under `keys` in the best block, if there is one.
    async fn lookup<Addr: subxt::storage::Address>(&self, address: Addr, keys: Addr::KeyParts) -> Result<Option<Addr::Value>, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        match at.storage().try_fetch(address, keys).await.map_err(subxt_err)? {
            Some(value) => Ok(Some(value.decode().map_err(subxt_err)?)),
            None => Ok(None),
        }
    }

    /// The commitment `provider` made for `request`, if any.
    pub async fn commitment(&self, request: u64, provider: &AccountId) -> Result<Option<[u8; 32]>, Error> {
        self.lookup(agora::storage().verifier().commitments(), (request, provider.clone())).await
    }

    /// Whether `provider` of the fell-back `request` was proven to have served another `Use`
    /// of its ticket: it never commits, and the reveals need not wait for it.
    pub async fn equivocated(&self, request: u64, provider: &AccountId) -> Result<bool, Error> {
        Ok(self.lookup(agora::storage().verifier().equivocated(), (request, provider.clone())).await?.is_some())
    }

    /// The outcome `provider` revealed for `request`, if any.
    pub async fn reveal(&self, request: u64, provider: &AccountId) -> Result<Option<types::Outcome>, Error> {
        self.lookup(agora::storage().verifier().reveals(), (request, provider.clone())).await
    }

    /// Whether `who` has opted in to verify disputes.
    pub async fn is_verifier(&self, who: &AccountId) -> Result<bool, Error> {
        Ok(self.lookup(agora::storage().verifier().verifiers(), (who.clone(),)).await?.is_some())
    }

    /// The open dispute of `request`, if any.
    pub async fn dispute(&self, request: u64) -> Result<Option<Dispute>, Error> {
        self.lookup(agora::storage().verifier().disputes(), (request,)).await
    }

    /// The ticket `request` fell back from and `H(Use)` it runs, if a ticket fell back to it:
    /// its outputs were generated with the ticket's sampling seed.
    pub async fn ticket_origin(&self, request: u64) -> Result<Option<(u64, [u8; 32])>, Error> {
        let origin = self.lookup(agora::storage().escrow().fell_back(), (request,)).await?;
        Ok(origin.map(|o| (o.ticket, o.use_hash)))
    }

    /// How `request`'s dispute ended, once it has.
    pub async fn resolution(&self, request: u64) -> Result<Option<Resolution>, Error> {
        self.lookup(agora::storage().verifier().resolutions(), (request,)).await
    }

    /// Whether `verifier` has cast its verdict on `request`'s open dispute.
    pub async fn has_voted(&self, request: u64, verifier: &AccountId) -> Result<bool, Error> {
        Ok(self.lookup(agora::storage().verifier().verdicts(), (request, verifier.clone())).await?.is_some())
    }

    /// The requests assigned in block `number`, with their providers and deadlines.
    pub async fn assignments_at(&self, number: BlockNumber) -> Result<Vec<Assignment>, Error> {
        Ok(self.block_news(number).await?.assignments)
    }

    /// What block `number` announced that a provider or verifier acts on, from one read of its
    /// events.
    pub async fn block_news(&self, number: BlockNumber) -> Result<BlockNews, Error> {
        let at = self.api.at_block(u64::from(number)).await.map_err(subxt_err)?;
        let events = at.events().fetch().await.map_err(subxt_err)?;
        let assignments = events
            .find::<agora::escrow::events::RequestAssigned>()
            .map(|e| {
                let e = e.map_err(subxt_err)?;
                Ok(Assignment {
                    request: e.request,
                    providers: e.providers.0,
                    commit_deadline: e.commit_deadline,
                    reveal_deadline: e.reveal_deadline,
                })
            })
            .collect::<Result<_, Error>>()?;
        let disputes = events
            .find::<agora::verifier::events::DisputeOpened>()
            .map(|e| {
                let e = e.map_err(subxt_err)?;
                Ok(DisputeNotice { request: e.request, verifiers: e.verifiers.0, verdict_deadline: e.verdict_deadline })
            })
            .collect::<Result<_, Error>>()?;
        let drawn_tickets = events
            .find::<agora::escrow::events::TicketsDrawn>()
            .map(|e| e.map(|e| e.first..e.first + u64::from(e.count)).map_err(subxt_err))
            .collect::<Result<_, Error>>()?;
        let fell_back = events
            .find::<agora::escrow::events::TicketFellBack>()
            .map(|e| e.map(|e| FellBackTicket { ticket: e.ticket, request: e.request, use_hash: e.use_hash }).map_err(subxt_err))
            .collect::<Result<_, Error>>()?;
        Ok(BlockNews { assignments, drawn_tickets, disputes, fell_back })
    }

    /// The providers listed as offering `release`, under any runtime profile, in any state.
    pub async fn servers_of(&self, release: [u8; 32]) -> Result<Vec<AccountId>, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        let entry = at.storage().entry(agora::storage().providers().listings()).map_err(subxt_err)?;
        let mut lists = entry.iter((release,)).await.map_err(subxt_err)?;
        let mut servers = Vec::new();
        while let Some(kv) = lists.next().await {
            let listings = kv.map_err(subxt_err)?.value().decode().map_err(subxt_err)?;
            servers.extend(listings.0.into_iter().map(|l| l.who));
        }
        Ok(servers)
    }

    /// Every registered provider with its record.
    pub async fn providers(&self) -> Result<Vec<(AccountId, ProviderRecord)>, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        let entry = at.storage().entry(agora::storage().providers().providers()).map_err(subxt_err)?;
        let mut entries = entry.iter(()).await.map_err(subxt_err)?;
        let mut out = Vec::new();
        while let Some(kv) = entries.next().await {
            let kv = kv.map_err(subxt_err)?;
            // `Blake2_128Concat` keys end with the SCALE-encoded account itself.
            let key = kv.key_bytes();
            let account: [u8; 32] = key[key.len().saturating_sub(32)..].try_into().map_err(|_| Error::Unexpected("a provider key too short".into()))?;
            out.push((AccountId::from(account), kv.value().decode().map_err(subxt_err)?));
        }
        Ok(out)
    }

    /// Creates a request, escrowing its maximum cost; returns its id. Providers are drawn at the
    /// start of the next block.
    pub async fn create_request(&self, params: types::RequestParams<Balance, BlockNumber>, client: &Keypair) -> Result<u64, Error> {
        let events = self.submit(&agora::tx().escrow().create_request(params), client).await?;
        events
            .find_first::<agora::escrow::events::RequestCreated>()
            .and_then(Result::ok)
            .map(|e| e.request)
            .ok_or_else(|| Error::Unexpected("the call succeeded without a RequestCreated event".into()))
    }

    /// Proves that `provider` acknowledged `request`'s `Use` for `client_peer` (its sr25519
    /// `signature` over `Use::ack_payload`): if it then reveals nothing, it is a no-show.
    pub async fn prove_ack(&self, request: u64, provider: &AccountId, client_peer: Vec<u8>, signature: [u8; 64], caller: &Keypair) -> Result<Events, Error> {
        let signature = agora::runtime_types::sp_runtime::MultiSignature::Sr25519(signature);
        self.submit(&agora::tx().verifier().prove_ack(request, provider.clone(), bounded(client_peer), signature), caller).await
    }

    /// Settles a request whose reveal window has closed (anyone may).
    pub async fn settle(&self, request: u64, caller: &Keypair) -> Result<Events, Error> {
        self.submit(&agora::tx().verifier().settle(request), caller).await
    }

    async fn call_api<P: subxt::runtime_apis::Payload>(&self, payload: P) -> Result<P::ReturnType, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        at.runtime_apis().call(payload).await.map_err(subxt_err)
    }

    pub async fn release(&self, id: [u8; 32]) -> Result<Option<ModelRelease>, Error> {
        self.call_api(agora::runtime_apis().agora_api().release(id)).await
    }

    pub async fn release_history(&self, family: &str) -> Result<Vec<ModelRelease>, Error> {
        self.call_api(agora::runtime_apis().agora_api().release_history(family.as_bytes().to_vec())).await
    }

    pub async fn provider(&self, who: &AccountId) -> Result<Option<ProviderRecord>, Error> {
        self.call_api(agora::runtime_apis().agora_api().provider(who.clone())).await
    }

    pub async fn request(&self, id: u64) -> Result<Option<Request>, Error> {
        self.call_api(agora::runtime_apis().agora_api().request(id)).await
    }

    pub async fn receipt(&self, id: u64) -> Result<Option<Receipt>, Error> {
        self.call_api(agora::runtime_apis().agora_api().receipt(id)).await
    }

    /// Blocks a closed request's record and receipt stay on-chain before they are pruned.
    pub async fn record_retention(&self) -> Result<BlockNumber, Error> {
        let at = self.api().at_current_block().await.map_err(|e| Error::Subxt(e.into()))?;
        at.constants().entry(agora::constants().escrow().record_retention()).map_err(|e| Error::Subxt(e.into()))
    }

    pub async fn quote(
        &self,
        release: [u8; 32],
        runtime_profile: [u8; 32],
        prompt_tokens: u32,
        max_output_tokens: u32,
    ) -> Result<Vec<Quote>, Error> {
        self.call_api(agora::runtime_apis().agora_api().quote(release, runtime_profile, prompt_tokens, max_output_tokens))
            .await
    }
}
