//! A deterministic network simulator for tests (STYLE.md §9), enabled by the `sim` feature.
//!
//! A [`Network`] holds nodes (each an [`Endpoint`] with one or more addresses) and
//! directed links between them with latency, jitter (which reorders), loss, duplication,
//! an MTU and an up/down switch, all driven by a virtual clock and a seeded RNG: the same
//! seed gives the same run, packet for packet. Optionally every delivered packet is written
//! to a pcap capture.
//!
//! The driver loop ([`Network::step`]) collects every packet the nodes want to send,
//! advances the clock to the next event (a delivery or a node's timer), delivers, fires
//! timers, and checks that no node reports a deadline in the past after its timers were
//! handled (a busy loop in the making).
//!
//! The simulator uses no OS facility; crates built on `sctp-stack` enable the feature in
//! their dev-dependencies to test their own protocols over it.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::association::AssociationId;
use crate::association::Event;
use crate::endpoint::{Datagram, Endpoint};
use crate::pcap::{PcapWriter, SCTP_UDP_TUNNELING_PORT};
use crate::time::Timestamp;

/// Behaviour of the link from one node to another.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// One-way delay.
    pub latency: Duration,
    /// Extra random delay in `0..jitter`; packets overtake each other when it exceeds the
    /// gap between them.
    pub jitter: Duration,
    /// Probability that a packet is lost, in `0.0..=1.0`.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Packets longer than this (SCTP bytes) are dropped, as by a link that cannot fragment.
    pub mtu: usize,
    /// A link that is down drops everything.
    pub up: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            mtu: 65_535,
            up: true,
        }
    }
}

impl LinkConfig {
    /// A link with the given one-way latency and nothing else.
    pub fn with_latency(latency: Duration) -> Self {
        LinkConfig {
            latency,
            ..LinkConfig::default()
        }
    }
}

/// One simulated host.
#[derive(Debug)]
pub struct Node {
    /// The SCTP endpoint of the host.
    pub endpoint: Endpoint,
    /// The host's addresses.
    pub addrs: Vec<IpAddr>,
    /// Events reported by the endpoint and not yet taken by the test.
    pub events: Vec<(AssociationId, Event)>,
    /// The UDP port used when packets are UDP-encapsulated.
    pub udp_port: u16,
    /// Packets this node sent.
    pub sent: u64,
    /// Packets delivered to this node.
    pub received: u64,
}

impl Node {
    /// Removes and returns the events so far.
    pub fn take_events(&mut self) -> Vec<(AssociationId, Event)> {
        core::mem::take(&mut self.events)
    }

    /// Whether an event equal to `e` was reported (and not yet taken).
    pub fn has_event(&self, e: &Event) -> bool {
        self.events.iter().any(|(_, x)| x == e)
    }

    /// The association that reported an event equal to `e`, if any.
    pub fn assoc_with_event(&self, e: &Event) -> Option<AssociationId> {
        self.events.iter().find(|(_, x)| x == e).map(|(id, _)| *id)
    }
}

#[derive(Debug)]
struct InFlight {
    to: usize,
    src: IpAddr,
    dst: IpAddr,
    encaps_port: u16,
    data: Vec<u8>,
}

/// Counters of the simulated network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Packets handed to the network.
    pub sent: u64,
    /// Packets delivered (duplicates count twice).
    pub delivered: u64,
    /// Packets lost by the links' loss probability.
    pub lost: u64,
    /// Packets dropped for a link being down, an MTU, or no route.
    pub dropped: u64,
    /// Packets duplicated.
    pub duplicated: u64,
}

/// A packet as seen by a [`Network::set_filter`] closure.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The virtual time the packet is sent.
    pub now: Timestamp,
    /// Sending node.
    pub from: usize,
    /// Receiving node.
    pub to: usize,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The SCTP packet.
    pub data: &'a [u8],
}

/// A closure that sees every packet handed to the network and returns false to drop it.
pub type Filter = Box<dyn FnMut(Seen<'_>) -> bool + Send>;

/// The simulated network. See the [module documentation](self).
pub struct Network {
    now: Timestamp,
    rng: ChaCha20Rng,
    nodes: Vec<Node>,
    routes: HashMap<IpAddr, usize>,
    links: HashMap<(usize, usize), LinkConfig>,
    default_link: LinkConfig,
    in_flight: BinaryHeap<Reverse<(Timestamp, u64)>>,
    packets: HashMap<u64, InFlight>,
    seq: u64,
    buf: Vec<u8>,
    pcap: Option<PcapWriter<Vec<u8>>>,
    stats: NetStats,
    /// Upper bound of steps without the clock moving before `step` reports a busy loop.
    stall_limit: u32,
    filter: Option<Filter>,
    /// Addresses whose interface is down: packets from or to them are dropped.
    down: Vec<IpAddr>,
}

impl core::fmt::Debug for Network {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// An empty network with a seeded RNG and links of `LinkConfig::default()`.
    pub fn new(seed: u64) -> Network {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Network {
            now: Timestamp::ZERO,
            rng: ChaCha20Rng::from_seed(s),
            nodes: Vec::new(),
            routes: HashMap::new(),
            links: HashMap::new(),
            default_link: LinkConfig::default(),
            in_flight: BinaryHeap::new(),
            packets: HashMap::new(),
            seq: 0,
            buf: vec![0; 65_535],
            pcap: None,
            stats: NetStats::default(),
            stall_limit: 100_000,
            filter: None,
            down: Vec::new(),
        }
    }

    /// Installs a closure that sees every packet sent (before any link effect) and may drop it by
    /// returning false; tests use it to observe chunks and to drop chosen packets.
    pub fn set_filter(&mut self, f: impl FnMut(Seen<'_>) -> bool + Send + 'static) {
        self.filter = Some(Box::new(f));
    }

    /// Removes the filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Records every delivered packet into an in-memory pcap capture.
    pub fn capture(&mut self) {
        self.pcap = PcapWriter::new(Vec::new()).ok();
    }

    /// The capture so far (empty without [`Network::capture`]).
    pub fn pcap_bytes(&mut self) -> Vec<u8> {
        match self.pcap.take() {
            Some(w) => {
                let bytes = w.into_inner();
                self.pcap = PcapWriter::new(Vec::new()).ok();
                bytes
            }
            None => Vec::new(),
        }
    }

    /// Adds a node with an endpoint and its addresses; returns its index.
    pub fn add_node(&mut self, endpoint: Endpoint, addrs: &[IpAddr]) -> usize {
        let idx = self.nodes.len();
        for a in addrs {
            self.routes.insert(*a, idx);
        }
        self.nodes.push(Node {
            endpoint,
            addrs: addrs.to_vec(),
            events: Vec::new(),
            udp_port: SCTP_UDP_TUNNELING_PORT,
            sent: 0,
            received: 0,
        });
        idx
    }

    /// The node with index `i`.
    ///
    /// # Panics
    /// If there is no such node (a bug in the test).
    pub fn node(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// Sets the link from `from` to `to`.
    pub fn set_link(&mut self, from: usize, to: usize, link: LinkConfig) {
        self.links.insert((from, to), link);
    }

    /// Sets both directions between `a` and `b`.
    pub fn set_links(&mut self, a: usize, b: usize, link: LinkConfig) {
        self.set_link(a, b, link.clone());
        self.set_link(b, a, link);
    }

    /// The configuration used for pairs without an explicit link.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.default_link = link;
    }

    /// Takes the interface of `addr` down (`up == false`) or back up: while it is down,
    /// every packet from or to the address is dropped, including those already in flight
    /// when they arrive (a path failure of a multi-homed host).
    pub fn set_address_up(&mut self, addr: IpAddr, up: bool) {
        self.down.retain(|a| *a != addr);
        if !up {
            self.down.push(addr);
        }
    }

    /// Changes the link from `from` to `to` in place (e.g. to take it down).
    pub fn link_mut(&mut self, from: usize, to: usize) -> &mut LinkConfig {
        let default = self.default_link.clone();
        self.links.entry((from, to)).or_insert(default)
    }

    /// Injects a raw packet as if `src` had sent it to `dst` (for hand-built peer
    /// packets); it is delivered at the current time without link effects.
    pub fn inject(&mut self, src: IpAddr, dst: IpAddr, encaps_port: u16, data: &[u8]) {
        let Some(&to) = self.routes.get(&dst) else {
            return;
        };
        let now = self.now;
        self.deliver(to, src, dst, encaps_port, data, now);
    }

    fn random_unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn deliver(
        &mut self,
        to: usize,
        src: IpAddr,
        dst: IpAddr,
        encaps_port: u16,
        data: &[u8],
        now: Timestamp,
    ) {
        self.stats.delivered += 1;
        if let Some(p) = self.pcap.as_mut() {
            let _ = if encaps_port != 0 {
                let dst_port = self
                    .nodes
                    .get(to)
                    .map_or(SCTP_UDP_TUNNELING_PORT, |n| n.udp_port);
                p.write_sctp_over_udp(
                    now,
                    SocketAddr::new(src, encaps_port),
                    SocketAddr::new(dst, dst_port),
                    data,
                )
            } else {
                p.write_sctp(now, src, dst, data)
            };
        }
        if let Some(n) = self.nodes.get_mut(to) {
            n.received += 1;
            n.endpoint.handle_datagram(
                now,
                Datagram {
                    src,
                    dst,
                    encaps_port,
                    data,
                },
            );
            while let Some(e) = n.endpoint.poll_event() {
                n.events.push(e);
            }
        }
    }

    /// Moves every packet the nodes want to send into the network.
    fn collect_transmits(&mut self) {
        let now = self.now;
        for from in 0..self.nodes.len() {
            loop {
                let (t, data) = {
                    let n = &mut self.nodes[from];
                    let Some(t) = n.endpoint.poll_transmit(now, &mut self.buf) else {
                        break;
                    };
                    while let Some(e) = n.endpoint.poll_event() {
                        n.events.push(e);
                    }
                    n.sent += 1;
                    (t, self.buf[..t.len].to_vec())
                };
                self.stats.sent += 1;
                let src = t
                    .src
                    .or_else(|| {
                        self.nodes[from]
                            .addrs
                            .iter()
                            .find(|a| a.is_ipv4() == t.dst.is_ipv4())
                            .copied()
                    })
                    .unwrap_or(t.dst);
                let Some(&to) = self.routes.get(&t.dst) else {
                    self.stats.dropped += 1;
                    continue;
                };
                let link = self
                    .links
                    .get(&(from, to))
                    .cloned()
                    .unwrap_or_else(|| self.default_link.clone());
                if let Some(f) = self.filter.as_mut()
                    && !f(Seen {
                        now,
                        from,
                        to,
                        src,
                        dst: t.dst,
                        data: &data,
                    })
                {
                    self.stats.dropped += 1;
                    continue;
                }
                // A downed interface drops what it would send or receive; the filter above
                // still sees the attempt (tests check what went to an unreachable address).
                if !link.up
                    || data.len() > link.mtu
                    || self.down.contains(&src)
                    || self.down.contains(&t.dst)
                {
                    self.stats.dropped += 1;
                    continue;
                }

                if link.loss > 0.0 && self.random_unit() < link.loss {
                    self.stats.lost += 1;
                    continue;
                }
                let copies = if link.duplicate > 0.0 && self.random_unit() < link.duplicate {
                    self.stats.duplicated += 1;
                    2
                } else {
                    1
                };
                // With UDP encapsulation the receiver sees the sender's UDP port.
                let encaps = if t.encaps_port != 0 {
                    self.nodes[from].udp_port
                } else {
                    0
                };
                for _ in 0..copies {
                    let jitter = if link.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        let j = crate::time::duration_micros(link.jitter).max(1);
                        Duration::from_micros(self.rng.next_u64() % j)
                    };
                    let at = now + link.latency + jitter;
                    self.seq += 1;
                    self.in_flight.push(Reverse((at, self.seq)));
                    self.packets.insert(
                        self.seq,
                        InFlight {
                            to,
                            src,
                            dst: t.dst,
                            encaps_port: encaps,
                            data: data.clone(),
                        },
                    );
                }
            }
        }
    }

    /// The next time something happens: a delivery or a node timer.
    pub fn next_event_time(&self) -> Option<Timestamp> {
        let delivery = self.in_flight.peek().map(|Reverse((t, _))| *t);
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.poll_timeout())
            .min();
        match (delivery, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One round: send what is pending, advance the clock to the next event (never past
    /// `limit`), deliver and fire timers. Returns false when nothing is left to happen
    /// before `limit`.
    ///
    /// # Panics
    /// If a node keeps reporting a deadline that is already due after its timers were
    /// handled (a busy loop).
    pub fn step(&mut self, limit: Timestamp) -> bool {
        self.collect_transmits();
        let Some(next) = self.next_event_time() else {
            return false;
        };
        if next > limit {
            self.now = self.now.max(limit);
            return false;
        }
        if next > self.now {
            self.now = next;
        }
        let now = self.now;
        while let Some(&Reverse((t, seq))) = self.in_flight.peek() {
            if t > now {
                break;
            }
            self.in_flight.pop();
            if let Some(p) = self.packets.remove(&seq) {
                if self.down.contains(&p.src) || self.down.contains(&p.dst) {
                    self.stats.dropped += 1;
                    continue;
                }
                self.deliver(p.to, p.src, p.dst, p.encaps_port, &p.data, now);
            }
        }
        for n in &mut self.nodes {
            if n.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                n.endpoint.handle_timeout(now);
                while let Some(e) = n.endpoint.poll_event() {
                    n.events.push(e);
                }
                if let Some(t) = n.endpoint.poll_timeout() {
                    assert!(t > now, "busy loop: deadline {t:?} still due at {now:?}");
                }
            }
        }
        true
    }

    /// Runs until `done` returns true or the clock passes `now + max`. Returns whether
    /// `done` became true.
    ///
    /// # Panics
    /// On a busy loop (see [`Network::step`]) or when too many steps pass without the
    /// clock advancing.
    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&mut Network) -> bool) -> bool {
        let limit = self.now + max;
        let mut stalled = 0u32;
        loop {
            if done(self) {
                return true;
            }
            let before = self.now;
            if !self.step(limit) {
                // Deliver whatever is pending at the limit, then check a last time.
                self.collect_transmits();
                return done(self);
            }
            if self.now == before {
                stalled += 1;
                assert!(stalled < self.stall_limit, "no progress at {before:?}");
            } else {
                stalled = 0;
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }
}
