//! The timer table of one association (STYLE.md §4).
//!
//! Every timer of RFC 9260 (and the slots the extensions need) lives here: a deadline per
//! association-wide timer and a pair of deadlines per path (T3-rtx and heartbeat). The
//! association's next deadline is the minimum over the table; expiry hands out the earliest
//! expired timer and clears it, so a spurious `handle_timeout` finds nothing to do.
//!
//! Backoff state (the RTO of a path, retransmission counts) lives outside the table: stopping
//! a timer never loses it (smoltcp #1020).

use crate::time::Timestamp;

/// Index of a path in the association's path collection.
pub(crate) type PathIdx = usize;

/// One timer of an association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// T1-init: retransmits INIT (RFC 9260 §5.1 A).
    T1Init,
    /// T1-cookie: retransmits COOKIE ECHO (RFC 9260 §5.1 C).
    T1Cookie,
    /// T2-shutdown: retransmits SHUTDOWN or SHUTDOWN ACK (RFC 9260 §9.2).
    T2Shutdown,
    /// T5-shutdown-guard: bounds the whole shutdown (RFC 9260 §9.2).
    T5ShutdownGuard,
    /// The delayed SACK timer (RFC 9260 §6.2).
    DelayedSack,
    /// Closes an idle association (autoclose).
    Autoclose,
    /// T4-RTO: retransmits an ASCONF (RFC 5061 §5.1; slot reserved for the extension).
    #[allow(dead_code)]
    T4Asconf,
    /// Retransmits a RE-CONFIG request (RFC 6525 §5.1.1; slot reserved for the extension).
    #[allow(dead_code)]
    Reconfig,
    /// The end of the earliest message lifetime (PR-SCTP timed reliability, RFC 3758 §2).
    PrLifetime,
    /// T3-rtx of a path (RFC 9260 §6.3.2).
    T3Rtx(PathIdx),
    /// The heartbeat timer of a path (RFC 9260 §8.3).
    Heartbeat(PathIdx),
}

const ASSOC_TIMERS: usize = 9;
const NOT_RUNNING: Timestamp = Timestamp::MAX;

impl Timer {
    fn assoc_slot(self) -> Option<usize> {
        Some(match self {
            Timer::T1Init => 0,
            Timer::T1Cookie => 1,
            Timer::T2Shutdown => 2,
            Timer::T5ShutdownGuard => 3,
            Timer::DelayedSack => 4,
            Timer::Autoclose => 5,
            Timer::T4Asconf => 6,
            Timer::Reconfig => 7,
            Timer::PrLifetime => 8,
            Timer::T3Rtx(_) | Timer::Heartbeat(_) => return None,
        })
    }

    fn from_assoc_slot(slot: usize) -> Timer {
        match slot {
            0 => Timer::T1Init,
            1 => Timer::T1Cookie,
            2 => Timer::T2Shutdown,
            3 => Timer::T5ShutdownGuard,
            4 => Timer::DelayedSack,
            5 => Timer::Autoclose,
            6 => Timer::T4Asconf,
            7 => Timer::Reconfig,
            _ => Timer::PrLifetime,
        }
    }
}

/// Deadlines of all timers of one association. `Timestamp::MAX` marks a stopped timer.
///
/// The minimum over all slots is kept up to date on every change (`min`), so
/// [`TimerTable::next_deadline`] — asked after every event and every sent message — is a
/// field read; only stopping or postponing the earliest timer rescans the slots.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable {
    assoc: [Timestamp; ASSOC_TIMERS],
    /// Per path: `[T3-rtx, heartbeat]`.
    paths: Vec<[Timestamp; 2]>,
    /// The minimum over `assoc` and `paths` (`NOT_RUNNING` when every timer is stopped).
    min: Timestamp,
}

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable {
            assoc: [NOT_RUNNING; ASSOC_TIMERS],
            paths: Vec::new(),
            min: NOT_RUNNING,
        }
    }
}

impl TimerTable {
    fn slot_mut(&mut self, timer: Timer) -> Option<&mut Timestamp> {
        match timer {
            Timer::T3Rtx(p) => self.paths.get_mut(p).map(|s| &mut s[0]),
            Timer::Heartbeat(p) => self.paths.get_mut(p).map(|s| &mut s[1]),
            other => other.assoc_slot().and_then(|i| self.assoc.get_mut(i)),
        }
    }

    /// The minimum over all slots, by a full scan.
    fn scan_min(&self) -> Timestamp {
        let assoc = self.assoc.iter().copied().min().unwrap_or(NOT_RUNNING);
        let paths = self
            .paths
            .iter()
            .flat_map(|p| p.iter().copied())
            .min()
            .unwrap_or(NOT_RUNNING);
        assoc.min(paths)
    }

    /// Sets the slot of `timer` to `at` and keeps `min` exact.
    fn set(&mut self, timer: Timer, at: Timestamp) {
        let Some(slot) = self.slot_mut(timer) else {
            return;
        };
        let old = core::mem::replace(slot, at);
        if at <= self.min {
            self.min = at;
        } else if old == self.min {
            // The earliest timer moved later or stopped: another slot may now be earliest.
            self.min = self.scan_min();
        }
    }

    /// Makes room for the timers of `count` paths.
    pub(crate) fn set_path_count(&mut self, count: usize) {
        let shrinks = count < self.paths.len();
        self.paths.resize(count, [NOT_RUNNING; 2]);
        if shrinks {
            self.min = self.scan_min();
        }
    }

    /// Starts (or restarts) `timer` to expire at `at`.
    pub(crate) fn start(&mut self, timer: Timer, at: Timestamp) {
        // A deadline of exactly MAX would read as "stopped"; one microsecond earlier is
        // indistinguishable in practice.
        let at = if at == NOT_RUNNING {
            Timestamp::from_micros(u64::MAX - 1)
        } else {
            at
        };
        self.set(timer, at);
    }

    /// Stops `timer` (a no-op if it is not running).
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.set(timer, NOT_RUNNING);
    }

    /// Stops every timer.
    pub(crate) fn stop_all(&mut self) {
        self.assoc = [NOT_RUNNING; ASSOC_TIMERS];
        for p in &mut self.paths {
            *p = [NOT_RUNNING; 2];
        }
        self.min = NOT_RUNNING;
    }

    /// The deadline of `timer`, if it is running.
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Timestamp> {
        let at = match timer {
            Timer::T3Rtx(p) => self.paths.get(p).map(|s| s[0]),
            Timer::Heartbeat(p) => self.paths.get(p).map(|s| s[1]),
            other => other.assoc_slot().and_then(|i| self.assoc.get(i).copied()),
        }?;
        (at != NOT_RUNNING).then_some(at)
    }

    /// Whether `timer` is running.
    pub(crate) fn is_running(&self, timer: Timer) -> bool {
        self.deadline(timer).is_some()
    }

    /// The earliest deadline of all running timers.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        (self.min != NOT_RUNNING).then_some(self.min)
    }

    /// Removes and returns the earliest timer that has expired at `now`.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<Timer> {
        if self.min > now {
            return None; // nothing expired (also covers "all stopped")
        }
        let mut best: Option<(Timestamp, Timer)> = None;
        for (i, &at) in self.assoc.iter().enumerate() {
            if at <= now && best.is_none_or(|(b, _)| at < b) {
                best = Some((at, Timer::from_assoc_slot(i)));
            }
        }
        for (p, slots) in self.paths.iter().enumerate() {
            if slots[0] <= now && best.is_none_or(|(b, _)| slots[0] < b) {
                best = Some((slots[0], Timer::T3Rtx(p)));
            }
            if slots[1] <= now && best.is_none_or(|(b, _)| slots[1] < b) {
                best = Some((slots[1], Timer::Heartbeat(p)));
            }
        }
        let (_, timer) = best?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_deadline_is_the_minimum_over_all_timers() {
        let mut t = TimerTable::default();
        t.set_path_count(2);
        assert_eq!(t.next_deadline(), None);
        t.start(Timer::DelayedSack, Timestamp::from_millis(200));
        t.start(Timer::T3Rtx(1), Timestamp::from_millis(100));
        t.start(Timer::Heartbeat(0), Timestamp::from_millis(300));
        assert_eq!(t.next_deadline(), Some(Timestamp::from_millis(100)));
        t.stop(Timer::T3Rtx(1));
        assert_eq!(t.next_deadline(), Some(Timestamp::from_millis(200)));
    }

    #[test]
    fn expired_timers_come_out_earliest_first_and_only_once() {
        let mut t = TimerTable::default();
        t.set_path_count(1);
        t.start(Timer::T1Init, Timestamp::from_millis(20));
        t.start(Timer::T3Rtx(0), Timestamp::from_millis(10));
        t.start(Timer::Autoclose, Timestamp::from_millis(50));
        let now = Timestamp::from_millis(30);
        assert_eq!(t.pop_expired(now), Some(Timer::T3Rtx(0)));
        assert_eq!(t.pop_expired(now), Some(Timer::T1Init));
        assert_eq!(t.pop_expired(now), None);
        assert!(t.is_running(Timer::Autoclose));
    }

    #[test]
    fn timers_of_unknown_paths_are_ignored() {
        let mut t = TimerTable::default();
        t.start(Timer::T3Rtx(5), Timestamp::ZERO);
        assert_eq!(t.next_deadline(), None);
        assert!(!t.is_running(Timer::T3Rtx(5)));
    }

    /// The cached minimum must equal a full scan after any sequence of starts, stops,
    /// restarts (earlier and later), path count changes and expiries.
    #[test]
    fn the_cached_next_deadline_matches_a_full_scan_under_random_operations() {
        let mut t = TimerTable::default();
        t.set_path_count(3);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let timer_of = |r: u64| match r % 13 {
            0 => Timer::T1Init,
            1 => Timer::T1Cookie,
            2 => Timer::T2Shutdown,
            3 => Timer::T5ShutdownGuard,
            4 => Timer::DelayedSack,
            5 => Timer::Autoclose,
            6 => Timer::T4Asconf,
            7 => Timer::Reconfig,
            8 => Timer::PrLifetime,
            9 | 10 => Timer::T3Rtx((r / 13 % 5) as usize),
            _ => Timer::Heartbeat((r / 13 % 5) as usize),
        };
        let mut expired = 0;
        for _ in 0..20_000 {
            let r = next();
            let timer = timer_of(r >> 8);
            match r % 16 {
                0..=7 => t.start(timer, Timestamp::from_micros((r >> 20) % 1_000)),
                8..=11 => t.stop(timer),
                12 => t.set_path_count((r >> 8) as usize % 6),
                13 => t.start(timer, Timestamp::MAX),
                14 => t.stop_all(),
                _ => {
                    let now = Timestamp::from_micros((r >> 20) % 1_000);
                    if let Some(fired) = t.pop_expired(now) {
                        expired += 1;
                        assert!(!t.is_running(fired));
                    }
                }
            }
            let scanned = t.scan_min();
            assert_eq!(
                t.next_deadline(),
                (scanned != NOT_RUNNING).then_some(scanned)
            );
        }
        assert!(
            expired > 100,
            "the walk exercised expiry only {expired} times"
        );
    }
}
