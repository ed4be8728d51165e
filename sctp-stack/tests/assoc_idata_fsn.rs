//! I-DATA fragment numbering (the FSN, RFC 8260 §2.1) over the simulated network, with a
//! hand-built peer: a message is delivered only with every fragment from the first to the
//! last, an impossible FSN aborts the association with a Protocol Violation (RFC 9260
//! §3.3.10.13) instead of being acknowledged and dropped, and a peer numbering its
//! fragments the Linux way (the second fragment FSN 0) is recognized, its messages
//! reassembled whole and answered in its numbering. The sender's numbering is set by
//! [`AssociationConfig::i_data_fsn`].

mod assoc_util;

use std::time::Duration;

use assoc_util::*;
use sctp_stack::sim::LinkConfig;
use sctp_stack::wire::Ppid;
use sctp_stack::{AbortReason, AssociationConfig, Event, IDataFsn, SendOptions};

fn idata_config() -> AssociationConfig {
    let mut c = fast_config();
    c.i_data = true;
    c.outbound_streams = 8;
    c.inbound_streams = 8;
    c
}

/// An I-DATA chunk as sent: (TSN, stream, MID, PPID or FSN, flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IChunk {
    tsn: u32,
    stream: u16,
    mid: u32,
    word: u32,
    flags: u8,
}

fn sent_idata(log: &Log, from: usize) -> Vec<IChunk> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.from == from)
        .flat_map(|r| r.chunks.clone())
        .filter(|c| c.ty == I_DATA && c.value.len() >= 16)
        .map(|c| IChunk {
            tsn: u32::from_be_bytes(c.value[0..4].try_into().unwrap()),
            stream: u16::from_be_bytes([c.value[4], c.value[5]]),
            mid: u32::from_be_bytes(c.value[8..12].try_into().unwrap()),
            word: u32::from_be_bytes(c.value[12..16].try_into().unwrap()),
            flags: c.flags,
        })
        .collect()
}

/// A connected I-DATA pair, recorded, with I-DATA chunks injected into B in A's name (B's
/// packets no longer reach A).
struct Peer {
    p: Pair,
    log: Log,
    tag: u32,
    src_port: u16,
    tsn: u32,
}

impl Peer {
    fn new(seed: u64, a: AssociationConfig, b: AssociationConfig) -> Peer {
        let (mut p, log) = Pair::connected_recorded(
            seed,
            a,
            b,
            LinkConfig::with_latency(Duration::from_millis(5)),
        );
        // One real message so we know A's TSN.
        p.send(A, 0, b"hello").unwrap();
        p.net.run_for(Duration::from_millis(100));
        assert_eq!(p.recv_all(B).len(), 1);
        let tsn = sent_idata(&log, A).last().unwrap().tsn.wrapping_add(1);
        let (tag, _) = tags(&log);
        // A never sent the TSNs injected in its name: B's answers must not reach it (it
        // would abort on a SACK for them). The log still records them.
        p.net.link_mut(B, A).up = false;
        let src_port = log
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.from == A)
            .unwrap()
            .src_port;
        Peer {
            p,
            log,
            tag,
            src_port,
            tsn,
        }
    }

    /// Injects one I-DATA chunk with TSN `self.tsn + dt`.
    fn send(&mut self, dt: u32, stream: u16, mid: u32, word: u32, flags: u8, payload: &[u8]) {
        let v = idata_value(self.tsn.wrapping_add(dt), stream, mid, word, payload);
        let pkt = build(self.src_port, PORT, self.tag, &[chunk(I_DATA, flags, &v)]);
        inject(&mut self.p.net, A, &pkt);
        self.p.net.run_for(Duration::from_millis(1));
    }

    fn aborted_with_protocol_violation(&mut self) -> bool {
        let b = self.p.b();
        self.p.net.node(B).take_events().iter().any(|(id, e)| {
            *id == b && matches!(e, Event::Aborted(AbortReason::Local(c)) if c.code.get() == 13)
        }) && self
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.from == B && r.has(ct::ABORT))
    }
}

fn frag(i: u8, len: usize) -> Vec<u8> {
    vec![i; len]
}

#[test]
fn a_linux_numbered_message_arrives_whole_and_is_answered_in_that_numbering() {
    let mut x = Peer::new(31, idata_config(), idata_config());
    // Linux: B with the PPID, then FSN 0, FSN 1 (E).
    x.send(0, 2, 0, 42, 0x02, &frag(1, 1000));
    x.send(1, 2, 0, 0, 0x00, &frag(2, 1000));
    x.send(2, 2, 0, 1, 0x01, &frag(3, 500));
    x.p.net.run_for(Duration::from_millis(50));
    let got = x.p.recv_all(B);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ppid, Ppid(42));
    assert_eq!(
        got[0].data,
        [frag(1, 1000), frag(2, 1000), frag(3, 500)].concat()
    );
    assert!(x.p.assoc(B).status().unwrap().i_data_peer_linux_fsn);
    // B's own fragmented message now uses the Linux numbering (the receiving side of that
    // is in the_linux_numbering_is_sent_when_configured).
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    x.p.assoc(B)
        .send(4, Ppid(7), data.clone(), SendOptions::default())
        .unwrap();
    x.p.net.run_for(Duration::from_millis(200));
    // (Unanswered, it is retransmitted: each TSN counts once.)
    let mut frags: Vec<IChunk> = sent_idata(&x.log, B)
        .into_iter()
        .filter(|c| c.stream == 4 && c.mid == 0)
        .collect();
    let mut seen = std::collections::HashSet::new();
    frags.retain(|c| seen.insert(c.tsn));
    assert!(frags.len() >= 4, "{frags:?}");
    assert_eq!(frags[0].word, 7, "the PPID in the first fragment");
    for (i, c) in frags.iter().enumerate().skip(1) {
        assert_eq!(c.word, i as u32 - 1, "Linux FSN of fragment {i}");
    }
}

#[test]
fn a_fragment_with_an_impossible_fsn_aborts_and_no_short_message_is_delivered() {
    // Duplicate FSN under a new TSN.
    let mut x = Peer::new(32, idata_config(), idata_config());
    x.send(0, 1, 0, 9, 0x02, &frag(1, 800));
    x.send(1, 1, 0, 1, 0x00, &frag(2, 800));
    x.send(2, 1, 0, 1, 0x00, &frag(2, 800));
    x.send(3, 1, 0, 2, 0x01, &frag(3, 800));
    x.p.net.run_for(Duration::from_millis(50));
    assert!(x.aborted_with_protocol_violation());
    assert!(x.p.recv_all(B).is_empty());

    // RFC numbering established, then a non-first fragment with FSN 0.
    let mut x = Peer::new(33, idata_config(), idata_config());
    x.send(0, 1, 0, 9, 0x02, &frag(1, 800));
    x.send(1, 1, 0, 1, 0x01, &frag(2, 800));
    assert_eq!(x.p.recv_all(B).len(), 1);
    x.send(2, 1, 1, 9, 0x02, &frag(1, 800));
    x.send(3, 1, 1, 0, 0x00, &frag(2, 800));
    x.send(4, 1, 1, 1, 0x01, &frag(3, 800));
    x.p.net.run_for(Duration::from_millis(50));
    assert!(x.aborted_with_protocol_violation());
    assert!(x.p.recv_all(B).is_empty());
}

#[test]
fn a_missing_fragment_holds_the_message_until_it_arrives() {
    let mut x = Peer::new(34, idata_config(), idata_config());
    // B, FSN 1 (TSN +2) and FSN 2 with E: TSN +1 is missing. Under either numbering a
    // fragment may be missing, so nothing is delivered.
    x.send(0, 3, 0, 9, 0x02, &frag(1, 700));
    x.send(2, 3, 0, 1, 0x00, &frag(3, 700));
    x.send(3, 3, 0, 2, 0x01, &frag(4, 700));
    x.p.net.run_for(Duration::from_millis(50));
    assert!(x.p.recv_all(B).is_empty());
    // It was the Linux FSN 0.
    x.send(1, 3, 0, 0, 0x00, &frag(2, 700));
    x.p.net.run_for(Duration::from_millis(50));
    let got = x.p.recv_all(B);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data,
        [frag(1, 700), frag(2, 700), frag(3, 700), frag(4, 700)].concat()
    );
}

#[test]
fn the_linux_numbering_is_sent_when_configured() {
    let mut a = idata_config();
    a.i_data_fsn = IDataFsn::Linux;
    let (mut p, log) = Pair::connected_recorded(
        35,
        a,
        idata_config(),
        LinkConfig::with_latency(Duration::from_millis(5)),
    );
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    p.assoc(A)
        .send(1, Ppid(5), data.clone(), SendOptions::default())
        .unwrap();
    p.net.run_for(Duration::from_millis(200));
    let frags: Vec<IChunk> = sent_idata(&log, A)
        .into_iter()
        .filter(|c| c.stream == 1)
        .collect();
    assert!(frags.len() >= 3, "{frags:?}");
    assert_eq!(frags[0].flags & 0x03, 0x02);
    for (i, c) in frags.iter().enumerate().skip(1) {
        assert_eq!(c.word, i as u32 - 1, "Linux FSN of fragment {i}");
    }
    // The receiver (RFC 8260 numbering of its own) recognizes it and delivers whole.
    let got = p.recv_all(B);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, data);
    assert!(p.assoc(B).status().unwrap().i_data_peer_linux_fsn);
    assert!(!p.assoc(A).status().unwrap().i_data_peer_linux_fsn);
}
