//! The node's keys, created on first start and kept in its data directory.
//!
//! - `account.key`: the sr25519 chain account (a 32-byte mini secret), unless the configuration
//!   names a secret URI instead (dev accounts such as `//Bob`);
//! - `network.key`: the ed25519 libp2p identity, hence the node's PeerId;
//! - `settlement.key`: the slot for the zero-knowledge settlement key (docs/DESIGN.md section 4,
//!   tier 2). Its secret is created and kept now; until the Groth16 path lands the manifest
//!   advertises no settlement key (all zeroes).
//!
//! Each file holds the hex of 32 secret bytes with permissions 0600. A key file that others can
//! read is refused, as ssh does, rather than silently used.

use rand::RngCore;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use subxt_signer::sr25519;
use subxt_signer::SecretUri;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {path} does not hold 32 hex-encoded bytes")]
    Malformed { path: PathBuf },
    #[error("invalid account secret URI: {0}")]
    Uri(String),
}

pub struct NodeKeys {
    pub account: sr25519::Keypair,
    pub network: libp2p::identity::Keypair,
    /// Secret of the settlement key slot (unused until the ZK settlement path).
    pub settlement_secret: [u8; 32],
}

impl NodeKeys {
    /// Loads the keys from `dir`, creating any that are missing. `account_uri` (such as `//Bob`)
    /// replaces the account key file.
    pub fn load_or_create(dir: &Path, account_uri: Option<&str>) -> Result<Self, KeyError> {
        fs::create_dir_all(dir).map_err(|source| KeyError::Io { path: dir.to_path_buf(), source })?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        let account = match account_uri {
            Some(uri) => {
                let uri: SecretUri = uri.parse().map_err(|e| KeyError::Uri(format!("{e}")))?;
                sr25519::Keypair::from_uri(&uri).map_err(|e| KeyError::Uri(format!("{e}")))?
            },
            None => {
                let path = dir.join("account.key");
                let secret = secret_file(&path)?;
                sr25519::Keypair::from_secret_key(secret).map_err(|_| KeyError::Malformed { path })?
            },
        };
        let path = dir.join("network.key");
        let network = libp2p::identity::Keypair::ed25519_from_bytes(secret_file(&path)?)
            .map_err(|_| KeyError::Malformed { path })?;
        let settlement_secret = secret_file(&dir.join("settlement.key"))?;
        Ok(Self { account, network, settlement_secret })
    }

    pub fn peer_id(&self) -> libp2p::PeerId {
        self.network.public().to_peer_id()
    }

    /// The settlement public key advertised in the manifest: none yet (see the module docs).
    pub fn settlement_public(&self) -> [u8; 32] {
        [0; 32]
    }
}

/// Reads a 32-byte secret, or creates one with mode 0600 if the file does not exist.
fn secret_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            file.write_all(hex::encode(secret).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok(secret);
        },
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {},
        Err(e) => return Err(io(e)),
    }
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen { path: path.to_path_buf(), mode });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed { path: path.to_path_buf() })?;
    bytes.try_into().map_err(|_| KeyError::Malformed { path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_private_and_stable_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeKeys::load_or_create(dir.path(), None).unwrap();
        for name in ["account.key", "network.key", "settlement.key"] {
            let mode = fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let second = NodeKeys::load_or_create(dir.path(), None).unwrap();
        assert_eq!(first.peer_id(), second.peer_id());
        assert_eq!(first.account.public_key().0, second.account.public_key().0);
        assert_eq!(first.settlement_secret, second.settlement_secret);
        let other = NodeKeys::load_or_create(tempfile::tempdir().unwrap().path(), None).unwrap();
        assert_ne!(first.peer_id(), other.peer_id());
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        NodeKeys::load_or_create(dir.path(), None).unwrap();
        let path = dir.path().join("network.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKeys::load_or_create(dir.path(), None).err().expect("refused");
        assert!(matches!(err, KeyError::TooOpen { mode: 0o644, .. }), "{err}");
    }

    #[test]
    fn a_uri_replaces_the_account_file_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = NodeKeys::load_or_create(dir.path(), Some("//Bob")).unwrap();
        assert_eq!(keys.account.public_key().0, sr25519::dev::bob().public_key().0);
        assert!(!dir.path().join("account.key").exists());
        fs::write(dir.path().join("settlement.key"), "not hex").unwrap();
        fs::set_permissions(dir.path().join("settlement.key"), fs::Permissions::from_mode(0o600)).unwrap();
        let err = NodeKeys::load_or_create(dir.path(), Some("//Bob")).err().expect("refused");
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    }
}
