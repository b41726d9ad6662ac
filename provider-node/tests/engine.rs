//! The inference engine under the determinism contract: on the generated tiny model (fast) and
//! on the real SmolLM2 model.

use agora_primitives::wire::{token_hash, StopReason};
use agora_primitives::SamplingParams;
use agora_fixtures::models::{fetch_smollm2, smollm2_sha256};
use agora_engine::{model_file, Engine, EngineConfig, EngineError, GenerateRequest, Progress};
use agora_fixtures::tiny_gguf;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn workspace_root() -> &'static Path {
    agora_fixtures::workspace_root()
}

/// The tiny model, written once per test binary.
fn tiny_model() -> &'static (PathBuf, [u8; 32]) {
    static MODEL: OnceLock<(PathBuf, [u8; 32])> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("agora-tiny-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.gguf");
        tiny_gguf::write(&path, 7).unwrap();
        let hash = model_file::sha256_file(&path, Progress::Hidden).unwrap();
        (path, hash)
    })
}

fn smollm2() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| fetch_smollm2(workspace_root()).expect("the real model is fetched"))
}

fn engine(path: &Path, hash: &[u8; 32], slots: usize, threads: usize) -> Engine {
    let config = EngineConfig { n_ctx: 512, n_batch: 64, slots, threads_per_slot: threads, queue_depth: 8, ..EngineConfig::default() };
    Engine::load(path, hash, config, Progress::Hidden).unwrap()
}

fn request(prompt: Vec<u32>, max: u32, temperature_milli: u32, seed: u64) -> GenerateRequest {
    GenerateRequest { prompt, max_output_tokens: max, sampling: SamplingParams { temperature_milli, top_k: 40, top_p_milli: 950 }, seed, logprobs: false }
}

fn byte_prompt(text: &str) -> Vec<u32> {
    // The tiny vocabulary: ids 3..=258 are the bytes.
    text.bytes().map(|b| 3 + u32::from(b)).collect()
}

#[test]
fn the_generated_tiny_model_is_reproducible_and_loads() {
    let (path, hash) = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.gguf");
    tiny_gguf::write(&again, 7).unwrap();
    assert_eq!(&model_file::sha256_file(&again, Progress::Hidden).unwrap(), hash);
    let engine = engine(path, hash, 1, 1);
    assert_eq!(engine.n_vocab(), tiny_gguf::N_VOCAB);
    assert_eq!(engine.profile().model_sha256, *hash);
}

#[test]
fn tiny_greedy_and_sampled_are_bit_identical_across_runs_and_thread_counts() {
    let (path, hash) = tiny_model();
    let one = engine(path, hash, 1, 1);
    let two = engine(path, hash, 1, 2);
    assert_eq!(one.profile_hash(), two.profile_hash(), "threads are not part of the profile");
    for temperature in [0, 900] {
        let req = request(byte_prompt("the quick brown fox"), 48, temperature, 1234);
        let first = one.generate_blocking(req.clone()).unwrap();
        assert!(!first.tokens.is_empty());
        assert_eq!(first.output_hash, token_hash(&first.tokens));
        for _ in 0..3 {
            assert_eq!(one.generate_blocking(req.clone()).unwrap(), first);
            assert_eq!(two.generate_blocking(req.clone()).unwrap(), first);
        }
    }
    // The seed matters when sampling and does not when greedy.
    let sampled = |seed| one.generate_blocking(request(byte_prompt("abc"), 32, 1500, seed)).unwrap().tokens;
    assert_ne!(sampled(1), sampled(2));
    let greedy = |seed| one.generate_blocking(request(byte_prompt("abc"), 32, 0, seed)).unwrap().tokens;
    assert_eq!(greedy(1), greedy(2));
}

#[test]
fn concurrent_requests_match_their_serial_results() {
    let (path, hash) = tiny_model();
    let serial = engine(path, hash, 1, 1);
    let prompts = ["alpha", "beta gamma", "delta", "epsilon zeta eta"];
    let requests: Vec<_> = prompts.iter().enumerate().map(|(i, p)| request(byte_prompt(p), 40, (i as u32 % 2) * 800, i as u64)).collect();
    let expected: Vec<_> = requests.iter().map(|r| serial.generate_blocking(r.clone()).unwrap()).collect();

    let parallel = engine(path, hash, 2, 1);
    let handles: Vec<_> = requests.iter().map(|r| parallel.submit(r.clone()).unwrap()).collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.finish_blocking().unwrap()).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_full_queue_refuses_new_work_and_keeps_the_accepted() {
    let (path, hash) = tiny_model();
    let config = EngineConfig { n_ctx: 512, n_batch: 64, slots: 1, threads_per_slot: 1, queue_depth: 1, ..EngineConfig::default() };
    let engine = Engine::load(path, hash, config, Progress::Hidden).unwrap();
    let long = request(byte_prompt("x"), 400, 0, 0);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..4 {
        match engine.submit(long.clone()) {
            Ok(handle) => accepted.push(handle),
            Err(EngineError::Busy { slots: 1, queued: 1 }) => refused += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(accepted.len() <= 2 && refused >= 2, "accepted {}, refused {refused}", accepted.len());
    for handle in accepted {
        assert_eq!(handle.finish_blocking().unwrap().tokens.len(), 400);
    }
    assert!(engine.submit(long).is_ok(), "the slot takes work again once free");
}

#[test]
fn bad_prompts_get_clear_errors() {
    let (path, hash) = tiny_model();
    let engine = engine(path, hash, 1, 1);
    assert!(matches!(engine.submit(request(vec![], 4, 0, 0)), Err(EngineError::EmptyPrompt)));
    assert!(matches!(
        engine.submit(request(vec![5; 512], 4, 0, 0)),
        Err(EngineError::PromptTooLong { tokens: 512, n_ctx: 512 })
    ));
    let err = engine.submit(request(vec![5, 6, 9999], 4, 0, 0)).err().unwrap();
    assert!(matches!(err, EngineError::TokenOutOfVocabulary { position: 2, token: 9999, .. }), "{err}");
    // The engine still serves after refusing.
    assert!(engine.generate_blocking(request(vec![5, 6], 4, 0, 0)).is_ok());
}

#[test]
fn generation_stops_at_max_tokens_and_at_the_context_end() {
    let (path, hash) = tiny_model();
    let engine = engine(path, hash, 1, 1);
    let out = engine.generate_blocking(request(byte_prompt("hi"), 7, 0, 0)).unwrap();
    assert_eq!((out.tokens.len(), out.stop), (7, StopReason::MaxTokens));
    let out = engine.generate_blocking(request(vec![10; 500], 100, 0, 0)).unwrap();
    assert_eq!((out.tokens.len(), out.stop), (12, StopReason::ContextFull));
    let out = engine.generate_blocking(request(byte_prompt("hi"), 0, 0, 0)).unwrap();
    assert_eq!((out.tokens.len(), out.stop), (0, StopReason::MaxTokens));
}

#[test]
fn a_gguf_with_the_wrong_hash_is_refused_naming_both_hashes() {
    let (path, hash) = tiny_model();
    let claimed = smollm2_sha256();
    let err = Engine::load(path, &claimed, EngineConfig::default(), Progress::Hidden).err().expect("refused");
    let message = err.to_string();
    assert!(matches!(err, EngineError::File(agora_engine::ModelFileError::HashMismatch { .. })));
    assert!(message.contains(&hex::encode(hash)) && message.contains(&hex::encode(claimed)), "{message}");
}

#[test]
fn smollm2_knows_the_capital_of_france() {
    let engine = engine(smollm2(), &smollm2_sha256(), 1, 2);
    let prompt = engine.tokenize("The capital of France is", false);
    let out = engine.generate_blocking(request(prompt, 8, 0, 0)).unwrap();
    let text = engine.detokenize(&out.tokens);
    assert!(text.contains("Paris"), "{text:?}");
}

#[test]
fn smollm2_is_bit_identical_across_threads_runs_and_concurrency() {
    let (one, two) = (engine(smollm2(), &smollm2_sha256(), 1, 1), engine(smollm2(), &smollm2_sha256(), 2, 1));
    let prompt = one.tokenize("Write a short poem about the sea.", false);
    for temperature in [0, 800] {
        let req = request(prompt.clone(), 24, temperature, 99);
        let first = one.generate_blocking(req.clone()).unwrap();
        assert_eq!(one.generate_blocking(req.clone()).unwrap(), first);
        // Two at once in the two-slot engine, beside a different request.
        let other = two.submit(request(one.tokenize("Name three colours.", false), 24, 0, 5)).unwrap();
        let a = two.submit(req.clone()).unwrap();
        assert_eq!(a.finish_blocking().unwrap(), first);
        other.finish_blocking().unwrap();
    }
}

#[test]
fn smollm2_is_bit_identical_across_processes_and_thread_counts() {
    let run = |threads: &str, temperature: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_agora-provider"))
            .args(["generate", "--model"])
            .arg(smollm2())
            .args(["--sha256", agora_fixtures::models::SMOLLM2_SHA256_HEX])
            .args(["--prompt", "Once upon a time", "--max-tokens", "16", "--seed", "3"])
            .args(["--threads", threads, "--temperature-milli", temperature, "--top-k", "40"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    for temperature in ["0", "700"] {
        let (a, b) = (run("1", temperature), run("2", temperature));
        assert_eq!(a["tokens"], b["tokens"]);
        assert_eq!(a["output_hash"], b["output_hash"]);
        assert_eq!(a["tokens"].as_array().unwrap().len(), 16);
    }
}
