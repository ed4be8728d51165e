//! [`AnyLink`]: every backend behind one type, chosen at run time.

use std::net::IpAddr;
use std::time::Duration;

use crate::link::{Backend, Interest, Link, LinkError, LinkStats, Readiness, Waker};
use crate::memory::MemoryLink;
use crate::packet::{RxBatch, TxBatch};

/// One of the backends, dispatched with a `match` per burst (not per packet).
///
/// Drivers that know their backend at compile time can be generic over `L: Link` instead; both
/// keep dynamic dispatch off the per-packet path.
#[derive(Debug)]
#[non_exhaustive]
// One per worker, created once and never moved on the hot path: boxing the large variant would
// only add an indirection per burst.
#[allow(clippy::large_enum_variant)]
pub enum AnyLink {
    /// UDP encapsulation.
    #[cfg(target_os = "linux")]
    Udp(crate::udp::UdpLink),
    /// Raw IP with `poll(2)`.
    #[cfg(target_os = "linux")]
    RawPoll(crate::raw::RawPollLink),
    /// Raw IP on io_uring.
    #[cfg(all(
        feature = "io-uring",
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    RawUring(crate::uring::RawUringLink),
    /// In-memory fabric node.
    Memory(MemoryLink),
    /// A DPDK queue pair (feature `dpdk`).
    #[cfg(all(target_os = "linux", feature = "dpdk"))]
    Dpdk(crate::dpdk::DpdkLink),
}

macro_rules! dispatch {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            #[cfg(target_os = "linux")]
            AnyLink::Udp($l) => $e,
            #[cfg(target_os = "linux")]
            AnyLink::RawPoll($l) => $e,
            #[cfg(all(
                feature = "io-uring",
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))]
            AnyLink::RawUring($l) => $e,
            AnyLink::Memory($l) => $e,
            #[cfg(all(target_os = "linux", feature = "dpdk"))]
            AnyLink::Dpdk($l) => $e,
        }
    };
}

impl Link for AnyLink {
    fn backend(&self) -> Backend {
        dispatch!(self, l => l.backend())
    }

    fn rx_slot_size(&self) -> usize {
        dispatch!(self, l => l.rx_slot_size())
    }

    fn header_overhead(&self, remote: IpAddr) -> usize {
        dispatch!(self, l => l.header_overhead(remote))
    }

    fn recv(&mut self, rx: &mut RxBatch) -> Result<usize, LinkError> {
        dispatch!(self, l => l.recv(rx))
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        dispatch!(self, l => l.send(tx))
    }

    fn wait(
        &mut self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError> {
        dispatch!(self, l => l.wait(interest, timeout))
    }

    fn waker(&self) -> Waker {
        dispatch!(self, l => l.waker())
    }

    fn stats(&self) -> LinkStats {
        dispatch!(self, l => l.stats())
    }
}

impl From<MemoryLink> for AnyLink {
    fn from(l: MemoryLink) -> Self {
        AnyLink::Memory(l)
    }
}

#[cfg(target_os = "linux")]
impl From<crate::udp::UdpLink> for AnyLink {
    fn from(l: crate::udp::UdpLink) -> Self {
        AnyLink::Udp(l)
    }
}

#[cfg(target_os = "linux")]
impl From<crate::raw::RawPollLink> for AnyLink {
    fn from(l: crate::raw::RawPollLink) -> Self {
        AnyLink::RawPoll(l)
    }
}

#[cfg(all(
    feature = "io-uring",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
impl From<crate::uring::RawUringLink> for AnyLink {
    fn from(l: crate::uring::RawUringLink) -> Self {
        AnyLink::RawUring(l)
    }
}

#[cfg(all(target_os = "linux", feature = "dpdk"))]
impl From<crate::dpdk::DpdkLink> for AnyLink {
    fn from(l: crate::dpdk::DpdkLink) -> Self {
        AnyLink::Dpdk(l)
    }
}

impl AnyLink {
    /// The descriptors a readiness poller can wait on for this link's packets, or `None` for
    /// links that wait their own way ([`Link::wait`]: io_uring, memory).
    #[cfg(target_os = "linux")]
    pub fn poll_fds(&self) -> Option<Vec<std::os::fd::RawFd>> {
        match self {
            AnyLink::Udp(l) => Some(vec![l.as_raw_fd()]),
            AnyLink::RawPoll(l) => Some(l.raw_fds()),
            _ => None,
        }
    }

    /// Installs worker `worker`'s raw-socket steering filter (raw backends only).
    #[cfg(target_os = "linux")]
    pub fn attach_steering(&self, worker: u32, workers: u32) -> Result<(), LinkError> {
        match self {
            AnyLink::RawPoll(l) => l.attach_steering(worker, workers),
            #[cfg(all(
                feature = "io-uring",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))]
            AnyLink::RawUring(l) => l.attach_steering(worker, workers),
            _ => Err(LinkError::InvalidConfig(
                "steering filters exist for raw links only",
            )),
        }
    }

    /// Opens the best raw-IP backend available: io_uring where it is compiled in and the
    /// kernel allows it, otherwise the portable poll backend. The io_uring error that caused
    /// a fallback is returned alongside, for the log.
    #[cfg(target_os = "linux")]
    pub fn open_raw(
        config: crate::raw::RawConfig,
    ) -> Result<(AnyLink, Option<LinkError>), LinkError> {
        #[cfg(all(
            feature = "io-uring",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        {
            match crate::uring::RawUringLink::open(config.clone()) {
                Ok(l) => return Ok((AnyLink::RawUring(l), None)),
                Err(e) if e.is_fallback_signal() => {
                    let l = crate::raw::RawPollLink::open(config)?;
                    return Ok((AnyLink::RawPoll(l), Some(e)));
                }
                Err(e) => return Err(e),
            }
        }
        #[allow(unreachable_code)]
        Ok((
            AnyLink::RawPoll(crate::raw::RawPollLink::open(config)?),
            None,
        ))
    }
}
