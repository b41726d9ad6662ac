//! Serving `/agora/infer/1`: a prompt is checked against the on-chain request (or the journaled
//! copy of its terms) before it runs; a finished job is replayed to a client that reconnects.

use super::*;
use agora_primitives::wire::MAX_PEER_ID_BYTES;

pub(super) fn kind_name(kind: InferErrorKind) -> &'static str {
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
        InferErrorKind::Unauthorized => "unauthorized",
        InferErrorKind::ExceedsTicket => "exceeds_ticket",
    }
}

/// A request or ticket is served only under its client's signature over `payload`, and only to
/// the peer the client signed for (`client_peer`): the one on the other end of this
/// (Noise-authenticated) stream.
pub(super) fn check_authorised(payload: &[u8], client_peer: &[u8], signature: &[u8; 64], peer: &PeerId, client: &[u8; 32]) -> Result<(), Refusal> {
    if client_peer.len() > MAX_PEER_ID_BYTES || client_peer != peer.to_bytes() {
        return Err((InferErrorKind::Unauthorized, "the request names another peer than the one that sent it".into()));
    }
    if !agora_chain_client::signed_by(client, signature, payload) {
        return Err((InferErrorKind::Unauthorized, "the request is not signed by its client's account".into()));
    }
    Ok(())
}

pub(super) fn sampling(params: &types::SamplingParams) -> SamplingParams {
    SamplingParams { temperature_milli: params.temperature_milli, top_k: params.top_k, top_p_milli: params.top_p_milli }
}

impl Inner {
    pub(super) async fn serve_inference(self: Arc<Self>, peer: PeerId, mut stream: libp2p::Stream, admission: Admission) -> libp2p::Stream {
        if admission == Admission::OverLimit {
            self.refuse(&mut stream, (InferErrorKind::Busy, "too many streams from this peer".into())).await;
        } else {
            self.handle_stream(peer, &mut stream).await;
        }
        stream
    }

    pub(super) async fn refuse(&self, stream: &mut libp2p::Stream, (kind, message): Refusal) {
        self.metrics.protocol_errors.get_or_create(&KindLabel { kind: kind_name(kind) }).inc();
        tracing::debug!(?kind, %message, "refusing an inference stream");
        infer::refuse(stream, kind, &message).await;
    }

    pub(super) async fn handle_stream(self: &Arc<Self>, peer: PeerId, stream: &mut libp2p::Stream) {
        let request = match infer::read_request(stream, REQUEST_TIMEOUT).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e @ StreamError::Timeout(_)) => return self.refuse(stream, (InferErrorKind::Malformed, e.to_string())).await,
            Err(e) => {
                // Broken framing: answer once, then drop the peer; the node serves the others.
                self.refuse(stream, (InferErrorKind::Malformed, e.to_string())).await;
                self.network.disconnect(peer);
                return;
            },
        };
        let admitted = match request {
            InferOpen::Request(request) => self.admit(request, peer).await,
            InferOpen::Ticket(request) => self.admit_ticket(request, peer).await,
        };
        let mut frames = match admitted {
            Ok(frames) => frames,
            Err(refusal) => return self.refuse(stream, refusal).await,
        };
        let mut tokens_sent = 0;
        while let Some(frame) = frames.recv().await {
            let last = matches!(frame, InferFrame::Done { .. } | InferFrame::Error { .. });
            if self.inject_faults(stream, &frame, tokens_sent).await.is_err() || infer::send(stream, &frame).await.is_err() || last {
                break;
            }
            tokens_sent += u32::from(matches!(frame, InferFrame::Token { .. }));
        }
    }

    /// The journal entry of a request assigned to this provider, built from chain state.
    pub(super) fn record_from_chain(&self, id: RequestId, request: &agora_chain_client::Request) -> JobRecord {
        let p = &request.params;
        let params = JobParams {
            client: request.client.0,
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
    pub(super) async fn admit(self: &Arc<Self>, request: InferRequest, peer: PeerId) -> Result<mpsc::UnboundedReceiver<InferFrame>, Refusal> {
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
        // Hashes the prompt once, for the signature check and the on-chain terms alike.
        let authorised = request.authorised_use(self.chain.genesis_hash());
        check_authorised(&authorised.signing_payload(), &authorised.client_peer, &request.signature, &peer, &record.params.client)?;
        if record.release != self.release || record.params.runtime_profile != self.profile_hash {
            return Err((InferErrorKind::UnsupportedRelease, "this provider does not serve that release and runtime profile".into()));
        }
        let params = &record.params;
        if authorised.prompt_tokens != params.prompt_tokens || authorised.prompt_hash != params.prompt_hash {
            return Err((
                InferErrorKind::PromptMismatch,
                format!("the prompt ({} tokens) does not match the hash and length on-chain", request.prompt.len()),
            ));
        }
        self.engine.validate_prompt(&request.prompt).map_err(|e| (InferErrorKind::PromptInvalid, e.to_string()))?;

        let authorised = Authorised::Request(authorised);
        if let (Some(output), Some(outcome)) = (&record.output, &record.outcome) {
            return Ok(self.replay(output, outcome, record.stop, &authorised));
        }
        let record = JobRecord { state: JobState::PromptReceived, prompt: Some(request.prompt), ..record };
        let checked = started.elapsed();
        let rx = self.start(jobs::Job::Request(record), authorised)?;
        tracing::debug!(request = id, asked_chain, ?checked, admitted_in = ?started.elapsed(), "admitted");
        Ok(rx)
    }

    /// Starts a checked job's generation for the client that sent it, unless it runs already.
    pub(super) fn start(self: &Arc<Self>, job: jobs::Job, authorised: Authorised) -> Result<mpsc::UnboundedReceiver<InferFrame>, Refusal> {
        let running = job.running();
        let (tx, rx) = mpsc::unbounded_channel();
        match self.launch(job, Some(jobs::Client { frames: tx, authorised }))? {
            true => Ok(rx),
            false => Err((InferErrorKind::AlreadyServed, format!("{running} is already being generated"))),
        }
    }

    /// Streams a finished job's journaled output again (a client that reconnects), under the
    /// `Use` it came back with.
    pub(super) fn replay(&self, output: &[u32], outcome: &Outcome, stop: Option<StopReason>, authorised: &Authorised) -> mpsc::UnboundedReceiver<InferFrame> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(InferFrame::Accepted { signature: self.signer.sign(&authorised.ack_payload()).0 });
        for (index, &token) in output.iter().enumerate() {
            let _ = tx.send(InferFrame::Token { index: index as u32, token, piece: self.engine.piece(token) });
        }
        let _ = tx.send(self.done(authorised, outcome, stop.unwrap_or(StopReason::MaxTokens)));
        rx
    }

}
