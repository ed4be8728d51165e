//! Pool element and pool user cores against real registrars on an in-memory network with
//! virtual time (STYLE.md §9): N registrars in an ENRP mesh, M PEs, K PUs, associations
//! set up on request, crashes with or without the association loss being noticed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::pe::{self, PoolElement, PoolElementConfig};
use rserpool::pu::{self, PoolUser, PoolUserConfig, Resolve};
use rserpool::registrar::{
    AsapOrigin, AssocRef, Destination, EnrpOrigin, Event as RegEvent, Registrar, RegistrarConfig,
    RemovalReason,
};
use rserpool::wire::{
    AsapMessage, CauseCode, PeIdentifier, PolicyInfo, PoolHandle, RegistrarId, TransportParameter,
    TransportUse,
};

const ENRP_ASSOC_BASE: u64 = 1 << 40;
const PE_ASAP_PORT: u16 = 5000;
const PU_PORT: u16 = 40_000;

fn reg_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

fn pe_addr(j: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, j as u8 + 1))
}

fn pu_addr(k: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 2, 0, k as u8 + 1))
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Pe(usize),
    Pu(usize),
}

#[derive(Debug, Clone, Copy)]
struct Assoc {
    side: Side,
    reg: usize,
    up: bool,
}

struct PeNode {
    core: PoolElement,
    /// A mute PE neither receives nor sends (a hung process).
    alive: bool,
    events: Vec<pe::Event>,
}

struct PuNode {
    core: PoolUser,
    events: Vec<pu::Event>,
}

struct Net {
    now: Timestamp,
    regs: Vec<Registrar>,
    crashed: Vec<bool>,
    pes: Vec<PeNode>,
    pus: Vec<PuNode>,
    assocs: BTreeMap<u64, Assoc>,
    next_assoc: u64,
    reg_events: Vec<(usize, RegEvent)>,
    /// Whether SERVER_ANNOUNCEs reach PEs and PUs.
    announces: bool,
}

impl Net {
    /// `n` registrars in a full static mesh, serving after start-up.
    fn new(n: usize) -> Self {
        let mut net = Net {
            now: Timestamp::from_secs(1),
            regs: Vec::new(),
            crashed: Vec::new(),
            pes: Vec::new(),
            pus: Vec::new(),
            assocs: BTreeMap::new(),
            next_assoc: 1,
            reg_events: Vec::new(),
            announces: false,
        };
        for i in 0..n {
            let config = RegistrarConfig {
                server_id: reg_id(i),
                asap_transports: vec![asap_endpoint(i)],
                enrp_transport: enrp_endpoint(i),
                static_peers: (0..n).filter(|j| *j != i).map(enrp_endpoint).collect(),
                ..RegistrarConfig::default()
            };
            let rng = Box::new(ChaCha8Rng::seed_from_u64(i as u64 + 1));
            net.regs.push(Registrar::new(config, rng, net.now));
            net.crashed.push(false);
        }
        net.run_for(Duration::from_secs(6));
        assert!(net.regs.iter().all(|r| r.is_serving()));
        net
    }

    fn pe_config(&self, j: usize, handle: &str, policy: PolicyInfo) -> PoolElementConfig {
        let mut c = PoolElementConfig::new(
            PoolHandle::from(handle),
            policy,
            TransportParameter::sctp(7000, TransportUse::DATA_ONLY, vec![pe_addr(j)]),
        );
        c.static_registrars = (0..self.regs.len()).map(asap_endpoint).collect();
        c
    }

    fn add_pe_with(&mut self, config: PoolElementConfig) -> usize {
        let j = self.pes.len();
        let rng = Box::new(ChaCha8Rng::seed_from_u64(100 + j as u64));
        self.pes.push(PeNode {
            core: PoolElement::new(config, rng, self.now),
            alive: true,
            events: Vec::new(),
        });
        j
    }

    /// Adds a PE (every registrar in its static list) and lets it register.
    fn add_pe(&mut self, handle: &str, policy: PolicyInfo) -> usize {
        let j = self.pes.len();
        let c = self.pe_config(j, handle, policy);
        let j = self.add_pe_with(c);
        self.flush();
        j
    }

    fn add_pu_with(&mut self, config: PoolUserConfig) -> usize {
        let k = self.pus.len();
        let rng = Box::new(ChaCha8Rng::seed_from_u64(200 + k as u64));
        self.pus.push(PuNode {
            core: PoolUser::new(config, rng, self.now),
            events: Vec::new(),
        });
        k
    }

    fn pu_config(&self) -> PoolUserConfig {
        PoolUserConfig {
            static_registrars: (0..self.regs.len()).map(asap_endpoint).collect(),
            ..PoolUserConfig::default()
        }
    }

    fn reg_of_endpoint(&self, t: &TransportParameter) -> Option<usize> {
        (0..self.regs.len()).find(|i| t.port == 3863 && t.addresses.contains(&reg_addr(*i)))
    }

    fn open_assoc(&mut self, side: Side, reg: usize) -> u64 {
        let id = self.next_assoc;
        self.next_assoc += 1;
        self.assocs.insert(
            id,
            Assoc {
                side,
                reg,
                up: true,
            },
        );
        id
    }

    /// Registrar `i` dies. With `noticed`, its associations go down at once (SCTP ABORT
    /// or a fast heartbeat failure); otherwise the peers only find out by silence.
    fn crash(&mut self, i: usize, noticed: bool) {
        self.crashed[i] = true;
        while self.regs[i].poll_transmit().is_some() {}
        if !noticed {
            return;
        }
        let now = self.now;
        let ids: Vec<u64> = self
            .assocs
            .iter()
            .filter(|(_, a)| a.reg == i && a.up)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let a = self.assocs.get_mut(&id).expect("listed");
            a.up = false;
            match a.side {
                Side::Pe(j) => {
                    if self.pes[j].alive {
                        self.pes[j].core.handle_association_lost(now, AssocRef(id));
                    }
                }
                Side::Pu(k) => self.pus[k].core.handle_association_lost(now, AssocRef(id)),
            }
        }
        self.flush();
    }

    /// Delivers everything queued until the network is quiet.
    fn flush(&mut self) {
        for _round in 0..10_000 {
            let mut busy = false;
            for i in 0..self.regs.len() {
                if self.crashed[i] {
                    while self.regs[i].poll_transmit().is_some() {}
                    continue;
                }
                while let Some(e) = self.regs[i].poll_event() {
                    self.reg_events.push((i, e));
                }
                while let Some(t) = self.regs[i].poll_transmit() {
                    busy = true;
                    self.deliver_from_registrar(i, t);
                }
            }
            for j in 0..self.pes.len() {
                if !self.pes[j].alive {
                    continue;
                }
                while let Some(c) = self.pes[j].core.poll_command() {
                    busy = true;
                    self.command(Side::Pe(j), c);
                }
                while let Some(t) = self.pes[j].core.poll_transmit() {
                    busy = true;
                    self.deliver_to_registrar(t.assoc.0, &t.bytes);
                }
                while let Some(e) = self.pes[j].core.poll_event() {
                    self.pes[j].events.push(e);
                }
            }
            for k in 0..self.pus.len() {
                while let Some(c) = self.pus[k].core.poll_command() {
                    busy = true;
                    self.command(Side::Pu(k), c);
                }
                while let Some(t) = self.pus[k].core.poll_transmit() {
                    busy = true;
                    self.deliver_to_registrar(t.assoc.0, &t.bytes);
                }
                while let Some(e) = self.pus[k].core.poll_event() {
                    self.pus[k].events.push(e);
                }
            }
            if !busy {
                return;
            }
        }
        panic!("message storm");
    }

    fn command(&mut self, side: Side, c: pe::Command) {
        let now = self.now;
        match c {
            pe::Command::Connect { endpoint } => {
                let reg = self
                    .reg_of_endpoint(&endpoint)
                    .filter(|i| !self.crashed[*i]);
                match reg {
                    Some(i) => {
                        let id = self.open_assoc(side, i);
                        match side {
                            Side::Pe(j) => {
                                self.pes[j]
                                    .core
                                    .handle_connected(now, AssocRef(id), &endpoint)
                            }
                            Side::Pu(k) => {
                                self.pus[k]
                                    .core
                                    .handle_connected(now, AssocRef(id), &endpoint)
                            }
                        }
                    }
                    None => match side {
                        Side::Pe(j) => self.pes[j].core.handle_connect_failed(now, &endpoint),
                        Side::Pu(k) => self.pus[k].core.handle_connect_failed(now, &endpoint),
                    },
                }
            }
            pe::Command::Close { assoc } => {
                if let Some(a) = self.assocs.get_mut(&assoc.0)
                    && a.up
                {
                    a.up = false;
                    let reg = a.reg;
                    if !self.crashed[reg] {
                        self.regs[reg].handle_association_lost(now, assoc);
                    }
                }
            }
            other => panic!("unknown command {other:?}"),
        }
    }

    fn deliver_to_registrar(&mut self, assoc: u64, bytes: &[u8]) {
        let Some(a) = self.assocs.get(&assoc).copied() else {
            // Not an association of this network (made up by a garbage test): dropped.
            return;
        };
        if !a.up || self.crashed[a.reg] {
            return;
        }
        let (addr, port) = match a.side {
            Side::Pe(j) => (pe_addr(j), PE_ASAP_PORT),
            Side::Pu(k) => (pu_addr(k), PU_PORT),
        };
        let now = self.now;
        self.regs[a.reg].handle_asap(
            now,
            AsapOrigin {
                assoc: AssocRef(assoc),
                port,
                addresses: &[addr],
            },
            bytes,
        );
    }

    fn deliver_from_registrar(&mut self, src: usize, t: rserpool::registrar::Transmit) {
        let now = self.now;
        match t.to {
            Destination::Association(AssocRef(id)) => {
                let Some(a) = self.assocs.get(&id).copied() else {
                    return;
                };
                if !a.up {
                    return;
                }
                match a.side {
                    Side::Pe(j) if self.pes[j].alive => {
                        self.pes[j].core.handle_asap(now, AssocRef(id), &t.bytes)
                    }
                    Side::Pe(_) => {}
                    Side::Pu(k) => self.pus[k].core.handle_asap(now, AssocRef(id), &t.bytes),
                }
            }
            Destination::PoolElement(tp) => {
                // A registrar reaching a PE it has no association with (after a takeover):
                // it connects to the PE's ASAP endpoint.
                let Some(j) = (0..self.pes.len()).find(|j| tp.addresses.contains(&pe_addr(*j)))
                else {
                    return;
                };
                if !self.pes[j].alive {
                    return;
                }
                let existing = self
                    .assocs
                    .iter()
                    .find(|(_, a)| a.up && a.reg == src && a.side == Side::Pe(j))
                    .map(|(id, _)| *id);
                let id = existing.unwrap_or_else(|| self.open_assoc(Side::Pe(j), src));
                self.pes[j].core.handle_asap(now, AssocRef(id), &t.bytes);
            }
            Destination::Peer { id, endpoint } => {
                let dst = if id != RegistrarId::UNDEFINED {
                    self.regs.iter().position(|r| r.id() == id)
                } else {
                    (0..self.regs.len()).find(|i| endpoint.addresses.contains(&reg_addr(*i)))
                };
                if let Some(dst) = dst
                    && !self.crashed[dst]
                {
                    self.regs[dst].handle_enrp(
                        now,
                        EnrpOrigin::Association(AssocRef(ENRP_ASSOC_BASE + src as u64)),
                        &t.bytes,
                    );
                }
            }
            Destination::AsapAnnounce => {
                if !self.announces {
                    return;
                }
                let from = SocketAddr::new(reg_addr(src), 3863);
                for pe in self.pes.iter_mut().filter(|p| p.alive) {
                    pe.core.handle_server_announce(now, from, &t.bytes);
                }
                for pu in &mut self.pus {
                    pu.core.handle_server_announce(now, from, &t.bytes);
                }
            }
            _ => {}
        }
    }

    /// Advances virtual time by `d`, firing every node's timers in order.
    fn run_for(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            self.flush();
            let regs = (0..self.regs.len())
                .filter(|i| !self.crashed[*i])
                .filter_map(|i| self.regs[i].poll_timeout());
            let pes = self
                .pes
                .iter()
                .filter(|p| p.alive)
                .filter_map(|p| p.core.poll_timeout());
            let pus = self.pus.iter().filter_map(|p| p.core.poll_timeout());
            let Some(next) = regs.chain(pes).chain(pus).min() else {
                break;
            };
            if next > target {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            for i in 0..self.regs.len() {
                if !self.crashed[i] && self.regs[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.regs[i].handle_timeout(now);
                }
            }
            for (j, p) in self.pes.iter_mut().enumerate() {
                if p.alive && p.core.poll_timeout().is_some_and(|t| t <= now) {
                    p.core.handle_timeout(now);
                    assert!(
                        p.core.poll_timeout().is_none_or(|t| t > now),
                        "PE {j} still due after handle_timeout"
                    );
                }
            }
            for (k, p) in self.pus.iter_mut().enumerate() {
                if p.core.poll_timeout().is_some_and(|t| t <= now) {
                    p.core.handle_timeout(now);
                    assert!(
                        p.core.poll_timeout().is_none_or(|t| t > now),
                        "PU {k} still due after handle_timeout"
                    );
                }
            }
        }
        self.now = target;
        self.flush();
    }

    /// The registrar PE `j`'s home association leads to.
    fn pe_home(&self, j: usize) -> Option<usize> {
        let a = self.pes[j].core.home_association()?;
        self.assocs.get(&a.0).map(|a| a.reg)
    }

    /// The PE as registrar `i` knows it.
    fn pe_at(&self, i: usize, j: usize) -> Option<rserpool::wire::PoolElement> {
        let pe = &self.pes[j].core;
        self.regs[i]
            .handlespace()
            .pool_element(pe.config().pool_handle.as_bytes(), pe.identifier())
            .cloned()
    }

    fn pu_resolve(&mut self, k: usize, handle: &str) -> Resolve {
        let now = self.now;
        let r = self.pus[k]
            .core
            .resolve(now, &PoolHandle::from(handle))
            .expect("resolution accepted");
        self.flush();
        r
    }

    /// Resolves and waits (virtual time) for the answer, then selects.
    fn pu_select(&mut self, k: usize, handle: &str) -> Option<rserpool::wire::PoolElement> {
        let mut seen = self.pus[k].events.len();
        for _ in 0..100 {
            match self.pu_resolve(k, handle) {
                Resolve::Selected(pe) => return Some(pe),
                Resolve::Pending => {
                    let new: Vec<pu::Event> = self.pus[k].events[seen..].to_vec();
                    seen = self.pus[k].events.len();
                    let mine = |p: &PoolHandle| p.as_bytes() == handle.as_bytes();
                    if new.iter().any(|e| {
                        matches!(e, pu::Event::ResolutionFailed { pool_handle, .. } if mine(pool_handle))
                    }) {
                        return None;
                    }
                    if !new.iter().any(|e| {
                        matches!(e, pu::Event::Resolved { pool_handle, .. } if mine(pool_handle))
                    }) {
                        self.run_for(Duration::from_millis(100));
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        None
    }

    fn resolutions_answered(&self, i: usize) -> u64 {
        self.regs[i].stats().resolutions
    }

    fn registered_events(&self, j: usize) -> usize {
        self.pes[j]
            .events
            .iter()
            .filter(|e| matches!(e, pe::Event::Registered { .. }))
            .count()
    }
}

// ---- pool element ----

#[test]
fn pe_registers_with_a_registrar_and_its_pool_appears_in_the_handlespace() {
    let mut net = Net::new(1);
    let j = net.add_pe("EchoPool", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let pe = &net.pes[j];
    assert!(pe.core.is_registered());
    assert_ne!(pe.core.identifier(), PeIdentifier(0), "random non-zero id");
    assert_eq!(
        pe.events,
        vec![pe::Event::Registered {
            registrar: None,
            update: false
        }]
    );
    let stored = net.pe_at(0, j).expect("PE in the registrar's handlespace");
    assert_eq!(stored.home_registrar, reg_id(0));
    assert_eq!(stored.registration_life, 90_000, "3 x 30 s re-registration");
    assert_eq!(stored.user_transport.addresses, vec![pe_addr(j)]);
    assert_eq!(stored.policy, PolicyInfo::round_robin());
    assert_eq!(net.regs[0].handlespace().pool_len(b"EchoPool"), 1);
    assert_eq!(net.regs[0].owned_count(), 1);
}

#[test]
fn reregistration_keeps_the_pe_alive_past_its_registration_life() {
    let mut net = Net::new(1);
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.reregistration_interval = Duration::from_secs(2);
    c.registration_life = Some(Duration::from_secs(5));
    let renewing = net.add_pe_with(c);
    let mut c = net.pe_config(1, "P", PolicyInfo::round_robin());
    c.reregistration_interval = Duration::from_secs(600);
    c.registration_life = Some(Duration::from_secs(5));
    let lazy = net.add_pe_with(c);
    net.run_for(Duration::from_millis(10));
    assert!(net.pe_at(0, renewing).is_some() && net.pe_at(0, lazy).is_some());

    net.run_for(Duration::from_secs(20));
    assert!(net.pe_at(0, renewing).is_some(), "re-registered PE stays");
    assert!(net.pe_at(0, lazy).is_none(), "registration life ran out");
    assert!(net.registered_events(renewing) >= 10);
    assert!(
        net.pes[renewing]
            .events
            .iter()
            .any(|e| matches!(e, pe::Event::Registered { update: true, .. }))
    );
    assert!(net.reg_events.iter().any(|(_, e)| matches!(
        e,
        RegEvent::Removed { identifier, reason: RemovalReason::Expired, .. }
            if *identifier == net.pes[lazy].core.identifier()
    )));
}

#[test]
fn keep_alives_are_answered_and_the_pe_stays_registered() {
    let mut net = Net::new(1);
    let j = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_secs(31));
    // Keep-alives every 5 s from the registrar, each acknowledged.
    assert!(net.pes[j].core.stats().keep_alive_acks >= 5);
    assert_eq!(net.regs[0].stats().keep_alive_timeouts, 0);
    assert!(net.pe_at(0, j).is_some());
    // The keep-alive told the PE who its home is.
    assert_eq!(net.pes[j].core.home_registrar(), Some(reg_id(0)));
}

#[test]
fn a_pe_that_stops_answering_keep_alives_is_removed() {
    let mut net = Net::new(1);
    let quiet = net.add_pe("P", PolicyInfo::round_robin());
    let other = net.add_pe("P", PolicyInfo::round_robin());
    net.pes[quiet].alive = false;
    net.run_for(Duration::from_secs(11));
    assert!(net.pe_at(0, quiet).is_none());
    assert!(net.pe_at(0, other).is_some());
    assert!(net.reg_events.iter().any(|(_, e)| matches!(
        e,
        RegEvent::Removed { identifier, reason: RemovalReason::KeepAliveTimeout, .. }
            if *identifier == net.pes[quiet].core.identifier()
    )));
}

#[test]
fn pe_reregisters_at_another_registrar_when_its_home_crashes() {
    let mut net = Net::new(2);
    let j = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let home = net.pe_home(j).expect("registered");
    let other = 1 - home;
    assert_eq!(
        net.pe_at(other, j).map(|p| p.home_registrar),
        Some(reg_id(home))
    );

    net.crash(home, true);
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.pe_home(j), Some(other));
    assert!(net.pes[j].core.is_registered());
    assert_eq!(
        net.pe_at(other, j).map(|p| p.home_registrar),
        Some(reg_id(other))
    );
    assert!(
        net.pes[j]
            .events
            .iter()
            .any(|e| matches!(e, pe::Event::HomeChanged { .. }))
    );
    // And it stays there (keep-alives answered, re-registrations accepted).
    net.run_for(Duration::from_secs(70));
    assert_eq!(
        net.pe_at(other, j).map(|p| p.home_registrar),
        Some(reg_id(other))
    );
    assert_eq!(net.pes[j].core.home_registrar(), Some(reg_id(other)));
}

#[test]
fn pe_registers_at_the_next_static_registrar_when_the_first_is_down() {
    let mut net = Net::new(2);
    net.crash(0, true);
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.static_registrars = vec![asap_endpoint(0), asap_endpoint(1)];
    let j = net.add_pe_with(c);
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.pe_home(j), Some(1));
    assert!(net.pe_at(1, j).is_some());
}

#[test]
fn pe_is_rehomed_by_the_h_bit_after_a_peer_registrar_takes_over() {
    let mut net = Net::new(2);
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.static_registrars = vec![asap_endpoint(0)];
    let j = net.add_pe_with(c);
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.pe_home(j), Some(0));
    let regs_before = net.pes[j].core.stats().registrations_sent;

    // Registrar 0 dies silently: the PE does not notice, registrar 1 takes over.
    net.crash(0, false);
    net.run_for(Duration::from_secs(20));
    assert!(net.reg_events.iter().any(|(i, e)| *i == 1
        && matches!(e, RegEvent::TakeoverCompleted { target, .. } if *target == reg_id(0))));
    assert_eq!(net.pe_home(j), Some(1), "PE follows the H bit");
    assert_eq!(net.pes[j].core.home_registrar(), Some(reg_id(1)));
    assert!(net.pes[j].events.contains(&pe::Event::HomeChanged {
        registrar: Some(reg_id(1))
    }));
    assert_eq!(net.pe_at(1, j).map(|p| p.home_registrar), Some(reg_id(1)));
    assert_eq!(net.pes[j].core.stats().registrar_failures, 0);

    // Its next re-registrations go to the new home, over the new association.
    net.run_for(Duration::from_secs(40));
    assert!(net.pes[j].core.stats().registrations_sent > regs_before);
    assert_eq!(net.pe_home(j), Some(1));
    assert_eq!(net.pe_at(1, j).map(|p| p.home_registrar), Some(reg_id(1)));
    assert_eq!(net.regs[1].owned_count(), 1);
}

#[test]
fn deregistration_removes_the_pe_and_is_confirmed() {
    let mut net = Net::new(2);
    let j = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    assert!(net.pe_at(0, j).is_some() && net.pe_at(1, j).is_some());
    let now = net.now;
    net.pes[j].core.deregister(now);
    net.flush();
    assert_eq!(
        net.pes[j].events.last(),
        Some(&pe::Event::Deregistered {
            confirmed: true,
            cause: None
        })
    );
    assert!(net.pe_at(0, j).is_none() && net.pe_at(1, j).is_none());
    assert!(!net.pes[j].core.is_registered());
    assert_eq!(
        net.pes[j].core.home_association(),
        None,
        "association closed"
    );
    // Nothing more happens.
    net.run_for(Duration::from_secs(60));
    assert!(net.pe_at(0, j).is_none());
    assert_eq!(net.pes[j].core.poll_timeout(), None);
}

#[test]
fn a_load_change_reregisters_with_the_new_load() {
    let mut net = Net::new(1);
    let j = net.add_pe("LU", PolicyInfo::least_used(100));
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.pe_at(0, j).map(|p| p.policy.load), Some(100));
    let now = net.now;
    net.pes[j].core.set_load(now, 0x8000_0000);
    net.flush();
    assert_eq!(net.pe_at(0, j).map(|p| p.policy.load), Some(0x8000_0000));
    assert!(net.pes[j].events.contains(&pe::Event::Registered {
        registrar: None,
        update: true
    }));
}

#[test]
fn a_rejected_registration_is_reported_with_its_cause() {
    let mut net = Net::new(1);
    net.add_pe("P", PolicyInfo::round_robin());
    let j = net.add_pe("P", PolicyInfo::random());
    net.run_for(Duration::from_millis(10));
    assert!(!net.pes[j].core.is_registered());
    assert!(net.pes[j].events.contains(&pe::Event::RegistrationFailed {
        cause: Some(CauseCode::INCONSISTENT_POOLING_POLICY)
    }));
    assert!(net.pe_at(0, j).is_none());
}

#[test]
fn pe_finds_its_registrar_through_server_announces() {
    let mut net = Net::new(1);
    net.announces = true;
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.static_registrars.clear();
    let j = net.add_pe_with(c);
    net.run_for(Duration::from_millis(500));
    assert!(!net.pes[j].core.is_registered(), "no announce yet");
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.pes[j].core.known_registrars(), 1);
    assert!(net.pes[j].core.is_registered());
    assert!(net.pe_at(0, j).is_some());
}

#[test]
fn pe_fails_over_when_its_registrar_stops_answering_registrations() {
    let mut net = Net::new(2);
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.reregistration_interval = Duration::from_secs(3);
    let j = net.add_pe_with(c);
    net.run_for(Duration::from_millis(10));
    let home = net.pe_home(j).expect("registered");
    let other = 1 - home;
    // The home hangs without its associations going down.
    net.crash(home, false);
    net.run_for(Duration::from_secs(9));
    // The re-registration at most 3 s later was not answered within 5 s.
    assert!(
        net.pes[j]
            .events
            .contains(&pe::Event::RegistrationFailed { cause: None })
    );
    assert_eq!(net.pe_home(j), Some(other));
    assert!(net.pes[j].core.is_registered());
    assert_eq!(
        net.pe_at(other, j).map(|p| p.home_registrar),
        Some(reg_id(other))
    );
    assert_eq!(net.pes[j].core.stats().registrar_failures, 1);
}

#[test]
fn keep_alives_for_another_pe_or_pool_are_not_acknowledged() {
    let mut net = Net::new(1);
    let j = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let assoc = net.pes[j].core.home_association().expect("up");
    let own = net.pes[j].core.identifier();
    let ka = |pool: &str, id: PeIdentifier| {
        encode(&AsapMessage::EndpointKeepAlive {
            home: false,
            server_id: reg_id(0),
            pool_handle: PoolHandle::from(pool),
            identifier: Some(id),
        })
    };
    let now = net.now;
    let pe = &mut net.pes[j].core;
    pe.handle_asap(now, assoc, &ka("P", PeIdentifier(own.0 ^ 1)));
    pe.handle_asap(now, assoc, &ka("Q", own));
    assert_eq!(pe.poll_transmit(), None);
    assert_eq!(pe.stats().unexpected, 2);
    pe.handle_asap(now, assoc, &ka("P", own));
    let t = pe.poll_transmit().expect("acknowledged");
    assert_eq!(t.assoc, assoc);
    assert_eq!(
        AsapMessage::decode(&t.bytes).expect("valid").message,
        AsapMessage::EndpointKeepAliveAck {
            pool_handle: PoolHandle::from("P"),
            identifier: own
        }
    );
}

#[test]
fn announced_registrars_are_forgotten_after_the_announce_timeout() {
    let mut net = Net::new(1);
    net.announces = true;
    let mut c = net.pe_config(0, "P", PolicyInfo::round_robin());
    c.static_registrars.clear();
    let j = net.add_pe_with(c);
    net.run_for(Duration::from_secs(2));
    assert!(net.pes[j].core.is_registered());
    net.announces = false;
    net.run_for(Duration::from_secs(28));
    assert_eq!(net.pes[j].core.known_registrars(), 1);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.pes[j].core.known_registrars(), 0);
    // The established home is kept.
    assert!(net.pes[j].core.is_registered());
    assert!(net.pe_at(0, j).is_some());
}

#[test]
fn the_registrar_table_is_bounded() {
    let mut c = PoolElementConfig::new(
        PoolHandle::from("P"),
        PolicyInfo::round_robin(),
        TransportParameter::sctp(7000, TransportUse::DATA_ONLY, vec![pe_addr(0)]),
    );
    c.max_registrars = 4;
    let now = Timestamp::from_secs(1);
    let mut pe = PoolElement::new(c, Box::new(ChaCha8Rng::seed_from_u64(9)), now);
    assert_eq!(pe.poll_command(), None, "nobody to connect to");
    for i in 0..20 {
        let announce = encode(&AsapMessage::ServerAnnounce {
            server_id: reg_id(i),
            transports: vec![asap_endpoint(i)],
        });
        pe.handle_server_announce(now, SocketAddr::new(reg_addr(i), 3863), &announce);
    }
    assert_eq!(pe.known_registrars(), 4);
    // The hunt resumed with the first announce.
    pe.handle_timeout(now);
    assert!(matches!(
        pe.poll_command(),
        Some(pe::Command::Connect { .. })
    ));
}

// ---- pool user ----

#[test]
fn pu_resolves_a_pool_and_serves_from_its_cache_until_the_stale_time() {
    let mut net = Net::new(1);
    let j = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let mut c = net.pu_config();
    c.stale_time = Duration::from_secs(1);
    let k = net.add_pu_with(c);

    assert_eq!(net.pu_resolve(k, "P"), Resolve::Pending);
    assert_eq!(
        net.pus[k].events,
        vec![pu::Event::Resolved {
            pool_handle: PoolHandle::from("P"),
            pool_elements: 1
        }]
    );
    assert_eq!(net.resolutions_answered(0), 1);
    let Resolve::Selected(pe) = net.pu_resolve(k, "P") else {
        panic!("cached")
    };
    assert_eq!(pe.identifier, net.pes[j].core.identifier());

    // Fresh: no second request.
    net.run_for(Duration::from_millis(900));
    assert!(matches!(net.pu_resolve(k, "P"), Resolve::Selected(_)));
    assert_eq!(net.resolutions_answered(0), 1);
    // Stale: asked again.
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.pu_resolve(k, "P"), Resolve::Pending);
    assert_eq!(net.resolutions_answered(0), 2);
    assert!(matches!(net.pu_resolve(k, "P"), Resolve::Selected(_)));
}

#[test]
fn pu_selects_from_the_cache_by_the_pool_policy() {
    let mut net = Net::new(1);
    let pes: Vec<usize> = (0..3)
        .map(|_| net.add_pe("RR", PolicyInfo::round_robin()))
        .collect();
    net.run_for(Duration::from_millis(10));
    let mut c = net.pu_config();
    c.stale_time = Duration::from_secs(10);
    let k = net.add_pu_with(c);
    let first = net.pu_select(k, "RR").expect("resolved");
    let mut picks = vec![first.identifier];
    for _ in 0..5 {
        picks.push(net.pu_select(k, "RR").expect("cached").identifier);
    }
    // Round robin over the three PEs: every window of three holds all of them.
    for w in picks.windows(3) {
        let mut w = w.to_vec();
        w.sort();
        w.dedup();
        assert_eq!(w.len(), 3, "round robin: {picks:?}");
    }
    let mut ids: Vec<PeIdentifier> = pes.iter().map(|j| net.pes[*j].core.identifier()).collect();
    ids.sort();
    let mut seen = picks.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ids);
    assert_eq!(net.resolutions_answered(0), 1);
}

#[test]
fn unreachable_reports_from_several_pus_remove_the_pe_after_max_bad_pe_reports() {
    let mut net = Net::new(1);
    let bad = net.add_pe("P", PolicyInfo::round_robin());
    let good = net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let bad_id = net.pes[bad].core.identifier();
    let pus: Vec<usize> = (0..3)
        .map(|_| {
            let mut c = net.pu_config();
            c.stale_time = Duration::from_secs(60);
            net.add_pu_with(c)
        })
        .collect();
    for (n, &k) in pus.iter().enumerate() {
        net.pu_select(k, "P").expect("resolved");
        assert_eq!(net.pus[k].core.cached(), 2);
        let now = net.now;
        net.pus[k]
            .core
            .report_failure(now, &PoolHandle::from("P"), bad_id);
        net.flush();
        // The PU forgets the PE at once and never selects it again.
        assert_eq!(net.pus[k].core.cached(), 1);
        for _ in 0..4 {
            let pe = net.pu_select(k, "P").expect("the good PE");
            assert_eq!(pe.identifier, net.pes[good].core.identifier());
        }
        assert_eq!(net.pus[k].core.stats().unreachable_sent, 1);
        // MaxBadPEReports = 3 (RSPLIB default): removed with the third report only.
        assert_eq!(
            net.pe_at(0, bad).is_some(),
            n < 2,
            "after {} reports",
            n + 1
        );
    }
    assert!(net.reg_events.iter().any(|(_, e)| matches!(
        e,
        RegEvent::Removed { identifier, reason: RemovalReason::Unreachable, .. } if *identifier == bad_id
    )));
    assert!(net.pe_at(0, good).is_some());
}

#[test]
fn pu_fails_over_to_a_second_registrar_when_the_first_stops_answering() {
    let mut net = Net::new(2);
    net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let mut c = net.pu_config();
    c.stale_time = Duration::from_millis(100);
    let k = net.add_pu_with(c);
    net.pu_select(k, "P").expect("resolved");
    let assoc = net.pus[k].core.registrar_association().expect("connected");
    let first = net.assocs[&assoc.0].reg;
    let second = 1 - first;
    let answered = net.resolutions_answered(second);

    // The first registrar hangs: the request times out and goes to the other one.
    net.crash(first, false);
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.pu_resolve(k, "P"), Resolve::Pending);
    net.run_for(Duration::from_secs(4));
    assert_eq!(net.resolutions_answered(second), answered, "still waiting");
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.resolutions_answered(second), answered + 1);
    let resolved = net.pus[k]
        .events
        .iter()
        .filter(|e| matches!(e, pu::Event::Resolved { .. }))
        .count();
    assert_eq!(resolved, 2);
    assert_eq!(net.pus[k].core.stats().registrar_failures, 1);
    let assoc = net.pus[k].core.registrar_association().expect("connected");
    assert_eq!(net.assocs[&assoc.0].reg, second);
}

#[test]
fn pu_fails_over_at_once_when_the_registrar_association_is_lost() {
    let mut net = Net::new(2);
    net.add_pe("P", PolicyInfo::round_robin());
    net.run_for(Duration::from_millis(10));
    let k = net.add_pu_with(net.pu_config());
    let now = net.now;
    net.pus[k]
        .core
        .resolve(now, &PoolHandle::from("P"))
        .expect("accepted");
    // Connected and sent, but the answer is not delivered yet: the registrar crashes.
    let c = net.pus[k].core.poll_command().expect("connect");
    net.command(Side::Pu(k), c);
    let a = net.pus[k].core.registrar_association().expect("connected");
    let first = net.assocs[&a.0].reg;
    net.crash(first, true);
    net.flush();
    assert!(
        net.pus[k]
            .events
            .iter()
            .any(|e| matches!(e, pu::Event::Resolved { .. }))
    );
    assert_eq!(net.resolutions_answered(1 - first), 1);
}

#[test]
fn pu_reports_an_unknown_pool_handle() {
    let mut net = Net::new(1);
    let k = net.add_pu_with(net.pu_config());
    assert_eq!(net.pu_select(k, "Nope"), None);
    assert_eq!(
        net.pus[k].events,
        vec![pu::Event::ResolutionFailed {
            pool_handle: PoolHandle::from("Nope"),
            cause: Some(CauseCode::UNKNOWN_POOL_HANDLE)
        }]
    );
}

#[test]
fn pu_resolution_fails_after_its_attempts_when_no_registrar_answers() {
    let mut net = Net::new(2);
    net.crash(0, false);
    net.crash(1, false);
    let k = net.add_pu_with(net.pu_config());
    assert_eq!(net.pu_resolve(k, "P"), Resolve::Pending);
    net.run_for(Duration::from_secs(14));
    assert!(net.pus[k].events.is_empty());
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.pus[k].events,
        vec![pu::Event::ResolutionFailed {
            pool_handle: PoolHandle::from("P"),
            cause: None
        }]
    );
    assert!(!net.pus[k].core.is_pending(&PoolHandle::from("P")));
}

#[test]
fn pu_bounds_its_pending_resolutions() {
    let mut net = Net::new(1);
    net.crash(0, false);
    let mut c = net.pu_config();
    c.max_pending_resolutions = 2;
    let k = net.add_pu_with(c);
    let now = net.now;
    let pu = &mut net.pus[k].core;
    assert_eq!(
        pu.resolve(now, &PoolHandle::from("A")),
        Ok(Resolve::Pending)
    );
    assert_eq!(
        pu.resolve(now, &PoolHandle::from("B")),
        Ok(Resolve::Pending)
    );
    assert_eq!(
        pu.resolve(now, &PoolHandle::from("A")),
        Ok(Resolve::Pending)
    );
    assert_eq!(
        pu.resolve(now, &PoolHandle::from("C")),
        Err(pu::ResolveError::TooManyPending)
    );
    assert_eq!(
        pu.resolve(now, &PoolHandle::from("")),
        Err(pu::ResolveError::InvalidPoolHandle)
    );
}

#[test]
fn pu_ignores_pes_whose_policy_differs_from_the_pools() {
    let config = PoolUserConfig {
        static_registrars: vec![asap_endpoint(0)],
        ..PoolUserConfig::default()
    };
    let now = Timestamp::from_secs(1);
    let mut pu = PoolUser::new(config, Box::new(ChaCha8Rng::seed_from_u64(3)), now);
    let p = PoolHandle::from("P");
    assert_eq!(pu.resolve(now, &p), Ok(Resolve::Pending));
    let Some(pe::Command::Connect { endpoint }) = pu.poll_command() else {
        panic!("connect")
    };
    assert_eq!(endpoint, asap_endpoint(0));
    pu.handle_connected(now, AssocRef(1), &endpoint);
    let t = pu.poll_transmit().expect("request");
    assert_eq!(
        AsapMessage::decode(&t.bytes).expect("valid").message,
        AsapMessage::HandleResolution {
            pool_handle: p.clone(),
            items: None
        }
    );
    let element = |j: usize, policy: PolicyInfo| rserpool::wire::PoolElement {
        identifier: PeIdentifier(j as u32 + 1),
        home_registrar: reg_id(0),
        registration_life: 90_000,
        user_transport: TransportParameter::sctp(7000, TransportUse::DATA_ONLY, vec![pe_addr(j)]),
        policy,
        asap_transport: None,
    };
    let answer = |pes| {
        encode(&AsapMessage::HandleResolutionResponse {
            pool_handle: PoolHandle::from("P"),
            policy: Some(PolicyInfo::round_robin()),
            pool_elements: pes,
            error: None,
        })
    };
    pu.handle_asap(
        now,
        AssocRef(1),
        &answer(vec![
            element(0, PolicyInfo::round_robin()),
            element(1, PolicyInfo::random()),
        ]),
    );
    assert_eq!(
        pu.poll_event(),
        Some(pu::Event::Resolved {
            pool_handle: p.clone(),
            pool_elements: 1
        })
    );
    for _ in 0..3 {
        let Ok(Resolve::Selected(pe)) = pu.resolve(now, &p) else {
            panic!("cached")
        };
        assert_eq!(pe.identifier, PeIdentifier(1));
    }
    // Only PEs of another policy: nothing usable.
    let later = now + Duration::from_secs(1);
    assert_eq!(pu.resolve(later, &p), Ok(Resolve::Pending));
    pu.handle_asap(
        later,
        AssocRef(1),
        &answer(vec![element(1, PolicyInfo::random())]),
    );
    assert_eq!(
        pu.poll_event(),
        Some(pu::Event::ResolutionFailed {
            pool_handle: p,
            cause: Some(CauseCode::INCONSISTENT_POOLING_POLICY)
        })
    );
}

// ---- garbage ----

fn valid_messages() -> Vec<Vec<u8>> {
    let h = PoolHandle::from("P");
    let msgs = [
        AsapMessage::EndpointKeepAlive {
            home: true,
            server_id: RegistrarId(77),
            pool_handle: h.clone(),
            identifier: None,
        },
        AsapMessage::RegistrationResponse {
            reject: false,
            pool_handle: h.clone(),
            identifier: PeIdentifier(1),
            error: None,
        },
        AsapMessage::HandleResolutionResponse {
            pool_handle: h.clone(),
            policy: Some(PolicyInfo::round_robin()),
            pool_elements: Vec::new(),
            error: None,
        },
        AsapMessage::ServerAnnounce {
            server_id: RegistrarId(5),
            transports: vec![asap_endpoint(3)],
        },
    ];
    msgs.iter().map(encode).collect()
}

fn encode(m: &AsapMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).expect("encodes");
    b.truncate(n);
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_input_never_panics_a_pe_or_pu(
        inputs in prop::collection::vec(
            (0u8..4, any::<u64>(), prop::collection::vec(any::<u8>(), 0..96), 0usize..4, any::<u16>()),
            1..40,
        )
    ) {
        let mut net = Net::new(1);
        let j = net.add_pe("P", PolicyInfo::least_used(5));
        let k = net.add_pu_with(net.pu_config());
        net.run_for(Duration::from_millis(10));
        let templates = valid_messages();
        let home = net.pes[j].core.home_association();
        prop_assert!(home.is_some());
        for (kind, assoc, bytes, template, flip) in inputs {
            // Either raw garbage or a valid message with one byte changed, on an
            // association the network does not know.
            let mut msg = templates[template].clone();
            let at = flip as usize % msg.len();
            msg[at] ^= (flip >> 8) as u8 | 1;
            let input = if kind % 2 == 0 { bytes } else { msg };
            let now = net.now;
            let from = SocketAddr::new(reg_addr(0), 3863);
            let assoc = AssocRef(1_000_000 + assoc % 4);
            match kind {
                0 | 1 => {
                    net.pes[j].core.handle_asap(now, assoc, &input);
                    net.pus[k].core.handle_asap(now, assoc, &input);
                }
                _ => {
                    net.pes[j].core.handle_server_announce(now, from, &input);
                    net.pus[k].core.handle_server_announce(now, from, &input);
                }
            }
            net.run_for(Duration::from_millis(300));
            prop_assert!(!net.pes[j].core.is_registered() || net.pes[j].core.home_association().is_some());
        }
        net.run_for(Duration::from_secs(12));
        // A mutated keep-alive with flag H is a legitimate re-homing; otherwise the PE is
        // still registered at its registrar and answering keep-alives.
        if net.pes[j].core.home_association() == home {
            prop_assert!(net.pe_at(0, j).is_some());
            prop_assert!(net.pes[j].core.is_registered());
        }
    }
}
