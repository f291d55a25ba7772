//! The Okta Management API client (the crate's IO for Okta): an SSWS API
//! token from the vault on every request, or a service app's `private_key_jwt` client credentials
//! (an RS256 client assertion for `{org}/oauth2/v1/token`, one access token per scope, so a
//! scope the app was not granted errs only the requests that need it; cached, renewed once
//! after a 401); listings that follow `Link: <…>; rel="next"` only
//! while the next link stays on the org's own origin and below `/api/v1/`; 429 waited out until
//! `X-Rate-Limit-Reset` (at most [`MAX_RATE_LIMIT_WAIT`] a time, never past the scan's
//! deadline); 401 and 403 answered with the scope the request needed (`okta.users.read`, …) so
//! the operator knows what to grant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::graph;

/// How to reach one Okta org.
#[derive(Clone)]
pub struct OktaSettings {
    /// The org's URL, `https://{yourOktaDomain}`; every request stays on its origin.
    pub org_url: String,
    /// The API token or the service app's key (from the vault).
    pub credential: OktaCredential,
    /// PEM text of the only CA to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for OktaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaSettings")
            .field("org_url", &self.org_url)
            .field("credential", &self.credential)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// How the appliance signs in to an org.
#[derive(Clone)]
pub enum OktaCredential {
    /// An SSWS API token (a read-only administrator's).
    ApiToken(Zeroizing<String>),
    /// A service app's client credentials with `private_key_jwt`.
    PrivateKeyJwt {
        /// The service app's client ID (the assertion's `iss` and `sub`).
        client_id: String,
        /// The app's RSA private key, PEM (PKCS#8 or PKCS#1).
        private_key_pem: Zeroizing<String>,
        /// The key's ID in the app's JWKS, when it has one (the assertion's `kid`).
        key_id: Option<String>,
        /// The scopes the app may be asked for (`okta.users.read`, …); a request asks a token for
        /// its own scope when it is among them, else for all of them.
        scopes: Vec<String>,
    },
}

impl std::fmt::Debug for OktaCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OktaCredential::ApiToken(_) => f.write_str("ApiToken([redacted])"),
            OktaCredential::PrivateKeyJwt {
                client_id, scopes, ..
            } => f
                .debug_struct("PrivateKeyJwt")
                .field("client_id", client_id)
                .field("private_key_pem", &"[redacted]")
                .field("scopes", scopes)
                .finish_non_exhaustive(),
        }
    }
}

/// Why an Okta request produced no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OktaError {
    /// The settings cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The org's token endpoint refused the service app's assertion or scopes.
    #[error("could not get an access token from Okta: {0}")]
    Token(String),
    /// The org refused the credential (expired, revoked or unknown).
    #[error(
        "Okta refused the API token (HTTP 401 {code}: {summary}): create a new token in the Admin Console (Security > API > Tokens) and store it with `osiris credentials set`"
    )]
    Unauthorized { code: String, summary: String },
    /// The credential lacks the permission or scope the request needs.
    #[error(
        "Okta refused access (HTTP 403 {code}: {summary}): the credential needs scope {scope} (grant it to the service app, or use a read-only administrator's token)"
    )]
    Forbidden {
        scope: String,
        code: String,
        summary: String,
    },
    /// An error status that is not retried.
    #[error("Okta answered HTTP {status} {code}: {summary}")]
    Http {
        status: u16,
        code: String,
        summary: String,
    },
    /// Still rate-limited when the scan's time ran out.
    #[error(
        "Okta kept rate-limiting (HTTP 429, {attempts} attempts, {waited_secs} s waited) until the scan's time ran out"
    )]
    Throttled { attempts: u32, waited_secs: u64 },
    /// No answer in time, or the connection failed.
    #[error("could not reach Okta: {0}")]
    Connect(String),
    /// The answer is not the JSON Okta documents.
    #[error("Okta's answer is not valid JSON of the documented shape: {0}")]
    Malformed(String),
    /// A next link that leaves the org.
    #[error("refusing Okta's next-page link `{0}`: it leaves the org's origin or its /api/v1/")]
    ForeignLink(String),
    /// Paging did not end.
    #[error("more than {0} pages; refusing to page further")]
    TooManyPages(usize),
}

/// Most pages one listing may have (10,000 users at 200 a page are 50).
pub const MAX_PAGES: usize = 2_000;

/// Longest single wait for a rate-limit window (Okta's windows are one minute).
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(61);

/// One org's client; cheap to clone.
#[derive(Clone)]
pub struct OktaClient {
    http: reqwest::Client,
    settings: Arc<OktaSettings>,
    org: url::Url,
    deadline: Instant,
    key: Option<Arc<ring::signature::RsaKeyPair>>,
    /// Access tokens by the scopes they were asked for.
    tokens: Arc<tokio::sync::Mutex<std::collections::HashMap<String, graph::Token>>>,
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OktaClient {
    /// A client whose requests (and rate-limit waits) end by `deadline`.
    ///
    /// # Errors
    /// When the org URL is not an `https://` origin, the token is empty or cannot travel in a
    /// header, or the CA file holds no usable certificate.
    pub fn new(settings: OktaSettings, deadline: Instant) -> Result<OktaClient, OktaError> {
        let org = graph::https_url(&settings.org_url)
            .filter(|url| url.path() == "/" && url.query().is_none() && url.fragment().is_none())
            .ok_or_else(|| {
                OktaError::Setup(format!(
                    "org_url `{}` is not an https:// origin (write it as https://your-org.okta.com, without a path)",
                    settings.org_url
                ))
            })?;
        let key = match &settings.credential {
            OktaCredential::ApiToken(token) => {
                if token.trim().is_empty()
                    || reqwest::header::HeaderValue::from_str(&format!("SSWS {}", **token)).is_err()
                {
                    return Err(OktaError::Setup(
                        "the Okta API token is empty or holds characters a token cannot have: store it again with `osiris credentials set`".to_owned(),
                    ));
                }
                None
            }
            OktaCredential::PrivateKeyJwt {
                client_id,
                private_key_pem,
                scopes,
                ..
            } => {
                if client_id.is_empty() || scopes.is_empty() {
                    return Err(OktaError::Setup(
                        "private_key_jwt needs the service app's client ID and at least one scope"
                            .to_owned(),
                    ));
                }
                let key = crate::oauth::rsa_key(
                    private_key_pem.as_bytes(),
                    "the service app's private key",
                )
                .map_err(OktaError::Setup)?;
                Some(Arc::new(key))
            }
        };
        let http = graph::http_client(settings.ca_pem.as_deref(), settings.request_timeout)
            .map_err(|err| OktaError::Setup(err.to_string()))?;
        Ok(OktaClient {
            http,
            settings: Arc::new(settings),
            org,
            deadline,
            key,
            tokens: Arc::new(tokio::sync::Mutex::new(std::collections::HashMap::new())),
        })
    }

    /// The org's token endpoint, `{org}/oauth2/v1/token` (the assertion's `aud`).
    fn token_url(&self) -> String {
        format!("{}oauth2/v1/token", self.org)
    }

    /// The `Authorization` value for a request needing `scope`: `SSWS …`, or `Bearer …` with a
    /// cached (or, when `renew`, a new) access token.
    async fn authorization(
        &self,
        scope: &str,
        renew: bool,
    ) -> Result<Zeroizing<String>, OktaError> {
        let (client_id, key_id, scopes) = match &self.settings.credential {
            OktaCredential::ApiToken(token) => {
                return Ok(Zeroizing::new(format!("SSWS {}", **token)));
            }
            OktaCredential::PrivateKeyJwt {
                client_id,
                key_id,
                scopes,
                ..
            } => (client_id, key_id, scopes),
        };
        let asked = if scopes.iter().any(|s| s == scope) {
            scope.to_owned()
        } else {
            scopes.join(" ")
        };
        let mut cached = self.tokens.lock().await;
        if !renew && let Some(token) = cached.get(&asked).filter(|t| Instant::now() < t.renew_at) {
            return Ok(Zeroizing::new(format!("Bearer {}", *token.value)));
        }
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| OktaError::Setup("no signing key".to_owned()))?;
        let assertion = Zeroizing::new(
            client_assertion(
                key,
                client_id,
                key_id.as_deref(),
                &self.token_url(),
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )
            .map_err(OktaError::Token)?,
        );
        let body = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("scope", &asked)
                .append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .append_pair("client_assertion", &assertion)
                .finish(),
        );
        let timeout =
            graph::time_left(self.deadline, self.settings.request_timeout).ok_or_else(|| {
                OktaError::Connect("the scan's time ran out before sign-in".to_owned())
            })?;
        let response = self
            .http
            .post(self.token_url())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|err| OktaError::Connect(graph::reqwest_error_text(&err)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| OktaError::Connect(graph::reqwest_error_text(&err)))?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| {
            OktaError::Token(format!(
                "the token endpoint answered HTTP {status} with a body that is not JSON"
            ))
        })?;
        if status != 200 {
            let crate::oauth::TokenRefusal { code, description } =
                crate::oauth::TokenRefusal::from_answer(&json);
            let advice = match code.as_str() {
                "invalid_scope" => {
                    " (grant the scopes to the service app in the Admin Console: Applications > the app > Okta API Scopes)"
                }
                "invalid_client" => {
                    " (the app's public key or client ID does not match: register the key's public half under the app's Client Credentials, or store the right key with `osiris credentials set`)"
                }
                _ => "",
            };
            return Err(OktaError::Token(format!(
                "HTTP {status} {code}: {description}{advice}"
            )));
        }
        let token = graph::Token::from_answer(&json).ok_or_else(|| {
            OktaError::Token("the token endpoint's answer has no access_token".to_owned())
        })?;
        let value = Zeroizing::new(format!("Bearer {}", *token.value));
        cached.insert(asked, token);
        Ok(value)
    }

    /// Every item of a collection: `GET {org}/api/v1/{segments…}?{query}`, then each
    /// `rel="next"` link, the pages' arrays concatenated in order. `scope` is the OAuth scope
    /// the collection needs, named when the org refuses.
    ///
    /// # Errors
    /// See [`OktaError`]; a page that fails fails the listing (never a shorter list).
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        scope: &str,
    ) -> Result<Vec<Value>, OktaError> {
        self.pages(segments, query, scope, None).await
    }

    /// Every item of a collection whose pages are objects holding the items under `field`
    /// (`{"value": […], "_links": {"next": {"href": …}}}`, as the role assignment listings
    /// answer), following the body's next link or a `Link` header, held to the org like
    /// [`OktaClient::list`].
    ///
    /// # Errors
    /// See [`OktaError`].
    pub async fn list_in(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        field: &str,
        scope: &str,
    ) -> Result<Vec<Value>, OktaError> {
        self.pages(segments, query, scope, Some(field)).await
    }

    async fn pages(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        scope: &str,
        field: Option<&str>,
    ) -> Result<Vec<Value>, OktaError> {
        let mut url = self.org.clone();
        url.path_segments_mut()
            .map_err(|()| OktaError::Setup("org_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let (mut page, mut next) = self.get(&url, scope).await?;
            if let Some(field) = field {
                if let Some(href) = page["_links"]["next"]["href"].as_str() {
                    next = Some(href.to_owned());
                }
                page = page.get_mut(field).map(Value::take).unwrap_or(Value::Null);
            }
            match page {
                Value::Array(values) => items.extend(values),
                _ => {
                    return Err(OktaError::Malformed(format!(
                        "a list page of {} is not a JSON array",
                        url.path()
                    )));
                }
            }
            let Some(next) = next else {
                return Ok(items);
            };
            let next = self.same_org(&next)?;
            if next == url {
                return Err(OktaError::Malformed(
                    "the next-page link repeats the page just read".to_owned(),
                ));
            }
            url = next;
        }
        Err(OktaError::TooManyPages(MAX_PAGES))
    }

    /// One object: `GET {org}/api/v1/{segments…}`.
    ///
    /// # Errors
    /// See [`OktaError`].
    pub async fn get_object(&self, segments: &[&str], scope: &str) -> Result<Value, OktaError> {
        let mut url = self.org.clone();
        url.path_segments_mut()
            .map_err(|()| OktaError::Setup("org_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        Ok(self.get(&url, scope).await?.0)
    }

    /// `link` when it is on the org's origin and below `/api/v1/`.
    fn same_org(&self, link: &str) -> Result<url::Url, OktaError> {
        let shown: String = link.chars().take(200).collect();
        let url = url::Url::parse(link).map_err(|_| OktaError::ForeignLink(shown.clone()))?;
        if url.origin() != self.org.origin()
            || !url.username().is_empty()
            || url.password().is_some()
            || !url.path().starts_with("/api/v1/")
        {
            return Err(OktaError::ForeignLink(shown));
        }
        Ok(url)
    }

    async fn get(&self, url: &url::Url, scope: &str) -> Result<(Value, Option<String>), OktaError> {
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut renew = false;
        let mut renewed = false;
        loop {
            attempts += 1;
            let mut auth =
                reqwest::header::HeaderValue::from_str(&self.authorization(scope, renew).await?)
                    .map_err(|_| {
                        OktaError::Setup("the credential cannot travel in a header".to_owned())
                    })?;
            renew = false;
            auth.set_sensitive(true);
            let timeout = graph::time_left(self.deadline, self.settings.request_timeout)
                .ok_or_else(|| {
                    OktaError::Connect("the scan's time ran out before this request".to_owned())
                })?;
            let response = self
                .http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(timeout)
                .send()
                .await
                .map_err(|err| OktaError::Connect(graph::reqwest_error_text(&err)))?;
            let status = response.status().as_u16();
            let next = next_link(response.headers());
            let reset = rate_limit_reset(
                response.headers(),
                time::OffsetDateTime::now_utc().unix_timestamp(),
            );
            let body = response
                .bytes()
                .await
                .map_err(|err| OktaError::Connect(graph::reqwest_error_text(&err)))?;
            if (200..300).contains(&status) {
                let json = serde_json::from_slice(&body)
                    .map_err(|err| OktaError::Malformed(format!("{err} (GET {})", url.path())))?;
                return Ok((json, next));
            }
            let (code, summary) = okta_error(&body);
            match status {
                429 => {
                    let wait = reset
                        .unwrap_or_else(|| Duration::from_secs(1 << attempts.min(5)))
                        .min(MAX_RATE_LIMIT_WAIT);
                    if Instant::now() + wait >= self.deadline {
                        return Err(OktaError::Throttled {
                            attempts,
                            waited_secs: waited.as_secs(),
                        });
                    }
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        attempt = attempts,
                        path = url.path(),
                        "Okta rate limit reached; waiting for the window's reset."
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                401 if self.key.is_some() && !renewed => {
                    // The cached access token expired or was revoked early: get another, once.
                    renew = true;
                    renewed = true;
                }
                401 => return Err(OktaError::Unauthorized { code, summary }),
                403 => {
                    return Err(OktaError::Forbidden {
                        scope: scope.to_owned(),
                        code,
                        summary,
                    });
                }
                _ => {
                    return Err(OktaError::Http {
                        status,
                        code,
                        summary,
                    });
                }
            }
        }
    }
}

/// The `private_key_jwt` client assertion (RFC 7523 as Okta documents it): header
/// `{"alg": "RS256", "kid"?}`, claims `iss` = `sub` = the client ID, `aud` the org's token
/// endpoint, `iat`, `exp` five minutes on (Okta's most is an hour) and a random `jti` (Okta
/// refuses a reused one).
fn client_assertion(
    key: &ring::signature::RsaKeyPair,
    client_id: &str,
    key_id: Option<&str>,
    audience: &str,
    now: i64,
) -> Result<String, String> {
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": crate::oauth::jti()?,
    });
    let kid: Vec<(&str, &str)> = key_id.map(|kid| ("kid", kid)).into_iter().collect();
    crate::oauth::signed_jwt(key, crate::oauth::Alg::Rs256, &kid, &claims)
}

/// The `rel="next"` target of a `Link` header (RFC 8288; Okta sends one `Link` per relation,
/// or several relations comma-separated in one header).
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let mut parts = link.split(';');
            let target = parts.next()?.trim().strip_prefix('<')?.strip_suffix('>')?;
            parts
                .any(|param| {
                    let param = param.trim();
                    param
                        .strip_prefix("rel=")
                        .map(|rel| rel.trim_matches('"'))
                        .is_some_and(|rel| rel.split_ascii_whitespace().any(|r| r == "next"))
                })
                .then(|| target.to_owned())
        })
}

/// How long until `X-Rate-Limit-Reset` (UTC epoch seconds) counted from `now`, plus a second
/// for the clocks' difference; `None` without a usable header.
pub fn rate_limit_reset(headers: &reqwest::header::HeaderMap, now: i64) -> Option<Duration> {
    let reset: i64 = headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(
        u64::try_from(reset.saturating_sub(now)).unwrap_or(0) + 1,
    ))
}

/// Okta's error envelope: `{"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}`.
fn okta_error(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = crate::oauth::printable(json["errorCode"].as_str().unwrap_or("unknown"));
    let summary = json["errorSummary"]
        .as_str()
        .map_or_else(|| "no error summary".to_owned(), crate::oauth::printable);
    (code, summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};

    fn headers(links: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for link in links {
            map.append(LINK, HeaderValue::from_str(link).unwrap());
        }
        map
    }

    #[test]
    fn next_link_is_found_among_the_relations() {
        let org = "https://clinic.okta.com/api/v1/users";
        let map = headers(&[
            &format!("<{org}?limit=200>; rel=\"self\""),
            &format!("<{org}?after=00u1&limit=200>; rel=\"next\""),
        ]);
        assert_eq!(
            next_link(&map).as_deref(),
            Some("https://clinic.okta.com/api/v1/users?after=00u1&limit=200")
        );
        let one = headers(&[&format!(
            "<{org}?limit=2>; rel=\"self\", <{org}?after=x>; rel=\"next\""
        )]);
        assert_eq!(next_link(&one).as_deref(), Some(&*format!("{org}?after=x")));
        assert_eq!(
            next_link(&headers(&[&format!("<{org}>; rel=\"self\"")])),
            None
        );
    }

    #[test]
    fn okta_s_error_text_is_printable() {
        let (code, summary) =
            okta_error(br#"{"errorCode":"E1\u0007","errorSummary":"x\u001b]0;t"}"#);
        assert_eq!(
            (code.as_str(), summary.as_str()),
            ("E1\\u{7}", "x\\u{1b}]0;t")
        );
    }

    #[test]
    fn rate_limit_reset_counts_from_now() {
        let mut map = HeaderMap::new();
        map.insert("x-rate-limit-reset", HeaderValue::from_static("1000"));
        assert_eq!(rate_limit_reset(&map, 990), Some(Duration::from_secs(11)));
        assert_eq!(rate_limit_reset(&map, 2000), Some(Duration::from_secs(1)));
        map.insert("x-rate-limit-reset", HeaderValue::from_static("soon"));
        assert_eq!(rate_limit_reset(&map, 990), None);
    }

    #[test]
    fn next_links_off_the_org_are_refused() {
        let client = OktaClient::new(
            OktaSettings {
                org_url: "https://clinic.okta.com".to_owned(),
                credential: OktaCredential::ApiToken(Zeroizing::new("00abc".to_owned())),
                ca_pem: None,
                request_timeout: Duration::from_secs(5),
            },
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        assert!(
            client
                .same_org("https://clinic.okta.com/api/v1/users?after=1")
                .is_ok()
        );
        for link in [
            "https://evil.example/api/v1/users?after=1",
            "http://clinic.okta.com/api/v1/users?after=1",
            "https://clinic.okta.com:8443/api/v1/users",
            "https://user@clinic.okta.com/api/v1/users",
            "https://clinic.okta.com/oauth2/v1/token",
            "not a url",
        ] {
            assert!(
                matches!(client.same_org(link), Err(OktaError::ForeignLink(_))),
                "{link}"
            );
        }
    }

    #[test]
    fn org_url_must_be_an_https_origin() {
        for org_url in [
            "http://clinic.okta.com",
            "https://clinic.okta.com/admin",
            "clinic",
        ] {
            let err = OktaClient::new(
                OktaSettings {
                    org_url: org_url.to_owned(),
                    credential: OktaCredential::ApiToken(Zeroizing::new("00abc".to_owned())),
                    ca_pem: None,
                    request_timeout: Duration::from_secs(5),
                },
                Instant::now(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("https:// origin"), "{err}");
        }
    }
}
