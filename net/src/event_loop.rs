//! The task that owns the swarm: it runs the handle's commands and the swarm's events.

use crate::network::{Behaviour, BehaviourEvent};
use crate::NetError;
use agora_primitives::ReleaseId;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, Swarm};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) enum Command {
    Provide(ReleaseId),
    FindProviders(ReleaseId, oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Disconnect(PeerId),
}

type DialReply = oneshot::Sender<Result<(), NetError>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    listening: watch::Sender<Vec<Multiaddr>>,
    finding: HashMap<kad::QueryId, (oneshot::Sender<Vec<PeerId>>, HashSet<PeerId>)>,
    dialing: HashMap<PeerId, Vec<(Multiaddr, DialReply)>>,
}

pub(crate) async fn run(swarm: Swarm<Behaviour>, mut commands: mpsc::UnboundedReceiver<Command>, listening: watch::Sender<Vec<Multiaddr>>) {
    let mut state = EventLoop { swarm, listening, finding: HashMap::new(), dialing: HashMap::new() };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                // Every handle is gone: the node is shutting down.
                None => return,
                Some(command) => state.command(command),
            },
            event = state.swarm.select_next_some() => state.event(event),
        }
    }
}

impl EventLoop {
    fn command(&mut self, command: Command) {
        match command {
            Command::Provide(release) => {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&release)) {
                    tracing::warn!(error = %e, "cannot announce the release in the DHT");
                }
            },
            Command::FindProviders(release, reply) => {
                let query = self.swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&release));
                self.finding.insert(query, (reply, HashSet::new()));
            },
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            },
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: DialReply) {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            let _ = reply.send(Err(NetError::NoPeerId(addr)));
            return;
        };
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        match self.swarm.dial(addr.clone()) {
            Ok(()) => self.dialing.entry(peer).or_default().push((addr, reply)),
            Err(e) => {
                let _ = reply.send(Err(NetError::Dial { addr, source: Arc::new(e) }));
            },
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { .. } | SwarmEvent::ExpiredListenAddr { .. } => {
                self.listening.send_replace(self.swarm.listeners().cloned().collect());
            },
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                for (_, reply) in self.dialing.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            },
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                let error = Arc::new(error);
                for (addr, reply) in self.dialing.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(NetError::Dial { addr, source: error.clone() }));
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. })) => {
                self.providers_found(id, result, step.last);
            },
            _ => {},
        }
    }

    fn providers_found(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        let kad::QueryResult::GetProviders(result) = result else { return };
        if let (Some((_, found)), Ok(kad::GetProvidersOk::FoundProviders { providers, .. })) = (self.finding.get_mut(&id), result) {
            found.extend(providers);
        }
        if last {
            if let Some((reply, found)) = self.finding.remove(&id) {
                let _ = reply.send(found.into_iter().collect());
            }
        }
    }
}
