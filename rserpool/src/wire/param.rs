//! Typed RFC 5354 parameters.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::{
    CauseCode, DecodeError, EncodeError, PARAMETER_HEADER_LEN, ParameterType, Parameters,
    PeIdentifier, PolicyType, RawParameter, RegistrarId, TransportUse, UnrecognizedAction, Writer,
    be16, be32, count_with, encode_with,
};

macro_rules! impl_encode {
    ($t:ty) => {
        impl $t {
            /// Bytes [`encode`](Self::encode) writes (TLVs include their padding).
            pub fn encoded_len(&self) -> usize {
                count_with(|w| self.emit(w))
            }

            /// Writes the value into `buf`; returns the bytes written.
            pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                encode_with(buf, |w| self.emit(w))
            }
        }
    };
}
pub(crate) use impl_encode;

impl ParameterType {
    /// The type without the action bits (how RSPLIB matches known parameters).
    pub fn pure(self) -> u16 {
        self.0 & !Self::ACTION_MASK
    }

    fn same(self, other: ParameterType) -> bool {
        self.pure() == other.pure()
    }
}

/// Walks a parameter list, keeping the parameters whose (action-masked) type is in
/// `accepted` and applying the unrecognized-parameter action bits to all others
/// (RFC 5354 §2).
pub(crate) fn collect<'a>(
    value: &'a [u8],
    base: usize,
    accepted: &[ParameterType],
    report: &mut Vec<Vec<u8>>,
) -> Result<Vec<RawParameter<'a>>, DecodeError> {
    let mut out = Vec::new();
    for p in Parameters::new(value, base) {
        let p = p?;
        let ty = p.parameter_type();
        if accepted.iter().any(|a| a.same(ty)) {
            out.push(p);
            continue;
        }
        let unrecognized = |report| DecodeError::UnrecognizedParameter {
            ty,
            report,
            offset: p.offset(),
            len: p.as_bytes().len(),
        };
        match ty.action() {
            UnrecognizedAction::Stop => return Err(unrecognized(false)),
            UnrecognizedAction::StopAndReport => return Err(unrecognized(true)),
            UnrecognizedAction::Skip => {}
            UnrecognizedAction::SkipAndReport => {
                // Bounded by the message: at most one copy of each skipped byte.
                report.push(p.as_bytes().to_vec());
            }
        }
    }
    Ok(out)
}

fn invalid(p: &RawParameter<'_>) -> DecodeError {
    DecodeError::InvalidValue {
        ty: p.parameter_type(),
        offset: p.offset(),
    }
}

/// A pool handle (RFC 5351 §3.1, RFC 5354 §3.9): an opaque byte string naming a pool.
///
/// Cheap to clone (shared bytes), so the handlespace can key several indexes by it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolHandle(Arc<[u8]>);

impl PoolHandle {
    /// A pool handle from bytes.
    pub fn new(bytes: &[u8]) -> Self {
        PoolHandle(Arc::from(bytes))
    }

    /// The handle bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the handle is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(ParameterType::POOL_HANDLE);
        w.bytes(&self.0);
        w.end_tlv(t);
    }

    pub(crate) fn decode(p: &RawParameter<'_>) -> Result<Self, DecodeError> {
        Ok(PoolHandle::new(p.value()))
    }
}

impl_encode!(PoolHandle);

impl From<&str> for PoolHandle {
    fn from(s: &str) -> Self {
        PoolHandle::new(s.as_bytes())
    }
}

impl From<&[u8]> for PoolHandle {
    fn from(b: &[u8]) -> Self {
        PoolHandle::new(b)
    }
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            write!(f, "{:?}", String::from_utf8_lossy(&self.0))
        } else {
            f.write_str("0x")?;
            for b in self.0.iter() {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn emit_address(w: &mut Writer<'_>, a: &IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            let t = w.begin_tlv(ParameterType::IPV4_ADDRESS);
            w.bytes(&v4.octets());
            w.end_tlv(t);
        }
        IpAddr::V6(v6) => {
            // RSPLIB sends v4-mapped IPv6 addresses as IPv4 address parameters.
            if let Some(v4) = v6.to_ipv4_mapped() {
                emit_address(w, &IpAddr::V4(v4));
                return;
            }
            let t = w.begin_tlv(ParameterType::IPV6_ADDRESS);
            w.bytes(&v6.octets());
            w.end_tlv(t);
        }
    }
}

/// Decodes an IPv4 (RFC 5354 §3.1) or IPv6 (§3.2) address parameter.
pub fn decode_address(p: &RawParameter<'_>) -> Result<IpAddr, DecodeError> {
    let v = p.value();
    match p.parameter_type().pure() {
        0x0001 => {
            let o: [u8; 4] = v.try_into().map_err(|_| invalid(p))?;
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        0x0002 => {
            let o: [u8; 16] = v.try_into().map_err(|_| invalid(p))?;
            // Canonical form: a v4-mapped address is the IPv4 address (RSPLIB sends
            // those as IPv4 parameters, and so does the encoder).
            Ok(IpAddr::V6(Ipv6Addr::from(o)).to_canonical())
        }
        _ => Err(invalid(p)),
    }
}

/// The transport protocol of a transport parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportProtocol {
    /// SCTP (RFC 5354 §3.4), multi-homed.
    Sctp,
    /// TCP (RFC 5354 §3.5).
    Tcp,
    /// UDP (RFC 5354 §3.6).
    Udp,
    /// UDP-Lite (RFC 5354 §3.7).
    UdpLite,
    /// DCCP (RFC 5354 §3.3).
    Dccp,
}

impl TransportProtocol {
    /// The parameter type carrying this transport.
    pub fn parameter_type(self) -> ParameterType {
        match self {
            TransportProtocol::Sctp => ParameterType::SCTP_TRANSPORT,
            TransportProtocol::Tcp => ParameterType::TCP_TRANSPORT,
            TransportProtocol::Udp => ParameterType::UDP_TRANSPORT,
            TransportProtocol::UdpLite => ParameterType::UDP_LITE_TRANSPORT,
            TransportProtocol::Dccp => ParameterType::DCCP_TRANSPORT,
        }
    }

    fn from_type(t: ParameterType) -> Option<Self> {
        Some(match t.pure() {
            0x0003 => TransportProtocol::Dccp,
            0x0004 => TransportProtocol::Sctp,
            0x0005 => TransportProtocol::Tcp,
            0x0006 => TransportProtocol::Udp,
            0x0007 => TransportProtocol::UdpLite,
            _ => return None,
        })
    }
}

/// The five transport parameter types.
pub const TRANSPORT_TYPES: [ParameterType; 5] = [
    ParameterType::DCCP_TRANSPORT,
    ParameterType::SCTP_TRANSPORT,
    ParameterType::TCP_TRANSPORT,
    ParameterType::UDP_TRANSPORT,
    ParameterType::UDP_LITE_TRANSPORT,
];

/// A transport parameter (RFC 5354 §3.3-3.7): protocol, port and addresses.
///
/// ```text
/// | Type = 0x4 (SCTP)             | Length                        |
/// | SCTP port                     | Transport use                 |
/// : IPv4/IPv6 address parameters ...                              :
/// ```
/// TCP has the same layout; UDP and UDP-Lite have a reserved field instead of transport
/// use (kept in [`transport_use`](Self::transport_use), sent as received); DCCP adds a
/// 32-bit service code after the reserved field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransportParameter {
    /// The protocol.
    pub protocol: TransportProtocol,
    /// The port.
    pub port: u16,
    /// Transport use (SCTP, TCP) or the reserved field (UDP, UDP-Lite, DCCP; zero).
    pub transport_use: TransportUse,
    /// The DCCP service code (zero for other protocols; not sent for them).
    pub dccp_service_code: u32,
    /// The addresses (one for the single-homed protocols).
    pub addresses: Vec<IpAddr>,
}

impl TransportParameter {
    /// An SCTP transport.
    pub fn sctp(port: u16, transport_use: TransportUse, addresses: Vec<IpAddr>) -> Self {
        TransportParameter {
            protocol: TransportProtocol::Sctp,
            port,
            transport_use,
            dccp_service_code: 0,
            addresses,
        }
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(self.protocol.parameter_type());
        w.u16(self.port);
        w.u16(self.transport_use.0);
        if self.protocol == TransportProtocol::Dccp {
            w.u32(self.dccp_service_code);
        }
        for a in &self.addresses {
            emit_address(w, a);
        }
        w.end_tlv(t);
    }

    /// Decodes a transport parameter (any of the five types).
    pub fn decode(p: &RawParameter<'_>, report: &mut Vec<Vec<u8>>) -> Result<Self, DecodeError> {
        let protocol = TransportProtocol::from_type(p.parameter_type()).ok_or(invalid(p))?;
        let v = p.value();
        let (Some(port), Some(use_)) = (be16(v, 0), be16(v, 2)) else {
            return Err(invalid(p));
        };
        let (dccp_service_code, fixed) = if protocol == TransportProtocol::Dccp {
            (be32(v, 4).ok_or(invalid(p))?, 8)
        } else {
            (0, 4)
        };
        let rest = v.get(fixed..).unwrap_or(&[]);
        let base = p.offset() + PARAMETER_HEADER_LEN + fixed;
        let params = collect(
            rest,
            base,
            &[ParameterType::IPV4_ADDRESS, ParameterType::IPV6_ADDRESS],
            report,
        )?;
        let addresses = params
            .iter()
            .map(decode_address)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TransportParameter {
            protocol,
            port,
            transport_use: TransportUse(use_),
            dccp_service_code,
            addresses,
        })
    }
}

impl_encode!(TransportParameter);

/// Pool member selection policy information (RFC 5354 §3.8, RFC 5356 §4-5, RSPLIB).
///
/// One flat struct for every policy type; [`PolicyInfo::fields`] gives the wire layout
/// (which 32-bit fields follow the type, in order). Fields a type does not carry stay zero.
///
/// | policy | fields after the type |
/// |---|---|
/// | RR, Random | - |
/// | WRR, WRand | weight |
/// | Priority | priority (kept in `weight`, as RSPLIB does) |
/// | LU, RLU | load |
/// | LUD, PLU, PLUD, RLUD, RPLU, RPLUD | load, load degradation |
/// | LU-DPF | load, load DPF, distance |
/// | LUD-DPF, PLU-DPF, PLUD-DPF | load, load degradation, load DPF, distance |
/// | WRand-DPF | weight, weight DPF, distance |
///
/// Load, degradation and DPF values are fractions of `0xffffffff` (RFC 5356 §3.1); the
/// distance is in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyInfo {
    /// The policy type.
    pub policy_type: PolicyType,
    /// Weight (WRR, WRand, WRand-DPF) or priority (Priority; higher is preferred).
    pub weight: u32,
    /// Load (`0..=0xffffffff` = 0..100 %).
    pub load: u32,
    /// Load degradation (increment per selection, or the PLU priority offset).
    pub load_degradation: u32,
    /// Load DPF or weight DPF (penalty per millisecond of distance, fraction of `u32::MAX`).
    pub dpf: u32,
    /// Distance PE -> PR in milliseconds (DPF policies; updated by registrars).
    pub distance: u32,
    /// For unknown policy types: the value bytes after the type, kept verbatim.
    pub opaque: Vec<u8>,
}

/// One 32-bit field of a policy parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyField {
    /// [`PolicyInfo::weight`].
    Weight,
    /// [`PolicyInfo::weight`] used as priority.
    Priority,
    /// [`PolicyInfo::load`].
    Load,
    /// [`PolicyInfo::load_degradation`].
    LoadDegradation,
    /// [`PolicyInfo::dpf`].
    Dpf,
    /// [`PolicyInfo::distance`].
    Distance,
}

impl PolicyInfo {
    /// Policy info of `policy_type` with all fields zero.
    pub fn new(policy_type: PolicyType) -> Self {
        PolicyInfo {
            policy_type,
            weight: 0,
            load: 0,
            load_degradation: 0,
            dpf: 0,
            distance: 0,
            opaque: Vec::new(),
        }
    }

    /// Round robin.
    pub fn round_robin() -> Self {
        Self::new(PolicyType::ROUND_ROBIN)
    }

    /// Weighted round robin with `weight`.
    pub fn weighted_round_robin(weight: u32) -> Self {
        PolicyInfo {
            weight,
            ..Self::new(PolicyType::WEIGHTED_ROUND_ROBIN)
        }
    }

    /// Random.
    pub fn random() -> Self {
        Self::new(PolicyType::RANDOM)
    }

    /// Weighted random with `weight`.
    pub fn weighted_random(weight: u32) -> Self {
        PolicyInfo {
            weight,
            ..Self::new(PolicyType::WEIGHTED_RANDOM)
        }
    }

    /// Priority with `priority`.
    pub fn priority(priority: u32) -> Self {
        PolicyInfo {
            weight: priority,
            ..Self::new(PolicyType::PRIORITY)
        }
    }

    /// Least used with `load`.
    pub fn least_used(load: u32) -> Self {
        PolicyInfo {
            load,
            ..Self::new(PolicyType::LEAST_USED)
        }
    }

    /// The wire layout of a known type, `None` for unknown types.
    pub fn fields(policy_type: PolicyType) -> Option<&'static [PolicyField]> {
        use PolicyField::*;
        Some(match policy_type {
            PolicyType::ROUND_ROBIN | PolicyType::RANDOM => &[],
            PolicyType::WEIGHTED_ROUND_ROBIN | PolicyType::WEIGHTED_RANDOM => &[Weight],
            PolicyType::PRIORITY => &[Priority],
            PolicyType::LEAST_USED | PolicyType::RANDOMIZED_LEAST_USED => &[Load],
            PolicyType::LEAST_USED_DEGRADATION
            | PolicyType::PRIORITY_LEAST_USED
            | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => &[Load, LoadDegradation],
            PolicyType::LEAST_USED_DPF => &[Load, Dpf, Distance],
            PolicyType::LEAST_USED_DEGRADATION_DPF
            | PolicyType::PRIORITY_LEAST_USED_DPF
            | PolicyType::PRIORITY_LEAST_USED_DEGRADATION_DPF => {
                &[Load, LoadDegradation, Dpf, Distance]
            }
            PolicyType::WEIGHTED_RANDOM_DPF => &[Weight, Dpf, Distance],
            _ => return None,
        })
    }

    fn field(&self, f: PolicyField) -> u32 {
        match f {
            PolicyField::Weight | PolicyField::Priority => self.weight,
            PolicyField::Load => self.load,
            PolicyField::LoadDegradation => self.load_degradation,
            PolicyField::Dpf => self.dpf,
            PolicyField::Distance => self.distance,
        }
    }

    fn field_mut(&mut self, f: PolicyField) -> &mut u32 {
        match f {
            PolicyField::Weight | PolicyField::Priority => &mut self.weight,
            PolicyField::Load => &mut self.load,
            PolicyField::LoadDegradation => &mut self.load_degradation,
            PolicyField::Dpf => &mut self.dpf,
            PolicyField::Distance => &mut self.distance,
        }
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(ParameterType::POOL_MEMBER_SELECTION_POLICY);
        w.u32(self.policy_type.0);
        match Self::fields(self.policy_type) {
            Some(fields) => {
                for f in fields {
                    w.u32(self.field(*f));
                }
            }
            None => w.bytes(&self.opaque),
        }
        w.end_tlv(t);
    }

    /// Decodes a policy parameter. Known types need all their fields (RSPLIB rejects
    /// shorter ones); bytes beyond them are ignored. Unknown types keep their bytes.
    pub fn decode(p: &RawParameter<'_>) -> Result<Self, DecodeError> {
        let v = p.value();
        let ty = PolicyType(be32(v, 0).ok_or(invalid(p))?);
        let mut info = PolicyInfo::new(ty);
        match Self::fields(ty) {
            Some(fields) => {
                for (i, f) in fields.iter().enumerate() {
                    *info.field_mut(*f) = be32(v, 4 + 4 * i).ok_or(invalid(p))?;
                }
            }
            None => info.opaque = v.get(4..).unwrap_or(&[]).to_vec(),
        }
        Ok(info)
    }
}

impl_encode!(PolicyInfo);

/// A Pool Element parameter (RFC 5354 §3.10).
///
/// ```text
/// | Type = 0xa                    | Length                        |
/// | PE Identifier                                                 |
/// | Home ENRP Server Identifier                                   |
/// | Registration Life (ms, signed 32 bit)                         |
/// : User Transport parameter                                      :
/// : Member Selection Policy parameter                             :
/// : ASAP Transport parameter (only from registrars)               :
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolElement {
    /// The PE identifier.
    pub identifier: PeIdentifier,
    /// The home registrar (0 in the PE's own registration).
    pub home_registrar: RegistrarId,
    /// Registration life in milliseconds.
    pub registration_life: u32,
    /// Where PUs reach the PE.
    pub user_transport: TransportParameter,
    /// The PE's policy information.
    pub policy: PolicyInfo,
    /// The PE's ASAP endpoint as seen by its home registrar (ENRP handle updates and handle
    /// table responses carry it).
    pub asap_transport: Option<TransportParameter>,
}

impl PoolElement {
    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(ParameterType::POOL_ELEMENT);
        w.u32(self.identifier.0);
        w.u32(self.home_registrar.0);
        w.u32(self.registration_life);
        self.user_transport.emit(w);
        self.policy.emit(w);
        if let Some(a) = &self.asap_transport {
            a.emit(w);
        }
        w.end_tlv(t);
    }

    /// Decodes a Pool Element parameter.
    pub fn decode(p: &RawParameter<'_>, report: &mut Vec<Vec<u8>>) -> Result<Self, DecodeError> {
        let v = p.value();
        let (Some(id), Some(home), Some(life)) = (be32(v, 0), be32(v, 4), be32(v, 8)) else {
            return Err(invalid(p));
        };
        let mut accepted = TRANSPORT_TYPES.to_vec();
        accepted.push(ParameterType::POOL_MEMBER_SELECTION_POLICY);
        let params = collect(
            v.get(12..).unwrap_or(&[]),
            p.offset() + PARAMETER_HEADER_LEN + 12,
            &accepted,
            report,
        )?;
        let mut transports = Vec::with_capacity(2);
        let mut policy = None;
        for q in &params {
            if q.parameter_type()
                .same(ParameterType::POOL_MEMBER_SELECTION_POLICY)
            {
                if policy.is_none() {
                    policy = Some(PolicyInfo::decode(q)?);
                }
            } else if transports.len() < 2 {
                transports.push(TransportParameter::decode(q, report)?);
            }
        }
        let mut transports = transports.into_iter();
        let user_transport = transports
            .next()
            .ok_or(DecodeError::MissingParameter(ParameterType::SCTP_TRANSPORT))?;
        Ok(PoolElement {
            identifier: PeIdentifier(id),
            home_registrar: RegistrarId(home),
            registration_life: life,
            user_transport,
            policy: policy.ok_or(DecodeError::MissingParameter(
                ParameterType::POOL_MEMBER_SELECTION_POLICY,
            ))?,
            asap_transport: transports.next(),
        })
    }
}

impl_encode!(PoolElement);

/// A Server Information parameter (RFC 5354 §3.11): a registrar's identifier and its SCTP
/// transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerInformation {
    /// The registrar.
    pub server_id: RegistrarId,
    /// Its ENRP/ASAP endpoint.
    pub transport: TransportParameter,
}

impl ServerInformation {
    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(ParameterType::SERVER_INFORMATION);
        w.u32(self.server_id.0);
        self.transport.emit(w);
        w.end_tlv(t);
    }

    /// Decodes a Server Information parameter.
    pub fn decode(p: &RawParameter<'_>, report: &mut Vec<Vec<u8>>) -> Result<Self, DecodeError> {
        let v = p.value();
        let id = be32(v, 0).ok_or(invalid(p))?;
        let params = collect(
            v.get(4..).unwrap_or(&[]),
            p.offset() + PARAMETER_HEADER_LEN + 4,
            &TRANSPORT_TYPES,
            report,
        )?;
        let t = params
            .first()
            .ok_or(DecodeError::MissingParameter(ParameterType::SCTP_TRANSPORT))?;
        Ok(ServerInformation {
            server_id: RegistrarId(id),
            transport: TransportParameter::decode(t, report)?,
        })
    }
}

impl_encode!(ServerInformation);

/// One error cause of an Operation Error (RFC 5354 §3.12).
///
/// Causes 1 (unrecognized parameter), 3 (invalid values), 5 (inconsistent pooling policy)
/// and 7 (inconsistent transport type) carry the offending parameter TLV as information,
/// cause 2 the unrecognized message; use [`ErrorCause::with_info`] for them.
///
/// ```text
/// | Cause Code                    | Cause Length                  |
/// : Cause-specific information (padded)                           :
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorCause {
    /// The cause code.
    pub code: CauseCode,
    /// Cause-specific information: the offending TLV or message for causes 1, 2, 3, 5 and 7.
    pub info: Vec<u8>,
}

impl ErrorCause {
    /// A cause without information.
    pub fn new(code: CauseCode) -> Self {
        ErrorCause {
            code,
            info: Vec::new(),
        }
    }

    /// A cause carrying `info` (e.g. the unrecognized parameter).
    pub fn with_info(code: CauseCode, info: &[u8]) -> Self {
        ErrorCause {
            code,
            info: info.to_vec(),
        }
    }
}

/// An Operation Error parameter (RFC 5354 §3.12): one or more error causes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperationError {
    /// The causes.
    pub causes: Vec<ErrorCause>,
}

impl OperationError {
    /// An operation error with one cause.
    pub fn new(cause: ErrorCause) -> Self {
        OperationError {
            causes: vec![cause],
        }
    }

    /// The first cause code, if any.
    pub fn first_code(&self) -> Option<CauseCode> {
        self.causes.first().map(|c| c.code)
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        let t = w.begin_tlv(ParameterType::OPERATION_ERROR);
        for c in &self.causes {
            let start = w.pos();
            w.u16(c.code.0);
            let len = 4 + c.info.len();
            w.u16(u16::try_from(len).unwrap_or(u16::MAX));
            w.bytes(&c.info);
            let _ = start;
            w.zeros(super::padded(len) - len);
        }
        w.end_tlv(t);
    }

    /// Decodes an Operation Error parameter.
    pub fn decode(p: &RawParameter<'_>) -> Result<Self, DecodeError> {
        let v = p.value();
        let mut causes = Vec::new();
        let mut at = 0;
        while at < v.len() {
            let (Some(code), Some(len)) = (be16(v, at), be16(v, at + 2)) else {
                return Err(invalid(p));
            };
            let len = len as usize;
            if len < 4 {
                return Err(invalid(p));
            }
            let info = v.get(at + 4..at + len).ok_or(invalid(p))?;
            causes.push(ErrorCause {
                code: CauseCode(code),
                info: info.to_vec(),
            });
            at += super::padded(len);
        }
        Ok(OperationError { causes })
    }
}

impl_encode!(OperationError);

pub(crate) fn emit_pe_identifier(w: &mut Writer<'_>, id: PeIdentifier) {
    let t = w.begin_tlv(ParameterType::PE_IDENTIFIER);
    w.u32(id.0);
    w.end_tlv(t);
}

pub(crate) fn decode_pe_identifier(p: &RawParameter<'_>) -> Result<PeIdentifier, DecodeError> {
    be32(p.value(), 0).map(PeIdentifier).ok_or(invalid(p))
}

pub(crate) fn emit_cookie(w: &mut Writer<'_>, cookie: &[u8]) {
    let t = w.begin_tlv(ParameterType::COOKIE);
    w.bytes(cookie);
    w.end_tlv(t);
}

/// The 16-bit PE checksum parameter (RFC 5354 §3.15; RSPLIB sends the 16-bit value, so
/// the parameter length is 6, padded to 8).
pub(crate) fn emit_pe_checksum(w: &mut Writer<'_>, checksum: u16) {
    let t = w.begin_tlv(ParameterType::PE_CHECKSUM);
    w.u16(checksum);
    w.end_tlv(t);
}

pub(crate) fn decode_pe_checksum(p: &RawParameter<'_>) -> Result<u16, DecodeError> {
    be16(p.value(), 0).ok_or(invalid(p))
}

pub(crate) fn emit_handle_resolution_option(w: &mut Writer<'_>, items: u32) {
    let t = w.begin_tlv(ParameterType::HANDLE_RESOLUTION_OPTION);
    w.u32(items);
    w.end_tlv(t);
}

pub(crate) fn decode_u32(p: &RawParameter<'_>) -> Result<u32, DecodeError> {
    be32(p.value(), 0).ok_or(invalid(p))
}
