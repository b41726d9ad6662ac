//! The Agora provider node: a library that the `agora-provider` binary and the tests drive.
//!
//! Inference itself is the `agora-engine` crate (shared with the client and the verifier).
//!
//! - [`keys`]: the chain account, the libp2p identity and the settlement key slot;
//! - [`journal`]: the crash-safe RocksDB job journal;
//! - [`net`]: libp2p (shared with clients) and the `/agora/infer/1` framing;
//! - [`node`]: the daemon that ties them to the chain;
//! - [`config`], [`metrics`], [`load`]: settings, Prometheus metrics, the load safeguard.

pub mod config;
pub mod journal;
pub mod keys;
pub mod load;
pub mod metrics;
pub mod net;
pub mod node;
