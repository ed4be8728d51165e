//! Malformed input yields a clean, specific error value: truncation, impossible lengths,
//! zero-length chunks, missing padding, bad checksums, wrong types, bad layouts.

use sctp_stack::wire::{
    Cause, ChecksumPolicy, Chunk, ChunkRepr, Data, Encode, Heartbeat, Init, Packet, Param,
    ParseError, RawCause, RawChunk, RawParam, Sack, Shutdown, write_checksum,
};

/// A packet: common header (ports 1/2, tag 3) followed by `chunks`, checksum filled in.
fn packet(chunks: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0];
    p.extend_from_slice(chunks);
    write_checksum(&mut p).expect("header");
    p
}

fn first_chunk(p: &[u8]) -> RawChunk<'_> {
    Packet::new_checked(p)
        .expect("structure")
        .chunks()
        .next()
        .expect("a chunk")
}

#[test]
fn a_packet_shorter_than_the_common_header_is_truncated() {
    for n in 0..12 {
        assert_eq!(
            Packet::new_checked(&[0u8; 12][..n]),
            Err(ParseError::Truncated {
                what: "common header",
                offset: 0
            })
        );
    }
}

#[test]
fn a_packet_without_chunks_is_structurally_valid_and_empty() {
    let p = packet(&[]);
    let pkt = Packet::new_verified(&p, ChecksumPolicy::default()).expect("valid");
    assert_eq!(pkt.chunks().count(), 0);
}

#[test]
fn an_incomplete_chunk_header_is_truncated_at_its_offset() {
    let p = packet(&[11, 0]);
    assert_eq!(
        Packet::new_checked(&p),
        Err(ParseError::Truncated {
            what: "chunk header",
            offset: 12
        })
    );
}

#[test]
fn zero_length_chunks_are_rejected() {
    for len in 0u8..4 {
        let p = packet(&[11, 0, 0, len]);
        assert_eq!(
            Packet::new_checked(&p),
            Err(ParseError::BadLength {
                what: "chunk",
                offset: 12
            }),
            "length {len}"
        );
    }
    // The same after a valid first chunk: the offset points at the bad one.
    let p = packet(&[11, 0, 0, 4, 11, 0, 0, 0]);
    assert_eq!(
        Packet::new_checked(&p),
        Err(ParseError::BadLength {
            what: "chunk",
            offset: 16
        })
    );
}

#[test]
fn a_chunk_length_beyond_the_packet_is_rejected() {
    let p = packet(&[7, 0, 0, 12, 0, 0, 0, 1]);
    assert_eq!(
        Packet::new_checked(&p),
        Err(ParseError::BadLength {
            what: "chunk",
            offset: 12
        })
    );
}

#[test]
fn a_last_chunk_without_its_padding_is_bad_padding() {
    // COOKIE ECHO with a 1-byte cookie: length 5, the packet ends after it.
    let p = packet(&[10, 0, 0, 5, 0xAB]);
    assert_eq!(
        Packet::new_checked(&p),
        Err(ParseError::BadPadding { offset: 17 })
    );
    // With its 3 padding bytes it is fine.
    let p = packet(&[10, 0, 0, 5, 0xAB, 0, 0, 0]);
    let pkt = Packet::new_checked(&p).expect("padded");
    assert_eq!(pkt.chunks().next().expect("chunk").value(), &[0xAB]);
}

#[test]
fn trailing_bytes_shorter_than_a_chunk_header_are_truncated() {
    let p = packet(&[11, 0, 0, 4, 0, 0]);
    assert!(matches!(
        Packet::new_checked(&p),
        Err(ParseError::Truncated { offset: 16, .. })
    ));
}

#[test]
fn a_corrupted_packet_fails_the_checksum_with_both_values() {
    let mut p = packet(&[11, 0, 0, 4]);
    p[13] = 1; // flip a flag bit after the checksum was computed
    let pkt = Packet::new_checked(&p).expect("structure is fine");
    match pkt.verify_checksum(ChecksumPolicy::default()) {
        Err(ParseError::BadChecksum { stored, computed }) => assert_ne!(stored, computed),
        other => panic!("expected BadChecksum, got {other:?}"),
    }
    assert!(Packet::new_verified(&p, ChecksumPolicy::ZERO_ACCEPTABLE).is_err());
}

#[test]
fn a_zero_checksum_passes_only_under_the_rfc_9653_policy() {
    let mut p = packet(&[11, 0, 0, 4]);
    p[8..12].fill(0);
    assert!(Packet::new_verified(&p, ChecksumPolicy::default()).is_err());
    assert!(Packet::new_verified(&p, ChecksumPolicy::ZERO_ACCEPTABLE).is_ok());
}

#[test]
fn typed_parsers_reject_chunks_of_another_type() {
    let p = packet(&[11, 0, 0, 4]);
    let raw = first_chunk(&p);
    assert_eq!(
        Data::parse(&raw),
        Err(ParseError::UnexpectedType {
            expected: 0,
            found: 11
        })
    );
    assert_eq!(
        <Sack<'_> as ChunkRepr<'_>>::parse_raw(&raw),
        Err(ParseError::UnexpectedType {
            expected: 3,
            found: 11
        })
    );
}

#[test]
fn a_data_chunk_shorter_than_its_header_is_truncated() {
    let p = packet(&[0, 3, 0, 15, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let raw = first_chunk(&p);
    assert!(matches!(
        Data::parse(&raw),
        Err(ParseError::Truncated { what: "DATA", .. })
    ));
}

#[test]
fn an_empty_data_chunk_parses_so_the_association_can_abort_with_no_user_data() {
    let p = packet(&[0, 3, 0, 16, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0]);
    let d = Data::parse(&first_chunk(&p)).expect("parses");
    assert!(d.payload.is_empty());
    assert_eq!(d.tsn.get(), 9);
}

#[test]
fn a_sack_whose_counts_exceed_its_length_is_rejected() {
    // N = 2 gap blocks announced, one present.
    let p = packet(&[3, 0, 0, 20, 0, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0, 0, 0, 2, 0, 3]);
    assert_eq!(
        Sack::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "SACK gap blocks",
            offset: 12
        })
    );
}

#[test]
fn a_sack_with_bytes_beyond_its_counts_is_rejected() {
    let p = packet(&[3, 0, 0, 20, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 9, 9, 9, 9]);
    assert!(matches!(
        Sack::parse(&first_chunk(&p)),
        Err(ParseError::BadLength { what: "SACK", .. })
    ));
}

#[test]
fn fixed_size_chunks_with_the_wrong_length_are_rejected() {
    let p = packet(&[7, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2]);
    assert!(matches!(
        Shutdown::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "SHUTDOWN",
            ..
        })
    ));
    let p = packet(&[8, 0, 0, 8, 0, 0, 0, 1]);
    assert!(matches!(
        Chunk::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "SHUTDOWN ACK",
            ..
        })
    ));
}

#[test]
fn a_heartbeat_without_heartbeat_info_is_invalid() {
    // The parameter is a State Cookie instead.
    let p = packet(&[4, 0, 0, 12, 0, 7, 0, 8, 1, 2, 3, 4]);
    assert_eq!(
        Heartbeat::parse(&first_chunk(&p)),
        Err(ParseError::InvalidValue {
            what: "Heartbeat Info parameter"
        })
    );
    // No parameter at all.
    let p = packet(&[4, 0, 0, 4]);
    assert!(matches!(
        Heartbeat::parse(&first_chunk(&p)),
        Err(ParseError::Truncated { .. })
    ));
}

fn init_with_params(params: &[u8], chunk_len_extra: i32) -> Vec<u8> {
    let mut c = vec![1, 0, 0, 0];
    c.extend_from_slice(&[0, 0, 0, 1, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1]);
    c.extend_from_slice(params);
    let len = (c.len() as i32 + chunk_len_extra) as u16;
    c[2..4].copy_from_slice(&len.to_be_bytes());
    while c.len() % 4 != 0 {
        c.push(0);
    }
    packet(&c)
}

#[test]
fn a_parameter_shorter_than_its_header_is_rejected() {
    let p = init_with_params(&[0x80, 0, 0, 2], 0);
    assert_eq!(
        Init::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "parameter",
            offset: 0
        })
    );
}

#[test]
fn a_parameter_longer_than_its_chunk_is_rejected() {
    let p = init_with_params(&[0, 5, 0, 12, 127, 0, 0, 1], 0);
    assert_eq!(
        Init::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "parameter",
            offset: 0
        })
    );
}

#[test]
fn a_partial_parameter_header_at_the_end_of_a_chunk_is_truncated() {
    let p = init_with_params(&[0x80, 0, 0, 4, 0xC0, 0], 0);
    assert_eq!(
        Init::parse(&first_chunk(&p)),
        Err(ParseError::Truncated {
            what: "parameter",
            offset: 4
        })
    );
}

#[test]
fn the_last_parameters_padding_may_be_counted_in_the_chunk_length() {
    // Cookie Preservative would be exact; use a 5-byte Host Name Address (length 9) as
    // the last parameter, once without and once with its 3 padding bytes counted.
    let params = [0, 11, 0, 9, b'h', b'o', b's', b't', 0, 0, 0, 0];
    let excluded = init_with_params(&params[..9], 0);
    let included = init_with_params(&params, 0);
    let a = Init::parse(&first_chunk(&excluded)).expect("padding excluded");
    let b = Init::parse(&first_chunk(&included)).expect("padding included");
    assert_eq!(a, b);
    assert_eq!(
        a.params.iter().collect::<Vec<_>>(),
        vec![Ok(Param::HostNameAddress(b"host\0"))]
    );
    // Either way we re-encode the RFC 9260 §3.2 form: the last padding is not counted.
    let mut buf = [0u8; 64];
    let n = b.encode(&mut buf).expect("encode");
    assert_eq!(n, 32);
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 29);
    assert_eq!(&buf[..n], &excluded[12..]);
}

#[test]
fn malformed_known_parameters_are_reported_per_item() {
    // IPv4 Address with a 5-byte value, then a valid ECN Capable.
    let p = init_with_params(&[0, 5, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0, 0x80, 0, 0, 4], 0);
    let init = Init::parse(&first_chunk(&p)).expect("structure is fine");
    let items: Vec<_> = init.params.iter().collect();
    assert_eq!(items.len(), 2);
    assert!(matches!(
        items[0],
        Err(ParseError::BadLength {
            what: "IPV4_ADDRESS",
            ..
        })
    ));
    assert_eq!(items[1], Ok(Param::EcnCapable));
}

#[test]
fn parameter_lists_of_the_wrong_item_size_are_rejected() {
    // Supported Address Types with 3 bytes of value.
    let raw = RawParam::new_checked(&[0, 12, 0, 7, 0, 5, 0]).expect("tlv");
    assert!(matches!(
        Param::parse(&raw),
        Err(ParseError::BadLength { .. })
    ));
    // Re-configuration Response with one of its two optional TSNs.
    let raw =
        RawParam::new_checked(&[0, 16, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]).expect("tlv");
    assert!(matches!(
        Param::parse(&raw),
        Err(ParseError::Truncated { .. })
    ));
    // Add IP Address whose address parameter is not an address.
    let raw =
        RawParam::new_checked(&[0xC0, 1, 0, 16, 0, 0, 0, 1, 0, 7, 0, 8, 1, 2, 3, 4]).expect("tlv");
    assert_eq!(
        Param::parse(&raw),
        Err(ParseError::InvalidValue {
            what: "address parameter type"
        })
    );
}

#[test]
fn a_missing_mandatory_parameter_count_must_match_its_list() {
    let raw = RawCause::new_checked(&[0, 2, 0, 10, 0, 0, 0, 2, 0, 7]).expect("tlv");
    assert!(matches!(
        Cause::parse(&raw),
        Err(ParseError::BadLength { .. })
    ));
    let raw = RawCause::new_checked(&[0, 2, 0, 12, 0, 0, 0, 2, 0, 7, 0, 9]).expect("tlv");
    assert!(matches!(
        Cause::parse(&raw),
        Ok(Cause::MissingMandatoryParameter { missing }) if missing.len() == 2
    ));
}

#[test]
fn an_abort_with_a_bad_cause_length_is_rejected() {
    let p = packet(&[6, 1, 0, 8, 0, 12, 0, 2]);
    assert_eq!(
        Chunk::parse(&first_chunk(&p)),
        Err(ParseError::BadLength {
            what: "error cause",
            offset: 0
        })
    );
}

#[test]
fn encoding_into_a_short_buffer_fails_cleanly() {
    let d = Data {
        tsn: sctp_stack::serial::Tsn(1),
        stream_id: 0,
        ssn: sctp_stack::serial::Ssn(0),
        ppid: sctp_stack::wire::Ppid(0),
        immediate_sack: false,
        unordered: false,
        beginning: true,
        ending: true,
        payload: &[1, 2, 3],
    };
    let mut buf = [0u8; 19];
    assert_eq!(
        d.encode(&mut buf),
        Err(sctp_stack::wire::EncodeError::BufferTooSmall {
            needed: 20,
            available: 19
        })
    );
}

#[test]
fn values_too_long_for_a_length_field_fail_to_encode() {
    let big = vec![0u8; 70_000];
    let c = sctp_stack::wire::CookieEcho { cookie: &big };
    let mut buf = vec![0u8; 80_000];
    assert!(matches!(
        c.encode(&mut buf),
        Err(sctp_stack::wire::EncodeError::TooLong { .. })
    ));
}

#[test]
fn raw_iterators_walk_a_region_and_stop_at_the_first_malformed_tlv() {
    use sctp_stack::wire::{CauseCode, ParamType, write_tlv};
    let mut region = [0u8; 32];
    let mut n = write_tlv(&mut region, CauseCode::USER_INITIATED_ABORT.0, b"bye").expect("room");
    assert_eq!(n, 8);
    assert_eq!(&region[..8], &[0, 12, 0, 7, b'b', b'y', b'e', 0]);
    n += write_tlv(&mut region[n..], CauseCode::OUT_OF_RESOURCE.0, &[]).expect("room");
    region[n..n + 4].copy_from_slice(&[0, 1, 0, 2]); // length 2: malformed
    let items: Vec<_> = RawCause::iter(&region[..n + 4]).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].map(|c| (c.code(), c.value())),
        Ok((CauseCode::USER_INITIATED_ABORT, &b"bye"[..]))
    );
    assert_eq!(items[1].map(|c| c.code()), Ok(CauseCode::OUT_OF_RESOURCE));
    assert!(matches!(
        items[2],
        Err(ParseError::BadLength { offset: 12, .. })
    ));

    let params: Vec<_> = RawParam::iter(&region[..8]).collect();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0].map(|p| p.param_type()), Ok(ParamType(12)));
    assert_eq!(params[0].map(|p| p.as_bytes().len()), Ok(7));
    assert!(write_tlv(&mut [0u8; 7], 1, b"bye").is_err());
}
