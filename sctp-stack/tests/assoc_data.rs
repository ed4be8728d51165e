//! Data transfer (RFC 9260 §6, §7) over the simulated network.

mod assoc_util;

use std::time::Duration;

use sctp_stack::wire::Ppid;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::{AssociationConfig, Event, SendError, SendOptions};

/// Sends `msgs` from A (retrying on WouldBlock) and reads everything on B; returns the
/// messages as received.
fn transfer(p: &mut Pair, msgs: &[(u16, Vec<u8>)], max: Duration) -> Vec<(u16, Vec<u8>)> {
    let mut next = 0;
    let mut got = Vec::new();
    let deadline = p.net.now() + max;
    while got.len() < msgs.len() {
        while next < msgs.len() {
            let (stream, data) = &msgs[next];
            match p.send(A, *stream, data) {
                Ok(()) => next += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        let before = got.len();
        for m in p.recv_all(B) {
            got.push((m.stream, m.data));
        }
        if got.len() == before {
            let now = p.net.now();
            assert!(
                now < deadline,
                "transfer stalled at {now:?}: {} of {}",
                got.len(),
                msgs.len()
            );
            // Nothing left to happen (e.g. the association died) is a stall too.
            assert!(
                p.net.step(deadline),
                "transfer stalled at {now:?} with nothing left to happen: {} of {}",
                got.len(),
                msgs.len()
            );
        }
    }
    got
}

fn numbered(n: usize, streams: u16, len: usize) -> Vec<(u16, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut d = vec![(i % 251) as u8; len.max(8)];
            d[..8].copy_from_slice(&(i as u64).to_be_bytes());
            ((i % streams as usize) as u16, d)
        })
        .collect()
}

fn assert_in_order_per_stream(sent: &[(u16, Vec<u8>)], got: &[(u16, Vec<u8>)]) {
    assert_eq!(sent.len(), got.len());
    let mut per_sent: std::collections::HashMap<u16, Vec<&Vec<u8>>> = Default::default();
    let mut per_got: std::collections::HashMap<u16, Vec<&Vec<u8>>> = Default::default();
    for (s, d) in sent {
        per_sent.entry(*s).or_default().push(d);
    }
    for (s, d) in got {
        per_got.entry(*s).or_default().push(d);
    }
    assert_eq!(
        per_sent, per_got,
        "a stream lost, duplicated or reordered a message"
    );
}

fn streams_config(n: u16) -> AssociationConfig {
    let mut c = fast_config();
    c.outbound_streams = n;
    c
}

#[test]
fn tsns_wrap_around_2_pow_32_without_loss_or_reordering() {
    let mut ca = fast_config();
    ca.initial_tsn = Some(u32::MAX - 100);
    let mut p = Pair::connected(20, ca, fast_config(), LinkConfig::default());
    let msgs = numbered(1000, 1, 300);
    let got = transfer(&mut p, &msgs, Duration::from_secs(60));
    assert_in_order_per_stream(&msgs, &got);
}

#[test]
fn ssns_wrap_around_2_pow_16_on_one_stream() {
    let mut p = Pair::connected(21, fast_config(), fast_config(), LinkConfig::default());
    let msgs = numbered(70_000, 1, 8);
    let got = transfer(&mut p, &msgs, Duration::from_secs(600));
    assert_in_order_per_stream(&msgs, &got);
}

#[test]
fn messages_of_64_kib_and_256_kib_are_fragmented_and_reassembled() {
    let mut p = Pair::connected(22, fast_config(), fast_config(), LinkConfig::default());
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let msgs = vec![
        (0u16, big[..65_536].to_vec()),
        (0, big.clone()),
        (0, b"tail".to_vec()),
    ];
    let got = transfer(&mut p, &msgs, Duration::from_secs(60));
    assert_eq!(got, msgs);
}

#[test]
fn a_message_above_max_message_size_is_refused_by_send() {
    let mut p = Pair::connected(23, fast_config(), fast_config(), LinkConfig::default());
    let too_big = vec![0u8; 256 * 1024 + 1];
    assert_eq!(p.send(A, 0, &too_big), Err(SendError::MessageTooLarge));
    assert_eq!(p.send(A, 0, b""), Err(SendError::EmptyMessage));
    assert_eq!(p.send(A, 10, b"x"), Err(SendError::InvalidStream));
}

#[test]
fn a_hundred_streams_each_keep_their_order() {
    let mut p = Pair::connected(
        24,
        streams_config(100),
        fast_config(),
        LinkConfig::default(),
    );
    assert_eq!(p.assoc(A).status().unwrap().outbound_streams, 100);
    let msgs = numbered(5000, 100, 100);
    let got = transfer(&mut p, &msgs, Duration::from_secs(120));
    assert_in_order_per_stream(&msgs, &got);
}

#[test]
fn everything_arrives_in_order_over_a_link_losing_30_percent() {
    let mut link = LinkConfig::default();
    link.loss = 0.3;
    // At 30% loss ten T3 expiries in a row happen now and then (about 1 run in 200 with
    // the default Association.Max.Retrans of 10 ends in CommunicationLost, correctly): this
    // test is about what arrives, so the association may retry longer.
    let patient = |mut c: AssociationConfig| {
        c.association_max_retrans = 40;
        c.path_max_retrans = 40;
        c
    };
    let mut p = Pair::connected(25, patient(streams_config(4)), patient(fast_config()), link);
    let msgs = numbered(2000, 4, 500);
    let got = transfer(&mut p, &msgs, Duration::from_secs(3600));
    assert_in_order_per_stream(&msgs, &got);
}

#[test]
fn unordered_messages_are_not_held_back_by_a_lost_earlier_message() {
    let (mut p, _log) =
        Pair::connected_recorded(26, fast_config(), fast_config(), LinkConfig::default());
    // Drop the first DATA packet once.
    let mut dropped = false;
    let log = record(&mut p.net, move |r| {
        if r.from == A && r.has(ct::DATA) && !dropped {
            dropped = true;
            return true;
        }
        false
    });
    let a = p.a;
    let mut assoc = p.net.node(A).endpoint.association(a).unwrap();
    assoc
        .send(0, Ppid(0), &b"ordered-1"[..], SendOptions::default())
        .unwrap();
    p.net.run_for(Duration::from_millis(1));
    let mut assoc = p.net.node(A).endpoint.association(a).unwrap();
    assoc
        .send(0, Ppid(0), &b"unordered"[..], SendOptions::unordered())
        .unwrap();
    p.net.run_for(Duration::from_millis(30));
    // The unordered message arrived although the first (ordered) one was lost.
    let got: Vec<_> = p
        .recv_all(B)
        .into_iter()
        .map(|m| (m.data, m.unordered))
        .collect();
    assert_eq!(got, vec![(b"unordered".to_vec(), true)]);
    p.net.run_for(Duration::from_secs(2));
    let got: Vec<_> = p.recv_all(B).into_iter().map(|m| m.data).collect();
    assert_eq!(got, vec![b"ordered-1".to_vec()]);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.has(ct::DATA))
            .count()
            >= 3
    );
}

#[test]
fn a_closed_receive_window_stops_the_sender_and_probes_reopen_it() {
    let mut cb = fast_config();
    cb.receive_window = 400_000;
    cb.max_message_size = 64 * 1024;
    let mut p = Pair::connected(27, fast_config(), cb, LinkConfig::default());
    // B does not read: A fills B's window and must stop.
    for _ in 0..60 {
        let _ = p.send(A, 0, &[1u8; 10_000]);
    }
    p.net.run_for(Duration::from_secs(10));
    let sb = p.assoc(B).status().unwrap();
    assert!(
        sb.recv_buffered <= 400_000 + 100_000,
        "receiver over its window: {}",
        sb.recv_buffered
    );
    let sa = p.assoc(A).status().unwrap();
    assert!(
        sa.send_buffered > 0,
        "everything was delivered despite a closed window"
    );
    assert!(
        sa.peer_rwnd < 20_000,
        "sender does not see the closed window"
    );
    // The association survives the closed window (zero window probes do not count as
    // errors while SACKs come back).
    p.net.run_for(Duration::from_secs(30));
    assert!(
        p.net.node(A).events.is_empty(),
        "{:?}",
        p.net.node(A).events
    );
    // B reads: the window reopens and everything arrives.
    let mut total = 0;
    let deadline = p.net.now() + Duration::from_secs(60);
    while total < 600_000 && p.net.now() < deadline {
        total += p.recv_all(B).iter().map(|m| m.data.len()).sum::<usize>();
        p.net.step(deadline);
    }
    assert_eq!(total, 600_000);
}

#[test]
fn a_full_send_buffer_refuses_with_would_block_and_reports_send_space() {
    let mut ca = fast_config();
    ca.send_buffer_size = 300_000;
    ca.send_low_water = 100_000;
    let mut p = Pair::connected(28, ca, fast_config(), LinkConfig::default());
    let mut accepted = 0;
    loop {
        match p.send(A, 0, &[0u8; 10_000]) {
            Ok(()) => accepted += 1,
            Err(SendError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted, 30);
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::SendSpace)
    });
    assert!(ok);
    assert!(p.send(A, 0, &[0u8; 10_000]).is_ok());
}

#[test]
fn a_lost_packet_is_fast_retransmitted_before_the_rto() {
    let mut ca = fast_config();
    ca.rto_min = Duration::from_secs(1);
    ca.rto_initial = Duration::from_secs(1);
    let mut p = Pair::connected(29, ca, fast_config(), LinkConfig::default());
    let mut seen_data = 0;
    let log = record(&mut p.net, move |r| {
        if r.from == A && r.has(ct::DATA) {
            seen_data += 1;
            return seen_data == 3;
        }
        false
    });
    for _ in 0..40 {
        p.send(A, 0, &[5u8; 1000]).unwrap();
    }
    let t0 = p.net.now();
    let got = transfer(&mut p, &[], Duration::from_secs(1));
    assert!(got.is_empty());
    let a = p.a;
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(A)
            .endpoint
            .association(a)
            .unwrap()
            .status()
            .unwrap()
            .send_buffered
            == 0
    });
    assert!(ok);
    let l = log.lock().unwrap();
    let lost_tsn = data_tsns(
        l.iter()
            .filter(|r| r.from == A && r.has(ct::DATA))
            .nth(2)
            .unwrap(),
    );
    let resend = l
        .iter()
        .filter(|r| r.from == A && r.has(ct::DATA))
        .skip(3)
        .find(|r| data_tsns(r).iter().any(|t| lost_tsn.contains(t)))
        .expect("retransmission");
    assert!(
        resend.now - t0 < Duration::from_millis(500),
        "retransmitted by T3, not fast retransmit"
    );
}

fn data_tsns(r: &Rec) -> Vec<u32> {
    r.chunks
        .iter()
        .filter(|c| c.ty == ct::DATA)
        .map(|c| u32::from_be_bytes(c.value[0..4].try_into().unwrap()))
        .collect()
}

#[test]
fn t3_rtx_fires_after_the_rto_and_doubles_it_each_time() {
    let mut p = Pair::connected(30, fast_config(), fast_config(), LinkConfig::default());
    let rto = p.assoc(A).status().unwrap().rto;
    let log = record(&mut p.net, |r| r.from == A && r.has(ct::DATA));
    p.send(A, 0, b"lost forever").unwrap();
    p.net.run_for(Duration::from_secs(2));
    let l = log.lock().unwrap();
    let times: Vec<_> = l
        .iter()
        .filter(|r| r.has(ct::DATA))
        .map(|r| r.now)
        .collect();
    assert!(times.len() >= 4);
    assert_eq!(times[1] - times[0], rto);
    assert_eq!(times[2] - times[1], rto * 2);
    assert_eq!(times[3] - times[2], rto * 4);
}

#[test]
fn t3_rtx_is_not_restarted_by_sacks_that_leave_the_first_tsn_unacked() {
    let mut ca = fast_config();
    ca.rto_min = Duration::from_millis(300);
    ca.rto_initial = Duration::from_millis(300);
    let mut p = Pair::connected(31, ca, fast_config(), LinkConfig::default());
    // Drop every transmission of the first DATA chunk of the burst; later chunks arrive and
    // keep SACKs coming.
    let mut first_tsn = None;
    let log = record(&mut p.net, move |r| {
        if r.from == A && r.has(ct::DATA) {
            let t = data_tsns(r)[0];
            let f = *first_tsn.get_or_insert(t);
            return data_tsns(r).contains(&f) && r.chunks.len() == 1;
        }
        false
    });
    let t0 = p.net.now();
    p.send(A, 0, &[1u8; 1000]).unwrap();
    for i in 0..20 {
        p.net.run_for(Duration::from_millis(20));
        p.send(A, 1, &[i as u8; 1000]).unwrap();
    }
    p.net.run_for(Duration::from_millis(200));
    let l = log.lock().unwrap();
    let data: Vec<_> = l
        .iter()
        .filter(|r| r.from == A && r.has(ct::DATA))
        .collect();
    let first = data_tsns(data[0])[0];
    let retrans: Vec<_> = data
        .iter()
        .skip(1)
        .filter(|r| data_tsns(r).contains(&first))
        .collect();
    assert!(!retrans.is_empty());
    // The first retransmission comes from fast retransmit or T3 within one RTO of the first
    // send, although SACKs for later TSNs kept arriving the whole time.
    assert!(retrans[0].now - t0 <= Duration::from_millis(300) + Duration::from_millis(5));
}

#[test]
fn a_single_data_packet_is_acknowledged_after_the_delayed_sack_timeout() {
    let mut cb = fast_config();
    cb.delayed_sack_timeout = Duration::from_millis(200);
    // An RTO above the delayed SACK timeout, so no retransmission interferes.
    let mut ca = fast_config();
    ca.rto_initial = Duration::from_secs(1);
    ca.rto_min = Duration::from_secs(1);
    let mut p = Pair::connected(32, ca, cb, LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    p.send(A, 0, b"one").unwrap();
    p.net.run_for(Duration::from_millis(400));
    let l = log.lock().unwrap();
    let data_at = l.iter().find(|r| r.has(ct::DATA)).unwrap().now;
    let sack_at = l
        .iter()
        .find(|r| r.from == B && r.has(ct::SACK))
        .unwrap()
        .now;
    // Delivered after 10 ms; acknowledged 200 ms after arrival.
    assert_eq!(sack_at - data_at, Duration::from_millis(210));
}

#[test]
fn every_second_data_packet_is_acknowledged_at_once() {
    let mut p = Pair::connected(33, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    p.send(A, 0, &[1u8; 1100]).unwrap();
    p.send(A, 0, &[2u8; 1100]).unwrap();
    p.net.run_for(Duration::from_millis(100));
    let l = log.lock().unwrap();
    let data: Vec<_> = l.iter().filter(|r| r.has(ct::DATA)).collect();
    assert_eq!(data.len(), 2);
    let sack = l.iter().find(|r| r.from == B && r.has(ct::SACK)).unwrap();
    assert_eq!(sack.now - data[1].now, Duration::from_millis(10));
}

#[test]
fn the_i_bit_gets_an_immediate_sack() {
    let mut p = Pair::connected(34, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    let a = p.a;
    let mut opts = SendOptions::default();
    opts.immediate_ack = true;
    p.net
        .node(A)
        .endpoint
        .association(a)
        .unwrap()
        .send(0, Ppid(0), &b"now"[..], opts)
        .unwrap();
    p.net.run_for(Duration::from_millis(100));
    let l = log.lock().unwrap();
    let data = l.iter().find(|r| r.has(ct::DATA)).unwrap();
    assert_eq!(data.first(ct::DATA).unwrap().flags & 0x08, 0x08);
    let sack = l.iter().find(|r| r.from == B && r.has(ct::SACK)).unwrap();
    assert_eq!(sack.now - data.now, Duration::from_millis(10));
}

#[test]
fn max_burst_limits_the_packets_sent_in_answer_to_one_sack() {
    let mut p = Pair::connected(35, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    for _ in 0..200 {
        p.send(A, 0, &[3u8; 1200]).unwrap();
    }
    p.net.run_for(Duration::from_secs(3));
    let l = log.lock().unwrap();
    // Packets of A sent at the same instant form one burst.
    let mut bursts = std::collections::BTreeMap::new();
    for r in l.iter().filter(|r| r.from == A && r.has(ct::DATA)) {
        *bursts.entry(r.now).or_insert(0) += 1;
    }
    let max = bursts.values().copied().max().unwrap();
    assert!(max <= 4, "a burst of {max} packets");
}

#[test]
fn a_sack_with_many_gaps_fits_the_path_mtu() {
    let mut ca = fast_config();
    ca.rto_min = Duration::from_secs(1);
    ca.rto_initial = Duration::from_secs(1);
    let mut p = Pair::connected(36, ca, fast_config(), LinkConfig::default());
    // Lose every other DATA packet of a long burst: the receiver sees hundreds of gaps.
    let mut n = 0;
    let log = record(&mut p.net, move |r| {
        if r.from == A && r.has(ct::DATA) {
            n += 1;
            return n % 2 == 0;
        }
        false
    });
    for _ in 0..400 {
        p.send(A, 0, &[1u8; 100]).unwrap();
    }
    p.net.run_for(Duration::from_secs(3));
    let l = log.lock().unwrap();
    let max_sack = l
        .iter()
        .filter(|r| r.from == B && r.has(ct::SACK))
        .map(|r| r.len)
        .max()
        .unwrap();
    assert!(max_sack <= 1280 - 20, "SACK packet of {max_sack} bytes");
}
