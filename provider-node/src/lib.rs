//! The Agora provider node: a library that the `agora-provider` binary and the tests drive.
//!
//! Inference itself is the `agora-engine` crate (shared with the client and the verifier), and
//! the libp2p wire is `agora-net` (shared with the client).
//!
//! - [`keys`]: the chain account, the libp2p identity and the settlement key slot;
//! - [`journal`]: the crash-safe RocksDB job journal;
//! - [`node`]: the daemon that ties them to the chain;
//! - [`config`], [`metrics`], [`load`]: settings, Prometheus metrics, the load safeguard.

pub mod config;
pub mod journal;
pub mod keys;
pub mod load;
pub mod metrics;
pub mod node;
