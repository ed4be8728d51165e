//! `rsp sctp`: tools on the userspace SCTP stack and the dataplane runtime.
//!
//! - `rsp sctp server --echo|--discard|--daytime|--chargen`: the classic services;
//! - `rsp sctp client HOST PORT`: standard input lines become messages, replies are printed;
//! - `rsp sctp perf server|client`: throughput measurement in the manner of usrsctp's tsctp.
//!
//! All of them run over UDP encapsulation (RFC 6951, local port 9899, unprivileged) by
//! default, raw IP with `--backend raw`, and `perf` also in one process over the in-memory
//! fabric with `--backend memory`.

mod client;
mod perf;
mod server;

use std::net::{IpAddr, Ipv6Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use clap::{Args, Subcommand, ValueEnum};
use dataplane::LinkError;
use dataplane::raw::RawConfig;
use dataplane::runtime::{
    IdleMode, LinkSpec, Runtime, RuntimeConfig, RuntimeError, WorkerStats, random_seed,
};
use dataplane::signal::{Signal, TerminationSignals};
use dataplane::udp::UdpConfig;

use crate::exit::{ExitStatus, Failure, Outcome};

/// Arguments of `rsp sctp`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct SctpArgs {
    #[command(subcommand)]
    command: SctpCommand,
}

#[derive(Debug, Subcommand)]
enum SctpCommand {
    /// Serve echo (port 7), discard (9), daytime (13) or chargen (19).
    Server(server::ServerArgs),
    /// Connect, send standard input lines as messages and print what comes back.
    Client(client::ClientArgs),
    /// Measure throughput (server and client modes, like usrsctp's tsctp).
    Perf(perf::PerfArgs),
}

/// Runs `rsp sctp ...`.
pub fn run(args: SctpArgs, signals: TerminationSignals) -> Outcome {
    match args.command {
        SctpCommand::Server(a) => server::run(a, signals),
        SctpCommand::Client(a) => client::run(a, signals),
        SctpCommand::Perf(a) => perf::run(a, signals),
    }
}

/// The packet I/O backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// UDP encapsulation (RFC 6951): unprivileged.
    Udp,
    /// Raw IP protocol 132 (io_uring where available, else poll): needs CAP_NET_RAW.
    Raw,
    /// In-process memory fabric (perf only: both ends in one process).
    Memory,
    /// DPDK poll-mode driver with our own Ethernet/IP/ARP/ND (built with feature `dpdk`):
    /// give `--eal "..."` and one `--bind` address per port (see docs/dpdk.md).
    #[cfg(feature = "dpdk")]
    Dpdk,
}

/// Options every `rsp sctp` tool shares.
#[derive(Debug, Args, Clone)]
pub struct NetArgs {
    /// Packet I/O backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Udp)]
    pub backend: BackendArg,
    /// DPDK backend: EAL arguments, e.g. "--no-huge --vdev=net_af_packet0,iface=veth0"
    /// (default: --no-huge -m 256 --no-pci).
    #[cfg(feature = "dpdk")]
    #[arg(
        long,
        value_name = "ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub eal: String,
    /// DPDK backend: the ports (ids or device names such as net_af_packet0), in the order
    /// of the addresses: port i takes the i-th IPv4 and the i-th IPv6 `--bind` address.
    /// Default: ports 0, 1, ...
    #[cfg(feature = "dpdk")]
    #[arg(long = "dpdk-port", value_name = "PORT", value_delimiter = ',')]
    pub dpdk_ports: Vec<String>,
    /// DPDK backend: prefix length of the IPv4 `--bind` addresses (IPv6: 64); peers outside
    /// go through `--dpdk-gateway`.
    #[cfg(feature = "dpdk")]
    #[arg(long, value_name = "LEN", default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub dpdk_prefix: u8,
    /// DPDK backend: next hops for destinations off the local prefixes (one per family).
    #[cfg(feature = "dpdk")]
    #[arg(long = "dpdk-gateway", value_name = "IP", value_delimiter = ',', value_parser = parse_ip)]
    pub dpdk_gateway: Vec<IpAddr>,
    /// Worker threads, each with its own endpoint shard (pinned to cores when more than one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Local address to use (repeatable or comma-separated). Several addresses make the
    /// endpoint multi-homed: they are listed in INIT/INIT ACK and the peer may use each.
    #[arg(long = "bind", value_name = "ADDR", value_delimiter = ',', value_parser = parse_ip)]
    pub bind: Vec<IpAddr>,
    /// Local UDP port for UDP encapsulation (0 picks a free one).
    #[arg(long, value_name = "PORT", default_value_t = 9899, value_parser = parse_local_port)]
    pub udp_port: u16,
    /// Write every packet sent and received into this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Path MTU in bytes (IP level; lower it for tunnels).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(512..))]
    pub mtu: u16,
    /// Send small messages at once (no Nagle-like bundling delay).
    #[arg(long)]
    pub nodelay: bool,
    /// Busy-poll when idle instead of sleeping (lowest latency, one core per worker).
    #[arg(long)]
    pub busy_poll: bool,
    /// Offer SCTP-AUTH (RFC 4895, HMAC-SHA256 then HMAC-SHA1, the empty key 0) and Add-IP
    /// (RFC 5061, ASCONF authenticated); each is used when the peer supports it too.
    #[arg(long)]
    pub auth: bool,
    /// Offer I-DATA (RFC 8260): used when the peer offers it too; then fragments of
    /// messages on different streams interleave.
    #[arg(long)]
    pub idata: bool,
    /// With --idata: number the fragments of our I-DATA messages the Linux way (the second
    /// fragment FSN 0, not 1 as RFC 8260 §2.1 says), as Linux kernel peers up to at least
    /// 6.1 expect; without it, a Linux peer never completes our fragmented messages until
    /// it has sent us a fragmented message of its own (the stack then switches by itself).
    #[arg(long, requires = "idata")]
    pub idata_linux_fsn: bool,
    /// Outbound streams to request (perf client: and spread the messages over them, round
    /// robin). Default: 10 (perf client: 1 stream used).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub streams: Option<u16>,
    /// Stream scheduler (RFC 8260 §3): first come first served, round robin, priority or
    /// weighted fair queueing (all streams at the default priority 0 and weight 1).
    #[arg(long, value_enum, default_value_t = SchedulerArg::Rr)]
    pub scheduler: SchedulerArg,
    /// Refuse the peer's stream reconfiguration requests (RFC 6525: stream and association
    /// resets, added streams) with "Denied". By default they are accepted.
    #[arg(long)]
    pub deny_reconfig: bool,
}

/// `--scheduler`: the stream scheduler of RFC 8260 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchedulerArg {
    /// First come first served.
    Fcfs,
    /// Round robin over the streams with queued data.
    Rr,
    /// Strict priority by stream.
    Prio,
    /// Weighted fair queueing (bytes).
    Wfq,
}

impl SchedulerArg {
    /// The stack's scheduler.
    pub fn scheduler(self) -> sctp_stack::StreamScheduler {
        match self {
            SchedulerArg::Fcfs => sctp_stack::StreamScheduler::Fcfs,
            SchedulerArg::Rr => sctp_stack::StreamScheduler::RoundRobin,
            SchedulerArg::Prio => sctp_stack::StreamScheduler::Priority,
            SchedulerArg::Wfq => sctp_stack::StreamScheduler::WeightedFair,
        }
    }
}

/// `--asconf-add ADDR --asconf-after SECS`: add a local address to the running association
/// with an ASCONF (RFC 5061; needs --auth and a peer with AUTH and Add-IP). The association
/// is not shut down before the peer answered; a refusal fails the run.
#[derive(Debug, Args, Clone)]
pub struct AsconfArgs {
    /// Add this local address to the association with an ASCONF (needs --auth); the transfer
    /// does not end before the peer answered it.
    #[arg(long, value_name = "ADDR", value_parser = parse_ip, requires = "auth")]
    pub asconf_add: Option<IpAddr>,
    /// Seconds after the association is established to send the ASCONF.
    #[arg(
        long,
        value_name = "SECS",
        requires = "asconf_add",
        default_value_t = 1.0
    )]
    pub asconf_after: f64,
}

impl AsconfArgs {
    /// The address and delay, checked.
    pub fn plan(&self) -> Result<Option<(IpAddr, core::time::Duration)>, Failure> {
        let Some(addr) = self.asconf_add else {
            return Ok(None);
        };
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(Failure::address(format!(
                "--asconf-add {addr}: not a unicast address"
            )));
        }
        if !self.asconf_after.is_finite() || !(0.0..=86_400.0).contains(&self.asconf_after) {
            return Err(Failure::usage(
                "--asconf-after must be a number of seconds between 0 and 86400",
            ));
        }
        Ok(Some((
            addr,
            core::time::Duration::from_secs_f64(self.asconf_after),
        )))
    }
}

/// A port number in 1..=65535.
pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) => Err("port 0 is not usable".to_owned()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("'{s}' is not a port number (1-65535)")),
    }
}

/// A local port number; 0 lets the system choose.
pub fn parse_local_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("'{s}' is not a port number (0-65535)"))
}

/// An IP address literal.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("'{s}' is not an IP address"))
}

/// Resolves `HOST[,HOST...]` (address literals or names) into addresses.
pub fn resolve_hosts(spec: &str) -> Result<Vec<IpAddr>, Failure> {
    let mut out = Vec::new();
    for host in spec.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err(Failure::address(format!("empty host in '{spec}'")));
        }
        if let Ok(ip) = parse_ip(host) {
            out.push(ip);
            continue;
        }
        let addrs: Vec<IpAddr> = (host, 0)
            .to_socket_addrs()
            .map_err(|e| Failure::address(format!("cannot resolve '{host}': {e}")))?
            .map(|a| a.ip())
            .collect();
        let Some(first) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) else {
            return Err(Failure::address(format!("'{host}' has no address")));
        };
        out.push(*first);
    }
    for ip in &out {
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(Failure::address(format!("{ip} is not a unicast address")));
        }
    }
    Ok(out)
}

/// The request to connect to a peer at `hosts` (`HOST[,HOST...]`, like `sctp_connectx`): the
/// INIT goes to the first address, to the next one each time T1-init expires, and all of
/// them are the peer's addresses (besides those its INIT ACK lists). At most 16, distinct,
/// each of a family the local addresses (`net`) can reach.
pub fn connect_request(
    hosts: &[IpAddr],
    port: u16,
    net: &NetArgs,
) -> Result<sctp_stack::ConnectRequest, Failure> {
    if hosts.len() > 16 {
        return Err(Failure::address("at most 16 peer addresses"));
    }
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].contains(h) {
            return Err(Failure::address(format!("peer address {h} is given twice")));
        }
        if !net.can_reach(*h) {
            return Err(Failure::address(format!(
                "the --bind address and the peer address {h} are of different address families"
            )));
        }
    }
    sctp_stack::ConnectRequest::to_any_of(hosts, port)
        .ok_or_else(|| Failure::address("no peer address"))
}

impl NetArgs {
    /// The one local address to bind the link to, if any. With several `--bind` addresses
    /// (multi-homing) the link takes every address (wildcard) and the stack lists the given
    /// ones in its INIT and INIT ACK, sending from each as its paths require.
    pub fn local_address(&self) -> Result<Option<IpAddr>, Failure> {
        match self.bind.as_slice() {
            [] => Ok(None),
            [one] if one.is_unspecified() => Ok(None),
            [one] => Ok(Some(*one)),
            _ => {
                self.multi_home_addresses()?;
                Ok(None)
            }
        }
    }

    /// The addresses of a multi-homed endpoint (several `--bind`), checked: unicast,
    /// distinct, at most 16.
    pub fn multi_home_addresses(&self) -> Result<Vec<IpAddr>, Failure> {
        if self.bind.len() < 2 {
            return Ok(Vec::new());
        }
        let mut out: Vec<IpAddr> = Vec::with_capacity(self.bind.len());
        for a in &self.bind {
            if a.is_unspecified() || a.is_multicast() {
                return Err(Failure::address(format!(
                    "--bind {a}: several local addresses must all be unicast addresses"
                )));
            }
            if out.contains(a) {
                return Err(Failure::address(format!("--bind {a} is given twice")));
            }
            out.push(*a);
        }
        if out.len() > 16 {
            return Err(Failure::address("at most 16 --bind addresses"));
        }
        Ok(out)
    }

    /// Whether the local addresses allow reaching `remote` (same family as one of them).
    pub fn can_reach(&self, remote: IpAddr) -> bool {
        self.bind.is_empty()
            || self
                .bind
                .iter()
                .any(|l| l.is_unspecified() || l.is_ipv4() == remote.is_ipv4())
    }

    /// The runtime configuration these options describe.
    pub fn runtime_config(&self, name: &str) -> Result<RuntimeConfig, Failure> {
        let mut c = RuntimeConfig::default();
        c.workers = usize::from(self.workers);
        c.idle = if self.busy_poll {
            IdleMode::BusyPoll
        } else {
            IdleMode::Block
        };
        c.endpoint.rng_seed =
            random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
        c.endpoint.association.pmtu = self.mtu;
        c.endpoint.association.nodelay = self.nodelay;
        c.endpoint.association.i_data = self.idata;
        if self.idata_linux_fsn {
            c.endpoint.association.i_data_fsn = sctp_stack::IDataFsn::Linux;
        }
        if self.deny_reconfig {
            c.endpoint.association.reconf_policy = sctp_stack::ReconfPolicy::DENY_ALL;
        }
        c.endpoint.association.stream_scheduler = self.scheduler.scheduler();
        if let Some(n) = self.streams {
            c.endpoint.association.outbound_streams = n;
        }
        if self.auth {
            // RFC 4895 with the default HMAC list (SHA-256, then SHA-1) and key 0; Add-IP
            // with it (RFC 5061 §4.1: ASCONF only authenticated).
            c.endpoint.association.auth = true;
            c.endpoint.association.asconf = true;
        }
        c.endpoint.local_addresses = self.multi_home_addresses()?;
        c.max_packet = c.max_packet.max(usize::from(self.mtu));
        c.capture.clone_from(&self.pcap);
        c.thread_name = name.to_owned();
        Ok(c)
    }

    /// The links these options describe (not for the memory backend).
    pub fn link_spec(&self, remote_udp_port: u16) -> Result<LinkSpec, Failure> {
        let local = self.local_address()?;
        match self.backend {
            BackendArg::Udp => Ok(LinkSpec::Udp(UdpConfig {
                bind: local.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                port: self.udp_port,
                default_remote_port: remote_udp_port,
                ..UdpConfig::default()
            })),
            BackendArg::Raw => {
                let mut c = RawConfig::default();
                if self.bind.len() > 1 {
                    c.ipv4 = self.bind.iter().any(IpAddr::is_ipv4);
                    c.ipv6 = self.bind.iter().any(IpAddr::is_ipv6);
                }
                match local {
                    Some(IpAddr::V4(a)) => {
                        c.bind4 = Some(a);
                        c.ipv6 = false;
                    }
                    Some(IpAddr::V6(a)) => {
                        c.bind6 = Some(a);
                        c.ipv4 = false;
                    }
                    None => {}
                }
                c.max_packet = c.max_packet.max(usize::from(self.mtu));
                Ok(LinkSpec::Raw(c))
            }
            #[cfg(feature = "dpdk")]
            BackendArg::Dpdk => self.dpdk_links(),
            BackendArg::Memory => Err(Failure::usage(
                "the memory backend needs both ends in one process: use `rsp sctp perf client --backend memory`",
            )),
        }
    }
}

#[cfg(feature = "dpdk")]
impl NetArgs {
    /// The DPDK configuration these options describe.
    pub fn dpdk_config(&self) -> Result<dataplane::dpdk::DpdkConfig, Failure> {
        use dataplane::dpdk::{DpdkConfig, EalConfig, InterfaceConfig, IpPrefix, PortSelector};
        let eal = EalConfig::parse(&self.eal).map_err(|e| Failure::usage(e.to_string()))?;
        let v4: Vec<IpAddr> = self.bind.iter().copied().filter(IpAddr::is_ipv4).collect();
        let v6: Vec<IpAddr> = self.bind.iter().copied().filter(IpAddr::is_ipv6).collect();
        if v4.is_empty() && v6.is_empty() {
            return Err(Failure::usage(
                "--backend dpdk needs the endpoint's own address: --bind ADDR (DPDK takes the port away from the kernel)",
            ));
        }
        let ports = v4.len().max(v6.len());
        let mut c = DpdkConfig::default();
        c.eal = eal;
        c.queues = usize::from(self.workers);
        c.mtu = self.mtu;
        for i in 0..ports {
            let port = match self.dpdk_ports.get(i) {
                Some(p) => match p.parse::<u16>() {
                    Ok(n) => PortSelector::Index(n),
                    Err(_) => PortSelector::Name(p.clone()),
                },
                None if self.dpdk_ports.is_empty() => PortSelector::Index(i as u16),
                None => {
                    return Err(Failure::usage(format!(
                        "{ports} ports needed for the --bind addresses, {} given with --dpdk-port",
                        self.dpdk_ports.len()
                    )));
                }
            };
            let mut addrs = Vec::new();
            if let Some(a) = v4.get(i) {
                addrs.push(IpPrefix {
                    addr: *a,
                    len: self.dpdk_prefix,
                });
            }
            if let Some(a) = v6.get(i) {
                addrs.push(IpPrefix { addr: *a, len: 64 });
            }
            let mut ic =
                InterfaceConfig::new(port, &addrs).map_err(|e| Failure::usage(e.to_string()))?;
            for g in &self.dpdk_gateway {
                match g {
                    IpAddr::V4(g) => ic.gateway4 = Some(*g),
                    IpAddr::V6(g) => ic.gateway6 = Some(*g),
                }
            }
            c.interfaces.push(ic);
        }
        Ok(c)
    }

    fn dpdk_links(&self) -> Result<LinkSpec, Failure> {
        let c = self.dpdk_config()?;
        let links =
            dataplane::dpdk::DpdkLink::open(&c).map_err(|e| Failure::setup(e.to_string()))?;
        Ok(LinkSpec::Links(
            links.into_iter().map(dataplane::AnyLink::from).collect(),
        ))
    }
}

/// Turns a runtime start or run error into an exit status.
pub fn runtime_failure(e: RuntimeError) -> Failure {
    match e {
        RuntimeError::Link(LinkError::RawNeedsCapNetRaw) => Failure::setup(e.to_string()),
        RuntimeError::Link(LinkError::Io { ref source, .. })
            if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
        {
            Failure::address(e.to_string())
        }
        RuntimeError::Config(_) | RuntimeError::Endpoint(_) => Failure::usage(e.to_string()),
        _ => Failure::setup(e.to_string()),
    }
}

/// The signal that stopped the process, if any, shared with the signal thread.
#[derive(Clone, Debug, Default)]
pub struct Caught(Arc<Mutex<Option<Signal>>>);

impl Caught {
    /// The first signal received.
    pub fn get(&self) -> Option<Signal> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the signal thread: the first signal runs `on_first`, a second one ends the process
/// at once.
pub fn on_signals(
    signals: TerminationSignals,
    on_first: impl Fn() + Send + 'static,
) -> Result<Caught, Failure> {
    let caught = Caught::default();
    let c = caught.clone();
    signals
        .spawn(move |s| {
            let mut slot = c.0.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_some() {
                std::process::exit(s.exit_code());
            }
            *slot = Some(s);
            drop(slot);
            tracing::info!("{s:?}: stopping");
            on_first();
        })
        .map_err(|e| Failure::setup(format!("cannot start the signal thread: {e}")))?;
    Ok(caught)
}

/// Waits for the runtime and logs its counters at debug level.
pub fn join(rt: Runtime) -> Result<Vec<WorkerStats>, Failure> {
    let stats = rt.join().map_err(runtime_failure)?;
    for (i, s) in stats.iter().enumerate() {
        tracing::debug!(worker = i, ?s, "worker counters");
    }
    Ok(stats)
}

/// Bytes per second as a human-readable rate in bits.
pub fn rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    let bits = bytes as f64 * 8.0 / seconds;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.1} kbit/s", bits / 1e3)
    }
}

/// The exit status after a clean stop: a signal's code, or success.
pub fn stopped_status(caught: &Caught) -> ExitStatus {
    caught
        .get()
        .map_or(ExitStatus::Success, |s| ExitStatus::Signal(s.exit_code()))
}
