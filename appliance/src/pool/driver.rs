//! The in-worker driver of the sans-IO session cores ([`Server`], [`Client`]) and of the
//! application (a service or a pool user tool) that sits on top of them.
//!
//! One `Driver` runs on one worker of the dataplane runtime and owns:
//!
//! - the associations: every one gets an [`AssocRef`] (a counter, never reused); outgoing
//!   ones remember the [`Target`] and endpoint of the [`Command::Connect`] they answer, so
//!   that their set-up is reported with `handle_connected` or `handle_connect_failed`;
//!   incoming ones (a server's user port) are reported with `handle_incoming` once up
//!   (a client aborts them: it listens on nothing);
//! - the transmits: one SCTP message each (ordered, the given stream and PPID); messages for
//!   an association still being set up, or whose send buffer is full, wait in a bounded
//!   per-association backlog ([`MAX_BACKLOG`]; beyond it they are dropped and counted);
//! - the time: the core's and the application's deadlines are the worker's timer;
//! - SERVER_ANNOUNCE datagrams from the ASAP announce group, received by a thread
//!   ([`spawn_announce_receiver`]) and passed through a mailbox.
//!
//! After every input the driver drains, in the contract's order, the core's commands,
//! transmits and events; events go to the [`Application`], which may call the core again
//! (send, cookies, connect, failover), so draining repeats until nothing is left.
//!
//! Under UDP encapsulation every connect needs the peer's UDP port: registrars' from
//! `--registrar ADDR:PORT/UDPPORT`, PEs' from `--pe-udp-port SCTPPORT=UDPPORT`, else the
//! runtime's remote UDP port (`--remote-udp-port`, 9899).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::runtime::{App, Context, MailboxReceiver, MailboxSender, WorkerRemote};
use rserpool::Timestamp;
use rserpool::session::{AssocRef, Client, Command, Server, Target, Transmit, client, server};
use rserpool::wire::{TransportParameter, TransportProtocol};
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, ConnectRequest, Event, SendError, SendOptions};

use crate::exit::Failure;

/// Messages waiting per association (set-up or full send buffer); more are dropped.
pub const MAX_BACKLOG: usize = 1024;

/// The driver-facing side of a session core: the calls of `docs/design/enhanced-mode.md`
/// that [`Server`] and [`Client`] share (a client ignores `handle_incoming`).
pub trait SessionCore {
    /// The core's event type.
    type Event;
    /// A connect asked for `target` is up as `assoc`.
    fn handle_connected(
        &mut self,
        now: Timestamp,
        target: Target,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    );
    /// A connect asked for `target` failed.
    fn handle_connect_failed(
        &mut self,
        now: Timestamp,
        target: Target,
        endpoint: &TransportParameter,
    );
    /// An association was accepted; `false` when the core takes none (the driver aborts it).
    fn handle_incoming(
        &mut self,
        now: Timestamp,
        assoc: AssocRef,
        peer_port: u16,
        peer_addresses: &[IpAddr],
    ) -> bool;
    /// An association went down.
    fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef);
    /// One user message.
    fn handle_message(&mut self, now: Timestamp, assoc: AssocRef, ppid: u32, bytes: &[u8]);
    /// One SERVER_ANNOUNCE datagram.
    fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]);
    /// The deadline has come.
    fn handle_timeout(&mut self, now: Timestamp);
    /// The next association command.
    fn poll_command(&mut self) -> Option<Command>;
    /// The next message to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Timestamp>;
}

impl SessionCore for Server {
    type Event = server::Event;
    fn handle_connected(
        &mut self,
        now: Timestamp,
        target: Target,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    ) {
        Server::handle_connected(self, now, target, assoc, endpoint);
    }
    fn handle_connect_failed(
        &mut self,
        now: Timestamp,
        target: Target,
        endpoint: &TransportParameter,
    ) {
        Server::handle_connect_failed(self, now, target, endpoint);
    }
    fn handle_incoming(
        &mut self,
        now: Timestamp,
        assoc: AssocRef,
        peer_port: u16,
        peer_addresses: &[IpAddr],
    ) -> bool {
        Server::handle_incoming(self, now, assoc, peer_port, peer_addresses);
        true
    }
    fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        Server::handle_association_lost(self, now, assoc);
    }
    fn handle_message(&mut self, now: Timestamp, assoc: AssocRef, ppid: u32, bytes: &[u8]) {
        Server::handle_message(self, now, assoc, ppid, bytes);
    }
    fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]) {
        Server::handle_server_announce(self, now, source, bytes);
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        Server::handle_timeout(self, now);
    }
    fn poll_command(&mut self) -> Option<Command> {
        Server::poll_command(self)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Server::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<server::Event> {
        Server::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Server::poll_timeout(self)
    }
}

impl SessionCore for Client {
    type Event = client::Event;
    fn handle_connected(
        &mut self,
        now: Timestamp,
        target: Target,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    ) {
        Client::handle_connected(self, now, target, assoc, endpoint);
    }
    fn handle_connect_failed(
        &mut self,
        now: Timestamp,
        target: Target,
        endpoint: &TransportParameter,
    ) {
        Client::handle_connect_failed(self, now, target, endpoint);
    }
    fn handle_incoming(&mut self, _: Timestamp, _: AssocRef, _: u16, _: &[IpAddr]) -> bool {
        false
    }
    fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        Client::handle_association_lost(self, now, assoc);
    }
    fn handle_message(&mut self, now: Timestamp, assoc: AssocRef, ppid: u32, bytes: &[u8]) {
        Client::handle_message(self, now, assoc, ppid, bytes);
    }
    fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]) {
        Client::handle_server_announce(self, now, source, bytes);
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        Client::handle_timeout(self, now);
    }
    fn poll_command(&mut self) -> Option<Command> {
        Client::poll_command(self)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Client::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<client::Event> {
        Client::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Client::poll_timeout(self)
    }
}

/// What runs on top of a session core: a service (server side) or a tool (client side).
/// Every callback runs on the worker thread and must not block.
pub trait Application<C: SessionCore> {
    /// Called once when the worker starts (after the core was created).
    fn start(&mut self, core: &mut C, now: Timestamp) {
        let _ = (core, now);
    }
    /// One event of the core.
    fn event(&mut self, core: &mut C, now: Timestamp, event: C::Event);
    /// The application's next deadline.
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
    /// Called when the deadline has come (spurious calls must be harmless).
    fn timeout(&mut self, core: &mut C, now: Timestamp) {
        let _ = (core, now);
    }
    /// Called once per worker iteration: read input from other threads.
    fn poll(&mut self, core: &mut C, now: Timestamp) {
        let _ = (core, now);
    }
    /// Whether input from other threads waits.
    fn has_pending_input(&self) -> bool {
        false
    }
    /// The bounded run is over: the driver stops the runtime.
    fn finished(&self) -> bool {
        false
    }
    /// The runtime stops (last call).
    fn stop(&mut self, core: &mut C, now: Timestamp) {
        let _ = (core, now);
    }
}

/// How the driver reaches peers and ends.
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// SCTP port to accept sessions on (a server's user port).
    pub listen_port: Option<u16>,
    /// Local SCTP port of associations to registrars (a server uses its user port, which
    /// is then its ASAP transport: a registrar taking it over connects there).
    pub registrar_local_port: u16,
    /// UDP encapsulation ports of registrars by ASAP address and port.
    pub registrar_udp_ports: HashMap<(IpAddr, u16), u16>,
    /// UDP encapsulation ports of PEs by SCTP port (any address).
    pub pe_udp_ports: HashMap<u16, u16>,
    /// Stop without a word: associations are abandoned, not aborted (the demo's crash).
    pub silent_stop: bool,
}

/// One association.
#[derive(Debug)]
struct Conn {
    aref: AssocRef,
    up: bool,
    /// The connect this association answers (outgoing ones).
    target: Option<(Target, TransportParameter)>,
    backlog: VecDeque<(u32, u16, Vec<u8>)>,
    /// The core closed or aborted it: its end is not reported back.
    dropped_by_core: bool,
}

/// Shared counters of the driver (read by the statistics thread).
#[derive(Debug, Default, Clone)]
pub struct DriverStats {
    /// Associations set up (both directions).
    pub associations: u64,
    /// Associations lost or closed.
    pub associations_lost: u64,
    /// Messages dropped: backlog full or refused by the stack.
    pub dropped: u64,
    /// Connects refused by the stack at once.
    pub connect_errors: u64,
}

/// A session core and its application as one in-worker [`App`].
pub(crate) struct Driver<C: SessionCore, A: Application<C>> {
    core: C,
    app: A,
    config: DriverConfig,
    conns: HashMap<AssociationId, Conn>,
    by_ref: HashMap<AssocRef, AssociationId>,
    next_ref: u64,
    announces: Option<MailboxReceiver<(SocketAddr, Vec<u8>)>>,
    stats: Arc<Mutex<DriverStats>>,
    /// Set when the driver cannot run (the user port cannot be listened on).
    failure: Arc<Mutex<Option<String>>>,
    stopping: bool,
}

impl<C: SessionCore, A: Application<C>> Driver<C, A> {
    /// A driver for `core` and `app`.
    pub fn new(
        core: C,
        app: A,
        config: DriverConfig,
        announces: Option<MailboxReceiver<(SocketAddr, Vec<u8>)>>,
        stats: Arc<Mutex<DriverStats>>,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Self {
        Driver {
            core,
            app,
            config,
            conns: HashMap::new(),
            by_ref: HashMap::new(),
            next_ref: 1,
            announces,
            stats,
            failure,
            stopping: false,
        }
    }

    fn count(&self, f: impl FnOnce(&mut DriverStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn add_conn(
        &mut self,
        id: AssociationId,
        target: Option<(Target, TransportParameter)>,
    ) -> AssocRef {
        let aref = AssocRef(self.next_ref);
        self.next_ref += 1;
        self.by_ref.insert(aref, id);
        self.conns.insert(
            id,
            Conn {
                aref,
                up: false,
                target,
                backlog: VecDeque::new(),
                dropped_by_core: false,
            },
        );
        aref
    }

    /// Drains the core (commands, transmits, events) until nothing is left.
    fn flush(&mut self, cx: &mut Context<'_>) {
        // Bounded: every round either moves queued output or ends the loop.
        for _ in 0..10_000 {
            let mut progress = false;
            while let Some(c) = self.core.poll_command() {
                progress = true;
                self.command(cx, c);
            }
            while let Some(t) = self.core.poll_transmit() {
                progress = true;
                match self.by_ref.get(&t.assoc).copied() {
                    Some(id) => self.send(cx, id, t.ppid, t.stream, t.bytes),
                    None => {
                        tracing::debug!(
                            assoc = t.assoc.0,
                            "message for a gone association dropped"
                        );
                        self.count(|s| s.dropped += 1);
                    }
                }
            }
            while let Some(e) = self.core.poll_event() {
                progress = true;
                self.app.event(&mut self.core, cx.now(), e);
            }
            if !progress {
                break;
            }
        }
        if self.app.finished() && !self.stopping {
            self.stopping = true;
            cx.stop_runtime();
        }
    }

    fn command(&mut self, cx: &mut Context<'_>, c: Command) {
        match c {
            Command::Connect { target, endpoint } => self.connect(cx, target, endpoint),
            Command::Close { assoc } | Command::Abort { assoc } => {
                let abort = matches!(c, Command::Abort { .. });
                let Some(id) = self.by_ref.get(&assoc).copied() else {
                    return;
                };
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.dropped_by_core = true;
                }
                if let Some(mut h) = cx.association(id) {
                    if abort {
                        h.abort(b"");
                    } else {
                        h.shutdown();
                    }
                }
            }
            other => tracing::debug!(?other, "unknown command ignored"),
        }
    }

    fn connect(&mut self, cx: &mut Context<'_>, target: Target, endpoint: TransportParameter) {
        let now = cx.now();
        if endpoint.protocol != TransportProtocol::Sctp {
            self.core.handle_connect_failed(now, target, &endpoint);
            return;
        }
        let port = endpoint.port;
        let mut last_error = None;
        for &addr in &endpoint.addresses {
            let (encaps, local) = match target {
                Target::Registrar => (
                    self.config
                        .registrar_udp_ports
                        .get(&(addr, port))
                        .copied()
                        .unwrap_or(0),
                    self.config.registrar_local_port,
                ),
                _ => (self.config.pe_udp_ports.get(&port).copied().unwrap_or(0), 0),
            };
            let mut req = ConnectRequest::new(addr, port).with_encaps_port(encaps);
            if local != 0 {
                req = req.with_local_port(local);
            }
            match cx.connect(req) {
                Ok(id) => {
                    tracing::debug!(?target, "connecting to {}", endpoint_text(addr, port));
                    self.add_conn(id, Some((target, endpoint)));
                    return;
                }
                Err(e) => last_error = Some((addr, e)),
            }
        }
        self.count(|s| s.connect_errors += 1);
        if let Some((addr, e)) = last_error {
            tracing::debug!("cannot connect to {}: {e}", endpoint_text(addr, port));
        }
        self.core.handle_connect_failed(now, target, &endpoint);
    }

    fn send(
        &mut self,
        cx: &mut Context<'_>,
        id: AssociationId,
        ppid: u32,
        stream: u16,
        bytes: Vec<u8>,
    ) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.backlog.len() >= MAX_BACKLOG {
            self.count(|s| s.dropped += 1);
            return;
        }
        c.backlog.push_back((ppid, stream, bytes));
        let dropped = Self::pump(c, cx, id);
        if dropped > 0 {
            self.count(|s| s.dropped += dropped);
        }
    }

    /// Moves an established association's backlog into the stack; returns the messages
    /// the stack refused.
    fn pump(c: &mut Conn, cx: &mut Context<'_>, id: AssociationId) -> u64 {
        if !c.up {
            return 0;
        }
        let Some(mut h) = cx.association(id) else {
            return 0;
        };
        let mut dropped = 0;
        while let Some((ppid, stream, bytes)) = c.backlog.front() {
            match h.send(*stream, Ppid(*ppid), &bytes[..], SendOptions::default()) {
                Ok(()) => {}
                Err(SendError::WouldBlock) => return dropped,
                Err(e) => {
                    tracing::debug!(aref = c.aref.0, "message refused: {e}");
                    dropped += 1;
                }
            }
            c.backlog.pop_front();
        }
        dropped
    }

    fn connected(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let now = cx.now();
        let status = cx.association(id).and_then(|a| a.status());
        if !self.conns.contains_key(&id) {
            self.add_conn(id, None);
        }
        self.count(|s| s.associations += 1);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.up = true;
        let aref = c.aref;
        match c.target.clone() {
            Some((target, endpoint)) => {
                let dropped = Self::pump(c, cx, id);
                self.count(|s| s.dropped += dropped);
                self.core.handle_connected(now, target, aref, &endpoint);
            }
            None => {
                let (port, addresses) = status
                    .map(|s| {
                        let mut a = s.peer_addresses.clone();
                        if let Some(i) = a.iter().position(|x| *x == s.primary) {
                            a.swap(0, i);
                        }
                        (s.peer_port, a)
                    })
                    .unwrap_or_default();
                if !self.core.handle_incoming(now, aref, port, &addresses)
                    && let Some(mut h) = cx.association(id)
                {
                    h.abort(b"");
                }
            }
        }
        self.flush(cx);
    }

    fn readable(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(aref) = self.conns.get(&id).map(|c| c.aref) else {
            return;
        };
        let mut messages = Vec::new();
        if let Some(mut h) = cx.association(id) {
            while let Some(m) = h.recv() {
                messages.push(m);
            }
        }
        for m in messages {
            self.core
                .handle_message(cx.now(), aref, m.ppid.get(), &m.data);
            self.flush(cx);
        }
    }

    fn closed(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        self.by_ref.remove(&c.aref);
        if !c.backlog.is_empty() {
            let n = c.backlog.len() as u64;
            self.count(|s| s.dropped += n);
        }
        let now = cx.now();
        if c.up {
            self.count(|s| s.associations_lost += 1);
        }
        if c.dropped_by_core {
            // The core already forgot it.
        } else if c.up {
            self.core.handle_association_lost(now, c.aref);
        } else if let Some((target, endpoint)) = c.target {
            self.core.handle_connect_failed(now, target, &endpoint);
        }
        self.flush(cx);
    }
}

impl<C: SessionCore, A: Application<C>> App for Driver<C, A> {
    fn start(&mut self, cx: &mut Context<'_>) {
        if let Some(port) = self.config.listen_port
            && let Err(e) = cx.listen(port)
        {
            *self.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(format!("cannot listen on SCTP port {port}: {e}"));
            self.stopping = true;
            cx.stop_runtime();
            return;
        }
        let now = cx.now();
        self.app.start(&mut self.core, now);
        self.core.handle_timeout(now);
        self.flush(cx);
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => self.connected(cx, id),
            Event::DataReadable => self.readable(cx, id),
            Event::SendSpace => {
                if let Some(c) = self.conns.get_mut(&id) {
                    let dropped = Self::pump(c, cx, id);
                    if dropped > 0 {
                        self.count(|s| s.dropped += dropped);
                    }
                }
            }
            Event::Closed => self.closed(cx, id),
            other => tracing::trace!(?other, "association event"),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let mut any = false;
        while let Some((source, bytes)) = self.announces.as_ref().and_then(|m| m.try_recv()) {
            self.core.handle_server_announce(now, source, &bytes);
            any = true;
        }
        let _ = any;
        self.app.poll(&mut self.core, now);
        // Whatever the announces and the application did through the core goes out now.
        self.flush(cx);
    }

    fn has_pending_input(&self) -> bool {
        self.announces
            .as_ref()
            .is_some_and(MailboxReceiver::has_pending)
            || self.app.has_pending_input()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.core.poll_timeout(), self.app.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn timeout(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        if self.app.poll_timeout().is_some_and(|t| t <= now) {
            self.app.timeout(&mut self.core, now);
        }
        self.flush(cx);
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        self.app.stop(&mut self.core, now);
        if self.config.silent_stop {
            return;
        }
        // Registrars and peers learn at once (a registrar removes the PEs registered over
        // an association that ends).
        for id in self.conns.keys() {
            if let Some(mut a) = cx.association(*id) {
                a.abort(b"stopped");
            }
        }
    }
}

/// `ADDR:PORT` with brackets for IPv6.
pub fn endpoint_text(addr: IpAddr, port: u16) -> String {
    SocketAddr::new(addr, port).to_string()
}

/// Receives SERVER_ANNOUNCE datagrams on `socket` and queues them, with their source, for
/// the worker until the runtime stops (a full mailbox drops them: announces repeat).
pub fn spawn_announce_receiver(
    socket: UdpSocket,
    to_worker: MailboxSender<(SocketAddr, Vec<u8>)>,
    remote: WorkerRemote,
) -> Result<JoinHandle<()>, Failure> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| Failure::setup(format!("announce socket: {e}")))?;
    std::thread::Builder::new()
        .name("rsp-asap-announce".to_owned())
        .spawn(move || {
            let mut buf = vec![0; 65_536];
            while !remote.is_stopping() {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let _ = to_worker.try_send((from, buf[..n].to_vec()));
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        tracing::warn!("SERVER_ANNOUNCE receive failed: {e}");
                        return;
                    }
                }
            }
        })
        .map_err(|e| Failure::setup(format!("cannot start the announce thread: {e}")))
}
