//! Our stack as an in-memory association pair: two [`Endpoint`]s exchanging packets through
//! function calls, driven by the real clock (so timers behave as they would on a wire).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sctp_stack::time::Timestamp;
use sctp_stack::wire::Ppid;
use sctp_stack::{
    AssociationConfig, AssociationId, ConnectRequest, Datagram, Endpoint, EndpointConfig, Event,
    SendError, SendOptions,
};

use super::{MTU, Throughput, Workload};

const PORT: u16 = 5001;

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The association configuration both benchmarks use: same MTU and buffers as the peers, and
/// no Nagle delay (`nodelay`), since sctp-proto has none: with Nagle on, the last few small
/// messages of a run wait for the receiver's delayed SACK (200 ms).
pub fn bench_config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.pmtu = MTU as u16;
    c.receive_window = 1 << 20;
    c.send_buffer_size = 1 << 20;
    c.nodelay = true;
    c
}

fn endpoint(seed: u8) -> Result<Endpoint, String> {
    let mut cfg = EndpointConfig::default();
    cfg.rng_seed = [seed; 32];
    cfg.association = bench_config();
    Endpoint::new(cfg).map_err(|e| format!("endpoint config: {e:?}"))
}

/// A connected pair: `a` sends, `b` receives.
pub struct Pair {
    a: Endpoint,
    b: Endpoint,
    a_ip: IpAddr,
    b_ip: IpAddr,
    a_id: AssociationId,
    b_id: AssociationId,
    epoch: Instant,
    buf: Vec<u8>,
}

impl Pair {
    /// Connects a fresh pair.
    pub fn connect() -> Result<Pair, String> {
        let mut a = endpoint(1)?;
        let mut b = endpoint(2)?;
        b.listen(PORT).map_err(|e| format!("listen: {e:?}"))?;
        let a_ip = addr("198.18.0.1");
        let b_ip = addr("198.18.0.2");
        let epoch = Instant::now();
        let a_id = a
            .connect(Timestamp::ZERO, ConnectRequest::new(b_ip, PORT))
            .map_err(|e| format!("connect: {e:?}"))?;
        let mut p = Pair {
            a,
            b,
            a_ip,
            b_ip,
            a_id,
            b_id: a_id,
            epoch,
            buf: vec![0; 65536],
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut a_up, mut b_up) = (false, false);
        while !(a_up && b_up) {
            if Instant::now() > deadline {
                return Err("handshake did not complete within 5 s".into());
            }
            p.pump();
            while let Some((_, ev)) = p.a.poll_event() {
                a_up |= matches!(ev, Event::Connected);
            }
            while let Some((id, ev)) = p.b.poll_event() {
                if matches!(ev, Event::Connected) {
                    b_up = true;
                    p.b_id = id;
                }
            }
        }
        Ok(p)
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Moves every pending packet in both directions and fires due timers.
    fn pump(&mut self) {
        let now = self.now();
        for ep in [&mut self.a, &mut self.b] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(now, &mut self.buf) {
                let d = Datagram {
                    src: self.a_ip,
                    dst: self.b_ip,
                    encaps_port: 0,
                    data: &self.buf[..t.len],
                };
                self.b.handle_datagram(now, d);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(now, &mut self.buf) {
                let d = Datagram {
                    src: self.b_ip,
                    dst: self.a_ip,
                    encaps_port: 0,
                    data: &self.buf[..t.len],
                };
                self.a.handle_datagram(now, d);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Sends `w.messages` messages of `w.size` bytes from `a` to `b` (or until `w.limit`
    /// passes) and counts what `b`'s application received.
    pub fn transfer(&mut self, w: &Workload) -> Result<Throughput, String> {
        let payload = vec![0x5au8; w.size];
        let (mut sent, mut got, mut bytes) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        let ppid = Ppid(0);
        while got < w.messages {
            if start.elapsed() > w.limit {
                break;
            }
            if let Some(mut a) = self.a.association(self.a_id) {
                while sent < w.messages {
                    match a.send(0, ppid, payload.as_slice(), SendOptions::default()) {
                        Ok(()) => sent += 1,
                        Err(SendError::WouldBlock) => break,
                        Err(e) => return Err(format!("send: {e:?}")),
                    }
                }
            }
            self.pump();
            if let Some(mut b) = self.b.association(self.b_id) {
                while let Some(m) = b.recv() {
                    got += 1;
                    bytes += m.data.len() as u64;
                }
            }
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
        }
        Ok(Throughput {
            messages: got,
            bytes,
            elapsed: start.elapsed(),
        })
    }

    /// One request/response round trip of `size` bytes each way (a→b→a).
    pub fn echo(&mut self, size: usize) -> Result<(), String> {
        let payload = vec![0x5au8; size];
        let ppid = Ppid(0);
        let opts = SendOptions::default();
        self.a
            .association(self.a_id)
            .ok_or("association a gone")?
            .send(0, ppid, payload.as_slice(), opts)
            .map_err(|e| format!("send: {e:?}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.pump();
            if let Some(m) = self.b.association(self.b_id).and_then(|mut b| b.recv()) {
                self.b
                    .association(self.b_id)
                    .ok_or("association b gone")?
                    .send(0, ppid, m.data, opts)
                    .map_err(|e| format!("echo send: {e:?}"))?;
            }
            if self
                .a
                .association(self.a_id)
                .and_then(|mut a| a.recv())
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("echo did not come back within 5 s".into());
            }
        }
    }
}

/// Opens `count` associations between two endpoints (clients spread over enough source
/// addresses that ports never run out) and leaves them idle. Returns both endpoints so the
/// caller can measure them before they are dropped.
pub fn idle_associations(count: usize) -> Result<Vec<Endpoint>, String> {
    // One client endpoint per 16k associations: its ephemeral ports (49152-65535) run out after that.
    let per_client = 16_000usize;
    let clients = count.div_ceil(per_client).max(1);
    let cfg = |seed: u8| {
        let mut c = EndpointConfig::default();
        c.rng_seed = [seed; 32];
        c.max_associations = count + 16;
        c
    };
    let mut server = Endpoint::new(cfg(200)).map_err(|e| format!("config: {e:?}"))?;
    server.listen(PORT).map_err(|e| format!("listen: {e:?}"))?;
    let server_ip = addr("198.18.0.2");
    let mut eps = Vec::with_capacity(clients + 1);
    let mut buf = vec![0u8; 65536];
    let now = Timestamp::ZERO;
    let mut opened = 0usize;
    for c in 0..clients {
        let mut client = Endpoint::new(cfg(c as u8)).map_err(|e| format!("config: {e:?}"))?;
        let ip = IpAddr::from([198, 19, (c >> 8) as u8, (c & 0xff) as u8 + 1]);
        let n = per_client.min(count - opened);
        // Connect in batches below the listener's reply-queue bound (256 INIT ACKs waiting for
        // poll_transmit), which rate-limits answers to INIT floods by design.
        let mut done = 0usize;
        while done < n {
            let batch = (n - done).min(200);
            for _ in 0..batch {
                client
                    .connect(now, ConnectRequest::new(server_ip, PORT))
                    .map_err(|e| format!("connect #{}: {e:?}", opened + done))?;
                done += 1;
            }
            loop {
                let mut moved = false;
                while let Some(t) = client.poll_transmit(now, &mut buf) {
                    server.handle_datagram(
                        now,
                        Datagram {
                            src: ip,
                            dst: server_ip,
                            encaps_port: 0,
                            data: &buf[..t.len],
                        },
                    );
                    moved = true;
                }
                while let Some(t) = server.poll_transmit(now, &mut buf) {
                    client.handle_datagram(
                        now,
                        Datagram {
                            src: server_ip,
                            dst: ip,
                            encaps_port: 0,
                            data: &buf[..t.len],
                        },
                    );
                    moved = true;
                }
                if !moved {
                    break;
                }
            }
            while client.poll_event().is_some() {}
            while server.poll_event().is_some() {}
        }
        opened += n;
        eps.push(client);
    }
    if server.association_count() != count {
        return Err(format!(
            "only {} of {count} associations established",
            server.association_count()
        ));
    }
    eps.push(server);
    Ok(eps)
}
