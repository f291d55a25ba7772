//! What the providers' OAuth 2.0 token exchanges share: the RSA key of a PEM, a JWT signed with
//! it (RS256 or PS256, ring) with a random `jti`, and the reading of a token endpoint's error
//! answer (RFC 6749 §5.2), its text made printable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A JWT's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Google, Okta).
    Rs256,
    /// RSASSA-PSS with SHA-256 (Entra ID's certificate credentials).
    Ps256,
}

/// The RSA key of a PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1); `what` names the
/// key in the error (`the service app's private key`).
pub(crate) fn rsa_key(pem: &[u8], what: &str) -> Result<ring::signature::RsaKeyPair, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs8(der)) => {
            ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        }
        Ok(PrivateKeyDer::Pkcs1(der)) => {
            ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der())
        }
        _ => return Err(format!("{what} is not an RSA private key in PEM")),
    }
    .map_err(|err| format!("{what} is not a usable RSA key: {err}"))
}

/// 16 random bytes in hex: a JWT's `jti`, never reused.
pub(crate) fn jti() -> Result<String, String> {
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti)
        .map_err(|_| "no randomness for the assertion's jti".to_owned())?;
    Ok(hex::encode(jti))
}

/// `header.claims.signature`, each base64url without padding; the header is `alg`, `typ` and
/// `extra_header`.
pub(crate) fn signed_jwt(
    key: &ring::signature::RsaKeyPair,
    alg: Alg,
    extra_header: &[(&str, &str)],
    claims: &Value,
) -> Result<String, String> {
    let (name, scheme): (&str, &'static dyn ring::signature::RsaEncoding) = match alg {
        Alg::Rs256 => ("RS256", &ring::signature::RSA_PKCS1_SHA256),
        Alg::Ps256 => ("PS256", &ring::signature::RSA_PSS_SHA256),
    };
    let mut header = serde_json::json!({"alg": name, "typ": "JWT"});
    for (key, value) in extra_header {
        header[*key] = Value::from(*value);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        scheme,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the JWT failed".to_owned())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A token endpoint's refusal: `error` (`invalid_client`, …) and the first line of
/// `error_description`, both printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRefusal {
    pub(crate) code: String,
    pub(crate) description: String,
}

impl TokenRefusal {
    /// From the endpoint's JSON answer (`unknown_error` without an `error`).
    pub(crate) fn from_answer(json: &Value) -> TokenRefusal {
        TokenRefusal {
            code: printable(json["error"].as_str().unwrap_or("unknown_error")),
            description: printable(
                json["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or(""),
            ),
        }
    }
}

/// At most 300 characters of text from a provider, control characters escaped (`\u{1b}`), so a
/// message shown on a terminal or in a log carries it as data.
pub fn printable(text: &str) -> String {
    text.chars()
        .take(300)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn text_from_a_provider_is_printable() {
        assert_eq!(
            printable("no\u{1b}[31m <b>\u{7}"),
            "no\\u{1b}[31m <b>\\u{7}"
        );
        let refusal = TokenRefusal::from_answer(&serde_json::json!({
            "error": "invalid_client\u{7}",
            "error_description": "AADSTS7000215: Invalid client secret.\r\nTrace ID: 1",
        }));
        assert_eq!(refusal.code, "invalid_client\\u{7}");
        assert_eq!(refusal.description, "AADSTS7000215: Invalid client secret.");
        assert_eq!(
            TokenRefusal::from_answer(&Value::Null),
            TokenRefusal {
                code: "unknown_error".to_owned(),
                description: String::new()
            }
        );
    }

    #[test]
    fn a_key_that_is_not_rsa_is_named() {
        let err = rsa_key(b"not a key", "the service app's private key").unwrap_err();
        assert_eq!(
            err,
            "the service app's private key is not an RSA private key in PEM"
        );
    }
}
