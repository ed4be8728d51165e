//! Generates the bindings with bindgen against the system's DPDK and compiles the C shim for
//! its static inline functions. Both get the full `pkg-config --cflags libdpdk` (on Debian 12
//! it contains `-include rte_config.h`, without which the headers do not compile).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .map_err(|e| format!("cannot run pkg-config ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "`pkg-config {} libdpdk` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(split_flags(&String::from_utf8_lossy(&out.stdout)))
}

/// Splits pkg-config output into arguments (the flags DPDK emits contain no quoted spaces).
fn split_flags(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    println!("cargo:rustc-check-cfg=cfg(dpdk_sys_stub)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // The drivers (PMDs) are plugins loaded by the EAL from its default driver directory,
    // so linking the libraries is enough; the static `--libs --static` list is not needed.
    let (cflags, libs) = match (pkg_config(&["--cflags"]), pkg_config(&["--libs"])) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(e), _) | (_, Err(e)) => {
            // `cargo build/clippy --workspace` must work on machines without DPDK: the crate
            // is then empty (only its constants), and only the `dpdk` features that use it
            // fail to build.
            println!(
                "cargo:warning=dpdk-sys: libdpdk not found ({e}); building an empty crate. Install libdpdk-dev to use the DPDK backend."
            );
            println!("cargo:rustc-cfg=dpdk_sys_stub");
            std::fs::write(out.join("bindings.rs"), "pub const RTE_PKTMBUF_HEADROOM: u32 = 128;\npub const RTE_MAX_ETHPORTS: u32 = 32;\n")
                .expect("dpdk-sys: cannot write bindings.rs");
            return;
        }
    };

    // The shim first: with `--as-needed` a library only stays when something before it
    // needs it.
    let mut build = cc::Build::new();
    build.file("csrc/shim.c").include("csrc").warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("rsdpdk_shim");

    // Link flags: -L and -l go to cargo; `-Wl,--as-needed` and friends are dropped because
    // the whole point of linking librte_* is to get them even though Rust only calls a few.
    for flag in &libs {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header("csrc/shim.h")
        .clang_args(cflags.iter().map(String::as_str))
        .clang_arg("-Icsrc")
        .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_eal_process_type")
        .allowlist_function("rte_lcore_count|rte_get_main_lcore")
        .allowlist_function("rte_eth_dev_count_avail|rte_eth_dev_info_get|rte_eth_dev_configure")
        .allowlist_function("rte_eth_rx_queue_setup|rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close")
        .allowlist_function("rte_eth_macaddr_get|rte_eth_promiscuous_enable|rte_eth_allmulticast_enable")
        .allowlist_function("rte_eth_dev_socket_id|rte_eth_dev_get_name_by_port|rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_is_valid_port|rte_eth_find_next_owned_by|rte_eth_link_get_nowait")
        .allowlist_function("rte_eth_dev_set_mtu|rte_eth_dev_get_mtu|rte_eth_stats_get|rte_eth_dev_adjust_nb_rx_tx_desc")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count")
        .allowlist_function("rte_ring_create|rte_ring_free")
        .allowlist_function("rte_vdev_init|rte_vdev_uninit")
        .allowlist_function("rsdpdk_.*")
        .allowlist_type("rte_mbuf|rte_mempool|rte_eth_conf|rte_eth_dev_info|rte_ether_addr")
        .allowlist_type("rte_eth_rxconf|rte_eth_txconf|rte_eth_stats|rte_eth_link|rte_ring")
        .allowlist_var("RTE_MAX_ETHPORTS|RTE_ETHER_ADDR_LEN|RTE_MAX_LCORE|SOCKET_ID_ANY|RTE_ETHER_MTU|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_DATAROOM")
        .allowlist_var("RTE_ETH_MQ_.*|RTE_ETH_LINK_.*")
        // A GTP extension header type cannot derive Debug (packed, with bit fields).
        .no_debug("rte_gtp_psc_.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .expect("dpdk-sys: bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("dpdk-sys: cannot write bindings.rs");
}
