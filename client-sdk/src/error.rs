//! What can go wrong for a client, named so that callers can react to each case.

use agora_primitives::Hash256;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no model release matches `{0}` (see `agora models history <family>`)")]
    UnknownModel(String),
    #[error("release {} is revoked and may not be requested", hex::encode(.0))]
    Revoked(Hash256),
    #[error("`{0}` is not a model reference: use `family`, `family:version` or a 64-hex sha256")]
    BadModelRef(String),
    #[error(
        "no local copy of release {} ({family}, {size} bytes) to tokenise the prompt with; searched {searched:?} (pass --gguf PATH)",
        hex::encode(.release)
    )]
    ModelFileMissing { release: Hash256, family: String, size: u64, searched: Vec<PathBuf> },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("max_tokens must be at least 1")]
    ZeroMaxTokens,
    #[error("{parameter} is {value}, but it must be between 0 and {max}")]
    SamplingOutOfRange { parameter: &'static str, value: f64, max: f64 },
    #[error("k must be between 1 and {max}, not {k}")]
    BadRedundancy { k: u32, max: u32 },
    #[error("tickets are verified by a strict majority of their providers, so they need k of at least 2 (not {0}): raise k, or run a request of its own")]
    TicketsNeedMajority(u32),
    #[error("no provider of ticket {0} answered; it is left to expire (its providers get their reservation fees)")]
    TicketNoAnswer(u64),
    #[error("the prompt has {prompt_tokens} tokens and asks for {max_tokens} more, but the largest context offered is {max_context}")]
    PromptTooLong { prompt_tokens: u32, max_tokens: u32, max_context: u32 },
    #[error("k = {k} providers were asked for, but only {eligible} are eligible for this release now")]
    NotEnoughProviders { k: u32, eligible: usize },
    #[error("{serving} providers serve this release, but fewer than k = {k} had a free job slot for {seconds} s; try again later or lower k")]
    NoCapacity { k: u32, serving: usize, seconds: u64 },
    #[error("no {k} providers serve at {max_price_per_1k} per 1k tokens or less; the {k} cheapest need {needed} per 1k")]
    PriceTooLow { k: u32, max_price_per_1k: u128, needed: u128 },
    #[error("the request would escrow {needed} but the account has {free} free")]
    InsufficientFunds { needed: u128, free: u128 },
    #[error("request {request} was {status} before any provider was drawn")]
    NotAssigned { request: u64, status: String },
    #[error("no receipt for request {0}: it does not exist, or it closed longer ago than the chain keeps records (`RecordRetention`) and was pruned; its Settled event stays in the chain's history")]
    UnknownRequest(u64),
    #[error("request {request} has no receipt yet: it is {status}")]
    NotSettled { request: u64, status: String },
    #[error("no assigned provider answered request {0}; it was settled so that the escrow came back (those that had signed for the prompt were slashed as no-shows)")]
    NoAnswer(u64),
    #[error("request {request} did not settle within {seconds} s (status: {status})")]
    SettlementTimeout { request: u64, seconds: u64, status: String },
    #[error("request {0} has no dispute")]
    NoDispute(u64),
    #[error("request {request} cannot be challenged: {reason}")]
    NotChallengeable { request: u64, reason: String },
    #[error("release {} is published already", hex::encode(.0))]
    AlreadyPublished(Hash256),
    #[error("release {} was published, but the chain does not show it (a reorganised block?)", hex::encode(.0))]
    Unpublished(Hash256),
    #[error("invalid release: {0}")]
    BadRelease(String),
    #[error("no provider is registered as {0}")]
    UnknownProvider(String),
    #[error("prompt token {position} has id {token}, outside the release's vocabulary of {n_vocab}")]
    TokenOutOfVocabulary { position: usize, token: u32, n_vocab: u32 },
    #[error("the prompt has {prompt_tokens} tokens and asks for {max_tokens} more, but the pool's tickets take at most {max_prompt_tokens} and {max_output_tokens}: shorten the prompt or max_tokens, or make a pool with longer tickets (--ticket-prompt-tokens)")]
    ExceedsTicket { prompt_tokens: u32, max_tokens: u32, max_prompt_tokens: u32, max_output_tokens: u32 },
    #[error("no ticket to serve the prompt: {0}")]
    TicketPurchase(String),
    #[error("ticket {ticket} is not settled: {reason}")]
    TicketNotSettled { ticket: u64, reason: String },
    #[error("no strict majority of ticket {ticket}'s providers signed one result, so it fell back to request {request}, whose split goes to verifiers (see it through with TicketPool::see_dispute_through, or `agora receipt {request}` once decided)")]
    TicketFellBack { ticket: u64, request: u64 },
    #[error("ticket {0} was settled from a majority of its signed outcomes: it has no dispute")]
    TicketHasNoDispute(u64),
    #[error("the price of k providers overflows: lower k or --max-price")]
    PriceOverflow,
    #[error(transparent)]
    Tokenizer(#[from] agora_tokenizer::TokenizerError),
    #[cfg(feature = "local-first")]
    #[error(transparent)]
    LocalModel(#[from] agora_engine::EngineError),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Chain(#[from] agora_chain_client::Error),
    #[error("libp2p: {0}")]
    Network(#[from] agora_net::NetError),
    #[error("not a secret URI (`//Name`, a mnemonic or 0x + seed): {0}")]
    BadAccountUri(String),
    #[error(transparent)]
    Runs(#[from] crate::runs::RunStoreError),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
