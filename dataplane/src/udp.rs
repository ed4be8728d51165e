//! UDP encapsulation of SCTP (RFC 6951) on one datagram socket: the default, unprivileged
//! backend.
//!
//! - One socket, dual-stack (`[::]` with `IPV6_V6ONLY` off) unless bound to a specific address;
//!   kernels without IPv6 fall back to an IPv4 socket.
//! - `recvmmsg`/`sendmmsg` move a whole burst per system call.
//! - On a wildcard-bound socket, the destination address of each received packet comes from
//!   `IP_PKTINFO` / `IPV6_PKTINFO`, and each sent packet may choose its source address the
//!   same way: this is what multi-homing needs. A socket bound to one address knows both
//!   without control messages (and reports interface index 0).
//! - UDP GSO (`UDP_SEGMENT`, Linux 4.18): consecutive packets to the same peer from the same
//!   source with the same length (the last may be shorter) go out as one message of up to 64
//!   segments. UDP GRO (`UDP_GRO`, Linux 5.0): the kernel may hand over a run of datagrams
//!   from one peer in one buffer, which is split by the reported segment size. Both are detected when the socket opens
//!   and switched off at run time if the kernel refuses them (`EIO` from a GSO send: no
//!   checksum offload on the route).
//! - The remote UDP port of every received packet is reported ([`RxMeta::encaps_port`]):
//!   RFC 6951 §5.4 has the SCTP stack remember it per path.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::link::{
    Backend, Interest, Link, LinkError, LinkStats, Readiness, UDP_HEADER_LEN, Waker, ip_header_len,
};
use crate::packet::{RxBatch, RxMeta, TxBatch};
use crate::sys::{self, EventFd, MmsgScratch};

/// The IANA-registered UDP port for SCTP over UDP (RFC 6951 §5.1).
pub const SCTP_UDP_TUNNELING_PORT: u16 = 9899;

/// The most datagrams one GSO send carries (the kernel's `UDP_MAX_SEGMENTS` on older kernels).
const GSO_MAX_SEGMENTS: usize = 64;
/// The most payload bytes one GSO send carries (IP total length minus headers, with margin).
const GSO_MAX_BYTES: usize = 65_000;
/// The receive slot size with GRO: the largest coalesced run the kernel builds.
const GRO_SLOT_SIZE: usize = 65_536;

/// Socket buffer size asked for by default: bursts of a fast peer must not overflow the
/// receive queue between two polls of a busy worker.
pub const DEFAULT_SOCKET_BUFFER: usize = 4 << 20;

/// The configuration of a [`UdpLink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// The local address: unspecified IPv6 (the default) means every address of both
    /// families; a specific address restricts the link to it.
    pub bind: IpAddr,
    /// The local UDP port (RFC 6951 default 9899; 0 picks a free port).
    pub port: u16,
    /// The remote UDP port used when a packet's [`TxMeta::encaps_port`](crate::TxMeta) is 0.
    pub default_remote_port: u16,
    /// Use UDP GSO when the kernel has it.
    pub gso: bool,
    /// Use UDP GRO when the kernel has it.
    pub gro: bool,
    /// The largest datagram received without GRO; larger ones are dropped and counted.
    pub max_datagram: usize,
    /// Socket receive buffer in bytes (`None`: system default). Privileged processes get it
    /// exactly (`SO_RCVBUFFORCE`); others are capped at `net.core.rmem_max`.
    pub recv_buffer: Option<usize>,
    /// Socket send buffer in bytes (`None`: system default); capped like `recv_buffer`.
    pub send_buffer: Option<usize>,
    /// `SO_REUSEPORT`, for one socket per worker on the same port.
    pub reuse_port: bool,
    /// `SO_BUSY_POLL` time for the driver's busy-poll mode (`None`: off).
    pub busy_poll: Option<Duration>,
    /// Set DF and let the SCTP stack do path MTU discovery (`IP_PMTUDISC_PROBE`); when false,
    /// the kernel may fragment.
    pub dont_fragment: bool,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: SCTP_UDP_TUNNELING_PORT,
            default_remote_port: SCTP_UDP_TUNNELING_PORT,
            gso: true,
            gro: true,
            max_datagram: 9216,
            recv_buffer: Some(DEFAULT_SOCKET_BUFFER),
            send_buffer: Some(DEFAULT_SOCKET_BUFFER),
            reuse_port: false,
            busy_poll: None,
            dont_fragment: true,
        }
    }
}

/// Kernel features the UDP socket ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpFeatures {
    /// GSO sends are in use.
    pub gso: bool,
    /// GRO receives are in use.
    pub gro: bool,
    /// The socket is IPv6 (dual-stack when bound to `[::]`).
    pub ipv6_socket: bool,
}

/// The UDP encapsulation backend. See the [module documentation](self).
pub struct UdpLink {
    socket: Socket,
    v6: bool,
    local: SocketAddr,
    config: UdpConfig,
    gso: bool,
    gro: bool,
    waker: Arc<EventFd>,
    /// Send headers.
    scratch: MmsgScratch,
    /// Receive headers (kept apart so they stay prepared between bursts).
    rx_scratch: MmsgScratch,
    stats: LinkStats,
}

// SAFETY: the only non-Send fields are the raw pointers inside `MmsgScratch`, which are rewritten
// before every system call made through `&mut self` and never dereferenced by us; moving the
// link to another thread moves the memory they would point into along with it.
unsafe impl Send for UdpLink {}

impl std::fmt::Debug for UdpLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpLink")
            .field("local", &self.local)
            .field("features", &self.features())
            .finish()
    }
}

fn open_socket(config: &UdpConfig) -> io::Result<(Socket, bool)> {
    let domain = if config.bind.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    match Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)) {
        Ok(s) => {
            if config.bind.is_ipv6() && config.bind.is_unspecified() {
                s.set_only_v6(false)?;
            }
            Ok((s, config.bind.is_ipv6()))
        }
        // No IPv6 in this kernel: the wildcard falls back to IPv4 only.
        Err(e)
            if config.bind == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            Ok((
                Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?,
                false,
            ))
        }
        Err(e) => Err(e),
    }
}

impl UdpLink {
    /// Opens and binds the socket.
    pub fn open(config: UdpConfig) -> Result<Self, LinkError> {
        let (socket, v6) = open_socket(&config).map_err(|e| LinkError::io("udp socket", e))?;
        let fd = socket.as_raw_fd();
        socket
            .set_nonblocking(true)
            .map_err(|e| LinkError::io("udp nonblocking", e))?;
        if config.reuse_port {
            socket
                .set_reuse_port(true)
                .map_err(|e| LinkError::io("udp SO_REUSEPORT", e))?;
        }
        if let Some(n) = config.recv_buffer {
            sys::set_buffer_size(fd, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, n)
                .map_err(|e| LinkError::io("udp SO_RCVBUF", e))?;
        }
        if let Some(n) = config.send_buffer {
            sys::set_buffer_size(fd, libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, n)
                .map_err(|e| LinkError::io("udp SO_SNDBUF", e))?;
        }
        if let Some(d) = config.busy_poll {
            let us = libc::c_int::try_from(d.as_micros()).unwrap_or(libc::c_int::MAX);
            sys::setsockopt_int(fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL, us)
                .map_err(|e| LinkError::io("udp SO_BUSY_POLL", e))?;
        }
        // Destination addresses of received packets: IPv4 (also IPv4-mapped on a dual-stack
        // socket) and IPv6. A socket bound to one address receives for that address only and
        // needs no control message per packet (nor per send, see `build_send`).
        let wildcard = config.bind.is_unspecified();
        if wildcard {
            sys::setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
                .map_err(|e| LinkError::io("udp IP_PKTINFO", e))?;
        }
        if v6 && wildcard {
            sys::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                .map_err(|e| LinkError::io("udp IPV6_RECVPKTINFO", e))?;
        }
        if config.dont_fragment {
            // Best effort: SCTP does its own PMTU discovery; old kernels may lack PROBE.
            let _ = sys::setsockopt_int(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            );
            if v6 {
                let _ = sys::setsockopt_int(
                    fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    libc::IP_PMTUDISC_PROBE,
                );
            }
        }
        let bind_ip = if v6 {
            config.bind
        } else {
            match config.bind {
                IpAddr::V6(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                other => other,
            }
        };
        socket
            .bind(&SocketAddr::new(bind_ip, config.port).into())
            .map_err(|e| LinkError::io("udp bind", e))?;
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(SocketAddr::new(bind_ip, config.port));
        let gso = config.gso && gso_supported(fd);
        let gro = config.gro && sys::setsockopt_int(fd, libc::SOL_UDP, sys::UDP_GRO, 1).is_ok();
        let waker = Arc::new(EventFd::new().map_err(|e| LinkError::io("eventfd", e))?);
        Ok(UdpLink {
            socket,
            v6,
            local,
            config,
            gso,
            gro,
            waker,
            scratch: MmsgScratch::new(),
            rx_scratch: MmsgScratch::new(),
            stats: LinkStats::default(),
        })
    }

    /// The bound address (with the actual port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The kernel features in use.
    pub fn features(&self) -> UdpFeatures {
        UdpFeatures {
            gso: self.gso,
            gro: self.gro,
            ipv6_socket: self.v6,
        }
    }

    /// Makes the kernel pick the socket of a `SO_REUSEPORT` group by the steering rules of
    /// [`crate::runtime::steer`]: socket *i* (in bind order) gets worker *i*'s packets.
    /// Attach it once, on any socket of the group, after all of them are bound.
    pub fn attach_reuseport_steering(&self, workers: u32) -> Result<(), LinkError> {
        let prog = crate::runtime::steer::reuseport_program(workers);
        sys::attach_cbpf(
            self.socket.as_raw_fd(),
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &prog,
        )
        .map_err(|e| LinkError::io("udp SO_ATTACH_REUSEPORT_CBPF", e))
    }

    /// The socket's file descriptor (for registering with an external poller).
    pub fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    fn remote(&self, ip: IpAddr, port: u16) -> SocketAddr {
        let port = if port == 0 {
            self.config.default_remote_port
        } else {
            port
        };
        SocketAddr::new(ip, port)
    }

    /// How many pending packets, starting at `first`, can go out as one GSO message.
    fn gso_run(tx: &TxBatch, first: usize, gso: bool) -> usize {
        let Some((meta, data)) = tx.pending(first) else {
            return 0;
        };
        if !gso || data.is_empty() {
            return 1;
        }
        let seg = data.len();
        let max_segs = GSO_MAX_SEGMENTS.min(GSO_MAX_BYTES / seg).max(1);
        let mut run = 1;
        let mut total = seg;
        while run < max_segs {
            let Some((m, d)) = tx.pending(first + run) else {
                break;
            };
            // Packets of several associations (verification tags) may share a run: a
            // receiving `SO_REUSEPORT` group picks one socket for the whole run by its first
            // packet and that worker hands the others to their owners. Splitting runs by tag
            // instead cost a single worker half its throughput (P5: the packets of a burst
            // alternate between associations, so runs shrank to one packet).
            if m != meta || d.len() > seg || d.is_empty() || total + d.len() > GSO_MAX_BYTES {
                break;
            }
            run += 1;
            total += d.len();
            if d.len() < seg {
                // Only the last segment may be shorter.
                break;
            }
        }
        run
    }

    /// Builds one message per GSO run (or per packet) from the pending packets and returns
    /// the message count; `None` when the first packet's destination cannot be expressed on
    /// this socket (an IPv6 peer on an IPv4-only socket).
    fn build_send(&mut self, tx: &TxBatch, gso_allowed: bool) -> Option<usize> {
        let pending = tx.len();
        self.scratch.ensure(pending);
        let gso = self.gso && gso_allowed;
        let mut pkt = 0;
        let mut msgs = 0;
        while pkt < pending {
            let run = Self::gso_run(tx, pkt, gso);
            let Some((meta, first)) = tx.pending(pkt) else {
                break;
            };
            let remote = self.remote(meta.dst, meta.encaps_port);
            let seg_len = first.len();
            let MmsgScratch {
                hdrs,
                iovs,
                names,
                ctrl,
                pkts,
                ..
            } = &mut self.scratch;
            let Some(namelen) = sys::encode_sockaddr(remote, self.v6, &mut names[msgs]) else {
                // Stop here; the next round starts with this packet and drops it.
                if msgs == 0 {
                    return None;
                }
                break;
            };
            for k in 0..run {
                if let Some((_, d)) = tx.pending(pkt + k) {
                    iovs[pkt + k] = libc::iovec {
                        iov_base: d.as_ptr() as *mut libc::c_void,
                        iov_len: d.len(),
                    };
                }
            }
            let gso = (run > 1).then(|| u16::try_from(seg_len).unwrap_or(u16::MAX));
            // The bound address is the source anyway: no control message for it.
            let src = meta.src.filter(|&a| {
                self.config.bind.is_unspecified()
                    || sys::canonical_ip(a) != sys::canonical_ip(self.local.ip())
            });
            let controllen = sys::encode_send_cmsgs(&mut ctrl[msgs], src, gso);
            hdrs[msgs].msg_hdr = sys::msghdr(
                &mut names[msgs],
                namelen,
                &mut iovs[pkt],
                run,
                &mut ctrl[msgs],
                controllen,
            );
            hdrs[msgs].msg_len = 0;
            pkts[msgs] = run;
            msgs += 1;
            pkt += run;
        }
        Some(msgs)
    }
}

/// Whether the kernel knows `UDP_SEGMENT` (a get of the option succeeds).
fn gso_supported(fd: RawFd) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the pointers describe a live c_int and its length.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            sys::UDP_SEGMENT,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    ret == 0
}

impl Link for UdpLink {
    fn backend(&self) -> Backend {
        Backend::Udp
    }

    fn rx_slot_size(&self) -> usize {
        if self.gro {
            GRO_SLOT_SIZE
        } else {
            self.config.max_datagram
        }
    }

    fn header_overhead(&self, remote: IpAddr) -> usize {
        ip_header_len(remote) + UDP_HEADER_LEN
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
        // An ICMP error reported on the socket concerns one earlier send, not the socket, and
        // reporting it clears it: receive again, so that datagrams queued behind it are not
        // left for a readiness event that already fired (bounded).
        let mut attempts = 0;
        let received = loop {
            match self.rx_scratch.recv(self.socket.as_raw_fd(), rx, 0) {
                Ok(n) => break n,
                Err(e) if sys::is_would_block(&e) => return Ok(0),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
                    ) =>
                {
                    attempts += 1;
                    if attempts >= 8 {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(LinkError::io("recvmmsg", e)),
            }
        };
        self.stats.rx_batches += 1;
        // Fewer datagrams than slots: recvmmsg stopped at an empty queue.
        rx.set_drained(received < rx.slots());
        let local_ip = sys::canonical_ip(self.local.ip());
        for i in 0..received {
            let m = self.rx_scratch.received(i, 0);
            let (Some(src), false) = (m.name, m.truncated) else {
                self.stats.rx_dropped += 1;
                continue;
            };
            let dst = match m.cmsgs.dst {
                Some(d) => d,
                None if !local_ip.is_unspecified() => local_ip,
                None => {
                    self.stats.rx_dropped += 1;
                    continue;
                }
            };
            let meta = RxMeta {
                src: src.ip(),
                dst,
                encaps_port: src.port(),
                ifindex: m.cmsgs.ifindex,
            };
            let len = m.len;
            let seg = m.cmsgs.gro_size.map_or(len, usize::from).max(1);
            if len > seg {
                self.stats.rx_gro_batches += 1;
            }
            let mut off = 0;
            while off < len {
                let n = seg.min(len - off);
                if rx.push(meta, m.slot, off, n) {
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += n as u64;
                } else {
                    self.stats.rx_dropped += 1;
                }
                off += n;
            }
        }
        Ok(rx.len())
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        let mut handled = 0;
        let mut gso_allowed = true;
        // Bounded: every round consumes at least one packet or returns.
        while !tx.is_empty() {
            let Some(msgs) = self.build_send(tx, gso_allowed) else {
                tx.consume(1);
                handled += 1;
                self.stats.tx_dropped += 1;
                continue;
            };
            if msgs == 0 {
                break;
            }
            let ret = self.scratch.send(self.socket.as_raw_fd(), msgs);
            self.stats.tx_batches += 1;
            if let Ok(sent_msgs) = ret {
                if sent_msgs == 0 {
                    self.stats.tx_would_block += 1;
                    break;
                }
                let mut pkts = 0;
                for m in 0..sent_msgs {
                    let n = self.scratch.pkts[m];
                    if n > 1 {
                        self.stats.tx_gso_sends += 1;
                    }
                    pkts += n;
                }
                let bytes: usize = tx.iter().take(pkts).map(|(_, d)| d.len()).sum();
                self.stats.tx_packets += pkts as u64;
                self.stats.tx_bytes += bytes as u64;
                tx.consume(pkts);
                handled += pkts;
                gso_allowed = true;
                continue;
            }
            let Err(e) = ret else { break };
            let first_pkts = self.scratch.pkts[0];
            if sys::is_would_block(&e) {
                self.stats.tx_would_block += 1;
                break;
            }
            if first_pkts > 1 {
                // The kernel refused the GSO message. EIO: no checksum offload on this route,
                // GSO cannot work: switch it off. Otherwise (e.g. a segment above the MTU),
                // resend the run packet by packet so each gets its own verdict.
                if e.raw_os_error() == Some(libc::EIO) {
                    self.gso = false;
                }
                gso_allowed = false;
                continue;
            }
            if sys::is_per_packet_send_error(&e) {
                tx.consume(1);
                handled += 1;
                self.stats.tx_dropped += 1;
                gso_allowed = true;
                continue;
            }
            return Err(LinkError::io("sendmmsg", e));
        }
        Ok(handled)
    }

    fn wait(
        &mut self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError> {
        let mut events = libc::POLLIN;
        if interest == Interest::ReadWrite {
            events |= libc::POLLOUT;
        }
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: self.waker.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        sys::poll(&mut fds, timeout).map_err(|e| LinkError::io("poll", e))?;
        let woken = fds[1].revents & libc::POLLIN != 0 && self.waker.drain();
        let r = fds[0].revents;
        Ok(Readiness {
            readable: r & (libc::POLLIN | libc::POLLERR) != 0,
            writable: r & libc::POLLOUT != 0,
            woken,
        })
    }

    fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.waker) as Arc<dyn crate::link::WakeTarget>)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}
