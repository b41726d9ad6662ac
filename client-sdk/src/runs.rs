//! The runs a client keeps: each request's prompt and answer, so that the answer can be
//! challenged later (only hashes are on-chain, and verifiers judge the tokens they are shown).
//! One JSON file per request in a directory: `agora run` writes them, `agora challenge` and a
//! dApp's own [`Client::challenge`](crate::Client::challenge) read them.

use crate::run::RunResult;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A request's prompt and the answer this client got, as the providers' tokenizer ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub request: u64,
    pub prompt: Vec<u32>,
    pub output: Vec<u32>,
}

impl From<&RunResult> for RunRecord {
    fn from(result: &RunResult) -> Self {
        Self { request: result.request, prompt: result.prompt.clone(), output: result.tokens.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunStoreError {
    #[error("cannot keep the run in {dir}: {source}")]
    Write { dir: PathBuf, source: std::io::Error },
    #[error("no answer of request {request} was kept at {path} (only requests run from this machine with `agora run` can be challenged)")]
    NotKept { request: u64, path: PathBuf },
    #[error("no run was kept in {0}")]
    Empty(PathBuf),
    #[error("{path} is not a kept run: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

/// A directory of kept runs.
#[derive(Clone, Debug)]
pub struct RunStore {
    dir: PathBuf,
}

impl RunStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `~/.local/share/agora/runs` (the temporary directory without a home).
    pub fn default_dir() -> PathBuf {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".local/share/agora/runs")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, request: u64) -> PathBuf {
        self.dir.join(format!("{request}.json"))
    }

    /// Keeps `record`, replacing any earlier one of its request (written whole, then renamed,
    /// so a crash leaves the old record or the new one, never half of one).
    pub fn save(&self, record: &RunRecord) -> Result<(), RunStoreError> {
        let write = |source| RunStoreError::Write { dir: self.dir.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(write)?;
        let bytes = serde_json::to_vec(record).map_err(|e| write(e.into()))?;
        let partial = self.dir.join(format!("{}.json.partial", record.request));
        std::fs::write(&partial, bytes).map_err(write)?;
        std::fs::rename(&partial, self.path(record.request)).map_err(write)
    }

    /// The run kept for `request`.
    pub fn load(&self, request: u64) -> Result<RunRecord, RunStoreError> {
        let path = self.path(request);
        let bytes = std::fs::read(&path).map_err(|_| RunStoreError::NotKept { request, path: path.clone() })?;
        serde_json::from_slice(&bytes).map_err(|source| RunStoreError::Corrupt { path, source })
    }

    /// The run kept last.
    pub fn last(&self) -> Result<RunRecord, RunStoreError> {
        let kept = std::fs::read_dir(&self.dir).map_err(|_| RunStoreError::Empty(self.dir.clone()))?;
        let newest = kept
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path().file_stem()?.to_str()?.parse::<u64>().ok()?)))
            .max();
        let (_, request) = newest.ok_or_else(|| RunStoreError::Empty(self.dir.clone()))?;
        self.load(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_kept_loaded_and_the_last_one_found() {
        let dir = std::env::temp_dir().join(format!("agora-runs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = RunStore::new(&dir);
        assert!(matches!(store.last(), Err(RunStoreError::Empty(_))));
        let first = RunRecord { request: 7, prompt: vec![1, 2], output: vec![3] };
        store.save(&first).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = RunRecord { request: 3, prompt: vec![4], output: vec![5, 6] };
        store.save(&second).unwrap();
        assert_eq!(store.load(7).unwrap(), first);
        assert_eq!(store.last().unwrap(), second, "the newest file, not the highest request");
        assert!(matches!(store.load(8), Err(RunStoreError::NotKept { request: 8, .. })));
        std::fs::write(dir.join("9.json"), b"{not json").unwrap();
        assert!(matches!(store.load(9), Err(RunStoreError::Corrupt { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
