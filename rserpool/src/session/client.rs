//! The PU side of Enhanced Mode: [`Client`] (see the [module docs](super) for the call
//! contract shared with [`Server`](super::Server)).
//!
//! # Behaviour
//!
//! - Handle resolution through a [`PoolUser`] core (RFC 5352 §3.3): its association
//!   commands become [`Command::Connect`] with [`Target::Registrar`] and [`Command::Close`],
//!   its ASAP messages [`Transmit`]s with PPID 11. A session whose resolution is pending
//!   waits for the PU core's answer; a selected PE is connected at its user transport
//!   ([`Command::Connect`] with [`Target::Session`]).
//! - The last ASAP_COOKIE of each session is kept ([`Event::CookieReceived`]).
//! - Failover (RFC 5351 §3, RFC 5352 §3.8): when the association of a session is lost
//!   ([`FailoverMode::Automatic`]) or the application calls [`Client::failover`], the
//!   client reports [`Event::FailoverNecessary`], sends ENDPOINT_UNREACHABLE for the old PE
//!   (RFC 5352 §3.5), resolves again preferring a different PE, connects, sends
//!   ASAP_COOKIE_ECHO with the last cookie as the first message (RFC 5352 §2.2.12, §3.8) and
//!   reports [`Event::FailoverComplete`]. With [`FailoverMode::Application`], a lost
//!   association only reports [`Event::FailoverNecessary`]; the steps start when the
//!   application calls [`Client::failover`].
//! - Failed attempts (resolution failed, connect failed or timed out) are retried every
//!   [`ClientConfig::retry_interval`]; a failover within the retry interval after the
//!   session came up waits until that interval has passed (a PE that refuses at once is
//!   not hammered); after [`ClientConfig::max_failover_attempts`] in a
//!   row the session ends with [`Event::Failed`].
//! - While a session has no association, [`Client::send`] returns
//!   [`SendError::NotConnected`]; nothing is buffered across a failover (the cookie is the
//!   state that survives).
//! - Malformed, oversized and unexpected input is counted in [`Stats`] and dropped; every
//!   queue and table is bounded.
//!
//! # Known gaps
//!
//! - The PE list of an ASAP_BUSINESS_CARD is reported, not used as failover candidates
//!   (the next PE always comes from handle resolution).
//! - Messages sent to a PE that dies before they are delivered are lost with it; the
//!   application's protocol (cookies, job ids, sequence numbers) decides what to repeat.
//! - Every message goes on stream 0 (ordered), like RSPLIB's services.

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use rand_core::RngCore;

use super::{
    AssocRef, Command, ConnectError, Outputs, Role, SendError, SessionId, Target, Transmit,
};
use crate::Timestamp;
use crate::pe::encode;
use crate::pu::{self, PoolUser, PoolUserConfig, Resolve, ResolveError};
use crate::wire::{
    AsapMessage, PPID_ASAP, PeIdentifier, PoolElement as PoolElementParameter, PoolHandle,
    TransportParameter,
};

/// Who starts a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailoverMode {
    /// The client fails over by itself when a session's association is lost.
    #[default]
    Automatic,
    /// The client only reports [`Event::FailoverNecessary`]; the application calls
    /// [`Client::failover`].
    Application,
}

/// Everything a [`Client`] can be told. `Default` gives the values documented on the
/// fields.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The pool user core (registrars, cache, request timers).
    pub pu: PoolUserConfig,
    /// Who starts a failover (default [`FailoverMode::Automatic`]).
    pub failover: FailoverMode,
    /// Most sessions at once (default 1024).
    pub max_sessions: usize,
    /// Longest message accepted or sent (default 65 535).
    pub max_message_len: usize,
    /// Most queued commands, transmits and events each (default 4096).
    pub max_queue: usize,
    /// Failed attempts in a row (resolution or connection) after which a session is given
    /// up with [`Event::Failed`] (default 5).
    pub max_failover_attempts: u32,
    /// Pause after a failed attempt before the next one (default 1 s).
    pub retry_interval: Duration,
    /// How long the association to a PE may take to come up (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            pu: PoolUserConfig::default(),
            failover: FailoverMode::Automatic,
            max_sessions: 1024,
            max_message_len: 65_535,
            max_queue: 4096,
            max_failover_attempts: 5,
            retry_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a session was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// [`ClientConfig::max_failover_attempts`] attempts in a row found no working PE.
    AttemptsExhausted,
}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The session is connected to its first PE.
    Connected {
        /// The session.
        session: SessionId,
        /// The PE.
        pe: PeIdentifier,
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
    /// An ASAP_COOKIE arrived; it is kept for a failover.
    CookieReceived {
        /// The session.
        session: SessionId,
    },
    /// An ASAP_BUSINESS_CARD arrived.
    BusinessCard {
        /// The session.
        session: SessionId,
        /// The pool named on the card.
        pool_handle: PoolHandle,
        /// Its PEs.
        pool_elements: Vec<PeIdentifier>,
    },
    /// The session lost its PE (association lost, or the application asked).
    FailoverNecessary {
        /// The session.
        session: SessionId,
        /// The PE it lost.
        pe: PeIdentifier,
    },
    /// The session is connected to a new PE; the last cookie went out before any data.
    FailoverComplete {
        /// The session.
        session: SessionId,
        /// The new PE.
        pe: PeIdentifier,
    },
    /// The session was given up.
    Failed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: FailReason,
    },
    /// The session was closed by [`Client::close`].
    Closed {
        /// The session.
        session: SessionId,
    },
    /// Basic Mode: a handle resolution [`Client::resolve`] left pending is answered:
    /// `resolved` true means [`Client::resolve`] now selects from the fresh cache entries;
    /// false means the registrar refused or did not answer.
    Resolution {
        /// The pool.
        pool_handle: PoolHandle,
        /// Whether PEs are known now.
        resolved: bool,
    },
}

/// Counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions opened with [`Client::connect`].
    pub sessions_opened: u64,
    /// Sessions given up.
    pub sessions_failed: u64,
    /// Failovers started.
    pub failovers: u64,
    /// Failovers completed.
    pub failovers_completed: u64,
    /// Failed attempts (resolution, connection).
    pub failed_attempts: u64,
    /// COOKIE_ECHOs sent.
    pub cookie_echoes_sent: u64,
    /// COOKIEs received.
    pub cookies_received: u64,
    /// User messages received.
    pub data_received: u64,
    /// User messages sent.
    pub data_sent: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// Messages longer than `max_message_len`.
    pub oversized: u64,
    /// Well-formed messages out of place.
    pub unexpected: u64,
    /// Outputs dropped because a queue was full.
    pub overflow: u64,
}

/// Where a session is.
#[derive(Debug, Clone)]
enum State {
    /// Waiting for the PU core's resolution; asks again at `recheck`.
    Resolving { recheck: Timestamp },
    /// Pausing after a failed attempt.
    Waiting { until: Timestamp },
    /// Connecting to `pe`.
    Connecting {
        pe: PoolElementParameter,
        deadline: Timestamp,
    },
    /// Up on `assoc`.
    Up { assoc: AssocRef, pe: PeIdentifier },
    /// Lost `pe`; waiting for [`Client::failover`] (application mode).
    Down { pe: PeIdentifier },
}

#[derive(Debug, Clone)]
struct Session {
    pool_handle: PoolHandle,
    state: State,
    /// The last ASAP_COOKIE.
    cookie: Option<Vec<u8>>,
    /// The session was connected before (the next connection is a failover).
    failing_over: bool,
    /// The PE to avoid when another one is available.
    avoid: Option<PeIdentifier>,
    /// Failed attempts in a row.
    attempts: u32,
    /// When the session last came up (a failover right after waits for the retry
    /// interval, so PEs that refuse at once are not hammered).
    last_up: Option<Timestamp>,
}

/// The PU-side session core (see the [module docs](self)).
pub struct Client {
    config: ClientConfig,
    pu: PoolUser,
    sessions: BTreeMap<SessionId, Session>,
    roles: BTreeMap<AssocRef, Role>,
    next_session: u64,
    out: Outputs<Event>,
    stats: Stats,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("pu", &self.pu)
            .field("sessions", &self.sessions.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client starting at `now` (it talks to a registrar once it has to resolve).
    pub fn new(config: ClientConfig, rng: Box<dyn RngCore + Send>, now: Timestamp) -> Self {
        let pu = PoolUser::new(config.pu.clone(), rng, now);
        let out = Outputs::new(config.max_queue);
        Client {
            config,
            pu,
            sessions: BTreeMap::new(),
            roles: BTreeMap::new(),
            next_session: 1,
            out,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The PU core (cache, registrar association).
    pub fn pool_user(&self) -> &PoolUser {
        &self.pu
    }

    /// Number of sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The PE `session` is connected to (`None` while resolving, connecting or failing
    /// over).
    pub fn session_pe(&self, session: SessionId) -> Option<PeIdentifier> {
        match self.sessions.get(&session)?.state {
            State::Up { pe, .. } => Some(pe),
            _ => None,
        }
    }

    /// The association of `session`, if up.
    pub fn session_association(&self, session: SessionId) -> Option<AssocRef> {
        match self.sessions.get(&session)?.state {
            State::Up { assoc, .. } => Some(assoc),
            _ => None,
        }
    }

    /// The last cookie of `session`.
    pub fn session_cookie(&self, session: SessionId) -> Option<&[u8]> {
        self.sessions.get(&session)?.cookie.as_deref()
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

    /// When [`Client::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let sessions = self.sessions.values().filter_map(|s| match &s.state {
            State::Resolving { recheck } => Some(*recheck),
            State::Waiting { until } => Some(*until),
            State::Connecting { deadline, .. } => Some(*deadline),
            State::Up { .. } | State::Down { .. } => None,
        });
        sessions.chain(self.pu.poll_timeout()).min()
    }

    /// Opens a session to a PE of `pool_handle`; [`Event::Connected`] follows once it is
    /// up.
    pub fn connect(
        &mut self,
        now: Timestamp,
        pool_handle: PoolHandle,
    ) -> Result<SessionId, ConnectError> {
        if pool_handle.is_empty() || pool_handle.len() > self.config.pu.cache.max_pool_handle_len {
            return Err(ConnectError::InvalidPoolHandle);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(ConnectError::TooManySessions);
        }
        let session = SessionId(self.next_session);
        self.next_session += 1;
        self.sessions.insert(
            session,
            Session {
                pool_handle,
                state: State::Resolving { recheck: now },
                cookie: None,
                failing_over: false,
                avoid: None,
                attempts: 0,
                last_up: None,
            },
        );
        self.stats.sessions_opened += 1;
        self.try_resolve(now, session);
        self.pump(now);
        Ok(session)
    }

    /// Basic Mode (RFC 5351 §3, RFC 5352 §3.3): a PE of `handle` chosen by the pool policy
    /// from the cache, or [`pu::Resolve::Pending`] while a HANDLE_RESOLUTION is under way
    /// ([`Event::Resolution`] tells when to ask again).
    pub fn resolve(
        &mut self,
        now: Timestamp,
        handle: &PoolHandle,
    ) -> Result<pu::Resolve, pu::ResolveError> {
        let r = self.pu.resolve(now, handle);
        self.pump(now);
        r
    }

    /// Basic Mode: the application could not use PE `id` of `handle` (RFC 5352 §3.5: an
    /// ENDPOINT_UNREACHABLE goes to the registrar; the PE leaves the cache).
    pub fn report_failure(&mut self, now: Timestamp, handle: &PoolHandle, id: PeIdentifier) {
        self.pu.report_failure(now, handle, id);
        self.pump(now);
    }

    /// Sends a user message on `session`; `Err(NotConnected)` while it has no PE.
    pub fn send(
        &mut self,
        _now: Timestamp,
        session: SessionId,
        ppid: u32,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        let s = self
            .sessions
            .get(&session)
            .ok_or(SendError::UnknownSession)?;
        let State::Up { assoc, .. } = s.state else {
            return Err(SendError::NotConnected);
        };
        self.out
            .check_send(bytes.len(), self.config.max_message_len)?;
        self.out.transmit(assoc, ppid, bytes.to_vec());
        self.stats.data_sent += 1;
        Ok(())
    }

    /// Fails `session` over to another PE now: the application judged its PE dead
    /// (keep-alive timeout, a reject) or runs [`FailoverMode::Application`]. A no-op while
    /// a failover is under way.
    pub fn failover(&mut self, now: Timestamp, session: SessionId) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        match s.state {
            State::Up { assoc, pe } => {
                self.roles.remove(&assoc);
                self.out.command(Command::Abort { assoc });
                self.out.event(Event::FailoverNecessary { session, pe });
                self.begin_failover(now, session, pe);
            }
            State::Down { pe } => self.begin_failover(now, session, pe),
            _ => {}
        }
        self.pump(now);
    }

    /// Forgets the last cookie of `session`: the application knows the state it carries is
    /// finished (e.g. a completed job), so the next failover echoes nothing.
    pub fn clear_cookie(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.cookie = None;
        }
    }

    /// Closes `session` ([`Event::Closed`] follows).
    pub fn close(&mut self, now: Timestamp, session: SessionId) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        if let State::Up { assoc, .. } = s.state {
            self.roles.remove(&assoc);
            self.out.command(Command::Close { assoc });
        }
        self.out.event(Event::Closed { session });
        self.pump(now);
    }

    /// Fires the timers due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.pu.handle_timeout(now);
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| match &s.state {
                State::Resolving { recheck } => *recheck <= now,
                State::Waiting { until } => *until <= now,
                State::Connecting { deadline, .. } => *deadline <= now,
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            match &s.state {
                State::Connecting { pe, .. } => {
                    // The PE did not answer in time: report it and try another.
                    let (handle, pe) = (s.pool_handle.clone(), pe.identifier);
                    s.avoid = Some(pe);
                    self.pu.report_failure(now, &handle, pe);
                    self.attempt_failed(now, id);
                }
                _ => {
                    s.state = State::Resolving { recheck: now };
                    self.try_resolve(now, id);
                }
            }
        }
        self.pump(now);
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
                self.pu.handle_connected(now, assoc, endpoint);
            }
            Target::Session(session) => self.on_session_up(now, session, assoc, endpoint),
        }
        self.pump(now);
    }

    /// The association requested for `target` could not be set up.
    pub fn handle_connect_failed(
        &mut self,
        now: Timestamp,
        target: Target,
        endpoint: &TransportParameter,
    ) {
        match target {
            Target::Registrar => self.pu.handle_connect_failed(now, endpoint),
            Target::Session(session) => {
                if let Some(s) = self.sessions.get_mut(&session)
                    && let State::Connecting { pe, .. } = &s.state
                    && pe.user_transport == *endpoint
                {
                    // RFC 5352 §3.5: the PE could not be reached; tell the registrar.
                    let (handle, pe) = (s.pool_handle.clone(), pe.identifier);
                    s.avoid = Some(pe);
                    self.pu.report_failure(now, &handle, pe);
                    self.attempt_failed(now, session);
                }
            }
        }
        self.pump(now);
    }

    /// Association `assoc` went down.
    pub fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        match self.roles.remove(&assoc) {
            Some(Role::Registrar) => self.pu.handle_association_lost(now, assoc),
            Some(Role::Session(session)) => {
                if let Some(s) = self.sessions.get_mut(&session)
                    && let State::Up { assoc: a, pe } = s.state
                    && a == assoc
                {
                    self.out.event(Event::FailoverNecessary { session, pe });
                    match self.config.failover {
                        FailoverMode::Application => s.state = State::Down { pe },
                        _ => self.begin_failover(now, session, pe),
                    }
                }
            }
            None => self.pu.handle_association_lost(now, assoc),
        }
        self.pump(now);
    }

    /// One SCTP user message received on `assoc`.
    pub fn handle_message(&mut self, now: Timestamp, assoc: AssocRef, ppid: u32, bytes: &[u8]) {
        if bytes.len() > self.config.max_message_len {
            self.stats.oversized += 1;
            return;
        }
        match self.roles.get(&assoc).copied() {
            Some(Role::Registrar) if ppid == PPID_ASAP => self.pu.handle_asap(now, assoc, bytes),
            Some(Role::Session(session)) if ppid == PPID_ASAP => {
                self.on_session_asap(session, bytes)
            }
            Some(Role::Session(session)) => {
                self.stats.data_received += 1;
                self.out.event(Event::Data {
                    session,
                    ppid,
                    bytes: bytes.to_vec(),
                });
            }
            _ => self.stats.unexpected += 1,
        }
        self.pump(now);
    }

    /// One SERVER_ANNOUNCE datagram from `source` (for the PU's registrar list).
    pub fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]) {
        self.pu.handle_server_announce(now, source, bytes);
        self.pump(now);
    }

    // ---- internals ----

    fn on_session_up(
        &mut self,
        now: Timestamp,
        session: SessionId,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    ) {
        let Some(s) = self.sessions.get_mut(&session) else {
            // Closed or given up meanwhile.
            self.out.command(Command::Abort { assoc });
            return;
        };
        let State::Connecting { pe, .. } = &s.state else {
            self.stats.unexpected += 1;
            self.out.command(Command::Abort { assoc });
            return;
        };
        if pe.user_transport != *endpoint {
            // A late answer to an attempt given up on (another PE is being tried now).
            self.stats.unexpected += 1;
            self.out.command(Command::Abort { assoc });
            return;
        }
        let pe = pe.identifier;
        s.state = State::Up { assoc, pe };
        s.attempts = 0;
        s.last_up = Some(now);
        self.roles.insert(assoc, Role::Session(session));
        if s.failing_over {
            // RFC 5352 §2.2.12, §3.8: the last cookie goes to the new PE before any data.
            if let Some(cookie) = s.cookie.clone()
                && let Some(bytes) = encode(&AsapMessage::CookieEcho { cookie })
            {
                self.out.transmit(assoc, PPID_ASAP, bytes);
                self.stats.cookie_echoes_sent += 1;
            }
            self.stats.failovers_completed += 1;
            self.out.event(Event::FailoverComplete { session, pe });
        } else {
            self.out.event(Event::Connected { session, pe });
        }
    }

    fn on_session_asap(&mut self, session: SessionId, bytes: &[u8]) {
        let Ok(d) = AsapMessage::decode(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        match d.message {
            AsapMessage::Cookie { cookie } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.cookie = Some(cookie);
                    self.stats.cookies_received += 1;
                    self.out.event(Event::CookieReceived { session });
                }
            }
            AsapMessage::BusinessCard {
                pool_handle,
                pool_elements,
                ..
            } => self.out.event(Event::BusinessCard {
                session,
                pool_handle,
                pool_elements: pool_elements.iter().map(|p| p.identifier).collect(),
            }),
            _ => self.stats.unexpected += 1,
        }
    }

    /// Starts the failover steps after `old` was lost.
    fn begin_failover(&mut self, now: Timestamp, session: SessionId, old: PeIdentifier) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        self.stats.failovers += 1;
        s.failing_over = true;
        s.avoid = Some(old);
        let handle = s.pool_handle.clone();
        let paced = s
            .last_up
            .map(|t| t.saturating_add(self.config.retry_interval))
            .filter(|t| *t > now);
        // RFC 5352 §3.5: report the unreachable PE to the registrar.
        self.pu.report_failure(now, &handle, old);
        match paced {
            // The PE failed right after the session came up: wait a little first.
            Some(until) => s.state = State::Waiting { until },
            None => {
                s.state = State::Resolving { recheck: now };
                self.try_resolve(now, session);
            }
        }
    }

    /// Asks the PU core for a PE; connects when it has one.
    fn try_resolve(&mut self, now: Timestamp, session: SessionId) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        if !matches!(s.state, State::Resolving { .. }) {
            return;
        }
        let (handle, avoid) = (s.pool_handle.clone(), s.avoid);
        let mut chosen = None;
        // Prefer a PE other than the one just lost: the policies rotate or draw at random,
        // so a few selections find another one when the cache has it.
        for _ in 0..4 {
            match self.pu.resolve(now, &handle) {
                Ok(Resolve::Selected(pe)) => {
                    let other = Some(pe.identifier) != avoid;
                    chosen = Some(pe);
                    if other {
                        break;
                    }
                }
                Ok(_) => break,
                Err(ResolveError::TooManyPending) => {
                    self.attempt_failed(now, session);
                    return;
                }
                Err(_) => {
                    self.give_up(session);
                    return;
                }
            }
        }
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        match chosen {
            Some(pe) => {
                let endpoint = pe.user_transport.clone();
                s.state = State::Connecting {
                    pe,
                    deadline: now.saturating_add(self.config.connect_timeout),
                };
                self.out.command(Command::Connect {
                    target: Target::Session(session),
                    endpoint,
                });
            }
            None => {
                // Pending: the answer comes as pu::Event::Resolved; look again in a while
                // in case it never does.
                s.state = State::Resolving {
                    recheck: now.saturating_add(retry_pause(&self.config)),
                };
            }
        }
    }

    fn attempt_failed(&mut self, now: Timestamp, session: SessionId) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        self.stats.failed_attempts += 1;
        s.attempts = s.attempts.saturating_add(1);
        if s.attempts >= self.config.max_failover_attempts {
            self.give_up(session);
        } else {
            s.state = State::Waiting {
                until: now.saturating_add(retry_pause(&self.config)),
            };
        }
    }

    fn give_up(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            if let State::Up { assoc, .. } = s.state {
                self.roles.remove(&assoc);
                self.out.command(Command::Abort { assoc });
            }
            self.stats.sessions_failed += 1;
            self.out.event(Event::Failed {
                session,
                reason: FailReason::AttemptsExhausted,
            });
        }
    }

    /// Moves the PU core's outputs into ours and reacts to its answers.
    fn pump(&mut self, now: Timestamp) {
        loop {
            while let Some(c) = self.pu.poll_command() {
                match c {
                    pu::Command::Connect { endpoint } => self.out.connect_registrar(endpoint),
                    pu::Command::Close { assoc } => {
                        self.out.close_registrar(&mut self.roles, assoc)
                    }
                }
            }
            while let Some(t) = self.pu.poll_transmit() {
                self.out.transmit(t.assoc, PPID_ASAP, t.bytes);
            }
            let Some(e) = self.pu.poll_event() else {
                break;
            };
            let (handle, resolved) = match e {
                pu::Event::Resolved { pool_handle, .. } => (pool_handle, true),
                pu::Event::ResolutionFailed { pool_handle, .. } => (pool_handle, false),
            };
            self.out.event(Event::Resolution {
                pool_handle: handle.clone(),
                resolved,
            });
            let waiting: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(_, s)| {
                    s.pool_handle == handle && matches!(s.state, State::Resolving { .. })
                })
                .map(|(id, _)| *id)
                .collect();
            for id in waiting {
                if resolved {
                    self.try_resolve(now, id);
                } else {
                    self.attempt_failed(now, id);
                }
            }
        }
        self.stats.overflow = self.out.overflow;
    }
}

/// The pause after a failed attempt or before asking a pending resolution again; at least
/// a millisecond, so a zero `retry_interval` cannot make a timer that is always due.
fn retry_pause(config: &ClientConfig) -> Duration {
    config.retry_interval.max(Duration::from_millis(1))
}
