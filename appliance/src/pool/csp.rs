//! Component Status reports of pool elements and pool users (`--cspserver`), as RSPLIB's
//! `rspserver` and clients send them to a `cspmonitor` (or `rsp monitor`).
//!
//! A thread sends one report every interval, built by the tool from its shared counters,
//! and a final one (flag F) when it is stopped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rserpool::services::wire::{CSP_TEXT_SIZE, ComponentStatusReport};

use crate::exit::Failure;

/// The reporting thread.
pub struct Reporter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a report says: component id, location, status text and workload (negative:
/// unknown).
pub struct Status {
    /// `component_group::compound(group, id)`.
    pub sender_id: u64,
    /// Where the component runs.
    pub location: String,
    /// Its state in a few words.
    pub status: String,
    /// Load as a fraction of one; negative when unknown.
    pub workload: f64,
}

impl Reporter {
    /// Starts reporting to `server` every `interval`; `status` describes the component.
    pub fn start(
        server: SocketAddr,
        interval: Duration,
        status: impl Fn() -> Status + Send + 'static,
    ) -> Result<Reporter, Failure> {
        let any: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any)
            .map_err(|e| Failure::setup(format!("--cspserver {server}: no UDP socket: {e}")))?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rsp-csp".into())
            .spawn(move || {
                loop {
                    let last = !matches!(rx.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
                    let r = report(&status(), interval, last);
                    let mut buf = vec![0; r.encoded_len()];
                    if let Ok(n) = r.encode(&mut buf) {
                        let _ = socket.send_to(&buf[..n], server);
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| Failure::setup(format!("no CSP thread: {e}")))?;
        Ok(Reporter {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends the final report and ends the thread.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The report of `s`.
pub fn report(s: &Status, interval: Duration, final_report: bool) -> ComponentStatusReport {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    ComponentStatusReport {
        final_report,
        sender_id: s.sender_id,
        sender_timestamp: micros,
        report_interval: u32::try_from(interval.as_micros()).unwrap_or(u32::MAX),
        location: truncated(&s.location),
        status: truncated(&s.status),
        workload: ComponentStatusReport::workload_from_fraction(s.workload),
        associations: Vec::new(),
    }
}

/// At most the 128 bytes a CSP text field holds, cut at a character boundary.
fn truncated(s: &str) -> Vec<u8> {
    let mut end = s.len().min(CSP_TEXT_SIZE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.as_bytes()[..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool::services::wire::component_group;

    #[test]
    fn reports_carry_the_component_and_truncate_long_texts() {
        let s = Status {
            sender_id: component_group::compound(component_group::POOL_ELEMENT, 7),
            location: "x".repeat(300),
            status: "é".repeat(100),
            workload: 0.5,
        };
        let r = report(&s, Duration::from_secs(1), true);
        let mut buf = vec![0; r.encoded_len()];
        let n = r.encode(&mut buf).expect("encodes");
        let back = ComponentStatusReport::decode(&buf[..n]).expect("decodes");
        assert!(back.final_report);
        assert_eq!(back.sender_id >> 56, component_group::POOL_ELEMENT);
        assert_eq!(back.location.len(), CSP_TEXT_SIZE);
        assert!(
            back.status.len() <= CSP_TEXT_SIZE && String::from_utf8(back.status.clone()).is_ok()
        );
        assert!((back.workload_fraction().expect("known") - 0.5).abs() < 0.001);
        assert_eq!(back.report_interval, 1_000_000);
    }
}
