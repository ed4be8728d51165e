//! Stateful fuzzing of the handlespace: arbitrary sequences of registrations,
//! deregistrations, resolutions, timers, exports and takeovers, checked against a simple
//! model (PE counts, ownership checksums recomputed from scratch, export coverage).
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::handlespace::{ChecksumAccumulator, Handlespace, HandlespaceConfig, TimerKind};
use rserpool::policy::BuiltinPolicy;
use rserpool::wire::{
    PeIdentifier, PolicyInfo, PoolElement, PoolHandle, RegistrarId, TransportParameter,
    TransportUse,
};

fuzz_target!(|data: &[u8]| {
    let mut hs = Handlespace::new(HandlespaceConfig {
        max_pes_per_pool: 40,
        max_pools: 6,
        max_pes: 100,
        ..HandlespaceConfig::default()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // Model: (pool, id) -> owner.
    let mut model: BTreeMap<(Vec<u8>, u32), u32> = BTreeMap::new();
    let mut now = Timestamp::ZERO;
    for op in data.chunks_exact(6) {
        let pool = vec![b'A' + op[1] % 8];
        let handle = PoolHandle::new(&pool);
        let id = u32::from(op[2] % 50);
        let owner = u32::from(op[3] % 4);
        match op[0] % 8 {
            0 | 1 => {
                let ty = BuiltinPolicy::TYPES[usize::from(op[4]) % BuiltinPolicy::TYPES.len()];
                let policy = PolicyInfo {
                    weight: u32::from(op[5]),
                    load: u32::from(op[5]) << 24,
                    load_degradation: u32::from(op[4]) << 16,
                    ..PolicyInfo::new(ty)
                };
                let pe = PoolElement {
                    identifier: PeIdentifier(id),
                    home_registrar: RegistrarId(owner),
                    registration_life: u32::from(op[5]) * 10,
                    user_transport: TransportParameter::sctp(
                        1 + u16::from(op[5] % 3),
                        TransportUse::DATA_ONLY,
                        vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, op[2]))],
                    ),
                    policy,
                    asap_transport: None,
                };
                if hs.register(now, &handle, pe).is_ok() {
                    model.insert((pool.clone(), id), owner);
                }
            }
            2 => {
                let ok = hs.deregister(&pool, PeIdentifier(id)).is_ok();
                assert_eq!(ok, model.remove(&(pool.clone(), id)).is_some());
            }
            3 => {
                let k = usize::from(op[4] % 5);
                if let Ok(r) = hs.resolve(&pool, k, &mut rng) {
                    let n = model.keys().filter(|(p, _)| *p == pool).count();
                    // Fewer only when weighted policies give some PEs weight 0.
                    assert!(r.len() <= k.min(n));
                    let mut ids: Vec<u32> = r.iter().map(|p| p.identifier.0).collect();
                    let got = ids.len();
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), got, "distinct PEs");
                    for id in ids {
                        assert!(model.contains_key(&(pool.clone(), id)));
                    }
                } else {
                    assert!(!model.keys().any(|(p, _)| *p == pool));
                }
            }
            4 => {
                now = now + std::time::Duration::from_millis(u64::from(op[4]) * 20);
                while let Some(e) = hs.poll_expired(now) {
                    if e.kind == TimerKind::Expiry {
                        hs.deregister(e.pool_handle.as_bytes(), e.identifier)
                            .expect("expired PE exists");
                        model.remove(&(e.pool_handle.as_bytes().to_vec(), e.identifier.0));
                    }
                }
                if let Some(d) = hs.next_deadline() {
                    assert!(d > now);
                }
            }
            5 => {
                let to = u32::from(op[4] % 4);
                hs.take_over(RegistrarId(owner), RegistrarId(to));
                for v in model.values_mut() {
                    if *v == owner {
                        *v = to;
                    }
                }
            }
            6 => {
                let filter = (op[4] & 1 == 1).then_some(RegistrarId(owner));
                let mut from = None;
                let mut count = 0;
                for _ in 0..200 {
                    let piece = hs.export(filter, from.as_ref(), usize::from(op[5] % 7) + 1, 300);
                    count += piece.pools.iter().map(|(_, p)| p.len()).sum::<usize>();
                    match piece.next {
                        Some(c) => from = Some(c),
                        None => break,
                    }
                }
                let expected = model
                    .values()
                    .filter(|o| filter.is_none_or(|f| f.0 == **o))
                    .count();
                assert_eq!(count, expected);
            }
            _ => {
                let _ = hs.set_timer(
                    &pool,
                    PeIdentifier(id),
                    now + std::time::Duration::from_millis(u64::from(op[4])),
                    TimerKind::KeepAliveTimeout,
                );
            }
        }
        assert_eq!(hs.pe_count(), model.len());
    }
    for o in 0..4 {
        let mut acc = ChecksumAccumulator::default();
        for ((p, id), owner) in &model {
            if *owner == o {
                acc.add(ChecksumAccumulator::pe_contribution(p, PeIdentifier(*id)));
            }
        }
        assert_eq!(hs.ownership_checksum(RegistrarId(o)), acc.finish());
    }
});
