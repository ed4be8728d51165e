//! SACK (RFC 9260 §3.3.4).

use super::expect_type;
use crate::serial::Tsn;
use crate::wire::codes::ChunkType;
use crate::wire::list::{FixedItem, FixedList};
use crate::wire::{Encode, EncodeError, ParseError, RawChunk, Reader, Writer};

/// A Gap Ack Block of a SACK: TSNs `cumulative_tsn_ack + start ..= cumulative_tsn_ack + end`
/// were received (offsets relative to the Cumulative TSN Ack, RFC 9260 §3.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GapAckBlock {
    /// Gap Ack Block Start offset.
    pub start: u16,
    /// Gap Ack Block End offset.
    pub end: u16,
}

impl FixedItem for GapAckBlock {
    const SIZE: usize = 4;
    #[inline]
    fn read(b: &[u8]) -> Option<Self> {
        let [s0, s1, e0, e1]: [u8; 4] = b.try_into().ok()?;
        Some(GapAckBlock {
            start: u16::from_be_bytes([s0, s1]),
            end: u16::from_be_bytes([e0, e1]),
        })
    }
    fn write(self, out: &mut [u8]) {
        if let Some(s) = out.get_mut(..4) {
            s[..2].copy_from_slice(&self.start.to_be_bytes());
            s[2..].copy_from_slice(&self.end.to_be_bytes());
        }
    }
}

impl FixedItem for Tsn {
    const SIZE: usize = 4;
    #[inline]
    fn read(b: &[u8]) -> Option<Self> {
        let w: [u8; 4] = b.try_into().ok()?;
        Some(Tsn(u32::from_be_bytes(w)))
    }
    fn write(self, out: &mut [u8]) {
        if let Some(s) = out.get_mut(..4) {
            s.copy_from_slice(&self.0.to_be_bytes());
        }
    }
}

/// SACK chunk (RFC 9260 §3.3.4).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 3    |  Chunk Flags  |         Chunk Length          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Cumulative TSN Ack                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Advertised Receiver Window Credit (a_rwnd)           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Number of Gap Ack Blocks = N  |  Number of Duplicate TSNs = M |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Gap Ack Block #1 Start     |     Gap Ack Block #1 End      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// /                                                               /
/// \                              ...                              \
/// /                                                               /
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Gap Ack Block #N Start     |     Gap Ack Block #N End      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Duplicate TSN 1                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// /                                                               /
/// \                              ...                              \
/// /                                                               /
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Duplicate TSN M                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The chunk length must be exactly `16 + 4 * (N + M)`. The parser does not judge the
/// blocks (order, `start <= end`); the association validates them (RFC 9260 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sack<'a> {
    /// Cumulative TSN Ack.
    pub cumulative_tsn_ack: Tsn,
    /// Advertised Receiver Window Credit.
    pub a_rwnd: u32,
    /// Gap Ack Blocks.
    pub gap_blocks: FixedList<'a, GapAckBlock>,
    /// Duplicate TSNs.
    pub duplicate_tsns: FixedList<'a, Tsn>,
}

impl<'a> Sack<'a> {
    /// Bytes of the fixed part after the chunk header.
    pub const FIXED_LEN: usize = 12;

    /// Parses a SACK.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::SACK)?;
        let mut r = Reader::new(raw.value(), "SACK");
        let cumulative_tsn_ack = Tsn(r.u32()?);
        let a_rwnd = r.u32()?;
        let n = usize::from(r.u16()?);
        let m = usize::from(r.u16()?);
        let gaps = r.bytes(n * 4).map_err(|_| ParseError::BadLength {
            what: "SACK gap blocks",
            offset: Self::FIXED_LEN,
        })?;
        let dups = r.bytes(m * 4).map_err(|_| ParseError::BadLength {
            what: "SACK duplicate TSNs",
            offset: Self::FIXED_LEN + n * 4,
        })?;
        r.finish()?;
        Ok(Sack {
            cumulative_tsn_ack,
            a_rwnd,
            gap_blocks: FixedList::from_bytes(gaps, "SACK gap blocks")?,
            duplicate_tsns: FixedList::from_bytes(dups, "SACK duplicate TSNs")?,
        })
    }
}

impl Encode for Sack<'_> {
    fn tlv_len(&self) -> usize {
        (4 + Self::FIXED_LEN)
            .saturating_add(self.gap_blocks.byte_len())
            .saturating_add(self.duplicate_tsns.byte_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let n = u16::try_from(self.gap_blocks.len()).map_err(|_| EncodeError::TooLong {
            what: "SACK gap blocks",
            len: self.gap_blocks.len(),
        })?;
        let m = u16::try_from(self.duplicate_tsns.len()).map_err(|_| EncodeError::TooLong {
            what: "SACK duplicate TSNs",
            len: self.duplicate_tsns.len(),
        })?;
        let mut w = Writer::chunk(buf, ChunkType::SACK, 0, self.tlv_len())?;
        w.u32(self.cumulative_tsn_ack.0)?;
        w.u32(self.a_rwnd)?;
        w.u16(n)?;
        w.u16(m)?;
        self.gap_blocks.write(&mut w)?;
        self.duplicate_tsns.write(&mut w)?;
        w.finish()
    }
}
