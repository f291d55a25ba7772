//! WinRM transport: runs PowerShell scripts on Windows hosts through one WinRS shell per session
//! (docs/WINDOWS-PROTOCOL.md §1), on `winrm-rs`; with a [`ShellPool`], shells outlive sessions.
//!
//! HTTPS (5986) with CA verification or a pinned certificate by default; HTTP (5985) only with
//! NTLM message sealing; Basic only over HTTPS. A target with a `server_name` (a discovered
//! workstation) is reached at its resolved address while its certificate is verified for that
//! name (SNI and name check), through a loopback relay ([`tunnel`]). The script travels on stdin behind a fixed
//! `-EncodedCommand` bootstrap, so nothing of it reaches a command line.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use transport::{Interpreter, Output, ScriptRun, Session, Transport, TransportError};
use winrm_rs::{
    AuthMethod, EncryptionMode, SecretString, TlsProvider, WinrmClient, WinrmConfig,
    WinrmCredentials, WinrmError,
};

mod error;
pub mod kerberos;
mod pool;
mod tunnel;

pub use error::WinRmConfigError;
pub use pool::ShellPool;

pub use transport::powershell::{BOOTSTRAP, PROGRAM as POWERSHELL, encoded_bootstrap};

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// NTLMv2: message sealing over HTTP, channel binding over HTTPS.
    Ntlm,
    /// Basic: HTTPS only.
    Basic,
    /// Kerberos (HTTPS only): a ticket from the process's KDC ([`kerberos`]); the password goes
    /// only to the KDC, and the host proves its own key (mutual authentication).
    Kerberos,
}

/// How to trust the host's HTTPS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// The operating system's certificate store.
    SystemRoots,
    /// A PEM file of the CA that issued the host's certificate.
    CaFile(PathBuf),
    /// The SHA-256 of the host certificate's DER bytes.
    PinSha256([u8; 32]),
}

/// One Windows host and how to reach it.
#[derive(Clone)]
pub struct WinRmTarget {
    pub name: String,
    pub address: String,
    /// Default 5986 (HTTPS) or 5985 (HTTP).
    pub port: Option<u16>,
    pub https: bool,
    pub auth: Auth,
    /// `user`, `DOMAIN\user` or `user@domain`.
    pub user: String,
    /// Wiped from memory when the target is dropped.
    pub password: zeroize::Zeroizing<String>,
    pub tls: Tls,
    /// The DNS name the HTTPS certificate must be valid for, while the connection goes to
    /// `address` (an IP address): set for hosts found in the directory, whose address came from
    /// DNS. `None`: the certificate must be valid for `address` itself.
    pub server_name: Option<String>,
    pub connect_timeout: Duration,
    /// WS-Man operation timeout (each Receive waits at most this long on the host).
    pub operation_timeout: Duration,
}

impl fmt::Debug for WinRmTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WinRmTarget")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("https", &self.https)
            .field("auth", &self.auth)
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .field("tls", &self.tls)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Reaches one Windows host over WinRM.
pub struct WinRmTransport {
    target: WinRmTarget,
    client: std::sync::Arc<WinrmClient>,
    port: u16,
    /// The relay to `address` for a target verified by `server_name`; stops when the transport
    /// and every shell opened through it are gone.
    tunnel: Option<std::sync::Arc<tunnel::PinnedTunnel>>,
    /// Where shells wait between sessions, with this target's key in it.
    pool: Option<(std::sync::Arc<ShellPool>, u64)>,
}

impl fmt::Debug for WinRmTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl WinRmTransport {
    /// Like [`WinRmTransport::new`], but a session takes a shell kept in `pool` from an earlier
    /// one (same host, account, credentials and trust) instead of opening one, and hands its
    /// shell back there when it ends healthy.
    pub fn pooled(
        target: WinRmTarget,
        pool: std::sync::Arc<ShellPool>,
    ) -> Result<WinRmTransport, WinRmConfigError> {
        let key = pool.key(&target);
        let mut transport = WinRmTransport::new(target)?;
        transport.pool = Some((pool, key));
        Ok(transport)
    }

    /// Validates the target and builds its client; nothing connects yet.
    pub fn new(target: WinRmTarget) -> Result<WinRmTransport, WinRmConfigError> {
        if !model::is_valid_host(&target.address) {
            return Err(WinRmConfigError::Address(target.address.clone()));
        }
        let (username, domain) =
            split_user(&target.user).ok_or_else(|| WinRmConfigError::User(target.user.clone()))?;
        let auth_method = match (target.auth, target.https) {
            (Auth::Kerberos, false) => return Err(WinRmConfigError::KerberosOverHttp),
            (Auth::Kerberos, true) => {
                if std::env::var_os(kerberos::DIR_ENV).is_none() {
                    return Err(WinRmConfigError::KerberosNotPrepared);
                }
                if username.starts_with('-') {
                    return Err(WinRmConfigError::User(target.user.clone()));
                }
                AuthMethod::Kerberos
            }
            (Auth::Basic, false) => return Err(WinRmConfigError::BasicOverHttp),
            (Auth::Basic, true) => AuthMethod::Basic,
            (Auth::Ntlm, _) => AuthMethod::Ntlm,
        };
        if !target.https && target.tls != Tls::SystemRoots {
            return Err(WinRmConfigError::TlsWithoutHttps);
        }
        install_crypto_provider();
        let port = target
            .port
            .unwrap_or(if target.https { 5986 } else { 5985 });
        let tunnel = match &target.server_name {
            None => None,
            Some(name) => {
                if !target.https {
                    return Err(WinRmConfigError::ServerNameWithoutHttps);
                }
                if !model::is_valid_host(name) || name.parse::<IpAddr>().is_ok() {
                    return Err(WinRmConfigError::ServerName(name.clone()));
                }
                let ip = target
                    .address
                    .parse::<IpAddr>()
                    .map_err(|_| WinRmConfigError::Address(target.address.clone()))?;
                let tunnel = tunnel::PinnedTunnel::start(
                    name,
                    ip,
                    port,
                    target.connect_timeout.max(Duration::from_secs(1)),
                )
                .map_err(|err| {
                    WinRmConfigError::Client(format!(
                        "cannot start the loopback relay to {ip}: {err}"
                    ))
                })?;
                Some(std::sync::Arc::new(tunnel))
            }
        };
        let config = WinrmConfig {
            proxy: tunnel
                .as_ref()
                .map(|tunnel| SecretString::from(tunnel.proxy_url().as_str())),
            port: Some(port),
            use_tls: target.https,
            accept_invalid_certs: false,
            connect_timeout_secs: target.connect_timeout.as_secs().max(1),
            operation_timeout_secs: target.operation_timeout.as_secs().max(1),
            auth_method,
            // Over HTTP every message is sealed; over HTTPS TLS protects it (with channel binding).
            encryption: if target.https {
                EncryptionMode::Auto
            } else {
                EncryptionMode::Always
            },
            max_retries: 0,
            codepage: 65001,
            max_output_bytes: Some(transport::MAX_OUTPUT + 64 * 1024),
            ..WinrmConfig::default()
        };
        // Kerberos takes its ticket from the cache (`kerberos::ensure_ticket`): winrm-rs gets no
        // copy of the password to keep.
        let password = if target.auth == Auth::Kerberos {
            String::new()
        } else {
            target.password.to_string()
        };
        let credentials = WinrmCredentials::new(username, password, domain);
        let mut builder = WinrmClient::builder(config)
            .tls_provider(TlsProvider::Ring)
            .credentials(credentials);
        match &target.tls {
            Tls::SystemRoots => builder = builder.platform_roots(true),
            Tls::CaFile(path) => {
                if !path.is_file() {
                    return Err(WinRmConfigError::CaFile(path.clone()));
                }
                builder = builder.add_root_certificates_pem(path.clone());
            }
            Tls::PinSha256(pin) => {
                builder = builder.pin_server_certificate_sha256(&hex_lower(pin));
            }
        }
        let client = builder
            .build()
            .map_err(|err| WinRmConfigError::Client(err.to_string()))?;
        Ok(WinRmTransport {
            target,
            client: std::sync::Arc::new(client),
            port,
            tunnel,
            pool: None,
        })
    }
}

impl WinRmTransport {
    fn kerberos_principal(&self) -> Option<String> {
        (self.target.auth == Auth::Kerberos).then(|| kerberos::principal(&self.target.user))
    }
}

impl Transport for WinRmTransport {
    fn describe(&self) -> String {
        let scheme = if self.target.https { "https" } else { "http" };
        let verified = match &self.target.server_name {
            Some(name) => format!(" (certificate for {name})"),
            None => String::new(),
        };
        let kerberos = if self.target.auth == Auth::Kerberos {
            " (Kerberos)"
        } else {
            ""
        };
        format!(
            "winrm {scheme}://{}@{}:{}{verified}{kerberos}",
            self.target.user, self.target.address, self.port
        )
    }

    fn open(&self) -> Result<Box<dyn Session>, TransportError> {
        if self.target.auth == Auth::Kerberos {
            let principal = kerberos::principal(&self.target.user);
            kerberos::ensure_ticket(&principal, &self.target.password).map_err(|err| {
                TransportError::Auth {
                    target: self.describe(),
                    message: err.to_string(),
                }
            })?;
        }
        if let Some((pool, key)) = &self.pool
            && let Some(shell) = pool.take(*key)
        {
            tracing::debug!(target_name = %self.target.name, "Reusing a kept WinRM shell.");
            return Ok(Box::new(WinRmSession {
                shell: Some(shell),
                pool: Some((std::sync::Arc::clone(pool), *key)),
                healthy: true,
                unchecked: true,
                kerberos: self.kerberos_principal(),
            }));
        }
        let (requests, inbox) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), TransportError>>();
        let client = std::sync::Arc::clone(&self.client);
        // The URL names the host the certificate must prove; the relay (if any) picks the address.
        let host = self
            .target
            .server_name
            .clone()
            .unwrap_or_else(|| self.target.address.clone());
        let target = self.describe();
        let open_deadline = self.target.connect_timeout + self.target.operation_timeout;
        let worker = std::thread::Builder::new()
            .name(format!("winrm {}", self.target.name))
            .spawn(move || worker(client, host, target, open_deadline, inbox, ready_tx))
            .map_err(|err| TransportError::Io(format!("cannot start a WinRM worker: {err}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Box::new(WinRmSession {
                shell: Some(ShellWorker {
                    requests: Some(requests),
                    worker: Some(worker),
                    _tunnel: self.tunnel.clone(),
                }),
                pool: self.pool.clone(),
                healthy: true,
                unchecked: false,
                kerberos: self.kerberos_principal(),
            })),
            Ok(Err(err)) => {
                let _ = worker.join();
                // A refused ticket (the host's key changed, the account was reset) must not be
                // offered again for half an hour: the next login asks the KDC afresh.
                if self.target.auth == Auth::Kerberos && matches!(err, TransportError::Auth { .. })
                {
                    kerberos::forget_ticket(&kerberos::principal(&self.target.user));
                }
                Err(err)
            }
            Err(_) => {
                let _ = worker.join();
                Err(TransportError::Io("the WinRM worker stopped".to_owned()))
            }
        }
    }
}

/// An open WinRS shell, served by a worker thread that owns the async client; the shell is
/// deleted and the thread ends when this is dropped.
pub(crate) struct ShellWorker {
    requests: Option<tokio::sync::mpsc::UnboundedSender<Request>>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// The relay the worker's client connects through, if any.
    _tunnel: Option<std::sync::Arc<tunnel::PinnedTunnel>>,
}

impl Drop for ShellWorker {
    fn drop(&mut self) {
        // Closing the channel makes the worker delete the shell (bounded) and exit.
        self.requests.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A session: one shell, kept in the pool afterwards when it ended healthy.
struct WinRmSession {
    shell: Option<ShellWorker>,
    pool: Option<(std::sync::Arc<ShellPool>, u64)>,
    /// No run of this session failed below the script (transport, timeout).
    healthy: bool,
    /// The shell came from the pool and has not run anything in this session yet.
    unchecked: bool,
    /// The Kerberos principal whose ticket a refused login makes us forget.
    kerberos: Option<String>,
}

struct Request {
    script: String,
    timeout: Duration,
    /// The shell was kept from an earlier session: if the host no longer knows it, open a new
    /// one and run the script there (the host said it did not start it).
    reopen_if_gone: bool,
    reply: mpsc::Sender<Result<Output, TransportError>>,
}

impl Session for WinRmSession {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        if run.interpreter != Interpreter::PowerShell {
            return Err(TransportError::Unsupported(run.interpreter.as_str()));
        }
        if !run.env.is_empty() {
            return Err(TransportError::Io(
                "PowerShell parameters travel inside the script as data, not as environment (caller bug)"
                    .to_owned(),
            ));
        }
        let (reply, answer) = mpsc::channel();
        let request = Request {
            script: run.script.to_owned(),
            timeout: run.timeout,
            reopen_if_gone: std::mem::take(&mut self.unchecked),
            reply,
        };
        let result = self
            .shell
            .as_ref()
            .and_then(|shell| shell.requests.as_ref())
            .and_then(|tx| tx.send(request).ok())
            .ok_or_else(|| TransportError::Io("the WinRM session is closed".to_owned()))
            .and_then(|()| {
                answer
                    .recv()
                    .map_err(|_| TransportError::Io("the WinRM worker stopped".to_owned()))?
            });
        if let Err(err) = &result {
            self.healthy = false;
            // A ticket refused on a kept shell (the host's key changed) is not offered again.
            if let (TransportError::Auth { .. }, Some(principal)) = (err, &self.kerberos) {
                kerberos::forget_ticket(principal);
            }
        }
        result
    }
}

impl Drop for WinRmSession {
    fn drop(&mut self) {
        if let (Some(shell), Some((pool, key)), true) =
            (self.shell.take(), self.pool.as_ref(), self.healthy)
        {
            pool.put(*key, shell);
        }
    }
}

/// How long deleting the shell may take when a session ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long stopping a timed-out command may add to the timeout.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Base64 text of the script per WS-Man `Send` (each is base64-encoded again inside the envelope).
const SEND_CHUNK: usize = 48 * 1024;

fn worker(
    client: std::sync::Arc<WinrmClient>,
    host: String,
    target: String,
    open_deadline: Duration,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Request>,
    ready: mpsc::Sender<Result<(), TransportError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(TransportError::Io(format!(
                "cannot start the WinRM runtime: {err}"
            ))));
            return;
        }
    };
    runtime.block_on(async move {
        let shell = match tokio::time::timeout(open_deadline, client.open_shell(&host)).await {
            Ok(Ok(shell)) => shell,
            Ok(Err(err)) => {
                let _ = ready.send(Err(map_error(&target, err)));
                return;
            }
            Err(_) => {
                let _ = ready.send(Err(TransportError::Connect {
                    target,
                    message: format!(
                        "no shell after {}s (host down or not answering WinRM)",
                        open_deadline.as_secs()
                    ),
                }));
                return;
            }
        };
        tracing::debug!(target_name = %target, shell_id = %shell.shell_id(), "WinRM shell opened.");
        if ready.send(Ok(())).is_err() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, shell.close()).await;
            return;
        }
        let mut shell = shell;
        while let Some(request) = inbox.recv().await {
            let started = Instant::now();
            let mut result = run_script(&client, &host, &target, &shell, &request, started).await;
            if request.reopen_if_gone && matches!(result, Err(Failure::NotStarted(_))) {
                tracing::debug!(target_name = %target, "The kept WinRM shell is gone; opening another.");
                result = match tokio::time::timeout(open_deadline, client.open_shell(&host)).await {
                    Ok(Ok(fresh)) => {
                        let gone = std::mem::replace(&mut shell, fresh);
                        let _ = tokio::time::timeout(SIGNAL_TIMEOUT, gone.close()).await;
                        run_script(&client, &host, &target, &shell, &request, started).await
                    }
                    Ok(Err(err)) => Err(Failure::Other(map_error(&target, err))),
                    Err(_) => Err(Failure::Other(TransportError::Connect {
                        target: target.clone(),
                        message: format!("no shell after {}s", open_deadline.as_secs()),
                    })),
                };
            }
            let _ = request.reply.send(result.map_err(Failure::into_error));
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, shell.close())
            .await
            .is_err()
        {
            tracing::warn!(target_name = %target, "Deleting the WinRM shell timed out.");
        }
    });
}

/// Why a script did not produce its output.
enum Failure {
    /// The host answered that it did not start the command (a fault to the Command request,
    /// such as a shell it no longer knows): the script did not run.
    NotStarted(TransportError),
    /// Anything else: the script may have run.
    Other(TransportError),
}

impl Failure {
    fn into_error(self) -> TransportError {
        match self {
            Failure::NotStarted(err) | Failure::Other(err) => err,
        }
    }
}

async fn run_script(
    client: &WinrmClient,
    host: &str,
    target: &str,
    shell: &winrm_rs::Shell<'_>,
    request: &Request,
    started: Instant,
) -> Result<Output, Failure> {
    let encoded = encoded_bootstrap();
    let mut args = transport::powershell::ARGS.to_vec();
    args.push(&encoded);
    // The whole run, starting the command included, counts against the script's timeout.
    let deadline = tokio::time::Instant::now() + request.timeout;
    let command_id =
        match tokio::time::timeout_at(deadline, shell.start_command(POWERSHELL, &args)).await {
            Ok(Ok(id)) => id,
            Ok(Err(err @ WinrmError::Soap(_))) => {
                return Err(Failure::NotStarted(map_error(target, err)));
            }
            Ok(Err(err)) => return Err(Failure::Other(map_error(target, err))),
            Err(_) => {
                return Err(Failure::Other(TransportError::Timeout {
                    after: request.timeout,
                }));
            }
        };
    let work = async {
        let payload = transport::powershell::stdin_payload(&request.script);
        let chunks: Vec<&[u8]> = payload.as_bytes().chunks(SEND_CHUNK).collect();
        for (idx, chunk) in chunks.iter().enumerate() {
            shell
                .send_input(&command_id, chunk, idx + 1 == chunks.len())
                .await?;
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut truncated = false;
        loop {
            let out = shell.receive_next(&command_id).await?;
            truncated |= append_bounded(&mut stdout, &out.stdout);
            truncated |= append_bounded(&mut stderr, &out.stderr);
            if out.done {
                return Ok::<_, WinrmError>(Output {
                    exit_code: out.exit_code,
                    stdout,
                    stderr,
                    truncated,
                    elapsed: started.elapsed(),
                });
            }
        }
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(err)) => Err(Failure::Other(map_error(target, err))),
        Err(_) => {
            let stop = client.signal_terminate(host, shell.shell_id(), &command_id);
            // Best effort and short: a host that stopped answering should not hold the caller.
            if tokio::time::timeout(SIGNAL_TIMEOUT, stop).await.is_err() {
                tracing::warn!(target_name = %target, "Stopping a timed-out command timed out.");
            }
            Err(Failure::Other(TransportError::Timeout {
                after: request.timeout,
            }))
        }
    }
}

/// Appends up to `MAX_OUTPUT` bytes; `true` when something was cut.
fn append_bounded(buffer: &mut Vec<u8>, data: &[u8]) -> bool {
    let room = transport::MAX_OUTPUT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
    data.len() > room
}

fn map_error(target: &str, err: WinrmError) -> TransportError {
    match err {
        WinrmError::AuthFailed(message) => TransportError::Auth {
            target: target.to_owned(),
            message,
        },
        WinrmError::Ntlm(err) => TransportError::Auth {
            target: target.to_owned(),
            message: err.to_string(),
        },
        WinrmError::Http(err) => TransportError::Connect {
            target: target.to_owned(),
            message: error_chain(&err),
        },
        WinrmError::Timeout(secs) => TransportError::Timeout {
            after: Duration::from_secs(secs),
        },
        WinrmError::Soap(err) => {
            TransportError::Io(format!("the host answered with an error: {err}"))
        }
        other => TransportError::Io(other.to_string()),
    }
}

/// An error and its causes on one line (reqwest hides the TLS reason in a source).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `DOMAIN\user` → (user, DOMAIN); `user@domain` and `user` stay whole with an empty domain.
fn split_user(user: &str) -> Option<(String, String)> {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 104
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '$'))
    };
    if let Some((domain, name)) = user.split_once('\\') {
        (ok(domain) && ok(name)).then(|| (name.to_owned(), domain.to_owned()))
    } else if let Some((name, domain)) = user.split_once('@') {
        (ok(name) && ok(domain)).then(|| (user.to_owned(), String::new()))
    } else {
        ok(user).then(|| (user.to_owned(), String::new()))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One rustls crypto provider per process (ring), installed before any client is built.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> WinRmTarget {
        WinRmTarget {
            name: "win1".to_owned(),
            address: "10.0.0.5".to_owned(),
            port: None,
            https: true,
            auth: Auth::Ntlm,
            user: "LAB\\administrator".to_owned(),
            password: "s3cret-Passw0rd".to_owned().into(),
            tls: Tls::SystemRoots,
            server_name: None,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn unsafe_or_hostile_settings_are_refused_before_connecting() {
        let cases: Vec<(WinRmTarget, &str)> = vec![
            (
                WinRmTarget {
                    https: false,
                    auth: Auth::Basic,
                    ..target()
                },
                "Basic",
            ),
            (
                WinRmTarget {
                    address: "10.0.0.5; calc.exe".to_owned(),
                    ..target()
                },
                "not an IP address or host name",
            ),
            (
                WinRmTarget {
                    user: "admin'; whoami #".to_owned(),
                    ..target()
                },
                "not a valid Windows account",
            ),
            (
                WinRmTarget {
                    auth: Auth::Kerberos,
                    ..target()
                },
                "did not set up its Kerberos configuration",
            ),
            (
                WinRmTarget {
                    auth: Auth::Kerberos,
                    https: false,
                    ..target()
                },
                "Kerberos logins go over HTTPS only",
            ),
            (
                WinRmTarget {
                    https: false,
                    tls: Tls::PinSha256([0; 32]),
                    ..target()
                },
                "HTTPS",
            ),
            (
                WinRmTarget {
                    tls: Tls::CaFile("/nonexistent/ca.pem".into()),
                    ..target()
                },
                "/nonexistent/ca.pem",
            ),
            (
                WinRmTarget {
                    https: false,
                    server_name: Some("ws1.clinic.local".to_owned()),
                    ..target()
                },
                "never over HTTP",
            ),
            (
                WinRmTarget {
                    server_name: Some("10.0.0.6".to_owned()),
                    ..target()
                },
                "not a DNS name",
            ),
            (
                WinRmTarget {
                    address: "ws1.clinic.local".to_owned(),
                    server_name: Some("ws1.clinic.local".to_owned()),
                    ..target()
                },
                "not an IP address",
            ),
        ];
        for (target, want) in cases {
            let err = WinRmTransport::new(target)
                .expect_err("must refuse")
                .to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn the_password_never_appears_in_debug_or_descriptions() {
        let transport = WinRmTransport::new(target()).expect("valid");
        assert_eq!(
            transport.describe(),
            "winrm https://LAB\\administrator@10.0.0.5:5986"
        );
        assert!(!format!("{:?}", target()).contains("s3cret"));
        assert!(!format!("{transport:?}").contains("s3cret"));
    }

    #[test]
    fn account_names_split_like_windows_does() {
        assert_eq!(
            split_user("LAB\\admin"),
            Some(("admin".into(), "LAB".into()))
        );
        assert_eq!(
            split_user("admin@lab.example"),
            Some(("admin@lab.example".into(), String::new()))
        );
        assert_eq!(split_user("admin"), Some(("admin".into(), String::new())));
        assert_eq!(split_user("a b"), None);
        assert_eq!(split_user("LAB\\"), None);
    }
}
