//! Whom the agent trusts, and how it proves who it is.
//!
//! Before enrollment it trusts exactly one certificate: the agent CA whose SHA-256 fingerprint
//! the operator gave (`--ca-pin`). The gateway presents the chain `[its certificate, agent CA]`;
//! [`PinVerifier`] finds the CA with the pinned fingerprint in it and verifies the gateway's
//! certificate under that CA alone, for [`GATEWAY_TLS_NAME`] (sent as SNI and checked whatever
//! address the agent dials). After enrollment the agent CA stored in the state directory is the
//! only root ([`gateway_channel`]); no system root is ever consulted.
//!
//! A client certificate (enrollment's answer, a renewal) is accepted only when it is for the
//! agent's own TLS key and chains to the agent CA as a client certificate
//! ([`check_client_chain`]), the check the gateway's TLS will make.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_proto::{CaPin, ClientLimits, GATEWAY_TLS_NAME};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::state::pem;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Verifies the gateway against the pinned agent CA only, and remembers what it saw so a
/// refusal can be explained in words.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pin: CaPin,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Seen>>,
}

/// What the gateway presented, as [`PinVerifier`] judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The pinned CA was in the chain and the gateway's certificate verifies under it.
    Trusted {
        /// The pinned CA (DER).
        ca_der: Vec<u8>,
    },
    /// No certificate of the chain has the pinned fingerprint.
    NotPinned {
        /// The fingerprints of the CA certificates the gateway sent (none: it sent only its own).
        presented: Vec<CaPin>,
    },
    /// The pinned CA was there, but the gateway's certificate does not verify under it.
    Invalid {
        /// Why, in rustls's words.
        reason: String,
    },
}

/// The ring provider every TLS connection of the agent uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl PinVerifier {
    pub(crate) fn new(pin: CaPin) -> Self {
        Self {
            pin,
            provider: provider(),
            seen: Mutex::new(None),
        }
    }

    /// What the last handshake presented (`None`: no handshake got that far).
    pub(crate) fn seen(&self) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Seen {
        let Some(ca) = intermediates.iter().find(|cert| self.pin.matches(cert)) else {
            return Seen::NotPinned {
                presented: intermediates.iter().map(|cert| CaPin::of(cert)).collect(),
            };
        };
        let mut roots = RootCertStore::empty();
        if let Err(err) = roots.add(ca.clone()) {
            return Seen::Invalid {
                reason: format!("the pinned CA certificate cannot be used as a root: {err}"),
            };
        }
        let verifier = match WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        {
            Ok(verifier) => verifier,
            Err(err) => {
                return Seen::Invalid {
                    reason: err.to_string(),
                };
            }
        };
        match verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => Seen::Trusted {
                ca_der: ca.to_vec(),
            },
            Err(err) => Seen::Invalid {
                reason: err.to_string(),
            },
        }
    }

    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = self.judge(end_entity, intermediates, server_name, ocsp_response, now);
        let res = match &seen {
            Seen::Trusted { .. } => Ok(ServerCertVerified::assertion()),
            Seen::NotPinned { .. } => Err(rustls::Error::General(
                "no certificate of the gateway's chain has the pinned fingerprint".to_owned(),
            )),
            Seen::Invalid { reason } => Err(rustls::Error::General(reason.clone())),
        };
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(seen);
        res
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// The gateway's URI for `HOST:PORT`.
///
/// # Errors
/// When the address has no port or is not a valid authority; the message says which.
pub(crate) fn gateway_uri(gateway: &str) -> Result<String, String> {
    let (host, port) = gateway
        .rsplit_once(':')
        .ok_or_else(|| "expected HOST:PORT, e.g. 192.168.1.10:8443".to_owned())?;
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    port.parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("`{port}` is not a port number"))?;
    if gateway
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
    {
        return Err("it holds characters an address cannot".to_owned());
    }
    let uri = format!("https://{gateway}");
    uri.parse::<tonic::codegen::http::Uri>()
        .map_err(|err| format!("not an address: {err}"))?;
    Ok(uri)
}

/// A channel for enrollment: no client certificate, the gateway verified by `verifier` only.
pub(crate) async fn enrollment_channel(
    gateway: &str,
    verifier: Arc<PinVerifier>,
) -> Result<Channel, tonic::transport::Error> {
    let uri = gateway_uri(gateway).unwrap_or_default();
    let tls = ClientTlsConfig::new()
        .domain_name(GATEWAY_TLS_NAME)
        .timeout(HANDSHAKE_TIMEOUT);
    agent_proto::endpoint(&uri, &ClientLimits::STANDARD)?
        .tls_config_with_verifier(tls, verifier)?
        .connect()
        .await
}

/// A channel to the gateway with the agent's client certificate, trusting the agent CA only.
pub(crate) async fn gateway_channel(
    gateway: &str,
    agent_ca_der: &[u8],
    certificate_chain: &[Vec<u8>],
    tls_key_pem: &str,
) -> Result<Channel, tonic::transport::Error> {
    let uri = gateway_uri(gateway).unwrap_or_default();
    let chain_pem: String = certificate_chain
        .iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect();
    let tls = ClientTlsConfig::new()
        .domain_name(GATEWAY_TLS_NAME)
        .ca_certificate(Certificate::from_pem(pem("CERTIFICATE", agent_ca_der)))
        .identity(Identity::from_pem(chain_pem, tls_key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    agent_proto::endpoint(&uri, &ClientLimits::STANDARD)?
        .tls_config(tls)?
        .connect()
        .await
}

/// Checks that `chain` (leaf first, DER) is a client certificate for the key whose
/// SubjectPublicKeyInfo is `key_spki`, chaining to `agent_ca_der`, valid now.
///
/// # Errors
/// What is wrong, as a phrase.
pub(crate) fn check_client_chain(
    chain: &[Vec<u8>],
    agent_ca_der: &[u8],
    key_spki: &[u8],
) -> Result<(), String> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("the certificate chain is empty".to_owned());
    };
    let leaf = CertificateDer::from(leaf.as_slice());
    let parsed = rustls::server::ParsedCertificate::try_from(&leaf)
        .map_err(|err| format!("the certificate cannot be read: {err}"))?;
    if parsed.subject_public_key_info().as_ref() != key_spki {
        return Err("the certificate is for another key than this agent's TLS key".to_owned());
    }
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(agent_ca_der))
        .map_err(|err| format!("the agent CA cannot be used as a root: {err}"))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|err| err.to_string())?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    verifier
        .verify_client_cert(&leaf, &intermediates, UnixTime::now())
        .map_err(|err| format!("the certificate does not verify under the agent CA: {err}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses_need_a_host_and_a_port() {
        assert_eq!(
            gateway_uri("192.168.1.10:8443").as_deref(),
            Ok("https://192.168.1.10:8443")
        );
        assert_eq!(
            gateway_uri("[::1]:8443").as_deref(),
            Ok("https://[::1]:8443")
        );
        assert_eq!(
            gateway_uri("appliance.clinic.lan:443").as_deref(),
            Ok("https://appliance.clinic.lan:443")
        );
        for (bad, why) in [
            ("192.168.1.10", "expected HOST:PORT, e.g. 192.168.1.10:8443"),
            ("appliance", "expected HOST:PORT, e.g. 192.168.1.10:8443"),
            (":8443", "the host is empty"),
            ("host:0", "`0` is not a port number"),
            ("host:99999", "`99999` is not a port number"),
            ("user@host:8443", "it holds characters an address cannot"),
        ] {
            assert_eq!(gateway_uri(bad), Err(why.to_owned()), "{bad}");
        }
    }
}
