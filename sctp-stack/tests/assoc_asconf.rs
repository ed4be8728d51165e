//! Dynamic address reconfiguration (Add-IP, RFC 5061) with AUTH (RFC 4895) on the simulated
//! network: adding, deleting and making primary an address during a transfer, the peer's
//! refusals (last address, source address), T4 retransmission, the cached ACK of a repeated
//! ASCONF, and the rejection of unauthenticated or forged ASCONFs.
#![cfg(feature = "sim")]

mod assoc_util;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assoc_util::auth::{
    ASCONF, ASCONF_ACK, AUTH, ack_responses, asconf_value, association_key, build_authenticated,
    key_vector, request,
};
use assoc_util::{A, B, PORT, Rec, build, chunk, ct, fast_config, record};
use proptest::prelude::*;
use sctp_stack::sim::{LinkConfig, Network};
use sctp_stack::wire::{CauseCode, Ppid};
use sctp_stack::{
    AddressRequest, AsconfError, AssociationConfig, AssociationId, ConnectRequest, Endpoint,
    EndpointConfig, Event, PathState, PeerAddressChange, SendOptions,
};

const ADD: u16 = 0xC001;
const DELETE: u16 = 0xC002;
const SET_PRIMARY: u16 = 0xC004;
const SUCCESS: u16 = 0xC005;
const ERROR_IND: u16 = 0xC003;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn a1() -> IpAddr {
    IpAddr::V4(v4("198.18.0.1"))
}
fn a2() -> IpAddr {
    IpAddr::V4(v4("198.18.1.1"))
}
fn a3() -> IpAddr {
    IpAddr::V4(v4("198.18.2.1"))
}
fn b1() -> IpAddr {
    IpAddr::V4(v4("198.18.0.2"))
}

fn asconf_config() -> AssociationConfig {
    let mut c = fast_config();
    c.auth = true;
    c.asconf = true;
    c.initial_tsn = Some(1000);
    c
}

/// One answer of an ASCONF ACK: (parameter type, correlation id, first cause code).
type Response = (u16, u32, Option<u16>);

struct Net {
    net: Network,
    a: AssociationId,
    b: AssociationId,
    log: Arc<Mutex<Vec<Rec>>>,
}

/// A (node addresses a1, a2, a3; endpoint addresses `a_locals`) connects to B (b1).
fn connected(
    seed: u64,
    ca: AssociationConfig,
    cb: AssociationConfig,
    a_locals: Vec<IpAddr>,
) -> Net {
    connected_with(seed, ca, cb, a_locals, |_| false)
}

fn connected_with(
    seed: u64,
    ca: AssociationConfig,
    cb: AssociationConfig,
    a_locals: Vec<IpAddr>,
    drop: impl FnMut(&Rec) -> bool + Send + 'static,
) -> Net {
    let mut net = Network::new(seed);
    let mut ea = EndpointConfig::with_seed([seed as u8; 32]);
    ea.association = ca;
    ea.local_addresses = a_locals;
    let mut eb = EndpointConfig::with_seed([seed as u8 ^ 0x55; 32]);
    eb.association = cb;
    net.add_node(Endpoint::new(ea).unwrap(), &[a1(), a2(), a3()]);
    net.add_node(Endpoint::new(eb).unwrap(), &[b1()]);
    net.set_links(A, B, LinkConfig::with_latency(Duration::from_millis(5)));
    net.node(B).endpoint.listen(PORT).unwrap();
    let log = record(&mut net, drop);
    let now = net.now();
    let a = net
        .node(A)
        .endpoint
        .connect(now, ConnectRequest::new(b1(), PORT))
        .unwrap();
    let ok = net.run_until(Duration::from_secs(30), |n| {
        n.node(A).has_event(&Event::Connected) && n.node(B).has_event(&Event::Connected)
    });
    assert!(ok, "handshake did not complete");
    let b = net.node(B).assoc_with_event(&Event::Connected).unwrap();
    // Let heartbeats confirm every listed address.
    net.run_for(Duration::from_secs(1));
    Net { net, a, b, log }
}

impl Net {
    fn assoc(&mut self, node: usize) -> sctp_stack::AssociationMut<'_> {
        let id = if node == A { self.a } else { self.b };
        self.net.node(node).endpoint.association(id).unwrap()
    }

    fn events(&mut self, node: usize) -> Vec<Event> {
        self.net
            .node(node)
            .take_events()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    fn b_path(&mut self, addr: IpAddr) -> Option<PathState> {
        let st = self.assoc(B).status().unwrap();
        st.paths.iter().find(|p| p.remote == addr).map(|p| p.state)
    }

    /// Sends `n` numbered messages from A in rounds, calling `mid` once halfway, and
    /// returns what B received, in order.
    fn transfer(&mut self, n: u32, mut mid: impl FnMut(&mut Net)) -> Vec<u32> {
        let mut got = Vec::new();
        let mut sent = 0u32;
        let deadline = self.net.now() + Duration::from_secs(60);
        let mut called = false;
        while got.len() < n as usize && self.net.now() < deadline {
            while sent < n {
                let r = self.assoc(A).send(
                    0,
                    Ppid(0),
                    sent.to_be_bytes().to_vec(),
                    SendOptions::default(),
                );
                if r.is_err() {
                    break;
                }
                sent += 1;
                if sent % 50 == 0 {
                    break;
                }
            }
            if !called && sent >= n / 2 {
                called = true;
                mid(self);
            }
            self.net.run_for(Duration::from_millis(10));
            while let Some(m) = self.assoc(B).recv() {
                got.push(u32::from_be_bytes(m.data[..4].try_into().unwrap()));
            }
        }
        got
    }

    /// The association key of shared key 0, A's port and the tag A -> B, from the log.
    fn forge_keys(&self) -> (Vec<u8>, u16, u32) {
        let l = self.log.lock().unwrap();
        let init_rec = l.iter().find(|r| r.has(ct::INIT)).unwrap();
        let init = init_rec.first(ct::INIT).unwrap().value.clone();
        let ack = l
            .iter()
            .find_map(|r| r.first(ct::INIT_ACK))
            .unwrap()
            .value
            .clone();
        let tag = u32::from_be_bytes(ack[0..4].try_into().unwrap());
        (
            association_key(&[], &key_vector(&init), &key_vector(&ack)),
            init_rec.src_port,
            tag,
        )
    }

    /// Injects an ASCONF from `src` to B: AUTH `auth` ("ok", "bad", "none").
    fn inject_asconf(&mut self, src: IpAddr, serial: u32, params: &[Vec<u8>], auth: &str) {
        let (key, port, tag) = self.forge_keys();
        let lookup = v4("198.18.0.1");
        let c = chunk(ASCONF, 0, &asconf_value(serial, lookup, params));
        let pkt = match auth {
            "none" => build(port, PORT, tag, &[c]),
            _ => build_authenticated(port, PORT, tag, 0, 3, &key, &[], &[c], auth == "bad"),
        };
        self.net.inject(src, b1(), 0, &pkt);
        self.net.run_for(Duration::from_millis(50));
    }

    /// The ASCONF ACKs B sent since log index `from`: (serial, responses).
    fn acks_from_b(&self, from: usize) -> Vec<(u32, Vec<Response>)> {
        let l = self.log.lock().unwrap();
        l[from..]
            .iter()
            .filter(|r| r.from == B)
            .filter_map(|r| r.first(ASCONF_ACK))
            .map(|c| {
                (
                    u32::from_be_bytes(c.value[..4].try_into().unwrap()),
                    ack_responses(&c.value),
                )
            })
            .collect()
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

#[test]
fn add_ip_is_in_use_only_when_both_sides_offer_it_with_auth() {
    let mut n = connected(1, asconf_config(), asconf_config(), vec![a1()]);
    assert!(n.assoc(A).status().unwrap().asconf);
    assert!(n.assoc(B).status().unwrap().asconf);
    // The INIT lists AUTH, ASCONF and ASCONF ACK among the Supported Extensions.
    {
        let l = n.log.lock().unwrap();
        let init = &l.iter().find_map(|r| r.first(ct::INIT)).unwrap().value;
        let ext = init
            .windows(4)
            .position(|w| w[0] == 0x80 && w[1] == 0x08)
            .expect("Supported Extensions");
        let len = u16::from_be_bytes([init[ext + 2], init[ext + 3]]) as usize;
        let types = &init[ext + 4..ext + len];
        for t in [AUTH, ASCONF, ASCONF_ACK] {
            assert!(types.contains(&t), "{types:x?}");
        }
    }

    let mut only_auth = asconf_config();
    only_auth.asconf = false;
    let mut n = connected(2, asconf_config(), only_auth, vec![a1()]);
    assert!(n.assoc(A).status().unwrap().auth);
    assert!(!n.assoc(A).status().unwrap().asconf);
    assert_eq!(
        n.assoc(A).add_local_address(a2()),
        Err(AsconfError::NotNegotiated)
    );

    // A peer without AUTH: no AUTH, so no Add-IP (RFC 5061 §4.1).
    let mut n = connected(3, asconf_config(), fast_config(), vec![a1()]);
    assert!(!n.assoc(A).status().unwrap().auth);
    assert!(!n.assoc(A).status().unwrap().asconf);
}

#[test]
fn an_address_added_during_a_transfer_is_confirmed_at_the_peer_without_loss() {
    let mut n = connected(4, asconf_config(), asconf_config(), vec![a1()]);
    assert_eq!(n.b_path(a2()), None);
    let got = n.transfer(400, |n| n.assoc(A).add_local_address(a2()).unwrap());
    assert_eq!(got, (0..400).collect::<Vec<_>>());
    n.net.run_for(Duration::from_secs(2));
    let ea = n.events(A);
    assert!(ea.contains(&Event::AddressRequestDone {
        request: AddressRequest::Add(a2()),
        error: None
    }));
    let eb = n.events(B);
    assert!(eb.contains(&Event::PeerAddressChange {
        addr: a2(),
        change: PeerAddressChange::Added
    }));
    // RFC 5061 §4.2.4 / RFC 9260 §5.4: confirmed by a heartbeat.
    assert!(eb.contains(&Event::PathChange {
        addr: a2(),
        state: PathState::Active
    }));
    assert_eq!(n.b_path(a2()), Some(PathState::Active));
    assert!(n.assoc(A).status().unwrap().local_addresses.contains(&a2()));
    // Every ASCONF went out authenticated, AUTH first.
    let l = n.log.lock().unwrap();
    for r in l.iter().filter(|r| r.has(ASCONF) || r.has(ASCONF_ACK)) {
        let pa = r.chunks.iter().position(|c| c.ty == AUTH).expect("AUTH");
        let pc = r
            .chunks
            .iter()
            .position(|c| c.ty == ASCONF || c.ty == ASCONF_ACK)
            .unwrap();
        assert!(pa < pc);
    }
}

#[test]
fn deleting_the_address_in_use_during_a_transfer_moves_traffic_without_loss() {
    let mut n = connected(5, asconf_config(), asconf_config(), vec![a1(), a2()]);
    assert_eq!(n.b_path(a1()), Some(PathState::Active));
    assert_eq!(n.b_path(a2()), Some(PathState::Active));
    let got = n.transfer(400, |n| n.assoc(A).remove_local_address(a1()).unwrap());
    assert_eq!(got, (0..400).collect::<Vec<_>>());
    n.net.run_for(Duration::from_secs(1));
    assert!(n.events(A).contains(&Event::AddressRequestDone {
        request: AddressRequest::Delete(a1()),
        error: None
    }));
    assert!(n.events(B).contains(&Event::PeerAddressChange {
        addr: a1(),
        change: PeerAddressChange::Removed
    }));
    assert_eq!(n.b_path(a1()), None, "the path is gone from B's status");
    let st = n.assoc(B).status().unwrap();
    assert_eq!(st.primary, a2());
    assert!(!st.peer_addresses.contains(&a1()));
    assert_eq!(n.assoc(A).status().unwrap().local_addresses, vec![a2()]);
    // Nothing more goes to a1 after the ACK.
    let acked_at = {
        let l = n.log.lock().unwrap();
        l.iter().rev().find(|r| r.has(ASCONF_ACK)).unwrap().now
    };
    let l = n.log.lock().unwrap();
    assert!(
        !l.iter()
            .any(|r| r.from == B && r.dst == a1() && r.now > acked_at + Duration::from_millis(1))
    );
}

#[test]
fn set_primary_request_moves_the_peer_primary() {
    let mut n = connected(6, asconf_config(), asconf_config(), vec![a1(), a2()]);
    assert_eq!(n.assoc(B).status().unwrap().primary, a1());
    n.assoc(A).request_peer_primary(a2()).unwrap();
    n.net.run_for(Duration::from_millis(200));
    assert!(n.events(A).contains(&Event::AddressRequestDone {
        request: AddressRequest::SetPeerPrimary(a2()),
        error: None
    }));
    assert_eq!(n.assoc(B).status().unwrap().primary, a2());
    assert_eq!(
        n.assoc(A).request_peer_primary(a3()),
        Err(AsconfError::UnknownAddress)
    );
}

#[test]
fn deleting_the_last_address_is_refused_locally_and_by_the_peer() {
    let mut n = connected(7, asconf_config(), asconf_config(), vec![a1()]);
    assert_eq!(
        n.assoc(A).remove_local_address(a1()),
        Err(AsconfError::LastAddress)
    );
    // A forged but authenticated ASCONF from an address B does not know, deleting B's only
    // path (a1): Request to Delete Last Remaining IP Address (RFC 5061 §5.2).
    let from = n.log_len();
    n.inject_asconf(a3(), 1000, &[request(DELETE, 7, v4("198.18.0.1"))], "ok");
    assert_eq!(
        n.acks_from_b(from),
        vec![(1000, vec![(ERROR_IND, 7, Some(0x00A0))])]
    );
    assert_eq!(n.b_path(a1()), Some(PathState::Active));
}

#[test]
fn deleting_the_source_address_of_the_asconf_is_refused() {
    let mut n = connected(8, asconf_config(), asconf_config(), vec![a1(), a2()]);
    let from = n.log_len();
    n.inject_asconf(a1(), 1000, &[request(DELETE, 9, v4("198.18.0.1"))], "ok");
    assert_eq!(
        n.acks_from_b(from),
        vec![(1000, vec![(ERROR_IND, 9, Some(0x00A2))])]
    );
    assert_eq!(n.b_path(a1()), Some(PathState::Active));
    assert_eq!(CauseCode::DELETE_SOURCE_ADDRESS.get(), 0xA2);
}

#[test]
fn a_wildcard_add_adds_the_source_address_and_requests_are_answered_in_order() {
    let mut n = connected(9, asconf_config(), asconf_config(), vec![a1()]);
    let from = n.log_len();
    n.inject_asconf(
        a3(),
        1000,
        &[
            request(ADD, 1, v4("0.0.0.0")),
            request(SET_PRIMARY, 2, v4("198.18.2.1")),
            request(SET_PRIMARY, 3, v4("198.18.9.9")),
        ],
        "ok",
    );
    assert_eq!(
        n.acks_from_b(from),
        vec![(
            1000,
            vec![
                (SUCCESS, 1, None),
                (SUCCESS, 2, None),
                (ERROR_IND, 3, Some(CauseCode::UNRESOLVABLE_ADDRESS.get()))
            ]
        )]
    );
    assert!(n.b_path(a3()).is_some());
    assert_eq!(n.assoc(B).status().unwrap().primary, a3());
}

#[test]
fn a_lost_asconf_is_retransmitted_by_t4_with_the_same_serial() {
    let dropped = Arc::new(Mutex::new(false));
    let d = Arc::clone(&dropped);
    let mut n = connected_with(10, asconf_config(), asconf_config(), vec![a1()], move |r| {
        let mut d = d.lock().unwrap();
        if r.has(ASCONF) && !*d {
            *d = true;
            return true;
        }
        false
    });
    n.assoc(A).add_local_address(a2()).unwrap();
    n.net.run_for(Duration::from_secs(2));
    assert!(*dropped.lock().unwrap());
    let sends: Vec<(sctp_stack::time::Timestamp, Vec<u8>)> = n
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.first(ASCONF).map(|c| (r.now, c.value.clone())))
        .collect();
    assert_eq!(sends.len(), 2, "one lost, one retransmission");
    assert_eq!(sends[0].1, sends[1].1, "same serial and content");
    let gap = sends[1].0.saturating_duration_since(sends[0].0);
    // T4-RTO runs with the path's RTO (at least RTO.Min of the test config).
    assert!(gap >= Duration::from_millis(50), "{gap:?}");
    assert!(n.events(A).contains(&Event::AddressRequestDone {
        request: AddressRequest::Add(a2()),
        error: None
    }));
    assert_eq!(n.assoc(A).status().unwrap().error_count, 0);
}

#[test]
fn an_unanswered_asconf_ends_the_association_after_association_max_retrans() {
    // No heartbeats: their acknowledgements would reset the error counter (RFC 9260 §8.3),
    // so T4 expiries are the only errors counted.
    let mut c = asconf_config();
    c.heartbeat_interval = None;
    let mut n = connected_with(11, c.clone(), c, vec![a1()], |r| r.has(ASCONF));
    n.events(A);
    n.assoc(A).add_local_address(a2()).unwrap();
    n.net.run_for(Duration::from_secs(60));
    let ea = n.events(A);
    assert!(
        ea.contains(&Event::CommunicationLost(
            sctp_stack::LostReason::MaxRetransmissions
        )),
        "{ea:?}"
    );
    let sends = n
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.has(ASCONF))
        .count();
    // The first transmission plus Association.Max.Retrans (10) retransmissions.
    assert_eq!(sends, 11);
}

#[test]
fn a_repeated_asconf_is_answered_from_the_cached_ack() {
    let mut n = connected(12, asconf_config(), asconf_config(), vec![a1()]);
    n.assoc(A).add_local_address(a2()).unwrap();
    n.net.run_for(Duration::from_millis(300));
    let (asconf_pkt, src) = {
        let l = n.log.lock().unwrap();
        let r = l.iter().find(|r| r.has(ASCONF)).unwrap();
        (build(r.src_port, r.dst_port, r.vtag, &r.chunks), r.src)
    };
    let first = n.acks_from_b(0);
    assert_eq!(first.len(), 1);
    n.events(B);
    let from = n.log_len();
    n.net.inject(src, b1(), 0, &asconf_pkt);
    n.net.run_for(Duration::from_millis(50));
    assert_eq!(n.acks_from_b(from), first, "the same ACK again");
    let eb = n.events(B);
    assert!(
        !eb.iter()
            .any(|e| matches!(e, Event::PeerAddressChange { .. })),
        "not applied twice: {eb:?}"
    );
    // An old serial (before the last) is discarded silently.
    let from = n.log_len();
    n.inject_asconf(a1(), 999, &[request(ADD, 1, v4("198.18.2.1"))], "ok");
    assert!(n.acks_from_b(from).is_empty());
    assert_eq!(n.b_path(a3()), None);
}

#[test]
fn an_unauthenticated_or_forged_asconf_is_discarded_silently() {
    let mut n = connected(13, asconf_config(), asconf_config(), vec![a1()]);
    let add = [request(ADD, 1, v4("198.18.2.1"))];
    for auth in ["none", "bad"] {
        let from = n.log_len();
        n.inject_asconf(a1(), 1000, &add, auth);
        assert!(n.acks_from_b(from).is_empty(), "{auth}: no answer");
        assert_eq!(n.b_path(a3()), None, "{auth}: not applied");
    }
    assert_eq!(n.assoc(B).status().unwrap().auth_discarded, 2);
    // The same request, authenticated, is applied: the check above is what refused it.
    let from = n.log_len();
    n.inject_asconf(a1(), 1000, &add, "ok");
    assert_eq!(n.acks_from_b(from), vec![(1000, vec![(SUCCESS, 1, None)])]);
    assert!(n.b_path(a3()).is_some());
}

/// One hostile packet for the proptest below.
#[derive(Debug, Clone)]
enum Hostile {
    Asconf {
        serial_delta: i8,
        params: Vec<(u8, u32, u8)>,
        auth: u8,
    },
    AsconfAck {
        serial_delta: i8,
        corr: u32,
        error: bool,
        auth: u8,
    },
    Auth {
        key_id: u16,
        hmac_id: u16,
        len: u8,
    },
}

fn hostile() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        (
            any::<i8>(),
            proptest::collection::vec((0u8..5, any::<u32>(), 0u8..5), 0..6),
            0u8..3
        )
            .prop_map(|(serial_delta, params, auth)| Hostile::Asconf {
                serial_delta,
                params,
                auth
            }),
        (any::<i8>(), any::<u32>(), any::<bool>(), 0u8..3).prop_map(
            |(serial_delta, corr, error, auth)| Hostile::AsconfAck {
                serial_delta,
                corr,
                error,
                auth
            }
        ),
        (0u16..3, 0u16..5, any::<u8>()).prop_map(|(key_id, hmac_id, len)| Hostile::Auth {
            key_id,
            hmac_id,
            len
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_hostile_sequence_of_auth_and_asconf_never_panics(seq in proptest::collection::vec(hostile(), 1..12)) {
        let mut n = connected(14, asconf_config(), asconf_config(), vec![a1(), a2()]);
        let (key, port, tag) = n.forge_keys();
        let addrs = ["0.0.0.0", "198.18.0.1", "198.18.1.1", "198.18.2.1", "224.0.0.1"];
        for h in seq {
            let pkt = match h {
                Hostile::Asconf { serial_delta, params, auth } => {
                    let serial = 1000u32.wrapping_add(serial_delta as i32 as u32);
                    let ps: Vec<Vec<u8>> = params
                        .iter()
                        .map(|(kind, corr, a)| {
                            let ty = [ADD, DELETE, SET_PRIMARY, SUCCESS, 0xC006][*kind as usize];
                            request(ty, *corr, v4(addrs[*a as usize]))
                        })
                        .collect();
                    let c = chunk(ASCONF, 0, &asconf_value(serial, v4("198.18.0.1"), &ps));
                    if auth == 0 {
                        build(port, PORT, tag, &[c])
                    } else {
                        build_authenticated(port, PORT, tag, 0, 3, &key, &[], &[c], auth == 2)
                    }
                }
                Hostile::AsconfAck { serial_delta, corr, error, auth } => {
                    let serial = 1000u32.wrapping_add(serial_delta as i32 as u32);
                    let mut v = serial.to_be_bytes().to_vec();
                    let mut resp = corr.to_be_bytes().to_vec();
                    if error {
                        resp.extend_from_slice(&assoc_util::tlv(0xA0, &[0; 8]));
                        v.extend_from_slice(&assoc_util::tlv(ERROR_IND, &resp));
                    } else {
                        v.extend_from_slice(&assoc_util::tlv(SUCCESS, &resp));
                    }
                    let c = chunk(ASCONF_ACK, 0, &v);
                    if auth == 0 {
                        build(port, PORT, tag, &[c])
                    } else {
                        build_authenticated(port, PORT, tag, 0, 3, &key, &[], &[c], auth == 2)
                    }
                }
                Hostile::Auth { key_id, hmac_id, len } => {
                    let mut v = key_id.to_be_bytes().to_vec();
                    v.extend_from_slice(&hmac_id.to_be_bytes());
                    v.extend(std::iter::repeat_n(0xAB, len as usize));
                    build(port, PORT, tag, &[chunk(AUTH, 0, &v), chunk(ASCONF, 0, &[0; 3])])
                }
            };
            let src = [a1(), a2(), a3()][pkt.len() % 3];
            n.net.inject(src, b1(), 0, &pkt);
            n.net.run_for(Duration::from_millis(30));
        }
        n.net.run_for(Duration::from_secs(2));
        // The association either lives on with a consistent view or ended with Closed.
        if let Some(st) = n.net.node(B).endpoint.association(n.b).and_then(|a| a.status()) {
            prop_assert!(st.paths.len() <= 8);
            prop_assert!(st.peer_addresses.contains(&st.primary) || st.paths.is_empty());
        }
        let _ = (ct::DATA, a3());
    }
}

#[test]
fn the_adaptation_layer_indication_reaches_the_peer() {
    let mut ca = asconf_config();
    ca.adaptation_indication = Some(0x0102_0304);
    let mut n = connected(15, ca, asconf_config(), vec![a1()]);
    assert_eq!(
        n.assoc(B).status().unwrap().peer_adaptation_indication,
        Some(0x0102_0304)
    );
    assert_eq!(
        n.assoc(A).status().unwrap().peer_adaptation_indication,
        None
    );
    // Nobody reported it as an unrecognized parameter.
    let l = n.log.lock().unwrap();
    assert!(!l.iter().any(|r| r.has(ct::ERROR)));
}

#[test]
fn a_wildcard_delete_removes_every_address_but_the_source() {
    let mut n = connected(16, asconf_config(), asconf_config(), vec![a1(), a2()]);
    assert_eq!(n.b_path(a1()), Some(PathState::Active));
    let from = n.log_len();
    // RFC 5061 §4.2.2: 0.0.0.0 deletes all addresses except the source of the packet.
    n.inject_asconf(a2(), 1000, &[request(DELETE, 4, v4("0.0.0.0"))], "ok");
    assert_eq!(n.acks_from_b(from), vec![(1000, vec![(SUCCESS, 4, None)])]);
    let st = n.assoc(B).status().unwrap();
    assert_eq!(st.peer_addresses, vec![a2()]);
    assert_eq!(st.primary, a2());
}
