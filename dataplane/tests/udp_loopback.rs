//! The UDP encapsulation backend on loopback (unprivileged).
#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use dataplane::udp::{UdpConfig, UdpLink};
use dataplane::{Interest, Link, RxBatch, TxBatch, TxMeta};

const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn open(bind: IpAddr, gso: bool, gro: bool) -> UdpLink {
    UdpLink::open(UdpConfig {
        bind,
        port: 0,
        gso,
        gro,
        ..UdpConfig::default()
    })
    .expect("open UDP link on loopback")
}

fn wildcard() -> UdpLink {
    open(IpAddr::V6(Ipv6Addr::UNSPECIFIED), true, true)
}

fn to(dst: IpAddr, port: u16) -> TxMeta {
    TxMeta {
        src: None,
        dst,
        encaps_port: port,
    }
}

/// A packet whose first 4 bytes carry `seq` and whose remaining bytes repeat it.
fn packet(seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![(seq % 251) as u8; len.max(4)];
    p[..4].copy_from_slice(&seq.to_be_bytes());
    p
}

fn send_all(link: &mut UdpLink, tx: &mut TxBatch) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tx.is_empty() {
        assert!(Instant::now() < deadline, "send did not drain");
        if link.send(tx).expect("send") == 0 {
            link.wait(Interest::ReadWrite, Some(Duration::from_millis(10)))
                .unwrap();
        }
    }
}

/// Receives until `count` packets arrived (or 5 s passed); returns (meta, data) pairs.
fn recv_n(link: &mut UdpLink, count: usize) -> Vec<(dataplane::RxMeta, Vec<u8>)> {
    let mut rx = RxBatch::new(64, link.rx_slot_size());
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < count && Instant::now() < deadline {
        if link.recv(&mut rx).expect("recv") == 0 {
            link.wait(Interest::Read, Some(Duration::from_millis(50)))
                .unwrap();
            continue;
        }
        out.extend(rx.iter().map(|p| (p.meta, p.data.to_vec())));
    }
    out
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = release
        .trim()
        .split(['.', '-'])
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

#[test]
fn a_burst_crosses_loopback_in_order_with_addresses_and_ports() {
    let mut a = wildcard();
    let mut b = wildcard();
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(64, 2048);
    for i in 0..64u32 {
        // Varying sizes so GSO cannot merge everything.
        assert!(tx.push(to(LO4, b_port), &packet(i, 100 + (i as usize % 7) * 50)));
    }
    send_all(&mut a, &mut tx);
    let got = recv_n(&mut b, 64);
    assert_eq!(got.len(), 64);
    for (i, (meta, data)) in got.iter().enumerate() {
        assert_eq!(data, &packet(i as u32, 100 + (i % 7) * 50), "packet {i}");
        assert_eq!(meta.src, LO4);
        assert_eq!(meta.dst, LO4);
        assert_eq!(meta.encaps_port, a.local_addr().port());
        assert_ne!(meta.ifindex, 0, "pktinfo reports the interface");
    }
    assert_eq!(a.stats().tx_packets, 64);
    assert_eq!(b.stats().rx_packets, 64);
    assert!(
        a.stats().tx_batches < 64,
        "sendmmsg sends several packets per call"
    );
}

#[test]
fn pktinfo_reports_the_destination_and_honours_the_source_address() {
    let mut a = wildcard();
    let mut b = wildcard();
    let b_port = b.local_addr().port();
    let dst: IpAddr = "127.0.0.2".parse().unwrap();
    let src: IpAddr = "127.0.0.3".parse().unwrap();
    let mut tx = TxBatch::new(4, 2048);
    tx.push(
        TxMeta {
            src: Some(src),
            dst,
            encaps_port: b_port,
        },
        b"multi-homed",
    );
    tx.push(to(LO4, b_port), b"plain");
    send_all(&mut a, &mut tx);
    let got = recv_n(&mut b, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, b"multi-homed");
    assert_eq!((got[0].0.src, got[0].0.dst), (src, dst));
    assert_eq!((got[1].0.src, got[1].0.dst), (LO4, LO4));
}

#[test]
fn ipv6_packets_carry_their_addresses_on_a_dual_stack_socket() {
    let mut a = wildcard();
    let mut b = wildcard();
    assert!(b.features().ipv6_socket);
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(4, 2048);
    tx.push(
        TxMeta {
            src: Some(LO6),
            dst: LO6,
            encaps_port: b_port,
        },
        b"over ipv6",
    );
    tx.push(to(LO4, b_port), b"over ipv4");
    send_all(&mut a, &mut tx);
    let got = recv_n(&mut b, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, b"over ipv6");
    assert_eq!((got[0].0.src, got[0].0.dst), (LO6, LO6));
    assert_eq!(
        (got[1].0.src, got[1].0.dst),
        (LO4, LO4),
        "v4-mapped is unmapped"
    );
}

#[test]
fn an_ipv6_only_link_works_and_an_ipv4_only_link_drops_ipv6_destinations() {
    let mut v6 = open(LO6, true, true);
    let mut v4 = open(LO4, true, true);
    assert!(!v4.features().ipv6_socket);
    let mut tx = TxBatch::new(4, 2048);
    tx.push(to(LO6, v6.local_addr().port()), b"unsendable");
    tx.push(to(LO4, v4.local_addr().port()), b"to myself");
    send_all(&mut v4, &mut tx);
    assert_eq!(v4.stats().tx_dropped, 1);
    let got = recv_n(&mut v4, 1);
    assert_eq!(got[0].1, b"to myself");
    tx.push(to(LO6, v6.local_addr().port()), b"v6 to myself");
    send_all(&mut v6, &mut tx);
    let got = recv_n(&mut v6, 1);
    assert_eq!((got[0].0.dst, &got[0].1[..]), (LO6, &b"v6 to myself"[..]));
}

#[test]
fn kernels_since_5_0_get_gso_and_gro_detected() {
    let link = wildcard();
    if kernel_at_least(5, 0) {
        assert!(link.features().gso, "UDP_SEGMENT exists since 4.18");
        assert!(link.features().gro, "UDP_GRO exists since 5.0");
    }
    let off = open(IpAddr::V6(Ipv6Addr::UNSPECIFIED), false, false);
    assert!(
        !off.features().gso && !off.features().gro,
        "config switches them off"
    );
    assert_eq!(off.rx_slot_size(), UdpConfig::default().max_datagram);
}

#[test]
fn gso_sends_and_gro_receives_keep_every_packet_boundary() {
    let mut a = wildcard();
    let mut b = wildcard();
    if !(a.features().gso && b.features().gro) {
        assert!(
            !kernel_at_least(5, 0),
            "kernel >= 5.0 must have GSO and GRO"
        );
        return;
    }
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(200, 2048);
    // 150 equal packets, a short tail, then a different size: three GSO runs at least.
    for i in 0..150u32 {
        tx.push(to(LO4, b_port), &packet(i, 1200));
    }
    tx.push(to(LO4, b_port), &packet(150, 300));
    for i in 151..160u32 {
        tx.push(to(LO4, b_port), &packet(i, 800));
    }
    send_all(&mut a, &mut tx);
    let s = a.stats();
    assert_eq!(s.tx_packets, 160);
    assert!(s.tx_gso_sends >= 3, "GSO used: {s:?}");
    let got = recv_n(&mut b, 160);
    assert_eq!(got.len(), 160);
    for (i, (_, data)) in got.iter().enumerate() {
        let len = match i {
            0..150 => 1200,
            150 => 300,
            _ => 800,
        };
        assert_eq!(data, &packet(i as u32, len), "packet {i}");
    }
    assert!(
        b.stats().rx_gro_batches >= 1,
        "loopback hands GSO runs to a GRO socket whole: {:?}",
        b.stats()
    );
}

#[test]
fn without_gso_and_gro_the_same_burst_arrives_packet_by_packet() {
    let mut a = open(IpAddr::V6(Ipv6Addr::UNSPECIFIED), false, false);
    let mut b = open(IpAddr::V6(Ipv6Addr::UNSPECIFIED), false, false);
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(100, 2048);
    for i in 0..100u32 {
        tx.push(to(LO6, b_port), &packet(i, 1200));
    }
    send_all(&mut a, &mut tx);
    assert_eq!(a.stats().tx_gso_sends, 0);
    let got = recv_n(&mut b, 100);
    assert_eq!(got.len(), 100);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, (_, d))| *d == packet(i as u32, 1200))
    );
    assert_eq!(b.stats().rx_gro_batches, 0);
}

#[test]
fn datagrams_larger_than_the_receive_slot_are_dropped_and_counted() {
    let mut a = wildcard();
    let mut b = UdpLink::open(UdpConfig {
        port: 0,
        gro: false,
        max_datagram: 1000,
        ..UdpConfig::default()
    })
    .unwrap();
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(4, 4096);
    tx.push(to(LO4, b_port), &packet(1, 3000));
    tx.push(to(LO4, b_port), &packet(2, 500));
    send_all(&mut a, &mut tx);
    let got = recv_n(&mut b, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, packet(2, 500));
    assert_eq!(b.stats().rx_dropped, 1);
    let mut small = RxBatch::new(4, 999);
    assert!(
        b.recv(&mut small).is_err(),
        "slots below the link's need are refused"
    );
}

#[test]
fn packets_without_a_port_go_to_the_default_remote_port() {
    let mut b = wildcard();
    let mut a = UdpLink::open(UdpConfig {
        port: 0,
        default_remote_port: b.local_addr().port(),
        ..UdpConfig::default()
    })
    .unwrap();
    let mut tx = TxBatch::new(1, 100);
    tx.push(to(LO4, 0), b"default port");
    send_all(&mut a, &mut tx);
    assert_eq!(recv_n(&mut b, 1)[0].1, b"default port");
}

#[test]
fn wait_returns_on_timeout_on_data_and_on_wake() {
    let mut a = wildcard();
    let mut b = wildcard();
    let r = b
        .wait(Interest::Read, Some(Duration::from_millis(5)))
        .unwrap();
    assert!(r.is_timeout());
    let waker = b.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        waker.wake();
    });
    let r = b
        .wait(Interest::Read, Some(Duration::from_secs(10)))
        .unwrap();
    assert!(r.woken && !r.readable);
    t.join().unwrap();
    let mut tx = TxBatch::new(1, 100);
    tx.push(to(LO4, b.local_addr().port()), b"x");
    send_all(&mut a, &mut tx);
    let r = b
        .wait(Interest::Read, Some(Duration::from_secs(10)))
        .unwrap();
    assert!(r.readable && !r.woken);
    let r = b
        .wait(Interest::ReadWrite, Some(Duration::from_secs(10)))
        .unwrap();
    assert!(r.writable);
}

#[test]
fn unreachable_destinations_do_not_wedge_the_link() {
    let mut a = wildcard();
    let mut b = wildcard();
    let mut tx = TxBatch::new(4, 100);
    // A source address this host does not own: the kernel refuses that one packet.
    tx.push(
        TxMeta {
            src: Some("192.0.2.1".parse().unwrap()),
            dst: LO4,
            encaps_port: b.local_addr().port(),
        },
        b"bad source",
    );
    tx.push(to(LO4, b.local_addr().port()), b"good");
    send_all(&mut a, &mut tx);
    assert_eq!(a.stats().tx_dropped, 1);
    let got = recv_n(&mut b, 1);
    assert_eq!(got[0].1, b"good");
}

#[test]
fn lone_packets_go_out_one_per_call_with_the_same_accounting_as_a_burst() {
    // A lone packet takes the single-message send (`sendmsg`); a burst of two or more the
    // `sendmmsg` path. Both must deliver every byte and count packets, bytes and calls alike.
    let mut a = open(LO4, false, false);
    let mut b = open(LO4, false, false);
    let b_port = b.local_addr().port();
    let mut tx = TxBatch::new(8, 2048);
    let mut bytes = 0u64;
    for i in 0..5u32 {
        let p = packet(i, 60 + i as usize);
        bytes += p.len() as u64;
        assert!(tx.push(to(LO4, b_port), &p));
        send_all(&mut a, &mut tx);
    }
    // Then a burst of three without GSO: three messages in one call.
    for i in 5..8u32 {
        let p = packet(i, 60 + i as usize);
        bytes += p.len() as u64;
        assert!(tx.push(to(LO4, b_port), &p));
    }
    send_all(&mut a, &mut tx);
    let got = recv_n(&mut b, 8);
    assert_eq!(got.len(), 8);
    for (i, (meta, data)) in got.iter().enumerate() {
        assert_eq!(data, &packet(i as u32, 60 + i), "packet {i}");
        assert_eq!(meta.encaps_port, a.local_addr().port());
    }
    let s = a.stats();
    assert_eq!(s.tx_packets, 8);
    assert_eq!(s.tx_bytes, bytes);
    assert_eq!(s.tx_batches, 6, "five lone sends and one burst");
}
