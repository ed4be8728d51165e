//! The data receiver: TSN tracking with gap blocks and duplicate TSNs, bounded reassembly,
//! ordered and unordered delivery per stream, the advertised receiver window, and the
//! information for SACK generation (RFC 9260 §6.2, §6.5, §6.9), and the FORWARD TSN of
//! PR-SCTP (RFC 3758 §3.6), which moves the cumulative TSN ack point over TSNs the sender
//! abandoned, drops their partial reassembly and skips their SSNs.
//!
//! Memory is bounded by `receive_window`: every chunk held for reassembly and every message
//! waiting for the application is charged its length plus [`ITEM_OVERHEAD`]. What does not
//! fit is dropped before it is acknowledged (§6.2), so accepted data is never lost. A chunk
//! that fills the hole at the cumulative ack point may use a slack of a quarter window, and
//! out-of-order chunks above it may be reneged to make room, which keeps the association
//! moving when the window is full of out-of-order data.
//!
//! Received TSNs are "unwrapped" into a 64-bit sequence (`u64`) for the reassembly map, so
//! the map's order is the TSN order across the 2^32 wrap.
//!
//! I-DATA (RFC 8260 §2.1) messages are reassembled by (stream, U bit, MID) and delivered only
//! when every fragment from the first (B bit) to the last (E bit) is held. Each fragment keeps
//! its TSN: an FSN that contradicts its message (a second fragment with that FSN, one beyond
//! the last, an FSN further from a neighbour's than its TSN is) makes
//! [`Inbound::on_idata`] return [`DataVerdict::FsnViolation`] and the association aborts,
//! since the TSN can be neither acknowledged with the data dropped nor reassembled. The
//! peer's numbering ([`PeerFsn`]) is learnt: a non-first fragment with FSN 0 is the Linux
//! numbering (its second fragment is FSN 0; fragments are then renumbered to RFC 8260's),
//! a message whose first fragment and FSN 1 are separated only by received TSNs is the RFC
//! one. Until one of the two is seen no I-DATA message of several fragments is completed
//! or delivered in pieces, as one complete under one numbering may lack a fragment under
//! the other.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::serial::{Ssn, Tsn};
use crate::wire::Ppid;

use super::fasthash::FastHash;
use super::outbound::flags;

mod partial;
pub use partial::Piece;

/// Bytes charged per buffered chunk or message on top of its payload (bookkeeping cost).
pub(crate) const ITEM_OVERHEAD: usize = 32;
/// Most disjoint ranges of out-of-order TSNs tracked (each becomes a gap ack block).
const MAX_GAP_RANGES: usize = 512;
/// Most duplicate TSNs remembered for the next SACK.
const MAX_DUPS: usize = 64;

/// A user message received from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The stream it arrived on.
    pub stream: u16,
    /// Payload Protocol Identifier (RFC 9260 §3.3.1).
    pub ppid: Ppid,
    /// It was sent unordered (U bit).
    pub unordered: bool,
    /// The user data (with partial delivery, this piece's part of it).
    pub data: Vec<u8>,
    /// `None` for a whole message. With partial delivery on
    /// ([`AssociationConfig::partial_delivery_point`](crate::AssociationConfig)), a message
    /// may arrive in pieces instead: this says which message and where in it; the pieces
    /// of one message come in order, the last with [`Piece::last`] set (unless an
    /// [`Event::PartialDeliveryAborted`](crate::Event) ends it).
    pub piece: Option<Piece>,
}

#[derive(Debug)]
struct RecvChunk {
    stream: u16,
    ssn: Ssn,
    ppid: u32,
    flags: u8,
    data: Vec<u8>,
}

/// An I-DATA message being reassembled.
#[derive(Debug, Default)]
struct IPartial {
    /// The PPID, from the first fragment.
    ppid: u32,
    /// The FSN of the last fragment (E bit), once received.
    last: Option<u32>,
    /// Fragments by FSN (in RFC 8260 numbering: the first fragment is FSN 0).
    frags: BTreeMap<u32, IFrag>,
    /// Payload bytes held.
    bytes: usize,
    /// Partial delivery: the message's identifier once a piece was delivered.
    pd: Option<u64>,
    /// Partial delivery: the first FSN not delivered yet.
    next_fsn: u32,
    /// Partial delivery: bytes delivered in pieces.
    delivered: u64,
    /// Partial delivery: the first FSN from `next_fsn` on that is missing.
    contig_end: u32,
    /// Partial delivery: bytes of the fragments from `next_fsn` to `contig_end`.
    contig_bytes: usize,
}

/// One I-DATA fragment held for reassembly.
#[derive(Debug)]
pub(super) struct IFrag {
    /// The TSN it arrived with.
    tsn: Tsn,
    /// Its user data.
    pub(super) data: Vec<u8>,
}

impl IFrag {
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }
}

/// How the peer numbers the fragments of an I-DATA message (the FSN field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerFsn {
    /// Not known yet: no fragmented message has shown it.
    Unknown,
    /// RFC 8260 §2.1: the first fragment is FSN 0 (implicit), the second FSN 1, ...
    Rfc8260,
    /// Linux (up to at least 6.1): the first fragment carries the PPID, the second is
    /// FSN 0, the third FSN 1, ...
    Linux,
}

/// What happened to one received DATA chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataVerdict {
    /// New data, stored.
    Accepted,
    /// Already received (reported as a duplicate TSN).
    Duplicate,
    /// Not accepted for lack of buffer space (§6.2); not acknowledged.
    Dropped,
    /// The stream identifier is not below the negotiated inbound streams: the TSN is
    /// acknowledged, the data discarded and an ERROR is due (§6.5).
    InvalidStream,
    /// A DATA chunk without user data: ABORT with "No User Data" (§6.2).
    NoUserData,
    /// A message larger than `max_message_size`: ABORT with "Out of Resource".
    MessageTooLarge,
    /// An I-DATA fragment whose FSN contradicts its message (a second fragment with the
    /// same FSN, an FSN beyond the last fragment, an FSN that does not fit the TSNs of the
    /// other fragments): its TSN cannot be acknowledged with the data dropped, so the
    /// association is aborted with a Protocol Violation (RFC 9260 §3.3.10.13).
    FsnViolation,
}

/// What a FORWARD TSN did (RFC 3758 §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardVerdict {
    /// The New Cumulative TSN is not beyond the cumulative TSN ack point: out of date,
    /// ignored (a SACK is still due).
    Stale,
    /// The cumulative TSN ack point moved.
    Advanced,
    /// The New Cumulative TSN lies further beyond the highest TSN received than the receive
    /// window lets the peer send: a protocol violation.
    Violation,
}

/// Whether fragment `fsn` arriving with `tsn` fits the TSNs of the fragments held of its
/// message: fragments are sent in FSN order with increasing TSNs (RFC 8260 §2.1), so
/// between two fragments the TSN advances at least as far as the FSN.
fn tsn_fits(frags: &BTreeMap<u32, IFrag>, fsn: u32, tsn: Tsn) -> bool {
    let below = frags
        .range(..fsn)
        .next_back()
        .is_none_or(|(&f, c)| i64::from(c.tsn.distance_to(tsn)) >= i64::from(fsn - f));
    let above = frags
        .range(fsn..)
        .next()
        .is_none_or(|(&f, c)| i64::from(tsn.distance_to(c.tsn)) >= i64::from(f - fsn));
    below && above
}

/// Most stream entries of one FORWARD TSN processed (a packet holds fewer).
const MAX_FORWARD_STREAMS: usize = 16_384;

/// The receive side of an association.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// Highest TSN received in sequence (the cumulative TSN ack point).
    cum_ack: Tsn,
    /// Unwrapped value of `cum_ack`.
    cum_key: u64,
    /// Disjoint, sorted ranges of TSNs received above `cum_ack`.
    gaps: Vec<(Tsn, Tsn)>,
    dups: Vec<Tsn>,
    reasm: BTreeMap<u64, RecvChunk>,
    /// I-DATA messages being reassembled, by (stream, unordered, MID) (RFC 8260 §2.1).
    /// Bounded by the receive window like `reasm` (every fragment is charged).
    ireasm: BTreeMap<(u16, bool, u32), IPartial>,
    /// The next MID expected per ordered stream (I-DATA).
    next_mid: HashMap<u16, u32, FastHash>,
    /// Complete ordered I-DATA messages waiting for an earlier MID, by (stream, MID).
    pending_mid: HashMap<(u16, u32), Message, FastHash>,
    /// I-DATA fragments or messages dropped as contradictory (bad FSN, MID delivered).
    idata_rejected: u64,
    /// The peer's I-DATA fragment numbering, once a fragmented message showed it.
    peer_fsn: PeerFsn,
    /// The next SSN expected per ordered stream (streams never used have no entry).
    next_ssn: HashMap<u16, Ssn, FastHash>,
    /// Complete ordered messages waiting for an earlier SSN, by (stream, SSN).
    pending: HashMap<(u16, u16), Message, FastHash>,
    ready: VecDeque<Message>,
    buffered: usize,
    window: usize,
    max_message: usize,
    inbound_streams: u16,
    // SACK timing (§6.2).
    data_packets_unacked: u32,
    sack_now: bool,
    /// A DATA chunk of the current packet arrived while a gap existed.
    gap_seen: bool,
    last_advertised: u32,
    /// The partial delivery point (see [`partial`]); `None`: whole messages only.
    pd_point: Option<usize>,
    /// The last identifier given to a message delivered in pieces.
    next_pd_id: u64,
    /// Partial deliveries aborted, for events: (stream, message id).
    pd_aborted: Vec<(u16, u64)>,
    /// Aborts not reported because `pd_aborted` was full.
    pd_aborts_dropped: u64,
    /// The DATA message in partial delivery.
    dpd: Option<partial::DataPd>,
    /// Tests: take the general reassembly path only (to compare the fast path with it).
    #[cfg(test)]
    general_only: bool,
    /// DATA messages completed while another is in partial delivery.
    pd_held: VecDeque<Message>,
}

impl Inbound {
    /// `peer_initial_tsn` is the Initial TSN of the peer's INIT or INIT ACK.
    pub(crate) fn new(
        peer_initial_tsn: Tsn,
        inbound_streams: u16,
        window: u32,
        max_message: usize,
    ) -> Inbound {
        Inbound {
            cum_ack: peer_initial_tsn.prev(),
            cum_key: 1 << 32,
            gaps: Vec::new(),
            dups: Vec::new(),
            reasm: BTreeMap::new(),
            ireasm: BTreeMap::new(),
            next_mid: HashMap::default(),
            pending_mid: HashMap::default(),
            idata_rejected: 0,
            peer_fsn: PeerFsn::Unknown,
            next_ssn: HashMap::default(),
            pending: HashMap::default(),
            ready: VecDeque::new(),
            buffered: 0,
            window: window as usize,
            max_message,
            inbound_streams,
            data_packets_unacked: 0,
            sack_now: false,
            gap_seen: false,
            last_advertised: window,
            pd_point: None,
            next_pd_id: 0,
            pd_aborted: Vec::new(),
            pd_aborts_dropped: 0,
            dpd: None,
            pd_held: VecDeque::new(),
            #[cfg(test)]
            general_only: false,
        }
    }

    /// The cumulative TSN ack point.
    pub(crate) fn cum_ack(&self) -> Tsn {
        self.cum_ack
    }

    /// The receiver window to advertise (a_rwnd).
    pub(crate) fn a_rwnd(&self) -> u32 {
        u32::try_from(self.window.saturating_sub(self.buffered)).unwrap_or(u32::MAX)
    }

    fn key(&self, tsn: Tsn) -> u64 {
        // Only called for TSNs within 2^31 of the cumulative ack point.
        self.cum_key
            .wrapping_add_signed(i64::from(self.cum_ack.distance_to(tsn)))
    }

    // ------------------------------------------------ stream reconfiguration (RFC 6525)

    /// The number of inbound streams.
    pub(crate) fn inbound_streams(&self) -> u16 {
        self.inbound_streams
    }

    /// Sets the number of inbound streams (Add Outgoing Streams from the peer, RFC 6525
    /// §5.2.5).
    pub(crate) fn set_inbound_streams(&mut self, n: u16) {
        self.inbound_streams = n;
    }

    /// Resets the expected SSN (and MIDs) of `streams` (empty: all) to 0 (RFC 6525 §5.2.2).
    /// Ordered messages of the old numbering still waiting for a missing SSN can never be
    /// delivered in order any more: they are dropped.
    pub(crate) fn reset_streams(&mut self, streams: &[u16]) {
        let hit = |s: u16| streams.is_empty() || streams.contains(&s);
        self.next_ssn.retain(|s, _| !hit(*s));
        self.next_mid.retain(|s, _| !hit(*s));
        let mut freed = 0usize;
        self.pending.retain(|(s, _), m| {
            let drop = hit(*s);
            if drop {
                freed += m.data.len() + ITEM_OVERHEAD;
            }
            !drop
        });
        self.pending_mid.retain(|(s, _), m| {
            let drop = hit(*s);
            if drop {
                freed += m.data.len() + ITEM_OVERHEAD;
            }
            !drop
        });
        self.buffered = self.buffered.saturating_sub(freed);
    }

    /// Restarts the receiver at `next` (SSN/TSN reset, RFC 6525 §5.2.4 G1/G4/G5, §5.1.4):
    /// nothing above the old cumulative TSN is held any more, every stream's SSN and MIDs
    /// restart at 0. Messages ready for the application stay.
    pub(crate) fn restart(&mut self, next: Tsn) {
        self.cum_ack = next.prev();
        self.cum_key = 1 << 32;
        self.gaps.clear();
        self.dups.clear();
        self.reasm.clear();
        self.ireasm.clear();
        self.next_mid.clear();
        self.pending_mid.clear();
        self.next_ssn.clear();
        self.pending.clear();
        self.buffered = self
            .ready
            .iter()
            .map(|m| m.data.len() + ITEM_OVERHEAD)
            .sum();
        // Nothing of the new numbering was received, so no SACK is owed. None may go out
        // before the responder's Re-configuration Response either: a SACK with the new
        // cumulative TSN ahead of it would acknowledge TSNs the requester has not sent yet.
        self.sack_now = false;
        self.data_packets_unacked = 0;
        self.gap_seen = false;
    }

    /// The highest TSN received.
    pub(crate) fn highest_tsn(&self) -> Tsn {
        self.highest_received()
    }

    fn highest_received(&self) -> Tsn {
        self.gaps.last().map_or(self.cum_ack, |&(_, e)| e)
    }

    fn is_received(&self, tsn: Tsn) -> bool {
        tsn.is_before_or_eq(self.cum_ack)
            || self
                .gaps
                .iter()
                .any(|&(s, e)| tsn.is_after_or_eq(s) && tsn.is_before_or_eq(e))
    }

    /// Records `tsn` as received; false if that needs a gap range beyond the limit.
    fn mark_received(&mut self, tsn: Tsn) -> bool {
        if tsn == self.cum_ack.next() {
            self.cum_ack = tsn;
            self.cum_key += 1;
            // Absorb a gap range that now touches the cumulative ack point.
            if let Some(&(s, e)) = self.gaps.first()
                && s == self.cum_ack.next()
            {
                self.cum_key += u64::from(s.distance_to(e) as u32) + 1;
                self.cum_ack = e;
                self.gaps.remove(0);
            }
            return true;
        }
        // Find the insertion point among the sorted ranges.
        let pos = self
            .gaps
            .iter()
            .position(|&(s, _)| tsn.is_before(s))
            .unwrap_or(self.gaps.len());
        let joins_prev = pos > 0
            && self
                .gaps
                .get(pos - 1)
                .is_some_and(|&(_, e)| e.next() == tsn);
        let joins_next = self.gaps.get(pos).is_some_and(|&(s, _)| tsn.next() == s);
        match (joins_prev, joins_next) {
            (true, true) => {
                let next_end = self.gaps[pos].1;
                self.gaps[pos - 1].1 = next_end;
                self.gaps.remove(pos);
            }
            (true, false) => self.gaps[pos - 1].1 = tsn,
            (false, true) => self.gaps[pos].0 = tsn,
            (false, false) => {
                if self.gaps.len() >= MAX_GAP_RANGES {
                    return false;
                }
                self.gaps.insert(pos, (tsn, tsn));
            }
        }
        true
    }

    /// Forgets that `tsn` (above the cumulative ack point) was received (reneging, §6.2).
    fn unmark_received(&mut self, tsn: Tsn) {
        let Some(pos) = self
            .gaps
            .iter()
            .position(|&(s, e)| tsn.is_after_or_eq(s) && tsn.is_before_or_eq(e))
        else {
            return;
        };
        let (s, e) = self.gaps[pos];
        if s == e {
            self.gaps.remove(pos);
        } else if tsn == s {
            self.gaps[pos].0 = s.next();
        } else if tsn == e {
            self.gaps[pos].1 = e.prev();
        } else if self.gaps.len() < MAX_GAP_RANGES {
            self.gaps[pos].1 = tsn.prev();
            self.gaps.insert(pos + 1, (tsn.next(), e));
        }
        // With the range table full, the split is not recorded: the TSN stays marked, which
        // is safe (it is renegeable data only in memory, and the window was freed).
    }

    /// Processes one DATA chunk (RFC 9260 §6.2, §6.5, §6.9).
    pub(crate) fn on_data(
        &mut self,
        tsn: Tsn,
        stream: u16,
        ssn: Ssn,
        ppid: u32,
        chunk_flags: u8,
        payload: &[u8],
    ) -> DataVerdict {
        let cost = match self.admit(tsn, stream, chunk_flags, payload.len()) {
            Ok(cost) => cost,
            Err(v) => return v,
        };
        let unordered = chunk_flags & flags::UNORDERED != 0;
        let whole = chunk_flags & (flags::BEGIN | flags::END) == flags::BEGIN | flags::END;
        if whole {
            if payload.len() > self.max_message {
                return DataVerdict::MessageTooLarge;
            }
            self.buffered += cost;
            self.deliver(
                Message {
                    stream,
                    ppid: Ppid(ppid),
                    unordered,
                    data: payload.to_vec(),
                    piece: None,
                },
                ssn,
            );
            return DataVerdict::Accepted;
        }
        self.buffered += cost;
        let key = self.key(tsn);
        if chunk_flags & flags::END != 0
            && self.pd_point.is_none()
            && !self.general_only()
            && self.complete_last_fragment(key, stream, ssn, unordered, payload)
        {
            return DataVerdict::Accepted;
        }
        self.reasm.insert(
            key,
            RecvChunk {
                stream,
                ssn,
                ppid,
                flags: chunk_flags,
                data: payload.to_vec(),
            },
        );
        if let Some(v) = self.dpd_after_insert(key) {
            return v;
        }
        let v = self.try_reassemble(key);
        if self.pd_point.is_some() {
            self.dpd_try_start();
        }
        v
    }

    /// The checks every DATA or I-DATA chunk goes through before its content is looked at:
    /// user data present, duplicate, window, stream. On success the TSN is marked received
    /// and the buffer cost of the chunk is returned (not yet charged).
    fn admit(
        &mut self,
        tsn: Tsn,
        stream: u16,
        chunk_flags: u8,
        len: usize,
    ) -> Result<usize, DataVerdict> {
        if len == 0 {
            // RFC 9260 §6.2: a DATA chunk with no user data MUST be answered with ABORT.
            return Err(DataVerdict::NoUserData);
        }
        // A packet that arrives while a gap exists is acknowledged at once, whether or not
        // it fills the gap (RFC 9260 §6.7).
        self.gap_seen |= !self.gaps.is_empty();
        if self.is_received(tsn) {
            // §6.2: report duplicates in the next SACK, which goes out without delay.
            if self.dups.len() < MAX_DUPS {
                self.dups.push(tsn);
            }
            self.sack_now = true;
            return Err(DataVerdict::Duplicate);
        }
        let offset = self.cum_ack.distance_to(tsn);
        if !(1..=65535).contains(&offset) {
            // Not representable in a gap ack block: far beyond any window we offered.
            self.sack_now = true;
            return Err(DataVerdict::Dropped);
        }
        if stream >= self.inbound_streams {
            // RFC 9260 §6.5: acknowledge the TSN, discard the data, report the error.
            if !self.mark_received(tsn) {
                return Err(DataVerdict::Dropped);
            }
            self.sack_now = true;
            return Err(DataVerdict::InvalidStream);
        }
        let cost = len + ITEM_OVERHEAD;
        if !self.make_room(tsn, cost) {
            // RFC 9260 §6.2: dropped data is not acknowledged; SACK at once with the
            // current window.
            self.sack_now = true;
            return Err(DataVerdict::Dropped);
        }
        if !self.mark_received(tsn) {
            self.sack_now = true;
            return Err(DataVerdict::Dropped);
        }
        if chunk_flags & flags::IMMEDIATE != 0 {
            // RFC 7053 §4.2: SACK without delay.
            self.sack_now = true;
        }
        Ok(cost)
    }

    /// Processes one I-DATA chunk (RFC 8260 §2.1): TSN bookkeeping as for DATA, then
    /// reassembly keyed by (stream, U bit, MID) in FSN order, and delivery of ordered
    /// messages in MID order. `ppid_or_fsn` is the PPID on a first fragment, the FSN on the
    /// others. Fragments that contradict what is held (a second first fragment, an FSN
    /// beyond the last one, a MID already delivered) are dropped and counted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_idata(
        &mut self,
        tsn: Tsn,
        stream: u16,
        mid: u32,
        ppid_or_fsn: u32,
        chunk_flags: u8,
        payload: &[u8],
    ) -> DataVerdict {
        let cost = match self.admit(tsn, stream, chunk_flags, payload.len()) {
            Ok(cost) => cost,
            Err(v) => return v,
        };
        let unordered = chunk_flags & flags::UNORDERED != 0;
        let begin = chunk_flags & flags::BEGIN != 0;
        let end = chunk_flags & flags::END != 0;
        if !unordered {
            let next = self.next_mid.get(&stream).copied().unwrap_or(0);
            if (mid.wrapping_sub(next) as i32) < 0 {
                // A MID already delivered: the TSN stays acknowledged, the data goes.
                self.idata_rejected += 1;
                return DataVerdict::Accepted;
            }
        }
        if begin && end {
            if payload.len() > self.max_message {
                return DataVerdict::MessageTooLarge;
            }
            self.buffered += cost;
            self.deliver_mid(
                Message {
                    stream,
                    ppid: Ppid(ppid_or_fsn),
                    unordered,
                    data: payload.to_vec(),
                    piece: None,
                },
                mid,
            );
            if self.peer_fsn == PeerFsn::Unknown && !self.ireasm.is_empty() {
                self.iresolve();
            }
            return DataVerdict::Accepted;
        }
        let key = (stream, unordered, mid);
        let was_unknown = self.peer_fsn == PeerFsn::Unknown;
        let fsn = if begin {
            0
        } else {
            match (self.peer_fsn, ppid_or_fsn) {
                (PeerFsn::Linux, raw) => raw.wrapping_add(1),
                (PeerFsn::Unknown, 0) => {
                    // RFC 8260 §2.1 numbers the first fragment (B bit) FSN 0, so FSN 0 on
                    // another fragment is impossible there: it is the Linux numbering.
                    self.set_linux_fsn();
                    1
                }
                (_, raw) => raw,
            }
        };
        if !begin && fsn == 0 {
            // RFC 8260 §2.1: FSN 0 is the first fragment, which has the B bit.
            self.idata_rejected += 1;
            return DataVerdict::FsnViolation;
        }
        let part = self.ireasm.entry(key).or_default();
        let contradicts = part.frags.contains_key(&fsn)
            || fsn < part.next_fsn
            || part.last.is_some_and(|l| fsn > l || end)
            || (end && part.frags.keys().next_back().is_some_and(|&k| k > fsn))
            || !tsn_fits(&part.frags, fsn, tsn);
        if contradicts {
            self.idata_rejected += 1;
            if part.frags.is_empty() && part.pd.is_none() {
                self.ireasm.remove(&key);
            }
            return DataVerdict::FsnViolation;
        }
        // With partial delivery the message may exceed max_message_size: what is held of
        // it stays bounded by the receive window.
        if self.pd_point.is_none() && part.bytes + payload.len() > self.max_message {
            return DataVerdict::MessageTooLarge;
        }
        self.buffered += cost;
        part.bytes += payload.len();
        if begin {
            part.ppid = ppid_or_fsn;
        }
        if end {
            part.last = Some(fsn);
        }
        part.frags.insert(
            fsn,
            IFrag {
                tsn,
                data: payload.to_vec(),
            },
        );
        if self.peer_fsn == PeerFsn::Unknown {
            self.iresolve();
        } else if was_unknown {
            self.iprogress_all();
        } else {
            self.iprogress(key);
        }
        DataVerdict::Accepted
    }

    /// The peer's I-DATA fragment numbering as far as known.
    pub(crate) fn peer_fsn(&self) -> PeerFsn {
        self.peer_fsn
    }

    /// The peer numbers fragments the Linux way: what is held is renumbered to RFC 8260
    /// numbering (every fragment but the first moves up by one) and reassembly goes on.
    fn set_linux_fsn(&mut self) {
        self.peer_fsn = PeerFsn::Linux;
        for part in self.ireasm.values_mut() {
            // Partial delivery waits until the numbering is known: nothing was delivered.
            let old = core::mem::take(&mut part.frags);
            part.frags = old
                .into_iter()
                .map(|(k, f)| (if k == 0 { 0 } else { k.wrapping_add(1) }, f))
                .collect();
            part.last = part.last.map(|l| l.wrapping_add(1));
            part.contig_end = 0;
            part.contig_bytes = 0;
        }
        // The caller inserts the current fragment and then looks at every message.
    }

    /// While the numbering is unknown: a held message with its first fragment (FSN 0) and
    /// the fragment numbered 1 whose TSNs in between were all received shows the RFC 8260
    /// numbering (under the Linux one, the fragment numbered 0 would lie in between and
    /// would have revealed it). Until then no message is completed or delivered in
    /// pieces, as one complete under one numbering may lack a fragment under the other.
    /// Called after every I-DATA chunk (and I-FORWARD TSN) while unknown; looks at the
    /// messages held, which the receive window bounds.
    pub(super) fn iresolve(&mut self) {
        if self.peer_fsn != PeerFsn::Unknown {
            return;
        }
        let mut resolved = false;
        for part in self.ireasm.values() {
            if let (Some(b), Some(s)) = (part.frags.get(&0), part.frags.get(&1))
                && self.all_received(b.tsn, s.tsn)
            {
                resolved = true;
                break;
            }
        }
        if !resolved {
            return;
        }
        self.peer_fsn = PeerFsn::Rfc8260;
        self.iprogress_all();
    }

    /// Runs reassembly over every held I-DATA message (the numbering just became known).
    fn iprogress_all(&mut self) {
        let keys: Vec<(u16, bool, u32)> = self.ireasm.keys().copied().collect();
        for k in keys {
            self.iprogress(k);
        }
    }

    /// Whether every TSN from `from` to `to` (serial order, `from` first) was received.
    fn all_received(&self, from: Tsn, to: Tsn) -> bool {
        to.is_before_or_eq(self.cum_ack)
            || self.gaps.iter().any(|&(s, e)| {
                s.is_before_or_eq(from) && to.is_before_or_eq(e) && from.is_before_or_eq(to)
            })
    }

    /// After a fragment of the I-DATA message `key` was stored (numbering known):
    /// partial delivery, or delivery once every fragment from the first to the last (E
    /// bit) is held — FSNs are unique and not beyond the last, so their count says so.
    fn iprogress(&mut self, key: (u16, bool, u32)) {
        if self.ipd_after_insert(key) {
            return;
        }
        let Some(part) = self.ireasm.get_mut(&key) else {
            return;
        };
        let complete = part.frags.contains_key(&0)
            && part
                .last
                .is_some_and(|l| part.frags.len() as u64 == u64::from(l) + 1);
        if !complete {
            return;
        }
        let Some(part) = self.ireasm.remove(&key) else {
            return;
        };
        let pieces = part.frags.len();
        let mut data = Vec::with_capacity(part.bytes);
        for (_, f) in part.frags {
            data.extend_from_slice(&f.data);
        }
        // Charged once as a message from now on.
        self.buffered = self
            .buffered
            .saturating_sub(pieces.saturating_sub(1) * ITEM_OVERHEAD);
        self.deliver_mid(
            Message {
                stream: key.0,
                ppid: Ppid(part.ppid),
                unordered: key.1,
                data,
                piece: None,
            },
            key.2,
        );
    }

    /// Hands a complete I-DATA message to the application queue, ordered ones in MID order
    /// per stream (32-bit serial arithmetic, RFC 8260 §2.1).
    fn deliver_mid(&mut self, msg: Message, mid: u32) {
        if msg.unordered {
            self.ready.push_back(msg);
            return;
        }
        let stream = msg.stream;
        let next = self.next_mid.get(&stream).copied().unwrap_or(0);
        let d = mid.wrapping_sub(next) as i32;
        if d < 0 || (d > 0 && self.pending_mid.contains_key(&(stream, mid))) {
            self.idata_rejected += 1;
            self.buffered = self.buffered.saturating_sub(msg.data.len() + ITEM_OVERHEAD);
            return;
        }
        if d > 0 {
            self.pending_mid.insert((stream, mid), msg);
            return;
        }
        self.ready.push_back(msg);
        let mut n = next.wrapping_add(1);
        // In-order arrival (the common case) has nothing waiting: skip the lookup.
        while !self.pending_mid.is_empty()
            && let Some(m) = self.pending_mid.remove(&(stream, n))
        {
            self.ready.push_back(m);
            n = n.wrapping_add(1);
        }
        self.next_mid.insert(stream, n);
        self.ipd_kick(stream);
    }

    /// I-DATA fragments or messages dropped because they contradicted what was held.
    pub(crate) fn idata_rejected(&self) -> u64 {
        self.idata_rejected
    }

    /// Ensures `cost` more bytes fit, reneging out-of-order chunks above `tsn` if needed.
    fn make_room(&mut self, tsn: Tsn, cost: usize) -> bool {
        if self.buffered + cost <= self.window {
            return true;
        }
        // The chunk at the cumulative ack point may use a slack of a quarter window, so a
        // window full of data waiting for it never deadlocks the association.
        if tsn == self.cum_ack.next() && self.buffered + cost <= self.window + self.window / 4 {
            return true;
        }
        if !tsn.is_before(self.highest_received()) {
            // §6.2: with no window, drop new data above the highest TSN received.
            return false;
        }
        // §6.2: drop the highest TSNs held for reordering to accept this one.
        let key = self.key(tsn);
        while self.buffered + cost > self.window {
            let Some((&k, _)) = self.reasm.iter().next_back() else {
                return false;
            };
            if k <= key || k <= self.cum_key {
                return false;
            }
            if let Some(c) = self.reasm.remove(&k) {
                self.buffered = self.buffered.saturating_sub(c.data.len() + ITEM_OVERHEAD);
                let t = self.cum_ack.add((k - self.cum_key) as u32);
                self.unmark_received(t);
            }
        }
        true
    }

    #[cfg(test)]
    fn general_only(&self) -> bool {
        self.general_only
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn general_only(&self) -> bool {
        false
    }

    /// Fast path for the last fragment (E bit, not B) of a DATA message, arriving at
    /// `key` and not stored: when the fragments before it, back to the first (B bit), are
    /// all held, the message is assembled into the first fragment's buffer (one copy of
    /// each later fragment, the last one straight from the packet) and delivered. Gives
    /// exactly the result of storing the chunk and calling [`Self::try_reassemble`]; returns
    /// false (nothing changed) when the message is not complete or too large, for the
    /// general path to handle. Only without partial delivery.
    fn complete_last_fragment(
        &mut self,
        key: u64,
        stream: u16,
        ssn: Ssn,
        unordered: bool,
        payload: &[u8],
    ) -> bool {
        let same = |c: &RecvChunk| {
            c.stream == stream && c.ssn == ssn && (c.flags & flags::UNORDERED != 0) == unordered
        };
        // Walk back to the first fragment, as `try_reassemble` does.
        let mut first = key;
        let mut total = payload.len();
        loop {
            if first == 0 {
                return false;
            }
            first -= 1;
            let Some(c) = self.reasm.get(&first) else {
                return false;
            };
            if !same(c) {
                return false;
            }
            total += c.data.len();
            if c.flags & flags::BEGIN != 0 {
                break;
            }
        }
        if total > self.max_message {
            return false;
        }
        let Some(head) = self.reasm.remove(&first) else {
            return false;
        };
        let ppid = head.ppid;
        let mut data = head.data;
        data.reserve_exact(total - data.len());
        let mut pieces = 2usize;
        for k in first + 1..key {
            if let Some(c) = self.reasm.remove(&k) {
                data.extend_from_slice(&c.data);
                pieces += 1;
            }
        }
        data.extend_from_slice(payload);
        // The message is charged once from now on.
        self.buffered = self.buffered.saturating_sub((pieces - 1) * ITEM_OVERHEAD);
        self.deliver(
            Message {
                stream,
                ppid: Ppid(ppid),
                unordered,
                data,
                piece: None,
            },
            ssn,
        );
        true
    }

    /// Looks for a complete message around the chunk stored at `key`.
    fn try_reassemble(&mut self, key: u64) -> DataVerdict {
        let Some(c) = self.reasm.get(&key) else {
            return DataVerdict::Accepted;
        };
        let (stream, ssn, unordered) = (c.stream, c.ssn, c.flags & flags::UNORDERED != 0);
        let same = |c: &RecvChunk| {
            c.stream == stream && c.ssn == ssn && (c.flags & flags::UNORDERED != 0) == unordered
        };
        // Walk back to the first fragment.
        let mut first = key;
        let mut total = 0usize;
        loop {
            let Some(c) = self.reasm.get(&first) else {
                return DataVerdict::Accepted;
            };
            if !same(c) {
                return DataVerdict::Accepted;
            }
            total += c.data.len();
            if c.flags & flags::BEGIN != 0 {
                break;
            }
            if first == 0 {
                return DataVerdict::Accepted;
            }
            first -= 1;
        }
        // Walk forward to the last fragment.
        let mut last = key;
        loop {
            let Some(c) = self.reasm.get(&last) else {
                if total > self.max_message && self.pd_point.is_none() {
                    return DataVerdict::MessageTooLarge;
                }
                return DataVerdict::Accepted;
            };
            if !same(c) {
                return DataVerdict::Accepted;
            }
            if last != key {
                total += c.data.len();
            }
            if c.flags & flags::END != 0 {
                break;
            }
            last += 1;
        }
        if total > self.max_message && self.pd_point.is_none() {
            return DataVerdict::MessageTooLarge;
        }
        let mut data = Vec::with_capacity(total);
        let mut ppid = 0;
        let mut pieces = 0usize;
        for k in first..=last {
            if let Some(c) = self.reasm.remove(&k) {
                if k == first {
                    ppid = c.ppid;
                }
                data.extend_from_slice(&c.data);
                pieces += 1;
            }
        }
        // The message is charged once from now on.
        self.buffered = self
            .buffered
            .saturating_sub(pieces.saturating_sub(1) * ITEM_OVERHEAD);
        self.deliver(
            Message {
                stream,
                ppid: Ppid(ppid),
                unordered,
                data,
                piece: None,
            },
            ssn,
        );
        DataVerdict::Accepted
    }

    /// Hands a complete message to the application queue, in SSN order for ordered ones.
    fn deliver(&mut self, msg: Message, ssn: Ssn) {
        if msg.unordered {
            self.push_data_ready(msg);
            return;
        }
        let stream = msg.stream;
        let next = self.next_ssn.get(&stream).copied().unwrap_or_default();
        let d = next.distance_to(ssn);
        if d < 0 || (d > 0 && self.pending.contains_key(&(stream, ssn.get()))) {
            // An SSN already delivered or already waiting: a misbehaving peer. Drop it.
            self.buffered = self.buffered.saturating_sub(msg.data.len() + ITEM_OVERHEAD);
            return;
        }
        if d > 0 {
            self.pending.insert((stream, ssn.get()), msg);
            return;
        }
        self.push_data_ready(msg);
        let mut n = next.next();
        // In-order arrival (the common case) has nothing waiting: skip the lookup.
        while !self.pending.is_empty()
            && let Some(m) = self.pending.remove(&(stream, n.get()))
        {
            self.push_data_ready(m);
            n = n.next();
        }
        self.next_ssn.insert(stream, n);
    }

    /// Processes a FORWARD TSN (RFC 3758 §3.6): moves the cumulative TSN ack point to
    /// `new_cum`, drops the partly reassembled messages it skips, and for each ordered
    /// `(stream, ssn)` listed skips the stream to after `ssn`, delivering what is then in
    /// order. A SACK is due at once either way.
    pub(crate) fn on_forward_tsn(
        &mut self,
        new_cum: Tsn,
        streams: &mut dyn Iterator<Item = (u16, Ssn)>,
    ) -> ForwardVerdict {
        let limit_key = match self.forward_cum(new_cum) {
            Ok(k) => k,
            Err(v) => return v,
        };
        self.dpd_on_forward(limit_key);
        let v = self.forward_reasm(limit_key, streams);
        if self.pd_point.is_some() {
            self.dpd_try_start();
        }
        v
    }

    /// Processes an I-FORWARD TSN (RFC 8260 §2.3.2): moves the cumulative TSN ack point as a
    /// FORWARD TSN does, then for each `(stream, unordered, mid)` listed drops the partly
    /// reassembled messages of that stream and ordering up to `mid` and, for ordered ones,
    /// skips the stream's MIDs to after `mid`, delivering what is then in order.
    pub(crate) fn on_iforward_tsn(
        &mut self,
        new_cum: Tsn,
        entries: &mut dyn Iterator<Item = (u16, bool, u32)>,
    ) -> ForwardVerdict {
        if let Err(v) = self.forward_cum(new_cum) {
            return v;
        }
        let serial_le = |a: u32, b: u32| (b.wrapping_sub(a) as i32) >= 0;
        let mut index: Option<Vec<(u16, u32)>> = None;
        for (stream, unordered, mid) in entries.take(MAX_FORWARD_STREAMS) {
            if stream >= self.inbound_streams {
                continue;
            }
            let abandoned: Vec<(u16, bool, u32)> = self
                .ireasm
                .range((stream, unordered, 0)..=(stream, unordered, u32::MAX))
                .map(|(k, _)| *k)
                .filter(|k| serial_le(k.2, mid))
                .collect();
            for k in abandoned {
                if let Some(part) = self.ireasm.remove(&k) {
                    self.buffered = self
                        .buffered
                        .saturating_sub(part.bytes + part.frags.len() * ITEM_OVERHEAD);
                    self.ipd_dropped(k.0, part.pd);
                }
            }
            if unordered {
                continue;
            }
            let next = self.next_mid.get(&stream).copied().unwrap_or(0);
            if !serial_le(next, mid) {
                continue; // already past it
            }
            if !self.pending_mid.is_empty() {
                let keys = index.get_or_insert_with(|| {
                    let mut k: Vec<(u16, u32)> = self.pending_mid.keys().copied().collect();
                    k.sort_unstable();
                    k
                });
                let lo = keys.partition_point(|&(st, _)| st < stream);
                let hi = keys.partition_point(|&(st, _)| st <= stream);
                let mut skipped: Vec<u32> = keys
                    .get(lo..hi)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&(_, m)| m)
                    .filter(|&m| serial_le(next, m) && serial_le(m, mid))
                    .collect();
                skipped.sort_unstable_by_key(|&m| m.wrapping_sub(next));
                for m in skipped {
                    if let Some(msg) = self.pending_mid.remove(&(stream, m)) {
                        self.ready.push_back(msg);
                    }
                }
            }
            let mut n = mid.wrapping_add(1);
            while let Some(msg) = self.pending_mid.remove(&(stream, n)) {
                self.ready.push_back(msg);
                n = n.wrapping_add(1);
            }
            self.next_mid.insert(stream, n);
            self.ipd_kick(stream);
        }
        // TSNs the I-FORWARD TSN covered count as received for the numbering's resolution.
        self.iresolve();
        ForwardVerdict::Advanced
    }

    /// The part of FORWARD TSN and I-FORWARD TSN processing that moves the cumulative TSN
    /// ack point (RFC 3758 §3.6). Returns the unwrapped key of the New Cumulative TSN.
    fn forward_cum(&mut self, new_cum: Tsn) -> Result<u64, ForwardVerdict> {
        // RFC 3758 §3.6: a SACK follows the delayed SACK rules of a DATA chunk; the ack
        // point moving over a gap makes it immediate (RFC 9260 §6.7), and an out-of-date
        // FORWARD TSN hints that our last SACK was lost: acknowledge at once in all cases.
        self.sack_now = true;
        if !new_cum.is_after(self.cum_ack) {
            // RFC 3758 §3.6: behind or at the cumulative TSN point: out of date; the
            // cumulative TSN MUST NOT be updated.
            return Err(ForwardVerdict::Stale);
        }
        // The peer cannot have sent TSNs further beyond the highest one received than our
        // window allows (each carries at least one byte, RFC 9260 §6.1 A); a New Cumulative
        // TSN there is a protocol violation (as usrsctp treats it), never a reason to jump.
        let ahead = self.highest_received().distance_to(new_cum);
        if ahead > 0 && u64::from(ahead.unsigned_abs()) > self.window as u64 {
            return Err(ForwardVerdict::Violation);
        }
        let skip = u64::from(self.cum_ack.distance_to(new_cum).unsigned_abs());
        let limit_key = self.cum_key + skip;
        // RFC 3758 §3.6: update the cumulative TSN point to the New Cumulative TSN and stop
        // reporting missing TSNs at or below it ...
        while let Some(&(s, e)) = self.gaps.first() {
            if e.is_before_or_eq(new_cum) {
                self.gaps.remove(0);
            } else {
                if s.is_before_or_eq(new_cum) {
                    self.gaps[0].0 = new_cum.next();
                }
                break;
            }
        }
        self.cum_ack = new_cum;
        self.cum_key = limit_key;
        // ... then advance it further locally over TSNs already received.
        if let Some(&(s, e)) = self.gaps.first()
            && s == self.cum_ack.next()
        {
            self.cum_key += u64::from(s.distance_to(e).unsigned_abs()) + 1;
            self.cum_ack = e;
            self.gaps.remove(0);
        }
        Ok(limit_key)
    }

    /// The FORWARD TSN part that drops skipped partial messages and skips SSNs.
    fn forward_reasm(
        &mut self,
        limit_key: u64,
        streams: &mut dyn Iterator<Item = (u16, Ssn)>,
    ) -> ForwardVerdict {
        // RFC 3758 §3.6: partly reassembled messages with fragments at or below the New
        // Cumulative TSN were abandoned by the sender: drop them, and the fragments of the
        // same message that directly follow.
        let mut last: Option<(u64, u16, Ssn, u8)> = None;
        while let Some((&k, c)) = self.reasm.iter().next() {
            let continues = last.is_some_and(|(lk, stream, ssn, f)| {
                k == lk + 1
                    && c.flags & flags::BEGIN == 0
                    && c.stream == stream
                    && c.ssn == ssn
                    && (c.flags & flags::UNORDERED) == (f & flags::UNORDERED)
            });
            if k > limit_key && !continues {
                break;
            }
            last = Some((k, c.stream, c.ssn, c.flags));
            if let Some(c) = self.reasm.remove(&k) {
                self.buffered = self.buffered.saturating_sub(c.data.len() + ITEM_OVERHEAD);
            }
        }
        // RFC 3758 §3.6: for each ordered stream listed, the SSNs up to the one given are
        // skipped; complete messages waiting there are delivered, and so is what follows in
        // order. The waiting messages are indexed once per chunk (sorted by stream), so a
        // hostile list of streams and SSN spans costs O(waiting + entries · log waiting).
        let mut index: Option<Vec<(u16, u16)>> = None;
        for (stream, ssn) in streams.take(MAX_FORWARD_STREAMS) {
            if stream >= self.inbound_streams {
                continue;
            }
            let next = self.next_ssn.get(&stream).copied().unwrap_or_default();
            if next.distance_to(ssn) < 0 {
                continue; // already past it
            }
            if !self.pending.is_empty() {
                let keys = index.get_or_insert_with(|| {
                    let mut k: Vec<(u16, u16)> = self.pending.keys().copied().collect();
                    k.sort_unstable();
                    k
                });
                let lo = keys.partition_point(|&(st, _)| st < stream);
                let hi = keys.partition_point(|&(st, _)| st <= stream);
                let mut skipped: Vec<u16> = keys
                    .get(lo..hi)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&(_, n)| n)
                    .filter(|&n| next.distance_to(Ssn(n)) >= 0 && Ssn(n).is_before_or_eq(ssn))
                    .collect();
                skipped.sort_unstable_by_key(|&n| next.distance_to(Ssn(n)));
                for n in skipped {
                    if let Some(m) = self.pending.remove(&(stream, n)) {
                        self.push_data_ready(m);
                    }
                }
            }
            let mut n = ssn.next();
            while let Some(m) = self.pending.remove(&(stream, n.get())) {
                self.push_data_ready(m);
                n = n.next();
            }
            self.next_ssn.insert(stream, n);
        }
        ForwardVerdict::Advanced
    }

    /// Whether a message is ready for the application.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Takes the next message for the application.
    pub(crate) fn recv(&mut self) -> Option<Message> {
        let m = self.ready.pop_front()?;
        self.buffered = self.buffered.saturating_sub(m.data.len() + ITEM_OVERHEAD);
        Some(m)
    }

    /// Takes every message ready for the application (the association is closing).
    pub(crate) fn take_ready(&mut self) -> VecDeque<Message> {
        let mut ready = core::mem::take(&mut self.ready);
        ready.append(&mut self.take_held());
        ready
    }

    /// Notes the end of a received packet that carried DATA. Returns true when a SACK is
    /// due now (§6.2: every second packet, gaps, duplicates, the I bit).
    pub(crate) fn on_data_packet(&mut self, sack_every: u32) -> bool {
        self.data_packets_unacked += 1;
        if !self.gaps.is_empty() || self.gap_seen {
            // §6.7: with a gap (or one just filled), SACK every packet.
            self.sack_now = true;
        }
        self.gap_seen = false;
        if self.data_packets_unacked >= sack_every {
            self.sack_now = true;
        }
        self.sack_now
    }

    /// A SACK is owed to the peer (delayed or not).
    pub(crate) fn sack_pending(&self) -> bool {
        self.data_packets_unacked > 0 || self.sack_now
    }

    /// A SACK is owed without delay.
    pub(crate) fn sack_due_now(&self) -> bool {
        self.sack_now
    }

    /// Forces the next SACK to go out without delay.
    pub(crate) fn request_sack_now(&mut self) {
        self.sack_now = true;
    }

    /// After the application read data: true if the window opened enough to tell the peer
    /// (receiver SWS avoidance: by a path MTU or half the window, from below that).
    pub(crate) fn window_update_due(&self, mtu: u32) -> bool {
        let now = self.a_rwnd();
        let step = mtu.min(u32::try_from(self.window / 2).unwrap_or(u32::MAX));
        now >= self.last_advertised.saturating_add(step) && self.last_advertised < step.max(1) * 2
    }

    /// Fills the fields of a SACK chunk of at most `max_len` bytes and resets the SACK
    /// state. `emit_gap` and `emit_dup` receive the blocks (offsets from the cumulative
    /// ack) and duplicate TSNs that fit.
    pub(crate) fn take_sack(&mut self, max_len: usize) -> SackFields<'_> {
        self.data_packets_unacked = 0;
        self.sack_now = false;
        let a_rwnd = self.a_rwnd();
        self.last_advertised = a_rwnd;
        // 16 bytes of SACK header, 4 per gap block and per duplicate TSN.
        let room = max_len.saturating_sub(16) / 4;
        let n_gaps = self.gaps.len().min(room);
        let n_dups = self.dups.len().min(room - n_gaps);
        SackFields {
            cum_ack: self.cum_ack,
            a_rwnd,
            gaps: self.gaps.get(..n_gaps).unwrap_or(&[]),
            dups: DupDrain {
                dups: &mut self.dups,
                n: n_dups,
            },
        }
    }

    /// The gap block count and duplicate count a SACK would have now.
    #[cfg(test)]
    pub(crate) fn sack_len(&self, max_len: usize) -> usize {
        let room = max_len.saturating_sub(16) / 4;
        let n = (self.gaps.len() + self.dups.len()).min(room);
        16 + 4 * n
    }

    /// Bytes held (for tests and statistics).
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }
}

/// The content of one SACK chunk.
#[derive(Debug)]
pub(crate) struct SackFields<'a> {
    pub(crate) cum_ack: Tsn,
    pub(crate) a_rwnd: u32,
    /// Absolute TSN ranges; convert with `offset = cum_ack.distance_to(tsn)`.
    pub(crate) gaps: &'a [(Tsn, Tsn)],
    pub(crate) dups: DupDrain<'a>,
}

impl SackFields<'_> {
    /// The gap ack blocks as offsets from the cumulative TSN ack.
    pub(crate) fn gap_offsets(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let cum = self.cum_ack;
        self.gaps.iter().map(move |&(s, e)| {
            (
                u16::try_from(cum.distance_to(s)).unwrap_or(u16::MAX),
                u16::try_from(cum.distance_to(e)).unwrap_or(u16::MAX),
            )
        })
    }
}

/// The duplicate TSNs of a SACK; reading them removes them from the receiver.
#[derive(Debug)]
pub(crate) struct DupDrain<'a> {
    dups: &'a mut Vec<Tsn>,
    n: usize,
}

impl DupDrain<'_> {
    /// The duplicates that fit in the SACK.
    pub(crate) fn list(&self) -> &[Tsn] {
        self.dups.get(..self.n).unwrap_or(&[])
    }
}

impl Drop for DupDrain<'_> {
    fn drop(&mut self) {
        // Duplicates are reported once; those that did not fit are dropped as well.
        self.dups.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BE: u8 = flags::BEGIN | flags::END;

    fn rx(initial: u32) -> Inbound {
        Inbound::new(Tsn(initial), 100, 64 * 1024, 32 * 1024)
    }

    /// The fast path for a message's last fragment gives exactly what storing it and
    /// running the general reassembly gives: same verdicts, cumulative ack, gap blocks,
    /// buffer charge and delivered messages, over random traffic with fragments, loss
    /// (never retransmitted: gaps stay), reordering, duplicates, unordered messages,
    /// messages above the size limit, and the TSN and SSN wraps.
    #[test]
    fn the_last_fragment_fast_path_matches_the_general_reassembly() {
        use rand_chacha::ChaCha8Rng;
        use rand_core::{RngCore, SeedableRng};
        for seed in 0..40u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let start = u32::MAX - 300;
            let mut chunks = Vec::new();
            let mut tsn = Tsn(start);
            let mut ssn = [Ssn(65_500); 3];
            for m in 0..400u32 {
                let stream = (rng.next_u32() % 3) as u16;
                let unordered = rng.next_u32() % 5 == 0;
                let frags = 1 + rng.next_u32() % 4;
                let s = ssn[stream as usize];
                if !unordered {
                    ssn[stream as usize] = s.next();
                }
                for f in 0..frags {
                    let mut fl = if unordered { flags::UNORDERED } else { 0 };
                    if f == 0 {
                        fl |= flags::BEGIN;
                    }
                    if f + 1 == frags {
                        fl |= flags::END;
                    }
                    let len = 1 + (rng.next_u32() % 300) as usize;
                    let data = vec![(m as u8).wrapping_add(f as u8); len];
                    chunks.push((tsn, stream, s, m, fl, data));
                    tsn = tsn.next();
                }
            }
            // Reorder locally, duplicate some, lose a few.
            for i in 0..chunks.len() {
                let j = i + (rng.next_u32() % 6) as usize;
                if j < chunks.len() && rng.next_u32() % 3 == 0 {
                    chunks.swap(i, j);
                }
            }
            let mut feed = Vec::new();
            for c in chunks {
                match rng.next_u32() % 40 {
                    0 => {}
                    1 | 2 => {
                        feed.push(c.clone());
                        feed.push(c);
                    }
                    _ => feed.push(c),
                }
            }
            let mk = || Inbound::new(Tsn(start), 3, 1 << 20, 700);
            let mut fast = mk();
            let mut general = mk();
            general.general_only = true;
            for (i, (t, st, s, ppid, fl, data)) in feed.iter().enumerate() {
                let a = fast.on_data(*t, *st, *s, *ppid, *fl, data);
                let b = general.on_data(*t, *st, *s, *ppid, *fl, data);
                assert_eq!(a, b, "seed {seed} chunk {i}");
                assert_eq!(fast.cum_ack(), general.cum_ack());
                assert_eq!(fast.gaps, general.gaps);
                assert_eq!(fast.buffered(), general.buffered());
                if i % 7 == 0 {
                    while let Some(m) = general.recv() {
                        assert_eq!(fast.recv(), Some(m));
                    }
                    assert_eq!(fast.recv(), None);
                }
            }
            while let Some(m) = general.recv() {
                assert_eq!(fast.recv(), Some(m));
            }
            assert_eq!(fast.recv(), None);
            assert_eq!(fast.reasm.len(), general.reasm.len());
            assert_eq!(fast.buffered(), general.buffered());
        }
    }

    #[test]
    fn in_order_chunks_advance_the_cumulative_ack() {
        let mut r = rx(10);
        assert_eq!(
            r.on_data(Tsn(10), 0, Ssn(0), 1, BE, b"a"),
            DataVerdict::Accepted
        );
        assert_eq!(
            r.on_data(Tsn(11), 0, Ssn(1), 1, BE, b"b"),
            DataVerdict::Accepted
        );
        assert_eq!(r.cum_ack(), Tsn(11));
        assert_eq!(r.recv().unwrap().data, b"a");
        assert_eq!(r.recv().unwrap().data, b"b");
    }

    #[test]
    fn out_of_order_tsns_form_gap_blocks_that_merge_when_filled() {
        let mut r = rx(1);
        r.on_data(Tsn(3), 0, Ssn(2), 1, BE, b"c");
        r.on_data(Tsn(5), 0, Ssn(4), 1, BE, b"e");
        {
            let s = r.take_sack(1500);
            assert_eq!(s.cum_ack, Tsn(0));
            assert_eq!(s.gap_offsets().collect::<Vec<_>>(), vec![(3, 3), (5, 5)]);
        }
        r.on_data(Tsn(4), 0, Ssn(3), 1, BE, b"d");
        r.on_data(Tsn(1), 0, Ssn(0), 1, BE, b"a");
        r.on_data(Tsn(2), 0, Ssn(1), 1, BE, b"b");
        assert_eq!(r.cum_ack(), Tsn(5));
        let got: Vec<_> = std::iter::from_fn(|| r.recv()).map(|m| m.data).collect();
        assert_eq!(
            got,
            vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"d".to_vec(),
                b"e".to_vec()
            ]
        );
    }

    #[test]
    fn duplicates_are_reported_once_and_force_an_immediate_sack() {
        let mut r = rx(7);
        r.on_data(Tsn(7), 0, Ssn(0), 1, BE, b"x");
        let _ = r.take_sack(1500);
        assert_eq!(
            r.on_data(Tsn(7), 0, Ssn(0), 1, BE, b"x"),
            DataVerdict::Duplicate
        );
        assert!(r.sack_due_now());
        {
            let s = r.take_sack(1500);
            assert_eq!(s.dups.list(), &[Tsn(7)]);
        }
        let s = r.take_sack(1500);
        assert!(s.dups.list().is_empty());
    }

    #[test]
    fn tsn_tracking_survives_the_32_bit_wrap() {
        let mut r = rx(u32::MAX - 1);
        r.on_data(Tsn(0), 0, Ssn(2), 1, BE, b"c");
        r.on_data(Tsn(u32::MAX), 0, Ssn(1), 1, BE, b"b");
        assert_eq!(r.cum_ack(), Tsn(u32::MAX - 2));
        r.on_data(Tsn(u32::MAX - 1), 0, Ssn(0), 1, BE, b"a");
        assert_eq!(r.cum_ack(), Tsn(0));
        let got: Vec<_> = std::iter::from_fn(|| r.recv()).map(|m| m.data).collect();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn fragments_are_reassembled_across_the_tsn_wrap() {
        let mut r = rx(u32::MAX);
        r.on_data(Tsn(1), 0, Ssn(0), 1, flags::END, b"3");
        r.on_data(Tsn(u32::MAX), 0, Ssn(0), 1, flags::BEGIN, b"1");
        assert!(!r.has_ready());
        r.on_data(Tsn(0), 0, Ssn(0), 1, 0, b"2");
        assert_eq!(r.recv().unwrap().data, b"123");
    }

    #[test]
    fn ordered_messages_wait_for_earlier_ssns_but_unordered_do_not() {
        let mut r = rx(1);
        r.on_data(Tsn(2), 3, Ssn(1), 1, BE, b"second");
        r.on_data(Tsn(3), 3, Ssn(0), 1, BE | flags::UNORDERED, b"urgent");
        assert_eq!(r.recv().unwrap().data, b"urgent");
        assert!(r.recv().is_none());
        r.on_data(Tsn(1), 3, Ssn(0), 1, BE, b"first");
        assert_eq!(r.recv().unwrap().data, b"first");
        assert_eq!(r.recv().unwrap().data, b"second");
    }

    #[test]
    fn ssn_order_survives_the_16_bit_wrap() {
        let mut r = rx(1);
        // Bring the stream to SSN 65535.
        for i in 0..65535u32 {
            r.on_data(Tsn(1 + i), 0, Ssn(i as u16), 1, BE, b"x");
            r.recv();
        }
        r.on_data(Tsn(65537), 0, Ssn(0), 1, BE, b"after");
        r.on_data(Tsn(65536), 0, Ssn(65535), 1, BE, b"before");
        assert_eq!(r.recv().unwrap().data, b"before");
        assert_eq!(r.recv().unwrap().data, b"after");
    }

    #[test]
    fn an_empty_data_chunk_is_no_user_data() {
        let mut r = rx(1);
        assert_eq!(
            r.on_data(Tsn(1), 0, Ssn(0), 1, BE, b""),
            DataVerdict::NoUserData
        );
    }

    #[test]
    fn an_invalid_stream_is_acknowledged_but_not_delivered() {
        let mut r = rx(1);
        assert_eq!(
            r.on_data(Tsn(1), 100, Ssn(0), 1, BE, b"x"),
            DataVerdict::InvalidStream
        );
        assert_eq!(r.cum_ack(), Tsn(1));
        assert!(r.recv().is_none());
    }

    #[test]
    fn data_beyond_a_full_window_is_dropped_and_not_acknowledged() {
        let mut r = Inbound::new(Tsn(1), 10, 4096, 1024);
        let big = vec![0u8; 1000];
        let mut tsn = 1;
        while r.on_data(Tsn(tsn), 0, Ssn(tsn as u16 - 1), 1, BE, &big) == DataVerdict::Accepted {
            tsn += 1;
        }
        // Slack for the chunk at the cumulative ack point is used up too.
        let accepted_cum = r.cum_ack();
        assert_eq!(accepted_cum, Tsn(tsn - 1));
        assert!(r.buffered() <= 4096 + 1024);
        assert_eq!(r.a_rwnd(), 0);
        // Reading frees the window.
        while r.recv().is_some() {}
        assert_eq!(r.a_rwnd(), 4096);
        assert_eq!(
            r.on_data(Tsn(tsn), 0, Ssn(tsn as u16 - 1), 1, BE, &big),
            DataVerdict::Accepted
        );
    }

    #[test]
    fn a_hole_filler_reneges_out_of_order_data_when_the_window_is_full() {
        let mut r = Inbound::new(Tsn(1), 10, 4096, 1024);
        let big = vec![0u8; 900];
        // TSN 1 is lost; 2.. fill the window out of order (fragments of one message so
        // nothing is delivered).
        let mut tsn = 2;
        while r.on_data(Tsn(tsn), 0, Ssn(0), 1, 0, &big) == DataVerdict::Accepted {
            tsn += 1;
        }
        let before = r.buffered();
        assert_eq!(
            r.on_data(Tsn(1), 1, Ssn(0), 1, BE, &big),
            DataVerdict::Accepted
        );
        assert!(r.buffered() <= 4096 + 1024);
        assert!(before <= 4096);
        assert_eq!(r.recv().unwrap().stream, 1);
    }

    #[test]
    fn a_message_above_the_limit_is_refused() {
        let mut r = Inbound::new(Tsn(1), 10, 64 * 1024, 2000);
        assert_eq!(
            r.on_data(Tsn(1), 0, Ssn(0), 1, flags::BEGIN, &[0; 1500]),
            DataVerdict::Accepted
        );
        assert_eq!(
            r.on_data(Tsn(2), 0, Ssn(0), 1, flags::END, &[0; 1500]),
            DataVerdict::MessageTooLarge
        );
    }

    #[test]
    fn a_sack_is_due_every_second_data_packet() {
        let mut r = rx(1);
        r.on_data(Tsn(1), 0, Ssn(0), 1, BE, b"a");
        assert!(!r.on_data_packet(2));
        r.on_data(Tsn(2), 0, Ssn(1), 1, BE, b"b");
        assert!(r.on_data_packet(2));
    }

    #[test]
    fn the_packet_filling_a_gap_is_acknowledged_at_once() {
        let mut r = rx(1);
        r.on_data(Tsn(2), 0, Ssn(1), 1, BE, b"b");
        assert!(r.on_data_packet(2));
        let _ = r.take_sack(1500);
        r.on_data(Tsn(1), 0, Ssn(0), 1, BE, b"a");
        assert!(r.on_data_packet(2));
        let _ = r.take_sack(1500);
        // Back in sequence: delayed again.
        r.on_data(Tsn(3), 0, Ssn(2), 1, BE, b"c");
        assert!(!r.on_data_packet(2));
    }

    #[test]
    fn the_i_bit_forces_an_immediate_sack() {
        let mut r = rx(1);
        r.on_data(Tsn(1), 0, Ssn(0), 1, BE | flags::IMMEDIATE, b"a");
        assert!(r.on_data_packet(2));
    }

    #[test]
    fn sack_gap_blocks_are_limited_to_the_room_given() {
        let mut r = rx(1);
        for i in 0..100u32 {
            r.on_data(Tsn(2 + 2 * i), 0, Ssn(0), 1, BE | flags::UNORDERED, b"x");
        }
        assert_eq!(r.sack_len(16 + 40), 56);
        let s = r.take_sack(16 + 40);
        assert_eq!(s.gaps.len(), 10);
    }

    #[test]
    fn a_forward_tsn_moves_the_cumulative_ack_over_missing_tsns_and_absorbs_gaps() {
        let mut r = rx(1);
        r.on_data(Tsn(4), 0, Ssn(3), 1, BE, b"d");
        r.on_data(Tsn(6), 0, Ssn(5), 1, BE, b"f");
        assert_eq!(
            r.on_forward_tsn(Tsn(2), &mut [(0, Ssn(1))].into_iter()),
            ForwardVerdict::Advanced
        );
        assert_eq!(r.cum_ack(), Tsn(2));
        assert!(r.sack_due_now());
        assert!(r.recv().is_none());
        assert_eq!(
            r.on_forward_tsn(Tsn(3), &mut [(0, Ssn(2))].into_iter()),
            ForwardVerdict::Advanced
        );
        // TSN 4 was received: the ack point moves on locally; SSN 3 is now deliverable.
        assert_eq!(r.cum_ack(), Tsn(4));
        assert_eq!(r.recv().unwrap().data, b"d");
        assert!(r.recv().is_none());
        let s = r.take_sack(1500);
        assert_eq!(s.gap_offsets().collect::<Vec<_>>(), vec![(2, 2)]);
    }

    #[test]
    fn an_out_of_date_forward_tsn_changes_nothing_but_asks_for_a_sack() {
        let mut r = rx(10);
        r.on_data(Tsn(10), 0, Ssn(0), 1, BE, b"a");
        let _ = r.take_sack(1500);
        assert_eq!(
            r.on_forward_tsn(Tsn(9), &mut core::iter::empty()),
            ForwardVerdict::Stale
        );
        assert_eq!(
            r.on_forward_tsn(Tsn(10), &mut core::iter::empty()),
            ForwardVerdict::Stale
        );
        assert_eq!(r.cum_ack(), Tsn(10));
        assert!(r.sack_due_now());
    }

    #[test]
    fn a_forward_tsn_drops_skipped_partial_messages() {
        let mut r = rx(1);
        r.on_data(Tsn(2), 0, Ssn(0), 1, 0, b"middle");
        r.on_data(Tsn(3), 0, Ssn(0), 1, 0, b"more");
        r.on_data(Tsn(5), 1, Ssn(0), 1, flags::BEGIN, b"kept");
        let before = r.buffered();
        assert_eq!(
            r.on_forward_tsn(Tsn(2), &mut [(0, Ssn(0))].into_iter()),
            ForwardVerdict::Advanced
        );
        // TSN 3 continues the dropped message and goes too; stream 1's fragment stays.
        assert_eq!(r.cum_ack(), Tsn(3));
        assert_eq!(before - r.buffered(), 10 + 2 * ITEM_OVERHEAD);
        r.on_data(Tsn(4), 0, Ssn(1), 1, BE, b"next");
        r.on_data(Tsn(6), 1, Ssn(0), 1, flags::END, b"!");
        assert_eq!(r.recv().unwrap().data, b"next");
        assert_eq!(r.recv().unwrap().data, b"kept!");
    }

    #[test]
    fn complete_messages_waiting_below_a_skipped_ssn_are_delivered_in_order() {
        let mut r = rx(1);
        r.on_data(Tsn(2), 0, Ssn(1), 1, BE, b"one");
        r.on_data(Tsn(4), 0, Ssn(3), 1, BE, b"three");
        r.on_data(Tsn(5), 0, Ssn(4), 1, BE, b"four");
        assert!(r.recv().is_none());
        // TSNs 1 and 3 (SSNs 0 and 2) abandoned by the sender.
        r.on_forward_tsn(Tsn(3), &mut [(0, Ssn(2))].into_iter());
        let got: Vec<_> = std::iter::from_fn(|| r.recv()).map(|m| m.data).collect();
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"three".to_vec(), b"four".to_vec()]
        );
        assert_eq!(r.cum_ack(), Tsn(5));
    }

    #[test]
    fn a_forward_tsn_far_beyond_the_window_is_a_violation() {
        let mut r = Inbound::new(Tsn(1), 10, 4096, 1024);
        assert_eq!(
            r.on_forward_tsn(Tsn(1 + 5000), &mut core::iter::empty()),
            ForwardVerdict::Violation
        );
        assert_eq!(r.cum_ack(), Tsn(0));
        assert_eq!(
            r.on_forward_tsn(Tsn(4096), &mut core::iter::empty()),
            ForwardVerdict::Advanced
        );
    }

    #[test]
    fn forward_tsns_work_across_the_tsn_and_ssn_wraps() {
        let mut r = rx(u32::MAX - 1);
        r.on_data(Tsn(1), 2, Ssn(0), 1, BE, b"after");
        r.on_forward_tsn(Tsn(0), &mut [(2, Ssn(u16::MAX))].into_iter());
        assert_eq!(r.cum_ack(), Tsn(1));
        assert_eq!(r.recv().unwrap().data, b"after");
    }

    #[test]
    fn a_forward_tsn_listing_many_streams_delivers_each_in_order() {
        let mut r = rx(1);
        // TSNs 1 and 2 (stream 1 SSN 0, stream 2 SSN 0) are abandoned; SSN 1 and 2 of both
        // streams wait.
        r.on_data(Tsn(3), 2, Ssn(2), 1, BE, b"2c");
        r.on_data(Tsn(4), 1, Ssn(1), 1, BE, b"1b");
        r.on_data(Tsn(5), 2, Ssn(1), 1, BE, b"2b");
        r.on_data(Tsn(6), 1, Ssn(2), 1, BE, b"1c");
        let mut entries = vec![(2, Ssn(0)), (1, Ssn(0)), (2, Ssn(0))];
        // Entries for streams that do not exist or were never used are harmless.
        entries.extend((3..20_000u16).map(|s| (s, Ssn(s))));
        assert_eq!(
            r.on_forward_tsn(Tsn(2), &mut entries.into_iter()),
            ForwardVerdict::Advanced
        );
        assert_eq!(r.cum_ack(), Tsn(6));
        let got: Vec<_> = std::iter::from_fn(|| r.recv()).map(|m| m.data).collect();
        assert_eq!(
            got,
            vec![
                b"2b".to_vec(),
                b"2c".to_vec(),
                b"1b".to_vec(),
                b"1c".to_vec()
            ]
        );
    }

    const B: u8 = flags::BEGIN;
    const E: u8 = flags::END;

    /// Fragment `i` of a test message: ten bytes of value `i`.
    fn frag(i: u8) -> [u8; 10] {
        [i; 10]
    }

    /// The data of a message made of fragments `0..n` built with [`frag`].
    fn whole(n: u8) -> Vec<u8> {
        (0..n).flat_map(frag).collect()
    }

    fn drain(r: &mut Inbound) -> Vec<(u16, Vec<u8>)> {
        core::iter::from_fn(|| r.recv())
            .map(|m| (m.stream, m.data))
            .collect()
    }

    #[test]
    fn linux_numbered_fragments_make_the_whole_message_not_one_fragment_short() {
        // Linux: the first fragment carries the PPID, the second FSN 0, the third FSN 1.
        let mut r = rx(100);
        let p = 51; // PPID
        assert_eq!(
            r.on_idata(Tsn(100), 0, 0, p, B, &frag(0)),
            DataVerdict::Accepted
        );
        assert_eq!(
            r.on_idata(Tsn(101), 0, 0, 0, 0, &frag(1)),
            DataVerdict::Accepted
        );
        assert_eq!(r.peer_fsn(), PeerFsn::Linux);
        assert_eq!(
            r.on_idata(Tsn(102), 0, 0, 1, 0, &frag(2)),
            DataVerdict::Accepted
        );
        assert!(drain(&mut r).is_empty());
        assert_eq!(
            r.on_idata(Tsn(103), 0, 0, 2, E, &frag(3)),
            DataVerdict::Accepted
        );
        let m = r.recv().expect("message");
        assert_eq!((m.ppid, m.data), (Ppid(p), whole(4)));
        assert_eq!(r.idata_rejected(), 0);
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn a_missing_second_fragment_holds_the_message_while_the_numbering_is_unknown() {
        // B, then FSN 1 and 2 (E) with TSN 101 missing: complete under RFC 8260, one
        // fragment short under the Linux numbering. Nothing may be delivered yet.
        let mut r = rx(100);
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(102), 0, 0, 1, 0, &frag(1));
        r.on_idata(Tsn(103), 0, 0, 2, E, &frag(2));
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.peer_fsn(), PeerFsn::Unknown);
        // TSN 101 is the Linux FSN 0: the message has four fragments.
        r.on_idata(Tsn(101), 0, 0, 0, 0, &frag(9));
        assert_eq!(r.peer_fsn(), PeerFsn::Linux);
        let want: Vec<u8> = [frag(0), frag(9), frag(1), frag(2)].concat();
        assert_eq!(drain(&mut r), vec![(0, want)]);
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn a_tsn_of_another_stream_filling_the_hole_shows_the_rfc_numbering() {
        let mut r = rx(100);
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(102), 0, 0, 1, 0, &frag(1));
        r.on_idata(Tsn(103), 0, 0, 2, E, &frag(2));
        assert!(drain(&mut r).is_empty());
        // TSN 101 is a whole message on stream 1: no fragment can be missing.
        r.on_idata(Tsn(101), 1, 0, 9, B | E, &frag(5));
        assert_eq!(r.peer_fsn(), PeerFsn::Rfc8260);
        assert_eq!(drain(&mut r), vec![(1, frag(5).to_vec()), (0, whole(3))]);
        // From now on a non-first FSN 0 is a protocol violation, never dropped silently.
        r.on_idata(Tsn(104), 0, 1, 7, B, &frag(0));
        assert_eq!(
            r.on_idata(Tsn(105), 0, 1, 0, 0, &frag(1)),
            DataVerdict::FsnViolation
        );
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn a_gap_in_the_fsns_never_delivers_a_short_message() {
        let mut r = rx(100);
        // Consecutive TSNs for B and FSN 1 show the RFC numbering.
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(101), 0, 0, 1, 0, &frag(1));
        assert_eq!(r.peer_fsn(), PeerFsn::Rfc8260);
        // FSN 2 lost, FSN 3 ends the message.
        r.on_idata(Tsn(103), 0, 0, 3, E, &frag(3));
        assert!(drain(&mut r).is_empty());
        r.on_idata(Tsn(102), 0, 0, 2, 0, &frag(2));
        assert_eq!(drain(&mut r), vec![(0, whole(4))]);
        // The first fragment lost: the rest never makes a message on its own.
        r.on_idata(Tsn(105), 0, 1, 1, 0, &frag(1));
        r.on_idata(Tsn(106), 0, 1, 2, E, &frag(2));
        assert!(drain(&mut r).is_empty());
        r.on_idata(Tsn(104), 0, 1, 7, B, &frag(0));
        assert_eq!(drain(&mut r), vec![(0, whole(3))]);
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn impossible_fsns_are_protocol_violations() {
        let mut r = rx(100);
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(101), 0, 0, 1, 0, &frag(1));
        // The same FSN again under a new TSN.
        assert_eq!(
            r.on_idata(Tsn(102), 0, 0, 1, 0, &frag(1)),
            DataVerdict::FsnViolation
        );
        // An FSN further from FSN 1 than its TSN is from TSN 101.
        assert_eq!(
            r.on_idata(Tsn(103), 0, 0, 5, 0, &frag(5)),
            DataVerdict::FsnViolation
        );
        // A fragment beyond the last one.
        r.on_idata(Tsn(104), 0, 0, 2, E, &frag(2));
        assert_eq!(drain(&mut r), vec![(0, whole(3))]);
        r.on_idata(Tsn(110), 0, 2, 7, B, &frag(0));
        r.on_idata(Tsn(112), 0, 2, 2, E, &frag(2));
        assert_eq!(
            r.on_idata(Tsn(113), 0, 2, 3, 0, &frag(3)),
            DataVerdict::FsnViolation
        );
        // A second first fragment.
        assert_eq!(
            r.on_idata(Tsn(111), 0, 2, 7, B, &frag(0)),
            DataVerdict::FsnViolation
        );
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn interleaved_linux_numbered_streams_with_loss_and_reordering() {
        let mut r = rx(1000);
        // Stream 1 MID 0 and stream 2 MID 0, three fragments each, interleaved:
        // TSN 1000 s1 B, 1001 s2 B, 1002 s1 FSN0, 1003 s2 FSN0, 1004 s1 FSN1 E,
        // 1005 s2 FSN1 E. TSNs 1002 and 1003 arrive last.
        r.on_idata(Tsn(1000), 1, 0, 7, B, &frag(0));
        r.on_idata(Tsn(1001), 2, 0, 7, B, &frag(0));
        r.on_idata(Tsn(1004), 1, 0, 1, E, &frag(2));
        r.on_idata(Tsn(1005), 2, 0, 1, E, &frag(2));
        assert!(drain(&mut r).is_empty(), "ambiguous: held");
        r.on_idata(Tsn(1003), 2, 0, 0, 0, &frag(1));
        assert_eq!(r.peer_fsn(), PeerFsn::Linux);
        assert_eq!(drain(&mut r), vec![(2, whole(3))]);
        r.on_idata(Tsn(1002), 1, 0, 0, 0, &frag(1));
        assert_eq!(drain(&mut r), vec![(1, whole(3))]);
        // Later messages with the numbering known: MID 1 of stream 1 (four fragments)
        // with its FSN 0 lost and retransmitted last, and MID 1 of stream 2 in between.
        r.on_idata(Tsn(1006), 1, 1, 7, B, &frag(0));
        r.on_idata(Tsn(1008), 2, 1, 7, B | E, &frag(8));
        r.on_idata(Tsn(1009), 1, 1, 1, 0, &frag(2));
        r.on_idata(Tsn(1010), 1, 1, 2, E, &frag(3));
        assert_eq!(drain(&mut r), vec![(2, frag(8).to_vec())]);
        r.on_idata(Tsn(1007), 1, 1, 0, 0, &frag(1));
        assert_eq!(drain(&mut r), vec![(1, whole(4))]);
        assert_eq!(r.idata_rejected(), 0);
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn two_fragment_messages_show_either_numbering_at_once() {
        let mut r = rx(100);
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(101), 0, 0, 0, E, &frag(1));
        assert_eq!(r.peer_fsn(), PeerFsn::Linux);
        assert_eq!(drain(&mut r), vec![(0, whole(2))]);
        let mut r = rx(100);
        r.on_idata(Tsn(101), 0, 0, 1, E, &frag(1));
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        assert_eq!(r.peer_fsn(), PeerFsn::Rfc8260);
        assert_eq!(drain(&mut r), vec![(0, whole(2))]);
    }

    #[test]
    fn tsns_an_iforward_tsn_skips_count_for_the_numbering() {
        let mut r = rx(100);
        r.on_idata(Tsn(100), 0, 0, 7, B, &frag(0));
        r.on_idata(Tsn(102), 0, 0, 1, 0, &frag(1));
        r.on_idata(Tsn(103), 0, 0, 2, E, &frag(2));
        assert!(drain(&mut r).is_empty());
        // TSN 101 was a message of stream 1, abandoned: not a fragment of stream 0's.
        let v = r.on_iforward_tsn(Tsn(101), &mut [(1u16, false, 0u32)].into_iter());
        assert_eq!(v, ForwardVerdict::Advanced);
        assert_eq!(r.peer_fsn(), PeerFsn::Rfc8260);
        assert_eq!(drain(&mut r), vec![(0, whole(3))]);
        assert_eq!(r.buffered, 0);
    }
}
