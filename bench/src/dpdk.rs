//! `bench dpdk` (feature `dpdk`): the DPDK backend against the io_uring raw-IP backend, one
//! sending core each, between two network namespaces.
//!
//! Setup (root): namespaces a and b joined by two veth pairs. Over the first pair the sender
//! in a uses the kernel (raw IP on io_uring, 198.18.0.1 -> 198.18.0.2); over the second the
//! sender is our DPDK endpoint on the af_packet PMD (`net_af_packet0,iface=vd-a`,
//! `--no-huge`; 198.18.1.1 -> 198.18.1.2, the veth end in a has no kernel address). The
//! receiver in b is the same in both cases: our runtime on the kernel's raw IP (io_uring),
//! pinned to core 1; the senders are pinned to core 0. One association, `size`-byte
//! messages, payload bytes per second delivered.
//!
//! What this measures, honestly: af_packet over a veth is a virtual PMD on top of the
//! kernel's packet sockets, so the DPDK figure is bounded by the kernel's veth and
//! af_packet paths and says nothing about NIC speed (a physical NIC with a native PMD skips
//! the kernel entirely). It shows the cost of our Ethernet/IP/ARP layer and the poll-mode
//! loop relative to the kernel raw path on the same machine. usrsctp is compared over raw IP
//! by `.ci/dpdk.sh` (its `tsctp` example against `rsp sctp perf --backend dpdk`), not here:
//! the bench wraps usrsctp only over AF_CONN and UDP.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dataplane::dpdk::{DpdkConfig, DpdkLink, EalConfig, InterfaceConfig, IpPrefix, PortSelector};
use dataplane::runtime::LinkSpec;

use crate::Opts;
use crate::report::{Better, Row};
use crate::sctp::runtime::namespaces_with;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn raw(bind: Ipv4Addr) -> LinkSpec {
    LinkSpec::Raw(dataplane::raw::RawConfig {
        ipv6: false,
        bind4: Some(bind),
        ..Default::default()
    })
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let sizes = [1024usize, 8192];
    let metric = |size: usize, what: &str| format!("dpdk.veth_af_packet_{size}B_{what}");
    if !is_root() {
        return Ok(sizes
            .iter()
            .map(|&s| {
                Row::skipped(
                    metric(s, "throughput"),
                    "B/s",
                    "needs root (namespaces, EAL)",
                )
            })
            .collect());
    }
    let mut net = dataplane::netns::TestNet::new("bdpdk");
    let (a, b) = (|| -> std::io::Result<(String, String)> {
        let a = net.namespace("a")?;
        let b = net.namespace("b")?;
        net.veth(
            (&a, "vk-a", &["198.18.0.1/24"]),
            (&b, "vk-b", &["198.18.0.2/24"]),
        )?;
        net.veth((&a, "vd-a", &[]), (&b, "vd-b", &["198.18.1.2/24"]))?;
        net.drop_protocol_unreachable(&a)?;
        net.drop_protocol_unreachable(&b)?;
        // The kernel in a must stay out of the DPDK port's traffic.
        net.exec(&a, &["sysctl", "-qw", "net.ipv6.conf.vd-a.disable_ipv6=1"])?;
        Ok((a, b))
    })()
    .map_err(|e| format!("namespace setup failed: {e}"))?;
    let (warmup, measure) = if opts.quick {
        (Duration::from_millis(500), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let mut rows = Vec::new();
    for size in sizes {
        let kernel = namespaces_with(
            &a,
            &b,
            || Ok(raw(Ipv4Addr::new(198, 18, 0, 1))),
            raw(Ipv4Addr::new(198, 18, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            size,
            warmup,
            measure,
        );
        let dpdk = namespaces_with(
            &a,
            &b,
            || {
                let mut c = DpdkConfig::default();
                // The EAL starts once per process (here, in namespace a, where af_packet
                // opens its socket); later sizes reuse it and restart the port.
                c.eal = EalConfig::parse(
                    "--no-huge -m 512 --vdev=net_af_packet0,iface=vd-a --log-level=warning",
                )
                .map_err(|e| e.to_string())?;
                let addr = IpPrefix {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
                    len: 24,
                };
                let ic = InterfaceConfig::new(PortSelector::Name("net_af_packet0".into()), &[addr])
                    .map_err(|e| e.to_string())?;
                c.interfaces = vec![ic];
                let links = DpdkLink::open(&c).map_err(|e| e.to_string())?;
                Ok(LinkSpec::Links(links.into_iter().map(Into::into).collect()))
            },
            raw(Ipv4Addr::new(198, 18, 1, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            size,
            warmup,
            measure,
        );
        match (dpdk, kernel) {
            (Ok(d), Ok(k)) => {
                let peer = "io_uring raw";
                rows.push(Row::compare(
                    metric(size, "throughput"),
                    "B/s",
                    d,
                    peer,
                    k,
                    Better::Higher,
                    None,
                ));
                let m = |v: f64| v / size as f64;
                rows.push(Row::compare(
                    metric(size, "messages"),
                    "msg/s",
                    m(d),
                    peer,
                    m(k),
                    Better::Higher,
                    None,
                ));
                // One sending core on each side: bits per second per core.
                let g = |v: f64| v * 8.0 / 1e9;
                rows.push(Row::compare(
                    metric(size, "gbit_per_core"),
                    "Gbit/s",
                    g(d),
                    peer,
                    g(k),
                    Better::Higher,
                    None,
                ));
            }
            (Ok(d), Err(e)) => {
                eprintln!("bench dpdk: io_uring raw {size} B: {e}");
                rows.push(Row::absolute(metric(size, "throughput"), "B/s", d, None));
            }
            (Err(e), _) => rows.push(Row::skipped(metric(size, "throughput"), "B/s", &e)),
        }
    }
    rows.push(Row::skipped(
        "dpdk.usrsctp_raw",
        "B/s",
        "usrsctp over raw IP is measured against the DPDK backend by .ci/dpdk.sh (tsctp); the bench wraps usrsctp over AF_CONN/UDP only",
    ));
    drop(net);
    Ok(rows)
}
