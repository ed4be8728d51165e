//! The usrsctp wrapper (feature `usrsctp`): AF_CONN sockets of the one in-process stack
//! connect through the output queues and carry messages intact, in order, with their ends,
//! on the default link and across two links. The tests share the process's stack, so each
//! uses its own ports and addresses and never drains another's link.
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

#[test]
fn two_links_carry_packets_between_sides_by_address() {
    let stack = Stack::get();
    let (x, y) = (stack.register(7).unwrap(), stack.register(8).unwrap());
    assert!(stack.register(0).is_none(), "0 is not an address");
    let listener = socket(stack);
    listener.bind_on(y, 41_011).expect("bind");
    listener.listen(1).expect("listen");
    let a = socket(stack);
    a.bind_on(x, 41_012).expect("bind");
    a.connect_via(x, 41_011).expect("connect");
    // Packets sent through x arrive on y and answers sent to y arrive on x, as two
    // namespaces joined by a wire would carry them.
    let cross = |stack: Stack| {
        let mut moved = 0;
        for _ in 0..100_000 {
            let mut any = false;
            while let Some(p) = stack.take_output_for(x) {
                stack.input_on(y, &p);
                any = true;
                moved += 1;
            }
            while let Some(p) = stack.take_output_for(y) {
                stack.input_on(x, &p);
                any = true;
                moved += 1;
            }
            if !any {
                break;
            }
        }
        moved
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let b = loop {
        assert!(Instant::now() < deadline, "no association within 5 s");
        cross(stack);
        if let Some(b) = listener.accept().expect("accept") {
            break b;
        }
    };
    b.set_nonblocking(true).expect("nonblocking");
    a.send(b"across two links").expect("send");
    assert!(cross(stack) > 0);
    let mut buf = [0u8; 64];
    let (n, eor) = b.recv(&mut buf).expect("the message");
    assert!(eor);
    assert_eq!(&buf[..n], b"across two links");
}
