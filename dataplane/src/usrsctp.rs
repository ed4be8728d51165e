//! A safe wrapper around the AF_CONN interface of usrsctp (Debian's `libusrsctp`), the
//! userspace SCTP stack of the FreeBSD kernel, used as a peer by the benchmarks
//! (feature `usrsctp`; links `-lusrsctp`).
//!
//! # Call contract
//!
//! - usrsctp is one stack per process. [`Stack::get`] initialises it once, without its own
//!   threads (`usrsctp_init_nothreads`, no UDP or raw sockets), and registers the default
//!   AF_CONN address [`ConnAddr::DEFAULT`]: sockets that bind and connect through it share one
//!   in-memory link and are told apart by their SCTP ports. [`Stack::register`] adds more
//!   addresses (links), e.g. one per side when packets travel over real sockets.
//! - An AF_CONN address names the link a packet travels on: usrsctp hands a packet for a
//!   peer reached through address `x` to the output callback with `x`, and a packet given to
//!   [`Stack::input_on`]`(x, ..)` comes from (and to) `x`. So the side that connects through
//!   `x` gets its answers with `input_on(x)`, and the listening side receives on the address
//!   the packets arrive on.
//! - Packets usrsctp sends are queued per address by its output callback
//!   ([`Stack::take_output_for`] drains one address, oldest first; at most [`OUTPUT_LIMIT`] wait
//!   in all, further packets are dropped and counted by [`Stack::dropped`], as a full link
//!   would). A packet given to `input` may queue new packets (SACKs, answers), so pump until
//!   nothing is left.
//! - Without threads, time moves only when the caller says so: [`Stack::handle_timers`]
//!   with the milliseconds elapsed since its previous call.
//! - Sockets are one-to-one style (`SOCK_STREAM`); [`ConnSocket::set_nonblocking`] makes
//!   `send`, `recv`, `accept` and `connect` return `WouldBlock`/`InProgress` instead of waiting,
//!   which the single-threaded benchmarks rely on (a blocking call with nobody pumping
//!   packets would wait forever).
//! - usrsctp locks internally, so calls from several threads are memory-safe; the output
//!   queue is shared by all of them.
//!
//! This module and the other OS-facing modules of `dataplane` are the only places of the
//! workspace with `unsafe`.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// `AF_CONN` of usrsctp.h.
const AF_CONN: c_int = 123;
/// `IPPROTO_SCTP`.
const IPPROTO_SCTP: c_int = 132;
/// `SCTP_NODELAY` of usrsctp.h.
const SCTP_NODELAY: c_int = 4;
/// `SCTP_SENDV_NOINFO` of usrsctp.h.
const SCTP_SENDV_NOINFO: c_uint = 0;
/// `SCTP_EVENT` of usrsctp.h (struct sctp_event).
const SCTP_EVENT: c_int = 0x1e;
/// `SCTP_RECVRCVINFO` of usrsctp.h.
const SCTP_RECVRCVINFO: c_int = 0x1f;
/// `SCTP_ENABLE_STREAM_RESET` of usrsctp.h (struct sctp_assoc_value).
const SCTP_ENABLE_STREAM_RESET: c_int = 0x900;
/// `SCTP_RESET_STREAMS` of usrsctp.h (struct sctp_reset_streams).
const SCTP_RESET_STREAMS: c_int = 0x901;
/// `SCTP_RESET_ASSOC` of usrsctp.h (sctp_assoc_t).
const SCTP_RESET_ASSOC: c_int = 0x902;
/// `SCTP_ADD_STREAMS` of usrsctp.h (struct sctp_add_streams).
const SCTP_ADD_STREAMS: c_int = 0x903;
/// `SCTP_RECVV_RCVINFO` of usrsctp.h.
const SCTP_RECVV_RCVINFO: c_uint = 1;
/// `MSG_NOTIFICATION` of usrsctp.h.
const MSG_NOTIFICATION: c_int = 0x2000;

/// `SCTP_ENABLE_STREAM_RESET` flags (`SCTP_ENABLE_RESET_STREAM_REQ`,
/// `SCTP_ENABLE_RESET_ASSOC_REQ`, `SCTP_ENABLE_CHANGE_ASSOC_REQ` of usrsctp.h).
pub mod reset_flags {
    /// The peer may reset streams.
    pub const RESET_STREAM_REQ: u32 = 1;
    /// The peer may reset the association (SSN/TSN reset).
    pub const RESET_ASSOC_REQ: u32 = 2;
    /// The peer may add streams.
    pub const CHANGE_ASSOC_REQ: u32 = 4;
}

/// `srs_flags` of `SCTP_RESET_STREAMS`: which direction to reset.
pub mod reset_direction {
    /// `SCTP_STREAM_RESET_INCOMING`: ask the peer to reset its outgoing streams.
    pub const INCOMING: u16 = 1;
    /// `SCTP_STREAM_RESET_OUTGOING`: reset our outgoing streams.
    pub const OUTGOING: u16 = 2;
}

/// Notification types of usrsctp.h usable with [`ConnSocket::subscribe`].
pub mod notification {
    /// `SCTP_ASSOC_CHANGE`.
    pub const ASSOC_CHANGE: u16 = 0x0001;
    /// `SCTP_STREAM_RESET_EVENT` (struct sctp_stream_reset_event).
    pub const STREAM_RESET_EVENT: u16 = 0x0009;
    /// `SCTP_STREAM_CHANGE_EVENT` (struct sctp_stream_change_event).
    pub const STREAM_CHANGE_EVENT: u16 = 0x000d;
}

/// What [`ConnSocket::recv_info`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written into the buffer.
    pub len: usize,
    /// It completes the message (`MSG_EOR`).
    pub eor: bool,
    /// It is a notification (`MSG_NOTIFICATION`): the buffer holds a `union
    /// sctp_notification`, starting with its type (u16, host order) and flags (u16).
    pub notification: bool,
    /// Stream and SSN of a data message (with [`ConnSocket::set_recv_rcvinfo`]).
    pub stream_ssn: Option<(u16, u16)>,
}

/// Packets the output queue holds before usrsctp's further packets are dropped.
pub const OUTPUT_LIMIT: usize = 65_536;

/// `struct sockaddr_conn` of usrsctp.h on Linux (no length field).
#[repr(C)]
struct SockaddrConn {
    family: u16,
    /// Network byte order.
    port: u16,
    addr: *mut c_void,
}

type ConnOutput =
    unsafe extern "C" fn(addr: *mut c_void, buf: *mut c_void, len: usize, tos: u8, df: u8) -> c_int;
type DebugPrintf = unsafe extern "C" fn(format: *const c_char, ...);

#[link(name = "usrsctp")]
unsafe extern "C" {
    fn usrsctp_init_nothreads(port: u16, output: Option<ConnOutput>, debug: Option<DebugPrintf>);
    fn usrsctp_register_address(addr: *mut c_void);
    fn usrsctp_handle_timers(elapsed_ms: u32);
    fn usrsctp_conninput(addr: *mut c_void, buf: *const c_void, len: usize, ecn: u8);
    fn usrsctp_socket(
        domain: c_int,
        ty: c_int,
        protocol: c_int,
        receive_cb: *const c_void,
        send_cb: *const c_void,
        sb_threshold: u32,
        ulp_info: *mut c_void,
    ) -> *mut c_void;
    fn usrsctp_set_non_blocking(so: *mut c_void, on: c_int) -> c_int;
    fn usrsctp_setsockopt(
        so: *mut c_void,
        level: c_int,
        name: c_int,
        value: *const c_void,
        len: libc::socklen_t,
    ) -> c_int;
    fn usrsctp_bind(so: *mut c_void, name: *mut c_void, len: libc::socklen_t) -> c_int;
    fn usrsctp_listen(so: *mut c_void, backlog: c_int) -> c_int;
    fn usrsctp_accept(so: *mut c_void, name: *mut c_void, len: *mut libc::socklen_t)
    -> *mut c_void;
    fn usrsctp_connect(so: *mut c_void, name: *mut c_void, len: libc::socklen_t) -> c_int;
    fn usrsctp_sendv(
        so: *mut c_void,
        data: *const c_void,
        len: usize,
        to: *mut c_void,
        addrcnt: c_int,
        info: *mut c_void,
        infolen: libc::socklen_t,
        infotype: c_uint,
        flags: c_int,
    ) -> isize;
    fn usrsctp_recvv(
        so: *mut c_void,
        buf: *mut c_void,
        len: usize,
        from: *mut c_void,
        fromlen: *mut libc::socklen_t,
        info: *mut c_void,
        infolen: *mut libc::socklen_t,
        infotype: *mut c_uint,
        flags: *mut c_int,
    ) -> isize;
    fn usrsctp_close(so: *mut c_void);
}

/// An AF_CONN address: an opaque non-zero token to usrsctp, never dereferenced by it (it only
/// hands it back to the output callback and compares it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnAddr(usize);

impl ConnAddr {
    /// The address registered by [`Stack::get`].
    pub const DEFAULT: ConnAddr = ConnAddr(1);

    fn ptr(self) -> *mut c_void {
        self.0 as *mut c_void
    }
}

/// Queued output: per address, oldest first.
struct Output {
    total: usize,
    queues: Vec<(usize, VecDeque<Vec<u8>>)>,
}

static OUTPUT: Mutex<Output> = Mutex::new(Output {
    total: 0,
    queues: Vec::new(),
});
static DROPPED: AtomicU64 = AtomicU64::new(0);
static INIT: OnceLock<()> = OnceLock::new();

/// usrsctp's output callback: copies the packet into the bounded queue. Never unwinds.
unsafe extern "C" fn conn_output(
    addr: *mut c_void,
    buf: *mut c_void,
    len: usize,
    _tos: u8,
    _df: u8,
) -> c_int {
    if buf.is_null() {
        return 0;
    }
    // SAFETY: usrsctp passes a buffer of `len` readable bytes that stays valid for the
    // duration of this call; we copy it out before returning.
    let packet = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }.to_vec();
    let key = addr as usize;
    let mut out = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner);
    if out.total >= OUTPUT_LIMIT {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return 0;
    }
    out.total += 1;
    match out.queues.iter_mut().find(|(k, _)| *k == key) {
        Some((_, q)) => q.push_back(packet),
        // Bounded: one queue per registered address (usrsctp sends only to those).
        None => out.queues.push((key, VecDeque::from([packet]))),
    }
    0
}

/// The process's usrsctp stack (initialised once, without threads).
#[derive(Clone, Copy)]
pub struct Stack {
    _private: (),
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("usrsctp::Stack").finish()
    }
}

impl Stack {
    /// The stack, initialised on first use.
    pub fn get() -> Stack {
        INIT.get_or_init(|| {
            // SAFETY: called once per process (OnceLock); port 0 opens no UDP socket, the
            // output callback is a valid `extern "C"` function for the whole program, and no
            // debug printer is installed.
            unsafe { usrsctp_init_nothreads(0, Some(conn_output), None) };
            // SAFETY: the address is an opaque token; usrsctp stores it and never reads
            // through it.
            unsafe { usrsctp_register_address(ConnAddr::DEFAULT.ptr()) };
        });
        Stack { _private: () }
    }

    /// Advances usrsctp's timers by `elapsed_ms` milliseconds.
    pub fn handle_timers(&self, elapsed_ms: u32) {
        // SAFETY: the stack is initialised (a `Stack` exists only after `get`).
        unsafe { usrsctp_handle_timers(elapsed_ms) };
    }

    /// Registers AF_CONN address number `n` (1 is [`ConnAddr::DEFAULT`], registered by
    /// [`get`](Self::get)); `None` for 0. Registering twice is harmless.
    pub fn register(&self, n: usize) -> Option<ConnAddr> {
        if n == 0 {
            return None;
        }
        let a = ConnAddr(n);
        if a != ConnAddr::DEFAULT {
            // SAFETY: the address is an opaque token; usrsctp stores it and never reads
            // through it.
            unsafe { usrsctp_register_address(a.ptr()) };
        }
        Some(a)
    }

    /// Hands a packet (an SCTP common header and chunks) to usrsctp as received on the
    /// default AF_CONN link.
    pub fn input(&self, packet: &[u8]) {
        self.input_on(ConnAddr::DEFAULT, packet);
    }

    /// Hands a packet to usrsctp as received on link `addr` (see the module documentation).
    pub fn input_on(&self, addr: ConnAddr, packet: &[u8]) {
        // SAFETY: `packet` is valid for `len` bytes during the call; usrsctp copies it into
        // its own buffers before returning. The address is a registered token.
        unsafe { usrsctp_conninput(addr.ptr(), packet.as_ptr().cast(), packet.len(), 0) };
    }

    /// The oldest packet usrsctp sent on the default link that nobody took yet.
    pub fn take_output(&self) -> Option<Vec<u8>> {
        self.take_output_for(ConnAddr::DEFAULT)
    }

    /// The oldest packet usrsctp sent on link `addr` that nobody took yet.
    pub fn take_output_for(&self, addr: ConnAddr) -> Option<Vec<u8>> {
        let mut out = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner);
        let p = out
            .queues
            .iter_mut()
            .find(|(k, _)| *k == addr.0)
            .and_then(|(_, q)| q.pop_front());
        if p.is_some() {
            out.total -= 1;
        }
        p
    }

    /// Packets dropped because the output queue was full.
    pub fn dropped(&self) -> u64 {
        DROPPED.load(Ordering::Relaxed)
    }

    /// A new one-to-one style SCTP socket on the AF_CONN link.
    pub fn socket(&self) -> io::Result<ConnSocket> {
        // SAFETY: the stack is initialised; no callbacks (upcalls) are installed, so null
        // function pointers and a null ULP pointer are allowed.
        let so = unsafe {
            usrsctp_socket(
                AF_CONN,
                libc::SOCK_STREAM,
                IPPROTO_SCTP,
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
            )
        };
        NonNull::new(so)
            .map(|so| ConnSocket { so })
            .ok_or_else(io::Error::last_os_error)
    }
}

/// A usrsctp socket on the AF_CONN link, closed on drop.
pub struct ConnSocket {
    so: NonNull<c_void>,
}

impl fmt::Debug for ConnSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("usrsctp::ConnSocket")
            .field("so", &self.so)
            .finish()
    }
}

// SAFETY: usrsctp serialises access to a socket with its own locks (its sockets are used
// from its timer and receive threads too), so a socket may move to another thread.
unsafe impl Send for ConnSocket {}

fn check(rc: c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr(addr: ConnAddr, port: u16) -> SockaddrConn {
    SockaddrConn {
        family: AF_CONN as u16,
        port: port.to_be(),
        addr: addr.ptr(),
    }
}

const SOCKADDR_LEN: libc::socklen_t = std::mem::size_of::<SockaddrConn>() as libc::socklen_t;

impl ConnSocket {
    fn setsockopt_int(&self, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
        // SAFETY: `self.so` is an open socket; the value is a live `c_int` of the given size.
        check(unsafe {
            usrsctp_setsockopt(
                self.so.as_ptr(),
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        })
    }

    /// Makes calls return `WouldBlock` (or `InProgress` for `connect`) instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        // SAFETY: `self.so` is an open socket.
        check(unsafe { usrsctp_set_non_blocking(self.so.as_ptr(), c_int::from(on)) })
    }

    /// Turns Nagle's algorithm off (`SCTP_NODELAY`).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.setsockopt_int(IPPROTO_SCTP, SCTP_NODELAY, c_int::from(on))
    }

    /// Sets the send and receive buffer sizes (`SO_SNDBUF`, `SO_RCVBUF`); the receive buffer
    /// is the advertised window.
    pub fn set_buffers(&self, send: u32, recv: u32) -> io::Result<()> {
        let clamp = |v: u32| c_int::try_from(v).unwrap_or(c_int::MAX);
        self.setsockopt_int(libc::SOL_SOCKET, libc::SO_SNDBUF, clamp(send))?;
        self.setsockopt_int(libc::SOL_SOCKET, libc::SO_RCVBUF, clamp(recv))
    }

    /// Binds to `port` on the default AF_CONN link.
    pub fn bind(&self, port: u16) -> io::Result<()> {
        self.bind_on(ConnAddr::DEFAULT, port)
    }

    /// Binds to `port` on link `addr`.
    pub fn bind_on(&self, addr: ConnAddr, port: u16) -> io::Result<()> {
        let mut a = sockaddr(addr, port);
        // SAFETY: `a` is a valid sockaddr_conn of SOCKADDR_LEN bytes, alive for the call.
        check(unsafe { usrsctp_bind(self.so.as_ptr(), (&raw mut a).cast(), SOCKADDR_LEN) })
    }

    /// Listens with a backlog.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        // SAFETY: `self.so` is an open socket.
        check(unsafe { usrsctp_listen(self.so.as_ptr(), backlog) })
    }

    /// Accepts an association: `Ok(None)` when none is ready on a non-blocking socket.
    pub fn accept(&self) -> io::Result<Option<ConnSocket>> {
        let mut a = sockaddr(ConnAddr::DEFAULT, 0);
        let mut len = SOCKADDR_LEN;
        // SAFETY: `a` and `len` are live and describe a buffer of `len` bytes.
        let so = unsafe { usrsctp_accept(self.so.as_ptr(), (&raw mut a).cast(), &raw mut len) };
        match NonNull::new(so) {
            Some(so) => Ok(Some(ConnSocket { so })),
            None => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Starts an association to `port` on the default AF_CONN link (a non-blocking socket
    /// returns at once: the handshake proceeds as packets are pumped).
    pub fn connect(&self, port: u16) -> io::Result<()> {
        self.connect_via(ConnAddr::DEFAULT, port)
    }

    /// Starts an association to `port` through link `addr`.
    pub fn connect_via(&self, addr: ConnAddr, port: u16) -> io::Result<()> {
        let mut a = sockaddr(addr, port);
        // SAFETY: `a` is a valid sockaddr_conn of SOCKADDR_LEN bytes, alive for the call.
        match check(unsafe { usrsctp_connect(self.so.as_ptr(), (&raw mut a).cast(), SOCKADDR_LEN) })
        {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
            r => r,
        }
    }

    /// Sends one message on stream 0 (PPID 0); `WouldBlock` when the send buffer is full.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: `data` is valid for `len` bytes during the call (usrsctp copies it); no
        // destination and no info structure are passed, as `SCTP_SENDV_NOINFO` allows.
        let n = unsafe {
            usrsctp_sendv(
                self.so.as_ptr(),
                data.as_ptr().cast(),
                data.len(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                0,
                SCTP_SENDV_NOINFO,
                0,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    fn setsockopt_bytes(&self, name: c_int, value: &[u8]) -> io::Result<()> {
        let len = libc::socklen_t::try_from(value.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `self.so` is an open socket; `value` is live and `len` bytes long.
        check(unsafe {
            usrsctp_setsockopt(
                self.so.as_ptr(),
                IPPROTO_SCTP,
                name,
                value.as_ptr().cast(),
                len,
            )
        })
    }

    /// Lets the peer reconfigure (`SCTP_ENABLE_STREAM_RESET` with [`reset_flags`]) on this
    /// socket's (future) associations.
    pub fn enable_stream_reset(&self, flags: u32) -> io::Result<()> {
        // struct sctp_assoc_value { sctp_assoc_t assoc_id; uint32_t assoc_value; }
        let mut v = [0u8; 8];
        v[4..8].copy_from_slice(&flags.to_ne_bytes());
        self.setsockopt_bytes(SCTP_ENABLE_STREAM_RESET, &v)
    }

    /// Resets streams (`SCTP_RESET_STREAMS`): `direction` of [`reset_direction`] (both may
    /// be or-ed), `streams` empty for all.
    pub fn reset_streams(&self, direction: u16, streams: &[u16]) -> io::Result<()> {
        let n = u16::try_from(streams.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // struct sctp_reset_streams { sctp_assoc_t; uint16_t flags; uint16_t n; uint16_t list[]; }
        let mut v = Vec::with_capacity(8 + 2 * streams.len());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&direction.to_ne_bytes());
        v.extend_from_slice(&n.to_ne_bytes());
        for s in streams {
            v.extend_from_slice(&s.to_ne_bytes());
        }
        self.setsockopt_bytes(SCTP_RESET_STREAMS, &v)
    }

    /// Resets the association's TSNs and SSNs (`SCTP_RESET_ASSOC`, an SSN/TSN Reset
    /// Request).
    pub fn reset_association(&self) -> io::Result<()> {
        self.setsockopt_bytes(SCTP_RESET_ASSOC, &0u32.to_ne_bytes())
    }

    /// Adds incoming and outgoing streams (`SCTP_ADD_STREAMS`).
    pub fn add_streams(&self, incoming: u16, outgoing: u16) -> io::Result<()> {
        // struct sctp_add_streams { sctp_assoc_t; uint16_t sas_instrms; uint16_t sas_outstrms; }
        let mut v = [0u8; 8];
        v[4..6].copy_from_slice(&incoming.to_ne_bytes());
        v[6..8].copy_from_slice(&outgoing.to_ne_bytes());
        self.setsockopt_bytes(SCTP_ADD_STREAMS, &v)
    }

    /// Subscribes to a notification type of [`notification`] (`SCTP_EVENT`).
    pub fn subscribe(&self, event: u16) -> io::Result<()> {
        // struct sctp_event { sctp_assoc_t se_assoc_id; uint16_t se_type; uint8_t se_on; }
        let mut v = [0u8; 8];
        v[4..6].copy_from_slice(&event.to_ne_bytes());
        v[6] = 1;
        self.setsockopt_bytes(SCTP_EVENT, &v)
    }

    /// Asks for the stream and SSN of each received message (`SCTP_RECVRCVINFO`).
    pub fn set_recv_rcvinfo(&self, on: bool) -> io::Result<()> {
        self.setsockopt_int(IPPROTO_SCTP, SCTP_RECVRCVINFO, c_int::from(on))
    }

    /// Receives (part of) a message or a notification into `buf`; `WouldBlock` when
    /// nothing waits.
    pub fn recv_info(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut from = [0u8; 128];
        let mut fromlen = from.len() as libc::socklen_t;
        let mut info = [0u64; 16];
        let mut infolen = std::mem::size_of_val(&info) as libc::socklen_t;
        let mut infotype: c_uint = 0;
        let mut flags: c_int = 0;
        // SAFETY: every pointer refers to a live local or to `buf`, each with the length
        // given next to it; usrsctp writes at most those lengths.
        let n = unsafe {
            usrsctp_recvv(
                self.so.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                from.as_mut_ptr().cast(),
                &raw mut fromlen,
                info.as_mut_ptr().cast(),
                &raw mut infolen,
                &raw mut infotype,
                &raw mut flags,
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        // struct sctp_rcvinfo starts with rcv_sid and rcv_ssn (u16 each, host order).
        let stream_ssn = (infotype == SCTP_RECVV_RCVINFO && infolen >= 4).then(|| {
            let w = info[0].to_ne_bytes();
            (
                u16::from_ne_bytes([w[0], w[1]]),
                u16::from_ne_bytes([w[2], w[3]]),
            )
        });
        Ok(Received {
            len: n,
            eor: flags & libc::MSG_EOR != 0,
            notification: flags & MSG_NOTIFICATION != 0,
            stream_ssn,
        })
    }

    /// Receives (part of) a message into `buf`: its length and whether it completes the
    /// message (`MSG_EOR`); `WouldBlock` when nothing waits.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        // One code path: `recv_info` does the call; a zero-length read into an empty
        // buffer reports no end of record, as it always has here.
        let r = self.recv_info(buf)?;
        if r.len == 0 {
            return Ok((0, false));
        }
        Ok((r.len, r.eor))
    }
}

impl Drop for ConnSocket {
    fn drop(&mut self) {
        // SAFETY: `self.so` is open and closed exactly once, here.
        unsafe { usrsctp_close(self.so.as_ptr()) };
    }
}
