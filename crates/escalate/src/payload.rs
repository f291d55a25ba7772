//! Wire payloads for each channel, from the vendors' documented formats, and the HMAC signature
//! of the generic webhook.
//!
//! - Slack incoming webhooks: JSON with `text` (fallback) and Block Kit `blocks`; answer `200 ok`.
//! - Microsoft Teams (Workflows incoming webhook): a `message` with one Adaptive Card attachment.
//! - PagerDuty Events API v2: `trigger` event with `routing_key`, `dedup_key` and `payload`
//!   (`summary` ≤ 1024 chars, `source`, `severity` one of critical/error/warning/info).
//! - Generic webhook: our JSON document, signed: `X-Osiris-Signature: v1=<hex HMAC-SHA256(secret,
//!   "<timestamp>.<body>")>` with `X-Osiris-Timestamp: <unix seconds>`.

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use model::Severity;

use crate::notification::Notification;

/// Header carrying the webhook signature.
pub const SIGNATURE_HEADER: &str = "X-Osiris-Signature";
/// Header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "X-Osiris-Timestamp";

/// The Slack incoming-webhook body.
pub fn slack(n: &Notification) -> Value {
    json!({
        "text": n.headline(),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&n.headline(), 150)}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Site*\n{}", n.site)},
                {"type": "mrkdwn", "text": format!("*Device*\n{}", n.target)},
                {"type": "mrkdwn", "text": format!("*Check*\n{}", n.check)},
                {"type": "mrkdwn", "text": format!("*Severity*\n{}", n.severity.as_str())},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&n.detail, 3000)}},
        ],
    })
}

/// The Teams (Workflows) incoming-webhook body: one Adaptive Card.
pub fn teams(n: &Notification) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": n.headline()},
                    {"type": "FactSet", "facts": [
                        {"title": "Site", "value": n.site},
                        {"title": "Device", "value": n.target},
                        {"title": "Check", "value": n.check},
                        {"title": "Severity", "value": n.severity.as_str()},
                    ]},
                    {"type": "TextBlock", "wrap": true, "text": n.detail},
                ],
            },
        }],
    })
}

/// The PagerDuty Events API v2 body.
pub fn pagerduty(n: &Notification, routing_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": n.key,
        "payload": {
            "summary": truncate(&n.headline(), 1024),
            "source": n.target,
            "severity": pagerduty_severity(n.severity),
            "component": n.check,
            "group": n.site,
            "class": "compliance-drift",
            "custom_details": {"detail": n.detail, "opened_at": n.opened_at, "reminder": n.reminder},
        },
        "client": "OsirisCare appliance",
    })
}

/// The generic webhook's JSON document.
pub fn webhook(n: &Notification) -> Value {
    json!({
        "osiris_notification": 1,
        "key": n.key,
        "site": n.site,
        "target": n.target,
        "check": n.check,
        "severity": n.severity.as_str(),
        "title": n.title,
        "detail": n.detail,
        "opened_at": n.opened_at,
        "reminder": n.reminder,
    })
}

/// `v1=<hex>`: HMAC-SHA256 over `"<timestamp>.<body>"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a received webhook (for receivers, and our tests): constant-time comparison, and the
/// timestamp within `tolerance_secs` of `now` so a captured request cannot be replayed later.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    let Some(hex_sig) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max_chars => format!("{}…", &text[..cut]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Notification {
        Notification {
            key: "lab/win1/WIN-FW-001".to_owned(),
            site: "lab".to_owned(),
            target: "win1".to_owned(),
            check: "WIN-FW-001".to_owned(),
            severity: Severity::High,
            title: "Windows Firewall is off".to_owned(),
            detail: "x".repeat(5000),
            opened_at: 1_700_000_000,
            reminder: false,
        }
    }

    #[test]
    fn pagerduty_events_follow_the_v2_schema() {
        let body = pagerduty(&note(), "R0UT1NGKEY0000000000000000000000");
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], "lab/win1/WIN-FW-001");
        assert_eq!(body["payload"]["severity"], "error");
        assert_eq!(body["payload"]["source"], "win1");
        assert!(
            body["payload"]["summary"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .count()
                <= 1024
        );
    }

    #[test]
    fn slack_limits_are_respected() {
        let body = slack(&note());
        let detail = body["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(detail.chars().count(), 3000);
        assert!(
            body["text"]
                .as_str()
                .unwrap_or_default()
                .contains("[OsirisCare HIGH]")
        );
    }

    #[test]
    fn webhook_signatures_verify_and_detect_tampering_and_replay() {
        let body = br#"{"k":1}"#;
        let sig = sign(b"secret", 1000, body);
        assert!(verify(b"secret", 1000, body, &sig, 1010, 300));
        assert!(!verify(b"other", 1000, body, &sig, 1010, 300));
        assert!(!verify(b"secret", 1000, br#"{"k":2}"#, &sig, 1010, 300));
        assert!(!verify(b"secret", 1001, body, &sig, 1010, 300));
        assert!(
            !verify(b"secret", 1000, body, &sig, 2000, 300),
            "replayed late"
        );
        assert!(!verify(b"secret", 1000, body, "v1=zz", 1010, 300));
        // RFC 4231 test case 2 ("Jefe") checks the primitive itself.
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"Jefe")
            .unwrap_or_else(|_| unreachable!());
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
