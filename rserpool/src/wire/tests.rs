use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn sctp(port: u16, addrs: &[IpAddr]) -> TransportParameter {
    TransportParameter::sctp(port, TransportUse::DATA_PLUS_CONTROL, addrs.to_vec())
}

fn pe(id: u32) -> PoolElement {
    PoolElement {
        identifier: PeIdentifier(id),
        home_registrar: RegistrarId(0x1234_5678),
        registration_life: 90_000,
        user_transport: sctp(
            7,
            &[
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        ),
        policy: PolicyInfo {
            load: 0x8000_0000,
            load_degradation: 0x0100_0000,
            ..PolicyInfo::new(PolicyType::LEAST_USED_DEGRADATION)
        },
        asap_transport: None,
    }
}

fn encode_asap(m: &AsapMessage) -> Vec<u8> {
    let mut buf = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut buf).expect("encode");
    assert_eq!(n, buf.len());
    buf
}

#[test]
fn registration_has_the_rfc_layout() {
    let m = AsapMessage::Registration {
        pool_handle: PoolHandle::from("EchoPool"),
        pool_element: pe(0xdead_beef),
    };
    let b = encode_asap(&m);
    assert_eq!(b[0], 0x01, "type REGISTRATION");
    assert_eq!(u16::from_be_bytes([b[2], b[3]]) as usize, b.len());
    // Pool handle TLV: type 9, length 4 + 8.
    assert_eq!(&b[4..8], &[0x00, 0x09, 0x00, 12]);
    assert_eq!(&b[8..16], b"EchoPool");
    // Pool element TLV follows with the PE identifier first.
    assert_eq!(&b[16..18], &[0x00, 0x0a]);
    assert_eq!(&b[20..24], &0xdead_beefu32.to_be_bytes());
    let d = AsapMessage::decode(&b).expect("decode");
    assert_eq!(d.message, m);
    assert!(d.report.is_empty());
}

#[test]
fn pool_handle_of_odd_length_is_padded_but_length_excludes_padding() {
    let m = AsapMessage::HandleResolution {
        pool_handle: PoolHandle::from("abcde"),
        items: Some(3),
    };
    let b = encode_asap(&m);
    assert_eq!(&b[4..8], &[0x00, 0x09, 0x00, 9]);
    assert_eq!(&b[13..16], &[0, 0, 0], "padding is zero");
    // The handle resolution option keeps its "skip" action bits.
    assert_eq!(&b[16..20], &[0x80, 0x3f, 0x00, 0x08]);
    assert_eq!(AsapMessage::decode(&b).expect("decode").message, m);
}

#[test]
fn pe_checksum_parameter_is_sixteen_bits_long() {
    let m = EnrpMessage {
        sender: RegistrarId(1),
        receiver: RegistrarId(2),
        body: EnrpBody::Presence {
            reply_required: true,
            checksum: 0xabcd,
            server_information: ServerInformation {
                server_id: RegistrarId(1),
                transport: sctp(9901, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            },
        },
    };
    let mut b = vec![0; m.encoded_len()];
    m.encode(&mut b).expect("encode");
    assert_eq!(b[1], 0x01, "flag R");
    assert_eq!(&b[12..18], &[0x00, 0x0f, 0x00, 0x06, 0xab, 0xcd]);
    assert_eq!(EnrpMessage::decode(&b).expect("decode").message, m);
}

#[test]
fn unknown_parameter_with_skip_bits_is_skipped_and_reported_when_asked() {
    let m = AsapMessage::Deregistration {
        pool_handle: PoolHandle::from("P"),
        identifier: PeIdentifier(5),
    };
    let mut b = encode_asap(&m);
    // Append an unknown "skip and report" parameter and a "skip" one.
    b.extend_from_slice(&[0xc1, 0x23, 0x00, 0x05, 0xaa, 0, 0, 0]);
    b.extend_from_slice(&[0x81, 0x24, 0x00, 0x04]);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    let d = AsapMessage::decode(&b).expect("decode");
    assert_eq!(d.message, m);
    assert_eq!(d.report, vec![vec![0xc1, 0x23, 0x00, 0x05, 0xaa, 0, 0, 0]]);
}

#[test]
fn unknown_parameter_with_stop_bits_stops_decoding() {
    for (hi, report) in [(0x01u8, false), (0x41, true)] {
        let mut b = encode_asap(&AsapMessage::Cookie { cookie: vec![1, 2] });
        let at = b.len();
        b.extend_from_slice(&[hi, 0x77, 0x00, 0x04]);
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        let e = AsapMessage::decode(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnrecognizedParameter {
                ty: ParameterType(u16::from_be_bytes([hi, 0x77])),
                report,
                offset: at,
                len: 4
            }
        );
        assert_eq!(e.cause_code().is_some(), report);
    }
}

#[test]
fn unknown_message_type_maps_to_unrecognized_message_cause() {
    let b = [0x42, 0, 0, 4];
    let e = AsapMessage::decode(&b).unwrap_err();
    assert_eq!(e, DecodeError::UnrecognizedMessage(0x42));
    assert_eq!(e.cause_code(), Some(CauseCode::UNRECOGNIZED_MESSAGE));
    assert_eq!(
        EnrpMessage::decode(&[0x0b, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
        DecodeError::UnrecognizedMessage(0x0b)
    );
}

#[test]
fn length_fields_that_overrun_are_rejected() {
    assert_eq!(AsapMessage::decode(&[1, 0]), Err(DecodeError::Truncated));
    assert_eq!(
        AsapMessage::decode(&[1, 0, 0, 3]),
        Err(DecodeError::BadLength { offset: 0 })
    );
    assert_eq!(
        AsapMessage::decode(&[1, 0, 0, 9, 0, 0, 0, 0]),
        Err(DecodeError::BadLength { offset: 0 })
    );
    // A parameter claiming more bytes than the message has.
    assert_eq!(
        AsapMessage::decode(&[5, 0, 0, 8, 0, 9, 0, 9]),
        Err(DecodeError::BadLength { offset: 4 })
    );
    // A parameter length below its header.
    assert_eq!(
        AsapMessage::decode(&[5, 0, 0, 8, 0, 9, 0, 2]),
        Err(DecodeError::BadLength { offset: 4 })
    );
}

#[test]
fn missing_and_malformed_parameters_are_reported_precisely() {
    assert_eq!(
        AsapMessage::decode(&[5, 0, 0, 4]),
        Err(DecodeError::MissingParameter(ParameterType::POOL_HANDLE))
    );
    // PE identifier of 2 bytes.
    let b = [2, 0, 0, 14, 0, 9, 0, 5, b'x', 0, 0, 0, 0, 0x0e];
    assert!(AsapMessage::decode(&b).is_err());
    let b = [2, 0, 0, 16, 0, 9, 0, 5, b'x', 0, 0, 0, 0, 0x0e, 0, 6];
    let b2: Vec<u8> = b.iter().copied().chain([0xaa, 0xbb]).collect();
    let mut b2 = b2;
    b2[3] = 18;
    assert_eq!(
        AsapMessage::decode(&b2),
        Err(DecodeError::InvalidValue {
            ty: ParameterType::PE_IDENTIFIER,
            offset: 12
        })
    );
    // IPv4 address parameter with 5 bytes.
    let mut t = sctp(1, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    t.addresses.clear();
    let mut buf = vec![0u8; t.encoded_len()];
    t.encode(&mut buf).expect("encode");
    buf.extend_from_slice(&[0, 1, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0]);
    let l = buf.len() as u16;
    buf[2..4].copy_from_slice(&l.to_be_bytes());
    let p = Parameters::new(&buf, 0).next().expect("one").expect("ok");
    assert!(matches!(
        TransportParameter::decode(&p, &mut Vec::new()),
        Err(DecodeError::InvalidValue { .. })
    ));
}

#[test]
fn operation_error_carries_causes_with_their_information() {
    let m = AsapMessage::Error {
        error: OperationError {
            causes: vec![
                ErrorCause::with_info(CauseCode::UNRECOGNIZED_PARAMETER, &[0x41, 0x77, 0, 5, 9]),
                ErrorCause::new(CauseCode::LACK_OF_RESOURCES),
            ],
        },
    };
    let b = encode_asap(&m);
    // Cause 1 length 9, padded to 12.
    assert_eq!(&b[8..12], &[0, 1, 0, 9]);
    assert_eq!(&b[20..24], &[0, 6, 0, 4]);
    assert_eq!(AsapMessage::decode(&b).expect("decode").message, m);
}

#[test]
fn v4_mapped_ipv6_addresses_are_sent_as_ipv4_parameters() {
    let t = sctp(
        1,
        &[IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped())],
    );
    let mut b = vec![0; t.encoded_len()];
    t.encode(&mut b).expect("encode");
    assert_eq!(&b[8..12], &[0, 1, 0, 8]);
}

#[test]
fn encode_into_a_short_buffer_fails_without_panicking() {
    let m = AsapMessage::Cookie {
        cookie: vec![0; 100],
    };
    let mut b = vec![0; 50];
    assert_eq!(
        m.encode(&mut b),
        Err(EncodeError::BufferTooSmall { needed: 108 })
    );
    let huge = AsapMessage::Cookie {
        cookie: vec![0; 70_000],
    };
    let mut b = vec![0; huge.encoded_len()];
    assert_eq!(huge.encode(&mut b), Err(EncodeError::TooLong));
}

#[test]
fn every_policy_type_has_rsplib_field_count() {
    let n = |t| PolicyInfo::fields(t).map(|f| f.len());
    assert_eq!(n(PolicyType::ROUND_ROBIN), Some(0));
    assert_eq!(n(PolicyType::PRIORITY), Some(1));
    assert_eq!(n(PolicyType::LEAST_USED_DEGRADATION), Some(2));
    assert_eq!(n(PolicyType::LEAST_USED_DPF), Some(3));
    assert_eq!(n(PolicyType::LEAST_USED_DEGRADATION_DPF), Some(4));
    assert_eq!(n(PolicyType::WEIGHTED_RANDOM_DPF), Some(3));
    assert_eq!(n(PolicyType(0x7777)), None);
    // A short known policy is invalid; an unknown one keeps its bytes.
    let short = [0, 8, 0, 8, 0, 0, 0, 2];
    let p = Parameters::new(&short, 0).next().expect("one").expect("ok");
    assert!(PolicyInfo::decode(&p).is_err());
    let unk = [0, 8, 0, 10, 0, 0, 0x77, 0x77, 1, 2, 0, 0];
    let p = Parameters::new(&unk, 0).next().expect("one").expect("ok");
    let info = PolicyInfo::decode(&p).expect("unknown policy");
    assert_eq!(info.opaque, vec![1, 2]);
    let mut out = vec![0; info.encoded_len()];
    info.encode(&mut out).expect("encode");
    assert_eq!(out, unk);
}

#[test]
fn codepoints_print_names_or_hex() {
    assert_eq!(
        format!("{:?}", AsapMessageType::REGISTRATION),
        "REGISTRATION"
    );
    assert_eq!(
        format!("{:?}", ParameterType(0x1234)),
        "ParameterType(0x1234)"
    );
    assert_eq!(ParameterType(0x1234).action(), UnrecognizedAction::Stop);
    assert_eq!(
        ParameterType(0x5234).action(),
        UnrecognizedAction::StopAndReport
    );
    assert_eq!(ParameterType(0x9234).action(), UnrecognizedAction::Skip);
    assert_eq!(
        ParameterType(0xd234).action(),
        UnrecognizedAction::SkipAndReport
    );
    assert_eq!(
        format!("{:?}", PolicyType(0xb000_2001)),
        "WeightedRandomDPF"
    );
}

// ---- property round-trips ----

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>()
            .prop_filter("not v4-mapped", |o| Ipv6Addr::from(*o)
                .to_ipv4_mapped()
                .is_none())
            .prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ]
}

fn arb_transport() -> impl Strategy<Value = TransportParameter> {
    (
        prop_oneof![
            Just(TransportProtocol::Sctp),
            Just(TransportProtocol::Tcp),
            Just(TransportProtocol::Udp),
            Just(TransportProtocol::UdpLite),
            Just(TransportProtocol::Dccp),
        ],
        any::<u16>(),
        0u16..2,
        any::<u32>(),
        prop::collection::vec(arb_addr(), 0..4),
    )
        .prop_map(|(protocol, port, u, sc, addresses)| TransportParameter {
            protocol,
            port,
            transport_use: TransportUse(u),
            dccp_service_code: if protocol == TransportProtocol::Dccp {
                sc
            } else {
                0
            },
            addresses,
        })
}

const ALL_POLICIES: [u32; 18] = [
    1,
    2,
    3,
    4,
    5,
    0x4000_0001,
    0x4000_0002,
    0x4000_0003,
    0x4000_0004,
    0xb000_1001,
    0xb000_1002,
    0xb000_1003,
    0xb000_1004,
    0xb000_2001,
    0xb000_2002,
    0xb000_2003,
    0xb000_2004,
    0xb000_2005,
];

fn arb_policy() -> impl Strategy<Value = PolicyInfo> {
    (
        prop_oneof![prop::sample::select(ALL_POLICIES.to_vec()), any::<u32>()],
        any::<[u32; 5]>(),
        prop::collection::vec(any::<u8>(), 0..9),
    )
        .prop_map(|(t, f, opaque)| {
            let ty = PolicyType(t);
            let mut p = PolicyInfo::new(ty);
            match PolicyInfo::fields(ty) {
                Some(fields) => {
                    for (i, field) in fields.iter().enumerate() {
                        let v = f[i];
                        match field {
                            PolicyField::Weight | PolicyField::Priority => p.weight = v,
                            PolicyField::Load => p.load = v,
                            PolicyField::LoadDegradation => p.load_degradation = v,
                            PolicyField::Dpf => p.dpf = v,
                            PolicyField::Distance => p.distance = v,
                        }
                    }
                }
                None => p.opaque = opaque,
            }
            p
        })
}

fn arb_pe() -> impl Strategy<Value = PoolElement> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        arb_transport(),
        arb_policy(),
        prop::option::of(arb_transport()),
    )
        .prop_map(|(id, home, life, ut, policy, at)| PoolElement {
            identifier: PeIdentifier(id),
            home_registrar: RegistrarId(home),
            registration_life: life,
            user_transport: ut,
            policy,
            asap_transport: at,
        })
}

fn arb_handle() -> impl Strategy<Value = PoolHandle> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(|v| PoolHandle::new(&v))
}

fn arb_error() -> impl Strategy<Value = OperationError> {
    prop::collection::vec(
        (1u16..12, prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(c, info)| ErrorCause {
            code: CauseCode(c),
            info,
        }),
        0..3,
    )
    .prop_map(|causes| OperationError { causes })
}

fn arb_asap() -> impl Strategy<Value = AsapMessage> {
    let id = any::<u32>().prop_map(PeIdentifier);
    prop_oneof![
        (arb_handle(), arb_pe()).prop_map(|(pool_handle, pool_element)| {
            AsapMessage::Registration {
                pool_handle,
                pool_element,
            }
        }),
        (arb_handle(), id.clone()).prop_map(|(pool_handle, identifier)| {
            AsapMessage::Deregistration {
                pool_handle,
                identifier,
            }
        }),
        (
            any::<bool>(),
            arb_handle(),
            id.clone(),
            prop::option::of(arb_error())
        )
            .prop_map(|(reject, pool_handle, identifier, error)| {
                AsapMessage::RegistrationResponse {
                    reject,
                    pool_handle,
                    identifier,
                    error,
                }
            }),
        (arb_handle(), id.clone(), prop::option::of(arb_error())).prop_map(
            |(pool_handle, identifier, error)| AsapMessage::DeregistrationResponse {
                pool_handle,
                identifier,
                error
            }
        ),
        (arb_handle(), prop::option::of(any::<u32>()))
            .prop_map(|(pool_handle, items)| AsapMessage::HandleResolution { pool_handle, items }),
        (
            arb_handle(),
            prop::option::of(arb_policy()),
            prop::collection::vec(arb_pe(), 0..4),
            prop::option::of(arb_error())
        )
            .prop_map(|(pool_handle, policy, pool_elements, error)| {
                AsapMessage::HandleResolutionResponse {
                    pool_handle,
                    policy,
                    pool_elements,
                    error,
                }
            }),
        (
            any::<bool>(),
            any::<u32>(),
            arb_handle(),
            prop::option::of(id.clone())
        )
            .prop_map(|(home, s, pool_handle, identifier)| {
                AsapMessage::EndpointKeepAlive {
                    home,
                    server_id: RegistrarId(s),
                    pool_handle,
                    identifier,
                }
            }),
        (arb_handle(), id.clone()).prop_map(|(pool_handle, identifier)| {
            AsapMessage::EndpointKeepAliveAck {
                pool_handle,
                identifier,
            }
        }),
        (arb_handle(), id).prop_map(|(pool_handle, identifier)| {
            AsapMessage::EndpointUnreachable {
                pool_handle,
                identifier,
            }
        }),
        (any::<u32>(), prop::collection::vec(arb_transport(), 0..3)).prop_map(|(s, transports)| {
            AsapMessage::ServerAnnounce {
                server_id: RegistrarId(s),
                transports,
            }
        }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|cookie| AsapMessage::Cookie { cookie }),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|cookie| AsapMessage::CookieEcho { cookie }),
        (
            arb_handle(),
            arb_policy(),
            prop::collection::vec(arb_pe(), 0..3)
        )
            .prop_map(
                |(pool_handle, policy, pool_elements)| AsapMessage::BusinessCard {
                    pool_handle,
                    policy,
                    pool_elements
                }
            ),
        arb_error().prop_map(|error| AsapMessage::Error { error }),
    ]
}

fn arb_server_info() -> impl Strategy<Value = ServerInformation> {
    (any::<u32>(), arb_transport()).prop_map(|(s, transport)| ServerInformation {
        server_id: RegistrarId(s),
        transport,
    })
}

fn arb_enrp() -> impl Strategy<Value = EnrpMessage> {
    let body = prop_oneof![
        (any::<bool>(), any::<u16>(), arb_server_info()).prop_map(|(r, c, s)| {
            EnrpBody::Presence {
                reply_required: r,
                checksum: c,
                server_information: s,
            }
        }),
        any::<bool>().prop_map(|w| EnrpBody::HandleTableRequest {
            own_children_only: w
        }),
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((arb_handle(), prop::collection::vec(arb_pe(), 0..3)), 0..3)
        )
            .prop_map(
                |(reject, more_to_send, pools)| EnrpBody::HandleTableResponse {
                    reject,
                    more_to_send,
                    pools
                }
            ),
        (any::<bool>(), 0u16..2, arb_handle(), arb_pe()).prop_map(|(t, a, ph, pe)| {
            EnrpBody::HandleUpdate {
                takeover_suggested: t,
                action: UpdateAction(a),
                pool_handle: ph,
                pool_element: pe,
            }
        }),
        Just(EnrpBody::ListRequest),
        (
            any::<bool>(),
            prop::collection::vec(arb_server_info(), 0..3)
        )
            .prop_map(|(reject, servers)| EnrpBody::ListResponse { reject, servers }),
        any::<u32>().prop_map(|t| EnrpBody::InitTakeover {
            target: RegistrarId(t)
        }),
        any::<u32>().prop_map(|t| EnrpBody::InitTakeoverAck {
            target: RegistrarId(t)
        }),
        any::<u32>().prop_map(|t| EnrpBody::TakeoverServer {
            target: RegistrarId(t)
        }),
        arb_error().prop_map(|error| EnrpBody::Error { error }),
    ];
    (any::<u32>(), any::<u32>(), body).prop_map(|(s, r, body)| EnrpMessage {
        sender: RegistrarId(s),
        receiver: RegistrarId(r),
        body,
    })
}

proptest! {
    #[test]
    fn asap_messages_round_trip(m in arb_asap()) {
        let mut b = vec![0u8; m.encoded_len()];
        prop_assert_eq!(m.encode(&mut b), Ok(b.len()));
        prop_assert_eq!(b.len() % 4, 0);
        let d = AsapMessage::decode(&b).expect("decode");
        prop_assert_eq!(d.message, m);
        prop_assert!(d.report.is_empty());
    }

    #[test]
    fn enrp_messages_round_trip(m in arb_enrp()) {
        let mut b = vec![0u8; m.encoded_len()];
        prop_assert_eq!(m.encode(&mut b), Ok(b.len()));
        let d = EnrpMessage::decode(&b).expect("decode");
        prop_assert_eq!(d.message, m);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(b in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = AsapMessage::decode(&b);
        let _ = EnrpMessage::decode(&b);
    }

    #[test]
    fn truncating_a_valid_message_gives_an_error_not_a_panic(m in arb_asap(), cut in 0usize..400) {
        let mut b = vec![0u8; m.encoded_len()];
        m.encode(&mut b).expect("encode");
        let cut = cut.min(b.len());
        let r = AsapMessage::decode(&b[..cut]);
        if cut < b.len() {
            prop_assert!(r.is_err());
        }
    }
}
