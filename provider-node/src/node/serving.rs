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
    }
}

/// A request is served only under its client's signature, and only to the peer the client
/// signed for: the one on the other end of this (Noise-authenticated) stream.
fn check_authorised(authorised: &Use, signature: &[u8; 64], peer: &PeerId, client: &[u8; 32]) -> Result<(), Refusal> {
    if authorised.client_peer.len() > MAX_PEER_ID_BYTES || authorised.client_peer != peer.to_bytes() {
        return Err((InferErrorKind::Unauthorized, "the request names another peer than the one that sent it".into()));
    }
    if !agora_chain_client::signed_by(client, signature, &authorised.signing_payload()) {
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
        let mut frames = match self.admit(request, peer).await {
            Ok(frames) => frames,
            Err(refusal) => return self.refuse(stream, refusal).await,
        };
        while let Some(frame) = frames.recv().await {
            let last = matches!(frame, InferFrame::Done { .. } | InferFrame::Error { .. });
            if infer::send(stream, &frame).await.is_err() || last {
                break;
            }
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
        let authorised = request.authorised_use();
        check_authorised(&authorised, &request.signature, &peer, &record.params.client)?;
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

        let (tx, rx) = mpsc::unbounded_channel();
        if record.output.is_some() {
            self.replay(&record, &authorised, &tx);
            return Ok(rx);
        }
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return Err((InferErrorKind::AlreadyServed, format!("request {id} is already being generated")));
        }
        let record = JobRecord { state: JobState::PromptReceived, prompt: Some(request.prompt), ..record };
        let checked = started.elapsed();
        let result = self.clone().generate(record, Some(jobs::Client { frames: tx, authorised }));
        if result.is_err() {
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
        tracing::debug!(request = id, asked_chain, ?checked, admitted_in = ?started.elapsed(), "admitted");
        result.map(|()| rx)
    }

    /// Streams a finished job's journaled output again (a client that reconnects), under the
    /// `Use` it came back with.
    pub(super) fn replay(&self, record: &JobRecord, authorised: &Use, tx: &mpsc::UnboundedSender<InferFrame>) {
        let (Some(output), Some(outcome)) = (&record.output, &record.outcome) else { return };
        let _ = tx.send(InferFrame::Accepted { signature: self.signer.sign(&authorised.ack_payload()).0 });
        for (index, &token) in output.iter().enumerate() {
            let _ = tx.send(InferFrame::Token { index: index as u32, token, piece: self.engine.piece(token) });
        }
        let stop = record.stop.unwrap_or(agora_primitives::wire::StopReason::MaxTokens);
        let _ = tx.send(self.done(authorised, outcome, stop));
    }

}
