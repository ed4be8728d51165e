//! The in-worker driver of the sans-IO registrar core: associations in, transmits out.
//!
//! - Every association gets an [`AssocRef`] for the core (a counter; never reused).
//! - Messages are told apart by PPID: 11 goes to [`Registrar::handle_asap`], 12 to
//!   [`Registrar::handle_enrp`]; other PPIDs are dropped.
//! - [`Destination::Peer`] maps to an established association on which that registrar has
//!   spoken (learned from the sender field of its ENRP messages), else to an association
//!   with its ENRP endpoint, else a new association to that endpoint (the UDP
//!   encapsulation port comes from `--peer ADDR:PORT/UDPPORT`, else `--remote-udp-port`).
//!   [`Destination::PoolElement`] likewise connects to the PE's ASAP endpoint.
//! - Messages for an association still being set up, or whose send buffer is full, wait in
//!   a bounded per-association backlog; they are dropped when it fails.
//! - SERVER_ANNOUNCE and multicast PRESENCE go out through kernel UDP sockets; PRESENCE
//!   received on the ENRP group arrives through a mailbox and is fed to the core as
//!   [`EnrpOrigin::Multicast`].
//! - The end of an association ([`Event::Closed`]) is fed to
//!   [`Registrar::handle_association_lost`] (its PEs are removed); ENRP peers are judged by
//!   the core's PRESENCE timers, not by associations.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use dataplane::runtime::socket::{abort_text, lost_text};
use dataplane::runtime::{App, Context, MailboxReceiver};
use rserpool::registrar::{
    AsapOrigin, AssocRef, Destination, EnrpOrigin, Event as CoreEvent, Registrar, RemovalReason,
};
use rserpool::wire::{
    EnrpMessage, PPID_ASAP, PPID_ENRP, RegistrarId, TransportParameter, TransportProtocol,
};
use sctp_stack::time::Timestamp;
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, ConnectRequest, Event, SendError, SendOptions};

use super::config::Resolved;
use super::monitor::{ASSOCIATIONS_REFRESH, Publisher};
use super::multicast::GroupSender;

/// The multicast side: SERVER_ANNOUNCE and PRESENCE senders, PRESENCE received.
#[derive(Debug, Default)]
pub(super) struct Multicast {
    /// SERVER_ANNOUNCE group.
    pub(super) asap: Option<GroupSender>,
    /// ENRP group (PRESENCE out).
    pub(super) enrp: Option<GroupSender>,
    /// ENRP group datagrams from the receiving thread.
    pub(super) incoming: Option<MailboxReceiver<Vec<u8>>>,
}

/// Messages waiting per association (set-up or full send buffer); more are dropped.
const MAX_BACKLOG: usize = 1024;
/// Messages kept for an association still being set up.
const MAX_SETUP_BACKLOG: usize = 4;

/// One association of the registrar.
#[derive(Debug)]
struct Conn {
    aref: AssocRef,
    /// Established.
    up: bool,
    peer_port: u16,
    /// Peer addresses, primary first.
    addresses: Vec<IpAddr>,
    /// Messages (PPID, bytes) waiting for the association or for send space.
    backlog: VecDeque<(u32, Vec<u8>)>,
    /// The registrar on the other end, once it sent ENRP.
    peer_id: Option<RegistrarId>,
    /// The endpoint this registrar connected to (outgoing associations).
    endpoint: Option<(IpAddr, u16)>,
}

/// The registrar as an in-worker application.
pub(super) struct RegistrarApp {
    core: Registrar,
    asap_port: u16,
    enrp_port: u16,
    peer_udp_ports: HashMap<(IpAddr, u16), u16>,
    conns: HashMap<AssociationId, Conn>,
    by_ref: HashMap<AssocRef, AssociationId>,
    next_ref: u64,
    /// An established association each peer registrar has spoken on.
    peer_assoc: HashMap<RegistrarId, AssociationId>,
    /// Outgoing associations by the remote endpoint they were opened to.
    endpoint_assoc: HashMap<(IpAddr, u16), AssociationId>,
    multicast: Multicast,
    /// Endpoints a connect was refused for (warned about once).
    unreachable: HashSet<(Vec<IpAddr>, u16)>,
    /// Set when the registrar cannot run (a port cannot be listened on).
    failure: Arc<Mutex<Option<String>>>,
    /// Where the monitors (`--metrics`, `--cspserver`) read the state, if any is on.
    publisher: Option<Publisher>,
    /// PEs removed by ASAP_DEREGISTRATION (the core's events; not in its counters).
    deregistrations: u64,
    /// Takeovers completed here.
    takeovers: u64,
    /// Peers or PEs changed since the monitors' association list was built.
    associations_stale: bool,
    /// When that list was last built.
    associations_built: Option<Timestamp>,
    /// Sees every core event (the in-process registrars of `rsp demo`).
    observer: Option<Observer>,
    /// Stop without aborting the associations (the demo's crash).
    silent_stop: bool,
}

/// A callback that sees every core event.
pub(crate) type Observer = Arc<dyn Fn(&CoreEvent) + Send + Sync>;

impl RegistrarApp {
    pub(super) fn new(
        core: Registrar,
        r: &Resolved,
        multicast: Multicast,
        failure: Arc<Mutex<Option<String>>>,
        publisher: Option<Publisher>,
    ) -> Self {
        RegistrarApp {
            core,
            asap_port: r.asap_port,
            enrp_port: r.enrp_port,
            peer_udp_ports: r.peer_udp_ports.clone(),
            conns: HashMap::new(),
            by_ref: HashMap::new(),
            next_ref: 1,
            peer_assoc: HashMap::new(),
            endpoint_assoc: HashMap::new(),
            multicast,
            unreachable: HashSet::new(),
            failure,
            publisher,
            deregistrations: 0,
            takeovers: 0,
            associations_stale: true,
            associations_built: None,
            observer: None,
            silent_stop: false,
        }
    }

    /// Shows every core event to `observer`, and stops silently (no ABORT) when
    /// `silent_stop`: for the in-process registrars of `rsp demo`.
    pub(super) fn embedded(mut self, observer: Observer, silent_stop: bool) -> Self {
        self.observer = Some(observer);
        self.silent_stop = silent_stop;
        self
    }

    /// When the monitors' association list is due for a rebuild, if it is stale.
    fn associations_due(&self) -> Option<Timestamp> {
        if self.publisher.is_none() || !self.associations_stale {
            return None;
        }
        Some(
            self.associations_built
                .map_or(Timestamp::ZERO, |t| t + ASSOCIATIONS_REFRESH),
        )
    }

    /// Hands the current state to the monitors; the association list (O(PEs)) at most
    /// once per [`ASSOCIATIONS_REFRESH`].
    fn publish(&mut self, now: Timestamp) {
        let Some(p) = &self.publisher else {
            return;
        };
        let rebuild = self.associations_due().is_some_and(|t| t <= now);
        p.publish(&self.core, self.deregistrations, self.takeovers, rebuild);
        if rebuild {
            self.associations_stale = false;
            self.associations_built = Some(now);
        }
    }

    /// Registers association `id` (incoming or outgoing) and returns its entry.
    fn conn(&mut self, id: AssociationId) -> &mut Conn {
        let next = &mut self.next_ref;
        let by_ref = &mut self.by_ref;
        self.conns.entry(id).or_insert_with(|| {
            let aref = AssocRef(*next);
            *next += 1;
            by_ref.insert(aref, id);
            Conn {
                aref,
                up: false,
                peer_port: 0,
                addresses: Vec::new(),
                backlog: VecDeque::new(),
                peer_id: None,
                endpoint: None,
            }
        })
    }

    /// Drains the core's transmits and events (after every input).
    fn flush(&mut self, cx: &mut Context<'_>) {
        while let Some(t) = self.core.poll_transmit() {
            let target = match &t.to {
                Destination::Association(r) => self.by_ref.get(r).copied(),
                Destination::Peer { id, endpoint } => self.peer_target(cx, *id, endpoint),
                Destination::PoolElement(endpoint) => {
                    self.endpoint_target(cx, endpoint, self.asap_port)
                }
                Destination::AsapAnnounce | Destination::EnrpMulticast => {
                    let group = if t.to == Destination::AsapAnnounce {
                        &self.multicast.asap
                    } else {
                        &self.multicast.enrp
                    };
                    if let Some(g) = group {
                        g.send(&t.bytes);
                    }
                    continue;
                }
                _ => None,
            };
            match target {
                Some(id) => self.send(cx, id, t.ppid, t.bytes),
                None => tracing::debug!(to = ?t.to, "no association for a message: dropped"),
            }
        }
        while let Some(e) = self.core.poll_event() {
            match &e {
                CoreEvent::Removed {
                    reason: RemovalReason::Deregistered,
                    ..
                } => self.deregistrations += 1,
                CoreEvent::TakeoverCompleted { .. } => self.takeovers += 1,
                _ => {}
            }
            if matches!(
                e,
                CoreEvent::Registered { update: false, .. }
                    | CoreEvent::Removed { .. }
                    | CoreEvent::PeerAdded(_)
                    | CoreEvent::PeerRemoved(_)
                    | CoreEvent::TakeoverCompleted { .. }
                    | CoreEvent::TakenOverBy { .. }
            ) {
                self.associations_stale = true;
            }
            if let Some(o) = &self.observer {
                o(&e);
            }
            log_event(&e);
        }
        self.publish(cx.now());
    }

    /// The association to reach peer `id` (0 while unknown) at `endpoint`.
    fn peer_target(
        &mut self,
        cx: &mut Context<'_>,
        id: RegistrarId,
        endpoint: &TransportParameter,
    ) -> Option<AssociationId> {
        if id != RegistrarId::UNDEFINED
            && let Some(a) = self.peer_assoc.get(&id)
            && self.conns.contains_key(a)
        {
            return Some(*a);
        }
        self.endpoint_target(cx, endpoint, self.enrp_port)
    }

    /// An association whose peer is at `port` on one of `addresses`, if any.
    fn existing_association(&self, addresses: &[IpAddr], port: u16) -> Option<AssociationId> {
        self.conns
            .iter()
            .find(|(_, c)| c.peer_port == port && c.addresses.iter().any(|a| addresses.contains(a)))
            .map(|(id, _)| *id)
    }

    /// An association to `endpoint`: an existing one (ours, or one the endpoint opened to us),
    /// or a new one from `local_port`. Like RSPLIB, a registrar speaks ENRP from its ENRP
    /// port and ASAP from its ASAP port: RSPLIB accepts a peer's PRESENCE only over an
    /// association whose remote port is the ENRP port the PRESENCE announces, and two
    /// registrars connecting to each other at once end up with one association (an INIT
    /// collision, RFC 9260 §5.2.1) instead of two.
    fn endpoint_target(
        &mut self,
        cx: &mut Context<'_>,
        endpoint: &TransportParameter,
        local_port: u16,
    ) -> Option<AssociationId> {
        if endpoint.protocol != TransportProtocol::Sctp {
            return None;
        }
        let port = endpoint.port;
        if let Some(a) = endpoint
            .addresses
            .iter()
            .find_map(|addr| self.endpoint_assoc.get(&(*addr, port)))
        {
            return Some(*a);
        }
        if let Some(a) = self.existing_association(&endpoint.addresses, port) {
            return Some(a);
        }
        // The first address the stack accepts (the link may serve one family only).
        let mut last_error = None;
        for &addr in &endpoint.addresses {
            let encaps = self.peer_udp_ports.get(&(addr, port)).copied().unwrap_or(0);
            let req = ConnectRequest::new(addr, port)
                .with_local_port(local_port)
                .with_encaps_port(encaps);
            match cx.connect(req) {
                Ok(id) => {
                    tracing::debug!("connecting to {}", endpoint_text(addr, port));
                    self.conn(id).endpoint = Some((addr, port));
                    self.endpoint_assoc.insert((addr, port), id);
                    self.unreachable.remove(&(endpoint.addresses.clone(), port));
                    return Some(id);
                }
                Err(e) => last_error = Some((addr, e)),
            }
        }
        if let Some((addr, e)) = last_error {
            // Once per endpoint: the core retries at every PRESENCE interval.
            let text = format!("cannot connect to {}: {e}", endpoint_text(addr, port));
            if self.unreachable.insert((endpoint.addresses.clone(), port)) {
                tracing::warn!("{text}");
            } else {
                tracing::debug!("{text}");
            }
        }
        None
    }

    /// Sends (or queues) one message on association `id`.
    fn send(&mut self, cx: &mut Context<'_>, id: AssociationId, ppid: u32, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.up && c.backlog.len() >= MAX_SETUP_BACKLOG {
            // A peer that does not answer its INIT yet: keep the newest messages only, so
            // that it does not get a burst of stale PRESENCEs when it comes up.
            c.backlog.pop_front();
        } else if c.backlog.len() >= MAX_BACKLOG {
            tracing::debug!(aref = c.aref.0, "backlog full: message dropped");
            return;
        }
        c.backlog.push_back((ppid, bytes));
        Self::pump(c, cx, id);
    }

    /// Moves the backlog of an established association into the stack.
    fn pump(c: &mut Conn, cx: &mut Context<'_>, id: AssociationId) {
        if !c.up {
            return;
        }
        let Some(mut h) = cx.association(id) else {
            return;
        };
        while let Some((ppid, bytes)) = c.backlog.front() {
            match h.send(0, Ppid(*ppid), &bytes[..], SendOptions::default()) {
                Ok(()) => {}
                Err(SendError::WouldBlock) => return,
                Err(e) => tracing::debug!(aref = c.aref.0, "message refused: {e}"),
            }
            c.backlog.pop_front();
        }
    }

    fn connected(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let status = cx.association(id).and_then(|a| a.status());
        let c = self.conn(id);
        c.up = true;
        if let Some(s) = status {
            c.peer_port = s.peer_port;
            c.addresses = s.peer_addresses.clone();
            if let Some(i) = c.addresses.iter().position(|a| *a == s.primary) {
                c.addresses.swap(0, i);
            } else {
                c.addresses.insert(0, s.primary);
            }
        }
        tracing::debug!(
            aref = c.aref.0,
            "association with {} up",
            c.addresses
                .first()
                .map(|a| endpoint_text(*a, c.peer_port))
                .unwrap_or_default()
        );
        let c = self.conns.get_mut(&id);
        if let Some(c) = c {
            Self::pump(c, cx, id);
        }
    }

    fn readable(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let mut messages = Vec::new();
        if let Some(mut h) = cx.association(id) {
            while let Some(m) = h.recv() {
                messages.push(m);
            }
        }
        if messages.is_empty() {
            return;
        }
        let now = cx.now();
        let c = self.conn(id);
        let (aref, port, addresses) = (c.aref, c.peer_port, c.addresses.clone());
        for m in messages {
            match m.ppid.get() {
                PPID_ASAP => {
                    let from = AsapOrigin {
                        assoc: aref,
                        port,
                        addresses: &addresses,
                    };
                    self.core.handle_asap(now, from, &m.data);
                }
                PPID_ENRP => {
                    self.learn_peer(id, &m.data);
                    self.core
                        .handle_enrp(now, EnrpOrigin::Association(aref), &m.data);
                }
                other => tracing::debug!(aref = aref.0, "message with PPID {other} dropped"),
            }
            self.flush(cx);
        }
    }

    /// Notes which registrar speaks on association `id`.
    fn learn_peer(&mut self, id: AssociationId, bytes: &[u8]) {
        let Ok(d) = EnrpMessage::decode(bytes) else {
            return;
        };
        let sender = d.message.sender;
        if sender == RegistrarId::UNDEFINED || sender == self.core.id() {
            return;
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.peer_id != Some(sender) {
            c.peer_id = Some(sender);
            tracing::info!(
                "ENRP association with {sender} up ({})",
                c.addresses
                    .first()
                    .map(|a| endpoint_text(*a, c.peer_port))
                    .unwrap_or_default()
            );
        }
        let current = self.peer_assoc.get(&sender);
        if current.is_none_or(|a| !self.conns.get(a).is_some_and(|c| c.up)) {
            self.peer_assoc.insert(sender, id);
        }
    }

    fn closed(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        self.by_ref.remove(&c.aref);
        if let Some(ep) = c.endpoint
            && self.endpoint_assoc.get(&ep) == Some(&id)
        {
            self.endpoint_assoc.remove(&ep);
        }
        if let Some(p) = c.peer_id {
            if self.peer_assoc.get(&p) == Some(&id) {
                self.peer_assoc.remove(&p);
                // Another association with the same peer takes over, if there is one.
                if let Some((other, _)) = self.conns.iter().find(|(_, o)| o.peer_id == Some(p)) {
                    self.peer_assoc.insert(p, *other);
                }
            }
            tracing::info!("ENRP association with {p} down");
        }
        if !c.backlog.is_empty() {
            tracing::debug!(
                aref = c.aref.0,
                "{} queued message(s) dropped",
                c.backlog.len()
            );
        }
        self.core.handle_association_lost(cx.now(), c.aref);
        self.flush(cx);
    }
}

impl App for RegistrarApp {
    fn start(&mut self, cx: &mut Context<'_>) {
        for (what, port) in [("ASAP", self.asap_port), ("ENRP", self.enrp_port)] {
            if let Err(e) = cx.listen(port) {
                let msg = format!("cannot listen for {what} on SCTP port {port}: {e}");
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(msg);
                cx.stop_runtime();
                return;
            }
        }
        tracing::info!(
            "registrar {} starting: looking for a mentor among its peers",
            self.core.id()
        );
        self.core.handle_timeout(cx.now());
        self.flush(cx);
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => self.connected(cx, id),
            Event::DataReadable => self.readable(cx, id),
            Event::SendSpace => {
                if let Some(c) = self.conns.get_mut(&id) {
                    Self::pump(c, cx, id);
                }
            }
            Event::Restarted => {
                tracing::debug!("an association was restarted by its peer");
            }
            Event::Aborted(r) => {
                tracing::debug!("association aborted {}", abort_text(&r));
            }
            Event::CommunicationLost(r) => {
                tracing::debug!("association lost: {}", lost_text(r));
            }
            Event::Closed => self.closed(cx, id),
            _ => {}
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        let mut any = false;
        while let Some(bytes) = self.multicast.incoming.as_ref().and_then(|m| m.try_recv()) {
            self.core
                .handle_enrp(cx.now(), EnrpOrigin::Multicast, &bytes);
            any = true;
        }
        if any {
            self.flush(cx);
        }
    }

    fn has_pending_input(&self) -> bool {
        self.multicast
            .incoming
            .as_ref()
            .is_some_and(MailboxReceiver::has_pending)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.core.poll_timeout(), self.associations_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn timeout(&mut self, cx: &mut Context<'_>) {
        // Also the monitors' wake-up (associations_due): the core ignores early calls.
        self.core.handle_timeout(cx.now());
        self.flush(cx);
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        // PEs and peers learn at once that this registrar is gone (unless it is to vanish
        // without a word, as a crashed one does).
        for id in self.conns.keys().filter(|_| !self.silent_stop) {
            if let Some(mut a) = cx.association(*id) {
                a.abort(b"registrar stopped");
            }
        }
        tracing::info!(
            "registrar {} stopped: {} pool element(s) in the handlespace, {} owned",
            self.core.id(),
            self.core.handlespace().pe_count(),
            self.core.owned_count()
        );
    }
}

fn endpoint_text(addr: IpAddr, port: u16) -> String {
    if addr.is_ipv6() {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// One log line per core event: registrations, removals, peers, takeovers.
fn log_event(e: &CoreEvent) {
    match e {
        CoreEvent::Registered {
            pool_handle,
            identifier,
            update,
        } => {
            if *update {
                tracing::debug!("re-registration of {identifier:?} in pool {pool_handle}");
            } else {
                tracing::info!("registered {identifier:?} in pool {pool_handle}");
            }
        }
        CoreEvent::RegistrationRejected {
            pool_handle,
            identifier,
            cause,
        } => tracing::info!(
            "registration of {identifier:?} in pool {pool_handle} rejected: {cause:?}"
        ),
        CoreEvent::Removed {
            pool_handle,
            identifier,
            reason,
        } => tracing::info!("removed {identifier:?} from pool {pool_handle}: {reason:?}"),
        CoreEvent::PeerAdded(id) => tracing::info!("peer {id} up"),
        CoreEvent::PeerRemoved(id) => tracing::info!("peer {id} down"),
        CoreEvent::Synchronised { mentor } => match mentor {
            Some(m) => tracing::info!("serving: handlespace downloaded from mentor {m}"),
            None => {
                tracing::info!("serving: no mentor answered, starting with an empty handlespace")
            }
        },
        CoreEvent::AuditStarted { peer } => {
            tracing::info!("audit of {peer}: checksum mismatch, re-requesting its PEs");
        }
        CoreEvent::AuditCompleted { peer, purged } => {
            tracing::info!("audit of {peer} done: {purged} stale copies removed");
        }
        CoreEvent::TakeoverStarted { target } => tracing::warn!("taking over silent peer {target}"),
        CoreEvent::TakeoverAborted { target } => tracing::info!("takeover of {target} abandoned"),
        CoreEvent::TakeoverCompleted {
            target,
            pool_elements,
        } => tracing::warn!("took over {target}: now home of {pool_elements} more PE(s)"),
        CoreEvent::TakenOverBy { target, by } => tracing::warn!("{by} took over {target}"),
        other => tracing::debug!("{other:?}"),
    }
}
