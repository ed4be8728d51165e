//! Monitoring of the registrar: a Prometheus text endpoint (`--metrics`) and Component
//! Status reports to RSPLIB's `cspmonitor` (`--cspserver`, `--cspinterval`).
//!
//! The worker owns the core; after every input it copies what the monitors show into a
//! [`Snapshot`] behind a mutex: a few counters each time, the association list (O(PEs))
//! only after events that change peers or PEs, and at most once per
//! [`ASSOCIATIONS_REFRESH`]. Two small threads read it:
//!
//! - the metrics thread answers `GET /metrics` over `std::net::TcpListener`, one
//!   connection at a time, `Connection: close`; a request head is bounded in size
//!   ([`MAX_REQUEST`]) and in total time ([`IO_TIMEOUT`]); other paths get 404, other methods
//!   405, anything unparsable 400;
//! - the CSP thread sends a [`ComponentStatusReport`] every `--cspinterval` (RSPLIB's
//!   default 1000 ms) and a final report (flag F) when the registrar stops. As RSPLIB's
//!   registrar does, the report lists the peer registrars (PPID ENRP) and the PEs this
//!   registrar is home for (PPID ASAP) as its associations.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rserpool::registrar::{Registrar, Stats};
use rserpool::services::wire::{ComponentAssociation, ComponentStatusReport, component_group};
use rserpool::wire::{PPID_ASAP, PPID_ENRP};

use crate::exit::Failure;

/// Largest HTTP request head read.
pub const MAX_REQUEST: usize = 8192;
/// Shortest time between two rebuilds of the association list.
pub const ASSOCIATIONS_REFRESH: Duration = Duration::from_secs(1);
/// Read and write timeout of one metrics connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Request bytes read and discarded after a reply (so that the close is not a reset).
const MAX_DRAIN: usize = 65536;
/// How long the rest of a request is waited for after a reply.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);
/// Most associations in one CSP report (RSPLIB's cspmonitor shows a few hundred at most).
const MAX_CSP_ASSOCIATIONS: usize = 1000;
/// Transport protocol number of SCTP in CSP associations.
const PROTOCOL_SCTP: u16 = 132;

/// What the monitors show, copied from the worker.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// The registrar's identifier.
    pub id: u32,
    /// Start-up is over.
    pub serving: bool,
    /// Pools in the handlespace.
    pub pools: usize,
    /// PEs in the handlespace.
    pub pool_elements: usize,
    /// PEs this registrar is home for.
    pub owned: usize,
    /// Peers in the peer table.
    pub peers: usize,
    /// The core's counters.
    pub stats: Stats,
    /// ASAP_DEREGISTRATIONs that removed a PE.
    pub deregistrations: u64,
    /// Takeovers this registrar completed.
    pub takeovers: u64,
    /// Peers and owned PEs as CSP associations.
    pub associations: Vec<ComponentAssociation>,
}

/// The worker's side: the shared snapshot and the app-level counters.
#[derive(Debug, Clone, Default)]
pub struct Publisher {
    shared: Arc<Mutex<Snapshot>>,
}

impl Publisher {
    /// A new publisher and the handle the monitor threads read.
    pub fn new() -> (Publisher, Arc<Mutex<Snapshot>>) {
        let shared: Arc<Mutex<Snapshot>> = Arc::default();
        (
            Publisher {
                shared: Arc::clone(&shared),
            },
            shared,
        )
    }

    /// Copies the core's counters; `associations`: also rebuild the association list
    /// (O(PEs); the worker throttles it).
    pub fn publish(
        &self,
        core: &Registrar,
        deregistrations: u64,
        takeovers: u64,
        associations: bool,
    ) {
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        s.id = core.id().0;
        s.serving = core.is_serving();
        s.pools = core.handlespace().pool_count();
        s.pool_elements = core.handlespace().pe_count();
        s.owned = core.owned_count();
        s.peers = core.peers().count();
        s.stats.clone_from(core.stats());
        s.deregistrations = deregistrations;
        s.takeovers = takeovers;
        if associations {
            s.associations.clear();
            let assoc = |group, object: u64, ppid| ComponentAssociation {
                receiver_id: component_group::compound(group, object),
                duration: u64::MAX,
                flags: 0,
                protocol_id: PROTOCOL_SCTP,
                ppid,
            };
            let peer_assocs = core.peers().map(|p| {
                assoc(
                    component_group::REGISTRAR,
                    u64::from(p.server_id.0),
                    PPID_ENRP,
                )
            });
            let hs = core.handlespace();
            let me = core.id();
            let pe_assocs = hs.pool_handles().flat_map(|h| {
                hs.pool_elements(h.as_bytes())
                    .filter(move |pe| pe.home_registrar == me)
                    .map(|pe| {
                        assoc(
                            component_group::POOL_ELEMENT,
                            u64::from(pe.identifier.0),
                            PPID_ASAP,
                        )
                    })
            });
            s.associations
                .extend(peer_assocs.chain(pe_assocs).take(MAX_CSP_ASSOCIATIONS));
        }
    }
}

/// The Prometheus text exposition (format 0.0.4) of `s`.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    let gauge = "gauge";
    let counter = "counter";
    metric(
        "rsp_registrar_serving",
        gauge,
        "1 once start-up (mentor synchronisation) is over.",
        u64::from(s.serving),
    );
    metric(
        "rsp_registrar_pools",
        gauge,
        "Pools in the handlespace.",
        s.pools as u64,
    );
    metric(
        "rsp_registrar_pool_elements",
        gauge,
        "Pool elements in the handlespace.",
        s.pool_elements as u64,
    );
    metric(
        "rsp_registrar_owned_pool_elements",
        gauge,
        "Pool elements this registrar is home registrar for.",
        s.owned as u64,
    );
    metric(
        "rsp_registrar_peers",
        gauge,
        "Registrars in the peer table.",
        s.peers as u64,
    );
    let st = &s.stats;
    let counters: [(&str, &str, u64); 21] = [
        (
            "registrations_total",
            "Registrations accepted.",
            st.registrations,
        ),
        (
            "registration_rejects_total",
            "Registrations rejected.",
            st.registration_rejects,
        ),
        (
            "deregistrations_total",
            "Pool elements removed by ASAP_DEREGISTRATION.",
            s.deregistrations,
        ),
        (
            "handle_resolutions_total",
            "Handle resolutions answered.",
            st.resolutions,
        ),
        (
            "takeovers_total",
            "Takeovers of silent peers this registrar completed.",
            s.takeovers,
        ),
        (
            "asap_messages_received_total",
            "ASAP messages received.",
            st.asap_received,
        ),
        (
            "enrp_messages_received_total",
            "ENRP messages received.",
            st.enrp_received,
        ),
        (
            "oversized_messages_total",
            "Messages dropped for their length.",
            st.oversized,
        ),
        (
            "malformed_messages_total",
            "Messages that failed to decode.",
            st.malformed,
        ),
        (
            "errors_sent_total",
            "ERROR messages sent in answer to malformed input.",
            st.errors_sent,
        ),
        (
            "unexpected_messages_total",
            "Well-formed messages a registrar does not expect (dropped).",
            st.unexpected,
        ),
        (
            "asap_dropped_in_startup_total",
            "ASAP requests dropped before start-up was over.",
            st.asap_dropped_in_startup,
        ),
        (
            "enrp_from_unknown_total",
            "ENRP messages from unknown registrars or misaddressed (dropped).",
            st.enrp_from_unknown,
        ),
        (
            "acl_refusals_total",
            "Requests refused by an access list.",
            st.acl_refusals,
        ),
        (
            "rate_limited_total",
            "Requests dropped by a rate limit.",
            st.rate_limited,
        ),
        (
            "keep_alive_timeouts_total",
            "Pool elements that missed ENDPOINT_KEEP_ALIVE_ACK.",
            st.keep_alive_timeouts,
        ),
        (
            "transmit_overflow_total",
            "Transmits dropped because the queue was full.",
            st.transmit_overflow,
        ),
        (
            "event_overflow_total",
            "Events dropped because the queue was full.",
            st.event_overflow,
        ),
        (
            "peer_overflow_total",
            "Peers refused because the peer table was full.",
            st.peer_overflow,
        ),
        (
            "encode_failures_total",
            "Messages that could not be encoded.",
            st.encode_failures,
        ),
        (
            "update_rejects_total",
            "Handle updates or table entries the handlespace refused.",
            st.update_rejects,
        ),
    ];
    for (name, help, value) in counters {
        metric(&format!("rsp_registrar_{name}"), counter, help, value);
    }
    out
}

/// Binds the metrics listener (so that a busy port is a start-up error).
pub fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, Failure> {
    TcpListener::bind(addr)
        .map_err(|e| Failure::setup(format!("--metrics {addr}: cannot listen: {e}")))
}

/// Serves `GET /metrics` on `listener` from `snapshot`, one connection at a time.
pub fn spawn_metrics(
    listener: TcpListener,
    snapshot: Arc<Mutex<Snapshot>>,
) -> Result<JoinHandle<()>, Failure> {
    std::thread::Builder::new()
        .name("rsp-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = serve(s, &snapshot) {
                            tracing::debug!("metrics request: {e}");
                        }
                    }
                    Err(e) => tracing::debug!("metrics accept: {e}"),
                }
            }
        })
        .map_err(|e| Failure::setup(format!("no metrics thread: {e}")))
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

/// Classifies a request head (the bytes up to the blank line).
fn classify(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = text.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return Request::Bad;
    }
    if method != "GET" && method != "HEAD" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

/// Answers one connection.
fn serve(mut s: TcpStream, snapshot: &Mutex<Snapshot>) -> std::io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    // A client trickling bytes would reset each read's timeout: the whole head gets one.
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= MAX_REQUEST || Instant::now() >= deadline {
            break false;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(&buf[..n.min(MAX_REQUEST - head.len())]);
    };
    let request = if complete {
        classify(&head)
    } else {
        Request::Bad
    };
    let head_only = head.starts_with(b"HEAD ");
    let (status, body) = match request {
        Request::Metrics => {
            let snap = snapshot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            ("200 OK", render_metrics(&snap))
        }
        Request::NotFound => ("404 Not Found", "not found; try /metrics\n".to_owned()),
        Request::BadMethod => ("405 Method Not Allowed", "GET only\n".to_owned()),
        Request::Bad => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let content_type = if request == Request::Metrics {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if request == Request::BadMethod {
        reply.push_str("Allow: GET, HEAD\r\n");
    }
    reply.push_str("\r\n");
    if !head_only {
        reply.push_str(&body);
    }
    s.write_all(reply.as_bytes())?;
    s.flush()?;
    // Unread request bytes would turn the close into a reset that can destroy the reply
    // before the client reads it: end our side, then discard a bounded remainder.
    s.shutdown(std::net::Shutdown::Write)?;
    s.set_read_timeout(Some(DRAIN_TIMEOUT))?;
    let mut drained = 0;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while drained < MAX_DRAIN && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// The CSP reporter thread; dropping [`CspReporter::stop`]'s sender ends it with a final
/// report.
pub struct CspReporter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CspReporter {
    /// Opens the UDP socket and starts reporting to `server` every `interval`.
    pub fn start(
        server: SocketAddr,
        interval: Duration,
        location: String,
        snapshot: Arc<Mutex<Snapshot>>,
    ) -> Result<CspReporter, Failure> {
        let any: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any)
            .map_err(|e| Failure::setup(format!("--cspserver {server}: no UDP socket: {e}")))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rsp-csp".into())
            .spawn(move || csp_loop(&socket, server, interval, &location, &snapshot, &rx))
            .map_err(|e| Failure::setup(format!("no CSP thread: {e}")))?;
        Ok(CspReporter {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends the final report and ends the thread.
    pub fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The report `s` describes.
pub fn csp_report(
    s: &Snapshot,
    interval: Duration,
    location: &str,
    final_report: bool,
) -> ComponentStatusReport {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut status = format!(
        "{} pool{}, {} PE{} ({} owned), {} peer{}",
        s.pools,
        plural(s.pools),
        s.pool_elements,
        plural(s.pool_elements),
        s.owned,
        s.peers,
        plural(s.peers)
    );
    if !s.serving {
        status.push_str(", starting");
    }
    ComponentStatusReport {
        final_report,
        sender_id: component_group::compound(component_group::REGISTRAR, u64::from(s.id)),
        sender_timestamp: micros,
        report_interval: u32::try_from(interval.as_micros()).unwrap_or(u32::MAX),
        location: truncated(location.as_bytes()),
        status: truncated(status.as_bytes()),
        workload: ComponentStatusReport::workload_from_fraction(-1.0),
        associations: s.associations.clone(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// At most the 128 bytes a CSP text field holds.
fn truncated(b: &[u8]) -> Vec<u8> {
    b[..b.len().min(128)].to_vec()
}

fn csp_loop(
    socket: &UdpSocket,
    server: SocketAddr,
    interval: Duration,
    location: &str,
    snapshot: &Mutex<Snapshot>,
    stop: &Receiver<()>,
) {
    let mut buf = Vec::new();
    loop {
        let last = match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        let snap = snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Nothing to report before the worker published its identifier.
        if snap.id != 0 {
            let report = csp_report(&snap, interval, location, last);
            buf.resize(report.encoded_len(), 0);
            match report.encode(&mut buf) {
                Ok(n) => {
                    if let Err(e) = socket.send_to(&buf[..n], server) {
                        tracing::debug!("CSP report to {server}: {e}");
                    }
                }
                Err(e) => tracing::debug!("CSP report not encodable: {e:?}"),
            }
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_by_method_and_path() {
        assert_eq!(classify(b"GET /metrics HTTP/1.1\r\n\r\n"), Request::Metrics);
        assert_eq!(
            classify(b"GET /metrics?x=1 HTTP/1.0\r\nHost: a\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            classify(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::BadMethod
        );
        assert_eq!(classify(b"GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(classify(b"\xff\xfe\r\n\r\n"), Request::Bad);
        assert_eq!(classify(b"GET metrics HTTP/1.1\r\n\r\n"), Request::Bad);
    }

    #[test]
    fn metrics_have_help_and_type_lines_and_counters_end_in_total() {
        let s = Snapshot {
            pools: 2,
            deregistrations: 5,
            ..Snapshot::default()
        };
        let text = render_metrics(&s);
        assert!(text.contains("# TYPE rsp_registrar_pools gauge\nrsp_registrar_pools 2\n"));
        assert!(text.contains("rsp_registrar_deregistrations_total 5\n"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut w = line.split(' ').skip(2);
            let (name, kind) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
    }

    #[test]
    fn csp_reports_carry_the_registrar_id_and_a_status_text() {
        let s = Snapshot {
            id: 0x42,
            serving: true,
            pools: 1,
            pool_elements: 3,
            ..Snapshot::default()
        };
        let r = csp_report(&s, Duration::from_millis(1000), "here", false);
        assert_eq!(r.sender_id, (1 << 56) | 0x42);
        assert_eq!(r.report_interval, 1_000_000);
        assert_eq!(r.status, b"1 pool, 3 PEs (0 owned), 0 peers");
        let mut b = vec![0; r.encoded_len()];
        let n = r.encode(&mut b).expect("encodes");
        assert_eq!(ComponentStatusReport::decode(&b[..n]), Ok(r));
    }
}
