//! ENRP peering (RFC 5353 §3): peer table, PRESENCE, mentor synchronisation, handle
//! updates, audits and takeover.

use super::{
    Destination, EnrpOrigin, Event, Peer, Phase, Registrar, RemovalReason, Takeover, Timer,
    Transfer, after,
};
use crate::Timestamp;
use crate::wire::{
    CauseCode, DecodeError, EnrpBody, EnrpMessage, EnrpMessageType, ErrorCause, OperationError,
    PoolElement, PoolHandle, RegistrarId, ServerInformation, UpdateAction,
};

/// Most bytes of an offending message echoed in an ENRP Operation Error.
const MAX_ERROR_INFO: usize = 1024;

impl Registrar {
    /// One ENRP message from a peer (see the module docs).
    pub fn handle_enrp(&mut self, now: Timestamp, origin: EnrpOrigin, bytes: &[u8]) {
        self.stats.enrp_received += 1;
        if bytes.len() > self.config.max_message_len {
            self.stats.oversized += 1;
            return;
        }
        let decoded = match EnrpMessage::decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.stats.malformed += 1;
                self.answer_malformed_enrp(origin, bytes, e);
                return;
            }
        };
        let msg = decoded.message;
        // Our own multicast looped back, or a message for another registrar.
        if msg.sender == self.id
            || msg.sender == RegistrarId::UNDEFINED
            || (msg.receiver != RegistrarId::UNDEFINED && msg.receiver != self.id)
        {
            self.stats.enrp_from_unknown += 1;
            return;
        }
        if let EnrpBody::Presence {
            reply_required,
            checksum,
            server_information,
        } = msg.body
        {
            // Like RSPLIB, only PRESENCE received over SCTP is audited (the multicast copy
            // of the same PRESENCE would start a second audit).
            let audit = matches!(origin, EnrpOrigin::Association(_));
            self.on_presence(
                now,
                msg.sender,
                reply_required,
                audit.then_some(checksum),
                server_information,
            );
            return;
        }
        // Only PRESENCE is taken from the multicast group (RFC 5353 §3.1 itself sends
        // announcements as group-casts over the peers' SCTP associations).
        if origin == EnrpOrigin::Multicast {
            self.stats.unexpected += 1;
            return;
        }
        // Everything else only from registrars in the peer table.
        if !self.peers.contains_key(&msg.sender) {
            self.stats.enrp_from_unknown += 1;
            return;
        }
        self.heard_from(now, msg.sender);
        if !decoded.report.is_empty() {
            // RFC 5354 §3 (action 11) / RFC 5353 §3.7: report skipped parameters.
            let causes = decoded
                .report
                .iter()
                .take(4)
                .map(|p| {
                    ErrorCause::with_info(
                        CauseCode::UNRECOGNIZED_PARAMETER,
                        p.get(..MAX_ERROR_INFO).unwrap_or(p),
                    )
                })
                .collect();
            self.send_enrp(
                msg.sender,
                EnrpBody::Error {
                    error: OperationError { causes },
                },
            );
            self.stats.errors_sent += 1;
        }
        let from = msg.sender;
        match msg.body {
            EnrpBody::HandleTableRequest { own_children_only } => {
                self.on_table_request(now, from, own_children_only)
            }
            EnrpBody::HandleTableResponse {
                reject,
                more_to_send,
                pools,
            } => self.on_table_response(now, from, reject, more_to_send, pools),
            EnrpBody::HandleUpdate {
                action,
                pool_handle,
                pool_element,
                ..
            } => self.on_handle_update(now, from, action, pool_handle, pool_element),
            EnrpBody::ListRequest => self.on_list_request(from),
            EnrpBody::ListResponse { reject, servers } => {
                if !reject {
                    self.on_list_response(now, servers)
                }
            }
            EnrpBody::InitTakeover { target } => self.on_init_takeover(now, from, target),
            EnrpBody::InitTakeoverAck { target } => self.on_init_takeover_ack(now, from, target),
            EnrpBody::TakeoverServer { target } => self.on_takeover_server(now, from, target),
            // ENRP_ERROR: logged by the counter only (never answered).
            _ => self.stats.unexpected += 1,
        }
    }

    /// RFC 5353 §3.7 / RFC 5354 §3-§4: report an unrecognized message or parameter to a known
    /// peer with ENRP_ERROR; drop everything else.
    fn answer_malformed_enrp(&mut self, origin: EnrpOrigin, bytes: &[u8], e: DecodeError) {
        let Some(code) = e.cause_code() else {
            return;
        };
        if origin == EnrpOrigin::Multicast {
            return;
        }
        if bytes.first() == Some(&EnrpMessageType::ERROR.0) {
            return;
        }
        let Some(sender) = bytes
            .get(4..8)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(|s| RegistrarId(u32::from_be_bytes(s)))
        else {
            return;
        };
        if !self.peers.contains_key(&sender) {
            self.stats.enrp_from_unknown += 1;
            return;
        }
        let info: &[u8] = match e {
            DecodeError::UnrecognizedMessage(_) => bytes,
            DecodeError::UnrecognizedParameter { offset, len, .. } => {
                bytes.get(offset..offset.saturating_add(len)).unwrap_or(&[])
            }
            _ => &[],
        };
        let info = info.get(..MAX_ERROR_INFO).unwrap_or(info);
        self.send_enrp(
            sender,
            EnrpBody::Error {
                error: OperationError::new(ErrorCause::with_info(code, info)),
            },
        );
        self.stats.errors_sent += 1;
    }

    fn presence(&self, reply_required: bool) -> EnrpBody {
        EnrpBody::Presence {
            reply_required,
            // RFC 5353 §2.1: the checksum over the PEs the sender owns.
            checksum: self.handlespace.ownership_checksum(self.id),
            server_information: ServerInformation {
                server_id: self.id,
                transport: self.config.enrp_transport.clone(),
            },
        }
    }

    fn is_known_endpoint(&self, t: &crate::wire::TransportParameter) -> bool {
        self.peers.values().any(|p| {
            p.info
                .transport
                .addresses
                .iter()
                .any(|a| t.addresses.contains(a))
        })
    }

    fn is_static_endpoint(&self, t: &crate::wire::TransportParameter) -> bool {
        self.config
            .static_peers
            .iter()
            .any(|s| s.addresses.iter().any(|a| t.addresses.contains(a)))
    }

    /// RFC 5353 §3.4.2: PRESENCE to every peer, to static peers not yet identified, and
    /// to the multicast group when enabled.
    pub(super) fn send_presence_to_all(&mut self, reply_required: bool) {
        let body = self.presence(reply_required);
        self.broadcast_enrp(&body);
        let unknown: Vec<_> = self
            .config
            .static_peers
            .iter()
            .filter(|s| !self.is_known_endpoint(s))
            .cloned()
            .collect();
        for endpoint in unknown {
            self.send_enrp_to(
                Destination::Peer {
                    id: RegistrarId::UNDEFINED,
                    endpoint,
                },
                RegistrarId::UNDEFINED,
                body.clone(),
            );
        }
        if self.config.enrp_multicast {
            self.send_enrp_to(Destination::EnrpMulticast, RegistrarId::UNDEFINED, body);
        }
    }

    fn add_peer(&mut self, now: Timestamp, info: ServerInformation) -> bool {
        let id = info.server_id;
        if self.peers.contains_key(&id) {
            return true;
        }
        if id == self.id || id == RegistrarId::UNDEFINED {
            return false;
        }
        if self.peers.len() >= self.config.max_peers {
            self.stats.peer_overflow += 1;
            return false;
        }
        self.peers.insert(
            id,
            Peer {
                info,
                last_heard: now,
                awaiting_response: false,
                transfer: None,
            },
        );
        self.timers.set(
            Timer::PeerCheck(id),
            after(now, self.config.max_time_last_heard),
        );
        self.event(Event::PeerAdded(id));
        true
    }

    /// Any message from a peer proves it alive (RFC 5353 §3.4.3).
    fn heard_from(&mut self, now: Timestamp, id: RegistrarId) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.last_heard = now;
        p.awaiting_response = false;
        self.timers.set(
            Timer::PeerCheck(id),
            after(now, self.config.max_time_last_heard),
        );
        // A takeover of it by another registrar is void: it is alive.
        self.takeover_by.remove(&id);
        // The target of our takeover is alive after all (RSPLIB).
        if self.takeovers.remove(&id).is_some() {
            self.timers.cancel(Timer::TakeoverExpiry(id));
            self.event(Event::TakeoverAborted { target: id });
        }
    }

    fn on_presence(
        &mut self,
        now: Timestamp,
        from: RegistrarId,
        reply_required: bool,
        checksum: Option<u16>,
        info: ServerInformation,
    ) {
        if info.server_id != from {
            self.stats.unexpected += 1;
            return;
        }
        if !self.peers.contains_key(&from) {
            // RFC 5353 §3.4.1: a new peer announces itself.
            if !(self.config.discover_peers || self.is_static_endpoint(&info.transport)) {
                self.stats.enrp_from_unknown += 1;
                return;
            }
            if !self.add_peer(now, info.clone()) {
                return;
            }
        }
        self.heard_from(now, from);
        if let Some(p) = self.peers.get_mut(&from) {
            p.info = info;
        }
        if reply_required {
            // RFC 5353 §2.1/§3.4.1: flag R (reply required) asks for a PRESENCE in reply.
            let body = self.presence(false);
            self.send_enrp(from, body);
        }
        match self.phase {
            Phase::Startup { mentor: None } => {
                // RFC 5353 §3.2.2/§3.2.3: the first peer heard is the mentor; get its peer
                // list and its handle table.
                self.phase = Phase::Startup { mentor: Some(from) };
                self.send_enrp(from, EnrpBody::ListRequest);
                self.request_table(now, from, false);
            }
            Phase::Startup { .. } => {}
            Phase::Serving => {
                let transferring = self.peers.get(&from).is_some_and(|p| p.transfer.is_some());
                if let Some(checksum) = checksum
                    && !transferring
                    && checksum != self.handlespace.ownership_checksum(from)
                {
                    // RFC 5353 §3.6.1: a checksum mismatch starts the re-synchronisation
                    // of the peer's own PEs (§3.6.3, flag W); copies not confirmed are
                    // purged at the end.
                    self.event(Event::AuditStarted { peer: from });
                    self.handlespace.mark_owned(from);
                    self.request_table(now, from, true);
                }
            }
        }
    }

    fn request_table(&mut self, now: Timestamp, from: RegistrarId, own_children_only: bool) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        p.transfer = Some(Transfer {
            own_children_only,
            started: now,
        });
        self.timers.set(
            Timer::Transfer(from),
            after(now, self.config.table_transfer_timeout),
        );
        self.send_enrp(from, EnrpBody::HandleTableRequest { own_children_only });
    }

    pub(super) fn on_transfer_timeout(&mut self, _now: Timestamp, id: RegistrarId) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.transfer = None;
        }
        if self.phase == (Phase::Startup { mentor: Some(id) }) {
            self.phase = Phase::Startup { mentor: None };
        }
    }

    /// RFC 5353 §2.2/§2.3: answer with (a piece of) the handle table; flag M tells the
    /// requester to ask again for the rest.
    fn on_table_request(&mut self, now: Timestamp, from: RegistrarId, own_children_only: bool) {
        if !self.is_serving() {
            // Not synchronised ourselves: reject (flag R).
            self.send_enrp(
                from,
                EnrpBody::HandleTableResponse {
                    reject: true,
                    more_to_send: false,
                    pools: Vec::new(),
                },
            );
            return;
        }
        let key = (from, own_children_only);
        let timeout = self.config.table_transfer_timeout;
        let cursor = self
            .cursors
            .remove(&key)
            .filter(|(_, at)| now.saturating_duration_since(*at) < timeout)
            .map(|(c, _)| c);
        let piece = self.handlespace.export(
            own_children_only.then_some(self.id),
            cursor.as_ref(),
            self.config.max_handle_table_pes,
            self.config.max_handle_table_bytes,
        );
        let more = piece.next.is_some();
        if let Some(next) = piece.next {
            self.cursors.insert(key, (next, now));
        }
        self.send_enrp(
            from,
            EnrpBody::HandleTableResponse {
                reject: false,
                more_to_send: more,
                pools: piece.pools,
            },
        );
    }

    fn on_table_response(
        &mut self,
        now: Timestamp,
        from: RegistrarId,
        reject: bool,
        more: bool,
        pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    ) {
        let Some(transfer) = self.peers.get(&from).and_then(|p| p.transfer) else {
            self.stats.unexpected += 1;
            return;
        };
        if reject {
            self.end_transfer(from);
            if self.phase == (Phase::Startup { mentor: Some(from) }) {
                self.phase = Phase::Startup { mentor: None };
            }
            return;
        }
        for (h, pes) in pools {
            for pe in pes {
                self.apply_copy(now, &h, pe, true);
            }
        }
        if more {
            self.request_table(now, from, transfer.own_children_only);
            return;
        }
        self.end_transfer(from);
        if transfer.own_children_only {
            let purged = self.handlespace.purge_marked(from);
            let n = purged.len();
            for (h, pe) in purged {
                self.event(Event::Removed {
                    pool_handle: h,
                    identifier: pe.identifier,
                    reason: RemovalReason::Audit,
                });
            }
            self.event(Event::AuditCompleted {
                peer: from,
                purged: n,
            });
        }
        if self.phase == (Phase::Startup { mentor: Some(from) }) {
            self.finish_startup(now, Some(from));
        }
    }

    fn end_transfer(&mut self, from: RegistrarId) {
        if let Some(p) = self.peers.get_mut(&from) {
            p.transfer = None;
        }
        self.timers.cancel(Timer::Transfer(from));
    }

    /// Stores a copy of a peer's PE (RFC 5353 §3.3). A PE this registrar is home for is
    /// never overwritten by a copy claiming the same home. A HANDLE_UPDATE for a PE we own
    /// means it re-registered at another home (RFC 5352 §3.1): it stops being ours.
    ///
    /// A handle table entry (`from_table`) for a PE we own is an ownership conflict, left
    /// behind when both sides of a network split took each other over. Both sides apply
    /// the same rule so they converge: the lower registrar identifier keeps the PE (as in
    /// the takeover race, RFC 5353 §3.5.1) until the PE's next re-registration settles it.
    fn apply_copy(&mut self, now: Timestamp, h: &PoolHandle, pe: PoolElement, from_table: bool) {
        if pe.home_registrar == self.id || pe.home_registrar == RegistrarId::UNDEFINED {
            self.stats.update_rejects += 1;
            return;
        }
        let key = (h.clone(), pe.identifier);
        if from_table && self.owned.contains_key(&key) && pe.home_registrar > self.id {
            self.stats.update_rejects += 1;
            return;
        }
        match self.handlespace.register(now, h, pe) {
            // The PE re-registered at another home (RFC 5352 §3.1): no longer ours.
            Ok(_) => self.disown(&key),
            Err(_) => self.stats.update_rejects += 1,
        }
    }

    /// RFC 5353 §3.3.1/§3.3.2 (receiver side of ENRP_HANDLE_UPDATE).
    fn on_handle_update(
        &mut self,
        now: Timestamp,
        from: RegistrarId,
        action: UpdateAction,
        h: PoolHandle,
        pe: PoolElement,
    ) {
        match action {
            UpdateAction::ADD_PE => self.apply_copy(now, &h, pe, false),
            UpdateAction::DEL_PE => {
                let key = (h.clone(), pe.identifier);
                let current = self
                    .handlespace
                    .pool_element(h.as_bytes(), pe.identifier)
                    .map(|p| p.home_registrar);
                // Only the PE's home may delete it; our own PEs are ours to remove.
                if self.owned.contains_key(&key) || current != Some(from) {
                    self.stats.update_rejects += 1;
                    return;
                }
                self.remove_pe(&h, pe.identifier, RemovalReason::PeerUpdate, false);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    /// RFC 5353 §2.5/§2.6: the peers we know.
    fn on_list_request(&mut self, from: RegistrarId) {
        let servers: Vec<ServerInformation> = self
            .peers
            .iter()
            .filter(|(id, _)| **id != from)
            .map(|(_, p)| p.info.clone())
            .collect();
        self.send_enrp(
            from,
            EnrpBody::ListResponse {
                reject: false,
                servers,
            },
        );
    }

    /// RFC 5353 §3.2.2.2: contact every peer the mentor knows.
    fn on_list_response(&mut self, now: Timestamp, servers: Vec<ServerInformation>) {
        for info in servers.into_iter().take(self.config.max_peers) {
            let id = info.server_id;
            if id == self.id || self.peers.contains_key(&id) {
                continue;
            }
            if self.add_peer(now, info) {
                let body = self.presence(true);
                self.send_enrp(id, body);
            }
        }
    }

    /// MaxTimeLastHeard, then MaxTimeNoResponse (RFC 5353 §3.4.3).
    pub(super) fn on_peer_check(&mut self, now: Timestamp, id: RegistrarId) {
        if self.takeovers.contains_key(&id) {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if !p.awaiting_response {
            // Silent for MaxTimeLastHeard: ask for a PRESENCE.
            p.awaiting_response = true;
            let body = self.presence(true);
            self.send_enrp(id, body);
            self.timers.set(
                Timer::PeerCheck(id),
                after(now, self.config.max_time_no_response),
            );
        } else {
            // Another registrar's takeover of this peer that we acknowledged is under way:
            // let it finish (its TAKEOVER_SERVER removes the peer) instead of racing it.
            // Should the initiator never finish, the record goes stale and we take over.
            let patience = self.config.takeover_expiry.saturating_mul(2);
            if let Some(&(by, at)) = self.takeover_by.get(&id)
                && self.peers.contains_key(&by)
                && now.saturating_duration_since(at) < patience
            {
                self.timers.set(Timer::PeerCheck(id), after(at, patience));
                return;
            }
            self.takeover_by.remove(&id);
            // RFC 5353 §3.4.3: no answer either: the peer MUST be considered dead and SHOULD
            // be taken over (§3.5).
            self.start_takeover(now, id);
        }
    }

    /// RFC 5353 §3.5.1: INIT_TAKEOVER to all other peers, then wait for their ACKs.
    fn start_takeover(&mut self, now: Timestamp, target: RegistrarId) {
        let pending_acks: std::collections::BTreeSet<RegistrarId> = self
            .peers
            .keys()
            .copied()
            .filter(|id| *id != target)
            .collect();
        self.takeovers.insert(
            target,
            Takeover {
                pending_acks: pending_acks.clone(),
            },
        );
        self.event(Event::TakeoverStarted { target });
        for id in pending_acks.iter().copied() {
            self.send_enrp(id, EnrpBody::InitTakeover { target });
        }
        if pending_acks.is_empty() {
            self.complete_takeover(now, target);
        } else {
            self.timers.set(
                Timer::TakeoverExpiry(target),
                after(now, self.config.takeover_expiry),
            );
        }
    }

    /// Takeover expiry: peers that did not answer are presumed down themselves (they are
    /// taken over in their own right), so the takeover completes.
    pub(super) fn on_takeover_expiry(&mut self, now: Timestamp, target: RegistrarId) {
        if self.takeovers.contains_key(&target) {
            self.complete_takeover(now, target);
        }
    }

    fn on_init_takeover(&mut self, now: Timestamp, from: RegistrarId, target: RegistrarId) {
        if target == self.id {
            // We are alive: tell everybody (RSPLIB), which aborts their takeovers.
            self.send_presence_to_all(false);
            return;
        }
        if self.takeovers.contains_key(&target) {
            // Two initiators: the lower server identifier wins, as in RSPLIB's registrar (it
            // acknowledges a sender with a lower identifier and aborts its own takeover).
            // RFC 5353 §3.5.1 (rule 2.A) has it the other way round (the higher identifier
            // wins); we follow RSPLIB so that mixed deployments with it agree on one winner.
            if from < self.id {
                self.takeovers.remove(&target);
                self.timers.cancel(Timer::TakeoverExpiry(target));
                self.event(Event::TakeoverAborted { target });
            } else {
                return;
            }
        }
        if self.peers.contains_key(&target) {
            self.takeover_by.insert(target, (from, now));
        }
        // RFC 5353 §3.5.1: acknowledge the initiator.
        self.send_enrp(from, EnrpBody::InitTakeoverAck { target });
    }

    fn on_init_takeover_ack(&mut self, now: Timestamp, from: RegistrarId, target: RegistrarId) {
        let Some(t) = self.takeovers.get_mut(&target) else {
            self.stats.unexpected += 1;
            return;
        };
        t.pending_acks.remove(&from);
        if t.pending_acks.is_empty() {
            self.complete_takeover(now, target);
        }
    }

    /// RFC 5353 §3.5.2: TAKEOVER_SERVER to all peers, become home of the target's PEs and
    /// tell each of them with ENDPOINT_KEEP_ALIVE flag H.
    fn complete_takeover(&mut self, now: Timestamp, target: RegistrarId) {
        self.takeovers.remove(&target);
        self.timers.cancel(Timer::TakeoverExpiry(target));
        self.remove_peer(target);
        self.broadcast_enrp(&EnrpBody::TakeoverServer { target });
        let moved = self.handlespace.take_over(target, self.id);
        let n = moved.len();
        for key in moved {
            // The copy's expiry timer is the end of its registration life.
            let expires = match self.handlespace.timer(key.0.as_bytes(), key.1) {
                Some((at, crate::handlespace::TimerKind::Expiry)) => at,
                _ => now,
            };
            self.own(key.clone(), None, None, expires);
            if expires <= now {
                self.remove_pe(&key.0, key.1, RemovalReason::Expired, true);
            } else {
                self.send_keep_alive(now, &key, true);
            }
        }
        self.event(Event::TakeoverCompleted {
            target,
            pool_elements: n,
        });
    }

    fn on_takeover_server(&mut self, _now: Timestamp, from: RegistrarId, target: RegistrarId) {
        if target == self.id {
            // We were presumed dead (e.g. a network split): the peer owns our PEs now and
            // re-homes them; stop supervising them here.
            for key in self.handlespace.take_over(self.id, from) {
                self.disown(&key);
            }
            self.event(Event::TakenOverBy { target, by: from });
            return;
        }
        if self.takeovers.remove(&target).is_some() {
            self.timers.cancel(Timer::TakeoverExpiry(target));
            self.event(Event::TakeoverAborted { target });
        }
        // RFC 5353 §3.5.2: the target's PEs now belong to the initiator.
        self.handlespace.take_over(target, from);
        self.remove_peer(target);
        self.event(Event::TakenOverBy { target, by: from });
    }

    fn remove_peer(&mut self, id: RegistrarId) {
        self.takeover_by.remove(&id);
        self.takeover_by.retain(|_, (by, _)| *by != id);
        if self.peers.remove(&id).is_some() {
            self.timers.cancel(Timer::PeerCheck(id));
            self.timers.cancel(Timer::Transfer(id));
            self.cursors.retain(|(p, _), _| *p != id);
            self.event(Event::PeerRemoved(id));
        }
    }
}
