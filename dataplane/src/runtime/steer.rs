//! Packet steering: which worker owns a received SCTP packet.
//!
//! Every worker runs an [`Endpoint`](sctp_stack::Endpoint) shard whose local verification
//! tags satisfy [`tag_owner`]`(tag, workers) == worker`. A packet therefore belongs to:
//!
//! - the owner of its verification tag, for every packet that carries the receiver's tag (all
//!   of them once an association exists, and COOKIE ECHO);
//! - the worker chosen by a hash of its two port numbers, when the tag is 0 (INIT). The ports
//!   are the same from every address of a multi-homed peer, so a restarted peer's INIT reaches
//!   the worker holding the old association whichever address it comes from; the runtime
//!   picks ephemeral ports for outgoing associations so that the hash names the connecting
//!   worker too (see [`port_owner`]);
//! - every worker, for ABORT and SHUTDOWN COMPLETE with the T bit (RFC 9260 §8.5.1): those
//!   carry the *sender's* tag, which names no worker here. Each worker's endpoint looks the
//!   association up by addresses and ports; the ones without it discard the packet silently as
//!   RFC 9260 §8.4 (2) and (6) prescribe.
//!
//! The same rules exist twice: as [`owner`] for software steering, and as classic BPF programs
//! the kernel runs before a packet reaches a socket ([`reuseport_program`] selects the socket
//! of a `SO_REUSEPORT` UDP group, [`raw_filter_program`] keeps a worker's raw socket to its
//! share). The unit tests run the programs in a small interpreter against [`owner`].

use sctp_stack::endpoint::tag_owner;

/// Chunk type of ABORT (RFC 9260 §3.3.7).
const ABORT: u8 = 6;
/// Chunk type of SHUTDOWN COMPLETE (RFC 9260 §3.3.13).
const SHUTDOWN_COMPLETE: u8 = 14;
/// Fibonacci hashing multiplier (2^32 / golden ratio).
const PORT_HASH_MUL: u32 = 0x9E37_79B1;

/// The workers a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// One worker.
    Worker(usize),
    /// Every worker (T-bit ABORT and SHUTDOWN COMPLETE).
    All,
}

/// The worker that answers INITs between `src_port` (the peer's) and `dst_port` (ours).
///
/// Symmetric in the two ports: an INIT this runtime sends to one of its own listeners
/// (loopback, or two endpoints of one host) reaches the worker that sent it, so both ends of
/// such an association live on one worker and never talk across cores.
pub fn port_owner(src_port: u16, dst_port: u16, workers: usize) -> usize {
    let sum = u32::from(src_port) + u32::from(dst_port);
    let h = sum.wrapping_mul(PORT_HASH_MUL) >> 16;
    (h % (workers.max(1) as u32)) as usize
}

/// The owner of a received SCTP packet (common header first) among `workers`. Packets too
/// short to carry a chunk go to worker 0, whose endpoint drops them.
pub fn owner(packet: &[u8], workers: usize) -> Owner {
    if workers <= 1 {
        return Owner::Worker(0);
    }
    let (Some(ports), Some(tag), Some(&chunk_type), Some(&flags)) = (
        packet.get(0..4),
        packet.get(4..8),
        packet.get(12),
        packet.get(13),
    ) else {
        return Owner::Worker(0);
    };
    let tag = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]);
    if tag == 0 {
        let src = u16::from_be_bytes([ports[0], ports[1]]);
        let dst = u16::from_be_bytes([ports[2], ports[3]]);
        return Owner::Worker(port_owner(src, dst, workers));
    }
    if matches!(chunk_type, ABORT | SHUTDOWN_COMPLETE) && flags & 1 != 0 {
        return Owner::All;
    }
    Owner::Worker(tag_owner(tag, workers as u32) as usize)
}

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const MSH: u16 = 0xa0;
const ADD: u16 = 0x00;
const MUL: u16 = 0x20;
const RSH: u16 = 0x70;
const MOD: u16 = 0x90;
#[cfg(test)]
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JSET: u16 = 0x40;
const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;

/// Bytes a raw-socket filter keeps of an accepted packet (all of it).
const ACCEPT: u32 = 0x0004_0000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Init,
    TBit,
    TagReload,
    Accept,
    Drop,
}

#[derive(Clone, Copy)]
enum Op {
    Insn(Insn),
    /// A conditional jump: `code` with `k`, to `jt` or `jf` (None = next instruction).
    Jump(u16, u32, Option<Label>, Option<Label>),
    Mark(Label),
}

/// A tiny assembler: resolves forward jumps to labels.
fn assemble(ops: &[Op]) -> Vec<Insn> {
    let mut at = Vec::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Mark(l) => at.push((*l, n)),
            _ => n += 1,
        }
    }
    let target = |l: Label| at.iter().find(|(m, _)| *m == l).map_or(0, |(_, i)| *i);
    let mut out = Vec::with_capacity(n);
    for op in ops {
        let pc = out.len();
        let rel = |l: Option<Label>| -> u8 {
            l.map_or(0, |l| u8::try_from(target(l) - pc - 1).unwrap_or(0))
        };
        match *op {
            Op::Insn(i) => out.push(i),
            Op::Jump(code, k, jt, jf) => out.push(Insn {
                code: JMP | code | K,
                jt: rel(jt),
                jf: rel(jf),
                k,
            }),
            Op::Mark(_) => {}
        }
    }
    out
}

fn insn(code: u16, k: u32) -> Op {
    Op::Insn(Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    })
}

/// Loads at offset `off` of the SCTP header: absolute, or relative to X (the IPv4 header
/// length) when `ipv4_header` is set.
fn load(size: u16, off: u32, ipv4_header: bool) -> Op {
    insn(LD | size | if ipv4_header { IND } else { ABS }, off)
}

/// The decision shared by both programs: falls through with the tag's worker in A, jumps to
/// `Label::Init` for tag 0 and to `Label::Accept` for T-bit packets.
fn classify(ops: &mut Vec<Op>, ipv4_header: bool, workers: u32) {
    if ipv4_header {
        // X = 4 * (IHL): the offset of the SCTP header behind the IPv4 header.
        ops.push(insn(LDX | B | MSH, 0));
    }
    // Bounds check: packets too short to hold a chunk header end the program with 0, which
    // is worker 0 for the reuseport program (as in [`owner`]) and "drop" for raw filters.
    ops.push(load(B, 13, ipv4_header));
    ops.push(load(W, 4, ipv4_header));
    ops.push(Op::Jump(JEQ, 0, Some(Label::Init), None));
    ops.push(load(B, 12, ipv4_header));
    ops.push(Op::Jump(JEQ, u32::from(ABORT), Some(Label::TBit), None));
    ops.push(Op::Jump(
        JEQ,
        u32::from(SHUTDOWN_COMPLETE),
        Some(Label::TBit),
        Some(Label::TagReload),
    ));
    ops.push(Op::Mark(Label::TBit));
    ops.push(load(B, 13, ipv4_header));
    ops.push(Op::Jump(JSET, 1, Some(Label::Accept), None));
    ops.push(Op::Mark(Label::TagReload));
    ops.push(load(W, 4, ipv4_header));
    ops.push(insn(ALU | MOD | K, workers));
}

/// A = the INIT worker of the ports ([`port_owner`]): the sum of both ports (through scratch
/// memory M\[0\], since X may hold the IPv4 header length until the last load), hashed.
fn port_hash(ops: &mut Vec<Op>, ipv4_header: bool, workers: u32) {
    ops.push(load(H, 2, ipv4_header));
    ops.push(insn(ST, 0));
    ops.push(load(H, 0, ipv4_header));
    ops.push(insn(LDX | MEM, 0));
    ops.push(insn(ALU | ADD | X, 0));
    ops.push(insn(ALU | MUL | K, PORT_HASH_MUL));
    ops.push(insn(ALU | RSH | K, 16));
    ops.push(insn(ALU | MOD | K, workers));
}

/// The `SO_ATTACH_REUSEPORT_CBPF` program of a UDP socket group with one socket per worker
/// (socket *i* = worker *i*, in bind order). It sees the UDP payload, i.e. the SCTP packet, and
/// returns the worker index; T-bit packets go to the INIT worker of their ports, which copies
/// them to the others.
pub fn reuseport_program(workers: u32) -> Vec<Insn> {
    let workers = workers.max(1);
    let mut ops = Vec::new();
    classify(&mut ops, false, workers);
    ops.push(insn(RET | RET_A, 0));
    // T-bit packets (the `Accept` target of `classify`) and INITs: by ports.
    ops.push(Op::Mark(Label::Accept));
    ops.push(Op::Mark(Label::Init));
    port_hash(&mut ops, false, workers);
    ops.push(insn(RET | RET_A, 0));
    assemble(&ops)
}

/// The `SO_ATTACH_FILTER` program of worker `worker`'s raw socket: keeps the packets
/// [`owner`] gives to it (and T-bit packets, which every worker gets). IPv4 raw sockets see the
/// IP header (`ipv4_header`), IPv6 raw sockets the SCTP packet.
pub fn raw_filter_program(worker: u32, workers: u32, ipv4_header: bool) -> Vec<Insn> {
    let workers = workers.max(1);
    let mut ops = Vec::new();
    classify(&mut ops, ipv4_header, workers);
    ops.push(Op::Jump(
        JEQ,
        worker,
        Some(Label::Accept),
        Some(Label::Drop),
    ));
    ops.push(Op::Mark(Label::Init));
    port_hash(&mut ops, ipv4_header, workers);
    ops.push(Op::Jump(
        JEQ,
        worker,
        Some(Label::Accept),
        Some(Label::Drop),
    ));
    ops.push(Op::Mark(Label::Drop));
    ops.push(insn(RET | K, 0));
    ops.push(Op::Mark(Label::Accept));
    ops.push(insn(RET | K, ACCEPT));
    assemble(&ops)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    /// A classic BPF interpreter for the instructions the programs use, with the kernel's
    /// semantics: out-of-range loads end the program with 0.
    pub(crate) fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let mut mem = [0u32; 16];
        let load = |off: u32, size: usize| -> Option<u32> {
            let off = usize::try_from(off).ok()?;
            let b = pkt.get(off..off.checked_add(size)?)?;
            Some(b.iter().fold(0u32, |v, &byte| (v << 8) | u32::from(byte)))
        };
        for _ in 0..prog.len() + 1 {
            let Some(i) = prog.get(pc) else { return 0 };
            pc += 1;
            let size = |code: u16| match code & 0x18 {
                0x00 => 4,
                0x08 => 2,
                _ => 1,
            };
            match i.code & 0x07 {
                0x00 => {
                    let off = if i.code & 0xe0 == IND {
                        x.wrapping_add(i.k)
                    } else {
                        i.k
                    };
                    match load(off, size(i.code)) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                0x01 if i.code & 0xe0 == MEM => x = mem[i.k as usize],
                0x01 => match load(i.k, 1) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                },
                0x02 => mem[i.k as usize] = a,
                0x04 if i.code & 0x08 == X => match i.code & 0xf0 {
                    ADD => a = a.wrapping_add(x),
                    other => panic!("unexpected ALU X op {other:#x}"),
                },
                0x04 => match i.code & 0xf0 {
                    MUL => a = a.wrapping_mul(i.k),
                    RSH => a = a.checked_shr(i.k).unwrap_or(0),
                    MOD => a %= i.k,
                    other => panic!("unexpected ALU op {other:#x}"),
                },
                0x05 => {
                    let taken = match i.code & 0xf0 {
                        JA => {
                            pc += i.k as usize;
                            continue;
                        }
                        JEQ => a == i.k,
                        JSET => a & i.k != 0,
                        other => panic!("unexpected jump {other:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                0x06 => return if i.code & 0x18 == RET_A { a } else { i.k },
                other => panic!("unexpected class {other:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    fn packet(rng: &mut ChaCha8Rng) -> Vec<u8> {
        let mut p = vec![0u8; 12 + 4 + (rng.next_u32() % 24) as usize];
        rng.fill_bytes(&mut p);
        match rng.next_u32() % 6 {
            0 => p[4..8].fill(0),
            1 => {
                p[12] = ABORT;
                p[13] |= 1;
            }
            2 => {
                p[12] = SHUTDOWN_COMPLETE;
                p[13] &= !1;
            }
            3 => p[12] = ABORT,
            _ => {}
        }
        p
    }

    fn ipv4(sctp: &[u8], ihl_words: u8) -> Vec<u8> {
        let mut h = vec![0u8; usize::from(ihl_words) * 4];
        h[0] = 0x40 | ihl_words;
        h[9] = 132;
        h.extend_from_slice(sctp);
        h
    }

    #[test]
    fn inits_spread_by_ports_and_tags_name_their_worker() {
        let mut init = vec![0u8; 32];
        init[0..2].copy_from_slice(&5000u16.to_be_bytes());
        init[2..4].copy_from_slice(&9u16.to_be_bytes());
        init[12] = 1;
        assert_eq!(owner(&init, 4), Owner::Worker(port_owner(5000, 9, 4)));
        let mut data = init.clone();
        data[4..8].copy_from_slice(&0x0102_0307u32.to_be_bytes());
        data[12] = 0;
        assert_eq!(owner(&data, 4), Owner::Worker(3));
        data[12] = ABORT;
        data[13] = 1;
        assert_eq!(owner(&data, 4), Owner::All);
        assert_eq!(owner(&data, 1), Owner::Worker(0));
        assert_eq!(owner(&data[..13], 4), Owner::Worker(0));
        assert_eq!(run(&reuseport_program(4), &data[..13]), 0);
    }

    #[test]
    fn the_port_hash_is_symmetric_so_self_connections_stay_on_one_worker() {
        for workers in [2usize, 3, 4] {
            for (a, b) in [(7u16, 49152u16), (9899, 50000), (1, 65535), (5000, 5000)] {
                assert_eq!(port_owner(a, b, workers), port_owner(b, a, workers));
            }
        }
        // And the kernel programs agree for an INIT and the reverse INIT.
        let mut init = vec![0u8; 32];
        init[0..2].copy_from_slice(&49321u16.to_be_bytes());
        init[2..4].copy_from_slice(&7u16.to_be_bytes());
        init[12] = 1;
        let mut reverse = init.clone();
        reverse[0..2].copy_from_slice(&7u16.to_be_bytes());
        reverse[2..4].copy_from_slice(&49321u16.to_be_bytes());
        for workers in [2u32, 3] {
            let prog = reuseport_program(workers);
            assert_eq!(run(&prog, &init), run(&prog, &reverse));
        }
    }

    #[test]
    fn the_port_hash_spreads_sequential_ports_over_every_worker() {
        for workers in [2usize, 3, 4, 8] {
            let mut seen = vec![0u32; workers];
            for p in 49152..49152 + 4000u16 {
                seen[port_owner(9899, p, workers)] += 1;
            }
            let expected = 4000 / workers as u32;
            for n in seen {
                assert!(n > expected / 2, "uneven spread over {workers} workers");
            }
        }
    }

    #[test]
    fn the_reuseport_program_picks_the_software_owner() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for workers in [1u32, 2, 3, 4, 7] {
            let prog = reuseport_program(workers);
            assert!(prog.len() < 64);
            for _ in 0..5000 {
                let p = packet(&mut rng);
                let got = run(&prog, &p) as usize;
                match owner(&p, workers as usize) {
                    Owner::Worker(w) => assert_eq!(got, w, "{p:02x?}"),
                    // T-bit packets: the INIT worker of the ports, which copies them on.
                    Owner::All => {
                        let src = u16::from_be_bytes([p[0], p[1]]);
                        let dst = u16::from_be_bytes([p[2], p[3]]);
                        assert_eq!(got, port_owner(src, dst, workers as usize));
                    }
                }
            }
        }
    }

    #[test]
    fn raw_filters_keep_exactly_each_workers_share() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for workers in [2u32, 3, 5] {
            for ihl in [None, Some(5u8), Some(7u8)] {
                let progs: Vec<_> = (0..workers)
                    .map(|w| raw_filter_program(w, workers, ihl.is_some()))
                    .collect();
                for _ in 0..3000 {
                    let sctp = packet(&mut rng);
                    let wire = match ihl {
                        Some(words) => ipv4(&sctp, words),
                        None => sctp.clone(),
                    };
                    let kept: Vec<bool> = progs.iter().map(|p| run(p, &wire) != 0).collect();
                    match owner(&sctp, workers as usize) {
                        Owner::Worker(w) => {
                            for (i, k) in kept.iter().enumerate() {
                                assert_eq!(*k, i == w, "worker {i} of {workers}: {sctp:02x?}");
                            }
                        }
                        Owner::All => assert!(kept.iter().all(|k| *k)),
                    }
                }
            }
        }
    }

    #[test]
    fn packets_too_short_for_a_chunk_pass_no_raw_filter() {
        let progs: Vec<_> = (0..2).map(|w| raw_filter_program(w, 2, false)).collect();
        for len in 0..14 {
            let p = vec![0u8; len];
            assert!(progs.iter().all(|prog| run(prog, &p) == 0), "len {len}");
        }
    }
}
