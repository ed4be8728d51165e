//! The sans-IO registrar (ENRP server, "PR"): the ASAP server side (RFC 5352), ENRP
//! peering (RFC 5353), announces, takeover, audits, access control and rate limits.
//!
//! Like `sctp_stack::Endpoint`, a [`Registrar`] never touches a socket, a thread or a
//! clock: the driver feeds it messages and time, and drains what it wants sent.
//!
//! # Call contract
//!
//! 1. [`Registrar::new`] with a [`RegistrarConfig`], a seeded RNG (server identifier
//!    generation and random pool policies) and the current time. The registrar starts in
//!    the start-up phase (RFC 5353 §3.2): it sends PRESENCE to its static peers (and the
//!    multicast group), picks the first peer it hears as its mentor and downloads the
//!    handlespace from it. Until the download completes (or the mentor hunt times out),
//!    ASAP requests are dropped (counted in [`Stats::asap_dropped_in_startup`]) and no
//!    SERVER_ANNOUNCE is sent.
//! 2. Inputs, in any order, each with the current [`Timestamp`] (never decreasing):
//!    - [`Registrar::handle_asap`]: one ASAP message (PPID 11) from a PE or PU, with the
//!      driver's reference for the SCTP association ([`AssocRef`]) and its peer
//!      addresses ([`AsapOrigin`]);
//!    - [`Registrar::handle_enrp`]: one ENRP message (PPID 12) from a peer, over an
//!      association or the multicast group ([`EnrpOrigin`]);
//!    - [`Registrar::handle_association_lost`]: an ASAP association went down (its PEs are
//!      removed);
//!    - [`Registrar::handle_timeout`]: the time from [`Registrar::poll_timeout`] has come.
//!      Spurious calls are no-ops.
//! 3. After every input, drain [`Registrar::poll_transmit`] (each [`Transmit`] names a
//!    [`Destination`], the PPID and the encoded message) and [`Registrar::poll_event`], then
//!    re-arm the driver's timer with [`Registrar::poll_timeout`].
//!
//! Destinations: [`Destination::Association`] answers on an existing ASAP association;
//! [`Destination::PoolElement`] is a PE's ASAP endpoint without a current association
//! (after a takeover the new home registrar must reach PEs it never talked to: the
//! driver connects to the given transport and reports later messages from that
//! association with its own [`AssocRef`]); [`Destination::Peer`] is an ENRP peer by
//! identifier (0 while unknown) and ENRP endpoint; [`Destination::EnrpMulticast`] and
//! [`Destination::AsapAnnounce`] are the two multicast groups.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use core::time::Duration;
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use rserpool::Timestamp;
//! use rserpool::registrar::{AsapOrigin, AssocRef, Destination, Registrar, RegistrarConfig};
//! use rserpool::wire::*;
//!
//! let config = RegistrarConfig {
//!     server_id: RegistrarId(1),
//!     mentor_hunt_timeout: Duration::ZERO, // no peers to wait for
//!     ..RegistrarConfig::default()
//! };
//! let now = Timestamp::from_secs(1);
//! let mut pr = Registrar::new(config, Box::new(ChaCha8Rng::seed_from_u64(1)), now);
//! pr.handle_timeout(now);
//! assert!(pr.is_serving());
//! while pr.poll_transmit().is_some() {} // the first SERVER_ANNOUNCE
//!
//! // A PE registers over its association.
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
//! let from = AsapOrigin { assoc: AssocRef(7), port: 5000, addresses: &[pe_addr] };
//! pr.handle_asap(now, from, &bytes);
//!
//! let answer = pr.poll_transmit().expect("a response");
//! assert_eq!(answer.to, Destination::Association(AssocRef(7)));
//! assert_eq!(answer.ppid, PPID_ASAP);
//! let response = AsapMessage::decode(&answer.bytes).expect("valid").message;
//! assert!(matches!(response, AsapMessage::RegistrationResponse { reject: false, .. }));
//!
//! // The next timer is the announce in 1 s; the PE's first keep-alive follows at 5 s.
//! assert_eq!(pr.poll_timeout(), Some(now + Duration::from_secs(1)));
//! ```
//!
//! # Design
//!
//! - The [`Handlespace`] holds pools, PEs, ownership and checksums, and one timer per PE
//!   (registration expiry for copies; keep-alive transmission or keep-alive timeout for
//!   owned PEs). The registrar adds its own small timer table (announce, presence, mentor
//!   hunt, per-peer liveness, takeover expiry, table transfers); [`Registrar::poll_timeout`]
//!   is the minimum of both.
//! - Owned PEs are indexed by association so a lost association removes them, and counted
//!   per address for [`RegistrarConfig::max_pes_per_address`].
//! - Every queue and table is bounded (transmits, events, peers, rate-limit buckets, PEs);
//!   overflow is dropped and counted in [`Stats`], never grown.
//! - Malformed input never panics: decode errors that RFC 5354 §3-§4 / RFC 5352 §2.2.14 /
//!   RFC 5353 §2.10 ask to report are answered with an ERROR carrying an Operation Error,
//!   everything else is dropped and counted.
//! - Section numbers cited as `RFC 5352 §x` / `RFC 5353 §x` refer to the procedures of the
//!   RFCs (RFC 5353 §3.2 initialisation, §3.3 handlespace updates, §3.4 peer monitoring,
//!   §3.5 takeover, §3.6 audit and re-synchronisation).
//! - Ownership conflicts (both sides of a long network split took each other over) are
//!   resolved the same way on both sides: in a handle table, the lower registrar
//!   identifier keeps a PE both claim; a HANDLE_UPDATE (a fresh registration) always wins.
//!
//! # Known gaps (reasoned)
//!
//! - No access control on ENRP peers: peers come from the static list or from PRESENCE
//!   (discovery can be switched off with [`RegistrarConfig::discover_peers`]); the peer
//!   table is bounded. Authenticating peers is the transport's job (RFC 5353 §6: TLS).
//! - DPF policies: the registrar does not update the PE distance field from its own
//!   measurements (the policies still select with the distance the PE registered).
//! - The registrar does not listen to other registrars' SERVER_ANNOUNCEs; ENRP discovery
//!   runs on PRESENCE.
//! - A partial partition (A cannot hear B, C can) lets A take over a live B; the PEs then
//!   follow A's H-bit keep-alives and their next re-registration settles the home.
//! - No association-up input: an ASAP association becomes known with its first message.

mod asap;
mod config;
mod enrp;
mod limiter;

#[cfg(test)]
mod tests;

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;

use rand_core::RngCore;

pub use config::{AccessList, AccessRule, IpPrefix, RateLimit, RegistrarConfig};

use crate::Timestamp;
use crate::handlespace::{ChecksumAccumulator, Continuation, Handlespace};
use crate::wire::{
    AsapMessage, CauseCode, EnrpBody, EnrpMessage, PPID_ASAP, PPID_ENRP, PeIdentifier, PoolHandle,
    RegistrarId, ServerInformation, TransportParameter,
};
use limiter::RateLimiter;

/// The driver's reference to one SCTP association (opaque to the registrar; typically the
/// `sctp_stack` association id mapped to an integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssocRef(pub u64);

/// Where an ASAP message came from.
#[derive(Debug, Clone, Copy)]
pub struct AsapOrigin<'a> {
    /// The association.
    pub assoc: AssocRef,
    /// The peer's SCTP port.
    pub port: u16,
    /// The peer's addresses (primary first).
    pub addresses: &'a [IpAddr],
}

/// How an ENRP message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrpOrigin {
    /// Over an SCTP association with a peer.
    Association(AssocRef),
    /// On the ENRP multicast group (only PRESENCE is taken this way; RFC 5353 §3.1 itself
    /// group-casts announcements over SCTP associations).
    Multicast,
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Destination {
    /// An existing ASAP association (a PE or PU).
    Association(AssocRef),
    /// The ASAP endpoint of a PE with no current association (connect, then send).
    PoolElement(TransportParameter),
    /// An ENRP peer: its identifier (0 while unknown) and ENRP endpoint.
    Peer {
        /// The peer's identifier.
        id: RegistrarId,
        /// Its ENRP endpoint.
        endpoint: TransportParameter,
    },
    /// The ENRP multicast group (PRESENCE only).
    EnrpMulticast,
    /// The ASAP announce multicast group (SERVER_ANNOUNCE).
    AsapAnnounce,
}

/// An encoded message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: Destination,
    /// SCTP payload protocol identifier ([`PPID_ASAP`] or [`PPID_ENRP`]).
    pub ppid: u32,
    /// The message.
    pub bytes: Vec<u8>,
}

/// Why a PE left the handlespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalReason {
    /// ASAP_DEREGISTRATION.
    Deregistered,
    /// No ENDPOINT_KEEP_ALIVE_ACK in time.
    KeepAliveTimeout,
    /// MaxBadPEReports ENDPOINT_UNREACHABLE reports.
    Unreachable,
    /// The PE's ASAP association was lost.
    AssociationLost,
    /// The registration life of a copy ran out.
    Expired,
    /// An ENRP_HANDLE_UPDATE delete from the home registrar.
    PeerUpdate,
    /// Not confirmed by the owner during an audit.
    Audit,
}

/// Something that happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A PE registered with this registrar (`update`: it was already registered).
    Registered {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
        /// Re-registration.
        update: bool,
    },
    /// A registration was refused.
    RegistrationRejected {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
        /// The Operation Error cause sent.
        cause: CauseCode,
    },
    /// A PE was removed.
    Removed {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
        /// Why.
        reason: RemovalReason,
    },
    /// A peer joined the peer table.
    PeerAdded(RegistrarId),
    /// A peer left the peer table (taken over).
    PeerRemoved(RegistrarId),
    /// Start-up is over: the handlespace came from `mentor` (or nobody answered).
    Synchronised {
        /// The mentor, if any.
        mentor: Option<RegistrarId>,
    },
    /// A peer's checksum did not match; its PEs are being re-requested.
    AuditStarted {
        /// The peer.
        peer: RegistrarId,
    },
    /// The audit of a peer finished; `purged` stale copies were removed.
    AuditCompleted {
        /// The peer.
        peer: RegistrarId,
        /// Removed copies.
        purged: usize,
    },
    /// This registrar started to take over a silent peer.
    TakeoverStarted {
        /// The peer.
        target: RegistrarId,
    },
    /// The takeover was given up (the target spoke, or a lower identifier won the race).
    TakeoverAborted {
        /// The peer.
        target: RegistrarId,
    },
    /// This registrar took over `target` and became home of `pool_elements` PEs.
    TakeoverCompleted {
        /// The peer.
        target: RegistrarId,
        /// PEs taken over.
        pool_elements: usize,
    },
    /// Peer `by` took over `target`.
    TakenOverBy {
        /// The failed registrar.
        target: RegistrarId,
        /// The new home.
        by: RegistrarId,
    },
}

/// Counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// ASAP messages received.
    pub asap_received: u64,
    /// ENRP messages received.
    pub enrp_received: u64,
    /// Messages longer than [`RegistrarConfig::max_message_len`].
    pub oversized: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// ERROR messages sent in answer to malformed input.
    pub errors_sent: u64,
    /// Well-formed messages a registrar does not expect (dropped).
    pub unexpected: u64,
    /// ASAP requests dropped because start-up was not over.
    pub asap_dropped_in_startup: u64,
    /// ENRP messages from registrars not in the peer table, or misaddressed.
    pub enrp_from_unknown: u64,
    /// Registrations accepted.
    pub registrations: u64,
    /// Registrations rejected.
    pub registration_rejects: u64,
    /// Handle resolutions answered.
    pub resolutions: u64,
    /// Requests refused by an access list.
    pub acl_refusals: u64,
    /// Requests dropped by a rate limit.
    pub rate_limited: u64,
    /// Keep-alive timeouts.
    pub keep_alive_timeouts: u64,
    /// Transmits dropped because the queue was full.
    pub transmit_overflow: u64,
    /// Events dropped because the queue was full.
    pub event_overflow: u64,
    /// Peers refused because the table was full.
    pub peer_overflow: u64,
    /// Messages that could not be encoded (too long).
    pub encode_failures: u64,
    /// Handle updates or table entries the handlespace refused.
    pub update_rejects: u64,
}

/// An ENRP peer (RFC 5353 §3.4).
#[derive(Debug, Clone)]
struct Peer {
    info: ServerInformation,
    last_heard: Timestamp,
    /// PRESENCE with R sent after MaxTimeLastHeard; no answer yet.
    awaiting_response: bool,
    /// A handle table transfer from this peer in progress (flag W = own PEs only).
    transfer: Option<Transfer>,
}

#[derive(Debug, Clone, Copy)]
struct Transfer {
    own_children_only: bool,
    started: Timestamp,
}

/// A takeover this registrar initiated (RFC 5353 §3.5.1).
#[derive(Debug, Clone)]
struct Takeover {
    pending_acks: BTreeSet<RegistrarId>,
}

/// What the registrar knows about a PE it is home for.
#[derive(Debug, Clone, Copy)]
struct OwnedPe {
    assoc: Option<AssocRef>,
    address: Option<IpAddr>,
    /// End of the registration life (RFC 5354 §3.10): the PE must re-register before.
    expires: Timestamp,
}

/// The life-cycle phase (RFC 5353 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Looking for a mentor / downloading the handlespace from it.
    Startup { mentor: Option<RegistrarId> },
    /// Serving PEs and PUs.
    Serving,
}

/// Registrar-level timers (per-PE timers live in the handlespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Announce,
    Presence,
    MentorHunt,
    /// MaxTimeLastHeard / MaxTimeNoResponse of one peer.
    PeerCheck(RegistrarId),
    TakeoverExpiry(RegistrarId),
    /// A handle table transfer from the peer takes too long.
    Transfer(RegistrarId),
}

#[derive(Debug, Clone, Default)]
struct TimerTable {
    ordered: BTreeSet<(Timestamp, Timer)>,
    deadlines: HashMap<Timer, Timestamp>,
}

impl TimerTable {
    fn set(&mut self, t: Timer, at: Timestamp) {
        if let Some(old) = self.deadlines.insert(t, at) {
            self.ordered.remove(&(old, t));
        }
        self.ordered.insert((at, t));
    }

    fn cancel(&mut self, t: Timer) {
        if let Some(old) = self.deadlines.remove(&t) {
            self.ordered.remove(&(old, t));
        }
    }

    fn next(&self) -> Option<Timestamp> {
        self.ordered.first().map(|(at, _)| *at)
    }

    fn pop(&mut self, now: Timestamp) -> Option<Timer> {
        let &(at, t) = self.ordered.first()?;
        if at > now {
            return None;
        }
        self.ordered.remove(&(at, t));
        self.deadlines.remove(&t);
        Some(t)
    }
}

/// The registrar core (see the module docs for the call contract).
pub struct Registrar {
    config: RegistrarConfig,
    id: RegistrarId,
    rng: Box<dyn RngCore + Send>,
    phase: Phase,
    handlespace: Handlespace,
    owned: HashMap<(PoolHandle, PeIdentifier), OwnedPe>,
    by_assoc: HashMap<AssocRef, BTreeSet<(PoolHandle, PeIdentifier)>>,
    per_address: HashMap<IpAddr, usize>,
    peers: BTreeMap<RegistrarId, Peer>,
    takeovers: BTreeMap<RegistrarId, Takeover>,
    /// Takeovers another registrar started and we acknowledged: target -> (initiator, when).
    /// While one is fresh we do not start a competing takeover of the same target (RSPLIB
    /// keeps the same record per peer). At most one entry per peer.
    takeover_by: BTreeMap<RegistrarId, (RegistrarId, Timestamp)>,
    /// Where a handle table export to a peer continues (flag M), keyed by peer and flag W.
    /// Entries older than the table transfer timeout are stale (the requester gave up).
    cursors: HashMap<(RegistrarId, bool), (Continuation, Timestamp)>,
    timers: TimerTable,
    resolution_limiter: Option<RateLimiter>,
    unreachable_limiter: Option<RateLimiter>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("id", &self.id)
            .field("phase", &self.phase)
            .field("pools", &self.handlespace.pool_count())
            .field("pool_elements", &self.handlespace.pe_count())
            .field("owned", &self.owned.len())
            .field("peers", &self.peers.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// A registrar starting at `now` (see the module docs).
    pub fn new(config: RegistrarConfig, mut rng: Box<dyn RngCore + Send>, now: Timestamp) -> Self {
        // RFC 5353 §3.2.1: the identifier is chosen at random and is never 0.
        let mut id = config.server_id;
        while id == RegistrarId::UNDEFINED {
            id = RegistrarId(rng.next_u32());
        }
        let handlespace = Handlespace::new(config.handlespace.clone());
        let limiter =
            |r: Option<RateLimit>| r.map(|r| RateLimiter::new(r, config.max_rate_limited_users));
        let mut reg = Registrar {
            resolution_limiter: limiter(config.resolution_rate),
            unreachable_limiter: limiter(config.unreachable_rate),
            config,
            id,
            rng,
            phase: Phase::Startup { mentor: None },
            handlespace,
            owned: HashMap::new(),
            by_assoc: HashMap::new(),
            per_address: HashMap::new(),
            peers: BTreeMap::new(),
            takeovers: BTreeMap::new(),
            takeover_by: BTreeMap::new(),
            cursors: HashMap::new(),
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        // RFC 5353 §3.2.2/§3.2.3: announce ourselves and look for a mentor.
        reg.send_presence_to_all(true);
        reg.timers
            .set(Timer::Presence, now + reg.config.presence_interval);
        reg.timers
            .set(Timer::MentorHunt, now + reg.config.mentor_hunt_timeout);
        reg
    }

    /// This registrar's identifier.
    pub fn id(&self) -> RegistrarId {
        self.id
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Whether start-up (mentor synchronisation) is over and ASAP requests are served.
    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Serving
    }

    /// The handlespace (read-only).
    pub fn handlespace(&self) -> &Handlespace {
        &self.handlespace
    }

    /// The checksum over every PE of the handlespace (RSPLIB's handlespace checksum, for
    /// logs and monitoring; ENRP_PRESENCE carries the ownership checksum instead). Two
    /// registrars with equal handlespaces have equal checksums. Cost O(PEs).
    pub fn handlespace_checksum(&self) -> u16 {
        let mut acc = ChecksumAccumulator::default();
        for h in self.handlespace.pool_handles() {
            for pe in self.handlespace.pool_elements(h.as_bytes()) {
                acc.add(ChecksumAccumulator::pe_contribution(
                    h.as_bytes(),
                    pe.identifier,
                ));
            }
        }
        acc.finish()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The peers in the peer table with their Server Information.
    pub fn peers(&self) -> impl Iterator<Item = &ServerInformation> + '_ {
        self.peers.values().map(|p| &p.info)
    }

    /// Number of PEs this registrar is home for.
    pub fn owned_count(&self) -> usize {
        self.owned.len()
    }

    /// Whether a takeover of `target` initiated here is in progress.
    pub fn is_taking_over(&self, target: RegistrarId) -> bool {
        self.takeovers.contains_key(&target)
    }

    /// The next transmit, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Registrar::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.timers.next(), self.handlespace.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(t) = self.timers.pop(now) {
            self.on_timer(now, t);
        }
        while let Some(e) = self.handlespace.poll_expired(now) {
            self.on_pe_timer(now, e);
        }
    }

    fn on_timer(&mut self, now: Timestamp, t: Timer) {
        match t {
            Timer::Announce => {
                if let Some(interval) = self.config.announce_interval {
                    self.send_announce();
                    self.timers.set(Timer::Announce, now + interval);
                }
            }
            Timer::Presence => {
                // RFC 5353 §3.4.2: PRESENCE to every peer at the heartbeat interval.
                self.send_presence_to_all(false);
                self.timers
                    .set(Timer::Presence, now + self.config.presence_interval);
            }
            Timer::MentorHunt => match self.phase {
                Phase::Startup { mentor: Some(m) } => {
                    // A download from the mentor is under way: wait for it (or for its
                    // transfer timeout, which clears the mentor).
                    let until = self
                        .peers
                        .get(&m)
                        .and_then(|p| p.transfer)
                        .map(|t| after(t.started, self.config.table_transfer_timeout));
                    match until {
                        Some(t) => self.timers.set(
                            Timer::MentorHunt,
                            t.max(after(now, Duration::from_millis(1))),
                        ),
                        None => self.finish_startup(now, None),
                    }
                }
                Phase::Startup { mentor: None } => self.finish_startup(now, None),
                Phase::Serving => {}
            },
            Timer::PeerCheck(id) => self.on_peer_check(now, id),
            Timer::TakeoverExpiry(target) => self.on_takeover_expiry(now, target),
            Timer::Transfer(id) => self.on_transfer_timeout(now, id),
        }
    }

    fn finish_startup(&mut self, now: Timestamp, mentor: Option<RegistrarId>) {
        self.phase = Phase::Serving;
        self.timers.cancel(Timer::MentorHunt);
        if let Some(interval) = self.config.announce_interval {
            // RFC 5352 §3.6 (server hunt): announce only once we can serve (RFC 5353 §3.2.3).
            self.send_announce();
            self.timers.set(Timer::Announce, now + interval);
        }
        self.event(Event::Synchronised { mentor });
    }

    fn send_announce(&mut self) {
        let msg = AsapMessage::ServerAnnounce {
            server_id: self.id,
            transports: self.config.asap_transports.clone(),
        };
        self.send_asap(Destination::AsapAnnounce, &msg);
    }

    // ---- output helpers ----

    fn push_transmit(&mut self, to: Destination, ppid: u32, bytes: Vec<u8>) {
        if self.transmits.len() >= self.config.max_transmits {
            self.stats.transmit_overflow += 1;
            return;
        }
        self.transmits.push_back(Transmit { to, ppid, bytes });
    }

    fn send_asap(&mut self, to: Destination, msg: &AsapMessage) {
        let mut buf = vec![0; msg.encoded_len()];
        match msg.encode(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                self.push_transmit(to, PPID_ASAP, buf);
            }
            Err(_) => self.stats.encode_failures += 1,
        }
    }

    fn send_enrp_to(&mut self, to: Destination, receiver: RegistrarId, body: EnrpBody) {
        let msg = EnrpMessage {
            sender: self.id,
            receiver,
            body,
        };
        let mut buf = vec![0; msg.encoded_len()];
        match msg.encode(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                self.push_transmit(to, PPID_ENRP, buf);
            }
            Err(_) => self.stats.encode_failures += 1,
        }
    }

    /// Sends to a peer in the table (dropped if it is not there).
    fn send_enrp(&mut self, peer: RegistrarId, body: EnrpBody) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let endpoint = p.info.transport.clone();
        self.send_enrp_to(Destination::Peer { id: peer, endpoint }, peer, body);
    }

    /// Sends to every peer in the table.
    fn broadcast_enrp(&mut self, body: &EnrpBody) {
        let ids: Vec<RegistrarId> = self.peers.keys().copied().collect();
        for id in ids {
            self.send_enrp(id, body.clone());
        }
    }

    fn event(&mut self, e: Event) {
        if self.events.len() >= self.config.max_events {
            self.stats.event_overflow += 1;
            return;
        }
        self.events.push_back(e);
    }

    // ---- owned PE bookkeeping ----

    fn own(
        &mut self,
        key: (PoolHandle, PeIdentifier),
        assoc: Option<AssocRef>,
        address: Option<IpAddr>,
        expires: Timestamp,
    ) {
        self.disown(&key);
        if let Some(a) = assoc {
            self.by_assoc.entry(a).or_default().insert(key.clone());
        }
        if let Some(addr) = address {
            *self.per_address.entry(addr).or_default() += 1;
        }
        self.owned.insert(
            key,
            OwnedPe {
                assoc,
                address,
                expires,
            },
        );
    }

    fn disown(&mut self, key: &(PoolHandle, PeIdentifier)) {
        let Some(o) = self.owned.remove(key) else {
            return;
        };
        if let Some(a) = o.assoc
            && let Some(set) = self.by_assoc.get_mut(&a)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_assoc.remove(&a);
            }
        }
        if let Some(addr) = o.address
            && let Some(n) = self.per_address.get_mut(&addr)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&addr);
            }
        }
    }

    /// Re-binds an owned PE to the association it answered on (after a takeover).
    fn rebind(&mut self, key: &(PoolHandle, PeIdentifier), assoc: AssocRef) {
        let Some(o) = self.owned.get(key).copied() else {
            return;
        };
        if o.assoc == Some(assoc) {
            return;
        }
        self.own(key.clone(), Some(assoc), o.address, o.expires);
    }

    /// Removes a PE; if this registrar owned it and `propagate`, tells every peer
    /// (RFC 5353 §3.3.2: the home registrar MUST announce the removal to all peers).
    fn remove_pe(
        &mut self,
        handle: &PoolHandle,
        id: PeIdentifier,
        reason: RemovalReason,
        propagate: bool,
    ) {
        let key = (handle.clone(), id);
        let was_owned = self.owned.contains_key(&key);
        self.disown(&key);
        let Ok(pe) = self.handlespace.deregister(handle.as_bytes(), id) else {
            return;
        };
        if was_owned && propagate {
            self.broadcast_enrp(&EnrpBody::HandleUpdate {
                takeover_suggested: false,
                action: crate::wire::UpdateAction::DEL_PE,
                pool_handle: handle.clone(),
                pool_element: pe,
            });
        }
        self.event(Event::Removed {
            pool_handle: handle.clone(),
            identifier: id,
            reason,
        });
    }

    /// An ASAP association went down: every PE registered over it is removed and the
    /// removal propagated (RSPLIB behaviour; the PE re-registers over a new association).
    pub fn handle_association_lost(&mut self, _now: Timestamp, assoc: AssocRef) {
        let Some(keys) = self.by_assoc.remove(&assoc) else {
            return;
        };
        for (h, id) in keys {
            // `by_assoc` is already gone for this association; disown clears the rest.
            self.remove_pe(&h, id, RemovalReason::AssociationLost, true);
        }
    }
}

/// Time helper: `now + d` without overflow.
fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(d)
}
