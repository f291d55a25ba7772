//! `osiris signing-key generate`: a new appliance signing key on stdout, for sealing straight
//! into a systemd credential (`osiris signing-key generate | systemd-creds encrypt … - <file>`),
//! so the private key is never written to disk in the clear.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Subcommand;

/// What `osiris signing-key` does.
#[derive(Debug, Subcommand)]
pub(crate) enum SigningKeyCommand {
    /// Print a new appliance signing key (C2SP signer key text) to stdout; refuses a terminal.
    Generate,
}

/// Runs the subcommand.
pub(crate) fn run(cmd: SigningKeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SigningKeyCommand::Generate => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(crate::Failed(
                    "refusing to print a private key to a terminal: pipe it into `systemd-creds encrypt --name=appliance-key - <file>`".to_owned(),
                )
                .into());
            }
            let key = evidence::ApplianceKey::generate();
            let mut out = stdout.lock();
            writeln!(out, "{}", key.private_key_text())?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
