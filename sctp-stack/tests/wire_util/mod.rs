//! Helpers shared by the wire integration tests: a small pcap reader that extracts SCTP
//! packets (raw over IP or UDP-encapsulated) from captures taken with dumpcap/tshark or
//! written by `sctp_stack::pcap::PcapWriter`.
#![allow(dead_code)]

/// One SCTP packet found in a capture.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Index of the record in the capture (0-based).
    pub record: usize,
    /// UDP (source, destination) ports when the packet was UDP-encapsulated.
    pub udp_ports: Option<(u16, u16)>,
    /// The SCTP packet, from the common header on.
    pub sctp: Vec<u8>,
}

fn rd16(b: &[u8], at: usize, le: bool) -> Result<u16, String> {
    let s: [u8; 2] = b
        .get(at..at + 2)
        .ok_or("truncated")?
        .try_into()
        .map_err(|_| "truncated")?;
    Ok(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn rd32(b: &[u8], at: usize, le: bool) -> Result<u32, String> {
    let s: [u8; 4] = b
        .get(at..at + 4)
        .ok_or("truncated")?
        .try_into()
        .map_err(|_| "truncated")?;
    Ok(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// Reads a classic pcap file (either byte order, micro- or nanosecond) with link type
/// Ethernet (1), raw IP (101) or Linux cooked (113), and returns every SCTP packet carried
/// directly over IP (protocol 132) or over UDP with one of `udp_ports` as an endpoint.
pub fn sctp_packets(file: &[u8], udp_ports: &[u16]) -> Result<Vec<Captured>, String> {
    let magic = rd32(file, 0, true)?;
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => return Err(format!("not a classic pcap file (magic {m:#x})")),
    };
    let linktype = rd32(file, 20, le)?;
    let mut out = Vec::new();
    let mut pos = 24;
    let mut record = 0;
    while pos < file.len() {
        let incl = rd32(file, pos + 8, le)? as usize;
        let orig = rd32(file, pos + 12, le)? as usize;
        let data = file
            .get(pos + 16..pos + 16 + incl)
            .ok_or_else(|| format!("record {record} truncated"))?;
        if incl != orig {
            return Err(format!("record {record} was cut by the snap length"));
        }
        let ip = match linktype {
            1 => {
                let ethertype = rd16(data, 12, false)?;
                if ethertype != 0x0800 && ethertype != 0x86dd {
                    pos += 16 + incl;
                    record += 1;
                    continue;
                }
                &data[14..]
            }
            101 => data,
            113 => &data[16..],
            other => return Err(format!("unsupported link type {other}")),
        };
        if let Some(c) = extract(ip, udp_ports, record)? {
            out.push(c);
        }
        pos += 16 + incl;
        record += 1;
    }
    Ok(out)
}

fn extract(ip: &[u8], udp_ports: &[u16], record: usize) -> Result<Option<Captured>, String> {
    let version = ip.first().ok_or("empty IP packet")? >> 4;
    let (proto, payload) = match version {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(rd16(ip, 2, false)?);
            (ip[9], ip.get(ihl..total).ok_or("bad IPv4 lengths")?)
        }
        6 => {
            let plen = usize::from(rd16(ip, 4, false)?);
            (ip[6], ip.get(40..40 + plen).ok_or("bad IPv6 lengths")?)
        }
        v => return Err(format!("record {record}: IP version {v}")),
    };
    match proto {
        132 => Ok(Some(Captured {
            record,
            udp_ports: None,
            sctp: payload.to_vec(),
        })),
        17 => {
            let sport = rd16(payload, 0, false)?;
            let dport = rd16(payload, 2, false)?;
            let ulen = usize::from(rd16(payload, 4, false)?);
            if !udp_ports.contains(&sport) && !udp_ports.contains(&dport) {
                return Ok(None);
            }
            let sctp = payload.get(8..ulen).ok_or("bad UDP length")?;
            Ok(Some(Captured {
                record,
                udp_ports: Some((sport, dport)),
                sctp: sctp.to_vec(),
            }))
        }
        _ => Ok(None),
    }
}

/// Runs `program` with `args`, returning (exit success, stdout, stderr). Panics with a
/// clear message when the program cannot be started (a missing tool fails the test).
pub fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed?)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

use sctp_stack::wire::{ChecksumPolicy, Chunk, Packet, PacketBuilder};

/// Parses `bytes` at every level (structure, checksum, every chunk typed, every parameter
/// and cause typed) and re-encodes the typed chunks into a new packet with a fresh
/// checksum. Returns the re-encoded packet, or a description of the first failure.
pub fn parse_and_reencode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let pkt = Packet::new_checked(bytes).map_err(|e| format!("structure: {e}"))?;
    pkt.verify_checksum(ChecksumPolicy::default())
        .map_err(|e| format!("checksum: {e}"))?;
    let mut out = vec![0u8; bytes.len() + 64];
    let mut b = PacketBuilder::new(&mut out, bytes.len() + 64, pkt.header())
        .map_err(|e| format!("builder: {e}"))?;
    for raw in pkt.chunks() {
        let chunk = Chunk::parse(&raw).map_err(|e| format!("{:?}: {e}", raw.chunk_type()))?;
        check_nested(&chunk)?;
        b.push(&chunk).map_err(|e| format!("push: {e}"))?;
    }
    let n = b.finish();
    out.truncate(n);
    Ok(out)
}

/// Every parameter and cause inside `chunk` parses.
pub fn check_nested(chunk: &Chunk<'_>) -> Result<(), String> {
    let params = match chunk {
        Chunk::Init(c) => Some(c.params),
        Chunk::InitAck(c) => Some(c.params),
        Chunk::Asconf(c) => Some(c.params),
        Chunk::AsconfAck(c) => Some(c.params),
        Chunk::ReConfig(c) => Some(c.params),
        _ => None,
    };
    if let Some(params) = params {
        for p in params.iter() {
            let p = p.map_err(|e| format!("{:?} parameter: {e}", chunk.chunk_type()))?;
            if let sctp_stack::wire::Param::ErrorCauseIndication { causes, .. } = p {
                for c in causes.iter() {
                    c.map_err(|e| format!("nested cause: {e}"))?;
                }
            }
        }
    }
    let causes = match chunk {
        Chunk::Abort(c) => Some(c.causes),
        Chunk::ErrorChunk(c) => Some(c.causes),
        _ => None,
    };
    if let Some(causes) = causes {
        for c in causes.iter() {
            c.map_err(|e| format!("{:?} cause: {e}", chunk.chunk_type()))?;
        }
    }
    Ok(())
}

use sctp_stack::serial::{AsconfSerial, Fsn, Mid, ReconfigSeq, Ssn, Tsn};
use sctp_stack::wire::{
    Abort, Asconf, AsconfAck, Auth, Cause, ChunkType, CommonHeader, CookieAck, CookieEcho, Cwr,
    Data, Ecne, Edmid, Encode, ErrorChunk, FixedList, ForwardTsn, ForwardTsnStream, GapAckBlock,
    Heartbeat, HeartbeatAck, HmacId, IData, IForwardTsn, IForwardTsnStream, Init, InitAck, Pad,
    Param, ParamType, Ppid, RawChunk, RawParam, ReConfig, ReconfigResult, Sack, Shutdown,
    ShutdownAck, ShutdownComplete, TlvList,
};

/// Builds one packet holding `chunks` (tag 0 for INIT, else 0x01020304).
fn build(chunks: &[&dyn Encode], init: bool) -> Vec<u8> {
    let header = CommonHeader {
        source_port: 5001,
        destination_port: 5002,
        verification_tag: if init { 0 } else { 0x0102_0304 },
    };
    let mut buf = vec![0u8; 4096];
    let mut b = PacketBuilder::new(&mut buf, 4096, header).expect("buffer");
    for c in chunks {
        b.push(*c).expect("sample fits");
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// Packets that together hold every chunk type, every parameter type and every error
/// cause the wire module implements (plus an unknown chunk, parameter and cause), with
/// plausible values. Used by the tshark cross-check and as fuzz seeds.
pub fn sample_packets() -> Vec<Vec<u8>> {
    let v4 = "198.18.0.1".parse().expect("addr");
    let v6 = "fd00::1".parse().expect("addr");
    let ipv4_tlv = [0u8, 5, 0, 8, 198, 18, 0, 7];
    let add_ip_tlv = [0xC0u8, 1, 0, 16, 0, 0, 0, 9, 0, 5, 0, 8, 198, 18, 0, 9];
    let unknown_param_tlv = [0xBFu8, 0xF0, 0, 6, 0xAA, 0xBB];
    let unknown_chunk_tlv = [0xBFu8, 0, 0, 6, 1, 2];
    let mut out = Vec::new();

    // DATA and I-DATA (first, middle and last fragments, unordered, I bit).
    let payload = b"hello, sctp";
    let data = |tsn, b, e, u, i| Data {
        tsn: Tsn(tsn),
        stream_id: 3,
        ssn: Ssn(7),
        ppid: Ppid(51),
        immediate_sack: i,
        unordered: u,
        beginning: b,
        ending: e,
        payload,
    };
    out.push(build(
        &[
            &data(100, true, false, false, false),
            &data(101, false, false, false, false),
            &data(102, false, true, false, true),
            &data(103, true, true, true, false),
        ],
        false,
    ));
    out.push(build(
        &[
            &IData {
                tsn: Tsn(200),
                stream_id: 1,
                mid: Mid(5),
                ppid: Ppid(53),
                fsn: Fsn(0),
                immediate_sack: false,
                unordered: false,
                beginning: true,
                ending: false,
                payload,
            },
            &IData {
                tsn: Tsn(201),
                stream_id: 1,
                mid: Mid(5),
                ppid: Ppid(0),
                fsn: Fsn(1),
                immediate_sack: true,
                unordered: true,
                beginning: false,
                ending: true,
                payload,
            },
        ],
        false,
    ));

    // INIT with every INIT parameter.
    let addr_types = [ParamType::IPV4_ADDRESS, ParamType::IPV6_ADDRESS];
    let exts = [
        ChunkType::FORWARD_TSN,
        ChunkType::AUTH,
        ChunkType::ASCONF,
        ChunkType::ASCONF_ACK,
        ChunkType::RE_CONFIG,
        ChunkType::I_DATA,
        ChunkType::I_FORWARD_TSN,
        ChunkType::PAD,
    ];
    let auth_chunks = [ChunkType::ASCONF, ChunkType::ASCONF_ACK];
    let hmacs = [HmacId::SHA256, HmacId::SHA1];
    let random = [0x5Au8; 32];
    let init_params = [
        Param::Ipv4Address(v4),
        Param::Ipv6Address(v6),
        Param::CookiePreservative(5000),
        Param::HostNameAddress(b"pe1.example\0"),
        Param::SupportedAddressTypes(FixedList::from_items(&addr_types)),
        Param::EcnCapable,
        Param::ForwardTsnSupported,
        Param::SupportedExtensions(FixedList::from_items(&exts)),
        Param::Random(&random),
        Param::ChunkList(FixedList::from_items(&auth_chunks)),
        Param::RequestedHmacAlgorithms(FixedList::from_items(&hmacs)),
        Param::AdaptationLayerIndication(0x0102_0304),
        Param::ZeroChecksumAcceptable(Edmid::DTLS),
        Param::Padding(16),
        Param::Unknown(RawParam::new_checked(&unknown_param_tlv).expect("tlv")),
    ];
    out.push(build(
        &[&Init {
            initiate_tag: 0x1111_2222,
            a_rwnd: 131_072,
            outbound_streams: 10,
            inbound_streams: 10,
            initial_tsn: Tsn(1),
            params: TlvList::from_items(&init_params),
        }],
        true,
    ));

    // INIT ACK with a State Cookie and an Unrecognized Parameter.
    let cookie = [0xC0u8; 40];
    let ack_params = [
        Param::StateCookie(&cookie),
        Param::UnrecognizedParameter(&unknown_param_tlv),
        Param::Ipv4Address(v4),
        Param::ForwardTsnSupported,
    ];
    out.push(build(
        &[&InitAck {
            initiate_tag: 0x3333_4444,
            a_rwnd: 65_536,
            outbound_streams: 5,
            inbound_streams: 5,
            initial_tsn: Tsn(77),
            params: TlvList::from_items(&ack_params),
        }],
        false,
    ));

    // SACK with gap blocks and duplicates; the handshake and shutdown chunks.
    let gaps = [
        GapAckBlock { start: 2, end: 3 },
        GapAckBlock { start: 5, end: 9 },
    ];
    let dups = [Tsn(90), Tsn(91)];
    out.push(build(
        &[&Sack {
            cumulative_tsn_ack: Tsn(99),
            a_rwnd: 50_000,
            gap_blocks: FixedList::from_items(&gaps),
            duplicate_tsns: FixedList::from_items(&dups),
        }],
        false,
    ));
    out.push(build(
        &[
            &CookieEcho { cookie: &cookie },
            &data(104, true, true, false, false),
        ],
        false,
    ));
    out.push(build(&[&CookieAck], false));
    out.push(build(&[&Heartbeat { info: &[7u8; 20] }], false));
    out.push(build(&[&HeartbeatAck { info: &[7u8; 20] }], false));
    out.push(build(
        &[&Shutdown {
            cumulative_tsn_ack: Tsn(99),
        }],
        false,
    ));
    out.push(build(&[&ShutdownAck], false));
    out.push(build(
        &[&ShutdownComplete {
            tag_reflected: true,
        }],
        false,
    ));
    out.push(build(
        &[
            &Ecne {
                lowest_tsn: Tsn(98),
            },
            &Cwr {
                lowest_tsn: Tsn(98),
            },
        ],
        false,
    ));

    // ABORT with every RFC 9260 cause; ERROR with the RFC 5061 and RFC 4895 causes.
    let missing = [ParamType::STATE_COOKIE];
    let abort_causes = [
        Cause::InvalidStreamIdentifier { stream_id: 9 },
        Cause::MissingMandatoryParameter {
            missing: FixedList::from_items(&missing),
        },
        Cause::StaleCookie {
            staleness_us: 1_500_000,
        },
        Cause::OutOfResource,
        Cause::UnresolvableAddress(&ipv4_tlv),
        Cause::UnrecognizedChunkType(&unknown_chunk_tlv),
        Cause::InvalidMandatoryParameter,
        Cause::UnrecognizedParameters(&unknown_param_tlv),
        Cause::NoUserData { tsn: Tsn(12) },
        Cause::CookieReceivedWhileShuttingDown,
        Cause::RestartWithNewAddresses(&ipv4_tlv),
        Cause::UserInitiatedAbort(b"operator request"),
        Cause::ProtocolViolation(b"bad SACK"),
    ];
    out.push(build(
        &[&Abort {
            tag_reflected: true,
            causes: TlvList::from_items(&abort_causes),
        }],
        false,
    ));
    let unknown_cause = [0x7Fu8, 0xFF, 0, 5, 0xEE];
    let error_causes = [
        Cause::DeleteLastRemainingAddress(&add_ip_tlv),
        Cause::ResourceShortage(&add_ip_tlv),
        Cause::DeleteSourceAddress(&add_ip_tlv),
        Cause::IllegalAsconfAck(&[]),
        Cause::NoAuthorization(&add_ip_tlv),
        Cause::UnsupportedHmacIdentifier { hmac_id: HmacId(2) },
        Cause::Unknown(sctp_stack::wire::RawCause::new_checked(&unknown_cause).expect("tlv")),
    ];
    out.push(build(
        &[&ErrorChunk {
            causes: TlvList::from_items(&error_causes),
        }],
        false,
    ));

    // AUTH followed by the chunk it covers; ASCONF and ASCONF ACK.
    let asconf_params = [
        Param::AddIpAddress {
            correlation_id: 1,
            address: "198.18.0.9".parse().expect("addr"),
        },
        Param::DeleteIpAddress {
            correlation_id: 2,
            address: "fd00::9".parse().expect("addr"),
        },
        Param::SetPrimaryAddress {
            correlation_id: 3,
            address: v4.into(),
        },
    ];
    let asconf = Asconf {
        serial: AsconfSerial(42),
        address: v4.into(),
        params: TlvList::from_items(&asconf_params),
    };
    out.push(build(
        &[
            &Auth {
                shared_key_id: 0,
                hmac_id: HmacId::SHA1,
                hmac: &[0x11; 20],
            },
            &asconf,
        ],
        false,
    ));
    let indication_causes = [Cause::DeleteLastRemainingAddress(&add_ip_tlv)];
    let ack_params = [
        Param::SuccessIndication { correlation_id: 1 },
        Param::ErrorCauseIndication {
            correlation_id: 2,
            causes: TlvList::from_items(&indication_causes),
        },
    ];
    out.push(build(
        &[&AsconfAck {
            serial: AsconfSerial(42),
            params: TlvList::from_items(&ack_params),
        }],
        false,
    ));

    // FORWARD TSN and I-FORWARD TSN.
    let fwd = [
        ForwardTsnStream {
            stream_id: 1,
            ssn: Ssn(4),
        },
        ForwardTsnStream {
            stream_id: 2,
            ssn: Ssn(8),
        },
    ];
    out.push(build(
        &[&ForwardTsn {
            new_cumulative_tsn: Tsn(300),
            streams: FixedList::from_items(&fwd),
        }],
        false,
    ));
    let ifwd = [
        IForwardTsnStream {
            stream_id: 1,
            unordered: false,
            mid: Mid(4),
        },
        IForwardTsnStream {
            stream_id: 2,
            unordered: true,
            mid: Mid(8),
        },
    ];
    out.push(build(
        &[&IForwardTsn {
            new_cumulative_tsn: Tsn(400),
            streams: FixedList::from_items(&ifwd),
        }],
        false,
    ));

    // RE-CONFIG with every request and response parameter, in valid combinations.
    let streams = [1u16, 2, 3];
    let reconfigs: [&[Param<'_>]; 5] = [
        &[
            Param::OutgoingSsnResetRequest {
                request_seq: ReconfigSeq(10),
                response_seq: ReconfigSeq(20),
                last_tsn: Tsn(99),
                streams: FixedList::from_items(&streams),
            },
            Param::IncomingSsnResetRequest {
                request_seq: ReconfigSeq(11),
                streams: FixedList::from_items(&streams[..1]),
            },
        ],
        &[Param::SsnTsnResetRequest {
            request_seq: ReconfigSeq(12),
        }],
        &[Param::ReconfigResponse {
            response_seq: ReconfigSeq(12),
            result: ReconfigResult::SUCCESS_PERFORMED,
            next_tsns: Some((Tsn(1000), Tsn(2000))),
        }],
        &[
            Param::AddOutgoingStreamsRequest {
                request_seq: ReconfigSeq(13),
                new_streams: 4,
            },
            Param::AddIncomingStreamsRequest {
                request_seq: ReconfigSeq(14),
                new_streams: 2,
            },
        ],
        &[Param::ReconfigResponse {
            response_seq: ReconfigSeq(13),
            result: ReconfigResult::DENIED,
            next_tsns: None,
        }],
    ];
    for params in reconfigs {
        out.push(build(
            &[&ReConfig {
                params: TlvList::from_items(params),
            }],
            false,
        ));
    }

    // PAD bundled before a HEARTBEAT (PMTU probe), and an unknown chunk with skip bits.
    out.push(build(
        &[&Pad { padding_len: 100 }, &Heartbeat { info: &[1u8; 8] }],
        false,
    ));
    out.push(build(
        &[
            &RawChunk::new_checked(&unknown_chunk_tlv).expect("tlv"),
            &CookieAck,
        ],
        false,
    ));
    out
}
