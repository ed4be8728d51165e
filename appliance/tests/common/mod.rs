//! Helpers shared by the `rsp` integration tests (each test file includes this module).
#![allow(dead_code)] // each test binary uses a different subset

use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn rsp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rsp"));
    c.env_remove("RUST_LOG");
    c
}

pub fn run(args: &[&str]) -> Output {
    rsp()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("rsp runs")
}

/// Asserts the exit code and that stderr is exactly one line starting with "rsp: ".
pub fn assert_one_line_error(out: &Output, code: i32, contains: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {err:?}");
    assert!(lines[0].starts_with("rsp: "), "{err:?}");
    assert!(lines[0].contains(contains), "{err:?} lacks {contains:?}");
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// Waits (bounded) for a child to exit.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
