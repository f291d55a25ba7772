//! A minimal W3C WebDriver client: one session's commands as JSON over HTTP to ChromeDriver on
//! loopback, and WebDriver's error answers turned into [`Error`]s that name the page.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Error, Result};

/// The W3C web element identifier: the key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long one command may take; page loads and scripts have their own, shorter timeouts in
/// the session's capabilities, so this only catches a ChromeDriver that stopped answering.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// One WebDriver session; cheap to clone (elements keep one).
#[derive(Clone)]
pub(crate) struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    base: Arc<str>,
    id: Arc<str>,
}

/// An answer from ChromeDriver: a value, or a WebDriver error.
enum Answer {
    Value(Value),
    Error { error: String, message: String },
}

impl Session {
    /// Opens a session on the ChromeDriver listening on `port` with these capabilities.
    pub(crate) async fn create(port: u16, capabilities: Value) -> Result<Session> {
        let http = http_client()?;
        let server = format!("http://127.0.0.1:{port}");
        let command = "POST /session".to_owned();
        let answer = send(
            &http,
            reqwest::Method::POST,
            &format!("{server}/session"),
            Some(json!({ "capabilities": capabilities })),
            &command,
        )
        .await?;
        let value = match answer {
            Answer::Value(value) => value,
            Answer::Error { error, message } => {
                return Err(Error::WebDriver {
                    command,
                    url: String::new(),
                    error,
                    message,
                });
            }
        };
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol(&command, &value))?;
        Ok(Session {
            http,
            base: format!("{server}/session/{id}").into(),
            id: id.into(),
        })
    }

    /// The session's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value> {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Like [`Session::get`], but a WebDriver error comes back as `Err(Ok((error, message)))`
    /// instead of an [`Error`], for callers to whom some errors are answers (no such alert).
    pub(crate) async fn get_or_webdriver_error(
        &self,
        path: &str,
    ) -> Result<Result<Value, (String, String)>> {
        let command = format!("GET {path}");
        let url = format!("{}{path}", self.base);
        match send(&self.http, reqwest::Method::GET, &url, None, &command).await? {
            Answer::Value(value) => Ok(Ok(value)),
            Answer::Error { error, message } => Ok(Err((error, message))),
        }
    }

    /// Like [`Session::post`], with WebDriver errors returned as in
    /// [`Session::get_or_webdriver_error`].
    pub(crate) async fn post_or_webdriver_error(
        &self,
        path: &str,
        body: Value,
    ) -> Result<Result<Value, (String, String)>> {
        let command = format!("POST {path}");
        let url = format!("{}{path}", self.base);
        match send(
            &self.http,
            reqwest::Method::POST,
            &url,
            Some(body),
            &command,
        )
        .await?
        {
            Answer::Value(value) => Ok(Ok(value)),
            Answer::Error { error, message } => Ok(Err((error, message))),
        }
    }

    /// The page the browser is on, or an empty string when that cannot be read (for errors).
    pub(crate) async fn url_for_error(&self) -> String {
        let url = format!("{}/url", self.base);
        match send(&self.http, reqwest::Method::GET, &url, None, "GET /url").await {
            Ok(Answer::Value(Value::String(url))) => url,
            _ => String::new(),
        }
    }

    /// Turns an element reference from an answer into its id.
    pub(crate) fn element_id(command: &str, value: &Value) -> Result<String> {
        value
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| protocol(command, value))
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let command = format!("{method} {path}");
        let url = format!("{}{path}", self.base);
        match send(&self.http, method, &url, body, &command).await? {
            Answer::Value(value) => Ok(value),
            Answer::Error { error, message } => Err(Error::WebDriver {
                command,
                url: self.url_for_error().await,
                error,
                message,
            }),
        }
    }
}

/// Ends a session without a runtime: a plain HTTP/1.1 `DELETE` over a blocking socket, for
/// `Drop`. ChromeDriver closes the browser before it answers. Failures are ignored: the caller
/// kills the process group next.
pub(crate) fn delete_session_blocking(port: u16, session_id: &str) {
    use std::io::{Read as _, Write as _};

    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // Read until the whole answer is in: ChromeDriver keeps the connection open regardless.
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    while !is_complete_response(&answer) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether `answer` holds an HTTP/1.1 response's head and its `Content-Length` bytes of body.
fn is_complete_response(answer: &[u8]) -> bool {
    let Some(head_end) = answer.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    answer.len() >= head_end + 4 + length
}

/// A client for loopback HTTP only: no proxy from the environment, and a rustls configuration
/// with the ring provider and no roots (reqwest insists on one; nothing here speaks TLS).
fn http_client() -> Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Start {
            message: format!("TLS settings of the HTTP client: {err}"),
        })?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(COMMAND_TIMEOUT)
        .build()
        .map_err(|err| Error::Start {
            message: format!("HTTP client: {err}"),
        })
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    command: &str,
) -> Result<Answer> {
    let http_error = |source| Error::Http {
        command: command.to_owned(),
        source,
    };
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.map_err(http_error)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(http_error)?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| Error::Protocol {
        command: command.to_owned(),
        answer: format!(
            "HTTP {status}: {}",
            shorten(&String::from_utf8_lossy(&bytes))
        ),
    })?;
    let Some(value) = answer.get("value") else {
        return Err(protocol(command, &answer));
    };
    if status.is_success() {
        return Ok(Answer::Value(value.clone()));
    }
    let error = value.get("error").and_then(Value::as_str);
    let message = value.get("message").and_then(Value::as_str);
    match (error, message) {
        (Some(error), Some(message)) => Ok(Answer::Error {
            error: error.to_owned(),
            // ChromeDriver appends the session's browser version; the first line is the message.
            message: message.lines().next().unwrap_or_default().to_owned(),
        }),
        _ => Err(protocol(command, &answer)),
    }
}

fn protocol(command: &str, answer: &Value) -> Error {
    Error::Protocol {
        command: command.to_owned(),
        answer: shorten(&answer.to_string()),
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
