//! One paid, verified request: checks, escrow, the draw, k streams over libp2p, the comparison
//! of the k answers, and the receipt.

use crate::error::{ClientError, Result};
use crate::models::{resolve, ModelRef};
use crate::Client;
use agora_chain_client::{types, AccountId, EscrowError, ModelRelease, Quote, Receipt, Rejection};
use crate::stream::{answer_groups, largest_group, Dispatch, Streamed};
use agora_primitives::wire::{token_hash, Authorised, InferOpen, InferRequest, StopReason, Use};
use agora_primitives::{pricing, Hash256, MAX_REDUNDANCY};
use agora_tokenizer::{ChatTurn, Tokenizer};
use crate::location_of as location;
use agora_net::Location;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to ask.
#[derive(Clone, Debug)]
pub enum Prompt {
    /// Completion of raw text.
    Text(String),
    /// A conversation, rendered with the release's own chat template.
    Chat(Vec<ChatTurn>),
    /// Token ids, already tokenised with the release's tokenizer.
    Tokens(Vec<u32>),
}

/// A request as a caller states it.
#[derive(Clone, Debug)]
pub struct Job {
    pub model: ModelRef,
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// Independent providers that run it (the assurance level).
    pub k: u32,
    /// The most paid to any provider per 1k tokens; `None`: whatever the k cheapest ask.
    pub max_price_per_1k: Option<u128>,
    pub sampling: types::SamplingParams,
    /// Blocks the providers have to commit.
    pub commit_blocks: u32,
}

impl Job {
    pub fn new(model: ModelRef, prompt: Prompt) -> Self {
        Self {
            model,
            prompt,
            max_tokens: 64,
            k: 3,
            max_price_per_1k: None,
            sampling: types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 },
            commit_blocks: 20,
        }
    }
}

impl Prompt {
    /// The prompt as token ids of `tokenizer`, refused if empty or outside its vocabulary.
    pub(crate) fn token_ids(&self, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
        let ids = match self {
            Prompt::Text(text) if text.trim().is_empty() => return Err(ClientError::EmptyPrompt),
            Prompt::Text(text) => tokenizer.tokenize(text, true),
            Prompt::Chat(turns) if turns.iter().all(|t| t.content.trim().is_empty()) => return Err(ClientError::EmptyPrompt),
            Prompt::Chat(turns) => tokenizer.chat(turns)?,
            Prompt::Tokens(tokens) => tokens.clone(),
        };
        if ids.is_empty() {
            return Err(ClientError::EmptyPrompt);
        }
        if let Some((position, token)) = tokenizer.out_of_vocabulary(&ids) {
            return Err(ClientError::TokenOutOfVocabulary { position, token, n_vocab: tokenizer.n_vocab() });
        }
        Ok(ids)
    }
}

impl Job {
    /// The most paid per 1k tokens: the caller's limit, or what the k-th cheapest of `quotes`
    /// asks; refused if fewer than k quote or the caller's limit is below the k-th ask.
    pub(crate) fn price_limit(&self, quotes: &[Quote]) -> Result<u128> {
        let mut asks: Vec<u128> = quotes.iter().map(|q| q.price_per_1k_input.max(q.price_per_1k_output)).collect();
        asks.sort_unstable();
        let Some(&needed) = (self.k as usize).checked_sub(1).and_then(|i| asks.get(i)) else {
            return Err(ClientError::NotEnoughProviders { k: self.k, eligible: asks.len() });
        };
        let max_price_per_1k = self.max_price_per_1k.unwrap_or(needed);
        if max_price_per_1k < needed {
            return Err(ClientError::PriceTooLow { k: self.k, max_price_per_1k, needed });
        }
        Ok(max_price_per_1k)
    }
}

/// A job checked against the chain, ready to be paid for: nothing has moved yet.
#[derive(Clone)]
pub struct Prepared {
    pub release: ModelRelease,
    pub prompt: Vec<u32>,
    pub params: types::RequestParams<u128, u32>,
    /// What the escrow will hold: k times the most one provider can cost.
    pub escrow: u128,
    /// The providers eligible now, cheapest first.
    pub quotes: Vec<Quote>,
    pub(crate) tokenizer: Arc<Tokenizer>,
    /// Where each provider of the release listens, read with its record (saves a chain call
    /// per provider on the way to the first token).
    pub(crate) locations: HashMap<[u8; 32], Location>,
}

/// What the providers of a release offer now.
pub(crate) struct Offered {
    /// The runtime profile most online providers run, and how many run it.
    pub profile: Hash256,
    pub serving: usize,
    /// The largest context any of them offers.
    pub max_context: u32,
    /// Where each provider of the release listens, read with its record (saves a chain call
    /// per provider on the way to the first token).
    pub locations: HashMap<[u8; 32], Location>,
}

/// What happens, in order, as a job runs.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// The request is escrowed and drawn. One the chain refunded at its draw because too few
    /// providers were free is made again, and only the one drawn is reported.
    Escrowed { request: u64, escrow: u128 },
    Assigned { request: u64, providers: Vec<AccountId> },
    /// A pooled ticket (drawn ahead) takes the prompt, for these providers.
    Ticket { ticket: u64, providers: Vec<AccountId> },
    /// A provider signed for this client's `Use` (checked): it has the prompt, and revealing
    /// nothing now makes it a no-show.
    Acknowledged { provider: AccountId },
    /// A token of the answer, as the first provider to answer streams it.
    Token { index: u32, token: u32, piece: Vec<u8> },
    /// One provider's stream ended (or never started).
    ProviderFinished(ProviderReport),
    Settled(Receipt),
    /// The results went to verifiers (a split vote, or a spot check of a k = 1 request); this
    /// client brings them its data and waits for their verdict.
    Disputed { request: u64, cause: crate::DisputeCause },
}

/// How one assigned provider answered, as this client saw it.
#[derive(Clone, Debug)]
pub struct ProviderReport {
    pub provider: AccountId,
    pub tokens: Vec<u32>,
    /// Its closing frame's hash, count and stop reason, if it sent one.
    pub done: Option<(Hash256, u32, StopReason)>,
    /// Why it gave no complete answer (unreachable, refused, cut off, too slow), if it did not.
    pub failure: Option<String>,
    pub time_to_first_token: Option<Duration>,
    /// Its signature acknowledging this client's `Use`, checked: proof on-chain that it had the
    /// prompt, so that if it reveals nothing it is a no-show.
    pub acknowledgement: Option<[u8; 64]>,
    /// Its signature over its closing frame's result for this client's `Use`, checked.
    pub outcome_signature: Option<[u8; 64]>,
}

impl ProviderReport {
    /// A complete answer whose closing frame matches its tokens.
    pub fn answered(&self) -> Option<Hash256> {
        let (hash, count, _) = self.done?;
        (hash == token_hash(&self.tokens) && count as usize == self.tokens.len()).then_some(hash)
    }
}

/// Timings of the steps, for the benchmark and for curious users.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub escrow: Duration,
    pub assignment: Duration,
    pub dial: Duration,
    pub first_token: Duration,
    pub generation: Duration,
    pub settlement: Duration,
}

/// The answer and its proof of payment.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub request: u64,
    pub release: Hash256,
    /// The prompt as the providers ran it (token ids of the release's tokenizer).
    pub prompt: Vec<u32>,
    /// The answer the receipt names, else the one most providers gave (the streamed one if
    /// none agreed).
    pub tokens: Vec<u32>,
    pub text: String,
    pub output_hash: Hash256,
    /// How many providers returned exactly this answer.
    pub agreeing: usize,
    pub providers: Vec<ProviderReport>,
    /// The on-chain receipt; `None` when the request was refunded with no result.
    pub receipt: Option<Receipt>,
    pub status: types::RequestStatus,
    /// The receipt's winning hash equals the hash of the answer returned here.
    pub verified: bool,
    /// When the results went to verifiers: why, and how they decided.
    pub dispute: Option<crate::DisputeReport>,
    /// The streamed tokens differed from the final answer (the first provider was outvoted).
    pub stream_corrected: bool,
    pub timings: Timings,
}

/// `AwaitingAudit` → "awaiting audit".
pub(crate) fn status_name(status: types::RequestStatus) -> String {
    let mut name = String::new();
    for (i, c) in format!("{status:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push(' ');
        }
        name.extend(c.to_lowercase());
    }
    name
}

/// The hottest temperature a job may ask for, in thousandths (the CLI's `--temperature 100`).
pub const MAX_TEMPERATURE_MILLI: u32 = 100_000;

/// Refuses sampling a provider would not run as asked: a temperature above
/// [`MAX_TEMPERATURE_MILLI`], a top-p above 1 (1000 thousandths).
pub(crate) fn check_sampling(sampling: &types::SamplingParams) -> Result<()> {
    let out = |parameter, milli: u32, max: u32| ClientError::SamplingOutOfRange { parameter, value: f64::from(milli) / 1000.0, max: f64::from(max) / 1000.0 };
    if sampling.temperature_milli > MAX_TEMPERATURE_MILLI {
        return Err(out("temperature", sampling.temperature_milli, MAX_TEMPERATURE_MILLI));
    }
    if sampling.top_p_milli > 1000 {
        return Err(out("top_p", sampling.top_p_milli, 1000));
    }
    Ok(())
}

impl Client {
    /// Checks a job against the chain and the model: the release, the prompt, the context,
    /// the providers and prices, the balance. Nothing is paid.
    pub async fn prepare(&self, job: &Job) -> Result<Prepared> {
        if job.max_tokens == 0 {
            return Err(ClientError::ZeroMaxTokens);
        }
        if job.k == 0 || job.k > MAX_REDUNDANCY {
            return Err(ClientError::BadRedundancy { k: job.k, max: MAX_REDUNDANCY });
        }
        check_sampling(&job.sampling)?;
        let release = resolve(&self.chain, &job.model).await?;
        let tokenizer = self.models.tokenizer(&release).await?;
        let prompt = job.prompt.token_ids(&tokenizer)?;
        let prompt_tokens = prompt.len() as u32;
        let id = release.info.sha256;

        let Offered { profile, serving, max_context, locations } = self.offered(id, job.k).await?;
        if prompt_tokens.saturating_add(job.max_tokens) > max_context {
            return Err(ClientError::PromptTooLong { prompt_tokens, max_tokens: job.max_tokens, max_context });
        }
        let quotes = self.free_quotes(id, profile, prompt_tokens, job, serving).await?;
        let max_price_per_1k = job.price_limit(&quotes)?;
        let quotes: Vec<Quote> = quotes.into_iter().filter(|q| q.price_per_1k_input.max(q.price_per_1k_output) <= max_price_per_1k).collect();
        let per_provider = pricing::max_cost(prompt_tokens, job.max_tokens, max_price_per_1k)
            .ok_or(ClientError::PriceOverflow)?;
        let escrow = per_provider.saturating_mul(u128::from(job.k));
        let free = self.chain.free_balance(&self.account()).await?;
        if free < escrow {
            return Err(ClientError::InsufficientFunds { needed: escrow, free });
        }
        let params = types::RequestParams {
            release: id,
            runtime_profile: profile,
            prompt_hash: token_hash(&prompt),
            prompt_tokens,
            max_output_tokens: job.max_tokens,
            max_price_per_1k,
            redundancy: job.k,
            sampling: job.sampling.clone(),
            commit_blocks: job.commit_blocks,
        };
        Ok(Prepared { release, prompt, params, escrow, quotes, tokenizer, locations })
    }

    /// The runtime profile most online providers of `release` run (where k identical answers
    /// are likeliest), and where every provider of the release listens.
    pub(crate) async fn offered(&self, release: Hash256, k: u32) -> Result<Offered> {
        let mut profiles: HashMap<Hash256, usize> = HashMap::new();
        let mut max_context = 0;
        let mut locations = HashMap::new();
        for who in self.chain.servers_of(release).await? {
            if let Some(record) = self.chain.provider(&who).await? {
                if let Ok(location) = location(&record) {
                    locations.insert(who.0, location);
                }
                if record.status == types::ProviderStatus::Online {
                    if let Some(offer) = record.manifest.offers.0.iter().find(|o| o.release == release) {
                        *profiles.entry(offer.runtime_profile).or_default() += 1;
                        max_context = max_context.max(record.manifest.max_context);
                    }
                }
            }
        }
        let Some((&profile, &serving)) = profiles.iter().max_by_key(|(hash, n)| (**n, **hash)) else {
            return Err(ClientError::NotEnoughProviders { k, eligible: 0 });
        };
        Ok(Offered { profile, serving, max_context, locations })
    }

    /// Runs a job end to end: prepare, escrow, stream from the assigned providers (calling
    /// `on_event` as things happen), compare their answers, wait for settlement.
    pub async fn run(&self, job: &Job, on_event: impl FnMut(RunEvent)) -> Result<RunResult> {
        let prepared = self.prepare(job).await?;
        self.run_prepared(prepared, on_event).await
    }

    pub async fn run_prepared(&self, prepared: Prepared, mut on_event: impl FnMut(RunEvent)) -> Result<RunResult> {
        let mut timings = Timings::default();
        let (request, assignment) = self.escrow_until_drawn(&prepared, &mut timings).await?;
        on_event(RunEvent::Escrowed { request, escrow: prepared.escrow });
        on_event(RunEvent::Assigned { request, providers: assignment.providers.0.clone() });

        let (signed, authorised) = self.signed_request(request, &prepared.prompt);
        let dispatch = Dispatch {
            providers: &assignment.providers.0,
            locations: &prepared.locations,
            open: InferOpen::from(signed.clone()),
            authorised: Authorised::Request(authorised),
            max_tokens: prepared.params.max_output_tokens,
            tokenizer: &prepared.tokenizer,
        };
        let Streamed { reports, streamed, dial, first_token, generation, .. } = self.stream_k(dispatch, &mut on_event).await;
        (timings.dial, timings.first_token, timings.generation) = (dial, first_token, generation);

        // The answer is the one most providers gave in full; ties and no answer at all fall back.
        let groups = answer_groups(&reports);
        let Some(best) = largest_group(&groups) else {
            // Nobody answered: settling after the reveal window slashes the providers that took
            // the job and returns the escrow, so the client loses nothing but the fees.
            if let Err(e) = self.wait_settled(request, &signed, &reports).await {
                tracing::warn!(request, error = %e, "settling an unanswered request");
            }
            return Err(ClientError::NoAnswer(request));
        };
        let mut tokens = reports[best[0]].tokens.clone();

        let settling = Instant::now();
        let (mut status, mut receipt) = self.wait_settled(request, &signed, &reports).await?;
        let mut dispute = None;
        if status == types::RequestStatus::Disputed {
            let cause = match self.chain.dispute(request).await?.map(|d| d.kind) {
                Some(types::DisputeKind::Audit) => crate::DisputeCause::Audit,
                _ => crate::DisputeCause::SplitVote,
            };
            on_event(RunEvent::Disputed { request, cause });
            let mut answers: Vec<Vec<u32>> = groups.values().map(|slots| reports[slots[0]].tokens.clone()).collect();
            answers.sort();
            let report = self.see_dispute_through(request, &prepared.prompt, answers).await?;
            (status, receipt) = (report.status.clone(), report.receipt.clone());
            dispute = Some(report);
        }
        timings.settlement = settling.elapsed();
        if let Some(receipt) = &receipt {
            on_event(RunEvent::Settled(receipt.clone()));
        }
        // The verifiers may have settled on another answer than the most frequent one seen here.
        let winning = receipt.as_ref().and_then(|r| r.winning.clone());
        if let Some(w) = &winning {
            if let Some(slots) = groups.get(&w.output_hash) {
                tokens = reports[slots[0]].tokens.clone();
            }
        }
        let output_hash = token_hash(&tokens);
        let agreeing = groups.get(&output_hash).map_or(0, Vec::len);
        let verified = winning.is_some_and(|w| w.output_hash == output_hash && w.token_count as usize == tokens.len());
        Ok(RunResult {
            request,
            release: prepared.release.info.sha256,
            prompt: prepared.prompt.clone(),
            text: prepared.tokenizer.detokenize(&tokens),
            stream_corrected: streamed != tokens,
            tokens,
            output_hash,
            dispute,
            agreeing,
            providers: reports,
            receipt,
            status,
            verified,
            timings,
        })
    }

    /// The request providers serve: the prompt under this account's signature, for this
    /// client's libp2p peer only; and the `Use` it stands for.
    fn signed_request(&self, request: u64, prompt: &[u32]) -> (InferRequest, Use) {
        let client_peer = self.net.peer_id().to_bytes();
        let authorised = Use::new(self.chain.genesis_hash(), request, prompt, client_peer.clone());
        let signature = self.signer.sign(&authorised.signing_payload()).0;
        (InferRequest { request, prompt: prompt.to_vec(), client_peer, signature }, authorised)
    }

    /// Returns once the best block is past `seen` (or at `deadline`). Asking for the block
    /// number is cheap; the runtime calls that follow are not, so they run once per block.
    pub(crate) async fn next_block(&self, seen: u32, deadline: Instant) -> Result<u32> {
        loop {
            let best = self.chain.best_block_number().await?;
            if best > seen || Instant::now() > deadline {
                return Ok(best);
            }
            tokio::time::sleep(self.timeouts.poll).await;
        }
    }

    /// Escrows the request and waits for its draw. Free capacity can go between the quote and
    /// the draw (other requests take it): a request the chain refuses for want of free
    /// providers, or refunds at its draw for the same reason, is made again a block later,
    /// until `timeouts.capacity`. Returns the request that was drawn.
    async fn escrow_until_drawn(&self, prepared: &Prepared, timings: &mut Timings) -> Result<(u64, agora_chain_client::Request)> {
        let deadline = Instant::now() + self.timeouts.capacity;
        loop {
            let started = Instant::now();
            let created = self.chain.create_request(prepared.params.clone(), &self.signer).await;
            let request = match created {
                Ok(request) => request,
                Err(e) if e.is_rejected(Rejection::Escrow(EscrowError::NotEnoughProviders)) && Instant::now() < deadline => {
                    tracing::debug!("every eligible provider is busy; asking again next block");
                    let best = self.chain.best_block_number().await?;
                    self.next_block(best, deadline).await?;
                    continue;
                },
                Err(e) => return Err(e.into()),
            };
            timings.escrow = started.elapsed();
            let drawn_at = Instant::now();
            match self.wait_drawn(request).await? {
                Some(assignment) => {
                    timings.assignment = drawn_at.elapsed();
                    return Ok((request, assignment));
                },
                None if Instant::now() < deadline => tracing::debug!(request, "refunded at its draw: too few providers were free"),
                None => return Err(ClientError::NotAssigned { request, status: status_name(types::RequestStatus::Refunded) }),
            }
        }
    }

    /// Waits for the draw at the start of the next block; `None` if the request was refunded
    /// there (fewer than k providers were free).
    async fn wait_drawn(&self, request: u64) -> Result<Option<agora_chain_client::Request>> {
        let deadline = Instant::now() + self.timeouts.assignment;
        let mut seen = 0;
        loop {
            let r = self.chain.request(request).await?.ok_or(ClientError::UnknownRequest(request))?;
            match r.status {
                types::RequestStatus::Assigned | types::RequestStatus::Settled | types::RequestStatus::Disputed => return Ok(Some(r)),
                types::RequestStatus::Refunded => return Ok(None),
                types::RequestStatus::Pending if Instant::now() < deadline => seen = self.next_block(seen.max(r.created_at), deadline).await?,
                status => return Err(ClientError::NotAssigned { request, status: status_name(status) }),
            }
        }
    }

    /// The quotes of the providers free to take the job. When at least k online providers run
    /// the profile but fewer are free (each offers as many jobs as its engine takes at once), a
    /// call waits for capacity, block by block up to `timeouts.capacity`, instead of failing.
    async fn free_quotes(&self, release: Hash256, profile: Hash256, prompt_tokens: u32, job: &Job, serving: usize) -> Result<Vec<Quote>> {
        let deadline = Instant::now() + self.timeouts.capacity;
        let mut seen = self.chain.best_block_number().await?;
        loop {
            let quotes = self.chain.quote(release, profile, prompt_tokens, job.max_tokens).await?;
            if quotes.len() >= job.k as usize {
                return Ok(quotes);
            }
            if serving < job.k as usize {
                return Err(ClientError::NotEnoughProviders { k: job.k, eligible: quotes.len() });
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoCapacity { k: job.k, serving, seconds: self.timeouts.capacity.as_secs() });
            }
            seen = self.next_block(seen, deadline).await?;
        }
    }

    /// Waits for the providers' commit–reveal to settle the request. Once the commit deadline
    /// has passed, the acknowledgement of every provider that took the job and did not commit
    /// goes on-chain; once the reveal window has closed the client settles it itself, so that
    /// those providers are slashed as no-shows.
    async fn wait_settled(&self, request: u64, signed: &InferRequest, reports: &[ProviderReport]) -> Result<(types::RequestStatus, Option<Receipt>)> {
        let deadline = Instant::now() + self.timeouts.settlement;
        let mut settle_tried = false;
        let mut acks_proven = false;
        let mut seen = 0;
        loop {
            let r = self.chain.request(request).await?.ok_or(ClientError::UnknownRequest(request))?;
            // A single provider's result waits a block or two for its audit draw once settled.
            let awaiting_audit = match r.status {
                types::RequestStatus::Assigned => false,
                types::RequestStatus::AwaitingAudit => true,
                types::RequestStatus::Settled => return Ok((r.status, self.chain.receipt(request).await?)),
                status => return Ok((status, None)),
            };
            let best = self.chain.best_block_number().await?;
            if !acks_proven && !awaiting_audit && best > r.commit_deadline && best < r.reveal_deadline {
                acks_proven = true;
                self.prove_silent_acks(request, signed, reports).await;
            }
            if !settle_tried && !awaiting_audit && best > r.reveal_deadline {
                settle_tried = true;
                let settled = self.chain.settle(request, &self.signer).await;
                if let Err(e) = settled {
                    tracing::info!(error = %e, "settle (a provider may have settled first)");
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(ClientError::SettlementTimeout { request, seconds: self.timeouts.settlement.as_secs(), status: status_name(r.status) });
            }
            seen = self.next_block(seen.max(best), deadline).await?;
        }
    }
}

impl Client {
    /// Puts on-chain the acknowledgement of each provider that signed for the prompt and has no
    /// commitment once the commit deadline is past. A failure is logged, not returned: the
    /// answer does not depend on it.
    async fn prove_silent_acks(&self, request: u64, signed: &InferRequest, reports: &[ProviderReport]) {
        for report in reports {
            let Some(signature) = report.acknowledgement else { continue };
            match self.chain.commitment(request, &report.provider).await {
                Ok(Some(_)) => continue,
                Ok(None) => {},
                Err(e) => {
                    tracing::warn!(request, provider = %report.provider, error = %e, "cannot read a commitment");
                    continue;
                },
            }
            let proven = self.chain.prove_ack(request, &report.provider, signed.client_peer.clone(), signature, &self.signer).await;
            match proven {
                Ok(_) => tracing::info!(request, provider = %report.provider, "proved the acknowledgement of a provider that did not commit"),
                Err(e) => tracing::warn!(request, provider = %report.provider, error = %e, "cannot prove an acknowledgement"),
            }
        }
    }
}

/// How long the client waits at each step.
#[derive(Clone, Debug)]
pub struct Timeouts {
    pub assignment: Duration,
    pub first_token: Duration,
    /// Between two frames of a stream.
    pub stall: Duration,
    /// For the whole of a call's streams, however steadily a provider drips tokens.
    pub total: Duration,
    pub settlement: Duration,
    /// For enough providers to be free, when every one that could serve is busy.
    pub capacity: Duration,
    pub poll: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            assignment: Duration::from_secs(60),
            first_token: Duration::from_secs(60),
            stall: Duration::from_secs(20),
            total: Duration::from_secs(300),
            settlement: Duration::from_secs(600),
            capacity: Duration::from_secs(120),
            poll: Duration::from_millis(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_a_provider_would_not_run_as_asked_is_refused_by_name() {
        let sampling = |temperature_milli, top_p_milli| types::SamplingParams { temperature_milli, top_k: 0, top_p_milli };
        assert!(check_sampling(&sampling(0, 1000)).is_ok());
        assert!(check_sampling(&sampling(MAX_TEMPERATURE_MILLI, 0)).is_ok());
        let refused = |s| match check_sampling(&s) {
            Err(ClientError::SamplingOutOfRange { parameter, .. }) => parameter,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(sampling(0, 7000)), "top_p");
        assert_eq!(refused(sampling(MAX_TEMPERATURE_MILLI + 1, 1000)), "temperature");
    }
}
