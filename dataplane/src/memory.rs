//! In-memory links: an N-node packet fabric without an operating system.
//!
//! A [`MemoryFabric`] connects nodes, each owning one or more IP addresses; every node is a
//! [`MemoryLink`] implementing [`Link`]. Each directed address pair (source, destination) has
//! [`PathParams`]: latency, jitter, loss, duplication, reordering, an MTU, an optional
//! bottleneck rate with a queue limit, and an up/down switch. All randomness comes from one
//! ChaCha8 generator seeded by [`FabricConfig::seed`], so a run is reproducible bit for bit
//! when the fabric is driven from one thread.
//!
//! Two clocks ([`FabricClock`]):
//! - **Manual** (deterministic tests and harnesses): time moves only through
//!   [`MemoryFabric::advance_to`]. [`Link::wait`] never blocks (virtual time cannot pass while
//!   the caller sleeps); the driver asks [`MemoryFabric::next_delivery`] for the next event
//!   and advances to `min(next delivery, next stack timer)`.
//! - **RealTime** (benchmarks, `--backend memory`): time is a monotonic clock since the
//!   fabric was created; nodes may live on different threads and [`Link::wait`] sleeps until
//!   the next delivery, the timeout or the [`Waker`].
//!
//! Packets in flight live in buffers from a bounded [`BufferPool`]: after warm-up a fabric
//! allocates nothing per packet. When the pool is exhausted, new packets are dropped and
//! counted ([`FabricStats::pool_exhausted`]), like a router out of buffers.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sctp_stack::time::{Timestamp, duration_micros};

use crate::link::{
    Backend, Interest, Link, LinkError, LinkStats, Readiness, UDP_HEADER_LEN, WakeTarget, Waker,
    ip_header_len,
};
use crate::packet::{BufferPool, PacketBuf, RxBatch, RxMeta, TxBatch};

/// How a fabric tells time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FabricClock {
    /// Time advances only through [`MemoryFabric::advance_to`] (deterministic).
    #[default]
    Manual,
    /// Time is a monotonic clock started when the fabric was created.
    RealTime,
}

/// The behaviour of one direction of one address pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathParams {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet (reorders packets when it
    /// exceeds their spacing).
    pub jitter: Duration,
    /// Probability that a packet is lost, in `[0, 1]`.
    pub loss: f64,
    /// Probability that a packet is delivered twice, in `[0, 1]`.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay`, in `[0, 1]`.
    pub reorder: f64,
    /// The extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// IP MTU: packets whose size on the wire (SCTP packet plus IP and, for UDP-encapsulating
    /// nodes, UDP header) exceeds it are dropped, as a router with DF set would.
    pub mtu: usize,
    /// Bottleneck rate in bits per second (`None` = infinitely fast).
    pub rate_bps: Option<u64>,
    /// With a rate: the most queueing delay a packet may face before it is tail-dropped.
    pub max_queue_delay: Duration,
    /// Whether the path forwards packets at all.
    pub up: bool,
}

impl Default for PathParams {
    /// A perfect 1500-byte-MTU path with no delay.
    fn default() -> Self {
        PathParams {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
            rate_bps: None,
            max_queue_delay: Duration::from_millis(100),
            up: true,
        }
    }
}

/// The configuration of a [`MemoryFabric`].
#[derive(Clone, Debug, PartialEq)]
pub struct FabricConfig {
    /// Seed of the fabric's random generator.
    pub seed: u64,
    /// Manual (deterministic) or real time.
    pub clock: FabricClock,
    /// Parameters of every path not configured with [`MemoryFabric::set_path`].
    pub default_path: PathParams,
    /// The largest SCTP packet a node can send (the buffer size). Larger packets are dropped.
    pub max_packet_size: usize,
    /// The most packets in flight in the whole fabric.
    pub max_in_flight: usize,
}

impl Default for FabricConfig {
    fn default() -> Self {
        FabricConfig {
            seed: 0,
            clock: FabricClock::Manual,
            default_path: PathParams::default(),
            max_packet_size: 9216,
            max_in_flight: 65536,
        }
    }
}

/// Network-side counters of a fabric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FabricStats {
    /// Packets placed in flight (duplicates included).
    pub sent: u64,
    /// Packets handed to a receiving node.
    pub delivered: u64,
    /// Packets lost by the loss model.
    pub lost: u64,
    /// Extra copies made by the duplication model.
    pub duplicated: u64,
    /// Packets delayed by the reordering model.
    pub reordered: u64,
    /// Packets dropped for exceeding the path MTU.
    pub mtu_dropped: u64,
    /// Packets dropped because the path was down.
    pub down_dropped: u64,
    /// Packets tail-dropped at a rate-limited path's queue.
    pub queue_dropped: u64,
    /// Packets to an address no node owns, or from an address the sender does not own.
    pub unroutable: u64,
    /// Packets dropped because the fabric's buffer pool was exhausted.
    pub pool_exhausted: u64,
}

struct InFlight {
    deliver_at: Timestamp,
    seq: u64,
    meta: RxMeta,
    buf: PacketBuf,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at, self.seq).cmp(&(other.deliver_at, other.seq))
    }
}

struct Node {
    addrs: Vec<IpAddr>,
    queue: BinaryHeap<Reverse<InFlight>>,
    woken: bool,
    stats: LinkStats,
    cv: Arc<Condvar>,
}

#[derive(Clone, Copy)]
struct PathState {
    params: PathParams,
    /// When the bottleneck finishes serializing the last queued packet.
    busy_until: Timestamp,
}

struct FabricState {
    nodes: Vec<Node>,
    owner: HashMap<IpAddr, usize>,
    paths: HashMap<(IpAddr, IpAddr), PathState>,
    default_path: PathParams,
    rng: ChaCha8Rng,
    pool: BufferPool,
    seq: u64,
    now: Timestamp,
    stats: FabricStats,
}

struct Shared {
    state: Mutex<FabricState>,
    clock: FabricClock,
    epoch: Instant,
    max_packet_size: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FabricState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current time; in real-time mode also moves the fabric's clock forward.
    fn now(&self, st: &mut FabricState) -> Timestamp {
        if self.clock == FabricClock::RealTime {
            let t = Timestamp::from_micros(duration_micros(self.epoch.elapsed()));
            if t > st.now {
                st.now = t;
            }
        }
        st.now
    }
}

/// A network of in-memory nodes. Cloning yields another handle to the same fabric.
#[derive(Clone)]
pub struct MemoryFabric {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryFabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("MemoryFabric")
            .field("clock", &self.shared.clock)
            .field("now", &st.now)
            .field("nodes", &st.nodes.len())
            .field("in_flight", &st.pool.outstanding())
            .finish()
    }
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    // 53 random bits -> uniform in [0, 1).
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    x < p
}

fn uniform_micros(rng: &mut ChaCha8Rng, max: Duration) -> u64 {
    let max = duration_micros(max);
    if max == 0 {
        return 0;
    }
    rng.next_u64() % max.saturating_add(1).max(1)
}

impl MemoryFabric {
    /// An empty fabric.
    pub fn new(config: FabricConfig) -> Self {
        let max_in_flight = config.max_in_flight.max(1);
        MemoryFabric {
            shared: Arc::new(Shared {
                state: Mutex::new(FabricState {
                    nodes: Vec::new(),
                    owner: HashMap::new(),
                    paths: HashMap::new(),
                    default_path: config.default_path,
                    rng: ChaCha8Rng::seed_from_u64(config.seed),
                    pool: BufferPool::new(config.max_packet_size, max_in_flight, 0),
                    seq: 0,
                    now: Timestamp::ZERO,
                    stats: FabricStats::default(),
                }),
                clock: config.clock,
                epoch: Instant::now(),
                max_packet_size: config.max_packet_size,
            }),
        }
    }

    /// A fabric with two nodes owning one address each, connected by the default path.
    pub fn pair(
        config: FabricConfig,
        a: IpAddr,
        b: IpAddr,
    ) -> Result<(MemoryFabric, MemoryLink, MemoryLink), LinkError> {
        let fabric = MemoryFabric::new(config);
        let la = fabric.add_node(&[a], 0)?;
        let lb = fabric.add_node(&[b], 0)?;
        Ok((fabric, la, lb))
    }

    /// Adds a node owning `addrs`. `encaps_port` 0 makes it a raw-IP node; otherwise its
    /// packets arrive with that UDP encapsulation port and carry a UDP header on the wire
    /// (counted against the MTU).
    pub fn add_node(&self, addrs: &[IpAddr], encaps_port: u16) -> Result<MemoryLink, LinkError> {
        if addrs.is_empty() {
            return Err(LinkError::InvalidConfig("a memory node needs an address"));
        }
        let mut st = self.shared.lock();
        if addrs.iter().any(|a| st.owner.contains_key(a)) {
            return Err(LinkError::InvalidConfig(
                "address already owned by another memory node",
            ));
        }
        let index = st.nodes.len();
        let cv = Arc::new(Condvar::new());
        for a in addrs {
            st.owner.insert(*a, index);
        }
        st.nodes.push(Node {
            addrs: addrs.to_vec(),
            queue: BinaryHeap::new(),
            woken: false,
            stats: LinkStats::default(),
            cv: Arc::clone(&cv),
        });
        Ok(MemoryLink {
            shared: Arc::clone(&self.shared),
            node: index,
            cv,
            encaps_port,
        })
    }

    /// Sets the parameters of the direction `src -> dst`.
    pub fn set_path(&self, src: IpAddr, dst: IpAddr, params: PathParams) {
        let mut st = self.shared.lock();
        let busy_until = st
            .paths
            .get(&(src, dst))
            .map_or(Timestamp::ZERO, |p| p.busy_until);
        st.paths
            .insert((src, dst), PathState { params, busy_until });
    }

    /// Sets the parameters of both directions between `a` and `b`.
    pub fn set_path_both(&self, a: IpAddr, b: IpAddr, params: PathParams) {
        self.set_path(a, b, params);
        self.set_path(b, a, params);
    }

    /// Takes both directions between `a` and `b` up or down, keeping their other parameters.
    pub fn set_path_up(&self, a: IpAddr, b: IpAddr, up: bool) {
        let mut st = self.shared.lock();
        let default = st.default_path;
        for key in [(a, b), (b, a)] {
            st.paths
                .entry(key)
                .or_insert(PathState {
                    params: default,
                    busy_until: Timestamp::ZERO,
                })
                .params
                .up = up;
        }
    }

    /// Moves the manual clock forward to `now` (never backwards). Ignored in real-time mode.
    pub fn advance_to(&self, now: Timestamp) {
        if self.shared.clock != FabricClock::Manual {
            return;
        }
        let mut st = self.shared.lock();
        if now > st.now {
            st.now = now;
            // Wake real waiters (if any thread waits on a manual fabric, it polls).
            for n in &st.nodes {
                n.cv.notify_all();
            }
        }
    }

    /// The fabric's current time.
    pub fn now(&self) -> Timestamp {
        let mut st = self.shared.lock();
        self.shared.now(&mut st)
    }

    /// The earliest time a packet in flight reaches its destination.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        let st = self.shared.lock();
        st.nodes
            .iter()
            .filter_map(|n| n.queue.peek().map(|Reverse(p)| p.deliver_at))
            .min()
    }

    /// The number of packets in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().pool.outstanding()
    }

    /// Network-side counters.
    pub fn stats(&self) -> FabricStats {
        self.shared.lock().stats
    }
}

/// One node of a [`MemoryFabric`].
pub struct MemoryLink {
    shared: Arc<Shared>,
    node: usize,
    cv: Arc<Condvar>,
    encaps_port: u16,
}

impl std::fmt::Debug for MemoryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLink")
            .field("node", &self.node)
            .field("encaps_port", &self.encaps_port)
            .finish()
    }
}

struct MemoryWake {
    shared: Arc<Shared>,
    node: usize,
}

impl WakeTarget for MemoryWake {
    fn wake(&self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.nodes.get_mut(self.node) {
            n.woken = true;
            n.cv.notify_all();
        }
    }
}

impl MemoryLink {
    /// The addresses this node owns.
    pub fn addrs(&self) -> Vec<IpAddr> {
        let st = self.shared.lock();
        st.nodes
            .get(self.node)
            .map(|n| n.addrs.clone())
            .unwrap_or_default()
    }

    /// The fabric's current time.
    pub fn now(&self) -> Timestamp {
        let mut st = self.shared.lock();
        self.shared.now(&mut st)
    }

    /// The earliest time a packet in flight reaches this node.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        let st = self.shared.lock();
        st.nodes
            .get(self.node)?
            .queue
            .peek()
            .map(|Reverse(p)| p.deliver_at)
    }

    /// Places one packet in flight, or counts why the network dropped it.
    fn send_one(
        st: &mut FabricState,
        node: usize,
        encaps_port: u16,
        meta: crate::TxMeta,
        data: &[u8],
    ) {
        let FabricState {
            nodes,
            owner,
            paths,
            default_path,
            rng,
            pool,
            seq,
            now,
            stats,
        } = st;
        let Some(sender) = nodes.get(node) else {
            return;
        };
        let src = match meta.src {
            Some(s) if sender.addrs.contains(&s) => Some(s),
            Some(_) => None,
            None => sender
                .addrs
                .iter()
                .copied()
                .find(|a| a.is_ipv4() == meta.dst.is_ipv4()),
        };
        let (Some(src), Some(&dst_node)) = (src, owner.get(&meta.dst)) else {
            stats.unroutable += 1;
            return;
        };
        let path = paths.entry((src, meta.dst)).or_insert(PathState {
            params: *default_path,
            busy_until: Timestamp::ZERO,
        });
        let p = path.params;
        if !p.up {
            stats.down_dropped += 1;
            return;
        }
        let wire = data.len()
            + ip_header_len(meta.dst)
            + if encaps_port != 0 { UDP_HEADER_LEN } else { 0 };
        if wire > p.mtu {
            stats.mtu_dropped += 1;
            return;
        }
        // Bottleneck: serialization at `rate_bps` behind what is already queued.
        let mut depart = *now;
        if let Some(rate) = p.rate_bps.filter(|r| *r > 0) {
            let start = path.busy_until.max(*now);
            if start.saturating_duration_since(*now) > p.max_queue_delay {
                stats.queue_dropped += 1;
                return;
            }
            let tx_us = (wire as u64).saturating_mul(8_000_000) / rate;
            path.busy_until = start.saturating_add(Duration::from_micros(tx_us));
            depart = path.busy_until;
        }
        if chance(rng, p.loss) {
            stats.lost += 1;
            return;
        }
        let copies = if chance(rng, p.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        let rx_meta = RxMeta {
            src,
            dst: meta.dst,
            encaps_port,
            ifindex: 0,
        };
        for _ in 0..copies {
            let mut delay = p.latency + Duration::from_micros(uniform_micros(rng, p.jitter));
            if chance(rng, p.reorder) {
                stats.reordered += 1;
                delay += p.reorder_delay;
            }
            let Some(buf) = pool.take_copy(data) else {
                stats.pool_exhausted += 1;
                return;
            };
            *seq += 1;
            stats.sent += 1;
            let Some(dst) = nodes.get_mut(dst_node) else {
                pool.put(buf);
                return;
            };
            dst.queue.push(Reverse(InFlight {
                deliver_at: depart.saturating_add(delay),
                seq: *seq,
                meta: rx_meta,
                buf,
            }));
            dst.cv.notify_all();
        }
    }
}

impl Link for MemoryLink {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn rx_slot_size(&self) -> usize {
        self.shared.max_packet_size
    }

    fn header_overhead(&self, remote: IpAddr) -> usize {
        ip_header_len(remote)
            + if self.encaps_port != 0 {
                UDP_HEADER_LEN
            } else {
                0
            }
    }

    fn recv(&mut self, rx: &mut RxBatch) -> Result<usize, LinkError> {
        rx.clear();
        if rx.slot_size() < self.shared.max_packet_size {
            return Err(LinkError::RxSlotTooSmall {
                need: self.shared.max_packet_size,
                have: rx.slot_size(),
            });
        }
        let mut st = self.shared.lock();
        let now = self.shared.now(&mut st);
        let FabricState {
            nodes, pool, stats, ..
        } = &mut *st;
        let Some(node) = nodes.get_mut(self.node) else {
            return Ok(0);
        };
        let mut n = 0;
        while n < rx.slots() {
            match node.queue.peek() {
                Some(Reverse(p)) if p.deliver_at <= now => {}
                _ => break,
            }
            let Some(Reverse(p)) = node.queue.pop() else {
                break;
            };
            if rx.push_copy(p.meta, n, p.buf.as_slice()) {
                n += 1;
                node.stats.rx_packets += 1;
                node.stats.rx_bytes += p.buf.len() as u64;
                stats.delivered += 1;
            } else {
                node.stats.rx_dropped += 1;
            }
            pool.put(p.buf);
        }
        if n > 0 {
            node.stats.rx_batches += 1;
        }
        Ok(n)
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        let n = tx.len();
        if n == 0 {
            return Ok(0);
        }
        let mut st = self.shared.lock();
        self.shared.now(&mut st);
        let mut bytes = 0u64;
        for (meta, data) in tx.iter() {
            bytes += data.len() as u64;
            MemoryLink::send_one(&mut st, self.node, self.encaps_port, meta, data);
        }
        if let Some(node) = st.nodes.get_mut(self.node) {
            node.stats.tx_packets += n as u64;
            node.stats.tx_bytes += bytes;
            node.stats.tx_batches += 1;
        }
        drop(st);
        tx.consume(n);
        Ok(n)
    }

    fn wait(
        &mut self,
        _interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError> {
        let mut st = self.shared.lock();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let now = self.shared.now(&mut st);
            let Some(node) = st.nodes.get_mut(self.node) else {
                return Ok(Readiness::default());
            };
            let woken = std::mem::take(&mut node.woken);
            let next = node.queue.peek().map(|Reverse(p)| p.deliver_at);
            let readable = next.is_some_and(|t| t <= now);
            if readable || woken {
                return Ok(Readiness {
                    readable,
                    writable: true,
                    woken,
                });
            }
            if self.shared.clock == FabricClock::Manual {
                // Virtual time does not pass while we sleep: report "nothing yet".
                return Ok(Readiness {
                    writable: true,
                    ..Readiness::default()
                });
            }
            let mut sleep = next.map_or(Duration::MAX, |t| t.saturating_duration_since(now));
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Readiness::default());
                }
                sleep = sleep.min(left);
            }
            // Cap each sleep so a clock step never strands a waiter for long.
            sleep = sleep.clamp(Duration::from_micros(1), Duration::from_secs(1));
            st = self
                .cv
                .wait_timeout(st, sleep)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn waker(&self) -> Waker {
        Waker::new(Arc::new(MemoryWake {
            shared: Arc::clone(&self.shared),
            node: self.node,
        }))
    }

    fn stats(&self) -> LinkStats {
        let st = self.shared.lock();
        st.nodes.get(self.node).map(|n| n.stats).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TxMeta;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

    fn to(dst: IpAddr) -> TxMeta {
        TxMeta {
            src: None,
            dst,
            encaps_port: 0,
        }
    }

    /// Sends `count` numbered packets from `a` to `B`, one per millisecond of manual time, and
    /// returns the sequence numbers in the order `b` received them after everything landed.
    fn run(
        fabric: &MemoryFabric,
        a: &mut MemoryLink,
        b: &mut MemoryLink,
        count: u32,
        len: usize,
    ) -> Vec<u32> {
        let mut tx = TxBatch::new(1, 2048);
        let mut rx = RxBatch::new(64, 9216);
        let mut got = Vec::new();
        let mut now = Timestamp::ZERO;
        for i in 0..count {
            let mut pkt = vec![0u8; len.max(4)];
            pkt[..4].copy_from_slice(&i.to_be_bytes());
            assert!(tx.push(to(B), &pkt));
            assert_eq!(a.send(&mut tx).unwrap(), 1);
            now += Duration::from_millis(1);
            fabric.advance_to(now);
            while b.recv(&mut rx).unwrap() > 0 {
                got.extend(
                    rx.iter()
                        .map(|p| u32::from_be_bytes(p.data[..4].try_into().unwrap())),
                );
            }
        }
        // Drain everything still in flight, bounded.
        for _ in 0..10_000 {
            let Some(t) = fabric.next_delivery() else {
                break;
            };
            fabric.advance_to(t);
            while b.recv(&mut rx).unwrap() > 0 {
                got.extend(
                    rx.iter()
                        .map(|p| u32::from_be_bytes(p.data[..4].try_into().unwrap())),
                );
            }
        }
        assert_eq!(fabric.in_flight(), 0);
        got
    }

    #[test]
    fn packets_arrive_after_the_configured_latency_with_addresses() {
        let (fabric, mut a, mut b) = MemoryFabric::pair(FabricConfig::default(), A, B).unwrap();
        fabric.set_path(
            A,
            B,
            PathParams {
                latency: Duration::from_millis(10),
                ..PathParams::default()
            },
        );
        let mut tx = TxBatch::new(4, 1500);
        let mut rx = RxBatch::new(4, 9216);
        assert!(tx.push(to(B), b"hello"));
        a.send(&mut tx).unwrap();
        fabric.advance_to(Timestamp::from_micros(9_999));
        assert_eq!(b.recv(&mut rx).unwrap(), 0);
        assert_eq!(b.next_delivery(), Some(Timestamp::from_millis(10)));
        fabric.advance_to(Timestamp::from_millis(10));
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        let p = rx.get(0).unwrap();
        assert_eq!(p.data, b"hello");
        assert_eq!(p.meta.src, A);
        assert_eq!(p.meta.dst, B);
        assert_eq!(p.meta.encaps_port, 0);
        assert_eq!(b.stats().rx_packets, 1);
        assert_eq!(a.stats().tx_packets, 1);
    }

    #[test]
    fn loss_rate_matches_the_configured_probability() {
        let config = FabricConfig {
            seed: 7,
            default_path: PathParams {
                loss: 0.2,
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        let got = run(&fabric, &mut a, &mut b, 10_000, 100);
        let lost = 10_000 - got.len();
        // Binomial(10000, 0.2): sd = 40; allow 5 sd.
        assert!((1800..=2200).contains(&lost), "lost {lost}");
        assert_eq!(fabric.stats().lost as usize, lost);
    }

    #[test]
    fn the_same_seed_reproduces_the_same_run() {
        let config = FabricConfig {
            seed: 42,
            default_path: PathParams {
                loss: 0.1,
                duplicate: 0.05,
                reorder: 0.1,
                reorder_delay: Duration::from_millis(3),
                jitter: Duration::from_micros(1500),
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let runs: Vec<Vec<u32>> = (0..2)
            .map(|_| {
                let (f, mut a, mut b) = MemoryFabric::pair(config.clone(), A, B).unwrap();
                run(&f, &mut a, &mut b, 2000, 64)
            })
            .collect();
        assert_eq!(runs[0], runs[1]);
        let other = {
            let (f, mut a, mut b) =
                MemoryFabric::pair(FabricConfig { seed: 43, ..config }, A, B).unwrap();
            run(&f, &mut a, &mut b, 2000, 64)
        };
        assert_ne!(runs[0], other, "a different seed gives a different run");
    }

    #[test]
    fn reordering_delays_the_configured_share_of_packets() {
        let config = FabricConfig {
            seed: 3,
            default_path: PathParams {
                reorder: 0.25,
                reorder_delay: Duration::from_millis(5),
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        let got = run(&fabric, &mut a, &mut b, 4000, 64);
        assert_eq!(got.len(), 4000, "reordering loses nothing");
        // A packet is "late" when a higher number arrived before it.
        let mut max_seen = 0;
        let mut late = 0;
        for (i, &n) in got.iter().enumerate() {
            if i > 0 && n < max_seen {
                late += 1;
            }
            max_seen = max_seen.max(n);
        }
        let reordered = fabric.stats().reordered as usize;
        // Binomial(4000, 0.25): sd ~ 27; allow 5 sd.
        assert!((865..=1135).contains(&reordered), "reordered {reordered}");
        // Every held-back packet is overtaken (5 ms delay, 1 ms spacing), except when its
        // successors were held back too.
        assert!(late > reordered / 2 && late <= reordered, "late {late}");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..4000).collect::<Vec<_>>());
    }

    #[test]
    fn duplication_delivers_extra_copies() {
        let config = FabricConfig {
            seed: 11,
            default_path: PathParams {
                duplicate: 0.1,
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        let got = run(&fabric, &mut a, &mut b, 5000, 64);
        let dups = got.len() - 5000;
        // Binomial(5000, 0.1): sd ~ 21; allow 5 sd.
        assert!((395..=605).contains(&dups), "dups {dups}");
        assert_eq!(fabric.stats().duplicated as usize, dups);
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let config = FabricConfig {
            seed: 5,
            default_path: PathParams {
                latency: Duration::from_millis(20),
                jitter: Duration::from_millis(4),
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        let mut tx = TxBatch::new(500, 200);
        for _ in 0..500 {
            assert!(tx.push(to(B), &[0u8; 100]));
        }
        a.send(&mut tx).unwrap();
        let mut rx = RxBatch::new(512, 9216);
        fabric.advance_to(Timestamp::from_micros(19_999));
        assert_eq!(b.recv(&mut rx).unwrap(), 0);
        fabric.advance_to(Timestamp::from_millis(22));
        let early = b.recv(&mut rx).unwrap();
        // Uniform over 0..=4 ms: about half arrive by 22 ms.
        assert!((150..=350).contains(&early), "early {early}");
        fabric.advance_to(Timestamp::from_millis(24));
        let late = b.recv(&mut rx).unwrap();
        assert_eq!(early + late, 500);
    }

    #[test]
    fn packets_larger_than_the_path_mtu_are_dropped() {
        let (fabric, mut a, mut b) = MemoryFabric::pair(FabricConfig::default(), A, B).unwrap();
        let mut tx = TxBatch::new(4, 2000);
        // 1480 + 20 = 1500 fits; 1481 does not.
        assert!(tx.push(to(B), &[1u8; 1480]));
        assert!(tx.push(to(B), &[2u8; 1481]));
        a.send(&mut tx).unwrap();
        let mut rx = RxBatch::new(4, 9216);
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        assert_eq!(rx.get(0).unwrap().data.len(), 1480);
        assert_eq!(fabric.stats().mtu_dropped, 1);
    }

    #[test]
    fn udp_encapsulating_nodes_pay_the_udp_header_against_the_mtu() {
        let fabric = MemoryFabric::new(FabricConfig::default());
        let mut a = fabric.add_node(&[A], 9899).unwrap();
        let mut b = fabric.add_node(&[B], 9899).unwrap();
        assert_eq!(a.header_overhead(B), 28);
        let mut tx = TxBatch::new(4, 2000);
        assert!(tx.push(to(B), &[1u8; 1472]));
        assert!(tx.push(to(B), &[2u8; 1473]));
        a.send(&mut tx).unwrap();
        let mut rx = RxBatch::new(4, 9216);
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        assert_eq!(rx.get(0).unwrap().meta.encaps_port, 9899);
        assert_eq!(fabric.stats().mtu_dropped, 1);
    }

    #[test]
    fn a_path_taken_down_drops_until_it_comes_back() {
        let (fabric, mut a, mut b) = MemoryFabric::pair(FabricConfig::default(), A, B).unwrap();
        let mut tx = TxBatch::new(4, 100);
        let mut rx = RxBatch::new(4, 9216);
        fabric.set_path_up(A, B, false);
        assert!(tx.push(to(B), b"x"));
        a.send(&mut tx).unwrap();
        assert_eq!(b.recv(&mut rx).unwrap(), 0);
        assert_eq!(fabric.stats().down_dropped, 1);
        fabric.set_path_up(A, B, true);
        assert!(tx.push(to(B), b"y"));
        a.send(&mut tx).unwrap();
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
    }

    #[test]
    fn multi_homed_nodes_route_by_address_and_honour_the_source() {
        let a2: IpAddr = "198.19.0.1".parse().unwrap();
        let b2: IpAddr = "198.19.0.2".parse().unwrap();
        let fabric = MemoryFabric::new(FabricConfig::default());
        let mut a = fabric.add_node(&[A, a2], 0).unwrap();
        let mut b = fabric.add_node(&[B, b2], 0).unwrap();
        fabric.set_path_up(a2, b2, false);
        let mut tx = TxBatch::new(4, 100);
        tx.push(
            TxMeta {
                src: Some(a2),
                dst: b2,
                encaps_port: 0,
            },
            b"down",
        );
        tx.push(
            TxMeta {
                src: Some(a2),
                dst: B,
                encaps_port: 0,
            },
            b"cross",
        );
        tx.push(
            TxMeta {
                src: Some("203.0.113.1".parse().unwrap()),
                dst: B,
                encaps_port: 0,
            },
            b"spoofed",
        );
        tx.push(to("198.18.9.9".parse().unwrap()), b"nowhere");
        assert_eq!(a.send(&mut tx).unwrap(), 4);
        let mut rx = RxBatch::new(4, 9216);
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        let p = rx.get(0).unwrap();
        assert_eq!((p.meta.src, p.meta.dst, p.data), (a2, B, &b"cross"[..]));
        let s = fabric.stats();
        assert_eq!((s.down_dropped, s.unroutable), (1, 2));
        assert!(fabric.add_node(&[B], 0).is_err(), "addresses are unique");
    }

    #[test]
    fn a_rate_limited_path_spaces_packets_and_tail_drops() {
        let config = FabricConfig {
            default_path: PathParams {
                // 1 Mbit/s: a 105-byte wire packet (85 + 20) takes 840 us.
                rate_bps: Some(1_000_000),
                max_queue_delay: Duration::from_millis(5),
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        let mut tx = TxBatch::new(20, 100);
        for _ in 0..20 {
            tx.push(to(B), &[0u8; 85]);
        }
        a.send(&mut tx).unwrap();
        let mut rx = RxBatch::new(32, 9216);
        fabric.advance_to(Timestamp::from_micros(840));
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        fabric.advance_to(Timestamp::from_micros(1680));
        assert_eq!(b.recv(&mut rx).unwrap(), 1);
        fabric.advance_to(Timestamp::from_secs(1));
        let rest = b.recv(&mut rx).unwrap();
        // Packet k starts serializing at k * 840 us; those that would start after 5 ms of
        // queueing (k >= 6) are dropped.
        assert_eq!(2 + rest, 6);
        assert_eq!(fabric.stats().queue_dropped, 14);
    }

    #[test]
    fn steady_state_traffic_allocates_no_new_buffers() {
        let (fabric, mut a, mut b) = MemoryFabric::pair(FabricConfig::default(), A, B).unwrap();
        let mut tx = TxBatch::new(32, 1500);
        let mut rx = RxBatch::new(32, 9216);
        let mut allocated_after_warmup = 0;
        for round in 0..100 {
            for _ in 0..32 {
                tx.push(to(B), &[0u8; 1200]);
            }
            a.send(&mut tx).unwrap();
            assert_eq!(b.recv(&mut rx).unwrap(), 32);
            let allocated = fabric.shared.lock().pool.allocated();
            if round == 0 {
                allocated_after_warmup = allocated;
            }
            assert_eq!(allocated, allocated_after_warmup);
        }
    }

    #[test]
    fn a_too_small_receive_batch_is_refused() {
        let (_fabric, _a, mut b) = MemoryFabric::pair(FabricConfig::default(), A, B).unwrap();
        let mut rx = RxBatch::new(4, 1500);
        assert!(matches!(
            b.recv(&mut rx),
            Err(LinkError::RxSlotTooSmall {
                need: 9216,
                have: 1500
            })
        ));
    }

    #[test]
    fn real_time_wait_sleeps_until_delivery_or_wake() {
        let config = FabricConfig {
            clock: FabricClock::RealTime,
            default_path: PathParams {
                latency: Duration::from_millis(5),
                ..PathParams::default()
            },
            ..FabricConfig::default()
        };
        let (_fabric, mut a, mut b) = MemoryFabric::pair(config, A, B).unwrap();
        // Nothing in flight: the timeout elapses.
        let r = b
            .wait(Interest::Read, Some(Duration::from_millis(1)))
            .unwrap();
        assert!(r.is_timeout());
        // A waker on another thread interrupts an unbounded wait.
        let waker = b.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            waker.wake();
        });
        let r = b
            .wait(Interest::Read, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(r.woken);
        t.join().unwrap();
        // A packet from another thread wakes the waiter once its latency has passed.
        let sender = std::thread::spawn(move || {
            let mut tx = TxBatch::new(1, 100);
            tx.push(to(B), b"ping");
            a.send(&mut tx).unwrap();
        });
        let mut rx = RxBatch::new(4, 9216);
        let mut got = 0;
        for _ in 0..1000 {
            let r = b
                .wait(Interest::Read, Some(Duration::from_secs(10)))
                .unwrap();
            if r.readable {
                got = b.recv(&mut rx).unwrap();
                break;
            }
        }
        sender.join().unwrap();
        assert_eq!(got, 1);
        assert_eq!(rx.get(0).unwrap().data, b"ping");
    }
}
