//! The `osiris` binary: parse arguments, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

#[allow(
    clippy::print_stderr,
    reason = "the binary reports its final error on stderr"
)]
fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            if cli::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            cli::exit_code_for(&err)
        }
    }
}
