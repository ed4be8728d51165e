//! `bench handlespace`: registrations, deregistrations and handle resolutions per second
//! with 1k, 10k and 100k PEs (one pool, and spread over 1k pools), and memory per PE.
//!
//! The "peer" of the scaling rows is our own figure at 1k PEs: the goal is that a
//! resolution in a 100k-PE pool costs at most twice one in a 1k-PE pool, and that one core
//! resolves at least 1M handles per second.
//!
//! Times are the benchmark thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds),
//! so other load on the machine does not inflate them; wall-clock time is the fallback.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use rserpool::Timestamp;
use rserpool::handlespace::{Handlespace, HandlespaceConfig};
use rserpool::rand_core::RngCore;
use rserpool::wire::{
    PeIdentifier, PolicyInfo, PoolElement, PoolHandle, RegistrarId, TransportParameter,
    TransportUse,
};

use crate::Opts;
use crate::report::{Better, Row};

/// SplitMix64: a small deterministic RNG for the benchmark.
pub(crate) struct SplitMix(pub(crate) u64);

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn pe(i: u32, policy: &PolicyInfo) -> PoolElement {
    PoolElement {
        identifier: PeIdentifier(i + 1),
        home_registrar: RegistrarId(1 + i % 4),
        registration_life: 30_000,
        user_transport: TransportParameter::sctp(
            7,
            TransportUse::DATA_ONLY,
            vec![IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 | (i & 0xffff)))],
        ),
        policy: policy.clone(),
        asap_transport: None,
    }
}

fn handles(pools: usize) -> Vec<PoolHandle> {
    (0..pools)
        .map(|i| PoolHandle::new(format!("Pool{i:05}").as_bytes()))
        .collect()
}

fn build(n: usize, hs_handles: &[PoolHandle], policy: &PolicyInfo) -> Handlespace {
    let mut hs = Handlespace::new(HandlespaceConfig::default());
    for i in 0..n {
        let h = &hs_handles[i % hs_handles.len()];
        let _ = hs.register(Timestamp::ZERO, h, pe(i as u32, policy));
    }
    hs
}

/// CPU time of this thread in nanoseconds, if the kernel reports it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Seconds spent running `f`: thread CPU time where available, else wall-clock time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let cpu0 = thread_cpu_ns();
    let wall = Instant::now();
    let out = f();
    let wall = wall.elapsed().as_secs_f64();
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => (out, (b - a) as f64 / 1e9),
        _ => (out, wall),
    }
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Figures {
    reg_per_s: f64,
    dereg_per_s: f64,
    res_k1_ns: f64,
    res_k3_ns: f64,
}

fn measure(n: usize, pools: usize, policy: &PolicyInfo, resolutions: usize) -> Figures {
    let hs_handles = handles(pools);
    // Registrations.
    let (mut hs, secs) = timed(|| build(n, &hs_handles, policy));
    let reg_per_s = n as f64 / secs;
    assert_eq!(hs.pe_count(), n);
    // Resolutions (k = 1, then k = 3), cycling through the pools.
    let mut rng = SplitMix(42);
    let mut res_ns = [0.0f64; 2];
    for (slot, k) in [1usize, 3].into_iter().enumerate() {
        let (sum, secs) = timed(|| {
            let mut sum = 0u64;
            for i in 0..resolutions {
                let h = hs_handles[i % pools].as_bytes();
                if let Ok(r) = hs.resolve(h, k, &mut rng) {
                    sum += r.iter().map(|p| u64::from(p.identifier.0)).sum::<u64>();
                }
            }
            sum
        });
        black_box(sum);
        res_ns[slot] = secs * 1e9 / resolutions as f64;
    }
    // Deregistrations.
    let ((), secs) = timed(|| {
        for i in 0..n {
            let h = hs_handles[i % pools].as_bytes();
            let _ = hs.deregister(h, PeIdentifier(i as u32 + 1));
        }
    });
    let dereg_per_s = n as f64 / secs;
    assert_eq!(hs.pe_count(), 0);
    Figures {
        reg_per_s,
        dereg_per_s,
        res_k1_ns: res_ns[0],
        res_k3_ns: res_ns[1],
    }
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let resolutions = if opts.quick { 200_000 } else { 2_000_000 };

    // Memory first, before other phases leave freed memory in the allocator.
    let before = rss_kib().ok_or("cannot read VmRSS from /proc/self/status")?;
    let mem_n = 100_000;
    let hs = build(mem_n, &handles(1), &PolicyInfo::round_robin());
    let after = rss_kib().ok_or("cannot read VmRSS")?;
    rows.push(Row::absolute(
        "handlespace.memory_per_pe_100k",
        "B",
        (after.saturating_sub(before) * 1024) as f64 / mem_n as f64,
        None,
    ));
    drop(hs);

    let policies = [
        ("rr", PolicyInfo::round_robin()),
        ("wrand", PolicyInfo::weighted_random(10)),
    ];
    for (pname, policy) in &policies {
        for (layout, pools) in [("one_pool", 1usize), ("1k_pools", 1000)] {
            let mut base: Option<Figures> = None;
            for n in [1_000usize, 10_000, 100_000] {
                let f = measure(n, pools.min(n), policy, resolutions);
                let tag = format!("{pname}.{layout}.{}k", n / 1000);
                rows.push(Row::absolute(
                    format!("handlespace.register.{tag}"),
                    "op/s",
                    f.reg_per_s,
                    None,
                ));
                rows.push(Row::absolute(
                    format!("handlespace.deregister.{tag}"),
                    "op/s",
                    f.dereg_per_s,
                    None,
                ));
                for (k, ns) in [(1, f.res_k1_ns), (3, f.res_k3_ns)] {
                    rows.push(Row::absolute(
                        format!("handlespace.resolve_k{k}.{tag}"),
                        "op/s",
                        1e9 / ns,
                        Some((Better::Higher, 1e6)),
                    ));
                }
                match &base {
                    None => base = Some(f),
                    Some(b) if n == 100_000 => {
                        for (k, ns, base_ns) in
                            [(1, f.res_k1_ns, b.res_k1_ns), (3, f.res_k3_ns, b.res_k3_ns)]
                        {
                            rows.push(Row::compare(
                                format!(
                                    "handlespace.resolve_k{k}_cost.{pname}.{layout}.100k_vs_1k"
                                ),
                                "ns/op",
                                ns,
                                "ours@1k PEs",
                                base_ns,
                                Better::Lower,
                                Some(2.0),
                            ));
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(rows)
}
