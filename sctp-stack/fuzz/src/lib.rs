//! Checks shared by the fuzz targets of `sctp-stack`.
//!
//! Wire targets call [`parse_packet_everywhere`] (every parser, every accessor) and
//! [`check_roundtrip`] (whatever parses re-encodes to bytes that parse to the same values,
//! and re-encoding is idempotent). Later endpoint targets add their drivers here.
//!
//! The crate is built with `cfg(fuzzing)`, under which `sctp_stack::wire::verify_checksum`
//! accepts every checksum so the fuzzer reaches the chunk parsers.

use sctp_stack::wire::{
    Cause, ChecksumPolicy, Chunk, Encode, Packet, PacketBuilder, Param, RawCause, RawChunk,
    RawParam, TlvList,
};

/// Walks every typed view of a parameter list.
fn visit_params(list: &TlvList<'_, Param<'_>>) {
    for p in list.iter().flatten() {
        let _ = p.param_type().unknown_action();
        let _ = p.encoded_len();
        if let Param::ErrorCauseIndication { causes, .. } = p {
            visit_causes(&causes);
        }
        match p {
            Param::SupportedAddressTypes(l) => l.iter().for_each(drop),
            Param::ChunkList(l) | Param::SupportedExtensions(l) => l.iter().for_each(drop),
            Param::RequestedHmacAlgorithms(l) => l.iter().for_each(drop),
            Param::OutgoingSsnResetRequest { streams, .. }
            | Param::IncomingSsnResetRequest { streams, .. } => streams.iter().for_each(drop),
            _ => {}
        }
    }
}

fn visit_causes(list: &TlvList<'_, Cause<'_>>) {
    for c in list.iter().flatten() {
        let _ = c.code();
        if let Cause::MissingMandatoryParameter { missing } = c {
            missing.iter().for_each(drop);
        }
    }
}

/// Walks every typed view of a chunk.
pub fn visit_chunk(chunk: &Chunk<'_>) {
    match chunk {
        Chunk::Init(c) => visit_params(&c.params),
        Chunk::InitAck(c) => {
            visit_params(&c.params);
            let _ = c.state_cookie();
        }
        Chunk::Asconf(c) => visit_params(&c.params),
        Chunk::AsconfAck(c) => visit_params(&c.params),
        Chunk::ReConfig(c) => visit_params(&c.params),
        Chunk::Abort(c) => visit_causes(&c.causes),
        Chunk::ErrorChunk(c) => visit_causes(&c.causes),
        Chunk::Sack(s) => {
            s.gap_blocks.iter().for_each(drop);
            s.duplicate_tsns.iter().for_each(drop);
        }
        Chunk::ForwardTsn(f) => f.streams.iter().for_each(drop),
        Chunk::IForwardTsn(f) => f.streams.iter().for_each(drop),
        Chunk::Unknown(raw) => {
            let _ = raw.chunk_type().unknown_action();
        }
        _ => {}
    }
}

/// Parses `data` as a packet at every level; returns the number of chunks that parsed.
pub fn parse_packet_everywhere(data: &[u8]) -> usize {
    let _ = sctp_stack::wire::verify_checksum(data, ChecksumPolicy::default());
    let _ = sctp_stack::wire::verify_checksum(data, ChecksumPolicy::ZERO_ACCEPTABLE);
    let Ok(pkt) = Packet::new_checked(data) else {
        return 0;
    };
    let _ = (pkt.header(), pkt.checksum());
    let mut n = 0;
    for raw in pkt.chunks() {
        let _ = (raw.flags(), raw.value(), raw.as_bytes());
        if let Ok(chunk) = Chunk::parse(&raw) {
            visit_chunk(&chunk);
            n += 1;
        }
    }
    n
}

/// Parses `data` as a lone parameter and as a lone cause.
pub fn parse_tlvs(data: &[u8]) {
    if let Ok(raw) = RawParam::new_checked(data) {
        if let Ok(p) = Param::parse(&raw) {
            check_encoding(&p, |b| {
                let raw = RawParam::new_checked(b).expect("own parameter encoding is a TLV");
                Param::parse(&raw).expect("own parameter encoding parses") == p
            });
            if let Param::ErrorCauseIndication { causes, .. } = p {
                visit_causes(&causes);
            }
        }
    }
    if let Ok(raw) = RawCause::new_checked(data) {
        if let Ok(c) = Cause::parse(&raw) {
            check_encoding(&c, |b| {
                let raw = RawCause::new_checked(b).expect("own cause encoding is a TLV");
                Cause::parse(&raw).expect("own cause encoding parses") == c
            });
        }
    }
    // As raw walks, the way an association copies unrecognized items into reports.
    for p in RawParam::iter(data).flatten() {
        let _ = (p.param_type(), p.value(), p.as_bytes());
    }
    for c in RawCause::iter(data).flatten() {
        let _ = (c.code(), c.value(), c.as_bytes());
    }
    // As a list, the way chunks carry them.
    if let Ok(list) = TlvList::<Param<'_>>::from_bytes(data) {
        visit_params(&list);
    }
    if let Ok(list) = TlvList::<Cause<'_>>::from_bytes(data) {
        visit_causes(&list);
    }
}

/// Encodes `value`, checks the length bookkeeping and that `same` holds for the bytes,
/// then that re-encoding what they parse to is idempotent (done by `same`'s caller).
fn check_encoding<E: Encode>(value: &E, same: impl Fn(&[u8]) -> bool) {
    let mut buf = vec![0u8; value.encoded_len()];
    match value.encode(&mut buf) {
        Ok(n) => {
            assert_eq!(n, value.encoded_len(), "encode wrote encoded_len bytes");
            assert_eq!(n % 4, 0, "encodings are padded");
            assert!(same(&buf[..n]), "encode -> parse changed the value");
        }
        // Values parsed from a packet always fit their length fields again.
        Err(e) => panic!("a parsed value failed to encode: {e}"),
    }
}

/// Encode/decode stability: every chunk that parses re-encodes into bytes that parse to
/// an equal value and re-encode identically; the whole packet rebuilt with
/// [`PacketBuilder`] parses back to the same chunks with a valid checksum.
pub fn check_roundtrip(data: &[u8]) {
    let Ok(pkt) = Packet::new_checked(data) else {
        return;
    };
    let chunks: Vec<Chunk<'_>> = pkt.chunks().filter_map(|r| Chunk::parse(&r).ok()).collect();
    for chunk in &chunks {
        let mut first = vec![0u8; chunk.encoded_len()];
        let n = chunk.encode(&mut first).expect("a parsed chunk encodes");
        assert_eq!(n, chunk.encoded_len());
        let raw = RawChunk::new_checked(&first[..n]).expect("own chunk encoding is well formed");
        let again = Chunk::parse(&raw).expect("own chunk encoding parses");
        assert_eq!(&again, chunk, "encode -> parse changed the chunk");
        let mut second = vec![0u8; n];
        assert_eq!(again.encode(&mut second), Ok(n));
        assert_eq!(first, second, "re-encoding is not idempotent");
    }
    let total: usize = 12 + chunks.iter().map(Encode::encoded_len).sum::<usize>();
    let mut buf = vec![0u8; total];
    let mut b = PacketBuilder::new(&mut buf, total, pkt.header()).expect("room for the header");
    for c in &chunks {
        b.push(c).expect("sized to fit");
    }
    let n = b.finish();
    assert_eq!(n, total);
    let rebuilt = Packet::new_checked(&buf[..n]).expect("rebuilt packet is well formed");
    assert!(sctp_stack::wire::compute_checksum(&buf[..n]) == Some(rebuilt.checksum()));
    let reparsed: Vec<Chunk<'_>> = rebuilt
        .chunks()
        .map(|r| Chunk::parse(&r).expect("rebuilt chunk parses"))
        .collect();
    assert_eq!(reparsed, chunks);
}
