//! Typed ASAP (RFC 5352 §2.2) and ENRP (RFC 5353 §2) messages.

use super::param::{
    collect, decode_pe_checksum, decode_pe_identifier, decode_u32, emit_cookie,
    emit_handle_resolution_option, emit_pe_checksum, emit_pe_identifier, impl_encode,
};
use super::{
    AsapMessageType, DecodeError, Decoded, EncodeError, EnrpMessageType, MESSAGE_HEADER_LEN,
    OperationError, ParameterType, PeIdentifier, PolicyInfo, PoolElement, PoolHandle, RawMessage,
    RawParameter, RegistrarId, ServerInformation, TRANSPORT_TYPES, TransportParameter,
    UpdateAction, Writer, be32, count_with, encode_with,
};

/// Flag R of REGISTRATION_RESPONSE: the registration was rejected (RFC 5352 §2.2.3).
pub const FLAG_REJECT: u8 = 0x01;
/// Flag H of ENDPOINT_KEEP_ALIVE: the sender is the PE's new home registrar (RFC 5352 §2.2.7).
pub const FLAG_HOME: u8 = 0x01;
/// Flag R of ENRP_PRESENCE: reply required (RFC 5353 §2.1).
pub const FLAG_REPLY_REQUIRED: u8 = 0x01;
/// Flag W of ENRP_HANDLE_TABLE_REQUEST: only the PEs the receiver owns (RFC 5353 §2.2).
pub const FLAG_OWN_CHILDREN_ONLY: u8 = 0x01;
/// Flag M of ENRP_HANDLE_TABLE_RESPONSE: more to send (RFC 5353 §2.3).
pub const FLAG_MORE_TO_SEND: u8 = 0x02;
/// Flag T of ENRP_HANDLE_UPDATE: takeover suggested (draft-dreibholz-rserpool-enrp-takeover).
pub const FLAG_TAKEOVER_SUGGESTED: u8 = 0x01;

/// An ASAP message (RFC 5352 §2.2), sent with SCTP PPID 11.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsapMessage {
    /// ASAP_REGISTRATION: a PE registers (or re-registers) with its home registrar.
    Registration {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        pool_element: PoolElement,
    },
    /// ASAP_DEREGISTRATION.
    Deregistration {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
    },
    /// ASAP_REGISTRATION_RESPONSE; `reject` is flag R.
    RegistrationResponse {
        /// Flag R.
        reject: bool,
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
        /// Why the registration failed.
        error: Option<OperationError>,
    },
    /// ASAP_DEREGISTRATION_RESPONSE.
    DeregistrationResponse {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
        /// Why the deregistration failed.
        error: Option<OperationError>,
    },
    /// ASAP_HANDLE_RESOLUTION; `items` is RSPLIB's handle resolution option (0x803f).
    HandleResolution {
        /// The pool.
        pool_handle: PoolHandle,
        /// How many PEs the PU wants (`0xffffffff` = as many as possible).
        items: Option<u32>,
    },
    /// ASAP_HANDLE_RESOLUTION_RESPONSE: policy and PEs, or an Operation Error.
    HandleResolutionResponse {
        /// The pool.
        pool_handle: PoolHandle,
        /// The pool's policy (absent when `error` is set).
        policy: Option<PolicyInfo>,
        /// The selected PEs.
        pool_elements: Vec<PoolElement>,
        /// Why the resolution failed (e.g. unknown pool handle).
        error: Option<OperationError>,
    },
    /// ASAP_ENDPOINT_KEEP_ALIVE from the home registrar to a PE.
    EndpointKeepAlive {
        /// Flag H: the sender is the PE's new home registrar.
        home: bool,
        /// The registrar.
        server_id: RegistrarId,
        /// The pool.
        pool_handle: PoolHandle,
        /// RSPLIB extension: the PE addressed (several PEs may share an association).
        identifier: Option<PeIdentifier>,
    },
    /// ASAP_ENDPOINT_KEEP_ALIVE_ACK.
    EndpointKeepAliveAck {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
    },
    /// ASAP_ENDPOINT_UNREACHABLE from a PU.
    EndpointUnreachable {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        identifier: PeIdentifier,
    },
    /// ASAP_SERVER_ANNOUNCE (UDP multicast).
    ServerAnnounce {
        /// The registrar.
        server_id: RegistrarId,
        /// Its transports (absent: the UDP source address and port).
        transports: Vec<TransportParameter>,
    },
    /// ASAP_COOKIE from a PE to its PU.
    Cookie {
        /// The opaque cookie.
        cookie: Vec<u8>,
    },
    /// ASAP_COOKIE_ECHO from a PU to its new PE after failover.
    CookieEcho {
        /// The opaque cookie.
        cookie: Vec<u8>,
    },
    /// ASAP_BUSINESS_CARD: a PE tells its PU the pool (and failover candidates).
    BusinessCard {
        /// The pool.
        pool_handle: PoolHandle,
        /// The pool's policy.
        policy: PolicyInfo,
        /// Failover candidates.
        pool_elements: Vec<PoolElement>,
    },
    /// ASAP_ERROR.
    Error {
        /// The error.
        error: OperationError,
    },
}

fn first<'a>(ps: &[RawParameter<'a>], ty: ParameterType) -> Option<RawParameter<'a>> {
    ps.iter()
        .find(|p| p.parameter_type().pure() == ty.pure())
        .copied()
}

fn all<'a, 'p>(
    ps: &'p [RawParameter<'a>],
    ty: ParameterType,
) -> impl Iterator<Item = &'p RawParameter<'a>> + 'p {
    ps.iter()
        .filter(move |p| p.parameter_type().pure() == ty.pure())
}

fn required<'a>(
    ps: &[RawParameter<'a>],
    ty: ParameterType,
) -> Result<RawParameter<'a>, DecodeError> {
    first(ps, ty).ok_or(DecodeError::MissingParameter(ty))
}

fn pool_handle(ps: &[RawParameter<'_>]) -> Result<PoolHandle, DecodeError> {
    PoolHandle::decode(&required(ps, ParameterType::POOL_HANDLE)?)
}

fn pe_id(ps: &[RawParameter<'_>]) -> Result<PeIdentifier, DecodeError> {
    decode_pe_identifier(&required(ps, ParameterType::PE_IDENTIFIER)?)
}

fn op_error(ps: &[RawParameter<'_>]) -> Result<Option<OperationError>, DecodeError> {
    first(ps, ParameterType::OPERATION_ERROR)
        .map(|p| OperationError::decode(&p))
        .transpose()
}

fn cookie(ps: &[RawParameter<'_>]) -> Result<Vec<u8>, DecodeError> {
    Ok(required(ps, ParameterType::COOKIE)?.value().to_vec())
}

fn pool_elements(
    ps: &[RawParameter<'_>],
    report: &mut Vec<Vec<u8>>,
) -> Result<Vec<PoolElement>, DecodeError> {
    all(ps, ParameterType::POOL_ELEMENT)
        .map(|p| PoolElement::decode(p, report))
        .collect()
}

fn fixed_u32(v: &[u8], at: usize) -> Result<u32, DecodeError> {
    be32(v, at).ok_or(DecodeError::Truncated)
}

impl AsapMessage {
    /// The message type.
    pub fn message_type(&self) -> AsapMessageType {
        match self {
            AsapMessage::Registration { .. } => AsapMessageType::REGISTRATION,
            AsapMessage::Deregistration { .. } => AsapMessageType::DEREGISTRATION,
            AsapMessage::RegistrationResponse { .. } => AsapMessageType::REGISTRATION_RESPONSE,
            AsapMessage::DeregistrationResponse { .. } => AsapMessageType::DEREGISTRATION_RESPONSE,
            AsapMessage::HandleResolution { .. } => AsapMessageType::HANDLE_RESOLUTION,
            AsapMessage::HandleResolutionResponse { .. } => {
                AsapMessageType::HANDLE_RESOLUTION_RESPONSE
            }
            AsapMessage::EndpointKeepAlive { .. } => AsapMessageType::ENDPOINT_KEEP_ALIVE,
            AsapMessage::EndpointKeepAliveAck { .. } => AsapMessageType::ENDPOINT_KEEP_ALIVE_ACK,
            AsapMessage::EndpointUnreachable { .. } => AsapMessageType::ENDPOINT_UNREACHABLE,
            AsapMessage::ServerAnnounce { .. } => AsapMessageType::SERVER_ANNOUNCE,
            AsapMessage::Cookie { .. } => AsapMessageType::COOKIE,
            AsapMessage::CookieEcho { .. } => AsapMessageType::COOKIE_ECHO,
            AsapMessage::BusinessCard { .. } => AsapMessageType::BUSINESS_CARD,
            AsapMessage::Error { .. } => AsapMessageType::ERROR,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            AsapMessage::RegistrationResponse { reject: true, .. } => FLAG_REJECT,
            AsapMessage::EndpointKeepAlive { home: true, .. } => FLAG_HOME,
            _ => 0,
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_message(self.message_type().0, self.flags());
        match self {
            AsapMessage::Registration {
                pool_handle,
                pool_element,
            } => {
                pool_handle.emit(w);
                pool_element.emit(w);
            }
            AsapMessage::Deregistration {
                pool_handle,
                identifier,
            }
            | AsapMessage::EndpointKeepAliveAck {
                pool_handle,
                identifier,
            }
            | AsapMessage::EndpointUnreachable {
                pool_handle,
                identifier,
            } => {
                pool_handle.emit(w);
                emit_pe_identifier(w, *identifier);
            }
            AsapMessage::RegistrationResponse {
                pool_handle,
                identifier,
                error,
                ..
            }
            | AsapMessage::DeregistrationResponse {
                pool_handle,
                identifier,
                error,
            } => {
                pool_handle.emit(w);
                emit_pe_identifier(w, *identifier);
                if let Some(e) = error {
                    e.emit(w);
                }
            }
            AsapMessage::HandleResolution { pool_handle, items } => {
                pool_handle.emit(w);
                if let Some(n) = items {
                    emit_handle_resolution_option(w, *n);
                }
            }
            AsapMessage::HandleResolutionResponse {
                pool_handle,
                policy,
                pool_elements,
                error,
            } => {
                pool_handle.emit(w);
                if let Some(p) = policy {
                    p.emit(w);
                }
                for pe in pool_elements {
                    pe.emit(w);
                }
                if let Some(e) = error {
                    e.emit(w);
                }
            }
            AsapMessage::EndpointKeepAlive {
                server_id,
                pool_handle,
                identifier,
                ..
            } => {
                w.u32(server_id.0);
                pool_handle.emit(w);
                if let Some(id) = identifier {
                    emit_pe_identifier(w, *id);
                }
            }
            AsapMessage::ServerAnnounce {
                server_id,
                transports,
            } => {
                w.u32(server_id.0);
                for t in transports {
                    t.emit(w);
                }
            }
            AsapMessage::Cookie { cookie } | AsapMessage::CookieEcho { cookie } => {
                emit_cookie(w, cookie);
            }
            AsapMessage::BusinessCard {
                pool_handle,
                policy,
                pool_elements,
            } => {
                pool_handle.emit(w);
                policy.emit(w);
                for pe in pool_elements {
                    pe.emit(w);
                }
            }
            AsapMessage::Error { error } => error.emit(w),
        }
        w.end_message(m);
    }

    /// Decodes one ASAP message from the start of `buf` (trailing bytes are ignored).
    pub fn decode(buf: &[u8]) -> Result<Decoded<AsapMessage>, DecodeError> {
        let raw = RawMessage::new_checked(buf)?;
        Self::decode_raw(&raw)
    }

    /// Decodes a checked view.
    pub fn decode_raw(raw: &RawMessage<'_>) -> Result<Decoded<AsapMessage>, DecodeError> {
        use ParameterType as P;
        let ty = AsapMessageType(raw.message_type());
        let flags = raw.flags();
        let v = raw.value();
        let mut report = Vec::new();
        let base = MESSAGE_HEADER_LEN;
        let params = |accepted: &[ParameterType], skip: usize, report: &mut Vec<Vec<u8>>| {
            collect(v.get(skip..).unwrap_or(&[]), base + skip, accepted, report)
        };
        let message = match ty {
            AsapMessageType::REGISTRATION => {
                // RSPLIB may append an Operation Error to a registration; it carries no
                // meaning for the registrar and is accepted and ignored.
                let ps = params(
                    &[P::POOL_HANDLE, P::POOL_ELEMENT, P::OPERATION_ERROR],
                    0,
                    &mut report,
                )?;
                AsapMessage::Registration {
                    pool_handle: pool_handle(&ps)?,
                    pool_element: PoolElement::decode(
                        &required(&ps, P::POOL_ELEMENT)?,
                        &mut report,
                    )?,
                }
            }
            AsapMessageType::DEREGISTRATION
            | AsapMessageType::ENDPOINT_KEEP_ALIVE_ACK
            | AsapMessageType::ENDPOINT_UNREACHABLE => {
                let ps = params(&[P::POOL_HANDLE, P::PE_IDENTIFIER], 0, &mut report)?;
                let (pool_handle, identifier) = (pool_handle(&ps)?, pe_id(&ps)?);
                match ty {
                    AsapMessageType::DEREGISTRATION => AsapMessage::Deregistration {
                        pool_handle,
                        identifier,
                    },
                    AsapMessageType::ENDPOINT_KEEP_ALIVE_ACK => AsapMessage::EndpointKeepAliveAck {
                        pool_handle,
                        identifier,
                    },
                    _ => AsapMessage::EndpointUnreachable {
                        pool_handle,
                        identifier,
                    },
                }
            }
            AsapMessageType::REGISTRATION_RESPONSE | AsapMessageType::DEREGISTRATION_RESPONSE => {
                let ps = params(
                    &[P::POOL_HANDLE, P::PE_IDENTIFIER, P::OPERATION_ERROR],
                    0,
                    &mut report,
                )?;
                let (pool_handle, identifier, error) =
                    (pool_handle(&ps)?, pe_id(&ps)?, op_error(&ps)?);
                if ty == AsapMessageType::REGISTRATION_RESPONSE {
                    AsapMessage::RegistrationResponse {
                        reject: flags & FLAG_REJECT != 0,
                        pool_handle,
                        identifier,
                        error,
                    }
                } else {
                    AsapMessage::DeregistrationResponse {
                        pool_handle,
                        identifier,
                        error,
                    }
                }
            }
            AsapMessageType::HANDLE_RESOLUTION => {
                let ps = params(
                    &[P::POOL_HANDLE, P::HANDLE_RESOLUTION_OPTION],
                    0,
                    &mut report,
                )?;
                AsapMessage::HandleResolution {
                    pool_handle: pool_handle(&ps)?,
                    items: first(&ps, P::HANDLE_RESOLUTION_OPTION)
                        .map(|p| decode_u32(&p))
                        .transpose()?,
                }
            }
            AsapMessageType::HANDLE_RESOLUTION_RESPONSE => {
                let ps = params(
                    &[
                        P::POOL_HANDLE,
                        P::POOL_MEMBER_SELECTION_POLICY,
                        P::POOL_ELEMENT,
                        P::OPERATION_ERROR,
                    ],
                    0,
                    &mut report,
                )?;
                AsapMessage::HandleResolutionResponse {
                    pool_handle: pool_handle(&ps)?,
                    policy: first(&ps, P::POOL_MEMBER_SELECTION_POLICY)
                        .map(|p| PolicyInfo::decode(&p))
                        .transpose()?,
                    pool_elements: pool_elements(&ps, &mut report)?,
                    error: op_error(&ps)?,
                }
            }
            AsapMessageType::ENDPOINT_KEEP_ALIVE => {
                let server_id = RegistrarId(fixed_u32(v, 0)?);
                let ps = params(&[P::POOL_HANDLE, P::PE_IDENTIFIER], 4, &mut report)?;
                AsapMessage::EndpointKeepAlive {
                    home: flags & FLAG_HOME != 0,
                    server_id,
                    pool_handle: pool_handle(&ps)?,
                    identifier: first(&ps, P::PE_IDENTIFIER)
                        .map(|p| decode_pe_identifier(&p))
                        .transpose()?,
                }
            }
            AsapMessageType::SERVER_ANNOUNCE => {
                let server_id = RegistrarId(fixed_u32(v, 0)?);
                let ps = params(&TRANSPORT_TYPES, 4, &mut report)?;
                AsapMessage::ServerAnnounce {
                    server_id,
                    transports: ps
                        .iter()
                        .map(|p| TransportParameter::decode(p, &mut report))
                        .collect::<Result<_, _>>()?,
                }
            }
            AsapMessageType::COOKIE | AsapMessageType::COOKIE_ECHO => {
                let ps = params(&[P::COOKIE], 0, &mut report)?;
                let cookie = cookie(&ps)?;
                if ty == AsapMessageType::COOKIE {
                    AsapMessage::Cookie { cookie }
                } else {
                    AsapMessage::CookieEcho { cookie }
                }
            }
            AsapMessageType::BUSINESS_CARD => {
                let ps = params(
                    &[
                        P::POOL_HANDLE,
                        P::POOL_MEMBER_SELECTION_POLICY,
                        P::POOL_ELEMENT,
                    ],
                    0,
                    &mut report,
                )?;
                AsapMessage::BusinessCard {
                    pool_handle: pool_handle(&ps)?,
                    policy: PolicyInfo::decode(&required(&ps, P::POOL_MEMBER_SELECTION_POLICY)?)?,
                    pool_elements: pool_elements(&ps, &mut report)?,
                }
            }
            AsapMessageType::ERROR => {
                let ps = params(&[P::OPERATION_ERROR], 0, &mut report)?;
                AsapMessage::Error {
                    error: OperationError::decode(&required(&ps, P::OPERATION_ERROR)?)?,
                }
            }
            _ => return Err(DecodeError::UnrecognizedMessage(ty.0)),
        };
        Ok(Decoded { message, report })
    }
}

impl_encode!(AsapMessage);

/// An ENRP message (RFC 5353 §2), sent with SCTP PPID 12. Every ENRP message starts with
/// the sending and receiving server identifiers (receiver 0 = unknown or multicast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrpMessage {
    /// The sending registrar.
    pub sender: RegistrarId,
    /// The receiving registrar (0 if unknown).
    pub receiver: RegistrarId,
    /// The message-specific part.
    pub body: EnrpBody,
}

/// The message-specific part of an [`EnrpMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrpBody {
    /// ENRP_PRESENCE (RFC 5353 §2.1).
    Presence {
        /// Flag R.
        reply_required: bool,
        /// The sender's ownership checksum ([`crate::handlespace::Handlespace::ownership_checksum`]).
        checksum: u16,
        /// The sender's identity and transport.
        server_information: ServerInformation,
    },
    /// ENRP_HANDLE_TABLE_REQUEST (RFC 5353 §2.2).
    HandleTableRequest {
        /// Flag W: only the PEs owned by the receiver.
        own_children_only: bool,
    },
    /// ENRP_HANDLE_TABLE_RESPONSE (RFC 5353 §2.3).
    HandleTableResponse {
        /// Flag R.
        reject: bool,
        /// Flag M: more to send (the requester asks again).
        more_to_send: bool,
        /// Pools with their PEs, in order (each pool handle followed by its PEs).
        pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    },
    /// ENRP_HANDLE_UPDATE (RFC 5353 §2.4).
    HandleUpdate {
        /// Flag T.
        takeover_suggested: bool,
        /// Add or delete.
        action: UpdateAction,
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE (with its ASAP transport).
        pool_element: PoolElement,
    },
    /// ENRP_LIST_REQUEST (RFC 5353 §2.5).
    ListRequest,
    /// ENRP_LIST_RESPONSE (RFC 5353 §2.6).
    ListResponse {
        /// Flag R.
        reject: bool,
        /// The known registrars.
        servers: Vec<ServerInformation>,
    },
    /// ENRP_INIT_TAKEOVER (RFC 5353 §2.7).
    InitTakeover {
        /// The registrar to be taken over.
        target: RegistrarId,
    },
    /// ENRP_INIT_TAKEOVER_ACK (RFC 5353 §2.8).
    InitTakeoverAck {
        /// The registrar to be taken over.
        target: RegistrarId,
    },
    /// ENRP_TAKEOVER_SERVER (RFC 5353 §2.9).
    TakeoverServer {
        /// The registrar taken over.
        target: RegistrarId,
    },
    /// ENRP_ERROR (RFC 5353 §2.10).
    Error {
        /// The error.
        error: OperationError,
    },
}

impl EnrpMessage {
    /// The message type.
    pub fn message_type(&self) -> EnrpMessageType {
        match self.body {
            EnrpBody::Presence { .. } => EnrpMessageType::PRESENCE,
            EnrpBody::HandleTableRequest { .. } => EnrpMessageType::HANDLE_TABLE_REQUEST,
            EnrpBody::HandleTableResponse { .. } => EnrpMessageType::HANDLE_TABLE_RESPONSE,
            EnrpBody::HandleUpdate { .. } => EnrpMessageType::HANDLE_UPDATE,
            EnrpBody::ListRequest => EnrpMessageType::LIST_REQUEST,
            EnrpBody::ListResponse { .. } => EnrpMessageType::LIST_RESPONSE,
            EnrpBody::InitTakeover { .. } => EnrpMessageType::INIT_TAKEOVER,
            EnrpBody::InitTakeoverAck { .. } => EnrpMessageType::INIT_TAKEOVER_ACK,
            EnrpBody::TakeoverServer { .. } => EnrpMessageType::TAKEOVER_SERVER,
            EnrpBody::Error { .. } => EnrpMessageType::ERROR,
        }
    }

    fn flags(&self) -> u8 {
        match &self.body {
            EnrpBody::Presence { reply_required, .. } => u8::from(*reply_required),
            EnrpBody::HandleTableRequest { own_children_only } => u8::from(*own_children_only),
            EnrpBody::HandleTableResponse {
                reject,
                more_to_send,
                ..
            } => u8::from(*reject) | if *more_to_send { FLAG_MORE_TO_SEND } else { 0 },
            EnrpBody::HandleUpdate {
                takeover_suggested, ..
            } => u8::from(*takeover_suggested),
            EnrpBody::ListResponse { reject, .. } => u8::from(*reject),
            _ => 0,
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_message(self.message_type().0, self.flags());
        w.u32(self.sender.0);
        w.u32(self.receiver.0);
        match &self.body {
            EnrpBody::Presence {
                checksum,
                server_information,
                ..
            } => {
                emit_pe_checksum(w, *checksum);
                server_information.emit(w);
            }
            EnrpBody::HandleTableRequest { .. } | EnrpBody::ListRequest => {}
            EnrpBody::HandleTableResponse { pools, .. } => {
                for (ph, pes) in pools {
                    ph.emit(w);
                    for pe in pes {
                        pe.emit(w);
                    }
                }
            }
            EnrpBody::HandleUpdate {
                action,
                pool_handle,
                pool_element,
                ..
            } => {
                w.u16(action.0);
                w.u16(0);
                pool_handle.emit(w);
                pool_element.emit(w);
            }
            EnrpBody::ListResponse { servers, .. } => {
                for s in servers {
                    s.emit(w);
                }
            }
            EnrpBody::InitTakeover { target }
            | EnrpBody::InitTakeoverAck { target }
            | EnrpBody::TakeoverServer { target } => w.u32(target.0),
            EnrpBody::Error { error } => error.emit(w),
        }
        w.end_message(m);
    }

    /// Decodes one ENRP message from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Decoded<EnrpMessage>, DecodeError> {
        let raw = RawMessage::new_checked(buf)?;
        Self::decode_raw(&raw)
    }

    /// Decodes a checked view.
    pub fn decode_raw(raw: &RawMessage<'_>) -> Result<Decoded<EnrpMessage>, DecodeError> {
        use ParameterType as P;
        let ty = EnrpMessageType(raw.message_type());
        if !ty.is_known() {
            return Err(DecodeError::UnrecognizedMessage(ty.0));
        }
        let flags = raw.flags();
        let v = raw.value();
        let sender = RegistrarId(fixed_u32(v, 0)?);
        let receiver = RegistrarId(fixed_u32(v, 4)?);
        let mut report = Vec::new();
        let base = MESSAGE_HEADER_LEN;
        let params = |accepted: &[ParameterType], skip: usize, report: &mut Vec<Vec<u8>>| {
            collect(v.get(skip..).unwrap_or(&[]), base + skip, accepted, report)
        };
        let body = match ty {
            EnrpMessageType::PRESENCE => {
                let ps = params(&[P::PE_CHECKSUM, P::SERVER_INFORMATION], 8, &mut report)?;
                EnrpBody::Presence {
                    reply_required: flags & FLAG_REPLY_REQUIRED != 0,
                    checksum: decode_pe_checksum(&required(&ps, P::PE_CHECKSUM)?)?,
                    server_information: ServerInformation::decode(
                        &required(&ps, P::SERVER_INFORMATION)?,
                        &mut report,
                    )?,
                }
            }
            EnrpMessageType::HANDLE_TABLE_REQUEST => {
                params(&[], 8, &mut report)?;
                EnrpBody::HandleTableRequest {
                    own_children_only: flags & FLAG_OWN_CHILDREN_ONLY != 0,
                }
            }
            EnrpMessageType::HANDLE_TABLE_RESPONSE => {
                let ps = params(&[P::POOL_HANDLE, P::POOL_ELEMENT], 8, &mut report)?;
                let mut pools: Vec<(PoolHandle, Vec<PoolElement>)> = Vec::new();
                for p in &ps {
                    if p.parameter_type().pure() == P::POOL_HANDLE.pure() {
                        pools.push((PoolHandle::decode(p)?, Vec::new()));
                    } else {
                        let pe = PoolElement::decode(p, &mut report)?;
                        match pools.last_mut() {
                            Some((_, pes)) => pes.push(pe),
                            // RFC 5353 §2.3: PEs follow their pool handle.
                            None => return Err(DecodeError::MissingParameter(P::POOL_HANDLE)),
                        }
                    }
                }
                EnrpBody::HandleTableResponse {
                    reject: flags & 0x01 != 0,
                    more_to_send: flags & FLAG_MORE_TO_SEND != 0,
                    pools,
                }
            }
            EnrpMessageType::HANDLE_UPDATE => {
                let action = super::be16(v, 8).ok_or(DecodeError::Truncated)?;
                fixed_u32(v, 8)?;
                let ps = params(&[P::POOL_HANDLE, P::POOL_ELEMENT], 12, &mut report)?;
                EnrpBody::HandleUpdate {
                    takeover_suggested: flags & FLAG_TAKEOVER_SUGGESTED != 0,
                    action: UpdateAction(action),
                    pool_handle: pool_handle(&ps)?,
                    pool_element: PoolElement::decode(
                        &required(&ps, P::POOL_ELEMENT)?,
                        &mut report,
                    )?,
                }
            }
            EnrpMessageType::LIST_REQUEST => {
                params(&[], 8, &mut report)?;
                EnrpBody::ListRequest
            }
            EnrpMessageType::LIST_RESPONSE => {
                let ps = params(&[P::SERVER_INFORMATION], 8, &mut report)?;
                EnrpBody::ListResponse {
                    reject: flags & 0x01 != 0,
                    servers: ps
                        .iter()
                        .map(|p| ServerInformation::decode(p, &mut report))
                        .collect::<Result<_, _>>()?,
                }
            }
            EnrpMessageType::INIT_TAKEOVER
            | EnrpMessageType::INIT_TAKEOVER_ACK
            | EnrpMessageType::TAKEOVER_SERVER => {
                let target = RegistrarId(fixed_u32(v, 8)?);
                params(&[], 12, &mut report)?;
                match ty {
                    EnrpMessageType::INIT_TAKEOVER => EnrpBody::InitTakeover { target },
                    EnrpMessageType::INIT_TAKEOVER_ACK => EnrpBody::InitTakeoverAck { target },
                    _ => EnrpBody::TakeoverServer { target },
                }
            }
            _ => {
                let ps = params(&[P::OPERATION_ERROR], 8, &mut report)?;
                EnrpBody::Error {
                    error: OperationError::decode(&required(&ps, P::OPERATION_ERROR)?)?,
                }
            }
        };
        Ok(Decoded {
            message: EnrpMessage {
                sender,
                receiver,
                body,
            },
            report,
        })
    }
}

impl_encode!(EnrpMessage);
