//! The workstation cycle of a real `osirisd` against the namespace lab's real Samba AD DC: the
//! daemon discovers the directory, logs in to the workstations that answer WinRM by Kerberos (its
//! own krb5 configuration, tickets from the DC's KDC, the lab peer checking them with the keys
//! the DC exported), and counts a workstation that does not answer WinRM but whose endpoint agent
//! reports (a laptop away from the office) as checked by its agent; the sealed
//! `workstation_summary` says so. Needs root (namespaces).

#![allow(clippy::unwrap_used, reason = "tests")]

mod agents_lab;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agents_lab::{Site, agent_run, enroll, in_target, run, sibling, text, wait};
use test_support::lab::{LAB_TOOLS, Lab};

#[test]
fn workstations_are_checked_by_kerberos_or_by_their_agent_and_the_summary_is_sealed() {
    let mut tools = LAB_TOOLS.to_vec();
    tools.extend(["nsenter", "samba", "kinit"]);
    if !test_support::require_root(
        "workstations_are_checked_by_kerberos_or_by_their_agent_and_the_summary_is_sealed",
        &tools,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = workstation_lab(dir.path(), "workstation-clean workstation-drift");
    let env = &lab.env;

    // ws001 and ws002 are in DNS at the lab's WinRM peers; ws004 is a laptop: in the directory,
    // not in DNS, never answering WinRM, but its agent (the lab's Linux target under that host
    // name; Windows agents run only under Wine here) reports.
    let peers: Vec<&str> = env["LAB_WIN_HOSTS"].split_whitespace().collect();
    for (name, ip) in ["ws001", "ws002"].iter().zip(&peers) {
        lab.dns_add(name, ip);
    }
    let out = run(in_target(&lab, 1, &["hostname", "ws004"]));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let port = std::net::TcpListener::bind("10.77.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = workstation_site(
        dir.path(),
        &lab,
        10,
        &format!(
            "[agents]\nlisten = \"10.77.0.1:{port}\"\ncheck_secs = 60\nheartbeat_secs = 10\nchecks = [\"LIN-SSH-001\"]\n"
        ),
    );
    let daemon = site.start();

    let token = site.token("1");
    let out = enroll(&lab, 1, &token, &token.ca_pin);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let logs = dir.path().join("agents.log");
    let _agent = agent_run(&lab, 1, &logs);

    // A workstation cycle after the agent's first results: the two peers by Kerberos, the laptop
    // by its agent.
    let outcome = || {
        api::Client::new(&site.socket)
            .status()
            .ok()?
            .cycles
            .into_iter()
            .find(|c| c.kind == api::CycleKind::WorkstationScan)?
            .last_outcome
    };
    wait(
        Duration::from_secs(120),
        "a workstation cycle counted the laptop's agent",
        || outcome().is_some_and(|o| o.contains("1 of them by their agent")),
    );
    let said = outcome().unwrap();
    assert!(said.contains("3 checked"), "{said}");
    drop(daemon);

    let peer_log = std::fs::read_to_string(&env["LAB_WIN_LOG"]).unwrap();
    for ip in &peers {
        assert!(
            peer_log.lines().any(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                entry["method"] == "kerberos"
                    && entry["host"] == *ip
                    && entry["principal"] == "administrator@LAB.EXAMPLE"
                    && entry.get("error").is_none()
            }),
            "osirisd reached {ip} by Kerberos: {peer_log}"
        );
    }

    // The sealed summary: ws001 and ws002 over WinRM (one drifted), ws004 by its agent; ws004 is
    // no longer among the workstations not checked.
    let kit = dir.path().join("kit");
    let out = run({
        let mut command = Command::new(sibling("osiris"));
        command.args([
            "evidence",
            "export",
            "--out",
            kit.to_str().unwrap(),
            "--config",
            site.config.to_str().unwrap(),
        ]);
        command
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    let summary = bundles
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|b| b["kind"] == "workstation_summary")
        .map(|b| b["body"].clone())
        .find(|body| body["checked_by_agent"] == 1)
        .unwrap_or_else(|| panic!("no summary counts the agent"));
    assert_eq!(summary["checked"], 3, "{summary:#}");
    assert_eq!(summary["drifted"], 1, "{summary:#}");
    assert!(
        !summary["not_checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["account"] == "WS004$"),
        "{summary:#}"
    );
    assert!(
        summary["not_checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["account"] == "WS003$"),
        "a workstation neither in DNS nor with an agent stays not checked: {summary:#}"
    );
}

/// A Kerberos login a workstation refuses makes `osirisd` ask the KDC afresh at the next cycle
/// instead of offering the refused ticket again for the rest of its half-hour reuse: the lab
/// rotates the workstation's HTTP service key (new password, the peer's keytab re-exported), the
/// daemon's cached service ticket is refused once, and the next cycle logs in with a new one.
#[test]
fn a_ticket_a_workstation_refused_is_not_offered_again() {
    let mut tools = LAB_TOOLS.to_vec();
    tools.extend(["samba", "samba-tool", "kinit"]);
    if !test_support::require_root(
        "a_ticket_a_workstation_refused_is_not_offered_again",
        &tools,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // osirisd keeps its WinRM shell and connection between cycles; Windows (HTTP.sys) closes a
    // connection idle for two minutes, longer than the daemon's default cycles leave it, so
    // each cycle logs in anew. The peer does the same after 2 s, shorter than this test's
    // 5-second cycles.
    let lab = workstation_lab_with(
        dir.path(),
        "workstation-clean",
        &[("LAB_WIN_IDLE_CONNECTION_SECS", "2")],
    );
    let env = &lab.env;
    let peer = env["LAB_WIN_HOSTS"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    lab.dns_add("ws001", &peer);
    let site = workstation_site(dir.path(), &lab, 5, "");
    let kerberos_at_peer = |skip: usize| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&env["LAB_WIN_LOG"])
            .unwrap()
            .lines()
            .skip(skip)
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["method"] == "kerberos" && e["host"] == peer.as_str())
            .collect()
    };
    let _daemon = site.start();
    wait(Duration::from_secs(90), "a first Kerberos login", || {
        kerberos_at_peer(0).iter().any(|e| e.get("error").is_none())
    });

    // The workstation's service key changes (its password is reset and the peer's keytab holds
    // only the new key), as when a computer account's password is changed.
    let admin = std::fs::read_to_string(lab.dir.join("dc/samba/admin-password")).unwrap();
    let out = run({
        let mut command = Command::new("samba-tool");
        command
            .args(["user", "setpassword", "winrm-http"])
            .arg(format!("--newpassword=Http!Rotated-{}", std::process::id()))
            .args(["-H", &format!("ldap://{}", env["LAB_DC_HOST"])])
            .arg(format!("-UAdministrator%{}", admin.trim()));
        command
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = lab.dir.join("dc/http.keytab.new");
    let out = run({
        let mut command = Command::new("samba-tool");
        command
            .args(["domain", "exportkeytab"])
            .arg(&fresh)
            .arg("--principal=HTTP/ws001.lab.example")
            .arg("-s")
            .arg(lab.dir.join("dc/samba/etc/smb.conf"));
        command
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log_lines = std::fs::read_to_string(&env["LAB_WIN_LOG"])
        .unwrap()
        .lines()
        .count();
    std::fs::rename(&fresh, lab.dir.join("dc/http.keytab")).unwrap();

    // The cached ticket is refused once; a later cycle gets a new one and logs in.
    wait(
        Duration::from_secs(90),
        "a refused login and then a login with a new ticket",
        || {
            let after = kerberos_at_peer(log_lines);
            after
                .iter()
                .position(|e| e.get("error").is_some())
                .is_some_and(|refused| after[refused..].iter().any(|e| e.get("error").is_none()))
        },
    );
}

/// The lab with the small DC seed, one Linux target and one WinRM peer host per profile.
fn workstation_lab(dir: &Path, profiles: &str) -> Lab {
    workstation_lab_with(dir, profiles, &[])
}

/// [`workstation_lab`] with more lab settings.
fn workstation_lab_with(dir: &Path, profiles: &str, more: &[(&str, &str)]) -> Lab {
    let hosts = profiles.split_whitespace().count().to_string();
    let mut settings = vec![
        ("LAB_TARGETS", "1"),
        ("LAB_WIN_TARGETS", hosts.as_str()),
        ("LAB_WIN_PROFILES", profiles),
        ("DC_SEED", "small"),
    ];
    settings.extend_from_slice(more);
    Lab::up(&dir.join("lab"), &settings)
}

/// An appliance in `dir` that discovers the lab's directory and logs in to its workstations by
/// Kerberos every `secs` seconds (healing paused), with `extra` sections appended.
fn workstation_site(dir: &Path, lab: &Lab, secs: u64, extra: &str) -> Site {
    let env = &lab.env;
    let site = Site {
        dir: dir.to_owned(),
        config: dir.join("appliance.toml"),
        socket: dir.join("run/api.sock"),
    };
    std::fs::write(
        &site.config,
        format!(
            "site = \"lab\"\ndata_dir = \"{data}\"\ntarget = []\n\
             [directory]\ndomain = \"{domain}\"\ndc = \"{dc}\"\nbind_user = \"{bind}\"\npassword_file = \"{bind_pw}\"\nca_file = \"{ca}\"\n\
             [workstations]\nuser = \"administrator@{domain}\"\npassword_file = \"{admin_pw}\"\nca_file = \"{ca}\"\nscope = \"OU=Workstations,{base}\"\n\
             [healing]\npaused = true\n\
             [evidence]\ncalendars = []\n\
             [daemon]\nsocket = \"{socket}\"\nworkstation_scan_secs = {secs}\ndiscovery_secs = 3600\njitter_percent = 0\n{extra}",
            data = dir.join("data").display(),
            domain = env["LAB_DC_DOMAIN"],
            dc = env["LAB_DC_HOST"],
            bind = env["LAB_DC_USER"],
            bind_pw = env["LAB_DC_PASSWORD_FILE"],
            ca = env["LAB_CA"],
            admin_pw = lab.dir.join("dc/samba/admin-password").display(),
            base = env["LAB_DC_BASE_DN"],
            socket = site.socket.display(),
        ),
    )
    .unwrap();
    site
}
