//! Enhanced Mode end to end at message level (STYLE.md §9): registrar cores, session
//! servers running the RSPLIB services, session clients running the service clients, on
//! an in-memory network with virtual time. Associations are message pipes with a fixed
//! latency (FIFO per association). Killing a node drops everything it has in flight and
//! everything sent to it; its peers learn about the lost associations only after a
//! detection delay (as SCTP heartbeats would tell them), without any goodbye message.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::pe::PoolElementConfig;
use rserpool::pu::PoolUserConfig;
use rserpool::registrar::{AsapOrigin, Destination, EnrpOrigin, Registrar, RegistrarConfig};
use rserpool::services::ServiceOutput;
use rserpool::services::client::{
    CalcAppClient, CalcAppClientConfig, EchoClient, PingPongClient, PingPongConfig,
};
use rserpool::services::server::{ServiceConfig, ServiceHost, ServiceKind};
use rserpool::session::{
    AssocRef, Client, ClientConfig, Command, FailoverMode, SendError, Server, ServerConfig,
    SessionId, Target, client, server,
};
use rserpool::wire::{
    AsapMessage, PPID_ASAP, PolicyInfo, PoolHandle, RegistrarId, TransportParameter, TransportUse,
};

const ENRP_ASSOC_BASE: u64 = 1 << 40;
const PE_ASAP_PORT: u16 = 5000;
const PE_USER_PORT: u16 = 7000;
const PU_PORT: u16 = 40_000;
const LATENCY: Duration = Duration::from_millis(5);
const DETECTION: Duration = Duration::from_millis(500);
/// How long connecting to a dead host takes to fail (INIT retransmissions).
const CONNECT_FAIL: Duration = Duration::from_millis(300);

fn reg_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

fn srv_addr(j: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (j / 250) as u8, (j % 250) as u8 + 1))
}

fn cli_addr(k: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 2, (k / 250) as u8, (k % 250) as u8 + 1))
}

fn reg_id(i: usize) -> RegistrarId {
    RegistrarId(10 * (i as u32 + 1))
}

fn asap_endpoint(i: usize) -> TransportParameter {
    TransportParameter::sctp(3863, TransportUse::DATA_ONLY, vec![reg_addr(i)])
}

fn enrp_endpoint(i: usize) -> TransportParameter {
    TransportParameter::sctp(9901, TransportUse::DATA_ONLY, vec![reg_addr(i)])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Reg(usize),
    Srv(usize),
    Cli(usize),
}

#[derive(Debug, Clone, Copy)]
struct Assoc {
    a: Node,
    b: Node,
    /// Closed or aborted by one side (messages already sent still arrive).
    closed: bool,
}

impl Assoc {
    fn other(&self, n: Node) -> Node {
        if self.a == n { self.b } else { self.a }
    }
}

#[derive(Debug, Clone)]
enum Delivery {
    Msg {
        assoc: u64,
        from: Node,
        to: Node,
        ppid: u32,
        bytes: Vec<u8>,
    },
    Enrp {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Lost {
        assoc: u64,
        to: Node,
    },
    ConnectFailed {
        to: Node,
        target: Target2,
        endpoint: TransportParameter,
    },
}

/// `Target` with an order for the delivery queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target2 {
    Registrar,
    Session(u64),
}

impl Target2 {
    fn of(t: Target) -> Self {
        match t {
            Target::Session(s) => Target2::Session(s.0),
            _ => Target2::Registrar,
        }
    }
    fn target(self) -> Target {
        match self {
            Target2::Registrar => Target::Registrar,
            Target2::Session(s) => Target::Session(SessionId(s)),
        }
    }
}

#[derive(Debug)]
enum Svc {
    PingPong(PingPongClient),
    CalcApp(CalcAppClient),
    Echo(EchoClient),
}

impl Svc {
    fn handle_event(&mut self, now: Timestamp, e: &client::Event, out: &mut ServiceOutput) {
        match self {
            Svc::PingPong(a) => a.handle_event(now, e, out),
            Svc::CalcApp(a) => a.handle_event(now, e, out),
            Svc::Echo(a) => a.handle_event(now, e, out),
        }
    }
    fn handle_timeout(&mut self, now: Timestamp, out: &mut ServiceOutput) {
        match self {
            Svc::PingPong(a) => a.handle_timeout(now, out),
            Svc::CalcApp(a) => a.handle_timeout(now, out),
            Svc::Echo(_) => {}
        }
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        match self {
            Svc::PingPong(a) => a.poll_timeout(),
            Svc::CalcApp(a) => a.poll_timeout(),
            Svc::Echo(_) => None,
        }
    }
    fn pingpong(&self) -> &PingPongClient {
        match self {
            Svc::PingPong(a) => a,
            other => panic!("not PingPong: {other:?}"),
        }
    }
    fn calcapp(&self) -> &CalcAppClient {
        match self {
            Svc::CalcApp(a) => a,
            other => panic!("not CalcApp: {other:?}"),
        }
    }
}

struct SrvNode {
    core: Server,
    host: ServiceHost,
    alive: bool,
    events: Vec<server::Event>,
}

struct CliNode {
    core: Client,
    apps: BTreeMap<SessionId, Svc>,
    alive: bool,
    events: Vec<client::Event>,
}

struct Net {
    now: Timestamp,
    regs: Vec<Registrar>,
    reg_alive: Vec<bool>,
    srvs: Vec<SrvNode>,
    clis: Vec<CliNode>,
    assocs: BTreeMap<u64, Assoc>,
    next_assoc: u64,
    /// Deliveries by (time, sequence): FIFO among equal times.
    queue: BTreeMap<(Timestamp, u64), Delivery>,
    seq: u64,
}

impl Net {
    /// `n` registrars in a full static ENRP mesh, serving after start-up.
    fn new(n: usize) -> Self {
        let mut net = Net {
            now: Timestamp::from_secs(1),
            regs: Vec::new(),
            reg_alive: Vec::new(),
            srvs: Vec::new(),
            clis: Vec::new(),
            assocs: BTreeMap::new(),
            next_assoc: 1,
            queue: BTreeMap::new(),
            seq: 0,
        };
        for i in 0..n {
            let config = RegistrarConfig {
                server_id: reg_id(i),
                asap_transports: vec![asap_endpoint(i)],
                enrp_transport: enrp_endpoint(i),
                static_peers: (0..n).filter(|j| *j != i).map(enrp_endpoint).collect(),
                mentor_hunt_timeout: if n == 1 {
                    Duration::ZERO
                } else {
                    RegistrarConfig::default().mentor_hunt_timeout
                },
                ..RegistrarConfig::default()
            };
            let rng = Box::new(ChaCha8Rng::seed_from_u64(i as u64 + 1));
            net.regs.push(Registrar::new(config, rng, net.now));
            net.reg_alive.push(true);
        }
        net.run_for(Duration::from_secs(6));
        assert!(net.regs.iter().all(|r| r.is_serving()));
        net
    }

    fn add_server(&mut self, kind: ServiceKind, tune: impl FnOnce(&mut ServiceConfig)) -> usize {
        let j = self.srvs.len();
        let node = self.server_node(j, kind, tune);
        self.srvs.push(node);
        self.flush();
        j
    }

    /// Server `j` (killed before) starts again at the same address, as a new PE.
    fn restart_server(
        &mut self,
        j: usize,
        kind: ServiceKind,
        tune: impl FnOnce(&mut ServiceConfig),
    ) {
        assert!(!self.srvs[j].alive);
        self.srvs[j] = self.server_node(j, kind, tune);
        self.flush();
    }

    fn server_node(
        &mut self,
        j: usize,
        kind: ServiceKind,
        tune: impl FnOnce(&mut ServiceConfig),
    ) -> SrvNode {
        self.seq += 1;
        let mut pe = PoolElementConfig::new(
            PoolHandle::from(pool_of(kind)),
            PolicyInfo::round_robin(),
            TransportParameter::sctp(PE_USER_PORT, TransportUse::DATA_ONLY, vec![srv_addr(j)]),
        );
        pe.static_registrars = (0..self.regs.len()).map(asap_endpoint).collect();
        pe.use_announces = false;
        let mut sc = ServiceConfig::new(kind);
        tune(&mut sc);
        let rng = Box::new(ChaCha8Rng::seed_from_u64(100 + j as u64 + (self.seq << 16)));
        SrvNode {
            core: Server::new(ServerConfig::new(pe), rng, self.now),
            host: ServiceHost::new(sc, self.now),
            alive: true,
            events: Vec::new(),
        }
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig {
            pu: PoolUserConfig {
                static_registrars: (0..self.regs.len()).map(asap_endpoint).collect(),
                use_announces: false,
                ..PoolUserConfig::default()
            },
            retry_interval: Duration::from_millis(200),
            max_failover_attempts: 20,
            ..ClientConfig::default()
        }
    }

    fn add_client(&mut self, config: ClientConfig) -> usize {
        let k = self.clis.len();
        let rng = Box::new(ChaCha8Rng::seed_from_u64(1000 + k as u64));
        self.clis.push(CliNode {
            core: Client::new(config, rng, self.now),
            apps: BTreeMap::new(),
            alive: true,
            events: Vec::new(),
        });
        k
    }

    /// Opens a session on client `k` to `kind`'s pool, run by `app`.
    fn open(
        &mut self,
        k: usize,
        kind: ServiceKind,
        app: impl FnOnce(SessionId, Timestamp) -> Svc,
    ) -> SessionId {
        let now = self.now;
        let s = self.clis[k]
            .core
            .connect(now, PoolHandle::from(pool_of(kind)))
            .expect("session");
        self.clis[k].apps.insert(s, app(s, now));
        self.flush();
        s
    }

    fn send(&mut self, d: Duration, item: Delivery) {
        self.seq += 1;
        self.queue.insert((self.now + d, self.seq), item);
    }

    fn alive(&self, n: Node) -> bool {
        match n {
            Node::Reg(i) => self.reg_alive[i],
            Node::Srv(j) => self.srvs[j].alive,
            Node::Cli(k) => self.clis[k].alive,
        }
    }

    fn new_assoc(&mut self, a: Node, b: Node) -> u64 {
        let id = self.next_assoc;
        self.next_assoc += 1;
        self.assocs.insert(
            id,
            Assoc {
                a,
                b,
                closed: false,
            },
        );
        id
    }

    /// A message from `from` on `assoc` (dropped if the association is closed).
    fn transmit(&mut self, from: Node, assoc: u64, ppid: u32, bytes: Vec<u8>) {
        let Some(a) = self.assocs.get(&assoc).copied() else {
            return;
        };
        if a.closed {
            return;
        }
        let to = a.other(from);
        self.send(
            LATENCY,
            Delivery::Msg {
                assoc,
                from,
                to,
                ppid,
                bytes,
            },
        );
    }

    /// `by` closes or aborts `assoc`; the other side learns it after the latency.
    fn close(&mut self, by: Node, assoc: u64) {
        if let Some(a) = self.assocs.get_mut(&assoc)
            && !a.closed
        {
            a.closed = true;
            let to = a.other(by);
            self.send(LATENCY, Delivery::Lost { assoc, to });
        }
    }

    /// Node `n` dies: its in-flight messages vanish, its peers notice after the
    /// detection delay.
    fn kill(&mut self, n: Node) {
        self.stop(n, true);
    }

    /// Node `n` hangs: like [`Net::kill`], but nobody is told the associations are gone
    /// (they only notice the silence).
    fn hang(&mut self, n: Node) {
        self.stop(n, false);
    }

    fn stop(&mut self, n: Node, noticed: bool) {
        match n {
            Node::Reg(i) => self.reg_alive[i] = false,
            Node::Srv(j) => self.srvs[j].alive = false,
            Node::Cli(k) => self.clis[k].alive = false,
        }
        let ids: Vec<(u64, Node)> = self
            .assocs
            .iter()
            .filter(|(_, a)| !a.closed && (a.a == n || a.b == n))
            .map(|(id, a)| (*id, a.other(n)))
            .collect();
        for (id, other) in ids {
            if let Some(a) = self.assocs.get_mut(&id) {
                a.closed = true;
            }
            if noticed {
                self.send(
                    DETECTION,
                    Delivery::Lost {
                        assoc: id,
                        to: other,
                    },
                );
            }
        }
    }

    fn reg_of_endpoint(&self, t: &TransportParameter) -> Option<usize> {
        (0..self.regs.len()).find(|i| t.port == 3863 && t.addresses.contains(&reg_addr(*i)))
    }

    fn srv_of_endpoint(&self, t: &TransportParameter) -> Option<usize> {
        (0..self.srvs.len()).find(|j| t.addresses.contains(&srv_addr(*j)))
    }

    fn origin_of(n: Node) -> (IpAddr, u16) {
        match n {
            Node::Srv(j) => (srv_addr(j), PE_ASAP_PORT),
            Node::Cli(k) => (cli_addr(k), PU_PORT),
            Node::Reg(i) => (reg_addr(i), 3863),
        }
    }

    /// A Connect command of `from`.
    fn connect(&mut self, from: Node, target: Target, endpoint: TransportParameter) {
        let now = self.now;
        let peer = match target {
            Target::Registrar => self.reg_of_endpoint(&endpoint).map(Node::Reg),
            _ => self.srv_of_endpoint(&endpoint).map(Node::Srv),
        };
        let Some(peer) = peer.filter(|p| self.alive(*p)) else {
            self.send(
                CONNECT_FAIL,
                Delivery::ConnectFailed {
                    to: from,
                    target: Target2::of(target),
                    endpoint,
                },
            );
            return;
        };
        let id = self.new_assoc(from, peer);
        let (addr, port) = Self::origin_of(from);
        if let Node::Srv(j) = peer {
            self.srvs[j]
                .core
                .handle_incoming(now, AssocRef(id), port, &[addr]);
        }
        match from {
            Node::Srv(j) => {
                self.srvs[j]
                    .core
                    .handle_connected(now, target, AssocRef(id), &endpoint)
            }
            Node::Cli(k) => {
                self.clis[k]
                    .core
                    .handle_connected(now, target, AssocRef(id), &endpoint)
            }
            Node::Reg(_) => unreachable!("registrars connect through Destination::PoolElement"),
        }
    }

    fn command(&mut self, from: Node, c: Command) {
        match c {
            Command::Connect { target, endpoint } => self.connect(from, target, endpoint),
            Command::Close { assoc } | Command::Abort { assoc } => self.close(from, assoc.0),
            other => panic!("unknown command {other:?}"),
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Msg {
                assoc,
                from,
                to,
                ppid,
                bytes,
            } => {
                if !self.alive(from) || !self.alive(to) {
                    return;
                }
                match to {
                    Node::Reg(i) => {
                        let (addr, port) = Self::origin_of(from);
                        assert_eq!(ppid, PPID_ASAP, "only ASAP goes to registrars");
                        self.regs[i].handle_asap(
                            now,
                            AsapOrigin {
                                assoc: AssocRef(assoc),
                                port,
                                addresses: &[addr],
                            },
                            &bytes,
                        );
                    }
                    Node::Srv(j) => {
                        self.srvs[j]
                            .core
                            .handle_message(now, AssocRef(assoc), ppid, &bytes)
                    }
                    Node::Cli(k) => {
                        self.clis[k]
                            .core
                            .handle_message(now, AssocRef(assoc), ppid, &bytes)
                    }
                }
            }
            Delivery::Enrp { from, to, bytes } => {
                if self.reg_alive[from] && self.reg_alive[to] {
                    self.regs[to].handle_enrp(
                        now,
                        EnrpOrigin::Association(AssocRef(ENRP_ASSOC_BASE + from as u64)),
                        &bytes,
                    );
                }
            }
            Delivery::Lost { assoc, to } => {
                if !self.alive(to) {
                    return;
                }
                match to {
                    Node::Reg(i) => self.regs[i].handle_association_lost(now, AssocRef(assoc)),
                    Node::Srv(j) => self.srvs[j]
                        .core
                        .handle_association_lost(now, AssocRef(assoc)),
                    Node::Cli(k) => self.clis[k]
                        .core
                        .handle_association_lost(now, AssocRef(assoc)),
                }
            }
            Delivery::ConnectFailed {
                to,
                target,
                endpoint,
            } => {
                if !self.alive(to) {
                    return;
                }
                match to {
                    Node::Srv(j) => {
                        self.srvs[j]
                            .core
                            .handle_connect_failed(now, target.target(), &endpoint)
                    }
                    Node::Cli(k) => {
                        self.clis[k]
                            .core
                            .handle_connect_failed(now, target.target(), &endpoint)
                    }
                    Node::Reg(_) => {}
                }
            }
        }
    }

    fn registrar_output(&mut self, i: usize, t: rserpool::registrar::Transmit) {
        match t.to {
            Destination::Association(AssocRef(id)) => {
                self.transmit(Node::Reg(i), id, t.ppid, t.bytes)
            }
            Destination::PoolElement(tp) => {
                // A registrar reaching a PE it has no association with (a takeover): it
                // connects to the PE's ASAP endpoint (here: the server's incoming side).
                let Some(j) = self.srv_of_endpoint(&tp) else {
                    return;
                };
                if !self.srvs[j].alive {
                    return;
                }
                let existing = self
                    .assocs
                    .iter()
                    .find(|(_, a)| !a.closed && a.a == Node::Reg(i) && a.b == Node::Srv(j))
                    .map(|(id, _)| *id);
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let id = self.new_assoc(Node::Reg(i), Node::Srv(j));
                        let now = self.now;
                        self.srvs[j]
                            .core
                            .handle_incoming(now, AssocRef(id), 3863, &[reg_addr(i)]);
                        id
                    }
                };
                self.transmit(Node::Reg(i), id, t.ppid, t.bytes);
            }
            Destination::Peer { id, endpoint } => {
                let dst = if id != RegistrarId::UNDEFINED {
                    self.regs.iter().position(|r| r.id() == id)
                } else {
                    (0..self.regs.len()).find(|x| endpoint.addresses.contains(&reg_addr(*x)))
                };
                if let Some(to) = dst {
                    self.send(
                        LATENCY,
                        Delivery::Enrp {
                            from: i,
                            to,
                            bytes: t.bytes,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Moves every node's outputs into the network until nothing is left.
    fn flush(&mut self) {
        let now = self.now;
        for _round in 0..100_000 {
            let mut busy = false;
            for i in 0..self.regs.len() {
                if !self.reg_alive[i] {
                    while self.regs[i].poll_transmit().is_some() {}
                    continue;
                }
                while self.regs[i].poll_event().is_some() {}
                while let Some(t) = self.regs[i].poll_transmit() {
                    busy = true;
                    self.registrar_output(i, t);
                }
            }
            for j in 0..self.srvs.len() {
                if !self.srvs[j].alive {
                    continue;
                }
                while let Some(c) = self.srvs[j].core.poll_command() {
                    busy = true;
                    self.command(Node::Srv(j), c);
                }
                while let Some(t) = self.srvs[j].core.poll_transmit() {
                    busy = true;
                    self.transmit(Node::Srv(j), t.assoc.0, t.ppid, t.bytes);
                }
                let node = &mut self.srvs[j];
                while let Some(e) = node.core.poll_event() {
                    busy = true;
                    node.host.handle_event(now, &e);
                    node.events.push(e);
                }
                node.host.drive(now, &mut node.core);
            }
            for k in 0..self.clis.len() {
                if !self.clis[k].alive {
                    continue;
                }
                while let Some(c) = self.clis[k].core.poll_command() {
                    busy = true;
                    self.command(Node::Cli(k), c);
                }
                while let Some(t) = self.clis[k].core.poll_transmit() {
                    busy = true;
                    self.transmit(Node::Cli(k), t.assoc.0, t.ppid, t.bytes);
                }
                let node = &mut self.clis[k];
                while let Some(e) = node.core.poll_event() {
                    busy = true;
                    let session = event_session(&e);
                    if let Some(app) = session.and_then(|s| node.apps.get_mut(&s)) {
                        let mut out = ServiceOutput::new();
                        app.handle_event(now, &e, &mut out);
                        out.apply_to_client(now, &mut node.core, session.expect("some"));
                    }
                    node.events.push(e);
                }
            }
            if !busy {
                return;
            }
        }
        panic!("message storm");
    }

    /// Advances virtual time by `d`, delivering messages and firing timers in order.
    fn run_for(&mut self, d: Duration) {
        let target = self.now + d;
        let mut same_time = 0;
        loop {
            self.flush();
            let next = self.next_event();
            let Some(next) = next.filter(|t| *t <= target) else {
                break;
            };
            if next <= self.now {
                same_time += 1;
                assert!(same_time < 100_000, "busy loop at {:?}", self.now);
            } else {
                same_time = 0;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let d = entry.remove();
                self.deliver(d);
                self.flush();
            }
            for i in 0..self.regs.len() {
                if self.reg_alive[i] && self.regs[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.regs[i].handle_timeout(now);
                }
            }
            for (j, s) in self.srvs.iter_mut().enumerate() {
                if !s.alive {
                    continue;
                }
                if s.core.poll_timeout().is_some_and(|t| t <= now) {
                    s.core.handle_timeout(now);
                    assert!(
                        s.core.poll_timeout().is_none_or(|t| t > now),
                        "server {j} still due"
                    );
                }
                if s.host.poll_timeout().is_some_and(|t| t <= now) {
                    s.host.handle_timeout(now);
                    assert!(
                        s.host.poll_timeout().is_none_or(|t| t > now),
                        "service {j} still due"
                    );
                    s.host.drive(now, &mut s.core);
                }
            }
            for (k, c) in self.clis.iter_mut().enumerate() {
                if !c.alive {
                    continue;
                }
                if c.core.poll_timeout().is_some_and(|t| t <= now) {
                    c.core.handle_timeout(now);
                    assert!(
                        c.core.poll_timeout().is_none_or(|t| t > now),
                        "client {k} still due"
                    );
                }
                let due: Vec<SessionId> = c
                    .apps
                    .iter()
                    .filter(|(_, a)| a.poll_timeout().is_some_and(|t| t <= now))
                    .map(|(s, _)| *s)
                    .collect();
                for s in due {
                    let mut out = ServiceOutput::new();
                    if let Some(app) = c.apps.get_mut(&s) {
                        app.handle_timeout(now, &mut out);
                    }
                    out.apply_to_client(now, &mut c.core, s);
                }
            }
        }
        self.now = target;
        self.flush();
    }

    fn next_event(&self) -> Option<Timestamp> {
        let q = self.queue.keys().next().map(|(t, _)| *t);
        let regs = (0..self.regs.len())
            .filter(|i| self.reg_alive[*i])
            .filter_map(|i| self.regs[i].poll_timeout());
        let srvs = self
            .srvs
            .iter()
            .filter(|s| s.alive)
            .flat_map(|s| [s.core.poll_timeout(), s.host.poll_timeout()])
            .flatten();
        let clis = self
            .clis
            .iter()
            .filter(|c| c.alive)
            .flat_map(|c| {
                std::iter::once(c.core.poll_timeout())
                    .chain(c.apps.values().map(|a| a.poll_timeout()))
                    .collect::<Vec<_>>()
            })
            .flatten();
        q.into_iter().chain(regs).chain(srvs).chain(clis).min()
    }

    /// The server a client session is connected to.
    fn server_of(&self, k: usize, s: SessionId) -> Option<usize> {
        let pe = self.clis[k].core.session_pe(s)?;
        self.srvs
            .iter()
            .position(|x| x.core.pool_element().identifier() == pe)
    }

    /// The registrar server `j`'s home association leads to.
    fn srv_home(&self, j: usize) -> Option<usize> {
        let a = self.srvs[j].core.pool_element().home_association()?;
        match self.assocs.get(&a.0)?.other(Node::Srv(j)) {
            Node::Reg(i) => Some(i),
            _ => None,
        }
    }

    fn app(&self, k: usize, s: SessionId) -> &Svc {
        &self.clis[k].apps[&s]
    }
}

fn pool_of(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::PingPong => "PingPongPool",
        ServiceKind::CalcApp => "CalcAppPool",
        ServiceKind::Echo => "EchoPool",
        _ => "OtherPool",
    }
}

fn event_session(e: &client::Event) -> Option<SessionId> {
    Some(match e {
        client::Event::Connected { session, .. }
        | client::Event::Data { session, .. }
        | client::Event::CookieReceived { session }
        | client::Event::BusinessCard { session, .. }
        | client::Event::FailoverNecessary { session, .. }
        | client::Event::FailoverComplete { session, .. }
        | client::Event::Failed { session, .. }
        | client::Event::Closed { session } => *session,
        _ => return None,
    })
}

fn pingpong(interval_ms: u64) -> impl FnOnce(SessionId, Timestamp) -> Svc {
    move |s, now| {
        Svc::PingPong(PingPongClient::new(
            s,
            PingPongConfig {
                interval: Duration::from_millis(interval_ms),
                ..PingPongConfig::default()
            },
            now,
        ))
    }
}

// ---- scenarios ----

#[test]
fn pingpong_reply_numbers_continue_on_the_new_pe_after_a_pe_crash() {
    let mut net = Net::new(1);
    for _ in 0..3 {
        net.add_server(ServiceKind::PingPong, |_| {});
    }
    net.run_for(Duration::from_secs(1));
    let k = net.add_client(net.client_config());
    let s = net.open(k, ServiceKind::PingPong, pingpong(100));
    net.run_for(Duration::from_secs(2));
    let first = net.server_of(k, s).expect("connected");
    let before = net.app(k, s).pingpong().stats().clone();
    assert!(before.pongs_received >= 15, "{before:?}");

    net.kill(Node::Srv(first));
    net.run_for(Duration::from_secs(3));

    let second = net.server_of(k, s).expect("failed over");
    assert_ne!(first, second);
    let after = net.app(k, s).pingpong().stats().clone();
    assert!(
        after.pongs_received >= before.pongs_received + 15,
        "{after:?}"
    );
    // The new PE continued the reply numbers from the echoed cookie: no gap, no repeat.
    assert_eq!(after.gaps, 0, "{after:?}");
    assert_eq!(after.duplicates, 0, "{after:?}");
    assert_eq!(after.consecutive, after.pongs_received - 1);
    assert!(net.srvs[second].host.stats().cookie_echoes >= 1);
    // On the new PE, the session's first message was the COOKIE_ECHO.
    let evs = &net.srvs[second].events;
    let added = evs
        .iter()
        .rev()
        .find_map(|e| match e {
            server::Event::SessionAdded { session, .. } => Some(*session),
            _ => None,
        })
        .expect("a session");
    let first_of_session = evs.iter().find(|e| match e {
        server::Event::CookieEcho { session, .. } | server::Event::Data { session, .. } => {
            *session == added
        }
        _ => false,
    });
    assert!(
        matches!(first_of_session, Some(server::Event::CookieEcho { .. })),
        "{first_of_session:?}"
    );
    let events = &net.clis[k].events;
    assert!(
        events.iter().any(
            |e| matches!(e, client::Event::FailoverNecessary { session, .. } if *session == s)
        )
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, client::Event::FailoverComplete { session, .. } if *session == s))
    );
    assert_eq!(net.clis[k].core.stats().cookie_echoes_sent, 1);
    // The old PE was reported unreachable to the registrar.
    assert!(net.clis[k].core.pool_user().stats().unreachable_sent >= 1);
}

fn calcapp(config: CalcAppClientConfig) -> impl FnOnce(SessionId, Timestamp) -> Svc {
    move |s, now| Svc::CalcApp(CalcAppClient::new(s, config, now))
}

#[test]
fn calcapp_jobs_survive_pe_kills_and_complete_exactly_once() {
    let mut net = Net::new(1);
    for _ in 0..4 {
        net.add_server(ServiceKind::CalcApp, |c| {
            c.calcapp_capacity = 1e6;
            c.calcapp_max_jobs = 4;
            c.calcapp_cookie_interval = Duration::from_millis(200);
        });
    }
    net.run_for(Duration::from_secs(1));
    let config = CalcAppClientConfig {
        job_interval: Duration::from_millis(100),
        job_size: 1_500_000,
        max_jobs: Some(3),
        ..CalcAppClientConfig::default()
    };
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let k = net.add_client(net.client_config());
        let s = net.open(k, ServiceKind::CalcApp, calcapp(config.clone()));
        sessions.push((k, s));
    }
    net.run_for(Duration::from_millis(1500));
    // Kill the PE with the most jobs, then another one a little later.
    let busiest = (0..4)
        .max_by_key(|j| net.srvs[*j].host.running_jobs())
        .expect("servers");
    assert!(net.srvs[busiest].host.running_jobs() > 0);
    net.kill(Node::Srv(busiest));
    net.run_for(Duration::from_millis(2500));
    let second = (0..4)
        .filter(|j| net.srvs[*j].alive)
        .max_by_key(|j| net.srvs[*j].host.running_jobs())
        .expect("servers");
    net.kill(Node::Srv(second));
    net.run_for(Duration::from_secs(60));

    for (k, s) in &sessions {
        let st = net.app(*k, *s).calcapp().stats().clone();
        assert_eq!(st.jobs_started, 3, "{st:?}");
        assert_eq!(st.jobs_completed, 3, "client {k}: {st:?}");
        assert_eq!(st.duplicate_completions, 0, "client {k}: {st:?}");
        assert_eq!(st.lost, 0, "client {k}: {st:?}");
    }
    let failovers: u64 = net.clis.iter().map(|c| c.core.stats().failovers).sum();
    assert!(failovers >= 2, "the kills hit sessions: {failovers}");
    // At least one job went on from its cookie instead of starting over.
    let resumed: u64 = net.srvs.iter().map(|s| s.host.stats().jobs_resumed).sum();
    assert!(resumed >= 1, "no job resumed from a cookie");
}

#[test]
fn a_hung_pe_is_caught_by_the_calcapp_keep_alive_and_the_job_resumes_elsewhere() {
    let mut net = Net::new(1);
    for _ in 0..2 {
        net.add_server(ServiceKind::CalcApp, |c| {
            c.calcapp_cookie_interval = Duration::from_millis(200);
        });
    }
    net.run_for(Duration::from_secs(1));
    let config = CalcAppClientConfig {
        job_size: 3_000_000,
        max_jobs: Some(1),
        ..CalcAppClientConfig::default()
    };
    let k = net.add_client(net.client_config());
    let s = net.open(k, ServiceKind::CalcApp, calcapp(config));
    net.run_for(Duration::from_secs(1));
    let first = net.server_of(k, s).expect("up");
    // Hung: the association looks fine, nothing comes back.
    net.hang(Node::Srv(first));
    net.run_for(Duration::from_secs(10));
    let st = net.app(k, s).calcapp().stats().clone();
    assert!(st.keep_alive_timeouts >= 1, "{st:?}");
    assert_eq!(
        (st.jobs_completed, st.duplicate_completions, st.lost),
        (1, 0, 0),
        "{st:?}"
    );
    let second = 1 - first;
    assert_eq!(net.srvs[second].host.stats().jobs_resumed, 1);
    assert_eq!(net.srvs[second].host.stats().jobs_completed, 1);
}

#[test]
fn full_pes_reject_and_every_job_still_completes_once() {
    let mut net = Net::new(1);
    for _ in 0..2 {
        net.add_server(ServiceKind::CalcApp, |c| {
            c.calcapp_max_jobs = 1;
            c.calcapp_capacity = 2e6;
        });
    }
    net.run_for(Duration::from_secs(1));
    let config = CalcAppClientConfig {
        job_size: 500_000,
        job_interval: Duration::from_millis(50),
        max_jobs: Some(2),
        ..CalcAppClientConfig::default()
    };
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let k = net.add_client(net.client_config());
        let s = net.open(k, ServiceKind::CalcApp, calcapp(config.clone()));
        sessions.push((k, s));
    }
    net.run_for(Duration::from_secs(30));
    let mut rejects = 0;
    for (k, s) in &sessions {
        let st = net.app(*k, *s).calcapp().stats();
        assert_eq!(
            (
                st.jobs_started,
                st.jobs_completed,
                st.duplicate_completions,
                st.lost
            ),
            (2, 2, 0, 0),
            "client {k}: {st:?}"
        );
        rejects += st.rejects;
    }
    let refused: u64 = net.srvs.iter().map(|s| s.host.stats().jobs_rejected).sum();
    assert!(rejects >= 1 && rejects == refused, "{rejects} vs {refused}");
    assert!(net.srvs.iter().all(|s| s.host.running_jobs() <= 1));
}

#[test]
fn sessions_continue_when_a_registrar_crashes_and_pes_re_home() {
    let mut net = Net::new(2);
    for _ in 0..3 {
        net.add_server(ServiceKind::PingPong, |_| {});
    }
    net.run_for(Duration::from_secs(1));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let k = net.add_client(net.client_config());
        let s = net.open(k, ServiceKind::PingPong, pingpong(100));
        sessions.push((k, s));
    }
    net.run_for(Duration::from_secs(2));
    let pongs = |net: &Net| -> Vec<u64> {
        sessions
            .iter()
            .map(|(k, s)| net.app(*k, *s).pingpong().stats().pongs_received)
            .collect()
    };
    let before = pongs(&net);
    assert!(before.iter().all(|p| *p >= 15), "{before:?}");

    net.kill(Node::Reg(0));
    net.run_for(Duration::from_secs(5));

    // The sessions never noticed: no failover, replies still consecutive.
    let after = pongs(&net);
    for (i, (k, s)) in sessions.iter().enumerate() {
        assert!(after[i] >= before[i] + 40, "{after:?} vs {before:?}");
        let st = net.app(*k, *s).pingpong().stats();
        assert_eq!((st.gaps, st.duplicates), (0, 0), "{st:?}");
        assert_eq!(net.clis[*k].core.stats().failovers, 0);
    }
    // Every PE is registered with the surviving registrar.
    for s in &net.srvs {
        let pe = s.core.pool_element();
        assert!(pe.is_registered());
        assert!(
            net.regs[1]
                .handlespace()
                .pool_element(b"PingPongPool", pe.identifier())
                .is_some()
        );
    }
    // A PE failure is still handled, now through the surviving registrar.
    let (k, s) = sessions[0];
    let first = net.server_of(k, s).expect("up");
    net.kill(Node::Srv(first));
    net.run_for(Duration::from_secs(3));
    let second = net.server_of(k, s).expect("failed over");
    assert_ne!(first, second);
    let st = net.app(k, s).pingpong().stats();
    assert_eq!((st.gaps, st.duplicates), (0, 0), "{st:?}");
}

#[test]
fn a_takeover_keep_alive_on_an_incoming_association_re_homes_the_pe() {
    let mut net = Net::new(2);
    let j = net.add_server(ServiceKind::Echo, |_| {});
    net.run_for(Duration::from_secs(1));
    let home = net.srv_home(j).expect("registered");
    let other = 1 - home;
    // The home registrar hangs: the PE's association to it stays up, silent; the peer
    // takes the PE over and reaches it on a new association.
    net.hang(Node::Reg(home));
    net.run_for(Duration::from_secs(30));
    let srv = &net.srvs[j];
    assert_eq!(net.srv_home(j), Some(other));
    assert_eq!(
        srv.core.pool_element().home_registrar(),
        Some(reg_id(other))
    );
    assert!(
        srv.core.stats().registrar_associations >= 1,
        "{:?}",
        srv.core.stats()
    );
    assert!(srv.events.iter().any(|e| matches!(
        e,
        server::Event::Pe(rserpool::pe::Event::HomeChanged { registrar: Some(r) }) if *r == reg_id(other)
    )));
    // The registrar's association was a session for a moment only.
    assert_eq!(srv.core.sessions(), 0);
}

#[test]
fn a_hundred_pool_users_on_ten_pes_are_all_served() {
    let mut net = Net::new(2);
    for _ in 0..10 {
        net.add_server(ServiceKind::PingPong, |_| {});
    }
    net.run_for(Duration::from_secs(1));
    let mut sessions = Vec::new();
    for _ in 0..100 {
        let k = net.add_client(net.client_config());
        let s = net.open(k, ServiceKind::PingPong, pingpong(250));
        sessions.push((k, s));
    }
    net.run_for(Duration::from_secs(3));
    for (k, s) in &sessions {
        let st = net.app(*k, *s).pingpong().stats();
        assert!(st.pongs_received >= 10, "client {k}: {st:?}");
        assert_eq!((st.gaps, st.duplicates), (0, 0));
    }
    let per_pe: Vec<usize> = net.srvs.iter().map(|s| s.core.sessions()).collect();
    assert_eq!(per_pe.iter().sum::<usize>(), 100, "{per_pe:?}");
    assert!(
        per_pe.iter().all(|n| *n >= 1),
        "round robin spreads: {per_pe:?}"
    );
}

#[test]
fn application_mode_waits_for_the_application_and_send_fails_meanwhile() {
    let mut net = Net::new(1);
    for _ in 0..2 {
        net.add_server(ServiceKind::Echo, |_| {});
    }
    net.run_for(Duration::from_secs(1));
    let config = ClientConfig {
        failover: FailoverMode::Application,
        ..net.client_config()
    };
    let k = net.add_client(config);
    let s = net.open(k, ServiceKind::Echo, |s, _| {
        Svc::Echo(EchoClient::new(s, 16))
    });
    net.run_for(Duration::from_millis(100));
    let first = net.server_of(k, s).expect("connected");
    let now = net.now;
    net.clis[k].core.send(now, s, 0, b"hello").expect("up");
    net.run_for(Duration::from_millis(100));
    assert!(
        net.clis[k]
            .events
            .iter()
            .any(|e| matches!(e, client::Event::Data { bytes, .. } if bytes == b"hello"))
    );

    net.kill(Node::Srv(first));
    net.run_for(Duration::from_secs(2));
    // Lost, reported, and nothing more until the application acts.
    assert!(
        net.clis[k]
            .events
            .iter()
            .any(|e| matches!(e, client::Event::FailoverNecessary { .. }))
    );
    assert!(
        !net.clis[k]
            .events
            .iter()
            .any(|e| matches!(e, client::Event::FailoverComplete { .. }))
    );
    assert_eq!(net.clis[k].core.session_pe(s), None);
    let now = net.now;
    assert_eq!(
        net.clis[k].core.send(now, s, 0, b"x"),
        Err(SendError::NotConnected)
    );

    net.clis[k].core.failover(now, s);
    // Still failing over right after the call: sends are refused.
    assert_eq!(
        net.clis[k].core.send(now, s, 0, b"x"),
        Err(SendError::NotConnected)
    );
    net.run_for(Duration::from_secs(1));
    assert!(
        net.clis[k]
            .events
            .iter()
            .any(|e| matches!(e, client::Event::FailoverComplete { .. }))
    );
    let second = net.server_of(k, s).expect("failed over");
    assert_ne!(first, second);
    let now = net.now;
    net.clis[k]
        .core
        .send(now, s, 0, b"again")
        .expect("up again");
}

#[test]
fn a_session_fails_after_max_failover_attempts_without_any_pe() {
    let mut net = Net::new(1);
    let j = net.add_server(ServiceKind::PingPong, |_| {});
    net.run_for(Duration::from_secs(1));
    let config = ClientConfig {
        max_failover_attempts: 3,
        ..net.client_config()
    };
    let k = net.add_client(config);
    let s = net.open(k, ServiceKind::PingPong, pingpong(100));
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.server_of(k, s), Some(j));
    net.kill(Node::Srv(j));
    net.run_for(Duration::from_secs(20));
    let failed: Vec<&client::Event> = net.clis[k]
        .events
        .iter()
        .filter(|e| matches!(e, client::Event::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", net.clis[k].events);
    assert_eq!(net.clis[k].core.sessions(), 0);
    assert_eq!(net.clis[k].core.stats().failed_attempts, 3);
    let now = net.now;
    assert_eq!(
        net.clis[k].core.send(now, s, 0, b"x"),
        Err(SendError::UnknownSession)
    );
}

// ---- hostile input ----

fn lone_server(max_sessions: usize) -> (Server, ServiceHost) {
    let now = Timestamp::from_secs(1);
    let pe = PoolElementConfig::new(
        PoolHandle::from("PingPongPool"),
        PolicyInfo::round_robin(),
        TransportParameter::sctp(PE_USER_PORT, TransportUse::DATA_ONLY, vec![srv_addr(0)]),
    );
    let config = ServerConfig {
        max_sessions,
        max_message_len: 1024,
        max_queue: 64,
        ..ServerConfig::new(pe)
    };
    let srv = Server::new(config, Box::new(ChaCha8Rng::seed_from_u64(7)), now);
    let host = ServiceHost::new(ServiceConfig::new(ServiceKind::PingPong), now);
    (srv, host)
}

fn asap(m: &AsapMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).expect("fits");
    b.truncate(n);
    b
}

fn drain_server(srv: &mut Server, host: &mut ServiceHost, now: Timestamp) -> Vec<server::Event> {
    let mut seen = Vec::new();
    loop {
        let before = seen.len();
        while let Some(e) = srv.poll_event() {
            host.handle_event(now, &e);
            seen.push(e);
        }
        host.drive(now, srv);
        if seen.len() == before {
            return seen;
        }
    }
}

#[test]
fn hostile_session_input_is_counted_and_dropped() {
    let (mut srv, mut host) = lone_server(4);
    let now = Timestamp::from_secs(2);
    while srv.poll_command().is_some() {}
    srv.handle_incoming(now, AssocRef(1), 4000, &[cli_addr(0)]);
    let events = drain_server(&mut srv, &mut host, now);
    let Some(server::Event::SessionAdded { session, .. }) = events.first() else {
        panic!("{events:?}")
    };
    let session = *session;

    // Malformed ASAP (bad length field), oversized, garbage cookie, unknown association.
    srv.handle_message(now, AssocRef(1), PPID_ASAP, &[0x0c, 0, 0, 200, 1, 2]);
    assert_eq!(srv.stats().malformed, 1);
    srv.handle_message(now, AssocRef(1), 33, &vec![0; 5000]);
    assert_eq!(srv.stats().oversized, 1);
    srv.handle_message(now, AssocRef(99), 33, b"who");
    assert_eq!(srv.stats().unexpected, 1);
    let echo = asap(&AsapMessage::CookieEcho {
        cookie: b"garbage, not a cookie".to_vec(),
    });
    srv.handle_message(now, AssocRef(1), PPID_ASAP, &echo);
    let events = drain_server(&mut srv, &mut host, now);
    assert!(matches!(&events[..], [server::Event::CookieEcho { session: s, .. }] if *s == session));
    assert_eq!(host.stats().bad_cookies, 1);

    // Data, then a late COOKIE_ECHO: out of place.
    srv.handle_message(now, AssocRef(1), 33, b"not a ping");
    let events = drain_server(&mut srv, &mut host, now);
    assert_eq!(events.len(), 1);
    assert_eq!(host.stats().malformed, 1);
    let good = asap(&AsapMessage::CookieEcho {
        cookie: rserpool::services::wire::PingPongCookie { reply_no: 9 }
            .to_bytes()
            .to_vec(),
    });
    srv.handle_message(now, AssocRef(1), PPID_ASAP, &good);
    assert_eq!(srv.stats().unexpected, 2);
    assert!(srv.poll_event().is_none());

    // An ASAP message a session never carries.
    let reg = asap(&AsapMessage::HandleResolution {
        pool_handle: PoolHandle::from("x"),
        items: None,
    });
    srv.handle_message(now, AssocRef(1), PPID_ASAP, &reg);
    assert_eq!(srv.stats().unexpected, 3);
    assert_eq!(srv.sessions(), 1);

    // Nothing went out but what the service answered (nothing: no valid Ping).
    assert!(srv.poll_transmit().is_none());
}

#[test]
fn associations_beyond_max_sessions_are_aborted_and_counted() {
    let (mut srv, mut host) = lone_server(2);
    let now = Timestamp::from_secs(2);
    while srv.poll_command().is_some() {}
    for a in 1..=3 {
        srv.handle_incoming(now, AssocRef(a), 4000, &[cli_addr(0)]);
    }
    drain_server(&mut srv, &mut host, now);
    assert_eq!(srv.sessions(), 2);
    assert_eq!(srv.stats().sessions_refused, 1);
    assert_eq!(
        srv.poll_command(),
        Some(Command::Abort { assoc: AssocRef(3) })
    );
    // A slot frees up when a session goes.
    srv.handle_association_lost(now, AssocRef(1));
    srv.handle_incoming(now, AssocRef(4), 4000, &[cli_addr(0)]);
    assert_eq!(srv.sessions(), 2);
    assert_eq!(srv.stats().sessions_refused, 1);
}

#[test]
fn a_client_drops_hostile_input_on_its_sessions() {
    let mut net = Net::new(1);
    net.add_server(ServiceKind::PingPong, |_| {});
    net.run_for(Duration::from_secs(1));
    let k = net.add_client(net.client_config());
    let s = net.open(k, ServiceKind::PingPong, pingpong(100));
    net.run_for(Duration::from_millis(500));
    let assoc = net.clis[k].core.session_association(s).expect("up");
    let now = net.now;
    let c = &mut net.clis[k].core;
    c.handle_message(now, assoc, PPID_ASAP, &[0x0b, 0, 0, 3]);
    assert_eq!(c.stats().malformed, 1);
    c.handle_message(
        now,
        assoc,
        PPID_ASAP,
        &asap(&AsapMessage::CookieEcho { cookie: vec![1] }),
    );
    assert_eq!(c.stats().unexpected, 1);
    c.handle_message(now, assoc, 33, &vec![0; 70_000]);
    assert_eq!(c.stats().oversized, 1);
    c.handle_message(now, AssocRef(12345), 33, b"stray");
    assert_eq!(c.stats().unexpected, 2);
    // A Pong for a Ping never sent is not counted as a reply.
    let bogus = rserpool::services::wire::PingPongMessage::Pong {
        message_no: 1 << 40,
        reply_no: 1 << 50,
        data: Vec::new(),
    };
    let mut b = vec![0; bogus.encoded_len()];
    bogus.encode(&mut b).expect("fits");
    c.handle_message(now, assoc, 33, &b);
    net.run_for(Duration::from_secs(1));
    let st = net.app(k, s).pingpong().stats();
    assert_eq!(st.malformed, 1, "{st:?}");
    assert_eq!((st.gaps, st.duplicates), (0, 0));
}

#[derive(Debug, Clone)]
enum Input {
    Incoming(u8),
    Lost(u8),
    Message(u8, u32, Vec<u8>),
    Asap(u8, u8, Vec<u8>),
    Timeout(u16),
    Send(u8, Vec<u8>),
    Close(u8),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u8..8).prop_map(Input::Incoming),
        (0u8..8).prop_map(Input::Lost),
        (
            0u8..8,
            prop_oneof![Just(0u32), Just(11), Just(33), Just(34), any::<u32>()],
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(a, p, b)| Input::Message(a, p, b)),
        (0u8..8, 0u8..16, prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(a, t, b)| Input::Asap(a, t, b)),
        any::<u16>().prop_map(Input::Timeout),
        (0u8..8, prop::collection::vec(any::<u8>(), 0..32)).prop_map(|(s, b)| Input::Send(s, b)),
        (0u8..8).prop_map(Input::Close),
    ]
}

/// An ASAP message of type `t` with an arbitrary body and a length field that fits it.
fn asap_like(t: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![t, 0, 0, 0];
    b.extend_from_slice(body);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_session_traffic_never_panics_and_stays_bounded(inputs in prop::collection::vec(input(), 1..120)) {
        for kind in [ServiceKind::PingPong, ServiceKind::CalcApp, ServiceKind::Echo, ServiceKind::CharGen] {
            let (mut srv, _) = lone_server(4);
            let mut host = ServiceHost::new(ServiceConfig::new(kind), Timestamp::from_secs(1));
            let mut now = Timestamp::from_secs(2);
            for i in &inputs {
                match i {
                    Input::Incoming(a) => srv.handle_incoming(now, AssocRef(u64::from(*a)), 1, &[cli_addr(0)]),
                    Input::Lost(a) => srv.handle_association_lost(now, AssocRef(u64::from(*a))),
                    Input::Message(a, p, b) => srv.handle_message(now, AssocRef(u64::from(*a)), *p, b),
                    Input::Asap(a, t, b) => srv.handle_message(now, AssocRef(u64::from(*a)), PPID_ASAP, &asap_like(*t, b)),
                    Input::Timeout(ms) => {
                        now += Duration::from_millis(u64::from(*ms));
                        srv.handle_timeout(now);
                        host.handle_timeout(now);
                        prop_assert!(host.poll_timeout().is_none_or(|t| t > now), "service still due");
                        prop_assert!(srv.poll_timeout().is_none_or(|t| t > now), "server still due");
                    }
                    Input::Send(s, b) => {
                        let _ = srv.send(now, SessionId(u64::from(*s)), 0, b);
                    }
                    Input::Close(s) => srv.close(now, SessionId(u64::from(*s))),
                }
                drain_server(&mut srv, &mut host, now);
                prop_assert!(srv.sessions() <= 4);
                prop_assert_eq!(host.sessions(), srv.sessions());
                while srv.poll_transmit().is_some() {}
                while srv.poll_command().is_some() {}
            }
        }

        // The client side with the same inputs on made-up associations.
        let mut c = Client::new(ClientConfig::default(), Box::new(ChaCha8Rng::seed_from_u64(3)), Timestamp::from_secs(1));
        let now = Timestamp::from_secs(2);
        let s = c.connect(now, PoolHandle::from("PingPongPool")).expect("session");
        for i in &inputs {
            match i {
                Input::Message(a, p, b) => c.handle_message(now, AssocRef(u64::from(*a)), *p, b),
                Input::Asap(a, t, b) => c.handle_message(now, AssocRef(u64::from(*a)), PPID_ASAP, &asap_like(*t, b)),
                Input::Lost(a) => c.handle_association_lost(now, AssocRef(u64::from(*a))),
                Input::Send(_, b) => prop_assert_eq!(c.send(now, s, 0, b), Err(SendError::NotConnected)),
                _ => {}
            }
        }
        prop_assert_eq!(c.stats().data_received, 0);
    }
}

#[test]
fn registrar_associations_on_the_user_port_are_bounded() {
    let (mut srv, mut host) = lone_server(4);
    let now = Timestamp::from_secs(2);
    while srv.poll_command().is_some() {}
    let ka = asap(&AsapMessage::EndpointKeepAlive {
        home: false,
        server_id: RegistrarId(77),
        pool_handle: PoolHandle::from("PingPongPool"),
        identifier: None,
    });
    let max = srv.config().max_registrar_associations as u64;
    for a in 1..=max + 3 {
        srv.handle_incoming(now, AssocRef(a), 3863, &[reg_addr(0)]);
        srv.handle_message(now, AssocRef(a), PPID_ASAP, &ka);
    }
    drain_server(&mut srv, &mut host, now);
    assert_eq!(srv.sessions(), 0);
    assert_eq!(srv.stats().registrar_associations, max);
    assert_eq!(srv.stats().registrar_associations_refused, 3);
    // Each kept one got its ENDPOINT_KEEP_ALIVE_ACK from the PE core (RFC 5352 §3.4).
    let acks = std::iter::from_fn(|| srv.poll_transmit())
        .filter(|t| {
            matches!(
                AsapMessage::decode(&t.bytes).map(|d| d.message),
                Ok(AsapMessage::EndpointKeepAliveAck { .. })
            )
        })
        .count() as u64;
    assert_eq!(acks, max);
    let aborts = std::iter::from_fn(|| srv.poll_command())
        .filter(|c| matches!(c, Command::Abort { .. }))
        .count();
    assert_eq!(aborts, 3);
}

#[derive(Debug, Clone)]
enum ClientInput {
    /// Answer the oldest outstanding Connect: up (true) or failed (false).
    Answer(bool),
    /// An association (by index among those handed out) is lost.
    Lost(u8),
    /// A message on an association handed out (or a made-up one).
    Message(u8, u32, Vec<u8>),
    Cookie(u8, Vec<u8>),
    Timeout(u16),
    Failover(u8),
    Close(u8),
    Send(u8),
    Connect,
}

fn client_input() -> impl Strategy<Value = ClientInput> {
    prop_oneof![
        3 => any::<bool>().prop_map(ClientInput::Answer),
        1 => (0u8..12).prop_map(ClientInput::Lost),
        1 => (0u8..12, prop_oneof![Just(0u32), Just(11), Just(33)], prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(a, p, b)| ClientInput::Message(a, p, b)),
        1 => (0u8..12, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(a, c)| ClientInput::Cookie(a, c)),
        2 => (0u16..3000).prop_map(ClientInput::Timeout),
        1 => (0u8..6).prop_map(ClientInput::Failover),
        1 => (0u8..6).prop_map(ClientInput::Close),
        1 => (0u8..6).prop_map(ClientInput::Send),
        1 => Just(ClientInput::Connect),
    ]
}

/// A HANDLE_RESOLUTION_RESPONSE with two PEs of the pool.
fn resolution_answer() -> Vec<u8> {
    let pe = |j: usize| rserpool::wire::PoolElement {
        identifier: rserpool::wire::PeIdentifier(j as u32 + 1),
        home_registrar: reg_id(0),
        registration_life: 90_000,
        user_transport: TransportParameter::sctp(
            PE_USER_PORT,
            TransportUse::DATA_ONLY,
            vec![srv_addr(j)],
        ),
        policy: PolicyInfo::round_robin(),
        asap_transport: None,
    };
    asap(&AsapMessage::HandleResolutionResponse {
        pool_handle: PoolHandle::from("PingPongPool"),
        policy: Some(PolicyInfo::round_robin()),
        pool_elements: vec![pe(0), pe(1)],
        error: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_client_under_random_driving_keeps_its_invariants(inputs in prop::collection::vec(client_input(), 1..150)) {
        let config = ClientConfig {
            pu: PoolUserConfig {
                static_registrars: vec![asap_endpoint(0)],
                ..PoolUserConfig::default()
            },
            max_sessions: 4,
            max_failover_attempts: 3,
            ..ClientConfig::default()
        };
        let mut c = Client::new(config, Box::new(ChaCha8Rng::seed_from_u64(5)), Timestamp::from_secs(1));
        let mut now = Timestamp::from_secs(2);
        let mut pending: Vec<(Target, TransportParameter)> = Vec::new();
        let mut assocs: Vec<AssocRef> = Vec::new();
        let mut registrar: Option<AssocRef> = None;
        let mut sessions: Vec<SessionId> = Vec::new();
        let mut next = 1u64;
        for i in &inputs {
            match i {
                ClientInput::Connect => {
                    match c.connect(now, PoolHandle::from("PingPongPool")) {
                        Ok(s) => sessions.push(s),
                        Err(e) => prop_assert_eq!(e, rserpool::session::ConnectError::TooManySessions),
                    }
                }
                ClientInput::Answer(up) => {
                    if !pending.is_empty() {
                        let (target, endpoint) = pending.remove(0);
                        if *up {
                            let a = AssocRef(next);
                            next += 1;
                            assocs.push(a);
                            if target == Target::Registrar {
                                registrar = Some(a);
                            }
                            c.handle_connected(now, target, a, &endpoint);
                        } else {
                            c.handle_connect_failed(now, target, &endpoint);
                        }
                    }
                }
                ClientInput::Lost(x) => {
                    if let Some(a) = assocs.get(*x as usize) {
                        c.handle_association_lost(now, *a);
                    }
                }
                ClientInput::Message(x, p, b) => {
                    let a = assocs.get(*x as usize).copied().unwrap_or(AssocRef(999));
                    c.handle_message(now, a, *p, b);
                }
                ClientInput::Cookie(x, cookie) => {
                    let a = assocs.get(*x as usize).copied().unwrap_or(AssocRef(999));
                    c.handle_message(now, a, PPID_ASAP, &asap(&AsapMessage::Cookie { cookie: cookie.clone() }));
                }
                ClientInput::Timeout(ms) => {
                    now += Duration::from_millis(u64::from(*ms));
                    c.handle_timeout(now);
                    prop_assert!(c.poll_timeout().is_none_or(|t| t > now), "still due");
                }
                ClientInput::Failover(x) => {
                    if let Some(s) = sessions.get(*x as usize) {
                        c.failover(now, *s);
                    }
                }
                ClientInput::Close(x) => {
                    if let Some(s) = sessions.get(*x as usize) {
                        c.close(now, *s);
                    }
                }
                ClientInput::Send(x) => {
                    if let Some(s) = sessions.get(*x as usize) {
                        let r = c.send(now, *s, 0, b"x");
                        prop_assert_eq!(r.is_ok(), c.session_association(*s).is_some());
                    }
                }
            }
            // Answer resolutions so sessions get PEs.
            while let Some(t) = c.poll_transmit() {
                if Some(t.assoc) == registrar
                    && let Ok(d) = AsapMessage::decode(&t.bytes)
                    && matches!(d.message, AsapMessage::HandleResolution { .. })
                {
                    c.handle_message(now, t.assoc, PPID_ASAP, &resolution_answer());
                }
            }
            while let Some(cmd) = c.poll_command() {
                match cmd {
                    Command::Connect { target, endpoint } => {
                        if let Target::Session(s) = target {
                            prop_assert!(sessions.contains(&s));
                            prop_assert_eq!(endpoint.port, PE_USER_PORT);
                        }
                        if pending.len() < 16 {
                            pending.push((target, endpoint));
                        }
                    }
                    Command::Close { assoc } | Command::Abort { assoc } => {
                        if Some(assoc) == registrar {
                            registrar = None;
                        }
                    }
                    other => prop_assert!(false, "unknown command {other:?}"),
                }
            }
            while let Some(e) = c.poll_event() {
                if let client::Event::Failed { session, .. } | client::Event::Closed { session } = e {
                    prop_assert_eq!(c.session_pe(session), None);
                }
            }
            prop_assert!(c.sessions() <= 4);
        }
    }
}

#[test]
fn a_late_answer_to_an_abandoned_connect_is_aborted() {
    let config = ClientConfig {
        pu: PoolUserConfig {
            static_registrars: vec![asap_endpoint(0)],
            ..PoolUserConfig::default()
        },
        connect_timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(500),
        ..ClientConfig::default()
    };
    let mut now = Timestamp::from_secs(1);
    let mut c = Client::new(config, Box::new(ChaCha8Rng::seed_from_u64(9)), now);
    let s = c
        .connect(now, PoolHandle::from("PingPongPool"))
        .expect("session");
    let Some(Command::Connect { target, endpoint }) = c.poll_command() else {
        panic!("registrar connect")
    };
    c.handle_connected(now, target, AssocRef(1), &endpoint);
    while c.poll_transmit().is_some() {}
    c.handle_message(now, AssocRef(1), PPID_ASAP, &resolution_answer());
    let Some(Command::Connect {
        target: Target::Session(_),
        endpoint: first,
    }) = c.poll_command()
    else {
        panic!("session connect")
    };
    // No answer in time: the attempt is given up, another PE is tried after the pause.
    now += Duration::from_secs(2);
    c.handle_timeout(now);
    assert_eq!(c.stats().failed_attempts, 1);
    now += Duration::from_millis(500);
    c.handle_timeout(now);
    while c.poll_transmit().is_some() {}
    if c.poll_command().is_none() {
        // The cache went stale: the PU asked the registrar again.
        c.handle_message(now, AssocRef(1), PPID_ASAP, &resolution_answer());
    }
    let second = std::iter::from_fn(|| c.poll_command())
        .find_map(|cmd| match cmd {
            Command::Connect {
                target: Target::Session(x),
                endpoint,
            } if x == s => Some(endpoint),
            _ => None,
        })
        .expect("a second connect");
    assert_ne!(first, second, "the PE that did not answer is avoided");
    // The first attempt's association comes up late: refused.
    c.handle_connected(now, Target::Session(s), AssocRef(2), &first);
    assert_eq!(
        c.poll_command(),
        Some(Command::Abort { assoc: AssocRef(2) })
    );
    assert_eq!(c.session_pe(s), None);
    c.handle_connected(now, Target::Session(s), AssocRef(3), &second);
    assert!(matches!(
        std::iter::from_fn(|| c.poll_event()).last(),
        Some(client::Event::Connected { .. })
    ));
    assert_eq!(c.session_association(s), Some(AssocRef(3)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// PEs die and come back at random; every CalcApp job still completes exactly once.
    #[test]
    fn calcapp_jobs_complete_exactly_once_under_random_pe_kills_and_restarts(
        events in prop::collection::vec((200u64..1500, 0usize..3, any::<bool>()), 1..8),
    ) {
        let tune = |c: &mut ServiceConfig| {
            c.calcapp_capacity = 1e6;
            c.calcapp_max_jobs = 6;
            c.calcapp_cookie_interval = Duration::from_millis(150);
        };
        let mut net = Net::new(1);
        for _ in 0..3 {
            net.add_server(ServiceKind::CalcApp, tune);
        }
        net.run_for(Duration::from_secs(1));
        let config = CalcAppClientConfig {
            job_interval: Duration::from_millis(100),
            job_size: 800_000,
            max_jobs: Some(4),
            ..CalcAppClientConfig::default()
        };
        let mut sessions = Vec::new();
        for _ in 0..5 {
            let k = net.add_client(net.client_config());
            let s = net.open(k, ServiceKind::CalcApp, calcapp(config.clone()));
            sessions.push((k, s));
        }
        for (after_ms, j, restart) in events {
            net.run_for(Duration::from_millis(after_ms));
            let alive = net.srvs.iter().filter(|s| s.alive).count();
            if net.srvs[j].alive && alive > 1 {
                net.kill(Node::Srv(j));
            } else if !net.srvs[j].alive && restart {
                net.restart_server(j, ServiceKind::CalcApp, tune);
            }
        }
        // Everyone back, then time to finish.
        for j in 0..3 {
            if !net.srvs[j].alive {
                net.restart_server(j, ServiceKind::CalcApp, tune);
            }
        }
        net.run_for(Duration::from_secs(60));
        for (k, s) in &sessions {
            let st = net.app(*k, *s).calcapp().stats();
            prop_assert_eq!(
                (st.jobs_started, st.jobs_completed, st.duplicate_completions, st.lost),
                (4, 4, 0, 0),
                "client {}: {:?}", k, st
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// PEs die and come back at random; PingPong reply numbers never skip or repeat.
    #[test]
    fn pingpong_reply_numbers_stay_consecutive_under_random_pe_kills(
        events in prop::collection::vec((100u64..1200, 0usize..3, any::<bool>()), 1..10),
    ) {
        let mut net = Net::new(1);
        for _ in 0..3 {
            net.add_server(ServiceKind::PingPong, |_| {});
        }
        net.run_for(Duration::from_secs(1));
        let mut sessions = Vec::new();
        for _ in 0..4 {
            let k = net.add_client(net.client_config());
            let s = net.open(k, ServiceKind::PingPong, pingpong(50));
            sessions.push((k, s));
        }
        for (after_ms, j, restart) in events {
            net.run_for(Duration::from_millis(after_ms));
            let alive = net.srvs.iter().filter(|s| s.alive).count();
            if net.srvs[j].alive && alive > 1 {
                net.kill(Node::Srv(j));
            } else if !net.srvs[j].alive && restart {
                net.restart_server(j, ServiceKind::PingPong, |_| {});
            }
        }
        net.run_for(Duration::from_secs(3));
        for (k, s) in &sessions {
            let st = net.app(*k, *s).pingpong().stats();
            prop_assert!(st.pongs_received > 20, "client {}: {:?}", k, st);
            prop_assert_eq!((st.gaps, st.duplicates), (0, 0), "client {}: {:?}", k, st);
            prop_assert_eq!(st.consecutive, st.pongs_received - 1);
            prop_assert!(net.clis[*k].core.session_pe(*s).is_some());
        }
    }
}

#[test]
fn a_business_card_from_the_pe_reaches_the_client() {
    let mut net = Net::new(1);
    let j = net.add_server(ServiceKind::Echo, |_| {});
    let other = net.add_server(ServiceKind::Echo, |_| {});
    net.run_for(Duration::from_secs(1));
    let k = net.add_client(net.client_config());
    let s = net.open(k, ServiceKind::Echo, |s, _| {
        Svc::Echo(EchoClient::new(s, 4))
    });
    net.run_for(Duration::from_millis(100));
    let at = net.server_of(k, s).expect("connected");
    let peer = if at == j { other } else { j };
    let pe_session = net.srvs[at]
        .events
        .iter()
        .find_map(|e| match e {
            server::Event::SessionAdded { session, .. } => Some(*session),
            _ => None,
        })
        .expect("a session");
    let candidate = net.regs[0]
        .handlespace()
        .pool_element(b"EchoPool", net.srvs[peer].core.pool_element().identifier())
        .cloned()
        .expect("registered");
    let now = net.now;
    net.srvs[at]
        .core
        .send_business_card(now, pe_session, vec![candidate.clone()])
        .expect("up");
    net.run_for(Duration::from_millis(50));
    let card = net.clis[k].events.iter().find_map(|e| match e {
        client::Event::BusinessCard {
            pool_handle,
            pool_elements,
            ..
        } => Some((pool_handle.clone(), pool_elements.clone())),
        _ => None,
    });
    assert_eq!(
        card,
        Some((PoolHandle::from("EchoPool"), vec![candidate.identifier]))
    );
}
