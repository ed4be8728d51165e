//! Typed chunks.
//!
//! Every chunk starts with the same header (RFC 9260 §3.2) and is padded to 4 bytes:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Chunk Type  | Chunk  Flags  |        Chunk Length           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! \                                                               \
//! /                          Chunk Value                          /
//! \                                                               \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Parsers ignore reserved flag bits; encoders write them as zero.

mod control;
mod data;
mod ext;
mod init;
mod sack;

pub use control::{
    Abort, CookieAck, CookieEcho, Cwr, Ecne, ErrorChunk, Heartbeat, HeartbeatAck, Shutdown,
    ShutdownAck, ShutdownComplete,
};
pub use data::{Data, IData};
pub use ext::{
    Asconf, AsconfAck, Auth, ForwardTsn, ForwardTsnStream, IForwardTsn, IForwardTsnStream, Pad,
    ReConfig,
};
pub use init::{Init, InitAck};
pub use sack::{GapAckBlock, Sack};

use super::codes::ChunkType;
use super::packet::RawChunk;
use super::{Encode, EncodeError, ParseError};

/// Fails unless `raw` is of type `ty`.
fn expect_type(raw: &RawChunk<'_>, ty: ChunkType) -> Result<(), ParseError> {
    if raw.chunk_type() == ty {
        Ok(())
    } else {
        Err(ParseError::UnexpectedType {
            expected: u16::from(ty.0),
            found: u16::from(raw.chunk_type().0),
        })
    }
}

/// A typed chunk of one chunk type: parsed from a [`RawChunk`], encoded with [`Encode`].
///
/// Lets generic code (tests, fuzzers, the association's dispatch) treat every chunk type
/// alike.
pub trait ChunkRepr<'a>: Encode + Sized {
    /// The chunk type this value encodes.
    const TYPE: ChunkType;

    /// Parses a raw chunk of type [`ChunkRepr::TYPE`].
    fn parse_raw(raw: &RawChunk<'a>) -> Result<Self, ParseError>;
}

macro_rules! chunk_repr {
    ($($name:ident $(<$l:lifetime>)? => $ty:ident),* $(,)?) => {
        $(
            impl<'a> ChunkRepr<'a> for $name $(<$l>)? {
                const TYPE: ChunkType = ChunkType::$ty;
                fn parse_raw(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
                    $name::parse(raw)
                }
            }
        )*

        /// Any chunk, typed.
        #[derive(Debug, Clone, Copy, PartialEq)]
        #[non_exhaustive]
        pub enum Chunk<'a> {
            $(
                #[doc = concat!("A ", stringify!($ty), " chunk.")]
                $name($name $(<$l>)?),
            )*
            /// A chunk of a type this crate does not implement, kept raw; see
            /// [`ChunkType::unknown_action`] for what the receiver must do with it.
            Unknown(RawChunk<'a>),
        }

        impl<'a> Chunk<'a> {
            /// Parses a raw chunk into its typed form; unknown types become
            /// [`Chunk::Unknown`].
            pub fn parse(raw: &RawChunk<'a>) -> Result<Self, ParseError> {
                Ok(match raw.chunk_type() {
                    $( ChunkType::$ty => Chunk::$name($name::parse(raw)?), )*
                    _ => Chunk::Unknown(*raw),
                })
            }

            /// The chunk type.
            pub fn chunk_type(&self) -> ChunkType {
                match self {
                    $( Chunk::$name(_) => ChunkType::$ty, )*
                    Chunk::Unknown(raw) => raw.chunk_type(),
                }
            }
        }

        impl Encode for Chunk<'_> {
            fn tlv_len(&self) -> usize {
                match self {
                    $( Chunk::$name(c) => c.tlv_len(), )*
                    Chunk::Unknown(raw) => raw.tlv_len(),
                }
            }

            fn encoded_len(&self) -> usize {
                match self {
                    $( Chunk::$name(c) => c.encoded_len(), )*
                    Chunk::Unknown(raw) => raw.encoded_len(),
                }
            }

            fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                match self {
                    $( Chunk::$name(c) => c.encode(buf), )*
                    Chunk::Unknown(raw) => raw.encode(buf),
                }
            }
        }

        $(
            impl<'a> From<$name $(<$l>)?> for Chunk<'a> {
                fn from(c: $name $(<$l>)?) -> Self {
                    Chunk::$name(c)
                }
            }
        )*
    };
}

chunk_repr! {
    Data<'a> => DATA,
    Init<'a> => INIT,
    InitAck<'a> => INIT_ACK,
    Sack<'a> => SACK,
    Heartbeat<'a> => HEARTBEAT,
    HeartbeatAck<'a> => HEARTBEAT_ACK,
    Abort<'a> => ABORT,
    Shutdown => SHUTDOWN,
    ShutdownAck => SHUTDOWN_ACK,
    ErrorChunk<'a> => ERROR,
    CookieEcho<'a> => COOKIE_ECHO,
    CookieAck => COOKIE_ACK,
    Ecne => ECNE,
    Cwr => CWR,
    ShutdownComplete => SHUTDOWN_COMPLETE,
    Auth<'a> => AUTH,
    IData<'a> => I_DATA,
    AsconfAck<'a> => ASCONF_ACK,
    ReConfig<'a> => RE_CONFIG,
    Pad => PAD,
    ForwardTsn<'a> => FORWARD_TSN,
    Asconf<'a> => ASCONF,
    IForwardTsn<'a> => I_FORWARD_TSN,
}
