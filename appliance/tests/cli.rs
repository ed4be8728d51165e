//! `rsp` as a user runs it: exit statuses and one-line errors for bad input, and the SCTP tools
//! talking to each other over UDP encapsulation on loopback (unprivileged).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

mod common;

use common::{assert_one_line_error, free_udp_port, rsp, run, wait_bounded};

/// A small perf transfer over the in-memory backend; option checks append to it.
const SMALL_MEMORY_PERF: [&str; 7] = [
    "sctp",
    "perf",
    "client",
    "--backend",
    "memory",
    "--bytes",
    "1000",
];

/// `base` followed by `extra`, as one argument list.
fn args_with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = base.to_vec();
    a.extend_from_slice(extra);
    a
}

/// Asserts that a `--json` run exited 0 (its stderr, after `context`, in the failure
/// message) and returns its report: the first line of stdout, parsed.
fn json_report(out: &std::process::Output, context: &str) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).expect("JSON")
}

/// A fresh directory for this test process's capture files.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `lines` to the child's stdin, then closes it.
fn write_lines(child: &mut Child, lines: &[&str]) {
    let mut stdin = child.stdin.take().expect("stdin");
    for l in lines {
        writeln!(stdin, "{l}").expect("write");
    }
}

/// Waits (bounded by `limit`, which must not pass) for a client and returns its status,
/// stdout (empty unless piped) and stderr.
fn finish(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let status = wait_bounded(child, limit).expect("client finished");
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        std::io::Read::read_to_string(&mut o, &mut out).unwrap();
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).unwrap();
    (status, out, err)
}

#[test]
fn version_and_help_exit_zero() {
    let v = run(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("rsp "));
    let h = run(&["sctp", "server", "--help"]);
    assert_eq!(h.status.code(), Some(0));
    let text = String::from_utf8_lossy(&h.stdout);
    for opt in [
        "--echo",
        "--discard",
        "--daytime",
        "--chargen",
        "--udp-port",
        "--pcap",
    ] {
        assert!(text.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    let out = run(&["sctp", "server", "--echo", "--no-such-option"]);
    assert_one_line_error(&out, 2, "--no-such-option");
}

#[test]
fn a_server_needs_exactly_one_service() {
    let out = run(&["sctp", "server"]);
    assert_one_line_error(&out, 2, "required");
    let out = run(&["sctp", "server", "--echo", "--discard"]);
    assert_one_line_error(&out, 2, "cannot be used with");
}

#[test]
fn bad_ports_are_address_errors() {
    let out = run(&["sctp", "client", "127.0.0.1", "0"]);
    assert_one_line_error(&out, 3, "port 0");
    let out = run(&["sctp", "client", "127.0.0.1", "70000"]);
    assert_one_line_error(&out, 3, "70000");
    let out = run(&["sctp", "server", "--echo", "--udp-port", "x"]);
    assert_one_line_error(&out, 3, "'x'");
}

#[test]
fn bad_addresses_are_address_errors() {
    let out = run(&["sctp", "server", "--echo", "--bind", "300.1.2.3"]);
    assert_one_line_error(&out, 3, "300.1.2.3");
    let out = run(&["sctp", "client", "0.0.0.0", "7"]);
    assert_one_line_error(&out, 3, "not a unicast address");
    let out = run(&["sctp", "client", "no-such-host.invalid", "7"]);
    assert_one_line_error(&out, 3, "no-such-host.invalid");
}

#[test]
fn several_bind_addresses_must_be_distinct_unicast_addresses() {
    let out = run(&["sctp", "server", "--echo", "--bind", "127.0.0.1,127.0.0.1"]);
    assert_one_line_error(&out, 3, "given twice");
    let out = run(&["sctp", "server", "--echo", "--bind", "127.0.0.1,224.0.0.1"]);
    assert_one_line_error(&out, 3, "unicast");
    let out = run(&[
        "sctp",
        "client",
        "::1",
        "7",
        "--bind",
        "127.0.0.1,127.0.0.2",
    ]);
    assert_one_line_error(&out, 3, "address families");
}

#[test]
fn several_peer_addresses_must_be_distinct_and_reachable() {
    let out = run(&["sctp", "client", "127.0.0.1,127.0.0.1", "7"]);
    assert_one_line_error(&out, 3, "given twice");
    let out = run(&[
        "sctp",
        "client",
        "127.0.0.1,::1",
        "7",
        "--bind",
        "127.0.0.1",
    ]);
    assert_one_line_error(&out, 3, "address families");
    let out = run(&["sctp", "perf", "client", "127.0.0.1,127.0.0.1", "5001"]);
    assert_one_line_error(&out, 3, "given twice");
}

#[test]
fn the_partial_delivery_point_is_for_the_discard_server_and_bounded() {
    let out = run(&[
        "sctp",
        "server",
        "--echo",
        "--partial-delivery-point",
        "4096",
    ]);
    assert_one_line_error(&out, 2, "--discard");
    let out = run(&[
        "sctp",
        "server",
        "--discard",
        "--partial-delivery-point",
        "600000",
    ]);
    assert_eq!(out.status.code(), Some(2), "above half the receive window");
}

#[test]
fn perf_with_idata_and_partial_reliability_abandons_with_iforward_tsn() {
    // A 2 ms lifetime on 100 kB messages: most expire queued or half sent; the half sent
    // ones are skipped with I-FORWARD TSN (RFC 8260 §2.3), never FORWARD TSN.
    let dir = scratch_dir("rsp-cli-ifwd");
    let pcap = dir.join("ifwd.pcap");
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--idata",
        "--pr-policy",
        "ttl",
        "--pr-value",
        "2",
        "--bytes",
        "20000000",
        "-l",
        "100000",
        "--json",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["completed"], true);
    assert!(v["messages_abandoned"].as_u64().unwrap() > 0, "{v}");
    let types = chunk_types_in_pcap(&pcap);
    assert!(types.get(&194).copied().unwrap_or(0) > 0, "{types:?}");
    assert_eq!(types.get(&192), None, "{types:?}");
    assert!(types.get(&64).copied().unwrap_or(0) > 0, "{types:?}");
    assert_eq!(types.get(&0), None, "no DATA with I-DATA: {types:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_client_connects_through_the_second_address_when_the_first_is_unreachable() {
    // The server listens on 127.0.0.1 only: the INIT to 127.0.0.2 goes nowhere, the one
    // sent to 127.0.0.1 when T1-init expires is answered.
    let sport = free_udp_port();
    let mut server = rsp()
        .args(["sctp", "server", "--echo", "--once", "--bind", "127.0.0.1"])
        .args(["--udp-port", &sport.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    std::thread::sleep(Duration::from_millis(300));
    let dir = scratch_dir("rsp-connectx");
    let pcap = dir.join("client.pcap");
    let mut client = rsp()
        .args([
            "sctp",
            "client",
            "127.0.0.2,127.0.0.1",
            "7",
            "--udp-port",
            "0",
        ])
        .args(["--remote-udp-port", &sport.to_string(), "--timeout", "20"])
        .arg("--pcap")
        .arg(&pcap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    write_lines(&mut client, &["through the second address"]);
    let (status, out, err) = finish(&mut client, Duration::from_secs(40));
    assert!(status.success(), "client: {status:?} {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["through the second address"]
    );
    let sstatus = wait_bounded(&mut server, Duration::from_secs(15)).expect("server --once ended");
    assert!(sstatus.success(), "server: {sstatus:?}");
    // Two INITs: the unanswered one and the one to the second address.
    let types = chunk_types_in_pcap(&pcap);
    assert!(types.get(&1).copied().unwrap_or(0) >= 2, "{types:?}");
    assert_eq!(types.get(&2).copied(), Some(1), "one INIT ACK: {types:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_memory_backend_is_only_for_perf() {
    let out = run(&["sctp", "server", "--echo", "--backend", "memory"]);
    assert_one_line_error(&out, 2, "memory backend");
}

#[test]
fn an_unwritable_capture_file_is_a_setup_error() {
    let out = run(&[
        "sctp",
        "server",
        "--echo",
        "--udp-port",
        "0",
        "--pcap",
        "/nonexistent-dir/x.pcap",
    ]);
    assert_one_line_error(&out, 4, "/nonexistent-dir/x.pcap");
}

#[test]
fn a_silent_peer_times_out_the_client() {
    // Nobody listens on this UDP port: the INITs go unanswered.
    let port = free_udp_port().to_string();
    let out = run(&[
        "sctp",
        "client",
        "127.0.0.1",
        "7",
        "--udp-port",
        "0",
        "--remote-udp-port",
        &port,
        "--timeout",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(1) | Some(5)),
        "exit {:?}: {err}",
        out.status.code()
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");
}

#[test]
fn the_client_gets_its_lines_back_from_the_echo_server() {
    let sport = free_udp_port();
    let mut server = rsp()
        .args(["sctp", "server", "--echo", "--once", "--json", "--udp-port"])
        .arg(sport.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    // The server binds at once; a lost first INIT would only cost a retransmission.
    std::thread::sleep(Duration::from_millis(300));
    let lines = ["one", "two: a longer line with spaces", "three"];
    let mut client = rsp()
        .args(["sctp", "client", "127.0.0.1", "7", "--udp-port", "0"])
        .args(["--remote-udp-port", &sport.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    write_lines(&mut client, &lines);
    let (status, out, err) = finish(&mut client, Duration::from_secs(30));
    assert!(status.success(), "client: {status:?} {err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), lines);

    let sstatus = wait_bounded(&mut server, Duration::from_secs(15)).expect("server --once ended");
    assert!(sstatus.success(), "server: {sstatus:?}");
    let report = BufReader::new(server.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("a report line")
        .expect("utf-8");
    let v: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(v["service"], "echo");
    assert_eq!(v["messages_received"], 3);
    assert_eq!(v["messages_sent"], 3);
    assert_eq!(v["graceful"], true);
}

/// Runs the echo server (with `server_extra`) and a client with
/// `--reset-streams-after 2` sending four lines; returns the client's status, stdout and
/// stderr.
fn echo_with_reset(server_extra: &[&str]) -> (std::process::ExitStatus, String, String) {
    let sport = free_udp_port();
    let mut server = rsp()
        .args(["sctp", "server", "--echo", "--once", "--udp-port"])
        .arg(sport.to_string())
        .args(server_extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    std::thread::sleep(Duration::from_millis(300));
    let mut client = rsp()
        .args(["sctp", "client", "127.0.0.1", "7", "--udp-port", "0"])
        .args(["--remote-udp-port", &sport.to_string()])
        .args(["--reset-streams-after", "2", "--timeout", "5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    write_lines(&mut client, &["a", "b", "c", "d"]);
    let (status, out, err) = finish(&mut client, Duration::from_secs(30));
    let _ = wait_bounded(&mut server, Duration::from_secs(15));
    (status, out, err)
}

#[test]
fn the_client_resets_its_streams_midway_and_still_gets_every_line_back() {
    let (status, out, err) = echo_with_reset(&[]);
    assert!(status.success(), "client: {status:?} {err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
}

#[test]
fn the_client_fails_clearly_when_the_server_denies_the_stream_reset() {
    let (status, _out, err) = echo_with_reset(&["--deny-reconfig"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("refused the stream reset: denied"), "{err}");
}

#[test]
fn perf_over_the_memory_backend_reports_every_byte() {
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--bytes",
        "2000000",
        "-l",
        "1000",
        "--json",
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["bytes_sent"], 2_000_000);
    assert_eq!(v["messages_sent"], 2000);
    assert_eq!(v["completed"], true);
    assert!(v["throughput_bps"].as_f64().unwrap() > 0.0);
}

#[test]
fn partial_reliability_options_are_checked() {
    let with = |extra: &[&str]| run(&args_with(&SMALL_MEMORY_PERF, extra));
    assert_one_line_error(&with(&["--pr-policy", "ttl"]), 2, "--pr-value");
    assert_one_line_error(&with(&["--pr-value", "5"]), 2, "--pr-policy");
    assert_one_line_error(
        &with(&["--pr-policy", "ttl", "--pr-value", "0"]),
        2,
        "ttl of 0",
    );
    assert_one_line_error(
        &with(&["--pr-policy", "prio", "--pr-value", "70000"]),
        2,
        "at most 65535",
    );
    assert_one_line_error(
        &with(&["--pr-policy", "sometimes", "--pr-value", "1"]),
        2,
        "sometimes",
    );
}

#[test]
fn perf_with_partial_reliability_over_memory_completes() {
    // Memory links lose nothing and a 10 s lifetime never expires here: every message arrives.
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--bytes",
        "1000000",
        "-l",
        "1000",
        "--pr-policy",
        "ttl",
        "--pr-value",
        "10000",
        "--json",
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["completed"], true);
    assert_eq!(v["messages_sent"], 1000);
    assert_eq!(v["messages_abandoned"], 0);
}

#[test]
fn auth_and_asconf_options_are_checked() {
    let base = [
        "sctp",
        "perf",
        "client",
        "127.0.0.1",
        "5001",
        "--bytes",
        "1000",
    ];
    let with = |extra: &[&str]| run(&args_with(&base, extra));
    // Add-IP is only used authenticated (RFC 5061 §4.1).
    assert_one_line_error(&with(&["--asconf-add", "127.0.0.2"]), 2, "--auth");
    assert_one_line_error(&with(&["--asconf-after", "2"]), 2, "--asconf-add");
    assert_one_line_error(
        &with(&["--auth", "--asconf-add", "224.0.0.1"]),
        3,
        "not a unicast address",
    );
    assert_one_line_error(
        &with(&["--auth", "--asconf-add", "300.0.0.1"]),
        3,
        "300.0.0.1",
    );
    assert_one_line_error(
        &with(&[
            "--auth",
            "--asconf-add",
            "127.0.0.2",
            "--asconf-after",
            "1e9",
        ]),
        2,
        "--asconf-after",
    );
    assert_one_line_error(
        &run(&[
            "sctp",
            "perf",
            "client",
            "--backend",
            "memory",
            "--auth",
            "--asconf-add",
            "198.18.1.1",
        ]),
        2,
        "network backend",
    );
    // The client and the servers take --auth; --asconf-add is a perf client option.
    assert_one_line_error(
        &run(&["sctp", "server", "--echo", "--asconf-add", "127.0.0.2"]),
        2,
        "--asconf-add",
    );
}

#[test]
fn perf_with_auth_over_memory_completes() {
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--auth",
        "--bytes",
        "1000000",
        "-l",
        "1000",
        "--json",
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["completed"], true);
    assert_eq!(v["bytes_sent"], 1_000_000);
}

#[test]
fn perf_with_auth_adds_an_address_with_an_authenticated_asconf() {
    // Two rsp processes over UDP encapsulation on loopback: the client starts on 127.0.0.1
    // alone and adds 127.0.0.2 with an AUTH'd ASCONF; the transfer ends only once the server
    // answered, and a refusal would fail the client.
    let sport = free_udp_port();
    let mut server = rsp()
        .args(["sctp", "perf", "server", "--once", "--json", "--auth"])
        .args(["--udp-port", &sport.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    std::thread::sleep(Duration::from_millis(300));
    let mut client = rsp()
        .args(["sctp", "perf", "client", "127.0.0.1", "5001", "--auth"])
        .args(["--bind", "127.0.0.1", "--asconf-add", "127.0.0.2"])
        .args([
            "--asconf-after",
            "0.1",
            "--bytes",
            "20000",
            "-l",
            "1000",
            "--json",
        ])
        .args(["--udp-port", "0", "--remote-udp-port", &sport.to_string()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    let (status, _out, err) = finish(&mut client, Duration::from_secs(30));
    assert!(status.success(), "client: {status:?} {err}");
    assert!(
        err.contains("the peer accepted the ASCONF request"),
        "no accepted ASCONF: {err}"
    );
    let sstatus = wait_bounded(&mut server, Duration::from_secs(15)).expect("server --once ended");
    assert!(sstatus.success(), "server: {sstatus:?}");
}

#[test]
fn perf_resets_all_streams_after_n_messages_and_reports_it() {
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--streams",
        "4",
        "--reset-streams-after",
        "100",
        "--bytes",
        "1048576",
        "--length",
        "1024",
        "--json",
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["completed"], true);
    assert_eq!(v["bytes_sent"], 1_048_576);
    assert_eq!(v["stream_resets"], 1);
    // More messages than the transfer has: the reset never happens, which fails the run.
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--reset-streams-after",
        "50",
        "--messages",
        "10",
    ]);
    assert_one_line_error(&out, 1, "--reset-streams-after");
}

#[test]
fn perf_fails_clearly_when_the_server_denies_the_stream_reset() {
    let sport = free_udp_port();
    let mut server = rsp()
        .args([
            "sctp",
            "perf",
            "server",
            "--once",
            "--json",
            "--deny-reconfig",
        ])
        .args(["--udp-port", &sport.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    std::thread::sleep(Duration::from_millis(300));
    let mut client = rsp()
        .args(["sctp", "perf", "client", "127.0.0.1", "5001"])
        .args([
            "--reset-streams-after",
            "5",
            "--messages",
            "50",
            "-l",
            "100",
        ])
        .args(["--udp-port", "0", "--remote-udp-port", &sport.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    let (status, _out, err) = finish(&mut client, Duration::from_secs(30));
    assert!(!status.success(), "a denied reset must fail the client");
    assert!(err.contains("refused the stream reset: denied"), "{err}");
    let _ = wait_bounded(&mut server, Duration::from_secs(15));
}

#[test]
fn idata_stream_and_scheduler_options_are_checked() {
    let perf = |extra: &[&str]| run(&args_with(&SMALL_MEMORY_PERF, extra));
    assert_one_line_error(&perf(&["--scheduler", "lottery"]), 2, "lottery");
    assert_one_line_error(&perf(&["--streams", "0"]), 2, "--streams");
    assert_one_line_error(&perf(&["--streams", "70000"]), 2, "70000");
    // The client and the servers take them too.
    for tool in [
        &["sctp", "server", "--echo"][..],
        &["sctp", "client", "127.0.0.1", "7"][..],
        &["sctp", "perf", "server"][..],
    ] {
        let a = args_with(tool, &["--idata", "--streams", "4", "--scheduler", "nope"]);
        assert_one_line_error(&run(&a), 2, "nope");
    }
}

/// Counts the SCTP chunks by type in a pcap file of raw IP packets (link type 101, as
/// `--pcap` writes them), with or without UDP encapsulation.
fn chunk_types_in_pcap(path: &std::path::Path) -> std::collections::HashMap<u8, usize> {
    let d = std::fs::read(path).expect("pcap");
    assert_eq!(
        u32::from_le_bytes(d[20..24].try_into().unwrap()),
        101,
        "raw IP pcap"
    );
    let mut types = std::collections::HashMap::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = &d[off + 16..(off + 16 + incl).min(d.len())];
        off += 16 + incl;
        let (proto, mut sctp) = if pkt[0] >> 4 == 4 {
            (pkt[9], &pkt[usize::from(pkt[0] & 15) * 4..])
        } else {
            (pkt[6], &pkt[40..])
        };
        if proto == 17 {
            sctp = &sctp[8..];
        }
        let mut i = 12;
        while i + 4 <= sctp.len() {
            *types.entry(sctp[i]).or_default() += 1;
            let len = usize::from(u16::from_be_bytes([sctp[i + 2], sctp[i + 3]]));
            if len < 4 {
                break;
            }
            i += (len + 3) & !3;
        }
    }
    types
}

#[test]
fn perf_with_idata_over_several_streams_and_each_scheduler_completes() {
    let dir = scratch_dir("rsp-cli-idata");
    for scheduler in ["fcfs", "rr", "prio", "wfq"] {
        let pcap = dir.join(format!("{scheduler}.pcap"));
        let out = run(&[
            "sctp",
            "perf",
            "client",
            "--backend",
            "memory",
            "--idata",
            "--streams",
            "4",
            "--scheduler",
            scheduler,
            "--bytes",
            "2000000",
            "-l",
            "100000",
            "--json",
            "--pcap",
            pcap.to_str().unwrap(),
        ]);
        let v = json_report(&out, &format!("{scheduler}: "));
        assert_eq!(v["completed"], true, "{scheduler}");
        assert_eq!(v["bytes_sent"], 2_000_000, "{scheduler}");
        assert_eq!(v["messages_sent"], 20, "{scheduler}");
        let types = chunk_types_in_pcap(&pcap);
        assert!(
            types.get(&64).copied().unwrap_or(0) > 100,
            "{scheduler}: {types:?}"
        );
        assert_eq!(types.get(&0), None, "{scheduler}: DATA despite I-DATA");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The I-DATA chunks in a pcap file written by `--pcap`: (stream, MID, flags, PPID or FSN),
/// in capture order.
fn idata_chunks_in_pcap(path: &std::path::Path) -> Vec<(u16, u32, u8, u32)> {
    let d = std::fs::read(path).expect("pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = &d[off + 16..(off + 16 + incl).min(d.len())];
        off += 16 + incl;
        let (proto, mut sctp) = if pkt[0] >> 4 == 4 {
            (pkt[9], &pkt[usize::from(pkt[0] & 15) * 4..])
        } else {
            (pkt[6], &pkt[40..])
        };
        if proto == 17 {
            sctp = &sctp[8..];
        }
        let mut i = 12;
        while i + 4 <= sctp.len() {
            let len = usize::from(u16::from_be_bytes([sctp[i + 2], sctp[i + 3]]));
            if len < 4 {
                break;
            }
            if sctp[i] == 64 && len >= 20 && i + 20 <= sctp.len() {
                let c = &sctp[i..];
                out.push((
                    u16::from_be_bytes([c[8], c[9]]),
                    u32::from_be_bytes(c[12..16].try_into().unwrap()),
                    c[1],
                    u32::from_be_bytes(c[16..20].try_into().unwrap()),
                ));
            }
            i += (len + 3) & !3;
        }
    }
    out
}

#[test]
fn idata_linux_fsn_numbers_the_second_fragment_zero_and_needs_idata() {
    assert_one_line_error(
        &run(&[
            "sctp",
            "perf",
            "client",
            "--backend",
            "memory",
            "--idata-linux-fsn",
        ]),
        2,
        "--idata",
    );
    let dir = scratch_dir("rsp-cli-linux-fsn");
    let pcap = dir.join("fsn.pcap");
    let out = run(&[
        "sctp",
        "perf",
        "client",
        "--backend",
        "memory",
        "--idata",
        "--idata-linux-fsn",
        "--bytes",
        "300000",
        "-l",
        "100000",
        "--json",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    let v = json_report(&out, "");
    assert_eq!(v["completed"], true);
    assert_eq!(v["bytes_sent"], 300_000);
    // The first message's fragments (stream and MID of the first B chunk): the PPID, then
    // FSN 0, 1, ... (first transmissions; a retransmission repeats an FSN).
    let chunks = idata_chunks_in_pcap(&pcap);
    let &(stream, mid, _, _) = chunks
        .iter()
        .find(|c| c.2 & 0x02 != 0)
        .expect("a first fragment");
    let mut fsns: Vec<u32> = chunks
        .iter()
        .filter(|c| c.0 == stream && c.1 == mid && c.2 & 0x02 == 0)
        .map(|c| c.3)
        .collect();
    fsns.dedup();
    assert!(fsns.len() > 10, "{fsns:?}");
    assert_eq!(fsns[..3], [0, 1, 2], "{fsns:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
