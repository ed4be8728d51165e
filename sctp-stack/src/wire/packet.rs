//! The packet: common header, chunk iteration and a bundling builder (RFC 9260 §3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Source Port Number        |     Destination Port Number   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Verification Tag                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           Checksum                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Chunk Type  | Chunk  Flags  |        Chunk Length           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! \                                                               \
//! /                          Chunk Value                          /
//! \                                                               \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     more chunks (each padded to 4 bytes)      |
//! ```

use super::checksum::{ChecksumPolicy, verify_checksum, write_checksum};
use super::codes::ChunkType;
use super::{Encode, EncodeError, ParseError, Writer, be16, be32, pad4};

/// Length of the common header.
pub const COMMON_HEADER_LEN: usize = 12;

/// The common header of every packet (RFC 9260 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommonHeader {
    /// Source Port Number.
    pub source_port: u16,
    /// Destination Port Number.
    pub destination_port: u16,
    /// Verification Tag.
    pub verification_tag: u32,
}

impl CommonHeader {
    /// Writes the header with a zero checksum into the first 12 bytes of `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let available = buf.len();
        let out = buf
            .get_mut(..COMMON_HEADER_LEN)
            .ok_or(EncodeError::BufferTooSmall {
                needed: COMMON_HEADER_LEN,
                available,
            })?;
        out[0..2].copy_from_slice(&self.source_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.destination_port.to_be_bytes());
        out[4..8].copy_from_slice(&self.verification_tag.to_be_bytes());
        out[8..12].fill(0);
        Ok(COMMON_HEADER_LEN)
    }
}

/// A chunk as found in a packet: type, flags and value bytes, unparsed.
///
/// Typed chunks are parsed from it ([`super::Chunk::parse`], [`super::Data::parse`], …).
/// Unknown chunks are kept in this form so they can be skipped or reported whole in an
/// Unrecognized Chunk Type cause (RFC 9260 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawChunk<'a> {
    ty: ChunkType,
    flags: u8,
    value: &'a [u8],
    tlv: &'a [u8],
}

impl<'a> RawChunk<'a> {
    /// Checks the chunk at the start of `bytes`: a complete header, a length of at least
    /// 4 that fits `bytes`. Padding after the chunk is not required here.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::split(bytes, 0).map(|(c, _)| c)
    }

    /// Splits the chunk at `pos` of `packet`; returns it and the offset of the next chunk.
    fn split(buf: &'a [u8], pos: usize) -> Result<(Self, usize), ParseError> {
        let (Some(&ty), Some(&flags), Some(len)) = (
            buf.get(pos),
            buf.get(pos.saturating_add(1)),
            be16(buf, pos.saturating_add(2)),
        ) else {
            return Err(ParseError::Truncated {
                what: "chunk header",
                offset: pos,
            });
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(ParseError::BadLength {
                what: "chunk",
                offset: pos,
            });
        }
        let end = pos.saturating_add(len);
        let (Some(tlv), Some(value)) = (buf.get(pos..end), buf.get(pos + 4..end)) else {
            return Err(ParseError::BadLength {
                what: "chunk",
                offset: pos,
            });
        };
        Ok((
            RawChunk {
                ty: ChunkType(ty),
                flags,
                value,
                tlv,
            },
            pos.saturating_add(pad4(len)),
        ))
    }

    /// The chunk type.
    pub fn chunk_type(&self) -> ChunkType {
        self.ty
    }

    /// The chunk flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The value (after the 4-byte header, without padding).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole chunk (header and value, no padding), as copied into an Unrecognized
    /// Chunk Type cause.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.tlv
    }
}

impl Encode for RawChunk<'_> {
    fn tlv_len(&self) -> usize {
        self.tlv.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::chunk(buf, self.ty, self.flags, self.tlv.len())?;
        w.bytes(self.value)?;
        w.finish()
    }
}

/// A structurally checked SCTP packet.
///
/// [`Packet::new_checked`] validates once that the common header is present and that the
/// chunks tile the rest of the packet: every chunk header is complete, every chunk length
/// is at least 4, and every chunk with its padding ends within the packet. Afterwards no
/// accessor can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the structure of `buf` (not the checksum, see [`Packet::verify_checksum`]).
    ///
    /// A packet without chunks is structurally valid (the receiver discards it).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < COMMON_HEADER_LEN {
            return Err(ParseError::Truncated {
                what: "common header",
                offset: 0,
            });
        }
        let mut pos = COMMON_HEADER_LEN;
        while pos < buf.len() {
            let (chunk, next) = RawChunk::split(buf, pos)?;
            // RFC 9260 §3.2: every chunk, the last one included, is padded to 4 bytes.
            if next > buf.len() {
                return Err(ParseError::BadPadding {
                    offset: pos + chunk.tlv.len(),
                });
            }
            pos = next;
        }
        Ok(Packet { buf })
    }

    /// Checks the structure, then the checksum under `policy`.
    pub fn new_verified(buf: &'a [u8], policy: ChecksumPolicy) -> Result<Self, ParseError> {
        let p = Packet::new_checked(buf)?;
        p.verify_checksum(policy)?;
        Ok(p)
    }

    /// Checks the CRC32c (see [`super::verify_checksum`]).
    pub fn verify_checksum(&self, policy: ChecksumPolicy) -> Result<(), ParseError> {
        verify_checksum(self.buf, policy)
    }

    /// The common header.
    pub fn header(&self) -> CommonHeader {
        CommonHeader {
            source_port: self.source_port(),
            destination_port: self.destination_port(),
            verification_tag: self.verification_tag(),
        }
    }

    /// Source Port Number.
    pub fn source_port(&self) -> u16 {
        be16(self.buf, 0).unwrap_or(0)
    }

    /// Destination Port Number.
    pub fn destination_port(&self) -> u16 {
        be16(self.buf, 2).unwrap_or(0)
    }

    /// Verification Tag.
    pub fn verification_tag(&self) -> u32 {
        be32(self.buf, 4).unwrap_or(0)
    }

    /// The stored checksum, read in the byte order of RFC 9260 Appendix B (comparable with
    /// [`super::compute_checksum`]).
    pub fn checksum(&self) -> u32 {
        be32(self.buf, 8).unwrap_or(0).swap_bytes()
    }

    /// The chunks in order.
    pub fn chunks(&self) -> Chunks<'a> {
        Chunks {
            buf: self.buf,
            pos: COMMON_HEADER_LEN,
        }
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Iterator over the chunks of a checked [`Packet`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Chunks<'a> {
    /// Offset in the packet of the next chunk.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = RawChunk<'a>;

    fn next(&mut self) -> Option<RawChunk<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        match RawChunk::split(self.buf, self.pos) {
            Ok((chunk, next)) => {
                self.pos = next;
                Some(chunk)
            }
            Err(_) => {
                // Unreachable for a checked packet; stop cleanly.
                self.pos = self.buf.len();
                None
            }
        }
    }
}

/// Bundles chunks into a caller buffer, then finishes the packet with its checksum.
///
/// ```
/// use sctp_stack::wire::{CommonHeader, CookieAck, PacketBuilder, Shutdown};
/// use sctp_stack::serial::Tsn;
///
/// let mut buf = [0u8; 1500];
/// let header = CommonHeader { source_port: 5000, destination_port: 5001, verification_tag: 7 };
/// let mut b = PacketBuilder::new(&mut buf, 1280, header).unwrap();
/// b.push(&CookieAck).unwrap();
/// b.push(&Shutdown { cumulative_tsn_ack: Tsn(41) }).unwrap();
/// let len = b.finish();
/// assert_eq!(len, 12 + 4 + 8);
/// ```
#[derive(Debug)]
pub struct PacketBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    limit: usize,
    chunks: usize,
}

impl<'b> PacketBuilder<'b> {
    /// Starts a packet in `buf`, holding at most `max_len` bytes (the path MTU less the IP
    /// and, if encapsulated, UDP headers), with `header`.
    pub fn new(
        buf: &'b mut [u8],
        max_len: usize,
        header: CommonHeader,
    ) -> Result<Self, EncodeError> {
        let limit = max_len.min(buf.len());
        if limit < COMMON_HEADER_LEN {
            return Err(EncodeError::BufferTooSmall {
                needed: COMMON_HEADER_LEN,
                available: limit,
            });
        }
        header.encode(buf)?;
        Ok(PacketBuilder {
            buf,
            len: COMMON_HEADER_LEN,
            limit,
            chunks: 0,
        })
    }

    /// Bytes left for chunks.
    pub fn remaining(&self) -> usize {
        self.limit - self.len
    }

    /// Whether `chunk` fits in what is left.
    pub fn fits<C: Encode + ?Sized>(&self, chunk: &C) -> bool {
        chunk.encoded_len() <= self.remaining()
    }

    /// Number of chunks bundled so far.
    pub fn chunk_count(&self) -> usize {
        self.chunks
    }

    /// Whether no chunk has been bundled yet.
    pub fn is_empty(&self) -> bool {
        self.chunks == 0
    }

    /// Appends a chunk (with its padding). Fails with [`EncodeError::DoesNotFit`] when it
    /// does not fit in what is left; the packet is unchanged then.
    pub fn push<C: Encode + ?Sized>(&mut self, chunk: &C) -> Result<(), EncodeError> {
        let needed = chunk.encoded_len();
        let remaining = self.remaining();
        if needed > remaining {
            return Err(EncodeError::DoesNotFit { needed, remaining });
        }
        let out = self
            .buf
            .get_mut(self.len..self.limit)
            .ok_or(EncodeError::DoesNotFit { needed, remaining })?;
        let n = chunk.encode(out)?;
        self.len += n;
        self.chunks += 1;
        Ok(())
    }

    /// Bytes written so far (common header included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The packet written so far (common header included), for a last change before
    /// [`PacketBuilder::finish`] (the HMAC of an AUTH chunk, RFC 4895 §6.2).
    pub fn written_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        self.buf.get_mut(..len).unwrap_or_default()
    }

    /// Writes the CRC32c into the header; returns the packet length.
    pub fn finish(self) -> usize {
        let len = self.len;
        if let Some(pkt) = self.buf.get_mut(..len) {
            write_checksum(pkt);
        }
        len
    }

    /// [`finish`](Self::finish), or, with `offloaded`, leaves the checksum field zero for the
    /// link to fill in (checksum offload, see `EndpointConfig::tx_checksum_offload`; the
    /// packet is not valid on the wire until the link has done so). Returns the length.
    pub fn finish_for_link(self, offloaded: bool) -> usize {
        if offloaded { self.len } else { self.finish() }
    }

    /// Leaves the checksum zero (RFC 9653; only towards a peer that announced Zero Checksum
    /// Acceptable, and never for a packet holding an INIT, RFC 9653 §5.3); returns the
    /// packet length.
    pub fn finish_zero_checksum(self) -> usize {
        self.len
    }
}
