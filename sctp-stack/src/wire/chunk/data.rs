//! DATA (RFC 9260 §3.3.1, I bit RFC 7053) and I-DATA (RFC 8260 §2.1).

use super::expect_type;
use crate::serial::{Fsn, Mid, Ssn, Tsn};
use crate::wire::codes::{ChunkType, Ppid};
use crate::wire::{Encode, EncodeError, ParseError, RawChunk, Reader, Writer};

/// Flag bit E: the last fragment of a user message.
const FLAG_E: u8 = 0x01;
/// Flag bit B: the first fragment of a user message.
const FLAG_B: u8 = 0x02;
/// Flag bit U: an unordered user message.
const FLAG_U: u8 = 0x04;
/// Flag bit I: the receiver should SACK without delay (RFC 7053 §3).
const FLAG_I: u8 = 0x08;

fn flags(immediate: bool, unordered: bool, beginning: bool, ending: bool) -> u8 {
    (if immediate { FLAG_I } else { 0 })
        | (if unordered { FLAG_U } else { 0 })
        | (if beginning { FLAG_B } else { 0 })
        | (if ending { FLAG_E } else { 0 })
}

/// DATA chunk (RFC 9260 §3.3.1; the I bit is RFC 7053 §3).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 0    |  Res  |I|U|B|E|            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                              TSN                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Stream Identifier S      |   Stream Sequence Number n    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Payload Protocol Identifier                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                 User Data (seq n of Stream S)                 /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// An empty payload parses (the receiver must answer it with an ABORT carrying No User
/// Data, RFC 9260 §6.2, which is the association's decision, not the parser's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// TSN.
    pub tsn: Tsn,
    /// Stream Identifier.
    pub stream_id: u16,
    /// Stream Sequence Number (meaningless for unordered data).
    pub ssn: Ssn,
    /// Payload Protocol Identifier.
    pub ppid: Ppid,
    /// I bit: the sender asks for an immediate SACK (RFC 7053).
    pub immediate_sack: bool,
    /// U bit: unordered.
    pub unordered: bool,
    /// B bit: first fragment.
    pub beginning: bool,
    /// E bit: last fragment.
    pub ending: bool,
    /// User data.
    pub payload: &'a [u8],
}

impl<'a> Data<'a> {
    /// Bytes of the header before the user data.
    pub const HEADER_LEN: usize = 16;

    /// Parses a DATA chunk. Reserved flag bits are ignored.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::DATA)?;
        let mut r = Reader::new(raw.value(), "DATA");
        let f = raw.flags();
        Ok(Data {
            tsn: Tsn(r.u32()?),
            stream_id: r.u16()?,
            ssn: Ssn(r.u16()?),
            ppid: Ppid(r.u32()?),
            immediate_sack: f & FLAG_I != 0,
            unordered: f & FLAG_U != 0,
            beginning: f & FLAG_B != 0,
            ending: f & FLAG_E != 0,
            payload: r.rest(),
        })
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        flags(
            self.immediate_sack,
            self.unordered,
            self.beginning,
            self.ending,
        )
    }
}

impl Encode for Data<'_> {
    fn tlv_len(&self) -> usize {
        Self::HEADER_LEN.saturating_add(self.payload.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::DATA, self.flags(), self.tlv_len())?;
        w.u32(self.tsn.0)?;
        w.u16(self.stream_id)?;
        w.u16(self.ssn.0)?;
        w.u32(self.ppid.0)?;
        w.bytes(self.payload)?;
        w.finish()
    }
}

/// I-DATA chunk (RFC 8260 §2.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 64   |  Res  |I|U|B|E|       Length = Variable       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                              TSN                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Stream Identifier      |           Reserved            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Message Identifier                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Payload Protocol Identifier / Fragment Sequence Number     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                           User Data                           /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The fifth word is the PPID on the first fragment (B set; its FSN is implicitly 0) and
/// the FSN on the others (whose PPID is that of the first fragment). Parsing fills the
/// field that is not on the wire with zero; encoding writes `ppid` when `beginning` is set
/// and `fsn` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IData<'a> {
    /// TSN.
    pub tsn: Tsn,
    /// Stream Identifier.
    pub stream_id: u16,
    /// Message Identifier.
    pub mid: Mid,
    /// Payload Protocol Identifier (first fragment only).
    pub ppid: Ppid,
    /// Fragment Sequence Number (0 on the first fragment).
    pub fsn: Fsn,
    /// I bit: the sender asks for an immediate SACK (RFC 7053).
    pub immediate_sack: bool,
    /// U bit: unordered.
    pub unordered: bool,
    /// B bit: first fragment.
    pub beginning: bool,
    /// E bit: last fragment.
    pub ending: bool,
    /// User data.
    pub payload: &'a [u8],
}

impl<'a> IData<'a> {
    /// Bytes of the header before the user data.
    pub const HEADER_LEN: usize = 20;

    /// Parses an I-DATA chunk. Reserved bits are ignored.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::I_DATA)?;
        let mut r = Reader::new(raw.value(), "I-DATA");
        let f = raw.flags();
        let tsn = Tsn(r.u32()?);
        let stream_id = r.u16()?;
        let _reserved = r.u16()?;
        let mid = Mid(r.u32()?);
        let word = r.u32()?;
        let beginning = f & FLAG_B != 0;
        let (ppid, fsn) = if beginning {
            (Ppid(word), Fsn(0))
        } else {
            (Ppid(0), Fsn(word))
        };
        Ok(IData {
            tsn,
            stream_id,
            mid,
            ppid,
            fsn,
            immediate_sack: f & FLAG_I != 0,
            unordered: f & FLAG_U != 0,
            beginning,
            ending: f & FLAG_E != 0,
            payload: r.rest(),
        })
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        flags(
            self.immediate_sack,
            self.unordered,
            self.beginning,
            self.ending,
        )
    }
}

impl Encode for IData<'_> {
    fn tlv_len(&self) -> usize {
        Self::HEADER_LEN.saturating_add(self.payload.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::I_DATA, self.flags(), self.tlv_len())?;
        w.u32(self.tsn.0)?;
        w.u16(self.stream_id)?;
        w.u16(0)?;
        w.u32(self.mid.0)?;
        w.u32(if self.beginning {
            self.ppid.0
        } else {
            self.fsn.0
        })?;
        w.bytes(self.payload)?;
        w.finish()
    }
}
