//! The verifier service of a provider that opted in (`--verifier`): it judges the disputes it is
//! drawn for by re-scoring the disputed outputs with its own engine, and posts its verdict.
//!
//! Only hashes are on-chain, so the tokens come over `/agora/verify/1` from whoever holds them:
//! the request's client and its providers. Each push is checked against the chain (an open
//! dispute with this node drawn, the prompt's hash and length, every output matching a disputed
//! result) and journaled before the reply; once every disputed output is here they are re-scored
//! and the verdict goes on-chain. Whoever should have brought an output and did not bears the doubt when the verdict
//! is due: a result nobody showed is rejected, except under a client's challenge, where the
//! challenger must show the output it challenges.

use super::Inner;
use crate::metrics::KindLabel;
use crate::journal::{JournalError, VerificationRecord};
use agora_net::limits::Admission;
use agora_net::StreamError;
use agora_chain_client::{agora, bounded, types, BlockNumber, Dispute, Rejection, VerifierError};
use agora_primitives::wire::{token_hash, JudgedOutcome, VerifyErrorKind, VerifyReply};
use agora_primitives::{sampling_seed, Outcome, RequestId};
use agora_verifier::rescore::{rescore, Claim, RescoreError};
use anyhow::{anyhow, Context};
use libp2p::PeerId;
use std::sync::Arc;

/// A verdict due within this many blocks is cast with what has arrived: the transaction needs a
/// block or two to land.
const DUE_MARGIN: BlockNumber = 3;

type Refusal = (VerifyErrorKind, String);

fn outcome_of(o: &types::Outcome) -> Outcome {
    Outcome { output_hash: o.output_hash, token_count: o.token_count }
}

impl Inner {
    pub(super) async fn serve_verification(self: Arc<Self>, peer: PeerId, mut stream: libp2p::Stream, admission: Admission) -> libp2p::Stream {
        let reply = if admission == Admission::OverLimit {
            Err((VerifyErrorKind::Busy, "too many streams from this peer".into()))
        } else {
            self.take_verification(peer, &mut stream).await
        };
        let reply = reply.unwrap_or_else(|(kind, message)| {
            tracing::debug!(?kind, %message, "refusing a verification");
            VerifyReply::Error { kind, message: message.into_bytes() }
        });
        let _ = agora_net::verify::reply(&mut stream, &reply).await;
        stream
    }

    async fn take_verification(self: &Arc<Self>, peer: PeerId, stream: &mut libp2p::Stream) -> Result<VerifyReply, Refusal> {
        let push = match agora_net::verify::read_request(stream, super::REQUEST_TIMEOUT).await {
            Ok(push) => push,
            Err(e @ (StreamError::Timeout(_) | StreamError::Closed)) => return Err((VerifyErrorKind::Malformed, e.to_string())),
            Err(e) => {
                self.network.disconnect(peer);
                return Err((VerifyErrorKind::Malformed, e.to_string()));
            },
        };
        let id = push.request;
        let internal = |e: &dyn std::fmt::Display| (VerifyErrorKind::Internal, format!("{e:#}"));
        let dispute = self.chain.dispute(id).await.map_err(|e| internal(&e))?;
        let dispute = dispute.ok_or((VerifyErrorKind::NoDispute, format!("request {id} has no open dispute")))?;
        if !dispute.verifiers.0.contains(&self.account) {
            return Err((VerifyErrorKind::NotSelected, format!("this node is not among the verifiers drawn for request {id}")));
        }
        if let Some(verdicts) = self.journal.verification(id).map_err(|e| internal(&e))?.and_then(|v| v.judged) {
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
        for (i, output) in push.outputs.iter().enumerate() {
            if !dispute.outcomes.0.iter().any(|o| o.output_hash == token_hash(output) && o.token_count as usize == output.len()) {
                return Err((VerifyErrorKind::UnknownOutput, format!("output {i} ({} tokens) is none of the disputed results", output.len())));
            }
        }
        let missing = self
            .update_verification(id, dispute.verdict_deadline, |record| {
                record.prompt = Some(push.prompt);
                for output in push.outputs {
                    if !record.outputs.contains(&output) {
                        record.outputs.push(output);
                    }
                }
                let held: Vec<_> = record.outputs.iter().map(|o| token_hash(o)).collect();
                dispute.outcomes.0.iter().filter(|o| !held.contains(&o.output_hash)).count()
            })
            .map_err(|e| internal(&e))?;
        tracing::info!(request = id, missing, "verification data received");
        if missing > 0 {
            return Ok(VerifyReply::Waiting { missing: missing as u32 });
        }
        let verdicts = self.judge(id, &dispute).await.map_err(|e| internal(&e))?;
        Ok(VerifyReply::Judged { verdicts })
    }

    /// Changes the journaled verification of `request` (created if new) under one lock, so two
    /// pushes at once cannot lose each other's outputs.
    fn update_verification<R>(
        &self,
        request: RequestId,
        verdict_deadline: BlockNumber,
        change: impl FnOnce(&mut VerificationRecord) -> R,
    ) -> Result<R, JournalError> {
        let _one_at_a_time = self.verifying.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = self.journal.verification(request)?.unwrap_or(VerificationRecord { request, ..Default::default() });
        record.verdict_deadline = verdict_deadline;
        let result = change(&mut record);
        self.journal.put_verification(&record)?;
        Ok(result)
    }

    /// Notes a dispute this node was drawn for, so its verdict is cast by the deadline even if
    /// nobody brings the data.
    pub(super) fn drawn(&self, request: RequestId, verdict_deadline: BlockNumber) -> Result<(), JournalError> {
        tracing::info!(request, verdict_deadline, "drawn to verify a dispute");
        self.update_verification(request, verdict_deadline, |_| ())
    }

    /// Casts the verdicts that are due (with the data at hand) and forgets disputes that are over.
    pub(super) async fn verdicts_due(self: &Arc<Self>, best: BlockNumber) -> anyhow::Result<()> {
        for record in self.journal.verifications()? {
            let id = record.request;
            if best > record.verdict_deadline + DUE_MARGIN {
                // Kept past the deadline only to answer late pushes with the verdict.
                self.journal.remove_verification(id)?;
                continue;
            }
            if record.judged.is_some() || best + DUE_MARGIN < record.verdict_deadline {
                continue;
            }
            match self.chain.dispute(id).await? {
                Some(dispute) if dispute.verifiers.0.contains(&self.account) && best < dispute.verdict_deadline => {
                    if let Err(e) = self.judge(id, &dispute).await {
                        self.chain_error("verdict", &format!("request {id}: {e:#}"));
                    }
                },
                _ => self.journal.remove_verification(id)?,
            }
        }
        Ok(())
    }

    /// Re-scores every disputed output at hand and posts the verdict. An output nobody brought is
    /// rejected, unless the dispute is a challenge (then the challenger failed to show it).
    async fn judge(self: &Arc<Self>, id: RequestId, dispute: &Dispute) -> anyhow::Result<Vec<JudgedOutcome>> {
        // One judgement at a time: it competes with generation for the engine's slots anyway,
        // and two pushes completing one dispute at once must not vote twice.
        let _one_at_a_time = self.judging.lock().await;
        let held = self.journal.verification(id)?.unwrap_or(VerificationRecord { request: id, ..Default::default() });
        if let Some(verdicts) = held.judged {
            return Ok(verdicts);
        }
        let request = self.chain.request(id).await?.ok_or_else(|| anyhow!("the disputed request {id} is gone"))?;
        let challenged = matches!(dispute.kind, types::DisputeKind::Challenge { .. });
        let p = &request.params;
        // A request a ticket fell back to was generated with the ticket's seed.
        let seed = match self.chain.ticket_origin(id).await? {
            Some((ticket, _)) => agora_primitives::ticket_sampling_seed(ticket),
            None => sampling_seed(id),
        };
        let mut verdicts = Vec::with_capacity(dispute.outcomes.0.len());
        for disputed in &dispute.outcomes.0 {
            let outcome = outcome_of(disputed);
            let output = held.outputs.iter().find(|o| token_hash(o) == outcome.output_hash && o.len() == outcome.token_count as usize);
            let verdict = match (held.prompt.clone(), output.cloned()) {
                (Some(prompt), Some(output)) => {
                    let claim = Claim {
                        prompt,
                        output,
                        max_output_tokens: p.max_output_tokens,
                        sampling: super::serving::sampling(&p.sampling),
                        seed,
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
                .collect::<Vec<_>>();
            match self.submit(&agora::tx().verifier().submit_verdict(id, bounded(cast))).await {
                Ok(_) => {
                    tracing::info!(request = id, "verdict posted");
                    for v in &verdicts {
                        self.metrics.verdicts.get_or_create(&KindLabel { kind: if v.accepted { "accepted" } else { "rejected" } }).inc();
                    }
                },
                Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::AlreadyVoted)) => {},
                // The data stays for the next attempt, at the pass that finds the verdict due.
                Err(e) => return Err(e).context("posting the verdict"),
            }
        }
        self.update_verification(id, dispute.verdict_deadline, |record| record.judged = Some(verdicts.clone()))?;
        Ok(verdicts)
    }
}
