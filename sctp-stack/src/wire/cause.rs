//! Error causes carried by ABORT, ERROR and Error Cause Indication (RFC 9260 §3.3.10).
//!
//! Every cause is a TLV padded to 4 bytes:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Cause Code           |         Cause Length          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! /                    Cause-Specific Information                 /
//! \                                                               \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::codes::{CauseCode, HmacId, ParamType};
use super::list::{FixedList, RawTlvs, TlvItem, split_tlv};
use super::{Encode, EncodeError, ParseError, Reader, Writer};
use crate::serial::Tsn;

/// An error cause as found in a chunk: its code and its value bytes, unparsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawCause<'a> {
    code: CauseCode,
    value: &'a [u8],
    tlv: &'a [u8],
}

impl<'a> RawCause<'a> {
    /// Checks the cause TLV at the start of `bytes` (padding after it is not needed).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (code, value, tlv, _) = split_tlv(bytes, 0, "error cause")?;
        Ok(RawCause {
            code: CauseCode(code),
            value,
            tlv,
        })
    }

    /// The cause code.
    pub fn code(&self) -> CauseCode {
        self.code
    }

    /// The cause-specific information (no padding).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole TLV (header and value, no padding).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.tlv
    }
}

impl<'a> RawCause<'a> {
    /// The error causes of a region (a chunk's parameter or cause list) as raw TLVs. The
    /// iterator yields an error for the first malformed TLV and then stops.
    pub fn iter(region: &'a [u8]) -> RawCauses<'a> {
        RawCauses {
            inner: RawTlvs::new(region, "error cause"),
        }
    }
}

/// Iterator over raw error causes, see [`RawCause::iter`].
#[derive(Debug, Clone)]
pub struct RawCauses<'a> {
    inner: RawTlvs<'a>,
}

impl<'a> Iterator for RawCauses<'a> {
    type Item = Result<RawCause<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.map(|(t, value, tlv)| RawCause {
            code: CauseCode(t),
            value,
            tlv,
        }))
    }
}

impl Encode for RawCause<'_> {
    fn tlv_len(&self) -> usize {
        self.tlv.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::tlv16(buf, self.code.0, self.tlv.len(), "error cause")?;
        w.bytes(self.value)?;
        w.finish()
    }
}

/// A typed error cause.
///
/// Layouts (cause-specific information after the code/length header):
///
/// ```text
///  1 Invalid Stream Identifier (RFC 9260 §3.3.10.1):  Stream Identifier (u16), Reserved (u16)
///  2 Missing Mandatory Parameter (§3.3.10.2):         Number of missing params N (u32),
///                                                     Missing Param Type #1 (u16) ... #N
///  3 Stale Cookie (§3.3.10.3):                        Measure of Staleness (usec, u32)
///  4 Out of Resource (§3.3.10.4):                     (empty)
///  5 Unresolvable Address (§3.3.10.5):                Unresolvable Address (a parameter TLV)
///  6 Unrecognized Chunk Type (§3.3.10.6):             Unrecognized Chunk (type, flags, length, value)
///  7 Invalid Mandatory Parameter (§3.3.10.7):         (empty)
///  8 Unrecognized Parameters (§3.3.10.8):             Unrecognized Parameters (TLVs)
///  9 No User Data (§3.3.10.9):                        TSN value (u32)
/// 10 Cookie Received While Shutting Down (§3.3.10.10): (empty)
/// 11 Restart with New Addresses (§3.3.10.11):         New Address TLVs
/// 12 User-Initiated Abort (§3.3.10.12):               Upper Layer Abort Reason (opaque)
/// 13 Protocol Violation (§3.3.10.13):                 Additional Information (opaque)
/// 0xA0-0xA4 (RFC 5061 §5.1):                          TLV-copied ASCONF parameter (if any)
/// 0x105 Unsupported HMAC Identifier (RFC 4895 §4.1):  HMAC Identifier (u16), Padding (u16)
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Cause<'a> {
    /// Invalid Stream Identifier (RFC 9260 §3.3.10.1).
    InvalidStreamIdentifier {
        /// The invalid stream.
        stream_id: u16,
    },
    /// Missing Mandatory Parameter (RFC 9260 §3.3.10.2).
    MissingMandatoryParameter {
        /// The missing parameter types.
        missing: FixedList<'a, ParamType>,
    },
    /// Stale Cookie (RFC 9260 §3.3.10.3).
    StaleCookie {
        /// How long past its lifetime the cookie was, in microseconds.
        staleness_us: u32,
    },
    /// Out of Resource (RFC 9260 §3.3.10.4).
    OutOfResource,
    /// Unresolvable Address (RFC 9260 §3.3.10.5): the address parameter TLV.
    UnresolvableAddress(&'a [u8]),
    /// Unrecognized Chunk Type (RFC 9260 §3.3.10.6): the unrecognized chunk (header and value).
    UnrecognizedChunkType(&'a [u8]),
    /// Invalid Mandatory Parameter (RFC 9260 §3.3.10.7).
    InvalidMandatoryParameter,
    /// Unrecognized Parameters (RFC 9260 §3.3.10.8): the unrecognized parameter TLVs.
    UnrecognizedParameters(&'a [u8]),
    /// No User Data (RFC 9260 §3.3.10.9).
    NoUserData {
        /// The TSN of the DATA chunk without user data.
        tsn: Tsn,
    },
    /// Cookie Received While Shutting Down (RFC 9260 §3.3.10.10).
    CookieReceivedWhileShuttingDown,
    /// Restart of an Association with New Addresses (RFC 9260 §3.3.10.11): the new
    /// address TLVs.
    RestartWithNewAddresses(&'a [u8]),
    /// User-Initiated Abort (RFC 9260 §3.3.10.12): the upper layer's reason.
    UserInitiatedAbort(&'a [u8]),
    /// Protocol Violation (RFC 9260 §3.3.10.13): additional information.
    ProtocolViolation(&'a [u8]),
    /// Request to Delete Last Remaining IP Address (RFC 5061 §5.1): the ASCONF parameter.
    DeleteLastRemainingAddress(&'a [u8]),
    /// Operation Refused Due to Resource Shortage (RFC 5061 §5.1): the ASCONF parameter.
    ResourceShortage(&'a [u8]),
    /// Request to Delete Source IP Address (RFC 5061 §5.1): the ASCONF parameter.
    DeleteSourceAddress(&'a [u8]),
    /// Association Aborted due to Illegal ASCONF-ACK (RFC 5061 §5.1): any information.
    IllegalAsconfAck(&'a [u8]),
    /// Request Refused - No Authorization (RFC 5061 §5.1): the ASCONF parameter.
    NoAuthorization(&'a [u8]),
    /// Unsupported HMAC Identifier (RFC 4895 §4.1).
    UnsupportedHmacIdentifier {
        /// The HMAC identifier that is not supported.
        hmac_id: HmacId,
    },
    /// A cause of a code this crate does not implement, kept raw.
    Unknown(RawCause<'a>),
}

impl<'a> Cause<'a> {
    /// The cause code.
    pub fn code(&self) -> CauseCode {
        match self {
            Cause::InvalidStreamIdentifier { .. } => CauseCode::INVALID_STREAM_IDENTIFIER,
            Cause::MissingMandatoryParameter { .. } => CauseCode::MISSING_MANDATORY_PARAMETER,
            Cause::StaleCookie { .. } => CauseCode::STALE_COOKIE,
            Cause::OutOfResource => CauseCode::OUT_OF_RESOURCE,
            Cause::UnresolvableAddress(_) => CauseCode::UNRESOLVABLE_ADDRESS,
            Cause::UnrecognizedChunkType(_) => CauseCode::UNRECOGNIZED_CHUNK_TYPE,
            Cause::InvalidMandatoryParameter => CauseCode::INVALID_MANDATORY_PARAMETER,
            Cause::UnrecognizedParameters(_) => CauseCode::UNRECOGNIZED_PARAMETERS,
            Cause::NoUserData { .. } => CauseCode::NO_USER_DATA,
            Cause::CookieReceivedWhileShuttingDown => {
                CauseCode::COOKIE_RECEIVED_WHILE_SHUTTING_DOWN
            }
            Cause::RestartWithNewAddresses(_) => CauseCode::RESTART_WITH_NEW_ADDRESSES,
            Cause::UserInitiatedAbort(_) => CauseCode::USER_INITIATED_ABORT,
            Cause::ProtocolViolation(_) => CauseCode::PROTOCOL_VIOLATION,
            Cause::DeleteLastRemainingAddress(_) => CauseCode::DELETE_LAST_REMAINING_ADDRESS,
            Cause::ResourceShortage(_) => CauseCode::RESOURCE_SHORTAGE,
            Cause::DeleteSourceAddress(_) => CauseCode::DELETE_SOURCE_ADDRESS,
            Cause::IllegalAsconfAck(_) => CauseCode::ILLEGAL_ASCONF_ACK,
            Cause::NoAuthorization(_) => CauseCode::NO_AUTHORIZATION,
            Cause::UnsupportedHmacIdentifier { .. } => CauseCode::UNSUPPORTED_HMAC_IDENTIFIER,
            Cause::Unknown(raw) => raw.code(),
        }
    }

    /// Parses a raw cause into its typed form; unknown codes become [`Cause::Unknown`].
    pub fn parse(raw: &RawCause<'a>) -> Result<Cause<'a>, ParseError> {
        let what = raw.code.name().unwrap_or("error cause");
        let mut r = Reader::new(raw.value, what);
        let c = match raw.code {
            CauseCode::INVALID_STREAM_IDENTIFIER => {
                let stream_id = r.u16()?;
                let _reserved = r.u16()?;
                Cause::InvalidStreamIdentifier { stream_id }
            }
            CauseCode::MISSING_MANDATORY_PARAMETER => {
                let n = r.u32()?;
                let list = r.rest();
                if usize::try_from(n).ok().and_then(|n| n.checked_mul(2)) != Some(list.len()) {
                    return Err(ParseError::BadLength { what, offset: 0 });
                }
                Cause::MissingMandatoryParameter {
                    missing: FixedList::from_bytes(list, what)?,
                }
            }
            CauseCode::STALE_COOKIE => Cause::StaleCookie {
                staleness_us: r.u32()?,
            },
            CauseCode::OUT_OF_RESOURCE => Cause::OutOfResource,
            CauseCode::UNRESOLVABLE_ADDRESS => Cause::UnresolvableAddress(r.rest()),
            CauseCode::UNRECOGNIZED_CHUNK_TYPE => Cause::UnrecognizedChunkType(r.rest()),
            CauseCode::INVALID_MANDATORY_PARAMETER => Cause::InvalidMandatoryParameter,
            CauseCode::UNRECOGNIZED_PARAMETERS => Cause::UnrecognizedParameters(r.rest()),
            CauseCode::NO_USER_DATA => Cause::NoUserData { tsn: Tsn(r.u32()?) },
            CauseCode::COOKIE_RECEIVED_WHILE_SHUTTING_DOWN => {
                Cause::CookieReceivedWhileShuttingDown
            }
            CauseCode::RESTART_WITH_NEW_ADDRESSES => Cause::RestartWithNewAddresses(r.rest()),
            CauseCode::USER_INITIATED_ABORT => Cause::UserInitiatedAbort(r.rest()),
            CauseCode::PROTOCOL_VIOLATION => Cause::ProtocolViolation(r.rest()),
            CauseCode::DELETE_LAST_REMAINING_ADDRESS => Cause::DeleteLastRemainingAddress(r.rest()),
            CauseCode::RESOURCE_SHORTAGE => Cause::ResourceShortage(r.rest()),
            CauseCode::DELETE_SOURCE_ADDRESS => Cause::DeleteSourceAddress(r.rest()),
            CauseCode::ILLEGAL_ASCONF_ACK => Cause::IllegalAsconfAck(r.rest()),
            CauseCode::NO_AUTHORIZATION => Cause::NoAuthorization(r.rest()),
            CauseCode::UNSUPPORTED_HMAC_IDENTIFIER => {
                let hmac_id = HmacId(r.u16()?);
                // RFC 4895 §4.1 defines a cause length of 6; accept the 2 padding bytes
                // counted as well.
                if r.rest().iter().any(|&b| b != 0) {
                    return Err(ParseError::BadLength { what, offset: 0 });
                }
                Cause::UnsupportedHmacIdentifier { hmac_id }
            }
            _ => return Ok(Cause::Unknown(*raw)),
        };
        r.finish()?;
        Ok(c)
    }

    fn value_len(&self) -> usize {
        match self {
            Cause::InvalidStreamIdentifier { .. } => 4,
            Cause::MissingMandatoryParameter { missing } => 4 + missing.byte_len(),
            Cause::StaleCookie { .. } | Cause::NoUserData { .. } => 4,
            Cause::OutOfResource
            | Cause::InvalidMandatoryParameter
            | Cause::CookieReceivedWhileShuttingDown => 0,
            Cause::UnresolvableAddress(b)
            | Cause::UnrecognizedChunkType(b)
            | Cause::UnrecognizedParameters(b)
            | Cause::RestartWithNewAddresses(b)
            | Cause::UserInitiatedAbort(b)
            | Cause::ProtocolViolation(b)
            | Cause::DeleteLastRemainingAddress(b)
            | Cause::ResourceShortage(b)
            | Cause::DeleteSourceAddress(b)
            | Cause::IllegalAsconfAck(b)
            | Cause::NoAuthorization(b) => b.len(),
            Cause::UnsupportedHmacIdentifier { .. } => 2,
            Cause::Unknown(raw) => raw.value.len(),
        }
    }
}

impl Encode for Cause<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.value_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let what = self.code().name().unwrap_or("error cause");
        let mut w = Writer::tlv16(buf, self.code().0, self.tlv_len(), what)?;
        match self {
            Cause::InvalidStreamIdentifier { stream_id } => {
                w.u16(*stream_id)?;
                w.u16(0)?;
            }
            Cause::MissingMandatoryParameter { missing } => {
                let n = u32::try_from(missing.len()).map_err(|_| EncodeError::TooLong {
                    what,
                    len: missing.len(),
                })?;
                w.u32(n)?;
                missing.write(&mut w)?;
            }
            Cause::StaleCookie { staleness_us } => w.u32(*staleness_us)?,
            Cause::NoUserData { tsn } => w.u32(tsn.0)?,
            Cause::OutOfResource
            | Cause::InvalidMandatoryParameter
            | Cause::CookieReceivedWhileShuttingDown => {}
            Cause::UnresolvableAddress(b)
            | Cause::UnrecognizedChunkType(b)
            | Cause::UnrecognizedParameters(b)
            | Cause::RestartWithNewAddresses(b)
            | Cause::UserInitiatedAbort(b)
            | Cause::ProtocolViolation(b)
            | Cause::DeleteLastRemainingAddress(b)
            | Cause::ResourceShortage(b)
            | Cause::DeleteSourceAddress(b)
            | Cause::IllegalAsconfAck(b)
            | Cause::NoAuthorization(b) => w.bytes(b)?,
            Cause::UnsupportedHmacIdentifier { hmac_id } => w.u16(hmac_id.0)?,
            Cause::Unknown(raw) => w.bytes(raw.value)?,
        }
        w.finish()
    }
}

impl<'a> TlvItem<'a> for Cause<'a> {
    const WHAT: &'static str = "error cause";

    fn parse_tlv(ty: u16, value: &'a [u8], tlv: &'a [u8]) -> Result<Self, ParseError> {
        Cause::parse(&RawCause {
            code: CauseCode(ty),
            value,
            tlv,
        })
    }
}
