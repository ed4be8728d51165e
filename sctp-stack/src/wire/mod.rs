//! The SCTP wire format: every chunk, parameter and error cause of RFC 9260 and its extensions.
//!
//! # Two levels
//!
//! The module follows the contract of smoltcp's wire layer: a *checked view* first, then
//! *typed values*.
//!
//! 1. [`Packet::new_checked`] validates the structure of a whole packet once: the common
//!    header is present, every chunk header is complete, every chunk length is at least 4
//!    and, with its padding, fits the packet. After that, [`Packet::chunks`] yields
//!    [`RawChunk`]s (type, flags, value bytes) and no accessor can panic or fail.
//!    [`verify_checksum`] (or [`Packet::verify_checksum`]) checks the CRC32c separately,
//!    so a receiver chooses when to pay for it.
//! 2. Typed values ([`Data`], [`Init`], [`Sack`], … and the [`Chunk`] enum over all of
//!    them; [`Param`] for parameters; [`Cause`] for error causes) are parsed from raw
//!    views. They borrow their variable-length parts (payload, cookie, parameter lists)
//!    from the packet, so parsing never allocates. Every typed value implements [`Encode`]:
//!    [`Encode::encoded_len`] and [`Encode::encode`] into a caller buffer.
//!
//! Lists inside values ([`FixedList`] for fixed-size items such as gap blocks, duplicate TSNs
//! or stream numbers; [`TlvList`] for parameters and causes) are either views of received
//! bytes or borrowed slices of typed items, so a value for sending (an INIT with a list of
//! [`Param`]s, a SACK from slices of [`GapAckBlock`]s) is built without touching the heap.
//! Two lists compare equal when their items are equal, whichever form they have.
//!
//! [`PacketBuilder`] bundles chunks into a caller buffer up to a size limit (the path MTU
//! minus the IP and UDP headers) and finishes the packet with its checksum.
//!
//! # Codepoints
//!
//! [`ChunkType`], [`ParamType`], [`CauseCode`], [`Ppid`] and [`HmacId`] are open newtypes:
//! every value is representable, the known ones have named constants, and the action bits
//! of unknown chunk and parameter types (RFC 9260 §3.2, §3.2.1) are read with
//! [`ChunkType::unknown_action`] and [`ParamType::unknown_action`].
//!
//! # Padding
//!
//! RFC 9260 §3.2: a chunk is padded to a multiple of 4 bytes and the chunk length does not
//! count that padding; it does count the padding of every parameter but the last. Peers
//! differ on that last point, so the parsers accept a chunk whose length also counts the
//! last parameter's padding. Padding bytes are ignored on receipt (§3.2: "the receiver
//! MUST ignore the padding bytes") and written as zeros. A chunk whose padding runs past
//! the end of the packet is an error ([`ParseError::BadPadding`]).
//!
//! # Example
//!
//! Receiving: check the structure and the checksum once, then dispatch on typed chunks.
//! Sending: build values from borrowed slices and bundle them.
//!
//! ```
//! use sctp_stack::serial::Tsn;
//! use sctp_stack::wire::{
//!     ChecksumPolicy, Chunk, CommonHeader, FixedList, GapAckBlock, Packet, PacketBuilder, Sack,
//! };
//!
//! // Build a packet holding a SACK with two gap blocks.
//! let gaps = [GapAckBlock { start: 2, end: 3 }, GapAckBlock { start: 5, end: 5 }];
//! let sack = Sack {
//!     cumulative_tsn_ack: Tsn(100),
//!     a_rwnd: 65_536,
//!     gap_blocks: FixedList::from_items(&gaps),
//!     duplicate_tsns: FixedList::EMPTY,
//! };
//! let header = CommonHeader { source_port: 5000, destination_port: 5001, verification_tag: 9 };
//! let mut buf = [0u8; 1452];
//! let mut builder = PacketBuilder::new(&mut buf, 1452, header).unwrap();
//! builder.push(&sack).unwrap();
//! let len = builder.finish();
//!
//! // Receive it.
//! let packet = Packet::new_verified(&buf[..len], ChecksumPolicy::default()).unwrap();
//! assert_eq!(packet.verification_tag(), 9);
//! for raw in packet.chunks() {
//!     match Chunk::parse(&raw) {
//!         Ok(Chunk::Sack(s)) => {
//!             assert_eq!(s.cumulative_tsn_ack, Tsn(100));
//!             assert_eq!(s.gap_blocks.iter().collect::<Vec<_>>(), gaps);
//!         }
//!         Ok(Chunk::Unknown(raw)) => {
//!             // RFC 9260 §3.2: act on raw.chunk_type().unknown_action().
//!         }
//!         Ok(_) => {}
//!         Err(_) => { /* malformed chunk: the association decides (discard, ABORT) */ }
//!     }
//! }
//! ```
//!
//! # Errors
//!
//! Parsing fails with a small [`ParseError`] carrying what was being parsed and, where
//! cheap, the offset of the problem within the slice handed to the parser. Encoding fails
//! with [`EncodeError`] (buffer too small, or a value too long for a 16-bit length field).
//! Mapping a parse error to the protocol's response (discard, ABORT with a cause, ERROR) is
//! the association's job.

mod cause;
mod checksum;
mod chunk;
mod codes;
mod list;
mod packet;
mod param;

pub use cause::{Cause, RawCause, RawCauses};
pub use checksum::{ChecksumPolicy, compute_checksum, verify_checksum, write_checksum};
pub use chunk::{
    Abort, Asconf, AsconfAck, Auth, Chunk, ChunkRepr, CookieAck, CookieEcho, Cwr, Data, Ecne,
    ErrorChunk, ForwardTsn, ForwardTsnStream, GapAckBlock, Heartbeat, HeartbeatAck, IData,
    IForwardTsn, IForwardTsnStream, Init, InitAck, Pad, ReConfig, Sack, Shutdown, ShutdownAck,
    ShutdownComplete,
};
pub use codes::{
    CauseCode, ChunkType, Edmid, HmacId, ParamType, Ppid, ReconfigResult, UnknownAction,
};
pub use list::{FixedItem, FixedIter, FixedList, TlvItem, TlvIter, TlvList};
pub use packet::{COMMON_HEADER_LEN, Chunks, CommonHeader, Packet, PacketBuilder, RawChunk};
pub use param::{Param, RawParam, RawParams};

use core::fmt;

/// Why bytes could not be parsed.
///
/// Offsets are relative to the slice handed to the failing parser: the packet for
/// [`Packet::new_checked`], the chunk value for typed chunk parsers, the parameter or cause
/// value for typed parameter and cause parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input ends before a fixed field or a header is complete.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where the incomplete item starts.
        offset: usize,
    },
    /// A length field is impossible: smaller than its own header, larger than the bytes
    /// that hold it, or inconsistent with the fixed layout or item size of the value.
    BadLength {
        /// What carried the length.
        what: &'static str,
        /// Where the item starts.
        offset: usize,
    },
    /// The padding after a chunk or parameter is missing or partial.
    BadPadding {
        /// Where the unpadded item ends.
        offset: usize,
    },
    /// A field holds a value the format forbids (e.g. a HEARTBEAT without Heartbeat Info).
    InvalidValue {
        /// What was invalid.
        what: &'static str,
    },
    /// A typed parser was handed a chunk, parameter or cause of another type.
    UnexpectedType {
        /// The type the parser handles.
        expected: u16,
        /// The type it was given.
        found: u16,
    },
    /// The CRC32c in the common header does not match the packet.
    BadChecksum {
        /// The value stored in the packet (as read, see [`Packet::checksum`]).
        stored: u32,
        /// The value computed over the packet.
        computed: u32,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated { what, offset } => {
                write!(f, "{what} truncated at offset {offset}")
            }
            ParseError::BadLength { what, offset } => {
                write!(f, "{what} at offset {offset} has an impossible length")
            }
            ParseError::BadPadding { offset } => {
                write!(f, "missing or partial padding after offset {offset}")
            }
            ParseError::InvalidValue { what } => write!(f, "invalid {what}"),
            ParseError::UnexpectedType { expected, found } => {
                write!(f, "expected type {expected:#x}, found {found:#x}")
            }
            ParseError::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is shorter than [`Encode::encoded_len`].
    BufferTooSmall {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The value is longer than its 16-bit length field can express.
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// [`PacketBuilder::push`]: the chunk does not fit in what is left of the packet. The
    /// caller finishes this packet and puts the chunk into the next one (if the packet is
    /// empty, the chunk is larger than the packet limit and must be fragmented or dropped).
    DoesNotFit {
        /// Bytes the chunk needs, with padding.
        needed: usize,
        /// Bytes left in the packet.
        remaining: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            EncodeError::TooLong { what, len } => {
                write!(f, "{what} of {len} bytes exceeds its 16-bit length field")
            }
            EncodeError::DoesNotFit { needed, remaining } => {
                write!(f, "chunk of {needed} bytes does not fit, {remaining} left")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// A value with a wire encoding: a chunk, a parameter or an error cause.
///
/// All three are TLVs padded to a multiple of 4 bytes. [`Encode::tlv_len`] is the value
/// of the Length field (header and value, no trailing padding); [`Encode::encoded_len`]
/// is what [`Encode::encode`] writes (the TLV plus zero padding).
pub trait Encode {
    /// The Length field of the encoded TLV: header plus value, without trailing padding.
    fn tlv_len(&self) -> usize;

    /// Bytes written by [`Encode::encode`]: [`Encode::tlv_len`] rounded up to a multiple of 4.
    fn encoded_len(&self) -> usize {
        pad4(self.tlv_len())
    }

    /// Writes the TLV and its zero padding at the start of `buf`; returns the bytes written
    /// ([`Encode::encoded_len`]). Never allocates.
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError>;
}

/// Writes one parameter or error cause TLV (type or code, length, value, zero padding) at
/// the start of `buf`; returns the bytes written (a multiple of 4).
///
/// For causes and parameters whose value the caller already holds as bytes (a copied
/// unrecognized TLV, a cause relayed as is); typed values encode themselves with
/// [`Encode::encode`].
pub fn write_tlv(buf: &mut [u8], ty: u16, value: &[u8]) -> Result<usize, EncodeError> {
    let mut w = Writer::tlv16(buf, ty, 4usize.saturating_add(value.len()), "TLV")?;
    w.bytes(value)?;
    w.finish()
}

/// `len` rounded up to a multiple of 4 (saturating, so hostile lengths cannot wrap).
#[inline]
pub(crate) const fn pad4(len: usize) -> usize {
    match len.checked_add(3) {
        Some(x) => x & !3,
        None => usize::MAX & !3,
    }
}

/// Reads a big-endian `u16` at `at`, if present.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    let s: [u8; 2] = b.get(at..end)?.try_into().ok()?;
    Some(u16::from_be_bytes(s))
}

/// Reads a big-endian `u32` at `at`, if present.
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let s: [u8; 4] = b.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

/// A fixed-layout reader over a value: every read is bounds-checked and reports the
/// field that was missing.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    fn truncated(&self) -> ParseError {
        ParseError::Truncated {
            what: self.what,
            offset: self.pos,
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ParseError> {
        let v = be16(self.buf, self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 2;
        Ok(v)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        let v = be32(self.buf, self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 4;
        Ok(v)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated())?;
        let v = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated())?;
        self.pos = end;
        Ok(v)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let s = self.bytes(N)?;
        s.try_into().map_err(|_| self.truncated())
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let v = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        v
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), ParseError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ParseError::BadLength {
                what: self.what,
                offset: 0,
            })
        }
    }
}

/// A bounds-checked writer for one TLV: writes the header, lets the caller append fields,
/// and zero-fills the padding.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    end: usize,
}

impl<'b> Writer<'b> {
    /// Starts a TLV of Length field `tlv_len` in `buf`, checking the buffer holds it padded.
    fn start(buf: &'b mut [u8], tlv_len: usize, what: &'static str) -> Result<Self, EncodeError> {
        if tlv_len > usize::from(u16::MAX) {
            return Err(EncodeError::TooLong { what, len: tlv_len });
        }
        let end = pad4(tlv_len);
        if buf.len() < end {
            return Err(EncodeError::BufferTooSmall {
                needed: end,
                available: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0, end })
    }

    /// Starts a chunk: type, flags, length.
    pub(crate) fn chunk(
        buf: &'b mut [u8],
        ty: ChunkType,
        flags: u8,
        tlv_len: usize,
    ) -> Result<Self, EncodeError> {
        let mut w = Writer::start(buf, tlv_len, "chunk")?;
        w.u8(ty.0)?;
        w.u8(flags)?;
        w.u16(tlv_len as u16)?;
        Ok(w)
    }

    /// Starts a parameter or error cause: type or code, length.
    pub(crate) fn tlv16(
        buf: &'b mut [u8],
        ty: u16,
        tlv_len: usize,
        what: &'static str,
    ) -> Result<Self, EncodeError> {
        let mut w = Writer::start(buf, tlv_len, what)?;
        w.u16(ty)?;
        w.u16(tlv_len as u16)?;
        Ok(w)
    }

    fn room(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let avail = self.end.saturating_sub(self.pos);
        let end = self.pos.checked_add(n).filter(|&e| e <= self.end).ok_or(
            EncodeError::BufferTooSmall {
                needed: n,
                available: avail,
            },
        )?;
        let s = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall {
                needed: n,
                available: avail,
            })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> Result<(), EncodeError> {
        self.room(v.len())?.copy_from_slice(v);
        Ok(())
    }

    pub(crate) fn zeros(&mut self, n: usize) -> Result<(), EncodeError> {
        self.room(n)?.fill(0);
        Ok(())
    }

    /// Appends a nested TLV (which writes its own padding).
    pub(crate) fn item<E: Encode + ?Sized>(&mut self, item: &E) -> Result<(), EncodeError> {
        let avail = self.end.saturating_sub(self.pos);
        let sub = self
            .buf
            .get_mut(self.pos..self.end)
            .ok_or(EncodeError::BufferTooSmall {
                needed: item.encoded_len(),
                available: avail,
            })?;
        let n = item.encode(sub)?;
        self.pos += n;
        Ok(())
    }

    /// Zero-fills up to the padded end; returns the bytes written.
    pub(crate) fn finish(mut self) -> Result<usize, EncodeError> {
        let n = self.end.saturating_sub(self.pos);
        self.zeros(n)?;
        Ok(self.end)
    }
}
