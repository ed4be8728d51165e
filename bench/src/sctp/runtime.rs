//! P4 and P5: our stack inside the per-core runtime over loopback UDP encapsulation
//! (RFC 6951), unprivileged.
//!
//! - P4 (echo RTT): a client runtime (one worker, in-worker application) sends a 64-byte
//!   message to a server runtime (one worker, in-worker echo application) and waits for it to
//!   come back before sending the next; both workers sleep when idle (the headline row). A
//!   second row (`..._busypoll_rtt_...`, no goal) runs the same exchange with both workers
//!   busy-polling: on the shared 2-core machine its median is lower (7.4 us against 9.2 us
//!   blocking, bare UDP 4.7 us) but its p99 is milliseconds (14-24 ms), because a spinning
//!   worker loses its core to other processes and waits for its next time slice. Per round
//!   trip and side, the blocking runtime makes three system calls (`epoll_wait`, `recvmmsg`,
//!   `sendmsg`; `strace -c -f`) where the bare ping-pong makes two. Bare and runtime runs
//!   alternate in rounds. The
//!   peer, measured in the same run, is a bare UDP ping-pong of the same 64-byte payload
//!   between two threads on blocking `std::net::UdpSocket`s: the floor set by the kernel's
//!   loopback path and two thread wake-ups per round trip, which the runtime pays as well.
//! - P5 (scaling): one runtime whose workers connect associations to their own UDP port
//!   and send 1200-byte messages as fast as flow control allows. Each worker runs client and
//!   server ends: the INIT port hash is symmetric, so an association's INIT comes back to the
//!   worker that sent it and both ends live there; the kernel's `SO_REUSEPORT` program steers
//!   every later packet by tag to that worker's socket, so nothing crosses workers (the
//!   verbose counters show zero hand-offs). The same number of associations (16: enough that
//!   each of two workers still sends bursts long enough for full GSO runs) runs with one
//!   worker and with two, in interleaved rounds; the figure is the payload delivered per
//!   second. What runs where: two workers are pinned one per core; the load generator is the
//!   client ends inside those same workers, and the kernel's loopback work (softirq) runs in
//!   their system calls, so on a 2-core machine the workload uses both cores and nothing of
//!   it runs elsewhere. Other processes on the machine do compete, and with CFS autogroup
//!   (`/proc/sys/kernel/sched_autogroup_enabled`) the kernel gives each session one share of
//!   CPU time however many threads it runs: on a busy machine two workers then get no more
//!   CPU than one. The suite reports the CPUs the two workers got and bytes per CPU-second,
//!   and says so on stderr.
//!
//! Every loop is bounded in count and in time: runs stop at a deadline even when a peer
//! stalls, and runtimes are joined with a timeout.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dataplane::runtime::{App, Context, IdleMode, LinkSpec, Runtime, RuntimeConfig};
use dataplane::udp::UdpConfig;
use hdrhistogram::Histogram;
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, ConnectRequest, Event, SendError, SendOptions};

use super::ours::bench_config;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The SCTP port the echo and sink applications listen on.
const PORT: u16 = 7;
/// How long a runtime may take to stop before the suite reports an error.
const JOIN: Duration = Duration::from_secs(10);

fn udp() -> UdpConfig {
    UdpConfig {
        bind: LOCALHOST,
        port: 0,
        ..UdpConfig::default()
    }
}

fn config(workers: usize, seed: u8) -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.workers = workers;
    c.endpoint.rng_seed = [seed; 32];
    c.endpoint.association = bench_config();
    c.thread_name = format!("bench-w{seed}");
    c
}

fn stop(rt: Runtime, what: &str) -> Result<(), String> {
    rt.stop();
    match rt.join_timeout(JOIN) {
        Ok(Ok(stats)) => {
            if super::verbose() {
                for (i, w) in stats.iter().enumerate() {
                    eprintln!(
                        "bench: {what} worker {i}: iterations {} sleeps {} handoffs out {} in {} dropped {} tx_blocked {} link {:?}",
                        w.iterations,
                        w.sleeps,
                        w.handoffs_out,
                        w.handoffs_in,
                        w.handoff_dropped,
                        w.tx_blocked,
                        w.link
                    );
                }
            }
            Ok(())
        }
        Ok(Err(e)) => Err(format!("{what} runtime: {e}")),
        Err(_) => Err(format!("{what} runtime did not stop within {JOIN:?}")),
    }
}

/// Round-trip latencies (ns) of a run.
pub struct Rtt {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// Round trips (ns) collected over several runs.
pub struct RttHistogram(Histogram<u64>);

impl RttHistogram {
    /// An empty histogram.
    pub fn new() -> Result<Self, String> {
        Histogram::new(3)
            .map(RttHistogram)
            .map_err(|e| e.to_string())
    }

    /// Adds the round trips of one run.
    pub fn add(&mut self, run: &RttHistogram) -> Result<(), String> {
        self.0.add(&run.0).map_err(|e| e.to_string())
    }

    /// Median and 99th percentile.
    pub fn rtt(&self) -> Rtt {
        Rtt {
            p50: self.0.value_at_quantile(0.5),
            p99: self.0.value_at_quantile(0.99),
        }
    }
}

/// Echoes every message back on its stream; a message that finds no send space is dropped
/// (P4 keeps one message in flight, so this never happens there).
struct Echo;

impl App for Echo {
    fn start(&mut self, cx: &mut Context<'_>) {
        if let Err(e) = cx.listen(PORT) {
            eprintln!("bench: echo listen: {e:?}");
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        if !matches!(event, Event::DataReadable) {
            return;
        }
        let Some(mut a) = cx.association(id) else {
            return;
        };
        for _ in 0..1024 {
            let Some(m) = a.recv() else { break };
            let _ = a.send(m.stream, m.ppid, m.data, SendOptions::default());
        }
    }
}

/// Sends one message, waits for its echo, records the round trip, repeats.
struct PingClient {
    server_udp_port: u16,
    payload: Vec<u8>,
    warmup: u64,
    count: u64,
    deadline: Instant,
    id: Option<AssociationId>,
    sent_at: Instant,
    done: u64,
    hist: Option<Histogram<u64>>,
    result: mpsc::Sender<Result<Histogram<u64>, String>>,
}

impl PingClient {
    fn send(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut a) = cx.association(id) else {
            return;
        };
        self.sent_at = Instant::now();
        if let Err(e) = a.send(0, Ppid(0), self.payload.as_slice(), SendOptions::default()) {
            self.finish(cx, Err(format!("send: {e:?}")));
        }
    }

    fn finish(&mut self, cx: &mut Context<'_>, r: Result<(), String>) {
        if let Some(h) = self.hist.take() {
            let _ = self.result.send(r.map(|()| h));
        }
        cx.stop_runtime();
    }
}

impl App for PingClient {
    fn start(&mut self, cx: &mut Context<'_>) {
        let req = ConnectRequest::new(LOCALHOST, PORT).with_encaps_port(self.server_udp_port);
        match cx.connect(req) {
            Ok(id) => self.id = Some(id),
            Err(e) => self.finish(cx, Err(format!("connect: {e:?}"))),
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => self.send(cx, id),
            Event::DataReadable => {
                let mut got = false;
                if let Some(mut a) = cx.association(id) {
                    while a.recv().is_some() {
                        got = true;
                    }
                }
                if !got {
                    return;
                }
                let rtt = self.sent_at.elapsed().as_nanos() as u64;
                self.done += 1;
                if self.done > self.warmup
                    && let Some(h) = &mut self.hist
                {
                    let _ = h.record(rtt);
                }
                if self.done >= self.warmup + self.count {
                    self.finish(cx, Ok(()));
                } else if Instant::now() > self.deadline {
                    self.finish(cx, Err("echo run passed its deadline".into()));
                } else {
                    self.send(cx, id);
                }
            }
            Event::Closed => self.finish(cx, Err("association closed".into())),
            _ => {}
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        if Instant::now() > self.deadline + Duration::from_secs(1) {
            self.finish(cx, Err("echo run passed its deadline".into()));
        }
    }
}

/// P4, ours: echo round trips through two runtimes over loopback UDP; both workers idle the
/// way `idle` says (the headline row: [`IdleMode::Block`], sleeping as soon as they are idle).
pub fn runtime_echo(
    size: usize,
    warmup: u64,
    count: u64,
    limit: Duration,
    idle: IdleMode,
) -> Result<RttHistogram, String> {
    let mut server_config = config(1, 41);
    let mut client_config = config(1, 42);
    server_config.idle = idle;
    client_config.idle = idle;
    let server = Runtime::start(server_config, LinkSpec::Udp(udp()), |_| Echo)
        .map_err(|e| format!("echo server: {e}"))?;
    let Some(server_udp_port) = server.local_udp_port() else {
        let _ = stop(server, "echo server");
        return Err("echo server has no UDP port".into());
    };
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + limit;
    let payload = vec![0x5au8; size];
    let hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let client = Runtime::start(client_config, LinkSpec::Udp(udp()), move |_| PingClient {
        server_udp_port,
        payload: payload.clone(),
        warmup,
        count,
        deadline,
        id: None,
        sent_at: Instant::now(),
        done: 0,
        hist: Some(hist.clone()),
        result: tx.clone(),
    });
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            let _ = stop(server, "echo server");
            return Err(format!("echo client: {e}"));
        }
    };
    let r = rx
        .recv_timeout(limit + Duration::from_secs(5))
        .map_err(|_| "echo client reported nothing".to_string())
        .and_then(|r| r);
    let c = stop(client, "echo client");
    let s = stop(server, "echo server");
    let h = r?;
    c?;
    s?;
    Ok(RttHistogram(h))
}

/// P4, peer: a bare UDP ping-pong between two threads on blocking std sockets.
pub fn udp_echo(
    size: usize,
    warmup: u64,
    count: u64,
    limit: Duration,
) -> Result<RttHistogram, String> {
    let io = |e: std::io::Error| format!("udp echo: {e}");
    let server = UdpSocket::bind((LOCALHOST, 0)).map_err(io)?;
    let client = UdpSocket::bind((LOCALHOST, 0)).map_err(io)?;
    let server_addr = server.local_addr().map_err(io)?;
    client.connect(server_addr).map_err(io)?;
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let stop2 = stopping.clone();
    let deadline = Instant::now() + limit;
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        // Bounded by the stop flag and the run's deadline.
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline + Duration::from_secs(1) {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
            }
        }
    });
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; 65536];
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut result = Ok(());
    for i in 0..warmup + count {
        if Instant::now() > deadline {
            result = Err("bare UDP echo passed its deadline".to_string());
            break;
        }
        let t = Instant::now();
        if let Err(e) = client.send(&payload) {
            result = Err(io(e));
            break;
        }
        match client.recv(&mut buf) {
            Ok(n) if n == size => {}
            Ok(n) => {
                result = Err(format!("udp echo: {n} bytes back, sent {size}"));
                break;
            }
            Err(e) => {
                result = Err(io(e));
                break;
            }
        }
        if i >= warmup {
            let _ = hist.record(t.elapsed().as_nanos() as u64);
        }
    }
    stopping.store(true, Ordering::Relaxed);
    let _ = echo.join();
    result.map(|()| RttHistogram(hist))
}

/// Opens `assocs` associations to its own UDP port, sends `size`-byte messages on the client
/// ends as fast as flow control allows, and counts what the server ends receive.
struct Blast {
    /// Listen on [`PORT`] (the receiving side).
    listen: bool,
    /// Where to connect: `None` for the worker's own UDP port (P5), or a peer (P2).
    peer: Option<ConnectRequest>,
    assocs: usize,
    payload: Vec<u8>,
    clients: HashSet<AssociationId>,
    delivered: Arc<AtomicU64>,
    local: u64,
    /// Verbose runs: samples of the first client association's flow-control state.
    flow: Option<FlowSamples>,
}

/// Samples of a sending association's flow-control state (`BENCH_SCTP_VERBOSE=1`), printed
/// when the runtime stops: what limits the sender (cwnd, the peer's window, its own buffer).
#[derive(Default)]
struct FlowSamples {
    polls: u64,
    n: u64,
    cwnd: u64,
    flight: u64,
    peer_rwnd: u64,
    send_buffered: u64,
    min_peer_rwnd: u32,
}

impl FlowSamples {
    fn sample(&mut self, st: &sctp_stack::AssociationStatus) {
        self.n += 1;
        self.cwnd += u64::from(st.cwnd);
        self.flight += u64::from(st.flight_size);
        self.peer_rwnd += u64::from(st.peer_rwnd);
        self.send_buffered += st.send_buffered as u64;
        self.min_peer_rwnd = if self.n == 1 {
            st.peer_rwnd
        } else {
            self.min_peer_rwnd.min(st.peer_rwnd)
        };
    }

    fn report(&self) {
        let n = self.n.max(1);
        eprintln!(
            "bench: P2 sender flow ({} samples over {} polls): mean cwnd {} flight {} peer_rwnd {} (min {}) send_buffered {}",
            self.n,
            self.polls,
            self.cwnd / n,
            self.flight / n,
            self.peer_rwnd / n,
            self.min_peer_rwnd,
            self.send_buffered / n
        );
    }
}

impl Blast {
    fn fill(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut a) = cx.association(id) else {
            return;
        };
        // Bounded: the send buffer fills long before this count.
        for _ in 0..4096 {
            match a.send(0, Ppid(0), self.payload.as_slice(), SendOptions::default()) {
                Ok(()) => {}
                Err(SendError::WouldBlock) => break,
                Err(_) => break,
            }
        }
    }
}

impl App for Blast {
    fn start(&mut self, cx: &mut Context<'_>) {
        if self.listen
            && let Err(e) = cx.listen(PORT)
        {
            eprintln!("bench: blast listen: {e:?}");
            return;
        }
        let req = match (&self.peer, cx.info().local_udp_port) {
            (Some(r), _) => r.clone(),
            (None, Some(port)) => ConnectRequest::new(LOCALHOST, PORT).with_encaps_port(port),
            (None, None) => return,
        };
        for _ in 0..self.assocs {
            match cx.connect(req.clone()) {
                Ok(id) => {
                    self.clients.insert(id);
                }
                Err(e) => eprintln!("bench: blast connect: {e:?}"),
            }
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected | Event::SendSpace if self.clients.contains(&id) => self.fill(cx, id),
            Event::DataReadable => {
                if let Some(mut a) = cx.association(id) {
                    for _ in 0..4096 {
                        let Some(m) = a.recv() else { break };
                        self.local += m.data.len() as u64;
                    }
                }
            }
            Event::Closed => {
                self.clients.remove(&id);
            }
            _ => {}
        }
    }

    fn stop(&mut self, _cx: &mut Context<'_>) {
        if let Some(f) = &self.flow {
            f.report();
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        if let (Some(f), Some(&id)) = (self.flow.as_mut(), self.clients.iter().next()) {
            f.polls += 1;
            if f.polls % 1024 == 0
                && let Some(st) = cx.association(id).and_then(|a| a.status())
            {
                f.sample(&st);
            }
        }
        if self.local > 0 {
            self.delivered.fetch_add(self.local, Ordering::Relaxed);
            self.local = 0;
        }
    }
}

/// What a P5 run achieved.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scaling {
    /// Payload bytes delivered per second.
    pub bytes_per_sec: f64,
    /// CPUs this process kept busy meanwhile (CPU time over wall time): what the machine gave
    /// the workers.
    pub cpus_busy: f64,
}

impl Scaling {
    /// Payload bytes per CPU-second.
    pub fn per_cpu_second(&self) -> f64 {
        self.bytes_per_sec / self.cpus_busy.max(1e-9)
    }
}

/// P5: payload bytes per second delivered by `workers` workers running `assocs`
/// associations in total (each worker opens its share), measured over `measure` after
/// `warmup`.
pub fn scaling(
    workers: usize,
    assocs: usize,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<Scaling, String> {
    let delivered = Arc::new(AtomicU64::new(0));
    let d2 = delivered.clone();
    let per = assocs.div_ceil(workers);
    let mut cfg = config(workers, 50 + workers as u8);
    cfg.endpoint.max_associations = 4 * assocs + 16;
    let rt = Runtime::start(cfg, LinkSpec::Udp(udp()), move |_| Blast {
        listen: true,
        peer: None,
        assocs: per,
        payload: vec![0x5au8; size],
        clients: HashSet::new(),
        delivered: d2.clone(),
        local: 0,
        flow: None,
    })
    .map_err(|e| format!("scaling runtime: {e}"))?;
    std::thread::sleep(warmup);
    let start_bytes = delivered.load(Ordering::Relaxed);
    let start_cpu = process_cpu_ns();
    let start = Instant::now();
    std::thread::sleep(measure);
    let bytes = delivered.load(Ordering::Relaxed) - start_bytes;
    let elapsed = start.elapsed();
    let cpu = process_cpu_ns().saturating_sub(start_cpu);
    if super::verbose() {
        eprintln!(
            "bench: scaling {workers} worker(s): {:.1} MB/s, {:.2} CPUs busy, {:.1} MB per CPU-second",
            bytes as f64 / elapsed.as_secs_f64() / 1e6,
            cpu as f64 / elapsed.as_nanos() as f64,
            bytes as f64 / (cpu as f64 / 1e9).max(1e-9) / 1e6
        );
    }
    stop(rt, "scaling")?;
    if bytes == 0 {
        return Err(format!("{workers} worker(s) delivered nothing"));
    }
    Ok(Scaling {
        bytes_per_sec: bytes as f64 / elapsed.as_secs_f64(),
        cpus_busy: cpu as f64 / elapsed.as_nanos().max(1) as f64,
    })
}

/// CPU time (ns) all threads of this process have run, from every thread's
/// `/proc/self/task/*/schedstat` (user, system and the kernel's packet work done in our
/// system calls); 0 where that is unavailable.
pub fn process_cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Which encapsulation P2 runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encaps {
    /// SCTP directly over IP (raw sockets).
    Raw,
    /// SCTP over UDP (RFC 6951), port 9899 on both sides.
    Udp,
}

/// P2, ours: one sender runtime in namespace `ns_a` (one worker pinned to core 0) sending
/// `size`-byte messages on one association to a receiver runtime in `ns_b` (one worker
/// pinned to core 1) at `b_addr`; payload bytes per second delivered, measured over
/// `measure` after `warmup`.
///
/// What limits it with the default configuration (measured with `BENCH_SCTP_VERBOSE=1`,
/// which prints the sender's flow-control samples and both workers' counters): the sender
/// emits exactly Max.Burst (4) packets per transmit burst (`tx_packets / tx_batches` = 4.0)
/// and the receiver answers each received burst with one SACK, so the transfer is
/// stop-and-wait on 4 packets: one SACK per 4 packets, the sender's cwnd stays at about 4-8
/// MTUs (the window is never fully used, so slow start never grows it), and every round
/// trip costs both workers a sleep and a wake-up (sleeps = half the iterations). Raising
/// Max.Burst to 64 (`BENCH_SCTP_P2_MAX_BURST=64`) lets cwnd grow and gives about 6x;
/// busy-polling (`BENCH_SCTP_P2_IDLE=busy`) removes the wake-ups and gives about 4.5x.
/// Receiving 2 packets per `recv` (`BENCH_SCTP_P2_RX_BATCH=2`) makes the receiver SACK every
/// second packet as RFC 9260 §6.2 asks, and raw IP gets about 5x too (not UDP, whose GRO
/// hands the 4 packets over in one slot). None of these is the suite's default: the stack
/// marks a SACK due after 2 packets but sends it only after the whole receive burst, and
/// its Max.Burst counts packets per SACK; that is the stack's (or the worker's) to fix.
#[allow(clippy::too_many_arguments)]
pub fn namespaces(
    ns_a: &str,
    ns_b: &str,
    a_addr: Ipv4Addr,
    b_addr: Ipv4Addr,
    encaps: Encaps,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    // `BENCH_SCTP_P2_BACKEND=poll`: raw IP on the poll backend instead of io_uring (an
    // experiment knob like those of `p2_tuning`).
    let poll = std::env::var("BENCH_SCTP_P2_BACKEND").is_ok_and(|v| v == "poll");
    let links = |bind: Ipv4Addr| match encaps {
        Encaps::Raw => {
            let cfg = dataplane::raw::RawConfig {
                ipv6: false,
                bind4: Some(bind),
                ..Default::default()
            };
            if poll {
                LinkSpec::RawPoll(cfg)
            } else {
                LinkSpec::Raw(cfg)
            }
        }
        Encaps::Udp => LinkSpec::Udp(UdpConfig {
            bind: IpAddr::V4(bind),
            ..UdpConfig::default()
        }),
    };
    let (la, lb) = (links(a_addr), links(b_addr));
    namespaces_with(
        ns_a,
        ns_b,
        move || Ok(la),
        lb,
        IpAddr::V4(b_addr),
        size,
        warmup,
        measure,
    )
    .map_err(|e| format!("P2 {encaps:?} {size} B: {e}"))
}

/// The measurement behind [`namespaces`], with the links given by the caller: the sender's
/// links are made by `sender_links` on a thread inside `ns_a` (so backends that bind to the
/// namespace's devices at open time, like DPDK's af_packet PMD, open there), the receiver's
/// `receiver_links` are opened inside `ns_b`. Used by the DPDK bench (`crate::dpdk`).
#[allow(clippy::too_many_arguments)]
pub fn namespaces_with(
    ns_a: &str,
    ns_b: &str,
    sender_links: impl FnOnce() -> Result<LinkSpec, String> + Send + 'static,
    receiver_links: LinkSpec,
    b_addr: IpAddr,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    let delivered = Arc::new(AtomicU64::new(0));
    let ca = p2_config(0, 61);
    let receiver = p2_receiver(ns_b, receiver_links, delivered.clone())?;
    let req = ConnectRequest::new(b_addr, PORT);
    let sender = dataplane::netns::in_namespace(ns_a, move || {
        let la = sender_links().map_err(|e| format!("sender links: {e}"))?;
        Runtime::start(ca, la, move |_| Blast {
            listen: false,
            peer: Some(req.clone()),
            assocs: 1,
            payload: vec![0x5au8; size],
            clients: HashSet::new(),
            delivered: Arc::new(AtomicU64::new(0)),
            local: 0,
            flow: super::verbose().then(FlowSamples::default),
        })
        .map_err(|e| e.to_string())
    });
    let sender = match sender {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let _ = stop(receiver, "P2 receiver");
            return Err(format!("P2 sender: {e}"));
        }
        Err(e) => {
            let _ = stop(receiver, "P2 receiver");
            return Err(format!("namespace {ns_a}: {e}"));
        }
    };
    std::thread::sleep(warmup);
    let start_bytes = delivered.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(measure);
    let bytes = delivered.load(Ordering::Relaxed) - start_bytes;
    let elapsed = start.elapsed();
    let s = stop(sender, "P2 sender");
    let r = stop(receiver, "P2 receiver");
    s?;
    r?;
    if bytes == 0 {
        return Err("nothing delivered".to_string());
    }
    Ok(bytes as f64 / elapsed.as_secs_f64())
}

/// The runtime configuration of one P2 side: one worker pinned to `core`, 1500-byte PMTU.
fn p2_config(core: usize, seed: u8) -> RuntimeConfig {
    let mut c = config(1, seed);
    c.endpoint.association.pmtu = 1500;
    c.pinning = dataplane::runtime::Pinning::Cores(vec![core]);
    p2_tuning(&mut c);
    c
}

/// Experiment knobs for P2 (environment, for profiling runs; the defaults are the suite's):
/// `BENCH_SCTP_P2_IDLE` = `block` | `busy` | `spin:<µs>`, `BENCH_SCTP_P2_MAX_BURST` = n,
/// `BENCH_SCTP_P2_SACK_PACKETS` = n, `BENCH_SCTP_P2_RX_BATCH` = n. An unparsable value is ignored.
fn p2_tuning(c: &mut RuntimeConfig) {
    use dataplane::runtime::IdleMode;
    let var = |k: &str| std::env::var(k).ok();
    match var("BENCH_SCTP_P2_IDLE").as_deref() {
        Some("busy") => c.idle = IdleMode::BusyPoll,
        Some("block") => c.idle = IdleMode::Block,
        Some(s) => {
            if let Some(us) = s.strip_prefix("spin:").and_then(|v| v.parse::<u64>().ok()) {
                c.idle = IdleMode::SpinThenBlock(Duration::from_micros(us));
            }
        }
        None => {}
    }
    if let Some(n) = var("BENCH_SCTP_P2_MAX_BURST").and_then(|v| v.parse().ok()) {
        c.endpoint.association.max_burst = n;
    }
    if let Some(n) = var("BENCH_SCTP_P2_SACK_PACKETS").and_then(|v| v.parse().ok()) {
        c.endpoint.association.delayed_sack_packets = n;
    }
    if let Some(n) = var("BENCH_SCTP_P2_RX_BATCH").and_then(|v| v.parse().ok()) {
        c.rx_batch = n;
    }
}

/// Starts P2's receiver in `ns_b`: one worker pinned to core 1, listening on [`PORT`],
/// adding the payload bytes it delivers to `delivered`.
fn p2_receiver(ns_b: &str, links: LinkSpec, delivered: Arc<AtomicU64>) -> Result<Runtime, String> {
    let cb = p2_config(1, 62);
    // Runtime threads inherit the namespace of the thread that starts them.
    dataplane::netns::in_namespace(ns_b, move || {
        Runtime::start(cb, links, move |_| Blast {
            listen: true,
            peer: None,
            assocs: 0,
            payload: Vec::new(),
            clients: HashSet::new(),
            delivered: delivered.clone(),
            local: 0,
            flow: None,
        })
    })
    .map_err(|e| format!("namespace {ns_b}: {e}"))?
    .map_err(|e| format!("P2 receiver: {e}"))
}

/// usrsctp's throughput example (Debian `libusrsctp-examples`).
pub const TSCTP: &str = "/usr/lib/usrsctp/tsctp";

/// P2's usrsctp raw-IP peer: usrsctp's `tsctp` ([`TSCTP`]) in `ns_a` as the sender, over raw
/// IP (`-E 0`), pinned to core 0 with `taskset` (all of its threads share that core), sending
/// `size`-byte messages on one ordered stream to [`PORT`] at `b_addr` for a bounded time
/// (`-T`; killed if it overruns by 10 s). The receiver is the same as in [`namespaces`]: our
/// runtime on raw IP in `ns_b`, pinned to core 1. Payload bytes per second delivered to the
/// receiving application over `measure` after `warmup`.
///
/// Fairness: Debian's `tsctp` is built against a libusrsctp that writes a debug line for
/// nearly every event (measured: 1.6 million lines in a 3-second 1024-byte run, discarded to
/// `/dev/null` here but still formatted and written), so this figure likely understates
/// usrsctp; and its packets meet our receiver, which answers each received burst with one
/// SACK (see [`namespaces`]; 2.8 packets per SACK measured with `tsctp` as the sender). `tsctp` on both ends, equally logging,
/// measured 41 MB/s for 1024-byte messages. With the `usrsctp` feature the suite's raw-IP
/// peer is therefore usrsctp on both ends, quiet (`super::usrsctp::raw_both`), and this
/// figure is only printed on stderr.
pub fn tsctp_raw(
    ns_a: &str,
    ns_b: &str,
    b_addr: Ipv4Addr,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    use std::process::{Command, Stdio};
    if !std::path::Path::new(TSCTP).exists() {
        return Err(format!(
            "{TSCTP} is missing (apt-get install libusrsctp-examples)"
        ));
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let links = LinkSpec::Raw(dataplane::raw::RawConfig {
        ipv6: false,
        bind4: Some(b_addr),
        ..Default::default()
    });
    let receiver = p2_receiver(ns_b, links, delivered.clone())?;
    // Whole seconds: tsctp stops sending after them and shuts the association down.
    let secs = (warmup + measure).as_secs() + 2;
    let child = Command::new("ip")
        .args([
            "netns", "exec", ns_a, "taskset", "-c", "0", TSCTP, "-E", "0",
        ])
        .args(["-p", &PORT.to_string(), "-l", &size.to_string()])
        .args(["-T", &secs.to_string(), &b_addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = stop(receiver, "P2 tsctp receiver");
            return Err(format!("cannot start tsctp: {e}"));
        }
    };
    std::thread::sleep(warmup);
    let start_bytes = delivered.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(measure);
    let bytes = delivered.load(Ordering::Relaxed) - start_bytes;
    let elapsed = start.elapsed();
    // Bounded wait for tsctp's own end; killed when late.
    let deadline = Instant::now() + Duration::from_secs(secs + 10);
    let done = loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break Ok(()),
            Ok(Some(st)) => break Err(format!("tsctp exited with {st}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err("tsctp did not finish in time (killed)".to_string());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("tsctp: {e}"));
            }
        }
    };
    let r = stop(receiver, "P2 tsctp receiver");
    if bytes == 0 {
        return Err(match done {
            Err(e) => format!("nothing delivered from tsctp ({e})"),
            Ok(()) => "nothing delivered from tsctp".to_string(),
        });
    }
    // A figure measured before a late exit still stands; say so.
    if let Err(e) = done {
        eprintln!("bench: P2 tsctp {size} B: {e}");
    }
    r?;
    Ok(bytes as f64 / elapsed.as_secs_f64())
}
