//! Socket-like handles over a [`Runtime`], usable from any thread.
//!
//! [`Sockets::start`] runs a runtime whose workers serve handles: [`Sockets::listen`] gives a
//! [`Listener`] that accepts [`Association`]s, [`Sockets::connect`] opens one. An
//! `Association` sends and receives whole messages with stream, PPID and the stack's
//! [`SendOptions`] (unordered, immediate acknowledgement, and what the stack adds later), and
//! reports the association's events in order with the messages ([`Incoming`]).
//!
//! # Threading and flow control
//!
//! Handles talk to their worker through bounded queues and wake it only when it sleeps:
//! - commands (listen, connect, close, status) go through the worker's [`Mailbox`](super::mailbox);
//! - each association has a bounded queue of outgoing messages and one of incoming items.
//!   [`Association::send`] blocks while the outgoing queue is full; the worker moves messages
//!   into the stack while its send buffer has room and resumes on `SendSpace`, so a slow peer
//!   slows the sender down. The worker pulls received messages out of the stack only while
//!   the incoming queue has room: a slow reader leaves them in the stack, whose receive
//!   window then closes and slows the peer down. Nothing is dropped and nothing grows
//!   without bound.
//!
//! Every call has a blocking form and a non-blocking (`try_`) or time-limited form.
//! Dropping an `Association` closes it gracefully (queued messages are sent first); dropping a
//! `Listener` stops accepting. When the runtime stops, open associations are aborted and every
//! handle reports [`SocketError::Stopped`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sctp_stack::wire::Ppid;
use sctp_stack::{
    AbortReason, AssociationId, AssociationStatus, ConnectError, ConnectRequest, Event,
    ListenError, LostReason, Message, SendError, SendOptions,
};

use super::app::{App, Context, MailboxReceiver, MailboxSender, mailbox};
use super::{LinkSpec, Runtime, RuntimeConfig, RuntimeError};

/// Queue sizes of the handle layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketConfig {
    /// Commands queued per worker: 1024.
    pub mailbox_capacity: usize,
    /// Outgoing messages queued per association before `send` blocks: 64.
    pub send_queue: usize,
    /// Received messages and events queued per association before the worker leaves them
    /// in the stack: 256.
    pub recv_queue: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            mailbox_capacity: 1024,
            send_queue: 64,
            recv_queue: 256,
        }
    }
}

/// Why a socket operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketError {
    /// Listening was refused.
    Listen(ListenError),
    /// The endpoint refused to start the association.
    Connect(ConnectError),
    /// The association was aborted (by the peer or locally) before it was established.
    Aborted(AbortReason),
    /// The peer did not answer the handshake, or stopped answering.
    Lost(LostReason),
    /// The association is closed (everything it received has been read).
    Closed,
    /// The time limit passed.
    Timeout,
    /// A non-blocking call would have had to wait.
    WouldBlock,
    /// The runtime stopped.
    Stopped,
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Listen(e) => write!(f, "listen: {e}"),
            SocketError::Connect(e) => write!(f, "connect: {e}"),
            SocketError::Aborted(r) => write!(f, "association aborted: {}", abort_text(r)),
            SocketError::Lost(r) => write!(f, "association lost: {}", lost_text(*r)),
            SocketError::Closed => f.write_str("association closed"),
            SocketError::Timeout => f.write_str("timed out"),
            SocketError::WouldBlock => f.write_str("operation would block"),
            SocketError::Stopped => f.write_str("the SCTP runtime stopped"),
        }
    }
}

impl std::error::Error for SocketError {}

/// A human-readable description of why an association was aborted.
pub fn abort_text(r: &AbortReason) -> String {
    let causes = |side: &str, causes: &[sctp_stack::ErrorCause]| {
        if causes.is_empty() {
            return format!("by the {side}");
        }
        let list: Vec<String> = causes
            .iter()
            .map(|c| {
                let text = String::from_utf8_lossy(&c.info);
                let text = text.trim_matches(char::from(0)).trim();
                if text.is_empty() || !text.chars().all(|ch| !ch.is_control()) {
                    format!("{:?}", c.code)
                } else {
                    format!("{:?} ({text})", c.code)
                }
            })
            .collect();
        format!("by the {side}: {}", list.join(", "))
    };
    match r {
        AbortReason::Peer(c) => causes("peer", c),
        AbortReason::Local(c) => causes("local end", std::slice::from_ref(c)),
        other => format!("{other:?}"),
    }
}

/// A human-readable description of why a peer was considered unreachable.
pub fn lost_text(r: LostReason) -> &'static str {
    match r {
        LostReason::HandshakeTimeout => "no answer to the handshake",
        LostReason::MaxRetransmissions => "too many retransmissions",
        LostReason::StaleCookie => "the peer kept rejecting the cookie as stale",
        _ => "peer unreachable",
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outgoing {
    /// The stream.
    pub stream: u16,
    /// The Payload Protocol Identifier.
    pub ppid: Ppid,
    /// The user data.
    pub data: Vec<u8>,
    /// Unordered delivery and the other per-message options the stack supports.
    pub options: SendOptions,
}

impl Outgoing {
    /// An ordered message on `stream`.
    pub fn new(stream: u16, ppid: Ppid, data: Vec<u8>) -> Self {
        Outgoing {
            stream,
            ppid,
            data,
            options: SendOptions::default(),
        }
    }

    /// With these options.
    pub fn with_options(mut self, options: SendOptions) -> Self {
        self.options = options;
        self
    }
}

/// What an association delivers, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// A received message.
    Message(Message),
    /// An event of the association (`ShutdownReceived`, `Aborted`, ..., and last `Closed`).
    /// Events are delivered after the messages received before them.
    Event(Event),
    /// The stack refused a queued message (invalid stream, too large, shutting down).
    SendFailed {
        /// Why.
        error: SendError,
        /// The message.
        message: Outgoing,
    },
}

/// What a worker knows about an association when it is established.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssociationInfo {
    /// The worker serving it.
    pub worker: usize,
    /// The peer's primary address.
    pub peer: IpAddr,
    /// All peer addresses.
    pub peer_addresses: Vec<IpAddr>,
    /// The peer's port.
    pub peer_port: u16,
    /// Our port.
    pub local_port: u16,
    /// Negotiated outbound streams.
    pub outbound_streams: u16,
    /// Negotiated inbound streams.
    pub inbound_streams: u16,
}

enum Command {
    Listen {
        port: u16,
        accept: SyncSender<Association>,
        reply: SyncSender<Result<(), ListenError>>,
    },
    Unlisten(u16),
    Connect {
        req: Box<ConnectRequest>,
        reply: SyncSender<Result<Association, SocketError>>,
    },
    Kick(AssociationId),
    Shutdown(AssociationId),
    Abort(AssociationId, Vec<u8>),
    Status(AssociationId, SyncSender<Option<AssociationStatus>>),
    /// Reset outgoing streams (RFC 6525), after the messages already queued.
    ResetStreams(
        AssociationId,
        Vec<u16>,
        SyncSender<Option<Result<(), sctp_stack::ReconfError>>>,
    ),
    Release(AssociationId),
}

#[derive(Debug, Default)]
struct AssocShared {
    /// A Kick for the outgoing queue is on its way.
    out_kick: AtomicBool,
    /// The worker waits for room in the incoming queue.
    in_stalled: AtomicBool,
}

struct SocketsInner {
    mailboxes: Vec<MailboxSender<Command>>,
    next: AtomicUsize,
    config: SocketConfig,
}

/// A cloneable handle to a runtime serving sockets. See the [module documentation](self).
#[derive(Clone)]
pub struct Sockets {
    inner: Arc<SocketsInner>,
}

impl fmt::Debug for Sockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sockets")
            .field("workers", &self.inner.mailboxes.len())
            .finish()
    }
}

impl Sockets {
    /// Starts a runtime whose workers serve socket handles.
    pub fn start(
        config: RuntimeConfig,
        links: LinkSpec,
        sockets: SocketConfig,
    ) -> Result<(Runtime, Sockets), RuntimeError> {
        let n = config.workers;
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let cap = sockets.mailbox_capacity;
        let cfg = sockets.clone();
        let rt = Runtime::start(config, links, move |info| {
            let (s, r) = mailbox(cap, info.remote.clone());
            let s2 = s.clone();
            let _ = tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send((info.index, s));
            SocketApp::new(r, s2, cfg.clone(), info.index)
        })?;
        let mut boxes: Vec<Option<MailboxSender<Command>>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok((i, s)) => {
                    if let Some(slot) = boxes.get_mut(i) {
                        *slot = Some(s);
                    }
                }
                Err(_) => {
                    rt.stop();
                    return Err(RuntimeError::Config("a worker did not start"));
                }
            }
        }
        let mailboxes: Vec<_> = boxes.into_iter().flatten().collect();
        if mailboxes.len() != n {
            rt.stop();
            return Err(RuntimeError::Config("a worker did not start"));
        }
        Ok((
            rt,
            Sockets {
                inner: Arc::new(SocketsInner {
                    mailboxes,
                    next: AtomicUsize::new(0),
                    config: sockets,
                }),
            },
        ))
    }

    /// Accepts associations on `port` on every worker; at most `backlog` established
    /// associations wait for [`Listener::accept`] (more are aborted).
    pub fn listen(&self, port: u16, backlog: usize) -> Result<Listener, SocketError> {
        let (accept_tx, accept_rx) = mpsc::sync_channel(backlog.max(1));
        let mut result = Ok(());
        let mut asked = 0;
        for m in &self.inner.mailboxes {
            let (reply, answer) = mpsc::sync_channel(1);
            let cmd = Command::Listen {
                port,
                accept: accept_tx.clone(),
                reply,
            };
            if m.send(cmd).is_err() {
                result = Err(SocketError::Stopped);
                break;
            }
            asked += 1;
            match answer.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    result = Err(SocketError::Listen(e));
                    break;
                }
                Err(_) => {
                    result = Err(SocketError::Stopped);
                    break;
                }
            }
        }
        let listener = Listener {
            port,
            accept: accept_rx,
            inner: Arc::clone(&self.inner),
            workers: asked,
        };
        // On failure, dropping the listener withdraws what was set up.
        result.map(|()| listener)
    }

    /// Starts an association and waits until it is established (or fails, or `timeout`
    /// passes, which aborts it).
    pub fn connect(
        &self,
        req: ConnectRequest,
        timeout: Option<Duration>,
    ) -> Result<Association, SocketError> {
        self.connect_nonblocking(req)?.wait(timeout)
    }

    /// Starts an association without waiting; [`Connecting`] completes it.
    pub fn connect_nonblocking(&self, req: ConnectRequest) -> Result<Connecting, SocketError> {
        let n = self.inner.mailboxes.len().max(1);
        let w = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let (reply, answer) = mpsc::sync_channel(1);
        self.inner
            .mailboxes
            .get(w)
            .ok_or(SocketError::Stopped)?
            .send(Command::Connect {
                req: Box::new(req),
                reply,
            })
            .map_err(|_| SocketError::Stopped)?;
        Ok(Connecting { answer })
    }

    /// The queue sizes in use.
    pub fn config(&self) -> &SocketConfig {
        &self.inner.config
    }
}

/// An association being established by [`Sockets::connect_nonblocking`]. Dropping it before
/// completion aborts the association.
#[derive(Debug)]
pub struct Connecting {
    answer: Receiver<Result<Association, SocketError>>,
}

impl Connecting {
    /// Waits for the outcome (at most `timeout`).
    pub fn wait(self, timeout: Option<Duration>) -> Result<Association, SocketError> {
        match timeout {
            None => self.answer.recv().map_err(|_| SocketError::Stopped)?,
            Some(d) => match self.answer.recv_timeout(d) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => Err(SocketError::Timeout),
                Err(RecvTimeoutError::Disconnected) => Err(SocketError::Stopped),
            },
        }
    }

    /// The outcome if it is known, `Err(WouldBlock)` otherwise.
    pub fn try_finish(&mut self) -> Result<Association, SocketError> {
        match self.answer.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Empty) => Err(SocketError::WouldBlock),
            Err(TryRecvError::Disconnected) => Err(SocketError::Stopped),
        }
    }
}

/// Accepts associations on a port. Dropping it stops listening.
pub struct Listener {
    port: u16,
    accept: Receiver<Association>,
    inner: Arc<SocketsInner>,
    workers: usize,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("port", &self.port)
            .finish()
    }
}

impl Listener {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the next established association.
    pub fn accept(&self) -> Result<Association, SocketError> {
        self.accept.recv().map_err(|_| SocketError::Stopped)
    }

    /// The next established association, waiting at most `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Association, SocketError> {
        match self.accept.recv_timeout(timeout) {
            Ok(a) => Ok(a),
            Err(RecvTimeoutError::Timeout) => Err(SocketError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(SocketError::Stopped),
        }
    }

    /// The next established association if one is waiting.
    pub fn try_accept(&self) -> Result<Association, SocketError> {
        match self.accept.try_recv() {
            Ok(a) => Ok(a),
            Err(TryRecvError::Empty) => Err(SocketError::WouldBlock),
            Err(TryRecvError::Disconnected) => Err(SocketError::Stopped),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for m in self.inner.mailboxes.iter().take(self.workers) {
            let _ = m.send(Command::Unlisten(self.port));
        }
    }
}

/// One SCTP association, from any thread. See the [module documentation](self).
///
/// An `Association` is `Send` and `Sync`: one thread may send while another receives.
pub struct Association {
    id: AssociationId,
    info: AssociationInfo,
    /// Locked only by receiving threads (one normally): the worker never touches it.
    incoming: Mutex<Receiver<Incoming>>,
    outgoing: SyncSender<Outgoing>,
    shared: Arc<AssocShared>,
    mailbox: MailboxSender<Command>,
}

impl fmt::Debug for Association {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Association")
            .field("id", &self.id)
            .field("info", &self.info)
            .finish()
    }
}

impl Association {
    /// The association's id on its worker's endpoint.
    pub fn id(&self) -> AssociationId {
        self.id
    }

    /// Addresses, ports and streams as established.
    pub fn info(&self) -> &AssociationInfo {
        &self.info
    }

    fn kick_out(&self) {
        if !self.shared.out_kick.swap(true, Ordering::SeqCst) {
            let _ = self.mailbox.send(Command::Kick(self.id));
        }
    }

    fn after_recv(&self) {
        if self.shared.in_stalled.load(Ordering::Relaxed)
            && self.shared.in_stalled.swap(false, Ordering::SeqCst)
        {
            let _ = self.mailbox.send(Command::Kick(self.id));
        }
    }

    /// Queues a message, waiting while the outgoing queue is full. `Err(Closed)` once the
    /// association has ended.
    pub fn send(&self, message: Outgoing) -> Result<(), SocketError> {
        self.outgoing
            .send(message)
            .map_err(|_| SocketError::Closed)?;
        self.kick_out();
        Ok(())
    }

    /// Queues a message on `stream` with `ppid`, ordered.
    pub fn send_data(&self, stream: u16, ppid: Ppid, data: Vec<u8>) -> Result<(), SocketError> {
        self.send(Outgoing::new(stream, ppid, data))
    }

    /// Queues a message without waiting; a full queue gives it back.
    pub fn try_send(&self, message: Outgoing) -> Result<(), (SocketError, Outgoing)> {
        match self.outgoing.try_send(message) {
            Ok(()) => {
                self.kick_out();
                Ok(())
            }
            Err(TrySendError::Full(m)) => Err((SocketError::WouldBlock, m)),
            Err(TrySendError::Disconnected(m)) => Err((SocketError::Closed, m)),
        }
    }

    /// The next message or event, waiting for it. `Err(Closed)` after the final
    /// `Event::Closed` was delivered; `Err(Stopped)` if the runtime stopped.
    pub fn recv(&self) -> Result<Incoming, SocketError> {
        let rx = self.incoming.lock().unwrap_or_else(PoisonError::into_inner);
        let r = rx.recv().map_err(|_| SocketError::Closed);
        drop(rx);
        if r.is_ok() {
            self.after_recv();
        }
        r
    }

    /// The next message or event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Incoming, SocketError> {
        let rx = self.incoming.lock().unwrap_or_else(PoisonError::into_inner);
        let r = match rx.recv_timeout(timeout) {
            Ok(i) => Ok(i),
            Err(RecvTimeoutError::Timeout) => Err(SocketError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(SocketError::Closed),
        };
        drop(rx);
        if r.is_ok() {
            self.after_recv();
        }
        r
    }

    /// The next message or event if one is waiting (`WouldBlock` also while another thread
    /// is receiving).
    pub fn try_recv(&self) -> Result<Incoming, SocketError> {
        let Ok(rx) = self.incoming.try_lock() else {
            return Err(SocketError::WouldBlock);
        };
        let r = match rx.try_recv() {
            Ok(i) => Ok(i),
            Err(TryRecvError::Empty) => Err(SocketError::WouldBlock),
            Err(TryRecvError::Disconnected) => Err(SocketError::Closed),
        };
        drop(rx);
        if r.is_ok() {
            self.after_recv();
        }
        r
    }

    /// Starts a graceful shutdown once every message queued so far has been handed to the
    /// stack (RFC 9260 §9.2). Receiving continues until `Event::Closed`.
    pub fn shutdown(&self) -> Result<(), SocketError> {
        self.mailbox
            .send(Command::Shutdown(self.id))
            .map_err(|_| SocketError::Stopped)
    }

    /// Aborts the association at once with a User-Initiated Abort cause carrying `reason`.
    pub fn abort(&self, reason: &[u8]) -> Result<(), SocketError> {
        self.mailbox
            .send(Command::Abort(self.id, reason.to_vec()))
            .map_err(|_| SocketError::Stopped)
    }

    /// Resets our outgoing `streams` (empty: all) with RE-CONFIG (RFC 6525) once the
    /// messages queued so far are handed to the stack (as far as it takes them):
    /// `Ok(None)` once the association is gone, `Ok(Some(Err(_)))` when the stack refused
    /// the request. The peer's answer arrives as `Event::StreamReset`.
    pub fn reset_streams(
        &self,
        streams: &[u16],
    ) -> Result<Option<Result<(), sctp_stack::ReconfError>>, SocketError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.mailbox
            .send(Command::ResetStreams(self.id, streams.to_vec(), reply))
            .map_err(|_| SocketError::Stopped)?;
        answer.recv().map_err(|_| SocketError::Stopped)
    }

    /// A snapshot of the association's state and counters; `None` once it is gone.
    pub fn status(&self) -> Result<Option<AssociationStatus>, SocketError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.mailbox
            .send(Command::Status(self.id, reply))
            .map_err(|_| SocketError::Stopped)?;
        answer.recv().map_err(|_| SocketError::Stopped)
    }
}

impl Drop for Association {
    fn drop(&mut self) {
        let _ = self.mailbox.try_send(Command::Release(self.id));
    }
}

/// Worker-side state of one association served to a handle.
struct Entry {
    /// Towards the handle; `None` before the handle exists and after it was released.
    to_user: Option<SyncSender<Incoming>>,
    from_user: Option<Receiver<Outgoing>>,
    shared: Arc<AssocShared>,
    /// A message the stack refused with `WouldBlock`, retried on `SendSpace`.
    pending_out: Option<Outgoing>,
    /// An item waiting for room in the incoming queue.
    held: Option<Incoming>,
    /// Events waiting until the messages received before them were delivered.
    events: VecDeque<Event>,
    /// The stack may hold unread messages.
    readable: bool,
    /// `Event::Closed` was seen.
    closed: bool,
    /// Shut down once the outgoing queue is empty.
    shutdown_requested: bool,
    /// The handle was dropped.
    released: bool,
    /// The connect call waiting for the handshake.
    connect_reply: Option<SyncSender<Result<Association, SocketError>>>,
    /// Why a connecting association failed, reported with `Closed`.
    failure: Option<SocketError>,
}

impl Entry {
    fn new() -> Self {
        Entry {
            to_user: None,
            from_user: None,
            shared: Arc::new(AssocShared::default()),
            pending_out: None,
            held: None,
            events: VecDeque::new(),
            readable: true,
            closed: false,
            shutdown_requested: false,
            released: false,
            connect_reply: None,
            failure: None,
        }
    }
}

/// The application that serves socket handles on one worker.
struct SocketApp {
    mailbox: MailboxReceiver<Command>,
    /// A sender into our own mailbox, for the handles this worker creates.
    own: MailboxSender<Command>,
    config: SocketConfig,
    worker: usize,
    listeners: HashMap<u16, SyncSender<Association>>,
    entries: HashMap<AssociationId, Entry>,
}

/// Commands handled per `poll`.
const COMMAND_BURST: usize = 1024;

impl SocketApp {
    fn new(
        mailbox: MailboxReceiver<Command>,
        own: MailboxSender<Command>,
        config: SocketConfig,
        worker: usize,
    ) -> Self {
        SocketApp {
            mailbox,
            own,
            config,
            worker,
            listeners: HashMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Creates the handle of an established association.
    fn make_handle(
        &mut self,
        cx: &mut Context<'_>,
        id: AssociationId,
    ) -> Option<(Association, SyncSender<Incoming>, Receiver<Outgoing>)> {
        let own = self.own.clone();
        let status = cx.association(id)?.status()?;
        let (to_user, incoming) = mpsc::sync_channel(self.config.recv_queue.max(1));
        let (outgoing, from_user) = mpsc::sync_channel(self.config.send_queue.max(1));
        let shared = self.entries.get(&id).map_or_else(
            || Arc::new(AssocShared::default()),
            |e| Arc::clone(&e.shared),
        );
        let info = AssociationInfo {
            worker: self.worker,
            peer: status.primary,
            peer_addresses: status.peer_addresses.clone(),
            peer_port: status.peer_port,
            local_port: status.local_port,
            outbound_streams: status.outbound_streams,
            inbound_streams: status.inbound_streams,
        };
        Some((
            Association {
                id,
                info,
                incoming: Mutex::new(incoming),
                outgoing,
                shared,
                mailbox: own,
            },
            to_user,
            from_user,
        ))
    }

    fn on_connected(&mut self, cx: &mut Context<'_>, id: AssociationId) {
        let reply = match self.entries.get_mut(&id) {
            Some(e) => e.connect_reply.take(),
            None => None,
        };
        let accepted = !self.entries.contains_key(&id);
        if accepted {
            let port = cx
                .association(id)
                .and_then(|a| a.status())
                .map(|s| s.local_port);
            if port.is_none_or(|p| !self.listeners.contains_key(&p)) {
                abort(cx, id, b"not accepting");
                return;
            }
            self.entries.insert(id, Entry::new());
        }
        let Some((handle, to_user, from_user)) = self.make_handle(cx, id) else {
            abort(cx, id, b"association handle unavailable");
            return;
        };
        if let Some(e) = self.entries.get_mut(&id) {
            e.to_user = Some(to_user);
            e.from_user = Some(from_user);
        }
        let delivered = if accepted {
            let port = handle.info.local_port;
            // Backlog full or listener gone: the handle is dropped here.
            match self.listeners.get(&port) {
                Some(l) => l.try_send(handle).is_ok(),
                None => false,
            }
        } else {
            reply.is_some_and(|r| r.send(Ok(handle)).is_ok())
        };
        if !delivered {
            abort(cx, id, b"not accepted");
            if let Some(e) = self.entries.get_mut(&id) {
                e.released = true;
                e.to_user = None;
            }
        }
    }

    fn handle_command(&mut self, cx: &mut Context<'_>, cmd: Command) {
        match cmd {
            Command::Listen {
                port,
                accept,
                reply,
            } => {
                let r = cx.listen(port);
                if r.is_ok() {
                    self.listeners.insert(port, accept);
                }
                let _ = reply.send(r);
            }
            Command::Unlisten(port) => {
                if self.listeners.remove(&port).is_some() {
                    cx.close_listener(port);
                }
            }
            Command::Connect { req, reply } => match cx.connect(*req) {
                Ok(id) => {
                    let mut e = Entry::new();
                    e.connect_reply = Some(reply);
                    self.entries.insert(id, e);
                }
                Err(e) => {
                    let _ = reply.send(Err(SocketError::Connect(e)));
                }
            },
            Command::Kick(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.shared.out_kick.store(false, Ordering::SeqCst);
                    pump_out(cx, id, e);
                    pump_in(cx, id, e);
                }
                self.reap(id);
            }
            Command::Shutdown(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.shutdown_requested = true;
                    pump_out(cx, id, e);
                }
            }
            Command::Abort(id, reason) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.pending_out = None;
                    abort(cx, id, &reason);
                }
            }
            Command::Status(id, reply) => {
                let s = cx.association(id).and_then(|a| a.status());
                let _ = reply.send(s);
            }
            Command::ResetStreams(id, streams, reply) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    pump_out(cx, id, e);
                }
                let r = cx.association(id).map(|mut a| a.reset_streams(&streams));
                let _ = reply.send(r);
            }
            Command::Release(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.released = true;
                    e.to_user = None;
                    e.held = None;
                    e.events.clear();
                    if !e.closed {
                        e.shutdown_requested = true;
                        pump_out(cx, id, e);
                    }
                    pump_in(cx, id, e);
                }
                self.reap(id);
            }
        }
    }

    /// Forgets an association whose handle has seen everything.
    fn reap(&mut self, id: AssociationId) {
        if self
            .entries
            .get(&id)
            .is_some_and(|e| e.closed && e.held.is_none() && e.events.is_empty() && !e.readable)
        {
            self.entries.remove(&id);
        }
    }
}

fn abort(cx: &mut Context<'_>, id: AssociationId, reason: &[u8]) {
    if let Some(mut a) = cx.association(id) {
        a.abort(reason);
    }
}

/// Moves queued outgoing messages into the stack while it takes them.
fn pump_out(cx: &mut Context<'_>, id: AssociationId, e: &mut Entry) {
    if e.closed {
        return;
    }
    loop {
        let msg = match e.pending_out.take() {
            Some(m) => m,
            None => match e.from_user.as_ref().map(Receiver::try_recv) {
                Some(Ok(m)) => m,
                _ => break,
            },
        };
        let Some(mut a) = cx.association(id) else {
            return;
        };
        // The stack consumes what it is given even when it refuses it; hand it a copy so a
        // refused message can be retried.
        match a.send(msg.stream, msg.ppid, &msg.data[..], msg.options) {
            Ok(()) => {}
            // A stream held for a reset (RFC 6525) waits like a full buffer.
            Err(SendError::WouldBlock | SendError::ResetPending) => {
                e.pending_out = Some(msg);
                return;
            }
            Err(error) => {
                e.held_or_queue_failure(error, msg);
            }
        }
    }
    if e.shutdown_requested {
        e.shutdown_requested = false;
        if let Some(mut a) = cx.association(id) {
            a.shutdown();
        }
    }
}

impl Entry {
    fn held_or_queue_failure(&mut self, error: SendError, message: Outgoing) {
        if self.released {
            return;
        }
        // Send failures are rare; they wait behind the item already held.
        if self.held.is_none() {
            self.held = Some(Incoming::SendFailed { error, message });
        } else {
            tracing::debug!("dropping a send failure report ({error}): the handle is not reading");
        }
    }
}

/// Delivers held items, then messages from the stack, then events, while the handle's
/// incoming queue has room.
fn pump_in(cx: &mut Context<'_>, id: AssociationId, e: &mut Entry) {
    if e.released || e.to_user.is_none() {
        // Nobody reads: drain the stack so a closed association's slot is freed.
        if let Some(mut a) = cx.association(id) {
            for _ in 0..100_000 {
                if a.recv().is_none() {
                    break;
                }
            }
        }
        e.readable = false;
        e.held = None;
        e.events.clear();
        return;
    }
    loop {
        if let Some(item) = e.held.take() {
            let Some(tx) = &e.to_user else { return };
            match tx.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => {
                    // Announce the stall, then look once more: the reader may have made room
                    // before it could see the flag.
                    e.shared.in_stalled.store(true, Ordering::SeqCst);
                    match tx.try_send(item) {
                        Ok(()) => {
                            e.shared.in_stalled.store(false, Ordering::SeqCst);
                        }
                        Err(TrySendError::Full(item)) => {
                            e.held = Some(item);
                            return;
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            e.released = true;
                            return;
                        }
                    }
                }
                Err(TrySendError::Disconnected(_)) => {
                    e.released = true;
                    return;
                }
            }
        }
        if e.readable {
            match cx.association(id).and_then(|mut a| a.recv()) {
                Some(m) => {
                    e.held = Some(Incoming::Message(m));
                    continue;
                }
                None => e.readable = false,
            }
        }
        match e.events.pop_front() {
            Some(ev) => e.held = Some(Incoming::Event(ev)),
            None => break,
        }
    }
    if e.closed && e.held.is_none() && e.events.is_empty() && !e.readable {
        // Everything delivered: the handle sees the end of the stream.
        e.to_user = None;
        e.from_user = None;
    }
}

impl App for SocketApp {
    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event) {
        match event {
            Event::Connected => self.on_connected(cx, id),
            Event::DataReadable => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.readable = true;
                    pump_in(cx, id, e);
                }
            }
            Event::SendSpace => {
                if let Some(e) = self.entries.get_mut(&id) {
                    pump_out(cx, id, e);
                }
            }
            Event::Closed => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.closed = true;
                    e.pending_out = None;
                    if let Some(reply) = e.connect_reply.take() {
                        let why = e.failure.take().unwrap_or(SocketError::Closed);
                        let _ = reply.send(Err(why));
                        e.released = true;
                    } else {
                        e.events.push_back(Event::Closed);
                        e.readable = true;
                    }
                    pump_in(cx, id, e);
                }
                self.reap(id);
            }
            other => {
                if let Some(e) = self.entries.get_mut(&id) {
                    if e.connect_reply.is_some() {
                        match &other {
                            Event::Aborted(r) => e.failure = Some(SocketError::Aborted(r.clone())),
                            Event::CommunicationLost(r) => e.failure = Some(SocketError::Lost(*r)),
                            _ => {}
                        }
                    } else if !e.released {
                        e.events.push_back(other);
                        e.readable = true;
                        pump_in(cx, id, e);
                    }
                }
            }
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        for _ in 0..COMMAND_BURST {
            let Some(cmd) = self.mailbox.try_recv() else {
                break;
            };
            self.handle_command(cx, cmd);
        }
    }

    fn has_pending_input(&self) -> bool {
        self.mailbox.has_pending()
    }

    fn stop(&mut self, cx: &mut Context<'_>) {
        for (id, e) in self.entries.drain() {
            if !e.closed {
                abort(cx, id, b"runtime stopped");
            }
            if let Some(reply) = e.connect_reply {
                let _ = reply.send(Err(SocketError::Stopped));
            }
        }
    }
}
