//! Network namespaces for tests, interop runs and benchmarks (needs root).
//!
//! [`TestNet`] creates namespaces, veth pairs and addresses with `ip`, installs an nftables
//! rule that drops ICMP protocol-unreachable (and its IPv6 counterpart, Parameter Problem with
//! code 1) so a host without kernel SCTP does not reset our raw-IP associations, and deletes
//! every namespace it created when dropped, also when a test panics. [`in_namespace`] runs a
//! closure on a thread that has entered a namespace, so sockets it opens live there.
//!
//! Use only the benchmarking/documentation ranges 198.18.0.0/15 and fd00::/8 for addresses.

use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A set of namespaces deleted on drop.
#[derive(Debug)]
pub struct TestNet {
    prefix: String,
    namespaces: Vec<String>,
}

/// Runs a command, turning a non-zero exit into an error that names it.
fn run(args: &[&str]) -> io::Result<()> {
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let out = Command::new(cmd).args(rest).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run {cmd}: {e} (is it installed?)"),
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl TestNet {
    /// A new, empty set; namespace names start with `prefix` plus the process id and a
    /// counter, so parallel tests never collide.
    pub fn new(prefix: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TestNet {
            prefix: format!("{prefix}{}x{n}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// Creates namespace `<prefix>-<name>` with its loopback up; returns the full name.
    pub fn namespace(&mut self, name: &str) -> io::Result<String> {
        let full = format!("{}-{name}", self.prefix);
        run(&["ip", "netns", "add", &full])?;
        self.namespaces.push(full.clone());
        run(&["ip", "-n", &full, "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// Connects two namespaces with a veth pair and assigns addresses (CIDR notation, IPv4 or
    /// IPv6) to each end. IPv6 duplicate address detection is disabled so addresses are usable
    /// at once.
    pub fn veth(
        &mut self,
        (ns_a, if_a, addrs_a): (&str, &str, &[&str]),
        (ns_b, if_b, addrs_b): (&str, &str, &[&str]),
    ) -> io::Result<()> {
        // Create in ns_a, move the peer into ns_b.
        run(&[
            "ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns",
            ns_b,
        ])?;
        for (ns, ifname, addrs) in [(ns_a, if_a, addrs_a), (ns_b, if_b, addrs_b)] {
            let key = format!("net.ipv6.conf.{ifname}.accept_dad=0");
            // Best effort: kernels without IPv6 have no such key.
            let _ = run(&["ip", "netns", "exec", ns, "sysctl", "-qw", &key]);
            for a in addrs {
                let mut args = vec!["ip", "-n", ns, "addr", "add", a, "dev", ifname];
                if a.contains(':') {
                    args.push("nodad");
                }
                run(&args)?;
            }
            run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// Runs `args` inside namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> io::Result<()> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Installs the nftables rule dropping outgoing ICMP protocol-unreachable and ICMPv6
    /// parameter-problem "unrecognized next header" in `ns`.
    pub fn drop_protocol_unreachable(&self, ns: &str) -> io::Result<()> {
        let rules = "table inet rsp_test {\n\
             chain out {\n\
               type filter hook output priority 0; policy accept;\n\
               icmp type destination-unreachable icmp code prot-unreachable drop\n\
               icmpv6 type parameter-problem icmpv6 code 1 drop\n\
             }\n\
           }\n";
        let path = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&path, rules)?;
        let r = self.exec(ns, &["nft", "-f", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        r
    }

    /// The namespaces created so far.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends (and their peers) too.
        for ns in self.namespaces.drain(..).rev() {
            let _ = run(&["ip", "netns", "delete", &ns]);
        }
    }
}

/// Moves the calling thread into namespace `ns` (by name, as created by `ip netns add`).
pub fn enter(ns: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    // SAFETY: plain syscall on a live descriptor; affects only the calling thread's network
    // namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result (a panic in `f`
/// propagates).
pub fn in_namespace<T, F>(ns: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = ns.to_owned();
    let handle = std::thread::spawn(move || -> io::Result<T> {
        enter(&ns)?;
        Ok(f())
    });
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
