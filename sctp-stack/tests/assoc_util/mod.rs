//! Shared helpers of the association tests: two endpoints on a simulated network.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use sctp_stack::wire::Ppid;

use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::{
    AssociationConfig, AssociationId, AssociationStatus, ConnectRequest, Endpoint, EndpointConfig,
    Event, Message, PrPolicy,
};

pub const A: usize = 0;
pub const B: usize = 1;
pub const PORT: u16 = 5000;

pub fn addr_a() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}

pub fn addr_b() -> IpAddr {
    "198.18.0.2".parse().unwrap()
}

pub fn endpoint(seed: u8, assoc: AssociationConfig) -> Endpoint {
    let mut c = EndpointConfig::with_seed([seed; 32]);
    c.association = assoc;
    Endpoint::new(c).unwrap()
}

/// A test configuration: fast timers so scenarios run in little virtual time.
pub fn fast_config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.rto_initial = Duration::from_millis(100);
    c.rto_min = Duration::from_millis(50);
    c.rto_max = Duration::from_secs(2);
    c.heartbeat_interval = Some(Duration::from_secs(5));
    c.shutdown_guard = Duration::from_secs(10);
    c.nodelay = true;
    c
}

pub struct Pair {
    pub net: Network,
    /// The client's association (on node A).
    pub a: AssociationId,
    /// The server's association (on node B), once connected.
    pub b: Option<AssociationId>,
}

/// A network with a client A and a listening server B, link as given.
pub fn network(
    seed: u64,
    ca: AssociationConfig,
    cb: AssociationConfig,
    link: LinkConfig,
) -> Network {
    let mut net = Network::new(seed);
    net.add_node(endpoint((seed as u8).wrapping_add(1), ca), &[addr_a()]);
    net.add_node(endpoint((seed as u8).wrapping_add(101), cb), &[addr_b()]);
    net.set_links(A, B, link);
    net.node(B).endpoint.listen(PORT).unwrap();
    net
}

impl Pair {
    /// Connects A to B and runs until both report `Connected`.
    pub fn connected(
        seed: u64,
        ca: AssociationConfig,
        cb: AssociationConfig,
        link: LinkConfig,
    ) -> Pair {
        let mut net = network(seed, ca, cb, link);
        let now = net.now();
        let a = net
            .node(A)
            .endpoint
            .connect(now, ConnectRequest::new(addr_b(), PORT))
            .unwrap();
        let ok = net.run_until(Duration::from_secs(60), |n| {
            n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
        });
        assert!(ok, "handshake did not complete");
        let b = net.node(B).assoc_with_event(&Event::Connected);
        net.node(A).take_events();
        net.node(B).take_events();
        Pair { net, a, b }
    }

    pub fn b(&self) -> AssociationId {
        self.b.expect("server association")
    }

    pub fn send(
        &mut self,
        node: usize,
        stream: u16,
        data: &[u8],
    ) -> Result<(), sctp_stack::SendError> {
        let id = if node == A { self.a } else { self.b() };
        self.net
            .node(node)
            .endpoint
            .association(id)
            .expect("association")
            .send(stream, Ppid(0), data, sctp_stack::SendOptions::default())
    }

    pub fn recv_all(&mut self, node: usize) -> Vec<Message> {
        let id = if node == A { self.a } else { self.b() };
        let mut out = Vec::new();
        if let Some(mut assoc) = self.net.node(node).endpoint.association(id) {
            while let Some(m) = assoc.recv() {
                out.push(m);
            }
        }
        out
    }
}

use std::sync::{Arc, Mutex};

use sctp_stack::sim::Seen;
use sctp_stack::time::Timestamp;

/// Chunk type codes used by the tests.
pub mod ct {
    pub const DATA: u8 = 0;
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const SACK: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const HEARTBEAT_ACK: u8 = 5;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const COOKIE_ECHO: u8 = 10;
    pub const COOKIE_ACK: u8 = 11;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// One chunk of a recorded or hand-built packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub ty: u8,
    pub flags: u8,
    pub value: Vec<u8>,
}

/// A packet seen on the simulated network.
#[derive(Debug, Clone)]
pub struct Rec {
    pub now: Timestamp,
    pub from: usize,
    pub to: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub chunks: Vec<Chunk>,
    pub len: usize,
}

impl Rec {
    pub fn has(&self, ty: u8) -> bool {
        self.chunks.iter().any(|c| c.ty == ty)
    }
    pub fn first(&self, ty: u8) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.ty == ty)
    }
}

pub fn parse(pkt: &[u8]) -> (u16, u16, u32, Vec<Chunk>) {
    let sp = u16::from_be_bytes([pkt[0], pkt[1]]);
    let dp = u16::from_be_bytes([pkt[2], pkt[3]]);
    let vtag = u32::from_be_bytes(pkt[4..8].try_into().unwrap());
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 4 <= pkt.len() {
        let len = u16::from_be_bytes([pkt[at + 2], pkt[at + 3]]) as usize;
        assert!(len >= 4 && at + len <= pkt.len(), "malformed chunk sent");
        chunks.push(Chunk {
            ty: pkt[at],
            flags: pkt[at + 1],
            value: pkt[at + 4..at + len].to_vec(),
        });
        at += (len + 3) & !3;
    }
    (sp, dp, vtag, chunks)
}

/// Builds a packet with a correct CRC32c.
pub fn build(src_port: u16, dst_port: u16, vtag: u32, chunks: &[Chunk]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for c in chunks {
        p.push(c.ty);
        p.push(c.flags);
        p.extend_from_slice(&((4 + c.value.len()) as u16).to_be_bytes());
        p.extend_from_slice(&c.value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    let crc = crc32c::crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

pub fn chunk(ty: u8, flags: u8, value: &[u8]) -> Chunk {
    Chunk {
        ty,
        flags,
        value: value.to_vec(),
    }
}

/// The value of a DATA chunk.
pub fn data_value(tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&ssn.to_be_bytes());
    v.extend_from_slice(&ppid.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The value of an INIT or INIT ACK chunk with optional parameters (already encoded).
pub fn init_value(tag: u32, a_rwnd: u32, os: u16, mis: u16, tsn: u32, params: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&a_rwnd.to_be_bytes());
    v.extend_from_slice(&os.to_be_bytes());
    v.extend_from_slice(&mis.to_be_bytes());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(params);
    v
}

/// A TLV (parameter or cause), padded.
pub fn tlv(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&ty.to_be_bytes());
    v.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    v.extend_from_slice(value);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// The cause codes of an ABORT or ERROR chunk value.
pub fn cause_codes(value: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= value.len() {
        out.push(u16::from_be_bytes([value[at], value[at + 1]]));
        let len = u16::from_be_bytes([value[at + 2], value[at + 3]]) as usize;
        if len < 4 {
            break;
        }
        at += (len + 3) & !3;
    }
    out
}

/// A [`record`] filter that drops the first packet node `from` sends with a chunk of type
/// `ty`, once.
pub fn drop_first_once(from: usize, ty: u8) -> impl FnMut(&Rec) -> bool + Send + 'static {
    let mut dropped = false;
    move |r| {
        if !dropped && r.from == from && r.has(ty) {
            dropped = true;
            return true;
        }
        false
    }
}

/// Records every packet sent on the network (and lets `drop` decide which to drop).
pub fn record(
    net: &mut Network,
    mut drop: impl FnMut(&Rec) -> bool + Send + 'static,
) -> Arc<Mutex<Vec<Rec>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    net.set_filter(move |s: Seen<'_>| {
        let (src_port, dst_port, vtag, chunks) = parse(s.data);
        let r = Rec {
            now: s.now,
            from: s.from,
            to: s.to,
            src: s.src,
            dst: s.dst,
            src_port,
            dst_port,
            vtag,
            chunks,
            len: s.data.len(),
        };
        let keep = !drop(&r);
        l.lock().unwrap().push(r);
        keep
    });
    log
}

/// Injects a packet from `from_node`'s address to the other node's address.
pub fn inject(net: &mut Network, from_node: usize, pkt: &[u8]) {
    let (src, dst) = if from_node == A {
        (addr_a(), addr_b())
    } else {
        (addr_b(), addr_a())
    };
    net.inject(src, dst, 0, pkt);
}

/// Tags seen so far: (tag used A->B, tag used B->A), i.e. (B's local tag, A's local tag).
pub fn tags(log: &Arc<Mutex<Vec<Rec>>>) -> (u32, u32) {
    let l = log.lock().unwrap();
    let ab = l
        .iter()
        .rev()
        .find(|r| r.from == A && r.vtag != 0 && !r.has(ct::INIT))
        .map(|r| r.vtag)
        .unwrap();
    let ba = l
        .iter()
        .rev()
        .find(|r| r.from == B && r.vtag != 0)
        .map(|r| r.vtag)
        .unwrap();
    (ab, ba)
}

impl Pair {
    /// Connects while recording.
    pub fn connected_recorded(
        seed: u64,
        ca: AssociationConfig,
        cb: AssociationConfig,
        link: LinkConfig,
    ) -> (Pair, Arc<Mutex<Vec<Rec>>>) {
        let mut net = network(seed, ca, cb, link);
        let log = record(&mut net, |_| false);
        let mut p = Pair::handshake(net, Duration::from_secs(60));
        p.net.node(A).take_events();
        p.net.node(B).take_events();
        (p, log)
    }

    /// Connects A to B on `net` (set up by [`network`], maybe with a [`record`] filter) and
    /// runs it until both ends report `Connected`, which must happen within `limit`. The
    /// `Connected` events stay queued.
    pub fn handshake(mut net: Network, limit: Duration) -> Pair {
        let now = net.now();
        let a = net
            .node(A)
            .endpoint
            .connect(now, ConnectRequest::new(addr_b(), PORT))
            .unwrap();
        let ok = net.run_until(limit, |n| {
            n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
        });
        assert!(ok, "handshake did not complete");
        let b = net.node(B).assoc_with_event(&Event::Connected);
        Pair { net, a, b }
    }

    pub fn assoc(&mut self, node: usize) -> sctp_stack::AssociationMut<'_> {
        let id = if node == A { self.a } else { self.b() };
        self.net
            .node(node)
            .endpoint
            .association(id)
            .expect("association alive")
    }
}

/// SCTP-AUTH (RFC 4895) computed independently of the crate, so tests can forge correctly
/// authenticated packets from recorded INIT and INIT ACK chunks.
pub mod auth {
    use hmac::{Hmac, Mac};

    pub const AUTH: u8 = 0x0F;
    pub const ASCONF: u8 = 0xC1;
    pub const ASCONF_ACK: u8 = 0x80;

    /// The key vector of an INIT or INIT ACK value: its RANDOM, CHUNKS and HMAC-ALGO
    /// parameters, headers included, unpadded, in that order (RFC 4895 §6.1).
    pub fn key_vector(init_value: &[u8]) -> Vec<u8> {
        let mut found: [Option<Vec<u8>>; 3] = [None, None, None];
        let mut at = 16;
        while at + 4 <= init_value.len() {
            let ty = u16::from_be_bytes([init_value[at], init_value[at + 1]]);
            let len = u16::from_be_bytes([init_value[at + 2], init_value[at + 3]]) as usize;
            if len < 4 || at + len > init_value.len() {
                break;
            }
            let slot = match ty {
                0x8002 => Some(0),
                0x8003 => Some(1),
                0x8004 => Some(2),
                _ => None,
            };
            if let Some(i) = slot {
                found[i] = Some(init_value[at..at + len].to_vec());
            }
            at += (len + 3) & !3;
        }
        found.into_iter().flatten().flatten().collect()
    }

    /// Shared key || smaller vector || larger vector (compared as big-endian numbers).
    pub fn association_key(shared: &[u8], v1: &[u8], v2: &[u8]) -> Vec<u8> {
        let strip = |v: &[u8]| {
            v.iter()
                .position(|b| *b != 0)
                .map_or(&[][..], |i| &v[i..])
                .to_vec()
        };
        let (s1, s2) = (strip(v1), strip(v2));
        let first_is_v1 = (s1.len(), &s1, v1.len()) < (s2.len(), &s2, v2.len());
        let mut k = shared.to_vec();
        if first_is_v1 {
            k.extend_from_slice(v1);
            k.extend_from_slice(v2);
        } else {
            k.extend_from_slice(v2);
            k.extend_from_slice(v1);
        }
        k
    }

    pub fn hmac(id: u16, key: &[u8], data: &[u8]) -> Vec<u8> {
        match id {
            1 => {
                let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            _ => {
                let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// A packet of `before`, an AUTH chunk (key `key_id`, algorithm `hmac_id`) signed with
    /// `assoc_key`, then `after`; correct CRC32c. `corrupt` flips one HMAC bit.
    #[allow(clippy::too_many_arguments)]
    pub fn build_authenticated(
        sp: u16,
        dp: u16,
        vtag: u32,
        key_id: u16,
        hmac_id: u16,
        assoc_key: &[u8],
        before: &[super::Chunk],
        after: &[super::Chunk],
        corrupt: bool,
    ) -> Vec<u8> {
        let hlen = if hmac_id == 1 { 20 } else { 32 };
        let mut v = Vec::new();
        v.extend_from_slice(&key_id.to_be_bytes());
        v.extend_from_slice(&hmac_id.to_be_bytes());
        v.extend_from_slice(&vec![0u8; hlen]);
        let mut chunks = before.to_vec();
        chunks.push(super::chunk(AUTH, 0, &v));
        chunks.extend_from_slice(after);
        let mut p = super::build(sp, dp, vtag, &chunks);
        // Locate the AUTH chunk: after the header and the `before` chunks.
        let mut at = 12;
        for c in before {
            at += (4 + c.value.len() + 3) & !3;
        }
        let mac = hmac(hmac_id, assoc_key, &p[at..]);
        p[at + 8..at + 8 + hlen].copy_from_slice(&mac[..hlen]);
        if corrupt {
            p[at + 8] ^= 0x01;
        }
        p[8..12].fill(0);
        let crc = crc32c::crc32c(&p);
        p[8..12].copy_from_slice(&crc.to_le_bytes());
        p
    }

    /// An IPv4 address parameter.
    pub fn ipv4_param(a: std::net::Ipv4Addr) -> Vec<u8> {
        super::tlv(5, &a.octets())
    }

    /// An ASCONF value: serial, address parameter, then `params` (already encoded).
    pub fn asconf_value(serial: u32, lookup: std::net::Ipv4Addr, params: &[Vec<u8>]) -> Vec<u8> {
        let mut v = serial.to_be_bytes().to_vec();
        v.extend_from_slice(&ipv4_param(lookup));
        for p in params {
            v.extend_from_slice(p);
        }
        v
    }

    /// An Add/Delete/Set Primary IP Address request parameter (0xC001/0xC002/0xC004).
    pub fn request(ty: u16, corr: u32, a: std::net::Ipv4Addr) -> Vec<u8> {
        let mut v = corr.to_be_bytes().to_vec();
        v.extend_from_slice(&ipv4_param(a));
        super::tlv(ty, &v)
    }

    /// The (type, correlation id, first cause code) of each response in an ASCONF ACK value.
    pub fn ack_responses(value: &[u8]) -> Vec<(u16, u32, Option<u16>)> {
        let mut out = Vec::new();
        let mut at = 4;
        while at + 8 <= value.len() {
            let ty = u16::from_be_bytes([value[at], value[at + 1]]);
            let len = u16::from_be_bytes([value[at + 2], value[at + 3]]) as usize;
            if len < 8 || at + len > value.len() {
                break;
            }
            let corr = u32::from_be_bytes(value[at + 4..at + 8].try_into().unwrap());
            let cause = (len >= 12).then(|| u16::from_be_bytes([value[at + 8], value[at + 9]]));
            out.push((ty, corr, cause));
            at += (len + 3) & !3;
        }
        out
    }
}

// ---- shared by the I-DATA, PR-SCTP and multihoming test files ----

/// Chunk type codes of the extensions (RFC 8260 §2.1, §2.3; RFC 3758 §3.2).
pub const I_DATA: u8 = 64;
/// FORWARD TSN (RFC 3758 §3.2).
pub const FORWARD_TSN: u8 = 192;
/// I-FORWARD TSN (RFC 8260 §2.3.1).
pub const I_FORWARD_TSN: u8 = 194;
/// The Supported Extensions parameter (RFC 5061 §4.2.7).
pub const SUPPORTED_EXTENSIONS: u16 = 0x8008;

/// The packet log filled by [`record`].
pub type Log = Arc<Mutex<Vec<Rec>>>;

/// The status of node `node`'s association, which must still exist.
pub fn status(p: &mut Pair, node: usize) -> AssociationStatus {
    p.assoc(node).status().expect("association alive")
}

/// How many chunks of type `ty` node `from` sent.
pub fn count_type(log: &Log, from: usize, ty: u8) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == from)
        .map(|r| r.chunks.iter().filter(|c| c.ty == ty).count())
        .sum()
}

/// The value of an I-DATA chunk (RFC 8260 §2.1): TSN, stream, reserved, MID, then the PPID
/// (first fragment) or FSN in `word`, then the payload.
pub fn idata_value(tsn: u32, stream: u16, mid: u32, word: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&mid.to_be_bytes());
    v.extend_from_slice(&word.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A timed PR-SCTP policy with a lifetime of `ms` milliseconds.
pub fn timed(ms: u64) -> PrPolicy {
    PrPolicy::Timed {
        lifetime: Duration::from_millis(ms),
    }
}

/// Parses an address literal.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The multihomed addresses: A's 198.18.0.1 and 198.18.1.1; B's 198.18.0.2 and 198.18.1.2.
pub fn a1() -> IpAddr {
    ip("198.18.0.1")
}
/// A's second address.
pub fn a2() -> IpAddr {
    ip("198.18.1.1")
}
/// B's first address.
pub fn b1() -> IpAddr {
    ip("198.18.0.2")
}
/// B's second address.
pub fn b2() -> IpAddr {
    ip("198.18.1.2")
}

/// An endpoint with the given seed and association config on the `locals` addresses.
pub fn endpoint_at(seed: u8, assoc: AssociationConfig, locals: Vec<IpAddr>) -> Endpoint {
    let mut c = EndpointConfig::with_seed([seed; 32]);
    c.association = assoc;
    c.local_addresses = locals;
    Endpoint::new(c).unwrap()
}
