//! Pool member selection policies (RFC 5356 and RSPLIB's extensions).
//!
//! A policy is described by the [`Policy`] trait in one of three shapes, which together
//! cover every policy of RFC 5356 and RSPLIB:
//!
//! - **Cyclic** ([`Selection::Cyclic`]): plain round robin over a ring in registration
//!   order; the chosen PE moves to the end (O(k) per selection).
//! - **Ordered** ([`Selection::Ordered`]): PEs are kept sorted by a policy-defined key
//!   ([`Policy::sort_key`]) and, within equal keys, by a per-pool sequence number that is
//!   renewed each time a PE is chosen. Choosing takes the first `k`; the first
//!   [`Policy::max_increment`] of them get a new sequence number (they move behind their
//!   equals: "round robin among equal") and their [`Policy::on_selected`] update (e.g. the
//!   load degradation of RFC 5356 §5.2 accumulates). Round Robin, Weighted Round Robin,
//!   Priority and all Least Used variants are ordered.
//! - **Weighted** ([`Selection::Weighted`]): each PE has a weight ([`Policy::weight`]); `k`
//!   PEs are drawn without replacement, each with probability proportional to its weight
//!   among those not drawn yet. Random, Weighted Random and the randomized LU variants are
//!   weighted.
//!
//! [`PoolSelector`] holds one pool's selection structure: an intrusive ring for cyclic
//! policies, a B-tree keyed by `(sort key, sequence number)` for ordered policies, a
//! 16-ary sum tree of weights for weighted ones (five levels for 100k PEs). Insert,
//! update, remove and selecting `k` PEs cost O(k log n); nothing scans the pool.
//!
//! Applications add policies by implementing [`Policy`] and registering them in a
//! [`PolicyRegistry`]; a registrar accepts a registration only when the registry knows its
//! policy type (unknown policies are rejected, as in RSPLIB).
//!
//! Semantics follow RSPLIB where the RFC leaves room:
//! - Weighted Round Robin: a PE of weight `w` is chosen `w` times per round (weight 0
//!   counts as 1); a PE joining mid-way starts in the current round.
//! - Priority (RFC 5356 §4.5): highest priority first; round robin among equal ones.
//! - Priority Least Used: key = load + load degradation (the degradation field acts as a
//!   static offset); "with Degradation" variants add the accumulated degradation.
//! - Degradation accumulates by the PE's load degradation on each selection (saturating
//!   at 100 %) and resets to zero when the PE re-registers. Unlike RSPLIB 3.x, the
//!   randomized degradation variants accumulate it too (RSPLIB never increments it there).
//! - DPF variants: key = load (+ degradation terms) + distance × load DPF (saturating);
//!   weighted random DPF uses weight − weight × distance × weight DPF / 2³²−1.
//! - Randomized Least Used: weight = max(1, 0xffffffff − load [− degradation terms]).

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand_core::RngCore;

use crate::wire::{PolicyInfo, PolicyType};

const MAX: u64 = u32::MAX as u64;

/// How a policy selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Plain round robin: a ring in registration order; a chosen PE moves to the end.
    /// O(k) per selection (no key).
    Cyclic,
    /// Sorted by [`Policy::sort_key`], then by sequence number.
    Ordered,
    /// Randomly, proportional to [`Policy::weight`].
    Weighted,
}

/// The per-PE selection state a policy reads and updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionState {
    /// Weight or priority from the PE's policy parameter.
    pub weight: u32,
    /// Load.
    pub load: u32,
    /// Load degradation.
    pub load_degradation: u32,
    /// Load or weight DPF.
    pub dpf: u32,
    /// Distance in milliseconds.
    pub distance: u32,
    /// Accumulated degradation (reset on re-registration).
    pub degradation: u32,
    /// Round counter (Weighted Round Robin).
    pub round: u64,
    /// Selections left in the current round (Weighted Round Robin).
    pub virtual_counter: u32,
    /// How often the PE was used (counted for the first [`Policy::max_increment`] PEs of
    /// each selection).
    pub selections: u64,
}

impl SelectionState {
    /// Fresh state from a PE's policy information.
    pub fn new(info: &PolicyInfo) -> Self {
        SelectionState {
            weight: info.weight,
            load: info.load,
            load_degradation: info.load_degradation,
            dpf: info.dpf,
            distance: info.distance,
            degradation: 0,
            round: 0,
            virtual_counter: 0,
            selections: 0,
        }
    }

    fn refresh(&mut self, info: &PolicyInfo) {
        self.weight = info.weight;
        self.load = info.load;
        self.load_degradation = info.load_degradation;
        self.dpf = info.dpf;
        self.distance = info.distance;
    }
}

/// What a policy learns about the pool when a PE joins.
#[derive(Debug, Clone, Copy)]
pub struct PoolContext {
    /// The lowest round counter in the pool (Weighted Round Robin), 0 if empty.
    pub current_round: u64,
}

/// Why policy information is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// No implementation is registered for the type.
    UnknownPolicy(PolicyType),
    /// The policy rejects the values (e.g. a custom policy's constraints).
    InvalidValue(PolicyType),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::UnknownPolicy(t) => write!(f, "unknown pool policy {t:?}"),
            PolicyError::InvalidValue(t) => write!(f, "invalid values for pool policy {t:?}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A pool member selection policy.
///
/// Implement it to add a selection rule; register it in a [`PolicyRegistry`]. The built-in
/// policies ([`BuiltinPolicy`]) implement it too. A policy must be deterministic given its
/// inputs (randomness comes from the RNG handed to [`PoolSelector::select`]).
pub trait Policy: fmt::Debug + Send + Sync {
    /// The policy type this implementation handles.
    fn policy_type(&self) -> PolicyType;

    /// A human-readable name.
    fn name(&self) -> &str;

    /// Ordered or weighted selection.
    fn selection(&self) -> Selection;

    /// Checks a PE's policy information before it joins a pool.
    fn validate(&self, info: &PolicyInfo) -> Result<(), PolicyError> {
        if info.policy_type == self.policy_type() {
            Ok(())
        } else {
            Err(PolicyError::InvalidValue(info.policy_type))
        }
    }

    /// Ordered policies: the sort key (smaller is chosen first; ties by sequence number).
    fn sort_key(&self, _state: &SelectionState) -> u128 {
        0
    }

    /// Weighted policies: the selection weight (0 = never chosen).
    fn weight(&self, _state: &SelectionState) -> u64 {
        1
    }

    /// Initialises a PE's state when it joins the pool.
    fn on_insert(&self, _state: &mut SelectionState, _pool: &PoolContext) {}

    /// Updates a PE's state after it was chosen (for the first `max_increment` chosen).
    fn on_selected(&self, _state: &mut SelectionState) {}

    /// How many of the `k` PEs chosen by one selection are "used" (get a new sequence
    /// number and [`Policy::on_selected`]). RSPLIB uses 1.
    fn max_increment(&self) -> usize {
        1
    }
}

/// The built-in policies of RFC 5356 and RSPLIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinPolicy {
    ty: PolicyType,
}

impl BuiltinPolicy {
    /// Every built-in policy type.
    pub const TYPES: [PolicyType; 18] = [
        PolicyType::ROUND_ROBIN,
        PolicyType::WEIGHTED_ROUND_ROBIN,
        PolicyType::RANDOM,
        PolicyType::WEIGHTED_RANDOM,
        PolicyType::PRIORITY,
        PolicyType::LEAST_USED,
        PolicyType::LEAST_USED_DEGRADATION,
        PolicyType::PRIORITY_LEAST_USED,
        PolicyType::RANDOMIZED_LEAST_USED,
        PolicyType::RANDOMIZED_PRIORITY_LEAST_USED,
        PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION,
        PolicyType::PRIORITY_LEAST_USED_DEGRADATION,
        PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
        PolicyType::WEIGHTED_RANDOM_DPF,
        PolicyType::LEAST_USED_DPF,
        PolicyType::LEAST_USED_DEGRADATION_DPF,
        PolicyType::PRIORITY_LEAST_USED_DPF,
        PolicyType::PRIORITY_LEAST_USED_DEGRADATION_DPF,
    ];

    /// The built-in implementation of `ty`, if there is one.
    pub fn new(ty: PolicyType) -> Option<Self> {
        Self::TYPES.contains(&ty).then_some(BuiltinPolicy { ty })
    }

    fn accumulates_degradation(self) -> bool {
        matches!(
            self.ty,
            PolicyType::LEAST_USED_DEGRADATION
                | PolicyType::LEAST_USED_DEGRADATION_DPF
                | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
                | PolicyType::PRIORITY_LEAST_USED_DEGRADATION_DPF
                | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
                | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
        )
    }
}

fn sat(v: u64) -> u64 {
    v.min(MAX)
}

fn dpf_penalty(s: &SelectionState) -> u64 {
    sat(u64::from(s.distance).saturating_mul(u64::from(s.dpf)))
}

impl Policy for BuiltinPolicy {
    fn policy_type(&self) -> PolicyType {
        self.ty
    }

    fn name(&self) -> &str {
        self.ty.name().unwrap_or("unknown")
    }

    fn selection(&self) -> Selection {
        match self.ty {
            PolicyType::RANDOM
            | PolicyType::WEIGHTED_RANDOM
            | PolicyType::WEIGHTED_RANDOM_DPF
            | PolicyType::RANDOMIZED_LEAST_USED
            | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => Selection::Weighted,
            // RFC 5356 §4.1: cyclic order; a ring gives the same order as RSPLIB's
            // sequence numbers without a tree.
            PolicyType::ROUND_ROBIN => Selection::Cyclic,
            _ => Selection::Ordered,
        }
    }

    fn sort_key(&self, s: &SelectionState) -> u128 {
        let load = u64::from(s.load);
        let ldeg = u64::from(s.load_degradation);
        let deg = u64::from(s.degradation);
        let v = match self.ty {
            PolicyType::ROUND_ROBIN => 0,
            // RSPLIB: (round, virtual counter, sequence).
            PolicyType::WEIGHTED_ROUND_ROBIN => {
                return (u128::from(s.round) << 32) | u128::from(s.virtual_counter);
            }
            // RFC 5356 §4.5: highest priority first.
            PolicyType::PRIORITY => MAX - u64::from(s.weight),
            // RFC 5356 §5.1: least load first.
            PolicyType::LEAST_USED => load,
            // RFC 5356 §5.2: load plus accumulated degradation.
            PolicyType::LEAST_USED_DEGRADATION => sat(load + deg),
            // RFC 5356 §5.3: load plus load degradation.
            PolicyType::PRIORITY_LEAST_USED => sat(load + ldeg),
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION => sat(load + ldeg + deg),
            PolicyType::LEAST_USED_DPF => sat(load + dpf_penalty(s)),
            PolicyType::LEAST_USED_DEGRADATION_DPF => sat(load + deg + dpf_penalty(s)),
            PolicyType::PRIORITY_LEAST_USED_DPF => sat(load + ldeg + dpf_penalty(s)),
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION_DPF => {
                sat(load + ldeg + deg + dpf_penalty(s))
            }
            _ => 0,
        };
        u128::from(v)
    }

    fn weight(&self, s: &SelectionState) -> u64 {
        let load = u64::from(s.load);
        let ldeg = u64::from(s.load_degradation);
        let deg = u64::from(s.degradation);
        // RSPLIB getValueFraction: max - load - ..., at least 1.
        let fraction = |sub: u64| MAX.saturating_sub(sub).max(1);
        match self.ty {
            PolicyType::RANDOM => 1,
            // RFC 5356 §4.4: probability proportional to the weight.
            PolicyType::WEIGHTED_RANDOM => u64::from(s.weight),
            PolicyType::WEIGHTED_RANDOM_DPF => {
                let w = u128::from(s.weight);
                let penalty = (w * u128::from(s.distance) * u128::from(s.dpf)
                    + u128::from(MAX) / 2)
                    / u128::from(MAX);
                if penalty > w {
                    1
                } else {
                    u64::try_from(w - penalty).unwrap_or(MAX)
                }
            }
            // RFC 5356 §5.4: probability proportional to (max - load).
            PolicyType::RANDOMIZED_LEAST_USED => fraction(load),
            PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => fraction(load + deg),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => fraction(load + ldeg),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => fraction(load + ldeg + deg),
            _ => 1,
        }
    }

    fn max_increment(&self) -> usize {
        // RSPLIB: Random and Weighted Random never update a PE (their weights are static).
        match self.ty {
            PolicyType::RANDOM | PolicyType::WEIGHTED_RANDOM | PolicyType::WEIGHTED_RANDOM_DPF => 0,
            _ => 1,
        }
    }

    fn on_insert(&self, s: &mut SelectionState, pool: &PoolContext) {
        if self.ty == PolicyType::WEIGHTED_ROUND_ROBIN {
            s.round = pool.current_round;
            s.virtual_counter = s.weight;
        }
    }

    fn on_selected(&self, s: &mut SelectionState) {
        if self.ty == PolicyType::WEIGHTED_ROUND_ROBIN {
            if s.virtual_counter > 1 {
                s.virtual_counter -= 1;
            } else {
                s.round = s.round.saturating_add(1);
                s.virtual_counter = s.weight;
            }
        }
        if self.accumulates_degradation() {
            // RFC 5356 §5.2: degradation grows with each selection until re-registration.
            s.degradation = s.degradation.saturating_add(s.load_degradation);
        }
    }
}

/// The policies a registrar or PU knows, by type.
#[derive(Debug, Clone)]
pub struct PolicyRegistry {
    map: HashMap<PolicyType, Arc<dyn Policy>>,
}

impl Default for PolicyRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl PolicyRegistry {
    /// A registry without any policy.
    pub fn empty() -> Self {
        PolicyRegistry {
            map: HashMap::new(),
        }
    }

    /// A registry with every built-in policy.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        for t in BuiltinPolicy::TYPES {
            if let Some(p) = BuiltinPolicy::new(t) {
                r.register(Arc::new(p));
            }
        }
        r
    }

    /// Adds (or replaces) the implementation of a policy type; returns the previous one.
    pub fn register(&mut self, policy: Arc<dyn Policy>) -> Option<Arc<dyn Policy>> {
        self.map.insert(policy.policy_type(), policy)
    }

    /// The implementation of `ty`.
    pub fn get(&self, ty: PolicyType) -> Option<&Arc<dyn Policy>> {
        self.map.get(&ty)
    }

    /// The implementation for a PE's policy information, after [`Policy::validate`].
    pub fn resolve(&self, info: &PolicyInfo) -> Result<&Arc<dyn Policy>, PolicyError> {
        let p = self
            .map
            .get(&info.policy_type)
            .ok_or(PolicyError::UnknownPolicy(info.policy_type))?;
        p.validate(info)?;
        Ok(p)
    }
}

/// A 16-ary sum tree of u64 weights over slot indices.
///
/// Level 0 holds the weights; each entry of level `l + 1` is the sum of 16 consecutive
/// entries of level `l`. A descent scans at most 16 contiguous sums per level (two cache
/// lines), so a 100k-slot tree is 5 levels deep, the upper ones always cached; an update
/// adds the delta to one entry per level.
#[derive(Debug, Clone, Default)]
struct SumTree {
    levels: Vec<Vec<u64>>,
    total: u64,
}

const FANOUT_BITS: u32 = 4;
const FANOUT: usize = 1 << FANOUT_BITS;

impl SumTree {
    fn capacity(&self) -> usize {
        self.levels.first().map(|l| l.len()).unwrap_or(0)
    }

    /// Makes room for `slots` slots, rebuilding in O(capacity) when growing (amortised).
    fn grow(&mut self, slots: usize, weights: impl Fn(usize) -> u64) {
        if slots <= self.capacity() {
            return;
        }
        let cap = slots.next_power_of_two().max(FANOUT);
        let mut levels = vec![(0..cap).map(&weights).collect::<Vec<u64>>()];
        while levels.last().map(|l| l.len()).unwrap_or(0) > FANOUT {
            let below = levels.last().map(|l| l.as_slice()).unwrap_or(&[]);
            let up: Vec<u64> = below
                .chunks(FANOUT)
                .map(|c| c.iter().fold(0u64, |a, b| a.wrapping_add(*b)))
                .collect();
            levels.push(up);
        }
        self.levels = levels;
    }

    fn add(&mut self, slot: usize, delta: i128) {
        self.total = (i128::from(self.total) + delta) as u64;
        let mut i = slot;
        for level in &mut self.levels {
            if let Some(v) = level.get_mut(i) {
                *v = (i128::from(*v) + delta) as u64;
            }
            i >>= FANOUT_BITS;
        }
    }

    /// The slot whose cumulative weight range contains `target` (< total).
    fn find(&self, mut target: u64) -> usize {
        let mut node = 0usize;
        for (depth, level) in self.levels.iter().enumerate().rev() {
            // The top level is scanned whole; below, the 16 children of `node`.
            let (from, to) = if depth + 1 == self.levels.len() {
                (0, level.len())
            } else {
                (node * FANOUT, (node * FANOUT + FANOUT).min(level.len()))
            };
            let mut chosen = to.saturating_sub(1).max(from);
            for (i, w) in level.get(from..to).unwrap_or(&[]).iter().enumerate() {
                if target < *w {
                    chosen = from + i;
                    break;
                }
                target -= *w;
            }
            node = chosen;
        }
        node
    }
}

/// One pool's selection structure (see the module docs).
///
/// PEs are identified by a dense slot number chosen by the owner (the handlespace reuses
/// freed slots). Every operation is O(log n) in the pool size.
#[derive(Debug, Clone)]
pub struct PoolSelector {
    policy: Arc<dyn Policy>,
    selection: Selection,
    slots: Vec<Option<Slot>>,
    ordered: BTreeMap<(u128, u64), u32>,
    weights: SumTree,
    next_seq: u64,
    len: usize,
    /// First PE of the cyclic ring (a circular doubly-linked list through the slots).
    head: u32,
}

#[derive(Debug, Clone)]
struct Slot {
    state: SelectionState,
    key: u128,
    seq: u64,
    weight: u64,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

impl PoolSelector {
    /// An empty selector for `policy`.
    pub fn new(policy: Arc<dyn Policy>) -> Self {
        let selection = policy.selection();
        PoolSelector {
            policy,
            selection,
            slots: Vec::new(),
            ordered: BTreeMap::new(),
            weights: SumTree::default(),
            next_seq: 0,
            len: 0,
            head: NIL,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<dyn Policy> {
        &self.policy
    }

    /// Number of PEs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the pool has no PE.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The selection state of a slot.
    pub fn state(&self, slot: u32) -> Option<&SelectionState> {
        self.slots
            .get(slot as usize)
            .and_then(|s| s.as_ref())
            .map(|s| &s.state)
    }

    fn current_round(&self) -> u64 {
        self.ordered
            .first_key_value()
            .and_then(|(_, slot)| self.state(*slot))
            .map(|s| s.round)
            .unwrap_or(0)
    }

    /// Puts a slot into the selection structure (a cyclic ring: at the end, i.e. just
    /// before the head of the circular list).
    fn link(&mut self, slot: u32) {
        let PoolSelector {
            policy,
            selection,
            slots,
            ordered,
            weights,
            next_seq,
            head,
            ..
        } = self;
        match selection {
            Selection::Cyclic => {
                if *head == NIL {
                    if let Some(Some(s)) = slots.get_mut(slot as usize) {
                        s.prev = slot;
                        s.next = slot;
                    }
                    *head = slot;
                    return;
                }
                let h = *head;
                let tail = match slots.get(h as usize) {
                    Some(Some(hs)) => hs.prev,
                    _ => return,
                };
                if let Some(Some(s)) = slots.get_mut(slot as usize) {
                    s.prev = tail;
                    s.next = h;
                }
                if let Some(Some(t)) = slots.get_mut(tail as usize) {
                    t.next = slot;
                }
                if let Some(Some(hs)) = slots.get_mut(h as usize) {
                    hs.prev = slot;
                }
            }
            Selection::Ordered => {
                if let Some(Some(s)) = slots.get_mut(slot as usize) {
                    s.key = policy.sort_key(&s.state);
                    s.seq = *next_seq;
                    *next_seq += 1;
                    ordered.insert((s.key, s.seq), slot);
                }
            }
            Selection::Weighted => {
                if let Some(Some(s)) = slots.get_mut(slot as usize) {
                    s.weight = policy.weight(&s.state);
                    weights.add(slot as usize, i128::from(s.weight));
                }
            }
        }
    }

    fn unlink(&mut self, slot: u32) {
        let Some(Some(s)) = self.slots.get(slot as usize) else {
            return;
        };
        match self.selection {
            Selection::Cyclic => {
                let (prev, next) = (s.prev, s.next);
                if next == slot {
                    self.head = NIL;
                    return;
                }
                if let Some(Some(p)) = self.slots.get_mut(prev as usize) {
                    p.next = next;
                }
                if let Some(Some(n)) = self.slots.get_mut(next as usize) {
                    n.prev = prev;
                }
                if self.head == slot {
                    self.head = next;
                }
            }
            Selection::Ordered => {
                self.ordered.remove(&(s.key, s.seq));
            }
            Selection::Weighted => {
                let w = s.weight;
                self.weights.add(slot as usize, -i128::from(w));
            }
        }
    }

    /// Adds a PE in `slot` (replacing whatever was there).
    pub fn insert(&mut self, slot: u32, info: &PolicyInfo) {
        self.remove(slot);
        let idx = slot as usize;
        if idx >= self.slots.len() {
            self.slots.resize_with(idx + 1, || None);
        }
        if self.selection == Selection::Weighted {
            let slots = &self.slots;
            self.weights.grow(idx + 1, |i| {
                slots
                    .get(i)
                    .and_then(|s| s.as_ref())
                    .map(|s| s.weight)
                    .unwrap_or(0)
            });
        }
        let mut state = SelectionState::new(info);
        let ctx = PoolContext {
            current_round: self.current_round(),
        };
        self.policy.on_insert(&mut state, &ctx);
        self.slots[idx] = Some(Slot {
            state,
            key: 0,
            seq: 0,
            weight: 0,
            prev: NIL,
            next: NIL,
        });
        self.len += 1;
        self.link(slot);
    }

    /// Updates a PE's policy information. A re-registration resets the accumulated
    /// degradation (RFC 5356 §5.2); the PE keeps its place in a round-robin cycle.
    pub fn update(&mut self, slot: u32, info: &PolicyInfo, reregistration: bool) {
        if self.state(slot).is_none() {
            self.insert(slot, info);
            return;
        }
        if self.selection == Selection::Cyclic {
            // Keeps its place in the ring.
            if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
                s.state.refresh(info);
                if reregistration {
                    s.state.degradation = 0;
                }
            }
            return;
        }
        self.unlink(slot);
        if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
            let weight_changed = s.state.weight != info.weight;
            s.state.refresh(info);
            if reregistration {
                s.state.degradation = 0;
            }
            if weight_changed && s.state.virtual_counter > s.state.weight {
                s.state.virtual_counter = s.state.weight;
            }
        }
        // Relink without renewing the sequence number's position for ordered policies.
        let policy = Arc::clone(&self.policy);
        if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
            match self.selection {
                Selection::Cyclic => {}
                Selection::Ordered => {
                    s.key = policy.sort_key(&s.state);
                    self.ordered.insert((s.key, s.seq), slot);
                }
                Selection::Weighted => {
                    s.weight = policy.weight(&s.state);
                    let w = s.weight;
                    self.weights.add(slot as usize, i128::from(w));
                }
            }
        }
    }

    /// Removes the PE in `slot`.
    pub fn remove(&mut self, slot: u32) {
        if self.state(slot).is_none() {
            return;
        }
        self.unlink(slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = None;
            self.len -= 1;
        }
    }

    /// Chooses up to `k` distinct PEs, appending their slots to `out` in selection order.
    /// Cost O(k log n).
    pub fn select(&mut self, k: usize, rng: &mut dyn RngCore, out: &mut Vec<u32>) {
        let k = k.min(self.len);
        if k == 0 {
            return;
        }
        let start = out.len();
        let max_inc = self.policy.max_increment();
        match self.selection {
            Selection::Cyclic => {
                let mut cur = self.head;
                while out.len() - start < k && cur != NIL {
                    out.push(cur);
                    cur = match self.slots.get(cur as usize) {
                        Some(Some(s)) => s.next,
                        _ => NIL,
                    };
                    if cur == self.head {
                        break;
                    }
                }
                // The first `max_increment` chosen move to the end of the ring: in a circular
                // list that is advancing the head past them, with no other write.
                let end = (start + max_inc).min(out.len());
                for &slot in &out[start..end] {
                    if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
                        s.state.selections += 1;
                        self.policy.on_selected(&mut s.state);
                        self.head = s.next;
                    }
                }
            }
            Selection::Ordered => {
                out.extend(self.ordered.values().take(k).copied());
                let end = (start + max_inc).min(out.len());
                for &slot in &out[start..end] {
                    self.unlink(slot);
                    if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
                        s.state.selections += 1;
                        self.policy.on_selected(&mut s.state);
                    }
                    self.link(slot);
                }
            }
            Selection::Weighted => {
                let draw = |weights: &SumTree, rng: &mut dyn RngCore| {
                    // 64-bit multiply-shift; the total stays below 2^50, so the bias is
                    // below 2^-14 of one draw's granularity.
                    let r = ((u128::from(rng.next_u64()) * u128::from(weights.total)) >> 64) as u64;
                    weights.find(r) as u32
                };
                // Phase 1: draw from all PEs and redraw duplicates. Conditioning on "not
                // chosen yet" gives exactly the distribution of drawing without
                // replacement, and the tree is not touched. Bounded attempts.
                let budget = 4 * k + 8;
                let mut attempts = 0;
                while out.len() - start < k && self.weights.total > 0 && attempts < budget {
                    attempts += 1;
                    let slot = draw(&self.weights, rng);
                    if !out[start..].contains(&slot) {
                        out.push(slot);
                    }
                }
                // Phase 2 (skewed weights, or k close to n): take the chosen PEs out of the
                // tree and draw the rest from what remains.
                if out.len() - start < k {
                    let chosen = out.len();
                    for &slot in &out[start..chosen] {
                        let w = self.slot_weight(slot);
                        self.weights.add(slot as usize, -i128::from(w));
                    }
                    while out.len() - start < k && self.weights.total > 0 {
                        let slot = draw(&self.weights, rng);
                        let w = self.slot_weight(slot);
                        self.weights.add(slot as usize, -i128::from(w));
                        out.push(slot);
                    }
                    for &slot in &out[start..] {
                        let w = self.slot_weight(slot);
                        self.weights.add(slot as usize, i128::from(w));
                    }
                }
                // The first `max_increment` are used: their state updates, and the tree
                // changes only where that changed a weight. The others are not touched.
                let end = (start + max_inc).min(out.len());
                for &slot in &out[start..end] {
                    let policy = &self.policy;
                    if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
                        s.state.selections += 1;
                        policy.on_selected(&mut s.state);
                        let old = s.weight;
                        s.weight = policy.weight(&s.state);
                        if s.weight != old {
                            let delta = i128::from(s.weight) - i128::from(old);
                            self.weights.add(slot as usize, delta);
                        }
                    }
                }
            }
        }
    }

    fn slot_weight(&self, slot: u32) -> u64 {
        match self.slots.get(slot as usize) {
            Some(Some(s)) => s.weight,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests;
