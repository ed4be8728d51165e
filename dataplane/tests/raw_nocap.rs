//! Opening a raw link without CAP_NET_RAW fails with a clear, typed error. Runs everywhere:
//! the test drops CAP_NET_RAW from its own thread (capabilities are per thread on Linux), so
//! it checks the same thing as root and as an ordinary user.
#![cfg(target_os = "linux")]

use dataplane::LinkError;
use dataplane::raw::{RawConfig, RawPollLink};

const CAP_NET_RAW: u32 = 13;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes CAP_NET_RAW from the calling thread's effective and permitted sets.
fn drop_cap_net_raw() {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (version 3 layout) for the calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_RAW);
    data[0].permitted &= !(1 << CAP_NET_RAW);
    // SAFETY: capset reads the header and two CapData; it only lowers this thread's privilege.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn a_raw_link_without_cap_net_raw_says_what_is_missing() {
    std::thread::spawn(|| {
        drop_cap_net_raw();
        let err = RawPollLink::open(RawConfig::default()).expect_err("raw socket must be refused");
        assert!(matches!(err, LinkError::RawNeedsCapNetRaw), "{err:?}");
        assert_eq!(
            err.to_string(),
            "raw SCTP needs CAP_NET_RAW (run as root or use --backend udp)"
        );
        #[cfg(all(
            feature = "io-uring",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        {
            let err = dataplane::uring::RawUringLink::open(RawConfig::default())
                .expect_err("raw socket must be refused");
            assert!(
                matches!(err, LinkError::RawNeedsCapNetRaw),
                "the raw socket opens before io_uring, so this holds where io_uring is \
                 unavailable too (qemu-user, kernel.io_uring_disabled): {err:?}"
            );
        }
    })
    .join()
    .unwrap();
}
