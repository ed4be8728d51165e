//! SERVER_ANNOUNCE and ENRP PRESENCE over UDP multicast (RFC 5352 §3.6, RFC 5353 §3.1).
//!
//! These are plain UDP datagrams outside the SCTP stack, so they use kernel sockets:
//! the worker sends without blocking; a small thread receives the ENRP group and hands the
//! datagrams to the worker through a [`mailbox`](dataplane::runtime::mailbox).
//! Several registrars on one host may listen on the same group (`SO_REUSEADDR`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::runtime::{MailboxSender, WorkerRemote};
use socket2::{Domain, Protocol, Socket, Type};

use crate::exit::Failure;

/// Longest datagram received.
const MAX_DATAGRAM: usize = 65_535;

/// The IPv4 interface for a group: the bound address if it is a specific IPv4 one.
fn interface_v4(bind: Option<IpAddr>) -> Ipv4Addr {
    match bind {
        Some(IpAddr::V4(a)) if !a.is_unspecified() => a,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

fn socket(group: SocketAddr) -> io::Result<Socket> {
    let domain = if group.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
}

/// Sends to one multicast group.
#[derive(Debug)]
pub struct GroupSender {
    socket: UdpSocket,
    group: SocketAddr,
}

impl GroupSender {
    /// A non-blocking socket sending to `group` (looped back to this host, TTL 1) through
    /// the interface of `bind`.
    pub fn open(group: SocketAddr, bind: Option<IpAddr>) -> Result<Self, Failure> {
        let fail = |e: io::Error| Failure::setup(format!("multicast to {group}: {e}"));
        let s = socket(group).map_err(fail)?;
        if group.is_ipv4() {
            s.set_multicast_loop_v4(true).map_err(fail)?;
            s.set_multicast_ttl_v4(1).map_err(fail)?;
            s.set_multicast_if_v4(&interface_v4(bind)).map_err(fail)?;
            s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0).into())
                .map_err(fail)?;
        } else {
            s.set_multicast_loop_v6(true).map_err(fail)?;
            s.bind(&SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0).into())
                .map_err(fail)?;
        }
        s.set_nonblocking(true).map_err(fail)?;
        Ok(GroupSender {
            socket: s.into(),
            group,
        })
    }

    /// Sends one datagram; a full socket buffer drops it (announces repeat).
    pub fn send(&self, bytes: &[u8]) {
        if let Err(e) = self.socket.send_to(bytes, self.group) {
            tracing::debug!("multicast to {} failed: {e}", self.group);
        }
    }
}

/// A socket that receives `group` (joined on the interface of `bind`).
pub fn open_receiver(group: SocketAddr, bind: Option<IpAddr>) -> Result<UdpSocket, Failure> {
    let fail = |e: io::Error| Failure::setup(format!("cannot listen on multicast {group}: {e}"));
    let s = socket(group).map_err(fail)?;
    s.set_reuse_address(true).map_err(fail)?;
    match group.ip() {
        IpAddr::V4(g) => {
            s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), group.port()).into())
                .map_err(fail)?;
            s.join_multicast_v4(&g, &interface_v4(bind)).map_err(fail)?;
        }
        IpAddr::V6(g) => {
            s.set_only_v6(true).map_err(fail)?;
            s.bind(&SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), group.port()).into())
                .map_err(fail)?;
            s.join_multicast_v6(&g, 0).map_err(fail)?;
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(fail)?;
    Ok(s.into())
}

/// Receives datagrams on `socket` and queues them for the worker until the runtime stops.
pub fn spawn_receiver(
    socket: UdpSocket,
    to_worker: MailboxSender<Vec<u8>>,
    remote: WorkerRemote,
) -> Result<JoinHandle<()>, Failure> {
    std::thread::Builder::new()
        .name("rsp-enrp-mcast".to_owned())
        .spawn(move || {
            let mut buf = vec![0; MAX_DATAGRAM];
            while !remote.is_stopping() {
                match socket.recv_from(&mut buf) {
                    Ok((n, _from)) => {
                        // A full mailbox drops the datagram: PRESENCE repeats.
                        if to_worker.try_send(buf[..n].to_vec()).is_err() {
                            tracing::debug!("ENRP multicast datagram dropped");
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        tracing::warn!("ENRP multicast receive failed: {e}");
                        return;
                    }
                }
            }
        })
        .map_err(|e| Failure::setup(format!("cannot start the multicast thread: {e}")))
}
