//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) over `ring`: the canonical request, the string to
//! sign, the derived signing key and the `Authorization` header, as the AWS General Reference
//! describes them (S3 signs its path encoded once, every other service twice). Checked against
//! botocore's own signer in `tests/sdk.rs` and recomputed by the AWS peer on every request.

use ring::{digest, hmac};
use zeroize::Zeroizing;

/// An access key: ID, secret and, for temporary credentials, the session token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

/// One request to sign: everything SigV4 covers.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// `Host` as sent: the host, and `:port` when it is not 443.
    pub host: &'a str,
    /// The path, unencoded (`/`, `/bucket-name`).
    pub path: &'a str,
    /// Query parameters, unencoded, in any order.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to send and sign besides `host` and the `x-amz-*` ones the signer adds.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// What SigV4 scopes a signature to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    /// The signing name (`iam`, `s3`, `cloudtrail`, …).
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

impl Credentials {
    /// The access key from a vault entry written as the AWS credentials file writes a profile:
    /// `aws_access_key_id = …` and `aws_secret_access_key = …` lines, optionally
    /// `aws_session_token = …` (a `[profile]` header and `#` comments are ignored).
    ///
    /// # Errors
    /// What is missing or unknown, never a secret's text.
    pub fn from_vault_text(text: &str) -> Result<Credentials, String> {
        let mut key_id = None;
        let mut secret = None;
        let mut token = None;
        for (idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(format!(
                    "line {} of the access key entry is not `name = value`",
                    idx + 1
                ));
            };
            let value = value.trim().to_owned();
            match name.trim() {
                "aws_access_key_id" => key_id = Some(value),
                "aws_secret_access_key" => secret = Some(Zeroizing::new(value)),
                "aws_session_token" => token = Some(Zeroizing::new(value)),
                other => {
                    return Err(format!(
                        "line {} of the access key entry names `{}`; known: aws_access_key_id, aws_secret_access_key, aws_session_token",
                        idx + 1,
                        other.chars().take(40).collect::<String>().escape_debug()
                    ));
                }
            }
        }
        let key_id = key_id.unwrap_or_default();
        if !(16..=128).contains(&key_id.len()) || !key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("the access key entry needs an `aws_access_key_id = AKIA…` line (16 to 128 letters and digits)".to_owned());
        }
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or("the access key entry needs an `aws_secret_access_key = …` line")?;
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "the access key entry's secret holds spaces or control characters".to_owned(),
            );
        }
        Ok(Credentials {
            access_key_id: key_id,
            secret_access_key: secret,
            session_token: token.filter(|t| !t.is_empty()),
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The headers to add to `request`: `x-amz-date`, `x-amz-content-sha256` (S3),
/// `x-amz-security-token` (temporary credentials) and `authorization`, in that order.
pub fn sign(
    credentials: &Credentials,
    request: &Request<'_>,
    scope: Scope<'_>,
) -> Vec<(&'static str, String)> {
    let payload_hash = hex::encode(digest::digest(&digest::SHA256, request.payload));
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", scope.amz_date.to_owned())];
    if scope.service == "s3" {
        added.push(("x-amz-content-sha256", payload_hash.clone()));
    }
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.to_string()));
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .chain([("host".to_owned(), request.host.to_owned())])
        .chain(added.iter().map(|(n, v)| ((*n).to_owned(), v.clone())))
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        canonical_uri(request.path, scope.service == "s3"),
        canonical_query(request.query),
    );
    let date = scope.amz_date.get(..8).unwrap_or(scope.amz_date);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        hex::encode(digest::digest(
            &digest::SHA256,
            canonical_request.as_bytes()
        ))
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", *credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [scope.region, scope.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    added.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    added
}

/// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, the rest is `%XX`
/// in upper case; `/` stays only when `keep_slash`.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char);
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The query string as sent and as signed: encoded pairs sorted by name, then value.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The path as sent (encoded once).
pub fn encoded_path(path: &str) -> String {
    uri_encode(path, true)
}

fn canonical_uri(path: &str, s3: bool) -> String {
    let once = encoded_path(path);
    if s3 { once } else { uri_encode(&once, true) }
}

/// A header value trimmed, with runs of spaces collapsed to one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of the AWS SigV4 test suite (published credentials and time).
    #[test]
    fn vault_text() {
        let ok = Credentials::from_vault_text(
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        )
        .unwrap();
        assert_eq!(ok.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(
            !format!("{ok:?}").contains("wJalr"),
            "the secret never prints"
        );
        for (text, error) in [
            (
                "wJalrXUtnFEMI",
                "line 1 of the access key entry is not `name = value`",
            ),
            (
                "aws_access_key_id = AKIA$(reboot)\naws_secret_access_key = x",
                "the access key entry needs an `aws_access_key_id = AKIA…` line (16 to 128 letters and digits)",
            ),
            (
                "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
                "the access key entry needs an `aws_secret_access_key = …` line",
            ),
            (
                "region = us-east-1",
                "line 1 of the access key entry names `region`; known: aws_access_key_id, aws_secret_access_key, aws_session_token",
            ),
        ] {
            assert_eq!(Credentials::from_vault_text(text).unwrap_err(), error);
        }
    }

    #[test]
    fn the_test_suite_s_get_vanilla() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Zeroizing::new(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            ),
            session_token: None,
        };
        let headers = sign(
            &credentials,
            &Request {
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                query: &[],
                headers: &[],
                payload: b"",
            },
            Scope {
                region: "us-east-1",
                service: "service",
                amz_date: "20150830T123600Z",
            },
        );
        assert_eq!(
            headers.last().unwrap().1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
