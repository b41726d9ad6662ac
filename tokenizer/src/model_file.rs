//! A GGUF file checked against the release it claims to be: its sha256 is the release's id.

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A release id: the sha256 of the GGUF's bytes.
pub type Sha256Hash = [u8; 32];

/// How the hashing progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (hidden automatically when stderr is not a terminal).
    Bar,
    Hidden,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "refusing {path}: its sha256 is {actual_hex}, but the release it claims has sha256 {expected_hex}",
        actual_hex = hex::encode(.actual),
        expected_hex = hex::encode(.expected)
    )]
    HashMismatch { path: PathBuf, expected: Sha256Hash, actual: Sha256Hash },
}

/// Streams the file through sha256, with a progress bar for multi-gigabyte models.
pub fn sha256_file(path: &Path, progress: Progress) -> Result<Sha256Hash, ModelFileError> {
    let io = |source| ModelFileError::Io { path: path.to_path_buf(), source };
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
pub fn verify(path: &Path, expected: &Sha256Hash, progress: Progress) -> Result<(), ModelFileError> {
    let actual = sha256_file(path, progress)?;
    if &actual != expected {
        return Err(ModelFileError::HashMismatch { path: path.to_path_buf(), expected: *expected, actual });
    }
    Ok(())
}
