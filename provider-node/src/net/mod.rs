//! The libp2p side of Agora, shared by providers and clients: TCP + Noise + Yamux, identify,
//! ping, Kademlia (provider records keyed by release), mDNS on the local network, connection
//! limits, and generic streams for the inference protocol (`/agora/infer/1`) and the verification
//! protocol (`/agora/verify/1`).
//!
//! [`Network::start`] runs the swarm in its own task; the handle talks to it with commands and
//! opens or accepts inference streams through `libp2p-stream`.

pub mod frame;
pub mod verify;

use agora_primitives::ReleaseId;
use futures::StreamExt;
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour, SwarmEvent};
use libp2p::{connection_limits, identify, identity, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

pub use agora_primitives::wire::{INFER_PROTOCOL, VERIFY_PROTOCOL};

pub fn infer_protocol() -> StreamProtocol {
    StreamProtocol::new(INFER_PROTOCOL)
}

pub fn verify_protocol() -> StreamProtocol {
    StreamProtocol::new(VERIFY_PROTOCOL)
}

/// A peer and the addresses to reach it at.
pub type Location = (PeerId, Vec<Multiaddr>);

/// Where a provider's on-chain manifest says it listens; each address ends in `/p2p/<peer id>`.
pub fn manifest_location(record: &agora_chain_client::ProviderRecord) -> Result<Location, String> {
    let peer = PeerId::from_bytes(&record.manifest.peer_id.0).map_err(|e| format!("bad peer id in its manifest: {e}"))?;
    let addrs = record
        .manifest
        .multiaddrs
        .0
        .iter()
        .filter_map(|a| std::str::from_utf8(&a.0).ok()?.parse::<Multiaddr>().ok())
        .map(|a| if a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))) { a } else { a.with(libp2p::multiaddr::Protocol::P2p(peer)) })
        .collect();
    Ok((peer, addrs))
}

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

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("libp2p transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
    #[error("cannot dial {0}: {1}")]
    Dial(Multiaddr, String),
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    streams: libp2p_stream::Behaviour,
}

enum Command {
    Provide(ReleaseId),
    FindProviders(ReleaseId, oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Disconnect(PeerId),
}

/// A handle on the running swarm. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    peer_id: PeerId,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedSender<Command>,
    listening: watch::Receiver<Vec<Multiaddr>>,
}

fn build_swarm(key: identity::Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let transport_err = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_connections));
    let mdns_enabled = config.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| transport_err(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(StreamProtocol::new("/agora/kad/1"));
            kad_config.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if mdns_enabled { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new("/agora/id/1".into(), key.public())),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                mdns: Toggle::from(mdns),
                streams: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(|e| transport_err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

impl Network {
    /// Builds the swarm, starts listening and runs it on the current tokio runtime.
    pub async fn start(key: identity::Keypair, config: NetConfig) -> Result<Network, NetError> {
        let mut swarm = build_swarm(key, &config)?;
        for addr in &config.listen {
            swarm.listen_on(addr.clone()).map_err(|e| NetError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        for addr in &config.external {
            swarm.add_external_address(addr.clone());
        }
        for addr in &config.bootstrap {
            if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            let _ = swarm.dial(addr.clone());
        }
        if !config.bootstrap.is_empty() {
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }
        let peer_id = *swarm.local_peer_id();
        let control = swarm.behaviour().streams.new_control();
        let (commands, receiver) = mpsc::unbounded_channel();
        let (listen_tx, listening) = watch::channel(Vec::new());
        tokio::spawn(run(swarm, receiver, listen_tx));
        Ok(Network { peer_id, control, commands, listening })
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The stream control for opening and accepting inference streams.
    pub fn control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// The addresses the swarm listens on, once it listens on at least one.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        let mut listening = self.listening.clone();
        let addrs = listening.wait_for(|a| !a.is_empty()).await.map_err(|_| NetError::Stopped)?;
        Ok(addrs.clone())
    }

    /// Announces in the DHT that this node serves `release`.
    pub fn provide(&self, release: ReleaseId) -> Result<(), NetError> {
        self.commands.send(Command::Provide(release)).map_err(|_| NetError::Stopped)
    }

    /// Peers the DHT knows to serve `release`.
    pub async fn find_providers(&self, release: ReleaseId) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::FindProviders(release, tx)).map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Connects to `addr` (which should end in `/p2p/<peer id>`) and waits for the connection.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Dial(addr, tx)).map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Connects through the first of `addrs` that answers, each tried for at most `timeout`.
    pub async fn dial_first(&self, addrs: &[Multiaddr], timeout: Duration) -> Result<(), String> {
        let mut outcome = Err("no address is known for it".to_string());
        for addr in addrs {
            match tokio::time::timeout(timeout, self.dial(addr.clone())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => outcome = Err(format!("dial {addr}: {e}")),
                Err(_) => outcome = Err(format!("dial {addr}: timed out")),
            }
        }
        outcome
    }

    /// Drops every connection to a peer that broke the protocol.
    pub fn disconnect(&self, peer: PeerId) {
        let _ = self.commands.send(Command::Disconnect(peer));
    }
}

async fn run(
    mut swarm: Swarm<Behaviour>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    listening: watch::Sender<Vec<Multiaddr>>,
) {
    let mut finding: HashMap<kad::QueryId, (oneshot::Sender<Vec<PeerId>>, HashSet<PeerId>)> = HashMap::new();
    let mut dialing: HashMap<PeerId, Vec<(Multiaddr, oneshot::Sender<Result<(), NetError>>)>> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                // Every handle is gone: the node is shutting down.
                None => return,
                Some(Command::Provide(release)) => {
                    if let Err(e) = swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&release)) {
                        tracing::warn!(error = %e, "cannot announce the release in the DHT");
                    }
                },
                Some(Command::FindProviders(release, reply)) => {
                    let query = swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&release));
                    finding.insert(query, (reply, HashSet::new()));
                },
                Some(Command::Dial(addr, reply)) => {
                    let peer = match addr.iter().last() {
                        Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
                        _ => {
                            let _ = reply.send(Err(NetError::Dial(addr, "the address has no /p2p/<peer id>".into())));
                            continue;
                        },
                    };
                    if swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(()));
                        continue;
                    }
                    swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    match swarm.dial(addr.clone()) {
                        Ok(()) => dialing.entry(peer).or_default().push((addr, reply)),
                        Err(e) => { let _ = reply.send(Err(NetError::Dial(addr, e.to_string()))); },
                    }
                },
                Some(Command::Disconnect(peer)) => { let _ = swarm.disconnect_peer_id(peer); },
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { .. } | SwarmEvent::ExpiredListenAddr { .. } => {
                    listening.send_replace(swarm.listeners().cloned().collect());
                },
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    for (_, reply) in dialing.remove(&peer_id).unwrap_or_default() {
                        let _ = reply.send(Ok(()));
                    }
                },
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                    for (addr, reply) in dialing.remove(&peer).unwrap_or_default() {
                        let _ = reply.send(Err(NetError::Dial(addr, error.to_string())));
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                    for (peer, addr) in found {
                        swarm.behaviour_mut().kad.add_address(&peer, addr);
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    for addr in info.listen_addrs {
                        swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. })) => {
                    if let kad::QueryResult::GetProviders(result) = result {
                        if let Some((_, found)) = finding.get_mut(&id) {
                            if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
                                found.extend(providers);
                            }
                        }
                        if step.last {
                            if let Some((reply, found)) = finding.remove(&id) {
                                let _ = reply.send(found.into_iter().collect());
                            }
                        }
                    }
                },
                _ => {},
            },
        }
    }
}
