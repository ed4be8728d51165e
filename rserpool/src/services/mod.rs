//! RSPLIB's demonstration services as sans-IO state machines, and their wire formats.
//!
//! - [`server`]: the PE side. A [`server::ServiceHost`] runs one state machine per session
//!   of a [`session::Server`](crate::session::Server): Echo, Discard, Daytime and CharGen
//!   (PPID 0, like their TCP ancestors RFC 862/863/867/864), PingPong (PPID 33) and CalcApp
//!   (PPID 34, with one capacity model shared by all sessions).
//! - [`client`]: the PU side, one object per session of a
//!   [`session::Client`](crate::session::Client): [`client::PingPongClient`],
//!   [`client::CalcAppClient`] and [`client::EchoClient`] (the terminal).
//! - [`wire`]: the message formats and cookies, wire-compatible with RSPLIB and decoded by
//!   Wireshark's `pingpongprotocol`, `calcappprotocol`, `fractalgeneratorprotocol`,
//!   `ssprotocol` and `componentstatusprotocol` dissectors.
//!
//! # Call contract
//!
//! The services never touch the session cores themselves: every input takes the current
//! [`Timestamp`] and a [`ServiceOutput`] to fill (messages with their PPID, cookies to send,
//! and whether to close the session or fail it over). The driver applies the output to the
//! session core with [`ServiceOutput::apply_to_server`] / [`ServiceOutput::apply_to_client`]
//! (messages first, then cookies, then failover or close), and calls `handle_timeout` at
//! `poll_timeout`, like the session cores. Time only ever comes in as a [`Timestamp`].
//!
//! # Known gaps
//!
//! - The Fractal Generator and Scripting services have wire formats ([`wire`]) but no state
//!   machines yet.
//! - CalcApp follows RSPLIB's messages and cookie; the capacity model (processor sharing
//!   of `calcapp_capacity` over the running jobs) is this crate's own, not RSPLIB's
//!   scheduler.
//!
//! # Example
//!
//! A PingPong exchange with the session layer left out: the PE side's host gets the
//! session events a [`Server`] would report, the PU side's client the ones a [`Client`]
//! would report, and the messages go straight across.
//!
//! ```
//! use rserpool::Timestamp;
//! use rserpool::services::ServiceOutput;
//! use rserpool::services::client::{PingPongClient, PingPongConfig};
//! use rserpool::services::server::{ServiceConfig, ServiceHost, ServiceKind};
//! use rserpool::services::wire::PingPongCookie;
//! use rserpool::session::{client, server, AssocRef, SessionId};
//! use rserpool::wire::PeIdentifier;
//!
//! let now = Timestamp::from_secs(1);
//! let mut host = ServiceHost::new(ServiceConfig::new(ServiceKind::PingPong), now);
//! let pe_side = SessionId(1);
//! host.handle_event(now, &server::Event::SessionAdded { session: pe_side, assoc: AssocRef(1) });
//!
//! let pu_side = SessionId(7);
//! let mut ping = PingPongClient::new(pu_side, PingPongConfig::default(), now);
//! let mut out = ServiceOutput::new();
//! ping.handle_event(now, &client::Event::Connected { session: pu_side, pe: PeIdentifier(1) }, &mut out);
//! // The first Ping goes out at once (a driver would apply `out` to its Client).
//! let msg = out.messages.pop().expect("a Ping");
//! host.handle_event(now, &server::Event::Data { session: pe_side, ppid: msg.ppid, bytes: msg.bytes });
//!
//! // The PE answers with a Pong and a cookie carrying the next reply number.
//! let (session, reply) = host.poll_output().expect("an answer");
//! assert_eq!(session, pe_side);
//! assert_eq!(PingPongCookie::from_bytes(&reply.cookies[0]), Ok(PingPongCookie { reply_no: 2 }));
//! for m in reply.messages {
//!     let pong = client::Event::Data { session: pu_side, ppid: m.ppid, bytes: m.bytes };
//!     ping.handle_event(now, &pong, &mut out);
//! }
//! assert_eq!(ping.stats().pongs_received, 1);
//! assert_eq!(ping.expected_reply(), Some(2));
//! // The next Ping is due after the interval.
//! assert_eq!(ping.poll_timeout(), Some(now + PingPongConfig::default().interval));
//! ```

pub mod client;
pub mod server;
pub mod wire;

use crate::Timestamp;
use crate::session::{Client, Server, SessionId};

/// PPID of the services without a protocol of their own (Echo, Discard, Daytime, CharGen).
pub const PPID_PLAIN: u32 = 0;

/// One message a service wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMessage {
    /// Its PPID.
    pub ppid: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What a service wants done on its session, in this order: send `messages`, send the
/// `cookies` (ASAP_COOKIE, PE side only) or forget the last one (PU side), then fail over
/// (PU side) or close.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceOutput {
    /// User messages.
    pub messages: Vec<ServiceMessage>,
    /// Cookies for the PU (PE side).
    pub cookies: Vec<Vec<u8>>,
    /// Close the session.
    pub close: bool,
    /// Fail the session over to another PE (PU side: a reject or a keep-alive timeout).
    pub failover: bool,
    /// Forget the session's last cookie (PU side: it belongs to a finished job and must
    /// not be echoed to the next PE).
    pub clear_cookie: bool,
}

impl ServiceOutput {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.cookies.is_empty()
            && !self.close
            && !self.failover
            && !self.clear_cookie
    }

    /// Adds a message.
    pub fn send(&mut self, ppid: u32, bytes: Vec<u8>) {
        self.messages.push(ServiceMessage { ppid, bytes });
    }

    /// Applies (and empties) the output on `session` of a PE-side [`Server`]; returns how
    /// many messages and cookies the server refused.
    pub fn apply_to_server(
        &mut self,
        now: Timestamp,
        server: &mut Server,
        session: SessionId,
    ) -> usize {
        let mut refused = 0;
        for m in self.messages.drain(..) {
            refused += usize::from(server.send(now, session, m.ppid, &m.bytes).is_err());
        }
        for c in self.cookies.drain(..) {
            refused += usize::from(server.send_cookie(now, session, &c).is_err());
        }
        if std::mem::take(&mut self.close) {
            server.close(now, session);
        }
        self.failover = false;
        self.clear_cookie = false;
        refused
    }

    /// Applies (and empties) the output on `session` of a PU-side [`Client`]; returns how
    /// many messages the client refused (e.g. during a failover).
    pub fn apply_to_client(
        &mut self,
        now: Timestamp,
        client: &mut Client,
        session: SessionId,
    ) -> usize {
        let mut refused = 0;
        for m in self.messages.drain(..) {
            refused += usize::from(client.send(now, session, m.ppid, &m.bytes).is_err());
        }
        // Cookies travel from PE to PU only.
        refused += self.cookies.len();
        self.cookies.clear();
        if std::mem::take(&mut self.clear_cookie) {
            client.clear_cookie(session);
        }
        if std::mem::take(&mut self.failover) {
            client.failover(now, session);
        }
        if std::mem::take(&mut self.close) {
            client.close(now, session);
        }
        refused
    }
}

/// `a` is before `b` in RFC 1982 serial-number order over u64.
pub(crate) fn serial_lt(a: u64, b: u64) -> bool {
    a != b && b.wrapping_sub(a) < (1u64 << 63)
}
