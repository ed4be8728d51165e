//! Stream reconfiguration (RE-CONFIG, RFC 6525) of one association.
//!
//! Call contract:
//! - RE-CONFIG is in use when both sides list it among their Supported Extensions (RFC 6525
//!   §3.1 / RFC 5061 §4.2.7) and [`AssociationConfig::reconf`](crate::AssociationConfig)
//!   is on. Without it the user calls fail with [`ReconfError::NotNegotiated`] and a
//!   RE-CONFIG chunk from the peer is an unrecognized chunk (its action bits: skip).
//! - The user queues requests (`reset_streams`, `request_incoming_reset`,
//!   `reset_association`, `add_streams`); at most one RE-CONFIG request chunk of ours is
//!   outstanding (§5.1.1). It is retransmitted when the `Reconfig` timer expires, with the
//!   RTO backed off, and every expiry counts against Association.Max.Retrans (§5.1.1). An
//!   answer "In progress" keeps the request outstanding; it is sent again at the next
//!   expiry without counting an error (§5.1.2).
//! - An outgoing stream reset holds the streams at once: messages sent to them afterwards
//!   wait in their stream queue (bounded by the send buffer; `send` answers
//!   [`SendError::ResetPending`](crate::SendError) when it is full, or `WouldBlock` for a
//!   reset the peer asked for) while the messages sent before go out; then the request goes with the Sender's Last Assigned TSN (§5.1.2).
//!   The peer's answer releases the hold (SSNs restart at 0 if it was performed). An
//!   SSN/TSN reset holds every stream and waits until nothing is outstanding (§5.1.4).
//! - The peer's requests are processed in request sequence number order (§5.2.1): the
//!   expected number is processed and answered, the two before it are answered with the
//!   stored result, anything else with "Error - Bad Sequence Number". A reset of our
//!   incoming streams whose Sender's Last Assigned TSN is not yet cumulatively received is
//!   deferred (§5.2.2): answered "In progress", data of those streams above that TSN is held
//!   back (bounded; dropped unacknowledged beyond the bound, so the peer sends it again), and
//!   the reset is performed (and "Success - Performed" sent) once the cumulative TSN
//!   reaches it.
//! - Results reach the user as [`Event::StreamReset`], [`Event::AssociationReset`] and
//!   [`Event::StreamChange`].

use std::collections::VecDeque;

use super::timer::{PathIdx, Timer};
use super::{Association, Ctx, Event};
use crate::config::AssociationConfig;
use crate::serial::{ReconfigSeq, Tsn};
use crate::time::Timestamp;
use crate::wire::{
    ChunkType, FixedList, GapAckBlock, PacketBuilder, Param, RawChunk, ReConfig, ReconfigResult,
    Sack, TlvList,
};

/// Most user requests waiting behind the outstanding one.
const MAX_QUEUED_REQUESTS: usize = 8;
/// Most responses waiting to be sent.
const MAX_PENDING_RESPONSES: usize = 8;
/// Most streams named in one reset request of ours (the parameter must fit a packet).
pub(crate) const MAX_RESET_STREAMS: usize = 256;
/// Most request parameters of one received RE-CONFIG chunk processed (RFC 6525 §3.1
/// allows two).
const MAX_PEER_PARAMS: usize = 4;
/// Most DATA chunks held back during a deferred reset, and their bytes.
const MAX_HELD_CHUNKS: usize = 256;
const MAX_HELD_BYTES: usize = 256 * 1024;

/// Which side's streams a reset concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamDirection {
    /// Streams this side receives on (the peer's outgoing streams).
    Incoming,
    /// Streams this side sends on.
    Outgoing,
}

/// How a reconfiguration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconfOutcome {
    /// Performed (or nothing was to do).
    Performed,
    /// The peer refused it ("Denied", RFC 6525 §4.4).
    Denied,
    /// The peer answered with an error result ("Error - Wrong SSN", "Error - Request
    /// already in progress", "Error - Bad Sequence Number" or an unknown result).
    Failed(ReconfigResult),
}

impl ReconfOutcome {
    fn from_result(r: ReconfigResult) -> ReconfOutcome {
        match r {
            ReconfigResult::SUCCESS_PERFORMED | ReconfigResult::SUCCESS_NOTHING_TO_DO => {
                ReconfOutcome::Performed
            }
            ReconfigResult::DENIED => ReconfOutcome::Denied,
            other => ReconfOutcome::Failed(other),
        }
    }
}

/// Why a reconfiguration request was refused locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconfError {
    /// RE-CONFIG is not in use on this association (not offered by one side).
    NotNegotiated,
    /// The association is not established.
    NotEstablished,
    /// A stream number is not below the negotiated number of streams.
    InvalidStream,
    /// More streams than fit one request (256).
    TooManyStreams,
    /// The number of streams to add is 0 or would exceed 65535 or the configured maximum.
    InvalidCount,
    /// Too many requests are waiting.
    QueueFull,
}

impl core::fmt::Display for ReconfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ReconfError::NotNegotiated => "RE-CONFIG is not in use on this association",
            ReconfError::NotEstablished => "the association is not established",
            ReconfError::InvalidStream => "stream number not negotiated",
            ReconfError::TooManyStreams => "too many streams in one reset request",
            ReconfError::InvalidCount => "invalid number of streams to add",
            ReconfError::QueueFull => "too many reconfiguration requests waiting",
        })
    }
}

impl std::error::Error for ReconfError {}

/// One request of ours.
#[derive(Debug, Clone)]
enum Request {
    /// Outgoing SSN Reset (§4.1); `barrier` names the stream hold in the sender (its id);
    /// `response_seq` is the peer's Incoming SSN Reset Request it answers (§5.2.3).
    OutgoingReset {
        streams: Vec<u16>,
        barrier: u64,
        response_seq: Option<ReconfigSeq>,
    },
    /// Incoming SSN Reset (§4.2).
    IncomingReset { streams: Vec<u16> },
    /// SSN/TSN Reset (§4.3); every stream is held (hold id `barrier`).
    AssocReset { barrier: u64 },
    /// Add Outgoing Streams (§4.5).
    AddOutgoing(u16),
    /// Add Incoming Streams (§4.6).
    AddIncoming(u16),
}

/// The request chunk outstanding: up to two requests (RFC 6525 §3.1 combinations).
#[derive(Debug)]
struct InFlight {
    reqs: Vec<(ReconfigSeq, Request)>,
    /// Sender's Last Assigned TSN of an Outgoing SSN Reset, fixed at the first transmission.
    last_tsn: Tsn,
    path: PathIdx,
    /// The peer answered "In progress": the next timer expiry resends without counting an
    /// error.
    in_progress: bool,
}

/// A reset of our incoming streams waiting for the cumulative TSN (RFC 6525 §5.2.2).
#[derive(Debug)]
struct Deferred {
    seq: ReconfigSeq,
    last_tsn: Tsn,
    streams: Vec<u16>,
}

/// A response to send.
#[derive(Debug, Clone, Copy)]
struct Response {
    seq: ReconfigSeq,
    result: ReconfigResult,
    next_tsns: Option<(Tsn, Tsn)>,
}

/// RE-CONFIG state of an association that negotiated it.
#[derive(Debug)]
pub(crate) struct ReconfState {
    /// Our next request sequence number (starts at our Initial TSN, §5.1.1).
    next_seq: ReconfigSeq,
    queue: VecDeque<Request>,
    in_flight: Option<InFlight>,
    /// The outstanding chunk waits for (re)transmission.
    send_due: bool,
    /// The peer's next request sequence number (its Initial TSN at first, §5.2.1).
    peer_next: ReconfigSeq,
    /// Results of the peer's last two requests, for retransmissions (§5.2.1).
    stored: [Option<Response>; 2],
    responses_due: VecDeque<Response>,
    deferred: Option<Deferred>,
    /// Raw DATA/I-DATA chunks of deferred streams above the Sender's Last Assigned TSN.
    held: Vec<Vec<u8>>,
    held_bytes: usize,
    pub(crate) stats: ReconfStats,
}

/// Counters of stream reconfiguration.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReconfStats {
    pub(crate) outgoing_resets: u64,
    pub(crate) incoming_resets: u64,
    pub(crate) association_resets: u64,
    pub(crate) requests_refused_by_peer: u64,
    pub(crate) peer_requests_refused: u64,
    pub(crate) held_dropped: u64,
}

impl ReconfState {
    pub(crate) fn new(local_initial_tsn: u32, peer_initial_tsn: u32) -> ReconfState {
        ReconfState {
            next_seq: ReconfigSeq(local_initial_tsn),
            queue: VecDeque::new(),
            in_flight: None,
            send_due: false,
            peer_next: ReconfigSeq(peer_initial_tsn),
            stored: [None, None],
            responses_due: VecDeque::new(),
            deferred: None,
            held: Vec::new(),
            held_bytes: 0,
            stats: ReconfStats::default(),
        }
    }

    fn store(&mut self, r: Response) {
        self.stored[1] = self.stored[0];
        self.stored[0] = Some(r);
    }

    fn stored(&self, seq: ReconfigSeq) -> Option<Response> {
        self.stored.iter().flatten().find(|r| r.seq == seq).copied()
    }

    fn update_stored(&mut self, seq: ReconfigSeq, result: ReconfigResult) {
        for r in self.stored.iter_mut().flatten() {
            if r.seq == seq {
                r.result = result;
            }
        }
    }

    fn respond(&mut self, r: Response) {
        if self.responses_due.len() < MAX_PENDING_RESPONSES {
            self.responses_due.push_back(r);
        }
    }

    fn outgoing_reset_pending(&self) -> bool {
        let q = self.queue.iter().any(|r| {
            matches!(
                r,
                Request::OutgoingReset { .. } | Request::AssocReset { .. }
            )
        });
        let f = self.in_flight.as_ref().is_some_and(|f| {
            f.reqs.iter().any(|(_, r)| {
                matches!(
                    r,
                    Request::OutgoingReset { .. } | Request::AssocReset { .. }
                )
            })
        });
        q || f
    }

    /// Whether data of a deferred reset is held back (checked per DATA chunk).
    #[inline]
    pub(crate) fn deferring(&self) -> bool {
        self.deferred.is_some()
    }
}

fn valid_streams(streams: &[u16], limit: u16) -> bool {
    streams.iter().all(|&s| s < limit)
}

fn stream_limit(config: &AssociationConfig) -> u32 {
    u32::from(config.reconf_max_streams)
}

impl Association {
    fn reconf_ready(&self) -> Result<(), ReconfError> {
        let Some(r) = self.reconf.as_deref() else {
            return Err(ReconfError::NotNegotiated);
        };
        if !self.can_send_data() || self.data.is_none() {
            return Err(ReconfError::NotEstablished);
        }
        if r.queue.len() >= MAX_QUEUED_REQUESTS {
            return Err(ReconfError::QueueFull);
        }
        Ok(())
    }

    /// Resets our outgoing `streams` (empty: all), RFC 6525 §5.1.2.
    pub(crate) fn reset_streams(&mut self, streams: &[u16]) -> Result<(), ReconfError> {
        self.reconf_ready()?;
        if streams.len() > MAX_RESET_STREAMS {
            return Err(ReconfError::TooManyStreams);
        }
        let (Some(d), Some(r)) = (self.data.as_mut(), self.reconf.as_deref_mut()) else {
            return Err(ReconfError::NotNegotiated);
        };
        if !valid_streams(streams, d.out.outbound_streams()) {
            return Err(ReconfError::InvalidStream);
        }
        let mut streams = streams.to_vec();
        streams.sort_unstable();
        streams.dedup();
        let barrier = d.out.hold_streams(&streams, true);
        r.queue.push_back(Request::OutgoingReset {
            streams,
            barrier,
            response_seq: None,
        });
        Ok(())
    }

    /// Asks the peer to reset its outgoing streams towards us (`streams` of ours incoming,
    /// empty: all), RFC 6525 §5.1.3.
    pub(crate) fn request_incoming_reset(&mut self, streams: &[u16]) -> Result<(), ReconfError> {
        self.reconf_ready()?;
        if streams.len() > MAX_RESET_STREAMS {
            return Err(ReconfError::TooManyStreams);
        }
        let (Some(d), Some(r)) = (self.data.as_ref(), self.reconf.as_deref_mut()) else {
            return Err(ReconfError::NotNegotiated);
        };
        if !valid_streams(streams, d.inb.inbound_streams()) {
            return Err(ReconfError::InvalidStream);
        }
        let mut streams = streams.to_vec();
        streams.sort_unstable();
        streams.dedup();
        r.queue.push_back(Request::IncomingReset { streams });
        Ok(())
    }

    /// Resets the whole association: TSNs and every SSN (SSN/TSN Reset, RFC 6525 §5.1.4).
    pub(crate) fn reset_association(&mut self) -> Result<(), ReconfError> {
        self.reconf_ready()?;
        let (Some(d), Some(r)) = (self.data.as_mut(), self.reconf.as_deref_mut()) else {
            return Err(ReconfError::NotNegotiated);
        };
        let barrier = d.out.hold_streams(&[], true);
        r.queue.push_back(Request::AssocReset { barrier });
        Ok(())
    }

    /// Adds `outgoing` streams of ours and asks the peer to add `incoming` ones (RFC 6525
    /// §5.1.5, §5.1.6).
    pub(crate) fn add_streams(&mut self, outgoing: u16, incoming: u16) -> Result<(), ReconfError> {
        self.reconf_ready()?;
        let limit = stream_limit(&self.config);
        let (Some(d), Some(r)) = (self.data.as_ref(), self.reconf.as_deref_mut()) else {
            return Err(ReconfError::NotNegotiated);
        };
        let out_total = u32::from(d.out.outbound_streams()) + u32::from(outgoing);
        let in_total = u32::from(d.inb.inbound_streams()) + u32::from(incoming);
        if (outgoing == 0 && incoming == 0) || out_total > limit || in_total > limit {
            return Err(ReconfError::InvalidCount);
        }
        if r.queue.len() + 2 > MAX_QUEUED_REQUESTS {
            return Err(ReconfError::QueueFull);
        }
        if outgoing > 0 {
            r.queue.push_back(Request::AddOutgoing(outgoing));
        }
        if incoming > 0 {
            r.queue.push_back(Request::AddIncoming(incoming));
        }
        Ok(())
    }

    /// Whether the request at the head of the queue may be sent now.
    fn reconf_head_ready(&self) -> bool {
        let (Some(r), Some(d)) = (self.reconf.as_deref(), self.data.as_ref()) else {
            return false;
        };
        if r.in_flight.is_some() {
            return false;
        }
        match r.queue.front() {
            None => false,
            Some(Request::OutgoingReset { barrier, .. }) => d.out.hold_drained(*barrier),
            Some(Request::AssocReset { barrier }) => {
                d.out.hold_drained(*barrier) && d.out.can_restart()
            }
            Some(_) => true,
        }
    }

    /// Whether a RE-CONFIG chunk waits for transmission.
    pub(crate) fn reconf_wants_transmit(&self) -> bool {
        let Some(r) = self.reconf.as_deref() else {
            return false;
        };
        !r.responses_due.is_empty() || r.send_due || self.reconf_head_ready()
    }

    /// Takes the next request from the queue when none is outstanding (§5.1.1).
    fn start_next_reconf(&mut self, path: PathIdx) {
        if !self.reconf_head_ready() {
            return;
        }
        let last_tsn = self
            .data
            .as_ref()
            .map_or(Tsn(0), |d| d.out.next_tsn().prev());
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        let Some(req) = r.queue.pop_front() else {
            return;
        };
        let mut reqs = vec![(r.next_seq, req)];
        r.next_seq = r.next_seq.next();
        // RFC 6525 §3.1: Add Outgoing and Add Incoming Streams may share one chunk.
        if matches!(reqs[0].1, Request::AddOutgoing(_))
            && matches!(r.queue.front(), Some(Request::AddIncoming(_)))
            && let Some(second) = r.queue.pop_front()
        {
            reqs.push((r.next_seq, second));
            r.next_seq = r.next_seq.next();
        }
        r.in_flight = Some(InFlight {
            reqs,
            last_tsn,
            path,
            in_progress: false,
        });
        r.send_due = true;
    }

    /// Writes due responses and the due request into `w` (RFC 6525 §3.1). An SSN/TSN Reset
    /// Request always follows a SACK in its packet (one is added unless `sack_in_packet`):
    /// the peer learns that all its data arrived before it resets its TSNs, so a peer that
    /// keeps its own unacknowledged data through the reset (usrsctp, which does not apply
    /// §5.2.4 G3) never sees our new cumulative TSN beyond what it sent.
    pub(crate) fn write_reconf(
        &mut self,
        now: Timestamp,
        w: &mut PacketBuilder<'_>,
        path: PathIdx,
        auth_at: &mut Option<usize>,
        sack_in_packet: bool,
    ) {
        self.start_next_reconf(path);
        let rto = self
            .paths
            .get(path)
            .map_or(self.config.rto_initial, |p| p.rto.rto());
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        while let Some(resp) = r.responses_due.front().copied() {
            let params = [Param::ReconfigResponse {
                response_seq: resp.seq,
                result: resp.result,
                next_tsns: resp.next_tsns,
            }];
            let chunk = ReConfig {
                params: TlvList::from_items(&params),
            };
            if !super::push_authenticated(&self.auth, w, auth_at, ChunkType::RE_CONFIG, &chunk) {
                break;
            }
            r.responses_due.pop_front();
        }
        if !r.send_due {
            return;
        }
        let Some(f) = r.in_flight.as_mut() else {
            r.send_due = false;
            return;
        };
        if !sack_in_packet
            && f.reqs
                .iter()
                .any(|(_, q)| matches!(q, Request::AssocReset { .. }))
            && !self.push_sack(w, auth_at)
        {
            // No room for both: the next packet.
            return;
        }
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        let Some(f) = r.in_flight.as_mut() else {
            return;
        };
        f.path = path;
        let params: Vec<Param<'_>> = f
            .reqs
            .iter()
            .map(|(seq, req)| match req {
                Request::OutgoingReset {
                    streams,
                    response_seq,
                    ..
                } => Param::OutgoingSsnResetRequest {
                    request_seq: *seq,
                    // §4.1: the last request received from the peer when none is answered.
                    response_seq: response_seq.unwrap_or(r.peer_next.prev()),
                    last_tsn: f.last_tsn,
                    streams: FixedList::from_items(streams),
                },
                Request::IncomingReset { streams } => Param::IncomingSsnResetRequest {
                    request_seq: *seq,
                    streams: FixedList::from_items(streams),
                },
                Request::AssocReset { .. } => Param::SsnTsnResetRequest { request_seq: *seq },
                Request::AddOutgoing(n) => Param::AddOutgoingStreamsRequest {
                    request_seq: *seq,
                    new_streams: *n,
                },
                Request::AddIncoming(n) => Param::AddIncomingStreamsRequest {
                    request_seq: *seq,
                    new_streams: *n,
                },
            })
            .collect();
        let chunk = ReConfig {
            params: TlvList::from_items(&params),
        };
        if super::push_authenticated(&self.auth, w, auth_at, ChunkType::RE_CONFIG, &chunk) {
            r.send_due = false;
            // §5.1.1: the request is guarded by its own timer, with the RTO of the path.
            self.timers.start(Timer::Reconfig, now + rto);
        }
    }

    /// Pushes a SACK (RFC 9260 §3.3.4) of what was received into `w`.
    fn push_sack(&mut self, w: &mut PacketBuilder<'_>, auth_at: &mut Option<usize>) -> bool {
        let Some(d) = self.data.as_mut() else {
            return false;
        };
        if w.remaining() < 16 {
            return false;
        }
        let sack = d.inb.take_sack(w.remaining());
        let blocks: Vec<GapAckBlock> = sack
            .gap_offsets()
            .map(|(start, end)| GapAckBlock { start, end })
            .collect();
        let chunk = Sack {
            cumulative_tsn_ack: sack.cum_ack,
            a_rwnd: sack.a_rwnd,
            gap_blocks: FixedList::from_items(&blocks),
            duplicate_tsns: FixedList::from_items(sack.dups.list()),
        };
        let ok = super::push_authenticated(&self.auth, w, auth_at, ChunkType::SACK, &chunk);
        drop(sack);
        if ok {
            self.timers.stop(Timer::DelayedSack);
        }
        ok
    }

    /// The RE-CONFIG timer expired (§5.1.1): count the error, back off the RTO and send
    /// the request again, to another active path if there is one. After "In progress" the
    /// resend is no error.
    pub(crate) fn on_reconf_timer(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some((path, in_progress)) = self
            .reconf
            .as_deref()
            .and_then(|r| r.in_flight.as_ref())
            .map(|f| (f.path, f.in_progress))
        else {
            return;
        };
        if !in_progress {
            self.count_path_error(path, now, ctx);
            if self.count_error() {
                self.lost(ctx, super::LostReason::MaxRetransmissions);
                return;
            }
            if let Some(p) = self.paths.get_mut(path) {
                p.rto.back_off(&self.config);
            }
        }
        let next = self
            .active_alternate(path)
            .unwrap_or_else(|| self.data_path());
        if let Some(r) = self.reconf.as_deref_mut()
            && let Some(f) = r.in_flight.as_mut()
        {
            f.path = next;
            f.in_progress = false;
            r.send_due = true;
        }
    }

    /// A RE-CONFIG chunk from the peer (RFC 6525 §5.2).
    pub(crate) fn on_reconf(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        if self.reconf.is_none() || self.data.is_none() || !self.can_send_data() {
            return;
        }
        let Ok(chunk) = ReConfig::parse(ch) else {
            return;
        };
        for p in chunk.params.iter().take(MAX_PEER_PARAMS) {
            let Ok(p) = p else { continue };
            match p {
                Param::ReconfigResponse {
                    response_seq,
                    result,
                    next_tsns,
                } => self.on_reconf_response(now, ctx, response_seq, result, next_tsns),
                Param::OutgoingSsnResetRequest {
                    request_seq,
                    response_seq,
                    last_tsn,
                    streams,
                } => {
                    // §5.2.2: an answer to our Incoming SSN Reset Request.
                    self.complete_incoming_request(response_seq);
                    let list: Vec<u16> = streams.iter().take(u16::MAX as usize).collect();
                    self.peer_request(now, ctx, request_seq, |a, now, ctx| {
                        a.peer_outgoing_reset(now, ctx, request_seq, last_tsn, list)
                    });
                }
                Param::IncomingSsnResetRequest {
                    request_seq,
                    streams,
                } => {
                    let list: Vec<u16> = streams.iter().take(u16::MAX as usize).collect();
                    self.peer_request(now, ctx, request_seq, |a, _, _| {
                        a.peer_incoming_reset(request_seq, list)
                    });
                }
                Param::SsnTsnResetRequest { request_seq } => {
                    self.peer_request(now, ctx, request_seq, |a, _, ctx| a.peer_assoc_reset(ctx));
                }
                Param::AddOutgoingStreamsRequest {
                    request_seq,
                    new_streams,
                } => {
                    self.peer_request(now, ctx, request_seq, |a, _, ctx| {
                        a.peer_add_outgoing(ctx, new_streams)
                    });
                }
                Param::AddIncomingStreamsRequest {
                    request_seq,
                    new_streams,
                } => {
                    self.peer_request(now, ctx, request_seq, |a, _, _| {
                        a.peer_add_incoming(new_streams)
                    });
                }
                // Other parameters do not belong in RE-CONFIG: ignored.
                _ => {}
            }
        }
    }

    /// §5.2.1: sequence number rules around one peer request. `process` returns the result
    /// (with the next TSNs of an SSN/TSN reset) and whether it is final: "In progress"
    /// without deferred work does not consume the number, so the retransmission is
    /// evaluated again. `None` means no response parameter (the answer is a request).
    fn peer_request(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        seq: ReconfigSeq,
        process: impl FnOnce(
            &mut Association,
            Timestamp,
            &mut Ctx<'_>,
        ) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool),
    ) {
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        if seq != r.peer_next {
            let retransmit = seq == r.peer_next.prev() || seq == r.peer_next.sub(2);
            match r.stored(seq) {
                Some(resp) if retransmit => r.respond(resp),
                _ => {
                    // §5.2.1: neither expected nor one of the last two processed.
                    r.stats.peer_requests_refused += 1;
                    r.respond(Response {
                        seq,
                        result: ReconfigResult::ERROR_BAD_SEQUENCE_NUMBER,
                        next_tsns: None,
                    });
                }
            }
            return;
        }
        let (result, next_tsns, consumed) = process(self, now, ctx);
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        let stored_result = result.unwrap_or(ReconfigResult::SUCCESS_PERFORMED);
        if matches!(
            stored_result,
            ReconfigResult::DENIED
                | ReconfigResult::ERROR_WRONG_SSN
                | ReconfigResult::ERROR_REQUEST_IN_PROGRESS
        ) {
            r.stats.peer_requests_refused += 1;
        }
        let resp = Response {
            seq,
            result: stored_result,
            next_tsns,
        };
        if consumed {
            r.peer_next = r.peer_next.next();
            r.store(resp);
        }
        if result.is_some() {
            r.respond(resp);
        }
    }

    /// Our outstanding Incoming SSN Reset Request numbered `seq` was answered by the peer's
    /// Outgoing SSN Reset Request (§5.2.2).
    fn complete_incoming_request(&mut self, seq: ReconfigSeq) {
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        let Some(f) = r.in_flight.as_mut() else {
            return;
        };
        let before = f.reqs.len();
        f.reqs
            .retain(|(s, req)| !(*s == seq && matches!(req, Request::IncomingReset { .. })));
        if f.reqs.len() != before && f.reqs.is_empty() {
            r.in_flight = None;
            r.send_due = false;
            self.timers.stop(Timer::Reconfig);
        }
    }

    /// The peer resets its outgoing streams, our incoming ones (§5.2.2).
    fn peer_outgoing_reset(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        seq: ReconfigSeq,
        last_tsn: Tsn,
        streams: Vec<u16>,
    ) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool) {
        let done = |res| (Some(res), None, true);
        if !self.config.reconf_policy.reset_streams {
            return done(ReconfigResult::DENIED);
        }
        let Some(d) = self.data.as_ref() else {
            return done(ReconfigResult::DENIED);
        };
        if !valid_streams(&streams, d.inb.inbound_streams()) {
            return done(ReconfigResult::ERROR_WRONG_SSN);
        }
        let cum = d.inb.cum_ack();
        if self.reconf.as_deref().is_some_and(|r| r.deferred.is_some()) {
            return done(ReconfigResult::ERROR_REQUEST_IN_PROGRESS);
        }
        if last_tsn.is_before_or_eq(cum) {
            self.perform_incoming_reset(ctx, &streams);
            let _ = now;
            return done(ReconfigResult::SUCCESS_PERFORMED);
        }
        // §5.2.2: deferred until the cumulative TSN reaches the Sender's Last Assigned TSN.
        if let Some(r) = self.reconf.as_deref_mut() {
            r.deferred = Some(Deferred {
                seq,
                last_tsn,
                streams,
            });
        }
        done(ReconfigResult::IN_PROGRESS)
    }

    fn perform_incoming_reset(&mut self, ctx: &mut Ctx<'_>, streams: &[u16]) {
        if let Some(d) = self.data.as_mut() {
            d.inb.reset_streams(streams);
        }
        if let Some(r) = self.reconf.as_deref_mut() {
            r.stats.incoming_resets += 1;
        }
        ctx.event(Event::StreamReset {
            direction: StreamDirection::Incoming,
            streams: streams.to_vec(),
            outcome: ReconfOutcome::Performed,
        });
    }

    /// Holds back a DATA/I-DATA chunk of a deferred stream above the Sender's Last Assigned
    /// TSN (§5.2.2). Returns true when the chunk was taken (held or dropped unacknowledged).
    pub(crate) fn reconf_hold_data(&mut self, ch: &RawChunk<'_>) -> bool {
        let v = ch.value();
        let (Some(t), Some(s)) = (v.get(0..4), v.get(4..6)) else {
            return false;
        };
        let tsn = Tsn(u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
        let stream = u16::from_be_bytes([s[0], s[1]]);
        let Some(r) = self.reconf.as_deref_mut() else {
            return false;
        };
        let Some(def) = r.deferred.as_ref() else {
            return false;
        };
        if !tsn.is_after(def.last_tsn) || !(def.streams.is_empty() || def.streams.contains(&stream))
        {
            return false;
        }
        let bytes = ch.as_bytes();
        let dup = r
            .held
            .iter()
            .any(|h| h.get(4..8) == ch.as_bytes().get(4..8));
        if !dup {
            if r.held.len() < MAX_HELD_CHUNKS && r.held_bytes + bytes.len() <= MAX_HELD_BYTES {
                r.held_bytes += bytes.len();
                r.held.push(bytes.to_vec());
            } else {
                // Not acknowledged: the peer sends it again after the reset.
                r.stats.held_dropped += 1;
            }
        }
        true
    }

    /// After DATA or FORWARD TSN: performs a deferred reset whose Sender's Last Assigned
    /// TSN is now cumulatively received, sends "Success - Performed" and processes the
    /// held chunks (§5.2.2).
    pub(crate) fn reconf_after_data(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some(cum) = self.data.as_ref().map(|d| d.inb.cum_ack()) else {
            return;
        };
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        if !r
            .deferred
            .as_ref()
            .is_some_and(|d| d.last_tsn.is_before_or_eq(cum))
        {
            return;
        }
        let Some(def) = r.deferred.take() else {
            return;
        };
        let held = core::mem::take(&mut r.held);
        r.held_bytes = 0;
        r.update_stored(def.seq, ReconfigResult::SUCCESS_PERFORMED);
        r.respond(Response {
            seq: def.seq,
            result: ReconfigResult::SUCCESS_PERFORMED,
            next_tsns: None,
        });
        self.perform_incoming_reset(ctx, &def.streams);
        let idata = self.data.as_ref().is_some_and(|d| d.out.idata);
        let mut any = false;
        for bytes in held {
            if let Ok(raw) = RawChunk::new_checked(&bytes) {
                any |= self.on_data(now, ctx, &raw, idata);
            }
        }
        if any {
            self.after_data_packet(now);
        }
    }

    /// The peer asks us to reset our outgoing streams (§5.2.3): answered with an Outgoing
    /// SSN Reset Request of ours carrying its sequence number.
    fn peer_incoming_reset(
        &mut self,
        seq: ReconfigSeq,
        streams: Vec<u16>,
    ) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool) {
        let done = |res| (Some(res), None, true);
        if !self.config.reconf_policy.reset_streams {
            return done(ReconfigResult::DENIED);
        }
        let (Some(d), Some(r)) = (self.data.as_mut(), self.reconf.as_deref_mut()) else {
            return done(ReconfigResult::DENIED);
        };
        if !valid_streams(&streams, d.out.outbound_streams()) || streams.len() > MAX_RESET_STREAMS {
            return done(ReconfigResult::ERROR_WRONG_SSN);
        }
        if r.outgoing_reset_pending() || r.queue.len() >= MAX_QUEUED_REQUESTS {
            return done(ReconfigResult::ERROR_REQUEST_IN_PROGRESS);
        }
        let barrier = d.out.hold_streams(&streams, false);
        r.queue.push_front(Request::OutgoingReset {
            streams,
            barrier,
            response_seq: Some(seq),
        });
        // The answer is our request; a retransmission gets "Success - Performed".
        (None, None, true)
    }

    /// SSN/TSN Reset Request from the peer (§5.2.4).
    fn peer_assoc_reset(
        &mut self,
        ctx: &mut Ctx<'_>,
    ) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool) {
        if !self.config.reconf_policy.reset_association {
            return (Some(ReconfigResult::DENIED), None, true);
        }
        let Some(d) = self.data.as_mut() else {
            return (Some(ReconfigResult::DENIED), None, true);
        };
        if !d.out.can_restart() {
            // Data of ours is outstanding: not now; the retransmission is evaluated again.
            return (Some(ReconfigResult::IN_PROGRESS), None, false);
        }
        // G4: as a FORWARD TSN to the highest TSN received (everything below is given up),
        // G1: the peer's next TSN is our cumulative TSN + 2^31, G2/G3: our next TSN stays,
        // everything sent being acknowledged; G5: every SSN restarts at 0.
        let highest = d.inb.highest_tsn();
        let receiver_next = highest.next().add(1 << 31);
        let sender_next = d.out.next_tsn();
        d.inb.restart(receiver_next);
        d.out.restart(sender_next);
        if let Some(r) = self.reconf.as_deref_mut() {
            r.stats.association_resets += 1;
        }
        ctx.event(Event::AssociationReset {
            outcome: ReconfOutcome::Performed,
            local_next_tsn: sender_next.get(),
            peer_next_tsn: receiver_next.get(),
        });
        // G6: Sender's Next TSN, Receiver's Next TSN.
        (
            Some(ReconfigResult::SUCCESS_PERFORMED),
            Some((sender_next, receiver_next)),
            true,
        )
    }

    /// Add Outgoing Streams Request from the peer: our incoming streams grow (§5.2.5).
    fn peer_add_outgoing(
        &mut self,
        ctx: &mut Ctx<'_>,
        n: u16,
    ) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool) {
        let done = |res| (Some(res), None, true);
        let limit = stream_limit(&self.config);
        if !self.config.reconf_policy.change_streams {
            return done(ReconfigResult::DENIED);
        }
        let Some(d) = self.data.as_mut() else {
            return done(ReconfigResult::DENIED);
        };
        let total = u32::from(d.inb.inbound_streams()) + u32::from(n);
        if total > limit {
            return done(ReconfigResult::DENIED);
        }
        if n == 0 {
            return done(ReconfigResult::SUCCESS_NOTHING_TO_DO);
        }
        let total = u16::try_from(total).unwrap_or(u16::MAX);
        d.inb.set_inbound_streams(total);
        let outbound = d.out.outbound_streams();
        ctx.event(Event::StreamChange {
            outcome: ReconfOutcome::Performed,
            outbound_streams: outbound,
            inbound_streams: total,
        });
        done(ReconfigResult::SUCCESS_PERFORMED)
    }

    /// Add Incoming Streams Request from the peer: it wants more of our outgoing streams
    /// (§5.2.6): answered "Success - Performed" and followed by our Add Outgoing Streams
    /// Request.
    fn peer_add_incoming(&mut self, n: u16) -> (Option<ReconfigResult>, Option<(Tsn, Tsn)>, bool) {
        let done = |res| (Some(res), None, true);
        let limit = stream_limit(&self.config);
        if !self.config.reconf_policy.change_streams {
            return done(ReconfigResult::DENIED);
        }
        let (Some(d), Some(r)) = (self.data.as_ref(), self.reconf.as_deref_mut()) else {
            return done(ReconfigResult::DENIED);
        };
        let total = u32::from(d.out.outbound_streams()) + u32::from(n);
        if total > limit {
            return done(ReconfigResult::DENIED);
        }
        if n == 0 {
            return done(ReconfigResult::SUCCESS_NOTHING_TO_DO);
        }
        if r.queue.len() >= MAX_QUEUED_REQUESTS {
            return done(ReconfigResult::ERROR_REQUEST_IN_PROGRESS);
        }
        r.queue.push_back(Request::AddOutgoing(n));
        done(ReconfigResult::SUCCESS_PERFORMED)
    }

    /// A Re-configuration Response (§5.2.7): completes the request it answers.
    fn on_reconf_response(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        seq: ReconfigSeq,
        result: ReconfigResult,
        next_tsns: Option<(Tsn, Tsn)>,
    ) {
        let rto = self.primary_rto();
        let Some(r) = self.reconf.as_deref_mut() else {
            return;
        };
        let Some(f) = r.in_flight.as_mut() else {
            // A response to nothing: ignored.
            return;
        };
        let Some(pos) = f.reqs.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        // An answer shows the peer reachable (as a SACK does, RFC 9260 §8.1).
        self.error_count = 0;
        if let Some(p) = self.paths.get_mut(f.path) {
            p.error_count = 0;
        }
        if result == ReconfigResult::IN_PROGRESS {
            // §5.1.2: still outstanding; ask again when the timer expires.
            f.in_progress = true;
            r.send_due = false;
            self.timers.start(Timer::Reconfig, now + rto);
            return;
        }
        let (_, req) = f.reqs.remove(pos);
        if f.reqs.is_empty() {
            r.in_flight = None;
            r.send_due = false;
            self.timers.stop(Timer::Reconfig);
        }
        let mut outcome = ReconfOutcome::from_result(result);
        if outcome != ReconfOutcome::Performed {
            r.stats.requests_refused_by_peer += 1;
        }
        let Some(d) = self.data.as_mut() else {
            return;
        };
        match req {
            Request::OutgoingReset {
                streams, barrier, ..
            } => {
                let performed = outcome == ReconfOutcome::Performed;
                d.out.release_hold(barrier, performed);
                if performed {
                    r.stats.outgoing_resets += 1;
                }
                ctx.event(Event::StreamReset {
                    direction: StreamDirection::Outgoing,
                    streams,
                    outcome,
                });
            }
            Request::IncomingReset { streams } => {
                // Performed: the peer's Outgoing SSN Reset Request does (or did) the reset
                // and reports it; only a refusal is reported here.
                if outcome != ReconfOutcome::Performed {
                    ctx.event(Event::StreamReset {
                        direction: StreamDirection::Incoming,
                        streams,
                        outcome,
                    });
                }
            }
            Request::AssocReset { barrier } => {
                let mut tsns = (0, 0);
                match (outcome, next_tsns) {
                    (ReconfOutcome::Performed, Some((sender_next, receiver_next)))
                        if d.out.can_restart() =>
                    {
                        // §5.1.4 / §5.2.4: the peer sends from its Sender's Next TSN on and
                        // expects ours to be its Receiver's Next TSN; every SSN restarts.
                        d.inb.restart(sender_next);
                        d.out.restart(receiver_next);
                        r.stats.association_resets += 1;
                        tsns = (receiver_next.get(), sender_next.get());
                    }
                    (ReconfOutcome::Performed, _) => {
                        outcome = ReconfOutcome::Failed(result);
                    }
                    _ => {}
                }
                d.out.release_hold(barrier, false);
                ctx.event(Event::AssociationReset {
                    outcome,
                    local_next_tsn: tsns.0,
                    peer_next_tsn: tsns.1,
                });
            }
            Request::AddOutgoing(n) => {
                if outcome == ReconfOutcome::Performed {
                    let total = d.out.outbound_streams().saturating_add(n);
                    d.out.set_outbound_streams(total);
                }
                ctx.event(Event::StreamChange {
                    outcome,
                    outbound_streams: d.out.outbound_streams(),
                    inbound_streams: d.inb.inbound_streams(),
                });
            }
            Request::AddIncoming(_) => {
                // Performed: the peer's Add Outgoing Streams Request grows our incoming
                // streams and reports it; only a refusal is reported here.
                if outcome != ReconfOutcome::Performed {
                    ctx.event(Event::StreamChange {
                        outcome,
                        outbound_streams: d.out.outbound_streams(),
                        inbound_streams: d.inb.inbound_streams(),
                    });
                }
            }
        }
    }
}
