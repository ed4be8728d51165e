//! The handlespace: pools by handle, pool elements by identifier, ownership, timers and
//! checksums (RFC 5351 §2, RFC 5352 §3, RFC 5353 §3).
//!
//! One [`Handlespace`] serves a registrar (its own PEs and the copies learned over ENRP)
//! and, wrapped in a [`PuCache`], a pool user's cache of handle resolutions.
//!
//! Design (every operation O(log n) or O(k log n), none scans the handlespace):
//! - Pools live in a slab, found by handle through a hash map; a B-tree over the handles
//!   gives the export order. Each pool keeps its PEs in a slab of slots, a B-tree by PE
//!   identifier, and a [`PoolSelector`] for its policy.
//! - Ownership: every PE belongs to its home registrar ([`PoolElement::home_registrar`]).
//!   Per owner the handlespace keeps the ordered set of `(pool handle, PE id)` and the
//!   running sum of the RFC 5353 checksum, so [`Handlespace::ownership_checksum`],
//!   iteration by owner and takeover cost O(1) or O(m log n) for the owner's m PEs.
//! - Timers (sans-IO): each PE has at most one pending timer ([`TimerKind`]: registration
//!   expiry, keep-alive transmission, keep-alive timeout). They live in one ordered set;
//!   [`Handlespace::next_deadline`] is its minimum and [`Handlespace::poll_expired`] pops
//!   due timers one by one. The handlespace never acts on a timer by itself: the registrar
//!   (or [`PuCache`]) decides (remove, send a keep-alive, ...).
//! - Consistency (RFC 5352 §3.1, RSPLIB): a pool's policy type, transport protocol and
//!   data/control use are fixed by its first PE; a mismatching registration is rejected
//!   with the Operation Error cause [`RegistrationError::cause_code`] names.
//!
//! Call order for a registrar: [`Handlespace::register`] / [`Handlespace::deregister`] /
//! [`Handlespace::resolve`] / [`Handlespace::apply_update`] as messages arrive; after each
//! input, drain [`Handlespace::poll_expired`] with the current time and arm the driver's
//! clock with [`Handlespace::next_deadline`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use rserpool::Timestamp;
//! use rserpool::handlespace::{Handlespace, HandlespaceConfig, Registered};
//! use rserpool::rand_core::RngCore;
//! use rserpool::wire::*;
//!
//! # struct Counter(u64);
//! # impl RngCore for Counter {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8; } }
//! # }
//! # let mut rng = Counter(1);
//! let mut hs = Handlespace::new(HandlespaceConfig::default());
//! let handle = PoolHandle::from("EchoPool");
//! let pe = PoolElement {
//!     identifier: PeIdentifier(0x1234),
//!     home_registrar: RegistrarId(7),
//!     registration_life: 30_000,
//!     user_transport: TransportParameter::sctp(
//!         7,
//!         TransportUse::DATA_ONLY,
//!         vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))],
//!     ),
//!     policy: PolicyInfo::round_robin(),
//!     asap_transport: None,
//! };
//! let now = Timestamp::from_secs(1);
//! assert_eq!(hs.register(now, &handle, pe), Ok(Registered::New));
//!
//! // A handle resolution answered from the handlespace.
//! let r = hs.resolve(handle.as_bytes(), 3, &mut rng).expect("known pool");
//! let response = AsapMessage::HandleResolutionResponse {
//!     pool_handle: r.pool_handle().clone(),
//!     policy: Some(PolicyInfo::new(r.policy_type())),
//!     pool_elements: r.iter().cloned().collect(),
//!     error: None,
//! };
//! let mut buf = vec![0; response.encoded_len()];
//! response.encode(&mut buf).expect("fits");
//!
//! // The registration life runs out unless the PE re-registers.
//! assert_eq!(hs.next_deadline(), Some(Timestamp::from_secs(31)));
//! let expired = hs.poll_expired(Timestamp::from_secs(31)).expect("due");
//! hs.deregister(expired.pool_handle.as_bytes(), expired.identifier).expect("present");
//! assert_eq!(hs.ownership_checksum(RegistrarId(7)), 0xffff);
//! ```

use core::fmt;
use core::time::Duration;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use rand_core::RngCore;

use crate::Timestamp;
use crate::policy::{Policy, PolicyError, PolicyRegistry, PoolSelector};
use crate::wire::{
    CauseCode, ErrorCause, OperationError, PeIdentifier, PolicyType, PoolElement, PoolHandle,
    RegistrarId, TransportParameter, TransportProtocol, TransportUse, UpdateAction,
};

impl Borrow<[u8]> for PoolHandle {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Limits of a handlespace (RSPLIB defaults where it has them).
#[derive(Debug, Clone)]
pub struct HandlespaceConfig {
    /// Longest pool handle accepted (RSPLIB: 32 bytes).
    pub max_pool_handle_len: usize,
    /// Most addresses in one transport parameter (RSPLIB: 128).
    pub max_addresses_per_pe: usize,
    /// Most PEs one handle resolution returns (RSPLIB: 128; the default request is 3).
    pub max_pes_per_resolution: usize,
    /// Most PEs in one pool.
    pub max_pes_per_pool: usize,
    /// Most pools.
    pub max_pools: usize,
    /// Most PEs in the whole handlespace.
    pub max_pes: usize,
}

impl Default for HandlespaceConfig {
    fn default() -> Self {
        HandlespaceConfig {
            max_pool_handle_len: 32,
            max_addresses_per_pe: 128,
            max_pes_per_resolution: 128,
            max_pes_per_pool: 1 << 20,
            max_pools: 1 << 20,
            max_pes: 1 << 22,
        }
    }
}

/// Why a registration (or an ENRP add) was rejected. [`RegistrationError::cause_code`]
/// gives the Operation Error cause to send (RFC 5354 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Empty or longer than [`HandlespaceConfig::max_pool_handle_len`].
    InvalidPoolHandle,
    /// PE identifier 0 (RSPLIB reserves it).
    InvalidIdentifier,
    /// A transport without addresses, with too many, or with port 0.
    InvalidTransport,
    /// No policy implementation is registered for the type.
    UnknownPolicy(PolicyType),
    /// The policy rejected the values.
    InvalidPolicyValue(PolicyType),
    /// The pool uses another policy type.
    InconsistentPolicy {
        /// The pool's policy.
        pool: PolicyType,
    },
    /// The pool uses another transport protocol.
    InconsistentTransport,
    /// The pool's PEs use another data/control configuration.
    InconsistentDataControl,
    /// Another PE (another ASAP endpoint) already uses the identifier.
    NonUniqueIdentifier,
    /// A configured limit is reached.
    LackOfResources,
}

impl RegistrationError {
    /// The Operation Error cause code for this rejection.
    pub fn cause_code(&self) -> CauseCode {
        match self {
            RegistrationError::InvalidPoolHandle
            | RegistrationError::InvalidIdentifier
            | RegistrationError::InvalidTransport
            | RegistrationError::UnknownPolicy(_)
            | RegistrationError::InvalidPolicyValue(_) => CauseCode::INVALID_VALUES,
            RegistrationError::InconsistentPolicy { .. } => CauseCode::INCONSISTENT_POOLING_POLICY,
            RegistrationError::InconsistentTransport => CauseCode::INCONSISTENT_TRANSPORT_TYPE,
            RegistrationError::InconsistentDataControl => {
                CauseCode::INCONSISTENT_DATA_CONTROL_CONFIGURATION
            }
            RegistrationError::NonUniqueIdentifier => CauseCode::NON_UNIQUE_PE_IDENTIFIER,
            RegistrationError::LackOfResources => CauseCode::LACK_OF_RESOURCES,
        }
    }

    /// The Operation Error parameter for a registration response, carrying the offending
    /// parameter where RFC 5354 §3.12 asks for it (causes 3, 5 and 7; Wireshark flags
    /// those causes as malformed without it).
    pub fn operation_error(&self, handle: &PoolHandle, pe: &PoolElement) -> OperationError {
        let code = self.cause_code();
        let info = match self {
            RegistrationError::InconsistentPolicy { .. }
            | RegistrationError::UnknownPolicy(_)
            | RegistrationError::InvalidPolicyValue(_) => {
                encode_vec(|b| pe.policy.encode(b), pe.policy.encoded_len())
            }
            RegistrationError::InconsistentTransport | RegistrationError::InvalidTransport => {
                encode_vec(
                    |b| pe.user_transport.encode(b),
                    pe.user_transport.encoded_len(),
                )
            }
            RegistrationError::InvalidPoolHandle => {
                encode_vec(|b| handle.encode(b), handle.encoded_len())
            }
            RegistrationError::InvalidIdentifier => encode_vec(|b| pe.encode(b), pe.encoded_len()),
            _ => Vec::new(),
        };
        OperationError::new(ErrorCause { code, info })
    }
}

fn encode_vec(
    f: impl FnOnce(&mut [u8]) -> Result<usize, crate::wire::EncodeError>,
    len: usize,
) -> Vec<u8> {
    let mut v = vec![0; len];
    match f(&mut v) {
        Ok(n) => {
            v.truncate(n);
            v
        }
        Err(_) => Vec::new(),
    }
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registration rejected: {:?}", self)
    }
}

impl std::error::Error for RegistrationError {}

impl From<PolicyError> for RegistrationError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::UnknownPolicy(t) => RegistrationError::UnknownPolicy(t),
            PolicyError::InvalidValue(t) => RegistrationError::InvalidPolicyValue(t),
        }
    }
}

/// Why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No pool with this handle (cause [`CauseCode::UNKNOWN_POOL_HANDLE`]).
    UnknownPoolHandle,
    /// The pool has no PE with this identifier.
    UnknownPoolElement,
}

impl LookupError {
    /// The Operation Error cause code.
    pub fn cause_code(&self) -> CauseCode {
        match self {
            LookupError::UnknownPoolHandle => CauseCode::UNKNOWN_POOL_HANDLE,
            LookupError::UnknownPoolElement => CauseCode::INVALID_VALUES,
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::UnknownPoolHandle => write!(f, "unknown pool handle"),
            LookupError::UnknownPoolElement => write!(f, "unknown pool element"),
        }
    }
}

impl std::error::Error for LookupError {}

/// What a successful registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registered {
    /// A new PE (and possibly a new pool).
    New,
    /// An existing PE was updated (re-registration).
    Updated,
}

/// The kinds of per-PE timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// The registration life ran out (RFC 5353 §3.5 for copies; PU cache staleness).
    Expiry,
    /// Time to send ENDPOINT_KEEP_ALIVE to an owned PE (RFC 5352 §3.7).
    KeepAliveTransmission,
    /// No ENDPOINT_KEEP_ALIVE_ACK arrived in time (RFC 5352 §3.7).
    KeepAliveTimeout,
}

/// A due timer returned by [`Handlespace::poll_expired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE.
    pub identifier: PeIdentifier,
    /// The timer.
    pub kind: TimerKind,
}

/// Where a handle-table export continues (RFC 5353 §2.3, flag M).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    last_pool: PoolHandle,
    last_pe: PeIdentifier,
}

/// One piece of a handle table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleTablePiece {
    /// Pools with PEs (each PE with its ASAP transport, if known).
    pub pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    /// Where the next piece starts; `None` when this is the last (flag M clear).
    pub next: Option<Continuation>,
}

/// The RFC 5353 ownership checksum: a 16-bit one's complement sum over the pool handle and
/// PE identifier of every PE a registrar owns (RFC 5353 §3.1, computed as RSPLIB does:
/// the handle's 16-bit words, a trailing odd byte padded with zero, then the identifier's
/// two words; the sum folded and complemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChecksumAccumulator(u64);

impl ChecksumAccumulator {
    /// The unfolded contribution of one PE.
    pub fn pe_contribution(handle: &[u8], id: PeIdentifier) -> u64 {
        let mut sum = 0u64;
        let mut words = handle.chunks_exact(2);
        for w in &mut words {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u64::from(*last) << 8;
        }
        sum += u64::from(id.0 >> 16) + u64::from(id.0 & 0xffff);
        sum
    }

    /// Adds a PE.
    pub fn add(&mut self, contribution: u64) {
        self.0 = self.0.wrapping_add(contribution);
    }

    /// Removes a PE added before.
    pub fn sub(&mut self, contribution: u64) {
        self.0 = self.0.wrapping_sub(contribution);
    }

    /// The 16-bit checksum as sent in ENRP_PRESENCE.
    pub fn finish(self) -> u16 {
        let mut s = self.0;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

#[derive(Debug, Clone)]
struct PeEntry {
    pe: PoolElement,
    timer: Option<(Timestamp, TimerKind)>,
    unreachable_reports: u32,
    marked: bool,
}

#[derive(Debug, Clone)]
struct Pool {
    handle: PoolHandle,
    policy_type: PolicyType,
    protocol: TransportProtocol,
    control: bool,
    selector: PoolSelector,
    entries: Vec<Option<PeEntry>>,
    free: Vec<u32>,
    by_id: BTreeMap<PeIdentifier, u32>,
}

#[derive(Debug, Clone, Default)]
struct Owner {
    checksum: ChecksumAccumulator,
    pes: BTreeSet<(PoolHandle, PeIdentifier)>,
}

/// Pools and their PEs (see the module docs).
#[derive(Debug, Clone)]
pub struct Handlespace {
    config: HandlespaceConfig,
    registry: PolicyRegistry,
    pools: Vec<Option<Pool>>,
    free_pools: Vec<u32>,
    by_handle: HashMap<PoolHandle, u32>,
    ordered: BTreeMap<PoolHandle, u32>,
    owners: HashMap<RegistrarId, Owner>,
    timers: BTreeSet<(Timestamp, u32, u32)>,
    pe_count: usize,
    scratch: Vec<u32>,
}

/// The result of a handle resolution: borrowed PEs in selection order.
#[derive(Debug)]
pub struct Resolution<'h> {
    pool: &'h Pool,
    slots: &'h [u32],
}

impl<'h> Resolution<'h> {
    /// The pool handle.
    pub fn pool_handle(&self) -> &'h PoolHandle {
        &self.pool.handle
    }

    /// The pool's policy type.
    pub fn policy_type(&self) -> PolicyType {
        self.pool.policy_type
    }

    /// Number of PEs selected.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no PE was selected (an empty pool cannot exist, so only when k = 0).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The selected PEs, in selection order.
    pub fn iter(&self) -> impl Iterator<Item = &'h PoolElement> + 'h {
        let pool = self.pool;
        self.slots.iter().filter_map(move |s| {
            pool.entries
                .get(*s as usize)
                .and_then(|e| e.as_ref())
                .map(|e| &e.pe)
        })
    }
}

fn check_transport(t: &TransportParameter, max: usize) -> Result<(), RegistrationError> {
    if t.addresses.is_empty() || t.addresses.len() > max || t.port == 0 {
        return Err(RegistrationError::InvalidTransport);
    }
    Ok(())
}

fn control_of(t: &TransportParameter) -> bool {
    matches!(t.protocol, TransportProtocol::Sctp | TransportProtocol::Tcp)
        && t.transport_use == TransportUse::DATA_PLUS_CONTROL
}

impl Handlespace {
    /// An empty handlespace with the built-in policies.
    pub fn new(config: HandlespaceConfig) -> Self {
        Self::with_registry(config, PolicyRegistry::with_builtins())
    }

    /// An empty handlespace with the given policies.
    pub fn with_registry(config: HandlespaceConfig, registry: PolicyRegistry) -> Self {
        Handlespace {
            config,
            registry,
            pools: Vec::new(),
            free_pools: Vec::new(),
            by_handle: HashMap::new(),
            ordered: BTreeMap::new(),
            owners: HashMap::new(),
            timers: BTreeSet::new(),
            pe_count: 0,
            scratch: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HandlespaceConfig {
        &self.config
    }

    /// The policy registry (register application policies here).
    pub fn registry_mut(&mut self) -> &mut PolicyRegistry {
        &mut self.registry
    }

    /// Number of pools.
    pub fn pool_count(&self) -> usize {
        self.by_handle.len()
    }

    /// Number of PEs.
    pub fn pe_count(&self) -> usize {
        self.pe_count
    }

    fn pool_index(&self, handle: &[u8]) -> Option<u32> {
        self.by_handle.get(handle).copied()
    }

    fn pool(&self, idx: u32) -> Option<&Pool> {
        self.pools.get(idx as usize).and_then(|p| p.as_ref())
    }

    fn pool_mut(&mut self, idx: u32) -> Option<&mut Pool> {
        self.pools.get_mut(idx as usize).and_then(|p| p.as_mut())
    }

    /// The PE `id` of pool `handle`.
    pub fn pool_element(&self, handle: &[u8], id: PeIdentifier) -> Option<&PoolElement> {
        let pool = self.pool(self.pool_index(handle)?)?;
        let slot = *pool.by_id.get(&id)?;
        pool.entries.get(slot as usize)?.as_ref().map(|e| &e.pe)
    }

    /// The policy type of a pool.
    pub fn pool_policy(&self, handle: &[u8]) -> Option<PolicyType> {
        Some(self.pool(self.pool_index(handle)?)?.policy_type)
    }

    /// Number of PEs in a pool (0 if unknown).
    pub fn pool_len(&self, handle: &[u8]) -> usize {
        self.pool_index(handle)
            .and_then(|i| self.pool(i))
            .map(|p| p.by_id.len())
            .unwrap_or(0)
    }

    /// Pool handles in byte order.
    pub fn pool_handles(&self) -> impl Iterator<Item = &PoolHandle> + '_ {
        self.ordered.keys()
    }

    /// The PEs of a pool in identifier order.
    pub fn pool_elements(&self, handle: &[u8]) -> impl Iterator<Item = &PoolElement> + '_ {
        let pool = self.pool_index(handle).and_then(|i| self.pool(i));
        pool.into_iter().flat_map(|p| {
            p.by_id.values().filter_map(move |s| {
                p.entries
                    .get(*s as usize)
                    .and_then(|e| e.as_ref())
                    .map(|e| &e.pe)
            })
        })
    }

    /// Registers a PE or updates its registration (RFC 5352 §3.1/§3.2 on the registrar;
    /// RFC 5353 §3.3 for ENRP adds). The PE's `home_registrar` is its owner. The PE's
    /// timer becomes [`TimerKind::Expiry`] at `now + registration life`; a registrar
    /// re-arms it with [`Handlespace::set_timer`] for PEs it owns.
    ///
    /// A re-registration keeps the PE's selection position and resets its accumulated
    /// degradation (RFC 5356 §5.2).
    pub fn register(
        &mut self,
        now: Timestamp,
        handle: &PoolHandle,
        pe: PoolElement,
    ) -> Result<Registered, RegistrationError> {
        if handle.is_empty() || handle.len() > self.config.max_pool_handle_len {
            return Err(RegistrationError::InvalidPoolHandle);
        }
        if pe.identifier.0 == 0 {
            return Err(RegistrationError::InvalidIdentifier);
        }
        check_transport(&pe.user_transport, self.config.max_addresses_per_pe)?;
        if let Some(a) = &pe.asap_transport {
            check_transport(a, self.config.max_addresses_per_pe)?;
        }
        let policy: Arc<dyn Policy> = Arc::clone(self.registry.resolve(&pe.policy)?);
        let expiry = now + Duration::from_millis(u64::from(pe.registration_life));
        let control = control_of(&pe.user_transport);

        let pool_idx = match self.pool_index(handle.as_bytes()) {
            Some(i) => {
                let pool = self.pool(i).ok_or(RegistrationError::LackOfResources)?;
                // RFC 5352 §3.1: the pool's policy is fixed by its first PE.
                if pool.policy_type != pe.policy.policy_type {
                    return Err(RegistrationError::InconsistentPolicy {
                        pool: pool.policy_type,
                    });
                }
                if pool.protocol != pe.user_transport.protocol {
                    return Err(RegistrationError::InconsistentTransport);
                }
                if pool.control != control {
                    return Err(RegistrationError::InconsistentDataControl);
                }
                i
            }
            None => {
                if self.by_handle.len() >= self.config.max_pools
                    || self.pe_count >= self.config.max_pes
                {
                    return Err(RegistrationError::LackOfResources);
                }
                let pool = Pool {
                    handle: handle.clone(),
                    policy_type: pe.policy.policy_type,
                    protocol: pe.user_transport.protocol,
                    control,
                    selector: PoolSelector::new(policy),
                    entries: Vec::new(),
                    free: Vec::new(),
                    by_id: BTreeMap::new(),
                };
                let idx = match self.free_pools.pop() {
                    Some(i) => {
                        if let Some(p) = self.pools.get_mut(i as usize) {
                            *p = Some(pool);
                        }
                        i
                    }
                    None => {
                        self.pools.push(Some(pool));
                        (self.pools.len() - 1) as u32
                    }
                };
                self.by_handle.insert(handle.clone(), idx);
                self.ordered.insert(handle.clone(), idx);
                idx
            }
        };

        let existing = self
            .pool(pool_idx)
            .and_then(|p| p.by_id.get(&pe.identifier).copied());
        match existing {
            Some(slot) => {
                let old = self
                    .pool(pool_idx)
                    .and_then(|p| p.entries.get(slot as usize))
                    .and_then(|e| e.as_ref())
                    .map(|e| (e.pe.home_registrar, e.pe.asap_transport.clone(), e.timer));
                let Some((old_owner, old_asap, old_timer)) = old else {
                    return Err(RegistrationError::LackOfResources);
                };
                // RFC 5352 §3.1: an identifier in use by another PE endpoint. The same
                // endpoint may be seen with fewer or more of its addresses (a multi-homed PE
                // whose home registrar changed sees only the addresses of the new
                // association), so only disjoint address sets tell two endpoints apart.
                if let (Some(a), Some(b)) = (&old_asap, &pe.asap_transport)
                    && !a.addresses.iter().any(|x| {
                        b.addresses
                            .iter()
                            .any(|y| x.to_canonical() == y.to_canonical())
                    })
                    && old_owner == pe.home_registrar
                {
                    return Err(RegistrationError::NonUniqueIdentifier);
                }
                if old_owner != pe.home_registrar {
                    self.owner_remove(old_owner, handle, pe.identifier);
                    self.owner_add(pe.home_registrar, handle, pe.identifier);
                }
                if let Some((at, _)) = old_timer {
                    self.timers.remove(&(at, pool_idx, slot));
                }
                self.timers.insert((expiry, pool_idx, slot));
                if let Some(pool) = self.pool_mut(pool_idx) {
                    pool.selector.update(slot, &pe.policy, true);
                    if let Some(Some(e)) = pool.entries.get_mut(slot as usize) {
                        e.pe = pe;
                        e.timer = Some((expiry, TimerKind::Expiry));
                        e.marked = false;
                        e.unreachable_reports = 0;
                    }
                }
                Ok(Registered::Updated)
            }
            None => {
                let max_per_pool = self.config.max_pes_per_pool;
                let at_limit = self.pe_count >= self.config.max_pes;
                let pool = self
                    .pool_mut(pool_idx)
                    .ok_or(RegistrationError::LackOfResources)?;
                if pool.by_id.len() >= max_per_pool || at_limit {
                    let empty = pool.by_id.is_empty();
                    if empty {
                        self.drop_pool(pool_idx);
                    }
                    return Err(RegistrationError::LackOfResources);
                }
                let slot = match pool.free.pop() {
                    Some(s) => s,
                    None => {
                        pool.entries.push(None);
                        (pool.entries.len() - 1) as u32
                    }
                };
                pool.selector.insert(slot, &pe.policy);
                pool.by_id.insert(pe.identifier, slot);
                let (owner, id) = (pe.home_registrar, pe.identifier);
                if let Some(e) = pool.entries.get_mut(slot as usize) {
                    *e = Some(PeEntry {
                        pe,
                        timer: Some((expiry, TimerKind::Expiry)),
                        unreachable_reports: 0,
                        marked: false,
                    });
                }
                self.timers.insert((expiry, pool_idx, slot));
                self.owner_add(owner, handle, id);
                self.pe_count += 1;
                Ok(Registered::New)
            }
        }
    }

    fn owner_add(&mut self, owner: RegistrarId, handle: &PoolHandle, id: PeIdentifier) {
        let o = self.owners.entry(owner).or_default();
        if o.pes.insert((handle.clone(), id)) {
            o.checksum
                .add(ChecksumAccumulator::pe_contribution(handle.as_bytes(), id));
        }
    }

    fn owner_remove(&mut self, owner: RegistrarId, handle: &PoolHandle, id: PeIdentifier) {
        if let Some(o) = self.owners.get_mut(&owner) {
            if o.pes.remove(&(handle.clone(), id)) {
                o.checksum
                    .sub(ChecksumAccumulator::pe_contribution(handle.as_bytes(), id));
            }
            if o.pes.is_empty() {
                self.owners.remove(&owner);
            }
        }
    }

    fn drop_pool(&mut self, idx: u32) {
        if let Some(p) = self.pools.get_mut(idx as usize)
            && let Some(pool) = p.take()
        {
            self.by_handle.remove(&pool.handle);
            self.ordered.remove(&pool.handle);
            self.free_pools.push(idx);
        }
    }

    /// Removes a PE (deregistration, expiry, ENRP delete). The pool disappears with its
    /// last PE. Returns the removed PE.
    pub fn deregister(
        &mut self,
        handle: &[u8],
        id: PeIdentifier,
    ) -> Result<PoolElement, LookupError> {
        let idx = self
            .pool_index(handle)
            .ok_or(LookupError::UnknownPoolHandle)?;
        let pool = self.pool_mut(idx).ok_or(LookupError::UnknownPoolHandle)?;
        let slot = pool
            .by_id
            .remove(&id)
            .ok_or(LookupError::UnknownPoolElement)?;
        pool.selector.remove(slot);
        let entry = pool
            .entries
            .get_mut(slot as usize)
            .and_then(|e| e.take())
            .ok_or(LookupError::UnknownPoolElement)?;
        pool.free.push(slot);
        let empty = pool.by_id.is_empty();
        let handle = pool.handle.clone();
        if let Some((at, _)) = entry.timer {
            self.timers.remove(&(at, idx, slot));
        }
        self.owner_remove(entry.pe.home_registrar, &handle, id);
        self.pe_count -= 1;
        if empty {
            self.drop_pool(idx);
        }
        Ok(entry.pe)
    }

    /// Handle resolution (RFC 5352 §3.3): selects up to `k` PEs by the pool's policy
    /// (`k` is capped at [`HandlespaceConfig::max_pes_per_resolution`]).
    pub fn resolve(
        &mut self,
        handle: &[u8],
        k: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Resolution<'_>, LookupError> {
        let idx = self
            .pool_index(handle)
            .ok_or(LookupError::UnknownPoolHandle)?;
        let k = k.min(self.config.max_pes_per_resolution);
        self.scratch.clear();
        let pool = self
            .pools
            .get_mut(idx as usize)
            .and_then(|p| p.as_mut())
            .ok_or(LookupError::UnknownPoolHandle)?;
        pool.selector.select(k, rng, &mut self.scratch);
        let pool = self
            .pools
            .get(idx as usize)
            .and_then(|p| p.as_ref())
            .ok_or(LookupError::UnknownPoolHandle)?;
        Ok(Resolution {
            pool,
            slots: &self.scratch,
        })
    }

    /// Applies an ENRP_HANDLE_UPDATE (RFC 5353 §3.3): add/update or delete a copy.
    pub fn apply_update(
        &mut self,
        now: Timestamp,
        action: UpdateAction,
        handle: &PoolHandle,
        pe: PoolElement,
    ) -> Result<(), UpdateError> {
        match action {
            UpdateAction::ADD_PE => self
                .register(now, handle, pe)
                .map(|_| ())
                .map_err(UpdateError::Rejected),
            UpdateAction::DEL_PE => self
                .deregister(handle.as_bytes(), pe.identifier)
                .map(|_| ())
                .map_err(UpdateError::NotFound),
            other => Err(UpdateError::UnknownAction(other)),
        }
    }

    /// Counts an ENDPOINT_UNREACHABLE report (RFC 5352 §3.5); returns the count so far.
    /// The registrar removes the PE after its configured maximum (RSPLIB: 3).
    pub fn report_unreachable(
        &mut self,
        handle: &[u8],
        id: PeIdentifier,
    ) -> Result<u32, LookupError> {
        let e = self.entry_mut(handle, id)?;
        e.unreachable_reports = e.unreachable_reports.saturating_add(1);
        Ok(e.unreachable_reports)
    }

    fn slot_of(&self, handle: &[u8], id: PeIdentifier) -> Result<(u32, u32), LookupError> {
        let idx = self
            .pool_index(handle)
            .ok_or(LookupError::UnknownPoolHandle)?;
        let pool = self.pool(idx).ok_or(LookupError::UnknownPoolHandle)?;
        let slot = *pool.by_id.get(&id).ok_or(LookupError::UnknownPoolElement)?;
        Ok((idx, slot))
    }

    fn entry_mut(&mut self, handle: &[u8], id: PeIdentifier) -> Result<&mut PeEntry, LookupError> {
        let (idx, slot) = self.slot_of(handle, id)?;
        self.pool_mut(idx)
            .and_then(|p| p.entries.get_mut(slot as usize))
            .and_then(|e| e.as_mut())
            .ok_or(LookupError::UnknownPoolElement)
    }

    /// Sets (replaces) the PE's timer.
    pub fn set_timer(
        &mut self,
        handle: &[u8],
        id: PeIdentifier,
        at: Timestamp,
        kind: TimerKind,
    ) -> Result<(), LookupError> {
        let (idx, slot) = self.slot_of(handle, id)?;
        let e = self.entry_mut(handle, id)?;
        let old = e.timer.replace((at, kind));
        if let Some((old_at, _)) = old {
            self.timers.remove(&(old_at, idx, slot));
        }
        self.timers.insert((at, idx, slot));
        Ok(())
    }

    /// Cancels the PE's timer.
    pub fn cancel_timer(&mut self, handle: &[u8], id: PeIdentifier) -> Result<(), LookupError> {
        let (idx, slot) = self.slot_of(handle, id)?;
        let e = self.entry_mut(handle, id)?;
        if let Some((at, _)) = e.timer.take() {
            self.timers.remove(&(at, idx, slot));
        }
        Ok(())
    }

    /// The PE's pending timer.
    pub fn timer(&self, handle: &[u8], id: PeIdentifier) -> Option<(Timestamp, TimerKind)> {
        let (idx, slot) = self.slot_of(handle, id).ok()?;
        self.pool(idx)?.entries.get(slot as usize)?.as_ref()?.timer
    }

    /// The earliest pending timer.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.first().map(|(t, _, _)| *t)
    }

    /// Pops one timer due at `now` (the timer is cleared; the PE stays until the caller
    /// removes it). Call repeatedly until `None`.
    pub fn poll_expired(&mut self, now: Timestamp) -> Option<Expired> {
        loop {
            let &(at, idx, slot) = self.timers.first()?;
            if at > now {
                return None;
            }
            self.timers.remove(&(at, idx, slot));
            // Every timer entry belongs to a live PE; a stale one is skipped, not returned.
            let Some(Some(pool)) = self.pools.get_mut(idx as usize) else {
                continue;
            };
            let Some(Some(e)) = pool.entries.get_mut(slot as usize) else {
                continue;
            };
            let Some((_, kind)) = e.timer.take() else {
                continue;
            };
            return Some(Expired {
                pool_handle: pool.handle.clone(),
                identifier: e.pe.identifier,
                kind,
            });
        }
    }

    /// The RFC 5353 ownership checksum of the PEs `owner` owns (ENRP_PRESENCE).
    pub fn ownership_checksum(&self, owner: RegistrarId) -> u16 {
        self.owners
            .get(&owner)
            .map(|o| o.checksum)
            .unwrap_or_default()
            .finish()
    }

    /// Number of PEs `owner` owns.
    pub fn owned_count(&self, owner: RegistrarId) -> usize {
        self.owners.get(&owner).map(|o| o.pes.len()).unwrap_or(0)
    }

    /// The `(pool handle, PE id)` pairs `owner` owns, in order.
    pub fn owned_by(
        &self,
        owner: RegistrarId,
    ) -> impl Iterator<Item = &(PoolHandle, PeIdentifier)> + '_ {
        self.owners
            .get(&owner)
            .into_iter()
            .flat_map(|o| o.pes.iter())
    }

    /// Moves every PE of `from` to `to` (takeover, RFC 5353 §3.9). Returns the moved PEs'
    /// keys so the new owner can send ENDPOINT_KEEP_ALIVE with flag H to each.
    pub fn take_over(
        &mut self,
        from: RegistrarId,
        to: RegistrarId,
    ) -> Vec<(PoolHandle, PeIdentifier)> {
        let Some(old) = self.owners.remove(&from) else {
            return Vec::new();
        };
        let moved: Vec<_> = old.pes.into_iter().collect();
        for (h, id) in &moved {
            if let Ok(e) = self.entry_mut(h.as_bytes(), *id) {
                e.pe.home_registrar = to;
            }
            self.owner_add(to, h, *id);
        }
        moved
    }

    /// Marks every PE of `owner` (before a handle table synchronisation, RFC 5353 §3.8).
    /// Registrations and ENRP adds clear the mark; [`Handlespace::purge_marked`] removes
    /// what stayed marked.
    pub fn mark_owned(&mut self, owner: RegistrarId) {
        let keys: Vec<_> = self.owned_by(owner).cloned().collect();
        for (h, id) in keys {
            if let Ok(e) = self.entry_mut(h.as_bytes(), id) {
                e.marked = true;
            }
        }
    }

    /// Removes the PEs of `owner` still marked; returns them.
    pub fn purge_marked(&mut self, owner: RegistrarId) -> Vec<(PoolHandle, PoolElement)> {
        let keys: Vec<_> = self.owned_by(owner).cloned().collect();
        let mut out = Vec::new();
        for (h, id) in keys {
            let marked = self
                .entry_mut(h.as_bytes(), id)
                .map(|e| e.marked)
                .unwrap_or(false);
            if marked && let Ok(pe) = self.deregister(h.as_bytes(), id) {
                out.push((h, pe));
            }
        }
        out
    }

    /// Exports the handle table in pieces of at most `max_pes` PEs and about `max_bytes`
    /// encoded bytes (RFC 5353 §2.3; RSPLIB: 128 PEs per response). With `owner`, only that
    /// registrar's PEs (flag W). Start with `from = None`; pass the returned continuation
    /// to get the next piece. Cost O((pieces + PEs) log n).
    pub fn export(
        &self,
        owner: Option<RegistrarId>,
        from: Option<&Continuation>,
        max_pes: usize,
        max_bytes: usize,
    ) -> HandleTablePiece {
        let mut pools: Vec<(PoolHandle, Vec<PoolElement>)> = Vec::new();
        let mut count = 0usize;
        let mut bytes = 0usize;
        let mut last: Option<(PoolHandle, PeIdentifier)> = None;
        let mut more = false;
        let max_pes = max_pes.max(1);
        let mut push = |h: &PoolHandle, pe: &PoolElement| -> bool {
            let new_pool = pools.last().map(|(ph, _)| ph != h).unwrap_or(true);
            let cost = pe.encoded_len() + if new_pool { h.encoded_len() } else { 0 };
            if count >= max_pes || (count > 0 && bytes + cost > max_bytes) {
                return false;
            }
            if new_pool {
                pools.push((h.clone(), Vec::new()));
            }
            if let Some((_, pes)) = pools.last_mut() {
                pes.push(pe.clone());
            }
            count += 1;
            bytes += cost;
            last = Some((h.clone(), pe.identifier));
            true
        };
        match owner {
            Some(o) => {
                if let Some(ow) = self.owners.get(&o) {
                    let range = match from {
                        Some(c) => ow.pes.range((
                            Bound::Excluded((c.last_pool.clone(), c.last_pe)),
                            Bound::Unbounded,
                        )),
                        None => ow.pes.range::<(PoolHandle, PeIdentifier), _>(..),
                    };
                    for (h, id) in range {
                        if let Some(pe) = self.pool_element(h.as_bytes(), *id)
                            && !push(h, pe)
                        {
                            more = true;
                            break;
                        }
                    }
                }
            }
            None => {
                let start = match from {
                    Some(c) => Bound::Included(c.last_pool.clone()),
                    None => Bound::Unbounded,
                };
                'pools: for (h, idx) in self.ordered.range((start, Bound::Unbounded)) {
                    let Some(pool) = self.pool(*idx) else {
                        continue;
                    };
                    let ids = match from {
                        Some(c) if &c.last_pool == h => pool
                            .by_id
                            .range((Bound::Excluded(c.last_pe), Bound::Unbounded)),
                        _ => pool.by_id.range(..),
                    };
                    for (_, slot) in ids {
                        let Some(Some(e)) = pool.entries.get(*slot as usize) else {
                            continue;
                        };
                        if !push(h, &e.pe) {
                            more = true;
                            break 'pools;
                        }
                    }
                }
            }
        }
        HandleTablePiece {
            pools,
            next: if more {
                last.map(|(last_pool, last_pe)| Continuation { last_pool, last_pe })
            } else {
                None
            },
        }
    }
}

/// Why an ENRP handle update could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// The add was rejected (inconsistent pool, limits, ...).
    Rejected(RegistrationError),
    /// The delete named an unknown PE.
    NotFound(LookupError),
    /// An action other than add or delete.
    UnknownAction(UpdateAction),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Rejected(e) => write!(f, "{e}"),
            UpdateError::NotFound(e) => write!(f, "{e}"),
            UpdateError::UnknownAction(a) => write!(f, "unknown handle update action {a:?}"),
        }
    }
}

impl std::error::Error for UpdateError {}

/// A pool user's cache of handle resolutions (RFC 5351 §3.3, RSPLIB's PU-side cache).
///
/// Responses from the registrar are stored as a small handlespace whose entries expire
/// after the stale time; while fresh, the PU selects locally with the pool's policy
/// instead of asking the registrar again. Failure reports remove the PE locally.
#[derive(Debug, Clone)]
pub struct PuCache {
    handlespace: Handlespace,
    stale_time: Duration,
}

impl PuCache {
    /// RSPLIB's default stale time for cached resolutions.
    pub const DEFAULT_STALE_TIME: Duration = Duration::from_millis(250);

    /// An empty cache.
    pub fn new(config: HandlespaceConfig, stale_time: Duration) -> Self {
        PuCache {
            handlespace: Handlespace::new(config),
            stale_time,
        }
    }

    /// The stale time.
    pub fn stale_time(&self) -> Duration {
        self.stale_time
    }

    /// Stores the PEs of a handle resolution response received at `now`. PEs whose
    /// policy or transport does not fit the cached pool replace it.
    pub fn insert(&mut self, now: Timestamp, handle: &PoolHandle, pes: &[PoolElement]) {
        self.expire(now);
        for pe in pes {
            let mut pe = pe.clone();
            // The cache expires entries by its stale time, not by the registration life.
            pe.registration_life = u32::try_from(self.stale_time.as_millis()).unwrap_or(u32::MAX);
            if let Err(RegistrationError::InconsistentPolicy { .. })
            | Err(RegistrationError::InconsistentTransport)
            | Err(RegistrationError::InconsistentDataControl) =
                self.handlespace.register(now, handle, pe.clone())
            {
                self.flush(handle.as_bytes());
                let _ = self.handlespace.register(now, handle, pe);
            }
        }
    }

    /// Selects up to `k` fresh PEs of `handle`, or `None` when nothing fresh is cached
    /// (then the PU asks its registrar).
    pub fn resolve(
        &mut self,
        now: Timestamp,
        handle: &[u8],
        k: usize,
        rng: &mut dyn RngCore,
    ) -> Option<Vec<PoolElement>> {
        self.expire(now);
        let r = self.handlespace.resolve(handle, k, rng).ok()?;
        let v: Vec<PoolElement> = r.iter().cloned().collect();
        (!v.is_empty()).then_some(v)
    }

    /// Forgets a PE the PU found unreachable.
    pub fn remove(&mut self, handle: &[u8], id: PeIdentifier) {
        let _ = self.handlespace.deregister(handle, id);
    }

    /// Forgets a whole pool.
    pub fn flush(&mut self, handle: &[u8]) {
        let ids: Vec<PeIdentifier> = self
            .handlespace
            .pool_elements(handle)
            .map(|p| p.identifier)
            .collect();
        for id in ids {
            let _ = self.handlespace.deregister(handle, id);
        }
    }

    /// Drops stale entries.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(e) = self.handlespace.poll_expired(now) {
            let _ = self
                .handlespace
                .deregister(e.pool_handle.as_bytes(), e.identifier);
        }
    }

    /// When the next entry becomes stale.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.handlespace.next_deadline()
    }

    /// Number of cached PEs.
    pub fn len(&self) -> usize {
        self.handlespace.pe_count()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.handlespace.pe_count() == 0
    }
}

#[cfg(test)]
mod tests;
