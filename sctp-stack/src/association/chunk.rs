//! Glue between the association state machine and [`crate::wire`]: packet checking,
//! raw TLV walks over error causes, and the few encodings the wire module leaves to its
//! users (an error cause from a code and its bytes).

use std::net::IpAddr;

use crate::wire::{
    CauseCode, ChecksumPolicy, Packet, Param, ParamType, RawCause, RawChunk, RawParam,
};

/// Checks a received packet: structure, then CRC32c (not under `cfg(fuzzing)`).
pub(crate) fn parse_packet(b: &[u8]) -> Option<Packet<'_>> {
    Packet::new_verified(b, ChecksumPolicy::STRICT).ok()
}

/// The first chunk of a packet.
pub(crate) fn first_chunk<'a>(p: &Packet<'a>) -> Option<RawChunk<'a>> {
    p.chunks().next()
}

fn pad4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Walks the error causes of an ABORT or ERROR chunk value (or any TLV region), stopping
/// at the first malformed one.
pub(crate) fn raw_causes(b: &[u8]) -> impl Iterator<Item = RawCause<'_>> {
    let mut rest = b;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let c = RawCause::new_checked(rest).ok()?;
        rest = rest.get(pad4(c.as_bytes().len())..).unwrap_or(&[]);
        Some(c)
    })
}

/// Walks parameters as raw TLVs (for copying unrecognized ones into a report).
pub(crate) fn raw_params(b: &[u8]) -> impl Iterator<Item = RawParam<'_>> {
    let mut rest = b;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let p = RawParam::new_checked(rest).ok()?;
        rest = rest.get(pad4(p.as_bytes().len())..).unwrap_or(&[]);
        Some(p)
    })
}

/// The address of an IPv4 or IPv6 Address parameter.
pub(crate) fn address_param(p: &Param<'_>) -> Option<IpAddr> {
    match p {
        Param::Ipv4Address(a) => Some(IpAddr::V4(*a)),
        Param::Ipv6Address(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Writes a TLV (parameter or cause) into `out` at `*at`, padding included; returns false
/// if it does not fit.
pub(crate) fn put_tlv(out: &mut [u8], at: &mut usize, ty: u16, value: &[u8]) -> bool {
    let len = 4 + value.len();
    let Ok(len16) = u16::try_from(len) else {
        return false;
    };
    let total = pad4(len);
    let Some(dst) = out.get_mut(*at..*at + total) else {
        return false;
    };
    dst[0..2].copy_from_slice(&ty.to_be_bytes());
    dst[2..4].copy_from_slice(&len16.to_be_bytes());
    dst[4..len].copy_from_slice(value);
    dst[len..].fill(0);
    *at += total;
    true
}

/// The padded size of a TLV with a value of `value_len` bytes.
pub(crate) fn tlv_size(value_len: usize) -> usize {
    pad4(4 + value_len)
}

/// Appends one error cause TLV to `out` if it stays within `limit` bytes.
pub(crate) fn push_cause(out: &mut Vec<u8>, limit: usize, code: CauseCode, info: &[u8]) {
    let size = tlv_size(info.len());
    if out.len() + size > limit {
        return;
    }
    let at = out.len();
    out.resize(at + size, 0);
    let mut pos = at;
    put_tlv(out, &mut pos, code.get(), info);
}

/// Encodes an address parameter TLV (type 5 or 6).
pub(crate) fn push_address_param(out: &mut Vec<u8>, addr: IpAddr) {
    let at = out.len();
    match addr {
        IpAddr::V4(a) => {
            out.resize(at + tlv_size(4), 0);
            let mut pos = at;
            put_tlv(out, &mut pos, ParamType::IPV4_ADDRESS.get(), &a.octets());
        }
        IpAddr::V6(a) => {
            out.resize(at + tlv_size(16), 0);
            let mut pos = at;
            put_tlv(out, &mut pos, ParamType::IPV6_ADDRESS.get(), &a.octets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cause_walk_stops_at_a_malformed_cause() {
        let mut b = Vec::new();
        push_cause(&mut b, 100, CauseCode::USER_INITIATED_ABORT, b"bye");
        push_cause(&mut b, 100, CauseCode::OUT_OF_RESOURCE, &[]);
        b.extend_from_slice(&[0, 1, 0, 2]);
        let codes: Vec<_> = raw_causes(&b).map(|c| c.code()).collect();
        assert_eq!(
            codes,
            vec![CauseCode::USER_INITIATED_ABORT, CauseCode::OUT_OF_RESOURCE]
        );
    }

    #[test]
    fn push_cause_respects_its_limit() {
        let mut b = Vec::new();
        push_cause(&mut b, 8, CauseCode::PROTOCOL_VIOLATION, b"too long");
        assert!(b.is_empty());
    }
}
