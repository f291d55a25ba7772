//! The appliance's agent CA: a per-appliance ECDSA P-256 authority whose fingerprint the agent
//! pins at enrollment, the gateway's server certificate (issued fresh at every start), and the
//! agents' short-lived client certificates, issued over the public key of a request and nothing
//! else of it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use agent_proto::{AGENT_URI_PREFIX, CaPin, GATEWAY_TLS_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// The CA's subject name (every appliance's agent CA has it; they differ by key).
const CA_NAME: &str = "OsirisCare appliance agent CA";

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// Reading a file or creating the directory.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error("{} is readable by others (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display())]
    KeyTooOpen { path: PathBuf, mode: u32 },
    /// The key and certificate files do not belong together, or one of them is missing.
    #[error("{}: {detail}; restore both files from a backup (enrolled agents trust this CA)", dir.display())]
    Damaged { dir: PathBuf, detail: String },
    /// Writing a file durably.
    #[error("saving the agent CA")]
    Write(#[from] durable::Error),
    /// rcgen refused (a malformed key file or request).
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// The loaded CA.
pub struct AgentCa {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

impl std::fmt::Debug for AgentCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCa")
            .field("pin", &self.pin())
            .finish_non_exhaustive()
    }
}

/// A client certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its SHA-256 (what the registry keys agents by).
    pub sha256: [u8; 32],
    /// When it expires (unix seconds).
    pub not_after: i64,
}

fn ca_params(not_before: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(20 * 365);
    params
}

impl AgentCa {
    /// Loads the CA from `dir` (`ca.key`, 0600, and `ca.der`), creating both on first use.
    ///
    /// # Errors
    /// A key readable by others, one file without the other, or files that do not belong together.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let key_path = dir.join("ca.key");
        let cert_path = dir.join("ca.der");
        match (key_path.exists(), cert_path.exists()) {
            (false, false) => Self::create(dir, &key_path, &cert_path),
            (true, true) => Self::load(dir, &key_path, &cert_path),
            (key, _) => Err(CaError::Damaged {
                dir: dir.to_owned(),
                detail: format!("{} is missing", if key { "ca.der" } else { "ca.key" }),
            }),
        }
    }

    fn create(dir: &Path, key_path: &Path, cert_path: &Path) -> Result<Self, CaError> {
        std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
            action: "creating",
            path: dir.to_owned(),
            source,
        })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(OffsetDateTime::now_utc() - Duration::days(1));
        let der = params.self_signed(&key)?.der().to_vec();
        durable::write(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        durable::write(cert_path, &der, 0o644)?;
        tracing::info!(pin = %CaPin::of(&der), "Created the appliance's agent CA.");
        let issuer = Issuer::new(params, key);
        Ok(Self { issuer, der })
    }

    fn load(dir: &Path, key_path: &Path, cert_path: &Path) -> Result<Self, CaError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| CaError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })
        };
        let mode = std::fs::metadata(key_path)
            .map_err(|source| CaError::Io {
                action: "reading",
                path: key_path.to_owned(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyTooOpen {
                path: key_path.to_owned(),
                mode,
            });
        }
        let pem = String::from_utf8(read(key_path)?).map_err(|_| CaError::Damaged {
            dir: dir.to_owned(),
            detail: "ca.key is not PEM text".to_owned(),
        })?;
        let key = KeyPair::from_pem(&pem)?;
        let der = read(cert_path)?;
        // The certificate must be of this key.
        let damaged = |detail: &str| CaError::Damaged {
            dir: dir.to_owned(),
            detail: detail.to_owned(),
        };
        let cert_key =
            spki_of_certificate(&der).ok_or_else(|| damaged("ca.der is not a certificate"))?;
        if cert_key != key.subject_public_key_info() {
            return Err(damaged("ca.der is not the certificate of ca.key"));
        }
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key)?;
        Ok(Self { issuer, der })
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its fingerprint, as `osiris agent token create` prints it for the agent to pin.
    #[must_use]
    pub fn pin(&self) -> CaPin {
        CaPin::of(&self.der)
    }

    /// A server certificate and key (PEM) for the gateway: the name agents ask for
    /// ([`GATEWAY_TLS_NAME`]), server authentication only, valid for a year. The chain sent is
    /// the leaf and the CA, so an agent can check the CA against its pin before it enrolls.
    ///
    /// # Errors
    /// rcgen's.
    pub fn server_identity(&self) -> Result<(String, String), CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec![GATEWAY_TLS_NAME.to_owned()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, GATEWAY_TLS_NAME);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(365);
        params.serial_number = Some(serial());
        let cert = params.signed_by(&key, &self.issuer)?;
        let chain = format!("{}{}", cert.pem(), crate::pem(&self.der));
        Ok((chain, key.serialize_pem()))
    }

    /// A client certificate for `agent_id` over the public key of the PKCS#10 request `csr_der`
    /// (its signature is checked; its subject and extensions are ignored), valid for `lifetime`.
    ///
    /// # Errors
    /// A request that is not valid DER PKCS#10, whose signature does not verify, or whose key
    /// rcgen cannot sign for.
    pub fn issue_for_request(
        &self,
        csr_der: &[u8],
        agent_id: &str,
        lifetime: std::time::Duration,
    ) -> Result<Issued, CaError> {
        let csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())?;
        self.issue(&csr.public_key, agent_id, lifetime)
    }

    /// A fresh client certificate for the key of `certificate_der` (a renewal: the agent keeps its
    /// TLS key).
    ///
    /// # Errors
    /// A certificate that cannot be parsed.
    pub fn renew(
        &self,
        certificate_der: &[u8],
        agent_id: &str,
        lifetime: std::time::Duration,
    ) -> Result<Issued, CaError> {
        let spki = spki_of_certificate(certificate_der)
            .ok_or(CaError::Certificate(rcgen::Error::CouldNotParseCertificate))?;
        let public = rcgen::SubjectPublicKeyInfo::from_der(&spki)?;
        self.issue(&public, agent_id, lifetime)
    }

    fn issue(
        &self,
        public: &impl PublicKeyData,
        agent_id: &str,
        lifetime: std::time::Duration,
    ) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, agent_id);
        params.distinguished_name = name;
        params.subject_alt_names = vec![SanType::URI(
            format!("{AGENT_URI_PREFIX}{agent_id}").try_into()?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        let not_after = now + Duration::try_from(lifetime).unwrap_or(Duration::days(7));
        params.not_after = not_after;
        params.serial_number = Some(serial());
        let cert = params.signed_by(public, &self.issuer)?;
        let der = cert.der().to_vec();
        Ok(Issued {
            sha256: *CaPin::of(&der).digest(),
            der,
            not_after: not_after.unix_timestamp(),
        })
    }
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// The SubjectPublicKeyInfo (DER) of a certificate.
fn spki_of_certificate(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// When a certificate (DER) expires, unix seconds.
#[must_use]
pub fn not_after(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_persists_its_key_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let ca = AgentCa::load_or_create(dir.path()).unwrap();
        let again = AgentCa::load_or_create(dir.path()).unwrap();
        assert_eq!(ca.pin(), again.pin(), "the same CA after a restart");
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = CertificateParams::new(vec!["evil.example".to_owned()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let issued = again
            .issue_for_request(csr.der(), "a-1", std::time::Duration::from_secs(3600))
            .unwrap();
        let renewed = again
            .renew(&issued.der, "a-1", std::time::Duration::from_secs(3600))
            .unwrap();
        assert_eq!(
            spki_of_certificate(&issued.der),
            spki_of_certificate(&renewed.der)
        );
        assert_eq!(
            spki_of_certificate(&issued.der).unwrap(),
            key.subject_public_key_info()
        );
        assert_ne!(issued.sha256, renewed.sha256);
        assert!(
            !String::from_utf8_lossy(&issued.der).contains("evil.example"),
            "the request's names are ignored"
        );
        assert!(
            again
                .issue_for_request(b"not a request", "a-1", std::time::Duration::from_secs(60))
                .is_err()
        );

        std::fs::set_permissions(
            dir.path().join("ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(
            AgentCa::load_or_create(dir.path())
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        std::fs::set_permissions(
            dir.path().join("ca.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let other = tempfile::tempdir().unwrap();
        AgentCa::load_or_create(other.path()).unwrap();
        std::fs::copy(other.path().join("ca.der"), dir.path().join("ca.der")).unwrap();
        assert!(
            AgentCa::load_or_create(dir.path())
                .unwrap_err()
                .to_string()
                .contains("not the certificate of ca.key")
        );
        std::fs::remove_file(dir.path().join("ca.der")).unwrap();
        assert!(
            AgentCa::load_or_create(dir.path())
                .unwrap_err()
                .to_string()
                .contains("ca.der is missing")
        );
    }
}
