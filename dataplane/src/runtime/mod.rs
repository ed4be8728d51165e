//! The per-core run-to-completion runtime: worker threads that each own an SCTP endpoint
//! shard, a link, hand-off rings, timers and the application.
//!
//! # Threading model
//!
//! A [`Runtime`] runs `N` workers (1 by default, enough for tools; one per core for servers),
//! each on its own thread, pinned to a core with `core_affinity` when `N > 1`. A worker owns,
//! exclusively and without locks:
//!
//! - an [`Endpoint`] shard: shard `i` of `N` (`EndpointConfig::shard`), so every verification
//!   tag it hands out names it ([`tag_owner`](sctp_stack::endpoint::tag_owner)`(tag, N) == i`);
//! - its link (an [`AnyLink`]: a UDP socket of a `SO_REUSEPORT` group, raw sockets, or a
//!   memory-fabric node) with its receive and transmit batches and a buffer pool;
//! - one bounded single-producer single-consumer ring ([`spsc`]) to and from every other worker;
//! - the application instance made for it (an [`App`]), which sees only this shard's
//!   associations.
//!
//! The loop of a worker, run to completion:
//!
//! ```text
//! loop {
//!     receive burst -> steer each packet: own shard | hand off to its owner | drop
//!     hand-off rings from other workers -> own shard
//!     endpoint events -> App::event; App::poll
//!     Endpoint::poll_transmit -> transmit batch -> link (one burst)
//!     timers: Endpoint::handle_timeout, App::timeout
//!     nothing left? -> busy-poll (or spin up to a budget), or sleep until a packet, a waker
//!                      or the next deadline
//! }
//! ```
//!
//! Nothing in the loop takes a lock. Other threads reach a worker only through queues it
//! polls (hand-off rings, [`mailbox`]es, the [`socket`] handles' channels) followed by a
//! wake-up ([`WorkerRemote::notify`]), which costs a system call only when the worker
//! sleeps. Sleeping uses `mio` readiness over the link's descriptors for every
//! descriptor-based backend (UDP, raw `poll`), the link's own wait for io_uring and the
//! memory fabric.
//!
//! # Steering
//!
//! A packet belongs to the owner of its verification tag; INITs (tag 0) to the worker chosen
//! by a hash of their ports; T-bit ABORT and SHUTDOWN COMPLETE to every worker ([`steer`]).
//! The kernel does most of the steering: UDP sockets form a `SO_REUSEPORT` group whose classic
//! BPF program picks the owner's socket; raw sockets get per-worker classic BPF filters.
//! Whatever still lands on the wrong worker (GRO runs mixing associations, kernels refusing
//! the programs) is handed to its owner once through the rings; raw sockets without filters
//! make every worker see every packet and keep its share.
//!
//! # Applications
//!
//! Two ways to use the stack:
//! - in-worker [`App`]s: callbacks with a [`Context`] on the worker thread (connect, listen,
//!   send, receive, close through the endpoint directly). No copies, no cross-thread traffic:
//!   the fast path, and where the RSerPool layer plugs in.
//! - [`socket`] handles from any thread: listen/accept, connect, send/receive with stream,
//!   PPID and options, events, blocking and non-blocking, over bounded channels and the
//!   worker's waker.
//!
//! # UDP encapsulation
//!
//! The default backend (RFC 6951, unprivileged): the local UDP port is 9899 unless configured;
//! outgoing associations use [`RuntimeConfig::remote_udp_port`] (9899) unless the connect
//! request names one; the stack learns each peer's actual port from its packets
//! (`Datagram::encaps_port`, RFC 6951 §5.4).

pub mod app;
mod capture;
pub mod socket;
pub mod spsc;
pub mod steer;
mod worker;

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use sctp_stack::time::{Timestamp, duration_micros};
use sctp_stack::{ConfigError, Endpoint, EndpointConfig, EndpointStats};

pub use app::{App, Context, MailboxReceiver, MailboxSender, WorkerInfo, WorkerRemote, mailbox};

use crate::AnyLink;
use crate::link::{Backend, Link, LinkError, LinkStats};
use crate::packet::{BufferPool, RxBatch, TxBatch};
use app::{PortPicker, Shared, WorkerShared};
use capture::Capture;
use worker::{Idle, SteerMode, Worker};

/// The runtime's clock: a monotonic clock turned into [`Timestamp`]s since its creation.
/// Copies share the epoch, so timestamps of all workers compare.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(duration_micros(self.epoch.elapsed()))
    }

    /// The instant a timestamp of this clock stands for.
    pub fn instant(&self, t: Timestamp) -> Instant {
        self.epoch + t.since_epoch()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What an idle worker does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleMode {
    /// Sleep until a packet, a wake-up or the next deadline (the default).
    #[default]
    Block,
    /// Spin: lowest latency, one core at 100 % per worker.
    BusyPoll,
    /// Keep polling for up to this long after the last packet, event or timer before
    /// sleeping: a reply that comes back within the budget is picked up without a wake-up
    /// (a request/response exchange then costs no thread wake-ups while it is busy), and an
    /// idle worker still sleeps. Costs up to the budget in CPU time after every burst.
    SpinThenBlock(Duration),
}

/// Which cores the workers run on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pinning {
    /// Pin worker `i` to the `i`-th core when there is more than one worker (the default).
    #[default]
    Auto,
    /// Never pin.
    Off,
    /// Pin worker `i` to core `cores[i % cores.len()]` (core ids as the OS numbers them).
    Cores(Vec<usize>),
}

/// Configuration of a [`Runtime`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Number of workers (and endpoint shards): 1.
    pub workers: usize,
    /// Core pinning.
    pub pinning: Pinning,
    /// Block or busy-poll when idle.
    pub idle: IdleMode,
    /// The endpoint configuration; `shard` and `shard_count` are set per worker, and the RNG
    /// seed is varied per worker.
    pub endpoint: EndpointConfig,
    /// Receive slots per burst: 64.
    pub rx_batch: usize,
    /// Packets per transmit burst: 64.
    pub tx_batch: usize,
    /// The largest SCTP packet a worker sends (transmit slot size): 9216 bytes. Must be at
    /// least the association path MTU.
    pub max_packet: usize,
    /// Packets each hand-off ring holds: 1024.
    pub handoff_capacity: usize,
    /// Under UDP encapsulation, the peer's UDP port for outgoing associations whose connect
    /// request names none (RFC 6951 §5.1: 9899).
    pub remote_udp_port: u16,
    /// Write every packet received and sent into this pcap file.
    pub capture: Option<PathBuf>,
    /// Name prefix of the worker threads.
    pub thread_name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: 1,
            pinning: Pinning::Auto,
            idle: IdleMode::Block,
            endpoint: EndpointConfig::default(),
            rx_batch: 64,
            tx_batch: 64,
            max_packet: 9216,
            handoff_capacity: 1024,
            remote_udp_port: crate::udp::SCTP_UDP_TUNNELING_PORT,
            capture: None,
            thread_name: "sctp-worker".to_owned(),
        }
    }
}

/// The links of a runtime: opened by it (one per worker) or given to it.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkSpec {
    /// UDP encapsulation (RFC 6951): one socket per worker, a `SO_REUSEPORT` group with a
    /// steering program when there are several.
    Udp(crate::udp::UdpConfig),
    /// Raw IP on io_uring where available, else on `poll` ([`AnyLink::open_raw`]); per-worker
    /// steering filters.
    Raw(crate::raw::RawConfig),
    /// Raw IP on `poll`, never io_uring.
    RawPoll(crate::raw::RawConfig),
    /// Links opened by the caller, one per worker (e.g. memory-fabric nodes). With several,
    /// packets reaching the wrong worker are handed to their owner.
    Links(Vec<AnyLink>),
}

/// Why a runtime could not start or stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The configuration cannot work.
    Config(&'static str),
    /// The endpoint configuration was refused.
    Endpoint(ConfigError),
    /// A link failed to open or failed while running.
    Link(LinkError),
    /// A system call of the runtime failed.
    Io(&'static str, io::Error),
    /// The capture file could not be created.
    Capture(PathBuf, io::Error),
    /// A worker thread panicked.
    WorkerPanicked(usize),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Config(why) => write!(f, "invalid runtime configuration: {why}"),
            RuntimeError::Endpoint(e) => write!(f, "{e}"),
            RuntimeError::Link(e) => write!(f, "{e}"),
            RuntimeError::Io(op, e) => write!(f, "{op}: {e}"),
            RuntimeError::Capture(path, e) => {
                write!(f, "cannot write capture {}: {e}", path.display())
            }
            RuntimeError::WorkerPanicked(i) => write!(f, "worker {i} panicked"),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Endpoint(e) => Some(e),
            RuntimeError::Link(e) => Some(e),
            RuntimeError::Io(_, e) | RuntimeError::Capture(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Counters of one worker, returned by [`Runtime::join`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Loop iterations.
    pub iterations: u64,
    /// Times the worker went to sleep.
    pub sleeps: u64,
    /// Packets handed to other workers.
    pub handoffs_out: u64,
    /// Packets received from other workers.
    pub handoffs_in: u64,
    /// Packets that could not be handed over (ring full, pool exhausted).
    pub handoff_dropped: u64,
    /// Transmit bursts stopped by a full kernel send buffer.
    pub tx_blocked: u64,
    /// The link's counters.
    pub link: LinkStats,
    /// The endpoint's counters.
    pub endpoint: EndpointStats,
}

/// A running set of workers. Dropping it stops and joins them.
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<Option<JoinHandle<Result<WorkerStats, RuntimeError>>>>,
    backend: Backend,
    fallback: Option<String>,
    local_udp_port: Option<u16>,
}

/// A fresh random seed from the operating system, for `EndpointConfig::rng_seed`.
pub fn random_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

/// The links, how they steer, and what the log should hear about the backend.
struct OpenedLinks {
    links: Vec<AnyLink>,
    mode: SteerMode,
    fallback: Option<String>,
    local_udp_port: Option<u16>,
}

fn open_links(spec: LinkSpec, n: usize) -> Result<OpenedLinks, RuntimeError> {
    let workers = u32::try_from(n).map_err(|_| RuntimeError::Config("too many workers"))?;
    match spec {
        LinkSpec::Udp(mut cfg) => {
            if n > 1 {
                cfg.reuse_port = true;
            }
            let mut links = Vec::with_capacity(n);
            // Bound one after the other on this thread: the group's socket order is the
            // worker order the steering program relies on.
            for _ in 0..n {
                let l = crate::udp::UdpLink::open(cfg.clone()).map_err(RuntimeError::Link)?;
                cfg.port = l.local_addr().port();
                links.push(l);
            }
            let mut fallback = None;
            if n > 1
                && let Some(first) = links.first()
                && let Err(e) = first.attach_reuseport_steering(workers)
            {
                fallback = Some(format!("kernel steering unavailable ({e}); handing off"));
            }
            Ok(OpenedLinks {
                local_udp_port: Some(cfg.port),
                links: links.into_iter().map(AnyLink::Udp).collect(),
                mode: if n > 1 {
                    SteerMode::HandOff
                } else {
                    SteerMode::Exclusive
                },
                fallback,
            })
        }
        LinkSpec::Raw(cfg) => open_raw(cfg, n, workers, true),
        LinkSpec::RawPoll(cfg) => open_raw(cfg, n, workers, false),
        LinkSpec::Links(links) => {
            if links.len() != n {
                return Err(RuntimeError::Config(
                    "LinkSpec::Links needs one link per worker",
                ));
            }
            let local_udp_port = links.first().and_then(|l| match l {
                AnyLink::Udp(u) => Some(u.local_addr().port()),
                _ => None,
            });
            Ok(OpenedLinks {
                links,
                mode: if n > 1 {
                    SteerMode::HandOff
                } else {
                    SteerMode::Exclusive
                },
                fallback: None,
                local_udp_port,
            })
        }
    }
}

fn open_raw(
    cfg: crate::raw::RawConfig,
    n: usize,
    workers: u32,
    uring: bool,
) -> Result<OpenedLinks, RuntimeError> {
    let mut links = Vec::with_capacity(n);
    let mut fallback = None;
    for _ in 0..n {
        if uring {
            let (l, why) = AnyLink::open_raw(cfg.clone()).map_err(RuntimeError::Link)?;
            if let Some(e) = why {
                fallback = Some(e.to_string());
            }
            links.push(l);
        } else {
            links.push(AnyLink::RawPoll(
                crate::raw::RawPollLink::open(cfg.clone()).map_err(RuntimeError::Link)?,
            ));
        }
    }
    let mut mode = SteerMode::Exclusive;
    if n > 1 {
        for (i, l) in links.iter().enumerate() {
            if let Err(e) = l.attach_steering(i as u32, workers) {
                // Without filters every worker sees every packet and keeps its share.
                mode = SteerMode::Replicated;
                let note = format!("kernel steering unavailable ({e}); filtering in software");
                fallback = Some(match fallback {
                    Some(f) => format!("{f}; {note}"),
                    None => note,
                });
                break;
            }
        }
    }
    Ok(OpenedLinks {
        links,
        mode,
        fallback,
        local_udp_port: None,
    })
}

fn pin_core(pinning: &Pinning, workers: usize, index: usize) {
    let core = match pinning {
        Pinning::Off => return,
        Pinning::Auto if workers <= 1 => return,
        Pinning::Auto => index,
        Pinning::Cores(cores) if cores.is_empty() => return,
        Pinning::Cores(cores) => cores[index % cores.len()],
    };
    let Some(ids) = core_affinity::get_core_ids() else {
        tracing::warn!(worker = index, "cannot list cores; worker not pinned");
        return;
    };
    let Some(id) = ids
        .iter()
        .find(|c| c.id == core)
        .or(ids.get(index % ids.len().max(1)))
    else {
        return;
    };
    if !core_affinity::set_for_current(*id) {
        tracing::warn!(worker = index, core = id.id, "pinning failed");
    }
}

impl Runtime {
    /// Opens the links, builds one endpoint shard and one application (by `factory`, on the
    /// worker's thread) per worker, and starts the workers. Errors in the configuration or
    /// while opening links are reported here, before any thread runs.
    pub fn start<A, F>(
        config: RuntimeConfig,
        links: LinkSpec,
        factory: F,
    ) -> Result<Runtime, RuntimeError>
    where
        A: App + 'static,
        F: Fn(&WorkerInfo) -> A + Send + Sync + 'static,
    {
        let n = config.workers;
        if n == 0 || n > 1024 {
            return Err(RuntimeError::Config("workers must be in 1..=1024"));
        }
        if usize::from(config.endpoint.association.pmtu) > config.max_packet {
            return Err(RuntimeError::Config(
                "max_packet must hold a packet of the association path MTU",
            ));
        }
        config.endpoint.validate().map_err(RuntimeError::Endpoint)?;
        let opened = open_links(links, n)?;
        if let Some(f) = &opened.fallback {
            tracing::info!("{f}");
        }
        let backend = opened.links.first().map_or(Backend::Memory, Link::backend);
        let remote_udp_port = if opened.local_udp_port.is_some() {
            config.remote_udp_port
        } else {
            0
        };

        // Idle strategies and wakers first: every worker must be wakeable before any runs.
        let mut idles = Vec::with_capacity(n);
        let mut worker_shared = Vec::with_capacity(n);
        for l in &opened.links {
            let (idle, waker) = Idle::new(l)?;
            idles.push(idle);
            worker_shared.push(WorkerShared {
                waker,
                sleeping: AtomicBool::new(false),
            });
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            workers: worker_shared,
        });

        // rings[i][j]: from worker i to worker j.
        let mut producers: Vec<Vec<Option<spsc::Producer<worker::Handoff>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut consumers: Vec<Vec<Option<spsc::Consumer<worker::Handoff>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        if n > 1 {
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        let (p, c) = spsc::ring(config.handoff_capacity);
                        producers[i][j] = Some(p);
                        consumers[j][i] = Some(c);
                    }
                }
            }
        }

        let clock = Clock::new();
        let capture = match &config.capture {
            Some(path) => Some(Arc::new(
                Capture::create(
                    path,
                    SystemTime::now(),
                    opened.local_udp_port,
                    config.remote_udp_port,
                )
                .map_err(|e| RuntimeError::Capture(path.clone(), e))?,
            )),
            None => None,
        };

        let mut endpoints = Vec::with_capacity(n);
        for i in 0..n {
            let mut ec = config.endpoint.clone();
            ec.shard = i as u32;
            ec.shard_count = n as u32;
            // Every raw IP socket of the host sees every SCTP packet: other processes' ports
            // are not ours to answer (no ABORT for their associations).
            if matches!(backend, Backend::RawPoll | Backend::RawUring) {
                ec.answer_foreign_ports = false;
            }
            // A DPDK link fills in the CRC32c itself: in hardware when the port offers SCTP
            // checksum offload, in software otherwise (dataplane::dpdk), so the endpoint
            // leaves the field zero.
            if matches!(backend, Backend::Dpdk) {
                ec.tx_checksum_offload = true;
            }
            // Distinct random streams per shard from one seed.
            for (k, b) in (i as u64).to_le_bytes().iter().enumerate() {
                ec.rng_seed[24 + k] ^= b;
            }
            endpoints.push(Endpoint::new(ec).map_err(RuntimeError::Endpoint)?);
        }

        let factory = Arc::new(factory);
        let mut threads = Vec::with_capacity(n);
        let mut parts = opened
            .links
            .into_iter()
            .zip(idles)
            .zip(endpoints)
            .zip(producers.into_iter().zip(consumers))
            .enumerate();
        let rx_slot = opened_rx_slot(&config);
        let mut spawn_error = None;
        for (i, (((link, idle), ep), (outbox, inbox))) in parts.by_ref() {
            let info = WorkerInfo {
                index: i,
                workers: n,
                backend: link.backend(),
                local_udp_port: opened.local_udp_port,
                remote_udp_port,
                remote: WorkerRemote {
                    shared: Arc::clone(&shared),
                    index: i,
                },
            };
            let rx = RxBatch::new(config.rx_batch, rx_slot.max(link.rx_slot_size()));
            let tx = TxBatch::new(config.tx_batch, config.max_packet);
            let pool = BufferPool::new(
                rx_slot.max(link.rx_slot_size()).min(65_536),
                config.handoff_capacity.saturating_mul(n.saturating_sub(1)) + 64,
                0,
            );
            let factory = Arc::clone(&factory);
            let shared_w = Arc::clone(&shared);
            let capture = capture.clone();
            let pinning = config.pinning.clone();
            let idle_mode = config.idle;
            let seed =
                u16::from_le_bytes([ep_seed_byte(&config, i, 0), ep_seed_byte(&config, i, 1)]);
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", config.thread_name))
                .spawn(move || {
                    pin_core(&pinning, n, i);
                    let app = factory(&info);
                    Worker {
                        info,
                        ep,
                        link,
                        idle,
                        idle_mode,
                        mode: opened.mode,
                        rx,
                        tx,
                        inbox,
                        outbox,
                        pool,
                        shared: shared_w,
                        clock,
                        capture,
                        ports: PortPicker::new(seed),
                        stats: WorkerStats::default(),
                        app,
                    }
                    .run()
                });
            match spawned {
                Ok(h) => threads.push(Some(h)),
                Err(e) => {
                    spawn_error = Some(RuntimeError::Io("spawning a worker thread", e));
                    break;
                }
            }
        }
        let rt = Runtime {
            shared,
            threads,
            backend,
            fallback: opened.fallback,
            local_udp_port: opened.local_udp_port,
        };
        if let Some(e) = spawn_error {
            rt.stop();
            return Err(e);
        }
        Ok(rt)
    }

    /// The backend of the workers' links.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why the runtime runs on a fallback (io_uring unavailable, no kernel steering), if it
    /// does.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The local UDP port under UDP encapsulation.
    pub fn local_udp_port(&self) -> Option<u16> {
        self.local_udp_port
    }

    /// A handle to worker `index` (to wake it, or stop the runtime from any thread).
    pub fn remote(&self, index: usize) -> Option<WorkerRemote> {
        (index < self.shared.workers.len()).then(|| WorkerRemote {
            shared: Arc::clone(&self.shared),
            index,
        })
    }

    /// Asks every worker to stop (each calls [`App::stop`] and sends a last burst).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.shared.workers {
            w.waker.wake();
        }
    }

    /// Whether the runtime was asked to stop (by [`stop`](Self::stop), an application, or a
    /// failing worker).
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Waits until every worker has stopped; the first worker error, if any, else every
    /// worker's counters.
    pub fn join(mut self) -> Result<Vec<WorkerStats>, RuntimeError> {
        self.join_all()
    }

    /// Waits for the workers to stop, up to `timeout`; `None` if they are still running.
    pub fn join_timeout(
        mut self,
        timeout: Duration,
    ) -> Result<Result<Vec<WorkerStats>, RuntimeError>, Runtime> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .threads
                .iter()
                .all(|t| t.as_ref().is_none_or(|h| h.is_finished()))
            {
                return Ok(self.join_all());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(self)
    }

    fn join_all(&mut self) -> Result<Vec<WorkerStats>, RuntimeError> {
        let mut stats = Vec::with_capacity(self.threads.len());
        let mut first_err = None;
        for (i, t) in self.threads.iter_mut().enumerate() {
            let Some(h) = t.take() else { continue };
            match h.join() {
                Ok(Ok(s)) => stats.push(s),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(RuntimeError::WorkerPanicked(i));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.threads.iter().any(Option::is_some) {
            self.stop();
            let _ = self.join_all();
        }
    }
}

/// The receive slot size: room for the largest packet.
fn opened_rx_slot(config: &RuntimeConfig) -> usize {
    config.max_packet.max(2048)
}

fn ep_seed_byte(config: &RuntimeConfig, worker: usize, k: usize) -> u8 {
    config.endpoint.rng_seed[k] ^ (worker as u8).wrapping_mul(31)
}
