//! A release's tokenizer without its weights: clients tokenise prompts once, as token ids are
//! what travels and what the on-chain prompt hash covers (DESIGN.md section 4).

use super::{backend, model_file, piece, EngineError, Progress};
use agora_primitives::Hash256;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::path::Path;

/// One chat turn, as OpenAI-style APIs carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

/// The vocabulary and chat template of a verified GGUF (`vocab_only`: no tensors are read).
pub struct Tokenizer {
    model: LlamaModel,
    n_vocab: u32,
    n_ctx_train: u32,
}

impl Tokenizer {
    /// Hashes `path`, refuses it unless it is `expected`, and loads its vocabulary.
    pub fn load(path: &Path, expected: &Hash256, progress: Progress) -> Result<Self, EngineError> {
        model_file::verify(path, expected, progress)?;
        Self::load_vocab(path)
    }

    /// Hashes `path` (once) and loads its vocabulary: for tools that learn a file's identity,
    /// such as publishing it as a release.
    pub fn open(path: &Path, progress: Progress) -> Result<(Self, Hash256), EngineError> {
        let sha256 = model_file::sha256_file(path, progress)?;
        Ok((Self::load_vocab(path)?, sha256))
    }

    /// Loads the vocabulary of a file whose bytes the caller has just checked, such as the file
    /// an [`Engine`](crate::Engine) was loaded from: hashing ~100 MB again would only repeat it.
    pub fn load_checked(path: &Path) -> Result<Self, EngineError> {
        Self::load_vocab(path)
    }

    fn load_vocab(path: &Path) -> Result<Self, EngineError> {
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend()?, path, &params)
            .map_err(|e| EngineError::Load { path: path.to_path_buf(), reason: e.to_string() })?;
        let n_vocab = u32::try_from(model.n_vocab()).unwrap_or(0);
        let n_ctx_train = model.n_ctx_train();
        Ok(Self { model, n_vocab, n_ctx_train })
    }

    /// A string value of the GGUF's metadata (`general.architecture`, ...), if present.
    pub fn metadata(&self, key: &str) -> Option<String> {
        self.model.meta_val_str(key).ok()
    }

    pub fn n_vocab(&self) -> u32 {
        self.n_vocab
    }

    /// The context length the model was trained for.
    pub fn n_ctx_train(&self) -> u32 {
        self.n_ctx_train
    }

    /// Plain text as a completion prompt (special-token text stays text).
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.encode(text, add_special, false)
    }

    /// A conversation rendered with the chat template the GGUF carries, ending with the
    /// assistant's turn opened; its role markers become the special tokens they name.
    pub fn chat(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, EngineError> {
        let template = self.model.chat_template(None).map_err(|e| EngineError::Template(e.to_string()))?;
        let messages = turns
            .iter()
            .map(|t| LlamaChatMessage::new(t.role.clone(), t.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let text = self.model.apply_chat_template(&template, &messages, true).map_err(|e| EngineError::Template(e.to_string()))?;
        Ok(self.encode(&text, false, true))
    }

    fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let vocab = self.model.vocab();
        vocab.tokenize(text.as_bytes(), add_special, parse_special).into_iter().map(|t| t.0 as u32).collect()
    }

    /// One token's bytes as streamed (possibly part of a UTF-8 character).
    pub fn piece(&self, token: u32) -> Vec<u8> {
        if token >= self.n_vocab {
            return Vec::new();
        }
        piece(&self.model, token)
    }

    /// The text of `tokens`; invalid UTF-8 is replaced.
    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let tokens: Vec<LlamaToken> = tokens.iter().filter(|&&t| t < self.n_vocab).map(|&t| LlamaToken(t as i32)).collect();
        if tokens.is_empty() {
            return String::new();
        }
        String::from_utf8_lossy(&self.model.vocab().detokenize(&tokens, false, false)).into_owned()
    }

    /// Whether `token` ends a generation (end of turn or of text).
    pub fn is_end(&self, token: u32) -> bool {
        token < self.n_vocab && self.model.vocab().is_eog(LlamaToken(token as i32))
    }
}
