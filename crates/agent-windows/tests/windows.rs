//! The Windows side itself, run on Windows or under Wine (`cargo test -p agent-windows --target
//! x86_64-pc-windows-gnu`: cargo runs test binaries through `scripts/wine-run`, a throwaway
//! headless prefix). Wine has real COM/WMI (its `root\cimv2`), a real registry, DPAPI and a
//! service control manager; it has no BitLocker, Defender or firewall WMI classes.

#![cfg(windows)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_windows::service::{self, ServiceSpec, State};
use agent_windows::source::sources;
use agent_windows::{Value, dpapi, read_snapshot};

#[test]
fn dpapi_round_trips_and_refuses_a_changed_blob() {
    for scope in [dpapi::Scope::Account, dpapi::Scope::Machine] {
        dpapi_round_trip(scope);
    }
}

fn dpapi_round_trip(scope: dpapi::Scope) {
    let secret = b"ed25519 device key: 32 bytes....";
    let blob = dpapi::protect(secret, scope).unwrap();
    assert!(blob.len() > secret.len());
    assert!(
        !blob.windows(secret.len()).any(|w| w == secret),
        "plaintext in the blob"
    );
    assert_eq!(dpapi::unprotect(&blob).unwrap().as_slice(), secret);
    // Two protections of the same secret differ (a fresh salt), and both open.
    let again = dpapi::protect(secret, scope).unwrap();
    assert_ne!(again, blob);
    assert_eq!(dpapi::unprotect(&again).unwrap().as_slice(), secret);
    let mut damaged = blob.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(dpapi::unprotect(&damaged).is_err());
    assert!(dpapi::unprotect(b"not a DPAPI blob").is_err());
}

#[test]
fn wmi_reads_what_exists_and_names_what_does_not() {
    // Win32_QuickFixEngineering exists in Wine's root\cimv2 (one placeholder row).
    let snapshot = read_snapshot(sources(agent_windows::PATCHES).unwrap());
    let rows = snapshot["Win32_QuickFixEngineering"].as_ref().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(
            |row| matches!(row.get("HotFixID"), Some(Value::Text(id)) if id.starts_with("KB"))
        ),
        "{rows:?}"
    );
    // Defender's namespace does not: the error says which and with which WMI code.
    let snapshot = read_snapshot(sources(agent_windows::DEFENDER).unwrap());
    let error = snapshot["MSFT_MpComputerStatus"].as_ref().unwrap_err();
    assert_eq!(error.code, Some(0x8004_100E), "{error}");
    assert!(
        error
            .describe()
            .contains(r"root\Microsoft\Windows\Defender")
            && error.describe().contains("WBEM_E_INVALID_NAMESPACE"),
        "{error}"
    );
}

#[test]
fn the_registry_value_is_read_with_its_type() {
    let read = || {
        let snapshot = read_snapshot(sources(agent_windows::SCREEN_LOCK).unwrap());
        snapshot["InactivityTimeoutSecs"].clone().unwrap()
    };
    let key = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System";
    let reg = |args: &[&str]| {
        let out = Command::new("reg").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "reg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Absent (a fresh prefix has no such policy): no instance, not an error.
    assert!(read().is_empty());
    reg(&[
        "add",
        key,
        "/v",
        "InactivityTimeoutSecs",
        "/t",
        "REG_DWORD",
        "/d",
        "4000000000",
        "/f",
    ]);
    assert_eq!(
        read()[0]["InactivityTimeoutSecs"],
        Value::Int(4_000_000_000)
    );
    reg(&[
        "add",
        key,
        "/v",
        "InactivityTimeoutSecs",
        "/t",
        "REG_SZ",
        "/d",
        "600",
        "/f",
    ]);
    assert_eq!(
        read()[0]["InactivityTimeoutSecs"],
        Value::Text("600".into())
    );
    reg(&[
        "add",
        key,
        "/v",
        "InactivityTimeoutSecs",
        "/t",
        "REG_BINARY",
        "/d",
        "0102",
        "/f",
    ]);
    assert_eq!(
        read()[0]["InactivityTimeoutSecs"],
        Value::Unsupported("REG_BINARY".into())
    );
    reg(&["delete", key, "/v", "InactivityTimeoutSecs", "/f"]);
}

#[test]
fn the_service_installs_with_recovery_runs_stops_and_uninstalls() {
    let name = "OsirisProbe";
    let probe = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("service-probe.exe");
    assert!(
        probe.is_file(),
        "{} (cargo test builds the examples)",
        probe.display()
    );
    let marker = std::env::temp_dir().join(format!("osiris-probe-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    assert_eq!(service::query(name).unwrap(), None);
    assert!(
        !service::uninstall(name).unwrap(),
        "nothing to uninstall yet"
    );
    let warnings = service::install(&ServiceSpec {
        name: name.into(),
        display_name: "OsirisCare probe".into(),
        description: "agent-windows service test".into(),
        executable: probe.clone(),
        arguments: vec![OsString::from("--service"), marker.clone().into_os_string()],
    })
    .unwrap();
    let installed = service::query(name).unwrap().unwrap();
    // Windows honours recovery on error exits; Wine 8's service manager lacks the setting,
    // and then install says so rather than pretending.
    match installed.recover_on_error_exit {
        Some(enabled) => assert!(enabled && warnings.is_empty(), "{warnings:?}"),
        None => assert_eq!(warnings, [service::InstallWarning::NoRecoveryOnErrorExit]),
    }
    assert_eq!(installed.state, State::Stopped);
    assert!(installed.automatic_start);
    assert_eq!(installed.account.as_deref(), Some("LocalSystem"));
    assert!(
        installed
            .executable
            .to_string_lossy()
            .contains("service-probe.exe"),
        "{installed:?}"
    );
    // Windows reports the recovery actions it stores; Wine 8 stores none and cannot report them.
    if let Some(recovery) = &installed.recovery {
        assert_eq!(
            recovery.restart_delays,
            service::RESTART_DELAYS.map(Some).to_vec()
        );
        assert_eq!(recovery.reset_after, Some(service::RESET_AFTER));
    }

    service::start(name).unwrap();
    wait_for(|| service::query(name).unwrap().unwrap().state == State::Running);
    wait_for(|| std::fs::read_to_string(&marker).is_ok_and(|text| text == "running"));
    // Uninstall stops the running service (its body sees the stop request) and deletes it.
    assert!(service::uninstall(name).unwrap());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "stopped");
    assert_eq!(service::query(name).unwrap(), None);
    let _ = std::fs::remove_file(&marker);
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_state_directory_is_closed_to_everyone_but_system_and_administrators() {
    let dir = std::env::temp_dir().join(format!("osiris-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let before = agent_windows::acl::describe(&dir).unwrap();
    agent_windows::acl::restrict_state_dir(&dir).unwrap();
    let sddl = agent_windows::acl::describe(&dir).unwrap();
    if is_wine() {
        // Wine 8 accepts a file's security descriptor and keeps none of it (it derives one
        // from the Unix mode): only real Windows confirms the ACL (docs/AGENT-WINDOWS.md).
        assert_eq!(sddl, before);
    } else {
        assert_eq!(sddl, agent_windows::acl::STATE_DIR_SDDL);
        // What is created inside inherits it, and this (administrator's) process still
        // writes there.
        let file = dir.join("tls.key");
        std::fs::write(&file, b"key").unwrap();
        let inherited = agent_windows::acl::describe(&file).unwrap();
        assert!(
            inherited.contains("(A;ID;FA;;;SY)")
                && inherited.contains("(A;ID;FA;;;BA)")
                && !inherited.contains(";;;BU)")
                && !inherited.contains(";;;WD)"),
            "{inherited}"
        );
    }
    // Restricting again (a second enrollment into the same directory) is fine.
    agent_windows::acl::restrict_state_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether this is Wine (its registry has `HKLM\Software\Wine`).
fn is_wine() -> bool {
    Command::new("reg")
        .args(["query", r"HKLM\Software\Wine"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn the_device_describes_itself_from_the_registry() {
    let device = agent_windows::device::read();
    assert!(
        !device.hostname.is_empty()
            && !device.hostname.contains(char::is_whitespace)
            && device.hostname == device.hostname.to_lowercase(),
        "{device:?}"
    );
    assert!(
        device.os.starts_with("Windows") || device.os.contains("Windows"),
        "{device:?}"
    );
    assert!(
        device.os_version.split('.').count() >= 2
            && device
                .os_version
                .split('.')
                .all(|part| part.parse::<u64>().is_ok()),
        "{device:?}"
    );
}

#[test]
fn powershell_runs_by_full_path_with_the_script_on_stdin() {
    use agent_windows::powershell::LocalPowerShell;
    use transport::{Interpreter, ScriptRun, Transport, TransportError};
    let run = ScriptRun {
        interpreter: Interpreter::PowerShell,
        script: "Write-Output 'hello'",
        env: &[],
        timeout: Duration::from_secs(30),
    };
    // Never found through PATH: the program is the one under %SystemRoot%.
    let system = LocalPowerShell::system();
    assert!(
        system
            .describe()
            .ends_with(r"\System32\WindowsPowerShell\v1.0\powershell.exe"),
        "{}",
        system.describe()
    );
    let missing = LocalPowerShell::at(r"C:\nowhere\powershell.exe".into());
    let err = missing.open().unwrap().run(&run).unwrap_err();
    assert!(
        matches!(&err, TransportError::Io(message) if message.contains(r"C:\nowhere\powershell.exe")),
        "{err:?}"
    );
    // sh scripts are not run at all.
    let sh = ScriptRun {
        interpreter: Interpreter::Sh,
        ..run
    };
    assert!(matches!(
        system.open().unwrap().run(&sh),
        Err(TransportError::Unsupported("sh"))
    ));
    // The pipes and the exit code, with cmd.exe standing in for PowerShell: it ignores the
    // PowerShell arguments, reads the base64 payload from stdin as a command line it does not
    // know, and ends at the end of its input.
    let root = std::env::var("SystemRoot").unwrap();
    let cmd = LocalPowerShell::at(std::path::Path::new(&root).join(r"System32\cmd.exe"));
    let out = cmd.open().unwrap().run(&run).unwrap();
    let expected = transport::powershell::stdin_payload(run.script);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(expected.trim_end()), "{out:?}");
    assert!(out.exit_code.is_some() && !out.truncated, "{out:?}");
}
