//! Delivery: SMTP (STARTTLS or implicit TLS) and HTTPS posts to Slack, Teams, PagerDuty and
//! signed webhooks, with retries and back-off; every attempt is reported for the evidence log.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use model::Severity;

use crate::notification::Notification;
use crate::payload::{self, plain};
use crate::policy::{NotifyPolicy, routes};

/// One configured destination.
#[derive(Clone)]
pub struct Channel {
    /// Name for messages and evidence, e.g. `msp-oncall`.
    pub name: String,
    /// Only notifications at or above this severity go here.
    pub min_severity: Severity,
    pub kind: ChannelKind,
}

/// Where and how a channel delivers. Secrets (passwords, keys, webhook URLs) are read from
/// credential files by the caller; they never appear in `Debug` output or errors.
#[derive(Clone)]
#[non_exhaustive]
pub enum ChannelKind {
    Email {
        server: String,
        port: u16,
        security: EmailSecurity,
        from: String,
        to: Vec<String>,
        username: Option<String>,
        password: Option<String>,
        /// PEM of a CA to trust instead of the system store (a site's own mail relay).
        ca_pem: Option<Vec<u8>>,
    },
    Slack {
        url: String,
    },
    Teams {
        url: String,
    },
    PagerDuty {
        routing_key: String,
        events_url: String,
    },
    Webhook {
        url: String,
        secret: Vec<u8>,
    },
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSecurity {
    /// STARTTLS required (port 587 usually); the session fails rather than continue in clear.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only allowed to a relay on this machine (loopback).
    None,
}

/// Longest one SMTP delivery may take, start to end.
const SMTP_DEADLINE: Duration = Duration::from_secs(60);

/// The documented PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Unix milliseconds.
    pub at_ms: u128,
    /// `Ok(answer)` (e.g. `250 2.0.0 queued`, `202`) or the error.
    pub outcome: Result<String, String>,
}

/// The record of delivering one notification to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channel: String,
    pub kind: &'static str,
    pub delivered: bool,
    pub attempts: Vec<Attempt>,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Worth retrying: network trouble, throttling, a server error.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: the receiver refused the request or the settings are wrong.
    #[error("{0}")]
    Permanent(String),
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind.as_str())
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Email { .. } => "email",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::PagerDuty { .. } => "pagerduty",
            ChannelKind::Webhook { .. } => "webhook",
        }
    }
}

impl Channel {
    /// Problems with the settings, in words that say what to change (empty when usable).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name = &self.name;
        match &self.kind {
            ChannelKind::Email {
                server,
                security,
                from,
                to,
                username,
                password,
                ..
            } => {
                if *security == EmailSecurity::None && !is_loopback(server) {
                    problems.push(format!("channel `{name}`: mail without TLS is only allowed to a relay on this machine; use starttls or tls"));
                }
                if from.parse::<Mailbox>().is_err() {
                    problems.push(format!(
                        "channel `{name}`: from address `{from}` is not an e-mail address"
                    ));
                }
                if to.is_empty() {
                    problems.push(format!(
                        "channel `{name}`: give at least one recipient in `to`"
                    ));
                }
                for rcpt in to.iter().filter(|rcpt| rcpt.parse::<Mailbox>().is_err()) {
                    problems.push(format!(
                        "channel `{name}`: recipient `{rcpt}` is not an e-mail address"
                    ));
                }
                if username.is_some() != password.is_some() {
                    problems.push(format!(
                        "channel `{name}`: give both a user name and a password file, or neither"
                    ));
                }
            }
            ChannelKind::Slack { url }
            | ChannelKind::Teams { url }
            | ChannelKind::Webhook { url, .. } => {
                problems.extend(url_problem(name, url));
            }
            ChannelKind::PagerDuty {
                routing_key,
                events_url,
            } => {
                problems.extend(url_problem(name, events_url));
                if routing_key.len() != 32
                    || !routing_key.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    problems.push(format!("channel `{name}`: the PagerDuty routing key must be the 32-character integration key"));
                }
            }
        }
        problems
    }
}

/// Delivers `n` to `channel` when its severity routes there, retrying transient failures with
/// the policy's back-off. `None` when the channel does not take this severity.
pub async fn deliver(
    channel: &Channel,
    n: &Notification,
    policy: &NotifyPolicy,
) -> Option<Delivery> {
    if !routes(channel.min_severity, n.severity) {
        return None;
    }
    let mut attempts = Vec::new();
    let mut retry = 0;
    loop {
        let result = attempt(channel, n).await;
        let failed_transiently = match &result {
            Ok(_) => None,
            Err(SendError::Transient { retry_after, .. }) => Some(*retry_after),
            Err(SendError::Permanent(_)) => None,
        };
        let ok = result.is_ok();
        attempts.push(Attempt {
            at_ms: now_ms(),
            outcome: result.map_err(|err| err.to_string()),
        });
        if ok {
            tracing::info!(channel = %channel.name, kind = channel.kind.as_str(), key = %n.key, attempts = attempts.len(), "Escalation delivered.");
            return Some(Delivery {
                channel: channel.name.clone(),
                kind: channel.kind.as_str(),
                delivered: true,
                attempts,
            });
        }
        retry += 1;
        let delay = failed_transiently.and_then(|after| policy.backoff(retry, after));
        let Some(delay) = delay else {
            tracing::warn!(channel = %channel.name, kind = channel.kind.as_str(), key = %n.key, attempts = attempts.len(), "Escalation not delivered.");
            return Some(Delivery {
                channel: channel.name.clone(),
                kind: channel.kind.as_str(),
                delivered: false,
                attempts,
            });
        };
        tokio::time::sleep(delay).await;
    }
}

async fn attempt(channel: &Channel, n: &Notification) -> Result<String, SendError> {
    match &channel.kind {
        ChannelKind::Email {
            server,
            port,
            security,
            from,
            to,
            username,
            password,
            ca_pem,
        } => {
            send_mail(
                server,
                *port,
                *security,
                from,
                to,
                username.as_deref().zip(password.as_deref()),
                ca_pem.as_deref(),
                n,
            )
            .await
        }
        ChannelKind::Slack { url } => post(url, &payload::slack(n), &[]).await,
        ChannelKind::Teams { url } => post(url, &payload::teams(n), &[]).await,
        ChannelKind::PagerDuty {
            routing_key,
            events_url,
        } => post(events_url, &payload::pagerduty(n, routing_key), &[]).await,
        ChannelKind::Webhook { url, secret } => {
            let body = payload::webhook(n).to_string();
            let timestamp = (now_ms() / 1000) as i64;
            let signature = payload::sign(secret, timestamp, body.as_bytes());
            post_raw(
                url,
                body,
                &[
                    (payload::TIMESTAMP_HEADER, timestamp.to_string()),
                    (payload::SIGNATURE_HEADER, signature),
                ],
            )
            .await
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site, all fields of one channel"
)]
async fn send_mail(
    server: &str,
    port: u16,
    security: EmailSecurity,
    from: &str,
    to: &[String],
    login: Option<(&str, &str)>,
    ca_pem: Option<&[u8]>,
    n: &Notification,
) -> Result<String, SendError> {
    let permanent =
        |what: &str, err: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {err}"));
    let mut builder = Message::builder()
        .from(
            from.parse::<Mailbox>()
                .map_err(|err| permanent("from address", &err))?,
        )
        .subject(plain(&n.headline()))
        .header(ContentType::TEXT_PLAIN);
    for rcpt in to {
        builder = builder.to(rcpt
            .parse::<Mailbox>()
            .map_err(|err| permanent("recipient", &err))?);
    }
    let body = format!(
        "{}\n\nSite: {}\nDevice: {}\nCheck: {}\nSeverity: {}\nKey: {}\n\n{}\n\n-- \nOsirisCare appliance. Every notification is recorded in the site's evidence log.\n",
        plain(&n.headline()),
        plain(&n.site),
        plain(&n.target),
        plain(&n.check),
        n.severity.as_str(),
        plain(&n.key),
        plain(&n.detail)
    );
    let message = builder
        .body(body)
        .map_err(|err| permanent("building the message", &err))?;
    let tls = match security {
        EmailSecurity::None => Tls::None,
        EmailSecurity::StartTls | EmailSecurity::Tls => {
            let mut params = TlsParameters::builder(server.to_owned());
            if let Some(pem) = ca_pem {
                let cert =
                    Certificate::from_pem(pem).map_err(|err| permanent("CA certificate", &err))?;
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|err| permanent("TLS settings", &err))?;
            if security == EmailSecurity::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if let Some((user, password)) = login {
        // PLAIN only: the password already travels inside TLS, and one mechanism means one clear
        // answer (some servers stall a client that falls back to LOGIN after a refused PLAIN).
        transport = transport
            .credentials(Credentials::new(user.to_owned(), password.to_owned()))
            .authentication(vec![Mechanism::Plain]);
    }
    let transport = transport.build();
    let sent = tokio::time::timeout(SMTP_DEADLINE, transport.send(message))
        .await
        .map_err(|_| SendError::Transient {
            message: format!(
                "mail server {server}:{port} did not finish within {}s",
                SMTP_DEADLINE.as_secs()
            ),
            retry_after: None,
        })?;
    match sent {
        Ok(response) => Ok(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        )),
        Err(err) if err.is_permanent() => Err(SendError::Permanent(format!(
            "mail server {server}:{port} refused: {}",
            error_chain(&err)
        ))),
        Err(err) => Err(SendError::Transient {
            message: format!("mail server {server}:{port}: {}", error_chain(&err)),
            retry_after: None,
        }),
    }
}

async fn post(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, String)],
) -> Result<String, SendError> {
    post_raw(url, body.to_string(), headers).await
}

async fn post_raw(
    url: &str,
    body: String,
    headers: &[(&str, String)],
) -> Result<String, SendError> {
    let parsed = checked_url(url).ok_or_else(|| {
        SendError::Permanent(
            "the URL must start with https:// (plain http only to this machine)".to_owned(),
        )
    })?;
    let client = http_client().map_err(SendError::Permanent)?;
    let mut request = client
        .post(parsed.clone())
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    // Webhook URLs of Slack and Teams carry their secret: name only the host in messages.
    let host = parsed.host_str().unwrap_or("the receiver").to_owned();
    let response = request.send().await.map_err(|err| SendError::Transient {
        message: format!("{host}: {}", error_chain(&err.without_url())),
        retry_after: None,
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(300).collect();
    match status {
        200..=299 => Ok(format!("{status} {}", text.trim())),
        408 | 429 | 500..=599 => Err(SendError::Transient {
            message: format!("{host} answered {status}: {}", text.trim()),
            retry_after,
        }),
        _ => Err(SendError::Permanent(format!(
            "{host} refused the notification ({status}): {}",
            text.trim()
        ))),
    }
}

fn http_client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(builder)
        })
        .map_err(|err| format!("TLS settings: {err}"))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("OsirisCare-appliance")
        .build()
        .map_err(|err| format!("HTTP client: {err}"))
}

fn url_problem(name: &str, url: &str) -> Option<String> {
    match checked_url(url) {
        Some(_) => None,
        None => Some(format!(
            "channel `{name}`: the URL must start with https:// (plain http only to this machine)"
        )),
    }
}

/// `url` parsed by `url::Url` (the parser reqwest uses, so the host checked is the host
/// contacted) if it is `https://` with a host, or `http://` to this machine (a loopback IP or
/// `localhost`) without a user name or password.
fn checked_url(url: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(url).ok()?;
    let allowed = match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(host)) => {
            parsed.username().is_empty()
                && parsed.password().is_none()
                && match host {
                    url::Host::Domain(name) => name == "localhost",
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                }
        }
        _ => false,
    };
    allowed.then_some(parsed)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(|s| s.source());
    }
    text
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::{checked_url, url_problem};

    #[test]
    fn hostile_urls_do_not_pass_as_this_machine() {
        for hostile in [
            "http://127.0.0.1:1@evil.example/",
            "http://127.0.0.1@evil.example/hook",
            "http://localhost:80@evil.example/",
            "http://[::1]@evil.example/",
            "http://evil.example/#@127.0.0.1",
            "http://evil.example/?x=http://127.0.0.1/",
            "http://evil.example\\@127.0.0.1/",
            "http://127.0.0.1.evil.example/",
            "http://localhost.evil.example/",
            "http://10.0.0.5/hook",
            "http://[::ffff:10.0.0.5]/",
            "http://user:pw@127.0.0.1/",
            "ftp://127.0.0.1/",
            "https://",
            "hooks.slack.com/services/x",
        ] {
            assert!(checked_url(hostile).is_none(), "{hostile} accepted");
            assert!(url_problem("alerts", hostile).is_some(), "{hostile}");
        }
        for fine in [
            "https://hooks.slack.com/services/T0/B0/x",
            "https://user@webhook.example:8443/in",
            "http://127.0.0.1:8080/hook",
            "http://127.9.9.9/hook",
            "http://[::1]:9/",
            "http://localhost:3000/",
        ] {
            assert!(url_problem("alerts", fine).is_none(), "{fine} refused");
        }
        let parsed = checked_url("http://127.0.0.1:1/x").unwrap();
        assert_eq!(parsed.host_str(), Some("127.0.0.1"));
    }
}
