//! Every wire parser on arbitrary packets: structure, checksum, typed chunks, parameters,
//! causes and fixed-size lists. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sctp_stack_fuzz::parse_packet_everywhere(data);
});
