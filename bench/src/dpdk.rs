//! `bench dpdk` (feature `dpdk`): the DPDK backend against the io_uring raw-IP backend, one
//! sending core each, between two network namespaces.
//!
//! Setup (root): namespaces a and b joined by two veth pairs. Over the first pair the sender
//! in a uses the kernel (raw IP on io_uring, 198.18.0.1 -> 198.18.0.2); over the second the
//! sender is our DPDK endpoint on the af_packet PMD (`net_af_packet0,iface=vd-a`,
//! `--no-huge`; 198.18.1.1 -> 198.18.1.2, the veth end in a has no kernel address). The
//! receiver in b is the same in both cases: our runtime on the kernel's raw IP (io_uring),
//! pinned to core 1; the senders are pinned to core 0. One association, `size`-byte
//! messages, payload bytes per second delivered.
//!
//! What this measures, honestly: af_packet over a veth is a virtual PMD on top of the
//! kernel's packet sockets, so the DPDK figure is bounded by the kernel's veth and
//! af_packet paths and says nothing about NIC speed (a physical NIC with a native PMD skips
//! the kernel entirely). It shows the cost of our Ethernet/IP/ARP layer and the poll-mode
//! loop relative to the kernel raw path on the same machine.
//!
//! usrsctp: its `tsctp` example program (Debian `libusrsctp-examples`) sends over raw IP
//! (`-E 0`, root) from namespace a over the first veth pair to the same kind of receiver in
//! b (our runtime on raw IP, pinned to core 1, listening on tsctp's port 5001), `size`-byte
//! messages on one ordered stream for a bounded time (`-T`), then shuts down. It runs under
//! `taskset -c 0`, so all of usrsctp's threads (sender, timer, raw-socket receive) share
//! the one core our senders are pinned to. Messages/s and Gbit/s are what the receiver
//! delivered during the measurement window.
//!
//! "Per core": every sender is confined to core 0, so Gbit/s per core is the rate one core
//! sustains. The CPU time tsctp actually used (utime + stime of all its threads from
//! `/proc/PID/stat` over the window) is printed to stderr next to the figure: below one
//! core means tsctp was limited by something other than CPU (flow control, the receiver).

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dataplane::dpdk::{DpdkConfig, DpdkLink, EalConfig, InterfaceConfig, IpPrefix, PortSelector};
use dataplane::runtime::{App, Context, LinkSpec, Runtime, RuntimeConfig};
use sctp_stack::{AssociationId, Event};

use crate::Opts;
use crate::report::{Better, Row};
use crate::sctp::runtime::namespaces_with;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// usrsctp's throughput example (Debian `libusrsctp-examples`).
const TSCTP: &str = "/usr/lib/usrsctp/tsctp";
/// tsctp's default SCTP port, where the receiver listens for it.
const TSCTP_PORT: u16 = 5001;
/// How long the receiver runtime may take to stop.
const JOIN: Duration = Duration::from_secs(10);

/// Counts the payload bytes and messages delivered on associations to [`TSCTP_PORT`].
struct Sink {
    bytes: Arc<AtomicU64>,
    messages: Arc<AtomicU64>,
    local: (u64, u64),
}

impl App for Sink {
    fn start(&mut self, cx: &mut Context<'_>) {
        if let Err(e) = cx.listen(TSCTP_PORT) {
            eprintln!("bench dpdk: sink listen: {e:?}");
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        if event == Event::DataReadable
            && let Some(mut a) = cx.association(id)
        {
            // Bounded per event; the rest comes with the next DataReadable.
            for _ in 0..4096 {
                let Some(m) = a.recv() else { break };
                self.local.0 += m.data.len() as u64;
                self.local.1 += 1;
            }
        }
    }

    fn poll(&mut self, _cx: &mut Context<'_>) {
        if self.local != (0, 0) {
            self.bytes.fetch_add(self.local.0, Ordering::Relaxed);
            self.messages.fetch_add(self.local.1, Ordering::Relaxed);
            self.local = (0, 0);
        }
    }
}

/// CPU seconds (user + system, all threads) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(ticks as f64 / 100.0)
}

/// What the usrsctp run measured.
struct TsctpRun {
    bytes_per_s: f64,
    messages_per_s: f64,
    /// CPU cores tsctp used during the window (CPU seconds per second).
    cores: Option<f64>,
}

fn stop_child(mut child: Child, deadline: Instant) -> Result<(), String> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("tsctp exited with {st}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("tsctp did not finish in time (killed)".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("tsctp: {e}")),
        }
    }
}

/// tsctp in `ns_a` (pinned to core 0) sends `size`-byte messages over raw IP to our
/// receiver at 198.18.0.2 in `ns_b`; measured over `measure` after `warmup`.
fn usrsctp_run(
    ns_a: &str,
    ns_b: &str,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<TsctpRun, String> {
    if !std::path::Path::new(TSCTP).exists() {
        return Err(format!(
            "{TSCTP} is missing (apt-get install libusrsctp-examples)"
        ));
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let mut c = RuntimeConfig::default();
    c.workers = 1;
    c.endpoint.rng_seed = [63; 32];
    // As the other receivers of the bench (P2's): 1 MiB window and buffer, no Nagle.
    c.endpoint.association.pmtu = 1500;
    c.endpoint.association.receive_window = 1 << 20;
    c.endpoint.association.send_buffer_size = 1 << 20;
    c.endpoint.association.nodelay = true;
    c.pinning = dataplane::runtime::Pinning::Cores(vec![1]);
    c.thread_name = "bench-usrsctp-rx".into();
    let (b2, m2) = (bytes.clone(), messages.clone());
    let receiver = dataplane::netns::in_namespace(ns_b, move || {
        Runtime::start(c, raw(Ipv4Addr::new(198, 18, 0, 2)), move |_| Sink {
            bytes: b2.clone(),
            messages: m2.clone(),
            local: (0, 0),
        })
    })
    .map_err(|e| format!("namespace {ns_b}: {e}"))?
    .map_err(|e| format!("usrsctp receiver: {e}"))?;
    // Whole seconds (tsctp's -T); it stops sending after them and shuts down.
    let secs = (warmup + measure).as_secs() + 2;
    let child = Command::new("ip")
        .args([
            "netns", "exec", ns_a, "taskset", "-c", "0", TSCTP, "-E", "0",
        ])
        .args([
            "-l",
            &size.to_string(),
            "-T",
            &secs.to_string(),
            "198.18.0.2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let stop_rx = |rt: Runtime| -> Result<(), String> {
        rt.stop();
        match rt.join_timeout(JOIN) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("usrsctp receiver runtime: {e}")),
            Err(_) => Err("usrsctp receiver did not stop in time".into()),
        }
    };
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = stop_rx(receiver);
            return Err(format!("cannot start tsctp: {e}"));
        }
    };
    // `ip netns exec` and `taskset` exec into tsctp: the pid is tsctp's.
    let pid = child.id();
    std::thread::sleep(warmup);
    let (b0, m0, c0) = (
        bytes.load(Ordering::Relaxed),
        messages.load(Ordering::Relaxed),
        cpu_seconds(pid),
    );
    let start = Instant::now();
    std::thread::sleep(measure);
    let (b1, m1, c1) = (
        bytes.load(Ordering::Relaxed),
        messages.load(Ordering::Relaxed),
        cpu_seconds(pid),
    );
    let elapsed = start.elapsed().as_secs_f64();
    let done = stop_child(child, Instant::now() + Duration::from_secs(secs + 10));
    let rx = stop_rx(receiver);
    done?;
    rx?;
    if b1 == b0 {
        return Err("nothing delivered from tsctp".into());
    }
    Ok(TsctpRun {
        bytes_per_s: (b1 - b0) as f64 / elapsed,
        messages_per_s: (m1 - m0) as f64 / elapsed,
        cores: c0.zip(c1).map(|(a, b)| (b - a) / elapsed),
    })
}

fn raw(bind: Ipv4Addr) -> LinkSpec {
    LinkSpec::Raw(dataplane::raw::RawConfig {
        ipv6: false,
        bind4: Some(bind),
        ..Default::default()
    })
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let sizes = [1024usize, 8192];
    let metric = |size: usize, what: &str| format!("dpdk.veth_af_packet_{size}B_{what}");
    if !is_root() {
        return Ok(sizes
            .iter()
            .map(|&s| {
                Row::skipped(
                    metric(s, "throughput"),
                    "B/s",
                    "needs root (namespaces, EAL)",
                )
            })
            .collect());
    }
    let mut net = dataplane::netns::TestNet::new("bdpdk");
    let (a, b) = (|| -> std::io::Result<(String, String)> {
        let a = net.namespace("a")?;
        let b = net.namespace("b")?;
        net.veth(
            (&a, "vk-a", &["198.18.0.1/24"]),
            (&b, "vk-b", &["198.18.0.2/24"]),
        )?;
        net.veth((&a, "vd-a", &[]), (&b, "vd-b", &["198.18.1.2/24"]))?;
        net.drop_protocol_unreachable(&a)?;
        net.drop_protocol_unreachable(&b)?;
        // The kernel in a must stay out of the DPDK port's traffic.
        net.exec(&a, &["sysctl", "-qw", "net.ipv6.conf.vd-a.disable_ipv6=1"])?;
        Ok((a, b))
    })()
    .map_err(|e| format!("namespace setup failed: {e}"))?;
    let (warmup, measure) = if opts.quick {
        (Duration::from_millis(500), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let mut rows = Vec::new();
    for size in sizes {
        let kernel = namespaces_with(
            &a,
            &b,
            || Ok(raw(Ipv4Addr::new(198, 18, 0, 1))),
            raw(Ipv4Addr::new(198, 18, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            size,
            warmup,
            measure,
        );
        let dpdk = namespaces_with(
            &a,
            &b,
            || {
                let mut c = DpdkConfig::default();
                // The EAL starts once per process (here, in namespace a, where af_packet
                // opens its socket); later sizes reuse it and restart the port.
                c.eal = EalConfig::parse(
                    "--no-huge -m 512 --vdev=net_af_packet0,iface=vd-a --log-level=warning",
                )
                .map_err(|e| e.to_string())?;
                let addr = IpPrefix {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
                    len: 24,
                };
                let ic = InterfaceConfig::new(PortSelector::Name("net_af_packet0".into()), &[addr])
                    .map_err(|e| e.to_string())?;
                c.interfaces = vec![ic];
                let links = DpdkLink::open(&c).map_err(|e| e.to_string())?;
                Ok(LinkSpec::Links(links.into_iter().map(Into::into).collect()))
            },
            raw(Ipv4Addr::new(198, 18, 1, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            size,
            warmup,
            measure,
        );
        let usrsctp = usrsctp_run(&a, &b, size, warmup, measure);
        match (&dpdk, usrsctp) {
            (Ok(d), Ok(u)) => {
                let peer = "usrsctp tsctp (raw IP)";
                if let Some(c) = u.cores {
                    eprintln!(
                        "bench dpdk: tsctp {size} B used {:.2} cores (CPU time over the window)",
                        c
                    );
                }
                rows.push(Row::compare(
                    metric(size, "vs_usrsctp_messages"),
                    "msg/s",
                    d / size as f64,
                    peer,
                    u.messages_per_s,
                    Better::Higher,
                    None,
                ));
                rows.push(Row::compare(
                    metric(size, "vs_usrsctp_gbit_per_core"),
                    "Gbit/s",
                    d * 8.0 / 1e9,
                    peer,
                    u.bytes_per_s * 8.0 / 1e9,
                    Better::Higher,
                    None,
                ));
            }
            (Err(_), Ok(u)) => rows.push(Row::absolute(
                format!("dpdk.usrsctp_raw_{size}B_messages"),
                "msg/s",
                u.messages_per_s,
                None,
            )),
            (_, Err(e)) => rows.push(Row::skipped(
                metric(size, "vs_usrsctp_messages"),
                "msg/s",
                &format!("usrsctp: {e}"),
            )),
        }
        match (dpdk, kernel) {
            (Ok(d), Ok(k)) => {
                let peer = "io_uring raw";
                rows.push(Row::compare(
                    metric(size, "throughput"),
                    "B/s",
                    d,
                    peer,
                    k,
                    Better::Higher,
                    None,
                ));
                let m = |v: f64| v / size as f64;
                rows.push(Row::compare(
                    metric(size, "messages"),
                    "msg/s",
                    m(d),
                    peer,
                    m(k),
                    Better::Higher,
                    None,
                ));
                // One sending core on each side: bits per second per core.
                let g = |v: f64| v * 8.0 / 1e9;
                rows.push(Row::compare(
                    metric(size, "gbit_per_core"),
                    "Gbit/s",
                    g(d),
                    peer,
                    g(k),
                    Better::Higher,
                    None,
                ));
            }
            (Ok(d), Err(e)) => {
                eprintln!("bench dpdk: io_uring raw {size} B: {e}");
                rows.push(Row::absolute(metric(size, "throughput"), "B/s", d, None));
            }
            (Err(e), _) => rows.push(Row::skipped(metric(size, "throughput"), "B/s", &e)),
        }
    }
    drop(net);
    Ok(rows)
}
