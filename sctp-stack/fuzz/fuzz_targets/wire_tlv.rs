//! Parameters and error causes on their own and as lists: parse, and re-encode whatever
//! parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sctp_stack_fuzz::parse_tlvs(data);
});
