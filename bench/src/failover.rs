//! Failover: the service gap a pool user sees when its pool element crashes (issue 8).
//!
//! One registrar, two PingPong PEs and one PU run on the deterministic network simulator
//! of `sctp-stack` (virtual clock, 0.5 ms one-way latency): the sans-IO cores
//! (`registrar::Registrar`, `session::Server` with the PingPong service, `session::Client`
//! with the PingPong client) driven by a small in-bench driver, as `rsp` drives them on the
//! dataplane runtime. The PU pings every 10 ms; at 5 s the PE serving its session crashes
//! (every packet from and to it is dropped: no ABORT, no deregistration). The gap is the
//! time from the last Pong before the crash to the first Pong after it: failure detection
//! by SCTP (retransmission timeouts up to Association.Max.Retrans), ENDPOINT_UNREACHABLE,
//! the new resolution, the new association and the cookie echo.
//!
//! Three timer sets:
//! - default: RFC 9260 §16 (RTO.Min 1 s, RTO.Max 60 s, HB.interval 30 s,
//!   Association.Max.Retrans 10) and RSPLIB's registrar keep-alives (5 s);
//! - rsp: the defaults of the `rsp` pool tools, RSPLIB's session tuning (RTO.Min 200 ms,
//!   RTO.Initial 250 ms, RTO.Max 500 ms, HB.interval 1 s, 5 retransmissions);
//! - tuned: RTO.Min 10 ms, RTO.Initial 20 ms, RTO.Max 40 ms, HB.interval 50 ms,
//!   Association.Max.Retrans 2, delayed SACK 5 ms, registrar keep-alives every 100 ms.
//!
//! Goal: the tuned gap stays within 100 ms. Every run is deterministic (seeded); the table
//! reports the longest gap over the seeds (1 with `--quick`, 5 otherwise).

// Most configurations here are #[non_exhaustive]: built from their defaults.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::pe::PoolElementConfig;
use rserpool::pu::PoolUserConfig;
use rserpool::registrar::{AsapOrigin, Destination, Registrar, RegistrarConfig};
use rserpool::services::ServiceOutput;
use rserpool::services::client::{PingPongClient, PingPongConfig};
use rserpool::services::server::{ServiceConfig, ServiceHost, ServiceKind};
use rserpool::session::{
    AssocRef, Client, ClientConfig, Command, Server, ServerConfig, SessionId, Target, client,
};
use rserpool::wire::{
    PPID_ASAP, PolicyInfo, PoolHandle, RegistrarId, TransportParameter, TransportUse,
};
use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::wire::Ppid;
use sctp_stack::{
    AssociationConfig, AssociationId, ConnectRequest, Endpoint, EndpointConfig, Event, SendOptions,
};

use crate::Opts;
use crate::report::{Better, Row};

const PR: usize = 0;
const PE1: usize = 1;
const PE2: usize = 2;
const PU: usize = 3;
const ASAP_PORT: u16 = 3863;
const PE_PORT: u16 = 7000;
const POOL: &str = "PingPongPool";
const PING_INTERVAL: Duration = Duration::from_millis(10);
const CRASH_AT: Duration = Duration::from_secs(5);

fn addr(node: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1 + node as u8))
}

/// A timer set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timers {
    /// RFC 9260 §16 and RSPLIB's registrar defaults.
    Default,
    /// The defaults of the `rsp` pool tools (RSPLIB's session tuning).
    Rsp,
    /// Tuned for the quickest failover.
    Tuned,
}

impl Timers {
    fn name(self) -> &'static str {
        match self {
            Timers::Default => "default",
            Timers::Rsp => "rsp",
            Timers::Tuned => "tuned",
        }
    }

    fn association(self) -> AssociationConfig {
        let mut c = AssociationConfig::default();
        c.nodelay = true;
        if self == Timers::Rsp {
            c.rto_min = Duration::from_millis(200);
            c.rto_initial = Duration::from_millis(250);
            c.rto_max = Duration::from_millis(500);
            c.heartbeat_interval = Some(Duration::from_secs(1));
            c.association_max_retrans = 5;
            c.path_max_retrans = 5;
            c.max_init_retransmits = 5;
        }
        if self == Timers::Tuned {
            c.rto_min = Duration::from_millis(10);
            c.rto_initial = Duration::from_millis(20);
            c.rto_max = Duration::from_millis(40);
            c.heartbeat_interval = Some(Duration::from_millis(50));
            c.association_max_retrans = 2;
            c.path_max_retrans = 2;
            c.max_init_retransmits = 2;
            c.delayed_sack_timeout = Duration::from_millis(5);
        }
        c
    }

    fn keep_alive(self) -> Duration {
        if self == Timers::Tuned {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        }
    }
}

/// What runs on a node.
enum Role {
    Registrar(Registrar),
    Pe {
        core: Server,
        host: ServiceHost,
    },
    Pu {
        core: Client,
        ping: Option<PingPongClient>,
        pongs: Vec<Timestamp>,
        failover_started: Option<Timestamp>,
    },
}

/// One association of a node.
struct Conn {
    aref: AssocRef,
    up: bool,
    target: Option<(Target, TransportParameter)>,
}

/// A node's driver: associations <-> AssocRef, messages, timers.
struct Host {
    node: usize,
    role: Role,
    conns: HashMap<AssociationId, Conn>,
    by_ref: HashMap<AssocRef, AssociationId>,
    next_ref: u64,
    /// Messages for associations not up yet.
    pending: HashMap<AssociationId, Vec<(u32, u16, Vec<u8>)>>,
}

impl Host {
    fn new(node: usize, role: Role) -> Self {
        Host {
            node,
            role,
            conns: HashMap::new(),
            by_ref: HashMap::new(),
            next_ref: 1,
            pending: HashMap::new(),
        }
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
            },
        );
        aref
    }

    fn deadline(&self) -> Option<Timestamp> {
        match &self.role {
            Role::Registrar(r) => r.poll_timeout(),
            Role::Pe { core, host } => [core.poll_timeout(), host.poll_timeout()]
                .into_iter()
                .flatten()
                .min(),
            Role::Pu { core, ping, .. } => [
                core.poll_timeout(),
                ping.as_ref().and_then(PingPongClient::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min(),
        }
    }

    fn timeout(&mut self, net: &mut Network, now: Timestamp) {
        match &mut self.role {
            Role::Registrar(r) => r.handle_timeout(now),
            Role::Pe { core, host } => {
                core.handle_timeout(now);
                host.handle_timeout(now);
                host.drive(now, core);
            }
            Role::Pu { core, ping, .. } => {
                core.handle_timeout(now);
                if let Some(p) = ping {
                    let mut out = ServiceOutput::new();
                    p.handle_timeout(now, &mut out);
                    out.apply_to_client(now, core, p.session());
                }
            }
        }
        self.flush(net, now);
    }

    fn send(
        &mut self,
        net: &mut Network,
        id: AssociationId,
        ppid: u32,
        stream: u16,
        bytes: Vec<u8>,
    ) {
        if !self.conns.get(&id).is_some_and(|c| c.up) {
            let q = self.pending.entry(id).or_default();
            if q.len() < 1024 {
                q.push((ppid, stream, bytes));
            }
            return;
        }
        if let Some(mut a) = net.node(self.node).endpoint.association(id) {
            let _ = a.send(stream, Ppid(ppid), &bytes[..], SendOptions::default());
        }
    }

    fn connect(
        &mut self,
        net: &mut Network,
        now: Timestamp,
        target: Target,
        endpoint: TransportParameter,
    ) {
        let Some(&to) = endpoint.addresses.first() else {
            self.connect_failed(now, target, &endpoint);
            return;
        };
        let req = ConnectRequest::new(to, endpoint.port);
        let req = match (&self.role, target) {
            (Role::Pe { .. }, Target::Registrar) => req.with_local_port(PE_PORT),
            _ => req,
        };
        match net.node(self.node).endpoint.connect(now, req) {
            Ok(id) => {
                self.add_conn(id, Some((target, endpoint)));
            }
            Err(_) => self.connect_failed(now, target, &endpoint),
        }
    }

    fn connect_failed(&mut self, now: Timestamp, target: Target, endpoint: &TransportParameter) {
        match &mut self.role {
            Role::Pe { core, .. } => core.handle_connect_failed(now, target, endpoint),
            Role::Pu { core, .. } => core.handle_connect_failed(now, target, endpoint),
            Role::Registrar(_) => {}
        }
    }

    /// Drains the cores' outputs until nothing is left.
    fn flush(&mut self, net: &mut Network, now: Timestamp) {
        for _ in 0..1000 {
            let mut commands = Vec::new();
            let mut transmits = Vec::new();
            let mut progress = false;
            match &mut self.role {
                Role::Registrar(r) => {
                    while let Some(t) = r.poll_transmit() {
                        if let Destination::Association(a) = t.to {
                            transmits.push((a, t.ppid, 0, t.bytes));
                        }
                    }
                    while r.poll_event().is_some() {}
                }
                Role::Pe { core, host } => {
                    while let Some(c) = core.poll_command() {
                        commands.push(c);
                    }
                    while let Some(t) = core.poll_transmit() {
                        transmits.push((t.assoc, t.ppid, t.stream, t.bytes));
                    }
                    while let Some(e) = core.poll_event() {
                        progress = true;
                        host.handle_event(now, &e);
                        host.drive(now, core);
                    }
                }
                Role::Pu {
                    core,
                    ping,
                    pongs,
                    failover_started,
                } => {
                    while let Some(c) = core.poll_command() {
                        commands.push(c);
                    }
                    while let Some(t) = core.poll_transmit() {
                        transmits.push((t.assoc, t.ppid, t.stream, t.bytes));
                    }
                    while let Some(e) = core.poll_event() {
                        progress = true;
                        if matches!(e, client::Event::FailoverNecessary { .. })
                            && failover_started.is_none()
                        {
                            *failover_started = Some(now);
                        }
                        if let Some(p) = ping {
                            let before = p.stats().pongs_received;
                            let mut out = ServiceOutput::new();
                            p.handle_event(now, &e, &mut out);
                            if p.stats().pongs_received > before {
                                pongs.push(now);
                            }
                            out.apply_to_client(now, core, p.session());
                        }
                    }
                }
            }
            progress |= !commands.is_empty() || !transmits.is_empty();
            for c in commands {
                match c {
                    Command::Connect { target, endpoint } => {
                        self.connect(net, now, target, endpoint)
                    }
                    Command::Close { assoc } | Command::Abort { assoc } => {
                        if let Some(id) = self.by_ref.get(&assoc).copied()
                            && let Some(mut a) = net.node(self.node).endpoint.association(id)
                        {
                            a.abort(b"");
                        }
                    }
                    _ => {}
                }
            }
            for (assoc, ppid, stream, bytes) in transmits {
                if let Some(id) = self.by_ref.get(&assoc).copied() {
                    self.send(net, id, ppid, stream, bytes);
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Feeds the node's association events to the cores.
    fn events(&mut self, net: &mut Network, now: Timestamp) {
        let mut events = net.node(self.node).take_events();
        while let Some(e) = net.node(self.node).endpoint.poll_event() {
            events.push(e);
        }
        for (id, e) in events {
            match e {
                Event::Connected => self.connected(net, now, id),
                Event::DataReadable => {
                    let Some(aref) = self.conns.get(&id).map(|c| c.aref) else {
                        continue;
                    };
                    let mut msgs = Vec::new();
                    if let Some(mut a) = net.node(self.node).endpoint.association(id) {
                        while let Some(m) = a.recv() {
                            msgs.push(m);
                        }
                    }
                    for m in msgs {
                        self.message(now, id, aref, m.ppid.get(), &m.data, net);
                        self.flush(net, now);
                    }
                }
                Event::Closed => {
                    if let Some(c) = self.conns.remove(&id) {
                        self.by_ref.remove(&c.aref);
                        self.pending.remove(&id);
                        if c.up {
                            match &mut self.role {
                                Role::Registrar(r) => r.handle_association_lost(now, c.aref),
                                Role::Pe { core, .. } => core.handle_association_lost(now, c.aref),
                                Role::Pu { core, .. } => core.handle_association_lost(now, c.aref),
                            }
                        } else if let Some((t, ep)) = c.target {
                            self.connect_failed(now, t, &ep);
                        }
                        self.flush(net, now);
                    }
                }
                _ => {}
            }
        }
    }

    fn connected(&mut self, net: &mut Network, now: Timestamp, id: AssociationId) {
        if !self.conns.contains_key(&id) {
            self.add_conn(id, None);
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.up = true;
        let (aref, target) = (c.aref, c.target.clone());
        for (ppid, stream, bytes) in self.pending.remove(&id).unwrap_or_default() {
            self.send(net, id, ppid, stream, bytes);
        }
        let status = net
            .node(self.node)
            .endpoint
            .association(id)
            .and_then(|a| a.status());
        match (&mut self.role, target) {
            (Role::Pe { core, .. }, Some((t, ep))) => core.handle_connected(now, t, aref, &ep),
            (Role::Pu { core, .. }, Some((t, ep))) => core.handle_connected(now, t, aref, &ep),
            (Role::Pe { core, .. }, None) => {
                let (port, addrs) = status
                    .map(|s| (s.peer_port, s.peer_addresses))
                    .unwrap_or_default();
                core.handle_incoming(now, aref, port, &addrs);
            }
            _ => {}
        }
        self.flush(net, now);
    }

    fn message(
        &mut self,
        now: Timestamp,
        id: AssociationId,
        aref: AssocRef,
        ppid: u32,
        data: &[u8],
        net: &mut Network,
    ) {
        match &mut self.role {
            Role::Registrar(r) => {
                if ppid == PPID_ASAP {
                    let status = net
                        .node(self.node)
                        .endpoint
                        .association(id)
                        .and_then(|a| a.status());
                    let (port, addrs) = status
                        .map(|s| (s.peer_port, s.peer_addresses))
                        .unwrap_or_default();
                    r.handle_asap(
                        now,
                        AsapOrigin {
                            assoc: aref,
                            port,
                            addresses: &addrs,
                        },
                        data,
                    );
                }
            }
            Role::Pe { core, .. } => core.handle_message(now, aref, ppid, data),
            Role::Pu { core, .. } => core.handle_message(now, aref, ppid, data),
        }
    }
}

/// One run: the gap in milliseconds and the detection time (crash to FailoverNecessary).
fn run_once(timers: Timers, seed: u64) -> Result<(f64, f64), String> {
    let mut net = Network::new(seed);
    net.set_default_link(LinkConfig::with_latency(Duration::from_micros(500)));
    for n in 0..4 {
        let mut c =
            EndpointConfig::with_seed([(seed as u8).wrapping_mul(7).wrapping_add(n as u8 + 1); 32]);
        c.association = timers.association();
        let ep = Endpoint::new(c).map_err(|e| format!("endpoint: {e:?}"))?;
        net.add_node(ep, &[addr(n)]);
    }
    net.node(PR)
        .endpoint
        .listen(ASAP_PORT)
        .map_err(|e| format!("listen: {e:?}"))?;
    for pe in [PE1, PE2] {
        net.node(pe)
            .endpoint
            .listen(PE_PORT)
            .map_err(|e| format!("listen: {e:?}"))?;
    }
    let now = net.now();
    let rng = |k: u64| Box::new(ChaCha8Rng::seed_from_u64(seed * 16 + k));
    let pr_endpoint = TransportParameter::sctp(ASAP_PORT, TransportUse::DATA_ONLY, vec![addr(PR)]);
    let mut prc = RegistrarConfig::default();
    prc.server_id = RegistrarId(1);
    prc.mentor_hunt_timeout = Duration::ZERO;
    prc.announce_interval = None;
    prc.keep_alive_interval = timers.keep_alive();
    prc.keep_alive_timeout = timers.keep_alive();
    let mut hosts = vec![Host::new(
        PR,
        Role::Registrar(Registrar::new(prc, rng(0), now)),
    )];
    for pe in [PE1, PE2] {
        let mut c = PoolElementConfig::new(
            PoolHandle::from(POOL),
            PolicyInfo::round_robin(),
            TransportParameter::sctp(PE_PORT, TransportUse::DATA_ONLY, vec![addr(pe)]),
        );
        c.static_registrars = vec![pr_endpoint.clone()];
        c.use_announces = false;
        let core = Server::new(ServerConfig::new(c), rng(pe as u64), now);
        let host = ServiceHost::new(ServiceConfig::new(ServiceKind::PingPong), now);
        hosts.push(Host::new(pe, Role::Pe { core, host }));
    }
    let mut cc = ClientConfig::default();
    cc.pu = PoolUserConfig {
        static_registrars: vec![pr_endpoint],
        use_announces: false,
        ..PoolUserConfig::default()
    };
    cc.retry_interval = Duration::from_millis(10);
    cc.max_failover_attempts = 50;
    hosts.push(Host::new(
        PU,
        Role::Pu {
            core: Client::new(cc, rng(9), now),
            ping: None,
            pongs: Vec::new(),
            failover_started: None,
        },
    ));
    for h in &mut hosts {
        h.timeout(&mut net, now);
    }
    let end = Timestamp::ZERO.saturating_add(CRASH_AT + Duration::from_secs(900));
    let crash = Timestamp::ZERO.saturating_add(CRASH_AT);
    let session_at = Timestamp::ZERO.saturating_add(Duration::from_millis(500));
    let mut session: Option<SessionId> = None;
    let mut crashed: Option<IpAddr> = None;
    loop {
        let now = net.now();
        for h in &mut hosts {
            h.events(&mut net, now);
            if h.deadline().is_some_and(|t| t <= now) {
                h.timeout(&mut net, now);
            }
        }
        if session.is_none() && now >= session_at {
            let pu = &mut hosts[PU];
            if let Role::Pu { core, ping, .. } = &mut pu.role {
                let s = core
                    .connect(now, PoolHandle::from(POOL))
                    .map_err(|e| e.to_string())?;
                let mut pc = PingPongConfig::default();
                pc.interval = PING_INTERVAL;
                *ping = Some(PingPongClient::new(s, pc, now));
                session = Some(s);
            }
            pu.flush(&mut net, now);
        }
        if crashed.is_none() && now >= crash {
            // The PE serving the session crashes.
            let victim = [PE1, PE2]
                .into_iter()
                .find(|&i| matches!(&hosts[i].role, Role::Pe { core, .. } if core.sessions() > 0))
                .ok_or("no PE serves the session at the crash")?;
            net.set_address_up(addr(victim), false);
            crashed = Some(addr(victim));
        }
        if let Role::Pu {
            pongs,
            failover_started: Some(f),
            ..
        } = &hosts[PU].role
            && let Some(after) = pongs.iter().find(|t| **t > crash)
        {
            let before = pongs
                .iter()
                .rev()
                .find(|t| **t <= crash)
                .ok_or("no Pong before the crash")?;
            let gap = after.saturating_duration_since(*before).as_secs_f64() * 1e3;
            let detect = f.saturating_duration_since(crash).as_secs_f64() * 1e3;
            return Ok((gap, detect));
        }
        let limit = hosts
            .iter()
            .filter_map(Host::deadline)
            .chain([crash, session_at].into_iter().filter(|t| *t > now))
            .min()
            .unwrap_or(end)
            .min(end);
        if now >= end {
            return Err(format!(
                "{}: no Pong after the crash within 900 s",
                timers.name()
            ));
        }
        net.step(limit.max(now));
    }
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let seeds: &[u64] = if opts.quick { &[1] } else { &[1, 2, 3, 4, 5] };
    let mut rows = Vec::new();
    for timers in [Timers::Default, Timers::Rsp, Timers::Tuned] {
        let mut gap: f64 = 0.0;
        let mut detect: f64 = 0.0;
        for &s in seeds {
            let (g, d) = run_once(timers, s)?;
            gap = gap.max(g);
            detect = detect.max(d);
        }
        let goal = (timers == Timers::Tuned).then_some((Better::Lower, 100.0));
        rows.push(Row::absolute(
            format!("failover.gap_{}_timers", timers.name()),
            "ms",
            gap,
            goal,
        ));
        rows.push(Row::absolute(
            format!("failover.detect_{}_timers", timers.name()),
            "ms",
            detect,
            None,
        ));
    }
    Ok(rows)
}
