//! Serial number arithmetic (RFC 1982) for every sequence space of SCTP.
//!
//! TSNs (RFC 9260 §1.6), SSNs, I-DATA message identifiers and fragment sequence numbers
//! (RFC 8260), ASCONF serial numbers (RFC 5061 §5) and re-configuration request sequence
//! numbers (RFC 6525) all wrap. They are separate newtypes so one cannot be compared with
//! another by accident, and they deliberately implement neither `Ord` nor `PartialOrd`:
//! `a < b` is meaningless across a wrap. Use [`Tsn::is_before`], [`Tsn::is_after`],
//! [`Tsn::distance_to`] and friends instead.
//!
//! For two values exactly half the space apart RFC 1982 leaves the order undefined; here
//! neither is before the other, which makes such a comparison fail safe (nothing is treated
//! as new).

use core::fmt;

macro_rules! serial_type {
    ($(#[$meta:meta])* $name:ident, $int:ty, $signed:ty) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $int);

        impl $name {
            /// The raw value.
            #[inline]
            pub const fn get(self) -> $int {
                self.0
            }

            /// The next value, wrapping.
            #[inline]
            #[must_use]
            pub const fn next(self) -> Self {
                $name(self.0.wrapping_add(1))
            }

            /// The previous value, wrapping.
            #[inline]
            #[must_use]
            pub const fn prev(self) -> Self {
                $name(self.0.wrapping_sub(1))
            }

            /// `self + n`, wrapping.
            #[inline]
            #[must_use]
            pub const fn add(self, n: $int) -> Self {
                $name(self.0.wrapping_add(n))
            }

            /// `self - n`, wrapping.
            #[inline]
            #[must_use]
            pub const fn sub(self, n: $int) -> Self {
                $name(self.0.wrapping_sub(n))
            }

            /// Signed distance from `self` to `other` (positive if `other` is after `self`).
            /// Exactly half the space apart yields the most negative value.
            #[inline]
            pub const fn distance_to(self, other: Self) -> $signed {
                other.0.wrapping_sub(self.0) as $signed
            }

            /// RFC 1982 §3.2: `self` precedes `other`.
            #[inline]
            pub const fn is_before(self, other: Self) -> bool {
                let d = self.distance_to(other);
                d > 0
            }

            /// RFC 1982 §3.2: `self` follows `other`.
            #[inline]
            pub const fn is_after(self, other: Self) -> bool {
                other.is_before(self)
            }

            /// `self` precedes or equals `other`.
            #[inline]
            pub const fn is_before_or_eq(self, other: Self) -> bool {
                self.0 == other.0 || self.is_before(other)
            }

            /// `self` follows or equals `other`.
            #[inline]
            pub const fn is_after_or_eq(self, other: Self) -> bool {
                self.0 == other.0 || self.is_after(other)
            }

            /// The later of two values in serial order (`self` if incomparable).
            #[inline]
            #[must_use]
            pub const fn max_serial(self, other: Self) -> Self {
                if other.is_after(self) { other } else { self }
            }

            /// The earlier of two values in serial order (`self` if incomparable).
            #[inline]
            #[must_use]
            pub const fn min_serial(self, other: Self) -> Self {
                if other.is_before(self) { other } else { self }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> $int {
                v.0
            }
        }
    };
}

serial_type!(
    /// Transmission Sequence Number (RFC 9260 §3.3.1), 32-bit serial.
    Tsn, u32, i32
);
serial_type!(
    /// Stream Sequence Number of an ordered DATA chunk (RFC 9260 §3.3.1), 16-bit serial.
    Ssn, u16, i16
);
serial_type!(
    /// I-DATA Message Identifier (RFC 8260 §2.1), 32-bit serial.
    Mid, u32, i32
);
serial_type!(
    /// I-DATA Fragment Sequence Number (RFC 8260 §2.1), 32-bit serial.
    Fsn, u32, i32
);
serial_type!(
    /// ASCONF Sequence Number (RFC 5061 §4.1.1, §5), 32-bit serial.
    AsconfSerial, u32, i32
);
serial_type!(
    /// Re-configuration Request Sequence Number (RFC 6525 §3.1), 32-bit serial.
    ReconfigSeq, u32, i32
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tsn_comparison_survives_wrap() {
        let a = Tsn(u32::MAX - 1);
        let b = Tsn(2);
        assert!(a.is_before(b));
        assert!(b.is_after(a));
        assert_eq!(a.distance_to(b), 4);
        assert_eq!(b.distance_to(a), -4);
        assert_eq!(Tsn(u32::MAX).next(), Tsn(0));
        assert_eq!(Tsn(0).prev(), Tsn(u32::MAX));
    }

    #[test]
    fn ssn_comparison_survives_wrap() {
        assert!(Ssn(65535).is_before(Ssn(0)));
        assert!(Ssn(0).is_after(Ssn(65000)));
        assert!(!Ssn(0).is_after(Ssn(30000)));
    }

    #[test]
    fn values_half_the_space_apart_are_incomparable() {
        let a = Tsn(0);
        let b = Tsn(1 << 31);
        assert!(!a.is_before(b) && !a.is_after(b));
        assert!(!b.is_before(a) && !b.is_after(a));
        assert_eq!(a.max_serial(b), a);
    }

    #[test]
    fn equal_values_are_neither_before_nor_after() {
        assert!(!Tsn(7).is_before(Tsn(7)));
        assert!(!Tsn(7).is_after(Tsn(7)));
        assert!(Tsn(7).is_before_or_eq(Tsn(7)));
        assert!(Tsn(7).is_after_or_eq(Tsn(7)));
    }

    proptest! {
        #[test]
        fn before_and_after_are_antisymmetric(a: u32, d in 1u32..(1 << 31)) {
            let x = Tsn(a);
            let y = x.add(d);
            prop_assert!(x.is_before(y));
            prop_assert!(y.is_after(x));
            prop_assert!(!y.is_before(x));
            prop_assert_eq!(x.distance_to(y), d as i32);
            prop_assert_eq!(x.max_serial(y), y);
            prop_assert_eq!(x.min_serial(y), x);
        }

        #[test]
        fn ssn_order_matches_small_forward_steps(a: u16, d in 1u16..(1 << 15)) {
            let x = Ssn(a);
            prop_assert!(x.is_before(x.add(d)));
            prop_assert_eq!(x.add(d).sub(d), x);
        }
    }
}
