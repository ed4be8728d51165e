//! The adapter between the association state machine and the packet format: a checked
//! view of a received packet with typed accessors for the chunks the state machine handles,
//! and a writer that bundles chunks into a caller buffer and finalizes the CRC32c.
//!
//! Everything here is bounds-checked: accessors return `None` (or a default) instead of
//! panicking on short input.

use std::net::IpAddr;

use crate::serial::{Ssn, Tsn};

/// Bytes of the SCTP common header (RFC 9260 §3.1).
pub(crate) const COMMON_HEADER: usize = 12;

/// Chunk type codes (RFC 9260 §3.2 and extensions).
pub(crate) mod ty {
    pub(crate) const DATA: u8 = 0;
    pub(crate) const INIT: u8 = 1;
    pub(crate) const INIT_ACK: u8 = 2;
    pub(crate) const SACK: u8 = 3;
    pub(crate) const HEARTBEAT: u8 = 4;
    pub(crate) const HEARTBEAT_ACK: u8 = 5;
    pub(crate) const ABORT: u8 = 6;
    pub(crate) const SHUTDOWN: u8 = 7;
    pub(crate) const SHUTDOWN_ACK: u8 = 8;
    pub(crate) const ERROR: u8 = 9;
    pub(crate) const COOKIE_ECHO: u8 = 10;
    pub(crate) const COOKIE_ACK: u8 = 11;
    pub(crate) const ECNE: u8 = 12;
    pub(crate) const CWR: u8 = 13;
    pub(crate) const SHUTDOWN_COMPLETE: u8 = 14;
    pub(crate) const PAD: u8 = 0x84;
}

/// Parameter type codes (RFC 9260 §3.3.2.1, extensions).
pub(crate) mod param {
    pub(crate) const HEARTBEAT_INFO: u16 = 1;
    pub(crate) const IPV4: u16 = 5;
    pub(crate) const IPV6: u16 = 6;
    pub(crate) const STATE_COOKIE: u16 = 7;
    pub(crate) const UNRECOGNIZED: u16 = 8;
    pub(crate) const COOKIE_PRESERVATIVE: u16 = 9;
    pub(crate) const HOST_NAME: u16 = 11;
    pub(crate) const SUPPORTED_ADDRESS_TYPES: u16 = 12;
    pub(crate) const ECN_CAPABLE: u16 = 0x8000;
    pub(crate) const ZERO_CHECKSUM: u16 = 0x8001;
    pub(crate) const RANDOM: u16 = 0x8002;
    pub(crate) const CHUNK_LIST: u16 = 0x8003;
    pub(crate) const HMAC_ALGO: u16 = 0x8004;
    pub(crate) const PADDING: u16 = 0x8005;
    pub(crate) const SUPPORTED_EXTENSIONS: u16 = 0x8008;
    pub(crate) const FORWARD_TSN_SUPPORTED: u16 = 0xC000;
    pub(crate) const ADAPTATION_LAYER: u16 = 0xC006;
}

/// Error cause codes (RFC 9260 §3.3.10).
pub(crate) mod cause {
    pub(crate) const INVALID_STREAM: u16 = 1;
    pub(crate) const MISSING_MANDATORY_PARAMETER: u16 = 2;
    pub(crate) const STALE_COOKIE: u16 = 3;
    pub(crate) const OUT_OF_RESOURCE: u16 = 4;
    pub(crate) const UNRESOLVABLE_ADDRESS: u16 = 5;
    pub(crate) const UNRECOGNIZED_CHUNK: u16 = 6;
    pub(crate) const INVALID_MANDATORY_PARAMETER: u16 = 7;
    pub(crate) const UNRECOGNIZED_PARAMETERS: u16 = 8;
    pub(crate) const NO_USER_DATA: u16 = 9;
    pub(crate) const COOKIE_WHILE_SHUTTING_DOWN: u16 = 10;
    pub(crate) const RESTART_WITH_NEW_ADDRESSES: u16 = 11;
    pub(crate) const USER_INITIATED_ABORT: u16 = 12;
    pub(crate) const PROTOCOL_VIOLATION: u16 = 13;
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// The CRC32c of a packet with its checksum field taken as zero, as stored on the wire
/// (least significant byte first, RFC 9260 Appendix B).
pub(crate) fn packet_checksum(packet: &[u8]) -> [u8; 4] {
    let mut crc = crc32c::crc32c(packet.get(..8).unwrap_or(&[]));
    crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc = crc32c::crc32c_append(crc, packet.get(12..).unwrap_or(&[]));
    crc.to_le_bytes()
}

/// A received packet whose common header and checksum were checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketView<'a> {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) vtag: u32,
    body: &'a [u8],
}

impl<'a> PacketView<'a> {
    /// Checks the common header and the CRC32c (not under `cfg(fuzzing)`).
    pub(crate) fn parse(b: &'a [u8]) -> Option<PacketView<'a>> {
        let src_port = be16(b, 0)?;
        let dst_port = be16(b, 2)?;
        let vtag = be32(b, 4)?;
        let stored: [u8; 4] = b.get(8..12)?.try_into().ok()?;
        if !cfg!(fuzzing) && stored != packet_checksum(b) {
            return None;
        }
        Some(PacketView {
            src_port,
            dst_port,
            vtag,
            body: b.get(COMMON_HEADER..)?,
        })
    }

    /// The chunks, in order. A malformed chunk ends the iteration with `Err`.
    pub(crate) fn chunks(&self) -> ChunkIter<'a> {
        ChunkIter { rest: self.body }
    }

    /// The first chunk, if well-formed.
    pub(crate) fn first_chunk(&self) -> Option<RawChunk<'a>> {
        self.chunks().next().and_then(Result::ok)
    }

    /// Number of well-formed chunks (stops at the first malformed one).
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks().take_while(Result::is_ok).count()
    }
}

/// One chunk of a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawChunk<'a> {
    pub(crate) ty: u8,
    pub(crate) flags: u8,
    /// The chunk value (after the 4-byte header, without padding).
    pub(crate) value: &'a [u8],
    /// The whole chunk (header and value, without padding).
    pub(crate) raw: &'a [u8],
}

/// A chunk whose length field is impossible; the rest of the packet is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Iterator over the chunks of a packet.
#[derive(Debug, Clone)]
pub(crate) struct ChunkIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = Result<RawChunk<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (Some(&ty), Some(&flags), Some(len)) =
            (self.rest.first(), self.rest.get(1), be16(self.rest, 2))
        else {
            self.rest = &[];
            return Some(Err(Malformed));
        };
        let len = usize::from(len);
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Malformed));
        }
        let raw = &self.rest[..len];
        self.rest = self.rest.get(pad4(len)..).unwrap_or(&[]);
        Some(Ok(RawChunk {
            ty,
            flags,
            value: &raw[4..],
            raw,
        }))
    }
}

/// One TLV (parameter or error cause): type, whole TLV (without padding), value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) ty: u16,
    pub(crate) raw: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Iterator over TLVs (parameters of INIT/INIT ACK, causes of ERROR/ABORT).
#[derive(Debug, Clone)]
pub(crate) struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> TlvIter<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        TlvIter { rest: b }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (Some(ty), Some(len)) = (be16(self.rest, 0), be16(self.rest, 2)) else {
            self.rest = &[];
            return Some(Err(Malformed));
        };
        let len = usize::from(len);
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Malformed));
        }
        let raw = &self.rest[..len];
        self.rest = self.rest.get(pad4(len)..).unwrap_or(&[]);
        Some(Ok(Tlv {
            ty,
            raw,
            value: &raw[4..],
        }))
    }
}

/// The fixed fields of INIT and INIT ACK (RFC 9260 §3.3.2, §3.3.3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitView<'a> {
    pub(crate) initiate_tag: u32,
    pub(crate) a_rwnd: u32,
    pub(crate) os: u16,
    pub(crate) mis: u16,
    pub(crate) initial_tsn: Tsn,
    pub(crate) params: &'a [u8],
}

impl<'a> InitView<'a> {
    pub(crate) fn parse(value: &'a [u8]) -> Option<InitView<'a>> {
        Some(InitView {
            initiate_tag: be32(value, 0)?,
            a_rwnd: be32(value, 4)?,
            os: be16(value, 8)?,
            mis: be16(value, 10)?,
            initial_tsn: Tsn(be32(value, 12)?),
            params: value.get(16..)?,
        })
    }

    pub(crate) fn params(&self) -> TlvIter<'a> {
        TlvIter::new(self.params)
    }
}

/// An address parameter's value.
pub(crate) fn address_param(p: &Tlv<'_>) -> Option<IpAddr> {
    match p.ty {
        param::IPV4 => {
            let a: [u8; 4] = p.value.get(..4)?.try_into().ok()?;
            (p.value.len() == 4).then(|| IpAddr::from(a))
        }
        param::IPV6 => {
            let a: [u8; 16] = p.value.get(..16)?.try_into().ok()?;
            (p.value.len() == 16).then(|| IpAddr::from(a))
        }
        _ => None,
    }
}

/// The fields of a DATA chunk (RFC 9260 §3.3.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataView<'a> {
    pub(crate) tsn: Tsn,
    pub(crate) stream: u16,
    pub(crate) ssn: Ssn,
    pub(crate) ppid: u32,
    pub(crate) payload: &'a [u8],
}

impl<'a> DataView<'a> {
    pub(crate) fn parse(value: &'a [u8]) -> Option<DataView<'a>> {
        Some(DataView {
            tsn: Tsn(be32(value, 0)?),
            stream: be16(value, 4)?,
            ssn: Ssn(be16(value, 6)?),
            ppid: be32(value, 8)?,
            payload: value.get(12..)?,
        })
    }
}

/// The fields of a SACK chunk (RFC 9260 §3.3.4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SackView<'a> {
    pub(crate) cum_ack: Tsn,
    pub(crate) a_rwnd: u32,
    gaps: &'a [u8],
}

impl<'a> SackView<'a> {
    pub(crate) fn parse(value: &'a [u8]) -> Option<SackView<'a>> {
        let n_gaps = usize::from(be16(value, 8)?);
        let n_dups = be16(value, 10)?;
        let gaps = value.get(12..12 + 4 * n_gaps)?;
        // The duplicate TSNs must be present too.
        value.get(12 + 4 * n_gaps..12 + 4 * n_gaps + 4 * usize::from(n_dups))?;
        Some(SackView {
            cum_ack: Tsn(be32(value, 0)?),
            a_rwnd: be32(value, 4)?,
            gaps,
        })
    }

    /// The gap ack blocks as (start, end) offsets.
    pub(crate) fn gaps(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.gaps.chunks_exact(4).map(|g| {
            (
                u16::from_be_bytes([g[0], g[1]]),
                u16::from_be_bytes([g[2], g[3]]),
            )
        })
    }
}

/// Reads the Cumulative TSN Ack of a SHUTDOWN chunk (RFC 9260 §3.3.8).
pub(crate) fn shutdown_cum_ack(value: &[u8]) -> Option<Tsn> {
    (value.len() == 4)
        .then(|| be32(value, 0).map(Tsn))
        .flatten()
}

/// A packet being written into a caller buffer.
#[derive(Debug)]
pub(crate) struct PacketWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    limit: usize,
    chunks: usize,
}

impl<'a> PacketWriter<'a> {
    /// Starts a packet of at most `limit` bytes (and at most the buffer).
    pub(crate) fn new(
        buf: &'a mut [u8],
        limit: usize,
        src_port: u16,
        dst_port: u16,
        vtag: u32,
    ) -> Option<PacketWriter<'a>> {
        let limit = limit.min(buf.len());
        if limit < COMMON_HEADER + 4 {
            return None;
        }
        let h = buf.get_mut(..COMMON_HEADER)?;
        h[0..2].copy_from_slice(&src_port.to_be_bytes());
        h[2..4].copy_from_slice(&dst_port.to_be_bytes());
        h[4..8].copy_from_slice(&vtag.to_be_bytes());
        h[8..12].fill(0);
        Some(PacketWriter {
            buf,
            len: COMMON_HEADER,
            limit,
            chunks: 0,
        })
    }

    /// Bytes left for chunks.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.len)
    }

    /// Number of chunks written.
    pub(crate) fn chunks(&self) -> usize {
        self.chunks
    }

    /// Appends a chunk with a `value_len`-byte value filled by `fill`. Returns false (and
    /// writes nothing) if it does not fit.
    pub(crate) fn push(
        &mut self,
        ty: u8,
        flags: u8,
        value_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let len = 4 + value_len;
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        let total = pad4(len);
        if total > self.room() {
            return false;
        }
        let Some(dst) = self.buf.get_mut(self.len..self.len + total) else {
            return false;
        };
        dst[0] = ty;
        dst[1] = flags;
        dst[2..4].copy_from_slice(&len16.to_be_bytes());
        fill(&mut dst[4..len]);
        dst[len..].fill(0);
        self.len += total;
        self.chunks += 1;
        true
    }

    /// Finalizes the checksum; returns the packet length.
    pub(crate) fn finish(self) -> usize {
        let len = self.len;
        let sum = packet_checksum(&self.buf[..len]);
        self.buf[8..12].copy_from_slice(&sum);
        len
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

/// Writes the value of an INIT or INIT ACK chunk (fixed fields then `params`).
pub(crate) fn write_init_fixed(
    out: &mut [u8],
    initiate_tag: u32,
    a_rwnd: u32,
    os: u16,
    mis: u16,
    initial_tsn: Tsn,
) {
    if let Some(o) = out.get_mut(..16) {
        o[0..4].copy_from_slice(&initiate_tag.to_be_bytes());
        o[4..8].copy_from_slice(&a_rwnd.to_be_bytes());
        o[8..10].copy_from_slice(&os.to_be_bytes());
        o[10..12].copy_from_slice(&mis.to_be_bytes());
        o[12..16].copy_from_slice(&initial_tsn.get().to_be_bytes());
    }
}

/// Encodes an address parameter value and type.
pub(crate) fn address_tlv(addr: IpAddr) -> (u16, [u8; 16], usize) {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (param::IPV4, b, 4)
        }
        IpAddr::V6(a) => {
            b.copy_from_slice(&a.octets());
            (param::IPV6, b, 16)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_packet_parses_back_with_a_valid_checksum() {
        let mut buf = [0u8; 64];
        let mut w = PacketWriter::new(&mut buf, 64, 1, 2, 0xdead_beef).unwrap();
        assert!(w.push(ty::COOKIE_ACK, 0, 0, |_| {}));
        assert!(w.push(ty::SHUTDOWN, 0, 4, |v| {
            v.copy_from_slice(&7u32.to_be_bytes())
        }));
        let len = w.finish();
        let p = PacketView::parse(&buf[..len]).unwrap();
        assert_eq!((p.src_port, p.dst_port, p.vtag), (1, 2, 0xdead_beef));
        let chunks: Vec<_> = p.chunks().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(shutdown_cum_ack(chunks[1].value), Some(Tsn(7)));
        buf[20] ^= 1;
        assert!(PacketView::parse(&buf[..len]).is_none() || cfg!(fuzzing));
    }

    #[test]
    fn chunk_lengths_below_four_or_beyond_the_packet_are_malformed() {
        let body = [0u8, 0, 0, 2];
        let mut it = ChunkIter { rest: &body };
        assert_eq!(it.next().unwrap().unwrap_err(), Malformed);
        assert!(it.next().is_none());
        let body = [0u8, 0, 0, 40, 1, 2];
        assert!(ChunkIter { rest: &body }.next().unwrap().is_err());
    }

    #[test]
    fn a_sack_with_too_few_bytes_for_its_counts_is_rejected() {
        let mut v = vec![0u8; 12];
        v[8..10].copy_from_slice(&2u16.to_be_bytes());
        assert!(SackView::parse(&v).is_none());
        v.extend_from_slice(&[0, 1, 0, 2, 0, 4, 0, 4]);
        let s = SackView::parse(&v).unwrap();
        assert_eq!(s.gaps().collect::<Vec<_>>(), vec![(1, 2), (4, 4)]);
    }
}
