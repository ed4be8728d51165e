//! Control chunks of RFC 9260: HEARTBEAT, HEARTBEAT ACK, ABORT, SHUTDOWN, SHUTDOWN ACK,
//! ERROR, COOKIE ECHO, COOKIE ACK, ECNE, CWR, SHUTDOWN COMPLETE.

use super::expect_type;
use crate::serial::Tsn;
use crate::wire::cause::Cause;
use crate::wire::codes::{ChunkType, ParamType};
use crate::wire::list::{TlvList, split_tlv};
use crate::wire::{Encode, EncodeError, ParseError, RawChunk, Reader, Writer};

/// Flag bit T of ABORT and SHUTDOWN COMPLETE: the sender had no TCB and reflected the
/// verification tag (RFC 9260 §3.3.7, §3.3.13).
const FLAG_T: u8 = 0x01;

/// Parses the value of HEARTBEAT / HEARTBEAT ACK: exactly one Heartbeat Info parameter.
fn parse_heartbeat_info<'a>(
    raw: &RawChunk<'a>,
    what: &'static str,
) -> Result<&'a [u8], ParseError> {
    let value = raw.value();
    let (ty, info, _, next) = split_tlv(value, 0, what)?;
    if ty != ParamType::HEARTBEAT_INFO.0 {
        return Err(ParseError::InvalidValue {
            what: "Heartbeat Info parameter",
        });
    }
    if next != value.len() {
        return Err(ParseError::BadLength { what, offset: 0 });
    }
    Ok(info)
}

fn encode_heartbeat(
    buf: &mut [u8],
    ty: ChunkType,
    info: &[u8],
    tlv_len: usize,
) -> Result<usize, EncodeError> {
    let mut w = Writer::chunk(buf, ty, 0, tlv_len)?;
    let plen = 4usize.saturating_add(info.len());
    let plen16 = u16::try_from(plen).map_err(|_| EncodeError::TooLong {
        what: "Heartbeat Info",
        len: plen,
    })?;
    w.u16(ParamType::HEARTBEAT_INFO.0)?;
    w.u16(plen16)?;
    w.bytes(info)?;
    w.finish()
}

/// HEARTBEAT chunk (RFC 9260 §3.3.5).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 4    |  Chunk Flags  |       Heartbeat Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Heartbeat Info Type = 1    |         HB Info Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// /                  Sender-Specific Heartbeat Info               /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    /// Sender-Specific Heartbeat Info (the value of the Heartbeat Info parameter).
    pub info: &'a [u8],
}

impl<'a> Heartbeat<'a> {
    /// Parses a HEARTBEAT: its value must be exactly one Heartbeat Info parameter.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::HEARTBEAT)?;
        Ok(Heartbeat {
            info: parse_heartbeat_info(raw, "HEARTBEAT")?,
        })
    }
}

impl Encode for Heartbeat<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.info.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_heartbeat(buf, ChunkType::HEARTBEAT, self.info, self.tlv_len())
    }
}

/// HEARTBEAT ACK chunk (RFC 9260 §3.3.6): the HEARTBEAT layout with type 5; the
/// Heartbeat Info is copied from the HEARTBEAT being acknowledged.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 5    |  Chunk Flags  |    Heartbeat Ack Length       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Heartbeat Info Type = 1    |         HB Info Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// /                  Sender-Specific Heartbeat Info               /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck<'a> {
    /// Sender-Specific Heartbeat Info, as received in the HEARTBEAT.
    pub info: &'a [u8],
}

impl<'a> HeartbeatAck<'a> {
    /// Parses a HEARTBEAT ACK: its value must be exactly one Heartbeat Info parameter.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::HEARTBEAT_ACK)?;
        Ok(HeartbeatAck {
            info: parse_heartbeat_info(raw, "HEARTBEAT ACK")?,
        })
    }
}

impl Encode for HeartbeatAck<'_> {
    fn tlv_len(&self) -> usize {
        8usize.saturating_add(self.info.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_heartbeat(buf, ChunkType::HEARTBEAT_ACK, self.info, self.tlv_len())
    }
}

/// ABORT chunk (RFC 9260 §3.3.7).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 6    |  Reserved   |T|            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                   zero or more Error Causes                   /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Abort<'a> {
    /// T bit: the verification tag is reflected (the sender had no TCB).
    pub tag_reflected: bool,
    /// Error causes.
    pub causes: TlvList<'a, Cause<'a>>,
}

impl<'a> Abort<'a> {
    /// Parses an ABORT; checks the cause TLV structure.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::ABORT)?;
        Ok(Abort {
            tag_reflected: raw.flags() & FLAG_T != 0,
            causes: TlvList::from_bytes(raw.value())?,
        })
    }
}

impl Encode for Abort<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.causes.unpadded_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let flags = if self.tag_reflected { FLAG_T } else { 0 };
        let mut w = Writer::chunk(buf, ChunkType::ABORT, flags, self.tlv_len())?;
        self.causes.write(&mut w)?;
        w.finish()
    }
}

/// SHUTDOWN chunk (RFC 9260 §3.3.8).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 7    | Chunk Flags   |          Length = 8           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Cumulative TSN Ack                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// Cumulative TSN Ack.
    pub cumulative_tsn_ack: Tsn,
}

impl Shutdown {
    /// Parses a SHUTDOWN (length exactly 8).
    pub fn parse(raw: &RawChunk<'_>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::SHUTDOWN)?;
        let mut r = Reader::new(raw.value(), "SHUTDOWN");
        let c = Shutdown {
            cumulative_tsn_ack: Tsn(r.u32()?),
        };
        r.finish()?;
        Ok(c)
    }
}

impl Encode for Shutdown {
    fn tlv_len(&self) -> usize {
        8
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::SHUTDOWN, 0, 8)?;
        w.u32(self.cumulative_tsn_ack.0)?;
        w.finish()
    }
}

/// Declares a chunk with no value and, optionally, the T flag.
macro_rules! empty_chunk {
    ($(#[$meta:meta])* $name:ident, $ty:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            /// Parses the chunk (length exactly 4).
            pub fn parse(raw: &RawChunk<'_>) -> Result<Self, ParseError> {
                expect_type(raw, $ty)?;
                Reader::new(raw.value(), $what).finish()?;
                Ok($name)
            }
        }

        impl Encode for $name {
            fn tlv_len(&self) -> usize {
                4
            }

            fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                Writer::chunk(buf, $ty, 0, 4)?.finish()
            }
        }
    };
}

empty_chunk!(
    /// SHUTDOWN ACK chunk (RFC 9260 §3.3.9).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 8    |  Chunk Flags  |          Length = 4           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    ShutdownAck, ChunkType::SHUTDOWN_ACK, "SHUTDOWN ACK"
);

empty_chunk!(
    /// COOKIE ACK chunk (RFC 9260 §3.3.12).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 11   |  Chunk Flags  |          Length = 4           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    CookieAck, ChunkType::COOKIE_ACK, "COOKIE ACK"
);

/// ERROR (Operation Error) chunk (RFC 9260 §3.3.10).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 9    |  Chunk Flags  |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// \                                                               \
/// /                    one or more Error Causes                   /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorChunk<'a> {
    /// Error causes.
    pub causes: TlvList<'a, Cause<'a>>,
}

impl<'a> ErrorChunk<'a> {
    /// Parses an ERROR; checks the cause TLV structure.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::ERROR)?;
        Ok(ErrorChunk {
            causes: TlvList::from_bytes(raw.value())?,
        })
    }
}

impl Encode for ErrorChunk<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.causes.unpadded_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::ERROR, 0, self.tlv_len())?;
        self.causes.write(&mut w)?;
        w.finish()
    }
}

/// COOKIE ECHO chunk (RFC 9260 §3.3.11).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 10   |  Chunk Flags  |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// /                            Cookie                             /
/// \                                                               \
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieEcho<'a> {
    /// The State Cookie from the INIT ACK, unchanged.
    pub cookie: &'a [u8],
}

impl<'a> CookieEcho<'a> {
    /// Parses a COOKIE ECHO.
    pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::COOKIE_ECHO)?;
        Ok(CookieEcho {
            cookie: raw.value(),
        })
    }
}

impl Encode for CookieEcho<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.cookie.len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, ChunkType::COOKIE_ECHO, 0, self.tlv_len())?;
        w.bytes(self.cookie)?;
        w.finish()
    }
}

macro_rules! lowest_tsn_chunk {
    ($(#[$meta:meta])* $name:ident, $ty:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Lowest TSN Number.
            pub lowest_tsn: Tsn,
        }

        impl $name {
            /// Parses the chunk (length exactly 8).
            pub fn parse(raw: &RawChunk<'_>) -> Result<Self, ParseError> {
                expect_type(raw, $ty)?;
                let mut r = Reader::new(raw.value(), $what);
                let c = $name {
                    lowest_tsn: Tsn(r.u32()?),
                };
                r.finish()?;
                Ok(c)
            }
        }

        impl Encode for $name {
            fn tlv_len(&self) -> usize {
                8
            }

            fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                let mut w = Writer::chunk(buf, $ty, 0, 8)?;
                w.u32(self.lowest_tsn.0)?;
                w.finish()
            }
        }
    };
}

lowest_tsn_chunk!(
    /// ECNE (Explicit Congestion Notification Echo) chunk (RFC 9260 Appendix A).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 12   | Chunk Flags   |          Length = 8           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                       Lowest TSN Number                       |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    Ecne, ChunkType::ECNE, "ECNE"
);

lowest_tsn_chunk!(
    /// CWR (Congestion Window Reduced) chunk (RFC 9260 Appendix A).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 13   | Chunk Flags   |          Length = 8           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                       Lowest TSN Number                       |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    Cwr, ChunkType::CWR, "CWR"
);

/// SHUTDOWN COMPLETE chunk (RFC 9260 §3.3.13).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Type = 14   |  Reserved   |T|          Length = 4           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownComplete {
    /// T bit: the verification tag is reflected (the sender had no TCB).
    pub tag_reflected: bool,
}

impl ShutdownComplete {
    /// Parses a SHUTDOWN COMPLETE (length exactly 4).
    pub fn parse(raw: &RawChunk<'_>) -> Result<Self, ParseError> {
        expect_type(raw, ChunkType::SHUTDOWN_COMPLETE)?;
        Reader::new(raw.value(), "SHUTDOWN COMPLETE").finish()?;
        Ok(ShutdownComplete {
            tag_reflected: raw.flags() & FLAG_T != 0,
        })
    }
}

impl Encode for ShutdownComplete {
    fn tlv_len(&self) -> usize {
        4
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let flags = if self.tag_reflected { FLAG_T } else { 0 };
        Writer::chunk(buf, ChunkType::SHUTDOWN_COMPLETE, flags, 4)?.finish()
    }
}
