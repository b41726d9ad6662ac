//! The pure-Rust tokenizer a client uses (`agora-tokenizer`) against llama.cpp's own, on the
//! project's real model: the ids a client hashes on-chain must be the ones llama.cpp makes.

use agora_fixtures::models::{fetch_smollm2, smollm2_sha256};
use agora_tokenizer::{ChatTurn, Progress, Tokenizer};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::sync::OnceLock;

struct Both {
    llama: LlamaModel,
    ours: Tokenizer,
}

fn both() -> &'static Both {
    static BOTH: OnceLock<Both> = OnceLock::new();
    BOTH.get_or_init(|| {
        let path = fetch_smollm2(agora_fixtures::workspace_root()).unwrap();
        let llama = LlamaModel::load_from_file(agora_engine::backend().unwrap(), &path, &LlamaModelParams::default().with_vocab_only(true)).unwrap();
        let ours = Tokenizer::load(&path, &smollm2_sha256(), Progress::Hidden).unwrap();
        Both { llama, ours }
    })
}

fn llama_tokens(text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
    both().llama.vocab().tokenize(text.as_bytes(), add_special, parse_special).into_iter().map(|t| t.0 as u32).collect()
}

#[test]
fn every_token_reads_as_llama_cpp_reads_it() {
    let Both { llama, ours } = both();
    assert_eq!(ours.n_vocab() as i32, llama.n_vocab());
    // A vocabulary-only llama.cpp model reads no hyper-parameters; the GGUF says 8192.
    assert_eq!(ours.n_ctx_train(), 8192);
    for id in 0..ours.n_vocab() {
        let theirs = llama.vocab().token_to_piece(LlamaToken(id as i32), false, None);
        assert_eq!(ours.piece(id), theirs, "token {id}");
    }
    assert!(ours.piece(ours.n_vocab()).is_empty(), "an id outside the vocabulary has no text");
}

/// Text that exercises every branch of the pre-tokenizer: contractions, runs of spaces and
/// newlines, digits, punctuation, non-ASCII letters and numbers, marks, emoji, special tokens.
const HAND_PICKED: &[&str] = &[
    "The capital of France is",
    "What is the square root of 1764?",
    "I'm sure they'll say it's 3.14159, isn't it? We've 'd 'll 're 've 'm 's 't",
    "  leading and trailing  \n\n\ttabs\t\tand\r\nwindows\r\n  ",
    "naïve café – “quotes” — façade, Straße, ÆØÅ, İstanbul",
    "数字 123 和 ٣٤٥ and ⅣⅤ and ²³ and ①",
    "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "e\u{301} combining a\u{308}\u{323} marks",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|> <repo_name>",
    "x=>{return a&&b||c;}//comment /* block */ #include <stdio.h>",
    "     ",
    "\n",
    "a",
    "'",
    "''''",
    "1,000,000.00 $ € ¥ £",
    "\u{a0}non-breaking\u{2003}em\u{3000}ideographic",
];

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = HAND_PICKED.iter().map(|s| s.to_string()).collect();
    let prompts = std::fs::read_to_string(agora_fixtures::workspace_root().join("cli/data/routing-prompts.txt")).unwrap();
    texts.extend(prompts.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(str::to_string));
    // Random strings over an alphabet of every class the splitter distinguishes.
    let alphabet: Vec<char> = "aZ09 \n\t\r'.,!?-_/é中٣Ⅳ🙂\u{301}\u{a0}<|>sdtmlrev".chars().collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    for _ in 0..2_000 {
        let len = 1 + rng.next_u32() as usize % 24;
        texts.push((0..len).map(|_| alphabet[rng.next_u32() as usize % alphabet.len()]).collect());
    }
    texts
}

#[test]
fn prompts_tokenise_as_llama_cpp_tokenises_them() {
    let ours = &both().ours;
    for text in corpus() {
        for add_special in [false, true] {
            let theirs = llama_tokens(&text, add_special, false);
            assert_eq!(ours.tokenize(&text, add_special), theirs, "{text:?} (add_special {add_special})");
        }
        assert_eq!(ours.detokenize(&llama_tokens(&text, false, false)), text, "{text:?} round trip");
    }
}

#[test]
fn chats_render_and_tokenise_as_llama_cpp_does() {
    let Both { llama, ours } = both();
    let template = llama.chat_template(None).unwrap();
    let conversations: Vec<Vec<ChatTurn>> = vec![
        vec![ChatTurn { role: "user".into(), content: "What is the capital of France?".into() }],
        vec![
            ChatTurn { role: "system".into(), content: "You answer in one word.".into() },
            ChatTurn { role: "user".into(), content: "Name a large ocean.".into() },
            ChatTurn { role: "assistant".into(), content: "Pacific".into() },
            ChatTurn { role: "user".into(), content: "And another, with <|im_end|> inside? 42".into() },
        ],
    ];
    for turns in conversations {
        let messages: Vec<LlamaChatMessage> = turns.iter().map(|t| LlamaChatMessage::new(t.role.clone(), t.content.clone()).unwrap()).collect();
        let text = llama.apply_chat_template(&template, &messages, true).unwrap();
        assert_eq!(ours.chat(&turns).unwrap(), llama_tokens(&text, false, true), "{text:?}");
    }
}
