//! The io_uring backend's fallback signal. Needs root: it opens raw sockets and flips the
//! global `kernel.io_uring_disabled` sysctl (restored afterwards, also on failure), so it runs
//! alone in its own test binary from `.ci/dataplane.sh`.
#![cfg(all(
    target_os = "linux",
    feature = "io-uring",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use dataplane::raw::RawConfig;
use dataplane::uring::RawUringLink;
use dataplane::{AnyLink, Backend, Link, LinkError};

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Restores the sysctl's previous value when dropped.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.0);
    }
}

#[test]
#[ignore = "needs root and flips a global sysctl; run by .ci/dataplane.sh"]
fn disabled_io_uring_gives_a_fallback_signal_and_open_raw_uses_the_poll_backend() {
    let (link, why) = AnyLink::open_raw(RawConfig::default()).expect("raw link as root");
    assert_eq!(
        link.backend(),
        Backend::RawUring,
        "io_uring is preferred: {why:?}"
    );
    assert!(why.is_none());
    drop(link);

    let previous = std::fs::read_to_string(SYSCTL).expect("kernel with io_uring_disabled (6.6+)");
    let _restore = Restore(previous);
    std::fs::write(SYSCTL, "2").expect("set kernel.io_uring_disabled=2");

    let err = RawUringLink::open(RawConfig::default()).expect_err("io_uring is disabled");
    assert!(err.is_fallback_signal(), "{err:?}");
    assert!(matches!(err, LinkError::IoUringUnavailable { .. }));
    assert!(
        err.to_string().contains("io_uring is not available"),
        "{err}"
    );

    let (link, why) = AnyLink::open_raw(RawConfig::default()).expect("poll fallback");
    assert_eq!(link.backend(), Backend::RawPoll);
    assert!(why.is_some_and(|e| e.is_fallback_signal()));
}
