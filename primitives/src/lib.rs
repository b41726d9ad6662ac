//! Types that cross the chain and the wire.
//!
//! Every type here is SCALE-encoded, carries `TypeInfo` for metadata and has a bounded
//! encoded size (`MaxEncodedLen`), so the pallets can store them and off-chain code can decode
//! them from chain state without a second definition.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod pricing;
pub mod receipts;
pub mod runtime_api;
pub mod tickets;
pub mod wire;

pub use tickets::{Settlement, SignedOutcome, Ticket, TicketBundle, TicketId, TicketReceipt, TicketSpec, TicketStatus, TicketUse};

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::sp_core::ConstU32;
use core::fmt::Debug;
use polkadot_sdk::sp_runtime::BoundedVec;
use scale_info::TypeInfo;

/// A sha256 digest: GGUF files, prompts, outputs, runtime profiles.
pub type Hash256 = [u8; 32];
/// A model release is identified by the sha256 of its GGUF bytes.
pub type ReleaseId = Hash256;
/// Requests are numbered in creation order.
pub type RequestId = u64;

pub type FamilyName = BoundedVec<u8, ConstU32<64>>;
pub type VersionName = BoundedVec<u8, ConstU32<32>>;
pub type ShortText = BoundedVec<u8, ConstU32<32>>;
/// libp2p `PeerId` bytes (an identity multihash of an ed25519 key is 38 bytes).
pub type PeerIdBytes = BoundedVec<u8, ConstU32<64>>;
pub type Multiaddr = BoundedVec<u8, ConstU32<128>>;
pub type Multiaddrs = BoundedVec<Multiaddr, ConstU32<8>>;
/// Most releases one provider may advertise.
pub type MaxOffers = ConstU32<16>;
/// Most providers one request may be sent to.
pub const MAX_REDUNDANCY: u32 = 8;
pub type MaxRedundancy = ConstU32<MAX_REDUNDANCY>;

/// Lifecycle of a model release. Only ever moves forward: Active → Deprecated → Revoked.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, PartialOrd, Ord, Debug, TypeInfo, MaxEncodedLen)]
pub enum ReleaseStatus {
    /// Served and requestable.
    Active,
    /// Still served, but the publisher points users elsewhere.
    Deprecated,
    /// Must not be served or requested any more (a broken or withdrawn file).
    Revoked,
}

/// What a publisher states about a GGUF file.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ReleaseInfo {
    pub family: FamilyName,
    pub version: VersionName,
    /// sha256 of the GGUF bytes; also the release id.
    pub sha256: Hash256,
    pub size_bytes: u64,
    pub architecture: ShortText,
    pub quantization: ShortText,
    pub license: ShortText,
    /// The release this one derives from (fine-tune, LoRA adapter, requantisation).
    pub parent: Option<ReleaseId>,
    /// Hash of an off-chain metadata document (model card, tokenizer notes).
    pub metadata_hash: Hash256,
}

/// A release as the registry keeps it.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ModelRelease<AccountId, BlockNumber> {
    pub info: ReleaseInfo,
    pub publisher: AccountId,
    pub status: ReleaseStatus,
    pub published_at: BlockNumber,
    /// When the status last changed (equals `published_at` until then).
    pub status_changed_at: BlockNumber,
}

/// One release a provider serves, under one runtime profile (see docs/DESIGN.md section 4).
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Offer {
    pub release: ReleaseId,
    /// Hash of the determinism contract the provider runs this release under.
    pub runtime_profile: Hash256,
    /// Measured generation speed, in thousandths of a token per second.
    pub milli_tokens_per_sec: u32,
}

/// What a provider advertises: where to reach it, what it serves and at what price.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct CapabilityManifest<Balance> {
    pub peer_id: PeerIdBytes,
    pub multiaddrs: Multiaddrs,
    pub offers: BoundedVec<Offer, MaxOffers>,
    pub price_per_1k_input: Balance,
    pub price_per_1k_output: Balance,
    pub max_context: u32,
    pub max_concurrent_jobs: u32,
    pub hardware_class: ShortText,
    /// Public key for the zero-knowledge settlement path (a point on ed-on-bn254, compressed).
    pub settlement_key: Hash256,
}

impl<Balance> CapabilityManifest<Balance> {
    pub fn offer_for(&self, release: &ReleaseId) -> Option<&Offer> {
        self.offers.iter().find(|o| &o.release == release)
    }
}

/// Whether a provider takes new work.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum ProviderStatus<BlockNumber> {
    Online,
    Offline,
    /// Leaving: no new work; the stake can be withdrawn from this block on, once no job is open.
    Unbonding { unlocks_at: BlockNumber },
}

/// Public reputation: a score in parts per million and the counts it was derived from.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Reputation {
    pub score_ppm: u32,
    pub agreed: u32,
    pub wrong: u32,
    pub no_shows: u32,
}

/// What a settlement says of one provider's part in one request.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum JobOutcome {
    /// Revealed the majority result.
    Agreed,
    /// Revealed a result the majority did not share.
    Wrong,
    /// Took the job (committed, or acknowledged the client's `Use`) and did not reveal in time.
    NoShow,
}

impl Reputation {
    pub const MAX_PPM: u32 = 1_000_000;
    pub const INITIAL_PPM: u32 = 500_000;

    pub const fn new() -> Self {
        Self { score_ppm: Self::INITIAL_PPM, agreed: 0, wrong: 0, no_shows: 0 }
    }

    /// The public reputation formula.
    ///
    /// - agreed: the score closes 5% of its distance to the maximum;
    /// - wrong: the score loses 25% of itself, rounded up;
    /// - no-show: the score loses 10% of itself, rounded up;
    /// - the score stays within `[1, 1_000_000]`; a new provider starts at 500,000.
    ///
    /// Gains are slow and losses fast, so a provider cannot bank reputation and then cheat
    /// cheaply; the score never reaches 0, so a provider can always work its way back.
    pub fn record(&mut self, outcome: JobOutcome) {
        let s = self.score_ppm.min(Self::MAX_PPM);
        match outcome {
            JobOutcome::Agreed => {
                self.score_ppm = s.saturating_add((Self::MAX_PPM - s) / 20);
                self.agreed = self.agreed.saturating_add(1);
            },
            JobOutcome::Wrong => {
                self.score_ppm = s.saturating_sub(s.div_ceil(4)).max(1);
                self.wrong = self.wrong.saturating_add(1);
            },
            JobOutcome::NoShow => {
                self.score_ppm = s.saturating_sub(s.div_ceil(10)).max(1);
                self.no_shows = self.no_shows.saturating_add(1);
            },
        }
    }
}

impl Default for Reputation {
    fn default() -> Self {
        Self::new()
    }
}

/// A provider as the registry keeps it.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ProviderRecord<Balance, BlockNumber> {
    /// Funds held under the provider-stake hold reason.
    pub stake: Balance,
    pub manifest: CapabilityManifest<Balance>,
    pub status: ProviderStatus<BlockNumber>,
    pub reputation: Reputation,
    /// Requests assigned to this provider and not yet settled or refunded.
    pub open_jobs: u32,
    pub registered_at: BlockNumber,
}

/// Most verifiers one dispute may draw.
pub const MAX_VERIFIERS: u32 = 8;
pub type MaxVerifiers = ConstU32<MAX_VERIFIERS>;

/// Why a request's results go to re-scoring verifiers (docs/DESIGN.md section 4, tier 1).
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum DisputeKind<AccountId, Balance> {
    /// The providers' reveals had no strict majority; the escrow waits for the verdicts.
    SplitVote,
    /// The client challenged a settled result, holding `bond` on its claim.
    Challenge { challenger: AccountId, bond: Balance },
    /// A single-provider request drawn for a spot check; the escrow waits for the verdict.
    Audit,
}

/// A request under judgement by drawn verifiers.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Dispute<AccountId, Balance, BlockNumber> {
    pub kind: DisputeKind<AccountId, Balance>,
    /// The distinct results under judgement.
    pub outcomes: BoundedVec<Outcome, MaxRedundancy>,
    pub verifiers: BoundedVec<AccountId, MaxVerifiers>,
    pub opened_at: BlockNumber,
    /// Verdicts are taken until this block; then anyone may resolve with those cast.
    pub verdict_deadline: BlockNumber,
}

/// A verifier's judgement of one disputed result: does re-scoring accept it?
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct OutcomeVerdict {
    pub outcome: Outcome,
    pub accepted: bool,
}

/// How a dispute ended; kept on-chain for clients and auditors.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Resolution<AccountId, Balance, BlockNumber> {
    pub kind: DisputeKind<AccountId, Balance>,
    /// Each disputed result and whether the verifiers' majority accepted it.
    pub decided: BoundedVec<OutcomeVerdict, MaxRedundancy>,
    /// Verifiers that cast a verdict, and the fee each was paid.
    pub verifiers_paid: BoundedVec<(AccountId, Balance), MaxVerifiers>,
    /// Drawn verifiers that cast none (slashed as no-shows).
    pub silent: BoundedVec<AccountId, MaxVerifiers>,
    pub resolved_at: BlockNumber,
}

/// Sampling parameters of a request. The seed is not here: it is derived from the request id.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen, Default)]
pub struct SamplingParams {
    /// Temperature in thousandths; 0 means greedy.
    pub temperature_milli: u32,
    /// 0 means no top-k cut.
    pub top_k: u32,
    /// Nucleus mass in thousandths; 0 or 1000 means no cut.
    pub top_p_milli: u32,
}

/// What a client asks for.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct RequestParams<Balance, BlockNumber> {
    pub release: ReleaseId,
    /// The runtime profile all assigned providers must share, so exact-hash voting works.
    pub runtime_profile: Hash256,
    /// sha256 of the SCALE-encoded prompt token ids.
    pub prompt_hash: Hash256,
    pub prompt_tokens: u32,
    pub max_output_tokens: u32,
    /// The most the client pays any provider per 1k tokens, input or output.
    pub max_price_per_1k: Balance,
    /// How many independent providers run the request.
    pub redundancy: u32,
    pub sampling: SamplingParams,
    /// Blocks from assignment until commitments are due.
    pub commit_blocks: BlockNumber,
}

/// Where a request is in its life.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum RequestStatus {
    /// Escrow held; providers are drawn once the chain has randomness nobody knew when the
    /// request was included (two blocks later on the dev chain).
    Pending,
    /// Providers drawn; commit and reveal under way.
    Assigned,
    /// Paid out by majority; the receipt is stored.
    Settled,
    /// Under judgement by re-scoring verifiers (a split vote or a spot check): escrow stays held.
    Disputed,
    /// Escrow returned: no provider answered, the settle window passed, or no providers could be drawn.
    Refunded,
    /// Withdrawn by the client before assignment.
    Cancelled,
    /// A single provider's result is tallied and waits for its spot-check draw, taken from
    /// randomness nobody knew when the request was settled: escrow stays held.
    AwaitingAudit,
}

impl RequestStatus {
    /// Open requests are the ones that still hold escrow.
    pub fn holds_escrow(&self) -> bool {
        matches!(self, Self::Pending | Self::Assigned | Self::Disputed | Self::AwaitingAudit)
    }
}

/// A request as the escrow pallet keeps it.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Request<AccountId, Balance, BlockNumber> {
    pub client: AccountId,
    pub params: RequestParams<Balance, BlockNumber>,
    /// Funds still held for this request.
    pub escrow: Balance,
    pub status: RequestStatus,
    pub providers: BoundedVec<AccountId, MaxRedundancy>,
    /// Each assigned provider's (input, output) price per 1k tokens, fixed at assignment.
    pub prices: BoundedVec<(Balance, Balance), MaxRedundancy>,
    pub created_at: BlockNumber,
    /// Set at assignment.
    pub commit_deadline: BlockNumber,
    pub reveal_deadline: BlockNumber,
}

/// A provider's reveal: the result it claims.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen, PartialOrd, Ord)]
pub struct Outcome {
    /// sha256 of the SCALE-encoded output token ids.
    pub output_hash: Hash256,
    pub token_count: u32,
}

/// What settlement did with a request; kept on-chain for clients and auditors.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Receipt<AccountId, Balance, BlockNumber> {
    pub request: RequestId,
    pub client: AccountId,
    pub release: ReleaseId,
    /// The majority result, if there was one.
    pub winning: Option<Outcome>,
    /// Each winner and what it was paid.
    pub paid: BoundedVec<(AccountId, Balance), MaxRedundancy>,
    /// Each loser or no-show, what it lost and why.
    pub slashed: BoundedVec<(AccountId, Balance, JobOutcome), MaxRedundancy>,
    /// Each provider that never acknowledged a `Use` nor committed (the client may never have
    /// sent one: nobody can tell), and the reservation fee it was paid instead of a slash.
    pub reserved: BoundedVec<(AccountId, Balance), MaxRedundancy>,
    pub refunded: Balance,
    pub settled_at: BlockNumber,
}

/// The sampling seed every provider of a request uses: derived from the request id, so the
/// client cannot pick a seed that steers sampled output.
pub fn sampling_seed(request: RequestId) -> u64 {
    seed_of(b"agora/seed/v1", request)
}

/// The sampler's seed of a ticket: derived like a request's, under its own domain, so a ticket
/// and a request with the same number never share a seed.
pub fn ticket_sampling_seed(ticket: TicketId) -> u64 {
    seed_of(b"agora/ticket-seed/v1", ticket)
}

/// The domain is a byte array, encoded without a length prefix (as the request seeds always were).
fn seed_of<const N: usize>(domain: &[u8; N], id: u64) -> u64 {
    let digest = polkadot_sdk::sp_crypto_hashing::blake2_256(&codec::Encode::encode(&(domain, id)));
    u64::from_le_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
}

/// One eligible provider's price for a request, as the quote runtime API returns it.
#[derive(Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Quote<AccountId, Balance> {
    pub provider: AccountId,
    /// What this provider would be paid if it produced `max_output_tokens`.
    pub max_cost: Balance,
    pub price_per_1k_input: Balance,
    pub price_per_1k_output: Balance,
    pub stake: Balance,
    pub reputation: Reputation,
    pub offer: Offer,
}
