//! Sending I-FORWARD TSN (RFC 8260 §2.3 with the rules of RFC 3758 §3.5) on an I-DATA
//! association over the simulated network: negotiation, timed messages abandoned exactly at
//! expiry, partly sent fragmented messages abandoned whole (their unsent rest is never
//! sent), ordered and unordered MIDs, and the receiver agreeing (later messages delivered,
//! nothing else lost, reassembly freed).

mod assoc_util;

use std::time::Duration;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationConfig, PrPolicy, SendOptions};

fn idata_config() -> AssociationConfig {
    let mut c = fast_config();
    c.i_data = true;
    c.outbound_streams = 4;
    c
}

fn send(p: &mut Pair, stream: u16, data: &[u8], opts: SendOptions) {
    p.assoc(A).send(stream, Ppid(0), data, opts).unwrap();
}

/// An I-DATA chunk as sent: (index of the packet in the log, TSN, stream, MID, flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IChunk {
    at: usize,
    tsn: u32,
    stream: u16,
    mid: u32,
    flags: u8,
}

fn sent_idata(log: &Log) -> Vec<IChunk> {
    let l = log.lock().unwrap();
    let mut out = Vec::new();
    for (at, r) in l.iter().enumerate().filter(|(_, r)| r.from == A) {
        for c in r
            .chunks
            .iter()
            .filter(|c| c.ty == I_DATA && c.value.len() >= 16)
        {
            out.push(IChunk {
                at,
                tsn: u32::from_be_bytes(c.value[0..4].try_into().unwrap()),
                stream: u16::from_be_bytes([c.value[4], c.value[5]]),
                mid: u32::from_be_bytes(c.value[8..12].try_into().unwrap()),
                flags: c.flags,
            });
        }
    }
    out
}

/// The I-FORWARD TSNs A sent: (packet index, New Cumulative TSN, [(stream, U, MID)]).
#[allow(clippy::type_complexity)]
fn iforward_tsns(log: &Log) -> Vec<(usize, u32, Vec<(u16, bool, u32)>)> {
    let l = log.lock().unwrap();
    let mut out = Vec::new();
    for (at, r) in l.iter().enumerate().filter(|(_, r)| r.from == A) {
        for c in r.chunks.iter().filter(|c| c.ty == I_FORWARD_TSN) {
            let cum = u32::from_be_bytes(c.value[0..4].try_into().unwrap());
            let entries = c.value[4..]
                .chunks_exact(8)
                .map(|e| {
                    (
                        u16::from_be_bytes([e[0], e[1]]),
                        e[3] & 1 != 0,
                        u32::from_be_bytes(e[4..8].try_into().unwrap()),
                    )
                })
                .collect();
            out.push((at, cum, entries));
        }
    }
    out
}

/// The chunk types of the Supported Extensions in the first INIT or INIT ACK of `from`.
fn supported_extensions(log: &Log, from: usize, ty: u8) -> Vec<u8> {
    let l = log.lock().unwrap();
    let c = l
        .iter()
        .filter(|r| r.from == from)
        .find_map(|r| r.first(ty).cloned())
        .expect("INIT or INIT ACK");
    let params = &c.value[16..];
    let mut at = 0;
    while at + 4 <= params.len() {
        let t = u16::from_be_bytes([params[at], params[at + 1]]);
        let len = u16::from_be_bytes([params[at + 2], params[at + 3]]) as usize;
        if t == SUPPORTED_EXTENSIONS {
            return params[at + 4..at + len].to_vec();
        }
        at += (len + 3) & !3;
    }
    Vec::new()
}

/// Runs until A has nothing left to send or acknowledge, then lets things settle.
fn drain(p: &mut Pair) {
    let a = p.a;
    let ok = p.net.run_until(Duration::from_secs(60), |n| {
        n.node(A)
            .endpoint
            .association(a)
            .and_then(|x| x.status())
            .is_some_and(|s| s.send_buffered == 0 && s.flight_size == 0)
    });
    assert!(ok, "A did not drain its send buffer");
    p.net.run_for(Duration::from_millis(500));
}

#[test]
fn iforward_tsn_is_offered_with_idata_and_pr_sctp_and_pr_sctp_is_used_with_idata() {
    for (pr_a, pr_b) in [(true, true), (true, false), (false, true)] {
        let mut ca = idata_config();
        ca.pr_sctp = pr_a;
        let mut cb = idata_config();
        cb.pr_sctp = pr_b;
        let (mut p, log) = Pair::connected_recorded(11, ca, cb, LinkConfig::default());
        let init = supported_extensions(&log, A, ct::INIT);
        let init_ack = supported_extensions(&log, B, ct::INIT_ACK);
        assert_eq!(init.contains(&I_FORWARD_TSN), pr_a, "INIT {init:?}");
        assert_eq!(
            init_ack.contains(&I_FORWARD_TSN),
            pr_b,
            "INIT ACK {init_ack:?}"
        );
        assert!(init.contains(&I_DATA) && init_ack.contains(&I_DATA));
        let s = status(&mut p, A);
        assert!(s.i_data);
        assert_eq!(s.pr_sctp, pr_a && pr_b);
    }
}

#[test]
fn a_timed_idata_message_is_abandoned_exactly_at_expiry_with_an_iforward_tsn() {
    let (mut p, log) =
        Pair::connected_recorded(12, idata_config(), idata_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    let t0 = p.net.now();
    send(
        &mut p,
        1,
        b"stale soon",
        SendOptions::default().with_pr_policy(timed(300)),
    );
    let a = p.a;
    let abandoned = p.net.run_until(Duration::from_secs(2), |n| {
        n.node(A)
            .endpoint
            .association(a)
            .and_then(|x| x.status())
            .is_some_and(|s| s.abandoned_sent + s.abandoned_unsent > 0)
    });
    assert!(abandoned);
    assert_eq!(p.net.now(), t0 + Duration::from_millis(300));
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 1));
    assert_eq!((s.send_buffered, s.flight_size), (0, 0));
    p.net.link_mut(A, B).up = true;
    p.send(A, 1, b"fresh").unwrap();
    p.send(A, 2, b"other").unwrap();
    drain(&mut p);
    let got = p.recv_all(B);
    let mut data: Vec<(u16, Vec<u8>)> = got.into_iter().map(|m| (m.stream, m.data)).collect();
    data.sort();
    assert_eq!(
        data,
        vec![(1, b"fresh".to_vec()), (2, b"other".to_vec())],
        "later messages delivered, nothing else"
    );
    // RFC 8260 §2.3: never a FORWARD TSN with I-DATA; the I-FORWARD TSN names stream 1,
    // ordered, MID 0.
    assert_eq!(count_type(&log, A, FORWARD_TSN), 0);
    let fwd = iforward_tsns(&log);
    assert!(!fwd.is_empty(), "no I-FORWARD TSN");
    assert!(
        fwd.iter().all(|(_, _, e)| e == &vec![(1, false, 0)]),
        "{fwd:?}"
    );
    let first = sent_idata(&log)[0];
    assert!(fwd.iter().any(|(_, cum, _)| *cum == first.tsn));
    assert_eq!(status(&mut p, B).recv_buffered, 0);
}

/// Sends a large timed message that expires while partly sent (a slow, long link keeps
/// most of it queued), with small reliable messages on another stream interleaved, then a
/// message after it on the same stream. Returns the log and what B received.
fn abandon_partly_sent(seed: u64, opts: SendOptions) -> (Pair, Log, Vec<(u16, Vec<u8>)>) {
    let link = LinkConfig::with_latency(Duration::from_millis(40));
    let (mut p, log) = Pair::connected_recorded(seed, idata_config(), idata_config(), link);
    let big = vec![0xB1; 120_000];
    send(&mut p, 0, &big, opts.with_pr_policy(timed(100)));
    for i in 0..5u8 {
        send(&mut p, 3, &[i; 200], SendOptions::default());
    }
    // Still being sent at expiry (cwnd opens over several round trips).
    p.net.run_for(Duration::from_millis(150));
    send(&mut p, 0, b"after", opts);
    drain(&mut p);
    let got = p
        .recv_all(B)
        .into_iter()
        .map(|m| (m.stream, m.data))
        .collect();
    (p, log, got)
}

fn check_partly_sent_abandoned(unordered: bool) {
    let opts = if unordered {
        SendOptions::unordered()
    } else {
        SendOptions::default()
    };
    let (mut p, log, got) = abandon_partly_sent(13 + u64::from(unordered), opts);
    // Everything else arrives; the abandoned message never does.
    let small: Vec<Vec<u8>> = got
        .iter()
        .filter(|(s, _)| *s == 3)
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(small, (0..5u8).map(|i| vec![i; 200]).collect::<Vec<_>>());
    let on0: Vec<&Vec<u8>> = got
        .iter()
        .filter(|(s, _)| *s == 0)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(on0, vec![&b"after".to_vec()]);
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 1));
    assert_eq!(status(&mut p, B).recv_buffered, 0, "reassembly freed");
    let chunks = sent_idata(&log);
    let big: Vec<IChunk> = chunks
        .iter()
        .copied()
        .filter(|c| c.stream == 0 && c.mid == 0)
        .collect();
    assert!(big.len() > 2, "partly sent: {} fragments", big.len());
    assert!(
        big.iter().all(|c| c.flags & 0x01 == 0),
        "the last fragment was never sent"
    );
    assert!(big.iter().all(|c| (c.flags & 0x04 != 0) == unordered));
    // The I-FORWARD TSN skips every sent fragment, names the message's stream, ordering
    // and MID, and no fragment of it is sent after the first I-FORWARD TSN.
    assert_eq!(count_type(&log, A, FORWARD_TSN), 0);
    let fwd = iforward_tsns(&log);
    let (first_at, _, _) = fwd.first().cloned().expect("an I-FORWARD TSN");
    assert!(
        big.iter().all(|c| c.at < first_at),
        "fragment after I-FORWARD TSN"
    );
    let last_big = big.iter().map(|c| c.tsn).max().unwrap();
    assert!(
        fwd.iter().any(|(_, cum, e)| {
            cum.wrapping_sub(last_big) < 1 << 31 && e.contains(&(0, unordered, 0))
        }),
        "{fwd:?}"
    );
    // The message after it got the next MID of its space.
    assert!(
        chunks
            .iter()
            .any(|c| c.stream == 0 && c.mid == 1 && (c.flags & 0x04 != 0) == unordered)
    );
}

#[test]
fn a_partly_sent_ordered_idata_message_is_abandoned_whole_and_its_rest_never_sent() {
    check_partly_sent_abandoned(false);
}

#[test]
fn a_partly_sent_unordered_idata_message_is_abandoned_whole_with_the_u_flag() {
    check_partly_sent_abandoned(true);
}

#[test]
fn limited_retransmission_idata_messages_are_abandoned_on_a_lossy_link_and_the_rest_arrives() {
    let mut link = LinkConfig::with_latency(Duration::from_millis(10));
    link.loss = 0.2;
    let mut p = Pair::connected(15, idata_config(), idata_config(), link);
    let log = record(&mut p.net, |_| false);
    let mut reliable = Vec::new();
    for i in 0..60u32 {
        let payload = vec![(i % 251) as u8; 300 + (i as usize % 7) * 500];
        if i % 3 == 0 {
            send(
                &mut p,
                0,
                &payload,
                SendOptions::default().with_pr_policy(PrPolicy::LimitedRetransmissions {
                    max_retransmissions: 0,
                }),
            );
        } else {
            send(&mut p, 1 + (i % 2) as u16, &payload, SendOptions::default());
            reliable.push((1 + (i % 2) as u16, payload));
        }
    }
    drain(&mut p);
    p.net.link_mut(A, B).loss = 0.0;
    p.net.link_mut(B, A).loss = 0.0;
    p.net.run_for(Duration::from_secs(2));
    let got: Vec<(u16, Vec<u8>)> = p
        .recv_all(B)
        .into_iter()
        .map(|m| (m.stream, m.data))
        .collect();
    for s in [1u16, 2] {
        let want: Vec<&Vec<u8>> = reliable.iter().filter(|m| m.0 == s).map(|m| &m.1).collect();
        let have: Vec<&Vec<u8>> = got.iter().filter(|m| m.0 == s).map(|m| &m.1).collect();
        assert_eq!(
            have, want,
            "stream {s} lost or reordered a reliable message"
        );
    }
    let st = status(&mut p, A);
    let on0 = got.iter().filter(|m| m.0 == 0).count() as u64;
    // Every PR message is delivered or counted as abandoned (both when the peer got it but
    // its SACK was lost before the sender gave up on it), and some were lost.
    assert!(st.abandoned_sent > 0, "20% loss abandons some");
    assert!(on0 < 20);
    assert!(on0 + st.abandoned_sent + st.abandoned_unsent >= 20);
    assert_eq!(count_type(&log, A, FORWARD_TSN), 0);
    assert!(!iforward_tsns(&log).is_empty());
    assert_eq!(status(&mut p, B).recv_buffered, 0);
}

#[test]
fn a_more_important_message_evicts_a_partly_sent_idata_message_which_is_skipped_with_iforward_tsn()
{
    let mut ca = idata_config();
    ca.send_buffer_size = 200 * 1024;
    ca.send_low_water = 100 * 1024;
    ca.max_message_size = 160 * 1024;
    let link = LinkConfig::with_latency(Duration::from_millis(20));
    let (mut p, log) = Pair::connected_recorded(16, ca, idata_config(), link);
    let prio = |priority| SendOptions::default().with_pr_policy(PrPolicy::Priority { priority });
    send(&mut p, 0, &[7; 150 * 1024], prio(7));
    // A few round trips: part of it is out.
    p.net.run_for(Duration::from_millis(70));
    assert!(sent_idata(&log).iter().any(|c| c.stream == 0));
    p.net.link_mut(A, B).up = false;
    // 100 KiB more do not fit in 200 KiB: the priority 7 message goes, half sent as it is.
    send(&mut p, 1, &[1; 100 * 1024], prio(1));
    let s = status(&mut p, A);
    assert_eq!((s.abandoned_unsent, s.abandoned_sent), (0, 1));
    p.net.link_mut(A, B).up = true;
    drain(&mut p);
    p.send(A, 0, b"after").unwrap();
    drain(&mut p);
    let got: Vec<(u16, Vec<u8>)> = p
        .recv_all(B)
        .into_iter()
        .map(|m| (m.stream, m.data))
        .collect();
    assert_eq!(
        got,
        vec![(1, vec![1; 100 * 1024]), (0, b"after".to_vec())],
        "the important message and the later one; nothing of the evicted one"
    );
    assert_eq!(count_type(&log, A, FORWARD_TSN), 0);
    let fwd = iforward_tsns(&log);
    assert!(
        fwd.iter().any(|(_, _, e)| e.contains(&(0, false, 0))),
        "{fwd:?}"
    );
    let evicted_last = sent_idata(&log)
        .iter()
        .filter(|c| c.stream == 0 && c.mid == 0)
        .map(|c| c.at)
        .max()
        .unwrap();
    assert!(
        evicted_last < fwd[0].0,
        "a fragment of it after the I-FORWARD TSN"
    );
    assert_eq!(status(&mut p, B).recv_buffered, 0);
}
