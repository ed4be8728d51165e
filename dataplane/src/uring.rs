//! Raw IP protocol 132 on io_uring (Linux 6.0+, 64-bit x86 and ARM).
//!
//! Receive: one multishot `RecvMsgMulti` per socket (IPv4, IPv6) draws buffers from a
//! provided-buffer ring shared by both. Every completion names the buffer the kernel filled;
//! [`Link::recv`] copies the SCTP packet into the caller's [`RxBatch`] and gives the buffer back
//! to the ring at once, so the kernel is never short of buffers for longer than one burst.
//! When the ring does run dry the multishot request ends with `ENOBUFS`; it is re-armed after
//! the buffers of that burst are recycled (likewise whenever a completion arrives without
//! `IORING_CQE_F_MORE`).
//!
//! Send: one `SendMsg` per packet, linked (`IOSQE_IO_LINK`) so that a full socket buffer
//! stops the rest of the burst in order, with `MSG_DONTWAIT` so that nothing waits in the
//! kernel; a second ring holds only sends, so their completions never mix with receives.
//! [`Link::send`] returns when all its completions are in: the [`TxBatch`] can be reused
//! immediately.
//!
//! Idle: [`Link::wait`] sleeps in `io_uring_enter` with a timeout; the [`Waker`]'s eventfd is
//! watched by a multishot poll on the receive ring.
//!
//! The rings are created with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`
//! (fewer interrupts; task work runs when we ask for completions) where the kernel has them,
//! and started lazily: **after the first `recv`, `send` or `wait`, use the link from that
//! thread only**. The link may be created on another thread.
//!
//! Opening fails with [`LinkError::IoUringUnavailable`] when io_uring cannot be used (no
//! kernel support, `kernel.io_uring_disabled`, qemu-user, seccomp, kernel older than 6.0):
//! the caller falls back to [`RawPollLink`](crate::raw::RawPollLink).

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{IoUring, Probe, cqueue, opcode, squeue, types};

use crate::link::{
    Backend, Interest, Link, LinkError, LinkStats, Readiness, WakeTarget, Waker, ip_header_len,
};
use crate::packet::{RxBatch, RxMeta, TxBatch};
use crate::raw::{MAX_IPV4_HEADER, RawConfig, RawSockets, parse_ipv4, prepare_raw_send};
use crate::sys::{self, CmsgBuf, EventFd, MmsgScratch};

const UD_RECV4: u64 = 1;
const UD_RECV6: u64 = 2;
const UD_WAKE: u64 = 3;
const UD_POLLOUT4: u64 = 4;
const UD_POLLOUT6: u64 = 5;
const UD_CANCEL: u64 = 6;

/// The buffer group of the provided-buffer ring.
const BGID: u16 = 0;
/// Sends submitted per round.
const SEND_BATCH: usize = 256;
/// Control space reserved in each receive buffer (`IP_PKTINFO`/`IPV6_PKTINFO` need 32/40).
const RX_CONTROL: usize = 64;
/// Name space reserved in each receive buffer (a `sockaddr_in6`).
const RX_NAME: usize = mem::size_of::<libc::sockaddr_in6>();
/// `struct io_uring_recvmsg_out`: four u32.
const RECVMSG_OUT: usize = 16;

/// Page-aligned memory for the kernel-shared ring of buffer descriptors.
struct RingMem {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl RingMem {
    fn new(bytes: usize) -> io::Result<Self> {
        let layout = std::alloc::Layout::from_size_align(bytes, 4096)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the layout has a non-zero size (callers pass entries * 16 > 0).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(RingMem { ptr, layout })
    }
}

impl Drop for RingMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// The provided-buffer ring: descriptor ring (shared with the kernel) plus the buffers.
struct BufRing {
    ring: RingMem,
    bufs: Box<[u8]>,
    buf_size: usize,
    entries: u16,
    /// Our producer index (published to the kernel by `publish`).
    tail: u16,
}

impl BufRing {
    fn new(entries: u16, buf_size: usize) -> io::Result<Self> {
        let ring = RingMem::new(usize::from(entries) * 16)?;
        let mut r = BufRing {
            ring,
            bufs: vec![0u8; usize::from(entries) * buf_size].into_boxed_slice(),
            buf_size,
            entries,
            tail: 0,
        };
        for bid in 0..entries {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    /// Queues buffer `bid` for the kernel (visible after `publish`).
    fn push(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let idx = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.as_ptr() as u64 + (usize::from(bid) * self.buf_size) as u64;
        // SAFETY: `idx < entries`, so the 16-byte descriptor lies inside the ring allocation.
        // struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }: we write addr, len
        // and bid and leave `resv` alone, because in entry 0 it is the ring's tail, which only
        // `publish` writes.
        unsafe {
            let e = self.ring.ptr.add(idx * 16);
            e.cast::<u64>().write_volatile(addr);
            e.add(8).cast::<u32>().write_volatile(self.buf_size as u32);
            e.add(12).cast::<u16>().write_volatile(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the queued buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail is the u16 at byte offset 14 of the page-aligned ring (the `resv`
        // field of entry 0), 2-byte aligned; the kernel reads it with acquire semantics, so a
        // release store orders our descriptor writes before it.
        let tail = unsafe { AtomicU16::from_ptr(self.ring.ptr.add(14).cast::<u16>()) };
        tail.store(self.tail, Ordering::Release);
    }

    fn buf(&self, bid: u16) -> Option<&[u8]> {
        let start = usize::from(bid).checked_mul(self.buf_size)?;
        self.bufs.get(start..start + self.buf_size)
    }
}

/// Raw IP on io_uring. See the [module documentation](self).
pub struct RawUringLink {
    // Field order matters: the rings drop (and release the buffers) before the memory does.
    ring: IoUring,
    send_ring: IoUring,
    socks: RawSockets,
    bufs: BufRing,
    msg_v4: Box<libc::msghdr>,
    msg_v6: Box<libc::msghdr>,
    config: RawConfig,
    waker: Arc<EventFd>,
    scratch: MmsgScratch,
    backlog: VecDeque<cqueue::Entry>,
    disabled: bool,
    started: bool,
    rearm_v4: bool,
    rearm_v6: bool,
    rearm_wake: bool,
    pollout_armed: bool,
    woken: bool,
    writable: bool,
    stats: LinkStats,
}

// SAFETY: the raw pointers (ring memory, msghdr templates, scratch) point into memory owned
// by the link itself and move with it; the rings' single-issuer rule is documented: after
// the first use the link must stay on that thread, which the kernel enforces with EEXIST.
unsafe impl Send for RawUringLink {}

impl std::fmt::Debug for RawUringLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawUringLink")
            .field("ipv4", &self.socks.v4.is_some())
            .field("ipv6", &self.socks.v6.is_some())
            .field("started", &self.started)
            .finish()
    }
}

fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = release
        .trim()
        .split(['.', '-'])
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn unavailable(source: io::Error) -> LinkError {
    LinkError::IoUringUnavailable { source }
}

/// Builds a ring with the best setup flags the kernel accepts; returns whether it starts
/// disabled (single-issuer mode, enabled on first use).
fn build_ring(entries: u32, cq: u32) -> io::Result<(IoUring, bool)> {
    let best = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .setup_r_disabled()
        .setup_cqsize(cq)
        .build(entries);
    match best {
        Ok(r) => Ok((r, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let r = IoUring::builder()
                .setup_coop_taskrun()
                .setup_taskrun_flag()
                .setup_cqsize(cq)
                .build(entries)?;
            Ok((r, false))
        }
        Err(e) => Err(e),
    }
}

fn recv_template(namelen: usize) -> Box<libc::msghdr> {
    let mut h = Box::new(sys::msghdr(
        std::ptr::null_mut(),
        0,
        std::ptr::null_mut(),
        0,
        std::ptr::null_mut(),
        0,
    ));
    h.msg_namelen = namelen as libc::socklen_t;
    h.msg_controllen = RX_CONTROL as _;
    h
}

impl RawUringLink {
    /// Opens the raw sockets and the rings. [`LinkError::RawNeedsCapNetRaw`] without privilege;
    /// [`LinkError::IoUringUnavailable`] when io_uring cannot be used here.
    pub fn open(config: RawConfig) -> Result<Self, LinkError> {
        let nbufs = config.uring_buffers;
        if !nbufs.is_power_of_two() || nbufs > 32768 {
            return Err(LinkError::InvalidConfig(
                "uring_buffers must be a power of two up to 32768",
            ));
        }
        // The sockets first: a missing CAP_NET_RAW is the error to report even where io_uring
        // is unavailable too (qemu-user, `kernel.io_uring_disabled`), since falling back to the
        // poll backend would not help.
        let socks = RawSockets::open(&config)?;
        if kernel_version() < (6, 0) {
            return Err(unavailable(io::Error::new(
                io::ErrorKind::Unsupported,
                "multishot recvmsg needs Linux 6.0",
            )));
        }
        let cq = u32::from(nbufs) * 2 + 64;
        let (ring, disabled) = build_ring(64, cq).map_err(unavailable)?;
        let (send_ring, _) =
            build_ring(SEND_BATCH as u32, SEND_BATCH as u32 * 2).map_err(unavailable)?;
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(unavailable)?;
        for code in [
            opcode::RecvMsg::CODE,
            opcode::SendMsg::CODE,
            opcode::PollAdd::CODE,
            opcode::AsyncCancel::CODE,
        ] {
            if !probe.is_supported(code) {
                return Err(unavailable(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "io_uring lacks an opcode this backend needs",
                )));
            }
        }
        let buf_size =
            (RECVMSG_OUT + RX_NAME + RX_CONTROL + config.max_packet + MAX_IPV4_HEADER + 63) & !63;
        let bufs = BufRing::new(nbufs, buf_size).map_err(|e| LinkError::io("buffers", e))?;
        // SAFETY: the descriptor ring is page-aligned, `nbufs` entries long, and lives in
        // `bufs`, which the link owns; Drop unregisters it before the memory is freed.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring.ptr as u64, nbufs, BGID, 0)
        }
        .map_err(unavailable)?;
        let waker = Arc::new(EventFd::new().map_err(|e| LinkError::io("eventfd", e))?);
        let link = RawUringLink {
            ring,
            send_ring,
            socks,
            bufs,
            msg_v4: recv_template(mem::size_of::<libc::sockaddr_in>()),
            msg_v6: recv_template(RX_NAME),
            config,
            waker,
            scratch: MmsgScratch::new(),
            backlog: VecDeque::with_capacity(cq as usize + 64),
            disabled,
            started: false,
            rearm_v4: true,
            rearm_v6: true,
            rearm_wake: true,
            pollout_armed: false,
            woken: false,
            writable: false,
            stats: LinkStats::default(),
        };
        Ok(link)
    }

    /// Whether the link has an IPv4 and an IPv6 socket.
    pub fn families(&self) -> (bool, bool) {
        (self.socks.v4.is_some(), self.socks.v6.is_some())
    }

    /// Makes the kernel deliver to this link only the packets of worker `worker` of
    /// `workers` (classic BPF socket filters, see [`crate::runtime::steer`]). Only before the
    /// first `recv`, `send` or `wait`.
    pub fn attach_steering(&self, worker: u32, workers: u32) -> Result<(), LinkError> {
        if self.started {
            return Err(LinkError::InvalidConfig(
                "steering filters must be attached before the link is used",
            ));
        }
        self.socks.attach_steering(worker, workers)
    }

    fn start(&mut self) -> Result<(), LinkError> {
        if self.started {
            return Ok(());
        }
        if self.disabled {
            self.ring
                .submitter()
                .register_enable_rings()
                .map_err(|e| LinkError::io("io_uring enable", e))?;
            self.send_ring
                .submitter()
                .register_enable_rings()
                .map_err(|e| LinkError::io("io_uring enable", e))?;
        }
        self.started = true;
        self.rearm()?;
        Ok(())
    }

    fn push_sqe(&mut self, e: &squeue::Entry) -> Result<(), LinkError> {
        // SAFETY: every entry we push references memory the link owns (sockets, msghdr
        // templates, the eventfd) that outlives the request (Drop cancels requests first).
        if unsafe { self.ring.submission().push(e) }.is_err() {
            self.ring
                .submit()
                .map_err(|e| LinkError::io("io_uring submit", e))?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(e) }
                .map_err(|_| LinkError::io("io_uring submit", io::Error::other("SQ full")))?;
        }
        Ok(())
    }

    /// Re-arms whatever multishot request has ended, and submits.
    fn rearm(&mut self) -> Result<(), LinkError> {
        let mut any = false;
        if self.rearm_v4 {
            if let Some(s) = &self.socks.v4 {
                let e = opcode::RecvMsgMulti::new(types::Fd(s.as_raw_fd()), &*self.msg_v4, BGID)
                    .build()
                    .user_data(UD_RECV4);
                self.push_sqe(&e)?;
                self.stats.rx_rearms += 1;
                any = true;
            }
            self.rearm_v4 = false;
        }
        if self.rearm_v6 {
            if let Some(s) = &self.socks.v6 {
                let e = opcode::RecvMsgMulti::new(types::Fd(s.as_raw_fd()), &*self.msg_v6, BGID)
                    .build()
                    .user_data(UD_RECV6);
                self.push_sqe(&e)?;
                self.stats.rx_rearms += 1;
                any = true;
            }
            self.rearm_v6 = false;
        }
        if self.rearm_wake {
            let e = opcode::PollAdd::new(types::Fd(self.waker.fd()), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(UD_WAKE);
            self.push_sqe(&e)?;
            self.rearm_wake = false;
            any = true;
        }
        if any {
            self.enter_nowait()?;
        }
        Ok(())
    }

    /// Submits queued entries and runs deferred task work without waiting.
    fn enter_nowait(&mut self) -> Result<(), LinkError> {
        // GETEVENTS: with DEFER_TASKRUN, completions are produced only when we ask for events.
        let sq_len = self.ring.submission().len();
        // SAFETY: plain io_uring_enter on our ring; no argument structure is passed.
        let r = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                sq_len as u32,
                0,
                1, /* IORING_ENTER_GETEVENTS */
                None,
            )
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(LinkError::io("io_uring enter", e)),
        }
    }

    /// Moves every completion into the backlog, handling waker and writability events.
    fn drain_cq(&mut self) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            match cqe.user_data() {
                UD_WAKE => {
                    self.waker.drain();
                    self.woken = true;
                    if !cqueue::more(cqe.flags()) {
                        self.rearm_wake = true;
                    }
                }
                UD_POLLOUT4 | UD_POLLOUT6 => {
                    self.writable = true;
                    self.pollout_armed = false;
                }
                UD_CANCEL => {}
                _ => self.backlog.push_back(cqe),
            }
        }
    }

    /// Whether the kernel has work for us that only an enter will run.
    fn kernel_has_work(&mut self) -> bool {
        let sq = self.ring.submission();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// Handles one receive completion: the packet goes to `slot` of `rx` (or is counted as
    /// dropped) and its buffer back to the ring.
    fn handle_recv(&mut self, cqe: &cqueue::Entry, rx: &mut RxBatch, slot: usize) {
        let v6 = cqe.user_data() == UD_RECV6;
        let res = cqe.result();
        let flags = cqe.flags();
        if !cqueue::more(flags) {
            if v6 {
                self.rearm_v6 = true;
            } else {
                self.rearm_v4 = true;
            }
        }
        if res < 0 {
            // ENOBUFS: the ring ran dry; the re-arm above restarts it once buffers return.
            if res != -libc::ENOBUFS {
                self.stats.rx_dropped += 1;
            }
            return;
        }
        let Some(bid) = cqueue::buffer_select(flags) else {
            return;
        };
        let len = usize::try_from(res).unwrap_or(0);
        let tmpl: &libc::msghdr = if v6 { &self.msg_v6 } else { &self.msg_v4 };
        let accepted = match self.bufs.buf(bid).and_then(|b| b.get(..len)) {
            Some(data) => match types::RecvMsgOut::parse(data, tmpl) {
                Ok(out) if !out.is_payload_truncated() => {
                    let cm = sys::parse_cmsgs(out.control_data());
                    let name = sys::decode_sockaddr(out.name_data());
                    let payload = out.payload_data();
                    if v6 {
                        match (name, cm.dst) {
                            (Some(src), Some(dst)) => rx.push_copy(
                                RxMeta {
                                    src: src.ip(),
                                    dst,
                                    encaps_port: 0,
                                    ifindex: cm.ifindex,
                                },
                                slot,
                                payload,
                            ),
                            _ => false,
                        }
                    } else {
                        match parse_ipv4(payload) {
                            Some((src, dst, off, plen)) => rx.push_copy(
                                RxMeta {
                                    src: IpAddr::V4(src),
                                    dst: IpAddr::V4(dst),
                                    encaps_port: 0,
                                    ifindex: cm.ifindex,
                                },
                                slot,
                                &payload[off..off + plen],
                            ),
                            None => false,
                        }
                    }
                }
                _ => false,
            },
            None => false,
        };
        self.bufs.push(bid);
        if accepted {
            self.stats.rx_packets += 1;
            if let Some(p) = rx.get(rx.len() - 1) {
                self.stats.rx_bytes += p.data.len() as u64;
            }
        } else {
            self.stats.rx_dropped += 1;
        }
    }

    fn send_round(&mut self, tx: &mut TxBatch) -> Result<(usize, bool), LinkError> {
        // The run of packets at the front that have a socket of their family.
        let limit = tx.len().min(SEND_BATCH);
        let mut queued = 0;
        while queued < limit {
            match tx.pending(queued) {
                Some((meta, _)) if self.socks.for_dst(meta.dst).is_some() => queued += 1,
                _ => break,
            }
        }
        if queued == 0 {
            // The first packet has no socket of its family: it cannot go anywhere.
            tx.consume(1);
            self.stats.tx_dropped += 1;
            return Ok((1, false));
        }
        self.scratch.ensure(queued);
        for i in 0..queued {
            let Some((meta, data)) = tx.pending(i) else {
                break;
            };
            let Some(fd) = self.socks.for_dst(meta.dst).map(|s| s.as_raw_fd()) else {
                break;
            };
            prepare_raw_send(&mut self.scratch, i, meta.src, meta.dst, data);
            let mut e = opcode::SendMsg::new(types::Fd(fd), &self.scratch.hdrs[i].msg_hdr)
                .flags(libc::MSG_DONTWAIT as u32)
                .build()
                .user_data(i as u64);
            if i + 1 < queued {
                // A failure (full buffer) cancels the rest, which keeps the order.
                e = e.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: the msghdr, its name, iovec, control buffer and the packet bytes live in
            // `self.scratch` and `tx`, both untouched until every completion of this round has
            // been reaped below. The SQ holds SEND_BATCH entries and is empty here.
            if unsafe { self.send_ring.submission().push(&e) }.is_err() {
                return Err(LinkError::io("io_uring send", io::Error::other("SQ full")));
            }
        }
        let mut reaped = 0;
        let mut results = [0i32; SEND_BATCH];
        let mut waited = 0u32;
        while reaped < queued {
            let want = queued - reaped;
            match self.send_ring.submit_and_wait(want) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(LinkError::io("io_uring send", e)),
            }
            for cqe in self.send_ring.completion() {
                if let Some(r) = results.get_mut(cqe.user_data() as usize) {
                    *r = cqe.result();
                    reaped += 1;
                }
            }
            waited += 1;
            if waited > 1000 {
                return Err(LinkError::io(
                    "io_uring send",
                    io::Error::other("send completions did not arrive"),
                ));
            }
        }
        self.stats.tx_batches += 1;
        let mut handled = 0;
        for (i, &r) in results.iter().enumerate().take(queued) {
            if r >= 0 {
                self.stats.tx_packets += 1;
                if let Some((_, d)) = tx.pending(i) {
                    self.stats.tx_bytes += d.len() as u64;
                }
                handled += 1;
                continue;
            }
            let e = io::Error::from_raw_os_error(-r);
            if sys::is_would_block(&e) {
                self.stats.tx_would_block += 1;
                tx.consume(handled);
                return Ok((handled, true));
            }
            if sys::is_per_packet_send_error(&e) {
                self.stats.tx_dropped += 1;
                handled += 1;
                // The rest of the chain was cancelled; the next round resubmits it.
                tx.consume(handled);
                return Ok((handled, false));
            }
            if r == -libc::ECANCELED {
                // Cancelled without a failed predecessor: treat as a full buffer.
                tx.consume(handled);
                return Ok((handled, handled == 0));
            }
            return Err(LinkError::io("io_uring send", e));
        }
        tx.consume(handled);
        Ok((handled, false))
    }
}

impl Link for RawUringLink {
    fn backend(&self) -> Backend {
        Backend::RawUring
    }

    fn rx_slot_size(&self) -> usize {
        self.config.max_packet
    }

    fn header_overhead(&self, remote: IpAddr) -> usize {
        ip_header_len(remote)
    }

    fn recv(&mut self, rx: &mut RxBatch) -> Result<usize, LinkError> {
        rx.clear();
        let need = self.rx_slot_size();
        if rx.slot_size() < need {
            return Err(LinkError::RxSlotTooSmall {
                need,
                have: rx.slot_size(),
            });
        }
        self.start()?;
        if self.backlog.is_empty() && self.ring.completion().is_empty() && self.kernel_has_work() {
            self.enter_nowait()?;
        }
        self.drain_cq();
        let mut slot = 0;
        let mut had_any = false;
        while slot < rx.slots() {
            let Some(cqe) = self.backlog.pop_front() else {
                break;
            };
            had_any = true;
            let before = rx.len();
            self.handle_recv(&cqe, rx, slot);
            if rx.len() > before {
                slot += 1;
            }
        }
        if had_any {
            self.stats.rx_batches += 1;
            self.bufs.publish();
        }
        if self.rearm_v4 || self.rearm_v6 || self.rearm_wake {
            self.rearm()?;
        }
        Ok(rx.len())
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        if tx.is_empty() {
            return Ok(0);
        }
        self.start()?;
        let mut handled = 0;
        // Bounded: every round handles at least one packet or stops.
        while !tx.is_empty() {
            let (n, stop) = self.send_round(tx)?;
            handled += n;
            if stop {
                break;
            }
        }
        Ok(handled)
    }

    fn wait(
        &mut self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError> {
        self.start()?;
        self.writable = false;
        if interest == Interest::ReadWrite && !self.pollout_armed {
            for (sock, ud) in [(&self.socks.v4, UD_POLLOUT4), (&self.socks.v6, UD_POLLOUT6)] {
                if let Some(s) = sock {
                    let e = opcode::PollAdd::new(types::Fd(s.as_raw_fd()), libc::POLLOUT as u32)
                        .build()
                        .user_data(ud);
                    // SAFETY: the socket outlives the request (Drop cancels requests first).
                    if unsafe { self.ring.submission().push(&e) }.is_err() {
                        break;
                    }
                }
            }
            self.pollout_armed = true;
        }
        self.drain_cq();
        if self.backlog.is_empty() && !self.woken && !self.writable {
            let ts;
            let args;
            let r = match timeout {
                Some(d) => {
                    ts = types::Timespec::from(d);
                    args = types::SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
                None => self.ring.submit_and_wait(1),
            };
            match r {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(LinkError::io("io_uring wait", e)),
            }
            self.drain_cq();
        }
        let r = Readiness {
            readable: !self.backlog.is_empty(),
            writable: self.writable,
            woken: mem::take(&mut self.woken),
        };
        if self.rearm_wake {
            self.rearm()?;
        }
        Ok(r)
    }

    fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.waker) as Arc<dyn WakeTarget>)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl Drop for RawUringLink {
    fn drop(&mut self) {
        if self.started {
            // Cancel every request that references our memory and wait (bounded) until the
            // kernel confirms, so no buffer is written after it is freed.
            let e = opcode::AsyncCancel2::new(types::CancelBuilder::any())
                .build()
                .user_data(UD_CANCEL);
            // SAFETY: the cancel request references no memory.
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                let ts = types::Timespec::from(Duration::from_millis(100));
                let args = types::SubmitArgs::new().timespec(&ts);
                let mut cancelled = false;
                for _ in 0..20 {
                    let _ = self.ring.submitter().submit_with_args(1, &args);
                    for cqe in self.ring.completion() {
                        if cqe.user_data() == UD_CANCEL {
                            cancelled = true;
                        }
                    }
                    if cancelled {
                        break;
                    }
                }
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
    }
}

// The control buffer type must be large enough for what we reserve in each receive buffer.
const _: () = assert!(RX_CONTROL <= mem::size_of::<CmsgBuf>());
