//! Property tests of the wire format: every typed chunk, parameter and cause survives
//! encode -> parse unchanged, encoding is canonical (parse -> encode reproduces the
//! bytes), and arbitrary bytes never make a parser panic.

use proptest::collection::vec;
use proptest::prelude::*;

use sctp_stack::serial::{AsconfSerial, Fsn, Mid, ReconfigSeq, Ssn, Tsn};
use sctp_stack::wire::{
    Abort, Asconf, AsconfAck, Auth, Cause, CauseCode, ChecksumPolicy, Chunk, ChunkType,
    CommonHeader, CookieAck, CookieEcho, Cwr, Data, Ecne, Edmid, Encode, ErrorChunk, FixedList,
    ForwardTsn, ForwardTsnStream, GapAckBlock, Heartbeat, HeartbeatAck, HmacId, IData, IForwardTsn,
    IForwardTsnStream, Init, InitAck, Packet, PacketBuilder, Pad, Param, ParamType, Ppid, RawCause,
    RawChunk, RawParam, ReConfig, ReconfigResult, Sack, Shutdown, ShutdownAck, ShutdownComplete,
    TlvList,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------
// Owned specifications from which borrowed values are built.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ]
}

/// A TLV with an unknown 16-bit type, as bytes.
fn unknown_tlv16(known: fn(u16) -> bool) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>().prop_filter("unknown type", move |t| !known(*t)),
        bytes(40),
    )
        .prop_map(|(t, v)| {
            let mut b = t.to_be_bytes().to_vec();
            b.extend_from_slice(&((v.len() + 4) as u16).to_be_bytes());
            b.extend_from_slice(&v);
            b
        })
}

#[derive(Debug, Clone)]
enum CauseSpec {
    InvalidStream(u16),
    Missing(Vec<u16>),
    Stale(u32),
    OutOfResource,
    Unresolvable(Vec<u8>),
    UnrecognizedChunk(Vec<u8>),
    InvalidMandatory,
    UnrecognizedParams(Vec<u8>),
    NoUserData(u32),
    CookieWhileShuttingDown,
    Restart(Vec<u8>),
    UserAbort(Vec<u8>),
    Violation(Vec<u8>),
    Asconf(u16, Vec<u8>),
    Hmac(u16),
    Unknown(Vec<u8>),
}

fn cause_spec() -> impl Strategy<Value = CauseSpec> {
    prop_oneof![
        any::<u16>().prop_map(CauseSpec::InvalidStream),
        vec(any::<u16>(), 0..8).prop_map(CauseSpec::Missing),
        any::<u32>().prop_map(CauseSpec::Stale),
        Just(CauseSpec::OutOfResource),
        bytes(24).prop_map(CauseSpec::Unresolvable),
        bytes(24).prop_map(CauseSpec::UnrecognizedChunk),
        Just(CauseSpec::InvalidMandatory),
        bytes(24).prop_map(CauseSpec::UnrecognizedParams),
        any::<u32>().prop_map(CauseSpec::NoUserData),
        Just(CauseSpec::CookieWhileShuttingDown),
        bytes(24).prop_map(CauseSpec::Restart),
        bytes(24).prop_map(CauseSpec::UserAbort),
        bytes(24).prop_map(CauseSpec::Violation),
        (0xA0u16..=0xA4, bytes(24)).prop_map(|(c, b)| CauseSpec::Asconf(c, b)),
        any::<u16>().prop_map(CauseSpec::Hmac),
        unknown_tlv16(|t| CauseCode(t).is_known()).prop_map(CauseSpec::Unknown),
    ]
}

/// Reinterprets a `u16` list as parameter types (same layout).
fn param_types(v: &[u16]) -> Vec<ParamType> {
    v.iter().map(|&t| ParamType(t)).collect()
}

impl CauseSpec {
    fn cause<'a>(&'a self, types: &'a [ParamType]) -> Cause<'a> {
        match self {
            CauseSpec::InvalidStream(s) => Cause::InvalidStreamIdentifier { stream_id: *s },
            CauseSpec::Missing(_) => Cause::MissingMandatoryParameter {
                missing: FixedList::from_items(types),
            },
            CauseSpec::Stale(s) => Cause::StaleCookie { staleness_us: *s },
            CauseSpec::OutOfResource => Cause::OutOfResource,
            CauseSpec::Unresolvable(b) => Cause::UnresolvableAddress(b),
            CauseSpec::UnrecognizedChunk(b) => Cause::UnrecognizedChunkType(b),
            CauseSpec::InvalidMandatory => Cause::InvalidMandatoryParameter,
            CauseSpec::UnrecognizedParams(b) => Cause::UnrecognizedParameters(b),
            CauseSpec::NoUserData(t) => Cause::NoUserData { tsn: Tsn(*t) },
            CauseSpec::CookieWhileShuttingDown => Cause::CookieReceivedWhileShuttingDown,
            CauseSpec::Restart(b) => Cause::RestartWithNewAddresses(b),
            CauseSpec::UserAbort(b) => Cause::UserInitiatedAbort(b),
            CauseSpec::Violation(b) => Cause::ProtocolViolation(b),
            CauseSpec::Asconf(c, b) => match *c {
                0xA0 => Cause::DeleteLastRemainingAddress(b),
                0xA1 => Cause::ResourceShortage(b),
                0xA2 => Cause::DeleteSourceAddress(b),
                0xA3 => Cause::IllegalAsconfAck(b),
                _ => Cause::NoAuthorization(b),
            },
            CauseSpec::Hmac(h) => Cause::UnsupportedHmacIdentifier {
                hmac_id: HmacId(*h),
            },
            CauseSpec::Unknown(tlv) => Cause::Unknown(RawCause::new_checked(tlv).expect("tlv")),
        }
    }

    fn types(&self) -> Vec<ParamType> {
        match self {
            CauseSpec::Missing(v) => param_types(v),
            _ => Vec::new(),
        }
    }
}

/// Encodes a list of causes as received bytes (for nesting inside a parameter).
fn encode_causes(specs: &[CauseSpec]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in specs {
        let types = s.types();
        let c = s.cause(&types);
        let mut buf = vec![0u8; c.encoded_len()];
        let n = c.encode(&mut buf).expect("encode cause");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[derive(Debug, Clone)]
enum ParamSpec {
    HeartbeatInfo(Vec<u8>),
    V4([u8; 4]),
    V6([u8; 16]),
    Cookie(Vec<u8>),
    Unrecognized(Vec<u8>),
    Preservative(u32),
    HostName(Vec<u8>),
    AddrTypes(Vec<u16>),
    OutgoingReset(u32, u32, u32, Vec<u16>),
    IncomingReset(u32, Vec<u16>),
    SsnTsnReset(u32),
    ReconfigResponse(u32, u32, Option<(u32, u32)>),
    AddOutgoing(u32, u16),
    AddIncoming(u32, u16),
    Ecn,
    ZeroChecksum(u32),
    Random(Vec<u8>),
    ChunkList(Vec<u8>),
    Hmacs(Vec<u16>),
    Padding(u16),
    Extensions(Vec<u8>),
    ForwardTsn,
    AddIp(u32, IpAddr),
    DeleteIp(u32, IpAddr),
    ErrorIndication(u32, Vec<u8>),
    SetPrimary(u32, IpAddr),
    Success(u32),
    Adaptation(u32),
    Unknown(Vec<u8>),
}

fn param_spec() -> impl Strategy<Value = ParamSpec> {
    prop_oneof![
        bytes(40).prop_map(ParamSpec::HeartbeatInfo),
        any::<[u8; 4]>().prop_map(ParamSpec::V4),
        any::<[u8; 16]>().prop_map(ParamSpec::V6),
        bytes(64).prop_map(ParamSpec::Cookie),
        bytes(24).prop_map(ParamSpec::Unrecognized),
        any::<u32>().prop_map(ParamSpec::Preservative),
        bytes(24).prop_map(ParamSpec::HostName),
        vec(any::<u16>(), 0..5).prop_map(ParamSpec::AddrTypes),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            vec(any::<u16>(), 0..7)
        )
            .prop_map(|(a, b, c, d)| ParamSpec::OutgoingReset(a, b, c, d)),
        (any::<u32>(), vec(any::<u16>(), 0..7)).prop_map(|(a, b)| ParamSpec::IncomingReset(a, b)),
        any::<u32>().prop_map(ParamSpec::SsnTsnReset),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<(u32, u32)>())
        )
            .prop_map(|(a, b, c)| ParamSpec::ReconfigResponse(a, b, c)),
        (any::<u32>(), any::<u16>()).prop_map(|(a, b)| ParamSpec::AddOutgoing(a, b)),
        (any::<u32>(), any::<u16>()).prop_map(|(a, b)| ParamSpec::AddIncoming(a, b)),
        Just(ParamSpec::Ecn),
        any::<u32>().prop_map(ParamSpec::ZeroChecksum),
        bytes(48).prop_map(ParamSpec::Random),
        bytes(12).prop_map(ParamSpec::ChunkList),
        vec(any::<u16>(), 0..5).prop_map(ParamSpec::Hmacs),
        (0u16..40).prop_map(ParamSpec::Padding),
        bytes(12).prop_map(ParamSpec::Extensions),
        Just(ParamSpec::ForwardTsn),
        (any::<u32>(), ip()).prop_map(|(a, b)| ParamSpec::AddIp(a, b)),
        (any::<u32>(), ip()).prop_map(|(a, b)| ParamSpec::DeleteIp(a, b)),
        (any::<u32>(), vec(cause_spec(), 0..4))
            .prop_map(|(a, c)| ParamSpec::ErrorIndication(a, encode_causes(&c))),
        (any::<u32>(), ip()).prop_map(|(a, b)| ParamSpec::SetPrimary(a, b)),
        any::<u32>().prop_map(ParamSpec::Success),
        any::<u32>().prop_map(ParamSpec::Adaptation),
        unknown_tlv16(|t| ParamType(t).is_known()).prop_map(ParamSpec::Unknown),
    ]
}

/// Storage for the typed lists a parameter borrows.
#[derive(Default)]
struct Lists {
    types: Vec<ParamType>,
    chunks: Vec<ChunkType>,
    hmacs: Vec<HmacId>,
}

impl ParamSpec {
    fn lists(&self) -> Lists {
        let mut l = Lists::default();
        match self {
            ParamSpec::AddrTypes(v) => l.types = param_types(v),
            ParamSpec::ChunkList(v) | ParamSpec::Extensions(v) => {
                l.chunks = v.iter().map(|&t| ChunkType(t)).collect()
            }
            ParamSpec::Hmacs(v) => l.hmacs = v.iter().map(|&h| HmacId(h)).collect(),
            _ => {}
        }
        l
    }

    fn param<'a>(&'a self, l: &'a Lists) -> Param<'a> {
        match self {
            ParamSpec::HeartbeatInfo(b) => Param::HeartbeatInfo(b),
            ParamSpec::V4(o) => Param::Ipv4Address(Ipv4Addr::from(*o)),
            ParamSpec::V6(o) => Param::Ipv6Address(Ipv6Addr::from(*o)),
            ParamSpec::Cookie(b) => Param::StateCookie(b),
            ParamSpec::Unrecognized(b) => Param::UnrecognizedParameter(b),
            ParamSpec::Preservative(v) => Param::CookiePreservative(*v),
            ParamSpec::HostName(b) => Param::HostNameAddress(b),
            ParamSpec::AddrTypes(_) => {
                Param::SupportedAddressTypes(FixedList::from_items(&l.types))
            }
            ParamSpec::OutgoingReset(a, b, c, s) => Param::OutgoingSsnResetRequest {
                request_seq: ReconfigSeq(*a),
                response_seq: ReconfigSeq(*b),
                last_tsn: Tsn(*c),
                streams: FixedList::from_items(s),
            },
            ParamSpec::IncomingReset(a, s) => Param::IncomingSsnResetRequest {
                request_seq: ReconfigSeq(*a),
                streams: FixedList::from_items(s),
            },
            ParamSpec::SsnTsnReset(a) => Param::SsnTsnResetRequest {
                request_seq: ReconfigSeq(*a),
            },
            ParamSpec::ReconfigResponse(a, r, n) => Param::ReconfigResponse {
                response_seq: ReconfigSeq(*a),
                result: ReconfigResult(*r),
                next_tsns: n.map(|(s, r)| (Tsn(s), Tsn(r))),
            },
            ParamSpec::AddOutgoing(a, n) => Param::AddOutgoingStreamsRequest {
                request_seq: ReconfigSeq(*a),
                new_streams: *n,
            },
            ParamSpec::AddIncoming(a, n) => Param::AddIncomingStreamsRequest {
                request_seq: ReconfigSeq(*a),
                new_streams: *n,
            },
            ParamSpec::Ecn => Param::EcnCapable,
            ParamSpec::ZeroChecksum(e) => Param::ZeroChecksumAcceptable(Edmid(*e)),
            ParamSpec::Random(b) => Param::Random(b),
            ParamSpec::ChunkList(_) => Param::ChunkList(FixedList::from_items(&l.chunks)),
            ParamSpec::Hmacs(_) => Param::RequestedHmacAlgorithms(FixedList::from_items(&l.hmacs)),
            ParamSpec::Padding(n) => Param::Padding(*n),
            ParamSpec::Extensions(_) => {
                Param::SupportedExtensions(FixedList::from_items(&l.chunks))
            }
            ParamSpec::ForwardTsn => Param::ForwardTsnSupported,
            ParamSpec::AddIp(c, a) => Param::AddIpAddress {
                correlation_id: *c,
                address: *a,
            },
            ParamSpec::DeleteIp(c, a) => Param::DeleteIpAddress {
                correlation_id: *c,
                address: *a,
            },
            ParamSpec::ErrorIndication(c, wire) => Param::ErrorCauseIndication {
                correlation_id: *c,
                causes: TlvList::from_bytes(wire).expect("encoded causes"),
            },
            ParamSpec::SetPrimary(c, a) => Param::SetPrimaryAddress {
                correlation_id: *c,
                address: *a,
            },
            ParamSpec::Success(c) => Param::SuccessIndication { correlation_id: *c },
            ParamSpec::Adaptation(a) => Param::AdaptationLayerIndication(*a),
            ParamSpec::Unknown(tlv) => Param::Unknown(RawParam::new_checked(tlv).expect("tlv")),
        }
    }
}

/// Builds the typed params of a list of specs; `f` gets the slice.
fn with_params<R>(specs: &[ParamSpec], f: impl FnOnce(&[Param<'_>]) -> R) -> R {
    let lists: Vec<Lists> = specs.iter().map(ParamSpec::lists).collect();
    let params: Vec<Param<'_>> = specs.iter().zip(&lists).map(|(s, l)| s.param(l)).collect();
    f(&params)
}

fn with_causes<R>(specs: &[CauseSpec], f: impl FnOnce(&[Cause<'_>]) -> R) -> R {
    let types: Vec<Vec<ParamType>> = specs.iter().map(CauseSpec::types).collect();
    let causes: Vec<Cause<'_>> = specs.iter().zip(&types).map(|(s, t)| s.cause(t)).collect();
    f(&causes)
}

// ---------------------------------------------------------------------------------------
// Round-trip checks.

/// Encodes `chunk`, checks the length bookkeeping, parses it back (typed and through a
/// packet), compares, and checks that re-encoding the parsed value gives the same bytes.
fn check_chunk(chunk: &Chunk<'_>) -> Result<(), TestCaseError> {
    let mut buf = vec![0xAAu8; chunk.encoded_len() + 8];
    let n = chunk
        .encode(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(n, chunk.encoded_len());
    prop_assert_eq!(n % 4, 0);
    let len_field = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    prop_assert_eq!(len_field, chunk.tlv_len());
    prop_assert!(buf[len_field..n].iter().all(|&b| b == 0), "padding is zero");
    prop_assert_eq!(buf[0], chunk.chunk_type().0);
    let raw = RawChunk::new_checked(&buf[..n]).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let parsed = Chunk::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&parsed, chunk);
    let mut again = vec![0u8; n];
    prop_assert_eq!(parsed.encode(&mut again), Ok(n));
    prop_assert_eq!(&again[..], &buf[..n]);
    // Too small a buffer is an error, never a panic or a partial success.
    if n > 0 {
        let mut short = vec![0u8; n - 1];
        prop_assert!(chunk.encode(&mut short).is_err());
    }
    Ok(())
}

fn check_param(p: &Param<'_>) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; p.encoded_len()];
    let n = p
        .encode(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(n, p.encoded_len());
    prop_assert_eq!(
        usize::from(u16::from_be_bytes([buf[2], buf[3]])),
        p.tlv_len()
    );
    let raw = RawParam::new_checked(&buf).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(raw.param_type(), p.param_type());
    let parsed = Param::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&parsed, p);
    let mut again = vec![0u8; n];
    prop_assert_eq!(parsed.encode(&mut again), Ok(n));
    prop_assert_eq!(again, buf);
    Ok(())
}

fn check_cause(c: &Cause<'_>) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; c.encoded_len()];
    let n = c
        .encode(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(n, c.encoded_len());
    let raw = RawCause::new_checked(&buf).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(raw.code(), c.code());
    let parsed = Cause::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&parsed, c);
    let mut again = vec![0u8; n];
    prop_assert_eq!(parsed.encode(&mut again), Ok(n));
    prop_assert_eq!(again, buf);
    Ok(())
}

/// Parses arbitrary bytes at every level without panicking; whatever parses re-encodes
/// into something that parses to the same values again (encode/decode stability).
fn parse_everything(bytes: &[u8]) {
    let _ = sctp_stack::wire::verify_checksum(bytes, ChecksumPolicy::default());
    let Ok(pkt) = Packet::new_checked(bytes) else {
        return;
    };
    let _ = pkt.header();
    let _ = pkt.checksum();
    for raw in pkt.chunks() {
        let _ = raw.chunk_type().unknown_action();
        if let Ok(chunk) = Chunk::parse(&raw) {
            visit(&chunk);
            let mut buf = vec![0u8; chunk.encoded_len()];
            if let Ok(n) = chunk.encode(&mut buf) {
                let raw2 = RawChunk::new_checked(&buf[..n]).expect("own encoding is well formed");
                let chunk2 = Chunk::parse(&raw2).expect("own encoding parses");
                assert_eq!(chunk2, chunk);
                let mut buf2 = vec![0u8; n];
                assert_eq!(chunk2.encode(&mut buf2), Ok(n));
                assert_eq!(buf2, buf[..n]);
            }
        }
    }
}

fn visit(chunk: &Chunk<'_>) {
    let params = match chunk {
        Chunk::Init(c) => Some(c.params),
        Chunk::InitAck(c) => Some(c.params),
        Chunk::Asconf(c) => Some(c.params),
        Chunk::AsconfAck(c) => Some(c.params),
        Chunk::ReConfig(c) => Some(c.params),
        _ => None,
    };
    for p in params.iter().flat_map(|l| l.iter()).flatten() {
        let _ = p.param_type().unknown_action();
        if let Param::ErrorCauseIndication { causes, .. } = p {
            for c in causes.iter().flatten() {
                let _ = c.code();
            }
        }
    }
    let causes = match chunk {
        Chunk::Abort(c) => Some(c.causes),
        Chunk::ErrorChunk(c) => Some(c.causes),
        _ => None,
    };
    for c in causes.iter().flat_map(|l| l.iter()).flatten() {
        let _ = c.code();
    }
    if let Chunk::Sack(s) = chunk {
        let _ = s.gap_blocks.iter().count() + s.duplicate_tsns.iter().count();
    }
}

// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_parameter_round_trips(spec in param_spec()) {
        let l = spec.lists();
        check_param(&spec.param(&l))?;
    }

    #[test]
    fn every_cause_round_trips(spec in cause_spec()) {
        let t = spec.types();
        check_cause(&spec.cause(&t))?;
    }

    #[test]
    fn data_round_trips(tsn: u32, sid: u16, ssn: u16, ppid: u32, f in any::<[bool; 4]>(),
                        payload in bytes(300)) {
        check_chunk(&Chunk::Data(Data {
            tsn: Tsn(tsn), stream_id: sid, ssn: Ssn(ssn), ppid: Ppid(ppid),
            immediate_sack: f[0], unordered: f[1], beginning: f[2], ending: f[3],
            payload: &payload,
        }))?;
    }

    #[test]
    fn i_data_round_trips(tsn: u32, sid: u16, mid: u32, word: u32, f in any::<[bool; 4]>(),
                          payload in bytes(300)) {
        let (ppid, fsn) = if f[2] { (Ppid(word), Fsn(0)) } else { (Ppid(0), Fsn(word)) };
        check_chunk(&Chunk::IData(IData {
            tsn: Tsn(tsn), stream_id: sid, mid: Mid(mid), ppid, fsn,
            immediate_sack: f[0], unordered: f[1], beginning: f[2], ending: f[3],
            payload: &payload,
        }))?;
    }

    #[test]
    fn init_and_init_ack_round_trip(tag: u32, rwnd: u32, os: u16, mis: u16, tsn: u32,
                                    specs in vec(param_spec(), 0..8)) {
        with_params(&specs, |params| -> Result<(), TestCaseError> {
            let list = TlvList::from_items(params);
            check_chunk(&Chunk::Init(Init {
                initiate_tag: tag, a_rwnd: rwnd, outbound_streams: os, inbound_streams: mis,
                initial_tsn: Tsn(tsn), params: list,
            }))?;
            check_chunk(&Chunk::InitAck(InitAck {
                initiate_tag: tag, a_rwnd: rwnd, outbound_streams: os, inbound_streams: mis,
                initial_tsn: Tsn(tsn), params: list,
            }))
        })?;
    }

    #[test]
    fn sack_round_trips(cum: u32, rwnd: u32, gaps in vec(any::<(u16, u16)>(), 0..120),
                        dups in vec(any::<u32>(), 0..40)) {
        let gaps: Vec<GapAckBlock> = gaps.into_iter().map(|(start, end)| GapAckBlock { start, end }).collect();
        let dups: Vec<Tsn> = dups.into_iter().map(Tsn).collect();
        check_chunk(&Chunk::Sack(Sack {
            cumulative_tsn_ack: Tsn(cum), a_rwnd: rwnd,
            gap_blocks: FixedList::from_items(&gaps), duplicate_tsns: FixedList::from_items(&dups),
        }))?;
    }

    #[test]
    fn heartbeats_round_trip(info in bytes(200)) {
        check_chunk(&Chunk::Heartbeat(Heartbeat { info: &info }))?;
        check_chunk(&Chunk::HeartbeatAck(HeartbeatAck { info: &info }))?;
    }

    #[test]
    fn abort_and_error_round_trip(t: bool, specs in vec(cause_spec(), 0..6)) {
        with_causes(&specs, |causes| -> Result<(), TestCaseError> {
            check_chunk(&Chunk::Abort(Abort { tag_reflected: t, causes: TlvList::from_items(causes) }))?;
            check_chunk(&Chunk::ErrorChunk(ErrorChunk { causes: TlvList::from_items(causes) }))
        })?;
    }

    #[test]
    fn small_control_chunks_round_trip(tsn: u32, t: bool, cookie in bytes(200), pad in 0u16..200) {
        check_chunk(&Chunk::Shutdown(Shutdown { cumulative_tsn_ack: Tsn(tsn) }))?;
        check_chunk(&Chunk::ShutdownAck(ShutdownAck))?;
        check_chunk(&Chunk::CookieEcho(CookieEcho { cookie: &cookie }))?;
        check_chunk(&Chunk::CookieAck(CookieAck))?;
        check_chunk(&Chunk::Ecne(Ecne { lowest_tsn: Tsn(tsn) }))?;
        check_chunk(&Chunk::Cwr(Cwr { lowest_tsn: Tsn(tsn) }))?;
        check_chunk(&Chunk::ShutdownComplete(ShutdownComplete { tag_reflected: t }))?;
        check_chunk(&Chunk::Pad(Pad { padding_len: pad }))?;
    }

    #[test]
    fn auth_round_trips(key: u16, hmac_id: u16, hmac in bytes(64)) {
        check_chunk(&Chunk::Auth(Auth { shared_key_id: key, hmac_id: HmacId(hmac_id), hmac: &hmac }))?;
    }

    #[test]
    fn asconf_and_asconf_ack_round_trip(serial: u32, addr in ip(), specs in vec(param_spec(), 0..6)) {
        with_params(&specs, |params| -> Result<(), TestCaseError> {
            check_chunk(&Chunk::Asconf(Asconf {
                serial: AsconfSerial(serial), address: addr, params: TlvList::from_items(params),
            }))?;
            check_chunk(&Chunk::AsconfAck(AsconfAck {
                serial: AsconfSerial(serial), params: TlvList::from_items(params),
            }))
        })?;
    }

    #[test]
    fn forward_tsns_round_trip(cum: u32, s in vec(any::<(u16, u16)>(), 0..20),
                               i in vec(any::<(u16, bool, u32)>(), 0..20)) {
        let s: Vec<ForwardTsnStream> = s.into_iter().map(|(stream_id, ssn)| ForwardTsnStream { stream_id, ssn: Ssn(ssn) }).collect();
        let i: Vec<IForwardTsnStream> = i.into_iter().map(|(stream_id, unordered, mid)| IForwardTsnStream { stream_id, unordered, mid: Mid(mid) }).collect();
        check_chunk(&Chunk::ForwardTsn(ForwardTsn { new_cumulative_tsn: Tsn(cum), streams: FixedList::from_items(&s) }))?;
        check_chunk(&Chunk::IForwardTsn(IForwardTsn { new_cumulative_tsn: Tsn(cum), streams: FixedList::from_items(&i) }))?;
    }

    #[test]
    fn re_config_round_trips(specs in vec(param_spec(), 1..3)) {
        with_params(&specs, |params| check_chunk(&Chunk::ReConfig(ReConfig { params: TlvList::from_items(params) })))?;
    }

    #[test]
    fn unknown_chunks_are_kept_raw_and_round_trip(
        ty in any::<u8>().prop_filter("unknown", |t| !ChunkType(*t).is_known()),
        flags: u8, value in bytes(64)
    ) {
        let mut tlv = vec![ty, flags];
        tlv.extend_from_slice(&((value.len() + 4) as u16).to_be_bytes());
        tlv.extend_from_slice(&value);
        let raw = RawChunk::new_checked(&tlv).expect("tlv");
        let chunk = Chunk::parse(&raw).expect("unknown chunks parse");
        prop_assert!(matches!(chunk, Chunk::Unknown(_)));
        check_chunk(&chunk)?;
    }

    #[test]
    fn bundled_packets_round_trip_with_a_valid_checksum(
        sport: u16, dport: u16, tag: u32,
        tsns in vec(any::<u32>(), 1..6), payload in bytes(200), mtu in 64usize..1500
    ) {
        let mut buf = vec![0u8; 1500];
        let header = CommonHeader { source_port: sport, destination_port: dport, verification_tag: tag };
        let mut b = PacketBuilder::new(&mut buf, mtu, header).expect("mtu >= 12");
        let mut pushed = Vec::new();
        for &t in &tsns {
            let d = Data { tsn: Tsn(t), stream_id: 1, ssn: Ssn(2), ppid: Ppid(3),
                immediate_sack: false, unordered: false, beginning: true, ending: true, payload: &payload };
            match b.push(&d) {
                Ok(()) => pushed.push(d),
                Err(sctp_stack::wire::EncodeError::DoesNotFit { needed, remaining }) => {
                    prop_assert!(needed > remaining);
                    prop_assert_eq!(needed, d.encoded_len());
                    break;
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
        }
        let n = b.finish();
        prop_assert!(n <= mtu);
        let pkt = Packet::new_verified(&buf[..n], ChecksumPolicy::default()).expect("valid packet");
        prop_assert_eq!(pkt.header(), header);
        let parsed: Vec<Data<'_>> = pkt.chunks().map(|r| Data::parse(&r).expect("DATA")).collect();
        prop_assert_eq!(parsed, pushed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(400)) {
        parse_everything(&data);
    }

    #[test]
    fn arbitrary_chunk_values_never_panic(ty in prop_oneof![Just(0u8), 1u8..=15, Just(0x40), Just(0x80),
                                                           Just(0x82), Just(0x84), 0xC0u8..=0xC2],
                                          flags: u8, value in bytes(120)) {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[ty, flags]);
        p.extend_from_slice(&((value.len() + 4) as u16).to_be_bytes());
        p.extend_from_slice(&value);
        while p.len() % 4 != 0 { p.push(0); }
        parse_everything(&p);
    }

    #[test]
    fn arbitrary_param_lists_inside_init_never_panic(
        params in vec((prop_oneof![1u16..=18, 0x8000u16..=0x8008, 0xC000u16..=0xC006], bytes(24)), 0..6)
    ) {
        let mut value = vec![0u8; 16];
        for (t, v) in &params {
            value.extend_from_slice(&t.to_be_bytes());
            value.extend_from_slice(&((v.len() + 4) as u16).to_be_bytes());
            value.extend_from_slice(v);
            while value.len() % 4 != 0 { value.push(0); }
        }
        for ty in [1u8, 2, 0x80, 0x82, 0xC1] {
            let mut p = vec![0u8; 12];
            p.extend_from_slice(&[ty, 0]);
            p.extend_from_slice(&((value.len() + 4) as u16).to_be_bytes());
            p.extend_from_slice(&value);
            parse_everything(&p);
        }
    }
}
