//! Issue 17 acceptance against the namespace lab: real `osiris-agent`s inside lab targets (their
//! own network, mount, PID and UTS namespaces) enroll against a real `osirisd` on the lab bridge;
//! drift on one becomes an incident and is healed through its agent and sealed; `osirisd` killed
//! and restarted mid-stream loses and duplicates nothing; an agent killed at random points twenty
//! times while the appliance is away delivers exactly what it queued; refusals (used token, wrong
//! CA pin) store nothing; the evidence kit accounts for every number of every agent.

#![allow(clippy::unwrap_used, reason = "tests")]

mod agents_lab;

use std::process::Command;
use std::time::Duration;

use agents_lab::{Site, agent_run, agent_status, enroll, in_target, run, sibling, text, wait};
use test_support::lab::{LAB_TOOLS, Lab};

fn stored(site: &Site, host: &str) -> u64 {
    site.agents()
        .agents
        .iter()
        .find(|a| a.hostname == host)
        .map_or(0, |a| a.stored_seq)
}

#[test]
fn lab_agents_enroll_heal_survive_restarts_and_deliver_exactly_what_they_queued() {
    let mut tools = LAB_TOOLS.to_vec();
    tools.push("nsenter");
    if !test_support::require_root(
        "lab_agents_enroll_heal_survive_restarts_and_deliver_exactly_what_they_queued",
        &tools,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &dir.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let site = Site {
        dir: dir.path().to_owned(),
        config: dir.path().join("appliance.toml"),
        socket: dir.path().join("run/api.sock"),
    };
    // The gateway listens on the lab bridge, where the targets reach it, on a port that stays the
    // same across restarts (the agents keep the address they enrolled with); no SSH targets, so
    // every result comes from the agents.
    let port = std::net::TcpListener::bind("10.77.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &site.config,
        format!(
            "site = \"lab\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"10.77.0.1:{port}\"\ncheck_secs = 60\nheartbeat_secs = 10\nchecks = [\"LIN-SSH-001\", \"LIN-PERM-001\", \"LIN-CRYPTO-001\"]\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            site.socket.display(),
        ),
    )
    .unwrap();
    let daemon = site.start();
    let token = site.token("2");

    // A wrong pin is refused before anything is sent or stored.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = enroll(&lab, 1, &token, &wrong);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&token.ca_pin),
        "names the CA it found: {}",
        text(&out.stderr)
    );
    assert!(site.agents().agents.is_empty());

    // Both targets enroll with the two uses; a third enrollment finds the token used up.
    for n in [1, 2] {
        let out = enroll(&lab, n, &token, &token.ca_pin);
        assert!(
            out.status.success(),
            "target{n}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let out = enroll(&lab, 1, &token, &token.ca_pin);
    assert!(
        !out.status.success(),
        "a used-up token, and an agent that is enrolled already"
    );
    assert_eq!(site.agents().agents.len(), 2);

    let logs = dir.path().join("agents.log");
    let mut agent1 = agent_run(&lab, 1, &logs);
    let agent2 = agent_run(&lab, 2, &logs);
    wait(
        Duration::from_secs(60),
        "both agents delivered results",
        || stored(&site, "target1") > 0 && stored(&site, "target2") > 0,
    );

    // Drift on target1: root may log in over SSH. Its agent finds it at its next run (started
    // again, every check runs within its jitter), L1 has the agent fix it, the fix is sealed.
    let out = run(in_target(
        &lab,
        1,
        &[
            "sh",
            "-c",
            "sed -i 's/^PermitRootLogin .*/PermitRootLogin yes/' /etc/ssh/sshd_config && grep PermitRootLogin /etc/ssh/sshd_config",
        ],
    ));
    assert!(
        text(&out.stdout).contains("PermitRootLogin yes"),
        "{}",
        text(&out.stderr)
    );
    drop(agent1);
    agent1 = agent_run(&lab, 1, &logs);
    wait(
        Duration::from_secs(90),
        "the drift on target1 was healed through its agent",
        || {
            api::Client::new(&site.socket)
                .call(&api::endpoint::Healing { limit: 100 }, &())
                .unwrap()
                .iter()
                .any(|h| h.target == "target1" && h.check == "LIN-SSH-001" && h.result == "fixed")
        },
    );
    let out = run(in_target(
        &lab,
        1,
        &["grep", "^PermitRootLogin", "/etc/ssh/sshd_config"],
    ));
    assert_eq!(
        text(&out.stdout).trim(),
        "PermitRootLogin no",
        "the agent fixed the target itself"
    );

    // osirisd killed mid-stream and restarted: the agents reconnect and go on.
    let before = (stored(&site, "target1"), stored(&site, "target2"));
    let mut daemon = daemon;
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    drop(daemon);
    let daemon = site.start();
    wait(Duration::from_secs(90), "both agents reconnected", || {
        let agents = site.agents().agents;
        agents.len() == 2 && agents.iter().all(|a| a.connected)
    });
    assert!(stored(&site, "target1") >= before.0 && stored(&site, "target2") >= before.1);

    // The appliance away: target2's agent queues while it is killed at random points 20 times
    // (each start runs its checks within their jitter, 6 s here, so some runs queue results and
    // some are killed before, during or after).
    drop(daemon);
    drop(agent2);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20 {
        let agent = agent_run(&lab, 2, &logs);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(1_500 + seed % 5_000));
        drop(agent); // SIGKILL
    }
    let queued = agent_status(&lab, 2);
    let newest = queued["queue"]["newest_seq"].as_u64().unwrap();
    let acked = queued["queue"]["acked_through"].as_u64().unwrap();
    assert!(
        newest > acked,
        "the agent queued while the appliance was away: {queued}"
    );
    let daemon = site.start();
    let agent2 = agent_run(&lab, 2, &logs);
    wait(
        Duration::from_secs(90),
        "target2 delivered what it queued",
        || stored(&site, "target2") >= newest,
    );
    drop(agent2);
    drop(agent1);
    drop(daemon);

    // The kit: every number of both agents accounted for, no gap (nothing was dropped), each
    // result signed by its device.
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
    let out = run({
        let mut command = Command::new(sibling("osiris"));
        command.args([
            "evidence",
            "verify",
            kit.to_str().unwrap(),
            "--trust-kit-key",
        ]);
        command
    });
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    let agent_lines: Vec<&str> = said
        .lines()
        .filter(|l| l.trim_start().starts_with("agent "))
        .collect();
    assert_eq!(agent_lines.len(), 2, "{said}");
    for line in agent_lines {
        assert!(!line.contains("lost"), "nothing dropped: {line}");
    }
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    assert!(
        bundles.contains("\"kind\":\"heal\"") && bundles.contains("agent_remediation"),
        "the fix is sealed"
    );
    // Exactly once: no agent number is sealed twice (verify would name a repeat too).
    let mut seen = std::collections::BTreeSet::new();
    for line in bundles.lines() {
        let bundle: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = bundle["kind"].as_str().unwrap();
        if kind == "agent_result" || kind == "agent_remediation" {
            let key = (
                bundle["body"]["agent_id"].as_str().unwrap().to_owned(),
                bundle["body"]["seq"].as_u64().unwrap(),
            );
            assert!(seen.insert(key.clone()), "sealed twice: {key:?}");
        }
    }
}
