use crate::NetError;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// A peer and the addresses to reach it at; each address ends in `/p2p/<peer id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub peer: PeerId,
    pub addrs: Vec<Multiaddr>,
}

impl Location {
    /// Where a provider's on-chain manifest says it listens: its peer id's bytes and its
    /// addresses as UTF-8 multiaddrs. Addresses that do not parse are skipped, so one bad entry
    /// does not hide the others.
    pub fn from_manifest<'a>(peer_id: &[u8], multiaddrs: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, NetError> {
        let peer = PeerId::from_bytes(peer_id)?;
        let addrs = multiaddrs
            .into_iter()
            .filter_map(|a| std::str::from_utf8(a).ok()?.parse::<Multiaddr>().ok())
            .map(|a| if a.iter().any(|p| matches!(p, Protocol::P2p(_))) { a } else { a.with(Protocol::P2p(peer)) })
            .collect();
        Ok(Self { peer, addrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_addresses_get_the_peer_id_and_bad_ones_are_skipped() {
        let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id();
        let with_id = format!("/ip4/127.0.0.1/tcp/2/p2p/{peer}");
        let addrs: [&[u8]; 3] = [b"/ip4/127.0.0.1/tcp/1", b"not an address", with_id.as_bytes()];
        let location = Location::from_manifest(&peer.to_bytes(), addrs).unwrap();
        assert_eq!(location.peer, peer);
        let expected: Vec<Multiaddr> = vec![format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap(), with_id.parse().unwrap()];
        assert_eq!(location.addrs, expected);
        assert!(matches!(Location::from_manifest(b"junk", []), Err(NetError::BadPeerId(_))));
    }
}
