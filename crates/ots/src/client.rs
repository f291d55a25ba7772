//! HTTP clients: OpenTimestamps calendars (submit, upgrade) and an Esplora block explorer.
//!
//! Both reach only `https://` URLs (or plain `http://` to a loopback address, which no host on
//! the LAN can answer for) and never follow redirects; upgrades ask only the calendars the
//! caller allows, never whatever URI a proof names.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use crate::attestation::Attestation;
use crate::bitcoin::{BlockHeader, WorkFloor};
use crate::error::OtsError;
use crate::op::Op;
use crate::timestamp::{DetachedTimestamp, Timestamp};

/// Talks to OpenTimestamps calendar servers.
#[derive(Debug, Clone)]
pub struct CalendarClient {
    http: reqwest::Client,
}

/// What happened to each pending attestation during [`CalendarClient::upgrade`].
#[derive(Debug)]
pub struct UpgradeReport {
    /// One entry per pending attestation found, in tree order.
    pub outcomes: Vec<CalendarOutcome>,
}

/// The result of asking one calendar about one commitment.
#[derive(Debug)]
pub struct CalendarOutcome {
    /// The calendar's URI from the pending attestation.
    pub calendar: String,
    /// The commitment the calendar was asked about.
    pub commitment: Vec<u8>,
    /// What the calendar said.
    pub status: UpgradeStatus,
}

/// Outcome of one upgrade request.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradeStatus {
    /// The calendar returned more proof; these Bitcoin heights now attest the commitment
    /// (empty if the calendar only added other attestations).
    Upgraded {
        /// Bitcoin block heights now reachable from the commitment.
        bitcoin_heights: Vec<u64>,
    },
    /// The calendar has not committed the commitment to Bitcoin yet (HTTP 404).
    Pending,
    /// The request failed; the pending attestation is kept.
    Failed {
        /// Why.
        error: OtsError,
    },
    /// The pending attestation names a calendar the caller did not allow: nothing was sent
    /// there and the attestation is kept as it is.
    NotAllowed,
}

/// Reads block headers from an Esplora HTTP API (`/block-height/<h>`, `/block/<hash>/header`).
#[derive(Debug, Clone)]
pub struct EsploraClient {
    http: reqwest::Client,
    base_url: String,
    floor: WorkFloor,
}

/// Environment variable that lowers the proof-of-work floor to regtest's for tests that run a
/// local regtest chain (`1` to enable); unset, and in production, the floor is
/// [`WorkFloor::MAINNET`].
pub const REGTEST_ENV: &str = "OSIRIS_TEST_ALLOW_REGTEST";

/// The proof-of-work floor in force: [`WorkFloor::MAINNET`] unless [`REGTEST_ENV`] is `1`.
pub fn work_floor() -> WorkFloor {
    if std::env::var_os(REGTEST_ENV).is_some_and(|value| value == "1") {
        WorkFloor::REGTEST
    } else {
        WorkFloor::MAINNET
    }
}

/// Checks that `url` may be contacted: `https://` with a host and no user name or password, or
/// `http://` to a loopback IP literal (127.0.0.0/8, ::1). Anything else, a LAN host over
/// plain HTTP included, is [`OtsError::InsecureUrl`].
pub fn check_url(url: &str) -> Result<reqwest::Url, OtsError> {
    let refused = || OtsError::InsecureUrl {
        url: url.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refused())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused());
    }
    let allowed = match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    };
    if allowed { Ok(parsed) } else { Err(refused()) }
}

/// The form calendar URLs are compared in: without trailing slashes.
fn calendar_key(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// Public aggregators ("pools") and the domain of the calendars their operator runs behind
/// them: a pool answers with pending attestations naming those calendars
/// (`https://alice.btc.calendar.opentimestamps.org`, …). The reference client whitelists the
/// same `https://*.calendar.<operator>` names.
const POOL_OPERATORS: [(&str, &str); 4] = [
    (
        "https://a.pool.opentimestamps.org",
        "calendar.opentimestamps.org",
    ),
    (
        "https://b.pool.opentimestamps.org",
        "calendar.opentimestamps.org",
    ),
    (
        "https://a.pool.eternitywall.com",
        "calendar.eternitywall.com",
    ),
    ("https://ots.btc.catallaxy.com", "calendar.catallaxy.com"),
];

/// The calendars an upgrade may ask: built from the calendars the caller submitted to (its
/// configuration), never from what a proof names.
#[derive(Debug, Clone, Default)]
pub struct CalendarAllowlist {
    urls: Vec<String>,
    operator_domains: Vec<&'static str>,
}

impl CalendarAllowlist {
    /// Exactly `calendars` (compared without trailing slashes); for each public pool among
    /// them, also `https://<name>.<operator calendar domain>` (DNS labels for `<name>`, no
    /// port, path or query), the calendars that pool hands out.
    pub fn for_submitted(calendars: &[String]) -> CalendarAllowlist {
        let mut operator_domains = Vec::new();
        for calendar in calendars {
            for (pool, domain) in POOL_OPERATORS {
                if calendar_key(calendar) == pool && !operator_domains.contains(&domain) {
                    operator_domains.push(domain);
                }
            }
        }
        CalendarAllowlist {
            urls: calendars
                .iter()
                .map(|url| calendar_key(url).to_owned())
                .collect(),
            operator_domains,
        }
    }

    /// Whether an upgrade may ask the calendar at `uri`.
    pub fn allows(&self, uri: &str) -> bool {
        let uri = calendar_key(uri);
        if self.urls.iter().any(|url| url == uri) {
            return true;
        }
        let Some(host) = uri.strip_prefix("https://") else {
            return false;
        };
        self.operator_domains.iter().any(|domain| {
            host.strip_suffix(domain)
                .and_then(|name| name.strip_suffix('.'))
                .is_some_and(|name| {
                    name.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    })
                })
        })
    }
}

/// Media type calendars expect in `Accept`.
const OTS_MEDIA_TYPE: &str = "application/vnd.opentimestamps.v1";
/// User agent sent to calendars and explorers.
const USER_AGENT: &str = "osiris";
/// Largest response body read from a calendar or explorer.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Request timeout of [`EsploraClient`].
const ESPLORA_TIMEOUT: Duration = Duration::from_secs(30);

impl CalendarClient {
    /// A client whose requests time out after `timeout`; TLS uses rustls with the ring provider
    /// and the platform's trust roots. URLs must pass [`check_url`]; redirects are not followed.
    pub fn new(timeout: Duration) -> Result<Self, OtsError> {
        Ok(CalendarClient {
            http: build_http_client(timeout)?,
        })
    }

    /// Submits `digest` to the calendar at `calendar_url`; returns the calendar's proof for it
    /// (usually ending in a pending attestation).
    pub async fn submit(&self, calendar_url: &str, digest: &[u8]) -> Result<Timestamp, OtsError> {
        let url = format!("{}/digest", calendar_key(calendar_url));
        check_url(&url)?;
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, OTS_MEDIA_TYPE)
            .body(digest.to_vec());
        let (status, body) = send(request, &url).await?;
        if status != 200 {
            return Err(status_error(&url, status, &body));
        }
        Timestamp::from_bytes(digest.to_vec(), &body).map_err(|err| OtsError::BadResponse {
            url,
            reason: format!("calendar proof does not parse: {err}"),
        })
    }

    /// Asks the calendar of every pending attestation whose URI `allowed` allows (the calendars
    /// the caller itself chose) for a completed proof and
    /// merges what it returns; that calendar's pending attestation is dropped once a Bitcoin
    /// attestation exists below it. Other calendars' pending attestations stay, so a calendar
    /// that answers with a bogus attestation cannot stop the others' upgrades.
    /// A pending URI not in `allowed` is [`UpgradeStatus::NotAllowed`] and is never contacted.
    /// Merged Bitcoin attestations are unchecked: the caller checks them against block headers.
    /// Failures are reported per calendar and leave the proof unchanged.
    pub async fn upgrade(
        &self,
        detached: &mut DetachedTimestamp,
        allowed: &CalendarAllowlist,
    ) -> Result<UpgradeReport, OtsError> {
        let mut pending = Vec::new();
        collect_pending(&detached.timestamp, &mut Vec::new(), &mut pending);
        let mut outcomes = Vec::new();
        for (path, uri, commitment) in pending {
            if !allowed.allows(&uri) {
                outcomes.push(CalendarOutcome {
                    calendar: uri,
                    commitment,
                    status: UpgradeStatus::NotAllowed,
                });
                continue;
            }
            let status = match self.fetch_upgrade(&uri, &commitment).await {
                Ok(None) => UpgradeStatus::Pending,
                Ok(Some(upgrade)) => {
                    match merge_at(&mut detached.timestamp, &path, upgrade, &uri) {
                        Ok(bitcoin_heights) => UpgradeStatus::Upgraded { bitcoin_heights },
                        Err(error) => UpgradeStatus::Failed { error },
                    }
                }
                Err(error) => UpgradeStatus::Failed { error },
            };
            outcomes.push(CalendarOutcome {
                calendar: uri,
                commitment,
                status,
            });
        }
        Ok(UpgradeReport { outcomes })
    }

    async fn fetch_upgrade(
        &self,
        uri: &str,
        commitment: &[u8],
    ) -> Result<Option<Timestamp>, OtsError> {
        let url = format!(
            "{}/timestamp/{}",
            calendar_key(uri),
            hex::encode(commitment)
        );
        check_url(&url)?;
        let request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, OTS_MEDIA_TYPE);
        let (status, body) = send(request, &url).await?;
        match status {
            200 => Timestamp::from_bytes(commitment.to_vec(), &body)
                .map(Some)
                .map_err(|err| OtsError::BadResponse {
                    url,
                    reason: format!("calendar proof does not parse: {err}"),
                }),
            404 => Ok(None),
            _ => Err(status_error(&url, status, &body)),
        }
    }
}

impl EsploraClient {
    /// A client for the Esplora API at `base_url` (e.g. `https://blockstream.info/api`), which
    /// must pass [`check_url`]; headers must meet `floor` (normally [`work_floor`]).
    pub fn new(base_url: &str, floor: WorkFloor) -> Result<Self, OtsError> {
        check_url(base_url)?;
        Ok(EsploraClient {
            http: build_http_client(ESPLORA_TIMEOUT)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            floor,
        })
    }

    /// The header of the block at `height`, checked to hash to the hash the explorer named and
    /// to carry at least the floor's proof-of-work.
    pub async fn header(&self, height: u64) -> Result<BlockHeader, OtsError> {
        let url = format!("{}/block-height/{height}", self.base_url);
        let hash = self.get_text(&url).await?;
        let hash = hash.trim();
        if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(OtsError::BadResponse {
                url,
                reason: format!("expected a 64-digit block hash, got {hash:?}"),
            });
        }
        let hash = hash.to_ascii_lowercase();
        let url = format!("{}/block/{hash}/header", self.base_url);
        let header_hex = self.get_text(&url).await?;
        let header = BlockHeader::from_hex(&header_hex).map_err(|err| OtsError::BadResponse {
            url: url.clone(),
            reason: err.to_string(),
        })?;
        if header.block_hash_hex() != hash {
            return Err(OtsError::BadResponse {
                url,
                reason: format!(
                    "header hashes to {}, not to the block hash {hash} the explorer gave for height {height}",
                    header.block_hash_hex()
                ),
            });
        }
        header.check_work(self.floor)?;
        Ok(header)
    }

    async fn get_text(&self, url: &str) -> Result<String, OtsError> {
        let (status, body) = send(self.http.get(url), url).await?;
        if status != 200 {
            return Err(status_error(url, status, &body));
        }
        String::from_utf8(body).map_err(|_| OtsError::BadResponse {
            url: url.to_owned(),
            reason: "body is not UTF-8 text".to_owned(),
        })
    }
}

fn build_http_client(timeout: Duration) -> Result<reqwest::Client, OtsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|err| OtsError::HttpClient(err.to_string()))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|err| OtsError::HttpClient(err.to_string()))
}

/// Sends a request and reads at most [`MAX_RESPONSE_BYTES`] of the body.
async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<(u16, Vec<u8>), OtsError> {
    let http_error = |source| OtsError::Http {
        url: url.to_owned(),
        source,
    };
    let mut response = request.send().await.map_err(http_error)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OtsError::BadResponse {
                url: url.to_owned(),
                reason: format!("response body exceeds {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

fn status_error(url: &str, status: u16, body: &[u8]) -> OtsError {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    OtsError::HttpStatus {
        url: url.to_owned(),
        status,
        body: text,
    }
}

/// Collects (op path, calendar URI, commitment) for every pending attestation.
fn collect_pending(
    stamp: &Timestamp,
    path: &mut Vec<Op>,
    res: &mut Vec<(Vec<Op>, String, Vec<u8>)>,
) {
    for attestation in &stamp.attestations {
        if let Attestation::Pending { uri } = attestation {
            res.push((path.clone(), uri.clone(), stamp.msg.clone()));
        }
    }
    for (op, child) in &stamp.ops {
        path.push(op.clone());
        collect_pending(child, path, res);
        path.pop();
    }
}

/// Merges `upgrade` at the node reached by `path`; drops the pending attestation for `uri` there
/// if a Bitcoin attestation now exists below it. Returns the Bitcoin heights below that node.
fn merge_at(
    root: &mut Timestamp,
    path: &[Op],
    upgrade: Timestamp,
    uri: &str,
) -> Result<Vec<u64>, OtsError> {
    let mut node = root;
    for op in path {
        node = node.child_mut(op).ok_or_else(|| OtsError::BadResponse {
            url: uri.to_owned(),
            reason: "proof changed during upgrade".to_owned(),
        })?;
    }
    node.merge(upgrade)?;
    let bitcoin_heights: Vec<u64> = node
        .all_attestations()
        .into_iter()
        .filter_map(|(_, attestation)| match attestation {
            Attestation::Bitcoin { height } => Some(height),
            _ => None,
        })
        .collect();
    if !bitcoin_heights.is_empty() {
        node.attestations
            .retain(|attestation| !matches!(attestation, Attestation::Pending { uri: pending } if pending == uri));
    }
    Ok(bitcoin_heights)
}
