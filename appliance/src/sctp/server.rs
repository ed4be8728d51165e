//! `rsp sctp server`: echo, discard, daytime and chargen over SCTP, as in-worker
//! applications.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args};
use dataplane::runtime::socket::{abort_text, lost_text};
use dataplane::runtime::{App, Context, Runtime};
use dataplane::signal::TerminationSignals;
use sctp_stack::time::Timestamp;
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationId, Event, Message, SendError, SendOptions};
use serde::Serialize;

use super::{NetArgs, join, on_signals, parse_port, rate, runtime_failure, stopped_status};
use crate::exit::{ExitStatus, Failure, Outcome};

/// Arguments of `rsp sctp server`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("service").required(true).args(["echo", "discard", "daytime", "chargen"])))]
pub struct ServerArgs {
    /// Send every message back on its stream with its PPID and ordering.
    #[arg(long)]
    echo: bool,
    /// Read and count every message.
    #[arg(long)]
    discard: bool,
    /// Send the current time (UTC, ctime format, PPID 40) and shut down.
    #[arg(long)]
    daytime: bool,
    /// Send RFC 864 character lines as fast as the peer takes them, until it shuts down.
    #[arg(long)]
    chargen: bool,
    /// SCTP port to listen on (default: 7 echo, 9 discard, 13 daytime, 19 chargen).
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    port: Option<u16>,
    /// Exit after the first association has ended (exit status 1 if it was aborted or lost).
    #[arg(long)]
    once: bool,
    /// Print one JSON object per association on standard output when it ends.
    #[arg(long)]
    json: bool,
    /// Discard: take messages in pieces once this many bytes of one are reassembled
    /// (partial delivery, RFC 6458 SCTP_PARTIAL_DELIVERY_POINT), so messages larger than
    /// the receive window (1 MiB) are received; at most half the receive window. A message
    /// counts once, with its last piece.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=524_288))]
    partial_delivery_point: Option<u32>,
    #[command(flatten)]
    net: NetArgs,
}

/// The service a server provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// RFC 862 over SCTP.
    Echo,
    /// RFC 863 over SCTP.
    Discard,
    /// RFC 867 over SCTP.
    Daytime,
    /// RFC 864 over SCTP.
    Chargen,
}

impl Service {
    fn default_port(self) -> u16 {
        match self {
            Service::Echo => 7,
            Service::Discard => 9,
            Service::Daytime => 13,
            Service::Chargen => 19,
        }
    }
}

/// The PPID of daytime messages (as usrsctp's daytime_server sends).
const DAYTIME_PPID: u32 = 40;
/// Characters per chargen line (RFC 864), plus CR LF.
const CHARGEN_LINE: usize = 72;

/// The report of one association, printed when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct AssociationReport {
    /// The service.
    pub service: Service,
    /// The peer's primary address and port.
    pub peer: String,
    /// Bytes of user data received.
    pub bytes_received: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Bytes of user data sent.
    pub bytes_sent: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Seconds from establishment to the end.
    pub duration_s: f64,
    /// How it ended: "shutdown", "aborted: ...", "lost: ...".
    pub end: String,
    /// Whether it ended gracefully.
    pub graceful: bool,
}

#[derive(Debug)]
struct Assoc {
    peer: String,
    start: Timestamp,
    rx_bytes: u64,
    rx_msgs: u64,
    tx_bytes: u64,
    tx_msgs: u64,
    /// Echo: a received message waiting for send-buffer space.
    echo_backlog: Option<Message>,
    chargen_pos: usize,
    sending_done: bool,
    end: Option<String>,
}

struct ServerApp {
    service: Service,
    port: u16,
    once: bool,
    json: bool,
    assocs: HashMap<AssociationId, Assoc>,
    reports: mpsc::Sender<AssociationReport>,
}

/// One chargen line: 72 characters of the printable ASCII ring starting at `pos`, CR LF.
fn chargen_line(pos: usize) -> Vec<u8> {
    let mut line: Vec<u8> = (0..CHARGEN_LINE)
        .map(|i| b' ' + ((pos + i) % 95) as u8)
        .collect();
    line.extend_from_slice(b"\r\n");
    line
}

/// `ctime(3)` format in UTC: "Thu Nov 24 18:22:48 1986\n".
fn ctime_utc(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}\n",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        year
    )
}

impl ServerApp {
    fn pump_echo(a: &mut Assoc, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut h) = cx.association(id) else {
            return;
        };
        loop {
            if let Some(m) = &a.echo_backlog {
                let opts = if m.unordered {
                    SendOptions::unordered()
                } else {
                    SendOptions::default()
                };
                match h.send(m.stream, m.ppid, &m.data[..], opts) {
                    Ok(()) => {
                        a.tx_bytes += m.data.len() as u64;
                        a.tx_msgs += 1;
                        a.echo_backlog = None;
                    }
                    Err(SendError::WouldBlock) => return,
                    Err(e) => {
                        tracing::debug!("echo of a message refused: {e}");
                        a.echo_backlog = None;
                    }
                }
            }
            // Read on only when the previous message is out: the stack's receive window is
            // the buffer, and it pushes back on the peer.
            match h.recv() {
                Some(m) => {
                    a.rx_bytes += m.data.len() as u64;
                    a.rx_msgs += 1;
                    a.echo_backlog = Some(m);
                }
                None => return,
            }
        }
    }

    fn drain(a: &mut Assoc, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut h) = cx.association(id) else {
            return;
        };
        while let Some(m) = h.recv() {
            a.rx_bytes += m.data.len() as u64;
            // With partial delivery a message counts once, with its last piece.
            if m.piece.is_none_or(|p| p.last) {
                a.rx_msgs += 1;
            }
        }
    }

    fn pump_chargen(a: &mut Assoc, cx: &mut Context<'_>, id: AssociationId) {
        if a.sending_done {
            return;
        }
        let Some(mut h) = cx.association(id) else {
            return;
        };
        loop {
            let line = chargen_line(a.chargen_pos);
            match h.send(0, Ppid(0), line, SendOptions::default()) {
                Ok(()) => {
                    a.tx_bytes += (CHARGEN_LINE + 2) as u64;
                    a.tx_msgs += 1;
                    a.chargen_pos = (a.chargen_pos + 1) % 95;
                }
                Err(SendError::WouldBlock) => return,
                Err(_) => {
                    a.sending_done = true;
                    return;
                }
            }
        }
    }

    fn connected(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let peer = cx
            .association(id)
            .and_then(|a| a.status())
            .map(|s| {
                if s.primary.is_ipv6() {
                    format!("[{}]:{}", s.primary, s.peer_port)
                } else {
                    format!("{}:{}", s.primary, s.peer_port)
                }
            })
            .unwrap_or_default();
        tracing::info!(%peer, "association established");
        let mut a = Assoc {
            peer,
            start: cx.now(),
            rx_bytes: 0,
            rx_msgs: 0,
            tx_bytes: 0,
            tx_msgs: 0,
            echo_backlog: None,
            chargen_pos: 0,
            sending_done: false,
            end: None,
        };
        match self.service {
            Service::Daytime => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let text = ctime_utc(now);
                if let Some(mut h) = cx.association(id) {
                    if h.send(
                        0,
                        Ppid(DAYTIME_PPID),
                        text.as_bytes(),
                        SendOptions::default(),
                    )
                    .is_ok()
                    {
                        a.tx_bytes += text.len() as u64;
                        a.tx_msgs += 1;
                    }
                    h.shutdown();
                }
            }
            Service::Chargen => Self::pump_chargen(&mut a, cx, id),
            Service::Echo => Self::pump_echo(&mut a, cx, id),
            Service::Discard => Self::drain(&mut a, cx, id),
        }
        self.assocs.insert(id, a);
    }

    fn closed(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let Some(a) = self.assocs.remove(&id) else {
            return;
        };
        let duration = cx.now().saturating_duration_since(a.start).as_secs_f64();
        let graceful = a.end.is_none();
        let report = AssociationReport {
            service: self.service,
            peer: a.peer,
            bytes_received: a.rx_bytes,
            messages_received: a.rx_msgs,
            bytes_sent: a.tx_bytes,
            messages_sent: a.tx_msgs,
            duration_s: duration,
            end: a.end.unwrap_or_else(|| "shutdown".to_owned()),
            graceful,
        };
        tracing::info!(
            peer = %report.peer,
            "association ended ({}): received {} bytes in {} messages, sent {} bytes in {} messages, {:.3} s, {}",
            report.end,
            report.bytes_received,
            report.messages_received,
            report.bytes_sent,
            report.messages_sent,
            report.duration_s,
            rate(report.bytes_received.max(report.bytes_sent), duration),
        );
        if self.json {
            if let Ok(line) = serde_json::to_string(&report) {
                println!("{line}");
            }
        }
        let _ = self.reports.send(report);
        if self.once {
            cx.stop_runtime();
        }
    }
}

impl App for ServerApp {
    fn start(&mut self, cx: &mut Context<'_>) {
        if let Err(e) = cx.listen(self.port) {
            tracing::error!("cannot listen on port {}: {e}", self.port);
            cx.stop_runtime();
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => self.connected(cx, id),
            Event::DataReadable => {
                if let Some(a) = self.assocs.get_mut(&id) {
                    match self.service {
                        Service::Echo => Self::pump_echo(a, cx, id),
                        _ => Self::drain(a, cx, id),
                    }
                }
            }
            Event::SendSpace => {
                if let Some(a) = self.assocs.get_mut(&id) {
                    match self.service {
                        Service::Echo => Self::pump_echo(a, cx, id),
                        Service::Chargen => Self::pump_chargen(a, cx, id),
                        _ => {}
                    }
                }
            }
            Event::ShutdownReceived => {
                if let Some(a) = self.assocs.get_mut(&id) {
                    a.sending_done = true;
                    // Whatever arrived before the SHUTDOWN is still read and counted.
                    if self.service != Service::Echo {
                        Self::drain(a, cx, id);
                    }
                }
            }
            Event::Aborted(r) => {
                if let Some(a) = self.assocs.get_mut(&id) {
                    a.end = Some(format!("aborted {}", abort_text(&r)));
                }
            }
            Event::CommunicationLost(r) => {
                if let Some(a) = self.assocs.get_mut(&id) {
                    a.end = Some(format!("lost: {}", lost_text(r)));
                }
            }
            Event::Restarted => tracing::info!("the peer restarted the association"),
            Event::PeerError(c) => tracing::info!("the peer reported an error: {:?}", c.code),
            Event::Closed => self.closed(cx, id),
            _ => {}
        }
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        for id in self.assocs.keys() {
            if let Some(mut a) = cx.association(*id) {
                a.abort(b"server stopped");
            }
        }
    }
}

/// Runs `rsp sctp server`.
pub fn run(args: ServerArgs, signals: TerminationSignals) -> Outcome {
    let service = if args.echo {
        Service::Echo
    } else if args.discard {
        Service::Discard
    } else if args.daytime {
        Service::Daytime
    } else {
        Service::Chargen
    };
    let port = args.port.unwrap_or(service.default_port());
    if args.partial_delivery_point.is_some() && service != Service::Discard {
        return Err(Failure::usage(
            "--partial-delivery-point is for --discard (the other services answer whole messages)",
        ));
    }
    let mut config = args.net.runtime_config("rsp-server")?;
    if let Some(point) = args.partial_delivery_point {
        config.endpoint.association.partial_delivery_point = Some(point as usize);
    }
    let links = args.net.link_spec(0)?;
    let (tx, rx) = mpsc::channel();
    let (once, json) = (args.once, args.json);
    let tx = std::sync::Mutex::new(tx);
    let rt = Runtime::start(config, links, move |_| ServerApp {
        service,
        port,
        once,
        json,
        assocs: HashMap::new(),
        reports: tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    })
    .map_err(runtime_failure)?;
    if let Some(f) = rt.fallback() {
        tracing::info!("{f}");
    }
    tracing::info!(
        "{service:?} server on SCTP port {port}, {} backend{}",
        rt.backend(),
        rt.local_udp_port()
            .map(|p| format!(", UDP port {p}"))
            .unwrap_or_default()
    );
    let remote = rt.remote(0);
    let caught = on_signals(signals, move || {
        if let Some(r) = &remote {
            r.stop_runtime();
        }
    })?;
    join(rt)?;
    let reports: Vec<AssociationReport> = rx.try_iter().collect();
    if caught.get().is_some() {
        return Ok(if once {
            stopped_status(&caught)
        } else {
            // A server stopped by a signal has done its job.
            ExitStatus::Success
        });
    }
    if once && reports.first().is_some_and(|r| !r.graceful) {
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_formats_known_dates() {
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970\n");
        assert_eq!(ctime_utc(533_247_768), "Mon Nov 24 20:22:48 1986\n");
        assert_eq!(ctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000\n");
        assert_eq!(ctime_utc(4_102_444_799), "Thu Dec 31 23:59:59 2099\n");
    }

    #[test]
    fn chargen_lines_rotate_through_the_printable_characters() {
        let first = chargen_line(0);
        assert_eq!(first.len(), 74);
        assert!(first.starts_with(b" !\"#$%&"));
        assert!(first.ends_with(b"\r\n"));
        assert_eq!(chargen_line(1)[0], b'!');
        assert_eq!(chargen_line(94)[0], b'~');
        assert_eq!(chargen_line(94)[1], b' ');
    }
}
