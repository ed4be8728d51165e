//! Packet captures of what the workers receive and send (`--pcap`), through
//! [`sctp_stack::pcap::PcapWriter`].
//!
//! Packets are recorded as the stack sees them: raw SCTP in an IP header, or wrapped in UDP
//! between the peer's and our encapsulation port. All workers write into one file behind a
//! mutex (a capture is a debugging aid, not a fast path). Timestamps are wall-clock time: the
//! runtime's monotonic timestamps plus the Unix time at which its clock started.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sctp_stack::Transmit;
use sctp_stack::pcap::PcapWriter;
use sctp_stack::time::{Timestamp, duration_micros};

use crate::packet::RxMeta;

/// A capture file shared by the workers of a runtime.
#[derive(Debug)]
pub(crate) struct Capture {
    writer: Mutex<PcapWriter<BufWriter<File>>>,
    /// Unix time in microseconds at the runtime clock's epoch.
    unix_offset: u64,
    /// Our UDP port under UDP encapsulation.
    local_udp_port: Option<u16>,
    /// The peer port meant by an encapsulation port of 0.
    default_remote_port: u16,
    failed: AtomicBool,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Source and destination in one family: a missing or mismatched source becomes the
/// unspecified address of the destination's family.
fn pair(src: Option<IpAddr>, dst: IpAddr) -> (IpAddr, IpAddr) {
    let dst = canonical(dst);
    let src = src.map(canonical).filter(|s| s.is_ipv4() == dst.is_ipv4());
    let src = src.unwrap_or(match dst {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    (src, dst)
}

impl Capture {
    /// Creates (truncates) `path`. `epoch` is the wall-clock time of the runtime clock's zero.
    pub(crate) fn create(
        path: &Path,
        epoch: SystemTime,
        local_udp_port: Option<u16>,
        default_remote_port: u16,
    ) -> io::Result<Capture> {
        let file = File::create(path)?;
        let writer = PcapWriter::new(BufWriter::with_capacity(1 << 16, file))?;
        let unix_offset = epoch
            .duration_since(UNIX_EPOCH)
            .map(duration_micros)
            .unwrap_or(0);
        Ok(Capture {
            writer: Mutex::new(writer),
            unix_offset,
            local_udp_port,
            default_remote_port,
            failed: AtomicBool::new(false),
        })
    }

    fn ts(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_micros(self.unix_offset.saturating_add(now.as_micros()))
    }

    fn record(&self, f: impl FnOnce(&mut PcapWriter<BufWriter<File>>) -> Result<(), String>) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = f(&mut w) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!("packet capture stopped: {e}");
            }
        }
    }

    /// Records a received packet.
    pub(crate) fn rx(&self, now: Timestamp, meta: &RxMeta, sctp: &[u8]) {
        let ts = self.ts(now);
        let (src, dst) = pair(Some(meta.src), meta.dst);
        let local_port = self.local_udp_port;
        self.record(|w| {
            match local_port {
                Some(port) if meta.encaps_port != 0 => w.write_sctp_over_udp(
                    ts,
                    SocketAddr::new(src, meta.encaps_port),
                    SocketAddr::new(dst, port),
                    sctp,
                ),
                _ => w.write_sctp(ts, src, dst, sctp),
            }
            .map_err(|e| e.to_string())
        });
    }

    /// Records a packet about to be sent.
    pub(crate) fn tx(&self, now: Timestamp, t: &Transmit, sctp: &[u8]) {
        let ts = self.ts(now);
        let (src, dst) = pair(t.src, t.dst);
        let remote_port = if t.encaps_port == 0 {
            self.default_remote_port
        } else {
            t.encaps_port
        };
        let local_port = self.local_udp_port;
        self.record(|w| {
            match local_port {
                Some(port) => w.write_sctp_over_udp(
                    ts,
                    SocketAddr::new(src, port),
                    SocketAddr::new(dst, remote_port),
                    sctp,
                ),
                None => w.write_sctp(ts, src, dst, sctp),
            }
            .map_err(|e| e.to_string())
        });
    }

    /// Writes buffered records to the file.
    pub(crate) fn flush(&self) {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = w.flush() {
            tracing::warn!("flushing the packet capture failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_mixed_families_are_made_consistent() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.18.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(pair(Some(v4), mapped), (v4, "198.18.0.2".parse().unwrap()));
        assert_eq!(pair(None, v6), ("::".parse().unwrap(), v6));
        assert_eq!(pair(Some(v4), v6), ("::".parse().unwrap(), v6));
    }
}
