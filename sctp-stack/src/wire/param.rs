//! Chunk parameters (RFC 9260 §3.2.1 and the extensions).
//!
//! Every parameter is a TLV padded to 4 bytes:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Parameter Type         |       Parameter Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! \                                                               \
//! /                       Parameter Value                         /
//! \                                                               \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cause::Cause;
use super::codes::{ChunkType, Edmid, HmacId, ParamType, ReconfigResult};
use super::list::{FixedItem, FixedList, RawTlvs, TlvItem, TlvList, split_tlv};
use super::{Encode, EncodeError, ParseError, Reader, Writer};
use crate::serial::{ReconfigSeq, Tsn};

/// A parameter as found in a chunk: its type and its value bytes, unparsed.
///
/// Unknown parameters are kept in this form ([`Param::Unknown`]) so they can be reported
/// back whole in an Unrecognized Parameter (RFC 9260 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawParam<'a> {
    ty: ParamType,
    value: &'a [u8],
    tlv: &'a [u8],
}

impl<'a> RawParam<'a> {
    /// Checks the parameter TLV at the start of `bytes` (padding after it is not needed).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (ty, value, tlv, _) = split_tlv(bytes, 0, "parameter")?;
        Ok(RawParam {
            ty: ParamType(ty),
            value,
            tlv,
        })
    }

    /// The parameter type.
    pub fn param_type(&self) -> ParamType {
        self.ty
    }

    /// The value (after the 4-byte header, without padding).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole TLV (header and value, no padding), as copied into an Unrecognized
    /// Parameter.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.tlv
    }
}

impl<'a> RawParam<'a> {
    /// The parameters of a region (a chunk's parameter or cause list) as raw TLVs. The
    /// iterator yields an error for the first malformed TLV and then stops.
    pub fn iter(region: &'a [u8]) -> RawParams<'a> {
        RawParams {
            inner: RawTlvs::new(region, "parameter"),
        }
    }
}

/// Iterator over raw parameters, see [`RawParam::iter`].
#[derive(Debug, Clone)]
pub struct RawParams<'a> {
    inner: RawTlvs<'a>,
}

impl<'a> Iterator for RawParams<'a> {
    type Item = Result<RawParam<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.map(|(t, value, tlv)| RawParam {
            ty: ParamType(t),
            value,
            tlv,
        }))
    }
}

impl Encode for RawParam<'_> {
    fn tlv_len(&self) -> usize {
        self.tlv.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::tlv16(buf, self.ty.0, self.tlv.len(), "parameter")?;
        w.bytes(self.value)?;
        w.finish()
    }
}

impl FixedItem for ChunkType {
    const SIZE: usize = 1;
    fn read(b: &[u8]) -> Option<Self> {
        b.first().map(|&t| ChunkType(t))
    }
    fn write(self, out: &mut [u8]) {
        if let Some(o) = out.first_mut() {
            *o = self.0;
        }
    }
}

impl FixedItem for ParamType {
    const SIZE: usize = 2;
    fn read(b: &[u8]) -> Option<Self> {
        u16::read(b).map(ParamType)
    }
    fn write(self, out: &mut [u8]) {
        self.0.write(out);
    }
}

impl FixedItem for HmacId {
    const SIZE: usize = 2;
    fn read(b: &[u8]) -> Option<Self> {
        u16::read(b).map(HmacId)
    }
    fn write(self, out: &mut [u8]) {
        self.0.write(out);
    }
}

/// A typed chunk parameter.
///
/// Layouts (value part; every parameter starts with the type/length header above):
///
/// ```text
/// Heartbeat Info (1), RFC 9260 §3.3.5:      Sender-Specific Heartbeat Info (opaque)
/// IPv4 Address (5), RFC 9260 §3.3.2.1:      IPv4 Address (4 bytes)
/// IPv6 Address (6), RFC 9260 §3.3.2.1:      IPv6 Address (16 bytes)
/// State Cookie (7), RFC 9260 §3.3.3.1:      Cookie (opaque)
/// Unrecognized Parameter (8), §3.3.3.1:     the unrecognized parameter TLV(s), copied
/// Cookie Preservative (9), §3.3.2.1:        Suggested Cookie Life-Span Increment (msec, u32)
/// Host Name Address (11), §3.3.2.1:         Host Name (NUL-terminated)
/// Supported Address Types (12), §3.3.2.1:   Address Type #1 (u16), #2, ...
/// Outgoing SSN Reset Request (13), RFC 6525 §4.1:
///     Re-configuration Request Sequence Number (u32)
///     Re-configuration Response Sequence Number (u32)
///     Sender's Last Assigned TSN (u32)
///     Stream Number 1 (u16) ... Stream Number N (u16)
/// Incoming SSN Reset Request (14), §4.2:    Request Sequence Number, Stream Numbers (u16)...
/// SSN/TSN Reset Request (15), §4.3:         Request Sequence Number
/// Re-configuration Response (16), §4.4:     Response Sequence Number, Result (u32),
///                                           [Sender's Next TSN, Receiver's Next TSN]
/// Add Outgoing Streams Request (17), §4.5:  Request Sequence Number,
///                                           Number of new streams (u16), Reserved (u16)
/// Add Incoming Streams Request (18), §4.6:  as 17
/// ECN Capable (0x8000), RFC 9260 App. A:    (empty)
/// Zero Checksum Acceptable (0x8001), RFC 9653 §4: Error Detection Method Identifier (u32)
/// Random (0x8002), RFC 4895 §3.1:           Random Number (opaque, >= 32 bytes)
/// Chunk List (0x8003), RFC 4895 §3.2:       Chunk Type 1 (u8) ... Chunk Type N
/// Requested HMAC Algorithm (0x8004), §3.3:  HMAC Identifier 1 (u16) ... N
/// Padding (0x8005), RFC 4820 §4:            Padding Data (ignored)
/// Supported Extensions (0x8008), RFC 5061 §4.2.7: Chunk Type 1 (u8) ... N
/// Forward-TSN-Supported (0xC000), RFC 3758 §3.1: (empty)
/// Add IP Address (0xC001), RFC 5061 §4.2.1: ASCONF-Request Correlation ID (u32),
///                                           Address Parameter (IPv4/IPv6 TLV)
/// Delete IP Address (0xC002), §4.2.2:       as 0xC001
/// Error Cause Indication (0xC003), §4.2.3:  ASCONF-Request Correlation ID, Error Causes...
/// Set Primary Address (0xC004), §4.2.4:     as 0xC001
/// Success Indication (0xC005), §4.2.5:      ASCONF-Request Correlation ID
/// Adaptation Layer Indication (0xC006), §4.2.6: Adaptation Code Point (u32)
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Param<'a> {
    /// Heartbeat Info (RFC 9260 §3.3.5): the sender's opaque information.
    HeartbeatInfo(&'a [u8]),
    /// IPv4 Address (RFC 9260 §3.3.2.1).
    Ipv4Address(Ipv4Addr),
    /// IPv6 Address (RFC 9260 §3.3.2.1).
    Ipv6Address(Ipv6Addr),
    /// State Cookie (RFC 9260 §3.3.3.1).
    StateCookie(&'a [u8]),
    /// Unrecognized Parameter (RFC 9260 §3.3.3.1): the unrecognized TLV(s), copied.
    UnrecognizedParameter(&'a [u8]),
    /// Cookie Preservative (RFC 9260 §3.3.2.1): suggested life-span increment, in ms.
    CookiePreservative(u32),
    /// Host Name Address (RFC 9260 §3.3.2.1): the host name bytes (NUL-terminated).
    /// Deprecated; a receiver aborts with Unresolvable Address (§5.1.2).
    HostNameAddress(&'a [u8]),
    /// Supported Address Types (RFC 9260 §3.3.2.1): address parameter types.
    SupportedAddressTypes(FixedList<'a, ParamType>),
    /// Outgoing SSN Reset Request (RFC 6525 §4.1).
    OutgoingSsnResetRequest {
        /// Re-configuration Request Sequence Number.
        request_seq: ReconfigSeq,
        /// Re-configuration Response Sequence Number.
        response_seq: ReconfigSeq,
        /// Sender's Last Assigned TSN.
        last_tsn: Tsn,
        /// Streams to reset (empty: all).
        streams: FixedList<'a, u16>,
    },
    /// Incoming SSN Reset Request (RFC 6525 §4.2).
    IncomingSsnResetRequest {
        /// Re-configuration Request Sequence Number.
        request_seq: ReconfigSeq,
        /// Streams to reset (empty: all).
        streams: FixedList<'a, u16>,
    },
    /// SSN/TSN Reset Request (RFC 6525 §4.3).
    SsnTsnResetRequest {
        /// Re-configuration Request Sequence Number.
        request_seq: ReconfigSeq,
    },
    /// Re-configuration Response (RFC 6525 §4.4).
    ReconfigResponse {
        /// Re-configuration Response Sequence Number.
        response_seq: ReconfigSeq,
        /// Result.
        result: ReconfigResult,
        /// Sender's Next TSN and Receiver's Next TSN (present together, for SSN/TSN resets).
        next_tsns: Option<(Tsn, Tsn)>,
    },
    /// Add Outgoing Streams Request (RFC 6525 §4.5).
    AddOutgoingStreamsRequest {
        /// Re-configuration Request Sequence Number.
        request_seq: ReconfigSeq,
        /// Number of new streams.
        new_streams: u16,
    },
    /// Add Incoming Streams Request (RFC 6525 §4.6).
    AddIncomingStreamsRequest {
        /// Re-configuration Request Sequence Number.
        request_seq: ReconfigSeq,
        /// Number of new streams.
        new_streams: u16,
    },
    /// ECN Capable (RFC 9260 Appendix A).
    EcnCapable,
    /// Zero Checksum Acceptable (RFC 9653 §4).
    ZeroChecksumAcceptable(Edmid),
    /// Random (RFC 4895 §3.1).
    Random(&'a [u8]),
    /// Chunk List (RFC 4895 §3.2): chunk types that must be authenticated.
    ChunkList(FixedList<'a, ChunkType>),
    /// Requested HMAC Algorithm (RFC 4895 §3.3), in order of preference.
    RequestedHmacAlgorithms(FixedList<'a, HmacId>),
    /// Padding (RFC 4820 §4): a value of this many bytes; its content is ignored and sent as
    /// zeros.
    Padding(u16),
    /// Supported Extensions (RFC 5061 §4.2.7).
    SupportedExtensions(FixedList<'a, ChunkType>),
    /// Forward-TSN-Supported (RFC 3758 §3.1).
    ForwardTsnSupported,
    /// Add IP Address (RFC 5061 §4.2.1).
    AddIpAddress {
        /// ASCONF-Request Correlation ID.
        correlation_id: u32,
        /// The address to add.
        address: IpAddr,
    },
    /// Delete IP Address (RFC 5061 §4.2.2).
    DeleteIpAddress {
        /// ASCONF-Request Correlation ID.
        correlation_id: u32,
        /// The address to delete.
        address: IpAddr,
    },
    /// Error Cause Indication (RFC 5061 §4.2.3).
    ErrorCauseIndication {
        /// ASCONF-Request Correlation ID.
        correlation_id: u32,
        /// The causes.
        causes: TlvList<'a, Cause<'a>>,
    },
    /// Set Primary Address (RFC 5061 §4.2.4).
    SetPrimaryAddress {
        /// ASCONF-Request Correlation ID.
        correlation_id: u32,
        /// The requested primary address.
        address: IpAddr,
    },
    /// Success Indication (RFC 5061 §4.2.5).
    SuccessIndication {
        /// ASCONF-Request Correlation ID.
        correlation_id: u32,
    },
    /// Adaptation Layer Indication (RFC 5061 §4.2.6): the adaptation code point.
    AdaptationLayerIndication(u32),
    /// A parameter of a type this crate does not implement, kept raw.
    Unknown(RawParam<'a>),
}

/// Encoded size of an IPv4 or IPv6 Address parameter.
pub(crate) fn address_param_len(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    }
}

/// Writes an IPv4 or IPv6 Address parameter.
pub(crate) fn write_address_param(w: &mut Writer<'_>, a: &IpAddr) -> Result<(), EncodeError> {
    match a {
        IpAddr::V4(v4) => {
            w.u16(ParamType::IPV4_ADDRESS.0)?;
            w.u16(8)?;
            w.bytes(&v4.octets())
        }
        IpAddr::V6(v6) => {
            w.u16(ParamType::IPV6_ADDRESS.0)?;
            w.u16(20)?;
            w.bytes(&v6.octets())
        }
    }
}

/// Reads an IPv4 or IPv6 Address parameter at the reader's position (it is 4-aligned and
/// needs no padding).
pub(crate) fn read_address_param(r: &mut Reader<'_>) -> Result<IpAddr, ParseError> {
    let ty = ParamType(r.u16()?);
    let len = r.u16()?;
    match (ty, len) {
        (ParamType::IPV4_ADDRESS, 8) => Ok(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
        (ParamType::IPV6_ADDRESS, 20) => Ok(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
        (ParamType::IPV4_ADDRESS | ParamType::IPV6_ADDRESS, _) => Err(ParseError::BadLength {
            what: "address parameter",
            offset: 0,
        }),
        _ => Err(ParseError::InvalidValue {
            what: "address parameter type",
        }),
    }
}

impl<'a> Param<'a> {
    /// The parameter type.
    pub fn param_type(&self) -> ParamType {
        match self {
            Param::HeartbeatInfo(_) => ParamType::HEARTBEAT_INFO,
            Param::Ipv4Address(_) => ParamType::IPV4_ADDRESS,
            Param::Ipv6Address(_) => ParamType::IPV6_ADDRESS,
            Param::StateCookie(_) => ParamType::STATE_COOKIE,
            Param::UnrecognizedParameter(_) => ParamType::UNRECOGNIZED_PARAMETER,
            Param::CookiePreservative(_) => ParamType::COOKIE_PRESERVATIVE,
            Param::HostNameAddress(_) => ParamType::HOST_NAME_ADDRESS,
            Param::SupportedAddressTypes(_) => ParamType::SUPPORTED_ADDRESS_TYPES,
            Param::OutgoingSsnResetRequest { .. } => ParamType::OUTGOING_SSN_RESET_REQUEST,
            Param::IncomingSsnResetRequest { .. } => ParamType::INCOMING_SSN_RESET_REQUEST,
            Param::SsnTsnResetRequest { .. } => ParamType::SSN_TSN_RESET_REQUEST,
            Param::ReconfigResponse { .. } => ParamType::RECONFIG_RESPONSE,
            Param::AddOutgoingStreamsRequest { .. } => ParamType::ADD_OUTGOING_STREAMS_REQUEST,
            Param::AddIncomingStreamsRequest { .. } => ParamType::ADD_INCOMING_STREAMS_REQUEST,
            Param::EcnCapable => ParamType::ECN_CAPABLE,
            Param::ZeroChecksumAcceptable(_) => ParamType::ZERO_CHECKSUM_ACCEPTABLE,
            Param::Random(_) => ParamType::RANDOM,
            Param::ChunkList(_) => ParamType::CHUNK_LIST,
            Param::RequestedHmacAlgorithms(_) => ParamType::REQUESTED_HMAC_ALGORITHM,
            Param::Padding(_) => ParamType::PADDING,
            Param::SupportedExtensions(_) => ParamType::SUPPORTED_EXTENSIONS,
            Param::ForwardTsnSupported => ParamType::FORWARD_TSN_SUPPORTED,
            Param::AddIpAddress { .. } => ParamType::ADD_IP_ADDRESS,
            Param::DeleteIpAddress { .. } => ParamType::DELETE_IP_ADDRESS,
            Param::ErrorCauseIndication { .. } => ParamType::ERROR_CAUSE_INDICATION,
            Param::SetPrimaryAddress { .. } => ParamType::SET_PRIMARY_ADDRESS,
            Param::SuccessIndication { .. } => ParamType::SUCCESS_INDICATION,
            Param::AdaptationLayerIndication(_) => ParamType::ADAPTATION_LAYER_INDICATION,
            Param::Unknown(raw) => raw.param_type(),
        }
    }

    /// Parses a raw parameter into its typed form; unknown types become [`Param::Unknown`].
    pub fn parse(raw: &RawParam<'a>) -> Result<Param<'a>, ParseError> {
        let what = raw.ty.name().unwrap_or("parameter");
        let mut r = Reader::new(raw.value, what);
        let p = match raw.ty {
            ParamType::HEARTBEAT_INFO => Param::HeartbeatInfo(r.rest()),
            ParamType::IPV4_ADDRESS => Param::Ipv4Address(Ipv4Addr::from(r.array::<4>()?)),
            ParamType::IPV6_ADDRESS => Param::Ipv6Address(Ipv6Addr::from(r.array::<16>()?)),
            ParamType::STATE_COOKIE => Param::StateCookie(r.rest()),
            ParamType::UNRECOGNIZED_PARAMETER => Param::UnrecognizedParameter(r.rest()),
            ParamType::COOKIE_PRESERVATIVE => Param::CookiePreservative(r.u32()?),
            ParamType::HOST_NAME_ADDRESS => Param::HostNameAddress(r.rest()),
            ParamType::SUPPORTED_ADDRESS_TYPES => {
                Param::SupportedAddressTypes(FixedList::from_bytes(r.rest(), what)?)
            }
            ParamType::OUTGOING_SSN_RESET_REQUEST => Param::OutgoingSsnResetRequest {
                request_seq: ReconfigSeq(r.u32()?),
                response_seq: ReconfigSeq(r.u32()?),
                last_tsn: Tsn(r.u32()?),
                streams: FixedList::from_bytes(r.rest(), what)?,
            },
            ParamType::INCOMING_SSN_RESET_REQUEST => Param::IncomingSsnResetRequest {
                request_seq: ReconfigSeq(r.u32()?),
                streams: FixedList::from_bytes(r.rest(), what)?,
            },
            ParamType::SSN_TSN_RESET_REQUEST => Param::SsnTsnResetRequest {
                request_seq: ReconfigSeq(r.u32()?),
            },
            ParamType::RECONFIG_RESPONSE => {
                let response_seq = ReconfigSeq(r.u32()?);
                let result = ReconfigResult(r.u32()?);
                let next_tsns = if raw.value.len() == 8 {
                    None
                } else {
                    Some((Tsn(r.u32()?), Tsn(r.u32()?)))
                };
                Param::ReconfigResponse {
                    response_seq,
                    result,
                    next_tsns,
                }
            }
            ParamType::ADD_OUTGOING_STREAMS_REQUEST | ParamType::ADD_INCOMING_STREAMS_REQUEST => {
                let request_seq = ReconfigSeq(r.u32()?);
                let new_streams = r.u16()?;
                let _reserved = r.u16()?;
                if raw.ty == ParamType::ADD_OUTGOING_STREAMS_REQUEST {
                    Param::AddOutgoingStreamsRequest {
                        request_seq,
                        new_streams,
                    }
                } else {
                    Param::AddIncomingStreamsRequest {
                        request_seq,
                        new_streams,
                    }
                }
            }
            ParamType::ECN_CAPABLE => Param::EcnCapable,
            ParamType::ZERO_CHECKSUM_ACCEPTABLE => Param::ZeroChecksumAcceptable(Edmid(r.u32()?)),
            ParamType::RANDOM => Param::Random(r.rest()),
            ParamType::CHUNK_LIST => Param::ChunkList(FixedList::from_bytes(r.rest(), what)?),
            ParamType::REQUESTED_HMAC_ALGORITHM => {
                Param::RequestedHmacAlgorithms(FixedList::from_bytes(r.rest(), what)?)
            }
            ParamType::PADDING => {
                let n = r.rest().len();
                Param::Padding(
                    u16::try_from(n).map_err(|_| ParseError::BadLength { what, offset: 0 })?,
                )
            }
            ParamType::SUPPORTED_EXTENSIONS => {
                Param::SupportedExtensions(FixedList::from_bytes(r.rest(), what)?)
            }
            ParamType::FORWARD_TSN_SUPPORTED => Param::ForwardTsnSupported,
            ParamType::ADD_IP_ADDRESS => Param::AddIpAddress {
                correlation_id: r.u32()?,
                address: read_address_param(&mut r)?,
            },
            ParamType::DELETE_IP_ADDRESS => Param::DeleteIpAddress {
                correlation_id: r.u32()?,
                address: read_address_param(&mut r)?,
            },
            ParamType::SET_PRIMARY_ADDRESS => Param::SetPrimaryAddress {
                correlation_id: r.u32()?,
                address: read_address_param(&mut r)?,
            },
            ParamType::ERROR_CAUSE_INDICATION => Param::ErrorCauseIndication {
                correlation_id: r.u32()?,
                causes: TlvList::from_bytes(r.rest())?,
            },
            ParamType::SUCCESS_INDICATION => Param::SuccessIndication {
                correlation_id: r.u32()?,
            },
            ParamType::ADAPTATION_LAYER_INDICATION => Param::AdaptationLayerIndication(r.u32()?),
            _ => return Ok(Param::Unknown(*raw)),
        };
        r.finish()?;
        Ok(p)
    }

    fn value_len(&self) -> usize {
        match self {
            Param::HeartbeatInfo(b)
            | Param::StateCookie(b)
            | Param::UnrecognizedParameter(b)
            | Param::HostNameAddress(b)
            | Param::Random(b) => b.len(),
            Param::Ipv4Address(_) => 4,
            Param::Ipv6Address(_) => 16,
            Param::CookiePreservative(_)
            | Param::ZeroChecksumAcceptable(_)
            | Param::SsnTsnResetRequest { .. }
            | Param::SuccessIndication { .. }
            | Param::AdaptationLayerIndication(_) => 4,
            Param::SupportedAddressTypes(l) => l.byte_len(),
            Param::OutgoingSsnResetRequest { streams, .. } => 12 + streams.byte_len(),
            Param::IncomingSsnResetRequest { streams, .. } => 4 + streams.byte_len(),
            Param::ReconfigResponse { next_tsns, .. } => {
                if next_tsns.is_some() {
                    16
                } else {
                    8
                }
            }
            Param::AddOutgoingStreamsRequest { .. } | Param::AddIncomingStreamsRequest { .. } => 8,
            Param::EcnCapable | Param::ForwardTsnSupported => 0,
            Param::ChunkList(l) | Param::SupportedExtensions(l) => l.byte_len(),
            Param::RequestedHmacAlgorithms(l) => l.byte_len(),
            Param::Padding(n) => usize::from(*n),
            Param::AddIpAddress { address, .. }
            | Param::DeleteIpAddress { address, .. }
            | Param::SetPrimaryAddress { address, .. } => 4 + address_param_len(address),
            Param::ErrorCauseIndication { causes, .. } => 4 + causes.unpadded_len(),
            Param::Unknown(raw) => raw.value.len(),
        }
    }
}

impl Encode for Param<'_> {
    fn tlv_len(&self) -> usize {
        4usize.saturating_add(self.value_len())
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let what = self.param_type().name().unwrap_or("parameter");
        let mut w = Writer::tlv16(buf, self.param_type().0, self.tlv_len(), what)?;
        match self {
            Param::HeartbeatInfo(b)
            | Param::StateCookie(b)
            | Param::UnrecognizedParameter(b)
            | Param::HostNameAddress(b)
            | Param::Random(b) => w.bytes(b)?,
            Param::Ipv4Address(a) => w.bytes(&a.octets())?,
            Param::Ipv6Address(a) => w.bytes(&a.octets())?,
            Param::CookiePreservative(v) | Param::AdaptationLayerIndication(v) => w.u32(*v)?,
            Param::ZeroChecksumAcceptable(e) => w.u32(e.0)?,
            Param::SsnTsnResetRequest { request_seq } => w.u32(request_seq.0)?,
            Param::SuccessIndication { correlation_id } => w.u32(*correlation_id)?,
            Param::SupportedAddressTypes(l) => l.write(&mut w)?,
            Param::OutgoingSsnResetRequest {
                request_seq,
                response_seq,
                last_tsn,
                streams,
            } => {
                w.u32(request_seq.0)?;
                w.u32(response_seq.0)?;
                w.u32(last_tsn.0)?;
                streams.write(&mut w)?;
            }
            Param::IncomingSsnResetRequest {
                request_seq,
                streams,
            } => {
                w.u32(request_seq.0)?;
                streams.write(&mut w)?;
            }
            Param::ReconfigResponse {
                response_seq,
                result,
                next_tsns,
            } => {
                w.u32(response_seq.0)?;
                w.u32(result.0)?;
                if let Some((sender, receiver)) = next_tsns {
                    w.u32(sender.0)?;
                    w.u32(receiver.0)?;
                }
            }
            Param::AddOutgoingStreamsRequest {
                request_seq,
                new_streams,
            }
            | Param::AddIncomingStreamsRequest {
                request_seq,
                new_streams,
            } => {
                w.u32(request_seq.0)?;
                w.u16(*new_streams)?;
                w.u16(0)?;
            }
            Param::EcnCapable | Param::ForwardTsnSupported => {}
            Param::ChunkList(l) | Param::SupportedExtensions(l) => l.write(&mut w)?,
            Param::RequestedHmacAlgorithms(l) => l.write(&mut w)?,
            Param::Padding(n) => w.zeros(usize::from(*n))?,
            Param::AddIpAddress {
                correlation_id,
                address,
            }
            | Param::DeleteIpAddress {
                correlation_id,
                address,
            }
            | Param::SetPrimaryAddress {
                correlation_id,
                address,
            } => {
                w.u32(*correlation_id)?;
                write_address_param(&mut w, address)?;
            }
            Param::ErrorCauseIndication {
                correlation_id,
                causes,
            } => {
                w.u32(*correlation_id)?;
                causes.write(&mut w)?;
            }
            Param::Unknown(raw) => w.bytes(raw.value)?,
        }
        w.finish()
    }
}

impl<'a> TlvItem<'a> for Param<'a> {
    const WHAT: &'static str = "parameter";

    fn parse_tlv(ty: u16, value: &'a [u8], tlv: &'a [u8]) -> Result<Self, ParseError> {
        Param::parse(&RawParam {
            ty: ParamType(ty),
            value,
            tlv,
        })
    }
}
