use proptest::prelude::*;

use super::*;

fn enc(len: usize, f: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let n = f(&mut b).expect("encode");
    assert_eq!(n, len);
    b
}

#[test]
fn ping_and_pong_have_rsplib_layout() {
    let ping = PingPongMessage::Ping {
        message_no: 7,
        data: b"hello".to_vec(),
    };
    let b = enc(ping.encoded_len(), |b| ping.encode(b));
    assert_eq!(&b[..4], &[0x01, 0, 0, 17]);
    assert_eq!(&b[4..12], &7u64.to_be_bytes());
    assert_eq!(PingPongMessage::decode(&b), Ok(ping));
    let pong = PingPongMessage::Pong {
        message_no: 7,
        reply_no: 9,
        data: vec![],
    };
    let b = enc(pong.encoded_len(), |b| pong.encode(b));
    assert_eq!(&b[..4], &[0x02, 0, 0, 20]);
    assert_eq!(PingPongMessage::decode(&b), Ok(pong));
    let c = PingPongCookie { reply_no: 42 };
    assert_eq!(&c.to_bytes()[..8], b"<PP-TD1>");
    assert_eq!(PingPongCookie::from_bytes(&c.to_bytes()), Ok(c));
    assert!(PingPongCookie::from_bytes(b"<XX-TD1>12345678").is_err());
}

#[test]
fn calcapp_message_is_24_bytes() {
    let m = CalcAppMessage {
        kind: CalcAppType::Complete,
        job_id: 3,
        job_size: 1_000_000,
        completed: 1_000_000,
    };
    let b = enc(m.encoded_len(), |b| m.encode(b));
    assert_eq!(b.len(), 24);
    assert_eq!(&b[..4], &[5, 0, 0, 24]);
    assert_eq!(CalcAppMessage::decode(&b), Ok(m));
    assert_eq!(
        CalcAppMessage::decode(&[
            9, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]),
        Err(ServiceDecodeError::UnknownType(9))
    );
    let c = CalcAppCookie {
        job_id: 1,
        job_size: 2,
        completed: 3,
    };
    assert_eq!(CalcAppCookie::from_bytes(&c.to_bytes()), Ok(c));
}

fn param() -> FractalParameter {
    FractalParameter {
        width: 640,
        height: 480,
        max_iterations: 1024,
        algorithm: FractalAlgorithm::MANDELBROT,
        c1_real: -2.0,
        c1_imag: 1.25,
        c2_real: 0.5,
        c2_imag: -1.25,
        n: 2.0,
    }
}

#[test]
fn fractal_parameter_is_60_bytes_with_big_endian_doubles() {
    let m = FractalMessage::Parameter(param());
    let b = enc(m.encoded_len(), |b| m.encode(b));
    assert_eq!(b.len(), 60);
    assert_eq!(&b[20..28], &(-2.0f64).to_bits().to_be_bytes());
    assert_eq!(FractalMessage::decode(&b), Ok(m));
    let cookie = FractalCookie {
        parameter: param(),
        current_x: 10,
        current_y: 20,
    };
    let cb = cookie.to_bytes();
    assert_eq!(cb.len(), 76);
    assert_eq!(FractalCookie::from_bytes(&cb), Ok(cookie));
}

#[test]
fn fractal_data_respects_the_point_limit() {
    let m = FractalMessage::Data {
        start_x: 1,
        start_y: 2,
        points: vec![5; FGP_MAX_POINTS],
    };
    let b = enc(m.encoded_len(), |b| m.encode(b));
    assert_eq!(b.len(), 16 + 4 * FGP_MAX_POINTS);
    assert_eq!(FractalMessage::decode(&b), Ok(m));
    let too_many = FractalMessage::Data {
        start_x: 0,
        start_y: 0,
        points: vec![0; FGP_MAX_POINTS + 1],
    };
    let mut out = vec![0; too_many.encoded_len()];
    assert_eq!(too_many.encode(&mut out), Err(EncodeError::TooLong));
    let mut bad = b.clone();
    bad[12..16].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(
        FractalMessage::decode(&bad),
        Err(ServiceDecodeError::InvalidValue)
    );
    let done = FractalMessage::done();
    let b = enc(done.encoded_len(), |b| done.encode(b));
    assert_eq!(&b[4..12], &[0xff; 8]);
}

#[test]
fn scripting_messages_round_trip_with_fixed_info_fields() {
    let all = vec![
        ScriptingMessage::NotReady {
            reason: 1,
            info: b"busy".to_vec(),
        },
        ScriptingMessage::Ready {
            info: b"ready".to_vec(),
        },
        ScriptingMessage::Upload(vec![1; 100]),
        ScriptingMessage::Download(vec![]),
        ScriptingMessage::KeepAlive,
        ScriptingMessage::KeepAliveAck { status: 3 },
        ScriptingMessage::Status { status: 0 },
        ScriptingMessage::Environment {
            upload_needed: true,
            hash: [7; 20],
        },
    ];
    let lens = [72, 68, 104, 4, 4, 8, 8, 24];
    for (m, l) in all.into_iter().zip(lens) {
        let b = enc(m.encoded_len(), |b| m.encode(b));
        assert_eq!(b.len(), l, "{m:?}");
        assert_eq!(ScriptingMessage::decode(&b), Ok(m));
    }
    let long = ScriptingMessage::Ready {
        info: vec![b'x'; 65],
    };
    let mut out = vec![0; long.encoded_len()];
    assert_eq!(long.encode(&mut out), Err(EncodeError::TooLong));
}

#[test]
fn component_status_report_has_the_csp_layout() {
    let r = ComponentStatusReport {
        final_report: false,
        sender_id: component_group::compound(component_group::REGISTRAR, 0x1234),
        sender_timestamp: 1_700_000_000_000_000,
        report_interval: 5_000_000,
        location: b"lab".to_vec(),
        status: b"3 PEs".to_vec(),
        workload: ComponentStatusReport::workload_from_fraction(0.5),
        associations: vec![ComponentAssociation {
            receiver_id: 2,
            duration: u64::MAX,
            flags: 0,
            protocol_id: 132,
            ppid: 11,
        }],
    };
    let b = enc(r.encoded_len(), |b| r.encode(b));
    assert_eq!(b.len(), 288 + 24);
    assert_eq!(&b[4..8], &[0, 0, 2, 0]);
    assert_eq!(
        b[8], 0x01,
        "the registrar group sits in the top byte of the sender id"
    );
    assert_eq!(&b[14..16], &[0x12, 0x34]);
    assert_eq!(ComponentStatusReport::decode(&b), Ok(r.clone()));
    assert!((r.workload_fraction().expect("known") - 0.5).abs() < 1e-4);
    let mut v = b.clone();
    v[7] = 1;
    assert_eq!(
        ComponentStatusReport::decode(&v),
        Err(ServiceDecodeError::InvalidValue)
    );
    // An association count beyond the message is an error, not a panic or huge allocation.
    let mut v = b;
    v[286..288].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(
        ComponentStatusReport::decode(&v),
        Err(ServiceDecodeError::Truncated)
    );
}

proptest! {
    #[test]
    fn decoders_never_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = PingPongMessage::decode(&b);
        let _ = CalcAppMessage::decode(&b);
        let _ = FractalMessage::decode(&b);
        let _ = ScriptingMessage::decode(&b);
        let _ = ComponentStatusReport::decode(&b);
        let _ = FractalCookie::from_bytes(&b);
    }

    #[test]
    fn pingpong_round_trips(no in any::<u64>(), rn in any::<u64>(), data in prop::collection::vec(any::<u8>(), 0..100), pong in any::<bool>()) {
        let m = if pong {
            PingPongMessage::Pong { message_no: no, reply_no: rn, data }
        } else {
            PingPongMessage::Ping { message_no: no, data }
        };
        let mut b = vec![0; m.encoded_len()];
        m.encode(&mut b).expect("encode");
        prop_assert_eq!(PingPongMessage::decode(&b), Ok(m));
    }
}
