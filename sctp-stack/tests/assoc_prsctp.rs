//! PR-SCTP (RFC 3758) with the RFC 7496 policies over the simulated network: negotiation,
//! abandonment by lifetime, retransmission limit and priority, the FORWARD TSN on both
//! sides, and hostile FORWARD TSNs.
//!
//! I-FORWARD TSN on I-DATA associations is tested in assoc_iforward.rs.
//!
//! Known gaps (deliberately not tested because not implemented):
//! - Per-stream abandoned counters (RFC 7496 §4.3.4 `SCTP_PR_STREAM_STATUS`); the
//!   association totals exist.

mod assoc_util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::Ppid;
use sctp_stack::{
    AbortReason, AssociationConfig, AssociationState, Event, PrPolicy, SendError, SendOptions,
};

const FORWARD_TSN_SUPPORTED: u16 = 0xC000;
const UNRECOGNIZED_PARAMETER: u16 = 8;

/// A DATA chunk as sent: (TSN, stream, SSN, flags, payload).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DataChunk {
    tsn: u32,
    stream: u16,
    ssn: u16,
    flags: u8,
    payload: Vec<u8>,
}

fn data_chunks(r: &Rec) -> Vec<DataChunk> {
    r.chunks
        .iter()
        .filter(|c| c.ty == ct::DATA && c.value.len() > 12)
        .map(|c| DataChunk {
            tsn: u32::from_be_bytes(c.value[0..4].try_into().unwrap()),
            stream: u16::from_be_bytes([c.value[4], c.value[5]]),
            ssn: u16::from_be_bytes([c.value[6], c.value[7]]),
            flags: c.flags,
            payload: c.value[12..].to_vec(),
        })
        .collect()
}

/// The FORWARD TSN chunks a node sent: (New Cumulative TSN, [(stream, SSN)]).
fn forward_tsns(log: &Log, from: usize) -> Vec<(u32, Vec<(u16, u16)>)> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == from)
        .flat_map(|r| r.chunks.clone())
        .filter(|c| c.ty == FORWARD_TSN)
        .map(|c| {
            let cum = u32::from_be_bytes(c.value[0..4].try_into().unwrap());
            let streams = c.value[4..]
                .chunks_exact(4)
                .map(|e| {
                    (
                        u16::from_be_bytes([e[0], e[1]]),
                        u16::from_be_bytes([e[2], e[3]]),
                    )
                })
                .collect();
            (cum, streams)
        })
        .collect()
}

/// The Cumulative TSN Ack of the latest SACK `from` sent.
fn last_sack_cum(log: &Log, from: usize) -> Option<u32> {
    log.lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|r| r.from == from)
        .find_map(|r| r.first(ct::SACK).cloned())
        .map(|c| u32::from_be_bytes(c.value[0..4].try_into().unwrap()))
}

/// The parameter types of the first INIT or INIT ACK `from` sent (Unrecognized Parameter
/// entries followed by the type they carry).
fn init_params(log: &Log, from: usize, ty: u8) -> Vec<u16> {
    let l = log.lock().unwrap();
    let c = l
        .iter()
        .filter(|r| r.from == from)
        .find_map(|r| r.first(ty).cloned())
        .expect("INIT or INIT ACK");
    let params = &c.value[16..];
    let mut at = 0;
    let mut kinds = Vec::new();
    while at + 4 <= params.len() {
        let t = u16::from_be_bytes([params[at], params[at + 1]]);
        let len = u16::from_be_bytes([params[at + 2], params[at + 3]]) as usize;
        kinds.push(t);
        if t == UNRECOGNIZED_PARAMETER {
            kinds.push(u16::from_be_bytes([params[at + 4], params[at + 5]]));
        }
        if t == SUPPORTED_EXTENSIONS {
            // The listed chunk types, one byte each.
            kinds.extend(params[at + 4..at + len].iter().map(|&b| u16::from(b)));
        }
        at += (len + 3) & !3;
    }
    kinds
}

fn send_pr(p: &mut Pair, stream: u16, data: &[u8], policy: PrPolicy) -> Result<(), SendError> {
    p.assoc(A).send(
        stream,
        Ppid(0),
        data,
        SendOptions::default().with_pr_policy(policy),
    )
}

fn rtx(max_retransmissions: u16) -> PrPolicy {
    PrPolicy::LimitedRetransmissions {
        max_retransmissions,
    }
}

fn streams_config(n: u16) -> AssociationConfig {
    let mut c = fast_config();
    c.outbound_streams = n;
    c
}

/// Runs until A has nothing left to send or acknowledge.
fn drain(p: &mut Pair, max: Duration) {
    let a = p.a;
    let ok = p.net.run_until(max, |n| {
        n.node(A)
            .endpoint
            .association(a)
            .and_then(|x| x.status())
            .is_some_and(|s| s.send_buffered == 0 && s.flight_size == 0)
    });
    assert!(ok, "A did not drain its send buffer");
    // Let the last SACKs and FORWARD TSNs settle.
    p.net.run_for(Duration::from_millis(500));
}

fn payloads(msgs: &[sctp_stack::Message], stream: u16) -> Vec<Vec<u8>> {
    msgs.iter()
        .filter(|m| m.stream == stream)
        .map(|m| m.data.clone())
        .collect()
}

#[test]
fn pr_sctp_is_offered_in_init_and_init_ack_and_shown_in_the_status() {
    let (mut p, log) =
        Pair::connected_recorded(300, fast_config(), fast_config(), LinkConfig::default());
    // RFC 3758 §3.3.1: Forward-TSN-Supported in both INIT and INIT ACK; RFC 5061 §4.2.7:
    // FORWARD TSN among the Supported Extensions.
    for (from, ty) in [(A, ct::INIT), (B, ct::INIT_ACK)] {
        let kinds = init_params(&log, from, ty);
        assert!(kinds.contains(&FORWARD_TSN_SUPPORTED), "{kinds:x?}");
        let ext = kinds
            .iter()
            .position(|&k| k == SUPPORTED_EXTENSIONS)
            .expect("Supported Extensions");
        assert_eq!(kinds[ext + 1], u16::from(FORWARD_TSN));
        assert!(!kinds.contains(&UNRECOGNIZED_PARAMETER));
    }
    assert!(status(&mut p, A).pr_sctp);
    assert!(status(&mut p, B).pr_sctp);
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 0));
}

#[test]
fn a_peer_without_pr_sctp_gets_no_forward_tsn_and_every_policy_degrades_to_reliable() {
    let mut cb = fast_config();
    cb.pr_sctp = false;
    // Nothing else to list either (RE-CONFIG is on by default).
    cb.reconf = false;
    let (mut p, log) = Pair::connected_recorded(301, fast_config(), cb, LinkConfig::default());
    // RFC 3758 §3.3.1: a receiver without PR-SCTP reports Forward-TSN-Supported as an
    // unrecognized parameter and the sender then does not use it.
    let kinds = init_params(&log, B, ct::INIT_ACK);
    assert!(!kinds.contains(&SUPPORTED_EXTENSIONS));
    let at = kinds
        .iter()
        .position(|&k| k == UNRECOGNIZED_PARAMETER)
        .expect("Forward-TSN-Supported reported");
    assert_eq!(kinds[at + 1], FORWARD_TSN_SUPPORTED);
    assert!(!status(&mut p, A).pr_sctp);
    assert!(!status(&mut p, B).pr_sctp);
    // Every first transmission of a DATA chunk is lost: the policies would abandon all of
    // these, but without PR-SCTP they are all retransmitted and delivered.
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let s2 = Arc::clone(&seen);
    let log = record(&mut p.net, move |r| {
        r.from == A
            && data_chunks(r)
                .iter()
                .any(|d| s2.lock().unwrap().insert(d.tsn))
    });
    let policies = [timed(10), rtx(0), PrPolicy::Priority { priority: 3 }];
    for (i, pol) in policies.iter().enumerate() {
        send_pr(&mut p, 0, format!("msg {i}").as_bytes(), *pol).unwrap();
    }
    drain(&mut p, Duration::from_secs(30));
    let got = p.recv_all(B);
    assert_eq!(
        payloads(&got, 0),
        vec![b"msg 0".to_vec(), b"msg 1".to_vec(), b"msg 2".to_vec()]
    );
    assert!(forward_tsns(&log, A).is_empty());
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 0));
}

#[test]
fn an_initiator_without_pr_sctp_reports_the_offer_of_the_init_ack_and_stays_reliable() {
    let mut ca = fast_config();
    ca.pr_sctp = false;
    let (mut p, log) = Pair::connected_recorded(313, ca, fast_config(), LinkConfig::default());
    assert!(!init_params(&log, A, ct::INIT).contains(&FORWARD_TSN_SUPPORTED));
    // RFC 9260 §3.2.1: the INIT ACK's Forward-TSN-Supported (action bits 11) comes back
    // as an Unrecognized Parameters error bundled with the COOKIE ECHO.
    let l = log.lock().unwrap();
    let echo = l
        .iter()
        .find(|r| r.from == A && r.has(ct::COOKIE_ECHO))
        .expect("COOKIE ECHO");
    let err = echo.first(ct::ERROR).expect("ERROR bundled");
    assert_eq!(cause_codes(&err.value), vec![8]);
    assert_eq!(
        u16::from_be_bytes([err.value[4], err.value[5]]),
        FORWARD_TSN_SUPPORTED
    );
    drop(l);
    assert!(!status(&mut p, A).pr_sctp);
    assert!(!status(&mut p, B).pr_sctp);
    // B's messages with a policy are reliable too.
    let b = p.b();
    p.net
        .node(B)
        .endpoint
        .association(b)
        .unwrap()
        .send(
            0,
            Ppid(0),
            &b"reliable"[..],
            SendOptions::default().with_pr_policy(rtx(0)),
        )
        .unwrap();
    p.net.run_for(Duration::from_secs(1));
    assert_eq!(payloads(&p.recv_all(A), 0), vec![b"reliable".to_vec()]);
}

#[test]
fn a_timed_message_is_abandoned_exactly_when_its_lifetime_ends_and_never_delivered() {
    let (mut p, log) =
        Pair::connected_recorded(302, fast_config(), fast_config(), LinkConfig::default());
    // The link from A to B loses everything for now.
    p.net.link_mut(A, B).up = false;
    let t0 = p.net.now();
    send_pr(&mut p, 0, b"stale soon", timed(250)).unwrap();
    let a = p.a;
    let abandoned = p.net.run_until(Duration::from_secs(2), |n| {
        n.node(A)
            .endpoint
            .association(a)
            .and_then(|x| x.status())
            .is_some_and(|s| s.abandoned_sent + s.abandoned_unsent > 0)
    });
    assert!(abandoned);
    // Abandoned at the end of its lifetime, not a microsecond earlier or later.
    assert_eq!(p.net.now(), t0 + Duration::from_millis(250));
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 1));
    assert_eq!(s.send_buffered, 0);
    assert_eq!(s.flight_size, 0);
    // The link comes back: the peer skips the message and the stream goes on.
    p.net.link_mut(A, B).up = true;
    p.send(A, 0, b"fresh").unwrap();
    drain(&mut p, Duration::from_secs(30));
    let got = p.recv_all(B);
    assert_eq!(payloads(&got, 0), vec![b"fresh".to_vec()]);
    let fwd = forward_tsns(&log, A);
    assert!(!fwd.is_empty(), "no FORWARD TSN sent");
    assert!(fwd.iter().any(|(_, s)| s == &vec![(0, 0)]));
}

#[test]
fn timed_messages_queued_behind_the_window_are_abandoned_unsent_at_expiry() {
    let mut p = Pair::connected(303, fast_config(), fast_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    let t0 = p.net.now();
    for i in 0..20u8 {
        send_pr(&mut p, 0, &[i; 1000], timed(400)).unwrap();
    }
    p.net.run_until(Duration::from_millis(399), |_| false);
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 0));
    p.net.run_until(Duration::from_secs(1), |n| {
        n.now() >= t0 + Duration::from_millis(400)
    });
    let s = status(&mut p, A);
    // The congestion window let a few out (lost); the rest never left the queue.
    assert!(s.abandoned_sent > 0 && s.abandoned_unsent > 0, "{s:?}");
    assert_eq!(s.abandoned_sent + s.abandoned_unsent, 20);
    assert_eq!(s.send_buffered, 0);
    p.net.link_mut(A, B).up = true;
    p.send(A, 0, b"after").unwrap();
    drain(&mut p, Duration::from_secs(30));
    assert_eq!(payloads(&p.recv_all(B), 0), vec![b"after".to_vec()]);
}

#[test]
fn limited_retransmission_messages_are_abandoned_after_n_retransmissions_on_a_lossy_link() {
    let mut p = Pair::connected(304, streams_config(2), fast_config(), LinkConfig::default());
    // Everything carrying DATA of stream 1 is lost, and a fifth of the rest.
    let mut n = 0u32;
    let log = record(&mut p.net, move |r| {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        r.from == A && (data_chunks(r).iter().any(|d| d.stream == 1) || (n >> 16) % 5 == 0)
    });
    const N: u16 = 2;
    for i in 0..10u8 {
        send_pr(&mut p, 1, &[i; 200], rtx(N)).unwrap();
        p.send(A, 0, &[i; 200]).unwrap();
    }
    drain(&mut p, Duration::from_secs(120));
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 10));
    // Every chunk of stream 1 went out once plus exactly N retransmissions.
    let mut sends: std::collections::HashMap<u32, u32> = Default::default();
    for r in log.lock().unwrap().iter().filter(|r| r.from == A) {
        for d in data_chunks(r).into_iter().filter(|d| d.stream == 1) {
            *sends.entry(d.tsn).or_default() += 1;
        }
    }
    assert_eq!(sends.len(), 10);
    assert!(sends.values().all(|&c| c == u32::from(N) + 1), "{sends:?}");
    let got = p.recv_all(B);
    assert!(payloads(&got, 1).is_empty());
    assert_eq!(payloads(&got, 0).len(), 10);
}

#[test]
fn a_forward_tsn_moves_the_peers_cumulative_ack_and_ordered_delivery_goes_on_after_skipped_ssns() {
    let mut p = Pair::connected(305, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |r| {
        r.from == A
            && data_chunks(r)
                .iter()
                .any(|d| d.payload.starts_with(b"lost"))
    });
    p.send(A, 0, b"m0").unwrap();
    send_pr(&mut p, 0, b"lost 1", rtx(0)).unwrap();
    send_pr(&mut p, 0, b"lost 2", rtx(0)).unwrap();
    for i in 3..8 {
        p.send(A, 0, format!("m{i}").as_bytes()).unwrap();
    }
    drain(&mut p, Duration::from_secs(30));
    let got = p.recv_all(B);
    let expect: Vec<Vec<u8>> = [0, 3, 4, 5, 6, 7]
        .iter()
        .map(|i| format!("m{i}").into_bytes())
        .collect();
    assert_eq!(payloads(&got, 0), expect, "no deadlock, order kept");
    let s = status(&mut p, A);
    assert_eq!(s.abandoned_sent, 2);
    // The FORWARD TSN skips both lost TSNs with SSN 2 of stream 0 (RFC 3758 §3.5 C4), and
    // the peer's cumulative ack follows.
    let lost_tsns: Vec<u32> = log
        .lock()
        .unwrap()
        .iter()
        .flat_map(data_chunks)
        .filter(|d| d.payload.starts_with(b"lost"))
        .map(|d| d.tsn)
        .collect();
    let last_lost = *lost_tsns.iter().max().unwrap();
    let fwd = forward_tsns(&log, A);
    assert!(
        fwd.iter()
            .any(|(cum, st)| *cum == last_lost && st == &vec![(0, 2)]),
        "{fwd:?}"
    );
    let cum = last_sack_cum(&log, B).unwrap();
    assert!(cum.wrapping_sub(last_lost) < 1 << 31);
    assert_eq!(status(&mut p, B).recv_buffered, 0);
}

#[test]
fn a_lost_forward_tsn_is_sent_again() {
    let mut p = Pair::connected(306, fast_config(), fast_config(), LinkConfig::default());
    let mut fwd_dropped = 0;
    let log = record(&mut p.net, move |r| {
        if r.from != A {
            return false;
        }
        if data_chunks(r).iter().any(|d| d.payload == b"lost") {
            return true;
        }
        if r.has(FORWARD_TSN) && fwd_dropped < 2 {
            fwd_dropped += 1;
            return true;
        }
        false
    });
    send_pr(&mut p, 0, b"lost", rtx(0)).unwrap();
    drain(&mut p, Duration::from_secs(30));
    p.send(A, 0, b"next").unwrap();
    drain(&mut p, Duration::from_secs(30));
    assert_eq!(payloads(&p.recv_all(B), 0), vec![b"next".to_vec()]);
    assert!(forward_tsns(&log, A).len() >= 3);
}

#[test]
fn reliable_messages_arrive_exactly_once_under_20_percent_loss_while_pr_messages_are_abandoned() {
    let mut link = LinkConfig::default();
    link.loss = 0.2;
    let mut p = Pair::connected(307, streams_config(3), fast_config(), link);
    let mut sent_reliable = Vec::new();
    let mut got = Vec::new();
    let mut next = 0u32;
    let total = 400u32;
    let deadline = p.net.now() + Duration::from_secs(600);
    while next < total || status(&mut p, A).send_buffered > 0 {
        while next < total {
            let body = next.to_be_bytes().to_vec();
            let r = match next % 4 {
                0 | 2 => p.send(A, 0, &body),
                1 => send_pr(&mut p, 1, &body, rtx(0)),
                _ => send_pr(&mut p, 2, &body, timed(25)),
            };
            match r {
                Ok(()) => {
                    if next % 2 == 0 {
                        sent_reliable.push(body);
                    }
                    next += 1;
                }
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        got.extend(p.recv_all(B));
        assert!(p.net.now() < deadline, "transfer stalled");
        if !p.net.step(deadline) {
            panic!("nothing left to happen: {:?}", status(&mut p, A));
        }
    }
    p.net.run_for(Duration::from_secs(5));
    got.extend(p.recv_all(B));
    assert_eq!(
        payloads(&got, 0),
        sent_reliable,
        "reliable stream lost or reordered"
    );
    let s = status(&mut p, A);
    assert!(s.abandoned_sent > 0, "{s:?}");
    for stream in [1u16, 2] {
        let pr: Vec<u32> = payloads(&got, stream)
            .iter()
            .map(|b| u32::from_be_bytes(b[..4].try_into().unwrap()))
            .collect();
        // No duplicates, stream order kept, and some skipped.
        assert!(
            pr.windows(2).all(|w| w[0] < w[1]),
            "stream {stream}: {pr:?}"
        );
        assert!(
            pr.len() < total as usize / 4,
            "stream {stream} lost nothing"
        );
    }
    assert_eq!(status(&mut p, B).recv_buffered, 0);
}

#[test]
fn the_priority_policy_evicts_queued_messages_of_lower_priority() {
    let mut p = Pair::connected(308, streams_config(2), fast_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    let prio = |priority| PrPolicy::Priority { priority };
    // Fill the send buffer (1 MiB by default) with priority 7 messages.
    let mut queued = 0;
    loop {
        match send_pr(&mut p, 0, &[7; 64 * 1024], prio(7)) {
            Ok(()) => queued += 1,
            Err(SendError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(queued >= 15);
    // Equal or lower priority does not evict anything.
    assert_eq!(
        send_pr(&mut p, 1, &[9; 1024], prio(7)),
        Err(SendError::WouldBlock)
    );
    assert_eq!(
        send_pr(&mut p, 1, &[9; 1024], prio(9)),
        Err(SendError::WouldBlock)
    );
    assert_eq!(status(&mut p, A).abandoned_unsent, 0);
    // A more important message evicts the newest less important queued messages, as many
    // as it needs (two of 64 KiB for 100 KiB).
    send_pr(&mut p, 1, &[1; 100 * 1024], prio(1)).unwrap();
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (2, 0));
    p.net.link_mut(A, B).up = true;
    drain(&mut p, Duration::from_secs(120));
    let got = p.recv_all(B);
    assert_eq!(payloads(&got, 1), vec![vec![1; 100 * 1024]]);
    assert_eq!(payloads(&got, 0).len(), queued - 2);
}

#[test]
fn a_fragmented_message_is_abandoned_as_a_whole() {
    let mut p = Pair::connected(309, fast_config(), fast_config(), LinkConfig::default());
    // Middle fragments (neither B nor E bit) are lost.
    let log = record(&mut p.net, |r| {
        r.from == A && data_chunks(r).iter().any(|d| d.flags & 0x03 == 0)
    });
    let big = vec![0x5A; 6000];
    send_pr(&mut p, 0, &big, rtx(1)).unwrap();
    p.send(A, 0, b"after").unwrap();
    drain(&mut p, Duration::from_secs(30));
    let got = p.recv_all(B);
    assert_eq!(payloads(&got, 0), vec![b"after".to_vec()]);
    let s = status(&mut p, A);
    assert_eq!(s.abandoned_sent, 1);
    // The receiver freed the fragments it had reassembled.
    assert_eq!(status(&mut p, B).recv_buffered, 0);
    let frags: std::collections::HashSet<u32> = log
        .lock()
        .unwrap()
        .iter()
        .flat_map(data_chunks)
        .filter(|d| d.payload.len() > 100)
        .map(|d| d.tsn)
        .collect();
    // The FORWARD TSN covers every fragment sent (and, when the rest of the message was
    // never sent, the abandoned placeholder TSN after them).
    let fwd = forward_tsns(&log, A);
    let last = *frags.iter().max().unwrap();
    assert!(
        fwd.iter()
            .any(|(cum, _)| *cum == last || *cum == last.wrapping_add(1))
    );
}

// ------------------------------------------------------------ hand-built FORWARD TSNs

/// A connected pair after one message A -> B, with B's tag, A's port and B's cumulative
/// TSN ack point.
///
/// From then on everything B sends is recorded but dropped: B's acknowledgements of TSNs
/// A never sent would make A abort (RFC 9260 §6.2.1), ending the association under test.
fn setup_hostile(seed: u64, cb: AssociationConfig) -> (Pair, Log, u32, u16, u32) {
    let (mut p, log) = Pair::connected_recorded(seed, fast_config(), cb, LinkConfig::default());
    let (b_tag, _) = tags(&log);
    let port = status(&mut p, A).local_port;
    p.send(A, 0, b"hello").unwrap();
    p.net.run_for(Duration::from_secs(1));
    assert_eq!(p.recv_all(B).len(), 1);
    let cum = last_sack_cum(&log, B).unwrap();
    let log = record(&mut p.net, |r| r.from == B);
    (p, log, b_tag, port, cum)
}

fn forward_tsn(cum: u32, streams: &[(u16, u16)]) -> Chunk {
    let mut v = cum.to_be_bytes().to_vec();
    for (s, n) in streams {
        v.extend_from_slice(&s.to_be_bytes());
        v.extend_from_slice(&n.to_be_bytes());
    }
    chunk(FORWARD_TSN, 0, &v)
}

#[test]
fn a_forward_tsn_is_acknowledged_at_once_with_the_new_cumulative_tsn() {
    let (mut p, log, b_tag, port, cum) = setup_hostile(310, fast_config());
    let new_cum = cum.wrapping_add(3);
    inject(
        &mut p.net,
        A,
        &build(port, PORT, b_tag, &[forward_tsn(new_cum, &[(0, 3)])]),
    );
    p.net.run_for(Duration::from_millis(15));
    // Answered within the link latency, not after the delayed SACK timeout.
    assert_eq!(last_sack_cum(&log, B), Some(new_cum));
    // An out-of-date one changes nothing and is acknowledged too (RFC 3758 §3.6).
    log.lock().unwrap().clear();
    inject(
        &mut p.net,
        A,
        &build(port, PORT, b_tag, &[forward_tsn(cum, &[])]),
    );
    p.net.run_for(Duration::from_millis(15));
    assert_eq!(last_sack_cum(&log, B), Some(new_cum));
    // Stream 0 skipped SSNs 1..=3: SSN 4 is delivered at once.
    let d = chunk(
        ct::DATA,
        0x03,
        &data_value(new_cum.wrapping_add(1), 0, 4, 0, b"four"),
    );
    inject(&mut p.net, A, &build(port, PORT, b_tag, &[d]));
    p.net.run_for(Duration::from_millis(300));
    assert_eq!(payloads(&p.recv_all(B), 0), vec![b"four".to_vec()]);
}

#[test]
fn a_forward_tsn_far_beyond_the_receive_window_aborts_with_a_protocol_violation() {
    let (mut p, log, b_tag, port, cum) = setup_hostile(311, fast_config());
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[forward_tsn(cum.wrapping_add(1 << 30), &[])],
        ),
    );
    p.net.run_for(Duration::from_millis(50));
    let l = log.lock().unwrap();
    let abort = l
        .iter()
        .filter(|r| r.from == B)
        .find_map(|r| r.first(ct::ABORT).cloned())
        .expect("ABORT");
    assert_eq!(cause_codes(&abort.value), vec![13]);
    drop(l);
    assert!(p.net.node(B).events.iter().any(|(_, e)| matches!(
        e,
        Event::Aborted(AbortReason::Local(c)) if c.code.get() == 13
    )));
}

#[test]
fn a_forward_tsn_without_pr_sctp_negotiated_is_an_unrecognized_chunk() {
    let mut cb = fast_config();
    cb.pr_sctp = false;
    let (mut p, log, b_tag, port, cum) = setup_hostile(312, cb);
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[forward_tsn(cum.wrapping_add(5), &[(0, 9)])],
        ),
    );
    p.net.run_for(Duration::from_millis(300));
    // RFC 9260 §3.2: type 192 = 0b11...: skip and report (Unrecognized Chunk Type, 6).
    let l = log.lock().unwrap();
    let err = l
        .iter()
        .filter(|r| r.from == B)
        .find_map(|r| r.first(ct::ERROR).cloned())
        .expect("ERROR");
    assert_eq!(cause_codes(&err.value), vec![6]);
    drop(l);
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
    // The cumulative TSN did not move: the next TSN is still delivered.
    p.send(A, 0, b"still reliable").unwrap();
    p.net.run_for(Duration::from_secs(1));
    assert_eq!(
        payloads(&p.recv_all(B), 0),
        vec![b"still reliable".to_vec()]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Arbitrary FORWARD TSNs (near and far New Cumulative TSNs, any stream entries, also
    /// truncated or padded values) mixed with DATA never panic the receiver; the association
    /// either stays up or ends with an ABORT.
    #[test]
    fn hostile_forward_tsns_never_panic(
        seed in 0u64..1000,
        items in proptest::collection::vec(
            (
                prop_oneof![
                    -4i64..70_000,
                    Just(i64::from(i32::MAX)),
                    Just(i64::from(i32::MIN)),
                    any::<u32>().prop_map(i64::from),
                ],
                proptest::collection::vec(any::<(u16, u16)>(), 0..6),
                0u8..4,
                any::<bool>(),
            ),
            1..12,
        ),
    ) {
        let (mut p, _log, b_tag, port, cum) = setup_hostile(400 + seed % 50, fast_config());
        for (delta, streams, shape, with_data) in items {
            let new_cum = (i64::from(cum) + delta) as u32;
            let mut c = forward_tsn(new_cum, &streams);
            match shape {
                1 => c.value.truncate(c.value.len().saturating_sub(2)),
                2 => c.value.truncate(3),
                3 => c.value.extend_from_slice(&[0xFF; 3]),
                _ => {}
            }
            let mut chunks = vec![c];
            if with_data {
                let tsn = new_cum.wrapping_add(1);
                chunks.push(chunk(ct::DATA, 0x03, &data_value(tsn, 0, (delta & 0xFFFF) as u16, 0, b"x")));
            }
            inject(&mut p.net, A, &build(port, PORT, b_tag, &chunks));
            p.net.run_for(Duration::from_millis(20));
            let _ = p.recv_all(B);
        }
        p.net.run_for(Duration::from_secs(1));
        let _ = p.recv_all(B);
        let b = p.b();
        let state = p.net.node(B).endpoint.association(b).map(|a| a.state());
        prop_assert!(matches!(state, None | Some(AssociationState::Established)));
    }
}
