//! Benchmarks of every layer, each next to a peer measured in the same run.
//!
//! `cargo run --release -p bench -- <suite> [--quick] [--json] [--plots DIR]`
//!
//! Suites print a table (or, with `--json`, a list of
//! `{metric, ours, peer, peer_value, unit, ratio, goal, met}` objects). `--quick` shortens
//! every measurement for smoke runs; `--plots DIR` writes an SVG bar chart (ours vs
//! peer) per compared metric into `DIR`. The exit code is 0 when the run completed, whether or
//! not goals were met (goals are reported, not asserted).
#![forbid(unsafe_code)]

mod report;

#[cfg(feature = "dpdk")]
mod dpdk;

mod failover;
mod handlespace;
mod plot;
mod registrar;
mod sctp;
mod wire;

use report::Row;

/// Options shared by all suites.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Shorter runs for smoke tests.
    pub quick: bool,
}

type Suite = fn(Opts) -> Result<Vec<Row>, String>;

/// Every suite by name. Add new suites here (one line each).
const SUITES: &[(&str, &str, Suite)] = &[
    #[cfg(feature = "dpdk")]
    (
        "dpdk",
        "DPDK backend (af_packet PMD over veth, not NIC speed) vs io_uring raw IP, one sending core each (root)",
        dpdk::run,
    ),
    (
        "failover",
        "Enhanced Mode: service gap after a PE crash, default vs tuned timers (simulated)",
        failover::run,
    ),
    (
        "handlespace",
        "RSerPool handlespace: registrations, resolutions, memory per PE",
        handlespace::run,
    ),
    (
        "registrar",
        "rsp registrar through SCTP: registrations/s, resolutions/s with 10k PEs, memory per PE",
        registrar::run,
    ),
    (
        "sctp",
        "SCTP stack: in-memory pair vs sctp-proto and usrsctp (P1, P3), namespaces over veth (P2, root), echo RTT vs bare UDP (P4), 1 vs 2 workers (P5), idle association memory (P8)",
        sctp::run,
    ),
    (
        "wire",
        "SCTP codec: parse+verify and encode vs bare crc32c",
        wire::run,
    ),
];

fn usage() -> String {
    let mut s = String::from("usage: bench <suite> [--quick] [--json] [--plots DIR]\nsuites:\n");
    for (name, what, _) in SUITES {
        s.push_str(&format!("  {name:<12} {what}\n"));
    }
    s
}

fn main() {
    // One end of P2's usrsctp-to-usrsctp raw-IP peer, run by the suite in its own process.
    #[cfg(feature = "usrsctp")]
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.first().map(String::as_str) == Some(sctp::usrsctp_raw_peer_cmd()) {
            std::process::exit(sctp::usrsctp_raw_peer_main(&args[1..]));
        }
    }
    let mut suite = None;
    let mut opts = Opts { quick: false };
    let mut json = false;
    let mut plots: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--plots" => match args.next() {
                Some(d) => plots = Some(d.into()),
                None => {
                    eprintln!("bench: --plots needs a directory\n{}", usage());
                    std::process::exit(2);
                }
            },
            "--json" => json = true,
            "-h" | "--help" => {
                print!("{}", usage());
                return;
            }
            s if s.starts_with('-') => {
                eprintln!("bench: unknown option {s}\n{}", usage());
                std::process::exit(2);
            }
            s => suite = Some(s.to_string()),
        }
    }
    let Some(name) = suite else {
        eprint!("{}", usage());
        std::process::exit(2);
    };
    let Some((_, _, run)) = SUITES.iter().find(|(n, _, _)| *n == name) else {
        eprintln!("bench: unknown suite {name}\n{}", usage());
        std::process::exit(2);
    };
    match run(opts) {
        Ok(rows) => {
            if json {
                report::print_json(&rows);
            } else {
                report::print_table(&rows);
            }
            if let Some(dir) = plots {
                match plot::write(&dir, &rows) {
                    Ok(n) => eprintln!("bench: {n} plot(s) in {}", dir.display()),
                    Err(e) => {
                        eprintln!("bench {name}: plots: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("bench {name}: {e}");
            std::process::exit(1);
        }
    }
}
