//! INIT (RFC 9260 §3.3.2) and INIT ACK (RFC 9260 §3.3.3).

use super::expect_type;
use crate::serial::Tsn;
use crate::wire::codes::ChunkType;
use crate::wire::list::TlvList;
use crate::wire::param::Param;
use crate::wire::{Encode, EncodeError, ParseError, RawChunk, Reader, Writer};

macro_rules! init_chunk {
    ($(#[$meta:meta])* $name:ident, $ty:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name<'a> {
            /// Initiate Tag: the verification tag the peer must use towards the sender.
            /// Zero is invalid (RFC 9260 §3.3.2); rejecting it is the association's job.
            pub initiate_tag: u32,
            /// Advertised Receiver Window Credit (a_rwnd).
            pub a_rwnd: u32,
            /// Number of Outbound Streams (OS).
            pub outbound_streams: u16,
            /// Number of Inbound Streams (MIS).
            pub inbound_streams: u16,
            /// Initial TSN.
            pub initial_tsn: Tsn,
            /// Optional and variable-length parameters.
            pub params: TlvList<'a, Param<'a>>,
        }

        impl<'a> $name<'a> {
            /// Bytes of the fixed part after the chunk header.
            pub const FIXED_LEN: usize = 16;

            /// Parses the chunk; checks the parameter TLV structure (each parameter is
            /// parsed when iterated).
            pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
                expect_type(raw, $ty)?;
                let mut r = Reader::new(raw.value(), $what);
                Ok($name {
                    initiate_tag: r.u32()?,
                    a_rwnd: r.u32()?,
                    outbound_streams: r.u16()?,
                    inbound_streams: r.u16()?,
                    initial_tsn: Tsn(r.u32()?),
                    params: TlvList::from_bytes(r.rest())?,
                })
            }
        }

        impl Encode for $name<'_> {
            fn tlv_len(&self) -> usize {
                (4 + Self::FIXED_LEN).saturating_add(self.params.unpadded_len())
            }

            fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                let mut w = Writer::chunk(buf, $ty, 0, self.tlv_len())?;
                w.u32(self.initiate_tag)?;
                w.u32(self.a_rwnd)?;
                w.u16(self.outbound_streams)?;
                w.u16(self.inbound_streams)?;
                w.u32(self.initial_tsn.0)?;
                self.params.write(&mut w)?;
                w.finish()
            }
        }
    };
}

init_chunk!(
    /// INIT chunk (RFC 9260 §3.3.2).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 1    |  Chunk Flags  |      Chunk Length             |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                         Initiate Tag                          |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |          Advertised Receiver Window Credit (a_rwnd)           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |  Number of Outbound Streams   |   Number of Inbound Streams   |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                          Initial TSN                          |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// \                                                               \
    /// /              Optional/Variable-Length Parameters              /
    /// \                                                               \
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    Init, ChunkType::INIT, "INIT"
);

init_chunk!(
    /// INIT ACK chunk (RFC 9260 §3.3.3): the INIT layout; the parameters must include a
    /// State Cookie (see [`InitAck::state_cookie`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |   Type = 2    |  Chunk Flags  |      Chunk Length             |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                         Initiate Tag                          |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |              Advertised Receiver Window Credit                |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |  Number of Outbound Streams   |   Number of Inbound Streams   |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                          Initial TSN                          |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// \                                                               \
    /// /              Optional/Variable-Length Parameters              /
    /// \                                                               \
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    InitAck, ChunkType::INIT_ACK, "INIT ACK"
);

impl<'a> InitAck<'a> {
    /// The value of the first State Cookie parameter, if any.
    pub fn state_cookie(&self) -> Option<&'a [u8]> {
        self.params.iter().find_map(|p| match p {
            Ok(Param::StateCookie(c)) => Some(c),
            _ => None,
        })
    }
}
