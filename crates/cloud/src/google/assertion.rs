//! The service account's JWT for Google's token endpoint (RFC 7523 JWT bearer grant, as Google
//! documents it for service accounts): header `{"alg": "RS256", "typ": "JWT", "kid": <key ID>}`,
//! claims `iss` (the service account), `sub` (the administrator it acts for: domain-wide
//! delegation), `scope`, `aud` (the token endpoint), `iat`, `exp` (one hour, Google's most),
//! signed RSASSA-PKCS1-v1_5 with SHA-256 by the key of the service account's JSON key
//! (`crate::oauth`).

use serde::Deserialize;
use zeroize::Zeroizing;

/// The `aud` Google's token endpoint checks.
pub(crate) const AUDIENCE: &str = "https://oauth2.googleapis.com/token";

/// A service account's identity and signing key, from its JSON key.
pub(crate) struct ServiceAccount {
    /// `client_email`: the JWT's `iss`.
    pub(crate) email: String,
    /// `private_key_id`: the JWT header's `kid`.
    key_id: String,
    /// `token_uri`, when the key names one.
    pub(crate) token_uri: Option<String>,
    key: ring::signature::RsaKeyPair,
}

impl ServiceAccount {
    /// From the JSON key the Google Cloud console gives (`"type": "service_account"`, with
    /// `client_email`, `private_key_id` and `private_key`, PKCS#8 PEM).
    pub(crate) fn from_json(text: &str) -> Result<ServiceAccount, String> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: Option<String>,
            client_email: Option<String>,
            private_key_id: Option<String>,
            private_key: Option<String>,
            token_uri: Option<String>,
        }
        let raw: Raw = serde_json::from_str(text).map_err(|err| {
            format!(
                "the credential is not a service account's JSON key (no valid JSON at line {} column {}); store the key file the Google Cloud console gave",
                err.line(),
                err.column()
            )
        })?;
        if raw.kind.as_deref() != Some("service_account") {
            return Err(
                "the credential's JSON key is not of \"type\": \"service_account\"; create a key for a service account in the Google Cloud console".to_owned(),
            );
        }
        let field = |value: Option<String>, name: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the service account's JSON key has no `{name}`"))
        };
        let email = field(raw.client_email, "client_email")?;
        let key_id = field(raw.private_key_id, "private_key_id")?;
        let pem = raw
            .private_key
            .map(Zeroizing::new)
            .ok_or_else(|| "the service account's JSON key has no `private_key`".to_owned())?;
        let key = crate::oauth::rsa_key(pem.as_bytes(), "the service account's `private_key`")?;
        Ok(ServiceAccount {
            email,
            key_id,
            token_uri: raw.token_uri,
            key,
        })
    }

    /// A fresh assertion acting as `subject` for `scope`, issued at `now`.
    pub(crate) fn assertion(&self, subject: &str, scope: &str, now: i64) -> Result<String, String> {
        let claims = serde_json::json!({
            "iss": self.email,
            "sub": subject,
            "scope": scope,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
        });
        crate::oauth::signed_jwt(
            &self.key,
            crate::oauth::Alg::Rs256,
            &[("kid", &self.key_id)],
            &claims,
        )
    }
}
