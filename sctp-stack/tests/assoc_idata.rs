//! I-DATA (RFC 8260 §2.1) and the stream schedulers (RFC 8260 §3) over the simulated
//! network: negotiation, interleaving of a large message with small ones, the MID spaces,
//! a lossy soak, DATA on an I-DATA association, hostile I-DATA, and the observable order
//! in which queued messages of different streams reach the peer.
//!
//! A received I-FORWARD TSN (§2.3.2) is processed (tested with a hand-built one).
//!
//! Generating I-FORWARD TSN (§2.3) is tested in assoc_iforward.rs.
//!
//! Partial delivery of large messages is tested in assoc_partial.rs (the sender still
//! limits the messages in progress to half the peer's window, for receivers without it).

mod assoc_util;

use std::time::Duration;

use proptest::prelude::*;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::Ppid;
use sctp_stack::{AbortReason, AssociationConfig, Event, SendError, SendOptions, StreamScheduler};

fn idata_config() -> AssociationConfig {
    let mut c = config(StreamScheduler::RoundRobin);
    c.i_data = true;
    c
}

/// An I-DATA chunk as sent: (TSN, stream, MID, PPID or FSN, flags, payload length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IChunk {
    tsn: u32,
    stream: u16,
    mid: u32,
    word: u32,
    flags: u8,
    len: usize,
}

fn sent_idata(log: &Log, from: usize) -> Vec<IChunk> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == from)
        .flat_map(|r| r.chunks.clone())
        .filter(|c| c.ty == I_DATA && c.value.len() >= 16)
        .map(|c| IChunk {
            tsn: u32::from_be_bytes(c.value[0..4].try_into().unwrap()),
            stream: u16::from_be_bytes([c.value[4], c.value[5]]),
            mid: u32::from_be_bytes(c.value[8..12].try_into().unwrap()),
            word: u32::from_be_bytes(c.value[12..16].try_into().unwrap()),
            flags: c.flags,
            len: c.value.len() - 16,
        })
        .collect()
}

#[test]
fn idata_is_used_only_when_both_sides_offer_it() {
    for (ia, ib) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut ca = idata_config();
        ca.i_data = ia;
        let mut cb = idata_config();
        cb.i_data = ib;
        let (mut p, log) = Pair::connected_recorded(
            3,
            ca,
            cb,
            LinkConfig::with_latency(Duration::from_millis(5)),
        );
        let both = ia && ib;
        assert_eq!(status(&mut p, A).i_data, both, "A, offers {ia}/{ib}");
        assert_eq!(status(&mut p, B).i_data, both, "B, offers {ia}/{ib}");
        let big = msg(1, 5000);
        p.send(A, 1, &big).unwrap();
        p.send(B, 2, &msg(2, 10)).unwrap();
        p.net.run_for(Duration::from_millis(200));
        let a_got = p.recv_all(A);
        let b_got = p.recv_all(B);
        assert_eq!(b_got.len(), 1);
        assert_eq!(b_got[0].data, big);
        assert_eq!(b_got[0].stream, 1);
        assert_eq!(a_got.len(), 1);
        assert_eq!(a_got[0].data, msg(2, 10));
        let (d, i) = (count_type(&log, A, ct::DATA), count_type(&log, A, I_DATA));
        if both {
            assert_eq!(d, 0, "DATA must not be used once I-DATA is negotiated");
            assert!(i >= 5, "5000 bytes need several I-DATA chunks, saw {i}");
            assert_eq!(count_type(&log, B, ct::DATA), 0);
        } else {
            assert_eq!(i, 0, "I-DATA without negotiation");
            assert!(d >= 5);
        }
    }
}

#[test]
fn fragments_carry_mid_fsn_and_the_ppid_only_in_the_first() {
    let (mut p, log) = Pair::connected_recorded(
        4,
        idata_config(),
        idata_config(),
        LinkConfig::with_latency(Duration::from_millis(5)),
    );
    let data = msg(9, 4000);
    p.assoc(A)
        .send(3, Ppid(0xabcd), data.clone(), SendOptions::default())
        .unwrap();
    p.assoc(A)
        .send(3, Ppid(0xabcd), msg(10, 10), SendOptions::default())
        .unwrap();
    p.net.run_for(Duration::from_millis(200));
    let got = p.recv_all(B);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].ppid, Ppid(0xabcd));
    assert_eq!(got[0].data, data);
    let ch: Vec<IChunk> = sent_idata(&log, A)
        .into_iter()
        .filter(|c| c.stream == 3)
        .collect();
    let first: Vec<&IChunk> = ch.iter().filter(|c| c.mid == 0).collect();
    assert!(first.len() >= 4);
    assert_eq!(
        first[0].flags & 0x03,
        0x02,
        "B bit on the first fragment only"
    );
    assert_eq!(first[0].word, 0xabcd, "the PPID in the first fragment");
    for (i, c) in first.iter().enumerate().skip(1) {
        assert_eq!(c.word, i as u32, "FSN of fragment {i}");
    }
    assert_eq!(
        first.last().unwrap().flags & 0x01,
        0x01,
        "E bit on the last"
    );
    assert_eq!(first.iter().map(|c| c.len).sum::<usize>(), 4000);
    let second: Vec<&IChunk> = ch.iter().filter(|c| c.mid == 1).collect();
    assert_eq!(second.len(), 1, "the next ordered message has MID 1");
    assert_eq!(second[0].flags & 0x03, 0x03);
}

#[test]
fn ordered_and_unordered_messages_have_separate_mid_spaces() {
    let (mut p, log) = Pair::connected_recorded(
        5,
        idata_config(),
        idata_config(),
        LinkConfig::with_latency(Duration::from_millis(5)),
    );
    for i in 0..6u32 {
        let opts = if i % 2 == 0 {
            SendOptions::default()
        } else {
            SendOptions::unordered()
        };
        p.assoc(A).send(0, Ppid(0), msg(i, 50), opts).unwrap();
    }
    p.net.run_for(Duration::from_millis(200));
    assert_eq!(p.recv_all(B).len(), 6);
    // Retransmissions (T3 before the delayed SACK) repeat TSNs: the first of each.
    let mut seen = std::collections::HashSet::new();
    let ch: Vec<IChunk> = sent_idata(&log, A)
        .into_iter()
        .filter(|c| seen.insert(c.tsn))
        .collect();
    let ordered: Vec<u32> = ch
        .iter()
        .filter(|c| c.flags & 0x04 == 0)
        .map(|c| c.mid)
        .collect();
    let unordered: Vec<u32> = ch
        .iter()
        .filter(|c| c.flags & 0x04 != 0)
        .map(|c| c.mid)
        .collect();
    assert_eq!(ordered, vec![0, 1, 2]);
    assert_eq!(unordered, vec![0, 1, 2]);
}

#[test]
fn a_small_message_overtakes_a_large_one_on_another_stream() {
    let mut c = idata_config();
    c.max_message_size = 10 << 20;
    c.send_buffer_size = 12 << 20;
    c.send_low_water = 6 << 20;
    c.receive_window = 16 << 20;
    c.pmtu = 9000;
    let mut p = Pair::connected(
        6,
        c.clone(),
        c,
        LinkConfig::with_latency(Duration::from_millis(10)),
    );
    let big = vec![0x42u8; 10 << 20];
    p.send(A, 0, &big).unwrap();
    // Let the large message get going, then send a small one on stream 1.
    p.net.run_for(Duration::from_millis(50));
    let start = p.net.now();
    p.send(A, 1, b"small").unwrap();
    let mut order = Vec::new();
    let mut small_at = None;
    let deadline = start + Duration::from_secs(600);
    while order.len() < 2 {
        for m in p.recv_all(B) {
            if m.stream == 1 {
                small_at = Some(p.net.now());
            }
            order.push((m.stream, m.data.len()));
        }
        assert!(p.net.now() < deadline, "transfer stalled");
        if order.len() < 2 {
            p.net.step(deadline);
        }
    }
    assert_eq!(
        order,
        vec![(1, 5), (0, 10 << 20)],
        "the small message must not wait"
    );
    let waited = small_at.unwrap() - start;
    assert!(
        waited < Duration::from_millis(200),
        "the small message took {waited:?}"
    );
}

#[test]
fn without_idata_a_small_message_waits_behind_the_large_one() {
    // The contrast that makes the test above meaningful: DATA cannot interleave.
    let mut c = config(StreamScheduler::RoundRobin);
    c.max_message_size = 1 << 20;
    c.send_buffer_size = 2 << 20;
    c.receive_window = 2 << 20;
    let mut p = Pair::connected(
        6,
        c.clone(),
        c,
        LinkConfig::with_latency(Duration::from_millis(10)),
    );
    p.send(A, 0, &vec![1u8; 1 << 20]).unwrap();
    p.net.run_for(Duration::from_millis(50));
    p.send(A, 1, b"small").unwrap();
    let mut order = Vec::new();
    while order.len() < 2 {
        for m in p.recv_all(B) {
            order.push(m.stream);
        }
        if order.len() < 2 {
            let d = p.net.now() + Duration::from_secs(60);
            assert!(p.net.step(d), "stalled");
        }
    }
    assert_eq!(order, vec![0, 1]);
}

#[test]
fn lossy_duplicating_reordering_soak_with_idata_loses_nothing() {
    let mut link = LinkConfig::with_latency(Duration::from_millis(10));
    link.loss = 0.05;
    link.duplicate = 0.05;
    link.jitter = Duration::from_millis(8);
    let mut c = idata_config();
    c.max_message_size = 64 << 10;
    let mut p = Pair::connected(8, c.clone(), c, link);
    let msgs: Vec<(u16, usize)> = (0..300)
        .map(|i| ((i % 5) as u16, 1 + (i * 7919) % 20_000))
        .collect();
    let mut next = 0;
    let mut got: Vec<(u16, u32)> = Vec::new();
    let deadline = p.net.now() + Duration::from_secs(600);
    while got.len() < msgs.len() {
        while next < msgs.len() {
            let (s, len) = msgs[next];
            match p.send(A, s, &msg(next as u32, len)) {
                Ok(()) => next += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        for m in p.recv_all(B) {
            let n = u32::from_be_bytes(m.data[..4].try_into().unwrap());
            assert_eq!(m.data, msg(n, msgs[n as usize].1), "message {n} corrupted");
            got.push((m.stream, n));
        }
        assert!(
            p.net.now() < deadline,
            "stalled at {} of {}",
            got.len(),
            msgs.len()
        );
        if got.len() < msgs.len() {
            p.net.step(deadline);
        }
    }
    for st in 0..5u16 {
        let sent: Vec<u32> = (0..300u32).filter(|i| msgs[*i as usize].0 == st).collect();
        let recv: Vec<u32> = got.iter().filter(|g| g.0 == st).map(|g| g.1).collect();
        assert_eq!(sent, recv, "stream {st}");
    }
    assert_eq!(status(&mut p, B).i_data_rejected, 0);
}

/// Connects with I-DATA while recording and returns the tags and B's next expected TSN.
fn hostile_setup(seed: u64) -> (Pair, Log, u32, u32) {
    let mut cb = idata_config();
    cb.receive_window = 64 << 10;
    cb.max_message_size = 32 << 10;
    let (mut p, log) = Pair::connected_recorded(
        seed,
        idata_config(),
        cb,
        LinkConfig::with_latency(Duration::from_millis(5)),
    );
    // One real message so we know A's TSN.
    p.send(A, 0, b"hello").unwrap();
    p.net.run_for(Duration::from_millis(100));
    assert_eq!(p.recv_all(B).len(), 1);
    let last_tsn = sent_idata(&log, A).last().unwrap().tsn;
    let (ab, _) = tags(&log);
    (p, log, ab, last_tsn.wrapping_add(1))
}

#[test]
fn a_data_chunk_on_an_idata_association_aborts_it() {
    let (mut p, log, ab, tsn) = hostile_setup(9);
    let src_port = log
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.from == A)
        .unwrap()
        .src_port;
    let pkt = build(
        src_port,
        PORT,
        ab,
        &[chunk(ct::DATA, 0x03, &data_value(tsn, 0, 1, 0, b"x"))],
    );
    inject(&mut p.net, A, &pkt);
    p.net.run_for(Duration::from_millis(50));
    let b = p.b();
    assert!(
        p.net.node(B).take_events().iter().any(|(id, e)| *id == b
            && matches!(e, Event::Aborted(AbortReason::Local(c)) if c.code.get() == 13)),
        "B must abort"
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.from == B && r.has(ct::ABORT)),
        "B sends an ABORT"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random I-DATA fragments (bad FSNs, duplicate first/last fragments, huge MID gaps,
    /// TSNs around the window): never a panic, memory stays within the window.
    #[test]
    fn hostile_idata_never_panics_and_memory_stays_bounded(
        frags in proptest::collection::vec(
            (0u32..400, 0u16..4, prop_oneof![0u32..4, any::<u32>()], 0u32..6, 0u8..16, 1usize..3000),
            1..80,
        ),
        seed in 0u64..4,
    ) {
        let (mut p, log, ab, tsn0) = hostile_setup(20 + seed);
        let src_port = log.lock().unwrap().iter().find(|r| r.from == A).unwrap().src_port;
        for (dt, stream, mid, word, flags, len) in frags {
            let v = idata_value(tsn0.wrapping_add(dt), stream, mid, word, &vec![7u8; len]);
            let pkt = build(src_port, PORT, ab, &[chunk(I_DATA, flags & 0x0f, &v)]);
            inject(&mut p.net, A, &pkt);
            p.net.run_for(Duration::from_millis(1));
        }
        p.net.run_for(Duration::from_millis(50));
        let b = p.b();
        if let Some(assoc) = p.net.node(B).endpoint.association(b)
            && let Some(st) = assoc.status()
        {
            // The window plus the quarter-window slack of the chunk at the ack point.
            prop_assert!(st.recv_buffered <= (64 << 10) + (16 << 10) + 3000, "{}", st.recv_buffered);
        }
    }
}

fn config(s: StreamScheduler) -> AssociationConfig {
    let mut c = fast_config();
    c.stream_scheduler = s;
    c.outbound_streams = 8;
    c.inbound_streams = 8;
    c
}

fn pair(s: StreamScheduler) -> Pair {
    Pair::connected(
        7,
        config(s),
        config(s),
        LinkConfig::with_latency(Duration::from_millis(5)),
    )
}

/// A message of `len` bytes whose first 4 bytes number it.
fn msg(n: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0x5a; len.max(4)];
    d[..4].copy_from_slice(&n.to_be_bytes());
    d
}

/// Queues every (stream, len) without letting the network run, then runs until B holds
/// all of them; returns (stream, number) in the order B received them.
fn queue_then_run(p: &mut Pair, msgs: &[(u16, usize)]) -> Vec<(u16, u32)> {
    for (i, (s, len)) in msgs.iter().enumerate() {
        p.send(A, *s, &msg(i as u32, *len)).expect("send");
    }
    let mut got = Vec::new();
    let deadline = p.net.now() + Duration::from_secs(60);
    while got.len() < msgs.len() {
        for m in p.recv_all(B) {
            let n = u32::from_be_bytes(m.data[..4].try_into().unwrap());
            got.push((m.stream, n));
        }
        assert!(
            p.net.now() < deadline,
            "transfer stalled: {} of {}",
            got.len(),
            msgs.len()
        );
        if got.len() < msgs.len() {
            p.net.step(deadline);
        }
    }
    got
}

fn streams_of(got: &[(u16, u32)]) -> Vec<u16> {
    got.iter().map(|(s, _)| *s).collect()
}

#[test]
fn round_robin_alternates_between_streams_with_queued_messages() {
    let mut p = pair(StreamScheduler::RoundRobin);
    // Four messages on stream 0, then four on 1, then four on 2.
    let msgs: Vec<(u16, usize)> = (0..12).map(|i| ((i / 4) as u16, 100)).collect();
    let got = queue_then_run(&mut p, &msgs);
    assert_eq!(
        streams_of(&got),
        vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
        "round robin must take the streams in turn"
    );
}

#[test]
fn fcfs_keeps_the_arrival_order_across_streams() {
    let mut p = pair(StreamScheduler::Fcfs);
    let order: [u16; 12] = [2, 2, 0, 1, 1, 1, 0, 2, 3, 0, 0, 3];
    let msgs: Vec<(u16, usize)> = order.iter().map(|s| (*s, 100)).collect();
    let got = queue_then_run(&mut p, &msgs);
    let numbers: Vec<u32> = got.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        numbers,
        (0..12).collect::<Vec<u32>>(),
        "FCFS must keep the send order"
    );
    assert_eq!(streams_of(&got), order.to_vec());
}

#[test]
fn priority_is_strict_and_equal_priorities_take_turns() {
    let mut p = pair(StreamScheduler::Priority);
    {
        let mut a = p.net.node(A).endpoint.association(p.a).unwrap();
        a.set_stream_priority(0, 10).unwrap();
        a.set_stream_priority(1, 5).unwrap();
        a.set_stream_priority(2, 5).unwrap();
        a.set_stream_priority(3, 1).unwrap();
        assert_eq!(
            a.set_stream_priority(8, 0),
            Err(SendError::InvalidStream),
            "a stream beyond the negotiated ones is refused"
        );
    }
    // Stream 0 (least important) is queued first, stream 3 (most important) last.
    let mut msgs = Vec::new();
    for s in [0u16, 1, 2, 3] {
        for _ in 0..3 {
            msgs.push((s, 200));
        }
    }
    let got = queue_then_run(&mut p, &msgs);
    assert_eq!(
        streams_of(&got),
        vec![3, 3, 3, 1, 2, 1, 2, 1, 2, 0, 0, 0],
        "strict priority, round robin among equals"
    );
}

#[test]
fn priority_changes_take_effect_on_a_running_association() {
    let mut p = pair(StreamScheduler::Priority);
    let first = queue_then_run(&mut p, &[(0, 100), (1, 100), (0, 100), (1, 100)]);
    // Equal priorities (0 by default): turns.
    assert_eq!(streams_of(&first), vec![0, 1, 0, 1]);
    p.net
        .node(A)
        .endpoint
        .association(p.a)
        .unwrap()
        .set_stream_priority(0, 3)
        .unwrap();
    let second = queue_then_run(&mut p, &[(0, 100), (1, 100), (0, 100), (1, 100)]);
    assert_eq!(streams_of(&second), vec![1, 1, 0, 0]);
}

/// Bytes per stream among the first `bytes_window` bytes B received.
fn bytes_in_window(got: &[(u16, u32)], sizes: &[(u16, usize)], window: usize) -> [usize; 8] {
    let mut per = [0usize; 8];
    let mut total = 0;
    for (s, n) in got {
        let len = sizes[*n as usize].1;
        if total + len > window {
            break;
        }
        total += len;
        per[*s as usize] += len;
    }
    per
}

#[test]
fn wfq_shares_bytes_in_proportion_to_the_weights() {
    let mut p = pair(StreamScheduler::WeightedFair);
    {
        let mut a = p.net.node(A).endpoint.association(p.a).unwrap();
        a.set_stream_weight(0, 1).unwrap();
        a.set_stream_weight(1, 3).unwrap();
        a.set_stream_weight(2, 2).unwrap();
    }
    // Different message sizes per stream, so WFQ must count bytes, not messages. All three
    // stay backlogged through the measured window (the first 120 kB of 360 kB queued).
    let mut msgs = Vec::new();
    for i in 0..600 {
        msgs.push((0u16, 300));
        if i % 2 == 0 {
            msgs.push((1u16, 900));
        }
        if i % 3 == 0 {
            msgs.push((2u16, 400));
        }
    }
    let total: usize = msgs.iter().map(|(_, l)| l).sum();
    let window = 120_000;
    // Every stream must still have data queued at the end of the window (its share of the
    // window is below what it queued), and all of it fits the send buffer.
    for (st, w) in [(0u16, 1), (1, 3), (2, 2)] {
        let queued: usize = msgs.iter().filter(|m| m.0 == st).map(|m| m.1).sum();
        assert!(queued > window * w / 6 + 1000, "stream {st} would run dry");
    }
    assert!(total < 1 << 20);
    let got = queue_then_run(&mut p, &msgs);
    let per = bytes_in_window(&got, &msgs, window);
    let sum = (per[0] + per[1] + per[2]) as f64;
    for (s, w) in [(0, 1.0), (1, 3.0), (2, 2.0)] {
        let share = per[s] as f64 / sum;
        let want = w / 6.0;
        assert!(
            (share - want).abs() < 0.02,
            "stream {s}: share {share:.3}, want {want:.3} ({per:?})"
        );
    }
}

#[test]
fn wfq_with_equal_weights_is_fair_in_bytes_not_messages() {
    let mut p = pair(StreamScheduler::WeightedFair);
    let mut msgs = Vec::new();
    for _ in 0..200 {
        msgs.push((0u16, 1000));
        msgs.push((1u16, 250));
        msgs.push((1u16, 250));
        msgs.push((1u16, 250));
        msgs.push((1u16, 250));
        msgs.push((1u16, 250));
    }
    let got = queue_then_run(&mut p, &msgs);
    let per = bytes_in_window(&got, &msgs, 100_000);
    let ratio = per[0] as f64 / per[1] as f64;
    assert!((0.95..1.05).contains(&ratio), "bytes {per:?}");
}

#[test]
fn every_scheduler_delivers_everything_in_order_per_stream() {
    for s in [
        StreamScheduler::Fcfs,
        StreamScheduler::RoundRobin,
        StreamScheduler::Priority,
        StreamScheduler::WeightedFair,
    ] {
        let mut p = pair(s);
        let msgs: Vec<(u16, usize)> = (0..300)
            .map(|i| ((i * 7 % 5) as u16, 50 + i % 700))
            .collect();
        let got = queue_then_run(&mut p, &msgs);
        for st in 0..5u16 {
            let sent: Vec<u32> = (0..300u32).filter(|i| msgs[*i as usize].0 == st).collect();
            let recv: Vec<u32> = got.iter().filter(|g| g.0 == st).map(|g| g.1).collect();
            assert_eq!(sent, recv, "{s:?}: stream {st} lost or reordered a message");
        }
    }
}

#[test]
fn many_large_messages_interleaved_never_fill_the_receiver_with_partial_ones() {
    // Eight streams each with 240 kB messages against a 1 MiB receive window: interleaving
    // them all at once would leave the receiver holding eight incomplete messages that do
    // not fit together, with nothing deliverable (no partial delivery here).
    let mut c = idata_config();
    c.max_message_size = 240 << 10;
    let mut p = Pair::connected(
        11,
        c.clone(),
        c,
        LinkConfig::with_latency(Duration::from_millis(5)),
    );
    let msgs: Vec<(u16, usize)> = (0..16).map(|i| ((i % 8) as u16, 240 << 10)).collect();
    let mut next = 0;
    let mut got = 0;
    let deadline = p.net.now() + Duration::from_secs(120);
    while got < msgs.len() {
        while next < msgs.len() {
            let (s, len) = msgs[next];
            match p.send(A, s, &msg(next as u32, len)) {
                Ok(()) => next += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        got += p.recv_all(B).len();
        assert!(p.net.now() < deadline, "stalled at {got} of {}", msgs.len());
        if got < msgs.len() {
            p.net.step(deadline);
        }
    }
}

#[test]
fn an_iforward_tsn_drops_the_abandoned_message_and_delivers_what_waited_behind_it() {
    let (mut p, log, ab, t) = hostile_setup(12);
    let src_port = log
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.from == A)
        .unwrap()
        .src_port;
    let send = |p: &mut Pair, chunks: &[Chunk]| {
        inject(&mut p.net, A, &build(src_port, PORT, ab, chunks));
        p.net.run_for(Duration::from_micros(100));
    };
    // Stream 1: MID 0 only partly received (first fragment at TSN t; TSN t+1 lost), MID 1
    // complete at t+2 and waiting for MID 0.
    send(
        &mut p,
        &[chunk(I_DATA, 0x02, &idata_value(t, 1, 0, 42, &[1; 1000]))],
    );
    send(
        &mut p,
        &[chunk(
            I_DATA,
            0x03,
            &idata_value(t.wrapping_add(2), 1, 1, 43, b"after"),
        )],
    );
    assert!(p.recv_all(B).is_empty(), "MID 1 must wait for MID 0");
    let held = status(&mut p, B).recv_buffered;
    assert!(held >= 1000 + 5, "{held}");
    // The sender abandoned MID 0 (TSNs t, t+1): I-FORWARD TSN to t+1, stream 1 ordered MID 0.
    let mut v = t.wrapping_add(1).to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    send(&mut p, &[chunk(194, 0, &v)]);
    let got = p.recv_all(B);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].stream, got[0].data.as_slice()), (1, &b"after"[..]));
    assert_eq!(got[0].ppid, Ppid(43));
    assert_eq!(
        status(&mut p, B).recv_buffered,
        0,
        "the partial message is freed"
    );
    // B acknowledges up to t+2 at once.
    let last_sack = log
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|r| r.from == B)
        .find_map(|r| r.first(ct::SACK).map(|c| c.value.clone()))
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(last_sack[0..4].try_into().unwrap()),
        t.wrapping_add(2)
    );
}

#[test]
fn multi_packet_messages_are_sent_when_the_peer_requires_data_or_idata_authenticated() {
    // The AUTH chunk takes room in every packet, so full-size fragments must be cut smaller
    // (before the fix a message larger than one packet never left).
    for i_data in [false, true] {
        let mut ca = idata_config();
        ca.auth = true;
        ca.i_data = i_data;
        let mut cb = ca.clone();
        let ty = if i_data { I_DATA } else { ct::DATA };
        cb.auth_chunks = vec![sctp_stack::wire::ChunkType(ty)];
        let (mut p, log) = Pair::connected_recorded(
            13,
            ca,
            cb,
            LinkConfig::with_latency(Duration::from_millis(5)),
        );
        assert_eq!(status(&mut p, A).i_data, i_data);
        assert!(status(&mut p, A).auth);
        let data = msg(1, 6000);
        p.send(A, 0, &data).unwrap();
        p.net.run_for(Duration::from_millis(300));
        let got = p.recv_all(B);
        assert_eq!(got.len(), 1, "I-DATA {i_data}");
        assert_eq!(got[0].data, data);
        let l = log.lock().unwrap();
        let with_data: Vec<&Rec> = l.iter().filter(|r| r.from == A && r.has(ty)).collect();
        assert!(with_data.len() >= 5);
        for r in with_data {
            let auth = r.chunks.iter().position(|c| c.ty == auth::AUTH);
            let first = r.chunks.iter().position(|c| c.ty == ty);
            assert!(auth.is_some() && auth < first, "AUTH must precede the data");
        }
    }
}
