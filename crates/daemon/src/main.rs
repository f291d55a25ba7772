//! `osirisd`: parses arguments and hands over to the daemon library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    daemon::main(daemon::Args::parse())
}
