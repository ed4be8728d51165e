//! Shutdown, abort and failure detection (RFC 9260 §8, §9).

mod assoc_util;

use std::time::Duration;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::{AbortReason, AssociationState, Event, LostReason, SendError};

fn events(p: &mut Pair, node: usize) -> Vec<Event> {
    p.net
        .node(node)
        .events
        .iter()
        .map(|(_, e)| e.clone())
        .collect()
}

#[test]
fn graceful_shutdown_delivers_queued_data_and_closes_both_sides() {
    let (mut p, log) =
        Pair::connected_recorded(40, fast_config(), fast_config(), LinkConfig::default());
    for i in 0..20u8 {
        p.send(A, 0, &[i; 2000]).unwrap();
    }
    p.assoc(A).shutdown();
    assert_eq!(p.assoc(A).state(), AssociationState::ShutdownPending);
    assert_eq!(p.send(A, 0, b"late"), Err(SendError::ShuttingDown));
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::Closed) && n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    // B read nothing during the shutdown, yet the data was acknowledged before SHUTDOWN
    // and is still readable until B's association closes; it was delivered in order.
    let b_events = events(&mut p, B);
    assert!(b_events.contains(&Event::ShutdownReceived));
    assert!(b_events.contains(&Event::ShutdownComplete));
    assert!(events(&mut p, A).contains(&Event::ShutdownComplete));
    let l = log.lock().unwrap();
    let order: Vec<u8> = l
        .iter()
        .flat_map(|r| r.chunks.iter().map(|c| c.ty))
        .filter(|t| [ct::SHUTDOWN, ct::SHUTDOWN_ACK, ct::SHUTDOWN_COMPLETE].contains(t))
        .collect();
    assert_eq!(
        order,
        vec![ct::SHUTDOWN, ct::SHUTDOWN_ACK, ct::SHUTDOWN_COMPLETE]
    );
    // No SHUTDOWN before the last DATA was acknowledged.
    let last_data = l
        .iter()
        .filter(|r| r.has(ct::DATA))
        .map(|r| r.now)
        .max()
        .unwrap();
    let shutdown = l.iter().find(|r| r.has(ct::SHUTDOWN)).unwrap().now;
    assert!(shutdown > last_data);
}

#[test]
fn data_received_before_the_close_stays_readable_after_it() {
    let mut p = Pair::connected(41, fast_config(), fast_config(), LinkConfig::default());
    p.send(A, 0, b"last").unwrap();
    p.send(A, 0, b"words").unwrap();
    p.assoc(A).shutdown();
    let b = p.b();
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    assert_eq!(p.net.node(B).endpoint.association_count(), 0);
    let mut assoc = p
        .net
        .node(B)
        .endpoint
        .association(b)
        .expect("kept for its unread data");
    assert_eq!(assoc.state(), AssociationState::Closed);
    assert_eq!(assoc.recv().unwrap().data, b"last");
    assert_eq!(assoc.recv().unwrap().data, b"words");
    assert!(assoc.recv().is_none());
    // Once drained, the id is gone.
    assert!(p.net.node(B).endpoint.association(b).is_none());
}

#[test]
fn simultaneous_shutdowns_complete() {
    let mut p = Pair::connected(42, fast_config(), fast_config(), LinkConfig::default());
    p.assoc(A).shutdown();
    p.assoc(B).shutdown();
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::Closed) && n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    assert_eq!(p.net.node(A).endpoint.association_count(), 0);
    assert_eq!(p.net.node(B).endpoint.association_count(), 0);
}

#[test]
fn a_lost_shutdown_is_retransmitted_by_t2() {
    let mut p = Pair::connected(43, fast_config(), fast_config(), LinkConfig::default());
    let mut dropped = 0;
    let log = record(&mut p.net, move |r| {
        if r.has(ct::SHUTDOWN) && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    });
    p.assoc(A).shutdown();
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::Closed) && n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    let l = log.lock().unwrap();
    let times: Vec<_> = l
        .iter()
        .filter(|r| r.has(ct::SHUTDOWN))
        .map(|r| r.now)
        .collect();
    assert_eq!(times.len(), 3);
    // T2 backs off like T3.
    assert_eq!(
        (times[2] - times[1]).as_micros(),
        2 * (times[1] - times[0]).as_micros()
    );
}

#[test]
fn a_lost_shutdown_ack_is_retransmitted_in_shutdown_ack_sent() {
    let mut p = Pair::connected(44, fast_config(), fast_config(), LinkConfig::default());
    let mut dropped = false;
    let log = record(&mut p.net, move |r| {
        if r.has(ct::SHUTDOWN_ACK) && !dropped {
            dropped = true;
            return true;
        }
        false
    });
    p.assoc(A).shutdown();
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::Closed) && n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    let n = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.has(ct::SHUTDOWN_ACK))
        .count();
    assert!(n >= 2);
}

#[test]
fn shutdown_gives_up_after_association_max_retrans() {
    let mut ca = fast_config();
    ca.association_max_retrans = 3;
    let mut p = Pair::connected(45, ca, fast_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    p.assoc(A).shutdown();
    let ok = p.net.run_until(Duration::from_secs(9), |n| {
        n.node(A).has_event(&Event::Closed)
    });
    assert!(ok);
    assert!(events(&mut p, A).contains(&Event::CommunicationLost(LostReason::MaxRetransmissions)));
}

#[test]
fn the_t5_guard_aborts_a_shutdown_that_never_ends() {
    let mut ca = fast_config();
    ca.shutdown_guard = Duration::from_secs(2);
    ca.association_max_retrans = 100;
    let mut p = Pair::connected(46, ca, fast_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    p.assoc(A).shutdown();
    let t0 = p.net.now();
    let ok = p.net.run_until(Duration::from_secs(10), |n| {
        n.node(A).has_event(&Event::Closed)
    });
    assert!(ok);
    assert!(p.net.now() - t0 >= Duration::from_secs(2));
    assert!(
        events(&mut p, A)
            .iter()
            .any(|e| matches!(e, Event::Aborted(AbortReason::Local(_))))
    );
}

#[test]
fn abort_reaches_the_peer_with_the_user_cause() {
    let mut p = Pair::connected(47, fast_config(), fast_config(), LinkConfig::default());
    p.assoc(A).abort(b"bye");
    assert_eq!(p.net.node(A).endpoint.association_count(), 0);
    let ok = p.net.run_until(Duration::from_secs(1), |n| {
        n.node(B).has_event(&Event::Closed)
    });
    assert!(ok);
    let ev = events(&mut p, B);
    let causes = ev
        .iter()
        .find_map(|e| match e {
            Event::Aborted(AbortReason::Peer(c)) => Some(c.clone()),
            _ => None,
        })
        .expect("Aborted event");
    assert_eq!(causes[0].code.get(), 12);
    assert_eq!(causes[0].info, b"bye");
}

#[test]
fn a_dead_peer_is_detected_by_t3_and_reported_as_communication_lost() {
    let mut ca = fast_config();
    ca.association_max_retrans = 4;
    let mut p = Pair::connected(48, ca, fast_config(), LinkConfig::default());
    p.net.link_mut(A, B).up = false;
    p.send(A, 0, b"into the void").unwrap();
    let ok = p.net.run_until(Duration::from_secs(30), |n| {
        n.node(A).has_event(&Event::Closed)
    });
    assert!(ok);
    assert!(events(&mut p, A).contains(&Event::CommunicationLost(LostReason::MaxRetransmissions)));
}

#[test]
fn an_idle_dead_peer_is_detected_by_heartbeats() {
    let mut ca = fast_config();
    ca.association_max_retrans = 3;
    ca.heartbeat_interval = Some(Duration::from_secs(1));
    let mut p = Pair::connected(49, ca, fast_config(), LinkConfig::default());
    let log = record(&mut p.net, |_| false);
    p.net.run_for(Duration::from_secs(5));
    // Heartbeats go out on the idle path and are answered.
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.from == A && r.has(ct::HEARTBEAT))
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.from == B && r.has(ct::HEARTBEAT_ACK))
    );
    assert!(p.net.node(A).events.is_empty());
    p.net.link_mut(B, A).up = false;
    let ok = p.net.run_until(Duration::from_secs(60), |n| {
        n.node(A).has_event(&Event::Closed)
    });
    assert!(ok);
    assert!(events(&mut p, A).contains(&Event::CommunicationLost(LostReason::MaxRetransmissions)));
}

#[test]
fn heartbeat_acks_measure_the_rtt() {
    let mut ca = fast_config();
    ca.heartbeat_interval = Some(Duration::from_secs(1));
    let link = LinkConfig::with_latency(Duration::from_millis(40));
    let mut p = Pair::connected(50, ca, fast_config(), link);
    p.net.run_for(Duration::from_secs(5));
    let srtt = p.assoc(A).status().unwrap().srtt.expect("measured");
    assert!(
        srtt >= Duration::from_millis(75) && srtt <= Duration::from_millis(85),
        "{srtt:?}"
    );
}

#[test]
fn autoclose_shuts_an_idle_association_down() {
    let mut ca = fast_config();
    ca.autoclose = Some(Duration::from_secs(3));
    let mut p = Pair::connected(51, ca, fast_config(), LinkConfig::default());
    p.send(A, 0, b"x").unwrap();
    p.net.run_for(Duration::from_secs(2));
    assert_eq!(p.net.node(A).endpoint.association_count(), 1);
    let ok = p.net.run_until(Duration::from_secs(5), |n| {
        n.node(A).has_event(&Event::ShutdownComplete)
    });
    assert!(ok);
}
