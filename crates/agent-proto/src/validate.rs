//! Validation of every message a side receives against the protocol's limits and rules.
//!
//! The gateway validates `EnrollRequest` and each `AgentMessage`; the agent validates
//! `EnrollResponse` and each `GatewayMessage`. A failure names the field (as a path from the
//! message's type, like `CheckResult.facts["os"]`) and the limit it broke, and converts into an
//! `INVALID_ARGUMENT` status. Validation does not verify signatures or certificates: that needs
//! keys ([`crate::verify_result`]) or a CA.

use crate::limits::{
    CHECK_INTERVAL_SECONDS, DEVICE_KEY_BYTES, FULL_REPORT_INTERVAL_SECONDS,
    HEARTBEAT_INTERVAL_SECONDS, MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES, MAX_CHECKS,
    MAX_CHUNK_BYTES, MAX_CSR_BYTES, MAX_DETAIL_BYTES, MAX_FACT_KEY_BYTES, MAX_FACT_VALUE_BYTES,
    MAX_FACTS, MAX_HOSTNAME_BYTES, MAX_ID_BYTES, MAX_ITEMS_IN_FLIGHT, MAX_LABEL_BYTES,
    MAX_MANIFEST_BYTES, MAX_MESSAGE_BYTES, MAX_PARAM_NAME_BYTES, MAX_PARAM_STRING_BYTES,
    MAX_PARAMS, MAX_PATH_BYTES, MAX_ROOTS, MAX_TOKEN_BYTES, QUEUE_AGE_SECONDS, QUEUE_BYTES,
    QUEUE_ITEMS, SIGNATURE_BYTES,
};
use crate::v1::{
    Ack, AgentConfig, AgentMessage, CheckResult, CheckSchedule, CheckStatus, DeviceFacts,
    DownloadChunk, DownloadRequest, EnrollRequest, EnrollResponse, Gap, GapReason, GatewayMessage,
    Heartbeat, Hello, Platform, QueueLimits, RemediationAction, RemediationOutcome,
    RemediationPhase, RemediationStatus, RenewCertificate, RunNow, RunRemediation, UpdateOffer,
    agent_message, gateway_message, param,
};

/// A message that breaks one of the protocol's limits or rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required field is empty, zero or unset.
    #[error("{field} is missing")]
    Missing {
        /// The field's path, e.g. `EnrollRequest.token`.
        field: String,
    },
    /// A field is longer than its limit.
    #[error("{field} is {len} bytes, over the limit of {max} bytes")]
    TooLong {
        /// The field's path.
        field: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map holds more entries than its limit.
    #[error("{field} has {count} entries, over the limit of {max}")]
    TooMany {
        /// The field's path.
        field: String,
        /// How many it holds.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A number is outside its allowed range.
    #[error("{field} is {value}, outside the allowed {min}..={max}")]
    OutOfRange {
        /// The field's path.
        field: String,
        /// Its value.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// An enum field holds `UNSPECIFIED` or a value this version does not know.
    #[error("{field} is {value}, not a value of {enum_name} this version knows")]
    UnknownValue {
        /// The field's path.
        field: String,
        /// The enum's proto name.
        enum_name: &'static str,
        /// The number it holds.
        value: i32,
    },
    /// A field's content does not have the required form.
    #[error("{field} {problem}")]
    Malformed {
        /// The field's path.
        field: String,
        /// What is wrong, as a phrase that follows the field's name.
        problem: String,
    },
    /// A sequenced item is further beyond the last acknowledgement than the in-flight limit.
    #[error(
        "{field} is {seq}, more than the limit of {max} items in flight beyond the last acknowledged {acked}"
    )]
    TooFarAhead {
        /// The field's path.
        field: String,
        /// The item's sequence number.
        seq: u64,
        /// The last acknowledged sequence number.
        acked: u64,
        /// The limit ([`MAX_ITEMS_IN_FLIGHT`]).
        max: u64,
    },
}

impl From<ValidationError> for tonic::Status {
    fn from(err: ValidationError) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

/// A message that can be checked against the protocol's limits.
pub trait Validate {
    /// Checks every field; the first problem found is returned.
    ///
    /// # Errors
    /// The field that breaks a limit or rule, and which.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Checks that a sequenced item (its sequence number `seq`) stays within [`MAX_ITEMS_IN_FLIGHT`]
/// of the last sequence number the gateway acknowledged (`acked`).
///
/// # Errors
/// [`ValidationError::TooFarAhead`] when `seq` is more than the limit beyond `acked`.
pub fn check_in_flight(field: &str, seq: u64, acked: u64) -> Result<(), ValidationError> {
    if seq.saturating_sub(acked) > MAX_ITEMS_IN_FLIGHT {
        return Err(ValidationError::TooFarAhead {
            field: field.to_owned(),
            seq,
            acked,
            max: MAX_ITEMS_IN_FLIGHT,
        });
    }
    Ok(())
}

/// Checks that `message` encodes to at most [`MAX_MESSAGE_BYTES`], before it is sent. `name` is
/// its type's name for the error.
///
/// A sender should call this: the codec refuses an oversized message too, but on the sending
/// side tonic reports that as a reset stream (`INTERNAL`, "h2 protocol error"), not as a clear
/// status.
///
/// # Errors
/// [`ValidationError::TooLong`] naming the message and the limit.
pub fn check_encoded_size(
    name: &str,
    message: &impl prost::Message,
) -> Result<(), ValidationError> {
    let len = message.encoded_len();
    if len > MAX_MESSAGE_BYTES {
        return Err(ValidationError::TooLong {
            field: name.to_owned(),
            len,
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

impl Validate for EnrollRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "EnrollRequest";
        printable(path, "token", &self.token, MAX_TOKEN_BYTES, Need::Required)?;
        bytes(path, "csr_der", &self.csr_der, MAX_CSR_BYTES)?;
        device_key(path, "device_public_key", &self.device_public_key)?;
        let Some(device) = &self.device else {
            return Err(missing(path, "device"));
        };
        device_facts("EnrollRequest.device", device)
    }
}

impl Validate for EnrollResponse {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "EnrollResponse";
        id(path, "agent_id", &self.agent_id)?;
        chain(path, "certificate_chain_der", &self.certificate_chain_der)?;
        bytes(
            path,
            "agent_ca_der",
            &self.agent_ca_der,
            MAX_CERTIFICATE_BYTES,
        )?;
        let Some(config) = &self.config else {
            return Err(missing(path, "config"));
        };
        agent_config("EnrollResponse.config", config)
    }
}

impl Validate for AgentConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        agent_config("AgentConfig", self)
    }
}

impl Validate for AgentMessage {
    fn validate(&self) -> Result<(), ValidationError> {
        match &self.kind {
            None => Err(missing("AgentMessage", "kind")),
            Some(agent_message::Kind::Hello(hello)) => hello.validate(),
            Some(agent_message::Kind::Result(result)) => result.validate(),
            Some(agent_message::Kind::Heartbeat(heartbeat)) => heartbeat.validate(),
            Some(agent_message::Kind::Gap(gap)) => gap.validate(),
            Some(agent_message::Kind::RemediationOutcome(outcome)) => outcome.validate(),
        }
    }
}

impl Validate for Hello {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "Hello";
        id(path, "agent_id", &self.agent_id)?;
        printable(
            path,
            "agent_version",
            &self.agent_version,
            MAX_LABEL_BYTES,
            Need::Required,
        )?;
        if self.protocol_version == 0 {
            return Err(missing(path, "protocol_version"));
        }
        Ok(())
    }
}

impl Validate for CheckResult {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "CheckResult";
        seq(path, "seq", self.seq)?;
        id(path, "check_id", &self.check_id)?;
        known::<CheckStatus>(path, "status", "CheckStatus", self.status)?;
        if self.facts.len() > MAX_FACTS {
            return Err(ValidationError::TooMany {
                field: format!("{path}.facts"),
                count: self.facts.len(),
                max: MAX_FACTS,
            });
        }
        for (key, value) in &self.facts {
            fact_key(key)?;
            if value.len() > MAX_FACT_VALUE_BYTES {
                return Err(ValidationError::TooLong {
                    field: format!("{path}.facts[{key:?}]"),
                    len: value.len(),
                    max: MAX_FACT_VALUE_BYTES,
                });
            }
        }
        time(path, "observed_at_unix_ms", self.observed_at_unix_ms)?;
        printable(
            path,
            "catalog_version",
            &self.catalog_version,
            MAX_LABEL_BYTES,
            Need::Required,
        )?;
        exact_len(path, "signature", &self.signature, SIGNATURE_BYTES)
    }
}

impl Validate for Heartbeat {
    /// Every field of a heartbeat is a plain number with no bound of its own, so this only
    /// exists to keep one call for every incoming kind.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

impl Validate for Gap {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "Gap";
        seq(path, "first_seq", self.first_seq)?;
        seq(path, "last_seq", self.last_seq)?;
        if self.last_seq < self.first_seq {
            return Err(ValidationError::Malformed {
                field: format!("{path}.last_seq"),
                problem: format!("is {}, before first_seq {}", self.last_seq, self.first_seq),
            });
        }
        known::<GapReason>(path, "reason", "GapReason", self.reason)?;
        time(path, "recorded_at_unix_ms", self.recorded_at_unix_ms)?;
        Ok(())
    }
}

impl Validate for RemediationOutcome {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "RemediationOutcome";
        seq(path, "seq", self.seq)?;
        id(path, "request_id", &self.request_id)?;
        id(path, "runbook_id", &self.runbook_id)?;
        known::<RemediationPhase>(path, "phase", "RemediationPhase", self.phase)?;
        known::<RemediationStatus>(path, "status", "RemediationStatus", self.status)?;
        printable(
            path,
            "detail",
            &self.detail,
            MAX_DETAIL_BYTES,
            Need::Optional,
        )?;
        time(path, "finished_at_unix_ms", self.finished_at_unix_ms)?;
        Ok(())
    }
}

impl Validate for GatewayMessage {
    fn validate(&self) -> Result<(), ValidationError> {
        match &self.kind {
            None => Err(missing("GatewayMessage", "kind")),
            Some(gateway_message::Kind::Ack(ack)) => ack.validate(),
            Some(gateway_message::Kind::Config(config)) => config.validate(),
            Some(gateway_message::Kind::UpdateOffer(offer)) => offer.validate(),
            Some(gateway_message::Kind::RunNow(run_now)) => run_now.validate(),
            Some(gateway_message::Kind::RunRemediation(request)) => request.validate(),
            Some(gateway_message::Kind::RenewCertificate(renew)) => renew.validate(),
        }
    }
}

impl Validate for Ack {
    /// Any number can be acknowledged (0 when nothing is stored yet); whether it goes backwards
    /// is for the agent to judge against what it holds.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

impl Validate for UpdateOffer {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "UpdateOffer";
        known::<Platform>(path, "platform", "Platform", self.platform)?;
        printable(
            path,
            "version",
            &self.version,
            MAX_LABEL_BYTES,
            Need::Required,
        )?;
        bytes(path, "manifest", &self.manifest, MAX_MANIFEST_BYTES)?;
        if self.roots.len() > MAX_ROOTS {
            return Err(ValidationError::TooMany {
                field: format!("{path}.roots"),
                count: self.roots.len(),
                max: MAX_ROOTS,
            });
        }
        for (i, root) in self.roots.iter().enumerate() {
            bytes(path, &format!("roots[{i}]"), root, MAX_MANIFEST_BYTES)?;
        }
        download_path(path, "download_path", &self.download_path)
    }
}

impl Validate for DownloadRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        download_path("DownloadRequest", "path", &self.path)
    }
}

impl Validate for DownloadChunk {
    fn validate(&self) -> Result<(), ValidationError> {
        too_long("DownloadChunk", "data", self.data.len(), MAX_CHUNK_BYTES)
    }
}

impl Validate for RunNow {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "RunNow";
        if self.check_ids.len() > MAX_CHECKS {
            return Err(ValidationError::TooMany {
                field: format!("{path}.check_ids"),
                count: self.check_ids.len(),
                max: MAX_CHECKS,
            });
        }
        for (check_idx, check_id) in self.check_ids.iter().enumerate() {
            id(path, &format!("check_ids[{check_idx}]"), check_id)?;
        }
        Ok(())
    }
}

impl Validate for RunRemediation {
    fn validate(&self) -> Result<(), ValidationError> {
        let path = "RunRemediation";
        id(path, "request_id", &self.request_id)?;
        id(path, "runbook_id", &self.runbook_id)?;
        known::<RemediationAction>(path, "action", "RemediationAction", self.action)?;
        if self.parameters.len() > MAX_PARAMS {
            return Err(ValidationError::TooMany {
                field: format!("{path}.parameters"),
                count: self.parameters.len(),
                max: MAX_PARAMS,
            });
        }
        for (name, value) in &self.parameters {
            param_name(name)?;
            let field = || format!("{path}.parameters[{name:?}]");
            match &value.value {
                None => {
                    return Err(ValidationError::Missing {
                        field: format!("{}.value", field()),
                    });
                }
                Some(param::Value::StringValue(text)) if text.len() > MAX_PARAM_STRING_BYTES => {
                    return Err(ValidationError::TooLong {
                        field: field(),
                        len: text.len(),
                        max: MAX_PARAM_STRING_BYTES,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Validate for RenewCertificate {
    fn validate(&self) -> Result<(), ValidationError> {
        chain(
            "RenewCertificate",
            "certificate_chain_der",
            &self.certificate_chain_der,
        )
    }
}

/// Whether an empty text is allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

fn missing(path: &str, name: &str) -> ValidationError {
    ValidationError::Missing {
        field: format!("{path}.{name}"),
    }
}

fn malformed(path: &str, name: &str, problem: impl Into<String>) -> ValidationError {
    ValidationError::Malformed {
        field: format!("{path}.{name}"),
        problem: problem.into(),
    }
}

fn too_long(path: &str, name: &str, len: usize, max: usize) -> Result<(), ValidationError> {
    if len > max {
        return Err(ValidationError::TooLong {
            field: format!("{path}.{name}"),
            len,
            max,
        });
    }
    Ok(())
}

/// An ID: 1 to [`MAX_ID_BYTES`] of ASCII letters, digits, `.`, `_`, `:` and `-`.
fn id(path: &str, name: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(missing(path, name));
    }
    too_long(path, name, value.len(), MAX_ID_BYTES)?;
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(malformed(
            path,
            name,
            format!("holds {bad:?}; IDs are ASCII letters, digits, '.', '_', ':' and '-'"),
        ));
    }
    Ok(())
}

/// Text without control characters, at most `max` bytes.
fn printable(
    path: &str,
    name: &str,
    value: &str,
    max: usize,
    need: Need,
) -> Result<(), ValidationError> {
    if value.is_empty() && need == Need::Required {
        return Err(missing(path, name));
    }
    too_long(path, name, value.len(), max)?;
    if value.chars().any(char::is_control) {
        return Err(malformed(path, name, "holds a control character"));
    }
    Ok(())
}

/// Bytes that must be present, at most `max`.
fn bytes(path: &str, name: &str, value: &[u8], max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(missing(path, name));
    }
    too_long(path, name, value.len(), max)
}

fn exact_len(path: &str, name: &str, value: &[u8], len: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(missing(path, name));
    }
    if value.len() != len {
        return Err(malformed(
            path,
            name,
            format!("is {} bytes; it must be exactly {len}", value.len()),
        ));
    }
    Ok(())
}

/// A sequence number: from 1 (0 means "none" in `Hello` and `Ack`).
fn seq(path: &str, name: &str, value: u64) -> Result<(), ValidationError> {
    if value == 0 {
        return Err(missing(path, name));
    }
    Ok(())
}

/// A time in milliseconds since the Unix epoch: set, and not before 1970.
fn time(path: &str, name: &str, unix_ms: i64) -> Result<(), ValidationError> {
    if unix_ms == 0 {
        return Err(missing(path, name));
    }
    if unix_ms < 0 {
        return Err(malformed(path, name, format!("is {unix_ms}, before 1970")));
    }
    Ok(())
}

/// An enum field set to a value this version knows, not `UNSPECIFIED` (always 0).
fn known<E: TryFrom<i32>>(
    path: &str,
    name: &str,
    enum_name: &'static str,
    value: i32,
) -> Result<(), ValidationError> {
    if value == 0 || E::try_from(value).is_err() {
        return Err(ValidationError::UnknownValue {
            field: format!("{path}.{name}"),
            enum_name,
            value,
        });
    }
    Ok(())
}

/// An Ed25519 public key: 32 bytes that decode to a curve point of large order.
fn device_key(path: &str, name: &str, value: &[u8]) -> Result<(), ValidationError> {
    exact_len(path, name, value, DEVICE_KEY_BYTES)?;
    match crate::signing::device_key(value) {
        Ok(key) if !key.is_weak() => Ok(()),
        Ok(_) => Err(malformed(path, name, "is a weak (small-order) Ed25519 key")),
        Err(_) => Err(malformed(path, name, "is not an Ed25519 public key")),
    }
}

fn device_facts(path: &str, device: &DeviceFacts) -> Result<(), ValidationError> {
    printable(
        path,
        "hostname",
        &device.hostname,
        MAX_HOSTNAME_BYTES,
        Need::Required,
    )?;
    if device.hostname.contains(char::is_whitespace) {
        return Err(malformed(path, "hostname", "holds white space"));
    }
    printable(path, "os", &device.os, MAX_LABEL_BYTES, Need::Required)?;
    printable(
        path,
        "os_version",
        &device.os_version,
        MAX_LABEL_BYTES,
        Need::Required,
    )?;
    printable(
        path,
        "agent_version",
        &device.agent_version,
        MAX_LABEL_BYTES,
        Need::Required,
    )?;
    known::<Platform>(path, "platform", "Platform", device.platform)
}

fn chain(path: &str, name: &str, certificates: &[Vec<u8>]) -> Result<(), ValidationError> {
    if certificates.is_empty() {
        return Err(missing(path, name));
    }
    if certificates.len() > MAX_CHAIN_CERTIFICATES {
        return Err(ValidationError::TooMany {
            field: format!("{path}.{name}"),
            count: certificates.len(),
            max: MAX_CHAIN_CERTIFICATES,
        });
    }
    for (cert_idx, certificate) in certificates.iter().enumerate() {
        bytes(
            path,
            &format!("{name}[{cert_idx}]"),
            certificate,
            MAX_CERTIFICATE_BYTES,
        )?;
    }
    Ok(())
}

fn agent_config(path: &str, config: &AgentConfig) -> Result<(), ValidationError> {
    if config.revision == 0 {
        return Err(missing(path, "revision"));
    }
    if config.checks.len() > MAX_CHECKS {
        return Err(ValidationError::TooMany {
            field: format!("{path}.checks"),
            count: config.checks.len(),
            max: MAX_CHECKS,
        });
    }
    for (check_idx, check) in config.checks.iter().enumerate() {
        check_schedule(&format!("{path}.checks[{check_idx}]"), check)?;
    }
    in_range(
        path,
        "heartbeat_interval_seconds",
        config.heartbeat_interval_seconds.into(),
        widen(&HEARTBEAT_INTERVAL_SECONDS),
    )?;
    in_range(
        path,
        "full_report_interval_seconds",
        config.full_report_interval_seconds.into(),
        widen(&FULL_REPORT_INTERVAL_SECONDS),
    )?;
    let Some(queue) = &config.queue else {
        return Err(missing(path, "queue"));
    };
    queue_limits(&format!("{path}.queue"), queue)?;
    if config.protocol_version == 0 {
        return Err(missing(path, "protocol_version"));
    }
    Ok(())
}

fn check_schedule(path: &str, check: &CheckSchedule) -> Result<(), ValidationError> {
    id(path, "check_id", &check.check_id)?;
    in_range(
        path,
        "interval_seconds",
        check.interval_seconds.into(),
        widen(&CHECK_INTERVAL_SECONDS),
    )?;
    in_range(
        path,
        "jitter_seconds",
        check.jitter_seconds.into(),
        (0, check.interval_seconds.into()),
    )
}

fn queue_limits(path: &str, queue: &QueueLimits) -> Result<(), ValidationError> {
    in_range(
        path,
        "max_items",
        queue.max_items,
        (*QUEUE_ITEMS.start(), *QUEUE_ITEMS.end()),
    )?;
    in_range(
        path,
        "max_bytes",
        queue.max_bytes,
        (*QUEUE_BYTES.start(), *QUEUE_BYTES.end()),
    )?;
    in_range(
        path,
        "max_age_seconds",
        queue.max_age_seconds.into(),
        widen(&QUEUE_AGE_SECONDS),
    )
}

fn widen(range: &std::ops::RangeInclusive<u32>) -> (u64, u64) {
    ((*range.start()).into(), (*range.end()).into())
}

fn in_range(
    path: &str,
    name: &str,
    value: u64,
    (min, max): (u64, u64),
) -> Result<(), ValidationError> {
    if !(min..=max).contains(&value) {
        return Err(ValidationError::OutOfRange {
            field: format!("{path}.{name}"),
            value,
            min,
            max,
        });
    }
    Ok(())
}

/// A fact name: 1 to [`MAX_FACT_KEY_BYTES`] of lower-case ASCII letters, digits, `_`, `.`, `-`.
fn fact_key(key: &str) -> Result<(), ValidationError> {
    let field = || format!("CheckResult.facts[{key:?}]");
    if key.is_empty() {
        return Err(ValidationError::Missing {
            field: "CheckResult.facts key".to_owned(),
        });
    }
    if key.len() > MAX_FACT_KEY_BYTES {
        return Err(ValidationError::TooLong {
            field: format!("{} key", field()),
            len: key.len(),
            max: MAX_FACT_KEY_BYTES,
        });
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(ValidationError::Malformed {
            field: format!("{} key", field()),
            problem: "is not made of lower-case ASCII letters, digits, '_', '.' and '-'".to_owned(),
        });
    }
    Ok(())
}

/// A parameter name: 1 to [`MAX_PARAM_NAME_BYTES`] of ASCII letters, digits and `_`, not
/// starting with a digit (runbooks receive parameters as environment variables).
fn param_name(name: &str) -> Result<(), ValidationError> {
    let field = || format!("RunRemediation.parameters[{name:?}]");
    if name.is_empty() {
        return Err(ValidationError::Missing {
            field: "RunRemediation.parameters name".to_owned(),
        });
    }
    if name.len() > MAX_PARAM_NAME_BYTES {
        return Err(ValidationError::TooLong {
            field: format!("{} name", field()),
            len: name.len(),
            max: MAX_PARAM_NAME_BYTES,
        });
    }
    let starts_with_digit = name.starts_with(|c: char| c.is_ascii_digit());
    if starts_with_digit || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ValidationError::Malformed {
            field: format!("{} name", field()),
            problem:
                "is not an identifier (ASCII letters, digits and '_', not starting with a digit)"
                    .to_owned(),
        });
    }
    Ok(())
}

/// An absolute path on the gateway: starts with one `/`, printable ASCII without white space,
/// `\`, `?`, `#` or `%`, and no `.` or `..` segment.
fn download_path(path: &str, name: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(missing(path, name));
    }
    too_long(path, name, value.len(), MAX_PATH_BYTES)?;
    if !value.starts_with('/') || value.starts_with("//") {
        return Err(malformed(
            path,
            name,
            "must start with a single '/' (a path on the gateway, not a URL)",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '\\' | '?' | '#' | '%'))
    {
        return Err(malformed(
            path,
            name,
            "holds a character outside printable ASCII or one of '\\', '?', '#', '%'",
        ));
    }
    if value
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(malformed(path, name, "holds a '.' or '..' segment"));
    }
    Ok(())
}
