//! The certificate-signed client assertion of Entra ID's client-credentials flow: a JWT with
//! header `{"alg": "PS256", "typ": "JWT", "x5t#S256": <SHA-256 of the certificate>}` and claims
//! `aud` (the token endpoint), `iss` = `sub` (the application), `jti`, `iat`, `nbf`, `exp` (ten
//! minutes), signed with the certificate's RSA key (RSASSA-PSS, SHA-256: `crate::oauth`).

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
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(pem).map_err(|_| {
            "the certificate credential holds no PEM certificate (store the key and the certificate together)".to_owned()
        })?;
        let key = crate::oauth::rsa_key(pem, "the certificate credential's key")?;
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
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": crate::oauth::jti()?,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        crate::oauth::signed_jwt(
            &self.key,
            crate::oauth::Alg::Ps256,
            &[("x5t#S256", &self.thumbprint)],
            &claims,
        )
    }
}
