//! The AWS client (the crate's IO for AWS): each service's endpoint (or one configured endpoint
//! for all, as a private peer or an interface endpoint needs), SigV4-signed requests over reqwest,
//! throttling and transient errors retried with exponential back-off and full jitter while the
//! scan's deadline allows, a timeout per request, and AWS's error envelopes (query XML, EC2 XML,
//! S3 XML, JSON 1.1) turned into [`AwsError`] kinds that say what to do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws::sigv4::{self, Credentials};

/// How to reach one account.
#[derive(Clone)]
pub struct AwsSettings {
    /// The 12-digit account the access key must belong to.
    pub account_id: String,
    /// The regions to check (validated names such as `us-east-1`); the first is the home region
    /// for global reads (S3's bucket list, CloudTrail, STS).
    pub regions: Vec<String>,
    pub credentials: Credentials,
    /// One `https://` base for every service (a test peer, a VPC endpoint proxy); `None`: AWS's
    /// public endpoints.
    pub endpoint: Option<String>,
    /// PEM text of the only CA to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
}

/// The services the checks read, by signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sts,
    Iam,
    Ec2,
    S3,
    S3Control,
    CloudTrail,
}

/// One account's client; cheap to clone.
#[derive(Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    settings: Arc<AwsSettings>,
    endpoint: Option<url::Url>,
    deadline: Instant,
}

/// Why an AWS request produced no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The settings cannot be used.
    #[error("{0}")]
    Setup(String),
    /// AWS refused the access key itself (unknown, deactivated, expired or badly signed).
    #[error(
        "AWS refused the access key ({code}: {message}): it is wrong, deactivated, deleted or expired; create a new access key for the scanning user and store it with `osiris credentials set`"
    )]
    Credentials { code: String, message: String },
    /// The key is valid but its policy does not allow the action.
    #[error("AWS denied the request ({code}: {message})")]
    Denied { code: String, message: String },
    /// An error answer that is not retried.
    #[error("AWS answered HTTP {status} {code}: {message}")]
    Service {
        status: u16,
        code: String,
        message: String,
    },
    /// Still throttled when the scan's time or the attempts ran out.
    #[error(
        "AWS kept throttling ({code}, {attempts} attempts, {waited_ms} ms waited) until the scan's time ran out"
    )]
    Throttled {
        code: String,
        attempts: u32,
        waited_ms: u64,
    },
    /// No answer in time, or the connection failed.
    #[error("could not reach AWS: {0}")]
    Connect(String),
    /// The answer is not the XML or JSON the service model documents.
    #[error("AWS's answer is malformed: {0}")]
    Malformed(String),
}

/// One answer's body, and the headers the callers look at.
#[derive(Debug)]
pub struct Answer {
    pub body: Vec<u8>,
}

/// The most attempts of one request, throttled or not.
pub const MAX_ATTEMPTS: u32 = 12;
/// The first back-off's ceiling; each retry doubles it up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("account_id", &self.account_id)
            .field("regions", &self.regions)
            .field("credentials", &self.credentials)
            .field("endpoint", &self.endpoint)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The name SigV4 scopes signatures to.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Sts => "sts",
            Service::Iam => "iam",
            Service::Ec2 => "ec2",
            Service::S3 | Service::S3Control => "s3",
            Service::CloudTrail => "cloudtrail",
        }
    }
}

impl AwsClient {
    /// A client whose requests (and back-off waits) end by `deadline`.
    ///
    /// # Errors
    /// When a region or the account ID is not valid, the endpoint is not `https://`, or the CA
    /// holds no usable certificate.
    pub fn new(settings: AwsSettings, deadline: Instant) -> Result<AwsClient, AwsError> {
        if !is_account_id(&settings.account_id) {
            return Err(AwsError::Setup(format!(
                "account ID `{}` is not 12 digits",
                settings.account_id.escape_debug()
            )));
        }
        if settings.regions.is_empty() {
            return Err(AwsError::Setup("no region to check".to_owned()));
        }
        if let Some(bad) = settings.regions.iter().find(|r| !is_region(r)) {
            return Err(AwsError::Setup(format!(
                "region `{}` is not an AWS region name such as us-east-1",
                bad.escape_debug()
            )));
        }
        let endpoint = match &settings.endpoint {
            None => None,
            Some(text) => Some(
                crate::graph::https_url(&format!("{}/", text.trim_end_matches('/')))
                    .filter(|u| u.query().is_none() && u.fragment().is_none())
                    .ok_or_else(|| {
                        AwsError::Setup(format!("endpoint `{text}` is not an https:// URL"))
                    })?,
            ),
        };
        let http = crate::graph::http_client(settings.ca_pem.as_deref(), settings.request_timeout)
            .map_err(|err| AwsError::Setup(err.to_string()))?;
        Ok(AwsClient {
            http,
            settings: Arc::new(settings),
            endpoint,
            deadline,
        })
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The home region (the first configured).
    pub fn home_region(&self) -> &str {
        self.settings
            .regions
            .first()
            .map_or("us-east-1", String::as_str)
    }

    /// A query-protocol action (IAM, STS, EC2): `POST /` with a form body; the XML answer.
    ///
    /// # Errors
    /// See [`AwsError`].
    pub async fn query(
        &self,
        service: Service,
        region: &str,
        action: &str,
        version: &str,
    ) -> Result<String, AwsError> {
        let body = format!("Action={action}&Version={version}");
        let answer = self
            .send(
                service,
                region,
                "POST",
                "/",
                &[],
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body.as_bytes(),
            )
            .await?;
        text(answer)
    }

    /// A JSON 1.1 action (CloudTrail): `POST /` with `X-Amz-Target`; the JSON answer.
    ///
    /// # Errors
    /// See [`AwsError`].
    pub async fn json(
        &self,
        service: Service,
        region: &str,
        target: &str,
        body: &Value,
    ) -> Result<Value, AwsError> {
        let answer = self
            .send(
                service,
                region,
                "POST",
                "/",
                &[],
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", target),
                ],
                body.to_string().as_bytes(),
            )
            .await?;
        serde_json::from_slice(&answer.body)
            .map_err(|err| AwsError::Malformed(format!("{target}: the JSON does not parse: {err}")))
    }

    /// A REST-XML `GET` (S3, S3 Control); the XML answer.
    ///
    /// # Errors
    /// See [`AwsError`].
    pub async fn rest_get(
        &self,
        service: Service,
        region: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<String, AwsError> {
        let answer = self
            .send(service, region, "GET", path, query, headers, b"")
            .await?;
        text(answer)
    }

    /// Where a service's requests go: its base URL and the path prefix below it.
    fn base(&self, service: Service, region: &str) -> Result<url::Url, AwsError> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        let account = &self.settings.account_id;
        let host = match service {
            Service::Sts => format!("sts.{region}.amazonaws.com"),
            Service::Iam => "iam.amazonaws.com".to_owned(),
            Service::Ec2 => format!("ec2.{region}.amazonaws.com"),
            Service::S3 => format!("s3.{region}.amazonaws.com"),
            Service::S3Control => format!("{account}.s3-control.{region}.amazonaws.com"),
            Service::CloudTrail => format!("cloudtrail.{region}.amazonaws.com"),
        };
        url::Url::parse(&format!("https://{host}/"))
            .map_err(|err| AwsError::Setup(format!("endpoint for {host}: {err}")))
    }

    /// Sends one request, signed afresh per attempt, retrying throttling and transient errors.
    #[allow(clippy::too_many_arguments, reason = "one request's parts")]
    async fn send(
        &self,
        service: Service,
        region: &str,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, AwsError> {
        if !is_region(region) {
            return Err(AwsError::Setup(format!(
                "region `{}` is not an AWS region name",
                region.escape_debug()
            )));
        }
        // IAM is global: its signatures are scoped to us-east-1.
        let signing_region = if service == Service::Iam {
            "us-east-1"
        } else {
            region
        };
        let base = self.base(service, region)?;
        let full_path = format!(
            "{}{}",
            base.path().trim_end_matches('/'),
            sigv4::encoded_path(path)
        );
        let host = match base.port() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        let query_string = sigv4::canonical_query(query);
        let mut url = base.clone();
        url.set_path(&full_path);
        url.set_query((!query_string.is_empty()).then_some(query_string.as_str()));
        let decoded_path = format!("{}{path}", base.path().trim_end_matches('/'));
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            attempts += 1;
            let amz_date = time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .map_err(|err| AwsError::Setup(format!("formatting the time: {err}")))?;
            let signed = sigv4::sign(
                &self.settings.credentials,
                &sigv4::Request {
                    method,
                    host: &host,
                    path: &decoded_path,
                    query,
                    headers,
                    payload: body,
                },
                sigv4::Scope {
                    region: signing_region,
                    service: service.signing_name(),
                    amz_date: &amz_date,
                },
            );
            let mut request = self
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes())
                        .map_err(|err| AwsError::Setup(format!("method {method}: {err}")))?,
                    url.clone(),
                )
                .timeout(self.request_timeout()?)
                .body(body.to_vec());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            for (name, value) in signed {
                let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                    AwsError::Setup(format!("the {name} header cannot travel in HTTP"))
                })?;
                if name == "authorization" || name == "x-amz-security-token" {
                    value.set_sensitive(true);
                }
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|err| connect_error(&err))?;
            let status = response.status().as_u16();
            let json_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .bytes()
                .await
                .map_err(|err| connect_error(&err))?
                .to_vec();
            if (200..300).contains(&status) {
                return Ok(Answer { body });
            }
            let (code, message) = error_envelope(&body, json_type.as_deref());
            match classify(status, &code) {
                Kind::Retry => {
                    let wait = self.backoff(attempts);
                    if attempts >= MAX_ATTEMPTS || Instant::now() + wait >= self.deadline {
                        return Err(AwsError::Throttled {
                            code: if code.is_empty() {
                                format!("HTTP {status}")
                            } else {
                                code
                            },
                            attempts,
                            waited_ms: waited.as_millis() as u64,
                        });
                    }
                    tracing::debug!(
                        status,
                        code = %code,
                        wait_ms = wait.as_millis() as u64,
                        attempt = attempts,
                        service = service.signing_name(),
                        "AWS throttled; backing off."
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                Kind::Credentials => return Err(AwsError::Credentials { code, message }),
                Kind::Denied => return Err(AwsError::Denied { code, message }),
                Kind::Other => {
                    return Err(AwsError::Service {
                        status,
                        code,
                        message,
                    });
                }
            }
        }
    }

    /// Full jitter: a random wait below `min(MAX_BACKOFF, BASE_BACKOFF × 2^(attempt − 1))`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = BASE_BACKOFF
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(MAX_BACKOFF);
        let mut bytes = [0u8; 4];
        let random =
            match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
                Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
                Err(_) => 0.5,
            };
        ceiling.mul_f64(random)
    }

    /// What is left of the scan's time, at most the per-request timeout.
    fn request_timeout(&self) -> Result<Duration, AwsError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AwsError::Connect(
                "the scan's time ran out before this request".to_owned(),
            ));
        }
        Ok(left.min(self.settings.request_timeout))
    }

    /// Waits `wait` unless the deadline comes first (`false` then).
    pub async fn pause(&self, wait: Duration) -> bool {
        if Instant::now() + wait >= self.deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

/// Twelve digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS region name (see [`model::is_aws_region`]).
pub fn is_region(text: &str) -> bool {
    model::is_aws_region(text)
}

enum Kind {
    Retry,
    Credentials,
    Denied,
    Other,
}

/// The error codes botocore's retry handler treats as throttling or transient.
const RETRIED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "AuthFailure",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidToken",
    "MissingAuthenticationToken",
];

const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
];

fn classify(status: u16, code: &str) -> Kind {
    if RETRIED.contains(&code) || matches!(status, 429 | 500 | 502 | 503 | 504) {
        Kind::Retry
    } else if CREDENTIAL_CODES.contains(&code) {
        Kind::Credentials
    } else if DENIED_CODES.contains(&code) || (status == 403 && code.is_empty()) {
        Kind::Denied
    } else {
        Kind::Other
    }
}

/// The error's code and message from any of AWS's envelopes: XML with `Code` and `Message`
/// elements (query, EC2, S3) or JSON with `__type` and `message` (JSON 1.1).
fn error_envelope(body: &[u8], json_type: Option<&str>) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let short = |m: &str| m.chars().take(300).collect::<String>();
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let code = json_type
            .or_else(|| json["__type"].as_str())
            .unwrap_or_default();
        let code = code
            .rsplit('#')
            .next()
            .unwrap_or(code)
            .split(':')
            .next()
            .unwrap_or(code);
        let message = json["message"]
            .as_str()
            .or_else(|| json["Message"].as_str())
            .unwrap_or("no error message");
        return (code.to_owned(), short(message));
    }
    match roxmltree::Document::parse(&text) {
        Ok(doc) => {
            let find = |name: &str| {
                doc.descendants()
                    .find(|n| n.tag_name().name() == name)
                    .and_then(|n| n.text())
                    .unwrap_or_default()
                    .to_owned()
            };
            let message = find("Message");
            (
                find("Code"),
                short(if message.is_empty() {
                    "no error message"
                } else {
                    &message
                }),
            )
        }
        Err(_) => (
            String::new(),
            "the error answer is not XML or JSON".to_owned(),
        ),
    }
}

fn text(answer: Answer) -> Result<String, AwsError> {
    String::from_utf8(answer.body)
        .map_err(|_| AwsError::Malformed("the answer is not UTF-8".to_owned()))
}

fn connect_error(err: &reqwest::Error) -> AwsError {
    AwsError::Connect(crate::graph::reqwest_error_text(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-4",
            "eu-central-2",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1/..",
            "us-east-1.evil.example",
            "us-east-1?x=1",
            "us east 1",
            "us-east-100",
            "-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
