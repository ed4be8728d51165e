//! `rsp`: the RSerPool appliance binary (the command line lives in the library, see
//! `appliance::main_cli`).
#![forbid(unsafe_code)]

fn main() {
    appliance::main_cli()
}
