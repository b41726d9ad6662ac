//! The GGUF file a provider serves, checked against the release it claims to be.

use agora_primitives::Hash256;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::EngineError;

/// How the hashing progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (hidden automatically when stderr is not a terminal).
    Bar,
    Hidden,
}

/// Streams the file through sha256, with a progress bar for multi-gigabyte models.
pub fn sha256_file(path: &Path, progress: Progress) -> Result<Hash256, EngineError> {
    let io = |source| EngineError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let bar = match progress {
        Progress::Bar => ProgressBar::new(len),
        Progress::Hidden => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("hashing {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hasher.finalize().into())
}

/// Refuses a file whose bytes are not the release it claims to be.
pub fn verify(path: &Path, expected: &Hash256, progress: Progress) -> Result<(), EngineError> {
    let actual = sha256_file(path, progress)?;
    if &actual != expected {
        return Err(EngineError::HashMismatch { path: path.to_path_buf(), expected: *expected, actual });
    }
    Ok(())
}
