//! Packet-level rules checked with hand-built peer packets: verification tags (RFC 9260
//! §8.5), out-of-the-blue packets (§8.4), unknown chunk types (§3.2), invalid streams
//! (§6.5), empty DATA (§6.2).

mod assoc_util;

use std::time::Duration;

use assoc_util::*;
use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::{AbortReason, AssociationState, Event};

fn setup(
    seed: u64,
) -> (
    Pair,
    std::sync::Arc<std::sync::Mutex<Vec<Rec>>>,
    u32,
    u32,
    u16,
) {
    let (mut p, log) =
        Pair::connected_recorded(seed, fast_config(), fast_config(), LinkConfig::default());
    let (b_tag, a_tag) = tags(&log);
    let port = p.assoc(A).status().unwrap().local_port;
    log.lock().unwrap().clear();
    (p, log, b_tag, a_tag, port)
}

fn replies_from(log: &std::sync::Arc<std::sync::Mutex<Vec<Rec>>>, node: usize) -> Vec<Rec> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == node)
        .cloned()
        .collect()
}

#[test]
fn a_packet_with_a_wrong_verification_tag_is_discarded() {
    let (mut p, log, b_tag, _, port) = setup(60);
    let data = chunk(ct::DATA, 0x03, &data_value(12345, 0, 0, 0, b"spoofed"));
    inject(&mut p.net, A, &build(port, PORT, b_tag ^ 1, &[data]));
    p.net.run_for(Duration::from_millis(500));
    assert!(p.recv_all(B).is_empty());
    assert!(replies_from(&log, B).iter().all(|r| !r.has(ct::SACK)));
}

#[test]
fn an_abort_with_a_wrong_tag_is_ignored_and_with_the_t_bit_and_peer_tag_accepted() {
    let (mut p, _log, b_tag, a_tag, port) = setup(61);
    // T bit set but B's own tag instead of A's: ignored.
    inject(
        &mut p.net,
        A,
        &build(port, PORT, b_tag, &[chunk(ct::ABORT, 1, &[])]),
    );
    // T bit clear with A's tag: ignored too.
    inject(
        &mut p.net,
        A,
        &build(port, PORT, a_tag, &[chunk(ct::ABORT, 0, &[])]),
    );
    p.net.run_for(Duration::from_millis(10));
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
    // T bit with the peer's tag (reflected): accepted (§8.5.1 B).
    inject(
        &mut p.net,
        A,
        &build(port, PORT, a_tag, &[chunk(ct::ABORT, 1, &[])]),
    );
    p.net.run_for(Duration::from_millis(10));
    assert!(
        p.net
            .node(B)
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Aborted(AbortReason::Peer(_))))
    );
}

#[test]
fn an_out_of_the_blue_packet_is_answered_with_a_reflected_abort() {
    let mut net = network(62, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    let data = chunk(ct::DATA, 0x03, &data_value(1, 0, 0, 0, b"who?"));
    inject(&mut net, A, &build(40000, PORT, 0xfeed, &[data]));
    net.run_for(Duration::from_millis(10));
    let r = replies_from(&log, B);
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ct::ABORT));
    // §8.4 (8): the packet's tag, reflected with the T bit.
    assert_eq!(r[0].vtag, 0xfeed);
    assert_eq!(r[0].chunks[0].flags & 1, 1);
}

#[test]
fn with_a_shared_transport_only_packets_for_our_ports_are_answered() {
    // B shares its transport with other SCTP stacks (raw IP): it answers for the port it
    // listens on and the ports its associations use, never for anyone else's.
    let mut net = Network::new(65);
    net.add_node(endpoint(66, fast_config()), &[addr_a()]);
    let mut cb = sctp_stack::EndpointConfig::with_seed([67; 32]);
    cb.association = fast_config();
    cb.answer_foreign_ports = false;
    net.add_node(sctp_stack::Endpoint::new(cb).unwrap(), &[addr_b()]);
    net.set_links(A, B, LinkConfig::default());
    net.node(B).endpoint.listen(PORT).unwrap();
    let log = record(&mut net, |_| false);
    let who = || chunk(ct::DATA, 0x03, &data_value(1, 0, 0, 0, b"who?"));
    // Another process's port: neither the stray DATA nor an INIT gets an answer.
    inject(&mut net, A, &build(40000, 40001, 0xfeed, &[who()]));
    let init = chunk(ct::INIT, 0, &init_value(0x1234, 65536, 10, 10, 1, &[]));
    inject(&mut net, A, &build(40000, 40001, 0, &[init]));
    net.run_for(Duration::from_millis(10));
    assert!(replies_from(&log, B).is_empty());
    assert_eq!(net.node(B).endpoint.stats().foreign_port, 2);
    // Our listening port: the out-of-the-blue DATA is answered as RFC 9260 §8.4 says.
    inject(&mut net, A, &build(40000, PORT, 0xfeed, &[who()]));
    net.run_for(Duration::from_millis(10));
    let r = replies_from(&log, B);
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ct::ABORT));
}

#[test]
fn out_of_the_blue_abort_shutdown_complete_and_cookie_ack_get_no_answer() {
    let mut net = network(63, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    for ty in [ct::ABORT, ct::SHUTDOWN_COMPLETE, ct::COOKIE_ACK] {
        inject(
            &mut net,
            A,
            &build(40000, PORT, 0xfeed, &[chunk(ty, 0, &[])]),
        );
    }
    // An ERROR with a Stale Cookie cause is not answered either (§8.4 (7)).
    let stale = tlv(3, &[0, 0, 0, 1]);
    inject(
        &mut net,
        A,
        &build(40000, PORT, 0xfeed, &[chunk(ct::ERROR, 0, &stale)]),
    );
    net.run_for(Duration::from_millis(10));
    assert!(replies_from(&log, B).is_empty());
}

#[test]
fn an_out_of_the_blue_shutdown_ack_is_answered_with_shutdown_complete() {
    let mut net = network(64, fast_config(), fast_config(), LinkConfig::default());
    let log = record(&mut net, |_| false);
    inject(
        &mut net,
        A,
        &build(40000, PORT, 0xabc, &[chunk(ct::SHUTDOWN_ACK, 0, &[])]),
    );
    net.run_for(Duration::from_millis(10));
    let r = replies_from(&log, B);
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ct::SHUTDOWN_COMPLETE));
    assert_eq!(r[0].vtag, 0xabc);
    assert_eq!(r[0].chunks[0].flags & 1, 1);
}

#[test]
fn unknown_chunk_types_follow_their_action_bits() {
    let (mut p, log, b_tag, _, port) = setup(65);
    let d =
        |tsn: u32, ssn: u16, text: &[u8]| chunk(ct::DATA, 0x03, &data_value(tsn, 0, ssn, 0, text));
    // Peer TSNs: find the next expected one from B's view by sending in order after the
    // handshake (the client's initial TSN is unknown here, so read it from B's SACKs).
    p.send(A, 0, b"probe").unwrap();
    p.net.run_for(Duration::from_millis(500));
    p.recv_all(B);
    let cum = {
        let l = log.lock().unwrap();
        let sack = l
            .iter()
            .rev()
            .find(|r| r.from == B && r.has(ct::SACK))
            .unwrap();
        u32::from_be_bytes(
            sack.first(ct::SACK).unwrap().value[0..4]
                .try_into()
                .unwrap(),
        )
    };
    log.lock().unwrap().clear();
    // A must not see B's SACKs for the TSNs injected in its name.
    p.net.link_mut(B, A).up = false;
    // 0x3F (00): stop, discard the rest of the packet silently.
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[chunk(0x3F, 0, &[1]), d(cum + 1, 1, b"lost")],
        ),
    );
    p.net.run_for(Duration::from_millis(300));
    assert!(p.recv_all(B).is_empty());
    assert!(replies_from(&log, B).iter().all(|r| !r.has(ct::ERROR)));
    // 0xBF (10): skip silently, process the rest.
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[chunk(0xBF, 0, &[1]), d(cum + 1, 1, b"one")],
        ),
    );
    p.net.run_for(Duration::from_millis(300));
    assert_eq!(p.recv_all(B)[0].data, b"one");
    assert!(replies_from(&log, B).iter().all(|r| !r.has(ct::ERROR)));
    // 0xFF (11): skip, process the rest, report Unrecognized Chunk Type.
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[chunk(0xFF, 0, &[1]), d(cum + 2, 2, b"two")],
        ),
    );
    p.net.run_for(Duration::from_millis(300));
    assert_eq!(p.recv_all(B)[0].data, b"two");
    let errs: Vec<_> = replies_from(&log, B)
        .into_iter()
        .filter(|r| r.has(ct::ERROR))
        .collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        cause_codes(&errs[0].first(ct::ERROR).unwrap().value),
        vec![6]
    );
    // 0x7F (01): stop, discard the rest, report.
    log.lock().unwrap().clear();
    inject(
        &mut p.net,
        A,
        &build(
            port,
            PORT,
            b_tag,
            &[chunk(0x7F, 0, &[1]), d(cum + 3, 3, b"three")],
        ),
    );
    p.net.run_for(Duration::from_millis(300));
    assert!(p.recv_all(B).is_empty());
    let errs: Vec<_> = replies_from(&log, B)
        .into_iter()
        .filter(|r| r.has(ct::ERROR))
        .collect();
    assert_eq!(errs.len(), 1);
    // The association lives on.
    assert_eq!(p.assoc(B).state(), AssociationState::Established);
}

#[test]
fn data_on_an_invalid_stream_is_acknowledged_and_reported() {
    let (mut p, log, b_tag, _, port) = setup(66);
    p.send(A, 0, b"probe").unwrap();
    p.net.run_for(Duration::from_millis(500));
    p.recv_all(B);
    let cum = {
        let l = log.lock().unwrap();
        let sack = l
            .iter()
            .rev()
            .find(|r| r.from == B && r.has(ct::SACK))
            .unwrap();
        u32::from_be_bytes(
            sack.first(ct::SACK).unwrap().value[0..4]
                .try_into()
                .unwrap(),
        )
    };
    log.lock().unwrap().clear();
    p.net.link_mut(B, A).up = false;
    // A offered 10 outbound streams, so B accepts streams 0..10 only.
    let bad = chunk(
        ct::DATA,
        0x03,
        &data_value(cum + 1, 10, 0, 0, b"bad stream"),
    );
    inject(&mut p.net, A, &build(port, PORT, b_tag, &[bad]));
    p.net.run_for(Duration::from_millis(300));
    assert!(p.recv_all(B).is_empty());
    let l = replies_from(&log, B);
    let err = l.iter().find(|r| r.has(ct::ERROR)).expect("ERROR");
    assert_eq!(cause_codes(&err.first(ct::ERROR).unwrap().value), vec![1]);
    // §6.5: the TSN is acknowledged.
    let sack = l.iter().rev().find(|r| r.has(ct::SACK)).unwrap();
    let acked = u32::from_be_bytes(
        sack.first(ct::SACK).unwrap().value[0..4]
            .try_into()
            .unwrap(),
    );
    assert_eq!(acked, cum + 1);
}

#[test]
fn an_error_chunk_is_reported_to_the_user() {
    let (mut p, _log, _, a_tag, port) = setup(71);
    let cause = tlv(1, &[0, 7, 0, 0]);
    inject(
        &mut p.net,
        B,
        &build(PORT, port, a_tag, &[chunk(ct::ERROR, 0, &cause)]),
    );
    p.net.run_for(Duration::from_millis(10));
    assert!(p.net.node(A).events.iter().any(
        |(_, e)| matches!(e, Event::PeerError(c) if c.code.get() == 1 && c.info == [0, 7, 0, 0])
    ));
    assert_eq!(p.assoc(A).state(), AssociationState::Established);
}

#[test]
fn an_empty_data_chunk_aborts_the_association_with_no_user_data() {
    let (mut p, log, b_tag, _, port) = setup(67);
    let empty = chunk(ct::DATA, 0x03, &data_value(1, 0, 0, 0, b""));
    inject(&mut p.net, A, &build(port, PORT, b_tag, &[empty]));
    p.net.run_for(Duration::from_millis(50));
    let abort = replies_from(&log, B)
        .into_iter()
        .find(|r| r.has(ct::ABORT))
        .expect("ABORT");
    assert_eq!(cause_codes(&abort.first(ct::ABORT).unwrap().value), vec![9]);
    assert!(p.net.node(B).has_event(&Event::Closed));
}

#[test]
fn a_sack_for_data_never_sent_aborts_with_protocol_violation() {
    let (mut p, log, b_tag, _, port) = setup(68);
    let mut v = Vec::new();
    v.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    v.extend_from_slice(&65536u32.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    inject(
        &mut p.net,
        A,
        &build(port, PORT, b_tag, &[chunk(ct::SACK, 0, &v)]),
    );
    p.net.run_for(Duration::from_millis(50));
    let abort = replies_from(&log, B)
        .into_iter()
        .find(|r| r.has(ct::ABORT))
        .expect("ABORT");
    assert_eq!(
        cause_codes(&abort.first(ct::ABORT).unwrap().value),
        vec![13]
    );
}

#[test]
fn a_heartbeat_is_echoed_unchanged() {
    let (mut p, log, b_tag, _, port) = setup(69);
    let info = tlv(1, b"opaque heartbeat info");
    inject(
        &mut p.net,
        A,
        &build(port, PORT, b_tag, &[chunk(ct::HEARTBEAT, 0, &info)]),
    );
    p.net.run_for(Duration::from_millis(10));
    let ack = replies_from(&log, B)
        .into_iter()
        .find(|r| r.has(ct::HEARTBEAT_ACK))
        .unwrap();
    // The Heartbeat Info parameter comes back as sent (the chunk length excludes padding).
    assert_eq!(
        ack.first(ct::HEARTBEAT_ACK).unwrap().value,
        info[..4 + 21].to_vec()
    );
}

#[test]
fn a_shutdown_ack_in_cookie_wait_is_treated_as_out_of_the_blue() {
    let mut ca = fast_config();
    ca.rto_initial = std::time::Duration::from_secs(2);
    let mut net = network(70, ca, fast_config(), LinkConfig::default());
    // B never answers: A stays in COOKIE-WAIT.
    net.link_mut(A, B).up = false;
    let log = record(&mut net, |_| false);
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(
            now,
            sctp_stack::ConnectRequest::new(addr_b(), PORT).with_local_port(4000),
        )
        .unwrap();
    net.run_for(Duration::from_millis(10));
    inject(
        &mut net,
        B,
        &build(PORT, 4000, 0x5151, &[chunk(ct::SHUTDOWN_ACK, 0, &[])]),
    );
    net.run_for(Duration::from_millis(10));
    let sc = replies_from(&log, A)
        .into_iter()
        .find(|r| r.has(ct::SHUTDOWN_COMPLETE));
    let sc = sc.expect("SHUTDOWN COMPLETE");
    assert_eq!(sc.vtag, 0x5151);
    assert_eq!(sc.chunks[0].flags & 1, 1);
}

#[test]
fn set_primary_accepts_only_an_active_peer_address() {
    let (mut p, _log, _, _, _) = setup(72);
    assert_eq!(p.assoc(A).set_primary(addr_b()), Ok(()));
    assert_eq!(
        p.assoc(A).set_primary("198.18.9.9".parse().unwrap()),
        Err(sctp_stack::PathError::UnknownAddress)
    );
}

#[test]
fn an_init_ack_outside_cookie_wait_is_discarded() {
    let (mut p, log, _, a_tag, port) = setup(73);
    let ack = init_value(0x1111, 65536, 10, 10, 1, &tlv(7, &[0; 40]));
    inject(
        &mut p.net,
        B,
        &build(PORT, port, a_tag, &[chunk(ct::INIT_ACK, 0, &ack)]),
    );
    p.net.run_for(Duration::from_millis(50));
    // §5.2.3: no COOKIE ECHO, no state change.
    assert!(
        replies_from(&log, A)
            .iter()
            .all(|r| !r.has(ct::COOKIE_ECHO))
    );
    assert_eq!(p.assoc(A).state(), AssociationState::Established);
    assert!(p.net.node(A).events.is_empty());
}

#[test]
fn an_init_in_shutdown_ack_sent_is_answered_by_retransmitting_shutdown_ack() {
    let (mut p, log) =
        Pair::connected_recorded(74, fast_config(), fast_config(), LinkConfig::default());
    let port = p.assoc(A).status().unwrap().local_port;
    // A shuts down; B's SHUTDOWN COMPLETE never arrives... rather B's side: drop the
    // SHUTDOWN COMPLETE so B stays in SHUTDOWN-ACK-SENT.
    p.net.set_filter(|s| {
        let (_, _, _, chunks) = parse(s.data);
        !chunks.iter().any(|c| c.ty == ct::SHUTDOWN_COMPLETE)
    });
    p.assoc(A).shutdown();
    p.net.run_for(Duration::from_millis(25));
    assert_eq!(p.assoc(B).state(), AssociationState::ShutdownAckSent);
    let log2 = record(&mut p.net, |_| false);
    let init = init_value(0x4242, 65536, 10, 10, 1, &[]);
    inject(
        &mut p.net,
        A,
        &build(port, PORT, 0, &[chunk(ct::INIT, 0, &init)]),
    );
    p.net.run_for(Duration::from_millis(5));
    let r = replies_from(&log2, B);
    assert!(r.iter().any(|r| r.has(ct::SHUTDOWN_ACK)));
    assert!(r.iter().all(|r| !r.has(ct::INIT_ACK)));
    drop(log);
}

#[test]
fn data_received_in_shutdown_sent_is_answered_with_sack_and_shutdown_at_once() {
    let (mut p, _log) =
        Pair::connected_recorded(75, fast_config(), fast_config(), LinkConfig::default());
    // B has data in flight when A shuts down.
    p.send(B, 0, &[9u8; 500]).unwrap();
    p.assoc(A).shutdown();
    let log = record(&mut p.net, |_| false);
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&sctp_stack::Event::Closed)
    });
    assert!(ok);
    let l = log.lock().unwrap();
    let data = l
        .iter()
        .find(|r| r.from == B && r.has(ct::DATA))
        .expect("DATA");
    let answer = l
        .iter()
        .find(|r| {
            r.from == A && r.now >= data.now + Duration::from_millis(10) && r.has(ct::SHUTDOWN)
        })
        .expect("SHUTDOWN after DATA");
    assert!(answer.has(ct::SACK));
    assert_eq!(answer.now, data.now + Duration::from_millis(10));
}

#[test]
fn without_nodelay_small_messages_wait_while_data_is_outstanding() {
    let mut ca = fast_config();
    ca.nodelay = false;
    // RFC defaults for the RTO, above the peer's delayed SACK: no retransmissions.
    ca.rto_initial = Duration::from_secs(1);
    ca.rto_min = Duration::from_secs(1);
    let mut p = Pair::connected(76, ca, fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    for _ in 0..50 {
        p.send(A, 0, &[1u8; 20]).unwrap();
        p.net.run_for(Duration::from_millis(1));
    }
    p.net.run_for(Duration::from_secs(1));
    let l = log.lock().unwrap();
    let data_packets = l.iter().filter(|r| r.from == A && r.has(ct::DATA)).count();
    let chunks: usize = l
        .iter()
        .filter(|r| r.from == A)
        .map(|r| r.chunks.iter().filter(|c| c.ty == ct::DATA).count())
        .sum();
    assert_eq!(chunks, 50);
    // Nagle: one packet per round trip instead of one per message.
    assert!(
        data_packets < 10,
        "{data_packets} packets for 50 small messages"
    );
}

#[test]
fn no_heartbeat_is_sent_on_a_path_busy_with_data() {
    let mut ca = fast_config();
    ca.heartbeat_interval = Some(Duration::from_millis(500));
    let mut p = Pair::connected(77, ca, fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    for _ in 0..100 {
        p.send(A, 0, &[1u8; 100]).unwrap();
        p.net.run_for(Duration::from_millis(50));
        p.recv_all(B);
    }
    let l = log.lock().unwrap();
    assert!(l.iter().all(|r| !(r.from == A && r.has(ct::HEARTBEAT))));
}

/// Regression (endpoint fuzzer): a report owed during the handshake made the endpoint's
/// send queue spin in `poll_transmit`.
#[test]
fn an_unknown_chunk_during_cookie_wait_does_not_stall_poll_transmit() {
    let mut net = network(78, fast_config(), fast_config(), LinkConfig::default());
    net.link_mut(A, B).up = false;
    let log = record(&mut net, |_| false);
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(
            now,
            sctp_stack::ConnectRequest::new(addr_b(), PORT).with_local_port(4001),
        )
        .unwrap();
    net.run_for(Duration::from_millis(1));
    let init = log.lock().unwrap()[0].chunks[0].value.clone();
    let a_tag = u32::from_be_bytes(init[0..4].try_into().unwrap());
    inject(
        &mut net,
        B,
        &build(PORT, 4001, a_tag, &[chunk(0xFF, 0, &[1, 2, 3])]),
    );
    // Must return: nothing can be sent in COOKIE-WAIT but the INIT.
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.node(A).endpoint.association_count(), 1);
}
