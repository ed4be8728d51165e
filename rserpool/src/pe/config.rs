//! Pool element configuration with RSPLIB-like defaults.

use core::time::Duration;

use crate::wire::{PeIdentifier, PolicyInfo, PoolHandle, TransportParameter};

/// Everything a [`PoolElement`](super::PoolElement) can be told.
///
/// [`PoolElementConfig::new`] fills in the defaults documented on each field.
#[derive(Debug, Clone)]
pub struct PoolElementConfig {
    /// The pool to join.
    pub pool_handle: PoolHandle,
    /// The PE identifier; `PeIdentifier(0)` picks a random non-zero one from the RNG
    /// (RFC 5352 §3.1: the PE chooses its identifier). Default: 0.
    pub identifier: PeIdentifier,
    /// The member selection policy and its values (load for the adaptive policies).
    pub policy: PolicyInfo,
    /// Where pool users reach the PE (the user transport of the Pool Element parameter).
    pub user_transport: TransportParameter,
    /// Interval between re-registrations (RSPLIB: 30 s).
    pub reregistration_interval: Duration,
    /// Registration life sent to the registrar; `None` = 3 x the re-registration interval
    /// (RSPLIB's rule, 90 s by default).
    pub registration_life: Option<Duration>,
    /// Statically configured registrars (their ASAP endpoints). Default: none.
    pub static_registrars: Vec<TransportParameter>,
    /// Whether SERVER_ANNOUNCEs add registrars (RFC 5352 §3.6). Default: true.
    pub use_announces: bool,
    /// An announced registrar not heard for this long is forgotten (RSPLIB: 30 s).
    pub announce_timeout: Duration,
    /// How long the association to a registrar may take to come up (default 5 s).
    pub connect_timeout: Duration,
    /// How long to wait for a REGISTRATION_RESPONSE or DEREGISTRATION_RESPONSE before the
    /// registrar counts as failed (default 5 s).
    pub response_timeout: Duration,
    /// Delay before the next registrar hunt when no registrar is known or all failed
    /// (default 1 s).
    pub hunt_retry_interval: Duration,
    /// Most registrars remembered (static ones first). Default: 64.
    pub max_registrars: usize,
    /// Longest message accepted; longer input is dropped unread. Default: 65 535.
    pub max_message_len: usize,
    /// Most queued transmits, commands and events each; more are dropped and counted.
    /// Default: 256.
    pub max_queue: usize,
}

impl PoolElementConfig {
    /// A configuration for a PE of `pool_handle` with `policy`, reachable at
    /// `user_transport`, with the defaults documented on the fields.
    pub fn new(
        pool_handle: PoolHandle,
        policy: PolicyInfo,
        user_transport: TransportParameter,
    ) -> Self {
        PoolElementConfig {
            pool_handle,
            identifier: PeIdentifier(0),
            policy,
            user_transport,
            reregistration_interval: Duration::from_secs(30),
            registration_life: None,
            static_registrars: Vec::new(),
            use_announces: true,
            announce_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            hunt_retry_interval: Duration::from_secs(1),
            max_registrars: 64,
            max_message_len: 65_535,
            max_queue: 256,
        }
    }

    /// The registration life actually sent.
    pub fn effective_registration_life(&self) -> Duration {
        self.registration_life
            .unwrap_or(self.reregistration_interval.saturating_mul(3))
    }
}
