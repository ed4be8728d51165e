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
