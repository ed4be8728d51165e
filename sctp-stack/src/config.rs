//! Configuration of an [`Endpoint`](crate::Endpoint) and of its associations.
//!
//! Every protocol parameter of RFC 9260 §16 is here with its RFC default, together with the
//! resource limits of this implementation (buffers, stream counts, packet size). Nothing is
//! hard-coded elsewhere: a deployment tunes these values, a test shrinks them.
//!
//! [`AssociationConfig::validate`] rejects inconsistent combinations (an RTO.Min above
//! RTO.Max, a receive window smaller than the largest message, ...); the endpoint checks it
//! on construction and on every `connect`.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;

use crate::wire::{ChunkType, HmacId};

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value outside its allowed range; the string names the rule.
    Invalid(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid(why) => write!(f, "invalid SCTP configuration: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Tunables of one association. `Default` gives the RFC 9260 §16 values.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AssociationConfig {
    /// RTO.Initial (RFC 9260 §16): 1 s.
    pub rto_initial: Duration,
    /// RTO.Min: 1 s.
    pub rto_min: Duration,
    /// RTO.Max: 60 s.
    pub rto_max: Duration,
    /// RTO.Alpha in 1/1000 (RFC 9260 §16: 1/8 = 125).
    pub rto_alpha_permille: u16,
    /// RTO.Beta in 1/1000 (RFC 9260 §16: 1/4 = 250).
    pub rto_beta_permille: u16,
    /// The clock granularity G of RFC 9260 §6.3.1 (C2/C3): 1 ms.
    pub clock_granularity: Duration,
    /// Max.Burst: at most this many packets of new data in answer to one event (§6.1 D): 4.
    pub max_burst: u32,
    /// The L of Appropriate Byte Counting in slow start (§7.2.1, RFC 3465): 1 path MTU.
    pub slow_start_abc_limit: u32,
    /// Valid.Cookie.Life: 60 s. The lifetime put into the state cookies this endpoint signs.
    pub valid_cookie_life: Duration,
    /// Extra cookie lifetime requested with a Cookie Preservative after a Stale Cookie error
    /// is added to the measured staleness (RFC 9260 §5.2.6 says at most 1 s): 1 s.
    pub cookie_preservative_increment: Duration,
    /// Association.Max.Retrans: 10.
    pub association_max_retrans: u32,
    /// Path.Max.Retrans: 5.
    pub path_max_retrans: u32,
    /// Max.Init.Retransmits: 8.
    pub max_init_retransmits: u32,
    /// PF.Max.Retrans (PFMR) of RFC 7829 §5: a path whose error counter exceeds this enters
    /// the Potentially-Failed state, where no new data is sent to it while another active
    /// path exists and it is probed with a heartbeat every RTO. `Some(0)` (the default, as
    /// RFC 7829 §5.1 recommends) moves traffic away after the first timeout; `None` disables
    /// the PF state (plain RFC 9260 §8.2 behaviour). Must be below `path_max_retrans`.
    pub pf_max_retrans: Option<u32>,
    /// Primary Path Switchover (PSMR, RFC 7829 §6): when the primary path's error counter
    /// reaches this value, the active path the data moved to becomes the primary for good.
    /// `None` (the default): the data returns to the primary as soon as it is active again.
    pub primary_switchover: Option<u32>,
    /// HB.Max.Burst (RFC 9260 §16): at most this many heartbeats to unconfirmed addresses
    /// per RTO (RFC 9260 §5.4): 1.
    pub hb_max_burst: u32,
    /// HB.interval: 30 s. `None` disables heartbeats on idle paths (not recommended: a dead
    /// idle peer is then only detected when data is sent).
    pub heartbeat_interval: Option<Duration>,
    /// Delayed SACK timeout (RFC 9260 §6.2: at most 500 ms): 200 ms.
    pub delayed_sack_timeout: Duration,
    /// Acknowledge at least every this many packets carrying DATA (§6.2: 2).
    pub delayed_sack_packets: u32,
    /// Send a packet as soon as there is data, even if it is not full (disables the Nagle-like
    /// sender silly-window avoidance of RFC 9260 §6.1). Off by default.
    pub nodelay: bool,
    /// Bytes of user messages the association buffers for sending (queued and unacknowledged).
    /// `send` fails with `WouldBlock` beyond this: 1 MiB.
    pub send_buffer_size: usize,
    /// `SendSpace` is reported when the buffered bytes drop to this level after a
    /// `WouldBlock`: half the send buffer.
    pub send_low_water: usize,
    /// The receive buffer: bytes of received data (plus a per-chunk overhead) held for
    /// reassembly and for the application; the advertised receiver window (a_rwnd) is what is
    /// left of it: 1 MiB.
    pub receive_window: u32,
    /// The largest user message accepted for sending and for receiving, in bytes. A peer
    /// sending a larger message is aborted with an Out of Resource cause: 256 KiB.
    pub max_message_size: usize,
    /// Partial delivery point (RFC 6458 §8.1.21 `SCTP_PARTIAL_DELIVERY_POINT`): when set, a
    /// received message whose reassembled contiguous prefix reaches this many bytes is
    /// delivered in pieces ([`Message::piece`](crate::Message::piece)), so a message larger
    /// than the receive window can be received, and `max_message_size` then limits only
    /// what is sent. With DATA (not I-DATA) a message in partial delivery holds back every
    /// other message of the association until its last piece (head-of-line blocking, RFC
    /// 8260 §1). At most half the receive window. `None` (the default): whole messages only.
    pub partial_delivery_point: Option<usize>,
    /// Outbound streams requested (OS of INIT; the peer may lower it): 10.
    pub outbound_streams: u16,
    /// Inbound streams accepted (MIS of INIT): 2048, as usrsctp. Per-stream state (a few
    /// bytes) is allocated only for streams actually used.
    pub inbound_streams: u16,
    /// The IP-level path MTU: 1280 (the IPv6 minimum; safe everywhere). The largest SCTP
    /// packet is this minus the IP header (20 or 40 bytes) and, with UDP encapsulation, the
    /// UDP header (8 bytes). Raise it to the link MTU where known (e.g. 1500 on Ethernet).
    pub pmtu: u16,
    /// T5-shutdown-guard (RFC 9260 §9.2: 5 × RTO.Max): 300 s.
    pub shutdown_guard: Duration,
    /// Close the association gracefully after this long without data sent or received.
    /// `None` (the default) disables autoclose.
    pub autoclose: Option<Duration>,
    /// Offer PR-SCTP (RFC 3758): list Forward-TSN-Supported (and FORWARD TSN among the
    /// Supported Extensions, RFC 5061 §4.2.7) in INIT and INIT ACK, and use partial
    /// reliability when the peer supports it too. On by default, as in usrsctp and Linux.
    pub pr_sctp: bool,
    /// A fixed initial TSN instead of a random one. Only for tests and debugging (TSN wrap
    /// scenarios): RFC 9260 §5.3.1 wants it random. `None` by default.
    pub initial_tsn: Option<u32>,
    /// Offer SCTP-AUTH (RFC 4895): RANDOM, CHUNKS and HMAC-ALGO in INIT and INIT ACK. It is
    /// used when the peer offers it too. Off by default.
    pub auth: bool,
    /// Chunk types this side requires the peer to authenticate (the CHUNKS parameter, RFC
    /// 4895 §3.2). With [`AssociationConfig::asconf`] on, ASCONF and ASCONF ACK are always
    /// added (RFC 5061 §4.1). INIT, INIT ACK, SHUTDOWN COMPLETE and AUTH can never be listed
    /// (§3.2) and are dropped from the list.
    pub auth_chunks: Vec<ChunkType>,
    /// HMAC algorithms offered, in order of preference (the HMAC-ALGO parameter, RFC 4895
    /// §3.3). Only SHA-1 and SHA-256 are implemented; SHA-1 MUST be listed (§3.3). Default:
    /// SHA-256, then SHA-1.
    pub auth_hmacs: Vec<HmacId>,
    /// Endpoint-pair shared keys (RFC 4895 §6.1) known when an association starts, by key
    /// identifier. Key 0 is the empty key unless listed here. Keys can be added, activated and
    /// deleted on a running association through
    /// [`AssociationMut`](crate::AssociationMut).
    pub auth_keys: Vec<(u16, Vec<u8>)>,
    /// The shared key identifier used for outgoing AUTH chunks at the start (default 0).
    pub auth_active_key: u16,
    /// Offer dynamic address reconfiguration (Add-IP, RFC 5061): ASCONF and ASCONF ACK in the
    /// Supported Extensions. Needs [`AssociationConfig::auth`]: ASCONF is only sent or
    /// accepted authenticated (RFC 5061 §4.1), so it is used only when the peer supports both
    /// AUTH and ASCONF. Off by default.
    pub asconf: bool,
    /// The Adaptation Layer Indication (RFC 5061 §4.2.6) to send in INIT and INIT ACK, if any.
    pub adaptation_indication: Option<u32>,
    /// Which outbound stream sends next (the stream schedulers of RFC 8260 §3). With DATA
    /// chunks a message is sent whole before the next one is scheduled (its fragments need
    /// consecutive TSNs). Default: [`StreamScheduler::RoundRobin`].
    pub stream_scheduler: StreamScheduler,
    /// Offer I-DATA (RFC 8260): list I-DATA among the Supported Extensions; when the peer
    /// lists it too, user messages travel in I-DATA chunks (MID and FSN), fragments of
    /// messages on different streams interleave, and DATA chunks are refused. With PR-SCTP
    /// on, I-FORWARD TSN is listed too (RFC 8260 §2.3.1) and, when the peer lists it, used
    /// in both directions instead of FORWARD TSN. Off by default.
    pub i_data: bool,
    /// How this side numbers the fragments of its I-DATA messages (the FSN field).
    /// Default [`IDataFsn::Rfc8260`]. Whatever is set here, the sender switches to
    /// [`IDataFsn::Linux`] on its own once the peer was seen numbering that way (its
    /// receiver then expects the same), and the receiver recognizes either numbering.
    pub i_data_fsn: IDataFsn,
    /// Offer stream reconfiguration (RFC 6525): RE-CONFIG in the Supported Extensions
    /// (§3.1). When the peer lists it too, streams can be reset, the association's TSNs and
    /// SSNs reset and streams added; without it the user calls fail and a RE-CONFIG chunk
    /// from the peer is an unrecognized chunk (skipped, RFC 9260 §3.2). On by default, as in
    /// usrsctp.
    pub reconf: bool,
    /// What the peer may ask for with RE-CONFIG (the meaning of Linux's
    /// `SCTP_ENABLE_STREAM_RESET` flags); a request outside it is answered "Denied" (RFC 6525
    /// §4.4). Everything is allowed by default.
    pub reconf_policy: ReconfPolicy,
    /// The most streams in either direction that Add Outgoing/Incoming Streams may reach
    /// (RFC 6525 §5.2.5, §5.2.6; never more than 65535). Default 65535.
    pub reconf_max_streams: u16,
}

/// What the peer may request with RE-CONFIG (RFC 6525), as the flags of Linux's
/// `SCTP_ENABLE_STREAM_RESET` socket option: `reset_streams` is `SCTP_ENABLE_RESET_STREAM_REQ`,
/// `reset_association` is `SCTP_ENABLE_RESET_ASSOC_REQ`, `change_streams` is
/// `SCTP_ENABLE_CHANGE_ASSOC_REQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconfPolicy {
    /// The peer may reset streams: its Outgoing SSN Reset Request (its outgoing streams,
    /// our incoming ones) and Incoming SSN Reset Request (asking us to reset ours).
    pub reset_streams: bool,
    /// The peer may reset the whole association (SSN/TSN Reset Request, §4.3).
    pub reset_association: bool,
    /// The peer may add streams (Add Outgoing/Incoming Streams Request, §4.5, §4.6).
    pub change_streams: bool,
}

impl ReconfPolicy {
    /// Every request is allowed.
    pub const ALLOW_ALL: ReconfPolicy = ReconfPolicy {
        reset_streams: true,
        reset_association: true,
        change_streams: true,
    };
    /// Every request is denied.
    pub const DENY_ALL: ReconfPolicy = ReconfPolicy {
        reset_streams: false,
        reset_association: false,
        change_streams: false,
    };
}

impl Default for ReconfPolicy {
    fn default() -> Self {
        ReconfPolicy::ALLOW_ALL
    }
}

/// How the fragments of an I-DATA message are numbered (the FSN field, RFC 8260 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IDataFsn {
    /// RFC 8260 §2.1: the first fragment is FSN 0 (implicit, it carries the PPID), the
    /// second FSN 1, and so on.
    #[default]
    Rfc8260,
    /// The Linux kernel's numbering (up to at least 6.1): the first fragment carries the
    /// PPID, the second is FSN 0, the third FSN 1, and so on; its receiver expects exactly
    /// that and never completes a message numbered the RFC way.
    Linux,
}

/// A stream scheduler (RFC 8260 §3): picks the outbound stream whose next message is sent.
/// Per-stream priorities and weights are set on a running association through
/// [`AssociationMut`](crate::AssociationMut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamScheduler {
    /// First come first served (RFC 8260 §3.1): messages leave in the order they were
    /// handed to `send`, whatever their stream.
    Fcfs,
    /// Round robin (RFC 8260 §3.2): the streams with queued messages take turns.
    #[default]
    RoundRobin,
    /// Priority (RFC 8260 §3.4): the stream with the lowest priority value and queued data
    /// always goes first; streams of equal priority take turns. Streams default to
    /// priority 0.
    Priority,
    /// Weighted fair queueing (RFC 8260 §3.6): streams share the bandwidth in proportion to
    /// their weights (bytes, self-clocked fair queueing). Streams default to weight 1.
    WeightedFair,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        AssociationConfig {
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_secs(1),
            rto_max: Duration::from_secs(60),
            rto_alpha_permille: 125,
            rto_beta_permille: 250,
            clock_granularity: Duration::from_millis(1),
            max_burst: 4,
            slow_start_abc_limit: 1,
            valid_cookie_life: Duration::from_secs(60),
            cookie_preservative_increment: Duration::from_secs(1),
            association_max_retrans: 10,
            path_max_retrans: 5,
            max_init_retransmits: 8,
            pf_max_retrans: Some(0),
            primary_switchover: None,
            hb_max_burst: 1,
            heartbeat_interval: Some(Duration::from_secs(30)),
            delayed_sack_timeout: Duration::from_millis(200),
            delayed_sack_packets: 2,
            nodelay: false,
            send_buffer_size: 1 << 20,
            send_low_water: 1 << 19,
            receive_window: 1 << 20,
            max_message_size: 256 * 1024,
            partial_delivery_point: None,
            outbound_streams: 10,
            inbound_streams: 2048,
            pmtu: 1280,
            shutdown_guard: Duration::from_secs(300),
            autoclose: None,
            pr_sctp: true,
            initial_tsn: None,
            auth: false,
            auth_chunks: Vec::new(),
            auth_hmacs: vec![HmacId::SHA256, HmacId::SHA1],
            auth_keys: Vec::new(),
            auth_active_key: 0,
            asconf: false,
            adaptation_indication: None,
            stream_scheduler: StreamScheduler::RoundRobin,
            i_data: false,
            i_data_fsn: IDataFsn::Rfc8260,
            reconf: true,
            reconf_policy: ReconfPolicy::ALLOW_ALL,
            reconf_max_streams: u16::MAX,
        }
    }
}

/// The smallest path MTU accepted: below 512 bytes a DATA chunk would carry almost nothing.
pub const MIN_PMTU: u16 = 512;

impl AssociationConfig {
    /// Checks the configuration for values that cannot work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why| Err(ConfigError::Invalid(why));
        if self.rto_min.is_zero() {
            return bad("rto_min must be positive");
        }
        if self.rto_min > self.rto_max {
            return bad("rto_min must not exceed rto_max");
        }
        if self.rto_initial < self.rto_min || self.rto_initial > self.rto_max {
            return bad("rto_initial must lie between rto_min and rto_max");
        }
        if self.rto_alpha_permille == 0 || self.rto_alpha_permille > 1000 {
            return bad("rto_alpha_permille must be in 1..=1000");
        }
        if self.rto_beta_permille == 0 || self.rto_beta_permille > 1000 {
            return bad("rto_beta_permille must be in 1..=1000");
        }
        if self.max_burst == 0 {
            return bad("max_burst must be at least 1");
        }
        if self.slow_start_abc_limit == 0 {
            return bad("slow_start_abc_limit must be at least 1");
        }
        if self.valid_cookie_life.is_zero() {
            return bad("valid_cookie_life must be positive");
        }
        if self.association_max_retrans == 0 || self.path_max_retrans == 0 {
            return bad("retransmission limits must be at least 1");
        }
        if self
            .pf_max_retrans
            .is_some_and(|pf| pf >= self.path_max_retrans)
        {
            // RFC 7829 §5.1: PFMR is below PMR (otherwise the PF state is never entered).
            return bad("pf_max_retrans must be below path_max_retrans (RFC 7829 §5.1)");
        }
        if self.hb_max_burst == 0 {
            return bad("hb_max_burst must be at least 1");
        }
        if self.delayed_sack_timeout > Duration::from_millis(500) {
            // RFC 9260 §6.2: the delay MUST NOT exceed 500 ms.
            return bad("delayed_sack_timeout must not exceed 500 ms (RFC 9260 §6.2)");
        }
        if self.delayed_sack_packets == 0 || self.delayed_sack_packets > 2 {
            // RFC 9260 §6.2: a SACK SHOULD be generated for at least every second packet.
            return bad("delayed_sack_packets must be 1 or 2 (RFC 9260 §6.2)");
        }
        if self.outbound_streams == 0 || self.inbound_streams == 0 {
            // RFC 9260 §3.3.2: OS and MIS MUST NOT be 0.
            return bad("stream counts must be at least 1 (RFC 9260 §3.3.2)");
        }
        if self.pmtu < MIN_PMTU {
            return bad("pmtu must be at least 512");
        }
        if self.max_message_size == 0 {
            return bad("max_message_size must be positive");
        }
        if self.send_buffer_size < self.max_message_size {
            return bad("send_buffer_size must hold at least one message of max_message_size");
        }
        if self.send_low_water > self.send_buffer_size {
            return bad("send_low_water must not exceed send_buffer_size");
        }
        // A message that spans the cumulative ack point must always fit in the receive
        // buffer, or reassembly could deadlock; leave room for per-chunk overhead too.
        let needed = (self.max_message_size as u64)
            .saturating_add(self.max_message_size as u64 / 4)
            .saturating_add(4 * u64::from(self.pmtu));
        if let Some(p) = self.partial_delivery_point
            && (p == 0 || p > self.receive_window as usize / 2)
        {
            return bad(
                "partial_delivery_point must be positive and at most half the receive_window",
            );
        }
        if u64::from(self.receive_window) < needed && self.partial_delivery_point.is_none() {
            return bad(
                "receive_window must exceed max_message_size by a quarter plus four path MTUs",
            );
        }
        if self.receive_window < 1500 {
            return bad("receive_window must be at least 1500 bytes");
        }
        if self.auth {
            if !self.auth_hmacs.contains(&HmacId::SHA1) {
                // RFC 4895 §3.3: SHA-1 MUST be in every HMAC-ALGO list.
                return bad("auth_hmacs must list SHA1 (RFC 4895 §3.3)");
            }
            if self
                .auth_hmacs
                .iter()
                .any(|h| *h != HmacId::SHA1 && *h != HmacId::SHA256)
            {
                return bad("auth_hmacs may list only SHA1 and SHA256");
            }
            if self.auth_hmacs.len() > 8 || self.auth_chunks.len() > 64 || self.auth_keys.len() > 64
            {
                return bad("auth lists too long");
            }
            if self.auth_keys.iter().any(|(_, k)| k.len() > 1024) {
                return bad("auth keys must not exceed 1024 bytes");
            }
            if self.auth_active_key != 0
                && !self
                    .auth_keys
                    .iter()
                    .any(|(id, _)| *id == self.auth_active_key)
            {
                return bad("auth_active_key must name a key of auth_keys (or be 0)");
            }
        }
        if self.asconf && !self.auth {
            // RFC 5061 §4.1: ASCONF is only used with AUTH.
            return bad("asconf needs auth (RFC 5061 §4.1)");
        }
        Ok(())
    }
}

/// Configuration of an [`Endpoint`](crate::Endpoint).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Seed of the endpoint's random number generator (verification tags, initial TSNs,
    /// cookie secrets, heartbeat nonces and jitter). Use a fresh random seed in production;
    /// a fixed seed makes a test reproducible.
    pub rng_seed: [u8; 32],
    /// The shard this endpoint serves, in `0..shard_count`. Local verification tags are
    /// chosen so that [`tag_owner`](crate::endpoint::tag_owner)`(tag, shard_count) == shard`,
    /// which lets a multi-core driver steer packets by tag.
    pub shard: u32,
    /// Number of shards (1 for a single-threaded driver).
    pub shard_count: u32,
    /// How often the HMAC secret that signs state cookies is replaced. Cookies signed with
    /// the previous secret are still accepted, so this must be at least the cookie lifetime
    /// (plus any preservative extension); the default is one hour.
    pub cookie_secret_lifetime: Duration,
    /// Defaults for associations (accepted ones use them as is; `connect` may override).
    pub association: AssociationConfig,
    /// Associations this endpoint holds at most; INITs beyond it are answered with ABORT
    /// (Out of Resource) when the cookie echo arrives: 1,000,000.
    pub max_associations: usize,
    /// Packets generated by the endpoint itself (INIT ACK, ABORT and SHUTDOWN COMPLETE for
    /// out-of-the-blue packets) waiting for `poll_transmit`; beyond this they are dropped,
    /// which rate-limits replies to floods: 256.
    pub max_pending_replies: usize,
    /// Largest INIT chunk accepted (it is carried inside the state cookie): 1500 bytes.
    pub max_init_size: usize,
    /// The local addresses of a multi-homed endpoint (RFC 9260 §6.4), listed as IPv4/IPv6
    /// Address parameters in the INIT and INIT ACK this endpoint sends, so the peer can use
    /// each as a destination. Empty (the default): single-homed, the peer uses the source
    /// address of our packets. The driver must be able to send from and receive on every
    /// address listed; wildcard, multicast and broadcast addresses are rejected.
    pub local_addresses: Vec<IpAddr>,
    /// Whether packets for a port this endpoint neither listens on nor uses in an
    /// association get the out-of-the-blue answers of RFC 9260 §8.4 (ABORT, SHUTDOWN
    /// COMPLETE). True (the default) when the endpoint owns the transport, as with UDP
    /// encapsulation. Set it to false when other SCTP stacks share the transport: every raw
    /// IP protocol 132 socket of a host sees every SCTP packet, so an endpoint answering for
    /// ports it does not own would abort the associations of another process on the host.
    /// Such packets are then dropped and counted in `EndpointStats::foreign_port`.
    pub answer_foreign_ports: bool,
    /// Leave the CRC32c of the packets this endpoint writes to the link (checksum offload):
    /// [`poll_transmit`](crate::Endpoint::poll_transmit) then leaves the checksum field of
    /// the common header zero in the packets of established associations and in the
    /// endpoint's replies (INIT and COOKIE ECHO still carry a computed checksum), and the
    /// link MUST compute the checksum of every packet before it leaves (a NIC with SCTP
    /// checksum offload, or software in the link for a zero field). RFC 9260 §6.8 requires the
    /// checksum on every packet; set this only with a link that guarantees it. False (the
    /// default): the endpoint computes the CRC32c itself. Receive-side offload is per packet,
    /// see [`Endpoint::handle_datagram_checked`](crate::Endpoint::handle_datagram_checked).
    pub tx_checksum_offload: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            rng_seed: [0; 32],
            shard: 0,
            shard_count: 1,
            cookie_secret_lifetime: Duration::from_secs(3600),
            association: AssociationConfig::default(),
            max_associations: 1_000_000,
            max_pending_replies: 256,
            max_init_size: 1500,
            local_addresses: Vec::new(),
            answer_foreign_ports: true,
            tx_checksum_offload: false,
        }
    }
}

impl EndpointConfig {
    /// A default configuration with the given RNG seed.
    pub fn with_seed(rng_seed: [u8; 32]) -> Self {
        EndpointConfig {
            rng_seed,
            ..EndpointConfig::default()
        }
    }

    /// Checks the configuration, including the default association configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.association.validate()?;
        if self.shard_count == 0 || self.shard >= self.shard_count {
            return Err(ConfigError::Invalid("shard must be below shard_count"));
        }
        let cookie_span = self
            .association
            .valid_cookie_life
            .saturating_add(Duration::from_secs(60));
        if self.cookie_secret_lifetime < cookie_span {
            return Err(ConfigError::Invalid(
                "cookie_secret_lifetime must exceed valid_cookie_life by at least 60 s",
            ));
        }
        if self.max_init_size < 20 {
            return Err(ConfigError::Invalid("max_init_size must be at least 20"));
        }
        if self.local_addresses.len() > crate::association::MAX_LOCAL_ADDRESSES {
            return Err(ConfigError::Invalid("at most 16 local addresses"));
        }
        if self
            .local_addresses
            .iter()
            .any(|a| !crate::association::is_unicast(*a))
        {
            return Err(ConfigError::Invalid(
                "local addresses must be unicast (no wildcard, multicast or broadcast)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_rfc_9260_section_16_values_and_valid() {
        let c = AssociationConfig::default();
        assert_eq!(c.rto_initial, Duration::from_secs(1));
        assert_eq!(c.rto_min, Duration::from_secs(1));
        assert_eq!(c.rto_max, Duration::from_secs(60));
        assert_eq!((c.rto_alpha_permille, c.rto_beta_permille), (125, 250));
        assert_eq!(c.max_burst, 4);
        assert_eq!(c.valid_cookie_life, Duration::from_secs(60));
        assert_eq!(c.association_max_retrans, 10);
        assert_eq!(c.path_max_retrans, 5);
        assert_eq!(c.max_init_retransmits, 8);
        assert_eq!(c.heartbeat_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.shutdown_guard, Duration::from_secs(300));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(EndpointConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_receive_window_smaller_than_a_message_is_rejected() {
        let c = AssociationConfig {
            receive_window: 100_000,
            max_message_size: 100_000,
            ..AssociationConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_delayed_sack_above_500_ms_is_rejected() {
        let c = AssociationConfig {
            delayed_sack_timeout: Duration::from_millis(600),
            ..AssociationConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn auth_needs_sha1_and_add_ip_needs_auth() {
        let ok = AssociationConfig {
            auth: true,
            asconf: true,
            ..AssociationConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        // RFC 4895 §3.3: SHA-1 MUST be listed.
        let no_sha1 = AssociationConfig {
            auth_hmacs: vec![HmacId::SHA256],
            ..ok.clone()
        };
        assert!(no_sha1.validate().is_err());
        let unknown = AssociationConfig {
            auth_hmacs: vec![HmacId::SHA1, HmacId(2)],
            ..ok.clone()
        };
        assert!(unknown.validate().is_err());
        // RFC 5061 §4.1: no Add-IP without AUTH.
        let no_auth = AssociationConfig {
            auth: false,
            ..ok.clone()
        };
        assert!(no_auth.validate().is_err());
        let bad_active = AssociationConfig {
            auth_active_key: 3,
            ..ok
        };
        assert!(bad_active.validate().is_err());
    }
}
