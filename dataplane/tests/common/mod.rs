//! Helpers shared by the integration tests: SCTP-shaped packets with a valid CRC32c and the
//! two-namespace test network.
#![allow(dead_code)]

use dataplane::netns::TestNet;

/// An SCTP packet: common header (RFC 9260 §3.1) and one DATA chunk (§3.3.1) carrying
/// `payload`, with a correct CRC32c (Appendix A: computed with the checksum field zeroed and
/// stored least significant byte first, as every implementation does).
pub fn sctp_packet(src_port: u16, dst_port: u16, vtag: u32, tsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + 16 + payload.len() + 3);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    // DATA: type 0, flags B|E (0x03), length, TSN, stream 0, SSN 0, PPID 0.
    let chunk_len = (16 + payload.len()) as u16;
    p.extend_from_slice(&[0, 0x03]);
    p.extend_from_slice(&chunk_len.to_be_bytes());
    p.extend_from_slice(&tsn.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(payload);
    while p.len() % 4 != 0 {
        p.push(0);
    }
    let crc = crc32c::crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Whether `p` carries a valid SCTP CRC32c.
pub fn crc_ok(p: &[u8]) -> bool {
    if p.len() < 12 {
        return false;
    }
    let mut copy = p.to_vec();
    let stored = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
    copy[8..12].fill(0);
    crc32c::crc32c(&copy) == stored
}

/// The TSN of a packet built by [`sctp_packet`].
pub fn tsn_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[16], p[17], p[18], p[19]])
}

/// Two namespaces `a` and `b` joined by a veth pair:
/// a: 198.18.0.1/24, 198.18.0.11/24, fd00::1/64, fd00::11/64
/// b: 198.18.0.2/24, 198.18.0.3/24, fd00::2/64, fd00::3/64
/// Both drop ICMP protocol-unreachable. Deleted when the returned value drops.
pub struct Pair {
    pub net: TestNet,
    pub a: String,
    pub b: String,
}

pub fn pair(prefix: &str) -> Pair {
    let mut net = TestNet::new(prefix);
    let a = net
        .namespace("a")
        .expect("ip netns add (needs root and iproute2)");
    let b = net.namespace("b").expect("ip netns add");
    net.veth(
        (
            &a,
            "va",
            &[
                "198.18.0.1/24",
                "198.18.0.11/24",
                "fd00::1/64",
                "fd00::11/64",
            ],
        ),
        (
            &b,
            "vb",
            &["198.18.0.2/24", "198.18.0.3/24", "fd00::2/64", "fd00::3/64"],
        ),
    )
    .expect("veth setup");
    net.drop_protocol_unreachable(&a)
        .expect("nft rule (needs nftables)");
    net.drop_protocol_unreachable(&b)
        .expect("nft rule (needs nftables)");
    Pair { net, a, b }
}
