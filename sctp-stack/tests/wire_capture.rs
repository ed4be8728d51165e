//! A capture of usrsctp's echo client and server (UDP encapsulation on loopback, taken with
//! dumpcap; `.ci/wire-interop.sh` repeats it live) parses at every level and re-encodes
//! byte for byte, checksum included.

mod wire_util;

use sctp_stack::wire::{
    Chunk, ChunkType, CookieEcho, HmacId, InitAck, Packet, Param, ParamType, compute_checksum,
};

const CAPTURE: &[u8] = include_bytes!("../testdata/usrsctp-echo-udp.pcap");

fn packets() -> Vec<wire_util::Captured> {
    wire_util::sctp_packets(CAPTURE, &[9899, 9900]).expect("the committed capture is readable")
}

#[test]
fn every_usrsctp_packet_reencodes_byte_identical() {
    let pkts = packets();
    assert_eq!(pkts.len(), 26, "the capture holds one whole association");
    for c in &pkts {
        let re = wire_util::parse_and_reencode(&c.sctp)
            .unwrap_or_else(|e| panic!("record {}: {e}", c.record));
        assert_eq!(re, c.sctp, "record {} differs after re-encoding", c.record);
    }
}

#[test]
fn usrsctp_stores_the_crc32c_least_significant_byte_first() {
    for c in packets() {
        let crc = compute_checksum(&c.sctp).expect("header present");
        assert_eq!(c.sctp[8..12], crc.to_le_bytes(), "record {}", c.record);
        let p = Packet::new_checked(&c.sctp).expect("structure");
        assert_eq!(p.checksum(), crc);
    }
}

#[test]
fn the_capture_covers_the_whole_association_lifecycle() {
    let mut seen = Vec::new();
    for c in packets() {
        let p = Packet::new_checked(&c.sctp).expect("structure");
        for raw in p.chunks() {
            if !seen.contains(&raw.chunk_type()) {
                seen.push(raw.chunk_type());
            }
        }
    }
    for ty in [
        ChunkType::INIT,
        ChunkType::INIT_ACK,
        ChunkType::COOKIE_ECHO,
        ChunkType::COOKIE_ACK,
        ChunkType::HEARTBEAT,
        ChunkType::HEARTBEAT_ACK,
        ChunkType::DATA,
        ChunkType::SACK,
        ChunkType::SHUTDOWN,
        ChunkType::SHUTDOWN_ACK,
        ChunkType::SHUTDOWN_COMPLETE,
    ] {
        assert!(seen.contains(&ty), "{ty:?} missing from the capture");
    }
}

#[test]
fn usrsctp_init_parses_into_the_parameters_it_announces() {
    let pkts = packets();
    let p = Packet::new_checked(&pkts[0].sctp).expect("structure");
    assert_eq!(
        p.verification_tag(),
        0,
        "RFC 9260 §8.5.1: INIT carries tag 0"
    );
    assert_eq!(p.destination_port(), 7);
    let raw = p.chunks().next().expect("one chunk");
    let Ok(Chunk::Init(init)) = Chunk::parse(&raw) else {
        panic!("first packet is not an INIT");
    };
    assert_ne!(init.initiate_tag, 0);
    assert_eq!(init.a_rwnd, 131_072);
    assert_eq!(init.outbound_streams, 10);
    assert_eq!(init.inbound_streams, 2048);
    let params: Vec<Param<'_>> = init
        .params
        .iter()
        .collect::<Result<_, _>>()
        .expect("every parameter parses");
    let types: Vec<ParamType> = params.iter().map(Param::param_type).collect();
    assert_eq!(
        &types[..7],
        &[
            ParamType::ECN_CAPABLE,
            ParamType::FORWARD_TSN_SUPPORTED,
            ParamType::SUPPORTED_EXTENSIONS,
            ParamType::RANDOM,
            ParamType::REQUESTED_HMAC_ALGORITHM,
            ParamType::CHUNK_LIST,
            ParamType::SUPPORTED_ADDRESS_TYPES,
        ]
    );
    for p in &params {
        match p {
            Param::SupportedExtensions(l) => assert_eq!(
                l.iter().collect::<Vec<_>>(),
                [
                    ChunkType::FORWARD_TSN,
                    ChunkType::AUTH,
                    ChunkType::ASCONF,
                    ChunkType::ASCONF_ACK,
                    ChunkType::RE_CONFIG
                ]
            ),
            Param::Random(r) => assert_eq!(r.len(), 32),
            Param::RequestedHmacAlgorithms(l) => {
                assert_eq!(l.iter().collect::<Vec<_>>(), [HmacId::SHA1])
            }
            Param::ChunkList(l) => assert_eq!(
                l.iter().collect::<Vec<_>>(),
                [ChunkType::ASCONF_ACK, ChunkType::ASCONF]
            ),
            Param::SupportedAddressTypes(l) => assert_eq!(
                l.iter().collect::<Vec<_>>(),
                [ParamType::IPV4_ADDRESS, ParamType::IPV6_ADDRESS]
            ),
            _ => {}
        }
    }
    assert!(params.contains(&Param::Ipv4Address("127.0.0.1".parse().expect("addr"))));
    assert!(params.contains(&Param::Ipv6Address("::1".parse().expect("addr"))));
}

#[test]
fn usrsctp_echoes_the_state_cookie_of_its_init_ack() {
    let pkts = packets();
    let ack_pkt = Packet::new_checked(&pkts[1].sctp).expect("structure");
    let ack = InitAck::parse(&ack_pkt.chunks().next().expect("chunk")).expect("INIT ACK");
    let cookie = ack.state_cookie().expect("INIT ACK carries a State Cookie");
    let echo_pkt = Packet::new_checked(&pkts[2].sctp).expect("structure");
    let echo = CookieEcho::parse(&echo_pkt.chunks().next().expect("chunk")).expect("COOKIE ECHO");
    assert_eq!(echo.cookie, cookie);
    assert_eq!(echo_pkt.verification_tag(), ack.initiate_tag);
}

#[test]
fn an_init_built_from_typed_parameters_matches_usrsctp_byte_for_byte() {
    use sctp_stack::serial::Tsn;
    use sctp_stack::wire::{FixedList, Init, PacketBuilder, TlvList};

    let pkts = packets();
    let captured = &pkts[0].sctp;
    let pkt = Packet::new_checked(captured).expect("structure");
    let theirs = Init::parse(&pkt.chunks().next().expect("chunk")).expect("INIT");
    let random = theirs
        .params
        .iter()
        .find_map(|p| match p {
            Ok(Param::Random(r)) => Some(r),
            _ => None,
        })
        .expect("Random parameter");

    let extensions = [
        ChunkType::FORWARD_TSN,
        ChunkType::AUTH,
        ChunkType::ASCONF,
        ChunkType::ASCONF_ACK,
        ChunkType::RE_CONFIG,
    ];
    let hmacs = [HmacId::SHA1];
    let auth_chunks = [ChunkType::ASCONF_ACK, ChunkType::ASCONF];
    let addr_types = [ParamType::IPV4_ADDRESS, ParamType::IPV6_ADDRESS];
    let params = [
        Param::EcnCapable,
        Param::ForwardTsnSupported,
        Param::SupportedExtensions(FixedList::from_items(&extensions)),
        Param::Random(random),
        Param::RequestedHmacAlgorithms(FixedList::from_items(&hmacs)),
        Param::ChunkList(FixedList::from_items(&auth_chunks)),
        Param::SupportedAddressTypes(FixedList::from_items(&addr_types)),
        Param::Ipv6Address("fd00::2".parse().expect("addr")),
        Param::Ipv4Address("192.0.2.2".parse().expect("addr")),
        Param::Ipv6Address("::1".parse().expect("addr")),
        Param::Ipv4Address("127.0.0.1".parse().expect("addr")),
    ];
    let ours = Init {
        initiate_tag: theirs.initiate_tag,
        a_rwnd: 131_072,
        outbound_streams: 10,
        inbound_streams: 2048,
        initial_tsn: Tsn(theirs.initial_tsn.get()),
        params: TlvList::from_items(&params),
    };
    assert_eq!(ours, theirs);
    let mut buf = [0u8; 1500];
    let mut b = PacketBuilder::new(&mut buf, 1452, pkt.header()).expect("buffer");
    b.push(&ours).expect("fits");
    let n = b.finish();
    assert_eq!(&buf[..n], &captured[..]);
}
