//! Service decoders: never panic; decoded messages round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rserpool::services::wire::{
    CalcAppMessage, ComponentStatusReport, FractalCookie, FractalMessage, PingPongMessage,
    ScriptingMessage,
};

macro_rules! round_trip {
    ($t:ty, $data:expr) => {
        if let Ok(m) = <$t>::decode($data) {
            let mut buf = vec![0u8; m.encoded_len()];
            if m.encode(&mut buf).is_ok() {
                let again = <$t>::decode(&buf).expect("re-decode");
                // Compare through Debug so NaN doubles in fractal parameters compare equal.
                assert_eq!(format!("{again:?}"), format!("{m:?}"));
            }
        }
    };
}

fuzz_target!(|data: &[u8]| {
    round_trip!(PingPongMessage, data);
    round_trip!(CalcAppMessage, data);
    round_trip!(FractalMessage, data);
    round_trip!(ScriptingMessage, data);
    round_trip!(ComponentStatusReport, data);
    let _ = FractalCookie::from_bytes(data);
});
