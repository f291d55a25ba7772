//! Wire payloads for each channel, from the vendors' documented formats, and the HMAC signature
//! of the generic webhook.
//!
//! - Slack incoming webhooks: JSON with `text` (fallback) and Block Kit `blocks`; answer `200 ok`.
//! - Microsoft Teams (Workflows incoming webhook): a `message` with one Adaptive Card attachment.
//! - PagerDuty Events API v2: `trigger` event with `routing_key`, `dedup_key` and `payload`
//!   (`summary` ≤ 1024 chars, `source`, `severity` one of critical/error/warning/info).
//! - Generic webhook: our JSON document, signed: `X-Osiris-Signature: v1=<hex HMAC-SHA256(secret,
//!   "<timestamp>.<body>")>` with `X-Osiris-Timestamp: <unix seconds>`.
//!
//! Titles, host names and details carry text from targets and the directory (a domain user can
//! name a computer, a compromised host can print anything), so every field is escaped for the
//! format it lands in: Slack mrkdwn gets `&`, `<`, `>` escaped (no `<!channel>`, no disguised
//! `<url|text>` links) and the detail goes as `plain_text`; Teams text gets CommonMark backslash
//! escapes (no `[text](url)` links, no formatting) and no `{{` template functions; control
//! characters other than newline and tab are written as `\u{..}` everywhere. E-mail is
//! `text/plain` (see `channel`), so HTML in it is shown, never rendered.

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
        "text": slack_escape(&n.headline()),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&plain(&n.headline()), 150)}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Site*\n{}", slack_escape(&n.site))},
                {"type": "mrkdwn", "text": format!("*Device*\n{}", slack_escape(&n.target))},
                {"type": "mrkdwn", "text": format!("*Check*\n{}", slack_escape(&n.check))},
                {"type": "mrkdwn", "text": format!("*Severity*\n{}", n.severity.as_str())},
            ]},
            {"type": "section", "text": {"type": "plain_text", "emoji": false, "text": truncate(&plain(&n.detail), 3000)}},
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
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": teams_escape(&n.headline())},
                    {"type": "FactSet", "facts": [
                        {"title": "Site", "value": teams_escape(&n.site)},
                        {"title": "Device", "value": teams_escape(&n.target)},
                        {"title": "Check", "value": teams_escape(&n.check)},
                        {"title": "Severity", "value": n.severity.as_str()},
                    ]},
                    {"type": "TextBlock", "wrap": true, "text": teams_escape(&n.detail)},
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

/// `text` with control characters other than newline and tab written as `\u{..}`, so no
/// terminal escape, carriage return or NUL from a target reaches a reader.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for Slack `mrkdwn`: Slack's three control characters escaped as it documents, so
/// `<!channel>`, `<@U123>` and `<http://evil|click here>` arrive as text.
fn slack_escape(text: &str) -> String {
    plain(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for an Adaptive Card `TextBlock` or fact: every ASCII punctuation character that
/// Markdown gives a meaning gets a CommonMark backslash escape, so `[click](http://evil)`,
/// `**bold**` and `# heading` arrive as text; `{{` (the card's date/time functions) is split.
fn teams_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = '\0';
    for c in plain(text).chars() {
        if c == '{' && prev == '{' {
            // A zero-width space keeps `{{DATE(...)}}` from being evaluated.
            out.push('\u{200b}');
        }
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '+'
                | '-'
                | '.'
                | '!'
                | '<'
                | '>'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
        prev = c;
    }
    out
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

    fn hostile() -> Notification {
        Notification {
            target: "ws9 <!channel>".to_owned(),
            title: "Firewall off <!here> [login](http://evil.example/)".to_owned(),
            detail: "output: <!channel> <http://evil.example|click to re-enable the firewall> \
                     [verify your account](http://evil.example/) **URGENT** {{DATE(2017-02-14T06:08:39Z, SHORT)}} \
                     <b>html</b>\u{1b}[31m red\r\nBcc: x@evil.example"
                .to_owned(),
            ..note()
        }
    }

    /// Every string a chat service would render from `value`.
    fn texts(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(text) => out.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| texts(item, out)),
            Value::Object(map) => map.values().for_each(|item| texts(item, out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_target_output_cannot_ping_link_or_format_in_slack() {
        let body = slack(&hostile());
        let mut all = Vec::new();
        texts(&body, &mut all);
        for text in &all {
            assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        }
        // What Slack parses as mrkdwn: the fallback text and the fields.
        let mut mrkdwn = Vec::new();
        texts(&body["text"], &mut mrkdwn);
        texts(&body["blocks"][1], &mut mrkdwn);
        for text in &mrkdwn {
            assert!(!text.contains("<!"), "{text}");
            assert!(!text.contains("<http"), "{text}");
        }
        // The detail is plain text, not mrkdwn; the mrkdwn fields are escaped.
        assert_eq!(body["blocks"][2]["text"]["type"], "plain_text");
        assert!(
            body["blocks"][2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("<http://evil.example|click")
        );
        assert_eq!(
            body["blocks"][1]["fields"][1]["text"],
            "*Device*\nws9 &lt;!channel&gt;"
        );
        assert!(body["text"].as_str().unwrap().contains("&lt;!here&gt;"));
    }

    #[test]
    fn hostile_target_output_cannot_link_or_format_in_teams() {
        let body = teams(&hostile());
        let card = &body["attachments"][0]["content"]["body"];
        let detail = card[2]["text"].as_str().unwrap();
        assert!(!detail.contains("](http"), "{detail}");
        assert!(
            detail.contains("\\[verify your account\\]\\(http://evil\\.example/\\)"),
            "{detail}"
        );
        assert!(detail.contains("\\*\\*URGENT\\*\\*"), "{detail}");
        assert!(!detail.contains("{{"), "{detail}");
        assert!(
            !detail.contains('\u{1b}') && !detail.contains('\r'),
            "{detail:?}"
        );
        let title = card[0]["text"].as_str().unwrap();
        assert!(!title.contains("](http"), "{title}");
        assert_eq!(card[1]["facts"][1]["value"], "ws9 \\<\\!channel\\>");
    }
}
