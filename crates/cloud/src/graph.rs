//! The Microsoft Graph client (the crate's IO for Microsoft 365): OAuth 2.0 client credentials
//! against the configured authority with the token cached until shortly before it expires and
//! fetched again after a 401 `InvalidAuthenticationToken`; GETs that follow `@odata.nextLink`
//! only back to the configured Graph base (same scheme, host, port and path prefix); 429, 503 and
//! 504 retried after `Retry-After` while the scan's deadline allows; a timeout per request; and
//! errors that say what to do (a 403 names the application permission the source needs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

mod assertion;

/// How to reach one tenant's Graph.
#[derive(Clone)]
pub struct GraphSettings {
    /// The token endpoint, `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
    /// Graph's base, `https://graph.microsoft.com/v1.0`; every request and page link stays below it.
    pub graph_base: String,
    /// The application (client) ID.
    pub client_id: String,
    /// How the application proves itself.
    pub credential: ClientCredential,
    /// PEM text of the only CA to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
}

/// The application's credential, as Entra ID's client-credentials flow takes it.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret (`client_secret`).
    Secret(Zeroizing<String>),
    /// A certificate: PEM text holding the RSA private key and the certificate registered on
    /// the application; each token request carries a fresh JWT assertion signed with PS256
    /// (`client_assertion`, header `x5t#S256`).
    Certificate(Zeroizing<String>),
}

/// One tenant's Graph client; cheap to clone (the token cache is shared).
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    settings: Arc<GraphSettings>,
    base: url::Url,
    signer: Option<Arc<assertion::Signer>>,
    token: Arc<tokio::sync::Mutex<Option<Token>>>,
    deadline: Instant,
}

/// Why a Graph request produced no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The settings cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The authority refused the application's credentials (or answered something else).
    #[error("could not sign in to the tenant: {0}")]
    Token(String),
    /// Graph refused the request for lack of permission.
    #[error("Graph refused access (HTTP 403 {code}: {message})")]
    Forbidden { code: String, message: String },
    /// Graph answered an error status that is not retried.
    #[error("Graph answered HTTP {status} {code}: {message}")]
    Http {
        status: u16,
        code: String,
        message: String,
    },
    /// Still throttled when the scan's time ran out.
    #[error(
        "Graph kept throttling (HTTP {status}, {attempts} attempts, {waited_secs} s waited) until the scan's time ran out"
    )]
    Throttled {
        status: u16,
        attempts: u32,
        waited_secs: u64,
    },
    /// No answer in time, or the connection failed.
    #[error("could not reach Graph: {0}")]
    Connect(String),
    /// The answer is not the JSON Graph documents.
    #[error("Graph's answer is not valid JSON of the documented shape: {0}")]
    Malformed(String),
    /// A page link leads away from the configured Graph base.
    #[error(
        "refused to follow @odata.nextLink `{link}`: it leaves the configured Graph base {base}"
    )]
    ForeignLink { link: String, base: String },
    /// Paging did not end.
    #[error("more than {0} pages; refusing to page further")]
    TooManyPages(usize),
}

/// Most pages one listing may have (5,000 users at 999 a page are 6).
pub const MAX_PAGES: usize = 2_000;

/// A cached access token and when to fetch the next one.
pub(crate) struct Token {
    pub(crate) value: Zeroizing<String>,
    pub(crate) renew_at: Instant,
}

impl Token {
    /// The token of an OAuth 2.0 token endpoint's answer (`access_token`, `expires_in` as a
    /// number or a string, 300 s when absent), renewed a minute early (or at half the lifetime
    /// when it is short); `None` without an `access_token`.
    pub(crate) fn from_answer(json: &Value) -> Option<Token> {
        let value = json["access_token"].as_str().filter(|t| !t.is_empty())?;
        let lifetime = json["expires_in"]
            .as_u64()
            .or_else(|| json["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(300);
        let margin = (lifetime / 2).min(60);
        Some(Token {
            value: Zeroizing::new(value.to_owned()),
            renew_at: Instant::now() + Duration::from_secs(lifetime - margin),
        })
    }
}

/// What is left until `deadline`, at most `per_request`; `None` when nothing is.
pub(crate) fn time_left(deadline: Instant, per_request: Duration) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| left.min(per_request))
}

impl std::fmt::Debug for GraphSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSettings")
            .field("token_url", &self.token_url)
            .field("graph_base", &self.graph_base)
            .field("client_id", &self.client_id)
            .field("credential", &"[redacted]")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client whose requests (and throttling waits) end by `deadline`.
    ///
    /// # Errors
    /// When a URL is not `https://` or the CA file holds no usable certificate.
    pub fn new(settings: GraphSettings, deadline: Instant) -> Result<GraphClient, GraphError> {
        let base = https_url(&format!("{}/", settings.graph_base.trim_end_matches('/')))
            .ok_or_else(|| {
                GraphError::Setup(format!(
                    "graph_base `{}` is not an https:// URL",
                    settings.graph_base
                ))
            })?;
        https_url(&settings.token_url).ok_or_else(|| {
            GraphError::Setup(format!(
                "token URL `{}` is not an https:// URL",
                settings.token_url
            ))
        })?;
        let http = http_client(settings.ca_pem.as_deref(), settings.request_timeout)?;
        let signer = match &settings.credential {
            ClientCredential::Secret(_) => None,
            ClientCredential::Certificate(pem) => Some(Arc::new(
                assertion::Signer::from_pem(pem.as_bytes()).map_err(GraphError::Setup)?,
            )),
        };
        Ok(GraphClient {
            http,
            settings: Arc::new(settings),
            base,
            signer,
            token: Arc::new(tokio::sync::Mutex::new(None)),
            deadline,
        })
    }

    /// Signs in now (or reuses the cached token), so a refused credential is known before the
    /// sources are read.
    ///
    /// # Errors
    /// [`GraphError::Token`] with the authority's error code and description.
    pub async fn sign_in(&self) -> Result<(), GraphError> {
        self.bearer(false).await.map(drop)
    }

    /// One object: `GET {graph_base}/{path}`.
    ///
    /// # Errors
    /// See [`GraphError`].
    pub async fn get(&self, path: &str) -> Result<Value, GraphError> {
        let url = self.join(path)?;
        self.get_url(&url).await
    }

    /// Every item of a collection: `GET {graph_base}/{path}`, then each `@odata.nextLink` (only
    /// below the configured base), `value` arrays concatenated in order.
    ///
    /// # Errors
    /// See [`GraphError`]; a page that fails fails the listing (never a shorter list).
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let mut url = self.join(path)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.get_url(&url).await?;
            let Value::Object(mut page) = page else {
                return Err(GraphError::Malformed(
                    "a collection page is not a JSON object".to_owned(),
                ));
            };
            match page.remove("value") {
                Some(Value::Array(values)) => items.extend(values),
                _ => {
                    return Err(GraphError::Malformed(
                        "a collection page has no `value` array".to_owned(),
                    ));
                }
            }
            match page.remove("@odata.nextLink") {
                None | Some(Value::Null) => return Ok(items),
                Some(Value::String(link)) => url = self.next_link(&link)?,
                Some(_) => {
                    return Err(GraphError::Malformed(
                        "`@odata.nextLink` is not a string".to_owned(),
                    ));
                }
            }
        }
        Err(GraphError::TooManyPages(MAX_PAGES))
    }

    fn join(&self, path: &str) -> Result<url::Url, GraphError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|err| GraphError::Setup(format!("path `{path}`: {err}")))
    }

    /// A page link, accepted only below the configured base.
    fn next_link(&self, link: &str) -> Result<url::Url, GraphError> {
        let refuse = || GraphError::ForeignLink {
            link: link.chars().take(200).collect(),
            base: self.base.to_string(),
        };
        let url = url::Url::parse(link).map_err(|_| refuse())?;
        let same_origin = url.scheme() == self.base.scheme()
            && url.host() == self.base.host()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none();
        if same_origin && url.path().starts_with(self.base.path()) {
            Ok(url)
        } else {
            Err(refuse())
        }
    }

    async fn get_url(&self, url: &url::Url) -> Result<Value, GraphError> {
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let token = self.bearer(false).await?;
            let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", *token))
                .map_err(|_| GraphError::Token("the token cannot travel in a header".to_owned()))?;
            auth.set_sensitive(true);
            let response = self
                .http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.request_timeout()?)
                .send()
                .await
                .map_err(|err| connect_error(&err))?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let body = response.bytes().await.map_err(|err| connect_error(&err))?;
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body)
                    .map_err(|err| GraphError::Malformed(format!("{err} (GET {})", url.path())));
            }
            let (code, message) = graph_error(&body);
            match status {
                401 if code == "InvalidAuthenticationToken" && !refreshed => {
                    // The cached token expired or was revoked early: sign in again, once.
                    tracing::info!(path = url.path(), "Graph token refused; signing in again.");
                    refreshed = true;
                    self.bearer(true).await?;
                }
                403 => return Err(GraphError::Forbidden { code, message }),
                429 | 503 | 504 => {
                    let wait = retry_after
                        .unwrap_or_else(|| Duration::from_secs(1 << (attempts - 1).min(5)));
                    if Instant::now() + wait >= self.deadline {
                        return Err(GraphError::Throttled {
                            status,
                            attempts,
                            waited_secs: waited.as_secs(),
                        });
                    }
                    tracing::debug!(
                        status,
                        wait_ms = wait.as_millis() as u64,
                        attempt = attempts,
                        path = url.path(),
                        "Graph throttled; waiting."
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                _ => {
                    return Err(GraphError::Http {
                        status,
                        code,
                        message,
                    });
                }
            }
        }
    }

    /// What is left of the scan's time, at most the per-request timeout.
    fn request_timeout(&self) -> Result<Duration, GraphError> {
        time_left(self.deadline, self.settings.request_timeout).ok_or_else(|| {
            GraphError::Connect("the scan's time ran out before this request".to_owned())
        })
    }

    /// The cached token, or a new one (always a new one when `renew`).
    async fn bearer(&self, renew: bool) -> Result<Zeroizing<String>, GraphError> {
        let mut cached = self.token.lock().await;
        if !renew && let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<Token, GraphError> {
        let scope = format!("{}/.default", origin(&self.base));
        let body = self.token_form(&scope)?;
        let response = self
            .http
            .post(&self.settings.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(self.request_timeout()?)
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|err| GraphError::Token(connect_error(&err).to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|err| GraphError::Token(connect_error(&err).to_string()))?;
        let json: Value = serde_json::from_slice(&body).map_err(|_| {
            GraphError::Token(format!(
                "the authority answered HTTP {status} with a body that is not JSON"
            ))
        })?;
        if status != 200 {
            let crate::oauth::TokenRefusal { code, description } =
                crate::oauth::TokenRefusal::from_answer(&json);
            let advice = match (code.as_str(), &self.settings.credential) {
                ("invalid_client", ClientCredential::Secret(_)) => {
                    " (the client secret is wrong, expired or revoked: create a new one in Entra ID and store it with `osiris credentials set`)"
                }
                ("invalid_client", ClientCredential::Certificate(_)) => {
                    " (the certificate is not the one registered on the application, or it expired: upload its public part in Entra ID)"
                }
                _ => "",
            };
            return Err(GraphError::Token(format!(
                "HTTP {status} {code}: {description}{advice}"
            )));
        }
        Token::from_answer(&json).ok_or_else(|| {
            GraphError::Token("the authority's answer has no access_token".to_owned())
        })
    }

    /// The token request's form: the grant, the application and its secret or a fresh assertion.
    fn token_form(&self, scope: &str) -> Result<Zeroizing<String>, GraphError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("scope", scope);
        match (&self.settings.credential, &self.signer) {
            (ClientCredential::Secret(secret), _) => {
                form.append_pair("client_secret", secret);
            }
            (ClientCredential::Certificate(_), Some(signer)) => {
                let jwt = signer
                    .assertion(
                        &self.settings.client_id,
                        &self.settings.token_url,
                        time::OffsetDateTime::now_utc().unix_timestamp(),
                    )
                    .map_err(GraphError::Token)?;
                form.append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .append_pair("client_assertion", &jwt);
            }
            (ClientCredential::Certificate(_), None) => {
                return Err(GraphError::Setup(
                    "the certificate was not loaded".to_owned(),
                ));
            }
        }
        Ok(Zeroizing::new(form.finish()))
    }
}

/// A reqwest client on rustls (ring) trusting `ca_pem` only, or the system's roots.
pub(crate) fn http_client(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, GraphError> {
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;
    let setup =
        |what: &str, err: &dyn std::fmt::Display| GraphError::Setup(format!("{what}: {err}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| setup("TLS", &err))?;
    let builder = match ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|err| setup("ca_file", &err))?)
                    .map_err(|err| setup("ca_file", &err))?;
            }
            if roots.is_empty() {
                return Err(GraphError::Setup(
                    "ca_file holds no PEM certificate".to_owned(),
                ));
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .with_platform_verifier()
            .map_err(|err| setup("TLS roots", &err))?,
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(builder.with_no_client_auth())
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("OsirisCare-appliance")
        .build()
        .map_err(|err| setup("HTTPS client", &err))
}

/// An `https://` URL with a host and no user info.
pub(crate) fn https_url(text: &str) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    (url.scheme() == "https"
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none())
    .then_some(url)
}

/// `https://host[:port]`, the resource a `/.default` scope names.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Graph's error envelope: `{"error": {"code", "message"}}`.
fn graph_error(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = json["error"]["code"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let message = json["error"]["message"]
        .as_str()
        .map_or_else(|| "no error message".to_owned(), crate::oauth::printable);
    (code, message)
}

/// `Retry-After` in seconds (Graph sends whole seconds).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 3_600.0)))
}

fn connect_error(err: &reqwest::Error) -> GraphError {
    GraphError::Connect(reqwest_error_text(err))
}

/// A failed request in words: "no answer in time", or the error with its sources.
pub(crate) fn reqwest_error_text(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer in time".to_owned();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}
