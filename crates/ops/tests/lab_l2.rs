//! L2 end to end against the namespace lab and the local LLM API peer: a drift no L1 rule covers
//! (root login allowed on a lab sshd, with the LIN-SSH-001 rule taken out of the rule set) is
//! planned by L2 through the peer, run through remediate → verify, fixed and sealed as an `l2`
//! bundle and a `heal` bundle; a hostile answer (a shell command as a parameter) changes nothing
//! and escalates with the reason; the prompts the peer received carry no host name or address,
//! and the kit verifies offline. Then the flywheel: after six fixes on two hosts the pattern is
//! proposed, a person approves it, and the next drift is fixed by the promoted L1 rule without
//! asking the peer.

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
    let lab = Lab::up(&tmp.path().join("lab"), &[("LAB_TARGETS", "2")]);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let data_dir = work.join("data");
    let key_file = secret_file(&work.join("l2.key"), FakeLlm::API_KEY, 0o600);
    let env = &lab.env;
    let addresses: Vec<String> = env["LAB_LINUX_HOSTS"]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let target = |n: usize| {
        format!(
            "[[target]]\nname = \"target{n}\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"{}\"\nuser = \"alice\"\nbecome = \"sudo\"\nkey_file = {:?}\n",
            addresses[n - 1],
            env["LAB_SSH_KEY"]
        )
    };
    let site = format!(
        "site = \"lab\"\n[healing]\nmax_per_hour = 100\n{}{}\
         [l2]\nmode = \"local\"\nprovider = \"anthropic\"\nendpoint = \"{}\"\nmodel = \"lab-model\"\napi_key_file = {:?}\nmax_per_hour = 100\nconfidence_floor = 0.7\n\
         [l2.prices.lab-model]\ninput_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n",
        target(1),
        target(2),
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
    let planner = ops::l2::Planner::from_config(&config, &data_dir)
        .unwrap()
        .unwrap();
    let sshd_config = |n: usize| lab.dir.join(format!("h{n}/upper/etc/ssh/sshd_config"));
    let drift = || {
        for n in [1, 2] {
            on_target(
                &lab,
                n,
                "sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config",
            );
            assert!(
                std::fs::read_to_string(sshd_config(n))
                    .unwrap()
                    .contains("PermitRootLogin yes")
            );
        }
    };
    runtime().block_on(async {
        let store = ops::setup::open_store(&data_dir, "lab").await.unwrap();
        // One heal pass over both targets with `rules`; the LIN-SSH-001 outcomes, target1 first.
        let heal = |rules: rules::RuleSet, steps: &'static [&'static str]| {
            let (config, catalog, store, planner, peer, data_dir) =
                (&config, &catalog, &store, &planner, &peer, &data_dir);
            async move {
                let scanned = ops::scan::scan_all(config, catalog, data_dir)
                    .await
                    .unwrap();
                // Every other L2 candidate on the targets (checks whose rule escalates) gets
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
                    ops::heal::heal_scanned(store, config, catalog, &rules, scanned, &options)
                        .await
                        .unwrap();
                let ssh: Vec<ops::heal::Healed> = healed
                    .into_iter()
                    .filter(|h| h.record.check == "LIN-SSH-001")
                    .collect();
                assert_eq!(ssh.len(), 2, "LIN-SSH-001 fails on both targets");
                ssh
            }
        };
        let without_ssh = || {
            rules::parse(
                "l1-rules-without-ssh-001.toml",
                &without,
                catalog.runbooks(),
            )
            .unwrap()
        };

        // A hostile answer: a parameter for a runbook that declares none, a shell command as
        // its value. Nothing runs.
        drift();
        let refused = heal(without_ssh(), &["shell", "shell"]).await;
        for one in &refused {
            match &one.record.result {
                heal::HealResult::Escalated { reason } => assert!(
                    reason.starts_with("L2: invalid parameter: LIN-SSH-001 declares no parameter"),
                    "{reason}"
                ),
                other => panic!("{other:?}"),
            }
            assert!(one.record.remediation.is_none());
            let seq = one.seq.expect("an escalation bundle");
            assert_eq!(store.entry(seq).await.unwrap().unwrap().kind, "escalation");
        }
        // L1 fixed other checks in the same file (LIN-CRYPTO-001); root login is untouched.
        for n in [1, 2] {
            let after_refusal = std::fs::read_to_string(sshd_config(n)).unwrap();
            assert!(
                after_refusal.contains("\nPermitRootLogin yes\n"),
                "{after_refusal}"
            );
            assert!(
                !after_refusal.contains("PermitRootLogin no"),
                "{after_refusal}"
            );
        }

        // A realistic plan: LIN-SSH-001's own runbook, run, verified, sealed; three rounds on
        // both targets, so six fixes on two hosts.
        for round in 0..3 {
            if round > 0 {
                drift();
            }
            for fixed in heal(without_ssh(), &["plan", "plan"]).await {
                assert_eq!(fixed.record.result, heal::HealResult::Fixed, "{fixed:?}");
                assert_eq!(fixed.record.rule(), Some("L2"));
                let heal_seq = fixed.seq.expect("a heal bundle");
                let bundle: serde_json::Value =
                    serde_json::from_slice(&store.entry(heal_seq).await.unwrap().unwrap().line)
                        .unwrap();
                assert_eq!(bundle["kind"], "heal");
                assert_eq!(bundle["body"]["rule"], "L2");
                assert_eq!(bundle["body"]["after"]["status"], "pass");
            }
            for n in [1, 2] {
                let fixed_config = std::fs::read_to_string(sshd_config(n)).unwrap();
                assert!(
                    fixed_config.starts_with("PermitRootLogin no\n"),
                    "{fixed_config}"
                );
            }
        }

        // The `l2` bundles: one per consultation.
        let out = tmp.path().join("kit");
        let bundles = verified_kit(&store, &out).await;
        let l2: Vec<&serde_json::Value> = bundles
            .iter()
            .filter(|b| b["kind"] == "l2" && b["body"]["check"] == "LIN-SSH-001")
            .map(|b| &b["body"])
            .collect();
        assert_eq!(l2.len(), 8, "{l2:?}");
        for refused in &l2[..2] {
            assert_eq!(refused["verdict"], "escalated");
            assert!(
                refused["reason"]
                    .as_str()
                    .unwrap()
                    .contains("declares no parameter")
            );
        }
        for fixed in &l2[2..] {
            assert_eq!(fixed["verdict"], "accepted");
            assert_eq!(fixed["outcome"], "fixed");
            assert_eq!(fixed["runbook"], "LIN-SSH-001");
            assert_eq!(fixed["after"]["status"], "pass");
            assert!(fixed["input_tokens"].as_u64().unwrap() > 0);
            assert!(fixed["cost_usd"].as_str().unwrap().starts_with("$0.0"));
        }
        // The request sealed is byte for byte what the peer received, and no request names a
        // target or its address.
        let received: Vec<String> = peer
            .requests()
            .unwrap()
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_owned())
            .collect();
        for b in &l2 {
            let request = b["request"].as_str().unwrap();
            assert!(received.iter().any(|r| r == request));
        }
        for request in &received {
            for name in ["target1", "target2"] {
                assert!(
                    !request.contains(name),
                    "a target's name left the appliance"
                );
            }
            for address in &addresses {
                assert!(
                    !request.contains(address.as_str()),
                    "a target's address left the appliance"
                );
            }
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

        // The flywheel: six fixes on two hosts, all verified: proposed.
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        let (pattern, standing) = list
            .iter()
            .find(|(p, _)| p.key.check == "LIN-SSH-001")
            .unwrap();
        assert_eq!(
            (pattern.attempts, pattern.successes, pattern.hosts.len()),
            (6, 6, 2)
        );
        assert_eq!(*standing, l2::flywheel::Standing::Proposed);
        ops::l2::flywheel_decide(
            &store,
            &config,
            &catalog,
            &data_dir,
            &pattern.id,
            l2::flywheel::Decision::Approved,
            "Dr. Smith",
            None,
        )
        .await
        .unwrap();
        // Promoted: the rule joins L1, and the next drift is fixed by it without the peer.
        let local = ops::l2::flywheel_rules(&store, &config, &catalog, &data_dir)
            .await
            .unwrap();
        let with_flywheel = rules::parse(
            "l1-rules-without-ssh-001.toml + flywheel.json",
            &format!("{without}\n{local}"),
            catalog.runbooks(),
        )
        .unwrap();
        let asked_before = peer
            .requests()
            .unwrap()
            .iter()
            .filter(|r| {
                r["body"]
                    .as_str()
                    .unwrap()
                    .contains("Failed check LIN-SSH-001:")
            })
            .count();
        drift();
        let rule_id = format!("L1-FLY-{}", &pattern.id[3..]);
        for fixed in heal(with_flywheel, &[]).await {
            assert_eq!(fixed.record.result, heal::HealResult::Fixed, "{fixed:?}");
            assert_eq!(fixed.record.rule(), Some(rule_id.as_str()));
        }
        let asked_after = peer
            .requests()
            .unwrap()
            .iter()
            .filter(|r| {
                r["body"]
                    .as_str()
                    .unwrap()
                    .contains("Failed check LIN-SSH-001:")
            })
            .count();
        assert_eq!(
            asked_after, asked_before,
            "L1 fixed it without asking the model"
        );
        // L1's fixes by the promoted rule count for the pattern.
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        let (pattern, standing) = list
            .iter()
            .find(|(p, _)| p.key.check == "LIN-SSH-001")
            .unwrap();
        assert_eq!((pattern.attempts, pattern.successes), (8, 8));
        assert_eq!(*standing, l2::flywheel::Standing::Promoted);

        // A high-risk runbook (`approval_required`): the plans wait for a person, who approves
        // the one for target1 (it runs now) and rejects the one for target2.
        let strict = load(
            &work,
            &site.replace(
                "confidence_floor = 0.7\n",
                "confidence_floor = 0.7\napproval_required = [\"LIN-SSH-001\"]\n",
            ),
        )
        .unwrap();
        let strict_planner = ops::l2::Planner::from_config(&strict, &data_dir)
            .unwrap()
            .unwrap();
        drift();
        peer.script_check("LIN-SSH-001", &["plan", "plan"]).unwrap();
        let scanned = ops::scan::scan_all(&strict, &catalog, &data_dir)
            .await
            .unwrap();
        let options = ops::heal::HealOptions {
            policy: ops::heal::policy(&strict.healing),
            in_maintenance: &|_| false,
            dry_run: false,
            l2: Some(&strict_planner),
        };
        let healed =
            ops::heal::heal_scanned(&store, &strict, &catalog, &without_ssh(), scanned, &options)
                .await
                .unwrap();
        for one in healed.iter().filter(|h| h.record.check == "LIN-SSH-001") {
            match &one.record.result {
                heal::HealResult::Escalated { reason } => assert!(
                    reason.starts_with(
                        "L2: proposes LIN-SSH-001 with the site's parameters (confidence 0.86)"
                    ) && reason.ends_with("a person must approve it (`osiris l2 list`)"),
                    "{reason}"
                ),
                other => panic!("{other:?}"),
            }
            assert!(one.record.remediation.is_none());
        }
        let waiting = ops::l2::pending_plans(&data_dir).unwrap();
        assert_eq!(waiting.len(), 2, "{waiting:?}");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let decide = |id: String, approve: bool| {
            let (store, strict, catalog, data_dir) = (&store, &strict, &catalog, &data_dir);
            async move {
                ops::l2::decide_pending(
                    store,
                    strict,
                    catalog,
                    data_dir,
                    &id,
                    approve,
                    "Dr. Smith",
                    None,
                    now,
                )
                .await
            }
        };
        let err = decide("l2-999999".to_owned(), true).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no L2 plan `l2-999999` waits for approval: `osiris l2 list` shows them"
        );
        let for_target = |name: &str| {
            waiting
                .iter()
                .find(|p| p.target == name)
                .unwrap()
                .id
                .clone()
        };
        let approved = decide(for_target("target1"), true).await.unwrap();
        let record = approved.record.expect("the plan ran");
        assert_eq!(record.result, heal::HealResult::Fixed, "{record:?}");
        assert!(approved.heal_seq.is_some());
        let action: serde_json::Value = serde_json::from_slice(
            &store
                .entry(approved.action_seq)
                .await
                .unwrap()
                .unwrap()
                .line,
        )
        .unwrap();
        assert_eq!(action["body"]["action"], "l2_approve");
        assert_eq!(action["body"]["details"]["target"], "target1");
        // Resolutions by tier: six L2 fixes and the approved one; L1's include the two by the
        // promoted rule; every escalation is L3.
        let tiers = ops::l2::tier_shares(&store).await.unwrap();
        let today = tiers.last().unwrap();
        assert_eq!(today.l2, 7, "{tiers:?}");
        assert!(today.l1 >= 2 && today.l3 >= 2, "{tiers:?}");
        let rejected = decide(for_target("target2"), false).await.unwrap();
        assert!(rejected.record.is_none());
        assert!(ops::l2::pending_plans(&data_dir).unwrap().is_empty());
        assert!(
            std::fs::read_to_string(sshd_config(1))
                .unwrap()
                .starts_with("PermitRootLogin no\n")
        );
        let target2 = std::fs::read_to_string(sshd_config(2)).unwrap();
        assert!(
            target2.lines().any(|l| l == "PermitRootLogin yes")
                && !target2.contains("PermitRootLogin no"),
            "{target2}"
        );
    });
}

fn on_target(lab: &Lab, n: usize, command: &str) {
    let quoted = format!("'{}'", command.replace('\'', "'\\''"));
    let out = lab.script(&["ssh", &n.to_string(), "sudo", "-n", "sh", "-c", &quoted]);
    assert!(
        out.status.success(),
        "on target {n}: {command}: {}",
        text(&out.stderr)
    );
}
