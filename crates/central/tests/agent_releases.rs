//! Endpoint-agent releases at Central Command: kept only when the binary is the one the vendor's
//! document names (and the document verifies under `[fleet] agent_root` when it is set), never
//! downgraded or replaced under the same version.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use test_support::postgres::PgServer;

mod common;
use common::{AgentVendor, central, ok, setup, text};

#[test]
fn agent_releases_are_kept_only_as_the_vendor_signed_them_and_never_downgraded() {
    let Some(pg) = PgServer::start(
        "agent_releases_are_kept_only_as_the_vendor_signed_them_and_never_downgraded",
    ) else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    setup(dir, &url, &["Acme IT"]);
    let sql = |query: &str| common::psql(&pg, query);
    let vendor = AgentVendor::new("vendor");
    let stranger = AgentVendor::new("stranger");
    std::fs::write(dir.join("agent-root.json"), &vendor.root).unwrap();
    let add = |(manifest, binary): &(String, String)| {
        central(
            dir,
            &url,
            &[
                "admin",
                "agent-release",
                "add",
                "--manifest",
                manifest,
                "--binary",
                binary,
            ],
        )
    };
    let refused = |files: &(String, String), words: &str| {
        let out = add(files);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(words),
            "expected a refusal with `{words}`: {stderr}"
        );
    };

    // A relative agent_root is a configuration error naming the key.
    let config = std::fs::read_to_string(dir.join("central.toml")).unwrap();
    std::fs::write(
        dir.join("central.toml"),
        format!("{config}\n[fleet]\nagent_root = \"agent-root.json\"\n"),
    )
    .unwrap();
    let good = vendor.release(dir, "good", "1.4.2", b"agent 1.4.2");
    let out = add(&good);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("fleet.agent_root: `agent-root.json` must be an absolute path"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        dir.join("central.toml"),
        format!(
            "{config}\n[fleet]\nagent_root = \"{}\"\n",
            dir.join("agent-root.json").display()
        ),
    )
    .unwrap();

    // Another vendor's document, and a binary that is not the one named, are refused.
    let forged = stranger.release(dir, "forged", "1.4.2", b"agent 1.4.2");
    refused(&forged, "the agent release document is refused");
    let tampered = vendor.release(dir, "tampered", "1.4.2", b"agent 1.4.2");
    std::fs::write(dir.join(&tampered.1), b"agent 1.4.X").unwrap();
    refused(&tampered, "its SHA-256 is");
    std::fs::write(dir.join(&tampered.1), b"agent 1.4.2 and more").unwrap();
    refused(&tampered, "it is 20 bytes, the document says 11");
    assert_eq!(sql("SELECT count(*) FROM agent_releases"), "0");

    // The vendor's release is kept verbatim, with who added it.
    let out = ok(&add(&good));
    assert!(
        out.contains("agent release linux-x86_64 1.4.2 kept as id 1"),
        "{out}"
    );
    assert_eq!(
        sql(
            "SELECT platform || ' ' || version || ' ' || size || ' ' || encode(body, 'escape') || ' ' || (added_by LIKE 'cli:uid=%') FROM agent_releases"
        ),
        "linux-x86_64 1.4.2 11 agent 1.4.2 true"
    );
    // The document verbatim (psql trims the answer's trailing newline).
    let manifest = sql("SELECT encode(manifest, 'escape') FROM agent_releases");
    assert_eq!(
        manifest,
        String::from_utf8(std::fs::read(dir.join(&good.0)).unwrap())
            .unwrap()
            .trim_end()
    );
    assert_eq!(
        sql("SELECT length(manifest) FROM agent_releases"),
        std::fs::metadata(dir.join(&good.0))
            .unwrap()
            .len()
            .to_string()
    );
    let list = ok(&central(dir, &url, &["admin", "agent-release", "list"]));
    assert!(
        list.contains("linux-x86_64") && list.contains("1.4.2"),
        "{list}"
    );
    assert!(
        sql("SELECT detail::text FROM audit_log WHERE action = 'agent_release.add'")
            .contains("\"verified\": true")
    );

    // Again: nothing to do. The same version with another binary, and an older version: refused.
    refused(
        &good,
        "agent release linux-x86_64 1.4.2 is already kept (id 1)",
    );
    let rebuilt = vendor.release(dir, "rebuilt", "1.4.2", b"agent 1.4.2 rebuilt");
    refused(&rebuilt, "is already kept with another binary (SHA-256 ");
    let older = vendor.release(dir, "older", "1.4.1", b"agent 1.4.1");
    refused(
        &older,
        "agent release linux-x86_64 1.4.1 is older than 1.4.2, already kept; downgrades are refused",
    );
    let newer = vendor.release(dir, "newer", "1.5.0", b"agent 1.5.0");
    ok(&add(&newer));
    assert_eq!(
        sql("SELECT string_agg(version, ' ' ORDER BY id) FROM agent_releases"),
        "1.4.2 1.5.0"
    );

    // Without [fleet] agent_root only the binary is checked, and the operator is told so (every
    // appliance still verifies the document against its own root).
    std::fs::write(dir.join("central.toml"), &config).unwrap();
    let unchecked = stranger.release(dir, "unchecked", "1.6.0", b"agent 1.6.0");
    let out = ok(&add(&unchecked));
    assert!(
        out.contains("note: [fleet] agent_root is not set, so only the binary was checked"),
        "{out}"
    );
    assert!(
        sql("SELECT detail::text FROM audit_log WHERE action = 'agent_release.add' ORDER BY id DESC LIMIT 1")
            .contains("\"verified\": false")
    );
}
