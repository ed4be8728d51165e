//! The blocking API (`appliance::pool::blocking`) as an application uses it: a Basic Mode
//! handle resolution, then Enhanced Mode:
//! two pool elements written like a classic echo server (accept, recv, send, send a cookie)
//! and a pool user written like a classic client (connect to a pool handle, send, recv),
//! against an `rsp registrar` process on loopback over UDP encapsulation. The serving PE
//! leaves; the session fails over to the other PE, which gets the last cookie before the
//! next message.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use appliance::pool::blocking::{ApiError, Notification, PoolElement, PoolUser, Session};
use appliance::pool::driver::DriverConfig;
use dataplane::runtime::{LinkSpec, RuntimeConfig, random_seed};
use dataplane::udp::UdpConfig;
use rserpool::pe::PoolElementConfig;
use rserpool::session::{ClientConfig, ServerConfig};
use rserpool::wire::{PeIdentifier, PolicyInfo, PoolHandle, TransportParameter, TransportUse};

mod common;

use common::{free_udp_port, rsp};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ASAP: u16 = 3863;

struct Registrar(Child);

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fast SCTP timers so a lost PE is noticed quickly.
fn runtime(udp_port: u16, name: &str) -> (RuntimeConfig, LinkSpec) {
    let mut c = RuntimeConfig::default();
    c.endpoint.rng_seed = random_seed().expect("randomness");
    c.thread_name = name.to_owned();
    let a = &mut c.endpoint.association;
    a.rto_min = Duration::from_millis(50);
    a.rto_initial = Duration::from_millis(100);
    a.rto_max = Duration::from_millis(200);
    a.heartbeat_interval = Some(Duration::from_millis(200));
    a.association_max_retrans = 4;
    a.path_max_retrans = 4;
    a.nodelay = true;
    let links = LinkSpec::Udp(UdpConfig {
        bind: LOCALHOST,
        port: udp_port,
        ..UdpConfig::default()
    });
    (c, links)
}

fn seed() -> [u8; 32] {
    random_seed().expect("randomness")
}

/// A PE on SCTP port `port` (UDP `udp`) registered at the registrar on UDP `reg_udp`.
fn pool_element(port: u16, udp: u16, reg_udp: u16) -> PoolElement {
    let mut pe = PoolElementConfig::new(
        PoolHandle::from("BlockingEchoPool"),
        PolicyInfo::round_robin(),
        TransportParameter::sctp(port, TransportUse::DATA_PLUS_CONTROL, vec![LOCALHOST]),
    );
    pe.static_registrars = vec![TransportParameter::sctp(
        ASAP,
        TransportUse::DATA_ONLY,
        vec![LOCALHOST],
    )];
    let dc = DriverConfig {
        listen_port: Some(port),
        registrar_local_port: port,
        registrar_udp_ports: HashMap::from([((LOCALHOST, ASAP), reg_udp)]),
        ..DriverConfig::default()
    };
    let (c, l) = runtime(udp, "test-pe");
    PoolElement::start(c, l, dc, ServerConfig::new(pe), seed()).expect("PE starts")
}

/// What a PE thread saw: (cookie echoed, messages) in order.
type Log = Arc<Mutex<Vec<String>>>;

/// The classic echo server: every message comes back, followed by a cookie counting them.
fn serve(pe: Arc<PoolElement>, log: Log) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(session): Result<Session, ApiError> = pe.accept_timeout(Duration::from_secs(20))
        else {
            return;
        };
        let mut count = 0u32;
        while let Ok(n) = session.recv_timeout(Duration::from_secs(20)) {
            match n {
                Notification::CookieEcho { cookie } => {
                    let text = String::from_utf8_lossy(&cookie).into_owned();
                    count = text
                        .strip_prefix("count=")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    log.lock().unwrap().push(format!("cookie {text}"));
                }
                Notification::Data { ppid, bytes } => {
                    count += 1;
                    log.lock()
                        .unwrap()
                        .push(format!("data {}", String::from_utf8_lossy(&bytes)));
                    if session.send(ppid, &bytes).is_err()
                        || session
                            .send_cookie(format!("count={count}").as_bytes())
                            .is_err()
                    {
                        break;
                    }
                }
                Notification::Closed => break,
                _ => {}
            }
        }
    })
}

fn expect_data(session: &Session, want: &[u8]) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match session.recv_timeout(left) {
            Ok(Notification::Data { bytes, .. }) => {
                assert_eq!(bytes, want);
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("no echo of {:?}: {e}", String::from_utf8_lossy(want)),
        }
    }
}

#[test]
fn a_blocking_pool_user_fails_over_between_blocking_pool_elements_with_the_cookie() {
    let reg_udp = free_udp_port();
    let registrar = Registrar(
        rsp()
            .args(["registrar", "--bind", "127.0.0.1", "--identifier", "0x71"])
            .args(["--udp-port", &reg_udp.to_string()])
            .args(["--asap", "127.0.0.1:3863", "--enrp", "127.0.0.1:9971"])
            .args(["--mentor-hunt", "0", "--keepalive-interval", "500"])
            .args(["--keepalive-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsp registrar starts"),
    );
    let (udp1, udp2) = (free_udp_port(), free_udp_port());
    let pe1 = Arc::new(pool_element(7101, udp1, reg_udp));
    let pe2 = Arc::new(pool_element(7102, udp2, reg_udp));
    pe1.wait_registered(Duration::from_secs(20))
        .expect("PE 1 registered");
    pe2.wait_registered(Duration::from_secs(20))
        .expect("PE 2 registered");
    let (log1, log2): (Log, Log) = (Arc::default(), Arc::default());
    let t1 = serve(Arc::clone(&pe1), Arc::clone(&log1));
    let t2 = serve(Arc::clone(&pe2), Arc::clone(&log2));

    let mut client = ClientConfig::default();
    client.pu.static_registrars = vec![TransportParameter::sctp(
        ASAP,
        TransportUse::DATA_ONLY,
        vec![LOCALHOST],
    )];
    client.retry_interval = Duration::from_millis(200);
    let dc = DriverConfig {
        registrar_udp_ports: HashMap::from([((LOCALHOST, ASAP), reg_udp)]),
        pe_udp_ports: HashMap::from([(7101, udp1), (7102, udp2)]),
        ..DriverConfig::default()
    };
    let (c, l) = runtime(free_udp_port(), "test-pu");
    let pu = PoolUser::start(c, l, dc, client, seed()).expect("PU starts");
    // Basic Mode: a handle resolution names one of the two PEs; an unknown pool fails.
    let resolved = pu
        .resolve(PoolHandle::from("BlockingEchoPool"))
        .expect("the pool resolves");
    assert!(
        [7101, 7102].contains(&resolved.user_transport.port),
        "{resolved:?}"
    );
    assert!(pu.resolve(PoolHandle::from("NoSuchPool")).is_err());
    let session = pu
        .connect(
            PoolHandle::from("BlockingEchoPool"),
            Duration::from_secs(20),
        )
        .expect("a PE serves the session");
    let first: PeIdentifier = session.pe().expect("connected");

    session.send(0, b"one").expect("sent");
    expect_data(&session, b"one");
    session.send(0, b"two").expect("sent");
    expect_data(&session, b"two");

    // The serving PE leaves (deregisters and stops): the session fails over.
    let pe1_served = log1.lock().unwrap().iter().any(|l| l == "data one");
    let (serving, other_log) = if pe1_served {
        (&pe1, &log2)
    } else {
        (&pe2, &log1)
    };
    serving.shutdown();
    let until = Instant::now() + Duration::from_secs(20);
    let second = loop {
        match session.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Notification::FailoverComplete { pe }) => break pe,
            Ok(_) => {}
            Err(e) => panic!("no failover: {e}"),
        }
    };
    assert_ne!(second, first, "a different PE");
    // Until the failover completed, sends were refused; now they reach the new PE, which
    // got the last cookie (two messages served) before them.
    session.send(0, b"three").expect("sent after the failover");
    expect_data(&session, b"three");
    assert_eq!(
        *other_log.lock().unwrap(),
        vec!["cookie count=2".to_owned(), "data three".to_owned()]
    );
    session.close().expect("closed");
    pu.stop().expect("PU stops");
    drop(registrar);
    let _ = (t1.join(), t2.join());
}
