//! `osiris-agent enroll` against the test gateway over real TLS: the pinned CA is the only
//! trust, a wrong pin and a bad token are refused in words with nothing stored, the keys stay
//! on the device, and the state directory holds what `run` needs.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use agent_proto::CaPin;
use common::{AgentProcess, RunningGateway, TEST_CHECKS, TestCa, ToyGateway, config, is_private};

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_with_the_right_pin_stores_what_run_needs() {
    let gateway =
        RunningGateway::start(ToyGateway::new(&["tok-1"], config(1, &TEST_CHECKS)), 0).await;
    let agent = AgentProcess::new();
    let status = agent.status().await;
    assert_eq!(status["enrolled"], false, "{status}");

    // The token arrives through a file; the gateway is dialled by address while its
    // certificate names only agent_proto::GATEWAY_TLS_NAME.
    let token_file = agent.dir.path().join("token");
    std::fs::write(&token_file, "tok-1\n").unwrap();
    let done = agent
        .command(
            &[
                "enroll",
                "--appliance",
                &gateway.address(),
                "--token-file",
                token_file.to_str().unwrap(),
                "--ca-pin",
                &gateway.toy.ca.pin(),
            ],
            "",
        )
        .await;
    assert!(done.status.success(), "{done:?}");
    assert!(
        done.stdout.starts_with(&format!(
            "enrolled as agent agent-1 with {} (3 checks, configuration revision 1)",
            gateway.address()
        )),
        "{}",
        done.stdout
    );

    let dir = agent.state_dir();
    assert!(is_private(&dir));
    for file in [
        "state.json",
        "tls.key",
        "device.key",
        "client.pem",
        "agent-ca.pem",
        "config.json",
    ] {
        let path = dir.join(file);
        assert!(path.exists(), "{file} is missing");
        assert!(is_private(&path), "{file} is readable by others");
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["agent_id"], "agent-1");
    assert_eq!(state["gateway"], gateway.address());
    assert_eq!(state["ca_pin"], gateway.toy.ca.pin());
    let stored_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(stored_config["revision"], 1);
    assert_eq!(stored_config["checks"].as_array().unwrap().len(), 3);
    assert_eq!(
        std::fs::read_to_string(dir.join("agent-ca.pem")).unwrap(),
        common::pem("CERTIFICATE", &gateway.toy.ca.der)
    );

    // The appliance holds the public halves only; the private keys are in the state directory.
    let enrolled = gateway.toy.with(|state| state.agents[0].clone());
    assert_eq!(enrolled.device_key, agent.device_public_key());
    let tls_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("tls.key")).unwrap()).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::subject_public_key_info(&tls_key),
        rcgen::PublicKeyData::subject_public_key_info(&enrolled.tls_key)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("client.pem")).unwrap(),
        common::pem("CERTIFICATE", &enrolled.certificates[0])
    );
    assert!(
        gateway.toy.with(|state| state.tokens.is_empty()),
        "the token is used up"
    );

    let status = agent.status().await;
    assert_eq!(status["enrolled"], true, "{status}");
    assert_eq!(status["agent_id"], "agent-1");
    assert_eq!(status["running"], false);
    assert_eq!(status["config_revision"], 1);
    let text = agent.command(&["status"], "").await;
    assert!(
        text.stdout.contains("agent id:        agent-1"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("the agent is not running"),
        "{}",
        text.stdout
    );

    // A second enrollment is refused before anything is sent.
    let again = agent
        .enroll(&gateway.address(), "tok-2", &gateway.toy.ca.pin())
        .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        again.stderr.contains("already enrolled as agent agent-1"),
        "{}",
        again.stderr
    );
    assert_eq!(gateway.toy.with(|state| state.enroll_calls), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_pin_is_refused_naming_both_fingerprints_and_nothing_is_stored() {
    let gateway =
        RunningGateway::start(ToyGateway::new(&["tok-1"], config(1, &TEST_CHECKS)), 0).await;
    let agent = AgentProcess::new();
    let other = TestCa::new("someone else's CA");
    let done = agent
        .enroll(&gateway.address(), "tok-1", &other.pin())
        .await;
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    let presented = gateway.toy.ca.pin();
    assert!(
        done.stderr.contains(&format!(
            "presented an agent CA with fingerprint {presented}, but --ca-pin is {}",
            other.pin()
        )),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("nothing was sent or stored"),
        "{}",
        done.stderr
    );
    assert!(
        !agent.state_dir().exists(),
        "the state directory was created"
    );
    assert_eq!(
        gateway.toy.with(|state| state.enroll_calls),
        0,
        "the token was sent"
    );
    // The same pin in another spelling is still the right one.
    let spelled = presented
        .trim_start_matches("sha256:")
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(spelled.parse::<CaPin>().unwrap().to_string(), presented);
    let done = agent.enroll(&gateway.address(), "tok-1", &spelled).await;
    assert!(done.status.success(), "{done:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_without_its_ca_in_the_chain_or_with_another_name_is_refused() {
    // A certificate for another name, under the pinned CA: the name is checked.
    let gateway = RunningGateway::start_named(
        ToyGateway::new(&["tok-1"], config(1, &TEST_CHECKS)),
        0,
        &["localhost"],
    )
    .await;
    let agent = AgentProcess::new();
    let done = agent
        .enroll(&gateway.address(), "tok-1", &gateway.toy.ca.pin())
        .await;
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(
        done.stderr.contains(&format!(
            "its own certificate does not verify under it for {}",
            agent_proto::GATEWAY_TLS_NAME
        )),
        "{}",
        done.stderr
    );
    assert!(!agent.state_dir().exists());
    assert_eq!(gateway.toy.with(|state| state.enroll_calls), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_refused_in_plain_words_and_nothing_is_stored() {
    let gateway =
        RunningGateway::start(ToyGateway::new(&["tok-1"], config(1, &TEST_CHECKS)), 0).await;
    let agent = AgentProcess::new();
    let done = agent
        .enroll(&gateway.address(), "tok-wrong", &gateway.toy.ca.pin())
        .await;
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(
        done.stderr
            .contains("the appliance refused the enrollment token"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("unknown, already used or expired"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("osiris agent token create"),
        "{}",
        done.stderr
    );
    assert!(!agent.state_dir().exists());
    assert_eq!(gateway.toy.with(|state| state.tokens.len()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consoles_enrollment_link_enrolls_from_stdin() {
    let gateway =
        RunningGateway::start(ToyGateway::new(&["tok-link"], config(1, &TEST_CHECKS)), 0).await;
    let agent = AgentProcess::new();
    // What the console's QR code holds, as a phone or a file hands it over.
    let link = format!(
        "osiris-agent://enroll?appliance={}&ca-pin={}&token=tok-link\n",
        gateway.address(),
        gateway.toy.ca.pin()
    );
    let done = agent.command(&["enroll", "--link", "-"], &link).await;
    assert!(done.status.success(), "{done:?}");
    assert!(
        done.stdout.starts_with("enrolled as agent agent-1"),
        "{}",
        done.stdout
    );
    let status = agent.status().await;
    assert_eq!(status["enrolled"], true, "{status}");

    // A link for another appliance's CA is refused like a wrong pin, and stores nothing.
    let other = AgentProcess::new();
    let link = format!(
        "osiris-agent://enroll?appliance={}&ca-pin={}&token=tok-link\n",
        gateway.address(),
        TestCa::new("other").pin()
    );
    let done = other.command(&["enroll", "--link", "-"], &link).await;
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert_eq!(other.status().await["enrolled"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_comes_from_the_command_line() {
    let agent = AgentProcess::new();
    let done = agent
        .command(
            &[
                "enroll",
                "--appliance",
                "127.0.0.1:1",
                "--token",
                "tok-secret",
                "--ca-pin",
                &TestCa::new("ca").pin(),
            ],
            "",
        )
        .await;
    assert_eq!(done.status.code(), Some(2), "{done:?}");
    assert!(
        done.stderr
            .contains("visible to every user of this machine"),
        "{}",
        done.stderr
    );
    let empty = agent
        .command(
            &[
                "enroll",
                "--appliance",
                "127.0.0.1:1",
                "--token",
                "-",
                "--ca-pin",
                &TestCa::new("ca").pin(),
            ],
            "\n",
        )
        .await;
    assert_eq!(empty.status.code(), Some(1), "{empty:?}");
    assert!(
        empty.stderr.contains("stdin holds no token"),
        "{}",
        empty.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_appliance_is_named_with_what_to_check() {
    let agent = AgentProcess::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let done = agent
        .enroll(&address, "tok-1", &TestCa::new("ca").pin())
        .await;
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(
        done.stderr.contains(&format!(
            "could not reach the appliance's agent gateway at {address}"
        )),
        "{}",
        done.stderr
    );
    assert!(!agent.state_dir().exists());
    let bad = agent
        .enroll("appliance", "tok-1", &TestCa::new("ca").pin())
        .await;
    assert!(
        bad.stderr
            .contains("the appliance address `appliance` is unusable: expected HOST:PORT"),
        "{}",
        bad.stderr
    );
}
