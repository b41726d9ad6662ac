//! Streams open per peer, on one protocol, so that one peer cannot take every task of a server.

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Whether a new stream is within its peer's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The peer already holds the most streams it may: refuse this one (as `Busy`).
    OverLimit,
}

/// The open streams of each peer.
#[derive(Default, Clone)]
pub struct PeerStreams(Arc<Mutex<HashMap<PeerId, usize>>>);

/// One counted stream; dropping it uncounts it.
pub struct StreamSlot {
    streams: PeerStreams,
    peer: PeerId,
    /// The peer's open streams, this one included.
    pub count: usize,
}

impl PeerStreams {
    pub fn open(&self, peer: PeerId) -> StreamSlot {
        let mut streams = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = streams.entry(peer).or_default();
        *count += 1;
        StreamSlot { streams: self.clone(), peer, count: *count }
    }

    /// The streams `peer` holds open now.
    pub fn count(&self, peer: &PeerId) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(peer).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = streams.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                streams.remove(&self.peer);
            }
        }
    }
}

/// Serves one protocol's streams until `stopping` turns true, each in a task of its own.
/// `handle` gets the stream and whether its peer is within `max_per_peer` open streams, and
/// hands the stream back to be closed.
pub async fn serve<F, Fut>(mut incoming: libp2p_stream::IncomingStreams, max_per_peer: usize, mut stopping: watch::Receiver<bool>, handle: F)
where
    F: Fn(PeerId, Stream, Admission) -> Fut,
    Fut: Future<Output = Stream> + Send + 'static,
{
    let streams = PeerStreams::default();
    loop {
        let (peer, stream) = tokio::select! {
            next = incoming.next() => match next { Some(s) => s, None => return },
            _ = stopping.changed() => return,
        };
        let slot = streams.open(peer);
        let admission = if slot.count > max_per_peer { Admission::OverLimit } else { Admission::Admitted };
        let served = handle(peer, stream, admission);
        tokio::spawn(async move {
            let mut stream = served.await;
            let _ = stream.close().await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_counts_until_dropped() {
        let streams = PeerStreams::default();
        let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id();
        let first = streams.open(peer);
        let second = streams.open(peer);
        assert_eq!((first.count, second.count, streams.count(&peer)), (1, 2, 2));
        drop(first);
        assert_eq!(streams.count(&peer), 1);
        drop(second);
        assert_eq!(streams.count(&peer), 0);
        assert_eq!(streams.open(peer).count, 1);
    }
}
