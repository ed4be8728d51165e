//! The sans-IO pool element (PE) core: ASAP registration with a home registrar (RFC 5352
//! §3.1), re-registration, keep-alive answers and re-homing (§3.4), deregistration (§3.2)
//! and the registrar hunt with failover (§3.6, §3.7).
//!
//! Like the [`registrar`](crate::registrar), a [`PoolElement`] never touches a socket, a
//! thread or a clock: the driver owns the SCTP associations and the time.
//!
//! # Call contract
//!
//! 1. [`PoolElement::new`] with a [`PoolElementConfig`], a seeded RNG (PE identifier and
//!    registrar choice) and the current time. The PE starts hunting for a home registrar
//!    at once (from the static list; registrars heard in announces join the list).
//! 2. Inputs, each with the current [`Timestamp`] (never decreasing):
//!    - [`PoolElement::handle_asap`]: one ASAP message (PPID 11) received on association
//!      `assoc`. Messages may also arrive on associations the PE did not ask for: after a
//!      takeover the new home registrar connects to the PE's ASAP endpoint and sends an
//!      ENDPOINT_KEEP_ALIVE with flag H there.
//!    - [`PoolElement::handle_server_announce`]: one SERVER_ANNOUNCE datagram from the
//!      announce multicast group, with its UDP source.
//!    - [`PoolElement::handle_connected`] / [`PoolElement::handle_connect_failed`]: the
//!      outcome of a [`Command::Connect`].
//!    - [`PoolElement::handle_association_lost`]: an association went down.
//!    - [`PoolElement::handle_timeout`]: the time from [`PoolElement::poll_timeout`] has
//!      come. Spurious calls are no-ops.
//!    - Application commands: [`PoolElement::set_load`], [`PoolElement::set_policy`],
//!      [`PoolElement::deregister`].
//! 3. After every input drain, in this order, [`PoolElement::poll_command`] (connect to a
//!    registrar, close an association), [`PoolElement::poll_transmit`] (ASAP messages on an
//!    association, all with PPID 11) and [`PoolElement::poll_event`], then re-arm the
//!    timer with [`PoolElement::poll_timeout`].
//!
//! ```
//! use core::time::Duration;
//! use std::net::{IpAddr, Ipv4Addr};
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use rserpool::Timestamp;
//! use rserpool::pe::{AssocRef, Command, Event, PoolElement, PoolElementConfig};
//! use rserpool::registrar::{AsapOrigin, Destination, Registrar, RegistrarConfig};
//! use rserpool::wire::*;
//!
//! let now = Timestamp::from_secs(1);
//! let pr_config = RegistrarConfig {
//!     server_id: RegistrarId(1),
//!     mentor_hunt_timeout: Duration::ZERO,
//!     ..RegistrarConfig::default()
//! };
//! let mut pr = Registrar::new(pr_config, Box::new(ChaCha8Rng::seed_from_u64(1)), now);
//! pr.handle_timeout(now);
//! let pr_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
//! let pr_endpoint = TransportParameter::sctp(PORT_ASAP, TransportUse::DATA_ONLY, vec![pr_addr]);
//!
//! let pe_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9));
//! let mut config = PoolElementConfig::new(
//!     PoolHandle::from("EchoPool"),
//!     PolicyInfo::round_robin(),
//!     TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![pe_addr]),
//! );
//! config.static_registrars = vec![pr_endpoint.clone()];
//! let mut pe = PoolElement::new(config, Box::new(ChaCha8Rng::seed_from_u64(2)), now);
//!
//! // The PE asks for an association to a registrar; the driver sets it up.
//! let Some(Command::Connect { endpoint }) = pe.poll_command() else { panic!() };
//! assert_eq!(endpoint, pr_endpoint);
//! let assoc = AssocRef(1);
//! pe.handle_connected(now, assoc, &endpoint);
//!
//! // REGISTRATION to the registrar, its response back to the PE.
//! let registration = pe.poll_transmit().expect("REGISTRATION");
//! let from = AsapOrigin { assoc, port: 5000, addresses: &[pe_addr] };
//! pr.handle_asap(now, from, &registration.bytes);
//! while let Some(t) = pr.poll_transmit() {
//!     if t.to == Destination::Association(assoc) {
//!         pe.handle_asap(now, assoc, &t.bytes);
//!     }
//! }
//! assert_eq!(pe.poll_event(), Some(Event::Registered { registrar: None, update: false }));
//! assert!(pr.handlespace().pool_element(b"EchoPool", pe.identifier()).is_some());
//! // The next timer is the re-registration.
//! assert_eq!(pe.poll_timeout(), Some(now + Duration::from_secs(30)));
//! ```
//!
//! # Behaviour
//!
//! - Registrar choice: random among the known registrars that have not failed; a
//!   registrar fails when its association cannot be set up, goes down, or a response does
//!   not come within [`PoolElementConfig::response_timeout`]. When all have failed, the
//!   marks are cleared and the hunt restarts after [`PoolElementConfig::hunt_retry_interval`].
//! - A lost home association means the registrar has dropped the registration (RSPLIB
//!   registrars remove PEs with their association), so the PE registers at once with
//!   the next registrar.
//! - Re-registration every [`PoolElementConfig::reregistration_interval`], within the
//!   registration life; a load or policy change re-registers at once (RFC 5352 §3.1: a PE
//!   re-registers to update its policy value; the adaptive policies of RFC 5356 §5 select
//!   by the load it registered).
//! - A rejected registration is reported ([`Event::RegistrationFailed`] with the cause)
//!   and retried after the re-registration interval.
//! - Queues are bounded; overflow is dropped and counted in [`Stats`]. Malformed input is
//!   counted and dropped (a PE does not answer garbage from a registrar).
//!
//! # Known gaps
//!
//! - No Operation Error is sent back for unrecognized messages or parameters.
//! - The ASAP transport of the PE itself (where a new home registrar reaches it) is the
//!   driver's listening endpoint; it is not part of this core.
//! - Sessions, cookies and business cards (Enhanced Mode) are out of scope here.

mod config;
pub(crate) mod server_table;

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand_core::RngCore;

pub use crate::registrar::AssocRef;
pub use config::PoolElementConfig;

use crate::Timestamp;
use crate::wire::{
    AsapMessage, CauseCode, PeIdentifier, PolicyInfo, PoolElement as PoolElementParameter,
    RegistrarId, TransportParameter,
};
use server_table::{ServerTable, same_endpoint};

/// An ASAP message to send on an association (SCTP PPID [`crate::wire::PPID_ASAP`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The association.
    pub assoc: AssocRef,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

/// Something the driver must do with associations.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Set up an SCTP association to a registrar's ASAP endpoint; report the outcome with
    /// `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The registrar's ASAP endpoint.
        endpoint: TransportParameter,
    },
    /// Shut the association down (no report needed).
    Close {
        /// The association.
        assoc: AssocRef,
    },
}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A REGISTRATION was accepted (`update`: a re-registration).
    Registered {
        /// The home registrar, if its identifier is known yet.
        registrar: Option<RegistrarId>,
        /// Whether the PE was registered before.
        update: bool,
    },
    /// A REGISTRATION was rejected (`cause` from the Operation Error) or not answered
    /// (`cause: None`).
    RegistrationFailed {
        /// The Operation Error cause.
        cause: Option<CauseCode>,
    },
    /// The home registrar changed (failover to another registrar, or a takeover announced
    /// by an ENDPOINT_KEEP_ALIVE with flag H).
    HomeChanged {
        /// The new home, if its identifier is known.
        registrar: Option<RegistrarId>,
    },
    /// The PE left the pool (after [`PoolElement::deregister`]).
    Deregistered {
        /// Whether the registrar confirmed without error.
        confirmed: bool,
        /// The Operation Error cause of a failed deregistration.
        cause: Option<CauseCode>,
    },
}

/// Counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// ASAP messages received.
    pub received: u64,
    /// Messages that failed to decode or were too long.
    pub malformed: u64,
    /// Well-formed messages the PE does not expect (wrong pool, PE, state).
    pub unexpected: u64,
    /// REGISTRATIONs sent.
    pub registrations_sent: u64,
    /// ENDPOINT_KEEP_ALIVE_ACKs sent.
    pub keep_alive_acks: u64,
    /// Registrars given up on.
    pub registrar_failures: u64,
    /// Outputs dropped because a queue was full.
    pub overflow: u64,
}

/// The association to the (prospective) home registrar.
#[derive(Debug, Clone)]
enum Link {
    /// None; the hunt timer decides when to look.
    Idle,
    /// A [`Command::Connect`] is outstanding.
    Connecting { endpoint: TransportParameter },
    /// Up.
    Up {
        assoc: AssocRef,
        endpoint: Option<TransportParameter>,
        id: Option<RegistrarId>,
    },
}

/// The request waiting for its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Registration,
    Deregistration,
}

/// The PE's timers (one deadline each; `poll_timeout` is their minimum).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    hunt: Option<Timestamp>,
    connect: Option<Timestamp>,
    response: Option<Timestamp>,
    reregister: Option<Timestamp>,
}

/// The pool element core (see the module docs for the call contract).
pub struct PoolElement {
    config: PoolElementConfig,
    identifier: PeIdentifier,
    rng: Box<dyn RngCore + Send>,
    table: ServerTable,
    link: Link,
    awaiting: Option<Awaiting>,
    /// Accepted by the current home (cleared when the home association is lost).
    registered: bool,
    /// The association of the last accepted registration (to detect home changes).
    confirmed_home: Option<AssocRef>,
    /// Deregistered (or deregistering): nothing more is sent after the response.
    closing: bool,
    closed: bool,
    timers: Timers,
    transmits: VecDeque<Transmit>,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl core::fmt::Debug for PoolElement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolElement")
            .field("pool_handle", &self.config.pool_handle)
            .field("identifier", &self.identifier)
            .field("link", &self.link)
            .field("registered", &self.registered)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PoolElement {
    /// A PE starting at `now` (see the module docs).
    pub fn new(
        config: PoolElementConfig,
        mut rng: Box<dyn RngCore + Send>,
        now: Timestamp,
    ) -> Self {
        // RFC 5352 §3.1: the PE chooses its own identifier; like RSPLIB, at random and
        // never 0.
        let mut identifier = config.identifier;
        while identifier.0 == 0 {
            identifier = PeIdentifier(rng.next_u32());
        }
        let table = ServerTable::new(
            &config.static_registrars,
            config.max_registrars,
            config.announce_timeout,
        );
        let mut pe = PoolElement {
            config,
            identifier,
            rng,
            table,
            link: Link::Idle,
            awaiting: None,
            registered: false,
            confirmed_home: None,
            closing: false,
            closed: false,
            timers: Timers::default(),
            transmits: VecDeque::new(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        // RFC 5352 §3.6: look for a home registrar right away.
        pe.hunt(now);
        pe
    }

    /// The PE identifier.
    pub fn identifier(&self) -> PeIdentifier {
        self.identifier
    }

    /// The configuration.
    pub fn config(&self) -> &PoolElementConfig {
        &self.config
    }

    /// Whether the current home registrar has accepted the registration.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The association to the home registrar, if up.
    pub fn home_association(&self) -> Option<AssocRef> {
        match self.link {
            Link::Up { assoc, .. } => Some(assoc),
            _ => None,
        }
    }

    /// The home registrar's identifier, if known.
    pub fn home_registrar(&self) -> Option<RegistrarId> {
        match &self.link {
            Link::Up { id, .. } => *id,
            _ => None,
        }
    }

    /// Number of registrars known (static and announced).
    pub fn known_registrars(&self) -> usize {
        self.table.len()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The next transmit, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next association command, if any.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`PoolElement::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let t = self.timers;
        [
            t.hunt,
            t.connect,
            t.response,
            t.reregister,
            self.table.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires every timer due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.table.expire(now);
        if due(&mut self.timers.connect, now) {
            // The association to the chosen registrar did not come up.
            self.fail_registrar(now);
        }
        if due(&mut self.timers.response, now) {
            // RFC 5352 §3.1 (T2-registration timer; §3.2: T3-deregistration timer): no
            // response in time; the registrar is considered failed and another one is tried.
            match self.awaiting.take() {
                Some(Awaiting::Deregistration) => self.finish(false, None),
                Some(Awaiting::Registration) => {
                    self.event(Event::RegistrationFailed { cause: None });
                    self.fail_registrar(now);
                }
                None => {}
            }
        }
        if due(&mut self.timers.reregister, now) {
            // RFC 5352 §3.1: re-register before the registration life ends.
            self.send_registration(now);
        }
        if due(&mut self.timers.hunt, now) {
            self.hunt(now);
        }
    }

    /// One SERVER_ANNOUNCE datagram received from `source` (RFC 5352 §3.6).
    pub fn handle_server_announce(&mut self, now: Timestamp, source: SocketAddr, bytes: &[u8]) {
        if !self.config.use_announces || bytes.len() > self.config.max_message_len {
            return;
        }
        let Ok(d) = AsapMessage::decode(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        let AsapMessage::ServerAnnounce {
            server_id,
            transports,
        } = d.message
        else {
            self.stats.unexpected += 1;
            return;
        };
        if server_id == RegistrarId::UNDEFINED {
            self.stats.unexpected += 1;
            return;
        }
        let new = self
            .table
            .handle_announce(now, server_id, &transports, source);
        // A hunt waiting for any registrar to appear can go on now.
        if new && matches!(self.link, Link::Idle) && self.timers.hunt.is_some() && !self.closed {
            self.timers.hunt = Some(now);
        }
    }

    /// The association to `endpoint` requested by [`Command::Connect`] is up as `assoc`.
    pub fn handle_connected(
        &mut self,
        now: Timestamp,
        assoc: AssocRef,
        endpoint: &TransportParameter,
    ) {
        match &self.link {
            Link::Connecting { endpoint: e } if same_endpoint(e, endpoint) && !self.closed => {
                let endpoint = e.clone();
                self.timers.connect = None;
                self.table.mark_ok(&endpoint);
                self.link = Link::Up {
                    assoc,
                    id: self.table.id_of(&endpoint),
                    endpoint: Some(endpoint),
                };
                self.send_registration(now);
            }
            _ => self.command(Command::Close { assoc }),
        }
    }

    /// The association to `endpoint` could not be set up.
    pub fn handle_connect_failed(&mut self, now: Timestamp, endpoint: &TransportParameter) {
        if let Link::Connecting { endpoint: e } = &self.link
            && same_endpoint(e, endpoint)
        {
            self.timers.connect = None;
            self.fail_registrar(now);
        }
    }

    /// Association `assoc` went down.
    pub fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        if self.home_association() == Some(assoc) {
            // RFC 5352 §3.7.1: the home registrar is unreachable; the registrar also drops
            // PEs with their association, so register with another one at once.
            self.registered = false;
            self.fail_registrar(now);
        }
    }

    /// One ASAP message received on `assoc`.
    pub fn handle_asap(&mut self, now: Timestamp, assoc: AssocRef, bytes: &[u8]) {
        self.stats.received += 1;
        if bytes.len() > self.config.max_message_len {
            self.stats.malformed += 1;
            return;
        }
        let msg = match AsapMessage::decode(bytes) {
            Ok(d) => d.message,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match msg {
            AsapMessage::RegistrationResponse {
                reject,
                pool_handle,
                identifier,
                error,
            } if pool_handle == self.config.pool_handle && identifier == self.identifier => {
                self.on_registration_response(
                    now,
                    assoc,
                    reject,
                    error.and_then(|e| e.first_code()),
                );
            }
            AsapMessage::DeregistrationResponse {
                pool_handle,
                identifier,
                error,
            } if pool_handle == self.config.pool_handle
                && identifier == self.identifier
                && self.awaiting == Some(Awaiting::Deregistration)
                && self.home_association() == Some(assoc) =>
            {
                let cause = error.and_then(|e| e.first_code());
                self.awaiting = None;
                self.timers.response = None;
                self.finish(cause.is_none(), cause);
            }
            AsapMessage::EndpointKeepAlive {
                home,
                server_id,
                pool_handle,
                identifier,
            } if pool_handle == self.config.pool_handle
                && identifier.is_none_or(|i| i == self.identifier)
                && !self.closed =>
            {
                self.on_keep_alive(now, assoc, home, server_id);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    /// Sets the load (RFC 5356 §3.1, for the adaptive policies of §5) and re-registers at
    /// once so the registrar selects with the new value.
    pub fn set_load(&mut self, now: Timestamp, load: u32) {
        if self.config.policy.load == load {
            return;
        }
        self.config.policy.load = load;
        self.reregister_now(now);
    }

    /// Replaces the policy information (e.g. a new weight or priority) and re-registers.
    /// A different policy type than the pool's is rejected by the registrar.
    pub fn set_policy(&mut self, now: Timestamp, policy: PolicyInfo) {
        if self.config.policy == policy {
            return;
        }
        self.config.policy = policy;
        self.reregister_now(now);
    }

    /// Leaves the pool: DEREGISTRATION to the home registrar (RFC 5352 §3.2), then
    /// [`Event::Deregistered`] and no more traffic.
    pub fn deregister(&mut self, now: Timestamp) {
        if self.closing || self.closed {
            return;
        }
        self.closing = true;
        self.timers.reregister = None;
        self.timers.hunt = None;
        self.timers.connect = None;
        match self.link {
            Link::Up { assoc, .. } => {
                let msg = AsapMessage::Deregistration {
                    pool_handle: self.config.pool_handle.clone(),
                    identifier: self.identifier,
                };
                self.send(assoc, &msg);
                self.awaiting = Some(Awaiting::Deregistration);
                self.timers.response = Some(now.saturating_add(self.config.response_timeout));
            }
            _ => self.finish(false, None),
        }
    }

    // ---- internals ----

    fn reregister_now(&mut self, now: Timestamp) {
        if self.closing || self.closed {
            return;
        }
        if matches!(self.link, Link::Up { .. }) {
            self.send_registration(now);
        }
        // Otherwise the registration after the hunt carries the new values.
    }

    fn on_registration_response(
        &mut self,
        now: Timestamp,
        assoc: AssocRef,
        reject: bool,
        cause: Option<CauseCode>,
    ) {
        if self.awaiting != Some(Awaiting::Registration) || self.home_association() != Some(assoc) {
            self.stats.unexpected += 1;
            return;
        }
        self.awaiting = None;
        self.timers.response = None;
        // Re-register within the registration life either way (a rejection is retried).
        self.timers.reregister = Some(now.saturating_add(self.config.reregistration_interval));
        if reject || cause.is_some() {
            // RFC 5352 §3.1: flag R / an Operation Error means the registration failed.
            self.registered = false;
            self.event(Event::RegistrationFailed { cause });
            return;
        }
        let update = self.registered;
        self.registered = true;
        let registrar = self.home_registrar();
        if self.confirmed_home.is_some_and(|a| a != assoc) {
            self.event(Event::HomeChanged { registrar });
        }
        self.confirmed_home = Some(assoc);
        self.event(Event::Registered { registrar, update });
    }

    fn on_keep_alive(
        &mut self,
        now: Timestamp,
        assoc: AssocRef,
        home: bool,
        server_id: RegistrarId,
    ) {
        // RFC 5352 §3.4: a PE MUST answer ENDPOINT_KEEP_ALIVE with ENDPOINT_KEEP_ALIVE_ACK.
        let ack = AsapMessage::EndpointKeepAliveAck {
            pool_handle: self.config.pool_handle.clone(),
            identifier: self.identifier,
        };
        self.send(assoc, &ack);
        self.stats.keep_alive_acks += 1;
        let current = self.home_association();
        if home && current != Some(assoc) && !self.closing {
            // RFC 5352 §3.4: with flag H the PE MUST adopt the sender as its new home
            // registrar (a takeover, RFC 5353 §3.5).
            if let Some(old) = current {
                self.command(Command::Close { assoc: old });
            }
            let endpoint = self.table.endpoint_of(server_id).cloned();
            self.link = Link::Up {
                assoc,
                endpoint,
                id: Some(server_id),
            };
            self.timers.connect = None;
            self.timers.hunt = None;
            self.registered = true;
            self.confirmed_home = Some(assoc);
            self.event(Event::HomeChanged {
                registrar: Some(server_id),
            });
            if self.awaiting == Some(Awaiting::Registration) {
                // The request went to the old home; repeat it to the new one.
                self.send_registration(now);
            } else if self.timers.reregister.is_none() {
                self.timers.reregister =
                    Some(now.saturating_add(self.config.reregistration_interval));
            }
        } else if current == Some(assoc)
            && let Link::Up { id, endpoint, .. } = &mut self.link
        {
            *id = Some(server_id);
            if let Some(e) = endpoint {
                self.table.learn_id(e, server_id);
            }
        }
    }

    /// Sends REGISTRATION to the home registrar, or starts the hunt for one.
    fn send_registration(&mut self, now: Timestamp) {
        if self.closing || self.closed {
            return;
        }
        let Link::Up { assoc, .. } = self.link else {
            if matches!(self.link, Link::Idle) && self.timers.hunt.is_none() {
                self.timers.hunt = Some(now);
            }
            return;
        };
        let life = self.config.effective_registration_life();
        // RFC 5352 §2.2.1/§3.1: pool handle and the Pool Element parameter with the
        // identifier, registration life, user transport and policy; the home registrar
        // identifier is filled in by the registrar.
        let msg = AsapMessage::Registration {
            pool_handle: self.config.pool_handle.clone(),
            pool_element: PoolElementParameter {
                identifier: self.identifier,
                home_registrar: RegistrarId::UNDEFINED,
                registration_life: u32::try_from(life.as_millis()).unwrap_or(u32::MAX),
                user_transport: self.config.user_transport.clone(),
                policy: self.config.policy.clone(),
                asap_transport: None,
            },
        };
        self.send(assoc, &msg);
        self.stats.registrations_sent += 1;
        self.awaiting = Some(Awaiting::Registration);
        self.timers.response = Some(now.saturating_add(self.config.response_timeout));
    }

    /// Connects to a registrar chosen from the table (RFC 5352 §3.6).
    fn hunt(&mut self, now: Timestamp) {
        if self.closing || self.closed || !matches!(self.link, Link::Idle) {
            return;
        }
        match self.table.choose(self.rng.as_mut()) {
            Some(endpoint) => {
                self.link = Link::Connecting {
                    endpoint: endpoint.clone(),
                };
                self.timers.connect = Some(now.saturating_add(self.config.connect_timeout));
                self.command(Command::Connect { endpoint });
            }
            None => {
                self.timers.hunt = Some(now.saturating_add(self.config.hunt_retry_interval));
            }
        }
    }

    /// Gives up on the current (or prospective) registrar and hunts for another.
    fn fail_registrar(&mut self, now: Timestamp) {
        self.stats.registrar_failures += 1;
        let link = std::mem::replace(&mut self.link, Link::Idle);
        let endpoint = match link {
            Link::Idle => None,
            Link::Connecting { endpoint } => Some(endpoint),
            Link::Up {
                assoc, endpoint, ..
            } => {
                self.command(Command::Close { assoc });
                endpoint
            }
        };
        if let Some(e) = &endpoint {
            self.table.mark_failed(e);
        }
        self.timers.connect = None;
        self.timers.response = None;
        if self.awaiting.take() == Some(Awaiting::Deregistration) || self.closing {
            self.finish(false, None);
            return;
        }
        // Another registrar at once, unless every one has failed (then wait a little).
        if self.table.all_failed() {
            self.timers.hunt = Some(now.saturating_add(self.config.hunt_retry_interval));
        } else {
            self.hunt(now);
        }
    }

    /// Deregistration is over (confirmed or not): close and stop.
    fn finish(&mut self, confirmed: bool, cause: Option<CauseCode>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.registered = false;
        if let Link::Up { assoc, .. } = std::mem::replace(&mut self.link, Link::Idle) {
            self.command(Command::Close { assoc });
        }
        self.timers = Timers::default();
        self.awaiting = None;
        self.event(Event::Deregistered { confirmed, cause });
    }

    fn send(&mut self, assoc: AssocRef, msg: &AsapMessage) {
        if self.transmits.len() >= self.config.max_queue {
            self.stats.overflow += 1;
            return;
        }
        if let Some(bytes) = encode(msg) {
            self.transmits.push_back(Transmit { assoc, bytes });
        } else {
            self.stats.overflow += 1;
        }
    }

    fn command(&mut self, c: Command) {
        if self.commands.len() >= self.config.max_queue {
            self.stats.overflow += 1;
            return;
        }
        self.commands.push_back(c);
    }

    fn event(&mut self, e: Event) {
        if self.events.len() >= self.config.max_queue {
            self.stats.overflow += 1;
            return;
        }
        self.events.push_back(e);
    }
}

/// Takes a timer that is due at `now`.
pub(crate) fn due(t: &mut Option<Timestamp>, now: Timestamp) -> bool {
    if t.is_some_and(|at| at <= now) {
        *t = None;
        true
    } else {
        false
    }
}

/// Encodes an ASAP message into a fresh buffer (`None` if it does not fit the format).
pub(crate) fn encode(msg: &AsapMessage) -> Option<Vec<u8>> {
    let mut buf = vec![0; msg.encoded_len()];
    let n = msg.encode(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}
