//! The HTTPS call to a provider (the crate's only IO): the prepared body posted with the API
//! key in the provider's header, a timeout per attempt, retries on 429, 500, 502, 503, 504 and
//! Anthropic's 529 that honour `retry-after` (or `retry-after-ms`) up to a cap, and errors that
//! name what went wrong. Plain `http://` only to a loopback address (a local model server).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::reply::error_message;
use crate::request::{Prepared, Provider};

/// How to reach the provider.
#[derive(Clone)]
pub struct ClientSettings {
    pub provider: Provider,
    /// The base URL as the official SDKs take it: `https://api.anthropic.com` (we add
    /// `/v1/messages`) or `https://api.openai.com/v1` (we add `/chat/completions`).
    pub endpoint: String,
    /// The API key; `None` for a local server that wants none.
    pub api_key: Option<String>,
    /// Per attempt, connect to last byte.
    pub timeout: Duration,
    /// Further attempts after a retryable answer.
    pub max_retries: u32,
    /// A `retry-after` longer than this ends the call instead of waiting.
    pub max_retry_wait: Duration,
    /// Remote L2 (`mode = "remote"`): post to `{endpoint}/v1/l2/plan` (Central Command's
    /// planner, docs/L2.md "Remote L2") with the provider named in `x-osiris-provider` and the
    /// key as a bearer token, instead of to the provider's own path.
    pub remote: bool,
}

/// A client for one provider endpoint.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    url: url::Url,
    settings: ClientSettings,
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub body: Vec<u8>,
    /// Attempts made, 1 when the first succeeded.
    pub attempts: u32,
}

/// One answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `retry-after-ms` or `retry-after`, when the provider sent one.
    pub wait: Option<Duration>,
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint is not usable.
    #[error("l2 endpoint `{0}` must be an https:// URL (plain http:// only to a loopback address)")]
    BadEndpoint(String),
    /// The HTTP client could not be built.
    #[error("building the HTTPS client: {0}")]
    Setup(String),
    /// No answer within the timeout.
    #[error("the provider did not answer within {0} s")]
    Timeout(u64),
    /// The connection failed.
    #[error("could not reach the provider: {0}")]
    Connect(String),
    /// A non-retryable HTTP status (401, 400, …).
    #[error("the provider refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// Retryable, but the provider asks to wait longer than allowed.
    #[error(
        "the provider is overloaded or rate-limiting (HTTP {status}) and asks to retry after {wait_secs} s, more than the {cap_secs} s allowed"
    )]
    RetryTooLate {
        status: u16,
        wait_secs: u64,
        cap_secs: u64,
    },
    /// Retryable answers on every attempt.
    #[error(
        "the provider is still overloaded or rate-limiting after {attempts} attempts (HTTP {status}): {message}"
    )]
    Exhausted {
        attempts: u32,
        status: u16,
        message: String,
    },
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("remote", &self.remote)
            .finish()
    }
}

impl ProviderClient {
    pub fn new(settings: ClientSettings) -> Result<ProviderClient, ClientError> {
        let base = checked_url(&settings.endpoint)
            .ok_or_else(|| ClientError::BadEndpoint(settings.endpoint.clone()))?;
        let path = match (settings.remote, settings.provider) {
            (true, _) => "v1/l2/plan",
            (false, Provider::Anthropic) => "v1/messages",
            (false, Provider::OpenAi) => "chat/completions",
        };
        let mut base_text = base.to_string();
        if !base_text.ends_with('/') {
            base_text.push('/');
        }
        let url = url::Url::parse(&base_text)
            .and_then(|b| b.join(path))
            .map_err(|_| ClientError::BadEndpoint(settings.endpoint.clone()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(builder)
            })
            .map_err(|err| ClientError::Setup(format!("TLS settings: {err}")))?
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("OsirisCare-appliance")
            .build()
            .map_err(|err| ClientError::Setup(err.to_string()))?;
        Ok(ProviderClient {
            http,
            url,
            settings,
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts the prepared body, retrying as described in the module docs.
    pub async fn send(&self, prepared: &Prepared) -> Result<Exchange, ClientError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Answer { status, body, wait } = self.post_once(&prepared.body).await?;
            if (200..300).contains(&status) {
                return Ok(Exchange {
                    status,
                    body,
                    attempts,
                });
            }
            let message = error_message(&body);
            if !matches!(status, 429 | 500 | 502 | 503 | 504 | 529) {
                return Err(ClientError::Refused { status, message });
            }
            if attempts > self.settings.max_retries {
                return Err(ClientError::Exhausted {
                    attempts,
                    status,
                    message,
                });
            }
            let wait = wait.unwrap_or_else(|| Duration::from_secs(1 << (attempts - 1).min(5)));
            if wait > self.settings.max_retry_wait {
                return Err(ClientError::RetryTooLate {
                    status,
                    wait_secs: wait.as_secs_f64().ceil() as u64,
                    cap_secs: self.settings.max_retry_wait.as_secs(),
                });
            }
            tracing::info!(
                status,
                wait_ms = wait.as_millis() as u64,
                attempt = attempts,
                "L2 provider asked to retry."
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Posts `body` once and returns the provider's answer whatever its status, for a relay
    /// that passes it on unchanged (Central Command's `POST /v1/l2/plan`; its caller retries).
    pub async fn forward(&self, body: &str) -> Result<Answer, ClientError> {
        self.post_once(body).await
    }

    async fn post_once(&self, body: &str) -> Result<Answer, ClientError> {
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if self.settings.remote {
            request = request.header("x-osiris-provider", self.settings.provider.to_string());
        }
        if let Some(key) = &self.settings.api_key {
            let (name, value) = match (self.settings.remote, self.settings.provider) {
                (false, Provider::Anthropic) => ("x-api-key", key.clone()),
                _ => ("authorization", format!("Bearer {key}")),
            };
            let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                ClientError::Setup(
                    "the API key contains characters a header cannot carry".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if self.settings.provider == Provider::Anthropic && !self.settings.remote {
            request = request.header("anthropic-version", "2023-06-01");
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?
            .to_vec();
        Ok(Answer { status, body, wait })
    }

    fn transport_error(&self, err: &reqwest::Error) -> ClientError {
        if err.is_timeout() {
            ClientError::Timeout(self.settings.timeout.as_secs())
        } else {
            // The error's chain, without the URL's query (there is none) and never a header.
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            ClientError::Connect(text)
        }
    }
}

/// `retry-after-ms` (milliseconds, OpenAI) or `retry-after` (seconds, possibly fractional).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 86_400.0)));
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 86_400.0)))
}

/// `https://` with a host, or `http://` to a loopback address, without user info.
fn checked_url(text: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(text.trim()).ok()?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return None;
    }
    let ok = match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(name))) => name == "localhost",
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    };
    ok.then_some(parsed)
}
