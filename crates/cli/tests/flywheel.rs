//! `osiris flywheel list | approve | reject` on a data directory whose log holds `l2` bundles of
//! executed plans: the proposal and its rule, an approval sealed and shown as promoted, and a
//! clear error for an unknown pattern.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Command, Output};

use test_support::lab::text;

fn osiris(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn l2_bundle(host: &str) -> evidence::BundleDraft {
    evidence::BundleDraft {
        site: "lab".to_owned(),
        kind: "l2".to_owned(),
        catalog: "test".to_owned(),
        time: time::OffsetDateTime::now_utc(),
        body: test_support::llm::executed_plan_body(host, "fixed"),
    }
}

#[test]
fn list_approve_and_refuse_an_unknown_pattern() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data_dir = dir.join("data");
    let config = dir.join("site.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"lab\"\ndata_dir = {:?}\n",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "lab").await.unwrap();
        for host in ["pc1", "pc1", "pc2", "pc2", "pc3"] {
            store.append(l2_bundle(host)).await.unwrap();
        }
        store.close().await;
    });
    let cfg = config.to_str().unwrap();
    let out = osiris(dir, &["flywheel", "list", "--config", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("proposed  LIN-SSH-001 → LIN-SSH-001  5/5 verified on 3 hosts"),
        "{listed}"
    );
    assert!(listed.contains("    [[rule]]\n"), "{listed}");
    assert!(
        listed.ends_with("resolutions by tier (L1 fixed, L2 fixed, L3 handed to a person):\n  all         L1 0 (0 %)  L2 0 (0 %)  L3 0 (0 %)\n"),
        "{listed}"
    );
    let id = listed.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("fw-"), "{listed}");

    let out = osiris(
        dir,
        &[
            "flywheel",
            "approve",
            "fw-0000000000",
            "--by",
            "Dr. Smith",
            "--config",
            cfg,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: no flywheel pattern `fw-0000000000`: `osiris flywheel list` shows the ids\n"
    );

    let out = osiris(
        dir,
        &[
            "flywheel",
            "approve",
            &id,
            "--by",
            "Dr. Smith",
            "--config",
            cfg,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("{id}: approved (sealed as bundle ")),
        "{}",
        text(&out.stdout)
    );
    let out = osiris(dir, &["flywheel", "list", "--config", cfg]);
    assert!(
        text(&out.stdout).contains(&format!("{id}  promoted ")),
        "{}",
        text(&out.stdout)
    );
}
