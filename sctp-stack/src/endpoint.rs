//! The SCTP endpoint: listeners, the association slab, demultiplexing, the stateless
//! handshake responder and out-of-the-blue handling (RFC 9260 §5.1, §8.4, §8.5).
//!
//! # Call contract (sans-IO)
//!
//! The driver owns sockets and a monotonic clock and calls, in any order:
//! - [`Endpoint::handle_datagram`] for every received SCTP packet (raw or decapsulated from
//!   UDP, with the peer's UDP port in [`Datagram::encaps_port`]);
//! - [`Endpoint::handle_timeout`] when [`Endpoint::poll_timeout`] has passed (early or
//!   repeated calls are harmless);
//! - user commands through [`Endpoint::connect`] and [`Endpoint::association`].
//!
//! After any of these it drains [`Endpoint::poll_transmit`] (one packet per call, written
//! into the caller's buffer, until it returns `None`) and [`Endpoint::poll_event`], then
//! sleeps until the next datagram or [`Endpoint::poll_timeout`]. Every input carries the
//! current [`Timestamp`]; commands given through [`AssociationMut`] take effect at the
//! time of the most recent call that passed one.
//!
//! Received messages are whole unless the association's configuration sets a partial
//! delivery point: then `recv` may return a large message in pieces
//! ([`Message::piece`](crate::Message::piece)), ended by the piece marked last or by
//! [`Event::PartialDeliveryAborted`]. [`ConnectRequest::alternates`] lists further
//! addresses of the peer to try when the first does not answer (like `sctp_connectx`).
//!
//! Nothing here panics on network input, and memory is bounded: a listener keeps no state
//! for an INIT (the state cookie carries it), replies to out-of-the-blue packets wait in a
//! bounded queue, and each association bounds its buffers by its configuration.
//!
//! # Demultiplexing
//!
//! A packet is matched to an association in O(1): first by its verification tag (the
//! association's local tag, chosen unique on this endpoint), else by (peer address, peer
//! port, local port) for the packets whose tag is not ours (INIT, T-bit ABORT and SHUTDOWN
//! COMPLETE, COOKIE ECHO of a restart). Timers of all associations sit in one binary heap
//! with lazy invalidation, so `poll_timeout` is O(1) and an expiry costs O(log n).

use core::cmp::Reverse;
use core::fmt;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::association::chunk::{self, push_cause};
use crate::association::fasthash::FastHash;
use crate::association::{
    AcceptParams, AsconfError, Association, AssociationId, AssociationState, AssociationStatus,
    AuthKeyError, Ctx, Event, InitAnswer, Message, OwnedPacket, PathError, PeerInit, ReconfError,
    SendError, SendOptions, is_unicast,
};
use crate::config::{AssociationConfig, ConfigError, EndpointConfig};
use crate::cookie::{CookieContents, CookieSecrets, staleness, staleness_micros};
use crate::serial::Tsn;
use crate::time::Timestamp;
use crate::wire::{
    Abort, CauseCode, ChunkType, CommonHeader, Encode, ErrorChunk, Init, InitAck, Packet,
    PacketBuilder, Param, Ppid, ShutdownComplete, TlvList,
};

/// A received SCTP packet and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// The peer's IP address.
    pub src: IpAddr,
    /// The local IP address the packet was sent to.
    pub dst: IpAddr,
    /// 0 for raw IP; otherwise the peer's UDP source port (RFC 6951 encapsulation).
    pub encaps_port: u16,
    /// The SCTP packet (common header and chunks).
    pub data: &'a [u8],
}

/// What the link knows about the CRC32c of a received packet (receive checksum offload),
/// for [`Endpoint::handle_datagram_checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RxChecksum {
    /// Not checked by the link (or the NIC could not tell): the endpoint verifies it.
    Unverified,
    /// The link (NIC) verified the checksum: the endpoint skips its own check.
    Verified,
    /// The link found the checksum wrong: the packet is dropped (RFC 9260 §6.8).
    Bad,
}

/// A packet written by [`Endpoint::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from, if the endpoint knows it.
    pub src: Option<IpAddr>,
    /// The destination address.
    pub dst: IpAddr,
    /// 0 for raw IP; otherwise the peer's UDP port (RFC 6951).
    pub encaps_port: u16,
    /// Length of the packet at the start of the caller's buffer.
    pub len: usize,
    /// The association the packet belongs to, if any.
    pub assoc: Option<AssociationId>,
}

/// Parameters of [`Endpoint::connect`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The peer's address.
    pub remote: IpAddr,
    /// The peer's SCTP port.
    pub remote_port: u16,
    /// The local SCTP port; 0 picks an ephemeral port.
    pub local_port: u16,
    /// The local address to send from, if it matters.
    pub local: Option<IpAddr>,
    /// 0 for raw IP; otherwise the peer's UDP port for RFC 6951 encapsulation.
    pub encaps_port: u16,
    /// Overrides the endpoint's association configuration.
    pub config: Option<AssociationConfig>,
    /// Further addresses of the same peer, tried in order after `remote` (like
    /// `sctp_connectx`, RFC 6458 §9.9): the INIT goes to `remote`, each T1-init expiry
    /// sends it to the next address (RFC 9260 §6.4), an INIT ACK from any of them completes
    /// the handshake, and all of them are peer addresses of the association (besides those
    /// the INIT ACK lists). Empty by default.
    pub alternates: Vec<IpAddr>,
}

impl ConnectRequest {
    /// A request to connect to `remote:remote_port` from an ephemeral port.
    pub fn new(remote: IpAddr, remote_port: u16) -> Self {
        ConnectRequest {
            remote,
            remote_port,
            local_port: 0,
            local: None,
            encaps_port: 0,
            config: None,
            alternates: Vec::new(),
        }
    }

    /// A request to connect to a peer reachable at any of `remotes` (tried in this order,
    /// see [`ConnectRequest::alternates`]), or `None` if `remotes` is empty.
    pub fn to_any_of(remotes: &[IpAddr], remote_port: u16) -> Option<Self> {
        let (&first, rest) = remotes.split_first()?;
        let mut req = ConnectRequest::new(first, remote_port);
        req.alternates = rest.to_vec();
        Some(req)
    }

    /// Uses UDP encapsulation to the peer's UDP port `port` (RFC 6951).
    pub fn with_encaps_port(mut self, port: u16) -> Self {
        self.encaps_port = port;
        self
    }

    /// Uses this local SCTP port.
    pub fn with_local_port(mut self, port: u16) -> Self {
        self.local_port = port;
        self
    }

    /// Uses this association configuration.
    pub fn with_config(mut self, config: AssociationConfig) -> Self {
        self.config = Some(config);
        self
    }
}

/// Why [`Endpoint::listen`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenError {
    /// Port 0 cannot be listened on.
    PortZero,
    /// Already listening on the port.
    AlreadyListening,
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenError::PortZero => "cannot listen on port 0",
            ListenError::AlreadyListening => "already listening on this port",
        })
    }
}

impl std::error::Error for ListenError {}

/// Why [`Endpoint::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The association configuration is inconsistent.
    InvalidConfig(ConfigError),
    /// The remote address is not unicast, or the remote port is 0.
    InvalidRemote,
    /// An association to this peer and port from this local port exists.
    AlreadyConnected,
    /// The endpoint holds `max_associations` associations.
    TooManyAssociations,
    /// No ephemeral port is free.
    NoEphemeralPort,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidConfig(e) => write!(f, "{e}"),
            ConnectError::InvalidRemote => f.write_str("remote address or port not usable"),
            ConnectError::AlreadyConnected => f.write_str("association to this peer exists"),
            ConnectError::TooManyAssociations => f.write_str("too many associations"),
            ConnectError::NoEphemeralPort => f.write_str("no ephemeral port available"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Counters of the endpoint, for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams: u64,
    /// Dropped: bad common header or checksum.
    pub bad_packets: u64,
    /// Out-of-the-blue packets (no association, not a handshake packet).
    pub out_of_the_blue: u64,
    /// Dropped unanswered: addressed to a port this endpoint neither listens on nor uses,
    /// with [`EndpointConfig::answer_foreign_ports`] off (another stack's packet).
    pub foreign_port: u64,
    /// INIT chunks answered with INIT ACK.
    pub init_acks_sent: u64,
    /// COOKIE ECHOs refused (bad MAC, stale, wrong tags or ports).
    pub cookies_refused: u64,
    /// Replies dropped because the reply queue was full.
    pub replies_dropped: u64,
    /// Associations created.
    pub associations_created: u64,
}

/// The local verification tag owner of `tag` among `shard_count` shards: a multi-core
/// driver steers a packet to shard `tag_owner(vtag, n)` (see `EndpointConfig::shard`).
pub fn tag_owner(tag: u32, shard_count: u32) -> u32 {
    tag % shard_count.max(1)
}

type AddrKey = (IpAddr, u16, u16);

/// The identifiers an INIT ACK carries (None: fresh random values).
#[derive(Debug, Clone, Copy)]
struct InitAckIds {
    initiate_tag: Option<u32>,
    initial_tsn: Option<u32>,
    local_tie_tag: u32,
    peer_tie_tag: u32,
    /// The RANDOM of an existing association (RFC 4895), reused in its INIT ACK.
    auth_random: Option<[u8; 32]>,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    assoc: Option<Box<Association>>,
    /// The deadline registered in the timer heap.
    registered: Option<Timestamp>,
    in_ready: bool,
    /// Closed, kept only until its unread messages are read.
    closed: bool,
    /// The routes currently in the maps.
    tag: u32,
    addrs: Vec<AddrKey>,
}

/// A sans-IO SCTP endpoint. See the [module documentation](self) for the call contract.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    assoc_config: Arc<AssociationConfig>,
    rng: ChaCha20Rng,
    secrets: CookieSecrets,
    listeners: Vec<u16>,
    /// Live associations per local port (which ports this endpoint uses).
    local_ports: HashMap<u16, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_tag: HashMap<u32, AssociationId, FastHash>,
    by_addr: HashMap<AddrKey, AssociationId>,
    timers: BinaryHeap<Reverse<(Timestamp, u32, u32)>>,
    ready: VecDeque<AssociationId>,
    replies: VecDeque<OwnedPacket>,
    scratch: Vec<OwnedPacket>,
    spare: Vec<Vec<u8>>,
    cookie_buf: Vec<u8>,
    events: VecDeque<(AssociationId, Event)>,
    next_port: u16,
    now: Timestamp,
    stats: EndpointStats,
    /// A packet handled since the last `poll_transmit` made a SACK due without delay.
    sack_due: bool,
}

const EPHEMERAL_FIRST: u16 = 49152;

impl Endpoint {
    /// Creates an endpoint. Fails if the configuration is inconsistent.
    pub fn new(config: EndpointConfig) -> Result<Endpoint, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(config.rng_seed);
        let secrets = CookieSecrets::new(&mut rng, Timestamp::ZERO, config.cookie_secret_lifetime);
        let next_port = EPHEMERAL_FIRST + (rng.next_u32() % 16384) as u16;
        Ok(Endpoint {
            assoc_config: Arc::new(config.association.clone()),
            config,
            rng,
            secrets,
            listeners: Vec::new(),
            local_ports: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_tag: HashMap::default(),
            by_addr: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            replies: VecDeque::new(),
            scratch: Vec::new(),
            spare: Vec::new(),
            cookie_buf: Vec::new(),
            sack_due: false,
            events: VecDeque::new(),
            next_port,
            now: Timestamp::ZERO,
            stats: EndpointStats::default(),
        })
    }

    /// Sets the local addresses of a multi-homed endpoint (RFC 9260 §6.4): the INIT and INIT
    /// ACK of associations set up from now on list them (see
    /// [`EndpointConfig::local_addresses`]). Existing associations keep theirs.
    pub fn set_local_addresses(&mut self, addrs: Vec<IpAddr>) -> Result<(), ConfigError> {
        let mut c = self.config.clone();
        c.local_addresses = addrs;
        c.validate()?;
        self.config.local_addresses = c.local_addresses;
        Ok(())
    }

    /// Accepts associations on `port`.
    pub fn listen(&mut self, port: u16) -> Result<(), ListenError> {
        if port == 0 {
            return Err(ListenError::PortZero);
        }
        if self.listeners.contains(&port) {
            return Err(ListenError::AlreadyListening);
        }
        self.listeners.push(port);
        Ok(())
    }

    /// Stops accepting new associations on `port` (existing ones continue).
    pub fn close_listener(&mut self, port: u16) {
        self.listeners.retain(|&p| p != port);
    }

    /// Number of live associations.
    pub fn association_count(&self) -> usize {
        self.live
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Starts an association (RFC 9260 §5.1 A): the INIT goes out with the next
    /// `poll_transmit`; `Event::Connected` reports success.
    pub fn connect(
        &mut self,
        now: Timestamp,
        req: ConnectRequest,
    ) -> Result<AssociationId, ConnectError> {
        self.advance(now);
        let config = match req.config {
            Some(c) => {
                c.validate().map_err(ConnectError::InvalidConfig)?;
                Arc::new(c)
            }
            None => Arc::clone(&self.assoc_config),
        };
        if !is_unicast(req.remote)
            || req.remote_port == 0
            || req.alternates.iter().any(|a| !is_unicast(*a))
        {
            return Err(ConnectError::InvalidRemote);
        }
        if self.live >= self.config.max_associations {
            return Err(ConnectError::TooManyAssociations);
        }
        let local_port = if req.local_port != 0 {
            req.local_port
        } else {
            self.ephemeral_port(req.remote, req.remote_port)
                .ok_or(ConnectError::NoEphemeralPort)?
        };
        if core::iter::once(&req.remote)
            .chain(&req.alternates)
            .any(|r| {
                self.by_addr
                    .contains_key(&(*r, req.remote_port, local_port))
            })
        {
            return Err(ConnectError::AlreadyConnected);
        }
        let tag = self.new_local_tag();
        let random_tsn = self.rng.next_u32();
        let tsn = Tsn(config.initial_tsn.unwrap_or(random_tsn));
        // RFC 4895 §3.1: the RANDOM comes from the seeded RNG (drawn only with AUTH on, so
        // the RNG sequence of other configurations is unchanged).
        let mut auth_random = [0u8; 32];
        if config.auth {
            self.rng.fill_bytes(&mut auth_random);
        }
        let assoc = Association::connect(
            config,
            now,
            local_port,
            req.remote,
            req.remote_port,
            req.local,
            req.encaps_port,
            tag,
            tsn,
            &self.config.local_addresses,
            auth_random,
        );
        let mut assoc = assoc;
        if !req.alternates.is_empty() {
            assoc.add_connect_alternates(&req.alternates);
        }
        let id = self.insert(assoc);
        self.after(id);
        Ok(id)
    }

    /// The association `id`, for commands, or `None` if it is gone.
    pub fn association(&mut self, id: AssociationId) -> Option<AssociationMut<'_>> {
        self.get(id)?;
        Some(AssociationMut { ep: self, id })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<(AssociationId, Event)> {
        self.events.pop_front()
    }

    /// The earliest deadline of any timer; call `handle_timeout` when it has passed.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Fires every timer that expired at `now`. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
        while let Some(&Reverse((at, index, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let id = AssociationId { index, generation };
            let Some(slot) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if slot.generation != generation || slot.registered != Some(at) {
                continue; // superseded registration
            }
            slot.registered = None;
            self.with_assoc(id, |a, ctx| a.handle_timeout(now, ctx));
        }
    }

    /// Writes the next packet to send into `buf` (which should hold at least the largest
    /// path MTU, e.g. 65535 bytes) and describes it. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Transmit> {
        self.advance(now);
        self.sack_due = false;
        loop {
            if let Some(p) = self.replies.pop_front() {
                let t = if p.bytes.len() <= buf.len() {
                    buf[..p.bytes.len()].copy_from_slice(&p.bytes);
                    Some(Transmit {
                        src: p.src,
                        dst: p.dst,
                        encaps_port: p.encaps_port,
                        len: p.bytes.len(),
                        assoc: p.assoc,
                    })
                } else {
                    None
                };
                self.recycle(p.bytes);
                if t.is_some() {
                    return t;
                }
                continue;
            }
            let id = self.ready.pop_front()?;
            let Some(slot) = self.slots.get_mut(id.index as usize) else {
                continue;
            };
            if slot.generation != id.generation {
                continue;
            }
            // Stays marked while it runs, so `after` does not queue it again in this call:
            // an association that has nothing to send leaves the queue until its next event.
            slot.in_ready = true;
            let mut out = None;
            self.with_assoc(id, |a, ctx| {
                if let Some((len, path)) = a.poll_transmit(now, ctx, buf)
                    && let Some(p) = a.paths.get(path)
                {
                    out = Some(Transmit {
                        src: p.local,
                        dst: p.remote,
                        encaps_port: p.encaps_port,
                        len,
                        assoc: Some(id),
                    });
                }
            });
            if let Some(slot) = self.slots.get_mut(id.index as usize)
                && slot.generation == id.generation
            {
                slot.in_ready = false;
            }
            if let Some(t) = out {
                // Round robin: the association goes to the back of the queue.
                self.mark_ready(id);
                return Some(t);
            }
        }
    }

    /// Processes one received packet. Never panics and never fails: bad or unwanted
    /// packets are dropped or answered as RFC 9260 prescribes. The CRC32c is verified here;
    /// see [`Endpoint::handle_datagram_checked`] for links that verify it themselves.
    pub fn handle_datagram(&mut self, now: Timestamp, dgram: Datagram<'_>) {
        self.handle_datagram_checked(now, dgram, RxChecksum::Unverified);
    }

    /// [`Endpoint::handle_datagram`] for a packet whose CRC32c the link has already judged
    /// (receive checksum offload). [`RxChecksum::Verified`] skips the software check;
    /// [`RxChecksum::Bad`] drops the packet and counts it in
    /// [`EndpointStats::bad_packets`] (RFC 9260 §6.8: a packet with an invalid checksum is
    /// silently discarded); [`RxChecksum::Unverified`] checks it in software as usual. The
    /// caller must only claim `Verified` when the link checked the SCTP checksum of exactly
    /// these bytes.
    pub fn handle_datagram_checked(
        &mut self,
        now: Timestamp,
        dgram: Datagram<'_>,
        checksum: RxChecksum,
    ) {
        self.advance(now);
        self.stats.datagrams += 1;
        let pkt = match checksum {
            RxChecksum::Unverified => chunk::parse_packet(dgram.data),
            RxChecksum::Verified => crate::wire::Packet::new_checked(dgram.data).ok(),
            RxChecksum::Bad => None,
        };
        let Some(pkt) = pkt else {
            self.stats.bad_packets += 1;
            return;
        };
        // RFC 9260 §8.4 (1): nothing to or from non-unicast addresses.
        if !is_unicast(dgram.src)
            || !is_unicast(dgram.dst)
            || pkt.source_port() == 0
            || pkt.destination_port() == 0
        {
            self.stats.bad_packets += 1;
            return;
        }
        if !self.config.answer_foreign_ports && !self.owns_port(pkt.destination_port()) {
            // Another SCTP stack's packet on a shared transport (raw IP): not ours to answer.
            self.stats.foreign_port += 1;
            return;
        }
        let Some(first) = chunk::first_chunk(&pkt) else {
            self.stats.bad_packets += 1;
            return;
        };
        if first.chunk_type() == ChunkType::INIT {
            self.on_init(now, &dgram, &pkt, &first);
            return;
        }
        let t_bit = matches!(
            first.chunk_type(),
            ChunkType::ABORT | ChunkType::SHUTDOWN_COMPLETE
        ) && first.flags() & 1 != 0;
        let by_tag = if t_bit {
            None
        } else {
            self.by_tag
                .get(&pkt.verification_tag())
                .copied()
                .filter(|id| {
                    self.get(*id).is_some_and(|a| {
                        a.local_port == pkt.destination_port() && a.peer_port == pkt.source_port()
                    })
                })
        };
        // The address lookup (SipHash over remote-chosen keys) only when the tag names no
        // association of these ports.
        let id = by_tag.or_else(|| {
            let key = (dgram.src, pkt.source_port(), pkt.destination_port());
            self.by_addr.get(&key).copied()
        });
        if first.chunk_type() == ChunkType::COOKIE_ECHO {
            self.on_cookie_echo(now, &dgram, &pkt, first.value(), id);
            return;
        }
        let Some(id) = id else {
            self.out_of_the_blue(&dgram, &pkt);
            return;
        };
        if first.chunk_type() == ChunkType::SHUTDOWN_ACK
            && self.get(id).is_some_and(|a| {
                matches!(
                    a.state(),
                    AssociationState::CookieWait | AssociationState::CookieEchoed
                )
            })
        {
            // RFC 9260 §8.5.1 (E): treated as out of the blue.
            self.out_of_the_blue(&dgram, &pkt);
            return;
        }
        let mut sack_due = false;
        self.with_assoc(id, |a, ctx| {
            a.handle_packet(
                now,
                ctx,
                dgram.src,
                dgram.dst,
                dgram.encaps_port,
                &pkt,
                None,
            );
            sack_due = a.sack_due_now();
        });
        self.sack_due |= sack_due;
    }

    /// Whether a packet handled since the last [`Endpoint::poll_transmit`] made a SACK due
    /// without delay (RFC 9260 §6.2: an acknowledgement SHOULD be generated for at least every
    /// second packet received). A driver that feeds a burst of received packets in one go
    /// should, when this is true, drain [`Endpoint::poll_transmit`] before handling the next
    /// packet of the burst: otherwise a burst of N DATA packets is acknowledged by one SACK,
    /// which, with the sender's Max.Burst limit (§6.1 D) counted per SACK, keeps the sender's
    /// flight at a few packets per round trip (measured: 4 packets per SACK over veth, 5-6x
    /// less throughput). Cheap: a flag.
    pub fn sack_due_now(&self) -> bool {
        self.sack_due
    }

    // ------------------------------------------------------------------ handshake

    /// RFC 9260 §5.1 B, §5.2.1, §5.2.2, §8.4 (3).
    fn on_init(
        &mut self,
        now: Timestamp,
        dgram: &Datagram<'_>,
        pkt: &Packet<'_>,
        first: &crate::wire::RawChunk<'_>,
    ) {
        let raw = first.as_bytes();
        // §8.5.1 (A) and §6.10: an INIT has verification tag 0 and is alone in its packet.
        if pkt.verification_tag() != 0 || pkt.chunks().count() != 1 {
            return;
        }
        let Ok(init) = Init::parse(first) else {
            return;
        };
        let peer = PeerInit::from_init(&init);
        // RFC 9260 §3.3.2: an INIT with Initiate Tag 0 is silently discarded.
        if peer.tag == 0 {
            return;
        }
        if peer.os == 0 || peer.mis == 0 {
            // §3.3.2: zero streams: ABORT with the Initiate Tag, no state change.
            self.reply_abort(
                dgram,
                pkt,
                peer.tag,
                false,
                Some(CauseCode::INVALID_MANDATORY_PARAMETER),
                &[],
            );
            return;
        }
        if peer.host_name {
            // §3.3.2.1: Host Name Address is not supported: Unresolvable Address.
            self.reply_abort(
                dgram,
                pkt,
                peer.tag,
                false,
                Some(CauseCode::UNRESOLVABLE_ADDRESS),
                &[],
            );
            return;
        }
        let existing = self.find_for_init(dgram, pkt, &peer);
        let mut auth_random = None;
        let (initiate_tag, initial_tsn, local_tie, peer_tie, config) = match existing {
            Some(id) => {
                let mut answer = InitAnswer::Discard;
                let mut cfg = Arc::clone(&self.assoc_config);
                if let Some(a) = self.get_mut(id) {
                    answer = a.answer_init(&peer, dgram.src);
                    cfg = Arc::clone(&a.config);
                    // The association's own RANDOM, so a collision or restart cookie builds
                    // the keys the peer computes (RFC 4895 §6.1).
                    auth_random = a.auth_random();
                }
                self.after(id);
                match answer {
                    InitAnswer::InitAck {
                        initiate_tag,
                        initial_tsn,
                        local_tie_tag,
                        peer_tie_tag,
                    } => (initiate_tag, initial_tsn, local_tie_tag, peer_tie_tag, cfg),
                    InitAnswer::AbortNewAddresses => {
                        // §5.2.2: ABORT with "Restart of an Association with New Addresses".
                        let mut info = Vec::new();
                        for a in peer.addresses.iter().take(8) {
                            chunk::push_address_param(&mut info, *a);
                        }
                        self.reply_abort(
                            dgram,
                            pkt,
                            peer.tag,
                            false,
                            Some(CauseCode::RESTART_WITH_NEW_ADDRESSES),
                            &info,
                        );
                        return;
                    }
                    InitAnswer::Discard => return,
                }
            }
            None => {
                if !self.listeners.contains(&pkt.destination_port()) {
                    // §8.4 (3): ABORT with the Initiate Tag and the T bit clear.
                    self.stats.out_of_the_blue += 1;
                    self.reply_abort(dgram, pkt, peer.tag, false, None, &[]);
                    return;
                }
                (None, None, 0, 0, Arc::clone(&self.assoc_config))
            }
        };
        if raw.len() > self.config.max_init_size {
            self.reply_abort(
                dgram,
                pkt,
                peer.tag,
                false,
                Some(CauseCode::OUT_OF_RESOURCE),
                &[],
            );
            return;
        }
        let ids = InitAckIds {
            initiate_tag,
            initial_tsn,
            local_tie_tag: local_tie,
            peer_tie_tag: peer_tie,
            auth_random,
        };
        let init_params = init.params.wire_bytes().unwrap_or(&[]);
        self.send_init_ack(now, dgram, pkt, &peer, init_params, raw, ids, &config);
    }

    fn find_for_init(
        &self,
        dgram: &Datagram<'_>,
        pkt: &Packet<'_>,
        peer: &PeerInit,
    ) -> Option<AssociationId> {
        let key = (dgram.src, pkt.source_port(), pkt.destination_port());
        if let Some(id) = self.by_addr.get(&key) {
            return Some(*id);
        }
        peer.addresses.iter().find_map(|a| {
            self.by_addr
                .get(&(*a, pkt.source_port(), pkt.destination_port()))
                .copied()
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn send_init_ack(
        &mut self,
        now: Timestamp,
        dgram: &Datagram<'_>,
        pkt: &Packet<'_>,
        peer: &PeerInit,
        init_params: &[u8],
        raw_init: &[u8],
        ids: InitAckIds,
        config: &AssociationConfig,
    ) {
        let InitAckIds {
            initiate_tag,
            initial_tsn,
            local_tie_tag,
            peer_tie_tag,
            auth_random,
        } = ids;
        if self.replies.len() >= self.config.max_pending_replies {
            self.stats.replies_dropped += 1;
            return;
        }
        self.secrets.maybe_rotate(&mut self.rng, now);
        let local_tag = initiate_tag.unwrap_or_else(|| self.new_local_tag());
        let random_tsn = self.rng.next_u32();
        let local_initial_tsn = initial_tsn.unwrap_or(config.initial_tsn.unwrap_or(random_tsn));
        // A Cookie Preservative may extend the lifetime, by at most one more lifetime.
        let extra = peer
            .cookie_preservative_ms
            .map_or(Duration::ZERO, |ms| Duration::from_millis(u64::from(ms)))
            .min(config.valid_cookie_life);
        let contents = CookieContents {
            created: now,
            lifetime: config.valid_cookie_life + extra,
            local_tag,
            peer_tag: peer.tag,
            local_initial_tsn,
            local_rwnd: config.receive_window,
            local_tie_tag,
            peer_tie_tag,
            local_port: pkt.destination_port(),
            peer_port: pkt.source_port(),
            local_os: config.outbound_streams,
            local_mis: config.inbound_streams,
            peer_addr: dgram.src,
            local_addr: Some(dgram.dst),
            local_random: match (config.auth, auth_random) {
                (true, Some(r)) => r,
                (true, None) => {
                    let mut r = [0u8; 32];
                    self.rng.fill_bytes(&mut r);
                    r
                }
                (false, _) => [0; 32],
            },
            init: raw_init,
        };
        let local_auth = config
            .auth
            .then(|| crate::association::auth::LocalAuth::new(config, contents.local_random));
        let cookie_len = contents.encoded_len();
        let mut cookie = core::mem::take(&mut self.cookie_buf);
        cookie.clear();
        cookie.resize(cookie_len, 0);
        if self.secrets.sign(&contents, &mut cookie).is_none() {
            self.cookie_buf = cookie;
            return;
        }
        // §3.3.3/§3.2.1: the State Cookie, our addresses when multi-homed (§6.4, only the
        // families the peer supports), then the unrecognized INIT parameters whose action
        // bits ask for a report, each in an Unrecognized Parameter.
        let mut params = vec![Param::StateCookie(&cookie)];
        crate::association::push_address_params(
            &mut params,
            &self.config.local_addresses,
            peer.supported_types,
        );
        crate::association::push_extension_params(&mut params, config, local_auth.as_ref());
        let mut report_len = 0;
        for raw in chunk::raw_params(init_params) {
            let t = raw.param_type();
            // RFC 3758 §3.3.1: without PR-SCTP, Forward-TSN-Supported is reported.
            if crate::association::understood_param(t)
                && (config.pr_sctp || t != crate::wire::ParamType::FORWARD_TSN_SUPPORTED)
            {
                continue;
            }
            let action = t.unknown_action();
            if action.reports() && report_len + raw.as_bytes().len() <= 512 {
                report_len += raw.as_bytes().len();
                params.push(Param::UnrecognizedParameter(raw.as_bytes()));
            }
            if !action.skips() {
                break;
            }
        }
        let ack = InitAck {
            initiate_tag: local_tag,
            a_rwnd: config.receive_window,
            outbound_streams: config.outbound_streams,
            inbound_streams: config.inbound_streams,
            initial_tsn: Tsn(local_initial_tsn),
            params: TlvList::from_items(&params),
        };
        let total = crate::wire::COMMON_HEADER_LEN + ack.encoded_len();
        let mut bytes = self.take_buf(total);
        let header = CommonHeader {
            source_port: pkt.destination_port(),
            destination_port: pkt.source_port(),
            verification_tag: peer.tag,
        };
        let pushed = PacketBuilder::new(&mut bytes, total, header).and_then(|mut w| {
            w.push(&ack)
                .map(|()| w.finish_for_link(self.config.tx_checksum_offload))
        });
        drop(params);
        self.cookie_buf = cookie;
        let Ok(len) = pushed else {
            return;
        };
        bytes.truncate(len);
        self.stats.init_acks_sent += 1;
        self.replies.push_back(OwnedPacket {
            src: Some(dgram.dst),
            dst: dgram.src,
            encaps_port: dgram.encaps_port,
            assoc: None,
            bytes,
        });
    }

    /// RFC 9260 §5.1 D, §5.1.5, §5.2.4, §5.2.6.
    fn on_cookie_echo(
        &mut self,
        now: Timestamp,
        dgram: &Datagram<'_>,
        pkt: &Packet<'_>,
        cookie: &[u8],
        existing: Option<AssociationId>,
    ) {
        let Ok(c) = self.secrets.verify(cookie) else {
            // §5.1.5 (1, 2): a cookie that does not verify is silently discarded.
            self.stats.cookies_refused += 1;
            return;
        };
        // §5.1.5 (3): ports and tag of the packet must match the cookie.
        if c.local_port != pkt.destination_port()
            || c.peer_port != pkt.source_port()
            || c.local_tag != pkt.verification_tag()
        {
            self.stats.cookies_refused += 1;
            return;
        }
        let Some(peer) = PeerInit::from_raw_init(c.init) else {
            self.stats.cookies_refused += 1;
            return;
        };
        if let Some(stale) = staleness(&c, now) {
            // §5.1.5 (3) / §3.3.10.3: ERROR "Stale Cookie" with the staleness in µs.
            self.stats.cookies_refused += 1;
            let cause = [crate::wire::Cause::StaleCookie {
                staleness_us: staleness_micros(stale),
            }];
            let err = ErrorChunk {
                causes: TlvList::from_items(&cause),
            };
            self.reply(dgram, pkt, c.peer_tag, &err);
            return;
        }
        let existing = existing.or_else(|| self.by_tag.get(&c.local_tag).copied());
        if let Some(id) = existing {
            self.with_assoc(id, |a, ctx| {
                a.handle_packet(
                    now,
                    ctx,
                    dgram.src,
                    dgram.dst,
                    dgram.encaps_port,
                    pkt,
                    Some((&c, &peer)),
                );
            });
            return;
        }
        if !self.listeners.contains(&pkt.destination_port()) {
            self.stats.cookies_refused += 1;
            return;
        }
        if self.live >= self.config.max_associations {
            self.reply_abort(
                dgram,
                pkt,
                c.peer_tag,
                false,
                Some(CauseCode::OUT_OF_RESOURCE),
                &[],
            );
            return;
        }
        if self.by_tag.contains_key(&c.local_tag) {
            // The tag was handed out again meanwhile; the peer will retry.
            return;
        }
        let config = Arc::clone(&self.assoc_config);
        let id = self.alloc_id();
        let mut replies = core::mem::take(&mut self.scratch);
        let mut assoc = {
            let mut ctx = Ctx {
                id,
                rng: &mut self.rng,
                events: &mut self.events,
                replies: &mut replies,
                tx_checksum_offload: self.config.tx_checksum_offload,
            };
            let mut a = Association::accept(
                config,
                now,
                AcceptParams {
                    cookie: &c,
                    peer: peer.clone(),
                    src: dgram.src,
                    dst: dgram.dst,
                    encaps_port: dgram.encaps_port,
                    local_addrs: &self.config.local_addresses,
                },
                &mut ctx,
            );
            // The rest of the packet (DATA bundled after the COOKIE ECHO).
            a.handle_packet(
                now,
                &mut ctx,
                dgram.src,
                dgram.dst,
                dgram.encaps_port,
                pkt,
                Some((&c, &peer)),
            );
            Box::new(a)
        };
        assoc.routing_changed = true;
        self.replies.extend(replies.drain(..));
        self.scratch = replies;
        self.stats.associations_created += 1;
        self.place(id, assoc);
        self.after(id);
    }

    // ------------------------------------------------------------------ OOTB

    /// RFC 9260 §8.4.
    fn out_of_the_blue(&mut self, dgram: &Datagram<'_>, pkt: &Packet<'_>) {
        self.stats.out_of_the_blue += 1;
        let mut shutdown_ack = false;
        for ch in pkt.chunks() {
            match ch.chunk_type() {
                // (2) ABORT, (6) SHUTDOWN COMPLETE, (7) COOKIE ACK: discard.
                ChunkType::ABORT | ChunkType::SHUTDOWN_COMPLETE | ChunkType::COOKIE_ACK => return,
                // (7) an ERROR with a Stale Cookie cause: discard.
                ChunkType::ERROR
                    if chunk::raw_causes(ch.value())
                        .any(|c| c.code() == CauseCode::STALE_COOKIE) =>
                {
                    return;
                }
                ChunkType::SHUTDOWN_ACK => shutdown_ack = true,
                _ => {}
            }
        }
        if shutdown_ack {
            // (5): SHUTDOWN COMPLETE with the T bit and the packet's tag.
            let sc = ShutdownComplete {
                tag_reflected: true,
            };
            self.reply(dgram, pkt, pkt.verification_tag(), &sc);
            return;
        }
        // (8): ABORT with the T bit and the packet's tag.
        self.reply_abort(dgram, pkt, pkt.verification_tag(), true, None, &[]);
    }

    fn reply_abort(
        &mut self,
        dgram: &Datagram<'_>,
        pkt: &Packet<'_>,
        vtag: u32,
        t_bit: bool,
        code: Option<CauseCode>,
        info: &[u8],
    ) {
        let mut causes = Vec::new();
        if let Some(code) = code {
            push_cause(&mut causes, 1024, code, info);
        }
        let Ok(causes) = TlvList::from_bytes(&causes) else {
            return;
        };
        let abort = Abort {
            tag_reflected: t_bit,
            causes,
        };
        self.reply(dgram, pkt, vtag, &abort);
    }

    /// Queues a one-chunk reply to the sender of `pkt`, if the reply queue has room (which
    /// rate-limits answers to floods).
    fn reply(&mut self, dgram: &Datagram<'_>, pkt: &Packet<'_>, vtag: u32, chunk: &dyn Encode) {
        if self.replies.len() >= self.config.max_pending_replies {
            self.stats.replies_dropped += 1;
            return;
        }
        let total = crate::wire::COMMON_HEADER_LEN + chunk.encoded_len();
        let mut bytes = self.take_buf(total);
        let header = CommonHeader {
            source_port: pkt.destination_port(),
            destination_port: pkt.source_port(),
            verification_tag: vtag,
        };
        let Ok(mut w) = PacketBuilder::new(&mut bytes, total, header) else {
            return;
        };
        if w.push(chunk).is_err() {
            return;
        }
        let len = w.finish_for_link(self.config.tx_checksum_offload);
        bytes.truncate(len);
        self.replies.push_back(OwnedPacket {
            src: Some(dgram.dst),
            dst: dgram.src,
            encaps_port: dgram.encaps_port,
            assoc: None,
            bytes,
        });
    }

    fn take_buf(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    fn recycle(&mut self, b: Vec<u8>) {
        if self.spare.len() < 64 && b.capacity() <= 4096 {
            self.spare.push(b);
        }
    }

    // ------------------------------------------------------------------ slab and routing

    fn advance(&mut self, now: Timestamp) {
        if now > self.now {
            self.now = now;
        }
    }

    fn new_local_tag(&mut self) -> u32 {
        let n = self.config.shard_count.max(1);
        loop {
            let r = self.rng.next_u32();
            // Round down to a multiple of n and add the shard: tag % n == shard.
            let tag = (r - r % n).wrapping_add(self.config.shard);
            if tag != 0 && tag % n == self.config.shard && !self.by_tag.contains_key(&tag) {
                return tag;
            }
        }
    }

    fn ephemeral_port(&mut self, remote: IpAddr, remote_port: u16) -> Option<u16> {
        for _ in 0..16384 {
            let p = self.next_port;
            self.next_port = if p == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                p + 1
            };
            if !self.listeners.contains(&p) && !self.by_addr.contains_key(&(remote, remote_port, p))
            {
                return Some(p);
            }
        }
        None
    }

    fn alloc_id(&mut self) -> AssociationId {
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get(index as usize)
        {
            return AssociationId {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            assoc: None,
            registered: None,
            in_ready: false,
            closed: false,
            tag: 0,
            addrs: Vec::new(),
        });
        AssociationId {
            index,
            generation: 0,
        }
    }

    /// Whether `port` is one this endpoint listens on or an association of it uses.
    fn owns_port(&self, port: u16) -> bool {
        self.listeners.contains(&port) || self.local_ports.contains_key(&port)
    }

    fn place(&mut self, id: AssociationId, assoc: Box<Association>) {
        if let Some(slot) = self.slots.get_mut(id.index as usize) {
            *self.local_ports.entry(assoc.local_port).or_insert(0) += 1;
            slot.assoc = Some(assoc);
            slot.registered = None;
            slot.in_ready = false;
            self.live += 1;
        }
    }

    fn insert(&mut self, assoc: Association) -> AssociationId {
        let id = self.alloc_id();
        self.place(id, Box::new(assoc));
        id
    }

    fn get(&self, id: AssociationId) -> Option<&Association> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.assoc.as_deref()
    }

    fn get_mut(&mut self, id: AssociationId) -> Option<&mut Association> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.assoc.as_deref_mut()
    }

    /// Runs `f` on the association with a context, then updates routes, timers and the
    /// send queue.
    fn with_assoc(&mut self, id: AssociationId, f: impl FnOnce(&mut Association, &mut Ctx<'_>)) {
        let mut replies = core::mem::take(&mut self.scratch);
        {
            let Some(slot) = self.slots.get_mut(id.index as usize) else {
                self.scratch = replies;
                return;
            };
            if slot.generation != id.generation {
                self.scratch = replies;
                return;
            }
            let Some(a) = slot.assoc.as_deref_mut() else {
                self.scratch = replies;
                return;
            };
            let mut ctx = Ctx {
                id,
                rng: &mut self.rng,
                events: &mut self.events,
                replies: &mut replies,
                tx_checksum_offload: self.config.tx_checksum_offload,
            };
            f(a, &mut ctx);
        }
        // Most calls queue no reply: skip the VecDeque extend machinery then.
        if !replies.is_empty() {
            self.replies.extend(replies.drain(..));
        }
        self.scratch = replies;
        self.after(id);
    }

    /// Bookkeeping after an association was touched: removal, routes, timer, send queue.
    fn after(&mut self, id: AssociationId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        if slot.closed {
            if slot.assoc.as_ref().is_none_or(|a| !a.has_unread()) {
                self.free_slot(id);
            }
            return;
        }
        let Some(a) = slot.assoc.as_deref_mut() else {
            return;
        };
        if a.is_closed() {
            self.remove(id);
            return;
        }
        if a.routing_changed {
            a.routing_changed = false;
            let tag = a.local_tag;
            let addrs: Vec<AddrKey> = a
                .peer_addresses()
                .map(|ip| (ip, a.peer_port, a.local_port))
                .collect();
            let old_tag = core::mem::replace(&mut slot.tag, tag);
            let old_addrs = core::mem::replace(&mut slot.addrs, addrs.clone());
            if self.by_tag.get(&old_tag) == Some(&id) {
                self.by_tag.remove(&old_tag);
            }
            for k in old_addrs {
                if self.by_addr.get(&k) == Some(&id) {
                    self.by_addr.remove(&k);
                }
            }
            self.by_tag.insert(tag, id);
            for k in addrs {
                self.by_addr.entry(k).or_insert(id);
            }
        }
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        let Some(a) = slot.assoc.as_deref() else {
            return;
        };
        let deadline = a.poll_timeout();
        if deadline != slot.registered {
            slot.registered = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, id.index, id.generation)));
            }
        }
        if a.wants_transmit() && !slot.in_ready {
            slot.in_ready = true;
            self.ready.push_back(id);
        }
        // Stale heap entries are dropped lazily; compact if they pile up.
        if self.timers.len() > 4 * self.live + 1024 {
            self.compact_timers();
        }
    }

    fn mark_ready(&mut self, id: AssociationId) {
        if let Some(slot) = self.slots.get_mut(id.index as usize)
            && slot.generation == id.generation
            && slot.assoc.is_some()
            && !slot.closed
            && !slot.in_ready
        {
            slot.in_ready = true;
            self.ready.push_back(id);
        }
    }

    fn compact_timers(&mut self) {
        let mut heap = BinaryHeap::with_capacity(self.live + 16);
        for (i, s) in self.slots.iter().enumerate() {
            if let (Some(at), Some(_)) = (s.registered, s.assoc.as_ref()) {
                heap.push(Reverse((at, i as u32, s.generation)));
            }
        }
        self.timers = heap;
    }

    /// Takes a closed association out of routing and timers and reports `Closed`. If it
    /// still holds unread messages, its slot stays (closed) until they are read.
    fn remove(&mut self, id: AssociationId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation || slot.assoc.is_none() || slot.closed {
            return;
        }
        slot.registered = None;
        slot.in_ready = false;
        let tag = slot.tag;
        let addrs = core::mem::take(&mut slot.addrs);
        let local_port = slot.assoc.as_ref().map(|a| a.local_port);
        if let Some(p) = local_port
            && let Some(n) = self.local_ports.get_mut(&p)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.local_ports.remove(&p);
            }
        }
        if self.by_tag.get(&tag) == Some(&id) {
            self.by_tag.remove(&tag);
        }
        for k in addrs {
            if self.by_addr.get(&k) == Some(&id) {
                self.by_addr.remove(&k);
            }
        }
        self.live = self.live.saturating_sub(1);
        self.events.push_back((id, Event::Closed));
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.assoc.as_ref().is_some_and(|a| a.has_unread()) {
            slot.closed = true;
        } else {
            self.free_slot(id);
        }
    }

    fn free_slot(&mut self, id: AssociationId) {
        if let Some(slot) = self.slots.get_mut(id.index as usize)
            && slot.generation == id.generation
        {
            slot.assoc = None;
            slot.closed = false;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(id.index);
        }
    }
}

/// Commands on one association, borrowed from the [`Endpoint`].
#[derive(Debug)]
pub struct AssociationMut<'a> {
    ep: &'a mut Endpoint,
    id: AssociationId,
}

impl AssociationMut<'_> {
    /// The association's id.
    pub fn id(&self) -> AssociationId {
        self.id
    }

    /// Queues a message on `stream` with the given Payload Protocol Identifier. Accepts
    /// `&[u8]` (copied) or `Vec<u8>` (moved).
    pub fn send(
        &mut self,
        stream: u16,
        ppid: Ppid,
        data: impl Into<Vec<u8>>,
        opts: SendOptions,
    ) -> Result<(), SendError> {
        let now = self.ep.now;
        let ppid = ppid.get();
        let data = Arc::new(data.into());
        let id = self.id;
        let mut res = Err(SendError::NotConnected);
        self.ep
            .with_assoc(id, |a, _| res = a.send(now, stream, ppid, data, opts));
        res
    }

    /// The next received message, if any.
    pub fn recv(&mut self) -> Option<Message> {
        let now = self.ep.now;
        let mut m = None;
        self.ep.with_assoc(self.id, |a, _| m = a.recv(now));
        m
    }

    /// Starts a graceful shutdown (RFC 9260 §9.2): queued data is delivered first.
    pub fn shutdown(&mut self) {
        let now = self.ep.now;
        self.ep.with_assoc(self.id, |a, ctx| a.shutdown(now, ctx));
    }

    /// Aborts the association, sending ABORT with a User-Initiated Abort cause carrying
    /// `reason` (truncated to 256 bytes).
    pub fn abort(&mut self, reason: &[u8]) {
        let now = self.ep.now;
        self.ep
            .with_assoc(self.id, |a, ctx| a.abort(now, ctx, reason));
    }

    /// Makes the path to the peer address `addr` the primary path (RFC 9260 §6.4); the
    /// path must be confirmed and active.
    pub fn set_primary(&mut self, addr: IpAddr) -> Result<(), PathError> {
        let mut res = Err(PathError::UnknownAddress);
        self.ep
            .with_assoc(self.id, |a, _| res = a.set_primary(addr));
        res
    }

    /// Sets the priority of outbound stream `stream` for the
    /// [`StreamScheduler::Priority`](crate::StreamScheduler::Priority) scheduler (RFC 8260
    /// §3.4): lower values go first; streams start at 0. Fails with `InvalidStream` for a
    /// stream beyond the negotiated outbound streams, `NotConnected` before the handshake.
    pub fn set_stream_priority(&mut self, stream: u16, priority: u16) -> Result<(), SendError> {
        let mut res = Err(SendError::NotConnected);
        self.ep.with_assoc(self.id, |a, _| {
            res = a.set_stream_priority(stream, priority)
        });
        res
    }

    /// Sets the weight of outbound stream `stream` for the
    /// [`StreamScheduler::WeightedFair`](crate::StreamScheduler::WeightedFair) scheduler
    /// (RFC 8260 §3.6): streams with queued data share the sending in proportion to their
    /// weights, in bytes; streams start at weight 1 (0 counts as 1). Errors as
    /// [`AssociationMut::set_stream_priority`].
    pub fn set_stream_weight(&mut self, stream: u16, weight: u16) -> Result<(), SendError> {
        let mut res = Err(SendError::NotConnected);
        self.ep
            .with_assoc(self.id, |a, _| res = a.set_stream_weight(stream, weight));
        res
    }

    /// Adds (or replaces) the endpoint-pair shared key `key_id` on this association (RFC
    /// 4895 §6.1); AUTH must be in use. The peer must hold the same key before it is
    /// activated here.
    pub fn auth_add_key(&mut self, key_id: u16, key: &[u8]) -> Result<(), AuthKeyError> {
        let mut res = Err(AuthKeyError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.auth_add_key(key_id, key));
        res
    }

    /// Makes `key_id` the shared key of outgoing AUTH chunks (RFC 4895 §6.1). Incoming AUTH
    /// chunks are accepted with any key held.
    pub fn auth_activate_key(&mut self, key_id: u16) -> Result<(), AuthKeyError> {
        let mut res = Err(AuthKeyError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.auth_activate_key(key_id));
        res
    }

    /// Deletes the shared key `key_id` (not the active one): AUTH chunks with it are then
    /// discarded.
    pub fn auth_delete_key(&mut self, key_id: u16) -> Result<(), AuthKeyError> {
        let mut res = Err(AuthKeyError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.auth_delete_key(key_id));
        res
    }

    /// Resets our outgoing `streams` (empty: all) with an Outgoing SSN Reset Request (RFC
    /// 6525 §5.1.2): messages sent to them from now on wait until the peer answered, then
    /// (if it performed the reset) go out numbered from SSN 0. RE-CONFIG must be in use.
    /// [`Event::StreamReset`](crate::Event) with direction `Outgoing` reports the answer.
    pub fn reset_streams(&mut self, outgoing: &[u16]) -> Result<(), ReconfError> {
        let mut res = Err(ReconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.reset_streams(outgoing));
        res
    }

    /// Asks the peer to reset its outgoing streams towards us (`incoming` of ours, empty:
    /// all) with an Incoming SSN Reset Request (RFC 6525 §5.1.3). The reset is reported by
    /// [`Event::StreamReset`](crate::Event) with direction `Incoming` when the peer performs
    /// it.
    pub fn request_incoming_reset(&mut self, incoming: &[u16]) -> Result<(), ReconfError> {
        let mut res = Err(ReconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.request_incoming_reset(incoming));
        res
    }

    /// Resets the whole association with an SSN/TSN Reset Request (RFC 6525 §5.1.4): once
    /// everything sent is acknowledged, both sides restart their TSNs and every SSN; sending
    /// waits meanwhile. [`Event::AssociationReset`](crate::Event) reports the answer.
    pub fn reset_association(&mut self) -> Result<(), ReconfError> {
        let mut res = Err(ReconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.reset_association());
        res
    }

    /// Adds `outgoing` streams of ours and asks the peer to add `incoming` streams towards
    /// us (Add Outgoing/Incoming Streams Requests, RFC 6525 §5.1.5, §5.1.6).
    /// [`Event::StreamChange`](crate::Event) reports the new counts.
    pub fn add_streams(&mut self, outgoing: u16, incoming: u16) -> Result<(), ReconfError> {
        let mut res = Err(ReconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.add_streams(outgoing, incoming));
        res
    }

    /// Adds a local address to the association with an ASCONF (RFC 5061 §4.2.1); Add-IP
    /// (with AUTH) must be in use. [`Event::AddressRequestDone`](crate::Event) reports the
    /// peer's answer; the address is used from then on.
    pub fn add_local_address(&mut self, addr: IpAddr) -> Result<(), AsconfError> {
        let now = self.ep.now;
        let mut res = Err(AsconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.add_local_address(now, addr));
        res
    }

    /// Removes a local address from the association with an ASCONF (RFC 5061 §4.2.2). It
    /// stops being a source address at once; the last address cannot be removed.
    pub fn remove_local_address(&mut self, addr: IpAddr) -> Result<(), AsconfError> {
        let now = self.ep.now;
        let mut res = Err(AsconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.remove_local_address(now, addr));
        res
    }

    /// Asks the peer to send to our address `addr` as its primary path (Set Primary
    /// Address, RFC 5061 §4.2.4).
    pub fn request_peer_primary(&mut self, addr: IpAddr) -> Result<(), AsconfError> {
        let now = self.ep.now;
        let mut res = Err(AsconfError::NotNegotiated);
        self.ep
            .with_assoc(self.id, |a, _| res = a.request_peer_primary(now, addr));
        res
    }

    /// The association's state.
    pub fn state(&self) -> AssociationState {
        self.ep
            .get(self.id)
            .map_or(AssociationState::Closed, Association::state)
    }

    /// A snapshot of the association's state and counters.
    pub fn status(&self) -> Option<AssociationStatus> {
        self.ep.get(self.id).map(Association::status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Endpoint>();
    }

    #[test]
    fn local_tags_belong_to_the_configured_shard_and_are_never_zero() {
        for (shard, count) in [(0, 1), (3, 4), (6, 7)] {
            let mut c = EndpointConfig::with_seed([shard as u8; 32]);
            c.shard = shard;
            c.shard_count = count;
            let mut ep = Endpoint::new(c).unwrap();
            for _ in 0..1000 {
                let tag = ep.new_local_tag();
                assert_ne!(tag, 0);
                assert_eq!(tag_owner(tag, count), shard);
            }
        }
    }

    #[test]
    fn an_invalid_shard_is_rejected() {
        let c = EndpointConfig {
            shard: 2,
            shard_count: 2,
            ..EndpointConfig::default()
        };
        assert!(Endpoint::new(c).is_err());
    }

    #[test]
    fn listening_twice_or_on_port_zero_fails() {
        let mut ep = Endpoint::new(EndpointConfig::default()).unwrap();
        assert_eq!(ep.listen(0), Err(ListenError::PortZero));
        assert_eq!(ep.listen(7), Ok(()));
        assert_eq!(ep.listen(7), Err(ListenError::AlreadyListening));
        ep.close_listener(7);
        assert_eq!(ep.listen(7), Ok(()));
    }

    #[test]
    fn connect_refuses_unusable_remotes() {
        let mut ep = Endpoint::new(EndpointConfig::default()).unwrap();
        let bad = ConnectRequest::new("224.0.0.1".parse().unwrap(), 9);
        assert_eq!(
            ep.connect(Timestamp::ZERO, bad).unwrap_err(),
            ConnectError::InvalidRemote
        );
        let port0 = ConnectRequest::new("198.18.0.1".parse().unwrap(), 0);
        assert_eq!(
            ep.connect(Timestamp::ZERO, port0).unwrap_err(),
            ConnectError::InvalidRemote
        );
    }

    #[test]
    fn garbage_datagrams_are_dropped_without_reply() {
        let mut ep = Endpoint::new(EndpointConfig::default()).unwrap();
        ep.listen(5000).unwrap();
        let mut buf = [0u8; 2048];
        for len in 0..64usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            ep.handle_datagram(
                Timestamp::ZERO,
                Datagram {
                    src: "198.18.0.1".parse().unwrap(),
                    dst: "198.18.0.2".parse().unwrap(),
                    encaps_port: 0,
                    data: &data,
                },
            );
        }
        assert!(ep.poll_transmit(Timestamp::ZERO, &mut buf).is_none());
        assert_eq!(ep.stats().bad_packets, 64);
    }

    /// Checksum offload: with `tx_checksum_offload` the endpoint leaves the CRC32c field of
    /// data-path packets zero (the handshake's INIT and COOKIE ECHO keep theirs); on receive
    /// `Verified` skips the software check, `Bad` drops a packet whose checksum is in fact
    /// correct, and `Unverified` still checks.
    #[test]
    fn checksum_offload_leaves_tx_zero_and_trusts_the_links_rx_verdict() {
        use crate::wire::{ChecksumPolicy, verify_checksum, write_checksum};
        let (a_addr, b_addr): (IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        fn dgram(src: IpAddr, dst: IpAddr, data: &[u8]) -> Datagram<'_> {
            Datagram {
                src,
                dst,
                encaps_port: 0,
                data,
            }
        }
        let mut a = Endpoint::new(EndpointConfig {
            tx_checksum_offload: true,
            ..EndpointConfig::with_seed([1; 32])
        })
        .unwrap();
        let mut b = Endpoint::new(EndpointConfig::with_seed([2; 32])).unwrap();
        b.listen(5000).unwrap();
        let now = Timestamp::ZERO;
        let id = a.connect(now, ConnectRequest::new(b_addr, 5000)).unwrap();
        let mut buf = vec![0u8; 65536];
        let strict = |p: &[u8]| verify_checksum(p, ChecksumPolicy::STRICT);
        // INIT: computed in software even with offload.
        let t = a.poll_transmit(now, &mut buf).expect("INIT");
        assert_eq!(strict(&buf[..t.len]), Ok(()));
        b.handle_datagram(now, dgram(a_addr, b_addr, &buf[..t.len]));
        let t = b.poll_transmit(now, &mut buf).expect("INIT ACK");
        let mut init_ack = buf[..t.len].to_vec();
        assert_eq!(strict(&init_ack), Ok(()));
        // Corrupted, but the link claims to have verified it: a skips the check.
        init_ack[8] ^= 0xff;
        a.handle_datagram_checked(now, dgram(b_addr, a_addr, &init_ack), RxChecksum::Verified);
        assert_eq!(a.stats().bad_packets, 0);
        let t = a
            .poll_transmit(now, &mut buf)
            .expect("COOKIE ECHO after a verified INIT ACK");
        assert_eq!(buf[12], 10, "COOKIE ECHO chunk");
        assert_eq!(strict(&buf[..t.len]), Ok(()));
        // The same corrupted INIT ACK through the ordinary path is dropped.
        let mut c = Endpoint::new(EndpointConfig::with_seed([3; 32])).unwrap();
        c.handle_datagram(now, dgram(b_addr, a_addr, &init_ack));
        assert_eq!(c.stats().bad_packets, 1);
        b.handle_datagram(now, dgram(a_addr, b_addr, &buf[..t.len]));
        let t = b.poll_transmit(now, &mut buf).expect("COOKIE ACK");
        a.handle_datagram(now, dgram(b_addr, a_addr, &buf[..t.len]));
        assert!(core::iter::from_fn(|| a.poll_event()).any(|(_, e)| e == Event::Connected));
        // Data path: the checksum field is left zero for the link.
        a.association(id)
            .unwrap()
            .send(0, Ppid(51), &b"offloaded"[..], SendOptions::default())
            .unwrap();
        let t = a.poll_transmit(now, &mut buf).expect("DATA");
        let mut data = buf[..t.len].to_vec();
        assert_eq!(buf[12], 0, "DATA chunk");
        assert_eq!(&data[8..12], &[0u8; 4], "offloaded checksum left zero");
        // Not verified by a link: the zero checksum is wrong and the packet dropped.
        b.handle_datagram_checked(now, dgram(a_addr, b_addr, &data), RxChecksum::Unverified);
        assert_eq!(b.stats().bad_packets, 1);
        // Filled in (as a link does) but flagged bad by the link: dropped all the same.
        write_checksum(&mut data).unwrap();
        b.handle_datagram_checked(now, dgram(a_addr, b_addr, &data), RxChecksum::Bad);
        assert_eq!(b.stats().bad_packets, 2);
        assert!(!core::iter::from_fn(|| b.poll_event()).any(|(_, e)| e == Event::DataReadable));
        // Filled in and unverified: checked in software and delivered.
        b.handle_datagram_checked(now, dgram(a_addr, b_addr, &data), RxChecksum::Unverified);
        assert_eq!(b.stats().bad_packets, 2);
        let (bid, _) = core::iter::from_fn(|| b.poll_event())
            .find(|(_, e)| *e == Event::DataReadable)
            .expect("data delivered");
        assert_eq!(
            b.association(bid).unwrap().recv().unwrap().data,
            b"offloaded"
        );
    }
}
