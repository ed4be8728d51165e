//! ASAP decoder: never panics; whatever decodes re-encodes and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rserpool::wire::{AsapMessage, EncodeError, RawMessage};

fuzz_target!(|data: &[u8]| {
    let _ = RawMessage::new_checked(data);
    if let Ok(d) = AsapMessage::decode(data) {
        let mut buf = vec![0u8; d.message.encoded_len()];
        match d.message.encode(&mut buf) {
            Ok(n) => {
                assert_eq!(n, buf.len());
                let again = AsapMessage::decode(&buf).expect("re-decode");
                assert_eq!(again.message, d.message);
            }
            Err(EncodeError::TooLong) => {}
            Err(e) => panic!("encode failed: {e}"),
        }
    }
});
