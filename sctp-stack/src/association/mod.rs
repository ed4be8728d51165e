//! One SCTP association: the RFC 9260 state machine with its data sender and receiver.

// The state machine that uses these parts lands in the next commits.
#[allow(dead_code)]
mod inbound;
#[allow(dead_code)]
mod outbound;
#[allow(dead_code)]
mod path;
#[allow(dead_code)]
mod timer;

pub use inbound::Message;
pub use outbound::{SendError, SendOptions};
pub use path::PathState;
