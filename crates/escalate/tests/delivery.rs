//! Escalations delivered to real peers: a real SMTP server (aiosmtpd, STARTTLS required, AUTH)
//! and local HTTP receivers that check each vendor's documented payload and our HMAC signature.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use escalate::{Channel, ChannelKind, EmailSecurity, Notification, NotifyPolicy, deliver, payload};
use model::Severity;

fn note(severity: Severity) -> Notification {
    Notification {
        key: "clinic/win1/WIN-FW-001".to_owned(),
        site: "clinic".to_owned(),
        target: "win1".to_owned(),
        check: "WIN-FW-001".to_owned(),
        severity,
        title: "Windows Firewall is off on win1".to_owned(),
        detail: "The Public profile is disabled. The fix did not hold; rolled back. Check the GPO."
            .to_owned(),
        opened_at: 1_764_300_000,
        reminder: false,
    }
}

fn quick_policy() -> NotifyPolicy {
    NotifyPolicy {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_attempts: 3,
        ..NotifyPolicy::default()
    }
}

fn email(port: u16, password: &str, ca: Option<Vec<u8>>) -> Channel {
    Channel {
        name: "office-manager".to_owned(),
        min_severity: Severity::Medium,
        kind: ChannelKind::Email {
            server: "127.0.0.1".to_owned(),
            port,
            security: EmailSecurity::StartTls,
            from: "OsirisCare <appliance@clinic.example>".to_owned(),
            to: vec![
                "it@msp.example".to_owned(),
                "manager@clinic.example".to_owned(),
            ],
            username: Some("alerts@clinic.example".to_owned()),
            password: Some(password.to_owned()),
            ca_pem: ca,
        },
    }
}

#[tokio::test]
async fn mail_goes_to_a_real_smtp_server_over_starttls_with_auth() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    test_support::smtp::pki(dir.path());
    let smtp = test_support::smtp::Smtp::start(
        &python,
        dir.path(),
        "alerts@clinic.example",
        "smtp-Passw0rd",
    );
    let maildir = smtp.maildir.clone();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();

    let delivery = deliver(
        &email(smtp.port, "smtp-Passw0rd", Some(ca.clone())),
        &note(Severity::High),
        &quick_policy(),
    )
    .await
    .unwrap();
    assert!(delivery.delivered, "{delivery:?}");
    assert_eq!(delivery.attempts.len(), 1);
    assert!(
        delivery.attempts[0]
            .outcome
            .as_ref()
            .unwrap()
            .starts_with("250"),
        "{delivery:?}"
    );
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(maildir.join("0001.json")).unwrap()).unwrap();
    assert_eq!(envelope["tls"], true);
    assert_eq!(envelope["authenticated"], true);
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["it@msp.example", "manager@clinic.example"])
    );
    let mail = String::from_utf8(std::fs::read(maildir.join("0001.eml")).unwrap()).unwrap();
    assert!(
        mail.contains("Subject: [OsirisCare HIGH] Windows Firewall is off on win1 (clinic)"),
        "{mail}"
    );
    assert!(mail.contains("Check: WIN-FW-001"), "{mail}");

    // Below the channel's minimum severity: not sent at all.
    assert!(
        deliver(
            &email(smtp.port, "smtp-Passw0rd", Some(ca.clone())),
            &note(Severity::Low),
            &quick_policy()
        )
        .await
        .is_none()
    );

    // A wrong password is refused permanently: one attempt, the server's words, nothing stored.
    let refused = deliver(
        &email(smtp.port, "wrong", Some(ca)),
        &note(Severity::High),
        &quick_policy(),
    )
    .await
    .unwrap();
    assert!(!refused.delivered);
    assert_eq!(refused.attempts.len(), 1, "{refused:?}");
    let reason = refused.attempts[0].outcome.as_ref().unwrap_err();
    assert!(reason.contains("535"), "{reason}");
    assert!(
        !reason.contains("wrong"),
        "the password leaked into {reason}"
    );

    // The server's certificate is not trusted without its CA: no mail in clear, retried, then given up.
    let untrusted = deliver(
        &email(smtp.port, "smtp-Passw0rd", None),
        &note(Severity::High),
        &quick_policy(),
    )
    .await
    .unwrap();
    assert!(!untrusted.delivered);
    assert!(
        untrusted.attempts[0]
            .outcome
            .as_ref()
            .unwrap_err()
            .to_lowercase()
            .contains("certificate"),
        "{untrusted:?}"
    );
    assert_eq!(
        std::fs::read_dir(&maildir).unwrap().count(),
        2,
        "only the first mail arrived"
    );
}

/// Issue 14: output from a compromised target (or a computer name chosen by a domain user)
/// must not add headers or recipients to the mail, nor arrive as HTML.
#[tokio::test]
async fn hostile_target_output_in_mail_is_plain_text_and_adds_no_headers() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    test_support::smtp::pki(dir.path());
    let smtp = test_support::smtp::Smtp::start(
        &python,
        dir.path(),
        "alerts@clinic.example",
        "smtp-Passw0rd",
    );
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let hostile = Notification {
        title: "Firewall off\r\nBcc: thief@evil.example\r\nX-Injected: 1".to_owned(),
        detail: "<html><body><a href=\"http://evil.example/\">Re-enable the firewall</a></body></html>\n\r\n.\r\nMAIL FROM:<x@evil.example>\u{1b}[2J"
            .to_owned(),
        ..note(Severity::High)
    };
    let delivery = deliver(
        &email(smtp.port, "smtp-Passw0rd", Some(ca)),
        &hostile,
        &quick_policy(),
    )
    .await
    .unwrap();
    assert!(delivery.delivered, "{delivery:?}");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(smtp.maildir.join("0001.json")).unwrap()).unwrap();
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["it@msp.example", "manager@clinic.example"])
    );
    assert_eq!(
        std::fs::read_dir(&smtp.maildir).unwrap().count(),
        2,
        "one mail only"
    );
    let mail = String::from_utf8(std::fs::read(smtp.maildir.join("0001.eml")).unwrap()).unwrap();
    let (headers, _) = mail
        .split_once("\r\n\r\n")
        .or_else(|| mail.split_once("\n\n"))
        .unwrap();
    for line in headers.lines() {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("X-Injected:"),
            "{mail}"
        );
    }
    assert!(headers.contains("Content-Type: text/plain"), "{mail}");
    assert!(!mail.contains('\u{1b}'), "{mail}");
}

/// What the HTTP receiver saw.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, HeaderMap, Vec<u8>)>,
    fail_first: u32,
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> String {
    use axum::routing::post;
    let handler = |path: &'static str| {
        let seen = Arc::clone(&seen);
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().unwrap();
                seen.requests
                    .push((path.to_owned(), headers.clone(), body.to_vec()));
                if seen.fail_first > 0 {
                    seen.fail_first -= 1;
                    return (StatusCode::SERVICE_UNAVAILABLE, "try later".to_owned());
                }
                check_payload(path, &headers, &body)
            }
        }
    };
    let app = axum::Router::new()
        .route("/slack/T000/B000/XXXX", post(handler("slack")))
        .route("/teams/workflow", post(handler("teams")))
        .route("/v2/enqueue", post(handler("pagerduty")))
        .route("/hook", post(handler("webhook")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Answers like each vendor does, after checking the fields the vendor requires.
fn check_payload(path: &str, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload".to_owned());
    };
    match path {
        "slack" if json["text"].is_string() && json["blocks"].is_array() => {
            (StatusCode::OK, "ok".to_owned())
        }
        "slack" => (StatusCode::BAD_REQUEST, "invalid_payload".to_owned()),
        "teams"
            if json["type"] == "message"
                && json["attachments"][0]["content"]["type"] == "AdaptiveCard" =>
        {
            (StatusCode::ACCEPTED, String::new())
        }
        "teams" => (StatusCode::BAD_REQUEST, "Bad payload".to_owned()),
        "pagerduty" => {
            let key_ok = json["routing_key"].as_str().is_some_and(|k| k.len() == 32);
            let sev_ok = ["critical", "error", "warning", "info"]
                .contains(&json["payload"]["severity"].as_str().unwrap_or_default());
            if key_ok
                && sev_ok
                && json["event_action"] == "trigger"
                && json["payload"]["summary"].is_string()
                && json["payload"]["source"].is_string()
            {
                (StatusCode::ACCEPTED, serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": json["dedup_key"]}).to_string())
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    r#"{"status":"invalid event","message":"Event object is invalid"}"#.to_owned(),
                )
            }
        }
        "webhook" => {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let timestamp: i64 = header(payload::TIMESTAMP_HEADER)
                .parse()
                .unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            if payload::verify(
                b"hook-secret",
                timestamp,
                body,
                &header(payload::SIGNATURE_HEADER),
                now,
                300,
            ) {
                (StatusCode::NO_CONTENT, String::new())
            } else {
                (StatusCode::UNAUTHORIZED, "bad signature".to_owned())
            }
        }
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

fn channel(kind: ChannelKind) -> Channel {
    Channel {
        name: "msp".to_owned(),
        min_severity: Severity::Low,
        kind,
    }
}

#[tokio::test]
async fn chat_paging_and_signed_webhooks_match_their_receivers() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let base = receiver(Arc::clone(&seen)).await;
    let n = note(Severity::Critical);
    let policy = quick_policy();
    let channels = [
        ChannelKind::Slack {
            url: format!("{base}/slack/T000/B000/XXXX"),
        },
        ChannelKind::Teams {
            url: format!("{base}/teams/workflow"),
        },
        ChannelKind::PagerDuty {
            routing_key: "R0UT1NGKEY0000000000000000000000".to_owned(),
            events_url: format!("{base}/v2/enqueue"),
        },
        ChannelKind::Webhook {
            url: format!("{base}/hook"),
            secret: b"hook-secret".to_vec(),
        },
    ];
    for kind in channels {
        let channel = channel(kind);
        assert!(channel.problems().is_empty(), "{:?}", channel.problems());
        let delivery = deliver(&channel, &n, &policy).await.unwrap();
        assert!(delivery.delivered, "{delivery:?}");
        assert_eq!(delivery.attempts.len(), 1);
    }
    let pd = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|r| r.0 == "pagerduty")
        .map(|r| r.2.clone())
        .unwrap();
    let pd: serde_json::Value = serde_json::from_slice(&pd).unwrap();
    assert_eq!(pd["dedup_key"], "clinic/win1/WIN-FW-001");
    assert_eq!(pd["payload"]["severity"], "critical");

    // A wrong HMAC secret is refused by the receiver: permanent, not retried.
    let forged = deliver(
        &channel(ChannelKind::Webhook {
            url: format!("{base}/hook"),
            secret: b"guess".to_vec(),
        }),
        &n,
        &policy,
    )
    .await
    .unwrap();
    assert!(!forged.delivered);
    assert_eq!(forged.attempts.len(), 1);
    assert!(
        forged.attempts[0]
            .outcome
            .as_ref()
            .unwrap_err()
            .contains("401"),
        "{forged:?}"
    );

    // A receiver that is briefly unavailable gets retries with back-off, then the delivery lands.
    seen.lock().unwrap().fail_first = 2;
    let retried = deliver(
        &channel(ChannelKind::Slack {
            url: format!("{base}/slack/T000/B000/XXXX"),
        }),
        &n,
        &policy,
    )
    .await
    .unwrap();
    assert!(retried.delivered, "{retried:?}");
    assert_eq!(retried.attempts.len(), 3);
    assert!(
        retried.attempts[0]
            .outcome
            .as_ref()
            .unwrap_err()
            .contains("503")
    );
}

#[test]
fn unsafe_channel_settings_are_refused_with_what_to_change() {
    let problems = |kind| channel(kind).problems().join("\n");
    assert!(
        problems(ChannelKind::Slack {
            url: "http://hooks.slack.com/services/x".to_owned()
        })
        .contains("https://")
    );
    assert!(
        problems(ChannelKind::PagerDuty {
            routing_key: "short".to_owned(),
            events_url: escalate::channel::PAGERDUTY_EVENTS_URL.to_owned()
        })
        .contains("32-character")
    );
    let mail = ChannelKind::Email {
        server: "mail.example.com".to_owned(),
        port: 25,
        security: EmailSecurity::None,
        from: "not an address".to_owned(),
        to: vec![],
        username: Some("u".to_owned()),
        password: None,
        ca_pem: None,
    };
    let text = problems(mail);
    for want in [
        "without TLS",
        "not an e-mail address",
        "at least one recipient",
        "both a user name and a password",
    ] {
        assert!(text.contains(want), "{text}");
    }
}
