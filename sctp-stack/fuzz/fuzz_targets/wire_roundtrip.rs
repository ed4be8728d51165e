//! Encode/decode stability: parse -> encode -> parse gives equal values, re-encoding is
//! idempotent, and a rebuilt packet parses back to the same chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sctp_stack_fuzz::check_roundtrip(data);
});
