//! Packet I/O for the SCTP stack, and the per-core run-to-completion runtime ([`runtime`]).
//!
//! All `unsafe` and OS code of the project lives in this crate; every `unsafe` block carries a
//! `// SAFETY:` comment.
//!
//! # Design
//!
//! A [`Link`] moves *bursts* of SCTP packets (common header + chunks, IP and UDP headers
//! removed) together with their addresses, in the vocabulary of the sans-IO stack:
//! [`RxMeta`] `{ src, dst, encaps_port, ifindex }` matches the stack's datagram input and
//! [`TxMeta`] `{ src: Option<_>, dst, encaps_port }` its transmit output. `encaps_port` is the
//! peer's UDP port under UDP encapsulation (RFC 6951, remembered per path by the stack) and 0
//! on raw IP.
//!
//! Backends:
//!
//! | module | backend | privilege | notes |
//! |---|---|---|---|
//! | [`udp`] | UDP encapsulation, `sendmmsg`/`recvmmsg`, GSO/GRO, PKTINFO | none | the default |
//! | [`raw`] | raw IPv4/IPv6 protocol 132 on non-blocking sockets and `poll(2)` | `CAP_NET_RAW` | portable, any kernel |
//! | `uring` | raw IP on io_uring: multishot receive, provided buffers, linked sends | `CAP_NET_RAW` | x86_64/aarch64, Linux 6.0+ |
//! | `dpdk` | DPDK poll-mode driver (feature `dpdk`): our own Ethernet, IPv4/IPv6, ARP, ND | root (hugepages, NIC) | see `docs/dpdk.md` |
//! | [`memory`] | in-memory N-node fabric with latency, loss, duplication, reordering, MTU, rate | none | deterministic (manual clock) or real time |
//!
//! [`AnyLink`] holds any of them and dispatches once per burst with a `match`; drivers that
//! know their backend can be generic over `L: Link`. Neither puts dynamic dispatch on the
//! per-packet path. [`AnyLink::open_raw`] picks io_uring and falls back to the poll backend
//! when io_uring is unavailable ([`LinkError::is_fallback_signal`]).
//!
//! # The driver loop
//!
//! ```text
//! loop {
//!     link.recv(&mut rx)?;                       // one burst, no blocking
//!     for p in rx.iter() { endpoint.handle_datagram(now, p.meta.src, p.meta.dst, p.meta.encaps_port, p.data) }
//!     while let Some(buf) = tx.free_slot() {     // encode straight into link-owned memory
//!         match endpoint.poll_transmit(now, buf) {
//!             Some(t) => { tx.commit(TxMeta { src: t.src, dst: t.dst, encaps_port: t.encaps_port }, t.len); }
//!             None => break,
//!         }
//!     }
//!     link.send(&mut tx)?;                       // one burst; leftovers stay queued in order
//!     endpoint.handle_timeout(now);
//!     if idle { link.wait(Interest::Read, endpoint.poll_timeout() - now)?; } // or busy-poll
//! }
//! ```
//!
//! # Buffer ownership
//!
//! - [`RxBatch`] and [`TxBatch`] are owned by the driver and allocated once (`slots x
//!   slot_size` bytes plus descriptors). The UDP and poll backends make the kernel write
//!   straight into the receive slots and read straight from the transmit slots (zero copy).
//!   The io_uring backend receives into its own provided-buffer ring and copies each packet
//!   into the batch, returning the buffer to the kernel at once (one memcpy per packet, far
//!   below the cost of the receive itself, and the ring never starves while the stack works).
//! - Packets borrowed from an `RxBatch` are valid until the next `recv` on that batch.
//! - [`Link::send`] does not keep references: when it returns, every slot it consumed may be
//!   reused (the io_uring backend waits for its send completions, which `MSG_DONTWAIT` makes
//!   immediate).
//! - [`BufferPool`] hands out owned [`PacketBuf`]s for packets that outlive a burst (in-flight
//!   packets of the memory fabric; packets handed to another worker). Pools are bounded and
//!   allocate only while growing to their high-water mark, so a steady state allocates
//!   nothing per packet.
//!
//! # Threading
//!
//! A link is `Send` but not `Sync`: one worker thread owns it and calls `recv`, `send` and
//! `wait`. The io_uring backend additionally binds itself to the thread of its first
//! `recv`/`send`/`wait` (single-issuer rings); create it anywhere, then keep it on that
//! thread. The only cross-thread handle is the [`Waker`] (an eventfd, or a condition variable
//! for the memory fabric), which interrupts `wait` so another thread can hand work to the
//! worker. Memory fabrics in real-time mode may have their nodes on different threads; in
//! manual (deterministic) mode one thread drives everything and `wait` never blocks.
//!
//! # Platforms
//!
//! The OS backends are Linux-only. The io_uring backend is compiled on x86_64 and aarch64 with
//! the default `io-uring` feature; elsewhere (32-bit MIPS and PowerPC routers) the feature has
//! no effect and the poll backends run the same code paths. The crate uses no 64-bit atomics.
#![deny(unsafe_op_in_unsafe_fn)]

mod any;
#[cfg(all(target_os = "linux", feature = "dpdk"))]
pub mod dpdk;
pub mod link;
pub mod memory;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod packet;
#[cfg(target_os = "linux")]
pub mod raw;
#[cfg(target_os = "linux")]
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod signal;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
pub mod udp;
#[cfg(all(
    feature = "io-uring",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod uring;
#[cfg(all(target_os = "linux", feature = "usrsctp"))]
pub mod usrsctp;
#[cfg(all(target_os = "linux", feature = "usrsctp"))]
pub mod usrsctp_raw;

pub use any::AnyLink;
pub use link::{Backend, Interest, Link, LinkError, LinkStats, Readiness, Waker};
pub use packet::{BufferPool, PacketBuf, RxBatch, RxMeta, RxPacket, TxBatch, TxMeta};
