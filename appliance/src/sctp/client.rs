//! `rsp sctp client`: standard input lines become messages; what comes back is printed, one
//! message per line. Built on the runtime's socket handles: the main thread reads standard
//! input and sends, a second thread receives and prints.

use std::io::{BufRead, Write};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::runtime::socket::{
    Association, Incoming, Outgoing, SocketConfig, SocketError, Sockets, abort_text, lost_text,
};
use dataplane::signal::TerminationSignals;
use sctp_stack::wire::Ppid;
use sctp_stack::{
    ConnectError, ConnectRequest, Event, ReconfOutcome, SendOptions, StreamDirection,
};

use super::{
    NetArgs, join, on_signals, parse_local_port, parse_port, resolve_hosts, runtime_failure,
    single_remote, stopped_status,
};
use crate::exit::{ExitStatus, Failure, Outcome};

/// Arguments of `rsp sctp client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The peer: an address or host name (a comma-separated list for a multi-homed peer).
    #[arg(value_name = "HOST")]
    host: String,
    /// The peer's SCTP port.
    #[arg(value_name = "PORT", value_parser = parse_port)]
    port: u16,
    /// The peer's UDP encapsulation port.
    #[arg(long, value_name = "PORT", default_value_t = 9899, value_parser = parse_port)]
    remote_udp_port: u16,
    /// Our SCTP port (default: an ephemeral one).
    #[arg(long, value_name = "PORT", default_value_t = 0, value_parser = parse_local_port)]
    local_port: u16,
    /// Stream of the messages sent.
    #[arg(long, default_value_t = 0)]
    stream: u16,
    /// Payload Protocol Identifier of the messages sent.
    #[arg(long, default_value_t = 0)]
    ppid: u32,
    /// Send unordered messages.
    #[arg(long)]
    unordered: bool,
    /// Finish after this many messages were received (default: one per line sent).
    #[arg(long, value_name = "N", conflicts_with = "until_closed")]
    count: Option<u64>,
    /// Send nothing; print what arrives until the peer closes the association (daytime).
    #[arg(long)]
    until_closed: bool,
    /// Seconds to wait for the association, and for replies after the input ended.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// After this many messages were sent, reset all outgoing streams (RFC 6525 Outgoing
    /// SSN Reset Request); the run fails if the peer refuses it or it does not complete.
    #[arg(long, value_name = "MESSAGES", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "until_closed")]
    reset_streams_after: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

/// How the receiving side ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Closed after a graceful shutdown.
    Closed,
    /// Aborted or lost, with the reason.
    Failed(String),
    /// The runtime stopped.
    Stopped,
}

#[derive(Debug, Default)]
struct Progress {
    received: u64,
    received_bytes: u64,
    end: Option<End>,
    shutdown_by_peer: bool,
    /// How our reset of the outgoing streams ended (--reset-streams-after).
    reset: Option<ReconfOutcome>,
}

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Progress)) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut p);
        self.changed.notify_all();
    }

    /// Waits until `done` holds or `deadline` passes; returns the final state's verdict.
    fn wait_until(&self, deadline: Instant, done: impl Fn(&Progress) -> bool) -> bool {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(&p) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            p = self
                .changed
                .wait_timeout(p, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Receives and prints until the association is gone.
fn receive(a: &Association, shared: &Shared) {
    let stdout = std::io::stdout();
    loop {
        match a.recv() {
            Ok(Incoming::Message(m)) => {
                let mut out = stdout.lock();
                let _ = out.write_all(&m.data);
                if !m.data.ends_with(b"\n") {
                    let _ = out.write_all(b"\n");
                }
                let _ = out.flush();
                let n = m.data.len() as u64;
                shared.update(|p| {
                    p.received += 1;
                    p.received_bytes += n;
                });
            }
            Ok(Incoming::Event(Event::StreamReset {
                direction: StreamDirection::Outgoing,
                outcome,
                ..
            })) => {
                tracing::info!(?outcome, "the peer answered the stream reset");
                shared.update(|p| p.reset = Some(outcome));
            }
            Ok(Incoming::Event(Event::ShutdownReceived)) => {
                tracing::info!("the peer shut the association down");
                shared.update(|p| p.shutdown_by_peer = true);
            }
            Ok(Incoming::Event(Event::Aborted(r))) => {
                let why = format!("association aborted {}", abort_text(&r));
                shared.update(|p| {
                    p.end.get_or_insert(End::Failed(why));
                });
            }
            Ok(Incoming::Event(Event::CommunicationLost(r))) => {
                let why = format!("association lost: {}", lost_text(r));
                shared.update(|p| {
                    p.end.get_or_insert(End::Failed(why));
                });
            }
            Ok(Incoming::Event(e)) => tracing::debug!("event {e:?}"),
            Ok(Incoming::SendFailed { error, .. }) => {
                let why = format!("a message was refused: {error}");
                shared.update(|p| {
                    p.end.get_or_insert(End::Failed(why));
                });
            }
            Ok(other) => tracing::debug!("{other:?}"),
            Err(SocketError::Closed) => {
                shared.update(|p| {
                    p.end.get_or_insert(End::Closed);
                });
                return;
            }
            Err(_) => {
                shared.update(|p| {
                    p.end.get_or_insert(End::Stopped);
                });
                return;
            }
        }
    }
}

/// Reads standard input and sends each line, with its line end, as one message (as usrsctp's
/// client does), resetting the outgoing streams after `--reset-streams-after` of them;
/// returns the messages and bytes sent, or why sending stopped.
fn send_lines(a: &Association, args: &ClientArgs) -> Result<(u64, u64), Failure> {
    let opts = if args.unordered {
        SendOptions::unordered()
    } else {
        SendOptions::default()
    };
    let mut sent = 0;
    let mut bytes = 0u64;
    let mut line = Vec::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => return Ok((sent, bytes)),
            Ok(_) => {}
            Err(e) => return Err(Failure::failed(format!("reading standard input: {e}"))),
        }
        if line == b"\n" || line == b"\r\n" {
            // SCTP carries no empty messages (RFC 9260 §6.2).
            tracing::debug!("skipping an empty line");
            continue;
        }
        let msg = Outgoing::new(args.stream, Ppid(args.ppid), line.clone()).with_options(opts);
        let len = line.len() as u64;
        match a.send(msg) {
            Ok(()) => {
                sent += 1;
                bytes += len;
            }
            Err(_) => return Ok((sent, bytes)),
        }
        if args.reset_streams_after == Some(sent) {
            match a.reset_streams(&[]) {
                Ok(Some(Ok(()))) => tracing::info!(after = sent, "requested a stream reset"),
                Ok(Some(Err(e))) => {
                    return Err(Failure::failed(format!("--reset-streams-after: {e}")));
                }
                // The association is gone; the exchange reports why.
                Ok(None) | Err(_) => return Ok((sent, bytes)),
            }
        }
    }
}

fn connect_failure(e: SocketError) -> Failure {
    match e {
        SocketError::Timeout => Failure::timeout("no association within the time limit"),
        SocketError::Connect(ConnectError::InvalidRemote) => {
            Failure::address("the peer address or port is not usable")
        }
        SocketError::Connect(c) => Failure::setup(format!("cannot connect: {c}")),
        other => Failure::failed(format!("cannot connect: {other}")),
    }
}

/// Runs `rsp sctp client`.
pub fn run(args: ClientArgs, signals: TerminationSignals) -> Outcome {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Failure::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let remote = single_remote(&resolve_hosts(&args.host)?)?;
    args.net.local_address()?;
    if !args.net.can_reach(remote) {
        return Err(Failure::address(
            "the --bind address and the peer are of different address families",
        ));
    }
    let config = args.net.runtime_config("rsp-client")?;
    let links = args.net.link_spec(args.remote_udp_port)?;
    let (rt, sockets) =
        Sockets::start(config, links, SocketConfig::default()).map_err(runtime_failure)?;
    let stopper = rt.remote(0);
    let caught = on_signals(signals, move || {
        if let Some(r) = &stopper {
            r.stop_runtime();
        }
    })?;

    let mut req = ConnectRequest::new(remote, args.port).with_local_port(args.local_port);
    if rt.local_udp_port().is_some() {
        req = req.with_encaps_port(args.remote_udp_port);
    }
    let outcome = match sockets.connect(req, Some(timeout)) {
        Ok(a) => converse(&a, &args, timeout),
        Err(e) if caught.get().is_some() => {
            tracing::debug!("connect interrupted: {e}");
            Ok(stopped_status(&caught))
        }
        Err(e) => Err(connect_failure(e)),
    };
    rt.stop();
    join(rt)?;
    if caught.get().is_some() {
        return Ok(stopped_status(&caught));
    }
    outcome
}

/// Sends, waits for the replies, closes.
fn converse(a: &Association, args: &ClientArgs, timeout: Duration) -> Outcome {
    tracing::info!(
        "connected to {}:{} from port {} ({} outbound, {} inbound streams)",
        a.info().peer,
        a.info().peer_port,
        a.info().local_port,
        a.info().outbound_streams,
        a.info().inbound_streams
    );
    let shared = Shared {
        progress: Mutex::new(Progress::default()),
        changed: Condvar::new(),
    };
    std::thread::scope(|s| {
        s.spawn(|| receive(a, &shared));
        let outcome = exchange(a, args, timeout, &shared);
        // The receiving thread ends with the association: make sure it does end.
        if shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end
            .is_none()
        {
            let _ = a.abort(b"client finished");
        }
        outcome
    })
}

fn exchange(a: &Association, args: &ClientArgs, timeout: Duration, shared: &Shared) -> Outcome {
    {
        let (sent, sent_bytes) = if args.until_closed {
            (0, 0)
        } else {
            send_lines(a, args)?
        };
        let target = args.count.unwrap_or(sent);
        // Wait for the replies (or the end of the association). Without --count, an echo is
        // complete when as many messages or as many bytes came back as were sent: a peer that
        // echoes a byte stream (a kernel SCTP stream socket behind `cat`) may merge messages.
        let by_bytes = args.count.is_none() && sent_bytes > 0;
        let deadline = Instant::now() + timeout;
        let satisfied = shared.wait_until(deadline, |p| {
            p.end.is_some()
                || (!args.until_closed
                    && (p.received >= target || (by_bytes && p.received_bytes >= sent_bytes)))
        });
        let snapshot = {
            let p = shared
                .progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (p.received, p.end.clone(), p.received_bytes)
        };
        if !satisfied {
            let _ = a.abort(b"client timed out");
            shared.wait_until(Instant::now() + Duration::from_secs(2), |p| p.end.is_some());
            return Err(Failure::timeout(if args.until_closed {
                "the peer did not close the association in time".to_owned()
            } else {
                format!("{} of {target} replies received in time", snapshot.0)
            }));
        }
        match snapshot.1 {
            Some(End::Failed(why)) => return Err(Failure::failed(why)),
            Some(End::Stopped) => return Ok(ExitStatus::Success),
            Some(End::Closed)
                if !args.until_closed
                    && snapshot.0 < target
                    && !(by_bytes && snapshot.2 >= sent_bytes) =>
            {
                return Err(Failure::failed(format!(
                    "the association closed after {} of {target} replies",
                    snapshot.0
                )));
            }
            _ => {}
        }
        if let Some(n) = args.reset_streams_after {
            if sent < n {
                let _ = a.abort(b"stream reset not requested");
                return Err(Failure::failed(format!(
                    "--reset-streams-after {n}: only {sent} messages were sent"
                )));
            }
            // The reset must be answered before the association closes.
            shared.wait_until(Instant::now() + timeout, |p| {
                p.reset.is_some() || p.end.is_some()
            });
            let reset = shared
                .progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reset;
            match reset {
                Some(ReconfOutcome::Performed) => {}
                Some(ReconfOutcome::Denied) => {
                    let _ = a.abort(b"stream reset refused");
                    return Err(Failure::failed("the peer refused the stream reset: denied"));
                }
                Some(other) => {
                    let _ = a.abort(b"stream reset refused");
                    return Err(Failure::failed(format!(
                        "the peer refused the stream reset: {other:?}"
                    )));
                }
                None => {
                    let _ = a.abort(b"stream reset not answered");
                    return Err(Failure::timeout(
                        "the stream reset did not complete in time",
                    ));
                }
            }
        }
        // Close gracefully and wait for the end.
        let _ = a.shutdown();
        if !shared.wait_until(Instant::now() + timeout, |p| p.end.is_some()) {
            let _ = a.abort(b"shutdown timed out");
            return Err(Failure::timeout("the graceful shutdown did not complete"));
        }
        let end = shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end
            .clone();
        match end {
            Some(End::Failed(why)) => Err(Failure::failed(why)),
            _ => Ok(ExitStatus::Success),
        }
    }
}
