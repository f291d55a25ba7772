//! Issue 14, finding 1: rogue workstations must not receive the workstation-admin login.
//!
//! The attack, against the lab's real Samba AD DC: a computer object that a plain domain user
//! made (AD marks it with `mS-DS-CreatorSID`), a computer outside the scope OU and one outside the
//! scope group, each with a DNS record pointing at a listener this test runs and that records
//! every connection. The workstation
//! scan must connect to neither (not even the online probe), name both in the coverage summary with
//! the reason, and still scan a legitimate workstation, its certificate verified for its DNS name.
//! Also: a `[workstations]` section with `https = false` or without a scope is refused (exit 78).
//! Needs root (namespaces).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{LAB_TOOLS, Lab, osiris, scan_json, text};

/// The root namespace's address on the lab bridge: the "attacker's host".
const ROGUE_HOST: &str = "10.77.0.1";

#[test]
fn rogue_and_out_of_scope_computers_receive_nothing() {
    if !test_support::require_root(
        "rogue_and_out_of_scope_computers_receive_nothing",
        &[LAB_TOOLS, &["samba", "ldbadd", "ldbsearch"]].concat(),
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "1"),
            ("LAB_WIN_PROFILES", "workstation-clean"),
            ("DC_SEED", "small"),
        ],
    );
    let env = &lab.env;
    let base_dn = &env["LAB_DC_BASE_DN"];
    let sam = lab.dir.join("dc/samba/private/sam.ldb");
    let admin = std::fs::read_to_string(lab.dir.join("dc/samba/admin-password")).unwrap();

    // The attacker's host: records every connection and the first bytes sent on it.
    let listener = TcpListener::bind((ROGUE_HOST, 5986)).unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut first = [0u8; 512];
            let n = conn.read(&mut first).unwrap_or(0);
            recorder.lock().unwrap().push(format!(
                "{:?}: {}",
                conn.peer_addr(),
                String::from_utf8_lossy(&first[..n])
            ));
        }
    });

    // ROGUE1: made by the plain domain user svc-osiris, in the scanned OU. On Windows AD the
    // machine account quota lets any user do this, and the DC then sets mS-DS-CreatorSID to the
    // user's SID. Samba 4.17 refuses such a join (LDAP add and SAMR CreateUser2 as the user were
    // tried: insufficient access), so the object is written with exactly what AD would store.
    let user_sid = ldb_value(&sam, "(sAMAccountName=svc-osiris)", "objectSid");
    assert!(user_sid.starts_with("S-1-5-21-"), "{user_sid}");
    // OUTSIDE1: an ordinary computer in the default Computers container, outside the scope.
    let ldif = format!(
        "dn: CN=ROGUE1,OU=Workstations,{base_dn}\nobjectClass: computer\nsAMAccountName: ROGUE1$\nuserAccountControl: 4096\ndNSHostName: rogue1.lab.example\noperatingSystem: Windows 10 Pro\nmS-DS-CreatorSID: {user_sid}\n\ndn: CN=OUTSIDE1,CN=Computers,{base_dn}\nobjectClass: computer\nsAMAccountName: OUTSIDE1$\nuserAccountControl: 4096\ndNSHostName: outside1.lab.example\noperatingSystem: Windows 11 Pro\n"
    );
    let ldif_path = work.path().join("rogue.ldif");
    std::fs::write(&ldif_path, ldif).unwrap();
    let out = Command::new("ldbadd")
        .arg("-H")
        .arg(&sam)
        .arg(&ldif_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ldbadd: {}", text(&out.stderr));
    assert_eq!(
        ldb_value(&sam, "(sAMAccountName=ROGUE1$)", "mS-DS-CreatorSID"),
        user_sid
    );

    // The administrator's group of computers to scan holds the group "Front desk PCs", which
    // holds WS001: a member through a group inside the scope group (WS002 stays in the OU,
    // outside both).
    let dc_url = format!("ldap://{}", env["LAB_DC_HOST"]);
    let admin_login = format!("-UAdministrator%{}", admin.trim());
    for args in [
        &["group", "add", "Scanned PCs"][..],
        &["group", "add", "Front desk PCs"][..],
        &["group", "addmembers", "Scanned PCs", "Front desk PCs"][..],
        &["group", "addmembers", "Front desk PCs", "WS001$"][..],
    ] {
        let out = Command::new("samba-tool")
            .args(args)
            .args(["-H", &dc_url, &admin_login])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "samba-tool {args:?}: {}",
            text(&out.stderr)
        );
    }

    // ADIDNS: the rogue and unscoped names point at the attacker's host; ws001 at the lab's WinRM
    // peer.
    let peer = env["LAB_WIN_HOSTS"].split_whitespace().next().unwrap();
    for (name, ip) in [
        ("rogue1", ROGUE_HOST),
        ("outside1", ROGUE_HOST),
        ("ws002", ROGUE_HOST),
        ("ws001", peer),
    ] {
        lab.dns_add(name, ip);
    }

    let site = std::fs::read_to_string(lab.dir.join("site.toml")).unwrap();
    // The domain account the workstations are reached with, by Kerberos (the default).
    let workstations = format!(
        "\n[workstations]\nuser = \"administrator@{}\"\npassword_file = {:?}\nca_file = {:?}\n",
        env["LAB_DC_DOMAIN"],
        lab.dir.join("dc/samba/admin-password"),
        env["LAB_CA"]
    );
    let write = |name: &str, extra: &str| {
        let path = lab.dir.join(name);
        std::fs::write(&path, format!("{site}{workstations}{extra}")).unwrap();
        path
    };

    // The settings that would hand the login out are refused, with the exact fix.
    for (name, extra, want) in [
        (
            "no-scope.toml",
            "",
            "[workstations] needs `scope` (the OU whose computers receive the workstation login",
        ),
        (
            "http.toml",
            &format!("scope = \"OU=Workstations,{base_dn}\"\nhttps = false\n")[..],
            "workstations: https = false is refused",
        ),
    ] {
        let path = write(name, extra);
        let out = osiris(work.path(), &["config", "validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    }

    let config = write(
        "workstations.toml",
        &format!(
            "scope = \"OU=Workstations,{base_dn}\"\ngroup = \"CN=Scanned PCs,CN=Users,{base_dn}\"\n"
        ),
    );
    let out = osiris(
        work.path(),
        &["discover", "--json", "--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let scan = scan_json(work.path(), &config);

    // The attacker's host saw no connection at all: no probe, no TLS, no NTLM.
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());

    let summary = &scan["workstations"];
    let reason = |account: &str| -> String {
        summary["not_checked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["account"] == account)
            .map(|n| n["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{account} missing from {summary:#}"))
    };
    assert_eq!(
        reason("ROGUE1$"),
        format!(
            "created by a non-administrator (ms-DS-CreatorSID {user_sid}); an administrator must re-create or approve it (workstations.approved = [\"ROGUE1$\"])"
        )
    );
    assert_eq!(
        reason("OUTSIDE1$"),
        format!("outside the scanned OU (workstations.scope = OU=Workstations,{base_dn})")
    );
    assert_eq!(
        reason("WS002$"),
        format!(
            "not a member of the scanned group (workstations.group = CN=Scanned PCs,CN=Users,{base_dn})"
        )
    );
    // The legitimate workstation, in the scope group through "Front desk PCs", is scanned over
    // HTTPS, its certificate verified for its name.
    assert_eq!(summary["checked"], 1, "{summary:#}");
    let results = scan["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["target"] == "ws001.lab.example" && r["status"] == "pass"),
        "{results:#?}"
    );
}

/// One attribute's value of the single object `filter` matches, read from the DC's database.
fn ldb_value(sam: &std::path::Path, filter: &str, attribute: &str) -> String {
    let out = Command::new("ldbsearch")
        .arg("-H")
        .arg(sam)
        .args([filter, attribute])
        .output()
        .unwrap();
    assert!(out.status.success(), "ldbsearch: {}", text(&out.stderr));
    let prefix = format!("{attribute}: ");
    text(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {attribute} for {filter}: {}", text(&out.stdout)))
}
