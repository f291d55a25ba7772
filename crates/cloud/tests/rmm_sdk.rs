//! The RMM peer as independent clients see it: `tests/python/rmm_automate_check.py` reads the
//! Automate peer with `pyconnectwise` (typed models from Automate's API description), and
//! `tests/python/rmm_datto_check.py` reads the Datto peer with a standard OAuth 2.0 client
//! (`requests-oauthlib`'s password grant) following `nextPageUrl`. What they read must be what the
//! appliance's clients read from the same peer, and a wrong secret must fail there too.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;
use std::time::{Duration, Instant};

use cloud::rmm::{RmmKind, RmmSettings};
use test_support::rmm::{CLIENT, CLIENT_ID, FakeRmm, SECRET, SITE, USER, Vendor};

fn ours(peer: &FakeRmm, kind: RmmKind) -> Vec<cloud::rmm::RmmDevice> {
    let settings = RmmSettings {
        kind,
        api_url: peer.api_url(),
        site: peer.site().to_owned(),
        user: USER.to_owned(),
        secret: zeroize::Zeroizing::new(SECRET.to_owned()),
        client_id: (kind == RmmKind::ConnectWiseAutomate).then(|| CLIENT_ID.to_owned()),
        ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
        request_timeout: Duration::from_secs(20),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cloud::rmm::devices(
            &settings,
            Instant::now() + Duration::from_secs(60),
        ))
        .unwrap()
}

fn run(python: &std::path::Path, script: &str, peer: &FakeRmm, args: &[&str]) -> serde_json::Value {
    let output = Command::new(python)
        .arg(format!(
            "{}/tests/python/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(args)
        .env("REQUESTS_CA_BUNDLE", peer.ca_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn pyconnectwise_reads_what_the_appliance_reads_from_automate() {
    let Some(python) = test_support::python::reference_python_with("pyconnectwise") else {
        return;
    };
    let peer = FakeRmm::start(&python, Vendor::Automate, &[]);
    let host = peer.api_url().trim_start_matches("https://").to_owned();
    let sdk = run(
        &python,
        "rmm_automate_check.py",
        &peer,
        &[&host, CLIENT_ID, USER, SECRET, CLIENT],
    );
    assert_eq!(sdk["pages"], 3, "10 computers at 4 a page");
    assert_eq!(
        sdk["wrong_password"], "AuthenticationFailedException",
        "{sdk}"
    );
    let theirs: Vec<String> = sdk["computers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["client"], CLIENT);
            format!(
                "{} {} {} {} {} {}",
                c["id"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["domain"].as_str().unwrap_or("-"),
                c["type"].as_str().unwrap(),
                c["online"],
                c["seen"]
            )
        })
        .collect();
    let mine: Vec<String> = ours(&peer, RmmKind::ConnectWiseAutomate)
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {} {}",
                d.id,
                d.hostname,
                d.domain.as_deref().unwrap_or("-"),
                d.device_type.as_deref().unwrap(),
                d.online.unwrap(),
                d.last_seen.unwrap().unix_timestamp()
            )
        })
        .collect();
    assert_eq!(mine.len(), 10);
    assert_eq!(mine, theirs);
}

#[test]
fn a_standard_oauth_client_reads_what_the_appliance_reads_from_datto() {
    let Some(python) = test_support::python::reference_python_with("requests_oauthlib") else {
        return;
    };
    let peer = FakeRmm::start(&python, Vendor::Datto, &[]);
    let sdk = run(
        &python,
        "rmm_datto_check.py",
        &peer,
        &[&peer.api_url(), SITE, USER, SECRET],
    );
    assert_eq!(sdk["pages"], 3, "11 devices at 4 a page");
    assert_eq!(sdk["wrong_secret"], "InvalidGrantError", "{sdk}");
    let theirs: Vec<String> = sdk["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {} {}",
                d["uid"].as_str().unwrap(),
                d["hostname"].as_str().unwrap(),
                d["domain"].as_str().unwrap_or("-"),
                d["deviceClass"] == "device",
                d["deleted"],
                d["seen"]
            )
        })
        .collect();
    let mine: Vec<String> = ours(&peer, RmmKind::Datto)
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {} {}",
                d.id,
                d.hostname,
                d.domain.as_deref().unwrap_or("-"),
                d.computer,
                d.retired,
                d.last_seen.unwrap().unix_timestamp()
            )
        })
        .collect();
    assert_eq!(mine.len(), 11);
    assert_eq!(mine, theirs);
}
