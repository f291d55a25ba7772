//! systemd integration without a library: `sd_notify` datagrams to `$NOTIFY_SOCKET` (READY,
//! STOPPING, STATUS, WATCHDOG) and the watchdog interval from `$WATCHDOG_USEC`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification (e.g. `READY=1`); a no-op outside systemd.
pub(crate) fn notify(state: &str) {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        notify_to(std::path::Path::new(&path), state);
    }
}

/// Sends one notification to the given socket path.
pub(crate) fn notify_to(path: &std::path::Path, state: &str) {
    if path.as_os_str().as_encoded_bytes().first() == Some(&b'@') {
        // Abstract sockets need platform-specific addressing; systemd uses a path by default.
        tracing::debug!(socket = %path.display(), "Abstract NOTIFY_SOCKET is not supported.");
        return;
    }
    let sent = UnixDatagram::unbound().and_then(|sock| sock.send_to(state.as_bytes(), path));
    if let Err(err) = sent {
        tracing::warn!(socket = %path.display(), error = %err, "Could not notify systemd.");
    }
}

/// How often to ping the watchdog: half the interval systemd expects, if it expects one.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_systemd_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        notify_to(&path, "READY=1\nSTATUS=scanning");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=scanning");
    }
}
