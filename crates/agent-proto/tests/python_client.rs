//! Cross-check with an independent client: Python's grpcio, with stubs generated from
//! agent.proto at test time by `grpc_tools.protoc` (nothing generated is committed), enrolls
//! against the toy gateway over TLS, connects with the certificate it was issued, sends Hello and
//! a result it signed over signing bytes it built itself, and receives the acknowledgement.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::process::Command;
use std::sync::Arc;

use agent_proto::ServerLimits;
use agent_proto::v1::agent_message;
use common::{RunningGateway, TestCa, ToyGateway};

const PROTO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/agent_client.py");

#[test]
fn a_grpcio_client_enrolls_streams_and_is_acknowledged() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let out = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I", PROTO_ROOT])
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg("osiris/agent/v1/agent.proto")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpc_tools.protoc failed (run scripts/setup-python): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stubs.join("osiris/agent/v1/agent_pb2_grpc.py").exists());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ca = Arc::new(TestCa::new("agent CA"));
    let gateway = runtime.block_on(RunningGateway::start(
        ToyGateway::new(Arc::clone(&ca), &["py-token"], Vec::new()),
        ServerLimits::STANDARD,
    ));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    // The client blocks; the gateway runs on the runtime's worker threads meanwhile.
    let out = Command::new(&python)
        .arg(CLIENT)
        .arg(gateway.addr.to_string())
        .arg(&ca_file)
        .arg("py-token")
        .env("PYTHONPATH", &stubs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the grpcio client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // What the Python client saw.
    assert_eq!(report["agent_id"], "agent-1");
    assert_eq!(report["certificates"], 1);
    assert_eq!(report["ca_der_hex"], hex::encode(&ca.der));
    assert_eq!(
        report["checks"],
        serde_json::json!(["WIN-FW-001", "WIN-BITLOCKER-001"])
    );
    assert_eq!(
        report["seen"],
        serde_json::json!([{"ack": 0}, {"config": 1}, {"ack": 1}])
    );

    // What the gateway holds: the device key from the enrollment and the result, whose signature
    // the toy verified on arrival with the Rust verifier; both sides built the same signing bytes.
    let state = gateway.toy.state.lock().unwrap();
    let enrolled = &state.agents["agent-1"];
    assert_eq!(
        hex::encode(enrolled.device_key.to_bytes()),
        report["device_public_key_hex"].as_str().unwrap()
    );
    let stored = &state.stored["agent-1"];
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), [1]);
    let Some(agent_message::Kind::Result(result)) = &stored[&1].kind else {
        panic!("expected the stored result");
    };
    assert_eq!(result.facts["label"], "état: actif");
    assert_eq!(
        hex::encode(agent_proto::result_signing_bytes(result)),
        report["signing_bytes_hex"].as_str().unwrap()
    );
    agent_proto::verify_result(&enrolled.device_key, result).unwrap();
    assert!(state.tokens.is_empty(), "the token is used up");
    drop(state);
    runtime.block_on(gateway.stop());
}
