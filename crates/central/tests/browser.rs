//! The partner dashboard as a person uses it, in a real browser (Debian's Chromium driven over
//! WebDriver by `browser-test`) against the real `osiris-central serve` over TLS, PostgreSQL, a
//! real `osirisd` appliance and an in-memory appliance on the real link: log in with the
//! authenticator, walk every page at desktop and phone width (screenshots compared with
//! `docs/screenshots/`, axe-core finding no serious or critical violation, first paint
//! reported), filter the overview, open a workstation, claim the appliance from the page its
//! console's QR code opens, watch its incidents arrive without a reload, acknowledge one and see
//! the appliance seal it, and see a hostile host name shown as text.
//! Needs the workspace's `osirisd` (built by `cargo test --workspace`).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use browser_test::{Browser, compare_screenshot, serious};
use hmac::{KeyInit, Mac};
use test_support::postgres::PgServer;

mod common;
use common::appliance::{Box_, device, link};
use common::{Server, central, ok, psql, setup};

const PW: &str = "a long admin password";
const XSS: &str = "<img src=x onerror=alert(1)>";
/// Share of pixels that may differ from a reference (fonts' anti-aliasing across machines).
const TOLERANCE: f64 = 0.02;
const SIZES: [(u32, u32, &str); 2] = [(1280, 800, "desktop"), (390, 844, "phone")];

fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_osiris-central")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real appliance scanning this machine (healing paused), linked to Central Command.
fn start_osirisd(dir: &Path, port: u16, ca: &Path) -> (Daemon, PathBuf) {
    let data = dir.join("clinic-data");
    std::fs::create_dir_all(dir.join("clinic-update/spool")).unwrap();
    let config = dir.join("clinic.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"clinic\"\ndata_dir = \"{data}\"\n[evidence]\ncalendars = []\n[healing]\npaused = true\n[daemon]\nsocket = \"{dir}/clinic.sock\"\nserver_scan_secs = 5\ndrift_rescan_secs = 5\ncheckpoint_secs = 5\njitter_percent = 0\nupdate_state_dir = \"{dir}/clinic-update\"\n[central]\nurl = \"https://127.0.0.1:{port}\"\nca_file = \"{ca}\"\npush_secs = 5\n",
            data = data.display(),
            dir = dir.display(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let daemon = Daemon(
        Command::new(sibling("osirisd"))
            .args(["--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("osirisd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    (daemon, data)
}

fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().to_owned();
        }
        let log = std::fs::read_to_string(path.parent().unwrap().with_file_name("osirisd.log"))
            .unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "no {}; osirisd said: {log}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What an authenticator app shows (RFC 6238, independent of the server's code).
fn totp(secret_b32: &str) -> String {
    let (mut bits, mut count, mut secret) = (0u64, 0, Vec::new());
    for c in secret_b32.chars() {
        bits = (bits << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).unwrap() as u64;
        count += 5;
        if count >= 8 {
            secret.push((bits >> (count - 8)) as u8);
            count -= 8;
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&secret).unwrap();
    mac.update(&(now / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let o = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[o] & 0x7f,
        digest[o + 1],
        digest[o + 2],
        digest[o + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// Looks at the current page as a person would at both sizes: the screenshot against its
/// reference, axe-core's serious and critical findings, the first paint.
async fn look(browser: &Browser, name: &str, report: &mut Vec<String>) {
    for (width, height, label) in SIZES {
        browser.resize(width, height).await.unwrap();
        let png = browser.screenshot().await.unwrap();
        let reference = screenshots_dir().join(format!("{name}-{label}.png"));
        let comparison = compare_screenshot(&png, &reference, TOLERANCE)
            .unwrap_or_else(|err| panic!("{name} at {label}: {err:#}"));
        let violations = browser.axe().await.unwrap();
        let bad = serious(&violations);
        assert!(bad.is_empty(), "{name} at {label}: accessibility: {bad:#?}");
        report.push(format!(
            "{name} {label}: {:.2} % of pixels differ from the reference{}",
            comparison.differing_share * 100.0,
            if comparison.written {
                " (reference written)"
            } else {
                ""
            }
        ));
    }
    let paint = browser.first_paint_ms().await.unwrap();
    report.push(format!("{name}: first paint {paint:?} ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_works_the_dashboard_in_a_real_browser() {
    if !browser_test::require_browser("a_technician_works_the_dashboard_in_a_real_browser") {
        return;
    }
    let Some(pg) = PgServer::start("a_technician_works_the_dashboard_in_a_real_browser") else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, _, _) = setup(dir, &url, &["Acme IT"]);
    let server_ca = common::server_tls_for_browsers(dir);
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, &server_ca).unwrap();
    let _server = Server::start(dir, &url, port);
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "demo",
            "--partner",
            "1",
            "--sites",
            "6",
            "--devices",
            "12",
        ],
    ));
    let base = format!("https://127.0.0.1:{port}");
    let mut report = Vec::new();

    let browser = Browser::start(1280, 800).await.unwrap();
    // Logging in: password first, then the authenticator is set up at first login.
    browser.goto(&format!("{base}/sites/2")).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .contains("/login?next=%2Fsites%2F2")
    );
    look(&browser, "login", &mut report).await;
    browser
        .find("#email")
        .await
        .unwrap()
        .send_keys("admin1@1.example")
        .await
        .unwrap();
    browser
        .find("#password")
        .await
        .unwrap()
        .send_keys("not the password")
        .await
        .unwrap();
    browser
        .find("form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text(
            "#login-error",
            "password or code is wrong",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    browser
        .find("#password")
        .await
        .unwrap()
        .send_keys(PW)
        .await
        .unwrap();
    browser
        .find("form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret = browser
        .wait_for("#totp-secret", Duration::from_secs(10))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .find("#code")
        .await
        .unwrap()
        .send_keys(&totp(&secret))
        .await
        .unwrap();
    browser
        .find("form.stack button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("table.sites", Duration::from_secs(10))
        .await
        .unwrap();

    // Every page, as seeded (the demo partner: six sites of twelve devices).
    look(&browser, "overview", &mut report).await;
    // Filtering: only the sites that need attention.
    browser.resize(1280, 800).await.unwrap();
    let all = browser.find_all("tr[data-site]").await.unwrap().len();
    browser
        .execute("document.querySelector('select[name=verdict]').value = 'attention'; document.querySelector('select[name=verdict]').dispatchEvent(new Event('change'));", vec![])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser
        .current_url()
        .await
        .unwrap()
        .contains("verdict=attention")
    {
        assert!(Instant::now() < deadline, "the filter did not apply");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .wait_for("table.sites", Duration::from_secs(10))
        .await
        .unwrap();
    let pills = browser.find_all("tr[data-site] .pill").await.unwrap();
    assert!(
        !pills.is_empty() && pills.len() < all,
        "{} of {all} sites need attention",
        pills.len()
    );
    for pill in &pills {
        assert_eq!(pill.text().await.unwrap(), "Attention");
    }
    // Open a site, then a workstation from its grid.
    browser
        .find("tr[data-site] td[data-label=Site] a")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("table.grid", Duration::from_secs(10))
        .await
        .unwrap();
    let site_url = browser.current_url().await.unwrap();
    look(&browser, "site", &mut report).await;
    browser.resize(1280, 800).await.unwrap();
    browser
        .find("table.grid tbody th a")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("ul.checks", Duration::from_secs(10))
        .await
        .unwrap();
    let checks = browser.find_all("ul.checks li").await.unwrap();
    assert_eq!(checks.len(), 5, "the five workstation checks");
    look(&browser, "device", &mut report).await;
    // An incident of the site.
    browser.goto(&site_url).await.unwrap();
    browser
        .find("table.incidents td[data-label=Incident] a")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("ol.timeline", Duration::from_secs(10))
        .await
        .unwrap();
    look(&browser, "incident", &mut report).await;
    for (path, name) in [
        ("/fleet", "fleet"),
        ("/users", "users"),
        ("/evidence", "evidence"),
        ("/account", "account"),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        browser
            .wait_for("main h1", Duration::from_secs(10))
            .await
            .unwrap();
        look(&browser, name, &mut report).await;
    }
    browser.resize(1280, 800).await.unwrap();

    // A real appliance, claimed from the page its console's QR code opens.
    let (daemon, data) = start_osirisd(dir, port, &ca);
    let code = wait_file(&data.join("claim-code"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while psql(&pg, "SELECT count(*) FROM enrollments") != "1" {
        assert!(
            Instant::now() < deadline,
            "the appliance did not ask to be claimed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser
        .goto(&format!("{base}/claim?code={code}"))
        .await
        .unwrap();
    assert_eq!(
        browser
            .find("#code")
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .as_deref(),
        Some(code.as_str())
    );
    browser
        .execute("document.querySelector('#site').value = '1';", vec![])
        .await
        .unwrap();
    browser
        .find("form.stack button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("#incidents", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(browser.current_url().await.unwrap().ends_with("/sites/1"));
    // Its incidents arrive while the page stays open: no reload.
    browser
        .execute("window.__not_reloaded = true;", vec![])
        .await
        .unwrap();
    let row = browser
        .wait_for("#incidents tr[data-incident]", Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(
        browser
            .execute("return window.__not_reloaded === true;", vec![])
            .await
            .unwrap(),
        serde_json::json!(true),
        "the page was not reloaded"
    );
    let incident_id = row.attr("data-incident").await.unwrap().unwrap();
    // Acknowledge it; the appliance seals the action and the page says so.
    browser
        .find(&format!(
            "tr[data-incident='{incident_id}'] td[data-label=Incident] a"
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find("#acknowledge")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("ol.timeline", "acknowledged it", Duration::from_secs(10))
        .await
        .unwrap();
    browser
        .wait_for_text(
            "ol.timeline .sealed",
            "sealed on the appliance as bundle #",
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    let sealed: i64 = psql(
        &pg,
        "SELECT max(sealed_seq) FROM incident_actions WHERE kind = 'acknowledge'",
    )
    .parse()
    .unwrap();
    browser
        .wait_for_text("#phase", "acknowledged", Duration::from_secs(60))
        .await
        .unwrap();
    // On the appliance: the evidence bundle at that number seals it, from Central Command, by
    // that user (read from the appliance's own store once it has stopped).
    drop(daemon);
    let store = store::Store::open(&store::StoreConfig {
        data_dir: data.clone(),
        site: "clinic".into(),
    })
    .await
    .unwrap();
    let entry = store
        .entry(u64::try_from(sealed).unwrap())
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    let bundle: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
    assert_eq!(entry.kind, "operator_action");
    assert_eq!(
        (
            bundle["body"]["action"].as_str(),
            bundle["body"]["by"].as_str(),
            bundle["body"]["details"]["source"].as_str()
        ),
        (
            Some("acknowledge"),
            Some("admin1@1.example"),
            Some("central_command")
        ),
        "{bundle}"
    );

    // What an appliance sends is text: a host name that is markup, pushed over the real link.
    let hostile = Box_::new(9, "AAAA-BBBB-CCCC");
    *hostile.devices.lock().unwrap() = vec![device(XSS, "drifted", &["WIN-WSBL-001"])];
    let mut link_to = link(&format!("{base}/"), &dir.join("hostile-link"), &server_ca);
    link_to.step(&hostile).await.unwrap();
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "3", "AAAA-BBBB-CCCC"],
    ));
    hostile.append(3, "hostile");
    for _ in 0..2 {
        link_to.step(&hostile).await.unwrap();
    }
    assert_eq!(
        psql(
            &pg,
            &format!(
                "SELECT count(*) FROM devices WHERE name = '{}'",
                XSS.replace('\'', "''")
            )
        ),
        "1",
        "the hostile snapshot arrived"
    );
    browser.goto(&format!("{base}/sites/3")).await.unwrap();
    browser
        .wait_for_text("table.grid", XSS, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        !browser.alerts_seen().await.unwrap(),
        "the host name ran as script"
    );
    assert!(
        browser
            .page_source()
            .await
            .unwrap()
            .contains("&lt;img src=x onerror=alert(1)&gt;")
    );

    for line in &report {
        eprintln!("{line}");
    }
}
