//! A pcap writer for SCTP captures, raw over IP or UDP-encapsulated (RFC 6951).
//!
//! The writer produces classic pcap (microsecond timestamps, `LINKTYPE_RAW` = 101, so each
//! record is an IPv4 or IPv6 packet). SCTP packets are wrapped in an IP header built here
//! (and a UDP header for the encapsulated form, default port 9899), so a capture can be taken
//! at the level the stack sees, whatever the backend. Wireshark and `tshark` decode both
//! forms; run tshark with `-o sctp.checksum:CRC-32C` to have it verify our checksums.
//!
//! The writer is generic over [`std::io::Write`] and never reads a clock: the caller passes
//! the [`Timestamp`] of each record.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use crate::time::Timestamp;

/// `LINKTYPE_RAW`: every record begins with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// The IANA-assigned UDP port for SCTP over UDP (RFC 6951 §5.1).
pub const SCTP_UDP_TUNNELING_PORT: u16 = 9899;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const SNAPLEN: u32 = 262_144;

/// Why a record could not be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum PcapError {
    /// The underlying writer failed.
    Io(io::Error),
    /// Source and destination are of different address families.
    MixedAddressFamilies,
    /// The packet does not fit in one IP datagram.
    TooLarge(usize),
}

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcapError::Io(e) => write!(f, "pcap write failed: {e}"),
            PcapError::MixedAddressFamilies => {
                write!(
                    f,
                    "source and destination addresses are of different families"
                )
            }
            PcapError::TooLarge(n) => write!(f, "packet of {n} bytes does not fit an IP datagram"),
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for PcapError {
    fn from(e: io::Error) -> Self {
        PcapError::Io(e)
    }
}

/// Writes SCTP packets into a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap global header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        hdr[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            scratch: Vec::with_capacity(2048),
            ip_id: 1,
        })
    }

    /// Records an SCTP packet (common header onwards) carried directly over IP.
    pub fn write_sctp(
        &mut self,
        ts: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        sctp: &[u8],
    ) -> Result<(), PcapError> {
        self.scratch.clear();
        push_ip_header(
            &mut self.scratch,
            src,
            dst,
            IPPROTO_SCTP,
            sctp.len(),
            self.ip_id,
        )?;
        self.ip_id = self.ip_id.wrapping_add(1);
        self.scratch.extend_from_slice(sctp);
        self.flush_record(ts)
    }

    /// Records an SCTP packet encapsulated in UDP (RFC 6951) between two socket addresses.
    pub fn write_sctp_over_udp(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        sctp: &[u8],
    ) -> Result<(), PcapError> {
        let udp_len = sctp.len() + 8;
        let udp_len16 = u16::try_from(udp_len).map_err(|_| PcapError::TooLarge(sctp.len()))?;
        self.scratch.clear();
        push_ip_header(
            &mut self.scratch,
            src.ip(),
            dst.ip(),
            IPPROTO_UDP,
            udp_len,
            self.ip_id,
        )?;
        self.ip_id = self.ip_id.wrapping_add(1);
        let udp_start = self.scratch.len();
        self.scratch.extend_from_slice(&src.port().to_be_bytes());
        self.scratch.extend_from_slice(&dst.port().to_be_bytes());
        self.scratch.extend_from_slice(&udp_len16.to_be_bytes());
        self.scratch.extend_from_slice(&[0, 0]);
        self.scratch.extend_from_slice(sctp);
        let sum = udp_checksum(src.ip(), dst.ip(), &self.scratch[udp_start..]);
        self.scratch[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
        self.flush_record(ts)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn flush_record(&mut self, ts: Timestamp) -> Result<(), PcapError> {
        let len = u32::try_from(self.scratch.len())
            .map_err(|_| PcapError::TooLarge(self.scratch.len()))?;
        let micros = ts.as_micros();
        let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
        let usecs = (micros % 1_000_000) as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&usecs.to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.scratch)?;
        Ok(())
    }
}

fn push_ip_header(
    buf: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload_len: usize,
    id: u16,
) -> Result<(), PcapError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total =
                u16::try_from(payload_len + 20).map_err(|_| PcapError::TooLarge(payload_len))?;
            let start = buf.len();
            buf.extend_from_slice(&[0x45, 0]);
            buf.extend_from_slice(&total.to_be_bytes());
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&[0x40, 0]); // DF, no fragment offset
            buf.extend_from_slice(&[64, proto, 0, 0]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            let sum = !ones_complement_sum(0, &buf[start..start + 20]);
            buf[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
            Ok(())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(payload_len).map_err(|_| PcapError::TooLarge(payload_len))?;
            buf.extend_from_slice(&[0x60, 0, 0, 0]);
            buf.extend_from_slice(&plen.to_be_bytes());
            buf.extend_from_slice(&[proto, 64]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            Ok(())
        }
        _ => Err(PcapError::MixedAddressFamilies),
    }
}

/// One's-complement sum of 16-bit big-endian words (RFC 1071), folded, not inverted.
fn ones_complement_sum(mut acc: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    let plen = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo[0..4].copy_from_slice(&s.octets());
            pseudo[4..8].copy_from_slice(&d.octets());
            pseudo[9] = IPPROTO_UDP;
            pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
            12
        }
        _ => {
            let (s, d) = match (src, dst) {
                (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets(), d.octets()),
                _ => return 0,
            };
            pseudo[0..16].copy_from_slice(&s);
            pseudo[16..32].copy_from_slice(&d);
            pseudo[32..36].copy_from_slice(&(udp.len() as u32).to_be_bytes());
            pseudo[39] = IPPROTO_UDP;
            40
        }
    };
    let partial = ones_complement_sum(0, &pseudo[..plen]);
    let sum = !ones_complement_sum(u32::from(partial), udp);
    // RFC 768: a computed zero is transmitted as all ones.
    if sum == 0 { 0xffff } else { sum }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn global_header_is_little_endian_raw_linktype() {
        let w = PcapWriter::new(Vec::new()).expect("vec write");
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(
            u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
            101
        );
    }

    #[test]
    fn ipv4_record_has_valid_header_checksum_and_lengths() {
        let mut w = PcapWriter::new(Vec::new()).expect("vec write");
        let payload = [0xaau8; 13];
        w.write_sctp(
            Timestamp::from_micros(1_500_000),
            Ipv4Addr::new(198, 18, 0, 1).into(),
            Ipv4Addr::new(198, 18, 0, 2).into(),
            &payload,
        )
        .expect("record");
        let bytes = w.into_inner();
        let rec = &bytes[24..];
        assert_eq!(u32::from_le_bytes(rec[0..4].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(rec[4..8].try_into().unwrap()), 500_000);
        assert_eq!(u32::from_le_bytes(rec[8..12].try_into().unwrap()), 33);
        let ip = &rec[16..];
        assert_eq!(ip[9], IPPROTO_SCTP);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 33);
        assert_eq!(
            ones_complement_sum(0, &ip[..20]),
            0xffff,
            "header checksum verifies"
        );
        assert_eq!(&ip[20..], &payload);
    }

    #[test]
    fn udp_checksum_verifies_over_pseudo_header() {
        for (s, d) in [
            (
                IpAddr::from(Ipv4Addr::LOCALHOST),
                IpAddr::from(Ipv4Addr::new(127, 0, 0, 2)),
            ),
            (
                IpAddr::from(Ipv6Addr::LOCALHOST),
                IpAddr::from(Ipv6Addr::LOCALHOST),
            ),
        ] {
            let mut w = PcapWriter::new(Vec::new()).expect("vec write");
            let payload = [1u8, 2, 3, 4, 5];
            w.write_sctp_over_udp(
                Timestamp::ZERO,
                SocketAddr::new(s, 9899),
                SocketAddr::new(d, 9899),
                &payload,
            )
            .expect("record");
            let bytes = w.into_inner();
            let ip = &bytes[40..];
            let hl = if s.is_ipv4() { 20 } else { 40 };
            let udp = &ip[hl..];
            assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 13);
            // Re-summing the datagram including its checksum over the pseudo-header gives 0xffff.
            let mut pseudo = Vec::new();
            match (s, d) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    pseudo.extend_from_slice(&a.octets());
                    pseudo.extend_from_slice(&b.octets());
                    pseudo.extend_from_slice(&[0, IPPROTO_UDP, 0, 13]);
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    pseudo.extend_from_slice(&a.octets());
                    pseudo.extend_from_slice(&b.octets());
                    pseudo.extend_from_slice(&[0, 0, 0, 13, 0, 0, 0, IPPROTO_UDP]);
                }
                _ => unreachable!(),
            }
            let p = ones_complement_sum(0, &pseudo);
            assert_eq!(ones_complement_sum(u32::from(p), udp), 0xffff);
        }
    }

    #[test]
    fn mixed_families_are_rejected() {
        let mut w = PcapWriter::new(Vec::new()).expect("vec write");
        let err = w
            .write_sctp(
                Timestamp::ZERO,
                Ipv4Addr::LOCALHOST.into(),
                Ipv6Addr::LOCALHOST.into(),
                &[],
            )
            .unwrap_err();
        assert!(matches!(err, PcapError::MixedAddressFamilies));
    }
}
