//! The pool user tools: `rsp pingpong`, `rsp calcapp` and `rsp terminal` (like RSPLIB's
//! `pingpongclient`, `calcappclient` and `rspterminal`).
//!
//! Each opens sessions to a pool through a [`Client`] (handle resolution at a registrar,
//! automatic failover with cookie replay) and runs the service's client on them. Progress
//! is printed as it happens (connections, failovers, completed jobs) plus a statistics line
//! every `--stats` seconds; the summary at the end decides the exit status:
//!
//! - 0: the bounded run (`--count`, stdin's end) finished and nothing was lost
//!   (PingPong reply numbers consecutive, every CalcApp job completed exactly once, every
//!   line echoed);
//! - 1: a session failed (no PE after the failover attempts) or something was lost;
//! - 5: `--duration` passed before `--count` was reached (without `--count`, reaching the
//!   duration is the normal end).

// The configurations of rserpool are #[non_exhaustive]: built from their defaults.
#![allow(clippy::field_reassign_with_default)]

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::runtime::random_seed;
use dataplane::signal::TerminationSignals;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::pu::PoolUserConfig;
use rserpool::services::client::{CalcAppClientConfig, PingPongConfig};
use rserpool::services::wire::component_group;
use rserpool::session::{Client, ClientConfig};
use rserpool::wire::PoolHandle;

use super::apps::{ClientApp, ClientKind, ClientReport, EchoIo, MAX_ECHO_QUEUE, Say};
use super::{PoolArgs, start};
use crate::exit::{ExitStatus, Failure, Outcome};
use crate::monitor::parse_seconds;
use crate::sctp::on_signals;
use crate::server::parse_pool_handle;

/// Options of every pool user tool.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The pool handle to use.
    #[arg(long, value_name = "HANDLE", value_parser = parse_pool_handle)]
    pool: String,
    /// Sessions to open.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    sessions: u32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Seconds between statistics lines (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    stats: u64,
    /// Failed attempts in a row after which a session is given up.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_failover_attempts: u32,
    /// Milliseconds between failover attempts.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    retry_interval: u64,
    /// Milliseconds a handle resolution stays cached (RSPLIB: 250).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    stale_time: Option<u64>,
    #[command(flatten)]
    pool_args: PoolArgs,
}

/// Arguments of `rsp pingpong`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct PingPongArgs {
    /// Milliseconds between Pings.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    interval: u64,
    /// Payload bytes per Ping.
    #[arg(long, value_name = "BYTES", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(0..=60_000))]
    size: u32,
    /// Pings per session, then stop.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `rsp calcapp`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct CalcAppArgs {
    /// Milliseconds between the end of a job and the next request.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    interval: u64,
    /// Calculations per job.
    #[arg(long, value_name = "N", default_value_t = 5_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    size: u64,
    /// Milliseconds between keep-alives while a job runs.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    keepalive_interval: u64,
    /// Milliseconds without a keep-alive answer after which the PE counts as dead.
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    keepalive_timeout: u64,
    /// Jobs per session, then stop.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `rsp terminal`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct TerminalArgs {
    #[command(flatten)]
    client: ClientArgs,
}

impl ClientArgs {
    /// The session core's configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut pu = PoolUserConfig {
            static_registrars: self.pool_args.registrar_endpoints(),
            use_announces: self.pool_args.announce_group().is_some(),
            ..PoolUserConfig::default()
        };
        if let Some(ms) = self.stale_time {
            pu.stale_time = Duration::from_millis(ms);
        }
        let mut c = ClientConfig::default();
        c.pu = pu;
        c.max_failover_attempts = self.max_failover_attempts;
        c.retry_interval = Duration::from_millis(self.retry_interval);
        c
    }
}

/// Runs `rsp pingpong`.
pub fn run_pingpong(args: PingPongArgs, signals: TerminationSignals) -> Outcome {
    let mut c = PingPongConfig::default();
    c.interval = Duration::from_millis(args.interval);
    c.payload_len = args.size as usize;
    c.max_pings = args.count;
    run_client(
        args.client,
        ClientKind::PingPong(c),
        args.count.is_some(),
        None,
        signals,
    )
}

/// Runs `rsp calcapp`.
pub fn run_calcapp(args: CalcAppArgs, signals: TerminationSignals) -> Outcome {
    let mut c = CalcAppClientConfig::default();
    c.job_interval = Duration::from_millis(args.interval);
    c.job_size = args.size;
    c.keep_alive_interval = Duration::from_millis(args.keepalive_interval);
    c.keep_alive_timeout = Duration::from_millis(args.keepalive_timeout);
    c.max_jobs = args.count;
    run_client(
        args.client,
        ClientKind::CalcApp(c),
        args.count.is_some(),
        None,
        signals,
    )
}

/// Runs `rsp terminal`: standard input lines to the Echo pool, replies to standard output.
pub fn run_terminal(args: TerminalArgs, signals: TerminationSignals) -> Outcome {
    let io: Arc<Mutex<EchoIo>> = Arc::default();
    run_client(args.client, ClientKind::Echo, true, Some(io), signals)
}

fn run_client(
    args: ClientArgs,
    kind: ClientKind,
    counted: bool,
    echo: Option<Arc<Mutex<EchoIo>>>,
    signals: TerminationSignals,
) -> Outcome {
    args.pool_args.check_registrars()?;
    let seed = random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
    let (config, links) = args.pool_args.runtime("rsp-pu")?;
    let dc = args.pool_args.driver_config();
    let report: Arc<Mutex<ClientReport>> = Arc::default();
    let quiet_echo = echo.is_some();
    let say: Say = if quiet_echo {
        // The terminal's standard output carries the replies only.
        Arc::new(|line: &str| errln!("{line}"))
    } else {
        Arc::new(|line: &str| out!("{line}"))
    };
    let client_config = args.client_config();
    let pool = PoolHandle::from(args.pool.as_str());
    let (r, s, n) = (
        Arc::clone(&report),
        Arc::clone(&say),
        args.sessions as usize,
    );
    let io = echo.clone();
    let announce = args
        .pool_args
        .announce_group()
        .map(|g| (g, args.pool_args.net.local_address().ok().flatten()));
    let running = start(config, links, dc, announce, move |now| {
        let core = Client::new(client_config, Box::new(ChaCha8Rng::from_seed(seed)), now);
        let mut app = ClientApp::new(pool, kind, n, r, s, "pu".to_owned());
        if let Some(io) = io {
            app = app.with_echo_io(io);
        }
        (core, app)
    })?;
    let csp = match args.pool_args.csp_server {
        Some(server) => {
            let r = Arc::clone(&report);
            let location = format!("rsp pool user, pool {}", args.pool);
            // RSPLIB numbers pool users at random.
            let id = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());
            Some(super::csp::Reporter::start(
                server,
                Duration::from_millis(args.pool_args.csp_interval),
                move || {
                    let r = r.lock().unwrap_or_else(PoisonError::into_inner);
                    super::csp::Status {
                        sender_id: component_group::compound(component_group::POOL_USER, id),
                        location: location.clone(),
                        status: format!(
                            "{} session(s), {} failover(s), {} failed",
                            r.sessions, r.failovers, r.failed
                        ),
                        workload: -1.0,
                    }
                },
            )?)
        }
        None => None,
    };
    let remote = running.remote.clone();
    let r2 = remote.clone();
    let caught = on_signals(signals, move || r2.stop_runtime())?;
    if let Some(io) = &echo {
        spawn_stdin_reader(Arc::clone(io), remote.clone())?;
    }
    let started = Instant::now();
    let mut next_stats = started + Duration::from_secs(args.stats.max(1));
    let mut timed_out = false;
    while !remote.is_stopping() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(io) = &echo {
            let lines: Vec<Vec<u8>> = io
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .output
                .drain(..)
                .collect();
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = out.write_all(&l);
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
        }
        let now = Instant::now();
        if args
            .duration
            .is_some_and(|d| now.duration_since(started) >= d)
        {
            timed_out = counted;
            remote.stop_runtime();
            break;
        }
        if args.stats > 0 && now >= next_stats && !quiet_echo {
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
    if let Some(io) = &echo {
        let io = io.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = std::io::stdout().lock();
        for l in &io.output {
            let _ = out.write_all(l);
            let _ = out.write_all(b"\n");
        }
    }
    let r = report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let summary = stats_line(&r);
    if quiet_echo {
        errln!("{summary}");
    } else {
        out!("{summary}");
    }
    if let Some(s) = caught.get() {
        tracing::info!("stopped by {s:?}");
        return Ok(ExitStatus::Signal(s.exit_code()));
    }
    if r.failed > 0 {
        return Err(Failure::failed(format!(
            "{} of {} session(s) given up: no PE of pool '{}' could be reached ({} attempt(s) each)",
            r.failed, r.sessions, args.pool, args.max_failover_attempts
        )));
    }
    if !r.nothing_lost() {
        return Err(Failure::failed(format!(
            "something was lost: {} failed session(s), {} reply gap(s), {} duplicate(s), {} lost job(s), {} garbled echo(es)",
            r.failed,
            r.pingpong.gaps,
            r.pingpong.duplicates + r.calcapp.duplicate_completions,
            r.calcapp.lost,
            r.echo.mismatched
        )));
    }
    if timed_out && !r.finished {
        return Err(Failure::timeout(
            "the duration passed before the count was reached",
        ));
    }
    Ok(ExitStatus::Success)
}

/// Reads standard input lines into the terminal's queue (bounded: waits while it is full).
fn spawn_stdin_reader(
    io: Arc<Mutex<EchoIo>>,
    remote: dataplane::runtime::WorkerRemote,
) -> Result<(), Failure> {
    std::thread::Builder::new()
        .name("rsp-stdin".to_owned())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().split(b'\n') {
                let Ok(mut line) = line else { break };
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                loop {
                    if remote.is_stopping() {
                        return;
                    }
                    let mut g = io.lock().unwrap_or_else(PoisonError::into_inner);
                    if g.input.len() < MAX_ECHO_QUEUE {
                        g.input.push_back(line);
                        break;
                    }
                    drop(g);
                    std::thread::sleep(Duration::from_millis(10));
                }
                remote.notify();
            }
            io.lock().unwrap_or_else(PoisonError::into_inner).input_done = true;
            remote.notify();
        })
        .map(|_| ())
        .map_err(|e| Failure::setup(format!("cannot start the input thread: {e}")))
}

/// One statistics line of a pool user.
pub fn stats_line(r: &ClientReport) -> String {
    let mut parts = vec![format!(
        "{} session(s), {} failover(s) ({} completed, longest {} ms), longest reply gap {} ms",
        r.sessions,
        r.failovers,
        r.failovers_completed,
        r.longest_failover.as_millis(),
        r.longest_gap.as_millis()
    )];
    let p = &r.pingpong;
    if p.pings_sent > 0 {
        parts.push(format!(
            "pings {} sent, {} answered, {} gap(s), {} duplicate(s)",
            p.pings_sent, p.pongs_received, p.gaps, p.duplicates
        ));
    }
    let c = &r.calcapp;
    if c.jobs_started > 0 {
        parts.push(format!(
            "jobs {} started, {} completed, {} running, {} duplicate(s), {} lost, {} reject(s)",
            c.jobs_started,
            c.jobs_completed,
            r.jobs_running,
            c.duplicate_completions,
            c.lost,
            c.rejects
        ));
    }
    let e = &r.echo;
    if e.lines_sent > 0 {
        parts.push(format!(
            "lines {} sent, {} echoed, {} lost, {} garbled",
            e.lines_sent, e.echoed, e.lost, e.mismatched
        ));
    }
    format!("stats: {}", parts.join("; "))
}
