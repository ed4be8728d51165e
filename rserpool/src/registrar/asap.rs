//! The ASAP server side (RFC 5352 §3): registration, deregistration, handle resolution,
//! keep-alive and unreachability reports.

use core::time::Duration;
use std::net::IpAddr;

use super::{AsapOrigin, Destination, Event, Registrar, RemovalReason, after};
use crate::Timestamp;
use crate::handlespace::{Expired, Registered, TimerKind};
use crate::wire::{
    AsapMessage, CauseCode, DecodeError, EnrpBody, ErrorCause, OperationError, PeIdentifier,
    PolicyInfo, PoolElement, PoolHandle, TransportParameter, TransportUse, UpdateAction,
};

/// Most bytes of an offending message or parameter echoed in an Operation Error (no
/// amplification of garbage).
const MAX_ERROR_INFO: usize = 1024;

fn op_error(code: CauseCode) -> OperationError {
    OperationError::new(ErrorCause::new(code))
}

impl Registrar {
    /// One ASAP message from a PE or PU (see the module docs).
    pub fn handle_asap(&mut self, now: Timestamp, from: AsapOrigin<'_>, bytes: &[u8]) {
        self.stats.asap_received += 1;
        if bytes.len() > self.config.max_message_len {
            self.stats.oversized += 1;
            return;
        }
        let decoded = match AsapMessage::decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.stats.malformed += 1;
                self.answer_malformed_asap(from, bytes, e);
                return;
            }
        };
        if !decoded.report.is_empty() {
            // RFC 5354 §3 (action 11): skip, but report the parameter in an Operation Error.
            let causes = decoded
                .report
                .iter()
                .take(4)
                .map(|p| ErrorCause::with_info(CauseCode::UNRECOGNIZED_PARAMETER, bounded(p)))
                .collect();
            self.send_asap(
                Destination::Association(from.assoc),
                &AsapMessage::Error {
                    error: OperationError { causes },
                },
            );
            self.stats.errors_sent += 1;
        }
        let msg = decoded.message;
        let serves = matches!(
            msg,
            AsapMessage::Registration { .. }
                | AsapMessage::Deregistration { .. }
                | AsapMessage::HandleResolution { .. }
                | AsapMessage::EndpointUnreachable { .. }
        );
        if serves && !self.is_serving() {
            // RFC 5353 §3.2.3: no service before the handlespace is downloaded.
            self.stats.asap_dropped_in_startup += 1;
            return;
        }
        match msg {
            AsapMessage::Registration {
                pool_handle,
                pool_element,
            } => self.on_registration(now, from, pool_handle, pool_element),
            AsapMessage::Deregistration {
                pool_handle,
                identifier,
            } => self.on_deregistration(from, pool_handle, identifier),
            AsapMessage::HandleResolution { pool_handle, items } => {
                self.on_handle_resolution(now, from, pool_handle, items)
            }
            AsapMessage::EndpointKeepAliveAck {
                pool_handle,
                identifier,
            } => self.on_keep_alive_ack(now, from, pool_handle, identifier),
            AsapMessage::EndpointUnreachable {
                pool_handle,
                identifier,
            } => self.on_unreachable(now, from, pool_handle, identifier),
            // ASAP_ERROR from a peer endpoint: nothing to answer (no error loops).
            _ => self.stats.unexpected += 1,
        }
    }

    /// RFC 5352 §2.2.14 / RFC 5354 §3-§4: report what the RFCs ask to report, drop the rest.
    fn answer_malformed_asap(&mut self, from: AsapOrigin<'_>, bytes: &[u8], e: DecodeError) {
        let Some(code) = e.cause_code() else {
            return;
        };
        // Never answer an ERROR with an ERROR.
        if bytes.first() == Some(&crate::wire::AsapMessageType::ERROR.0) {
            return;
        }
        let info: &[u8] = match e {
            DecodeError::UnrecognizedMessage(_) => bytes,
            DecodeError::UnrecognizedParameter { offset, len, .. } => {
                bytes.get(offset..offset.saturating_add(len)).unwrap_or(&[])
            }
            _ => &[],
        };
        self.send_asap(
            Destination::Association(from.assoc),
            &AsapMessage::Error {
                error: OperationError::new(ErrorCause::with_info(code, bounded(info))),
            },
        );
        self.stats.errors_sent += 1;
    }

    fn reject_registration(
        &mut self,
        from: AsapOrigin<'_>,
        handle: PoolHandle,
        id: PeIdentifier,
        error: OperationError,
    ) {
        self.stats.registration_rejects += 1;
        let cause = error.first_code().unwrap_or(CauseCode::INVALID_VALUES);
        // RFC 5352 §3.1: a failed registration is answered with flag R and the cause.
        self.send_asap(
            Destination::Association(from.assoc),
            &AsapMessage::RegistrationResponse {
                reject: true,
                pool_handle: handle.clone(),
                identifier: id,
                error: Some(error),
            },
        );
        self.event(Event::RegistrationRejected {
            pool_handle: handle,
            identifier: id,
            cause,
        });
    }

    /// RFC 5352 §3.1 (registrar side of REGISTRATION).
    fn on_registration(
        &mut self,
        now: Timestamp,
        from: AsapOrigin<'_>,
        handle: PoolHandle,
        mut pe: PoolElement,
    ) {
        let id = pe.identifier;
        // Access control (RFC 5355 lists rogue PEs joining a pool as a threat).
        if !from
            .addresses
            .iter()
            .all(|a| self.config.registration_acl.allows(*a, &handle))
            || from.addresses.is_empty() && !self.config.registration_acl.rules.is_empty()
        {
            self.stats.acl_refusals += 1;
            self.reject_registration(from, handle, id, op_error(CauseCode::REJECTED_SECURITY));
            return;
        }
        // Address verification (RSPLIB): only addresses of the PE's association count.
        if self.config.verify_pe_addresses {
            let original = pe.user_transport.clone();
            pe.user_transport
                .addresses
                .retain(|a| overlaps(std::slice::from_ref(a), from.addresses));
            if pe.user_transport.addresses.is_empty() {
                let mut info = vec![0; original.encoded_len()];
                let n = original.encode(&mut info).unwrap_or(0);
                info.truncate(n.min(MAX_ERROR_INFO));
                self.reject_registration(
                    from,
                    handle,
                    id,
                    OperationError::new(ErrorCause {
                        code: CauseCode::REJECTED_SECURITY,
                        info,
                    }),
                );
                return;
            }
        }
        // The home registrar fills in itself and the PE's ASAP endpoint (RFC 5352 §3.1:
        // the Home ENRP Server Identifier of the stored PE is the registrar's).
        pe.home_registrar = self.id;
        pe.asap_transport = Some(TransportParameter::sctp(
            from.port,
            TransportUse::DATA_ONLY,
            from.addresses.to_vec(),
        ));
        let key = (handle.clone(), id);
        let known = self.owned.get(&key).copied();
        let address = from.addresses.first().map(|a| a.to_canonical());
        if known.is_none() {
            // Limits: PEs per registrar and per PE address.
            let per_addr = address
                .and_then(|a| self.per_address.get(&a).copied())
                .unwrap_or(0);
            if self.owned.len() >= self.config.max_owned_pes
                || per_addr >= self.config.max_pes_per_address
            {
                self.reject_registration(from, handle, id, op_error(CauseCode::LACK_OF_RESOURCES));
                return;
            }
        } else if let Some(k) = known
            && k.assoc.is_some()
            && k.assoc != Some(from.assoc)
            && self
                .handlespace
                .pool_element(handle.as_bytes(), id)
                .and_then(|p| p.asap_transport.as_ref())
                .is_some_and(|t| !overlaps(&t.addresses, from.addresses))
        {
            // RFC 5354 §3.12.5 (Non-Unique PE Identifier): the identifier belongs to another
            // PE endpoint.
            self.reject_registration(
                from,
                handle,
                id,
                op_error(CauseCode::NON_UNIQUE_PE_IDENTIFIER),
            );
            return;
        }
        match self.handlespace.register(now, &handle, pe.clone()) {
            Ok(r) => {
                self.stats.registrations += 1;
                let update = r == Registered::Updated;
                let expires = after(now, Duration::from_millis(u64::from(pe.registration_life)));
                self.own(key.clone(), Some(from.assoc), address, expires);
                // The home registrar supervises its PEs by keep-alives (RFC 5352 §2.2.7, §3.5).
                self.schedule_keep_alive(now, &key);
                self.send_asap(
                    Destination::Association(from.assoc),
                    &AsapMessage::RegistrationResponse {
                        reject: false,
                        pool_handle: handle.clone(),
                        identifier: id,
                        error: None,
                    },
                );
                // RFC 5353 §3.3.1: the home registrar MUST announce the addition or update
                // to all its peers.
                self.broadcast_enrp(&EnrpBody::HandleUpdate {
                    takeover_suggested: false,
                    action: UpdateAction::ADD_PE,
                    pool_handle: handle.clone(),
                    pool_element: pe,
                });
                self.event(Event::Registered {
                    pool_handle: handle,
                    identifier: id,
                    update,
                });
            }
            Err(e) => {
                let error = e.operation_error(&handle, &pe);
                self.reject_registration(from, handle, id, error);
            }
        }
    }

    /// RFC 5352 §3.2 (registrar side of DEREGISTRATION).
    fn on_deregistration(&mut self, from: AsapOrigin<'_>, handle: PoolHandle, id: PeIdentifier) {
        let key = (handle.clone(), id);
        // Only the PE itself may remove its registration: over the association it
        // registered on, or (after a takeover or an association restart) from its own
        // ASAP endpoint addresses.
        let same_endpoint = self
            .handlespace
            .pool_element(handle.as_bytes(), id)
            .and_then(|p| p.asap_transport.as_ref())
            .is_some_and(|t| overlaps(&t.addresses, from.addresses));
        let error = match self.owned.get(&key) {
            Some(o) if o.assoc == Some(from.assoc) || same_endpoint => None,
            Some(_) => Some(op_error(CauseCode::REJECTED_SECURITY)),
            None => match self.handlespace.pool_element(handle.as_bytes(), id) {
                // Registered at another home registrar: deregister there.
                Some(_) => Some(op_error(CauseCode::REJECTED_SECURITY)),
                None if self.handlespace.pool_len(handle.as_bytes()) == 0 => {
                    Some(op_error(CauseCode::UNKNOWN_POOL_HANDLE))
                }
                None => Some(op_error(CauseCode::INVALID_VALUES)),
            },
        };
        if error.is_none() {
            self.remove_pe(&handle, id, RemovalReason::Deregistered, true);
        } else {
            self.stats.acl_refusals += u64::from(
                error.as_ref().and_then(|e| e.first_code()) == Some(CauseCode::REJECTED_SECURITY),
            );
        }
        self.send_asap(
            Destination::Association(from.assoc),
            &AsapMessage::DeregistrationResponse {
                pool_handle: handle,
                identifier: id,
                error,
            },
        );
    }

    /// RFC 5352 §3.3: answer with the pool's PEs (at most MaxHResItems, chosen by the pool
    /// policy as in the ENRP server considerations of RFC 5356 §4-§5), or with an Operation
    /// Error "unknown pool handle".
    fn on_handle_resolution(
        &mut self,
        now: Timestamp,
        from: AsapOrigin<'_>,
        handle: PoolHandle,
        items: Option<u32>,
    ) {
        let who = pu_key(&from);
        if let Some(l) = self.resolution_limiter.as_mut()
            && !l.allow(now, who)
        {
            self.stats.rate_limited += 1;
            return;
        }
        if !self.config.resolution_acl.allows(who, &handle) {
            self.stats.acl_refusals += 1;
            self.send_asap(
                Destination::Association(from.assoc),
                &AsapMessage::HandleResolutionResponse {
                    pool_handle: handle,
                    policy: None,
                    pool_elements: Vec::new(),
                    error: Some(op_error(CauseCode::REJECTED_SECURITY)),
                },
            );
            return;
        }
        let max = self.config.max_handle_resolution_items;
        let k = items.map_or(max, |n| (n as usize).min(max));
        let msg = match self
            .handlespace
            .resolve(handle.as_bytes(), k, self.rng.as_mut())
        {
            Ok(r) => AsapMessage::HandleResolutionResponse {
                pool_handle: handle,
                policy: Some(PolicyInfo::new(r.policy_type())),
                pool_elements: r.iter().cloned().collect(),
                error: None,
            },
            Err(e) => AsapMessage::HandleResolutionResponse {
                pool_handle: handle,
                policy: None,
                pool_elements: Vec::new(),
                error: Some(op_error(e.cause_code())),
            },
        };
        self.stats.resolutions += 1;
        self.send_asap(Destination::Association(from.assoc), &msg);
    }

    /// RFC 5352 §2.2.8: the PE is alive; schedule the next keep-alive.
    fn on_keep_alive_ack(
        &mut self,
        now: Timestamp,
        from: AsapOrigin<'_>,
        handle: PoolHandle,
        id: PeIdentifier,
    ) {
        let key = (handle, id);
        let Some(o) = self.owned.get(&key) else {
            self.stats.unexpected += 1;
            return;
        };
        // Only the PE's own endpoint can prove it alive.
        let same_endpoint = self
            .handlespace
            .pool_element(key.0.as_bytes(), id)
            .and_then(|p| p.asap_transport.as_ref())
            .is_some_and(|t| overlaps(&t.addresses, from.addresses));
        if o.assoc != Some(from.assoc) && !same_endpoint {
            self.stats.unexpected += 1;
            return;
        }
        // A taken-over PE answers over a new association: that one is its association now.
        self.rebind(&key, from.assoc);
        self.schedule_keep_alive(now, &key);
    }

    /// Arms the next ENDPOINT_KEEP_ALIVE of an owned PE, or its expiry if the registration
    /// life ends first.
    pub(super) fn schedule_keep_alive(&mut self, now: Timestamp, key: &(PoolHandle, PeIdentifier)) {
        let Some(o) = self.owned.get(key) else {
            return;
        };
        let at = after(now, self.config.keep_alive_interval).min(o.expires);
        let _ = self.handlespace.set_timer(
            key.0.as_bytes(),
            key.1,
            at,
            TimerKind::KeepAliveTransmission,
        );
    }

    /// RFC 5352 §3.5: count reports; at MaxBadPEReports remove the PE (and, as its home,
    /// tell the peers).
    fn on_unreachable(
        &mut self,
        now: Timestamp,
        from: AsapOrigin<'_>,
        handle: PoolHandle,
        id: PeIdentifier,
    ) {
        if let Some(l) = self.unreachable_limiter.as_mut()
            && !l.allow(now, pu_key(&from))
        {
            self.stats.rate_limited += 1;
            return;
        }
        let Ok(count) = self.handlespace.report_unreachable(handle.as_bytes(), id) else {
            return;
        };
        if count >= self.config.max_bad_pe_reports {
            self.remove_pe(&handle, id, RemovalReason::Unreachable, true);
        }
    }

    /// A per-PE timer of the handlespace expired.
    pub(super) fn on_pe_timer(&mut self, now: Timestamp, e: Expired) {
        let key = (e.pool_handle.clone(), e.identifier);
        match e.kind {
            TimerKind::KeepAliveTransmission if self.registration_expired(now, &key) => {
                // RFC 5354 §3.10: the PE did not re-register within its registration life.
                self.remove_pe(&key.0, key.1, RemovalReason::Expired, true);
            }
            TimerKind::KeepAliveTransmission => {
                self.send_keep_alive(now, &key, false);
            }
            TimerKind::KeepAliveTimeout => {
                // RFC 5352 §2.2.7/§3.5: no ACK in time -> the PE is gone (the RFC removes a
                // PE whose keep-alive cannot be delivered).
                self.stats.keep_alive_timeouts += 1;
                self.remove_pe(&key.0, key.1, RemovalReason::KeepAliveTimeout, true);
            }
            _ => {
                if self.registration_expired(now, &key) {
                    self.remove_pe(&key.0, key.1, RemovalReason::Expired, true);
                } else if self.owned.contains_key(&key) {
                    self.send_keep_alive(now, &key, false);
                } else {
                    // A copy whose registration life (RFC 5354 §3.10) ran out is dropped: an
                    // expired registration ends as a de-registration (RFC 5352 §3.2).
                    self.remove_pe(&key.0, key.1, RemovalReason::Expired, false);
                }
            }
        }
    }

    fn registration_expired(&self, now: Timestamp, key: &(PoolHandle, PeIdentifier)) -> bool {
        self.owned.get(key).is_some_and(|o| o.expires <= now)
    }

    /// Sends ENDPOINT_KEEP_ALIVE (flag H after a takeover, RFC 5353 §3.5.2) and arms the
    /// keep-alive timeout.
    pub(super) fn send_keep_alive(
        &mut self,
        now: Timestamp,
        key: &(PoolHandle, PeIdentifier),
        home: bool,
    ) {
        let Some(o) = self.owned.get(key).copied() else {
            return;
        };
        let to = match o.assoc {
            Some(a) => Destination::Association(a),
            None => match self
                .handlespace
                .pool_element(key.0.as_bytes(), key.1)
                .and_then(|p| p.asap_transport.clone())
            {
                Some(t) => Destination::PoolElement(t),
                None => {
                    // Unreachable by ASAP: nothing can supervise it.
                    self.remove_pe(&key.0, key.1, RemovalReason::KeepAliveTimeout, true);
                    return;
                }
            },
        };
        self.send_asap(
            to,
            &AsapMessage::EndpointKeepAlive {
                home,
                server_id: self.id,
                pool_handle: key.0.clone(),
                identifier: Some(key.1),
            },
        );
        let _ = self.handlespace.set_timer(
            key.0.as_bytes(),
            key.1,
            after(now, self.config.keep_alive_timeout),
            TimerKind::KeepAliveTimeout,
        );
    }
}

/// The rate-limit and ACL identity of a PU: its primary address.
fn pu_key(from: &AsapOrigin<'_>) -> IpAddr {
    from.addresses
        .first()
        .map(|a| a.to_canonical())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// Whether the two address lists share an address (IPv4-mapped IPv6 = IPv4).
fn overlaps(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.to_canonical() == y.to_canonical()))
}

fn bounded(b: &[u8]) -> &[u8] {
    b.get(..MAX_ERROR_INFO).unwrap_or(b)
}
