//! Acceptance: a flood of INITs from random sources commits no association state (RFC 9260
//! §5.1: the listener is stateless until a valid COOKIE ECHO), while every INIT is answered.

mod assoc_util;

use std::net::{IpAddr, Ipv4Addr};

use assoc_util::*;
use sctp_stack::time::Timestamp;
use sctp_stack::{Datagram, Endpoint, EndpointConfig};

#[test]
fn an_init_flood_of_100k_random_sources_allocates_no_association_state() {
    let mut server = Endpoint::new(EndpointConfig::with_seed([9; 32])).unwrap();
    server.listen(PORT).unwrap();
    let dst: IpAddr = "198.18.0.2".parse().unwrap();
    let mut buf = vec![0u8; 65_535];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut answered = 0u32;
    for i in 0..100_000u32 {
        // xorshift: random source address, port and tags.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = IpAddr::V4(Ipv4Addr::from(
            0xC612_0000 | (x as u32 & 0xffff) | 0x0100_0000,
        ));
        let tag = (x >> 32) as u32 | 1;
        let mut params = tlv(5, &[198, 19, (x >> 8) as u8, x as u8]);
        params.extend(tlv(0x8000, &[]));
        let init = init_value(tag, 65_536, 10, 10, x as u32, &params);
        let pkt = build((x >> 16) as u16 | 1, PORT, 0, &[chunk(ct::INIT, 0, &init)]);
        let now = Timestamp::from_micros(u64::from(i) * 10);
        server.handle_datagram(
            now,
            Datagram {
                src,
                dst,
                encaps_port: 0,
                data: &pkt,
            },
        );
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            let (_, _, vtag, chunks) = parse(&buf[..t.len]);
            assert_eq!(vtag, tag);
            assert_eq!(chunks[0].ty, ct::INIT_ACK);
            assert_eq!(t.dst, src);
            answered += 1;
        }
        assert!(server.poll_event().is_none());
    }
    assert_eq!(answered, 100_000);
    assert_eq!(server.association_count(), 0);
    // No timers, no routes: nothing was kept.
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(server.stats().init_acks_sent, 100_000);
}

#[test]
fn replies_to_a_flood_that_is_not_drained_are_bounded() {
    let mut server = Endpoint::new(EndpointConfig::with_seed([9; 32])).unwrap();
    server.listen(PORT).unwrap();
    let dst: IpAddr = "198.18.0.2".parse().unwrap();
    for i in 0..10_000u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0xC613_0000 | i));
        let init = init_value(i | 1, 65_536, 10, 10, i, &[]);
        let pkt = build(1000, PORT, 0, &[chunk(ct::INIT, 0, &init)]);
        server.handle_datagram(
            Timestamp::ZERO,
            Datagram {
                src,
                dst,
                encaps_port: 0,
                data: &pkt,
            },
        );
    }
    let mut buf = vec![0u8; 65_535];
    let mut n = 0;
    while server.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {
        n += 1;
    }
    assert_eq!(n, EndpointConfig::default().max_pending_replies);
    assert!(server.stats().replies_dropped > 9_000);
}
