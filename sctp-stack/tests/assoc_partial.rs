//! Partial delivery (RFC 6458 §8.1.21 `SCTP_PARTIAL_DELIVERY_POINT`) over the simulated
//! network: messages far larger than the receive window arrive intact in pieces with DATA
//! and I-DATA, small messages on another stream interleave with the pieces under I-DATA, a
//! message abandoned by the sender in the middle of its delivery ends in a
//! `PartialDeliveryAborted` event and later messages arrive, and applications that do not
//! opt in keep getting whole messages.

mod assoc_util;

use std::collections::HashMap;
use std::time::Duration;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::Ppid;
use sctp_stack::{AssociationConfig, Event, Message, PrPolicy, SendError, SendOptions};

const WINDOW: u32 = 64 * 1024;
const POINT: usize = 16 * 1024;

/// A receiver with a 64 kB window and partial delivery at 16 kB; a sender able to send
/// `max` byte messages.
fn configs(idata: bool, max: usize) -> (AssociationConfig, AssociationConfig) {
    let mut a = fast_config();
    a.i_data = idata;
    a.outbound_streams = 4;
    a.max_message_size = max;
    a.send_buffer_size = max + (1 << 20);
    a.send_low_water = a.send_buffer_size / 2;
    a.partial_delivery_point = Some(POINT);
    let mut b = fast_config();
    b.i_data = idata;
    b.receive_window = WINDOW;
    b.partial_delivery_point = Some(POINT);
    (a, b)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// What B's application saw, in order.
#[derive(Debug, Default)]
struct Reader {
    msgs: Vec<Message>,
    aborted: Vec<(u16, u64)>,
}

/// Runs the network with B's application reading everything as it arrives, until `done`.
fn run_reading(
    p: &mut Pair,
    max: Duration,
    r: &mut Reader,
    mut done: impl FnMut(&Reader) -> bool,
) -> bool {
    let b = p.b();
    p.net.run_until(max, |n| {
        if let Some(mut a) = n.node(B).endpoint.association(b) {
            while let Some(m) = a.recv() {
                r.msgs.push(m);
            }
        }
        for (_, e) in n.node(B).take_events() {
            if let Event::PartialDeliveryAborted { stream, message } = e {
                r.aborted.push((stream, message));
            }
        }
        done(r)
    })
}

/// Reassembles the pieces per message id; returns whole messages and completed pieced ones
/// (stream, data, number of pieces) in completion order.
fn assemble(msgs: &[Message]) -> Vec<(u16, Vec<u8>, usize)> {
    let mut open: HashMap<u64, (u16, Vec<u8>, usize)> = HashMap::new();
    let mut out = Vec::new();
    for m in msgs {
        match m.piece {
            None => out.push((m.stream, m.data.clone(), 0)),
            Some(pc) => {
                let e = open.entry(pc.message).or_insert((m.stream, Vec::new(), 0));
                assert_eq!(e.0, m.stream, "pieces of one message on one stream");
                assert_eq!(pc.offset, e.1.len() as u64, "pieces in order, no gap");
                e.1.extend_from_slice(&m.data);
                e.2 += 1;
                if pc.last {
                    out.push(open.remove(&pc.message).unwrap());
                }
            }
        }
    }
    out
}

fn send_all(p: &mut Pair, stream: u16, data: &[u8], opts: SendOptions) {
    p.assoc(A).send(stream, Ppid(7), data, opts).unwrap();
}

fn ten_megabytes_in_pieces(idata: bool) {
    const LEN: usize = 10 * 1024 * 1024;
    let (ca, cb) = configs(idata, LEN);
    let link = LinkConfig::with_latency(Duration::from_millis(1));
    let mut p = Pair::connected(51 + u64::from(idata), ca, cb, link);
    let big = pattern(3, LEN);
    send_all(&mut p, 0, &big, SendOptions::default());
    let mut r = Reader::default();
    let max_pd_bytes = WINDOW as usize;
    let ok = run_reading(&mut p, Duration::from_secs(600), &mut r, |r| {
        r.msgs
            .last()
            .is_some_and(|m| m.piece.is_some_and(|pc| pc.last))
    });
    assert!(ok, "the message did not complete");
    let got = assemble(&r.msgs);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), LEN);
    assert!(got[0].1 == big, "content differs");
    assert!(got[0].2 > 100, "delivered in many pieces: {}", got[0].2);
    assert!(
        r.msgs
            .iter()
            .all(|m| m.data.len() <= max_pd_bytes && m.ppid == Ppid(7))
    );
    assert!(r.aborted.is_empty());
    let s = p.assoc(B).status().unwrap();
    assert_eq!(s.recv_buffered, 0);
}

#[test]
fn a_10_mb_data_message_with_a_64_kb_receive_window_arrives_intact_in_pieces() {
    ten_megabytes_in_pieces(false);
}

#[test]
fn a_10_mb_idata_message_with_a_64_kb_receive_window_arrives_intact_in_pieces() {
    ten_megabytes_in_pieces(true);
}

#[test]
fn with_idata_small_messages_on_another_stream_interleave_with_the_pieces() {
    const LEN: usize = 2 * 1024 * 1024;
    let (ca, cb) = configs(true, LEN);
    let link = LinkConfig::with_latency(Duration::from_millis(2));
    let mut p = Pair::connected(53, ca, cb, link);
    let big = pattern(5, LEN);
    send_all(&mut p, 0, &big, SendOptions::default());
    let mut r = Reader::default();
    // Once the big message is well under way, small ones follow on stream 1.
    assert!(run_reading(&mut p, Duration::from_secs(60), &mut r, |r| r
        .msgs
        .len()
        >= 5));
    for i in 0..10u8 {
        send_all(&mut p, 1, &pattern(100 + i, 300), SendOptions::default());
    }
    let ok = run_reading(&mut p, Duration::from_secs(600), &mut r, |r| {
        assemble(&r.msgs).len() == 11
    });
    assert!(ok);
    let got = assemble(&r.msgs);
    let small: Vec<Vec<u8>> = got
        .iter()
        .filter(|m| m.0 == 1)
        .map(|m| m.1.clone())
        .collect();
    assert_eq!(
        small,
        (0..10u8).map(|i| pattern(100 + i, 300)).collect::<Vec<_>>()
    );
    let whole_big = got.iter().find(|m| m.0 == 0).unwrap();
    assert!(whole_big.1 == big);
    // The small messages arrived between pieces of the big one, not after its end.
    let last_small = r.msgs.iter().rposition(|m| m.stream == 1).unwrap();
    let last_piece = r
        .msgs
        .iter()
        .position(|m| m.piece.is_some_and(|pc| pc.last))
        .unwrap();
    assert!(
        last_small < last_piece,
        "small ones waited behind the big one"
    );
    assert!(
        r.msgs
            .iter()
            .filter(|m| m.stream == 1)
            .all(|m| m.piece.is_none())
    );
}

fn abandoned_in_the_middle(idata: bool) {
    const LEN: usize = 1024 * 1024;
    let (ca, cb) = configs(idata, LEN);
    let link = LinkConfig::with_latency(Duration::from_millis(10));
    let mut p = Pair::connected(55 + u64::from(idata), ca, cb, link);
    let big = pattern(9, LEN);
    send_all(
        &mut p,
        0,
        &big,
        SendOptions::default().with_pr_policy(PrPolicy::Timed {
            lifetime: Duration::from_millis(1000),
        }),
    );
    let mut r = Reader::default();
    // Pieces arrive; then the link fails and the lifetime ends in the middle of the
    // transfer; when the link is back the peer learns the message was abandoned.
    assert!(run_reading(&mut p, Duration::from_secs(5), &mut r, |r| r
        .msgs
        .len()
        >= 3));
    p.net.link_mut(A, B).up = false;
    let a = p.a;
    assert!(p.net.run_until(Duration::from_secs(5), |n| {
        n.node(A)
            .endpoint
            .association(a)
            .and_then(|x| x.status())
            .is_some_and(|s| s.abandoned_sent == 1)
    }));
    p.net.link_mut(A, B).up = true;
    assert!(run_reading(&mut p, Duration::from_secs(5), &mut r, |r| {
        !r.aborted.is_empty()
    }));
    let pieces: Vec<&Message> = r.msgs.iter().filter(|m| m.piece.is_some()).collect();
    assert!(!pieces.is_empty(), "some pieces before the abort");
    let id = pieces[0].piece.unwrap().message;
    assert!(pieces.iter().all(|m| m.piece.unwrap().message == id));
    assert!(pieces.iter().all(|m| !m.piece.unwrap().last));
    let delivered: usize = pieces.iter().map(|m| m.data.len()).sum();
    assert!(delivered < LEN);
    assert_eq!(r.aborted, vec![(0, id)]);
    let s = p.assoc(A).status().unwrap();
    assert_eq!(s.abandoned_sent, 1);
    // Later messages on the same stream and another one arrive whole.
    send_all(&mut p, 0, b"after on 0", SendOptions::default());
    send_all(&mut p, 1, b"after on 1", SendOptions::default());
    let before = r.msgs.len();
    assert!(run_reading(&mut p, Duration::from_secs(10), &mut r, |r| {
        r.msgs.len() >= before + 2
    }));
    let mut later: Vec<(u16, Vec<u8>)> = r.msgs[before..]
        .iter()
        .map(|m| (m.stream, m.data.clone()))
        .collect();
    later.sort();
    assert_eq!(
        later,
        vec![(0, b"after on 0".to_vec()), (1, b"after on 1".to_vec())]
    );
    p.net.run_for(Duration::from_secs(1));
    assert_eq!(p.assoc(B).status().unwrap().recv_buffered, 0);
    assert_eq!(r.aborted.len(), 1);
}

#[test]
fn an_idata_message_abandoned_in_the_middle_of_partial_delivery_is_reported_aborted() {
    abandoned_in_the_middle(true);
}

#[test]
fn a_data_message_abandoned_in_the_middle_of_partial_delivery_is_reported_aborted() {
    abandoned_in_the_middle(false);
}

#[test]
fn messages_below_the_partial_delivery_point_and_receivers_without_it_get_whole_messages() {
    for pd in [true, false] {
        let (ca, mut cb) = configs(true, 1 << 20);
        if !pd {
            cb.partial_delivery_point = None;
            cb.receive_window = 1 << 20;
            cb.max_message_size = 200 * 1024;
        }
        let mut p = Pair::connected(57, ca, cb, LinkConfig::default());
        let sizes = [10usize, POINT - 1000, 150 * 1024];
        for (i, &len) in sizes.iter().enumerate() {
            send_all(&mut p, 0, &pattern(i as u8, len), SendOptions::default());
        }
        let mut r = Reader::default();
        assert!(run_reading(&mut p, Duration::from_secs(60), &mut r, |r| {
            assemble(&r.msgs).len() == 3
        }));
        let got = assemble(&r.msgs);
        for (i, &len) in sizes.iter().enumerate() {
            assert!(got[i].1 == pattern(i as u8, len));
        }
        // Small messages are whole either way; the large one comes in pieces only when
        // the receiver asked for it.
        assert_eq!(got[0].2, 0);
        assert_eq!(got[1].2, 0);
        assert_eq!(got[2].2 > 0, pd);
    }
}

#[test]
fn a_partial_delivery_point_above_half_the_window_is_refused() {
    let mut c = fast_config();
    c.receive_window = WINDOW;
    c.partial_delivery_point = Some(WINDOW as usize);
    assert!(c.validate().is_err());
    c.partial_delivery_point = Some(0);
    assert!(c.validate().is_err());
    c.partial_delivery_point = Some(POINT);
    assert!(c.validate().is_ok());
    // Without partial delivery a window below max_message_size stays refused.
    c.partial_delivery_point = None;
    assert!(c.validate().is_err());
    let _ = SendError::WouldBlock;
}

fn lossy_in_pieces(idata: bool) {
    const LEN: usize = 2 * 1024 * 1024;
    let (ca, cb) = configs(idata, LEN);
    let mut link = LinkConfig::with_latency(Duration::from_millis(5));
    link.loss = 0.05;
    link.duplicate = 0.02;
    let mut p = Pair::connected(61 + u64::from(idata), ca, cb, link);
    let big = pattern(11, LEN);
    send_all(&mut p, 0, &big, SendOptions::default());
    for i in 0..20u8 {
        send_all(
            &mut p,
            1,
            &pattern(i, 500 + usize::from(i) * 97),
            SendOptions::default(),
        );
    }
    let mut r = Reader::default();
    let ok = run_reading(&mut p, Duration::from_secs(900), &mut r, |r| {
        assemble(&r.msgs).len() == 21
    });
    assert!(
        ok,
        "not everything arrived: {} pieces/messages",
        r.msgs.len()
    );
    let got = assemble(&r.msgs);
    assert!(got.iter().find(|m| m.0 == 0).unwrap().1 == big);
    let small: Vec<Vec<u8>> = got
        .iter()
        .filter(|m| m.0 == 1)
        .map(|m| m.1.clone())
        .collect();
    let want: Vec<Vec<u8>> = (0..20u8)
        .map(|i| pattern(i, 500 + usize::from(i) * 97))
        .collect();
    assert_eq!(small, want);
    assert!(r.aborted.is_empty());
}

#[test]
fn under_loss_and_duplication_a_data_message_larger_than_the_window_arrives_intact() {
    lossy_in_pieces(false);
}

#[test]
fn under_loss_and_duplication_an_idata_message_larger_than_the_window_arrives_intact() {
    lossy_in_pieces(true);
}

// ------------------------------------------------------------ hostile input

const I_DATA: u8 = 64;
const I_FORWARD_TSN: u8 = 194;

fn idata_value(tsn: u32, stream: u16, mid: u32, word: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&mid.to_be_bytes());
    v.extend_from_slice(&word.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Random I-DATA fragments and I-FORWARD TSNs at a receiver with a tiny partial
    /// delivery point, the application reading now and then: never a panic, memory stays
    /// within the window, and every piece sequence is consistent (offsets without gaps).
    #[test]
    fn hostile_idata_with_partial_delivery_never_panics_and_memory_stays_bounded(
        ops in proptest::collection::vec(
            (0u32..300, 0u16..3, 0u32..4, 0u32..8, 0u8..20, 1usize..2000),
            1..80,
        ),
        seed in 0u64..4,
    ) {
        let (ca, mut cb) = configs(true, 1 << 20);
        cb.partial_delivery_point = Some(700);
        let (mut p, log) = Pair::connected_recorded(
            70 + seed,
            ca,
            cb,
            LinkConfig::with_latency(Duration::from_millis(5)),
        );
        p.send(A, 0, b"hello").unwrap();
        p.net.run_for(Duration::from_millis(100));
        let mut r = Reader::default();
        run_reading(&mut p, Duration::from_millis(1), &mut r, |r| !r.msgs.is_empty());
        let (src_port, tsn0) = {
            let l = log.lock().unwrap();
            let src_port = l.iter().find(|x| x.from == A).unwrap().src_port;
            let last = l
                .iter()
                .filter(|x| x.from == A)
                .flat_map(|x| x.chunks.clone())
                .filter(|c| c.ty == I_DATA)
                .map(|c| u32::from_be_bytes(c.value[0..4].try_into().unwrap()))
                .next_back()
                .unwrap();
            (src_port, last.wrapping_add(1))
        };
        let (ab, _) = tags(&log);
        for (dt, stream, mid, word, kind, len) in ops {
            let tsn = tsn0.wrapping_add(dt);
            let c = if kind < 16 {
                chunk(I_DATA, kind & 0x0f, &idata_value(tsn, stream, mid, word, &vec![7u8; len]))
            } else {
                let mut v = tsn.to_be_bytes().to_vec();
                v.extend_from_slice(&stream.to_be_bytes());
                v.extend_from_slice(&u16::from(kind & 1 == 1).to_be_bytes());
                v.extend_from_slice(&mid.to_be_bytes());
                chunk(I_FORWARD_TSN, 0, &v)
            };
            inject(&mut p.net, A, &build(src_port, PORT, ab, &[c]));
            p.net.run_for(Duration::from_millis(1));
            if word % 3 == 0 {
                run_reading(&mut p, Duration::from_millis(1), &mut r, |_| true);
            }
        }
        run_reading(&mut p, Duration::from_millis(50), &mut r, |_| false);
        let b = p.b();
        if let Some(assoc) = p.net.node(B).endpoint.association(b)
            && let Some(st) = assoc.status()
        {
            // The window plus the quarter-window slack of the chunk at the ack point.
            proptest::prop_assert!(
                st.recv_buffered <= WINDOW as usize * 5 / 4 + 3000,
                "{}",
                st.recv_buffered
            );
        }
        // Pieces of each message come in order without gaps, and an aborted message is one
        // that was delivered in pieces.
        for (_, id) in &r.aborted {
            proptest::prop_assert!(r.msgs.iter().any(|m| m.piece.is_some_and(|pc| pc.message == *id)));
        }
        let mut offsets: HashMap<u64, u64> = HashMap::new();
        for m in &r.msgs {
            if let Some(pc) = m.piece {
                let at = offsets.entry(pc.message).or_insert(0);
                proptest::prop_assert_eq!(pc.offset, *at);
                *at += m.data.len() as u64;
            }
        }
    }
}
