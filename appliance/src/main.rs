//! `rsp`: the RSerPool appliance binary.
#![forbid(unsafe_code)]

use clap::{CommandFactory, Parser};

/// RSerPool appliance: registrar, pool elements, pool users, load balancer.
#[derive(Debug, Parser)]
#[command(name = "rsp", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    // Subcommands arrive with the SCTP tools; until then print the help and fail.
    let _ = Cli::command().print_help();
    std::process::exit(2);
}
