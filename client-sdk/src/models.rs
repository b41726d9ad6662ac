//! Model references, the release catalogue, and the local GGUF files prompts are tokenised with.

use crate::error::{ClientError, Result};
use agora_chain_client::{types, ChainClient, ModelRelease};
use agora_primitives::Hash256;
use agora_tokenizer::{Progress, Tokenizer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How a caller names a model: a family (its newest active release), a family and version,
/// or a release's sha256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    Family { family: String, version: Option<String> },
    Release(Hash256),
}

impl std::str::FromStr for ModelRef {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(s, &mut hash).map_err(|_| ClientError::BadModelRef(s.into()))?;
            return Ok(ModelRef::Release(hash));
        }
        let (family, version) = match s.split_once(':') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (s, None),
        };
        if family.is_empty() || version.as_deref() == Some("") {
            return Err(ClientError::BadModelRef(s.into()));
        }
        Ok(ModelRef::Family { family: family.into(), version })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelRef::Family { family, version: Some(v) } => write!(f, "{family}:{v}"),
            ModelRef::Family { family, version: None } => write!(f, "{family}"),
            ModelRef::Release(hash) => write!(f, "{}", hex::encode(hash)),
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The release a reference names: for a family, the newest release that is not revoked
/// (an exact version may be deprecated; a revoked one is refused).
pub async fn resolve(chain: &ChainClient, model: &ModelRef) -> Result<ModelRelease> {
    let release = match model {
        ModelRef::Release(hash) => chain.release(*hash).await?,
        ModelRef::Family { family, version: Some(version) } => {
            chain.release_history(family).await?.into_iter().rev().find(|r| text(&r.info.version.0) == *version)
        },
        ModelRef::Family { family, version: None } => {
            let history = chain.release_history(family).await?;
            let newest_active = history.iter().rev().find(|r| r.status == types::ReleaseStatus::Active).cloned();
            newest_active.or_else(|| history.into_iter().rev().find(|r| r.status != types::ReleaseStatus::Revoked))
        },
    };
    let release = release.ok_or_else(|| ClientError::UnknownModel(model.to_string()))?;
    if release.status == types::ReleaseStatus::Revoked {
        return Err(ClientError::Revoked(release.info.sha256));
    }
    Ok(release)
}

/// Where the client looks for the GGUF of a release: explicit files and directories of `*.gguf`.
/// A file is used only if its size and then its sha256 match the release.
#[derive(Default)]
pub struct ModelFiles {
    search: Vec<PathBuf>,
    loaded: Mutex<HashMap<Hash256, Arc<Tokenizer>>>,
}

impl ModelFiles {
    pub fn new(search: Vec<PathBuf>) -> Self {
        Self { search, loaded: Mutex::default() }
    }

    /// The default search path: `$AGORA_MODEL_DIR`, else `~/.cache/agora-models`, where
    /// `scripts/fetch-model` puts the project's model (in a subdirectory).
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("AGORA_MODEL_DIR") {
            return dir.into();
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".cache").join("agora-models")
    }

    /// Files given, and `*.gguf` files in the directories given and their subdirectories.
    fn candidates(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, depth: u32, out: &mut Vec<PathBuf>) {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() && depth > 0 {
                    walk(&path, depth - 1, out);
                } else if path.extension().is_some_and(|e| e == "gguf") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        for path in &self.search {
            if path.is_dir() {
                walk(path, 2, &mut out);
            } else {
                out.push(path.clone());
            }
        }
        out
    }

    /// The tokenizer of `release`, loaded once (hashing the file) and kept.
    pub async fn tokenizer(&self, release: &ModelRelease) -> Result<Arc<Tokenizer>> {
        let id = release.info.sha256;
        if let Some(t) = self.loaded.lock().expect("not poisoned").get(&id) {
            return Ok(t.clone());
        }
        let size = release.info.size_bytes;
        let file = self.candidates().into_iter().find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == size));
        let Some(file) = file else {
            return Err(ClientError::ModelFileMissing { release: id, family: text(&release.info.family.0), size, searched: self.search.clone() });
        };
        let tokenizer = tokio::task::spawn_blocking(move || Tokenizer::load(&file, &id, Progress::Bar))
            .await
            .map_err(ClientError::Task)??;
        let tokenizer = Arc::new(tokenizer);
        self.loaded.lock().expect("not poisoned").insert(id, tokenizer.clone());
        Ok(tokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_references_parse() {
        assert_eq!("smollm2".parse::<ModelRef>().unwrap(), ModelRef::Family { family: "smollm2".into(), version: None });
        assert_eq!(
            "smollm2:1.0".parse::<ModelRef>().unwrap(),
            ModelRef::Family { family: "smollm2".into(), version: Some("1.0".into()) }
        );
        let hex = "ab".repeat(32);
        assert_eq!(hex.parse::<ModelRef>().unwrap(), ModelRef::Release([0xab; 32]));
        for bad in ["", ":1", "smollm2:"] {
            assert!(matches!(bad.parse::<ModelRef>(), Err(ClientError::BadModelRef(_))), "{bad}");
        }
        assert_eq!("smollm2:1.0".parse::<ModelRef>().unwrap().to_string(), "smollm2:1.0");
    }
}
