//! What the DPDK link does above Ethernet, without DPDK: framing of SCTP packets in
//! Ethernet + IPv4/IPv6 (with `etherparse`), ARP (RFC 826), IPv6 neighbour discovery (RFC 4861)
//! and the bounded neighbour cache. Pure functions over byte slices, so every rule is tested
//! without a NIC.
//!
//! Limits (documented in `docs/dpdk.md`): no VLAN tags, no IPv4 options on send, no IP
//! fragmentation or reassembly (fragments are dropped and counted; SCTP does its own path-MTU
//! based fragmentation), no IPv6 extension headers on receive, no ICMP.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use etherparse::{
    EtherType, Ethernet2Header, Icmpv6Slice, Icmpv6Type, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header,
};

use crate::packet::TxMeta;
use crate::raw::IPPROTO_SCTP;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The multicast MAC address of an IPv6 multicast group (RFC 2464 §7: 33:33 + the low 32
    /// bits).
    pub fn ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An interface address with its prefix length (`198.18.0.1/24`, `fd00::1/64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length in bits (at most 32 for IPv4, 128 for IPv6).
    pub len: u8,
}

impl IpPrefix {
    /// Whether `other` lies in this prefix (same family, same leading `len` bits).
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let len = u32::from(self.len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let len = u32::from(self.len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    /// `ADDR/LEN`, or a bare address (then /32 or /128: every peer goes through a gateway).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
            None => max,
        };
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(format!("{s:?}: not a unicast address"));
        }
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The IP configuration of one DPDK port: its MAC and at most one address per family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    pub mac: MacAddr,
    pub v4: Option<IpPrefix>,
    pub v6: Option<IpPrefix>,
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
}

impl Interface {
    /// Whether `ip` is this interface's address.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.v4.is_some_and(|p| p.addr == ip) || self.v6.is_some_and(|p| p.addr == ip)
    }

    /// The address of the family of `remote`.
    pub fn address_for(&self, remote: IpAddr) -> Option<IpAddr> {
        match remote {
            IpAddr::V4(_) => self.v4.map(|p| p.addr),
            IpAddr::V6(_) => self.v6.map(|p| p.addr),
        }
    }

    /// The next hop towards `dst`: `dst` itself when on-link, else the gateway of its family.
    pub fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(_) => match self.v4 {
                Some(p) if p.contains(dst) => Some(dst),
                Some(_) => self.gateway4.map(IpAddr::V4),
                None => None,
            },
            IpAddr::V6(d) => match self.v6 {
                // Link-local peers are always on-link.
                Some(p) if p.contains(dst) || d.segments()[0] & 0xffc0 == 0xfe80 => Some(dst),
                Some(_) => self.gateway6.map(IpAddr::V6),
                None => None,
            },
        }
    }
}

/// Ethernet header length (no VLAN tag).
pub(crate) const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
/// An ARP frame: Ethernet header + ARP for IPv4 over Ethernet.
pub(crate) const ARP_FRAME_LEN: usize = ETH_LEN + ARP_LEN;
/// ICMPv6 NS/NA with one link-layer address option: 4 header + 4 flags/reserved + 16 target +
/// 8 option.
const ND_LEN: usize = 32;
/// A neighbour solicitation or advertisement frame.
pub(crate) const ND_FRAME_LEN: usize = ETH_LEN + Ipv6Header::LEN + ND_LEN;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const ND_OPT_SOURCE_LL: u8 = 1;
const ND_OPT_TARGET_LL: u8 = 2;

/// What a received frame is, for the link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// An SCTP packet for one of our addresses.
    Sctp {
        src: IpAddr,
        dst: IpAddr,
        payload: &'a [u8],
    },
    /// An ARP packet (request or reply) with the sender's binding.
    Arp {
        request: bool,
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// A neighbour solicitation for `target` from `src` (with its link-layer address when
    /// the source is not the unspecified address).
    NeighbourSolicitation {
        src: Ipv6Addr,
        src_mac: Option<MacAddr>,
        target: Ipv6Addr,
    },
    /// A neighbour advertisement of `target`'s link-layer address.
    NeighbourAdvertisement { target: Ipv6Addr, mac: MacAddr },
    /// Not for us or not interesting (other protocols, other hosts).
    Ignore,
    /// Malformed, truncated, a fragment, or a bad checksum: counted as a receive drop.
    Bad,
}

/// Classifies a received Ethernet frame for `iface`.
pub(crate) fn classify<'a>(frame: &'a [u8], iface: &Interface) -> Frame<'a> {
    let Ok((eth, rest)) = Ethernet2Header::from_slice(frame) else {
        return Frame::Bad;
    };
    let dst_mac = MacAddr(eth.destination);
    if dst_mac != iface.mac && !dst_mac.is_multicast() {
        return Frame::Ignore;
    }
    match eth.ether_type {
        EtherType::ARP => classify_arp(rest),
        EtherType::IPV4 => classify_v4(rest, iface),
        EtherType::IPV6 => classify_v6(rest, iface),
        _ => Frame::Ignore,
    }
}

fn classify_arp(p: &[u8]) -> Frame<'_> {
    // RFC 826: hardware type 1 (Ethernet), protocol 0x0800, hlen 6, plen 4.
    let Some(a) = p.get(..ARP_LEN) else {
        return Frame::Bad;
    };
    if a[0..2] != [0, 1] || a[2..4] != [0x08, 0x00] || a[4] != 6 || a[5] != 4 {
        return Frame::Ignore;
    }
    let op = u16::from_be_bytes([a[6], a[7]]);
    let request = match op {
        1 => true,
        2 => false,
        _ => return Frame::Ignore,
    };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&a[8..14]);
    let sender_ip = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let target_ip = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    Frame::Arp {
        request,
        sender_mac: MacAddr(mac),
        sender_ip,
        target_ip,
    }
}

fn classify_v4<'a>(p: &'a [u8], iface: &Interface) -> Frame<'a> {
    let Ok((h, _)) = Ipv4Header::from_slice(p) else {
        return Frame::Bad;
    };
    let dst = IpAddr::V4(Ipv4Addr::from(h.destination));
    if !iface.owns(dst) {
        return Frame::Ignore;
    }
    if h.protocol != IpNumber(IPPROTO_SCTP as u8) {
        return Frame::Ignore;
    }
    // RFC 1122 §3.2.1.2: a datagram with a bad header checksum is silently discarded.
    if h.calc_header_checksum() != h.header_checksum {
        return Frame::Bad;
    }
    if h.is_fragmenting_payload() {
        return Frame::Bad;
    }
    let hl = h.header_len();
    let total = usize::from(h.total_len);
    // Ethernet pads short frames: the IP total length says where the packet ends.
    let Some(payload) = p.get(hl..total).filter(|_| total >= hl) else {
        return Frame::Bad;
    };
    Frame::Sctp {
        src: IpAddr::V4(Ipv4Addr::from(h.source)),
        dst,
        payload,
    }
}

fn classify_v6<'a>(p: &'a [u8], iface: &Interface) -> Frame<'a> {
    let Ok((h, _)) = Ipv6Header::from_slice(p) else {
        return Frame::Bad;
    };
    let end = Ipv6Header::LEN + usize::from(h.payload_length);
    let Some(payload) = p.get(Ipv6Header::LEN..end) else {
        return Frame::Bad;
    };
    let src = Ipv6Addr::from(h.source);
    let dst = Ipv6Addr::from(h.destination);
    match h.next_header.0 {
        n if i32::from(n) == IPPROTO_SCTP => {
            if !iface.owns(IpAddr::V6(dst)) {
                return Frame::Ignore;
            }
            Frame::Sctp {
                src: IpAddr::V6(src),
                dst: IpAddr::V6(dst),
                payload,
            }
        }
        58 => classify_nd(&h, src, payload, iface),
        _ => Frame::Ignore,
    }
}

fn classify_nd<'a>(h: &Ipv6Header, src: Ipv6Addr, icmp: &'a [u8], iface: &Interface) -> Frame<'a> {
    // RFC 4861 §7.1.1/§7.1.2: hop limit 255, valid checksum, code 0, length >= 24.
    if h.hop_limit != 255 || icmp.len() < 24 {
        return Frame::Ignore;
    }
    let Ok(slice) = Icmpv6Slice::from_slice(icmp) else {
        return Frame::Bad;
    };
    if !slice.is_checksum_valid(h.source, h.destination) {
        return Frame::Bad;
    }
    if icmp[1] != 0 {
        return Frame::Ignore;
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&icmp[8..24]);
    let target = Ipv6Addr::from(target);
    let ll_option = |want: u8| -> Option<MacAddr> {
        let mut opts = &icmp[24..];
        while opts.len() >= 8 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                return None;
            }
            if opts[0] == want && len >= 8 {
                let mut m = [0u8; 6];
                m.copy_from_slice(&opts[2..8]);
                return Some(MacAddr(m));
            }
            opts = &opts[len..];
        }
        None
    };
    match icmp[0] {
        ICMPV6_NS => {
            if !iface.owns(IpAddr::V6(target)) {
                return Frame::Ignore;
            }
            Frame::NeighbourSolicitation {
                src,
                src_mac: ll_option(ND_OPT_SOURCE_LL),
                target,
            }
        }
        ICMPV6_NA => match ll_option(ND_OPT_TARGET_LL) {
            Some(mac) => Frame::NeighbourAdvertisement { target, mac },
            None => Frame::Ignore,
        },
        _ => Frame::Ignore,
    }
}

/// Writes the Ethernet and IP headers of an SCTP packet of `payload_len` bytes into the
/// front of `buf`; returns the header length, or `None` when `buf` is too short, the
/// families differ or the packet is too large for IP.
pub(crate) fn write_sctp_headers(
    buf: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: IpAddr,
    dst: IpAddr,
    payload_len: usize,
    ident: u16,
) -> Option<usize> {
    let len16 = u16::try_from(payload_len).ok()?;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let eth = Ethernet2Header {
                source: src_mac.0,
                destination: dst_mac.0,
                ether_type: EtherType::IPV4,
            };
            let mut ip = Ipv4Header::new(
                len16,
                64,
                IpNumber(IPPROTO_SCTP as u8),
                s.octets(),
                d.octets(),
            )
            .ok()?;
            // DF set: SCTP does path MTU discovery (RFC 9260 §7.3); a fresh identification
            // anyway, as RFC 6864 allows.
            ip.identification = ident;
            ip.header_checksum = ip.calc_header_checksum();
            let total = ETH_LEN + Ipv4Header::MIN_LEN;
            let out = buf.get_mut(..total)?;
            out[..ETH_LEN].copy_from_slice(&eth.to_bytes());
            out[ETH_LEN..].copy_from_slice(&ip.to_bytes());
            Some(total)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let eth = Ethernet2Header {
                source: src_mac.0,
                destination: dst_mac.0,
                ether_type: EtherType::IPV6,
            };
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: len16,
                next_header: IpNumber(IPPROTO_SCTP as u8),
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            };
            let total = ETH_LEN + Ipv6Header::LEN;
            let out = buf.get_mut(..total)?;
            out[..ETH_LEN].copy_from_slice(&eth.to_bytes());
            out[ETH_LEN..].copy_from_slice(&ip.to_bytes());
            Some(total)
        }
        _ => None,
    }
}

/// An ARP frame (RFC 826): a request for `target_ip` (to broadcast) or a reply to
/// `target_mac`.
pub(crate) fn arp_frame(
    request: bool,
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    let eth_dst = if request {
        MacAddr::BROADCAST
    } else {
        target_mac
    };
    f[0..6].copy_from_slice(&eth_dst.0);
    f[6..12].copy_from_slice(&our_mac.0);
    f[12..14].copy_from_slice(&EtherType::ARP.0.to_be_bytes());
    let a = &mut f[ETH_LEN..];
    a[0..2].copy_from_slice(&[0, 1]);
    a[2..4].copy_from_slice(&[0x08, 0x00]);
    a[4] = 6;
    a[5] = 4;
    a[6..8].copy_from_slice(&(if request { 1u16 } else { 2 }).to_be_bytes());
    a[8..14].copy_from_slice(&our_mac.0);
    a[14..18].copy_from_slice(&our_ip.octets());
    // A request's target hardware address is unknown: zeros.
    if !request {
        a[18..24].copy_from_slice(&target_mac.0);
    }
    a[24..28].copy_from_slice(&target_ip.octets());
    f
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub(crate) fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A neighbour solicitation for `target` (to its solicited-node group) or an advertisement
/// of our `target` address to `dst` at `dst_mac` (solicited, override).
pub(crate) fn nd_frame(
    solicitation: bool,
    our_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dst_mac: MacAddr,
    target: Ipv6Addr,
) -> Option<[u8; ND_FRAME_LEN]> {
    let mut f = [0u8; ND_FRAME_LEN];
    let eth = Ethernet2Header {
        source: our_mac.0,
        destination: dst_mac.0,
        ether_type: EtherType::IPV6,
    };
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: ND_LEN as u16,
        next_header: IpNumber(58),
        // RFC 4861 §7.1: hop limit 255.
        hop_limit: 255,
        source: src.octets(),
        destination: dst.octets(),
    };
    f[..ETH_LEN].copy_from_slice(&eth.to_bytes());
    f[ETH_LEN..ETH_LEN + Ipv6Header::LEN].copy_from_slice(&ip.to_bytes());
    // Body after the 4-byte ICMP header: flags/reserved, target, one link-layer option.
    let mut body = [0u8; ND_LEN - 4];
    let (kind, flags, opt) = if solicitation {
        (ICMPV6_NS, 0u8, ND_OPT_SOURCE_LL)
    } else if dst.is_multicast() {
        // RFC 4861 §7.2.4: an answer to a solicitation from the unspecified address MUST
        // clear the Solicited flag and go to all-nodes; override (O) stays set.
        (ICMPV6_NA, 0x20u8, ND_OPT_TARGET_LL)
    } else {
        // Solicited (S) and override (O) flags, RFC 4861 §7.2.4.
        (ICMPV6_NA, 0x60u8, ND_OPT_TARGET_LL)
    };
    body[0] = flags;
    body[4..20].copy_from_slice(&target.octets());
    body[20] = opt;
    body[21] = 1;
    body[22..28].copy_from_slice(&our_mac.0);
    let icmp = Icmpv6Type::Unknown {
        type_u8: kind,
        code_u8: 0,
        bytes5to8: [body[0], body[1], body[2], body[3]],
    };
    let checksum = icmp
        .calc_checksum(src.octets(), dst.octets(), &body[4..])
        .ok()?;
    let i = &mut f[ETH_LEN + Ipv6Header::LEN..];
    i[0] = kind;
    i[1] = 0;
    i[2..4].copy_from_slice(&checksum.to_be_bytes());
    i[4..].copy_from_slice(&body);
    Some(f)
}

/// Limits of the neighbour cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// Entries at most (resolved and incomplete): 1024.
    pub capacity: usize,
    /// Packets queued per unresolved neighbour while it resolves: 16 (RFC 1122 §2.3.2.2 asks
    /// for at least one).
    pub queue_per_entry: usize,
    /// Time between ARP requests / neighbour solicitations: 1 s (RFC 4861 RetransTimer).
    pub retry_interval: Duration,
    /// Requests before giving up and dropping the queued packets: 3 (RFC 4861
    /// MAX_MULTICAST_SOLICIT).
    pub max_requests: u32,
    /// How long a resolved entry is used before it is resolved again: 30 s.
    pub reachable_time: Duration,
}

impl Default for NeighbourConfig {
    fn default() -> Self {
        NeighbourConfig {
            capacity: 1024,
            queue_per_entry: 16,
            retry_interval: Duration::from_secs(1),
            max_requests: 3,
            reachable_time: Duration::from_secs(30),
        }
    }
}

/// A packet waiting for its next hop to resolve.
#[derive(Debug)]
pub(crate) struct Queued {
    pub meta: TxMeta,
    pub src: IpAddr,
    pub data: Vec<u8>,
}

#[derive(Debug)]
enum Entry {
    Resolved {
        mac: MacAddr,
        until: Instant,
    },
    Incomplete {
        requests: u32,
        next: Instant,
        queue: VecDeque<Queued>,
        /// Interface index that asked (the request goes out there).
        iface: usize,
    },
}

/// What a cache lookup tells the sender.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Send to this MAC.
    Resolved(MacAddr),
    /// Queued; send a request now (first packet to this neighbour).
    QueuedSendRequest,
    /// Queued behind a pending resolution.
    Queued,
    /// Dropped: the queue or the table is full.
    Dropped,
}

/// What the periodic service asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// Request `ip` again on interface `iface`.
    Request { ip: IpAddr, iface: usize },
}

/// The bounded neighbour cache shared by the queues of a link set.
#[derive(Debug)]
pub(crate) struct Neighbours {
    config: NeighbourConfig,
    entries: HashMap<IpAddr, Entry>,
    /// Packets dropped for want of resolution (queue full, table full, gave up).
    pub dropped: u64,
}

impl Neighbours {
    pub fn new(config: NeighbourConfig) -> Self {
        Neighbours {
            config,
            entries: HashMap::with_capacity(config.capacity.min(4096)),
            dropped: 0,
        }
    }

    /// The MAC of `ip` if resolved and fresh.
    pub fn get(&self, ip: IpAddr, now: Instant) -> Option<MacAddr> {
        match self.entries.get(&ip) {
            Some(Entry::Resolved { mac, until }) if *until > now => Some(*mac),
            _ => None,
        }
    }

    /// Looks `ip` up for a packet; queues a copy of it when unresolved (`make` builds it
    /// only then, so resolved lookups copy nothing).
    pub fn lookup_or_queue(
        &mut self,
        ip: IpAddr,
        now: Instant,
        iface: usize,
        make: impl FnOnce() -> Queued,
    ) -> Lookup {
        if let Some(mac) = self.get(ip, now) {
            return Lookup::Resolved(mac);
        }
        let limit = self.config.queue_per_entry;
        match self.entries.get_mut(&ip) {
            Some(Entry::Incomplete { queue, .. }) => {
                if queue.len() >= limit {
                    self.dropped += 1;
                    return Lookup::Dropped;
                }
                queue.push_back(make());
                Lookup::Queued
            }
            // Expired entries are resolved again from scratch.
            _ => {
                self.entries.remove(&ip);
                if self.entries.len() >= self.config.capacity && !self.evict(now) {
                    self.dropped += 1;
                    return Lookup::Dropped;
                }
                let mut queue = VecDeque::new();
                if limit > 0 {
                    queue.push_back(make());
                } else {
                    self.dropped += 1;
                }
                self.entries.insert(
                    ip,
                    Entry::Incomplete {
                        requests: 1,
                        next: now + self.config.retry_interval,
                        queue,
                        iface,
                    },
                );
                Lookup::QueuedSendRequest
            }
        }
    }

    /// Frees one slot: an expired resolved entry, else any resolved entry. Incomplete entries
    /// are kept (they hold packets and end by themselves after `max_requests`).
    fn evict(&mut self, now: Instant) -> bool {
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, e)| match e {
                Entry::Resolved { until, .. } => Some((*ip, *until <= now)),
                Entry::Incomplete { .. } => None,
            })
            .max_by_key(|(_, expired)| *expired)
            .map(|(ip, _)| ip);
        match victim {
            Some(ip) => {
                self.entries.remove(&ip);
                true
            }
            None => false,
        }
    }

    /// Records `ip` at `mac`. `create` allows a new entry (RFC 826: only when the packet was
    /// addressed to us); otherwise only an existing entry is updated. Returns the packets that
    /// waited for it.
    pub fn learn(
        &mut self,
        ip: IpAddr,
        mac: MacAddr,
        now: Instant,
        create: bool,
    ) -> VecDeque<Queued> {
        if mac.is_multicast() || ip.is_unspecified() || ip.is_multicast() {
            return VecDeque::new();
        }
        let exists = self.entries.contains_key(&ip);
        if !exists && (!create || (self.entries.len() >= self.config.capacity && !self.evict(now)))
        {
            return VecDeque::new();
        }
        let old = self.entries.insert(
            ip,
            Entry::Resolved {
                mac,
                until: now + self.config.reachable_time,
            },
        );
        match old {
            Some(Entry::Incomplete { queue, .. }) => queue,
            _ => VecDeque::new(),
        }
    }

    /// Retries due requests and gives up on neighbours that never answered (their packets
    /// are dropped and counted). Returns the requests to send.
    pub fn service(&mut self, now: Instant, out: &mut Vec<Service>) {
        let max = self.config.max_requests;
        let interval = self.config.retry_interval;
        let mut dropped = 0u64;
        self.entries.retain(|ip, e| match e {
            Entry::Resolved { .. } => true,
            Entry::Incomplete {
                requests,
                next,
                queue,
                iface,
            } => {
                if *next > now {
                    return true;
                }
                if *requests >= max {
                    dropped += queue.len() as u64;
                    return false;
                }
                *requests += 1;
                *next = now + interval;
                out.push(Service::Request {
                    ip: *ip,
                    iface: *iface,
                });
                true
            }
        });
        self.dropped += dropped;
    }

    /// The number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);

    fn iface() -> Interface {
        Interface {
            mac: OUR_MAC,
            v4: Some("198.18.0.1/24".parse().unwrap()),
            v6: Some("fd00::1/64".parse().unwrap()),
            gateway4: Some(Ipv4Addr::new(198, 18, 0, 254)),
            gateway6: None,
        }
    }

    fn meta() -> TxMeta {
        TxMeta {
            src: None,
            dst: "198.18.0.2".parse().unwrap(),
            encaps_port: 0,
        }
    }

    fn queued(n: u8) -> Queued {
        Queued {
            meta: meta(),
            src: "198.18.0.1".parse().unwrap(),
            data: vec![n],
        }
    }

    #[test]
    fn prefixes_parse_and_contain_their_network() {
        let p: IpPrefix = "198.18.0.1/24".parse().unwrap();
        assert!(p.contains("198.18.0.200".parse().unwrap()));
        assert!(!p.contains("198.18.1.1".parse().unwrap()));
        assert!(!p.contains("fd00::1".parse().unwrap()));
        let p6: IpPrefix = "fd00::1/64".parse().unwrap();
        assert!(p6.contains("fd00::ffff".parse().unwrap()));
        assert!(!p6.contains("fd01::1".parse().unwrap()));
        assert_eq!("10.0.0.1".parse::<IpPrefix>().unwrap().len, 32);
        assert!("10.0.0.1/33".parse::<IpPrefix>().is_err());
        assert!("0.0.0.0/8".parse::<IpPrefix>().is_err());
        assert!("nonsense".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn next_hop_is_the_peer_on_link_and_the_gateway_off_link() {
        let i = iface();
        let on: IpAddr = "198.18.0.9".parse().unwrap();
        assert_eq!(i.next_hop(on), Some(on));
        assert_eq!(
            i.next_hop("203.0.113.5".parse().unwrap()),
            Some("198.18.0.254".parse().unwrap())
        );
        assert_eq!(i.next_hop("2001:db8::1".parse().unwrap()), None);
        let ll: IpAddr = "fe80::5".parse().unwrap();
        assert_eq!(i.next_hop(ll), Some(ll));
    }

    #[test]
    fn sctp_frames_round_trip_through_the_header_writer_and_the_classifier() {
        let i = iface();
        for (src, dst) in [("198.18.0.2", "198.18.0.1"), ("fd00::2", "fd00::1")] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let payload = [7u8; 100];
            let mut buf = [0u8; 256];
            let hl = write_sctp_headers(&mut buf, PEER_MAC, OUR_MAC, src, dst, 100, 1).unwrap();
            buf[hl..hl + 100].copy_from_slice(&payload);
            // Ethernet padding after the IP packet must not become payload.
            let frame = &buf[..hl + 100 + 6];
            assert_eq!(
                classify(frame, &i),
                Frame::Sctp {
                    src,
                    dst,
                    payload: &payload
                }
            );
        }
    }

    #[test]
    fn corrupted_or_foreign_ipv4_packets_are_not_delivered() {
        let i = iface();
        let src: IpAddr = "198.18.0.2".parse().unwrap();
        let mut buf = [0u8; 200];
        let hl = write_sctp_headers(
            &mut buf,
            PEER_MAC,
            OUR_MAC,
            src,
            "198.18.0.1".parse().unwrap(),
            50,
            9,
        )
        .unwrap();
        let good = buf;
        // Bad header checksum.
        buf[ETH_LEN + 8] ^= 1;
        assert_eq!(classify(&buf[..hl + 50], &i), Frame::Bad);
        // Fragment (MF set).
        let mut frag = good;
        frag[ETH_LEN + 6] |= 0x20;
        let ck = Ipv4Header::from_slice(&frag[ETH_LEN..])
            .unwrap()
            .0
            .calc_header_checksum();
        frag[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(classify(&frag[..hl + 50], &i), Frame::Bad);
        // Truncated below the total length.
        assert_eq!(classify(&good[..hl + 10], &i), Frame::Bad);
        // Another host's address, another host's MAC.
        let mut other = [0u8; 200];
        write_sctp_headers(
            &mut other,
            PEER_MAC,
            OUR_MAC,
            src,
            "198.18.0.7".parse().unwrap(),
            50,
            1,
        )
        .unwrap();
        assert_eq!(classify(&other[..hl + 50], &i), Frame::Ignore);
        let mut mac = good;
        mac[0..6].copy_from_slice(&PEER_MAC.0);
        assert_eq!(classify(&mac[..hl + 50], &i), Frame::Ignore);
        // Nothing at all.
        assert_eq!(classify(&good[..5], &i), Frame::Bad);
    }

    #[test]
    fn arp_requests_and_replies_parse_back() {
        let i = iface();
        let our: Ipv4Addr = "198.18.0.1".parse().unwrap();
        let peer: Ipv4Addr = "198.18.0.2".parse().unwrap();
        // A peer asks for us (to broadcast).
        let req = arp_frame(true, PEER_MAC, peer, MacAddr::default(), our);
        assert_eq!(&req[0..6], &MacAddr::BROADCAST.0);
        assert_eq!(
            classify(&req, &i),
            Frame::Arp {
                request: true,
                sender_mac: PEER_MAC,
                sender_ip: peer,
                target_ip: our
            }
        );
        // Our reply, as the peer sees it.
        let rep = arp_frame(false, OUR_MAC, our, PEER_MAC, peer);
        let peer_iface = Interface {
            mac: PEER_MAC,
            ..iface()
        };
        assert_eq!(
            classify(&rep, &peer_iface),
            Frame::Arp {
                request: false,
                sender_mac: OUR_MAC,
                sender_ip: our,
                target_ip: peer
            }
        );
        assert_eq!(classify(&req[..20], &i), Frame::Bad);
    }

    #[test]
    fn neighbour_solicitations_and_advertisements_parse_back_with_valid_checksums() {
        let i = iface();
        let our: Ipv6Addr = "fd00::1".parse().unwrap();
        let peer: Ipv6Addr = "fd00::2".parse().unwrap();
        let group = solicited_node(our);
        assert_eq!(group, "ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap());
        let ns = nd_frame(
            true,
            PEER_MAC,
            peer,
            group,
            MacAddr::ipv6_multicast(group),
            our,
        )
        .unwrap();
        assert_eq!(
            classify(&ns, &i),
            Frame::NeighbourSolicitation {
                src: peer,
                src_mac: Some(PEER_MAC),
                target: our
            }
        );
        let na = nd_frame(false, PEER_MAC, peer, our, OUR_MAC, peer).unwrap();
        assert_eq!(
            classify(&na, &i),
            Frame::NeighbourAdvertisement {
                target: peer,
                mac: PEER_MAC
            }
        );
        let flags = |f: &[u8]| f[ETH_LEN + Ipv6Header::LEN + 4];
        assert_eq!(flags(&na), 0x60, "solicited + override");
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        let dad_answer = nd_frame(
            false,
            OUR_MAC,
            our,
            all_nodes,
            MacAddr::ipv6_multicast(all_nodes),
            our,
        )
        .unwrap();
        assert_eq!(
            flags(&dad_answer),
            0x20,
            "RFC 4861 §7.2.4: S clear towards all-nodes"
        );
        // A flipped bit breaks the ICMPv6 checksum.
        let mut bad = na;
        bad[ND_FRAME_LEN - 1] ^= 1;
        assert_eq!(classify(&bad, &i), Frame::Bad);
        // A solicitation for someone else is not ours to answer.
        let other = nd_frame(
            true,
            PEER_MAC,
            peer,
            group,
            MacAddr::ipv6_multicast(group),
            peer,
        )
        .unwrap();
        assert_eq!(classify(&other, &i), Frame::Ignore);
    }

    #[test]
    fn unresolved_neighbours_queue_a_bounded_number_of_packets_until_learned() {
        let t0 = Instant::now();
        let mut n = Neighbours::new(NeighbourConfig {
            queue_per_entry: 2,
            ..NeighbourConfig::default()
        });
        let ip: IpAddr = "198.18.0.2".parse().unwrap();
        assert_eq!(
            n.lookup_or_queue(ip, t0, 0, || queued(1)),
            Lookup::QueuedSendRequest
        );
        assert_eq!(n.lookup_or_queue(ip, t0, 0, || queued(2)), Lookup::Queued);
        assert_eq!(n.lookup_or_queue(ip, t0, 0, || queued(3)), Lookup::Dropped);
        assert_eq!(n.dropped, 1);
        let released = n.learn(ip, PEER_MAC, t0, false);
        let order: Vec<u8> = released.iter().map(|q| q.data[0]).collect();
        assert_eq!(order, vec![1, 2]);
        assert_eq!(
            n.lookup_or_queue(ip, t0, 0, || queued(4)),
            Lookup::Resolved(PEER_MAC)
        );
        // Stale after the reachable time: resolved again.
        let later = t0 + NeighbourConfig::default().reachable_time + Duration::from_secs(1);
        assert_eq!(n.get(ip, later), None);
        assert_eq!(
            n.lookup_or_queue(ip, later, 0, || queued(5)),
            Lookup::QueuedSendRequest
        );
    }

    #[test]
    fn unanswered_requests_are_retried_then_abandoned_with_their_packets_counted() {
        let t0 = Instant::now();
        let cfg = NeighbourConfig::default();
        let mut n = Neighbours::new(cfg);
        let ip: IpAddr = "198.18.0.3".parse().unwrap();
        n.lookup_or_queue(ip, t0, 0, || queued(1));
        n.lookup_or_queue(ip, t0, 0, || queued(2));
        let mut out = Vec::new();
        n.service(t0, &mut out);
        assert!(out.is_empty(), "not due yet");
        let mut t = t0;
        for _ in 1..cfg.max_requests {
            t += cfg.retry_interval;
            out.clear();
            n.service(t, &mut out);
            assert_eq!(out, vec![Service::Request { ip, iface: 0 }]);
        }
        t += cfg.retry_interval;
        out.clear();
        n.service(t, &mut out);
        assert!(out.is_empty());
        assert_eq!(n.len(), 0, "abandoned");
        assert_eq!(n.dropped, 2);
    }

    #[test]
    fn the_cache_never_grows_beyond_its_capacity_and_unsolicited_bindings_create_nothing() {
        let t0 = Instant::now();
        let mut n = Neighbours::new(NeighbourConfig {
            capacity: 4,
            ..NeighbourConfig::default()
        });
        // Gratuitous/unsolicited information does not create entries (RFC 826 merge rule).
        assert!(
            n.learn("198.18.0.50".parse().unwrap(), PEER_MAC, t0, false)
                .is_empty()
        );
        assert_eq!(n.len(), 0);
        for k in 0..100u8 {
            n.learn(IpAddr::V4(Ipv4Addr::new(198, 18, 1, k)), PEER_MAC, t0, true);
            assert!(n.len() <= 4);
        }
        // Four incomplete entries fill it; a fifth neighbour is refused, not queued.
        let mut m = Neighbours::new(NeighbourConfig {
            capacity: 4,
            ..NeighbourConfig::default()
        });
        for k in 0..4u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(198, 18, 2, k));
            assert_eq!(
                m.lookup_or_queue(ip, t0, 0, || queued(k)),
                Lookup::QueuedSendRequest
            );
        }
        let ip = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 9));
        assert_eq!(m.lookup_or_queue(ip, t0, 0, || queued(9)), Lookup::Dropped);
        assert!(
            m.learn(PEER_MAC_IP, MacAddr::BROADCAST, t0, true)
                .is_empty()
        );
    }

    const PEER_MAC_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77));
}
