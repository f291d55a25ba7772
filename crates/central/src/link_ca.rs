//! The link CA: Central Command's own certificate authority that issues each claimed appliance
//! its client certificate for mutual TLS. Ed25519 throughout; the key lives in a 0600 file that
//! every instance of one Central Command shares, never in the database or the configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, PublicKeyData, SignatureAlgorithm,
};

/// The CA's subject. Every Central Command's CA has this name; they differ by key, and a
/// certificate from another one fails the signature check.
const CA_NAME: &str = "OsirisCare Central Command link CA";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (33 bytes: 0 unused bits, 32-byte key) }.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why the CA could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// Reading or writing its files.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error("{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    KeyTooOpen {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The directory already holds a CA; it is never overwritten.
    #[error(
        "{0} already holds a link CA; appliances' certificates depend on it, so it is never replaced"
    )]
    Exists(PathBuf),
    /// rcgen refused (a malformed key file, never expected otherwise).
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Writing a file durably.
    #[error("saving the link CA")]
    Write(#[from] durable::Error),
}

/// The link CA, loaded.
pub struct LinkCa {
    key: KeyPair,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for LinkCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCa").finish_non_exhaustive()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    params
}

impl LinkCa {
    /// A new CA (Ed25519 key, self-signed for ten years), written to `dir` as `ca.pem` (public)
    /// and `ca.key` (0600). Refuses a directory that already holds one.
    pub fn create(dir: &Path) -> Result<LinkCa, CaError> {
        let key_path = dir.join("ca.key");
        if key_path.exists() {
            return Err(CaError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
            action: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let cert = ca_params().self_signed(&key)?;
        durable::write(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        durable::write(&dir.join("ca.pem"), cert.pem().as_bytes(), 0o644)?;
        Ok(LinkCa {
            key,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        })
    }

    /// Loads the CA from `dir` (`ca.key` must be 0600).
    pub fn load(dir: &Path) -> Result<LinkCa, CaError> {
        let key_path = dir.join("ca.key");
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CaError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            })
        };
        let meta = std::fs::metadata(&key_path).map_err(|source| CaError::Io {
            action: "reading",
            path: key_path.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyTooOpen {
                path: key_path,
                mode,
            });
        }
        let key = KeyPair::from_pem(&read(&key_path)?)?;
        let cert_pem = read(&dir.join("ca.pem"))?;
        let cert_der = pem_to_der(&cert_pem).ok_or_else(|| CaError::Io {
            action: "parsing",
            path: dir.join("ca.pem"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a PEM certificate"),
        })?;
        Ok(LinkCa {
            key,
            cert_pem,
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A client certificate for appliance `appliance_id` whose key is the Ed25519 `public` key:
    /// client authentication only, valid for two years. Returns (DER, PEM).
    pub fn issue(
        &self,
        public: &[u8; 32],
        appliance_id: i64,
    ) -> Result<(Vec<u8>, String), CaError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("osiris-appliance-{appliance_id}"),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(730);
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&Ed25519Public(*public), &issuer)?;
        Ok((cert.der().to_vec(), cert.pem()))
    }
}

/// An Ed25519 public key as rcgen's issued-certificate subject key.
struct Ed25519Public([u8; 32]);

impl PublicKeyData for Ed25519Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

/// The 32-byte key of an Ed25519 SubjectPublicKeyInfo; `None` for any other key or encoding.
pub fn ed25519_from_spki(der: &[u8]) -> Option<[u8; 32]> {
    let rest = der.strip_prefix(&ED25519_SPKI_PREFIX)?;
    <[u8; 32]>::try_from(rest).ok()
}

/// The SubjectPublicKeyInfo of a 32-byte Ed25519 key.
pub fn spki_of_ed25519(public: &[u8; 32]) -> Vec<u8> {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    der
}

/// The DER of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_ca_loads_again_issues_client_certificates_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LinkCa::create(&dir.path().join("ca")).unwrap();
        let mode = std::fs::metadata(dir.path().join("ca/ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            LinkCa::create(&dir.path().join("ca")),
            Err(CaError::Exists(_))
        ));
        let loaded = LinkCa::load(&dir.path().join("ca")).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        let (der, pem) = loaded.issue(&[7; 32], 42).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(pem_to_der(&pem).unwrap(), der);
        // The subject key is the one asked for.
        assert!(der.windows(32).any(|w| w == [7; 32]));
        std::fs::set_permissions(
            dir.path().join("ca/ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = LinkCa::load(&dir.path().join("ca")).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn only_ed25519_subject_keys_are_accepted() {
        let spki = spki_of_ed25519(&[9; 32]);
        assert_eq!(ed25519_from_spki(&spki), Some([9; 32]));
        assert_eq!(ed25519_from_spki(&spki[..43]), None);
        let mut other = spki.clone();
        other[8] = 0x71; // Ed448's OID
        assert_eq!(ed25519_from_spki(&other), None);
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        assert!(ed25519_from_spki(&key.subject_public_key_info()).is_some());
    }
}
