//! One prompt sent to its k providers over `/agora/infer/1` at once: each stream's
//! acknowledgement and closing signature checked against the `Use`, the tokens of the stream
//! furthest ahead among those that agree so far streamed to the caller, each provider's answer
//! reported. Requests and tickets share it; only what the signatures cover differs.
//!
//! No provider can hold a call: a stream is refused past the tokens asked for, the call has a
//! total deadline, and once a strict majority has signed one result the others get as long
//! again as that took before they are dropped (a dropped provider loses nothing it earned: a
//! request's result is committed on-chain by the provider itself, and a ticket's share left
//! out of a settlement is held for it to claim).

use crate::location_of as location;
use crate::run::{ProviderReport, RunEvent, Timeouts};
use crate::Client;
use agora_chain_client::{AccountId, ChainClient};
use agora_net::infer::InferCall;
use agora_net::{Location, Network, StreamError};
use agora_primitives::wire::{Authorised, InferErrorKind, InferFrame, InferOpen, StopReason};
use agora_primitives::{Hash256, Outcome};
use agora_tokenizer::Tokenizer;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

/// What to send to whom.
pub(crate) struct Dispatch<'a> {
    /// In the order the chain drew them: a report's position is the provider's.
    pub providers: &'a [AccountId],
    /// Where providers listen, as last read from their records (others are read on the way).
    pub locations: &'a HashMap<[u8; 32], Location>,
    pub open: InferOpen,
    /// What each acknowledgement and closing signature must be signed over.
    pub authorised: Authorised,
    /// The most tokens a provider may send: a stream that sends more is refused.
    pub max_tokens: u32,
    pub tokenizer: &'a Tokenizer,
}

/// What the k streams gave.
pub(crate) struct Streamed {
    /// One per provider, in the dispatch's order.
    pub reports: Vec<ProviderReport>,
    /// The tokens streamed to the caller.
    pub streamed: Vec<u32>,
    /// From the dispatch to the first stream opened, to the first token, and from the first
    /// token to the last stream's end.
    pub dial: Duration,
    pub first_token: Duration,
    pub generation: Duration,
    /// From the dispatch to the moment a strict majority of the k held one signed result.
    pub agreed: Option<Duration>,
}

/// Each complete answer's hash and the positions of the providers that gave it.
pub(crate) fn answer_groups(reports: &[ProviderReport]) -> HashMap<Hash256, Vec<usize>> {
    let mut groups: HashMap<Hash256, Vec<usize>> = HashMap::new();
    for (slot, report) in reports.iter().enumerate() {
        if let Some(hash) = report.answered() {
            groups.entry(hash).or_default().push(slot);
        }
    }
    groups
}

/// The group most providers are in, the earliest position breaking ties.
pub(crate) fn largest_group(groups: &HashMap<Hash256, Vec<usize>>) -> Option<Vec<usize>> {
    groups.values().max_by_key(|slots| (slots.len(), std::cmp::Reverse(slots[0]))).cloned()
}

/// Events from the k streams in flight at most: a provider sends no faster than they are read.
const EVENTS_IN_FLIGHT: usize = 256;

/// The least a straggler is waited for once a majority agreed, however fast that was.
const LEAST_STRAGGLER_GRACE: Duration = Duration::from_secs(1);

impl Client {
    /// Sends the dispatch's first frame to each provider at once and follows every stream to
    /// its end, calling `on_event` with acknowledgements, the streamed tokens and each
    /// provider's report.
    pub(crate) async fn stream_k(&self, dispatch: Dispatch<'_>, on_event: &mut impl FnMut(RunEvent)) -> Streamed {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel(EVENTS_IN_FLIGHT);
        // Dropped with this call, so no stream outlives it.
        let mut streams = JoinSet::new();
        for (slot, provider) in dispatch.providers.iter().enumerate() {
            let (chain, net, tx) = (self.chain.clone(), self.net.clone(), tx.clone());
            let (provider, open, authorised, timeouts) = (provider.clone(), dispatch.open.clone(), dispatch.authorised.clone(), self.timeouts.clone());
            let known = dispatch.locations.get(&provider.0).cloned();
            let max_tokens = dispatch.max_tokens;
            streams.spawn(async move {
                let target = Target { chain: &chain, provider: &provider, known };
                let events = Events { slot, sender: &tx };
                let result = stream_from(target, &net, (&open, &authorised, max_tokens), &timeouts, events).await;
                let _ = tx.send((slot, StreamEvent::Ended(result.err()))).await;
            });
        }
        drop(tx);
        let mut collected = Collector::new(dispatch.providers, started);
        let mut deadline = tokio::time::Instant::from_std(started + self.timeouts.total);
        loop {
            match timeout_at(deadline, rx.recv()).await {
                Ok(Some((slot, event))) => {
                    let agreed_before = collected.agreed.is_some();
                    collected.take(slot, event, on_event);
                    collected.forward(dispatch.tokenizer, on_event);
                    if let (false, Some(agreed)) = (agreed_before, collected.agreed) {
                        deadline = deadline.min(tokio::time::Instant::now() + agreed.max(LEAST_STRAGGLER_GRACE));
                    }
                },
                Ok(None) => break,
                Err(_) => {
                    collected.drop_the_rest(&self.timeouts, on_event);
                    break;
                },
            }
        }
        streams.abort_all();
        let generation = started.elapsed().saturating_sub(collected.first_token);
        Streamed {
            reports: collected.reports,
            streamed: collected.streamed,
            dial: collected.dial,
            first_token: collected.first_token,
            generation,
            agreed: collected.agreed,
        }
    }
}

/// The streams' state as their events arrive.
struct Collector {
    started: Instant,
    reports: Vec<ProviderReport>,
    ended: Vec<bool>,
    /// Whether each stream has sent, so far, only what the caller was streamed.
    agrees: Vec<bool>,
    streamed: Vec<u32>,
    dial: Duration,
    first_token: Duration,
    agreed: Option<Duration>,
}

impl Collector {
    fn new(providers: &[AccountId], started: Instant) -> Self {
        let report = |p: &AccountId| ProviderReport {
            provider: p.clone(),
            tokens: vec![],
            done: None,
            failure: None,
            time_to_first_token: None,
            acknowledgement: None,
            outcome_signature: None,
        };
        Self {
            started,
            reports: providers.iter().map(report).collect(),
            ended: vec![false; providers.len()],
            agrees: vec![true; providers.len()],
            streamed: Vec::new(),
            dial: Duration::ZERO,
            first_token: Duration::ZERO,
            agreed: None,
        }
    }

    fn take(&mut self, slot: usize, event: StreamEvent, on_event: &mut impl FnMut(RunEvent)) {
        let k = self.reports.len();
        match event {
            StreamEvent::Dialed if self.dial.is_zero() => self.dial = self.started.elapsed(),
            StreamEvent::Dialed => {},
            StreamEvent::Token(token) => {
                let report = &mut self.reports[slot];
                if report.tokens.is_empty() {
                    report.time_to_first_token = Some(self.started.elapsed());
                }
                if self.streamed.get(report.tokens.len()).is_some_and(|&sent| sent != token) {
                    self.agrees[slot] = false;
                }
                report.tokens.push(token);
            },
            StreamEvent::Accepted(signature) => {
                self.reports[slot].acknowledgement = Some(signature);
                on_event(RunEvent::Acknowledged { provider: self.reports[slot].provider.clone() });
            },
            StreamEvent::Done(hash, count, stop, signature) => {
                self.reports[slot].done = Some((hash, count, stop));
                self.reports[slot].outcome_signature = Some(signature);
                let agreeing = largest_group(&answer_groups(&self.reports)).map_or(0, |slots| slots.len());
                if self.agreed.is_none() && agreeing * 2 > k {
                    self.agreed = Some(self.started.elapsed());
                }
            },
            StreamEvent::Ended(failure) => {
                self.ended[slot] = true;
                let report = &mut self.reports[slot];
                report.failure = failure.or_else(|| report.done.is_none().then(|| "the stream ended without a closing frame".into()));
                if report.failure.is_some() {
                    tracing::warn!(provider = %report.provider, reason = report.failure.as_deref().unwrap_or(""), "no answer from a provider");
                }
                on_event(RunEvent::ProviderFinished(report.clone()));
            },
        }
    }

    /// Ends every stream still open when the call's deadline passes: after the straggler
    /// grace if a majority agreed, else at the call's total deadline.
    fn drop_the_rest(&mut self, timeouts: &Timeouts, on_event: &mut impl FnMut(RunEvent)) {
        let why = match self.agreed {
            Some(agreed) => format!("dropped: still streaming {:.1} s after a majority agreed", (self.started.elapsed() - agreed).as_secs_f64()),
            None => format!("dropped: the call's deadline of {} s passed", timeouts.total.as_secs()),
        };
        for slot in 0..self.reports.len() {
            if !self.ended[slot] {
                self.take(slot, StreamEvent::Ended(Some(why.clone())), on_event);
            }
        }
    }

    /// Passes new tokens on to the caller from the stream furthest ahead of those that agree
    /// with what was streamed so far: a provider that stalls or dies is overtaken, not waited
    /// for.
    fn forward(&mut self, tokenizer: &Tokenizer, on_event: &mut impl FnMut(RunEvent)) {
        let sent = self.streamed.len();
        let ahead = (0..self.reports.len())
            .filter(|&s| !self.ended[s] || self.reports[s].failure.is_none())
            .filter(|&s| self.agrees[s] && self.reports[s].tokens.len() > sent)
            .max_by_key(|&s| (self.reports[s].tokens.len(), std::cmp::Reverse(s)));
        let Some(leader) = ahead else { return };
        if sent == 0 {
            self.first_token = self.started.elapsed();
        }
        let tokens = &self.reports[leader].tokens;
        for (index, &token) in tokens.iter().enumerate().skip(sent) {
            on_event(RunEvent::Token { index: index as u32, token, piece: tokenizer.piece(token) });
        }
        self.streamed.extend_from_slice(&tokens[sent..]);
        // The others are checked against what they had already sent of the new tokens.
        for (slot, report) in self.reports.iter().enumerate() {
            let upto = report.tokens.len().min(self.streamed.len());
            if upto > sent && report.tokens[sent..upto] != self.streamed[sent..upto] {
                self.agrees[slot] = false;
            }
        }
    }
}

enum StreamEvent {
    Dialed,
    /// The provider's checked acknowledgement of the `Use`.
    Accepted([u8; 64]),
    Token(u32),
    /// The closing frame, its signature checked.
    Done(Hash256, u32, StopReason, [u8; 64]),
    /// The stream is over; `Some` says why it gave no answer.
    Ended(Option<String>),
}

/// A provider to reach, and where it was last seen listening.
struct Target<'a> {
    chain: &'a ChainClient,
    provider: &'a AccountId,
    known: Option<Location>,
}

/// Where a stream's events go: the call's one channel, tagged with the stream's slot. Sending
/// waits while the channel is full, so a provider streams no faster than the call reads.
struct Events<'a> {
    slot: usize,
    sender: &'a mpsc::Sender<(usize, StreamEvent)>,
}

impl Events<'_> {
    async fn send(&self, event: StreamEvent) {
        // The call stopped listening: the stream is being dropped with it.
        let _ = self.sender.send((self.slot, event)).await;
    }
}

/// What one provider is asked for: the first frame, what it must sign, and how many tokens.
type Asked<'a> = (&'a InferOpen, &'a Authorised, u32);

/// Follows one provider's stream. A provider with every slot, its queue or this peer's streams
/// taken refuses with `Busy` (or drops the stream unread) before it takes the job: the stream
/// is opened again after a pause, until the first-token timeout, so a burst of calls queues
/// instead of failing. Asking again is safe: the same signed `Use` is served once, or replayed.
async fn stream_from(target: Target<'_>, net: &Network, asked: Asked<'_>, timeouts: &Timeouts, events: Events<'_>) -> Result<(), String> {
    let location = match target.known.clone() {
        Some(location) => location,
        None => {
            let record = target.chain.provider(target.provider).await.map_err(|e| e.to_string())?.ok_or("not registered")?;
            location(&record).map_err(|e| e.to_string())?
        },
    };
    let give_up = Instant::now() + timeouts.first_token.min(timeouts.total);
    let mut pause = BUSY_PAUSE;
    loop {
        match stream_once(target.provider, &location, net, asked, timeouts, &events).await {
            Err(Failure::Busy(why)) if Instant::now() + pause < give_up => {
                tracing::debug!(provider = %target.provider, reason = %why, "busy; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BUSY_PAUSE * 8);
            },
            Err(Failure::Busy(why) | Failure::Other(why)) => return Err(why),
            Ok(()) => return Ok(()),
        }
    }
}

/// The first pause before a busy provider is asked again; it doubles, up to eight times this.
const BUSY_PAUSE: Duration = Duration::from_millis(100);

enum Failure {
    /// Refused or dropped before it took the job, for want of capacity.
    Busy(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Self::Other(why)
    }
}

async fn stream_once(
    provider: &AccountId,
    location: &Location,
    net: &Network,
    (open, authorised, max_tokens): Asked<'_>,
    timeouts: &Timeouts,
    events: &Events<'_>,
) -> Result<(), Failure> {
    let mut call = InferCall::open(net, location, timeouts.first_token).await.map_err(|e| e.to_string())?;
    events.send(StreamEvent::Dialed).await;
    // A provider whose accept queue was full drops the stream unread (libp2p-stream queues one
    // stream per peer): as good as `Busy`, until it acknowledged.
    call.send(open).await.map_err(|e| Failure::Busy(format!("the stream was dropped unread: {e}")))?;
    let signed_by_provider = |signature: &[u8; 64], payload: Vec<u8>| agora_chain_client::signed_by(&provider.0, signature, &payload);
    let mut acknowledged = false;
    let mut wait = timeouts.first_token;
    let mut streamed = 0u32;
    let result = loop {
        // Up to the first token the provider may be queueing or prefilling; then it streams.
        match call.next(wait).await {
            Err(e) if !acknowledged && !matches!(e, StreamError::Timeout(_)) => break Err(Failure::Busy(format!("the stream was dropped unread: {e}"))),
            Ok(None) if !acknowledged => break Err(Failure::Busy("the stream was closed unread".into())),
            Err(e) => break Err(e.to_string().into()),
            Ok(None) => break Ok(()),
            Ok(Some(InferFrame::Accepted { signature })) if !acknowledged => {
                if !signed_by_provider(&signature, authorised.ack_payload()) {
                    break Err("its acknowledgement is not signed by its account".to_string().into());
                }
                acknowledged = true;
                events.send(StreamEvent::Accepted(signature)).await;
            },
            Ok(Some(InferFrame::Accepted { .. })) => break Err("it acknowledged the request twice".to_string().into()),
            Ok(Some(InferFrame::Token { .. } | InferFrame::Done { .. })) if !acknowledged => {
                break Err("it answered without acknowledging the request".to_string().into());
            },
            Ok(Some(InferFrame::Token { .. })) if streamed == max_tokens => {
                break Err(format!("it sent more than the {max_tokens} tokens asked for").into());
            },
            Ok(Some(InferFrame::Token { token, .. })) => {
                wait = timeouts.stall;
                streamed += 1;
                events.send(StreamEvent::Token(token)).await;
            },
            Ok(Some(InferFrame::Done { output_hash, token_count, stop, signature })) => {
                let outcome = Outcome { output_hash, token_count };
                if !signed_by_provider(&signature, authorised.outcome_payload(&outcome)) {
                    break Err("its result is not signed by its account".to_string().into());
                }
                events.send(StreamEvent::Done(output_hash, token_count, stop, signature)).await;
                break Ok(());
            },
            Ok(Some(InferFrame::Error { kind, message })) => {
                let why = format!("refused ({kind:?}): {}", String::from_utf8_lossy(&message));
                break Err(if kind == InferErrorKind::Busy && !acknowledged { Failure::Busy(why) } else { Failure::Other(why) });
            },
        }
    };
    call.close().await;
    result
}
