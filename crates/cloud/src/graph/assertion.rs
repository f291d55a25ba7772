//! The certificate-signed client assertion of Entra ID's client-credentials flow: a JWT with
//! header `{"alg": "PS256", "typ": "JWT", "x5t#S256": <SHA-256 of the certificate>}` and claims
//! `aud` (the token endpoint), `iss` = `sub` (the application), `jti`, `iat`, `nbf`, `exp` (ten
//! minutes), signed with the certificate's RSA key (RSASSA-PSS, SHA-256, ring).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest as _;

/// The key and thumbprint of one certificate credential.
pub(crate) struct Signer {
    key: ring::signature::RsaKeyPair,
    thumbprint: String,
}

impl Signer {
    /// From PEM text holding the private key (PKCS#8 or PKCS#1) and the certificate.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Signer, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(pem).map_err(|_| {
            "the certificate credential holds no PEM certificate (store the key and the certificate together)".to_owned()
        })?;
        let key = match PrivateKeyDer::from_pem_slice(pem) {
            Ok(PrivateKeyDer::Pkcs8(der)) => {
                ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            }
            Ok(PrivateKeyDer::Pkcs1(der)) => {
                ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der())
            }
            _ => {
                return Err("the certificate credential holds no RSA private key in PEM".to_owned());
            }
        }
        .map_err(|err| {
            format!("the certificate credential's key is not a usable RSA key: {err}")
        })?;
        Ok(Signer {
            key,
            thumbprint: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.as_ref())),
        })
    }

    /// A fresh assertion for `client_id` at `audience` (the token endpoint), issued at `now`.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut jti)
            .map_err(|_| "no randomness for the assertion's jti".to_owned())?;
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": hex::encode(jti),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PSS_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}
