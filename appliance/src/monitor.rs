//! `rsp monitor`: a Component Status monitor, in the manner of RSPLIB's `cspmonitor`.
//!
//! Registrars (`rsp registrar --cspserver`), pool elements and pool users send Component
//! Status reports ([`ComponentStatusReport`], RSPLIB's format) over UDP to port 2960. The
//! monitor keeps the latest report of each component in a table bounded by
//! [`MAX_COMPONENTS`] (the component heard longest ago makes room; evictions are counted),
//! forgets a component after a final report or after [`silence_limit`] without one, and
//! prints the table every `--interval` ms: redrawn in place on a terminal, one block per
//! refresh otherwise.
//!
//! Bounded runs: `--count N` stops after N reports, `--duration S` after S seconds (with
//! `--count`, reaching the duration first is a time-out, exit status 5). SIGINT/SIGTERM
//! stop it with status 0 after a last table.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::signal::TerminationSignals;
use rserpool::services::wire::{CSP_PORT, ComponentStatusReport, component_group};

use crate::exit::{ExitStatus, Failure, Outcome};
use crate::sctp::{on_signals, parse_ip, parse_local_port};

/// Most components in the table.
pub const MAX_COMPONENTS: usize = 1024;
/// Largest datagram read (a report with many associations).
const MAX_DATAGRAM: usize = 65_536;

/// Arguments of `rsp monitor`.
#[derive(Debug, Args)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub struct MonitorArgs {
    /// UDP port to receive reports on.
    #[arg(long, value_name = "PORT", default_value_t = CSP_PORT, value_parser = parse_local_port)]
    port: u16,
    /// Local address to receive on (default: every address).
    #[arg(long, value_name = "ADDR", value_parser = parse_ip)]
    bind: Option<IpAddr>,
    /// Milliseconds between table refreshes.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    interval: u64,
    /// Stop after this many reports.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Print one line per report instead of the refreshing table.
    #[arg(long)]
    log: bool,
}

/// Seconds (fractions allowed) in (0, 1e6].
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1e6 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!(
            "'{s}' is not a number of seconds (0 < S <= 1000000)"
        )),
    }
}

/// How long a component may stay silent: three report intervals, at least 5 s.
pub fn silence_limit(report_interval_us: u32) -> Duration {
    Duration::from_micros(u64::from(report_interval_us).saturating_mul(3))
        .max(Duration::from_secs(5))
}

/// One component's latest report.
#[derive(Debug)]
struct Entry {
    report: ComponentStatusReport,
    from: SocketAddr,
    heard: Instant,
}

/// The table of components, bounded.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<u64, Entry>,
    /// Reports that did not decode.
    pub malformed: u64,
    /// Components evicted to make room.
    pub evicted: u64,
    /// Reports received (decoded).
    pub reports: u64,
}

impl Table {
    /// Takes one datagram.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<&ComponentStatusReport> {
        let Ok(report) = ComponentStatusReport::decode(bytes) else {
            self.malformed += 1;
            return None;
        };
        self.reports += 1;
        let id = report.sender_id;
        if report.final_report {
            self.entries.remove(&id);
            return None;
        }
        if !self.entries.contains_key(&id) && self.entries.len() >= MAX_COMPONENTS {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.heard)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
                self.evicted += 1;
            }
        }
        let e = Entry {
            report,
            from,
            heard: now,
        };
        let slot = self.entries.entry(id).insert_entry(e).into_mut();
        Some(&slot.report)
    }

    /// Forgets components silent for longer than their limit.
    pub fn expire(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| now.duration_since(e.heard) <= silence_limit(e.report.report_interval));
    }

    /// Components in the table.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The table as text, sorted by component kind and id.
    pub fn render(&self, now: Instant) -> String {
        let mut rows: Vec<&Entry> = self.entries.values().collect();
        rows.sort_by_key(|e| e.report.sender_id);
        let mut out = format!(
            "{:<4} {:<18} {:<22} {:>5} {:>6} {:>6}  {}\n",
            "KIND", "ID", "FROM", "LOAD", "ASSOCS", "AGE", "LOCATION / STATUS"
        );
        for e in rows {
            let r = &e.report;
            let load = r
                .workload_fraction()
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0));
            out.push_str(&format!(
                "{:<4} {:<18} {:<22} {:>5} {:>6} {:>5.1}s  {} / {}\n",
                kind(r.sender_id),
                format!("{:#x}", r.sender_id & 0x00ff_ffff_ffff_ffff),
                e.from.to_string(),
                load,
                r.associations.len(),
                now.duration_since(e.heard).as_secs_f64(),
                printable(&r.location),
                printable(&r.status),
            ));
        }
        out.push_str(&format!(
            "{} component(s), {} report(s), {} malformed, {} evicted\n",
            self.len(),
            self.reports,
            self.malformed,
            self.evicted
        ));
        out
    }
}

/// The component kind from the group in the upper bits of its id.
fn kind(id: u64) -> &'static str {
    match id >> 56 {
        component_group::REGISTRAR => "PR",
        component_group::POOL_ELEMENT => "PE",
        component_group::POOL_USER => "PU",
        _ => "?",
    }
}

/// A report text without control characters.
fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Runs `rsp monitor`.
pub fn run(args: MonitorArgs, signals: TerminationSignals) -> Outcome {
    let bind = args.bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let addr = SocketAddr::new(bind, args.port);
    let socket = open(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrNotAvailable {
            Failure::address(format!("cannot receive on {addr}: {e}"))
        } else {
            Failure::setup(format!("cannot receive on {addr}: {e}"))
        }
    })?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| Failure::setup(format!("socket: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let caught = on_signals(signals, move || s.store(true, Ordering::SeqCst))?;
    tracing::info!(
        "receiving Component Status reports on UDP {}",
        socket.local_addr().map_or(addr, |a| a)
    );
    let terminal = std::io::stdout().is_terminal() && !args.log;
    let start = Instant::now();
    let interval = Duration::from_millis(args.interval);
    let mut next_draw = start + interval;
    let mut table = Table::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut status = ExitStatus::Success;
    let mut stdout = std::io::stdout();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let now = Instant::now();
        if let Some(d) = args.duration
            && now.duration_since(start) >= d
        {
            if args.count.is_some_and(|c| table.reports < c) {
                status = ExitStatus::Timeout;
            }
            break;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Some(r) = table.handle(Instant::now(), from, &buf[..n])
                    && args.log
                {
                    let _ = writeln!(
                        stdout,
                        "{} {:#x} from {from}: {} / {} ({} association(s))",
                        kind(r.sender_id),
                        r.sender_id & 0x00ff_ffff_ffff_ffff,
                        printable(&r.location),
                        printable(&r.status),
                        r.associations.len()
                    );
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(Failure::setup(format!("receive failed: {e}"))),
        }
        let now = Instant::now();
        if now >= next_draw && !args.log {
            table.expire(now);
            draw(&mut stdout, &table, now, terminal);
            next_draw = now + interval;
        }
        if args.count.is_some_and(|c| table.reports >= c) {
            break;
        }
    }
    if !args.log {
        draw(&mut stdout, &table, Instant::now(), terminal);
    }
    if let Some(s) = caught.get() {
        tracing::info!("stopped by {s:?}");
    }
    Ok(status)
}

fn draw(out: &mut impl Write, table: &Table, now: Instant, terminal: bool) {
    let text = table.render(now);
    if terminal {
        // Home and clear: the table is redrawn in place.
        let _ = write!(out, "\x1b[H\x1b[2J{text}");
    } else {
        let _ = writeln!(out, "{text}");
    }
    let _ = out.flush();
}

/// A UDP socket on `addr`; the IPv6 wildcard also receives IPv4.
fn open(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool::services::wire::ComponentAssociation;

    fn report(id: u64, final_report: bool) -> Vec<u8> {
        let r = ComponentStatusReport {
            final_report,
            sender_id: component_group::compound(component_group::POOL_ELEMENT, id),
            sender_timestamp: 0,
            report_interval: 1_000_000,
            location: b"here".to_vec(),
            status: b"fine".to_vec(),
            workload: ComponentStatusReport::workload_from_fraction(0.5),
            associations: vec![ComponentAssociation {
                receiver_id: 1,
                duration: 0,
                flags: 0,
                protocol_id: 132,
                ppid: 11,
            }],
        };
        let mut b = vec![0; r.encoded_len()];
        r.encode(&mut b).expect("encodes");
        b
    }

    fn from() -> SocketAddr {
        "127.0.0.1:5000".parse().expect("addr")
    }

    #[test]
    fn the_table_keeps_the_latest_report_per_component_and_drops_final_ones() {
        let mut t = Table::default();
        let now = Instant::now();
        assert!(t.handle(now, from(), &report(1, false)).is_some());
        assert!(t.handle(now, from(), &report(1, false)).is_some());
        assert!(t.handle(now, from(), &report(2, false)).is_some());
        assert_eq!(t.len(), 2);
        let text = t.render(now);
        assert!(
            text.contains("PE") && text.contains("here / fine") && text.contains("50%"),
            "{text}"
        );
        t.handle(now, from(), &report(1, true));
        assert_eq!(t.len(), 1);
        assert_eq!(t.reports, 4);
    }

    #[test]
    fn garbage_is_counted_and_the_table_stays_bounded() {
        let mut t = Table::default();
        let now = Instant::now();
        assert!(t.handle(now, from(), b"\x01\x00\x00").is_none());
        assert_eq!(t.malformed, 1);
        for i in 0..(MAX_COMPONENTS as u64 + 10) {
            t.handle(now, from(), &report(i, false));
        }
        assert_eq!(t.len(), MAX_COMPONENTS);
        assert_eq!(t.evicted, 10);
    }

    #[test]
    fn silent_components_are_forgotten() {
        let mut t = Table::default();
        let then = Instant::now();
        t.handle(then, from(), &report(1, false));
        t.expire(then + Duration::from_secs(4));
        assert_eq!(t.len(), 1);
        t.expire(then + Duration::from_secs(6));
        assert_eq!(t.len(), 0);
    }
}
