//! Disputes from the client's side: bringing the data to the drawn verifiers, waiting for their
//! resolution, and challenging a settled result.
//!
//! Only hashes are on-chain, so a verifier can judge a result only from the tokens someone brings
//! it. A client sees its split votes and audits through by bringing the prompt and every answer
//! it received (the providers bring their own too), and must bring the output it challenges.

use crate::error::{ClientError, Result};
use crate::run::status_name;
use crate::Client;
use agora_chain_client::{agora, types, AccountId, Receipt, Resolution};
use agora_primitives::wire::{token_hash, VerifyReply, VerifyRequest};
use std::time::Instant;

/// What brought a request before verifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeCause {
    /// The providers' results had no strict majority.
    SplitVote,
    /// A single-provider request drawn for a spot check.
    Audit,
    /// The client challenged the settled result.
    Challenge,
}

impl DisputeCause {
    fn of(kind: &types::DisputeKind<AccountId, u128>) -> Self {
        match kind {
            types::DisputeKind::SplitVote => Self::SplitVote,
            types::DisputeKind::Audit => Self::Audit,
            types::DisputeKind::Challenge { .. } => Self::Challenge,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SplitVote => "split vote",
            Self::Audit => "audit",
            Self::Challenge => "challenge",
        }
    }
}

/// How a dispute went: who judged, what this client brought them, what was decided.
#[derive(Clone, Debug)]
pub struct DisputeReport {
    pub request: u64,
    pub cause: DisputeCause,
    /// Each drawn verifier and how it took this client's data (its reply, or why it could not).
    pub deliveries: Vec<(AccountId, std::result::Result<VerifyReply, String>)>,
    pub resolution: Resolution,
    /// The request's receipt after the resolution (for a challenge, the original one).
    pub receipt: Option<Receipt>,
    pub status: types::RequestStatus,
}

impl DisputeReport {
    /// Whether the verifiers' majority accepted the result with this hash.
    pub fn accepted(&self, output_hash: &[u8; 32]) -> Option<bool> {
        self.resolution.decided.0.iter().find(|d| &d.outcome.output_hash == output_hash).map(|d| d.accepted)
    }

    /// A challenge whose result the verifiers rejected.
    pub fn upheld(&self) -> bool {
        self.cause == DisputeCause::Challenge && self.resolution.decided.0.first().is_some_and(|d| !d.accepted)
    }
}

impl Client {
    /// Brings `prompt` and `outputs` (the answers this client received) to the verifiers of
    /// `request`'s open dispute, then waits for its resolution. After the verdict window the
    /// client resolves it itself, so a silent verifier cannot hold the escrow.
    pub async fn see_dispute_through(&self, request: u64, prompt: &[u32], outputs: Vec<Vec<u32>>) -> Result<DisputeReport> {
        let mut deliveries = Vec::new();
        let mut cause = None;
        if let Some(dispute) = self.wait_verifiers_drawn(request).await? {
            cause = Some(DisputeCause::of(&dispute.kind));
            // Only the outputs under judgement: a verifier refuses any other.
            let outputs: Vec<Vec<u32>> = outputs
                .into_iter()
                .filter(|o| dispute.outcomes.0.iter().any(|d| d.output_hash == token_hash(o) && d.token_count as usize == o.len()))
                .collect();
            let push = VerifyRequest { request, prompt: prompt.to_vec(), outputs };
            let pushes = dispute.verifiers.0.iter().map(|verifier| async {
                let delivered = async {
                    let record = self.chain.provider(verifier).await.map_err(|e| e.to_string())?.ok_or("not registered")?;
                    let location = crate::location_of(&record).map_err(|e| e.to_string())?;
                    agora_net::verify::push(&self.net, &location, &push, self.timeouts.first_token).await.map_err(|e| e.to_string())
                };
                (verifier.clone(), delivered.await)
            });
            deliveries = futures::future::join_all(pushes).await;
            for (verifier, delivered) in &deliveries {
                tracing::info!(request, %verifier, ?delivered, "brought the data to a verifier");
            }
        }
        let resolution = self.wait_resolved(request).await?;
        let cause = cause.unwrap_or_else(|| DisputeCause::of(&resolution.kind));
        let r = self.chain.request(request).await?.ok_or(ClientError::UnknownRequest(request))?;
        Ok(DisputeReport { request, cause, deliveries, resolution, receipt: self.chain.receipt(request).await?, status: r.status })
    }

    /// The dispute once its verifiers are drawn (a block or two after it opened, from randomness
    /// nobody knew when it did), or `None` if it closed meanwhile (nobody was left to judge it).
    async fn wait_verifiers_drawn(&self, request: u64) -> Result<Option<agora_chain_client::Dispute>> {
        let deadline = Instant::now() + self.timeouts.assignment;
        let mut seen = 0;
        loop {
            match self.chain.dispute(request).await? {
                Some(dispute) if dispute.verifiers.0.is_empty() && Instant::now() < deadline => {
                    seen = self.next_block(seen.max(dispute.opened_at), deadline).await?;
                },
                other => return Ok(other),
            }
        }
    }

    /// Waits for `request`'s dispute to be resolved; past its verdict window, resolves it.
    async fn wait_resolved(&self, request: u64) -> Result<Resolution> {
        let deadline = Instant::now() + self.timeouts.settlement;
        let mut resolve_tried = false;
        let mut seen = 0;
        loop {
            if let Some(resolution) = self.chain.resolution(request).await? {
                return Ok(resolution);
            }
            let best = self.chain.best_block_number().await?;
            let Some(dispute) = self.chain.dispute(request).await? else {
                // Between the two reads the dispute may have closed.
                if let Some(resolution) = self.chain.resolution(request).await? {
                    return Ok(resolution);
                }
                return Err(ClientError::NoDispute(request));
            };
            if !resolve_tried && !dispute.verifiers.0.is_empty() && best > dispute.verdict_deadline {
                resolve_tried = true;
                let resolved = self.chain.submit(&agora::tx().verifier().resolve_dispute(request), &self.signer).await;
                if let Err(e) = resolved {
                    tracing::info!(error = %e, "resolve_dispute (someone may have resolved it first)");
                }
                continue;
            }
            if Instant::now() > deadline {
                let status = self.chain.request(request).await?.map(|r| status_name(r.status)).unwrap_or_default();
                return Err(ClientError::SettlementTimeout { request, seconds: self.timeouts.settlement.as_secs(), status });
            }
            seen = self.next_block(seen.max(best), deadline).await?;
        }
    }

    /// Challenges the settled result of this client's `request`: holds the chain's challenge
    /// bond, brings `prompt` and the `output` received to the drawn verifiers, and waits for
    /// their verdict. Upheld, the winners are slashed, the client is repaid from their stake and
    /// the bond comes back; rejected, the bond is lost. Everything is checked before the bond is
    /// held: the request is this client's and settled, and `prompt` and `output` are the ones
    /// its hashes name.
    pub async fn challenge(&self, request: u64, prompt: &[u32], output: &[u32]) -> Result<DisputeReport> {
        let r = self.chain.request(request).await?.ok_or(ClientError::UnknownRequest(request))?;
        if r.client != self.account() {
            return Err(ClientError::NotChallengeable { request, reason: "it is another account's request".into() });
        }
        let receipt = self.chain.receipt(request).await?;
        let winning = match (&r.status, receipt.as_ref().and_then(|x| x.winning.as_ref())) {
            (types::RequestStatus::Settled, Some(winning)) => winning.clone(),
            _ => return Err(ClientError::NotChallengeable { request, reason: format!("it is {} without a winning result", status_name(r.status)) }),
        };
        if prompt.len() != r.params.prompt_tokens as usize || token_hash(prompt) != r.params.prompt_hash {
            return Err(ClientError::NotChallengeable { request, reason: "the prompt is not the one its hash on-chain names".into() });
        }
        if output.len() != winning.token_count as usize || token_hash(output) != winning.output_hash {
            return Err(ClientError::NotChallengeable { request, reason: "the output is not the settled result".into() });
        }
        self.chain.submit(&agora::tx().verifier().challenge(request), &self.signer).await?;
        self.see_dispute_through(request, prompt, vec![output.to_vec()]).await
    }
}
