//! Association setup (RFC 9260 §5.1, §5.2) over the simulated network.

mod assoc_util;

use std::time::Duration;

use sctp_stack::wire::Ppid;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::{AbortReason, AssociationState, ConnectRequest, Event, LostReason};

#[test]
fn four_way_handshake_connects_both_sides() {
    let (mut p, log) =
        Pair::connected_recorded(1, fast_config(), fast_config(), LinkConfig::default());
    assert_eq!(p.assoc(A).state(), AssociationState::Established);
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
    let l = log.lock().unwrap();
    let kinds: Vec<u8> = l.iter().map(|r| r.chunks[0].ty).collect();
    assert_eq!(
        &kinds[..4],
        &[ct::INIT, ct::INIT_ACK, ct::COOKIE_ECHO, ct::COOKIE_ACK]
    );
    // §8.5.1 (A): the INIT carries verification tag 0; the INIT ACK carries the INIT's tag.
    assert_eq!(l[0].vtag, 0);
    let init_tag = u32::from_be_bytes(l[0].chunks[0].value[0..4].try_into().unwrap());
    assert_eq!(l[1].vtag, init_tag);
}

#[test]
fn a_message_is_delivered_to_the_peer() {
    let mut p = Pair::connected(2, fast_config(), fast_config(), LinkConfig::default());
    p.send(A, 0, b"hello").unwrap();
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(B).has_event(&Event::DataReadable)
    });
    assert!(ok);
    let got = p.recv_all(B);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"hello");
}

#[test]
fn the_listener_keeps_no_state_before_the_cookie_echo() {
    let mut net = network(3, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |r| r.has(ct::COOKIE_ECHO));
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(now, ConnectRequest::new(addr_b(), PORT))
        .unwrap();
    net.run_for(Duration::from_millis(50));
    assert!(log.lock().unwrap().iter().any(|r| r.has(ct::INIT_ACK)));
    assert_eq!(net.node(B).endpoint.association_count(), 0);
}

#[test]
fn init_is_retransmitted_with_backoff_until_max_init_retransmits() {
    let mut cfg = fast_config();
    cfg.max_init_retransmits = 3;
    let mut net = network(4, cfg, fast_config(), LinkConfig::default());
    let log = record(&mut net, |r| r.has(ct::INIT));
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(now, ConnectRequest::new(addr_b(), PORT))
        .unwrap();
    let lost = net.run_until(Duration::from_secs(30), |n| {
        n.node(A)
            .has_event(&Event::CommunicationLost(LostReason::HandshakeTimeout))
    });
    assert!(lost);
    assert!(net.node(A).has_event(&Event::Closed));
    let times: Vec<_> = log.lock().unwrap().iter().map(|r| r.now).collect();
    // The INIT and three retransmissions, each after the RTO, doubled every time.
    assert_eq!(times.len(), 4);
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
}

#[test]
fn a_lost_cookie_echo_is_retransmitted_by_t1_cookie() {
    let mut net = network(5, fast_config(), fast_config(), LinkConfig::default());
    let mut dropped = false;
    let log = record(&mut net, move |r| {
        if r.has(ct::COOKIE_ECHO) && !dropped {
            dropped = true;
            return true;
        }
        false
    });
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(now, ConnectRequest::new(addr_b(), PORT))
        .unwrap();
    let ok = net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
    });
    assert!(ok);
    let echoes = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.has(ct::COOKIE_ECHO))
        .count();
    assert_eq!(echoes, 2);
}

#[test]
fn an_init_to_a_port_without_listener_is_answered_with_abort() {
    let mut net = network(6, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(now, ConnectRequest::new(addr_b(), PORT + 1))
        .unwrap();
    let ok = net.run_until(Duration::from_secs(1), |n| {
        n.node(A).has_event(&Event::Closed)
    });
    assert!(ok);
    let l = log.lock().unwrap();
    let abort = l.iter().find(|r| r.has(ct::ABORT)).unwrap();
    // §8.4 (3): the tag is the INIT's Initiate Tag and the T bit is clear.
    let init_tag = u32::from_be_bytes(l[0].chunks[0].value[0..4].try_into().unwrap());
    assert_eq!(abort.vtag, init_tag);
    assert_eq!(abort.chunks[0].flags & 1, 0);
    assert!(
        net.node(A)
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Aborted(AbortReason::Peer(_))))
    );
}

#[test]
fn a_stale_cookie_is_refused_and_the_retry_with_a_cookie_preservative_succeeds() {
    let mut server = fast_config();
    server.valid_cookie_life = Duration::from_millis(1000);
    // 700 ms one way: the cookie comes back 1.4 s after it was made.
    let link = LinkConfig::with_latency(Duration::from_millis(700));
    let mut client = fast_config();
    client.rto_initial = Duration::from_secs(2);
    client.rto_max = Duration::from_secs(8);
    let mut net = network(7, client, server, link);
    let log = record(&mut net, |_| false);
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(now, ConnectRequest::new(addr_b(), PORT))
        .unwrap();
    let ok = net.run_until(Duration::from_secs(30), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
    });
    assert!(ok, "association not established after stale cookie");
    let l = log.lock().unwrap();
    let err = l
        .iter()
        .find(|r| r.has(ct::ERROR))
        .expect("stale cookie error");
    assert_eq!(cause_codes(&err.first(ct::ERROR).unwrap().value), vec![3]);
    // The second INIT carries a Cookie Preservative (type 9).
    let inits: Vec<_> = l.iter().filter(|r| r.has(ct::INIT)).collect();
    assert_eq!(inits.len(), 2);
    let params = &inits[1].chunks[0].value[16..];
    assert_eq!(u16::from_be_bytes([params[0], params[1]]), 9);
}

#[test]
fn a_forged_cookie_is_silently_discarded() {
    let mut net = network(8, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    let mut cookie = vec![1u8; 200];
    cookie[0] = 1;
    let pkt = build(
        40000,
        PORT,
        0x1234_5678,
        &[chunk(ct::COOKIE_ECHO, 0, &cookie)],
    );
    inject(&mut net, A, &pkt);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.node(B).endpoint.association_count(), 0);
    assert!(
        log.lock().unwrap().is_empty(),
        "a forged cookie got an answer"
    );
}

#[test]
fn simultaneous_connects_become_one_association_per_side() {
    let mut net = network(9, fast_config(), fast_config(), LinkConfig::default());
    net.node(A).endpoint.listen(PORT).unwrap();
    let now = net.now();
    let a = net
        .node(A)
        .endpoint
        .connect(
            now,
            ConnectRequest::new(addr_b(), PORT).with_local_port(PORT),
        )
        .unwrap();
    let b = net
        .node(B)
        .endpoint
        .connect(
            now,
            ConnectRequest::new(addr_a(), PORT).with_local_port(PORT),
        )
        .unwrap();
    let ok = net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
    });
    assert!(ok);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.node(A).endpoint.association_count(), 1);
    assert_eq!(net.node(B).endpoint.association_count(), 1);
    let connected = |n: &mut sctp_stack::sim::Node| {
        n.events
            .iter()
            .filter(|(_, e)| *e == Event::Connected)
            .count()
    };
    assert_eq!(connected(net.node(A)), 1);
    assert_eq!(connected(net.node(B)), 1);
    // Data flows both ways on the surviving associations.
    net.node(A)
        .endpoint
        .association(a)
        .unwrap()
        .send(0, Ppid(0), &b"x"[..], Default::default())
        .unwrap();
    net.node(B)
        .endpoint
        .association(b)
        .unwrap()
        .send(0, Ppid(0), &b"y"[..], Default::default())
        .unwrap();
    let ok = net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&Event::DataReadable) && n.node(B).has_event(&Event::DataReadable)
    });
    assert!(ok);
}

#[test]
fn a_peer_restart_is_detected_and_reported() {
    let mut p = Pair::connected(10, fast_config(), fast_config(), LinkConfig::default());
    let b = p.b();
    // A loses all state (process restart) and connects again from the same port.
    let old_port = p.assoc(A).status().unwrap().local_port;
    p.net.node(A).endpoint = endpoint(77, fast_config());
    let now = p.net.now();
    let a2 = p
        .net
        .node(A)
        .endpoint
        .connect(
            now,
            ConnectRequest::new(addr_b(), PORT).with_local_port(old_port),
        )
        .unwrap();
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Restarted)
    });
    assert!(ok, "restart not detected");
    // The server kept its association id and talks to the new incarnation.
    assert_eq!(p.net.node(B).endpoint.association_count(), 1);
    p.net
        .node(A)
        .endpoint
        .association(a2)
        .unwrap()
        .send(0, Ppid(0), &b"again"[..], Default::default())
        .unwrap();
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(B).has_event(&Event::DataReadable)
    });
    assert!(ok);
    let m = p
        .net
        .node(B)
        .endpoint
        .association(b)
        .unwrap()
        .recv()
        .unwrap();
    assert_eq!(m.data, b"again");
}

#[test]
fn an_init_adding_addresses_to_an_association_is_aborted() {
    let (mut p, log) =
        Pair::connected_recorded(11, fast_config(), fast_config(), LinkConfig::default());
    let port = p.assoc(A).status().unwrap().local_port;
    // An INIT from A's address and port listing a new address.
    let params = tlv(5, &[198, 18, 0, 99]);
    let init = build(
        port,
        PORT,
        0,
        &[chunk(
            ct::INIT,
            0,
            &init_value(0xabcd, 65536, 10, 10, 1, &params),
        )],
    );
    inject(&mut p.net, A, &init);
    p.net.run_for(Duration::from_millis(50));
    let l = log.lock().unwrap();
    let abort = l
        .iter()
        .rev()
        .find(|r| r.from == B && r.has(ct::ABORT))
        .expect("ABORT");
    assert_eq!(abort.vtag, 0xabcd);
    assert_eq!(
        cause_codes(&abort.first(ct::ABORT).unwrap().value),
        vec![11]
    );
    drop(l);
    // The existing association is untouched.
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
}

#[test]
fn an_unexpected_init_in_established_gets_an_init_ack_with_tie_tags_and_no_state_change() {
    let (mut p, log) =
        Pair::connected_recorded(12, fast_config(), fast_config(), LinkConfig::default());
    let port = p.assoc(A).status().unwrap().local_port;
    let init = build(
        port,
        PORT,
        0,
        &[chunk(
            ct::INIT,
            0,
            &init_value(0xbeef, 65536, 10, 10, 1, &[]),
        )],
    );
    inject(&mut p.net, A, &init);
    p.net.run_for(Duration::from_millis(50));
    let (b_tag, _) = tags(&log);
    let l = log.lock().unwrap();
    let ack = l
        .iter()
        .rev()
        .find(|r| r.from == B && r.has(ct::INIT_ACK))
        .expect("INIT ACK");
    assert_eq!(ack.vtag, 0xbeef);
    // §5.2.2: a new Initiate Tag, not the association's.
    let new_tag = u32::from_be_bytes(ack.chunks[0].value[0..4].try_into().unwrap());
    assert_ne!(new_tag, b_tag);
    drop(l);
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
}

#[test]
fn an_init_with_zero_streams_is_answered_with_abort() {
    let mut net = network(13, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    let init = build(
        40000,
        PORT,
        0,
        &[chunk(ct::INIT, 0, &init_value(0x77, 65536, 0, 10, 1, &[]))],
    );
    inject(&mut net, A, &init);
    net.run_for(Duration::from_millis(50));
    let l = log.lock().unwrap();
    assert_eq!(l.len(), 1);
    assert!(l[0].has(ct::ABORT));
    assert_eq!(l[0].vtag, 0x77);
    assert_eq!(net.node(B).endpoint.association_count(), 0);
}

#[test]
fn an_init_with_a_nonzero_tag_or_bundled_chunks_is_discarded() {
    let mut net = network(14, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    let init = chunk(ct::INIT, 0, &init_value(0x77, 65536, 10, 10, 1, &[]));
    inject(
        &mut net,
        A,
        &build(40000, PORT, 5, std::slice::from_ref(&init)),
    );
    inject(
        &mut net,
        A,
        &build(
            40000,
            PORT,
            0,
            &[init.clone(), chunk(ct::COOKIE_ACK, 0, &[])],
        ),
    );
    // An INIT with Initiate Tag 0 is discarded too (RFC 9260 §3.3.2).
    let zero = chunk(ct::INIT, 0, &init_value(0, 65536, 10, 10, 1, &[]));
    inject(&mut net, A, &build(40000, PORT, 0, &[zero]));
    net.run_for(Duration::from_millis(50));
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn unrecognized_init_parameters_with_the_report_bit_are_returned_in_the_init_ack() {
    let mut net = network(15, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    // 0x7123: "stop processing, report"; 0x3123: "stop, don't report" would end parsing.
    let mut params = tlv(0xC123, &[1, 2, 3, 4]);
    params.extend(tlv(0x8123, &[5]));
    let init = build(
        40000,
        PORT,
        0,
        &[chunk(
            ct::INIT,
            0,
            &init_value(0x99, 65536, 10, 10, 1, &params),
        )],
    );
    inject(&mut net, A, &init);
    net.run_for(Duration::from_millis(50));
    let l = log.lock().unwrap();
    let ack = &l[0];
    assert!(ack.has(ct::INIT_ACK));
    let params = &ack.chunks[0].value[16..];
    // Walk the parameters: a State Cookie, the PR-SCTP offer and one Unrecognized Parameter
    // holding 0xC123.
    let mut at = 0;
    let mut kinds = Vec::new();
    while at + 4 <= params.len() {
        let t = u16::from_be_bytes([params[at], params[at + 1]]);
        let len = u16::from_be_bytes([params[at + 2], params[at + 3]]) as usize;
        if t == 8 {
            kinds.push(u16::from_be_bytes([params[at + 4], params[at + 5]]));
        }
        kinds.push(t);
        at += (len + 3) & !3;
    }
    // The PR-SCTP offer (Supported Extensions, Forward-TSN-Supported, RFC 3758 §3.3.1)
    // comes between the cookie and the reports.
    assert_eq!(kinds, vec![7, 0x8008, 0xC000, 0xC123, 8]);
}

#[test]
fn a_cookie_ack_outside_cookie_echoed_is_ignored() {
    let (mut p, log) =
        Pair::connected_recorded(16, fast_config(), fast_config(), LinkConfig::default());
    let (_, a_tag) = tags(&log);
    let port = p.assoc(A).status().unwrap().local_port;
    let n_before = log.lock().unwrap().len();
    inject(
        &mut p.net,
        B,
        &build(PORT, port, a_tag, &[chunk(ct::COOKIE_ACK, 0, &[])]),
    );
    p.net.run_for(Duration::from_millis(10));
    assert!(p.net.node(A).events.is_empty());
    assert_eq!(p.assoc(A).state(), AssociationState::Established);
    assert_eq!(log.lock().unwrap().len(), n_before);
}
