use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(0x5eed)
}

fn selector(ty: PolicyType) -> PoolSelector {
    PoolSelector::new(Arc::new(BuiltinPolicy::new(ty).expect("builtin")))
}

fn pick(sel: &mut PoolSelector, k: usize, r: &mut ChaCha8Rng) -> Vec<u32> {
    let mut out = Vec::new();
    sel.select(k, r, &mut out);
    out
}

/// Upper 0.1 % quantile of chi-square with `df` degrees of freedom (Wilson-Hilferty).
fn chi2_critical(df: usize) -> f64 {
    let d = df as f64;
    let z = 3.09;
    d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3)
}

fn chi2(observed: &[u64], expected_share: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    let total: f64 = expected_share.iter().sum();
    observed
        .iter()
        .zip(expected_share)
        .map(|(o, e)| {
            let exp = n as f64 * e / total;
            (*o as f64 - exp).powi(2) / exp
        })
        .sum()
}

fn first_pick_histogram(sel: &mut PoolSelector, n: usize, draws: usize, k: usize) -> Vec<u64> {
    let mut r = rng();
    let mut hist = vec![0u64; n];
    for _ in 0..draws {
        let got = pick(sel, k, &mut r);
        assert_eq!(got.len(), k.min(n));
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "selected PEs are distinct");
        hist[got[0] as usize] += 1;
    }
    hist
}

#[test]
fn round_robin_selects_every_pe_once_per_cycle() {
    let mut sel = selector(PolicyType::ROUND_ROBIN);
    for s in 0..7 {
        sel.insert(s, &PolicyInfo::round_robin());
    }
    let mut r = rng();
    let mut counts = [0u32; 7];
    let mut order = Vec::new();
    for _ in 0..70 {
        let p = pick(&mut sel, 1, &mut r)[0];
        counts[p as usize] += 1;
        order.push(p);
    }
    assert!(counts.iter().all(|c| *c == 10), "{counts:?}");
    assert_eq!(&order[..7], &order[7..14], "the cycle repeats");
}

#[test]
fn round_robin_with_three_items_advances_by_one_like_rsplib() {
    let mut sel = selector(PolicyType::ROUND_ROBIN);
    for s in 0..5 {
        sel.insert(s, &PolicyInfo::round_robin());
    }
    let mut r = rng();
    assert_eq!(pick(&mut sel, 3, &mut r), vec![0, 1, 2]);
    assert_eq!(pick(&mut sel, 3, &mut r), vec![1, 2, 3]);
    assert_eq!(pick(&mut sel, 3, &mut r), vec![2, 3, 4]);
    assert_eq!(pick(&mut sel, 3, &mut r), vec![3, 4, 0]);
}

#[test]
fn round_robin_appends_new_pes_and_keeps_place_on_update() {
    let mut sel = selector(PolicyType::ROUND_ROBIN);
    for s in 0..3 {
        sel.insert(s, &PolicyInfo::round_robin());
    }
    let mut r = rng();
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
    sel.insert(3, &PolicyInfo::round_robin());
    sel.update(1, &PolicyInfo::round_robin(), true);
    sel.remove(2);
    // Ring [1, 2, 0] + 3 at the end - 2 = [1, 0, 3]; PE 1 kept its place on update.
    assert_eq!(pick(&mut sel, 4, &mut r), vec![1, 0, 3]);
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
    sel.remove(3);
    sel.remove(0);
    sel.remove(1);
    assert!(pick(&mut sel, 2, &mut r).is_empty());
    sel.insert(5, &PolicyInfo::round_robin());
    assert_eq!(pick(&mut sel, 2, &mut r), vec![5]);
}

#[test]
fn weighted_round_robin_selects_each_pe_weight_times_per_round() {
    let mut sel = selector(PolicyType::WEIGHTED_ROUND_ROBIN);
    let weights = [1u32, 2, 3, 4];
    for (s, w) in weights.iter().enumerate() {
        sel.insert(s as u32, &PolicyInfo::weighted_round_robin(*w));
    }
    let mut r = rng();
    let per_round: u32 = weights.iter().sum();
    for _round in 0..5 {
        let mut counts = [0u32; 4];
        for _ in 0..per_round {
            counts[pick(&mut sel, 1, &mut r)[0] as usize] += 1;
        }
        assert_eq!(counts, [1, 2, 3, 4]);
    }
}

#[test]
fn random_is_uniform_by_chi_square() {
    let n = 20;
    let mut sel = selector(PolicyType::RANDOM);
    for s in 0..n {
        sel.insert(s, &PolicyInfo::random());
    }
    let hist = first_pick_histogram(&mut sel, n as usize, 100_000, 1);
    let stat = chi2(&hist, &vec![1.0; n as usize]);
    assert!(stat < chi2_critical(n as usize - 1), "chi2 {stat}");
}

#[test]
fn weighted_random_is_proportional_to_weight_by_chi_square() {
    let weights = [1u32, 2, 5, 10, 20, 62];
    let mut sel = selector(PolicyType::WEIGHTED_RANDOM);
    for (s, w) in weights.iter().enumerate() {
        sel.insert(s as u32, &PolicyInfo::weighted_random(*w));
    }
    let hist = first_pick_histogram(&mut sel, weights.len(), 100_000, 3);
    let share: Vec<f64> = weights.iter().map(|w| f64::from(*w)).collect();
    let stat = chi2(&hist, &share);
    assert!(
        stat < chi2_critical(weights.len() - 1),
        "chi2 {stat} {hist:?}"
    );
}

#[test]
fn a_wrong_distribution_fails_the_chi_square_check() {
    // Guard against a vacuous test: uniform counts do not fit a skewed expectation.
    let hist = [1000u64, 1000, 1000, 1000];
    assert!(chi2(&hist, &[1.0, 2.0, 3.0, 4.0]) > chi2_critical(3));
}

#[test]
fn randomized_least_used_is_proportional_to_free_capacity() {
    let loads = [0u32, u32::MAX / 2, u32::MAX / 4 * 3, u32::MAX / 10 * 9];
    let mut sel = selector(PolicyType::RANDOMIZED_LEAST_USED);
    for (s, l) in loads.iter().enumerate() {
        let info = PolicyInfo {
            load: *l,
            ..PolicyInfo::new(PolicyType::RANDOMIZED_LEAST_USED)
        };
        sel.insert(s as u32, &info);
    }
    let hist = first_pick_histogram(&mut sel, loads.len(), 100_000, 1);
    let share: Vec<f64> = loads.iter().map(|l| f64::from(u32::MAX - l)).collect();
    let stat = chi2(&hist, &share);
    assert!(
        stat < chi2_critical(loads.len() - 1),
        "chi2 {stat} {hist:?}"
    );
}

#[test]
fn weighted_random_dpf_penalises_distance() {
    let mut sel = selector(PolicyType::WEIGHTED_RANDOM_DPF);
    // Same weight; PE 1 is 100 ms away with a DPF of 0.5 % per ms -> weight halves.
    let near = PolicyInfo {
        weight: 1000,
        ..PolicyInfo::new(PolicyType::WEIGHTED_RANDOM_DPF)
    };
    let far = PolicyInfo {
        dpf: u32::MAX / 200,
        distance: 100,
        ..near.clone()
    };
    sel.insert(0, &near);
    sel.insert(1, &far);
    let hist = first_pick_histogram(&mut sel, 2, 60_000, 1);
    let stat = chi2(&hist, &[1000.0, 500.0]);
    assert!(stat < chi2_critical(1), "chi2 {stat} {hist:?}");
}

#[test]
fn priority_prefers_the_highest_and_rotates_among_equals() {
    let mut sel = selector(PolicyType::PRIORITY);
    sel.insert(0, &PolicyInfo::priority(1));
    sel.insert(1, &PolicyInfo::priority(9));
    sel.insert(2, &PolicyInfo::priority(9));
    sel.insert(3, &PolicyInfo::priority(5));
    let mut r = rng();
    let firsts: Vec<u32> = (0..6).map(|_| pick(&mut sel, 1, &mut r)[0]).collect();
    assert_eq!(firsts, vec![1, 2, 1, 2, 1, 2]);
    assert_eq!(pick(&mut sel, 4, &mut r), vec![1, 2, 3, 0]);
}

fn lu(ty: PolicyType, load: u32, ldeg: u32) -> PolicyInfo {
    PolicyInfo {
        load,
        load_degradation: ldeg,
        ..PolicyInfo::new(ty)
    }
}

#[test]
fn least_used_prefers_the_least_loaded_and_rotates_among_equals() {
    let mut sel = selector(PolicyType::LEAST_USED);
    sel.insert(0, &lu(PolicyType::LEAST_USED, 500, 0));
    sel.insert(1, &lu(PolicyType::LEAST_USED, 100, 0));
    sel.insert(2, &lu(PolicyType::LEAST_USED, 100, 0));
    let mut r = rng();
    let firsts: Vec<u32> = (0..4).map(|_| pick(&mut sel, 1, &mut r)[0]).collect();
    assert_eq!(firsts, vec![1, 2, 1, 2]);
    // A load update re-sorts.
    sel.update(0, &lu(PolicyType::LEAST_USED, 10, 0), false);
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
}

#[test]
fn degradation_accumulates_per_selection_and_resets_on_reregistration() {
    let ty = PolicyType::LEAST_USED_DEGRADATION;
    let mut sel = selector(ty);
    sel.insert(0, &lu(ty, 1000, 300));
    sel.insert(1, &lu(ty, 1500, 300));
    let mut r = rng();
    // 0 (1000) -> deg 300 (1300); 0 again -> 1600; now 1 (1500) wins.
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
    assert_eq!(sel.state(0).map(|s| s.degradation), Some(600));
    assert_eq!(pick(&mut sel, 1, &mut r), vec![1]);
    // Re-registration resets the degradation.
    sel.update(0, &lu(ty, 1000, 300), true);
    assert_eq!(sel.state(0).map(|s| s.degradation), Some(0));
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]);
    // A plain update (not a re-registration) keeps it.
    sel.update(0, &lu(ty, 1000, 300), false);
    assert_eq!(sel.state(0).map(|s| s.degradation), Some(300));
}

#[test]
fn degradation_saturates_at_full_load() {
    let ty = PolicyType::LEAST_USED_DEGRADATION;
    let mut sel = selector(ty);
    sel.insert(0, &lu(ty, 0, u32::MAX / 2 + 1));
    let mut r = rng();
    for _ in 0..5 {
        pick(&mut sel, 1, &mut r);
    }
    assert_eq!(sel.state(0).map(|s| s.degradation), Some(u32::MAX));
}

#[test]
fn priority_least_used_adds_the_load_degradation_as_offset() {
    let ty = PolicyType::PRIORITY_LEAST_USED;
    let mut sel = selector(ty);
    sel.insert(0, &lu(ty, 100, 1000));
    sel.insert(1, &lu(ty, 500, 0));
    let mut r = rng();
    for _ in 0..3 {
        assert_eq!(
            pick(&mut sel, 1, &mut r),
            vec![1],
            "static offset, no accumulation"
        );
    }
}

#[test]
fn least_used_dpf_adds_distance_penalty() {
    let ty = PolicyType::LEAST_USED_DPF;
    let mut sel = selector(ty);
    let near = PolicyInfo {
        load: 2000,
        ..PolicyInfo::new(ty)
    };
    let far = PolicyInfo {
        load: 1000,
        dpf: 20,
        distance: 100,
        ..PolicyInfo::new(ty)
    };
    sel.insert(0, &near);
    sel.insert(1, &far);
    let mut r = rng();
    // far: 1000 + 100 * 20 = 3000 > 2000.
    assert_eq!(pick(&mut sel, 2, &mut r), vec![0, 1]);
}

#[test]
fn every_builtin_selects_distinct_pes_and_survives_removal() {
    let mut r = rng();
    for ty in BuiltinPolicy::TYPES {
        let mut sel = selector(ty);
        for s in 0..50u32 {
            let info = PolicyInfo {
                weight: s + 1,
                load: s * 1000,
                load_degradation: 7,
                dpf: 3,
                distance: s,
                ..PolicyInfo::new(ty)
            };
            sel.insert(s, &info);
        }
        for s in (0..50).step_by(3) {
            sel.remove(s);
        }
        assert_eq!(sel.len(), 33);
        for _ in 0..100 {
            let got = pick(&mut sel, 3, &mut r);
            assert_eq!(got.len(), 3, "{ty:?}");
            assert!(got.iter().all(|s| s % 3 != 0), "{ty:?} chose a removed PE");
            assert!(got[0] != got[1] && got[1] != got[2] && got[0] != got[2]);
        }
    }
}

#[test]
fn zero_weight_pes_are_never_chosen_by_weighted_random() {
    let mut sel = selector(PolicyType::WEIGHTED_RANDOM);
    sel.insert(0, &PolicyInfo::weighted_random(0));
    sel.insert(1, &PolicyInfo::weighted_random(3));
    let mut r = rng();
    for _ in 0..100 {
        assert_eq!(pick(&mut sel, 2, &mut r), vec![1]);
    }
}

#[derive(Debug)]
struct LargestIdFirst;

impl Policy for LargestIdFirst {
    fn policy_type(&self) -> PolicyType {
        PolicyType(0xc0de_0001)
    }
    fn name(&self) -> &str {
        "LargestWeightFirst"
    }
    fn selection(&self) -> Selection {
        Selection::Ordered
    }
    fn validate(&self, info: &PolicyInfo) -> Result<(), PolicyError> {
        if info.opaque.len() == 4 {
            Ok(())
        } else {
            Err(PolicyError::InvalidValue(info.policy_type))
        }
    }
    fn sort_key(&self, s: &SelectionState) -> u128 {
        u128::from(u32::MAX - s.weight)
    }
    fn max_increment(&self) -> usize {
        0
    }
}

#[test]
fn registry_rejects_unknown_policies_until_an_implementation_is_registered() {
    let mut reg = PolicyRegistry::with_builtins();
    let mut info = PolicyInfo::new(PolicyType(0xc0de_0001));
    assert_eq!(
        reg.resolve(&info).map(|_| ()),
        Err(PolicyError::UnknownPolicy(PolicyType(0xc0de_0001)))
    );
    reg.register(Arc::new(LargestIdFirst));
    assert_eq!(
        reg.resolve(&info).map(|_| ()),
        Err(PolicyError::InvalidValue(PolicyType(0xc0de_0001)))
    );
    info.opaque = vec![0, 0, 0, 1];
    let p = Arc::clone(reg.resolve(&info).expect("registered"));
    let mut sel = PoolSelector::new(p);
    for (s, w) in [(0u32, 5u32), (1, 9), (2, 1)] {
        sel.insert(
            s,
            &PolicyInfo {
                weight: w,
                ..info.clone()
            },
        );
    }
    let mut r = rng();
    assert_eq!(pick(&mut sel, 3, &mut r), vec![1, 0, 2]);
    assert!(reg.get(PolicyType::ROUND_ROBIN).is_some());
    assert!(
        PolicyRegistry::empty()
            .get(PolicyType::ROUND_ROBIN)
            .is_none()
    );
}

#[test]
fn weighted_selection_matches_a_naive_model_after_random_updates() {
    // The sum tree stays consistent with the per-slot weights through inserts,
    // updates and removals, including growth past its initial capacity.
    let ty = PolicyType::WEIGHTED_RANDOM;
    let mut sel = selector(ty);
    let mut model = vec![0u64; 300];
    let mut r = rng();
    for i in 0..3000u32 {
        let slot = (r.next_u32() % 300) as usize;
        match i % 3 {
            0 | 1 => {
                let w = r.next_u32() % 100;
                sel.update(slot as u32, &PolicyInfo::weighted_random(w), false);
                model[slot] = u64::from(w);
            }
            _ => {
                sel.remove(slot as u32);
                model[slot] = 0;
            }
        }
    }
    let total: u64 = model.iter().sum();
    assert_eq!(sel.weights.total, total);
    let mut acc = 0;
    for (slot, w) in model.iter().enumerate() {
        if *w > 0 {
            assert_eq!(sel.weights.find(acc), slot);
            assert_eq!(sel.weights.find(acc + w - 1), slot);
        }
        acc += w;
    }
}

#[test]
fn weighted_draws_without_replacement_have_the_sequential_distribution() {
    // P(first = i, second = j) = p_i * p_j / (1 - p_i).
    let weights = [1u32, 2, 3, 4];
    let mut sel = selector(PolicyType::WEIGHTED_RANDOM);
    for (s, w) in weights.iter().enumerate() {
        sel.insert(s as u32, &PolicyInfo::weighted_random(*w));
    }
    let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
    let p: Vec<f64> = weights.iter().map(|w| f64::from(*w) / total).collect();
    let mut hist = vec![0u64; 16];
    let mut share = vec![0f64; 16];
    for i in 0..4 {
        for j in 0..4 {
            if i != j {
                share[i * 4 + j] = p[i] * p[j] / (1.0 - p[i]);
            }
        }
    }
    let mut r = rng();
    for _ in 0..120_000 {
        let got = pick(&mut sel, 2, &mut r);
        hist[got[0] as usize * 4 + got[1] as usize] += 1;
    }
    let (obs, exp): (Vec<u64>, Vec<f64>) = hist
        .iter()
        .zip(&share)
        .filter(|(_, e)| **e > 0.0)
        .map(|(o, e)| (*o, *e))
        .unzip();
    let stat = chi2(&obs, &exp);
    assert!(stat < chi2_critical(obs.len() - 1), "chi2 {stat} {hist:?}");
}

#[test]
fn skewed_weights_still_yield_k_distinct_pes() {
    // One PE holds almost all weight: rejection sampling gives up and the removal path
    // draws the rest.
    let mut sel = selector(PolicyType::WEIGHTED_RANDOM);
    sel.insert(0, &PolicyInfo::weighted_random(u32::MAX));
    for s in 1..4 {
        sel.insert(s, &PolicyInfo::weighted_random(1));
    }
    let mut r = rng();
    for _ in 0..50 {
        let mut got = pick(&mut sel, 4, &mut r);
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }
    // The tree is restored after each selection.
    assert_eq!(sel.weights.total, u64::from(u32::MAX) + 3);
}

#[test]
fn priority_least_used_degradation_adds_offset_and_accumulated_degradation() {
    let ty = PolicyType::PRIORITY_LEAST_USED_DEGRADATION;
    let mut sel = selector(ty);
    sel.insert(0, &lu(ty, 100, 400)); // 500, +400 per use
    sel.insert(1, &lu(ty, 800, 0)); // 800, never degrades
    let mut r = rng();
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0]); // 500 -> 900
    assert_eq!(pick(&mut sel, 1, &mut r), vec![1]); // 800 < 900
    assert_eq!(pick(&mut sel, 1, &mut r), vec![1]);
    sel.update(0, &lu(ty, 100, 400), true);
    assert_eq!(pick(&mut sel, 1, &mut r), vec![0], "re-registration resets");
}

#[test]
fn dpf_degradation_variants_combine_all_terms() {
    for ty in [
        PolicyType::LEAST_USED_DEGRADATION_DPF,
        PolicyType::PRIORITY_LEAST_USED_DPF,
        PolicyType::PRIORITY_LEAST_USED_DEGRADATION_DPF,
    ] {
        let p = BuiltinPolicy::new(ty).expect("builtin");
        let mut s = SelectionState::new(&PolicyInfo {
            load: 1000,
            load_degradation: 10,
            dpf: 3,
            distance: 100,
            ..PolicyInfo::new(ty)
        });
        s.degradation = 7;
        let expected = match ty {
            PolicyType::LEAST_USED_DEGRADATION_DPF => 1000 + 7 + 300,
            PolicyType::PRIORITY_LEAST_USED_DPF => 1000 + 10 + 300,
            _ => 1000 + 10 + 7 + 300,
        };
        assert_eq!(p.sort_key(&s), expected, "{ty:?}");
        // Saturates at full load instead of wrapping.
        s.distance = u32::MAX;
        assert_eq!(p.sort_key(&s), u128::from(u32::MAX), "{ty:?}");
    }
}

#[test]
fn randomized_priority_least_used_is_proportional_to_capacity_minus_offset() {
    let ty = PolicyType::RANDOMIZED_PRIORITY_LEAST_USED;
    let mut sel = selector(ty);
    let quarter = u32::MAX / 4;
    sel.insert(0, &lu(ty, quarter, quarter)); // weight ~ 1/2
    sel.insert(1, &lu(ty, 0, quarter)); // weight ~ 3/4
    sel.insert(2, &lu(ty, 0, 0)); // weight ~ 1
    let hist = first_pick_histogram(&mut sel, 3, 60_000, 1);
    let stat = chi2(&hist, &[2.0, 3.0, 4.0]);
    assert!(stat < chi2_critical(2), "chi2 {stat} {hist:?}");
}

#[test]
fn randomized_least_used_degradation_accumulates_on_use() {
    let ty = PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION;
    let mut sel = selector(ty);
    sel.insert(0, &lu(ty, 0, u32::MAX / 4));
    let mut r = rng();
    pick(&mut sel, 1, &mut r);
    pick(&mut sel, 1, &mut r);
    let s = sel.state(0).expect("state");
    assert_eq!(s.degradation, (u32::MAX / 4) * 2);
    assert_eq!(
        BuiltinPolicy::new(ty).expect("builtin").weight(s),
        u64::from(u32::MAX) - u64::from(s.degradation)
    );
}

#[test]
fn weighted_round_robin_joiner_starts_in_the_current_round() {
    let mut sel = selector(PolicyType::WEIGHTED_ROUND_ROBIN);
    sel.insert(0, &PolicyInfo::weighted_round_robin(2));
    sel.insert(1, &PolicyInfo::weighted_round_robin(2));
    let mut r = rng();
    for _ in 0..8 {
        pick(&mut sel, 1, &mut r);
    }
    // Two full rounds done; a newcomer must not be chosen eight times in a row.
    sel.insert(2, &PolicyInfo::weighted_round_robin(2));
    let mut counts = [0; 3];
    for _ in 0..6 {
        counts[pick(&mut sel, 1, &mut r)[0] as usize] += 1;
    }
    assert_eq!(counts, [2, 2, 2]);
}
