//! One worker: its endpoint shard, link, hand-off rings, application and loop.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest as MioInterest, Poll, Token};
use sctp_stack::time::Timestamp;
use sctp_stack::{Datagram, Endpoint};

use super::app::{App, Context, PortPicker, Shared, WorkerInfo};
use super::capture::Capture;
use super::spsc::{Consumer, Producer};
use super::steer::{Owner, owner};
use super::{Clock, IdleMode, RuntimeError, WorkerStats};
use crate::AnyLink;
use crate::link::{Interest, Link, WakeTarget, Waker};
use crate::packet::{BufferPool, PacketBuf, RxBatch, RxMeta, TxBatch, TxMeta};

/// A packet handed from the worker that received it to the worker that owns it.
#[derive(Debug)]
pub(crate) struct Handoff {
    pub(crate) meta: RxMeta,
    pub(crate) buf: PacketBuf,
}

/// How the packets a worker's link receives relate to the worker's share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SteerMode {
    /// Everything received is this worker's (one worker, or kernel filters in place).
    Exclusive,
    /// Each packet reaches one worker, not necessarily its owner: forward it.
    HandOff,
    /// Every worker receives every packet (raw sockets without filters): keep the share.
    Replicated,
}

/// What one received packet does on this worker.
#[derive(Clone, Copy, Debug)]
enum Route {
    Local,
    Drop,
    Forward(usize),
    /// Processed here and copied to every other worker (T-bit packets).
    LocalAndCopies,
}

const WAKE_TOKEN: Token = Token(usize::MAX);
/// Packets taken from one hand-off ring per loop iteration (fairness towards the link).
const INBOX_BURST: usize = 256;
/// A receive burst of at least this many packets counts as a busy link (see the loop).
const BUSY_BURST: usize = 4;
/// Events dispatched per loop iteration before the worker moves on to transmit.
const EVENT_BURST: usize = 4096;

/// The `mio` waker behind a worker's [`Waker`].
struct MioWake(mio::Waker);

impl WakeTarget for MioWake {
    fn wake(&self) {
        // An error means the eventfd counter is saturated: a wake-up is pending anyway.
        let _ = self.0.wake();
    }
}

/// How a worker sleeps when it has nothing to do.
pub(crate) enum Idle {
    /// A readiness poll over the link's descriptors and a waker: every descriptor-based
    /// backend is waited on the same way, on any kernel.
    Mio {
        poll: Poll,
        events: Events,
        fds: Vec<RawFd>,
        write_interest: bool,
    },
    /// The link's own [`Link::wait`] (io_uring completions, the memory fabric's clock).
    Link,
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Idle::Mio { fds, .. } => f.debug_struct("Idle::Mio").field("fds", fds).finish(),
            Idle::Link => f.write_str("Idle::Link"),
        }
    }
}

impl Idle {
    /// The idle strategy for `link` and the waker that interrupts it.
    pub(crate) fn new(link: &AnyLink) -> Result<(Idle, Waker), RuntimeError> {
        let Some(fds) = link.poll_fds() else {
            return Ok((Idle::Link, link.waker()));
        };
        let poll = Poll::new().map_err(|e| RuntimeError::Io("mio poll", e))?;
        for (i, fd) in fds.iter().enumerate() {
            poll.registry()
                .register(&mut SourceFd(fd), Token(i), MioInterest::READABLE)
                .map_err(|e| RuntimeError::Io("mio register", e))?;
        }
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)
            .map_err(|e| RuntimeError::Io("mio waker", e))?;
        Ok((
            Idle::Mio {
                poll,
                events: Events::with_capacity(8),
                fds,
                write_interest: false,
            },
            Waker::new(Arc::new(MioWake(waker))),
        ))
    }

    fn wait(
        &mut self,
        link: &mut AnyLink,
        want_write: bool,
        timeout: Option<Duration>,
    ) -> Result<(), RuntimeError> {
        match self {
            Idle::Mio {
                poll,
                events,
                fds,
                write_interest,
            } => {
                if *write_interest != want_write {
                    let interest = if want_write {
                        MioInterest::READABLE | MioInterest::WRITABLE
                    } else {
                        MioInterest::READABLE
                    };
                    for (i, fd) in fds.iter().enumerate() {
                        poll.registry()
                            .reregister(&mut SourceFd(fd), Token(i), interest)
                            .map_err(|e| RuntimeError::Io("mio reregister", e))?;
                    }
                    *write_interest = want_write;
                }
                match poll.poll(events, timeout) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
                    Err(e) => Err(RuntimeError::Io("mio poll", e)),
                }
            }
            Idle::Link => {
                let interest = if want_write {
                    Interest::ReadWrite
                } else {
                    Interest::Read
                };
                link.wait(interest, timeout).map_err(RuntimeError::Link)?;
                Ok(())
            }
        }
    }
}

/// Everything one worker owns.
pub(crate) struct Worker<A: App> {
    pub(crate) info: WorkerInfo,
    pub(crate) ep: Endpoint,
    pub(crate) link: AnyLink,
    pub(crate) idle: Idle,
    pub(crate) idle_mode: IdleMode,
    pub(crate) mode: SteerMode,
    pub(crate) rx: RxBatch,
    pub(crate) tx: TxBatch,
    /// Rings from every other worker (empty slot for this one).
    pub(crate) inbox: Vec<Option<Consumer<Handoff>>>,
    /// Rings to every other worker.
    pub(crate) outbox: Vec<Option<Producer<Handoff>>>,
    pub(crate) pool: BufferPool,
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Clock,
    pub(crate) capture: Option<Arc<Capture>>,
    pub(crate) ports: PortPicker,
    pub(crate) stats: WorkerStats,
    pub(crate) app: A,
}

impl<A: App> Worker<A> {
    fn cx<'a>(
        ep: &'a mut Endpoint,
        now: Timestamp,
        info: &'a WorkerInfo,
        ports: &'a mut PortPicker,
    ) -> Context<'a> {
        Context {
            ep,
            now,
            info,
            ports,
        }
    }

    /// Runs until the runtime stops or the link fails.
    pub(crate) fn run(mut self) -> Result<WorkerStats, RuntimeError> {
        let r = self.run_loop();
        if r.is_err() {
            // A failed worker stops the others: the runtime is incomplete without it.
            self.info.remote.stop_runtime();
        }
        if let Some(c) = &self.capture {
            c.flush();
        }
        self.stats.link = self.link.stats();
        self.stats.endpoint = self.ep.stats().clone();
        r.map(|()| self.stats)
    }

    fn run_loop(&mut self) -> Result<(), RuntimeError> {
        let me = self.info.index;
        {
            let now = self.clock.now();
            let mut cx = Self::cx(&mut self.ep, now, &self.info, &mut self.ports);
            self.app.start(&mut cx);
        }
        let mut to_wake = vec![false; self.info.workers];
        // When the worker last had something to do (for `IdleMode::SpinThenBlock`).
        let mut last_busy = self.clock.now();
        loop {
            let now = self.clock.now();
            if self.shared.stop.load(Ordering::Relaxed) {
                let mut cx = Self::cx(&mut self.ep, now, &self.info, &mut self.ports);
                self.app.stop(&mut cx);
                // One last burst, so aborts and shutdowns the application sent go out.
                let _ = self.transmit(now);
                return Ok(());
            }
            self.stats.iterations += 1;
            // Whether another iteration must run before the worker may wait: something may
            // be left that no readiness event or wake-up would announce. A burst that
            // emptied the link's queue needs no second `recv` (one system call less per
            // wake-up): new packets make the link readable again.
            let mut again = false;

            // 1. Receive burst, steered.
            let n = self.link.recv(&mut self.rx).map_err(RuntimeError::Link)?;
            let mut busy = n > 0;
            if n > 0 {
                again |= !self.rx.drained();
                self.steer_burst(now, &mut to_wake);
            }
            // Packets other workers handed over (the idle check below looks at the rings
            // again before sleeping).
            let handed = self.drain_inbox(now);
            again |= handed;
            busy |= handed;

            // 2. Application: events, then its own work.
            again |= self.dispatch_events(now) == EVENT_BURST;
            {
                let mut cx = Self::cx(&mut self.ep, now, &self.info, &mut self.ports);
                self.app.poll(&mut cx);
            }
            again |= self.dispatch_events(now) == EVENT_BURST;

            // 3. Transmit burst (until the endpoint has nothing more or the kernel's send
            // buffer is full; then the idle wait asks for writability).
            let (sent, tx_blocked) = self.transmit(now)?;
            busy |= sent;
            // After sending, poll the link once more unless its last burst emptied it and was
            // small: on io_uring that reaps the send completions and the replies they provoke
            // without a sleep (measured: 7 % more raw-IP throughput), and a busy link (bulk
            // transfer, traffic to itself) is read again at once instead of through a
            // readiness wait that would return immediately. A quiet request/response exchange
            // (a packet or two per wake-up) saves the empty receive and waits.
            again |= sent && (!self.rx.drained() || n >= BUSY_BURST);
            // Events raised while transmitting are delivered now; whatever the application
            // does about them goes out in another iteration.
            again |= self.dispatch_events(now) > 0;
            for (w, flag) in to_wake.iter_mut().enumerate() {
                if std::mem::take(flag) && w != me {
                    self.remote_notify(w);
                }
            }

            // 4. Timers: what they produce goes out in the next iteration.
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
                again = true;
            }
            if self.app.poll_timeout().is_some_and(|t| t <= now) {
                let mut cx = Self::cx(&mut self.ep, now, &self.info, &mut self.ports);
                self.app.timeout(&mut cx);
                again = true;
            }
            if again {
                continue;
            }

            // 5. Idle.
            match self.idle_mode {
                IdleMode::BusyPoll => {
                    std::hint::spin_loop();
                    continue;
                }
                IdleMode::SpinThenBlock(budget) => {
                    if busy {
                        last_busy = now;
                    }
                    if now.saturating_duration_since(last_busy) < budget {
                        std::hint::spin_loop();
                        continue;
                    }
                }
                IdleMode::Block => {}
            }
            let deadline = match (self.ep.poll_timeout(), self.app.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleeping = &self.shared.workers[me].sleeping;
            sleeping.store(true, Ordering::SeqCst);
            // Pairs with the fence in `WorkerRemote::notify`: either the producer sees
            // `sleeping` and wakes us, or we see its item here.
            fence(Ordering::SeqCst);
            let pending = self.inbox.iter().flatten().any(|c| !c.is_empty())
                || self.app.has_pending_input()
                || self.shared.stop.load(Ordering::SeqCst);
            if !pending {
                let timeout = deadline.map(|d| d.saturating_duration_since(self.clock.now()));
                if timeout != Some(Duration::ZERO) {
                    self.stats.sleeps += 1;
                    self.idle.wait(&mut self.link, tx_blocked, timeout)?;
                }
            }
            sleeping.store(false, Ordering::SeqCst);
        }
    }

    fn remote_notify(&self, w: usize) {
        fence(Ordering::SeqCst);
        if let Some(ws) = self.shared.workers.get(w)
            && ws.sleeping.load(Ordering::SeqCst)
        {
            ws.waker.wake();
        }
    }

    /// Routes every packet of the receive burst: into the local endpoint, to its owner, or
    /// nowhere.
    fn steer_burst(&mut self, now: Timestamp, to_wake: &mut [bool]) {
        let me = self.info.index;
        let workers = self.info.workers;
        for p in self.rx.iter() {
            let route = match (self.mode, owner(p.data, workers)) {
                (SteerMode::Exclusive, _) => Route::Local,
                (SteerMode::Replicated, Owner::Worker(w)) if w != me => Route::Drop,
                (SteerMode::Replicated, _) => Route::Local,
                (SteerMode::HandOff, Owner::Worker(w)) if w == me => Route::Local,
                (SteerMode::HandOff, Owner::Worker(w)) => Route::Forward(w),
                (SteerMode::HandOff, Owner::All) => Route::LocalAndCopies,
            };
            let local = match route {
                Route::Local => true,
                Route::Drop => false,
                Route::Forward(w) => {
                    forward(
                        &mut self.outbox,
                        &mut self.pool,
                        &mut self.stats,
                        w,
                        p.meta,
                        p.data,
                    );
                    to_wake[w] = true;
                    false
                }
                Route::LocalAndCopies => {
                    for w in (0..workers).filter(|&w| w != me) {
                        forward(
                            &mut self.outbox,
                            &mut self.pool,
                            &mut self.stats,
                            w,
                            p.meta,
                            p.data,
                        );
                        to_wake[w] = true;
                    }
                    true
                }
            };
            if local {
                if let Some(c) = &self.capture {
                    c.rx(now, &p.meta, p.data);
                }
                self.ep.handle_datagram(
                    now,
                    Datagram {
                        src: p.meta.src,
                        dst: p.meta.dst,
                        encaps_port: p.meta.encaps_port,
                        data: p.data,
                    },
                );
                if self.ep.sack_due_now() {
                    // RFC 9260 §6.2: a SACK for at least every second packet, also inside
                    // one receive burst (it leaves with the transmit burst).
                    fill_tx(&mut self.ep, &mut self.tx, self.capture.as_deref(), now);
                }
            }
        }
    }

    /// Feeds the packets other workers handed over into the endpoint.
    fn drain_inbox(&mut self, now: Timestamp) -> bool {
        let mut any = false;
        for ring in self.inbox.iter_mut().flatten() {
            for _ in 0..INBOX_BURST {
                let Some(h) = ring.pop() else { break };
                any = true;
                self.stats.handoffs_in += 1;
                if let Some(c) = &self.capture {
                    c.rx(now, &h.meta, h.buf.as_slice());
                }
                self.ep.handle_datagram(
                    now,
                    Datagram {
                        src: h.meta.src,
                        dst: h.meta.dst,
                        encaps_port: h.meta.encaps_port,
                        data: h.buf.as_slice(),
                    },
                );
                self.pool.put(h.buf);
            }
        }
        any
    }

    /// Hands up to [`EVENT_BURST`] endpoint events to the application; how many it handed.
    fn dispatch_events(&mut self, now: Timestamp) -> usize {
        for n in 0..EVENT_BURST {
            let Some((id, event)) = self.ep.poll_event() else {
                return n;
            };
            let mut cx = Self::cx(&mut self.ep, now, &self.info, &mut self.ports);
            self.app.event(&mut cx, id, event);
        }
        EVENT_BURST
    }

    /// Moves packets from the endpoint into the link until the endpoint has nothing more or
    /// the kernel's send buffer is full. Returns (sent anything, blocked on a full buffer).
    fn transmit(&mut self, now: Timestamp) -> Result<(bool, bool), RuntimeError> {
        let mut any = false;
        loop {
            let produced = fill_tx(&mut self.ep, &mut self.tx, self.capture.as_deref(), now);
            if self.tx.is_empty() {
                return Ok((any, false));
            }
            any = true;
            let full = self.tx.is_full();
            self.link.send(&mut self.tx).map_err(RuntimeError::Link)?;
            if !self.tx.is_empty() {
                self.stats.tx_blocked += 1;
                return Ok((any, true));
            }
            if !full || produced == 0 {
                return Ok((any, false));
            }
        }
    }
}

/// Moves packets from the endpoint into the free slots of `tx`; how many it committed.
fn fill_tx(
    ep: &mut Endpoint,
    tx: &mut TxBatch,
    capture: Option<&Capture>,
    now: Timestamp,
) -> usize {
    let mut produced = 0;
    while let Some(slot) = tx.free_slot() {
        let Some(t) = ep.poll_transmit(now, slot) else {
            break;
        };
        if let (Some(c), Some(data)) = (capture, slot.get(..t.len)) {
            c.tx(now, &t, data);
        }
        let meta = TxMeta {
            src: t.src,
            dst: t.dst,
            encaps_port: t.encaps_port,
        };
        if tx.commit(meta, t.len) {
            produced += 1;
        }
    }
    produced
}

/// Copies a packet into a pooled buffer and queues it for worker `w`; drops it (counted)
/// when the pool or the ring is exhausted.
fn forward(
    outbox: &mut [Option<Producer<Handoff>>],
    pool: &mut BufferPool,
    stats: &mut WorkerStats,
    w: usize,
    meta: RxMeta,
    data: &[u8],
) {
    let Some(Some(ring)) = outbox.get_mut(w) else {
        stats.handoff_dropped += 1;
        return;
    };
    let Some(buf) = pool.take_copy(data) else {
        stats.handoff_dropped += 1;
        return;
    };
    match ring.push(Handoff { meta, buf }) {
        Ok(()) => stats.handoffs_out += 1,
        Err(h) => {
            pool.put(h.buf);
            stats.handoff_dropped += 1;
        }
    }
}
