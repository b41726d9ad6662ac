//! Derived GGUFs from llama.cpp's own quantizer: another quantization of a model, optionally with
//! layers pruned. The verifier's calibration and tests use them as the cheats a provider might
//! run instead of the registered release (a cheaper quantization, a smaller model).

use super::{backend, EngineError};
use std::ffi::CString;
use std::path::Path;

/// Target quantizations (llama.cpp's `llama_ftype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    Q4_0,
    Q4_1,
    Q8_0,
    Q2K,
    Q3KS,
}

impl Quantization {
    fn ftype(self) -> llama_cpp_sys_2::llama_ftype {
        match self {
            Self::Q4_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0,
            Self::Q4_1 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1,
            Self::Q8_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
            Self::Q2K => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q2_K,
            Self::Q3KS => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q3_K_S,
        }
    }
}

/// Writes `output`: `input` requantized to `to` (already-quantized tensors too), without the
/// transformer blocks listed in `prune` (their indices).
pub fn requantize(input: &Path, output: &Path, to: Quantization, prune: &[i32], threads: i32) -> Result<(), EngineError> {
    backend()?;
    let path = |p: &Path| {
        CString::new(p.to_string_lossy().as_bytes()).map_err(|_| EngineError::Io {
            path: p.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"),
        })
    };
    let (input_c, output_c) = (path(input)?, path(output)?);
    let mut pruned: Vec<i32> = prune.to_vec();
    pruned.push(-1);
    // SAFETY: default parameters come from llama.cpp; every pointer we set (paths, the
    // -1-terminated prune list) outlives the call, which does not keep them.
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = threads;
        params.ftype = to.ftype();
        params.allow_requantize = true;
        if !prune.is_empty() {
            params.prune_layers = pruned.as_ptr();
        }
        llama_cpp_sys_2::llama_model_quantize(input_c.as_ptr(), output_c.as_ptr(), &params)
    };
    if status != 0 {
        return Err(EngineError::Load { path: input.to_path_buf(), reason: format!("llama.cpp's quantizer failed with status {status}") });
    }
    Ok(())
}
