//! Exit statuses of `rsp`, the same for every subcommand.

/// The codes, as printed at the end of `rsp --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0    success
  1    the association or transfer failed (aborted, peer unreachable, data incomplete)
  2    usage error (unknown option, missing or invalid argument)
  3    invalid or unresolvable address or port
  4    network setup failed (socket, bind, missing privilege for raw IP, capture file)
  5    a time limit passed (connect, transfer)
  130  interrupted (SIGINT); 143 terminated (SIGTERM); 129 hangup (SIGHUP)";

/// Why `rsp` exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// The association or transfer failed.
    Failed,
    /// Bad command line.
    Usage,
    /// An address or port was rejected.
    BadAddress,
    /// Sockets, privileges, files.
    Setup,
    /// A time limit passed.
    Timeout,
    /// Ended by a signal (128 + number).
    Signal(i32),
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::BadAddress => 3,
            ExitStatus::Setup => 4,
            ExitStatus::Timeout => 5,
            ExitStatus::Signal(code) => code,
        }
    }
}

/// A failure with its one-line message.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub status: ExitStatus,
    /// What went wrong, one line.
    pub message: String,
}

impl Failure {
    fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// The association or transfer failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Failure::new(ExitStatus::Failed, message)
    }

    /// A usage error found after parsing (option combinations).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(ExitStatus::Usage, message)
    }

    /// An address or port was rejected.
    pub fn address(message: impl Into<String>) -> Self {
        Failure::new(ExitStatus::BadAddress, message)
    }

    /// Setting up the network failed.
    pub fn setup(message: impl Into<String>) -> Self {
        Failure::new(ExitStatus::Setup, message)
    }

    /// A time limit passed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Failure::new(ExitStatus::Timeout, message)
    }
}

/// What a subcommand returns.
pub type Outcome = Result<ExitStatus, Failure>;
