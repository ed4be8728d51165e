//! The usrsctp wrapper (feature `usrsctp`): two AF_CONN sockets of the one in-process stack
//! connect through the output queue and carry messages intact, in order, with their ends.
#![cfg(all(target_os = "linux", feature = "usrsctp"))]

use std::io;
use std::time::{Duration, Instant};

use dataplane::usrsctp::{ConnSocket, Stack};

fn pump(stack: Stack) -> usize {
    let mut moved = 0;
    while let Some(p) = stack.take_output() {
        assert!(p.len() >= 12, "an SCTP packet has a common header");
        stack.input(&p);
        moved += 1;
        assert!(moved < 100_000, "packets keep coming");
    }
    moved
}

fn socket(stack: Stack) -> ConnSocket {
    let s = stack.socket().expect("socket");
    s.set_nonblocking(true).expect("nonblocking");
    s.set_nodelay(true).expect("nodelay");
    s
}

#[test]
fn two_conn_sockets_connect_and_carry_messages_intact() {
    let stack = Stack::get();
    let listener = socket(stack);
    listener.bind(41_001).expect("bind");
    listener.listen(1).expect("listen");
    let a = socket(stack);
    a.bind(41_002).expect("bind");
    a.connect(41_001).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(5);
    let b = loop {
        assert!(Instant::now() < deadline, "no association within 5 s");
        pump(stack);
        if let Some(b) = listener.accept().expect("accept") {
            break b;
        }
    };
    b.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        b.recv(&mut buf).expect_err("nothing sent yet").kind(),
        io::ErrorKind::WouldBlock
    );
    let messages: Vec<Vec<u8>> = (0..20u8)
        .map(|i| vec![i; 100 + usize::from(i) * 50])
        .collect();
    for m in &messages {
        assert_eq!(a.send(m).expect("send"), m.len());
    }
    assert!(
        pump(stack) > 0,
        "the data went out through the output queue"
    );
    for m in &messages {
        let (n, eor) = b.recv(&mut buf).expect("a message");
        assert!(eor, "each message arrives whole");
        assert_eq!(&buf[..n], &m[..]);
    }
    assert_eq!(stack.dropped(), 0);
}
