//! RSPLIB's demonstration services and the Component Status Protocol.
//!
//! [`wire`] holds their message formats, wire-compatible with RSPLIB and decoded by
//! Wireshark's `pingpongprotocol`, `calcappprotocol`, `fractalgeneratorprotocol`,
//! `ssprotocol` and `componentstatusprotocol` dissectors.

pub mod wire;
