//! Smoke test of the bindings: the EAL starts without hugepages or PCI, a null virtual device
//! appears as one port, and the constants written by hand equal the C macros.
//!
//! One test function, because the EAL can be initialised once per process.
#![cfg(not(dpdk_sys_stub))]

use std::ffi::{CStr, CString, c_char, c_int};

use dpdk_sys as sys;

#[test]
fn eal_starts_with_a_null_vdev_and_the_hand_written_constants_match_the_headers() {
    for &(which, value, name) in sys::CHECKED_CONSTANTS {
        // SAFETY: a pure function of its argument.
        let c = unsafe { sys::rsdpdk_constant(which) };
        assert_eq!(value, c, "{name} differs from the C header");
    }

    let file_prefix = format!("--file-prefix=dpdk-sys-smoke-{}", std::process::id());
    let args = [
        "dpdk-sys-smoke",
        "--no-huge",
        "-m",
        "64",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0",
        "--log-level=warning",
        "--vdev=net_null0",
        file_prefix.as_str(),
    ];
    let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL; `owned` outlives
    // the call (the EAL may keep pointers into argv, so both live until the end of the test).
    let parsed = unsafe { sys::rte_eal_init(args.len() as c_int, argv.as_mut_ptr()) };
    if parsed < 0 {
        // SAFETY: rte_errno is thread-local; rte_strerror returns a static string.
        let why = unsafe { CStr::from_ptr(sys::rte_strerror(sys::rsdpdk_errno())) };
        panic!("rte_eal_init failed: {}", why.to_string_lossy());
    }
    assert_eq!(
        parsed as usize,
        args.len() - 1,
        "every argument is an EAL argument"
    );
    // SAFETY: the EAL is initialised.
    let ports = unsafe { sys::rte_eth_dev_count_avail() };
    assert_eq!(ports, 1, "the null vdev is the only port");

    // A pool and an mbuf round trip through the shim.
    let name = CString::new("smoke_pool").unwrap();
    // SAFETY: the EAL is initialised; the name is a valid C string.
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            name.as_ptr(),
            255,
            0,
            0,
            sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            sys::rsdpdk_socket_id() as c_int,
        )
    };
    assert!(!pool.is_null(), "mempool creation");
    // SAFETY: pool is a valid packet mbuf pool.
    let m = unsafe { sys::rsdpdk_pktmbuf_alloc(pool) };
    assert!(!m.is_null());
    // SAFETY: m is a fresh mbuf; 100 bytes fit in its tailroom.
    unsafe {
        let p = sys::rsdpdk_pktmbuf_append(m, 100);
        assert!(!p.is_null());
        assert_eq!(p.cast::<u8>(), sys::rsdpdk_pktmbuf_mtod(m).cast::<u8>());
        assert_eq!(sys::rsdpdk_pktmbuf_pkt_len(m), 100);
        assert_eq!(sys::rsdpdk_pktmbuf_data_len(m), 100);
        sys::rsdpdk_pktmbuf_free(m);
        sys::rte_mempool_free(pool);
        assert_eq!(sys::rte_eal_cleanup(), 0);
    }
}
