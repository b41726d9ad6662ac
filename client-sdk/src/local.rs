//! Local-first routing: an optional model on the client's own machine answers a prompt when it
//! is confident, and the marketplace answers the rest.
//!
//! Confidence is the mean natural-log probability of the tokens of the local (greedy) answer,
//! i.e. the log of the geometric-mean probability the model gave its own words. It costs
//! nothing beyond the generation (one log-softmax per token), it is high when the model is
//! sure of each next token (stock facts, short arithmetic) and low when it wanders (long
//! reasoning, obscure facts), and it does not grow or shrink with the answer's length. A
//! prompt whose answer is empty (the model ends at once) is never confident. The threshold is
//! the caller's; `agora-route-bench` prints how the project's prompt set splits at several.

use crate::error::{ClientError, Result};
use crate::run::{Job, Prompt, RunEvent, RunResult};
use crate::Client;
use agora_engine::{Engine, EngineConfig, GenerateRequest, Progress};
use agora_tokenizer::Tokenizer;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A model on this machine, with the confidence it needs to answer alone.
pub struct LocalModel {
    engine: Arc<Engine>,
    tokenizer: Tokenizer,
    /// Mean log-probability at or above which the local answer is kept.
    pub threshold: f32,
}

/// What the local model said and how sure it was.
#[derive(Clone, Debug)]
pub struct LocalAnswer {
    pub tokens: Vec<u32>,
    pub text: String,
    pub mean_logprob: f32,
    pub elapsed: Duration,
}

impl LocalAnswer {
    pub fn confident(&self, threshold: f32) -> bool {
        !self.tokens.is_empty() && self.mean_logprob >= threshold
    }
}

/// Where a job was answered.
#[derive(Clone, Debug)]
pub enum Routed {
    Local(LocalAnswer),
    /// Sent to the marketplace; the local answer that was not confident enough comes along.
    Marketplace { local: LocalAnswer, result: Box<RunResult> },
}

impl LocalModel {
    pub fn load(gguf: &Path, threads: usize, threshold: f32) -> Result<Self> {
        let config = EngineConfig { n_ctx: 2048, n_batch: 512, slots: 1, threads_per_slot: threads.max(1), queue_depth: 4, ..EngineConfig::default() };
        // The engine hashes the file once; its release is that hash.
        let engine = Engine::open(gguf, config, Progress::Hidden)?;
        let tokenizer = Tokenizer::load_checked(gguf)?;
        Ok(Self { engine: Arc::new(engine), tokenizer, threshold })
    }

    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        Ok(match prompt {
            Prompt::Text(text) => self.tokenizer.tokenize(text, true),
            Prompt::Chat(turns) => self.tokenizer.chat(turns)?,
            Prompt::Tokens(tokens) => tokens.clone(),
        })
    }

    /// The local model's greedy answer and its mean log-probability.
    pub async fn answer(&self, prompt: &Prompt, max_tokens: u32) -> Result<LocalAnswer> {
        let prompt = self.tokenize(prompt)?;
        if prompt.is_empty() {
            return Err(ClientError::EmptyPrompt);
        }
        let started = Instant::now();
        let request = GenerateRequest { prompt, max_output_tokens: max_tokens, sampling: Default::default(), seed: 0, logprobs: true };
        let generation = self.engine.submit(request)?.finish().await?;
        let mean_logprob = if generation.logprobs.is_empty() {
            f32::NEG_INFINITY
        } else {
            generation.logprobs.iter().sum::<f32>() / generation.logprobs.len() as f32
        };
        Ok(LocalAnswer {
            text: self.tokenizer.detokenize(&generation.tokens),
            tokens: generation.tokens,
            mean_logprob,
            elapsed: started.elapsed(),
        })
    }
}

impl Client {
    /// Answers `job` with the local model when it is confident enough, else through the
    /// marketplace (which then costs what [`Client::run`] costs).
    pub async fn run_local_first(&self, job: &Job, local: &LocalModel, on_event: impl FnMut(RunEvent)) -> Result<Routed> {
        let answer = local.answer(&job.prompt, job.max_tokens).await?;
        if answer.confident(local.threshold) {
            return Ok(Routed::Local(answer));
        }
        let result = self.run(job, on_event).await?;
        Ok(Routed::Marketplace { local: answer, result: Box::new(result) })
    }
}
