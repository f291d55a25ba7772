//! The Graph peer as Microsoft's own clients see it: `tests/python/msgraph_check.py` signs in
//! with azure-identity (MSAL) against the peer's authority and reads every source the checks
//! use through msgraph-sdk's typed models, with paging. What it reads must be the small
//! practice the Rust client judges (`tests/peer.rs`), and a wrong secret must fail the way
//! Entra ID fails it; MSAL's certificate-signed assertion must be accepted, an unknown
//! certificate refused.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;

use test_support::graph::{CLIENT_ID, FakeGraph, SECRET, TENANT};

/// Runs `tests/python/SCRIPT AUTHORITY GRAPH_BASE ARGS…` trusting the peer's CA; its stdout.
fn run(python: &std::path::Path, peer: &FakeGraph, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(format!(
            "{}/tests/python/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([&peer.authority(), &peer.graph_base()])
        .args(args)
        .env("SSL_CERT_FILE", peer.ca_file())
        .env("REQUESTS_CA_BUNDLE", peer.ca_file())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn microsoft_s_sdk_reads_the_peer_as_graph() {
    let Some(python) = test_support::python::reference_python_with("msgraph") else {
        return;
    };
    let peer = FakeGraph::start(&python, &[]);
    let stdout = run(
        &python,
        &peer,
        "msgraph_check.py",
        &[TENANT, CLIENT_ID, SECRET],
    );
    expect_test::expect![[r#"
        {
         "admins_registered": [
          "ann.smith@smithfamilypractice.onmicrosoft.com",
          "bob.jones@smithfamilypractice.onmicrosoft.com",
          "carla.diaz@smithfamilypractice.onmicrosoft.com"
         ],
         "alerts": [
          "high inProgress Ransomware behaviour blocked",
          "high new Suspicious inbox forwarding rule",
          "high resolved Malware detected on SFP-WIN-04",
          "medium inProgress Unusual sign-in location"
         ],
         "allow_invites_from": "adminsAndGuestInviters",
         "ca_policies": [
          {
           "client_app_types": [
            "all"
           ],
           "controls": [
            "mfa"
           ],
           "include_users": [
            "All"
           ],
           "name": "Require MFA for all users",
           "state": "enabled",
           "strength": null
          },
          {
           "client_app_types": [
            "exchangeActiveSync",
            "other"
           ],
           "controls": [
            "block"
           ],
           "include_users": [
            "All"
           ],
           "name": "Block legacy authentication",
           "state": "enabled",
           "strength": null
          },
          {
           "client_app_types": [
            "all"
           ],
           "controls": [],
           "include_users": [],
           "name": "Phishing-resistant MFA for admins",
           "state": "enabledForReportingButNotEnforced",
           "strength": "00000000-0000-0000-0000-000000000004"
          }
         ],
         "devices": 40,
         "disabled": [
          "vic.hale@smithfamilypractice.onmicrosoft.com"
         ],
         "global_admins": [
          "ann.smith@smithfamilypractice.onmicrosoft.com",
          "bob.jones@smithfamilypractice.onmicrosoft.com",
          "carla.diaz@smithfamilypractice.onmicrosoft.com"
         ],
         "guest_user_role_id": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
         "guests": [
          "billing.co_ext#EXT#@smithfamilypractice.onmicrosoft.com",
          "it.vendor_ext#EXT#@smithfamilypractice.onmicrosoft.com",
          "lab.partner_ext#EXT#@smithfamilypractice.onmicrosoft.com"
         ],
         "noncompliant": [
          "SFP-MAC-07",
          "SFP-MAC-23"
         ],
         "secure_score": [
          54.4,
          80.0
         ],
         "secure_score_days": 90,
         "secure_score_drop_30_days": 8.0,
         "security_defaults": false,
         "signed_in": 25,
         "unencrypted": [
          "SFP-WIN-12"
         ],
         "user_pages": 3,
         "users": 25,
         "users_can_register_apps": true,
         "without_mfa": [
          "gina.rossi@smithfamilypractice.onmicrosoft.com",
          "ivy.chen@smithfamilypractice.onmicrosoft.com"
         ],
         "wrong_secret": "AADSTS7000215"
        }
    "#]]
    .assert_eq(&stdout);
}

#[test]
fn msal_s_certificate_assertion_is_accepted_and_an_unknown_certificate_refused() {
    let Some(python) = test_support::python::reference_python_with("msgraph") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (registered, crt) = test_support::graph::app_certificate(dir.path(), "registered");
    let (other, _) = test_support::graph::app_certificate(dir.path(), "other");
    let peer = FakeGraph::start(&python, &["--client-cert", crt.to_str().unwrap()]);
    let stdout = run(
        &python,
        &peer,
        "msal_certificate.py",
        &[
            TENANT,
            CLIENT_ID,
            registered.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    expect_test::expect![[r#"
        {"other_certificate": "AADSTS700027", "users": 25}
    "#]]
    .assert_eq(&stdout);
}
