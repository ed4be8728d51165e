//! usrsctp (Debian's libusrsctp, through `dataplane::usrsctp`) as an in-memory association
//! pair: two one-to-one sockets on its AF_CONN link, packets moved by function calls in one
//! thread, timers driven by the real clock — the same shape as [`super::ours::Pair`].
//!
//! Same workload as ours: one ordered stream, Nagle off, 1 MiB send and receive buffers,
//! CRC32c computed and verified on every packet (usrsctp's default for AF_CONN). usrsctp
//! chooses its own path MTU for AF_CONN (1280 bytes by default, close to the 1228 of the
//! other pairs).

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use dataplane::usrsctp::{ConnSocket, Stack};

use super::{Throughput, Workload};

/// Ports of successive pairs (usrsctp keeps closed associations around for a while, so
/// every pair uses fresh ones).
static NEXT_PORT: AtomicU16 = AtomicU16::new(20_000);

fn port() -> u16 {
    let p = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    if p >= 60_000 {
        NEXT_PORT.store(20_000, Ordering::Relaxed);
    }
    p
}

fn err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("usrsctp {what}: {e}")
}

/// A connected pair: `a` sends, `b` receives.
pub struct Pair {
    stack: Stack,
    a: ConnSocket,
    b: ConnSocket,
    _listener: ConnSocket,
    last_tick: Instant,
    buf: Vec<u8>,
}

impl Pair {
    /// Connects a fresh pair.
    pub fn connect() -> Result<Pair, String> {
        let stack = Stack::get();
        let (pa, pb) = (port(), port());
        let listener = stack.socket().map_err(err("socket"))?;
        listener.set_nonblocking(true).map_err(err("nonblocking"))?;
        listener
            .set_buffers(1 << 20, 1 << 20)
            .map_err(err("buffers"))?;
        listener.set_nodelay(true).map_err(err("nodelay"))?;
        listener.bind(pb).map_err(err("bind"))?;
        listener.listen(1).map_err(err("listen"))?;
        let a = stack.socket().map_err(err("socket"))?;
        a.set_nonblocking(true).map_err(err("nonblocking"))?;
        a.set_buffers(1 << 20, 1 << 20).map_err(err("buffers"))?;
        a.set_nodelay(true).map_err(err("nodelay"))?;
        a.bind(pa).map_err(err("bind"))?;
        a.connect(pb).map_err(err("connect"))?;
        let mut last_tick = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        let b = loop {
            if Instant::now() > deadline {
                return Err("usrsctp handshake did not complete within 5 s".into());
            }
            pump(stack, &mut last_tick);
            if let Some(b) = listener.accept().map_err(err("accept"))? {
                break b;
            }
        };
        b.set_nonblocking(true).map_err(err("nonblocking"))?;
        b.set_nodelay(true).map_err(err("nodelay"))?;
        Ok(Pair {
            stack,
            a,
            b,
            _listener: listener,
            last_tick,
            buf: vec![0; 65536],
        })
    }

    fn pump(&mut self) {
        pump(self.stack, &mut self.last_tick);
    }

    /// Sends `w.messages` messages of `w.size` bytes from `a` to `b` (or until `w.limit`
    /// passes) and counts the complete messages `b` received.
    pub fn transfer(&mut self, w: &Workload) -> Result<Throughput, String> {
        let payload = vec![0x5au8; w.size];
        let (mut sent, mut got, mut bytes) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while got < w.messages {
            if start.elapsed() > w.limit {
                break;
            }
            while sent < w.messages {
                match self.a.send(&payload) {
                    Ok(_) => sent += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("usrsctp send: {e}")),
                }
            }
            self.pump();
            loop {
                match self.b.recv(&mut self.buf) {
                    Ok((n, eor)) => {
                        bytes += n as u64;
                        got += u64::from(eor);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("usrsctp recv: {e}")),
                }
            }
        }
        Ok(Throughput {
            messages: got,
            bytes,
            elapsed: start.elapsed(),
        })
    }
}

/// Moves every queued packet (bounded) and advances the timers by the elapsed time.
fn pump(stack: Stack, last_tick: &mut Instant) {
    let ms = last_tick.elapsed().as_millis();
    if ms > 0 {
        stack.handle_timers(ms.min(u128::from(u32::MAX)) as u32);
        *last_tick += Duration::from_millis(ms as u64);
    }
    for _ in 0..1_000_000 {
        let Some(pkt) = stack.take_output() else {
            break;
        };
        stack.input(&pkt);
    }
}

/// AF_CONN address numbers of successive P2 runs (two per run, fresh each time).
static NEXT_ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(100);

/// P2, usrsctp: a quiet tsctp-like sender in namespace `ns_a` and receiver in `ns_b`, one
/// association, `size`-byte messages. usrsctp runs on its AF_CONN interface and its packets
/// travel as UDP payloads between the namespaces (the RFC 6951 format: the SCTP packet is the
/// UDP payload, port 9899 at the receiver), one thread per side that moves packets, sends or
/// receives, busy-polling non-blocking sockets. Payload bytes per second delivered over
/// `measure` after `warmup`.
pub fn over_udp(
    ns_a: &str,
    ns_b: &str,
    a_addr: std::net::Ipv4Addr,
    b_addr: std::net::Ipv4Addr,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    let stack = Stack::get();
    let n = NEXT_ADDR.fetch_add(2, Ordering::Relaxed);
    let (x, y) = match (stack.register(n), stack.register(n + 1)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err("usrsctp: cannot register addresses".into()),
    };
    // Sockets belong to the namespace they were created in, whichever thread uses them.
    let ns = |e: io::Error| format!("usrsctp P2 namespace: {e}");
    let sock_b = dataplane::netns::in_namespace(ns_b, move || UdpSocket::bind((b_addr, 9899)))
        .map_err(ns)?
        .map_err(err("udp bind"))?;
    let sock_a = dataplane::netns::in_namespace(ns_a, move || UdpSocket::bind((a_addr, 0)))
        .map_err(ns)?
        .map_err(err("udp bind"))?;
    sock_a.connect((b_addr, 9899)).map_err(err("udp connect"))?;
    sock_b
        .connect(sock_a.local_addr().map_err(err("udp"))?)
        .map_err(err("udp connect"))?;
    for s in [&sock_a, &sock_b] {
        s.set_nonblocking(true).map_err(err("udp nonblocking"))?;
        // The buffers our runtime's UDP links ask for (capped by net.core.[rw]mem_max).
        let s = socket2::SockRef::from(s);
        let _ = s.set_recv_buffer_size(dataplane::udp::DEFAULT_SOCKET_BUFFER);
        let _ = s.set_send_buffer_size(dataplane::udp::DEFAULT_SOCKET_BUFFER);
    }
    let (pa, pb) = (port(), port());
    let listener = stack.socket().map_err(err("socket"))?;
    listener.set_nonblocking(true).map_err(err("nonblocking"))?;
    listener
        .set_buffers(1 << 20, 1 << 20)
        .map_err(err("buffers"))?;
    listener.bind_on(y, pb).map_err(err("bind"))?;
    listener.listen(1).map_err(err("listen"))?;
    let a = stack.socket().map_err(err("socket"))?;
    a.set_nonblocking(true).map_err(err("nonblocking"))?;
    a.set_buffers(1 << 20, 1 << 20).map_err(err("buffers"))?;
    a.set_nodelay(true).map_err(err("nodelay"))?;
    a.bind_on(x, pa).map_err(err("bind"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let hard_stop = Instant::now() + warmup + measure + Duration::from_secs(10);
    // Receiver: UDP in -> usrsctp (link y), usrsctp out (link y) -> UDP, read messages.
    let receiver = {
        let stop = stop.clone();
        let delivered = delivered.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let mut pkt = vec![0u8; 65536];
            let mut buf = vec![0u8; 65536];
            let mut conn: Option<ConnSocket> = None;
            while !stop.load(Ordering::Relaxed) && Instant::now() < hard_stop {
                for _ in 0..64 {
                    match sock_b.recv(&mut pkt) {
                        Ok(n) => stack.input_on(y, &pkt[..n]),
                        Err(_) => break,
                    }
                }
                while let Some(p) = stack.take_output_for(y) {
                    let _ = sock_b.send(&p);
                }
                if conn.is_none() {
                    conn = listener.accept().map_err(err("accept"))?;
                }
                if let Some(c) = &conn {
                    for _ in 0..1024 {
                        match c.recv(&mut buf) {
                            Ok((n, _)) => {
                                delivered.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(format!("usrsctp recv: {e}")),
                        }
                    }
                }
            }
            Ok(())
        })
    };
    // Sender: the association, UDP in -> usrsctp (link x), usrsctp out (link x) -> UDP, timers.
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<(), String> {
            a.connect_via(x, pb).map_err(err("connect"))?;
            let payload = vec![0x5au8; size];
            let mut pkt = vec![0u8; 65536];
            let mut last_tick = Instant::now();
            while !stop.load(Ordering::Relaxed) && Instant::now() < hard_stop {
                for _ in 0..256 {
                    match a.send(&payload) {
                        Ok(_) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::NotConnected =>
                        {
                            break;
                        }
                        Err(e) => return Err(format!("usrsctp send: {e}")),
                    }
                }
                while let Some(p) = stack.take_output_for(x) {
                    let _ = sock_a.send(&p);
                }
                for _ in 0..64 {
                    match sock_a.recv(&mut pkt) {
                        Ok(n) => stack.input_on(x, &pkt[..n]),
                        Err(_) => break,
                    }
                }
                while let Some(p) = stack.take_output_for(x) {
                    let _ = sock_a.send(&p);
                }
                let ms = last_tick.elapsed().as_millis();
                if ms > 0 {
                    stack.handle_timers(ms.min(1000) as u32);
                    last_tick += Duration::from_millis(ms as u64);
                }
            }
            Ok(())
        })
    };
    std::thread::sleep(warmup);
    let start_bytes = delivered.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(measure);
    let bytes = delivered.load(Ordering::Relaxed) - start_bytes;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let s = sender
        .join()
        .map_err(|_| "usrsctp sender panicked".to_string())?;
    let r = receiver
        .join()
        .map_err(|_| "usrsctp receiver panicked".to_string())?;
    s?;
    r?;
    if bytes == 0 {
        return Err(format!("usrsctp P2 {size} B: nothing delivered"));
    }
    Ok(bytes as f64 / elapsed.as_secs_f64())
}

/// The hidden `bench` subcommand that runs one end of [`raw_both`] in its own process.
pub const RAW_PEER_CMD: &str = "usrsctp-raw-peer";

/// P2's usrsctp raw-IP peer with usrsctp on both ends: a quiet equivalent of `tsctp -E 0`
/// (no debug output) as the receiver in `ns_b` (pinned to core 1) and as the sender in
/// `ns_a` (pinned to core 0), each its own process (libusrsctp is one stack per process,
/// opening its raw sockets in the namespace it starts in): this binary re-run with
/// [`RAW_PEER_CMD`] under `ip netns exec` and `taskset`. One association, one ordered
/// stream, Nagle off, 1 MiB buffers, `size`-byte messages; the receiver counts the payload
/// bytes delivered over `measure` after `warmup` (from its first byte) and prints them; then
/// both processes are killed (at the latest 10 s after the sender's time is up).
pub fn raw_both(
    ns_a: &str,
    ns_b: &str,
    b_addr: std::net::Ipv4Addr,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let port = port().to_string();
    let (w, m) = (
        warmup.as_millis().to_string(),
        measure.as_millis().to_string(),
    );
    // The sender runs a little longer than the receiver's window needs.
    let secs = (warmup + measure).as_secs() + 2;
    let spawn = |ns: &str, core: &str, role: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "taskset",
                "-c",
                core,
                &exe,
                RAW_PEER_CMD,
            ])
            .args([role, &b_addr.to_string(), &port, &size.to_string()])
            .args([&secs.to_string(), &w, &m])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {role}: {e}"))
    };
    let mut recv = spawn(ns_b, "1", "recv")?;
    // The receiver must listen before the sender's INIT arrives (a refused INIT is answered
    // with an ABORT); the sender also retries its INIT on its own.
    std::thread::sleep(Duration::from_millis(200));
    let mut send = match spawn(ns_a, "0", "send") {
        Ok(c) => c,
        Err(e) => {
            let _ = recv.kill();
            let _ = recv.wait();
            return Err(e);
        }
    };
    // The receiver prints its figure when its window ends; read it on a thread so the wait
    // is bounded, then stop both ends (the sender would otherwise keep sending until its
    // time is up, and a receiver gone mid-association leaves it blocked).
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = recv.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            use std::io::BufRead;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(secs + 10)).ok();
    let mut stderr = String::new();
    for child in [&mut recv, &mut send] {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(mut e) = recv.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = reader.join();
    let line = line.unwrap_or_default();
    let mut it = line.split_whitespace();
    match (
        it.next().and_then(|v| v.parse::<u64>().ok()),
        it.next().and_then(|v| v.parse::<u64>().ok()),
    ) {
        (Some(bytes), Some(nanos)) if bytes > 0 && nanos > 0 => {
            Ok(bytes as f64 / (nanos as f64 / 1e9))
        }
        _ => Err(format!(
            "usrsctp raw peer measured nothing (receiver said {:?}, {})",
            line.trim(),
            stderr.trim()
        )),
    }
}

/// The [`RAW_PEER_CMD`] process: `recv|send ADDR PORT SIZE SECS WARMUP_MS MEASURE_MS`. The
/// receiver binds ADDR:PORT, accepts one association and prints `BYTES NANOS` (payload bytes
/// delivered in its window, and the window's length) when the window ends or the association
/// does; the sender connects to ADDR:PORT and sends SIZE-byte messages for SECS seconds.
/// Returns the process exit code.
pub fn raw_peer_main(args: &[String]) -> i32 {
    match raw_peer(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{RAW_PEER_CMD}: {e}");
            1
        }
    }
}

fn raw_peer(args: &[String]) -> Result<(), String> {
    use dataplane::usrsctp_raw::RawStack;
    use std::io::Write;
    let [role, addr, port, size, secs, warmup, measure] = args else {
        return Err("usage: recv|send ADDR PORT SIZE SECS WARMUP_MS MEASURE_MS".into());
    };
    let bad = |what: &str| format!("bad {what}");
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad("address"))?;
    let port: u16 = port.parse().map_err(|_| bad("port"))?;
    let size: usize = size.parse().map_err(|_| bad("size"))?;
    let secs: u64 = secs.parse().map_err(|_| bad("seconds"))?;
    let warmup = Duration::from_millis(warmup.parse().map_err(|_| bad("warmup"))?);
    let measure = Duration::from_millis(measure.parse().map_err(|_| bad("measure"))?);
    if size == 0 || size > 1 << 16 {
        return Err(bad("size"));
    }
    let stack = RawStack::get();
    let so = stack.socket().map_err(err("socket"))?;
    so.set_buffers(1 << 20, 1 << 20).map_err(err("buffers"))?;
    so.set_nodelay(true).map_err(err("nodelay"))?;
    let end = Instant::now() + Duration::from_secs(secs);
    match role.as_str() {
        "recv" => {
            so.bind(addr, port).map_err(err("bind"))?;
            so.listen(1).map_err(err("listen"))?;
            let a = so.accept().map_err(err("accept"))?;
            let mut buf = vec![0u8; 1 << 16];
            let mut first: Option<Instant> = None;
            let mut bytes = 0u64;
            let mut window: Option<Duration> = None;
            // Bounded in time: the sender stops after `secs` and closes the association,
            // which ends `recv`; the parent kills this process if that never comes. After
            // the window the receiver keeps reading (uncounted), so the sender never blocks.
            while Instant::now() < end + Duration::from_secs(2) {
                let n = match a.recv(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = Instant::now();
                let t0 = *first.get_or_insert(now);
                if window.is_none() && now >= t0 + warmup + measure {
                    window = Some(measure);
                    let mut out = std::io::stdout();
                    writeln!(out, "{bytes} {}", measure.as_nanos()).map_err(err("stdout"))?;
                    out.flush().map_err(err("stdout"))?;
                }
                if window.is_none() && now >= t0 + warmup {
                    bytes += n as u64;
                }
            }
            // An association that ended before the window did: the window up to now.
            if window.is_none() {
                let w = first.map_or(Duration::ZERO, |t0| {
                    Instant::now().saturating_duration_since(t0 + warmup)
                });
                let mut out = std::io::stdout();
                writeln!(out, "{bytes} {}", w.as_nanos()).map_err(err("stdout"))?;
                out.flush().map_err(err("stdout"))?;
            }
        }
        "send" => {
            so.connect(addr, port).map_err(err("connect"))?;
            let msg = vec![0x5au8; size];
            // Bounded in time; a send that fails (the receiver left) ends it early.
            while Instant::now() < end {
                if so.send(&msg).is_err() {
                    break;
                }
            }
        }
        _ => return Err(bad("role")),
    }
    Ok(())
}
