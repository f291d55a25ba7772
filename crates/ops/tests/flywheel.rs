//! The flywheel over a real store: `l2` bundles of executed plans become patterns; five verified
//! fixes on two hosts are proposed; approval and rejection are sealed and kept; a promoted
//! pattern whose success rate falls is demoted, sealed once; the kit verifies with the decisions
//! and the demotion in it.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use evidence_schema::L2Body;
use l2::flywheel::Standing;

use common::{load, runtime, verified_kit};

fn l2_bundle(host: &str, outcome: &str) -> evidence::BundleDraft {
    let body = test_support::llm::executed_plan_body(host, outcome);
    // The shape the heal path seals, or the flywheel would not read it.
    let _: L2Body = serde_json::from_value(body.clone()).unwrap();
    evidence::BundleDraft {
        site: "lab".to_owned(),
        kind: "l2".to_owned(),
        catalog: "test".to_owned(),
        time: time::OffsetDateTime::now_utc(),
        body,
    }
}

#[test]
fn patterns_are_proposed_approved_sealed_and_demoted() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config = load(
        tmp.path(),
        &format!(
            "site = \"lab\"\ndata_dir = {:?}\n",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    let catalog = common::catalog();
    let id = runtime().block_on(async {
        let store = ops::setup::open_store(&data_dir, "lab").await.unwrap();
        for host in ["pc1", "pc1", "pc1", "pc2"] {
            store.append(l2_bundle(host, "fixed")).await.unwrap();
        }
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        assert_eq!(list.len(), 1);
        let (pattern, standing) = &list[0];
        assert_eq!(*standing, Standing::Learning, "4 fixes are not enough");
        let id = pattern.id.clone();
        let err = ops::l2::flywheel_decide(
            &store,
            &config,
            &catalog,
            &data_dir,
            &id,
            l2::flywheel::Decision::Approved,
            "Dr. Smith",
            None,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("is learning, not proposed"),
            "{err}"
        );
        store.append(l2_bundle("pc2", "fixed")).await.unwrap();
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        assert_eq!(list[0].1, Standing::Proposed);
        let err = ops::l2::flywheel_decide(
            &store,
            &config,
            &catalog,
            &data_dir,
            "fw-0000000000",
            l2::flywheel::Decision::Approved,
            "x",
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no flywheel pattern `fw-0000000000`: `osiris flywheel list` shows the ids"
        );
        let seq = ops::l2::flywheel_decide(
            &store,
            &config,
            &catalog,
            &data_dir,
            &id,
            l2::flywheel::Decision::Approved,
            "Dr. Smith",
            None,
        )
        .await
        .unwrap();
        let sealed: serde_json::Value =
            serde_json::from_slice(&store.entry(seq).await.unwrap().unwrap().line).unwrap();
        assert_eq!(sealed["kind"], "operator_action");
        assert_eq!(sealed["body"]["action"], "flywheel_approve");
        assert_eq!(sealed["body"]["by"], "Dr. Smith");
        assert_eq!(sealed["body"]["details"]["pattern"], id.as_str());
        assert!(
            sealed["body"]["details"]["proposed_rule"]
                .as_str()
                .unwrap()
                .contains("[[rule]]")
        );
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        assert_eq!(list[0].1, Standing::Promoted);
        // A failure: 5 of 6 is below 90 %, the promoted pattern is demoted.
        store.append(l2_bundle("pc3", "not_fixed")).await.unwrap();
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        assert_eq!(list[0].1, Standing::Demoted);
        // Loading the rules seals the demotion once and leaves the rule out; again: nothing new.
        let size = store.size();
        assert_eq!(
            ops::l2::flywheel_rules(&store, &config, &catalog, &data_dir)
                .await
                .unwrap(),
            ""
        );
        assert_eq!(store.size(), size + 1);
        let demotion: serde_json::Value = serde_json::from_slice(
            &store
                .entry(store.head().unwrap().seq)
                .await
                .unwrap()
                .unwrap()
                .line,
        )
        .unwrap();
        assert_eq!(demotion["kind"], "flywheel");
        assert_eq!(demotion["body"]["event"], "demoted");
        assert_eq!(demotion["body"]["pattern"], id.as_str());
        assert_eq!(demotion["body"]["rule"], format!("L1-FLY-{}", &id[3..]));
        assert_eq!(
            (
                demotion["body"]["attempts"].as_u64(),
                demotion["body"]["successes"].as_u64()
            ),
            (Some(6), Some(5))
        );
        assert_eq!(
            ops::l2::flywheel_rules(&store, &config, &catalog, &data_dir)
                .await
                .unwrap(),
            ""
        );
        assert_eq!(store.size(), size + 1, "a demotion is sealed once");
        // Even if it recovers, a demoted pattern needs a new approval.
        store.append(l2_bundle("pc3", "fixed")).await.unwrap();
        store.append(l2_bundle("pc3", "fixed")).await.unwrap();
        let list = ops::l2::flywheel_list(&store, &data_dir).await.unwrap();
        assert_eq!(list[0].1, Standing::Demoted);
        store.create_checkpoint().await.unwrap();
        verified_kit(&store, &tmp.path().join("kit")).await;
        store.close().await;
        id
    });
    assert!(id.starts_with("fw-"));
    assert!(data_dir.join("flywheel.json").exists());
}
