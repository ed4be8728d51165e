//! Extension chunks: AUTH (RFC 4895), ASCONF and ASCONF ACK (RFC 5061), FORWARD TSN
//! (RFC 3758), I-FORWARD TSN (RFC 8260), RE-CONFIG (RFC 6525), PAD (RFC 4820).

use core::net::IpAddr;

use super::expect_type;
use crate::serial::{AsconfSerial, Mid, Ssn, Tsn};
use crate::wire::codes::{ChunkType, HmacId};
use crate::wire::list::{FixedItem, FixedList, TlvList};
use crate::wire::param::{Param, address_param_len, read_address_param, write_address_param};
use crate::wire::{Encode, EncodeError, ParseError, RawChunk, Reader, Writer};

/// AUTH chunk (RFC 4895 §4.2).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 0x0F   |   Flags=0     |             Length            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Shared Key Identifier     |   HMAC Identifier             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// \                             HMAC                              /
/// /                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The HMAC covers the AUTH chunk with the HMAC field zeroed and every chunk after it
/// (RFC 4895 §6.2); [`Auth::HMAC_OFFSET`] locates the field within the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Shared Key Identifier.
    pub shared_key_id: u16,
    /// HMAC Identifier.
    pub hmac_id: HmacId,
    /// The HMAC.
    pub hmac: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Offset of the HMAC field from the start of the chunk.
    pub const HMAC_OFFSET: usize = 8;

    /// Parses an AUTH chunk.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::AUTH)?;
        let mut r = Reader::new(raw.value(), "AUTH");
        Ok(Auth {
            shared_key_id: r.u16()?,
            hmac_id: HmacId(r.u16()?),
            hmac: r.rest(),
        })
    }
}

impl Encode for Auth<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.hmac.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::AUTH, 0, self.tlv_len())?;
        w.u16(self.shared_key_id)?;
        w.u16(self.hmac_id.0)?;
        w.bytes(self.hmac)?;
        w.finish()
    }
}

/// ASCONF chunk (RFC 5061 §3.1.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 0xC1   |  Chunk Flags  |      Chunk Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Sequence Number                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Address Parameter                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     ASCONF Parameter #1                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                             ....                              /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     ASCONF Parameter #N                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Asconf<'a> {
    /// Sequence Number.
    pub serial: AsconfSerial,
    /// Address Parameter: an address of the sender, to find the association.
    pub address: IpAddr,
    /// ASCONF parameters (Add IP, Delete IP, Set Primary, ...).
    pub params: TlvList<'a, Param<'a>>,
}

impl<'a> Asconf<'a> {
    /// Parses an ASCONF; checks the parameter TLV structure.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::ASCONF)?;
        let mut r = Reader::new(raw.value(), "ASCONF");
        Ok(Asconf {
            serial: AsconfSerial(r.u32()?),
            address: read_address_param(&mut r)?,
            params: TlvList::from_bytes(r.rest())?,
        })
    }
}

impl Encode for Asconf<'_> {
    fn tlv_len(&self) -> usize {
        (8 + address_param_len(&self.address)).saturating_add(self.params.unpadded_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::ASCONF, 0, self.tlv_len())?;
        w.u32(self.serial.0)?;
        write_address_param(&mut w, &self.address)?;
        self.params.write(&mut w)?;
        w.finish()
    }
}

/// ASCONF ACK chunk (RFC 5061 §3.1.2).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 0x80   |  Chunk Flags  |      Chunk Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Sequence Number                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 ASCONF Parameter Response#1                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                             ....                              /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 ASCONF Parameter Response#N                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsconfAck<'a> {
    /// Sequence Number of the ASCONF being acknowledged.
    pub serial: AsconfSerial,
    /// Responses (Success Indication, Error Cause Indication).
    pub params: TlvList<'a, Param<'a>>,
}

impl<'a> AsconfAck<'a> {
    /// Parses an ASCONF ACK; checks the parameter TLV structure.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::ASCONF_ACK)?;
        let mut r = Reader::new(raw.value(), "ASCONF ACK");
        Ok(AsconfAck {
            serial: AsconfSerial(r.u32()?),
            params: TlvList::from_bytes(r.rest())?,
        })
    }
}

impl Encode for AsconfAck<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.params.unpadded_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::ASCONF_ACK, 0, self.tlv_len())?;
        w.u32(self.serial.0)?;
        self.params.write(&mut w)?;
        w.finish()
    }
}

/// A stream entry of FORWARD TSN: the stream and the largest SSN skipped in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForwardTsnStream {
    /// Stream Identifier.
    pub stream_id: u16,
    /// Stream Sequence Number.
    pub ssn: Ssn,
}

impl FixedItem for ForwardTsnStream {
    const SIZE: usize = 4;
    #[inline]
    fn read(b: &[u8]) -> Option<Self> {
        let [s0, s1, n0, n1]: [u8; 4] = b.try_into().ok()?;
        Some(ForwardTsnStream {
            stream_id: u16::from_be_bytes([s0, s1]),
            ssn: Ssn(u16::from_be_bytes([n0, n1])),
        })
    }
    fn write(self, out: &mut [u8]) {
        if let Some(s) = out.get_mut(..4) {
            s[..2].copy_from_slice(&self.stream_id.to_be_bytes());
            s[2..].copy_from_slice(&self.ssn.0.to_be_bytes());
        }
    }
}

/// FORWARD TSN chunk (RFC 3758 §3.2).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 192  |  Flags = 0x00 |        Length = Variable      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      New Cumulative TSN                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Stream-1              |       Stream Sequence-1       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               /
/// /                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Stream-N              |       Stream Sequence-N       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTsn<'a> {
    /// New Cumulative TSN.
    pub new_cumulative_tsn: Tsn,
    /// Streams and the largest SSN skipped in each.
    pub streams: FixedList<'a, ForwardTsnStream>,
}

impl<'a> ForwardTsn<'a> {
    /// Parses a FORWARD TSN.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::FORWARD_TSN)?;
        let mut r = Reader::new(raw.value(), "FORWARD TSN");
        Ok(ForwardTsn {
            new_cumulative_tsn: Tsn(r.u32()?),
            streams: FixedList::from_bytes(r.rest(), "FORWARD TSN streams")?,
        })
    }
}

impl Encode for ForwardTsn<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.streams.byte_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::FORWARD_TSN, 0, self.tlv_len())?;
        w.u32(self.new_cumulative_tsn.0)?;
        self.streams.write(&mut w)?;
        w.finish()
    }
}

/// A stream entry of I-FORWARD TSN: the stream, its ordering, and the largest MID skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IForwardTsnStream {
    /// Stream Identifier.
    pub stream_id: u16,
    /// U bit: the MID is of the unordered message space.
    pub unordered: bool,
    /// Message Identifier.
    pub mid: Mid,
}

impl FixedItem for IForwardTsnStream {
    const SIZE: usize = 8;
    #[inline]
    fn read(b: &[u8]) -> Option<Self> {
        let [s0, s1, _reserved, u, m0, m1, m2, m3]: [u8; 8] = b.try_into().ok()?;
        Some(IForwardTsnStream {
            stream_id: u16::from_be_bytes([s0, s1]),
            unordered: u & 1 != 0,
            mid: Mid(u32::from_be_bytes([m0, m1, m2, m3])),
        })
    }
    fn write(self, out: &mut [u8]) {
        if let Some(s) = out.get_mut(..8) {
            s[..2].copy_from_slice(&self.stream_id.to_be_bytes());
            s[2..4].copy_from_slice(&u16::from(self.unordered).to_be_bytes());
            s[4..].copy_from_slice(&self.mid.0.to_be_bytes());
        }
    }
}

/// I-FORWARD TSN chunk (RFC 8260 §2.3.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 194  |  Flags = 0x00 |      Length = Variable        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       New Cumulative TSN                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |       Stream Identifier       |          Reserved           |U|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Message Identifier                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                                                               /
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IForwardTsn<'a> {
    /// New Cumulative TSN.
    pub new_cumulative_tsn: Tsn,
    /// Streams, ordering and the largest MID skipped in each.
    pub streams: FixedList<'a, IForwardTsnStream>,
}

impl<'a> IForwardTsn<'a> {
    /// Parses an I-FORWARD TSN. Reserved bits are ignored.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::I_FORWARD_TSN)?;
        let mut r = Reader::new(raw.value(), "I-FORWARD TSN");
        Ok(IForwardTsn {
            new_cumulative_tsn: Tsn(r.u32()?),
            streams: FixedList::from_bytes(r.rest(), "I-FORWARD TSN streams")?,
        })
    }
}

impl Encode for IForwardTsn<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.streams.byte_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::I_FORWARD_TSN, 0, self.tlv_len())?;
        w.u32(self.new_cumulative_tsn.0)?;
        self.streams.write(&mut w)?;
        w.finish()
    }
}

/// RE-CONFIG chunk (RFC 6525 §3.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 130    |  Chunk Flags  |      Chunk Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                  Re-configuration Parameter                   /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /             Re-configuration Parameter (optional)             /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// RFC 6525 §3.1 allows one or two parameters in specific combinations; the parser checks
/// the TLV structure only and the association judges the combination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReConfig<'a> {
    /// Re-configuration request and response parameters.
    pub params: TlvList<'a, Param<'a>>,
}

impl<'a> ReConfig<'a> {
    /// Parses a RE-CONFIG; checks the parameter TLV structure.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::RE_CONFIG)?;
        Ok(ReConfig {
            params: TlvList::from_bytes(raw.value())?,
        })
    }
}

impl Encode for ReConfig<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.params.unpadded_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::RE_CONFIG, 0, self.tlv_len())?;
        self.params.write(&mut w)?;
        w.finish()
    }
}

/// PAD chunk (RFC 4820 §3).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 0x84   |   Flags=0     |             Length            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// \                         Padding Data                          /
/// /                                                               \
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The padding data is ignored by the receiver (RFC 4820 §3) and sent as zeros, so the
/// value is only its length (used for path MTU probing, RFC 8899).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pad {
    /// Bytes of padding data.
    pub padding_len: u16,
}

impl Pad {
    /// Parses a PAD chunk.
    pub fn parse(raw: &RawChunk<'_>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::PAD)?;
        Ok(Pad {
            padding_len: u16::try_from(raw.value().len()).map_err(|_| ParseError::BadLength {
                what: "PAD",
                offset: 0,
            })?,
        })
    }
}

impl Encode for Pad {
    fn tlv_len(&self) -> usize {
        4 + usize::from(self.padding_len)
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::PAD, 0, self.tlv_len())?;
        w.zeros(usize::from(self.padding_len))?;
        w.finish()
    }
}
