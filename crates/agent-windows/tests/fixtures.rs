//! The native checks' decisions on snapshots in the form a real Windows host produces
//! (`tests/fixtures/*.json`, written from Microsoft's documentation of each WMI class and registry
//! value; `examples/record.rs` records the same form on a real host), judged with the embedded
//! catalogue's own runbooks and default parameters, exactly as the agent does on Windows.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::path::Path;

use expect_test::{Expect, expect};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

struct Fixture {
    check: String,
    recorded_at: OffsetDateTime,
    snapshot: agent_windows::Snapshot,
}

fn load(name: &str) -> Fixture {
    let path = Path::new(FIXTURES).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    Fixture {
        check: document["check"].as_str().unwrap().to_owned(),
        recorded_at: OffsetDateTime::parse(document["recorded_at"].as_str().unwrap(), &Rfc3339)
            .unwrap(),
        snapshot: agent_windows::snapshot_from_json(&document["snapshot"]).unwrap(),
    }
}

fn judge(fixture: &Fixture) -> agent_windows::NativeResult {
    let catalog = catalog::embedded().unwrap();
    let runbook = catalog.get(&fixture.check).unwrap();
    agent_windows::judge(
        runbook,
        &BTreeMap::new(),
        &fixture.snapshot,
        fixture.recorded_at,
    )
}

#[track_caller]
fn check(name: &str, expect: Expect) {
    let result = judge(&load(name));
    let facts: Vec<String> = result
        .facts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut out = format!("{} {}", result.check_id, result.status.as_str());
    if !result.reason.is_empty() {
        out.push_str(&format!("\nreason: {}", result.reason));
    }
    out.push_str(&format!("\nfacts: {}", facts.join("; ")));
    expect.assert_eq(&out);
}

#[test]
fn bitlocker_access_denied() {
    check(
        "bitlocker-access-denied",
        expect![[r#"
        WIN-WSBL-001 error
        reason: cannot read WMI root\cimv2\Security\MicrosoftVolumeEncryption\Win32_EncryptableVolume: connecting to WMI namespace root\cimv2\Security\MicrosoftVolumeEncryption (WBEM_E_ACCESS_DENIED, 0x80041003)
        facts: unreadable.code=0x80041003; unreadable.source=WMI root\cimv2\Security\MicrosoftVolumeEncryption\Win32_EncryptableVolume"#]],
    );
}
#[test]
fn bitlocker_encrypting() {
    check(
        "bitlocker-encrypting",
        expect![[r#"
        WIN-WSBL-001 fail
        reason: `conversion_status` is 2
        facts: conversion_status=2; drive=C:; encryption_method=7; encryption_percentage=41; present=true; protection_status=1"#]],
    );
}
#[test]
fn bitlocker_no_namespace() {
    check(
        "bitlocker-no-namespace",
        expect![[r#"
        WIN-WSBL-001 error
        reason: cannot read WMI root\cimv2\Security\MicrosoftVolumeEncryption\Win32_EncryptableVolume: connecting to WMI namespace root\cimv2\Security\MicrosoftVolumeEncryption (WBEM_E_INVALID_NAMESPACE, 0x8004100E)
        facts: unreadable.code=0x8004100E; unreadable.source=WMI root\cimv2\Security\MicrosoftVolumeEncryption\Win32_EncryptableVolume"#]],
    );
}
#[test]
fn bitlocker_off() {
    check(
        "bitlocker-off",
        expect![[r#"
        WIN-WSBL-001 fail
        reason: `protection_status` is 0; `conversion_status` is 0
        facts: conversion_status=0; drive=C:; encryption_method=0; encryption_percentage=0; present=true; protection_status=0"#]],
    );
}
#[test]
fn bitlocker_on() {
    check(
        "bitlocker-on",
        expect![[r#"
        WIN-WSBL-001 pass
        facts: conversion_status=1; drive=C:; encryption_method=6; encryption_percentage=100; present=true; protection_status=1"#]],
    );
}
#[test]
fn bitlocker_suspended() {
    check(
        "bitlocker-suspended",
        expect![[r#"
        WIN-WSBL-001 fail
        reason: `protection_status` is 0
        facts: conversion_status=1; drive=C:; encryption_method=7; encryption_percentage=100; present=true; protection_status=0"#]],
    );
}
#[test]
fn defender_absent() {
    check(
        "defender-absent",
        expect![[r#"
        WIN-WSDEF-001 error
        reason: cannot read WMI root\Microsoft\Windows\Defender\MSFT_MpComputerStatus: connecting to WMI namespace root\Microsoft\Windows\Defender (WBEM_E_INVALID_NAMESPACE, 0x8004100E)
        facts: unreadable.code=0x8004100E; unreadable.source=WMI root\Microsoft\Windows\Defender\MSFT_MpComputerStatus"#]],
    );
}
#[test]
fn defender_healthy() {
    check(
        "defender-healthy",
        expect![[r#"
        WIN-WSDEF-001 pass
        facts: am_engine_version=1.1.24040.1; am_running_mode=Normal; am_service_enabled=true; antivirus_enabled=true; antivirus_signature_age_days=0; antivirus_signature_last_updated=2024-06-11T22:15:34Z; antivirus_signature_version=1.411.405.0; disable_realtime_monitoring=false; maps_reporting=2; real_time_protection_enabled=true; submit_samples_consent=1"#]],
    );
}
#[test]
fn defender_passive() {
    check(
        "defender-passive",
        expect![[r#"
        WIN-WSDEF-001 fail
        reason: `real_time_protection_enabled` is false
        facts: am_engine_version=1.1.24040.1; am_running_mode=Passive Mode; am_service_enabled=true; antivirus_enabled=true; antivirus_signature_age_days=1; antivirus_signature_last_updated=2024-06-10T22:45:01Z; antivirus_signature_version=1.411.405.0; disable_realtime_monitoring=false; maps_reporting=2; real_time_protection_enabled=false; submit_samples_consent=1"#]],
    );
}
#[test]
fn defender_realtime_off() {
    check(
        "defender-realtime-off",
        expect![[r#"
        WIN-WSDEF-001 fail
        reason: `real_time_protection_enabled` is false
        facts: am_engine_version=1.1.24040.1; am_running_mode=Normal; am_service_enabled=true; antivirus_enabled=true; antivirus_signature_age_days=0; antivirus_signature_last_updated=2024-06-11T22:15:34Z; antivirus_signature_version=1.411.405.0; disable_realtime_monitoring=true; maps_reporting=2; real_time_protection_enabled=false; submit_samples_consent=1"#]],
    );
}
#[test]
fn defender_stale() {
    check(
        "defender-stale",
        expect![[r#"
        WIN-WSDEF-001 fail
        reason: `antivirus_signature_age_days` is 12
        facts: am_engine_version=1.1.24040.1; am_running_mode=Normal; am_service_enabled=true; antivirus_enabled=true; antivirus_signature_age_days=12; antivirus_signature_last_updated=2024-05-31T06:12:04Z; antivirus_signature_version=1.409.877.0; preference_unreadable=querying MSFT_MpPreference; real_time_protection_enabled=true"#]],
    );
}
#[test]
fn firewall_inbound_allow() {
    check(
        "firewall-inbound-allow",
        expect![[r#"
        WIN-WSFW-001 fail
        reason: `inbound_allowing_profiles` is ["Private"]
        facts: disabled_profiles=; inbound_allowing_profiles=Private; profiles.0.default_inbound_action=0; profiles.0.enabled=true; profiles.0.name=Domain; profiles.1.default_inbound_action=2; profiles.1.enabled=true; profiles.1.name=Private; profiles.2.default_inbound_action=0; profiles.2.enabled=true; profiles.2.name=Public"#]],
    );
}
#[test]
fn firewall_no_class() {
    check(
        "firewall-no-class",
        expect![[r#"
        WIN-WSFW-001 error
        reason: cannot read WMI root\StandardCimv2\MSFT_NetFirewallProfile: querying MSFT_NetFirewallProfile (WBEM_E_INVALID_CLASS, 0x80041010)
        facts: unreadable.code=0x80041010; unreadable.source=WMI root\StandardCimv2\MSFT_NetFirewallProfile"#]],
    );
}
#[test]
fn firewall_on() {
    check(
        "firewall-on",
        expect![[r#"
        WIN-WSFW-001 pass
        facts: disabled_profiles=; inbound_allowing_profiles=; profiles.0.default_inbound_action=0; profiles.0.enabled=true; profiles.0.name=Domain; profiles.1.default_inbound_action=0; profiles.1.enabled=true; profiles.1.name=Private; profiles.2.default_inbound_action=4; profiles.2.enabled=true; profiles.2.name=Public"#]],
    );
}
#[test]
fn firewall_public_off() {
    check(
        "firewall-public-off",
        expect![[r#"
        WIN-WSFW-001 fail
        reason: `disabled_profiles` is ["Public"]
        facts: disabled_profiles=Public; inbound_allowing_profiles=; profiles.0.default_inbound_action=0; profiles.0.enabled=true; profiles.0.name=Domain; profiles.1.default_inbound_action=0; profiles.1.enabled=true; profiles.1.name=Private; profiles.2.default_inbound_action=0; profiles.2.enabled=false; profiles.2.name=Public"#]],
    );
}
#[test]
fn patches_future() {
    check(
        "patches-future",
        expect![[r#"
        WIN-WSPATCH-001 error
        reason: cannot read WMI root\cimv2\Win32_QuickFixEngineering: the newest install date 2024-07-09 is in the future: is the clock right?
        facts: unreadable.source=WMI root\cimv2\Win32_QuickFixEngineering"#]],
    );
}
#[test]
fn patches_recent() {
    check(
        "patches-recent",
        expect![[r#"
        WIN-WSPATCH-001 pass
        facts: latest_age_days=17; latest_hotfix_id=KB5037959; latest_installed_on=2024-05-15; n_listed=6; n_updates=4"#]],
    );
}
#[test]
fn patches_stale() {
    check(
        "patches-stale",
        expect![[r#"
        WIN-WSPATCH-001 fail
        reason: `latest_age_days` is 155
        facts: latest_age_days=155; latest_hotfix_id=KB5034441; latest_installed_on=2024-01-09; n_listed=2; n_updates=2"#]],
    );
}
#[test]
fn patches_undated() {
    check(
        "patches-undated",
        expect![[r#"
        WIN-WSPATCH-001 fail
        reason: `latest_age_days` is 99999
        facts: latest_age_days=99999; n_listed=2; n_updates=0"#]],
    );
}
#[test]
fn patches_wine() {
    check(
        "patches-wine",
        expect![[r#"
        WIN-WSPATCH-001 error
        reason: cannot read WMI root\cimv2\Win32_QuickFixEngineering: 1 listed update(s) but no install date this agent can read (e.g. InstalledOn "22/2/2022"; expected M/d/yyyy)
        facts: unreadable.source=WMI root\cimv2\Win32_QuickFixEngineering"#]],
    );
}
#[test]
fn screen_lock_1800() {
    check(
        "screen-lock-1800",
        expect![[r#"
        WIN-WSLOCK-001 fail
        reason: `inactivity_timeout_secs` is 1800
        facts: configured=true; inactivity_timeout_secs=1800"#]],
    );
}
#[test]
fn screen_lock_900() {
    check(
        "screen-lock-900",
        expect![[r#"
        WIN-WSLOCK-001 pass
        facts: configured=true; inactivity_timeout_secs=900"#]],
    );
}
#[test]
fn screen_lock_absent() {
    check(
        "screen-lock-absent",
        expect![[r#"
        WIN-WSLOCK-001 fail
        reason: `configured` is false
        facts: configured=false; inactivity_timeout_secs=0"#]],
    );
}
#[test]
fn screen_lock_binary() {
    check(
        "screen-lock-binary",
        expect![[r#"
        WIN-WSLOCK-001 error
        reason: cannot read registry HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\InactivityTimeoutSecs: InactivityTimeoutSecs is REG_BINARY, expected a REG_DWORD
        facts: unreadable.source=registry HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\InactivityTimeoutSecs"#]],
    );
}

#[test]
fn every_fixture_is_judged_above_and_every_check_has_a_passing_one() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures.rs")).unwrap();
    let mut passing = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let name = name.strip_suffix(".json").unwrap();
        assert!(
            source.contains(&format!("\"{name}\",")),
            "{name} is not tested"
        );
        let fixture = load(name);
        let result = judge(&fixture);
        if result.status == agent_windows::Status::Pass {
            passing.insert(fixture.check);
        }
    }
    let all: std::collections::BTreeSet<String> = agent_windows::CHECK_IDS
        .iter()
        .map(|id| (*id).to_owned())
        .collect();
    assert_eq!(passing, all);
}

#[test]
fn the_native_checks_are_the_catalogues_workstation_checks() {
    let catalog = catalog::embedded().unwrap();
    let workstation: Vec<&str> = catalog
        .for_platform(model::Platform::WindowsWorkstation)
        .map(|runbook| runbook.id.as_str())
        .collect();
    assert_eq!(workstation, agent_windows::CHECK_IDS);
    for id in agent_windows::CHECK_IDS {
        assert!(agent_windows::source::sources(id).is_some(), "{id}");
    }
    assert!(agent_windows::source::sources("WIN-FW-001").is_none());
}
