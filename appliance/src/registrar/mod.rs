//! `rsp registrar`: an RSerPool registrar (ENRP server) on the userspace SCTP stack.
//!
//! The sans-IO [`rserpool::registrar::Registrar`] runs inside the dataplane runtime as an
//! in-worker application ([`app::RegistrarApp`]): it listens for ASAP (PPID 11) from pool
//! elements and pool users on the ASAP port (3863) and for ENRP (PPID 12) from peers on the
//! ENRP port (9901), connects to its static ENRP peers, and drives the core's timers from
//! the runtime's clock. Flags follow RSPLIB's `rspregistrar` where they apply; a TOML file
//! (`--config`) takes the same keys and the flags override it (see [`config`]).
//!
//! The registrar runs on exactly one worker: its handlespace is one state machine, and
//! every association (ASAP and ENRP) has to reach it. A registrar is a control plane that
//! handles thousands of messages per second on one core, so sharding it would add
//! cross-core hand-offs for nothing.
//!
//! Under UDP encapsulation (the default) several registrars can share a host: each gets its
//! own `--udp-port`, and a peer's UDP port is given with `--peer ADDR:PORT/UDPPORT`
//! (without it, `--remote-udp-port`, 9899, is used). Peers on one host also need distinct
//! ENRP ports, since a peer is known by its ENRP address and port.
//!
//! SERVER_ANNOUNCE and ENRP PRESENCE multicast are off by default (`auto` picks RSPLIB's
//! groups 239.0.0.50:3863 and 239.0.0.51:9901); see [`multicast`]. A peer discovered by a
//! multicast PRESENCE is reached at `--remote-udp-port` (its UDP port is not announced),
//! at the addresses of its `--enrp` endpoint: a registrar to be discovered needs a specific
//! `--enrp` address (or `--bind` addresses), since the wildcard announces none.
//!
//! A config file:
//!
//! ```toml
//! asap = "192.0.2.1:3863"
//! enrp = "192.0.2.1:9901"
//! peer = ["192.0.2.2:9901", "192.0.2.3:9901/9899"]
//! identifier = "0x1234"
//! keepalive-interval = 5000
//! enrp-announce = "auto"
//! metrics = "127.0.0.1:9464"
//! cspserver = "192.0.2.9:2960"
//! cspinterval = 1000
//! ```
//!
//! Monitoring is off by default: `--metrics ADDR:PORT` serves Prometheus text at
//! `GET /metrics`, and `--cspserver ADDR:PORT` sends RSPLIB Component Status reports to a
//! `cspmonitor` every `--cspinterval` ms (default 1000); see [`monitor`].
//!
//! SIGINT or SIGTERM stops the registrar: its associations are aborted (PEs and peers learn
//! at once) and it exits with status 0, as `rsp sctp server` does.
//!
//! Two registrars that list each other usually end up with two associations (one opened
//! by each side); both carry ENRP, and the driver sends to a peer on the first association
//! on which it spoke and which is still up.

mod app;
pub(crate) use app::Observer;
pub(crate) mod config;
mod monitor;
pub(crate) mod multicast;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use clap::Args;
use dataplane::runtime::{Runtime, mailbox, random_seed};
use dataplane::signal::TerminationSignals;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::registrar::Registrar;
use sctp_stack::time::Timestamp;

use crate::exit::{ExitStatus, Failure, Outcome};
use crate::sctp::{NetArgs, join, on_signals, parse_port, runtime_failure};
use config::{
    Announce, DEFAULT_CSP_INTERVAL_MS, MAX_BAD_PE_REPORTS, MAX_HRES_ITEMS, MAX_MS, PeerSpec,
    PeerTimers, Security, Settings, parse_access_rule, parse_asap_announce, parse_csp_server,
    parse_endpoint, parse_enrp_announce, parse_identifier, parse_limit, parse_on_off, parse_peer,
    parse_rate,
};
use rserpool::registrar::{AccessRule, RateLimit};

/// Arguments of `rsp registrar`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct RegistrarArgs {
    /// TOML file with the same keys as these flags (asap, enrp, peer = [..], identifier,
    /// max-bad-pe-reports, keepalive-interval, keepalive-timeout, max-hres-items,
    /// asap-announce, enrp-announce, metrics, cspserver, cspinterval, allow-register = [..],
    /// allow-resolve = [..], resolution-rate, unreachable-rate, verify-pe-addresses and
    /// discover-peers as booleans, max-pools, max-pes, max-pes-per-pool, max-owned-pes,
    /// max-pes-per-address, max-peers, peer-heartbeat-cycle, peer-max-time-last-heard,
    /// peer-max-time-no-response, takeover-expiry-interval) and a [network] table (backend,
    /// bind = [..], workers, udp-port, remote-udp-port, mtu, busy-poll, pcap, eal,
    /// dpdk-port = [..], dpdk-prefix, dpdk-gateway = [..]); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Local ASAP endpoint (default 0.0.0.0:3863); the address is the one announced to
    /// PEs (the wildcard announces the --bind addresses).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_endpoint)]
    asap: Option<std::net::SocketAddr>,
    /// Local ENRP endpoint (default 0.0.0.0:9901), sent to peers in PRESENCE.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_endpoint)]
    enrp: Option<std::net::SocketAddr>,
    /// A static ENRP peer (repeatable); /UDPPORT gives its UDP encapsulation port.
    #[arg(long = "peer", value_name = "ADDR:PORT[/UDPPORT]", value_parser = parse_peer)]
    peers: Vec<PeerSpec>,
    /// Server identifier, decimal or 0x hex (default: random).
    #[arg(long, value_name = "ID", value_parser = parse_identifier)]
    identifier: Option<u32>,
    /// ENDPOINT_UNREACHABLE reports that remove a PE (default 3).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_BAD_PE_REPORTS as i64))]
    max_bad_pe_reports: Option<u32>,
    /// Milliseconds between ENDPOINT_KEEP_ALIVEs to a PE (default 5000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    keepalive_interval: Option<u64>,
    /// Milliseconds to wait for ENDPOINT_KEEP_ALIVE_ACK (default 5000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    keepalive_timeout: Option<u64>,
    /// Most PEs in one handle resolution response (default 3).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_HRES_ITEMS as i64))]
    max_hres_items: Option<u32>,
    /// SERVER_ANNOUNCE multicast over UDP: off (default), auto (239.0.0.50:3863) or a
    /// group ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT|auto|off", value_parser = parse_asap_announce)]
    asap_announce: Option<Announce>,
    /// ENRP PRESENCE multicast over UDP (sent and received; discovers peers): off
    /// (default), auto (239.0.0.51:9901) or a group ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT|auto|off", value_parser = parse_enrp_announce)]
    enrp_announce: Option<Announce>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (default: off).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_endpoint)]
    metrics: Option<std::net::SocketAddr>,
    /// Send Component Status reports over UDP to this cspmonitor (RSPLIB; default: off).
    #[arg(long = "cspserver", value_name = "ADDR:PORT", value_parser = parse_csp_server)]
    csp_server: Option<std::net::SocketAddr>,
    /// Milliseconds between Component Status reports (default 1000).
    #[arg(long = "cspinterval", value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    csp_interval: Option<u64>,
    /// Who may register: `PREFIX[=POOL,...]` (repeatable; none = everyone; a PE is
    /// allowed when a rule matches one of its association's addresses).
    #[arg(long, value_name = "PREFIX[=POOLS]", value_parser = parse_access_rule)]
    allow_register: Vec<AccessRule>,
    /// Who may resolve handles: `PREFIX[=POOL,...]` (repeatable; none = everyone).
    #[arg(long, value_name = "PREFIX[=POOLS]", value_parser = parse_access_rule)]
    allow_resolve: Vec<AccessRule>,
    /// Per-PU limit of handle resolutions: `N[/BURST]` per second (default: none).
    #[arg(long, value_name = "N[/BURST]", value_parser = parse_rate)]
    resolution_rate: Option<RateLimit>,
    /// Per-PU limit of ENDPOINT_UNREACHABLE reports: `N[/BURST]` per second (default: none).
    #[arg(long, value_name = "N[/BURST]", value_parser = parse_rate)]
    unreachable_rate: Option<RateLimit>,
    /// Keep only registered PE addresses that belong to the PE's association, and reject
    /// registrations left without one: on (default, as RSPLIB) or off.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    verify_pe_addresses: Option<bool>,
    /// Accept ENRP peers that announce themselves (PRESENCE from unconfigured registrars):
    /// on (default) or off (only --peer registrars).
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    discover_peers: Option<bool>,
    /// Most pools in the handlespace (default 1048576).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_pools: Option<usize>,
    /// Most PEs in the handlespace (default 4194304).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_pes: Option<usize>,
    /// Most PEs in one pool (default 1048576).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_pes_per_pool: Option<usize>,
    /// Most PEs this registrar is home registrar for (default 100000).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_owned_pes: Option<usize>,
    /// Most PEs registered from one address (default 1024).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_pes_per_address: Option<usize>,
    /// Most ENRP peers (default 64).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    max_peers: Option<usize>,
    /// Milliseconds a starting registrar looks for a mentor among its peers before it
    /// serves with an empty handlespace (default 5000; lower it for tests and demos).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    mentor_hunt: Option<u64>,
    /// Milliseconds between ENRP PRESENCE messages to each peer (default 2440).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    peer_heartbeat_cycle: Option<u64>,
    /// Milliseconds a peer may stay silent before it is asked for a PRESENCE (default 5000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    peer_max_time_last_heard: Option<u64>,
    /// Milliseconds a silent peer has to answer before it is taken over (default 5000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    peer_max_time_no_response: Option<u64>,
    /// Milliseconds a takeover waits for the other peers' acknowledgements (default 5000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    takeover_expiry_interval: Option<u64>,
    /// UDP encapsulation port of peers and PEs whose port is not given (--peer /UDPPORT;
    /// default 9899).
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    remote_udp_port: Option<u16>,
    #[command(flatten)]
    net: Sourced<NetArgs>,
}

/// RSPLIB's UDP encapsulation port, the default of `--remote-udp-port`.
const DEFAULT_REMOTE_UDP_PORT: u16 = 9899;

/// Flattened arguments together with the ids of those given on the command line (clap's
/// `ValueSource::CommandLine`), so that a config file can replace the defaults but not the
/// flags.
#[derive(Debug, Clone)]
struct Sourced<T> {
    /// The parsed arguments (defaults included).
    args: T,
    /// Ids of the arguments given on the command line.
    given: Vec<String>,
}

impl<T> Sourced<T> {
    /// Whether the argument with this id was given on the command line.
    fn on_command_line(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }
}

fn command_line_ids(m: &clap::ArgMatches) -> Vec<String> {
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.as_str().to_owned())
        .collect()
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Sourced<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(Sourced {
            args: T::from_arg_matches(m)?,
            given: command_line_ids(m),
        })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.args.update_from_arg_matches(m)?;
        self.given = command_line_ids(m);
        Ok(())
    }
}

impl<T: Args> Args for Sourced<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        T::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        T::augment_args_for_update(cmd)
    }
}

impl RegistrarArgs {
    fn settings(&self) -> Settings {
        Settings {
            asap: self.asap,
            enrp: self.enrp,
            peers: (!self.peers.is_empty()).then(|| self.peers.clone()),
            identifier: self.identifier,
            max_bad_pe_reports: self.max_bad_pe_reports,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            max_hres_items: self.max_hres_items,
            asap_announce: self.asap_announce,
            enrp_announce: self.enrp_announce,
            metrics: self.metrics,
            csp_server: self.csp_server,
            csp_interval: self.csp_interval,
            security: Security {
                allow_register: (!self.allow_register.is_empty())
                    .then(|| self.allow_register.clone()),
                allow_resolve: (!self.allow_resolve.is_empty()).then(|| self.allow_resolve.clone()),
                resolution_rate: self.resolution_rate,
                unreachable_rate: self.unreachable_rate,
                verify_pe_addresses: self.verify_pe_addresses,
                discover_peers: self.discover_peers,
                max_pools: self.max_pools,
                max_pes: self.max_pes,
                max_pes_per_pool: self.max_pes_per_pool,
                max_owned_pes: self.max_owned_pes,
                max_pes_per_address: self.max_pes_per_address,
                max_peers: self.max_peers,
            },
            peer_timers: PeerTimers {
                heartbeat_cycle: self.peer_heartbeat_cycle,
                max_time_last_heard: self.peer_max_time_last_heard,
                max_time_no_response: self.peer_max_time_no_response,
                takeover_expiry: self.takeover_expiry_interval,
            },
            network: config::Network {
                remote_udp_port: self.remote_udp_port,
                ..config::Network::default()
            },
        }
    }
}

/// Runs `rsp registrar`.
pub fn run(args: RegistrarArgs, signals: TerminationSignals) -> Outcome {
    let file = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let settings = file.overridden_by(args.settings());
    // The file's [network] values replace clap's defaults, never a flag's value.
    let mut net = args.net.args.clone();
    settings
        .network
        .apply(&mut net, &|id| args.net.on_command_line(id));
    let remote_udp_port = settings
        .network
        .remote_udp_port
        .unwrap_or(DEFAULT_REMOTE_UDP_PORT);
    if net.workers != 1 {
        return Err(Failure::usage(
            "the registrar runs on one worker (its handlespace is one state machine): --workers must be 1",
        ));
    }
    let mut resolved = settings.resolve(&net.bind)?;
    if let Some(ms) = args.mentor_hunt {
        resolved.core.mentor_hunt_timeout = std::time::Duration::from_millis(ms);
    }
    let mut config = net.runtime_config("rsp-registrar")?;
    // Connects without a known UDP port (discovered peers, PEs after a takeover) use it.
    config.remote_udp_port = remote_udp_port;
    let links = net.link_spec(remote_udp_port)?;
    let seed = random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
    let bind = net.local_address()?;
    let senders = app::Multicast {
        asap: resolved
            .asap_group
            .map(|g| multicast::GroupSender::open(g, bind))
            .transpose()?,
        enrp: resolved
            .enrp_group
            .map(|g| multicast::GroupSender::open(g, bind))
            .transpose()?,
        incoming: None,
    };
    let receiver = resolved
        .enrp_group
        .map(|g| multicast::open_receiver(g, bind))
        .transpose()?;
    let metrics_listener = settings.metrics.map(monitor::bind_metrics).transpose()?;
    let monitored = metrics_listener.is_some() || settings.csp_server.is_some();
    let (publisher, snapshot) = monitor::Publisher::new();
    let publisher = monitored.then_some(publisher);
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let failed = Arc::clone(&failure);
    let senders = Mutex::new(Some(senders));
    let (to_worker_tx, to_worker_rx) = std::sync::mpsc::channel();
    let to_worker_tx = Mutex::new(to_worker_tx);
    let with_multicast_in = receiver.is_some();
    // The factory runs on the worker (once: one worker), which owns the core.
    let rt = Runtime::start(config, links, move |info| {
        // The runtime's clock starts at zero when the runtime starts: the core starts
        // there too, and every later input carries the worker's current time.
        let core = Registrar::new(
            resolved.core.clone(),
            Box::new(ChaCha8Rng::from_seed(seed)),
            Timestamp::ZERO,
        );
        let mut multicast = senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        if with_multicast_in {
            let (tx, rx) = mailbox(256, info.remote.clone());
            multicast.incoming = Some(rx);
            let _ = to_worker_tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(tx);
        }
        app::RegistrarApp::new(
            core,
            &resolved,
            multicast,
            Arc::clone(&failed),
            publisher.clone(),
        )
    })
    .map_err(runtime_failure)?;
    if let Some(f) = rt.fallback() {
        tracing::info!("{f}");
    }
    tracing::info!(
        "registrar: ASAP on SCTP port {}, ENRP on SCTP port {}, {} static peer(s), {} backend{}",
        settings
            .asap
            .map_or(rserpool::wire::PORT_ASAP, |a| a.port()),
        settings
            .enrp
            .map_or(rserpool::wire::PORT_ENRP, |a| a.port()),
        settings.peers.as_ref().map_or(0, Vec::len),
        rt.backend(),
        rt.local_udp_port()
            .map(|p| format!(", UDP port {p}"))
            .unwrap_or_default()
    );
    if let Some(l) = metrics_listener {
        if let Ok(a) = l.local_addr() {
            tracing::info!("metrics at http://{a}/metrics");
        }
        monitor::spawn_metrics(l, Arc::clone(&snapshot))?;
    }
    let csp = match settings.csp_server {
        Some(server) => {
            let interval = std::time::Duration::from_millis(
                settings.csp_interval.unwrap_or(DEFAULT_CSP_INTERVAL_MS),
            );
            let location = format!(
                "rsp registrar, ASAP port {}",
                settings
                    .asap
                    .map_or(rserpool::wire::PORT_ASAP, |a| a.port())
            );
            tracing::info!("Component Status reports to {server} every {interval:?}");
            Some(monitor::CspReporter::start(
                server,
                interval,
                location,
                Arc::clone(&snapshot),
            )?)
        }
        None => None,
    };
    let remote = rt.remote(0);
    let mut receiver_thread = None;
    if let (Some(socket), Some(r)) = (receiver, &remote) {
        let tx = to_worker_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|_| Failure::setup("the worker did not start"))?;
        receiver_thread = Some(multicast::spawn_receiver(socket, tx, r.clone())?);
    }
    let caught = on_signals(signals, move || {
        if let Some(r) = &remote {
            r.stop_runtime();
        }
    })?;
    let joined = join(rt);
    if let Some(c) = csp {
        c.stop();
    }
    joined?;
    if let Some(t) = receiver_thread {
        let _ = t.join();
    }
    if let Some(e) = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(Failure::setup(e));
    }
    // A registrar stopped by a signal has done its job (as `rsp sctp server`).
    if let Some(s) = caught.get() {
        tracing::info!("stopped by {s:?}");
    }
    Ok(ExitStatus::Success)
}

/// A registrar running in this process on its own runtime (for `rsp demo`): no multicast,
/// no monitors; `observer` sees every core event; `silent_stop` makes stopping it look like
/// a crash (no ABORT to PEs and peers).
pub(crate) fn start_embedded(
    resolved: config::Resolved,
    config: dataplane::runtime::RuntimeConfig,
    links: dataplane::runtime::LinkSpec,
    seed: [u8; 32],
    observer: app::Observer,
    silent_stop: bool,
) -> Result<Runtime, Failure> {
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    Runtime::start(config, links, move |_info| {
        let core = Registrar::new(
            resolved.core.clone(),
            Box::new(ChaCha8Rng::from_seed(seed)),
            Timestamp::ZERO,
        );
        app::RegistrarApp::new(
            core,
            &resolved,
            app::Multicast::default(),
            Arc::clone(&failure),
            None,
        )
        .embedded(Arc::clone(&observer), silent_stop)
    })
    .map_err(runtime_failure)
}
