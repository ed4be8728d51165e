//! Packet I/O and the run-to-completion runtime. All `unsafe` and OS code of the project
//! lives in this crate; every `unsafe` block carries a `// SAFETY:` comment.
#![deny(unsafe_op_in_unsafe_fn)]

mod any;
pub mod link;
pub mod memory;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod packet;
#[cfg(target_os = "linux")]
pub mod raw;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
pub mod udp;
#[cfg(all(
    feature = "io-uring",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod uring;

pub use any::AnyLink;

pub use link::{Backend, Interest, Link, LinkError, LinkStats, Readiness, Waker};
pub use packet::{BufferPool, PacketBuf, RxBatch, RxMeta, RxPacket, TxBatch, TxMeta};
