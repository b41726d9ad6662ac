//! The verifier service of a provider that opted in (`--verifier`): it judges the disputes it is
//! drawn for by re-scoring the disputed outputs with its own engine, and posts its verdict.
//!
//! Only hashes are on-chain, so the tokens come over `/agora/verify/1` from whoever holds them:
//! the request's client and its providers. Each push is checked against the chain (an open
//! dispute with this node drawn, the prompt's hash and length, every output matching a disputed
//! result) and kept; once every disputed output is here they are re-scored and the verdict goes
//! on-chain. Whoever should have brought an output and did not bears the doubt when the verdict
//! is due: a result nobody showed is rejected, except under a client's challenge, where the
//! challenger must show the output it challenges.

use super::{bounded, Inner};
use crate::net::frame;
use agora_chain_client::{agora, types, BlockNumber, Dispute};
use agora_primitives::wire::{token_hash, JudgedOutcome, VerifyErrorKind, VerifyReply, VerifyRequest, MAX_VERIFY_FRAME_BYTES};
use agora_primitives::{sampling_seed, Hash256, Outcome, RequestId};
use agora_verifier::rescore::{rescore, Claim, RescoreError};
use anyhow::{anyhow, Context};
use futures::{AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// A verdict due within this many blocks is cast with what has arrived: the transaction needs a
/// block or two to land.
const DUE_MARGIN: BlockNumber = 3;

/// What a verifier holds of one dispute it was drawn for.
#[derive(Default)]
pub(super) struct Collected {
    pub(super) prompt: Option<Vec<u32>>,
    pub(super) outputs: HashMap<Hash256, Vec<u32>>,
    /// Known from the dispute's announcement, before any data came.
    pub(super) verdict_deadline: Option<BlockNumber>,
    pub(super) judged: Option<Vec<JudgedOutcome>>,
}

type Refusal = (VerifyErrorKind, String);

fn outcome_of(o: &types::Outcome) -> Outcome {
    Outcome { output_hash: o.output_hash, token_count: o.token_count }
}

impl Inner {
    pub(super) async fn serve_verifications(self: Arc<Self>, mut incoming: libp2p_stream::IncomingStreams, mut stopping: watch::Receiver<bool>) {
        loop {
            let (peer, mut stream) = tokio::select! {
                next = incoming.next() => match next { Some(s) => s, None => return },
                _ = stopping.changed() => return,
            };
            let node = self.clone();
            tokio::spawn(async move {
                let reply = node.take_verification(peer, &mut stream).await;
                let reply = reply.unwrap_or_else(|(kind, message)| {
                    tracing::debug!(?kind, %message, "refusing a verification");
                    VerifyReply::Error { kind, message: message.into_bytes() }
                });
                let _ = frame::write(&mut stream, &reply).await;
                let _ = stream.close().await;
            });
        }
    }

    async fn take_verification(self: &Arc<Self>, peer: PeerId, stream: &mut libp2p::Stream) -> Result<VerifyReply, Refusal> {
        let read = tokio::time::timeout(super::REQUEST_TIMEOUT, frame::read::<VerifyRequest, _>(stream, MAX_VERIFY_FRAME_BYTES)).await;
        let push = match read {
            Ok(Ok(Some(push))) => push,
            Ok(Ok(None)) => return Err((VerifyErrorKind::Malformed, "the stream closed before a request".into())),
            Ok(Err(e)) => {
                self.network.disconnect(peer);
                return Err((VerifyErrorKind::Malformed, e.to_string()));
            },
            Err(_) => return Err((VerifyErrorKind::Malformed, "no request within 10 s".into())),
        };
        let id = push.request;
        let internal = |e: &dyn std::fmt::Display| (VerifyErrorKind::Internal, format!("{e:#}"));
        let dispute = self.chain.dispute(id).await.map_err(|e| internal(&e))?;
        let dispute = dispute.ok_or((VerifyErrorKind::NoDispute, format!("request {id} has no open dispute")))?;
        if !dispute.verifiers.0.contains(&self.account) {
            return Err((VerifyErrorKind::NotSelected, format!("this node is not among the verifiers drawn for request {id}")));
        }
        if let Some(verdicts) = self.verifications().get(&id).and_then(|c| c.judged.clone()) {
            return Ok(VerifyReply::Judged { verdicts });
        }
        let best = self.chain.best_block_number().await.map_err(|e| internal(&e))?;
        if best >= dispute.verdict_deadline {
            return Err((VerifyErrorKind::VerdictClosed, format!("the verdicts on request {id} were due by block {}", dispute.verdict_deadline)));
        }
        let request = self.chain.request(id).await.map_err(|e| internal(&e))?.ok_or_else(|| internal(&"the disputed request is gone"))?;
        let params = &request.params;
        if push.prompt.len() != params.prompt_tokens as usize || token_hash(&push.prompt) != params.prompt_hash {
            return Err((VerifyErrorKind::PromptMismatch, format!("the prompt ({} tokens) does not match the hash and length on-chain", push.prompt.len())));
        }
        let mut matched = Vec::with_capacity(push.outputs.len());
        for (i, output) in push.outputs.into_iter().enumerate() {
            let hash = token_hash(&output);
            if !dispute.outcomes.0.iter().any(|o| o.output_hash == hash && o.token_count as usize == output.len()) {
                return Err((VerifyErrorKind::UnknownOutput, format!("output {i} ({} tokens) is none of the disputed results", output.len())));
            }
            matched.push((hash, output));
        }
        let missing = {
            let mut all = self.verifications();
            let collected = all.entry(id).or_default();
            collected.prompt = Some(push.prompt);
            collected.verdict_deadline = Some(dispute.verdict_deadline);
            collected.outputs.extend(matched);
            dispute.outcomes.0.iter().filter(|o| !collected.outputs.contains_key(&o.output_hash)).count()
        };
        tracing::info!(request = id, missing, "verification data received");
        if missing > 0 {
            return Ok(VerifyReply::Waiting { missing: missing as u32 });
        }
        let verdicts = self.judge(id, &dispute).await.map_err(|e| internal(&e))?;
        Ok(VerifyReply::Judged { verdicts })
    }

    fn verifications(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Collected>> {
        self.verifications.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a dispute this node was drawn for, so its verdict is cast by the deadline even if
    /// nobody brings the data.
    pub(super) fn drawn(&self, request: RequestId, verdict_deadline: BlockNumber) {
        tracing::info!(request, verdict_deadline, "drawn to verify a dispute");
        self.verifications().entry(request).or_default().verdict_deadline = Some(verdict_deadline);
    }

    /// Casts the verdicts that are due (with the data at hand) and forgets closed disputes.
    pub(super) async fn verdicts_due(self: &Arc<Self>, best: BlockNumber) {
        let due: Vec<RequestId> = self
            .verifications()
            .iter()
            .filter(|(_, c)| c.judged.is_none() && c.verdict_deadline.is_some_and(|d| best + DUE_MARGIN >= d))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            match self.chain.dispute(id).await {
                Ok(Some(dispute)) if dispute.verifiers.0.contains(&self.account) && best < dispute.verdict_deadline => {
                    if let Err(e) = self.judge(id, &dispute).await {
                        self.chain_error("verdict", &format!("request {id}: {e:#}"));
                    }
                },
                Ok(_) => {
                    self.verifications().remove(&id);
                },
                Err(e) => self.chain_error("dispute", &e),
            }
        }
        // Judged disputes are kept (to answer late pushes) only while they are open.
        let closed: Vec<RequestId> =
            self.verifications().iter().filter(|(_, c)| c.verdict_deadline.is_some_and(|d| best > d + DUE_MARGIN)).map(|(id, _)| *id).collect();
        for id in closed {
            self.verifications().remove(&id);
        }
    }

    /// Re-scores every disputed output at hand and posts the verdict. An output nobody brought is
    /// rejected, unless the dispute is a challenge (then the challenger failed to show it).
    async fn judge(self: &Arc<Self>, id: RequestId, dispute: &Dispute) -> anyhow::Result<Vec<JudgedOutcome>> {
        // One judgement at a time: it competes with generation for the engine's slots anyway,
        // and two pushes completing one dispute at once must not vote twice.
        let _one_at_a_time = self.judging.lock().await;
        if let Some(verdicts) = self.verifications().get(&id).and_then(|c| c.judged.clone()) {
            return Ok(verdicts);
        }
        let request = self.chain.request(id).await?.ok_or_else(|| anyhow!("the disputed request {id} is gone"))?;
        let (prompt, outputs) = {
            let mut all = self.verifications();
            let collected = all.entry(id).or_default();
            (collected.prompt.clone(), collected.outputs.clone())
        };
        let challenged = matches!(dispute.kind, types::DisputeKind::Challenge { .. });
        let p = &request.params;
        let mut verdicts = Vec::with_capacity(dispute.outcomes.0.len());
        for disputed in &dispute.outcomes.0 {
            let outcome = outcome_of(disputed);
            let verdict = match (prompt.clone(), outputs.get(&outcome.output_hash).cloned()) {
                (Some(prompt), Some(output)) => {
                    let claim = Claim {
                        prompt,
                        output,
                        max_output_tokens: p.max_output_tokens,
                        sampling: super::sampling(&p.sampling),
                        seed: sampling_seed(id),
                    };
                    let node = self.clone();
                    match tokio::task::spawn_blocking(move || rescore(&node.engine, &claim)).await? {
                        Ok(v) => JudgedOutcome { outcome, accepted: v.accepted(), first_bad_position: v.rejection.map(|e| e.position) },
                        // A result no honest engine could have produced.
                        Err(RescoreError::TokenOutOfVocabulary { position, .. }) =>
                            JudgedOutcome { outcome, accepted: false, first_bad_position: Some(position as u32) },
                        Err(e @ (RescoreError::OutputTooLong { .. } | RescoreError::TooLong { .. })) => {
                            tracing::info!(request = id, error = %e, "a disputed output cannot be right");
                            JudgedOutcome { outcome, accepted: false, first_bad_position: None }
                        },
                        Err(e) => return Err(anyhow!("re-scoring failed: {e}")),
                    }
                },
                _ => JudgedOutcome { outcome, accepted: challenged, first_bad_position: None },
            };
            tracing::info!(request = id, accepted = verdict.accepted, first_bad = ?verdict.first_bad_position, tokens = outcome.token_count, "judged");
            verdicts.push(verdict);
        }
        if !self.chain.has_voted(id, &self.account).await? {
            let cast = verdicts
                .iter()
                .map(|v| types::OutcomeVerdict {
                    outcome: types::Outcome { output_hash: v.outcome.output_hash, token_count: v.outcome.token_count },
                    accepted: v.accepted,
                })
                .collect();
            match self.submit(&agora::tx().verifier().submit_verdict(id, bounded(cast))).await {
                Ok(_) => tracing::info!(request = id, "verdict posted"),
                Err(e) if e.rejection() == Some("Verifier::AlreadyVoted") => {},
                // The data stays for the next attempt, at the pass that finds the verdict due.
                Err(e) => return Err(e).context("posting the verdict"),
            }
        }
        self.verifications().entry(id).or_default().judged = Some(verdicts.clone());
        Ok(verdicts)
    }
}
