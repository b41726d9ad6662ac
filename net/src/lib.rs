//! The libp2p side of Agora, shared by providers and clients: TCP + Noise + Yamux, identify,
//! ping, Kademlia (provider records keyed by release), mDNS on the local network, connection
//! limits, and streams for the inference protocol (`/agora/infer/1`) and the verification
//! protocol (`/agora/verify/1`), each as SCALE frames.
//!
//! [`Network::start`] runs the swarm in a task of its own; the [`Network`] handle talks to it
//! with commands. [`infer`] and [`verify`] hold both halves of each protocol: what a client sends
//! and reads, and what a server reads and answers. [`limits`] bounds the streams one peer holds
//! open. The crate knows nothing of the chain: a provider's [`Location`] is built from the peer
//! id and address bytes of its manifest.

mod config;
mod error;
mod event_loop;
pub mod frame;
pub mod infer;
pub mod limits;
mod location;
mod network;
pub mod verify;

pub use config::NetConfig;
pub use error::{NetError, StreamError};
pub use location::Location;
pub use network::Network;

pub use agora_primitives::wire::{INFER_PROTOCOL, VERIFY_PROTOCOL};
pub use libp2p::{identity, Multiaddr, PeerId, Stream};

/// `/agora/infer/1`: a prompt in, tokens streamed back.
pub fn infer_protocol() -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::new(INFER_PROTOCOL)
}

/// `/agora/verify/1`: a disputed request's prompt and outputs in, a verdict or a refusal back.
pub fn verify_protocol() -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::new(VERIFY_PROTOCOL)
}
