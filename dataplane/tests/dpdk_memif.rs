//! Two DPDK link sets in one process joined by a memif pair (`net_memif` server and client on
//! one socket): SCTP-shaped packets both ways over IPv4 and IPv6, with ARP and neighbour
//! discovery resolving each side's MAC first; then two multi-homed sets over two memif pairs;
//! then two runtimes, one leaving SCTP checksums to the link. Needs libdpdk (feature `dpdk`) and root for
//! the EAL; `--no-huge`, so no hugepages. Run by `.ci/dpdk.sh`.
//!
//! One test function: the EAL is initialised once per process.
#![cfg(all(target_os = "linux", feature = "dpdk"))]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{crc_ok, sctp_packet, tsn_of};
use dataplane::dpdk::{DpdkConfig, DpdkLink, EalConfig, InterfaceConfig, PortSelector};
use dataplane::runtime::{App, Context, LinkSpec, Runtime, RuntimeConfig};
use dataplane::{Backend, Interest, Link, RxBatch, TxBatch, TxMeta};
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, ConnectRequest, Event, SendOptions};

/// Messages the client of the runtime check sends.
const MESSAGES: u64 = 200;

/// Runtime check: the client connects and sends [`MESSAGES`] 1000-byte messages; the server
/// counts the payload bytes it receives.
struct Peer {
    client: bool,
    connect: Option<ConnectRequest>,
    received: Arc<AtomicU64>,
}

impl App for Peer {
    fn start(&mut self, cx: &mut Context<'_>) {
        match self.connect.take() {
            Some(req) => {
                cx.connect(req).expect("connect");
            }
            None => cx.listen(7).expect("listen"),
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        let Some(mut a) = cx.association(id) else {
            return;
        };
        match event {
            Event::Connected if self.client => {
                for i in 0..MESSAGES {
                    a.send(0, Ppid(0), vec![i as u8; 1000], SendOptions::default())
                        .expect("room for every message");
                }
            }
            Event::DataReadable => {
                while let Some(m) = a.recv() {
                    self.received
                        .fetch_add(m.data.len() as u64, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn open(port: &str, addrs: &[&str], eal: &EalConfig) -> DpdkLink {
    open_ports(&[(port, addrs)], eal)
}

/// A link set over several ports (multi-homing), each with its addresses.
fn open_ports(ports: &[(&str, &[&str])], eal: &EalConfig) -> DpdkLink {
    let mut c = DpdkConfig::default();
    c.eal = eal.clone();
    c.pool_size = 2047;
    c.interfaces = ports
        .iter()
        .map(|(port, addrs)| {
            let addrs: Vec<_> = addrs.iter().map(|a| a.parse().unwrap()).collect();
            InterfaceConfig::new(PortSelector::Name((*port).to_owned()), &addrs).unwrap()
        })
        .collect();
    DpdkLink::open(&c).expect("open DPDK link").pop().unwrap()
}

/// Sends `n` packets from `from` to `to` (destination `dst`) and returns the TSNs `to`
/// received, with every packet's CRC checked.
fn exchange(from: &mut DpdkLink, to: &mut DpdkLink, dst: &str, n: u32, tsn0: u32) -> Vec<u32> {
    exchange_from(from, to, None, dst, n, tsn0)
        .into_iter()
        .map(|(tsn, _)| tsn)
        .collect()
}

/// As [`exchange`], from source address `src` (or the link's choice), returning each TSN
/// with the receiving interface index.
fn exchange_from(
    from: &mut DpdkLink,
    to: &mut DpdkLink,
    src: Option<&str>,
    dst: &str,
    n: u32,
    tsn0: u32,
) -> Vec<(u32, u32)> {
    exchange_with(from, to, src, dst, n, tsn0, false)
}

/// As [`exchange_from`]; with `zero_crc` the packets leave the "stack" with their checksum
/// field zero (`EndpointConfig::tx_checksum_offload`), for the link to fill in.
fn exchange_with(
    from: &mut DpdkLink,
    to: &mut DpdkLink,
    src: Option<&str>,
    dst: &str,
    n: u32,
    tsn0: u32,
    zero_crc: bool,
) -> Vec<(u32, u32)> {
    let mut tx = TxBatch::new(64, 2048);
    let mut rx = RxBatch::new(64, to.rx_slot_size());
    for i in 0..n {
        let meta = TxMeta {
            src: src.map(ip),
            dst: ip(dst),
            encaps_port: 0,
        };
        let payload = vec![i as u8; 100 + (i as usize * 13) % 1200];
        let mut pkt = sctp_packet(5000, 6000, 7, tsn0 + i, &payload);
        if zero_crc {
            pkt[8..12].fill(0);
        }
        assert!(tx.push(meta, &pkt));
        if tx.is_full() || i + 1 == n {
            from.send(&mut tx).unwrap();
            assert!(
                tx.is_empty(),
                "send consumes everything (queued for resolution or sent)"
            );
        }
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while got.len() < n as usize && Instant::now() < deadline {
        // Both sides run: the sender must see the ARP reply to release its queue.
        from.recv(&mut rx).unwrap();
        assert!(
            rx.is_empty(),
            "nothing flows back: {:?}",
            rx.iter()
                .map(|p| (p.meta, p.data.len()))
                .collect::<Vec<_>>()
        );
        to.recv(&mut rx).unwrap();
        for p in rx.iter() {
            assert!(crc_ok(p.data), "CRC intact");
            assert_eq!(p.meta.dst, ip(dst));
            if let Some(src) = src {
                assert_eq!(p.meta.src, ip(src));
            }
            got.push((tsn_of(p.data), p.meta.ifindex));
        }
        to.wait(Interest::Read, Some(Duration::from_millis(5)))
            .unwrap();
    }
    got
}

#[test]
fn memif_pair_carries_packets_both_ways_after_arp_and_neighbour_discovery() {
    let sock = format!("/tmp/dpdk-memif-test-{}.sock", std::process::id());
    let sock2 = format!("/tmp/dpdk-memif-test-{}-2.sock", std::process::id());
    let sock3 = format!("/tmp/dpdk-memif-test-{}-3.sock", std::process::id());
    let eal = EalConfig::parse(&format!(
        "--no-huge -m 512 --log-level=warning \
         --vdev=net_memif0,role=server,socket={sock} --vdev=net_memif1,role=client,socket={sock} \
         --vdev=net_memif2,role=server,socket={sock2} --vdev=net_memif3,role=client,socket={sock2} \
         --vdev=net_memif4,role=server,socket={sock3} --vdev=net_memif5,role=client,socket={sock3}"
    ))
    .unwrap();
    let mut a = open("net_memif0", &["198.18.7.1/24", "fd00:7::1/64"], &eal);
    let mut b = open("net_memif1", &["198.18.7.2/24", "fd00:7::2/64"], &eal);
    assert_eq!(a.backend(), Backend::Dpdk);
    assert_ne!(a.mac(0), b.mac(0));
    // The memif connection comes up asynchronously.
    std::thread::sleep(Duration::from_millis(500));

    // IPv4: a resolves b with ARP (its first packets wait, bounded, in the cache's queue).
    let got = exchange(&mut a, &mut b, "198.18.7.2", 10, 0);
    assert_eq!(got, (0..10).collect::<Vec<_>>(), "in order, none lost");
    // One request, or a retry when the memif connection was still coming up.
    let requests = a.dpdk_stats().arp_requests;
    assert!((1..=2).contains(&requests), "{requests} ARP requests");
    assert!(b.dpdk_stats().arp_replies >= 1);
    assert_eq!(a.neighbour(ip("198.18.7.2")), b.mac(0));
    // b learned a from the request addressed to it: no request of its own.
    assert_eq!(b.neighbour(ip("198.18.7.1")), a.mac(0));
    let got = exchange(&mut b, &mut a, "198.18.7.1", 200, 1000);
    assert_eq!(got.len(), 200);
    assert_eq!(b.dpdk_stats().arp_requests, 0);

    // SCTP checksum offload: memif offers none, so packets the stack left with a zero
    // checksum get theirs in software (the receiver checks every CRC), and packets that
    // carry the stack's checksum go out untouched.
    assert!(!a.sctp_crc_offload());
    assert!(a.offloads().iter().all(|o| !o.tx_sctp && !o.rx_sctp));
    assert_eq!(a.dpdk_stats().tx_checksum_software, 0);
    let got = exchange_with(&mut a, &mut b, None, "198.18.7.2", 20, 300, true);
    assert_eq!(got.len(), 20);
    let s = a.dpdk_stats();
    assert_eq!((s.tx_checksum_software, s.tx_checksum_hardware), (20, 0));
    assert_eq!(
        b.dpdk_stats().rx_checksum_good + b.dpdk_stats().rx_checksum_bad,
        0
    );

    // IPv6: neighbour solicitation and advertisement.
    let got = exchange(&mut a, &mut b, "fd00:7::2", 10, 5000);
    assert_eq!(got, (5000..5010).collect::<Vec<_>>());
    assert!((1..=2).contains(&a.dpdk_stats().nd_solicitations));
    assert!(b.dpdk_stats().nd_advertisements >= 1);
    let got = exchange(&mut b, &mut a, "fd00:7::1", 50, 6000);
    assert_eq!(got.len(), 50);
    assert_eq!(
        b.dpdk_stats().nd_solicitations,
        0,
        "learned from a's solicitation"
    );

    // An unreachable neighbour: retried, then its packets are dropped and counted.
    let mut tx = TxBatch::new(4, 2048);
    let meta = TxMeta {
        src: None,
        dst: ip("198.18.7.99"),
        encaps_port: 0,
    };
    assert!(tx.push(meta, &sctp_packet(1, 2, 3, 4, b"x")));
    a.send(&mut tx).unwrap();
    let mut rx = RxBatch::new(8, a.rx_slot_size());
    let deadline = Instant::now() + Duration::from_secs(6);
    while a.neighbour_drops() == 0 && Instant::now() < deadline {
        a.recv(&mut rx).unwrap();
        b.recv(&mut rx).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.neighbour_drops(), 1);
    assert_eq!(
        a.dpdk_stats().arp_requests,
        requests + 3,
        "three requests for .99"
    );
    assert_eq!(a.stats().rx_dropped + b.stats().rx_dropped, 0);
    drop(a);
    drop(b);

    // Multi-homing: two ports per side, one address each; a packet leaves through the port
    // owning its source address (or the one on the destination's prefix) and arrives on the
    // peer's matching port.
    let mut a = open_ports(
        &[
            ("net_memif2", &["198.18.8.1/24"]),
            ("net_memif4", &["198.18.9.1/24"]),
        ],
        &eal,
    );
    let mut b = open_ports(
        &[
            ("net_memif3", &["198.18.8.2/24"]),
            ("net_memif5", &["198.18.9.2/24"]),
        ],
        &eal,
    );
    std::thread::sleep(Duration::from_millis(500));
    let b_ports = b.port_ids();
    let a_ports = a.port_ids();
    // 16 packets: what the cache queues per neighbour while it resolves (the default bound).
    let got = exchange_from(&mut a, &mut b, Some("198.18.9.1"), "198.18.9.2", 16, 0);
    assert_eq!(got.len(), 16);
    assert!(
        got.iter().all(|&(_, ifx)| ifx == u32::from(b_ports[1]) + 1),
        "{got:?}"
    );
    let got = exchange_from(&mut a, &mut b, None, "198.18.8.2", 16, 100);
    assert_eq!(got.len(), 16);
    assert_eq!(a.neighbour_drops(), 0);
    assert!(
        got.iter().all(|&(_, ifx)| ifx == u32::from(b_ports[0]) + 1),
        "{got:?}"
    );
    let got = exchange_from(&mut b, &mut a, Some("198.18.9.2"), "198.18.9.1", 20, 200);
    assert!(
        got.iter().all(|&(_, ifx)| ifx == u32::from(a_ports[1]) + 1),
        "{got:?}"
    );
    assert_eq!(got.len(), 20);
    // A source address the link does not own is refused, not sent from another port.
    let mut tx = TxBatch::new(1, 2048);
    let meta = TxMeta {
        src: Some(ip("198.18.8.77")),
        dst: ip("198.18.8.2"),
        encaps_port: 0,
    };
    assert!(tx.push(meta, &sctp_packet(1, 2, 3, 4, b"x")));
    let dropped = a.stats().tx_dropped;
    a.send(&mut tx).unwrap();
    assert_eq!(a.stats().tx_dropped, dropped + 1);
    drop(a);
    drop(b);

    // The whole path: a runtime whose endpoint leaves checksums to the link
    // (`tx_checksum_offload`) talks to one that verifies them in software.
    let a = open("net_memif0", &["198.18.7.1/24"], &eal);
    let b = open("net_memif1", &["198.18.7.2/24"], &eal);
    std::thread::sleep(Duration::from_millis(500));
    let received = Arc::new(AtomicU64::new(0));
    let config = |seed: u8, offload: bool| {
        let mut c = RuntimeConfig::default();
        c.endpoint.rng_seed = [seed; 32];
        c.endpoint.tx_checksum_offload = offload;
        c.endpoint.association.pmtu = 1500;
        c.endpoint.association.send_buffer_size = 1 << 20;
        c
    };
    let r = received.clone();
    let server = Runtime::start(
        config(1, false),
        LinkSpec::Links(vec![b.into()]),
        move |_| Peer {
            client: false,
            connect: None,
            received: r.clone(),
        },
    )
    .expect("server runtime");
    let client = Runtime::start(config(2, true), LinkSpec::Links(vec![a.into()]), |_| Peer {
        client: true,
        connect: Some(ConnectRequest::new(ip("198.18.7.2"), 7)),
        received: Arc::new(AtomicU64::new(0)),
    })
    .expect("client runtime");
    let deadline = Instant::now() + Duration::from_secs(8);
    while received.load(Ordering::Relaxed) < MESSAGES * 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    client.stop();
    server.stop();
    let cs = client
        .join_timeout(Duration::from_secs(10))
        .ok()
        .unwrap()
        .unwrap();
    let ss = server
        .join_timeout(Duration::from_secs(10))
        .ok()
        .unwrap()
        .unwrap();
    assert_eq!(received.load(Ordering::Relaxed), MESSAGES * 1000);
    assert_eq!(ss[0].endpoint.bad_packets, 0, "every checksum filled in");
    assert_eq!(cs[0].endpoint.bad_packets, 0);

    for s in [&sock, &sock2, &sock3] {
        let _ = std::fs::remove_file(s);
    }
}
