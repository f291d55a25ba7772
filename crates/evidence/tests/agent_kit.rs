//! Kit verification of the endpoint agents' bundles (enrollment, device-signed results, gaps,
//! remediations, revocation): kits sealed by the real log writer, results signed by real Ed25519
//! device keys, and every problem as a user reads it. The test's own encoder of the signing bytes
//! is checked against agent-proto's byte-exact snapshot of the real encoder, and that snapshot's
//! bytes and signature verify in a kit as they are.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use evidence::kit::{self, KitSource, VerifyOptions, VerifyReport};
use evidence::{ApplianceKey, BundleDraft, LogWriter};
use expect_test::{Expect, expect};
use serde_json::{Value, json};

/// A check result as an agent reports it.
#[derive(Clone)]
struct CheckResult {
    seq: u64,
    check_id: String,
    /// The `CheckStatus` wire number.
    status: i32,
    facts: BTreeMap<String, String>,
    observed_at_unix_ms: i64,
    catalog_version: String,
}

/// The bundles of a log, in order: (kind, body).
#[derive(Default)]
struct Log {
    bundles: Vec<(&'static str, Value)>,
}

fn device(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn result(seq: u64) -> CheckResult {
    CheckResult {
        seq,
        check_id: "WIN-FW-001".to_owned(),
        status: 2,
        facts: BTreeMap::from([
            ("enabled".to_owned(), "false".to_owned()),
            ("profile".to_owned(), "domain".to_owned()),
        ]),
        observed_at_unix_ms: 1_764_000_000_000 + seq as i64,
        catalog_version: "3f2a9c".to_owned(),
    }
}

/// Layout v1 of docs/AGENT-PROTOCOL.md ("What is signed"), written independently of agent-proto.
fn signing_bytes(result: &CheckResult) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&u32::try_from(text.len()).expect("short").to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let mut out = b"osiris.agent.v1.CheckResult\0".to_vec();
    out.extend_from_slice(&result.seq.to_be_bytes());
    put(&mut out, &result.check_id);
    out.extend_from_slice(&result.status.to_be_bytes());
    out.extend_from_slice(&result.observed_at_unix_ms.to_be_bytes());
    put(&mut out, &result.catalog_version);
    out.extend_from_slice(
        &u32::try_from(result.facts.len())
            .expect("few")
            .to_be_bytes(),
    );
    for (key, value) in &result.facts {
        put(&mut out, key);
        put(&mut out, value);
    }
    out
}

fn status_name(status: i32) -> &'static str {
    match status {
        1 => "pass",
        2 => "fail",
        3 => "error",
        4 => "not_applicable",
        _ => "unknown",
    }
}

/// The body of an `agent_result` bundle that says `result` and carries `signed` and `signature`.
fn result_body(agent: &str, result: &CheckResult, signed: &[u8], signature: &[u8]) -> Value {
    json!({
        "agent_id": agent,
        "seq": result.seq,
        "check_id": result.check_id,
        "status": status_name(result.status),
        "facts": result.facts,
        "observed_at_unix_ms": result.observed_at_unix_ms,
        "catalog_version": result.catalog_version,
        "signed": BASE64.encode(signed),
        "signature": BASE64.encode(signature),
    })
}

impl Log {
    fn enroll(&mut self, agent: &str, key: &SigningKey) -> &mut Self {
        self.enroll_with_key(agent, &BASE64.encode(key.verifying_key().to_bytes()))
    }

    fn enroll_with_key(&mut self, agent: &str, device_public_key: &str) -> &mut Self {
        self.push(
            "agent_enrollment",
            json!({
                "agent_id": agent, "hostname": format!("{agent}.clinic.local"), "os": "Windows 11 Pro",
                "os_version": "10.0.22631", "platform": "windows-x86_64", "agent_version": "0.1.0",
                "device_public_key": device_public_key,
                "certificate_sha256": "ab".repeat(32), "token_id": "tok-7",
            }),
        )
    }

    /// A result signed by `key` exactly as the device would.
    fn result(&mut self, agent: &str, key: &SigningKey, result: &CheckResult) -> &mut Self {
        let signed = signing_bytes(result);
        let signature = key.sign(&signed).to_bytes();
        self.push(
            "agent_result",
            result_body(agent, result, &signed, &signature),
        )
    }

    /// Results `seqs` of `agent`, each signed by `key`.
    fn results(
        &mut self,
        agent: &str,
        key: &SigningKey,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> &mut Self {
        for seq in seqs {
            self.result(agent, key, &result(seq));
        }
        self
    }

    fn gap(&mut self, agent: &str, first_seq: u64, last_seq: u64, reason: &str) -> &mut Self {
        self.push(
            "agent_gap",
            json!({"agent_id": agent, "first_seq": first_seq, "last_seq": last_seq, "reason": reason,
                   "recorded_at_unix_ms": 1_764_000_100_000_i64}),
        )
    }

    fn remediation(&mut self, agent: &str, seq: u64) -> &mut Self {
        self.push(
            "agent_remediation",
            json!({"agent_id": agent, "seq": seq, "request_id": "req-1", "runbook_id": "WIN-FW-001",
                   "phase": "remediate", "status": "succeeded", "detail": "",
                   "finished_at_unix_ms": 1_764_000_200_000_i64}),
        )
    }

    fn revoke(&mut self, agent: &str) -> &mut Self {
        self.push(
            "agent_revocation",
            json!({"agent_id": agent, "by": "Dr. Smith", "reason": "laptop stolen"}),
        )
    }

    fn push(&mut self, kind: &'static str, body: Value) -> &mut Self {
        self.bundles.push((kind, body));
        self
    }

    /// Edits the body of the last bundle (after its device signed it).
    fn edit_last(&mut self, edit: impl FnOnce(&mut Value)) -> &mut Self {
        edit(&mut self.bundles.last_mut().expect("a bundle").1);
        self
    }
}

/// Seals the log with the real writer, exports it as a kit and verifies it.
fn verify(log: &Log) -> VerifyReport {
    let key = ApplianceKey::from_seed(&[9; 32]);
    let mut writer = LogWriter::new(key.clone());
    let lines: Vec<Vec<u8>> = log
        .bundles
        .iter()
        .map(|(kind, body)| {
            let draft = BundleDraft {
                site: "clinic-1".to_owned(),
                kind: (*kind).to_owned(),
                catalog: "3f2a9c".to_owned(),
                time: time::macros::datetime!(2026-11-28 03:40:12.5 UTC),
                body: body.clone(),
            };
            writer.seal(&draft).expect("seal").line
        })
        .collect();
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("kit");
    kit::export(
        &dir,
        KitSource {
            key: &key,
            lines: Box::new(lines.into_iter().map(Ok)),
            checkpoints: vec![writer.checkpoint().1],
            ots: Vec::new(),
            cosignatures: Vec::new(),
            auditor: None,
        },
    )
    .expect("export");
    kit::verify(&dir, &VerifyOptions::default())
}

/// The problems of the log's kit, then what the report says of each agent.
#[track_caller]
fn check(log: &Log, expect: Expect) {
    let report = verify(log);
    let mut out = String::new();
    for problem in &report.problems {
        out.push_str(&format!("{problem}\n"));
    }
    out.push_str("--\n");
    for agent in &report.agents {
        out.push_str(&format!(
            "agent {}: enrolled at line {}{}, {} results, {} remediations, up to seq {}",
            agent.agent_id,
            agent.enrollment_line,
            agent
                .revocation_line
                .map(|line| format!(", revoked at line {line}"))
                .unwrap_or_default(),
            agent.results,
            agent.remediations,
            agent.last_seq,
        ));
        for gap in &agent.gaps {
            out.push_str(&format!(
                ", gap {}–{} {}",
                gap.first_seq, gap.last_seq, gap.reason
            ));
        }
        out.push('\n');
    }
    expect.assert_eq(&out);
}

#[test]
fn a_good_kit_accounts_for_every_number_of_every_agent() {
    let (a1, a2) = (device(1), device(2));
    let mut log = Log::default();
    log.enroll("a-1", &a1)
        .enroll("ws-2.clinic:agent_2", &a2)
        .results("a-1", &a1, 1..=2)
        .results("ws-2.clinic:agent_2", &a2, 1..=3)
        .gap("a-1", 3, 5, "queue_full")
        .remediation("a-1", 6)
        .results("a-1", &a1, 7..=7)
        .gap("a-1", 8, 8, "too_old")
        .revoke("ws-2.clinic:agent_2");
    let mut pass = result(9);
    pass.status = 1;
    pass.facts.clear();
    log.result("a-1", &a1, &pass);
    check(
        &log,
        expect![[r#"
            --
            agent a-1: enrolled at line 1, 4 results, 1 remediations, up to seq 9, gap 3–5 queue_full, gap 8–8 too_old
            agent ws-2.clinic:agent_2: enrolled at line 2, revoked at line 12, 3 results, 0 remediations, up to seq 3
        "#]],
    );
}

/// The fixture: `signing_bytes_are_stable` in agent-proto's own tests, read from its source, as
/// (the result it signs, the signing bytes, the signature by the device key of seed 7).
fn agent_proto_snapshot() -> (CheckResult, Vec<u8>, Vec<u8>) {
    let source = include_str!("../../agent-proto/tests/signing.rs");
    let start = source
        .find("fn signing_bytes_are_stable")
        .expect("the test");
    let block = &source[start..];
    let block = &block[block.find("expect![[r#\"").expect("snapshot")..];
    let block = &block[..block.find("\"#]]").expect("end of snapshot")];
    let mut signed = String::new();
    let mut signature = String::new();
    for line in block.lines().skip(1) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("signature") => signature.extend(words),
            Some(_) => signed.extend(words),
            None => {}
        }
    }
    // The same result as that test's `result()`.
    let result = CheckResult {
        seq: 42,
        check_id: "WIN-FW-001".to_owned(),
        status: 2,
        facts: BTreeMap::from([
            ("profile".to_owned(), "domain".to_owned()),
            ("enabled".to_owned(), "false".to_owned()),
        ]),
        observed_at_unix_ms: 1_764_000_000_123,
        catalog_version: "3f2a9c".to_owned(),
    };
    (
        result,
        hex::decode(signed).expect("hex"),
        hex::decode(signature).expect("hex"),
    )
}

#[test]
fn the_real_encoders_bytes_and_signature_verify() {
    let (result, signed, signature) = agent_proto_snapshot();
    assert_eq!(
        signing_bytes(&result),
        signed,
        "this test's encoder disagrees with agent-proto's snapshot"
    );
    assert_eq!(device(7).sign(&signed).to_bytes().to_vec(), signature);
    let mut log = Log::default();
    log.enroll("a-7", &device(7))
        .gap("a-7", 1, 41, "disk_full")
        .push(
            "agent_result",
            result_body("a-7", &result, &signed, &signature),
        );
    check(
        &log,
        expect![[r#"
            --
            agent a-7: enrolled at line 1, 1 results, 0 remediations, up to seq 42, gap 1–41 disk_full
        "#]],
    );
}

#[test]
fn a_body_that_says_other_than_the_signed_bytes_is_caught() {
    let a1 = device(1);
    let mut log = Log::default();
    log.enroll("a-1", &a1)
        .results("a-1", &a1, 1..=1)
        .edit_last(|body| body["facts"]["enabled"] = json!("true"))
        .results("a-1", &a1, 2..=2)
        .edit_last(|body| {
            body["status"] = json!("pass");
            body["check_id"] = json!("WIN-FW-002");
            body["observed_at_unix_ms"] = json!(1);
            body["catalog_version"] = json!("ffffff");
            body["facts"]["zone"] = json!("public");
            body["facts"]
                .as_object_mut()
                .expect("facts")
                .remove("profile");
        })
        .results("a-1", &a1, 3..=3)
        .edit_last(|body| body["seq"] = json!(4));
    check(
        &log,
        expect![[r#"
            bundles.jsonl:2: agent_result fact "enabled" is "true" but the device signed "false" (the body was altered after the device signed)
            bundles.jsonl:3: agent_result check_id is "WIN-FW-002" but the device signed "WIN-FW-001" (the body was altered after the device signed)
            bundles.jsonl:3: agent_result status is "pass" but the device signed 2 (fail) (the body was altered after the device signed)
            bundles.jsonl:3: agent_result observed_at_unix_ms is 1 but the device signed 1764000000002 (the body was altered after the device signed)
            bundles.jsonl:3: agent_result catalog_version is "ffffff" but the device signed "3f2a9c" (the body was altered after the device signed)
            bundles.jsonl:3: agent_result fact "profile" = "domain" the device signed is missing from the body (the body was altered after the device signed)
            bundles.jsonl:3: agent_result fact "zone" = "public" is not among the facts the device signed (the body was altered after the device signed)
            bundles.jsonl:4: agent_result seq is 4 but the device signed 3 (the body was altered after the device signed)
            bundles.jsonl:4: agent a-1: sequence jumps from 2 to 4 without a gap record (3 missing)
            --
            agent a-1: enrolled at line 1, 3 results, 0 remediations, up to seq 4
        "#]],
    );
}

#[test]
fn altered_signed_bytes_and_signatures_of_another_device_fail() {
    let (a1, other) = (device(1), device(2));
    let mut log = Log::default();
    log.enroll("a-1", &a1).results("a-1", &a1, 1..=1);
    // The signed bytes and the body altered together: only the signature can tell.
    let mut altered = result(2);
    let signature = a1.sign(&signing_bytes(&altered)).to_bytes();
    altered
        .facts
        .insert("enabled".to_owned(), "true".to_owned());
    log.push(
        "agent_result",
        result_body("a-1", &altered, &signing_bytes(&altered), &signature),
    );
    // One byte of the signed bytes flipped (the last byte of the last fact's value).
    log.results("a-1", &a1, 3..=3).edit_last(|body| {
        let mut signed = BASE64
            .decode(body["signed"].as_str().expect("signed"))
            .expect("base64");
        *signed.last_mut().expect("bytes") ^= 0x01;
        body["signed"] = json!(BASE64.encode(signed));
    });
    // A result signed by another device's key.
    log.result("a-1", &other, &result(4));
    // A signature that is not one.
    log.results("a-1", &a1, 5..=5)
        .edit_last(|body| body["signature"] = json!(BASE64.encode([0u8; 63])));
    check(
        &log,
        expect![[r#"
            bundles.jsonl:3: agent a-1: the device signature does not verify with the key enrolled at line 1 (the result was altered, or signed by another device)
            bundles.jsonl:4: agent_result fact "profile" is "domain" but the device signed "domaio" (the body was altered after the device signed)
            bundles.jsonl:4: agent a-1: the device signature does not verify with the key enrolled at line 1 (the result was altered, or signed by another device)
            bundles.jsonl:5: agent a-1: the device signature does not verify with the key enrolled at line 1 (the result was altered, or signed by another device)
            bundles.jsonl:6: agent_result signature is not a base64 Ed25519 signature
            --
            agent a-1: enrolled at line 1, 5 results, 0 remediations, up to seq 5
        "#]],
    );
}

#[test]
fn results_need_an_earlier_enrollment_and_none_after_a_revocation() {
    let (a1, a2) = (device(1), device(2));
    let mut log = Log::default();
    log.results("a-1", &a1, 1..=1)
        .enroll("a-1", &a1)
        .results("a-1", &a1, 2..=2)
        .results("nobody", &a2, 1..=1)
        .gap("nobody", 2, 3, "queue_full")
        .revoke("a-1")
        .results("a-1", &a1, 3..=3)
        .remediation("a-1", 4)
        .revoke("a-1")
        .revoke("nobody");
    check(
        &log,
        expect![[r#"
            bundles.jsonl:1: agent a-1: agent_result without an agent_enrollment earlier in the log
            bundles.jsonl:3: agent a-1: sequence starts at 2 without a gap record (1 missing)
            bundles.jsonl:4: agent nobody: agent_result without an agent_enrollment earlier in the log
            bundles.jsonl:5: agent nobody: agent_gap without an agent_enrollment earlier in the log
            bundles.jsonl:7: agent a-1: agent_result sealed after its agent_revocation at line 6: a revoked agent is no longer heard
            bundles.jsonl:8: agent a-1: agent_remediation sealed after its agent_revocation at line 6: a revoked agent is no longer heard
            bundles.jsonl:9: agent a-1: revoked again (first at line 6)
            bundles.jsonl:10: agent nobody: agent_revocation without an agent_enrollment earlier in the log
            --
            agent a-1: enrolled at line 2, revoked at line 6, 2 results, 1 remediations, up to seq 4
        "#]],
    );
}

#[test]
fn a_jump_without_a_gap_record_is_reported_and_a_gap_that_covers_it_passes() {
    let a12 = device(12);
    let mut log = Log::default();
    log.enroll("a-12", &a12)
        .results("a-12", &a12, 1..=119)
        .results("a-12", &a12, 181..=182);
    check(
        &log,
        expect![[r#"
            bundles.jsonl:121: agent a-12: sequence jumps from 119 to 181 without a gap record (120–180 missing)
            --
            agent a-12: enrolled at line 1, 121 results, 0 remediations, up to seq 182
        "#]],
    );
    let mut log = Log::default();
    log.enroll("a-12", &a12)
        .results("a-12", &a12, 1..=119)
        .gap("a-12", 120, 180, "queue_full")
        .results("a-12", &a12, 181..=182);
    check(
        &log,
        expect![[r#"
            --
            agent a-12: enrolled at line 1, 121 results, 0 remediations, up to seq 182, gap 120–180 queue_full
        "#]],
    );
}

#[test]
fn repeated_backward_and_late_starting_numbers_are_reported() {
    let (a1, a2) = (device(1), device(2));
    let mut log = Log::default();
    log.enroll("a-1", &a1)
        .enroll("a-2", &a2)
        .results("a-1", &a1, 1..=2)
        .results("a-1", &a1, 2..=2)
        .results("a-1", &a1, 3..=3)
        .remediation("a-1", 1)
        .gap("a-1", 3, 6, "queue_full")
        .gap("a-1", 8, 9, "too_old")
        .results("a-2", &a2, 3..=4)
        .results("a-2", &a2, 0..=0);
    check(
        &log,
        expect![[r#"
            bundles.jsonl:5: agent a-1: sequence number 2 repeated
            bundles.jsonl:7: agent a-1: sequence goes back from 3 to 1
            bundles.jsonl:8: agent a-1: gap 3–6 covers numbers already accounted for (up to 3)
            bundles.jsonl:9: agent a-1: sequence jumps from 6 to 8 without a gap record (7 missing)
            bundles.jsonl:10: agent a-2: sequence starts at 3 without a gap record (1–2 missing)
            bundles.jsonl:12: agent a-2: sequence number 0 (an agent's numbers start at 1)
            --
            agent a-1: enrolled at line 1, 4 results, 1 remediations, up to seq 9, gap 3–6 queue_full, gap 8–9 too_old
            agent a-2: enrolled at line 2, 3 results, 0 remediations, up to seq 4
        "#]],
    );
}

#[test]
fn malformed_signed_bytes_are_refused_even_when_the_device_signed_them() {
    let a1 = device(1);
    let mut log = Log::default();
    log.enroll("a-1", &a1);
    let sign_raw = |log: &mut Log, result: &CheckResult, signed: Vec<u8>| {
        let signature = a1.sign(&signed).to_bytes();
        log.push(
            "agent_result",
            result_body("a-1", result, &signed, &signature),
        );
    };
    // A trailing byte.
    let mut signed = signing_bytes(&result(1));
    signed.push(0);
    sign_raw(&mut log, &result(1), signed);
    // The two facts in descending key order.
    let mut signed = signing_bytes(&CheckResult {
        facts: BTreeMap::new(),
        ..result(2)
    });
    let count = signed.len() - 4;
    signed[count..].copy_from_slice(&2u32.to_be_bytes());
    for (key, value) in [("profile", "domain"), ("enabled", "false")] {
        for text in [key, value] {
            signed.extend_from_slice(&u32::try_from(text.len()).expect("short").to_be_bytes());
            signed.extend_from_slice(text.as_bytes());
        }
    }
    sign_raw(&mut log, &result(2), signed);
    // Not base64, and a schema the body does not fit.
    log.results("a-1", &a1, 3..=3)
        .edit_last(|body| body["signed"] = json!("not base64!"))
        .results("a-1", &a1, 4..=4)
        .edit_last(|body| body["verdict"] = json!("trust me"))
        .results("a-1", &a1, 5..=5)
        .edit_last(|body| body["status"] = json!("ok"));
    check(
        &log,
        expect![[r#"
            bundles.jsonl:2: agent_result signed is not a layout v1 check result: 1 trailing byte(s) follow the last fact
            bundles.jsonl:3: agent_result signed is not a layout v1 check result: the key "enabled" of fact 2 sorts before the key "profile" of the fact before it (keys must be strictly ascending by bytes)
            bundles.jsonl:4: agent_result signed is not standard base64
            bundles.jsonl:5: agent_result body does not fit its schema: unknown field `verdict`, expected one of `agent_id`, `seq`, `check_id`, `status`, `facts`, `observed_at_unix_ms`, `catalog_version`, `signed`, `signature`
            bundles.jsonl:6: agent_result status "ok" is not pass, fail, error or not_applicable
            bundles.jsonl:6: agent a-1: sequence jumps from 3 to 5 without a gap record (4 missing)
            --
            agent a-1: enrolled at line 1, 4 results, 0 remediations, up to seq 5
        "#]],
    );
}

#[test]
fn enrollments_are_checked_once_per_id_and_per_key() {
    let (a1, a2) = (device(1), device(2));
    // The identity point: a valid encoding, of small order.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    // y = 2 is not on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let mut log = Log::default();
    log.enroll("a-1", &a1)
        .enroll("a-1", &a2)
        .enroll("a-2", &a1)
        .revoke("a-1")
        .enroll("a-1", &a1)
        .enroll_with_key("weak", &BASE64.encode(weak))
        .results("weak", &a1, 1..=1)
        .enroll_with_key("off-curve", &BASE64.encode(not_a_point))
        .enroll_with_key("short", &BASE64.encode([1u8; 31]))
        .enroll("bad id!", &a2);
    check(
        &log,
        expect![[r#"
            bundles.jsonl:2: agent a-1: enrolled again (first at line 1): an agent ID is enrolled once, a device enrolled again gets a new ID
            bundles.jsonl:3: agent a-2: its device key is already enrolled for agent a-1 at line 1: each agent has its own key
            bundles.jsonl:5: agent a-1: enrolled again (first at line 1): an agent ID is enrolled once, a device enrolled again gets a new ID
            bundles.jsonl:6: agent_enrollment device_public_key has small order (a weak key, under which forged signatures verify)
            bundles.jsonl:7: agent weak: its enrollment at line 6 has no usable device key, so the device signature cannot be checked
            bundles.jsonl:8: agent_enrollment device_public_key is not a valid Ed25519 point
            bundles.jsonl:9: agent_enrollment device_public_key is not a base64 Ed25519 public key (32 bytes)
            bundles.jsonl:10: agent_id "bad id!" is not an agent ID (1–128 of A-Z a-z 0-9 . _ : -)
            --
            agent a-1: enrolled at line 1, revoked at line 4, 0 results, 0 remediations, up to seq 0
            agent a-2: enrolled at line 3, 0 results, 0 remediations, up to seq 0
            agent off-curve: enrolled at line 8, 0 results, 0 remediations, up to seq 0
            agent short: enrolled at line 9, 0 results, 0 remediations, up to seq 0
            agent weak: enrolled at line 6, 1 results, 0 remediations, up to seq 1
        "#]],
    );
}

/// Thousands of results over several 8,192-line chunks and worker threads: the ledger carries
/// each agent across chunks, and one bad signature in a batch is found and named by its line.
#[test]
fn one_bad_signature_among_thousands_is_found() {
    let keys: Vec<SigningKey> = (1..=3).map(device).collect();
    let mut log = Log::default();
    for (agent_idx, key) in keys.iter().enumerate() {
        log.enroll(&format!("a-{agent_idx}"), key);
    }
    for seq in 1..=6_000 {
        for (agent_idx, key) in keys.iter().enumerate() {
            log.result(&format!("a-{agent_idx}"), key, &result(seq));
        }
    }
    // Agent a-1's result 4,321 (after 3 enrollments and 4,320 rounds of 3 results, the second
    // of its round), signed by a-0's key.
    let line = 3 + 3 * 4_320 + 2;
    log.bundles[line - 1].1["signature"] =
        json!(BASE64.encode(keys[0].sign(&signing_bytes(&result(4_321))).to_bytes()));
    check(
        &log,
        expect![[r#"
            bundles.jsonl:12965: agent a-1: the device signature does not verify with the key enrolled at line 2 (the result was altered, or signed by another device)
            --
            agent a-0: enrolled at line 1, 6000 results, 0 remediations, up to seq 6000
            agent a-1: enrolled at line 2, 6000 results, 0 remediations, up to seq 6000
            agent a-2: enrolled at line 3, 6000 results, 0 remediations, up to seq 6000
        "#]],
    );
}
