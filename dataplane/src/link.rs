//! The [`Link`] trait: what every packet I/O backend offers a driver loop.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::packet::{RxBatch, TxBatch};

/// A packet I/O backend moving bursts of SCTP packets.
///
/// All methods work on whole bursts, so the cost of choosing a backend (a `match` in
/// [`AnyLink`](crate::AnyLink), or none when a driver is generic over `L: Link`) is paid once
/// per burst, never per packet. None of the methods blocks except [`wait`](Self::wait).
///
/// A link is owned by one thread at a time (it is `Send`, not `Sync`); the only handle meant
/// for other threads is the [`Waker`].
pub trait Link {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// The smallest [`RxBatch::slot_size`] this link can receive into without truncating a
    /// datagram (64 KiB with UDP GRO, where one slot holds a coalesced run).
    fn rx_slot_size(&self) -> usize;

    /// Bytes the network adds around an SCTP packet sent to `remote` (IP header, plus the UDP
    /// header for UDP encapsulation). Path MTU minus this is the largest SCTP packet.
    fn header_overhead(&self, remote: IpAddr) -> usize;

    /// Receives what is available without blocking: clears `rx` and fills it with up to its
    /// capacity. Returns the number of packets received (0 when none is waiting).
    ///
    /// Malformed or truncated datagrams are dropped and counted in [`LinkStats`], never
    /// returned.
    fn recv(&mut self, rx: &mut RxBatch) -> Result<usize, LinkError>;

    /// Sends pending packets of `tx` from the front without blocking and removes those it
    /// handled. Returns how many it handled; fewer than were pending means the kernel's send
    /// buffer is full: wait for [`Interest::ReadWrite`] readiness and call again, or drop the
    /// rest with [`TxBatch::clear`] (SCTP retransmits).
    ///
    /// A packet the network refuses on its own (unreachable destination, too large, ...)
    /// counts as handled: it is dropped and counted in [`LinkStats::tx_dropped`] so that one
    /// bad destination never wedges the link.
    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError>;

    /// Blocks until the link becomes ready for `interest`, the [`Waker`] fires, or `timeout`
    /// elapses (`None` = no timeout, `Some(ZERO)` = just poll). Spurious wake-ups are
    /// allowed; an empty [`Readiness`] means the timeout elapsed.
    ///
    /// Busy-polling drivers never call this and call [`recv`](Self::recv) in a loop instead.
    fn wait(
        &mut self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError>;

    /// A handle that interrupts [`wait`](Self::wait) from any thread.
    fn waker(&self) -> Waker;

    /// Counters since the link was opened.
    fn stats(&self) -> LinkStats;
}

/// The kind of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// UDP-encapsulated SCTP (RFC 6951) on a datagram socket with `sendmmsg`/`recvmmsg`.
    Udp,
    /// Raw IP protocol 132 on non-blocking sockets with `poll(2)` (portable).
    RawPoll,
    /// Raw IP protocol 132 on io_uring (multishot receive, provided buffers).
    RawUring,
    /// An in-memory fabric without an operating system.
    Memory,
    /// DPDK poll-mode driver with the dataplane's own Ethernet/IP (feature `dpdk`).
    Dpdk,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Udp => "udp",
            Backend::RawPoll => "raw (poll)",
            Backend::RawUring => "raw (io_uring)",
            Backend::Memory => "memory",
            Backend::Dpdk => "dpdk",
        })
    }
}

/// What a [`Link::wait`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Incoming packets.
    Read,
    /// Incoming packets or room in the send buffer.
    ReadWrite,
}

/// Why a [`Link::wait`] returned. All false: the timeout elapsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Readiness {
    /// Packets (may) be waiting.
    pub readable: bool,
    /// The send buffer (may) have room.
    pub writable: bool,
    /// The [`Waker`] fired.
    pub woken: bool,
}

impl Readiness {
    /// Whether nothing happened before the timeout.
    pub fn is_timeout(&self) -> bool {
        !self.readable && !self.writable && !self.woken
    }
}

/// Counters of a link. Plain integers: a link is single-threaded, and exporting them is the
/// runtime's job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Packets returned by `recv`.
    pub rx_packets: u64,
    /// Bytes of SCTP packets returned by `recv`.
    pub rx_bytes: u64,
    /// Datagrams dropped on receive: truncated, malformed headers, unexpected address family.
    pub rx_dropped: u64,
    /// Receive syscalls (or completion batches) that returned data.
    pub rx_batches: u64,
    /// Coalesced GRO receives (each yields several packets).
    pub rx_gro_batches: u64,
    /// Packets handed to the network.
    pub tx_packets: u64,
    /// Bytes of SCTP packets handed to the network.
    pub tx_bytes: u64,
    /// Packets the network refused (unreachable, too large, dropped by a fault model, ...).
    pub tx_dropped: u64,
    /// Send calls that stopped early because the send buffer was full.
    pub tx_would_block: u64,
    /// Send syscalls (or submission batches).
    pub tx_batches: u64,
    /// Messages sent with UDP GSO (each carries several packets).
    pub tx_gso_sends: u64,
    /// Multishot receive re-arms (io_uring backend).
    pub rx_rearms: u64,
}

/// A cloneable, thread-safe handle that interrupts a [`Link::wait`].
#[derive(Clone)]
pub struct Waker {
    inner: Arc<dyn WakeTarget>,
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waker")
    }
}

/// Something a [`Waker`] can wake.
pub(crate) trait WakeTarget: Send + Sync + 'static {
    fn wake(&self);
}

impl Waker {
    pub(crate) fn new(target: Arc<dyn WakeTarget>) -> Self {
        Waker { inner: target }
    }

    /// Makes the current or next [`Link::wait`] of the link return with
    /// [`Readiness::woken`] set.
    pub fn wake(&self) {
        self.inner.wake();
    }
}

/// Errors of link operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// A system call failed.
    Io {
        /// What the link was doing.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// Opening a raw IP socket was refused for lack of privilege.
    RawNeedsCapNetRaw,
    /// io_uring cannot be used here (kernel without io_uring, `kernel.io_uring_disabled`,
    /// qemu-user, seccomp, missing features); the caller should fall back to the poll backend.
    IoUringUnavailable {
        /// The error of the failed setup step.
        source: io::Error,
    },
    /// The receive batch's slots are smaller than the link needs ([`Link::rx_slot_size`]).
    RxSlotTooSmall {
        /// The slot size the link needs.
        need: usize,
        /// The slot size of the batch.
        have: usize,
    },
    /// The configuration cannot work (e.g. no address family enabled).
    InvalidConfig(&'static str),
}

impl LinkError {
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        LinkError::Io { op, source }
    }

    /// Whether the error means "use another backend" rather than "this failed".
    pub fn is_fallback_signal(&self) -> bool {
        matches!(self, LinkError::IoUringUnavailable { .. })
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Io { op, source } => write!(f, "{op}: {source}"),
            LinkError::RawNeedsCapNetRaw => {
                f.write_str("raw SCTP needs CAP_NET_RAW (run as root or use --backend udp)")
            }
            LinkError::IoUringUnavailable { source } => {
                write!(
                    f,
                    "io_uring is not available ({source}); use the poll backend"
                )
            }
            LinkError::RxSlotTooSmall { need, have } => write!(
                f,
                "receive batch slots of {have} bytes are too small for this link (needs {need})"
            ),
            LinkError::InvalidConfig(what) => write!(f, "invalid link configuration: {what}"),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Io { source, .. } | LinkError::IoUringUnavailable { source } => Some(source),
            _ => None,
        }
    }
}

/// Bytes of IP (and UDP) headers around an SCTP packet, without IP options or extension
/// headers.
pub(crate) fn ip_header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => 20,
        IpAddr::V6(_) => 40,
    }
}

/// The size of a UDP header.
pub(crate) const UDP_HEADER_LEN: usize = 8;
