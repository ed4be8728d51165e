//! Wireshark judges the registrar's real output: three registrars, pool elements and a
//! pool user run a scenario (registrations, a rejected registration with its Operation
//! Error, handle resolutions, keep-alives, malformed input answered with ERROR, mentor
//! synchronisation, handle updates, a crash with takeover and H-bit keep-alives). Every
//! ASAP and ENRP message that crosses the in-memory network is wrapped in an SCTP DATA
//! chunk and written to a pcap; `tshark` must decode every frame as the protocol and
//! message type we sent, without malformed or error-level packets.
//!
//! Needs tshark: `cargo test -p rserpool --test registrar_tshark -- --ignored`. Fails, not
//! skips, without tshark.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::registrar::{
    AsapOrigin, AssocRef, Destination, EnrpOrigin, Registrar, RegistrarConfig,
};
use rserpool::wire::{
    AsapMessage, PORT_ASAP, PORT_ENRP, PPID_ASAP, PeIdentifier, PolicyInfo, PoolElement,
    PoolHandle, RegistrarId, TransportParameter, TransportUse,
};
use sctp_stack::pcap::PcapWriter;
use sctp_stack::serial::{Ssn, Tsn};
use sctp_stack::wire::{CommonHeader, Data, PacketBuilder, Ppid};

const PE_PORT: u16 = 5000;
const PU_BASE: u64 = 100;

fn reg_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, i as u8 + 1))
}

fn node_addr(n: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 1, n as u8))
}

fn enrp_endpoint(i: usize) -> TransportParameter {
    TransportParameter::sctp(PORT_ENRP, TransportUse::DATA_ONLY, vec![reg_addr(i)])
}

/// What one frame must decode to: protocol and message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Asap(u8),
    Enrp(u8),
}

struct World {
    now: Timestamp,
    regs: Vec<Registrar>,
    crashed: Vec<bool>,
    pcap: PcapWriter<Vec<u8>>,
    frames: Vec<Frame>,
    tsn: u32,
    /// Messages for PEs (by association number) and PUs, not yet handled.
    to_nodes: VecDeque<(usize, u64, AsapMessage)>,
}

impl World {
    fn new(n: usize) -> Self {
        let now = Timestamp::from_secs(1);
        let regs = (0..n)
            .map(|i| {
                let config = RegistrarConfig {
                    server_id: RegistrarId(10 * (i as u32 + 1)),
                    asap_transports: vec![TransportParameter::sctp(
                        PORT_ASAP,
                        TransportUse::DATA_ONLY,
                        vec![reg_addr(i)],
                    )],
                    enrp_transport: enrp_endpoint(i),
                    static_peers: (0..n).filter(|j| *j != i).map(enrp_endpoint).collect(),
                    ..RegistrarConfig::default()
                };
                Registrar::new(config, Box::new(ChaCha8Rng::seed_from_u64(i as u64)), now)
            })
            .collect();
        World {
            now,
            regs,
            crashed: vec![false; n],
            pcap: PcapWriter::new(Vec::new()).expect("pcap"),
            frames: Vec::new(),
            tsn: 1,
            to_nodes: VecDeque::new(),
        }
    }

    fn capture(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16), ppid: u32, bytes: &[u8]) {
        let frame = match ppid {
            PPID_ASAP => Frame::Asap(bytes[0]),
            _ => Frame::Enrp(bytes[0]),
        };
        let mut buf = vec![0u8; 65_535];
        let mut b = PacketBuilder::new(
            &mut buf,
            65_535,
            CommonHeader {
                source_port: src.1,
                destination_port: dst.1,
                verification_tag: 0x5eed_0001,
            },
        )
        .expect("builder");
        b.push(&Data {
            tsn: Tsn(self.tsn),
            stream_id: 0,
            ssn: Ssn(self.tsn as u16),
            ppid: Ppid(ppid),
            immediate_sack: false,
            unordered: false,
            beginning: true,
            ending: true,
            payload: bytes,
        })
        .expect("DATA fits");
        let len = b.finish();
        self.tsn += 1;
        self.pcap
            .write_sctp(self.now, src.0, dst.0, &buf[..len])
            .expect("pcap");
        self.frames.push(frame);
    }

    fn reg_by_id(&self, id: RegistrarId) -> Option<usize> {
        self.regs.iter().position(|r| r.id() == id)
    }

    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut out = Vec::new();
            for i in 0..self.regs.len() {
                while let Some(t) = self.regs[i].poll_transmit() {
                    if !self.crashed[i] {
                        out.push((i, t));
                    }
                }
                while self.regs[i].poll_event().is_some() {}
            }
            if out.is_empty() && self.to_nodes.is_empty() {
                return;
            }
            for (src, t) in out {
                let from = (reg_addr(src), PORT_ASAP);
                match t.to {
                    Destination::Association(AssocRef(a)) => {
                        self.capture(from, (node_addr(a), PE_PORT), t.ppid, &t.bytes);
                        let m = AsapMessage::decode(&t.bytes).expect("valid").message;
                        self.to_nodes.push_back((src, a, m));
                    }
                    Destination::PoolElement(tp) => {
                        let a = (1..PU_BASE)
                            .find(|n| tp.addresses.contains(&node_addr(*n)))
                            .expect("a known PE");
                        self.capture(from, (node_addr(a), PE_PORT), t.ppid, &t.bytes);
                        let m = AsapMessage::decode(&t.bytes).expect("valid").message;
                        self.to_nodes.push_back((src, a, m));
                    }
                    Destination::Peer { id, endpoint } => {
                        let dst = if id.0 != 0 {
                            self.reg_by_id(id)
                        } else {
                            (0..self.regs.len())
                                .find(|j| endpoint.addresses.contains(&reg_addr(*j)))
                        };
                        let Some(dst) = dst else { continue };
                        if self.crashed[dst] {
                            continue;
                        }
                        self.capture(
                            (reg_addr(src), PORT_ENRP),
                            (reg_addr(dst), PORT_ENRP),
                            t.ppid,
                            &t.bytes,
                        );
                        let now = self.now;
                        self.regs[dst].handle_enrp(
                            now,
                            EnrpOrigin::Association(AssocRef(1000 + src as u64)),
                            &t.bytes,
                        );
                    }
                    _ => {}
                }
            }
            // PEs answer keep-alives; PUs only listen.
            while let Some((reg, a, m)) = self.to_nodes.pop_front() {
                if let AsapMessage::EndpointKeepAlive {
                    pool_handle,
                    identifier: Some(identifier),
                    ..
                } = m
                    && a < PU_BASE
                {
                    let ack = AsapMessage::EndpointKeepAliveAck {
                        pool_handle,
                        identifier,
                    };
                    self.send_asap(a, reg, &encode(&ack));
                }
            }
        }
        panic!("message storm");
    }

    fn send_asap(&mut self, node: u64, reg: usize, bytes: &[u8]) {
        if self.crashed[reg] {
            return;
        }
        self.capture(
            (node_addr(node), PE_PORT),
            (reg_addr(reg), PORT_ASAP),
            PPID_ASAP,
            bytes,
        );
        let now = self.now;
        let addrs = [node_addr(node)];
        self.regs[reg].handle_asap(
            now,
            AsapOrigin {
                assoc: AssocRef(node),
                port: PE_PORT,
                addresses: &addrs,
            },
            bytes,
        );
        self.flush();
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            let next = (0..self.regs.len())
                .filter(|i| !self.crashed[*i])
                .filter_map(|i| self.regs[i].poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.regs.len() {
                        if !self.crashed[i] {
                            let now = self.now;
                            self.regs[i].handle_timeout(now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.flush();
    }
}

fn encode(m: &AsapMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).expect("encode");
    b.truncate(n);
    b
}

fn registration(pool: &str, id: u32, node: u64, policy: PolicyInfo, addr: IpAddr) -> Vec<u8> {
    let _ = node;
    encode(&AsapMessage::Registration {
        pool_handle: PoolHandle::from(pool),
        pool_element: PoolElement {
            identifier: PeIdentifier(id),
            home_registrar: RegistrarId(0),
            registration_life: 3_600_000,
            user_transport: TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![addr]),
            policy,
            asap_transport: None,
        },
    })
}

fn scenario() -> World {
    let mut w = World::new(3);
    w.run_for(Duration::from_secs(6));
    // Registrations: accepted at registrars 0 and 2, then two rejections.
    w.send_asap(
        1,
        0,
        &registration(
            "PingPongPool",
            0x101,
            1,
            PolicyInfo::least_used(7),
            node_addr(1),
        ),
    );
    w.send_asap(
        2,
        2,
        &registration(
            "PingPongPool",
            0x102,
            2,
            PolicyInfo::least_used(9),
            node_addr(2),
        ),
    );
    w.send_asap(
        3,
        2,
        &registration(
            "EchoPool",
            0x103,
            3,
            PolicyInfo::round_robin(),
            node_addr(3),
        ),
    );
    w.send_asap(
        4,
        0,
        &registration("PingPongPool", 0x104, 4, PolicyInfo::random(), node_addr(4)),
    );
    w.send_asap(
        5,
        0,
        &registration(
            "EchoPool",
            0x105,
            5,
            PolicyInfo::round_robin(),
            node_addr(99),
        ),
    );
    // A PU resolves, reports, and sends garbage.
    let pu = PU_BASE + 1;
    for (pool, items) in [
        ("PingPongPool", None),
        ("PingPongPool", Some(1)),
        ("NoSuchPool", None),
    ] {
        let m = AsapMessage::HandleResolution {
            pool_handle: PoolHandle::from(pool),
            items,
        };
        w.send_asap(pu, 1, &encode(&m));
    }
    let m = AsapMessage::EndpointUnreachable {
        pool_handle: PoolHandle::from("EchoPool"),
        identifier: PeIdentifier(0x103),
    };
    w.send_asap(pu, 1, &encode(&m));
    // An unknown message type (header only): answered with an Operation Error.
    w.send_asap(pu, 1, &[0x7f, 0, 0, 4]);
    // Keep-alives, presences, then registrar 2 crashes and is taken over.
    w.run_for(Duration::from_secs(8));
    w.crashed[2] = true;
    w.run_for(Duration::from_secs(20));
    // A late registrar synchronises from its mentor.
    let mut late = RegistrarConfig {
        server_id: RegistrarId(40),
        enrp_transport: enrp_endpoint(3),
        static_peers: vec![enrp_endpoint(0)],
        ..RegistrarConfig::default()
    };
    late.asap_transports = vec![TransportParameter::sctp(
        PORT_ASAP,
        TransportUse::DATA_ONLY,
        vec![reg_addr(3)],
    )];
    let now = w.now;
    w.regs.push(Registrar::new(
        late,
        Box::new(ChaCha8Rng::seed_from_u64(9)),
        now,
    ));
    w.crashed.push(false);
    w.run_for(Duration::from_secs(3));
    // Deregistration.
    let m = AsapMessage::Deregistration {
        pool_handle: PoolHandle::from("PingPongPool"),
        identifier: PeIdentifier(0x101),
    };
    w.send_asap(1, 0, &encode(&m));
    w.run_for(Duration::from_secs(3));
    w
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark must be installed (apt-get install tshark); this test does not skip");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn scenario_covers_every_registrar_message_type() {
    let w = scenario();
    let asap: std::collections::BTreeSet<u8> = w
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::Asap(t) => Some(*t),
            _ => None,
        })
        .collect();
    let enrp: std::collections::BTreeSet<u8> = w
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::Enrp(t) => Some(*t),
            _ => None,
        })
        .collect();
    // ASAP: registration, deregistration and their responses, resolution and response,
    // keep-alive and ack, unreachable, error, and the unknown type 0x7f we sent.
    assert_eq!(
        asap,
        [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0e, 0x7f
        ]
        .into_iter()
        .collect()
    );
    // ENRP: presence, table request/response, update, list request/response, takeover.
    assert_eq!(enrp, (0x01..=0x09).collect());
    // The takeover re-homed registrar 2's PEs with flag H.
    let h_bit = w.regs[0]
        .handlespace()
        .pool_element(b"PingPongPool", PeIdentifier(0x102))
        .map(|p| p.home_registrar);
    assert!(matches!(
        h_bit,
        Some(RegistrarId(10)) | Some(RegistrarId(20))
    ));
}

#[test]
#[ignore = "needs tshark; run with --ignored"]
fn tshark_decodes_the_registrar_traffic_cleanly() {
    let w = scenario();
    let dir = std::env::temp_dir().join(format!("rserpool-registrar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("registrar.pcap");
    std::fs::write(&path, w.pcap.into_inner()).expect("write pcap");
    let file = path.to_str().expect("utf-8 path");
    if let Ok(keep) = std::env::var("RSERPOOL_REGISTRAR_PCAP") {
        let _ = std::fs::copy(&path, keep);
    }
    let bad = tshark(&[
        "-r",
        file,
        "-o",
        "sctp.checksum:CRC-32C",
        "-Y",
        "_ws.malformed || _ws.expert.severity >= \"Error\" || sctp.checksum.status == \"Bad\"",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Info",
    ]);
    assert!(
        bad.trim().is_empty(),
        "malformed or error-level packets:\n{bad}"
    );
    let rows = tshark(&[
        "-r",
        file,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "_ws.col.Protocol",
        "-e",
        "asap.message_type",
        "-e",
        "enrp.message_type",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), w.frames.len(), "one frame per message");
    let mut failures = Vec::new();
    for (n, (row, frame)) in rows.iter().zip(&w.frames).enumerate() {
        let cols: Vec<&str> = row.split('|').collect();
        let parse = |s: &str| {
            // An Operation Error embeds the offending message: its type comes second.
            let s = s.split(',').next().unwrap_or("").trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u8::from_str_radix(h, 16).ok())
        };
        let got = match cols.as_slice() {
            [p, t, _] if *p == "ASAP" => parse(t).map(Frame::Asap),
            [p, _, t] if *p == "ENRP" => parse(t).map(Frame::Enrp),
            _ => None,
        };
        if got != Some(*frame) {
            failures.push(format!("frame {}: tshark {row:?}, sent {frame:?}", n + 1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
