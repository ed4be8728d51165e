//! Thin, checked wrappers around the system calls the OS backends share: socket addresses,
//! control messages, `poll(2)`, and the eventfd behind a [`Waker`](crate::Waker).

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::link::WakeTarget;
use crate::packet::RxBatch;

/// `UDP_SEGMENT` (Linux 4.18): UDP GSO segment size, socket option and control message.
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (Linux 5.0): UDP GRO receive, socket option and control message.
pub(crate) const UDP_GRO: libc::c_int = 104;
/// `SO_BUSY_POLL` (the same number on every architecture we build for).
pub(crate) const SO_BUSY_POLL: libc::c_int = 46;

/// Control-message space: room for `IP_PKTINFO` or `IPV6_PKTINFO` plus `UDP_SEGMENT`/`UDP_GRO`,
/// 8-byte aligned as `cmsghdr` requires.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct CmsgBuf(pub(crate) [u8; 128]);

impl CmsgBuf {
    pub(crate) const fn zeroed() -> Self {
        CmsgBuf([0; 128])
    }
}

/// Scratch arrays for `recvmmsg`/`sendmmsg`: message headers, scatter lists, address and
/// control buffers. They hold raw pointers that are rewritten before every system call and
/// never dereferenced afterwards, so the owner may be moved between threads.
pub(crate) struct MmsgScratch {
    pub(crate) hdrs: Vec<libc::mmsghdr>,
    pub(crate) iovs: Vec<libc::iovec>,
    pub(crate) names: Vec<libc::sockaddr_storage>,
    pub(crate) ctrl: Vec<CmsgBuf>,
    /// For sends: how many packets each message carries.
    pub(crate) pkts: Vec<usize>,
    /// For receives: the arena layout (base address, slot size, first slot, slots) the
    /// headers were last prepared for, and how many leading headers the kernel has written to
    /// since (only those need resetting before the next call).
    rx_layout: Option<(usize, usize, usize, usize)>,
    rx_dirty: usize,
}

/// One datagram of the last [`MmsgScratch::recv`].
pub(crate) struct Received {
    /// The receive slot it landed in.
    pub slot: usize,
    /// Its length.
    pub len: usize,
    /// The kernel cut it to fit the slot.
    pub truncated: bool,
    /// The sender's address.
    pub name: Option<SocketAddr>,
    /// What the control messages said.
    pub cmsgs: RecvCmsgs,
}

impl MmsgScratch {
    pub(crate) fn new() -> Self {
        MmsgScratch {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            names: Vec::new(),
            ctrl: Vec::new(),
            pkts: Vec::new(),
            rx_layout: None,
            rx_dirty: 0,
        }
    }

    /// Makes room for `n` messages (allocates only when a batch larger than ever before shows
    /// up).
    pub(crate) fn ensure(&mut self, n: usize) {
        if self.hdrs.len() < n {
            // The vectors may move: prepared receive headers would point into freed memory.
            self.rx_layout = None;
            self.hdrs.resize_with(n, zeroed_mmsghdr);
            self.iovs.resize(
                n,
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
            );
            self.names.resize_with(n, zeroed_storage);
            self.ctrl.resize(n, CmsgBuf::zeroed());
            self.pkts.resize(n, 0);
        }
    }

    /// One `recvmmsg(MSG_DONTWAIT)` into the slots `first_slot..` of `rx`. Returns the number
    /// of datagrams; read them with [`received`](Self::received).
    pub(crate) fn recv(
        &mut self,
        fd: RawFd,
        rx: &mut RxBatch,
        first_slot: usize,
    ) -> io::Result<usize> {
        let slots = rx.slots().saturating_sub(first_slot);
        if slots == 0 {
            return Ok(0);
        }
        self.ensure(slots);
        let slot_size = rx.slot_size();
        let base = rx.arena_ptr();
        let layout = (base as usize, slot_size, first_slot, slots);
        // Headers prepared for the same arena layout are reused: the kernel only writes the
        // lengths and flags of the messages it filled, so only those are reset (a wake-up
        // for one datagram then costs one header, not one per slot).
        let prepare = if self.rx_layout == Some(layout) {
            self.rx_dirty.min(slots)
        } else {
            slots
        };
        for i in 0..prepare {
            self.iovs[i] = libc::iovec {
                // SAFETY: slot `first_slot + i` lies within the arena of `rx.slots()` slots of
                // `slot_size` bytes.
                iov_base: unsafe { base.add((first_slot + i) * slot_size) }.cast(),
                iov_len: slot_size,
            };
            self.hdrs[i].msg_hdr = msghdr(
                &mut self.names[i],
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                &mut self.iovs[i],
                1,
                &mut self.ctrl[i],
                mem::size_of::<CmsgBuf>(),
            );
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: `hdrs[..slots]` are initialized msghdrs whose buffers (rx arena slots, names,
        // control buffers) are live and exclusively borrowed for the duration of the call:
        // reused headers were prepared for this very arena address range (`layout`), and the
        // scratch vectors have not been reallocated since (`ensure` forgets the layout when
        // it grows them).
        let ret = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                slots as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if ret < 0 {
            let e = io::Error::last_os_error();
            // A failed first receive writes no header; anything else: prepare all again.
            if is_would_block(&e) {
                self.rx_layout = Some(layout);
                self.rx_dirty = 0;
            } else {
                self.rx_layout = None;
            }
            return Err(e);
        }
        let n = (ret as usize).min(slots);
        self.rx_layout = Some(layout);
        self.rx_dirty = n;
        Ok(n)
    }

    /// The `i`-th datagram of the last [`recv`](Self::recv) that started at `first_slot`.
    pub(crate) fn received(&self, i: usize, first_slot: usize) -> Received {
        let h = &self.hdrs[i];
        let namelen =
            (h.msg_hdr.msg_namelen as usize).min(mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: the kernel wrote `namelen` bytes (clamped to the storage size) into
        // names[i], which is owned by `self` and borrowed for the returned value's creation.
        let name = unsafe {
            std::slice::from_raw_parts(
                (&self.names[i] as *const libc::sockaddr_storage).cast::<u8>(),
                namelen,
            )
        };
        // `msg_controllen` is size_t (glibc) or socklen_t (musl).
        #[allow(clippy::unnecessary_cast)]
        let controllen = (h.msg_hdr.msg_controllen as usize).min(mem::size_of::<CmsgBuf>());
        Received {
            slot: first_slot + i,
            len: h.msg_len as usize,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            name: decode_sockaddr(name),
            cmsgs: parse_cmsgs(&self.ctrl[i].0[..controllen]),
        }
    }

    /// One `sendmmsg(MSG_DONTWAIT)` of the first `msgs` prepared headers; the number of
    /// messages sent. A lone message goes out with `sendmsg` instead: the same kernel path
    /// for one datagram without `sendmmsg`'s per-call loop and header write-back (a request/
    /// response exchange sends one packet per wake-up).
    pub(crate) fn send(&mut self, fd: RawFd, msgs: usize) -> io::Result<usize> {
        let msgs = msgs.min(self.hdrs.len());
        if msgs == 1 {
            // SAFETY: as below, for the first prepared header only.
            let ret = unsafe { libc::sendmsg(fd, &self.hdrs[0].msg_hdr, libc::MSG_DONTWAIT) };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
            // A datagram goes out whole or not at all; record it as sendmmsg would.
            self.hdrs[0].msg_len = u32::try_from(ret).unwrap_or(u32::MAX);
            return Ok(1);
        }
        // SAFETY: the caller prepared `hdrs[..msgs]` from live buffers (its TxBatch slots and
        // this scratch's names and control buffers), none of which changes during the call.
        let ret = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                msgs as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok((ret as usize).min(msgs))
        }
    }
}

/// The last OS error if `ret` is -1.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Sets an integer socket option.
pub(crate) fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live c_int for the duration of the call.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// Sets a socket buffer size: first with the privileged `*FORCE` option (exact size, ignores
/// `net.core.*mem_max`), then with the ordinary one (capped by the kernel).
pub(crate) fn set_buffer_size(
    fd: RawFd,
    name: libc::c_int,
    force_name: libc::c_int,
    bytes: usize,
) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt_int(fd, libc::SOL_SOCKET, force_name, v)
        .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, name, v))
}

/// Writes `addr` into `storage` as the kernel expects it for a socket of family
/// `v6_socket ? AF_INET6 : AF_INET` (IPv4 addresses become IPv4-mapped IPv6 on an IPv6
/// socket). Returns the address length, or `None` for an IPv6 address on an IPv4 socket.
pub(crate) fn encode_sockaddr(
    addr: SocketAddr,
    v6_socket: bool,
    storage: &mut libc::sockaddr_storage,
) -> Option<libc::socklen_t> {
    let v6 = match (addr, v6_socket) {
        (SocketAddr::V4(a), false) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe {
                (storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            return Some(mem::size_of::<libc::sockaddr_in>() as libc::socklen_t);
        }
        (SocketAddr::V6(_), false) => return None,
        (SocketAddr::V4(a), true) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        (SocketAddr::V6(a), true) => a,
    };
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sin6.sin6_port = v6.port().to_be();
    sin6.sin6_flowinfo = v6.flowinfo().to_be();
    sin6.sin6_addr = libc::in6_addr {
        s6_addr: v6.ip().octets(),
    };
    sin6.sin6_scope_id = v6.scope_id();
    // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
    unsafe {
        (storage as *mut libc::sockaddr_storage)
            .cast::<libc::sockaddr_in6>()
            .write(sin6)
    };
    Some(mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
}

/// Reads a socket address the kernel wrote (`len` bytes at `ptr`), turning IPv4-mapped IPv6
/// addresses back into IPv4.
pub(crate) fn decode_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    if bytes.len() < mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least a family field is present; read_unaligned copes with any alignment.
    let family = unsafe { bytes.as_ptr().cast::<libc::sa_family_t>().read_unaligned() };
    match libc::c_int::from(family) {
        libc::AF_INET if bytes.len() >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: length checked above; the struct is plain old data.
            let sin = unsafe { bytes.as_ptr().cast::<libc::sockaddr_in>().read_unaligned() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if bytes.len() >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: length checked above; the struct is plain old data.
            let sin6 = unsafe { bytes.as_ptr().cast::<libc::sockaddr_in6>().read_unaligned() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, sin6.sin6_scope_id)),
            })
        }
        _ => None,
    }
}

/// IPv4-mapped IPv6 addresses as IPv4; everything else unchanged.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What the receive path learns from control messages.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RecvCmsgs {
    /// The destination address of the packet (`IP_PKTINFO`/`IPV6_PKTINFO`).
    pub dst: Option<IpAddr>,
    /// The interface it arrived on.
    pub ifindex: u32,
    /// The segment size of a GRO-coalesced receive.
    pub gro_size: Option<u16>,
}

/// Parses the control messages in `control` (as laid out by the kernel).
pub(crate) fn parse_cmsgs(control: &[u8]) -> RecvCmsgs {
    let mut out = RecvCmsgs::default();
    let hdr_len = cmsg_align(mem::size_of::<libc::cmsghdr>());
    let mut off = 0usize;
    while let Some(rest) = control.get(off..) {
        if rest.len() < mem::size_of::<libc::cmsghdr>() {
            break;
        }
        // SAFETY: at least one header's worth of bytes is present; read_unaligned copes with
        // the slice's alignment.
        let h = unsafe { rest.as_ptr().cast::<libc::cmsghdr>().read_unaligned() };
        // `cmsg_len` is size_t (glibc) or socklen_t (musl): both fit in usize.
        #[allow(clippy::unnecessary_cast)]
        let len = h.cmsg_len as usize;
        if len < hdr_len || len > rest.len() {
            break;
        }
        let data = &rest[hdr_len..len];
        match (h.cmsg_level, h.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
                if data.len() >= mem::size_of::<libc::in_pktinfo>() =>
            {
                // SAFETY: length checked; plain old data.
                let pi = unsafe { data.as_ptr().cast::<libc::in_pktinfo>().read_unaligned() };
                out.dst = Some(IpAddr::V4(Ipv4Addr::from(pi.ipi_addr.s_addr.to_ne_bytes())));
                out.ifindex = u32::try_from(pi.ipi_ifindex).unwrap_or(0);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                if data.len() >= mem::size_of::<libc::in6_pktinfo>() =>
            {
                // SAFETY: length checked; plain old data.
                let pi = unsafe { data.as_ptr().cast::<libc::in6_pktinfo>().read_unaligned() };
                out.dst = Some(canonical_ip(IpAddr::V6(Ipv6Addr::from(
                    pi.ipi6_addr.s6_addr,
                ))));
                out.ifindex = pi.ipi6_ifindex;
            }
            (libc::SOL_UDP, UDP_GRO) if data.len() >= mem::size_of::<libc::c_int>() => {
                // SAFETY: length checked; plain old data.
                let v = unsafe { data.as_ptr().cast::<libc::c_int>().read_unaligned() };
                out.gro_size = u16::try_from(v).ok().filter(|s| *s > 0);
            }
            _ => {}
        }
        off += cmsg_align(len);
    }
    out
}

const fn cmsg_align(len: usize) -> usize {
    let a = mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// Appends one control message to `buf` at `*off`; returns false when it does not fit.
fn push_cmsg(
    buf: &mut CmsgBuf,
    off: &mut usize,
    level: libc::c_int,
    ty: libc::c_int,
    data: &[u8],
) -> bool {
    let hdr_len = cmsg_align(mem::size_of::<libc::cmsghdr>());
    let space = hdr_len + cmsg_align(data.len());
    if *off + space > buf.0.len() {
        return false;
    }
    // SAFETY: cmsghdr is plain old data; all-zero is valid.
    let mut h: libc::cmsghdr = unsafe { mem::zeroed() };
    h.cmsg_len = (hdr_len + data.len()) as _;
    h.cmsg_level = level;
    h.cmsg_type = ty;
    let start = *off;
    // SAFETY: `start + hdr_len <= buf.len()` was checked above; write_unaligned copes with any
    // alignment (the offsets are multiples of the word size anyway).
    unsafe {
        buf.0
            .as_mut_ptr()
            .add(start)
            .cast::<libc::cmsghdr>()
            .write_unaligned(h)
    };
    buf.0[start + hdr_len..start + hdr_len + data.len()].copy_from_slice(data);
    buf.0[start + hdr_len + data.len()..start + space].fill(0);
    *off += space;
    true
}

/// Fills `buf` with the control messages of a send: the source address (`IP_PKTINFO` for IPv4,
/// `IPV6_PKTINFO` for IPv6; both work on a dual-stack socket) and the GSO segment size.
/// Returns the control length.
pub(crate) fn encode_send_cmsgs(buf: &mut CmsgBuf, src: Option<IpAddr>, gso: Option<u16>) -> usize {
    let mut off = 0;
    match src {
        Some(IpAddr::V4(a)) if !a.is_unspecified() => {
            // SAFETY: in_pktinfo is plain old data; all-zero is valid.
            let mut pi: libc::in_pktinfo = unsafe { mem::zeroed() };
            pi.ipi_spec_dst = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.octets()),
            };
            push_cmsg(
                buf,
                &mut off,
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                as_bytes(&pi),
            );
        }
        Some(IpAddr::V6(a)) if !a.is_unspecified() => {
            // SAFETY: in6_pktinfo is plain old data; all-zero is valid.
            let mut pi: libc::in6_pktinfo = unsafe { mem::zeroed() };
            pi.ipi6_addr = libc::in6_addr {
                s6_addr: a.octets(),
            };
            push_cmsg(
                buf,
                &mut off,
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                as_bytes(&pi),
            );
        }
        _ => {}
    }
    if let Some(seg) = gso {
        push_cmsg(
            buf,
            &mut off,
            libc::SOL_UDP,
            UDP_SEGMENT,
            &seg.to_ne_bytes(),
        );
    }
    off
}

/// The bytes of a plain-old-data value.
fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: `T` is a padding-free C struct from libc (in_pktinfo, in6_pktinfo); the slice
    // covers exactly the value and lives as long as the borrow.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), mem::size_of::<T>()) }
}

/// `poll(2)` on `fds` with an optional timeout. EINTR counts as a spurious wake-up (Ok(0)).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms: libc::c_int = match timeout {
        None => -1,
        // Round up so a 100 us timer does not turn into a busy loop of zero-timeout polls.
        Some(d) => {
            let ms = d.as_micros().div_ceil(1000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    };
    // SAFETY: the pointer and length describe a live, initialized pollfd slice.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    match cvt(ret) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// The eventfd behind an OS link's [`Waker`](crate::Waker).
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned descriptor is checked and then owned.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Consumes pending wake-ups; returns whether there were any.
    pub(crate) fn drain(&self) -> bool {
        let mut v = MaybeUninit::<u64>::uninit();
        // SAFETY: reads at most 8 bytes into a u64-sized buffer; the fd is non-blocking.
        let n = unsafe { libc::read(self.fd(), v.as_mut_ptr().cast(), 8) };
        n == 8
    }
}

impl WakeTarget for EventFd {
    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes exactly 8 bytes from a live u64. A full counter (EAGAIN) means a
        // wake-up is already pending, which is all we need.
        unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
    }
}

/// A `msghdr` for one datagram. Zeroing first keeps the code portable across libc layouts
/// (musl has padding fields).
pub(crate) fn msghdr(
    name: *mut libc::sockaddr_storage,
    namelen: libc::socklen_t,
    iov: *mut libc::iovec,
    iovlen: usize,
    control: *mut CmsgBuf,
    controllen: usize,
) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; all-zero (null pointers, zero lengths) is valid.
    let mut h: libc::msghdr = unsafe { mem::zeroed() };
    h.msg_name = name.cast();
    h.msg_namelen = namelen;
    h.msg_iov = iov;
    h.msg_iovlen = iovlen as _;
    h.msg_control = if controllen == 0 {
        std::ptr::null_mut()
    } else {
        control.cast()
    };
    h.msg_controllen = controllen as _;
    h
}

/// An all-zero `sockaddr_storage`.
pub(crate) fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    unsafe { mem::zeroed() }
}

/// An all-zero `mmsghdr`.
pub(crate) fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data; all-zero is valid.
    unsafe { mem::zeroed() }
}

/// Whether a send error concerns only this packet (drop it and go on) rather than the socket.
pub(crate) fn is_per_packet_send_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMSGSIZE
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENETDOWN
                | libc::EHOSTDOWN
                | libc::ECONNREFUSED
                | libc::EACCES
                | libc::EPERM
                | libc::EADDRNOTAVAIL
                | libc::EAFNOSUPPORT
                | libc::EINVAL
                | libc::EDESTADDRREQ
                | libc::ENOPROTOOPT
        )
    )
}

/// Whether an error means "try again later".
pub(crate) fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
    ) || e.kind() == io::ErrorKind::WouldBlock
}

/// Attaches a classic BPF program with socket option `opt` (`SO_ATTACH_FILTER` or
/// `SO_ATTACH_REUSEPORT_CBPF`).
pub(crate) fn attach_cbpf(
    fd: RawFd,
    opt: libc::c_int,
    prog: &[crate::runtime::steer::Insn],
) -> io::Result<()> {
    let mut filter: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(filter.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive the call; the
    // kernel copies the program.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&fprog as *const libc::sock_fprog).cast(),
            mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    cvt(ret).map(|_| ())
}

/// Reads and discards whatever a non-blocking socket has queued (bounded).
pub(crate) fn discard_queued(fd: RawFd) {
    let mut buf = [0u8; 2048];
    for _ in 0..100_000 {
        // SAFETY: receives into a live buffer of the given length; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip_and_unmap_ipv4() {
        let mut st = zeroed_storage();
        let v4: SocketAddr = "198.18.0.1:9899".parse().unwrap();
        let len = encode_sockaddr(v4, false, &mut st).unwrap() as usize;
        // SAFETY: test-only view of the storage's first `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(&st as *const _ as *const u8, len) };
        assert_eq!(decode_sockaddr(bytes), Some(v4));
        let len = encode_sockaddr(v4, true, &mut st).unwrap() as usize;
        assert_eq!(len, mem::size_of::<libc::sockaddr_in6>());
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(&st as *const _ as *const u8, len) };
        assert_eq!(
            decode_sockaddr(bytes),
            Some(v4),
            "v4-mapped comes back as v4"
        );
        let v6: SocketAddr = "[fd00::1]:5".parse().unwrap();
        assert!(encode_sockaddr(v6, false, &mut st).is_none());
        assert!(decode_sockaddr(&[1]).is_none());
    }

    #[test]
    fn control_messages_round_trip_through_the_parser() {
        let mut buf = CmsgBuf::zeroed();
        let len = encode_send_cmsgs(&mut buf, Some("fd00::7".parse().unwrap()), Some(1200));
        let parsed = parse_cmsgs(&buf.0[..len]);
        assert_eq!(parsed.dst, Some("fd00::7".parse().unwrap()));
        // UDP_SEGMENT is not UDP_GRO: not reported.
        assert_eq!(parsed.gro_size, None);
        let len = encode_send_cmsgs(&mut buf, Some("198.18.0.9".parse().unwrap()), None);
        assert!(len > 0);
        assert_eq!(encode_send_cmsgs(&mut buf, None, None), 0);
    }

    #[test]
    fn the_cmsg_parser_survives_garbage() {
        for seed in 0..2000u32 {
            let mut bytes = [0u8; 64];
            let mut x = seed.wrapping_mul(2_654_435_761);
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let n = (seed as usize) % 65;
            let _ = parse_cmsgs(&bytes[..n]);
        }
    }
}
