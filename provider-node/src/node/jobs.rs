//! Running a job: the generation, with its result journaled before anyone hears of it.

use super::*;

/// The client a generation streams to, and the `Use` it signed.
pub(super) struct Client {
    pub frames: mpsc::UnboundedSender<InferFrame>,
    pub authorised: Use,
}

impl Inner {
    /// Runs a job's generation. The prompt is journaled while the prefill runs (off the path to
    /// the first token), and only then is the client's `Use` acknowledged: a provider that
    /// signed for a prompt can always finish it after a restart. The result (output, salt,
    /// commitment) is journaled before the client hears `Done`, signed over its `Use`, and
    /// before anything goes on-chain. The caller has put the request into `running`; this
    /// removes it when the job ends.
    pub(super) fn generate(self: Arc<Self>, mut record: JobRecord, client: Option<Client>) -> Result<(), Refusal> {
        let id = record.request;
        let request = GenerateRequest {
            prompt: record.prompt.clone().unwrap_or_default(),
            max_output_tokens: record.params.max_output_tokens,
            sampling: record.params.sampling,
            seed: sampling_seed(id),
            logprobs: false,
        };
        let mut handle = self.engine.submit(request).map_err(|e| match e {
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
            if let Err(e) = self.journal.put(&record) {
                tracing::error!(request = id, error = %e, "cannot journal a received prompt");
                send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
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
                        let mut salt = [0u8; 32];
                        rand::rng().fill_bytes(&mut salt);
                        let outcome = Outcome { output_hash: generation.output_hash, token_count: generation.tokens.len() as u32 };
                        record.commitment = Some(commitment(id, &self.account.0, &outcome, &salt));
                        record.state = JobState::Generated;
                        record.outcome = Some(outcome);
                        record.salt = Some(salt);
                        record.stop = Some(generation.stop);
                        record.output = Some(generation.tokens);
                        match self.journal.put(&record) {
                            Ok(()) => {
                                if let Some(client) = &client {
                                    send(self.done(&client.authorised, &outcome, generation.stop));
                                }
                            },
                            Err(e) => {
                                tracing::error!(request = id, error = %e, "cannot journal a finished job");
                                send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                            },
                        }
                        self.wake.notify_one();
                    },
                    GenEvent::Finished(Err(e)) => {
                        tracing::error!(request = id, error = %e, "generation failed");
                        send(InferFrame::Error { kind: InferErrorKind::Internal, message: e.to_string().into_bytes() });
                    },
                }
            }
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            self.metrics.queue_depth.set(self.engine.queued() as i64);
        });
        Ok(())
    }

    /// The closing frame of a stream: the result, signed over the `Use` it answers.
    pub(super) fn done(&self, authorised: &Use, outcome: &Outcome, stop: StopReason) -> InferFrame {
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
