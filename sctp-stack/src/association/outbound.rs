//! The data sender: the send queue with back-pressure, TSN assignment and fragmentation, the
//! TSN-indexed retransmission queue, SACK processing with fast retransmit and fast recovery,
//! and the T3-rtx rules (RFC 9260 §6.1–§6.3, §7.2).
//!
//! The retransmission queue is a `VecDeque` whose front holds the TSN after the peer's
//! cumulative ack point, so a TSN is found by offset in O(1). A SACK costs O(gap blocks +
//! the TSN range it covers); nothing rescans the whole queue per chunk.
//!
//! User messages are stored once (`Arc<Vec<u8>>`); fragments reference a byte range of the
//! message, so fragmentation and retransmission copy nothing until the packet is written.
//!
//! PR-SCTP (RFC 3758, RFC 7496): when the peer supports it, a message may carry a policy
//! (lifetime, retransmission limit or priority). An abandoned message leaves the stream
//! queue if it was not sent yet (no TSN or SSN is consumed); otherwise all its chunks are
//! marked `Abandoned` (RFC 3758 §3.5 A3), taken out of the flight and never retransmitted,
//! and stay in the retransmission queue until the peer's cumulative ack passes them. The
//! Advanced.Peer.Ack.Point moves over abandoned chunks at the front of the queue
//! (§3.5 C1/C2) and a FORWARD TSN tells the peer to skip them (§3.5 C3/C4); on an I-DATA
//! association an I-FORWARD TSN with (stream, U flag, MID) entries instead (RFC 8260 §2.3).
//! With I-DATA a partly sent message waits in its stream between fragments, so abandoning
//! it also drops its unsent rest from there, and its chunks are found by stream and MID
//! among other messages' interleaved fragments. When the rest of an abandoned message was
//! never sent, an abandoned empty placeholder chunk takes one more TSN, so the New
//! Cumulative TSN lies beyond every TSN the peer may hold and the skip is never stale.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::config::{AssociationConfig, StreamScheduler};
use crate::serial::{Mid, Ssn, Tsn};
use crate::time::Timestamp;
use crate::wire::{ForwardTsnStream, IForwardTsnStream};

use super::fasthash::FastHash;
use super::path::{MAX_PATHS, Path};
use super::timer::{PathIdx, Timer, TimerTable};

/// Size of the DATA chunk header (RFC 9260 §3.3.1).
pub(crate) const DATA_HEADER: usize = 16;

/// Size of the I-DATA chunk header (RFC 8260 §2.1).
pub(crate) const IDATA_HEADER: usize = 20;

/// The partial reliability policy of one message (PR-SCTP, RFC 3758 and RFC 7496).
///
/// A policy takes effect only when PR-SCTP is in use on the association: enabled in
/// [`AssociationConfig::pr_sctp`] and supported by the peer (see
/// [`AssociationStatus::pr_sctp`](crate::AssociationStatus::pr_sctp)). With a peer that
/// does not support PR-SCTP every message is sent reliably, whatever its policy (RFC 3758
/// §3.3.1: no FORWARD TSN may be sent to such a peer, so nothing sent can be abandoned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrPolicy {
    /// Fully reliable (the default).
    #[default]
    Reliable,
    /// Timed reliability (RFC 3758 §2 and §5, `SCTP_PR_SCTP_TTL` of the socket API): the message is
    /// abandoned when it is not acknowledged `lifetime` after `send` (millisecond
    /// precision is what the RFC asks; the virtual clock is exact).
    Timed {
        /// How long the message may take to be acknowledged.
        lifetime: Duration,
    },
    /// Limited retransmissions (RFC 7496 §3.1 `SCTP_PR_SCTP_RTX`): the message is abandoned
    /// instead of being retransmitted more than `max_retransmissions` times (0: sent once).
    LimitedRetransmissions {
        /// The most retransmissions of any chunk of the message.
        max_retransmissions: u16,
    },
    /// Priority (RFC 7496 §3.2 `SCTP_PR_SCTP_PRIO`): when the send buffer is full, a new
    /// message of this policy abandons messages of lower priority (a higher `priority`
    /// value; 0 is the highest priority) until it fits: queued ones first, then sent ones
    /// (which the peer then skips on a FORWARD TSN). If even that cannot make room, nothing
    /// is abandoned and `send` fails with `WouldBlock`.
    Priority {
        /// The priority: lower values are more important.
        priority: u16,
    },
}

/// Options of one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Deliver without regard to stream order (U bit, RFC 9260 §3.3.1).
    pub unordered: bool,
    /// Ask the peer to acknowledge this message without delay (I bit, RFC 7053).
    pub immediate_ack: bool,
    /// The PR-SCTP policy (RFC 3758, RFC 7496); reliable by default.
    pub pr_policy: PrPolicy,
}

impl SendOptions {
    /// Options for an unordered message.
    pub fn unordered() -> Self {
        SendOptions {
            unordered: true,
            ..SendOptions::default()
        }
    }

    /// These options with the PR-SCTP policy `policy`.
    pub fn with_pr_policy(mut self, policy: PrPolicy) -> Self {
        self.pr_policy = policy;
        self
    }
}

/// The policy of a queued or sent message, as the sender applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pr {
    Reliable,
    /// Abandoned at this instant if not acknowledged.
    Until(Timestamp),
    /// At most this many retransmissions.
    MaxRtx(u16),
    /// Priority (lower value, higher priority).
    Prio(u16),
}

impl Pr {
    fn expired(self, now: Timestamp) -> bool {
        matches!(self, Pr::Until(d) if d <= now)
    }
}

#[derive(Debug)]
struct OutMessage {
    stream: u16,
    ppid: u32,
    unordered: bool,
    immediate_ack: bool,
    data: Arc<Vec<u8>>,
    /// Bytes already cut into chunks.
    offset: usize,
    ssn: Ssn,
    pr: Pr,
    /// Arrival order over all streams (the FCFS scheduler, RFC 8260 §3.1).
    seq: u64,
    /// Message Identifier (I-DATA, RFC 8260 §2.1), assigned with the first fragment.
    mid: u32,
    /// Fragment Sequence Number of the next fragment (I-DATA).
    fsn: u32,
}

#[derive(Debug, Default)]
struct OutStream {
    next_ssn: Ssn,
    /// Next MID of an ordered message (I-DATA, RFC 8260 §2.1).
    next_mid: u32,
    /// Next MID of an unordered message: a separate space (RFC 8260 §2.1).
    next_umid: u32,
    queue: VecDeque<OutMessage>,
    /// Priority for [`StreamScheduler::Priority`]: lower goes first.
    priority: u16,
    /// Weight for [`StreamScheduler::WeightedFair`]; 0 (unset) counts as 1.
    weight: u16,
    /// Virtual finish time of the stream's last scheduled message (WFQ).
    finish: u64,
    /// Virtual finish time of the message at the head of the queue (WFQ), fixed when it
    /// became the head (self-clocked fair queueing).
    head_tag: u64,
}

/// The WFQ virtual time unit per byte at weight 1: large enough that a weight up to
/// `u16::MAX` still advances the virtual clock by at least one per byte-ish message.
const WFQ_SCALE: u64 = 1 << 16;

/// How many SACKs handled before one transmit opportunity may add up their Max.Burst
/// allowances (§6.1 D): at most this many times Max.Burst new packets at once.
const MAX_BURST_SACKS: i64 = 4;

/// With I-DATA, a message this small is never held back to bound the incomplete messages
/// at the peer: it takes one chunk, or two at the smallest path MTUs, and completes at once.
const SMALL_MESSAGE: usize = 1024;

/// With I-DATA, WFQ charges a stream about one fragment per turn: this many bytes at most.
const WFQ_IDATA_QUANTUM: usize = 1200;

/// The state of a chunk in the retransmission queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Sent and counted in the flight size of its path.
    InFlight,
    /// Acknowledged by a gap ack block (may still be reneged).
    GapAcked,
    /// Marked for retransmission (T3 expiry or fast retransmit); not in flight.
    ToRetransmit,
    /// Abandoned (RFC 3758 §3.5): not in flight, never retransmitted, skipped by FORWARD TSN.
    Abandoned,
}

#[derive(Debug)]
struct SentChunk {
    data: Arc<Vec<u8>>,
    start: u32,
    len: u32,
    stream: u16,
    ssn: Ssn,
    /// The PPID on a first fragment; with I-DATA the FSN on the others (RFC 8260 §2.1).
    ppid: u32,
    /// The MID (I-DATA only).
    mid: u32,
    flags: u8,
    path: PathIdx,
    sent_at: Timestamp,
    transmissions: u16,
    misses: u8,
    state: ChunkState,
    fast_retransmitted: bool,
    /// Marked by fast retransmit and not yet sent in the fast retransmission packet.
    fast_pending: bool,
    /// The PR-SCTP policy of the message.
    pr: Pr,
}

impl SentChunk {
    fn payload(&self) -> &[u8] {
        let start = self.start as usize;
        self.data
            .get(start..start.saturating_add(self.len as usize))
            .unwrap_or(&[])
    }
}

/// What tells the chunks of one message apart from other messages' chunks: the message
/// buffer, and with I-DATA its stream, ordering and MID (RFC 8260 §2.1).
#[derive(Debug, Clone)]
struct MessageKey {
    data: Arc<Vec<u8>>,
    stream: u16,
    mid: u32,
    unordered: bool,
}

impl MessageKey {
    fn of(c: &SentChunk) -> MessageKey {
        MessageKey {
            data: Arc::clone(&c.data),
            stream: c.stream,
            mid: c.mid,
            unordered: c.flags & flags::UNORDERED != 0,
        }
    }
}

/// Whether chunk `c` belongs to the message `k`.
fn same_message(c: &SentChunk, k: &MessageKey) -> bool {
    Arc::ptr_eq(&c.data, &k.data)
        && c.stream == k.stream
        && c.mid == k.mid
        && (c.flags & flags::UNORDERED != 0) == k.unordered
}

/// DATA chunk flag bits (RFC 9260 §3.3.1, RFC 7053).
pub(crate) mod flags {
    pub(crate) const END: u8 = 0x01;
    pub(crate) const BEGIN: u8 = 0x02;
    pub(crate) const UNORDERED: u8 = 0x04;
    pub(crate) const IMMEDIATE: u8 = 0x08;
}

/// A DATA chunk to be written into a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataRef<'a> {
    pub(crate) tsn: Tsn,
    pub(crate) stream: u16,
    pub(crate) ssn: Ssn,
    /// The PPID (DATA, or the first I-DATA fragment) or the FSN (later I-DATA fragments).
    pub(crate) ppid: u32,
    /// The MID (I-DATA only).
    pub(crate) mid: u32,
    pub(crate) flags: u8,
    pub(crate) payload: &'a [u8],
}

/// Why `send` refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The send buffer is full; retry after `Event::SendSpace`.
    WouldBlock,
    /// The message is empty (RFC 9260 §6.2: a DATA chunk must carry user data).
    EmptyMessage,
    /// The message exceeds `max_message_size`.
    MessageTooLarge,
    /// The stream number is not below the negotiated number of outbound streams.
    InvalidStream,
    /// The association is shutting down or closed.
    ShuttingDown,
    /// The association is not established yet and does not queue data before it is.
    NotConnected,
    /// The stream waits for a stream or association reset this side asked for (RFC 6525)
    /// and the send buffer, where its messages wait meanwhile, is full. Retry after
    /// `Event::SendSpace` or the `Event::StreamReset` (`Event::AssociationReset`) that ends
    /// the reset. (Streams held for a reset the peer asked for answer `WouldBlock`.)
    ResetPending,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SendError::WouldBlock => "send buffer full",
            SendError::EmptyMessage => "empty message",
            SendError::MessageTooLarge => "message larger than max_message_size",
            SendError::InvalidStream => "stream number not negotiated",
            SendError::ShuttingDown => "association is shutting down",
            SendError::NotConnected => "association not connected",
            SendError::ResetPending => "stream reset pending and the send buffer is full",
        })
    }
}

impl std::error::Error for SendError {}

/// What a SACK did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SackOutcome {
    /// The SACK was older than the current cumulative ack point and ignored.
    pub(crate) stale: bool,
    /// Bytes released from the send buffer.
    pub(crate) released: usize,
    /// Some DATA chunk was newly acknowledged (resets the association error counter, §8.1).
    pub(crate) acked_new: bool,
    /// Chunks were newly marked for fast retransmission.
    pub(crate) fast_retransmit: bool,
}

/// The SACK violated the protocol (RFC 9260 §6.2.1: a cumulative ack of a TSN never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SackViolation;

/// Congestion and window limits for one packet being filled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillLimits {
    /// Room in the packet for DATA chunks (headers included).
    pub(crate) room: usize,
    /// Set the I bit on new chunks (shutdown pending, RFC 7053 §4.1).
    pub(crate) immediate: bool,
    /// Bytes every packet of data needs besides the data chunks (an AUTH chunk when the
    /// peer requires DATA or I-DATA to be authenticated): fragments are cut that much
    /// smaller so a full-size one still fits.
    pub(crate) overhead: usize,
}

#[derive(Debug)]
pub(crate) struct Outbound {
    streams: HashMap<u16, OutStream, FastHash>,
    /// The streams with queued messages, in round-robin order (every scheduler keeps it;
    /// ties between streams are broken by this order).
    rr: VecDeque<u16>,
    /// The stream scheduler (RFC 8260 §3).
    pub(crate) scheduler: StreamScheduler,
    /// Next arrival number (FCFS).
    next_seq: u64,
    /// The WFQ system virtual time (self-clocked: the finish time of the last scheduled
    /// message).
    vtime: u64,
    /// I-DATA is in use (RFC 8260 §2.1): MIDs and FSNs instead of SSNs, and a partly sent
    /// message goes back to its stream after each fragment so streams interleave.
    pub(crate) idata: bool,
    /// I-DATA fragments are numbered the Linux way (the second fragment FSN 0).
    linux_fsn: bool,
    /// Bytes of the data chunk header: 16 (DATA) or 20 (I-DATA).
    hdr: usize,
    /// I-DATA: total size of the messages partly cut into chunks.
    in_progress: usize,
    /// I-DATA: a message of more than one chunk starts only while `in_progress` plus its
    /// size stays within this (half the peer's initial window), unless none is in progress:
    /// the peer must hold every fragment of an incomplete message, and without partial
    /// delivery a window full of incomplete messages would never drain.
    in_progress_limit: usize,
    current: Option<OutMessage>,
    /// Bytes of user data not yet cut into chunks.
    queued_bytes: usize,
    /// Bytes of user data in chunks not yet cumulatively acknowledged.
    unacked_bytes: usize,
    /// The peer's cumulative TSN ack point (the TSN before `sent[0]`).
    cum_ack: Tsn,
    sent: VecDeque<SentChunk>,
    to_retransmit: usize,
    /// Index below which no chunk is marked for retransmission.
    rtx_hint: usize,
    fast_pending: usize,
    peer_rwnd: u32,
    fast_recovery_exit: Option<Tsn>,
    /// Max.Burst accounting (§6.1 D): packets of new data sent minus the allowance granted
    /// by SACKs; no new data while it is at or above `max_burst`. Negative when several
    /// SACKs were handled before one transmit opportunity (see [`Outbound::on_sack`]).
    burst_packets: i64,
    outbound_streams: u16,
    /// The highest TSN acknowledged by a gap block in the last SACK, for renege detection.
    highest_gap_acked: Option<Tsn>,
    /// A SACK arrived since the last T3 expiry (zero window probing, RFC 9260 §6.1).
    sack_since_t3: bool,
    /// Scratch for sorting gap blocks.
    blocks: Vec<(Tsn, Tsn)>,
    /// `send` refused a message; report send space when the buffer drains.
    pub(crate) blocked: bool,
    /// PR-SCTP is in use: enabled here and supported by the peer (RFC 3758 §3.3).
    pub(crate) pr: bool,
    /// Advanced.Peer.Ack.Point (RFC 3758 §3.5 A1): at or after `cum_ack`; the chunks
    /// between the two are all abandoned.
    adv_ack: Tsn,
    /// A FORWARD TSN is owed to the peer (RFC 3758 §3.5 C3, A5).
    fwd_tsn_due: bool,
    /// Messages abandoned before any of their chunks was sent (RFC 7496 §4.3.3).
    abandoned_unsent: u64,
    /// Messages abandoned after (some of) their chunks were sent.
    abandoned_sent: u64,
    /// Stream holds of pending stream resets (RFC 6525 §5.1.2): messages handed to `send`
    /// at or after a hold's barrier wait in their stream queue until the hold is released.
    /// Empty unless a reset is pending, so the scheduler pays one emptiness check.
    holds: Vec<StreamHold>,
    /// Streams taken out of the round robin because their head message is held.
    parked: Vec<u16>,
    /// Identifier of the next stream hold.
    next_hold: u64,
}

/// Messages of these streams sent from `barrier` on wait for a stream reset (RFC 6525).
#[derive(Debug, Clone)]
pub(crate) struct StreamHold {
    /// Identifies the hold.
    pub(crate) id: u64,
    /// Arrival number (`next_seq`) when the reset was asked for.
    pub(crate) barrier: u64,
    /// The streams (empty: all).
    pub(crate) streams: Vec<u16>,
    /// Asked for by the user (`SendError::ResetPending` when the buffer is full), not by the
    /// peer's Incoming SSN Reset Request (then `SendError::WouldBlock`, which every user
    /// already retries).
    pub(crate) user: bool,
}

impl StreamHold {
    fn covers(&self, stream: u16) -> bool {
        self.streams.is_empty() || self.streams.contains(&stream)
    }
}

impl Outbound {
    pub(crate) fn new(initial_tsn: Tsn, outbound_streams: u16, peer_rwnd: u32) -> Outbound {
        Outbound {
            streams: HashMap::default(),
            rr: VecDeque::new(),
            scheduler: StreamScheduler::RoundRobin,
            next_seq: 0,
            vtime: 0,
            idata: false,
            linux_fsn: false,
            hdr: DATA_HEADER,
            in_progress: 0,
            in_progress_limit: (peer_rwnd / 2) as usize,
            current: None,
            queued_bytes: 0,
            unacked_bytes: 0,
            cum_ack: initial_tsn.prev(),
            sent: VecDeque::new(),
            to_retransmit: 0,
            rtx_hint: 0,
            fast_pending: 0,
            peer_rwnd,
            fast_recovery_exit: None,
            burst_packets: 0,
            outbound_streams,
            highest_gap_acked: None,
            sack_since_t3: true,
            blocks: Vec::new(),
            blocked: false,
            pr: false,
            adv_ack: initial_tsn.prev(),
            fwd_tsn_due: false,
            abandoned_unsent: 0,
            abandoned_sent: 0,
            holds: Vec::new(),
            parked: Vec::new(),
            next_hold: 0,
        }
    }

    // ------------------------------------------------ stream reconfiguration (RFC 6525)

    /// Holds `streams` (empty: all) from now on: messages sent to them after this call wait
    /// until [`Outbound::release_hold`] with the returned hold id. Messages sent before go
    /// out first (RFC 6525 §5.1.2: the reset follows what was sent before it).
    pub(crate) fn hold_streams(&mut self, streams: &[u16], user: bool) -> u64 {
        let id = self.next_hold;
        self.next_hold = self.next_hold.wrapping_add(1);
        self.holds.push(StreamHold {
            id,
            barrier: self.next_seq,
            streams: streams.to_vec(),
            user,
        });
        id
    }

    /// Whether every message sent to the streams of hold `id` before it began has been cut
    /// into chunks (so their last TSN is assigned and the reset request may go out).
    pub(crate) fn hold_drained(&self, id: u64) -> bool {
        let Some(h) = self.holds.iter().find(|h| h.id == id) else {
            return true;
        };
        let barrier = h.barrier;
        if self.current.as_ref().is_some_and(|m| h.covers(m.stream)) {
            return false;
        }
        let before = |st: &OutStream| st.queue.front().is_some_and(|m| m.seq < barrier);
        if h.streams.is_empty() {
            !self.streams.values().any(before)
        } else {
            !h.streams
                .iter()
                .any(|s| self.streams.get(s).is_some_and(before))
        }
    }

    /// Ends hold `id`; with `reset` the held streams' SSNs (and MIDs) restart at 0 (RFC 6525
    /// §5.1.2; RFC 8260 §2.3: both MID spaces with I-DATA). Parked streams no longer held
    /// return to the scheduler.
    pub(crate) fn release_hold(&mut self, id: u64, reset: bool) {
        let Some(pos) = self.holds.iter().position(|h| h.id == id) else {
            return;
        };
        let h = self.holds.remove(pos);
        if reset {
            for (id, st) in self.streams.iter_mut() {
                if h.covers(*id) {
                    st.next_ssn = Ssn(0);
                    st.next_mid = 0;
                    st.next_umid = 0;
                }
            }
        }
        let parked = core::mem::take(&mut self.parked);
        for s in parked {
            if self.streams.get(&s).is_none_or(|st| st.queue.is_empty()) {
                continue;
            }
            if self.holds.iter().any(|h| h.covers(s)) {
                self.parked.push(s);
            } else if !self.rr.contains(&s) {
                self.rr.push_back(s);
            }
        }
    }

    /// Whether `stream` is held by a pending reset the user asked for.
    fn is_held_by_user(&self, stream: u16) -> bool {
        self.holds.iter().any(|h| h.user && h.covers(stream))
    }

    /// Whether the TSNs may restart (SSN/TSN reset, RFC 6525 §5.2.4): nothing sent is
    /// unacknowledged and no message is partly sent.
    pub(crate) fn can_restart(&self) -> bool {
        self.sent.is_empty() && self.current.is_none() && self.in_progress == 0
    }

    /// Restarts the TSNs at `next` and every stream's SSN and MIDs at 0 (RFC 6525 §5.2.4
    /// G2/G5, §5.1.4). Only when [`Outbound::can_restart`].
    pub(crate) fn restart(&mut self, next: Tsn) {
        self.cum_ack = next.prev();
        self.adv_ack = next.prev();
        self.highest_gap_acked = None;
        self.fast_recovery_exit = None;
        self.fwd_tsn_due = false;
        self.to_retransmit = 0;
        self.fast_pending = 0;
        self.rtx_hint = 0;
        for st in self.streams.values_mut() {
            st.next_ssn = Ssn(0);
            st.next_mid = 0;
            st.next_umid = 0;
        }
    }

    /// Sets the number of outbound streams (Add Outgoing Streams, RFC 6525 §5.1.5).
    pub(crate) fn set_outbound_streams(&mut self, n: u16) {
        self.outbound_streams = n;
    }

    /// Messages abandoned (unsent, sent) so far.
    pub(crate) fn abandoned(&self) -> (u64, u64) {
        (self.abandoned_unsent, self.abandoned_sent)
    }

    /// The next TSN to assign.
    pub(crate) fn next_tsn(&self) -> Tsn {
        self.cum_ack.add(1).add(self.sent.len() as u32)
    }

    /// The peer's cumulative ack point.
    pub(crate) fn cum_ack(&self) -> Tsn {
        self.cum_ack
    }

    /// The peer's receiver window as seen by the sender (§6.2.1).
    pub(crate) fn peer_rwnd(&self) -> u32 {
        self.peer_rwnd
    }

    pub(crate) fn outbound_streams(&self) -> u16 {
        self.outbound_streams
    }

    /// Bytes counted against the send buffer.
    pub(crate) fn buffered(&self) -> usize {
        self.queued_bytes + self.unacked_bytes
    }

    /// Messages or chunks wait to be sent or acknowledged.
    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty()
            && self.current.is_none()
            && self.rr.is_empty()
            && self
                .parked
                .iter()
                .all(|s| self.streams.get(s).is_none_or(|st| st.queue.is_empty()))
    }

    /// Chunks are sent and not yet cumulatively acknowledged.
    pub(crate) fn has_unacked(&self) -> bool {
        !self.sent.is_empty()
    }

    /// Whether new user data is queued.
    pub(crate) fn has_queued(&self) -> bool {
        self.current.is_some() || !self.rr.is_empty()
    }

    /// Whether chunks wait for retransmission (marked by T3-rtx or fast retransmit).
    pub(crate) fn has_retransmissions(&self) -> bool {
        self.to_retransmit > 0 || self.fast_pending > 0
    }

    pub(crate) fn in_fast_recovery(&self) -> bool {
        self.fast_recovery_exit.is_some()
    }

    /// Queues a message (the caller checked the state). Returns the instant it expires when
    /// it has a lifetime (for the association's PR-SCTP timer). `paths` is where messages
    /// abandoned to make room for a more important one leave the flight.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        now: Timestamp,
        stream: u16,
        ppid: u32,
        data: Arc<Vec<u8>>,
        opts: SendOptions,
        config: &AssociationConfig,
        paths: &mut [Path],
    ) -> Result<Option<Timestamp>, SendError> {
        if data.is_empty() {
            return Err(SendError::EmptyMessage);
        }
        if data.len() > config.max_message_size {
            return Err(SendError::MessageTooLarge);
        }
        if stream >= self.outbound_streams {
            return Err(SendError::InvalidStream);
        }
        // Without PR-SCTP on the association every policy degrades to reliable.
        let pr = match opts.pr_policy {
            _ if !self.pr => Pr::Reliable,
            PrPolicy::Reliable => Pr::Reliable,
            PrPolicy::Timed { lifetime } => Pr::Until(now + lifetime),
            PrPolicy::LimitedRetransmissions {
                max_retransmissions,
            } => Pr::MaxRtx(max_retransmissions),
            PrPolicy::Priority { priority } => Pr::Prio(priority),
        };
        if self.buffered().saturating_add(data.len()) > config.send_buffer_size {
            // RFC 7496 §3.2: a message with a priority makes room by abandoning queued
            // messages of lower priority.
            let fits = match pr {
                Pr::Prio(p) => self.evict_lower_priority(p, data.len(), config, paths),
                _ => false,
            };
            if !fits {
                self.blocked = true;
                if !self.holds.is_empty() && self.is_held_by_user(stream) {
                    return Err(SendError::ResetPending);
                }
                return Err(SendError::WouldBlock);
            }
        }
        self.queued_bytes += data.len();
        let st = self.streams.entry(stream).or_default();
        if st.queue.is_empty() {
            self.rr.push_back(stream);
            if self.scheduler == StreamScheduler::WeightedFair {
                let cost = if self.idata {
                    data.len().min(WFQ_IDATA_QUANTUM)
                } else {
                    data.len()
                };
                st.head_tag = Self::wfq_tag(self.vtime, st, cost);
            }
        }
        st.queue.push_back(OutMessage {
            stream,
            ppid,
            unordered: opts.unordered,
            immediate_ack: opts.immediate_ack,
            data,
            offset: 0,
            ssn: Ssn(0),
            pr,
            seq: self.next_seq,
            mid: 0,
            fsn: 0,
        });
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(match pr {
            Pr::Until(d) => Some(d),
            _ => None,
        })
    }

    /// RFC 7496 §3.2: abandons messages with a priority lower than `priority` (a higher
    /// value), the least important first, until `len` more bytes fit in the send buffer.
    /// Among equally important ones, queued messages go before sent ones (those cost a
    /// FORWARD TSN) and newer ones before older. Abandons nothing and returns false if that
    /// cannot make enough room.
    fn evict_lower_priority(
        &mut self,
        priority: u16,
        len: usize,
        config: &AssociationConfig,
        paths: &mut [Path],
    ) -> bool {
        #[derive(Clone, Copy)]
        enum Victim {
            /// In a stream queue: (stream, position).
            Queued(u16, usize),
            /// Taken for fragmenting, nothing cut yet.
            Current,
            /// Sent (at least partly): the index of its first chunk in the queue.
            Sent(usize),
        }
        let needed = self
            .buffered()
            .saturating_add(len)
            .saturating_sub(config.send_buffer_size);
        let lower = |pr: Pr| match pr {
            Pr::Prio(q) if q > priority => Some(q),
            _ => None,
        };
        // (priority, sent, age rank (higher is newer), bytes freed, victim)
        let mut victims: Vec<(u16, bool, usize, usize, Victim)> = Vec::new();
        for (&stream, st) in &self.streams {
            for (pos, m) in st.queue.iter().enumerate() {
                // A partly sent message (I-DATA) is a victim through its sent chunks.
                if let Some(q) = lower(m.pr).filter(|_| m.offset == 0) {
                    let rank = usize::MAX / 2 + pos;
                    victims.push((q, false, rank, m.data.len(), Victim::Queued(stream, pos)));
                }
            }
        }
        if let Some(m) = self.current.as_ref()
            && let Some(q) = lower(m.pr)
            && m.offset == 0
        {
            victims.push((q, false, usize::MAX / 2 - 1, m.data.len(), Victim::Current));
        }
        let mut idx = 0;
        while idx < self.sent.len() {
            let Some(first) = self.sent.get(idx) else {
                break;
            };
            let data = Arc::clone(&first.data);
            let pr = first.pr;
            let mut end = idx;
            let mut bytes = 0usize;
            let mut all_acked = true;
            while let Some(c) = self.sent.get(end).filter(|c| Arc::ptr_eq(&c.data, &data)) {
                if c.state != ChunkState::Abandoned {
                    bytes += c.len as usize;
                }
                all_acked &= c.state == ChunkState::GapAcked;
                end += 1;
            }
            let complete = self
                .sent
                .get(end.saturating_sub(1))
                .is_some_and(|c| c.flags & flags::END != 0);
            if let Some(cur) = self.current.as_ref()
                && Arc::ptr_eq(&cur.data, &data)
            {
                bytes += cur.data.len().saturating_sub(cur.offset);
            }
            if let Some(q) = lower(pr)
                && bytes > 0
                && !(complete && all_acked)
            {
                victims.push((q, true, idx, bytes, Victim::Sent(idx)));
            }
            idx = end.max(idx + 1);
        }
        victims.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)));
        let mut freed = 0usize;
        let mut take = 0usize;
        for v in &victims {
            if freed >= needed {
                break;
            }
            freed += v.3;
            take += 1;
        }
        if freed < needed {
            return false;
        }
        let mut queued: Vec<(u16, usize)> = Vec::new();
        for &(_, _, _, _, v) in victims.iter().take(take) {
            match v {
                Victim::Queued(stream, pos) => queued.push((stream, pos)),
                Victim::Current => self.abandon_current(paths),
                Victim::Sent(i) => {
                    self.abandon_message(i, paths);
                }
            }
        }
        // Remove from the back of each queue first so positions stay valid.
        queued.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (stream, pos) in queued {
            if let Some(st) = self.streams.get_mut(&stream)
                && let Some(m) = st.queue.remove(pos)
            {
                self.queued_bytes = self.queued_bytes.saturating_sub(m.data.len());
                self.abandoned_unsent += 1;
            }
        }
        self.drop_empty_streams_from_rr();
        self.buffered().saturating_add(len) <= config.send_buffer_size
    }

    /// Streams whose queue emptied by abandonment leave the round robin.
    fn drop_empty_streams_from_rr(&mut self) {
        let streams = &self.streams;
        self.rr
            .retain(|s| streams.get(s).is_some_and(|st| !st.queue.is_empty()));
    }

    /// Whether the send buffer drained below the low-water mark after a refusal.
    pub(crate) fn take_send_space(&mut self, config: &AssociationConfig) -> bool {
        if self.blocked && self.buffered() <= config.send_low_water {
            self.blocked = false;
            return true;
        }
        false
    }

    /// Takes the next message to fragment, assigning its SSN (round robin over streams).
    /// Messages whose lifetime ended are abandoned on the way, before they get a TSN or SSN
    /// (RFC 3758 §3.5: an expired message is not sent).
    fn next_message(&mut self, now: Timestamp) -> Option<OutMessage> {
        loop {
            let pick = self.pick_stream()?;
            let stream = self.rr.remove(pick)?;
            let Some(st) = self.streams.get_mut(&stream) else {
                continue;
            };
            if !self.holds.is_empty()
                && let Some(m) = st.queue.front()
                && self
                    .holds
                    .iter()
                    .any(|h| m.seq >= h.barrier && h.covers(stream))
            {
                // RFC 6525 §5.1.2: held for a pending reset; back when it is released.
                if !self.parked.contains(&stream) {
                    self.parked.push(stream);
                }
                continue;
            }
            let Some(mut msg) = st.queue.pop_front() else {
                continue;
            };
            if !st.queue.is_empty() {
                self.rr.push_back(stream);
            }
            if self.scheduler == StreamScheduler::WeightedFair {
                st.finish = st.head_tag;
                self.vtime = st.head_tag;
                if let Some(next) = st.queue.front() {
                    let cost = Self::wfq_cost(self.idata, next);
                    st.head_tag = Self::wfq_tag(self.vtime, st, cost);
                }
            }
            if msg.offset == 0 && msg.pr.expired(now) {
                self.queued_bytes = self.queued_bytes.saturating_sub(msg.data.len());
                self.abandoned_unsent += 1;
                continue;
            }
            if msg.offset == 0 {
                if self.idata {
                    // RFC 8260 §2.1: one MID space for ordered and one for unordered
                    // messages per stream, both 32-bit serial numbers.
                    let space = if msg.unordered {
                        &mut st.next_umid
                    } else {
                        &mut st.next_mid
                    };
                    msg.mid = *space;
                    *space = space.wrapping_add(1);
                } else if !msg.unordered {
                    msg.ssn = st.next_ssn;
                    st.next_ssn = st.next_ssn.next();
                }
            }
            return Some(msg);
        }
    }

    /// Puts a partly sent message back at the head of its stream (I-DATA interleaving).
    fn requeue_partial(&mut self, m: OutMessage) {
        let stream = m.stream;
        let st = self.streams.entry(stream).or_default();
        if st.queue.is_empty() {
            self.rr.push_back(stream);
        }
        if self.scheduler == StreamScheduler::WeightedFair {
            let cost = Self::wfq_cost(true, &m);
            st.head_tag = Self::wfq_tag(self.vtime, st, cost);
        }
        st.queue.push_front(m);
    }

    /// Numbers I-DATA fragments the Linux way (the second fragment FSN 0; see
    /// [`IDataFsn::Linux`](crate::IDataFsn)) from the next fragment on.
    pub(crate) fn use_linux_fsn(&mut self) {
        self.linux_fsn = true;
    }

    /// Whether I-DATA fragments are numbered the Linux way.
    pub(crate) fn linux_fsn(&self) -> bool {
        self.linux_fsn
    }

    /// Switches the sender to I-DATA (RFC 8260), once negotiated.
    pub(crate) fn use_idata(&mut self) {
        self.idata = true;
        self.hdr = IDATA_HEADER;
    }

    /// Sets the priority of an outbound stream (RFC 8260 §3.4; lower goes first).
    pub(crate) fn set_stream_priority(&mut self, stream: u16, priority: u16) -> bool {
        if stream >= self.outbound_streams {
            return false;
        }
        self.streams.entry(stream).or_default().priority = priority;
        true
    }

    /// Sets the weight of an outbound stream (RFC 8260 §3.6; 0 counts as 1).
    pub(crate) fn set_stream_weight(&mut self, stream: u16, weight: u16) -> bool {
        if stream >= self.outbound_streams {
            return false;
        }
        self.streams.entry(stream).or_default().weight = weight;
        true
    }

    /// The bytes WFQ charges for serving `m` once: the whole message with DATA, about one
    /// fragment with I-DATA (a message is then served a fragment at a time).
    fn wfq_cost(idata: bool, m: &OutMessage) -> usize {
        let rest = m.data.len().saturating_sub(m.offset);
        if idata {
            rest.min(WFQ_IDATA_QUANTUM)
        } else {
            rest
        }
    }

    /// The WFQ finish tag of a message of `len` bytes becoming the head of `st`: it starts
    /// at the later of the system virtual time and the stream's last finish. Messages
    /// abandoned from the queue leave the tag as it was (a small unfairness, never a stall).
    fn wfq_tag(vtime: u64, st: &OutStream, len: usize) -> u64 {
        let w = u64::from(st.weight.max(1));
        let cost = (len as u64).saturating_mul(WFQ_SCALE) / w;
        vtime.max(st.finish).saturating_add(cost.max(1))
    }

    /// The index in `rr` of the stream the scheduler serves next. Round robin takes the
    /// front without looking at anything (the default costs nothing extra); the others scan
    /// the streams with queued data (at most the negotiated outbound streams), ties going to
    /// the earliest in round-robin order.
    fn pick_stream(&self) -> Option<usize> {
        if self.rr.is_empty() {
            return None;
        }
        let head = |s: &u16| {
            self.streams
                .get(s)
                .and_then(|st| st.queue.front().map(|m| (st, m)))
                .filter(|(_, m)| self.may_start(m))
        };
        if self.idata && self.in_progress > 0 && self.scheduler == StreamScheduler::RoundRobin {
            // Some heads may have to wait (see `in_progress_limit`); a partly sent message
            // always may go on, so there is a candidate. (The other schedulers rank the
            // waiting heads last.)
            return self.rr.iter().position(|s| head(s).is_some());
        }
        match self.scheduler {
            StreamScheduler::RoundRobin => Some(0),
            StreamScheduler::Fcfs => self
                .rr
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| head(s).map_or(u64::MAX, |(_, m)| m.seq))
                .map(|(i, _)| i),
            StreamScheduler::Priority => self
                .rr
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| head(s).map_or(u32::MAX, |(st, _)| u32::from(st.priority)))
                .map(|(i, _)| i),
            StreamScheduler::WeightedFair => self
                .rr
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| head(s).map_or(u64::MAX, |(st, _)| st.head_tag))
                .map(|(i, _)| i),
        }
    }

    /// Whether the message at the head of a stream may be served now (I-DATA: see
    /// `in_progress_limit`; small messages, which complete in one chunk, always may).
    fn may_start(&self, m: &OutMessage) -> bool {
        !self.idata
            || self.in_progress == 0
            || m.offset > 0
            || m.data.len() <= SMALL_MESSAGE
            || self.in_progress.saturating_add(m.data.len()) <= self.in_progress_limit
    }

    /// Cuts the next chunk of at most `max_payload` bytes, assigns it a TSN and appends it
    /// to the retransmission queue. Returns its index in the queue.
    fn cut_chunk(
        &mut self,
        max_payload: usize,
        path: PathIdx,
        now: Timestamp,
        immediate: bool,
    ) -> Option<usize> {
        if self.current.is_none() {
            self.current = self.next_message(now);
        }
        let msg = self.current.as_mut()?;
        let remaining = msg.data.len().saturating_sub(msg.offset);
        let len = remaining.min(max_payload);
        if len == 0 {
            return None;
        }
        if self.idata {
            if msg.offset == 0 && len < remaining {
                self.in_progress += msg.data.len();
            } else if msg.offset > 0 && len == remaining {
                self.in_progress = self.in_progress.saturating_sub(msg.data.len());
            }
        }
        let mut f = 0;
        // I-DATA: the PPID travels in the first fragment only, the FSN in the others
        // (RFC 8260 §2.1).
        let ppid_or_fsn = if msg.offset == 0 || !self.idata {
            msg.ppid
        } else if self.linux_fsn {
            // The Linux numbering: the second fragment is FSN 0.
            msg.fsn.wrapping_sub(1)
        } else {
            msg.fsn
        };
        msg.fsn = msg.fsn.wrapping_add(1);
        if msg.offset == 0 {
            f |= flags::BEGIN;
        }
        if len == remaining {
            f |= flags::END;
            if msg.immediate_ack || immediate {
                f |= flags::IMMEDIATE;
            }
        }
        if msg.unordered {
            f |= flags::UNORDERED;
        }
        let chunk = SentChunk {
            data: Arc::clone(&msg.data),
            start: u32::try_from(msg.offset).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
            stream: msg.stream,
            ssn: msg.ssn,
            ppid: ppid_or_fsn,
            mid: msg.mid,
            flags: f,
            path,
            sent_at: now,
            transmissions: 1,
            misses: 0,
            state: ChunkState::InFlight,
            fast_retransmitted: false,
            fast_pending: false,
            pr: msg.pr,
        };
        msg.offset += len;
        if msg.offset >= msg.data.len() {
            self.current = None;
        } else if self.idata
            && let Some(m) = self.current.take()
        {
            // RFC 8260 §1: the rest of the message waits its stream's next turn, so a
            // large message does not hold up the other streams.
            self.requeue_partial(m);
        }
        self.queued_bytes = self.queued_bytes.saturating_sub(len);
        self.unacked_bytes += len;
        self.sent.push_back(chunk);
        Some(self.sent.len() - 1)
    }

    /// The payload size of the next new chunk if it were cut with `max_payload` room.
    fn next_chunk_len(&self, max_payload: usize) -> Option<usize> {
        if let Some(m) = &self.current {
            return Some(m.data.len().saturating_sub(m.offset).min(max_payload));
        }
        let stream = *self.rr.get(self.pick_stream()?)?;
        let m = self.streams.get(&stream)?.queue.front()?;
        Some(m.data.len().saturating_sub(m.offset).min(max_payload))
    }

    fn data_ref(&self, idx: usize) -> Option<DataRef<'_>> {
        let c = self.sent.get(idx)?;
        Some(DataRef {
            tsn: self.cum_ack.add(1).add(idx as u32),
            stream: c.stream,
            ssn: c.ssn,
            ppid: c.ppid,
            mid: c.mid,
            flags: c.flags,
            payload: c.payload(),
        })
    }

    fn chunk_size(hdr: usize, len: usize) -> usize {
        (hdr + len + 3) & !3
    }

    /// Fills one packet bound for `path_idx` with DATA chunks: the pending fast
    /// retransmissions (ignoring cwnd, §7.2.4), else chunks marked for retransmission
    /// (limited by cwnd, §6.1 C), else new data (§6.1 A, B, D and sender SWS avoidance).
    /// `emit` writes one chunk and returns false if it did not fit. Returns the number of
    /// chunks written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fill_packet(
        &mut self,
        now: Timestamp,
        path_idx: PathIdx,
        paths: &mut [Path],
        timers: &mut TimerTable,
        config: &AssociationConfig,
        limits: FillLimits,
        emit: &mut dyn FnMut(DataRef<'_>) -> bool,
    ) -> usize {
        if path_idx >= paths.len() {
            return 0;
        }
        let mut room = limits.room;
        let mut written = 0usize;
        let mut sent_first_outstanding = false;
        let first_outstanding = self.first_outstanding_on(path_idx);

        // RFC 9260 §7.2.4 (3): one packet of fast retransmissions regardless of cwnd.
        if self.fast_pending > 0 {
            let mut idx = 0;
            while idx < self.sent.len() && self.fast_pending > 0 {
                let Some(c) = self.sent.get(idx) else { break };
                if c.fast_pending {
                    let size = Self::chunk_size(self.hdr, c.len as usize);
                    if size > room {
                        break;
                    }
                    let Some(dr) = self.data_ref(idx) else { break };
                    if !emit(dr) {
                        break;
                    }
                    room -= size;
                    written += 1;
                    if first_outstanding == Some(idx) {
                        sent_first_outstanding = true;
                    }
                    self.retransmitted(idx, path_idx, paths, now, true);
                }
                idx += 1;
            }
            // Whatever did not fit stays marked and goes out as cwnd allows.
            for c in self.sent.iter_mut() {
                c.fast_pending = false;
            }
            self.fast_pending = 0;
            if written > 0 {
                // §7.2.4 (5): restart T3 only when retransmitting the first outstanding
                // chunk of the path; otherwise R1 (start it if not running).
                let rto = paths.get(path_idx).map(|p| p.rto.rto()).unwrap_or_default();
                if sent_first_outstanding || !timers.is_running(Timer::T3Rtx(path_idx)) {
                    timers.start(Timer::T3Rtx(path_idx), now + rto);
                }
                return written;
            }
        }

        let Some(path) = paths.get(path_idx) else {
            return written;
        };
        let cwnd = path.cwnd;
        let max_packet = path.max_packet();
        // RFC 9260 §6.1 (C): retransmissions first, limited by cwnd.
        if self.to_retransmit > 0 {
            // No chunk below the hint is marked: the scan does not restart from the front.
            let mut idx = self.rtx_hint.min(self.sent.len());
            let mut first_seen = false;
            while idx < self.sent.len() && self.to_retransmit > 0 {
                if !first_seen
                    && self
                        .sent
                        .get(idx)
                        .is_some_and(|c| c.state == ChunkState::ToRetransmit)
                {
                    first_seen = true;
                    self.rtx_hint = idx;
                }
                let flight = paths.get(path_idx).map_or(0, |p| p.flight_size);
                if flight >= cwnd {
                    break;
                }
                let Some(c) = self.sent.get(idx) else { break };
                if c.state == ChunkState::ToRetransmit {
                    let size = Self::chunk_size(self.hdr, c.len as usize);
                    if size > room {
                        break;
                    }
                    let Some(dr) = self.data_ref(idx) else { break };
                    if !emit(dr) {
                        break;
                    }
                    room -= size;
                    written += 1;
                    self.retransmitted(idx, path_idx, paths, now, false);
                }
                idx += 1;
            }
            if written > 0 && !timers.is_running(Timer::T3Rtx(path_idx)) {
                // R1.
                let rto = paths.get(path_idx).map(|p| p.rto.rto()).unwrap_or_default();
                timers.start(Timer::T3Rtx(path_idx), now + rto);
            }
            if self.to_retransmit > 0 || written > 0 {
                // New data waits until the retransmissions are out (§6.1 C).
                return written;
            }
        }

        // New data.
        if self.burst_packets >= i64::from(config.max_burst) {
            return written;
        }
        let max_payload_packet = max_packet.saturating_sub(12 + self.hdr + limits.overhead) & !3;
        if let Some(p) = paths.get_mut(path_idx) {
            p.decay_idle_cwnd(now);
        }
        let mut new_chunks = 0usize;
        while let Some(p) = paths.get(path_idx) {
            // §6.1 (B): no new data with cwnd + PMTU - 1 or more outstanding; a packet
            // started below cwnd may be completed.
            if p.flight_size >= cwnd && !(new_chunks > 0 && p.flight_size < cwnd + p.mtu()) {
                break;
            }
            // Fragments are always cut at full packet size, never to fill leftover room.
            if self.current.as_ref().is_some_and(|m| m.pr.expired(now)) {
                self.abandon_current(paths);
            }
            if self.current.is_none() {
                // Taking the next message now (its SSN assigned) changes nothing if it
                // cannot go out yet: it is the next to send on its stream either way.
                self.current = self.next_message(now);
                // I-DATA: a partly sent message taken back from its stream may have
                // expired (its rest must not follow the I-FORWARD TSN).
                if self.idata && self.current.as_ref().is_some_and(|m| m.pr.expired(now)) {
                    self.abandon_current(paths);
                    if self.current.is_none() {
                        continue;
                    }
                }
            }
            let Some(len) = self.next_chunk_len(max_payload_packet) else {
                break;
            };
            if len == 0 || Self::chunk_size(self.hdr, len) > room {
                break;
            }
            // §6.1 (A): respect the peer's rwnd, except for one zero window probe when
            // nothing is outstanding.
            let probe = self.sent.is_empty();
            if (len as u32) > self.peer_rwnd && !probe {
                break;
            }
            if (len as u32) > self.peer_rwnd && new_chunks > 0 {
                break;
            }
            // Sender SWS avoidance (Nagle): with data outstanding, do not send a packet
            // that is not full unless nodelay is set.
            if !config.nodelay
                && new_chunks == 0
                && !self.sent.is_empty()
                && self.queued_bytes < max_payload_packet
                && !limits.immediate
            {
                break;
            }
            let Some(idx) = self.cut_chunk(max_payload_packet, path_idx, now, limits.immediate)
            else {
                break;
            };
            let Some(dr) = self.data_ref(idx) else { break };
            let size = Self::chunk_size(self.hdr, dr.payload.len());
            let tsn = dr.tsn;
            if !emit(dr) {
                // Cannot happen with a correct room computation; keep the chunk queued for
                // retransmission so nothing is lost.
                if let Some(c) = self.sent.get_mut(idx) {
                    c.state = ChunkState::ToRetransmit;
                    c.transmissions = 0;
                    self.to_retransmit += 1;
                    self.rtx_hint = self.rtx_hint.min(idx);
                }
                break;
            }
            room = room.saturating_sub(size);
            written += 1;
            new_chunks += 1;
            let len32 = u32::try_from(dr_len(&self.sent, idx)).unwrap_or(u32::MAX);
            self.peer_rwnd = self.peer_rwnd.saturating_sub(len32);
            if let Some(p) = paths.get_mut(path_idx) {
                p.flight_size = p.flight_size.saturating_add(len32);
                p.last_data_sent = Some(now);
                p.sent_in_hb_period = true;
                // §6.3.1 (C4): one RTT measurement per round trip.
                if p.rtt_probe.is_none() {
                    p.rtt_probe = Some((tsn, now));
                }
            }
        }
        if new_chunks > 0 {
            self.burst_packets += 1;
            // R1: start T3 if not running.
            if !timers.is_running(Timer::T3Rtx(path_idx)) {
                let rto = paths.get(path_idx).map(|p| p.rto.rto()).unwrap_or_default();
                timers.start(Timer::T3Rtx(path_idx), now + rto);
            }
        }
        written
    }

    /// Whether `fill_packet` would write something now (ignoring packet room).
    pub(crate) fn wants_to_send(&self, path: &Path, config: &AssociationConfig) -> bool {
        if self.fast_pending > 0 {
            return true;
        }
        if self.to_retransmit > 0 {
            return path.flight_size < path.cwnd;
        }
        if !self.has_queued() || self.burst_packets >= i64::from(config.max_burst) {
            return false;
        }
        if path.flight_size >= path.cwnd {
            return false;
        }
        let max_payload_packet = path.max_packet().saturating_sub(12 + self.hdr) & !3;
        let Some(len) = self.next_chunk_len(max_payload_packet) else {
            return false;
        };
        if (len as u32) > self.peer_rwnd && !self.sent.is_empty() {
            return false;
        }
        if !config.nodelay && !self.sent.is_empty() && self.queued_bytes < max_payload_packet {
            return false;
        }
        true
    }

    /// Resets the Max.Burst packet count (done by each SACK and T3 expiry, §6.1 D).
    #[cfg(test)]
    pub(crate) fn reset_burst(&mut self) {
        self.burst_packets = 0;
    }

    fn first_outstanding_on(&self, path_idx: PathIdx) -> Option<usize> {
        self.sent
            .iter()
            .position(|c| c.path == path_idx && c.state == ChunkState::InFlight)
    }

    fn retransmitted(
        &mut self,
        idx: usize,
        path_idx: PathIdx,
        paths: &mut [Path],
        now: Timestamp,
        fast: bool,
    ) {
        let Some(c) = self.sent.get_mut(idx) else {
            return;
        };
        if c.state == ChunkState::ToRetransmit {
            self.to_retransmit = self.to_retransmit.saturating_sub(1);
        }
        c.state = ChunkState::InFlight;
        c.path = path_idx;
        c.sent_at = now;
        c.transmissions = c.transmissions.saturating_add(1);
        c.misses = 0;
        if fast {
            c.fast_retransmitted = true;
        }
        let len = c.len;
        // §6.2.1 (B): a retransmission also uses up peer window.
        self.peer_rwnd = self.peer_rwnd.saturating_sub(len);
        if let Some(p) = paths.get_mut(path_idx) {
            p.flight_size = p.flight_size.saturating_add(len);
            p.last_data_sent = Some(now);
            p.sent_in_hb_period = true;
        }
    }

    /// Marks a chunk for retransmission, taking it out of the flight (§6.2.1 C).
    fn mark_for_retransmit(&mut self, idx: usize, paths: &mut [Path]) {
        let Some(c) = self.sent.get_mut(idx) else {
            return;
        };
        if c.state == ChunkState::InFlight
            && let Some(p) = paths.get_mut(c.path)
        {
            p.flight_size = p.flight_size.saturating_sub(c.len);
        }
        if c.state != ChunkState::ToRetransmit {
            self.to_retransmit += 1;
            self.rtx_hint = self.rtx_hint.min(idx);
            // §6.2.1 (C): the window the chunk used is available again.
            self.peer_rwnd = self.peer_rwnd.saturating_add(c.len);
        }
        c.state = ChunkState::ToRetransmit;
        // Karn's rule: a TSN sent more than once never yields an RTT sample.
        if let Some(p) = paths.get_mut(c.path)
            && p.rtt_probe
                .is_some_and(|(t, _)| t == self.cum_ack.add(1).add(idx as u32))
        {
            p.rtt_probe = None;
        }
        // RFC 3758 §3.5 A4 / RFC 7496 §3.1: a chunk marked for retransmission whose message
        // used up its retransmissions is abandoned instead of being retransmitted. (A
        // lifetime ends exactly at its deadline through the PR timer.)
        if self.pr
            && let Pr::MaxRtx(max) = c.pr
            && c.transmissions.saturating_sub(1) >= max
        {
            self.abandon_message(idx, paths);
        }
    }

    // ------------------------------------------------------------ PR-SCTP (RFC 3758)

    /// Abandons the message being fragmented (RFC 3758 §3.5 A3: all of it). A message none
    /// of whose chunks was sent yet just leaves, giving its SSN back; one whose sent chunks
    /// are all acknowledged already is not abandoned (the peer holds part of it and a
    /// FORWARD TSN can only skip TSNs above its cumulative ack, so the rest must follow).
    fn abandon_current(&mut self, paths: &mut [Path]) {
        let Some(msg) = self.current.as_ref() else {
            return;
        };
        if msg.offset == 0 {
            let Some(msg) = self.current.take() else {
                return;
            };
            if !msg.unordered
                && let Some(st) = self.streams.get_mut(&msg.stream)
            {
                // It is the latest message taken from its stream: nothing else used an SSN
                // after it.
                st.next_ssn = st.next_ssn.prev();
            }
            self.queued_bytes = self.queued_bytes.saturating_sub(msg.data.len());
            self.abandoned_unsent += 1;
            return;
        }
        if let Some(idx) = self
            .sent
            .iter()
            .rposition(|c| Arc::ptr_eq(&c.data, &msg.data) && c.mid == msg.mid)
        {
            self.abandon_message(idx, paths);
        } else if let Some(msg) = self.current.as_mut() {
            // It cannot be abandoned any more: it is sent reliably to the end.
            msg.pr = Pr::Reliable;
        }
    }

    /// Abandons the message the chunk at `idx` belongs to: every chunk of it in the
    /// retransmission queue and the part not yet cut (RFC 3758 §3.5 A3). Abandoned chunks
    /// leave the flight and are never retransmitted (§3.5 A2, A4); their bytes leave the
    /// send buffer. A message the peer acknowledged completely (by gap blocks) is left
    /// alone. Returns whether it was abandoned.
    fn abandon_message(&mut self, idx: usize, paths: &mut [Path]) -> bool {
        let Some(c) = self.sent.get(idx) else {
            return false;
        };
        if c.state == ChunkState::Abandoned {
            return false;
        }
        let first = MessageKey::of(c);
        let data = Arc::clone(&c.data);
        let (start, end) = self.message_span(idx);
        let complete = self
            .sent
            .get(end)
            .is_some_and(|c| c.flags & flags::END != 0);
        let all_acked = (start..=end).all(|i| {
            self.sent
                .get(i)
                .is_some_and(|c| !same_message(c, &first) || c.state == ChunkState::GapAcked)
        });
        if complete && all_acked {
            // Delivered already: nothing to abandon, and no reason to look at it again.
            for i in start..=end {
                if let Some(c) = self.sent.get_mut(i)
                    && same_message(c, &first)
                {
                    c.pr = Pr::Reliable;
                }
            }
            return false;
        }
        if !complete {
            // RFC 3758 §3.5 A3 / RFC 8260 §2.3: the rest of the message is never cut, so
            // no fragment of it follows the (I-)FORWARD TSN that skips it.
            self.drop_unsent_rest(&data);
        }
        for i in start..=end {
            let tsn = self.cum_ack.add(1).add(i as u32);
            let Some(c) = self.sent.get_mut(i) else {
                break;
            };
            if !same_message(c, &first) {
                // I-DATA: a fragment of another message interleaved with this one.
                continue;
            }
            match c.state {
                ChunkState::InFlight => {
                    // RFC 3758 §3.5 A2: an abandoned chunk is no longer in flight; like a
                    // chunk marked for retransmission it gives its window back.
                    if let Some(p) = paths.get_mut(c.path) {
                        p.flight_size = p.flight_size.saturating_sub(c.len);
                    }
                    self.peer_rwnd = self.peer_rwnd.saturating_add(c.len);
                }
                ChunkState::ToRetransmit => {
                    self.to_retransmit = self.to_retransmit.saturating_sub(1);
                }
                ChunkState::GapAcked | ChunkState::Abandoned => {}
            }
            if c.fast_pending {
                c.fast_pending = false;
                self.fast_pending = self.fast_pending.saturating_sub(1);
            }
            if let Some(p) = paths.get_mut(c.path)
                && p.rtt_probe.is_some_and(|(t, _)| t == tsn)
            {
                p.rtt_probe = None;
            }
            if c.state != ChunkState::Abandoned {
                self.unacked_bytes = self.unacked_bytes.saturating_sub(c.len as usize);
            }
            c.state = ChunkState::Abandoned;
        }
        if !complete {
            self.push_end_placeholder(end);
        }
        self.abandoned_sent += 1;
        self.advance_ack_point();
        true
    }

    /// Appends an abandoned, never sent, empty last fragment for the message whose latest
    /// chunk is at `idx`, consuming one TSN. The peer may hold every fragment sent so far,
    /// so its cumulative ack can pass all of them: a (I-)FORWARD TSN naming only those TSNs
    /// would then be out of date and ignored (RFC 3758 §3.6), leaving the partial message
    /// in the peer's reassembly and, when ordered, blocking its stream for good. The
    /// placeholder TSN is one the peer never received, so the New Cumulative TSN covering
    /// it always moves the peer's ack point and the message is skipped there.
    fn push_end_placeholder(&mut self, idx: usize) {
        let Some(c) = self.sent.get(idx) else {
            return;
        };
        let placeholder = SentChunk {
            data: Arc::clone(&c.data),
            start: 0,
            len: 0,
            stream: c.stream,
            ssn: c.ssn,
            ppid: 0,
            mid: c.mid,
            flags: flags::END | (c.flags & flags::UNORDERED),
            path: c.path,
            sent_at: c.sent_at,
            transmissions: 0,
            misses: 0,
            state: ChunkState::Abandoned,
            fast_retransmitted: false,
            fast_pending: false,
            pr: Pr::Reliable,
        };
        self.sent.push_back(placeholder);
    }

    /// The first and last index in the retransmission queue of the chunks of the message
    /// the chunk at `idx` belongs to. With DATA its fragments have consecutive TSNs (a
    /// message is cut completely before the next one is started); with I-DATA fragments of
    /// other streams' messages may lie between them (RFC 8260 §1), so the span may hold
    /// foreign chunks, which callers skip by comparing the message buffer. The scan stops
    /// at the message's first (B) and last (E) fragment, so it costs the span, not the
    /// queue.
    fn message_span(&self, idx: usize) -> (usize, usize) {
        let Some(c) = self.sent.get(idx) else {
            return (idx, idx);
        };
        let key = MessageKey::of(c);
        let same = |o: &SentChunk| same_message(o, &key);
        let mut start = idx;
        if c.flags & flags::BEGIN == 0 {
            let mut i = idx;
            while i > 0 {
                i -= 1;
                let Some(p) = self.sent.get(i) else { break };
                if same(p) {
                    start = i;
                    if p.flags & flags::BEGIN != 0 {
                        break;
                    }
                } else if !self.idata {
                    break;
                }
            }
        }
        let mut end = idx;
        if c.flags & flags::END == 0 {
            let mut i = idx + 1;
            while let Some(n) = self.sent.get(i) {
                if same(n) {
                    end = i;
                    if n.flags & flags::END != 0 {
                        break;
                    }
                } else if !self.idata {
                    break;
                }
                i += 1;
            }
        }
        (start, end)
    }

    /// Drops the part of the message stored in `data` not cut into chunks yet: it is the
    /// message being fragmented or, with I-DATA, the partly sent message put back at the
    /// head of its stream.
    fn drop_unsent_rest(&mut self, data: &Arc<Vec<u8>>) {
        let rest = |m: &OutMessage| m.data.len().saturating_sub(m.offset);
        if self
            .current
            .as_ref()
            .is_some_and(|cur| Arc::ptr_eq(&cur.data, data))
        {
            if let Some(cur) = self.current.take() {
                self.queued_bytes = self.queued_bytes.saturating_sub(rest(&cur));
                if self.idata && cur.offset > 0 {
                    self.in_progress = self.in_progress.saturating_sub(cur.data.len());
                }
            }
            return;
        }
        if !self.idata {
            return;
        }
        let mut emptied = false;
        for st in self.streams.values_mut() {
            if st
                .queue
                .front()
                .is_some_and(|m| m.offset > 0 && Arc::ptr_eq(&m.data, data))
            {
                if let Some(m) = st.queue.pop_front() {
                    self.queued_bytes = self.queued_bytes.saturating_sub(rest(&m));
                    self.in_progress = self.in_progress.saturating_sub(m.data.len());
                }
                emptied = st.queue.is_empty();
                break;
            }
        }
        if emptied {
            self.drop_empty_streams_from_rr();
        }
    }

    /// RFC 3758 §3.5 C1 and C2: the Advanced.Peer.Ack.Point is at least the cumulative ack
    /// and moves over the abandoned chunks that follow it. A move makes a FORWARD TSN due
    /// (C3).
    fn advance_ack_point(&mut self) {
        if !self.adv_ack.is_after(self.cum_ack) {
            self.adv_ack = self.cum_ack; // C1
        }
        let before = self.cum_ack.distance_to(self.adv_ack).max(0) as usize;
        let mut i = before;
        while self
            .sent
            .get(i)
            .is_some_and(|c| c.state == ChunkState::Abandoned)
        {
            i += 1; // C2
        }
        self.adv_ack = self.cum_ack.add(i as u32);
        if i > before {
            self.fwd_tsn_due = true;
        }
    }

    /// The Advanced.Peer.Ack.Point (RFC 3758 §3.5 A1).
    #[cfg(test)]
    pub(crate) fn advanced_peer_ack_point(&self) -> Tsn {
        self.adv_ack
    }

    /// Abandons every message whose lifetime ended at `now` (RFC 3758 §3.5: timed
    /// reliability), queued or sent.
    pub(crate) fn expire(&mut self, now: Timestamp, paths: &mut [Path]) {
        if !self.pr {
            return;
        }
        let mut dropped = 0u64;
        let mut bytes = 0usize;
        for st in self.streams.values_mut() {
            st.queue.retain(|m| {
                // A partly sent message (I-DATA puts it back in its stream) is abandoned
                // through its sent chunks below, the rest with it.
                let keep = m.offset > 0 || !m.pr.expired(now);
                if !keep {
                    dropped += 1;
                    bytes += m.data.len();
                }
                keep
            });
        }
        if dropped > 0 {
            self.abandoned_unsent += dropped;
            self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
            self.drop_empty_streams_from_rr();
        }
        if self.current.as_ref().is_some_and(|m| m.pr.expired(now)) {
            self.abandon_current(paths);
        }
        let mut idx = 0;
        while idx < self.sent.len() {
            if self
                .sent
                .get(idx)
                .is_some_and(|c| c.state != ChunkState::Abandoned && c.pr.expired(now))
            {
                self.abandon_message(idx, paths);
            }
            idx += 1;
        }
    }

    /// The earliest instant after `after` a message's lifetime ends, if any.
    pub(crate) fn next_expiry(&self, after: Timestamp) -> Option<Timestamp> {
        let until = |pr: Pr| match pr {
            Pr::Until(d) if d > after => Some(d),
            _ => None,
        };
        let queued = self
            .streams
            .values()
            .flat_map(|st| st.queue.iter())
            .chain(self.current.iter())
            .filter_map(|m| until(m.pr));
        let sent = self
            .sent
            .iter()
            .filter(|c| c.state != ChunkState::Abandoned)
            .filter_map(|c| until(c.pr));
        queued.chain(sent).min()
    }

    /// A FORWARD TSN is owed to the peer.
    pub(crate) fn forward_tsn_due(&self) -> bool {
        self.fwd_tsn_due && self.adv_ack.is_after(self.cum_ack)
    }

    /// The FORWARD TSN taken by `take_forward_tsn` could not be written: still owed.
    pub(crate) fn forward_tsn_unsent(&mut self) {
        self.fwd_tsn_due = true;
    }

    /// The FORWARD TSN owed to the peer, fitting in `room` bytes: returns its New
    /// Cumulative TSN and fills `streams` with the largest skipped SSN of each ordered
    /// stream among the skipped chunks (RFC 3758 §3.5 C4). When the streams do not all fit,
    /// the New Cumulative TSN stops before the first chunk whose stream has no room; the
    /// rest follows after the peer acknowledges this one (C3 applies again).
    pub(crate) fn take_forward_tsn(
        &mut self,
        room: usize,
        streams: &mut Vec<ForwardTsnStream>,
    ) -> Option<Tsn> {
        streams.clear();
        if !self.forward_tsn_due() || room < 12 {
            return None;
        }
        let max_entries = (room - 8) / 4;
        let n = self.cum_ack.distance_to(self.adv_ack).max(0) as usize;
        let mut new_cum = self.adv_ack;
        for (i, c) in self.sent.iter().take(n).enumerate() {
            if c.flags & flags::UNORDERED != 0 {
                continue;
            }
            if let Some(e) = streams.iter_mut().find(|e| e.stream_id == c.stream) {
                e.ssn = e.ssn.max_serial(c.ssn);
            } else if streams.len() < max_entries {
                streams.push(ForwardTsnStream {
                    stream_id: c.stream,
                    ssn: c.ssn,
                });
            } else {
                new_cum = self.cum_ack.add(i as u32);
                break;
            }
        }
        if new_cum == self.cum_ack {
            return None;
        }
        self.fwd_tsn_due = false;
        Some(new_cum)
    }

    /// The I-FORWARD TSN owed to the peer (RFC 8260 §2.3), fitting in `room` bytes: returns
    /// its New Cumulative TSN and fills `streams` with one entry per stream and ordering
    /// (U flag) holding the largest MID among the skipped chunks (the rules of RFC 3758
    /// §3.5 C4 applied to MIDs). When the entries do not all fit, the New Cumulative TSN
    /// stops before the first chunk needing one more; the rest follows after the peer
    /// acknowledges this one.
    pub(crate) fn take_iforward_tsn(
        &mut self,
        room: usize,
        streams: &mut Vec<IForwardTsnStream>,
    ) -> Option<Tsn> {
        streams.clear();
        if !self.forward_tsn_due() || room < 16 {
            return None;
        }
        let max_entries = (room - 8) / 8;
        let n = self.cum_ack.distance_to(self.adv_ack).max(0) as usize;
        let mut new_cum = self.adv_ack;
        for (i, c) in self.sent.iter().take(n).enumerate() {
            let unordered = c.flags & flags::UNORDERED != 0;
            if let Some(e) = streams
                .iter_mut()
                .find(|e| e.stream_id == c.stream && e.unordered == unordered)
            {
                if Mid(c.mid).is_after(e.mid) {
                    e.mid = Mid(c.mid);
                }
            } else if streams.len() < max_entries {
                streams.push(IForwardTsnStream {
                    stream_id: c.stream,
                    unordered,
                    mid: Mid(c.mid),
                });
            } else {
                new_cum = self.cum_ack.add(i as u32);
                break;
            }
        }
        if new_cum == self.cum_ack {
            return None;
        }
        self.fwd_tsn_due = false;
        Some(new_cum)
    }

    /// RFC 9260 §6.3.3: the T3-rtx timer of `path_idx` expired. Marks every chunk in
    /// flight on the path for retransmission and applies E1/E2. Returns whether the
    /// expiry counts as an error (it does not for an unanswered zero window probe while
    /// SACKs keep arriving, §6.1).
    pub(crate) fn on_t3_expired(
        &mut self,
        path_idx: PathIdx,
        paths: &mut [Path],
        config: &AssociationConfig,
    ) -> bool {
        let zero_window_probe = self.peer_rwnd == 0 && self.sack_since_t3;
        self.sack_since_t3 = false;
        if let Some(p) = paths.get_mut(path_idx) {
            p.on_t3_expired(); // E1
            p.rto.back_off(config); // E2
            p.rtt_probe = None;
        }
        for idx in 0..self.sent.len() {
            let hit = self
                .sent
                .get(idx)
                .is_some_and(|c| c.path == path_idx && c.state == ChunkState::InFlight);
            if hit {
                self.mark_for_retransmit(idx, paths);
            }
        }
        // Leave fast recovery: the timeout supersedes it.
        self.fast_recovery_exit = None;
        self.burst_packets = 0;
        if self.pr {
            // RFC 3758 §3.5 A5: on a T3-rtx expiry try to advance the Advanced.Peer.Ack.Point
            // (C2) and send a FORWARD TSN (C3): this also retransmits a lost one.
            self.advance_ack_point();
            if self.adv_ack.is_after(self.cum_ack) {
                self.fwd_tsn_due = true;
            }
        }
        !zero_window_probe
    }

    /// Processes a SACK (RFC 9260 §6.2.1 D, §6.3.2, §7.2). `gaps` are the gap ack blocks
    /// as (start, end) offsets from `cum_ack`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_sack(
        &mut self,
        now: Timestamp,
        cum_ack: Tsn,
        a_rwnd: u32,
        gaps: &mut dyn Iterator<Item = (u16, u16)>,
        paths: &mut [Path],
        timers: &mut TimerTable,
        config: &AssociationConfig,
    ) -> Result<SackOutcome, SackViolation> {
        let mut out = SackOutcome::default();
        // §6.2.1 (D i): a SACK older than the cumulative ack point is out of order; drop it.
        if cum_ack.is_before(self.cum_ack) {
            out.stale = true;
            return Ok(out);
        }
        let highest_sent = self.next_tsn().prev();
        // RFC 9260 §6.2.1: a cumulative ack for a TSN never sent is a protocol violation.
        if cum_ack.is_after(highest_sent) {
            return Err(SackViolation);
        }
        self.sack_since_t3 = true;
        // §6.1 D, Max.Burst: each SACK allows up to Max.Burst new packets. A stack that
        // answers every SACK as it arrives (Linux) sends after each one; a driver that hands
        // us a burst of received packets gives one transmit opportunity for all of them, so
        // the allowances of those SACKs add up (at most MAX_BURST_SACKS of them): otherwise
        // two SACKs per receive burst would clock out only Max.Burst packets per round trip
        // and the flight could never grow (measured over veth: 4 packets per round trip).
        let mb = i64::from(config.max_burst);
        self.burst_packets = (self.burst_packets.min(mb) - mb).max(-mb * (MAX_BURST_SACKS - 1));
        let n_paths = paths.len();
        let mut flight_before = [0u32; MAX_PATHS];
        let mut acked_bytes = [0u32; MAX_PATHS];
        let mut restart_t3 = [false; MAX_PATHS];
        let mut seen_outstanding = [false; MAX_PATHS];
        let mut renege_on = [false; MAX_PATHS];
        for (i, p) in paths.iter().enumerate().take(MAX_PATHS) {
            flight_before[i] = p.flight_size;
        }
        let old_cum = self.cum_ack;
        let cum_advanced = cum_ack.is_after(old_cum);

        // Sorted, merged gap blocks as absolute TSN ranges within what was sent.
        self.blocks.clear();
        for (start, end) in gaps.take(4096) {
            if start == 0 || start > end {
                continue;
            }
            let s = cum_ack.add(u32::from(start));
            let e = cum_ack.add(u32::from(end)).min_serial(highest_sent);
            if s.is_after(highest_sent) {
                continue;
            }
            self.blocks.push((s, e));
        }
        self.blocks
            .sort_unstable_by_key(|&(s, _)| cum_ack.distance_to(s));
        let highest_in_sack = self
            .blocks
            .iter()
            .map(|&(_, e)| e)
            .fold(cum_ack, Tsn::max_serial);

        // Walk the queue prefix that the SACK covers (and what earlier SACKs gap-acked).
        let scan_end = self
            .highest_gap_acked
            .map_or(highest_in_sack, |h| h.max_serial(highest_in_sack));
        let scan_len = old_cum.distance_to(scan_end).max(0) as usize;
        let scan_len = scan_len.min(self.sent.len());
        let mut block_i = 0usize;
        let mut highest_newly_acked: Option<Tsn> = None;
        let mut rtt_samples: [Option<core::time::Duration>; MAX_PATHS] = [None; MAX_PATHS];
        for idx in 0..scan_len {
            let tsn = old_cum.add(1).add(idx as u32);
            let by_cum = tsn.is_before_or_eq(cum_ack);
            while let Some(&(_, e)) = self.blocks.get(block_i) {
                if e.is_before(tsn) {
                    block_i += 1;
                } else {
                    break;
                }
            }
            let by_gap = self
                .blocks
                .get(block_i)
                .is_some_and(|&(s, e)| tsn.is_after_or_eq(s) && tsn.is_before_or_eq(e));
            let Some(c) = self.sent.get_mut(idx) else {
                break;
            };
            if c.state == ChunkState::Abandoned {
                // RFC 3758 §3.5: abandoned chunks are out of the flight for good; the peer
                // acknowledging one (after a FORWARD TSN) only moves the ack point.
                out.acked_new |= by_cum;
                continue;
            }
            let p = c.path.min(MAX_PATHS - 1);
            let was_in_flight = c.state == ChunkState::InFlight;
            if was_in_flight && c.path < MAX_PATHS && !seen_outstanding[p] {
                seen_outstanding[p] = true;
                if by_cum || by_gap {
                    // R3: the earliest outstanding TSN of the path is acknowledged.
                    restart_t3[p] = true;
                }
            }
            if by_cum || by_gap {
                if c.state != ChunkState::GapAcked {
                    // Newly acknowledged.
                    out.acked_new = true;
                    highest_newly_acked = Some(tsn);
                    if c.state == ChunkState::ToRetransmit {
                        self.to_retransmit = self.to_retransmit.saturating_sub(1);
                        if c.fast_pending {
                            c.fast_pending = false;
                            self.fast_pending = self.fast_pending.saturating_sub(1);
                        }
                    } else if let Some(path) = paths.get_mut(c.path) {
                        path.flight_size = path.flight_size.saturating_sub(c.len);
                        if c.path < MAX_PATHS {
                            acked_bytes[p] = acked_bytes[p].saturating_add(c.len);
                        }
                        // §8.2: an acknowledgement clears the path error counter.
                        path.error_count = 0;
                        // §6.3.1 (C5): measure with the probe TSN, only if sent once.
                        if let Some((probe, at)) = path.rtt_probe
                            && probe == tsn
                        {
                            path.rtt_probe = None;
                            if c.transmissions == 1 && c.path < MAX_PATHS {
                                rtt_samples[p] = Some(now.saturating_duration_since(at));
                            }
                        }
                    }
                    c.state = ChunkState::GapAcked;
                }
            } else if c.state == ChunkState::GapAcked {
                // §6.2.1 (D iii): the peer reneged; the chunk is outstanding again.
                c.state = ChunkState::InFlight;
                c.misses = c.misses.saturating_add(1);
                if let Some(path) = paths.get_mut(c.path) {
                    path.flight_size = path.flight_size.saturating_add(c.len);
                }
                if c.path < MAX_PATHS {
                    renege_on[p] = true;
                }
            }
        }
        for (i, sample) in rtt_samples.iter().enumerate() {
            if let (Some(r), Some(path)) = (sample, paths.get_mut(i)) {
                path.rto.measure(*r, config);
            }
        }

        // Miss indications (§7.2.4, HTNA): only TSNs below the highest newly acknowledged
        // TSN, or below the highest TSN in the SACK when in fast recovery and the cum ack
        // advanced.
        let miss_limit = if self.in_fast_recovery() && cum_advanced {
            Some(highest_in_sack)
        } else {
            highest_newly_acked
        };
        if let Some(limit) = miss_limit {
            let n = (old_cum.distance_to(limit).max(0) as usize).min(self.sent.len());
            for idx in 0..n {
                let tsn = old_cum.add(1).add(idx as u32);
                if tsn.is_before_or_eq(cum_ack) {
                    continue;
                }
                let Some(c) = self.sent.get_mut(idx) else {
                    break;
                };
                if c.state != ChunkState::InFlight {
                    continue;
                }
                c.misses = c.misses.saturating_add(1);
                if c.misses >= 3 && !c.fast_retransmitted {
                    // §7.2.4 (1): mark for fast retransmission.
                    c.fast_pending = true;
                    self.fast_pending += 1;
                    self.mark_for_retransmit(idx, paths);
                    out.fast_retransmit = true;
                }
            }
        }
        if out.fast_retransmit && !self.in_fast_recovery() {
            // §7.2.4 (2): on entering fast recovery, adjust ssthresh and cwnd of each
            // destination with a chunk to fast retransmit, once; the exit point is the
            // highest TSN sent.
            let mut adjusted = [false; MAX_PATHS];
            for c in self.sent.iter() {
                if c.fast_pending && c.path < MAX_PATHS && !adjusted[c.path] {
                    adjusted[c.path] = true;
                    if let Some(p) = paths.get_mut(c.path) {
                        p.on_fast_retransmit();
                    }
                }
            }
            self.fast_recovery_exit = Some(highest_sent);
        }

        // Release cumulatively acknowledged chunks.
        let advance = old_cum.distance_to(cum_ack).max(0) as usize;
        for _ in 0..advance.min(self.sent.len()) {
            if let Some(c) = self.sent.pop_front() {
                if c.state == ChunkState::Abandoned {
                    // Its bytes left the send buffer when it was abandoned.
                    continue;
                }
                out.released += c.len as usize;
                if c.state == ChunkState::ToRetransmit {
                    self.to_retransmit = self.to_retransmit.saturating_sub(1);
                }
                if c.fast_pending {
                    self.fast_pending = self.fast_pending.saturating_sub(1);
                }
            }
        }
        self.unacked_bytes = self.unacked_bytes.saturating_sub(out.released);
        self.rtx_hint = self.rtx_hint.saturating_sub(advance);
        self.cum_ack = cum_ack;
        self.highest_gap_acked = if self.blocks.is_empty() {
            None
        } else {
            Some(highest_in_sack)
        };
        if self.pr {
            // RFC 3758 §3.5 C1-C3: update the Advanced.Peer.Ack.Point; while it is beyond
            // the SACK's cumulative ack the peer gets a FORWARD TSN (again, if the last one
            // was lost).
            self.advance_ack_point();
            if self.adv_ack.is_after(cum_ack) {
                self.fwd_tsn_due = true;
            }
        }

        // §6.2.1 (D ii): rwnd = a_rwnd - bytes still outstanding.
        let flight: u32 = paths.iter().map(|p| p.flight_size).sum();
        self.peer_rwnd = a_rwnd.saturating_sub(flight);

        // §6.2.1 (D iv): leave fast recovery once the exit point is acknowledged.
        if let Some(exit) = self.fast_recovery_exit
            && cum_ack.is_after_or_eq(exit)
        {
            self.fast_recovery_exit = None;
        }

        // Congestion control per path, then the T3 rules.
        let in_fr = self.in_fast_recovery();
        for (i, p) in paths.iter_mut().enumerate().take(n_paths.min(MAX_PATHS)) {
            p.on_bytes_acked(
                acked_bytes[i],
                flight_before[i],
                cum_advanced,
                in_fr,
                config,
            );
            if p.flight_size == 0 {
                // R2: everything sent to the address is acknowledged.
                timers.stop(Timer::T3Rtx(i));
                p.on_all_acked();
            } else if restart_t3[i] {
                // R3.
                timers.start(Timer::T3Rtx(i), now + p.rto.rto());
            }
            if renege_on[i] && !timers.is_running(Timer::T3Rtx(i)) {
                // §6.2.1 (D iii) / R4.
                timers.start(Timer::T3Rtx(i), now + p.rto.rto());
            }
        }
        Ok(out)
    }
}

fn dr_len(sent: &VecDeque<SentChunk>, idx: usize) -> usize {
    sent.get(idx).map_or(0, |c| c.len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::path::PathState;
    use core::time::Duration;

    struct Rig {
        out: Outbound,
        paths: Vec<Path>,
        timers: TimerTable,
        cfg: AssociationConfig,
        now: Timestamp,
    }

    impl Rig {
        fn new() -> Rig {
            let cfg = AssociationConfig {
                nodelay: true,
                ..AssociationConfig::default()
            };
            let mut p = Path::new(
                "198.18.0.2".parse().unwrap(),
                None,
                0,
                PathState::Active,
                &cfg,
            );
            p.init_congestion(1 << 20);
            let mut timers = TimerTable::default();
            timers.set_path_count(1);
            Rig {
                out: Outbound::new(Tsn(1000), 10, 1 << 20),
                paths: vec![p],
                timers,
                cfg,
                now: Timestamp::from_secs(1),
            }
        }

        fn queue(&mut self, n: usize, len: usize) {
            for _ in 0..n {
                self.out
                    .send(
                        self.now,
                        0,
                        0,
                        Arc::new(vec![7; len]),
                        SendOptions::default(),
                        &self.cfg,
                        &mut self.paths,
                    )
                    .unwrap();
            }
        }

        /// Sends one packet, returns the TSNs written.
        fn packet(&mut self) -> Vec<u32> {
            let mut tsns = Vec::new();
            self.out.fill_packet(
                self.now,
                0,
                &mut self.paths,
                &mut self.timers,
                &self.cfg,
                FillLimits {
                    room: 1248,
                    immediate: false,
                    overhead: 0,
                },
                &mut |d| {
                    tsns.push(d.tsn.get());
                    true
                },
            );
            tsns
        }

        fn sack(&mut self, cum: u32, gaps: &[(u16, u16)]) -> SackOutcome {
            self.out
                .on_sack(
                    self.now,
                    Tsn(cum),
                    1 << 20,
                    &mut gaps.iter().copied(),
                    &mut self.paths,
                    &mut self.timers,
                    &self.cfg,
                )
                .unwrap()
        }
    }

    #[test]
    fn tsns_are_assigned_in_sequence_and_bundled() {
        let mut r = Rig::new();
        r.queue(3, 100);
        assert_eq!(r.packet(), vec![1000, 1001, 1002]);
        assert_eq!(r.out.next_tsn(), Tsn(1003));
    }

    #[test]
    fn large_messages_are_fragmented_to_the_packet() {
        let mut r = Rig::new();
        r.paths[0].cwnd = 1 << 20;
        r.queue(1, 5000);
        let mut all = Vec::new();
        for _ in 0..5 {
            r.out.reset_burst();
            all.extend(r.packet());
        }
        assert_eq!(all.len(), 5);
        assert_eq!(r.out.buffered(), 5000);
    }

    #[test]
    fn t3_is_started_by_the_first_send_and_not_restarted_by_later_sends() {
        let mut r = Rig::new();
        r.queue(1, 100);
        r.packet();
        let first = r.timers.deadline(Timer::T3Rtx(0)).unwrap();
        r.now += Duration::from_millis(300);
        r.queue(1, 100);
        r.packet();
        assert_eq!(r.timers.deadline(Timer::T3Rtx(0)), Some(first));
    }

    #[test]
    fn t3_is_not_restarted_by_a_sack_that_leaves_the_earliest_tsn_outstanding() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        let first = r.timers.deadline(Timer::T3Rtx(0)).unwrap();
        r.now += Duration::from_millis(500);
        // Gap-acks 1001..1002 only; 1000 is still outstanding.
        r.sack(999, &[(2, 3)]);
        assert_eq!(r.timers.deadline(Timer::T3Rtx(0)), Some(first));
    }

    #[test]
    fn t3_is_restarted_when_the_earliest_outstanding_tsn_is_acked() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        r.now += Duration::from_millis(500);
        r.sack(1000, &[]);
        assert_eq!(
            r.timers.deadline(Timer::T3Rtx(0)),
            Some(r.now + r.paths[0].rto.rto())
        );
    }

    #[test]
    fn t3_is_stopped_when_everything_is_acked() {
        let mut r = Rig::new();
        r.queue(2, 100);
        r.packet();
        let o = r.sack(1001, &[]);
        assert!(!r.timers.is_running(Timer::T3Rtx(0)));
        assert_eq!(o.released, 200);
        assert!(r.out.is_empty());
    }

    #[test]
    fn three_miss_indications_trigger_one_fast_retransmission() {
        let mut r = Rig::new();
        r.queue(5, 100);
        r.packet();
        r.sack(999, &[(2, 2)]);
        r.sack(999, &[(2, 3)]);
        assert!(!r.out.in_fast_recovery());
        let o = r.sack(999, &[(2, 4)]);
        assert!(o.fast_retransmit);
        assert!(r.out.in_fast_recovery());
        assert_eq!(r.packet(), vec![1000]);
        // A later SACK still missing 1000 does not fast-retransmit it again.
        r.sack(999, &[(2, 5)]);
        assert_eq!(r.packet(), Vec::<u32>::new());
    }

    #[test]
    fn repeated_identical_sacks_are_not_miss_indications() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        for _ in 0..5 {
            r.sack(999, &[(2, 3)]);
        }
        assert!(!r.out.in_fast_recovery());
    }

    #[test]
    fn fast_recovery_ends_when_the_exit_point_is_acked() {
        let mut r = Rig::new();
        r.queue(5, 100);
        r.packet();
        for end in 2..=4 {
            r.sack(999, &[(2, end)]);
        }
        assert!(r.out.in_fast_recovery());
        r.packet();
        r.sack(1004, &[]);
        assert!(!r.out.in_fast_recovery());
    }

    #[test]
    fn t3_expiry_marks_outstanding_chunks_and_backs_off_the_rto() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        assert!(r.out.on_t3_expired(0, &mut r.paths, &r.cfg));
        assert_eq!(r.paths[0].flight_size, 0);
        assert_eq!(r.paths[0].cwnd, r.paths[0].mtu());
        assert_eq!(r.paths[0].rto.rto(), Duration::from_secs(2));
        assert_eq!(r.packet(), vec![1000, 1001, 1002]);
    }

    #[test]
    fn a_stale_sack_is_ignored() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        r.sack(1001, &[]);
        assert!(r.sack(1000, &[]).stale);
        assert_eq!(r.out.cum_ack(), Tsn(1001));
    }

    #[test]
    fn a_sack_for_an_unsent_tsn_is_a_violation() {
        let mut r = Rig::new();
        r.queue(1, 100);
        r.packet();
        let err = r.out.on_sack(
            r.now,
            Tsn(1005),
            1000,
            &mut core::iter::empty(),
            &mut r.paths,
            &mut r.timers,
            &r.cfg,
        );
        assert_eq!(err.err(), Some(SackViolation));
    }

    #[test]
    fn reneged_chunks_are_outstanding_again() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        r.sack(999, &[(2, 3)]);
        assert_eq!(r.paths[0].flight_size, 100);
        r.sack(999, &[]);
        assert_eq!(r.paths[0].flight_size, 300);
        assert!(r.timers.is_running(Timer::T3Rtx(0)));
    }

    #[test]
    fn the_send_buffer_refuses_data_beyond_its_size_and_reports_space() {
        let mut r = Rig::new();
        r.cfg.send_buffer_size = 300 * 1024;
        r.cfg.send_low_water = 100 * 1024;
        r.queue(1, 256 * 1024);
        let e = r.out.send(
            r.now,
            0,
            0,
            Arc::new(vec![0; 60 * 1024]),
            SendOptions::default(),
            &r.cfg,
            &mut r.paths,
        );
        assert_eq!(e, Err(SendError::WouldBlock));
        assert!(!r.out.take_send_space(&r.cfg));
    }

    #[test]
    fn a_zero_window_allows_one_probe_only_when_nothing_is_outstanding() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        r.out
            .on_sack(
                r.now,
                Tsn(1002),
                0,
                &mut core::iter::empty(),
                &mut r.paths,
                &mut r.timers,
                &r.cfg,
            )
            .unwrap();
        assert_eq!(r.out.peer_rwnd(), 0);
        r.queue(2, 100);
        assert_eq!(r.packet(), vec![1003]);
        assert_eq!(r.packet(), Vec::<u32>::new());
    }

    #[test]
    fn cwnd_limits_new_data() {
        let mut r = Rig::new();
        r.queue(20, 1000);
        let mut sent = 0;
        for _ in 0..20 {
            r.out.reset_burst();
            sent += r.packet().len();
        }
        // Initial cwnd 4404 bytes: one 1000-byte chunk per packet while below cwnd.
        assert_eq!(sent, 5);
        assert_eq!(r.paths[0].flight_size, 5000);
    }

    #[test]
    fn max_burst_limits_packets_per_event() {
        let mut r = Rig::new();
        r.paths[0].cwnd = 1 << 20;
        r.queue(20, 1000);
        let mut packets = 0;
        for _ in 0..20 {
            if !r.packet().is_empty() {
                packets += 1;
            }
        }
        assert_eq!(packets, 4);
        r.out.reset_burst();
        assert!(!r.packet().is_empty());
    }

    /// Packets of new data the next transmit opportunity sends.
    fn opportunity(r: &mut Rig) -> u32 {
        let mut n = 0;
        for _ in 0..100 {
            if r.packet().is_empty() {
                break;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn max_burst_allowances_of_sacks_handled_together_add_up_to_a_cap() {
        let mut r = Rig::new();
        r.paths[0].cwnd = 1 << 20;
        r.queue(100, 1000);
        assert_eq!(opportunity(&mut r), 4); // TSNs 1000..=1003
        // Two SACKs in one receive burst: 4 packets each.
        r.sack(1001, &[]);
        r.sack(1003, &[]);
        assert_eq!(opportunity(&mut r), 8); // 1004..=1011
        // One SACK: Max.Burst again.
        r.sack(1011, &[]);
        assert_eq!(opportunity(&mut r), 4); // 1012..=1015
        // Six SACKs: at most MAX_BURST_SACKS x Max.Burst.
        for cum in 1012..=1015 {
            r.sack(cum, &[]);
        }
        r.sack(1015, &[]);
        r.sack(1015, &[]);
        assert_eq!(opportunity(&mut r), 4 * MAX_BURST_SACKS as u32);
    }

    #[test]
    fn karns_rule_takes_no_rtt_sample_from_a_retransmitted_chunk() {
        let mut r = Rig::new();
        r.queue(1, 100);
        r.packet();
        r.out.on_t3_expired(0, &mut r.paths, &r.cfg);
        r.now += Duration::from_secs(2);
        assert_eq!(r.packet(), vec![1000]);
        r.now += Duration::from_millis(10);
        r.sack(1000, &[]);
        assert_eq!(r.paths[0].rto.srtt(), None);
        // A chunk sent once gives a sample.
        r.queue(1, 100);
        r.packet();
        r.now += Duration::from_millis(30);
        r.sack(1001, &[]);
        assert_eq!(r.paths[0].rto.srtt(), Some(Duration::from_millis(30)));
    }

    #[test]
    fn one_rtt_sample_is_taken_per_round_trip() {
        let mut r = Rig::new();
        r.queue(3, 100);
        r.packet();
        // Only the first TSN of the flight is timed.
        assert_eq!(r.paths[0].rtt_probe.map(|(t, _)| t), Some(Tsn(1000)));
        r.now += Duration::from_millis(40);
        r.sack(1002, &[]);
        assert_eq!(r.paths[0].rto.srtt(), Some(Duration::from_millis(40)));
    }

    fn pr_send(r: &mut Rig, stream: u16, len: usize, policy: PrPolicy) {
        r.out
            .send(
                r.now,
                stream,
                0,
                Arc::new(vec![1; len]),
                SendOptions::default().with_pr_policy(policy),
                &r.cfg,
                &mut r.paths,
            )
            .unwrap();
    }

    #[test]
    fn a_chunk_out_of_retransmissions_is_abandoned_and_the_ack_point_moves_over_it() {
        let mut r = Rig::new();
        r.out.pr = true;
        let rtx0 = PrPolicy::LimitedRetransmissions {
            max_retransmissions: 0,
        };
        pr_send(&mut r, 3, 100, rtx0);
        r.queue(1, 100);
        assert_eq!(r.packet(), vec![1000, 1001]);
        assert!(r.out.on_t3_expired(0, &mut r.paths, &r.cfg));
        // 1000 is abandoned (out of the flight, never retransmitted); 1001 is resent.
        assert_eq!(r.out.abandoned(), (0, 1));
        assert_eq!(r.out.advanced_peer_ack_point(), Tsn(1000));
        assert!(r.out.forward_tsn_due());
        let mut streams = Vec::new();
        assert_eq!(r.out.take_forward_tsn(1200, &mut streams), Some(Tsn(1000)));
        assert_eq!(
            streams,
            vec![ForwardTsnStream {
                stream_id: 3,
                ssn: Ssn(0)
            }]
        );
        assert_eq!(r.packet(), vec![1001]);
        assert_eq!(r.paths[0].flight_size, 100);
        // The peer's SACK for the FORWARD TSN releases the abandoned chunk.
        r.sack(1001, &[]);
        assert!(r.out.is_empty());
        assert!(!r.out.forward_tsn_due());
    }

    #[test]
    fn a_queued_message_past_its_lifetime_leaves_without_using_an_ssn() {
        let mut r = Rig::new();
        r.out.pr = true;
        let timed = PrPolicy::Timed {
            lifetime: Duration::from_millis(100),
        };
        pr_send(&mut r, 0, 100, timed);
        assert_eq!(
            r.out.next_expiry(r.now),
            Some(r.now + Duration::from_millis(100))
        );
        r.now += Duration::from_millis(100);
        r.out.expire(r.now, &mut r.paths);
        assert_eq!(r.out.abandoned(), (1, 0));
        assert_eq!(r.out.buffered(), 0);
        assert_eq!(r.out.next_expiry(r.now), None);
        r.queue(1, 10);
        let mut ssns = Vec::new();
        r.out.fill_packet(
            r.now,
            0,
            &mut r.paths,
            &mut r.timers,
            &r.cfg,
            FillLimits {
                room: 1248,
                immediate: false,
                overhead: 0,
            },
            &mut |d| {
                ssns.push(d.ssn);
                true
            },
        );
        assert_eq!(ssns, vec![Ssn(0)]);
        assert!(!r.out.forward_tsn_due());
    }

    #[test]
    fn a_fragmented_message_is_abandoned_whole_including_its_unsent_rest() {
        let mut r = Rig::new();
        r.out.pr = true;
        r.paths[0].cwnd = 2000;
        pr_send(
            &mut r,
            1,
            10_000,
            PrPolicy::LimitedRetransmissions {
                max_retransmissions: 0,
            },
        );
        let sent: Vec<u32> = (0..4).flat_map(|_| r.packet()).collect();
        assert_eq!(sent, vec![1000, 1001]);
        r.out.on_t3_expired(0, &mut r.paths, &r.cfg);
        assert_eq!(r.out.abandoned(), (0, 1));
        assert_eq!(r.out.buffered(), 0);
        // The never sent rest is represented by an abandoned placeholder last fragment
        // (TSN 1002), so the FORWARD TSN moves the peer's ack point even if it holds 1000
        // and 1001.
        assert_eq!(r.out.advanced_peer_ack_point(), Tsn(1002));
        assert_eq!(r.out.next_tsn(), Tsn(1003));
        assert!(!r.out.has_queued());
        r.out.reset_burst();
        assert_eq!(r.packet(), Vec::<u32>::new());
    }

    #[test]
    fn a_forward_tsn_is_cut_short_when_its_streams_do_not_fit() {
        let mut r = Rig::new();
        r.out.pr = true;
        r.paths[0].cwnd = 1 << 20;
        for stream in 0..4 {
            pr_send(
                &mut r,
                stream,
                10,
                PrPolicy::LimitedRetransmissions {
                    max_retransmissions: 0,
                },
            );
        }
        assert_eq!(r.packet().len(), 4);
        r.out.on_t3_expired(0, &mut r.paths, &r.cfg);
        assert_eq!(r.out.advanced_peer_ack_point(), Tsn(1003));
        let mut streams = Vec::new();
        // Room for the header and two stream entries: the New Cumulative TSN stops before
        // the third stream's chunk.
        assert_eq!(r.out.take_forward_tsn(16, &mut streams), Some(Tsn(1001)));
        assert_eq!(streams.len(), 2);
        r.sack(1001, &[]);
        assert_eq!(r.out.take_forward_tsn(1200, &mut streams), Some(Tsn(1003)));
        assert_eq!(streams.len(), 2);
    }

    #[test]
    fn a_priority_message_evicts_queued_messages_of_lower_priority_only() {
        let mut r = Rig::new();
        r.out.pr = true;
        r.cfg.send_buffer_size = 300 * 1024;
        r.cfg.send_low_water = 100;
        let prio = |priority| PrPolicy::Priority { priority };
        pr_send(&mut r, 0, 100 * 1024, prio(1));
        pr_send(&mut r, 1, 100 * 1024, prio(9));
        pr_send(&mut r, 2, 100 * 1024, prio(5));
        // Priority 9 has nothing less important to evict: blocked, nothing abandoned.
        let e = r.out.send(
            r.now,
            3,
            0,
            Arc::new(vec![0; 50 * 1024]),
            SendOptions::default().with_pr_policy(prio(9)),
            &r.cfg,
            &mut r.paths,
        );
        assert_eq!(e, Err(SendError::WouldBlock));
        assert_eq!(r.out.abandoned(), (0, 0));
        // Priority 2 evicts the least important message (9) only, which makes enough room.
        r.out
            .send(
                r.now,
                3,
                0,
                Arc::new(vec![0; 50 * 1024]),
                SendOptions::default().with_pr_policy(prio(2)),
                &r.cfg,
                &mut r.paths,
            )
            .unwrap();
        assert_eq!(r.out.abandoned(), (1, 0));
        assert_eq!(r.out.buffered(), 250 * 1024);
    }

    #[test]
    fn without_pr_sctp_every_policy_is_reliable() {
        let mut r = Rig::new();
        pr_send(
            &mut r,
            0,
            100,
            PrPolicy::LimitedRetransmissions {
                max_retransmissions: 0,
            },
        );
        r.packet();
        r.out.on_t3_expired(0, &mut r.paths, &r.cfg);
        assert_eq!(r.out.abandoned(), (0, 0));
        assert!(!r.out.forward_tsn_due());
        assert_eq!(r.packet(), vec![1000]);
    }

    #[test]
    fn an_expired_message_the_peer_already_holds_is_not_abandoned_nor_looked_at_again() {
        let mut r = Rig::new();
        r.out.pr = true;
        r.queue(1, 100);
        pr_send(
            &mut r,
            1,
            100,
            PrPolicy::Timed {
                lifetime: Duration::from_millis(50),
            },
        );
        assert_eq!(r.packet(), vec![1000, 1001]);
        // 1001 gap-acked, 1000 still missing.
        r.sack(999, &[(2, 2)]);
        r.now += Duration::from_millis(50);
        r.out.expire(r.now, &mut r.paths);
        assert_eq!(r.out.abandoned(), (0, 0));
        // No deadline at or before now is left (the PR timer must not fire again now).
        assert_eq!(
            r.out
                .next_expiry(r.now.saturating_sub(Duration::from_millis(1))),
            None
        );
    }

    #[test]
    fn a_priority_message_evicts_a_sent_message_of_lower_priority_after_queued_ones() {
        let mut r = Rig::new();
        r.out.pr = true;
        r.cfg.send_buffer_size = 300 * 1024;
        r.cfg.send_low_water = 100;
        let prio = |priority| PrPolicy::Priority { priority };
        pr_send(&mut r, 0, 1000, prio(8));
        assert_eq!(r.packet(), vec![1000]);
        pr_send(&mut r, 1, 100 * 1024, prio(8));
        pr_send(&mut r, 2, 199 * 1024, prio(3));
        // 300 KiB used; 101 KiB more needs both priority 8 messages gone: the queued one
        // first, then the one in flight.
        r.out
            .send(
                r.now,
                3,
                0,
                Arc::new(vec![0; 101 * 1024]),
                SendOptions::default().with_pr_policy(prio(1)),
                &r.cfg,
                &mut r.paths,
            )
            .unwrap();
        assert_eq!(r.out.abandoned(), (1, 1));
        assert_eq!(r.paths[0].flight_size, 0);
        assert!(r.out.forward_tsn_due());
        assert_eq!(r.out.advanced_peer_ack_point(), Tsn(1000));
    }
}
