//! `osiris credentials`: store, list, remove and re-key target credentials in the encrypted
//! vault. Secrets come from stdin only (never argv) and are never printed; typed on a terminal,
//! they are not echoed either.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use credentials::{CredentialKind, KeySource, Secret, Vault};

/// Where the vault and its key are, and what to do with them.
#[derive(Debug, clap::Args)]
pub(crate) struct CredentialsArgs {
    /// The appliance configuration (its `[credentials]` section names the vault and key).
    #[arg(long, default_value = "/etc/osiris/appliance.toml")]
    config: PathBuf,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data), which holds the
    /// vault and key unless the configuration's `[credentials]` section names them.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use this vault file instead of the configured one.
    #[arg(long)]
    vault: Option<PathBuf>,
    /// Use this key file instead of the configured one.
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: CredentialsCommand,
}

/// The `osiris credentials` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Create the vault key: 32 random bytes in a new 0600 file (never overwrites).
    InitKey,
    /// Store or replace a credential; the secret is read from stdin, never from arguments.
    Set {
        /// Credential name: 1-64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
        name: String,
        /// What the secret is (a password loses one trailing newline).
        #[arg(long, value_enum)]
        kind: KindArg,
    },
    /// List credential names, kinds and times (never the secrets).
    List,
    /// Delete a credential.
    Remove {
        /// The credential to delete.
        name: String,
    },
    /// Re-encrypt the vault under a new random key written to NEW_KEY (atomically).
    RotateKey {
        /// Where to create the new key file (must not exist).
        new_key: PathBuf,
    },
    /// Open and decrypt the vault, and report how many credentials it holds.
    Check,
}

/// `--kind` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KindArg {
    /// A password (WinRM account, AD bind, SSH password).
    Password,
    /// An SSH private key in OpenSSH or PEM text form.
    SshKey,
}

/// The process's standard streams, injectable for tests.
pub(crate) struct Stdio<'a> {
    pub(crate) stdin: &'a mut dyn Read,
    pub(crate) stdin_is_tty: bool,
    pub(crate) stdout: &'a mut dyn Write,
    pub(crate) stderr: &'a mut dyn Write,
}

/// Resolves the vault and key from flags and configuration, then runs the subcommand on the
/// real standard streams.
pub(crate) fn run_args(args: CredentialsArgs) -> anyhow::Result<ExitCode> {
    let (vault_path, key) = locate(&args)?;
    let stdin = std::io::stdin();
    let stdin_is_tty = stdin.is_terminal();
    // Restored when it goes out of scope, after the secret was read.
    let _echo_off = match &args.command {
        CredentialsCommand::Set { .. } if stdin_is_tty => Some(EchoOff::new(std::io::stdin())?),
        _ => None,
    };
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    run(
        args.command,
        &vault_path,
        &key,
        Stdio {
            stdin: &mut stdin,
            stdin_is_tty,
            stdout: &mut stdout,
            stderr: &mut stderr,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one subcommand against the vault at `vault_path` opened with `key`.
pub(crate) fn run(
    cmd: CredentialsCommand,
    vault_path: &Path,
    key: &KeySource,
    io: Stdio<'_>,
) -> anyhow::Result<()> {
    match cmd {
        CredentialsCommand::InitKey => {
            let KeySource::File(path) = key else {
                return Err(crate::Failed(format!(
                    "the key comes from {key}, which systemd provides: create a key file with `--key-file <path> init-key` instead"
                ))
                .into());
            };
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            Vault::init_key(path)?;
            writeln!(
                io.stdout,
                "created {key}; back it up offline: without it the vault cannot be read"
            )?;
        }
        CredentialsCommand::Set { name, kind } => {
            let kind = match kind {
                KindArg::Password => CredentialKind::Password,
                KindArg::SshKey => CredentialKind::SshKey,
            };
            // Fail on a bad name or key before asking for the secret.
            credentials::validate_name(&name)?;
            let mut vault = Vault::open(vault_path, key)?;
            if io.stdin_is_tty {
                writeln!(
                    io.stderr,
                    "reading the {kind} for `{name}` from stdin (not shown; end with Enter, then Ctrl-D); prefer piping it from a file or password manager"
                )?;
            }
            let secret = Secret::read(io.stdin, kind)?;
            vault.set(&name, kind, secret)?;
            writeln!(
                io.stdout,
                "stored `{name}` ({kind}) in {}",
                vault_path.display()
            )?;
        }
        CredentialsCommand::List => {
            let vault = Vault::open(vault_path, key)?;
            let infos = vault.list();
            if infos.is_empty() {
                writeln!(io.stdout, "no credentials in {}", vault_path.display())?;
            } else {
                writeln!(
                    io.stdout,
                    "{:<32} {:<8} {:<20} {:<20}",
                    "NAME", "KIND", "CREATED", "UPDATED"
                )?;
                for info in infos {
                    writeln!(
                        io.stdout,
                        "{:<32} {:<8} {:<20} {:<20}",
                        info.name,
                        info.kind.as_str(),
                        rfc3339(info.created),
                        rfc3339(info.updated)
                    )?;
                }
            }
        }
        CredentialsCommand::Remove { name } => {
            let mut vault = Vault::open(vault_path, key)?;
            if !vault.remove(&name)? {
                return Err(crate::Failed(format!(
                    "no credential named `{name}` in {}: see `osiris credentials list`",
                    vault_path.display()
                ))
                .into());
            }
            writeln!(io.stdout, "removed `{name}`")?;
        }
        CredentialsCommand::RotateKey { new_key } => {
            let count = credentials::rotate_key(vault_path, key, &new_key)?;
            writeln!(
                io.stdout,
                "re-encrypted {count} credentials under key file {}; now point `[credentials] key_file` (or the `credentials-key` systemd credential) at it and delete the old {key}",
                new_key.display()
            )?;
        }
        CredentialsCommand::Check => {
            let vault = Vault::open(vault_path, key)?;
            writeln!(
                io.stdout,
                "vault {} opens with {key}: {} credentials",
                vault_path.display(),
                vault.len()
            )?;
        }
    }
    Ok(())
}

/// The vault path and key source: flags first, then the configuration, then the defaults.
/// Terminal echo turned off on a terminal until dropped; the previous modes come back then.
/// Newlines are still echoed (`ECHONL`), so the cursor moves on as the user presses Enter.
/// Interrupted meanwhile (Ctrl-C, `kill`, the terminal closing), the modes come back too and
/// the command exits with the shell's code for that signal, having stored nothing.
struct EchoOff {
    tty: std::io::Stdin,
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new(tty: std::io::Stdin) -> anyhow::Result<EchoOff> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        use tokio::signal::unix::{SignalKind, signal};
        let saved = tcgetattr(&tty).context("reading the terminal's modes to turn echo off")?;
        // Catch the signals before echo goes off, so none can end the command in between: the
        // watcher thread says when it listens.
        let restore = saved.clone();
        // Its own handle on standard error: the command holds the stream's lock while it reads.
        let mut stderr = std::fs::File::from(
            std::os::fd::AsFd::as_fd(&std::io::stderr())
                .try_clone_to_owned()
                .context("duplicating standard error")?,
        );
        let (listening, ready) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = listening.send(Err(err.to_string()));
                    return;
                }
            };
            let code = runtime.block_on(async {
                let streams = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                );
                let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = streams else {
                    let _ = listening.send(Err("cannot watch for Ctrl-C".to_owned()));
                    return None;
                };
                let _ = listening.send(Ok(()));
                Some(tokio::select! {
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                    _ = hangup.recv() => 129,
                })
            });
            if let Some(code) = code {
                let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &restore);
                let _ = writeln!(stderr, "\ninterrupted: nothing was stored");
                std::process::exit(code);
            }
        });
        ready
            .recv()
            .map_err(|_| anyhow::anyhow!("the signal watcher stopped"))?
            .map_err(|err| anyhow::anyhow!("watching for Ctrl-C: {err}"))?;
        let mut quiet = saved.clone();
        quiet
            .local_modes
            .remove(LocalModes::ECHO | LocalModes::ECHOE | LocalModes::ECHOK);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&tty, OptionalActions::Flush, &quiet).context("turning terminal echo off")?;
        Ok(EchoOff { tty, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // Nothing better to do if the terminal went away meanwhile.
        let _ = rustix::termios::tcsetattr(
            &self.tty,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn locate(args: &CredentialsArgs) -> anyhow::Result<(PathBuf, KeySource)> {
    if let (Some(vault), Some(key_file)) = (&args.vault, &args.key_file) {
        return Ok((vault.clone(), KeySource::File(key_file.clone())));
    }
    let config = crate::setup::load_config(Some(&args.config))?;
    // The same resolution as `osiris scan` and `ops::secrets`: one vault for every command.
    let data_dir = crate::setup::data_dir(args.data_dir.clone(), &config);
    let vault = args.vault.clone().unwrap_or_else(|| {
        credentials::default_vault_path(config.credentials.vault.as_deref(), &data_dir)
    });
    let key_file = args
        .key_file
        .as_deref()
        .or(config.credentials.key_file.as_deref());
    Ok((vault, KeySource::resolve(key_file, &data_dir)))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating key directory {}", dir.display()))
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run {
        result: anyhow::Result<()>,
        stdout: String,
        stderr: String,
    }

    fn run_with(
        cmd: CredentialsCommand,
        vault: &Path,
        key: &KeySource,
        stdin: &[u8],
        tty: bool,
    ) -> Run {
        let (mut stdin, mut stdout, mut stderr) = (stdin, Vec::new(), Vec::new());
        let result = run(
            cmd,
            vault,
            key,
            Stdio {
                stdin: &mut stdin,
                stdin_is_tty: tty,
                stdout: &mut stdout,
                stderr: &mut stderr,
            },
        );
        Run {
            result,
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    fn set(name: &str, kind: KindArg) -> CredentialsCommand {
        CredentialsCommand::Set {
            name: name.to_owned(),
            kind,
        }
    }

    #[test]
    fn set_list_remove_check_never_print_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("credentials.vault");
        let key = KeySource::File(dir.path().join("keys").join("credentials.key"));
        let created = run_with(CredentialsCommand::InitKey, &vault, &key, b"", false);
        created.result.unwrap();
        assert!(created.stdout.contains("back it up"), "{}", created.stdout);

        let password = "Tr0ub4dor&3-unique";
        let stored = run_with(
            set("winrm.admin", KindArg::Password),
            &vault,
            &key,
            format!("{password}\n").as_bytes(),
            false,
        );
        stored.result.unwrap();
        assert_eq!(
            stored.stdout,
            format!("stored `winrm.admin` (password) in {}\n", vault.display())
        );
        assert_eq!(stored.stderr, "", "no TTY hint when stdin is a pipe");
        let ssh_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn-unique\n-----END OPENSSH PRIVATE KEY-----\n";
        let hinted = run_with(
            set("fileserver", KindArg::SshKey),
            &vault,
            &key,
            ssh_key.as_bytes(),
            true,
        );
        hinted.result.unwrap();
        assert!(hinted.stderr.contains("from stdin"), "{}", hinted.stderr);

        // The newline was stripped from the password but kept in the key.
        let opened = Vault::open(&vault, &key).unwrap();
        assert_eq!(
            opened.get("winrm.admin").unwrap().unwrap().secret.expose(),
            password
        );
        assert_eq!(
            opened.get("fileserver").unwrap().unwrap().secret.expose(),
            ssh_key
        );

        let listed = run_with(CredentialsCommand::List, &vault, &key, b"", false);
        listed.result.unwrap();
        let lines: Vec<&str> = listed.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", listed.stdout);
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].starts_with("fileserver") && lines[1].contains("ssh-key"));
        assert!(lines[2].starts_with("winrm.admin") && lines[2].contains("password"));
        for text in [
            &listed.stdout,
            &listed.stderr,
            &stored.stdout,
            &hinted.stdout,
            &hinted.stderr,
        ] {
            assert!(
                !text.contains("Tr0ub4dor") && !text.contains("b3Blbn"),
                "secret printed: {text}"
            );
        }

        let checked = run_with(CredentialsCommand::Check, &vault, &key, b"", false);
        checked.result.unwrap();
        assert!(
            checked.stdout.ends_with(": 2 credentials\n"),
            "{}",
            checked.stdout
        );

        run_with(
            CredentialsCommand::Remove {
                name: "fileserver".to_owned(),
            },
            &vault,
            &key,
            b"",
            false,
        )
        .result
        .unwrap();
        let missing = run_with(
            CredentialsCommand::Remove {
                name: "fileserver".to_owned(),
            },
            &vault,
            &key,
            b"",
            false,
        );
        let err = missing.result.unwrap_err();
        assert!(
            err.to_string().contains("no credential named `fileserver`"),
            "{err}"
        );
        assert_eq!(Vault::open(&vault, &key).unwrap().len(), 1);
    }

    #[test]
    fn set_refuses_empty_input_and_bad_names_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("credentials.vault");
        let key_path = dir.path().join("credentials.key");
        Vault::init_key(&key_path).unwrap();
        let key = KeySource::File(key_path);
        for (cmd, stdin, phrase) in [
            (set("a", KindArg::Password), &b"\n"[..], "empty"),
            (set("a", KindArg::SshKey), &b""[..], "empty"),
            (
                set("Bad Name", KindArg::Password),
                &b"secret\n"[..],
                "invalid credential name",
            ),
        ] {
            let res = run_with(cmd, &vault, &key, stdin, false);
            let err = res.result.unwrap_err();
            assert!(format!("{err:#}").contains(phrase), "{err:#}");
        }
        assert!(!vault.exists());
    }

    #[test]
    fn rotate_key_then_old_key_fails_and_new_key_opens() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("credentials.vault");
        let key_path = dir.path().join("old.key");
        Vault::init_key(&key_path).unwrap();
        let old = KeySource::File(key_path);
        run_with(set("a", KindArg::Password), &vault, &old, b"x", false)
            .result
            .unwrap();
        let new_path = dir.path().join("new.key");
        let rotated = run_with(
            CredentialsCommand::RotateKey {
                new_key: new_path.clone(),
            },
            &vault,
            &old,
            b"",
            false,
        );
        rotated.result.unwrap();
        assert!(
            rotated.stdout.starts_with("re-encrypted 1 credentials"),
            "{}",
            rotated.stdout
        );
        let err = run_with(CredentialsCommand::Check, &vault, &old, b"", false)
            .result
            .unwrap_err();
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
        let checked = run_with(
            CredentialsCommand::Check,
            &vault,
            &KeySource::File(new_path),
            b"",
            false,
        );
        checked.result.unwrap();
        assert!(checked.stdout.ends_with(": 1 credentials\n"));
    }

    #[derive(Debug, clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        args: CredentialsArgs,
    }

    fn parse(argv: &[&str]) -> Result<CredentialsArgs, clap::Error> {
        use clap::Parser as _;
        TestCli::try_parse_from(std::iter::once("credentials").chain(argv.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn secrets_are_not_accepted_as_arguments() {
        assert!(parse(&["set", "a", "--kind", "password"]).is_ok());
        let err = parse(&["set", "a", "--kind", "password", "hunter2"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(parse(&["set", "a", "--kind", "token"]).is_err());
    }

    #[test]
    fn locate_prefers_flags_then_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        // Both flags given: the (missing) configuration is not read.
        let args = parse(&[
            "--config",
            "/nonexistent.toml",
            "--vault",
            "/v",
            "--key-file",
            "/k",
            "check",
        ])
        .unwrap();
        assert_eq!(
            locate(&args).unwrap(),
            (PathBuf::from("/v"), KeySource::File(PathBuf::from("/k")))
        );

        let config = dir.path().join("appliance.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "site = \"clinic\"\ndata_dir = \"{}\"\n\n[credentials]\nvault = \"/srv/v.vault\"\n",
                data.display()
            ),
        )
        .unwrap();
        let config_arg = config.to_str().unwrap();
        let args = parse(&["--config", config_arg, "list"]).unwrap();
        assert_eq!(
            locate(&args).unwrap(),
            (
                PathBuf::from("/srv/v.vault"),
                KeySource::File(data.join("keys").join("credentials.key"))
            )
        );
        let args = parse(&[
            "--config",
            config_arg,
            "--data-dir",
            "/d",
            "--key-file",
            "/k2",
            "list",
        ])
        .unwrap();
        assert_eq!(
            locate(&args).unwrap(),
            (
                PathBuf::from("/srv/v.vault"),
                KeySource::File(PathBuf::from("/k2"))
            )
        );
    }
}
