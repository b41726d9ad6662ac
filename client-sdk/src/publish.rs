//! Publishing a GGUF as a model release: its sha256 (hashed with a progress bar) is the id; the
//! architecture and quantization are read from the file's own metadata unless given.

use crate::error::{ClientError, Result};
use crate::Client;
use agora_chain_client::{agora, agora::runtime_types::bounded_collections::bounded_vec::BoundedVec, types, ModelRelease};
use agora_primitives::Hash256;
use agora_tokenizer::gguf::Metadata;
use agora_tokenizer::{model_file, Progress, TokenizerError};
use std::path::Path;

/// What a publisher states about a release besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct ReleaseMeta {
    pub family: String,
    pub version: String,
    pub license: String,
    /// The release this one derives from (fine-tune, adapter, requantisation).
    pub parent: Option<Hash256>,
    /// Default: the GGUF's `general.architecture`.
    pub architecture: Option<String>,
    /// Default: from the GGUF's `general.file_type`.
    pub quantization: Option<String>,
    /// Hash of an off-chain metadata document (model card), if any.
    pub metadata_hash: Hash256,
}

/// llama.cpp's `llama_ftype` numbers, as GGUF files record them.
fn file_type_name(file_type: &str) -> Option<&'static str> {
    Some(match file_type.parse::<u32>().ok()? {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

fn bounded(name: &str, value: &str, max: usize) -> Result<BoundedVec<u8>> {
    if value.is_empty() || value.len() > max {
        return Err(ClientError::BadRelease(format!("{name} must be 1 to {max} bytes, not {:?}", value)));
    }
    Ok(BoundedVec(value.as_bytes().to_vec()))
}

impl Client {
    /// Hashes `gguf`, checks the release against the chain (new, parent known) and publishes it.
    pub async fn publish(&self, gguf: &Path, meta: ReleaseMeta) -> Result<ModelRelease> {
        let path = gguf.to_path_buf();
        // Only the hash and a few metadata keys: any GGUF can be published, whatever its tokenizer.
        let (metadata, sha256) = tokio::task::spawn_blocking(move || {
            let sha256 = model_file::sha256_file(&path, Progress::Bar).map_err(TokenizerError::File)?;
            let metadata = Metadata::read(&path).map_err(|source| TokenizerError::Gguf { path: path.clone(), source })?;
            Ok::<_, TokenizerError>((metadata, sha256))
        })
        .await
        .map_err(ClientError::Task)??;
        let size_bytes = std::fs::metadata(gguf).map_err(|source| ClientError::Io { path: gguf.to_path_buf(), source })?.len();
        if self.chain.release(sha256).await?.is_some() {
            return Err(ClientError::AlreadyPublished(sha256));
        }
        if let Some(parent) = meta.parent {
            if self.chain.release(parent).await?.is_none() {
                return Err(ClientError::BadRelease(format!("the parent release {} is not published", hex::encode(parent))));
            }
        }
        let architecture = meta.architecture.or_else(|| metadata.text("general.architecture")).unwrap_or_else(|| "unknown".into());
        let quantization = meta
            .quantization
            .or_else(|| metadata.text("general.file_type").and_then(|t| file_type_name(&t)).map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let info = types::ReleaseInfo {
            family: bounded("family", &meta.family, 64)?,
            version: bounded("version", &meta.version, 32)?,
            sha256,
            size_bytes,
            architecture: bounded("architecture", &architecture, 32)?,
            quantization: bounded("quantization", &quantization, 32)?,
            license: bounded("license", &meta.license, 32)?,
            parent: meta.parent,
            metadata_hash: meta.metadata_hash,
        };
        self.chain.submit(&agora::tx().models().publish(info), &self.signer).await?;
        self.chain.release(sha256).await?.ok_or(ClientError::Unpublished(sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_names_follow_llama_ftype() {
        assert_eq!(file_type_name("3"), Some("Q4_1"));
        assert_eq!(file_type_name("0"), Some("F32"));
        assert_eq!(file_type_name("999"), None);
        assert_eq!(file_type_name("x"), None);
        assert!(matches!(bounded("family", "", 64), Err(ClientError::BadRelease(_))));
        assert!(matches!(bounded("version", &"v".repeat(33), 32), Err(ClientError::BadRelease(_))));
        assert_eq!(bounded("family", "smollm2", 64).unwrap().0, b"smollm2".to_vec());
    }
}
