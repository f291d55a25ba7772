//! One SSH connection (connect, host key check, login) and the scripts run over it.
//!
//! A script runs as `sh -s` (under `sudo -n` for `become_root`, and under the target's
//! `timeout -s KILL` when it has one, as a backstop) on an exec channel: stdin carries a prelude
//! that exports the quoted parameters, then the script inside `( … ) </dev/null`, so the shell
//! reads the whole script before running any of it. Output is read without blocking, bounded
//! at `MAX_OUTPUT` per stream, until the deadline. After a failed or timed-out run the
//! connection is dropped and the next run opens a new one.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use ssh2::{BlockDirections, ErrorCode, MethodType};
use transport::{Interpreter, MAX_OUTPUT, Output, ScriptRun, Session, TransportError};

use crate::known_hosts::Verdict;
use transport::sh_quote as shell_quote;

use crate::validate::is_env_name;
use crate::{HostKey, KnownHosts, SessionPool, SshAuth, SshTarget};

/// What every session of one transport shares.
pub(crate) struct Shared {
    pub(crate) target: SshTarget,
    known_hosts: Arc<KnownHosts>,
    /// Where connections wait between sessions, and this target's key there.
    pool: Option<(Arc<SessionPool>, u64)>,
}

/// A session: one SSH connection, reopened after a run that left it unusable.
pub(crate) struct SshSession {
    shared: Arc<Shared>,
    connection: Option<Connection>,
    /// The connection came from the pool and has not run anything yet in this session.
    warm: bool,
}

impl Shared {
    pub(crate) fn new(
        target: SshTarget,
        known_hosts: Arc<KnownHosts>,
        pool: Option<Arc<SessionPool>>,
    ) -> Self {
        let pool = pool.map(|pool| {
            let key = pool.key(&target);
            (pool, key)
        });
        Self {
            target,
            known_hosts,
            pool,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!("ssh {}@{}", self.target.user, self.endpoint())
    }

    /// `address:port`, with IPv6 addresses in brackets.
    fn endpoint(&self) -> String {
        let SshTarget { address, port, .. } = &self.target;
        if address.contains(':') {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        }
    }

    /// How errors name the target.
    fn label(&self) -> String {
        format!(
            "{} ({}@{})",
            self.target.name,
            self.target.user,
            self.endpoint()
        )
    }
}

impl SshSession {
    pub(crate) fn open(shared: Arc<Shared>) -> Result<Self, TransportError> {
        let pooled = shared.pool.as_ref().and_then(|(pool, key)| pool.take(*key));
        let warm = pooled.is_some();
        let connection = match pooled {
            Some(connection) => connection,
            None => Connection::open(&shared)?,
        };
        Ok(Self {
            shared,
            connection: Some(connection),
            warm,
        })
    }
}

impl Session for SshSession {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        if run.interpreter != Interpreter::Sh {
            return Err(TransportError::Unsupported(run.interpreter.as_str()));
        }
        let input = script_input(run)?;
        let warm = std::mem::take(&mut self.warm);
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(Connection::open(&self.shared)?),
        };
        let res = match connection.run(&self.shared, &input, run.timeout) {
            // A kept connection the server closed meanwhile: nothing ran; connect afresh.
            Err(failed) if warm && failed.nothing_ran => {
                tracing::debug!(target_name = %self.shared.target.name, error = %failed.error, "A kept SSH connection was closed; connecting again.");
                self.connection = None;
                let connection = self.connection.insert(Connection::open(&self.shared)?);
                connection.run(&self.shared, &input, run.timeout)
            }
            res => res,
        };
        res.map_err(|failed| {
            // The channel may be half-closed or the socket dead: start afresh next time.
            self.connection = None;
            failed.error
        })
    }
}

impl Drop for SshSession {
    fn drop(&mut self) {
        // A connection that ran its scripts cleanly waits for the next session to this target.
        if let (Some(connection), Some((pool, key))) = (self.connection.take(), &self.shared.pool) {
            pool.put(*key, connection);
        }
    }
}

/// A run that failed, and whether it failed before the script was handed over (so nothing ran
/// on the target and running it on a new connection is safe).
struct RunFailed {
    error: TransportError,
    nothing_ran: bool,
}

pub(crate) struct Connection {
    session: ssh2::Session,
    /// A second handle on the session's socket, used only to wait for readiness.
    socket: TcpStream,
}

/// `LIBSSH2_ERROR_TIMEOUT`: a blocking call ran past `Session::set_timeout`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
/// `LIBSSH2_ERROR_EAGAIN`: a non-blocking call would block.
const LIBSSH2_ERROR_EAGAIN: i32 = -37;

/// Environment every script starts with, as for local scripts.
const PRELUDE: &str =
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n";

impl Connection {
    fn open(shared: &Shared) -> Result<Self, TransportError> {
        let target = &shared.target;
        let label = shared.label();
        let connect_err = |message: String| TransportError::Connect {
            target: label.clone(),
            message,
        };
        let timeout = target.connect_timeout;

        let addrs = (target.address.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|err| {
                connect_err(format!(
                    "cannot resolve {}: {err}; check the address",
                    target.address
                ))
            })?;
        let mut last_err = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(err) => last_err = Some(err),
            }
        }
        let stream = stream.ok_or_else(|| {
            let reason =
                last_err.map_or_else(|| "no address found".to_owned(), |err| err.to_string());
            connect_err(format!(
                "TCP connect failed: {reason}; check the address, the port and that sshd runs"
            ))
        })?;
        let _ = stream.set_nodelay(true);
        let socket = stream
            .try_clone()
            .map_err(|err| connect_err(format!("cannot duplicate the socket: {err}")))?;

        let mut session = ssh2::Session::new()
            .map_err(|err| connect_err(format!("cannot create an SSH session: {err}")))?;
        session.set_timeout(millis(timeout));
        if let Some(pinned) = shared.known_hosts.pinned(&target.name) {
            // Ask for the kind of key that is pinned, so a server with several keys stays comparable.
            let _ = session.method_pref(MethodType::HostKey, &host_key_prefs(pinned.key_type()));
        }
        session.set_tcp_stream(stream);
        session.handshake().map_err(|err| {
            connect_err(if is_timeout(&err) {
                format!("SSH handshake timed out after {}s", timeout.as_secs_f32())
            } else {
                format!("SSH handshake failed: {err}")
            })
        })?;

        check_host_key(shared, &session)?;
        login(shared, &session)?;
        Ok(Self { session, socket })
    }

    fn run(
        &mut self,
        shared: &Shared,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Output, RunFailed> {
        let before = |error: TransportError| RunFailed {
            error,
            nothing_ran: true,
        };
        let after = |error: TransportError| RunFailed {
            error,
            nothing_ran: false,
        };
        let started = Instant::now();
        let deadline = started + timeout;
        let timed_out = || TransportError::Timeout { after: timeout };
        let io_err = |what: &str, err: &dyn std::fmt::Display| {
            TransportError::Io(format!("{what} on {}: {err}", shared.label()))
        };
        let ssh_err = |what: &str, err: ssh2::Error| {
            if is_timeout(&err) {
                timed_out()
            } else {
                io_err(what, &err)
            }
        };

        let session = &self.session;
        session.set_blocking(true);
        session.set_timeout(millis(deadline.saturating_duration_since(Instant::now())).max(1));
        // Until the end of the input is sent the remote shell runs nothing: it reads the whole
        // script, one parenthesised list, before running any of it.
        let mut channel = session
            .channel_session()
            .map_err(|err| before(ssh_err("cannot open an SSH channel", err)))?;
        let command = remote_command(shared.target.become_root, timeout);
        channel
            .exec(&command)
            .map_err(|err| before(ssh_err("cannot start sh", err)))?;
        channel
            .write_all(input)
            .map_err(|err| before(io_err("cannot send the script", &err)))?;
        channel
            .send_eof()
            .map_err(|err| before(ssh_err("cannot send the script", err)))?;

        session.set_blocking(false);
        let mut stdout = Bounded::default();
        let mut stderr = Bounded::default();
        let mut buf = vec![0u8; 32 * 1024];
        let res = loop {
            let mut progressed = false;
            for (stream_id, sink) in [(0, &mut stdout), (1, &mut stderr)] {
                let mut stream = channel.stream(stream_id);
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            sink.push(&buf[..n]);
                            progressed = true;
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            return Err(after(io_err("reading script output failed", &err)));
                        }
                    }
                }
            }
            if channel.eof() {
                break Ok(());
            }
            if !progressed && let Err(err) = self.wait(deadline) {
                break Err(err);
            }
        };
        if let Err(err) = res {
            self.abandon(channel);
            return Err(after(match err {
                Some(err) => io_err("waiting for script output failed", &err),
                None => timed_out(),
            }));
        }
        // Wait for the server's close, which follows the exit status.
        let closed = self
            .retry(deadline, || channel.close())
            .and_then(|()| self.retry(deadline, || channel.wait_close()));
        match closed {
            Ok(()) => {}
            Err(Some(err)) => return Err(after(io_err("closing the SSH channel failed", &err))),
            Err(None) => {
                self.abandon(channel);
                return Err(after(timed_out()));
            }
        }
        let signal = channel
            .exit_signal()
            .ok()
            .and_then(|signal| signal.exit_signal);
        let exit_code = match signal {
            Some(_) => None,
            None => Some(
                channel
                    .exit_status()
                    .map_err(|err| after(io_err("reading the exit status failed", &err)))?,
            ),
        };
        Ok(Output {
            exit_code,
            truncated: stdout.truncated || stderr.truncated,
            stdout: stdout.kept,
            stderr: stderr.kept,
            elapsed: started.elapsed(),
        })
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on.
    /// `Err(None)` means the deadline passed; `Err(Some(_))` that waiting itself failed.
    fn wait(&self, deadline: Instant) -> Result<(), Option<io::Error>> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(None);
        }
        let (flags, cap) = match self.session.block_directions() {
            BlockDirections::Inbound => (PollFlags::IN, Duration::from_secs(1)),
            BlockDirections::Outbound => (PollFlags::OUT, Duration::from_secs(1)),
            BlockDirections::Both => (PollFlags::IN | PollFlags::OUT, Duration::from_secs(1)),
            BlockDirections::None => (PollFlags::IN, Duration::from_millis(10)),
        };
        let wait_for = Timespec::try_from(remaining.min(cap)).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&self.socket, flags)];
        match rustix::event::poll(&mut fds, Some(&wait_for)) {
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::INTR) => Ok(()),
            Err(err) => Err(Some(err.into())),
        }
    }

    /// Repeats a non-blocking libssh2 call until it stops asking to be retried.
    fn retry(
        &self,
        deadline: Instant,
        mut call: impl FnMut() -> Result<(), ssh2::Error>,
    ) -> Result<(), Option<io::Error>> {
        loop {
            match call() {
                Ok(()) => return Ok(()),
                Err(err) if err.code() == ErrorCode::Session(LIBSSH2_ERROR_EAGAIN) => {
                    self.wait(deadline)?
                }
                Err(err) => return Err(Some(err.into())),
            }
        }
    }

    /// Gives up on a channel: a short, bounded attempt to close it; the caller drops the connection.
    fn abandon(&self, mut channel: ssh2::Channel) {
        self.session.set_blocking(true);
        self.session.set_timeout(1000);
        let _ = channel.close();
    }
}

/// Keeps the first `MAX_OUTPUT` bytes of a stream and counts the rest as cut.
#[derive(Default)]
struct Bounded {
    kept: Vec<u8>,
    truncated: bool,
}

impl Bounded {
    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.truncated |= bytes.len() > room;
    }
}

/// The bytes sent to `sh -s`: the environment, the quoted parameters, then the script.
fn script_input(run: &ScriptRun<'_>) -> Result<Vec<u8>, TransportError> {
    let mut input = String::from(PRELUDE);
    for (name, value) in run.env {
        if !is_env_name(name) {
            return Err(TransportError::Io(format!(
                "parameter name {name:?} is not a valid environment variable name: use [A-Z][A-Z0-9_]*"
            )));
        }
        if value.contains('\0') {
            return Err(TransportError::Io(format!(
                "parameter {name} contains a NUL byte, which a shell variable cannot hold: remove it"
            )));
        }
        input.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    input.push_str("(\n");
    input.push_str(run.script);
    input.push_str("\n) </dev/null\n");
    Ok(input.into_bytes())
}

/// The exec request: `sh -s`, under `sudo -n` for `become_root`, and under the target's
/// `timeout` (when it has one) so a script we gave up on does not run on forever.
fn remote_command(become_root: bool, timeout: Duration) -> String {
    // Whole seconds, a little past our own deadline so that ours fires first.
    let limit = timeout.as_secs().saturating_add(3);
    let shell = format!(
        "if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL {limit} sh -s; else exec sh -s; fi"
    );
    if become_root {
        format!("sudo -n sh -c {}", shell_quote(&shell))
    } else {
        shell
    }
}

fn check_host_key(shared: &Shared, session: &ssh2::Session) -> Result<(), TransportError> {
    let label = shared.label();
    let presented = session
        .host_key()
        .and_then(|(blob, _)| HostKey::from_blob(blob))
        .ok_or_else(|| TransportError::Connect {
            target: label.clone(),
            message: "the server sent no usable host key".to_owned(),
        })?;
    if let Some(expected) = &shared.target.host_key {
        // The administrator's pin decides; the known_hosts file is not consulted.
        if presented.fingerprint() == *expected {
            return Ok(());
        }
        tracing::error!(
            target_name = %shared.target.name,
            pinned = %expected,
            presented = %presented.fingerprint(),
            "SSH host key differs from the configured host_key; connection refused."
        );
        return Err(TransportError::HostKeyChanged {
            target: label,
            pinned: format!("{expected} (host_key in the configuration)"),
            presented: format!("{} {}", presented.key_type(), presented.fingerprint()),
            store: "the configuration's host_key".to_owned(),
        });
    }
    // A password must never reach a server nobody vouched for: on first contact (no pin yet)
    // a password login is refused; a key login may pin, since its signature is useless to an
    // impostor.
    if matches!(shared.target.auth, SshAuth::Password { .. })
        && !shared
            .known_hosts
            .is_pinned(&shared.target.name, &shared.endpoint())
    {
        return Err(TransportError::Connect {
            target: label,
            message: format!(
                "first contact, and the login is a password: the server's host key ({} {}, NOT verified) is not pinned, so the password is not sent. Check the fingerprint on the server (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and set host_key = \"{}\" for this target, or log in with a key",
                presented.key_type(),
                presented.fingerprint(),
                presented.fingerprint()
            ),
        });
    }
    let verdict = shared
        .known_hosts
        .check_or_pin(&shared.target.name, &shared.endpoint(), &presented)
        .map_err(|err| TransportError::Connect {
            target: label.clone(),
            message: format!("cannot check the host key: {}", with_causes(&err)),
        })?;
    match verdict {
        Verdict::Known => Ok(()),
        Verdict::Pinned => {
            tracing::info!(
                target_name = %shared.target.name,
                fingerprint = %presented.fingerprint(),
                "Pinned SSH host key on first contact."
            );
            Ok(())
        }
        Verdict::Changed { pinned } => {
            tracing::error!(
                target_name = %shared.target.name,
                pinned = %pinned.fingerprint(),
                presented = %presented.fingerprint(),
                "SSH host key changed; connection refused."
            );
            Err(TransportError::HostKeyChanged {
                target: label,
                pinned: format!("{} {}", pinned.key_type(), pinned.fingerprint()),
                presented: format!("{} {}", presented.key_type(), presented.fingerprint()),
                store: shared.known_hosts.path().display().to_string(),
            })
        }
    }
}

fn login(shared: &Shared, session: &ssh2::Session) -> Result<(), TransportError> {
    let target = &shared.target;
    let user = target.user.as_str();
    let res = match &target.auth {
        SshAuth::Key { private_key } => session
            .userauth_pubkey_file(user, None, private_key, None)
            .map_err(|err| (err, format!(
                "key {} was refused for user {user}; check that the target's authorized_keys lists its public key",
                private_key.display()
            ))),
        SshAuth::KeyData { name, private_key } => session
            .userauth_pubkey_memory(user, None, private_key, None)
            .map_err(|err| (err, format!(
                "the key in credential `{name}` was refused for user {user}; check that the target's authorized_keys lists its public key"
            ))),
        SshAuth::Password { password } => session
            .userauth_password(user, password)
            .map_err(|err| (err, format!("the password was refused for user {user}; check the password file"))),
    };
    match res {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err(TransportError::Auth {
            target: shared.label(),
            message: format!("the server did not accept the login for user {user}"),
        }),
        Err((err, _)) if is_timeout(&err) => Err(TransportError::Connect {
            target: shared.label(),
            message: format!(
                "login timed out after {}s",
                target.connect_timeout.as_secs_f32()
            ),
        }),
        // libssh2's message carries the server's answer, never the password we sent.
        Err((err, hint)) => Err(TransportError::Auth {
            target: shared.label(),
            message: format!("{} ({hint})", err.message()),
        }),
    }
}

fn host_key_prefs(key_type: &str) -> String {
    match key_type {
        "ssh-rsa" => "rsa-sha2-512,rsa-sha2-256,ssh-rsa".to_owned(),
        other => other.to_owned(),
    }
}

fn is_timeout(err: &ssh2::Error) -> bool {
    err.code() == ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// `err` followed by each of its causes, once each: `cannot write X: creating Y: Read-only file system`.
fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(err), |err| err.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
