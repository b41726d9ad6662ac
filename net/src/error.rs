//! What can go wrong on the network, named so that callers can react to each case.

use crate::frame::FrameError;
use libp2p::{Multiaddr, PeerId};
use std::sync::Arc;
use std::time::Duration;

/// Starting the swarm, reaching a peer, reading a manifest's addresses.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot build the libp2p transport: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot listen on {addr}: {source} (is the port taken?)")]
    Listen { addr: Multiaddr, source: libp2p::TransportError<std::io::Error> },
    #[error("the network task has stopped")]
    Stopped,
    #[error("{0} has no /p2p/<peer id> at its end, so the peer it should reach is unknown")]
    NoPeerId(Multiaddr),
    #[error("cannot dial {addr}: {source}")]
    Dial { addr: Multiaddr, source: Arc<libp2p::swarm::DialError> },
    #[error("dialing {addr} timed out after {after:?}")]
    DialTimeout { addr: Multiaddr, after: Duration },
    #[error("no address is known for peer {0}")]
    NoAddress(PeerId),
    #[error("the manifest's peer id does not parse: {0}")]
    BadPeerId(#[from] libp2p::identity::ParseError),
    #[error("the protocol {0} is already being served by this node")]
    AlreadyServed(&'static str),
}

/// One exchange on an open stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot open a stream to {peer}: {source}")]
    Open { peer: PeerId, source: libp2p_stream::OpenStreamError },
    #[error("no frame from the peer within {0:?}")]
    Timeout(Duration),
    #[error("the stream closed before the peer answered")]
    Closed,
    #[error("broken stream: {0}")]
    Frame(#[from] FrameError),
}
