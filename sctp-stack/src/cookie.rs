//! The state cookie (RFC 9260 §5.1.3) and the secrets that sign it.
//!
//! A listener keeps no state for an INIT: everything needed to build the association when
//! the COOKIE ECHO arrives travels in the cookie, signed with HMAC-SHA256 under a secret
//! known only to this endpoint. Two secrets are live at a time (the current one signs, the
//! previous one still verifies), replaced every `cookie_secret_lifetime`.
//!
//! Layout (all integers big-endian; opaque to the peer, so free to change between versions):
//!
//! ```text
//!  0      version (1)
//!  1      secret epoch (1)
//!  2..4   reserved
//!  4..12  creation time, microseconds of the endpoint's clock
//! 12..16  lifetime, milliseconds
//! 16..20  local verification tag        20..24  peer verification tag (its Initiate Tag)
//! 24..28  local initial TSN             28..32  local a_rwnd
//! 32..36  local tie-tag                 36..40  peer tie-tag
//! 40..42  local port                    42..44  peer port
//! 44..46  local OS (outbound streams)   46..48  local MIS (inbound streams)
//! 48..65  peer address (family byte 4/6, 16 address bytes)
//! 65..82  local address (family byte 0/4/6, 16 address bytes)
//! 82..84  length N of the peer's INIT chunk
//! 84..116 the RANDOM of our INIT ACK (RFC 4895 §3.1; zero when AUTH is off)
//! 116..116+N the peer's INIT chunk, as received
//! then 32 bytes HMAC-SHA256 over everything before
//! ```
//!
//! Under `cfg(fuzzing)` the HMAC is not checked, so a fuzzer can forge cookies.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::Sha256;

use crate::time::{Timestamp, duration_micros};

const VERSION: u8 = 2;
const FIXED: usize = 116;
const MAC_LEN: usize = 32;

/// Everything a state cookie carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CookieContents<'a> {
    pub(crate) created: Timestamp,
    pub(crate) lifetime: Duration,
    pub(crate) local_tag: u32,
    pub(crate) peer_tag: u32,
    pub(crate) local_initial_tsn: u32,
    pub(crate) local_rwnd: u32,
    pub(crate) local_tie_tag: u32,
    pub(crate) peer_tie_tag: u32,
    pub(crate) local_port: u16,
    pub(crate) peer_port: u16,
    pub(crate) local_os: u16,
    pub(crate) local_mis: u16,
    pub(crate) peer_addr: IpAddr,
    pub(crate) local_addr: Option<IpAddr>,
    /// The RANDOM this side sent in its INIT ACK (RFC 4895 §3.1), so the association built
    /// from the cookie derives the same keys (§6.3, the COOKIE ECHO case).
    pub(crate) local_random: [u8; 32],
    /// The peer's INIT chunk (header included).
    pub(crate) init: &'a [u8],
}

impl CookieContents<'_> {
    /// The encoded length with the MAC.
    pub(crate) fn encoded_len(&self) -> usize {
        FIXED + self.init.len() + MAC_LEN
    }
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieError {
    /// Too short, wrong version or inconsistent lengths.
    Malformed,
    /// Signed with an unknown secret or tampered with.
    BadMac,
}

/// The rotating HMAC secrets of an endpoint.
#[derive(Clone)]
pub(crate) struct CookieSecrets {
    current: [u8; 32],
    previous: [u8; 32],
    epoch: u8,
    rotated_at: Timestamp,
    lifetime: Duration,
}

impl core::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.debug_struct("CookieSecrets")
            .field("epoch", &self.epoch)
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

fn family_and_bytes(addr: Option<IpAddr>) -> [u8; 17] {
    let mut out = [0u8; 17];
    match addr {
        None => {}
        Some(IpAddr::V4(a)) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&a.octets());
        }
    }
    out
}

fn addr_from(bytes: &[u8]) -> Result<Option<IpAddr>, CookieError> {
    let (&family, rest) = bytes.split_first().ok_or(CookieError::Malformed)?;
    match family {
        0 => Ok(None),
        4 => {
            let a: [u8; 4] = rest
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(CookieError::Malformed)?;
            Ok(Some(IpAddr::V4(Ipv4Addr::from(a))))
        }
        6 => {
            let a: [u8; 16] = rest
                .get(..16)
                .and_then(|s| s.try_into().ok())
                .ok_or(CookieError::Malformed)?;
            Ok(Some(IpAddr::V6(Ipv6Addr::from(a))))
        }
        _ => Err(CookieError::Malformed),
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl CookieSecrets {
    pub(crate) fn new(rng: &mut impl RngCore, now: Timestamp, lifetime: Duration) -> Self {
        let mut current = [0u8; 32];
        let mut previous = [0u8; 32];
        rng.fill_bytes(&mut current);
        rng.fill_bytes(&mut previous);
        CookieSecrets {
            current,
            previous,
            epoch: 0,
            rotated_at: now,
            lifetime,
        }
    }

    /// Replaces the current secret if it has lived its lifetime.
    pub(crate) fn maybe_rotate(&mut self, rng: &mut impl RngCore, now: Timestamp) {
        if now.saturating_duration_since(self.rotated_at) < self.lifetime {
            return;
        }
        self.previous = self.current;
        rng.fill_bytes(&mut self.current);
        self.epoch = self.epoch.wrapping_add(1);
        self.rotated_at = now;
    }

    fn mac(key: &[u8; 32], body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Writes the signed cookie into `out` (which must be `contents.encoded_len()` long).
    pub(crate) fn sign(&self, c: &CookieContents<'_>, out: &mut [u8]) -> Option<usize> {
        let len = c.encoded_len();
        let init_len = u16::try_from(c.init.len()).ok()?;
        let out = out.get_mut(..len)?;
        out[0] = VERSION;
        out[1] = self.epoch;
        out[2..4].fill(0);
        out[4..12].copy_from_slice(&c.created.as_micros().to_be_bytes());
        let life_ms = u32::try_from(c.lifetime.as_millis()).unwrap_or(u32::MAX);
        out[12..16].copy_from_slice(&life_ms.to_be_bytes());
        out[16..20].copy_from_slice(&c.local_tag.to_be_bytes());
        out[20..24].copy_from_slice(&c.peer_tag.to_be_bytes());
        out[24..28].copy_from_slice(&c.local_initial_tsn.to_be_bytes());
        out[28..32].copy_from_slice(&c.local_rwnd.to_be_bytes());
        out[32..36].copy_from_slice(&c.local_tie_tag.to_be_bytes());
        out[36..40].copy_from_slice(&c.peer_tie_tag.to_be_bytes());
        out[40..42].copy_from_slice(&c.local_port.to_be_bytes());
        out[42..44].copy_from_slice(&c.peer_port.to_be_bytes());
        out[44..46].copy_from_slice(&c.local_os.to_be_bytes());
        out[46..48].copy_from_slice(&c.local_mis.to_be_bytes());
        out[48..65].copy_from_slice(&family_and_bytes(Some(c.peer_addr)));
        out[65..82].copy_from_slice(&family_and_bytes(c.local_addr));
        out[82..84].copy_from_slice(&init_len.to_be_bytes());
        out[84..116].copy_from_slice(&c.local_random);
        out[FIXED..FIXED + c.init.len()].copy_from_slice(c.init);
        let body_len = len - MAC_LEN;
        let mac = Self::mac(&self.current, &out[..body_len]);
        out[body_len..].copy_from_slice(&mac);
        Some(len)
    }

    /// Checks the MAC and decodes a cookie. Staleness is the caller's business.
    pub(crate) fn verify<'a>(&self, cookie: &'a [u8]) -> Result<CookieContents<'a>, CookieError> {
        if cookie.len() < FIXED + MAC_LEN || cookie.first() != Some(&VERSION) {
            return Err(CookieError::Malformed);
        }
        let init_len = usize::from(be16(cookie, 82));
        if cookie.len() != FIXED + init_len + MAC_LEN {
            return Err(CookieError::Malformed);
        }
        let body_len = cookie.len() - MAC_LEN;
        let (body, mac) = cookie.split_at(body_len);
        let epoch = cookie.get(1).copied().unwrap_or(0);
        let key = if epoch == self.epoch {
            &self.current
        } else if epoch == self.epoch.wrapping_sub(1) {
            &self.previous
        } else {
            return Err(CookieError::BadMac);
        };
        let expected = Self::mac(key, body);
        if !cfg!(fuzzing) && !constant_time_eq(&expected, mac) {
            return Err(CookieError::BadMac);
        }
        let peer_addr = addr_from(&cookie[48..65])?.ok_or(CookieError::Malformed)?;
        let local_addr = addr_from(&cookie[65..82])?;
        Ok(CookieContents {
            created: Timestamp::from_micros(be64(cookie, 4)),
            lifetime: Duration::from_millis(u64::from(be32(cookie, 12))),
            local_tag: be32(cookie, 16),
            peer_tag: be32(cookie, 20),
            local_initial_tsn: be32(cookie, 24),
            local_rwnd: be32(cookie, 28),
            local_tie_tag: be32(cookie, 32),
            peer_tie_tag: be32(cookie, 36),
            local_port: be16(cookie, 40),
            peer_port: be16(cookie, 42),
            local_os: be16(cookie, 44),
            local_mis: be16(cookie, 46),
            peer_addr,
            local_addr,
            local_random: cookie
                .get(84..116)
                .and_then(|s| s.try_into().ok())
                .ok_or(CookieError::Malformed)?,
            init: &cookie[FIXED..FIXED + init_len],
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How long ago a cookie expired (RFC 9260 §5.1.5 step 3 and §3.3.10.3), or `None` if it
/// is still valid at `now`.
pub(crate) fn staleness(c: &CookieContents<'_>, now: Timestamp) -> Option<Duration> {
    let expiry = c.created.saturating_add(c.lifetime);
    (now > expiry).then(|| now.saturating_duration_since(expiry))
}

/// Microseconds of staleness for the Stale Cookie error cause (saturating at u32::MAX).
pub(crate) fn staleness_micros(d: Duration) -> u32 {
    u32::try_from(duration_micros(d)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn contents(init: &[u8]) -> CookieContents<'_> {
        CookieContents {
            created: Timestamp::from_secs(5),
            lifetime: Duration::from_secs(60),
            local_tag: 0x1122_3344,
            peer_tag: 0x5566_7788,
            local_initial_tsn: 42,
            local_rwnd: 65536,
            local_tie_tag: 0,
            peer_tie_tag: 0,
            local_port: 5000,
            peer_port: 6000,
            local_os: 10,
            local_mis: 2048,
            peer_addr: "198.18.0.2".parse().unwrap(),
            local_addr: Some("fd00::1".parse().unwrap()),
            local_random: [9; 32],
            init,
        }
    }

    fn secrets() -> (CookieSecrets, ChaCha20Rng) {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let s = CookieSecrets::new(&mut rng, Timestamp::ZERO, Duration::from_secs(3600));
        (s, rng)
    }

    #[test]
    fn a_signed_cookie_verifies_and_round_trips() {
        let (s, _) = secrets();
        let init = [
            1u8, 0, 0, 20, 9, 9, 9, 9, 0, 0, 0, 1, 0, 10, 0, 10, 0, 0, 0, 1,
        ];
        let c = contents(&init);
        let mut buf = vec![0; c.encoded_len()];
        assert_eq!(s.sign(&c, &mut buf), Some(buf.len()));
        assert_eq!(s.verify(&buf), Ok(c));
    }

    #[test]
    fn a_tampered_cookie_is_rejected() {
        let (s, _) = secrets();
        let c = contents(b"init");
        let mut buf = vec![0; c.encoded_len()];
        s.sign(&c, &mut buf);
        buf[17] ^= 1;
        assert_eq!(s.verify(&buf), Err(CookieError::BadMac));
        buf[17] ^= 1;
        buf.push(0);
        assert_eq!(s.verify(&buf), Err(CookieError::Malformed));
    }

    #[test]
    fn cookies_survive_one_rotation_but_not_two() {
        let (mut s, mut rng) = secrets();
        let c = contents(b"init");
        let mut buf = vec![0; c.encoded_len()];
        s.sign(&c, &mut buf);
        s.maybe_rotate(&mut rng, Timestamp::from_secs(10));
        assert!(s.verify(&buf).is_ok(), "rotation happened too early");
        s.maybe_rotate(&mut rng, Timestamp::from_secs(3600));
        assert!(s.verify(&buf).is_ok());
        s.maybe_rotate(&mut rng, Timestamp::from_secs(7200));
        assert_eq!(s.verify(&buf), Err(CookieError::BadMac));
    }

    #[test]
    fn staleness_is_measured_from_expiry() {
        let c = contents(b"");
        assert_eq!(staleness(&c, Timestamp::from_secs(65)), None);
        assert_eq!(
            staleness(&c, Timestamp::from_secs(66)),
            Some(Duration::from_secs(1))
        );
    }
}
