//! Per-PU token buckets on virtual time, in a bounded table.

use std::collections::HashMap;
use std::net::IpAddr;

use super::config::RateLimit;
use crate::Timestamp;

/// One token = this many micro-tokens (integer arithmetic, no floats).
const SCALE: u64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    micro_tokens: u64,
    last: Timestamp,
}

/// Token buckets keyed by PU address. The table holds at most `capacity` buckets; when it
/// is full, buckets that have refilled completely (idle users) are evicted, and if none
/// can be, the new user is refused (fail closed, counted by the caller).
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, capacity: usize) -> Self {
        RateLimiter {
            limit,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    fn full(&self) -> u64 {
        u64::from(self.limit.burst).saturating_mul(SCALE)
    }

    fn refill(limit: RateLimit, full: u64, b: &mut Bucket, now: Timestamp) {
        let elapsed = now.saturating_duration_since(b.last).as_micros();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        let add = elapsed.saturating_mul(u64::from(limit.per_second));
        b.micro_tokens = b.micro_tokens.saturating_add(add).min(full);
        b.last = now;
    }

    /// Takes one token for `who`; `false` when the user is over its rate.
    pub(crate) fn allow(&mut self, now: Timestamp, who: IpAddr) -> bool {
        let full = self.full();
        let limit = self.limit;
        if !self.buckets.contains_key(&who) && self.buckets.len() >= self.capacity {
            self.buckets.retain(|_, b| {
                let mut b = *b;
                Self::refill(limit, full, &mut b, now);
                b.micro_tokens < full
            });
            if self.buckets.len() >= self.capacity {
                return false;
            }
        }
        let b = self.buckets.entry(who).or_insert(Bucket {
            micro_tokens: full,
            last: now,
        });
        Self::refill(limit, full, b, now);
        if b.micro_tokens >= SCALE {
            b.micro_tokens -= SCALE;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}
