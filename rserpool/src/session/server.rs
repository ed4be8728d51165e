//! The PE side of Enhanced Mode: [`Server`] (see the [module docs](super) for the call
//! contract shared with [`Client`](super::Client)).
//!
//! # Behaviour
//!
//! - Registration: a [`PoolElement`] core registers with a home registrar; its association
//!   commands become [`Command::Connect`] with [`Target::Registrar`] and
//!   [`Command::Close`], its ASAP messages [`Transmit`]s with PPID 11, its events
//!   [`Event::Pe`].
//! - Every association accepted on the user port ([`Server::handle_incoming`]) is a
//!   session ([`Event::SessionAdded`]) unless [`ServerConfig::max_sessions`] sessions
//!   exist: then it is aborted and counted ([`Stats::sessions_refused`]).
//! - A registrar reaches a PE it never talked to (a takeover, RFC 5353 §3.5) by connecting
//!   to it and sending ENDPOINT_KEEP_ALIVE with flag H. When the first message of an
//!   incoming association is a registrar message (ENDPOINT_KEEP_ALIVE, a registration or
//!   deregistration response), the association is a registrar association, not a
//!   session: the session is withdrawn ([`Event::SessionRemoved`]) and the message goes to
//!   the PE core, which answers and re-homes (RFC 5352 §3.4).
//! - On a session association, PPID 11 carries ASAP_COOKIE_ECHO ([`Event::CookieEcho`],
//!   accepted only before any data: RFC 5352 §2.2.12 and §3.8 have the PU echo the cookie as its
//!   first message) and ASAP_BUSINESS_CARD ([`Event::BusinessCard`]); every other PPID is
//!   [`Event::Data`]. Anything else is counted and dropped.
//! - Malformed, oversized and unexpected input is counted in [`Stats`] and dropped; every
//!   queue and table is bounded.
//!
//! # Known gaps
//!
//! - Trust: like RSPLIB, a registrar is recognised by what it sends, not by its address. A
//!   PU that opens an association to the user port and sends ENDPOINT_KEEP_ALIVE with flag
//!   H first could re-home the PE to itself (the PE core adopts any H keep-alive, RFC 5352
//!   §3.4). Deployments that need more keep the user port and the ASAP endpoint apart (the
//!   driver then reports registrar associations on the ASAP endpoint only) or restrict it
//!   with SCTP-AUTH/TLS (RFC 5353 §6 / RFC 5352 §6). Such associations are bounded by
//!   [`ServerConfig::max_registrar_associations`].
//! - No Operation Error is sent back for unexpected ASAP messages on a session.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use rand_core::RngCore;

use super::{AssocRef, Command, Outputs, Role, SendError, SessionId, Target, Transmit};
use crate::Timestamp;
use crate::pe::{self, PoolElement, PoolElementConfig};
use crate::wire::{
    AsapMessage, PPID_ASAP, PeIdentifier, PolicyInfo, PoolElement as PoolElementParameter,
    PoolHandle, TransportParameter,
};

/// Everything a [`Server`] can be told. [`ServerConfig::new`] fills in the defaults
/// documented on the fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The pool element (pool handle, policy, user transport, registrars, timers).
    pub pe: PoolElementConfig,
    /// Most sessions at once; further associations are aborted (default 1024).
    pub max_sessions: usize,
    /// Longest message accepted on a session; longer ones are dropped and counted
    /// (default 65 535).
    pub max_message_len: usize,
    /// Most queued commands, transmits and events each (default 4096).
    pub max_queue: usize,
    /// Most incoming associations that turned out to come from registrars and are kept
    /// for the PE core (default 16); further ones are aborted and counted.
    pub max_registrar_associations: usize,
}

impl ServerConfig {
    /// A configuration around `pe` with the defaults documented on the fields.
    pub fn new(pe: PoolElementConfig) -> Self {
        ServerConfig {
            pe,
            max_sessions: 1024,
            max_message_len: 65_535,
            max_queue: 4096,
            max_registrar_associations: 16,
        }
    }
}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// From the PE core (registered, home changed, deregistered, ...).
    Pe(pe::Event),
    /// A PU opened a session.
    SessionAdded {
        /// The session.
        session: SessionId,
        /// Its association.
        assoc: AssocRef,
    },
    /// The session ended (association lost, closed, or it turned out to be a registrar).
    SessionRemoved {
        /// The session.
        session: SessionId,
    },
    /// A user message.
    Data {
        /// The session.
        session: SessionId,
        /// Its PPID.
        ppid: u32,
        /// The message.
        bytes: Vec<u8>,
    },
    /// ASAP_COOKIE_ECHO: a PU failed over to this PE and hands back the last cookie of its
    /// previous PE; it arrives before any data of the session.
    CookieEcho {
        /// The session.
        session: SessionId,
        /// The cookie (opaque to ASAP).
        cookie: Vec<u8>,
    },
    /// ASAP_BUSINESS_CARD from the PU.
    BusinessCard {
        /// The session.
        session: SessionId,
        /// The pool named on the card.
        pool_handle: PoolHandle,
        /// Its PEs.
        pool_elements: Vec<PeIdentifier>,
    },
}

/// Counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions opened.
    pub sessions_accepted: u64,
    /// Associations aborted because `max_sessions` sessions existed.
    pub sessions_refused: u64,
    /// Sessions ended.
    pub sessions_removed: u64,
    /// Incoming associations that turned out to come from a registrar.
    pub registrar_associations: u64,
    /// Incoming registrar associations aborted because
    /// [`ServerConfig::max_registrar_associations`] were kept already.
    pub registrar_associations_refused: u64,
    /// User messages received / sent.
    pub data_received: u64,
    /// User messages sent.
    pub data_sent: u64,
    /// ASAP_COOKIEs sent.
    pub cookies_sent: u64,
    /// ASAP_COOKIE_ECHOs delivered.
    pub cookie_echoes: u64,
    /// ASAP_BUSINESS_CARDs received.
    pub business_cards: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// Messages longer than `max_message_len`.
    pub oversized: u64,
    /// Well-formed messages out of place (unknown association, COOKIE_ECHO after data,
    /// ASAP messages a session does not carry).
    pub unexpected: u64,
    /// Outputs dropped because a queue was full.
    pub overflow: u64,
}

#[derive(Debug, Clone)]
struct Session {
    assoc: AssocRef,
    /// Data or a COOKIE_ECHO has arrived (a later COOKIE_ECHO is out of place).
    started: bool,
}

/// The PE-side session core (see the [module docs](self)).
pub struct Server {
    config: ServerConfig,
    pe: PoolElement,
    sessions: BTreeMap<SessionId, Session>,
    roles: BTreeMap<AssocRef, Role>,
    next_session: u64,
    out: Outputs<Event>,
    stats: Stats,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("pe", &self.pe)
            .field("sessions", &self.sessions.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server starting at `now`; its PE starts hunting for a home registrar at once.
    pub fn new(config: ServerConfig, rng: Box<dyn RngCore + Send>, now: Timestamp) -> Self {
        let pe = PoolElement::new(config.pe.clone(), rng, now);
        let out = Outputs::new(config.max_queue);
        let mut s = Server {
            config,
            pe,
            sessions: BTreeMap::new(),
            roles: BTreeMap::new(),
            next_session: 1,
            out,
            stats: Stats::default(),
        };
        s.pump();
        s
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The PE core (identifier, registration state, home registrar).
    pub fn pool_element(&self) -> &PoolElement {
        &self.pe
    }

    /// Number of sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The association of `session`.
    pub fn session_association(&self, session: SessionId) -> Option<AssocRef> {
        self.sessions.get(&session).map(|s| s.assoc)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The next association command, if any.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.out.commands.pop_front()
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`Server::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.pe.poll_timeout()
    }

    /// Fires the timers due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.pe.handle_timeout(now);
        self.pump();
    }

    /// The association requested by [`Command::Connect`] for `target` is up as `assoc`.
    pub fn handle_connected(
        &mut self,
        now: Timestamp,
        target: Target,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    ) {
        match target {
            Target::Registrar => {
                self.roles.insert(assoc, Role::Registrar);
                self.pe.handle_connected(now, assoc, endpoint);
            }
            // A server never asks for session associations.
            _ => {
                self.stats.unexpected += 1;
                self.out.command(Command::Abort { assoc });
            }
        }
        self.pump();
    }

    /// The association requested for `target` could not be set up.
    pub fn handle_connect_failed(
        &mut self,
        now: Timestamp,
        target: Target,
        endpoint: &TransportParameter,
    ) {
        if target == Target::Registrar {
            self.pe.handle_connect_failed(now, endpoint);
            self.pump();
        }
    }

    /// An association was accepted on the PE's user port.
    pub fn handle_incoming(
        &mut self,
        _now: Timestamp,
        assoc: AssocRef,
        _peer_port: u16,
        _peer_addresses: &[IpAddr],
    ) {
        if self.roles.contains_key(&assoc) {
            self.stats.unexpected += 1;
            return;
        }
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.sessions_refused += 1;
            self.out.command(Command::Abort { assoc });
            return;
        }
        let session = SessionId(self.next_session);
        self.next_session += 1;
        self.sessions.insert(
            session,
            Session {
                assoc,
                started: false,
            },
        );
        self.roles.insert(assoc, Role::Session(session));
        self.stats.sessions_accepted += 1;
        self.out.event(Event::SessionAdded { session, assoc });
        self.sync_overflow();
    }

    /// Association `assoc` went down.
    pub fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        if let Some(Role::Session(session)) = self.roles.remove(&assoc) {
            self.remove_session(session);
        }
        self.pe.handle_association_lost(now, assoc);
        self.pump();
    }

    /// One SCTP user message received on `assoc`.
    pub fn handle_message(&mut self, now: Timestamp, assoc: AssocRef, ppid: u32, bytes: &[u8]) {
        if bytes.len() > self.config.max_message_len {
            self.stats.oversized += 1;
            return;
        }
        match self.roles.get(&assoc).copied() {
            None => self.stats.unexpected += 1,
            Some(Role::Registrar) => {
                if ppid == PPID_ASAP {
                    self.pe.handle_asap(now, assoc, bytes);
                    self.pump();
                } else {
                    self.stats.unexpected += 1;
                }
            }
            Some(Role::Session(session)) if ppid == PPID_ASAP => {
                self.on_session_asap(now, assoc, session, bytes);
            }
            Some(Role::Session(session)) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.started = true;
                }
                self.stats.data_received += 1;
                self.out.event(Event::Data {
                    session,
                    ppid,
                    bytes: bytes.to_vec(),
                });
                self.sync_overflow();
            }
        }
    }

    /// One SERVER_ANNOUNCE datagram from `source` (for the PE's registrar list).
    pub fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]) {
        self.pe.handle_server_announce(now, source, bytes);
        self.pump();
    }

    /// Sends a user message on `session` (one SCTP message with `ppid`, stream 0).
    pub fn send(
        &mut self,
        _now: Timestamp,
        session: SessionId,
        ppid: u32,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        let assoc = self.check_send(session, bytes.len())?;
        self.out.transmit(assoc, ppid, bytes.to_vec());
        self.stats.data_sent += 1;
        Ok(())
    }

    /// Sends ASAP_COOKIE with `cookie` on `session` (RFC 5352 §2.2.11, §3.8): the PU keeps the
    /// last one and echoes it to the next PE after a failover.
    pub fn send_cookie(
        &mut self,
        _now: Timestamp,
        session: SessionId,
        cookie: &[u8],
    ) -> Result<(), SendError> {
        let assoc = self.check_send(session, cookie.len())?;
        let msg = AsapMessage::Cookie {
            cookie: cookie.to_vec(),
        };
        let bytes = crate::pe::encode(&msg).ok_or(SendError::TooLong)?;
        self.out.transmit(assoc, PPID_ASAP, bytes);
        self.stats.cookies_sent += 1;
        Ok(())
    }

    /// Sends ASAP_BUSINESS_CARD on `session` (RFC 5352 §2.2.13, §3.9): this PE's pool and
    /// `pool_elements` as failover candidates.
    pub fn send_business_card(
        &mut self,
        _now: Timestamp,
        session: SessionId,
        pool_elements: Vec<PoolElementParameter>,
    ) -> Result<(), SendError> {
        let msg = AsapMessage::BusinessCard {
            pool_handle: self.config.pe.pool_handle.clone(),
            policy: self.pe.config().policy.clone(),
            pool_elements,
        };
        let bytes = crate::pe::encode(&msg).ok_or(SendError::TooLong)?;
        let assoc = self.check_send(session, bytes.len())?;
        self.out.transmit(assoc, PPID_ASAP, bytes);
        Ok(())
    }

    /// Closes `session` gracefully ([`Event::SessionRemoved`] follows).
    pub fn close(&mut self, _now: Timestamp, session: SessionId) {
        if let Some(s) = self.sessions.get(&session) {
            let assoc = s.assoc;
            self.roles.remove(&assoc);
            self.out.command(Command::Close { assoc });
            self.remove_session(session);
            self.sync_overflow();
        }
    }

    /// Sets the PE's load (re-registers at once, see [`PoolElement::set_load`]).
    pub fn set_load(&mut self, now: Timestamp, load: u32) {
        self.pe.set_load(now, load);
        self.pump();
    }

    /// Replaces the policy information (see [`PoolElement::set_policy`]).
    pub fn set_policy(&mut self, now: Timestamp, policy: PolicyInfo) {
        self.pe.set_policy(now, policy);
        self.pump();
    }

    /// Leaves the pool (see [`PoolElement::deregister`]); sessions stay until closed.
    pub fn deregister(&mut self, now: Timestamp) {
        self.pe.deregister(now);
        self.pump();
    }

    // ---- internals ----

    fn check_send(&self, session: SessionId, len: usize) -> Result<AssocRef, SendError> {
        let s = self
            .sessions
            .get(&session)
            .ok_or(SendError::UnknownSession)?;
        self.out.check_send(len, self.config.max_message_len)?;
        Ok(s.assoc)
    }

    fn on_session_asap(&mut self, now: Timestamp, assoc: AssocRef, session: SessionId, b: &[u8]) {
        let Ok(decoded) = AsapMessage::decode(b) else {
            self.stats.malformed += 1;
            return;
        };
        let started = self.sessions.get(&session).is_some_and(|s| s.started);
        match decoded.message {
            AsapMessage::CookieEcho { cookie } if !started => {
                // RFC 5352 §2.2.12, §3.8: the PU sends the cookie echo before any data.
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.started = true;
                }
                self.stats.cookie_echoes += 1;
                self.out.event(Event::CookieEcho { session, cookie });
            }
            AsapMessage::BusinessCard {
                pool_handle,
                pool_elements,
                ..
            } => {
                self.stats.business_cards += 1;
                self.out.event(Event::BusinessCard {
                    session,
                    pool_handle,
                    pool_elements: pool_elements.iter().map(|p| p.identifier).collect(),
                });
            }
            AsapMessage::EndpointKeepAlive { .. }
            | AsapMessage::RegistrationResponse { .. }
            | AsapMessage::DeregistrationResponse { .. }
                if !started =>
            {
                // A registrar connected to us (a takeover, RFC 5353 §3.5): not a session.
                self.remove_session(session);
                let kept = self
                    .roles
                    .values()
                    .filter(|r| matches!(r, Role::Registrar))
                    .count();
                if kept >= self.config.max_registrar_associations {
                    self.stats.registrar_associations_refused += 1;
                    self.roles.remove(&assoc);
                    self.out.command(Command::Abort { assoc });
                    self.sync_overflow();
                    return;
                }
                self.stats.registrar_associations += 1;
                self.roles.insert(assoc, Role::Registrar);
                self.pe.handle_asap(now, assoc, b);
                self.pump();
            }
            _ => self.stats.unexpected += 1,
        }
        self.sync_overflow();
    }

    fn remove_session(&mut self, session: SessionId) {
        if self.sessions.remove(&session).is_some() {
            self.stats.sessions_removed += 1;
            self.out.event(Event::SessionRemoved { session });
        }
    }

    /// Moves the PE core's outputs into ours.
    fn pump(&mut self) {
        while let Some(c) = self.pe.poll_command() {
            match c {
                pe::Command::Connect { endpoint } => self.out.connect_registrar(endpoint),
                pe::Command::Close { assoc } => self.out.close_registrar(&mut self.roles, assoc),
            }
        }
        while let Some(t) = self.pe.poll_transmit() {
            self.out.transmit(t.assoc, PPID_ASAP, t.bytes);
        }
        while let Some(e) = self.pe.poll_event() {
            self.out.event(Event::Pe(e));
        }
        self.sync_overflow();
    }

    fn sync_overflow(&mut self) {
        self.stats.overflow = self.out.overflow;
    }
}
