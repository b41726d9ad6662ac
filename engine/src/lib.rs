//! Deterministic inference on llama.cpp (through `llama-cpp-2`) under the determinism contract of
//! docs/DESIGN.md section 4.
//!
//! - The GGUF is hashed before it is loaded and refused unless it is the release it claims.
//! - Each of `slots` worker threads owns one llama.cpp context and runs one request at a time in
//!   it: one sequence per context, never several sequences in one batch (a different batch
//!   composition picks different kernels and breaks bit-exactness).
//! - The prompt arrives as token ids and is prefilled in chunks of the fixed `n_batch`
//!   (= `n_ubatch`), logits only for its last token; then one token per decode call.
//! - Token choice is [`sampler::pick`]: greedy, or our ChaCha20 sampler for temperature > 0.
//! - Requests past the busy slots wait in a bounded queue; past that, [`EngineError::Busy`].
//!
//! - [`Engine::score_blocking`] is the verifier's teacher-forced pass: prompt and a claimed
//!   continuation prefilled in the same `n_batch` chunks, with the logits of every position that
//!   predicts a continuation token (and the one after the last), handed to a visitor one position
//!   at a time so no more than one chunk of logits is ever held.

pub mod sampler;

use agora_primitives::wire::{token_hash, RuntimeProfile, StopReason, Tolerances};
use agora_primitives::{Hash256, SamplingParams};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use agora_tokenizer::model_file::{self, ModelFileError, Progress};

/// The exact inference library, part of every runtime profile.
pub const ENGINE: &str = "llama-cpp-2=0.1.160";
/// Our sampler's name and version, part of every runtime profile.
pub const SAMPLER: &str = "agora-chacha20-v1";

/// The instruction-set flags llama.cpp was built with (`.cargo/config.toml` sets them for every
/// build of the workspace), as they go into the runtime profile.
pub fn isa() -> String {
    format!(
        "x86_64 avx={} avx2={} fma={} f16c={} bmi2={}",
        option_env!("GGML_AVX").unwrap_or("default"),
        option_env!("GGML_AVX2").unwrap_or("default"),
        option_env!("GGML_FMA").unwrap_or("default"),
        option_env!("GGML_F16C").unwrap_or("default"),
        option_env!("GGML_BMI2").unwrap_or("default"),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Unreadable, or not the release it claims to be.
    #[error(transparent)]
    File(#[from] ModelFileError),
    #[error("llama.cpp could not load {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("llama.cpp could not create an inference context: {0}")]
    Context(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {tokens} tokens but the context holds {n_ctx}, which must leave room for an answer")]
    PromptTooLong { tokens: usize, n_ctx: u32 },
    #[error("prompt token {position} has id {token}, outside the model's vocabulary of {n_vocab}")]
    TokenOutOfVocabulary { position: usize, token: u32, n_vocab: u32 },
    #[error("all {slots} inference slots are busy and {queued} requests are already queued")]
    Busy { slots: usize, queued: usize },
    #[error("llama.cpp failed to decode: {0}")]
    Decode(String),
    #[error("prompt ({prompt} tokens) and continuation ({continuation} tokens) do not fit the context of {n_ctx} tokens")]
    TooLongToScore { prompt: usize, continuation: usize, n_ctx: u32 },
    #[error("continuation token {position} has id {token}, outside the model's vocabulary of {n_vocab}")]
    ContinuationOutOfVocabulary { position: usize, token: u32, n_vocab: u32 },
    #[error("the inference engine has shut down")]
    ShutDown,
}

/// The settings of an engine. `n_ctx` and `n_batch` are part of the runtime profile; `slots`,
/// `threads_per_slot` and `queue_depth` are not (they never change a token).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub n_ctx: u32,
    pub n_batch: u32,
    /// Requests run at once, each in its own context.
    pub slots: usize,
    pub threads_per_slot: usize,
    /// Requests that may wait for a slot before new ones are refused.
    pub queue_depth: usize,
    /// The re-scoring rule this engine's outputs are judged by (part of the runtime profile).
    pub tolerances: Tolerances,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self { n_ctx: 2048, n_batch: 512, slots: 1, threads_per_slot: cores, queue_depth: 16, tolerances: Tolerances::default() }
    }
}

/// One generation to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub max_output_tokens: u32,
    pub sampling: SamplingParams,
    /// The request's sampling seed ([`agora_primitives::sampling_seed`]).
    pub seed: u64,
    /// Also report each chosen token's log-probability under the model (softmax of the raw
    /// logits): a pass over the vocabulary per token, so only callers who read it ask.
    pub logprobs: bool,
}

/// A finished generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub output_hash: Hash256,
    pub stop: StopReason,
    /// Natural-log probability of each token, if the request asked for them.
    pub logprobs: Vec<f32>,
}

/// What a running job reports, in order: every token as it is produced, then the end.
#[derive(Debug)]
pub enum GenEvent {
    Token { index: u32, token: u32, piece: Vec<u8> },
    Finished(Result<Generation, EngineError>),
}

/// The events of one submitted job.
pub struct JobHandle {
    events: UnboundedReceiver<GenEvent>,
}

impl JobHandle {
    /// The next event; `None` once the job has finished and its last event was taken.
    pub async fn next(&mut self) -> Option<GenEvent> {
        self.events.recv().await
    }

    /// Skips the streamed tokens and waits for the result.
    pub async fn finish(mut self) -> Result<Generation, EngineError> {
        while let Some(event) = self.events.recv().await {
            if let GenEvent::Finished(result) = event {
                return result;
            }
        }
        Err(EngineError::ShutDown)
    }

    /// [`Self::finish`] for callers outside an async runtime.
    pub fn finish_blocking(mut self) -> Result<Generation, EngineError> {
        while let Some(event) = self.events.blocking_recv() {
            if let GenEvent::Finished(result) = event {
                return result;
            }
        }
        Err(EngineError::ShutDown)
    }
}

/// Sees the logits of a scoring pass, one position at a time (see [`Engine::score_blocking`]).
pub trait ScoreVisitor: Send + 'static {
    /// `logits` predict continuation token `index`; `Break` ends the pass.
    fn visit(&mut self, index: usize, logits: &[f32]) -> ControlFlow<()>;
}

impl<F: FnMut(usize, &[f32]) -> ControlFlow<()> + Send + 'static> ScoreVisitor for F {
    fn visit(&mut self, index: usize, logits: &[f32]) -> ControlFlow<()> {
        self(index, logits)
    }
}

enum Job {
    Generate { request: GenerateRequest, events: UnboundedSender<GenEvent> },
    /// A scoring pass with its visitor and reply, run by whichever slot takes it.
    Score(Box<dyn FnOnce(&Shared, &mut LlamaContext) + Send>),
}

/// llama.cpp's backend is process-wide and may be initialised once.
pub fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Context(e.clone()))
}

/// Creating contexts of one model from several threads at once is unsound in llama.cpp (it
/// mutates the model), so context creation is serialised.
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

struct Shared {
    model: LlamaModel,
    config: EngineConfig,
    profile: RuntimeProfile,
    n_vocab: u32,
    end_tokens: Vec<u32>,
    queued: AtomicUsize,
    running: AtomicUsize,
}

/// A loaded, verified model with its worker slots.
pub struct Engine {
    shared: Arc<Shared>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Hashes `path`, refuses it unless its sha256 is `expected`, loads it and starts the slots.
    pub fn load(path: &Path, expected: &Hash256, config: EngineConfig, progress: Progress) -> Result<Self, EngineError> {
        model_file::verify(path, expected, progress)?;
        Self::start(path, expected, config)
    }

    /// Loads a model that claims no release: its own sha256 (hashed once, here) is its identity.
    pub fn open(path: &Path, config: EngineConfig, progress: Progress) -> Result<Self, EngineError> {
        let sha256 = model_file::sha256_file(path, progress)?;
        Self::start(path, &sha256, config)
    }

    /// Loads a model whose bytes are known to hash to `sha256` and starts the slots.
    fn start(path: &Path, sha256: &Hash256, config: EngineConfig) -> Result<Self, EngineError> {
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Load { path: path.to_path_buf(), reason: e.to_string() })?;
        let n_ctx = config.n_ctx.min(model.n_ctx_train()).max(1);
        let config = EngineConfig { n_ctx, slots: config.slots.max(1), threads_per_slot: config.threads_per_slot.max(1), ..config };
        let profile = RuntimeProfile {
            model_sha256: *sha256,
            engine: ENGINE.into(),
            backend: b"cpu".to_vec(),
            isa: isa().into_bytes(),
            n_ctx,
            n_batch: config.n_batch,
            flash_attention: false,
            kv_cache_type: b"f16".to_vec(),
            sampler: SAMPLER.into(),
            tolerances: config.tolerances,
        };
        let n_vocab = u32::try_from(model.n_vocab()).unwrap_or(0);
        let end_tokens = (0..n_vocab).filter(|&t| model.vocab().is_eog(LlamaToken(t as i32))).collect();
        let shared = Arc::new(Shared {
            model,
            config,
            profile,
            n_vocab,
            end_tokens,
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        });

        let (jobs, queue) = sync_channel::<Job>(shared.config.queue_depth);
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for slot in 0..shared.config.slots {
            let (shared, queue, ready) = (shared.clone(), queue.clone(), ready_tx.clone());
            let worker = std::thread::Builder::new()
                .name(format!("inference-{slot}"))
                .spawn(move || slot_loop(&shared, &queue, ready))
                .map_err(|e| EngineError::Context(e.to_string()))?;
            workers.push(worker);
        }
        drop(ready_tx);
        let engine = Self { shared, jobs: Some(jobs), workers };
        for _ in 0..engine.shared.config.slots {
            match ready_rx.recv() {
                Ok(Ok(())) => {},
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(EngineError::Context("an inference slot died while starting".into())),
            }
        }
        Ok(engine)
    }

    pub fn profile(&self) -> &RuntimeProfile {
        &self.shared.profile
    }

    pub fn profile_hash(&self) -> Hash256 {
        self.shared.profile.hash()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn n_vocab(&self) -> u32 {
        self.shared.n_vocab
    }

    /// The one in-vocabulary check: the first id of `tokens` that the model does not have,
    /// with its position.
    pub fn out_of_vocabulary(&self, tokens: &[u32]) -> Option<(usize, u32)> {
        tokens.iter().copied().enumerate().find(|&(_, t)| t >= self.shared.n_vocab)
    }

    /// The tokens that end a generation (never part of an output).
    pub fn end_tokens(&self) -> &[u32] {
        &self.shared.end_tokens
    }

    /// Jobs waiting for a slot.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Jobs running in a slot.
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// The model, for re-scoring and tokenising callers.
    pub fn model(&self) -> &LlamaModel {
        &self.shared.model
    }

    /// The release's tokenizer; clients tokenise once and send ids, and so do the tools.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<u32> {
        let vocab = self.shared.model.vocab();
        vocab.tokenize(text.as_bytes(), add_special, false).into_iter().map(|t| t.0 as u32).collect()
    }

    /// One token's text as streamed to clients (possibly part of a UTF-8 character).
    pub fn piece(&self, token: u32) -> Vec<u8> {
        if self.out_of_vocabulary(&[token]).is_some() {
            return Vec::new();
        }
        piece(&self.shared.model, token)
    }

    /// The text of `tokens`; invalid UTF-8 (a split multi-byte character) is replaced.
    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let tokens: Vec<LlamaToken> = tokens.iter().filter(|&&t| self.out_of_vocabulary(&[t]).is_none()).map(|&t| LlamaToken(t as i32)).collect();
        if tokens.is_empty() {
            return String::new();
        }
        String::from_utf8_lossy(&self.shared.model.vocab().detokenize(&tokens, false, false)).into_owned()
    }

    /// Checks a prompt against the model without running it.
    pub fn validate_prompt(&self, prompt: &[u32]) -> Result<(), EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let n_ctx = self.shared.config.n_ctx;
        if prompt.len() >= n_ctx as usize {
            return Err(EngineError::PromptTooLong { tokens: prompt.len(), n_ctx });
        }
        if let Some((position, token)) = self.out_of_vocabulary(prompt) {
            return Err(EngineError::TokenOutOfVocabulary { position, token, n_vocab: self.shared.n_vocab });
        }
        Ok(())
    }

    /// Queues a generation; fails at once if the prompt is invalid or every slot and the queue
    /// are taken.
    pub fn submit(&self, request: GenerateRequest) -> Result<JobHandle, EngineError> {
        self.validate_prompt(&request.prompt)?;
        let jobs = self.jobs.as_ref().ok_or(EngineError::ShutDown)?;
        let (events, receiver) = unbounded_channel();
        self.enqueue(jobs, Job::Generate { request, events })?;
        Ok(JobHandle { events: receiver })
    }

    fn enqueue(&self, jobs: &SyncSender<Job>, job: Job) -> Result<(), EngineError> {
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        jobs.try_send(job).map_err(|e| {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            match e {
                TrySendError::Full(_) => EngineError::Busy { slots: self.shared.config.slots, queued: self.shared.config.queue_depth },
                TrySendError::Disconnected(_) => EngineError::ShutDown,
            }
        })
    }

    /// Teacher-forced scoring in a slot, queued like a generation: `prompt` then `continuation`
    /// are prefilled in `n_batch` chunks, and `visit(index, logits)` sees, in order, the logits
    /// that predict continuation token `index` (`index == continuation.len()`: the token after
    /// the last). `Break` ends the pass early. Blocks until done and hands the visitor back.
    pub fn score_blocking<V: ScoreVisitor>(&self, prompt: &[u32], continuation: &[u32], mut visit: V) -> Result<V, EngineError> {
        self.validate_prompt(prompt)?;
        if let Some((position, token)) = self.out_of_vocabulary(continuation) {
            return Err(EngineError::ContinuationOutOfVocabulary { position, token, n_vocab: self.shared.n_vocab });
        }
        let n_ctx = self.shared.config.n_ctx;
        if prompt.len() + continuation.len() > n_ctx as usize {
            return Err(EngineError::TooLongToScore { prompt: prompt.len(), continuation: continuation.len(), n_ctx });
        }
        let jobs = self.jobs.as_ref().ok_or(EngineError::ShutDown)?;
        let (done, reply) = sync_channel(1);
        let (prompt, continuation) = (prompt.to_vec(), continuation.to_vec());
        let task = move |shared: &Shared, context: &mut LlamaContext| {
            let result = score(shared, context, &prompt, &continuation, &mut visit);
            let _ = done.send(result.map(|()| visit));
        };
        self.enqueue(jobs, Job::Score(Box::new(task)))?;
        reply.recv().unwrap_or(Err(EngineError::ShutDown))
    }

    /// Runs one generation to the end from outside an async runtime.
    pub fn generate_blocking(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        self.submit(request)?.finish_blocking()
    }
}

impl Drop for Engine {
    /// Queued jobs still run; then the slots stop.
    fn drop(&mut self) {
        self.jobs.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn slot_loop(shared: &Shared, queue: &Mutex<Receiver<Job>>, ready: std::sync::mpsc::Sender<Result<(), EngineError>>) {
    let context = {
        let _serialised = CONTEXT_CREATION.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let threads = i32::try_from(shared.config.threads_per_slot).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(shared.config.n_ctx))
            .with_n_batch(shared.config.n_batch)
            .with_n_ubatch(shared.config.n_batch)
            .with_n_seq_max(1)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
        backend().and_then(|backend| shared.model.new_context(backend, params).map_err(|e| EngineError::Context(e.to_string())))
    };
    let mut context = match context {
        Ok(context) => {
            let _ = ready.send(Ok(()));
            context
        },
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        },
    };
    drop(ready);
    loop {
        let job = match queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        shared.running.fetch_add(1, Ordering::SeqCst);
        match job {
            Job::Generate { request, events } => {
                let result = run(shared, &mut context, &request, &events);
                let _ = events.send(GenEvent::Finished(result));
            },
            Job::Score(task) => task(shared, &mut context),
        }
        shared.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn piece(model: &LlamaModel, token: u32) -> Vec<u8> {
    model.vocab().token_to_piece(LlamaToken(token as i32), false, None)
}

fn decode(context: &mut LlamaContext, batch: &mut LlamaBatch) -> Result<(), EngineError> {
    context.decode(batch).map_err(|e| EngineError::Decode(e.to_string()))
}

fn add(batch: &mut LlamaBatch, token: u32, position: usize, logits: bool) -> Result<(), EngineError> {
    let token = LlamaToken(i32::try_from(token).map_err(|_| EngineError::Decode(format!("token id {token} too large")))?);
    let position = i32::try_from(position).map_err(|_| EngineError::Decode("position overflows".into()))?;
    batch.add(token, position, &[0], logits).map_err(|e| EngineError::Decode(e.to_string()))
}

fn run(shared: &Shared, context: &mut LlamaContext, request: &GenerateRequest, events: &UnboundedSender<GenEvent>) -> Result<Generation, EngineError> {
    let prompt = &request.prompt;
    let n_batch = shared.config.n_batch as usize;
    let n_ctx = shared.config.n_ctx as usize;
    context.clear_kv_cache();

    let mut batch = LlamaBatch::new(n_batch.max(1), 1);
    for (chunk_index, chunk) in prompt.chunks(n_batch).enumerate() {
        batch.clear();
        for (offset, &token) in chunk.iter().enumerate() {
            let position = chunk_index * n_batch + offset;
            add(&mut batch, token, position, position + 1 == prompt.len())?;
        }
        decode(context, &mut batch)?;
    }

    let vocab = shared.model.vocab();
    let mut logits_index = batch.n_tokens() - 1;
    let mut tokens: Vec<u32> = Vec::new();
    let mut logprobs: Vec<f32> = Vec::new();
    let stop = loop {
        if tokens.len() >= request.max_output_tokens as usize {
            break StopReason::MaxTokens;
        }
        if prompt.len() + tokens.len() >= n_ctx {
            break StopReason::ContextFull;
        }
        let logits = context.get_logits_ith(logits_index);
        let token = sampler::pick(logits, &request.sampling, request.seed, tokens.len() as u32);
        if vocab.is_eog(LlamaToken(token as i32)) {
            break StopReason::EndOfGeneration;
        }
        if request.logprobs {
            logprobs.push(sampler::logprob(logits, token));
        }
        let _ = events.send(GenEvent::Token { index: tokens.len() as u32, token, piece: piece(&shared.model, token) });
        tokens.push(token);

        // The last token is decoded only if another one may follow, so that a stop by length
        // never pays for a decode whose logits nobody reads.
        if tokens.len() < request.max_output_tokens as usize && prompt.len() + tokens.len() < n_ctx {
            batch.clear();
            add(&mut batch, token, prompt.len() + tokens.len() - 1, true)?;
            decode(context, &mut batch)?;
            logits_index = 0;
        }
    };
    Ok(Generation { output_hash: token_hash(&tokens), tokens, stop, logprobs })
}

/// One teacher-forced pass over `prompt ++ continuation` in the generation's chunk size; logits
/// are requested from the prompt's last position on, since earlier ones predict nothing claimed.
fn score(
    shared: &Shared,
    context: &mut LlamaContext,
    prompt: &[u32],
    continuation: &[u32],
    visit: &mut impl ScoreVisitor,
) -> Result<(), EngineError> {
    let n_batch = shared.config.n_batch as usize;
    let first_scored = prompt.len() - 1;
    context.clear_kv_cache();
    let mut batch = LlamaBatch::new(n_batch.max(1), 1);
    let sequence: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
    for (chunk_index, chunk) in sequence.chunks(n_batch).enumerate() {
        batch.clear();
        let start = chunk_index * n_batch;
        for (offset, &token) in chunk.iter().enumerate() {
            add(&mut batch, token, start + offset, start + offset >= first_scored)?;
        }
        decode(context, &mut batch)?;
        for offset in first_scored.saturating_sub(start)..chunk.len() {
            let index = start + offset - first_scored;
            if visit.visit(index, context.get_logits_ith(offset as i32)).is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}
