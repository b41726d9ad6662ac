use libp2p::Multiaddr;

/// Network settings common to providers and clients.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    /// Addresses to announce instead of the listen addresses.
    pub external: Vec<Multiaddr>,
    /// `/.../p2p/<peer id>` addresses to join the DHT through.
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
    pub max_connections: u32,
    pub max_connections_per_peer: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            external: vec![],
            bootstrap: vec![],
            mdns: false,
            max_connections: 256,
            max_connections_per_peer: 2,
        }
    }
}
