//! `bench wire`: the SCTP codec against a bare CRC32c over the same bytes.
//!
//! Two packets: a full-size DATA packet (1452 bytes: common header, one DATA chunk with
//! 1424 bytes of user data) and a SACK with 100 gap blocks (428 bytes). For each, the
//! cost of parsing with checksum verification (what a receiver pays before the
//! association sees the chunk) and of encoding with checksum computation is compared
//! with `crc32c::crc32c` over the same number of bytes, measured in the same run. The
//! checksum dominates both; the goal is that parse + verify of the DATA packet costs at
//! most 1.5 times the bare CRC.
//!
//! Timing: each figure is the best of several rounds of a calibrated loop, with the input
//! and the result passed through `black_box`; ours and the peer are timed back to back in
//! every round so that load from other processes affects both alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sctp_stack::serial::{Ssn, Tsn};
use sctp_stack::wire::{
    ChecksumPolicy, CommonHeader, Data, FixedList, GapAckBlock, Packet, PacketBuilder, Ppid, Sack,
};

use crate::Opts;
use crate::report::{Better, Row};

/// Iterations of `f` that take at least `target`.
fn calibrate(target: Duration, f: &mut impl FnMut() -> usize) -> u64 {
    let mut iters: u64 = 16;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        if start.elapsed() >= target || iters >= 1 << 30 {
            return iters;
        }
        iters *= 2;
    }
}

fn timed(iters: u64, f: &mut impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Nanoseconds per call of `peer` and of `ours`: the best of several rounds, each round
/// timing both back to back (so load from other processes hits both alike), each loop
/// calibrated to last about a few milliseconds.
fn time_pair(
    opts: Opts,
    mut peer: impl FnMut() -> usize,
    mut ours: impl FnMut() -> usize,
) -> (f64, f64) {
    let (rounds, target) = if opts.quick {
        (7, Duration::from_millis(3))
    } else {
        (41, Duration::from_millis(15))
    };
    let ip = calibrate(target, &mut peer);
    let io = calibrate(target, &mut ours);
    let (mut bp, mut bo) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        bp = bp.min(timed(ip, &mut peer));
        bo = bo.min(timed(io, &mut ours));
    }
    (bp, bo)
}

const HEADER: CommonHeader = CommonHeader {
    source_port: 5000,
    destination_port: 5001,
    verification_tag: 0x1234_5678,
};

fn data_chunk(payload: &[u8]) -> Data<'_> {
    Data {
        tsn: Tsn(0xfffe_0000),
        stream_id: 7,
        ssn: Ssn(42),
        ppid: Ppid(51),
        immediate_sack: false,
        unordered: false,
        beginning: true,
        ending: true,
        payload,
    }
}

fn sack_chunk(gaps: &[GapAckBlock]) -> Sack<'_> {
    Sack {
        cumulative_tsn_ack: Tsn(1000),
        a_rwnd: 1 << 20,
        gap_blocks: FixedList::from_items(gaps),
        duplicate_tsns: FixedList::EMPTY,
    }
}

/// Parses and verifies a DATA packet; returns something derived from the payload so
/// nothing is optimised away.
fn parse_verify_data(bytes: &[u8]) -> usize {
    let Ok(pkt) = Packet::new_verified(bytes, ChecksumPolicy::STRICT) else {
        return 0;
    };
    let mut n = 0;
    for raw in pkt.chunks() {
        if let Ok(d) = Data::parse(&raw) {
            n += d.payload.len() + d.tsn.get() as usize;
        }
    }
    n
}

/// Parses and verifies a SACK packet, walking every gap block.
fn parse_verify_sack(bytes: &[u8]) -> usize {
    let Ok(pkt) = Packet::new_verified(bytes, ChecksumPolicy::STRICT) else {
        return 0;
    };
    let mut n = 0;
    for raw in pkt.chunks() {
        if let Ok(s) = Sack::parse(&raw) {
            for g in s.gap_blocks.iter() {
                n += usize::from(g.end.wrapping_sub(g.start));
            }
        }
    }
    n
}

fn encode(buf: &mut [u8], chunk: &impl sctp_stack::wire::Encode) -> usize {
    let Ok(mut b) = PacketBuilder::new(buf, 1452, HEADER) else {
        return 0;
    };
    if b.push(chunk).is_err() {
        return 0;
    }
    b.finish()
}

/// Runs the suite.
pub fn run(opts: Opts) -> Result<Vec<Row>, String> {
    let payload: Vec<u8> = (0..1424u32).map(|i| (i * 31 + 7) as u8).collect();
    let data = data_chunk(&payload);
    let mut data_pkt = vec![0u8; 1452];
    let n = encode(&mut data_pkt, &data);
    if n != 1452 {
        return Err(format!("DATA packet is {n} bytes, expected 1452"));
    }
    let gaps: Vec<GapAckBlock> = (0..100u16)
        .map(|i| GapAckBlock {
            start: 2 + i * 4,
            end: 3 + i * 4,
        })
        .collect();
    let sack = sack_chunk(&gaps);
    let mut sack_pkt = vec![0u8; 1452];
    let m = encode(&mut sack_pkt, &sack);
    sack_pkt.truncate(m);
    if m != 12 + 16 + 400 {
        return Err(format!("SACK packet is {m} bytes, expected 428"));
    }
    // Sanity: what we time must succeed.
    if parse_verify_data(&data_pkt) != 1424 + 0xfffe_0000usize
        || parse_verify_sack(&sack_pkt) != 100
    {
        return Err("the benchmark packets do not parse".into());
    }

    let mut rows = Vec::new();
    let mut out = vec![0u8; 1500];
    for (name, pkt, parse) in [
        (
            "data_1452",
            &data_pkt[..],
            parse_verify_data as fn(&[u8]) -> usize,
        ),
        ("sack_100_gaps", &sack_pkt[..], parse_verify_sack),
    ] {
        let crc_fn = || crc32c::crc32c(black_box(pkt)) as usize;
        let (crc, ours) = time_pair(opts, crc_fn, || parse(black_box(pkt)));
        rows.push(Row::compare(
            format!("wire.parse_verify_{name}"),
            "ns",
            ours,
            "crc32c same bytes",
            crc,
            Better::Lower,
            if name == "data_1452" { Some(1.5) } else { None },
        ));
        let (crc_v, verify) = time_pair(opts, crc_fn, || {
            usize::from(
                sctp_stack::wire::verify_checksum(black_box(pkt), ChecksumPolicy::STRICT).is_ok(),
            )
        });
        rows.push(Row::compare(
            format!("wire.verify_only_{name}"),
            "ns",
            verify,
            "crc32c same bytes",
            crc_v,
            Better::Lower,
            None,
        ));
        let (crc_e, enc) = if name == "data_1452" {
            time_pair(opts, crc_fn, || {
                encode(black_box(&mut out), black_box(&data))
            })
        } else {
            time_pair(opts, crc_fn, || {
                encode(black_box(&mut out), black_box(&sack))
            })
        };
        rows.push(Row::compare(
            format!("wire.encode_{name}"),
            "ns",
            enc,
            "crc32c same bytes",
            crc_e,
            Better::Lower,
            None,
        ));
        let bytes = pkt.len() as f64;
        rows.push(Row::absolute(
            format!("wire.parse_verify_{name}_throughput"),
            "GB/s",
            bytes / ours,
            None,
        ));
    }
    Ok(rows)
}
