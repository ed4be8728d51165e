//! The DPDK poll-mode backend (feature `dpdk`): SCTP over Ethernet on DPDK ports, with our
//! own IPv4/IPv6, ARP and neighbour discovery.
//!
//! # Design
//!
//! DPDK takes the NIC (or a virtual device: `net_af_packet` on a veth, `net_tap`,
//! `net_memif`, `net_ring`, `net_null`) away from the kernel, so the link does what the
//! kernel did for the raw backends: it frames SCTP packets in Ethernet + IPv4/IPv6
//! ([`net`], with `etherparse`), answers ARP requests and neighbour solicitations for its
//! addresses, resolves next hops through a bounded cache (retries, a bounded queue per
//! unresolved neighbour, packets dropped and counted when it gives up), and verifies IPv4
//! header checksums. SCTP's CRC32c is offloaded to the NIC when it can (see *Offloads*).
//!
//! - [`Eal::init`] starts DPDK once per process from an [`EalConfig`] (lcores, vdevs,
//!   `--no-huge` or hugepages, extra arguments; [`EalConfig::parse`] takes the `--eal "..."`
//!   string of the tools). Failures become [`DpdkError`]s with the `rte_errno` text and a
//!   hint (permission, hugepages, missing PMD).
//! - [`DpdkLink::open`] configures every port of a [`DpdkConfig`] with one receive and one
//!   transmit queue per worker, one mbuf pool per worker (so workers never share a pool), and
//!   returns one [`DpdkLink`] per worker, each owning queue `i` of every port.
//! - Several ports give multi-homing: one address per family and port; a packet leaves
//!   through the port that owns its source address (or the first port of its family).
//!
//! # Call contract
//!
//! - A `DpdkLink` is `Send`, not `Sync`: one worker thread calls `recv`, `send` and `wait`
//!   (DPDK queues are single-threaded). The [`Waker`] is the only cross-thread handle.
//! - DPDK is polled: [`Link::wait`] polls the receive queues (keeping what it found for the
//!   next `recv`), spinning for the first 100 µs and then sleeping in short steps (50 µs)
//!   between polls when nothing arrives, so
//!   a blocking runtime uses little CPU yet answers within tens of microseconds; busy-poll
//!   runtimes never call it.
//! - Payload copies: one per packet in each direction, between the mbuf and the caller's
//!   [`RxBatch`]/[`TxBatch`] slots (the `Link` contract owns batch memory; the same copy
//!   the io_uring backend makes on receive). Headers are written in place in the mbuf.
//! - Dropping the last link of a set stops its ports (a later set may start them again); its
//!   mbuf pools stay allocated until the process exits (the stopped queues still own mbufs). The
//!   EAL itself stays up until the process exits (DPDK cannot be initialised twice).
//!
//! # Offloads and steering
//!
//! - SCTP CRC32c ([`offload`]): when a port offers `RTE_ETH_TX_OFFLOAD_SCTP_CKSUM` the link
//!   enables it and asks the NIC for the checksum of every SCTP packet (mbuf flags, `l2_len`,
//!   `l3_len`, field zeroed). Without it the link sends the stack's checksum, or computes it
//!   in software when the stack left the field zero (`EndpointConfig::tx_checksum_offload`),
//!   so that setting is safe with any `DpdkLink` ([`DpdkLink::sctp_crc_offload`] says whether
//!   it saves anything). On receive, with `RTE_ETH_RX_OFFLOAD_SCTP_CKSUM` enabled, packets the
//!   NIC flags `RTE_MBUF_F_RX_L4_CKSUM_BAD` are dropped and counted (RFC 9260 §6.8); the
//!   runtime still verifies every packet in software, as [`crate::packet::RxMeta`] has no
//!   field yet to carry the NIC's "good" verdict to `Endpoint::handle_datagram_checked`.
//! - With several workers the ports use RSS over IP addresses and SCTP ports when the PMD
//!   offers it; packets that reach the wrong worker (RSS does not know verification tags, and
//!   PMDs without RSS have one queue's worth of steering) are handed to their owner by the
//!   runtime's verification-tag steering ([`crate::runtime`], `LinkSpec::Links`).
//!   ARP and neighbour discovery answers arrive on whichever queue RSS picks: the neighbour
//!   cache is shared by the links of a set (one lock per burst that needs it).

mod eal;
mod link;
pub mod net;
pub mod offload;

use std::fmt;
use std::io;

pub use eal::{Eal, EalConfig, Memory};
pub use link::{DpdkConfig, DpdkLink, DpdkStats, InterfaceConfig, PortSelector};
pub use net::{IpPrefix, MacAddr, NeighbourConfig};
pub use offload::{Offloads, TxAction};

#[allow(unused_imports)]
use crate::link::{Link, Waker};
#[allow(unused_imports)]
use crate::packet::{RxBatch, TxBatch};

/// Why the DPDK backend could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpdkError {
    /// `rte_eal_init` failed: the `rte_errno` text and a hint.
    EalInit(String),
    /// No Ethernet port exists after the EAL started.
    NoPorts,
    /// A configured port is not there (a `--vdev` whose driver is missing or failed to probe,
    /// or a wrong name or index).
    PortNotFound(String),
    /// The port is already used by another link set of this process.
    PortBusy(u16),
    /// A DPDK call failed while setting up a port or pool.
    Setup {
        /// What was being done.
        op: String,
        /// The `rte_errno` / return code text.
        why: String,
    },
    /// The configuration cannot work.
    InvalidConfig(String),
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::EalInit(why) => write!(f, "DPDK EAL initialisation failed: {why}"),
            DpdkError::NoPorts => f.write_str(
                "DPDK found no Ethernet port: give --vdev=... for a virtual device or bind a NIC to vfio-pci (see docs/dpdk.md)",
            ),
            DpdkError::PortNotFound(p) => write!(
                f,
                "DPDK port {p} not found: is its driver (PMD) installed and did it probe? (see the EAL log)"
            ),
            DpdkError::PortBusy(p) => write!(f, "DPDK port {p} is already in use in this process"),
            DpdkError::Setup { op, why } => write!(f, "DPDK {op} failed: {why}"),
            DpdkError::InvalidConfig(why) => write!(f, "invalid DPDK configuration: {why}"),
        }
    }
}

impl std::error::Error for DpdkError {}

impl From<DpdkError> for crate::LinkError {
    fn from(e: DpdkError) -> Self {
        let kind = match &e {
            DpdkError::EalInit(why) if why.contains("permission") => {
                io::ErrorKind::PermissionDenied
            }
            DpdkError::NoPorts | DpdkError::PortNotFound(_) => io::ErrorKind::NotFound,
            DpdkError::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        crate::LinkError::Io {
            op: "dpdk",
            source: io::Error::new(kind, e),
        }
    }
}
