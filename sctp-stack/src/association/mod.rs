//! One SCTP association: the RFC 9260 state machine with its data sender and receiver.
//!
//! The [`Endpoint`](crate::Endpoint) owns associations and routes packets, timeouts and user
//! commands to them; users reach one through [`AssociationMut`](crate::AssociationMut).
//!
//! Design:
//! - The state is an enum whose variants own what exists only in that state (the cookie
//!   being retransmitted, retransmission counts); the TCB fields that exist from the first
//!   INIT on (tags, ports, paths, timers) live in the association itself, and the data path
//!   (sender and receiver) exists from the moment the peer's parameters are known.
//! - All timers are in one timer table; backoff lives in the paths' RTO.
//! - Every protocol violation maps to its wire response in one place (`Violation`).
//! - PR-SCTP (RFC 3758 with the RFC 7496 policies) is offered in INIT and INIT ACK when
//!   [`AssociationConfig::pr_sctp`] is set and used when the peer offers it too. The sender
//!   abandons messages by lifetime (the `PrLifetime` timer fires exactly at the earliest
//!   one), by retransmission count (when a chunk is marked for retransmission) or by
//!   priority (in `send`, when the buffer is full), and tells the peer with a FORWARD TSN;
//!   the receiver skips the TSNs and SSNs it names. Without PR-SCTP on the association all
//!   messages are reliable and a FORWARD TSN from the peer is an unrecognized chunk.
//! - SCTP-AUTH (RFC 4895, `auth`), Add-IP (RFC 5061, `asconf`) and RE-CONFIG (RFC 6525,
//!   `reconf`) exist only once negotiated (`Option`s): without them the DATA/SACK path tests
//!   one `None` per chunk (RE-CONFIG: one flag more while a reset of ours or the peer's is
//!   pending). With
//!   AUTH, `poll_transmit` inserts an AUTH chunk before the first chunk the peer requires
//!   authenticated and signs the packet before the checksum; `handle_packet` verifies AUTH
//!   chunks and drops chunks this side requires authenticated that come without one.
//! - Packets are produced on demand by `poll_transmit`: control chunks first, then DATA,
//!   bundled up to the path MTU. Nothing is encoded ahead of time except replies that must
//!   outlive the association (ABORT), which go to the endpoint's reply queue.

mod asconf;
pub(crate) mod auth;
pub(crate) mod chunk;
pub(crate) mod fasthash;
mod inbound;
mod outbound;
mod path;
mod reconf;
pub(crate) mod timer;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::config::{AssociationConfig, IDataFsn};
use crate::cookie::CookieContents;
use crate::serial::{Fsn, Mid, Tsn};
use crate::time::Timestamp;
use crate::wire::{
    Abort, COMMON_HEADER_LEN, CauseCode, ChunkType, CommonHeader, CookieAck, CookieEcho, Data,
    Encode, ErrorChunk, FixedList, ForwardTsn, ForwardTsnStream, GapAckBlock, Heartbeat,
    HeartbeatAck, IData, IForwardTsn, IForwardTsnStream, Init, InitAck, Packet, PacketBuilder,
    Param, ParamType, Ppid, RawChunk, Sack, Shutdown, ShutdownAck, ShutdownComplete, TlvList,
};

pub(crate) use chunk::push_cause;
use inbound::{DataVerdict, ForwardVerdict, Inbound, PeerFsn};
use outbound::{FillLimits, Outbound};
use path::{MAX_PATHS, Path};
use timer::{PathIdx, Timer, TimerTable};

use asconf::AsconfState;
pub use asconf::{AddressRequest, AsconfError, PeerAddressChange};
pub use auth::AuthKeyError;
use auth::{Auth, LocalAuth, PeerAuth, Verdict};
pub use inbound::{Message, Piece};
pub use outbound::{PrPolicy, SendError, SendOptions};
pub use path::PathState;
use reconf::ReconfState;
pub use reconf::{ReconfError, ReconfOutcome, StreamDirection};

/// Identifies an association within its [`Endpoint`](crate::Endpoint): a slab index and
/// a generation, so a stale id never reaches a newer association in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssociationId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl AssociationId {
    /// The slab index (stable while the association lives; reused afterwards).
    pub fn index(self) -> u32 {
        self.index
    }
}

/// The externally visible state of an association (RFC 9260 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssociationState {
    /// INIT sent, waiting for INIT ACK.
    CookieWait,
    /// COOKIE ECHO sent, waiting for COOKIE ACK.
    CookieEchoed,
    /// Data flows both ways.
    Established,
    /// The user asked to shut down; waiting for outstanding data to be acknowledged.
    ShutdownPending,
    /// SHUTDOWN sent.
    ShutdownSent,
    /// SHUTDOWN received; sending the remaining data.
    ShutdownReceived,
    /// SHUTDOWN ACK sent.
    ShutdownAckSent,
    /// Gone.
    Closed,
}

/// An error cause received in an ABORT or ERROR chunk (RFC 9260 §3.3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCause {
    /// The cause code.
    pub code: CauseCode,
    /// The cause-specific information (without the 4-byte cause header).
    pub info: Vec<u8>,
}

/// Why an association was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// The peer sent ABORT with these causes.
    Peer(Vec<ErrorCause>),
    /// This side sent ABORT with this cause (user request, protocol violation, shutdown
    /// guard expiry, ...).
    Local(ErrorCause),
}

/// Why the peer is considered unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// INIT or COOKIE ECHO retransmitted Max.Init.Retransmits times without answer.
    HandshakeTimeout,
    /// The association error counter exceeded Association.Max.Retrans (RFC 9260 §8.1).
    MaxRetransmissions,
    /// The peer rejected our cookie as stale too often (RFC 9260 §5.2.6).
    StaleCookie,
}

/// What happened on an association, reported by
/// [`Endpoint::poll_event`](crate::Endpoint::poll_event).
///
/// Every association ends with exactly one [`Event::Closed`], after which its id is
/// invalid; it is preceded by the reason (`ShutdownComplete`, `Aborted` or
/// `CommunicationLost`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; data can be sent.
    Connected,
    /// Messages are ready for `recv` (reported when the queue becomes non-empty).
    DataReadable,
    /// The send buffer drained below its low-water mark after `send` returned `WouldBlock`.
    SendSpace,
    /// The peer restarted the association (RFC 9260 §5.2.4 A); data in flight was dropped.
    Restarted,
    /// The peer started a graceful shutdown; no more data can be sent.
    ShutdownReceived,
    /// The graceful shutdown completed.
    ShutdownComplete,
    /// The association was aborted.
    Aborted(AbortReason),
    /// The peer is unreachable.
    CommunicationLost(LostReason),
    /// The peer reported an error (ERROR chunk) that did not end the association. Dropped
    /// when thousands of events wait unread.
    PeerError(ErrorCause),
    /// A path (one of the peer's addresses) changed its reachability state (RFC 9260 §8.2,
    /// RFC 7829): confirmed by a heartbeat (`Unconfirmed` -> `Active`), potentially failed,
    /// inactive, or back in service.
    PathChange {
        /// The peer address of the path.
        addr: IpAddr,
        /// Its new state.
        state: PathState,
    },
    /// A request of `add_local_address`, `remove_local_address` or `request_peer_primary`
    /// was answered by the peer's ASCONF ACK (RFC 5061 §5.3): `error` is `None` when it was
    /// accepted, else the cause the peer gave (Delete Last Remaining IP Address, Delete
    /// Source IP Address, Resource Shortage, Unresolvable Address, ...).
    AddressRequestDone {
        /// The request.
        request: AddressRequest,
        /// The peer's error cause, if it refused.
        error: Option<CauseCode>,
    },
    /// The peer added, deleted or asked to make primary one of its addresses with an
    /// authenticated ASCONF (RFC 5061 §5.2). Dropped when thousands of events wait unread.
    PeerAddressChange {
        /// The peer's address.
        addr: IpAddr,
        /// What changed.
        change: PeerAddressChange,
    },
    /// A stream reset ended (RFC 6525): our request to reset our outgoing streams was
    /// answered (`Outgoing`), the peer reset its outgoing streams so ours incoming restart
    /// at SSN 0 (`Incoming`, `Performed`), or our request that the peer reset them was
    /// refused (`Incoming`, not `Performed`). `streams` empty means all.
    StreamReset {
        /// Whose streams.
        direction: StreamDirection,
        /// The streams (empty: all).
        streams: Vec<u16>,
        /// How it ended.
        outcome: ReconfOutcome,
    },
    /// An SSN/TSN reset of the whole association ended (RFC 6525 §5.1.4, §5.2.4): when
    /// performed, our next TSN and the peer's next TSN (0 otherwise); every SSN restarted.
    AssociationReset {
        /// How it ended.
        outcome: ReconfOutcome,
        /// The TSN of our next DATA chunk.
        local_next_tsn: u32,
        /// The TSN expected in the peer's next DATA chunk.
        peer_next_tsn: u32,
    },
    /// The number of streams changed, or our request to add streams was refused (RFC 6525
    /// §5.1.5, §5.1.6, §5.2.5): the counts after it.
    StreamChange {
        /// How it ended.
        outcome: ReconfOutcome,
        /// Outbound streams now.
        outbound_streams: u16,
        /// Inbound streams now.
        inbound_streams: u16,
    },
    /// A message being delivered in pieces (partial delivery, see
    /// [`Message::piece`]) will not be completed: the peer abandoned it (a FORWARD TSN or
    /// I-FORWARD TSN skipped its rest, RFC 6458 `SCTP_PARTIAL_DELIVERY_ABORTED`). It comes
    /// after the pieces delivered before.
    PartialDeliveryAborted {
        /// The stream the message arrived on.
        stream: u16,
        /// The message: [`Piece::message`](crate::Piece) of its pieces.
        message: u64,
    },
    /// The association is gone; this is its last event.
    Closed,
}

/// A snapshot of an association's state, for monitoring.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AssociationStatus {
    /// The state.
    pub state: AssociationState,
    /// The local port.
    pub local_port: u16,
    /// The peer's port.
    pub peer_port: u16,
    /// The peer address of the primary path.
    pub primary: IpAddr,
    /// All peer addresses (one per path).
    pub peer_addresses: Vec<IpAddr>,
    /// Negotiated outbound streams.
    pub outbound_streams: u16,
    /// Negotiated inbound streams.
    pub inbound_streams: u16,
    /// Smoothed RTT of the primary path, once measured.
    pub srtt: Option<Duration>,
    /// RTO of the primary path.
    pub rto: Duration,
    /// Congestion window of the primary path.
    pub cwnd: u32,
    /// Bytes in flight on all paths.
    pub flight_size: u32,
    /// The peer's receiver window as the sender sees it.
    pub peer_rwnd: u32,
    /// Bytes in the send buffer (queued and unacknowledged).
    pub send_buffered: usize,
    /// Bytes held by the receiver (reassembly and unread messages).
    pub recv_buffered: usize,
    /// Consecutive errors counted against Association.Max.Retrans.
    pub error_count: u32,
    /// Every path, in the order the peer's addresses became known.
    pub paths: Vec<PathStatus>,
    /// PR-SCTP (RFC 3758) is in use: enabled in the configuration and supported by the
    /// peer (it listed Forward-TSN-Supported in its INIT or INIT ACK, §3.3.1). Without it
    /// every message is sent reliably, whatever its [`PrPolicy`].
    pub pr_sctp: bool,
    /// Messages abandoned by their PR-SCTP policy before any of their chunks was sent
    /// (RFC 7496 §4.3.3 `abandoned_unsent`).
    pub abandoned_unsent: u64,
    /// Messages abandoned by their PR-SCTP policy after (some of) their chunks were sent
    /// (RFC 7496 §4.3.3 `abandoned_sent`); the peer skips them on a FORWARD TSN.
    pub abandoned_sent: u64,
    /// I-DATA (RFC 8260) is in use: both sides listed it.
    pub i_data: bool,
    /// I-DATA fragments or messages received and dropped because they contradicted what
    /// was held: a MID already delivered, or a fragment whose FSN is impossible (a second
    /// first fragment, an FSN past the last fragment or not fitting the TSNs of the others),
    /// which also aborts the association with a Protocol Violation.
    pub i_data_rejected: u64,
    /// I-DATA: the peer was seen numbering fragments the Linux way
    /// ([`IDataFsn::Linux`](crate::IDataFsn)); this side then numbers its own that way too.
    pub i_data_peer_linux_fsn: bool,
    /// SCTP-AUTH (RFC 4895) is in use: both sides offered it with a common HMAC.
    pub auth: bool,
    /// The HMAC algorithm of outgoing AUTH chunks, when AUTH is in use.
    pub auth_hmac: Option<crate::wire::HmacId>,
    /// The shared key identifier of outgoing AUTH chunks, when AUTH is in use.
    pub auth_active_key: Option<u16>,
    /// Add-IP (RFC 5061) is in use: both sides support ASCONF, with AUTH.
    pub asconf: bool,
    /// Packets (or their tails) dropped because an AUTH chunk did not verify or a chunk
    /// that must be authenticated came without one (RFC 4895 §6.3).
    pub auth_discarded: u64,
    /// The peer's Adaptation Layer Indication (RFC 5061 §4.2.6), if it sent one.
    pub peer_adaptation_indication: Option<u32>,
    /// This side's addresses in the association (RFC 9260 §6.4, changed by Add-IP).
    pub local_addresses: Vec<IpAddr>,
    /// Stream reconfiguration (RFC 6525) is in use: both sides listed RE-CONFIG.
    pub reconf: bool,
    /// Resets of our outgoing streams the peer performed (RFC 6525 §5.1.2).
    pub outgoing_stream_resets: u64,
    /// Resets of our incoming streams performed at the peer's request (§5.2.2).
    pub incoming_stream_resets: u64,
    /// SSN/TSN resets of the association performed (§5.1.4, §5.2.4).
    pub association_resets: u64,
    /// Reconfiguration requests of ours the peer refused or answered with an error.
    pub reconf_refused_by_peer: u64,
    /// Reconfiguration requests of the peer this side refused (policy, bad sequence
    /// number, invalid streams, one already in progress).
    pub reconf_peer_refused: u64,
}

/// A snapshot of one path (one peer address), for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathStatus {
    /// The peer address.
    pub remote: IpAddr,
    /// The local address packets to it leave from, if chosen.
    pub local: Option<IpAddr>,
    /// The reachability state.
    pub state: PathState,
    /// Whether it is the primary path.
    pub primary: bool,
    /// Whether new data currently goes to this path.
    pub carries_data: bool,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// Retransmission timeout.
    pub rto: Duration,
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Bytes in flight on this path.
    pub flight_size: u32,
    /// Consecutive errors (timeouts) against Path.Max.Retrans.
    pub error_count: u32,
    /// The peer's UDP encapsulation port (0: raw IP).
    pub encaps_port: u16,
}

/// Why [`AssociationMut::set_primary`](crate::AssociationMut::set_primary) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The address is not one of the peer's addresses.
    UnknownAddress,
    /// The address has not been confirmed by a heartbeat (RFC 9260 §5.4) or is inactive.
    NotActive,
}

impl core::fmt::Display for PathError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PathError::UnknownAddress => "not an address of the peer",
            PathError::NotActive => "path not confirmed or inactive",
        })
    }
}

impl std::error::Error for PathError {}

/// Shared context the endpoint lends an association for one call.
pub(crate) struct Ctx<'a> {
    pub(crate) id: AssociationId,
    pub(crate) rng: &'a mut ChaCha20Rng,
    pub(crate) events: &'a mut VecDeque<(AssociationId, Event)>,
    /// Packets that must go out even if the association is gone by then (ABORT).
    pub(crate) replies: &'a mut Vec<OwnedPacket>,
    /// `EndpointConfig::tx_checksum_offload`: packets leave with a zero checksum field for
    /// the link to fill in.
    pub(crate) tx_checksum_offload: bool,
}

/// Most local addresses an endpoint or association lists (RFC 9260 §6.4).
pub(crate) const MAX_LOCAL_ADDRESSES: usize = 16;

/// Events beyond this many unread ones are dropped if they are only informational
/// (`PeerError`, `PathChange`, `PeerAddressChange`), so a peer cannot grow the queue of an application that does not poll.
const MAX_INFO_EVENTS: usize = 4096;

impl Ctx<'_> {
    fn event(&mut self, e: Event) {
        if matches!(
            e,
            Event::PeerError(_)
                | Event::PathChange { .. }
                | Event::PeerAddressChange { .. }
                | Event::StreamReset { .. }
                | Event::AssociationReset { .. }
                | Event::StreamChange { .. }
        ) && self.events.len() >= MAX_INFO_EVENTS
        {
            return;
        }
        self.events.push_back((self.id, e));
    }
}

/// An encoded packet waiting in the endpoint's reply queue.
#[derive(Debug, Clone)]
pub(crate) struct OwnedPacket {
    pub(crate) src: Option<IpAddr>,
    pub(crate) dst: IpAddr,
    pub(crate) encaps_port: u16,
    pub(crate) assoc: Option<AssociationId>,
    pub(crate) bytes: Vec<u8>,
}

/// The state of the association and what exists only in that state.
#[derive(Debug)]
enum State {
    CookieWait {
        retransmits: u32,
        /// Cookie Preservative to request (RFC 9260 §5.2.6), milliseconds.
        preservative_ms: Option<u32>,
    },
    CookieEchoed {
        cookie: Box<[u8]>,
        retransmits: u32,
        /// Causes to report in an ERROR bundled after the COOKIE ECHO (unrecognized
        /// parameters of the INIT ACK, RFC 9260 §3.2.2).
        report: Option<Box<[u8]>>,
        sent_at: Timestamp,
    },
    Established,
    ShutdownPending,
    ShutdownSent {
        retransmits: u32,
    },
    ShutdownReceived,
    ShutdownAckSent {
        retransmits: u32,
    },
    Closed,
}

/// The data path: exists once the peer's initial TSN, window and streams are known.
#[derive(Debug)]
struct DataPath {
    out: Outbound,
    inb: Inbound,
}

/// Control chunks owed to the peer.
#[derive(Debug, Default)]
struct Pending {
    init: bool,
    cookie_echo: bool,
    cookie_ack: bool,
    shutdown: bool,
    shutdown_ack: bool,
    shutdown_complete: bool,
    /// Paths owed a HEARTBEAT.
    heartbeat: u8,
    /// HEARTBEAT ACKs owed: (path, heartbeat info TLV as received).
    heartbeat_acks: VecDeque<(PathIdx, Vec<u8>)>,
    /// Error causes for an ERROR chunk (already encoded as TLVs).
    errors: Vec<u8>,
}

const MAX_PENDING_HB_ACKS: usize = 4;
const MAX_PENDING_ERRORS: usize = 512;
/// Bytes of our heartbeat info: nonce (8), send time (8), path index (1), padding (3).
const HB_INFO_LEN: usize = 20;

/// A protocol violation and the ABORT it earns (RFC 9260: one mapping in one place).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Violation {
    /// §6.2: a DATA chunk without user data.
    NoUserData(Tsn),
    /// §6.2.1: a SACK acknowledging a TSN never sent.
    SackBeyondSent,
    /// A message above `max_message_size`.
    MessageTooLarge,
    /// A chunk of a known type with an impossible length or content.
    MalformedChunk(ChunkType),
    /// §3.3.3: an INIT ACK without a State Cookie.
    MissingCookie,
    /// §3.3.2/§3.3.3: an INIT ACK with zero streams or a zero initiate tag.
    InvalidInitAck,
    /// §3.3.2.1: a Host Name Address parameter.
    HostNameAddress,
    /// RFC 3758 §3.6: a FORWARD TSN whose New Cumulative TSN lies further beyond the highest
    /// TSN received than the receive window allows the peer to have sent.
    ForwardTsnBeyondWindow,
    /// RFC 8260 §2.1: a DATA chunk on an association that negotiated I-DATA.
    DataOnIData,
    /// RFC 8260 §2.1: an I-DATA fragment (this TSN) whose FSN contradicts its message; it
    /// can neither be acknowledged and dropped nor reassembled (RFC 9260 §3.3.10.13).
    IDataFsn(Tsn),
}

impl Association {
    fn violation(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, v: Violation) {
        let (code, info): (CauseCode, Vec<u8>) = match v {
            Violation::NoUserData(tsn) => {
                (CauseCode::NO_USER_DATA, tsn.get().to_be_bytes().to_vec())
            }
            Violation::SackBeyondSent => (
                CauseCode::PROTOCOL_VIOLATION,
                b"SACK acknowledges a TSN that was not sent".to_vec(),
            ),
            Violation::MessageTooLarge => (CauseCode::OUT_OF_RESOURCE, Vec::new()),
            Violation::DataOnIData => (
                CauseCode::PROTOCOL_VIOLATION,
                b"DATA chunk on an association using I-DATA".to_vec(),
            ),
            Violation::MalformedChunk(t) => (
                CauseCode::PROTOCOL_VIOLATION,
                format!("malformed {t} chunk").into_bytes(),
            ),
            Violation::MissingCookie => (
                CauseCode::MISSING_MANDATORY_PARAMETER,
                // One missing parameter: the State Cookie (RFC 9260 §3.3.10.2).
                [0, 0, 0, 1, 0, ParamType::STATE_COOKIE.get() as u8].to_vec(),
            ),
            Violation::InvalidInitAck => (CauseCode::INVALID_MANDATORY_PARAMETER, Vec::new()),
            Violation::HostNameAddress => (CauseCode::UNRESOLVABLE_ADDRESS, Vec::new()),
            Violation::IDataFsn(tsn) => (
                CauseCode::PROTOCOL_VIOLATION,
                format!(
                    "I-DATA TSN {} has an FSN contradicting its message",
                    tsn.get()
                )
                .into_bytes(),
            ),
            Violation::ForwardTsnBeyondWindow => (
                CauseCode::PROTOCOL_VIOLATION,
                b"FORWARD TSN beyond the receive window".to_vec(),
            ),
        };
        self.abort_with(now, ctx, ErrorCause { code, info });
    }
}

/// One SCTP association.
#[derive(Debug)]
pub(crate) struct Association {
    pub(crate) config: Arc<AssociationConfig>,
    state: State,
    pub(crate) local_port: u16,
    pub(crate) peer_port: u16,
    pub(crate) local_tag: u32,
    pub(crate) peer_tag: u32,
    local_initial_tsn: Tsn,
    local_os: u16,
    local_mis: u16,
    pub(crate) paths: Vec<Path>,
    primary: PathIdx,
    timers: TimerTable,
    data: Option<Box<DataPath>>,
    pending: Pending,
    /// Consecutive errors against Association.Max.Retrans (§8.1).
    error_count: u32,
    readable_reported: bool,
    /// Messages left unread when the association closed.
    unread: VecDeque<Message>,
    /// Scratch for the gap blocks of the SACK being written.
    sack_blocks: Vec<GapAckBlock>,
    /// Scratch for the stream entries of the FORWARD TSN being written.
    fwd_streams: Vec<ForwardTsnStream>,
    /// Scratch for the entries of the I-FORWARD TSN being written.
    ifwd_streams: Vec<IForwardTsnStream>,
    /// The endpoint must refresh its tag and address maps (tags or paths changed).
    pub(crate) routing_changed: bool,
    last_activity: Timestamp,
    /// Our addresses (RFC 9260 §6.4), listed in INIT/INIT ACK and used as path sources.
    local_addrs: Vec<IpAddr>,
    /// The path whose T3-rtx expired last: retransmissions avoid it while another active
    /// path exists (RFC 9260 §6.4.1). Cleared once nothing waits for retransmission.
    rtx_avoid: Option<PathIdx>,
    /// The path the latest DATA arrived on: SACKs go back there (RFC 9260 §6.4), so they
    /// follow the peer's failover even where our own data path is still the old one.
    sack_path: Option<PathIdx>,
    /// What this side offers for SCTP-AUTH (when enabled in the configuration).
    local_auth: Option<Box<LocalAuth>>,
    /// The AUTH state once negotiated (RFC 4895).
    auth: Option<Box<Auth>>,
    /// Packets dropped by AUTH verification (RFC 4895 §6.3).
    auth_discarded: u64,
    /// Add-IP state once negotiated (RFC 5061).
    asconf: Option<Box<AsconfState>>,
    /// RE-CONFIG state once negotiated (RFC 6525).
    reconf: Option<Box<ReconfState>>,
    /// The peer's Adaptation Layer Indication (RFC 5061 §4.2.6).
    peer_adaptation: Option<u32>,
}

/// What the endpoint should do with a COOKIE ECHO for an existing association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieVerdict {
    /// Handled; process the rest of the packet.
    Continue,
    /// Discard the packet.
    Discard,
}

/// How the endpoint answers an INIT for an existing association (§5.2.1, §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitAnswer {
    /// INIT ACK with this Initiate Tag and Initial TSN (`None`: new random ones) and these
    /// tie-tags (local, peer).
    InitAck {
        initiate_tag: Option<u32>,
        initial_tsn: Option<u32>,
        local_tie_tag: u32,
        peer_tie_tag: u32,
    },
    /// ABORT: the INIT adds addresses to the association.
    AbortNewAddresses,
    /// Discard the INIT (and retransmit SHUTDOWN ACK in SHUTDOWN-ACK-SENT, §9.2).
    Discard,
}

/// Parameters of the peer's INIT or INIT ACK that the association keeps.
#[derive(Debug, Clone)]
pub(crate) struct PeerInit {
    pub(crate) tag: u32,
    pub(crate) a_rwnd: u32,
    pub(crate) os: u16,
    pub(crate) mis: u16,
    pub(crate) initial_tsn: Tsn,
    pub(crate) addresses: Vec<IpAddr>,
    pub(crate) cookie_preservative_ms: Option<u32>,
    pub(crate) host_name: bool,
    /// Address families the peer supports (Supported Address Types, RFC 9260 §3.3.2.1):
    /// `(ipv4, ipv6)`; both when the parameter is absent.
    pub(crate) supported_types: (bool, bool),
    /// The peer supports PR-SCTP: it listed Forward-TSN-Supported (RFC 3758 §3.3.1) or
    /// FORWARD TSN among its Supported Extensions (RFC 5061 §4.2.7).
    pub(crate) forward_tsn: bool,
    /// The peer's RANDOM, CHUNKS and HMAC-ALGO (RFC 4895 §3).
    pub(crate) auth: PeerAuth,
    /// The peer listed ASCONF and ASCONF ACK among its Supported Extensions (RFC 5061
    /// §4.2.7).
    pub(crate) asconf: bool,
    /// The peer listed I-DATA among its Supported Extensions (RFC 8260 §2.2).
    pub(crate) idata: bool,
    /// The peer listed RE-CONFIG among its Supported Extensions (RFC 6525 §3.1).
    pub(crate) reconf: bool,
    /// The peer listed I-FORWARD TSN among its Supported Extensions (RFC 8260 §2.3.1).
    pub(crate) iforward_tsn: bool,
    /// The peer's Adaptation Layer Indication (RFC 5061 §4.2.6).
    pub(crate) adaptation: Option<u32>,
}

impl PeerInit {
    /// Reads the fields and parameters the association uses from a parsed INIT or INIT
    /// ACK. Unknown parameters are left to [`unrecognized_params`].
    #[allow(clippy::too_many_arguments)]
    fn from_fields(
        tag: u32,
        a_rwnd: u32,
        os: u16,
        mis: u16,
        initial_tsn: Tsn,
        params: &TlvList<'_, Param<'_>>,
    ) -> PeerInit {
        let mut p = PeerInit {
            tag,
            a_rwnd,
            os,
            mis,
            initial_tsn,
            addresses: Vec::new(),
            cookie_preservative_ms: None,
            host_name: false,
            supported_types: (true, true),
            forward_tsn: false,
            auth: PeerAuth::default(),
            asconf: false,
            idata: false,
            reconf: false,
            iforward_tsn: false,
            adaptation: None,
        };
        for param in params.iter() {
            // A known parameter with a malformed value is ignored.
            let Ok(param) = param else { continue };
            match param {
                Param::Ipv4Address(_) | Param::Ipv6Address(_) => {
                    if let Some(a) = chunk::address_param(&param)
                        && p.addresses.len() < MAX_PATHS * 4
                        && !p.addresses.contains(&a)
                    {
                        p.addresses.push(a);
                    }
                }
                Param::CookiePreservative(ms) => p.cookie_preservative_ms = Some(ms),
                Param::SupportedAddressTypes(types) => {
                    // §3.3.2.1: the listed types only (a host name type is irrelevant to us).
                    let mut v4 = false;
                    let mut v6 = false;
                    for t in types.iter() {
                        v4 |= t == ParamType::IPV4_ADDRESS;
                        v6 |= t == ParamType::IPV6_ADDRESS;
                    }
                    p.supported_types = (v4, v6);
                }
                Param::HostNameAddress(_) => p.host_name = true,
                Param::ForwardTsnSupported => p.forward_tsn = true,
                Param::SupportedExtensions(types) => {
                    p.forward_tsn |= types.iter().any(|t| t == ChunkType::FORWARD_TSN);
                    p.asconf = types.iter().any(|t| t == ChunkType::ASCONF)
                        && types.iter().any(|t| t == ChunkType::ASCONF_ACK);
                    p.idata = types.iter().any(|t| t == ChunkType::I_DATA);
                    p.reconf = types.iter().any(|t| t == ChunkType::RE_CONFIG);
                    p.iforward_tsn = types.iter().any(|t| t == ChunkType::I_FORWARD_TSN);
                }
                Param::Random(_) | Param::ChunkList(_) | Param::RequestedHmacAlgorithms(_) => {
                    p.auth.take_param(&param)
                }
                Param::AdaptationLayerIndication(code) => p.adaptation = Some(code),
                // RFC 9260 §3.2.1: for a parameter we do not implement, "stop" action bits
                // end the parameter processing.
                other
                    if !understood_param(other.param_type())
                        && !other.param_type().unknown_action().skips() =>
                {
                    break;
                }
                _ => {}
            }
        }
        p
    }

    /// Parses an INIT chunk.
    pub(crate) fn from_init(c: &Init<'_>) -> PeerInit {
        Self::from_fields(
            c.initiate_tag,
            c.a_rwnd,
            c.outbound_streams,
            c.inbound_streams,
            c.initial_tsn,
            &c.params,
        )
    }

    /// Parses an INIT ACK chunk.
    pub(crate) fn from_init_ack(c: &InitAck<'_>) -> PeerInit {
        Self::from_fields(
            c.initiate_tag,
            c.a_rwnd,
            c.outbound_streams,
            c.inbound_streams,
            c.initial_tsn,
            &c.params,
        )
    }

    /// Parses the raw INIT chunk carried in a state cookie.
    pub(crate) fn from_raw_init(bytes: &[u8]) -> Option<PeerInit> {
        let raw = RawChunk::new_checked(bytes).ok()?;
        let init = Init::parse(&raw).ok()?;
        Some(Self::from_init(&init))
    }
}

/// The unrecognized parameters of an INIT/INIT ACK that must be reported (action bits 01
/// and 11, RFC 9260 §3.2.1), appended to `out` (bounded by `limit` bytes): each wrapped in
/// an Unrecognized Parameter TLV when `wrap` (for an INIT ACK, §3.3.3), as received
/// otherwise (for the Unrecognized Parameters cause, §3.3.10.8). `params` are the raw
/// parameter bytes.
///
/// `pr_sctp`: whether this side offers PR-SCTP; if not, a Forward-TSN-Supported parameter
/// is reported as unrecognized (RFC 3758 §3.3.1), as its action bits ask.
pub(crate) fn unrecognized_params(
    params: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    wrap: bool,
    pr_sctp: bool,
) {
    for raw in chunk::raw_params(params) {
        let ty = raw.param_type();
        if understood_param(ty) && (pr_sctp || ty != ParamType::FORWARD_TSN_SUPPORTED) {
            continue;
        }
        let action = ty.unknown_action();
        let tlv = raw.as_bytes();
        if action.reports() {
            if wrap && out.len() + chunk::tlv_size(tlv.len()) <= limit {
                let at = out.len();
                out.resize(at + chunk::tlv_size(tlv.len()), 0);
                let mut pos = at;
                chunk::put_tlv(out, &mut pos, ParamType::UNRECOGNIZED_PARAMETER.get(), tlv);
            } else if !wrap && out.len() + chunk::tlv_size(tlv.len()) <= limit {
                out.extend_from_slice(tlv);
                out.resize(out.len().saturating_add(3) & !3, 0);
            }
        }
        if !action.skips() {
            break;
        }
    }
}

/// The INIT/INIT ACK parameters this implementation processes (or deliberately ignores
/// because they need no answer); everything else follows its action bits (§3.2.1).
pub(crate) fn understood_param(t: ParamType) -> bool {
    matches!(
        t,
        ParamType::IPV4_ADDRESS
            | ParamType::IPV6_ADDRESS
            | ParamType::STATE_COOKIE
            | ParamType::UNRECOGNIZED_PARAMETER
            | ParamType::COOKIE_PRESERVATIVE
            | ParamType::HOST_NAME_ADDRESS
            | ParamType::SUPPORTED_ADDRESS_TYPES
            | ParamType::HEARTBEAT_INFO
            | ParamType::SUPPORTED_EXTENSIONS
            | ParamType::FORWARD_TSN_SUPPORTED
            | ParamType::RANDOM
            | ParamType::CHUNK_LIST
            | ParamType::REQUESTED_HMAC_ALGORITHM
            | ParamType::ADAPTATION_LAYER_INDICATION
    )
}

fn parse_causes(b: &[u8]) -> Vec<ErrorCause> {
    chunk::raw_causes(b)
        .take(16)
        .map(|c| ErrorCause {
            code: c.code(),
            info: c.value().to_vec(),
        })
        .collect()
}

/// Everything needed to create the server side of an association from a valid cookie.
#[derive(Debug)]
pub(crate) struct AcceptParams<'a> {
    pub(crate) cookie: &'a CookieContents<'a>,
    pub(crate) peer: PeerInit,
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) encaps_port: u16,
    /// The endpoint's local addresses (RFC 9260 §6.4).
    pub(crate) local_addrs: &'a [IpAddr],
}

impl Association {
    #[allow(clippy::too_many_arguments)]
    fn base(
        config: Arc<AssociationConfig>,
        local_port: u16,
        peer_port: u16,
        local_tag: u32,
        local_initial_tsn: Tsn,
        primary: Path,
        now: Timestamp,
        state: State,
    ) -> Association {
        let local_os = config.outbound_streams;
        let local_mis = config.inbound_streams;
        let mut timers = TimerTable::default();
        timers.set_path_count(1);
        Association {
            config,
            state,
            local_port,
            peer_port,
            local_tag,
            peer_tag: 0,
            local_initial_tsn,
            local_os,
            local_mis,
            paths: vec![primary],
            primary: 0,
            timers,
            data: None,
            pending: Pending::default(),
            error_count: 0,
            readable_reported: false,
            unread: VecDeque::new(),
            sack_blocks: Vec::new(),
            fwd_streams: Vec::new(),
            ifwd_streams: Vec::new(),
            routing_changed: true,
            last_activity: now,
            local_addrs: Vec::new(),
            rtx_avoid: None,
            sack_path: None,
            local_auth: None,
            auth: None,
            auth_discarded: 0,
            asconf: None,
            reconf: None,
            peer_adaptation: None,
        }
    }

    /// Starts an association as the initiator: COOKIE-WAIT with the INIT due (§5.1 A).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect(
        config: Arc<AssociationConfig>,
        now: Timestamp,
        local_port: u16,
        peer: IpAddr,
        peer_port: u16,
        local: Option<IpAddr>,
        encaps_port: u16,
        local_tag: u32,
        initial_tsn: Tsn,
        local_addrs: &[IpAddr],
        auth_random: [u8; auth::RANDOM_LEN],
    ) -> Association {
        let local = local.or_else(|| pick_local(local_addrs, peer));
        let path = Path::new(peer, local, encaps_port, PathState::Active, &config);
        let mut a = Association::base(
            config,
            local_port,
            peer_port,
            local_tag,
            initial_tsn,
            path,
            now,
            State::CookieWait {
                retransmits: 0,
                preservative_ms: None,
            },
        );
        a.local_addrs = local_addrs.to_vec();
        if a.config.auth {
            a.local_auth = Some(Box::new(LocalAuth::new(&a.config, auth_random)));
        }
        a.pending.init = true;
        let rto = a.paths[0].rto.rto();
        a.timers.start(Timer::T1Init, now + rto);
        a
    }

    /// Adds further addresses of the peer given to `connect` (like `sctp_connectx`, RFC 6458
    /// §9.9): each becomes a path, confirmed because the upper layer named it (RFC 9260
    /// §5.4 (1)). The INIT goes to the first; each T1-init expiry moves it to the next one
    /// (RFC 9260 §6.4: retransmission to an alternate address); an INIT ACK from any of them
    /// continues the handshake. Duplicates, non-unicast addresses and addresses beyond
    /// [`MAX_PATHS`] are ignored.
    pub(crate) fn add_connect_alternates(&mut self, alternates: &[IpAddr]) {
        let (local, encaps) = self
            .paths
            .get(self.primary)
            .map_or((None, 0), |p| (p.local, p.encaps_port));
        for &addr in alternates {
            if self.paths.len() >= MAX_PATHS {
                break;
            }
            if !is_unicast(addr) || self.paths.iter().any(|p| p.remote == addr) {
                continue;
            }
            let from = pick_local(&self.local_addrs, addr)
                .or_else(|| local.filter(|l| l.is_ipv4() == addr.is_ipv4()));
            let path = Path::new(addr, from, encaps, PathState::Active, &self.config);
            self.paths.push(path);
        }
        self.timers.set_path_count(self.paths.len());
        self.routing_changed = true;
    }

    /// T1-init expired in COOKIE-WAIT: with several peer addresses given to `connect`, the
    /// INIT goes to the next one (RFC 9260 §6.4), which inherits the backed-off RTO (§6.3.3
    /// E2 applies to the association's INIT, whichever address it goes to).
    fn next_connect_address(&mut self) {
        if self.paths.len() < 2 {
            return;
        }
        let rto = self.paths.get(self.primary).map(|p| p.rto.clone());
        self.primary = (self.primary + 1) % self.paths.len();
        if let Some(rto) = rto
            && let Some(p) = self.paths.get_mut(self.primary)
        {
            p.rto = rto;
        }
    }

    /// An INIT ACK arrived from `src`: with several peer addresses given to `connect`, the
    /// one it came from becomes the primary path. Returns the address of the primary path
    /// before (which `install_peer` replaces by `src` if `src` was not given).
    fn take_connect_answer(&mut self, src: IpAddr) -> Option<IpAddr> {
        if self.paths.len() < 2 {
            return None;
        }
        if let Some(i) = self.paths.iter().position(|p| p.remote == src) {
            self.primary = i;
        }
        self.paths.get(self.primary).map(|p| p.remote)
    }

    /// After `install_peer`: every address given to `connect` stays a peer address
    /// (RFC 9260 §5.4 (1)), with congestion state for the peer's window.
    fn keep_connect_addresses(&mut self, given: Option<IpAddr>, a_rwnd: u32) {
        let Some(old) = given else {
            return;
        };
        if !self.paths.iter().any(|p| p.remote == old) && self.paths.len() < MAX_PATHS {
            let (local, encaps) = self
                .paths
                .get(self.primary)
                .map_or((None, 0), |p| (p.local, p.encaps_port));
            let from = pick_local(&self.local_addrs, old)
                .or_else(|| local.filter(|l| l.is_ipv4() == old.is_ipv4()));
            self.paths.push(Path::new(
                old,
                from,
                encaps,
                PathState::Active,
                &self.config,
            ));
            self.timers.set_path_count(self.paths.len());
        }
        for (i, p) in self.paths.iter_mut().enumerate() {
            if i != self.primary && p.state == PathState::Active {
                p.init_congestion(a_rwnd);
            }
        }
    }

    /// Creates the responder side from a valid state cookie (§5.1 D): ESTABLISHED, with the
    /// COOKIE ACK due.
    pub(crate) fn accept(
        config: Arc<AssociationConfig>,
        now: Timestamp,
        p: AcceptParams<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Association {
        let c = p.cookie;
        let path = Path::new(
            p.src,
            Some(p.dst),
            p.encaps_port,
            PathState::Active,
            &config,
        );
        let mut a = Association::base(
            config,
            c.local_port,
            c.peer_port,
            c.local_tag,
            Tsn(c.local_initial_tsn),
            path,
            now,
            State::Established,
        );
        a.local_os = c.local_os;
        a.local_mis = c.local_mis;
        a.peer_tag = c.peer_tag;
        a.local_addrs = p.local_addrs.to_vec();
        if a.config.auth {
            // The RANDOM of our INIT ACK travelled in the cookie (RFC 4895 §6.3, the COOKIE
            // ECHO case: the association key exists before the AUTH bundled after the
            // COOKIE ECHO is verified).
            a.local_auth = Some(Box::new(LocalAuth::new(&a.config, c.local_random)));
        }
        a.install_peer(&p.peer, p.src, now);
        a.pending.cookie_ack = true;
        a.start_heartbeats(now, ctx);
        ctx.event(Event::Connected);
        a
    }

    /// Sets up the data path and the paths from the peer's INIT or INIT ACK.
    fn install_peer(&mut self, peer: &PeerInit, src: IpAddr, now: Timestamp) {
        let _ = now;
        self.peer_tag = peer.tag;
        let outbound_streams = self.local_os.min(peer.mis);
        let inbound_streams = self.local_mis.min(peer.os);
        let mut out = Outbound::new(self.local_initial_tsn, outbound_streams, peer.a_rwnd);
        out.blocked = false;
        // RFC 3758 §3.3: PR-SCTP is used only if both sides list Forward-TSN-Supported.
        out.pr = self.config.pr_sctp && peer.forward_tsn;
        out.scheduler = self.config.stream_scheduler;
        // RFC 8260 §2.1: I-DATA is used when both sides list it in their Supported
        // Extensions; then DATA is not used. RFC 8260 §2.3.1: PR-SCTP together with I-DATA
        // needs I-FORWARD TSN on both sides (FORWARD TSN is never sent there); without it
        // this side's messages are reliable (policies degrade to reliable).
        if self.config.i_data && peer.idata {
            out.use_idata();
            if self.config.i_data_fsn == IDataFsn::Linux {
                out.use_linux_fsn();
            }
            out.pr = out.pr && peer.iforward_tsn;
        }
        let mut inb = Inbound::new(
            peer.initial_tsn,
            inbound_streams,
            self.config.receive_window,
            self.config.max_message_size,
        );
        inb.set_partial_delivery_point(self.config.partial_delivery_point);
        self.data = Some(Box::new(DataPath { out, inb }));
        // The primary path is where the peer's chunk came from; listed addresses become
        // further (unconfirmed) paths (RFC 9260 §5.1.2, §5.4).
        if let Some(p) = self.paths.get_mut(self.primary) {
            p.remote = src;
            p.init_congestion(peer.a_rwnd);
            p.state = PathState::Active;
        }
        let (local, encaps) = self
            .paths
            .get(self.primary)
            .map_or((None, 0), |p| (p.local, p.encaps_port));
        for &addr in &peer.addresses {
            if self.paths.len() >= MAX_PATHS {
                break;
            }
            if self.paths.iter().any(|p| p.remote == addr)
                || !is_unicast(addr)
                || addr_scope(addr) > addr_scope(src)
            {
                continue;
            }
            // A family we cannot send from is no destination for us (§5.1.2).
            let from = pick_local(&self.local_addrs, addr)
                .or_else(|| local.filter(|l| l.is_ipv4() == addr.is_ipv4()));
            if from.is_none() && addr.is_ipv4() != src.is_ipv4() {
                continue;
            }
            let mut path = Path::new(addr, from, encaps, PathState::Unconfirmed, &self.config);
            path.init_congestion(peer.a_rwnd);
            self.paths.push(path);
        }
        self.timers.set_path_count(self.paths.len());
        self.routing_changed = true;
        // RFC 4895 §6: AUTH is used when both sides offered it with a common HMAC.
        self.auth = self
            .local_auth
            .as_deref()
            .and_then(|l| Auth::negotiate(&self.config, l, &peer.auth))
            .map(Box::new);
        // RFC 5061 §4.1: Add-IP only with AUTH, when both sides support ASCONF.
        self.asconf = (self.config.asconf && peer.asconf && self.auth.is_some()).then(|| {
            Box::new(AsconfState::new(
                self.local_initial_tsn.get(),
                peer.initial_tsn.get(),
            ))
        });
        // RFC 6525 §3.1: RE-CONFIG when both sides list it.
        self.reconf = (self.config.reconf && peer.reconf).then(|| {
            Box::new(ReconfState::new(
                self.local_initial_tsn.get(),
                peer.initial_tsn.get(),
            ))
        });
        self.peer_adaptation = peer.adaptation;
    }

    fn start_heartbeats(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        // RFC 9260 §5.4: unconfirmed addresses are probed right away, HB.Max.Burst of them
        // per RTO; confirmed ones get the periodic heartbeat of §8.3.
        let burst = self.config.hb_max_burst.max(1) as usize;
        let mut unconfirmed = 0usize;
        for i in 0..self.paths.len() {
            let Some(p) = self.paths.get(i) else { continue };
            if p.state == PathState::Unconfirmed {
                let rto = p.rto.rto();
                let rounds = u32::try_from(unconfirmed / burst).unwrap_or(u32::MAX);
                unconfirmed += 1;
                if rounds == 0 {
                    // Sent with the next packet; the timer then waits one RTO for the ack.
                    self.pending.heartbeat |= 1 << i.min(7);
                    self.timers.start(Timer::Heartbeat(i), now + rto);
                } else {
                    self.timers
                        .start(Timer::Heartbeat(i), now + rto.saturating_mul(rounds));
                }
            } else if self.config.heartbeat_interval.is_some() {
                let at = self.next_heartbeat_at(i, now, ctx);
                self.timers.start(Timer::Heartbeat(i), at);
            }
        }
    }

    /// When the next heartbeat of `path` is due.
    ///
    /// - Unconfirmed (RFC 9260 §5.4) and potentially-failed (RFC 7829 §5.1) paths: one RTO
    ///   (already backed off by the timeouts so far).
    /// - Otherwise RFC 9260 §8.3: RTO + HB.interval, with ±50% jitter of the RTO.
    fn next_heartbeat_at(&self, path: PathIdx, now: Timestamp, ctx: &mut Ctx<'_>) -> Timestamp {
        let rto = self.paths.get(path).map_or(Duration::ZERO, |p| p.rto.rto());
        let probing = self.paths.get(path).is_some_and(|p| {
            p.state == PathState::PotentiallyFailed
                || (p.state == PathState::Unconfirmed
                    && p.error_count <= self.config.path_max_retrans)
        });
        if probing {
            return now + rto;
        }
        let Some(interval) = self.config.heartbeat_interval else {
            return Timestamp::MAX;
        };
        let rto_us = u64::try_from(rto.as_micros()).unwrap_or(u64::MAX);
        let jitter = if rto_us > 0 {
            ctx.rng.next_u64() % rto_us.max(1)
        } else {
            0
        };
        // RTO * (0.5 .. 1.5) + interval.
        let base = rto_us / 2 + jitter;
        now + interval + Duration::from_micros(base)
    }

    // ---------------------------------------------------------------- accessors

    pub(crate) fn state(&self) -> AssociationState {
        match self.state {
            State::CookieWait { .. } => AssociationState::CookieWait,
            State::CookieEchoed { .. } => AssociationState::CookieEchoed,
            State::Established => AssociationState::Established,
            State::ShutdownPending => AssociationState::ShutdownPending,
            State::ShutdownSent { .. } => AssociationState::ShutdownSent,
            State::ShutdownReceived => AssociationState::ShutdownReceived,
            State::ShutdownAckSent { .. } => AssociationState::ShutdownAckSent,
            State::Closed => AssociationState::Closed,
        }
    }

    /// A SACK is owed to the peer without delay (RFC 9260 §6.2: every second DATA packet,
    /// gaps, duplicates, the I bit) and has not been sent yet.
    pub(crate) fn sack_due_now(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.inb.sack_due_now())
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        if self.is_closed() {
            return None;
        }
        self.timers.next_deadline()
    }

    pub(crate) fn status(&self) -> AssociationStatus {
        let p = self.paths.get(self.primary);
        AssociationStatus {
            state: self.state(),
            local_port: self.local_port,
            peer_port: self.peer_port,
            primary: p.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.remote),
            peer_addresses: self.peer_addresses().collect(),
            outbound_streams: self.data.as_ref().map_or(0, |d| d.out.outbound_streams()),
            inbound_streams: self
                .data
                .as_ref()
                .map_or(self.local_mis, |d| d.inb.inbound_streams()),
            srtt: p.and_then(|p| p.rto.srtt()),
            rto: p.map_or(Duration::ZERO, |p| p.rto.rto()),
            cwnd: p.map_or(0, |p| p.cwnd),
            flight_size: self.paths.iter().map(|p| p.flight_size).sum(),
            peer_rwnd: self.data.as_ref().map_or(0, |d| d.out.peer_rwnd()),
            send_buffered: self.data.as_ref().map_or(0, |d| d.out.buffered()),
            recv_buffered: self.data.as_ref().map_or(0, |d| d.inb.buffered()),
            error_count: self.error_count,
            pr_sctp: self.data.as_ref().is_some_and(|d| d.out.pr),
            abandoned_unsent: self.data.as_ref().map_or(0, |d| d.out.abandoned().0),
            abandoned_sent: self.data.as_ref().map_or(0, |d| d.out.abandoned().1),
            i_data: self.data.as_ref().is_some_and(|d| d.out.idata),
            i_data_rejected: self.data.as_ref().map_or(0, |d| d.inb.idata_rejected()),
            i_data_peer_linux_fsn: self
                .data
                .as_ref()
                .is_some_and(|d| d.inb.peer_fsn() == PeerFsn::Linux),
            auth: self.auth.is_some(),
            auth_hmac: self.auth.as_ref().map(|a| a.send_hmac()),
            auth_active_key: self.auth.as_ref().map(|a| a.active_key()),
            asconf: self.asconf.is_some(),
            auth_discarded: self.auth_discarded,
            peer_adaptation_indication: self.peer_adaptation,
            local_addresses: self.local_addrs.clone(),
            reconf: self.reconf.is_some(),
            outgoing_stream_resets: self.reconf.as_ref().map_or(0, |r| r.stats.outgoing_resets),
            incoming_stream_resets: self.reconf.as_ref().map_or(0, |r| r.stats.incoming_resets),
            association_resets: self
                .reconf
                .as_ref()
                .map_or(0, |r| r.stats.association_resets),
            reconf_refused_by_peer: self
                .reconf
                .as_ref()
                .map_or(0, |r| r.stats.requests_refused_by_peer),
            reconf_peer_refused: self
                .reconf
                .as_ref()
                .map_or(0, |r| r.stats.peer_requests_refused),
            paths: {
                let send = self.send_path();
                self.paths
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.removed)
                    .map(|(i, p)| PathStatus {
                        remote: p.remote,
                        local: p.local,
                        state: p.state,
                        primary: i == self.primary,
                        carries_data: i == send,
                        srtt: p.rto.srtt(),
                        rto: p.rto.rto(),
                        cwnd: p.cwnd,
                        flight_size: p.flight_size,
                        error_count: p.error_count,
                        encaps_port: p.encaps_port,
                    })
                    .collect()
            },
        }
    }

    pub(crate) fn peer_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.paths.iter().filter(|p| !p.removed).map(|p| p.remote)
    }

    // ---------------------------------------------------------------- user commands

    pub(crate) fn send(
        &mut self,
        now: Timestamp,
        stream: u16,
        ppid: u32,
        data: Arc<Vec<u8>>,
        opts: SendOptions,
    ) -> Result<(), SendError> {
        match self.state {
            State::Established => {}
            State::CookieWait { .. } | State::CookieEchoed { .. } => {
                return Err(SendError::NotConnected);
            }
            _ => return Err(SendError::ShuttingDown),
        }
        let d = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if let Some(expiry) =
            d.out
                .send(now, stream, ppid, data, opts, &self.config, &mut self.paths)?
            && self
                .timers
                .deadline(Timer::PrLifetime)
                .is_none_or(|t| expiry < t)
        {
            self.timers.start(Timer::PrLifetime, expiry);
        }
        self.last_activity = now;
        self.touch_autoclose(now);
        Ok(())
    }

    pub(crate) fn recv(&mut self, now: Timestamp) -> Option<Message> {
        if self.data.is_none() {
            return self.unread.pop_front();
        }
        let d = self.data.as_mut()?;
        let m = d.inb.recv();
        if !d.inb.has_ready() {
            self.readable_reported = false;
        }
        let mtu = self.paths.get(self.primary).map_or(1200, Path::mtu);
        if m.is_some() && d.inb.window_update_due(mtu) {
            // Receiver SWS avoidance: tell the peer the window reopened.
            d.inb.request_sack_now();
        }
        if m.is_some() {
            self.last_activity = now;
        }
        m
    }

    /// Makes the path to `addr` the primary path (RFC 9260 §6.4).
    pub(crate) fn set_primary(&mut self, addr: IpAddr) -> Result<(), PathError> {
        let i = self.live_path_of(addr).ok_or(PathError::UnknownAddress)?;
        let p = self.paths.get(i).ok_or(PathError::UnknownAddress)?;
        if !matches!(p.state, PathState::Active | PathState::PotentiallyFailed) {
            return Err(PathError::NotActive);
        }
        self.primary = i;
        Ok(())
    }

    /// Sets an outbound stream's scheduling priority (RFC 8260 §3.4).
    pub(crate) fn set_stream_priority(
        &mut self,
        stream: u16,
        priority: u16,
    ) -> Result<(), SendError> {
        let d = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if d.out.set_stream_priority(stream, priority) {
            Ok(())
        } else {
            Err(SendError::InvalidStream)
        }
    }

    /// Sets an outbound stream's scheduling weight (RFC 8260 §3.6).
    pub(crate) fn set_stream_weight(&mut self, stream: u16, weight: u16) -> Result<(), SendError> {
        let d = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if d.out.set_stream_weight(stream, weight) {
            Ok(())
        } else {
            Err(SendError::InvalidStream)
        }
    }

    /// Adds a shared key (RFC 4895 §6.1).
    pub(crate) fn auth_add_key(&mut self, id: u16, key: &[u8]) -> Result<(), AuthKeyError> {
        self.auth
            .as_mut()
            .ok_or(AuthKeyError::NotNegotiated)?
            .add_key(id, key)
    }

    /// Activates a shared key for sending.
    pub(crate) fn auth_activate_key(&mut self, id: u16) -> Result<(), AuthKeyError> {
        self.auth
            .as_mut()
            .ok_or(AuthKeyError::NotNegotiated)?
            .activate_key(id)
    }

    /// Deletes a shared key.
    pub(crate) fn auth_delete_key(&mut self, id: u16) -> Result<(), AuthKeyError> {
        self.auth
            .as_mut()
            .ok_or(AuthKeyError::NotNegotiated)?
            .delete_key(id)
    }

    /// Starts a graceful shutdown (RFC 9260 §9.2).
    pub(crate) fn shutdown(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Established => {
                self.state = State::ShutdownPending;
                self.timers
                    .start(Timer::T5ShutdownGuard, now + self.config.shutdown_guard);
                self.check_shutdown_progress(now);
            }
            State::CookieWait { .. } => {
                // No peer state exists yet: just forget the attempt.
                self.close(ctx);
            }
            State::CookieEchoed { .. } => {
                self.abort_with(
                    now,
                    ctx,
                    ErrorCause {
                        code: CauseCode::USER_INITIATED_ABORT,
                        info: b"shutdown during handshake".to_vec(),
                    },
                );
            }
            _ => {}
        }
    }

    /// Aborts the association with a User-Initiated Abort cause (RFC 9260 §9.1).
    pub(crate) fn abort(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, reason: &[u8]) {
        if self.is_closed() {
            return;
        }
        let info = reason.get(..reason.len().min(256)).unwrap_or(&[]).to_vec();
        self.abort_with(
            now,
            ctx,
            ErrorCause {
                code: CauseCode::USER_INITIATED_ABORT,
                info,
            },
        );
    }

    /// Sends ABORT with `c` (through the endpoint's reply queue) and closes.
    fn abort_with(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, c: ErrorCause) {
        let _ = now;
        if self.is_closed() {
            return;
        }
        let tag = self.peer_tag;
        // Without the peer's tag (COOKIE-WAIT before any INIT ACK) there is nothing to abort
        // on its side.
        if tag != 0 {
            let mut causes = Vec::new();
            push_cause(&mut causes, 1024, c.code, &c.info);
            if let Ok(causes) = TlvList::from_bytes(&causes) {
                let abort = Abort {
                    tag_reflected: false,
                    causes,
                };
                self.queue_reply(ctx, tag, ChunkType::ABORT, &abort);
            }
        }
        ctx.event(Event::Aborted(AbortReason::Local(c)));
        self.close(ctx);
    }

    /// Queues a one-chunk packet to the primary path in the endpoint's reply queue (for
    /// packets that must go out although the association is closing).
    fn queue_reply(&self, ctx: &mut Ctx<'_>, vtag: u32, ty: ChunkType, chunk: &dyn Encode) {
        // The path data goes to: the primary while it is active, else the active alternate
        // (a SHUTDOWN COMPLETE or ABORT sent to a failed primary would be lost, and the peer
        // would retransmit its SHUTDOWN ACK until it gives up; RFC 9260 §6.4, RFC 7829 §5.1).
        let Some(path) = self
            .paths
            .get(self.send_path())
            .or_else(|| self.paths.get(self.primary))
        else {
            return;
        };
        // Room for an AUTH chunk if the peer requires this chunk type authenticated (RFC
        // 4895 §6.2: an ABORT may be listed; SHUTDOWN COMPLETE never is, §3.2).
        let auth_len = self
            .auth
            .as_deref()
            .filter(|a| a.send_required.contains(ty))
            .map_or(0, |a| a.placeholder().encoded_len());
        let len = COMMON_HEADER_LEN + auth_len + chunk.encoded_len();
        let mut bytes = vec![0u8; len];
        let header = CommonHeader {
            source_port: self.local_port,
            destination_port: self.peer_port,
            verification_tag: vtag,
        };
        let Ok(mut b) = PacketBuilder::new(&mut bytes, len, header) else {
            return;
        };
        let mut auth_at = None;
        if !push_authenticated(&self.auth, &mut b, &mut auth_at, ty, chunk) {
            return;
        }
        if let (Some(at), Some(a)) = (auth_at, self.auth.as_deref()) {
            a.sign(b.written_mut(), at);
        }
        let n = b.finish_for_link(ctx.tx_checksum_offload);
        bytes.truncate(n);
        ctx.replies.push(OwnedPacket {
            src: path.local,
            dst: path.remote,
            encaps_port: path.encaps_port,
            assoc: Some(ctx.id),
            bytes,
        });
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
        self.state = State::Closed;
        self.timers.stop_all();
        // Messages the application has not read stay readable after the close.
        if let Some(mut d) = self.data.take() {
            self.unread = d.inb.take_ready();
        }
        self.pending = Pending::default();
    }

    /// Messages received before the close and not read yet.
    pub(crate) fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    fn lost(&mut self, ctx: &mut Ctx<'_>, reason: LostReason) {
        ctx.event(Event::CommunicationLost(reason));
        self.close(ctx);
    }

    fn touch_autoclose(&mut self, now: Timestamp) {
        if let Some(d) = self.config.autoclose
            && matches!(self.state, State::Established)
        {
            self.timers.start(Timer::Autoclose, now + d);
        }
    }

    /// Counts one error against Association.Max.Retrans (§8.1); true if the peer is lost.
    fn count_error(&mut self) -> bool {
        self.error_count = self.error_count.saturating_add(1);
        self.error_count > self.config.association_max_retrans
    }

    /// Counts one error (a T3-rtx expiry or an unanswered heartbeat) against path `p`
    /// (RFC 9260 §8.2) and moves it to Potentially-Failed (RFC 7829 §5.1: errors above
    /// PF.Max.Retrans) or Inactive (errors above Path.Max.Retrans).
    fn count_path_error(&mut self, p: PathIdx, now: Timestamp, ctx: &mut Ctx<'_>) {
        let pmr = self.config.path_max_retrans;
        let pfmr = self.config.pf_max_retrans;
        let multi_path = self.paths.len() > 1;
        let Some(path) = self.paths.get_mut(p) else {
            return;
        };
        path.error_count = path.error_count.saturating_add(1);
        let errors = path.error_count;
        let next = match path.state {
            // An address never confirmed stays so; its probing just slows down (§5.4).
            PathState::Unconfirmed => PathState::Unconfirmed,
            _ if errors > pmr => PathState::Inactive,
            // RFC 7829 is failover between paths: with a single path there is nothing to
            // fail over to, so the PF state (and its probing) does not apply.
            PathState::Active if multi_path && pfmr.is_some_and(|pf| errors > pf) => {
                PathState::PotentiallyFailed
            }
            s => s,
        };
        self.set_path_state(p, next, now, ctx);
        // RFC 7829 §6: Primary Path Switchover after PSMR errors on the primary.
        if p == self.primary
            && self.config.primary_switchover.is_some_and(|n| errors >= n)
            && let Some(alt) = self.active_alternate(p)
        {
            self.primary = alt;
        }
    }

    /// Changes the state of path `p`, reporting the change (RFC 9260 §8.2: the upper layer
    /// SHOULD be notified) and starting the probing a Potentially-Failed path gets.
    fn set_path_state(&mut self, p: PathIdx, state: PathState, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some(path) = self.paths.get_mut(p) else {
            return;
        };
        if path.state == state {
            return;
        }
        path.state = state;
        if path.removed {
            return;
        }
        let addr = path.remote;
        let rto = path.rto.rto();
        if state == PathState::PotentiallyFailed && self.is_open_for_heartbeat() {
            // RFC 7829 §5.1: probe a PF destination with a heartbeat every RTO.
            self.pending.heartbeat |= 1 << p.min(7);
            self.timers.start(Timer::Heartbeat(p), now + rto);
        }
        ctx.event(Event::PathChange { addr, state });
    }

    /// Paths that fell into PF or Inactive and whose error counter an acknowledgement reset
    /// are back in service (RFC 7829 §5.1, RFC 9260 §8.2).
    fn revive_acknowledged_paths(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        for i in 0..self.paths.len() {
            let revived = self.paths.get(i).is_some_and(|p| {
                p.error_count == 0
                    && matches!(p.state, PathState::PotentiallyFailed | PathState::Inactive)
            });
            if revived {
                self.set_path_state(i, PathState::Active, now, ctx);
                if let Some(at) = self.heartbeat_interval_deadline(i, now, ctx) {
                    self.timers.start(Timer::Heartbeat(i), at);
                }
            }
        }
    }

    fn heartbeat_interval_deadline(
        &self,
        p: PathIdx,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
    ) -> Option<Timestamp> {
        let at = self.next_heartbeat_at(p, now, ctx);
        (at != Timestamp::MAX).then_some(at)
    }

    /// An active path other than `not`, preferring the lowest error count, then the
    /// smallest smoothed RTT.
    fn active_alternate(&self, not: PathIdx) -> Option<PathIdx> {
        self.paths
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != not && p.state == PathState::Active)
            .min_by_key(|(i, p)| (p.error_count, p.rto.srtt().unwrap_or(Duration::MAX), *i))
            .map(|(i, _)| i)
    }

    /// Where new data goes (RFC 9260 §6.4, RFC 7829 §5.1):
    /// - the primary path while it is active;
    /// - otherwise an active alternate;
    /// - with no active path ("dormant", RFC 7829 §5.4), the potentially-failed path with the
    ///   fewest errors (the primary on a tie);
    /// - with every path inactive, the primary (RFC 9260 §8.2 keeps using one destination).
    ///
    /// Unconfirmed paths never carry data (RFC 9260 §5.4).
    pub(crate) fn data_path(&self) -> PathIdx {
        let primary_state = self.paths.get(self.primary).map(|p| p.state);
        if primary_state == Some(PathState::Active) {
            return self.primary;
        }
        if let Some(alt) = self.active_alternate(self.primary) {
            return alt;
        }
        self.paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PathState::PotentiallyFailed)
            .min_by_key(|(i, p)| (p.error_count, *i != self.primary, *i))
            .map_or(self.primary, |(i, _)| i)
    }

    /// The path for the next DATA packet: the data path, except that chunks waiting for
    /// retransmission after a T3-rtx expiry go to another active path if there is one
    /// (RFC 9260 §6.4.1).
    fn send_path(&self) -> PathIdx {
        let dp = self.data_path();
        let rtx = self
            .data
            .as_ref()
            .is_some_and(|d| d.out.has_retransmissions());
        if !rtx {
            return dp;
        }
        match self.rtx_avoid {
            Some(avoid) if avoid == dp => self.active_alternate(avoid).unwrap_or(dp),
            _ => dp,
        }
    }

    fn check_shutdown_progress(&mut self, now: Timestamp) {
        let empty = self.data.as_ref().is_none_or(|d| d.out.is_empty());
        if !empty {
            return;
        }
        let rto = self
            .paths
            .get(self.primary)
            .map_or(Duration::from_secs(1), |p| p.rto.rto());
        match self.state {
            State::ShutdownPending => {
                // §9.2: all data acknowledged: send SHUTDOWN, start T2, enter SHUTDOWN-SENT.
                self.state = State::ShutdownSent { retransmits: 0 };
                self.pending.shutdown = true;
                self.timers.start(Timer::T2Shutdown, now + rto);
            }
            State::ShutdownReceived => {
                // §9.2: send SHUTDOWN ACK, start T2, enter SHUTDOWN-ACK-SENT.
                self.state = State::ShutdownAckSent { retransmits: 0 };
                self.pending.shutdown_ack = true;
                self.timers.start(Timer::T2Shutdown, now + rto);
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- timers

    pub(crate) fn handle_timeout(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        while let Some(t) = self.timers.pop_expired(now) {
            if self.is_closed() {
                return;
            }
            self.on_timer(t, now, ctx);
        }
    }

    fn on_timer(&mut self, t: Timer, now: Timestamp, ctx: &mut Ctx<'_>) {
        let max_init = self.config.max_init_retransmits;
        match t {
            Timer::T1Init => {
                let State::CookieWait { retransmits, .. } = &mut self.state else {
                    return;
                };
                *retransmits += 1;
                if *retransmits > max_init {
                    self.lost(ctx, LostReason::HandshakeTimeout);
                    return;
                }
                // RFC 9260 §5.1 / §6.3.3: retransmit with the RTO backed off.
                if let Some(p) = self.paths.get_mut(self.primary) {
                    p.rto.back_off(&self.config);
                }
                self.next_connect_address();
                self.pending.init = true;
                let rto = self.primary_rto();
                self.timers.start(Timer::T1Init, now + rto);
            }
            Timer::T1Cookie => {
                let State::CookieEchoed {
                    retransmits,
                    sent_at,
                    ..
                } = &mut self.state
                else {
                    return;
                };
                *retransmits += 1;
                *sent_at = now;
                if *retransmits > max_init {
                    self.lost(ctx, LostReason::HandshakeTimeout);
                    return;
                }
                if let Some(p) = self.paths.get_mut(self.primary) {
                    p.rto.back_off(&self.config);
                }
                self.pending.cookie_echo = true;
                let rto = self.primary_rto();
                self.timers.start(Timer::T1Cookie, now + rto);
            }
            Timer::T2Shutdown => {
                // §9.2: retransmit SHUTDOWN / SHUTDOWN ACK, count the error.
                let retransmits = match &mut self.state {
                    State::ShutdownSent { retransmits }
                    | State::ShutdownAckSent { retransmits } => retransmits,
                    _ => return,
                };
                *retransmits += 1;
                let primary = self.primary;
                self.count_path_error(primary, now, ctx);
                if self.count_error() {
                    self.lost(ctx, LostReason::MaxRetransmissions);
                    return;
                }
                if let Some(p) = self.paths.get_mut(self.primary) {
                    p.rto.back_off(&self.config);
                }
                match self.state {
                    State::ShutdownSent { .. } => self.pending.shutdown = true,
                    State::ShutdownAckSent { .. } => self.pending.shutdown_ack = true,
                    _ => {}
                }
                let rto = self.primary_rto();
                self.timers.start(Timer::T2Shutdown, now + rto);
            }
            Timer::T5ShutdownGuard => {
                // §9.2: the guard expired: abort.
                self.abort_with(
                    now,
                    ctx,
                    ErrorCause {
                        code: CauseCode::USER_INITIATED_ABORT,
                        info: b"shutdown guard timer expired".to_vec(),
                    },
                );
            }
            Timer::DelayedSack => {
                if let Some(d) = self.data.as_mut()
                    && d.inb.sack_pending()
                {
                    d.inb.request_sack_now();
                }
            }
            Timer::Autoclose => {
                if matches!(self.state, State::Established) {
                    let idle = now.saturating_duration_since(self.last_activity);
                    match self.config.autoclose {
                        Some(limit) if idle >= limit => self.shutdown(now, ctx),
                        Some(limit) => {
                            let at = self.last_activity + limit;
                            self.timers.start(Timer::Autoclose, at);
                        }
                        None => {}
                    }
                }
            }
            Timer::T3Rtx(p) => self.on_t3(p, now, ctx),
            Timer::Heartbeat(p) => self.on_heartbeat_timer(p, now, ctx),
            Timer::PrLifetime => self.on_pr_lifetime(now, ctx),
            Timer::T4Asconf => self.on_t4(now, ctx),
            Timer::Reconfig => self.on_reconf_timer(now, ctx),
        }
    }

    fn primary_rto(&self) -> Duration {
        self.paths
            .get(self.primary)
            .map_or(self.config.rto_initial, |p| p.rto.rto())
    }

    fn on_t3(&mut self, p: PathIdx, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some(d) = self.data.as_mut() else {
            return;
        };
        if !d.out.has_unacked() {
            return;
        }
        let counts = d.out.on_t3_expired(p, &mut self.paths, &self.config);
        // Messages abandoned by their retransmission limit (RFC 7496 §3.1) free buffer.
        if d.out.take_send_space(&self.config) {
            ctx.event(Event::SendSpace);
        }
        // §6.4.1: retransmit what timed out to another active destination if possible.
        self.rtx_avoid = Some(p);
        // A path the peer deleted (RFC 5061) only hands its chunks over; it counts nothing.
        if counts && self.paths.get(p).is_some_and(|path| !path.removed) {
            // §6.3.3 / §8.1 / §8.2: a timeout is an error on the path and association.
            self.count_path_error(p, now, ctx);
            if self.count_error() {
                self.lost(ctx, LostReason::MaxRetransmissions);
                return;
            }
        }
        // E3/E4: the retransmission goes out with the next packet; R1 restarts T3 then.
        let _ = now;
    }

    /// A message lifetime ended: abandon what expired (RFC 3758 §3.5, timed reliability)
    /// and wait for the next lifetime.
    fn on_pr_lifetime(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some(d) = self.data.as_mut() else {
            return;
        };
        d.out.expire(now, &mut self.paths);
        // Everything due by now is handled: the next deadline lies in the future (no busy
        // loop on a message that can no longer be abandoned).
        if let Some(next) = d.out.next_expiry(now) {
            self.timers.start(Timer::PrLifetime, next);
        }
        if d.out.take_send_space(&self.config) {
            ctx.event(Event::SendSpace);
        }
        self.check_shutdown_progress(now);
    }

    fn on_heartbeat_timer(&mut self, p: PathIdx, now: Timestamp, ctx: &mut Ctx<'_>) {
        if !self.is_open_for_heartbeat() {
            return;
        }
        let Some(path) = self.paths.get_mut(p) else {
            return;
        };
        if path.removed {
            return;
        }
        let unanswered = path.hb_outstanding.take().is_some();
        let idle = !path.sent_in_hb_period;
        path.sent_in_hb_period = false;
        let unconfirmed = path.state == PathState::Unconfirmed;
        if unanswered {
            // §8.3: a HEARTBEAT not acknowledged within an RTO is an error for the path, and
            // for the association unless the address was never confirmed (§5.4: such an
            // address is not part of the association's reachability yet).
            path.rto.back_off(&self.config);
            self.count_path_error(p, now, ctx);
            if !unconfirmed && self.count_error() {
                self.lost(ctx, LostReason::MaxRetransmissions);
                return;
            }
        }
        let probing = self.paths.get(p).is_some_and(|path| {
            path.state == PathState::PotentiallyFailed
                || (path.state == PathState::Unconfirmed
                    && path.error_count <= self.config.path_max_retrans)
        });
        if idle || unanswered || probing {
            self.pending.heartbeat |= 1 << p.min(7);
        }
        // The heartbeat goes out with the next packet, which re-arms this timer to wait one
        // RTO for the acknowledgement; until then the timer keeps the next regular slot.
        let at = self.next_heartbeat_at(p, now, ctx);
        self.timers.start(Timer::Heartbeat(p), at);
    }

    fn is_open_for_heartbeat(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::ShutdownPending | State::ShutdownReceived
        )
    }

    // ---------------------------------------------------------------- input

    /// Handles a packet routed to this association. `cookie` is the already verified state
    /// cookie when the first chunk is a COOKIE ECHO.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_packet(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        src: IpAddr,
        dst: IpAddr,
        encaps_port: u16,
        pkt: &Packet<'_>,
        cookie: Option<(&CookieContents<'_>, &PeerInit)>,
    ) {
        let Some(first) = chunk::first_chunk(pkt) else {
            return;
        };
        // RFC 9260 §8.5 and §8.5.1: verification tag rules.
        let t_bit = first.flags() & 0x01 != 0;
        let tag_ok = match first.chunk_type() {
            ChunkType::ABORT | ChunkType::SHUTDOWN_COMPLETE if t_bit => {
                pkt.verification_tag() == self.peer_tag && self.peer_tag != 0
            }
            ChunkType::COOKIE_ECHO => cookie.is_some(),
            _ => pkt.verification_tag() == self.local_tag,
        };
        if !tag_ok {
            // §8.5.1 (E): SHUTDOWN ACK in COOKIE-WAIT/ECHOED is treated as OOTB.
            return;
        }
        let path_idx = self.path_of(src);
        if let Some(i) = path_idx
            && let Some(p) = self.paths.get_mut(i)
        {
            // RFC 6951 §5.4: the peer's UDP port follows the latest packet.
            p.encaps_port = encaps_port;
            if p.local.is_none() {
                p.local = Some(dst);
            }
        }
        let mut had_data = false;
        let mut index = 0usize;
        // RFC 4895 §6.3: chunks after a verified AUTH chunk are authenticated.
        let mut authenticated = false;
        let mut chunks = pkt.chunks();
        loop {
            let at = chunks.offset();
            let Some(ch) = chunks.next() else { break };
            if self.is_closed() {
                break;
            }
            let first_chunk = index == 0;
            index += 1;
            if let Some(a) = self.auth.as_deref() {
                let ty = ch.chunk_type();
                if ty == ChunkType::AUTH {
                    if authenticated {
                        // Only the first AUTH chunk counts; later ones are covered by it.
                        continue;
                    }
                    match crate::wire::Auth::parse(&ch).map(|c| a.verify(pkt.as_bytes(), at, &c)) {
                        Ok(Verdict::Valid) => {
                            authenticated = true;
                            continue;
                        }
                        Ok(Verdict::UnsupportedHmac) => {
                            // §6.3: report "Unsupported HMAC Identifier" and discard.
                            let id = crate::wire::Auth::parse(&ch).map_or(0, |c| c.hmac_id.get());
                            push_cause(
                                &mut self.pending.errors,
                                MAX_PENDING_ERRORS,
                                CauseCode::UNSUPPORTED_HMAC_IDENTIFIER,
                                &id.to_be_bytes(),
                            );
                            self.auth_discarded = self.auth_discarded.saturating_add(1);
                            break;
                        }
                        _ => {
                            // §6.3: an AUTH chunk that does not verify: the packet is
                            // discarded from here on, silently.
                            self.auth_discarded = self.auth_discarded.saturating_add(1);
                            break;
                        }
                    }
                }
                if !authenticated && a.recv_required.contains(ty) {
                    // §6.3: a chunk this side requires authenticated, without a verified
                    // AUTH before it, is discarded silently.
                    self.auth_discarded = self.auth_discarded.saturating_add(1);
                    continue;
                }
            }
            match ch.chunk_type() {
                ChunkType::COOKIE_ECHO => {
                    if !first_chunk {
                        continue;
                    }
                    let Some((c, peer)) = cookie else { return };
                    if self.on_cookie_echo(now, ctx, c, peer, src) == CookieVerdict::Discard {
                        return;
                    }
                }
                ChunkType::INIT | ChunkType::INIT_ACK if index > 1 => return,
                ChunkType::INIT => return,
                ChunkType::INIT_ACK => self.on_init_ack(now, ctx, &ch, src),
                ChunkType::COOKIE_ACK => self.on_cookie_ack(now, ctx),
                ChunkType::ABORT => {
                    if ch.flags() & 0x01 != 0
                        && !(pkt.verification_tag() == self.peer_tag && self.peer_tag != 0)
                    {
                        return;
                    }
                    if ch.flags() & 0x01 == 0 && pkt.verification_tag() != self.local_tag {
                        return;
                    }
                    ctx.event(Event::Aborted(AbortReason::Peer(parse_causes(ch.value()))));
                    self.close(ctx);
                    return;
                }
                ChunkType::SHUTDOWN_COMPLETE => {
                    // §9.2: only meaningful in SHUTDOWN-ACK-SENT; otherwise ignored.
                    if matches!(self.state, State::ShutdownAckSent { .. }) {
                        ctx.event(Event::ShutdownComplete);
                        self.close(ctx);
                    }
                    return;
                }
                ChunkType::DATA if self.data.as_ref().is_some_and(|d| d.out.idata) => {
                    // RFC 8260 §2.1: once I-DATA is negotiated, a DATA chunk is a protocol
                    // violation and the association is aborted.
                    self.violation(now, ctx, Violation::DataOnIData);
                    return;
                }
                ChunkType::DATA => {
                    if self.on_data(now, ctx, &ch, false) {
                        had_data = true;
                        self.sack_path = path_idx.or(self.sack_path);
                    }
                }
                // Without I-DATA negotiated an I-DATA chunk is unknown and follows its action
                // bits below (RFC 8260 §2.1).
                ChunkType::I_DATA if self.data.as_ref().is_some_and(|d| d.out.idata) => {
                    if self.on_data(now, ctx, &ch, true) {
                        had_data = true;
                        self.sack_path = path_idx.or(self.sack_path);
                    }
                }
                ChunkType::SACK => self.on_sack(now, ctx, &ch),
                // RFC 3758 §3.3.1: without PR-SCTP negotiated a FORWARD TSN is an unknown
                // chunk and follows its action bits (skip and report) below.
                // RFC 8260 §2.3: with I-DATA, PR-SCTP uses I-FORWARD TSN. (This side does not
                // generate it yet, but processes the peer's.)
                ChunkType::I_FORWARD_TSN
                    if self.config.pr_sctp && self.data.as_ref().is_some_and(|d| d.out.idata) =>
                {
                    if self.on_iforward_tsn(now, ctx, &ch) {
                        had_data = true;
                        self.sack_path = path_idx.or(self.sack_path);
                    }
                }
                ChunkType::FORWARD_TSN if self.data.as_ref().is_some_and(|d| d.out.pr) => {
                    if self.on_forward_tsn(now, ctx, &ch) {
                        had_data = true;
                        self.sack_path = path_idx.or(self.sack_path);
                    }
                }
                ChunkType::HEARTBEAT => self.on_heartbeat(&ch, path_idx.unwrap_or(self.primary)),
                ChunkType::HEARTBEAT_ACK => self.on_heartbeat_ack(now, ctx, &ch),
                ChunkType::SHUTDOWN => self.on_shutdown(now, ctx, &ch),
                ChunkType::SHUTDOWN_ACK => {
                    self.on_shutdown_ack(now, ctx, pkt.verification_tag(), path_idx)
                }
                ChunkType::ERROR => self.on_error(now, ctx, &ch),
                // RFC 5061: only with Add-IP negotiated (which needs AUTH, so the checks above
                // ran: both are in this side's CHUNKS list, RFC 5061 §4.1).
                ChunkType::ASCONF if self.asconf.is_some() && authenticated => {
                    if self.is_open_for_heartbeat() {
                        self.on_asconf(now, ctx, &ch, src);
                    }
                }
                ChunkType::ASCONF_ACK if self.asconf.is_some() && authenticated => {
                    self.on_asconf_ack(now, ctx, &ch);
                }
                // RFC 6525: only when negotiated; otherwise unknown (action bits: skip).
                ChunkType::RE_CONFIG if self.reconf.is_some() => self.on_reconf(now, ctx, &ch),
                ChunkType::ECNE | ChunkType::CWR | ChunkType::PAD => {}
                _ => {
                    // RFC 9260 §3.2: unrecognized chunk types follow their action bits.
                    let action = ch.chunk_type().unknown_action();
                    // Reports go out once the peer's tag is known (not in COOKIE-WAIT).
                    // The cause carries the whole chunk (§3.3.10.6); one too large for the
                    // bounded report queue is not reported.
                    if action.reports() && self.peer_tag != 0 {
                        push_cause(
                            &mut self.pending.errors,
                            MAX_PENDING_ERRORS,
                            CauseCode::UNRECOGNIZED_CHUNK_TYPE,
                            ch.as_bytes(),
                        );
                    }
                    if !action.skips() {
                        break;
                    }
                }
            }
        }
        if had_data {
            self.after_data_packet(now);
            // RFC 6525 §5.2.2: a deferred reset may be due now.
            if self.reconf.as_deref().is_some_and(ReconfState::deferring) {
                self.reconf_after_data(now, ctx);
            }
        }
    }

    fn path_of(&self, addr: IpAddr) -> Option<PathIdx> {
        self.paths.iter().position(|p| p.remote == addr)
    }

    fn on_init_ack(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>, src: IpAddr) {
        // §5.2.3: an INIT ACK outside COOKIE-WAIT is discarded.
        if !matches!(self.state, State::CookieWait { .. }) {
            return;
        }
        let Ok(init_ack) = InitAck::parse(ch) else {
            self.violation(now, ctx, Violation::MalformedChunk(ChunkType::INIT_ACK));
            return;
        };
        let peer = PeerInit::from_init_ack(&init_ack);
        if peer.tag == 0 || peer.os == 0 || peer.mis == 0 {
            // §3.3.3: the endpoint MUST abort on a zero Initiate Tag or stream count.
            self.peer_tag = peer.tag;
            self.violation(now, ctx, Violation::InvalidInitAck);
            return;
        }
        if peer.host_name {
            self.peer_tag = peer.tag;
            self.violation(now, ctx, Violation::HostNameAddress);
            return;
        }
        let Some(cookie) = init_ack.state_cookie() else {
            self.peer_tag = peer.tag;
            self.violation(now, ctx, Violation::MissingCookie);
            return;
        };
        // §3.2.1/§3.3.10.8: unrecognized parameters with the report bit go back in an
        // ERROR (Unrecognized Parameters, the TLVs as received) bundled with COOKIE ECHO.
        let mut report = Vec::new();
        if let Some(params) = init_ack.params.wire_bytes() {
            unrecognized_params(
                params,
                &mut report,
                MAX_PENDING_ERRORS,
                false,
                self.config.pr_sctp,
            );
        }
        let report = (!report.is_empty()).then(|| {
            let mut c = Vec::new();
            push_cause(
                &mut c,
                usize::MAX,
                CauseCode::UNRECOGNIZED_PARAMETERS,
                &report,
            );
            c.into_boxed_slice()
        });
        let given = self.take_connect_answer(src);
        self.install_peer(&peer, src, now);
        self.keep_connect_addresses(given, peer.a_rwnd);
        // The INIT ACK may come from another of the peer's addresses than the INIT went to:
        // the primary path now leads there, so a multi-homed endpoint sends from its local
        // address best suited to it (longest common prefix), as for every other path. Else
        // the peer's answers (SACKs go to the DATA's source, RFC 9260 §6.4) would follow a
        // link the data does not use, and die with it.
        if let Some(l) = pick_local(&self.local_addrs, src)
            && let Some(p) = self.paths.get_mut(self.primary)
        {
            p.local = Some(l);
        }
        self.timers.stop(Timer::T1Init);
        // §5.1 C: send COOKIE ECHO, start T1-cookie.
        self.state = State::CookieEchoed {
            cookie: cookie.to_vec().into_boxed_slice(),
            retransmits: 0,
            report,
            sent_at: now,
        };
        self.pending.cookie_echo = true;
        let rto = self.primary_rto();
        self.timers.start(Timer::T1Cookie, now + rto);
        self.routing_changed = true;
        let _ = ctx;
    }

    fn on_cookie_ack(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        // §5.2.5: a COOKIE ACK outside COOKIE-ECHOED is discarded.
        if !matches!(self.state, State::CookieEchoed { .. }) {
            return;
        }
        self.timers.stop(Timer::T1Cookie);
        self.state = State::Established;
        self.error_count = 0;
        self.start_heartbeats(now, ctx);
        self.touch_autoclose(now);
        ctx.event(Event::Connected);
    }

    /// RFC 9260 §5.2.4: a COOKIE ECHO when a TCB exists.
    fn on_cookie_echo(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        c: &CookieContents<'_>,
        peer: &PeerInit,
        src: IpAddr,
    ) -> CookieVerdict {
        let local_m = c.local_tag == self.local_tag;
        let peer_m = c.peer_tag == self.peer_tag;
        let tie_m = c.local_tie_tag == self.local_tag && c.peer_tie_tag == self.peer_tag;
        if !local_m && !peer_m && tie_m {
            // Case A: the peer restarted.
            if matches!(self.state, State::ShutdownAckSent { .. }) {
                // §9.2 / §5.2.4 A: SHUTDOWN ACK plus "Cookie Received While Shutting Down".
                self.pending.shutdown_ack = true;
                push_cause(
                    &mut self.pending.errors,
                    MAX_PENDING_ERRORS,
                    CauseCode::COOKIE_RECEIVED_WHILE_SHUTTING_DOWN,
                    &[],
                );
                return CookieVerdict::Discard;
            }
            let mut addrs = peer.addresses.clone();
            addrs.push(src);
            if addrs.iter().any(|a| self.path_of(*a).is_none()) {
                // Restart with new addresses: the endpoint answers with ABORT (done by the
                // endpoint for INIT; for a cookie, discard).
                return CookieVerdict::Discard;
            }
            self.restart(now, ctx, c, peer, src);
            return CookieVerdict::Continue;
        }
        if local_m && !peer_m {
            // Case B: INIT collision; take the peer's new parameters.
            let was_setup = matches!(
                self.state,
                State::CookieWait { .. } | State::CookieEchoed { .. }
            );
            self.peer_tag = c.peer_tag;
            if was_setup {
                self.local_os = c.local_os;
                self.local_mis = c.local_mis;
                self.take_cookie_random(c);
                self.install_peer(peer, src, now);
                self.establish(now, ctx);
            }
            self.pending.cookie_ack = true;
            self.routing_changed = true;
            return CookieVerdict::Continue;
        }
        if !local_m && peer_m && c.local_tie_tag == 0 && c.peer_tie_tag == 0 {
            // Case C: a late cookie from an earlier attempt.
            return CookieVerdict::Discard;
        }
        if local_m && peer_m {
            // Case D.
            if matches!(
                self.state,
                State::CookieWait { .. } | State::CookieEchoed { .. }
            ) {
                if self.data.is_none() {
                    self.take_cookie_random(c);
                    self.install_peer(peer, src, now);
                }
                self.establish(now, ctx);
            }
            self.pending.cookie_ack = true;
            return CookieVerdict::Continue;
        }
        // §5.2.4: any other combination is silently discarded.
        CookieVerdict::Discard
    }

    /// The RANDOM of the INIT ACK the cookie came from becomes ours (RFC 4895 §6.1: the
    /// key vectors are those of the INIT and INIT ACK that built the association).
    fn take_cookie_random(&mut self, c: &CookieContents<'_>) {
        if self.config.auth {
            self.local_auth = Some(Box::new(LocalAuth::new(&self.config, c.local_random)));
        }
    }

    /// This side's RANDOM (answered in an INIT ACK for this association, §5.2.1/§5.2.2).
    pub(crate) fn auth_random(&self) -> Option<[u8; auth::RANDOM_LEN]> {
        self.local_auth.as_ref().map(|l| l.random)
    }

    fn establish(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        self.timers.stop(Timer::T1Init);
        self.timers.stop(Timer::T1Cookie);
        if !matches!(self.state, State::Established) {
            self.state = State::Established;
            self.error_count = 0;
            self.start_heartbeats(now, ctx);
            self.touch_autoclose(now);
            ctx.event(Event::Connected);
        }
    }

    /// Case A of §5.2.4: a new TCB in place of the old one, reported as a restart.
    fn restart(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        c: &CookieContents<'_>,
        peer: &PeerInit,
        src: IpAddr,
    ) {
        self.local_tag = c.local_tag;
        self.local_initial_tsn = Tsn(c.local_initial_tsn);
        self.local_os = c.local_os;
        self.local_mis = c.local_mis;
        self.take_cookie_random(c);
        self.timers.stop_all();
        self.pending = Pending::default();
        let primary_remote = src;
        let config = Arc::clone(&self.config);
        for p in &mut self.paths {
            let fresh = Path::new(p.remote, p.local, p.encaps_port, p.state, &config);
            *p = fresh;
        }
        self.primary = self.path_of(primary_remote).unwrap_or(0);
        self.install_peer(peer, src, now);
        self.state = State::Established;
        self.error_count = 0;
        self.readable_reported = false;
        self.pending.cookie_ack = true;
        self.start_heartbeats(now, ctx);
        self.touch_autoclose(now);
        self.routing_changed = true;
        ctx.event(Event::Restarted);
    }

    /// The answer to an INIT arriving for this association (§5.2.1, §5.2.2, §9.2).
    pub(crate) fn answer_init(&mut self, peer: &PeerInit, src: IpAddr) -> InitAnswer {
        match self.state {
            // §5.2.1: answer with the parameters of our own INIT, Initiate Tag and Initial
            // TSN unchanged.
            State::CookieWait { .. } => InitAnswer::InitAck {
                initiate_tag: Some(self.local_tag),
                initial_tsn: Some(self.local_initial_tsn.get()),
                local_tie_tag: self.local_tag,
                peer_tie_tag: 0,
            },
            State::CookieEchoed { .. } => {
                if self.adds_addresses(peer, src) {
                    return InitAnswer::AbortNewAddresses;
                }
                InitAnswer::InitAck {
                    initiate_tag: Some(self.local_tag),
                    initial_tsn: Some(self.local_initial_tsn.get()),
                    local_tie_tag: self.local_tag,
                    peer_tie_tag: self.peer_tag,
                }
            }
            State::ShutdownAckSent { .. } => {
                // §9.2: discard the INIT and retransmit SHUTDOWN ACK.
                self.pending.shutdown_ack = true;
                InitAnswer::Discard
            }
            State::Closed => InitAnswer::Discard,
            _ => {
                if self.adds_addresses(peer, src) {
                    return InitAnswer::AbortNewAddresses;
                }
                InitAnswer::InitAck {
                    initiate_tag: None,
                    initial_tsn: None,
                    local_tie_tag: self.local_tag,
                    peer_tie_tag: self.peer_tag,
                }
            }
        }
    }

    fn adds_addresses(&self, peer: &PeerInit, src: IpAddr) -> bool {
        self.path_of(src).is_none()
            || peer
                .addresses
                .iter()
                .filter(|a| is_unicast(**a) && a.is_ipv4() == src.is_ipv4())
                .any(|a| self.path_of(*a).is_none())
                && self.paths.len() < MAX_PATHS
    }

    /// Returns true if the chunk carried new data (for SACK timing). `idata`: the chunk is
    /// an I-DATA chunk (the caller checked that I-DATA is in use).
    fn on_data(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        ch: &RawChunk<'_>,
        idata: bool,
    ) -> bool {
        if matches!(
            self.state,
            State::CookieWait { .. } | State::CookieEchoed { .. } | State::ShutdownAckSent { .. }
        ) {
            return false;
        }
        // RFC 6525 §5.2.2: data of a deferred reset waits for it.
        if self.reconf.as_deref().is_some_and(ReconfState::deferring) && self.reconf_hold_data(ch) {
            return true;
        }
        let Some(d) = self.data.as_mut() else {
            return false;
        };
        let (verdict, tsn, stream_id) = if idata {
            let Ok(v) = IData::parse(ch) else {
                self.violation(now, ctx, Violation::MalformedChunk(ChunkType::I_DATA));
                return false;
            };
            let word = if v.beginning { v.ppid.get() } else { v.fsn.0 };
            let verdict = d
                .inb
                .on_idata(v.tsn, v.stream_id, v.mid.0, word, v.flags(), v.payload);
            // A peer numbering its fragments the Linux way expects the same from us.
            if d.inb.peer_fsn() == PeerFsn::Linux && !d.out.linux_fsn() {
                d.out.use_linux_fsn();
            }
            (verdict, v.tsn, v.stream_id)
        } else {
            let Ok(v) = Data::parse(ch) else {
                self.violation(now, ctx, Violation::MalformedChunk(ChunkType::DATA));
                return false;
            };
            let verdict = d.inb.on_data(
                v.tsn,
                v.stream_id,
                v.ssn,
                v.ppid.get(),
                v.flags(),
                v.payload,
            );
            (verdict, v.tsn, v.stream_id)
        };
        match verdict {
            DataVerdict::Accepted => {
                self.last_activity = now;
                if d.inb.has_ready() && !self.readable_reported {
                    self.readable_reported = true;
                    ctx.event(Event::DataReadable);
                }
            }
            DataVerdict::Duplicate | DataVerdict::Dropped => {}
            DataVerdict::InvalidStream => {
                // §6.5: ERROR with Invalid Stream Identifier (stream, reserved).
                let mut info = [0u8; 4];
                info[..2].copy_from_slice(&stream_id.to_be_bytes());
                push_cause(
                    &mut self.pending.errors,
                    MAX_PENDING_ERRORS,
                    CauseCode::INVALID_STREAM_IDENTIFIER,
                    &info,
                );
            }
            DataVerdict::NoUserData => {
                self.violation(now, ctx, Violation::NoUserData(tsn));
                return false;
            }
            DataVerdict::MessageTooLarge => {
                self.violation(now, ctx, Violation::MessageTooLarge);
                return false;
            }
            DataVerdict::FsnViolation => {
                self.violation(now, ctx, Violation::IDataFsn(tsn));
                return false;
            }
        }
        true
    }

    /// RFC 8260 §2.3.2: an I-FORWARD TSN. Returns true if it was processed.
    fn on_iforward_tsn(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) -> bool {
        if matches!(
            self.state,
            State::CookieWait { .. } | State::CookieEchoed { .. } | State::ShutdownAckSent { .. }
        ) {
            return false;
        }
        let Some(d) = self.data.as_mut() else {
            return false;
        };
        let Ok(f) = IForwardTsn::parse(ch) else {
            self.violation(
                now,
                ctx,
                Violation::MalformedChunk(ChunkType::I_FORWARD_TSN),
            );
            return false;
        };
        let verdict = d.inb.on_iforward_tsn(
            f.new_cumulative_tsn,
            &mut f
                .streams
                .iter()
                .map(|e| (e.stream_id, e.unordered, e.mid.0)),
        );
        match verdict {
            ForwardVerdict::Violation => {
                self.violation(now, ctx, Violation::ForwardTsnBeyondWindow);
                return false;
            }
            ForwardVerdict::Stale => {}
            ForwardVerdict::Advanced => {
                self.last_activity = now;
                if d.inb.has_ready() && !self.readable_reported {
                    self.readable_reported = true;
                    ctx.event(Event::DataReadable);
                }
                for (stream, message) in d.inb.take_pd_aborted() {
                    ctx.event(Event::PartialDeliveryAborted { stream, message });
                }
            }
        }
        true
    }

    /// RFC 3758 §3.6: a FORWARD TSN. Returns true if it was processed (for SACK timing).
    fn on_forward_tsn(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) -> bool {
        if matches!(
            self.state,
            State::CookieWait { .. } | State::CookieEchoed { .. } | State::ShutdownAckSent { .. }
        ) {
            return false;
        }
        let Some(d) = self.data.as_mut() else {
            return false;
        };
        let Ok(f) = ForwardTsn::parse(ch) else {
            self.violation(now, ctx, Violation::MalformedChunk(ChunkType::FORWARD_TSN));
            return false;
        };
        let verdict = d.inb.on_forward_tsn(
            f.new_cumulative_tsn,
            &mut f.streams.iter().map(|e| (e.stream_id, e.ssn)),
        );
        match verdict {
            ForwardVerdict::Violation => {
                self.violation(now, ctx, Violation::ForwardTsnBeyondWindow);
                return false;
            }
            ForwardVerdict::Stale => {}
            ForwardVerdict::Advanced => {
                self.last_activity = now;
                if d.inb.has_ready() && !self.readable_reported {
                    self.readable_reported = true;
                    ctx.event(Event::DataReadable);
                }
                for (stream, message) in d.inb.take_pd_aborted() {
                    ctx.event(Event::PartialDeliveryAborted { stream, message });
                }
            }
        }
        true
    }

    fn after_data_packet(&mut self, now: Timestamp) {
        let every = self.config.delayed_sack_packets;
        let shutdown_sent = matches!(self.state, State::ShutdownSent { .. });
        let Some(d) = self.data.as_mut() else {
            return;
        };
        let now_due = d.inb.on_data_packet(every);
        if shutdown_sent {
            // §9.2: in SHUTDOWN-SENT answer each DATA packet with SHUTDOWN (and the SACK
            // for the data) at once, restarting T2.
            d.inb.request_sack_now();
            self.pending.shutdown = true;
            let rto = self.primary_rto();
            self.timers.start(Timer::T2Shutdown, now + rto);
        } else if !now_due && !self.timers.is_running(Timer::DelayedSack) {
            self.timers
                .start(Timer::DelayedSack, now + self.config.delayed_sack_timeout);
        }
        self.touch_autoclose(now);
    }

    fn on_sack(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        let Some(d) = self.data.as_mut() else {
            return;
        };
        if matches!(
            self.state,
            State::CookieWait { .. } | State::CookieEchoed { .. }
        ) {
            return;
        }
        let Ok(s) = Sack::parse(ch) else {
            self.violation(now, ctx, Violation::MalformedChunk(ChunkType::SACK));
            return;
        };
        let res = d.out.on_sack(
            now,
            s.cumulative_tsn_ack,
            s.a_rwnd,
            &mut s.gap_blocks.iter().map(|g| (g.start, g.end)),
            &mut self.paths,
            &mut self.timers,
            &self.config,
        );
        match res {
            Err(_) => self.violation(now, ctx, Violation::SackBeyondSent),
            Ok(o) => {
                if d.out.take_send_space(&self.config) {
                    ctx.event(Event::SendSpace);
                }
                if o.acked_new {
                    // §8.1: an acknowledgement resets the association error counter.
                    self.error_count = 0;
                    self.revive_acknowledged_paths(now, ctx);
                }
                self.check_shutdown_progress(now);
            }
        }
    }

    fn on_heartbeat(&mut self, ch: &RawChunk<'_>, path: PathIdx) {
        if !matches!(
            self.state,
            State::Established
                | State::ShutdownPending
                | State::ShutdownSent { .. }
                | State::ShutdownReceived
                | State::ShutdownAckSent { .. }
        ) {
            return;
        }
        // §8.3: echo the Heartbeat Information unchanged.
        let Ok(hb) = Heartbeat::parse(ch) else {
            return;
        };
        if hb.info.len() > 1024 || self.pending.heartbeat_acks.len() >= MAX_PENDING_HB_ACKS {
            return;
        }
        self.pending
            .heartbeat_acks
            .push_back((path, hb.info.to_vec()));
    }

    fn on_heartbeat_ack(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        let Ok(ack) = HeartbeatAck::parse(ch) else {
            return;
        };
        let v = ack.info;
        if v.len() != HB_INFO_LEN {
            return;
        }
        let nonce = u64::from_be_bytes(v[0..8].try_into().unwrap_or([0; 8]));
        let sent =
            Timestamp::from_micros(u64::from_be_bytes(v[8..16].try_into().unwrap_or([0; 8])));
        let p = usize::from(v[16]);
        let Some(path) = self.paths.get_mut(p) else {
            return;
        };
        if path.hb_outstanding != Some(nonce) {
            return;
        }
        path.hb_outstanding = None;
        path.error_count = 0;
        // §8.3: the heartbeat's round trip is an RTT measurement.
        path.rto
            .measure(now.saturating_duration_since(sent), &self.config);
        self.error_count = 0;
        // §5.4: a heartbeat acknowledged with our nonce confirms the address; §8.3 and RFC
        // 7829 §5.1: it returns a PF or inactive path to service.
        if self
            .paths
            .get(p)
            .is_some_and(|x| x.state != PathState::Active)
        {
            self.set_path_state(p, PathState::Active, now, ctx);
        }
        // The next heartbeat comes after the regular interval.
        let at = self.next_heartbeat_at(p, now, ctx);
        self.timers.start(Timer::Heartbeat(p), at);
    }

    fn on_shutdown(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        let Ok(Shutdown {
            cumulative_tsn_ack: cum,
        }) = Shutdown::parse(ch)
        else {
            self.violation(now, ctx, Violation::MalformedChunk(ChunkType::SHUTDOWN));
            return;
        };
        match self.state {
            State::Established | State::ShutdownPending | State::ShutdownReceived => {
                // §9.2: the Cumulative TSN Ack acknowledges like a SACK without gaps.
                if let Some(d) = self.data.as_mut() {
                    let rwnd = d.out.peer_rwnd();
                    if cum.is_after(d.out.cum_ack()) {
                        let r = d.out.on_sack(
                            now,
                            cum,
                            rwnd,
                            &mut core::iter::empty(),
                            &mut self.paths,
                            &mut self.timers,
                            &self.config,
                        );
                        if r.is_err() {
                            self.violation(now, ctx, Violation::SackBeyondSent);
                            return;
                        }
                    }
                }
                if !matches!(self.state, State::ShutdownReceived) {
                    self.state = State::ShutdownReceived;
                    self.timers.stop(Timer::Autoclose);
                    if !self.timers.is_running(Timer::T5ShutdownGuard) {
                        self.timers
                            .start(Timer::T5ShutdownGuard, now + self.config.shutdown_guard);
                    }
                    ctx.event(Event::ShutdownReceived);
                }
                self.check_shutdown_progress(now);
            }
            State::ShutdownSent { .. } => {
                // §9.2: SHUTDOWN collision: answer with SHUTDOWN ACK, restart T2.
                self.state = State::ShutdownAckSent { retransmits: 0 };
                self.pending.shutdown = false;
                self.pending.shutdown_ack = true;
                let rto = self.primary_rto();
                self.timers.start(Timer::T2Shutdown, now + rto);
            }
            State::ShutdownAckSent { .. } => {
                self.pending.shutdown_ack = true;
            }
            _ => {}
        }
    }

    fn on_shutdown_ack(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        vtag: u32,
        path: Option<PathIdx>,
    ) {
        let _ = (now, vtag, path);
        match self.state {
            State::ShutdownSent { .. } | State::ShutdownAckSent { .. } => {
                // §9.2: stop T2, send SHUTDOWN COMPLETE, remove the association.
                self.send_shutdown_complete(ctx);
                ctx.event(Event::ShutdownComplete);
                self.close(ctx);
            }
            _ => {}
        }
    }

    fn send_shutdown_complete(&mut self, ctx: &mut Ctx<'_>) {
        let sc = ShutdownComplete {
            tag_reflected: false,
        };
        self.queue_reply(ctx, self.peer_tag, ChunkType::SHUTDOWN_COMPLETE, &sc);
    }

    fn on_error(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        let causes = parse_causes(ch.value());
        for c in causes {
            if c.code == CauseCode::STALE_COOKIE
                && let State::CookieEchoed { retransmits, .. } = self.state
            {
                // RFC 9260 §5.2.6: retry with a Cookie Preservative asking for the measured
                // staleness plus a small increment; counts as an INIT retransmission.
                let staleness_us = c
                    .info
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes);
                let increment = self.config.cookie_preservative_increment;
                let ms = u64::from(staleness_us).div_ceil(1000)
                    + u64::try_from(increment.as_millis()).unwrap_or(0);
                let retransmits = retransmits + 1;
                if retransmits > self.config.max_init_retransmits {
                    self.lost(ctx, LostReason::StaleCookie);
                    return;
                }
                self.timers.stop(Timer::T1Cookie);
                self.state = State::CookieWait {
                    retransmits,
                    preservative_ms: Some(u32::try_from(ms).unwrap_or(u32::MAX)),
                };
                self.data = None;
                self.peer_tag = 0;
                self.pending.cookie_echo = false;
                self.pending.init = true;
                let rto = self.primary_rto();
                self.timers.start(Timer::T1Init, now + rto);
                return;
            }
            if !matches!(
                self.state,
                State::CookieWait { .. } | State::CookieEchoed { .. }
            ) {
                ctx.event(Event::PeerError(c));
            }
        }
    }

    // ---------------------------------------------------------------- output

    /// Whether a packet could be produced now (cheap check for the endpoint's send queue).
    pub(crate) fn wants_transmit(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        let p = &self.pending;
        // Mirror `poll_transmit`: during the handshake only INIT and COOKIE ECHO go out.
        match self.state {
            State::CookieWait { .. } => return p.init,
            State::CookieEchoed { .. } => return p.cookie_echo,
            _ => {}
        }
        if p.init
            || p.cookie_echo
            || p.cookie_ack
            || p.shutdown
            || p.shutdown_ack
            || p.shutdown_complete
            || p.heartbeat != 0
            || !p.heartbeat_acks.is_empty()
            || !p.errors.is_empty()
            || self.asconf.as_ref().is_some_and(|s| s.wants_transmit())
            || self.reconf_wants_transmit()
        {
            return true;
        }
        let Some(d) = self.data.as_ref() else {
            return false;
        };
        if d.inb.sack_due_now() {
            return true;
        }
        if !self.can_send_data() {
            return false;
        }
        if d.out.forward_tsn_due() {
            return true;
        }
        self.paths.get(self.send_path()).is_some_and(|path| {
            path.state != PathState::Unconfirmed && d.out.wants_to_send(path, &self.config)
        })
    }

    fn can_send_data(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::ShutdownPending | State::ShutdownReceived
        )
    }

    /// Writes the next packet into `buf`. Returns its length and destination path.
    pub(crate) fn poll_transmit(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        buf: &mut [u8],
    ) -> Option<(usize, PathIdx)> {
        if self.is_closed() {
            return None;
        }
        if let State::CookieWait {
            preservative_ms, ..
        } = self.state
            && self.pending.init
        {
            self.pending.init = false;
            return self.write_init(buf, preservative_ms);
        }
        if self.pending.cookie_echo
            && let State::CookieEchoed { .. } = self.state
        {
            self.pending.cookie_echo = false;
            return self.write_cookie_echo(now, buf);
        }
        if matches!(
            self.state,
            State::CookieWait { .. } | State::CookieEchoed { .. }
        ) {
            return None;
        }
        // The destination: a path owed a HEARTBEAT ACK or HEARTBEAT, else the path data
        // goes to (§6.4).
        if self
            .data
            .as_ref()
            .is_none_or(|d| !d.out.has_retransmissions())
        {
            self.rtx_avoid = None;
        }
        let send_path = self.send_path();
        let path_idx = self
            .pending
            .heartbeat_acks
            .front()
            .map(|(p, _)| *p)
            .or_else(|| {
                (0..self.paths.len()).find(|i| self.pending.heartbeat & (1 << (*i).min(7)) != 0)
            })
            .or_else(|| self.asconf_path())
            .or_else(|| {
                // §6.4: a SACK SHOULD go to the address the DATA came from.
                let due = self.data.as_ref().is_some_and(|d| d.inb.sack_due_now());
                self.sack_path.filter(|&i| {
                    due && i != send_path
                        && self
                            .paths
                            .get(i)
                            .is_some_and(|p| p.state != PathState::Unconfirmed)
                })
            })
            .unwrap_or(send_path)
            .min(self.paths.len().saturating_sub(1));
        let path = self.paths.get(path_idx)?;
        // RFC 9260 §5.4: an unconfirmed address gets nothing but HEARTBEAT and HEARTBEAT ACK.
        let confirmed = path.state != PathState::Unconfirmed;
        let carries_data = confirmed && path_idx == send_path;
        let limit = path.max_packet();
        let header = CommonHeader {
            source_port: self.local_port,
            destination_port: self.peer_port,
            verification_tag: self.peer_tag,
        };
        let mut w = PacketBuilder::new(buf, limit, header).ok()?;
        // Where the AUTH chunk of this packet went, once one was needed (RFC 4895 §6.2).
        let mut auth_at: Option<usize> = None;

        if confirmed
            && self.pending.cookie_ack
            && push_authenticated(
                &self.auth,
                &mut w,
                &mut auth_at,
                ChunkType::COOKIE_ACK,
                &CookieAck,
            )
        {
            self.pending.cookie_ack = false;
        }
        // SACK: when due now, or bundled with data we are about to send anyway (§6.2).
        let will_send_data = carries_data
            && self.can_send_data()
            && self
                .data
                .as_ref()
                .is_some_and(|d| d.out.wants_to_send(path, &self.config));
        let mut sack_in_packet = false;
        if confirmed
            && let Some(d) = self.data.as_mut()
            && (d.inb.sack_due_now()
                || (d.inb.sack_pending() && w.remaining() >= 16 && will_send_data))
        {
            sack_in_packet = true;
            // §6.2: gap blocks and duplicates are limited to what fits the packet.
            let room = w.remaining();
            let sack = d.inb.take_sack(room);
            self.sack_blocks.clear();
            self.sack_blocks.extend(
                sack.gap_offsets()
                    .map(|(start, end)| GapAckBlock { start, end }),
            );
            let chunk = Sack {
                cumulative_tsn_ack: sack.cum_ack,
                a_rwnd: sack.a_rwnd,
                gap_blocks: FixedList::from_items(&self.sack_blocks),
                duplicate_tsns: FixedList::from_items(sack.dups.list()),
            };
            let _ = push_authenticated(&self.auth, &mut w, &mut auth_at, ChunkType::SACK, &chunk);
            drop(sack);
            self.timers.stop(Timer::DelayedSack);
        }
        if confirmed && !self.pending.errors.is_empty() {
            let errs = core::mem::take(&mut self.pending.errors);
            let pushed = TlvList::from_bytes(&errs)
                .map(|causes| {
                    push_authenticated(
                        &self.auth,
                        &mut w,
                        &mut auth_at,
                        ChunkType::ERROR,
                        &ErrorChunk { causes },
                    )
                })
                .unwrap_or(true);
            if !pushed {
                // Too large for what is left: try again in the next packet.
                self.pending.errors = errs;
            }
        }
        if confirmed
            && self.pending.shutdown_ack
            && push_authenticated(
                &self.auth,
                &mut w,
                &mut auth_at,
                ChunkType::SHUTDOWN_ACK,
                &ShutdownAck,
            )
        {
            self.pending.shutdown_ack = false;
        }
        if confirmed && self.pending.shutdown {
            let cum = self.data.as_ref().map_or(Tsn(0), |d| d.inb.cum_ack());
            let chunk = Shutdown {
                cumulative_tsn_ack: cum,
            };
            if push_authenticated(
                &self.auth,
                &mut w,
                &mut auth_at,
                ChunkType::SHUTDOWN,
                &chunk,
            ) {
                self.pending.shutdown = false;
            }
        }
        while let Some((p, _)) = self.pending.heartbeat_acks.front() {
            if *p != path_idx {
                break;
            }
            let Some((_, info)) = self.pending.heartbeat_acks.pop_front() else {
                break;
            };
            let hb_ack = HeartbeatAck { info: &info };
            if !push_authenticated(
                &self.auth,
                &mut w,
                &mut auth_at,
                ChunkType::HEARTBEAT_ACK,
                &hb_ack,
            ) {
                self.pending.heartbeat_acks.push_front((path_idx, info));
                break;
            }
        }
        let hb_bit = 1u8 << path_idx.min(7);
        if self.pending.heartbeat & hb_bit != 0 {
            let nonce = ctx.rng.next_u64();
            let mut info = [0u8; HB_INFO_LEN];
            info[0..8].copy_from_slice(&nonce.to_be_bytes());
            info[8..16].copy_from_slice(&now.as_micros().to_be_bytes());
            info[16] = u8::try_from(path_idx).unwrap_or(u8::MAX);
            let hb = Heartbeat { info: &info };
            if push_authenticated(&self.auth, &mut w, &mut auth_at, ChunkType::HEARTBEAT, &hb) {
                self.pending.heartbeat &= !hb_bit;
                if let Some(p) = self.paths.get_mut(path_idx) {
                    p.hb_outstanding = Some(nonce);
                    p.sent_in_hb_period = true;
                    // §8.3: the heartbeat must be acknowledged within one RTO.
                    let rto = p.rto.rto();
                    self.timers.start(Timer::Heartbeat(path_idx), now + rto);
                }
            }
        }
        // ASCONF ACKs owed to this path's address and our ASCONF (RFC 5061 §5.1, §5.2).
        if self.asconf.is_some() {
            self.write_asconf(now, &mut w, path_idx, confirmed, &mut auth_at);
        }
        // RE-CONFIG responses and our request (RFC 6525 §5.1.1, §5.2).
        if confirmed && self.reconf_wants_transmit() {
            self.write_reconf(now, &mut w, path_idx, &mut auth_at, sack_in_packet);
        }
        // FORWARD TSN (RFC 3758 §3.5 C3), bounded by the room left in the packet (C4); on
        // an I-DATA association an I-FORWARD TSN instead (RFC 8260 §2.3).
        if carries_data
            && self.can_send_data()
            && let Some(d) = self.data.as_mut()
            && d.out.forward_tsn_due()
        {
            let pushed = if d.out.idata {
                d.out
                    .take_iforward_tsn(w.remaining(), &mut self.ifwd_streams)
                    .map(|new_cum| {
                        let chunk = IForwardTsn {
                            new_cumulative_tsn: new_cum,
                            streams: FixedList::from_items(&self.ifwd_streams),
                        };
                        push_authenticated(
                            &self.auth,
                            &mut w,
                            &mut auth_at,
                            ChunkType::I_FORWARD_TSN,
                            &chunk,
                        )
                    })
            } else {
                d.out
                    .take_forward_tsn(w.remaining(), &mut self.fwd_streams)
                    .map(|new_cum| {
                        let chunk = ForwardTsn {
                            new_cumulative_tsn: new_cum,
                            streams: FixedList::from_items(&self.fwd_streams),
                        };
                        push_authenticated(
                            &self.auth,
                            &mut w,
                            &mut auth_at,
                            ChunkType::FORWARD_TSN,
                            &chunk,
                        )
                    })
            };
            if pushed == Some(true) {
                // RFC 3758 §3.5 C5: with a FORWARD TSN sent, at least one T3-rtx timer
                // runs, so a lost FORWARD TSN is sent again (A5).
                let running =
                    (0..self.paths.len()).any(|i| self.timers.is_running(Timer::T3Rtx(i)));
                if !running {
                    let rto = self
                        .paths
                        .get(path_idx)
                        .map_or(self.config.rto_initial, |p| p.rto.rto());
                    self.timers.start(Timer::T3Rtx(path_idx), now + rto);
                }
            } else if pushed == Some(false) {
                d.out.forward_tsn_unsent();
            }
        }
        // DATA.
        if carries_data
            && self.can_send_data()
            && let Some(d) = self.data.as_mut()
        {
            let immediate = matches!(self.state, State::ShutdownPending);
            // Room for the AUTH chunk if DATA (or I-DATA) must be authenticated and none is
            // in yet.
            let data_type = if d.out.idata {
                ChunkType::I_DATA
            } else {
                ChunkType::DATA
            };
            let auth_overhead = self
                .auth
                .as_deref()
                .filter(|a| a.send_required.contains(data_type))
                .map_or(0, |a| a.placeholder().encoded_len());
            let auth_room = if auth_at.is_none() { auth_overhead } else { 0 };
            let room = w.remaining().saturating_sub(auth_room);
            let auth = &self.auth;
            let idata = d.out.idata;
            let wrote = d.out.fill_packet(
                now,
                path_idx,
                &mut self.paths,
                &mut self.timers,
                &self.config,
                FillLimits {
                    room,
                    immediate,
                    overhead: auth_overhead,
                },
                &mut |dr| {
                    if idata {
                        let chunk = IData {
                            tsn: dr.tsn,
                            stream_id: dr.stream,
                            mid: Mid(dr.mid),
                            ppid: Ppid(dr.ppid),
                            fsn: Fsn(dr.ppid),
                            immediate_sack: dr.flags & outbound::flags::IMMEDIATE != 0,
                            unordered: dr.flags & outbound::flags::UNORDERED != 0,
                            beginning: dr.flags & outbound::flags::BEGIN != 0,
                            ending: dr.flags & outbound::flags::END != 0,
                            payload: dr.payload,
                        };
                        if auth.is_none() {
                            return w.push(&chunk).is_ok();
                        }
                        return push_authenticated(
                            auth,
                            &mut w,
                            &mut auth_at,
                            ChunkType::I_DATA,
                            &chunk,
                        );
                    }
                    let chunk = Data {
                        tsn: dr.tsn,
                        stream_id: dr.stream,
                        ssn: dr.ssn,
                        ppid: Ppid(dr.ppid),
                        immediate_sack: dr.flags & outbound::flags::IMMEDIATE != 0,
                        unordered: dr.flags & outbound::flags::UNORDERED != 0,
                        beginning: dr.flags & outbound::flags::BEGIN != 0,
                        ending: dr.flags & outbound::flags::END != 0,
                        payload: dr.payload,
                    };
                    if auth.is_none() {
                        return w.push(&chunk).is_ok();
                    }
                    push_authenticated(auth, &mut w, &mut auth_at, ChunkType::DATA, &chunk)
                },
            );
            if wrote > 0 {
                self.last_activity = now;
                self.touch_autoclose(now);
            }
        }
        if w.is_empty() {
            return None;
        }
        if let (Some(at), Some(a)) = (auth_at, self.auth.as_deref()) {
            a.sign(w.written_mut(), at);
        }
        Some((w.finish_for_link(ctx.tx_checksum_offload), path_idx))
    }

    fn write_init(
        &mut self,
        buf: &mut [u8],
        preservative_ms: Option<u32>,
    ) -> Option<(usize, PathIdx)> {
        let path = self.paths.get(self.primary)?;
        let limit = path.max_packet();
        let header = CommonHeader {
            source_port: self.local_port,
            destination_port: self.peer_port,
            verification_tag: 0,
        };
        let mut w = PacketBuilder::new(buf, limit, header).ok()?;
        let mut params: Vec<Param<'_>> = Vec::new();
        params.extend(preservative_ms.map(Param::CookiePreservative));
        // RFC 9260 §3.3.2.1 / §6.4: a multi-homed endpoint lists its addresses.
        push_address_params(&mut params, &self.local_addrs, (true, true));
        push_extension_params(&mut params, &self.config, self.local_auth.as_deref());
        let params = params.as_slice();
        let init = Init {
            initiate_tag: self.local_tag,
            a_rwnd: self.config.receive_window,
            outbound_streams: self.local_os,
            inbound_streams: self.local_mis,
            initial_tsn: self.local_initial_tsn,
            params: TlvList::from_items(params),
        };
        w.push(&init).ok()?;
        Some((w.finish(), self.primary))
    }

    fn write_cookie_echo(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<(usize, PathIdx)> {
        let path = self.paths.get(self.primary)?;
        // The cookie may exceed the path MTU; IP fragmentation carries it then.
        let limit = path.max_packet().max(buf.len().min(65_535));
        let header = CommonHeader {
            source_port: self.local_port,
            destination_port: self.peer_port,
            verification_tag: self.peer_tag,
        };
        let State::CookieEchoed {
            cookie,
            report,
            sent_at,
            ..
        } = &mut self.state
        else {
            return None;
        };
        *sent_at = now;
        let mut w = PacketBuilder::new(buf, limit, header).ok()?;
        // §5.1 C: COOKIE ECHO first; an ERROR reporting unrecognized INIT ACK parameters may
        // follow it (§3.2.2).
        w.push(&CookieEcho { cookie }).ok()?;
        let mut auth_at = None;
        if let Some(r) = report.take()
            && let Ok(causes) = TlvList::from_bytes(&r)
        {
            let _ = push_authenticated(
                &self.auth,
                &mut w,
                &mut auth_at,
                ChunkType::ERROR,
                &ErrorChunk { causes },
            );
        }
        if let (Some(at), Some(a)) = (auth_at, self.auth.as_deref()) {
            a.sign(w.written_mut(), at);
        }
        Some((w.finish(), self.primary))
    }
}

/// Every combination of the Supported Extensions list, indexed by the bits of
/// [`extension_mask`]: the lists must outlive the INIT parameters built from them.
static EXTENSION_LISTS: [([ChunkType; 7], usize); 32] = {
    let mut t = [([ChunkType(0); 7], 0usize); 32];
    let mut mask = 0;
    while mask < 32 {
        let mut n = 0;
        let mut l = [ChunkType(0); 7];
        if mask & 1 != 0 {
            l[n] = ChunkType::FORWARD_TSN;
            n += 1;
        }
        if mask & 2 != 0 {
            l[n] = ChunkType::AUTH;
            n += 1;
        }
        if mask & 4 != 0 {
            l[n] = ChunkType::ASCONF;
            l[n + 1] = ChunkType::ASCONF_ACK;
            n += 2;
        }
        if mask & 8 != 0 {
            l[n] = ChunkType::I_DATA;
            n += 1;
            // RFC 8260 §2.3.1: I-FORWARD TSN is listed along with I-DATA when PR-SCTP is on.
            if mask & 1 != 0 {
                l[n] = ChunkType::I_FORWARD_TSN;
                n += 1;
            }
        }
        if mask & 16 != 0 {
            l[n] = ChunkType::RE_CONFIG;
            n += 1;
        }
        t[mask] = (l, n);
        mask += 1;
    }
    t
};

/// Which extensions are switched on (bits of [`EXTENSION_LISTS`]).
fn extension_mask(config: &AssociationConfig) -> usize {
    usize::from(config.pr_sctp)
        | usize::from(config.auth) << 1
        | usize::from(config.auth && config.asconf) << 2
        | usize::from(config.i_data) << 3
        | usize::from(config.reconf) << 4
}

/// The chunk types listed in our Supported Extensions parameter (RFC 5061 §4.2.7): what is
/// switched on of PR-SCTP, AUTH, Add-IP, I-DATA and RE-CONFIG (RFC 6525 §3.1).
fn supported_extensions(config: &AssociationConfig) -> &'static [ChunkType] {
    let (list, n) = &EXTENSION_LISTS[extension_mask(config)];
    list.get(..*n).unwrap_or(&[])
}

/// Appends the extension parameters of INIT and INIT ACK: Supported Extensions (RFC 5061
/// §4.2.7) listing what is on, Forward-TSN-Supported for PR-SCTP (RFC 3758 §3.1, §3.3.1, as
/// usrsctp and Linux send both), RANDOM, CHUNKS and HMAC-ALGO for AUTH (RFC 4895 §3), and the
/// Adaptation Layer Indication (RFC 5061 §4.2.6).
pub(crate) fn push_extension_params<'a>(
    params: &mut Vec<Param<'a>>,
    config: &AssociationConfig,
    auth: Option<&'a LocalAuth>,
) {
    let ext = supported_extensions(config);
    if !ext.is_empty() {
        params.push(Param::SupportedExtensions(FixedList::from_items(ext)));
    }
    if config.pr_sctp {
        params.push(Param::ForwardTsnSupported);
    }
    if let Some(a) = auth {
        a.push_params(params);
    }
    if let Some(code) = config.adaptation_indication {
        params.push(Param::AdaptationLayerIndication(code));
    }
}

/// Pushes `chunk` of type `ty`, preceded by an AUTH chunk if the peer requires `ty`
/// authenticated and the packet has none yet (RFC 4895 §6.2: the AUTH chunk goes before
/// the first chunk that must be authenticated; everything after it is covered). Returns
/// whether the chunk went in; without room for both, neither does.
pub(crate) fn push_authenticated(
    auth: &Option<Box<Auth>>,
    w: &mut PacketBuilder<'_>,
    auth_at: &mut Option<usize>,
    ty: ChunkType,
    chunk: &dyn Encode,
) -> bool {
    if let Some(a) = auth.as_deref()
        && auth_at.is_none()
        && a.send_required.contains(ty)
    {
        let ph = a.placeholder();
        if ph.encoded_len().saturating_add(chunk.encoded_len()) > w.remaining() {
            return false;
        }
        let at = w.len();
        if w.push(&ph).is_err() {
            return false;
        }
        *auth_at = Some(at);
    }
    w.push(chunk).is_ok()
}

/// Appends IPv4/IPv6 Address parameters for `addrs` of the families `(v4, v6)` the peer
/// supports. A single address is not listed: the source address of the packet says it all
/// (and stays correct behind address translation).
pub(crate) fn push_address_params<'a>(
    params: &mut Vec<Param<'a>>,
    addrs: &[IpAddr],
    families: (bool, bool),
) {
    if addrs.len() < 2 {
        return;
    }
    for a in addrs.iter().take(MAX_LOCAL_ADDRESSES) {
        match a {
            IpAddr::V4(v4) if families.0 => params.push(Param::Ipv4Address(*v4)),
            IpAddr::V6(v6) if families.1 => params.push(Param::Ipv6Address(*v6)),
            _ => {}
        }
    }
}

/// The local address to send to `remote` from: among `locals` of the same family, the one
/// sharing the longest prefix with `remote` (the one on the same subnet, when there is
/// one). `None` when no local address of that family is configured (the driver's routing
/// then chooses).
pub(crate) fn pick_local(locals: &[IpAddr], remote: IpAddr) -> Option<IpAddr> {
    fn common_prefix(a: &[u8], b: &[u8]) -> u32 {
        let mut bits = 0;
        for (x, y) in a.iter().zip(b) {
            let d = x ^ y;
            if d == 0 {
                bits += 8;
            } else {
                bits += d.leading_zeros();
                break;
            }
        }
        bits
    }
    locals
        .iter()
        .copied()
        .filter(|l| l.is_ipv4() == remote.is_ipv4())
        // The first configured address wins a tie.
        .rev()
        .max_by_key(|l| match (l, remote) {
            (IpAddr::V4(a), IpAddr::V4(b)) => common_prefix(&a.octets(), &b.octets()),
            (IpAddr::V6(a), IpAddr::V6(b)) => common_prefix(&a.octets(), &b.octets()),
            _ => 0,
        })
}

/// The reach of an address: 0 global (private ranges included), 1 link-local, 2 loopback.
/// An address listed in INIT or INIT ACK is used only if its reach is not narrower than that
/// of the address the association was set up with: a peer reached over a global address
/// may list its loopback or link-local addresses, but those lead elsewhere from here (the
/// IPv4/IPv6 address scoping rules the kernel stacks apply; RFC 9260 §5.1.2 lets an
/// endpoint use a subset of the peer's addresses).
pub(crate) fn addr_scope(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) if v.is_loopback() => 2,
        IpAddr::V4(v) if v.is_link_local() => 1,
        IpAddr::V6(v) if v.is_loopback() => 2,
        IpAddr::V6(v) if v.is_unicast_link_local() => 1,
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(0, |m| addr_scope(IpAddr::V4(m))),
        IpAddr::V4(_) => 0,
    }
}

/// RFC 9260 §8.4 (1): packets to or from non-unicast addresses are not answered.
pub(crate) fn is_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !(v.is_multicast() || v.is_broadcast() || v.is_unspecified()),
        IpAddr::V6(v) => !(v.is_multicast() || v.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_addresses_of_narrower_scope_than_the_primary_are_not_used() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(addr_scope(ip("198.18.0.1")), 0);
        assert_eq!(addr_scope(ip("10.1.2.3")), 0);
        assert_eq!(addr_scope(ip("169.254.1.1")), 1);
        assert_eq!(addr_scope(ip("127.0.0.1")), 2);
        assert_eq!(addr_scope(ip("fd00::1")), 0);
        assert_eq!(addr_scope(ip("fe80::1")), 1);
        assert_eq!(addr_scope(ip("::1")), 2);
        assert_eq!(addr_scope(ip("::ffff:127.0.0.1")), 2);
    }

    #[test]
    fn an_idle_association_fits_in_4_kib() {
        // The association itself, its data path and one path; HashMaps and queues of an
        // idle association allocate nothing.
        let fixed = core::mem::size_of::<Association>()
            + core::mem::size_of::<DataPath>()
            + core::mem::size_of::<Path>()
            + core::mem::size_of::<[Timestamp; 2]>();
        assert!(fixed <= 4096, "idle association takes {fixed} bytes");
    }
}
