//! Issue 19: an accepted risk or an attestation that expired is told to the L3 channels once
//! (a signed webhook here), sealed as a `notification` bundle, and not told again after a
//! restart; one that still counts is not told.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use std::sync::{Arc, Mutex};

use daemon_proc::{HOOK_SECRET, Hooks, start, wait_for, webhook_receiver};

fn bundle(kind: &str, body: serde_json::Value) -> evidence::BundleDraft {
    evidence::BundleDraft {
        site: "clinic".to_owned(),
        kind: kind.to_owned(),
        catalog: "test".to_owned(),
        time: time::OffsetDateTime::now_utc() - time::Duration::days(60),
        body,
    }
}

#[test]
fn expired_exceptions_and_attestations_are_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let today = time::OffsetDateTime::now_utc().date();
    let yesterday = (today - time::Duration::days(1)).to_string();
    let later = (today + time::Duration::days(30)).to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (expired_exception, expired_attestation) = runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "clinic").await.unwrap();
        let exception = |expires: &str| {
            bundle(
                evidence_schema::KIND_EXCEPTION,
                serde_json::json!({
                    "check": "LIN-SSH-002", "target": "pacs-01",
                    "reason": "vendor needs passwords", "compensating": "imaging VLAN only",
                    "owner": "Dr. Ada Example", "expires": expires,
                }),
            )
        };
        let expired = store.append(exception(&yesterday)).await.unwrap().seq;
        store.append(exception(&later)).await.unwrap();
        let attestation = store
            .append(bundle(
                evidence_schema::KIND_ATTESTATION,
                serde_json::json!({
                    "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis reviewed",
                    "by": "Dr. Ada Example", "expires": yesterday, "document": null,
                }),
            ))
            .await
            .unwrap()
            .seq;
        store.close().await;
        (expired, attestation)
    });

    let hooks = Arc::new(Mutex::new(Hooks::default()));
    let hook_url = webhook_receiver(Arc::clone(&hooks));
    let hook_secret = dir.path().join("hook-secret");
    std::fs::write(&hook_secret, HOOK_SECRET).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook_secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"clinic\"\ndata_dir = \"{}\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n\n[escalation]\n[[escalation.channel]]\nname = \"psa\"\nkind = \"webhook\"\nmin_severity = \"low\"\nurl = \"{hook_url}\"\nsecret_file = \"{}\"\n",
            data_dir.display(),
            dir.path().join("api.sock").display(),
            hook_secret.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("osirisd.log");
    let daemon = start(&config, &log);
    let told = wait_for(30, "two expiry notices", &log, || {
        let hooks = hooks.lock().unwrap();
        (hooks.verified.len() >= 2).then(|| hooks.verified.clone())
    });
    let text = serde_json::to_string(&told).unwrap();
    assert!(
        text.contains("The accepted risk for LIN-SSH-002 on pacs-01 expired"),
        "{text}"
    );
    assert!(
        text.contains("The attestation of HIPAA 164.308(a)(1)(ii)(A) expired"),
        "{text}"
    );
    assert_eq!(
        told.len(),
        2,
        "the exception that still counts is not told: {text}"
    );
    // A notice is sealed right after it is delivered: wait for both seals before stopping.
    wait_for(30, "both expiry notices sealed", &log, || {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        (log.matches("An expiry notice was sent.").count() >= 2).then_some(())
    });
    drop(daemon);

    // Sealed once each, under the notice's key.
    let keys = |data_dir: &std::path::Path| {
        runtime.block_on(async {
            let store = ops::setup::open_store(data_dir, "clinic").await.unwrap();
            let mut keys = Vec::new();
            let mut seq = 0;
            while let Some(entry) = store.entry(seq).await.unwrap() {
                let line: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
                if line["kind"] == "notification" {
                    keys.push(line["body"]["key"].as_str().unwrap().to_owned());
                }
                seq += 1;
            }
            store.close().await;
            keys
        })
    };
    let mut sealed = keys(&data_dir);
    sealed.sort();
    assert_eq!(
        sealed,
        vec![
            format!("clinic/expired/attestation/{expired_attestation}"),
            format!("clinic/expired/exception/{expired_exception}"),
        ]
    );

    // After a restart nothing is told again: the notices are found in the log. The daemon's
    // notifier starts right after it logs that it started; two seconds let a first round run.
    let daemon = start(&config, &log);
    wait_for(30, "the restarted daemon", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches("osirisd started.").count() >= 2).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(daemon);
    assert_eq!(hooks.lock().unwrap().verified.len(), 2);
    assert_eq!(keys(&data_dir).len(), 2);
}
