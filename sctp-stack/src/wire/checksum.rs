//! The CRC32c checksum of the common header (RFC 9260 §6.8, Appendix B) and the zero
//! checksum option of RFC 9653.
//!
//! The checksum is the standard CRC32c (Castagnoli; reflected, initial value and final XOR
//! `0xFFFFFFFF`, as the `crc32c` crate computes it, with hardware instructions on x86-64
//! and aarch64) over the whole packet with the checksum field taken as zero. Appendix B
//! transmits the reflected register so that its least significant byte goes first: the
//! crate's value is stored little-endian. Linux, FreeBSD and usrsctp agree; the
//! known-answer tests below check a packet captured from usrsctp.

use super::packet::COMMON_HEADER_LEN;
use super::{ParseError, be32};

/// Which checksums a receiver accepts.
///
/// The default accepts only a correct CRC32c. RFC 9653 §5.2: an endpoint that announced
/// Zero Checksum Acceptable in its INIT or INIT ACK "MUST accept SCTP packets using the
/// incorrect checksum value of zero in addition to using the correct CRC32c checksum
/// value" for that association; the association turns `accept_zero` on once it has done
/// so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChecksumPolicy {
    /// Accept a checksum field of zero without computing the CRC32c (RFC 9653).
    pub accept_zero: bool,
}

impl ChecksumPolicy {
    /// Only correct CRC32c checksums (the default).
    pub const STRICT: ChecksumPolicy = ChecksumPolicy { accept_zero: false };
    /// Correct CRC32c checksums, and zero (RFC 9653).
    pub const ZERO_ACCEPTABLE: ChecksumPolicy = ChecksumPolicy { accept_zero: true };
}

/// The CRC32c of `packet` with its checksum field taken as zero, as the crate computes it
/// (store it with `to_le_bytes`, see [`write_checksum`]). Returns `None` if `packet` is
/// shorter than the common header.
pub fn compute_checksum(packet: &[u8]) -> Option<u32> {
    // The header with its checksum field zeroed, then the rest in place (no copy).
    let mut head = [0u8; COMMON_HEADER_LEN];
    head[..8].copy_from_slice(packet.get(..8)?);
    let tail = packet.get(COMMON_HEADER_LEN..)?;
    Some(crc32c::crc32c_append(crc32c::crc32c(&head), tail))
}

/// Computes the checksum of `packet` and stores it in the common header (RFC 9260
/// Appendix B byte order). Returns the value, or `None` if `packet` is shorter than the
/// common header.
pub fn write_checksum(packet: &mut [u8]) -> Option<u32> {
    let crc = compute_checksum(packet)?;
    packet.get_mut(8..12)?.copy_from_slice(&crc.to_le_bytes());
    Some(crc)
}

/// Checks the checksum of `packet` under `policy`.
///
/// Fails with [`ParseError::Truncated`] if the common header is incomplete and with
/// [`ParseError::BadChecksum`] on a mismatch (RFC 9260 §6.8: the packet is then silently
/// discarded). Under `cfg(fuzzing)` every checksum is accepted, so fuzzers reach the
/// parsers behind it.
pub fn verify_checksum(packet: &[u8], policy: ChecksumPolicy) -> Result<(), ParseError> {
    let Some(stored_be) = be32(packet, 8) else {
        return Err(ParseError::Truncated {
            what: "common header",
            offset: 0,
        });
    };
    let stored = stored_be.swap_bytes();
    if cfg!(fuzzing) {
        return Ok(());
    }
    if policy.accept_zero && stored == 0 {
        return Ok(());
    }
    let computed = compute_checksum(packet).ok_or(ParseError::Truncated {
        what: "common header",
        offset: 0,
    })?;
    if computed == stored {
        Ok(())
    } else {
        Err(ParseError::BadChecksum { stored, computed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_rfc_3720_test_vectors() {
        // RFC 3720 §B.4 (the CRC32c of RFC 3309/9260): 32 bytes of zeros, of 0xFF, ascending.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c::crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c::crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c::crc32c(&descending), 0x113F_DB5C);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn checksum_ignores_the_stored_value_and_is_stored_little_endian() {
        let mut pkt = [0u8; 16];
        pkt[0..2].copy_from_slice(&5000u16.to_be_bytes());
        pkt[12..16].copy_from_slice(&[11, 0, 0, 4]); // COOKIE ACK
        let before = compute_checksum(&pkt);
        pkt[8..12].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(compute_checksum(&pkt), before);
        let crc = write_checksum(&mut pkt).expect("header present");
        assert_eq!(pkt[8..12], crc.to_le_bytes());
        assert_eq!(verify_checksum(&pkt, ChecksumPolicy::STRICT), Ok(()));
    }

    #[test]
    fn a_flipped_bit_fails_verification_with_both_values() {
        let mut pkt = [0u8; 16];
        pkt[12..16].copy_from_slice(&[11, 0, 0, 4]);
        let crc = write_checksum(&mut pkt).expect("header present");
        pkt[13] ^= 0x01;
        match verify_checksum(&pkt, ChecksumPolicy::STRICT) {
            Err(ParseError::BadChecksum { stored, computed }) => {
                assert_eq!(stored, crc);
                assert_ne!(computed, crc);
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
    }

    #[test]
    fn zero_checksum_is_accepted_only_when_the_policy_allows_it() {
        let mut pkt = [0u8; 16];
        pkt[12..16].copy_from_slice(&[11, 0, 0, 4]);
        assert!(matches!(
            verify_checksum(&pkt, ChecksumPolicy::default()),
            Err(ParseError::BadChecksum { stored: 0, .. })
        ));
        assert_eq!(
            verify_checksum(&pkt, ChecksumPolicy::ZERO_ACCEPTABLE),
            Ok(())
        );
        // A wrong non-zero checksum stays wrong under the zero-checksum policy.
        pkt[8] = 1;
        assert!(verify_checksum(&pkt, ChecksumPolicy::ZERO_ACCEPTABLE).is_err());
    }

    #[test]
    fn short_packets_are_truncated_not_panics() {
        for n in 0..12 {
            assert!(matches!(
                verify_checksum(&[0u8; 12][..n], ChecksumPolicy::STRICT),
                Err(ParseError::Truncated { .. })
            ));
            assert_eq!(compute_checksum(&[0u8; 12][..n]), None);
        }
    }
}
