//! `rsp sctp perf`: throughput measurement in the manner of usrsctp's tsctp, as in-worker
//! applications (no copies between threads).
//!
//! - `perf server` accepts associations and counts what arrives; each association's summary
//!   is printed when it ends (tsctp's server line, or JSON).
//! - `perf client` sends messages of `--length` bytes until `--bytes`, `--messages` or
//!   `--duration` is reached, then shuts down gracefully: the time runs from the handshake to
//!   SHUTDOWN COMPLETE, i.e. until the peer acknowledged every byte.
//! - `--backend memory` runs a perf server and the client in one process over the in-memory
//!   fabric (real time): the stack without an operating system in the way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use dataplane::AnyLink;
use dataplane::memory::{FabricClock, FabricConfig, MemoryFabric};
use dataplane::runtime::socket::{abort_text, lost_text};
use dataplane::runtime::{App, Context, LinkSpec, Runtime};
use dataplane::signal::TerminationSignals;
use sctp_stack::time::Timestamp;
use sctp_stack::wire::Ppid;
use sctp_stack::{
    AssociationId, ConnectRequest, Event, PrPolicy, ReconfOutcome, SendError, SendOptions,
    StreamDirection,
};
use serde::Serialize;

use super::{
    AsconfArgs, BackendArg, NetArgs, join, on_signals, parse_local_port, parse_port, rate,
    resolve_hosts, runtime_failure, single_remote, stopped_status,
};
use crate::exit::{ExitStatus, Failure, Outcome};

/// The default port of tsctp.
const DEFAULT_PORT: u16 = 5001;

/// Arguments of `rsp sctp perf`.
#[derive(Debug, Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    mode: PerfMode,
}

#[derive(Debug, Subcommand)]
enum PerfMode {
    /// Accept associations and measure what they deliver.
    Server(PerfServerArgs),
    /// Send to a perf (or tsctp) server and measure until everything is acknowledged.
    Client(Box<PerfClientArgs>),
}

/// Arguments of `rsp sctp perf server`.
#[derive(Debug, Args)]
pub struct PerfServerArgs {
    /// SCTP port to listen on.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT, value_parser = parse_port)]
    port: u16,
    /// Exit after the first association has ended.
    #[arg(long)]
    once: bool,
    /// Print one JSON object per association on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// Arguments of `rsp sctp perf client`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("amount").args(["bytes", "messages", "duration"])))]
pub struct PerfClientArgs {
    /// The server (not used with --backend memory).
    #[arg(value_name = "HOST")]
    host: Option<String>,
    /// The server's SCTP port.
    #[arg(value_name = "PORT", value_parser = parse_port)]
    port: Option<u16>,
    /// Bytes per message.
    #[arg(short, long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=262_144))]
    length: u32,
    /// Send this many bytes (the last message may be shorter).
    #[arg(long, value_name = "N")]
    bytes: Option<u64>,
    /// Send this many messages (default 1024, as tsctp).
    #[arg(short = 'n', long, value_name = "N")]
    messages: Option<u64>,
    /// Send for this many seconds.
    #[arg(short = 'T', long, value_name = "SECS")]
    duration: Option<f64>,
    /// Send unordered messages.
    #[arg(short, long)]
    unordered: bool,
    /// Partial reliability (RFC 3758, RFC 7496) for every message: `ttl` abandons a message not
    /// acknowledged within --pr-value milliseconds, `rtx` after --pr-value retransmissions,
    /// `prio` gives it priority --pr-value (0 highest) for eviction from a full send buffer.
    /// Used when the peer supports PR-SCTP; otherwise messages stay reliable.
    #[arg(long, value_enum, requires = "pr_value")]
    pr_policy: Option<PrPolicyArg>,
    /// The value of --pr-policy.
    #[arg(long, value_name = "N", requires = "pr_policy")]
    pr_value: Option<u32>,
    /// The peer's UDP encapsulation port.
    #[arg(long, value_name = "PORT", default_value_t = 9899, value_parser = parse_port)]
    remote_udp_port: u16,
    /// Our SCTP port (default: an ephemeral one).
    #[arg(long, value_name = "PORT", default_value_t = 0, value_parser = parse_local_port)]
    local_port: u16,
    /// Seconds to wait for the association to be established.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Give up (abort) if the transfer has not completed after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    timeout: f64,
    /// Print the result as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    asconf: AsconfArgs,
    /// After this many messages were sent, reset all outgoing streams (RFC 6525 Outgoing
    /// SSN Reset Request); the run fails if the peer refuses it or it never completes.
    #[arg(long, value_name = "MESSAGES", value_parser = clap::value_parser!(u64).range(1..))]
    reset_streams_after: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

/// `--pr-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PrPolicyArg {
    /// Timed reliability: lifetime in milliseconds.
    Ttl,
    /// Limited retransmissions.
    Rtx,
    /// Priority (0 is the highest).
    Prio,
}

impl PrPolicyArg {
    fn with_value(self, value: u32) -> Result<PrPolicy, Failure> {
        let small = |what: &str| {
            u16::try_from(value).map_err(|_| {
                Failure::usage(format!(
                    "--pr-value {value}: the {what} must be at most 65535"
                ))
            })
        };
        Ok(match self {
            PrPolicyArg::Ttl if value == 0 => {
                return Err(Failure::usage(
                    "--pr-value: a ttl of 0 ms abandons every message",
                ));
            }
            PrPolicyArg::Ttl => PrPolicy::Timed {
                lifetime: Duration::from_millis(u64::from(value)),
            },
            PrPolicyArg::Rtx => PrPolicy::LimitedRetransmissions {
                max_retransmissions: small("retransmission limit")?,
            },
            PrPolicyArg::Prio => PrPolicy::Priority {
                priority: small("priority")?,
            },
        })
    }
}

/// How much a client sends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Amount {
    Bytes(u64),
    Messages(u64),
    Duration(Duration),
}

/// A client's result.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    /// The server's address and port.
    pub peer: String,
    /// Bytes of user data sent (and acknowledged).
    pub bytes_sent: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages abandoned under partial reliability (--pr-policy), sent or not.
    pub messages_abandoned: u64,
    /// Bytes per message.
    pub message_length: u32,
    /// Seconds from the handshake to SHUTDOWN COMPLETE.
    pub duration_s: f64,
    /// User data bits per second.
    pub throughput_bps: f64,
    /// The peer's addresses (one path each).
    pub paths: Vec<String>,
    /// Stream resets (RFC 6525) of all outgoing streams the peer performed
    /// (--reset-streams-after).
    pub stream_resets: u64,
    /// Whether the transfer completed (every byte acknowledged, graceful shutdown).
    pub completed: bool,
    /// Why it did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A server's per-association result.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// The client's address and port.
    pub peer: String,
    /// Bytes of user data received.
    pub bytes_received: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Size of the first message (tsctp reports it).
    pub first_length: u64,
    /// Seconds from the handshake to the peer's SHUTDOWN (or the end).
    pub duration_s: f64,
    /// User data bits per second.
    pub throughput_bps: f64,
    /// Whether the association ended gracefully.
    pub graceful: bool,
}

struct Receiving {
    peer: String,
    start: Timestamp,
    end: Option<Timestamp>,
    bytes: u64,
    messages: u64,
    first_length: u64,
    graceful: bool,
}

/// The perf server application.
struct PerfServer {
    port: u16,
    once: bool,
    json: bool,
    assocs: HashMap<AssociationId, Receiving>,
    reports: mpsc::Sender<ServerReport>,
}

fn peer_text(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
        IpAddr::V4(_) => format!("{ip}:{port}"),
    }
}

impl PerfServer {
    fn drain(r: &mut Receiving, cx: &mut Context<'_>, id: AssociationId) {
        let Some(mut a) = cx.association(id) else {
            return;
        };
        while let Some(m) = a.recv() {
            if r.messages == 0 {
                r.first_length = m.data.len() as u64;
            }
            r.bytes += m.data.len() as u64;
            r.messages += 1;
        }
    }
}

impl App for PerfServer {
    fn start(&mut self, cx: &mut Context<'_>) {
        if let Err(e) = cx.listen(self.port) {
            tracing::error!("cannot listen on port {}: {e}", self.port);
            cx.stop_runtime();
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => {
                let peer = cx
                    .association(id)
                    .and_then(|a| a.status())
                    .map(|s| peer_text(s.primary, s.peer_port))
                    .unwrap_or_default();
                tracing::info!(%peer, "association established");
                let mut r = Receiving {
                    peer,
                    start: cx.now(),
                    end: None,
                    bytes: 0,
                    messages: 0,
                    first_length: 0,
                    graceful: true,
                };
                Self::drain(&mut r, cx, id);
                self.assocs.insert(id, r);
            }
            Event::DataReadable => {
                if let Some(r) = self.assocs.get_mut(&id) {
                    Self::drain(r, cx, id);
                }
            }
            Event::ShutdownReceived => {
                if let Some(r) = self.assocs.get_mut(&id) {
                    Self::drain(r, cx, id);
                    r.end.get_or_insert(cx.now());
                }
            }
            Event::Aborted(why) => {
                if let Some(r) = self.assocs.get_mut(&id) {
                    tracing::warn!(peer = %r.peer, "association aborted {}", abort_text(&why));
                    r.graceful = false;
                }
            }
            Event::CommunicationLost(why) => {
                if let Some(r) = self.assocs.get_mut(&id) {
                    tracing::warn!(peer = %r.peer, "association lost: {}", lost_text(why));
                    r.graceful = false;
                }
            }
            Event::Closed => {
                let Some(mut r) = self.assocs.remove(&id) else {
                    return;
                };
                Self::drain(&mut r, cx, id);
                let end = r.end.unwrap_or(cx.now());
                let secs = end.saturating_duration_since(r.start).as_secs_f64();
                let report = ServerReport {
                    peer: r.peer,
                    bytes_received: r.bytes,
                    messages_received: r.messages,
                    first_length: r.first_length,
                    duration_s: secs,
                    throughput_bps: if secs > 0.0 {
                        r.bytes as f64 * 8.0 / secs
                    } else {
                        0.0
                    },
                    graceful: r.graceful,
                };
                if self.json {
                    if let Ok(line) = serde_json::to_string(&report) {
                        println!("{line}");
                    }
                } else {
                    println!(
                        "{}: received {} bytes in {} messages (first {} bytes) in {:.3} s: {}",
                        report.peer,
                        report.bytes_received,
                        report.messages_received,
                        report.first_length,
                        report.duration_s,
                        rate(report.bytes_received, report.duration_s)
                    );
                }
                let _ = self.reports.send(report);
                if self.once {
                    cx.stop_runtime();
                }
            }
            _ => {}
        }
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        for id in self.assocs.keys() {
            if let Some(mut a) = cx.association(*id) {
                a.abort(b"perf server stopped");
            }
        }
    }
}

/// The perf client application.
struct PerfClient {
    req: Option<ConnectRequest>,
    length: usize,
    amount: Amount,
    options: SendOptions,
    abandoned: u64,
    streams: u16,
    template: Vec<u8>,
    id: Option<AssociationId>,
    peer: String,
    paths: Vec<String>,
    start: Option<Timestamp>,
    finish: Option<Timestamp>,
    send_deadline: Option<Timestamp>,
    connect_deadline: Option<Timestamp>,
    give_up: Duration,
    give_up_at: Option<Timestamp>,
    sent_bytes: u64,
    sent_messages: u64,
    done_sending: bool,
    error: Option<String>,
    result: mpsc::Sender<ClientReport>,
    stop_also: Vec<dataplane::runtime::WorkerRemote>,
    /// `--asconf-add`: the address and the delay after the association is established.
    asconf: Option<(IpAddr, Duration)>,
    asconf_at: Option<Timestamp>,
    asconf_done: bool,
    shutdown_deferred: bool,
    /// `--reset-streams-after`: request the reset after this many messages.
    reset_after: Option<u64>,
    reset_requested: bool,
    reset_done: bool,
    stream_resets: u64,
}

impl PerfClient {
    fn pump(&mut self, cx: &mut Context<'_>) {
        let Some(id) = self.id else { return };
        if self.done_sending {
            return;
        }
        let Some(mut a) = cx.association(id) else {
            return;
        };
        loop {
            let len = match self.amount {
                Amount::Bytes(total) => {
                    let left = total.saturating_sub(self.sent_bytes);
                    (left.min(self.length as u64)) as usize
                }
                Amount::Messages(n) if self.sent_messages >= n => 0,
                _ => self.length,
            };
            if len == 0 {
                break;
            }
            let stream = (self.sent_messages % u64::from(self.streams)) as u16;
            let data = self.template.get(..len).unwrap_or(&self.template);
            match a.send(stream, Ppid(0), data, self.options) {
                Ok(()) => {
                    self.sent_bytes += len as u64;
                    self.sent_messages += 1;
                    if self.reset_after == Some(self.sent_messages) && !self.reset_requested {
                        self.reset_requested = true;
                        match a.reset_streams(&[]) {
                            Ok(()) => tracing::info!(
                                after = self.sent_messages,
                                "requested a reset of all outgoing streams"
                            ),
                            Err(e) => {
                                self.error = Some(format!("--reset-streams-after: {e}"));
                                a.abort(b"perf client stream reset failed");
                                self.done_sending = true;
                                return;
                            }
                        }
                    }
                }
                // Messages of streams waiting for the reset fill the send buffer.
                Err(SendError::WouldBlock | SendError::ResetPending) => return,
                Err(e) => {
                    self.error = Some(format!("send failed: {e}"));
                    a.abort(b"perf client send failed");
                    self.done_sending = true;
                    return;
                }
            }
        }
        self.done_sending = true;
        if self.asconf_pending() {
            // --asconf-add was asked for: the association stays up until it is answered.
            self.shutdown_deferred = true;
        } else {
            a.shutdown();
        }
    }

    /// An --asconf-add request (or the --reset-streams-after reset) not yet answered by
    /// the peer.
    fn asconf_pending(&self) -> bool {
        (self.asconf.is_some() && !self.asconf_done) || (self.reset_requested && !self.reset_done)
    }

    /// The stream reset was answered: a deferred shutdown happens now.
    fn reset_finished(&mut self, cx: &mut Context<'_>) {
        self.reset_done = true;
        if self.shutdown_deferred
            && !self.asconf_pending()
            && let Some(id) = self.id
            && let Some(mut a) = cx.association(id)
        {
            self.shutdown_deferred = false;
            a.shutdown();
        }
    }

    /// The ASCONF was answered (or could not be sent): a deferred shutdown happens now.
    fn asconf_finished(&mut self, cx: &mut Context<'_>) {
        self.asconf_done = true;
        if self.shutdown_deferred
            && !self.asconf_pending()
            && let Some(id) = self.id
            && let Some(mut a) = cx.association(id)
        {
            self.shutdown_deferred = false;
            a.shutdown();
        }
    }

    fn report(&mut self, cx: &mut Context<'_>) {
        let start = self.start.unwrap_or(cx.now());
        let end = self.finish.unwrap_or(cx.now());
        let secs = end.saturating_duration_since(start).as_secs_f64();
        if let Some(n) = self.reset_after
            && !self.reset_done
        {
            self.error.get_or_insert(if self.reset_requested {
                "--reset-streams-after: the stream reset never completed".to_owned()
            } else {
                format!(
                    "--reset-streams-after {n}: only {} messages were sent",
                    self.sent_messages
                )
            });
        }
        let completed = self.finish.is_some() && self.error.is_none();
        let report = ClientReport {
            peer: self.peer.clone(),
            bytes_sent: self.sent_bytes,
            messages_sent: self.sent_messages,
            messages_abandoned: self.abandoned,
            message_length: self.length as u32,
            duration_s: secs,
            throughput_bps: if secs > 0.0 {
                self.sent_bytes as f64 * 8.0 / secs
            } else {
                0.0
            },
            paths: self.paths.clone(),
            stream_resets: self.stream_resets,
            completed,
            error: self.error.clone(),
        };
        let _ = self.result.send(report);
        for r in &self.stop_also {
            r.stop_runtime();
        }
        cx.stop_runtime();
    }
}

impl App for PerfClient {
    fn start(&mut self, cx: &mut Context<'_>) {
        let Some(req) = self.req.take() else { return };
        self.peer = peer_text(req.remote, req.remote_port);
        match cx.connect(req) {
            Ok(id) => {
                self.id = Some(id);
                self.give_up_at = Some(cx.now().saturating_add(self.give_up));
            }
            Err(e) => {
                self.error = Some(format!("cannot connect: {e}"));
                self.report(cx);
            }
        }
    }

    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        if Some(id) != self.id {
            return;
        }
        if matches!(
            event,
            Event::SendSpace
                | Event::ShutdownComplete
                | Event::Aborted(_)
                | Event::CommunicationLost(_)
        ) && let Some(s) = cx.association(id).and_then(|a| a.status())
        {
            self.abandoned = s.abandoned_unsent + s.abandoned_sent;
        }
        match event {
            Event::Connected => {
                self.connect_deadline = None;
                self.start = Some(cx.now());
                if let Some(s) = cx.association(id).and_then(|a| a.status()) {
                    self.paths = s.peer_addresses.iter().map(ToString::to_string).collect();
                }
                if let Amount::Duration(d) = self.amount {
                    self.send_deadline = Some(cx.now().saturating_add(d));
                }
                if let Some((_, after)) = self.asconf {
                    self.asconf_at = Some(cx.now().saturating_add(after));
                }
                tracing::info!(peer = %self.peer, "association established; sending");
                self.pump(cx);
            }
            Event::SendSpace => self.pump(cx),
            Event::DataReadable => {
                if let Some(mut a) = cx.association(id) {
                    while a.recv().is_some() {}
                }
            }
            Event::ShutdownComplete => self.finish = Some(cx.now()),
            Event::AddressRequestDone { request, error } => {
                match error {
                    None => tracing::info!(?request, "the peer accepted the ASCONF request"),
                    Some(code) => {
                        self.error
                            .get_or_insert(format!("the peer refused {request:?}: {code:?}"));
                    }
                }
                self.asconf_finished(cx);
            }
            Event::StreamReset {
                direction: StreamDirection::Outgoing,
                outcome,
                ..
            } => {
                if outcome == ReconfOutcome::Performed {
                    self.stream_resets += 1;
                    tracing::info!("the peer performed the stream reset");
                } else {
                    self.error.get_or_insert(format!(
                        "the peer refused the stream reset: {}",
                        match outcome {
                            ReconfOutcome::Denied => "denied".to_owned(),
                            other => format!("{other:?}"),
                        }
                    ));
                    if let Some(mut a) = cx.association(id) {
                        a.abort(b"stream reset refused");
                    }
                }
                self.reset_finished(cx);
            }
            Event::Aborted(r) => {
                self.error
                    .get_or_insert(format!("association aborted {}", abort_text(&r)));
            }
            Event::CommunicationLost(r) => {
                self.error
                    .get_or_insert(format!("association lost: {}", lost_text(r)));
            }
            Event::Closed => {
                self.id = None;
                self.report(cx);
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.send_deadline,
            self.connect_deadline,
            self.give_up_at,
            self.asconf_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn timeout(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let Some(id) = self.id else { return };
        if self.connect_deadline.is_some_and(|t| t <= now) {
            self.connect_deadline = None;
            self.error = Some("no association within the connect timeout".to_owned());
            if let Some(mut a) = cx.association(id) {
                a.abort(b"connect timeout");
            }
        }
        if self.give_up_at.is_some_and(|t| t <= now) {
            self.give_up_at = None;
            self.error = Some("the transfer did not complete within --timeout".to_owned());
            if let Some(mut a) = cx.association(id) {
                a.abort(b"perf timeout");
            }
        }
        if self.asconf_at.is_some_and(|t| t <= now) {
            self.asconf_at = None;
            if let Some((addr, _)) = self.asconf {
                let res = cx.association(id).map(|mut a| a.add_local_address(addr));
                match res {
                    Some(Ok(())) => tracing::info!(%addr, "ASCONF: adding local address"),
                    Some(Err(e)) => {
                        self.error
                            .get_or_insert(format!("--asconf-add {addr}: {e}"));
                        self.asconf_finished(cx);
                    }
                    None => {}
                }
            }
        }
        if self.send_deadline.is_some_and(|t| t <= now) {
            self.send_deadline = None;
            if !self.done_sending {
                self.done_sending = true;
                if self.asconf_pending() {
                    self.shutdown_deferred = true;
                } else if let Some(mut a) = cx.association(id) {
                    a.shutdown();
                }
            }
        }
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        if let Some(id) = self.id.take()
            && let Some(mut a) = cx.association(id)
        {
            a.abort(b"perf client stopped");
        }
    }
}

/// Runs `rsp sctp perf`.
pub fn run(args: PerfArgs, signals: TerminationSignals) -> Outcome {
    match args.mode {
        PerfMode::Server(a) => run_server(a, signals),
        PerfMode::Client(a) => run_client(*a, signals),
    }
}

fn server_app(
    port: u16,
    once: bool,
    json: bool,
    tx: &Mutex<mpsc::Sender<ServerReport>>,
) -> PerfServer {
    PerfServer {
        port,
        once,
        json,
        assocs: HashMap::new(),
        reports: tx.lock().unwrap_or_else(PoisonError::into_inner).clone(),
    }
}

fn run_server(args: PerfServerArgs, signals: TerminationSignals) -> Outcome {
    let config = args.net.runtime_config("rsp-perf")?;
    let links = args.net.link_spec(0)?;
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let (port, once, json) = (args.port, args.once, args.json);
    let rt = Runtime::start(config, links, move |_| server_app(port, once, json, &tx))
        .map_err(runtime_failure)?;
    tracing::info!(
        "perf server on SCTP port {port}, {} backend{}",
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
    let reports: Vec<ServerReport> = rx.try_iter().collect();
    if caught.get().is_some() {
        return Ok(if once {
            stopped_status(&caught)
        } else {
            ExitStatus::Success
        });
    }
    if once && reports.first().is_some_and(|r| !r.graceful) {
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Success)
}

fn seconds(v: f64, what: &str) -> Result<Duration, Failure> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Failure::usage(format!(
            "{what} must be a positive number of seconds"
        )))
    }
}

fn run_client(args: PerfClientArgs, signals: TerminationSignals) -> Outcome {
    let amount = match (args.bytes, args.messages, args.duration) {
        (Some(b), _, _) => Amount::Bytes(b),
        (_, Some(n), _) => Amount::Messages(n),
        (_, _, Some(d)) => Amount::Duration(seconds(d, "--duration")?),
        _ => Amount::Messages(1024),
    };
    let connect_timeout = seconds(args.connect_timeout, "--connect-timeout")?;
    let asconf = args.asconf.plan()?;
    if asconf.is_some() && args.net.backend == BackendArg::Memory {
        return Err(Failure::usage(
            "--asconf-add needs a network backend (udp or raw), not memory",
        ));
    }
    let give_up = seconds(args.timeout, "--timeout")?;
    let mut config = args.net.runtime_config("rsp-perf")?;
    let length = args.length as usize;
    if length > config.endpoint.association.max_message_size {
        config.endpoint.association.max_message_size = length;
    }
    let (tx, rx) = mpsc::channel();
    let mut options = if args.unordered {
        SendOptions::unordered()
    } else {
        SendOptions::default()
    };
    if let (Some(policy), Some(value)) = (args.pr_policy, args.pr_value) {
        options = options.with_pr_policy(policy.with_value(value)?);
    }

    // The in-process server for the memory backend.
    let mut server = None;
    let (req, links) = if args.net.backend == BackendArg::Memory {
        if args.net.workers != 1 {
            return Err(Failure::usage(
                "the memory backend runs one worker per side (--workers 1)",
            ));
        }
        let a_ip: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));
        let b_ip: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
        let mut fc = FabricConfig {
            clock: FabricClock::RealTime,
            ..FabricConfig::default()
        };
        fc.default_path.mtu = usize::from(args.net.mtu);
        let (_fabric, la, lb) = MemoryFabric::pair(fc, a_ip, b_ip)
            .map_err(|e| Failure::setup(format!("memory fabric: {e}")))?;
        let (stx, _srx) = mpsc::channel();
        let stx = Mutex::new(stx);
        let mut sconfig = config.clone();
        sconfig.capture = None;
        sconfig.thread_name = "rsp-perf-server".to_owned();
        let srt = Runtime::start(
            sconfig,
            LinkSpec::Links(vec![AnyLink::from(lb)]),
            move |_| server_app(DEFAULT_PORT, true, false, &stx),
        )
        .map_err(runtime_failure)?;
        server = Some(srt);
        (
            ConnectRequest::new(b_ip, DEFAULT_PORT),
            LinkSpec::Links(vec![AnyLink::from(la)]),
        )
    } else {
        let (Some(host), Some(port)) = (&args.host, args.port) else {
            return Err(Failure::usage("perf client needs HOST and PORT"));
        };
        let remote = single_remote(&resolve_hosts(host)?)?;
        let mut req = ConnectRequest::new(remote, port).with_local_port(args.local_port);
        if args.net.backend == BackendArg::Udp {
            req = req.with_encaps_port(args.remote_udp_port);
        }
        // With --asconf-add the link also takes the address to be added (a single --bind
        // becomes a wildcard link); the association lists only the --bind address(es).
        let mut link_net = args.net.clone();
        if let Some((addr, _)) = asconf
            && link_net.bind.len() == 1
            && !link_net.bind.contains(&addr)
        {
            link_net.bind.push(addr);
        }
        (req, link_net.link_spec(args.remote_udp_port)?)
    };
    let stop_also: Vec<_> = server.iter().filter_map(|s| s.remote(0)).collect();
    let tx = Mutex::new(tx);
    let template = vec![b'b'; length];
    let req = Mutex::new(Some(req));
    let rt = Runtime::start(config, links, move |info| PerfClient {
        // The association lives on worker 0.
        req: if info.index == 0 {
            req.lock().unwrap_or_else(PoisonError::into_inner).take()
        } else {
            None
        },
        length,
        amount,
        options,
        abandoned: 0,
        // --streams N requests N outbound streams and spreads the messages over them.
        streams: args.net.streams.unwrap_or(1),
        template: template.clone(),
        id: None,
        peer: String::new(),
        paths: Vec::new(),
        start: None,
        finish: None,
        send_deadline: None,
        connect_deadline: Some(Timestamp::ZERO.saturating_add(connect_timeout)),
        give_up,
        give_up_at: None,
        sent_bytes: 0,
        sent_messages: 0,
        done_sending: false,
        error: None,
        result: tx.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        stop_also: stop_also.clone(),
        asconf,
        asconf_at: None,
        asconf_done: false,
        shutdown_deferred: false,
        reset_after: args.reset_streams_after,
        reset_requested: false,
        reset_done: false,
        stream_resets: 0,
    })
    .map_err(runtime_failure)?;
    let remote = rt.remote(0);
    let caught = on_signals(signals, move || {
        if let Some(r) = &remote {
            r.stop_runtime();
        }
    })?;
    join(rt)?;
    if let Some(s) = server {
        s.stop();
        join(s)?;
    }
    if caught.get().is_some() {
        return Ok(stopped_status(&caught));
    }
    let Ok(report) = rx.try_recv() else {
        return Err(Failure::failed("the transfer ended without a result"));
    };
    if args.json {
        if let Ok(line) = serde_json::to_string(&report) {
            println!("{line}");
        }
    } else {
        println!(
            "sent {} bytes in {} messages of {} bytes to {} in {:.3} s: {}",
            report.bytes_sent,
            report.messages_sent,
            report.message_length,
            report.peer,
            report.duration_s,
            rate(report.bytes_sent, report.duration_s)
        );
    }
    match &report.error {
        None if report.completed => Ok(ExitStatus::Success),
        Some(e) if e.contains("timeout") || e.contains("--timeout") => {
            Err(Failure::timeout(e.clone()))
        }
        Some(e) => Err(Failure::failed(e.clone())),
        None => Err(Failure::failed("the transfer did not complete")),
    }
}
