//! Registrar tests on an in-memory network of N registrars, M pool elements and PUs with
//! virtual time (STYLE.md §9, extended to N nodes).

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::wire::{
    AsapMessage, CauseCode, EnrpMessage, EnrpMessageType, FLAG_MORE_TO_SEND, PeIdentifier,
    PolicyInfo, PoolElement, PoolHandle, RegistrarId, TransportParameter, TransportUse,
};

const REG_BASE: u64 = 1000;
const PU_BASE: u64 = 10_000;
const PE_PORT: u16 = 5000;

fn reg_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

fn pe_addr(j: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (j >> 8) as u8, j as u8))
}

fn pu_addr(k: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 2, (k >> 8) as u8, k as u8))
}

fn reg_id(i: usize) -> RegistrarId {
    RegistrarId(10 * (i as u32 + 1))
}

fn enrp_endpoint(i: usize) -> TransportParameter {
    TransportParameter::sctp(9901, TransportUse::DATA_ONLY, vec![reg_addr(i)])
}

/// A scripted pool element: answers keep-alives while alive, follows H-bit re-homing.
#[derive(Debug)]
struct FakePe {
    handle: PoolHandle,
    id: PeIdentifier,
    policy: PolicyInfo,
    addresses: Vec<IpAddr>,
    alive: bool,
    home: Option<usize>,
    keep_alives: u32,
    home_keep_alives: u32,
    inbox: Vec<(usize, AsapMessage)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EnrpLog {
    from: usize,
    to: usize,
    ty: EnrpMessageType,
    flags: u8,
}

struct Net {
    now: Timestamp,
    regs: Vec<Registrar>,
    crashed: Vec<bool>,
    cut: BTreeSet<(usize, usize)>,
    pes: Vec<FakePe>,
    pu_inbox: VecDeque<(usize, u64, AsapMessage)>,
    announces: Vec<(usize, AsapMessage)>,
    events: Vec<(usize, Event)>,
    enrp_log: Vec<EnrpLog>,
}

fn base_config(i: usize, n: usize) -> RegistrarConfig {
    RegistrarConfig {
        server_id: reg_id(i),
        asap_transports: vec![TransportParameter::sctp(
            3863,
            TransportUse::DATA_ONLY,
            vec![reg_addr(i)],
        )],
        enrp_transport: enrp_endpoint(i),
        static_peers: (0..n).filter(|j| *j != i).map(enrp_endpoint).collect(),
        ..RegistrarConfig::default()
    }
}

impl Net {
    /// `n` registrars in a full static mesh, each configured by `tweak`.
    fn new(n: usize, tweak: impl Fn(usize, &mut RegistrarConfig)) -> Self {
        let mut net = Net {
            now: Timestamp::from_secs(1),
            regs: Vec::new(),
            crashed: Vec::new(),
            cut: BTreeSet::new(),
            pes: Vec::new(),
            pu_inbox: VecDeque::new(),
            announces: Vec::new(),
            events: Vec::new(),
            enrp_log: Vec::new(),
        };
        for i in 0..n {
            let mut c = base_config(i, n);
            tweak(i, &mut c);
            net.add_registrar(c);
        }
        net
    }

    fn add_registrar(&mut self, config: RegistrarConfig) -> usize {
        let seed = self.regs.len() as u64 + 1;
        let r = Registrar::new(config, Box::new(ChaCha8Rng::seed_from_u64(seed)), self.now);
        self.regs.push(r);
        self.crashed.push(false);
        self.regs.len() - 1
    }

    /// Runs until every registrar left start-up.
    fn settle(&mut self) {
        self.run_for(Duration::from_secs(6));
        for (i, r) in self.regs.iter().enumerate() {
            assert!(
                self.crashed[i] || r.is_serving(),
                "registrar {i} not serving"
            );
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        !self.crashed[a] && !self.crashed[b] && !self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn split(&mut self, a: usize, b: usize) {
        self.cut.insert((a.min(b), a.max(b)));
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn reg_by_id(&self, id: RegistrarId) -> Option<usize> {
        self.regs.iter().position(|r| r.id() == id)
    }

    fn reg_by_addr(&self, t: &TransportParameter) -> Option<usize> {
        (0..self.regs.len()).find(|i| t.addresses.contains(&reg_addr(*i)))
    }

    /// Delivers everything queued until the network is quiet.
    fn flush(&mut self) {
        let mut rounds = 0;
        loop {
            let mut queue = Vec::new();
            for i in 0..self.regs.len() {
                if self.crashed[i] {
                    while self.regs[i].poll_transmit().is_some() {}
                    continue;
                }
                while let Some(t) = self.regs[i].poll_transmit() {
                    queue.push((i, t));
                }
                while let Some(e) = self.regs[i].poll_event() {
                    self.events.push((i, e));
                }
            }
            if queue.is_empty() {
                return;
            }
            rounds += 1;
            assert!(rounds < 10_000, "message storm");
            for (src, t) in queue {
                self.deliver(src, t);
            }
        }
    }

    fn deliver(&mut self, src: usize, t: Transmit) {
        let now = self.now;
        match t.to {
            Destination::Association(AssocRef(a)) if a >= PU_BASE => {
                assert_eq!(t.ppid, PPID_ASAP);
                let m = AsapMessage::decode(&t.bytes).expect("registrar sends valid ASAP");
                self.pu_inbox.push_back((src, a - PU_BASE, m.message));
            }
            Destination::Association(AssocRef(a)) => self.deliver_to_pe(src, a as usize, &t.bytes),
            Destination::PoolElement(tp) => {
                if let Some(j) = self
                    .pes
                    .iter()
                    .position(|p| p.addresses.iter().any(|a| tp.addresses.contains(a)))
                {
                    self.deliver_to_pe(src, j, &t.bytes);
                }
            }
            Destination::Peer { id, endpoint } => {
                assert_eq!(t.ppid, PPID_ENRP);
                let dst = if id != RegistrarId::UNDEFINED {
                    self.reg_by_id(id)
                } else {
                    self.reg_by_addr(&endpoint)
                };
                let Some(dst) = dst else { return };
                if !self.linked(src, dst) {
                    return;
                }
                let m = EnrpMessage::decode(&t.bytes).expect("registrar sends valid ENRP");
                self.enrp_log.push(EnrpLog {
                    from: src,
                    to: dst,
                    ty: m.message.message_type(),
                    flags: t.bytes[1],
                });
                self.regs[dst].handle_enrp(
                    now,
                    EnrpOrigin::Association(AssocRef(REG_BASE + src as u64)),
                    &t.bytes,
                );
            }
            Destination::EnrpMulticast => {
                for dst in 0..self.regs.len() {
                    if dst != src && self.linked(src, dst) {
                        self.regs[dst].handle_enrp(now, EnrpOrigin::Multicast, &t.bytes);
                    }
                }
            }
            Destination::AsapAnnounce => {
                let m = AsapMessage::decode(&t.bytes).expect("valid announce");
                self.announces.push((src, m.message));
            }
        }
    }

    fn deliver_to_pe(&mut self, src: usize, j: usize, bytes: &[u8]) {
        let Some(pe) = self.pes.get_mut(j) else {
            return;
        };
        if !pe.alive {
            return;
        }
        let m = AsapMessage::decode(bytes)
            .expect("registrar sends valid ASAP")
            .message;
        let mut ack = None;
        match &m {
            AsapMessage::RegistrationResponse { reject: false, .. } => pe.home = Some(src),
            AsapMessage::EndpointKeepAlive {
                home,
                pool_handle,
                identifier,
                ..
            } => {
                pe.keep_alives += 1;
                if *home {
                    pe.home_keep_alives += 1;
                    pe.home = Some(src);
                }
                ack = Some(AsapMessage::EndpointKeepAliveAck {
                    pool_handle: pool_handle.clone(),
                    identifier: identifier.unwrap_or(pe.id),
                });
            }
            _ => {}
        }
        pe.inbox.push((src, m));
        if let Some(ack) = ack {
            self.pe_send(j, src, &ack);
        }
    }

    fn pe_send(&mut self, j: usize, reg: usize, m: &AsapMessage) {
        if self.crashed[reg] {
            return;
        }
        let bytes = encode_asap(m);
        let addrs = self.pes[j].addresses.clone();
        let now = self.now;
        self.regs[reg].handle_asap(
            now,
            AsapOrigin {
                assoc: AssocRef(j as u64),
                port: PE_PORT,
                addresses: &addrs,
            },
            &bytes,
        );
    }

    /// Adds a PE (not yet registered); returns its index.
    fn add_pe(&mut self, handle: &str, policy: PolicyInfo) -> usize {
        let j = self.pes.len();
        self.pes.push(FakePe {
            handle: PoolHandle::from(handle),
            id: PeIdentifier(0x1000 + j as u32),
            policy,
            addresses: vec![pe_addr(j)],
            alive: true,
            home: None,
            keep_alives: 0,
            home_keep_alives: 0,
            inbox: Vec::new(),
        });
        j
    }

    fn pe_element(&self, j: usize) -> PoolElement {
        let pe = &self.pes[j];
        PoolElement {
            identifier: pe.id,
            home_registrar: RegistrarId::UNDEFINED,
            registration_life: 3_600_000,
            user_transport: TransportParameter::sctp(
                7000,
                TransportUse::DATA_ONLY,
                pe.addresses.clone(),
            ),
            policy: pe.policy.clone(),
            asap_transport: None,
        }
    }

    /// Registers PE `j` at registrar `reg`; returns the registration response.
    fn register(&mut self, j: usize, reg: usize) -> AsapMessage {
        let m = AsapMessage::Registration {
            pool_handle: self.pes[j].handle.clone(),
            pool_element: self.pe_element(j),
        };
        self.register_with(j, reg, &m)
    }

    fn register_with(&mut self, j: usize, reg: usize, m: &AsapMessage) -> AsapMessage {
        let before = self.pes[j].inbox.len();
        self.pe_send(j, reg, m);
        self.flush();
        self.pes[j].inbox[before..]
            .iter()
            .find(|(_, m)| matches!(m, AsapMessage::RegistrationResponse { .. }))
            .map(|(_, m)| m.clone())
            .expect("registration answered")
    }

    fn deregister(&mut self, j: usize, reg: usize) -> AsapMessage {
        let m = AsapMessage::Deregistration {
            pool_handle: self.pes[j].handle.clone(),
            identifier: self.pes[j].id,
        };
        let before = self.pes[j].inbox.len();
        self.pe_send(j, reg, &m);
        self.flush();
        self.pes[j].inbox[before..]
            .iter()
            .find(|(_, m)| matches!(m, AsapMessage::DeregistrationResponse { .. }))
            .map(|(_, m)| m.clone())
            .expect("deregistration answered")
    }

    /// A PU message; returns the registrar's answers to that PU.
    fn pu_send(&mut self, pu: u64, reg: usize, m: &AsapMessage) -> Vec<AsapMessage> {
        let bytes = encode_asap(m);
        self.pu_send_raw(pu, reg, &bytes)
    }

    fn pu_send_raw(&mut self, pu: u64, reg: usize, bytes: &[u8]) -> Vec<AsapMessage> {
        let now = self.now;
        let addrs = [pu_addr(pu)];
        self.regs[reg].handle_asap(
            now,
            AsapOrigin {
                assoc: AssocRef(PU_BASE + pu),
                port: 40_000,
                addresses: &addrs,
            },
            bytes,
        );
        self.flush();
        let mut out = Vec::new();
        self.pu_inbox.retain(|(r, p, m)| {
            if *r == reg && *p == pu {
                out.push(m.clone());
                false
            } else {
                true
            }
        });
        out
    }

    fn resolve(
        &mut self,
        pu: u64,
        reg: usize,
        handle: &str,
        items: Option<u32>,
    ) -> Vec<AsapMessage> {
        self.pu_send(
            pu,
            reg,
            &AsapMessage::HandleResolution {
                pool_handle: PoolHandle::from(handle),
                items,
            },
        )
    }

    fn report_unreachable(&mut self, pu: u64, reg: usize, j: usize) {
        let m = AsapMessage::EndpointUnreachable {
            pool_handle: self.pes[j].handle.clone(),
            identifier: self.pes[j].id,
        };
        self.pu_send(pu, reg, &m);
    }

    /// Advances virtual time by `d`, firing timers in order.
    fn run_for(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            self.flush();
            let next = (0..self.regs.len())
                .filter(|i| !self.crashed[*i])
                .filter_map(|i| self.regs[i].poll_timeout())
                .min();
            let Some(next) = next else { break };
            if next > target {
                break;
            }
            self.now = self.now.max(next);
            for i in 0..self.regs.len() {
                if self.crashed[i] {
                    continue;
                }
                if self.regs[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.regs[i].handle_timeout(self.now);
                    // No busy loop: after handling, nothing is due any more.
                    assert!(
                        self.regs[i].poll_timeout().is_none_or(|t| t > self.now),
                        "registrar {i} still due after handle_timeout"
                    );
                }
            }
        }
        self.now = target;
        self.flush();
    }

    fn knows(&self, reg: usize, j: usize) -> bool {
        let pe = &self.pes[j];
        self.regs[reg]
            .handlespace()
            .pool_element(pe.handle.as_bytes(), pe.id)
            .is_some()
    }

    fn home_at(&self, reg: usize, j: usize) -> Option<RegistrarId> {
        let pe = &self.pes[j];
        self.regs[reg]
            .handlespace()
            .pool_element(pe.handle.as_bytes(), pe.id)
            .map(|p| p.home_registrar)
    }

    fn events_of(&self, reg: usize) -> impl Iterator<Item = &Event> + '_ {
        self.events
            .iter()
            .filter(move |(r, _)| *r == reg)
            .map(|(_, e)| e)
    }

    /// Every live registrar agrees on the ownership checksum of every registrar and on the
    /// checksum of the whole handlespace.
    fn assert_checksums_agree(&self) {
        let live: Vec<usize> = (0..self.regs.len()).filter(|i| !self.crashed[*i]).collect();
        let whole: Vec<u16> = live
            .iter()
            .map(|i| self.regs[*i].handlespace_checksum())
            .collect();
        assert!(
            whole.windows(2).all(|w| w[0] == w[1]),
            "handlespace checksums differ: {whole:x?}"
        );
        for owner in &self.regs {
            let sums: Vec<u16> = live
                .iter()
                .map(|i| self.regs[*i].handlespace().ownership_checksum(owner.id()))
                .collect();
            assert!(
                sums.windows(2).all(|w| w[0] == w[1]),
                "checksums of {:?} differ: {sums:x?}",
                owner.id()
            );
        }
    }
}

fn encode_asap(m: &AsapMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).expect("encodes");
    b.truncate(n);
    b
}

fn encode_enrp(m: &EnrpMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).expect("encodes");
    b.truncate(n);
    b
}

fn accepted(m: &AsapMessage) -> bool {
    matches!(
        m,
        AsapMessage::RegistrationResponse {
            reject: false,
            error: None,
            ..
        }
    )
}

fn rejection_cause(m: &AsapMessage) -> Option<CauseCode> {
    match m {
        AsapMessage::RegistrationResponse {
            reject: true,
            error: Some(e),
            ..
        } => e.first_code(),
        _ => None,
    }
}

fn resolved(ms: &[AsapMessage]) -> Vec<PeIdentifier> {
    match ms {
        [
            AsapMessage::HandleResolutionResponse {
                pool_elements,
                error: None,
                ..
            },
        ] => pool_elements.iter().map(|p| p.identifier).collect(),
        other => panic!("expected one successful resolution response, got {other:?}"),
    }
}

// ---------------------------------------------------------------- ASAP server

#[test]
fn registration_is_answered_and_propagated_to_every_peer() {
    let mut net = Net::new(3, |_, _| {});
    net.settle();
    let pe = net.add_pe("EchoPool", PolicyInfo::round_robin());
    let r = net.register(pe, 0);
    assert!(accepted(&r), "{r:?}");
    for i in 0..3 {
        assert!(net.knows(i, pe), "registrar {i} lacks the PE");
        assert_eq!(net.home_at(i, pe), Some(reg_id(0)));
    }
    assert_eq!(net.regs[0].owned_count(), 1);
    assert_eq!(net.regs[1].owned_count(), 0);
    net.assert_checksums_agree();
    // One owner: the whole-handlespace checksum is its ownership checksum.
    assert_eq!(
        net.regs[1].handlespace_checksum(),
        net.regs[1].handlespace().ownership_checksum(reg_id(0))
    );
    assert_ne!(net.regs[1].handlespace_checksum(), 0xffff);
    // The copy carries the PE's ASAP endpoint as seen by the home registrar.
    let copy = net.regs[2]
        .handlespace()
        .pool_element(b"EchoPool", net.pes[pe].id)
        .cloned()
        .expect("copy");
    assert_eq!(
        copy.asap_transport.map(|t| (t.port, t.addresses)),
        Some((PE_PORT, vec![pe_addr(pe)]))
    );
}

#[test]
fn reregistration_updates_in_place_and_keeps_identity() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let pe = net.add_pe("LuPool", PolicyInfo::least_used(10));
    assert!(accepted(&net.register(pe, 0)));
    net.pes[pe].policy = PolicyInfo::least_used(20);
    assert!(accepted(&net.register(pe, 0)));
    assert!(net.events_of(0).any(|e| matches!(
        e,
        Event::Registered { update: true, identifier, .. } if *identifier == net.pes[pe].id
    )));
    for i in 0..2 {
        let hs = net.regs[i].handlespace();
        assert_eq!(hs.pe_count(), 1);
        let stored = hs.pool_element(b"LuPool", net.pes[pe].id).expect("present");
        assert_eq!(stored.policy.load, 20);
        assert_eq!(stored.home_registrar, reg_id(0));
    }
    assert_eq!(net.regs[0].owned_count(), 1);
}

#[test]
fn registration_with_another_policy_than_the_pool_is_rejected() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let a = net.add_pe("P", PolicyInfo::round_robin());
    let b = net.add_pe("P", PolicyInfo::random());
    assert!(accepted(&net.register(a, 0)));
    let r = net.register(b, 0);
    assert_eq!(
        rejection_cause(&r),
        Some(CauseCode::INCONSISTENT_POOLING_POLICY)
    );
    assert!(!net.knows(0, b));
    assert_eq!(net.regs[0].stats().registration_rejects, 1);
}

#[test]
fn registration_with_another_transport_than_the_pool_is_rejected() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let a = net.add_pe("P", PolicyInfo::round_robin());
    let b = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(a, 0)));
    let mut el = net.pe_element(b);
    el.user_transport.protocol = crate::wire::TransportProtocol::Tcp;
    let r = net.register_with(
        b,
        0,
        &AsapMessage::Registration {
            pool_handle: PoolHandle::from("P"),
            pool_element: el,
        },
    );
    assert_eq!(
        rejection_cause(&r),
        Some(CauseCode::INCONSISTENT_TRANSPORT_TYPE)
    );
}

#[test]
fn registered_addresses_must_belong_to_the_association() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    // Only a foreign address: rejected for security reasons.
    let mut el = net.pe_element(pe);
    el.user_transport.addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66))];
    let m = AsapMessage::Registration {
        pool_handle: PoolHandle::from("P"),
        pool_element: el.clone(),
    };
    assert_eq!(
        rejection_cause(&net.register_with(pe, 0, &m)),
        Some(CauseCode::REJECTED_SECURITY)
    );
    assert!(!net.knows(0, pe));
    // A foreign address next to the real one: the foreign one is dropped.
    el.user_transport.addresses.push(pe_addr(pe));
    let m = AsapMessage::Registration {
        pool_handle: PoolHandle::from("P"),
        pool_element: el,
    };
    assert!(accepted(&net.register_with(pe, 0, &m)));
    let stored = net.regs[0]
        .handlespace()
        .pool_element(b"P", net.pes[pe].id)
        .expect("registered");
    assert_eq!(stored.user_transport.addresses, vec![pe_addr(pe)]);
}

#[test]
fn address_verification_can_be_switched_off() {
    let mut net = Net::new(1, |_, c| c.verify_pe_addresses = false);
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    let mut el = net.pe_element(pe);
    let foreign = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
    el.user_transport.addresses = vec![foreign];
    let m = AsapMessage::Registration {
        pool_handle: PoolHandle::from("P"),
        pool_element: el,
    };
    assert!(accepted(&net.register_with(pe, 0, &m)));
    let stored = net.regs[0]
        .handlespace()
        .pool_element(b"P", net.pes[pe].id)
        .expect("registered");
    assert_eq!(stored.user_transport.addresses, vec![foreign]);
}

#[test]
fn deregistration_removes_the_pe_everywhere() {
    let mut net = Net::new(3, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 1)));
    let r = net.deregister(pe, 1);
    assert!(
        matches!(r, AsapMessage::DeregistrationResponse { error: None, .. }),
        "{r:?}"
    );
    for i in 0..3 {
        assert!(!net.knows(i, pe), "registrar {i} still has the PE");
        assert_eq!(net.regs[i].handlespace().pool_count(), 0);
    }
    assert_eq!(net.regs[1].owned_count(), 0);
    net.assert_checksums_agree();
}

#[test]
fn deregistration_over_another_association_is_refused() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    let ms = net.pu_send(
        1,
        0,
        &AsapMessage::Deregistration {
            pool_handle: PoolHandle::from("P"),
            identifier: net.pes[pe].id,
        },
    );
    assert!(matches!(
        ms.as_slice(),
        [AsapMessage::DeregistrationResponse { error: Some(e), .. }]
            if e.first_code() == Some(CauseCode::REJECTED_SECURITY)
    ));
    assert!(net.knows(0, pe));
}

#[test]
fn handle_resolution_returns_at_most_max_items_chosen_by_the_policy() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let pes: Vec<usize> = (0..5)
        .map(|_| net.add_pe("RR", PolicyInfo::round_robin()))
        .collect();
    for pe in &pes {
        assert!(accepted(&net.register(*pe, 0)));
    }
    // Default MaxHResItems = 3, also when the PU asks for more.
    assert_eq!(resolved(&net.resolve(1, 1, "RR", None)).len(), 3);
    assert_eq!(resolved(&net.resolve(1, 1, "RR", Some(100))).len(), 3);
    assert_eq!(resolved(&net.resolve(1, 1, "RR", Some(1))).len(), 1);
    // Round robin: consecutive single selections walk through all five PEs.
    let picked: BTreeSet<PeIdentifier> = (0..5)
        .map(|_| resolved(&net.resolve(1, 0, "RR", Some(1)))[0])
        .collect();
    assert_eq!(picked.len(), 5);
    // An unknown pool is answered with an Operation Error.
    let ms = net.resolve(1, 0, "Nope", None);
    assert!(matches!(
        ms.as_slice(),
        [AsapMessage::HandleResolutionResponse { error: Some(e), pool_elements, .. }]
            if e.first_code() == Some(CauseCode::UNKNOWN_POOL_HANDLE) && pool_elements.is_empty()
    ));
}

#[test]
fn dead_pe_is_found_by_keep_alive_timeout_and_removed_everywhere() {
    let mut net = Net::new(3, |_, _| {});
    net.settle();
    let live = net.add_pe("P", PolicyInfo::round_robin());
    let dead = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(live, 0)));
    assert!(accepted(&net.register(dead, 0)));
    net.pes[dead].alive = false;
    // Keep-alive after 5 s, timeout 5 s later.
    net.run_for(Duration::from_secs(11));
    for i in 0..3 {
        assert!(!net.knows(i, dead), "registrar {i} still has the dead PE");
        assert!(net.knows(i, live), "registrar {i} lost the live PE");
    }
    assert!(net.events_of(0).any(|e| matches!(
        e,
        Event::Removed { reason: RemovalReason::KeepAliveTimeout, identifier, .. }
            if *identifier == net.pes[dead].id
    )));
    // The live PE keeps being supervised.
    net.run_for(Duration::from_secs(30));
    assert!(
        net.pes[live].keep_alives >= 6,
        "{}",
        net.pes[live].keep_alives
    );
    assert!(net.knows(1, live));
    assert_eq!(net.regs[0].stats().keep_alive_timeouts, 1);
    net.assert_checksums_agree();
}

#[test]
fn pe_that_does_not_reregister_within_its_life_expires_everywhere() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let lazy = net.add_pe("P", PolicyInfo::round_robin());
    let diligent = net.add_pe("P", PolicyInfo::round_robin());
    for pe in [lazy, diligent] {
        let mut el = net.pe_element(pe);
        el.registration_life = 8_000;
        let m = AsapMessage::Registration {
            pool_handle: PoolHandle::from("P"),
            pool_element: el,
        };
        assert!(accepted(&net.register_with(pe, 0, &m)));
    }
    for _ in 0..4 {
        net.run_for(Duration::from_secs(3));
        // The diligent PE re-registers every 3 s, the lazy one never.
        let mut el = net.pe_element(diligent);
        el.registration_life = 8_000;
        let m = AsapMessage::Registration {
            pool_handle: PoolHandle::from("P"),
            pool_element: el,
        };
        assert!(accepted(&net.register_with(diligent, 0, &m)));
    }
    for i in 0..2 {
        assert!(!net.knows(i, lazy), "registrar {i} still has the lazy PE");
        assert!(net.knows(i, diligent));
    }
    assert!(
        net.pes[lazy].keep_alives >= 1,
        "it answered keep-alives all along"
    );
    // Home and copies expire together: no audit was needed to repair anything.
    assert!(
        net.events
            .iter()
            .all(|(_, e)| !matches!(e, Event::AuditStarted { .. }))
    );
    assert!(net.events_of(0).any(|e| matches!(
        e,
        Event::Removed { reason: RemovalReason::Expired, identifier, .. }
            if *identifier == net.pes[lazy].id
    )));
    net.assert_checksums_agree();
}

#[test]
fn rejected_handle_update_for_an_owned_pe_keeps_it_supervised() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::least_used(5));
    assert!(accepted(&net.register(pe, 0)));
    // A peer claims the PE for a third registrar with a policy the pool does not use.
    let claim = EnrpMessage {
        sender: reg_id(1),
        receiver: reg_id(0),
        body: EnrpBody::HandleUpdate {
            takeover_suggested: false,
            action: crate::wire::UpdateAction::ADD_PE,
            pool_handle: PoolHandle::from("P"),
            pool_element: PoolElement {
                home_registrar: RegistrarId(99),
                policy: PolicyInfo::round_robin(),
                ..net.pe_element(pe)
            },
        },
    };
    let now = net.now;
    net.regs[0].handle_enrp(
        now,
        EnrpOrigin::Association(AssocRef(REG_BASE + 1)),
        &encode_enrp(&claim),
    );
    assert_eq!(net.regs[0].stats().update_rejects, 1);
    assert_eq!(net.regs[0].owned_count(), 1);
    assert_eq!(net.home_at(0, pe), Some(reg_id(0)));
    let before = net.pes[pe].keep_alives;
    net.run_for(Duration::from_secs(12));
    assert!(net.pes[pe].keep_alives >= before + 2);
    assert!(net.knows(0, pe) && net.knows(1, pe));
}

#[test]
fn association_loss_removes_its_pes_everywhere() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let a = net.add_pe("P", PolicyInfo::round_robin());
    let b = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(a, 0)));
    assert!(accepted(&net.register(b, 0)));
    let now = net.now;
    net.regs[0].handle_association_lost(now, AssocRef(a as u64));
    net.flush();
    for i in 0..2 {
        assert!(!net.knows(i, a));
        assert!(net.knows(i, b));
    }
    assert_eq!(net.regs[0].owned_count(), 1);
}

#[test]
fn unreachable_reports_remove_the_pe_after_the_threshold() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    net.report_unreachable(1, 0, pe);
    net.report_unreachable(2, 0, pe);
    assert!(net.knows(0, pe) && net.knows(1, pe));
    net.report_unreachable(3, 0, pe);
    assert!(!net.knows(0, pe));
    assert!(!net.knows(1, pe), "the removal reaches the peer");
    assert!(net.events_of(0).any(|e| matches!(
        e,
        Event::Removed {
            reason: RemovalReason::Unreachable,
            ..
        }
    )));
}

#[test]
fn server_announce_is_sent_periodically_and_can_be_disabled() {
    let mut net = Net::new(2, |i, c| {
        if i == 1 {
            c.announce_interval = None;
        }
    });
    net.settle();
    net.announces.clear();
    net.run_for(Duration::from_secs(10));
    let from0 = net.announces.iter().filter(|(r, _)| *r == 0).count();
    assert!((9..=11).contains(&from0), "{from0} announces in 10 s");
    assert!(net.announces.iter().all(|(r, _)| *r == 0));
    assert!(matches!(
        &net.announces[0].1,
        AsapMessage::ServerAnnounce { server_id, transports }
            if *server_id == reg_id(0) && transports[0].addresses == vec![reg_addr(0)]
    ));
}

#[test]
fn asap_requests_are_not_served_before_startup_is_over() {
    let mut net = Net::new(1, |_, _| {});
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    net.pe_send(
        pe,
        0,
        &AsapMessage::Registration {
            pool_handle: PoolHandle::from("P"),
            pool_element: net.pe_element(pe),
        },
    );
    net.flush();
    assert!(net.pes[pe].inbox.is_empty());
    assert_eq!(net.regs[0].stats().asap_dropped_in_startup, 1);
    assert!(net.announces.is_empty(), "no announce before serving");
    net.settle();
    assert!(accepted(&net.register(pe, 0)));
    assert!(!net.announces.is_empty());
}

// ---------------------------------------------------------------- security

#[test]
fn registration_acl_refuses_unlisted_addresses_and_pools() {
    let mut net = Net::new(1, |_, c| {
        c.registration_acl = AccessList {
            rules: vec![AccessRule {
                prefix: IpPrefix::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 30),
                pool_handles: vec![PoolHandle::from("Allowed")],
            }],
        };
    });
    net.settle();
    let ok = net.add_pe("Allowed", PolicyInfo::round_robin()); // 10.1.0.0
    let wrong_pool = net.add_pe("Other", PolicyInfo::round_robin()); // 10.1.0.1
    for _ in 2..5 {
        net.add_pe("Allowed", PolicyInfo::round_robin());
    }
    let outside = 4; // 10.1.0.4, outside the /30
    assert!(accepted(&net.register(ok, 0)));
    assert_eq!(
        rejection_cause(&net.register(wrong_pool, 0)),
        Some(CauseCode::REJECTED_SECURITY)
    );
    assert_eq!(
        rejection_cause(&net.register(outside, 0)),
        Some(CauseCode::REJECTED_SECURITY)
    );
    assert_eq!(net.regs[0].handlespace().pe_count(), 1);
    assert_eq!(net.regs[0].stats().acl_refusals, 2);
}

#[test]
fn resolution_acl_refuses_unlisted_users() {
    let mut net = Net::new(1, |_, c| {
        c.resolution_acl = AccessList {
            rules: vec![AccessRule {
                prefix: IpPrefix::host(pu_addr(1)),
                pool_handles: vec![],
            }],
        };
    });
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    assert_eq!(resolved(&net.resolve(1, 0, "P", None)).len(), 1);
    let ms = net.resolve(2, 0, "P", None);
    assert!(matches!(
        ms.as_slice(),
        [AsapMessage::HandleResolutionResponse { error: Some(e), pool_elements, .. }]
            if e.first_code() == Some(CauseCode::REJECTED_SECURITY) && pool_elements.is_empty()
    ));
}

#[test]
fn resolution_rate_limit_holds_per_user_and_refills() {
    let mut net = Net::new(1, |_, c| {
        c.resolution_rate = Some(RateLimit {
            per_second: 1,
            burst: 3,
        });
    });
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    let answered = (0..5)
        .filter(|_| !net.resolve(1, 0, "P", None).is_empty())
        .count();
    assert_eq!(answered, 3);
    assert_eq!(net.regs[0].stats().rate_limited, 2);
    // Another PU has its own bucket.
    assert_eq!(resolved(&net.resolve(2, 0, "P", None)).len(), 1);
    // Two seconds refill two tokens.
    net.run_for(Duration::from_secs(2));
    let answered = (0..5)
        .filter(|_| !net.resolve(1, 0, "P", None).is_empty())
        .count();
    assert_eq!(answered, 2);
}

#[test]
fn unreachable_rate_limit_keeps_one_user_from_removing_a_pe() {
    let mut net = Net::new(1, |_, c| {
        c.unreachable_rate = Some(RateLimit {
            per_second: 1,
            burst: 1,
        });
    });
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    for _ in 0..5 {
        net.report_unreachable(1, 0, pe);
    }
    assert!(
        net.knows(0, pe),
        "one PU cannot reach the threshold in a burst"
    );
    assert_eq!(net.regs[0].stats().rate_limited, 4);
    net.report_unreachable(2, 0, pe);
    net.report_unreachable(3, 0, pe);
    assert!(!net.knows(0, pe), "three different PUs can");
}

#[test]
fn limits_on_pes_per_address_per_registrar_and_pools_hold() {
    let mut net = Net::new(1, |_, c| {
        c.max_pes_per_address = 2;
        c.max_owned_pes = 3;
        c.handlespace.max_pools = 2;
    });
    net.settle();
    // Three PEs behind one address.
    let a = net.add_pe("A", PolicyInfo::round_robin());
    let b = net.add_pe("A", PolicyInfo::round_robin());
    let c = net.add_pe("A", PolicyInfo::round_robin());
    net.pes[b].addresses = net.pes[a].addresses.clone();
    net.pes[c].addresses = net.pes[a].addresses.clone();
    assert!(accepted(&net.register(a, 0)));
    assert!(accepted(&net.register(b, 0)));
    assert_eq!(
        rejection_cause(&net.register(c, 0)),
        Some(CauseCode::LACK_OF_RESOURCES)
    );
    // A re-registration is not a new PE.
    assert!(accepted(&net.register(b, 0)));
    // Max pools: a third pool is refused.
    let d = net.add_pe("B", PolicyInfo::round_robin());
    let e = net.add_pe("C", PolicyInfo::round_robin());
    assert!(accepted(&net.register(d, 0)));
    assert_eq!(
        rejection_cause(&net.register(e, 0)),
        Some(CauseCode::LACK_OF_RESOURCES)
    );
    // Max owned PEs: 3 owned now.
    let f = net.add_pe("B", PolicyInfo::round_robin());
    assert_eq!(
        rejection_cause(&net.register(f, 0)),
        Some(CauseCode::LACK_OF_RESOURCES)
    );
    assert_eq!(net.regs[0].owned_count(), 3);
}

#[test]
fn rate_limiter_table_is_bounded() {
    let mut l = limiter::RateLimiter::new(
        RateLimit {
            per_second: 1,
            burst: 1,
        },
        2,
    );
    let t = Timestamp::from_secs(1);
    assert!(l.allow(t, pu_addr(1)));
    assert!(l.allow(t, pu_addr(2)));
    // Full table of busy users: a third is refused rather than growing the table.
    assert!(!l.allow(t, pu_addr(3)));
    assert_eq!(l.len(), 2);
    // Once the others are idle (refilled), they are evicted.
    assert!(l.allow(Timestamp::from_secs(5), pu_addr(3)));
    assert!(l.len() <= 2);
}

#[test]
fn ip_prefixes_match_by_length() {
    let p = IpPrefix::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16);
    assert!(p.contains(IpAddr::V4(Ipv4Addr::new(10, 1, 200, 3))));
    assert!(!p.contains(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 0))));
    assert!(p.contains("::ffff:10.1.2.3".parse().expect("addr")));
    assert!(!p.contains("2001:db8::1".parse().expect("addr")));
    let any6 = IpPrefix::new("::".parse().expect("addr"), 0);
    assert!(any6.contains("2001:db8::1".parse().expect("addr")));
    assert!(!any6.contains(IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

// ---------------------------------------------------------------- malformed input

#[test]
fn unknown_asap_message_type_is_reported_with_an_operation_error() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let ms = net.pu_send_raw(1, 0, &[0x7f, 0, 0, 8, 1, 2, 3, 4]);
    assert!(matches!(
        ms.as_slice(),
        [AsapMessage::Error { error }]
            if error.first_code() == Some(CauseCode::UNRECOGNIZED_MESSAGE)
                && error.causes[0].info == [0x7f, 0, 0, 8, 1, 2, 3, 4]
    ));
    // A bad length gets "invalid values".
    let ms = net.pu_send_raw(1, 0, &[0x05, 0, 0, 200]);
    assert!(matches!(
        ms.as_slice(),
        [AsapMessage::Error { error }] if error.first_code() == Some(CauseCode::INVALID_VALUES)
    ));
    // An ASAP_ERROR is never answered.
    let ms = net.pu_send_raw(1, 0, &[0x0e, 0, 0, 200]);
    assert!(ms.is_empty());
    assert_eq!(net.regs[0].stats().malformed, 3);
}

#[test]
fn oversized_messages_are_dropped_unread() {
    let mut net = Net::new(1, |_, c| c.max_message_len = 64);
    net.settle();
    let ms = net.pu_send_raw(1, 0, &[0u8; 65]);
    assert!(ms.is_empty());
    assert_eq!(net.regs[0].stats().oversized, 1);
    assert_eq!(net.regs[0].stats().malformed, 0);
}

#[test]
fn enrp_messages_from_registrars_outside_the_peer_table_are_ignored() {
    let mut net = Net::new(1, |_, c| c.discover_peers = false);
    net.settle();
    let pe = PoolElement {
        home_registrar: RegistrarId(99),
        ..net.pe_element_for(0)
    };
    let m = EnrpMessage {
        sender: RegistrarId(99),
        receiver: reg_id(0),
        body: EnrpBody::HandleUpdate {
            takeover_suggested: false,
            action: crate::wire::UpdateAction::ADD_PE,
            pool_handle: PoolHandle::from("P"),
            pool_element: pe,
        },
    };
    let now = net.now;
    net.regs[0].handle_enrp(now, EnrpOrigin::Association(AssocRef(5)), &encode_enrp(&m));
    assert_eq!(net.regs[0].handlespace().pe_count(), 0);
    assert_eq!(net.regs[0].stats().enrp_from_unknown, 1);
    // A PRESENCE from a non-static registrar does not add it either (discovery off).
    let presence = EnrpMessage {
        sender: RegistrarId(99),
        receiver: RegistrarId::UNDEFINED,
        body: EnrpBody::Presence {
            reply_required: true,
            checksum: 0xffff,
            server_information: ServerInformation {
                server_id: RegistrarId(99),
                transport: TransportParameter::sctp(
                    9901,
                    TransportUse::DATA_ONLY,
                    vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))],
                ),
            },
        },
    };
    net.regs[0].handle_enrp(now, EnrpOrigin::Multicast, &encode_enrp(&presence));
    assert_eq!(net.regs[0].peers().count(), 0);
}

impl Net {
    fn pe_element_for(&mut self, j: usize) -> PoolElement {
        while self.pes.len() <= j {
            self.add_pe("P", PolicyInfo::round_robin());
        }
        self.pe_element(j)
    }
}

fn arbitrary_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Valid headers with random bodies reach deeper into the decoders.
        (
            1u8..16,
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..160)
        )
            .prop_map(|(ty, flags, body)| {
                let len = (body.len() + 4) as u16;
                let mut v = vec![ty, flags];
                v.extend_from_slice(&len.to_be_bytes());
                v.extend(body);
                v
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics_and_queues_stay_bounded(
        msgs in proptest::collection::vec((0u8..4, arbitrary_message()), 1..40)
    ) {
        let mut net = Net::new(2, |_, c| {
            c.max_transmits = 64;
            c.max_events = 16;
        });
        net.settle();
        let pe = net.add_pe("P", PolicyInfo::round_robin());
        prop_assert!(accepted(&net.register(pe, 0)));
        let mut now = net.now;
        for (kind, bytes) in &msgs {
            now += Duration::from_millis(300);
            let r = &mut net.regs[0];
            let addrs = [pu_addr(1)];
            let origin = AsapOrigin { assoc: AssocRef(PU_BASE + 1), port: 1, addresses: &addrs };
            match kind {
                0 => r.handle_asap(now, origin, bytes),
                1 => r.handle_enrp(now, EnrpOrigin::Association(AssocRef(REG_BASE + 1)), bytes),
                2 => r.handle_enrp(now, EnrpOrigin::Multicast, bytes),
                _ => {
                    // A message that claims to come from the known peer.
                    let mut b = bytes.clone();
                    if b.len() >= 8 {
                        b[4..8].copy_from_slice(&reg_id(1).0.to_be_bytes());
                    }
                    r.handle_enrp(now, EnrpOrigin::Association(AssocRef(REG_BASE + 1)), &b);
                }
            }
            r.handle_timeout(now);
            prop_assert!(r.transmits.len() <= 64);
            prop_assert!(r.events.len() <= 16);
        }
        // The registrar still works afterwards.
        net.now = now;
        net.flush();
        let again = net.register(pe, 0);
        prop_assert!(accepted(&again), "{:?}", again);
    }
}

// ---------------------------------------------------------------- ENRP

#[test]
fn presence_announces_discover_peers_over_multicast() {
    let mut net = Net::new(3, |_, c| {
        c.static_peers.clear();
        c.enrp_multicast = true;
    });
    net.settle();
    for i in 0..3 {
        let peers: BTreeSet<RegistrarId> = net.regs[i].peers().map(|p| p.server_id).collect();
        let others: BTreeSet<RegistrarId> = (0..3).filter(|j| *j != i).map(reg_id).collect();
        assert_eq!(peers, others, "registrar {i}");
    }
    // And they exchange handle updates afterwards.
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 2)));
    assert!(net.knows(0, pe) && net.knows(1, pe));
}

#[test]
fn new_registrar_downloads_a_large_table_from_its_mentor_in_pieces_before_serving() {
    let mut net = Net::new(2, |_, c| c.max_handle_table_pes = 3);
    net.settle();
    let pes: Vec<usize> = (0..10)
        .map(|j| {
            net.add_pe(
                if j % 2 == 0 { "A" } else { "B" },
                PolicyInfo::round_robin(),
            )
        })
        .collect();
    for (n, pe) in pes.iter().enumerate() {
        assert!(accepted(&net.register(*pe, n % 2)));
    }
    // A third registrar that only knows registrar 0; it learns registrar 1 from the list.
    let mut c = base_config(2, 3);
    c.static_peers = vec![enrp_endpoint(0)];
    net.enrp_log.clear();
    let late = net.add_registrar(c);
    assert!(!net.regs[late].is_serving());
    let extra = net.add_pe("A", PolicyInfo::round_robin());
    let reg = AsapMessage::Registration {
        pool_handle: PoolHandle::from("A"),
        pool_element: net.pe_element(extra),
    };
    net.pe_send(extra, late, &reg);
    assert_eq!(net.regs[late].stats().asap_dropped_in_startup, 1);
    // Zero-latency links: the whole download happens within this flush.
    net.flush();
    assert!(
        net.regs[late].is_serving(),
        "synchronised without waiting for the hunt"
    );
    assert!(net.events_of(late).any(|e| *e
        == Event::Synchronised {
            mentor: Some(reg_id(0))
        }));
    for pe in &pes {
        assert!(net.knows(late, *pe));
        assert_eq!(net.home_at(late, *pe), net.home_at(0, *pe));
    }
    let pieces: Vec<&EnrpLog> = net
        .enrp_log
        .iter()
        .filter(|l| l.from == 0 && l.to == late && l.ty == EnrpMessageType::HANDLE_TABLE_RESPONSE)
        .collect();
    assert_eq!(pieces.len(), 4, "10 PEs in pieces of 3");
    assert!(pieces[..3].iter().all(|l| l.flags & FLAG_MORE_TO_SEND != 0));
    assert!(pieces[3].flags & FLAG_MORE_TO_SEND == 0);
    let peers: BTreeSet<RegistrarId> = net.regs[late].peers().map(|p| p.server_id).collect();
    assert_eq!(peers, [reg_id(0), reg_id(1)].into_iter().collect());
    net.run_for(Duration::from_secs(5));
    net.assert_checksums_agree();
}

/// Three registrars; registrar 2 homes two PEs and crashes.
fn crash_scenario(tweak: impl Fn(usize, &mut RegistrarConfig)) -> (Net, Vec<usize>) {
    let mut net = Net::new(3, tweak);
    net.settle();
    let pes: Vec<usize> = (0..2)
        .map(|_| net.add_pe("P", PolicyInfo::round_robin()))
        .collect();
    for pe in &pes {
        assert!(accepted(&net.register(*pe, 2)));
    }
    let other = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(other, 0)));
    net.crashed[2] = true;
    (net, pes)
}

fn assert_taken_over_by(net: &Net, winner: usize, loser: usize, pes: &[usize]) {
    for pe in pes {
        for i in [winner, loser] {
            assert_eq!(net.home_at(i, *pe), Some(reg_id(winner)), "PE {pe} at {i}");
        }
        assert_eq!(net.pes[*pe].home, Some(winner));
        assert!(net.pes[*pe].home_keep_alives >= 1);
    }
    assert_eq!(
        net.regs[winner].owned_count(),
        pes.len() + usize::from(winner == 0)
    );
    assert_eq!(net.regs[loser].owned_count(), usize::from(loser == 0));
    let completed: Vec<(usize, RegistrarId)> = net
        .events
        .iter()
        .filter_map(|(r, e)| match e {
            Event::TakeoverCompleted {
                target,
                pool_elements,
            } => {
                assert_eq!(*pool_elements, pes.len());
                Some((*r, *target))
            }
            _ => None,
        })
        .collect();
    assert_eq!(completed, vec![(winner, reg_id(2))], "exactly one takeover");
    assert!(net.events_of(loser).any(|e| *e
        == Event::TakenOverBy {
            target: reg_id(2),
            by: reg_id(winner)
        }));
    for i in [winner, loser] {
        assert!(net.regs[i].peers().all(|p| p.server_id != reg_id(2)));
    }
}

#[test]
fn crashed_registrar_is_taken_over_by_the_first_detector_and_its_pes_rehomed() {
    // Registrar 0 is slower to notice, so registrar 1 (higher identifier) initiates alone.
    let (mut net, pes) = crash_scenario(|i, c| {
        if i == 0 {
            c.max_time_no_response = Duration::from_secs(20);
        }
    });
    net.run_for(Duration::from_secs(16));
    assert_taken_over_by(&net, 1, 0, &pes);
    // The re-homed PEs stay supervised by their new home (keep-alives acknowledged).
    let before = net.pes[pes[0]].keep_alives;
    net.run_for(Duration::from_secs(30));
    assert!(net.pes[pes[0]].keep_alives >= before + 5);
    for pe in &pes {
        assert!(net.knows(0, *pe) && net.knows(1, *pe));
    }
    net.assert_checksums_agree();
}

#[test]
fn an_acknowledged_takeover_is_not_raced_even_when_it_waits_for_a_silent_peer() {
    // Registrar 2 (home of the PEs) and registrar 3 crash together. Registrar 0 notices 2
    // first; its INIT_TAKEOVER reaches registrar 1 before 1's own check, so 1 acknowledges
    // and must not start a takeover of its own, although 0's takeover only completes at its
    // expiry (3 never acknowledges). Found over real sockets, where a departed `rsp hsdump`
    // was the silent peer: both survivors took over.
    let mut net = Net::new(4, |i, c| {
        if i == 1 {
            c.max_time_no_response += Duration::from_millis(200);
        }
    });
    net.settle();
    let pes: Vec<usize> = (0..2)
        .map(|_| net.add_pe("P", PolicyInfo::round_robin()))
        .collect();
    for pe in &pes {
        assert!(accepted(&net.register(*pe, 2)));
    }
    net.crashed[2] = true;
    net.crashed[3] = true;
    net.run_for(Duration::from_secs(30));
    let completed: Vec<usize> = net
        .events
        .iter()
        .filter(
            |(_, e)| matches!(e, Event::TakeoverCompleted { target, .. } if *target == reg_id(2)),
        )
        .map(|(r, _)| *r)
        .collect();
    assert_eq!(completed, vec![0], "exactly one takeover of registrar 2");
    assert!(
        !net.events_of(1)
            .any(|e| *e == Event::TakeoverStarted { target: reg_id(2) }),
        "registrar 1 raced an acknowledged takeover"
    );
    for pe in &pes {
        assert_eq!(net.home_at(0, *pe), Some(reg_id(0)));
        assert_eq!(net.home_at(1, *pe), Some(reg_id(0)));
    }
}

#[test]
fn simultaneous_takeover_race_is_won_by_the_lower_identifier() {
    let (mut net, pes) = crash_scenario(|_, _| {});
    net.run_for(Duration::from_secs(16));
    assert!(
        net.events_of(1)
            .any(|e| *e == Event::TakeoverStarted { target: reg_id(2) })
    );
    assert!(
        net.events_of(0)
            .any(|e| *e == Event::TakeoverStarted { target: reg_id(2) })
    );
    assert!(
        net.events_of(1)
            .any(|e| *e == Event::TakeoverAborted { target: reg_id(2) })
    );
    assert_taken_over_by(&net, 0, 1, &pes);
    net.run_for(Duration::from_secs(20));
    for pe in &pes {
        assert!(net.knows(0, *pe) && net.knows(1, *pe));
    }
    net.assert_checksums_agree();
}

#[test]
fn dead_pes_of_a_crashed_registrar_are_removed_after_the_takeover() {
    let (mut net, pes) = crash_scenario(|_, _| {});
    net.pes[pes[1]].alive = false;
    net.run_for(Duration::from_secs(30));
    assert!(net.knows(0, pes[0]) && net.knows(1, pes[0]));
    assert!(!net.knows(0, pes[1]) && !net.knows(1, pes[1]));
    net.assert_checksums_agree();
}

#[test]
fn split_and_heal_converge_through_the_audit() {
    // Long liveness thresholds: the split is healed before anybody is taken over.
    let mut net = Net::new(2, |_, c| {
        c.max_time_last_heard = Duration::from_secs(60);
    });
    net.settle();
    let gone = net.add_pe("P", PolicyInfo::round_robin());
    let stays = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(gone, 0)));
    assert!(accepted(&net.register(stays, 0)));
    net.split(0, 1);
    // During the split: one deregistration and one registration at each side.
    net.deregister(gone, 0);
    let new0 = net.add_pe("P", PolicyInfo::round_robin());
    let new1 = net.add_pe("Q", PolicyInfo::random());
    assert!(accepted(&net.register(new0, 0)));
    assert!(accepted(&net.register(new1, 1)));
    assert!(net.knows(1, gone) && !net.knows(1, new0) && !net.knows(0, new1));
    net.run_for(Duration::from_secs(10));
    assert_ne!(
        net.regs[1].handlespace().ownership_checksum(reg_id(0)),
        net.regs[0].handlespace().ownership_checksum(reg_id(0))
    );
    net.heal();
    net.run_for(Duration::from_secs(6));
    assert!(!net.knows(1, gone), "the stale copy is purged");
    assert!(net.knows(1, new0) && net.knows(0, new1) && net.knows(1, stays));
    assert!(net.events_of(1).any(|e| matches!(
        e,
        Event::AuditCompleted { peer, purged: 1 } if *peer == reg_id(0)
    )));
    assert!(net.events_of(0).any(|e| matches!(
        e,
        Event::AuditCompleted { peer, purged: 0 } if *peer == reg_id(1)
    )));
    net.assert_checksums_agree();
    for i in 0..2 {
        assert_eq!(net.regs[i].handlespace().pe_count(), 3);
    }
}

#[test]
fn audit_transfers_follow_the_more_to_send_flag() {
    let mut net = Net::new(2, |_, c| {
        c.max_time_last_heard = Duration::from_secs(60);
        c.max_handle_table_pes = 2;
    });
    net.settle();
    net.split(0, 1);
    let pes: Vec<usize> = (0..5)
        .map(|_| net.add_pe("P", PolicyInfo::round_robin()))
        .collect();
    for pe in &pes {
        assert!(accepted(&net.register(*pe, 0)));
    }
    net.enrp_log.clear();
    net.heal();
    net.run_for(Duration::from_secs(5));
    for pe in &pes {
        assert!(net.knows(1, *pe));
    }
    let pieces = net
        .enrp_log
        .iter()
        .filter(|l| l.from == 0 && l.to == 1 && l.ty == EnrpMessageType::HANDLE_TABLE_RESPONSE)
        .count();
    assert_eq!(pieces, 3, "5 PEs in pieces of 2: {:#?}", net.enrp_log);
    assert!(net.enrp_log.iter().any(|l| l.from == 1
        && l.ty == EnrpMessageType::HANDLE_TABLE_REQUEST
        && l.flags & crate::wire::FLAG_OWN_CHILDREN_ONLY != 0));
    net.assert_checksums_agree();
}

#[test]
fn silent_peer_that_answers_the_reply_required_presence_is_not_taken_over() {
    let mut net = Net::new(2, |i, c| {
        if i == 1 {
            // Registrar 1 never sends PRESENCE on its own within the test...
            c.presence_interval = Duration::from_secs(3600);
        }
    });
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 1)));
    // ... but answers registrar 0's PRESENCE with flag R, so it stays.
    net.run_for(Duration::from_secs(60));
    assert!(
        net.events
            .iter()
            .all(|(_, e)| !matches!(e, Event::TakeoverStarted { .. }))
    );
    assert_eq!(net.home_at(0, pe), Some(reg_id(1)));
    assert!(net.enrp_log.iter().any(|l| l.from == 0
        && l.ty == EnrpMessageType::PRESENCE
        && l.flags & crate::wire::FLAG_REPLY_REQUIRED != 0));
}

#[test]
fn unknown_enrp_message_from_a_peer_is_reported_with_an_enrp_error() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let mut bytes = vec![0x20, 0, 0, 12];
    bytes.extend_from_slice(&reg_id(1).0.to_be_bytes());
    bytes.extend_from_slice(&reg_id(0).0.to_be_bytes());
    let now = net.now;
    net.regs[0].handle_enrp(now, EnrpOrigin::Association(AssocRef(REG_BASE + 1)), &bytes);
    let t = net.regs[0].poll_transmit().expect("an answer");
    assert_eq!(
        t.to,
        Destination::Peer {
            id: reg_id(1),
            endpoint: enrp_endpoint(1)
        }
    );
    let m = EnrpMessage::decode(&t.bytes).expect("valid").message;
    assert!(matches!(
        m.body,
        EnrpBody::Error { ref error }
            if error.first_code() == Some(CauseCode::UNRECOGNIZED_MESSAGE)
                && error.causes[0].info == bytes
    ));
    // The same from a registrar outside the peer table, or by multicast: dropped.
    bytes[4..8].copy_from_slice(&77u32.to_be_bytes());
    net.regs[0].handle_enrp(now, EnrpOrigin::Association(AssocRef(9)), &bytes);
    net.regs[0].handle_enrp(now, EnrpOrigin::Multicast, &bytes);
    assert!(net.regs[0].poll_transmit().is_none());
    assert_eq!(net.regs[0].stats().malformed, 3);
}

#[test]
fn takeover_is_aborted_when_the_target_speaks_again() {
    let mut net = Net::new(3, |i, c| {
        if i == 0 {
            c.max_time_last_heard = Duration::from_secs(1);
            c.max_time_no_response = Duration::from_secs(1);
        } else {
            c.max_time_last_heard = Duration::from_secs(60);
        }
    });
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 1)));
    net.split(0, 1);
    net.split(0, 2);
    net.run_for(Duration::from_millis(2500));
    for target in [reg_id(1), reg_id(2)] {
        assert!(net.regs[0].is_taking_over(target));
    }
    net.heal();
    net.run_for(Duration::from_secs(3));
    for target in [reg_id(1), reg_id(2)] {
        assert!(!net.regs[0].is_taking_over(target));
        assert!(
            net.events_of(0)
                .any(|e| *e == Event::TakeoverAborted { target })
        );
    }
    net.run_for(Duration::from_secs(10));
    assert!(
        net.events
            .iter()
            .all(|(_, e)| !matches!(e, Event::TakeoverCompleted { .. }))
    );
    assert_eq!(net.home_at(0, pe), Some(reg_id(1)));
    assert_eq!(net.pes[pe].home_keep_alives, 0);
    net.assert_checksums_agree();
}

#[test]
fn pe_moving_to_another_home_changes_owner_everywhere() {
    let mut net = Net::new(3, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    assert!(accepted(&net.register(pe, 2)));
    for i in 0..3 {
        assert_eq!(net.home_at(i, pe), Some(reg_id(2)));
        assert_eq!(net.regs[i].handlespace().pe_count(), 1);
    }
    assert_eq!(net.regs[0].owned_count(), 0);
    assert_eq!(net.regs[2].owned_count(), 1);
    // The old home no longer supervises it.
    let before = net.pes[pe].inbox.iter().filter(|(r, _)| *r == 0).count();
    net.run_for(Duration::from_secs(20));
    let after = net.pes[pe].inbox.iter().filter(|(r, _)| *r == 0).count();
    assert_eq!(before, after);
    assert!(net.knows(1, pe));
    net.assert_checksums_agree();
}

// ---------------------------------------------------------------- stateful fuzzing

/// The registrar's own bookkeeping agrees with its handlespace, and queues are bounded.
fn check_invariants(r: &Registrar) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.owned.len(), r.handlespace.owned_count(r.id));
    for (h, id) in r.owned.keys() {
        let pe = r.handlespace.pool_element(h.as_bytes(), *id);
        prop_assert!(pe.is_some_and(|p| p.home_registrar == r.id));
    }
    let mut in_assocs = 0;
    for (a, keys) in &r.by_assoc {
        prop_assert!(!keys.is_empty());
        for k in keys {
            prop_assert_eq!(r.owned.get(k).and_then(|o| o.assoc), Some(*a));
            in_assocs += 1;
        }
    }
    prop_assert_eq!(
        in_assocs,
        r.owned.values().filter(|o| o.assoc.is_some()).count()
    );
    let counted: usize = r.per_address.values().sum();
    prop_assert_eq!(
        counted,
        r.owned.values().filter(|o| o.address.is_some()).count()
    );
    prop_assert!(r.per_address.values().all(|n| *n > 0));
    prop_assert!(r.transmits.len() <= r.config.max_transmits);
    prop_assert!(r.events.len() <= r.config.max_events);
    prop_assert!(r.peers.len() <= r.config.max_peers);
    prop_assert!(r.cursors.len() <= 2 * r.config.max_peers);
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Register {
        pe: u8,
        pool: u8,
        rr: bool,
        via: u8,
    },
    Deregister {
        pe: u8,
        pool: u8,
        via: u8,
    },
    Unreachable {
        pe: u8,
        pool: u8,
        pu: u8,
    },
    Resolve {
        pool: u8,
        pu: u8,
    },
    AssocLost {
        via: u8,
    },
    PeerUpdate {
        add: bool,
        pe: u8,
        pool: u8,
        home: u8,
    },
    Advance {
        centis: u16,
    },
    Split,
    Heal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 0u8..3, any::<bool>(), 0u8..6)
            .prop_map(|(pe, pool, rr, via)| Op::Register { pe, pool, rr, via }),
        1 => (0u8..8, 0u8..3, 0u8..6).prop_map(|(pe, pool, via)| Op::Deregister { pe, pool, via }),
        1 => (0u8..8, 0u8..3, 0u8..3).prop_map(|(pe, pool, pu)| Op::Unreachable { pe, pool, pu }),
        1 => (0u8..3, 0u8..3).prop_map(|(pool, pu)| Op::Resolve { pool, pu }),
        1 => (0u8..6).prop_map(|via| Op::AssocLost { via }),
        2 => (any::<bool>(), 0u8..8, 0u8..3, 0u8..3)
            .prop_map(|(add, pe, pool, home)| Op::PeerUpdate { add, pe, pool, home }),
        2 => (0u16..800).prop_map(|centis| Op::Advance { centis }),
        1 => Just(Op::Split),
        1 => Just(Op::Heal),
    ]
}

fn fuzz_pe(pe: u8, rr: bool, via: u8, home: RegistrarId) -> PoolElement {
    PoolElement {
        identifier: PeIdentifier(u32::from(pe) + 1),
        home_registrar: home,
        registration_life: 20_000,
        user_transport: TransportParameter::sctp(
            7000,
            TransportUse::DATA_ONLY,
            vec![pe_addr(usize::from(via))],
        ),
        policy: if rr {
            PolicyInfo::round_robin()
        } else {
            PolicyInfo::least_used(u32::from(pe))
        },
        asap_transport: Some(TransportParameter::sctp(
            PE_PORT,
            TransportUse::DATA_ONLY,
            vec![pe_addr(usize::from(via))],
        )),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn registrar_bookkeeping_survives_arbitrary_operation_sequences(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut net = Net::new(2, |_, c| {
            c.max_owned_pes = 6;
            c.max_pes_per_address = 3;
            c.max_transmits = 256;
        });
        net.settle();
        // Four answering PEs behind associations 0..4; 4 and 5 stay silent.
        for _ in 0..4 {
            net.add_pe("X", PolicyInfo::round_robin());
        }
        let pools = ["A", "B", "C"];
        for op in ops {
            let now = net.now;
            match op {
                Op::Register { pe, pool, rr, via } => {
                    let m = AsapMessage::Registration {
                        pool_handle: PoolHandle::from(pools[usize::from(pool)]),
                        pool_element: fuzz_pe(pe, rr, via, RegistrarId::UNDEFINED),
                    };
                    let addrs = [pe_addr(usize::from(via))];
                    net.regs[0].handle_asap(
                        now,
                        AsapOrigin { assoc: AssocRef(u64::from(via)), port: PE_PORT, addresses: &addrs },
                        &encode_asap(&m),
                    );
                }
                Op::Deregister { pe, pool, via } => {
                    let m = AsapMessage::Deregistration {
                        pool_handle: PoolHandle::from(pools[usize::from(pool)]),
                        identifier: PeIdentifier(u32::from(pe) + 1),
                    };
                    let addrs = [pe_addr(usize::from(via))];
                    net.regs[0].handle_asap(
                        now,
                        AsapOrigin { assoc: AssocRef(u64::from(via)), port: PE_PORT, addresses: &addrs },
                        &encode_asap(&m),
                    );
                }
                Op::Unreachable { pe, pool, pu } => {
                    let m = AsapMessage::EndpointUnreachable {
                        pool_handle: PoolHandle::from(pools[usize::from(pool)]),
                        identifier: PeIdentifier(u32::from(pe) + 1),
                    };
                    net.pu_send(u64::from(pu), 0, &m);
                }
                Op::Resolve { pool, pu } => {
                    let ms = net.resolve(u64::from(pu), 0, pools[usize::from(pool)], None);
                    prop_assert_eq!(ms.len(), 1);
                    if let AsapMessage::HandleResolutionResponse { pool_elements, .. } = &ms[0] {
                        prop_assert!(pool_elements.len() <= 3);
                    }
                }
                Op::AssocLost { via } => {
                    net.regs[0].handle_association_lost(now, AssocRef(u64::from(via)));
                }
                Op::PeerUpdate { add, pe, pool, home } => {
                    let home = [reg_id(1), reg_id(0), RegistrarId(99)][usize::from(home)];
                    let m = EnrpMessage {
                        sender: reg_id(1),
                        receiver: reg_id(0),
                        body: EnrpBody::HandleUpdate {
                            takeover_suggested: false,
                            action: if add {
                                crate::wire::UpdateAction::ADD_PE
                            } else {
                                crate::wire::UpdateAction::DEL_PE
                            },
                            pool_handle: PoolHandle::from(pools[usize::from(pool)]),
                            pool_element: fuzz_pe(pe, true, 4, home),
                        },
                    };
                    net.regs[0].handle_enrp(
                        now,
                        EnrpOrigin::Association(AssocRef(REG_BASE + 1)),
                        &encode_enrp(&m),
                    );
                }
                Op::Advance { centis } => {
                    net.run_for(Duration::from_millis(u64::from(centis) * 10));
                }
                Op::Split => net.split(0, 1),
                Op::Heal => net.heal(),
            }
            net.flush();
            check_invariants(&net.regs[0])?;
            check_invariants(&net.regs[1])?;
        }
        // Whatever happened, a healed network converges.
        net.heal();
        net.run_for(Duration::from_secs(30));
        check_invariants(&net.regs[0])?;
        check_invariants(&net.regs[1])?;
        net.assert_checksums_agree();
    }
}

#[derive(Debug, Clone)]
enum NetOp {
    Register { pe: u8, pool: u8, reg: u8 },
    Deregister { pe: u8 },
    KillPe { pe: u8 },
    Unreachable { pe: u8, reg: u8, pu: u8 },
    Split { a: u8, b: u8 },
    Heal,
    Crash { reg: u8 },
    Advance { centis: u16 },
}

fn net_op() -> impl Strategy<Value = NetOp> {
    prop_oneof![
        4 => (0u8..6, 0u8..2, 0u8..3).prop_map(|(pe, pool, reg)| NetOp::Register { pe, pool, reg }),
        1 => (0u8..6).prop_map(|pe| NetOp::Deregister { pe }),
        1 => (0u8..6).prop_map(|pe| NetOp::KillPe { pe }),
        1 => (0u8..6, 0u8..3, 0u8..3).prop_map(|(pe, reg, pu)| NetOp::Unreachable { pe, reg, pu }),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| NetOp::Split { a, b }),
        1 => Just(NetOp::Heal),
        1 => (0u8..3).prop_map(|reg| NetOp::Crash { reg }),
        3 => (0u16..1500).prop_map(|centis| NetOp::Advance { centis }),
    ]
}

fn pe_set(r: &Registrar) -> Vec<(PoolHandle, PeIdentifier, RegistrarId)> {
    let hs = r.handlespace();
    hs.pool_handles()
        .flat_map(|h| {
            hs.pool_elements(h.as_bytes())
                .map(move |p| (h.clone(), p.identifier, p.home_registrar))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn registrars_converge_after_arbitrary_splits_crashes_and_registrations(
        ops in proptest::collection::vec(net_op(), 1..40)
    ) {
        let mut net = Net::new(3, |_, _| {});
        net.settle();
        for j in 0..6 {
            net.add_pe(["A", "B"][j % 2], PolicyInfo::round_robin());
        }
        let mut crashed_one = false;
        for op in ops {
            match op {
                NetOp::Register { pe, pool, reg } => {
                    let (j, reg) = (usize::from(pe), usize::from(reg));
                    let _ = pool;
                    if net.pes[j].alive {
                        let m = AsapMessage::Registration {
                            pool_handle: net.pes[j].handle.clone(),
                            pool_element: net.pe_element(j),
                        };
                        net.pe_send(j, reg, &m);
                    }
                }
                NetOp::Deregister { pe } => {
                    let j = usize::from(pe);
                    if let Some(home) = net.pes[j].home {
                        let m = AsapMessage::Deregistration {
                            pool_handle: net.pes[j].handle.clone(),
                            identifier: net.pes[j].id,
                        };
                        net.pe_send(j, home, &m);
                    }
                }
                NetOp::KillPe { pe } => net.pes[usize::from(pe)].alive = false,
                NetOp::Unreachable { pe, reg, pu } => {
                    let reg = usize::from(reg);
                    if !net.crashed[reg] {
                        net.report_unreachable(u64::from(pu), reg, usize::from(pe));
                    }
                }
                NetOp::Split { a, b } => {
                    if a != b {
                        net.split(usize::from(a), usize::from(b));
                    }
                }
                NetOp::Heal => net.heal(),
                NetOp::Crash { reg } => {
                    if !crashed_one {
                        crashed_one = true;
                        net.crashed[usize::from(reg)] = true;
                    }
                }
                NetOp::Advance { centis } => net.run_for(Duration::from_millis(u64::from(centis) * 10)),
            }
            net.flush();
            for r in &net.regs {
                check_invariants(r)?;
            }
        }
        net.heal();
        net.run_for(Duration::from_secs(90));
        let live: Vec<usize> = (0..3).filter(|i| !net.crashed[*i]).collect();
        let first = pe_set(&net.regs[live[0]]);
        for i in &live[1..] {
            prop_assert_eq!(&pe_set(&net.regs[*i]), &first, "registrar {} differs", i);
        }
        // Every live PE registered somewhere is known, every dead one is gone.
        for (h, id, home) in &first {
            prop_assert!(net.reg_by_id(*home).is_some_and(|r| !net.crashed[r]), "{:?} homed at a dead registrar", (h, id));
            let j = net.pes.iter().position(|p| p.id == *id).expect("known PE");
            prop_assert!(net.pes[j].alive, "dead PE {:?} survived", id);
        }
        net.assert_checksums_agree();
    }
}

#[test]
fn full_split_with_mutual_takeover_heals_to_one_home_per_pe() {
    let mut net = Net::new(2, |_, _| {});
    net.settle();
    let a = net.add_pe("P", PolicyInfo::round_robin());
    let b = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(a, 0)));
    assert!(accepted(&net.register(b, 1)));
    net.split(0, 1);
    net.run_for(Duration::from_secs(30));
    // Each side took the other over and now claims both PEs.
    assert_eq!(net.regs[0].owned_count(), 2);
    assert_eq!(net.regs[1].owned_count(), 2);
    net.heal();
    net.run_for(Duration::from_secs(30));
    assert_eq!(pe_set(&net.regs[0]), pe_set(&net.regs[1]));
    assert_eq!(net.regs[0].owned_count() + net.regs[1].owned_count(), 2);
    // The lower identifier keeps the conflicting PEs.
    assert_eq!(net.home_at(1, a), Some(reg_id(0)));
    assert_eq!(net.home_at(1, b), Some(reg_id(0)));
    net.assert_checksums_agree();
    // The PE's own choice wins afterwards: b re-registers with registrar 1.
    assert!(accepted(&net.register(b, 1)));
    assert_eq!(net.home_at(0, b), Some(reg_id(1)));
    assert_eq!(net.regs[0].owned_count(), 1);
    assert_eq!(net.regs[1].owned_count(), 1);
    net.run_for(Duration::from_secs(10));
    net.assert_checksums_agree();
}

#[test]
fn keep_alive_acks_from_other_endpoints_do_not_keep_a_dead_pe_alive() {
    let mut net = Net::new(1, |_, _| {});
    net.settle();
    let pe = net.add_pe("P", PolicyInfo::round_robin());
    assert!(accepted(&net.register(pe, 0)));
    net.pes[pe].alive = false;
    let forged = AsapMessage::EndpointKeepAliveAck {
        pool_handle: PoolHandle::from("P"),
        identifier: net.pes[pe].id,
    };
    for _ in 0..12 {
        net.run_for(Duration::from_secs(1));
        net.pu_send(7, 0, &forged);
    }
    assert!(!net.knows(0, pe));
    assert!(net.regs[0].stats().unexpected >= 12);
}
