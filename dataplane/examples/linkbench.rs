//! Packet-rate measurements of the link backends (not a test: speed lives in benchmarks).
//!
//! ```text
//! cargo run --release -p dataplane --example linkbench -- udp [SECS] [SIZE]
//! cargo run --release -p dataplane --example linkbench -- raw [SECS] [SIZE]        # root
//! cargo run --release -p dataplane --example linkbench -- tx [SECS] [SIZE]         # root
//! ```
//!
//! - `udp`: loopback, one sender thread and one receiver thread: `sendto` per packet vs
//!   `sendmmsg` bursts vs `sendmmsg` + GSO, received with `recvmmsg` (+ GRO).
//! - `raw`: two namespaces over veth, sender in one, receiver in the other: poll backend vs
//!   io_uring backend on both sides.
//! - `tx`: transmit only, over veth: raw `sendmmsg` vs raw io_uring vs AF_PACKET TPACKET_V3
//!   TX ring (Ethernet and IPv4 headers built by us).
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::udp::{UdpConfig, UdpLink};
use dataplane::{AnyLink, Interest, Link, RxBatch, TxBatch, TxMeta};

fn sctp_packet(len: usize, seq: u32) -> Vec<u8> {
    let mut p = vec![0u8; len.max(28)];
    p[0..2].copy_from_slice(&5000u16.to_be_bytes());
    p[2..4].copy_from_slice(&6000u16.to_be_bytes());
    p[4..8].copy_from_slice(&1u32.to_be_bytes());
    p[12] = 0; // DATA
    p[13] = 3;
    p[14..16].copy_from_slice(&((len.max(28) - 12) as u16).to_be_bytes());
    p[16..20].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: plain libc struct filled by the call.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Receives on `link` until `stop`; returns packets received and the receiver thread's CPU
/// time per packet in nanoseconds.
fn receive_until<L: Link>(link: &mut L, stop: &AtomicBool) -> (u64, f64) {
    let cpu0 = thread_cpu();
    let mut rx = RxBatch::new(64, link.rx_slot_size());
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match link.recv(&mut rx) {
            Ok(0) => {
                let _ = link.wait(Interest::Read, Some(Duration::from_millis(5)));
            }
            Ok(k) => n += k as u64,
            Err(e) => panic!("recv: {e}"),
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu0);
    (n, cpu.as_nanos() as f64 / n.max(1) as f64)
}

fn udp(secs: u64, size: usize) {
    let dur = Duration::from_secs(secs);
    println!(
        "UDP loopback, {size}-byte SCTP packets, {secs} s per mode, 1 sender + 1 receiver thread"
    );
    for mode in ["sendto", "sendmmsg", "sendmmsg+gso"] {
        let gso = mode == "sendmmsg+gso";
        let mut rx_link = UdpLink::open(UdpConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            gro: gso,
            ..UdpConfig::default()
        })
        .unwrap();
        let port = rx_link.local_addr().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let receiver = std::thread::spawn(move || receive_until(&mut rx_link, &stop2));
        let pkt = sctp_packet(size, 1);
        let start = Instant::now();
        let mut sent = 0u64;
        if mode == "sendto" {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let dst = std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            while start.elapsed() < dur {
                for _ in 0..64 {
                    if s.send_to(&pkt, dst).is_ok() {
                        sent += 1;
                    }
                }
            }
        } else {
            let mut link = UdpLink::open(UdpConfig {
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                gso,
                ..UdpConfig::default()
            })
            .unwrap();
            let mut tx = TxBatch::new(64, 2048);
            let meta = TxMeta {
                src: None,
                dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
                encaps_port: port,
            };
            while start.elapsed() < dur {
                while tx.push(meta, &pkt) {}
                sent += link.send(&mut tx).unwrap() as u64;
                if !tx.is_empty() {
                    tx.clear();
                }
            }
        }
        let elapsed = start.elapsed();
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        let (received, ns) = receiver.join().unwrap();
        println!(
            "  {mode:<14} sent {:>10.0} pkt/s   received {:>10.0} pkt/s   receiver {ns:>6.0} ns CPU/pkt",
            rate(sent, elapsed),
            rate(received, elapsed)
        );
    }
}

fn open_raw(kind: &str) -> AnyLink {
    let cfg = dataplane::raw::RawConfig::default();
    #[cfg(all(
        feature = "io-uring",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    if kind != "poll" {
        return dataplane::uring::RawUringLink::open(cfg).unwrap().into();
    }
    let _ = kind;
    dataplane::raw::RawPollLink::open(cfg).unwrap().into()
}

fn testnet() -> (dataplane::netns::TestNet, String, String) {
    let mut net = dataplane::netns::TestNet::new("lb");
    let a = net.namespace("a").unwrap();
    let b = net.namespace("b").unwrap();
    net.veth(
        (&a, "va", &["198.18.0.1/24"]),
        (&b, "vb", &["198.18.0.2/24"]),
    )
    .unwrap();
    net.drop_protocol_unreachable(&a).unwrap();
    net.drop_protocol_unreachable(&b).unwrap();
    // Resolve the neighbour once so the first burst is not queued behind ARP.
    net.exec(&a, &["ping", "-c", "1", "-W", "1", "198.18.0.2"])
        .ok();
    (net, a, b)
}

fn raw(secs: u64, size: usize) {
    let dur = Duration::from_secs(secs);
    let (_net, a, b) = testnet();
    println!("raw IPv4 over veth between namespaces, {size}-byte SCTP packets, {secs} s per mode");
    for kind in ["poll", "io_uring"] {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let bns = b.clone();
        let receiver = std::thread::spawn(move || {
            dataplane::netns::in_namespace(&bns, move || {
                let mut link = open_raw(kind);
                let mut rx = RxBatch::new(64, link.rx_slot_size());
                link.recv(&mut rx).unwrap();
                ready_tx.send(()).unwrap();
                receive_until(&mut link, &stop2)
            })
            .unwrap()
        });
        ready_rx.recv().unwrap();
        let (sent, elapsed) = dataplane::netns::in_namespace(&a, move || {
            let mut link = open_raw(kind);
            let pkt = sctp_packet(size, 1);
            let mut tx = TxBatch::new(64, 2048);
            let meta = TxMeta {
                src: None,
                dst: "198.18.0.2".parse().unwrap(),
                encaps_port: 0,
            };
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < dur {
                while tx.push(meta, &pkt) {}
                sent += link.send(&mut tx).unwrap() as u64;
                tx.clear();
            }
            (sent, start.elapsed())
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        let (received, ns) = receiver.join().unwrap();
        println!(
            "  {kind:<10} sent {:>10.0} pkt/s   received {:>10.0} pkt/s   receiver {ns:>6.0} ns CPU/pkt",
            rate(sent, elapsed),
            rate(received, elapsed)
        );
    }
}

fn mac_of(ns: &str, ifname: &str) -> [u8; 6] {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-br", "link", "show", ifname])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text.split_whitespace().nth(2).unwrap();
    let mut m = [0u8; 6];
    for (i, part) in mac.split(':').enumerate().take(6) {
        m[i] = u8::from_str_radix(part, 16).unwrap();
    }
    m
}

/// A complete Ethernet + IPv4 + SCTP frame.
fn frame(src_mac: [u8; 6], dst_mac: [u8; 6], sctp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 20 + sctp.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + sctp.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 132;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let mut sum = 0u32;
    for w in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(sctp);
    f
}

/// Transmit rate of an AF_PACKET TPACKET_V3 TX ring on `ifname` (in the current namespace).
fn af_packet_tx(ifname: &str, frame: &[u8], dur: Duration) -> (u64, Duration) {
    const TPACKET_V3: libc::c_int = 2;
    const FRAME: u32 = 2048;
    const FRAMES: u32 = 4096;
    const BLOCK: u32 = 1 << 20;
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    let set = |name: libc::c_int, val: &[u8]| {
        // SAFETY: pointer and length describe `val`.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                name,
                val.as_ptr().cast(),
                val.len() as u32,
            )
        };
        assert_eq!(
            r,
            0,
            "setsockopt {name}: {}",
            std::io::Error::last_os_error()
        );
    };
    set(libc::PACKET_VERSION, &TPACKET_V3.to_ne_bytes());
    set(libc::PACKET_QDISC_BYPASS, &1i32.to_ne_bytes());
    // struct tpacket_req3: block_size, block_nr, frame_size, frame_nr, retire_blk_tov,
    // sizeof_priv, feature_req_word (all u32).
    let req: [u32; 7] = [BLOCK, FRAME * FRAMES / BLOCK, FRAME, FRAMES, 0, 0, 0];
    // SAFETY: `req` is seven u32 laid out as tpacket_req3.
    let req_bytes = unsafe { std::slice::from_raw_parts(req.as_ptr().cast::<u8>(), 28) };
    set(libc::PACKET_TX_RING, req_bytes);
    let len = (FRAME * FRAMES) as usize;
    // SAFETY: maps the ring the kernel just allocated for this socket.
    let ring = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert_ne!(ring, libc::MAP_FAILED);
    let ring = ring.cast::<u8>();
    let ifindex = {
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: valid C string.
        unsafe { libc::if_nametoindex(name.as_ptr()) }
    };
    // SAFETY: sockaddr_ll is plain old data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = 0x0800u16.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: binds to a valid sockaddr_ll of the right length.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0);
    // Data follows TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48 bytes of header.
    const DATA_OFF: usize = 48;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut idx = 0usize;
    while start.elapsed() < dur {
        let mut queued = 0;
        for _ in 0..64 {
            // SAFETY: frame `idx` lies inside the mapped ring. tpacket3_hdr starts with the
            // u32s tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len (offset 16) and
            // tp_status (offset 20); the frame data starts at 48.
            unsafe {
                let f = ring.add(idx * FRAME as usize);
                let status = f.add(20).cast::<u32>();
                if std::ptr::read_volatile(status) != 0 {
                    break; // still owned by the kernel
                }
                std::ptr::copy_nonoverlapping(frame.as_ptr(), f.add(DATA_OFF), frame.len());
                f.add(16).cast::<u32>().write_volatile(frame.len() as u32);
                std::sync::atomic::fence(Ordering::Release);
                status.write_volatile(1); // TP_STATUS_SEND_REQUEST
            }
            idx = (idx + 1) % FRAMES as usize;
            queued += 1;
        }
        // SAFETY: kicks the TX ring; no buffer is passed.
        let r = unsafe { libc::send(fd, std::ptr::null(), 0, 0) };
        if r >= 0 {
            sent += queued;
        }
    }
    let elapsed = start.elapsed();
    // SAFETY: unmaps what we mapped and closes our socket.
    unsafe {
        libc::munmap(ring.cast(), len);
        libc::close(fd);
    }
    (sent, elapsed)
}

fn tx_only(secs: u64, size: usize) {
    let dur = Duration::from_secs(secs);
    let (_net, a, b) = testnet();
    println!("transmit only over veth, {size}-byte SCTP packets, {secs} s per mode");
    for kind in ["raw sendmmsg", "raw io_uring", "AF_PACKET v3"] {
        let src_mac = mac_of(&a, "va");
        let dst_mac = mac_of(&b, "vb");
        let (sent, elapsed) = dataplane::netns::in_namespace(&a, move || {
            let pkt = sctp_packet(size, 1);
            if kind == "AF_PACKET v3" {
                return af_packet_tx("va", &frame(src_mac, dst_mac, &pkt), dur);
            }
            let mut link = open_raw(if kind == "raw sendmmsg" {
                "poll"
            } else {
                "uring"
            });
            let mut tx = TxBatch::new(64, 2048);
            let meta = TxMeta {
                src: None,
                dst: "198.18.0.2".parse().unwrap(),
                encaps_port: 0,
            };
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < dur {
                while tx.push(meta, &pkt) {}
                sent += link.send(&mut tx).unwrap() as u64;
                tx.clear();
            }
            (sent, start.elapsed())
        })
        .unwrap();
        println!("  {kind:<14} {:>10.0} pkt/s", rate(sent, elapsed));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("udp");
    let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let size = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1200);
    match what {
        "udp" => udp(secs, size),
        "raw" => raw(secs, size),
        "tx" => tx_only(secs, size),
        other => eprintln!("unknown mode {other}; use udp, raw or tx"),
    }
}
