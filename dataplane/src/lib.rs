//! Packet I/O and the run-to-completion runtime. All `unsafe` and OS code of the project
//! lives in this crate; every `unsafe` block carries a `// SAFETY:` comment.
#![deny(unsafe_op_in_unsafe_fn)]
