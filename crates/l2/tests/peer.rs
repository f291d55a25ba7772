//! The planner against the local LLM API peer (`vm-tests/lab/llm/fakellm.py`) over real HTTP:
//! both providers, every scripted misbehaviour, retries, timeouts and cut-off answers; the peer
//! checked with the official `anthropic` and `openai` SDKs; and every prompt the peer received
//! checked for the planted PHI, by us and by Microsoft Presidio.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use l2::{
    ClientError, ClientSettings, Guard, Prepared, Provider, ProviderClient, ReplyError, Verdict,
    judge_reply, parse_reply,
};
use model::ParamValue;
use test_support::llm::FakeLlm;

use support::*;

fn client(peer: &FakeLlm, provider: Provider, timeout: Duration) -> ProviderClient {
    ProviderClient::new(ClientSettings {
        provider,
        endpoint: match provider {
            Provider::Anthropic => peer.anthropic_url(),
            Provider::OpenAi => peer.openai_url(),
        },
        api_key: Some(FakeLlm::API_KEY.to_owned()),
        timeout,
        max_retries: 2,
        max_retry_wait: Duration::from_secs(5),
        remote: false,
    })
    .expect("client")
}

/// One consultation as the daemon makes it: admit, send, charge, parse, judge.
async fn consult(
    peer: &FakeLlm,
    provider: Provider,
    guard: &mut Guard,
) -> (Prepared, Result<Verdict, String>) {
    let catalog = catalog();
    let prepared = prepare_for(provider, &catalog, &default_params(), &history());
    let now = 1_780_000_000;
    let reservation = guard.admit(&prepared, now).expect("admitted");
    let exchange = match client(peer, provider, Duration::from_secs(10))
        .send(&prepared)
        .await
    {
        Ok(exchange) => exchange,
        Err(err) => return (prepared, Err(err.to_string())),
    };
    let reply = match parse_reply(provider, &exchange.body) {
        Ok(reply) => reply,
        Err(err) => {
            guard.charge(reservation, l2::usage_only(provider, &exchange.body), now);
            return (prepared, Err(err.to_string()));
        }
    };
    guard.charge(reservation, Some(reply.usage), now);
    let mut checks = Vec::new();
    let verdict = judge_reply(
        &reply,
        &prepared,
        &runbooks(&catalog),
        guard.settings(),
        &mut checks,
    );
    (prepared, Ok(verdict))
}

#[tokio::test]
async fn a_realistic_plan_through_both_providers_is_accepted_and_billed_exactly() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let mut guard = Guard::new(guard_settings());
        let (_, verdict) = consult(&peer, provider, &mut guard).await;
        let Ok(Verdict::Accept(plan)) = verdict else {
            panic!("{provider}: {verdict:?}")
        };
        assert_eq!(plan.runbook, "LIN-SVC-001");
        // The peer saw pseudonyms; the plan has the real unit names again.
        assert_eq!(
            plan.params.get("restart_allowlist"),
            Some(&ParamValue::Text(
                "auditd.service,cron.service,jsmith-sync.service,patient-portal-jsmith.service,backup-Abernathy_Quentaro-1961-04-12.service"
                    .to_owned()
            ))
        );
        assert!(
            plan.rationale.contains("frontdesk-pc3"),
            "{}",
            plan.rationale
        );
        let requests = peer.requests().expect("log");
        let last = requests.last().expect("a request");
        let usage = &last["usage"];
        let (input, output) = match provider {
            Provider::Anthropic => (&usage["input_tokens"], &usage["output_tokens"]),
            Provider::OpenAi => (&usage["prompt_tokens"], &usage["completion_tokens"]),
        };
        let billed = input.as_u64().expect("in") + output.as_u64().expect("out");
        assert_eq!(
            guard.spent(1_780_000_000).0,
            billed,
            "{provider}: exact to the token"
        );
        let headers = &last["headers"];
        match provider {
            Provider::Anthropic => {
                assert_eq!(headers["x-api-key"], "[key]");
                assert_eq!(headers["anthropic-version"], "2023-06-01");
            }
            Provider::OpenAi => assert_eq!(headers["authorization"], "[key]"),
        }
        assert!(
            !last["body"]
                .as_str()
                .expect("body")
                .contains(FakeLlm::API_KEY)
        );
    }
}

#[tokio::test]
async fn scripted_misbehaviour_never_becomes_a_plan() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    let cases = [
        ("unregistered", "unregistered_runbook"),
        ("extra_params", "bad_param"),
        ("mistyped", "bad_param"),
        ("shell", "shell_metacharacters"),
        ("follow_injection", "shell_metacharacters"),
        ("low_confidence", "low_confidence"),
        ("prose", "no_tool_call"),
        ("escalate", "model_escalated"),
    ];
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        for (step, code) in cases {
            peer.script(&[step]).expect("script");
            let mut guard = Guard::new(guard_settings());
            let (_, verdict) = consult(&peer, provider, &mut guard).await;
            match verdict {
                Ok(Verdict::Escalate(rejection)) => {
                    assert_eq!(rejection.code(), code, "{provider} {step}: {rejection}");
                }
                other => panic!("{provider} {step}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn retries_timeouts_and_cut_off_answers() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    let catalog = catalog();
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let prepared = prepare_for(provider, &catalog, &[], &[]);
        let client = client(&peer, provider, Duration::from_secs(3));
        // 429 and 529 with retry-after: 1, then an answer.
        peer.script(&["rate_limit", "overloaded", "plan"])
            .expect("script");
        let exchange = client
            .send(&prepared)
            .await
            .expect("answered after retries");
        assert_eq!(exchange.attempts, 3);
        peer.script(&["rate_limit_long"]).expect("script");
        assert_eq!(
            client.send(&prepared).await.map(|_| ()),
            Err(ClientError::RetryTooLate {
                status: 429,
                wait_secs: 3600,
                cap_secs: 5
            })
        );
        peer.script(&["rate_limit", "rate_limit", "overloaded"])
            .expect("script");
        let err = client.send(&prepared).await.expect_err("still overloaded");
        assert_eq!(
            err.to_string(),
            "the provider is still overloaded or rate-limiting after 3 attempts (HTTP 529): overloaded_error: Overloaded"
        );
        peer.script(&["timeout"]).expect("script");
        assert_eq!(
            client.send(&prepared).await.map(|_| ()),
            Err(ClientError::Timeout(3))
        );
        peer.script(&["truncated"]).expect("script");
        let exchange = client.send(&prepared).await.expect("a 200");
        assert!(matches!(
            parse_reply(provider, &exchange.body),
            Err(ReplyError::Truncated { .. })
        ));
    }
    // A wrong key is refused with the provider's own words.
    let wrong = ProviderClient::new(ClientSettings {
        provider: Provider::Anthropic,
        endpoint: peer.anthropic_url(),
        api_key: Some("sk-wrong".to_owned()),
        timeout: Duration::from_secs(5),
        max_retries: 0,
        max_retry_wait: Duration::from_secs(1),
        remote: false,
    })
    .expect("client");
    let prepared = prepare_for(Provider::Anthropic, &catalog, &[], &[]);
    assert_eq!(
        wrong.send(&prepared).await.map(|_| ()),
        Err(ClientError::Refused {
            status: 401,
            message: "authentication_error: invalid x-api-key".to_owned()
        })
    );
    // Plain HTTP goes to loopback only.
    let remote = ProviderClient::new(ClientSettings {
        provider: Provider::OpenAi,
        endpoint: "http://10.0.0.9:8000/v1".to_owned(),
        api_key: None,
        timeout: Duration::from_secs(5),
        max_retries: 0,
        max_retry_wait: Duration::from_secs(1),
        remote: false,
    });
    assert_eq!(
        remote.map(|_| ()),
        Err(ClientError::BadEndpoint(
            "http://10.0.0.9:8000/v1".to_owned()
        ))
    );
}

#[tokio::test]
async fn the_official_sdks_agree_with_the_peer_and_with_our_requests() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    let catalog = catalog();
    let dir = tempfile::tempdir().expect("tempdir");
    let anthropic = prepare_for(Provider::Anthropic, &catalog, &default_params(), &history());
    let openai = prepare_for(Provider::OpenAi, &catalog, &default_params(), &history());
    let a_path = dir.path().join("anthropic.json");
    let o_path = dir.path().join("openai.json");
    std::fs::write(&a_path, &anthropic.body).expect("write");
    std::fs::write(&o_path, &openai.body).expect("write");
    let output = Command::new(peer.python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk_check.py"
        ))
        .arg(peer.port().to_string())
        .arg(FakeLlm::API_KEY)
        .arg(&a_path)
        .arg(&o_path)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(&output.stdout).expect("JSON results");
    assert_eq!(
        results["anthropic_plan"]["tool"], "apply_runbook",
        "{results}"
    );
    assert_eq!(results["anthropic_plan"]["stop_reason"], "tool_use");
    assert_eq!(
        results["anthropic_plan"]["input"]["runbook_id"],
        "LIN-SVC-001"
    );
    assert_eq!(results["openai_plan"]["tool"], "apply_runbook", "{results}");
    assert_eq!(results["openai_plan"]["finish_reason"], "tool_calls");
    let error = |name: &str| {
        (
            results[name]["error"].clone(),
            results[name]["status"].clone(),
        )
    };
    assert_eq!(
        error("anthropic_429"),
        (Value::from("RateLimitError"), Value::from(429))
    );
    assert_eq!(
        error("openai_429"),
        (Value::from("RateLimitError"), Value::from(429))
    );
    assert_eq!(error("anthropic_529").1, Value::from(529), "{results}");
    assert_eq!(
        error("anthropic_bad_key"),
        (Value::from("AuthenticationError"), Value::from(401))
    );
    assert_eq!(
        error("openai_bad_key"),
        (Value::from("AuthenticationError"), Value::from(401))
    );
    assert!(
        results["openai_truncated"]["error"].is_string(),
        "{results}"
    );
    assert_eq!(results["anthropic_prose"], "end_turn");
    // The SDK's own retries honoured the 529's retry-after and got the (tool-less) answer.
    assert_eq!(results["anthropic_retried"], "end_turn", "{results}");
    // What each SDK put on the wire for our parameters is our body, as JSON.
    let requests = peer.requests().expect("log");
    for (api, ours) in [("anthropic", &anthropic.body), ("openai", &openai.body)] {
        let sent = requests
            .iter()
            .find(|r| r["api"] == api)
            .and_then(|r| r["body"].as_str())
            .expect("the SDK's first request");
        let sent: Value = serde_json::from_str(sent).expect("JSON");
        let ours: Value = serde_json::from_str(ours).expect("JSON");
        assert_eq!(sent, ours, "{api}");
    }
}

#[tokio::test]
async fn no_prompt_the_peer_receives_contains_the_planted_phi_says_presidio_too() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    // Presidio is the independent detector: its absence is the shared gate's loud skip or, in CI,
    // a failure.
    let Some(presidio) = test_support::python::reference_python_with("presidio_analyzer") else {
        return;
    };
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        for step in ["plan", "shell", "escalate"] {
            peer.script(&[step]).expect("script");
            let mut guard = Guard::new(guard_settings());
            let _ = consult(&peer, provider, &mut guard).await;
        }
    }
    let requests = peer.requests().expect("log");
    assert_eq!(requests.len(), 6);
    let bodies: Vec<String> = requests
        .iter()
        .map(|r| r["body"].as_str().expect("body").to_owned())
        .collect();
    for body in &bodies {
        for phi in PHI {
            assert!(!body.contains(phi), "`{phi}` reached the peer");
        }
    }
    // Presidio, an independent detector: it finds the PHI in the raw host data (so it works), and
    // nothing of it in the prompts the peer received (the JSON bodies, unescaped).
    let prompts: Vec<String> = bodies
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).expect("JSON");
            v["messages"].to_string() + &v["system"].to_string()
        })
        .collect();
    let raw = observed()["last_log"].as_str().expect("log").to_owned();
    let mut texts = vec![raw];
    texts.extend(prompts);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("texts.json");
    std::fs::write(&path, serde_json::json!({ "texts": texts }).to_string()).expect("write");
    let output = Command::new(&presidio)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/presidio_check.py"
        ))
        .arg(&path)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: Vec<Vec<(String, String, f64)>> =
        serde_json::from_slice(&output.stdout).expect("JSON");
    let raw_kinds: Vec<&str> = found[0].iter().map(|(kind, _, _)| kind.as_str()).collect();
    for kind in [
        "EMAIL_ADDRESS",
        "US_SSN",
        "PHONE_NUMBER",
        "IP_ADDRESS",
        "DATE_TIME",
    ] {
        assert!(
            raw_kinds.contains(&kind),
            "Presidio missed {kind} in the raw data: {:?}",
            found[0]
        );
    }
    for (idx, hits) in found.iter().enumerate().skip(1) {
        assert!(
            hits.is_empty(),
            "Presidio found PHI in prompt {idx}: {hits:?}"
        );
    }
}

#[tokio::test]
async fn remote_mode_posts_the_same_request_to_the_documented_endpoint() {
    let Some(peer) = FakeLlm::start().expect("peer") else {
        return;
    };
    let catalog = catalog();
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let remote = ProviderClient::new(ClientSettings {
            provider,
            endpoint: peer.anthropic_url(),
            api_key: Some(FakeLlm::API_KEY.to_owned()),
            timeout: Duration::from_secs(10),
            max_retries: 0,
            max_retry_wait: Duration::from_secs(1),
            remote: true,
        })
        .expect("client");
        assert_eq!(remote.url(), format!("{}/v1/l2/plan", peer.anthropic_url()));
        let prepared = prepare_for(provider, &catalog, &default_params(), &history());
        let exchange = remote.send(&prepared).await.expect("answered");
        let reply = parse_reply(provider, &exchange.body).expect("the provider's shape");
        let mut checks = Vec::new();
        let verdict = judge_reply(
            &reply,
            &prepared,
            &runbooks(&catalog),
            &guard_settings(),
            &mut checks,
        );
        assert!(
            matches!(verdict, Verdict::Accept(_)),
            "{provider}: {verdict:?}"
        );
        let requests = peer.requests().expect("log");
        let last = requests.last().expect("a request");
        assert_eq!(last["path"], "/v1/l2/plan");
        assert_eq!(last["headers"]["x-osiris-provider"], provider.to_string());
        assert_eq!(last["headers"]["authorization"], "[key]");
        assert_eq!(last["body"].as_str(), Some(prepared.body.as_str()));
    }
}
