//! Serving tickets: a `Use` is checked against the ticket as the chain drew it (journaled when
//! the chain worker read the draw), with no chain call on the way to the first token; the
//! prompt is journaled before the acknowledgement and the result before the signed outcome.
//! Afterwards the chain worker claims the share a settlement held for this provider, or expires
//! a ticket nobody used for its reservation fee. A ticket it served that nobody settles from a
//! bundle it falls back to commit–reveal after the grace past its expiry (a buyer who never
//! settles still pays per token), and it proves a second `Use` its buyer signed.

use super::*;
use agora_chain_client::{FellBackTicket, Signature, SignedOutcome, Ticket};
use codec::{Decode, Encode};
use super::serving::check_authorised;
use crate::journal::JournalError;

type TicketStatus = agora_chain_client::TicketStatus;

impl Inner {
    /// Checks a ticket's `Use` and starts (or replays) its generation.
    pub(super) async fn admit_ticket(self: &Arc<Self>, request: TicketRequest, peer: PeerId) -> Result<mpsc::UnboundedReceiver<InferFrame>, Refusal> {
        let TicketRequest { authorised, prompt, signature } = request;
        let id = authorised.ticket;
        let mut job = match self.journal.ticket(id).map_err(|e| internal(&e))? {
            Some(job) => job,
            // The client saw the draw before this node's chain worker did.
            None => self.ticket_from_chain(id).await?,
        };
        if job.state == TicketState::Closed {
            return Err((InferErrorKind::UnknownRequest, format!("ticket {id} is used up or expired")));
        }
        if authorised.chain != self.chain.genesis_hash() {
            return Err((InferErrorKind::Unauthorized, format!("the Use of ticket {id} is signed for another chain")));
        }
        check_authorised(&authorised.signing_payload(), &authorised.client_peer, &signature, &peer, &job.buyer)?;
        if job.spec.release != self.release || job.spec.runtime_profile != self.profile_hash {
            return Err((InferErrorKind::UnsupportedRelease, "this provider does not serve that release and runtime profile".into()));
        }
        if !job.admits(&authorised) {
            return Err((InferErrorKind::ExceedsTicket, format!("the Use asks for more than ticket {id} was bought for")));
        }
        if authorised.prompt_tokens as usize != prompt.len() || authorised.prompt_hash != agora_primitives::wire::token_hash(&prompt) {
            return Err((InferErrorKind::PromptMismatch, format!("the prompt ({} tokens) does not match its Use", prompt.len())));
        }
        let seen = self.journal.last_block().map_err(|e| internal(&e))?.unwrap_or(0);
        if seen > job.expires_at {
            return Err((InferErrorKind::UnknownRequest, format!("ticket {id} expired at block {}", job.expires_at)));
        }
        self.engine.validate_prompt(&prompt).map_err(|e| (InferErrorKind::PromptInvalid, e.to_string()))?;
        match &job.authorised {
            Some(served) if *served != authorised => {
                return Err((InferErrorKind::AlreadyServed, format!("ticket {id} already serves another Use")));
            },
            Some(_) => {
                if let (Some(output), Some(outcome)) = (&job.output, &job.outcome) {
                    return Ok(self.replay(output, outcome, job.stop, &Authorised::Ticket(authorised)));
                }
            },
            None => {
                job.state = TicketState::PromptReceived;
                (job.authorised, job.prompt, job.buyer_signature) = (Some(authorised.clone()), Some(prompt), Some(signature));
            },
        }
        self.start(jobs::Job::Ticket(job), Authorised::Ticket(authorised))
    }

    async fn ticket_from_chain(&self, id: TicketId) -> Result<TicketJob, Refusal> {
        let ticket = self
            .chain
            .ticket(id)
            .await
            .map_err(|e| internal(&format!("chain unavailable: {e}")))?
            .ok_or((InferErrorKind::UnknownRequest, format!("ticket {id} does not exist on-chain")))?;
        if ticket.status != TicketStatus::Drawn {
            return Err((InferErrorKind::UnknownRequest, format!("ticket {id} is not usable ({:?})", ticket.status)));
        }
        self.drawn_job(id, &ticket).ok_or((InferErrorKind::NotAssigned, format!("this provider is not drawn for ticket {id}")))
    }

    /// The journal entry of a drawn ticket, if this provider is among its providers.
    fn drawn_job(&self, id: TicketId, ticket: &Ticket) -> Option<TicketJob> {
        let position = ticket.providers.0.iter().position(|p| *p == self.account)?;
        let s = &ticket.spec;
        let spec = agora_primitives::TicketSpec {
            release: s.release,
            runtime_profile: s.runtime_profile,
            redundancy: s.redundancy,
            max_prompt_tokens: s.max_prompt_tokens,
            max_output_tokens: s.max_output_tokens,
            max_price_per_1k: s.max_price_per_1k,
        };
        Some(TicketJob::drawn(id, ticket.buyer.0, position as u8, spec, ticket.expires_at))
    }

    /// Journals each ticket of `ids` that drew this provider.
    pub(super) async fn note_drawn(&self, ids: std::ops::Range<TicketId>) -> anyhow::Result<()> {
        for id in ids {
            if self.journal.ticket(id)?.is_some() {
                continue;
            }
            let Some(ticket) = self.chain.ticket(id).await? else { continue };
            if let Some(job) = self.drawn_job(id, &ticket) {
                tracing::info!(ticket = id, position = job.position, "drawn for a ticket");
                match self.journal.put_ticket(&job) {
                    // The buyer's Use came first (read from the chain) and is journaled past `Drawn`.
                    Ok(()) | Err(JournalError::TicketBackwards { .. } | JournalError::UseChanged(_)) => {},
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Moves one ticket job forward: a lost generation resumed; the share a settlement held for
    /// this provider claimed with its signed outcome, or paid for by a proof that the buyer
    /// signed another `Use` than the settled one; a ticket served and never settled fallen back
    /// after the grace past its expiry; a ticket past its settle window expired (its
    /// reservation fee); a ticket gone from the chain closed.
    pub(super) async fn step_ticket(self: &Arc<Self>, job: TicketJob, best: BlockNumber) -> anyhow::Result<()> {
        let id = job.ticket;
        let ticket = self.chain.ticket(id).await?;
        let past_window = match &ticket {
            Some(ticket) => best + 1 > ticket.expires_at + self.ticket_settle_window().await?,
            None => false,
        };
        match ticket.map(|t| t.status) {
            None => {},
            Some(_) if past_window => self.expire(id).await?,
            Some(TicketStatus::Settled(settlement)) if settlement.open & (1 << job.position) != 0 => {
                let served = job.authorised.as_ref().is_some_and(|a| a.hash() == settlement.use_hash);
                if job.authorised.is_some() && !served {
                    // The buyer signed two `Use`s and settled the other one without this provider.
                    self.prove_equivocation(&job, None).await?;
                    return Ok(self.journal.close_ticket(id)?);
                }
                if job.state == TicketState::PromptReceived && served {
                    // Settled while this provider's generation was lost: finish it, claim next pass.
                    return self.resume(jobs::Job::Ticket(job));
                }
                let claimable = job.state == TicketState::Generated && job.outcome.as_ref().is_some_and(|o| same_outcome(o, &settlement.winning));
                if !(claimable && served) {
                    // Not served, or not the winner (a claim would be slashed): the reservation
                    // fee comes at expiry.
                    return Ok(());
                }
                self.claim(&job, &settlement.use_hash).await?;
            },
            Some(TicketStatus::Settled(_)) => {},
            Some(TicketStatus::Drawn) if job.state == TicketState::PromptReceived => return self.resume(jobs::Job::Ticket(job)),
            Some(TicketStatus::Drawn) if job.state == TicketState::Generated && best + 1 > job.expires_at + self.fallback_grace().await? => {
                // Served and never settled: the outcome goes on-chain through commit–reveal.
                // The request's job is journaled when this node reads the fallback's block.
                return self.fall_back(&job).await;
            },
            Some(_) => return Ok(()),
        }
        Ok(self.journal.close_ticket(id)?)
    }

    async fn claim(&self, job: &TicketJob, use_hash: &Hash256) -> anyhow::Result<()> {
        let outcome = job.outcome.ok_or_else(|| anyhow!("journal lost the outcome"))?;
        let payload = agora_primitives::tickets::outcome_payload(job.ticket, use_hash, &outcome);
        let claimed = SignedOutcome {
            provider: job.position,
            outcome: types::Outcome { output_hash: outcome.output_hash, token_count: outcome.token_count },
            signature: Signature::Sr25519(self.signer.sign(&payload).0),
        };
        match self.chain.claim_ticket_outcome(job.ticket, claimed, &self.signer).await {
            Ok(_) => Ok(tracing::info!(ticket = job.ticket, "claimed the share held for this provider")),
            Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::NotOpen)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The buyer's signed `Use` this job served, as the chain's types encode it.
    fn served_use(job: &TicketJob) -> anyhow::Result<(agora_chain_client::TicketUse, Signature)> {
        let (Some(authorised), Some(signature)) = (&job.authorised, job.buyer_signature) else {
            bail!("journal lost the Use of ticket {}", job.ticket)
        };
        let authorised = agora_chain_client::TicketUse::decode(&mut &authorised.encode()[..])?;
        Ok((authorised, Signature::Sr25519(signature)))
    }

    async fn fall_back(&self, job: &TicketJob) -> anyhow::Result<()> {
        let (authorised, signature) = Self::served_use(job)?;
        match self.chain.fall_back_ticket(authorised, signature, &self.signer).await {
            Ok(request) => Ok(tracing::info!(ticket = job.ticket, request, "nobody settled a ticket served: fell it back to commit-reveal")),
            // Settled, fallen back or expired meanwhile: the next pass sees which.
            Err(e) if e.rejection().is_some() => Ok(tracing::info!(ticket = job.ticket, error = %e, "the ticket did not fall back")),
            Err(e) => Err(e.into()),
        }
    }

    async fn prove_equivocation(&self, job: &TicketJob, request: Option<RequestId>) -> anyhow::Result<()> {
        let (authorised, signature) = Self::served_use(job)?;
        match self.chain.prove_equivocation(authorised, signature, request, &self.signer).await {
            Ok(()) => Ok(tracing::warn!(ticket = job.ticket, "the buyer signed two Uses of a ticket: paid the most this one could earn")),
            Err(e) if e.rejection().is_some() => Ok(tracing::warn!(ticket = job.ticket, error = %e, "could not prove the buyer's second Use")),
            Err(e) => Err(e.into()),
        }
    }

    /// A ticket fell back to commit–reveal as `notice.request`. If this node served its `Use`,
    /// the result it journaled becomes the request's job, committed, revealed and settled as
    /// any; if it served another `Use` of the ticket, it proves the buyer's equivocation
    /// instead. A ticket it never served is a job like any assignment (its record comes from
    /// the `RequestAssigned` event beside this one).
    pub(super) async fn fell_back(&self, notice: &FellBackTicket) -> anyhow::Result<()> {
        let Some(job) = self.journal.ticket(notice.ticket)? else { return Ok(()) };
        if job.authorised.is_none() || self.journal.get(notice.request)?.is_some() {
            return Ok(());
        }
        if job.authorised.as_ref().is_some_and(|a| a.hash() != notice.use_hash) {
            self.prove_equivocation(&job, Some(notice.request)).await?;
            return Ok(self.journal.close_ticket(notice.ticket)?);
        }
        let (Some(output), Some(outcome)) = (job.output.clone(), job.outcome) else {
            // Its generation was lost before the fallback: nothing to commit to.
            return Ok(tracing::warn!(ticket = notice.ticket, request = notice.request, "a ticket fell back before its result was journaled"));
        };
        let Some(request) = self.chain.request(notice.request).await? else { return Ok(()) };
        let mut record = self.record_from_chain(notice.request, &request);
        let mut salt = [0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        record.commitment = Some(commitment(notice.request, &self.account.0, &outcome, &salt));
        record.salt = Some(salt);
        record.state = JobState::Generated;
        (record.prompt, record.output, record.outcome, record.stop) = (job.prompt.clone(), Some(output), Some(outcome), job.stop);
        self.journal.put(&record)?;
        tracing::info!(ticket = notice.ticket, request = notice.request, "the ticket fell back: committing the result journaled for it");
        Ok(self.journal.close_ticket(notice.ticket)?)
    }

    /// The escrow pallet's grace after a ticket's expiry before anyone but its buyer may fall
    /// it back, read once.
    async fn fallback_grace(&self) -> anyhow::Result<BlockNumber> {
        Ok(*self.fallback_grace.get_or_try_init(|| self.chain.ticket_fallback_grace()).await?)
    }

    async fn expire(&self, id: TicketId) -> anyhow::Result<()> {
        match self.chain.expire_ticket(id, &self.signer).await {
            Ok(()) => Ok(tracing::info!(ticket = id, "expired a ticket past its settle window")),
            Err(e) if e.is_rejected(Rejection::Escrow(agora_chain_client::EscrowError::UnknownTicket)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The escrow pallet's settle window, read once.
    async fn ticket_settle_window(&self) -> anyhow::Result<BlockNumber> {
        Ok(*self.settle_window.get_or_try_init(|| self.chain.ticket_settle_window()).await?)
    }
}

fn internal(e: &dyn std::fmt::Display) -> Refusal {
    (InferErrorKind::Internal, e.to_string())
}

fn same_outcome(ours: &Outcome, chain: &types::Outcome) -> bool {
    ours.output_hash == chain.output_hash && ours.token_count == chain.token_count
}
