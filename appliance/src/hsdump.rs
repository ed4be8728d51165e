//! `rsp hsdump`: prints the handlespace of a registrar, like RSPLIB's `hsdump`.
//!
//! Like RSPLIB's tool it claims to be a peer registrar: it opens an SCTP association to the
//! registrar's ENRP endpoint, announces itself with an ENRP_PRESENCE (flag R, RFC 5353 §2.1),
//! asks for the whole handle table with ENRP_HANDLE_TABLE_REQUEST (§2.2, §3.3) and asks again
//! while the response carries flag M (more to send, §2.3). The registrar then counts it as a
//! peer until the peer's PRESENCE times out; a registrar that only accepts configured peers
//! (`discover-peers` off) does not answer, which is reported as such.
//!
//! The output is a text listing (pools in handle order, their PEs with home registrar,
//! transports, policy and registration life) or, with `--json`, one JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::runtime::socket::{
    Association, Incoming, SocketConfig, SocketError, Sockets, abort_text, lost_text,
};
use dataplane::runtime::{IdleMode, LinkSpec, RuntimeConfig, random_seed};
use dataplane::signal::TerminationSignals;
use dataplane::udp::UdpConfig;
use rserpool::handlespace::{Handlespace, HandlespaceConfig};
use rserpool::wire::{
    EnrpBody, EnrpMessage, PPID_ENRP, PoolElement, PoolHandle, RegistrarId, ServerInformation,
    TransportParameter, TransportUse,
};
use sctp_stack::wire::Ppid;
use sctp_stack::{ConnectRequest, Event};
use serde_json::json;

use crate::exit::{ExitStatus, Failure, Outcome};
use crate::pool::local_address_towards;
use crate::registrar::config::parse_identifier;
use crate::sctp::{
    join, on_signals, parse_ip, parse_local_port, parse_port, runtime_failure, stopped_status,
};

/// The ENRP port (RFC 5353 §2: SCTP port 9901).
const DEFAULT_ENRP_PORT: u16 = 9901;
/// Most PEs accepted in one dump (a bound against a hostile or broken registrar).
const MAX_PES: usize = 1_000_000;
/// Most HANDLE_TABLE_REQUESTs sent in one dump.
const MAX_REQUESTS: u32 = 100_000;

/// Arguments of `rsp hsdump`.
#[derive(Debug, Args)]
pub struct HsdumpArgs {
    /// The registrar's ENRP endpoint: `ADDR[:PORT][/UDPPORT]` (IPv6: `[ADDR]:PORT`); port
    /// 9901 when omitted; UDPPORT is its UDP encapsulation port (else --remote-udp-port).
    #[arg(value_name = "ADDR", value_parser = parse_target)]
    target: Target,
    /// The registrar's UDP encapsulation port, when not given in ADDR.
    #[arg(long, value_name = "PORT", default_value_t = 9899, value_parser = parse_port)]
    remote_udp_port: u16,
    /// The registrar identifier this tool claims (decimal or 0x hex; default: random).
    #[arg(long, value_name = "ID", value_parser = parse_identifier)]
    identifier: Option<u32>,
    /// Ask only for the PEs the registrar is home registrar of (flag W).
    #[arg(long)]
    own_only: bool,
    /// Print one JSON document instead of the text listing.
    #[arg(long)]
    json: bool,
    /// Seconds allowed for the whole dump.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Use raw IP protocol 132 instead of UDP encapsulation (needs CAP_NET_RAW).
    #[arg(long)]
    raw: bool,
    /// Local address to use.
    #[arg(long, value_name = "ADDR", value_parser = parse_ip)]
    bind: Option<IpAddr>,
    /// Local UDP port for UDP encapsulation (0 picks a free one).
    #[arg(long, value_name = "PORT", default_value_t = 0, value_parser = parse_local_port)]
    udp_port: u16,
    /// Write every packet sent and received into this pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
}

/// Where the registrar is.
#[derive(Debug, Clone, Copy)]
struct Target {
    endpoint: SocketAddr,
    udp_port: Option<u16>,
}

/// `ADDR[:PORT][/UDPPORT]`.
fn parse_target(s: &str) -> Result<Target, String> {
    let (ep, udp_port) = match s.rsplit_once('/') {
        Some((ep, udp)) => match udp.parse::<u16>() {
            Ok(p) if p != 0 => (ep, Some(p)),
            _ => return Err(format!("'{s}': '{udp}' is not a UDP port (1-65535)")),
        },
        None => (s, None),
    };
    let endpoint = if let Ok(a) = ep.parse::<SocketAddr>() {
        a
    } else if let Ok(ip) = ep.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        SocketAddr::new(ip, DEFAULT_ENRP_PORT)
    } else {
        return Err(format!(
            "'{s}' is not ADDR[:PORT][/UDPPORT] (IPv6: [ADDR]:PORT)"
        ));
    };
    if endpoint.port() == 0 {
        return Err(format!("'{s}': port 0 is not usable"));
    }
    if endpoint.ip().is_unspecified() || endpoint.ip().is_multicast() {
        return Err(format!("'{s}': a registrar needs a unicast address"));
    }
    Ok(Target { endpoint, udp_port })
}

/// What the registrar told.
#[derive(Debug, Default)]
struct Dump {
    /// The registrar's identity, from its PRESENCE.
    registrar: Option<ServerInformation>,
    /// Pools with their PEs (by identifier, so a PE repeated across pieces counts once).
    pools: BTreeMap<PoolHandle, BTreeMap<u32, PoolElement>>,
    pes: usize,
    /// HANDLE_TABLE_RESPONSEs received.
    pieces: u32,
}

/// Runs `rsp hsdump`.
pub fn run(args: HsdumpArgs, signals: TerminationSignals) -> Outcome {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Failure::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let remote = args.target.endpoint;
    if let Some(b) = args.bind
        && !b.is_unspecified()
        && b.is_ipv4() != remote.is_ipv4()
    {
        return Err(Failure::address(
            "the --bind address and the registrar are of different address families",
        ));
    }
    let mut config = RuntimeConfig::default();
    config.workers = 1;
    config.idle = IdleMode::Block;
    config.endpoint.rng_seed =
        random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
    config.endpoint.association.nodelay = true;
    config.capture.clone_from(&args.pcap);
    config.thread_name = "rsp-hsdump".to_owned();
    let links = if args.raw {
        let mut c = dataplane::raw::RawConfig::default();
        match args.bind {
            Some(IpAddr::V4(a)) if !a.is_unspecified() => {
                c.bind4 = Some(a);
                c.ipv6 = false;
            }
            Some(IpAddr::V6(a)) if !a.is_unspecified() => {
                c.bind6 = Some(a);
                c.ipv4 = false;
            }
            _ => {}
        }
        LinkSpec::Raw(c)
    } else {
        LinkSpec::Udp(UdpConfig {
            bind: args.bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            port: args.udp_port,
            default_remote_port: args.target.udp_port.unwrap_or(args.remote_udp_port),
            ..UdpConfig::default()
        })
    };
    let (rt, sockets) =
        Sockets::start(config, links, SocketConfig::default()).map_err(runtime_failure)?;
    let stopper = rt.remote(0);
    let caught = on_signals(signals, move || {
        if let Some(r) = &stopper {
            r.stop_runtime();
        }
    })?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let mut req = ConnectRequest::new(remote.ip(), remote.port());
    if !args.raw {
        req = req.with_encaps_port(args.target.udp_port.unwrap_or(args.remote_udp_port));
    }
    let own_id = match args.identifier {
        Some(id) => id,
        None => {
            let seed = random_seed().map_err(|e| Failure::setup(format!("no randomness: {e}")))?;
            // Never 0 (reserved).
            u32::from_be_bytes([seed[0], seed[1], seed[2], seed[3]]).max(1)
        }
    };
    let outcome = match sockets.connect(
        req,
        Some(deadline.saturating_duration_since(Instant::now())),
    ) {
        Ok(a) => {
            let local = local_address(args.bind, remote);
            let result = dump(&a, local, RegistrarId(own_id), args.own_only, deadline);
            let _ = a.shutdown();
            // Bounded wait for the graceful end (the dump is complete either way).
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                match a.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            result
        }
        Err(SocketError::Timeout) => Err(Failure::timeout(format!(
            "no association with {remote} within the time limit"
        ))),
        Err(e) => Err(Failure::setup(format!("cannot connect to {remote}: {e}"))),
    };
    rt.stop();
    join(rt)?;
    if caught.get().is_some() {
        return Ok(stopped_status(&caught));
    }
    let d = outcome?;
    let out = if args.json {
        render_json(&d, remote)
    } else {
        render_text(&d, remote)
    };
    print!("{out}");
    Ok(ExitStatus::Success)
}

fn send(a: &Association, msg: &EnrpMessage) -> Result<(), Failure> {
    let mut bytes = vec![0; msg.encoded_len()];
    let n = msg
        .encode(&mut bytes)
        .map_err(|e| Failure::failed(format!("cannot encode {:?}: {e}", msg.message_type())))?;
    bytes.truncate(n);
    a.send_data(0, Ppid(PPID_ENRP), bytes)
        .map_err(|e| Failure::failed(format!("cannot send: {e}")))
}

/// The address we reach `remote` from, for the Server Information parameter of our PRESENCE:
/// `--bind`, else what the kernel's routing picks (a UDP socket's connect sends nothing).
fn local_address(bind: Option<IpAddr>, remote: SocketAddr) -> IpAddr {
    bind.filter(|b| !b.is_unspecified())
        .or_else(|| local_address_towards(remote))
        .unwrap_or(remote.ip())
}

/// PRESENCE, then HANDLE_TABLE_REQUESTs until a response without flag M.
fn dump(
    a: &Association,
    local_address: IpAddr,
    own: RegistrarId,
    own_only: bool,
    deadline: Instant,
) -> Result<Dump, Failure> {
    let info = a.info();
    let local = vec![local_address];
    let presence = EnrpMessage {
        sender: own,
        receiver: RegistrarId::UNDEFINED,
        body: EnrpBody::Presence {
            reply_required: true,
            // We own no PEs: the ownership checksum of nothing (RFC 5353 §2.1), so the
            // registrar's audit finds nothing to re-request.
            checksum: Handlespace::new(HandlespaceConfig::default()).ownership_checksum(own),
            server_information: ServerInformation {
                server_id: own,
                transport: TransportParameter::sctp(
                    info.local_port,
                    TransportUse::DATA_ONLY,
                    local,
                ),
            },
        },
    };
    send(a, &presence)?;
    let request = |receiver: RegistrarId| EnrpMessage {
        sender: own,
        receiver,
        body: EnrpBody::HandleTableRequest {
            own_children_only: own_only,
        },
    };
    send(a, &request(RegistrarId::UNDEFINED))?;
    let mut requests = 1u32;
    let mut d = Dump::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::timeout(
                if d.registrar.is_none() && d.pieces == 0 {
                    "the registrar did not answer (is it a registrar, and does it accept unconfigured peers?)"
                    .to_owned()
                } else {
                    format!(
                        "the handle table did not arrive in time ({} pieces, {} PEs so far)",
                        d.pieces, d.pes
                    )
                },
            ));
        }
        let m = match a.recv_timeout(left) {
            Ok(Incoming::Message(m)) => m,
            Ok(Incoming::Event(Event::Aborted(r))) => {
                return Err(Failure::failed(format!(
                    "the registrar aborted the association {}",
                    abort_text(&r)
                )));
            }
            Ok(Incoming::Event(Event::CommunicationLost(r))) => {
                return Err(Failure::failed(format!(
                    "association lost: {}",
                    lost_text(r)
                )));
            }
            Ok(_) | Err(SocketError::Timeout) => continue,
            Err(e) => return Err(Failure::failed(format!("association ended: {e}"))),
        };
        if m.ppid.get() != PPID_ENRP {
            tracing::debug!("ignoring a message with PPID {}", m.ppid.get());
            continue;
        }
        let msg = match EnrpMessage::decode(&m.data) {
            Ok(d) => d.message,
            Err(e) => {
                tracing::warn!("ignoring a malformed ENRP message: {e}");
                continue;
            }
        };
        match msg.body {
            EnrpBody::Presence {
                server_information, ..
            } => {
                tracing::info!(
                    "registrar {} answered ({} PEs owned, checksum in PRESENCE)",
                    server_information.server_id,
                    d.pes
                );
                d.registrar = Some(server_information);
            }
            EnrpBody::HandleTableResponse {
                reject,
                more_to_send,
                pools,
            } => {
                if reject {
                    return Err(Failure::failed(
                        "the registrar rejected the handle table request (it is still synchronising with its peers; try again)",
                    ));
                }
                d.pieces += 1;
                for (handle, pes) in pools {
                    let entry = d.pools.entry(handle).or_default();
                    for pe in pes {
                        if entry.insert(pe.identifier.0, pe).is_none() {
                            d.pes += 1;
                        }
                    }
                }
                if d.pes > MAX_PES {
                    return Err(Failure::failed(format!(
                        "the handle table exceeds {MAX_PES} PEs; stopped"
                    )));
                }
                if !more_to_send {
                    return Ok(d);
                }
                if requests >= MAX_REQUESTS {
                    return Err(Failure::failed(format!(
                        "the registrar still had more after {MAX_REQUESTS} requests; stopped"
                    )));
                }
                // RFC 5353 §3.3: with flag M the requester asks again for the rest.
                let receiver = d
                    .registrar
                    .as_ref()
                    .map_or(RegistrarId::UNDEFINED, |r| r.server_id);
                send(a, &request(receiver))?;
                requests += 1;
            }
            EnrpBody::Error { error } => {
                return Err(Failure::failed(format!(
                    "the registrar answered with ENRP_ERROR: {error:?}"
                )));
            }
            // Handle updates, list requests and the like are meant for a real peer.
            other => tracing::debug!("ignoring {other:?}"),
        }
    }
}

/// `127.0.0.1:9901` / `[::1]:9901`, several addresses comma-separated.
fn transport_text(t: &TransportParameter) -> String {
    let addrs: Vec<String> = t.addresses.iter().map(ToString::to_string).collect();
    let host = match addrs.len() {
        0 => "*".to_owned(),
        1 if t.addresses[0].is_ipv6() => format!("[{}]", addrs[0]),
        1 => addrs[0].clone(),
        _ => format!("{{{}}}", addrs.join(",")),
    };
    format!("{:?} {host}:{}", t.protocol, t.port)
}

fn policy_text(pe: &PoolElement) -> String {
    let p = &pe.policy;
    let name = p
        .policy_type
        .name()
        .map_or_else(|| format!("{:#010x}", p.policy_type.0), ToOwned::to_owned);
    let load = f64::from(p.load) * 100.0 / f64::from(u32::MAX);
    format!("{name} weight={} load={load:.1}%", p.weight)
}

fn render_text(d: &Dump, target: SocketAddr) -> String {
    let mut s = String::new();
    let who = d
        .registrar
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |r| r.server_id.to_string());
    let _ = writeln!(
        s,
        "Handlespace of registrar {who} at {target}: {} pools, {} PEs",
        d.pools.len(),
        d.pes
    );
    for (handle, pes) in &d.pools {
        let _ = writeln!(s, "  pool {handle} ({} PEs)", pes.len());
        for pe in pes.values() {
            let _ = writeln!(
                s,
                "    {}  home {}  life {} ms  {}  user {}{}",
                pe.identifier,
                pe.home_registrar,
                pe.registration_life,
                policy_text(pe),
                transport_text(&pe.user_transport),
                pe.asap_transport
                    .as_ref()
                    .map_or_else(String::new, |t| format!("  asap {}", transport_text(t))),
            );
        }
    }
    s
}

/// A printable pool handle as itself, any other as `0x` and hex digits.
fn handle_json(h: &PoolHandle) -> String {
    let b = h.as_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        String::from_utf8_lossy(b).into_owned()
    } else {
        h.to_string()
    }
}

fn render_json(d: &Dump, target: SocketAddr) -> String {
    let transport = |t: &TransportParameter| {
        json!({
            "protocol": format!("{:?}", t.protocol),
            "port": t.port,
            "addresses": t.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    };
    let pools: Vec<_> = d
        .pools
        .iter()
        .map(|(handle, pes)| {
            json!({
                "pool_handle": handle_json(handle),
                "pool_elements": pes.values().map(|pe| json!({
                    "identifier": pe.identifier.0,
                    "home_registrar": pe.home_registrar.0,
                    "registration_life_ms": pe.registration_life,
                    "policy": pe.policy.policy_type.name().unwrap_or("unknown"),
                    "policy_type": pe.policy.policy_type.0,
                    "weight": pe.policy.weight,
                    "load": pe.policy.load,
                    "user_transport": transport(&pe.user_transport),
                    "asap_transport": pe.asap_transport.as_ref().map(transport),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "target": target.to_string(),
        "registrar": d.registrar.as_ref().map(|r| r.server_id.0),
        "pools": pools,
        "pool_elements": d.pes,
        "responses": d.pieces,
    });
    format!("{doc:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_an_optional_port_and_udp_port() {
        let t = parse_target("127.0.0.1").expect("address only");
        assert_eq!(t.endpoint, "127.0.0.1:9901".parse().expect("addr"));
        assert_eq!(t.udp_port, None);
        let t = parse_target("127.0.0.1:9911/40000").expect("full");
        assert_eq!(t.endpoint.port(), 9911);
        assert_eq!(t.udp_port, Some(40000));
        let t = parse_target("[::1]:9902").expect("v6");
        assert_eq!(t.endpoint, "[::1]:9902".parse().expect("addr"));
        let t = parse_target("::1").expect("bare v6");
        assert_eq!(t.endpoint.port(), 9901);
        for bad in [
            "",
            "host",
            "127.0.0.1:0",
            "127.0.0.1/0",
            "0.0.0.0",
            "239.0.0.51",
        ] {
            assert!(parse_target(bad).is_err(), "{bad} accepted");
        }
    }
}
