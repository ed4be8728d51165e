//! `bench registrar`: the `rsp registrar` process measured through its transport
//! (SCTP over UDP encapsulation on loopback, the way users run it): registrations per
//! second with 10k PEs, handle resolutions per second, and the registrar's memory per PE.
//!
//! The peer is the sans-IO registrar core alone, fed the same encoded messages in this
//! process (no SCTP, no sockets): the ratio says how much of the core's speed survives the
//! SCTP stack, the runtime and the kernel's UDP path. (RSPLIB's rspregistrar is not
//! installed on the host; the guest images carry it for the interop suite.)
//!
//! The registrar runs as a child process (`rsp` next to this binary, or `$RSP`); build it
//! first with `cargo build --release -p appliance`. Load comes from one client runtime
//! with several associations, each keeping a window of requests outstanding. The machine's
//! two cores are shared by the registrar and the client, so the rates are lower bounds.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataplane::runtime::socket::{Association, Incoming, SocketConfig, Sockets};
use dataplane::runtime::{LinkSpec, RuntimeConfig, random_seed};
use dataplane::udp::UdpConfig;
use rserpool::Timestamp;
use rserpool::registrar::{AsapOrigin, AssocRef, Destination, Registrar, RegistrarConfig};
use rserpool::wire::{
    AsapMessage, PPID_ASAP, PeIdentifier, PolicyInfo, PoolElement, PoolHandle, RegistrarId,
    TransportParameter, TransportUse,
};
use sctp_stack::ConnectRequest;
use sctp_stack::wire::Ppid;

use crate::Opts;
use crate::handlespace::SplitMix;
use crate::report::{Better, Row};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Associations the load comes over.
const ASSOCIATIONS: usize = 8;
/// Requests outstanding per association.
const WINDOW: usize = 32;
/// Pools the PEs are spread over.
const POOLS: usize = 100;

fn encode(m: &AsapMessage) -> Result<Vec<u8>, String> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).map_err(|e| format!("encode: {e}"))?;
    b.truncate(n);
    Ok(b)
}

fn pool(i: usize) -> PoolHandle {
    PoolHandle::new(format!("BenchPool{:03}", i % POOLS).as_bytes())
}

fn registration(i: usize) -> AsapMessage {
    AsapMessage::Registration {
        pool_handle: pool(i),
        pool_element: PoolElement {
            identifier: PeIdentifier(i as u32 + 1),
            home_registrar: RegistrarId::UNDEFINED,
            registration_life: 3_600_000,
            user_transport: TransportParameter::sctp(
                7000 + (i % 1000) as u16,
                TransportUse::DATA_ONLY,
                vec![LOCALHOST],
            ),
            policy: PolicyInfo::round_robin(),
            asap_transport: None,
        },
    }
}

fn resolution(i: usize) -> AsapMessage {
    AsapMessage::HandleResolution {
        pool_handle: pool(i),
        items: None,
    }
}

/// The `rsp` binary: `$RSP`, else next to this executable.
fn rsp_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RSP") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let p = exe.with_file_name("rsp");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p appliance) or set RSP",
            p.display()
        ))
    }
}

fn free_udp_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free UDP port: {e}"))
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

/// The registrar child, killed on drop.
struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `count` requests (`make(i)` for i in the association's share) over each
/// association with `WINDOW` outstanding; every ASAP message received counts as an answer
/// (`check` rejects wrong ones). Returns the seconds taken.
fn drive(
    assocs: &[Association],
    count: usize,
    make: &(dyn Fn(usize) -> AsapMessage + Sync),
    check: &(dyn Fn(&AsapMessage) -> Result<(), String> + Sync),
) -> Result<f64, String> {
    let start = Instant::now();
    let n = assocs.len();
    std::thread::scope(|s| {
        let handles: Vec<_> = assocs
            .iter()
            .enumerate()
            .map(|(k, a)| {
                s.spawn(move || -> Result<(), String> {
                    let mine: Vec<usize> = (k..count).step_by(n).collect();
                    let mut next = 0;
                    let mut answered = 0;
                    while answered < mine.len() {
                        while next < mine.len() && next - answered < WINDOW {
                            let bytes = encode(&make(mine[next]))?;
                            a.send_data(0, Ppid(PPID_ASAP), bytes)
                                .map_err(|e| format!("send: {e}"))?;
                            next += 1;
                        }
                        match a.recv_timeout(Duration::from_secs(10)) {
                            Ok(Incoming::Message(m)) => {
                                let msg = AsapMessage::decode(&m.data)
                                    .map_err(|e| format!("bad answer: {e}"))?
                                    .message;
                                // Keep-alives and announces are not answers.
                                if matches!(
                                    msg,
                                    AsapMessage::EndpointKeepAlive { .. }
                                        | AsapMessage::ServerAnnounce { .. }
                                ) {
                                    continue;
                                }
                                check(&msg)?;
                                answered += 1;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                return Err(format!(
                                    "association {k}: {e} after {answered} of {} answers",
                                    mine.len()
                                ));
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| "a load thread panicked".to_owned())??;
        }
        Ok::<(), String>(())
    })?;
    Ok(start.elapsed().as_secs_f64())
}

fn registered(m: &AsapMessage) -> Result<(), String> {
    match m {
        AsapMessage::RegistrationResponse { reject: false, .. } => Ok(()),
        other => Err(format!("registration failed: {other:?}")),
    }
}

fn resolved(m: &AsapMessage) -> Result<(), String> {
    match m {
        AsapMessage::HandleResolutionResponse {
            pool_elements,
            error: None,
            ..
        } if !pool_elements.is_empty() => Ok(()),
        other => Err(format!("resolution failed: {other:?}")),
    }
}

/// Figures of one implementation.
struct Figures {
    registrations_per_s: f64,
    resolutions_per_s: f64,
    bytes_per_pe: f64,
}

/// Through the `rsp registrar` process.
fn through_rsp(pes: usize, resolutions: usize) -> Result<Figures, String> {
    let rsp = rsp_path()?;
    let udp = free_udp_port()?;
    let child = Command::new(&rsp)
        .args(["registrar", "--bind", "127.0.0.1", "--identifier", "1"])
        .args(["--udp-port", &udp.to_string()])
        .args(["--asap", "127.0.0.1:3863", "--enrp", "127.0.0.1:9901"])
        .args(["--keepalive-interval", "86400000"])
        .args(["--max-pes-per-address", &(pes + 1).to_string()])
        .args(["--max-owned-pes", &(pes + 1).to_string()])
        .args(["--max-hres-items", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", rsp.display()))?;
    let mut child = Child_(child);
    let pid = child.0.id();

    let mut config = RuntimeConfig::default();
    config.endpoint.rng_seed = random_seed().map_err(|e| format!("randomness: {e}"))?;
    config.endpoint.association.nodelay = true;
    config.thread_name = "bench-asap".to_owned();
    let links = LinkSpec::Udp(UdpConfig {
        bind: LOCALHOST,
        port: 0,
        default_remote_port: udp,
        ..UdpConfig::default()
    });
    let (rt, sockets) = Sockets::start(config, links, SocketConfig::default())
        .map_err(|e| format!("client runtime: {e}"))?;
    // The registrar serves once its mentor hunt is over (5 s without peers); connect and
    // probe until a resolution gets an answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut assocs = Vec::new();
    while assocs.len() < ASSOCIATIONS {
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("rsp registrar exited: {status}"));
        }
        if Instant::now() > deadline {
            return Err("no association with rsp registrar in 30 s".to_owned());
        }
        match sockets.connect(
            ConnectRequest::new(LOCALHOST, 3863).with_encaps_port(udp),
            Some(Duration::from_secs(2)),
        ) {
            Ok(a) => assocs.push(a),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let warm = registration(pes);
    let probe = &assocs[0];
    loop {
        if Instant::now() > deadline {
            return Err("rsp registrar did not start serving in 30 s".to_owned());
        }
        probe
            .send_data(0, Ppid(PPID_ASAP), encode(&warm)?)
            .map_err(|e| format!("send: {e}"))?;
        if let Ok(Incoming::Message(m)) = probe.recv_timeout(Duration::from_millis(500))
            && let Ok(d) = AsapMessage::decode(&m.data)
            && registered(&d.message).is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let late answers of the probe loop drain.
    while probe.recv_timeout(Duration::from_millis(300)).is_ok() {}

    let before = rss_kib(pid)?;
    let reg_secs = drive(&assocs, pes, &registration, &registered)?;
    let after = rss_kib(pid)?;
    let res_secs = drive(&assocs, resolutions, &resolution, &resolved)?;
    for a in &assocs {
        let _ = a.abort(b"bench done");
    }
    rt.stop();
    let _ = rt.join();
    drop(child);
    Ok(Figures {
        registrations_per_s: pes as f64 / reg_secs,
        resolutions_per_s: resolutions as f64 / res_secs,
        bytes_per_pe: (after.saturating_sub(before) * 1024) as f64 / pes as f64,
    })
}

/// The core alone, same messages, in this process.
fn core_alone(pes: usize, resolutions: usize) -> Result<Figures, String> {
    let now = Timestamp::from_secs(1);
    let config = RegistrarConfig {
        server_id: RegistrarId(1),
        mentor_hunt_timeout: Duration::ZERO,
        max_pes_per_address: pes + 1,
        max_owned_pes: pes + 1,
        keep_alive_interval: Duration::from_secs(86_400),
        ..RegistrarConfig::default()
    };
    let mut core = Registrar::new(config, Box::new(SplitMix(7)), now);
    core.handle_timeout(now);
    let addrs = [LOCALHOST];
    let mut run = |count: usize,
                   make: &dyn Fn(usize) -> AsapMessage,
                   check: &dyn Fn(&AsapMessage) -> Result<(), String>|
     -> Result<f64, String> {
        // Encoding is the client's work in the transport run too: done before timing.
        let msgs = (0..count)
            .map(|i| encode(&make(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let start = Instant::now();
        for (i, bytes) in msgs.iter().enumerate() {
            let from = AsapOrigin {
                assoc: AssocRef((i % ASSOCIATIONS) as u64 + 1),
                port: 5000 + (i % ASSOCIATIONS) as u16,
                addresses: &addrs,
            };
            core.handle_asap(now, from, bytes);
            while let Some(t) = core.poll_transmit() {
                if !matches!(t.to, Destination::Association(_)) {
                    continue;
                }
                // The answer is decoded as the client does.
                let msg = AsapMessage::decode(&t.bytes)
                    .map_err(|e| format!("bad answer: {e}"))?
                    .message;
                check(&msg)?;
            }
            while core.poll_event().is_some() {}
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let reg_secs = run(pes, &registration, &registered)?;
    let res_secs = run(resolutions, &resolution, &resolved)?;
    Ok(Figures {
        registrations_per_s: pes as f64 / reg_secs,
        resolutions_per_s: resolutions as f64 / res_secs,
        bytes_per_pe: f64::NAN,
    })
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let pes = 10_000;
    let resolutions = if opts.quick { 20_000 } else { 200_000 };
    let ours = through_rsp(pes, resolutions)?;
    let core = core_alone(pes, resolutions)?;
    let peer = "core, no transport";
    Ok(vec![
        Row::compare(
            "registrar.registrations.10k_pes",
            "op/s",
            ours.registrations_per_s,
            peer,
            core.registrations_per_s,
            Better::Higher,
            None,
        ),
        Row::compare(
            "registrar.resolutions.10k_pes",
            "op/s",
            ours.resolutions_per_s,
            peer,
            core.resolutions_per_s,
            Better::Higher,
            None,
        ),
        Row::absolute("registrar.rss_per_pe.10k_pes", "B", ours.bytes_per_pe, None),
    ])
}
