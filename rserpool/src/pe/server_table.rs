//! The registrars an ASAP endpoint (PE or PU) knows: statically configured ones and those
//! heard in SERVER_ANNOUNCE (RFC 5352 §3.6, server hunt). Shared by the PE and PU cores.

use core::time::Duration;
use std::net::SocketAddr;

use rand_core::RngCore;

use crate::Timestamp;
use crate::wire::{RegistrarId, TransportParameter, TransportProtocol, TransportUse};

/// One known registrar.
#[derive(Debug, Clone)]
pub(crate) struct ServerEntry {
    /// Its ASAP endpoint.
    pub(crate) endpoint: TransportParameter,
    /// Its identifier, once learned (announce or keep-alive).
    pub(crate) id: Option<RegistrarId>,
    /// `None` for static entries; announced ones are forgotten at this time.
    expires: Option<Timestamp>,
    /// Set when a connection, request or association failed; the entry is avoided until
    /// every other one has failed too.
    failed: bool,
}

/// A bounded table of registrars.
#[derive(Debug, Clone)]
pub(crate) struct ServerTable {
    entries: Vec<ServerEntry>,
    max: usize,
    announce_timeout: Duration,
}

impl ServerTable {
    pub(crate) fn new(
        static_registrars: &[TransportParameter],
        max: usize,
        announce_timeout: Duration,
    ) -> Self {
        let mut t = ServerTable {
            entries: Vec::new(),
            max: max.max(1),
            announce_timeout,
        };
        for s in static_registrars.iter().take(t.max) {
            t.entries.push(ServerEntry {
                endpoint: s.clone(),
                id: None,
                expires: None,
                failed: false,
            });
        }
        t
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every known registrar has failed (or none is known).
    pub(crate) fn all_failed(&self) -> bool {
        self.entries.iter().all(|e| e.failed)
    }

    fn find(&self, endpoint: &TransportParameter) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| same_endpoint(&e.endpoint, endpoint))
    }

    /// A SERVER_ANNOUNCE from `id`. Without transports, the announce's UDP source is the
    /// registrar's SCTP endpoint (RSPLIB binds both to one port). Returns whether the
    /// registrar is new.
    pub(crate) fn handle_announce(
        &mut self,
        now: Timestamp,
        id: RegistrarId,
        transports: &[TransportParameter],
        source: SocketAddr,
    ) -> bool {
        let endpoint = transports
            .iter()
            .find(|t| t.protocol == TransportProtocol::Sctp && !t.addresses.is_empty())
            .cloned()
            .unwrap_or_else(|| {
                TransportParameter::sctp(source.port(), TransportUse::DATA_ONLY, vec![source.ip()])
            });
        let expires = now.saturating_add(self.announce_timeout);
        let by_id = self.entries.iter().position(|e| e.id == Some(id));
        match by_id.or_else(|| self.find(&endpoint)) {
            Some(i) => {
                let e = &mut self.entries[i];
                e.id = Some(id);
                if e.expires.is_some() {
                    e.expires = Some(expires);
                    e.endpoint = endpoint;
                }
                false
            }
            None => {
                if self.entries.len() >= self.max {
                    // Bounded: replace the announced entry closest to expiry, never a static one.
                    let Some(i) = self
                        .entries
                        .iter()
                        .enumerate()
                        .filter_map(|(i, e)| e.expires.map(|x| (x, i)))
                        .min()
                        .map(|(_, i)| i)
                    else {
                        return false;
                    };
                    self.entries.swap_remove(i);
                }
                self.entries.push(ServerEntry {
                    endpoint,
                    id: Some(id),
                    expires: Some(expires),
                    failed: false,
                });
                true
            }
        }
    }

    /// Forgets announced registrars not heard for the announce timeout.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        self.entries.retain(|e| e.expires.is_none_or(|x| x > now));
    }

    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.entries.iter().filter_map(|e| e.expires).min()
    }

    /// Picks a registrar at random among those that have not failed; when all have
    /// failed, the failure marks are cleared and the hunt starts over.
    pub(crate) fn choose(&mut self, rng: &mut dyn RngCore) -> Option<TransportParameter> {
        if self.entries.is_empty() {
            return None;
        }
        if self.entries.iter().all(|e| e.failed) {
            for e in &mut self.entries {
                e.failed = false;
            }
        }
        let candidates: Vec<usize> = (0..self.entries.len())
            .filter(|i| !self.entries[*i].failed)
            .collect();
        let pick = candidates[(rng.next_u32() as usize) % candidates.len()];
        Some(self.entries[pick].endpoint.clone())
    }

    pub(crate) fn mark_failed(&mut self, endpoint: &TransportParameter) {
        if let Some(i) = self.find(endpoint) {
            self.entries[i].failed = true;
        }
    }

    pub(crate) fn mark_ok(&mut self, endpoint: &TransportParameter) {
        if let Some(i) = self.find(endpoint) {
            self.entries[i].failed = false;
        }
    }

    /// The identifier of the registrar at `endpoint`, if known.
    pub(crate) fn id_of(&self, endpoint: &TransportParameter) -> Option<RegistrarId> {
        self.find(endpoint).and_then(|i| self.entries[i].id)
    }

    /// Records the identifier of the registrar at `endpoint`.
    pub(crate) fn learn_id(&mut self, endpoint: &TransportParameter, id: RegistrarId) {
        if let Some(i) = self.find(endpoint) {
            self.entries[i].id = Some(id);
        }
    }

    /// The endpoint of registrar `id`, if known.
    pub(crate) fn endpoint_of(&self, id: RegistrarId) -> Option<&TransportParameter> {
        self.entries
            .iter()
            .find(|e| e.id == Some(id))
            .map(|e| &e.endpoint)
    }
}

/// Two transports name the same endpoint: same port and a shared address.
pub(crate) fn same_endpoint(a: &TransportParameter, b: &TransportParameter) -> bool {
    a.port == b.port
        && a.addresses.iter().any(|x| {
            b.addresses
                .iter()
                .any(|y| x.to_canonical() == y.to_canonical())
        })
}
