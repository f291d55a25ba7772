//! A partner user's conversation with Central Command's API, as a browser would hold it: the
//! session cookie and CSRF token it was given, TOTP enrolment with codes from an independent
//! RFC 6238 implementation here.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};

/// A user's HTTP conversation: the session cookie and CSRF token it was given.
pub(crate) struct User {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: Option<String>,
    pub(crate) csrf: Option<String>,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: serde_json::Value,
    pub(crate) raw: Vec<u8>,
    pub(crate) set_cookie: Option<String>,
}

impl User {
    /// A user of the plain-HTTP Central Command on loopback port `port`.
    pub(crate) fn new(port: u16) -> User {
        let _ = rustls::crypto::ring::default_provider().install_default();
        User {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            cookie: None,
            csrf: None,
        }
    }

    /// A user of the Central Command serving HTTPS on loopback port `port` with a certificate
    /// of `server_ca` (PEM).
    pub(crate) fn https(port: u16, server_ca: &str) -> User {
        User {
            http: crate::common::https_client(server_ca, None),
            base: format!("https://127.0.0.1:{port}"),
            cookie: None,
            csrf: None,
        }
    }

    pub(crate) async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        csrf: bool,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("osiris_session={cookie}"));
        }
        if csrf && let Some(token) = &self.csrf {
            request = request.header("x-csrf-token", token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            raw: bytes.to_vec(),
            set_cookie,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        self.call("GET", path, None, true).await
    }

    pub(crate) async fn post(&mut self, path: &str, body: serde_json::Value) -> Answer {
        self.call("POST", path, Some(body), true).await
    }

    pub(crate) async fn login(
        &mut self,
        email: &str,
        password: &str,
        totp: Option<String>,
    ) -> Answer {
        let answer = self
            .call(
                "POST",
                "/v1/session/login",
                Some(serde_json::json!({"email": email, "password": password, "totp": totp})),
                false,
            )
            .await;
        if answer.status == 200 {
            let cookie = answer.set_cookie.clone().unwrap();
            self.cookie = Some(
                cookie
                    .split(';')
                    .next()
                    .unwrap()
                    .trim_start_matches("osiris_session=")
                    .to_owned(),
            );
            self.csrf = answer.body["csrf_token"].as_str().map(str::to_owned);
        }
        answer
    }

    /// Logs in with a password, enrols TOTP, and returns the secret.
    pub(crate) async fn enrol(&mut self, email: &str, password: &str) -> Vec<u8> {
        let answer = self.login(email, password, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["mfa_done"], false);
        let answer = self
            .post("/v1/session/totp/begin", serde_json::json!({}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let secret = secret_of(answer.body["uri"].as_str().unwrap());
        let answer = self
            .post(
                "/v1/session/totp/confirm",
                serde_json::json!({"code": code(&secret, 0)}),
            )
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
        secret
    }
}

/// The secret in an `otpauth://` URI (base 32), as an authenticator app reads it.
pub(crate) fn secret_of(uri: &str) -> Vec<u8> {
    let encoded = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in encoded.chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).unwrap() as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            out.push((bits >> (count - 8)) as u8);
            count -= 8;
        }
    }
    out
}

/// The code an authenticator app shows, `offset` steps from now (an independent RFC 6238 here).
pub(crate) fn code(secret: &[u8], offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let counter = (now / 30 + offset) as u64;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}
