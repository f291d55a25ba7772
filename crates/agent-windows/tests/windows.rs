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
    let secret = b"ed25519 device key: 32 bytes....";
    let blob = dpapi::protect(secret).unwrap();
    assert!(blob.len() > secret.len());
    assert!(
        !blob.windows(secret.len()).any(|w| w == secret),
        "plaintext in the blob"
    );
    assert_eq!(dpapi::unprotect(&blob).unwrap().as_slice(), secret);
    // Two protections of the same secret differ (a fresh salt), and both open.
    let again = dpapi::protect(secret).unwrap();
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
