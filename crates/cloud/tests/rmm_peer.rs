//! The RMM clients against the RMM peer (`vm-tests/lab/cloud/fakermm.py`) over HTTPS: Datto RMM's
//! and ConnectWise Automate's devices of one site read in pages, with each bad answer the
//! vendors can give: a wrong secret, an expired token, a denial, throttling, a next link to
//! another host, a cut-off page, another client's computers, a two-factor login and hostile
//! host names.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use cloud::rmm::{RmmError, RmmKind, RmmSettings};
use test_support::rmm::{CLIENT_ID, FakeRmm, SECRET, USER, Vendor};

fn settings(peer: &FakeRmm, vendor: Vendor, secret: &str) -> RmmSettings {
    RmmSettings {
        kind: match vendor {
            Vendor::Datto => RmmKind::Datto,
            Vendor::Automate => RmmKind::ConnectWiseAutomate,
        },
        api_url: peer.api_url(),
        site: peer.site().to_owned(),
        user: USER.to_owned(),
        secret: zeroize::Zeroizing::new(secret.to_owned()),
        client_id: (vendor == Vendor::Automate).then(|| CLIENT_ID.to_owned()),
        ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
        request_timeout: Duration::from_secs(20),
    }
}

fn import(
    peer: &FakeRmm,
    vendor: Vendor,
    secret: &str,
    timeout: Duration,
) -> Result<Vec<cloud::rmm::RmmDevice>, RmmError> {
    let settings = settings(peer, vendor, secret);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cloud::rmm::devices(&settings, Instant::now() + timeout))
}

fn start(vendor: Vendor, flags: &[&str]) -> Option<FakeRmm> {
    let python = test_support::python::reference_python()?;
    Some(FakeRmm::start(&python, vendor, flags))
}

fn names(devices: &[cloud::rmm::RmmDevice]) -> Vec<String> {
    devices
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}{}",
                d.hostname,
                d.domain.as_deref().unwrap_or("-"),
                d.device_type.as_deref().unwrap_or("-"),
                if d.computer {
                    "computer"
                } else {
                    "not-a-computer"
                },
                if d.retired { " retired" } else { "" }
            )
        })
        .collect()
}

#[test]
fn datto_reads_only_the_practice_site_with_every_field() {
    let Some(peer) = start(Vendor::Datto, &[]) else {
        return;
    };
    let devices = import(&peer, Vendor::Datto, SECRET, Duration::from_secs(30)).unwrap();
    expect_test::expect![[r#"
        [
            "FRONT-01 CLINIC Desktop computer",
            "FRONT-02 CLINIC Desktop computer",
            "EXAM-01 CLINIC Desktop computer",
            "EXAM-02 CLINIC Desktop computer",
            "EXAM-02 CLINIC Desktop computer",
            "DR-LAPTOP-01 CLINIC Laptop computer",
            "FILESRV CLINIC Server computer",
            "DC01 CLINIC Server computer",
            "HOME-LAPTOP WORKGROUP Laptop computer",
            "OLD-XRAY CLINIC Desktop computer retired",
            "LOBBY-PRINTER - Printer not-a-computer",
        ]
    "#]]
    .assert_debug_eq(&names(&devices));
    let front = &devices[0];
    assert_eq!(front.online, Some(true));
    assert!(front.ip_address.as_deref().unwrap().starts_with("10.20."));
    let age = time::OffsetDateTime::now_utc() - front.last_seen.unwrap();
    assert!(
        age > time::Duration::ZERO && age < time::Duration::hours(1),
        "{age}"
    );
    // The other practice's site in the same account was never asked for.
    assert!(peer.requests().iter().all(|r| {
        !r["path"]
            .as_str()
            .unwrap()
            .contains(test_support::rmm::OTHER_SITE)
    }));
}

#[test]
fn automate_reads_only_the_practice_client() {
    let Some(peer) = start(Vendor::Automate, &[]) else {
        return;
    };
    let devices = import(&peer, Vendor::Automate, SECRET, Duration::from_secs(30)).unwrap();
    // The practice's ten machines with an agent (the printer is not an Automate computer).
    assert_eq!(devices.len(), 10);
    assert_eq!(devices[0].hostname, "FRONT-01");
    assert_eq!(devices[6].device_type.as_deref(), Some("Server"));
    assert!(
        devices
            .iter()
            .all(|d| !d.hostname.starts_with("OTHER-") && d.last_seen.is_some())
    );
    // The condition names the client, so the peer filtered; one page was short: the end.
    let asked = peer.requests();
    let listing = asked
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .starts_with("/cwa/api/v1/computers")
        })
        .unwrap();
    assert!(
        listing["path"]
            .as_str()
            .unwrap()
            .contains("condition=Client.Id+%3D+17"),
        "{listing}"
    );
}

#[test]
fn large_sites_are_read_in_pages() {
    for (vendor, pages) in [(Vendor::Datto, 20), (Vendor::Automate, 6)] {
        let Some(peer) = start(vendor, &["--profile", "large", "--count", "5000"]) else {
            return;
        };
        let devices = import(&peer, vendor, SECRET, Duration::from_secs(60)).unwrap();
        assert_eq!(devices.len(), 5000, "{vendor:?}");
        assert_eq!(devices[4999].hostname, "WS04999");
        let path = match vendor {
            Vendor::Datto => "/api/v2/site/",
            Vendor::Automate => "/cwa/api/v1/computers",
        };
        // Datto: 250 a page, following nextPageUrl; Automate: 1,000 a page until a short one.
        assert_eq!(peer.answered(path, 200), pages, "{vendor:?}");
    }
}

#[test]
fn a_wrong_secret_is_refused_at_login_with_what_to_check() {
    for vendor in [Vendor::Datto, Vendor::Automate] {
        let Some(peer) = start(vendor, &[]) else {
            return;
        };
        let err = import(&peer, vendor, "wrong", Duration::from_secs(20)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RmmError::Login { .. }), "{err:?}");
        match vendor {
            Vendor::Datto => assert!(
                text.contains("HTTP 400: Bad credentials")
                    && text.contains("secret key in the vault"),
                "{text}"
            ),
            Vendor::Automate => assert!(
                text.contains("HTTP 401: Invalid user name or password"),
                "{text}"
            ),
        }
        assert!(!text.contains(SECRET) && !text.contains("wrong"), "{text}");
    }
}

#[test]
fn an_expired_token_is_renewed_once_and_throttling_is_waited_out() {
    for vendor in [Vendor::Datto, Vendor::Automate] {
        let Some(peer) = start(vendor, &["--expired-token", "--throttle-first"]) else {
            return;
        };
        let devices = import(&peer, vendor, SECRET, Duration::from_secs(30)).unwrap();
        let expected = if vendor == Vendor::Datto { 11 } else { 10 };
        assert_eq!(devices.len(), expected, "{vendor:?}");
        let token = match vendor {
            Vendor::Datto => "/auth/oauth/token",
            Vendor::Automate => "/cwa/api/v1/apitoken",
        };
        assert_eq!(peer.answered(token, 200), 2, "{vendor:?}: logged in again");
        let path = match vendor {
            Vendor::Datto => "/api/v2/",
            Vendor::Automate => "/cwa/api/v1/computers",
        };
        assert_eq!(peer.answered(path, 401), 1, "{vendor:?}");
        assert_eq!(peer.answered(path, 429), 1, "{vendor:?}");
    }
}

#[test]
fn a_site_that_throttles_every_call_ends_by_the_deadline() {
    let Some(peer) = start(Vendor::Datto, &["--quota", "0"]) else {
        return;
    };
    let started = Instant::now();
    let err = import(&peer, Vendor::Datto, SECRET, Duration::from_secs(4)).unwrap_err();
    assert!(matches!(err, RmmError::Throttled { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_denial_names_the_permission() {
    for (vendor, needle) in [
        (Vendor::Datto, "read access to site"),
        (Vendor::Automate, "Computers read permission for client 17"),
    ] {
        let Some(peer) = start(vendor, &["--deny"]) else {
            return;
        };
        let err = import(&peer, vendor, SECRET, Duration::from_secs(20)).unwrap_err();
        assert!(
            matches!(err, RmmError::Forbidden { status: 403, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn a_next_link_to_another_host_is_refused() {
    let Some(peer) = start(
        Vendor::Datto,
        &[
            "--profile",
            "large",
            "--count",
            "300",
            "--foreign-next-link",
        ],
    ) else {
        return;
    };
    let err = import(&peer, Vendor::Datto, SECRET, Duration::from_secs(20)).unwrap_err();
    assert!(matches!(err, RmmError::ForeignLink { .. }), "{err:?}");
    assert!(err.to_string().contains("evil.example"), "{err}");
    assert!(
        peer.requests()
            .iter()
            .all(|r| r["path"].as_str().unwrap().contains("page=0") || r["method"] == "POST")
    );
}

#[test]
fn a_cut_off_page_fails_the_import_instead_of_shortening_it() {
    for vendor in [Vendor::Datto, Vendor::Automate] {
        let Some(peer) = start(
            vendor,
            &["--profile", "large", "--count", "1200", "--malformed"],
        ) else {
            return;
        };
        let err = import(&peer, vendor, SECRET, Duration::from_secs(20)).unwrap_err();
        assert!(
            matches!(err, RmmError::Malformed { .. }),
            "{vendor:?}: {err:?}"
        );
    }
}

#[test]
fn another_clients_computers_in_the_answer_fail_the_import() {
    let Some(peer) = start(Vendor::Automate, &["--ignore-condition"]) else {
        return;
    };
    let err = import(&peer, Vendor::Automate, SECRET, Duration::from_secs(20)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("belongs to client 2, not to client 17"),
        "{text}"
    );
    assert!(!text.contains("OTHER-"), "{text}");
}

#[test]
fn a_two_factor_login_says_to_use_an_integrator() {
    let Some(peer) = start(Vendor::Automate, &["--two-factor"]) else {
        return;
    };
    let err = import(&peer, Vendor::Automate, SECRET, Duration::from_secs(20)).unwrap_err();
    assert!(err.to_string().contains("integrator user"), "{err}");
}

#[test]
fn hostile_host_names_arrive_escaped() {
    for vendor in [Vendor::Datto, Vendor::Automate] {
        let Some(peer) = start(vendor, &["--hostile"]) else {
            return;
        };
        let devices = import(&peer, vendor, SECRET, Duration::from_secs(20)).unwrap();
        let hostile = devices.last().unwrap();
        assert_eq!(
            hostile.hostname, "FD-<b>\"x\"</b>\\u{1b}[31m-07",
            "{vendor:?}"
        );
        assert!(devices.iter().all(|d| !d.hostname.contains('\u{1b}')));
    }
}
