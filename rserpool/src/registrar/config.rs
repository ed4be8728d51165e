//! Registrar configuration: timers (RSPLIB defaults), limits and access control.

use core::time::Duration;
use std::net::IpAddr;

use crate::handlespace::HandlespaceConfig;
use crate::wire::{PoolHandle, RegistrarId, TransportParameter, TransportUse};

/// An IP prefix (`address/length`) for access lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    address: IpAddr,
    length: u8,
}

impl IpPrefix {
    /// A prefix; `length` is capped at 32 (IPv4) or 128 (IPv6).
    pub fn new(address: IpAddr, length: u8) -> Self {
        let max = if address.is_ipv4() { 32 } else { 128 };
        IpPrefix {
            address: address.to_canonical(),
            length: length.min(max),
        }
    }

    /// The prefix matching exactly one address.
    pub fn host(address: IpAddr) -> Self {
        Self::new(address, 128)
    }

    /// Whether `addr` lies in the prefix (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        let addr = addr.to_canonical();
        if addr.is_ipv4() != self.address.is_ipv4() {
            return false;
        }
        let len = u32::from(self.length);
        if len == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - len);
        bits(addr) & mask == bits(self.address) & mask
    }
}

/// One access rule: addresses in `prefix` may use the listed pool handles (all handles
/// when `pool_handles` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// Who.
    pub prefix: IpPrefix,
    /// Which pools (empty = any).
    pub pool_handles: Vec<PoolHandle>,
}

/// An access list (RFC 5355 asks registrars to authorize PEs and PUs). Empty = everyone
/// may do everything; otherwise an operation is allowed when at least one rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    /// The rules; the list allows when any rule matches (or when there are none).
    pub rules: Vec<AccessRule>,
}

impl AccessList {
    /// Everyone may do everything.
    pub fn allow_all() -> Self {
        AccessList::default()
    }

    /// Whether `addr` may use `handle`.
    pub fn allows(&self, addr: IpAddr, handle: &PoolHandle) -> bool {
        self.rules.is_empty()
            || self.rules.iter().any(|r| {
                r.prefix.contains(addr)
                    && (r.pool_handles.is_empty() || r.pool_handles.contains(handle))
            })
    }
}

/// A token bucket rate: `per_second` tokens refill per second up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained operations per second.
    pub per_second: u32,
    /// Operations allowed back to back.
    pub burst: u32,
}

/// Everything a [`Registrar`](super::Registrar) can be told. `Default` gives RSPLIB's timer
/// values, verification of PE addresses, no ACLs, no rate limits and generous but finite
/// limits.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The server identifier; [`RegistrarId::UNDEFINED`] picks a random non-zero one
    /// (RFC 5353 §3.2.1).
    pub server_id: RegistrarId,
    /// The registrar's ASAP endpoint, sent in SERVER_ANNOUNCE.
    pub asap_transports: Vec<TransportParameter>,
    /// The registrar's ENRP endpoint, sent in its Server Information parameter.
    pub enrp_transport: TransportParameter,
    /// Statically configured ENRP peers (their ENRP endpoints; identifiers are learned from
    /// their PRESENCE).
    pub static_peers: Vec<TransportParameter>,
    /// Whether PRESENCE is also sent to the ENRP multicast group (in addition to the
    /// group-casts over SCTP associations of RFC 5353 §3.1).
    pub enrp_multicast: bool,
    /// Whether PRESENCE from registrars not yet in the peer table adds them (discovery by
    /// announcements, RFC 5353 §3.4.1). Static peers are always accepted.
    pub discover_peers: bool,
    /// Handlespace limits (pool handle length, PEs per resolution, max pools, max PEs).
    pub handlespace: HandlespaceConfig,
    /// MaxHResItems: most PEs in one handle resolution response (RSPLIB: 3).
    pub max_handle_resolution_items: usize,
    /// Interval between ENDPOINT_KEEP_ALIVEs to an owned PE (RSPLIB: 5 s).
    pub keep_alive_interval: Duration,
    /// How long to wait for ENDPOINT_KEEP_ALIVE_ACK (RSPLIB: 5 s).
    pub keep_alive_timeout: Duration,
    /// MaxBadPEReports: ENDPOINT_UNREACHABLE reports that remove a PE (RSPLIB: 3).
    pub max_bad_pe_reports: u32,
    /// SERVER_ANNOUNCE interval; `None` disables announces.
    pub announce_interval: Option<Duration>,
    /// PRESENCE interval (RSPLIB: 2.44 s).
    pub presence_interval: Duration,
    /// MaxTimeLastHeard: silence after which a peer is asked for PRESENCE (RSPLIB: 5 s).
    pub max_time_last_heard: Duration,
    /// MaxTimeNoResponse: no answer to that request -> takeover (RSPLIB: 5 s).
    pub max_time_no_response: Duration,
    /// Takeover expiry: how long to wait for INIT_TAKEOVER_ACKs (RSPLIB: 5 s).
    pub takeover_expiry: Duration,
    /// How long a starting registrar looks for a mentor before serving alone.
    pub mentor_hunt_timeout: Duration,
    /// How long a handle table transfer (mentor or audit) may take before it is abandoned.
    pub table_transfer_timeout: Duration,
    /// PEs per HANDLE_TABLE_RESPONSE (RSPLIB: 128).
    pub max_handle_table_pes: usize,
    /// Approximate bytes per HANDLE_TABLE_RESPONSE.
    pub max_handle_table_bytes: usize,
    /// Keep only the registered addresses that belong to the PE's association, and
    /// reject registrations left without any (RSPLIB behaviour).
    pub verify_pe_addresses: bool,
    /// Who may register into which pools (checked against every association address).
    pub registration_acl: AccessList,
    /// Who may resolve which pools.
    pub resolution_acl: AccessList,
    /// Per-PU limit on HANDLE_RESOLUTION.
    pub resolution_rate: Option<RateLimit>,
    /// Per-PU limit on ENDPOINT_UNREACHABLE.
    pub unreachable_rate: Option<RateLimit>,
    /// Most PU addresses tracked by the rate limiters.
    pub max_rate_limited_users: usize,
    /// Most PEs this registrar is home for.
    pub max_owned_pes: usize,
    /// Most PEs registered over associations from one address.
    pub max_pes_per_address: usize,
    /// Most ENRP peers.
    pub max_peers: usize,
    /// Longest message accepted; longer input is dropped unread.
    pub max_message_len: usize,
    /// Most queued transmits; more are dropped and counted.
    pub max_transmits: usize,
    /// Most queued events; more are dropped and counted.
    pub max_events: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            server_id: RegistrarId::UNDEFINED,
            asap_transports: Vec::new(),
            enrp_transport: TransportParameter::sctp(
                crate::wire::PORT_ENRP,
                TransportUse::DATA_ONLY,
                Vec::new(),
            ),
            static_peers: Vec::new(),
            enrp_multicast: false,
            discover_peers: true,
            handlespace: HandlespaceConfig::default(),
            max_handle_resolution_items: 3,
            keep_alive_interval: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(5),
            max_bad_pe_reports: 3,
            announce_interval: Some(Duration::from_secs(1)),
            presence_interval: Duration::from_millis(2440),
            max_time_last_heard: Duration::from_secs(5),
            max_time_no_response: Duration::from_secs(5),
            takeover_expiry: Duration::from_secs(5),
            mentor_hunt_timeout: Duration::from_secs(5),
            table_transfer_timeout: Duration::from_secs(15),
            max_handle_table_pes: 128,
            max_handle_table_bytes: 16_000,
            verify_pe_addresses: true,
            registration_acl: AccessList::allow_all(),
            resolution_acl: AccessList::allow_all(),
            resolution_rate: None,
            unreachable_rate: None,
            max_rate_limited_users: 4096,
            max_owned_pes: 100_000,
            max_pes_per_address: 1024,
            max_peers: 64,
            max_message_len: 65_535,
            max_transmits: 65_536,
            max_events: 4096,
        }
    }
}
