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
#![forbid(unsafe_code)]

pub mod association;
pub mod config;
#[allow(dead_code)]
mod cookie;
pub mod pcap;
pub mod serial;
pub mod time;
