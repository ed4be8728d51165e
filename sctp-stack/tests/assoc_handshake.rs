//! Association setup (RFC 9260 §5.1) over the simulated network.

mod common;

use std::time::Duration;

use common::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::{AssociationState, Event};

#[test]
fn four_way_handshake_connects_both_sides() {
    let mut p = Pair::connected(1, fast_config(), fast_config(), LinkConfig::default());
    let a = p.a;
    assert_eq!(
        p.net.node(A).endpoint.association(a).unwrap().state(),
        AssociationState::Established
    );
    let b = p.b();
    assert_eq!(
        p.net.node(B).endpoint.association(b).unwrap().state(),
        AssociationState::Established
    );
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
