//! Termination signals (SIGINT, SIGTERM, SIGHUP) delivered to a thread of our choosing.
//!
//! [`TerminationSignals::block`] blocks the signals in the calling thread, which every thread
//! spawned afterwards inherits; call it first thing in `main`. [`TerminationSignals::spawn`]
//! then starts a thread that waits for them with `sigwait(2)` and runs a callback per signal,
//! so a tool can stop its runtime and print its summary instead of dying mid-transfer. No
//! signal handler runs, so nothing has to be async-signal-safe.

use std::io;
use std::mem::MaybeUninit;

/// A termination signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    /// The conventional exit status of a process ended by this signal (128 + number).
    pub fn exit_code(self) -> i32 {
        128 + match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
        }
    }
}

/// The blocked set of termination signals.
#[derive(Debug)]
pub struct TerminationSignals {
    set: libc::sigset_t,
}

// SAFETY: a sigset_t is a plain bit set; sigwait only reads it.
unsafe impl Send for TerminationSignals {}

impl TerminationSignals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and the threads it spawns
    /// afterwards).
    pub fn block() -> io::Result<TerminationSignals> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset and pthread_sigmask read and
        // modify only it and the calling thread's mask.
        unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                if libc::sigaddset(set.as_mut_ptr(), sig) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let set = set.assume_init();
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            Ok(TerminationSignals { set })
        }
    }

    /// Starts a thread that calls `on_signal` for every termination signal received.
    pub fn spawn(self, mut on_signal: impl FnMut(Signal) + Send + 'static) -> io::Result<()> {
        std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || {
                loop {
                    let mut sig: libc::c_int = 0;
                    // SAFETY: waits for a signal of our initialised set; writes one int.
                    let r = unsafe { libc::sigwait(&self.set, &mut sig) };
                    if r != 0 {
                        continue;
                    }
                    let s = match sig {
                        libc::SIGINT => Signal::Interrupt,
                        libc::SIGTERM => Signal::Terminate,
                        libc::SIGHUP => Signal::Hangup,
                        _ => continue,
                    };
                    on_signal(s);
                }
            })
            .map(|_| ())
    }
}
