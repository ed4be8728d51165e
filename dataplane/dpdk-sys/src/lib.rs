//! Raw bindings to the system's DPDK (Debian 12: 22.11, found with `pkg-config libdpdk`).
//!
//! Three layers, all `unsafe` to call:
//!
//! - **bindgen output** for the EAL, ethdev, mbuf, mempool, ring and vdev functions and types
//!   the dataplane uses (an allowlist, see `build.rs`), generated at build time against the
//!   installed headers so struct layouts always match the library;
//! - **`rsdpdk_*` wrappers** around DPDK's `static inline` functions and macros that bindgen
//!   cannot bind (`rte_eth_rx_burst`, `rte_eth_tx_burst`, `rte_pktmbuf_alloc`,
//!   `rte_pktmbuf_mtod`, `rte_errno`, ...), compiled from `csrc/shim.c` with the same flags;
//! - **hand-written constants** for the `RTE_BIT64(..)` and shift macros bindgen drops
//!   (offload flags, RSS hash types); [`rsdpdk_constant`] returns the C values so the tests can
//!   prove the copies right.
//!
//! # Call contract
//!
//! - [`rte_eal_init`] once per process, before anything else; it takes over the process
//!   (signal handlers are left alone, but it spawns its service threads and may map
//!   hugepages). Calling it twice fails with `EALREADY` in [`rsdpdk_errno`].
//! - `rte_*` functions that return a negative errno or set `rte_errno` are documented by DPDK;
//!   [`rte_strerror`] turns either into text.
//! - mbufs come from a mempool made with [`rte_pktmbuf_pool_create`]; an mbuf passed to
//!   [`rsdpdk_tx_burst`] belongs to the driver only if it was accepted (the return value
//!   counts the accepted ones from the front), the rest stay the caller's to free.
//! - Receive and transmit queues are not thread-safe: one thread per queue.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_docs
)]
#![allow(clippy::all)]
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `RTE_BIT64(n)`.
pub const fn rte_bit64(n: u32) -> u64 {
    1u64 << n
}

/// Transmit offload capability: IPv4 header checksum (`RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`).
pub const RTE_ETH_TX_OFFLOAD_IPV4_CKSUM: u64 = rte_bit64(1);
/// Transmit offload capability: SCTP CRC32c (`RTE_ETH_TX_OFFLOAD_SCTP_CKSUM`).
pub const RTE_ETH_TX_OFFLOAD_SCTP_CKSUM: u64 = rte_bit64(4);
/// Transmit offload capability: multi-segment mbufs (`RTE_ETH_TX_OFFLOAD_MULTI_SEGS`).
pub const RTE_ETH_TX_OFFLOAD_MULTI_SEGS: u64 = rte_bit64(15);
/// Transmit offload: all mbufs of a queue come from one pool and have refcount 1.
pub const RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: u64 = rte_bit64(16);
/// Receive offload capability: IPv4 header checksum verification.
pub const RTE_ETH_RX_OFFLOAD_IPV4_CKSUM: u64 = rte_bit64(1);
/// Receive offload: scattered receive (frames larger than one mbuf).
pub const RTE_ETH_RX_OFFLOAD_SCATTER: u64 = rte_bit64(13);
/// Receive offload: SCTP CRC32c verification (`RTE_ETH_RX_OFFLOAD_SCTP_CKSUM`).
pub const RTE_ETH_RX_OFFLOAD_SCTP_CKSUM: u64 = rte_bit64(17);
/// mbuf receive flags: the L4 checksum status mask (`RTE_MBUF_F_RX_L4_CKSUM_MASK`).
pub const RTE_MBUF_F_RX_L4_CKSUM_MASK: u64 = (1u64 << 3) | (1u64 << 8);
/// mbuf receive flags: no information about the L4 checksum (`RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN`).
pub const RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN: u64 = 0;
/// mbuf receive flags: the L4 checksum is wrong (`RTE_MBUF_F_RX_L4_CKSUM_BAD`).
pub const RTE_MBUF_F_RX_L4_CKSUM_BAD: u64 = 1u64 << 3;
/// mbuf receive flags: the L4 checksum is valid (`RTE_MBUF_F_RX_L4_CKSUM_GOOD`).
pub const RTE_MBUF_F_RX_L4_CKSUM_GOOD: u64 = 1u64 << 8;
/// mbuf receive flags: the L4 checksum field is not correct but the data's integrity was
/// verified (`RTE_MBUF_F_RX_L4_CKSUM_NONE`).
pub const RTE_MBUF_F_RX_L4_CKSUM_NONE: u64 = (1u64 << 3) | (1u64 << 8);

/// mbuf transmit flag: the packet is IPv4 (`RTE_MBUF_F_TX_IPV4`).
pub const RTE_MBUF_F_TX_IPV4: u64 = 1u64 << 55;
/// mbuf transmit flag: the packet is IPv6 (`RTE_MBUF_F_TX_IPV6`).
pub const RTE_MBUF_F_TX_IPV6: u64 = 1u64 << 56;
/// mbuf transmit flag: compute the IPv4 header checksum (`RTE_MBUF_F_TX_IP_CKSUM`).
pub const RTE_MBUF_F_TX_IP_CKSUM: u64 = 1u64 << 54;
/// mbuf transmit flag: compute the SCTP CRC32c (`RTE_MBUF_F_TX_SCTP_CKSUM`).
pub const RTE_MBUF_F_TX_SCTP_CKSUM: u64 = 2u64 << 52;
/// mbuf receive flags: the IPv4 checksum status mask (`RTE_MBUF_F_RX_IP_CKSUM_MASK`).
pub const RTE_MBUF_F_RX_IP_CKSUM_MASK: u64 = (1u64 << 4) | (1u64 << 7);
/// mbuf receive flags: the IPv4 checksum is known bad (`RTE_MBUF_F_RX_IP_CKSUM_BAD`).
pub const RTE_MBUF_F_RX_IP_CKSUM_BAD: u64 = 1u64 << 4;

/// RSS hash type: IPv4 (`RTE_ETH_RSS_IPV4`).
pub const RTE_ETH_RSS_IPV4: u64 = rte_bit64(2);
/// RSS hash type: fragmented IPv4.
pub const RTE_ETH_RSS_FRAG_IPV4: u64 = rte_bit64(3);
/// RSS hash type: non-fragmented IPv4 SCTP (ports and addresses).
pub const RTE_ETH_RSS_NONFRAG_IPV4_SCTP: u64 = rte_bit64(6);
/// RSS hash type: non-fragmented IPv4, other protocols.
pub const RTE_ETH_RSS_NONFRAG_IPV4_OTHER: u64 = rte_bit64(7);
/// RSS hash type: IPv6.
pub const RTE_ETH_RSS_IPV6: u64 = rte_bit64(8);
/// RSS hash type: fragmented IPv6.
pub const RTE_ETH_RSS_FRAG_IPV6: u64 = rte_bit64(9);
/// RSS hash type: non-fragmented IPv6 SCTP.
pub const RTE_ETH_RSS_NONFRAG_IPV6_SCTP: u64 = rte_bit64(12);
/// RSS hash type: non-fragmented IPv6, other protocols.
pub const RTE_ETH_RSS_NONFRAG_IPV6_OTHER: u64 = rte_bit64(13);
/// RSS hash type: IPv6 with extension headers.
pub const RTE_ETH_RSS_IPV6_EX: u64 = rte_bit64(15);
/// RSS hash types over IP addresses (`RTE_ETH_RSS_IP`).
pub const RTE_ETH_RSS_IP: u64 = RTE_ETH_RSS_IPV4
    | RTE_ETH_RSS_FRAG_IPV4
    | RTE_ETH_RSS_NONFRAG_IPV4_OTHER
    | RTE_ETH_RSS_IPV6
    | RTE_ETH_RSS_FRAG_IPV6
    | RTE_ETH_RSS_NONFRAG_IPV6_OTHER
    | RTE_ETH_RSS_IPV6_EX;

/// The default mbuf buffer size: 2048 bytes of data room plus the headroom
/// (`RTE_MBUF_DEFAULT_BUF_SIZE`).
pub const RTE_MBUF_DEFAULT_BUF_SIZE: u32 = 2048 + RTE_PKTMBUF_HEADROOM;

/// Indices for [`rsdpdk_constant`], one per hand-written constant above, in the order of
/// `csrc/shim.c`.
pub const CHECKED_CONSTANTS: &[(u32, u64, &str)] = &[
    (
        0,
        RTE_ETH_TX_OFFLOAD_IPV4_CKSUM,
        "RTE_ETH_TX_OFFLOAD_IPV4_CKSUM",
    ),
    (
        1,
        RTE_ETH_TX_OFFLOAD_SCTP_CKSUM,
        "RTE_ETH_TX_OFFLOAD_SCTP_CKSUM",
    ),
    (
        2,
        RTE_ETH_TX_OFFLOAD_MULTI_SEGS,
        "RTE_ETH_TX_OFFLOAD_MULTI_SEGS",
    ),
    (
        3,
        RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE,
        "RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE",
    ),
    (
        4,
        RTE_ETH_RX_OFFLOAD_IPV4_CKSUM,
        "RTE_ETH_RX_OFFLOAD_IPV4_CKSUM",
    ),
    (5, RTE_ETH_RX_OFFLOAD_SCATTER, "RTE_ETH_RX_OFFLOAD_SCATTER"),
    (6, RTE_MBUF_F_TX_IPV4, "RTE_MBUF_F_TX_IPV4"),
    (7, RTE_MBUF_F_TX_IPV6, "RTE_MBUF_F_TX_IPV6"),
    (8, RTE_MBUF_F_TX_IP_CKSUM, "RTE_MBUF_F_TX_IP_CKSUM"),
    (9, RTE_MBUF_F_TX_SCTP_CKSUM, "RTE_MBUF_F_TX_SCTP_CKSUM"),
    (10, RTE_ETH_RSS_IP, "RTE_ETH_RSS_IP"),
    (
        11,
        RTE_ETH_RSS_NONFRAG_IPV4_SCTP,
        "RTE_ETH_RSS_NONFRAG_IPV4_SCTP",
    ),
    (
        12,
        RTE_ETH_RSS_NONFRAG_IPV6_SCTP,
        "RTE_ETH_RSS_NONFRAG_IPV6_SCTP",
    ),
    (
        13,
        RTE_MBUF_DEFAULT_BUF_SIZE as u64,
        "RTE_MBUF_DEFAULT_BUF_SIZE",
    ),
    (14, RTE_MAX_ETHPORTS as u64, "RTE_MAX_ETHPORTS"),
    (
        15,
        RTE_MBUF_F_RX_IP_CKSUM_MASK,
        "RTE_MBUF_F_RX_IP_CKSUM_MASK",
    ),
    (16, RTE_MBUF_F_RX_IP_CKSUM_BAD, "RTE_MBUF_F_RX_IP_CKSUM_BAD"),
    (17, 1, "RTE_ETH_LINK_UP"),
    (18, RTE_PKTMBUF_HEADROOM as u64, "RTE_PKTMBUF_HEADROOM"),
    (
        19,
        RTE_ETH_RX_OFFLOAD_SCTP_CKSUM,
        "RTE_ETH_RX_OFFLOAD_SCTP_CKSUM",
    ),
    (
        20,
        RTE_MBUF_F_RX_L4_CKSUM_MASK,
        "RTE_MBUF_F_RX_L4_CKSUM_MASK",
    ),
    (
        21,
        RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN,
        "RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN",
    ),
    (22, RTE_MBUF_F_RX_L4_CKSUM_BAD, "RTE_MBUF_F_RX_L4_CKSUM_BAD"),
    (
        23,
        RTE_MBUF_F_RX_L4_CKSUM_GOOD,
        "RTE_MBUF_F_RX_L4_CKSUM_GOOD",
    ),
    (
        24,
        RTE_MBUF_F_RX_L4_CKSUM_NONE,
        "RTE_MBUF_F_RX_L4_CKSUM_NONE",
    ),
];
