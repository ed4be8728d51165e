//! SCTP-AUTH (RFC 4895) on the simulated network: negotiation of both HMACs, AUTH placement,
//! key rotation under traffic, and the rejection of forged, unkeyed and unsupported AUTH
//! chunks (RFC 4895 §6.3), including the COOKIE ECHO case.
#![cfg(feature = "sim")]

mod assoc_util;

use std::time::Duration;

use assoc_util::auth::{AUTH, association_key, build_authenticated, key_vector};
use assoc_util::{
    A, B, PORT, Pair, Rec, cause_codes, chunk, ct, data_value, fast_config, inject, tags,
};
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::{ChunkType, HmacId};
use sctp_stack::{AssociationConfig, AuthKeyError, Event};

fn auth_config() -> AssociationConfig {
    let mut c = fast_config();
    c.auth = true;
    c.auth_chunks = vec![ChunkType::DATA];
    c
}

fn link() -> LinkConfig {
    LinkConfig::with_latency(Duration::from_millis(5))
}

/// Sends `n` numbered messages from A (stream 0) and runs until B has them all.
fn transfer(p: &mut Pair, from: u32, n: u32) -> Vec<u32> {
    for i in from..from + n {
        p.send(A, 0, &i.to_be_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let ok = {
        let deadline = p.net.now() + Duration::from_secs(30);
        loop {
            p.net.run_for(Duration::from_millis(20));
            for m in p.recv_all(B) {
                got.push(u32::from_be_bytes(m.data[..4].try_into().unwrap()));
            }
            if got.len() >= n as usize || p.net.now() > deadline {
                break got.len() == n as usize;
            }
        }
    };
    assert!(ok, "only {} of {n} messages arrived", got.len());
    got
}

/// The (key id, hmac id, hmac length) of every AUTH chunk A sent, and whether each such
/// packet had its AUTH chunk before its first DATA chunk.
fn auth_chunks_from_a(log: &[Rec]) -> Vec<(u16, u16, usize, bool)> {
    log.iter()
        .filter(|r| r.from == A && r.has(ct::DATA))
        .map(|r| {
            let pos_auth = r.chunks.iter().position(|c| c.ty == AUTH);
            let pos_data = r.chunks.iter().position(|c| c.ty == ct::DATA);
            match (pos_auth, r.first(AUTH)) {
                (Some(pa), Some(c)) => (
                    u16::from_be_bytes([c.value[0], c.value[1]]),
                    u16::from_be_bytes([c.value[2], c.value[3]]),
                    c.value.len() - 4,
                    pos_data.is_some_and(|pd| pa < pd),
                ),
                _ => (u16::MAX, 0, 0, false),
            }
        })
        .collect()
}

#[test]
fn auth_is_negotiated_with_hmac_sha256_and_every_data_packet_carries_auth_before_its_data() {
    let (mut p, log) = Pair::connected_recorded(1, auth_config(), auth_config(), link());
    let st = p.assoc(A).status().unwrap();
    assert!(st.auth);
    assert_eq!(st.auth_hmac, Some(HmacId::SHA256));
    assert!(p.assoc(B).status().unwrap().auth);
    let got = transfer(&mut p, 0, 50);
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    let auths = auth_chunks_from_a(&log.lock().unwrap());
    assert!(!auths.is_empty());
    for (key, hmac, len, before) in auths {
        assert_eq!((key, hmac, len, before), (0, 3, 32, true));
    }
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 0);
}

#[test]
fn hmac_sha1_is_used_when_the_peer_offers_only_sha1() {
    let mut cb = auth_config();
    cb.auth_hmacs = vec![HmacId::SHA1];
    let (mut p, log) = Pair::connected_recorded(2, auth_config(), cb, link());
    assert_eq!(p.assoc(A).status().unwrap().auth_hmac, Some(HmacId::SHA1));
    assert_eq!(p.assoc(B).status().unwrap().auth_hmac, Some(HmacId::SHA1));
    let got = transfer(&mut p, 0, 20);
    assert_eq!(got.len(), 20);
    let auths = auth_chunks_from_a(&log.lock().unwrap());
    assert!(auths.iter().all(|a| *a == (0, 1, 20, true)), "{auths:?}");
}

#[test]
fn auth_is_not_used_when_the_peer_does_not_offer_it() {
    let (mut p, log) = Pair::connected_recorded(3, auth_config(), fast_config(), link());
    assert!(!p.assoc(A).status().unwrap().auth);
    assert!(!p.assoc(B).status().unwrap().auth);
    transfer(&mut p, 0, 10);
    assert!(!log.lock().unwrap().iter().any(|r| r.has(AUTH)));
}

#[test]
fn shared_keys_rotate_while_data_flows_without_loss() {
    let (mut p, log) = Pair::connected_recorded(4, auth_config(), auth_config(), link());
    for node in [A, B] {
        p.assoc(node).auth_add_key(1, b"the new secret").unwrap();
    }
    let mut all = transfer(&mut p, 0, 20);
    // A switches first; B still holds key 0 and key 1, so it accepts both.
    p.assoc(A).auth_activate_key(1).unwrap();
    assert_eq!(
        p.assoc(A).auth_delete_key(1),
        Err(AuthKeyError::KeyActive),
        "the active key cannot be deleted"
    );
    all.extend(transfer(&mut p, 20, 20));
    p.assoc(B).auth_activate_key(1).unwrap();
    p.assoc(A).auth_delete_key(0).unwrap();
    p.assoc(B).auth_delete_key(0).unwrap();
    all.extend(transfer(&mut p, 40, 20));
    assert_eq!(all, (0..60).collect::<Vec<_>>());
    assert_eq!(p.assoc(A).status().unwrap().auth_active_key, Some(1));
    let auths = auth_chunks_from_a(&log.lock().unwrap());
    assert_eq!(auths.first().map(|a| a.0), Some(0));
    assert_eq!(auths.last().map(|a| a.0), Some(1));
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 0);
    assert_eq!(
        p.assoc(A).auth_activate_key(9),
        Err(AuthKeyError::UnknownKey)
    );
}

#[test]
fn key_operations_fail_when_auth_is_not_in_use() {
    let mut p = Pair::connected(5, fast_config(), fast_config(), link());
    assert_eq!(
        p.assoc(A).auth_add_key(1, b"k"),
        Err(AuthKeyError::NotNegotiated)
    );
}

/// Keys of an established pair computed by the test from the recorded handshake.
struct Forge {
    /// The association key of shared key 0 (the empty key).
    key0: Vec<u8>,
    /// Tag of packets A -> B.
    tag_ab: u32,
    /// The next TSN A would use (one past the largest A sent).
    next_tsn: u32,
    /// A's (ephemeral) port.
    port_a: u16,
}

fn forge(log: &std::sync::Arc<std::sync::Mutex<Vec<Rec>>>) -> Forge {
    let l = log.lock().unwrap();
    let init = l
        .iter()
        .find_map(|r| r.first(ct::INIT))
        .unwrap()
        .value
        .clone();
    let port_a = l.iter().find(|r| r.has(ct::INIT)).unwrap().src_port;
    let ack = l
        .iter()
        .find_map(|r| r.first(ct::INIT_ACK))
        .unwrap()
        .value
        .clone();
    let tsn = l
        .iter()
        .filter(|r| r.from == A)
        .flat_map(|r| r.chunks.iter().filter(|c| c.ty == ct::DATA))
        .map(|c| u32::from_be_bytes(c.value[..4].try_into().unwrap()))
        .max()
        .map(|t| t.wrapping_add(1))
        .unwrap_or_else(|| u32::from_be_bytes(init[12..16].try_into().unwrap()));
    drop(l);
    Forge {
        key0: association_key(&[], &key_vector(&init), &key_vector(&ack)),
        tag_ab: tags(log).0,
        next_tsn: tsn,
        port_a,
    }
}

fn data_packet(f: &Forge, key_id: u16, hmac_id: u16, corrupt: bool, payload: &[u8]) -> Vec<u8> {
    let d = chunk(ct::DATA, 0x07, &data_value(f.next_tsn, 0, 99, 0, payload));
    build_authenticated(
        f.port_a,
        PORT,
        f.tag_ab,
        key_id,
        hmac_id,
        &f.key0,
        &[],
        &[d],
        corrupt,
    )
}

fn established_with_log(seed: u64) -> (Pair, std::sync::Arc<std::sync::Mutex<Vec<Rec>>>) {
    let mut ca = auth_config();
    ca.initial_tsn = Some(1000);
    let (mut p, log) = Pair::connected_recorded(seed, ca, auth_config(), link());
    transfer(&mut p, 0, 3);
    (p, log)
}

#[test]
fn a_correctly_computed_auth_is_accepted_which_proves_the_key_derivation() {
    let (mut p, log) = established_with_log(6);
    let f = forge(&log);
    // A never sent these TSNs and would abort on B's SACKs: keep B's packets from it.
    p.net.set_filter(|s| s.from != B);
    // The test's own RFC 4895 §6.1 computation, with both algorithms.
    for (i, hmac_id) in [3u16, 1].into_iter().enumerate() {
        let mut f2 = forge(&log);
        f2.next_tsn = f.next_tsn + i as u32;
        let pkt = data_packet(&f2, 0, hmac_id, false, b"forged but valid");
        // Packets are injected from A's address, as A.
        inject(&mut p.net, A, &pkt);
        p.net.run_for(Duration::from_millis(50));
    }
    let got = p.recv_all(B);
    assert_eq!(got.len(), 2, "both authenticated messages are delivered");
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 0);
}

#[test]
fn a_forged_auth_chunk_is_discarded_silently() {
    let (mut p, log) = established_with_log(7);
    let f = forge(&log);
    let before = log.lock().unwrap().len();
    inject(&mut p.net, A, &data_packet(&f, 0, 3, true, b"forged"));
    p.net.run_for(Duration::from_millis(500));
    assert!(p.recv_all(B).is_empty());
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 1);
    // Nothing answers it: no SACK for the forged TSN, no ERROR.
    let l = log.lock().unwrap();
    assert!(!l[before..].iter().any(|r| r.from == B && r.has(ct::ERROR)));
    let sacked_forged = l[before..]
        .iter()
        .filter(|r| r.from == B)
        .filter_map(|r| r.first(ct::SACK))
        .any(|s| u32::from_be_bytes(s.value[..4].try_into().unwrap()) == f.next_tsn);
    assert!(!sacked_forged);
}

#[test]
fn data_required_to_be_authenticated_without_auth_is_discarded() {
    let (mut p, log) = established_with_log(8);
    let f = forge(&log);
    let d = chunk(ct::DATA, 0x07, &data_value(f.next_tsn, 0, 99, 0, b"bare"));
    inject(
        &mut p.net,
        A,
        &assoc_util::build(f.port_a, PORT, f.tag_ab, &[d]),
    );
    p.net.run_for(Duration::from_millis(500));
    assert!(p.recv_all(B).is_empty());
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 1);
}

#[test]
fn an_auth_chunk_with_an_unknown_key_id_is_discarded() {
    let (mut p, log) = established_with_log(9);
    let f = forge(&log);
    // Signed correctly with key 0's association key, but naming key 7, which B lacks.
    inject(&mut p.net, A, &data_packet(&f, 7, 3, false, b"wrong key"));
    p.net.run_for(Duration::from_millis(500));
    assert!(p.recv_all(B).is_empty());
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 1);
}

#[test]
fn an_unsupported_hmac_identifier_is_answered_with_its_error_cause() {
    let (mut p, log) = established_with_log(10);
    let f = forge(&log);
    let before = log.lock().unwrap().len();
    // HMAC identifier 2 is not one B listed (RFC 4895 §6.3).
    inject(&mut p.net, A, &data_packet(&f, 0, 2, false, b"sha-what"));
    p.net.run_for(Duration::from_millis(500));
    assert!(p.recv_all(B).is_empty());
    let l = log.lock().unwrap();
    let err = l[before..]
        .iter()
        .filter(|r| r.from == B)
        .find_map(|r| r.first(ct::ERROR))
        .expect("an ERROR chunk");
    assert_eq!(cause_codes(&err.value), vec![0x0105]);
    // The cause carries the HMAC identifier.
    assert_eq!(&err.value[4..6], &[0, 2]);
}

#[test]
fn auth_bundled_after_cookie_echo_is_verified_with_the_keys_from_the_cookie() {
    // RFC 4895 §6.3: the association is built from the cookie, then the AUTH that follows
    // the COOKIE ECHO is verified. A's own COOKIE ECHO is dropped and replaced by one with
    // AUTH and DATA bundled.
    let mut net = assoc_util::network(11, auth_config(), auth_config(), link());
    let log = assoc_util::record(&mut net, |r| r.has(ct::COOKIE_ECHO));
    let now = net.now();
    net.node(A)
        .endpoint
        .connect(
            now,
            sctp_stack::ConnectRequest::new(assoc_util::addr_b(), PORT),
        )
        .unwrap();
    net.run_for(Duration::from_millis(30));
    let (init, ack, cookie, tag_ab, tsn, port_a) = {
        let l = log.lock().unwrap();
        let port_a = l.iter().find(|r| r.has(ct::INIT)).unwrap().src_port;
        let init = l
            .iter()
            .find_map(|r| r.first(ct::INIT))
            .unwrap()
            .value
            .clone();
        let ack_rec = l.iter().find(|r| r.has(ct::INIT_ACK)).unwrap();
        let ack = ack_rec.first(ct::INIT_ACK).unwrap().value.clone();
        let cookie = l
            .iter()
            .find_map(|r| r.first(ct::COOKIE_ECHO))
            .unwrap()
            .value
            .clone();
        let tag_ab = u32::from_be_bytes(ack[0..4].try_into().unwrap());
        let tsn = u32::from_be_bytes(init[12..16].try_into().unwrap());
        (init, ack, cookie, tag_ab, tsn, port_a)
    };
    net.clear_filter();
    let key = association_key(&[], &key_vector(&init), &key_vector(&ack));
    let echo = chunk(ct::COOKIE_ECHO, 0, &cookie);
    let d = chunk(ct::DATA, 0x07, &data_value(tsn, 0, 0, 0, b"early"));
    for (corrupt, expect) in [(true, 0usize), (false, 1)] {
        let pkt = build_authenticated(
            port_a,
            PORT,
            tag_ab,
            0,
            3,
            &key,
            std::slice::from_ref(&echo),
            std::slice::from_ref(&d),
            corrupt,
        );
        inject(&mut net, A, &pkt);
        net.run_for(Duration::from_millis(50));
        let b = net
            .node(B)
            .assoc_with_event(&Event::Connected)
            .expect("built from the cookie");
        let mut got = 0;
        while net
            .node(B)
            .endpoint
            .association(b)
            .unwrap()
            .recv()
            .is_some()
        {
            got += 1;
        }
        assert_eq!(got, expect, "corrupt={corrupt}");
    }
}

#[test]
fn an_abort_the_peer_requires_authenticated_carries_auth_and_is_accepted() {
    let mut cb = auth_config();
    cb.auth_chunks = vec![ChunkType::ABORT];
    let (mut p, log) = Pair::connected_recorded(12, auth_config(), cb, link());
    p.assoc(A).abort(b"bye");
    p.net.run_for(Duration::from_millis(100));
    let eb: Vec<Event> = p
        .net
        .node(B)
        .take_events()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert!(
        eb.iter().any(|e| matches!(e, Event::Aborted(_))),
        "B accepted the authenticated ABORT: {eb:?}"
    );
    let l = log.lock().unwrap();
    let abort = l.iter().find(|r| r.from == A && r.has(ct::ABORT)).unwrap();
    assert_eq!(abort.chunks.first().map(|c| c.ty), Some(AUTH));
}

#[test]
fn an_unauthenticated_abort_is_ignored_when_the_peer_requires_auth_for_it() {
    let mut cb = auth_config();
    cb.auth_chunks = vec![ChunkType::ABORT];
    let (mut p, log) = Pair::connected_recorded(13, auth_config(), cb, link());
    let f = forge(&log);
    let abort = chunk(ct::ABORT, 0, &[]);
    inject(
        &mut p.net,
        A,
        &assoc_util::build(f.port_a, PORT, f.tag_ab, &[abort]),
    );
    p.net.run_for(Duration::from_millis(100));
    assert_eq!(
        p.assoc(B).state(),
        sctp_stack::AssociationState::Established
    );
    assert_eq!(p.assoc(B).status().unwrap().auth_discarded, 1);
}
