//! The Linux platform: the catalogue's `sh` scripts run as child processes through `scan-local`
//! (the same detect scripts, parameters and evaluation as the appliance's SSH scans), the device
//! key in a root-only file, and a hardened systemd unit.

use std::path::{Path, PathBuf};
use std::process::Command;

use model::{CheckOutcome, Runbook, Script, Shell, resolve_params};
use transport::{Interpreter, ScriptRun, Transport, TransportError};

use crate::platform::{
    Device, Params, Platform, PlatformError, StepOutcome, StepPhase, StepStatus,
};

/// The Linux implementation of [`Platform`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Linux;

/// The service's name.
const UNIT_NAME: &str = "osiris-agent.service";

/// Where `install` writes the unit.
const UNIT_DIR: &str = "/etc/systemd/system";

/// The default state directory, which systemd's `StateDirectory=` manages.
const DEFAULT_STATE_DIR: &str = "/var/lib/osiris-agent";

/// Longest detail line sent to the appliance, in bytes (the protocol allows 1,024).
const DETAIL_BYTES: usize = 1000;

impl Platform for Linux {
    fn wire_platform(&self) -> agent_proto::v1::Platform {
        agent_proto::v1::Platform::LinuxX8664
    }

    fn catalog_platform(&self) -> model::Platform {
        model::Platform::Linux
    }

    fn describe_device(&self) -> Device {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| clean_label(&name, 253).replace(char::is_whitespace, "-"))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let os = os_release_field(&os_release, "NAME").unwrap_or_else(|| "Linux".to_owned());
        let os_version = os_release_field(&os_release, "VERSION_ID")
            .or_else(|| Some(clean_label(&kernel, 128)).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        Device {
            hostname,
            os: clean_label(&os, 128),
            os_version: clean_label(&os_version, 128),
        }
    }

    fn default_state_dir(&self) -> PathBuf {
        PathBuf::from(DEFAULT_STATE_DIR)
    }

    fn run_check(
        &self,
        catalog: &catalog::Catalog,
        runbook: &Runbook,
        params: &Params,
    ) -> CheckOutcome {
        let overrides = scan::ParamOverrides::from([(runbook.id.clone(), params.clone())]);
        let context = scan::ScriptContext {
            overrides: &overrides,
            powershell_prelude: catalog.powershell_prelude(),
        };
        match scan_local::LocalTransport.open() {
            Ok(mut session) => scan::run_check(session.as_mut(), runbook, &context),
            Err(err) => CheckOutcome {
                status: model::CheckStatus::Error,
                observed: serde_json::Value::Null,
                expected: String::new(),
                reason: format!("could not start the check: {err}"),
            },
        }
    }

    fn run_checks(&self, catalog: &catalog::Catalog, runbooks: &[&Runbook]) -> Vec<CheckOutcome> {
        let target = model::Target {
            name: "localhost".to_owned(),
            platform: model::Platform::Linux,
            device_type: model::DeviceType::Workstation,
        };
        let overrides = scan::ParamOverrides::new();
        let context = scan::ScriptContext {
            overrides: &overrides,
            powershell_prelude: catalog.powershell_prelude(),
        };
        // One batch, as the appliance's SSH scans run them.
        let (report, _diagnostics) =
            scan::scan_target(&target, &scan_local::LocalTransport, runbooks, &context);
        report
            .results
            .into_iter()
            .map(|result| result.outcome)
            .collect()
    }

    fn run_step(
        &self,
        _catalog: &catalog::Catalog,
        runbook: &Runbook,
        script: &Script,
        _phase: StepPhase,
        params: &Params,
    ) -> StepOutcome {
        let failed = |detail: String| StepOutcome {
            status: StepStatus::Failed,
            detail: clip(&detail),
        };
        if script.shell != Shell::Sh {
            return failed(format!(
                "{} is not an sh script; this agent runs sh scripts only",
                script.source
            ));
        }
        let resolved = match resolve_params(&runbook.params, params) {
            Ok(resolved) => resolved,
            Err(err) => return failed(err.to_string()),
        };
        let env = resolved.env();
        let run = ScriptRun {
            interpreter: Interpreter::Sh,
            script: &script.body,
            env: &env,
            timeout: runbook.timeout,
        };
        let mut session = match scan_local::LocalTransport.open() {
            Ok(session) => session,
            Err(err) => return failed(format!("could not start the script: {err}")),
        };
        match session.run(&run) {
            Ok(output) if output.exit_code == Some(0) => StepOutcome {
                status: StepStatus::Succeeded,
                detail: clip(&first_line(&output.stdout)),
            },
            Ok(output) => {
                let code = output
                    .exit_code
                    .map_or_else(|| "a signal".to_owned(), |code| format!("exit code {code}"));
                let stderr = first_line(&output.stderr);
                failed(if stderr.is_empty() {
                    format!("ended with {code}")
                } else {
                    format!("ended with {code}: {stderr}")
                })
            }
            Err(err @ TransportError::Timeout { .. }) => StepOutcome {
                status: StepStatus::TimedOut,
                detail: clip(&err.to_string()),
            },
            Err(err) => failed(err.to_string()),
        }
    }

    fn seal_device_key(&self, seed: &[u8; 32]) -> Result<Vec<u8>, PlatformError> {
        // Linux has no per-machine sealing every distribution offers (a TPM is optional), so
        // the seed is kept as it is, in a 0600 file in the 0700 state directory: root only.
        Ok(seed.to_vec())
    }

    fn open_device_key(
        &self,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, PlatformError> {
        let seed: [u8; 32] = sealed.try_into().map_err(|_| {
            PlatformError::Unsupported(format!(
                "the device key file holds {} bytes; an Ed25519 seed is 32",
                sealed.len()
            ))
        })?;
        Ok(zeroize::Zeroizing::new(seed))
    }

    fn install_service(&self, exe: &Path, state_dir: &Path) -> Result<Vec<String>, PlatformError> {
        if !Path::new("/run/systemd/system").is_dir() {
            return Err(PlatformError::Unsupported(
                "systemd is not running on this machine; start `osiris-agent run` with the init system it uses".to_owned(),
            ));
        }
        let unit = systemd_unit(exe, state_dir)?;
        let path = Path::new(UNIT_DIR).join(UNIT_NAME);
        durable::write(&path, unit.as_bytes(), 0o644).map_err(|err| PlatformError::Io {
            action: format!("writing {}", path.display()),
            source: std::io::Error::new(err.kind(), err.to_string()),
        })?;
        let mut done = vec![format!("wrote {}", path.display())];
        systemctl(&["daemon-reload"])?;
        done.push("systemctl daemon-reload".to_owned());
        systemctl(&["enable", "--now", UNIT_NAME])?;
        done.push(format!("systemctl enable --now {UNIT_NAME}"));
        done.push(format!(
            "the service runs {}: keep the binary there",
            exe.display()
        ));
        Ok(done)
    }

    fn uninstall_service(&self) -> Result<Vec<String>, PlatformError> {
        let path = Path::new(UNIT_DIR).join(UNIT_NAME);
        if !path.exists() {
            return Err(PlatformError::Unsupported(format!(
                "the service is not installed ({} does not exist)",
                path.display()
            )));
        }
        let mut done = Vec::new();
        if Path::new("/run/systemd/system").is_dir() {
            systemctl(&["disable", "--now", UNIT_NAME])?;
            done.push(format!("systemctl disable --now {UNIT_NAME}"));
        }
        std::fs::remove_file(&path).map_err(|source| PlatformError::Io {
            action: format!("removing {}", path.display()),
            source,
        })?;
        durable::sync_parent(&path).map_err(|err| PlatformError::Io {
            action: format!("syncing {UNIT_DIR}"),
            source: std::io::Error::new(err.kind(), err.to_string()),
        })?;
        done.push(format!("removed {}", path.display()));
        if Path::new("/run/systemd/system").is_dir() {
            systemctl(&["daemon-reload"])?;
            done.push("systemctl daemon-reload".to_owned());
        }
        Ok(done)
    }
}

/// The systemd unit `install` writes for `exe run --state-dir state_dir`.
///
/// The agent runs as root: its checks read `/etc/shadow`, sshd's effective settings, netfilter
/// and every process's sockets, and the catalogue's remediations rewrite files under `/etc`
/// and restart services. The sandbox keeps what those need and takes the rest; each relaxation
/// is commented in the unit itself.
///
/// # Errors
/// When a path holds characters a unit file would read differently (white space, quotes,
/// backslashes, `%`, `$`, control characters) or is not absolute.
pub fn systemd_unit(exe: &Path, state_dir: &Path) -> Result<String, PlatformError> {
    let exe_dir = unit_path(
        exe.parent().unwrap_or_else(|| Path::new("/")),
        "the agent's executable's directory",
    )?;
    let exe = unit_path(exe, "the agent's executable")?;
    let state = unit_path(state_dir, "the state directory")?;
    let state_lines = if state == DEFAULT_STATE_DIR {
        "StateDirectory=osiris-agent\nStateDirectoryMode=0700\n".to_owned()
    } else {
        format!(
            "# The state directory is not under /var/lib, so it is named here.\nReadWritePaths={state}\n"
        )
    };
    Ok(format!(
        "# Written by `osiris-agent install`; `osiris-agent uninstall` removes it.
[Unit]
Description=OsirisCare endpoint agent
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
ExecStart={exe} run --state-dir {state}
Restart=always
# Exit 75 after an update is installed: the new version starts.
RestartSec=10s
# 78 (EX_CONFIG): not enrolled or unreadable state, which a restart does not mend.
RestartPreventExitStatus=78
TimeoutStopSec=30s
# A check still running at stop is ended with the agent.
KillMode=control-group
# A workstation's user comes first.
Nice=10
CPUWeight=20
IOWeight=20

# Root, because the checks read /etc/shadow, sshd's effective settings, netfilter and every
# process's sockets, and remediations rewrite files under /etc and restart services.
{state_lines}UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
# What the catalogue's remediations and rollbacks write (/etc, their backups under
# /var/backups, the journal's directory, set-user-ID bits in the temporary directories);
# /usr, /boot and the rest stay read-only, so a remediation that would change them fails
# and says so.
ReadWritePaths=-/etc -/var/backups -/var/log -/tmp -/var/tmp
# The executable's directory: a verified update replaces the binary there (swap and rollback).
ReadWritePaths={exe_dir}
ProtectHome=read-only
# Not PrivateTmp, PrivateDevices or ProtectProc: checks must see the real /tmp, /dev/shm
# and every process, or a check would pass on a private empty copy.
# Not ProtectKernelTunables: LIN-KERN-001's remediation sets sysctl values.
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
RestrictNamespaces=yes
# Netlink: `ss` and `nft` read and set sockets and the firewall through it.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
CapabilityBoundingSet=~CAP_SYS_MODULE CAP_SYS_BOOT CAP_SYS_RAWIO CAP_MKNOD CAP_SYS_TIME CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_LINUX_IMMUTABLE CAP_MAC_ADMIN CAP_MAC_OVERRIDE CAP_SYSLOG CAP_BPF CAP_PERFMON CAP_SYS_PACCT CAP_LEASE CAP_SYS_TTY_CONFIG

[Install]
WantedBy=multi-user.target
"
    ))
}

/// `path` as it can stand in a unit file unquoted.
fn unit_path(path: &Path, what: &str) -> Result<String, PlatformError> {
    let text = path.to_str().ok_or_else(|| {
        PlatformError::Unsupported(format!("{what} {} is not UTF-8", path.display()))
    })?;
    if !path.is_absolute() {
        return Err(PlatformError::Unsupported(format!(
            "{what} {text} is not an absolute path"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'\\%$;".contains(*c))
    {
        return Err(PlatformError::Unsupported(format!(
            "{what} {text:?} holds {bad:?}, which a systemd unit would read differently; use a path without it"
        )));
    }
    Ok(text.to_owned())
}

fn systemctl(args: &[&str]) -> Result<(), PlatformError> {
    let command = format!("systemctl {}", args.join(" "));
    let output = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|source| PlatformError::Io {
            action: format!("running {command}"),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(PlatformError::Command {
        command,
        detail: format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

/// A value of `/etc/os-release` (quotes removed).
fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        let value = value.trim().trim_matches('"').trim_matches('\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Text trimmed, control characters as spaces, at most `max` bytes.
fn clean_label(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// The first non-empty line of a script's output.
fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// `text` without control characters, at most [`DETAIL_BYTES`] bytes.
fn clip(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > DETAIL_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(
            os_release_field(text, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(os_release_field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(os_release_field(text, "ID"), None);
        assert_eq!(clean_label(" Debian\tGNU/Linux\n", 10), "Debian GNU");
        assert_eq!(clip("a\u{1b}[2Jb"), "a [2Jb");
    }
}
