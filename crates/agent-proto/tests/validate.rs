//! Validation of every incoming message kind: a valid message passes, and each broken limit or
//! rule is refused with words naming the field and the limit (`UPDATE_EXPECT=1` regenerates the
//! snapshots).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;

use agent_proto::limits::{
    MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES, MAX_CHECKS, MAX_CHUNK_BYTES, MAX_CSR_BYTES,
    MAX_DETAIL_BYTES, MAX_FACT_KEY_BYTES, MAX_FACT_VALUE_BYTES, MAX_FACTS, MAX_HOSTNAME_BYTES,
    MAX_ID_BYTES, MAX_ITEMS_IN_FLIGHT, MAX_LABEL_BYTES, MAX_MANIFEST_BYTES, MAX_PARAM_NAME_BYTES,
    MAX_PARAM_STRING_BYTES, MAX_PARAMS, MAX_PATH_BYTES, MAX_ROOTS, MAX_TOKEN_BYTES,
    PROTOCOL_VERSION,
};
use agent_proto::v1::{
    Ack, AgentConfig, AgentMessage, CheckResult, CheckSchedule, CheckStatus, DeviceFacts,
    DownloadChunk, DownloadRequest, EnrollRequest, EnrollResponse, Gap, GapReason, GatewayMessage,
    Heartbeat, Hello, Param, Platform, QueueLimits, RemediationAction, RemediationOutcome,
    RemediationPhase, RemediationStatus, RenewCertificate, RunNow, RunRemediation, UpdateOffer,
    agent_message, gateway_message, param,
};
use agent_proto::{Validate, check_in_flight};
use ed25519_dalek::SigningKey;
use expect_test::{Expect, expect};

/// "ok", or the error as the peer would read it.
#[track_caller]
fn check(message: &impl Validate, expect: Expect) {
    let actual = match message.validate() {
        Ok(()) => "ok".to_owned(),
        Err(err) => err.to_string(),
    };
    expect.assert_eq(&actual);
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

fn enroll(change: impl FnOnce(&mut EnrollRequest)) -> EnrollRequest {
    let mut request = EnrollRequest {
        token: "tok_0123456789".to_owned(),
        csr_der: vec![0x30; 300],
        device_public_key: SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes()
            .to_vec(),
        device: Some(DeviceFacts {
            hostname: "frontdesk-01".to_owned(),
            os: "Windows 11 Pro".to_owned(),
            os_version: "10.0.22631".to_owned(),
            agent_version: "0.1.0".to_owned(),
            platform: Platform::WindowsX8664.into(),
        }),
    };
    change(&mut request);
    request
}

fn config(change: impl FnOnce(&mut AgentConfig)) -> AgentConfig {
    let mut config = AgentConfig {
        revision: 3,
        checks: vec![CheckSchedule {
            check_id: "WIN-FW-001".to_owned(),
            interval_seconds: 3600,
            jitter_seconds: 300,
        }],
        heartbeat_interval_seconds: 60,
        full_report_interval_seconds: 86_400,
        queue: Some(QueueLimits {
            max_items: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_age_seconds: 30 * 86_400,
        }),
        protocol_version: PROTOCOL_VERSION,
    };
    change(&mut config);
    config
}

fn enrolled(change: impl FnOnce(&mut EnrollResponse)) -> EnrollResponse {
    let mut response = EnrollResponse {
        agent_id: "agent-1".to_owned(),
        certificate_chain_der: vec![vec![0x30; 500]],
        agent_ca_der: vec![0x30; 400],
        config: Some(config(|_| {})),
    };
    change(&mut response);
    response
}

fn result(change: impl FnOnce(&mut CheckResult)) -> AgentMessage {
    let mut result = CheckResult {
        seq: 1,
        check_id: "WIN-FW-001".to_owned(),
        status: CheckStatus::Pass.into(),
        facts: BTreeMap::from([("enabled".to_owned(), "true".to_owned())]),
        observed_at_unix_ms: 1_764_000_000_000,
        catalog_version: "3f2a9c".to_owned(),
        signature: vec![0; 64],
    };
    change(&mut result);
    AgentMessage {
        kind: Some(agent_message::Kind::Result(result)),
    }
}

fn hello(change: impl FnOnce(&mut Hello)) -> AgentMessage {
    let mut hello = Hello {
        agent_id: "agent-1".to_owned(),
        agent_version: "0.1.0".to_owned(),
        last_acked_seq: 0,
        protocol_version: PROTOCOL_VERSION,
        config_revision: 0,
    };
    change(&mut hello);
    AgentMessage {
        kind: Some(agent_message::Kind::Hello(hello)),
    }
}

fn gap(change: impl FnOnce(&mut Gap)) -> AgentMessage {
    let mut gap = Gap {
        first_seq: 10,
        last_seq: 20,
        reason: GapReason::TooOld.into(),
        recorded_at_unix_ms: 1_764_000_000_000,
    };
    change(&mut gap);
    AgentMessage {
        kind: Some(agent_message::Kind::Gap(gap)),
    }
}

fn outcome(change: impl FnOnce(&mut RemediationOutcome)) -> AgentMessage {
    let mut outcome = RemediationOutcome {
        seq: 5,
        request_id: "req-1".to_owned(),
        runbook_id: "WIN-FW-001".to_owned(),
        phase: RemediationPhase::Verify.into(),
        status: RemediationStatus::Succeeded.into(),
        detail: String::new(),
        finished_at_unix_ms: 1_764_000_000_000,
    };
    change(&mut outcome);
    AgentMessage {
        kind: Some(agent_message::Kind::RemediationOutcome(outcome)),
    }
}

fn gateway(kind: gateway_message::Kind) -> GatewayMessage {
    GatewayMessage { kind: Some(kind) }
}

fn offer(change: impl FnOnce(&mut UpdateOffer)) -> GatewayMessage {
    let mut offer = UpdateOffer {
        platform: Platform::LinuxX8664.into(),
        version: "0.2.0".to_owned(),
        manifest: b"{}".to_vec(),
        download_path: "/agent/releases/0.2.0/linux-x86_64".to_owned(),
        roots: vec![b"{}".to_vec()],
    };
    change(&mut offer);
    gateway(gateway_message::Kind::UpdateOffer(offer))
}

fn remediation(change: impl FnOnce(&mut RunRemediation)) -> GatewayMessage {
    let mut request = RunRemediation {
        request_id: "req-1".to_owned(),
        runbook_id: "WIN-FW-001".to_owned(),
        action: RemediationAction::Rollback.into(),
        parameters: BTreeMap::from([(
            "max_days".to_owned(),
            Param {
                value: Some(param::Value::IntValue(90)),
            },
        )]),
    };
    change(&mut request);
    gateway(gateway_message::Kind::RunRemediation(request))
}

fn string_param(text: String) -> Param {
    Param {
        value: Some(param::Value::StringValue(text)),
    }
}

#[test]
fn download_messages() {
    let request = |path: &str| DownloadRequest {
        path: path.to_owned(),
    };
    check(
        &request("/agent-releases/linux-x86_64/1.0.0/osiris-agent"),
        expect!["ok"],
    );
    check(
        &request("../etc/shadow"),
        expect![
            "DownloadRequest.path must start with a single '/' (a path on the gateway, not a URL)"
        ],
    );
    check(
        &request("/a/../b"),
        expect!["DownloadRequest.path holds a '.' or '..' segment"],
    );
    check(
        &DownloadChunk {
            data: vec![0; MAX_CHUNK_BYTES],
        },
        expect!["ok"],
    );
    check(
        &DownloadChunk {
            data: vec![0; MAX_CHUNK_BYTES + 1],
        },
        expect!["DownloadChunk.data is 65537 bytes, over the limit of 65536 bytes"],
    );
}

#[test]
fn enroll_request() {
    check(&enroll(|_| {}), expect!["ok"]);
    check(
        &enroll(|r| r.token.clear()),
        expect!["EnrollRequest.token is missing"],
    );
    check(
        &enroll(|r| r.token = long(MAX_TOKEN_BYTES + 1)),
        expect!["EnrollRequest.token is 257 bytes, over the limit of 256 bytes"],
    );
    check(
        &enroll(|r| r.token = "tok\n".to_owned()),
        expect!["EnrollRequest.token holds a control character"],
    );
    check(
        &enroll(|r| r.csr_der.clear()),
        expect!["EnrollRequest.csr_der is missing"],
    );
    check(
        &enroll(|r| r.csr_der = vec![0; MAX_CSR_BYTES + 1]),
        expect!["EnrollRequest.csr_der is 4097 bytes, over the limit of 4096 bytes"],
    );
    check(
        &enroll(|r| r.device_public_key.truncate(31)),
        expect!["EnrollRequest.device_public_key is 31 bytes; it must be exactly 32"],
    );
    check(
        &enroll(|r| r.device_public_key = vec![0; 32]),
        expect!["EnrollRequest.device_public_key is a weak (small-order) Ed25519 key"],
    );
    check(
        &enroll(|r| r.device = None),
        expect!["EnrollRequest.device is missing"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().hostname = long(MAX_HOSTNAME_BYTES + 1)),
        expect!["EnrollRequest.device.hostname is 254 bytes, over the limit of 253 bytes"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().hostname = "front desk".to_owned()),
        expect!["EnrollRequest.device.hostname holds white space"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().os_version = long(MAX_LABEL_BYTES + 1)),
        expect!["EnrollRequest.device.os_version is 129 bytes, over the limit of 128 bytes"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().agent_version.clear()),
        expect!["EnrollRequest.device.agent_version is missing"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().platform = Platform::Unspecified.into()),
        expect!["EnrollRequest.device.platform is 0, not a value of Platform this version knows"],
    );
    check(
        &enroll(|r| r.device.as_mut().unwrap().platform = 99),
        expect!["EnrollRequest.device.platform is 99, not a value of Platform this version knows"],
    );
}

#[test]
fn enroll_response_and_config() {
    check(&enrolled(|_| {}), expect!["ok"]);
    check(
        &enrolled(|r| r.agent_id = "agent 1".to_owned()),
        expect![
            "EnrollResponse.agent_id holds ' '; IDs are ASCII letters, digits, '.', '_', ':' and '-'"
        ],
    );
    check(
        &enrolled(|r| r.agent_id = long(MAX_ID_BYTES + 1)),
        expect!["EnrollResponse.agent_id is 129 bytes, over the limit of 128 bytes"],
    );
    check(
        &enrolled(|r| r.certificate_chain_der.clear()),
        expect!["EnrollResponse.certificate_chain_der is missing"],
    );
    check(
        &enrolled(|r| r.certificate_chain_der = vec![vec![0x30; 10]; MAX_CHAIN_CERTIFICATES + 1]),
        expect!["EnrollResponse.certificate_chain_der has 5 entries, over the limit of 4"],
    );
    check(
        &enrolled(|r| r.certificate_chain_der[0] = vec![0; MAX_CERTIFICATE_BYTES + 1]),
        expect![
            "EnrollResponse.certificate_chain_der[0] is 8193 bytes, over the limit of 8192 bytes"
        ],
    );
    check(
        &enrolled(|r| r.agent_ca_der.clear()),
        expect!["EnrollResponse.agent_ca_der is missing"],
    );
    check(
        &enrolled(|r| r.config = None),
        expect!["EnrollResponse.config is missing"],
    );
    check(
        &enrolled(|r| r.config.as_mut().unwrap().checks[0].interval_seconds = 59),
        expect![
            "EnrollResponse.config.checks[0].interval_seconds is 59, outside the allowed 60..=604800"
        ],
    );

    check(
        &config(|c| c.revision = 0),
        expect!["AgentConfig.revision is missing"],
    );
    check(
        &config(|c| {
            c.checks = vec![c.checks[0].clone(); MAX_CHECKS + 1];
        }),
        expect!["AgentConfig.checks has 257 entries, over the limit of 256"],
    );
    check(
        &config(|c| c.checks[0].check_id = "WIN/FW".to_owned()),
        expect![
            "AgentConfig.checks[0].check_id holds '/'; IDs are ASCII letters, digits, '.', '_', ':' and '-'"
        ],
    );
    check(
        &config(|c| c.checks[0].interval_seconds = 8 * 86_400),
        expect![
            "AgentConfig.checks[0].interval_seconds is 691200, outside the allowed 60..=604800"
        ],
    );
    check(
        &config(|c| c.checks[0].jitter_seconds = 3601),
        expect!["AgentConfig.checks[0].jitter_seconds is 3601, outside the allowed 0..=3600"],
    );
    check(
        &config(|c| c.heartbeat_interval_seconds = 5),
        expect!["AgentConfig.heartbeat_interval_seconds is 5, outside the allowed 10..=3600"],
    );
    check(
        &config(|c| c.full_report_interval_seconds = 60),
        expect![
            "AgentConfig.full_report_interval_seconds is 60, outside the allowed 3600..=604800"
        ],
    );
    check(
        &config(|c| c.queue = None),
        expect!["AgentConfig.queue is missing"],
    );
    check(
        &config(|c| c.queue.as_mut().unwrap().max_items = 2_000_000),
        expect!["AgentConfig.queue.max_items is 2000000, outside the allowed 16..=1000000"],
    );
    check(
        &config(|c| c.queue.as_mut().unwrap().max_bytes = 1024),
        expect!["AgentConfig.queue.max_bytes is 1024, outside the allowed 65536..=1073741824"],
    );
    check(
        &config(|c| c.queue.as_mut().unwrap().max_age_seconds = 100 * 86_400),
        expect!["AgentConfig.queue.max_age_seconds is 8640000, outside the allowed 3600..=7776000"],
    );
    check(
        &config(|c| c.protocol_version = 0),
        expect!["AgentConfig.protocol_version is missing"],
    );
}

#[test]
fn agent_messages() {
    check(
        &AgentMessage { kind: None },
        expect!["AgentMessage.kind is missing"],
    );

    check(&hello(|_| {}), expect!["ok"]);
    check(
        &hello(|h| h.agent_id.clear()),
        expect!["Hello.agent_id is missing"],
    );
    check(
        &hello(|h| h.agent_version = long(MAX_LABEL_BYTES + 1)),
        expect!["Hello.agent_version is 129 bytes, over the limit of 128 bytes"],
    );
    check(
        &hello(|h| h.protocol_version = 0),
        expect!["Hello.protocol_version is missing"],
    );

    check(&result(|_| {}), expect!["ok"]);
    check(
        &result(|r| r.seq = 0),
        expect!["CheckResult.seq is missing"],
    );
    check(
        &result(|r| r.check_id = long(MAX_ID_BYTES + 1)),
        expect!["CheckResult.check_id is 129 bytes, over the limit of 128 bytes"],
    );
    check(
        &result(|r| r.status = CheckStatus::Unspecified.into()),
        expect!["CheckResult.status is 0, not a value of CheckStatus this version knows"],
    );
    check(
        &result(|r| r.status = 5),
        expect!["CheckResult.status is 5, not a value of CheckStatus this version knows"],
    );
    check(
        &result(|r| {
            r.facts = (0..=MAX_FACTS)
                .map(|fact_idx| (format!("f{fact_idx}"), String::new()))
                .collect();
        }),
        expect!["CheckResult.facts has 65 entries, over the limit of 64"],
    );
    check(
        &result(|r| {
            r.facts.insert(long(MAX_FACT_KEY_BYTES + 1), String::new());
        }),
        expect![[
            r#"CheckResult.facts["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] key is 65 bytes, over the limit of 64 bytes"#
        ]],
    );
    check(
        &result(|r| {
            r.facts.insert("Enabled".to_owned(), String::new());
        }),
        expect![[
            r#"CheckResult.facts["Enabled"] key is not made of lower-case ASCII letters, digits, '_', '.' and '-'"#
        ]],
    );
    check(
        &result(|r| {
            r.facts.insert(String::new(), String::new());
        }),
        expect!["CheckResult.facts key is missing"],
    );
    check(
        &result(|r| {
            r.facts
                .insert("enabled".to_owned(), long(MAX_FACT_VALUE_BYTES + 1));
        }),
        expect![[r#"CheckResult.facts["enabled"] is 1025 bytes, over the limit of 1024 bytes"#]],
    );
    check(
        &result(|r| r.observed_at_unix_ms = 0),
        expect!["CheckResult.observed_at_unix_ms is missing"],
    );
    check(
        &result(|r| r.catalog_version.clear()),
        expect!["CheckResult.catalog_version is missing"],
    );
    check(
        &result(|r| r.signature.clear()),
        expect!["CheckResult.signature is missing"],
    );
    check(
        &result(|r| r.signature.push(0)),
        expect!["CheckResult.signature is 65 bytes; it must be exactly 64"],
    );

    check(
        &AgentMessage {
            kind: Some(agent_message::Kind::Heartbeat(Heartbeat::default())),
        },
        expect!["ok"],
    );

    check(&gap(|_| {}), expect!["ok"]);
    check(
        &gap(|g| g.first_seq = 0),
        expect!["Gap.first_seq is missing"],
    );
    check(
        &gap(|g| g.last_seq = 9),
        expect!["Gap.last_seq is 9, before first_seq 10"],
    );
    check(
        &gap(|g| g.reason = 0),
        expect!["Gap.reason is 0, not a value of GapReason this version knows"],
    );
    check(
        &gap(|g| g.recorded_at_unix_ms = -1),
        expect!["Gap.recorded_at_unix_ms is -1, before 1970"],
    );

    check(&outcome(|_| {}), expect!["ok"]);
    check(
        &outcome(|o| o.seq = 0),
        expect!["RemediationOutcome.seq is missing"],
    );
    check(
        &outcome(|o| o.request_id.clear()),
        expect!["RemediationOutcome.request_id is missing"],
    );
    check(
        &outcome(|o| o.runbook_id = "WIN FW".to_owned()),
        expect![
            "RemediationOutcome.runbook_id holds ' '; IDs are ASCII letters, digits, '.', '_', ':' and '-'"
        ],
    );
    check(
        &outcome(|o| o.phase = 9),
        expect![
            "RemediationOutcome.phase is 9, not a value of RemediationPhase this version knows"
        ],
    );
    check(
        &outcome(|o| o.status = 0),
        expect![
            "RemediationOutcome.status is 0, not a value of RemediationStatus this version knows"
        ],
    );
    check(
        &outcome(|o| o.detail = long(MAX_DETAIL_BYTES + 1)),
        expect!["RemediationOutcome.detail is 1025 bytes, over the limit of 1024 bytes"],
    );
    check(
        &outcome(|o| o.detail = "done\u{1b}[31m".to_owned()),
        expect!["RemediationOutcome.detail holds a control character"],
    );
    check(
        &outcome(|o| o.finished_at_unix_ms = 0),
        expect!["RemediationOutcome.finished_at_unix_ms is missing"],
    );
}

#[test]
fn gateway_messages() {
    check(
        &GatewayMessage { kind: None },
        expect!["GatewayMessage.kind is missing"],
    );
    check(
        &gateway(gateway_message::Kind::Ack(Ack { up_to_seq: 0 })),
        expect!["ok"],
    );
    check(
        &gateway(gateway_message::Kind::Config(config(|c| c.revision = 0))),
        expect!["AgentConfig.revision is missing"],
    );

    check(&offer(|_| {}), expect!["ok"]);
    check(
        &offer(|o| o.platform = 0),
        expect!["UpdateOffer.platform is 0, not a value of Platform this version knows"],
    );
    check(
        &offer(|o| o.version.clear()),
        expect!["UpdateOffer.version is missing"],
    );
    check(
        &offer(|o| o.manifest.clear()),
        expect!["UpdateOffer.manifest is missing"],
    );
    check(
        &offer(|o| o.manifest = vec![0; MAX_MANIFEST_BYTES + 1]),
        expect!["UpdateOffer.manifest is 65537 bytes, over the limit of 65536 bytes"],
    );
    check(
        &offer(|o| o.roots = vec![b"{}".to_vec(); MAX_ROOTS + 1]),
        expect!["UpdateOffer.roots has 33 entries, over the limit of 32"],
    );
    check(
        &offer(|o| o.roots[0].clear()),
        expect!["UpdateOffer.roots[0] is missing"],
    );
    check(
        &offer(|o| o.roots[0] = vec![0; MAX_MANIFEST_BYTES + 1]),
        expect!["UpdateOffer.roots[0] is 65537 bytes, over the limit of 65536 bytes"],
    );
    check(
        &offer(|o| o.download_path.clear()),
        expect!["UpdateOffer.download_path is missing"],
    );
    check(
        &offer(|o| o.download_path = format!("/{}", long(MAX_PATH_BYTES))),
        expect!["UpdateOffer.download_path is 513 bytes, over the limit of 512 bytes"],
    );
    check(
        &offer(|o| o.download_path = "https://evil.example/agent".to_owned()),
        expect![
            "UpdateOffer.download_path must start with a single '/' (a path on the gateway, not a URL)"
        ],
    );
    check(
        &offer(|o| o.download_path = "//evil.example/agent".to_owned()),
        expect![
            "UpdateOffer.download_path must start with a single '/' (a path on the gateway, not a URL)"
        ],
    );
    check(
        &offer(|o| o.download_path = "/agent/../etc/passwd".to_owned()),
        expect!["UpdateOffer.download_path holds a '.' or '..' segment"],
    );
    check(
        &offer(|o| o.download_path = "/agent?x=1".to_owned()),
        expect![[
            r#"UpdateOffer.download_path holds a character outside printable ASCII or one of '\', '?', '#', '%'"#
        ]],
    );

    check(
        &gateway(gateway_message::Kind::RunNow(RunNow { check_ids: vec![] })),
        expect!["ok"],
    );
    check(
        &gateway(gateway_message::Kind::RunNow(RunNow {
            check_ids: vec!["WIN-FW-001".to_owned(); MAX_CHECKS + 1],
        })),
        expect!["RunNow.check_ids has 257 entries, over the limit of 256"],
    );
    check(
        &gateway(gateway_message::Kind::RunNow(RunNow {
            check_ids: vec!["WIN-FW-001".to_owned(), String::new()],
        })),
        expect!["RunNow.check_ids[1] is missing"],
    );

    check(&remediation(|_| {}), expect!["ok"]);
    check(
        &remediation(|r| r.request_id.clear()),
        expect!["RunRemediation.request_id is missing"],
    );
    check(
        &remediation(|r| r.runbook_id = long(MAX_ID_BYTES + 1)),
        expect!["RunRemediation.runbook_id is 129 bytes, over the limit of 128 bytes"],
    );
    check(
        &remediation(|r| r.action = 0),
        expect!["RunRemediation.action is 0, not a value of RemediationAction this version knows"],
    );
    check(
        &remediation(|r| {
            r.parameters = (0..=MAX_PARAMS)
                .map(|param_idx| (format!("p{param_idx}"), string_param(String::new())))
                .collect();
        }),
        expect!["RunRemediation.parameters has 33 entries, over the limit of 32"],
    );
    check(
        &remediation(|r| {
            r.parameters
                .insert(long(MAX_PARAM_NAME_BYTES + 1), string_param(String::new()));
        }),
        expect![[
            r#"RunRemediation.parameters["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] name is 65 bytes, over the limit of 64 bytes"#
        ]],
    );
    check(
        &remediation(|r| {
            r.parameters
                .insert("1st".to_owned(), string_param(String::new()));
        }),
        expect![[
            r#"RunRemediation.parameters["1st"] name is not an identifier (ASCII letters, digits and '_', not starting with a digit)"#
        ]],
    );
    check(
        &remediation(|r| {
            r.parameters
                .insert("path; rm -rf /".to_owned(), string_param(String::new()));
        }),
        expect![[
            r#"RunRemediation.parameters["path; rm -rf /"] name is not an identifier (ASCII letters, digits and '_', not starting with a digit)"#
        ]],
    );
    check(
        &remediation(|r| {
            r.parameters.insert(
                "profile".to_owned(),
                string_param(long(MAX_PARAM_STRING_BYTES + 1)),
            );
        }),
        expect![[
            r#"RunRemediation.parameters["profile"] is 1025 bytes, over the limit of 1024 bytes"#
        ]],
    );
    check(
        &remediation(|r| {
            r.parameters
                .insert("profile".to_owned(), Param { value: None });
        }),
        expect![[r#"RunRemediation.parameters["profile"].value is missing"#]],
    );

    check(
        &gateway(gateway_message::Kind::RenewCertificate(RenewCertificate {
            certificate_chain_der: vec![vec![0x30; 500]],
        })),
        expect!["ok"],
    );
    check(
        &gateway(gateway_message::Kind::RenewCertificate(RenewCertificate {
            certificate_chain_der: vec![],
        })),
        expect!["RenewCertificate.certificate_chain_der is missing"],
    );
}

#[test]
fn items_in_flight_are_bounded() {
    assert_eq!(
        check_in_flight("CheckResult.seq", 100 + MAX_ITEMS_IN_FLIGHT, 100),
        Ok(())
    );
    expect!["CheckResult.seq is 357, more than the limit of 256 items in flight beyond the last acknowledged 100"].assert_eq(
        &check_in_flight("CheckResult.seq", 101 + MAX_ITEMS_IN_FLIGHT, 100)
            .unwrap_err()
            .to_string(),
    );
    // A resent item below the acknowledgement is within the window.
    assert_eq!(check_in_flight("CheckResult.seq", 3, 100), Ok(()));
}

#[test]
fn a_validation_error_is_an_invalid_argument_status() {
    let err = result(|r| r.seq = 0).validate().unwrap_err();
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "CheckResult.seq is missing");
}
