//! Remote L2 through Central Command (`POST /v1/l2/plan`): the appliance's own client in
//! `mode = "remote"` sends a scrubbed request with its L2 key; Central Command relays it to the
//! provider (the local LLM API peer) with its own API key and model, and charges the partner
//! exactly the tokens the provider reported; unknown, revoked and injected keys are refused; one
//! partner's spent budget refuses its appliances and not another partner's.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use test_support::llm::FakeLlm;
use test_support::postgres::PgServer;

const PW: &str = "correct horse battery staple 42";

fn appliance_client(base: &str, key: &str, provider: l2::Provider) -> l2::ProviderClient {
    l2::ProviderClient::new(l2::ClientSettings {
        provider,
        endpoint: base.to_owned(),
        api_key: Some(key.to_owned()),
        timeout: Duration::from_secs(20),
        max_retries: 1,
        max_retry_wait: Duration::from_secs(5),
        remote: true,
    })
    .unwrap()
}

/// What an appliance sends for a failed LIN-SSH-001, prepared by the appliance's own code.
fn request(catalog: &catalog::Catalog, provider: l2::Provider) -> l2::Prepared {
    let check = catalog.get("LIN-SSH-001").unwrap();
    let observed = serde_json::json!({"permit_root_login": "yes"});
    let runbooks: Vec<&model::Runbook> = catalog.runbooks().iter().collect();
    l2::prepare(
        &l2::Incident {
            host: "pc1",
            platform: model::Platform::Linux,
            check,
            params: &[],
            observed: &observed,
            reason: "permit_root_login is yes",
            host_facts: &[],
            history: &[],
            l1: "no L1 rule",
        },
        &runbooks,
        &l2::RequestSettings {
            provider,
            model: "the-appliance-model",
            max_tokens: 1024,
            known_hosts: &["pc1"],
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_relays_within_each_partners_budget_and_refuses_strangers() {
    let Some(pg) =
        PgServer::start("central_relays_within_each_partners_budget_and_refuses_strangers")
    else {
        return;
    };
    let Some(peer) = FakeLlm::start().unwrap() else {
        return;
    };
    let url = pg.create_database("central");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .unwrap();
    central::db::migrate(&pool).await.unwrap();
    let mut appliances = Vec::new();
    for (name, admin) in [
        ("Acme IT", "admin@1.example"),
        ("Beta MSP", "admin@2.example"),
    ] {
        let partner = central::admin::create_partner(&pool, name, admin, PW, "test")
            .await
            .unwrap();
        let seeded = central::demo::seed(
            &pool,
            partner.partner_id,
            central::demo::Sizes {
                sites: 1,
                devices: 1,
            },
        )
        .await
        .unwrap();
        let key = central::admin::create_l2_key(&pool, seeded.first_appliance, "test")
            .await
            .unwrap();
        appliances.push((partner.partner_id, seeded.first_appliance, key));
    }
    let (acme, acme_appliance, acme_key) = &appliances[0];
    let (beta, _, beta_key) = &appliances[1];

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("provider.key");
    std::fs::write(&key_file, format!("{}\n", FakeLlm::API_KEY)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let settings = central::config::L2 {
        provider: l2::Provider::Anthropic,
        endpoint: peer.anthropic_url(),
        model: "central-model".to_owned(),
        api_key_file: key_file.clone(),
        input_micro_usd_per_mtok: 3_000_000,
        output_micro_usd_per_mtok: 15_000_000,
        max_tokens: 512,
        timeout_secs: 10,
        partner_daily_tokens: 1_000_000,
        partner_daily_micro_usd: 5_000_000,
    };
    // A provider key others can read is refused at start.
    let err = central::l2_relay::L2Relay::new(&settings).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let relay = central::l2_relay::L2Relay::new(&settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = central::server::AppState {
        pool: pool.clone(),
        link: None,
        l2: Some(std::sync::Arc::new(relay)),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(central::server::serve_plain(listener, state, async {
        let _ = stopped.await;
    }));

    let catalog = catalog::embedded().unwrap();
    let prepared = request(&catalog, l2::Provider::Anthropic);

    // The appliance's request reaches the provider with Central Command's key and model, capped.
    let exchange = appliance_client(&base, acme_key, l2::Provider::Anthropic)
        .send(&prepared)
        .await
        .unwrap();
    let reply = l2::parse_reply(l2::Provider::Anthropic, &exchange.body).unwrap();
    assert!(!reply.tool_calls.is_empty(), "{reply:?}");
    let usage = l2::usage_only(l2::Provider::Anthropic, &exchange.body).unwrap();
    let seen = peer.requests().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last["path"], "/v1/messages");
    assert_eq!(last["headers"]["x-api-key"], "[key]");
    let sent: serde_json::Value = serde_json::from_str(last["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["model"], "central-model");
    assert_eq!(sent["max_tokens"], 512);
    let mine: serde_json::Value = serde_json::from_str(&prepared.body).unwrap();
    assert_eq!(
        sent["messages"], mine["messages"],
        "the prompt goes unchanged"
    );
    assert_eq!(sent["tools"], mine["tools"]);

    // Charged exactly what the provider reported, to Acme only.
    let usage_rows = |partner: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64, i64)>(
                "SELECT tokens, pico_usd, requests, refused FROM l2_usage WHERE partner_id = $1",
            )
            .bind(partner)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let tokens = i64::try_from(usage.input_tokens + usage.output_tokens).unwrap();
    let pico =
        i64::try_from(usage.input_tokens * 3_000_000 + usage.output_tokens * 15_000_000).unwrap();
    assert_eq!(usage_rows(*acme).await, vec![(tokens, pico, 1, 0)]);
    assert_eq!(usage_rows(*beta).await, vec![]);

    // Strangers: an unknown key, keys that try SQL and JSON injection, the wrong provider.
    for key in ["osl2_0000", "' OR 1=1 --", "x\" , \"y"] {
        let err = appliance_client(&base, key, l2::Provider::Anthropic)
            .send(&prepared)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, l2::ClientError::Refused { status: 401, message } if message.contains("unknown or revoked")),
            "{key}: {err}"
        );
    }
    let openai = request(&catalog, l2::Provider::OpenAi);
    let err = appliance_client(&base, acme_key, l2::Provider::OpenAi)
        .send(&openai)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, l2::ClientError::Refused { status: 400, message } if message.contains("relays to anthropic")),
        "{err}"
    );
    let calls = peer.requests().unwrap().len();

    // Acme's budget leaves room for less than this request's worst case: refused until midnight
    // UTC, never forwarded; Beta's appliance is not affected.
    central::admin::set_l2_budget(
        &pool,
        *acme,
        u64::try_from(tokens).unwrap() + 100,
        5_000_000,
        "test",
    )
    .await
    .unwrap();
    let err = appliance_client(&base, acme_key, l2::Provider::Anthropic)
        .send(&prepared)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, l2::ClientError::RetryTooLate { status: 429, .. }),
        "{err}"
    );
    assert_eq!(peer.requests().unwrap().len(), calls, "not forwarded");
    assert_eq!(usage_rows(*acme).await, vec![(tokens, pico, 1, 1)]);
    appliance_client(&base, beta_key, l2::Provider::Anthropic)
        .send(&prepared)
        .await
        .unwrap();
    assert_eq!(usage_rows(*beta).await.len(), 1);

    // A revoked key is refused.
    assert_eq!(
        central::admin::revoke_l2_keys(&pool, *acme_appliance, "test")
            .await
            .unwrap(),
        1
    );
    let err = appliance_client(&base, acme_key, l2::Provider::Anthropic)
        .send(&prepared)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, l2::ClientError::Refused { status: 401, .. }),
        "{err}"
    );
    let listed = central::admin::l2_usage(&pool).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|row| row.partner == "Acme IT" && row.refused == 1)
    );
    let _ = stop.send(());
}
