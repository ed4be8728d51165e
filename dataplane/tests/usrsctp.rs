//! The usrsctp wrapper (feature `usrsctp`): AF_CONN sockets of the one in-process stack
//! connect through the output queues and carry messages intact, in order, with their ends,
//! on the default link and across two links. The tests share the process's stack, so each
//! uses its own ports and addresses and never drains another's link.
#![cfg(all(target_os = "linux", feature = "usrsctp"))]

use std::io;
use std::time::{Duration, Instant};

use dataplane::usrsctp::{ConnSocket, Stack};

fn pump(stack: Stack) -> usize {
    let mut moved = 0;
    while let Some(p) = stack.take_output() {
        assert!(p.len() >= 12, "an SCTP packet has a common header");
        stack.input(&p);
        moved += 1;
        assert!(moved < 100_000, "packets keep coming");
    }
    moved
}

fn socket(stack: Stack) -> ConnSocket {
    let s = stack.socket().expect("socket");
    s.set_nonblocking(true).expect("nonblocking");
    s.set_nodelay(true).expect("nodelay");
    s
}

#[test]
fn two_conn_sockets_connect_and_carry_messages_intact() {
    let stack = Stack::get();
    let listener = socket(stack);
    listener.bind(41_001).expect("bind");
    listener.listen(1).expect("listen");
    let a = socket(stack);
    a.bind(41_002).expect("bind");
    a.connect(41_001).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(5);
    let b = loop {
        assert!(Instant::now() < deadline, "no association within 5 s");
        pump(stack);
        if let Some(b) = listener.accept().expect("accept") {
            break b;
        }
    };
    b.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        b.recv(&mut buf).expect_err("nothing sent yet").kind(),
        io::ErrorKind::WouldBlock
    );
    let messages: Vec<Vec<u8>> = (0..20u8)
        .map(|i| vec![i; 100 + usize::from(i) * 50])
        .collect();
    for m in &messages {
        assert_eq!(a.send(m).expect("send"), m.len());
    }
    assert!(
        pump(stack) > 0,
        "the data went out through the output queue"
    );
    for m in &messages {
        let (n, eor) = b.recv(&mut buf).expect("a message");
        assert!(eor, "each message arrives whole");
        assert_eq!(&buf[..n], &m[..]);
    }
    assert_eq!(stack.dropped(), 0);
}

#[test]
fn two_links_carry_packets_between_sides_by_address() {
    let stack = Stack::get();
    let (x, y) = (stack.register(7).unwrap(), stack.register(8).unwrap());
    assert!(stack.register(0).is_none(), "0 is not an address");
    let listener = socket(stack);
    listener.bind_on(y, 41_011).expect("bind");
    listener.listen(1).expect("listen");
    let a = socket(stack);
    a.bind_on(x, 41_012).expect("bind");
    a.connect_via(x, 41_011).expect("connect");
    // Packets sent through x arrive on y and answers sent to y arrive on x, as two
    // namespaces joined by a wire would carry them.
    let cross = |stack: Stack| {
        let mut moved = 0;
        for _ in 0..100_000 {
            let mut any = false;
            while let Some(p) = stack.take_output_for(x) {
                stack.input_on(y, &p);
                any = true;
                moved += 1;
            }
            while let Some(p) = stack.take_output_for(y) {
                stack.input_on(x, &p);
                any = true;
                moved += 1;
            }
            if !any {
                break;
            }
        }
        moved
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let b = loop {
        assert!(Instant::now() < deadline, "no association within 5 s");
        cross(stack);
        if let Some(b) = listener.accept().expect("accept") {
            break b;
        }
    };
    b.set_nonblocking(true).expect("nonblocking");
    a.send(b"across two links").expect("send");
    assert!(cross(stack) > 0);
    let mut buf = [0u8; 64];
    let (n, eor) = b.recv(&mut buf).expect("the message");
    assert!(eor);
    assert_eq!(&buf[..n], b"across two links");
}

// ---------------------------------------------------------------- RE-CONFIG with our stack

mod reconf {
    //! Stream reconfiguration (RFC 6525) between our stack and usrsctp over an AF_CONN link:
    //! each side resets its outgoing streams and the other performs it (SSNs restart at 0),
    //! and each adds streams. The packets go into a pcap that tshark must find clean.

    use std::net::IpAddr;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use dataplane::usrsctp::{
        ConnAddr, ConnSocket, Stack, notification, reset_direction, reset_flags,
    };
    use sctp_stack::pcap::PcapWriter;
    use sctp_stack::time::Timestamp;
    use sctp_stack::wire::Ppid;
    use sctp_stack::{
        AssociationId, Datagram, Endpoint, EndpointConfig, Event, ReconfOutcome, SendOptions,
        StreamDirection,
    };

    const OURS: &str = "10.77.0.1";
    const THEIRS: &str = "10.77.0.2";
    const RE_CONFIG: u8 = 0x82;

    struct Link {
        stack: Stack,
        addr: ConnAddr,
        ep: Endpoint,
        start: Instant,
        last_tick: Instant,
        pcap: PcapWriter<Vec<u8>>,
        /// Every packet: (sent by us, bytes).
        log: Vec<(bool, Vec<u8>)>,
        events: Vec<Event>,
        /// Our association, once connected.
        id: Option<AssociationId>,
        buf: Vec<u8>,
    }

    impl Link {
        fn now(&self) -> Timestamp {
            Timestamp::from_micros(self.start.elapsed().as_micros() as u64)
        }

        /// Moves packets both ways and runs both stacks' timers until nothing moves.
        fn pump(&mut self) {
            let (ours, theirs): (IpAddr, IpAddr) = (OURS.parse().unwrap(), THEIRS.parse().unwrap());
            let ms = self.last_tick.elapsed().as_millis();
            if ms > 0 {
                self.stack.handle_timers(ms as u32);
                self.last_tick += Duration::from_millis(ms as u64);
            }
            for _ in 0..100_000 {
                let now = self.now();
                let mut moved = false;
                while let Some(p) = self.stack.take_output_for(self.addr) {
                    self.pcap.write_sctp(now, theirs, ours, &p).unwrap();
                    self.ep.handle_datagram(
                        now,
                        Datagram {
                            src: theirs,
                            dst: ours,
                            encaps_port: 0,
                            data: &p,
                        },
                    );
                    self.log.push((false, p));
                    moved = true;
                }
                if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                    self.ep.handle_timeout(now);
                }
                while let Some(t) = self.ep.poll_transmit(now, &mut self.buf) {
                    let p = self.buf[..t.len].to_vec();
                    self.pcap.write_sctp(now, ours, theirs, &p).unwrap();
                    self.stack.input_on(self.addr, &p);
                    self.log.push((true, p));
                    moved = true;
                }
                while let Some((id, e)) = self.ep.poll_event() {
                    if e == Event::Connected {
                        self.id = Some(id);
                    }
                    self.events.push(e);
                }
                if !moved {
                    return;
                }
            }
            panic!("packets keep coming");
        }

        /// Pumps until `done` or 5 s pass.
        fn pump_until(&mut self, what: &str, mut done: impl FnMut(&mut Link) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                self.pump();
                if done(self) {
                    return;
                }
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(2));
            }
        }

        /// DATA chunks (stream, SSN) sent by us (`ours`) or by usrsctp, from log index `from`.
        fn data_ssns(&self, ours: bool, from: usize) -> Vec<(u16, u16)> {
            let mut out = Vec::new();
            for (o, p) in self.log.iter().skip(from) {
                if *o != ours {
                    continue;
                }
                let mut at = 12;
                while at + 4 <= p.len() {
                    let len = usize::from(u16::from_be_bytes([p[at + 2], p[at + 3]]));
                    if len < 4 || at + len > p.len() {
                        break;
                    }
                    if p[at] == 0 && len >= 16 {
                        out.push((
                            u16::from_be_bytes([p[at + 8], p[at + 9]]),
                            u16::from_be_bytes([p[at + 10], p[at + 11]]),
                        ));
                    }
                    at += (len + 3) & !3;
                }
            }
            out
        }

        fn reconf_seen(&self, ours: bool) -> bool {
            self.log
                .iter()
                .any(|(o, p)| *o == ours && p.len() > 12 && p[12..].first() == Some(&RE_CONFIG))
        }
    }

    /// Reads everything waiting on `so`: data messages as (stream, SSN, bytes) and
    /// notifications as (type, flags).
    /// Data messages (stream, SSN, bytes) and notifications (type, flags).
    type Drained = (Vec<(u16, u16, Vec<u8>)>, Vec<(u16, u16)>);

    fn drain(so: &ConnSocket) -> Drained {
        let mut buf = vec![0u8; 65536];
        let (mut msgs, mut notes) = (Vec::new(), Vec::new());
        loop {
            match so.recv_info(&mut buf) {
                Ok(r) if r.notification => {
                    let t = u16::from_ne_bytes([buf[0], buf[1]]);
                    let f = u16::from_ne_bytes([buf[2], buf[3]]);
                    notes.push((t, f));
                }
                Ok(r) => {
                    let (s, n) = r.stream_ssn.expect("rcvinfo");
                    msgs.push((s, n, buf[..r.len].to_vec()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("usrsctp recv: {e}"),
            }
        }
        (msgs, notes)
    }

    fn has_reset(events: &[Event], dir: StreamDirection) -> bool {
        events.iter().any(|e| {
            matches!(e, Event::StreamReset { direction, outcome: ReconfOutcome::Performed, .. }
                if *direction == dir)
        })
    }

    #[test]
    fn usrsctp_and_our_stack_reset_and_add_streams_both_ways() {
        let stack = Stack::get();
        let addr = stack.register(4242).expect("address");
        let mut config = EndpointConfig::with_seed([42; 32]);
        config.association.nodelay = true;
        let mut ep = Endpoint::new(config).expect("endpoint");
        ep.listen(43_001).expect("listen");
        let mut link = Link {
            stack,
            addr,
            ep,
            start: Instant::now(),
            last_tick: Instant::now(),
            pcap: PcapWriter::new(Vec::new()).unwrap(),
            log: Vec::new(),
            events: Vec::new(),
            id: None,
            buf: vec![0; 65536],
        };
        let so = stack.socket().expect("socket");
        so.set_nonblocking(true).unwrap();
        so.set_nodelay(true).unwrap();
        so.enable_stream_reset(
            reset_flags::RESET_STREAM_REQ
                | reset_flags::RESET_ASSOC_REQ
                | reset_flags::CHANGE_ASSOC_REQ,
        )
        .expect("SCTP_ENABLE_STREAM_RESET");
        so.subscribe(notification::STREAM_RESET_EVENT)
            .expect("subscribe");
        so.subscribe(notification::STREAM_CHANGE_EVENT)
            .expect("subscribe");
        so.set_recv_rcvinfo(true).expect("rcvinfo");
        so.bind_on(addr, 43_002).expect("bind");
        so.connect_via(addr, 43_001).expect("connect");
        link.pump_until("the association", |l| l.events.contains(&Event::Connected));
        let id = link.id.expect("connected");
        let st = link.ep.association(id).unwrap().status().unwrap();
        assert!(st.reconf, "usrsctp offers RE-CONFIG and we use it");

        // Our outgoing reset, performed by usrsctp.
        let send = |l: &mut Link, n: u8| {
            l.ep.association(id)
                .unwrap()
                .send(0, Ppid(0), [n; 100], SendOptions::default())
                .unwrap();
        };
        for n in 0..5 {
            send(&mut link, n);
        }
        let mut got = Vec::new();
        let mut notes = Vec::new();
        link.pump_until("5 messages at usrsctp", |_| {
            let (m, n) = drain(&so);
            got.extend(m);
            notes.extend(n);
            got.len() >= 5
        });
        assert_eq!(
            got.iter().map(|m| m.1).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        link.ep.association(id).unwrap().reset_streams(&[]).unwrap();
        link.pump_until("our outgoing reset", |l| {
            has_reset(&l.events, StreamDirection::Outgoing)
        });
        for n in 5..8 {
            send(&mut link, n);
        }
        got.clear();
        link.pump_until("3 messages after the reset", |_| {
            let (m, n) = drain(&so);
            got.extend(m);
            notes.extend(n);
            got.len() >= 3
        });
        assert_eq!(
            got.iter().map(|m| (m.1, m.2[0])).collect::<Vec<_>>(),
            vec![(0, 5), (1, 6), (2, 7)],
            "usrsctp delivers from SSN 0 after the reset"
        );
        assert!(
            notes
                .iter()
                .any(|&(t, f)| t == notification::STREAM_RESET_EVENT && f & 0x0001 != 0),
            "usrsctp reports the reset of its incoming streams: {notes:?}"
        );

        // usrsctp's outgoing reset, performed by us.
        for n in 0..3u8 {
            so.send(&[100 + n; 50]).expect("usrsctp send");
        }
        let mut ours_got = Vec::new();
        link.pump_until("usrsctp's messages", |l| {
            let mut a = l.ep.association(id).unwrap();
            while let Some(m) = a.recv() {
                ours_got.push(m.data[0]);
            }
            ours_got.len() >= 3
        });
        so.reset_streams(reset_direction::OUTGOING, &[])
            .expect("SCTP_RESET_STREAMS");
        link.pump_until("usrsctp's reset performed here", |l| {
            has_reset(&l.events, StreamDirection::Incoming)
        });
        let mark = link.log.len();
        for n in 3..5u8 {
            so.send(&[100 + n; 50]).expect("usrsctp send");
        }
        link.pump_until("usrsctp's messages after its reset", |l| {
            let mut a = l.ep.association(id).unwrap();
            while let Some(m) = a.recv() {
                ours_got.push(m.data[0]);
            }
            ours_got.len() >= 5
        });
        assert_eq!(ours_got, vec![100, 101, 102, 103, 104]);
        assert_eq!(link.data_ssns(false, mark), vec![(0, 0), (0, 1)]);
        assert!(link.reconf_seen(true) && link.reconf_seen(false));

        // Streams added both ways.
        let before = link.ep.association(id).unwrap().status().unwrap();
        link.ep.association(id).unwrap().add_streams(2, 0).unwrap();
        link.pump_until("our added streams", |l| {
            l.events.iter().any(|e| {
                matches!(e, Event::StreamChange { outcome: ReconfOutcome::Performed, outbound_streams, .. }
                    if *outbound_streams == before.outbound_streams + 2)
            })
        });
        so.add_streams(0, 3).expect("SCTP_ADD_STREAMS");
        link.pump_until("usrsctp's added streams", |l| {
            l.events.iter().any(|e| {
                matches!(e, Event::StreamChange { outcome: ReconfOutcome::Performed, inbound_streams, .. }
                    if *inbound_streams == before.inbound_streams + 3)
            })
        });
        let last = before.outbound_streams + 1;
        link.ep
            .association(id)
            .unwrap()
            .send(last, Ppid(0), b"on a new stream", SendOptions::default())
            .unwrap();
        got.clear();
        link.pump_until("a message on an added stream", |_| {
            let (m, _) = drain(&so);
            got.extend(m);
            !got.is_empty()
        });
        assert_eq!(got[0].0, last);

        // usrsctp asks us to add outgoing streams (Add Incoming Streams Request): we
        // answer with an Add Outgoing Streams Request of ours, which it performs.
        let outbound = link
            .ep
            .association(id)
            .unwrap()
            .status()
            .unwrap()
            .outbound_streams;
        let changes = |l: &Link| {
            l.events
                .iter()
                .filter(|e| matches!(e, Event::StreamChange { .. }))
                .count()
        };
        let seen = changes(&link);
        so.add_streams(2, 0).expect("SCTP_ADD_STREAMS (incoming)");
        link.pump_until("streams added at usrsctp's request", |l| {
            l.events.iter().any(|e| {
                matches!(e, Event::StreamChange { outcome: ReconfOutcome::Performed, outbound_streams, .. }
                    if *outbound_streams == outbound + 2)
            })
        });
        assert!(changes(&link) > seen);

        // We ask usrsctp to reset its outgoing streams (Incoming SSN Reset Request): it
        // answers with its Outgoing SSN Reset Request, which we perform.
        let resets = |l: &Link| {
            l.events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::StreamReset {
                            direction: StreamDirection::Incoming,
                            outcome: ReconfOutcome::Performed,
                            ..
                        }
                    )
                })
                .count()
        };
        let before_resets = resets(&link);
        link.ep
            .association(id)
            .unwrap()
            .request_incoming_reset(&[])
            .unwrap();
        link.pump_until("usrsctp resetting its streams at our request", |l| {
            resets(l) > before_resets
        });
        let mark = link.log.len();
        so.send(b"after our request").expect("usrsctp send");
        link.pump_until("usrsctp's message after the reset", |l| {
            let mut a = l.ep.association(id).unwrap();
            a.recv().is_some()
        });
        assert_eq!(link.data_ssns(false, mark), vec![(0, 0)]);

        // SSN/TSN resets both ways; data flows afterwards with the new TSNs.
        let assoc_resets = |l: &Link| {
            l.events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::AssociationReset {
                            outcome: ReconfOutcome::Performed,
                            ..
                        }
                    )
                })
                .count()
        };
        link.ep
            .association(id)
            .unwrap()
            .reset_association()
            .unwrap();
        link.pump_until("our SSN/TSN reset", |l| assoc_resets(l) == 1);
        so.reset_association().expect("SCTP_RESET_ASSOC");
        link.pump_until("usrsctp's SSN/TSN reset", |l| assoc_resets(l) == 2);
        send(&mut link, 50);
        got.clear();
        link.pump_until("a message after the association resets", |_| {
            let (m, _) = drain(&so);
            got.extend(m);
            !got.is_empty()
        });
        assert_eq!((got[0].1, got[0].2[0]), (0, 50));
        so.send(b"after the association resets")
            .expect("usrsctp send");
        link.pump_until("usrsctp's message after the association resets", |l| {
            let mut a = l.ep.association(id).unwrap();
            a.recv().is_some()
        });
        assert_eq!(stack.dropped(), 0);

        // tshark finds nothing malformed and no error.
        let path = std::env::temp_dir().join(format!("usrsctp-reconf-{}.pcap", std::process::id()));
        std::fs::write(&path, link.pcap.into_inner()).unwrap();
        let out = Command::new("tshark")
            .args(["-o", "sctp.checksum:CRC-32C", "-r"])
            .arg(&path)
            .args(["-Y", "_ws.malformed || _ws.expert.severity >= error"])
            .output()
            .expect("tshark (package tshark) runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "tshark found problems in {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        let _ = std::fs::remove_file(&path);
    }
}
