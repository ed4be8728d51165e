//! Interoperability of the wire format with real tools, run by `.ci/wire-interop.sh`:
//!
//! - tshark decodes a capture holding every chunk, parameter and cause we implement
//!   (raw over IPv4 and UDP-encapsulated on port 9899) exactly as we do, with good
//!   checksums and no malformed packets or error-level expert info;
//! - a live association between usrsctp's echo client and server, captured on loopback,
//!   parses at every level and re-encodes byte-identical.
//!
//! Both need external tools and fail (not skip) when they are missing.

mod wire_util;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sctp_stack::pcap::{PcapWriter, SCTP_UDP_TUNNELING_PORT};
use sctp_stack::time::Timestamp;
use sctp_stack::wire::{CauseCode, Chunk, ChunkType, Packet, Param, ParamType};

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sctp-wire-{}-{name}", std::process::id()))
}

/// What we see in a packet, in dissection order, in tshark's terms.
#[derive(Debug, Default)]
struct Seen {
    chunks: Vec<u8>,
    params: Vec<u16>,
    causes: Vec<u16>,
}

fn our_view(bytes: &[u8]) -> Seen {
    let pkt = Packet::new_checked(bytes).expect("our packet parses");
    let mut seen = Seen::default();
    for raw in pkt.chunks() {
        seen.chunks.push(raw.chunk_type().0);
        let chunk = Chunk::parse(&raw).expect("our chunk parses");
        let mut causes = Vec::new();
        let params = match chunk {
            Chunk::Init(c) => Some(c.params),
            Chunk::InitAck(c) => Some(c.params),
            Chunk::Asconf(c) => Some(c.params),
            Chunk::AsconfAck(c) => Some(c.params),
            Chunk::ReConfig(c) => Some(c.params),
            Chunk::Heartbeat(_) | Chunk::HeartbeatAck(_) => {
                seen.params.push(ParamType::HEARTBEAT_INFO.0);
                None
            }
            Chunk::Abort(c) => {
                causes.extend(c.causes.iter().map(|c| c.expect("cause")));
                None
            }
            Chunk::ErrorChunk(c) => {
                causes.extend(c.causes.iter().map(|c| c.expect("cause")));
                None
            }
            _ => None,
        };
        if let Chunk::Asconf(c) = chunk {
            seen.params.push(match c.address {
                std::net::IpAddr::V4(_) => 5,
                std::net::IpAddr::V6(_) => 6,
            });
        }
        for p in params.iter().flat_map(|l| l.iter()) {
            let p = p.expect("param");
            seen.params.push(p.param_type().0);
            if let Param::ErrorCauseIndication { causes: nested, .. } = p {
                causes.extend(nested.iter().map(|c| c.expect("cause")));
            }
        }
        for c in causes {
            seen.causes.push(c.code().0);
            // tshark dissects the chunk inside an Unrecognized Chunk Type cause.
            if let sctp_stack::wire::Cause::UnrecognizedChunkType(inner) = c {
                seen.chunks.push(inner[0]);
            }
        }
    }
    seen
}

fn parse_list<T: Copy>(field: &str, parse: fn(&str) -> T) -> Vec<T> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse(s.trim()))
        .collect()
}

fn hex16(s: &str) -> u16 {
    u16::from_str_radix(s.trim_start_matches("0x"), 16).expect("tshark hex field")
}

#[test]
#[ignore = "needs tshark; run by .ci/wire-interop.sh"]
fn tshark_decodes_every_chunk_parameter_and_cause_like_we_do() {
    let samples = wire_util::sample_packets();
    let path = scratch("samples.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let mut w = PcapWriter::new(file).expect("pcap header");
    let (a, b) = ("198.18.0.1", "198.18.0.2");
    for (i, p) in samples.iter().enumerate() {
        let ts = Timestamp::from_millis(i as u64);
        w.write_sctp(ts, a.parse().expect("ip"), b.parse().expect("ip"), p)
            .expect("record");
        let port = SCTP_UDP_TUNNELING_PORT;
        w.write_sctp_over_udp(
            ts,
            format!("{a}:{port}").parse().expect("sa"),
            format!("{b}:{port}").parse().expect("sa"),
            p,
        )
        .expect("record");
    }
    w.flush().expect("flush");
    drop(w);

    let (ok, out, err) = wire_util::run(
        "tshark",
        &[
            "-o",
            "sctp.checksum:CRC-32C",
            "-r",
            path.to_str().expect("utf-8 path"),
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "frame.number",
            "-e",
            "sctp.chunk_type",
            "-e",
            "sctp.checksum.status",
            "-e",
            "sctp.parameter_type",
            "-e",
            "sctp.cause_code",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.malformed",
            "-e",
            "udp.dstport",
        ],
    );
    let _ = std::fs::remove_file(&path);
    assert!(ok, "tshark failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), samples.len() * 2, "one line per frame:\n{out}");

    let mut all_chunks = BTreeSet::new();
    let mut all_params = BTreeSet::new();
    let mut all_causes = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 8, "frame {}: {line}", i + 1);
        let ours = our_view(&samples[i / 2]);
        let udp = i % 2 == 1;
        assert_eq!(
            f[7],
            if udp { "9899" } else { "" },
            "frame {}: encapsulation",
            i + 1
        );
        // Same chunk types, same order.
        let theirs: Vec<u8> = parse_list(f[1], |s| s.parse().expect("chunk type"));
        assert_eq!(theirs, ours.chunks, "frame {}: chunk types", i + 1);
        // Checksum good (1 = PROTO_CHECKSUM_E_GOOD).
        assert_eq!(f[2], "1", "frame {}: checksum status", i + 1);
        // Every parameter we put in is one tshark found (it also lists nested ones).
        let mut their_params: Vec<u16> = parse_list(f[3], hex16);
        for p in &ours.params {
            let pos = their_params
                .iter()
                .position(|t| t == p)
                .unwrap_or_else(|| panic!("frame {}: tshark misses parameter {p:#x}", i + 1));
            their_params.remove(pos);
        }
        // Same causes, same order.
        let their_causes: Vec<u16> = parse_list(f[4], hex16);
        assert_eq!(their_causes, ours.causes, "frame {}: cause codes", i + 1);
        // No malformed packet, no error-level expert info (PI_ERROR = 0x00800000).
        assert!(f[6].is_empty(), "frame {}: malformed", i + 1);
        for sev in parse_list(f[5], |s| s.parse::<u32>().expect("severity")) {
            assert!(
                sev < 0x0080_0000,
                "frame {}: expert severity {sev:#x}",
                i + 1
            );
        }
        all_chunks.extend(ours.chunks.iter().copied());
        all_params.extend(ours.params.iter().copied());
        all_causes.extend(ours.causes.iter().copied());
    }

    // The samples cover every codepoint we name.
    for t in 0..=255u8 {
        if ChunkType(t).is_known() {
            assert!(
                all_chunks.contains(&t),
                "no sample of chunk {:?}",
                ChunkType(t)
            );
        }
    }
    for t in 0..=u16::MAX {
        if ParamType(t).is_known() {
            assert!(all_params.contains(&t), "no sample of {:?}", ParamType(t));
        }
        if CauseCode(t).is_known() {
            assert!(all_causes.contains(&t), "no sample of {:?}", CauseCode(t));
        }
    }
}

/// Runs a child for at most `limit`, then kills it; returns whether it exited by itself
/// with success.
/// (Polls every 50 ms; the core crates' lints keep clocks out of this crate's code.)
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> bool {
    let polls = limit.as_millis() / 50;
    for _ in 0..polls {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
#[ignore = "needs root, dumpcap and libusrsctp-examples; run by .ci/wire-interop.sh"]
fn a_live_usrsctp_association_reencodes_byte_identical() {
    // Two UDP encapsulation ports unlikely to collide with anything else on the host.
    let base = 20_000 + (std::process::id() % 20_000) as u16 * 2;
    let (server_port, client_port) = (base, base + 1);
    let path = scratch("usrsctp.pcap");
    let _ = std::fs::remove_file(&path);
    let filter = format!("udp port {server_port} or udp port {client_port}");
    let mut dumpcap = Command::new("dumpcap")
        .args([
            "-i",
            "lo",
            "-P",
            "-q",
            "-a",
            "duration:30",
            "-f",
            &filter,
            "-w",
        ])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run dumpcap (install tshark; capturing needs root)");
    // dumpcap writes the file header once it captures.
    let mut polls = 0;
    while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 24 {
        polls += 1;
        assert!(polls < 200, "dumpcap did not start capturing within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));

    let mut server = Command::new("/usr/lib/usrsctp/echo_server")
        .args([server_port.to_string(), client_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run /usr/lib/usrsctp/echo_server (install libusrsctp-examples)");
    // Let the server bind its encapsulation port (a lost INIT would only cost a 1 s retry).
    std::thread::sleep(Duration::from_millis(1000));
    let mut client = Command::new("/usr/lib/usrsctp/client")
        .args([
            "127.0.0.1".to_string(),
            "7".to_string(),
            "0".to_string(),
            client_port.to_string(),
            server_port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run /usr/lib/usrsctp/client (install libusrsctp-examples)");
    {
        let mut stdin = client.stdin.take().expect("stdin");
        for i in 0..5 {
            writeln!(stdin, "message {i} from the wire interop test").expect("write");
        }
        std::thread::sleep(Duration::from_millis(1500));
        // Closing stdin makes the client shut the association down.
    }
    let client_ok = wait_bounded(&mut client, Duration::from_secs(15));
    let _ = server.kill();
    let _ = server.wait();
    std::thread::sleep(Duration::from_millis(300));
    // SIGINT makes dumpcap flush and exit.
    let _ = Command::new("kill")
        .args(["-INT", &dumpcap.id().to_string()])
        .status();
    wait_bounded(&mut dumpcap, Duration::from_secs(10));
    assert!(client_ok, "the usrsctp client did not finish cleanly");

    let file = std::fs::read(&path).expect("capture written");
    let _ = std::fs::remove_file(&path);
    let pkts = wire_util::sctp_packets(&file, &[server_port, client_port]).expect("pcap");
    assert!(pkts.len() >= 10, "only {} packets captured", pkts.len());
    let mut seen = BTreeSet::new();
    for c in &pkts {
        let re = wire_util::parse_and_reencode(&c.sctp)
            .unwrap_or_else(|e| panic!("record {}: {e}", c.record));
        assert_eq!(re, c.sctp, "record {} differs after re-encoding", c.record);
        let pkt = Packet::new_checked(&c.sctp).expect("structure");
        seen.extend(pkt.chunks().map(|r| r.chunk_type().0));
    }
    for ty in [
        ChunkType::INIT,
        ChunkType::INIT_ACK,
        ChunkType::COOKIE_ECHO,
        ChunkType::COOKIE_ACK,
        ChunkType::DATA,
        ChunkType::SACK,
        ChunkType::SHUTDOWN,
        ChunkType::SHUTDOWN_ACK,
        ChunkType::SHUTDOWN_COMPLETE,
    ] {
        assert!(seen.contains(&ty.0), "{ty:?} not captured");
    }
    println!("{} usrsctp packets re-encoded byte-identical", pkts.len());
}

#[test]
fn every_sample_packet_reencodes_byte_identical() {
    for (i, p) in wire_util::sample_packets().iter().enumerate() {
        let re = wire_util::parse_and_reencode(p).unwrap_or_else(|e| panic!("sample {i}: {e}"));
        assert_eq!(&re, p, "sample {i}");
    }
}
