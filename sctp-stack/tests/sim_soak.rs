//! Acceptance soak: 100,000 messages over a link that loses 20% of the packets, reorders
//! and duplicates them; every message arrives exactly once, in order on ordered streams.

mod assoc_util;

use std::collections::HashMap;
use std::time::Duration;

use sctp_stack::wire::Ppid;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::{SendError, SendOptions};

const MESSAGES: u64 = 100_000;
const STREAMS: u16 = 8;
/// Streams 6 and 7 carry unordered messages.
fn unordered(stream: u16) -> bool {
    stream >= 6
}

#[test]
fn a_hundred_thousand_messages_survive_loss_reordering_and_duplication() {
    let mut link = LinkConfig::with_latency(Duration::from_millis(20));
    link.loss = 0.2;
    link.duplicate = 0.05;
    link.jitter = Duration::from_millis(15);
    let mut ca = fast_config();
    ca.outbound_streams = STREAMS;
    let mut p = Pair::connected(1000, ca, fast_config(), link);
    let a = p.a;
    let b = p.b();
    let mut next = 0u64;
    let mut last_seen: HashMap<u16, u64> = HashMap::new();
    let mut seen = vec![false; MESSAGES as usize];
    let mut received = 0u64;
    let limit = p.net.now() + Duration::from_secs(7200);
    while received < MESSAGES {
        // Keep the sender busy.
        let mut assoc = p.net.node(A).endpoint.association(a).expect("sender alive");
        while next < MESSAGES {
            let stream = (next % u64::from(STREAMS)) as u16;
            let len = 8 + (next * 7919 % 1500) as usize;
            let mut msg = vec![(next % 251) as u8; len];
            msg[..8].copy_from_slice(&next.to_be_bytes());
            let opts = if unordered(stream) {
                SendOptions::unordered()
            } else {
                SendOptions::default()
            };
            match assoc.send(stream, Ppid(0), msg, opts) {
                Ok(()) => next += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        let mut rx = p
            .net
            .node(B)
            .endpoint
            .association(b)
            .expect("receiver alive");
        while let Some(m) = rx.recv() {
            let n = u64::from_be_bytes(m.data[..8].try_into().unwrap());
            assert!(n < MESSAGES);
            assert_eq!(
                m.data.len(),
                8 + (n * 7919 % 1500) as usize,
                "message {n} corrupted"
            );
            assert!(
                m.data[8..].iter().all(|&x| x == (n % 251) as u8),
                "message {n} corrupted"
            );
            assert!(!seen[n as usize], "message {n} delivered twice");
            seen[n as usize] = true;
            assert_eq!(m.stream as u64, n % u64::from(STREAMS));
            assert_eq!(m.unordered, unordered(m.stream));
            if !m.unordered {
                let prev = last_seen.insert(m.stream, n);
                assert!(
                    prev.is_none_or(|p| p < n),
                    "stream {} reordered: {prev:?} then {n}",
                    m.stream
                );
            }
            received += 1;
        }
        assert!(p.net.now() < limit, "soak stalled at {received} messages");
        p.net.step(limit);
    }
    assert!(seen.iter().all(|&s| s));
    let stats = p.net.stats();
    assert!(
        stats.lost > 10_000,
        "the link did not lose enough: {stats:?}"
    );
    assert!(stats.duplicated > 1_000);
    eprintln!(
        "soak: {MESSAGES} messages in {:?} virtual, network {:?}",
        p.net.now(),
        stats
    );
}
