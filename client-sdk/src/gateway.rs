//! An OpenAI-compatible HTTP gateway: `/v1/models`, `/v1/completions` and
//! `/v1/chat/completions` (with SSE streaming), each call paid and verified through the
//! marketplace with the gateway's own k and price limit. The request id and output hash come
//! back in `x-agora-request-id` / `x-agora-output-hash` headers (streamed responses carry the
//! request id as a header and both in an `agora` object of the last chunk). With `tickets` set,
//! calls are served from ticket pools (one per model, bought ahead): no transaction before
//! the first token, the answer verified by its providers' signed outcomes (or, with no
//! majority, by the verifiers of its fallback), and the headers name the ticket
//! (`x-agora-ticket-id`).
//!
//! It answers only for the hosts it is told (loopback and `allowed_hosts`) and, with an
//! `api_key`, only to calls that carry it; a parameter it would not honour is refused by name.

mod access;
mod params;

use crate::error::ClientError;
use crate::models::text;
use crate::run::{Job, Prompt, RunEvent, RunResult};
use crate::tickets::{PoolConfig, TicketAnswer, TicketPool};
use crate::{ChatTurn, Client};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use params::{refuse_unsupported, ApiError, ChatBody, CompletionBody, Options};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What every call through the gateway may spend and how sure it must be.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub k: u32,
    pub max_price_per_1k: Option<u128>,
    /// The most tokens one call may ask for.
    pub max_tokens_limit: u32,
    pub commit_blocks: u32,
    /// Serve calls from ticket pools bought ahead (k ≥ 2), instead of a request each.
    pub tickets: Option<PoolConfig>,
    /// Calls must carry this as `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Host names the gateway answers for besides loopback (and the address it listens on).
    pub allowed_hosts: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { k: 3, max_price_per_1k: None, max_tokens_limit: 512, commit_blocks: 20, tickets: None, api_key: None, allowed_hosts: Vec::new() }
    }
}

struct Gateway {
    client: Arc<Client>,
    config: GatewayConfig,
    /// One ticket pool per model name a caller used, made at its first call.
    pools: tokio::sync::Mutex<BTreeMap<String, TicketPool>>,
}

/// A call's answer: from a request of its own, or from a pooled ticket.
enum Answer {
    Request(RunResult),
    Ticket(TicketAnswer),
}

/// What a call's response ids and headers name: its request or its ticket.
#[derive(Clone, Copy)]
enum Named {
    Request(u64),
    Ticket(u64),
}

impl Named {
    /// `42` for a request, `ticket-42` for a ticket.
    fn id(self) -> String {
        match self {
            Self::Request(request) => request.to_string(),
            Self::Ticket(ticket) => format!("ticket-{ticket}"),
        }
    }

    fn header(self) -> (&'static str, HeaderValue) {
        match self {
            Self::Request(request) => ("x-agora-request-id", HeaderValue::from(request)),
            Self::Ticket(ticket) => ("x-agora-ticket-id", HeaderValue::from(ticket)),
        }
    }
}

impl Answer {
    fn named(&self) -> Named {
        match self {
            Self::Request(r) => Named::Request(r.request),
            Self::Ticket(t) => Named::Ticket(t.ticket),
        }
    }

    /// Why the answer may not be given as the marketplace's: a ticket's providers did not
    /// agree and its verifiers accepted none of their answers.
    fn unverified(&self) -> Option<String> {
        match self {
            Self::Ticket(t) if !t.verified => {
                let failures: Vec<String> = t.providers.iter().filter_map(|p| Some(format!("{}: {}", p.provider, p.failure.as_deref()?))).collect();
                Some(format!(
                    "ticket {}: only {} of its {} providers signed one answer, and its verifiers accepted none of them{}{}",
                    t.ticket,
                    t.agreeing,
                    t.providers.len(),
                    if failures.is_empty() { "" } else { "; " },
                    failures.join("; "),
                ))
            },
            _ => None,
        }
    }

    fn text(&self) -> &str {
        match self {
            Self::Request(r) => &r.text,
            Self::Ticket(t) => &t.text,
        }
    }

    fn usage(&self) -> Value {
        let (prompt, tokens) = match self {
            Self::Request(r) => (&r.prompt, &r.tokens),
            Self::Ticket(t) => (&t.prompt, &t.tokens),
        };
        usage(prompt.len() as u32, tokens.len() as u32)
    }

    fn finish_reason(&self, max_tokens: u32) -> &'static str {
        let tokens = match self {
            Self::Request(r) => r.tokens.len(),
            Self::Ticket(t) => t.tokens.len(),
        };
        if tokens as u32 >= max_tokens {
            "length"
        } else {
            "stop"
        }
    }

    /// The whole answer again when the streamed tokens were outvoted.
    fn correction(&self) -> Option<&str> {
        let corrected = match self {
            Self::Request(r) => r.stream_corrected,
            Self::Ticket(t) => t.stream_corrected,
        };
        corrected.then(|| self.text())
    }

    fn output_hash(&self) -> [u8; 32] {
        match self {
            Self::Request(r) => r.output_hash,
            Self::Ticket(t) => t.output_hash,
        }
    }

    fn summary(&self) -> Value {
        match self {
            Self::Request(result) => json!({
                "request": result.request,
                "output_hash": hex::encode(result.output_hash),
                "verified": result.verified,
                "agreeing": result.agreeing,
                "receipt": result.receipt.as_ref().map(crate::report::ReceiptView::from),
            }),
            Self::Ticket(answer) => json!({
                "ticket": answer.ticket,
                "output_hash": hex::encode(answer.output_hash),
                "verified": answer.verified,
                "agreeing": answer.agreeing,
            }),
        }
    }
}

pub fn router(client: Arc<Client>, config: GatewayConfig) -> Router {
    let access = Arc::new(access::Access::new(config.api_key.clone(), &config.allowed_hosts));
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(Arc::new(Gateway { client, config, pools: Default::default() }))
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
}

/// Serves the gateway on `listener` until the future is dropped; it also answers for the
/// address it listens on.
pub async fn serve(listener: tokio::net::TcpListener, client: Arc<Client>, mut config: GatewayConfig) -> std::io::Result<()> {
    let ip = listener.local_addr()?.ip();
    if !ip.is_unspecified() {
        config.allowed_hosts.push(ip.to_string());
    }
    axum::serve(listener, router(client, config)).await
}

fn error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response {
    ApiError::new(status, kind, message).into_response()
}

fn client_error(e: ClientError) -> Response {
    use ClientError::*;
    let status = match &e {
        UnknownModel(_) | Revoked(_) | ModelFileMissing { .. } => StatusCode::NOT_FOUND,
        BadModelRef(_) | EmptyPrompt | ZeroMaxTokens | SamplingOutOfRange { .. } | BadRedundancy { .. } | TicketsNeedMajority(_) | PromptTooLong { .. } | TokenOutOfVocabulary { .. } | Tokenizer(_) => {
            StatusCode::BAD_REQUEST
        },
        NotEnoughProviders { .. } | NoCapacity { .. } | PriceTooLow { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ExceedsTicket { .. } => StatusCode::BAD_REQUEST,
        TicketPurchase(_) => StatusCode::SERVICE_UNAVAILABLE,
        InsufficientFunds { .. } => StatusCode::PAYMENT_REQUIRED,
        NoAnswer(_) | TicketNoAnswer(_) | SettlementTimeout { .. } | NotAssigned { .. } => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let kind = if status.is_client_error() { "invalid_request_error" } else { "marketplace_error" };
    error(status, kind, e)
}

async fn models(State(gw): State<Arc<Gateway>>) -> Response {
    let providers = match gw.client.providers(None).await {
        Ok(p) => p,
        Err(e) => return client_error(e),
    };
    let mut releases = BTreeMap::new();
    for (_, record) in providers.iter().filter(|(_, r)| r.status == agora_chain_client::types::ProviderStatus::Online) {
        for offer in &record.manifest.offers.0 {
            releases.insert(offer.release, ());
        }
    }
    let mut data = Vec::new();
    for id in releases.keys() {
        if let Ok(Some(release)) = gw.client.chain().release(*id).await {
            data.push(json!({
                "id": text(&release.info.family.0),
                "object": "model",
                "created": release.published_at,
                "owned_by": release.publisher.to_string(),
                "agora_release": hex::encode(id),
                "agora_version": text(&release.info.version.0),
            }));
        }
    }
    Json(json!({ "object": "list", "data": data })).into_response()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Completion,
    Chat,
}

impl Gateway {
    fn job(&self, model: &str, prompt: Prompt, max_tokens: Option<u32>, temperature: Option<f64>, top_p: Option<f64>) -> Result<Job, Response> {
        let model = model.parse().map_err(client_error)?;
        let max_tokens = max_tokens.unwrap_or(16);
        if max_tokens > self.config.max_tokens_limit {
            return Err(error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("max_tokens is limited to {} here", self.config.max_tokens_limit)));
        }
        let sampling = params::sampling(temperature, top_p).map_err(IntoResponse::into_response)?;
        let mut job = Job::new(model, prompt);
        job.max_tokens = max_tokens;
        job.k = self.config.k;
        job.max_price_per_1k = self.config.max_price_per_1k;
        job.commit_blocks = self.config.commit_blocks;
        job.sampling.temperature_milli = sampling.temperature_milli;
        job.sampling.top_p_milli = sampling.top_p_milli;
        Ok(job)
    }

    /// The pool of tickets for `model`, made (and its first tickets bought) at the first call
    /// that names it.
    async fn pool(&self, model: &str, job: &Job, config: &PoolConfig) -> Result<TicketPool, ClientError> {
        let mut pools = self.pools.lock().await;
        if let Some(pool) = pools.get(model) {
            return Ok(pool.clone());
        }
        let template = Job { max_tokens: self.config.max_tokens_limit, ..job.clone() };
        let pool = self.client.ticket_pool(&template, config.clone()).await?;
        pools.insert(model.to_string(), pool.clone());
        Ok(pool)
    }

    /// Starts the call's run: from a pooled ticket, or as a request of its own, checked
    /// (model, prompt, providers, price, funds) before anything is paid.
    async fn start(self: &Arc<Self>, model: &str, job: Job, events: mpsc::UnboundedSender<RunEvent>) -> Result<tokio::task::JoinHandle<Result<Answer, ClientError>>, ClientError> {
        if let Some(config) = &self.config.tickets {
            let pool = self.pool(model, &job, config).await?;
            return Ok(tokio::spawn(async move {
                let mut answer = pool.run(&job.prompt, job.max_tokens, &job.sampling, move |event| drop(events.send(event))).await?;
                if !answer.verified {
                    // As for a request's split vote, the call waits for the verifiers' verdict.
                    pool.see_dispute_through(&mut answer).await?;
                }
                Ok(Answer::Ticket(answer))
            }));
        }
        let prepared = self.client.prepare(&job).await?;
        let client = self.client.clone();
        Ok(tokio::spawn(async move { client.run_prepared(prepared, move |event| drop(events.send(event))).await.map(Answer::Request) }))
    }

    async fn answer(self: Arc<Self>, kind: Kind, model: String, job: Job, stream: bool) -> Response {
        let (tx, mut rx) = mpsc::unbounded_channel::<RunEvent>();
        let run = match self.start(&model, job.clone(), tx).await {
            Ok(run) => run,
            Err(e) => return client_error(e),
        };
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if !stream {
            drop(rx);
            return match run.await {
                Ok(Ok(answer)) => match answer.unverified() {
                    Some(why) => error(StatusCode::BAD_GATEWAY, "marketplace_error", why),
                    None => full_response(kind, &model, created, job.max_tokens, &answer),
                },
                Ok(Err(e)) => client_error(e),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
            };
        }
        // Streaming: the headers wait for the escrow or the ticket, so that they can name it.
        let named = loop {
            match rx.recv().await {
                Some(RunEvent::Escrowed { request, .. }) => break Named::Request(request),
                Some(RunEvent::Ticket { ticket, .. }) => break Named::Ticket(ticket),
                Some(_) => continue,
                None => {
                    return match run.await {
                        Ok(Err(e)) => client_error(e),
                        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the run ended before its escrow"),
                    }
                },
            }
        };
        let id = format!("{}-{}", if kind == Kind::Chat { "chatcmpl" } else { "cmpl" }, named.id());
        let object = if kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" };
        let chunk = move |id: &str, model: &str, choice: Value| json!({ "id": id, "object": object, "created": created, "model": model, "choices": [choice] });
        let (sse_tx, sse_rx) = mpsc::unbounded_channel::<Event>();
        let max_tokens = job.max_tokens;
        tokio::spawn(async move {
            let send = |value: Value| sse_tx.send(Event::default().data(value.to_string())).is_ok();
            if kind == Kind::Chat {
                send(chunk(&id, &model, json!({ "index": 0, "delta": { "role": "assistant", "content": "" }, "finish_reason": null })));
            }
            let mut pending = Vec::new();
            while let Some(event) = rx.recv().await {
                if let RunEvent::Token { piece, .. } = event {
                    pending.extend_from_slice(&piece);
                    let text = take_utf8(&mut pending);
                    if text.is_empty() {
                        continue;
                    }
                    let choice = match kind {
                        Kind::Chat => json!({ "index": 0, "delta": { "content": text }, "finish_reason": null }),
                        Kind::Completion => json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": null }),
                    };
                    if !send(chunk(&id, &model, choice)) {
                        break;
                    }
                }
            }
            let last = match run.await {
                Ok(Ok(answer)) if answer.unverified().is_some() => {
                    json!({ "error": { "message": answer.unverified(), "type": "marketplace_error" } })
                },
                Ok(Ok(answer)) => {
                    let finish = answer.finish_reason(max_tokens);
                    let mut choice = match kind {
                        Kind::Chat => json!({ "index": 0, "delta": {}, "finish_reason": finish }),
                        Kind::Completion => json!({ "index": 0, "text": "", "logprobs": null, "finish_reason": finish }),
                    };
                    if let Some(correction) = answer.correction() {
                        choice["agora_corrected_text"] = json!(correction);
                    }
                    let mut value = chunk(&id, &model, choice);
                    value["usage"] = answer.usage();
                    value["agora"] = answer.summary();
                    value
                },
                Ok(Err(e)) => json!({ "error": { "message": e.to_string(), "type": "marketplace_error" } }),
                Err(e) => json!({ "error": { "message": e.to_string(), "type": "internal_error" } }),
            };
            send(last);
            let _ = sse_tx.send(Event::default().data("[DONE]"));
        });
        let events = futures::stream::unfold(sse_rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, std::convert::Infallible>(e), rx)) });
        let mut response = Sse::new(events).into_response();
        let (header, value) = named.header();
        response.headers_mut().insert(header, value);
        response
    }
}

/// The longest valid UTF-8 prefix of `pending`, removed from it (a character split across
/// tokens waits for its other bytes).
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(pending) {
        Ok(s) => s.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => {
            let text = String::from_utf8_lossy(pending).into_owned();
            pending.clear();
            return text;
        },
    };
    let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
    pending.drain(..valid);
    text
}

fn usage(prompt: u32, completion: u32) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

fn full_response(kind: Kind, model: &str, created: u64, max_tokens: u32, answer: &Answer) -> Response {
    let finish = answer.finish_reason(max_tokens);
    let mut body = match kind {
        Kind::Chat => json!({
            "id": format!("chatcmpl-{}", answer.named().id()),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": answer.text() }, "finish_reason": finish }],
        }),
        Kind::Completion => json!({
            "id": format!("cmpl-{}", answer.named().id()),
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{ "index": 0, "text": answer.text(), "logprobs": null, "finish_reason": finish }],
        }),
    };
    body["usage"] = answer.usage();
    body["agora"] = answer.summary();
    let mut headers = HeaderMap::new();
    let (name, value) = answer.named().header();
    headers.insert(name, value);
    if let Ok(v) = HeaderValue::from_str(&hex::encode(answer.output_hash())) {
        headers.insert("x-agora-output-hash", v);
    }
    (headers, Json(body)).into_response()
}

async fn completions(State(gw): State<Arc<Gateway>>, body: Result<Json<CompletionBody>, axum::extract::rejection::JsonRejection>) -> Response {
    let Json(CompletionBody { model, prompt, options }) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e.body_text()),
    };
    gw.call(Kind::Completion, model, Prompt::Text(prompt), options.max_tokens, options).await
}

async fn chat_completions(State(gw): State<Arc<Gateway>>, body: Result<Json<ChatBody>, axum::extract::rejection::JsonRejection>) -> Response {
    let Json(ChatBody { model, messages, max_completion_tokens, options }) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e.body_text()),
    };
    let turns = messages.into_iter().map(|m| ChatTurn { role: m.role, content: m.content }).collect();
    gw.call(Kind::Chat, model, Prompt::Chat(turns), max_completion_tokens.or(options.max_tokens), options).await
}

impl Gateway {
    /// Checks a call's parameters and answers it.
    async fn call(self: Arc<Self>, kind: Kind, model: String, prompt: Prompt, max_tokens: Option<u32>, options: Options) -> Response {
        if let Err(refused) = refuse_unsupported(&options.other) {
            return refused.into_response();
        }
        match self.job(&model, prompt, max_tokens, options.temperature, options.top_p) {
            Ok(job) => self.answer(kind, model, job, options.stream).await,
            Err(response) => response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::take_utf8;

    #[test]
    fn a_character_split_across_tokens_waits_for_its_bytes() {
        let euro = "€".as_bytes();
        let mut pending = b"a".to_vec();
        pending.extend_from_slice(&euro[..2]);
        assert_eq!(take_utf8(&mut pending), "a");
        assert_eq!(pending, euro[..2]);
        pending.push(euro[2]);
        assert_eq!(take_utf8(&mut pending), "€");
        assert!(pending.is_empty());
        let mut broken = vec![b'x', 0xff, b'y'];
        assert_eq!(take_utf8(&mut broken), "x\u{fffd}y");
    }
}
