//! Raw IPv4/IPv6 sockets for IP protocol 132 (SCTP), and the portable backend on them.
//!
//! The kernel keeps doing IP: routing, source address selection, neighbour resolution,
//! fragmentation and reassembly. Differences between the families that the backends hide:
//!
//! - IPv4 raw sockets receive the IP header in front of the SCTP packet: it is stripped
//!   (honouring IHL, i.e. options) and the destination address is taken from it.
//! - IPv6 raw sockets receive only the payload; the destination comes from `IPV6_PKTINFO`
//!   (`IPV6_RECVPKTINFO` is enabled).
//! - On send, the kernel builds the IP header; the source address of a packet is chosen with
//!   an `IP_PKTINFO` / `IPV6_PKTINFO` control message (multi-homing).
//!
//! Opening a raw socket needs `CAP_NET_RAW`; without it the open fails with
//! [`LinkError::RawNeedsCapNetRaw`]. Every raw socket for protocol 132 sees every SCTP packet
//! addressed to the host (or namespace): several workers must filter (steering comes with the
//! runtime). Without a kernel SCTP module the kernel answers nothing itself as long as a raw
//! socket is open; when none is, it sends ICMP protocol-unreachable, which deployments filter.
//!
//! [`RawPollLink`] is the portable backend: non-blocking sockets, `recvmmsg`/`sendmmsg` and
//! `poll(2)`, for kernels without io_uring (router kernels, 32-bit MIPS/PowerPC).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::link::{
    Backend, Interest, Link, LinkError, LinkStats, Readiness, WakeTarget, Waker, ip_header_len,
};
use crate::packet::{RxBatch, RxMeta, TxBatch};
use crate::sys::{self, EventFd, MmsgScratch};

/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: i32 = 132;

/// The largest IPv4 header (IHL = 15).
pub(crate) const MAX_IPV4_HEADER: usize = 60;

/// The configuration of a raw-IP link (both the poll and the io_uring backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawConfig {
    /// Open an IPv4 socket.
    pub ipv4: bool,
    /// Open an IPv6 socket (skipped silently when the kernel has no IPv6 and IPv4 is on).
    pub ipv6: bool,
    /// Bind the IPv4 socket to this address (receive only packets to it).
    pub bind4: Option<Ipv4Addr>,
    /// Bind the IPv6 socket to this address.
    pub bind6: Option<Ipv6Addr>,
    /// Bind both sockets to this interface (`SO_BINDTODEVICE`).
    pub device: Option<String>,
    /// The largest SCTP packet received (IP header excluded); larger ones are dropped.
    pub max_packet: usize,
    /// Socket receive buffer in bytes (`None`: system default).
    pub recv_buffer: Option<usize>,
    /// Socket send buffer in bytes (`None`: system default).
    pub send_buffer: Option<usize>,
    /// `SO_BUSY_POLL` time for the driver's busy-poll mode (`None`: off).
    pub busy_poll: Option<Duration>,
    /// Set DF and leave path MTU discovery to SCTP (`IP_PMTUDISC_PROBE`).
    pub dont_fragment: bool,
    /// io_uring backend: the number of provided receive buffers (a power of two up to
    /// 32768). More absorb longer bursts between two `recv` calls.
    pub uring_buffers: u16,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            ipv4: true,
            ipv6: true,
            bind4: None,
            bind6: None,
            device: None,
            max_packet: 9216,
            recv_buffer: Some(crate::udp::DEFAULT_SOCKET_BUFFER),
            send_buffer: Some(crate::udp::DEFAULT_SOCKET_BUFFER),
            busy_poll: None,
            dont_fragment: true,
            uring_buffers: 1024,
        }
    }
}

/// The open raw sockets of a link.
#[derive(Debug)]
pub(crate) struct RawSockets {
    pub v4: Option<Socket>,
    pub v6: Option<Socket>,
}

fn raw_error(op: &'static str, e: io::Error) -> LinkError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => LinkError::RawNeedsCapNetRaw,
        _ => LinkError::io(op, e),
    }
}

fn open_one(config: &RawConfig, v6: bool) -> Result<Socket, io::Error> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_SCTP)))?;
    let fd = s.as_raw_fd();
    s.set_nonblocking(true)?;
    if let Some(n) = config.recv_buffer {
        sys::set_buffer_size(fd, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, n)?;
    }
    if let Some(n) = config.send_buffer {
        sys::set_buffer_size(fd, libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, n)?;
    }
    if let Some(d) = config.busy_poll {
        let us = libc::c_int::try_from(d.as_micros()).unwrap_or(libc::c_int::MAX);
        sys::setsockopt_int(fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL, us)?;
    }
    if let Some(dev) = &config.device {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    if v6 {
        sys::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        if config.dont_fragment {
            let _ = sys::setsockopt_int(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            );
        }
        if let Some(a) = config.bind6 {
            s.bind(&SocketAddr::new(IpAddr::V6(a), 0).into())?;
        }
    } else {
        // The destination comes from the IP header; PKTINFO adds the interface index.
        sys::setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        if config.dont_fragment {
            let _ = sys::setsockopt_int(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            );
        }
        if let Some(a) = config.bind4 {
            s.bind(&SocketAddr::new(IpAddr::V4(a), 0).into())?;
        }
    }
    Ok(s)
}

impl RawSockets {
    /// Opens the sockets the configuration asks for.
    pub(crate) fn open(config: &RawConfig) -> Result<Self, LinkError> {
        if !config.ipv4 && !config.ipv6 {
            return Err(LinkError::InvalidConfig(
                "raw link with neither IPv4 nor IPv6",
            ));
        }
        let v4 = if config.ipv4 {
            Some(open_one(config, false).map_err(|e| raw_error("raw IPv4 socket", e))?)
        } else {
            None
        };
        let v6 = if config.ipv6 {
            match open_one(config, true) {
                Ok(s) => Some(s),
                // A kernel without IPv6: fine when IPv4 is open.
                Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) && v4.is_some() => None,
                Err(e) => return Err(raw_error("raw IPv6 socket", e)),
            }
        } else {
            None
        };
        Ok(RawSockets { v4, v6 })
    }

    /// Installs worker `worker`'s steering filter (see [`crate::runtime::steer`]) on both
    /// sockets, then discards what they queued before the filter was in place.
    pub(crate) fn attach_steering(&self, worker: u32, workers: u32) -> Result<(), LinkError> {
        for (sock, v4) in [(&self.v4, true), (&self.v6, false)] {
            if let Some(s) = sock {
                let prog = crate::runtime::steer::raw_filter_program(worker, workers, v4);
                sys::attach_cbpf(s.as_raw_fd(), libc::SO_ATTACH_FILTER, &prog)
                    .map_err(|e| LinkError::io("raw SO_ATTACH_FILTER", e))?;
                sys::discard_queued(s.as_raw_fd());
            }
        }
        Ok(())
    }

    /// The descriptors of the open sockets.
    pub(crate) fn fds(&self) -> Vec<std::os::fd::RawFd> {
        [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .map(|s| s.as_raw_fd())
            .collect()
    }

    /// The socket for packets to `dst`.
    pub(crate) fn for_dst(&self, dst: IpAddr) -> Option<&Socket> {
        match dst {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

/// Source, destination and payload range of a received IPv4 datagram (raw sockets deliver the
/// header). `None` for anything that is not a well-formed IPv4 packet of protocol 132.
pub(crate) fn parse_ipv4(pkt: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, usize, usize)> {
    let first = *pkt.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || pkt.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*pkt.get(2)?, *pkt.get(3)?]));
    // The kernel may report total length 0 for GSO/TSO-assembled packets; otherwise it bounds
    // the payload.
    let end = if total == 0 { pkt.len() } else { total };
    if end < ihl || end > pkt.len() || *pkt.get(9)? != IPPROTO_SCTP as u8 {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Some((src, dst, ihl, end - ihl))
}

/// The portable raw-IP backend (non-blocking sockets, `recvmmsg`/`sendmmsg`, `poll(2)`).
pub struct RawPollLink {
    socks: RawSockets,
    config: RawConfig,
    waker: Arc<EventFd>,
    /// Transmit headers.
    scratch: MmsgScratch,
    /// Receive headers, apart from the transmit ones: the receive path re-initialises only
    /// the headers its previous call used (`MmsgScratch::recv`), so a send in between must
    /// not overwrite them (it did: a receive after a send then used the sent packet's
    /// length and no control buffer, and dropped every packet as truncated).
    rx_scratch: MmsgScratch,
    stats: LinkStats,
    /// Which family reads first (alternates for fairness).
    v6_first: bool,
}

// SAFETY: the only non-Send fields are the raw pointers inside `MmsgScratch`, rewritten before
// every system call made through `&mut self` and never dereferenced afterwards.
unsafe impl Send for RawPollLink {}

impl std::fmt::Debug for RawPollLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPollLink")
            .field("ipv4", &self.socks.v4.is_some())
            .field("ipv6", &self.socks.v6.is_some())
            .finish()
    }
}

impl RawPollLink {
    /// Opens the raw sockets. Fails with [`LinkError::RawNeedsCapNetRaw`] without privilege.
    pub fn open(config: RawConfig) -> Result<Self, LinkError> {
        let socks = RawSockets::open(&config)?;
        let waker = Arc::new(EventFd::new().map_err(|e| LinkError::io("eventfd", e))?);
        Ok(RawPollLink {
            socks,
            config,
            waker,
            scratch: MmsgScratch::new(),
            rx_scratch: MmsgScratch::new(),
            stats: LinkStats::default(),
            v6_first: false,
        })
    }

    /// Whether the link has an IPv4 and an IPv6 socket.
    pub fn families(&self) -> (bool, bool) {
        (self.socks.v4.is_some(), self.socks.v6.is_some())
    }

    /// Makes the kernel deliver to this link only the packets of worker `worker` of
    /// `workers` (classic BPF socket filters, see [`crate::runtime::steer`]).
    pub fn attach_steering(&self, worker: u32, workers: u32) -> Result<(), LinkError> {
        self.socks.attach_steering(worker, workers)
    }

    /// The descriptors of the link's sockets (for registering with an external poller).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.socks.fds()
    }

    /// Receives from one family's socket into the slots from `first` on; returns the first
    /// slot still free.
    fn recv_family(
        &mut self,
        v6: bool,
        rx: &mut RxBatch,
        first: usize,
    ) -> Result<usize, LinkError> {
        let Some(sock) = (if v6 { &self.socks.v6 } else { &self.socks.v4 }) else {
            return Ok(first);
        };
        let fd = sock.as_raw_fd();
        let n = match self.rx_scratch.recv(fd, rx, first) {
            Ok(n) => n,
            Err(e) if sys::is_would_block(&e) => return Ok(first),
            Err(e) => return Err(LinkError::io("raw recvmmsg", e)),
        };
        if n > 0 {
            self.stats.rx_batches += 1;
        }
        for i in 0..n {
            let m = self.rx_scratch.received(i, first);
            accept_raw(
                rx,
                &mut self.stats,
                v6,
                m.slot,
                m.len,
                m.truncated,
                m.name,
                &m.cmsgs,
            );
        }
        Ok(first + n)
    }

    /// Sends the run of same-family packets at the front of `tx`; returns packets handled
    /// and whether to stop (send buffer full).
    fn send_run(&mut self, tx: &mut TxBatch) -> Result<(usize, bool), LinkError> {
        let Some((first_meta, _)) = tx.pending(0) else {
            return Ok((0, true));
        };
        let v6 = first_meta.dst.is_ipv6();
        let Some(sock) = self.socks.for_dst(first_meta.dst) else {
            // No socket of that family: the packet cannot go anywhere.
            tx.consume(1);
            self.stats.tx_dropped += 1;
            return Ok((1, false));
        };
        let fd = sock.as_raw_fd();
        let mut msgs = 0;
        self.scratch.ensure(tx.len());
        while let Some((meta, data)) = tx.pending(msgs) {
            if meta.dst.is_ipv6() != v6 {
                break;
            }
            prepare_raw_send(&mut self.scratch, msgs, meta.src, meta.dst, data);
            msgs += 1;
        }
        match self.scratch.send(fd, msgs) {
            Ok(0) => {
                self.stats.tx_would_block += 1;
                Ok((0, true))
            }
            Ok(sent) => {
                let bytes: usize = tx.iter().take(sent).map(|(_, d)| d.len()).sum();
                self.stats.tx_batches += 1;
                self.stats.tx_packets += sent as u64;
                self.stats.tx_bytes += bytes as u64;
                tx.consume(sent);
                Ok((sent, false))
            }
            Err(e) if sys::is_would_block(&e) => {
                self.stats.tx_would_block += 1;
                Ok((0, true))
            }
            Err(e) if sys::is_per_packet_send_error(&e) => {
                tx.consume(1);
                self.stats.tx_dropped += 1;
                Ok((1, false))
            }
            Err(e) => Err(LinkError::io("raw sendmmsg", e)),
        }
    }
}

/// Records one received raw datagram in `rx` (stripping the IPv4 header) or counts it as
/// dropped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn accept_raw(
    rx: &mut RxBatch,
    stats: &mut LinkStats,
    v6: bool,
    slot: usize,
    len: usize,
    truncated: bool,
    name: Option<SocketAddr>,
    cmsgs: &sys::RecvCmsgs,
) {
    if truncated {
        stats.rx_dropped += 1;
        return;
    }
    let accepted = if v6 {
        match (name, cmsgs.dst) {
            (Some(src), Some(dst)) => rx.push(
                RxMeta {
                    src: src.ip(),
                    dst,
                    encaps_port: 0,
                    ifindex: cmsgs.ifindex,
                },
                slot,
                0,
                len,
            ),
            _ => false,
        }
    } else {
        let data = rx.slot(slot);
        match data.get(..len).and_then(parse_ipv4) {
            Some((src, dst, off, plen)) => rx.push(
                RxMeta {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    encaps_port: 0,
                    ifindex: cmsgs.ifindex,
                },
                slot,
                off,
                plen,
            ),
            None => false,
        }
    };
    if accepted {
        stats.rx_packets += 1;
        // The descriptor just pushed is the last one.
        if let Some(p) = rx.get(rx.len() - 1) {
            stats.rx_bytes += p.data.len() as u64;
        }
    } else {
        stats.rx_dropped += 1;
    }
}

/// Fills message `i` of `scratch` with one raw packet to `dst`, from `src` if given.
pub(crate) fn prepare_raw_send(
    scratch: &mut MmsgScratch,
    i: usize,
    src: Option<IpAddr>,
    dst: IpAddr,
    data: &[u8],
) {
    let v6 = dst.is_ipv6();
    // Raw sockets take port 0 (IPv6 would reject a port other than the protocol).
    let namelen =
        sys::encode_sockaddr(SocketAddr::new(dst, 0), v6, &mut scratch.names[i]).unwrap_or(0);
    scratch.iovs[i] = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // A source of the other family cannot be expressed: let the kernel choose.
    let src = src.filter(|s| s.is_ipv6() == v6);
    let controllen = sys::encode_send_cmsgs(&mut scratch.ctrl[i], src, None);
    scratch.hdrs[i].msg_hdr = sys::msghdr(
        &mut scratch.names[i],
        namelen,
        &mut scratch.iovs[i],
        1,
        &mut scratch.ctrl[i],
        controllen,
    );
    scratch.hdrs[i].msg_len = 0;
    scratch.pkts[i] = 1;
}

impl Link for RawPollLink {
    fn backend(&self) -> Backend {
        Backend::RawPoll
    }

    fn rx_slot_size(&self) -> usize {
        self.config.max_packet + MAX_IPV4_HEADER
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
        let first_v6 = self.v6_first;
        self.v6_first = !self.v6_first;
        let next = self.recv_family(first_v6, rx, 0)?;
        self.recv_family(!first_v6, rx, next)?;
        Ok(rx.len())
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        let mut handled = 0;
        // Bounded: each round handles at least one packet or stops.
        while !tx.is_empty() {
            let (n, stop) = self.send_run(tx)?;
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
        let mut events = libc::POLLIN;
        if interest == Interest::ReadWrite {
            events |= libc::POLLOUT;
        }
        let fd_or_none = |s: &Option<Socket>| s.as_ref().map_or(-1, |s| s.as_raw_fd());
        // Negative descriptors are ignored by poll(2).
        let mut fds = [
            libc::pollfd {
                fd: fd_or_none(&self.socks.v4),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: fd_or_none(&self.socks.v6),
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
        let woken = fds[2].revents & libc::POLLIN != 0 && self.waker.drain();
        let r = fds[0].revents | fds[1].revents;
        Ok(Readiness {
            readable: r & (libc::POLLIN | libc::POLLERR) != 0,
            writable: r & libc::POLLOUT != 0,
            woken,
        })
    }

    fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.waker) as Arc<dyn WakeTarget>)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_packet(ihl_words: u8, payload: &[u8]) -> Vec<u8> {
        let hl = usize::from(ihl_words) * 4;
        let mut p = vec![0u8; hl];
        p[0] = 0x40 | ihl_words;
        let total = (hl + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = 132;
        p[12..16].copy_from_slice(&[198, 18, 0, 1]);
        p[16..20].copy_from_slice(&[198, 18, 0, 2]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_ipv4_header_is_stripped_including_options() {
        let p = ipv4_packet(5, b"sctp!");
        let (src, dst, off, len) = parse_ipv4(&p).unwrap();
        assert_eq!(
            (src, dst),
            (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))
        );
        assert_eq!(&p[off..off + len], b"sctp!");
        let p = ipv4_packet(7, b"with options");
        let (_, _, off, len) = parse_ipv4(&p).unwrap();
        assert_eq!((off, &p[off..off + len]), (28, &b"with options"[..]));
    }

    #[test]
    fn malformed_ipv4_headers_are_rejected() {
        let good = ipv4_packet(5, b"abc");
        assert!(parse_ipv4(&[]).is_none());
        assert!(parse_ipv4(&good[..19]).is_none());
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert!(parse_ipv4(&v6).is_none());
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        assert!(parse_ipv4(&short_ihl).is_none());
        let mut long_total = good.clone();
        long_total[2..4].copy_from_slice(&100u16.to_be_bytes());
        assert!(parse_ipv4(&long_total).is_none());
        let mut tcp = good.clone();
        tcp[9] = 6;
        assert!(parse_ipv4(&tcp).is_none());
        let mut big_ihl = good;
        big_ihl[0] = 0x4f;
        assert!(parse_ipv4(&big_ihl).is_none());
        // Trailing bytes beyond the total length are ignored.
        let mut padded = ipv4_packet(5, b"xy");
        padded.extend_from_slice(&[0; 6]);
        let (_, _, off, len) = parse_ipv4(&padded).unwrap();
        assert_eq!(&padded[off..off + len], b"xy");
    }
}
