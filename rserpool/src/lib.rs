//! Reliable Server Pooling (RSerPool, RFC 5351-5356).
//!
//! Sans-IO like `sctp-stack`: no sockets, threads or clocks; time comes in as
//! [`sctp_stack::time::Timestamp`] and randomness from a seeded RNG the caller passes in.
//!
//! Modules:
//! - [`wire`]: ASAP (RFC 5352) and ENRP (RFC 5353) messages and the RFC 5354 parameters,
//!   including RSPLIB's extensions.
//! - [`policy`]: the pool member selection policies of RFC 5356 and RSPLIB, and the
//!   [`policy::Policy`] trait through which applications add their own.
//! - [`handlespace`]: pools, pool elements, ownership, expiry, checksums and the PU cache.
//! - [`pe`] and [`pu`]: the sans-IO pool element (registration, re-registration,
//!   keep-alive, re-homing) and pool user (handle resolution cache, failure reports) cores.
//! - [`session`]: Enhanced Mode on top of the PE and PU cores: sessions, cookies,
//!   business cards and failover ([`session::Server`], [`session::Client`]).
//! - [`services`]: RSPLIB's demo services as per-session state machines (Echo, Discard,
//!   Daytime, CharGen, PingPong, CalcApp) and the wire formats of PingPong, CalcApp, the
//!   Fractal Generator, Scripting and the Component Status Protocol.
#![forbid(unsafe_code)]

pub mod handlespace;
pub mod pe;
pub mod policy;
pub mod pu;
pub mod registrar;
pub mod services;
pub mod session;
pub mod wire;

pub use sctp_stack::time::Timestamp;

/// The RNG traits of this crate's API (policies and the handlespace take `&mut dyn RngCore`).
pub use rand_core;
