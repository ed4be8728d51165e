//! RFC 9260 §6.2 inside one receive burst: a driver that hands the endpoint several DATA
//! packets in a row learns from [`Endpoint::sack_due_now`] when a SACK is owed, so a burst
//! is acknowledged at least every second packet instead of once at its end.

use std::net::IpAddr;

use sctp_stack::time::Timestamp;
use sctp_stack::wire::{ChunkType, Packet, Ppid};
use sctp_stack::{
    AssociationConfig, ConnectRequest, Datagram, Endpoint, EndpointConfig, Event, SendOptions,
};

const PORT: u16 = 5001;
const MTU: u16 = 1228;

fn endpoint(seed: u8) -> Endpoint {
    let mut cfg = EndpointConfig::default();
    cfg.rng_seed = [seed; 32];
    let mut a = AssociationConfig::default();
    a.pmtu = MTU;
    a.nodelay = true;
    cfg.association = a;
    Endpoint::new(cfg).expect("valid config")
}

struct Pair {
    a: Endpoint,
    b: Endpoint,
    a_ip: IpAddr,
    b_ip: IpAddr,
    now: Timestamp,
}

impl Pair {
    fn connected() -> (Pair, sctp_stack::AssociationId) {
        let mut a = endpoint(1);
        let mut b = endpoint(2);
        b.listen(PORT).expect("listen");
        let a_ip: IpAddr = [198, 18, 0, 1].into();
        let b_ip: IpAddr = [198, 18, 0, 2].into();
        let now = Timestamp::from_micros(1_000);
        let id = a
            .connect(now, ConnectRequest::new(b_ip, PORT))
            .expect("connect");
        let mut p = Pair {
            a,
            b,
            a_ip,
            b_ip,
            now,
        };
        let mut up = (false, false);
        for _ in 0..10 {
            // One packet at a time both ways until both ends are up.
            while let Some(pkt) = p.a_packet() {
                p.deliver_to_b(&pkt);
            }
            while let Some(pkt) = p.b_packet() {
                p.deliver_to_a(&pkt);
            }
            while let Some((_, ev)) = p.a.poll_event() {
                up.0 |= matches!(ev, Event::Connected);
            }
            while let Some((_, ev)) = p.b.poll_event() {
                up.1 |= matches!(ev, Event::Connected);
            }
        }
        assert!(up.0 && up.1, "handshake completed");
        (p, id)
    }

    fn a_packet(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let t = self.a.poll_transmit(self.now, &mut buf)?;
        buf.truncate(t.len);
        Some(buf)
    }

    fn b_packet(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let t = self.b.poll_transmit(self.now, &mut buf)?;
        buf.truncate(t.len);
        Some(buf)
    }

    fn deliver_to_b(&mut self, pkt: &[u8]) {
        let d = Datagram {
            src: self.a_ip,
            dst: self.b_ip,
            encaps_port: 0,
            data: pkt,
        };
        self.b.handle_datagram(self.now, d);
    }

    fn deliver_to_a(&mut self, pkt: &[u8]) {
        let d = Datagram {
            src: self.b_ip,
            dst: self.a_ip,
            encaps_port: 0,
            data: pkt,
        };
        self.a.handle_datagram(self.now, d);
    }
}

/// The cumulative TSN ACK of every SACK chunk in `pkt`.
fn sack_cum_tsns(pkt: &[u8]) -> Vec<u32> {
    let p = Packet::new_checked(pkt).expect("well-formed packet");
    p.chunks()
        .filter(|c| c.chunk_type() == ChunkType::SACK)
        .map(|c| {
            let v = c.value();
            u32::from_be_bytes([v[0], v[1], v[2], v[3]])
        })
        .collect()
}

/// The TSN of the first DATA chunk in `pkt`.
fn first_data_tsn(pkt: &[u8]) -> Option<u32> {
    let p = Packet::new_checked(pkt).expect("well-formed packet");
    p.chunks()
        .find(|c| c.chunk_type() == ChunkType::DATA)
        .map(|c| {
            let v = c.value();
            u32::from_be_bytes([v[0], v[1], v[2], v[3]])
        })
}

#[test]
fn a_burst_of_four_data_packets_is_acknowledged_every_second_packet() {
    let (mut p, id) = Pair::connected();
    // Four full packets from A (one message each), collected before B sees any.
    for i in 0..4u8 {
        p.a.association(id)
            .expect("association")
            .send(0, Ppid(0), vec![i; 1100], SendOptions::default())
            .expect("send");
    }
    let mut burst = Vec::new();
    while let Some(pkt) = p.a_packet() {
        burst.push(pkt);
    }
    assert!(burst.len() >= 4, "four DATA packets: got {}", burst.len());
    let tsns: Vec<u32> = burst.iter().filter_map(|b| first_data_tsn(b)).collect();
    assert_eq!(tsns.len(), burst.len(), "each packet carries DATA");

    // B gets the burst as a driver would, draining its output whenever a SACK is due.
    let mut sacks = Vec::new();
    for (i, pkt) in burst.iter().enumerate() {
        p.deliver_to_b(pkt);
        let due = p.b.sack_due_now();
        assert_eq!(
            due,
            i % 2 == 1,
            "SACK due after packet {} of the burst",
            i + 1
        );
        if due {
            while let Some(out) = p.b_packet() {
                sacks.extend(sack_cum_tsns(&out));
            }
            assert!(!p.b.sack_due_now(), "draining clears the hint");
        }
    }
    // One SACK per two packets, each acknowledging up to the second of its pair.
    let expected: Vec<u32> = tsns
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| c[1])
        .collect();
    assert_eq!(sacks, expected);
}

#[test]
fn a_single_data_packet_leaves_its_sack_delayed() {
    let (mut p, id) = Pair::connected();
    p.a.association(id)
        .expect("association")
        .send(0, Ppid(0), vec![7u8; 100], SendOptions::default())
        .expect("send");
    let pkt = p.a_packet().expect("a DATA packet");
    p.deliver_to_b(&pkt);
    // §6.2: one packet alone may wait for the delayed-SACK timer.
    assert!(!p.b.sack_due_now());
}
