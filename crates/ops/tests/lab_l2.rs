//! L2 end to end against the namespace lab and the local LLM API peer: a drift no L1 rule covers
//! (root login allowed on a lab sshd, with the LIN-SSH-001 rule taken out of the rule set) is
//! planned by L2 through the peer, run through remediate → verify, fixed and sealed as an `l2`
//! bundle and a `heal` bundle; a hostile answer (a shell command as a parameter) changes nothing
//! and escalates with the reason; the prompts the peer received carry no host name or address,
//! and the kit verifies offline.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use test_support::lab::{LAB_TOOLS, Lab, text};
use test_support::llm::FakeLlm;

use common::{load, runtime, secret_file, verified_kit};

#[test]
fn l2_plans_fixes_and_seals_a_drift_no_l1_rule_covers() {
    if !test_support::require_root(
        "l2_plans_fixes_and_seals_a_drift_no_l1_rule_covers",
        LAB_TOOLS,
    ) {
        return;
    }
    let Some(peer) = FakeLlm::start().unwrap() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::up(&tmp.path().join("lab"), &[("LAB_TARGETS", "1")]);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let data_dir = work.join("data");
    let key_file = secret_file(&work.join("l2.key"), FakeLlm::API_KEY, 0o600);
    let env = &lab.env;
    let address = env["LAB_LINUX_HOSTS"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let site = format!(
        "site = \"lab\"\n[healing]\nmax_per_hour = 100\n[[target]]\nname = \"target1\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"{address}\"\nuser = \"alice\"\nbecome = \"sudo\"\nkey_file = {:?}\n\
         [l2]\nmode = \"local\"\nprovider = \"anthropic\"\nendpoint = \"{}\"\nmodel = \"lab-model\"\napi_key_file = {:?}\nmax_per_hour = 100\nconfidence_floor = 0.7\n\
         [l2.prices.lab-model]\ninput_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n",
        env["LAB_SSH_KEY"],
        peer.anthropic_url(),
        key_file.display().to_string(),
    );
    let config = load(&work, &site).unwrap();
    let catalog = Arc::new(common::catalog());
    // The rule set without LIN-SSH-001's rule: that drift is now one no L1 rule covers.
    let text_rules = include_str!("../../rules/l1-rules.toml");
    let start = text_rules
        .find("[[rule]]\nid = \"L1-LIN-SSH-001\"")
        .unwrap();
    let end = start + 8 + text_rules[start + 8..].find("[[rule]]").unwrap();
    let without = format!("{}{}", &text_rules[..start], &text_rules[end..]);
    let rules = rules::parse(
        "l1-rules-without-ssh-001.toml",
        &without,
        catalog.runbooks(),
    )
    .unwrap();
    let planner = ops::l2::Planner::from_config(&config, &data_dir)
        .unwrap()
        .unwrap();
    let sshd_config = lab.dir.join("h1/upper/etc/ssh/sshd_config");
    let drift = || {
        on_target(
            &lab,
            "sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config",
        );
        assert!(
            std::fs::read_to_string(&sshd_config)
                .unwrap()
                .contains("PermitRootLogin yes")
        );
    };
    runtime().block_on(async {
        let store = ops::setup::open_store(&data_dir, "lab").await.unwrap();
        let heal = |steps: &'static [&'static str]| {
            let (config, catalog, rules, store, planner, peer, data_dir) = (
                &config, &catalog, &rules, &store, &planner, &peer, &data_dir,
            );
            async move {
                let scanned = ops::scan::scan_all(config, catalog, data_dir)
                    .await
                    .unwrap();
                // Every other L2 candidate on the target (checks whose rule escalates) gets
                // `escalate_to_person` from the peer; LIN-SSH-001 gets `steps`.
                peer.script_default("escalate").unwrap();
                peer.script_check("LIN-SSH-001", steps).unwrap();
                let options = ops::heal::HealOptions {
                    policy: ops::heal::policy(&config.healing),
                    in_maintenance: &|_| false,
                    dry_run: false,
                    l2: Some(planner),
                };
                let healed =
                    ops::heal::heal_scanned(store, config, catalog, rules, scanned, &options)
                        .await
                        .unwrap();
                healed
                    .into_iter()
                    .find(|h| h.record.check == "LIN-SSH-001")
                    .expect("LIN-SSH-001 fails on target1")
            }
        };

        // A hostile answer: a shell command as the parameter value. Nothing runs.
        drift();
        let refused = heal(&["shell"]).await;
        // LIN-SSH-001 declares no parameters, so any parameter is refused before the shell
        // check; either way the plan does not run.
        match &refused.record.result {
            heal::HealResult::Escalated { reason } => assert!(
                reason.starts_with("L2: invalid parameter: LIN-SSH-001 declares no parameter"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(refused.record.remediation.is_none());
        // L1 fixed other checks in the same file (LIN-CRYPTO-001); root login is untouched.
        let after_refusal = std::fs::read_to_string(&sshd_config).unwrap();
        assert!(
            after_refusal.contains("\nPermitRootLogin yes\n"),
            "{after_refusal}"
        );
        assert!(
            !after_refusal.contains("PermitRootLogin no"),
            "{after_refusal}"
        );
        let seq = refused.seq.expect("an escalation bundle");
        assert_eq!(store.entry(seq).await.unwrap().unwrap().kind, "escalation");

        // A realistic plan: LIN-SSH-001's own runbook, run, verified, sealed.
        let fixed = heal(&["plan"]).await;
        assert_eq!(fixed.record.result, heal::HealResult::Fixed, "{fixed:?}");
        assert_eq!(fixed.record.rule(), Some("L2"));
        let fixed_config = std::fs::read_to_string(&sshd_config).unwrap();
        assert!(
            fixed_config.starts_with("PermitRootLogin no\n"),
            "{fixed_config}"
        );
        let heal_seq = fixed.seq.expect("a heal bundle");
        let bundle: serde_json::Value =
            serde_json::from_slice(&store.entry(heal_seq).await.unwrap().unwrap().line).unwrap();
        assert_eq!(bundle["kind"], "heal");
        assert_eq!(bundle["body"]["rule"], "L2");
        assert_eq!(bundle["body"]["after"]["status"], "pass");

        // The `l2` bundles: one per consultation, the last one for this fix.
        let out = tmp.path().join("kit");
        let bundles = verified_kit(&store, &out).await;
        let l2: Vec<&serde_json::Value> = bundles
            .iter()
            .filter(|b| b["kind"] == "l2" && b["body"]["check"] == "LIN-SSH-001")
            .collect();
        assert_eq!(l2.len(), 2, "{l2:?}");
        let last = &l2[1]["body"];
        assert_eq!(last["verdict"], "accepted");
        assert_eq!(last["outcome"], "fixed");
        assert_eq!(last["runbook"], "LIN-SSH-001");
        assert_eq!(last["after"]["status"], "pass");
        assert!(last["input_tokens"].as_u64().unwrap() > 0);
        assert!(last["cost_usd"].as_str().unwrap().starts_with("$0.0"));
        let first = &l2[0]["body"];
        assert_eq!(first["verdict"], "escalated");
        assert!(
            first["reason"]
                .as_str()
                .unwrap()
                .contains("declares no parameter")
        );
        // The request sealed is byte for byte what the peer received, and it names neither the
        // target nor its address.
        let received: Vec<String> = peer
            .requests()
            .unwrap()
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_owned())
            .collect();
        for b in &l2 {
            let request = b["body"]["request"].as_str().unwrap();
            assert!(received.iter().any(|r| r == request));
        }
        for request in &received {
            assert!(
                !request.contains("target1"),
                "the target's name left the appliance"
            );
            assert!(
                !request.contains(&address),
                "the target's address left the appliance"
            );
        }
        let (tokens, _) = planner.spent(time::OffsetDateTime::now_utc().unix_timestamp());
        let billed: u64 = bundles
            .iter()
            .filter(|b| b["kind"] == "l2")
            .map(|b| {
                b["body"]["input_tokens"].as_u64().unwrap()
                    + b["body"]["output_tokens"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            tokens, billed,
            "the budget counts exactly what the bundles record"
        );
        // The flywheel reads executed plans back from the sealed bundles: one pattern, one fix
        // on one host, still learning (5 fixes on 2 hosts are needed for a proposal).
        let outcomes = ops::l2::flywheel_outcomes(&store).await.unwrap();
        let patterns = l2::flywheel::patterns(&outcomes);
        let ssh: Vec<&l2::flywheel::Pattern> = patterns
            .iter()
            .filter(|p| p.key.check == "LIN-SSH-001")
            .collect();
        assert_eq!(ssh.len(), 1, "{patterns:?}");
        assert_eq!((ssh[0].attempts, ssh[0].successes), (1, 1));
        assert_eq!(ssh[0].hosts.iter().collect::<Vec<_>>(), ["target1"]);
        assert_eq!(
            l2::flywheel::standing(ssh[0], &l2::flywheel::Thresholds::DEFAULT, None),
            l2::flywheel::Standing::Learning
        );
        // Its proposal is a rule the rules loader accepts.
        let proposal = l2::flywheel::proposed_rule(ssh[0]);
        let proposed = rules::parse("proposal.toml", &proposal, catalog.runbooks()).unwrap();
        assert_eq!(proposed.rules()[0].check, "LIN-SSH-001");
    });
}

fn on_target(lab: &Lab, command: &str) {
    let quoted = format!("'{}'", command.replace('\'', "'\\''"));
    let out = lab.script(&["ssh", "1", "sudo", "-n", "sh", "-c", &quoted]);
    assert!(
        out.status.success(),
        "on target 1: {command}: {}",
        text(&out.stderr)
    );
}
