//! The handle on the running swarm.

use crate::event_loop::{self, Command};
use crate::{NetConfig, NetError};
use agora_primitives::ReleaseId;
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{connection_limits, identify, identity, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) streams: libp2p_stream::Behaviour,
}

/// A handle on the running swarm. Cheap to clone; the swarm stops when the last clone is gone.
#[derive(Clone)]
pub struct Network {
    peer_id: PeerId,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedSender<Command>,
    listening: watch::Receiver<Vec<Multiaddr>>,
}

fn build_swarm(key: identity::Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let transport_err = |e: Box<dyn std::error::Error + Send + Sync>| NetError::Transport(e);
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_connections));
    let mdns_enabled = config.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| transport_err(e.into()))?
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
        .map_err(|e| transport_err(e.into()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

impl Network {
    /// Builds the swarm, starts listening and runs it on the current tokio runtime.
    pub async fn start(key: identity::Keypair, config: NetConfig) -> Result<Network, NetError> {
        let mut swarm = build_swarm(key, &config)?;
        for addr in &config.listen {
            swarm.listen_on(addr.clone()).map_err(|source| NetError::Listen { addr: addr.clone(), source })?;
        }
        for addr in &config.external {
            swarm.add_external_address(addr.clone());
        }
        for addr in &config.bootstrap {
            if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial a bootstrap peer");
            }
        }
        if !config.bootstrap.is_empty() {
            // Fails only without any known peer, and every bootstrap address was just added.
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }
        let peer_id = *swarm.local_peer_id();
        let control = swarm.behaviour().streams.new_control();
        let (commands, receiver) = mpsc::unbounded_channel();
        let (listen_tx, listening) = watch::channel(Vec::new());
        tokio::spawn(event_loop::run(swarm, receiver, listen_tx));
        Ok(Network { peer_id, control, commands, listening })
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The stream control for opening and accepting protocol streams.
    pub fn control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// The incoming streams of `protocol` (such as [`INFER_PROTOCOL`](crate::INFER_PROTOCOL));
    /// a protocol can be accepted once per node.
    pub fn accept(&self, protocol: &'static str) -> Result<libp2p_stream::IncomingStreams, NetError> {
        self.control.clone().accept(StreamProtocol::new(protocol)).map_err(|_| NetError::AlreadyServed(protocol))
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

    /// Connects to `addr` (which must end in `/p2p/<peer id>`) and waits for the connection.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Dial(addr, tx)).map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Connects to `location` through the first of its addresses that answers, each tried for
    /// at most `timeout`; the error is the last address's.
    pub async fn dial_location(&self, location: &crate::Location, timeout: Duration) -> Result<(), NetError> {
        let mut outcome = Err(NetError::NoAddress(location.peer));
        for addr in &location.addrs {
            match tokio::time::timeout(timeout, self.dial(addr.clone())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => outcome = Err(e),
                Err(_) => outcome = Err(NetError::DialTimeout { addr: addr.clone(), after: timeout }),
            }
        }
        outcome
    }

    /// Dials `location` and opens a stream of `protocol` to it.
    pub async fn open_stream(&self, location: &crate::Location, protocol: StreamProtocol, dial_timeout: Duration) -> Result<libp2p::Stream, crate::StreamError> {
        self.dial_location(location, dial_timeout).await?;
        self.control.clone().open_stream(location.peer, protocol).await.map_err(|source| crate::StreamError::Open { peer: location.peer, source })
    }

    /// Drops every connection to a peer that broke the protocol.
    pub fn disconnect(&self, peer: PeerId) {
        let _ = self.commands.send(Command::Disconnect(peer));
    }
}
