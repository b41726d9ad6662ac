//! A pool of pre-drawn tickets: a prompt goes to its providers the moment it is asked, with no
//! transaction before the first token. The pool buys tickets from the account's deposit ahead
//! of need (refilled in the background when it runs low), hands them out first in, first out,
//! and the answer is verified the moment a strict majority of the ticket's k providers signed
//! one result. The bundles of signed outcomes are settled in the background, many per
//! transaction; a ticket whose outcomes have no strict majority is fallen back to commit–reveal
//! at once, so that its split goes to verifiers ([`TicketPool::see_dispute_through`]).

use crate::dispute::DisputeReport;
use crate::error::{ClientError, Result};
use crate::models::resolve;
use crate::run::{Job, Offered, Prompt, ProviderReport, RunEvent};
use crate::stream::{answer_groups, largest_group, Dispatch, Streamed};
use crate::Client;
use agora_chain_client::{bounded, types, ModelRelease, Signature, SettledTickets, SignedOutcome, Ticket, TicketBundle, TicketReceipt, TicketSpec, TicketStatus};
use agora_net::Location;
use agora_primitives::wire::{token_hash, Authorised, InferOpen, TicketRequest};
use agora_primitives::{pricing, Hash256, PeerIdBytes, SamplingParams, TicketUse};
use agora_tokenizer::Tokenizer;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Settlements a pool remembers for [`TicketPool::receipt`]: a caller that never asks must not
/// grow the pool without bound.
const KEPT_RECEIPTS: usize = 4096;

/// Blocks before its expiry from which a held ticket is not used: its Use and settlement need
/// blocks of their own.
const EXPIRY_MARGIN: u32 = 20;

/// How long a drawn ticket is used with no check of its expiry (far shorter than its life).
const FRESH: Duration = Duration::from_secs(60);

/// How a pool buys its tickets.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Tickets bought in one purchase; the pool buys again when it holds fewer than half.
    pub batch: u32,
    /// The longest prompt a ticket takes, in tokens.
    pub max_prompt_tokens: u32,
    /// Buy the next batch in the background when the pool runs low; off for a pool that
    /// serves a known number of prompts (`agora run --tickets`), so no ticket is bought to
    /// expire unused.
    pub refill: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { batch: 8, max_prompt_tokens: 512, refill: true }
    }
}

/// A drawn ticket, ready to be used.
#[derive(Clone, Debug)]
pub struct HeldTicket {
    pub id: u64,
    pub ticket: Ticket,
    /// When the pool saw it drawn: a ticket held a while is checked against its expiry.
    drawn_at: Instant,
}

/// The answer to one prompt served from a ticket.
#[derive(Clone, Debug)]
pub struct TicketAnswer {
    pub ticket: u64,
    pub prompt: Vec<u32>,
    /// The answer most providers signed (the streamed one if none agreed).
    pub tokens: Vec<u32>,
    pub text: String,
    pub output_hash: Hash256,
    /// How many providers signed exactly this answer.
    pub agreeing: usize,
    /// A strict majority of the ticket's k providers signed this answer's result: it is what
    /// settlement will pay for, known with no chain call. Or, with no majority, the verifiers
    /// accepted it ([`TicketPool::see_dispute_through`]).
    pub verified: bool,
    /// The streamed tokens differed from the answer (the first provider was outvoted).
    pub stream_corrected: bool,
    pub providers: Vec<ProviderReport>,
    pub timings: TicketTimings,
}

/// Timings of one ticket's use, from the call.
#[derive(Clone, Debug, Default)]
pub struct TicketTimings {
    /// Waiting for a drawn ticket (zero when the pool held one).
    pub ticket: Duration,
    pub first_token: Duration,
    /// Until a strict majority of the k had signed one result.
    pub verified: Option<Duration>,
    /// Until every stream ended.
    pub answered: Duration,
}

/// A ticket settled on-chain: its receipt, the bundle it was settled from and the block that
/// settled it; [`Client::receipt_file`] turns it into a receipt anyone can check offline.
#[derive(Clone, Debug)]
pub struct SettledTicket {
    pub receipt: TicketReceipt,
    pub bundle: TicketBundle,
    pub block: [u8; 32],
}

/// A pool of tickets for jobs like one template: its release, k and price limit.
#[derive(Clone)]
pub struct TicketPool {
    shared: Arc<Shared>,
}

struct Shared {
    client: Arc<Client>,
    spec: TicketSpec,
    release: ModelRelease,
    tokenizer: Arc<Tokenizer>,
    locations: HashMap<[u8; 32], Location>,
    config: PoolConfig,
    held: Mutex<VecDeque<HeldTicket>>,
    /// Woken when tickets arrive or a purchase fails.
    arrived: Notify,
    buying: AtomicBool,
    /// Why the last purchase failed, for callers waiting for a ticket.
    purchase_failed: Mutex<Option<String>>,
    bundles: mpsc::UnboundedSender<Queued>,
    /// What became of each used ticket's bundle, until it is asked for (the newest
    /// [`KEPT_RECEIPTS`] at most).
    settled: Mutex<BTreeMap<u64, Closing>>,
    settled_news: Notify,
}

impl Client {
    /// A pool of tickets for jobs like `template` (its model, k, price limit and max tokens;
    /// prompts up to `config.max_prompt_tokens`). Checks the release and providers as
    /// [`Client::prepare`] does, then buys the first tickets in the background.
    pub async fn ticket_pool(self: &Arc<Self>, template: &Job, config: PoolConfig) -> Result<TicketPool> {
        if template.max_tokens == 0 {
            return Err(ClientError::ZeroMaxTokens);
        }
        if template.k > agora_primitives::MAX_REDUNDANCY {
            return Err(ClientError::BadRedundancy { k: template.k, max: agora_primitives::MAX_REDUNDANCY });
        }
        if template.k < 2 {
            return Err(ClientError::TicketsNeedMajority(template.k));
        }
        let release = resolve(&self.chain, &template.model).await?;
        let tokenizer = self.models.tokenizer(&release).await?;
        let id = release.info.sha256;
        let Offered { profile, max_context, locations, .. } = self.offered(id, template.k).await?;
        if config.max_prompt_tokens.saturating_add(template.max_tokens) > max_context {
            return Err(ClientError::PromptTooLong { prompt_tokens: config.max_prompt_tokens, max_tokens: template.max_tokens, max_context });
        }
        // Tickets take no job slots: every online provider at the price can be drawn.
        let quotes = self.chain.quote(id, profile, config.max_prompt_tokens, template.max_tokens).await?;
        let max_price_per_1k = template.price_limit(&quotes)?;
        pricing::max_cost(config.max_prompt_tokens, template.max_tokens, max_price_per_1k).ok_or(ClientError::PriceOverflow)?;
        let spec = TicketSpec {
            release: id,
            runtime_profile: profile,
            redundancy: template.k,
            max_prompt_tokens: config.max_prompt_tokens,
            max_output_tokens: template.max_tokens,
            max_price_per_1k,
        };
        let (bundles, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            client: self.clone(),
            spec,
            release,
            tokenizer,
            locations,
            config,
            held: Mutex::default(),
            arrived: Notify::new(),
            buying: AtomicBool::new(false),
            purchase_failed: Mutex::default(),
            bundles,
            settled: Mutex::default(),
            settled_news: Notify::new(),
        });
        tokio::spawn(settler(self.clone(), Arc::downgrade(&shared), queued));
        let pool = TicketPool { shared };
        pool.refill();
        Ok(pool)
    }
}

impl TicketPool {
    pub fn release(&self) -> &ModelRelease {
        &self.shared.release
    }

    /// Drawn tickets held now.
    pub fn held(&self) -> usize {
        self.shared.held.lock().expect("not poisoned").len()
    }

    /// Runs `prompt` (at most `max_tokens` tokens of output, within the pool's tickets) on
    /// the next ticket, streaming tokens to `on_event`. Returns once every provider answered;
    /// the signed outcomes go to the background settlement.
    pub async fn run(&self, prompt: &Prompt, max_tokens: u32, sampling: &types::SamplingParams, mut on_event: impl FnMut(RunEvent)) -> Result<TicketAnswer> {
        let shared = &self.shared;
        let prompt = prompt.token_ids(&shared.tokenizer)?;
        let (prompt_tokens, spec) = (prompt.len() as u32, &shared.spec);
        if max_tokens == 0 {
            return Err(ClientError::ZeroMaxTokens);
        }
        crate::run::check_sampling(sampling)?;
        if prompt_tokens > spec.max_prompt_tokens || max_tokens > spec.max_output_tokens {
            return Err(ClientError::ExceedsTicket { prompt_tokens, max_tokens, max_prompt_tokens: spec.max_prompt_tokens, max_output_tokens: spec.max_output_tokens });
        }
        let called = Instant::now();
        let held = self.take().await?;
        let waited = called.elapsed();
        on_event(RunEvent::Ticket { ticket: held.id, providers: held.ticket.providers.0.clone() });
        let client = &shared.client;
        let authorised = TicketUse {
            chain: client.chain.genesis_hash(),
            ticket: held.id,
            prompt_hash: token_hash(&prompt),
            prompt_tokens,
            max_output_tokens: max_tokens,
            sampling: SamplingParams { temperature_milli: sampling.temperature_milli, top_k: sampling.top_k, top_p_milli: sampling.top_p_milli },
            client_peer: PeerIdBytes::truncate_from(client.net.peer_id().to_bytes()),
        };
        let signature = client.signer.sign(&authorised.signing_payload()).0;
        let open = InferOpen::Ticket(TicketRequest { authorised: authorised.clone(), prompt: prompt.clone(), signature });
        let dispatch = Dispatch {
            providers: &held.ticket.providers.0,
            locations: &shared.locations,
            open,
            authorised: Authorised::Ticket(authorised.clone()),
            max_tokens,
            tokenizer: &shared.tokenizer,
        };
        let Streamed { reports, streamed, first_token, agreed, .. } = client.stream_k(dispatch, &mut on_event).await;
        if reports.iter().all(|r| r.answered().is_none()) && streamed.is_empty() {
            return Err(ClientError::TicketNoAnswer(held.id));
        }
        let groups = answer_groups(&reports);
        let best = largest_group(&groups).unwrap_or_default();
        let tokens = best.first().map_or_else(|| streamed.clone(), |&slot| reports[slot].tokens.clone());
        let k = held.ticket.providers.0.len();
        let verified = best.len() * 2 > k;
        let bundle = bundle(&authorised, signature, &reports);
        if verified {
            let _ = shared.bundles.send(Queued::Agreed(bundle));
        } else {
            tracing::warn!(ticket = held.id, agreeing = best.len(), k, "no strict majority signed one result: falling the ticket back to commit-reveal");
            let _ = shared.bundles.send(Queued::Split(bundle));
        }
        Ok(TicketAnswer {
            ticket: held.id,
            text: shared.tokenizer.detokenize(&tokens),
            output_hash: token_hash(&tokens),
            stream_corrected: streamed != tokens,
            agreeing: best.len(),
            verified,
            tokens,
            prompt,
            providers: reports,
            timings: TicketTimings {
                ticket: waited,
                first_token: waited + first_token,
                verified: agreed.filter(|_| verified).map(|a| waited + a),
                answered: called.elapsed(),
            },
        })
    }

    /// Waits until ticket `id`'s bundle is settled on-chain, up to the client's settlement
    /// timeout, and returns its receipt, bundle and block (once: the pool forgets it then).
    /// A ticket with no majority is [`ClientError::TicketFellBack`], naming its request.
    pub async fn receipt(&self, id: u64) -> Result<SettledTicket> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.client.timeouts.settlement;
        loop {
            let news = shared.settled_news.notified();
            if let Some(closing) = shared.settled.lock().expect("not poisoned").remove(&id) {
                return match closing {
                    Closing::Settled(settled) => Ok(settled),
                    Closing::FellBack(request) => Err(ClientError::TicketFellBack { ticket: id, request }),
                    Closing::Failed(reason) => Err(ClientError::TicketNotSettled { ticket: id, reason }),
                };
            }
            if tokio::time::timeout_at(deadline.into(), news).await.is_err() {
                let seconds = shared.client.timeouts.settlement.as_secs();
                return Err(ClientError::TicketNotSettled { ticket: id, reason: format!("no receipt within {seconds} s") });
            }
        }
    }

    /// Sees `answer`'s ticket, whose outcomes had no strict majority, through its dispute: the
    /// pool fell it back to commit–reveal, its providers commit and reveal the results they
    /// signed, the tally's split goes to verifiers, and this brings them the prompt and the
    /// answers received, then waits for their verdict (up to the client's settlement timeout
    /// for each step). The answer becomes the result they accepted, verified.
    pub async fn see_dispute_through(&self, answer: &mut TicketAnswer) -> Result<DisputeReport> {
        let request = match self.receipt(answer.ticket).await {
            Err(ClientError::TicketFellBack { request, .. }) => request,
            Ok(_) => return Err(ClientError::TicketHasNoDispute(answer.ticket)),
            Err(e) => return Err(e),
        };
        let client = &self.shared.client;
        let deadline = Instant::now() + client.timeouts.settlement;
        let mut seen = 0;
        // The providers' commits and reveals come first; the request is disputed at its tally.
        while client.chain.request(request).await?.ok_or(ClientError::UnknownRequest(request))?.status == types::RequestStatus::Assigned {
            if Instant::now() > deadline {
                return Err(ClientError::SettlementTimeout { request, seconds: client.timeouts.settlement.as_secs(), status: "Assigned".into() });
            }
            seen = client.next_block(seen, deadline).await?;
        }
        let outputs = answer.providers.iter().filter(|r| r.answered().is_some()).map(|r| r.tokens.clone()).collect();
        let report = client.see_dispute_through(request, &answer.prompt, outputs).await?;
        let accepted = answer.providers.iter().find(|r| r.answered().is_some_and(|hash| report.accepted(&hash) == Some(true)));
        if let Some(accepted) = accepted {
            answer.tokens = accepted.tokens.clone();
            answer.text = self.shared.tokenizer.detokenize(&answer.tokens);
            answer.output_hash = token_hash(&answer.tokens);
            answer.verified = true;
        }
        Ok(report)
    }

    /// The oldest held ticket; waits for a purchase (up to the client's capacity timeout) when
    /// none is held. Buys more when fewer than half a batch are left.
    async fn take(&self) -> Result<HeldTicket> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.client.timeouts.capacity;
        loop {
            let arrived = shared.arrived.notified();
            let next = shared.held.lock().expect("not poisoned").pop_front();
            if shared.config.refill && self.held() < shared.config.batch.div_ceil(2) as usize {
                self.refill();
            }
            if let Some(held) = next {
                if self.usable(&held).await? {
                    return Ok(held);
                }
                tracing::info!(ticket = held.id, expires_at = held.ticket.expires_at, "skipping a ticket about to expire");
                continue;
            }
            if let Some(reason) = shared.purchase_failed.lock().expect("not poisoned").take() {
                return Err(ClientError::TicketPurchase(reason));
            }
            // A purchase adds its tickets before it clears `buying`: seen cleared, they are held.
            if !shared.config.refill && !shared.buying.load(Ordering::Acquire) && self.held() == 0 {
                return Err(ClientError::TicketPurchase("the pool has used every ticket it bought and buys no more (refill is off)".into()));
            }
            if tokio::time::timeout_at(deadline.into(), arrived).await.is_err() {
                return Err(ClientError::TicketPurchase(format!("no ticket was drawn within {} s", shared.client.timeouts.capacity.as_secs())));
            }
        }
    }

    /// Whether `held` can still be served and settled: not within [`EXPIRY_MARGIN`] blocks of
    /// its expiry. Only a ticket held longer than [`FRESH`] costs a chain call.
    async fn usable(&self, held: &HeldTicket) -> Result<bool> {
        if held.drawn_at.elapsed() < FRESH {
            return Ok(true);
        }
        let best = self.shared.client.chain.best_block_number().await?;
        Ok(best.saturating_add(EXPIRY_MARGIN) < held.ticket.expires_at)
    }

    /// Starts a purchase of one batch in the background, unless one is under way.
    fn refill(&self) {
        if self.shared.buying.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match buy(&shared).await {
                Ok(drawn) => shared.held.lock().expect("not poisoned").extend(drawn),
                Err(e) => {
                    tracing::warn!(error = %e, "buying tickets failed");
                    *shared.purchase_failed.lock().expect("not poisoned") = Some(e.to_string());
                },
            }
            shared.buying.store(false, Ordering::Release);
            shared.arrived.notify_waiters();
        });
    }
}

/// Buys one batch, topping the deposit up to what it costs, and waits for its draw.
async fn buy(shared: &Shared) -> Result<Vec<HeldTicket>> {
    let (chain, signer) = (&shared.client.chain, &shared.client.signer);
    let spec = &shared.spec;
    let per_provider = pricing::max_cost(spec.max_prompt_tokens, spec.max_output_tokens, spec.max_price_per_1k).ok_or(ClientError::PriceOverflow)?;
    let cost = per_provider.saturating_mul(u128::from(spec.redundancy)).saturating_mul(u128::from(shared.config.batch));
    let account = shared.client.account();
    let deposited = chain.ledger_balance(&account).await?;
    if deposited < cost {
        let needed = cost - deposited;
        let free = chain.free_balance(&account).await?;
        if free < needed {
            return Err(ClientError::InsufficientFunds { needed, free });
        }
        chain.deposit(needed, signer).await?;
    }
    let purchase = chain.buy_tickets(spec.clone(), shared.config.batch, signer).await?;
    let deadline = Instant::now() + shared.client.timeouts.assignment;
    let mut seen = chain.best_block_number().await?;
    loop {
        let tickets = futures::future::try_join_all(purchase.ids().map(|id| chain.ticket(id))).await?;
        if tickets.iter().all(|t| t.as_ref().is_none_or(|t| t.status != TicketStatus::AwaitingDraw)) {
            // A ticket gone at its draw was refunded to the deposit: too few providers.
            let drawn: Vec<HeldTicket> = purchase.ids().zip(tickets).filter_map(|(id, t)| t.map(|ticket| HeldTicket { id, ticket, drawn_at: Instant::now() })).collect();
            if drawn.is_empty() {
                return Err(ClientError::NotEnoughProviders { k: spec.redundancy, eligible: 0 });
            }
            return Ok(drawn);
        }
        if Instant::now() > deadline {
            return Err(ClientError::TicketPurchase(format!("tickets {:?} were not drawn in time", purchase.ids())));
        }
        seen = shared.client.next_block(seen, deadline).await?;
    }
}

/// Every signed result of the streams within the `Use`, for the chain to tally: one
/// provider's oversized count would have the whole bundle refused.
fn bundle(authorised: &TicketUse, buyer_signature: [u8; 64], reports: &[ProviderReport]) -> TicketBundle {
    let outcomes = reports
        .iter()
        .enumerate()
        .filter_map(|(position, report)| {
            let ((output_hash, token_count, _), signature) = (report.done?, report.outcome_signature?);
            if token_count > authorised.max_output_tokens {
                return None;
            }
            let outcome = types::Outcome { output_hash, token_count };
            Some(SignedOutcome { provider: position as u8, outcome, signature: Signature::Sr25519(signature) })
        })
        .collect::<Vec<_>>();
    let sampling = &authorised.sampling;
    TicketBundle {
        authorised: agora_chain_client::TicketUse {
            chain: authorised.chain,
            ticket: authorised.ticket,
            prompt_hash: authorised.prompt_hash,
            prompt_tokens: authorised.prompt_tokens,
            max_output_tokens: authorised.max_output_tokens,
            sampling: types::SamplingParams { temperature_milli: sampling.temperature_milli, top_k: sampling.top_k, top_p_milli: sampling.top_p_milli },
            client_peer: bounded(authorised.client_peer.to_vec()),
        },
        buyer_signature: Signature::Sr25519(buyer_signature),
        outcomes: bounded(outcomes),
    }
}

/// A used ticket's bundle, for the settler.
enum Queued {
    /// A strict majority signed one result: settled from the bundle.
    Agreed(TicketBundle),
    /// No majority: fallen back to commit–reveal under the bundle's `Use`.
    Split(TicketBundle),
}

/// What became of a used ticket.
enum Closing {
    Settled(SettledTicket),
    FellBack(u64),
    Failed(String),
}

/// Settles the bundles as they come: all those queued while the last transaction was in
/// flight go in the next one. A refused batch is retried a bundle at a time, so one bad
/// bundle holds up no other; a ticket with no majority is fallen back, a transaction each. It
/// outlives the pool until every queued bundle is settled: a dropped pool must not leave its
/// providers unpaid.
async fn settler(client: Arc<Client>, pool: std::sync::Weak<Shared>, mut queued: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = queued.recv().await {
        let (mut batch, mut split) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(item) = next.take().or_else(|| queued.try_recv().ok()) {
            match item {
                Queued::Agreed(bundle) => batch.push(bundle),
                Queued::Split(bundle) => split.push(bundle),
            }
        }
        let mut results = if batch.is_empty() { Vec::new() } else { settle(&client, batch).await };
        for bundle in split {
            results.push(fall_back(&client, bundle).await);
        }
        let Some(shared) = pool.upgrade() else { continue };
        {
            let mut settled = shared.settled.lock().expect("not poisoned");
            settled.extend(results);
            while settled.len() > KEPT_RECEIPTS {
                settled.pop_first();
            }
        }
        shared.settled_news.notify_waiters();
    }
}

/// One `settle_tickets` of `batch`, or one per bundle if the batch is refused.
async fn settle(client: &Client, batch: Vec<TicketBundle>) -> Vec<(u64, Closing)> {
    let (chain, signer) = (&client.chain, &client.signer);
    let ids: Vec<u64> = batch.iter().map(|b| b.authorised.ticket).collect();
    let results = match chain.settle_tickets(batch.clone(), signer).await {
        Ok(settled) => with_bundles(settled, batch),
        Err(e) if batch.len() == 1 => vec![(ids[0], Closing::Failed(e.to_string()))],
        Err(e) => {
            tracing::warn!(error = %e, tickets = ?ids, "a batch of bundles was refused; settling them one by one");
            let mut results = Vec::new();
            for bundle in batch {
                let id = bundle.authorised.ticket;
                match chain.settle_tickets(vec![bundle.clone()], signer).await {
                    Ok(settled) => results.extend(with_bundles(settled, vec![bundle])),
                    Err(e) => results.push((id, Closing::Failed(e.to_string()))),
                }
            }
            results
        },
    };
    tracing::debug!(tickets = ?ids, "settled a batch of tickets");
    results
}

/// Falls a ticket with no majority back to commit–reveal, as its buyer may at once.
async fn fall_back(client: &Client, bundle: TicketBundle) -> (u64, Closing) {
    let id = bundle.authorised.ticket;
    match client.chain.fall_back_ticket(bundle.authorised, bundle.buyer_signature, &client.signer).await {
        Ok(request) => {
            tracing::info!(ticket = id, request, "fell a ticket with no majority back to commit-reveal");
            (id, Closing::FellBack(request))
        },
        Err(e) => (id, Closing::Failed(format!("it had no majority, and falling it back failed: {e}"))),
    }
}

/// Each bundle of a settlement with its ticket's receipt; one whose receipt did not come back
/// is named, not waited for.
fn with_bundles(settled: SettledTickets, batch: Vec<TicketBundle>) -> Vec<(u64, Closing)> {
    let block = settled.block;
    let mut receipts: HashMap<u64, TicketReceipt> = settled.receipts.into_iter().map(|r| (r.ticket, r)).collect();
    batch
        .into_iter()
        .map(|bundle| {
            let id = bundle.authorised.ticket;
            let settled = match receipts.remove(&id) {
                Some(receipt) => Closing::Settled(SettledTicket { receipt, bundle, block }),
                None => Closing::Failed(format!("settled in block 0x{}, but its receipt was not read", hex::encode(block))),
            };
            (id, settled)
        })
        .collect()
}
