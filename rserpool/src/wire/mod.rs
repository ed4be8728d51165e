//! The ASAP (RFC 5352) and ENRP (RFC 5353) wire format with the RFC 5354 parameters.
//!
//! Two levels, like `sctp_stack::wire` (STYLE.md §5):
//!
//! 1. Checked borrowed views: [`RawMessage`] (the 4-byte message header, length checked
//!    once against the buffer) and [`Parameters`] (an iterator of [`RawParameter`] TLVs whose
//!    length fields are checked before any slice is taken). No accessor of a view can panic.
//! 2. Typed values ([`AsapMessage`], [`EnrpMessage`], [`PoolElement`], ...) decoded from the
//!    views, with `encoded_len()` and `encode(&mut [u8])`.
//!
//! Codepoints are open newtypes ([`AsapMessageType`], [`EnrpMessageType`], [`ParameterType`],
//! [`PolicyType`], [`CauseCode`]) so values this crate does not know stay representable and
//! print in hex. Unknown parameters follow the action encoded in the two upper bits of their
//! type (RFC 5354 §2, [`UnrecognizedAction`]): decoding either stops with
//! [`DecodeError::UnrecognizedParameter`] or skips the parameter, remembering it in
//! [`Decoded::report`] when the sender asked for a report.
//!
//! RSPLIB extensions carried here (all decoded by Wireshark): the handle resolution option
//! parameter `0x803f` (the number of PEs the PU wants), the PE identifier appended to
//! ENDPOINT_KEEP_ALIVE, and the RSPLIB policy types with their DPF (distance penalty factor)
//! fields (see [`PolicyInfo`]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Message Type |  Msg Flags    |        Message Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! :                         Message Value                         :
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

mod codepoints;
mod message;
mod param;

pub use codepoints::*;
pub use message::*;
pub use param::*;

use core::fmt;

/// SCTP payload protocol identifier of ASAP (RFC 5352 §5).
pub const PPID_ASAP: u32 = 11;
/// SCTP payload protocol identifier of ENRP (RFC 5353 §7).
pub const PPID_ENRP: u32 = 12;
/// The registrar's ASAP port (SCTP and the UDP announce).
pub const PORT_ASAP: u16 = 3863;
/// The ENRP port.
pub const PORT_ENRP: u16 = 9901;
/// Length of the common message header.
pub const MESSAGE_HEADER_LEN: usize = 4;
/// Length of a parameter (TLV) header.
pub const PARAMETER_HEADER_LEN: usize = 4;
/// RSPLIB's upper bound on PEs in one handle resolution response.
pub const MAX_HANDLE_RESOLUTION_ITEMS: usize = 128;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header or a fixed field needs.
    Truncated,
    /// A message or parameter length field is shorter than its header or runs past the buffer.
    BadLength {
        /// Offset of the offending header within the decoded buffer.
        offset: usize,
    },
    /// The message type is not defined for this protocol (RFC 5352 §3.1: reply with an
    /// Operation Error "unrecognized message").
    UnrecognizedMessage(u8),
    /// A parameter whose type demands "stop" was not recognized (RFC 5354 §2).
    UnrecognizedParameter {
        /// Its type, including the action bits.
        ty: ParameterType,
        /// Whether the sender asked for an Operation Error report (action `01`).
        report: bool,
        /// Offset of the parameter (header included) within the decoded buffer.
        offset: usize,
        /// Length of the parameter including its padding (bounded by the buffer).
        len: usize,
    },
    /// A required parameter is absent.
    MissingParameter(ParameterType),
    /// A parameter has a length or value not allowed for its type.
    InvalidValue {
        /// The parameter type.
        ty: ParameterType,
        /// Offset of the parameter within the decoded buffer.
        offset: usize,
    },
}

impl DecodeError {
    /// The Operation Error cause a receiver reports for this error (RFC 5352 §3.1,
    /// RFC 5354 §3.12), or `None` where the message is silently dropped.
    pub fn cause_code(&self) -> Option<CauseCode> {
        match self {
            DecodeError::UnrecognizedMessage(_) => Some(CauseCode::UNRECOGNIZED_MESSAGE),
            DecodeError::UnrecognizedParameter { report: true, .. } => {
                Some(CauseCode::UNRECOGNIZED_PARAMETER)
            }
            DecodeError::UnrecognizedParameter { report: false, .. } => None,
            DecodeError::MissingParameter(_)
            | DecodeError::InvalidValue { .. }
            | DecodeError::BadLength { .. }
            | DecodeError::Truncated => Some(CauseCode::INVALID_VALUES),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated"),
            DecodeError::BadLength { offset } => write!(f, "bad length field at offset {offset}"),
            DecodeError::UnrecognizedMessage(t) => write!(f, "unrecognized message type {t:#04x}"),
            DecodeError::UnrecognizedParameter { ty, offset, .. } => {
                write!(f, "unrecognized parameter {ty:?} at offset {offset}")
            }
            DecodeError::MissingParameter(t) => write!(f, "missing parameter {t:?}"),
            DecodeError::InvalidValue { ty, offset } => {
                write!(f, "invalid value in parameter {ty:?} at offset {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is shorter than `encoded_len()`.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// A message or parameter would exceed its 16-bit length field, or a value exceeds
    /// the fixed-size field that carries it.
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} bytes needed)")
            }
            EncodeError::TooLong => write!(f, "value exceeds a 16-bit length field"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A decoded message and the unrecognized parameters the sender asked to be told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<M> {
    /// The message.
    pub message: M,
    /// Whole TLVs (header, value, padding) of skipped parameters with action `11`
    /// ("skip and report", RFC 5354 §2); the receiver reports them in an Operation Error
    /// with cause [`CauseCode::UNRECOGNIZED_PARAMETER`].
    pub report: Vec<Vec<u8>>,
}

/// Rounds up to a multiple of four (RFC 5354 §2 padding).
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// A checked view of one ASAP or ENRP message (header and value, without trailing padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMessage<'a> {
    bytes: &'a [u8],
}

impl<'a> RawMessage<'a> {
    /// Checks the header: at least 4 bytes, and a length field of at least 4 that fits the
    /// buffer. Bytes beyond the length (padding, or a following message) are not part of the view.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let len = be16(buf, 2).ok_or(DecodeError::Truncated)? as usize;
        if len < MESSAGE_HEADER_LEN || len > buf.len() {
            return Err(DecodeError::BadLength { offset: 0 });
        }
        Ok(RawMessage {
            bytes: buf.get(..len).ok_or(DecodeError::Truncated)?,
        })
    }

    /// The message type octet.
    pub fn message_type(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(0)
    }

    /// The flags octet.
    pub fn flags(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or(0)
    }

    /// The length field (header included, padding excluded).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the message has no value (only the header).
    pub fn is_empty(&self) -> bool {
        self.bytes.len() <= MESSAGE_HEADER_LEN
    }

    /// The value after the header.
    pub fn value(&self) -> &'a [u8] {
        self.bytes.get(MESSAGE_HEADER_LEN..).unwrap_or(&[])
    }

    /// The whole message (header and value).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A checked view of one parameter (TLV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawParameter<'a> {
    ty: ParameterType,
    value: &'a [u8],
    whole: &'a [u8],
    offset: usize,
}

impl<'a> RawParameter<'a> {
    /// The type including the action bits.
    pub fn parameter_type(&self) -> ParameterType {
        self.ty
    }

    /// The value (length field minus the header, without padding).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole TLV including header and the padding present in the buffer.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.whole
    }

    /// Offset of the TLV within the buffer the iterator was built over (plus its base).
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// An iterator over the TLVs of a parameter list. Yields an error (once, then stops) when
/// a length field is below 4 or runs past the buffer.
#[derive(Debug, Clone)]
pub struct Parameters<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

impl<'a> Parameters<'a> {
    /// Parameters in `buf`; `base` is the offset of `buf` within the message (for errors).
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Parameters {
            buf,
            pos: 0,
            base,
            failed: false,
        }
    }
}

impl<'a> Iterator for Parameters<'a> {
    type Item = Result<RawParameter<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let offset = self.base + at;
        let fail = |s: &mut Self| {
            s.failed = true;
            Some(Err(DecodeError::BadLength { offset }))
        };
        let (Some(ty), Some(len)) = (be16(self.buf, at), be16(self.buf, at + 2)) else {
            return fail(self);
        };
        let len = len as usize;
        if len < PARAMETER_HEADER_LEN || at + len > self.buf.len() {
            return fail(self);
        }
        // The last parameter's padding may be absent (the message length excludes it).
        let end = (at + padded(len)).min(self.buf.len());
        let (Some(value), Some(whole)) = (
            self.buf.get(at + PARAMETER_HEADER_LEN..at + len),
            self.buf.get(at..end),
        ) else {
            return fail(self);
        };
        self.pos = end;
        Some(Ok(RawParameter {
            ty: ParameterType(ty),
            value,
            whole,
            offset,
        }))
    }
}

/// Serialises into a caller-owned buffer, or only counts bytes when built with
/// [`Writer::counting`]. Length fields are patched when a TLV or message is finished.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    counting: bool,
    error: Option<EncodeError>,
}

impl<'b> Writer<'b> {
    pub(crate) fn counting() -> Writer<'static> {
        Writer {
            buf: &mut [],
            pos: 0,
            counting: true,
            error: None,
        }
    }

    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            pos: 0,
            counting: false,
            error: None,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        if !self.counting {
            match self.buf.get_mut(self.pos..self.pos + b.len()) {
                Some(dst) => dst.copy_from_slice(b),
                None => {
                    self.error.get_or_insert(EncodeError::BufferTooSmall {
                        needed: self.pos + b.len(),
                    });
                }
            }
        }
        self.pos += b.len();
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.u8(0);
        }
    }

    /// Writes a 16-bit length at `at` (the length field of a header starting at `at - 2`).
    fn patch_len(&mut self, at: usize, len: usize) {
        let Ok(l) = u16::try_from(len) else {
            self.error.get_or_insert(EncodeError::TooLong);
            return;
        };
        if !self.counting
            && let Some(dst) = self.buf.get_mut(at..at + 2)
        {
            dst.copy_from_slice(&l.to_be_bytes());
        }
    }

    /// Starts a TLV; returns its start for [`Writer::end_tlv`].
    pub(crate) fn begin_tlv(&mut self, ty: ParameterType) -> usize {
        let start = self.pos;
        self.u16(ty.0);
        self.u16(0);
        start
    }

    /// Patches the TLV length (without padding) and pads to four bytes.
    pub(crate) fn end_tlv(&mut self, start: usize) {
        let len = self.pos - start;
        self.patch_len(start + 2, len);
        self.zeros(padded(len) - len);
    }

    /// Starts a message header.
    pub(crate) fn begin_message(&mut self, ty: u8, flags: u8) -> usize {
        let start = self.pos;
        self.u8(ty);
        self.u8(flags);
        self.u16(0);
        start
    }

    /// Patches the message length. Messages end with a padded TLV or a 4-byte field, so
    /// their length is a multiple of four.
    pub(crate) fn end_message(&mut self, start: usize) {
        let len = self.pos - start;
        self.patch_len(start + 2, len);
    }

    /// Records an encoding error (the first one wins).
    pub(crate) fn fail(&mut self, e: EncodeError) {
        self.error.get_or_insert(e);
    }

    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.pos),
        }
    }
}

/// Shared encode plumbing: `encoded_len` by counting, `encode` after a size check.
pub(crate) fn encode_with(
    buf: &mut [u8],
    emit: impl Fn(&mut Writer<'_>),
) -> Result<usize, EncodeError> {
    let mut c = Writer::counting();
    emit(&mut c);
    let needed = c.finish()?;
    if buf.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let mut w = Writer::new(buf);
    emit(&mut w);
    w.finish()
}

pub(crate) fn count_with(emit: impl Fn(&mut Writer<'_>)) -> usize {
    let mut c = Writer::counting();
    emit(&mut c);
    c.pos()
}

#[cfg(test)]
mod tests;
