//! usrsctp on raw IPv4 sockets (`dataplane::usrsctp_raw`, the benchmarks' quiet raw-IP peer):
//! its own test binary, because libusrsctp is one stack per process and the AF_CONN tests
//! (`tests/usrsctp.rs`) initialise it differently. Needs root (a namespace, CAP_NET_RAW) and
//! libusrsctp-dev; run by `.ci/dataplane.sh`.
#![cfg(all(target_os = "linux", feature = "usrsctp"))]

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::Duration;

use dataplane::netns::{TestNet, in_namespace};
use dataplane::usrsctp_raw::RawStack;

/// Messages from a sender socket reach an accepting socket of the same stack over the
/// namespace's loopback, complete and in order, and the end of the association ends `recv`.
#[test]
#[ignore = "needs root and namespaces; run by .ci/dataplane.sh"]
fn messages_cross_raw_ip_and_the_close_ends_the_receiver() {
    let mut net = TestNet::new("usr");
    let ns = net.namespace("a").expect("namespace");
    // The stack opens its raw sockets (and starts its threads) in this namespace.
    in_namespace(&ns, || {
        RawStack::get();
    })
    .expect("enter namespace");
    let stack = RawStack::get();
    let lo = Ipv4Addr::LOCALHOST;
    let listener = stack.socket().expect("socket");
    listener.set_buffers(1 << 20, 1 << 20).expect("buffers");
    listener.bind(lo, 5001).expect("bind");
    listener.listen(1).expect("listen");
    const MESSAGES: usize = 200;
    const SIZE: usize = 1000;
    let (tx, rx) = mpsc::channel();
    // The receiver: every byte, and whether each message carries its own index.
    std::thread::spawn(move || {
        let a = listener.accept().expect("accept");
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        // Bounded: at most MESSAGES + 1 reads are expected (the last returns 0).
        for _ in 0..4 * MESSAGES {
            match a.recv(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.push(buf[..n].to_vec()),
            }
        }
        let _ = tx.send(got);
    });
    let so = stack.socket().expect("socket");
    so.set_nodelay(true).expect("nodelay");
    so.connect(lo, 5001).expect("connect");
    for i in 0..MESSAGES {
        let msg = vec![i as u8; SIZE];
        assert_eq!(so.send(&msg).expect("send"), SIZE);
    }
    drop(so);
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("receiver finished in time");
    assert_eq!(got.len(), MESSAGES, "one read per message");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.len(), SIZE);
        assert!(
            m.iter().all(|&b| b == i as u8),
            "message {i} in order and intact"
        );
    }
}
