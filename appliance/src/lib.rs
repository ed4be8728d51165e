//! The `rsp` appliance: the command-line tools, and the blocking Enhanced Mode API for
//! applications ([`pool::blocking`]).
//!
//! Each subcommand lives in its own module and is one line of the `Command` enum; its module owns
//! its arguments (a clap `Args` struct) and its `run` function, which returns an
//! `exit::Outcome`. `main` only parses, sets up logging and signals, and turns the outcome
//! into the process exit status (see the `exit` module for the documented codes).
#![forbid(unsafe_code)]

/// `println!` that ignores a closed standard output (`rsp demo | head`) instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed standard error.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod demo;
mod exit;
mod hsdump;
mod logging;
mod monitor;
pub mod pool;
mod registrar;
mod sctp;
mod server;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

use exit::{ExitStatus, Failure};

/// RSerPool appliance: registrar, pool elements, pool users, load balancer, and the SCTP
/// tools they run on.
#[derive(Debug, Parser)]
#[command(name = "rsp", version, after_help = exit::EXIT_CODES_HELP)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands: one line each.
#[derive(Debug, Subcommand)]
enum Command {
    /// SCTP tools on the userspace stack: echo/discard/daytime/chargen servers, a line
    /// client, and a throughput tester.
    Sctp(sctp::SctpArgs),
    /// A whole RSerPool system in one process on loopback: registrars, pool elements and
    /// pool users, with a crashed PE and a crashed registrar, failovers and a takeover.
    Demo(demo::DemoArgs),
    /// RSerPool registrar (ENRP server): ASAP for pool elements and users, ENRP peering.
    Registrar(Box<registrar::RegistrarArgs>),
    /// Print a registrar's handlespace (asks it over ENRP as a peer would, like RSPLIB's
    /// hsdump).
    Hsdump(hsdump::HsdumpArgs),
    /// Component Status monitor (like RSPLIB's cspmonitor): a table of the registrars,
    /// pool elements and pool users reporting on UDP port 2960.
    Monitor(monitor::MonitorArgs),
    /// Pool element: Echo, Discard, Daytime, CharGen, PingPong or CalcApp service
    /// registered in a pool (like RSPLIB's rspserver).
    Server(Box<server::ServerArgs>),
    /// Pool user: Pings to a PingPong pool, failing over between its PEs.
    Pingpong(Box<pool::tools::PingPongArgs>),
    /// Pool user: CalcApp jobs on a pool, failing over between its PEs.
    Calcapp(Box<pool::tools::CalcAppArgs>),
    /// Pool user: standard input lines to an Echo pool, replies to standard output.
    Terminal(Box<pool::tools::TerminalArgs>),
}

/// The exit status for a command-line parsing error: 3 when a port or address was
/// rejected, 2 for any other usage error.
fn usage_status(e: &clap::Error) -> ExitStatus {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let is_address = ["PORT", "HOST", "ADDR"].iter().any(|k| arg.contains(k));
    if matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) && is_address
    {
        ExitStatus::BadAddress
    } else {
        ExitStatus::Usage
    }
}

/// clap's message in one line: its first line, without the usage block; for missing
/// arguments (where clap lists them on the following lines) with their names.
fn one_line(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::MissingRequiredArgument
        && let Some(ContextValue::Strings(args)) = e.get(ContextKind::InvalidArg)
    {
        return format!("missing required argument: {}", args.join(", "));
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    first.trim_start_matches("error: ").to_owned()
}

/// The `rsp` command line: parses the arguments, runs the subcommand and exits with its
/// status.
pub fn main_cli() -> ! {
    let signals = dataplane::signal::TerminationSignals::block();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                std::process::exit(ExitStatus::Usage.code());
            }
            eprintln!("rsp: {}", one_line(&e));
            std::process::exit(usage_status(&e).code());
        }
    };
    logging::init(cli.verbose, matches!(cli.command, Command::Demo(_)));
    let outcome = match signals {
        Ok(signals) => match cli.command {
            Command::Sctp(args) => sctp::run(args, signals),
            Command::Demo(args) => demo::run(args, signals),
            Command::Registrar(args) => registrar::run(*args, signals),
            Command::Hsdump(args) => hsdump::run(args, signals),
            Command::Monitor(args) => monitor::run(args, signals),
            Command::Server(args) => server::run(*args, signals),
            Command::Pingpong(args) => pool::tools::run_pingpong(*args, signals),
            Command::Calcapp(args) => pool::tools::run_calcapp(*args, signals),
            Command::Terminal(args) => pool::tools::run_terminal(*args, signals),
        },
        Err(e) => Err(Failure::setup(format!(
            "cannot block termination signals: {e}"
        ))),
    };
    match outcome {
        Ok(status) => std::process::exit(status.code()),
        Err(f) => {
            eprintln!("rsp: {}", f.message);
            std::process::exit(f.status.code());
        }
    }
}
