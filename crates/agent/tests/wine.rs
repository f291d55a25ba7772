//! The Windows build (`x86_64-pc-windows-gnu`, cross-compiled with mingw-w64) run under Wine
//! (Debian's wine64, a throwaway prefix, headless). Wine's WMI has no BitLocker, Defender or
//! firewall classes, so those checks must say `error` and why, never `pass`; its registry is
//! real, so the screen-lock check reads the policy value natively and judges it.
//! `scripts/test` builds the exe and names it in `OSIRIS_AGENT_WINDOWS_EXE`.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use test_support::wine::{Wine, agent_exe, require_wine};

const TIMEOUT: Duration = Duration::from_secs(120);
const POLICIES: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System";

/// `check --once --json` under `wine`: each check's status and reason, by check ID.
fn check_once(wine: &Wine, exe: &Path) -> BTreeMap<String, (String, String, serde_json::Value)> {
    let out = wine
        .run(exe, ["check", "--once", "--json"], &[], TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    document["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                    r["observed"].clone(),
                ),
            )
        })
        .collect()
}

fn set_policy(wine: &Wine, seconds: u32) {
    let out = wine
        .builtin("reg")
        .args([
            "add",
            POLICIES,
            "/v",
            "InactivityTimeoutSecs",
            "/t",
            "REG_DWORD",
        ])
        .args(["/d", &seconds.to_string(), "/f"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn under_wine_no_check_passes_and_each_unreadable_one_says_why() {
    let test = "under_wine_no_check_passes_and_each_unreadable_one_says_why";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    let results = check_once(&wine, &exe);
    assert_eq!(
        results.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "WIN-WSBL-001",
            "WIN-WSDEF-001",
            "WIN-WSFW-001",
            "WIN-WSLOCK-001",
            "WIN-WSPATCH-001"
        ],
        "{results:#?}"
    );
    assert!(
        results.values().all(|(status, _, _)| status != "pass"),
        "{results:#?}"
    );
    // No WMI provider for these under Wine: `error`, naming the namespace and the WMI error.
    for (id, namespace) in [
        (
            "WIN-WSBL-001",
            r"root\cimv2\Security\MicrosoftVolumeEncryption",
        ),
        ("WIN-WSDEF-001", r"root\Microsoft\Windows\Defender"),
        ("WIN-WSFW-001", r"root\StandardCimv2"),
    ] {
        let (status, reason, observed) = &results[id];
        assert_eq!(status, "error", "{id}: {reason}");
        assert!(observed.is_null(), "{id}: {observed}");
        assert!(
            reason.contains(&format!("connecting to WMI namespace {namespace}"))
                && reason.contains("WBEM_E_INVALID_NAMESPACE"),
            "{id}: {reason}"
        );
    }
    // Wine's WMI lists one placeholder update whose date is day-first: unreadable, so `error`.
    let (status, reason, _) = &results["WIN-WSPATCH-001"];
    assert_eq!(status, "error", "{reason}");
    assert!(
        reason.contains(r"WMI root\cimv2\Win32_QuickFixEngineering")
            && reason.contains("no install date this agent can read"),
        "{reason}"
    );
    // The registry is real under Wine and the policy is not set: the session never locks.
    let (status, reason, observed) = &results["WIN-WSLOCK-001"];
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("fail", "`configured` is false")
    );
    assert_eq!(
        observed,
        &serde_json::json!({ "configured": false, "inactivity_timeout_secs": 0 })
    );

    // The table names every check with its status.
    let table = wine.run(&exe, ["check", "--once"], &[], TIMEOUT).unwrap();
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with("error ") || l.starts_with("fail ")),
        "{text}"
    );
}

#[test]
fn under_wine_the_screen_lock_policy_is_read_from_the_registry() {
    let test = "under_wine_the_screen_lock_policy_is_read_from_the_registry";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    set_policy(&wine, 600);
    let (status, reason, observed) = check_once(&wine, &exe)["WIN-WSLOCK-001"].clone();
    assert_eq!(status, "pass", "{reason}");
    assert_eq!(
        observed,
        serde_json::json!({ "configured": true, "inactivity_timeout_secs": 600 })
    );
    // Longer than the catalogue's default limit (900 s): `fail`, naming the value.
    set_policy(&wine, 1800);
    let (status, reason, _) = check_once(&wine, &exe)["WIN-WSLOCK-001"].clone();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("fail", "`inactivity_timeout_secs` is 1800")
    );
}
