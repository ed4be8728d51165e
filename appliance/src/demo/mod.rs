//! `rsp demo`: a whole RSerPool system in one process, with failures, in about 18 seconds.
//!
//! Everything runs on loopback under UDP encapsulation (no root), each component on its own
//! runtime and UDP port:
//!
//! - two registrars, PR-A and PR-B, peered statically (the `rsp registrar` driver, in
//!   process); the PEs register with PR-A;
//! - four PEs: two of `PingPongPool`, two of `CalcAppPool` (the `rsp server` driver);
//! - four PUs: two PingPong and two CalcApp clients with two sessions each (the
//!   `rsp pingpong` / `rsp calcapp` driver).
//!
//! At 30 % of the run the PingPong PE and the CalcApp PE with the most sessions crash:
//! their runtimes stop without a word (no ABORT, no deregistration). Their PUs notice
//! (SCTP path failure, CalcApp keep-alives), fail over to the other PE and echo their last
//! cookie there, so the service continues where it stopped. At 55 % PR-A crashes the same
//! way: PR-B misses its PRESENCE, takes over its PEs (ENDPOINT_KEEP_ALIVE with flag H) and
//! the PUs that used PR-A move to PR-B.
//!
//! What happens is printed as it happens; the summary counts jobs completed, pings
//! answered, failovers and the longest service gap. The exit status is 0 only when nothing
//! was lost: every CalcApp job completed exactly once (or still running at the end),
//! PingPong reply numbers consecutive across the failovers, no session given up.
//!
//! The SCTP and RSerPool timers are tuned for a quick failover on loopback: RTO.min 50 ms,
//! RTO.max 200 ms, heartbeats every 200 ms, 4 retransmissions; registrar keep-alives and
//! PRESENCE every few hundred milliseconds.

// The configurations of rserpool and dataplane are #[non_exhaustive]: built from defaults.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::AnyLink;
use dataplane::runtime::{LinkSpec, Runtime, RuntimeConfig, random_seed};
use dataplane::signal::TerminationSignals;
use dataplane::udp::{UdpConfig, UdpLink};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rserpool::pe::PoolElementConfig;
use rserpool::pu::PoolUserConfig;
use rserpool::registrar::{Event as RegistrarEvent, RegistrarConfig};
use rserpool::services::client::{CalcAppClientConfig, PingPongConfig};
use rserpool::services::server::{ServiceConfig, ServiceKind};
use rserpool::session::{Client, ClientConfig};
use rserpool::wire::{
    PORT_ASAP, PORT_ENRP, PolicyInfo, PoolHandle, RegistrarId, TransportParameter, TransportUse,
};

use crate::exit::{ExitStatus, Failure, Outcome};
use crate::monitor::parse_seconds;
use crate::pool::apps::{ClientApp, ClientKind, ClientReport, Say, ServerReport};
use crate::pool::driver::DriverConfig;
use crate::pool::{Running, start};
use crate::registrar::config::Resolved;
use crate::registrar::start_embedded;
use crate::sctp::{on_signals, runtime_failure};
use crate::server::PeSetup;

/// Arguments of `rsp demo`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct DemoArgs {
    /// Length of the run in seconds (at least 6).
    #[arg(long, value_name = "SECONDS", default_value = "18", value_parser = parse_duration)]
    duration: Duration,
    /// Print the summary only.
    #[arg(long)]
    quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_seconds(s)?;
    if d < Duration::from_secs(6) {
        return Err(format!("'{s}': the demo needs at least 6 seconds"));
    }
    Ok(d)
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PINGPONG_POOL: &str = "PingPongPool";
const CALCAPP_POOL: &str = "CalcAppPool";

/// The demo's live output: elapsed time, component, what happened.
#[derive(Clone)]
struct Log {
    start: Instant,
    quiet: bool,
}

impl Log {
    fn say(&self, who: &str) -> Say {
        let (start, quiet, who) = (self.start, self.quiet, who.to_owned());
        Arc::new(move |line: &str| {
            if !quiet {
                out!("[{:6.2}s] {who:<5} {line}", start.elapsed().as_secs_f64());
            }
        })
    }

    fn line(&self, line: &str) {
        (self.say("demo"))(line);
    }
}

/// A UDP link on a free loopback port: the link and its port.
fn open_link() -> Result<(LinkSpec, u16), Failure> {
    let link = UdpLink::open(UdpConfig {
        bind: LOOPBACK,
        port: 0,
        ..UdpConfig::default()
    })
    .map_err(|e| Failure::setup(format!("cannot open a UDP socket on loopback: {e}")))?;
    let port = link.local_addr().port();
    Ok((LinkSpec::Links(vec![AnyLink::Udp(link)]), port))
}

/// The runtime configuration of every component: one worker, tuned timers.
fn runtime_config(name: &str, rng: &mut ChaCha8Rng) -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.thread_name = name.to_owned();
    rng.fill_bytes(&mut c.endpoint.rng_seed);
    let a = &mut c.endpoint.association;
    a.rto_min = Duration::from_millis(50);
    a.rto_initial = Duration::from_millis(100);
    a.rto_max = Duration::from_millis(200);
    a.heartbeat_interval = Some(Duration::from_millis(200));
    a.association_max_retrans = 4;
    a.path_max_retrans = 4;
    a.max_init_retransmits = 4;
    a.delayed_sack_timeout = Duration::from_millis(20);
    a.nodelay = true;
    c
}

fn seed(rng: &mut ChaCha8Rng) -> [u8; 32] {
    let mut s = [0u8; 32];
    rng.fill_bytes(&mut s);
    s
}

/// Counters the registrars' observers fill.
#[derive(Debug, Default)]
struct RegistrarCounters {
    registrations: AtomicU64,
    removals: AtomicU64,
    takeovers: AtomicU64,
    taken_over_pes: AtomicU64,
}

/// One registrar of the demo.
struct Pr {
    name: &'static str,
    runtime: Option<Runtime>,
}

/// One PE of the demo.
struct Pe {
    name: String,
    running: Option<Running>,
    report: Arc<Mutex<ServerReport>>,
    pingpong: bool,
}

/// One PU of the demo.
struct Pu {
    running: Option<Running>,
    report: Arc<Mutex<ClientReport>>,
    pingpong: bool,
}

/// Runs `rsp demo`.
pub fn run(args: DemoArgs, signals: TerminationSignals) -> Outcome {
    let log = Log {
        start: Instant::now(),
        quiet: args.quiet,
    };
    let mut rng = ChaCha8Rng::from_seed(
        random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?,
    );
    let counters = Arc::new(RegistrarCounters::default());

    // Links first: every component's UDP port is known before anything starts.
    let (pr_a_link, pr_a_udp) = open_link()?;
    let (pr_b_link, pr_b_udp) = open_link()?;
    let pe_names = ["pp-1", "pp-2", "ca-1", "ca-2"];
    let mut pe_links = Vec::new();
    for (i, _) in pe_names.iter().enumerate() {
        let (link, udp) = open_link()?;
        // SCTP ports of the PEs: distinct, above the well-known range.
        pe_links.push((link, udp, 20_000 + i as u16));
    }
    let pe_udp_ports: HashMap<u16, u16> = pe_links.iter().map(|(_, u, p)| (*p, *u)).collect();
    let asap_a = PORT_ASAP;
    let asap_b = PORT_ASAP + 1;
    let enrp_a = PORT_ENRP;
    let enrp_b = PORT_ENRP + 1;
    let registrar_udp: HashMap<(IpAddr, u16), u16> = [
        ((LOOPBACK, asap_a), pr_a_udp),
        ((LOOPBACK, asap_b), pr_b_udp),
    ]
    .into();
    log.line(&format!(
        "starting 2 registrars, 4 pool elements and 4 pool users on 127.0.0.1 (UDP ports {pr_a_udp}, {pr_b_udp}, ...)"
    ));

    // Registrars.
    let mut prs = Vec::new();
    for (name, id, link, asap, enrp, peer_enrp, peer_udp) in [
        ("PR-A", 0xa, pr_a_link, asap_a, enrp_a, enrp_b, pr_b_udp),
        ("PR-B", 0xb, pr_b_link, asap_b, enrp_b, enrp_a, pr_a_udp),
    ] {
        let mut core = RegistrarConfig::default();
        core.server_id = RegistrarId(id);
        core.asap_transports = vec![TransportParameter::sctp(
            asap,
            TransportUse::DATA_ONLY,
            vec![LOOPBACK],
        )];
        core.enrp_transport =
            TransportParameter::sctp(enrp, TransportUse::DATA_ONLY, vec![LOOPBACK]);
        core.static_peers = vec![TransportParameter::sctp(
            peer_enrp,
            TransportUse::DATA_ONLY,
            vec![LOOPBACK],
        )];
        core.announce_interval = None;
        core.keep_alive_interval = Duration::from_millis(500);
        core.keep_alive_timeout = Duration::from_millis(500);
        core.presence_interval = Duration::from_millis(300);
        core.max_time_last_heard = Duration::from_millis(700);
        core.max_time_no_response = Duration::from_millis(400);
        core.takeover_expiry = Duration::from_millis(500);
        core.mentor_hunt_timeout = Duration::from_millis(300);
        let mut peer_udp_ports: HashMap<(IpAddr, u16), u16> =
            [((LOOPBACK, peer_enrp), peer_udp)].into();
        // A registrar taking over connects to the PEs' ASAP transport (their user port).
        for (p, u) in &pe_udp_ports {
            peer_udp_ports.insert((LOOPBACK, *p), *u);
        }
        let resolved = Resolved {
            core,
            asap_port: asap,
            enrp_port: enrp,
            peer_udp_ports,
            asap_group: None,
            enrp_group: None,
        };
        let observer = registrar_observer(log.say(name), Arc::clone(&counters));
        let runtime = start_embedded(
            resolved,
            runtime_config(name, &mut rng),
            link,
            seed(&mut rng),
            observer,
            true,
        )?;
        prs.push(Pr {
            name,
            runtime: Some(runtime),
        });
    }

    // The registrars look for a mentor for a moment before they serve.
    std::thread::sleep(Duration::from_millis(400));

    // Pool elements, registered with PR-A.
    let mut pes = Vec::new();
    for (name, (link, _udp, port)) in pe_names.iter().zip(pe_links) {
        let pingpong = name.starts_with("pp");
        let (pool, kind) = if pingpong {
            (PINGPONG_POOL, ServiceKind::PingPong)
        } else {
            (CALCAPP_POOL, ServiceKind::CalcApp)
        };
        let mut service = ServiceConfig::new(kind);
        service.calcapp_capacity = 1e6;
        service.calcapp_max_jobs = 8;
        service.calcapp_cookie_interval = Duration::from_millis(100);
        let mut pe = PoolElementConfig::new(
            PoolHandle::from(pool),
            PolicyInfo::round_robin(),
            TransportParameter::sctp(port, TransportUse::DATA_ONLY, vec![LOOPBACK]),
        );
        pe.static_registrars = vec![TransportParameter::sctp(
            asap_a,
            TransportUse::DATA_ONLY,
            vec![LOOPBACK],
        )];
        pe.use_announces = false;
        pe.reregistration_interval = Duration::from_secs(2);
        pe.response_timeout = Duration::from_millis(500);
        pe.connect_timeout = Duration::from_millis(1000);
        pe.hunt_retry_interval = Duration::from_millis(300);
        let setup = PeSetup {
            service,
            pe,
            max_sessions: 64,
            load: None,
        };
        let report: Arc<Mutex<ServerReport>> = Arc::default();
        let dc = DriverConfig {
            listen_port: Some(port),
            registrar_local_port: port,
            registrar_udp_ports: registrar_udp.clone(),
            pe_udp_ports: HashMap::new(),
            silent_stop: true,
        };
        let (r, s, sd) = (Arc::clone(&report), log.say(name), seed(&mut rng));
        let running = start(runtime_config(name, &mut rng), link, dc, None, move |now| {
            setup.build(sd, r, s, now)
        })?;
        pes.push(Pe {
            name: (*name).to_owned(),
            running: Some(running),
            report,
            pingpong,
        });
    }

    // Give the registrars a moment to find each other and the PEs to register.
    std::thread::sleep(Duration::from_millis(800));

    // Pool users: two PingPong, two CalcApp, two sessions each, knowing both registrars.
    let mut pus = Vec::new();
    for (i, name) in ["pu-1", "pu-2", "pu-3", "pu-4"].iter().enumerate() {
        let pingpong = i < 2;
        let (link, _) = open_link()?;
        let kind = if pingpong {
            let mut c = PingPongConfig::default();
            c.interval = Duration::from_millis(50);
            ClientKind::PingPong(c)
        } else {
            let mut c = CalcAppClientConfig::default();
            c.job_interval = Duration::from_millis(100);
            c.job_size = 250_000;
            c.keep_alive_interval = Duration::from_millis(200);
            c.keep_alive_timeout = Duration::from_millis(500);
            ClientKind::CalcApp(c)
        };
        let pool = if pingpong {
            PINGPONG_POOL
        } else {
            CALCAPP_POOL
        };
        let mut pu = PoolUserConfig::default();
        pu.static_registrars = [asap_a, asap_b]
            .iter()
            .map(|p| TransportParameter::sctp(*p, TransportUse::DATA_ONLY, vec![LOOPBACK]))
            .collect();
        pu.use_announces = false;
        pu.request_timeout = Duration::from_millis(500);
        pu.connect_timeout = Duration::from_millis(1000);
        pu.hunt_retry_interval = Duration::from_millis(200);
        let mut cc = ClientConfig::default();
        cc.pu = pu;
        cc.max_failover_attempts = 20;
        cc.retry_interval = Duration::from_millis(200);
        cc.connect_timeout = Duration::from_millis(1000);
        let dc = DriverConfig {
            registrar_udp_ports: registrar_udp.clone(),
            pe_udp_ports: pe_udp_ports.clone(),
            silent_stop: false,
            ..DriverConfig::default()
        };
        let report: Arc<Mutex<ClientReport>> = Arc::default();
        let (r, s, sd) = (Arc::clone(&report), log.say(name), seed(&mut rng));
        let running = start(runtime_config(name, &mut rng), link, dc, None, move |now| {
            let core = Client::new(cc, Box::new(ChaCha8Rng::from_seed(sd)), now);
            let app = ClientApp::new(PoolHandle::from(pool), kind, 2, r, s, String::new());
            (core, app)
        })?;
        pus.push(Pu {
            running: Some(running),
            report,
            pingpong,
        });
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let caught = on_signals(signals, move || st.store(true, Ordering::SeqCst))?;

    let start_time = Instant::now();
    let crash_pe_at = args.duration.mul_f64(0.3);
    let crash_pr_at = args.duration.mul_f64(0.55);
    let mut pe_crashed = false;
    let mut pr_crashed = false;
    let mut crashed_pes = Vec::new();
    while start_time.elapsed() < args.duration && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let t = start_time.elapsed();
        if !pe_crashed && t >= crash_pe_at {
            pe_crashed = true;
            for pingpong in [true, false] {
                // The PE of each pool with the most sessions crashes.
                let victim = pes
                    .iter_mut()
                    .filter(|p| p.pingpong == pingpong && p.running.is_some())
                    .max_by_key(|p| {
                        p.report
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .sessions
                    });
                if let Some(pe) = victim {
                    let sessions = pe
                        .report
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .sessions;
                    log.line(&format!(
                        "*** crashing PE {} ({sessions} session(s)): its runtime stops, no ABORT, no deregistration",
                        pe.name
                    ));
                    if let Some(r) = pe.running.take() {
                        r.remote.stop_runtime();
                        let _ = r.join();
                    }
                    crashed_pes.push(pe.name.clone());
                }
            }
        }
        if !pr_crashed && t >= crash_pr_at {
            pr_crashed = true;
            let pr = &mut prs[0];
            log.line(&format!(
                "*** crashing registrar {} (home of the PEs): no ABORT, no goodbye",
                pr.name
            ));
            if let Some(rt) = pr.runtime.take() {
                rt.stop();
                rt.join().map_err(runtime_failure)?;
            }
        }
    }
    log.line("stopping");
    // PUs first, so that what they count is final.
    for pu in &mut pus {
        if let Some(r) = pu.running.take() {
            r.remote.stop_runtime();
            r.join()?;
        }
    }
    for pe in &mut pes {
        if let Some(r) = pe.running.take() {
            r.remote.stop_runtime();
            let _ = r.join();
        }
    }
    for pr in &mut prs {
        if let Some(rt) = pr.runtime.take() {
            rt.stop();
            let _ = rt.join();
        }
    }

    let mut pingpong = ClientReport {
        finished: true,
        ..ClientReport::default()
    };
    let mut calcapp = pingpong.clone();
    for pu in &pus {
        let r = pu
            .report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if pu.pingpong {
            pingpong.add(&r);
        } else {
            calcapp.add(&r);
        }
    }
    let mut all = pingpong.clone();
    all.add(&calcapp);
    let ok = all.nothing_lost();
    let p = &pingpong.pingpong;
    let c = &calcapp.calcapp;
    out!(
        "--- summary after {:.1} s ---",
        start_time.elapsed().as_secs_f64()
    );
    out!(
        "PingPong: {} session(s), {} ping(s) sent, {} answered, reply numbers {} ({} gap(s), {} duplicate(s))",
        pingpong.sessions,
        p.pings_sent,
        p.pongs_received,
        if p.gaps == 0 && p.duplicates == 0 {
            "consecutive"
        } else {
            "NOT consecutive"
        },
        p.gaps,
        p.duplicates
    );
    out!(
        "CalcApp: {} session(s), {} job(s) started, {} completed, {} still running, {} completed twice, {} lost",
        calcapp.sessions,
        c.jobs_started,
        c.jobs_completed,
        calcapp.jobs_running,
        c.duplicate_completions,
        c.lost
    );
    out!(
        "failovers: {} ({} completed with cookie replay, each within {} ms of noticing the loss); longest service gap: PingPong {} ms (Pings every 50 ms), CalcApp {} ms (between job completions)",
        all.failovers,
        all.failovers_completed,
        all.longest_failover.as_millis(),
        pingpong.longest_gap.as_millis(),
        calcapp.longest_gap.as_millis()
    );
    out!(
        "registrars: {} registration(s), {} removal(s), {} takeover(s) ({} PE(s) taken over); crashed: PE {}, registrar PR-A",
        counters.registrations.load(Ordering::Relaxed),
        counters.removals.load(Ordering::Relaxed),
        counters.takeovers.load(Ordering::Relaxed),
        counters.taken_over_pes.load(Ordering::Relaxed),
        if crashed_pes.is_empty() {
            "-".to_owned()
        } else {
            crashed_pes.join(", ")
        }
    );
    out!("sessions given up: {}", all.failed);
    out!(
        "result: {}",
        if ok {
            "nothing lost"
        } else {
            "SOMETHING WAS LOST"
        }
    );
    if let Some(s) = caught.get() {
        return Ok(ExitStatus::Signal(s.exit_code()));
    }
    if ok {
        Ok(ExitStatus::Success)
    } else {
        Err(Failure::failed("the demo lost something (see the summary)"))
    }
}

/// Prints a registrar's interesting events and counts them.
fn registrar_observer(say: Say, counters: Arc<RegistrarCounters>) -> crate::registrar::Observer {
    Arc::new(move |e: &RegistrarEvent| match e {
        RegistrarEvent::Registered {
            pool_handle,
            identifier,
            update: false,
        } => {
            counters.registrations.fetch_add(1, Ordering::Relaxed);
            say(&format!(
                "registered PE {:#010x} in {pool_handle}",
                identifier.0
            ));
        }
        RegistrarEvent::Removed {
            pool_handle,
            identifier,
            reason,
        } => {
            counters.removals.fetch_add(1, Ordering::Relaxed);
            say(&format!(
                "removed PE {:#010x} from {pool_handle}: {reason:?}",
                identifier.0
            ));
        }
        RegistrarEvent::PeerAdded(id) => say(&format!("peer {id} up")),
        RegistrarEvent::PeerRemoved(id) => say(&format!("peer {id} gone")),
        RegistrarEvent::TakeoverStarted { target } => {
            say(&format!("peer {target} is silent: starting a takeover"));
        }
        RegistrarEvent::TakeoverCompleted {
            target,
            pool_elements,
        } => {
            counters.takeovers.fetch_add(1, Ordering::Relaxed);
            counters
                .taken_over_pes
                .fetch_add(*pool_elements as u64, Ordering::Relaxed);
            say(&format!(
                "took over {target}: now home of {pool_elements} more PE(s)"
            ));
        }
        _ => {}
    })
}
