//! A release's tokenizer in pure Rust, read from its hash-checked GGUF.
//!
//! Clients tokenise prompts themselves: token ids are what travels to the providers and what the
//! on-chain prompt hash covers (`docs/DESIGN.md` section 4), so a client's ids must be the ones
//! llama.cpp would make of the same text with the same file. This crate does what llama.cpp does
//! for byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`, with the `gpt2` and `smollm`
//! pre-tokenizers) and for ChatML chat templates, and refuses any other by name rather than
//! guessing. It is tested against llama.cpp itself on the project's real model (every token's
//! text, and a corpus of prompts). It needs no C++, so a dApp that depends on the client
//! library compiles none.

mod bpe;
mod bytes;
mod chat;
pub mod gguf;
pub mod model_file;
mod pretokenize;

pub use chat::ChatTurn;
pub use model_file::{Progress, Sha256Hash};

use gguf::{GgufError, Metadata};
use model_file::ModelFileError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    File(#[from] ModelFileError),
    #[error("cannot read the GGUF metadata of {path}: {source}")]
    Gguf { path: PathBuf, source: GgufError },
    #[error("the GGUF has no `{0}`: it carries no tokenizer this crate can read")]
    MissingKey(&'static str),
    #[error("tokenizer model `{0}` is not supported here (only byte-level BPE, `gpt2`)")]
    UnsupportedModel(String),
    #[error("pre-tokenizer `{0}` is not supported here (only `gpt2` and `smollm`)")]
    UnsupportedPreTokenizer(String),
    #[error("the GGUF has no chat template: send the prompt as text or token ids")]
    NoChatTemplate,
    #[error("the GGUF's chat template is not one this client renders (only ChatML): {0}…")]
    UnsupportedChatTemplate(String),
}

/// How llama.cpp treats a token (the GGUF's `tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl Kind {
    fn of(code: u64) -> Self {
        match code {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }

    /// Matched in the text before BPE runs (control and unknown ones only when parsing specials).
    fn is_special(self) -> bool {
        matches!(self, Self::Control | Self::UserDefined | Self::Unknown)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PreTokenizer {
    Gpt2,
    /// GPT-2's, after every number character is cut out on its own.
    Smollm,
}

/// The vocabulary and chat template of one GGUF.
pub struct Tokenizer {
    texts: Vec<String>,
    kinds: Vec<Kind>,
    ids: HashMap<String, u32>,
    merges: bpe::Merges,
    /// Special tokens, longest text first: the order llama.cpp matches them in.
    specials: Vec<u32>,
    pre: PreTokenizer,
    bos: Option<u32>,
    add_bos: bool,
    template: Option<String>,
    n_ctx_train: u32,
    metadata: Metadata,
}

impl Tokenizer {
    /// Hashes `path`, refuses it unless it is `expected`, and reads its tokenizer.
    pub fn load(path: &Path, expected: &Sha256Hash, progress: Progress) -> Result<Self, TokenizerError> {
        model_file::verify(path, expected, progress)?;
        Self::load_checked(path)
    }

    /// Hashes `path` (once) and reads its tokenizer: for tools that learn a file's identity,
    /// such as publishing it as a release.
    pub fn open(path: &Path, progress: Progress) -> Result<(Self, Sha256Hash), TokenizerError> {
        let sha256 = model_file::sha256_file(path, progress)?;
        Ok((Self::load_checked(path)?, sha256))
    }

    /// Reads the tokenizer of a file whose bytes the caller has just checked.
    pub fn load_checked(path: &Path) -> Result<Self, TokenizerError> {
        let metadata = Metadata::read(path).map_err(|source| TokenizerError::Gguf { path: path.to_path_buf(), source })?;
        Self::from_metadata(metadata)
    }

    pub fn from_metadata(mut metadata: Metadata) -> Result<Self, TokenizerError> {
        let model = metadata.str("tokenizer.ggml.model").ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.into()));
        }
        let pre = match metadata.str("tokenizer.ggml.pre").unwrap_or("default") {
            "gpt2" | "default" => PreTokenizer::Gpt2,
            "smollm" => PreTokenizer::Smollm,
            other => return Err(TokenizerError::UnsupportedPreTokenizer(other.into())),
        };
        let strings = |metadata: &mut Metadata, key: &'static str| -> Result<Vec<String>, TokenizerError> {
            let values = metadata.take(key).ok_or(TokenizerError::MissingKey(key))?;
            let items = values.into_array().ok_or(TokenizerError::MissingKey(key))?;
            items.into_iter().map(|v| v.into_string().ok_or(TokenizerError::MissingKey(key))).collect()
        };
        let texts = strings(&mut metadata, "tokenizer.ggml.tokens")?;
        let merge_lines = strings(&mut metadata, "tokenizer.ggml.merges")?;
        let kinds: Vec<Kind> = match metadata.take("tokenizer.ggml.token_type").and_then(|v| v.into_array()) {
            Some(codes) => codes.iter().map(|c| Kind::of(c.as_u64().unwrap_or(1))).chain(std::iter::repeat(Kind::Normal)).take(texts.len()).collect(),
            None => vec![Kind::Normal; texts.len()],
        };
        let mut ids = HashMap::with_capacity(texts.len());
        for (id, text) in texts.iter().enumerate() {
            ids.entry(text.clone()).or_insert(id as u32);
        }
        let mut specials: Vec<u32> = (0..texts.len() as u32).filter(|&id| kinds[id as usize].is_special()).collect();
        specials.sort_by_key(|&id| (std::cmp::Reverse(texts[id as usize].len()), id));
        let n_vocab = texts.len() as u64;
        let token_id = |key| metadata.u64(key).filter(|&id| id < n_vocab).map(|id| id as u32);
        let bos = token_id("tokenizer.ggml.bos_token_id");
        let add_bos = metadata.bool("tokenizer.ggml.add_bos_token").unwrap_or(false);
        let template = metadata.str("tokenizer.chat_template").map(str::to_owned);
        let architecture = metadata.str("general.architecture").unwrap_or_default().to_owned();
        let n_ctx_train = metadata.u64(&format!("{architecture}.context_length")).unwrap_or(0).min(u64::from(u32::MAX)) as u32;
        Ok(Self {
            merges: bpe::Merges::new(merge_lines.iter().map(String::as_str)),
            texts,
            kinds,
            ids,
            specials,
            pre,
            bos,
            add_bos,
            template,
            n_ctx_train,
            metadata,
        })
    }

    /// A scalar of the GGUF's metadata (`general.architecture`, `general.file_type`, ...) as text.
    pub fn metadata(&self, key: &str) -> Option<String> {
        self.metadata.text(key)
    }

    pub fn n_vocab(&self) -> u32 {
        self.texts.len() as u32
    }

    /// The context length the model was trained for.
    pub fn n_ctx_train(&self) -> u32 {
        self.n_ctx_train
    }

    /// Plain text as a completion prompt: special-token text stays text (user-defined tokens
    /// excepted, as in llama.cpp); `add_special` adds the BOS token if the model wants one.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.encode(text, add_special, false)
    }

    /// A conversation rendered with the GGUF's chat template, ending with the assistant's turn
    /// opened; its role markers become the special tokens they name.
    pub fn chat(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, TokenizerError> {
        let template = chat::Template::detect(self.template.as_deref())?;
        Ok(self.encode(&template.render(turns), false, true))
    }

    fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Special(id) => out.push(id),
                Fragment::Text(text) => self.encode_text(text, &mut out),
            }
        }
        out
    }

    /// Cuts the special tokens' texts out of `text`, longest first.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        for &id in &self.specials {
            let kind = self.kinds[id as usize];
            if !parse_special && matches!(kind, Kind::Control | Kind::Unknown) {
                continue;
            }
            let needle = self.texts[id as usize].as_str();
            if needle.is_empty() {
                continue;
            }
            fragments = fragments
                .into_iter()
                .flat_map(|fragment| match fragment {
                    Fragment::Text(text) => split_on(text, needle, id),
                    special => vec![special],
                })
                .collect();
        }
        fragments
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        let pieces = match self.pre {
            PreTokenizer::Gpt2 => vec![text],
            PreTokenizer::Smollm => pretokenize::isolate_digits(text),
        };
        for piece in pieces {
            for word in pretokenize::gpt2_words(piece) {
                for symbol in self.merges.apply(&bytes::encode(word.as_bytes())) {
                    match self.ids.get(&symbol) {
                        Some(&id) => out.push(id),
                        // As llama.cpp: fall back to the symbol's single bytes that are tokens.
                        None => out.extend(symbol.bytes().filter_map(|b| self.ids.get(std::str::from_utf8(&[b]).ok()?).copied())),
                    }
                }
            }
        }
    }

    /// One token's bytes as streamed (possibly part of a UTF-8 character); control and unknown
    /// tokens, and ids outside the vocabulary, are empty.
    pub fn piece(&self, token: u32) -> Vec<u8> {
        let Some(text) = self.texts.get(token as usize) else { return Vec::new() };
        match self.kinds[token as usize] {
            Kind::Control | Kind::Unknown | Kind::Unused => Vec::new(),
            Kind::UserDefined => text.as_bytes().to_vec(),
            // A byte token of a byte-level BPE vocabulary names its byte in the alphabet too.
            Kind::Normal | Kind::Byte => bytes::decode(text),
        }
    }

    /// The text of `tokens`; invalid UTF-8 (a character split at the end) is replaced.
    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| self.piece(t)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The first id outside the vocabulary, with its position.
    pub fn out_of_vocabulary(&self, tokens: &[u32]) -> Option<(usize, u32)> {
        tokens.iter().copied().enumerate().find(|&(_, t)| t >= self.n_vocab())
    }
}

enum Fragment<'t> {
    Text(&'t str),
    Special(u32),
}

fn split_on<'t>(text: &'t str, needle: &str, id: u32) -> Vec<Fragment<'t>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        if at > 0 {
            out.push(Fragment::Text(&rest[..at]));
        }
        out.push(Fragment::Special(id));
        rest = &rest[at + needle.len()..];
    }
    if !rest.is_empty() {
        out.push(Fragment::Text(rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf::Value;

    /// A byte-level vocabulary of every single byte, a few merges and two specials.
    fn tiny() -> Tokenizer {
        let mut texts: Vec<String> = vec!["<|im_start|>".into(), "<|im_end|>".into()];
        texts.extend((0..=255u8).map(|b| bytes::encode(&[b])));
        texts.extend(["he", "ll", "hell", "hello", "\u{120}w"].map(String::from));
        let mut kinds = vec![3u64, 3];
        kinds.extend(std::iter::repeat(1).take(texts.len() - 2));
        let merges = ["h e", "l l", "he ll", "hell o", "\u{120} w"];
        let metadata = Metadata::from_pairs([
            ("general.architecture", Value::Str("llama".into())),
            ("llama.context_length", Value::U64(2048)),
            ("tokenizer.ggml.model", Value::Str("gpt2".into())),
            ("tokenizer.ggml.pre", Value::Str("smollm".into())),
            ("tokenizer.ggml.tokens", Value::Array(texts.into_iter().map(Value::Str).collect())),
            ("tokenizer.ggml.token_type", Value::Array(kinds.into_iter().map(Value::U64).collect())),
            ("tokenizer.ggml.merges", Value::Array(merges.iter().map(|m| Value::Str((*m).into())).collect())),
            ("tokenizer.chat_template", Value::Str("{{'<|im_start|>' + message['role']}}".into())),
        ]);
        Tokenizer::from_metadata(metadata).unwrap()
    }

    #[test]
    fn text_merges_and_round_trips() {
        let t = tiny();
        let ids = t.tokenize("hello world 42", false);
        assert_eq!(t.texts[ids[0] as usize], "hello");
        assert_eq!(t.texts[ids[1] as usize], "\u{120}w");
        assert_eq!(t.detokenize(&ids), "hello world 42");
        assert_eq!(t.n_ctx_train(), 2048);
        assert_eq!(t.metadata("general.architecture").as_deref(), Some("llama"));
    }

    #[test]
    fn specials_are_text_in_plain_prompts_and_markers_in_chats() {
        let t = tiny();
        let plain = t.tokenize("<|im_start|>", false);
        assert!(plain.len() > 1 && !plain.contains(&0), "{plain:?}");
        let chat = t.chat(&[ChatTurn { role: "user".into(), content: "hello".into() }]).unwrap();
        assert_eq!(chat[0], 0);
        assert_eq!(chat.iter().filter(|&&t| t == 1).count(), 1);
        assert_eq!(t.detokenize(&chat), "user\nhello\nassistant\n", "control tokens print as nothing");
    }

    #[test]
    fn bad_ids_and_other_tokenizers_are_named() {
        let t = tiny();
        assert_eq!(t.piece(u32::MAX), Vec::<u8>::new());
        assert_eq!(t.out_of_vocabulary(&[3, 9_999]), Some((1, 9_999)));
        let spm = Metadata::from_pairs([("tokenizer.ggml.model", Value::Str("llama".into()))]);
        assert!(matches!(Tokenizer::from_metadata(spm), Err(TokenizerError::UnsupportedModel(m)) if m == "llama"));
        let odd = Metadata::from_pairs([("tokenizer.ggml.model", Value::Str("gpt2".into())), ("tokenizer.ggml.pre", Value::Str("qwen2".into()))]);
        assert!(matches!(Tokenizer::from_metadata(odd), Err(TokenizerError::UnsupportedPreTokenizer(_))));
        assert!(matches!(chat::Template::detect(Some("[INST]")), Err(TokenizerError::UnsupportedChatTemplate(_))));
        assert!(matches!(chat::Template::detect(None), Err(TokenizerError::NoChatTemplate)));
    }
}
