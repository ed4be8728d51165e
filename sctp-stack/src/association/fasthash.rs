//! A fast hasher for small integer keys the association uses on its hot path (stream
//! numbers, verification tags).
//!
//! SipHash, the standard library's default, costs more than the rest of a stream lookup.
//! The keys hashed here are either chosen by this endpoint (local verification tags,
//! outbound stream numbers) or bounded by configuration (inbound stream numbers below the
//! negotiated MIS), so flooding attacks on the hash are not a concern; a multiplicative
//! (Fibonacci) hash spreads them over all bits, which the `HashMap` control bytes need.
//! Keys controlled by arbitrary remote hosts (addresses and ports) keep SipHash.

use core::hash::{BuildHasherDefault, Hasher};

/// The hasher: folds each written integer into the state with a multiply.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // Fold the high bits down: HashMap takes both low (bucket) and high (control) bits.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(K);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// `HashMap` state using [`FastHasher`].
pub(crate) type FastHash = BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::BuildHasher;

    #[test]
    fn consecutive_keys_spread_over_the_high_bits() {
        let s = FastHash::default();
        let mut tops = std::collections::HashSet::new();
        for k in 0u16..128 {
            tops.insert(s.hash_one(k) >> 57);
        }
        assert!(
            tops.len() > 64,
            "only {} distinct control bytes",
            tops.len()
        );
    }
}
