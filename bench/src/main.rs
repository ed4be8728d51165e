//! `cargo run --release -p bench -- <suite> [--quick] [--json]`
#![forbid(unsafe_code)]

fn main() {
    eprintln!("no benchmark suites yet");
    std::process::exit(2);
}
