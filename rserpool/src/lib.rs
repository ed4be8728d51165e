//! Reliable Server Pooling (RSerPool, RFC 5351-5356).
//!
//! Sans-IO like `sctp-stack`: no sockets, threads or clocks; time comes in as
//! [`sctp_stack::time::Timestamp`].
#![forbid(unsafe_code)]

pub use sctp_stack::time::Timestamp;
