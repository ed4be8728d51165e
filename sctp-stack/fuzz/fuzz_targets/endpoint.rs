//! The whole endpoint on arbitrary packet sequences (STYLE.md §11, issue item 10).
//!
//! Two endpoints, a client A and a listener B, first complete a real handshake. The input
//! is then read as a program of operations: packets injected into either side (raw bytes,
//! or chunks of fuzzer-chosen types and values behind a correct common header so they reach
//! the association), INITs and COOKIE ECHOs from random sources at the listener (under
//! `cfg(fuzzing)` cookies are not authenticated, so forged cookies create associations),
//! clock advances, delivery of the endpoints' own packets (with loss and duplication), and
//! user commands (send with any PR-SCTP policy, receive, shutdown, abort, connect). PR-SCTP
//! is negotiated, so fuzzer-chosen FORWARD TSN chunks reach the receiver.
//!
//! AUTH (RFC 4895) and Add-IP (RFC 5061) are negotiated too; B requires DATA to be
//! authenticated. Under `cfg(fuzzing)` HMACs are not checked, so AUTH chunks the fuzzer
//! builds with a known key id and HMAC length let its DATA, ASCONF and ASCONF ACK chunks
//! (with serials near the fixed initial TSN) reach the association; key changes and address
//! requests are user commands.
//!
//! The first input byte picks the mode: I-DATA (RFC 8260) on both sides or not, and the
//! stream scheduler. With I-DATA, fuzzer-built I-DATA chunks (TSNs near the fixed initial
//! TSN, any MID and FSN, huge MID gaps) and I-FORWARD TSN chunks reach B's association,
//! DATA chunks abort it, and the user changes stream priorities and weights.
//!
//! RE-CONFIG (RFC 6525) is negotiated (the default): fuzzer-built RE-CONFIG chunks with every
//! parameter type (request sequence numbers near the fixed initial TSN, stream lists short,
//! long or invalid, any Sender's Last Assigned TSN and result) reach either association, and
//! the users reset streams, the association, or add streams.
//!
//! Invariants checked after every operation: nothing panics; the association count stays
//! bounded; every association's send and receive buffers stay within their configured
//! limits; `poll_timeout` is never in the past after `handle_timeout`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sctp_stack::time::Timestamp;
use sctp_stack::wire::{ChunkType, Ppid};
use sctp_stack::{
    AssociationConfig, AssociationId, ConnectRequest, Datagram, Endpoint, EndpointConfig, Event,
    PrPolicy, SendOptions, StreamScheduler,
};

const PORT: u16 = 5000;
const A_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const B_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
/// A second address of A, which the fuzzer may add with Add-IP.
const A2_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
const MAX_ASSOCS: usize = 64;

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
}

/// The per-run mode from the first input byte: (I-DATA, scheduler).
#[derive(Clone, Copy)]
struct Mode {
    i_data: bool,
    scheduler: StreamScheduler,
}

impl Mode {
    fn from_byte(b: u8) -> Mode {
        Mode {
            i_data: b & 1 == 1,
            scheduler: [
                StreamScheduler::RoundRobin,
                StreamScheduler::Fcfs,
                StreamScheduler::Priority,
                StreamScheduler::WeightedFair,
            ][usize::from(b / 2 % 4)],
        }
    }
}

fn config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.rto_initial = Duration::from_millis(100);
    c.rto_min = Duration::from_millis(50);
    c.rto_max = Duration::from_secs(1);
    c.heartbeat_interval = Some(Duration::from_secs(2));
    c.send_buffer_size = 300 * 1024;
    c.send_low_water = 100 * 1024;
    c.receive_window = 400 * 1024;
    c.max_message_size = 64 * 1024;
    c.outbound_streams = 4;
    c.inbound_streams = 4;
    c.auth = true;
    c.asconf = true;
    // Fixed, so ASCONF serials (which start at the initial TSN, RFC 5061) can be aimed at.
    c.initial_tsn = Some(1000);
    c
}

fn endpoint(seed: u8, mode: Mode) -> Endpoint {
    let mut c = EndpointConfig::with_seed([seed; 32]);
    c.association = config();
    c.association.i_data = mode.i_data;
    c.association.stream_scheduler = mode.scheduler;
    if seed == 2 {
        // B requires DATA to be authenticated (RFC 4895 §3.2).
        c.association.auth_chunks = vec![ChunkType::DATA];
    }
    c.max_associations = MAX_ASSOCS;
    Endpoint::new(c).expect("valid config")
}

struct World {
    now: Timestamp,
    a: Endpoint,
    b: Endpoint,
    /// Packets in flight: (to B?, src, bytes).
    wire: Vec<(bool, IpAddr, Vec<u8>)>,
    buf: Vec<u8>,
    a_ids: Vec<AssociationId>,
    b_ids: Vec<AssociationId>,
    /// Verification tags and ports learned from the handshake, for aimed injections.
    tag_to_b: u32,
    tag_to_a: u32,
    a_port: u16,
}

impl World {
    fn collect(&mut self) {
        let now = self.now;
        while let Some(t) = self.a.poll_transmit(now, &mut self.buf) {
            if self.wire.len() < 256 {
                self.wire.push((true, A_ADDR, self.buf[..t.len].to_vec()));
            }
            learn(
                &self.buf[..t.len],
                &mut self.tag_to_b,
                Some(&mut self.a_port),
            );
        }
        while let Some(t) = self.b.poll_transmit(now, &mut self.buf) {
            if (t.dst == A_ADDR || t.dst == A2_ADDR) && self.wire.len() < 256 {
                self.wire.push((false, B_ADDR, self.buf[..t.len].to_vec()));
            }
            learn(&self.buf[..t.len], &mut self.tag_to_a, None);
        }
        self.events();
    }

    fn events(&mut self) {
        while let Some((id, e)) = self.a.poll_event() {
            if e == Event::Connected && !self.a_ids.contains(&id) && self.a_ids.len() < 16 {
                self.a_ids.push(id);
            }
        }
        while let Some((id, e)) = self.b.poll_event() {
            if e == Event::Connected && !self.b_ids.contains(&id) && self.b_ids.len() < 16 {
                self.b_ids.push(id);
            }
        }
    }

    fn deliver(&mut self, to_b: bool, src: IpAddr, data: &[u8]) {
        let now = self.now;
        let (ep, dst) = if to_b {
            (&mut self.b, B_ADDR)
        } else {
            (&mut self.a, A_ADDR)
        };
        ep.handle_datagram(
            now,
            Datagram {
                src,
                dst,
                encaps_port: 0,
                data,
            },
        );
    }

    fn flush(&mut self, drop_mask: u8) {
        let packets = std::mem::take(&mut self.wire);
        for (i, (to_b, src, data)) in packets.into_iter().enumerate() {
            let bit = 1u8 << (i % 8);
            if drop_mask & bit != 0 && i % 3 == 0 {
                continue;
            }
            self.deliver(to_b, src, &data);
            if drop_mask & bit != 0 && i % 3 == 1 {
                self.deliver(to_b, src, &data);
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        let now = self.now;
        for ep in [&mut self.a, &mut self.b] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
                if let Some(t) = ep.poll_timeout() {
                    assert!(t > now, "busy loop: deadline {t:?} still due at {now:?}");
                }
            }
        }
    }

    fn check(&mut self) {
        assert!(self.a.association_count() <= MAX_ASSOCS);
        assert!(self.b.association_count() <= MAX_ASSOCS);
        let c = config();
        for (ep, ids) in [(&mut self.a, &self.a_ids), (&mut self.b, &self.b_ids)] {
            for id in ids {
                if let Some(s) = ep.association(*id).and_then(|a| a.status()) {
                    assert!(s.send_buffered <= c.send_buffer_size);
                    // The receive buffer may use a quarter window of slack for the chunk at
                    // the cumulative ack point.
                    assert!(s.recv_buffered <= c.receive_window as usize * 5 / 4 + 4096);
                }
            }
        }
    }
}

/// Remembers the verification tag and source port of packets sent by one side.
fn learn(pkt: &[u8], tag: &mut u32, port: Option<&mut u16>) {
    if pkt.len() >= 12 {
        let t = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        if t != 0 {
            *tag = t;
        }
        if let Some(p) = port {
            *p = u16::from_be_bytes([pkt[0], pkt[1]]);
        }
    }
}

/// An AUTH chunk (key id and HMAC identifier chosen by the input, usually 0 and SHA-256)
/// followed by chunks of the kinds AUTH protects: DATA, ASCONF (serial near 1000, Add/Delete/
/// Set Primary of a few addresses, wildcard included) and ASCONF ACK.
fn authenticated(inp: &mut Input<'_>, src_port: u16, dst_port: u16, vtag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    let sel = inp.byte().unwrap_or(0);
    let (key, hmac, hlen): (u16, u16, usize) = match sel % 8 {
        0 => (1, 3, 32),
        1 => (0, 1, 20),
        2 => (0, 2, 32),
        3 => (0, 3, 5),
        _ => (0, 3, 32),
    };
    let chunk = |p: &mut Vec<u8>, ty: u8, flags: u8, value: &[u8]| {
        p.push(ty);
        p.push(flags);
        p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        p.extend_from_slice(value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    };
    let mut auth = key.to_be_bytes().to_vec();
    auth.extend_from_slice(&hmac.to_be_bytes());
    auth.resize(4 + hlen, 0);
    chunk(&mut p, 0x0F, 0, &auth);
    let addrs: [[u8; 4]; 4] = [
        [0, 0, 0, 0],
        [198, 18, 0, 1],
        [198, 18, 1, 1],
        [198, 18, 0, 2],
    ];
    let n = inp.byte().unwrap_or(1) % 3 + 1;
    for _ in 0..n {
        let kind = inp.byte().unwrap_or(0);
        match kind % 4 {
            0 => {
                let tsn = 1000u32.wrapping_add(u32::from(inp.byte().unwrap_or(0)));
                let mut v = tsn.to_be_bytes().to_vec();
                v.extend_from_slice(&[0, u8::from(kind & 4 != 0), 0, 0, 0, 0, 0, 0]);
                v.extend_from_slice(inp.bytes(usize::from(inp_len(kind))));
                chunk(&mut p, 0, 0x03 | (kind & 0x04), &v);
            }
            1 => {
                let delta = inp.byte().unwrap_or(0) % 4;
                let serial = 999u32.wrapping_add(u32::from(delta));
                let mut v = serial.to_be_bytes().to_vec();
                v.extend_from_slice(&[0, 5, 0, 8, 198, 18, 0, 1]);
                for i in 0..inp.byte().unwrap_or(0) % 4 {
                    let req = inp.byte().unwrap_or(0);
                    let ty: u16 = [0xC001, 0xC002, 0xC004, 0xC006][usize::from(req % 4)];
                    let addr = addrs[usize::from(req / 4 % 4)];
                    v.extend_from_slice(&ty.to_be_bytes());
                    v.extend_from_slice(&16u16.to_be_bytes());
                    v.extend_from_slice(&u32::from(i).to_be_bytes());
                    v.extend_from_slice(&[0, 5, 0, 8]);
                    v.extend_from_slice(&addr);
                }
                chunk(&mut p, 0xC1, 0, &v);
            }
            2 => {
                let serial = 1000u32.wrapping_add(u32::from(inp.byte().unwrap_or(0) % 4));
                let mut v = serial.to_be_bytes().to_vec();
                for i in 0..inp.byte().unwrap_or(0) % 3 {
                    let err = inp.byte().unwrap_or(0) & 1 == 1;
                    if err {
                        v.extend_from_slice(&[0xC0, 0x03, 0, 16]);
                        v.extend_from_slice(&u32::from(i + 1).to_be_bytes());
                        v.extend_from_slice(&[0, 0xA0, 0, 8, 0, 0, 0, 0]);
                    } else {
                        v.extend_from_slice(&[0xC0, 0x05, 0, 8]);
                        v.extend_from_slice(&u32::from(i + 1).to_be_bytes());
                    }
                }
                chunk(&mut p, 0x80, 0, &v);
            }
            _ => {
                let ty = inp.byte().unwrap_or(0);
                let len = usize::from(inp.byte().unwrap_or(0));
                let value = inp.bytes(len).to_vec();
                chunk(&mut p, ty, 0, &value);
            }
        }
    }
    p
}

fn inp_len(kind: u8) -> u8 {
    kind / 8 + 1
}

/// A packet with a common header and chunks of fuzzer-chosen type, flags and value.
fn structured(inp: &mut Input<'_>, src_port: u16, dst_port: u16, vtag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    let n = inp.byte().unwrap_or(1) % 4 + 1;
    for _ in 0..n {
        let ty = inp.byte().unwrap_or(0);
        let flags = inp.byte().unwrap_or(0);
        let len = usize::from(inp.byte().unwrap_or(0));
        let value = inp.bytes(len).to_vec();
        p.push(ty);
        p.push(flags);
        p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        p.extend_from_slice(&value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    p
}

/// An I-DATA chunk (RFC 8260 §2.1) with fuzzer-chosen fields, or an I-FORWARD TSN
/// (§2.3), behind a correct common header; TSNs near A's fixed initial TSN.
fn idata_packet(inp: &mut Input<'_>, src_port: u16, dst_port: u16, vtag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    let kind = inp.byte().unwrap_or(0);
    let tsn = 1000u32.wrapping_add(u32::from(inp.u16().unwrap_or(0) % 2048));
    let stream = u16::from(inp.byte().unwrap_or(0) % 5);
    let mid = match inp.byte().unwrap_or(0) {
        m @ 0..=200 => u32::from(m % 8),
        m => u32::from(m) << 24 | u32::from(inp.u16().unwrap_or(0)),
    };
    let mut v = Vec::new();
    if kind & 0x80 == 0 {
        let flags = kind & 0x0f;
        let word = u32::from(inp.u16().unwrap_or(0) % 64);
        let len = usize::from(inp.u16().unwrap_or(0) % 4000);
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&mid.to_be_bytes());
        v.extend_from_slice(&word.to_be_bytes());
        v.extend_from_slice(&vec![kind; len]);
        p.extend_from_slice(&[64, flags]);
    } else {
        // I-FORWARD TSN: New Cumulative TSN, then (stream, reserved + U flag, MID) entries.
        v.extend_from_slice(&tsn.to_be_bytes());
        for i in 0..(kind & 7) {
            v.extend_from_slice(&(stream + u16::from(i)).to_be_bytes());
            v.extend_from_slice(&u16::from(i & 1).to_be_bytes());
            v.extend_from_slice(&mid.wrapping_add(u32::from(i)).to_be_bytes());
        }
        p.extend_from_slice(&[194, 0]);
    }
    p.extend_from_slice(&((4 + v.len()) as u16).to_be_bytes());
    p.extend_from_slice(&v);
    while p.len() % 4 != 0 {
        p.push(0);
    }
    p
}

fn setup(mode: Mode) -> World {
    let mut w = World {
        now: Timestamp::from_secs(1),
        a: endpoint(1, mode),
        b: endpoint(2, mode),
        wire: Vec::new(),
        buf: vec![0; 65_535],
        a_ids: Vec::new(),
        b_ids: Vec::new(),
        tag_to_b: 0,
        tag_to_a: 0,
        a_port: 0,
    };
    w.b.listen(PORT).expect("listen");
    let now = w.now;
    w.a.connect(now, ConnectRequest::new(B_ADDR, PORT))
        .expect("connect");
    for _ in 0..8 {
        w.collect();
        w.flush(0);
        w.advance(1);
    }
    w.collect();
    w
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input { data };
    let mode = Mode::from_byte(inp.byte().unwrap_or(0));
    let mut w = setup(mode);
    let mut steps = 0;
    while let Some(op) = inp.byte() {
        steps += 1;
        if steps > 512 {
            break;
        }
        match op % 16 {
            // Raw bytes into B, from A's address.
            0 => {
                let len = usize::from(inp.u16().unwrap_or(0) % 1500);
                let pkt = inp.bytes(len).to_vec();
                w.deliver(true, A_ADDR, &pkt);
            }
            // Chunks aimed at B's association (correct tag and ports).
            1 => {
                let pkt = structured(&mut inp, w.a_port, PORT, w.tag_to_b);
                w.deliver(true, A_ADDR, &pkt);
            }
            // Chunks aimed at A's association.
            2 => {
                let pkt = structured(&mut inp, PORT, w.a_port, w.tag_to_a);
                w.deliver(false, B_ADDR, &pkt);
            }
            // Chunks from a random source at the listener, tag chosen by the input
            // (INITs, forged COOKIE ECHOs, out-of-the-blue packets).
            3 => {
                let src = IpAddr::V4(Ipv4Addr::new(198, 19, inp.byte().unwrap_or(0), 1));
                let sport = inp.u16().unwrap_or(1).max(1);
                let tag = u32::from(inp.u16().unwrap_or(0));
                let pkt = structured(&mut inp, sport, PORT, tag);
                w.deliver(true, src, &pkt);
            }
            // Raw bytes into A.
            4 => {
                let len = usize::from(inp.u16().unwrap_or(0) % 1500);
                let pkt = inp.bytes(len).to_vec();
                w.deliver(false, B_ADDR, &pkt);
            }
            // Let the endpoints talk, with some loss and duplication.
            5 => {
                let mask = inp.byte().unwrap_or(0);
                w.collect();
                w.flush(mask);
            }
            // Time passes.
            6 => {
                let ms = u64::from(inp.byte().unwrap_or(0)) * 20;
                w.advance(ms);
            }
            // User sends.
            7 => {
                let len = usize::from(inp.u16().unwrap_or(0));
                let stream = u16::from(inp.byte().unwrap_or(0) % 5);
                let unordered = inp.byte().unwrap_or(0) & 1 == 1;
                let to_b = inp.byte().unwrap_or(0) & 1 == 1;
                // A PR-SCTP policy (RFC 3758, RFC 7496), reliable for most inputs.
                let pr = inp.byte().unwrap_or(0);
                let policy = match pr % 8 {
                    1 => PrPolicy::Timed {
                        lifetime: Duration::from_millis(u64::from(pr) * 8),
                    },
                    2 => PrPolicy::LimitedRetransmissions {
                        max_retransmissions: u16::from(pr / 8 % 4),
                    },
                    3 => PrPolicy::Priority {
                        priority: u16::from(pr / 8),
                    },
                    _ => PrPolicy::Reliable,
                };
                let (ep, ids) = if to_b {
                    (&mut w.a, &w.a_ids)
                } else {
                    (&mut w.b, &w.b_ids)
                };
                for id in ids {
                    if let Some(mut a) = ep.association(*id) {
                        let mut opts = SendOptions::default();
                        opts.unordered = unordered;
                        opts.pr_policy = policy;
                        let _ = a.send(stream, Ppid(7), vec![0x5a; len], opts);
                    }
                }
            }
            // Users read.
            8 => {
                for (ep, ids) in [(&mut w.a, &w.a_ids), (&mut w.b, &w.b_ids)] {
                    for id in ids {
                        if let Some(mut a) = ep.association(*id) {
                            while a.recv().is_some() {}
                        }
                    }
                }
            }
            // Shutdown or abort.
            9 => {
                let which = inp.byte().unwrap_or(0);
                let ep = if which & 1 == 0 { &mut w.a } else { &mut w.b };
                let ids = if which & 1 == 0 { &w.a_ids } else { &w.b_ids };
                if let Some(id) = ids.first()
                    && let Some(mut a) = ep.association(*id)
                {
                    if which & 2 == 0 {
                        a.shutdown();
                    } else {
                        a.abort(b"fuzz");
                    }
                }
            }
            // A new connection from A.
            10 => {
                let now = w.now;
                let port = inp.u16().unwrap_or(0);
                let _ =
                    w.a.connect(now, ConnectRequest::new(B_ADDR, PORT).with_local_port(port));
            }
            // I-DATA or I-FORWARD TSN aimed at B's association, or stream scheduling
            // parameters changed by either user.
            11 => {
                let which = inp.byte().unwrap_or(0);
                if which & 8 != 0 {
                    reconf_op(&mut w, &mut inp, which);
                } else if which & 1 == 0 {
                    let pkt = idata_packet(&mut inp, w.a_port, PORT, w.tag_to_b);
                    w.deliver(true, A_ADDR, &pkt);
                } else {
                    let stream = u16::from(inp.byte().unwrap_or(0) % 6);
                    let value = inp.u16().unwrap_or(0);
                    let (ep, ids) = if which & 2 == 0 {
                        (&mut w.a, &w.a_ids)
                    } else {
                        (&mut w.b, &w.b_ids)
                    };
                    if let Some(id) = ids.first()
                        && let Some(mut a) = ep.association(*id)
                    {
                        let _ = if which & 4 == 0 {
                            a.set_stream_priority(stream, value)
                        } else {
                            a.set_stream_weight(stream, value)
                        };
                    }
                }
            }
            // Authenticated DATA / ASCONF / ASCONF ACK aimed at B's association.
            12 => {
                let pkt = authenticated(&mut inp, w.a_port, PORT, w.tag_to_b);
                let src = [A_ADDR, A2_ADDR][usize::from(inp.byte().unwrap_or(0) & 1)];
                w.deliver(true, src, &pkt);
            }
            // The same aimed at A's association.
            13 => {
                let pkt = authenticated(&mut inp, PORT, w.a_port, w.tag_to_a);
                w.deliver(false, B_ADDR, &pkt);
            }
            // Address requests (RFC 5061) from either side.
            14 => {
                let which = inp.byte().unwrap_or(0);
                let addr = [A_ADDR, A2_ADDR, B_ADDR, IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
                    [usize::from(which / 8 % 4)];
                let (ep, ids) = if which & 1 == 0 {
                    (&mut w.a, &w.a_ids)
                } else {
                    (&mut w.b, &w.b_ids)
                };
                if let Some(id) = ids.first()
                    && let Some(mut a) = ep.association(*id)
                {
                    let _ = match which / 2 % 4 {
                        0 => a.add_local_address(addr),
                        1 => a.remove_local_address(addr),
                        _ => a.request_peer_primary(addr),
                    };
                }
            }
            // Shared key changes (RFC 4895 §6.1).
            15 => {
                let which = inp.byte().unwrap_or(0);
                let key_id = u16::from(inp.byte().unwrap_or(0) % 3);
                let ep = if which & 1 == 0 { &mut w.a } else { &mut w.b };
                let ids = if which & 1 == 0 { &w.a_ids } else { &w.b_ids };
                if let Some(id) = ids.first()
                    && let Some(mut a) = ep.association(*id)
                {
                    let _ = match which / 2 % 3 {
                        0 => a.auth_add_key(key_id, &[which; 8]),
                        1 => a.auth_activate_key(key_id),
                        _ => a.auth_delete_key(key_id),
                    };
                }
            }
            // Aimed chunks with a wrong tag (verification tag rules).
            _ => {
                let tag = w.tag_to_b ^ u32::from(inp.byte().unwrap_or(1).max(1));
                let pkt = structured(&mut inp, w.a_port, PORT, tag);
                w.deliver(true, A_ADDR, &pkt);
            }
        }
        w.events();
        w.check();
    }
    // Let everything settle: no panic, no busy loop.
    for _ in 0..6 {
        w.collect();
        w.flush(0);
        w.advance(1500);
        w.check();
    }
});

/// A RE-CONFIG parameter (RFC 6525 §4) of a fuzzer-chosen type: request sequence numbers
/// near the fixed initial TSN (1000) so some are the expected ones.
fn reconf_param(inp: &mut Input<'_>) -> Vec<u8> {
    let kind = inp.byte().unwrap_or(0);
    let seq = match inp.byte().unwrap_or(0) {
        s @ 0..=239 => 1000u32.wrapping_add(u32::from(s % 16)).wrapping_sub(2),
        s => u32::from(s) << 24 | u32::from(inp.u16().unwrap_or(0)),
    };
    let streams = |inp: &mut Input<'_>| -> Vec<u8> {
        let n = match inp.byte().unwrap_or(0) {
            n @ 0..=250 => usize::from(n % 6),
            _ => 300,
        };
        let mut v = Vec::new();
        for i in 0..n {
            let s = u16::from(inp.byte().unwrap_or(0) % 8)
                .wrapping_add((i as u16).wrapping_mul(1000) * u16::from(n > 6));
            v.extend_from_slice(&s.to_be_bytes());
        }
        v
    };
    let mut v = Vec::new();
    let ty: u16 = match kind % 7 {
        0 => {
            // Outgoing SSN Reset: request seq, response seq, last TSN, streams.
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(&seq.wrapping_sub(u32::from(kind >> 4)).to_be_bytes());
            let last = 1000u32
                .wrapping_add(u32::from(inp.u16().unwrap_or(0) % 512))
                .wrapping_sub(8);
            v.extend_from_slice(&last.to_be_bytes());
            v.extend(streams(inp));
            13
        }
        1 => {
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend(streams(inp));
            14
        }
        2 => {
            v.extend_from_slice(&seq.to_be_bytes());
            15
        }
        3 => {
            // Response: sequence number, result (some unknown), optional next TSNs.
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(&u32::from(kind >> 4).to_be_bytes());
            if kind & 8 != 0 {
                v.extend_from_slice(&1000u32.wrapping_add(u32::from(kind)).to_be_bytes());
                v.extend_from_slice(&(1u32 << 31).wrapping_add(u32::from(kind)).to_be_bytes());
            }
            16
        }
        4 | 5 => {
            v.extend_from_slice(&seq.to_be_bytes());
            let n = match inp.byte().unwrap_or(0) {
                n @ 0..=250 => u16::from(n % 8),
                _ => u16::MAX,
            };
            v.extend_from_slice(&n.to_be_bytes());
            v.extend_from_slice(&[0, 0]);
            if kind % 7 == 4 { 17 } else { 18 }
        }
        _ => {
            // Any parameter type with any value (unknown ones follow their action bits).
            let len = usize::from(inp.byte().unwrap_or(0) % 32);
            v.extend_from_slice(inp.bytes(len));
            inp.u16().unwrap_or(0)
        }
    };
    let mut p = Vec::new();
    p.extend_from_slice(&ty.to_be_bytes());
    p.extend_from_slice(&((4 + v.len()) as u16).to_be_bytes());
    p.extend_from_slice(&v);
    while p.len() % 4 != 0 {
        p.push(0);
    }
    p
}

/// RE-CONFIG (RFC 6525): a fuzzer-built RE-CONFIG chunk aimed at either association, or a
/// user's reconfiguration request on either side.
fn reconf_op(w: &mut World, inp: &mut Input<'_>, which: u8) {
    match which / 16 % 3 {
        k @ (0 | 1) => {
            let to_b = k == 0;
            let (sp, dp, tag) = if to_b {
                (w.a_port, PORT, w.tag_to_b)
            } else {
                (PORT, w.a_port, w.tag_to_a)
            };
            let mut p = Vec::with_capacity(256);
            p.extend_from_slice(&sp.to_be_bytes());
            p.extend_from_slice(&dp.to_be_bytes());
            p.extend_from_slice(&tag.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            let mut value = Vec::new();
            for _ in 0..inp.byte().unwrap_or(0) % 3 + 1 {
                value.extend(reconf_param(inp));
            }
            p.extend_from_slice(&[0x82, 0]);
            p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
            p.extend_from_slice(&value);
            let src = if to_b { A_ADDR } else { B_ADDR };
            w.deliver(to_b, src, &p);
        }
        _ => {
            let op = inp.byte().unwrap_or(0);
            let (ep, ids) = if op & 1 == 0 {
                (&mut w.a, &w.a_ids)
            } else {
                (&mut w.b, &w.b_ids)
            };
            let list: Vec<u16> = (0..op / 2 % 4)
                .map(|i| u16::from(i * 2 + op / 64))
                .collect();
            if let Some(id) = ids.first()
                && let Some(mut a) = ep.association(*id)
            {
                let _ = match op / 8 % 4 {
                    0 => a.reset_streams(&list),
                    1 => a.request_incoming_reset(&list),
                    2 => a.reset_association(),
                    _ => a.add_streams(u16::from(op % 3), u16::from(op / 4 % 3)),
                };
            }
        }
    }
}
