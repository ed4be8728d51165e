//! Port and queue setup, and [`DpdkLink`]: the [`Link`] over DPDK receive/transmit queues.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_int};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dpdk_sys as sys;

use sctp_stack::RxChecksum;

use super::DpdkError;
use super::eal::{Eal, EalConfig, errno_text};
use super::net::{
    self, ARP_FRAME_LEN, Frame, Interface, IpPrefix, Lookup, MacAddr, ND_FRAME_LEN,
    NeighbourConfig, Neighbours, Queued, Service,
};
use super::offload::{Offloads, TxAction};
use crate::link::{
    Backend, Interest, Link, LinkError, LinkStats, Readiness, WakeTarget, Waker, ip_header_len,
};
use crate::packet::{RxBatch, RxMeta, TxBatch, TxMeta};

/// Which DPDK port an interface uses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortSelector {
    /// By port id (0, 1, ... in probe order).
    Index(u16),
    /// By device name: the vdev name (`net_af_packet0`) or the PCI address (`0000:03:00.0`).
    Name(String),
}

/// One port and its addresses (one per family).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceConfig {
    /// The port.
    pub port: PortSelector,
    /// Its IPv4 address and prefix.
    pub v4: Option<IpPrefix>,
    /// Its IPv6 address and prefix.
    pub v6: Option<IpPrefix>,
    /// The IPv4 next hop for destinations outside `v4`'s prefix.
    pub gateway4: Option<Ipv4Addr>,
    /// The IPv6 next hop for destinations outside `v6`'s prefix.
    pub gateway6: Option<Ipv6Addr>,
}

impl InterfaceConfig {
    /// Port `port` with the given addresses (sorted into families; at most one per family)
    /// and no gateway.
    pub fn new(port: PortSelector, addresses: &[IpPrefix]) -> Result<Self, DpdkError> {
        let mut c = InterfaceConfig {
            port,
            v4: None,
            v6: None,
            gateway4: None,
            gateway6: None,
        };
        for a in addresses {
            let slot = if a.addr.is_ipv4() {
                &mut c.v4
            } else {
                &mut c.v6
            };
            if slot.replace(*a).is_some() {
                return Err(DpdkError::InvalidConfig(format!(
                    "one address per family and port ({a} is a second one)"
                )));
            }
        }
        Ok(c)
    }
}

/// The configuration of a set of DPDK links.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpdkConfig {
    /// How the EAL starts (ignored when it already runs in this process).
    pub eal: EalConfig,
    /// The ports and their addresses; several for multi-homing.
    pub interfaces: Vec<InterfaceConfig>,
    /// Links (workers) to open: each gets its own receive and transmit queue on every port
    /// and its own mbuf pool. 1.
    pub queues: usize,
    /// Receive descriptors per queue: 1024.
    pub rx_descriptors: u16,
    /// Transmit descriptors per queue: 1024.
    pub tx_descriptors: u16,
    /// mbufs per pool (per link): 8191.
    pub pool_size: u32,
    /// The IP MTU of the ports: 1500. Frames up to MTU + 14 are received.
    pub mtu: u16,
    /// Packets per receive/transmit burst: 32.
    pub burst: usize,
    /// The neighbour cache.
    pub neighbours: NeighbourConfig,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal: EalConfig::default(),
            interfaces: Vec::new(),
            queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            pool_size: 8191,
            mtu: 1500,
            burst: 32,
            neighbours: NeighbourConfig::default(),
        }
    }
}

/// DPDK-specific counters of a link (beyond [`LinkStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpdkStats {
    /// ARP requests sent (resolving next hops).
    pub arp_requests: u64,
    /// ARP replies sent (for our addresses).
    pub arp_replies: u64,
    /// Neighbour solicitations sent.
    pub nd_solicitations: u64,
    /// Neighbour advertisements sent.
    pub nd_advertisements: u64,
    /// Frames received that were not for us (other protocols, hosts, multicast).
    pub rx_ignored: u64,
    /// Transmit frames the NIC did not take (ring full after retries) or mbufs not available.
    pub tx_ring_full: u64,
    /// Control frames (ARP/ND) dropped because their queue was full.
    pub control_dropped: u64,
    /// SCTP packets whose CRC32c the NIC computed (transmit offload).
    pub tx_checksum_hardware: u64,
    /// SCTP packets whose CRC32c the link computed in software (the stack left the field
    /// zero, `EndpointConfig::tx_checksum_offload`, and the port has no offload).
    pub tx_checksum_software: u64,
    /// Received packets the NIC verified the CRC32c of (`RTE_MBUF_F_RX_L4_CKSUM_GOOD`).
    pub rx_checksum_good: u64,
    /// Received packets dropped because the NIC found their CRC32c wrong
    /// (`RTE_MBUF_F_RX_L4_CKSUM_BAD`; RFC 9260 §6.8; also counted in `rx_dropped`).
    pub rx_checksum_bad: u64,
}

/// Ports in use by link sets of this process.
static BUSY: Mutex<Vec<u16>> = Mutex::new(Vec::new());
/// Distinguishes pool names across link sets.
static SET_ID: AtomicU32 = AtomicU32::new(0);

/// A started port.
#[derive(Debug)]
struct Port {
    id: u16,
    iface: Interface,
    offloads: Offloads,
}

/// What the links of one set share: the ports (stopped when the last link goes), the pools,
/// and the neighbour cache.
#[derive(Debug)]
struct Set {
    ports: Vec<Port>,
    pools: Vec<Pool>,
    neighbours: Mutex<Neighbours>,
}

#[derive(Debug)]
struct Pool(*mut sys::rte_mempool);

// SAFETY: a mempool is a process-wide DPDK object whose get/put operations are thread-safe
// (multi-producer/multi-consumer ring); the pool is never freed (see `Set::drop`), so the
// pointer stays valid in every thread.
unsafe impl Send for Pool {}
// SAFETY: as above; `&Pool` only hands out the pointer for thread-safe mempool operations.
unsafe impl Sync for Pool {}

impl Set {
    fn neighbours(&self) -> MutexGuard<'_, Neighbours> {
        self.neighbours
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Set {
    fn drop(&mut self) {
        for p in &self.ports {
            // Stopped, not closed: closing a virtual device releases it for good, and a later
            // link set of this process may configure and start the port again.
            // SAFETY: the port was started by `open` and no queue of it is used any more (every
            // link of the set is gone).
            unsafe { sys::rte_eth_dev_stop(p.id) };
        }
        // The pools are kept (DPDK memory for the life of the process): a stopped port's
        // receive queues still hold mbufs of them, which the driver frees into them when the
        // port is configured again or closed at exit.
        let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
        busy.retain(|id| !self.ports.iter().any(|p| p.id == *id));
    }
}

/// The waker of a polled link: a flag [`Link::wait`] checks between polls.
#[derive(Debug, Default)]
struct Flag(AtomicBool);

impl WakeTarget for Flag {
    fn wake(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A frame to send that is not an SCTP packet of the batch: an ARP or ND message, or a
/// packet released by a resolved neighbour.
#[derive(Debug)]
enum Control {
    Arp(usize, [u8; ARP_FRAME_LEN]),
    Nd(usize, [u8; ND_FRAME_LEN]),
    Released(Queued),
}

/// Bound of the control queue of a link.
const CONTROL_LIMIT: usize = 256;
/// How often `recv`/`wait` retry pending neighbour resolutions.
const SERVICE_INTERVAL: Duration = Duration::from_millis(50);
/// Sleep between polls in `wait`.
const POLL_SLEEP: Duration = Duration::from_micros(50);
/// How long `wait` polls without sleeping before it starts sleeping between polls.
const SPIN: Duration = Duration::from_micros(100);
/// Attempts to hand a burst to a full transmit ring before dropping the rest.
const TX_RETRIES: usize = 16;

/// One worker's link: queue `queue` of every port of its set.
///
/// Implements [`Link`]; see the module documentation of [`crate::dpdk`] for the contract.
#[derive(Debug)]
pub struct DpdkLink {
    set: Arc<Set>,
    queue: u16,
    pool: *mut sys::rte_mempool,
    burst: usize,
    /// mbufs received by `wait`, handed out by the next `recv` (port index, mbuf).
    stash: VecDeque<(usize, *mut sys::rte_mbuf)>,
    /// Scratch array for bursts.
    mbufs: Vec<*mut sys::rte_mbuf>,
    /// Frames of multi-segment mbufs are copied here to be parsed.
    scratch: Vec<u8>,
    control: VecDeque<Control>,
    services: Vec<Service>,
    next_service: Instant,
    ident: u16,
    max_frame: usize,
    waker: Arc<Flag>,
    stats: LinkStats,
    dpdk: DpdkStats,
}

// SAFETY: the raw pointers are mbufs owned exclusively by this link (stash, scratch array
// between calls is empty) and the pool of this link's queue, whose operations are thread-safe;
// nothing is tied to the creating thread (DPDK queues only require one thread at a time, which
// `&mut self` and `!Sync` guarantee).
unsafe impl Send for DpdkLink {}

/// Marks `ids` free again after a failed open (a `Set` only releases the ports it started).
fn release_ports(ids: &[u16]) {
    let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
    busy.retain(|b| !ids.contains(b));
}

fn setup_error(op: impl Into<String>, code: c_int) -> DpdkError {
    let code = if code < 0 { -code } else { code };
    DpdkError::Setup {
        op: op.into(),
        why: errno_text(code),
    }
}

fn find_port(eal: &Eal, sel: &PortSelector) -> Result<u16, DpdkError> {
    let count = eal.port_count();
    match sel {
        PortSelector::Index(i) => {
            // SAFETY: the EAL is initialised; any id may be asked about.
            if unsafe { sys::rte_eth_dev_is_valid_port(*i) } == 1 {
                Ok(*i)
            } else if count == 0 {
                Err(DpdkError::NoPorts)
            } else {
                Err(DpdkError::PortNotFound(format!("{i} (ports: {count})")))
            }
        }
        PortSelector::Name(n) => {
            let c = CString::new(n.as_str())
                .map_err(|_| DpdkError::InvalidConfig("port name contains NUL".to_owned()))?;
            let mut id = 0u16;
            // SAFETY: c is a valid C string; id is a valid out pointer.
            let r = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
            if r == 0 {
                Ok(id)
            } else if count == 0 {
                Err(DpdkError::NoPorts)
            } else {
                Err(DpdkError::PortNotFound(n.clone()))
            }
        }
    }
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: buf has room for RTE_ETH_NAME_MAX_LEN (64) bytes including the NUL.
    let r = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if r != 0 {
        return format!("port {id}");
    }
    // SAFETY: the call wrote a NUL-terminated string into buf.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl DpdkLink {
    /// Starts the EAL (if not yet running), configures and starts every port of `config`
    /// with `config.queues` queue pairs, and returns one link per queue (worker).
    pub fn open(config: &DpdkConfig) -> Result<Vec<DpdkLink>, DpdkError> {
        if config.interfaces.is_empty() {
            return Err(DpdkError::InvalidConfig(
                "no interface: give at least one port with an address".to_owned(),
            ));
        }
        if config.queues == 0 || config.queues > 128 {
            return Err(DpdkError::InvalidConfig(
                "queues must be in 1..=128".to_owned(),
            ));
        }
        if config.burst == 0 || config.burst > 512 {
            return Err(DpdkError::InvalidConfig(
                "burst must be in 1..=512".to_owned(),
            ));
        }
        for i in &config.interfaces {
            if i.v4.is_none() && i.v6.is_none() {
                return Err(DpdkError::InvalidConfig(
                    "every interface needs an address".to_owned(),
                ));
            }
        }
        let eal = Eal::init(&config.eal)?;
        if eal.port_count() == 0 {
            return Err(DpdkError::NoPorts);
        }
        // Every --vdev must have become a port: otherwise its PMD is missing.
        for v in &config.eal.vdevs {
            let name = v.split(',').next().unwrap_or(v).to_owned();
            find_port(&eal, &PortSelector::Name(name))?;
        }
        let mut ids = Vec::with_capacity(config.interfaces.len());
        for i in &config.interfaces {
            let id = find_port(&eal, &i.port)?;
            if ids.contains(&id) {
                return Err(DpdkError::InvalidConfig(format!(
                    "port {id} is listed twice (one address per family and port)"
                )));
            }
            ids.push(id);
        }
        {
            let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(id) = ids.iter().find(|id| busy.contains(id)) {
                return Err(DpdkError::PortBusy(*id));
            }
            busy.extend(ids.iter().copied());
        }
        // From here on, `set` owns what is created; dropping it on an error undoes it all.
        let mut set = Set {
            ports: Vec::new(),
            pools: Vec::new(),
            neighbours: Mutex::new(Neighbours::new(config.neighbours)),
        };
        let queues = u16::try_from(config.queues)
            .map_err(|_| DpdkError::InvalidConfig("too many queues".to_owned()))?;
        let set_id = SET_ID.fetch_add(1, Ordering::Relaxed);
        let max_frame = usize::from(config.mtu) + net::ETH_LEN;
        let data_room =
            u16::try_from((max_frame + 64).max(2048) + sys::RTE_PKTMBUF_HEADROOM as usize)
                .map_err(|_| DpdkError::InvalidConfig("mtu too large".to_owned()))?;
        for q in 0..queues {
            let name = CString::new(format!("dp{set_id}_{q}"))
                .map_err(|_| DpdkError::InvalidConfig("pool name".to_owned()))?;
            // SAFETY: EAL initialised; name is a valid C string (DPDK copies it).
            let socket = unsafe { sys::rte_eth_dev_socket_id(ids[0]) };
            // SAFETY: as above; the pool is freed by `Set::drop`.
            let pool = unsafe {
                sys::rte_pktmbuf_pool_create(
                    name.as_ptr(),
                    config.pool_size,
                    0,
                    0,
                    data_room,
                    socket,
                )
            };
            if pool.is_null() {
                // Nothing of this set is started yet; release the ports.
                // SAFETY: reads the thread-local rte_errno of the failed call.
                let e = setup_error("mbuf pool creation", unsafe { sys::rsdpdk_errno() });
                drop(set);
                release_ports(&ids);
                return Err(e);
            }
            set.pools.push(Pool(pool));
        }
        for (cfg, &id) in config.interfaces.iter().zip(&ids) {
            match setup_port(id, cfg, config, &set.pools) {
                Ok(p) => set.ports.push(p),
                Err(e) => {
                    drop(set);
                    release_ports(&ids);
                    return Err(e);
                }
            }
        }
        let set = Arc::new(set);
        let burst = config.burst;
        Ok((0..queues)
            .map(|q| DpdkLink {
                pool: set.pools[usize::from(q)].0,
                set: Arc::clone(&set),
                queue: q,
                burst,
                stash: VecDeque::with_capacity(burst * 2),
                mbufs: Vec::with_capacity(burst),
                scratch: vec![0u8; max_frame + 64],
                control: VecDeque::with_capacity(CONTROL_LIMIT),
                services: Vec::new(),
                next_service: Instant::now(),
                ident: q.wrapping_mul(0x1111),
                max_frame: max_frame + 64,
                waker: Arc::new(Flag::default()),
                stats: LinkStats::default(),
                dpdk: DpdkStats::default(),
            })
            .collect())
    }

    /// The MAC address of the link's `index`-th interface.
    pub fn mac(&self, index: usize) -> Option<MacAddr> {
        self.set.ports.get(index).map(|p| p.iface.mac)
    }

    /// The DPDK port ids of the interfaces, in configuration order.
    pub fn port_ids(&self) -> Vec<u16> {
        self.set.ports.iter().map(|p| p.id).collect()
    }

    /// Whether every port computes the SCTP CRC32c of transmitted packets in hardware
    /// (`RTE_ETH_TX_OFFLOAD_SCTP_CKSUM`, enabled when offered). Either way the link puts a
    /// correct checksum on every packet (in software when the stack left the field zero), so
    /// `EndpointConfig::tx_checksum_offload` is safe with any `DpdkLink`; it only saves CPU
    /// when this is true.
    pub fn sctp_crc_offload(&self) -> bool {
        self.set.ports.iter().all(|p| p.offloads.tx_sctp)
    }

    /// The SCTP checksum offloads in use on each port, in configuration order.
    pub fn offloads(&self) -> Vec<Offloads> {
        self.set.ports.iter().map(|p| p.offloads).collect()
    }

    /// DPDK-specific counters.
    pub fn dpdk_stats(&self) -> DpdkStats {
        self.dpdk
    }

    /// Neighbour-cache drops (queue full, table full, resolution abandoned) of the whole set.
    pub fn neighbour_drops(&self) -> u64 {
        self.set.neighbours().dropped
    }

    /// Whether `ip`'s link-layer address is known (resolved and fresh).
    pub fn neighbour(&self, ip: IpAddr) -> Option<MacAddr> {
        self.set.neighbours().get(ip, Instant::now())
    }

    /// The interface and source address for a packet: the port owning `meta.src`, or the
    /// first port of the destination's family (preferring one on the destination's prefix).
    fn route(set: &Set, meta: &TxMeta) -> Option<(usize, IpAddr)> {
        if let Some(src) = meta.src {
            if src.is_ipv4() != meta.dst.is_ipv4() {
                return None;
            }
            return set
                .ports
                .iter()
                .position(|p| p.iface.owns(src))
                .map(|i| (i, src));
        }
        let on_link = set.ports.iter().position(|p| {
            let pfx = if meta.dst.is_ipv4() {
                p.iface.v4
            } else {
                p.iface.v6
            };
            pfx.is_some_and(|x| x.contains(meta.dst))
        });
        let idx = on_link.or_else(|| {
            set.ports
                .iter()
                .position(|p| p.iface.address_for(meta.dst).is_some())
        })?;
        Some((idx, set.ports[idx].iface.address_for(meta.dst)?))
    }

    /// Builds an mbuf holding an SCTP packet in Ethernet + IP; null when no mbuf is free or
    /// the packet does not fit.
    fn build(
        &mut self,
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: IpAddr,
        dst: IpAddr,
        data: &[u8],
        offloads: Offloads,
    ) -> *mut sys::rte_mbuf {
        let hl = net::ETH_LEN + ip_header_len(dst);
        let Ok(total) = u16::try_from(hl + data.len()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the pool is this link's and alive while `set` is.
        let m = unsafe { sys::rsdpdk_pktmbuf_alloc(self.pool) };
        if m.is_null() {
            return m;
        }
        // SAFETY: m is a fresh mbuf owned by us.
        let p = unsafe { sys::rsdpdk_pktmbuf_append(m, total) };
        if p.is_null() {
            // SAFETY: m is ours and not handed to anyone.
            unsafe { sys::rsdpdk_pktmbuf_free(m) };
            return std::ptr::null_mut();
        }
        // SAFETY: append returned `total` contiguous writable bytes inside m's first segment.
        let buf = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), usize::from(total)) };
        self.ident = self.ident.wrapping_add(1);
        match net::write_sctp_headers(buf, src_mac, dst_mac, src, dst, data.len(), self.ident) {
            Some(h) if h == hl => {
                buf[hl..].copy_from_slice(data);
                let sctp = &mut buf[hl..];
                let stored = sctp
                    .get(8..12)
                    .and_then(|c| <[u8; 4]>::try_from(c).ok())
                    .unwrap_or([1; 4]);
                let l3 = u16::try_from(ip_header_len(dst)).unwrap_or(0);
                let l2 = net::ETH_LEN as u16;
                match offloads.tx_action(dst.is_ipv4(), l2, l3, stored) {
                    TxAction::Hardware {
                        ol_flags,
                        l2_len,
                        l3_len,
                    } => {
                        // Zeroed for NICs that fold the field into their computation.
                        if let Some(c) = sctp.get_mut(8..12) {
                            c.fill(0);
                        }
                        // SAFETY: m is ours; only its offload metadata is set.
                        unsafe { sys::rsdpdk_mbuf_set_tx_offload(m, ol_flags, l2_len, l3_len) };
                        self.dpdk.tx_checksum_hardware += 1;
                    }
                    TxAction::Software => {
                        sctp_stack::wire::write_checksum(sctp);
                        self.dpdk.tx_checksum_software += 1;
                    }
                    TxAction::AsIs => {}
                }
                m
            }
            _ => {
                // SAFETY: m is ours.
                unsafe { sys::rsdpdk_pktmbuf_free(m) };
                std::ptr::null_mut()
            }
        }
    }

    /// An mbuf holding a copy of a control frame.
    fn build_raw(&mut self, frame: &[u8]) -> *mut sys::rte_mbuf {
        let Ok(len) = u16::try_from(frame.len()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the pool is this link's and alive.
        let m = unsafe { sys::rsdpdk_pktmbuf_alloc(self.pool) };
        if m.is_null() {
            return m;
        }
        // SAFETY: m is a fresh mbuf owned by us.
        let p = unsafe { sys::rsdpdk_pktmbuf_append(m, len) };
        if p.is_null() {
            // SAFETY: m is ours.
            unsafe { sys::rsdpdk_pktmbuf_free(m) };
            return std::ptr::null_mut();
        }
        // SAFETY: `len` writable bytes at p (see above); frame has `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), p.cast::<u8>(), frame.len()) };
        m
    }

    /// Hands `self.mbufs` to port `port_idx`'s transmit queue; what the ring refuses after a
    /// few retries is freed and counted. Returns the number sent.
    fn flush(&mut self, set: &Set, port_idx: usize) -> usize {
        let mut sent = 0usize;
        let n = self.mbufs.len();
        let port = set.ports[port_idx].id;
        let mut tries = 0;
        while sent < n && tries < TX_RETRIES {
            let want = u16::try_from(n - sent).unwrap_or(u16::MAX);
            // SAFETY: mbufs[sent..] are valid mbufs we own; the queue belongs to this link
            // (one thread, `&mut self`); accepted mbufs become the driver's.
            let k = unsafe {
                sys::rsdpdk_tx_burst(port, self.queue, self.mbufs.as_mut_ptr().add(sent), want)
            };
            sent += usize::from(k);
            tries += 1;
        }
        if sent < n {
            let rest = n - sent;
            // SAFETY: the refused mbufs are still ours.
            unsafe {
                sys::rsdpdk_pktmbuf_free_bulk(self.mbufs.as_mut_ptr().add(sent), rest as u32)
            };
            self.dpdk.tx_ring_full += rest as u64;
            self.stats.tx_dropped += rest as u64;
            self.stats.tx_would_block += 1;
        }
        self.mbufs.clear();
        if n > 0 {
            self.stats.tx_batches += 1;
        }
        sent
    }

    fn push_control(&mut self, c: Control) {
        if self.control.len() >= CONTROL_LIMIT {
            self.dpdk.control_dropped += 1;
            if let Control::Released(_) = c {
                self.stats.tx_dropped += 1;
            }
            return;
        }
        self.control.push_back(c);
    }

    /// Queues a resolution request for `ip` on interface `iface`.
    fn request(&mut self, set: &Set, iface: usize, ip: IpAddr) {
        let Some(p) = set.ports.get(iface) else {
            return;
        };
        let i = &p.iface;
        match ip {
            IpAddr::V4(t) => {
                let Some(IpAddr::V4(our)) = i.v4.map(|p| p.addr) else {
                    return;
                };
                self.dpdk.arp_requests += 1;
                let f = net::arp_frame(true, i.mac, our, MacAddr::default(), t);
                self.push_control(Control::Arp(iface, f));
            }
            IpAddr::V6(t) => {
                let Some(IpAddr::V6(our)) = i.v6.map(|p| p.addr) else {
                    return;
                };
                let group = net::solicited_node(t);
                if let Some(f) =
                    net::nd_frame(true, i.mac, our, group, MacAddr::ipv6_multicast(group), t)
                {
                    self.dpdk.nd_solicitations += 1;
                    self.push_control(Control::Nd(iface, f));
                }
            }
        }
    }

    /// Sends queued control frames and released packets.
    fn flush_control(&mut self, set: &Set) {
        if self.control.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(c) = self.control.pop_front() {
            let (iface, m, sctp_len) = match c {
                Control::Arp(i, f) => (i, self.build_raw(&f), None),
                Control::Nd(i, f) => (i, self.build_raw(&f), None),
                Control::Released(q) => {
                    let Some((i, _)) = Self::route(
                        set,
                        &TxMeta {
                            src: Some(q.src),
                            ..q.meta
                        },
                    ) else {
                        self.stats.tx_dropped += 1;
                        continue;
                    };
                    let p = &set.ports[i].iface;
                    let hop = p.next_hop(q.meta.dst);
                    let mac = hop.and_then(|h| set.neighbours().get(h, now));
                    let Some(mac) = mac else {
                        self.stats.tx_dropped += 1;
                        continue;
                    };
                    let offloads = set.ports[i].offloads;
                    let m = self.build(p.mac, mac, q.src, q.meta.dst, &q.data, offloads);
                    (i, m, Some(q.data.len()))
                }
            };
            if m.is_null() {
                self.dpdk.tx_ring_full += 1;
                self.stats.tx_dropped += 1;
                continue;
            }
            self.mbufs.push(m);
            if self.flush(set, iface) == 1
                && let Some(len) = sctp_len
            {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += len as u64;
            }
        }
    }

    /// Retries pending resolutions when due.
    fn service(&mut self, set: &Set, now: Instant) {
        if now < self.next_service {
            return;
        }
        self.next_service = now + SERVICE_INTERVAL;
        let mut services = std::mem::take(&mut self.services);
        set.neighbours().service(now, &mut services);
        for s in services.drain(..) {
            let Service::Request { ip, iface } = s;
            self.request(set, iface, ip);
        }
        self.services = services;
    }

    /// Handles one received frame of interface `pidx`.
    fn handle_frame(
        &mut self,
        set: &Set,
        pidx: usize,
        frame: &[u8],
        rx: &mut RxBatch,
        now: Instant,
    ) {
        let iface = &set.ports[pidx].iface;
        match net::classify(frame, iface) {
            Frame::Sctp { src, dst, payload } => {
                let meta = RxMeta {
                    src,
                    dst,
                    encaps_port: 0,
                    ifindex: u32::from(set.ports[pidx].id) + 1,
                };
                if rx.push_copy(meta, rx.len(), payload) {
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += payload.len() as u64;
                } else {
                    self.stats.rx_dropped += 1;
                }
            }
            Frame::Arp {
                request,
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                let ours = iface.v4.and_then(|p| match p.addr {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                });
                let for_us = ours == Some(target_ip);
                // RFC 826 ("Packet Reception"): update an existing entry for the sender;
                // add one only when we are the target.
                let released =
                    set.neighbours()
                        .learn(IpAddr::V4(sender_ip), sender_mac, now, for_us);
                for q in released {
                    self.push_control(Control::Released(q));
                }
                if request && let (true, Some(our)) = (for_us, ours) {
                    self.dpdk.arp_replies += 1;
                    let f = net::arp_frame(false, iface.mac, our, sender_mac, sender_ip);
                    self.push_control(Control::Arp(pidx, f));
                }
            }
            Frame::NeighbourSolicitation {
                src,
                src_mac,
                target,
            } => {
                // RFC 4861 §7.2.3: record the solicitor's link-layer address, then answer
                // (to the all-nodes group when the source is unspecified, §7.2.4).
                let (dst, dst_mac) = if src.is_unspecified() {
                    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                    (all, MacAddr::ipv6_multicast(all))
                } else {
                    let Some(mac) = src_mac else {
                        // Unicast solicitations may omit the option; we cannot answer
                        // without a cached address, and do not solicit back (no loops).
                        match set.neighbours().get(IpAddr::V6(src), now) {
                            Some(m) => {
                                self.answer_ns(set, pidx, src, m, target);
                            }
                            None => self.dpdk.rx_ignored += 1,
                        }
                        return;
                    };
                    for q in set.neighbours().learn(IpAddr::V6(src), mac, now, true) {
                        self.push_control(Control::Released(q));
                    }
                    (src, mac)
                };
                self.answer_ns(set, pidx, dst, dst_mac, target);
            }
            Frame::NeighbourAdvertisement { target, mac } => {
                // RFC 4861 §7.2.5: only an existing (solicited) entry is updated.
                for q in set.neighbours().learn(IpAddr::V6(target), mac, now, false) {
                    self.push_control(Control::Released(q));
                }
            }
            Frame::Ignore => self.dpdk.rx_ignored += 1,
            Frame::Bad => self.stats.rx_dropped += 1,
        }
    }

    fn answer_ns(
        &mut self,
        set: &Set,
        pidx: usize,
        dst: Ipv6Addr,
        dst_mac: MacAddr,
        target: Ipv6Addr,
    ) {
        let mac = set.ports[pidx].iface.mac;
        if let Some(f) = net::nd_frame(false, mac, target, dst, dst_mac, target) {
            self.dpdk.nd_advertisements += 1;
            self.push_control(Control::Nd(pidx, f));
        }
    }

    /// Parses and frees one received mbuf.
    fn consume_mbuf(
        &mut self,
        set: &Set,
        pidx: usize,
        m: *mut sys::rte_mbuf,
        rx: &mut RxBatch,
        now: Instant,
    ) {
        // SAFETY: m is a received mbuf we own until freed below.
        let (contiguous, pkt_len, data_len, ol_flags) = unsafe {
            (
                sys::rsdpdk_pktmbuf_is_contiguous(m) != 0,
                sys::rsdpdk_pktmbuf_pkt_len(m) as usize,
                usize::from(sys::rsdpdk_pktmbuf_data_len(m)),
                sys::rsdpdk_mbuf_ol_flags(m),
            )
        };
        // RFC 9260 §6.8: a packet whose CRC32c the NIC found wrong is discarded. ARP frames
        // carry no L4 status; a TCP/UDP frame the NIC flags bad is dropped here too (it
        // would have been ignored as not ours anyway).
        let verdict = set
            .ports
            .get(pidx)
            .map_or(RxChecksum::Unverified, |p| p.offloads.rx_verdict(ol_flags));
        match verdict {
            RxChecksum::Bad => {
                self.dpdk.rx_checksum_bad += 1;
                self.stats.rx_dropped += 1;
                // SAFETY: m is ours and nothing refers to it.
                unsafe { sys::rsdpdk_pktmbuf_free(m) };
                return;
            }
            RxChecksum::Verified => self.dpdk.rx_checksum_good += 1,
            _ => {}
        }
        if contiguous {
            // SAFETY: a contiguous mbuf holds data_len valid bytes at its data pointer; the
            // slice is dropped before the mbuf is freed.
            let frame = unsafe {
                std::slice::from_raw_parts(sys::rsdpdk_pktmbuf_mtod(m).cast::<u8>(), data_len)
            };
            self.handle_frame(set, pidx, frame, rx, now);
        } else if pkt_len <= self.max_frame {
            let mut scratch = std::mem::take(&mut self.scratch);
            let len = u32::try_from(pkt_len).unwrap_or(0);
            // SAFETY: scratch has room for pkt_len bytes; rte_pktmbuf_read copies the chain
            // into it (or returns a pointer into the mbuf when contiguous, not the case here).
            let p = unsafe { sys::rsdpdk_pktmbuf_read(m, 0, len, scratch.as_mut_ptr().cast()) };
            if p.is_null() {
                self.stats.rx_dropped += 1;
            } else {
                // SAFETY: p points at pkt_len valid bytes (scratch or the mbuf).
                let frame = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), pkt_len) };
                self.handle_frame(set, pidx, frame, rx, now);
            }
            self.scratch = scratch;
        } else {
            self.stats.rx_dropped += 1;
        }
        // SAFETY: m is ours and no slice into it is alive.
        unsafe { sys::rsdpdk_pktmbuf_free(m) };
    }

    /// Polls every port's queue once into the stash; returns how many arrived.
    fn poll_into_stash(&mut self, set: &Set) -> usize {
        let mut got = 0;
        for (pidx, p) in set.ports.iter().enumerate() {
            self.mbufs.clear();
            self.mbufs.resize(self.burst, std::ptr::null_mut());
            let want = u16::try_from(self.burst).unwrap_or(u16::MAX);
            // SAFETY: mbufs has room for `want` pointers; the queue is this link's.
            let n =
                unsafe { sys::rsdpdk_rx_burst(p.id, self.queue, self.mbufs.as_mut_ptr(), want) };
            for &m in &self.mbufs[..usize::from(n)] {
                self.stash.push_back((pidx, m));
            }
            got += usize::from(n);
        }
        self.mbufs.clear();
        got
    }
}

impl Drop for DpdkLink {
    fn drop(&mut self) {
        for (_, m) in self.stash.drain(..) {
            // SAFETY: stashed mbufs are ours.
            unsafe { sys::rsdpdk_pktmbuf_free(m) };
        }
    }
}

fn setup_port(
    id: u16,
    cfg: &InterfaceConfig,
    config: &DpdkConfig,
    pools: &[Pool],
) -> Result<Port, DpdkError> {
    let name = port_name(id);
    let queues = u16::try_from(pools.len()).unwrap_or(u16::MAX);
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid port id; info is a valid out pointer.
    let r = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if r != 0 {
        return Err(setup_error(format!("{name}: device info"), r));
    }
    if info.max_rx_queues < queues || info.max_tx_queues < queues {
        return Err(DpdkError::InvalidConfig(format!(
            "{name} supports {} receive / {} transmit queues, {queues} workers need one each (net_af_packet: add qpairs={queues} to its --vdev)",
            info.max_rx_queues, info.max_tx_queues
        )));
    }
    let mut conf = sys::rte_eth_conf::default();
    let wanted_rss = sys::RTE_ETH_RSS_IP
        | sys::RTE_ETH_RSS_NONFRAG_IPV4_SCTP
        | sys::RTE_ETH_RSS_NONFRAG_IPV6_SCTP;
    let rss = info.flow_type_rss_offloads & wanted_rss;
    if queues > 1 && rss != 0 {
        conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    } else if queues > 1 {
        tracing::info!(
            port = %name,
            "no RSS: every packet lands on queue 0's worker and is handed to its owner in software"
        );
    }
    // SCTP CRC32c offloads must be enabled here for the PMD to honour the mbuf flags.
    let offloads = Offloads::from_capabilities(info.tx_offload_capa, info.rx_offload_capa);
    conf.txmode.offloads |= offloads.tx_conf();
    conf.rxmode.offloads |= offloads.rx_conf();
    if info.tx_offload_capa & sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE != 0 {
        // Every mbuf of a queue comes from that queue's pool with refcount 1.
        conf.txmode.offloads |= sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    }
    // SAFETY: valid port, conf initialised.
    let r = unsafe { sys::rte_eth_dev_configure(id, queues, queues, &conf) };
    if r != 0 {
        return Err(setup_error(format!("{name}: configure"), r));
    }
    let mut nb_rx = config.rx_descriptors;
    let mut nb_tx = config.tx_descriptors;
    // SAFETY: valid port; out pointers to locals.
    let r = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
    if r != 0 {
        return Err(setup_error(format!("{name}: descriptor counts"), r));
    }
    // SAFETY: valid port.
    let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
    let socket = u32::try_from(socket).unwrap_or(sys::SOCKET_ID_ANY as u32);
    for (q, pool) in pools.iter().enumerate() {
        let q = q as u16;
        // SAFETY: configured port, queue index below the configured count, pool alive for
        // the port's life (Set drops ports before pools); NULL conf = the driver's defaults.
        let r =
            unsafe { sys::rte_eth_rx_queue_setup(id, q, nb_rx, socket, std::ptr::null(), pool.0) };
        if r != 0 {
            return Err(setup_error(format!("{name}: receive queue {q}"), r));
        }
        let mut txconf = info.default_txconf;
        txconf.offloads = conf.txmode.offloads;
        // SAFETY: as above; txconf is a valid local.
        let r = unsafe { sys::rte_eth_tx_queue_setup(id, q, nb_tx, socket, &txconf) };
        if r != 0 {
            return Err(setup_error(format!("{name}: transmit queue {q}"), r));
        }
    }
    // Not every virtual PMD can change its MTU: best effort.
    // SAFETY: valid configured port.
    let _ = unsafe { sys::rte_eth_dev_set_mtu(id, config.mtu) };
    // SAFETY: valid configured port with its queues set up.
    let r = unsafe { sys::rte_eth_dev_start(id) };
    if r != 0 {
        return Err(setup_error(format!("{name}: start"), r));
    }
    // Neighbour discovery needs the solicited-node multicast groups: take all multicast.
    // SAFETY: started port. Failure is harmless for PMDs that pass everything anyway.
    let _ = unsafe { sys::rte_eth_allmulticast_enable(id) };
    let mut mac = sys::rte_ether_addr::default();
    // SAFETY: valid port; mac is a valid out pointer.
    let r = unsafe { sys::rte_eth_macaddr_get(id, &mut mac) };
    if r != 0 {
        // SAFETY: the port was started above.
        unsafe { sys::rte_eth_dev_stop(id) };
        return Err(setup_error(format!("{name}: MAC address"), r));
    }
    let driver = if info.driver_name.is_null() {
        "?".to_owned()
    } else {
        // SAFETY: the driver name is a static NUL-terminated string of the PMD.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    let iface = Interface {
        mac: MacAddr(mac.addr_bytes),
        v4: cfg.v4,
        v6: cfg.v6,
        gateway4: cfg.gateway4,
        gateway6: cfg.gateway6,
    };
    tracing::info!(
        port = %name, id, driver = %driver, mac = %iface.mac, queues,
        rss = rss != 0 && queues > 1, sctp_crc_tx = offloads.tx_sctp,
        sctp_crc_rx = offloads.rx_sctp,
        "DPDK port started"
    );
    Ok(Port {
        id,
        iface,
        offloads,
    })
}

impl Link for DpdkLink {
    fn backend(&self) -> Backend {
        Backend::Dpdk
    }

    fn rx_slot_size(&self) -> usize {
        self.max_frame
    }

    fn header_overhead(&self, remote: IpAddr) -> usize {
        ip_header_len(remote)
    }

    fn recv(&mut self, rx: &mut RxBatch) -> Result<usize, LinkError> {
        rx.clear();
        let set = Arc::clone(&self.set);
        let now = Instant::now();
        self.service(&set, now);
        let room = rx.slots();
        if self.stash.is_empty() {
            self.poll_into_stash(&set);
        }
        let mut handled = 0usize;
        while rx.len() < room {
            let Some((pidx, m)) = self.stash.pop_front() else {
                if handled >= room || self.poll_into_stash(&set) == 0 {
                    break;
                }
                continue;
            };
            handled += 1;
            self.consume_mbuf(&set, pidx, m, rx, now);
        }
        if !rx.is_empty() {
            self.stats.rx_batches += 1;
        }
        self.flush_control(&set);
        Ok(rx.len())
    }

    fn send(&mut self, tx: &mut TxBatch) -> Result<usize, LinkError> {
        let set = Arc::clone(&self.set);
        let n = tx.len();
        if n == 0 {
            self.flush_control(&set);
            return Ok(0);
        }
        let now = Instant::now();
        let mut burst_port = None::<usize>;
        let mut burst_bytes = 0u64;
        let mut burst_count = 0u64;
        let mut requests = Vec::new();
        {
            let mut neighbours = set.neighbours();
            for i in 0..n {
                let Some((meta, data)) = tx.pending(i) else {
                    break;
                };
                let Some((pidx, src)) = Self::route(&set, &meta) else {
                    self.stats.tx_dropped += 1;
                    continue;
                };
                let iface = &set.ports[pidx].iface;
                let Some(hop) = iface.next_hop(meta.dst) else {
                    self.stats.tx_dropped += 1;
                    continue;
                };
                match neighbours.lookup_or_queue(hop, now, pidx, || Queued {
                    meta,
                    src,
                    data: data.to_vec(),
                }) {
                    Lookup::Resolved(mac) => {
                        if burst_port.is_some_and(|b| b != pidx) || self.mbufs.len() >= self.burst {
                            let b = burst_port.unwrap_or(pidx);
                            let before = self.mbufs.len() as u64;
                            let sent = self.flush(&set, b) as u64;
                            if sent == before {
                                self.stats.tx_packets += burst_count;
                                self.stats.tx_bytes += burst_bytes;
                            } else {
                                self.stats.tx_packets += sent;
                            }
                            burst_bytes = 0;
                            burst_count = 0;
                        }
                        let offloads = set.ports[pidx].offloads;
                        let m = self.build(iface.mac, mac, src, meta.dst, data, offloads);
                        if m.is_null() {
                            self.dpdk.tx_ring_full += 1;
                            self.stats.tx_dropped += 1;
                            continue;
                        }
                        self.mbufs.push(m);
                        burst_port = Some(pidx);
                        burst_bytes += data.len() as u64;
                        burst_count += 1;
                    }
                    Lookup::QueuedSendRequest => requests.push((pidx, hop)),
                    Lookup::Queued => {}
                    Lookup::Dropped => self.stats.tx_dropped += 1,
                }
            }
        }
        if let Some(b) = burst_port
            && !self.mbufs.is_empty()
        {
            let before = self.mbufs.len() as u64;
            let sent = self.flush(&set, b) as u64;
            if sent == before {
                self.stats.tx_packets += burst_count;
                self.stats.tx_bytes += burst_bytes;
            } else {
                self.stats.tx_packets += sent;
            }
        }
        for (pidx, hop) in requests {
            self.request(&set, pidx, hop);
        }
        self.flush_control(&set);
        tx.consume(n);
        Ok(n)
    }

    fn wait(
        &mut self,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> Result<Readiness, LinkError> {
        let set = Arc::clone(&self.set);
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        loop {
            let woken = self.waker.0.swap(false, Ordering::AcqRel);
            let readable = !self.stash.is_empty() || self.poll_into_stash(&set) > 0;
            let writable = interest == Interest::ReadWrite;
            if woken || readable || writable {
                return Ok(Readiness {
                    readable,
                    writable,
                    woken,
                });
            }
            let now = Instant::now();
            self.service(&set, now);
            self.flush_control(&set);
            let sleep = match deadline {
                Some(d) if now >= d => return Ok(Readiness::default()),
                Some(d) => (d - now).min(POLL_SLEEP),
                None => POLL_SLEEP,
            };
            // Poll without sleeping for a short while first: answers (SACKs, echoes) often
            // arrive within microseconds, and a sleep costs tens of them.
            if now.duration_since(start) < SPIN {
                std::thread::yield_now();
                continue;
            }
            std::thread::sleep(sleep);
        }
    }

    fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.waker) as Arc<dyn WakeTarget>)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}
