//! `rsp server`, `rsp pingpong`, `rsp calcapp`, `rsp terminal`, `rsp monitor` and
//! `rsp demo`: pool elements and pool users against real `rsp registrar` processes on
//! loopback (UDP encapsulation, free ports), crashes included.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_one_line_error, free_udp_port, rsp, run, wait_bounded};

/// Tuned SCTP timers: a crashed peer is noticed in about a second.
const QUICK: &[&str] = &[
    "--rto-min",
    "50",
    "--rto-max",
    "200",
    "--rto-initial",
    "100",
    "--heartbeat",
    "200",
    "--max-retrans",
    "4",
];

/// A child `rsp` whose standard output and error are collected; killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Proc {
    fn start(name: &'static str, args: &[String]) -> Self {
        let mut child = rsp()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rsp starts");
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&out);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Proc { name, child, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) until the output contains `text`.
    fn wait_for(&mut self, text: &str, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.output().contains(text) {
                return;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!(
                    "{} exited ({s}) before printing {text:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not print {text:?} in {limit:?}:\n{}",
            self.name,
            self.output()
        );
    }

    /// Waits (bounded) for the exit and returns the code.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        wait_bounded(&mut self.child, limit).and_then(|s| s.code())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// A registrar on `udp` that serves at once and supervises PEs every 300 ms.
fn registrar(udp: u16) -> Proc {
    Proc::start(
        "registrar",
        &strings(&[
            "registrar",
            "-v",
            "--bind",
            "127.0.0.1",
            "--udp-port",
            &udp.to_string(),
            "--asap",
            "127.0.0.1:3863",
            "--enrp",
            "127.0.0.1:9901",
            "--mentor-hunt",
            "0",
            "--keepalive-interval",
            "300",
            "--keepalive-timeout",
            "300",
        ]),
    )
}

/// `rsp server --pingpong` on SCTP port `port`, UDP port `udp`.
fn pingpong_server(name: &'static str, reg_udp: u16, port: u16, udp: u16) -> Proc {
    let mut a = strings(&[
        "server",
        "--pingpong",
        "--pool",
        "PingPongPool",
        "--policy",
        "RoundRobin",
        "--bind",
        "127.0.0.1",
        "--registrar",
        &format!("127.0.0.1:3863/{reg_udp}"),
        "--port",
        &port.to_string(),
        "--udp-port",
        &udp.to_string(),
        "--reregistration-interval",
        "1000",
        "--stats",
        "0",
    ]);
    a.extend(strings(QUICK));
    Proc::start(name, &a)
}

#[test]
fn a_pingpong_session_fails_over_to_a_second_server_when_its_server_is_killed() {
    let (reg_udp, s1_udp, s2_udp, pu_udp) = (
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
    );
    let mut reg = registrar(reg_udp);
    reg.wait_for("no mentor answered", Duration::from_secs(5));
    let mut s1 = pingpong_server("server-1", reg_udp, 5001, s1_udp);
    s1.wait_for("registered as PE", Duration::from_secs(5));
    let mut a = strings(&[
        "pingpong",
        "--pool",
        "PingPongPool",
        "--registrar",
        &format!("127.0.0.1:3863/{reg_udp}"),
        "--pe-udp-port",
        &format!("5001={s1_udp}"),
        "--pe-udp-port",
        &format!("5002={s2_udp}"),
        "--udp-port",
        &pu_udp.to_string(),
        "--interval",
        "50",
        "--count",
        "60",
        "--retry-interval",
        "200",
        "--max-failover-attempts",
        "20",
        "--stats",
        "0",
        "--duration",
        "30",
    ]);
    a.extend(strings(QUICK));
    let mut pu = Proc::start("pingpong", &a);
    pu.wait_for("connected to PE", Duration::from_secs(5));
    // The only PE serves the session; a second one joins, then the first crashes.
    let mut s2 = pingpong_server("server-2", reg_udp, 5002, s2_udp);
    s2.wait_for("registered as PE", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let _ = s1.child.kill();
    let _ = s1.child.wait();
    let code = pu.exit_code(Duration::from_secs(30));
    let out = pu.output();
    assert_eq!(
        code,
        Some(0),
        "pingpong:\n{out}\nserver-2:\n{}",
        s2.output()
    );
    assert!(out.contains("failing over"), "{out}");
    assert!(out.contains("failed over to PE"), "{out}");
    assert!(out.contains("pings 60 sent"), "{out}");
    assert!(out.contains("0 gap(s), 0 duplicate(s)"), "{out}");
    // The second server resumed the session from the first one's cookie.
    s2.wait_for("resumed from a cookie", Duration::from_secs(2));
}

#[test]
fn calcapp_jobs_and_terminal_lines_are_served_by_pool_elements() {
    let (reg_udp, s_udp, e_udp) = (free_udp_port(), free_udp_port(), free_udp_port());
    let mut reg = registrar(reg_udp);
    reg.wait_for("no mentor answered", Duration::from_secs(5));
    let registrar = format!("127.0.0.1:3863/{reg_udp}");
    let mut calc = Proc::start(
        "calcapp-server",
        &strings(&[
            "server",
            "--calcapp",
            "--pool",
            "CalcAppPool",
            "--policy",
            "LeastUsed",
            "--bind",
            "127.0.0.1",
            "--registrar",
            &registrar,
            "--port",
            "6001",
            "--udp-port",
            &s_udp.to_string(),
            "--capacity",
            "1000000",
            "--stats",
            "0",
        ]),
    );
    let mut echo = Proc::start(
        "echo-server",
        &strings(&[
            "server",
            "--echo",
            "--pool",
            "EchoPool",
            "--bind",
            "127.0.0.1",
            "--registrar",
            &registrar,
            "--port",
            "6002",
            "--udp-port",
            &e_udp.to_string(),
            "--stats",
            "0",
        ]),
    );
    calc.wait_for("registered as PE", Duration::from_secs(5));
    echo.wait_for("registered as PE", Duration::from_secs(5));
    let out = run(&[
        "calcapp",
        "--pool",
        "CalcAppPool",
        "--registrar",
        &registrar,
        "--pe-udp-port",
        &format!("6001={s_udp}"),
        "--udp-port",
        &free_udp_port().to_string(),
        "--size",
        "100000",
        "--interval",
        "10",
        "--count",
        "3",
        "--duration",
        "20",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("jobs 3 started, 3 completed, 0 running, 0 duplicate(s), 0 lost"),
        "{text}"
    );

    let mut term = rsp()
        .args([
            "terminal",
            "--pool",
            "EchoPool",
            "--registrar",
            &registrar,
            "--pe-udp-port",
            &format!("6002={e_udp}"),
            "--udp-port",
            &free_udp_port().to_string(),
            "--duration",
            "20",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rsp terminal starts");
    {
        use std::io::Write;
        let mut stdin = term.stdin.take().expect("stdin");
        stdin
            .write_all(b"hello pool\nsecond line\n")
            .expect("write");
    }
    let status = wait_bounded(&mut term, Duration::from_secs(25)).expect("terminal ends");
    let mut stdout = String::new();
    term.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    let mut stderr = String::new();
    term.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "hello pool\nsecond line\n", "{stderr}");
}

#[test]
fn the_demo_shows_failovers_and_a_takeover_and_loses_nothing() {
    let out = run(&["demo", "--duration", "6", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("result: nothing lost"), "{text}");
    let number_after = |label: &str| -> u64 {
        let i = text
            .find(label)
            .unwrap_or_else(|| panic!("{label:?} in {text}"));
        text[i + label.len()..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number after {label:?} in {text}"))
    };
    // A PingPong PE and a CalcApp PE crashed: their sessions failed over and echoed their
    // cookie to the other PE (a failover still under way when the run ends may count as
    // not completed on a loaded machine).
    let failovers = number_after("failovers:");
    let completed = number_after(&format!("failovers: {failovers} ("));
    assert!(completed >= 2 && completed <= failovers, "{text}");
    assert!(
        text.contains("reply numbers consecutive (0 gap(s), 0 duplicate(s))"),
        "{text}"
    );
    assert!(text.contains("0 completed twice, 0 lost"), "{text}");
    // Service went on: jobs completed, pings answered.
    assert!(number_after("job(s) started,") > 0, "{text}");
    assert!(number_after("ping(s) sent,") > 0, "{text}");
    // PR-B took over the crashed PR-A's PEs.
    assert!(number_after("removal(s),") >= 1, "{text}");
    assert!(text.contains("takeover(s) ("), "{text}");
    assert_eq!(number_after("sessions given up:"), 0, "{text}");
}

#[test]
fn a_monitor_tabulates_component_status_reports() {
    let port = free_udp_port();
    let mut m = Proc::start(
        "monitor",
        &strings(&[
            "monitor",
            "--port",
            &port.to_string(),
            "--count",
            "1",
            "--duration",
            "10",
        ]),
    );
    // A registrar reporting to it every 100 ms.
    let reg_udp = free_udp_port();
    let _reg = Proc::start(
        "registrar",
        &strings(&[
            "registrar",
            "--bind",
            "127.0.0.1",
            "--udp-port",
            &reg_udp.to_string(),
            "--cspserver",
            &format!("127.0.0.1:{port}"),
            "--cspinterval",
            "100",
        ]),
    );
    assert_eq!(
        m.exit_code(Duration::from_secs(15)),
        Some(0),
        "{}",
        m.output()
    );
    let out = m.output();
    assert!(
        out.contains("PR ") && out.contains("1 component(s)"),
        "{out}"
    );

    // Pool elements and pool users report too (one line per report with --log).
    let port = free_udp_port();
    let mut m = Proc::start(
        "monitor",
        &strings(&[
            "monitor",
            "--port",
            &port.to_string(),
            "--log",
            "--duration",
            "3",
        ]),
    );
    let csp = format!("127.0.0.1:{port}");
    let registrar = format!("127.0.0.1:3863/{reg_udp}");
    let _pe = Proc::start(
        "server",
        &strings(&[
            "server",
            "--echo",
            "--pool",
            "EchoPool",
            "--bind",
            "127.0.0.1",
            "--registrar",
            &registrar,
            "--udp-port",
            &free_udp_port().to_string(),
            "--cspserver",
            &csp,
            "--cspinterval",
            "100",
            "--stats",
            "0",
        ]),
    );
    let _pu = Proc::start(
        "pingpong",
        &strings(&[
            "pingpong",
            "--pool",
            "NoSuchPool",
            "--registrar",
            &registrar,
            "--udp-port",
            &free_udp_port().to_string(),
            "--cspserver",
            &csp,
            "--cspinterval",
            "100",
            "--stats",
            "0",
        ]),
    );
    assert_eq!(
        m.exit_code(Duration::from_secs(10)),
        Some(0),
        "{}",
        m.output()
    );
    let out = m.output();
    assert!(out.contains("\nPE 0x") || out.starts_with("PE 0x"), "{out}");
    assert!(out.contains("rsp server Echo, pool EchoPool"), "{out}");
    assert!(
        out.contains("PU 0x") && out.contains("rsp pool user, pool NoSuchPool"),
        "{out}"
    );

    // Garbage is counted, not fatal.
    let port = free_udp_port();
    let mut m2 = Proc::start(
        "monitor",
        &strings(&["monitor", "--port", &port.to_string(), "--duration", "1"]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let s = UdpSocket::bind("127.0.0.1:0").expect("socket");
    s.send_to(b"junk", ("127.0.0.1", port)).expect("send");
    assert_eq!(
        m2.exit_code(Duration::from_secs(5)),
        Some(0),
        "{}",
        m2.output()
    );
    assert!(
        m2.output()
            .contains("0 component(s), 0 report(s), 1 malformed"),
        "{}",
        m2.output()
    );
}

#[test]
fn bad_pool_tool_arguments_are_one_line_errors_with_the_documented_codes() {
    let reg = "127.0.0.1:3863";
    let out = run(&[
        "server",
        "--pingpong",
        "--pool",
        "P",
        "--policy",
        "Fastest",
        "--registrar",
        reg,
    ]);
    assert_one_line_error(&out, 2, "unknown policy 'Fastest'");
    let out = run(&[
        "server",
        "--pingpong",
        "--pool",
        "P",
        "--policy",
        "WeightedRoundRobin:x",
    ]);
    assert_one_line_error(&out, 2, "not an integer weight");
    let out = run(&["server", "--pingpong", "--registrar", reg]);
    assert_one_line_error(&out, 2, "--pool");
    let out = run(&["pingpong", "--registrar", reg]);
    assert_one_line_error(&out, 2, "--pool");
    let out = run(&["server", "--pool", "P", "--registrar", reg]);
    assert_one_line_error(&out, 2, "--pingpong");
    let out = run(&[
        "server",
        "--echo",
        "--calcapp",
        "--pool",
        "P",
        "--registrar",
        reg,
    ]);
    assert_one_line_error(&out, 2, "cannot be used with");
    let out = run(&["calcapp", "--pool", "P"]);
    assert_one_line_error(&out, 2, "no registrar");
    let out = run(&["pingpong", "--pool", "P", "--registrar", "127.0.0.1"]);
    assert_one_line_error(&out, 3, "ADDR:PORT");
    let out = run(&["server", "--echo", "--pool", "", "--registrar", reg]);
    assert_one_line_error(&out, 2, "1 to 32 bytes");
    let out = run(&["demo", "--duration", "2"]);
    assert_one_line_error(&out, 2, "at least 6 seconds");
    let out = run(&["monitor", "--port", "x"]);
    assert_one_line_error(&out, 3, "not a port number");
}

#[test]
fn pool_elements_and_users_find_the_registrar_by_its_server_announces() {
    let group = format!("239.0.0.50:{}", free_udp_port());
    let (reg_udp, pe_udp) = (free_udp_port(), free_udp_port());
    let mut reg = Proc::start(
        "registrar",
        &strings(&[
            "registrar",
            "-v",
            "--bind",
            "127.0.0.1",
            "--udp-port",
            &reg_udp.to_string(),
            "--asap",
            "127.0.0.1:3863",
            "--mentor-hunt",
            "0",
            "--asap-announce",
            &group,
        ]),
    );
    reg.wait_for("no mentor answered", Duration::from_secs(5));
    // No --registrar: the announces name it; its UDP port is the remote one.
    let mut pe = Proc::start(
        "server",
        &strings(&[
            "server",
            "--echo",
            "--pool",
            "EchoPool",
            "--bind",
            "127.0.0.1",
            "--asap-announce",
            &group,
            "--remote-udp-port",
            &reg_udp.to_string(),
            "--port",
            "6100",
            "--udp-port",
            &pe_udp.to_string(),
            "--stats",
            "0",
        ]),
    );
    pe.wait_for("registered as PE", Duration::from_secs(10));
    let mut pu = Proc::start(
        "pingpong",
        &strings(&[
            "pingpong",
            "--pool",
            "EchoPool",
            "--bind",
            "127.0.0.1",
            "--asap-announce",
            &group,
            "--remote-udp-port",
            &reg_udp.to_string(),
            "--pe-udp-port",
            &format!("6100={pe_udp}"),
            "--udp-port",
            &free_udp_port().to_string(),
            "--count",
            "1",
            "--duration",
            "10",
            "--stats",
            "0",
        ]),
    );
    // The PU resolved the pool at the announced registrar and reached the PE.
    pu.wait_for("resolved, connected to PE", Duration::from_secs(10));
}

#[test]
fn a_server_deregisters_when_its_duration_ends_or_it_is_terminated() {
    let reg_udp = free_udp_port();
    let mut reg = registrar(reg_udp);
    reg.wait_for("no mentor answered", Duration::from_secs(5));
    let registrar = format!("127.0.0.1:3863/{reg_udp}");
    let server = |name: &'static str, extra: &[&str]| {
        let mut a = strings(&[
            "server",
            "--discard",
            "--pool",
            "DiscardPool",
            "--bind",
            "127.0.0.1",
            "--registrar",
            &registrar,
            "--udp-port",
            &free_udp_port().to_string(),
            "--stats",
            "0",
        ]);
        a.extend(strings(extra));
        Proc::start(name, &a)
    };
    let mut timed = server("timed", &["--duration", "1.5"]);
    let mut termed = server("terminated", &[]);
    termed.wait_for("registered as PE", Duration::from_secs(5));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &termed.child.id().to_string()])
        .status();
    for p in [&mut timed, &mut termed] {
        assert_eq!(
            p.exit_code(Duration::from_secs(10)),
            Some(0),
            "{}",
            p.output()
        );
        let out = p.output();
        assert!(out.contains("registered as PE"), "{out}");
        assert!(out.contains("deregistered\n"), "{out}");
    }
    // The registrar removed both on their DEREGISTRATION, not on a lost association.
    std::thread::sleep(Duration::from_millis(200));
    let log = reg.output();
    assert_eq!(log.matches(": Deregistered").count(), 2, "{log}");
}

#[test]
fn a_pool_without_elements_gives_the_session_up_with_status_1() {
    let reg_udp = free_udp_port();
    let mut reg = registrar(reg_udp);
    reg.wait_for("no mentor answered", Duration::from_secs(5));
    let out = run(&[
        "pingpong",
        "--pool",
        "NoSuchPool",
        "--registrar",
        &format!("127.0.0.1:3863/{reg_udp}"),
        "--udp-port",
        &free_udp_port().to_string(),
        "--count",
        "3",
        "--max-failover-attempts",
        "2",
        "--retry-interval",
        "100",
        "--duration",
        "20",
        "--stats",
        "0",
    ]);
    assert_one_line_error(&out, 1, "no PE of pool 'NoSuchPool' could be reached");
}
