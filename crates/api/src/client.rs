//! A blocking client for the local API: one HTTP/1.1 request per connection on the Unix socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::endpoint::{self, Endpoint, Method};
use crate::types::*;

/// The header that carries the site's claim code to re-open setup after it is complete.
pub const CLAIM_CODE_HEADER: &str = "X-Osiris-Claim-Code";

/// The header that carries a console unlock token (from `POST /v1/console/unlock`).
pub const UNLOCK_HEADER: &str = "X-Osiris-Unlock";

/// Talks to `osirisd` over its socket. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
    claim_code: Option<String>,
    unlock_token: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens on the socket: the daemon is stopped or starting.
    #[error(
        "the appliance service is not running (no answer on {socket}): start it with `systemctl start osirisd`"
    )]
    DaemonDown {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but this user may not use it.
    #[error("permission denied on {socket}: run as root or as a member of the `osiris` group")]
    PermissionDenied { socket: PathBuf },
    /// The daemon did not answer in time.
    #[error("the appliance service did not answer within {0:?}; it may be busy, try again")]
    Timeout(Duration),
    /// The connection broke or the answer was not HTTP/JSON as expected.
    #[error("unexpected answer from the appliance service: {0}")]
    Protocol(String),
    /// The daemon refused the request and said why.
    #[error("{}{}", .error.error, .error.hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Api { status: u16, error: ApiError },
}

impl Client {
    /// A client for the daemon listening on `socket`; requests time out after 5 s.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            timeout: Duration::from_secs(5),
            claim_code: None,
            unlock_token: None,
        }
    }

    /// The same client sending the site's claim code, which re-opens the first-boot settings
    /// after setup is complete (`X-Osiris-Claim-Code`; see [`CLAIM_CODE_HEADER`]).
    pub fn with_claim_code(mut self, code: &str) -> Client {
        // Only the characters a code has: nothing else can reach the request head.
        self.claim_code = Some(
            code.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect(),
        );
        self
    }

    /// The same client sending a console unlock token (`X-Osiris-Unlock`; see [`UNLOCK_HEADER`]),
    /// which operator actions need when a console PIN is set and the caller is not root.
    pub fn with_unlock_token(mut self, token: &str) -> Client {
        // Only the characters a token has: nothing else can reach the request head.
        self.unlock_token = Some(token.chars().filter(char::is_ascii_hexdigit).collect());
        self
    }

    /// The same client with another per-request timeout (exports take longer).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request to `endpoint` and decodes its answer.
    pub fn call<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Body,
    ) -> Result<E::Answer, ClientError> {
        let path = endpoint.path();
        let body = match E::METHOD {
            Method::Get | Method::Delete => None,
            Method::Post => Some(serde_json::to_vec(body).map_err(|err| {
                ClientError::Protocol(format!("cannot encode the request: {err}"))
            })?),
        };
        let answer = self.send(E::METHOD, &path, body.as_deref())?;
        serde_json::from_slice(&answer).map_err(|err| {
            ClientError::Protocol(format!(
                "{} {path}: answer is not the expected JSON: {err}",
                E::METHOD.as_str()
            ))
        })
    }

    /// `GET /v1/status` (what `osiris status` shows).
    pub fn status(&self) -> Result<Status, ClientError> {
        self.call(&endpoint::Status, &())
    }

    /// `GET /v1/incidents` (what `osiris status` lists).
    pub fn incidents(&self) -> Result<Vec<Incident>, ClientError> {
        self.call(&endpoint::Incidents, &())
    }

    /// `POST /v1/scan`.
    pub fn scan_now(&self) -> Result<Triggered, ClientError> {
        self.call(&endpoint::ScanNow, &endpoint::Empty {})
    }

    /// `GET path`, decoding the JSON answer (for paths outside [`endpoint`], e.g. in tests).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let answer = self.send(Method::Get, path, None)?;
        serde_json::from_slice(&answer).map_err(|err| {
            ClientError::Protocol(format!(
                "GET {path}: answer is not the expected JSON: {err}"
            ))
        })
    }

    /// Sends one request with an optional JSON body; returns the body of a 2xx answer, or the
    /// daemon's refusal as [`ClientError::Api`].
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let method = method.as_str();
        let raw = self.exchange(method, path, body)?;
        let (status, body) = parse_response(&raw)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            let error = serde_json::from_slice::<ApiError>(&body).unwrap_or_else(|_| ApiError {
                error: format!(
                    "{method} {path} failed with HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
                hint: None,
            });
            Err(ClientError::Api { status, error })
        }
    }

    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| match source.kind() {
                std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                    socket: self.socket.clone(),
                },
                _ => ClientError::DaemonDown {
                    socket: self.socket.clone(),
                    source,
                },
            })?;
        let io = |err: std::io::Error| match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(self.timeout)
            }
            _ => ClientError::Protocol(format!("{method} {path}: {err}")),
        };
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let body = body.unwrap_or_default();
        let claim = self
            .claim_code
            .as_ref()
            .map(|code| format!("{CLAIM_CODE_HEADER}: {code}\r\n"))
            .unwrap_or_default();
        let unlock = self
            .unlock_token
            .as_ref()
            .map(|token| format!("{UNLOCK_HEADER}: {token}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: osirisd\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\n{claim}{unlock}Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE + 1)
            .read_to_end(&mut raw)
            .map_err(io)?;
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(ClientError::Protocol(format!(
                "{method} {path}: answer larger than {MAX_RESPONSE} bytes"
            )));
        }
        Ok(raw)
    }
}

/// Answers larger than this are refused (the biggest, `/v1/targets` for 1,000 devices, is ~1 MB).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// Splits an HTTP/1.1 response read to EOF into status and body (plain or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let bad = |what: &str| ClientError::Protocol(what.to_owned());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("the answer has no complete header"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("the header is not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line `{status_line}`")))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("malformed chunked body"))?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or_else(|| bad("the answer ended before its Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// Serves one connection with a canned raw answer and returns the request it read.
    fn serve_once(answer: Vec<u8>) -> (tempfile::TempDir, std::thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("api.sock")).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // The whole request (headers, then the body its Content-Length announces) before the
            // answer: answering after the first read and closing would break the client's second
            // write under load.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let Some(end) = find(&request, b"\r\n\r\n") else {
                    if n == 0 {
                        break;
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                if n == 0 || request.len() >= end + 4 + length {
                    break;
                }
            }
            conn.write_all(&answer).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (dir, handle)
    }

    fn answer(status: u16, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn decodes_a_content_length_answer_and_sends_a_well_formed_request() {
        let (dir, server) = serve_once(answer(
            200,
            r#"{"cycle":"server_scan","queued":true,"message":"after current"}"#,
        ));
        let client = Client::new(dir.path().join("api.sock"));
        let answer = client.scan_now().unwrap();
        assert_eq!(answer.cycle, CycleKind::ServerScan);
        assert!(answer.queued);
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /v1/scan HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Content-Length: 2\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{}"), "{request}");
    }

    #[test]
    fn decodes_a_chunked_answer() {
        let (dir, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n[\"a\"\r\n3\r\n,1]\r\n0\r\n\r\n".to_vec(),
        );
        let client = Client::new(dir.path().join("api.sock"));
        let value: serde_json::Value = client.get("/v1/x").unwrap();
        assert_eq!(value, serde_json::json!(["a", 1]));
    }

    #[test]
    fn an_error_answer_carries_the_daemons_words() {
        let (dir, _server) = serve_once(answer(
            400,
            r#"{"error":"reason is empty","hint":"say why you pause"}"#,
        ));
        let client = Client::new(dir.path().join("api.sock"));
        let err = client
            .call(
                &endpoint::PauseHealing,
                &PauseRequest {
                    reason: String::new(),
                    by: "console".into(),
                },
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "reason is empty (say why you pause)");
        assert!(matches!(err, ClientError::Api { status: 400, .. }));
    }

    #[test]
    fn no_daemon_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let err = Client::new(dir.path().join("missing.sock"))
            .status()
            .unwrap_err();
        assert!(matches!(err, ClientError::DaemonDown { .. }));
        assert!(err.to_string().contains("not running"), "{err}");
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("api.sock")).unwrap();
        let client =
            Client::new(dir.path().join("api.sock")).with_timeout(Duration::from_millis(200));
        let err = client.status().unwrap_err();
        drop(listener);
        assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    }
}
