//! `rsp server`: a pool element offering one of RSPLIB's services (like `rspserver`).
//!
//! `rsp server --pingpong --pool PingPongPool --registrar 127.0.0.1:3863/9900 --port 5001`
//! registers a PE of the pool with a registrar (RFC 5352 §3.1) and serves the sessions pool
//! users open on its SCTP port (Enhanced Mode: cookies after every Pong and during CalcApp
//! jobs, so that a PU failing over to another PE continues where it left off).
//!
//! The PE's ASAP transport (where a registrar taking over reaches it) is its user port:
//! the association to the registrar is opened from that port.
//!
//! Statistics are printed every `--stats` seconds; `--duration` bounds the run; SIGINT or
//! SIGTERM stop it (exit 0): the PE deregisters (RFC 5352 §3.2), waits up to 2 s for the
//! answer, then aborts its associations (a second signal ends it at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use dataplane::runtime::random_seed;
use dataplane::signal::TerminationSignals;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rserpool::pe::PoolElementConfig;
use rserpool::services::server::{ServiceConfig, ServiceHost, ServiceKind};
use rserpool::services::wire::component_group;
use rserpool::session::{Server, ServerConfig};
use rserpool::wire::{PolicyInfo, PoolHandle, TransportParameter, TransportUse};

use crate::exit::{ExitStatus, Failure, Outcome};
use crate::monitor::parse_seconds;
use crate::pool::apps::{Say, ServerReport, ServiceApp};
use crate::pool::policy::{is_adaptive, parse_fraction, parse_policy};
use crate::pool::{PoolArgs, start};
use crate::sctp::{on_signals, parse_local_port};

/// Arguments of `rsp server`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
#[command(group(ArgGroup::new("service").required(true).args(
    ["echo", "discard", "daytime", "chargen", "pingpong", "calcapp"])))]
pub struct ServerArgs {
    /// Echo: every message comes back.
    #[arg(long)]
    echo: bool,
    /// Discard: messages are dropped.
    #[arg(long)]
    discard: bool,
    /// Daytime: the time of day, then the session closes.
    #[arg(long)]
    daytime: bool,
    /// CharGen: a stream of character lines.
    #[arg(long)]
    chargen: bool,
    /// PingPong (PPID 33): a Pong for every Ping, with a cookie after each.
    #[arg(long)]
    pingpong: bool,
    /// CalcApp (PPID 34): jobs on a shared capacity, cookies with their progress.
    #[arg(long)]
    calcapp: bool,
    /// The pool handle to register in.
    #[arg(long, value_name = "HANDLE", value_parser = parse_pool_handle)]
    pool: String,
    /// Member selection policy, RSPLIB spelling: RoundRobin, WeightedRoundRobin:3,
    /// Random, WeightedRandom:2, Priority:5, LeastUsed, LeastUsedDegradation:5%, ...
    #[arg(long, value_name = "NAME[:ARG...]", default_value = "RoundRobin", value_parser = parse_policy)]
    policy: PolicyInfo,
    /// A fixed load (0..1 or N%) for the adaptive (Least Used) policies; default: the
    /// CalcApp jobs running as a share of --max-jobs, else 0.
    #[arg(long, value_name = "LOAD", value_parser = parse_fraction)]
    load: Option<u32>,
    /// SCTP port of the service (0: a random port of the dynamic range).
    #[arg(long, value_name = "PORT", default_value_t = 0, value_parser = parse_local_port)]
    port: u16,
    /// CalcApp: calculations per second of this PE, shared by its jobs.
    #[arg(long, value_name = "N", default_value_t = 1e6, value_parser = parse_capacity)]
    capacity: f64,
    /// CalcApp: most jobs at once (more are rejected).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_jobs: u32,
    /// CalcApp: milliseconds between the cookies of a running job.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    cookie_interval: u64,
    /// Most sessions at once.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_sessions: u32,
    /// Seconds between statistics lines (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    stats: u64,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Milliseconds between re-registrations (RSPLIB: 30000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    reregistration_interval: Option<u64>,
    #[command(flatten)]
    pool_args: PoolArgs,
}

/// A pool handle: 1 to 32 bytes (RSPLIB's limit).
pub fn parse_pool_handle(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 32 {
        return Err(format!("pool handle '{s}' must have 1 to 32 bytes"));
    }
    Ok(s.to_owned())
}

fn parse_capacity(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a positive number of calculations per second"
        )),
    }
}

impl ServerArgs {
    fn kind(&self) -> ServiceKind {
        if self.echo {
            ServiceKind::Echo
        } else if self.discard {
            ServiceKind::Discard
        } else if self.daytime {
            ServiceKind::Daytime
        } else if self.chargen {
            ServiceKind::CharGen
        } else if self.pingpong {
            ServiceKind::PingPong
        } else {
            ServiceKind::CalcApp
        }
    }
}

/// Everything needed to run one PE, from the command line or from `rsp demo`.
pub struct PeSetup {
    /// The service.
    pub service: ServiceConfig,
    /// The PE core's configuration (pool, policy, user transport, registrars).
    pub pe: PoolElementConfig,
    /// Most sessions.
    pub max_sessions: usize,
    /// A fixed load for adaptive policies.
    pub load: Option<u32>,
}

impl PeSetup {
    /// The session core and the application for this PE, starting at `now`.
    pub fn build(
        self,
        seed: [u8; 32],
        report: Arc<Mutex<ServerReport>>,
        say: Say,
        now: rserpool::Timestamp,
    ) -> (Server, ServiceApp) {
        self.build_with_shutdown(seed, report, say, Arc::default(), now)
    }

    /// As [`PeSetup::build`]; setting `shutdown` (and waking the worker) makes the PE
    /// deregister and end its run.
    pub fn build_with_shutdown(
        self,
        seed: [u8; 32],
        report: Arc<Mutex<ServerReport>>,
        say: Say,
        shutdown: Arc<AtomicBool>,
        now: rserpool::Timestamp,
    ) -> (Server, ServiceApp) {
        let adaptive = is_adaptive(&self.pe.policy);
        let mut config = ServerConfig::new(self.pe);
        config.max_sessions = self.max_sessions;
        let core = Server::new(config, Box::new(ChaCha8Rng::from_seed(seed)), now);
        let host = ServiceHost::new(self.service, now);
        let app = ServiceApp::new(host, adaptive, self.load, report, say).with_shutdown(shutdown);
        (core, app)
    }
}

/// Runs `rsp server`.
pub fn run(args: ServerArgs, signals: TerminationSignals) -> Outcome {
    args.pool_args.check_registrars()?;
    let seed = random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
    let mut rng = ChaCha8Rng::from_seed(seed);
    let port = if args.port == 0 {
        49152 + (rng.next_u32() % 16384) as u16
    } else {
        args.port
    };
    let addresses = args.pool_args.user_addresses();
    if addresses.is_empty() {
        return Err(Failure::address(
            "no local address to announce: give --bind ADDR",
        ));
    }
    let mut service = ServiceConfig::new(args.kind());
    service.calcapp_capacity = args.capacity;
    service.calcapp_max_jobs = args.max_jobs as usize;
    service.calcapp_cookie_interval = Duration::from_millis(args.cookie_interval);
    service.unix_epoch_offset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut pe = PoolElementConfig::new(
        PoolHandle::from(args.pool.as_str()),
        args.policy.clone(),
        TransportParameter::sctp(port, TransportUse::DATA_ONLY, addresses),
    );
    pe.static_registrars = args.pool_args.registrar_endpoints();
    pe.use_announces = args.pool_args.announce_group().is_some();
    if let Some(ms) = args.reregistration_interval {
        pe.reregistration_interval = Duration::from_millis(ms);
    }
    let setup = PeSetup {
        service,
        pe,
        max_sessions: args.max_sessions as usize,
        load: args.load,
    };
    let (config, links) = args.pool_args.runtime("rsp-server")?;
    let mut dc = args.pool_args.driver_config();
    dc.listen_port = Some(port);
    dc.registrar_local_port = port;
    let report: Arc<Mutex<ServerReport>> = Arc::default();
    let say: Say = Arc::new(|line: &str| out!("{line}"));
    let (r, s) = (Arc::clone(&report), Arc::clone(&say));
    let mut core_seed = [0u8; 32];
    rng.fill_bytes(&mut core_seed);
    let announce = args
        .pool_args
        .announce_group()
        .map(|g| (g, args.pool_args.net.local_address().ok().flatten()));
    let shutdown: Arc<AtomicBool> = Arc::default();
    let sd = Arc::clone(&shutdown);
    let running = start(config, links, dc, announce, move |now| {
        setup.build_with_shutdown(core_seed, r, s, sd, now)
    })?;
    out!(
        "{:?} pool element of pool '{}' ({}) on SCTP port {port}{}",
        args.kind(),
        args.pool,
        args.policy.policy_type,
        running
            .runtime
            .local_udp_port()
            .map(|p| format!(", UDP port {p}"))
            .unwrap_or_default()
    );
    let csp = match args.pool_args.csp_server {
        Some(server) => {
            let r = Arc::clone(&report);
            let location = format!(
                "rsp server {:?}, pool {}, SCTP port {port}",
                args.kind(),
                args.pool
            );
            Some(crate::pool::csp::Reporter::start(
                server,
                Duration::from_millis(args.pool_args.csp_interval),
                move || {
                    let r = r.lock().unwrap_or_else(PoisonError::into_inner);
                    crate::pool::csp::Status {
                        sender_id: component_group::compound(
                            component_group::POOL_ELEMENT,
                            u64::from(r.identifier),
                        ),
                        location: location.clone(),
                        status: format!(
                            "{} session(s), {} message(s) in{}",
                            r.sessions,
                            r.service.messages_received,
                            if r.registered { "" } else { ", not registered" }
                        ),
                        workload: r.load.map_or(-1.0, |l| f64::from(l) / f64::from(u32::MAX)),
                    }
                },
            )?)
        }
        None => None,
    };
    let remote = running.remote.clone();
    let r2 = remote.clone();
    let leave = Arc::clone(&shutdown);
    // The first signal deregisters the PE (a second one ends the process at once).
    let caught = on_signals(signals, move || {
        leave.store(true, Ordering::SeqCst);
        r2.notify();
    })?;
    let started = Instant::now();
    let mut next_stats = started + Duration::from_secs(args.stats.max(1));
    while !remote.is_stopping() {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if args
            .duration
            .is_some_and(|d| now.duration_since(started) >= d)
            && !shutdown.swap(true, Ordering::SeqCst)
        {
            remote.notify();
        }
        if args.stats > 0 && now >= next_stats {
            next_stats = now + Duration::from_secs(args.stats);
            out!(
                "{}",
                stats_line(&report.lock().unwrap_or_else(PoisonError::into_inner))
            );
        }
    }
    let joined = running.join();
    if let Some(c) = csp {
        c.stop();
    }
    joined?;
    out!(
        "{}",
        stats_line(&report.lock().unwrap_or_else(PoisonError::into_inner))
    );
    if let Some(s) = caught.get() {
        tracing::info!("stopped by {s:?}");
    }
    Ok(ExitStatus::Success)
}

/// One statistics line.
pub fn stats_line(r: &ServerReport) -> String {
    let s = &r.service;
    format!(
        "stats: {} session(s) now, {} in all; {} message(s) in, {} out; {} cookie(s) sent, {} echoed; jobs {} accepted, {} resumed, {} completed, {} rejected{}",
        r.sessions,
        s.sessions,
        s.messages_received,
        s.messages_sent,
        s.cookies_sent,
        s.cookie_echoes,
        s.jobs_accepted,
        s.jobs_resumed,
        s.jobs_completed,
        s.jobs_rejected,
        if r.registered { "" } else { "; not registered" }
    )
}
