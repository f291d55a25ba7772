//! The `osiris` binary: parse arguments and hand over to the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
