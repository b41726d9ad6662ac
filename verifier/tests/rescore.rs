//! Re-scoring on the real model (SmolLM2-135M-Instruct Q4_1): honest outputs pass, greedy and
//! sampled, produced with 1 and 2 threads; every kind of cheat is rejected with evidence at the
//! first bad position; bad input gets named errors.

use agora_fixtures::models::{self, Variant};
use agora_tokenizer::{ChatTurn, Tokenizer};
use agora_engine::{Engine, EngineConfig, EngineError, GenerateRequest, Progress};
use agora_primitives::wire::StopReason;
use agora_primitives::{sampling_seed, SamplingParams};
use agora_verifier::rescore::{rescore, Broken, Claim, Claimed, RescoreError};
use std::path::PathBuf;
use std::sync::OnceLock;

const MAX_TOKENS: u32 = 40;
const GREEDY: SamplingParams = SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 };
const NUCLEUS: SamplingParams = SamplingParams { temperature_milli: 700, top_k: 40, top_p_milli: 950 };
const HOT: SamplingParams = SamplingParams { temperature_milli: 1000, top_k: 0, top_p_milli: 0 };

fn smollm2() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| models::fetch_smollm2(agora_fixtures::workspace_root()).unwrap())
}

fn engine(threads: usize) -> Engine {
    let config = EngineConfig { n_ctx: 512, threads_per_slot: threads, ..EngineConfig::default() };
    Engine::load(smollm2(), &models::smollm2_sha256(), config, Progress::Hidden).unwrap()
}

fn chat(text: &str) -> Vec<u32> {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| Tokenizer::load(smollm2(), &models::smollm2_sha256(), Progress::Hidden).unwrap())
        .chat(&[ChatTurn { role: "user".into(), content: text.into() }])
        .unwrap()
}

fn request(prompt: &[u32], sampling: SamplingParams, id: u64) -> GenerateRequest {
    GenerateRequest { prompt: prompt.to_vec(), max_output_tokens: MAX_TOKENS, sampling, seed: sampling_seed(id), logprobs: false }
}

fn claim(request: &GenerateRequest, output: Vec<u32>) -> Claim {
    Claim { prompt: request.prompt.clone(), output, max_output_tokens: request.max_output_tokens, sampling: request.sampling, seed: request.seed }
}

#[test]
fn honest_outputs_pass_greedy_and_sampled_from_one_or_two_threads() {
    let (one, two) = (engine(1), engine(2));
    let prompts = ["What is the capital of France?", "Write a haiku about the sea.", "Give me three tips for learning to play the guitar."];
    for (id, text) in prompts.iter().enumerate() {
        for sampling in [GREEDY, NUCLEUS, HOT] {
            let request = request(&chat(text), sampling, id as u64);
            for generator in [&one, &two] {
                let honest = generator.generate_blocking(request.clone()).unwrap();
                assert!(!honest.tokens.is_empty());
                let verdict = rescore(&two, &claim(&request, honest.tokens.clone())).unwrap();
                assert!(verdict.accepted(), "{text} {sampling:?}: {verdict:?}");
                let claims_end = honest.stop == StopReason::EndOfGeneration;
                assert_eq!(verdict.checked as usize, honest.tokens.len() + usize::from(claims_end));
                if sampling == GREEDY {
                    assert!(verdict.matched * 10 >= verdict.checked * 9, "{verdict:?}");
                }
            }
        }
    }
}

#[test]
fn every_cheat_is_rejected_with_evidence_at_its_first_bad_position() {
    let verifier = engine(2);
    let end_tokens = verifier.end_tokens().to_vec();
    let n_vocab = verifier.n_vocab();
    // Junk: ids spread over the vocabulary, none of them an end token.
    let junk = |n: usize| -> Vec<u32> { (0..n as u32).map(|i| (i * 7919 + 1013) % n_vocab).filter(|t| !end_tokens.contains(t)).collect() };
    let cheaters: Vec<(Variant, Engine)> = [Variant::HalfBlocks, Variant::Q2K]
        .into_iter()
        .map(|v| (v, Engine::open(&models::smollm2_variant(smollm2(), v).unwrap(), EngineConfig::default(), Progress::Hidden).unwrap()))
        .collect();

    for sampling in [GREEDY, NUCLEUS] {
        // A request whose honest answer ends by itself, with room for 8 more tokens: the padded
        // cheat needs it.
        let (request, honest) = ["What is the capital of France?", "What is the plural of octopus?", "How many legs does a spider have?", "Name a colour."]
            .iter()
            .map(|text| {
                let request = request(&chat(text), sampling, 11);
                let honest = verifier.generate_blocking(request.clone()).unwrap();
                (request, honest)
            })
            .find(|(_, h)| h.stop == StopReason::EndOfGeneration && h.tokens.len() >= 6 && h.tokens.len() + 8 <= MAX_TOKENS as usize)
            .expect("no prompt of the list has a short answer");
        let n = honest.tokens.len();
        let half = n / 2;
        let judged = |output: Vec<u32>| rescore(&verifier, &claim(&request, output)).unwrap();

        // Random tokens fail at once.
        let random = judged(junk(n));
        let evidence = random.rejection.expect("random tokens accepted");
        assert_eq!((evidence.position, evidence.claimed), (0, Claimed::Token(junk(n)[0])), "{sampling:?}");
        assert!(evidence.rank > 100, "{evidence:?}");

        // An honest prefix, then junk: the first junk token.
        let mut prefixed = honest.tokens[..half].to_vec();
        prefixed.extend(junk(n - half));
        let evidence = judged(prefixed).rejection.expect("honest prefix + junk accepted");
        assert_eq!(evidence.position as usize, half, "{sampling:?}: {evidence:?}");
        assert_eq!(evidence.expected, honest.tokens[half]);

        // Truncated: the claimed end, where the model wanted the next honest token.
        let evidence = judged(honest.tokens[..half].to_vec()).rejection.expect("truncated accepted");
        assert_eq!((evidence.position as usize, evidence.claimed), (half, Claimed::End), "{sampling:?}");
        assert_eq!(evidence.expected, honest.tokens[half]);

        // Padded: the first token after the honest end, where the model wanted to stop.
        let mut padded = honest.tokens.clone();
        padded.extend(honest.tokens.iter().cycle().take(8));
        let evidence = judged(padded).rejection.expect("padded accepted");
        assert_eq!((evidence.position as usize, evidence.claimed), (n, Claimed::Token(honest.tokens[0])), "{sampling:?}");
        assert!(end_tokens.contains(&evidence.expected));
        match sampling {
            GREEDY => assert!(matches!(evidence.broken, Broken::Rank { .. } | Broken::Margin { .. }), "{evidence:?}"),
            _ => assert!(matches!(evidence.broken, Broken::Draw { .. }), "{evidence:?}"),
        }

        // A cheaper model: rejected, and nothing before the evidence breaks a tolerance (its
        // first differing tokens may be near-ties the tolerance allows).
        for (variant, cheater) in &cheaters {
            let output = cheater.generate_blocking(request.clone()).unwrap().tokens;
            let first_difference = output.iter().zip(&honest.tokens).position(|(a, b)| a != b).unwrap_or(output.len().min(n));
            let verdict = judged(output.clone());
            let evidence = verdict.rejection.unwrap_or_else(|| panic!("{variant:?} {sampling:?} accepted: {output:?} vs {:?}", honest.tokens));
            assert!(evidence.position as usize >= first_difference, "{variant:?}: {evidence:?}");
            let before = judged(output[..evidence.position as usize].to_vec());
            assert!(
                before.rejection.is_none_or(|e| e.position == evidence.position && e.claimed == Claimed::End),
                "{variant:?}: the prefix before the evidence fails earlier: {before:?}"
            );
        }
    }

    // A greedy answer claimed for a sampled request: caught where the seeded draw left the top token.
    let sampled = request(&chat("Write a haiku about the sea."), HOT, 11);
    let greedy_answer = verifier.generate_blocking(GenerateRequest { sampling: GREEDY, ..sampled.clone() }).unwrap().tokens;
    let honest = verifier.generate_blocking(sampled.clone()).unwrap().tokens;
    assert_ne!(greedy_answer, honest);
    assert!(!rescore(&verifier, &claim(&sampled, greedy_answer)).unwrap().accepted());
}

#[test]
fn bad_claims_get_named_errors() {
    let verifier = engine(1);
    let request = request(&chat("What is 2 + 2?"), GREEDY, 1);
    let too_long = claim(&request, vec![42; MAX_TOKENS as usize + 1]);
    assert!(matches!(rescore(&verifier, &too_long), Err(RescoreError::OutputTooLong { claimed: 41, allowed: MAX_TOKENS })));
    let n_vocab = verifier.n_vocab();
    let outside = claim(&request, vec![42, 43, n_vocab + 5]);
    match rescore(&verifier, &outside) {
        Err(RescoreError::TokenOutOfVocabulary { position: 2, token, n_vocab: v }) => assert_eq!((token, v), (n_vocab + 5, n_vocab)),
        other => panic!("{other:?}"),
    }
    let no_prompt = Claim { prompt: Vec::new(), ..claim(&request, vec![42]) };
    assert!(matches!(rescore(&verifier, &no_prompt), Err(RescoreError::Engine(EngineError::EmptyPrompt))));
    let overflowing = Claim { prompt: vec![42; 500], max_output_tokens: 100, ..claim(&request, vec![42; 20]) };
    assert!(matches!(rescore(&verifier, &overflowing), Err(RescoreError::TooLong { prompt: 500, output: 20, n_ctx: 512 })));
    // The error messages name what is wrong.
    let message = rescore(&verifier, &too_long).unwrap_err().to_string();
    assert!(message.contains("41 tokens") && message.contains("at most 40"), "{message}");
}
