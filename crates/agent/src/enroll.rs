//! Enrollment: the agent makes its keys, proves the one-time token to the gateway it reaches
//! through the pinned agent CA, and stores what it gets back.
//!
//! Order: refuse if already enrolled; read and check the token locally; make the TLS key
//! (ECDSA P-256) with its PKCS#10 request and the Ed25519 device key, in memory; connect,
//! trusting only the pinned CA ([`crate::tls::PinVerifier`]); call `Enroll`; check the answer
//! (the CA is the pinned one, the certificate is for this key and chains to it); write the
//! state directory, `state.json` last. Neither private key leaves the device, and a refusal
//! (wrong pin, bad token, unreachable gateway) stores nothing.
//!
//! The token never comes from the command line: arguments are visible to every local user
//! (`ps`, `/proc/PID/cmdline`) and stay in shell history, so it is read from a file or stdin.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use agent_proto::v1::{DeviceFacts, EnrollRequest};
use agent_proto::{CaPin, Validate};
use ed25519_dalek::SigningKey;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData};
use zeroize::Zeroizing;

use crate::platform::Platform;
use crate::state::{Enrollment, Identity, StateDir, StateError};
use crate::tls::{PinVerifier, Seen};

/// Where the enrollment token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file holding the token (white space around it is ignored).
    File(PathBuf),
    /// The first line of standard input.
    Stdin,
}

/// What to enroll with.
#[derive(Debug)]
pub struct EnrollOptions {
    /// The gateway's address, `HOST:PORT`.
    pub gateway: String,
    /// The one-time token.
    pub token: Zeroizing<String>,
    /// The agent CA's fingerprint.
    pub ca_pin: CaPin,
}

/// A finished enrollment, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The agent's ID on the appliance.
    pub agent_id: String,
    /// The gateway's address.
    pub gateway: String,
    /// The first configuration's revision.
    pub config_revision: u64,
    /// How many checks it schedules.
    pub n_checks: usize,
    /// Where the state was written.
    pub state_dir: PathBuf,
}

/// Why enrollment did not happen. Nothing is stored in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The state directory already holds an enrollment.
    #[error(
        "this machine is already enrolled as agent {agent_id} with {gateway} (state in {}); to enroll again, stop the agent, remove that directory, then enroll",
        dir.display()
    )]
    AlreadyEnrolled {
        /// The stored agent ID.
        agent_id: String,
        /// The stored gateway.
        gateway: String,
        /// The state directory.
        dir: PathBuf,
    },
    /// The gateway's address is unusable.
    #[error("the appliance address `{gateway}` is unusable: {problem}")]
    BadAddress {
        /// As given.
        gateway: String,
        /// Why.
        problem: String,
    },
    /// The token could not be read.
    #[error("reading the enrollment token from {from}")]
    TokenUnreadable {
        /// The file or `stdin`.
        from: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The token is empty or breaks the protocol's limits.
    #[error("the enrollment token is unusable: {0}")]
    BadToken(String),
    /// No certificate the gateway presented has the pinned fingerprint.
    #[error(
        "the appliance at {gateway} presented {}, but --ca-pin is {pin}: nothing was sent or stored. Compare the pin with what `osiris agent token create` printed on the appliance; if they match, something between this machine and the appliance is presenting another certificate, so do not enroll until you know what",
        presented_words(presented)
    )]
    PinMismatch {
        /// The gateway's address.
        gateway: String,
        /// The pin given.
        pin: CaPin,
        /// The CA fingerprints presented.
        presented: Vec<CaPin>,
    },
    /// The pinned CA was presented, but the gateway's certificate does not verify under it.
    #[error(
        "the appliance at {gateway} presented the pinned agent CA, but its own certificate does not verify under it for {}: {reason}",
        agent_proto::GATEWAY_TLS_NAME
    )]
    GatewayCertificate {
        /// The gateway's address.
        gateway: String,
        /// Why.
        reason: String,
    },
    /// The gateway could not be reached (or the connection broke).
    #[error(
        "could not reach the appliance's agent gateway at {gateway}: {detail}; check the address and port (`[agents] listen` on the appliance) and that this machine can reach it"
    )]
    Unreachable {
        /// The gateway's address.
        gateway: String,
        /// What failed.
        detail: String,
    },
    /// The gateway refused the token.
    #[error(
        "the appliance refused the enrollment token ({detail}): it is unknown, already used or expired; create a new one with `osiris agent token create` on the appliance"
    )]
    TokenRefused {
        /// The gateway's words.
        detail: String,
    },
    /// The gateway refused the request for another reason.
    #[error("the appliance refused the enrollment: {code}: {detail}")]
    Refused {
        /// The gRPC status code's name.
        code: String,
        /// The gateway's words.
        detail: String,
    },
    /// The gateway's answer cannot be used.
    #[error(
        "the appliance's answer cannot be used: {0}; nothing was stored, and the token may be used up"
    )]
    BadAnswer(String),
    /// A key could not be made.
    #[error("making the agent's keys: {0}")]
    Keys(String),
    /// The state could not be written.
    #[error(
        "the appliance enrolled this machine as agent {agent_id}, but its state could not be stored; free the problem below and enroll again with a new token"
    )]
    Store {
        /// The agent ID the appliance issued.
        agent_id: String,
        /// What failed.
        #[source]
        source: StateError,
    },
    /// The state directory could not be read.
    #[error(transparent)]
    State(StateError),
}

/// Reads the token from `source`.
///
/// # Errors
/// When it cannot be read or is empty.
pub fn read_token(source: &TokenSource) -> Result<Zeroizing<String>, EnrollError> {
    let (from, text) = match source {
        TokenSource::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map(Zeroizing::new),
        ),
        TokenSource::Stdin => {
            let mut text = Zeroizing::new(String::new());
            let res = std::io::stdin().lock().read_to_string(&mut text);
            ("stdin".to_owned(), res.map(|_| text))
        }
    };
    let text = text.map_err(|source| EnrollError::TokenUnreadable {
        from: from.clone(),
        source,
    })?;
    let token = Zeroizing::new(text.lines().next().unwrap_or_default().trim().to_owned());
    if token.is_empty() {
        return Err(EnrollError::BadToken(format!("{from} holds no token")));
    }
    Ok(token)
}

/// Reads an enrollment link (the console's QR code,
/// `osiris-agent://enroll?appliance=HOST:PORT&ca-pin=sha256:HEX&token=TOKEN`, values
/// percent-encoded) from `source` and returns what it names. Like the token, the link is never
/// taken from the command line.
pub fn read_link(source: &TokenSource) -> Result<EnrollOptions, EnrollError> {
    let line = read_token(source)?;
    parse_link(&line)
}

/// The gateway, pin and token of an enrollment link (see [`read_link`]).
pub fn parse_link(link: &str) -> Result<EnrollOptions, EnrollError> {
    let bad = |why: &str| {
        EnrollError::BadToken(format!(
            "the enrollment link is not one the appliance's console shows ({why}); it looks like osiris-agent://enroll?appliance=HOST:PORT&ca-pin=sha256:HEX&token=TOKEN"
        ))
    };
    let query = link
        .trim()
        .strip_prefix("osiris-agent://enroll?")
        .ok_or_else(|| bad("it does not start with osiris-agent://enroll?"))?;
    let (mut gateway, mut ca_pin, mut token) = (None, None, None);
    for pair in query.split('&') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("a part has no `=`"))?;
        let value = percent_decode(value).ok_or_else(|| bad("a value is badly percent-encoded"))?;
        let slot = match key {
            "appliance" => &mut gateway,
            "ca-pin" => &mut ca_pin,
            "token" => &mut token,
            _ => return Err(bad("it has an unknown part")),
        };
        if slot.replace(value).is_some() {
            return Err(bad("a part appears twice"));
        }
    }
    let (Some(gateway), Some(ca_pin), Some(token)) = (gateway, ca_pin, token) else {
        return Err(bad("appliance, ca-pin and token must all be present"));
    };
    let token = Zeroizing::new(token);
    let ca_pin = ca_pin
        .parse::<CaPin>()
        .map_err(|err| bad(&err.to_string()))?;
    Ok(EnrollOptions {
        gateway,
        token,
        ca_pin,
    })
}

/// RFC 3986 percent-decoding of one query value; `None` for a bad escape or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Enrolls this machine with the gateway in `options` and stores the result in `state_dir`.
///
/// # Errors
/// See [`EnrollError`]; none of them leaves anything stored.
pub async fn enroll(
    platform: &dyn Platform,
    state_dir: &StateDir,
    options: EnrollOptions,
) -> Result<Enrolled, EnrollError> {
    if let Some(identity) = state_dir.read_identity().map_err(EnrollError::State)? {
        return Err(EnrollError::AlreadyEnrolled {
            agent_id: identity.agent_id,
            gateway: identity.gateway,
            dir: state_dir.path().to_owned(),
        });
    }
    let gateway = options.gateway.clone();
    crate::tls::gateway_uri(&gateway).map_err(|problem| EnrollError::BadAddress {
        gateway: gateway.clone(),
        problem,
    })?;
    let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|err| EnrollError::Keys(err.to_string()))?;
    let csr_der = CertificateParams::default()
        .serialize_request(&tls_key)
        .map_err(|err| EnrollError::Keys(err.to_string()))?
        .der()
        .to_vec();
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|err| EnrollError::Keys(err.to_string()))?;
    let device_key = SigningKey::from_bytes(&seed);
    let device = platform.describe_device();
    let request = EnrollRequest {
        token: options.token.as_str().to_owned(),
        csr_der,
        device_public_key: device_key.verifying_key().to_bytes().to_vec(),
        device: Some(DeviceFacts {
            hostname: device.hostname,
            os: device.os,
            os_version: device.os_version,
            agent_version: crate::agent_version().to_owned(),
            platform: platform.wire_platform().into(),
        }),
    };
    if let Err(err) = request.validate() {
        return Err(if err.to_string().starts_with("EnrollRequest.token") {
            EnrollError::BadToken(err.to_string())
        } else {
            EnrollError::Keys(err.to_string())
        });
    }

    let verifier = Arc::new(PinVerifier::new(options.ca_pin));
    let channel = match crate::tls::enrollment_channel(&gateway, Arc::clone(&verifier)).await {
        Ok(channel) => channel,
        Err(err) => return Err(connect_error(&gateway, &options.ca_pin, &verifier, &err)),
    };
    let Some(Seen::Trusted { ca_der }) = verifier.seen() else {
        return Err(EnrollError::Unreachable {
            gateway,
            detail: "the TLS handshake finished without verifying the gateway".to_owned(),
        });
    };
    tracing::info!(gateway = %gateway, ca_pin = %options.ca_pin, "Gateway verified by the pinned agent CA.");
    let mut client = agent_proto::gateway_client(channel);
    let response = client
        .enroll(request)
        .await
        .map_err(|status| status_error(&gateway, &status))?
        .into_inner();
    response
        .validate()
        .map_err(|err| EnrollError::BadAnswer(err.to_string()))?;
    if response.agent_ca_der != ca_der {
        return Err(EnrollError::BadAnswer(format!(
            "it names the agent CA {}, not the pinned {} the gateway presented",
            CaPin::of(&response.agent_ca_der),
            options.ca_pin
        )));
    }
    crate::tls::check_client_chain(
        &response.certificate_chain_der,
        &ca_der,
        &tls_key.subject_public_key_info(),
    )
    .map_err(EnrollError::BadAnswer)?;
    let config = response
        .config
        .ok_or_else(|| EnrollError::BadAnswer("it holds no configuration".to_owned()))?;
    let enrollment = Enrollment {
        identity: Identity {
            agent_id: response.agent_id.clone(),
            gateway: gateway.clone(),
            ca_pin: options.ca_pin.to_string(),
            enrolled_at_unix_ms: crate::now_unix_ms(),
        },
        tls_key_pem: Zeroizing::new(tls_key.serialize_pem()),
        device_key,
        certificate_chain: response.certificate_chain_der,
        agent_ca: ca_der,
        config,
    };
    state_dir
        .save_enrollment(platform, &enrollment)
        .map_err(|source| EnrollError::Store {
            agent_id: response.agent_id.clone(),
            source,
        })?;
    tracing::info!(agent_id = %response.agent_id, gateway = %gateway, "Enrolled.");
    Ok(Enrolled {
        agent_id: response.agent_id,
        gateway,
        config_revision: enrollment.config.revision,
        n_checks: enrollment.config.checks.len(),
        state_dir: state_dir.path().to_owned(),
    })
}

/// Explains a failed connection: by what the pin verifier saw when the handshake got that far.
fn connect_error(
    gateway: &str,
    pin: &CaPin,
    verifier: &PinVerifier,
    err: &tonic::transport::Error,
) -> EnrollError {
    match verifier.seen() {
        Some(Seen::NotPinned { presented }) => EnrollError::PinMismatch {
            gateway: gateway.to_owned(),
            pin: *pin,
            presented,
        },
        Some(Seen::Invalid { reason }) => EnrollError::GatewayCertificate {
            gateway: gateway.to_owned(),
            reason,
        },
        Some(Seen::Trusted { .. }) | None => EnrollError::Unreachable {
            gateway: gateway.to_owned(),
            detail: crate::error_chain(err),
        },
    }
}

fn status_error(gateway: &str, status: &tonic::Status) -> EnrollError {
    let detail = status.message().to_owned();
    match status.code() {
        tonic::Code::PermissionDenied => EnrollError::TokenRefused { detail },
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            EnrollError::Unreachable {
                gateway: gateway.to_owned(),
                detail: format!("{}: {detail}", status.code().description()),
            }
        }
        code => EnrollError::Refused {
            code: format!("{code:?}"),
            detail,
        },
    }
}

fn presented_words(presented: &[CaPin]) -> String {
    match presented {
        [] => "no CA certificate with its own (it must send its agent CA after its certificate)"
            .to_owned(),
        [one] => format!("an agent CA with fingerprint {one}"),
        many => format!(
            "CA certificates with fingerprints {}",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
