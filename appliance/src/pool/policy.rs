//! `--policy NAME[:ARG...]`: pool member selection policies by their RSPLIB names.
//!
//! Names are matched without regard to case: the full names of RFC 5356 and RSPLIB
//! (`RoundRobin`, `WeightedRoundRobin`, `LeastUsedDegradation`, ... as
//! [`PolicyType::name`] spells them) and the short forms of RSPLIB's example servers
//! (`rr`, `wrr`, `rand`/`rd`, `wrand`/`wrd`, `lu`, `lud`, `plu`, `plud`, `rlu`, `rlud`,
//! `rplu`, `rplud`; the DPF policies have none). Arguments follow the name separated
//! by `:` in the order of the policy's fields ([`PolicyInfo::fields`]) without the load,
//! which the PE reports itself (`--load`), and without the distance, which registrars
//! measure:
//!
//! | policy | arguments |
//! |---|---|
//! | RoundRobin, Random, LeastUsed, RandomizedLeastUsed | - |
//! | WeightedRoundRobin, WeightedRandom | weight (integer, default 1) |
//! | Priority | priority (integer, default 0) |
//! | ...Degradation, PriorityLeastUsed..., RandomizedPriorityLeastUsed... | load degradation |
//! | ...DPF | [load degradation,] load DPF |
//! | WeightedRandomDPF | weight, weight DPF |
//!
//! Fractions (load degradation, DPF) are written as a fraction of one (`0.05`) or in per
//! cent (`5%`), and are sent as parts of `0xffffffff` (RFC 5356 §3.2).

use rserpool::policy::BuiltinPolicy;
use rserpool::wire::{PolicyField, PolicyInfo, PolicyType};

/// Short names RSPLIB accepts besides the full ones.
const SHORT_NAMES: &[(&str, PolicyType)] = &[
    ("rr", PolicyType::ROUND_ROBIN),
    ("wrr", PolicyType::WEIGHTED_ROUND_ROBIN),
    ("rand", PolicyType::RANDOM),
    ("rd", PolicyType::RANDOM),
    ("wrand", PolicyType::WEIGHTED_RANDOM),
    ("wrd", PolicyType::WEIGHTED_RANDOM),
    ("lu", PolicyType::LEAST_USED),
    ("lud", PolicyType::LEAST_USED_DEGRADATION),
    ("plu", PolicyType::PRIORITY_LEAST_USED),
    ("plud", PolicyType::PRIORITY_LEAST_USED_DEGRADATION),
    ("rlu", PolicyType::RANDOMIZED_LEAST_USED),
    ("rlud", PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION),
    ("rplu", PolicyType::RANDOMIZED_PRIORITY_LEAST_USED),
    (
        "rplud",
        PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
    ),
];

/// The policy type named `name` (full RSPLIB name or short form, any case).
fn policy_type(name: &str) -> Option<PolicyType> {
    let lower = name.to_ascii_lowercase();
    BuiltinPolicy::TYPES
        .iter()
        .copied()
        .find(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(&lower)))
        .or_else(|| {
            SHORT_NAMES
                .iter()
                .find(|(s, _)| *s == lower)
                .map(|(_, t)| *t)
        })
}

/// Whether the policy uses a load value (adaptive policies: `--load` applies).
pub fn is_adaptive(info: &PolicyInfo) -> bool {
    PolicyInfo::fields(info.policy_type).is_some_and(|f| f.contains(&PolicyField::Load))
}

/// A fraction of one (`0.05`) or a percentage (`5%`) as parts of `0xffffffff`.
pub fn parse_fraction(s: &str) -> Result<u32, String> {
    let (text, scale) = match s.strip_suffix('%') {
        Some(t) => (t, 100.0),
        None => (s, 1.0),
    };
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a fraction (0..1) or a percentage"))?;
    let f = v / scale;
    if !(0.0..=1.0).contains(&f) {
        return Err(format!("'{s}' is not within 0..1 (0%..100%)"));
    }
    Ok((f * f64::from(u32::MAX)).round() as u32)
}

/// Parses `--policy NAME[:ARG...]` (see the module documentation).
pub fn parse_policy(s: &str) -> Result<PolicyInfo, String> {
    let mut parts = s.split(':');
    let name = parts.next().unwrap_or_default().trim();
    let args: Vec<&str> = parts.map(str::trim).collect();
    let Some(ty) = policy_type(name) else {
        return Err(format!(
            "unknown policy '{name}' (known: {})",
            BuiltinPolicy::TYPES
                .iter()
                .filter_map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let fields = PolicyInfo::fields(ty).unwrap_or(&[]);
    let settable: Vec<PolicyField> = fields
        .iter()
        .copied()
        .filter(|f| !matches!(f, PolicyField::Load | PolicyField::Distance))
        .collect();
    if args.len() > settable.len() {
        return Err(format!(
            "policy {} takes {} argument(s), not {}",
            ty,
            settable.len(),
            args.len()
        ));
    }
    let mut info = PolicyInfo::new(ty);
    if ty == PolicyType::WEIGHTED_ROUND_ROBIN
        || ty == PolicyType::WEIGHTED_RANDOM
        || ty == PolicyType::WEIGHTED_RANDOM_DPF
    {
        info.weight = 1;
    }
    for (field, arg) in settable.iter().zip(&args) {
        match field {
            PolicyField::Weight | PolicyField::Priority => {
                info.weight = arg
                    .parse()
                    .map_err(|_| format!("policy {ty}: '{arg}' is not an integer weight"))?;
            }
            PolicyField::LoadDegradation => {
                info.load_degradation =
                    parse_fraction(arg).map_err(|e| format!("policy {ty}: degradation {e}"))?;
            }
            PolicyField::Dpf => {
                info.dpf = parse_fraction(arg).map_err(|e| format!("policy {ty}: DPF {e}"))?;
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rsplib_names_and_short_forms_in_any_case_name_the_policy() {
        assert_eq!(
            parse_policy("RoundRobin").map(|p| p.policy_type),
            Ok(PolicyType::ROUND_ROBIN)
        );
        assert_eq!(
            parse_policy("leastused").map(|p| p.policy_type),
            Ok(PolicyType::LEAST_USED)
        );
        assert_eq!(
            parse_policy("RPLUD:1%").map(|p| p.policy_type),
            Ok(PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION)
        );
        for t in BuiltinPolicy::TYPES {
            let name = t.name().expect("named");
            assert_eq!(parse_policy(name).map(|p| p.policy_type), Ok(t), "{name}");
        }
    }

    #[test]
    fn arguments_fill_weight_priority_degradation_and_dpf() {
        let p = parse_policy("WeightedRoundRobin:3").expect("valid");
        assert_eq!(p.weight, 3);
        assert_eq!(parse_policy("wrand").expect("valid").weight, 1);
        assert_eq!(parse_policy("Priority:7").expect("valid").weight, 7);
        let p = parse_policy("LeastUsedDegradation:50%").expect("valid");
        assert_eq!(p.load_degradation, parse_fraction("0.5").expect("valid"));
        let p = parse_policy("LeastUsedDegradationDPF:0.1:0.2").expect("valid");
        assert_eq!(p.load_degradation, parse_fraction("10%").expect("valid"));
        assert_eq!(p.dpf, parse_fraction("20%").expect("valid"));
        let p = parse_policy("WeightedRandomDPF:4:0.5").expect("valid");
        assert_eq!(
            (p.weight, p.dpf),
            (4, parse_fraction("0.5").expect("valid"))
        );
    }

    #[test]
    fn unknown_names_extra_arguments_and_bad_values_are_refused() {
        let e = parse_policy("Fastest").expect_err("unknown");
        assert!(
            e.contains("unknown policy 'Fastest'") && e.contains("RoundRobin"),
            "{e}"
        );
        assert!(parse_policy("RoundRobin:3").is_err());
        assert!(parse_policy("WeightedRoundRobin:x").is_err());
        assert!(parse_policy("LeastUsedDegradation:150%").is_err());
        assert!(parse_policy("LeastUsedDegradation:-0.1").is_err());
    }

    #[test]
    fn only_policies_with_a_load_field_are_adaptive() {
        assert!(is_adaptive(&parse_policy("LeastUsed").expect("valid")));
        assert!(is_adaptive(
            &parse_policy("PriorityLeastUsedDPF").expect("valid")
        ));
        assert!(!is_adaptive(&parse_policy("RoundRobin").expect("valid")));
        assert!(!is_adaptive(
            &parse_policy("WeightedRandom:2").expect("valid")
        ));
    }
}
