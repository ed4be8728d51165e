use std::net::{IpAddr, Ipv4Addr};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::wire::{AsapMessage, EnrpBody, EnrpMessage, PolicyInfo};

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

fn pe(id: u32, owner: u32, policy: PolicyInfo) -> PoolElement {
    PoolElement {
        identifier: PeIdentifier(id),
        home_registrar: RegistrarId(owner),
        registration_life: 30_000,
        user_transport: TransportParameter::sctp(
            7000,
            TransportUse::DATA_ONLY,
            vec![IpAddr::V4(Ipv4Addr::new(
                198,
                18,
                (id >> 8) as u8,
                id as u8,
            ))],
        ),
        policy,
        asap_transport: None,
    }
}

fn hs() -> Handlespace {
    Handlespace::new(HandlespaceConfig::default())
}

fn h(s: &str) -> PoolHandle {
    PoolHandle::from(s)
}

#[test]
fn registration_creates_pool_and_reregistration_updates() {
    let mut hs = hs();
    let t = Timestamp::ZERO;
    assert_eq!(
        hs.register(t, &h("EchoPool"), pe(1, 9, PolicyInfo::round_robin())),
        Ok(Registered::New)
    );
    assert_eq!(
        hs.register(t, &h("EchoPool"), pe(1, 9, PolicyInfo::round_robin())),
        Ok(Registered::Updated)
    );
    assert_eq!(hs.pool_count(), 1);
    assert_eq!(hs.pe_count(), 1);
    assert_eq!(hs.pool_policy(b"EchoPool"), Some(PolicyType::ROUND_ROBIN));
}

#[test]
fn a_known_identifier_from_another_endpoint_is_non_unique_but_a_subset_of_addresses_is_the_same_pe()
{
    let mut hs = hs();
    let t = Timestamp::ZERO;
    let v4: IpAddr = "198.18.0.2".parse().unwrap();
    let v6: IpAddr = "fd00:18::2".parse().unwrap();
    let with_asap = |addrs: Vec<IpAddr>| {
        let mut p = pe(5, 9, PolicyInfo::round_robin());
        p.asap_transport = Some(TransportParameter::sctp(
            4000,
            TransportUse::DATA_ONLY,
            addrs,
        ));
        p
    };
    // A multi-homed PE, known with both addresses (e.g. from its old home's handle update).
    assert_eq!(
        hs.register(t, &h("EchoPool"), with_asap(vec![v4, v6])),
        Ok(Registered::New)
    );
    // It re-registers over an association that shows one of them: the same PE.
    assert_eq!(
        hs.register(t, &h("EchoPool"), with_asap(vec![v4])),
        Ok(Registered::Updated)
    );
    // Another endpoint claiming the identifier: refused.
    assert_eq!(
        hs.register(
            t,
            &h("EchoPool"),
            with_asap(vec!["198.18.7.7".parse().unwrap()])
        ),
        Err(RegistrationError::NonUniqueIdentifier)
    );
    assert_eq!(hs.pe_count(), 1);
}

#[test]
fn inconsistent_policy_is_rejected_with_its_operation_error() {
    let mut hs = hs();
    let t = Timestamp::ZERO;
    hs.register(t, &h("P"), pe(1, 9, PolicyInfo::round_robin()))
        .expect("first");
    let bad = pe(2, 9, PolicyInfo::weighted_random(3));
    let e = hs.register(t, &h("P"), bad.clone()).unwrap_err();
    assert_eq!(
        e,
        RegistrationError::InconsistentPolicy {
            pool: PolicyType::ROUND_ROBIN
        }
    );
    assert_eq!(e.cause_code(), CauseCode::INCONSISTENT_POOLING_POLICY);
    let op = e.operation_error(&h("P"), &bad);
    assert_eq!(
        op.first_code(),
        Some(CauseCode::INCONSISTENT_POOLING_POLICY)
    );
    // The cause carries the offending policy parameter.
    assert_eq!(&op.causes[0].info[..2], &[0x00, 0x08]);
    // And the registration response encodes.
    let m = AsapMessage::RegistrationResponse {
        reject: true,
        pool_handle: h("P"),
        identifier: bad.identifier,
        error: Some(op),
    };
    let mut b = vec![0; m.encoded_len()];
    m.encode(&mut b).expect("encode");
}

#[test]
fn inconsistent_transport_and_control_use_are_rejected() {
    let mut hs = hs();
    let t = Timestamp::ZERO;
    hs.register(t, &h("P"), pe(1, 9, PolicyInfo::round_robin()))
        .expect("first");
    let mut tcp = pe(2, 9, PolicyInfo::round_robin());
    tcp.user_transport.protocol = TransportProtocol::Tcp;
    assert_eq!(
        hs.register(t, &h("P"), tcp).unwrap_err().cause_code(),
        CauseCode::INCONSISTENT_TRANSPORT_TYPE
    );
    let mut ctl = pe(3, 9, PolicyInfo::round_robin());
    ctl.user_transport.transport_use = TransportUse::DATA_PLUS_CONTROL;
    assert_eq!(
        hs.register(t, &h("P"), ctl).unwrap_err().cause_code(),
        CauseCode::INCONSISTENT_DATA_CONTROL_CONFIGURATION
    );
}

#[test]
fn invalid_registrations_and_limits_are_rejected() {
    let mut hs = Handlespace::new(HandlespaceConfig {
        max_pool_handle_len: 4,
        max_addresses_per_pe: 1,
        max_pes_per_pool: 2,
        max_pools: 1,
        ..HandlespaceConfig::default()
    });
    let t = Timestamp::ZERO;
    let rr = PolicyInfo::round_robin;
    assert_eq!(
        hs.register(t, &h("TooLong"), pe(1, 1, rr())),
        Err(RegistrationError::InvalidPoolHandle)
    );
    assert_eq!(
        hs.register(t, &h(""), pe(1, 1, rr())),
        Err(RegistrationError::InvalidPoolHandle)
    );
    assert_eq!(
        hs.register(t, &h("P"), pe(0, 1, rr())),
        Err(RegistrationError::InvalidIdentifier)
    );
    let mut two = pe(1, 1, rr());
    two.user_transport
        .addresses
        .push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(
        hs.register(t, &h("P"), two),
        Err(RegistrationError::InvalidTransport)
    );
    let mut port0 = pe(1, 1, rr());
    port0.user_transport.port = 0;
    assert_eq!(
        hs.register(t, &h("P"), port0),
        Err(RegistrationError::InvalidTransport)
    );
    assert_eq!(
        hs.register(t, &h("P"), pe(1, 1, PolicyInfo::new(PolicyType(0x1234)))),
        Err(RegistrationError::UnknownPolicy(PolicyType(0x1234)))
    );
    hs.register(t, &h("P"), pe(1, 1, rr())).expect("1");
    hs.register(t, &h("P"), pe(2, 1, rr())).expect("2");
    let e = hs.register(t, &h("P"), pe(3, 1, rr())).unwrap_err();
    assert_eq!(e.cause_code(), CauseCode::LACK_OF_RESOURCES);
    assert_eq!(
        hs.register(t, &h("Q"), pe(4, 1, rr())),
        Err(RegistrationError::LackOfResources)
    );
    assert_eq!(
        hs.pool_count(),
        1,
        "a rejected first PE leaves no empty pool"
    );
}

#[test]
fn resolution_follows_the_policy_and_caps_k() {
    let mut hs = Handlespace::new(HandlespaceConfig {
        max_pes_per_resolution: 2,
        ..HandlespaceConfig::default()
    });
    let t = Timestamp::ZERO;
    for id in 1..=4 {
        hs.register(t, &h("P"), pe(id, 1, PolicyInfo::round_robin()))
            .expect("reg");
    }
    let mut r = rng();
    let ids = |hs: &mut Handlespace, r: &mut ChaCha8Rng| -> Vec<u32> {
        hs.resolve(b"P", 3, r)
            .expect("pool")
            .iter()
            .map(|p| p.identifier.0)
            .collect()
    };
    assert_eq!(ids(&mut hs, &mut r), vec![1, 2]);
    assert_eq!(ids(&mut hs, &mut r), vec![2, 3]);
    assert_eq!(
        hs.resolve(b"Nope", 1, &mut r).map(|r| r.len()),
        Err(LookupError::UnknownPoolHandle)
    );
    assert_eq!(
        LookupError::UnknownPoolHandle.cause_code(),
        CauseCode::UNKNOWN_POOL_HANDLE
    );
}

#[test]
fn deregistering_the_last_pe_removes_the_pool() {
    let mut hs = hs();
    let t = Timestamp::ZERO;
    hs.register(t, &h("P"), pe(1, 1, PolicyInfo::random()))
        .expect("reg");
    assert_eq!(
        hs.deregister(b"P", PeIdentifier(2)),
        Err(LookupError::UnknownPoolElement)
    );
    assert!(hs.deregister(b"P", PeIdentifier(1)).is_ok());
    assert_eq!(hs.pool_count(), 0);
    assert_eq!(hs.next_deadline(), None, "its timer went with it");
    // The pool can come back with another policy.
    hs.register(t, &h("P"), pe(1, 1, PolicyInfo::round_robin()))
        .expect("reg");
}

#[test]
fn expiry_timers_fire_in_order_and_can_be_rearmed() {
    let mut hs = hs();
    let mut a = pe(1, 1, PolicyInfo::random());
    a.registration_life = 5_000;
    let mut b = pe(2, 1, PolicyInfo::random());
    b.registration_life = 3_000;
    hs.register(Timestamp::ZERO, &h("P"), a).expect("a");
    hs.register(Timestamp::ZERO, &h("P"), b).expect("b");
    assert_eq!(hs.next_deadline(), Some(Timestamp::from_secs(3)));
    assert_eq!(hs.poll_expired(Timestamp::from_millis(2_999)), None);
    let e = hs
        .poll_expired(Timestamp::from_secs(10))
        .expect("b expires");
    assert_eq!((e.identifier, e.kind), (PeIdentifier(2), TimerKind::Expiry));
    // Re-arm PE 1 as a keep-alive transmission timer.
    hs.set_timer(
        b"P",
        PeIdentifier(1),
        Timestamp::from_secs(20),
        TimerKind::KeepAliveTransmission,
    )
    .expect("set");
    assert_eq!(hs.poll_expired(Timestamp::from_secs(10)), None);
    let e = hs.poll_expired(Timestamp::from_secs(20)).expect("ka");
    assert_eq!(e.kind, TimerKind::KeepAliveTransmission);
    assert_eq!(hs.poll_expired(Timestamp::MAX), None, "timers fire once");
    assert_eq!(hs.pe_count(), 2, "timers do not remove PEs by themselves");
}

#[test]
fn ownership_checksum_matches_rsplib_computation() {
    // One PE "AB" id 0x00010002: words 0x4142 + 0x0001 + 0x0002 = 0x4145 -> !0x4145.
    let mut hs = hs();
    hs.register(
        Timestamp::ZERO,
        &h("AB"),
        pe(0x0001_0002, 5, PolicyInfo::random()),
    )
    .expect("reg");
    assert_eq!(hs.ownership_checksum(RegistrarId(5)), !0x4145u16);
    // An odd-length handle pads its last byte on the right: "ABC" -> 0x4142 + 0x4300.
    hs.register(
        Timestamp::ZERO,
        &h("ABC"),
        pe(0x0000_0001, 5, PolicyInfo::random()),
    )
    .expect("reg");
    let sum: u32 = 0x4145 + 0x4142 + 0x4300 + 0x0001;
    let folded = ((sum & 0xffff) + (sum >> 16)) as u16;
    assert_eq!(hs.ownership_checksum(RegistrarId(5)), !folded);
    // Other owners do not contribute; removal restores.
    hs.register(Timestamp::ZERO, &h("AB"), pe(7, 6, PolicyInfo::random()))
        .expect("reg");
    assert_eq!(hs.ownership_checksum(RegistrarId(5)), !folded);
    hs.deregister(b"ABC", PeIdentifier(1)).expect("dereg");
    assert_eq!(hs.ownership_checksum(RegistrarId(5)), !0x4145u16);
    assert_eq!(hs.ownership_checksum(RegistrarId(99)), 0xffff, "empty = !0");
}

#[test]
fn takeover_moves_ownership_and_checksums() {
    let mut hs = hs();
    for id in 1..=3 {
        hs.register(Timestamp::ZERO, &h("P"), pe(id, 1, PolicyInfo::random()))
            .expect("reg");
    }
    let before = hs.ownership_checksum(RegistrarId(1));
    let moved = hs.take_over(RegistrarId(1), RegistrarId(2));
    assert_eq!(moved.len(), 3);
    assert_eq!(hs.ownership_checksum(RegistrarId(2)), before);
    assert_eq!(hs.owned_count(RegistrarId(1)), 0);
    assert_eq!(
        hs.pool_element(b"P", PeIdentifier(2))
            .map(|p| p.home_registrar),
        Some(RegistrarId(2))
    );
}

#[test]
fn export_in_pieces_covers_everything_once() {
    let mut hs = hs();
    for pool in ["A", "B", "C"] {
        for id in 1..=5 {
            let owner = if id % 2 == 0 { 1 } else { 2 };
            hs.register(
                Timestamp::ZERO,
                &h(pool),
                pe(id, owner, PolicyInfo::random()),
            )
            .expect("reg");
        }
    }
    for (owner, expected) in [(None, 15), (Some(RegistrarId(1)), 6)] {
        let mut seen = Vec::new();
        let mut from = None;
        let mut pieces = 0;
        loop {
            let piece = hs.export(owner, from.as_ref(), 4, 1400);
            pieces += 1;
            for (ph, pes) in &piece.pools {
                assert!(!pes.is_empty());
                for p in pes {
                    if let Some(o) = owner {
                        assert_eq!(p.home_registrar, o);
                    }
                    seen.push((ph.clone(), p.identifier));
                }
            }
            match piece.next {
                Some(c) => from = Some(c),
                None => break,
            }
            assert!(pieces < 20);
        }
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), seen.len(), "no PE twice");
        assert_eq!(seen.len(), expected);
    }
    // A byte budget also splits, and every piece encodes into an ENRP response.
    let piece = hs.export(None, None, 128, 200);
    assert!(piece.next.is_some());
    let m = EnrpMessage {
        sender: RegistrarId(1),
        receiver: RegistrarId(2),
        body: EnrpBody::HandleTableResponse {
            reject: false,
            more_to_send: true,
            pools: piece.pools,
        },
    };
    assert!(m.encoded_len() <= 200 + 12);
}

#[test]
fn enrp_updates_add_and_delete_copies() {
    let mut hs = hs();
    let p = pe(5, 3, PolicyInfo::random());
    hs.apply_update(Timestamp::ZERO, UpdateAction::ADD_PE, &h("P"), p.clone())
        .expect("add");
    assert_eq!(hs.owned_count(RegistrarId(3)), 1);
    hs.apply_update(Timestamp::ZERO, UpdateAction::DEL_PE, &h("P"), p.clone())
        .expect("del");
    assert_eq!(hs.pe_count(), 0);
    assert_eq!(
        hs.apply_update(Timestamp::ZERO, UpdateAction(7), &h("P"), p),
        Err(UpdateError::UnknownAction(UpdateAction(7)))
    );
}

#[test]
fn marked_entries_not_confirmed_are_purged() {
    let mut hs = hs();
    for id in 1..=3 {
        hs.register(Timestamp::ZERO, &h("P"), pe(id, 4, PolicyInfo::random()))
            .expect("reg");
    }
    hs.mark_owned(RegistrarId(4));
    // PE 2 is confirmed by a fresh update.
    hs.register(Timestamp::ZERO, &h("P"), pe(2, 4, PolicyInfo::random()))
        .expect("reg");
    let purged = hs.purge_marked(RegistrarId(4));
    assert_eq!(purged.len(), 2);
    assert_eq!(hs.pe_count(), 1);
    assert!(hs.pool_element(b"P", PeIdentifier(2)).is_some());
}

#[test]
fn unreachable_reports_are_counted_per_pe() {
    let mut hs = hs();
    hs.register(Timestamp::ZERO, &h("P"), pe(1, 4, PolicyInfo::random()))
        .expect("reg");
    assert_eq!(hs.report_unreachable(b"P", PeIdentifier(1)), Ok(1));
    assert_eq!(hs.report_unreachable(b"P", PeIdentifier(1)), Ok(2));
    hs.register(Timestamp::ZERO, &h("P"), pe(1, 4, PolicyInfo::random()))
        .expect("reg");
    assert_eq!(
        hs.report_unreachable(b"P", PeIdentifier(1)),
        Ok(1),
        "re-registration clears"
    );
}

#[test]
fn reregistration_resets_degradation_in_the_pool() {
    let ty = PolicyType::LEAST_USED_DEGRADATION;
    let info = |load| PolicyInfo {
        load,
        load_degradation: 1000,
        ..PolicyInfo::new(ty)
    };
    let mut hs = hs();
    hs.register(Timestamp::ZERO, &h("P"), pe(1, 1, info(0)))
        .expect("reg");
    hs.register(Timestamp::ZERO, &h("P"), pe(2, 1, info(1500)))
        .expect("reg");
    let mut r = rng();
    let first = |hs: &mut Handlespace, r: &mut ChaCha8Rng| {
        hs.resolve(b"P", 1, r)
            .expect("pool")
            .iter()
            .next()
            .map(|p| p.identifier.0)
    };
    assert_eq!(first(&mut hs, &mut r), Some(1)); // 0 -> 1000
    assert_eq!(first(&mut hs, &mut r), Some(1)); // 1000 -> 2000
    assert_eq!(first(&mut hs, &mut r), Some(2));
    hs.register(Timestamp::ZERO, &h("P"), pe(1, 1, info(0)))
        .expect("re-register");
    assert_eq!(first(&mut hs, &mut r), Some(1));
}

#[test]
fn pu_cache_serves_fresh_entries_and_forgets_stale_ones() {
    let mut c = PuCache::new(HandlespaceConfig::default(), Duration::from_millis(250));
    let pes: Vec<_> = (1..=3)
        .map(|i| pe(i, 1, PolicyInfo::round_robin()))
        .collect();
    c.insert(Timestamp::ZERO, &h("P"), &pes);
    let mut r = rng();
    let got = c
        .resolve(Timestamp::from_millis(100), b"P", 2, &mut r)
        .expect("fresh");
    assert_eq!(got.len(), 2);
    c.remove(b"P", PeIdentifier(1));
    assert_eq!(c.len(), 2);
    assert_eq!(c.next_deadline(), Some(Timestamp::from_millis(250)));
    assert_eq!(
        c.resolve(Timestamp::from_millis(250), b"P", 2, &mut r),
        None
    );
    assert!(c.is_empty());
    // A response with another policy replaces the cached pool.
    c.insert(Timestamp::ZERO, &h("Q"), &pes[..1]);
    c.insert(Timestamp::ZERO, &h("Q"), &[pe(9, 1, PolicyInfo::random())]);
    assert_eq!(c.len(), 1);
}

#[test]
fn many_pes_in_one_pool_stay_consistent_through_churn() {
    let mut hs = hs();
    let mut r = rng();
    let t = Timestamp::ZERO;
    for id in 1..=2000u32 {
        hs.register(
            t,
            &h("Big"),
            pe(id, id % 3, PolicyInfo::weighted_random(id)),
        )
        .expect("reg");
    }
    for id in (1..=2000u32).step_by(2) {
        hs.deregister(b"Big", PeIdentifier(id)).expect("dereg");
    }
    assert_eq!(hs.pe_count(), 1000);
    let owned: usize = (0..3).map(|o| hs.owned_count(RegistrarId(o))).sum();
    assert_eq!(owned, 1000);
    for _ in 0..100 {
        let res = hs.resolve(b"Big", 3, &mut r).expect("pool");
        assert_eq!(res.len(), 3);
        assert!(res.iter().all(|p| p.identifier.0 % 2 == 0));
    }
}

#[test]
fn a_pool_of_weight_zero_pes_resolves_to_nothing() {
    // Regression from fuzzing (handlespace_ops): weighted random never picks weight 0.
    let mut hs = hs();
    hs.register(
        Timestamp::ZERO,
        &h("A"),
        pe(8, 3, PolicyInfo::weighted_random(0)),
    )
    .expect("reg");
    let mut r = rng();
    assert_eq!(hs.resolve(b"A", 3, &mut r).map(|r| r.len()), Ok(0));
    hs.register(
        Timestamp::ZERO,
        &h("A"),
        pe(9, 3, PolicyInfo::weighted_random(2)),
    )
    .expect("reg");
    let got: Vec<u32> = hs
        .resolve(b"A", 3, &mut r)
        .expect("pool")
        .iter()
        .map(|p| p.identifier.0)
        .collect();
    assert_eq!(got, vec![9]);
}
