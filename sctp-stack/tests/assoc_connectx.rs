//! Connecting to a list of peer addresses (like `sctp_connectx`, RFC 6458 §9.9): the INIT
//! goes to the first address, each T1-init expiry sends it to the next (RFC 9260 §6.4), an
//! INIT ACK from any of them completes the handshake, and every given address is a peer
//! address of the association (RFC 9260 §5.4 (1)) besides those the INIT ACK lists.

mod assoc_util;

use std::net::IpAddr;
use std::time::Duration;

use assoc_util::{A, B, PORT, Rec, a1, b1, b2, ct, endpoint_at, fast_config, ip, record};
use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::{AssociationId, ConnectError, ConnectRequest, Event, PathState};

/// An address nobody has.
fn nowhere() -> IpAddr {
    ip("198.18.7.7")
}

/// A single-homed A and a dual-homed B listening; every packet is recorded.
fn network(seed: u64) -> (Network, std::sync::Arc<std::sync::Mutex<Vec<Rec>>>) {
    let mut net = Network::new(seed);
    net.add_node(endpoint_at(seed as u8, fast_config(), vec![a1()]), &[a1()]);
    net.add_node(
        endpoint_at(
            (seed as u8).wrapping_add(100),
            fast_config(),
            vec![b1(), b2()],
        ),
        &[b1(), b2()],
    );
    net.set_links(A, B, LinkConfig::with_latency(Duration::from_millis(10)));
    net.node(B).endpoint.listen(PORT).unwrap();
    let log = record(&mut net, |_| false);
    (net, log)
}

fn connect(net: &mut Network, remotes: &[IpAddr]) -> AssociationId {
    let now = net.now();
    let req = ConnectRequest::to_any_of(remotes, PORT).unwrap();
    net.node(A).endpoint.connect(now, req).unwrap()
}

fn run_to_connected(net: &mut Network) {
    let ok = net.run_until(Duration::from_secs(30), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
    });
    assert!(ok, "handshake did not complete");
}

/// Destinations of the INITs A sent, in order, with their send times.
fn init_destinations(log: &std::sync::Arc<std::sync::Mutex<Vec<Rec>>>) -> Vec<IpAddr> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == A && r.has(ct::INIT))
        .map(|r| r.dst)
        .collect()
}

#[test]
fn with_the_first_address_unreachable_the_init_goes_to_the_next_after_t1_init() {
    let (mut net, log) = network(41);
    net.set_address_up(b1(), false);
    let t0 = net.now();
    let a = connect(&mut net, &[b1(), b2()]);
    run_to_connected(&mut net);
    let inits = init_destinations(&log);
    assert_eq!(inits, vec![b1(), b2()], "INIT to the first, then the next");
    // The second INIT left when T1-init (the initial RTO) expired.
    let second_at = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == A && r.has(ct::INIT))
        .nth(1)
        .map(|r| r.now)
        .unwrap();
    assert_eq!(second_at, t0 + fast_config().rto_initial);
    let st = net
        .node(A)
        .endpoint
        .association(a)
        .unwrap()
        .status()
        .unwrap();
    assert_eq!(st.primary, b2(), "the address that answered is the primary");
    assert!(st.peer_addresses.contains(&b1()) && st.peer_addresses.contains(&b2()));
    assert_eq!(st.peer_addresses.len(), 2);
    // The INIT ACK came from b2 and the COOKIE ECHO went there.
    let echo_dst = log
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.from == A && r.has(ct::COOKIE_ECHO))
        .map(|r| r.dst);
    assert_eq!(echo_dst, Some(b2()));
}

#[test]
fn every_given_address_is_a_peer_address_even_if_the_init_ack_does_not_list_it() {
    let (mut net, _log) = network(42);
    let a = connect(&mut net, &[nowhere(), b1()]);
    run_to_connected(&mut net);
    let st = net
        .node(A)
        .endpoint
        .association(a)
        .unwrap()
        .status()
        .unwrap();
    assert_eq!(st.primary, b1());
    let mut peers = st.peer_addresses.clone();
    peers.sort();
    let mut want = vec![b1(), b2(), nowhere()];
    want.sort();
    assert_eq!(peers, want, "given addresses plus those of the INIT ACK");
    // The unreachable given address is found dead by heartbeats and data keeps flowing
    // on the primary.
    net.run_for(Duration::from_secs(60));
    let st = net
        .node(A)
        .endpoint
        .association(a)
        .unwrap()
        .status()
        .unwrap();
    let dead = st.paths.iter().find(|p| p.remote == nowhere()).unwrap();
    assert_eq!(dead.state, PathState::Inactive);
    assert_eq!(st.primary, b1());
}

#[test]
fn when_the_first_address_answers_the_alternates_are_still_peer_addresses() {
    let (mut net, log) = network(43);
    let a = connect(&mut net, &[b1(), nowhere()]);
    run_to_connected(&mut net);
    assert_eq!(init_destinations(&log), vec![b1()]);
    let st = net
        .node(A)
        .endpoint
        .association(a)
        .unwrap()
        .status()
        .unwrap();
    assert_eq!(st.primary, b1());
    assert!(st.peer_addresses.contains(&nowhere()));
    assert!(st.peer_addresses.contains(&b2()));
}

#[test]
fn the_handshake_gives_up_after_max_init_retransmits_over_all_addresses() {
    let (mut net, log) = network(44);
    net.set_address_up(b1(), false);
    net.set_address_up(b2(), false);
    let _a = connect(&mut net, &[b1(), b2()]);
    net.run_for(Duration::from_secs(120));
    assert!(!net.node(A).has_event(&Event::Connected));
    let inits = init_destinations(&log);
    assert_eq!(inits.len(), fast_config().max_init_retransmits as usize + 1);
    // They alternate between the two addresses.
    for (i, d) in inits.iter().enumerate() {
        assert_eq!(*d, if i % 2 == 0 { b1() } else { b2() });
    }
}

#[test]
fn an_invalid_alternate_is_refused() {
    let (mut net, _log) = network(45);
    let now = net.now();
    let mut req = ConnectRequest::new(b1(), PORT);
    req.alternates = vec![ip("224.0.0.1")];
    assert_eq!(
        net.node(A).endpoint.connect(now, req).err(),
        Some(ConnectError::InvalidRemote)
    );
    assert!(ConnectRequest::to_any_of(&[], PORT).is_none());
}
