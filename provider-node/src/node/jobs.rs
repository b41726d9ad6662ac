//! Running a job: the generation, with its result journaled before anyone hears of it.

use super::*;

/// The client a generation streams to, and the `Use` it signed.
pub(super) struct Client {
    pub frames: mpsc::UnboundedSender<InferFrame>,
    pub authorised: Authorised,
}

/// What a generation runs for, and is journaled as: a request or a ticket.
pub(super) enum Job {
    Request(JobRecord),
    Ticket(TicketJob),
}

/// At most one generation runs per request and one per ticket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Running {
    Request(RequestId),
    Ticket(TicketId),
}

/// "request 5", "ticket 5": what logs and refusals name.
impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(id) => write!(f, "request {id}"),
            Self::Ticket(id) => write!(f, "ticket {id}"),
        }
    }
}

impl Job {
    pub(super) fn running(&self) -> Running {
        match self {
            Self::Request(record) => Running::Request(record.request),
            Self::Ticket(job) => Running::Ticket(job.ticket),
        }
    }

    fn generate_request(&self) -> GenerateRequest {
        let (prompt, max_output_tokens, sampling, seed) = match self {
            Self::Request(r) => (&r.prompt, r.params.max_output_tokens, r.params.sampling, sampling_seed(r.request)),
            Self::Ticket(t) => {
                let authorised = t.authorised.as_ref();
                let sampling = authorised.map(|a| a.sampling).unwrap_or_default();
                (&t.prompt, authorised.map_or(0, |a| a.max_output_tokens), sampling, agora_primitives::ticket_sampling_seed(t.ticket))
            },
        };
        GenerateRequest { prompt: prompt.clone().unwrap_or_default(), max_output_tokens, sampling, seed, logprobs: false }
    }

    fn journal(&self, journal: &Journal) -> Result<(), crate::journal::JournalError> {
        match self {
            Self::Request(record) => journal.put(record),
            Self::Ticket(job) => journal.put_ticket(job),
        }
    }

    /// Fixes the result: a request's with a fresh salt and its commitment.
    fn finish(&mut self, account: &AccountId, tokens: Vec<u32>, outcome: Outcome, stop: StopReason) {
        match self {
            Self::Request(record) => {
                let mut salt = [0u8; 32];
                rand::rng().fill_bytes(&mut salt);
                record.commitment = Some(commitment(record.request, &account.0, &outcome, &salt));
                record.state = JobState::Generated;
                record.salt = Some(salt);
                (record.outcome, record.stop, record.output) = (Some(outcome), Some(stop), Some(tokens));
            },
            Self::Ticket(job) => {
                job.state = TicketState::Generated;
                (job.outcome, job.stop, job.output) = (Some(outcome), Some(stop), Some(tokens));
            },
        }
    }
}

impl Inner {
    /// Starts `job`'s generation unless one runs already for its request or ticket (`false`).
    pub(super) fn launch(self: &Arc<Self>, job: Job, client: Option<Client>) -> Result<bool, Refusal> {
        let running = job.running();
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(running) {
            return Ok(false);
        }
        match self.clone().generate(job, client) {
            Ok(()) => Ok(true),
            Err(refusal) => {
                self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&running);
                Err(refusal)
            },
        }
    }

    /// Runs a job's generation. The prompt is journaled while the prefill runs (off the path to
    /// the first token), and only then is the client's `Use` acknowledged: a provider that
    /// signed for a prompt can always finish it after a restart. The result is journaled
    /// before the client hears `Done`, signed over its `Use`, and before anything goes
    /// on-chain. [`Self::launch`] has put the job into `running`; this removes it when the job ends.
    fn generate(self: Arc<Self>, mut job: Job, client: Option<Client>) -> Result<(), Refusal> {
        let running = job.running();
        let mut handle = self.engine.submit(job.generate_request()).map_err(|e| match e {
            EngineError::Busy { .. } => (InferErrorKind::Busy, e.to_string()),
            other => (InferErrorKind::Internal, other.to_string()),
        })?;
        self.metrics.queue_depth.set(self.engine.queued() as i64);
        tokio::spawn(async move {
            let send = |frame| {
                if let Some(client) = &client {
                    let _ = client.frames.send(frame);
                }
            };
            if let Err(e) = job.journal(&self.journal) {
                tracing::error!(job = %running, error = %e, "cannot journal a received prompt");
                send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&running);
                return;
            }
            if let Some(client) = &client {
                send(InferFrame::Accepted { signature: self.signer.sign(&client.authorised.ack_payload()).0 });
            }
            let mut first_token: Option<Instant> = None;
            while let Some(event) = handle.next().await {
                match event {
                    GenEvent::Token { index, token, piece } => {
                        first_token.get_or_insert_with(Instant::now);
                        self.metrics.tokens_generated.inc();
                        let token = self.falsified(index, token);
                        let piece = if self.lying() { self.engine.piece(token) } else { piece };
                        send(InferFrame::Token { index, token, piece });
                    },
                    GenEvent::Finished(Ok(mut generation)) => {
                        if self.lying() {
                            generation.tokens = generation.tokens.iter().enumerate().map(|(i, &t)| self.falsified(i as u32, t)).collect();
                            generation.output_hash = agora_primitives::wire::token_hash(&generation.tokens);
                        }
                        if let Some(first) = first_token {
                            let decoded = generation.tokens.len().saturating_sub(1) as f64;
                            let elapsed = first.elapsed().as_secs_f64();
                            if decoded > 0.0 && elapsed > 0.0 {
                                self.metrics.tokens_per_second.set(decoded / elapsed);
                            }
                        }
                        let outcome = Outcome { output_hash: generation.output_hash, token_count: generation.tokens.len() as u32 };
                        job.finish(&self.account, generation.tokens, outcome, generation.stop);
                        match job.journal(&self.journal) {
                            Ok(()) => {
                                if let Some(client) = &client {
                                    send(self.done(&client.authorised, &outcome, generation.stop));
                                }
                            },
                            Err(e) => {
                                tracing::error!(job = %running, error = %e, "cannot journal a finished job");
                                send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                            },
                        }
                        self.wake.notify_one();
                    },
                    GenEvent::Finished(Err(e)) => {
                        tracing::error!(job = %running, error = %e, "generation failed");
                        send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                    },
                }
            }
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&running);
            self.metrics.queue_depth.set(self.engine.queued() as i64);
        });
        Ok(())
    }

    /// The closing frame of a stream: the result, signed over the `Use` it answers.
    pub(super) fn done(&self, authorised: &Authorised, outcome: &Outcome, stop: StopReason) -> InferFrame {
        InferFrame::Done {
            output_hash: outcome.output_hash,
            token_count: outcome.token_count,
            stop,
            signature: self.signer.sign(&authorised.outcome_payload(outcome)).0,
        }
    }

    /// Whether this is a lying provider of the cheating tests (never in a release build).
    pub(super) fn lying(&self) -> bool {
        cfg!(feature = "fault-injection") && self.config.test_lie > 0
    }

    /// The token a lying provider (`test_lie`, for the tests of cheating) puts at `index`: the
    /// first stays honest, the rest are shifted, so the answer looks plausible and is wrong.
    pub(super) fn falsified(&self, index: u32, token: u32) -> u32 {
        if self.lying() && index > 0 {
            (token + self.config.test_lie) % self.engine.n_vocab().max(1)
        } else {
            token
        }
    }
}
