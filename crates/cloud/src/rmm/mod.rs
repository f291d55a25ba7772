//! RMM device inventories (issue 20, item 4): what Datto RMM or ConnectWise Automate knows of a
//! site's machines, read over their REST APIs into one device shape ([`RmmDevice`]), and its
//! reconciliation with the Active Directory inventory ([`reconcile`], pure).
//!
//! The clients share [`RmmSettings`] and [`RmmError`]: one site per configured RMM (Datto's site
//! UID, Automate's client ID), so an MSP's key never brings another practice's machines into
//! this appliance's evidence; next-page links held to the configured origin; 429 waited out
//! (Retry-After, else exponential) while the deadline allows; a failed page fails the import,
//! never a shorter list.

pub mod automate;
pub mod datto;
pub mod reconcile;

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Which RMM a settings block reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmmKind {
    /// Datto RMM's API v2 (OAuth 2.0 password grant with the API key and secret key).
    Datto,
    /// ConnectWise Automate's REST API (`/cwa/api/v1`, an integrator login and a client ID).
    ConnectWiseAutomate,
}

impl RmmKind {
    /// The name in configuration and evidence (`datto`, `connectwise-automate`).
    pub fn as_str(self) -> &'static str {
        match self {
            RmmKind::Datto => "datto",
            RmmKind::ConnectWiseAutomate => "connectwise-automate",
        }
    }
}

/// How to reach one RMM and which of its sites (clients) is this practice.
#[derive(Clone)]
pub struct RmmSettings {
    pub kind: RmmKind,
    /// Datto: the platform's API URL (`https://concord-api.centrastage.net`); Automate: the
    /// server (`https://rmm.example-msp.com`). An `https://` origin.
    pub api_url: String,
    /// Datto: the site's UID; Automate: the client's numeric ID.
    pub site: String,
    /// Datto: the API key; Automate: the integrator user name.
    pub user: String,
    /// Datto: the API secret key; Automate: the integrator password (from the vault).
    pub secret: Zeroizing<String>,
    /// Automate: the integration's `ClientId` (a GUID ConnectWise issues); Datto: unused.
    pub client_id: Option<String>,
    /// PEM text of the only CA to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for RmmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RmmSettings")
            .field("kind", &self.kind)
            .field("api_url", &self.api_url)
            .field("site", &self.site)
            .field("user", &self.user)
            .field("secret", &"[redacted]")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why an RMM import produced no inventory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RmmError {
    /// The settings cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The RMM refused the login (key, secret, user, password or client ID).
    #[error("{rmm} refused the login: {detail}")]
    Login { rmm: &'static str, detail: String },
    /// The RMM refused a request after login (permissions, or the site is not the key's).
    #[error("{rmm} refused access (HTTP {status}): {detail}")]
    Forbidden {
        rmm: &'static str,
        status: u16,
        detail: String,
    },
    /// An error status that is not retried.
    #[error("{rmm} answered HTTP {status}: {detail}")]
    Http {
        rmm: &'static str,
        status: u16,
        detail: String,
    },
    /// Still rate-limited when the import's time ran out.
    #[error(
        "{rmm} kept rate-limiting (HTTP 429, {attempts} attempts, {waited_secs} s waited) until the import's time ran out"
    )]
    Throttled {
        rmm: &'static str,
        attempts: u32,
        waited_secs: u64,
    },
    /// No answer in time, or the connection failed.
    #[error("could not reach {rmm}: {detail}")]
    Connect { rmm: &'static str, detail: String },
    /// The answer is not the JSON the vendor documents.
    #[error("{rmm}'s answer is not valid JSON of the documented shape: {detail}")]
    Malformed { rmm: &'static str, detail: String },
    /// A next-page link that leaves the configured server or API.
    #[error("refusing {rmm}'s next-page link `{link}`: it leaves {origin}")]
    ForeignLink {
        rmm: &'static str,
        link: String,
        origin: String,
    },
    /// Paging did not end.
    #[error("{rmm}: more than {pages} pages; refusing to page further")]
    TooManyPages { rmm: &'static str, pages: usize },
}

/// Most pages one listing may have (50,000 devices at Datto's 250 a page are 200).
pub const MAX_PAGES: usize = 1_000;

/// One machine as an RMM knows it. Text fields are display-safe ([`crate::oauth::printable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmmDevice {
    /// The RMM's own ID (Datto's device UID, Automate's computer ID).
    pub id: String,
    /// The machine's name as its agent reports it.
    pub hostname: String,
    /// The Windows domain or workgroup the agent reports, if any.
    pub domain: Option<String>,
    pub operating_system: Option<String>,
    /// Datto's `deviceType.category` (`Desktop`, `Laptop`, `Server`, …) or Automate's `Type`.
    pub device_type: Option<String>,
    /// The agent's LAN address.
    pub ip_address: Option<String>,
    /// When the agent last reported.
    pub last_seen: Option<OffsetDateTime>,
    /// Online now, when the RMM says.
    pub online: Option<bool>,
    /// A computer with an agent (false: a printer, hypervisor host or network device the RMM
    /// monitors without one, which the directory is not expected to know).
    pub computer: bool,
    /// Deleted or suspended in the RMM (kept in the record, left out of reconciliation).
    pub retired: bool,
}

/// Every device of the configured site, by `deadline` (requests and rate-limit waits included).
///
/// # Errors
/// See [`RmmError`]; any failed page fails the whole import.
pub async fn devices(
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Vec<RmmDevice>, RmmError> {
    match settings.kind {
        RmmKind::Datto => datto::devices(settings, deadline).await,
        RmmKind::ConnectWiseAutomate => automate::devices(settings, deadline).await,
    }
}

/// The API origin of `settings`, an `https://` URL without user info, query or fragment.
fn origin(settings: &RmmSettings) -> Result<url::Url, RmmError> {
    crate::graph::https_url(&settings.api_url)
        .filter(|url| url.path() == "/" && url.query().is_none() && url.fragment().is_none())
        .ok_or_else(|| {
            RmmError::Setup(format!(
                "api_url `{}` is not an https:// origin (write it as https://host, without a path)",
                crate::oauth::printable(&settings.api_url)
            ))
        })
}

/// The HTTP client for `settings` (its CA, per-request timeout, no redirects).
fn http_client(settings: &RmmSettings) -> Result<reqwest::Client, RmmError> {
    crate::graph::http_client(settings.ca_pem.as_deref(), settings.request_timeout)
        .map_err(|err| RmmError::Setup(err.to_string()))
}

/// The time a request may take: the per-request timeout or what is left of the deadline.
fn time_left(
    rmm: &'static str,
    deadline: Instant,
    per_request: Duration,
) -> Result<Duration, RmmError> {
    crate::graph::time_left(deadline, per_request).ok_or_else(|| RmmError::Connect {
        rmm,
        detail: "the import's time ran out before this request".to_owned(),
    })
}

/// Sends the request `build` makes (given the time it may take), waiting out 429s; the status
/// and body of the first other answer.
async fn send(
    rmm: &'static str,
    deadline: Instant,
    per_request: Duration,
    build: impl Fn(Duration) -> Result<reqwest::RequestBuilder, RmmError>,
) -> Result<(u16, Vec<u8>), RmmError> {
    let connect = |err: reqwest::Error| RmmError::Connect {
        rmm,
        detail: crate::graph::reqwest_error_text(&err),
    };
    let mut attempts = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        attempts += 1;
        let response = build(time_left(rmm, deadline, per_request)?)?
            .send()
            .await
            .map_err(connect)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(connect)?.to_vec();
        if status != 429 {
            return Ok((status, body));
        }
        if !wait_throttled(&headers, attempts, &mut waited, deadline).await {
            return Err(RmmError::Throttled {
                rmm,
                attempts,
                waited_secs: waited.as_secs(),
            });
        }
    }
}

/// What a data request's answer means: its JSON, `None` for a first 401 (log in again and
/// repeat), or the error; a status in `refused` is [`RmmError::Forbidden`] with `advice`.
fn data_answer(
    rmm: &'static str,
    (status, body): (u16, Vec<u8>),
    path: &str,
    renewed: bool,
    refused: &[u16],
    advice: impl FnOnce() -> String,
) -> Result<Option<serde_json::Value>, RmmError> {
    match status {
        200..=299 => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|err| RmmError::Malformed {
                rmm,
                detail: format!("{err} (GET {path})"),
            }),
        401 if !renewed => Ok(None),
        _ if refused.contains(&status) => Err(RmmError::Forbidden {
            rmm,
            status,
            detail: format!("{} ({})", error_detail(&body), advice()),
        }),
        _ => Err(RmmError::Http {
            rmm,
            status,
            detail: error_detail(&body),
        }),
    }
}

/// `Authorization: Bearer …`, marked sensitive.
fn bearer(rmm: &'static str, token: &str) -> Result<reqwest::header::HeaderValue, RmmError> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            RmmError::Login {
                rmm,
                detail: "the access token cannot travel in a header".to_owned(),
            }
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Waits out a 429: `Retry-After` when sent (at most a minute), else 1, 2, 4 … 32 s; `false`
/// when the wait would pass the deadline.
async fn wait_throttled(
    headers: &reqwest::header::HeaderMap,
    attempts: u32,
    waited: &mut Duration,
    deadline: Instant,
) -> bool {
    let wait = crate::graph::retry_after(headers)
        .map(|d| d.min(Duration::from_secs(60)))
        .unwrap_or_else(|| Duration::from_secs(1 << attempts.saturating_sub(1).min(5)));
    if Instant::now() + wait >= deadline {
        return false;
    }
    tokio::time::sleep(wait).await;
    *waited += wait;
    true
}

/// A vendor's error text from a body (a JSON `error_description`, `message`, `Message` or
/// `error`, else the first line), display-safe.
fn error_detail(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => ["error_description", "message", "Message", "error"]
            .iter()
            .find_map(|k| json[k].as_str().map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    if text.trim().is_empty() {
        "no detail".to_owned()
    } else {
        crate::oauth::printable(text.trim())
    }
}

/// A text field of a JSON record, display-safe; empty is `None`.
fn text(value: &serde_json::Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(crate::oauth::printable)
}

/// An ID as a string, whether the vendor sends it as a number or a string.
fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => {
            Some(crate::oauth::printable(s.trim()))
        }
        _ => None,
    }
}
