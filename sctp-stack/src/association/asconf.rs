//! Dynamic address reconfiguration (Add-IP, RFC 5061) of one association.
//!
//! Call contract:
//! - Add-IP is in use when both sides listed ASCONF and ASCONF ACK among their Supported
//!   Extensions (RFC 5061 §4.2.7) and AUTH (RFC 4895) was negotiated: ASCONF and ASCONF ACK
//!   are only sent and accepted authenticated (RFC 5061 §4.1, §6). Without it the user
//!   calls fail with [`AsconfError::NotNegotiated`] and an ASCONF from the peer is an
//!   unrecognized chunk.
//! - The user queues requests (`add_local_address`, `remove_local_address`,
//!   `request_peer_primary`); at most one ASCONF is in flight (§5.1 C1). It carries up to
//!   [`MAX_REQUESTS_PER_ASCONF`] queued requests, is retransmitted on T4-RTO expiry with the
//!   RTO backed off, and every expiry counts against Association.Max.Retrans (§5.1 C3-C5).
//! - The ASCONF ACK answers each request by correlation id (Success Indication or Error
//!   Cause Indication; no answer means success, §5.3); each request ends with one
//!   [`Event::AddressRequestDone`].
//! - The peer's ASCONFs are processed in serial order (§5.2): the next serial is applied
//!   parameter by parameter and answered, a repeated serial is answered from the cached
//!   ASCONF ACK, anything else is discarded.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use super::path::{MAX_PATHS, Path};
use super::timer::{PathIdx, Timer};
use super::{
    Association, Ctx, ErrorCause, Event, MAX_LOCAL_ADDRESSES, PathState, chunk, is_unicast,
    pick_local,
};
use crate::serial::AsconfSerial;
use crate::time::Timestamp;
use crate::wire::{
    Asconf, AsconfAck, Cause, CauseCode, ChunkType, Encode, PacketBuilder, Param, RawChunk, TlvList,
};

/// Most requests carried by one ASCONF.
pub(crate) const MAX_REQUESTS_PER_ASCONF: usize = 8;
/// Most requests waiting for an ASCONF.
pub(crate) const MAX_QUEUED_REQUESTS: usize = 16;
/// Most ASCONF ACKs waiting to be sent.
const MAX_PENDING_ACKS: usize = 4;
/// Most parameters of one received ASCONF that are processed.
const MAX_PEER_REQUESTS: usize = 32;

/// An address reconfiguration this side asked the peer for (RFC 5061 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressRequest {
    /// Add IP Address: a new local address (§4.2.1).
    Add(IpAddr),
    /// Delete IP Address: a local address leaves the association (§4.2.2).
    Delete(IpAddr),
    /// Set Primary Address: the peer should send to this local address (§4.2.4).
    SetPeerPrimary(IpAddr),
}

impl AddressRequest {
    fn addr(self) -> IpAddr {
        match self {
            AddressRequest::Add(a)
            | AddressRequest::Delete(a)
            | AddressRequest::SetPeerPrimary(a) => a,
        }
    }
}

/// What the peer changed with an ASCONF (RFC 5061 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddressChange {
    /// The peer added the address; its path is unconfirmed until a heartbeat confirms it
    /// (RFC 5061 §4.2.4 / RFC 9260 §5.4).
    Added,
    /// The peer deleted the address; nothing more is sent to it.
    Removed,
    /// The peer asked for the address to become the primary path.
    PrimaryRequested,
}

/// Why an address reconfiguration request was refused locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsconfError {
    /// Add-IP is not in use on this association (not offered by one side, or no AUTH).
    NotNegotiated,
    /// Not a unicast address.
    InvalidAddress,
    /// Added: already one of the association's local addresses.
    AlreadyPresent,
    /// Deleted or made primary: not one of the association's local addresses.
    UnknownAddress,
    /// The last local address cannot be deleted (RFC 5061 §5.1).
    LastAddress,
    /// Too many requests are waiting.
    QueueFull,
    /// The association is not established.
    NotEstablished,
}

impl core::fmt::Display for AsconfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AsconfError::NotNegotiated => "Add-IP (with AUTH) is not in use on this association",
            AsconfError::InvalidAddress => "not a unicast address",
            AsconfError::AlreadyPresent => "already a local address of the association",
            AsconfError::UnknownAddress => "not a local address of the association",
            AsconfError::LastAddress => "the last local address cannot be deleted",
            AsconfError::QueueFull => "too many address requests waiting",
            AsconfError::NotEstablished => "the association is not established",
        })
    }
}

impl std::error::Error for AsconfError {}

/// The ASCONF in flight.
#[derive(Debug)]
struct InFlight {
    serial: AsconfSerial,
    /// The Address Parameter (an address of ours already in the association, §3.1.1).
    lookup: IpAddr,
    requests: Vec<(u32, AddressRequest)>,
    /// The destination of the latest transmission.
    path: PathIdx,
}

/// Add-IP state of an association that negotiated it.
#[derive(Debug)]
pub(crate) struct AsconfState {
    /// Serial of our next ASCONF (starts at our Initial TSN, §5.1 / §4.1 of RFC 5061).
    next_serial: AsconfSerial,
    next_correlation: u32,
    queue: VecDeque<AddressRequest>,
    in_flight: Option<InFlight>,
    /// The ASCONF in flight waits for (re)transmission.
    send_due: bool,
    /// Serial of the last ASCONF of the peer processed (its Initial TSN - 1 at first, §5.2).
    peer_serial: AsconfSerial,
    /// The ASCONF ACK of `peer_serial`, encoded, for a retransmitted ASCONF (§5.2).
    last_ack: Option<Vec<u8>>,
    /// ASCONF ACKs to send: the encoded chunk and the address the ASCONF came from (§5.2:
    /// the ACK goes back to the source address).
    acks_due: VecDeque<(Vec<u8>, IpAddr)>,
}

impl AsconfState {
    pub(crate) fn new(local_initial_tsn: u32, peer_initial_tsn: u32) -> AsconfState {
        AsconfState {
            next_serial: AsconfSerial(local_initial_tsn),
            next_correlation: 1,
            queue: VecDeque::new(),
            in_flight: None,
            send_due: false,
            peer_serial: AsconfSerial(peer_initial_tsn).prev(),
            last_ack: None,
            acks_due: VecDeque::new(),
        }
    }

    /// Whether an ASCONF or ASCONF ACK waits for transmission.
    pub(crate) fn wants_transmit(&self) -> bool {
        self.send_due || !self.acks_due.is_empty()
    }

    fn queued(&self, addr: IpAddr) -> bool {
        self.queue.iter().any(|r| r.addr() == addr)
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.requests.iter().any(|(_, r)| r.addr() == addr))
    }
}

fn is_wildcard(a: IpAddr) -> bool {
    a.is_unspecified()
}

/// One answer of an ASCONF ACK.
enum Answer<'a> {
    Success(u32),
    Error(u32, CauseCode, &'a [u8]),
}

impl Association {
    fn asconf_ready(&self) -> Result<(), AsconfError> {
        if self.asconf.is_none() {
            return Err(AsconfError::NotNegotiated);
        }
        if !self.is_open_for_heartbeat() {
            return Err(AsconfError::NotEstablished);
        }
        Ok(())
    }

    fn queue_request(&mut self, now: Timestamp, r: AddressRequest) -> Result<(), AsconfError> {
        let Some(s) = self.asconf.as_mut() else {
            return Err(AsconfError::NotNegotiated);
        };
        if s.queue.len() >= MAX_QUEUED_REQUESTS {
            return Err(AsconfError::QueueFull);
        }
        s.queue.push_back(r);
        self.start_next_asconf(now);
        Ok(())
    }

    /// Adds a local address with an ASCONF (RFC 5061 §4.2.1). The address becomes usable
    /// once the peer acknowledges it.
    pub(crate) fn add_local_address(
        &mut self,
        now: Timestamp,
        addr: IpAddr,
    ) -> Result<(), AsconfError> {
        self.asconf_ready()?;
        if !is_unicast(addr) {
            return Err(AsconfError::InvalidAddress);
        }
        if self.local_addrs.contains(&addr) || self.asconf.as_ref().is_some_and(|s| s.queued(addr))
        {
            return Err(AsconfError::AlreadyPresent);
        }
        if self.local_addrs.len() >= MAX_LOCAL_ADDRESSES {
            return Err(AsconfError::QueueFull);
        }
        self.queue_request(now, AddressRequest::Add(addr))
    }

    /// Removes a local address with an ASCONF (RFC 5061 §4.2.2). The address is no longer
    /// used as a source from now on (so the ASCONF never comes from it, §5.1).
    pub(crate) fn remove_local_address(
        &mut self,
        now: Timestamp,
        addr: IpAddr,
    ) -> Result<(), AsconfError> {
        self.asconf_ready()?;
        if !self.local_addrs.contains(&addr) {
            return Err(AsconfError::UnknownAddress);
        }
        if self.local_addrs.len() <= 1 {
            // RFC 5061 §5.1: the last address of an association is never deleted.
            return Err(AsconfError::LastAddress);
        }
        if self.asconf.as_ref().is_some_and(|s| s.queued(addr)) {
            return Err(AsconfError::AlreadyPresent);
        }
        self.queue_request(now, AddressRequest::Delete(addr))?;
        self.local_addrs.retain(|a| *a != addr);
        let locals = self.local_addrs.clone();
        for p in &mut self.paths {
            if p.local == Some(addr) {
                p.local = pick_local(&locals, p.remote);
            }
        }
        Ok(())
    }

    /// Asks the peer to make `addr` (one of our addresses) its primary destination (RFC
    /// 5061 §4.2.4).
    pub(crate) fn request_peer_primary(
        &mut self,
        now: Timestamp,
        addr: IpAddr,
    ) -> Result<(), AsconfError> {
        self.asconf_ready()?;
        let known =
            self.local_addrs.contains(&addr) || self.paths.iter().any(|p| p.local == Some(addr));
        if !known {
            return Err(AsconfError::UnknownAddress);
        }
        self.queue_request(now, AddressRequest::SetPeerPrimary(addr))
    }

    /// Builds the next ASCONF from the queue when none is in flight (RFC 5061 §5.1 C1).
    fn start_next_asconf(&mut self, _now: Timestamp) {
        let dp = self.data_path();
        let lookup = self
            .paths
            .get(dp)
            .and_then(|p| p.local)
            .or_else(|| self.local_addrs.first().copied());
        let Some(s) = self.asconf.as_mut() else {
            return;
        };
        if s.in_flight.is_some() || s.queue.is_empty() {
            return;
        }
        let mut requests = Vec::new();
        while requests.len() < MAX_REQUESTS_PER_ASCONF {
            let Some(r) = s.queue.pop_front() else { break };
            requests.push((s.next_correlation, r));
            s.next_correlation = s.next_correlation.wrapping_add(1);
        }
        // The Address Parameter: an address of ours that stays in the association.
        let deleting = |a: IpAddr| {
            requests
                .iter()
                .any(|(_, r)| matches!(r, AddressRequest::Delete(d) if *d == a))
        };
        let lookup = lookup
            .filter(|a| !deleting(*a))
            .or_else(|| self.local_addrs.iter().copied().find(|a| !deleting(*a)))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let serial = s.next_serial;
        s.next_serial = s.next_serial.next();
        s.in_flight = Some(InFlight {
            serial,
            lookup,
            requests,
            path: dp,
        });
        s.send_due = true;
    }

    /// The destination of a due ASCONF or ASCONF ACK, if any.
    pub(crate) fn asconf_path(&self) -> Option<PathIdx> {
        let s = self.asconf.as_ref()?;
        if let Some((_, addr)) = s.acks_due.front()
            && let Some(i) = self.live_path_of(*addr)
        {
            return Some(i);
        }
        if s.send_due {
            // A destination that became unusable (deleted, or an unconfirmed primary) leaves
            // the choice to the usual path selection; `write_asconf` follows it.
            return s
                .in_flight
                .as_ref()
                .map(|f| f.path)
                .filter(|&i| self.usable_for_asconf(i));
        }
        None
    }

    /// Whether the ASCONF may go to path `i` (RFC 9260 §5.4: not to an unconfirmed address).
    fn usable_for_asconf(&self, i: PathIdx) -> bool {
        self.paths
            .get(i)
            .is_some_and(|p| !p.removed && p.state != PathState::Unconfirmed)
    }

    /// Pushes the due ASCONF ACKs to `path` and the due ASCONF (when `path` is its
    /// destination and confirmed) into `w`, with an AUTH chunk before them.
    pub(crate) fn write_asconf(
        &mut self,
        now: Timestamp,
        w: &mut PacketBuilder<'_>,
        path: PathIdx,
        confirmed: bool,
        auth_at: &mut Option<usize>,
    ) {
        let Some(remote) = self.paths.get(path).map(|p| p.remote) else {
            return;
        };
        let Some(s) = self.asconf.as_mut() else {
            return;
        };
        while let Some((bytes, addr)) = s.acks_due.front() {
            // §5.2: back to the source address of the ASCONF, if it is still a path.
            let elsewhere =
                *addr != remote && self.paths.iter().any(|p| p.remote == *addr && !p.removed);
            if elsewhere {
                break;
            }
            let Ok(raw) = RawChunk::new_checked(bytes) else {
                s.acks_due.pop_front();
                continue;
            };
            if !super::push_authenticated(&self.auth, w, auth_at, ChunkType::ASCONF_ACK, &raw) {
                break;
            }
            s.acks_due.pop_front();
        }
        if !(confirmed && s.send_due) {
            return;
        }
        let Some(f) = s.in_flight.as_mut() else {
            s.send_due = false;
            return;
        };
        let target_usable = self
            .paths
            .get(f.path)
            .is_some_and(|p| !p.removed && p.state != PathState::Unconfirmed);
        if f.path != path {
            if target_usable {
                return;
            }
            f.path = path;
        }
        let params: Vec<Param<'_>> = f
            .requests
            .iter()
            .map(|&(correlation_id, r)| match r {
                AddressRequest::Add(address) => Param::AddIpAddress {
                    correlation_id,
                    address,
                },
                AddressRequest::Delete(address) => Param::DeleteIpAddress {
                    correlation_id,
                    address,
                },
                AddressRequest::SetPeerPrimary(address) => Param::SetPrimaryAddress {
                    correlation_id,
                    address,
                },
            })
            .collect();
        let chunk = Asconf {
            serial: f.serial,
            address: f.lookup,
            params: TlvList::from_items(&params),
        };
        if super::push_authenticated(&self.auth, w, auth_at, ChunkType::ASCONF, &chunk) {
            s.send_due = false;
            // RFC 5061 §5.1 C2: T4-RTO runs with the RTO of the destination.
            let rto = self
                .paths
                .get(path)
                .map_or(self.config.rto_initial, |p| p.rto.rto());
            if !self.timers.is_running(Timer::T4Asconf) {
                self.timers.start(Timer::T4Asconf, now + rto);
            }
        }
    }

    /// T4-RTO expired (RFC 5061 §5.1 C4, C5): count the error against the path and the
    /// association, back off the RTO and retransmit the same ASCONF, to another active
    /// path if there is one.
    pub(crate) fn on_t4(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let Some(path) = self
            .asconf
            .as_ref()
            .and_then(|s| s.in_flight.as_ref())
            .map(|f| f.path)
        else {
            return;
        };
        self.count_path_error(path, now, ctx);
        if self.count_error() {
            self.lost(ctx, super::LostReason::MaxRetransmissions);
            return;
        }
        if let Some(p) = self.paths.get_mut(path) {
            p.rto.back_off(&self.config);
        }
        let next = self
            .active_alternate(path)
            .unwrap_or_else(|| self.data_path());
        if let Some(s) = self.asconf.as_mut()
            && let Some(f) = s.in_flight.as_mut()
        {
            f.path = next;
            s.send_due = true;
        }
        let _ = now;
    }

    /// An ASCONF ACK (RFC 5061 §5.3); it is authenticated (checked by the caller).
    pub(crate) fn on_asconf_ack(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, ch: &RawChunk<'_>) {
        let Some(s) = self.asconf.as_mut() else {
            return;
        };
        let Ok(ack) = AsconfAck::parse(ch) else {
            return;
        };
        let Some(f) = s.in_flight.as_ref() else {
            // Nothing outstanding: a late or duplicate ACK.
            return;
        };
        if ack.serial != f.serial {
            if f.serial.distance_to(ack.serial) > 0 {
                // §5.3: an ACK for a serial never sent: ABORT "Illegal ASCONF-ACK".
                let c = ErrorCause {
                    code: CauseCode::ILLEGAL_ASCONF_ACK,
                    info: Vec::new(),
                };
                self.abort_with(now, ctx, c);
            }
            return;
        }
        let Some(f) = s.in_flight.take() else {
            return;
        };
        s.send_due = false;
        self.timers.stop(Timer::T4Asconf);
        // An acknowledgement shows the peer reachable (as a SACK does, RFC 9260 §8.1/§8.2).
        self.error_count = 0;
        if let Some(p) = self.paths.get_mut(f.path) {
            p.error_count = 0;
        }
        for (corr, req) in f.requests {
            let mut error = None;
            for p in ack.params.iter().flatten() {
                match p {
                    Param::ErrorCauseIndication {
                        correlation_id,
                        causes,
                    } if correlation_id == corr => {
                        let code = causes
                            .iter()
                            .flatten()
                            .next()
                            .map_or(CauseCode::RESOURCE_SHORTAGE, |c| c.code());
                        error = Some(code);
                    }
                    _ => {}
                }
            }
            // §5.3: a request without an answer succeeded. An added address becomes ours;
            // a refused deletion leaves the address in the association.
            let keep = match (req, error) {
                (AddressRequest::Add(a), None) | (AddressRequest::Delete(a), Some(_)) => Some(a),
                _ => None,
            };
            if let Some(a) = keep
                && !self.local_addrs.contains(&a)
                && self.local_addrs.len() < MAX_LOCAL_ADDRESSES
            {
                self.local_addrs.push(a);
            }
            ctx.event(Event::AddressRequestDone {
                request: req,
                error,
            });
        }
        self.revive_acknowledged_paths(now, ctx);
        self.start_next_asconf(now);
    }

    /// An ASCONF from the peer (RFC 5061 §5.2); it is authenticated (checked by the
    /// caller).
    pub(crate) fn on_asconf(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        ch: &RawChunk<'_>,
        src: IpAddr,
    ) {
        let Some(s) = self.asconf.as_mut() else {
            return;
        };
        let Ok(asconf) = Asconf::parse(ch) else {
            return;
        };
        if asconf.serial == s.peer_serial {
            // §5.2 (A?): a retransmission of the last ASCONF: the cached ACK again.
            if let Some(ack) = s.last_ack.clone()
                && s.acks_due.len() < MAX_PENDING_ACKS
            {
                s.acks_due.push_back((ack, src));
            }
            return;
        }
        if asconf.serial != s.peer_serial.next() {
            // §5.2: neither the next nor the last serial: discard silently.
            return;
        }
        let region = asconf.params.wire_bytes().unwrap_or(&[]);
        let mut answers: Vec<Answer<'_>> = Vec::new();
        for raw in chunk::raw_params(region).take(MAX_PEER_REQUESTS) {
            let Ok(p) = Param::parse(&raw) else { continue };
            let tlv = raw.as_bytes();
            let answer = match p {
                Param::AddIpAddress {
                    correlation_id,
                    address,
                } => self.peer_add(now, ctx, correlation_id, address, src, tlv),
                Param::DeleteIpAddress {
                    correlation_id,
                    address,
                } => self.peer_delete(now, ctx, correlation_id, address, src, tlv),
                Param::SetPrimaryAddress {
                    correlation_id,
                    address,
                } => self.peer_set_primary(ctx, correlation_id, address, src, tlv),
                Param::AdaptationLayerIndication(code) => {
                    self.peer_adaptation = Some(code);
                    continue;
                }
                other => {
                    // RFC 9260 §3.2.1 action bits: "stop" ends the processing.
                    if !other.param_type().unknown_action().skips() {
                        break;
                    }
                    continue;
                }
            };
            answers.push(answer);
        }
        // Encode the ASCONF ACK: one answer per request, in order (§5.2).
        let causes: Vec<[Cause<'_>; 1]> = answers
            .iter()
            .map(|a| match a {
                Answer::Error(_, code, tlv) => [match *code {
                    CauseCode::DELETE_LAST_REMAINING_ADDRESS => {
                        Cause::DeleteLastRemainingAddress(tlv)
                    }
                    CauseCode::DELETE_SOURCE_ADDRESS => Cause::DeleteSourceAddress(tlv),
                    CauseCode::UNRESOLVABLE_ADDRESS => Cause::UnresolvableAddress(tlv),
                    _ => Cause::ResourceShortage(tlv),
                }],
                Answer::Success(_) => [Cause::OutOfResource],
            })
            .collect();
        let params: Vec<Param<'_>> = answers
            .iter()
            .zip(&causes)
            .map(|(a, c)| match a {
                Answer::Success(id) => Param::SuccessIndication {
                    correlation_id: *id,
                },
                Answer::Error(id, ..) => Param::ErrorCauseIndication {
                    correlation_id: *id,
                    causes: TlvList::from_items(c),
                },
            })
            .collect();
        let ack = AsconfAck {
            serial: asconf.serial,
            params: TlvList::from_items(&params),
        };
        let mut bytes = vec![0u8; ack.encoded_len()];
        if ack.encode(&mut bytes).is_err() {
            return;
        }
        let Some(s) = self.asconf.as_mut() else {
            return;
        };
        s.peer_serial = asconf.serial;
        s.last_ack = Some(bytes.clone());
        if s.acks_due.len() < MAX_PENDING_ACKS {
            s.acks_due.push_back((bytes, src));
        }
    }

    /// A path whose address is part of the association (not deleted).
    pub(crate) fn live_path_of(&self, addr: IpAddr) -> Option<PathIdx> {
        self.paths
            .iter()
            .position(|p| p.remote == addr && !p.removed)
    }

    /// Add IP Address from the peer (RFC 5061 §5.2, §4.2.1).
    fn peer_add<'a>(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        corr: u32,
        address: IpAddr,
        src: IpAddr,
        tlv: &'a [u8],
    ) -> Answer<'a> {
        // §4.2.1: a wildcard address stands for the source address of the packet.
        let address = if is_wildcard(address) { src } else { address };
        if !is_unicast(address) {
            return Answer::Error(corr, CauseCode::UNRESOLVABLE_ADDRESS, tlv);
        }
        if self.live_path_of(address).is_some() {
            // Already part of the association: nothing to do.
            return Answer::Success(corr);
        }
        // A deleted path of this address comes back; otherwise a new path.
        let slot = self
            .paths
            .iter()
            .position(|p| p.remote == address && p.removed);
        let local = pick_local(&self.local_addrs, address).or_else(|| {
            self.paths
                .iter()
                .find(|p| !p.removed && p.remote.is_ipv4() == address.is_ipv4())
                .and_then(|p| p.local)
        });
        let encaps = self.paths.get(self.primary).map_or(0, |p| p.encaps_port);
        let rwnd = self.data.as_ref().map_or(0, |d| d.out.peer_rwnd());
        let mut path = Path::new(address, local, encaps, PathState::Unconfirmed, &self.config);
        path.init_congestion(rwnd.max(4380));
        let idx = match slot {
            Some(i) if self.paths.get(i).is_some_and(|p| p.flight_size == 0) => {
                if let Some(p) = self.paths.get_mut(i) {
                    *p = path;
                }
                i
            }
            _ => {
                if self.paths.len() >= MAX_PATHS {
                    // §5.2: no room: Operation Refused Due to Resource Shortage.
                    return Answer::Error(corr, CauseCode::RESOURCE_SHORTAGE, tlv);
                }
                self.paths.push(path);
                self.timers.set_path_count(self.paths.len());
                self.paths.len() - 1
            }
        };
        // RFC 5061 §4.2.4 / RFC 9260 §5.4: the new address is unconfirmed until a heartbeat
        // to it is acknowledged; probe it right away.
        self.pending.heartbeat |= 1 << idx.min(7);
        let rto = self
            .paths
            .get(idx)
            .map_or(self.config.rto_initial, |p| p.rto.rto());
        self.timers.start(Timer::Heartbeat(idx), now + rto);
        self.routing_changed = true;
        ctx.event(Event::PeerAddressChange {
            addr: address,
            change: PeerAddressChange::Added,
        });
        Answer::Success(corr)
    }

    /// Delete IP Address from the peer (RFC 5061 §5.2, §4.2.2).
    fn peer_delete<'a>(
        &mut self,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
        corr: u32,
        address: IpAddr,
        src: IpAddr,
        tlv: &'a [u8],
    ) -> Answer<'a> {
        let live = self.paths.iter().filter(|p| !p.removed).count();
        if is_wildcard(address) {
            // §4.2.2: a wildcard deletes every address but the source of the packet.
            let others: Vec<IpAddr> = self
                .paths
                .iter()
                .filter(|p| !p.removed && p.remote != src)
                .map(|p| p.remote)
                .collect();
            if self.live_path_of(src).is_none() {
                return Answer::Error(corr, CauseCode::DELETE_LAST_REMAINING_ADDRESS, tlv);
            }
            for a in others {
                self.remove_path(now, ctx, a);
            }
            return Answer::Success(corr);
        }
        if address == src {
            // §5.2: the source address of the ASCONF cannot be deleted.
            return Answer::Error(corr, CauseCode::DELETE_SOURCE_ADDRESS, tlv);
        }
        if self.live_path_of(address).is_none() {
            // Not (or no longer) part of the association: done already.
            return Answer::Success(corr);
        }
        if live <= 1 {
            // §5.2: the last remaining address is never deleted.
            return Answer::Error(corr, CauseCode::DELETE_LAST_REMAINING_ADDRESS, tlv);
        }
        self.remove_path(now, ctx, address);
        Answer::Success(corr)
    }

    /// Takes the path to `addr` out of the association: nothing more is sent there, and
    /// what is outstanding on it is retransmitted elsewhere (RFC 5061 §5.2).
    fn remove_path(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, addr: IpAddr) {
        let Some(i) = self.live_path_of(addr) else {
            return;
        };
        if let Some(p) = self.paths.get_mut(i) {
            p.removed = true;
            p.state = PathState::Inactive;
            p.hb_outstanding = None;
        }
        self.pending.heartbeat &= !(1u8 << i.min(7));
        self.pending.heartbeat_acks.retain(|(p, _)| *p != i);
        self.timers.stop(Timer::Heartbeat(i));
        if let Some(d) = self.data.as_mut()
            && self.paths.get(i).is_some_and(|p| p.flight_size > 0)
        {
            let _ = d.out.on_t3_expired(i, &mut self.paths, &self.config);
            self.rtx_avoid = Some(i);
        }
        self.timers.stop(Timer::T3Rtx(i));
        if self.primary == i {
            self.primary = self
                .active_alternate(i)
                .or_else(|| self.paths.iter().position(|p| !p.removed))
                .unwrap_or(0);
        }
        if self.sack_path == Some(i) {
            self.sack_path = None;
        }
        if let Some(s) = self.asconf.as_mut()
            && let Some(f) = s.in_flight.as_mut()
            && f.path == i
        {
            f.path = self.primary;
        }
        // Data outstanding elsewhere keeps its T3-rtx; restart one if none runs now.
        let running = (0..self.paths.len()).any(|j| self.timers.is_running(Timer::T3Rtx(j)));
        if !running && self.data.as_ref().is_some_and(|d| d.out.has_unacked()) {
            let rto = self.primary_rto();
            self.timers.start(Timer::T3Rtx(self.primary), now + rto);
        }
        self.routing_changed = true;
        ctx.event(Event::PeerAddressChange {
            addr,
            change: PeerAddressChange::Removed,
        });
    }

    /// Set Primary Address from the peer (RFC 5061 §5.2, §4.2.4).
    fn peer_set_primary<'a>(
        &mut self,
        ctx: &mut Ctx<'_>,
        corr: u32,
        address: IpAddr,
        src: IpAddr,
        tlv: &'a [u8],
    ) -> Answer<'a> {
        let address = if is_wildcard(address) { src } else { address };
        let Some(i) = self.live_path_of(address) else {
            return Answer::Error(corr, CauseCode::UNRESOLVABLE_ADDRESS, tlv);
        };
        // An unconfirmed path becomes primary too; data goes to it once it is confirmed
        // (RFC 9260 §5.4: until then the data path is an active alternate).
        self.primary = i;
        ctx.event(Event::PeerAddressChange {
            addr: address,
            change: PeerAddressChange::PrimaryRequested,
        });
        Answer::Success(corr)
    }
}
