//! The DPDK Environment Abstraction Layer: initialised once per process from an
//! [`EalConfig`], with errors that say what to do.

use std::ffi::{CStr, CString, c_char, c_int};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use dpdk_sys as sys;

use super::DpdkError;

/// Hugepage use of the EAL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Memory {
    /// `--no-huge -m MB`: ordinary pages (tests, virtual PMDs; slower, and not usable by
    /// physical NICs that DMA). Incompatible with `--in-memory`.
    NoHuge {
        /// Megabytes of memory for the EAL.
        megabytes: u32,
    },
    /// Hugepages reserved by the administrator (`/sys/kernel/mm/hugepages/...`), with
    /// `--in-memory` (no shared files, several processes side by side).
    Hugepages,
}

/// How the EAL starts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EalConfig {
    /// `-l LIST`: the EAL's logical cores ("0" by default; the dataplane's workers are
    /// ordinary threads pinned by the runtime, not EAL lcores).
    pub lcores: String,
    /// Memory mode: `--no-huge` with 256 MB by default.
    pub memory: Memory,
    /// `--no-pci`: do not probe PCI devices (virtual devices only). Default true; set false
    /// to use physical NICs bound to vfio-pci.
    pub no_pci: bool,
    /// `--vdev=` arguments, e.g. `net_af_packet0,iface=veth0` or `net_null0`.
    pub vdevs: Vec<String>,
    /// `-a`/`--allow` PCI addresses (physical NICs), e.g. `0000:03:00.0`.
    pub allow: Vec<String>,
    /// `--log-level`: "notice" by default.
    pub log_level: String,
    /// Further arguments, appended verbatim (they win over the above where the EAL lets the
    /// last one win).
    pub extra: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            lcores: "0".to_owned(),
            memory: Memory::NoHuge { megabytes: 256 },
            no_pci: true,
            vdevs: Vec::new(),
            allow: Vec::new(),
            log_level: "notice".to_owned(),
            extra: Vec::new(),
        }
    }
}

impl EalConfig {
    /// A configuration from a command line string such as `"--no-huge --vdev=net_null0"`
    /// (the `--eal` option of the tools): split at white space; `--vdev`, `--no-huge`,
    /// `--in-memory`, `-l`/`--lcores`, `-m`, `--no-pci`, `-a`/`--allow` and `--log-level` are
    /// understood and replace the defaults, everything else is passed through.
    pub fn parse(args: &str) -> Result<EalConfig, DpdkError> {
        let mut c = EalConfig::default();
        let mut huge = None::<bool>;
        let mut megabytes = None::<u32>;
        let mut it = args.split_whitespace().map(str::to_owned);
        let value = |name: &str, it: &mut dyn Iterator<Item = String>| {
            it.next()
                .ok_or_else(|| DpdkError::InvalidConfig(format!("EAL option {name} needs a value")))
        };
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
                _ => (a.clone(), None),
            };
            let mut take = |name: &str| match &inline {
                Some(v) => Ok(v.clone()),
                None => value(name, &mut it),
            };
            match key.as_str() {
                "--vdev" => c.vdevs.push(take("--vdev")?),
                "--no-huge" => huge = Some(false),
                "--in-memory" => huge = Some(true),
                "-l" | "--lcores" => c.lcores = take("-l")?,
                "-m" => {
                    let v = take("-m")?;
                    megabytes = Some(v.parse().map_err(|_| {
                        DpdkError::InvalidConfig(format!("EAL option -m {v}: not a number"))
                    })?);
                }
                "--no-pci" => c.no_pci = true,
                "-a" | "--allow" => {
                    c.allow.push(take("-a")?);
                    c.no_pci = false;
                }
                "--log-level" => c.log_level = take("--log-level")?,
                _ => c.extra.push(a),
            }
        }
        c.memory = match (huge, megabytes) {
            (Some(true), m) => {
                // With hugepages, -m limits the memory reserved from them.
                if let Some(m) = m {
                    c.extra.push("-m".to_owned());
                    c.extra.push(m.to_string());
                }
                Memory::Hugepages
            }
            (_, Some(m)) => Memory::NoHuge { megabytes: m },
            _ => c.memory,
        };
        Ok(c)
    }

    /// The argument vector given to `rte_eal_init` (program name first).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["dataplane".to_owned(), "-l".to_owned(), self.lcores.clone()];
        match self.memory {
            Memory::NoHuge { megabytes } => {
                a.push("--no-huge".to_owned());
                a.push("-m".to_owned());
                a.push(megabytes.to_string());
                // No shared configuration files: several processes may run side by side.
                a.push("--no-shconf".to_owned());
            }
            Memory::Hugepages => a.push("--in-memory".to_owned()),
        }
        if self.no_pci && self.allow.is_empty() {
            a.push("--no-pci".to_owned());
        }
        for d in &self.allow {
            a.push("-a".to_owned());
            a.push(d.clone());
        }
        for v in &self.vdevs {
            a.push(format!("--vdev={v}"));
        }
        a.push("--no-telemetry".to_owned());
        a.push(format!("--log-level={}", self.log_level));
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// Proof that the EAL runs in this process.
#[derive(Clone, Copy)]
pub struct Eal(());

impl fmt::Debug for Eal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Eal")
    }
}

/// `None`: never tried; `Some(Ok)`: running; `Some(Err(text))`: failed (the EAL cannot be
/// initialised a second time in a process).
static STATE: Mutex<Option<Result<(), String>>> = Mutex::new(None);

/// The text of an `rte_errno` value.
pub(crate) fn errno_text(errno: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string for any value.
    let p = unsafe { sys::rte_strerror(errno) };
    if p.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-null, NUL-terminated (see above); copied before anything else runs.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The calling thread's CPU affinity (the EAL pins the initialising thread to its main
/// lcore; threads spawned afterwards would inherit that).
fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 = this thread; the size matches the set.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

impl Eal {
    /// Starts the EAL with `config`, once per process. Later calls return the running EAL
    /// (their configuration is ignored; a note goes to the log) or the first failure again.
    pub fn init(config: &EalConfig) -> Result<Eal, DpdkError> {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            Some(Ok(())) => {
                tracing::debug!("DPDK EAL already initialised; keeping its configuration");
                return Ok(Eal(()));
            }
            Some(Err(e)) => return Err(DpdkError::EalInit(e.clone())),
            None => {}
        }
        let args = config.args();
        tracing::info!(args = ?args, "starting the DPDK EAL");
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| DpdkError::InvalidConfig("an EAL argument contains NUL".to_owned()))?;
        // The EAL keeps pointers into argv (it permutes and stores them): leak both so they
        // live as long as the process, which is as long as the EAL.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut c_char] = Box::leak(argv.into_boxed_slice());
        let before = affinity();
        let argc = c_int::try_from(args.len())
            .map_err(|_| DpdkError::InvalidConfig("too many EAL arguments".to_owned()))?;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, all leaked
        // for the life of the process; rte_eal_init is called at most once (guarded by STATE).
        let r = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if let Some(set) = before {
            // SAFETY: restores this thread's own previous mask.
            unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        }
        if r < 0 {
            // SAFETY: reads the thread-local rte_errno set by the failed call.
            let errno = unsafe { sys::rsdpdk_errno() };
            let text = explain_init_failure(errno, config);
            *state = Some(Err(text.clone()));
            return Err(DpdkError::EalInit(text));
        }
        *state = Some(Ok(()));
        Ok(Eal(()))
    }

    /// The number of usable Ethernet ports.
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (an `Eal` exists).
        unsafe { sys::rte_eth_dev_count_avail() }
    }
}

/// A one-line explanation of an EAL init failure with what to try.
fn explain_init_failure(errno: c_int, config: &EalConfig) -> String {
    let text = errno_text(errno);
    let no_hugepages = std::fs::read_to_string("/proc/meminfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.starts_with("HugePages_Total:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let hint = match errno {
        libc::EACCES | libc::EPERM | libc::ENOMEM
            if config.memory == Memory::Hugepages && no_hugepages =>
        {
            "no hugepages are reserved: reserve some (echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) or pass --no-huge"
        }
        libc::EACCES | libc::EPERM => {
            "permission denied: run as root (or with CAP_SYS_ADMIN, CAP_IPC_LOCK, CAP_NET_RAW for virtual devices)"
        }
        libc::ENOMEM => match config.memory {
            Memory::Hugepages => {
                "no hugepages: reserve some (echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) or pass --no-huge"
            }
            Memory::NoHuge { .. } => "not enough memory for -m",
        },
        libc::EALREADY => "the EAL is already initialised in this process",
        libc::EINVAL => "invalid EAL arguments (see the EAL log above)",
        libc::ENODEV | libc::ENOENT => {
            "a device or its driver (PMD) is missing: check --vdev/-a and that the dpdk PMD packages are installed"
        }
        libc::ENOTSUP => "not supported on this system",
        _ => "see the EAL log above",
    };
    format!("{text} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eal_strings_are_parsed_into_a_config_and_back_into_arguments() {
        let c = EalConfig::parse(
            "--no-huge -m 128 --vdev=net_af_packet0,iface=veth0 --vdev net_null0 -l 1 --foo bar",
        )
        .unwrap();
        assert_eq!(c.memory, Memory::NoHuge { megabytes: 128 });
        assert_eq!(c.vdevs, vec!["net_af_packet0,iface=veth0", "net_null0"]);
        assert_eq!(c.lcores, "1");
        assert_eq!(c.extra, vec!["--foo", "bar"]);
        let args = c.args();
        assert!(args.windows(2).any(|w| w == ["-m", "128"]));
        assert!(args.contains(&"--vdev=net_af_packet0,iface=veth0".to_owned()));
        assert!(args.contains(&"--no-pci".to_owned()));
        assert!(!args.contains(&"--in-memory".to_owned()));
        // Hugepages mode never combines --no-huge with --in-memory.
        let h = EalConfig::parse("--in-memory -m 128 -a 0000:03:00.0").unwrap();
        let args = h.args();
        assert!(
            args.windows(2).any(|w| w == ["-m", "128"]),
            "-m kept with hugepages"
        );
        assert!(args.contains(&"--in-memory".to_owned()));
        assert!(!args.contains(&"--no-huge".to_owned()));
        assert!(!args.contains(&"--no-pci".to_owned()));
        assert!(EalConfig::parse("-l").is_err());
        assert!(EalConfig::parse("-m lots").is_err());
    }
}
