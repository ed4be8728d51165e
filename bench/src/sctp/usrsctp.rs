//! usrsctp (Debian's libusrsctp, through `dataplane::usrsctp`) as an in-memory association
//! pair: two one-to-one sockets on its AF_CONN link, packets moved by function calls in one
//! thread, timers driven by the real clock — the same shape as [`super::ours::Pair`].
//!
//! Same workload as ours: one ordered stream, Nagle off, 1 MiB send and receive buffers,
//! CRC32c computed and verified on every packet (usrsctp's default for AF_CONN). usrsctp
//! chooses its own path MTU for AF_CONN (1280 bytes by default, close to the 1228 of the
//! other pairs).

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use dataplane::usrsctp::{ConnSocket, Stack};

use super::{Throughput, Workload};

/// Ports of successive pairs (usrsctp keeps closed associations around for a while, so
/// every pair uses fresh ones).
static NEXT_PORT: AtomicU16 = AtomicU16::new(20_000);

fn port() -> u16 {
    let p = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    if p >= 60_000 {
        NEXT_PORT.store(20_000, Ordering::Relaxed);
    }
    p
}

fn err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("usrsctp {what}: {e}")
}

/// A connected pair: `a` sends, `b` receives.
pub struct Pair {
    stack: Stack,
    a: ConnSocket,
    b: ConnSocket,
    _listener: ConnSocket,
    last_tick: Instant,
    buf: Vec<u8>,
}

impl Pair {
    /// Connects a fresh pair.
    pub fn connect() -> Result<Pair, String> {
        let stack = Stack::get();
        let (pa, pb) = (port(), port());
        let listener = stack.socket().map_err(err("socket"))?;
        listener.set_nonblocking(true).map_err(err("nonblocking"))?;
        listener
            .set_buffers(1 << 20, 1 << 20)
            .map_err(err("buffers"))?;
        listener.set_nodelay(true).map_err(err("nodelay"))?;
        listener.bind(pb).map_err(err("bind"))?;
        listener.listen(1).map_err(err("listen"))?;
        let a = stack.socket().map_err(err("socket"))?;
        a.set_nonblocking(true).map_err(err("nonblocking"))?;
        a.set_buffers(1 << 20, 1 << 20).map_err(err("buffers"))?;
        a.set_nodelay(true).map_err(err("nodelay"))?;
        a.bind(pa).map_err(err("bind"))?;
        a.connect(pb).map_err(err("connect"))?;
        let mut last_tick = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        let b = loop {
            if Instant::now() > deadline {
                return Err("usrsctp handshake did not complete within 5 s".into());
            }
            pump(stack, &mut last_tick);
            if let Some(b) = listener.accept().map_err(err("accept"))? {
                break b;
            }
        };
        b.set_nonblocking(true).map_err(err("nonblocking"))?;
        b.set_nodelay(true).map_err(err("nodelay"))?;
        Ok(Pair {
            stack,
            a,
            b,
            _listener: listener,
            last_tick,
            buf: vec![0; 65536],
        })
    }

    fn pump(&mut self) {
        pump(self.stack, &mut self.last_tick);
    }

    /// Sends `w.messages` messages of `w.size` bytes from `a` to `b` (or until `w.limit`
    /// passes) and counts the complete messages `b` received.
    pub fn transfer(&mut self, w: &Workload) -> Result<Throughput, String> {
        let payload = vec![0x5au8; w.size];
        let (mut sent, mut got, mut bytes) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while got < w.messages {
            if start.elapsed() > w.limit {
                break;
            }
            while sent < w.messages {
                match self.a.send(&payload) {
                    Ok(_) => sent += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("usrsctp send: {e}")),
                }
            }
            self.pump();
            loop {
                match self.b.recv(&mut self.buf) {
                    Ok((n, eor)) => {
                        bytes += n as u64;
                        got += u64::from(eor);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("usrsctp recv: {e}")),
                }
            }
        }
        Ok(Throughput {
            messages: got,
            bytes,
            elapsed: start.elapsed(),
        })
    }
}

/// Moves every queued packet (bounded) and advances the timers by the elapsed time.
fn pump(stack: Stack, last_tick: &mut Instant) {
    let ms = last_tick.elapsed().as_millis();
    if ms > 0 {
        stack.handle_timers(ms.min(u128::from(u32::MAX)) as u32);
        *last_tick += Duration::from_millis(ms as u64);
    }
    for _ in 0..1_000_000 {
        let Some(pkt) = stack.take_output() else {
            break;
        };
        stack.input(&pkt);
    }
}
