//! usrsctp (Debian's `libusrsctp`) over raw IPv4 sockets, with its own threads: a peer for the
//! benchmarks that runs usrsctp the way its own `tsctp` does with `-E 0`, but quietly (no
//! debug printer) (feature `usrsctp`).
//!
//! # Call contract
//!
//! - usrsctp is one stack per process, and this module and [`crate::usrsctp`] initialise it
//!   differently: a process uses one of them, never both. [`RawStack::get`] initialises it
//!   once with `usrsctp_init(0, ..)`: no UDP encapsulation socket, raw IPv4/IPv6 SCTP sockets
//!   opened in the network namespace of the calling thread, and usrsctp's receive and timer
//!   threads. It needs `CAP_NET_RAW`.
//! - Sockets are one-to-one style (`SOCK_STREAM`) and blocking: `accept`, `connect`, `send`
//!   and `recv` wait (for a peer, for send-buffer room, for data). A caller that must stop at
//!   a deadline runs them in a process it can kill, or closes the association from another
//!   thread.
//! - usrsctp locks internally, so calls from several threads are memory-safe.

use std::ffi::{c_int, c_uint, c_void};
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::ptr::NonNull;
use std::sync::OnceLock;

const IPPROTO_SCTP: c_int = 132;
/// `SCTP_NODELAY` of usrsctp.h.
const SCTP_NODELAY: c_int = 0x0000_0004;
/// `SCTP_SENDV_NOINFO` of usrsctp.h.
const SCTP_SENDV_NOINFO: c_uint = 0;

#[link(name = "usrsctp")]
unsafe extern "C" {
    fn usrsctp_init(port: u16, output: *const c_void, debug: *const c_void);
    fn usrsctp_socket(
        domain: c_int,
        ty: c_int,
        protocol: c_int,
        receive_cb: *const c_void,
        send_cb: *const c_void,
        sb_threshold: u32,
        ulp_info: *mut c_void,
    ) -> *mut c_void;
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

static INIT: OnceLock<()> = OnceLock::new();

/// The process's usrsctp stack on raw IP sockets (initialised once, with its threads).
#[derive(Clone, Copy)]
pub struct RawStack {
    _private: (),
}

impl fmt::Debug for RawStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("usrsctp_raw::RawStack").finish()
    }
}

impl RawStack {
    /// The stack, initialised on first use in the calling thread's network namespace.
    pub fn get() -> RawStack {
        INIT.get_or_init(|| {
            // SAFETY: called once per process (OnceLock; the contract excludes
            // `crate::usrsctp` in the same process); port 0 opens no UDP socket; no output
            // callback (no AF_CONN) and no debug printer, both allowed as null.
            unsafe { usrsctp_init(0, std::ptr::null(), std::ptr::null()) };
        });
        RawStack { _private: () }
    }

    /// A new blocking one-to-one style SCTP socket over IPv4.
    pub fn socket(&self) -> io::Result<RawSocket> {
        // SAFETY: the stack is initialised; no upcalls, so null callbacks and ULP pointer.
        let so = unsafe {
            usrsctp_socket(
                libc::AF_INET,
                libc::SOCK_STREAM,
                IPPROTO_SCTP,
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
            )
        };
        NonNull::new(so)
            .map(|so| RawSocket { so })
            .ok_or_else(io::Error::last_os_error)
    }
}

/// A usrsctp socket over raw IPv4, closed on drop.
pub struct RawSocket {
    so: NonNull<c_void>,
}

impl fmt::Debug for RawSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("usrsctp_raw::RawSocket")
            .field("so", &self.so)
            .finish()
    }
}

// SAFETY: usrsctp serialises access to a socket with its own locks (its receive and timer
// threads use the socket too), so a socket may move to another thread.
unsafe impl Send for RawSocket {}

fn check(rc: c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

const SOCKADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

impl RawSocket {
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

    /// Binds to `addr`:`port`.
    pub fn bind(&self, addr: Ipv4Addr, port: u16) -> io::Result<()> {
        let mut a = sockaddr(addr, port);
        // SAFETY: `a` is a valid sockaddr_in of SOCKADDR_LEN bytes, alive for the call.
        check(unsafe { usrsctp_bind(self.so.as_ptr(), (&raw mut a).cast(), SOCKADDR_LEN) })
    }

    /// Listens with a backlog.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        // SAFETY: `self.so` is an open socket.
        check(unsafe { usrsctp_listen(self.so.as_ptr(), backlog) })
    }

    /// Waits for an association and returns its socket.
    pub fn accept(&self) -> io::Result<RawSocket> {
        let mut a = sockaddr(Ipv4Addr::UNSPECIFIED, 0);
        let mut len = SOCKADDR_LEN;
        // SAFETY: `a` and `len` are live and describe a buffer of `len` bytes.
        let so = unsafe { usrsctp_accept(self.so.as_ptr(), (&raw mut a).cast(), &raw mut len) };
        NonNull::new(so)
            .map(|so| RawSocket { so })
            .ok_or_else(io::Error::last_os_error)
    }

    /// Sets up an association to `addr`:`port` (waits for the handshake).
    pub fn connect(&self, addr: Ipv4Addr, port: u16) -> io::Result<()> {
        let mut a = sockaddr(addr, port);
        // SAFETY: `a` is a valid sockaddr_in of SOCKADDR_LEN bytes, alive for the call.
        check(unsafe { usrsctp_connect(self.so.as_ptr(), (&raw mut a).cast(), SOCKADDR_LEN) })
    }

    /// Sends one message on stream 0 (PPID 0), waiting for send-buffer room.
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

    /// Receives (part of) a message into `buf`, waiting for data: its length; `Ok(0)` when
    /// the association has ended (or `buf` is empty).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
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
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: `self.so` is open and closed exactly once, here.
        unsafe { usrsctp_close(self.so.as_ptr()) };
    }
}
