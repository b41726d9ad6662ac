//! The chain worker: each new block's assignments journaled, then every pending job moved one
//! step, one function per journaled state.

use super::*;

impl Inner {
    /// Runs a pass whenever the chain has a new block (so an assignment is usually journaled
    /// before its client's prompt arrives) or a job has finished. Between blocks it only polls
    /// the block number, which keeps the load on the chain node low.
    pub(super) async fn chain_worker(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut last_pass: Option<BlockNumber> = None;
        let mut woken = true;
        loop {
            match self.chain.best_block_number().await {
                Ok(best) if woken || last_pass != Some(best) => {
                    if let Err(e) = self.chain_pass(best).await {
                        self.chain_error("pass", &e);
                    }
                    last_pass = Some(best);
                },
                Ok(_) => {},
                Err(e) => self.chain_error("best_block", &e),
            }
            woken = tokio::select! {
                _ = self.wake.notified() => true,
                _ = tokio::time::sleep(CHAIN_POLL) => false,
                _ = stopping.changed() => return,
            };
        }
    }

    /// Reads new assignments, then moves every pending job one step if it can.
    pub(super) async fn chain_pass(self: &Arc<Self>, best: BlockNumber) -> anyhow::Result<()> {
        let mut last = self.journal.last_block()?.unwrap_or(best);
        while last < best {
            let block = last + 1;
            let news = self.chain.block_news(block).await?;
            for ids in news.drawn_tickets {
                self.note_drawn(ids).await?;
            }
            // Before the assignments: a fell-back ticket's request takes the result journaled.
            for notice in &news.fell_back {
                self.fell_back(notice).await?;
            }
            for dispute in news.disputes.iter().filter(|d| d.verifiers.contains(&self.account)) {
                self.drawn(dispute.request, dispute.verdict_deadline)?;
            }
            for assignment in news.assignments {
                let id = assignment.request;
                if assignment.providers.contains(&self.account) && self.journal.get(id)?.is_none() {
                    if let Some(request) = self.chain.request(id).await? {
                        tracing::info!(request = id, "assigned");
                        self.journal.put(&self.record_from_chain(id, &request))?;
                    }
                }
            }
            self.journal.set_last_block(block)?;
            last = block;
        }
        // The jobs step side by side: their calls are pipelined by nonce, so a block takes all
        // of this pass's commits and reveals instead of one per block.
        let steps = self.journal.pending()?.into_iter().map(|record| async move {
            let id = record.request;
            if let Err(e) = self.step(record, best).await {
                self.chain_error("job", &format!("request {id}: {e}"));
            }
        });
        futures::future::join_all(steps).await;
        let tickets = self.journal.pending_tickets()?.into_iter().map(|job| async move {
            let id = job.ticket;
            if let Err(e) = self.step_ticket(job, best).await {
                self.chain_error("ticket", &format!("ticket {id}: {e}"));
            }
        });
        futures::future::join_all(tickets).await;
        if let Err(e) = self.verdicts_due(best).await {
            self.chain_error("verdicts", &format!("{e:#}"));
        }
        let all = self.journal.all()?;
        for state in JobState::ALL {
            let count = all.iter().filter(|r| r.state == state).count();
            self.metrics.jobs.get_or_create(&StateLabel { state: state.name() }).set(count as i64);
        }
        self.metrics.running_jobs.set(self.engine.running() as i64);
        self.metrics.queue_depth.set(self.engine.queued() as i64);
        Ok(())
    }

    /// Whether every provider of `request` has committed, or (a fell-back ticket's) was proven
    /// to have served another `Use` and so never will: the reveals may start before the deadline.
    pub(super) async fn all_committed(&self, request: &agora_chain_client::Request, id: RequestId) -> anyhow::Result<bool> {
        for provider in &request.providers.0 {
            if self.chain.commitment(id, provider).await?.is_none() && !self.chain.equivocated(id, provider).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves one job forward. Calls land in the next block, so deadlines are checked against
    /// `best + 1`, and the chain is asked first whether the step already happened (a restart
    /// after the call and before its journal entry).
    pub(super) async fn step(self: &Arc<Self>, mut record: JobRecord, best: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let next = best + 1;
        let Some(request) = self.chain.request(id).await? else {
            record.state = JobState::Closed;
            return Ok(self.journal.put(&record)?);
        };
        if request.status == types::RequestStatus::Disputed {
            return self.step_disputed(&record, next).await;
        }
        if request.status == types::RequestStatus::AwaitingAudit {
            // Settled, but whether it is audited is drawn in a block to come: the job stays.
            return Ok(());
        }
        if request.status != types::RequestStatus::Assigned {
            record.state = JobState::Closed;
            self.journal.put(&record)?;
            self.closed(id).await;
            return Ok(());
        }
        if record.state != JobState::Revealed && next > record.reveal_deadline + SETTLE_GRACE_BLOCKS {
            // Nothing of this node's is on-chain to wait for (never sent the prompt, or it could
            // not finish in time) and nobody settled: settle, so that the job's slot is freed and
            // the client's escrow comes back.
            return self.settle_abandoned(id).await;
        }
        match record.state {
            JobState::Assigned | JobState::Closed => Ok(()),
            JobState::PromptReceived => self.resume_generation(record, next),
            JobState::Generated => self.commit(record, next).await,
            JobState::Committed => self.reveal(record, &request, next).await,
            JobState::Revealed => self.settle(&record, &request, next).await,
        }
    }

    /// Held for verifiers: this node's result is judged by the tokens it stands for. If some
    /// verifiers stay silent, the dispute is resolved with the verdicts cast.
    pub(super) async fn step_disputed(self: &Arc<Self>, record: &JobRecord, next: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let Some(dispute) = self.chain.dispute(id).await? else { return Ok(()) };
        // The verifiers are drawn a block or two after the dispute opens.
        if dispute.verifiers.0.is_empty() {
            return Ok(());
        }
        self.push_own_result(record);
        if next > dispute.verdict_deadline + SETTLE_GRACE_BLOCKS {
            match self.submit(&agora::tx().verifier().resolve_dispute(id)).await {
                Ok(_) => tracing::info!(request = id, "resolved the dispute"),
                Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::NoDispute)) => {},
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A restart lost the running generation: run it again from the journaled prompt
    /// (deterministic, so the same output) while it can still be committed.
    pub(super) fn resume_generation(self: &Arc<Self>, record: JobRecord, next: BlockNumber) -> anyhow::Result<()> {
        if next <= record.commit_deadline {
            self.resume(jobs::Job::Request(record))?;
        }
        Ok(())
    }

    /// Runs a journaled prompt whose generation a restart lost, with no client to stream to,
    /// unless it runs already.
    pub(super) fn resume(self: &Arc<Self>, job: jobs::Job) -> anyhow::Result<()> {
        let running = job.running();
        match self.launch(job, None) {
            Ok(true) => Ok(tracing::info!(job = %running, "resumed an interrupted generation")),
            Ok(false) => Ok(()),
            Err((_, e)) => bail!("cannot resume: {e}"),
        }
    }

    pub(super) async fn commit(&self, mut record: JobRecord, next: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let commitment = record.commitment.ok_or_else(|| anyhow!("journal lost the commitment"))?;
        if self.chain.commitment(id, &self.account).await?.is_none() {
            if next > record.commit_deadline {
                return Ok(());
            }
            match self.submit(&agora::tx().verifier().commit(id, commitment)).await {
                Ok(_) => tracing::info!(request = id, "committed"),
                Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::AlreadyCommitted)) => {},
                Err(e) => return Err(e.into()),
            }
        }
        record.state = JobState::Committed;
        Ok(self.journal.put(&record)?)
    }

    pub(super) async fn reveal(&self, mut record: JobRecord, request: &agora_chain_client::Request, next: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let (outcome, salt) = record.outcome.zip(record.salt).ok_or_else(|| anyhow!("journal lost the result"))?;
        if self.chain.reveal(id, &self.account).await?.is_none() {
            let open = next > record.commit_deadline || self.all_committed(request, id).await?;
            if !open || next > record.reveal_deadline {
                return Ok(());
            }
            let outcome = types::Outcome { output_hash: outcome.output_hash, token_count: outcome.token_count };
            match self.submit(&agora::tx().verifier().reveal(id, outcome, salt)).await {
                Ok(_) => tracing::info!(request = id, "revealed"),
                Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::AlreadyRevealed)) => {},
                Err(e) => return Err(e.into()),
            }
        }
        record.state = JobState::Revealed;
        self.journal.put(&record)?;
        self.wake.notify_one();
        Ok(())
    }

    /// The first provider that revealed settles as soon as it can; the others only if it has
    /// not some blocks after the deadline, so one settle usually suffices.
    pub(super) async fn settle(&self, record: &JobRecord, request: &agora_chain_client::Request, next: BlockNumber) -> anyhow::Result<()> {
        let id = record.request;
        let mut revealed = Vec::new();
        for provider in &request.providers.0 {
            if self.chain.reveal(id, provider).await?.is_some() {
                revealed.push(provider.clone());
            }
        }
        let everyone = revealed.len() == request.providers.0.len();
        let settler = revealed.first() == Some(&self.account);
        let due = (settler && (everyone || next > record.reveal_deadline)) || next > record.reveal_deadline + SETTLE_GRACE_BLOCKS;
        if due {
            match self.submit(&agora::tx().verifier().settle(id)).await {
                Ok(_) => tracing::info!(request = id, "settled"),
                Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::NotActive)) => {},
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub(super) async fn settle_abandoned(&self, id: RequestId) -> anyhow::Result<()> {
        match self.submit(&agora::tx().verifier().settle(id)).await {
            Ok(_) => tracing::info!(request = id, "settled a request this node had nothing to reveal for"),
            Err(e) if e.is_rejected(Rejection::Verifier(VerifierError::NotActive)) => {},
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// After a request closed: report what settlement did to this provider and keep the stake
    /// at its configured level.
    pub(super) async fn closed(&self, id: RequestId) {
        let Ok(Some(receipt)) = self.chain.receipt(id).await else { return };
        if let Some((_, amount, why)) = receipt.slashed.0.iter().find(|(who, _, _)| who == &self.account) {
            tracing::warn!(request = id, amount, ?why, "slashed");
            self.metrics.chain_errors.get_or_create(&KindLabel { kind: "slashed" }).inc();
            if let Ok(Some(record)) = self.chain.provider(&self.account).await {
                if let Err(e) = self.top_up(&record).await {
                    self.chain_error("top_up", &e);
                }
            }
        } else if let Some((_, amount)) = receipt.paid.0.iter().find(|(who, _)| who == &self.account) {
            tracing::info!(request = id, amount, "paid");
        } else if let Some((_, amount)) = receipt.reserved.0.iter().find(|(who, _)| who == &self.account) {
            tracing::info!(request = id, amount, "paid the reservation fee: the client never sent its prompt here");
        }
    }
}
