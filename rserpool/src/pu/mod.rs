//! The sans-IO pool user (PU) core: handle resolution with a registrar (RFC 5352 §3.3),
//! a cache of resolved PEs with a stale time, selection by the pool's policy, and
//! ENDPOINT_UNREACHABLE reports (§3.5), with the registrar hunt and failover of §3.6/§3.7.
//!
//! # Call contract
//!
//! 1. [`PoolUser::new`] with a [`PoolUserConfig`], a seeded RNG (registrar choice and the
//!    random policies) and the current time.
//! 2. Inputs, each with the current [`Timestamp`] (never decreasing):
//!    - [`PoolUser::resolve`] (application): a PE of the pool, selected from the cache,
//!      or [`Resolve::Pending`] while a HANDLE_RESOLUTION is under way; the answer comes as
//!      [`Event::Resolved`] (then call `resolve` again) or [`Event::ResolutionFailed`].
//!    - [`PoolUser::report_failure`] (application): a PE did not work; it leaves the
//!      cache and the registrar is told.
//!    - [`PoolUser::handle_asap`]: one ASAP message (PPID 11) from a registrar;
//!      [`PoolUser::handle_server_announce`]: one SERVER_ANNOUNCE datagram.
//!    - [`PoolUser::handle_connected`] / [`PoolUser::handle_connect_failed`]: the outcome
//!      of a [`Command::Connect`]; [`PoolUser::handle_association_lost`].
//!    - [`PoolUser::handle_timeout`] at [`PoolUser::poll_timeout`] (spurious calls are
//!      no-ops).
//! 3. After every input drain [`PoolUser::poll_command`], [`PoolUser::poll_transmit`] and
//!    [`PoolUser::poll_event`], then re-arm the timer with [`PoolUser::poll_timeout`].
//!
//! ```
//! use core::time::Duration;
//! use std::net::{IpAddr, Ipv4Addr};
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use rserpool::Timestamp;
//! use rserpool::pu::{AssocRef, Command, Event, PoolUser, PoolUserConfig, Resolve};
//! use rserpool::registrar::{AsapOrigin, Registrar, RegistrarConfig};
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
//! // A PE registers (see the `pe` module for the PE core).
//! let pe_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9));
//! let registration = AsapMessage::Registration {
//!     pool_handle: PoolHandle::from("EchoPool"),
//!     pool_element: PoolElement {
//!         identifier: PeIdentifier(0x42),
//!         home_registrar: RegistrarId::UNDEFINED,
//!         registration_life: 90_000,
//!         user_transport: TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![pe_addr]),
//!         policy: PolicyInfo::round_robin(),
//!         asap_transport: None,
//!     },
//! };
//! let mut bytes = vec![0; registration.encoded_len()];
//! registration.encode(&mut bytes).expect("fits");
//! pr.handle_asap(now, AsapOrigin { assoc: AssocRef(7), port: 5000, addresses: &[pe_addr] }, &bytes);
//! while pr.poll_transmit().is_some() {}
//!
//! let pr_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
//! let config = PoolUserConfig {
//!     static_registrars: vec![TransportParameter::sctp(PORT_ASAP, TransportUse::DATA_ONLY, vec![pr_addr])],
//!     ..PoolUserConfig::default()
//! };
//! let mut pu = PoolUser::new(config, Box::new(ChaCha8Rng::seed_from_u64(2)), now);
//! let pool = PoolHandle::from("EchoPool");
//! assert_eq!(pu.resolve(now, &pool), Ok(Resolve::Pending));
//! let Some(Command::Connect { endpoint }) = pu.poll_command() else { panic!() };
//! pu.handle_connected(now, AssocRef(8), &endpoint);
//! let request = pu.poll_transmit().expect("HANDLE_RESOLUTION");
//! let pu_addr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 20));
//! pr.handle_asap(now, AsapOrigin { assoc: AssocRef(8), port: 40000, addresses: &[pu_addr] }, &request.bytes);
//! let response = pr.poll_transmit().expect("HANDLE_RESOLUTION_RESPONSE");
//! pu.handle_asap(now, AssocRef(8), &response.bytes);
//! assert_eq!(pu.poll_event(), Some(Event::Resolved { pool_handle: pool.clone(), pool_elements: 1 }));
//! // Selected from the cache until the stale time (250 ms) has passed.
//! let Ok(Resolve::Selected(pe)) = pu.resolve(now, &pool) else { panic!() };
//! assert_eq!(pe.identifier, PeIdentifier(0x42));
//! ```
//!
//! # Behaviour
//!
//! - The PU connects to a registrar only when it has something to send, and keeps the
//!   association afterwards. The registrar is chosen at random among the known ones that
//!   have not failed (static list and SERVER_ANNOUNCEs, RFC 5352 §3.6).
//! - A request not answered within [`PoolUserConfig::request_timeout`] makes the registrar
//!   count as failed: its association is closed and every outstanding request goes to
//!   another registrar (RFC 5352 §3.7.2); a lost association does the same at once
//!   (§3.7.1). After [`PoolUserConfig::max_request_attempts`] timeouts the resolution
//!   fails with [`Event::ResolutionFailed`] (`cause: None`).
//! - Answers are cached ([`PuCache`]) for [`PoolUserConfig::stale_time`]; while fresh, the
//!   PU selects locally with the pool's policy (the policy type the registrar returned;
//!   PEs whose policy type differs from it are ignored). Later answers merge into the
//!   cache.
//! - Every table and queue is bounded (pending resolutions, queued reports, cache size,
//!   registrars, outputs); overflow is refused or dropped and counted in [`Stats`].
//!
//! # Known gaps
//!
//! - No Operation Error is sent back for unrecognized messages or parameters.
//! - Sessions and failover with cookies (Enhanced Mode) build on this core and are not
//!   part of it.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use rand_core::RngCore;

pub use crate::pe::{AssocRef, Command, Transmit};

use crate::Timestamp;
use crate::handlespace::{HandlespaceConfig, PuCache};
use crate::pe::server_table::{ServerTable, same_endpoint};
use crate::pe::{due, encode};
use crate::wire::{
    AsapMessage, CauseCode, PeIdentifier, PoolElement, PoolHandle, TransportParameter,
};

/// Everything a [`PoolUser`] can be told. `Default` gives the values documented on the
/// fields.
#[derive(Debug, Clone)]
pub struct PoolUserConfig {
    /// Statically configured registrars (ASAP endpoints). Default: none.
    pub static_registrars: Vec<TransportParameter>,
    /// Whether SERVER_ANNOUNCEs add registrars (RFC 5352 §3.6). Default: true.
    pub use_announces: bool,
    /// An announced registrar not heard for this long is forgotten (RSPLIB: 30 s).
    pub announce_timeout: Duration,
    /// How long a resolution stays usable in the cache (RSPLIB:
    /// [`PuCache::DEFAULT_STALE_TIME`], 250 ms).
    pub stale_time: Duration,
    /// How long to wait for a HANDLE_RESOLUTION_RESPONSE (default 5 s).
    pub request_timeout: Duration,
    /// Timeouts after which a resolution fails (default 3: the first request and two
    /// retransmissions to other registrars).
    pub max_request_attempts: u32,
    /// How long the association to a registrar may take to come up (default 5 s).
    pub connect_timeout: Duration,
    /// Delay before the next hunt when no registrar is known or all failed (default 1 s).
    pub hunt_retry_interval: Duration,
    /// The number of PEs asked for (RSPLIB's handle resolution option); `None` leaves it
    /// to the registrar's MaxHResItems. Default: `None`.
    pub handle_resolution_items: Option<u32>,
    /// Cache limits (default: 256 pools, 4096 PEs, 1024 per pool).
    pub cache: HandlespaceConfig,
    /// Most resolutions under way at once (default 64).
    pub max_pending_resolutions: usize,
    /// Most ENDPOINT_UNREACHABLE reports waiting for a registrar (default 64).
    pub max_pending_reports: usize,
    /// Most registrars remembered (default 64).
    pub max_registrars: usize,
    /// Longest message accepted (default 65 535).
    pub max_message_len: usize,
    /// Most queued transmits, commands and events each (default 256).
    pub max_queue: usize,
}

impl Default for PoolUserConfig {
    fn default() -> Self {
        PoolUserConfig {
            static_registrars: Vec::new(),
            use_announces: true,
            announce_timeout: Duration::from_secs(30),
            stale_time: PuCache::DEFAULT_STALE_TIME,
            request_timeout: Duration::from_secs(5),
            max_request_attempts: 3,
            connect_timeout: Duration::from_secs(5),
            hunt_retry_interval: Duration::from_secs(1),
            handle_resolution_items: None,
            cache: HandlespaceConfig {
                max_pools: 256,
                max_pes: 4096,
                max_pes_per_pool: 1024,
                ..HandlespaceConfig::default()
            },
            max_pending_resolutions: 64,
            max_pending_reports: 64,
            max_registrars: 64,
            max_message_len: 65_535,
            max_queue: 256,
        }
    }
}

/// The answer of [`PoolUser::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolve {
    /// A PE selected from fresh cache entries by the pool's policy.
    Selected(PoolElement),
    /// A HANDLE_RESOLUTION is under way; wait for [`Event::Resolved`] or
    /// [`Event::ResolutionFailed`].
    Pending,
}

/// Why [`PoolUser::resolve`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// [`PoolUserConfig::max_pending_resolutions`] resolutions are under way.
    TooManyPending,
    /// The pool handle is empty or longer than the cache accepts.
    InvalidPoolHandle,
}

impl core::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResolveError::TooManyPending => write!(f, "too many resolutions under way"),
            ResolveError::InvalidPoolHandle => write!(f, "invalid pool handle"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A HANDLE_RESOLUTION_RESPONSE filled the cache; [`PoolUser::resolve`] now selects.
    Resolved {
        /// The pool.
        pool_handle: PoolHandle,
        /// PEs in the answer.
        pool_elements: usize,
    },
    /// The resolution failed: the registrar's Operation Error cause (e.g. unknown pool
    /// handle), or `None` when no registrar answered in time.
    ResolutionFailed {
        /// The pool.
        pool_handle: PoolHandle,
        /// The cause.
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
    /// Well-formed messages the PU does not expect.
    pub unexpected: u64,
    /// HANDLE_RESOLUTIONs sent.
    pub resolutions_sent: u64,
    /// Resolutions answered from the cache.
    pub cache_hits: u64,
    /// ENDPOINT_UNREACHABLEs sent.
    pub unreachable_sent: u64,
    /// Registrars given up on.
    pub registrar_failures: u64,
    /// Requests, reports or outputs refused or dropped because a bound was reached.
    pub overflow: u64,
}

#[derive(Debug, Clone)]
enum Link {
    Idle,
    Connecting {
        endpoint: TransportParameter,
    },
    Up {
        assoc: AssocRef,
        endpoint: TransportParameter,
    },
}

/// A resolution under way.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Timeouts so far.
    attempts: u32,
    /// When this attempt times out.
    deadline: Timestamp,
    /// The association the request went out on (`None`: waiting for a registrar).
    sent_on: Option<AssocRef>,
}

/// The pool user core (see the module docs for the call contract).
pub struct PoolUser {
    config: PoolUserConfig,
    rng: Box<dyn RngCore + Send>,
    table: ServerTable,
    link: Link,
    cache: PuCache,
    pending: BTreeMap<PoolHandle, Pending>,
    reports: VecDeque<(PoolHandle, PeIdentifier)>,
    hunt_at: Option<Timestamp>,
    connect_deadline: Option<Timestamp>,
    transmits: VecDeque<Transmit>,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl core::fmt::Debug for PoolUser {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolUser")
            .field("link", &self.link)
            .field("pending", &self.pending.len())
            .field("cached", &self.cache.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PoolUser {
    /// A PU starting at `now` (see the module docs).
    pub fn new(config: PoolUserConfig, rng: Box<dyn RngCore + Send>, _now: Timestamp) -> Self {
        let table = ServerTable::new(
            &config.static_registrars,
            config.max_registrars,
            config.announce_timeout,
        );
        let cache = PuCache::new(config.cache.clone(), config.stale_time);
        PoolUser {
            config,
            rng,
            table,
            link: Link::Idle,
            cache,
            pending: BTreeMap::new(),
            reports: VecDeque::new(),
            hunt_at: None,
            connect_deadline: None,
            transmits: VecDeque::new(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolUserConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The association to the current registrar, if up.
    pub fn registrar_association(&self) -> Option<AssocRef> {
        match self.link {
            Link::Up { assoc, .. } => Some(assoc),
            _ => None,
        }
    }

    /// Number of PEs in the cache (stale ones included until the next input).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Whether a resolution of `handle` is under way.
    pub fn is_pending(&self, handle: &PoolHandle) -> bool {
        self.pending.contains_key(handle)
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

    /// When [`PoolUser::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.hunt_at,
            self.connect_deadline,
            self.pending.values().map(|p| p.deadline).min(),
            self.table.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A PE of `handle`: from fresh cache entries by the pool policy, or
    /// [`Resolve::Pending`] after sending a HANDLE_RESOLUTION (RFC 5352 §3.3).
    pub fn resolve(
        &mut self,
        now: Timestamp,
        handle: &PoolHandle,
    ) -> Result<Resolve, ResolveError> {
        if handle.is_empty() || handle.len() > self.config.cache.max_pool_handle_len {
            return Err(ResolveError::InvalidPoolHandle);
        }
        if let Some(mut pes) = self
            .cache
            .resolve(now, handle.as_bytes(), 1, self.rng.as_mut())
            && let Some(pe) = pes.pop()
        {
            self.stats.cache_hits += 1;
            return Ok(Resolve::Selected(pe));
        }
        if self.pending.contains_key(handle) {
            return Ok(Resolve::Pending);
        }
        if self.pending.len() >= self.config.max_pending_resolutions {
            self.stats.overflow += 1;
            return Err(ResolveError::TooManyPending);
        }
        self.pending.insert(
            handle.clone(),
            Pending {
                attempts: 0,
                deadline: now.saturating_add(self.config.request_timeout),
                sent_on: None,
            },
        );
        self.flush_requests(now);
        Ok(Resolve::Pending)
    }

    /// The application could not use PE `id` of `handle`: it leaves the cache and an
    /// ENDPOINT_UNREACHABLE goes to the registrar (RFC 5352 §3.5).
    pub fn report_failure(&mut self, now: Timestamp, handle: &PoolHandle, id: PeIdentifier) {
        self.cache.remove(handle.as_bytes(), id);
        if self.reports.len() >= self.config.max_pending_reports {
            self.stats.overflow += 1;
            return;
        }
        if !self.reports.iter().any(|(h, i)| h == handle && *i == id) {
            self.reports.push_back((handle.clone(), id));
        }
        self.flush_requests(now);
    }

    /// Fires every timer due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.table.expire(now);
        self.cache.expire(now);
        if due(&mut self.connect_deadline, now) {
            self.fail_registrar(now);
        }
        let expired: Vec<PoolHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(h, _)| h.clone())
            .collect();
        let mut registrar_failed = false;
        let current = self.registrar_association();
        for h in expired {
            let Some(p) = self.pending.get_mut(&h) else {
                continue;
            };
            p.attempts = p.attempts.saturating_add(1);
            if p.sent_on.is_some() && p.sent_on == current {
                registrar_failed = true;
            }
            if p.attempts >= self.config.max_request_attempts {
                self.pending.remove(&h);
                self.event(Event::ResolutionFailed {
                    pool_handle: h,
                    cause: None,
                });
            } else {
                p.deadline = now.saturating_add(self.config.request_timeout);
                p.sent_on = None;
            }
        }
        if registrar_failed {
            // RFC 5352 §3.7.2: no answer in time -> another registrar gets the requests.
            self.fail_registrar(now);
        }
        if due(&mut self.hunt_at, now) {
            self.hunt(now);
        }
        self.flush_requests(now);
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
        match d.message {
            AsapMessage::ServerAnnounce {
                server_id,
                transports,
            } if server_id.0 != 0 => {
                if self
                    .table
                    .handle_announce(now, server_id, &transports, source)
                    && matches!(self.link, Link::Idle)
                    && self.hunt_at.is_some()
                {
                    self.hunt_at = Some(now);
                }
            }
            _ => self.stats.unexpected += 1,
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
            Link::Connecting { endpoint: e } if same_endpoint(e, endpoint) => {
                let endpoint = e.clone();
                self.connect_deadline = None;
                self.table.mark_ok(&endpoint);
                self.link = Link::Up { assoc, endpoint };
                self.flush_requests(now);
            }
            _ => self.command(Command::Close { assoc }),
        }
    }

    /// The association to `endpoint` could not be set up.
    pub fn handle_connect_failed(&mut self, now: Timestamp, endpoint: &TransportParameter) {
        if let Link::Connecting { endpoint: e } = &self.link
            && same_endpoint(e, endpoint)
        {
            self.connect_deadline = None;
            self.fail_registrar(now);
        }
    }

    /// Association `assoc` went down.
    pub fn handle_association_lost(&mut self, now: Timestamp, assoc: AssocRef) {
        if self.registrar_association() == Some(assoc) {
            // RFC 5352 §3.7.1: the requests in flight go to another registrar.
            self.fail_registrar(now);
            self.flush_requests(now);
        }
    }

    /// One ASAP message from a registrar on `assoc`.
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
        let _ = assoc;
        match msg {
            AsapMessage::HandleResolutionResponse {
                pool_handle,
                policy,
                pool_elements,
                error,
            } if self.pending.contains_key(&pool_handle) => {
                self.pending.remove(&pool_handle);
                let answered = pool_elements.len();
                // RFC 5352 §3.3 (the answer names the pool's policy) and RFC 5356 §4-§5 (pool
                // user considerations): the PU selects with the pool's policy; PEs that do not
                // carry the policy type the registrar named cannot be selected with it.
                let pes: Vec<PoolElement> = pool_elements
                    .into_iter()
                    .filter(|pe| {
                        policy
                            .as_ref()
                            .is_none_or(|p| p.policy_type == pe.policy.policy_type)
                    })
                    .collect();
                let cause = match error.and_then(|e| e.first_code()) {
                    Some(c) => Some(c),
                    None if pes.is_empty() && answered > 0 => {
                        Some(CauseCode::INCONSISTENT_POOLING_POLICY)
                    }
                    None if pes.is_empty() => Some(CauseCode::UNKNOWN_POOL_HANDLE),
                    None => None,
                };
                if let Some(cause) = cause {
                    self.cache.flush(pool_handle.as_bytes());
                    self.event(Event::ResolutionFailed {
                        pool_handle,
                        cause: Some(cause),
                    });
                    return;
                }
                self.cache.insert(now, &pool_handle, &pes);
                self.event(Event::Resolved {
                    pool_handle,
                    pool_elements: pes.len(),
                });
            }
            _ => self.stats.unexpected += 1,
        }
    }

    // ---- internals ----

    /// Sends what waits for a registrar, or starts looking for one.
    fn flush_requests(&mut self, now: Timestamp) {
        let Link::Up { assoc, .. } = self.link else {
            let work =
                !self.reports.is_empty() || self.pending.values().any(|p| p.sent_on.is_none());
            if work && matches!(self.link, Link::Idle) && self.hunt_at.is_none() {
                self.hunt(now);
            }
            return;
        };
        while let Some((pool_handle, identifier)) = self.reports.pop_front() {
            // RFC 5352 §3.5: report the unreachable PE to the registrar.
            self.send(
                assoc,
                &AsapMessage::EndpointUnreachable {
                    pool_handle,
                    identifier,
                },
            );
            self.stats.unreachable_sent += 1;
        }
        let unsent: Vec<PoolHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent_on.is_none())
            .map(|(h, _)| h.clone())
            .collect();
        for h in unsent {
            let msg = AsapMessage::HandleResolution {
                pool_handle: h.clone(),
                items: self.config.handle_resolution_items,
            };
            self.send(assoc, &msg);
            self.stats.resolutions_sent += 1;
            if let Some(p) = self.pending.get_mut(&h) {
                p.sent_on = Some(assoc);
                p.deadline = now.saturating_add(self.config.request_timeout);
            }
        }
    }

    /// Connects to a registrar chosen from the table (RFC 5352 §3.6).
    fn hunt(&mut self, now: Timestamp) {
        if !matches!(self.link, Link::Idle) {
            return;
        }
        match self.table.choose(self.rng.as_mut()) {
            Some(endpoint) => {
                self.link = Link::Connecting {
                    endpoint: endpoint.clone(),
                };
                self.connect_deadline = Some(now.saturating_add(self.config.connect_timeout));
                self.command(Command::Connect { endpoint });
            }
            None => self.hunt_at = Some(now.saturating_add(self.config.hunt_retry_interval)),
        }
    }

    /// Gives up on the current (or prospective) registrar; requests in flight are resent
    /// to the next one.
    fn fail_registrar(&mut self, now: Timestamp) {
        self.stats.registrar_failures += 1;
        let endpoint = match std::mem::replace(&mut self.link, Link::Idle) {
            Link::Idle => None,
            Link::Connecting { endpoint } => Some(endpoint),
            Link::Up { assoc, endpoint } => {
                self.command(Command::Close { assoc });
                Some(endpoint)
            }
        };
        if let Some(e) = &endpoint {
            self.table.mark_failed(e);
        }
        self.connect_deadline = None;
        for p in self.pending.values_mut() {
            p.sent_on = None;
        }
        // Another registrar at once, unless every one has failed (then wait a little).
        if self.table.all_failed() {
            self.hunt_at = Some(now.saturating_add(self.config.hunt_retry_interval));
        } else {
            self.hunt(now);
        }
    }

    fn send(&mut self, assoc: AssocRef, msg: &AsapMessage) {
        if self.transmits.len() >= self.config.max_queue {
            self.stats.overflow += 1;
            return;
        }
        match encode(msg) {
            Some(bytes) => self.transmits.push_back(Transmit { assoc, bytes }),
            None => self.stats.overflow += 1,
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
