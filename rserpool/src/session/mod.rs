//! Enhanced Mode (RFC 5351 §3, RFC 5352 §3.8-§3.9): sessions between pool users and pool
//! elements with cookies, business cards and failover, as sans-IO cores on top of the
//! [`pe`](crate::pe) and [`pu`](crate::pu) cores.
//!
//! - [`Server`] (PE side) owns a [`PoolElement`](crate::pe::PoolElement) (registration with
//!   the home registrar) and one session per association accepted on the PE's user port.
//! - [`Client`] (PU side) owns a [`PoolUser`](crate::pu::PoolUser) (handle resolution,
//!   ENDPOINT_UNREACHABLE reports) and any number of sessions, each bound to one PE at a
//!   time and failed over to another PE when its association is lost.
//!
//! Both are driven the same way (`docs/design/enhanced-mode.md` is the contract with the
//! `appliance` drivers). The driver owns the SCTP associations and the clock; the cores
//! name associations by [`AssocRef`] (the driver's counter, never reused).
//!
//! # Call contract
//!
//! 1. `Server::new` / `Client::new` with a config, a seeded RNG and the current time.
//! 2. Inputs, each with the current [`Timestamp`](crate::Timestamp) (never decreasing):
//!    - `handle_connected(now, target, assoc, endpoint)` /
//!      `handle_connect_failed(now, target, endpoint)`: the outcome of a
//!      [`Command::Connect`], with the same [`Target`];
//!    - [`Server::handle_incoming`]: an association accepted on the PE's user port;
//!    - `handle_association_lost(now, assoc)`: an association went down (abort, shutdown
//!      or path failure; the cores do not distinguish);
//!    - `handle_message(now, assoc, ppid, bytes)`: one SCTP user message;
//!    - `handle_server_announce(now, source, bytes)`: one SERVER_ANNOUNCE datagram;
//!    - `handle_timeout(now)` once `poll_timeout()` has come (spurious calls are no-ops);
//!    - application calls (`send`, `send_cookie`, `close`, `connect`, `failover`, ...).
//! 3. After every input drain, in this order, `poll_command` (connect, close, abort),
//!    `poll_transmit` (one SCTP message each: association, PPID, stream, bytes) and
//!    `poll_event`, then re-arm the timer with `poll_timeout`.
//!
//! # Wire
//!
//! Control messages between PU and PE ride on the session association as ASAP messages
//! with PPID 11 (RFC 5352 §2.2.11-§2.2.13): ASAP_COOKIE (PE -> PU, a state snapshot the
//! PU keeps), ASAP_COOKIE_ECHO (PU -> new PE, the last cookie, before any data) and
//! ASAP_BUSINESS_CARD. Every other PPID is the application's data.
//!
//! # Examples
//!
//! A socket-like echo server and client (after RSPLIB's classic examples), driven by hand
//! with one registrar in memory:
//!
//! ```
//! use core::time::Duration;
//! use std::net::{IpAddr, Ipv4Addr};
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use rserpool::Timestamp;
//! use rserpool::pe::PoolElementConfig;
//! use rserpool::registrar::{AsapOrigin, Destination, Registrar, RegistrarConfig};
//! use rserpool::session::{client, server, AssocRef, Client, ClientConfig, Command, Server, ServerConfig, Target};
//! use rserpool::wire::*;
//!
//! let now = Timestamp::from_secs(1);
//! let mut pr = Registrar::new(
//!     RegistrarConfig { server_id: RegistrarId(1), mentor_hunt_timeout: Duration::ZERO, ..RegistrarConfig::default() },
//!     Box::new(ChaCha8Rng::seed_from_u64(1)),
//!     now,
//! );
//! pr.handle_timeout(now);
//! while pr.poll_transmit().is_some() {}
//! let pr_endpoint = TransportParameter::sctp(PORT_ASAP, TransportUse::DATA_ONLY, vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))]);
//!
//! // The server: a PE of "EchoPool" on port 7.
//! let pe_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9));
//! let mut pe_config = PoolElementConfig::new(
//!     PoolHandle::from("EchoPool"),
//!     PolicyInfo::round_robin(),
//!     TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![pe_addr]),
//! );
//! pe_config.static_registrars = vec![pr_endpoint.clone()];
//! let mut srv = Server::new(ServerConfig::new(pe_config), Box::new(ChaCha8Rng::seed_from_u64(2)), now);
//! // It asks for an association to the registrar and registers over it.
//! let Some(Command::Connect { target: Target::Registrar, endpoint }) = srv.poll_command() else { panic!() };
//! srv.handle_connected(now, Target::Registrar, AssocRef(1), &endpoint);
//! let registration = srv.poll_transmit().expect("REGISTRATION");
//! assert_eq!(registration.ppid, PPID_ASAP);
//! pr.handle_asap(now, AsapOrigin { assoc: AssocRef(1), port: 5000, addresses: &[pe_addr] }, &registration.bytes);
//! let response = pr.poll_transmit().expect("REGISTRATION_RESPONSE");
//! srv.handle_message(now, AssocRef(1), PPID_ASAP, &response.bytes);
//! assert!(matches!(srv.poll_event(), Some(server::Event::Pe(rserpool::pe::Event::Registered { .. }))));
//!
//! // The client resolves the pool handle through the registrar ...
//! let pu_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 20));
//! let config = ClientConfig {
//!     pu: rserpool::pu::PoolUserConfig { static_registrars: vec![pr_endpoint], ..Default::default() },
//!     ..ClientConfig::default()
//! };
//! let mut cli = Client::new(config, Box::new(ChaCha8Rng::seed_from_u64(3)), now);
//! let session = cli.connect(now, PoolHandle::from("EchoPool")).expect("a session");
//! let Some(Command::Connect { target: Target::Registrar, endpoint }) = cli.poll_command() else { panic!() };
//! cli.handle_connected(now, Target::Registrar, AssocRef(2), &endpoint);
//! let request = cli.poll_transmit().expect("HANDLE_RESOLUTION");
//! pr.handle_asap(now, AsapOrigin { assoc: AssocRef(2), port: 40000, addresses: &[pu_addr] }, &request.bytes);
//! let answer = pr.poll_transmit().expect("HANDLE_RESOLUTION_RESPONSE");
//! cli.handle_message(now, AssocRef(2), PPID_ASAP, &answer.bytes);
//!
//! // ... and connects to the selected PE's user transport.
//! let Some(Command::Connect { target: Target::Session(s), endpoint }) = cli.poll_command() else { panic!() };
//! assert_eq!((s, endpoint.port), (session, 7));
//! cli.handle_connected(now, Target::Session(session), AssocRef(3), &endpoint);
//! // The registrar's answer was reported first (Basic Mode callers of `resolve` wait for it).
//! assert!(matches!(cli.poll_event(), Some(client::Event::Resolution { resolved: true, .. })));
//! assert!(matches!(cli.poll_event(), Some(client::Event::Connected { .. })));
//! srv.handle_incoming(now, AssocRef(4), 40001, &[pu_addr]);
//! let Some(server::Event::SessionAdded { session: peer, .. }) = srv.poll_event() else { panic!() };
//!
//! // Like sockets: the client sends, the server echoes.
//! cli.send(now, session, 0, b"Hello").expect("connected");
//! let t = cli.poll_transmit().expect("the message");
//! srv.handle_message(now, AssocRef(4), t.ppid, &t.bytes);
//! let Some(server::Event::Data { session: from, ppid, bytes }) = srv.poll_event() else { panic!() };
//! assert_eq!(from, peer);
//! srv.send(now, from, ppid, &bytes).expect("up");
//! let echo = srv.poll_transmit().expect("the echo");
//! cli.handle_message(now, AssocRef(3), echo.ppid, &echo.bytes);
//! assert_eq!(
//!     cli.poll_event(),
//!     Some(client::Event::Data { session, ppid: 0, bytes: b"Hello".to_vec() })
//! );
//! ```

pub mod client;
pub mod server;

use core::fmt;
use std::collections::{BTreeMap, VecDeque};

pub use crate::registrar::AssocRef;
pub use client::{Client, ClientConfig, FailoverMode};
pub use server::{Server, ServerConfig};

use crate::wire::TransportParameter;

/// A session of a [`Server`] or [`Client`] (the core's counter, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What an association is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A registrar's ASAP endpoint (PE registration, PU handle resolution).
    Registrar,
    /// A PE's user transport, for a client session.
    Session(SessionId),
}

/// Something the driver must do with associations.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Open an association to `endpoint` (a registrar's ASAP endpoint, or a PE's user
    /// transport for a session). Answer with `handle_connected` / `handle_connect_failed`
    /// carrying the same `target`.
    Connect {
        /// What the association is for.
        target: Target,
        /// Where to connect.
        endpoint: TransportParameter,
    },
    /// Shut the association down gracefully (no report needed).
    Close {
        /// The association.
        assoc: AssocRef,
    },
    /// Abort it (no report needed).
    Abort {
        /// The association.
        assoc: AssocRef,
    },
}

/// A user message on an association: one SCTP message, ordered, on `stream` with `ppid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The association.
    pub assoc: AssocRef,
    /// SCTP payload protocol identifier (11 for ASAP control messages).
    pub ppid: u32,
    /// SCTP stream.
    pub stream: u16,
    /// The message.
    pub bytes: Vec<u8>,
}

/// Why `send` (or `send_cookie`) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such session (never existed, closed or failed).
    UnknownSession,
    /// The session has no association now (resolution, connection or failover under way).
    NotConnected,
    /// Longer than the configured `max_message_len`.
    TooLong,
    /// The transmit queue is full (`max_queue`); try again after draining it.
    QueueFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownSession => write!(f, "unknown session"),
            SendError::NotConnected => write!(f, "session not connected"),
            SendError::TooLong => write!(f, "message too long"),
            SendError::QueueFull => write!(f, "transmit queue full"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why [`Client::connect`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// `max_sessions` sessions exist.
    TooManySessions,
    /// The pool handle is empty or too long.
    InvalidPoolHandle,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::TooManySessions => write!(f, "too many sessions"),
            ConnectError::InvalidPoolHandle => write!(f, "invalid pool handle"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// What an association is to a session core: the one to its registrar, or a session's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Registrar,
    Session(SessionId),
}

/// Bounded output queues shared by both cores.
#[derive(Debug)]
pub(crate) struct Outputs<E> {
    pub(crate) commands: VecDeque<Command>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<E>,
    pub(crate) max: usize,
    /// Outputs dropped because a queue was full.
    pub(crate) overflow: u64,
}

impl<E> Outputs<E> {
    pub(crate) fn new(max: usize) -> Self {
        Outputs {
            commands: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            max: max.max(1),
            overflow: 0,
        }
    }

    pub(crate) fn command(&mut self, c: Command) {
        if self.commands.len() >= self.max {
            self.overflow += 1;
            return;
        }
        self.commands.push_back(c);
    }

    pub(crate) fn event(&mut self, e: E) {
        if self.events.len() >= self.max {
            self.overflow += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// Queues a transmit; `false` when the queue is full (counted).
    pub(crate) fn transmit(&mut self, assoc: AssocRef, ppid: u32, bytes: Vec<u8>) -> bool {
        if self.transmits.len() >= self.max {
            self.overflow += 1;
            return false;
        }
        self.transmits.push_back(Transmit {
            assoc,
            ppid,
            stream: 0,
            bytes,
        });
        true
    }

    pub(crate) fn transmit_room(&self) -> bool {
        self.transmits.len() < self.max
    }

    /// Checks that a user message of `len` bytes may be queued now: not longer than
    /// `max_len` (`TooLong`), room in the transmit queue (`QueueFull`), in that order.
    pub(crate) fn check_send(&self, len: usize, max_len: usize) -> Result<(), SendError> {
        if len > max_len {
            return Err(SendError::TooLong);
        }
        if !self.transmit_room() {
            return Err(SendError::QueueFull);
        }
        Ok(())
    }

    /// Passes on a PU/PE core's request for an association to a registrar at `endpoint`.
    pub(crate) fn connect_registrar(&mut self, endpoint: TransportParameter) {
        self.command(Command::Connect {
            target: Target::Registrar,
            endpoint,
        });
    }

    /// Passes on a PU/PE core's close of `assoc`, forgetting it in `roles` when it was the
    /// registrar association (a session's association keeps its role until it is lost).
    pub(crate) fn close_registrar(
        &mut self,
        roles: &mut BTreeMap<AssocRef, Role>,
        assoc: AssocRef,
    ) {
        if matches!(roles.get(&assoc), Some(Role::Registrar)) {
            roles.remove(&assoc);
        }
        self.command(Command::Close { assoc });
    }
}
