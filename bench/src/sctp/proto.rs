//! The `sctp-proto` crate (webrtc-rs) as an in-memory association pair, driven exactly like
//! ours: real clock, packets handed from one endpoint to the other by function calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier, ServerConfig, StreamEvent, TransportConfig,
};

use super::{Throughput, Workload};

const STREAM: u16 = 0;

struct Side {
    ep: Endpoint,
    addr: SocketAddr,
    assocs: HashMap<AssociationHandle, Association>,
}

impl Side {
    fn receive(&mut self, now: Instant, from: SocketAddr, dgram: Bytes) {
        if let Some((ch, ev)) = self.ep.handle(now, from, None, None, dgram) {
            match ev {
                DatagramEvent::NewAssociation(a) => {
                    self.assocs.insert(ch, a);
                }
                DatagramEvent::AssociationEvent(e) => {
                    if let Some(a) = self.assocs.get_mut(&ch) {
                        a.handle_event(e);
                    }
                }
            }
        }
    }

    /// Collects every datagram this side wants to send.
    fn transmit(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        while let Some(t) = self.ep.poll_transmit() {
            if let Payload::RawEncode(d) = t.payload {
                out.extend(d);
            }
        }
        for (ch, a) in self.assocs.iter_mut() {
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            }
            while let Some(t) = a.poll_transmit(now) {
                if let Payload::RawEncode(d) = t.payload {
                    out.extend(d);
                }
            }
            while let Some(ev) = a.poll_endpoint_event() {
                let _ = self.ep.handle_event(*ch, ev);
            }
        }
    }
}

fn transport() -> Arc<TransportConfig> {
    // Same receive buffer (1 MiB) as ours; the MTU is sctp-proto's fixed 1228 bytes, which
    // the suite also gives our stack.
    Arc::new(
        TransportConfig::default()
            .with_max_receive_buffer_size(1 << 20)
            .with_max_send_message_size(256 * 1024)
            .with_max_receive_message_size(256 * 1024),
    )
}

/// A connected pair: `a` sends, `b` receives.
pub struct Pair {
    a: Side,
    b: Side,
    scratch: Vec<Bytes>,
}

impl Pair {
    /// Connects a fresh pair and opens stream 0 on both sides.
    pub fn connect() -> Result<Pair, String> {
        let a_addr: SocketAddr = "198.18.0.1:5000".parse().map_err(|e| format!("{e}"))?;
        let b_addr: SocketAddr = "198.18.0.2:5000".parse().map_err(|e| format!("{e}"))?;
        let mut server = ServerConfig::new();
        server.transport = transport();
        let mut a = Side {
            ep: Endpoint::new(Arc::new(EndpointConfig::new()), None),
            addr: a_addr,
            assocs: HashMap::new(),
        };
        let b = Side {
            ep: Endpoint::new(Arc::new(EndpointConfig::new()), Some(Arc::new(server))),
            addr: b_addr,
            assocs: HashMap::new(),
        };
        let mut client = ClientConfig::new();
        client.transport = transport();
        let (ch, assoc) =
            a.ep.connect(client, b_addr)
                .map_err(|e| format!("connect: {e:?}"))?;
        a.assocs.insert(ch, assoc);
        let mut p = Pair {
            a,
            b,
            scratch: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut a_up, mut b_up) = (false, false);
        while !(a_up && b_up) {
            if Instant::now() > deadline {
                return Err("sctp-proto handshake did not complete within 5 s".into());
            }
            p.pump();
            a_up |= poll_connected(&mut p.a);
            b_up |= poll_connected(&mut p.b);
        }
        p.a_assoc()?
            .open_stream(STREAM, PayloadProtocolIdentifier::Binary)
            .map_err(|e| format!("open_stream: {e:?}"))?;
        Ok(p)
    }

    fn a_assoc(&mut self) -> Result<&mut Association, String> {
        self.a
            .assocs
            .values_mut()
            .next()
            .ok_or_else(|| "no association on a".to_string())
    }

    fn pump(&mut self) {
        let now = Instant::now();
        loop {
            self.scratch.clear();
            self.a.transmit(now, &mut self.scratch);
            let from_a = self.scratch.len();
            for d in self.scratch.drain(..) {
                self.b.receive(now, self.a.addr, d);
            }
            self.b.transmit(now, &mut self.scratch);
            let from_b = self.scratch.len();
            for d in self.scratch.drain(..) {
                self.a.receive(now, self.b.addr, d);
            }
            if from_a == 0 && from_b == 0 {
                break;
            }
        }
    }

    fn drain_b(&mut self, got: &mut u64, bytes: &mut u64, buf: &mut [u8]) {
        for a in self.b.assocs.values_mut() {
            while let Some(ev) = a.poll() {
                if let Event::Stream(StreamEvent::Opened { .. }) = ev {
                    let _ = a.accept_stream();
                }
            }
            if let Ok(mut s) = a.stream(STREAM) {
                while let Ok(Some(chunks)) = s.read_sctp() {
                    if let Ok(n) = chunks.read(buf) {
                        *got += 1;
                        *bytes += n as u64;
                    }
                }
            }
        }
    }

    /// Sends `w.messages` messages of `w.size` bytes from `a` to `b`, keeping at most
    /// `send_buffer` bytes queued at the sender (sctp-proto has no send-buffer limit of its own;
    /// its reassembly and retransmission queues slow down sharply when deep).
    pub fn transfer(&mut self, w: &Workload, send_buffer: usize) -> Result<Throughput, String> {
        let payload = Bytes::from(vec![0x5au8; w.size]);
        let mut buf = vec![0u8; w.size.max(65536)];
        let (mut sent, mut got, mut bytes) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while got < w.messages {
            if start.elapsed() > w.limit {
                break;
            }
            {
                let a = self.a_assoc()?;
                let mut s = a.stream(STREAM).map_err(|e| format!("stream: {e:?}"))?;
                while sent < w.messages && s.buffered_amount().unwrap_or(usize::MAX) < send_buffer {
                    s.write_sctp(&payload, PayloadProtocolIdentifier::Binary)
                        .map_err(|e| format!("write: {e:?}"))?;
                    sent += 1;
                }
            }
            for a in self.a.assocs.values_mut() {
                while a.poll().is_some() {}
            }
            self.pump();
            self.drain_b(&mut got, &mut bytes, &mut buf);
        }
        Ok(Throughput {
            messages: got,
            bytes,
            elapsed: start.elapsed(),
        })
    }
}

fn poll_connected(s: &mut Side) -> bool {
    let mut up = false;
    for a in s.assocs.values_mut() {
        while let Some(ev) = a.poll() {
            up |= matches!(ev, Event::Connected);
            if let Event::Stream(StreamEvent::Opened { .. }) = ev {
                let _ = a.accept_stream();
            }
        }
    }
    up
}
