//! `rsp registrar` as a user runs it: bad flags and config files, and three registrar
//! processes peered statically on loopback over UDP encapsulation (each on its own UDP
//! port), with a test pool element and pool user speaking ASAP through the runtime's socket
//! handles, and the multicast announces on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::runtime::socket::{Association, Incoming, SocketConfig, Sockets};
use dataplane::runtime::{LinkSpec, Runtime, RuntimeConfig, random_seed};
use dataplane::udp::UdpConfig;
use rserpool::wire::{
    AsapMessage, CauseCode, EnrpBody, EnrpMessage, PPID_ASAP, PPID_ENRP, PeIdentifier, PolicyInfo,
    PoolElement, PoolHandle, RegistrarId, ServerInformation, TransportParameter, TransportUse,
};
use sctp_stack::ConnectRequest;
use sctp_stack::wire::Ppid;
use socket2::{Domain, Protocol, Socket, Type};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

mod common;

use common::{assert_one_line_error, free_udp_port, rsp, run};

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rsp-registrar-{}-{name}", std::process::id()));
        let mut f = std::fs::File::create(&path).expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn help_names_the_rsplib_flags_and_the_announce_groups() {
    let h = run(&["registrar", "--help"]);
    assert_eq!(h.status.code(), Some(0));
    let text = String::from_utf8_lossy(&h.stdout);
    for opt in [
        "--asap",
        "--enrp",
        "--peer",
        "--identifier",
        "--max-bad-pe-reports",
        "--keepalive-interval",
        "--keepalive-timeout",
        "--max-hres-items",
        "--config",
        "--udp-port",
        "--asap-announce",
        "--enrp-announce",
        "--metrics",
        "--cspserver",
        "--cspinterval",
    ] {
        assert!(text.contains(opt), "help lacks {opt}");
    }
    assert!(text.contains("239.0.0.50:3863"), "{text}");
}

#[test]
fn bad_registrar_flags_are_one_line_errors_with_the_documented_codes() {
    let out = run(&["registrar", "--no-such-flag"]);
    assert_one_line_error(&out, 2, "--no-such-flag");
    let out = run(&["registrar", "--asap", "127.0.0.1"]);
    assert_one_line_error(&out, 3, "ADDR:PORT");
    let out = run(&["registrar", "--enrp", "127.0.0.1:0"]);
    assert_one_line_error(&out, 3, "port 0");
    let out = run(&["registrar", "--peer", "300.0.0.1:9901"]);
    assert_one_line_error(&out, 3, "300.0.0.1");
    let out = run(&["registrar", "--peer", "127.0.0.1:9901/x"]);
    assert_one_line_error(&out, 3, "UDP port");
    let out = run(&["registrar", "--identifier", "0"]);
    assert_one_line_error(&out, 2, "identifier 0");
    let out = run(&["registrar", "--identifier", "0xzz"]);
    assert_one_line_error(&out, 2, "0xzz");
    let out = run(&["registrar", "--max-bad-pe-reports", "0"]);
    assert_one_line_error(&out, 2, "--max-bad-pe-reports");
    let out = run(&["registrar", "--keepalive-interval", "0"]);
    assert_one_line_error(&out, 2, "--keepalive-interval");
    let out = run(&["registrar", "--max-hres-items", "many"]);
    assert_one_line_error(&out, 2, "--max-hres-items");
    let out = run(&["registrar", "--asap-announce", "on"]);
    assert_one_line_error(&out, 3, "not off, auto or a multicast ADDR:PORT");
    let out = run(&["registrar", "--enrp-announce", "127.0.0.1:9901"]);
    assert_one_line_error(&out, 3, "not a multicast ADDR:PORT");
    let out = run(&[
        "registrar",
        "--asap",
        "127.0.0.1:5000",
        "--enrp",
        "127.0.0.1:5000",
    ]);
    assert_one_line_error(&out, 2, "different SCTP ports");
    let out = run(&["registrar", "--workers", "2", "--udp-port", "0"]);
    assert_one_line_error(&out, 2, "one worker");
    let out = run(&["registrar", "--allow-register", "10.0.0.0/33"]);
    assert_one_line_error(&out, 2, "prefix length");
    let out = run(&["registrar", "--allow-resolve", "somewhere=EchoPool"]);
    assert_one_line_error(&out, 2, "not an IP address");
    let out = run(&["registrar", "--resolution-rate", "0"]);
    assert_one_line_error(&out, 2, "N[/BURST]");
    let out = run(&["registrar", "--verify-pe-addresses", "maybe"]);
    assert_one_line_error(&out, 2, "on or off");
    let out = run(&["registrar", "--max-pools", "0"]);
    assert_one_line_error(&out, 2, "--max-pools");
}

#[test]
fn bad_hsdump_arguments_and_a_silent_target_are_one_line_errors() {
    let out = run(&["hsdump"]);
    assert_one_line_error(&out, 2, "ADDR");
    let out = run(&["hsdump", "127.0.0.1:0"]);
    assert_one_line_error(&out, 3, "port 0");
    let out = run(&["hsdump", "127.0.0.1:9901/x"]);
    assert_one_line_error(&out, 3, "UDP port");
    let out = run(&["hsdump", "239.0.0.51"]);
    assert_one_line_error(&out, 3, "unicast");
    let out = run(&["hsdump", "127.0.0.1", "--identifier", "0"]);
    assert_one_line_error(&out, 2, "identifier 0");
    let out = run(&["hsdump", "127.0.0.1", "--timeout", "0"]);
    assert_one_line_error(&out, 2, "--timeout");
    // Nobody listens on that UDP port: no association, exit 5 (timeout) in one line.
    let silent = free_udp_port();
    let target = format!("127.0.0.1:9901/{silent}");
    let out = run(&["hsdump", &target, "--timeout", "1"]);
    assert_one_line_error(&out, 5, "no association");
}

#[test]
fn bad_config_files_are_one_line_errors_with_the_documented_codes() {
    let out = run(&["registrar", "--config", "/nonexistent-dir/registrar.toml"]);
    assert_one_line_error(&out, 2, "/nonexistent-dir/registrar.toml");

    let unknown = TempFile::new(
        "unknown.toml",
        "asap = \"127.0.0.1:3863\"\ncolour = \"blue\"\n",
    );
    let out = run(&["registrar", "--config", unknown.path()]);
    assert_one_line_error(&out, 2, "line 2");
    assert_one_line_error(&out, 2, "colour");

    let syntax = TempFile::new("syntax.toml", "peer = [\"127.0.0.1:9901\"\n");
    let out = run(&["registrar", "--config", syntax.path()]);
    assert_one_line_error(&out, 2, syntax.path());

    let address = TempFile::new(
        "address.toml",
        "peer = [\"127.0.0.1:9902\", \"not-an-address:1\"]\n",
    );
    let out = run(&["registrar", "--config", address.path()]);
    assert_one_line_error(&out, 3, "not-an-address:1");

    let range = TempFile::new("range.toml", "keepalive-timeout = 0\n");
    let out = run(&["registrar", "--config", range.path()]);
    assert_one_line_error(&out, 2, "keepalive-timeout");

    let id = TempFile::new("id.toml", "identifier = 4294967296\n");
    let out = run(&["registrar", "--config", id.path()]);
    assert_one_line_error(&out, 2, "identifier");

    let acl = TempFile::new(
        "acl.toml",
        "allow-register = [\"10.0.0.0/8=EchoPool\"]\nallow-resolve = [\"10.0.0.0/40\"]\n",
    );
    let out = run(&["registrar", "--config", acl.path()]);
    assert_one_line_error(&out, 2, "allow-resolve");

    let limits = TempFile::new("limits.toml", "max-pes-per-address = 0\n");
    let out = run(&["registrar", "--config", limits.path()]);
    assert_one_line_error(&out, 2, "max-pes-per-address");

    let rate = TempFile::new("rate.toml", "resolution-rate = \"10/0\"\n");
    let out = run(&["registrar", "--config", rate.path()]);
    assert_one_line_error(&out, 2, "resolution-rate");

    let announce = TempFile::new("announce.toml", "enrp-announce = \"10.0.0.1:9901\"\n");
    let out = run(&["registrar", "--config", announce.path()]);
    assert_one_line_error(&out, 3, "enrp-announce");

    // A flag overrides the file: the file's ports clash, the flag's do not, and the
    // registrar then stops at the bad --workers value instead.
    let clash = TempFile::new(
        "clash.toml",
        "asap = \"127.0.0.1:5000\"\nenrp = \"127.0.0.1:5000\"\n",
    );
    let out = run(&["registrar", "--config", clash.path()]);
    assert_one_line_error(&out, 2, "different SCTP ports");
    let out = run(&[
        "registrar",
        "--config",
        clash.path(),
        "--enrp",
        "127.0.0.1:5001",
        "--workers",
        "2",
    ]);
    assert_one_line_error(&out, 2, "one worker");
}

#[test]
fn bad_network_tables_are_one_line_errors_with_the_documented_codes() {
    let unknown = TempFile::new("net-unknown.toml", "[network]\nudp-port = 1\ncolour = 1\n");
    let out = run(&["registrar", "--config", unknown.path()]);
    assert_one_line_error(&out, 2, unknown.path());
    assert_one_line_error(&out, 2, "line 3");
    assert_one_line_error(&out, 2, "colour");

    let port = TempFile::new("net-port.toml", "[network]\nudp-port = 70000\n");
    let out = run(&["registrar", "--config", port.path()]);
    assert_one_line_error(&out, 2, port.path());
    assert_one_line_error(&out, 2, "udp-port");

    let mtu = TempFile::new("net-mtu.toml", "[network]\nmtu = \"big\"\n");
    let out = run(&["registrar", "--config", mtu.path()]);
    assert_one_line_error(&out, 2, mtu.path());

    let bind = TempFile::new("net-bind.toml", "[network]\nbind = [\"not-an-ip\"]\n");
    let out = run(&["registrar", "--config", bind.path()]);
    assert_one_line_error(&out, 3, bind.path());
    assert_one_line_error(&out, 3, "not-an-ip");

    let backend = TempFile::new(
        "net-backend.toml",
        "[network]\nbackend = \"carrier-pigeon\"\n",
    );
    let out = run(&["registrar", "--config", backend.path()]);
    assert_one_line_error(&out, 2, "carrier-pigeon");

    // The DPDK keys are accepted by every build; the backend needs the feature.
    let dpdk = TempFile::new(
        "net-dpdk.toml",
        "[network]\nbackend = \"dpdk\"\neal = \"--no-huge --no-pci\"\n\
         dpdk-port = [0, \"net_af_packet0\"]\ndpdk-prefix = 24\ndpdk-gateway = [\"10.0.0.1\"]\n",
    );
    let out = run(&["registrar", "--config", dpdk.path()]);
    #[cfg(not(feature = "dpdk"))]
    {
        assert_one_line_error(&out, 2, dpdk.path());
        assert_one_line_error(&out, 2, "feature `dpdk`");
    }
    #[cfg(feature = "dpdk")]
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("feature `dpdk`"),
        "{out:?}"
    );

    // The file's value replaces clap's default: `workers = 2` reaches the registrar's check.
    let workers = TempFile::new("net-workers.toml", "[network]\nworkers = 2\n");
    let out = run(&["registrar", "--config", workers.path()]);
    assert_one_line_error(&out, 2, "one worker");
}

#[test]
fn the_network_table_sets_the_listening_port_and_flags_override_it() {
    let (file_udp, flag_udp) = (free_udp_port(), free_udp_port());
    let enrp = 19_931;
    let text = format!(
        "identifier = 0x51\nasap = \"127.0.0.1:3863\"\nenrp = \"127.0.0.1:{enrp}\"\n\
         [network]\nbackend = \"udp\"\nudp-port = {file_udp}\nbind = [\"127.0.0.1\"]\n\
         remote-udp-port = 9899\nmtu = 1400\n"
    );
    let plain = TempFile::new("net-plain.toml", &text);
    let mut c = rsp();
    c.args([
        "registrar",
        "-v",
        "--mentor-hunt",
        "0",
        "--config",
        plain.path(),
    ]);
    let mut from_file = RegistrarProcess::spawn("from-file", c, file_udp);
    from_file.wait_for_log(&format!("UDP port {file_udp}"), Duration::from_secs(10));
    // It really listens there: hsdump gets its handlespace over ENRP on that UDP port.
    assert_eq!(hsdump(enrp, file_udp)["registrar"], 0x51);
    from_file.terminate();

    // Flags win over the file: --udp-port over udp-port, --workers 1 over workers = 2.
    let both = TempFile::new("net-both.toml", &format!("{text}workers = 2\n"));
    let mut c = rsp();
    c.args([
        "registrar",
        "-v",
        "--mentor-hunt",
        "0",
        "--config",
        both.path(),
    ])
    .args(["--udp-port", &flag_udp.to_string(), "--workers", "1"]);
    let mut from_flag = RegistrarProcess::spawn("from-flag", c, flag_udp);
    from_flag.wait_for_log(&format!("UDP port {flag_udp}"), Duration::from_secs(10));
    assert_eq!(hsdump(enrp, flag_udp)["registrar"], 0x51);
    assert!(
        !from_flag.log().contains(&format!("UDP port {file_udp}")),
        "{}",
        from_flag.log()
    );
    from_flag.terminate();
}

/// One `rsp registrar` child process; killed when dropped (also when a test fails).
struct RegistrarProcess {
    name: &'static str,
    child: Child,
    udp_port: u16,
    log: Arc<Mutex<String>>,
}

impl RegistrarProcess {
    /// Starts registrar `id` with ENRP port `enrp_port` on UDP port `udp_port`, peered with
    /// `peers` (ENRP port, UDP port).
    fn start(
        name: &'static str,
        id: u32,
        udp_port: u16,
        enrp_port: u16,
        peers: &[(u16, u16)],
        extra: &[String],
    ) -> Self {
        let mut c = rsp();
        c.args(["registrar", "-vv", "--bind", "127.0.0.1"])
            .args(["--udp-port", &udp_port.to_string()])
            .args(["--identifier", &id.to_string()])
            .args(["--asap", "127.0.0.1:3863"])
            .args(["--enrp", &format!("127.0.0.1:{enrp_port}")])
            // No keep-alives during the test: the test PE does not answer them.
            .args(["--keepalive-interval", "600000"]);
        for (port, udp) in peers {
            c.args(["--peer", &format!("127.0.0.1:{port}/{udp}")]);
        }
        c.args(extra);
        Self::spawn(name, c, udp_port)
    }

    /// Spawns the prepared command `c` (a registrar on UDP port `udp_port`), collecting its
    /// log.
    fn spawn(name: &'static str, mut c: Command, udp_port: u16) -> Self {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rsp registrar starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        RegistrarProcess {
            name,
            child,
            udp_port,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) for a log line containing `text`.
    fn wait_for_log(&mut self, text: &str, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.log().contains(text) {
                return;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!(
                    "{} exited ({s}) before logging {text:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not log {text:?} in {limit:?}:\n{}",
            self.name,
            self.log()
        );
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RegistrarProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The test's own SCTP endpoint (UDP encapsulation on a free port of 127.0.0.1).
fn test_endpoint() -> (Runtime, Sockets) {
    let mut config = RuntimeConfig::default();
    config.endpoint.rng_seed = random_seed().expect("randomness");
    config.thread_name = "test-asap".to_owned();
    let links = LinkSpec::Udp(UdpConfig {
        bind: LOCALHOST,
        port: 0,
        ..UdpConfig::default()
    });
    Sockets::start(config, links, SocketConfig::default()).expect("test runtime")
}

/// An ASAP association to the registrar listening on `udp_port`.
fn asap_association(sockets: &Sockets, udp_port: u16) -> Association {
    sockets
        .connect(
            ConnectRequest::new(LOCALHOST, 3863).with_encaps_port(udp_port),
            Some(Duration::from_secs(10)),
        )
        .expect("ASAP association with the registrar")
}

fn send_asap(a: &Association, msg: &AsapMessage) {
    let mut bytes = vec![0; msg.encoded_len()];
    let n = msg.encode(&mut bytes).expect("encodes");
    bytes.truncate(n);
    a.send_data(0, Ppid(PPID_ASAP), bytes).expect("sent");
}

/// The next ASAP message on `a` that `want` accepts (others, e.g. keep-alives, are skipped),
/// within `limit`.
fn recv_asap(
    a: &Association,
    limit: Duration,
    want: impl Fn(&AsapMessage) -> bool,
) -> Option<AsapMessage> {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match a.recv_timeout(left) {
            Ok(Incoming::Message(m)) => {
                assert_eq!(m.ppid.get(), PPID_ASAP, "an ASAP answer");
                let msg = AsapMessage::decode(&m.data).expect("valid ASAP").message;
                if want(&msg) {
                    return Some(msg);
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Asks for `pool` on `a` until `done` accepts the response or `limit` passes; returns the
/// last response.
fn resolve_until(
    a: &Association,
    pool: &PoolHandle,
    limit: Duration,
    done: impl Fn(&[PoolElement]) -> bool,
) -> AsapMessage {
    let until = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < until {
        send_asap(
            a,
            &AsapMessage::HandleResolution {
                pool_handle: pool.clone(),
                items: None,
            },
        );
        let answer = recv_asap(a, Duration::from_secs(2), |m| {
            matches!(m, AsapMessage::HandleResolutionResponse { .. })
        });
        if let Some(AsapMessage::HandleResolutionResponse { pool_elements, .. }) = &answer
            && done(pool_elements)
        {
            return answer.expect("checked");
        }
        if answer.is_some() {
            last = answer;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("no matching handle resolution response in {limit:?}; last: {last:?}");
}

#[test]
fn three_peered_registrars_share_registrations_and_removals() {
    let udp = [free_udp_port(), free_udp_port(), free_udp_port()];
    let enrp = [9911, 9912, 9913];
    let peers_of = |i: usize| -> Vec<(u16, u16)> {
        (0..3)
            .filter(|&j| j != i)
            .map(|j| (enrp[j], udp[j]))
            .collect()
    };
    let mut regs = [
        RegistrarProcess::start("registrar 1", 1, udp[0], enrp[0], &peers_of(0), &[]),
        RegistrarProcess::start("registrar 2", 2, udp[1], enrp[1], &peers_of(1), &[]),
        RegistrarProcess::start("registrar 3", 3, udp[2], enrp[2], &peers_of(2), &[]),
    ];
    for r in &mut regs {
        r.wait_for_log("serving", Duration::from_secs(40));
    }

    let (rt, sockets) = test_endpoint();
    let pool = PoolHandle::from("RegistrarTestPool");
    let pe_id = PeIdentifier(0x1234_5678);

    // The PE registers at registrar 1.
    let pe = asap_association(&sockets, regs[0].udp_port);
    let registration = AsapMessage::Registration {
        pool_handle: pool.clone(),
        pool_element: PoolElement {
            identifier: pe_id,
            home_registrar: RegistrarId::UNDEFINED,
            registration_life: 300_000,
            user_transport: TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![LOCALHOST]),
            policy: PolicyInfo::round_robin(),
            asap_transport: None,
        },
    };
    let mut response = None;
    let until = Instant::now() + Duration::from_secs(20);
    while response.is_none() && Instant::now() < until {
        send_asap(&pe, &registration);
        response = recv_asap(&pe, Duration::from_secs(2), |m| {
            matches!(m, AsapMessage::RegistrationResponse { .. })
        });
    }
    match response {
        Some(AsapMessage::RegistrationResponse {
            reject,
            pool_handle,
            identifier,
            error,
        }) => {
            assert!(!reject, "registration rejected: {error:?}");
            assert_eq!(pool_handle, pool);
            assert_eq!(identifier, pe_id);
        }
        other => panic!("no registration response: {other:?}\n{}", regs[0].log()),
    }
    regs[0].wait_for_log("registered PE:12345678 in pool", Duration::from_secs(5));

    // Registrar 3 learned it over ENRP and resolves the pool to that PE.
    let pu3 = asap_association(&sockets, regs[2].udp_port);
    let answer = resolve_until(&pu3, &pool, Duration::from_secs(30), |pes| !pes.is_empty());
    let AsapMessage::HandleResolutionResponse {
        pool_handle,
        pool_elements,
        error,
        ..
    } = answer
    else {
        unreachable!("resolve_until returns responses");
    };
    assert_eq!(pool_handle, pool);
    assert_eq!(error, None);
    assert_eq!(pool_elements.len(), 1, "{pool_elements:?}");
    let got = &pool_elements[0];
    assert_eq!(got.identifier, pe_id);
    assert_eq!(got.home_registrar, RegistrarId(1));
    assert_eq!(got.user_transport.port, 7);
    assert_eq!(got.user_transport.addresses, vec![LOCALHOST]);

    // Registrar 2 has it too before the PE leaves.
    let pu2 = asap_association(&sockets, regs[1].udp_port);
    resolve_until(&pu2, &pool, Duration::from_secs(30), |pes| {
        pes.iter().any(|p| p.identifier == pe_id)
    });

    // `rsp hsdump` asks registrar 2 for its handle table over ENRP, as a peer would.
    let target = format!("127.0.0.1:{}/{}", enrp[1], udp[1]);
    let out = run(&["hsdump", &target, "--json", "--timeout", "20"]);
    assert!(
        out.status.success(),
        "hsdump failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        regs[1].log()
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("hsdump prints JSON");
    assert_eq!(doc["registrar"], 2, "{doc}");
    assert_eq!(doc["pool_elements"], 1, "{doc}");
    let dumped = &doc["pools"][0];
    assert_eq!(dumped["pool_handle"], "RegistrarTestPool", "{doc}");
    let dumped_pe = &dumped["pool_elements"][0];
    assert_eq!(dumped_pe["identifier"], pe_id.0, "{doc}");
    assert_eq!(dumped_pe["home_registrar"], 1, "{doc}");
    assert_eq!(dumped_pe["policy"], "RoundRobin", "{doc}");
    assert_eq!(dumped_pe["user_transport"]["port"], 7, "{doc}");
    // The text form names the pool and the PE.
    let target = format!("127.0.0.1:{}/{}", enrp[2], udp[2]);
    let out = run(&["hsdump", &target, "--timeout", "20"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("registrar PR:00000003"), "{text}");
    assert!(
        text.contains("pool \"RegistrarTestPool\" (1 PEs)"),
        "{text}"
    );
    assert!(text.contains("PE:12345678  home PR:00000001"), "{text}");

    // The PE deregisters at registrar 1.
    send_asap(
        &pe,
        &AsapMessage::Deregistration {
            pool_handle: pool.clone(),
            identifier: pe_id,
        },
    );
    match recv_asap(&pe, Duration::from_secs(10), |m| {
        matches!(m, AsapMessage::DeregistrationResponse { .. })
    }) {
        Some(AsapMessage::DeregistrationResponse {
            pool_handle,
            identifier,
            error,
        }) => {
            assert_eq!(pool_handle, pool);
            assert_eq!(identifier, pe_id);
            assert_eq!(error, None);
        }
        other => panic!("no deregistration response: {other:?}\n{}", regs[0].log()),
    }

    // Registrar 2 learns the removal: the pool resolves to nothing (with an error).
    let answer = resolve_until(
        &pu2,
        &pool,
        Duration::from_secs(30),
        <[PoolElement]>::is_empty,
    );
    let AsapMessage::HandleResolutionResponse {
        pool_elements,
        error,
        ..
    } = answer
    else {
        unreachable!("resolve_until returns responses");
    };
    assert!(pool_elements.is_empty());
    assert!(error.is_some(), "an unknown pool is an error");
    regs[1].wait_for_log("removed PE:12345678 from pool", Duration::from_secs(5));
    regs[0].wait_for_log("peer PR:00000003 up", Duration::from_secs(1));

    // A second PE whose association is lost: registrar 1 removes it and tells its peers.
    let pe2_id = PeIdentifier(0x2222);
    let pe2 = asap_association(&sockets, regs[0].udp_port);
    let mut registration2 = registration.clone();
    if let AsapMessage::Registration { pool_element, .. } = &mut registration2 {
        pool_element.identifier = pe2_id;
    }
    send_asap(&pe2, &registration2);
    match recv_asap(&pe2, Duration::from_secs(10), |m| {
        matches!(m, AsapMessage::RegistrationResponse { .. })
    }) {
        Some(AsapMessage::RegistrationResponse {
            reject, identifier, ..
        }) => {
            assert!(!reject);
            assert_eq!(identifier, pe2_id);
        }
        other => panic!("no registration response: {other:?}\n{}", regs[0].log()),
    }
    resolve_until(&pu3, &pool, Duration::from_secs(30), |pes| {
        pes.iter().map(|p| p.identifier).collect::<Vec<_>>() == [pe2_id]
    });
    pe2.abort(b"test PE gone").expect("abort");
    resolve_until(
        &pu3,
        &pool,
        Duration::from_secs(30),
        <[PoolElement]>::is_empty,
    );
    regs[0].wait_for_log(
        "removed PE:00002222 from pool \"RegistrarTestPool\": AssociationLost",
        Duration::from_secs(5),
    );

    drop((pe, pe2, pu2, pu3, sockets));
    rt.stop();
    let _ = rt.join();

    // SIGTERM stops every registrar cleanly.
    for r in &mut regs {
        let status = r.terminate();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} after SIGTERM: {status:?}\n{}",
            r.name,
            r.log()
        );
    }
}

/// A UDP socket in `group` on the loopback interface (several may share the port).
fn group_socket(group: SocketAddr) -> UdpSocket {
    let IpAddr::V4(g) = group.ip() else {
        panic!("IPv4 groups only");
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), group.port()).into())
        .expect("bind the group port");
    s.join_multicast_v4(&g, &Ipv4Addr::LOCALHOST).expect("join");
    s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .expect("IP_MULTICAST_IF");
    s.set_multicast_loop_v4(true).expect("loop");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s.into()
}

#[test]
fn multicast_announces_reach_the_groups_and_a_multicast_presence_adds_a_peer() {
    let asap_group = SocketAddr::new(Ipv4Addr::new(239, 0, 0, 50).into(), free_udp_port());
    let enrp_group = SocketAddr::new(Ipv4Addr::new(239, 0, 0, 51).into(), free_udp_port());
    let asap_rx = group_socket(asap_group);
    let enrp_rx = group_socket(enrp_group);

    // The test plays an ENRP peer, PR:00000077, listening on SCTP port 9920.
    let (rt, sockets) = test_endpoint();
    let test_udp = rt.local_udp_port().expect("UDP encapsulation");
    let listener = sockets.listen(9920, 4).expect("listen");

    // The groups come from the config file; its identifier is overridden by the flag.
    let config = TempFile::new(
        "multicast.toml",
        &format!(
            "identifier = \"0x99\"\nasap-announce = \"{asap_group}\"\nenrp-announce = \"{enrp_group}\"\nmax-hres-items = 5\n"
        ),
    );
    let extra = [
        "--config".to_owned(),
        config.path().to_owned(),
        "--remote-udp-port".to_owned(),
        test_udp.to_string(),
    ];
    let mut reg = RegistrarProcess::start("registrar", 0x21, free_udp_port(), 9921, &[], &extra);

    // Its PRESENCE (at start) on the ENRP group, and SERVER_ANNOUNCE once it serves.
    let mut presence = None;
    let mut announce = None;
    let mut buf = vec![0; 65_535];
    let until = Instant::now() + Duration::from_secs(30);
    while (presence.is_none() || announce.is_none()) && Instant::now() < until {
        if let Ok((n, _)) = enrp_rx.recv_from(&mut buf)
            && let Ok(d) = EnrpMessage::decode(&buf[..n])
            && d.message.sender == RegistrarId(0x21)
        {
            presence = Some(d.message);
        }
        if let Ok((n, _)) = asap_rx.recv_from(&mut buf)
            && let Ok(d) = AsapMessage::decode(&buf[..n])
        {
            announce = Some(d.message);
        }
    }
    match presence {
        Some(EnrpMessage {
            body: EnrpBody::Presence {
                server_information, ..
            },
            ..
        }) => {
            assert_eq!(server_information.server_id, RegistrarId(0x21));
            assert_eq!(server_information.transport.port, 9921);
            assert_eq!(server_information.transport.addresses, vec![LOCALHOST]);
        }
        other => panic!("no PRESENCE on {enrp_group}: {other:?}\n{}", reg.log()),
    }
    match announce {
        Some(AsapMessage::ServerAnnounce {
            server_id,
            transports,
        }) => {
            assert_eq!(server_id, RegistrarId(0x21));
            assert_eq!(transports.len(), 1);
            assert_eq!(transports[0].port, 3863);
            assert_eq!(transports[0].addresses, vec![LOCALHOST]);
        }
        other => panic!(
            "no SERVER_ANNOUNCE on {asap_group}: {other:?}\n{}",
            reg.log()
        ),
    }

    // A PRESENCE from PR:00000077 on the group: the registrar adds it as a peer and
    // connects to its ENRP endpoint (at --remote-udp-port) to talk to it.
    let msg = EnrpMessage {
        sender: RegistrarId(0x77),
        receiver: RegistrarId::UNDEFINED,
        body: EnrpBody::Presence {
            reply_required: false,
            checksum: 0,
            server_information: ServerInformation {
                server_id: RegistrarId(0x77),
                transport: TransportParameter::sctp(9920, TransportUse::DATA_ONLY, vec![LOCALHOST]),
            },
        },
    };
    let mut bytes = vec![0; msg.encoded_len()];
    let n = msg.encode(&mut bytes).expect("encodes");
    bytes.truncate(n);
    let peer = {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            enrp_rx.send_to(&bytes, enrp_group).expect("multicast send");
            match listener.accept_timeout(Duration::from_secs(1)) {
                Ok(a) => break a,
                Err(_) if Instant::now() < until => {}
                Err(e) => panic!("no association from the registrar: {e}\n{}", reg.log()),
            }
        }
    };
    reg.wait_for_log("peer PR:00000077 up", Duration::from_secs(5));
    let until = Instant::now() + Duration::from_secs(10);
    let from_registrar = loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no ENRP message\n{}", reg.log());
        if let Ok(Incoming::Message(m)) = peer.recv_timeout(left) {
            assert_eq!(m.ppid.get(), PPID_ENRP);
            break EnrpMessage::decode(&m.data).expect("valid ENRP").message;
        }
    };
    assert_eq!(from_registrar.sender, RegistrarId(0x21));
    assert!(
        matches!(
            from_registrar.receiver,
            RegistrarId(0x77) | RegistrarId::UNDEFINED
        ),
        "{from_registrar:?}"
    );

    drop((peer, listener, sockets));
    rt.stop();
    let _ = rt.join();
    let status = reg.terminate();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", reg.log());
}

#[test]
fn bad_monitoring_flags_are_one_line_errors_with_the_documented_codes() {
    let out = run(&["registrar", "--metrics", "localhost"]);
    assert_one_line_error(&out, 3, "ADDR:PORT");
    let out = run(&["registrar", "--metrics", "127.0.0.1:0"]);
    assert_one_line_error(&out, 3, "port 0");
    let out = run(&["registrar", "--cspserver", "0.0.0.0:2960"]);
    assert_one_line_error(&out, 3, "unicast");
    let out = run(&["registrar", "--cspinterval", "0"]);
    assert_one_line_error(&out, 2, "--cspinterval");
    let out = run(&["registrar", "--cspinterval", "soon"]);
    assert_one_line_error(&out, 2, "--cspinterval");

    let metrics = TempFile::new("metrics.toml", "metrics = \"nowhere\"\n");
    let out = run(&["registrar", "--config", metrics.path()]);
    assert_one_line_error(&out, 3, "metrics");
    let csp = TempFile::new("csp.toml", "cspserver = \"127.0.0.1\"\n");
    let out = run(&["registrar", "--config", csp.path()]);
    assert_one_line_error(&out, 3, "cspserver");
    let interval = TempFile::new("cspinterval.toml", "cspinterval = 0\n");
    let out = run(&["registrar", "--config", interval.path()]);
    assert_one_line_error(&out, 2, "cspinterval");

    // A metrics port already in use is a set-up failure.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
    let addr = busy.local_addr().expect("bound").to_string();
    let out = run(&["registrar", "--metrics", &addr, "--udp-port", "0"]);
    assert_one_line_error(&out, 4, "--metrics");
}

/// One HTTP/1.1 exchange with the metrics endpoint: the raw request in, (status, body) out.
fn http_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("metrics endpoint accepts");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("request sent");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {reply:?}"));
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the unlabelled sample `name` in a Prometheus text body.
fn sample(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
}

/// The next Component Status report on `socket` that `want` accepts, within `limit`.
fn recv_csp(
    socket: &UdpSocket,
    limit: Duration,
    want: impl Fn(&rserpool::services::wire::ComponentStatusReport) -> bool,
) -> rserpool::services::wire::ComponentStatusReport {
    use rserpool::services::wire::ComponentStatusReport;
    let until = Instant::now() + limit;
    let mut buf = [0u8; 65536];
    let mut last = None;
    while Instant::now() < until {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let report = ComponentStatusReport::decode(&buf[..n]).expect("a valid CSP report");
        if want(&report) {
            return report;
        }
        last = Some(report);
    }
    panic!("no matching CSP report in {limit:?}; last: {last:?}");
}

#[test]
fn a_monitored_registrar_serves_metrics_and_reports_its_status_to_a_cspmonitor() {
    use rserpool::services::wire::component_group;

    let metrics: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
        l.local_addr().expect("bound")
    };
    let monitor = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    monitor
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let csp_port = monitor.local_addr().expect("bound").port();
    let id = 0x51;
    let mut reg = RegistrarProcess::start(
        "monitored registrar",
        id,
        free_udp_port(),
        9921,
        &[],
        &[
            "--metrics".to_owned(),
            metrics.to_string(),
            "--cspserver".to_owned(),
            format!("127.0.0.1:{csp_port}"),
            "--cspinterval".to_owned(),
            "200".to_owned(),
        ],
    );
    let sender = component_group::compound(component_group::REGISTRAR, u64::from(id));
    // Reports start before the registrar serves.
    let first = recv_csp(&monitor, Duration::from_secs(10), |_| true);
    assert_eq!(first.sender_id, sender);
    assert_eq!(first.report_interval, 200_000);
    assert!(!first.final_report);
    reg.wait_for_log("serving", Duration::from_secs(40));

    // Bad requests get 400/404/405 and the endpoint keeps serving.
    assert_eq!(
        http_exchange(metrics, b"\x16\x03\x01garbage\r\n\r\n").0,
        400
    );
    assert_eq!(http_exchange(metrics, b"GET /metrics\r\n\r\n").0, 400);
    assert_eq!(
        http_exchange(metrics, &[b'A'; 20_000]).0,
        400,
        "an oversized request"
    );
    assert_eq!(http_exchange(metrics, b"GET / HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(
        http_exchange(metrics, b"POST /metrics HTTP/1.1\r\n\r\n").0,
        405
    );
    {
        // A client that connects and says nothing does not block the endpoint for good.
        let _idle = std::net::TcpStream::connect(metrics).expect("connects");
        let (status, body) = http_exchange(metrics, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
        assert_eq!(sample(&body, "rsp_registrar_pool_elements"), 0);
        assert_eq!(sample(&body, "rsp_registrar_serving"), 1);
    }

    // A test PE registers, a PU resolves its pool once.
    let (rt, sockets) = test_endpoint();
    let pool = PoolHandle::from("MonitoredPool");
    let pe_id = PeIdentifier(0x0bad_cafe);
    let pe = asap_association(&sockets, reg.udp_port);
    send_asap(
        &pe,
        &AsapMessage::Registration {
            pool_handle: pool.clone(),
            pool_element: PoolElement {
                identifier: pe_id,
                home_registrar: RegistrarId::UNDEFINED,
                registration_life: 300_000,
                user_transport: TransportParameter::sctp(
                    7,
                    TransportUse::DATA_ONLY,
                    vec![LOCALHOST],
                ),
                policy: PolicyInfo::round_robin(),
                asap_transport: None,
            },
        },
    );
    match recv_asap(&pe, Duration::from_secs(10), |m| {
        matches!(m, AsapMessage::RegistrationResponse { .. })
    }) {
        Some(AsapMessage::RegistrationResponse { reject, error, .. }) => {
            assert!(!reject, "registration rejected: {error:?}");
        }
        other => panic!("no registration response: {other:?}\n{}", reg.log()),
    }
    let pu = asap_association(&sockets, reg.udp_port);
    resolve_until(&pu, &pool, Duration::from_secs(10), |pes| pes.len() == 1);

    let (status, body) =
        http_exchange(metrics, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE rsp_registrar_pools gauge"), "{body}");
    assert!(
        body.contains("# TYPE rsp_registrar_registrations_total counter"),
        "{body}"
    );
    assert!(
        body.contains("# HELP rsp_registrar_handle_resolutions_total "),
        "{body}"
    );
    assert_eq!(sample(&body, "rsp_registrar_pools"), 1);
    assert_eq!(sample(&body, "rsp_registrar_pool_elements"), 1);
    assert_eq!(sample(&body, "rsp_registrar_owned_pool_elements"), 1);
    assert_eq!(sample(&body, "rsp_registrar_peers"), 0);
    assert_eq!(sample(&body, "rsp_registrar_registrations_total"), 1);
    assert_eq!(sample(&body, "rsp_registrar_handle_resolutions_total"), 1);
    assert_eq!(sample(&body, "rsp_registrar_deregistrations_total"), 0);
    assert_eq!(sample(&body, "rsp_registrar_takeovers_total"), 0);
    assert_eq!(sample(&body, "rsp_registrar_malformed_messages_total"), 0);

    // The cspmonitor sees the pool, the PE and the PE's association.
    let report = recv_csp(&monitor, Duration::from_secs(10), |r| {
        r.status.starts_with(b"1 pool, 1 PE (1 owned)")
    });
    assert_eq!(report.sender_id, sender);
    assert_eq!(report.workload_fraction(), None);
    let pe_component = component_group::compound(component_group::POOL_ELEMENT, 0x0bad_cafe);
    assert!(
        report
            .associations
            .iter()
            .any(|a| a.receiver_id == pe_component && a.ppid == PPID_ASAP),
        "{report:?}"
    );

    // The PE deregisters: counted, and gone from the gauges.
    send_asap(
        &pe,
        &AsapMessage::Deregistration {
            pool_handle: pool.clone(),
            identifier: pe_id,
        },
    );
    assert!(
        recv_asap(&pe, Duration::from_secs(10), |m| {
            matches!(m, AsapMessage::DeregistrationResponse { .. })
        })
        .is_some(),
        "no deregistration response"
    );
    let (_, body) = http_exchange(metrics, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_eq!(sample(&body, "rsp_registrar_deregistrations_total"), 1);
    assert_eq!(sample(&body, "rsp_registrar_pool_elements"), 0);
    assert_eq!(sample(&body, "rsp_registrar_pools"), 0);
    assert_eq!(sample(&body, "rsp_registrar_registrations_total"), 1);

    // A stop sends a final report.
    drop(pe);
    drop(pu);
    drop(sockets);
    drop(rt);
    assert!(
        reg.terminate().is_some_and(|s| s.success()),
        "{}",
        reg.log()
    );
    recv_csp(&monitor, Duration::from_secs(5), |r| r.final_report);
}

/// A registration of `id` in `pool` as the test PE at 127.0.0.1.
fn registration(pool: &PoolHandle, id: u32) -> AsapMessage {
    AsapMessage::Registration {
        pool_handle: pool.clone(),
        pool_element: PoolElement {
            identifier: PeIdentifier(id),
            home_registrar: RegistrarId::UNDEFINED,
            registration_life: 300_000,
            user_transport: TransportParameter::sctp(7, TransportUse::DATA_ONLY, vec![LOCALHOST]),
            policy: PolicyInfo::round_robin(),
            asap_transport: None,
        },
    }
}

#[test]
fn access_lists_and_rate_limits_of_rsp_registrar_hold_over_real_associations() {
    let udp = free_udp_port();
    let extra = [
        "--allow-register",
        "127.0.0.0/8=AllowedPool",
        "--allow-resolve",
        "127.0.0.1=AllowedPool",
        "--resolution-rate",
        "1/4",
    ]
    .map(str::to_owned);
    let mut reg = RegistrarProcess::start("registrar", 0x31, udp, 9931, &[], &extra);
    reg.wait_for_log("serving", Duration::from_secs(40));
    let (_rt, sockets) = test_endpoint();
    let a = asap_association(&sockets, udp);
    let allowed = PoolHandle::from("AllowedPool");
    let other = PoolHandle::from("OtherPool");
    let is_response = |m: &AsapMessage| matches!(m, AsapMessage::RegistrationResponse { .. });

    // Registering into the allowed pool works; into another pool: refused for security.
    send_asap(&a, &registration(&allowed, 0x51));
    match recv_asap(&a, Duration::from_secs(10), is_response) {
        Some(AsapMessage::RegistrationResponse { reject, error, .. }) => {
            assert!(!reject, "allowed registration rejected: {error:?}");
        }
        other => panic!("no registration response: {other:?}\n{}", reg.log()),
    }
    send_asap(&a, &registration(&other, 0x52));
    match recv_asap(&a, Duration::from_secs(10), is_response) {
        Some(AsapMessage::RegistrationResponse {
            reject,
            identifier,
            error,
            ..
        }) => {
            assert!(reject, "registration into OtherPool accepted");
            assert_eq!(identifier, PeIdentifier(0x52));
            let codes: Vec<CauseCode> = error
                .iter()
                .flat_map(|e| &e.causes)
                .map(|c| c.code)
                .collect();
            assert_eq!(codes, vec![CauseCode::REJECTED_SECURITY]);
        }
        other => panic!("no registration response: {other:?}\n{}", reg.log()),
    }

    // Resolving OtherPool is refused (one token of the burst of 4).
    let is_resolution = |m: &AsapMessage| matches!(m, AsapMessage::HandleResolutionResponse { .. });
    let resolve = |pool: &PoolHandle| {
        send_asap(
            &a,
            &AsapMessage::HandleResolution {
                pool_handle: pool.clone(),
                items: None,
            },
        );
    };
    resolve(&other);
    match recv_asap(&a, Duration::from_secs(10), is_resolution) {
        Some(AsapMessage::HandleResolutionResponse {
            pool_elements,
            error,
            ..
        }) => {
            assert!(pool_elements.is_empty());
            let codes: Vec<CauseCode> = error
                .iter()
                .flat_map(|e| &e.causes)
                .map(|c| c.code)
                .collect();
            assert_eq!(codes, vec![CauseCode::REJECTED_SECURITY]);
        }
        other => panic!("no resolution response: {other:?}\n{}", reg.log()),
    }
    // Five resolutions back to back: the three tokens left answer, the rest are dropped
    // (the bucket refills one per second; the five arrive within milliseconds).
    for _ in 0..5 {
        resolve(&allowed);
    }
    let mut answers = 0;
    while let Some(m) = recv_asap(&a, Duration::from_millis(700), is_resolution) {
        let AsapMessage::HandleResolutionResponse { pool_elements, .. } = m else {
            unreachable!("filtered");
        };
        assert_eq!(pool_elements.len(), 1, "the allowed PE");
        answers += 1;
    }
    assert_eq!(
        answers,
        3,
        "resolutions answered within the burst\n{}",
        reg.log()
    );
}

/// The handlespace of the registrar at ENRP `enrp`/UDP `udp`, from `rsp hsdump --json`.
fn hsdump(enrp: u16, udp: u16) -> serde_json::Value {
    let target = format!("127.0.0.1:{enrp}/{udp}");
    // One identity for every dump: the registrars see one extra peer, not one per call.
    let out = run(&[
        "hsdump",
        &target,
        "--json",
        "--timeout",
        "10",
        "--identifier",
        "0x7e57",
    ]);
    assert!(
        out.status.success(),
        "hsdump {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hsdump prints JSON")
}

/// The home registrar of PE `id` in a dump, if the PE is there.
fn home_of(dump: &serde_json::Value, id: u32) -> Option<u64> {
    dump["pools"]
        .as_array()?
        .iter()
        .flat_map(|p| p["pool_elements"].as_array().into_iter().flatten())
        .find(|pe| pe["identifier"] == id)
        .and_then(|pe| pe["home_registrar"].as_u64())
}

#[test]
fn a_killed_registrar_is_taken_over_by_exactly_one_peer_over_real_associations() {
    let udp = [free_udp_port(), free_udp_port(), free_udp_port()];
    let enrp = [9941, 9942, 9943];
    let peers_of = |i: usize| -> Vec<(u16, u16)> {
        (0..3)
            .filter(|&j| j != i)
            .map(|j| (enrp[j], udp[j]))
            .collect()
    };
    let mut regs = [
        RegistrarProcess::start("registrar 1", 1, udp[0], enrp[0], &peers_of(0), &[]),
        RegistrarProcess::start("registrar 2", 2, udp[1], enrp[1], &peers_of(1), &[]),
        RegistrarProcess::start("registrar 3", 3, udp[2], enrp[2], &peers_of(2), &[]),
    ];
    for r in &mut regs {
        r.wait_for_log("serving", Duration::from_secs(40));
    }
    let (_rt, sockets) = test_endpoint();
    let pool = PoolHandle::from("TakeoverPool");
    let pe = asap_association(&sockets, regs[0].udp_port);
    send_asap(&pe, &registration(&pool, 0x7a));
    let accepted = recv_asap(&pe, Duration::from_secs(10), |m| {
        matches!(m, AsapMessage::RegistrationResponse { .. })
    });
    assert!(
        matches!(
            accepted,
            Some(AsapMessage::RegistrationResponse { reject: false, .. })
        ),
        "{accepted:?}"
    );
    // Every registrar knows the PE with home 1.
    let until = Instant::now() + Duration::from_secs(30);
    while [1, 2]
        .iter()
        .any(|&i| home_of(&hsdump(enrp[i], udp[i]), 0x7a) != Some(1))
    {
        assert!(Instant::now() < until, "the registration did not propagate");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Registrar 1 dies without a word (SIGKILL): its peers notice the missing PRESENCE,
    // one takes it over (the lower identifier wins a race) and becomes the PE's home.
    let _ = regs[0].child.kill();
    let _ = regs[0].child.wait();
    let until = Instant::now() + Duration::from_secs(60);
    let new_home = loop {
        let homes = [
            home_of(&hsdump(enrp[1], udp[1]), 0x7a),
            home_of(&hsdump(enrp[2], udp[2]), 0x7a),
        ];
        if let [Some(a), Some(b)] = homes
            && a == b
            && a != 1
        {
            break a;
        }
        assert!(
            Instant::now() < until,
            "no takeover in 60 s: {homes:?}\n{}\n{}",
            regs[1].log(),
            regs[2].log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(new_home == 2 || new_home == 3, "home {new_home}");
    let winners: Vec<usize> = [1, 2]
        .into_iter()
        .filter(|&i| regs[i].log().contains("took over PR:00000001: now home"))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one takeover\n{}\n{}",
        regs[1].log(),
        regs[2].log()
    );
    assert_eq!(winners[0] as u64 + 1, new_home);
}

/// `tshark -r FILE -Y FILTER` line count, decoding the UDP ports as SCTP.
fn tshark_count(file: &std::path::Path, udp_ports: &[u16], filter: &str) -> usize {
    let mut c = Command::new("tshark");
    c.args(["-n", "-o", "sctp.checksum:CRC-32C", "-r"])
        .arg(file);
    for p in udp_ports {
        c.args(["-d", &format!("udp.port=={p},sctp")]);
    }
    let out = c.args(["-Y", filter]).output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark -Y {filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Three `rsp registrar` processes capture what they send and receive (`--pcap`): a PE
/// registers and deregisters, a PU resolves, `rsp hsdump` downloads a handle table; every
/// capture must be tshark-clean (CRC32c, no malformed packet, no error) and decode as ASAP
/// and ENRP. Needs tshark: run by `.ci/rserpool-tshark.sh`.
#[test]
#[ignore = "needs tshark; run by .ci/rserpool-tshark.sh"]
fn registrar_captures_are_tshark_clean_asap_and_enrp() {
    let dir = std::env::temp_dir().join(format!("rsp-registrar-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("capture directory");
    let udp = [free_udp_port(), free_udp_port(), free_udp_port()];
    let enrp = [9951, 9952, 9953];
    let pcaps: Vec<_> = (0..3)
        .map(|i| dir.join(format!("registrar{i}.pcap")))
        .collect();
    let peers_of = |i: usize| -> Vec<(u16, u16)> {
        (0..3)
            .filter(|&j| j != i)
            .map(|j| (enrp[j], udp[j]))
            .collect()
    };
    let extra = |i: usize| ["--pcap".to_owned(), pcaps[i].display().to_string()];
    let mut regs = [
        RegistrarProcess::start("registrar 1", 1, udp[0], enrp[0], &peers_of(0), &extra(0)),
        RegistrarProcess::start("registrar 2", 2, udp[1], enrp[1], &peers_of(1), &extra(1)),
        RegistrarProcess::start("registrar 3", 3, udp[2], enrp[2], &peers_of(2), &extra(2)),
    ];
    for r in &mut regs {
        r.wait_for_log("serving", Duration::from_secs(40));
    }
    let (rt, sockets) = test_endpoint();
    let test_udp = rt.local_udp_port().expect("UDP encapsulation");
    let pool = PoolHandle::from("CapturePool");
    let pe = asap_association(&sockets, regs[0].udp_port);
    send_asap(&pe, &registration(&pool, 0xca));
    assert!(
        recv_asap(&pe, Duration::from_secs(10), |m| matches!(
            m,
            AsapMessage::RegistrationResponse { reject: false, .. }
        ))
        .is_some()
    );
    let pu = asap_association(&sockets, regs[2].udp_port);
    resolve_until(&pu, &pool, Duration::from_secs(30), |pes| !pes.is_empty());
    let until = Instant::now() + Duration::from_secs(30);
    while home_of(&hsdump(enrp[1], udp[1]), 0xca) != Some(1) {
        assert!(Instant::now() < until, "registrar 2 never had the PE");
        std::thread::sleep(Duration::from_millis(300));
    }
    send_asap(
        &pe,
        &AsapMessage::Deregistration {
            pool_handle: pool.clone(),
            identifier: PeIdentifier(0xca),
        },
    );
    assert!(
        recv_asap(&pe, Duration::from_secs(10), |m| matches!(
            m,
            AsapMessage::DeregistrationResponse { .. }
        ))
        .is_some()
    );
    // A few PRESENCE rounds, then a clean stop so the captures are complete.
    std::thread::sleep(Duration::from_secs(3));
    for r in &mut regs {
        assert!(
            r.terminate().is_some_and(|s| s.success()),
            "{} did not stop cleanly",
            r.name
        );
    }
    let ports = [udp[0], udp[1], udp[2], test_udp];
    let ports_text: Vec<String> = ports.iter().map(ToString::to_string).collect();
    for (i, pcap) in pcaps.iter().enumerate() {
        let check = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.ci/lib/tshark-check.sh"
            ))
            .arg(pcap)
            .args(&ports_text)
            .output()
            .expect("tshark-check runs");
        assert!(
            check.status.success(),
            "registrar {}: {}{}",
            i + 1,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // ENRP between the registrars: PRESENCE everywhere.
        assert!(
            tshark_count(pcap, &ports, "enrp.message_type == 1") > 0,
            "registrar {}: no ENRP PRESENCE",
            i + 1
        );
    }
    // The PE's registration and deregistration at registrar 1, the resolution at 3, the
    // handle table download and the handle updates between them.
    for (file, filter) in [
        (&pcaps[0], "asap.message_type == 1"),
        (&pcaps[0], "asap.message_type == 2"),
        (&pcaps[0], "asap.message_type == 3"),
        (&pcaps[0], "asap.message_type == 4"),
        (&pcaps[0], "enrp.message_type == 4"),
        (&pcaps[2], "asap.message_type == 5"),
        (&pcaps[2], "asap.message_type == 6"),
        (&pcaps[1], "enrp.message_type == 2"),
        (&pcaps[1], "enrp.message_type == 3"),
    ] {
        assert!(
            tshark_count(file, &ports, filter) > 0,
            "{}: nothing matches {filter}",
            file.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
