//! Failures that need no WinRM peer: nothing listening, and a host that accepts TCP but never answers.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use scan_winrm::{Auth, Tls, WinRmTarget, WinRmTransport};
use transport::{Transport, TransportError};

fn target(port: u16) -> WinRmTarget {
    WinRmTarget {
        name: "win1".to_owned(),
        address: "127.0.0.1".to_owned(),
        port: Some(port),
        https: false,
        auth: Auth::Ntlm,
        user: "administrator".to_owned(),
        password: "Passw0rd!".to_owned().into(),
        tls: Tls::SystemRoots,
        server_name: None,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(2),
    }
}

#[test]
fn nothing_listening_is_a_quick_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = WinRmTransport::new(target(port))
        .unwrap()
        .open()
        .err()
        .unwrap();
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("cannot connect to winrm http://administrator@127.0.0.1"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_host_that_never_answers_is_an_error_within_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept connections and hold them open without a byte of answer.
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(4) {
            open.push(stream);
        }
        std::thread::sleep(Duration::from_secs(6));
    });
    let started = Instant::now();
    let err = WinRmTransport::new(target(port))
        .unwrap()
        .open()
        .err()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            TransportError::Connect { .. } | TransportError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
    drop(held);
}
