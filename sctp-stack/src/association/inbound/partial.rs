//! Partial delivery (RFC 6458 §8.1.21 `SCTP_PARTIAL_DELIVERY_POINT`, the usrsctp semantics):
//! a message whose reassembled prefix reaches the partial delivery point is handed to the
//! application in pieces, in order, each a [`Message`] whose [`Message::piece`] says which
//! message it belongs to, at which offset, and whether it is the last one. So a message
//! larger than the receive window can be received: every piece leaves the reassembly
//! buffer, and once the application reads it the window opens again.
//!
//! Off unless [`AssociationConfig::partial_delivery_point`](crate::AssociationConfig) is
//! set: then nothing here runs and every message is delivered whole.
//!
//! - **I-DATA** (RFC 8260): any number of messages may be in partial delivery at once
//!   (their fragments interleave on the wire, RFC 8260 §1); an ordered message starts once
//!   it is the next in MID order on its stream, an unordered one at once. Messages of other
//!   streams are delivered as they complete, in between the pieces.
//! - **DATA** (RFC 9260): fragments of a message have consecutive TSNs and only the message
//!   at the front of the reassembly queue (its first fragment the lowest TSN held) can be
//!   in partial delivery. While it is, every other message that completes, on any stream,
//!   is held back and delivered after its last piece (or its abort), as the socket API's
//!   partial delivery does (RFC 6458 §8.1.21): the head-of-line blocking that motivated
//!   I-DATA (RFC 8260 §1).
//!
//! A piece is delivered when the contiguous reassembled bytes after the last piece reach
//! the partial delivery point, or the last fragment is there. A (I-)FORWARD TSN that skips
//! a message in partial delivery drops what is held of it and reports
//! [`Event::PartialDeliveryAborted`](crate::Event) (RFC 6458 `SCTP_PARTIAL_DELIVERY_ABORTED`):
//! no piece with `last` follows for that message.

use super::{DataVerdict, ITEM_OVERHEAD, Inbound, Message, Ssn, flags};
use crate::wire::Ppid;

/// Which piece of a message delivered in pieces (partial delivery) a [`Message`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Piece {
    /// Identifies the message: the same in all its pieces, different for every message
    /// delivered in pieces on the association.
    pub message: u64,
    /// The offset of this piece's first byte in the message.
    pub offset: u64,
    /// This is the message's last piece (end of record).
    pub last: bool,
}

/// The DATA message in partial delivery.
#[derive(Debug)]
pub(super) struct DataPd {
    stream: u16,
    ssn: Ssn,
    unordered: bool,
    ppid: u32,
    /// Reassembly key (unwrapped TSN) of the first fragment (B bit).
    first_key: u64,
    /// Reassembly key (unwrapped TSN) of the next fragment to deliver.
    next_key: u64,
    /// The message's identifier in [`Piece::message`].
    id: u64,
    /// Bytes delivered so far.
    offset: u64,
}

/// Most partial-delivery aborts remembered until the association turns them into events
/// (after each chunk); more are counted in `pd_aborts_dropped`.
const MAX_ABORTS: usize = 1024;

impl Inbound {
    /// Sets the partial delivery point (`None`: messages are delivered whole only).
    pub(crate) fn set_partial_delivery_point(&mut self, point: Option<usize>) {
        self.pd_point = point.map(|p| p.max(1));
    }

    /// Takes the partial deliveries aborted since the last call: (stream, message id).
    pub(crate) fn take_pd_aborted(&mut self) -> Vec<(u16, u64)> {
        core::mem::take(&mut self.pd_aborted)
    }

    fn new_pd_id(&mut self) -> u64 {
        self.next_pd_id = self.next_pd_id.wrapping_add(1);
        self.next_pd_id
    }

    fn pd_abort(&mut self, stream: u16, id: u64) {
        if self.pd_aborted.len() < MAX_ABORTS {
            self.pd_aborted.push((stream, id));
        } else {
            self.pd_aborts_dropped = self.pd_aborts_dropped.saturating_add(1);
        }
    }

    // ------------------------------------------------------------------ I-DATA

    /// After a fragment of the I-DATA message `key` was stored: keeps track of the
    /// contiguous bytes after the last piece and delivers a piece when due. Returns true if
    /// partial delivery took the message over (the caller then must not look for a whole
    /// message); false leaves a complete message to the whole-message path.
    pub(super) fn ipd_after_insert(&mut self, key: (u16, bool, u32)) -> bool {
        let Some(point) = self.pd_point else {
            return false;
        };
        let next_mid = self.next_mid.get(&key.0).copied().unwrap_or(0);
        let Some(part) = self.ireasm.get_mut(&key) else {
            return false;
        };
        while let Some(f) = part.frags.get(&part.contig_end) {
            part.contig_bytes += f.len();
            part.contig_end = part.contig_end.wrapping_add(1);
        }
        let reaches_end = part
            .last
            .is_some_and(|l| part.contig_end == l.wrapping_add(1));
        if part.pd.is_none() {
            let deliverable = key.1 || next_mid == key.2;
            if reaches_end || part.contig_bytes < point || !deliverable {
                return false;
            }
        } else if part.contig_bytes < point && !reaches_end {
            return true;
        }
        self.ipd_deliver(key);
        true
    }

    /// Delivers the contiguous fragments after the last piece of `key` as one piece.
    fn ipd_deliver(&mut self, key: (u16, bool, u32)) {
        let started = self.ireasm.get(&key).and_then(|p| p.pd);
        let id = match started {
            Some(id) => id,
            None => self.new_pd_id(),
        };
        let Some(part) = self.ireasm.get_mut(&key) else {
            return;
        };
        part.pd = Some(id);
        let mut data = Vec::with_capacity(part.contig_bytes);
        let mut pieces = 0usize;
        while part.next_fsn != part.contig_end {
            if let Some(f) = part.frags.remove(&part.next_fsn) {
                data.extend_from_slice(&f.data);
                pieces += 1;
            }
            part.next_fsn = part.next_fsn.wrapping_add(1);
        }
        if pieces == 0 {
            return;
        }
        part.bytes = part.bytes.saturating_sub(data.len());
        part.contig_bytes = 0;
        let last = part
            .last
            .is_some_and(|l| part.next_fsn == l.wrapping_add(1));
        let piece = Piece {
            message: id,
            offset: part.delivered,
            last,
        };
        part.delivered = part.delivered.saturating_add(data.len() as u64);
        let ppid = part.ppid;
        // The fragments are charged once, as one piece, from now on; a message in partial
        // delivery is charged one more item for its entry until it ends, so the number of
        // them is bounded by the window like everything else.
        self.buffered = self.buffered.saturating_sub((pieces - 1) * ITEM_OVERHEAD);
        if started.is_none() {
            self.buffered += ITEM_OVERHEAD;
        }
        if last {
            self.buffered = self.buffered.saturating_sub(ITEM_OVERHEAD);
        }
        self.ready.push_back(Message {
            stream: key.0,
            ppid: Ppid(ppid),
            unordered: key.1,
            data,
            piece: Some(piece),
        });
        if last {
            self.ireasm.remove(&key);
            if !key.1 {
                self.imid_done(key.0, key.2);
            }
        }
    }

    /// The ordered I-DATA message `mid` of `stream` was delivered completely in pieces:
    /// the stream moves on to the next MID, delivering what waited for it.
    fn imid_done(&mut self, stream: u16, mid: u32) {
        let mut n = mid.wrapping_add(1);
        while let Some(m) = self.pending_mid.remove(&(stream, n)) {
            self.ready.push_back(m);
            n = n.wrapping_add(1);
        }
        self.next_mid.insert(stream, n);
        self.ipd_kick(stream);
    }

    /// The next MID of the ordered `stream` changed: the message now in line may start
    /// partial delivery if enough of it is there.
    pub(super) fn ipd_kick(&mut self, stream: u16) {
        let Some(point) = self.pd_point else {
            return;
        };
        let next = self.next_mid.get(&stream).copied().unwrap_or(0);
        let key = (stream, false, next);
        if self
            .ireasm
            .get(&key)
            .is_some_and(|p| p.pd.is_none() && p.contig_bytes >= point)
        {
            self.ipd_deliver(key);
        }
    }

    /// An I-FORWARD TSN dropped the partial message `key` (RFC 8260 §2.3.2): if part of it
    /// was delivered, the application learns that the rest never comes.
    pub(super) fn ipd_dropped(&mut self, stream: u16, pd: Option<u64>) {
        if let Some(id) = pd {
            self.buffered = self.buffered.saturating_sub(ITEM_OVERHEAD);
            self.pd_abort(stream, id);
        }
    }

    // ------------------------------------------------------------------ DATA

    /// Whether the DATA chunk stored at `key` belongs to the message in partial delivery.
    fn dpd_owns(&self, key: u64) -> bool {
        let (Some(d), Some(c)) = (self.dpd.as_ref(), self.reasm.get(&key)) else {
            return false;
        };
        c.stream == d.stream
            && c.ssn == d.ssn
            && (c.flags & flags::UNORDERED != 0) == d.unordered
            && (c.flags & flags::BEGIN == 0 || key == d.first_key)
    }

    /// After a DATA fragment was stored at `key`: continues the partial delivery it belongs
    /// to. Returns `Some` when it belongs to the message in partial delivery (the caller
    /// then must not look for a whole message).
    pub(super) fn dpd_after_insert(&mut self, key: u64) -> Option<DataVerdict> {
        if self.pd_point.is_none() || !self.dpd_owns(key) {
            return None;
        }
        self.dpd_progress();
        Some(DataVerdict::Accepted)
    }

    /// Delivers the next piece of the DATA message in partial delivery when the contiguous
    /// bytes after the last piece reach the partial delivery point or its last fragment.
    fn dpd_progress(&mut self) {
        let Some(point) = self.pd_point else {
            return;
        };
        let Some(start) = self.dpd.as_ref().map(|d| d.next_key) else {
            return;
        };
        let mut k = start;
        let mut bytes = 0usize;
        let mut end = false;
        while self.dpd_owns(k) {
            let Some(c) = self.reasm.get(&k) else { break };
            bytes += c.data.len();
            k += 1;
            if c.flags & flags::END != 0 {
                end = true;
                break;
            }
        }
        if k == start || (bytes < point && !end) {
            return;
        }
        let mut data = Vec::with_capacity(bytes);
        for key in start..k {
            if let Some(c) = self.reasm.remove(&key) {
                data.extend_from_slice(&c.data);
            }
        }
        let pieces = (k - start) as usize;
        self.buffered = self
            .buffered
            .saturating_sub(pieces.saturating_sub(1) * ITEM_OVERHEAD);
        let Some(d) = self.dpd.as_mut() else {
            return;
        };
        d.next_key = k;
        let piece = Piece {
            message: d.id,
            offset: d.offset,
            last: end,
        };
        d.offset = d.offset.saturating_add(data.len() as u64);
        let msg = Message {
            stream: d.stream,
            ppid: Ppid(d.ppid),
            unordered: d.unordered,
            data,
            piece: Some(piece),
        };
        self.ready.push_back(msg);
        if end && let Some(d) = self.dpd.take() {
            self.dpd_finished(d.stream, d.ssn, d.unordered);
        }
    }

    /// The DATA partial delivery ended (last piece or abort): the messages held back are
    /// delivered, an ordered stream moves on, and the next message may start.
    fn dpd_finished(&mut self, stream: u16, ssn: Ssn, unordered: bool) {
        self.ready.append(&mut self.pd_held);
        if !unordered {
            let mut n = ssn.next();
            while let Some(m) = self.pending.remove(&(stream, n.get())) {
                self.ready.push_back(m);
                n = n.next();
            }
            self.next_ssn.insert(stream, n);
        }
        self.dpd_try_start();
    }

    /// Starts partial delivery of the DATA message at the front of the reassembly queue if
    /// it is next in line on its stream and its contiguous first fragments reach the
    /// partial delivery point. The look costs at most the fragments of one point.
    pub(super) fn dpd_try_start(&mut self) {
        let Some(point) = self.pd_point else {
            return;
        };
        if self.dpd.is_some() {
            return;
        }
        let Some((&first, c)) = self.reasm.iter().next() else {
            return;
        };
        if c.flags & flags::BEGIN == 0 {
            return;
        }
        let (stream, ssn, ppid) = (c.stream, c.ssn, c.ppid);
        let unordered = c.flags & flags::UNORDERED != 0;
        if !unordered && self.next_ssn.get(&stream).copied().unwrap_or_default() != ssn {
            return;
        }
        let mut k = first;
        let mut bytes = 0usize;
        while let Some(c) = self.reasm.get(&k) {
            let same = c.stream == stream
                && c.ssn == ssn
                && (c.flags & flags::UNORDERED != 0) == unordered
                && (k == first || c.flags & flags::BEGIN == 0);
            if !same || c.flags & flags::END != 0 {
                // A complete message is delivered whole.
                return;
            }
            bytes += c.data.len();
            if bytes >= point {
                break;
            }
            k += 1;
        }
        if bytes < point {
            return;
        }
        let id = self.new_pd_id();
        self.dpd = Some(DataPd {
            stream,
            ssn,
            unordered,
            ppid,
            first_key: first,
            next_key: first,
            id,
            offset: 0,
        });
        self.dpd_progress();
    }

    /// A complete DATA message for the application: held back while another message is
    /// in partial delivery (see the module docs).
    pub(super) fn push_data_ready(&mut self, msg: Message) {
        if self.dpd.is_some() {
            self.pd_held.push_back(msg);
        } else {
            self.ready.push_back(msg);
        }
    }

    /// A FORWARD TSN moved the cumulative TSN ack point to `limit_key`: if it skipped the
    /// rest of the message in partial delivery, what is held of it goes and the
    /// application is told (RFC 3758 §3.6 with RFC 6458 `SCTP_PARTIAL_DELIVERY_ABORTED`).
    pub(super) fn dpd_on_forward(&mut self, limit_key: u64) {
        let Some(next) = self.dpd.as_ref().map(|d| d.next_key) else {
            return;
        };
        if next > limit_key {
            return;
        }
        let mut k = next;
        while self.dpd_owns(k) {
            if let Some(c) = self.reasm.remove(&k) {
                self.buffered = self.buffered.saturating_sub(c.data.len() + ITEM_OVERHEAD);
            }
            k += 1;
        }
        if let Some(d) = self.dpd.take() {
            self.pd_abort(d.stream, d.id);
            // The stream's SSN moves on through the FORWARD TSN's stream entries; only the
            // held messages are released here.
            self.ready.append(&mut self.pd_held);
        }
    }

    /// Messages held back behind a DATA partial delivery (the association is closing).
    pub(super) fn take_held(&mut self) -> std::collections::VecDeque<Message> {
        core::mem::take(&mut self.pd_held)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DataVerdict, ForwardVerdict, Inbound, Ssn};
    use crate::association::outbound::flags;
    use crate::serial::Tsn;

    const B: u8 = flags::BEGIN;
    const E: u8 = flags::END;

    fn rx() -> Inbound {
        let mut r = Inbound::new(Tsn(100), 10, 64 * 1024, 32 * 1024);
        r.set_partial_delivery_point(Some(2000));
        r
    }

    /// (stream, bytes, (message, offset, last) of a piece).
    type Got = (u16, usize, Option<(u64, u64, bool)>);

    fn drain(r: &mut Inbound) -> Vec<Got> {
        let mut out = Vec::new();
        while let Some(m) = r.recv() {
            out.push((
                m.stream,
                m.data.len(),
                m.piece.map(|p| (p.message, p.offset, p.last)),
            ));
        }
        out
    }

    #[test]
    fn a_data_message_in_partial_delivery_holds_back_other_messages_until_its_last_piece() {
        let mut r = rx();
        // Message on stream 0, SSN 0: TSN 100 (B), 101, 102, ..., 104 (E).
        assert_eq!(
            r.on_data(Tsn(100), 0, Ssn(0), 0, B, &[1; 1000]),
            DataVerdict::Accepted
        );
        assert!(drain(&mut r).is_empty(), "below the point");
        r.on_data(Tsn(101), 0, Ssn(0), 0, 0, &[1; 1000]);
        assert_eq!(drain(&mut r), vec![(0, 2000, Some((1, 0, false)))]);
        // A whole message on stream 1 (TSN 105) arrives before the rest: held back.
        r.on_data(Tsn(105), 1, Ssn(0), 0, B | E, &[2; 10]);
        assert!(drain(&mut r).is_empty());
        r.on_data(Tsn(102), 0, Ssn(0), 0, 0, &[1; 1000]);
        r.on_data(Tsn(103), 0, Ssn(0), 0, 0, &[1; 1000]);
        assert_eq!(drain(&mut r), vec![(0, 2000, Some((1, 2000, false)))]);
        r.on_data(Tsn(104), 0, Ssn(0), 0, E, &[1; 5]);
        assert_eq!(
            drain(&mut r),
            vec![(0, 5, Some((1, 4000, true))), (1, 10, None)]
        );
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn a_forward_tsn_skipping_a_data_message_in_partial_delivery_aborts_it() {
        let mut r = rx();
        r.on_data(Tsn(100), 3, Ssn(0), 0, B, &[1; 1000]);
        r.on_data(Tsn(101), 3, Ssn(0), 0, 0, &[1; 1000]);
        r.on_data(Tsn(103), 3, Ssn(0), 0, 0, &[1; 1000]);
        r.on_data(Tsn(105), 4, Ssn(0), 0, B | E, &[2; 10]);
        assert_eq!(drain(&mut r), vec![(3, 2000, Some((1, 0, false)))]);
        let v = r.on_forward_tsn(Tsn(104), &mut [(3u16, Ssn(0))].into_iter());
        assert_eq!(v, ForwardVerdict::Advanced);
        assert_eq!(r.take_pd_aborted(), vec![(3, 1)]);
        assert_eq!(drain(&mut r), vec![(4, 10, None)]);
        // The stream goes on with the next SSN.
        r.on_data(Tsn(106), 3, Ssn(1), 0, B | E, &[3; 10]);
        assert_eq!(drain(&mut r), vec![(3, 10, None)]);
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn an_idata_fragment_already_delivered_in_a_piece_is_not_taken_again() {
        let mut r = rx();
        r.on_idata(Tsn(100), 0, 0, 0, B, &[1; 1500]);
        r.on_idata(Tsn(101), 0, 0, 1, 0, &[1; 1500]);
        assert_eq!(drain(&mut r), vec![(0, 3000, Some((1, 0, false)))]);
        // A retransmission of FSN 1 under a new TSN contradicts what was delivered.
        // (RFC 8260 §2.1 retransmits with the same TSN): a protocol violation.
        let before = r.idata_rejected();
        assert_eq!(
            r.on_idata(Tsn(102), 0, 0, 1, 0, &[9; 1500]),
            DataVerdict::FsnViolation
        );
        assert_eq!(r.idata_rejected(), before + 1);
        r.on_idata(Tsn(103), 0, 0, 2, E, &[1; 10]);
        assert_eq!(drain(&mut r), vec![(0, 10, Some((1, 3000, true)))]);
        // The next MID of the stream is delivered whole.
        r.on_idata(Tsn(104), 0, 1, 0, B | E, &[4; 10]);
        assert_eq!(drain(&mut r), vec![(0, 10, None)]);
    }

    #[test]
    fn an_iforward_tsn_dropping_an_idata_message_in_partial_delivery_aborts_it() {
        let mut r = rx();
        r.on_idata(Tsn(100), 2, 0, 0, B, &[1; 1500]);
        r.on_idata(Tsn(101), 2, 0, 1, 0, &[1; 1500]);
        r.on_idata(Tsn(103), 2, 0, 3, 0, &[1; 1500]);
        assert_eq!(drain(&mut r), vec![(2, 3000, Some((1, 0, false)))]);
        let v = r.on_iforward_tsn(Tsn(104), &mut [(2u16, false, 0u32)].into_iter());
        assert_eq!(v, ForwardVerdict::Advanced);
        assert_eq!(r.take_pd_aborted(), vec![(2, 1)]);
        assert_eq!(r.buffered, 0);
        r.on_idata(Tsn(105), 2, 1, 0, B | E, &[4; 10]);
        assert_eq!(drain(&mut r), vec![(2, 10, None)]);
    }

    #[test]
    fn no_piece_is_delivered_while_a_fragment_may_be_missing_under_the_other_numbering() {
        let mut r = rx();
        // First fragment and FSN 1 with TSN 101 missing: contiguous under RFC 8260 (past
        // the point), but under the Linux numbering TSN 101 is the second fragment.
        r.on_idata(Tsn(100), 0, 0, 9, B, &[1; 1500]);
        r.on_idata(Tsn(102), 0, 0, 1, 0, &[3; 1500]);
        assert!(drain(&mut r).is_empty());
        // TSN 101 is FSN 0: Linux. The three fragments go out as one piece, in order.
        r.on_idata(Tsn(101), 0, 0, 0, 0, &[2; 1500]);
        let m = r.recv().expect("a piece");
        assert_eq!(m.data, [[1u8; 1500], [2; 1500], [3; 1500]].concat());
        assert_eq!(m.piece.map(|p| (p.offset, p.last)), Some((0, false)));
        r.on_idata(Tsn(103), 0, 0, 2, E, &[4; 10]);
        assert_eq!(drain(&mut r), vec![(0, 10, Some((1, 4500, true)))]);
        assert_eq!(r.buffered, 0);
    }
}
