//! The runtime end to end on loopback UDP and the memory fabric (unprivileged): in-worker
//! applications, socket handles, several workers with kernel and software steering, flow
//! control in both directions.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dataplane::memory::{FabricClock, FabricConfig, MemoryFabric};
use dataplane::runtime::socket::{Incoming, Outgoing, SocketConfig, SocketError, Sockets};
use dataplane::runtime::{App, Context, LinkSpec, Runtime, RuntimeConfig};
use dataplane::udp::UdpConfig;
use dataplane::{AnyLink, Backend};
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, ConnectRequest, Event, SendOptions};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TIMEOUT: Duration = Duration::from_secs(20);

/// Echoes every message on its stream, PPID and ordering; counts associations.
struct Echo {
    port: u16,
    pending: HashMap<AssociationId, Vec<sctp_stack::Message>>,
}

impl Echo {
    fn new(port: u16) -> Self {
        Echo {
            port,
            pending: HashMap::new(),
        }
    }

    fn pump(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut a) = cx.association(id) else {
            return;
        };
        let queue = self.pending.entry(id).or_default();
        loop {
            if let Some(m) = queue.first() {
                let opts = if m.unordered {
                    SendOptions::unordered()
                } else {
                    SendOptions::default()
                };
                match a.send(m.stream, m.ppid, &m.data[..], opts) {
                    Ok(()) => {
                        queue.remove(0);
                        continue;
                    }
                    Err(_) => return,
                }
            }
            match a.recv() {
                Some(m) => queue.push(m),
                None => return,
            }
        }
    }
}

impl App for Echo {
    fn start(&mut self, cx: &mut Context<'_>) {
        cx.listen(self.port).expect("listen");
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::DataReadable | Event::SendSpace => self.pump(cx, id),
            Event::Closed => {
                self.pending.remove(&id);
            }
            _ => {}
        }
    }
}

/// UDP link on loopback. `DATAPLANE_TEST_UDP_OFFLOAD=off` turns GSO and GRO off: cross-test.sh sets
/// it for big-endian guests under qemu-user, which passes UDP_SEGMENT/UDP_GRO control messages to
/// the host kernel byte-swapped (see vm-images/qemu-user-skips). Everywhere else the offloads stay
/// on, as in production.
fn udp(port: u16) -> UdpConfig {
    let offload = std::env::var("DATAPLANE_TEST_UDP_OFFLOAD").map_or(true, |v| v != "off");
    UdpConfig {
        bind: LOCALHOST,
        port,
        gso: offload,
        gro: offload,
        ..UdpConfig::default()
    }
}

fn runtime_config(workers: usize) -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.workers = workers;
    c.endpoint.rng_seed = [workers as u8; 32];
    c
}

fn echo_server(workers: usize, port: u16) -> (Runtime, u16) {
    let rt = Runtime::start(runtime_config(workers), LinkSpec::Udp(udp(0)), move |_| {
        Echo::new(port)
    })
    .expect("server runtime");
    let udp_port = rt.local_udp_port().expect("UDP port");
    (rt, udp_port)
}

fn client(workers: usize) -> (Runtime, Sockets) {
    Sockets::start(
        runtime_config(workers),
        LinkSpec::Udp(udp(0)),
        SocketConfig::default(),
    )
    .expect("client runtime")
}

fn expect_message(a: &dataplane::runtime::socket::Association) -> sctp_stack::Message {
    match a.recv_timeout(TIMEOUT).expect("a message") {
        Incoming::Message(m) => m,
        Incoming::Event(e) => panic!("unexpected event {e:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

fn close(a: dataplane::runtime::socket::Association) {
    a.shutdown().unwrap();
    let mut events = Vec::new();
    loop {
        match a.recv_timeout(TIMEOUT) {
            Ok(Incoming::Event(e)) => events.push(e),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(SocketError::Closed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
    assert_eq!(
        events,
        vec![Event::ShutdownComplete, Event::Closed],
        "a graceful close ends with ShutdownComplete then Closed"
    );
}

#[test]
fn a_socket_client_gets_every_message_echoed_by_an_in_worker_app_over_udp() {
    let (server, udp_port) = echo_server(1, 7);
    assert_eq!(server.backend(), Backend::Udp);
    let (rt, sockets) = client(1);
    let req = ConnectRequest::new(LOCALHOST, 7).with_encaps_port(udp_port);
    let a = sockets.connect(req, Some(TIMEOUT)).expect("connect");
    assert_eq!(a.info().peer_port, 7);
    for i in 0..200u32 {
        let opts = if i % 3 == 0 {
            SendOptions::unordered()
        } else {
            SendOptions::default()
        };
        let msg = Outgoing::new((i % 4) as u16, Ppid(i), format!("message {i}").into_bytes())
            .with_options(opts);
        a.send(msg).unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..200 {
        let m = expect_message(&a);
        let i = m.ppid.get();
        assert_eq!(m.data, format!("message {i}").into_bytes());
        assert_eq!(m.stream, (i % 4) as u16);
        assert_eq!(m.unordered, i % 3 == 0);
        got.push(i);
    }
    got.sort_unstable();
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "each message exactly once"
    );
    close(a);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_slow_reader_loses_nothing_and_a_fast_sender_is_held_back() {
    let (server, udp_port) = echo_server(1, 9);
    let mut small = SocketConfig::default();
    small.send_queue = 4;
    small.recv_queue = 4;
    let (rt, sockets) = Sockets::start(runtime_config(1), LinkSpec::Udp(udp(0)), small).unwrap();
    let req = ConnectRequest::new(LOCALHOST, 9).with_encaps_port(udp_port);
    let a = sockets.connect(req, Some(TIMEOUT)).expect("connect");
    // 2000 messages of 8 KiB = 16 MB echoed: far beyond every queue and window on the way.
    const N: u32 = 2000;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                let mut data = vec![(i % 251) as u8; 8192];
                data[..4].copy_from_slice(&i.to_be_bytes());
                a.send(Outgoing::new(0, Ppid(i), data)).unwrap();
            }
        });
        for i in 0..N {
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            let m = expect_message(&a);
            assert_eq!(m.ppid.get(), i, "ordered stream keeps its order");
            assert_eq!(&m.data[..4], &i.to_be_bytes());
            assert_eq!(m.data.len(), 8192);
        }
    });
    close(a);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    server.join().unwrap();
}

#[test]
fn associations_spread_over_several_workers_on_both_sides() {
    let (server, udp_port) = echo_server(2, 7);
    let (rt, sockets) = client(2);
    let mut assocs = Vec::new();
    for _ in 0..8 {
        let req = ConnectRequest::new(LOCALHOST, 7).with_encaps_port(udp_port);
        assocs.push(sockets.connect(req, Some(TIMEOUT)).expect("connect"));
    }
    let workers: std::collections::HashSet<usize> =
        assocs.iter().map(|a| a.info().worker).collect();
    assert_eq!(workers.len(), 2, "connects alternate between the workers");
    for round in 0..20u32 {
        for (k, a) in assocs.iter().enumerate() {
            a.send_data(0, Ppid(round), vec![k as u8; 100 + round as usize])
                .unwrap();
        }
        for (k, a) in assocs.iter().enumerate() {
            let m = expect_message(a);
            assert_eq!((m.ppid.get(), m.data.len()), (round, 100 + round as usize));
            assert!(m.data.iter().all(|&b| b == k as u8));
        }
    }
    for a in assocs {
        close(a);
    }
    rt.stop();
    let client_stats = rt.join().unwrap();
    server.stop();
    let server_stats = server.join().unwrap();
    let dropped: u64 = client_stats
        .iter()
        .chain(&server_stats)
        .map(|s| s.handoff_dropped)
        .sum();
    assert_eq!(dropped, 0);
    let created: u64 = server_stats
        .iter()
        .map(|s| s.endpoint.associations_created)
        .sum();
    assert_eq!(created, 8);
    assert!(
        server_stats
            .iter()
            .all(|s| s.endpoint.associations_created > 0),
        "INITs are spread over the server's workers: {:?}",
        server_stats
            .iter()
            .map(|s| s.endpoint.associations_created)
            .collect::<Vec<_>>()
    );
}

#[test]
fn socket_handles_run_over_the_memory_fabric() {
    let a_ip: IpAddr = "198.18.0.1".parse().unwrap();
    let b_ip: IpAddr = "198.18.0.2".parse().unwrap();
    let (_fabric, la, lb) = MemoryFabric::pair(
        FabricConfig {
            clock: FabricClock::RealTime,
            ..FabricConfig::default()
        },
        a_ip,
        b_ip,
    )
    .unwrap();
    let server = Runtime::start(
        runtime_config(1),
        LinkSpec::Links(vec![AnyLink::from(lb)]),
        |_| Echo::new(5000),
    )
    .unwrap();
    assert_eq!(server.backend(), Backend::Memory);
    let (rt, sockets) = Sockets::start(
        runtime_config(1),
        LinkSpec::Links(vec![AnyLink::from(la)]),
        SocketConfig::default(),
    )
    .unwrap();
    let a = sockets
        .connect(ConnectRequest::new(b_ip, 5000), Some(TIMEOUT))
        .unwrap();
    a.send_data(1, Ppid(42), b"over memory".to_vec()).unwrap();
    let m = expect_message(&a);
    assert_eq!(
        (m.stream, m.ppid.get(), &m.data[..]),
        (1, 42, &b"over memory"[..])
    );
    close(a);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    server.join().unwrap();
}

#[test]
fn connecting_to_a_port_nobody_listens_on_fails_with_an_abort() {
    let (server, udp_port) = echo_server(1, 7);
    let (rt, sockets) = client(1);
    let req = ConnectRequest::new(LOCALHOST, 8).with_encaps_port(udp_port);
    match sockets.connect(req, Some(TIMEOUT)) {
        Err(SocketError::Aborted(_)) => {}
        other => panic!("expected an abort, got {other:?}"),
    }
    // A listener on the client side refuses a second listen on the same port.
    let l = sockets.listen(6000, 4).unwrap();
    assert!(matches!(
        sockets.listen(6000, 4),
        Err(SocketError::Listen(_))
    ));
    drop(l);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_capture_records_both_directions() {
    let dir = std::env::temp_dir().join(format!("rsp-rt-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.pcap");
    let (server, udp_port) = echo_server(1, 7);
    let mut cfg = runtime_config(1);
    cfg.capture = Some(path.clone());
    let (rt, sockets) =
        Sockets::start(cfg, LinkSpec::Udp(udp(0)), SocketConfig::default()).unwrap();
    let a = sockets
        .connect(
            ConnectRequest::new(LOCALHOST, 7).with_encaps_port(udp_port),
            Some(TIMEOUT),
        )
        .unwrap();
    a.send_data(0, Ppid(0), b"x".to_vec()).unwrap();
    expect_message(&a);
    close(a);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    server.join().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // pcap header, then records: count them and check both UDP ports appear as sources.
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let mut off = 24;
    let mut records = 0;
    let mut from_server = 0;
    while off + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let rec = &bytes[off + 16..off + 16 + len];
        // IPv4 (20 bytes) then UDP: source port.
        let sport = u16::from_be_bytes([rec[20], rec[21]]);
        if sport == udp_port {
            from_server += 1;
        }
        records += 1;
        off += 16 + len;
    }
    assert_eq!(off, bytes.len(), "records fill the file exactly");
    // INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, DATA, DATA, SACKs, SHUTDOWN x3 at least.
    assert!(records >= 9, "{records} records");
    assert!(from_server >= 4 && from_server < records);
}

/// Listens on port 7, connects `assocs` associations to its own runtime's UDP port, sends
/// `messages` messages of `size` bytes on each, and counts what its listening ends receive.
struct SelfBlast {
    assocs: usize,
    messages: u64,
    size: usize,
    clients: HashMap<AssociationId, u64>,
    received: usize,
    delivered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SelfBlast {
    fn fill(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(sent) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(mut a) = cx.association(id) else {
            return;
        };
        let payload = vec![0x42u8; self.size];
        while *sent < self.messages {
            if a.send(0, Ppid(0), &payload[..], SendOptions::default())
                .is_err()
            {
                return;
            }
            *sent += 1;
        }
    }
}

impl App for SelfBlast {
    fn start(&mut self, cx: &mut Context<'_>) {
        cx.listen(7).expect("listen");
        let port = cx.info().local_udp_port.expect("UDP port");
        for _ in 0..self.assocs {
            let req = ConnectRequest::new(LOCALHOST, 7).with_encaps_port(port);
            let id = cx.connect(req).expect("connect");
            self.clients.insert(id, 0);
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected | Event::SendSpace => self.fill(cx, id),
            Event::DataReadable => {
                if let Some(mut a) = cx.association(id) {
                    while a.recv().is_some() {
                        self.received += 1;
                    }
                }
            }
            _ => {}
        }
    }

    fn poll(&mut self, _cx: &mut Context<'_>) {
        if self.received > 0 {
            let n = std::mem::take(&mut self.received);
            self.delivered
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[test]
fn a_runtime_connecting_to_itself_keeps_both_ends_on_one_worker_and_hands_nothing_over() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (workers, assocs, messages) = (2usize, 2usize, 300u64);
    let delivered = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&delivered);
    let rt = Runtime::start(runtime_config(workers), LinkSpec::Udp(udp(0)), move |_| {
        SelfBlast {
            assocs,
            messages,
            // Bursts of equal full-size packets from several associations: GSO runs.
            size: 1000,
            clients: HashMap::new(),
            received: 0,
            delivered: Arc::clone(&d),
        }
    })
    .expect("runtime");
    assert_eq!(rt.fallback(), None, "kernel steering is in place");
    let expected = workers * assocs * messages as usize;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while delivered.load(Ordering::Relaxed) < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(delivered.load(Ordering::Relaxed), expected);
    rt.stop();
    let stats = rt.join().expect("join");
    for (i, s) in stats.iter().enumerate() {
        // The INIT port hash is symmetric: every INIT a worker sends comes back to it.
        assert_eq!(
            s.endpoint.associations_created, assocs as u64,
            "worker {i} accepted its own associations"
        );
        // The SO_REUSEPORT program steers every packet to its owner (both ends of each
        // association live on one worker, so every GSO run of a worker comes back to it).
        assert_eq!((s.handoffs_out, s.handoffs_in), (0, 0), "worker {i}: {s:?}");
    }
}

#[test]
fn a_worker_that_spins_before_sleeping_echoes_everything_and_still_sleeps_when_idle() {
    let mut config = runtime_config(1);
    config.idle = dataplane::runtime::IdleMode::SpinThenBlock(Duration::from_micros(200));
    let server = Runtime::start(config, LinkSpec::Udp(udp(0)), |_| Echo::new(7)).expect("server");
    let udp_port = server.local_udp_port().expect("UDP port");
    let (rt, sockets) = client(1);
    let req = ConnectRequest::new(LOCALHOST, 7).with_encaps_port(udp_port);
    let a = sockets.connect(req, Some(TIMEOUT)).expect("connect");
    for i in 0..50u32 {
        a.send(Outgoing::new(0, Ppid(i), vec![i as u8; 64]))
            .unwrap();
        let m = expect_message(&a);
        assert_eq!((m.ppid.get(), m.data), (i, vec![i as u8; 64]));
        if i % 10 == 0 {
            // Longer than the spin budget: the worker goes to sleep meanwhile.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    close(a);
    rt.stop();
    rt.join().unwrap();
    server.stop();
    let stats = server.join().unwrap();
    assert!(stats[0].sleeps > 0, "{:?}", stats[0]);
}
