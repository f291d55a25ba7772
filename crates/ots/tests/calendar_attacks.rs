//! Attacks on the calendar and explorer clients (issue 14, findings 3 and 4): a proof that steers
//! upgrades to a host nobody configured, a calendar that redirects, plain HTTP to a LAN host,
//! and an explorer that serves cheap headers.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use ots::bitcoin::WorkFloor;
use ots::client::{CalendarAllowlist, CalendarClient, EsploraClient, UpgradeStatus, check_url};
use ots::{Attestation, DetachedTimestamp, OtsError};
use test_support::calendar::LabCalendar;

fn client() -> CalendarClient {
    CalendarClient::new(Duration::from_secs(10)).unwrap()
}

#[tokio::test]
async fn pending_uris_outside_the_allowlist_are_never_contacted() {
    let configured = LabCalendar::start().unwrap();
    // The "LAN host" a hostile proof or calendar answer names.
    let lan_host = LabCalendar::start().unwrap();
    let mut detached = DetachedTimestamp::from_sha256_digest([5; 32]);
    detached
        .timestamp
        .add_attestation(Attestation::pending(lan_host.base_url()).unwrap());
    let before = detached.to_bytes();

    let report = client()
        .upgrade(
            &mut detached,
            &CalendarAllowlist::for_submitted(&[configured.base_url().to_owned()]),
        )
        .await
        .unwrap();

    let [outcome] = report.outcomes.as_slice() else {
        panic!("expected one outcome, got {:?}", report.outcomes);
    };
    assert!(
        matches!(outcome.status, UpgradeStatus::NotAllowed),
        "{outcome:?}"
    );
    assert_eq!(lan_host.n_requests(), 0);
    assert_eq!(configured.n_requests(), 0);
    assert_eq!(detached.to_bytes(), before);
}

/// Answers every connection with a redirect to `location` and counts connections.
fn redirector(location: String) -> (String, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = seen_tx.send(());
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen_rx)
}

#[tokio::test]
async fn a_calendar_redirect_is_not_followed() {
    let target = LabCalendar::start().unwrap();
    let (calendar_url, seen) = redirector(format!("{}/timestamp/00", target.base_url()));
    let mut detached = DetachedTimestamp::from_sha256_digest([6; 32]);
    detached
        .timestamp
        .add_attestation(Attestation::pending(&calendar_url).unwrap());

    let report = client()
        .upgrade(
            &mut detached,
            &CalendarAllowlist::for_submitted(std::slice::from_ref(&calendar_url)),
        )
        .await
        .unwrap();

    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());
    let status = &report.outcomes[0].status;
    assert!(
        matches!(
            status,
            UpgradeStatus::Failed {
                error: OtsError::HttpStatus { status: 302, .. }
            }
        ),
        "{status:?}"
    );
    assert_eq!(target.n_requests(), 0);

    let err = client().submit(&calendar_url, &[1; 32]).await.unwrap_err();
    assert!(
        matches!(err, OtsError::HttpStatus { status: 302, .. }),
        "{err}"
    );
    assert_eq!(target.n_requests(), 0);
}

#[tokio::test]
async fn plain_http_to_a_named_host_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // `localhost` resolves to the listener, but only an IP literal proves the host is loopback.
    for url in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:1@localhost:{port}"),
        format!("https://user:pw@127.0.0.1:{port}"),
    ] {
        let err = client().submit(&url, &[1; 32]).await.unwrap_err();
        assert!(matches!(err, OtsError::InsecureUrl { .. }), "{url}: {err}");
        let err = EsploraClient::new(&url, WorkFloor::MAINNET).unwrap_err();
        assert!(matches!(err, OtsError::InsecureUrl { .. }), "{url}: {err}");
    }
    // A pending URI cannot carry `@`, so the upgrade path is shown with the named host.
    let url = format!("http://localhost:{port}");
    let mut detached = DetachedTimestamp::from_sha256_digest([7; 32]);
    detached
        .timestamp
        .add_attestation(Attestation::pending(&url).unwrap());
    let report = client()
        .upgrade(
            &mut detached,
            &CalendarAllowlist::for_submitted(std::slice::from_ref(&url)),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            report.outcomes[0].status,
            UpgradeStatus::Failed {
                error: OtsError::InsecureUrl { .. }
            }
        ),
        "{:?}",
        report.outcomes[0].status
    );
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "something connected"
    );
}

#[test]
fn only_https_or_loopback_http_urls_pass() {
    for good in [
        "https://alice.btc.calendar.opentimestamps.org",
        "https://blockstream.info/api/",
        "http://127.0.0.1:8080",
        "http://127.3.4.5/",
        "http://[::1]:9000/x",
    ] {
        check_url(good).unwrap();
    }
    for bad in [
        "http://10.77.0.5/",
        "http://192.168.1.10:80/",
        "http://calendar.example/",
        "http://127.0.0.1.nip.io/",
        "http://127.0.0.1:1@evil.example/",
        "http://[::ffff:10.0.0.1]/",
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "https://",
        "not a url",
    ] {
        let err = check_url(bad).unwrap_err();
        assert!(matches!(err, OtsError::InsecureUrl { .. }), "{bad}: {err}");
    }
}

#[test]
fn the_allowlist_holds_the_submitted_calendars_and_their_pools_backends_only() {
    let pools = CalendarAllowlist::for_submitted(&[
        "https://a.pool.opentimestamps.org/".to_owned(),
        "https://ots.btc.catallaxy.com".to_owned(),
        "http://127.0.0.1:8080".to_owned(),
    ]);
    for allowed in [
        "https://a.pool.opentimestamps.org",
        "https://alice.btc.calendar.opentimestamps.org",
        "https://bob.btc.calendar.opentimestamps.org/",
        "https://btc.calendar.catallaxy.com",
        "http://127.0.0.1:8080/",
    ] {
        assert!(pools.allows(allowed), "{allowed}");
    }
    for refused in [
        "https://finney.calendar.eternitywall.com",
        "http://alice.btc.calendar.opentimestamps.org",
        "https://evil.example/calendar.opentimestamps.org",
        "https://evilcalendar.opentimestamps.org",
        "https://calendar.opentimestamps.org",
        "https://alice.btc.calendar.opentimestamps.org:8443",
        "https://alice.btc.calendar.opentimestamps.org/x",
        "https://alice.btc.calendar.opentimestamps.org.evil.example",
        "http://127.0.0.1:8081",
        "http://10.77.0.1",
    ] {
        assert!(!pools.allows(refused), "{refused}");
    }
    // Without a pool configured, no backend of that operator is allowed.
    let own = CalendarAllowlist::for_submitted(&["https://calendar.clinic.example".to_owned()]);
    assert!(own.allows("https://calendar.clinic.example/"));
    assert!(!own.allows("https://alice.btc.calendar.opentimestamps.org"));
}

#[tokio::test]
async fn an_explorer_serving_cheap_headers_is_not_believed() {
    let calendar = LabCalendar::start().unwrap();
    let height = calendar.mine();
    // The lab chain is regtest: trivially cheap to forge, so refused at the production floor.
    let esplora = EsploraClient::new(calendar.base_url(), WorkFloor::MAINNET).unwrap();
    let err = esplora.header(height).await.unwrap_err();
    assert!(matches!(err, OtsError::BelowWorkFloor { .. }), "{err}");
    let esplora = EsploraClient::new(calendar.base_url(), WorkFloor::REGTEST).unwrap();
    esplora.header(height).await.unwrap();
}
