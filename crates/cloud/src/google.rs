//! The Admin SDK Directory API client (the crate's IO for Google Workspace): a service account's
//! RS256 JWT acting for an administrator (domain-wide delegation) exchanged at the configured
//! token endpoint for an access token, one per scope (so a scope the Admin console did not
//! authorize errs only the sources that need it), cached until shortly before it expires and
//! fetched again after a 401; listings that follow `nextPageToken` as an encoded query value on
//! the same URL (a page never names a host); 429, 500 and 503 (and the legacy 403
//! `rateLimitExceeded`) retried after `Retry-After` or with exponential back-off while the scan's
//! deadline allows; a timeout per request; errors that say what to do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::graph::{self, Token};

pub(crate) mod assertion;

/// How to reach one Google Workspace account.
#[derive(Clone)]
pub struct GoogleSettings {
    /// Google's token endpoint, `https://oauth2.googleapis.com/token`.
    pub token_url: String,
    /// The Directory API's base, `https://admin.googleapis.com/admin/directory/v1`; every
    /// request stays below it.
    pub directory_base: String,
    /// The administrator the service account acts for (the JWT's `sub`).
    pub subject: String,
    /// The service account's JSON key, as the Google Cloud console gives it.
    pub key_json: Zeroizing<String>,
    /// PEM text of the only CA to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
}

/// One account's Directory API client; cheap to clone (the token cache is shared).
#[derive(Clone)]
pub struct DirectoryClient {
    http: reqwest::Client,
    settings: Arc<GoogleSettings>,
    base: url::Url,
    account: Arc<assertion::ServiceAccount>,
    tokens: Arc<tokio::sync::Mutex<HashMap<String, Token>>>,
    deadline: Instant,
}

/// Why a Directory API request produced no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The settings or the service account's key cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The token endpoint refused the service account's JWT (or answered something else).
    #[error("could not get an access token for {scope}: {message}")]
    Token { scope: String, message: String },
    /// The API refused the request (the administrator's privileges or the token's scopes).
    #[error("the Directory API refused access (HTTP 403 {reason}: {message})")]
    Forbidden { reason: String, message: String },
    /// The API answered an error status that is not retried.
    #[error("the Directory API answered HTTP {status} {reason}: {message}")]
    Http {
        status: u16,
        reason: String,
        message: String,
    },
    /// Still throttled when the scan's time ran out.
    #[error(
        "the Directory API kept throttling (HTTP {status}, {attempts} attempts, {waited_secs} s waited) until the scan's time ran out"
    )]
    Throttled {
        status: u16,
        attempts: u32,
        waited_secs: u64,
    },
    /// No answer in time, or the connection failed.
    #[error("could not reach the Directory API: {0}")]
    Connect(String),
    /// The answer is not the JSON the Directory API documents.
    #[error("the Directory API's answer is not valid JSON of the documented shape: {0}")]
    Malformed(String),
    /// Paging did not end.
    #[error("more than {0} pages; refusing to page further")]
    TooManyPages(usize),
}

/// Most pages one listing may have (10,000 users at 500 a page are 20).
pub const MAX_PAGES: usize = 2_000;

impl std::fmt::Debug for GoogleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleSettings")
            .field("token_url", &self.token_url)
            .field("directory_base", &self.directory_base)
            .field("subject", &self.subject)
            .field("key_json", &"[redacted]")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DirectoryClient {
    /// A client whose requests (and throttling waits) end by `deadline`.
    ///
    /// # Errors
    /// When a URL is not `https://`, the key is not a usable service account key, the key sends
    /// its tokens to another endpoint than the configured one, or the CA file holds no usable
    /// certificate.
    pub fn new(
        settings: GoogleSettings,
        deadline: Instant,
    ) -> Result<DirectoryClient, DirectoryError> {
        let base = graph::https_url(&format!(
            "{}/",
            settings.directory_base.trim_end_matches('/')
        ))
        .ok_or_else(|| {
            DirectoryError::Setup(format!(
                "directory_base `{}` is not an https:// URL",
                settings.directory_base
            ))
        })?;
        let token_url = graph::https_url(&settings.token_url).ok_or_else(|| {
            DirectoryError::Setup(format!(
                "token URL `{}` is not an https:// URL",
                settings.token_url
            ))
        })?;
        let account = assertion::ServiceAccount::from_json(&settings.key_json)
            .map_err(DirectoryError::Setup)?;
        if let Some(token_uri) = &account.token_uri
            && url::Url::parse(token_uri).ok().as_ref() != Some(&token_url)
        {
            return Err(DirectoryError::Setup(format!(
                "the service account's key sends its tokens to `{}`, not to the configured token_url `{}`: refusing to sign for another endpoint (set token_url to the key's token_uri if that endpoint is yours)",
                token_uri.chars().take(200).collect::<String>(),
                settings.token_url
            )));
        }
        let http = graph::http_client(settings.ca_pem.as_deref(), settings.request_timeout)
            .map_err(|err| DirectoryError::Setup(err.to_string()))?;
        Ok(DirectoryClient {
            http,
            settings: Arc::new(settings),
            base,
            account: Arc::new(account),
            tokens: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            deadline,
        })
    }

    /// The service account's address (the JWT's `iss`).
    pub fn service_account(&self) -> &str {
        &self.account.email
    }

    /// Every item of a collection: `GET {directory_base}/{segments…}?{query}`, then the same
    /// with each `nextPageToken` as `pageToken`, the `items_key` arrays concatenated in order
    /// (an absent array is an empty page, as the API omits empty lists).
    ///
    /// # Errors
    /// See [`DirectoryError`]; a page that fails fails the listing (never a shorter list).
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        items_key: &str,
        scope: &str,
    ) -> Result<Vec<Value>, DirectoryError> {
        let mut first = self.base.clone();
        first
            .path_segments_mut()
            .map_err(|()| DirectoryError::Setup("directory_base cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        first.query_pairs_mut().extend_pairs(query);
        let mut items = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = first.clone();
            if let Some(token) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let page = self.get_url(&url, scope).await?;
            let Value::Object(mut page) = page else {
                return Err(DirectoryError::Malformed(
                    "a list page is not a JSON object".to_owned(),
                ));
            };
            match page.remove(items_key) {
                None | Some(Value::Null) => {}
                Some(Value::Array(values)) => items.extend(values),
                Some(_) => {
                    return Err(DirectoryError::Malformed(format!(
                        "a list page's `{items_key}` is not an array"
                    )));
                }
            }
            match page.remove("nextPageToken") {
                None | Some(Value::Null) => return Ok(items),
                Some(Value::String(next)) if next.is_empty() => return Ok(items),
                Some(Value::String(next)) => {
                    if page_token.as_deref() == Some(next.as_str()) {
                        return Err(DirectoryError::Malformed(
                            "`nextPageToken` repeats the page just read".to_owned(),
                        ));
                    }
                    page_token = Some(next);
                }
                Some(_) => {
                    return Err(DirectoryError::Malformed(
                        "`nextPageToken` is not a string".to_owned(),
                    ));
                }
            }
        }
        Err(DirectoryError::TooManyPages(MAX_PAGES))
    }

    async fn get_url(&self, url: &url::Url, scope: &str) -> Result<Value, DirectoryError> {
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let token = self.bearer(scope, false).await?;
            let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", *token))
                .map_err(|_| DirectoryError::Token {
                    scope: scope.to_owned(),
                    message: "the token cannot travel in a header".to_owned(),
                })?;
            auth.set_sensitive(true);
            let response = self
                .http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.request_timeout()?)
                .send()
                .await
                .map_err(|err| DirectoryError::Connect(graph::reqwest_error_text(&err)))?;
            let status = response.status().as_u16();
            let retry_after = graph::retry_after(response.headers());
            let body = response
                .bytes()
                .await
                .map_err(|err| DirectoryError::Connect(graph::reqwest_error_text(&err)))?;
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body).map_err(|err| {
                    DirectoryError::Malformed(format!("{err} (GET {})", url.path()))
                });
            }
            let (reason, message) = google_error(&body);
            let throttled = matches!(status, 429 | 500 | 503)
                || (status == 403
                    && matches!(
                        reason.as_str(),
                        "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded"
                    ));
            match status {
                401 if !refreshed => {
                    // The cached token expired or was revoked early: get another, once.
                    tracing::info!(path = url.path(), "Directory API token refused; renewing.");
                    refreshed = true;
                    self.bearer(scope, true).await?;
                }
                _ if throttled => {
                    let wait = retry_after.unwrap_or_else(|| backoff(attempts));
                    if Instant::now() + wait >= self.deadline {
                        return Err(DirectoryError::Throttled {
                            status,
                            attempts,
                            waited_secs: waited.as_secs(),
                        });
                    }
                    tracing::debug!(
                        status,
                        reason = %reason,
                        wait_ms = wait.as_millis() as u64,
                        attempt = attempts,
                        path = url.path(),
                        "Directory API throttled; waiting."
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                403 => return Err(DirectoryError::Forbidden { reason, message }),
                _ => {
                    return Err(DirectoryError::Http {
                        status,
                        reason,
                        message,
                    });
                }
            }
        }
    }

    /// What is left of the scan's time, at most the per-request timeout.
    fn request_timeout(&self) -> Result<Duration, DirectoryError> {
        graph::time_left(self.deadline, self.settings.request_timeout).ok_or_else(|| {
            DirectoryError::Connect("the scan's time ran out before this request".to_owned())
        })
    }

    /// The cached token for `scope`, or a new one (always a new one when `renew`).
    async fn bearer(&self, scope: &str, renew: bool) -> Result<Zeroizing<String>, DirectoryError> {
        let mut cached = self.tokens.lock().await;
        if !renew && let Some(token) = cached.get(scope).filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self
            .fetch_token(scope)
            .await
            .map_err(|message| DirectoryError::Token {
                scope: scope.to_owned(),
                message,
            })?;
        let value = token.value.clone();
        cached.insert(scope.to_owned(), token);
        Ok(value)
    }

    async fn fetch_token(&self, scope: &str) -> Result<Token, String> {
        let jwt = Zeroizing::new(self.account.assertion(
            &self.settings.subject,
            scope,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?);
        let body = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                .append_pair("assertion", &jwt)
                .finish(),
        );
        let response = self
            .http
            .post(&self.settings.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(self.request_timeout().map_err(|err| err.to_string())?)
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|err| graph::reqwest_error_text(&err))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|err| graph::reqwest_error_text(&err))?;
        let json: Value = serde_json::from_slice(&body).map_err(|_| {
            format!("the token endpoint answered HTTP {status} with a body that is not JSON")
        })?;
        if status != 200 {
            let crate::oauth::TokenRefusal { code, description } =
                crate::oauth::TokenRefusal::from_answer(&json);
            let advice = match code.as_str() {
                "invalid_grant" if description.contains("Invalid JWT Signature") => {
                    " (the service account's key was deleted or disabled: create a new JSON key in the Google Cloud console and store it with `osiris credentials set`)".to_owned()
                }
                "invalid_grant" if description.contains("Invalid email or User ID") => {
                    " (admin_subject is not an active user of the account: name an administrator's address)".to_owned()
                }
                "unauthorized_client" => format!(
                    " (authorize the service account's client ID for scope {scope} in the Admin console: Security > Access and data control > API controls > Domain-wide delegation)"
                ),
                "invalid_client" => {
                    " (the service account is disabled or deleted: enable it in the Google Cloud console)".to_owned()
                }
                _ => String::new(),
            };
            return Err(format!("HTTP {status} {code}: {description}{advice}"));
        }
        Token::from_answer(&json)
            .ok_or_else(|| "the token endpoint's answer has no access_token".to_owned())
    }
}

/// Google's error envelope: `{"error": {"code", "message", "errors": [{"reason"}], "status"}}`;
/// the first error's `reason`, else the `status`.
fn google_error(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &json["error"];
    let reason = error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
        .unwrap_or("unknown")
        .to_owned();
    let message = error["message"]
        .as_str()
        .map_or_else(|| "no error message".to_owned(), crate::oauth::printable);
    (reason, message)
}

/// Truncated exponential back-off as Google recommends: 1, 2, 4 … 32 s after the attempt that
/// failed, plus up to a quarter second of jitter.
fn backoff(attempt: u32) -> Duration {
    let mut jitter = [0u8; 1];
    let jitter_ms =
        match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jitter) {
            Ok(()) => u64::from(jitter[0]),
            Err(_) => 0,
        };
    Duration::from_secs(1 << (attempt.saturating_sub(1)).min(5)) + Duration::from_millis(jitter_ms)
}
