//! Pool elements and pool users on the dataplane runtime (Enhanced Mode, issue 8).
//!
//! - [`driver`]: the in-worker driver of a session core ([`rserpool::session::Server`] or
//!   [`rserpool::session::Client`]) and the application on top of it;
//! - [`blocking`]: the blocking, socket-like Enhanced Mode API (pool user sessions, pool
//!   element accept) for applications;
//! - `policy`: `--policy NAME[:ARG...]` with RSPLIB's names;
//! - [`PoolArgs`]: the options every pool tool shares (registrars, announces, UDP ports
//!   of PEs, SCTP timers), and `start`, which puts a driver on a runtime.
//!
//! Like `rsp registrar`, the tools run on one worker over UDP encapsulation by default.
//! SERVER_ANNOUNCE listening is off by default (`--asap-announce auto` joins RSPLIB's
//! 239.0.0.50:3863); registrars are given with `--registrar ADDR:PORT[/UDPPORT]`.

pub(crate) mod apps;
pub mod blocking;
pub(crate) mod csp;
pub mod driver;
pub(crate) mod policy;
pub(crate) mod tools;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Args;
use dataplane::runtime::{Runtime, RuntimeConfig, WorkerRemote, mailbox};
use rserpool::Timestamp;
use rserpool::wire::{TransportParameter, TransportUse};

use crate::exit::Failure;
use crate::registrar::config::{
    Announce, PeerSpec, parse_asap_announce, parse_csp_server, parse_peer,
};
use crate::registrar::multicast;
use crate::sctp::{NetArgs, parse_port, runtime_failure};
use driver::{Application, Driver, DriverConfig, DriverStats, SessionCore};

/// Options of every pool element and pool user tool.
#[derive(Debug, Args, Clone)]
pub struct PoolArgs {
    /// A registrar's ASAP endpoint (repeatable); /UDPPORT gives its UDP encapsulation port.
    #[arg(long = "registrar", value_name = "ADDR:PORT[/UDPPORT]", value_parser = parse_peer)]
    pub registrars: Vec<PeerSpec>,
    /// Listen for SERVER_ANNOUNCE on the ASAP announce group: off (default), auto
    /// (239.0.0.50:3863) or a group ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT|auto|off", value_parser = parse_asap_announce)]
    pub asap_announce: Option<Announce>,
    /// UDP encapsulation port of the PEs on SCTP port SCTPPORT (repeatable; others use
    /// --remote-udp-port).
    #[arg(long = "pe-udp-port", value_name = "SCTPPORT=UDPPORT", value_parser = parse_port_map)]
    pub pe_udp_ports: Vec<(u16, u16)>,
    /// UDP encapsulation port of peers whose port is not given otherwise.
    #[arg(long, value_name = "PORT", default_value_t = 9899, value_parser = parse_port)]
    pub remote_udp_port: u16,
    /// Send Component Status reports over UDP to this cspmonitor (default: off).
    #[arg(long = "cspserver", value_name = "ADDR:PORT", value_parser = parse_csp_server)]
    pub csp_server: Option<SocketAddr>,
    /// Milliseconds between Component Status reports.
    #[arg(long = "cspinterval", value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub csp_interval: u64,
    #[command(flatten)]
    pub timers: TimerArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

/// SCTP timers of the pool tools. Their defaults follow the session tuning of RSPLIB's
/// example servers (RTO.Min 200 ms, RTO.Initial 250 ms, RTO.Max 500 ms) rather than
/// RFC 9260 §16 (1 s, 1 s, 60 s), so that a crashed PE is noticed within about 3 s
/// instead of minutes: with data outstanding the association fails after
/// `--max-retrans` + 1 retransmission timeouts.
#[derive(Debug, Args, Clone, Default)]
pub struct TimerArgs {
    /// RTO.Min in milliseconds (default 200).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rto_min: Option<u64>,
    /// RTO.Max in milliseconds (default 500).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub rto_max: Option<u64>,
    /// RTO.Initial in milliseconds (default 250, kept within RTO.Min..=RTO.Max).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rto_initial: Option<u64>,
    /// HB.interval in milliseconds (default 1000): how soon an idle session notices.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub heartbeat: Option<u64>,
    /// Association.Max.Retrans (default 5); Path.Max.Retrans follows it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_retrans: Option<u32>,
}

/// Default RTO.Min of the pool tools (RSPLIB's session tuning).
pub const DEFAULT_RTO_MIN_MS: u64 = 200;
/// Default RTO.Max of the pool tools.
pub const DEFAULT_RTO_MAX_MS: u64 = 500;
/// Default RTO.Initial of the pool tools.
pub const DEFAULT_RTO_INITIAL_MS: u64 = 250;
/// Default HB.interval of the pool tools.
pub const DEFAULT_HEARTBEAT_MS: u64 = 1000;
/// Default Association.Max.Retrans of the pool tools.
pub const DEFAULT_MAX_RETRANS: u32 = 5;

impl TimerArgs {
    /// Applies the timers (given or default) to a runtime configuration.
    pub fn apply(&self, c: &mut RuntimeConfig) -> Result<(), Failure> {
        let a = &mut c.endpoint.association;
        a.rto_min = Duration::from_millis(self.rto_min.unwrap_or(DEFAULT_RTO_MIN_MS));
        a.rto_max = Duration::from_millis(self.rto_max.unwrap_or(DEFAULT_RTO_MAX_MS));
        a.rto_initial = Duration::from_millis(self.rto_initial.unwrap_or(DEFAULT_RTO_INITIAL_MS));
        if a.rto_min > a.rto_max {
            return Err(Failure::usage("--rto-min must not exceed --rto-max"));
        }
        a.rto_initial = a.rto_initial.clamp(a.rto_min, a.rto_max);
        a.heartbeat_interval = Some(Duration::from_millis(
            self.heartbeat.unwrap_or(DEFAULT_HEARTBEAT_MS),
        ));
        let n = self.max_retrans.unwrap_or(DEFAULT_MAX_RETRANS);
        a.association_max_retrans = n;
        a.path_max_retrans = n;
        a.max_init_retransmits = a.max_init_retransmits.min(n.max(1));
        if a.pf_max_retrans.is_some_and(|pf| pf >= n) {
            a.pf_max_retrans = Some(n - 1);
        }
        Ok(())
    }
}

/// `SCTPPORT=UDPPORT`.
pub fn parse_port_map(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not SCTPPORT=UDPPORT"))?;
    Ok((parse_port(a.trim())?, parse_port(b.trim())?))
}

impl PoolArgs {
    /// The registrars' ASAP endpoints for the cores.
    pub fn registrar_endpoints(&self) -> Vec<TransportParameter> {
        self.registrars
            .iter()
            .map(|r| {
                TransportParameter::sctp(
                    r.endpoint.port(),
                    TransportUse::DATA_ONLY,
                    vec![r.endpoint.ip()],
                )
            })
            .collect()
    }

    /// The announce group, when listening is on.
    pub fn announce_group(&self) -> Option<SocketAddr> {
        match self.asap_announce {
            Some(Announce::Group(g)) => Some(g),
            _ => None,
        }
    }

    /// Checks that a registrar can be found.
    pub fn check_registrars(&self) -> Result<(), Failure> {
        if self.registrars.is_empty() && self.announce_group().is_none() {
            return Err(Failure::usage(
                "no registrar: give --registrar ADDR:PORT[/UDPPORT] or --asap-announce auto",
            ));
        }
        if self.net.workers != 1 {
            return Err(Failure::usage(
                "pool tools run on one worker: --workers must be 1",
            ));
        }
        Ok(())
    }

    /// The driver configuration (ports) of these options.
    pub fn driver_config(&self) -> DriverConfig {
        DriverConfig {
            registrar_udp_ports: self
                .registrars
                .iter()
                .filter_map(|r| {
                    r.udp_port
                        .map(|u| ((r.endpoint.ip(), r.endpoint.port()), u))
                })
                .collect(),
            pe_udp_ports: self.pe_udp_ports.iter().copied().collect(),
            ..DriverConfig::default()
        }
    }

    /// The runtime configuration and links of these options.
    pub fn runtime(
        &self,
        name: &str,
    ) -> Result<(RuntimeConfig, dataplane::runtime::LinkSpec), Failure> {
        let mut config = self.net.runtime_config(name)?;
        config.remote_udp_port = self.remote_udp_port;
        self.timers.apply(&mut config)?;
        let links = self.net.link_spec(self.remote_udp_port)?;
        Ok((config, links))
    }

    /// The addresses announced as the PE's user transport: the `--bind` addresses, else
    /// the local address the system picks towards the first registrar (or the announce
    /// group). The registrar keeps only addresses of the PE's association (RSPLIB's rule).
    pub fn user_addresses(&self) -> Vec<IpAddr> {
        let bound: Vec<IpAddr> = self
            .net
            .bind
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified())
            .collect();
        if !bound.is_empty() {
            return bound;
        }
        let towards = self
            .registrars
            .first()
            .map(|r| r.endpoint)
            .or_else(|| self.announce_group());
        towards
            .and_then(local_address_towards)
            .into_iter()
            .collect()
    }
}

/// The local address the system would send from to reach `to` (no packet is sent).
pub fn local_address_towards(to: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(to).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// A driver running on its runtime.
pub(crate) struct Running {
    /// The runtime.
    pub runtime: Runtime,
    /// The worker (stop, wake).
    pub remote: WorkerRemote,
    /// The driver's counters.
    pub stats: Arc<Mutex<DriverStats>>,
    /// Set when the driver could not run.
    pub failure: Arc<Mutex<Option<String>>>,
    announce_thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Waits for the runtime; the driver's failure, if any, becomes the error.
    pub fn join(self) -> Result<(), Failure> {
        let joined = crate::sctp::join(self.runtime);
        tracing::debug!(stats = ?self.stats.lock().unwrap_or_else(PoisonError::into_inner), "driver counters");
        if let Some(t) = self.announce_thread {
            let _ = t.join();
        }
        joined?;
        if let Some(e) = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(Failure::setup(e));
        }
        Ok(())
    }
}

/// Starts a runtime with one worker running `build(now)`'s core and application under a
/// [`Driver`]. `announce`: the SERVER_ANNOUNCE group to listen on.
pub(crate) fn start<C, A, B>(
    config: RuntimeConfig,
    links: dataplane::runtime::LinkSpec,
    driver_config: DriverConfig,
    announce: Option<(SocketAddr, Option<IpAddr>)>,
    build: B,
) -> Result<Running, Failure>
where
    C: SessionCore + 'static,
    A: Application<C> + 'static,
    B: FnOnce(Timestamp) -> (C, A) + Send + 'static,
{
    let socket = announce
        .map(|(g, bind)| multicast::open_receiver(g, bind))
        .transpose()?;
    let stats: Arc<Mutex<DriverStats>> = Arc::default();
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let (s, f) = (Arc::clone(&stats), Arc::clone(&failure));
    let build = Mutex::new(Some((build, driver_config)));
    let (tx_send, tx_recv) = std::sync::mpsc::channel();
    let tx_send = Mutex::new(tx_send);
    let with_announces = socket.is_some();
    let runtime = Runtime::start(config, links, move |info| {
        let (build, dc) = build
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("one worker: the factory runs once");
        let announces = with_announces.then(|| {
            let (tx, rx) = mailbox(256, info.remote.clone());
            let _ = tx_send
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(tx);
            rx
        });
        // The runtime's clock starts at zero with the runtime.
        let (core, app) = build(Timestamp::ZERO);
        Driver::new(core, app, dc, announces, Arc::clone(&s), Arc::clone(&f))
    })
    .map_err(runtime_failure)?;
    let remote = runtime
        .remote(0)
        .ok_or_else(|| Failure::setup("the runtime has no worker"))?;
    let mut announce_thread = None;
    if let Some(socket) = socket {
        let tx = tx_recv
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| Failure::setup("the worker did not start"))?;
        announce_thread = Some(driver::spawn_announce_receiver(socket, tx, remote.clone())?);
    }
    Ok(Running {
        runtime,
        remote,
        stats,
        failure,
        announce_thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_maps_are_sctp_port_equals_udp_port() {
        assert_eq!(parse_port_map("5001=9911"), Ok((5001, 9911)));
        assert_eq!(parse_port_map(" 7 = 9899 "), Ok((7, 9899)));
        assert!(parse_port_map("5001").is_err());
        assert!(parse_port_map("0=9911").is_err());
        assert!(parse_port_map("5001=x").is_err());
    }

    #[test]
    fn timers_tune_the_association_and_keep_its_rules() {
        let mut c = RuntimeConfig::default();
        let t = TimerArgs {
            rto_min: Some(50),
            rto_max: Some(200),
            rto_initial: None,
            heartbeat: Some(100),
            max_retrans: Some(3),
        };
        t.apply(&mut c).expect("valid");
        let a = &c.endpoint.association;
        assert_eq!(a.rto_min, Duration::from_millis(50));
        assert_eq!(a.rto_max, Duration::from_millis(200));
        // RTO.Initial (1 s by default) is kept within [RTO.Min, RTO.Max].
        assert_eq!(a.rto_initial, Duration::from_millis(200));
        assert_eq!(a.heartbeat_interval, Some(Duration::from_millis(100)));
        assert_eq!((a.association_max_retrans, a.path_max_retrans), (3, 3));
        assert!(a.pf_max_retrans.is_none_or(|pf| pf < a.path_max_retrans));
        assert!(a.validate().is_ok());
        let bad = TimerArgs {
            rto_min: Some(500),
            rto_max: Some(100),
            ..TimerArgs::default()
        };
        assert!(bad.apply(&mut RuntimeConfig::default()).is_err());
        // Nothing given: RSPLIB's session tuning.
        let mut c = RuntimeConfig::default();
        TimerArgs::default().apply(&mut c).expect("valid");
        let a = &c.endpoint.association;
        assert_eq!(
            (a.rto_min, a.rto_initial, a.rto_max),
            (
                Duration::from_millis(200),
                Duration::from_millis(250),
                Duration::from_millis(500)
            )
        );
        assert_eq!(a.association_max_retrans, DEFAULT_MAX_RETRANS);
        assert!(a.validate().is_ok());
    }
}
