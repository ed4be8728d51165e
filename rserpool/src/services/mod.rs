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
/// `cookies` (ASAP_COOKIE, PE side only), then fail over (PU side) or close.
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
}

impl ServiceOutput {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.cookies.is_empty() && !self.close && !self.failover
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
