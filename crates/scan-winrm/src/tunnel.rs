//! Connect to an address, verify a name: a loopback HTTP `CONNECT` relay that lets the client
//! open TLS to `https://<name>:<port>` (SNI and certificate checked for `<name>`) while the TCP
//! connection goes to the one address that name resolved to through the site's DNS.
//!
//! `winrm-rs` has no hook for the address a name connects to, and the system resolver is not the
//! site's DNS; so the client is given this relay as its proxy. The relay only ever tunnels to the
//! pinned `address:port`, and only for a `CONNECT` to exactly `<name>:<port>`; TLS stays end to
//! end between the client and the host, so the relay sees ciphertext only.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running relay; it stops when dropped.
pub(crate) struct PinnedTunnel {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// How long the relay waits for a `CONNECT` head, and for the host to accept.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest `CONNECT` head accepted.
const MAX_HEAD: usize = 4096;

impl PinnedTunnel {
    /// Starts a relay on 127.0.0.1 that tunnels `CONNECT name:port` to `address:port`.
    pub(crate) fn start(
        name: &str,
        address: IpAddr,
        port: u16,
        connect_timeout: Duration,
    ) -> std::io::Result<PinnedTunnel> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let authority = format!("{}:{port}", name.to_ascii_lowercase());
        let target = SocketAddr::new(address, port);
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(format!("winrm tunnel {name}"))
            .spawn(move || {
                for client in listener.incoming() {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let authority = authority.clone();
                    let _ = std::thread::Builder::new()
                        .name("winrm tunnel conn".to_owned())
                        .spawn(move || relay(client, &authority, target, connect_timeout));
                }
            })?;
        Ok(PinnedTunnel { local, stop })
    }

    /// The proxy URL to give the client.
    pub(crate) fn proxy_url(&self) -> String {
        format!("http://{}", self.local)
    }
}

impl Drop for PinnedTunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_secs(1));
    }
}

/// One client connection: read its `CONNECT`, check the authority, tunnel to the pinned target.
fn relay(mut client: TcpStream, authority: &str, target: SocketAddr, connect_timeout: Duration) {
    let _ = client.set_read_timeout(Some(HEAD_TIMEOUT));
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    let end = loop {
        match client.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_HEAD {
            return;
        }
    };
    let first_line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim().to_ascii_lowercase())
        .unwrap_or_default();
    if first_line != format!("connect {authority} http/1.1") {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(mut server) = TcpStream::connect_timeout(&target, connect_timeout) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
        || server.write_all(&head[end..]).is_err()
    {
        return;
    }
    let _ = client.set_read_timeout(None);
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let upstream = std::thread::Builder::new()
        .name("winrm tunnel up".to_owned())
        .spawn(move || {
            let _ = std::io::copy(&mut client_read, &mut server_write);
            let _ = server_write.shutdown(Shutdown::Write);
        });
    let _ = std::io::copy(&mut server, &mut client);
    // The host is done: end both directions, which also ends the upstream copy.
    let _ = client.shutdown(Shutdown::Both);
    if let Ok(upstream) = upstream {
        let _ = upstream.join();
    }
}
