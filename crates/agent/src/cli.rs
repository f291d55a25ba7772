//! The command line of `osiris-agent`: a small hand-written parser (clap cost 185 KB of
//! the agent's 3 MB budget), its usage text, and errors that name the argument and the fix.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::enroll::TokenSource;

/// One parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Enroll this machine with an appliance (once).
    Enroll {
        how: EnrollFrom,
        state_dir: Option<PathBuf>,
    },
    /// Check on schedule and report until stopped.
    Run {
        state_dir: Option<PathBuf>,
        service: bool,
    },
    /// Whether this machine is enrolled, the connection and the queue.
    Status {
        json: bool,
        state_dir: Option<PathBuf>,
    },
    /// Install as a system service and start it.
    Install { state_dir: Option<PathBuf> },
    /// Stop and remove the system service.
    Uninstall,
    /// Run every check once and print the results.
    Check { json: bool },
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// Where `enroll` takes the appliance, the CA pin and the token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollFrom {
    /// `--appliance`, `--ca-pin` and the token from a file or stdin.
    Flags {
        appliance: String,
        ca_pin: agent_proto::CaPin,
        token: TokenSource,
    },
    /// The console's enrollment link (its QR code), from a file or stdin.
    Link(TokenSource),
}

/// A command line that cannot be run; exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (osiris-agent --help shows the usage)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// The usage text of `osiris-agent --help`.
pub const USAGE: &str = "\
osiris-agent: OsirisCare's endpoint agent. Checks this machine with the appliance's own catalogue
and reports to the appliance.

Usage: osiris-agent <COMMAND> [OPTIONS]

Commands:
  enroll     Enroll this machine with an appliance (once):
               --appliance HOST:PORT --ca-pin sha256:HEX (--token-file PATH | --token -)
             or with the console's enrollment link (its QR code):
               --link-file PATH | --link -
             The token and the link are read from a file or stdin, never taken as arguments:
             every local user can read arguments (ps) and shells keep them in their history.
  run        Check on schedule and report to the appliance until stopped [--service]
  status     Show the enrollment, the connection and the queue [--json]
  install    Install the agent as a system service and start it (enroll first)
  uninstall  Stop and remove the system service (the state directory stays)
  check      Run every check for this platform once and print the results: --once [--json]

Options for enroll, run, status and install:
  --state-dir DIR   Where the agent keeps its state

  -h, --help        Print this text
  -V, --version     Print the version
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(UsageError("a command is missing".to_owned()));
    };
    let command = text(first)?;
    let mut options = Options::read(args)?;
    let parsed = match command.as_str() {
        "-h" | "--help" | "help" => Command::Help,
        "-V" | "--version" => Command::Version,
        "enroll" => {
            let state_dir = options.path("--state-dir")?;
            let link = options.source("--link-file", "--link")?;
            let token = options.source("--token-file", "--token")?;
            let appliance = options.value("--appliance")?;
            let ca_pin = options.value("--ca-pin")?;
            let how = match (link, token, appliance, ca_pin) {
                (Some(link), None, None, None) => EnrollFrom::Link(link),
                (Some(_), ..) => {
                    return Err(UsageError(
                        "--link-file/--link already names the appliance, the pin and the token; give nothing else with it".to_owned(),
                    ));
                }
                (None, Some(token), Some(appliance), Some(ca_pin)) => EnrollFrom::Flags {
                    appliance,
                    ca_pin: ca_pin.parse().map_err(|err| {
                        UsageError(format!(
                            "--ca-pin: {err}; copy it as `osiris agent token create` prints it"
                        ))
                    })?,
                    token,
                },
                (None, token, appliance, ca_pin) => {
                    let missing: Vec<&str> = [
                        (appliance.is_none(), "--appliance HOST:PORT"),
                        (ca_pin.is_none(), "--ca-pin sha256:HEX"),
                        (token.is_none(), "--token-file PATH (or --token -)"),
                    ]
                    .into_iter()
                    .filter_map(|(absent, name)| absent.then_some(name))
                    .collect();
                    return Err(UsageError(format!(
                        "enroll needs {} (or the console's link: --link-file PATH)",
                        missing.join(", ")
                    )));
                }
            };
            Command::Enroll { how, state_dir }
        }
        "run" => Command::Run {
            state_dir: options.path("--state-dir")?,
            service: options.flag("--service")?,
        },
        "status" => Command::Status {
            json: options.flag("--json")?,
            state_dir: options.path("--state-dir")?,
        },
        "install" => Command::Install {
            state_dir: options.path("--state-dir")?,
        },
        "uninstall" => Command::Uninstall,
        "check" => {
            if !options.flag("--once")? {
                return Err(UsageError(
                    "check runs once and needs --once (the schedule is `run`)".to_owned(),
                ));
            }
            Command::Check {
                json: options.flag("--json")?,
            }
        }
        other => {
            return Err(UsageError(format!(
                "unknown command `{}` (commands: enroll, run, status, install, uninstall, check)",
                other.escape_debug()
            )));
        }
    };
    options.finish(&command)?;
    Ok(parsed)
}

/// The options after the command: `--name value`, `--name=value` or `--flag`.
struct Options {
    given: Vec<(String, Option<String>)>,
    used: Vec<bool>,
}

/// Options that take a value; every other `--name` is a flag.
const VALUED: &[&str] = &[
    "--state-dir",
    "--appliance",
    "--ca-pin",
    "--token",
    "--token-file",
    "--link",
    "--link-file",
];

impl Options {
    fn read(args: impl Iterator<Item = OsString>) -> Result<Options, UsageError> {
        let mut given = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let arg = text(arg)?;
            if !arg.starts_with("--") {
                return Err(UsageError(format!(
                    "unexpected argument `{}`",
                    arg.escape_debug()
                )));
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let value = if VALUED.contains(&name.as_str()) {
                match inline {
                    Some(value) => Some(value),
                    None => match args.next() {
                        Some(value) => Some(text(value)?),
                        None => return Err(UsageError(format!("{name} needs a value"))),
                    },
                }
            } else {
                if inline.is_some() {
                    return Err(UsageError(format!("{name} takes no value")));
                }
                None
            };
            if given.iter().any(|(seen, _)| *seen == name) {
                return Err(UsageError(format!("{name} is given twice")));
            }
            given.push((name, value));
        }
        let used = vec![false; given.len()];
        Ok(Options { given, used })
    }

    fn take(&mut self, name: &str) -> Option<Option<String>> {
        let at = self.given.iter().position(|(seen, _)| seen == name)?;
        self.used[at] = true;
        Some(self.given[at].1.clone())
    }

    fn flag(&mut self, name: &str) -> Result<bool, UsageError> {
        Ok(self.take(name).is_some())
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, UsageError> {
        match self.take(name) {
            Some(Some(value)) if value.is_empty() => {
                Err(UsageError(format!("{name} needs a value")))
            }
            Some(value) => Ok(value),
            None => Ok(None),
        }
    }

    fn path(&mut self, name: &str) -> Result<Option<PathBuf>, UsageError> {
        Ok(self.value(name)?.map(PathBuf::from))
    }

    /// A secret's source: `file_option PATH`, or `stdin_option -` (only `-`: the secret itself
    /// is refused as an argument).
    fn source(
        &mut self,
        file_option: &str,
        stdin_option: &str,
    ) -> Result<Option<TokenSource>, UsageError> {
        let file = self.path(file_option)?;
        let stdin = self.value(stdin_option)?;
        match (file, stdin) {
            (Some(_), Some(_)) => Err(UsageError(format!(
                "give {file_option} or {stdin_option} -, not both"
            ))),
            (Some(path), None) => Ok(Some(TokenSource::File(path))),
            (None, Some(value)) if value == "-" => Ok(Some(TokenSource::Stdin)),
            (None, Some(_)) => Err(UsageError(format!(
                "{stdin_option} accepts only `-` (read it from stdin): given as an argument it is visible to every user of this machine (ps) and stays in shell history; use {file_option} PATH or {stdin_option} -"
            ))),
            (None, None) => Ok(None),
        }
    }

    /// Refuses options the command does not take.
    fn finish(&self, command: &str) -> Result<(), UsageError> {
        match self.given.iter().zip(&self.used).find(|(_, used)| !**used) {
            Some(((name, _), _)) => Err(UsageError(format!(
                "`{command}` does not take {}",
                name.escape_debug()
            ))),
            None => Ok(()),
        }
    }
}

fn text(arg: OsString) -> Result<String, UsageError> {
    arg.into_string()
        .map_err(|arg| UsageError(format!("argument {arg:?} is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn run(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(OsString::from)).map_err(|err| err.to_string())
    }

    #[test]
    fn each_command_parses_with_its_options() {
        assert_eq!(
            run(&format!(
                "enroll --appliance 10.0.0.2:7443 --ca-pin={PIN} --token-file /tmp/t --state-dir /s"
            )),
            Ok(Command::Enroll {
                how: EnrollFrom::Flags {
                    appliance: "10.0.0.2:7443".to_owned(),
                    ca_pin: PIN.parse().unwrap(),
                    token: TokenSource::File("/tmp/t".into()),
                },
                state_dir: Some("/s".into()),
            })
        );
        assert_eq!(
            run("enroll --link -"),
            Ok(Command::Enroll {
                how: EnrollFrom::Link(TokenSource::Stdin),
                state_dir: None,
            })
        );
        assert_eq!(
            run("run --service --state-dir /s"),
            Ok(Command::Run {
                state_dir: Some("/s".into()),
                service: true,
            })
        );
        assert_eq!(
            run("status --json"),
            Ok(Command::Status {
                json: true,
                state_dir: None
            })
        );
        assert_eq!(run("check --once"), Ok(Command::Check { json: false }));
        assert_eq!(run("uninstall"), Ok(Command::Uninstall));
        assert_eq!(run("--version"), Ok(Command::Version));
        assert_eq!(run("help"), Ok(Command::Help));
    }

    #[test]
    fn bad_command_lines_name_the_problem_and_the_fix() {
        let cases = [
            ("", "a command is missing"),
            ("frobnicate", "unknown command `frobnicate`"),
            ("enroll --token osat_secret", "--token accepts only `-`"),
            (
                "enroll --link osiris-agent://enroll?x",
                "--link accepts only `-`",
            ),
            (
                "enroll --appliance h:1",
                "enroll needs --ca-pin sha256:HEX, --token-file PATH (or --token -)",
            ),
            (
                "enroll --link - --appliance h:1",
                "already names the appliance",
            ),
            (
                "enroll --appliance h:1 --ca-pin nothex --token -",
                "--ca-pin: ",
            ),
            ("enroll --token-file a --token -", "not both"),
            ("check", "needs --once"),
            ("run --json", "`run` does not take --json"),
            ("status --state-dir", "--state-dir needs a value"),
            ("status --json --json", "--json is given twice"),
            ("status --json=yes", "--json takes no value"),
            ("status extra", "unexpected argument `extra`"),
        ];
        for (line, want) in cases {
            let got = run(line).unwrap_err();
            assert!(got.contains(want), "{line:?}: {got}");
            assert!(
                got.ends_with("(osiris-agent --help shows the usage)"),
                "{got}"
            );
        }
    }

    #[test]
    fn the_consoles_enrollment_link_gives_appliance_pin_and_token() {
        let options = crate::enroll::parse_link(&format!(
            "osiris-agent://enroll?appliance=%5Bfd00::5%5D:7443&ca-pin={PIN}&token=osat_abc234\n"
        ))
        .unwrap();
        assert_eq!(options.gateway, "[fd00::5]:7443");
        assert_eq!(options.ca_pin, PIN.parse().unwrap());
        assert_eq!(options.token.as_str(), "osat_abc234");
        for bad in [
            "https://example.com/?token=x",
            "osiris-agent://enroll?appliance=h:1&token=x",
            "osiris-agent://enroll?appliance=h:1&ca-pin=sha256:00&token=x",
            "osiris-agent://enroll?appliance=h:1&appliance=h:2&ca-pin=x&token=x",
            "osiris-agent://enroll?appliance=%zz&ca-pin=x&token=x",
        ] {
            let err = crate::enroll::parse_link(bad).unwrap_err().to_string();
            assert!(err.contains("enrollment link"), "{bad}: {err}");
        }
    }
}
