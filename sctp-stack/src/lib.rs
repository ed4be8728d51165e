//! A sans-IO SCTP stack (RFC 9260) with the extensions used in telecom deployments.
//!
//! The crate never touches a socket, a thread or a clock: the driver (see the `dataplane`
//! crate) feeds it datagrams and the current [`time::Timestamp`], and collects packets,
//! events and the next deadline from it.
//!
//! Modules:
//! - [`time`]: the zero-based time type every input carries.
//! - [`serial`]: RFC 1982 serial numbers (TSN, SSN, MID, FSN, ASCONF and re-config serials).
//! - [`wire`]: the complete SCTP wire format, as checked views and typed values.
//! - [`pcap`]: a pcap writer for raw-IP and UDP-encapsulated SCTP captures.
//! - [`endpoint`]: the sans-IO [`Endpoint`] (listeners, associations, demultiplexing) and
//!   its call contract; [`association`]: the RFC 9260 state machine and its types.
//! - [`config`]: every tunable with its RFC 9260 §16 default, and the switches of the
//!   extensions (PR-SCTP, SCTP-AUTH with its shared keys, Add-IP, Adaptation Layer
//!   Indication, I-DATA, RE-CONFIG with its peer policy).
//! - `sim` (feature `sim`): a deterministic network simulator for tests.
#![forbid(unsafe_code)]

pub mod association;
pub mod config;
mod cookie;
pub mod endpoint;
pub mod pcap;
pub mod serial;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod wire;

pub use association::{
    AbortReason, AddressRequest, AsconfError, AssociationId, AssociationState, AssociationStatus,
    AuthKeyError, ErrorCause, Event, LostReason, Message, PathError, PathState, PathStatus,
    PeerAddressChange, Piece, PrPolicy, ReconfError, ReconfOutcome, SendError, SendOptions,
    StreamDirection,
};
pub use config::{
    AssociationConfig, ConfigError, EndpointConfig, IDataFsn, ReconfPolicy, StreamScheduler,
};
pub use endpoint::{
    AssociationMut, ConnectError, ConnectRequest, Datagram, Endpoint, EndpointStats, ListenError,
    RxChecksum, Transmit,
};
