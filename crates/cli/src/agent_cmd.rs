//! `osiris agent …`: enrollment tokens and enrolled endpoint agents, through the daemon's local
//! API (the daemon holds the store; these commands never open it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use api::endpoint;

use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// The appliance configuration (names the daemon's socket).
    #[arg(long, global = true, default_value = "/etc/osiris/appliance.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    /// Enrollment tokens: what `osiris-agent enroll` needs, with the gateway address and CA pin.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Every enrolled agent: host, platform, connected or last seen, queue, certificate expiry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Vendor-signed agent releases: add, list, widen or pause their rollout.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Refuse an agent's certificate from now on (sealed as evidence); its stream ends at once.
    Revoke {
        /// The agent's ID (`osiris agent list`).
        id: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ReleaseCommand {
    /// Store a release (checked against the vendor's agent root) and offer it to a share of agents.
    Add {
        /// The signed manifest (JSON) the vendor published.
        #[arg(long)]
        manifest: PathBuf,
        /// The binary it names.
        #[arg(long)]
        binary: PathBuf,
        /// Newer signed roots published with it, oldest first (repeat the option).
        #[arg(long = "root")]
        roots: Vec<PathBuf>,
        /// Share of agents offered it now, 0–100 (widen later with `rollout`).
        #[arg(long, default_value_t = 10)]
        rollout: u8,
    },
    /// The stored releases, their rollout and any problem.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change the share of agents offered a release (0 pauses it).
    Rollout {
        /// `linux-x86_64` or `windows-x86_64`.
        platform: String,
        /// `MAJOR.MINOR.PATCH`.
        version: String,
        /// 0–100.
        percent: u8,
    },
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a token. It is printed once and stored only as a hash.
    Create {
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is valid: `30m`, `24h`, `7d` (at most 30 days).
        #[arg(long, default_value = "24h")]
        expires: String,
        #[arg(long)]
        json: bool,
    },
    /// Every token and its state (usable, used up, expired, revoked); never the token's text.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token nobody has used up yet.
    Revoke {
        /// The token's ID (`osiris agent token list`).
        id: String,
    },
}

/// Who runs the command, as the evidence records it (the daemon also records the kernel's uid).
fn who() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "osiris-cli".to_owned())
}

/// `30m`, `24h`, `7d`, `90s` or plain seconds.
fn duration_secs(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().map_err(|_| {
        crate::Failed(format!(
            "--expires {text:?} is not a duration; write e.g. `30m`, `24h` or `7d`"
        ))
    })?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(crate::Failed(format!(
                "--expires {text:?} has an unknown unit {unit:?}; use s, m, h or d"
            ))
            .into());
        }
    };
    Ok(n.saturating_mul(scale))
}

fn when(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

pub(crate) fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(Some(&args.config))?;
    let client = api::Client::new(&config.daemon.socket);
    let call_failed = |err: api::ClientError| crate::Failed(err.to_string());
    let mut out = std::io::stdout().lock();
    match args.command {
        AgentCommand::Token(TokenCommand::Create {
            uses,
            expires,
            json,
        }) => {
            let request = api::AgentTokenRequest {
                uses,
                expires_secs: duration_secs(&expires)?,
                by: who(),
            };
            let token = client
                .call(&endpoint::CreateAgentToken, &request)
                .map_err(call_failed)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&token)?)?;
            } else {
                writeln!(
                    out,
                    "Token {} ({} enrollment{}, valid until {}):",
                    token.id,
                    token.uses,
                    if token.uses == 1 { "" } else { "s" },
                    when(token.expires_at)
                )?;
                writeln!(out, "  {}", token.token)?;
                writeln!(out, "Gateway: {}", token.gateway)?;
                writeln!(out, "CA pin:  {}", token.ca_pin)?;
                writeln!(out)?;
                writeln!(
                    out,
                    "On the machine (the token is read from the file, never from the command line):"
                )?;
                writeln!(
                    out,
                    "  osiris-agent enroll --appliance {} --ca-pin {} --token-file TOKEN_FILE",
                    token.gateway, token.ca_pin
                )?;
                writeln!(
                    out,
                    "This is the only time the token is shown; only its hash is kept."
                )?;
            }
        }
        AgentCommand::Token(TokenCommand::List { json }) => {
            let tokens = client
                .call(&endpoint::AgentTokens, &())
                .map_err(call_failed)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&tokens)?)?;
            } else if tokens.is_empty() {
                writeln!(
                    out,
                    "No enrollment tokens yet; make one with `osiris agent token create`."
                )?;
            } else {
                writeln!(
                    out,
                    "ID           STATE     USES LEFT  EXPIRES              CREATED BY"
                )?;
                for t in tokens {
                    writeln!(
                        out,
                        "{:<12} {:<9} {:>4} of {:<2}  {:<20} {}",
                        t.id,
                        t.state,
                        t.uses_left,
                        t.uses_total,
                        when(t.expires_at),
                        t.created_by
                    )?;
                }
            }
        }
        AgentCommand::Token(TokenCommand::Revoke { id }) => {
            client
                .call(
                    &endpoint::RevokeAgentToken,
                    &api::AgentTokenRevokeRequest {
                        id: id.clone(),
                        by: who(),
                    },
                )
                .map_err(call_failed)?;
            writeln!(
                out,
                "Token {id} revoked; nobody can enroll with it any more."
            )?;
        }
        AgentCommand::List { json } => {
            let state = client.call(&endpoint::Agents, &()).map_err(call_failed)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&state)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let Some(gateway) = &state.gateway else {
                writeln!(
                    out,
                    "The agent gateway is off: add `[agents] listen = \"0.0.0.0:7443\"` to the configuration."
                )?;
                return Ok(ExitCode::SUCCESS);
            };
            writeln!(
                out,
                "Gateway {gateway}, CA pin {}",
                state.ca_pin.as_deref().unwrap_or("?")
            )?;
            if state.agents.is_empty() {
                writeln!(out, "No agents enrolled yet.")?;
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            for a in &state.agents {
                let seen = if a.revoked_at.is_some() {
                    "revoked".to_owned()
                } else if a.connected {
                    format!("connected, {} queued", a.queue_items)
                } else {
                    a.last_seen_at.map_or_else(
                        || "never reported".to_owned(),
                        |at| format!("last report {} min ago", (now - at).max(0) / 60),
                    )
                };
                writeln!(
                    out,
                    "{:<20} {:<32} {:<15} {:<8} {seen}; items sealed up to #{}; certificate until {}",
                    a.agent_id,
                    a.hostname,
                    a.platform,
                    a.agent_version,
                    a.stored_seq,
                    when(a.certificate_expires_at)
                )?;
            }
        }
        AgentCommand::Release(command) => release(&client, command, &mut out)?,
        AgentCommand::Revoke { id, reason } => {
            let view = client
                .call(
                    &endpoint::RevokeAgent,
                    &api::AgentRevokeRequest {
                        agent_id: id,
                        by: who(),
                        reason,
                    },
                )
                .map_err(call_failed)?;
            writeln!(
                out,
                "Agent {} ({}) revoked; its certificate is refused from now on.",
                view.agent_id, view.hostname
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn release(
    client: &api::Client,
    command: ReleaseCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let call_failed = |err: api::ClientError| crate::Failed(err.to_string());
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map_err(|err| crate::Failed(format!("cannot read {}: {err}", path.display())))
    };
    let (releases, json) = match command {
        ReleaseCommand::Add {
            manifest,
            binary,
            roots,
            rollout,
        } => {
            let binary = binary.canonicalize().map_err(|err| {
                crate::Failed(format!(
                    "cannot find the binary {}: {err}",
                    binary.display()
                ))
            })?;
            let request = api::AgentReleaseRequest {
                manifest: read(&manifest)?,
                roots: roots.iter().map(read).collect::<Result<_, _>>()?,
                binary_path: binary.display().to_string(),
                rollout_percent: rollout,
                by: who(),
            };
            let releases = client
                .call(&endpoint::AddAgentRelease, &request)
                .map_err(call_failed)?;
            writeln!(
                out,
                "Release stored; offered to {} connected agent(s) now.",
                releases.offered_now
            )?;
            (releases, false)
        }
        ReleaseCommand::List { json } => (
            client
                .call(&endpoint::AgentReleaseList, &())
                .map_err(call_failed)?,
            json,
        ),
        ReleaseCommand::Rollout {
            platform,
            version,
            percent,
        } => {
            let request = api::AgentRolloutRequest {
                platform,
                version,
                percent,
                by: who(),
            };
            let releases = client
                .call(&endpoint::SetAgentRollout, &request)
                .map_err(call_failed)?;
            writeln!(
                out,
                "Rollout changed; offered to {} connected agent(s) now.",
                releases.offered_now
            )?;
            (releases, false)
        }
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&releases)?)?;
        return Ok(());
    }
    writeln!(out, "Agent root version {}", releases.root_version)?;
    if releases.releases.is_empty() {
        writeln!(out, "No agent releases stored.")?;
    }
    for r in &releases.releases {
        let state = r.problem.as_deref().map_or_else(
            || format!("offered to {} %", r.rollout_percent),
            |problem| format!("not offered: {problem}"),
        );
        writeln!(
            out,
            "{:<15} {:<10} {:>9} bytes  sha256 {}  {state}",
            r.platform, r.version, r.size, r.sha256
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::duration_secs;

    #[test]
    fn durations_are_read_with_their_unit_and_bad_ones_named() {
        assert_eq!(duration_secs("90").unwrap(), 90);
        assert_eq!(duration_secs("30m").unwrap(), 1_800);
        assert_eq!(duration_secs("24h").unwrap(), 86_400);
        assert_eq!(duration_secs("7d").unwrap(), 604_800);
        assert!(
            duration_secs("7w")
                .unwrap_err()
                .to_string()
                .contains("unknown unit \"w\"")
        );
        assert!(
            duration_secs("soon")
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
    }
}
