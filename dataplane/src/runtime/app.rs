//! The in-worker application interface: [`App`], its [`Context`], and the [`mailbox`] through
//! which other threads feed an application.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, atomic::AtomicBool};

use sctp_stack::time::Timestamp;
use sctp_stack::{
    AssociationId, AssociationMut, ConnectError, ConnectRequest, Endpoint, Event, ListenError,
};

use super::steer::port_owner;
use crate::link::{Backend, Waker};

/// An application running on a worker, run to completion: every callback runs on the worker
/// thread between two bursts and must not block. One instance exists per worker (made by the
/// factory given to [`Runtime::start`](super::Runtime::start)); it sees the associations of
/// its worker's endpoint shard only.
///
/// Per loop iteration the worker calls, in this order: [`event`](Self::event) for every
/// endpoint event, [`poll`](Self::poll) once, then (after transmitting) [`timeout`](Self::timeout)
/// when [`poll_timeout`](Self::poll_timeout) has passed. Everything an application does
/// through the [`Context`] (sending, connecting, closing) goes out in the same iteration's
/// transmit burst.
pub trait App {
    /// Called once on the worker thread before the first burst: listen, connect, arm timers.
    fn start(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// An event of association `id` of this worker. `Event::Closed` is the last one; the id
    /// is invalid afterwards.
    fn event(&mut self, cx: &mut Context<'_>, id: AssociationId, event: Event);

    /// Called once per loop iteration after the events: produce data, read input queues.
    fn poll(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// The application's next deadline, if any.
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }

    /// Called when [`poll_timeout`](Self::poll_timeout) has passed.
    fn timeout(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Whether input from other threads waits (e.g. in a [`mailbox`]); the worker does not go
    /// to sleep while this is true.
    fn has_pending_input(&self) -> bool {
        false
    }

    /// The runtime is stopping: the last callback. Associations still open are abandoned
    /// (the peer notices through its timers); abort them here to tell it at once.
    fn stop(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }
}

/// What a worker is, for the application factory and the application.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// This worker's index, in `0..workers`; also its endpoint shard.
    pub index: usize,
    /// Number of workers of the runtime.
    pub workers: usize,
    /// The packet I/O backend.
    pub backend: Backend,
    /// The local UDP port under UDP encapsulation (RFC 6951), `None` on raw IP.
    pub local_udp_port: Option<u16>,
    /// The peer's UDP port used for outgoing associations when the connect request leaves
    /// it at 0 (UDP encapsulation only; 9899 by default).
    pub remote_udp_port: u16,
    /// A handle that wakes this worker from other threads.
    pub remote: WorkerRemote,
}

/// Per-worker state shared with other threads.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    pub(crate) waker: Waker,
    pub(crate) sleeping: AtomicBool,
}

/// State shared by all workers and handles of a runtime.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) workers: Vec<WorkerShared>,
}

/// A cloneable, thread-safe handle to one worker: wakes it after work was published for it.
#[derive(Clone)]
pub struct WorkerRemote {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
}

impl fmt::Debug for WorkerRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerRemote")
            .field("index", &self.index)
            .finish()
    }
}

impl WorkerRemote {
    /// The worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Wakes the worker if it sleeps. Call after making work visible to it (a queue push);
    /// the worker re-checks its queues after announcing that it sleeps, so no wake-up is
    /// lost, and a busy worker costs no system call.
    pub fn notify(&self) {
        // Pairs with the fence between `sleeping = true` and the queue check in the worker.
        fence(Ordering::SeqCst);
        if let Some(w) = self.shared.workers.get(self.index)
            && w.sleeping.load(Ordering::SeqCst)
        {
            w.waker.wake();
        }
    }

    /// Asks every worker of the runtime to stop.
    pub fn stop_runtime(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.shared.workers {
            w.waker.wake();
        }
    }

    /// Whether the runtime was asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }
}

/// Chooses ephemeral local ports whose INIT worker is this worker (see
/// [`steer`](super::steer)).
#[derive(Debug)]
pub(crate) struct PortPicker {
    next: u16,
    pub(crate) listening: Vec<u16>,
}

const EPHEMERAL_FIRST: u16 = 49152;

impl PortPicker {
    pub(crate) fn new(seed: u16) -> Self {
        PortPicker {
            next: EPHEMERAL_FIRST + seed % 16384,
            listening: Vec::new(),
        }
    }

    fn candidate(&mut self) -> u16 {
        let p = self.next;
        self.next = if p == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            p + 1
        };
        p
    }
}

/// The application's access to its worker: the endpoint shard and the runtime.
pub struct Context<'a> {
    pub(crate) ep: &'a mut Endpoint,
    pub(crate) now: Timestamp,
    pub(crate) info: &'a WorkerInfo,
    pub(crate) ports: &'a mut PortPicker,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("worker", &self.info.index)
            .field("now", &self.now)
            .finish()
    }
}

impl Context<'_> {
    /// The current time (taken at the start of the loop iteration).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// What this worker is.
    pub fn info(&self) -> &WorkerInfo {
        self.info
    }

    /// Accepts associations on `port` on this worker's shard. A multi-worker server calls
    /// this on every worker (INITs are spread over the workers).
    pub fn listen(&mut self, port: u16) -> Result<(), ListenError> {
        self.ep.listen(port)?;
        self.ports.listening.push(port);
        Ok(())
    }

    /// Stops accepting associations on `port`.
    pub fn close_listener(&mut self, port: u16) {
        self.ep.close_listener(port);
        self.ports.listening.retain(|&p| p != port);
    }

    /// Starts an association; `Event::Connected` follows. Under UDP encapsulation a request
    /// without a remote UDP port uses [`WorkerInfo::remote_udp_port`]. With several workers
    /// and no local port, an ephemeral port is chosen whose INIT worker is this one, so that
    /// a restart of the peer reaches this worker.
    pub fn connect(&mut self, mut req: ConnectRequest) -> Result<AssociationId, ConnectError> {
        if self.info.local_udp_port.is_some() && req.encaps_port == 0 {
            req.encaps_port = self.info.remote_udp_port;
        }
        if self.info.workers <= 1 || req.local_port != 0 {
            return self.ep.connect(self.now, req);
        }
        for _ in 0..16384 {
            let p = self.ports.candidate();
            if self.ports.listening.contains(&p)
                || port_owner(req.remote_port, p, self.info.workers) != self.info.index
            {
                continue;
            }
            match self.ep.connect(self.now, req.clone().with_local_port(p)) {
                Err(ConnectError::AlreadyConnected) => continue,
                other => return other,
            }
        }
        Err(ConnectError::NoEphemeralPort)
    }

    /// Commands on association `id`, or `None` if it is gone.
    pub fn association(&mut self, id: AssociationId) -> Option<AssociationMut<'_>> {
        self.ep.association(id)
    }

    /// The endpoint shard itself, for what the context does not wrap (statistics, counts).
    pub fn endpoint(&mut self) -> &mut Endpoint {
        self.ep
    }

    /// A handle that wakes this worker from other threads.
    pub fn remote(&self) -> WorkerRemote {
        self.info.remote.clone()
    }

    /// Asks every worker of the runtime to stop after this iteration.
    pub fn stop_runtime(&self) {
        self.info.remote.stop_runtime();
    }
}

/// The sending side of a [`mailbox`]: cloneable, usable from any thread.
pub struct MailboxSender<T> {
    tx: SyncSender<T>,
    pending: Arc<AtomicUsize>,
    remote: WorkerRemote,
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        MailboxSender {
            tx: self.tx.clone(),
            pending: Arc::clone(&self.pending),
            remote: self.remote.clone(),
        }
    }
}

impl<T> fmt::Debug for MailboxSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxSender")
            .field("worker", &self.remote.index)
            .finish()
    }
}

/// The worker's side of a [`mailbox`].
pub struct MailboxReceiver<T> {
    rx: Receiver<T>,
    pending: Arc<AtomicUsize>,
}

impl<T> fmt::Debug for MailboxReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxReceiver")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

/// A bounded queue from any thread into a worker's application, which wakes the worker when
/// it sleeps. The application drains it in [`App::poll`] and reports
/// [`MailboxReceiver::has_pending`] from [`App::has_pending_input`].
pub fn mailbox<T>(capacity: usize, remote: WorkerRemote) -> (MailboxSender<T>, MailboxReceiver<T>) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    let pending = Arc::new(AtomicUsize::new(0));
    (
        MailboxSender {
            tx,
            pending: Arc::clone(&pending),
            remote,
        },
        MailboxReceiver { rx, pending },
    )
}

impl<T> MailboxSender<T> {
    /// Queues `item`, blocking while the mailbox is full. Fails (giving the item back) when
    /// the worker is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        // Counted before it is queued, so the worker never sees fewer pending items than
        // queued ones (it may see more for a moment, and then just does not sleep).
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::SendError(item)) = self.tx.send(item) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(item);
        }
        self.remote.notify();
        Ok(())
    }

    /// Queues `item` without blocking.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.tx.try_send(item) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        self.remote.notify();
        Ok(())
    }

    /// The worker this mailbox feeds.
    pub fn worker(&self) -> usize {
        self.remote.index
    }
}

impl<T> MailboxReceiver<T> {
    /// The next item, without blocking.
    pub fn try_recv(&self) -> Option<T> {
        let item = self.rx.try_recv().ok()?;
        self.pending.fetch_sub(1, Ordering::SeqCst);
        Some(item)
    }

    /// Whether items are queued (or about to be).
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
    }
}
