//! The registrar's settings: command-line values, the TOML file, and their merge into a
//! [`RegistrarConfig`].
//!
//! The file takes the flags' names as keys (`asap`, `enrp`, `peer` as a list,
//! `identifier`, `max-bad-pe-reports`, `keepalive-interval`, `keepalive-timeout`,
//! `max-hres-items`, `asap-announce`, `enrp-announce`, `metrics`, `cspserver`,
//! `cspinterval`, and the security controls `allow-register` / `allow-resolve` as lists,
//! `resolution-rate`, `unreachable-rate`, `verify-pe-addresses`, `discover-peers`,
//! `max-pools`, `max-pes`, `max-pes-per-pool`, `max-owned-pes`, `max-pes-per-address`,
//! `max-peers`, and the ENRP peer timers in milliseconds `peer-heartbeat-cycle`,
//! `peer-max-time-last-heard`, `peer-max-time-no-response`, `takeover-expiry-interval`);
//! unknown keys are errors.
//!
//! A `[network]` table holds the shared network options under their flag names:
//! `backend` (`udp`, `raw`, `memory`, `dpdk`), `bind` (a list of addresses), `workers`,
//! `udp-port`, `remote-udp-port`, `mtu`, `busy-poll` (a boolean), `pcap` (a path), and the
//! DPDK options `eal` (one string), `dpdk-port` (a list of ids or device names),
//! `dpdk-prefix` and `dpdk-gateway` (a list of addresses). The DPDK keys are accepted (and
//! checked) by every build; `backend = "dpdk"` in a build without feature `dpdk` is a usage
//! error naming the feature. Unknown keys in the table are errors too. The table is merged
//! into the parsed [`NetArgs`] by [`Network::apply`]: a flag given on the command line
//! keeps its value, a key of the file replaces clap's default.
//!
//! Multicast announces are off unless asked for (`auto` picks RSPLIB's groups). A flag
//! given on the command line overrides the file's value (`--peer` replaces the file's list).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rserpool::registrar::{AccessRule, IpPrefix, RateLimit, RegistrarConfig};
use rserpool::wire::{
    PORT_ASAP, PORT_ENRP, PoolHandle, RegistrarId, TransportParameter, TransportUse,
};
use serde::Deserialize;

use crate::exit::Failure;
use crate::sctp::{BackendArg, NetArgs, parse_ip};

/// A static ENRP peer: its ENRP endpoint and, under UDP encapsulation, its UDP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer's ENRP address and SCTP port.
    pub endpoint: SocketAddr,
    /// The peer's UDP encapsulation port (`None`: `--remote-udp-port`).
    pub udp_port: Option<u16>,
}

/// A multicast announce setting: off, or the group (`ADDR:PORT`) to send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    /// No multicast.
    Off,
    /// Send to (and, for ENRP, listen on) this group.
    Group(SocketAddr),
}

/// RSPLIB's SERVER_ANNOUNCE group (RFC 5352 §3.6 leaves it to configuration).
pub const ASAP_ANNOUNCE_GROUP: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 50)), PORT_ASAP);
/// RSPLIB's ENRP PRESENCE group.
pub const ENRP_ANNOUNCE_GROUP: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 51)), PORT_ENRP);

/// `ADDR:PORT` (IPv6 as `[ADDR]:PORT`); port 0 is refused.
pub fn parse_endpoint(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not ADDR:PORT (IPv6: [ADDR]:PORT)"))?;
    if a.port() == 0 {
        return Err(format!("'{s}': port 0 is not usable"));
    }
    if a.ip().is_multicast() {
        return Err(format!("'{s}': {} is not a unicast address", a.ip()));
    }
    Ok(a)
}

/// `ADDR:PORT[/UDPPORT]`: a peer's ENRP endpoint, optionally with its UDP encapsulation port.
pub fn parse_peer(s: &str) -> Result<PeerSpec, String> {
    let (ep, udp) = match s.rsplit_once('/') {
        Some((ep, udp)) => {
            let port = match udp.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(format!("'{s}': '{udp}' is not a UDP port (1-65535)"));
                }
                Ok(p) => p,
            };
            (ep, Some(port))
        }
        None => (s, None),
    };
    let endpoint = parse_endpoint(ep)?;
    if endpoint.ip().is_unspecified() {
        return Err(format!("'{s}': a peer needs a unicast address"));
    }
    Ok(PeerSpec {
        endpoint,
        udp_port: udp,
    })
}

/// A registrar identifier: decimal or `0x` hexadecimal, not 0.
pub fn parse_identifier(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse::<u32>(),
    }
    .map_err(|_| format!("'{s}' is not a 32-bit identifier (decimal or 0x hex)"))?;
    if v == 0 {
        return Err("identifier 0 means \"none\"; leave --identifier out for a random one".into());
    }
    Ok(v)
}

/// `--cspserver`: the cspmonitor's unicast `ADDR:PORT` (RSPLIB's port is 2960).
pub fn parse_csp_server(s: &str) -> Result<SocketAddr, String> {
    let a = parse_endpoint(s)?;
    if a.ip().is_unspecified() {
        return Err(format!("'{s}': a cspmonitor needs a unicast address"));
    }
    Ok(a)
}

/// RSPLIB's default interval between Component Status reports, in milliseconds.
pub const DEFAULT_CSP_INTERVAL_MS: u64 = 1000;

/// `off`, `auto` (`default`) or a multicast `ADDR:PORT`.
fn parse_announce(s: &str, default: SocketAddr) -> Result<Announce, String> {
    match s.trim() {
        "off" => Ok(Announce::Off),
        "auto" => Ok(Announce::Group(default)),
        other => {
            let a: SocketAddr = other
                .parse()
                .map_err(|_| format!("'{s}' is not off, auto or a multicast ADDR:PORT"))?;
            if !a.ip().is_multicast() || a.port() == 0 {
                return Err(format!("'{s}' is not a multicast ADDR:PORT"));
            }
            Ok(Announce::Group(a))
        }
    }
}

/// `--asap-announce`: `off`, `auto` (239.0.0.50:3863) or a multicast `ADDR:PORT`.
pub fn parse_asap_announce(s: &str) -> Result<Announce, String> {
    parse_announce(s, ASAP_ANNOUNCE_GROUP)
}

/// `--enrp-announce`: `off`, `auto` (239.0.0.51:9901) or a multicast `ADDR:PORT`.
pub fn parse_enrp_announce(s: &str) -> Result<Announce, String> {
    parse_announce(s, ENRP_ANNOUNCE_GROUP)
}

/// A count or time in 1..=max.
fn in_range(what: &str, v: u64, max: u64) -> Result<u64, String> {
    if v == 0 || v > max {
        return Err(format!("{what} must be in 1..={max}, not {v}"));
    }
    Ok(v)
}

/// Longest keep-alive interval or timeout accepted, in milliseconds (one day).
pub const MAX_MS: u64 = 86_400_000;
/// Most PEs per handle resolution accepted.
pub const MAX_HRES_ITEMS: u64 = 1024;
/// Most bad PE reports accepted.
pub const MAX_BAD_PE_REPORTS: u64 = 1_000_000;
/// Largest limit accepted for pools, PEs and peers.
pub const MAX_LIMIT: u64 = 1 << 24;
/// Most access rules per list.
pub const MAX_ACL_RULES: usize = 1024;
/// Longest pool handle in an access rule (the handlespace's default limit).
const MAX_ACL_HANDLE: usize = 32;

/// An access rule: `PREFIX[=POOL[,POOL...]]`, PREFIX as `ADDR/LEN` or one `ADDR`; without
/// pools the rule allows every pool.
pub fn parse_access_rule(s: &str) -> Result<AccessRule, String> {
    let (prefix, pools) = match s.split_once('=') {
        Some((p, list)) => (p.trim(), Some(list)),
        None => (s.trim(), None),
    };
    let (addr, len) = match prefix.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (prefix, None),
    };
    let address: IpAddr = addr
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| format!("'{s}': '{addr}' is not an IP address (rule: PREFIX[=POOL,...])"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let length = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => return Err(format!("'{s}': prefix length '{l}' is not in 0..={max}")),
        },
    };
    let mut pool_handles = Vec::new();
    if let Some(list) = pools {
        for h in list.split(',') {
            let h = h.trim();
            if h.is_empty() || h.len() > MAX_ACL_HANDLE {
                return Err(format!(
                    "'{s}': pool handles must be 1..={MAX_ACL_HANDLE} bytes, comma-separated"
                ));
            }
            pool_handles.push(PoolHandle::from(h));
        }
    }
    Ok(AccessRule {
        prefix: IpPrefix::new(address, length),
        pool_handles,
    })
}

/// A rate: `N[/BURST]` operations per second (burst defaults to N).
pub fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (rate, burst) = match s.split_once('/') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let num = |t: &str| match t.trim().parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a rate N[/BURST] with N and BURST >= 1"
        )),
    };
    let per_second = num(rate)?;
    let burst = burst.map(num).transpose()?.unwrap_or(per_second);
    Ok(RateLimit { per_second, burst })
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`).
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("'{s}' is not on or off")),
    }
}

/// A limit in 1..=[`MAX_LIMIT`].
pub fn parse_limit(s: &str) -> Result<usize, String> {
    match s.trim().parse::<u64>() {
        Ok(v) if (1..=MAX_LIMIT).contains(&v) => Ok(v as usize),
        _ => Err(format!("'{s}' is not a limit in 1..={MAX_LIMIT}")),
    }
}

/// The ENRP peer timers in milliseconds (RSPLIB's names: peerheartbeatcycle,
/// peermaxtimelastheard, peermaxtimenoresponse, takeoverexpiryinterval). `None` keeps the
/// core's default (RSPLIB's values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTimers {
    /// Interval between PRESENCE messages to each peer.
    pub heartbeat_cycle: Option<u64>,
    /// A peer not heard for this long is asked for a PRESENCE.
    pub max_time_last_heard: Option<u64>,
    /// A peer that does not answer that request within this time is taken over.
    pub max_time_no_response: Option<u64>,
    /// How long a takeover waits for the other peers' acknowledgements.
    pub takeover_expiry: Option<u64>,
}

impl PeerTimers {
    fn overridden_by(self, o: PeerTimers) -> PeerTimers {
        PeerTimers {
            heartbeat_cycle: o.heartbeat_cycle.or(self.heartbeat_cycle),
            max_time_last_heard: o.max_time_last_heard.or(self.max_time_last_heard),
            max_time_no_response: o.max_time_no_response.or(self.max_time_no_response),
            takeover_expiry: o.takeover_expiry.or(self.takeover_expiry),
        }
    }

    fn apply(&self, core: &mut RegistrarConfig) {
        let ms = Duration::from_millis;
        if let Some(v) = self.heartbeat_cycle {
            core.presence_interval = ms(v);
        }
        if let Some(v) = self.max_time_last_heard {
            core.max_time_last_heard = ms(v);
        }
        if let Some(v) = self.max_time_no_response {
            core.max_time_no_response = ms(v);
        }
        if let Some(v) = self.takeover_expiry {
            core.takeover_expiry = ms(v);
        }
    }
}

/// The registrar's security controls and limits (RFC 5351 §6 / RFC 5355: authorize PEs and
/// PUs, protect against resource exhaustion). `None` keeps the core's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// Who may register into which pools (`None`: everyone).
    pub allow_register: Option<Vec<AccessRule>>,
    /// Who may resolve which pools (`None`: everyone).
    pub allow_resolve: Option<Vec<AccessRule>>,
    /// Per-PU HANDLE_RESOLUTION rate.
    pub resolution_rate: Option<RateLimit>,
    /// Per-PU ENDPOINT_UNREACHABLE rate.
    pub unreachable_rate: Option<RateLimit>,
    /// Keep only registered addresses that belong to the PE's association.
    pub verify_pe_addresses: Option<bool>,
    /// Accept peers that announce themselves (PRESENCE from unconfigured registrars).
    pub discover_peers: Option<bool>,
    /// Most pools.
    pub max_pools: Option<usize>,
    /// Most PEs in the handlespace.
    pub max_pes: Option<usize>,
    /// Most PEs in one pool.
    pub max_pes_per_pool: Option<usize>,
    /// Most PEs this registrar is home for.
    pub max_owned_pes: Option<usize>,
    /// Most PEs registered from one address.
    pub max_pes_per_address: Option<usize>,
    /// Most ENRP peers.
    pub max_peers: Option<usize>,
}

impl Security {
    fn overridden_by(self, o: Security) -> Security {
        Security {
            allow_register: o.allow_register.or(self.allow_register),
            allow_resolve: o.allow_resolve.or(self.allow_resolve),
            resolution_rate: o.resolution_rate.or(self.resolution_rate),
            unreachable_rate: o.unreachable_rate.or(self.unreachable_rate),
            verify_pe_addresses: o.verify_pe_addresses.or(self.verify_pe_addresses),
            discover_peers: o.discover_peers.or(self.discover_peers),
            max_pools: o.max_pools.or(self.max_pools),
            max_pes: o.max_pes.or(self.max_pes),
            max_pes_per_pool: o.max_pes_per_pool.or(self.max_pes_per_pool),
            max_owned_pes: o.max_owned_pes.or(self.max_owned_pes),
            max_pes_per_address: o.max_pes_per_address.or(self.max_pes_per_address),
            max_peers: o.max_peers.or(self.max_peers),
        }
    }

    /// Applies the given values to the core's configuration.
    fn apply(&self, core: &mut RegistrarConfig) -> Result<(), Failure> {
        for (name, rules) in [
            ("allow-register", &self.allow_register),
            ("allow-resolve", &self.allow_resolve),
        ] {
            if rules.as_ref().is_some_and(|r| r.len() > MAX_ACL_RULES) {
                return Err(Failure::usage(format!(
                    "at most {MAX_ACL_RULES} {name} rules"
                )));
            }
        }
        if let Some(r) = &self.allow_register {
            core.registration_acl.rules.clone_from(r);
        }
        if let Some(r) = &self.allow_resolve {
            core.resolution_acl.rules.clone_from(r);
        }
        if self.resolution_rate.is_some() {
            core.resolution_rate = self.resolution_rate;
        }
        if self.unreachable_rate.is_some() {
            core.unreachable_rate = self.unreachable_rate;
        }
        if let Some(v) = self.verify_pe_addresses {
            core.verify_pe_addresses = v;
        }
        if let Some(v) = self.discover_peers {
            core.discover_peers = v;
        }
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut core.handlespace.max_pools, self.max_pools);
        set(&mut core.handlespace.max_pes, self.max_pes);
        set(
            &mut core.handlespace.max_pes_per_pool,
            self.max_pes_per_pool,
        );
        set(&mut core.max_owned_pes, self.max_owned_pes);
        set(&mut core.max_pes_per_address, self.max_pes_per_address);
        set(&mut core.max_peers, self.max_peers);
        Ok(())
    }
}

/// An identifier in the file: a number or a string in the flag's syntax.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdentifierValue {
    Number(u64),
    Text(String),
}

/// A DPDK port in the file: an id or a device name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PortValue {
    Number(u64),
    Text(String),
}

/// The file's `[network]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NetworkFile {
    backend: Option<String>,
    bind: Option<Vec<String>>,
    workers: Option<u64>,
    udp_port: Option<u64>,
    remote_udp_port: Option<u64>,
    mtu: Option<u64>,
    busy_poll: Option<bool>,
    pcap: Option<PathBuf>,
    eal: Option<String>,
    dpdk_port: Option<Vec<PortValue>>,
    dpdk_prefix: Option<u64>,
    dpdk_gateway: Option<Vec<String>>,
}

/// Most addresses in `bind` and `dpdk-gateway`, and most `dpdk-port` entries.
const MAX_NET_LIST: usize = 64;

/// The network options of the file's `[network]` table, checked (`None`: not given).
/// The DPDK values are kept by every build; only a `dpdk` build uses them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// `backend`.
    pub backend: Option<BackendArg>,
    /// `bind`.
    pub bind: Option<Vec<IpAddr>>,
    /// `workers`.
    pub workers: Option<u16>,
    /// `udp-port` (0 picks a free one).
    pub udp_port: Option<u16>,
    /// `remote-udp-port`.
    pub remote_udp_port: Option<u16>,
    /// `mtu`.
    pub mtu: Option<u16>,
    /// `busy-poll`.
    pub busy_poll: Option<bool>,
    /// `pcap`.
    pub pcap: Option<PathBuf>,
    /// `eal`.
    pub eal: Option<String>,
    /// `dpdk-port`.
    pub dpdk_ports: Option<Vec<String>>,
    /// `dpdk-prefix`.
    pub dpdk_prefix: Option<u8>,
    /// `dpdk-gateway`.
    pub dpdk_gateway: Option<Vec<IpAddr>>,
}

impl Network {
    /// Checks the table; `name` is the file's name for the messages.
    fn from_file(name: &str, f: &NetworkFile) -> Result<Network, Failure> {
        let usage = |key: &str, e: String| Failure::usage(format!("{name}: network: {key}: {e}"));
        let ranged = |key: &str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err(usage(key, format!("{v} is not in {lo}..={hi}")))
            }
            _ => Ok(v),
        };
        let ips = |key: &str, list: &Option<Vec<String>>| -> Result<_, Failure> {
            let Some(list) = list else { return Ok(None) };
            if list.len() > MAX_NET_LIST {
                return Err(usage(key, format!("at most {MAX_NET_LIST} addresses")));
            }
            list.iter()
                .map(|a| {
                    parse_ip(a)
                        .map_err(|e| Failure::address(format!("{name}: network: {key}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let backend = match f.backend.as_deref() {
            None => None,
            Some(b) => Some(parse_backend(b).map_err(|e| usage("backend", e))?),
        };
        let dpdk_ports = match &f.dpdk_port {
            None => None,
            Some(list) if list.len() > MAX_NET_LIST => {
                return Err(usage("dpdk-port", format!("at most {MAX_NET_LIST} ports")));
            }
            Some(list) => Some(
                list.iter()
                    .map(|p| match p {
                        PortValue::Number(n) => n.to_string(),
                        PortValue::Text(t) => t.clone(),
                    })
                    .collect(),
            ),
        };
        // The narrowing casts below are exact: each value was checked against its range.
        Ok(Network {
            backend,
            bind: ips("bind", &f.bind)?,
            workers: ranged("workers", f.workers, 1, 256)?.map(|v| v as u16),
            udp_port: ranged("udp-port", f.udp_port, 0, 65535)?.map(|v| v as u16),
            remote_udp_port: ranged("remote-udp-port", f.remote_udp_port, 1, 65535)?
                .map(|v| v as u16),
            mtu: ranged("mtu", f.mtu, 512, 65535)?.map(|v| v as u16),
            busy_poll: f.busy_poll,
            pcap: f.pcap.clone(),
            eal: f.eal.clone(),
            dpdk_ports,
            dpdk_prefix: ranged("dpdk-prefix", f.dpdk_prefix, 0, 32)?.map(|v| v as u8),
            dpdk_gateway: ips("dpdk-gateway", &f.dpdk_gateway)?,
        })
    }

    fn overridden_by(self, o: Network) -> Network {
        Network {
            backend: o.backend.or(self.backend),
            bind: o.bind.or(self.bind),
            workers: o.workers.or(self.workers),
            udp_port: o.udp_port.or(self.udp_port),
            remote_udp_port: o.remote_udp_port.or(self.remote_udp_port),
            mtu: o.mtu.or(self.mtu),
            busy_poll: o.busy_poll.or(self.busy_poll),
            pcap: o.pcap.or(self.pcap),
            eal: o.eal.or(self.eal),
            dpdk_ports: o.dpdk_ports.or(self.dpdk_ports),
            dpdk_prefix: o.dpdk_prefix.or(self.dpdk_prefix),
            dpdk_gateway: o.dpdk_gateway.or(self.dpdk_gateway),
        }
    }

    /// Writes the given values into `net`, except those whose flag was given on the
    /// command line: `on_command_line` gets the argument's clap id (the field name of
    /// [`NetArgs`], e.g. `udp_port`, `dpdk_ports`).
    pub fn apply(&self, net: &mut NetArgs, on_command_line: &dyn Fn(&str) -> bool) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>, id: &str, given: &dyn Fn(&str) -> bool) {
            if let Some(v) = v
                && !given(id)
            {
                slot.clone_from(v);
            }
        }
        let g = on_command_line;
        set(&mut net.backend, &self.backend, "backend", g);
        set(&mut net.bind, &self.bind, "bind", g);
        set(&mut net.workers, &self.workers, "workers", g);
        set(&mut net.udp_port, &self.udp_port, "udp_port", g);
        set(&mut net.mtu, &self.mtu, "mtu", g);
        set(&mut net.busy_poll, &self.busy_poll, "busy_poll", g);
        if self.pcap.is_some() && !g("pcap") {
            net.pcap.clone_from(&self.pcap);
        }
        #[cfg(feature = "dpdk")]
        {
            set(&mut net.eal, &self.eal, "eal", g);
            set(&mut net.dpdk_ports, &self.dpdk_ports, "dpdk_ports", g);
            set(&mut net.dpdk_prefix, &self.dpdk_prefix, "dpdk_prefix", g);
            set(&mut net.dpdk_gateway, &self.dpdk_gateway, "dpdk_gateway", g);
        }
    }
}

/// A `backend` value of the file, as `--backend` takes it; `dpdk` in a build without the
/// feature says so.
fn parse_backend(s: &str) -> Result<BackendArg, String> {
    use clap::ValueEnum;
    if let Ok(b) = BackendArg::from_str(s.trim(), false) {
        return Ok(b);
    }
    if s.trim() == "dpdk" {
        return Err(
            "\"dpdk\" needs an rsp built with feature `dpdk` (cargo build --features dpdk, see docs/dpdk.md)"
                .to_owned(),
        );
    }
    let names: Vec<String> = BackendArg::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
        .collect();
    Err(format!("'{s}' is not one of {}", names.join(", ")))
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    asap: Option<String>,
    enrp: Option<String>,
    peer: Option<Vec<String>>,
    identifier: Option<IdentifierValue>,
    max_bad_pe_reports: Option<u64>,
    keepalive_interval: Option<u64>,
    keepalive_timeout: Option<u64>,
    max_hres_items: Option<u64>,
    asap_announce: Option<String>,
    enrp_announce: Option<String>,
    metrics: Option<String>,
    cspserver: Option<String>,
    cspinterval: Option<u64>,
    allow_register: Option<Vec<String>>,
    allow_resolve: Option<Vec<String>>,
    resolution_rate: Option<String>,
    unreachable_rate: Option<String>,
    verify_pe_addresses: Option<bool>,
    discover_peers: Option<bool>,
    max_pools: Option<u64>,
    max_pes: Option<u64>,
    max_pes_per_pool: Option<u64>,
    max_owned_pes: Option<u64>,
    max_pes_per_address: Option<u64>,
    max_peers: Option<u64>,
    peer_heartbeat_cycle: Option<u64>,
    peer_max_time_last_heard: Option<u64>,
    peer_max_time_no_response: Option<u64>,
    takeover_expiry_interval: Option<u64>,
    network: Option<NetworkFile>,
}

/// The registrar's own settings and the file's `[network]` table, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Local ASAP endpoint.
    pub asap: Option<SocketAddr>,
    /// Local ENRP endpoint.
    pub enrp: Option<SocketAddr>,
    /// Static peers (`None`: not given).
    pub peers: Option<Vec<PeerSpec>>,
    /// Server identifier.
    pub identifier: Option<u32>,
    /// MaxBadPEReports.
    pub max_bad_pe_reports: Option<u32>,
    /// Keep-alive interval, ms.
    pub keepalive_interval: Option<u64>,
    /// Keep-alive timeout, ms.
    pub keepalive_timeout: Option<u64>,
    /// MaxHResItems.
    pub max_hres_items: Option<u32>,
    /// SERVER_ANNOUNCE multicast.
    pub asap_announce: Option<Announce>,
    /// ENRP PRESENCE multicast.
    pub enrp_announce: Option<Announce>,
    /// Prometheus endpoint (`--metrics`).
    pub metrics: Option<SocketAddr>,
    /// cspmonitor to report to (`--cspserver`).
    pub csp_server: Option<SocketAddr>,
    /// Milliseconds between Component Status reports (`--cspinterval`).
    pub csp_interval: Option<u64>,
    /// Access lists, rate limits and resource limits.
    pub security: Security,
    /// ENRP peer supervision and takeover timers.
    pub peer_timers: PeerTimers,
    /// The `[network]` table (the flags' values stay in [`NetArgs`]; see
    /// [`Network::apply`]).
    pub network: Network,
}

impl Settings {
    /// `self` with every value `over` gives replaced.
    pub fn overridden_by(self, over: Settings) -> Settings {
        Settings {
            asap: over.asap.or(self.asap),
            enrp: over.enrp.or(self.enrp),
            peers: over.peers.or(self.peers),
            identifier: over.identifier.or(self.identifier),
            max_bad_pe_reports: over.max_bad_pe_reports.or(self.max_bad_pe_reports),
            keepalive_interval: over.keepalive_interval.or(self.keepalive_interval),
            keepalive_timeout: over.keepalive_timeout.or(self.keepalive_timeout),
            max_hres_items: over.max_hres_items.or(self.max_hres_items),
            asap_announce: over.asap_announce.or(self.asap_announce),
            enrp_announce: over.enrp_announce.or(self.enrp_announce),
            metrics: over.metrics.or(self.metrics),
            csp_server: over.csp_server.or(self.csp_server),
            csp_interval: over.csp_interval.or(self.csp_interval),
            security: self.security.overridden_by(over.security),
            peer_timers: self.peer_timers.overridden_by(over.peer_timers),
            network: self.network.overridden_by(over.network),
        }
    }

    /// Reads a TOML file. Errors are one line naming the file (and the line of a syntax
    /// error): unreadable or invalid files are usage errors, bad addresses address errors.
    pub fn from_file(path: &Path) -> Result<Settings, Failure> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("--config {name}: {e}")))?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => Failure::usage(format!("{name}: line {l}: {}", msg.trim())),
                None => Failure::usage(format!("{name}: {}", msg.trim())),
            }
        })?;
        let addr = |key: &str, v: &str| {
            parse_endpoint(v).map_err(|e| Failure::address(format!("{name}: {key}: {e}")))
        };
        let usage = |key: &str, e: String| Failure::usage(format!("{name}: {key}: {e}"));
        let mut s = Settings::default();
        if let Some(v) = &file.asap {
            s.asap = Some(addr("asap", v)?);
        }
        if let Some(v) = &file.enrp {
            s.enrp = Some(addr("enrp", v)?);
        }
        if let Some(list) = &file.peer {
            let mut peers = Vec::with_capacity(list.len());
            for p in list {
                peers.push(
                    parse_peer(p).map_err(|e| Failure::address(format!("{name}: peer: {e}")))?,
                );
            }
            s.peers = Some(peers);
        }
        s.identifier = match &file.identifier {
            None => None,
            Some(IdentifierValue::Text(t)) => {
                Some(parse_identifier(t).map_err(|e| usage("identifier", e))?)
            }
            Some(IdentifierValue::Number(n)) => Some(
                u32::try_from(*n)
                    .map_err(|_| format!("{n} does not fit 32 bits"))
                    .and_then(|v| parse_identifier(&v.to_string()))
                    .map_err(|e| usage("identifier", e))?,
            ),
        };
        let count = |key: &str, v: Option<u64>, max: u64| -> Result<Option<u64>, Failure> {
            v.map(|v| in_range(key, v, max))
                .transpose()
                .map_err(|e| Failure::usage(format!("{name}: {e}")))
        };
        s.max_bad_pe_reports = count(
            "max-bad-pe-reports",
            file.max_bad_pe_reports,
            MAX_BAD_PE_REPORTS,
        )?
        .map(|v| v as u32);
        s.keepalive_interval = count("keepalive-interval", file.keepalive_interval, MAX_MS)?;
        s.keepalive_timeout = count("keepalive-timeout", file.keepalive_timeout, MAX_MS)?;
        s.max_hres_items =
            count("max-hres-items", file.max_hres_items, MAX_HRES_ITEMS)?.map(|v| v as u32);
        let group = |key: &str, e: String| Failure::address(format!("{name}: {key}: {e}"));
        if let Some(v) = &file.asap_announce {
            s.asap_announce = Some(parse_asap_announce(v).map_err(|e| group("asap-announce", e))?);
        }
        if let Some(v) = &file.enrp_announce {
            s.enrp_announce = Some(parse_enrp_announce(v).map_err(|e| group("enrp-announce", e))?);
        }
        if let Some(v) = &file.metrics {
            s.metrics = Some(addr("metrics", v)?);
        }
        if let Some(v) = &file.cspserver {
            s.csp_server = Some(
                parse_csp_server(v)
                    .map_err(|e| Failure::address(format!("{name}: cspserver: {e}")))?,
            );
        }
        s.csp_interval = count("cspinterval", file.cspinterval, MAX_MS)?;
        let rules = |key: &str, list: &Option<Vec<String>>| -> Result<_, Failure> {
            list.as_ref()
                .map(|l| {
                    l.iter()
                        .map(|r| parse_access_rule(r).map_err(|e| usage(key, e)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        let rate = |key: &str, v: &Option<String>| -> Result<_, Failure> {
            v.as_deref()
                .map(|r| parse_rate(r).map_err(|e| usage(key, e)))
                .transpose()
        };
        let limit = |key: &str, v: Option<u64>| -> Result<Option<usize>, Failure> {
            Ok(count(key, v, MAX_LIMIT)?.map(|v| v as usize))
        };
        s.security = Security {
            allow_register: rules("allow-register", &file.allow_register)?,
            allow_resolve: rules("allow-resolve", &file.allow_resolve)?,
            resolution_rate: rate("resolution-rate", &file.resolution_rate)?,
            unreachable_rate: rate("unreachable-rate", &file.unreachable_rate)?,
            verify_pe_addresses: file.verify_pe_addresses,
            discover_peers: file.discover_peers,
            max_pools: limit("max-pools", file.max_pools)?,
            max_pes: limit("max-pes", file.max_pes)?,
            max_pes_per_pool: limit("max-pes-per-pool", file.max_pes_per_pool)?,
            max_owned_pes: limit("max-owned-pes", file.max_owned_pes)?,
            max_pes_per_address: limit("max-pes-per-address", file.max_pes_per_address)?,
            max_peers: limit("max-peers", file.max_peers)?,
        };
        s.peer_timers = PeerTimers {
            heartbeat_cycle: count("peer-heartbeat-cycle", file.peer_heartbeat_cycle, MAX_MS)?,
            max_time_last_heard: count(
                "peer-max-time-last-heard",
                file.peer_max_time_last_heard,
                MAX_MS,
            )?,
            max_time_no_response: count(
                "peer-max-time-no-response",
                file.peer_max_time_no_response,
                MAX_MS,
            )?,
            takeover_expiry: count(
                "takeover-expiry-interval",
                file.takeover_expiry_interval,
                MAX_MS,
            )?,
        };
        if let Some(n) = &file.network {
            s.network = Network::from_file(&name.to_string(), n)?;
        }
        Ok(s)
    }
}

/// What the in-worker registrar needs besides the core's configuration.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The core's configuration.
    pub core: RegistrarConfig,
    /// SCTP port for ASAP.
    pub asap_port: u16,
    /// SCTP port for ENRP.
    pub enrp_port: u16,
    /// UDP encapsulation ports of the static peers, by ENRP endpoint.
    pub peer_udp_ports: HashMap<(IpAddr, u16), u16>,
    /// SERVER_ANNOUNCE group.
    pub asap_group: Option<SocketAddr>,
    /// ENRP PRESENCE group.
    pub enrp_group: Option<SocketAddr>,
}

/// The advertised addresses of a local endpoint: its own address, or the `--bind`
/// addresses when it is the wildcard.
fn advertised(addr: IpAddr, bind: &[IpAddr]) -> Vec<IpAddr> {
    if !addr.is_unspecified() {
        return vec![addr];
    }
    bind.iter()
        .copied()
        .filter(|a| !a.is_unspecified())
        .collect()
}

impl Settings {
    /// The core configuration these settings describe (`bind`: the `--bind` addresses).
    pub fn resolve(&self, bind: &[IpAddr]) -> Result<Resolved, Failure> {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let asap = self.asap.unwrap_or(SocketAddr::new(any, PORT_ASAP));
        let enrp = self.enrp.unwrap_or(SocketAddr::new(any, PORT_ENRP));
        if asap.port() == enrp.port() {
            return Err(Failure::usage(format!(
                "ASAP and ENRP need different SCTP ports (both are {})",
                asap.port()
            )));
        }
        let group = |a: Option<Announce>| match a {
            Some(Announce::Group(g)) => Some(g),
            _ => None,
        };
        let (asap_group, enrp_group) = (group(self.asap_announce), group(self.enrp_announce));
        let mut core = RegistrarConfig {
            server_id: RegistrarId(self.identifier.unwrap_or(0)),
            asap_transports: vec![TransportParameter::sctp(
                asap.port(),
                TransportUse::DATA_ONLY,
                advertised(asap.ip(), bind),
            )],
            enrp_transport: TransportParameter::sctp(
                enrp.port(),
                TransportUse::DATA_ONLY,
                advertised(enrp.ip(), bind),
            ),
            enrp_multicast: enrp_group.is_some(),
            ..RegistrarConfig::default()
        };
        let mut peer_udp_ports = HashMap::new();
        for p in self.peers.iter().flatten() {
            if p.endpoint.ip() == enrp.ip() && p.endpoint.port() == enrp.port() {
                return Err(Failure::usage(format!(
                    "--peer {} is this registrar's own ENRP endpoint",
                    p.endpoint
                )));
            }
            core.static_peers.push(TransportParameter::sctp(
                p.endpoint.port(),
                TransportUse::DATA_ONLY,
                vec![p.endpoint.ip()],
            ));
            if let Some(u) = p.udp_port {
                peer_udp_ports.insert((p.endpoint.ip(), p.endpoint.port()), u);
            }
        }
        if asap_group.is_none() {
            core.announce_interval = None;
        }
        if let Some(n) = self.max_bad_pe_reports {
            core.max_bad_pe_reports = n;
        }
        if let Some(ms) = self.keepalive_interval {
            core.keep_alive_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = self.keepalive_timeout {
            core.keep_alive_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_hres_items {
            core.max_handle_resolution_items = n as usize;
        }
        self.security.apply(&mut core)?;
        self.peer_timers.apply(&mut core);
        Ok(Resolved {
            core,
            asap_port: asap.port(),
            enrp_port: enrp.port(),
            peer_udp_ports,
            asap_group,
            enrp_group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_decimal_or_hex_and_never_zero() {
        assert_eq!(parse_identifier("17"), Ok(17));
        assert_eq!(parse_identifier("0x1f"), Ok(31));
        assert_eq!(parse_identifier("0XFFFFFFFF"), Ok(u32::MAX));
        assert!(parse_identifier("0").is_err());
        assert!(parse_identifier("0x100000000").is_err());
        assert!(parse_identifier("abc").is_err());
    }

    #[test]
    fn peers_take_an_optional_udp_port() {
        let p = parse_peer("127.0.0.1:9901/30000").expect("valid");
        assert_eq!(p.endpoint, "127.0.0.1:9901".parse().expect("addr"));
        assert_eq!(p.udp_port, Some(30000));
        let p = parse_peer("[::1]:9901").expect("valid");
        assert_eq!(p.udp_port, None);
        assert!(parse_peer("127.0.0.1:9901/0").is_err());
        assert!(parse_peer("0.0.0.0:9901").is_err());
        assert!(parse_peer("127.0.0.1").is_err());
    }

    #[test]
    fn announces_are_off_auto_or_a_multicast_group() {
        assert_eq!(parse_asap_announce("off"), Ok(Announce::Off));
        assert_eq!(
            parse_asap_announce("auto"),
            Ok(Announce::Group(ASAP_ANNOUNCE_GROUP))
        );
        assert_eq!(
            parse_enrp_announce("239.1.2.3:4000"),
            Ok(Announce::Group("239.1.2.3:4000".parse().expect("addr")))
        );
        assert!(parse_enrp_announce("127.0.0.1:9901").is_err());
        assert!(parse_enrp_announce("on").is_err());
        let s = Settings {
            asap_announce: Some(Announce::Group(ASAP_ANNOUNCE_GROUP)),
            enrp_announce: Some(Announce::Group(ENRP_ANNOUNCE_GROUP)),
            ..Settings::default()
        };
        let r = s.resolve(&[]).expect("valid");
        assert!(r.core.announce_interval.is_some());
        assert!(r.core.enrp_multicast);
        assert_eq!(r.enrp_group, Some(ENRP_ANNOUNCE_GROUP));
    }

    #[test]
    fn flags_override_the_file() {
        let file = Settings {
            identifier: Some(1),
            max_hres_items: Some(5),
            ..Settings::default()
        };
        let flags = Settings {
            identifier: Some(2),
            ..Settings::default()
        };
        let s = file.overridden_by(flags);
        assert_eq!(s.identifier, Some(2));
        assert_eq!(s.max_hres_items, Some(5));
    }

    #[test]
    fn security_controls_parse_and_reach_the_core() {
        let r = parse_access_rule("198.18.0.0/15=EchoPool,PingPongPool").expect("rule");
        assert!(r.prefix.contains("198.19.1.2".parse().expect("ip")));
        assert!(!r.prefix.contains("198.20.0.1".parse().expect("ip")));
        assert_eq!(r.pool_handles.len(), 2);
        let any = parse_access_rule("::1").expect("host rule");
        assert!(any.pool_handles.is_empty());
        assert!(any.prefix.contains("::1".parse().expect("ip")));
        assert!(!any.prefix.contains("::2".parse().expect("ip")));
        for bad in ["x/8", "10.0.0.0/33", "10.0.0.0/8=", "10.0.0.0/8=a,,b", ""] {
            assert!(parse_access_rule(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            parse_rate("100/20"),
            Ok(RateLimit {
                per_second: 100,
                burst: 20
            })
        );
        assert_eq!(parse_rate("5").map(|r| r.burst), Ok(5));
        for bad in ["0", "5/0", "x", "-1"] {
            assert!(parse_rate(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(parse_on_off("off"), Ok(false));
        assert!(parse_on_off("maybe").is_err());
        assert!(parse_limit("0").is_err());
        assert_eq!(parse_limit("20000"), Ok(20_000));

        let file = Settings {
            security: Security {
                max_pes_per_address: Some(10),
                max_pools: Some(7),
                ..Security::default()
            },
            ..Settings::default()
        };
        let flags = Settings {
            security: Security {
                max_pes_per_address: Some(20_000),
                allow_resolve: Some(vec![parse_access_rule("127.0.0.0/8").expect("rule")]),
                resolution_rate: Some(parse_rate("50/10").expect("rate")),
                verify_pe_addresses: Some(false),
                discover_peers: Some(false),
                ..Security::default()
            },
            ..Settings::default()
        };
        let r = file.overridden_by(flags).resolve(&[]).expect("valid");
        assert_eq!(r.core.max_pes_per_address, 20_000);
        assert_eq!(r.core.handlespace.max_pools, 7);
        assert_eq!(r.core.resolution_acl.rules.len(), 1);
        assert!(r.core.registration_acl.rules.is_empty());
        assert_eq!(r.core.resolution_rate.map(|r| r.burst), Some(10));
        assert!(r.core.unreachable_rate.is_none());
        assert!(!r.core.verify_pe_addresses);
        assert!(!r.core.discover_peers);
    }

    #[test]
    fn the_network_table_replaces_defaults_but_not_flags() {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            net: NetArgs,
        }
        let m = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(["rsp", "--udp-port", "4000"])
            .expect("flags");
        let mut net = Cli::from_arg_matches(&m).expect("flags").net;
        let given = |id: &str| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        let file = Network {
            udp_port: Some(5000),
            mtu: Some(1400),
            busy_poll: Some(true),
            bind: Some(vec!["127.0.0.1".parse().expect("ip")]),
            eal: Some("--no-huge".to_owned()),
            dpdk_prefix: Some(16),
            ..Network::default()
        };
        file.apply(&mut net, &given);
        #[cfg(feature = "dpdk")]
        {
            assert_eq!(net.eal, "--no-huge");
            assert_eq!(net.dpdk_prefix, 16);
        }
        assert_eq!(net.udp_port, 4000);
        assert_eq!(net.mtu, 1400);
        assert!(net.busy_poll);
        assert_eq!(net.bind.len(), 1);
        assert_eq!(net.workers, 1);
        assert_eq!(parse_backend("udp"), Ok(BackendArg::Udp));
        assert!(parse_backend("pigeon").is_err());
    }

    #[test]
    fn peer_timers_reach_the_core() {
        let s = Settings {
            peer_timers: PeerTimers {
                max_time_last_heard: Some(60_000),
                takeover_expiry: Some(9_000),
                ..PeerTimers::default()
            },
            ..Settings::default()
        };
        let r = s.resolve(&[]).expect("valid");
        assert_eq!(r.core.max_time_last_heard, Duration::from_secs(60));
        assert_eq!(r.core.takeover_expiry, Duration::from_secs(9));
        assert_eq!(
            r.core.presence_interval,
            RegistrarConfig::default().presence_interval
        );
    }

    #[test]
    fn resolve_fills_the_core_configuration() {
        let s = Settings {
            enrp: Some("127.0.0.1:9911".parse().expect("addr")),
            peers: Some(vec![parse_peer("127.0.0.1:9912/4000").expect("peer")]),
            keepalive_interval: Some(250),
            ..Settings::default()
        };
        let r = s.resolve(&[]).expect("valid");
        assert_eq!(r.asap_port, PORT_ASAP);
        assert_eq!(r.enrp_port, 9911);
        assert_eq!(r.core.static_peers.len(), 1);
        assert_eq!(r.core.keep_alive_interval, Duration::from_millis(250));
        assert_eq!(r.core.announce_interval, None);
        assert!(!r.core.enrp_multicast);
        assert_eq!(
            r.peer_udp_ports
                .get(&("127.0.0.1".parse().expect("ip"), 9912)),
            Some(&4000)
        );
        assert!(r.core.asap_transports[0].addresses.is_empty());
        assert_eq!(r.core.enrp_transport.addresses.len(), 1);
    }
}
