//! The harness against the real thing: Debian's Chromium through ChromeDriver, loading pages
//! from a local axum server. Lookup, clicks and typing, waits, exact screenshot sizes, screenshot
//! comparison (including `UPDATE_SCREENSHOTS=1`), hidden `data-volatile` elements, axe-core on
//! a bad and a good page, the alert detector on an unescaped page, console errors, and that no
//! browser process outlives a dropped `Browser`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use browser_test::{Browser, Error, compare_screenshot, png_dimensions, require_browser, serious};

const WAIT: Duration = Duration::from_secs(10);

/// A strict policy like the one Central Command's pages will send: nothing inline, nothing
/// from elsewhere.
const STRICT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_click_type_and_read() {
    if !require_browser("find_click_type_and_read") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(1024, 768).await.unwrap();
    browser.goto(&format!("{site}/form")).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap(), format!("{site}/form"));

    let input = browser.find("#name").await.unwrap();
    assert_eq!(input.attr("value").await.unwrap().as_deref(), Some("old"));
    input.clear().await.unwrap();
    input.send_keys("Ada Lovelace").await.unwrap();
    browser
        .find("button#copy")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let out = browser.find("#out").await.unwrap();
    assert_eq!(out.text().await.unwrap(), "Hello, Ada Lovelace");
    assert_eq!(
        out.attr("data-kind").await.unwrap().as_deref(),
        Some("greeting")
    );
    assert_eq!(out.attr("data-missing").await.unwrap(), None);
    assert!(out.is_displayed().await.unwrap());
    assert!(
        !browser
            .find("#hidden")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    assert_eq!(browser.find_all("li").await.unwrap().len(), 3);
    assert!(browser.find_all("li.none").await.unwrap().is_empty());
    let texts = browser
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0]), (e) => e.textContent);",
            vec![serde_json::json!("li")],
        )
        .await
        .unwrap();
    assert_eq!(texts, serde_json::json!(["one", "two", "three"]));
    assert!(
        browser
            .page_source()
            .await
            .unwrap()
            .contains("<ul id=\"list\">")
    );

    // `localhost` resolves; no other name does, so a page cannot reach the network by name.
    let port = site.rsplit(':').next().unwrap();
    browser
        .goto(&format!("http://localhost:{port}/form"))
        .await
        .unwrap();
    assert_eq!(
        browser
            .find("#name")
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .as_deref(),
        Some("old")
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let err = browser
        .goto(&format!("http://{}:{port}/form", hostname.trim()))
        .await;
    let page = browser.page_source().await.unwrap();
    assert!(
        err.is_err() || page.contains("ERR_NAME_NOT_RESOLVED"),
        "{err:?}: {page}"
    );

    browser.goto(&format!("{site}/form")).await.unwrap();
    let missing = browser.find("#no-such-thing").await.err().unwrap();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
    let message = missing.to_string();
    assert!(message.contains("#no-such-thing"), "{message}");
    assert!(message.contains(&format!("{site}/form")), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_see_what_appears_later() {
    if !require_browser("waits_see_what_appears_later") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(1024, 768).await.unwrap();
    browser.goto(&format!("{site}/delayed")).await.unwrap();
    assert!(browser.find_all("#late").await.unwrap().is_empty());
    browser.find("#add").await.unwrap().click().await.unwrap();
    // Added 400 ms after the click: not there at once, found by the wait.
    assert!(browser.find_all("#late").await.unwrap().is_empty());
    let late = browser.wait_for("#late", WAIT).await.unwrap();
    assert_eq!(late.text().await.unwrap(), "arrived");
    // The status text changes twice; the wait ignores the first change.
    let status = browser
        .wait_for_text("p.status", "done", WAIT)
        .await
        .unwrap();
    assert_eq!(status.text().await.unwrap(), "status: done");

    let timeout = browser
        .wait_for("#never", Duration::from_millis(300))
        .await
        .err()
        .unwrap();
    assert!(matches!(timeout, Error::Timeout { .. }), "{timeout:?}");
    assert!(timeout.to_string().contains("#never"), "{timeout}");
    let timeout = browser
        .wait_for_text("p.status", "exploded", Duration::from_millis(300))
        .await
        .err()
        .unwrap();
    let message = timeout.to_string();
    assert!(
        message.contains("exploded") && message.contains("status: done"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_have_exactly_the_viewport_size() {
    if !require_browser("screenshots_have_exactly_the_viewport_size") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(1280, 800).await.unwrap();
    browser.goto(&format!("{site}/tall")).await.unwrap();
    let png = browser.screenshot().await.unwrap();
    assert_eq!(png_dimensions(&png).unwrap(), (1280, 800));
    browser.resize(390, 844).await.unwrap();
    let png = browser.screenshot().await.unwrap();
    assert_eq!(png_dimensions(&png).unwrap(), (390, 844));
    let layout = browser
        .execute("return document.documentElement.clientWidth;", Vec::new())
        .await
        .unwrap();
    assert_eq!(layout, serde_json::json!(390));
    drop(browser);

    let phone = Browser::start(390, 844).await.unwrap();
    phone.goto(&format!("{site}/tall")).await.unwrap();
    assert_eq!(
        png_dimensions(&phone.screenshot().await.unwrap()).unwrap(),
        (390, 844)
    );
    let paint = phone.first_paint_ms().await.unwrap();
    assert!(
        paint.is_some_and(|ms| ms > 0.0 && ms < 30_000.0),
        "{paint:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_comparison_measures_the_changed_share() {
    if !require_browser("screenshot_comparison_measures_the_changed_share") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(400, 300).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("box.png");

    browser
        .goto(&format!("{site}/box?colour=blue"))
        .await
        .unwrap();
    let blue = browser.screenshot().await.unwrap();
    std::fs::write(&reference, &blue).unwrap();
    let same = compare_screenshot(&blue, &reference, 0.0).unwrap();
    assert_eq!(same.differing_share, 0.0);
    assert!(!same.written);
    // A second screenshot of the same page is the same.
    let again = browser.screenshot().await.unwrap();
    assert_eq!(
        compare_screenshot(&again, &reference, 0.0)
            .unwrap()
            .differing_share,
        0.0
    );

    // The 100 × 80 box turns red: 8,000 of 120,000 pixels.
    browser
        .goto(&format!("{site}/box?colour=red"))
        .await
        .unwrap();
    let red = browser.screenshot().await.unwrap();
    let expected_share = 8_000.0 / 120_000.0;
    let passed = compare_screenshot(&red, &reference, 0.1).unwrap();
    assert!(
        (passed.differing_share - expected_share).abs() < 1e-9,
        "{passed:?}"
    );
    let failed = compare_screenshot(&red, &reference, 0.01).err().unwrap();
    let message = failed.to_string();
    let Error::ScreenshotDiffers {
        differing_share,
        actual,
        diff,
        ..
    } = failed
    else {
        panic!("expected ScreenshotDiffers, got {message}");
    };
    assert!((differing_share - expected_share).abs() < 1e-9, "{message}");
    assert!(message.contains("6.6667%"), "{message}");
    assert!(message.contains(&diff.display().to_string()), "{message}");
    // The failure's images are outside the reference's directory, and the actual one is the
    // screenshot itself.
    assert!(!actual.starts_with(dir.path()) && !diff.starts_with(dir.path()));
    assert_eq!(std::fs::read(&actual).unwrap(), red);
    // The difference image marks exactly the box in red.
    let decoded = decode_rgba(&std::fs::read(&diff).unwrap());
    let red_pixels: Vec<(usize, usize)> = decoded
        .as_chunks::<4>()
        .0
        .iter()
        .enumerate()
        .filter(|(_, pixel)| **pixel == [255, 0, 0, 255])
        .map(|(index, _)| (index % 400, index / 400))
        .collect();
    assert_eq!(red_pixels.len(), 8_000);
    assert!(
        red_pixels
            .iter()
            .all(|&(x, y)| (50..150).contains(&x) && (40..120).contains(&y))
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the reference"
    );

    // A screenshot of another size never matches.
    browser.resize(300, 300).await.unwrap();
    let small = browser.screenshot().await.unwrap();
    let err = compare_screenshot(&small, &reference, 1.0).err().unwrap();
    assert!(
        matches!(
            err,
            Error::SizeDiffers {
                reference_size: (400, 300),
                actual_size: (300, 300),
                ..
            }
        ),
        "{err:?}"
    );
}

/// Runs [`reference_is_written_only_under_update_screenshots`] again in a child process with
/// `UPDATE_SCREENSHOTS=1` (this process cannot change its own environment safely).
#[test]
fn update_screenshots_writes_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("new/reference.png");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "reference_is_written_only_under_update_screenshots",
            "--nocapture",
        ])
        .env("UPDATE_SCREENSHOTS", "1")
        .env("OSIRIS_TEST_REFERENCE", &reference)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&reference).unwrap(), tiny_png(7));
}

/// Without `UPDATE_SCREENSHOTS=1` a missing reference is an error that says how to create it
/// and writes nothing next to it; with it (as
/// [`update_screenshots_writes_the_reference`] runs this), the reference is written, and
/// rewritten over an old one.
#[test]
fn reference_is_written_only_under_update_screenshots() {
    let dir = tempfile::tempdir().unwrap();
    let reference = std::env::var_os("OSIRIS_TEST_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("new/reference.png"));
    let png = tiny_png(7);
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let written = compare_screenshot(&png, &reference, 0.0).unwrap();
        assert!(written.written);
        std::fs::write(&reference, tiny_png(200)).unwrap();
        assert!(compare_screenshot(&png, &reference, 0.0).unwrap().written);
        assert_eq!(std::fs::read(&reference).unwrap(), png);
    } else {
        let err = compare_screenshot(&png, &reference, 0.0).err().unwrap();
        assert!(err.to_string().contains("UPDATE_SCREENSHOTS=1"), "{err}");
        let Error::MissingReference { actual, .. } = err else {
            panic!("expected MissingReference, got {err:?}");
        };
        assert_eq!(std::fs::read(actual).unwrap(), png);
        assert!(!reference.exists() && !reference.parent().unwrap().exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_elements_are_hidden_in_screenshots() {
    if !require_browser("volatile_elements_are_hidden_in_screenshots") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(600, 200).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("volatile.png");
    browser
        .goto(&format!("{site}/clock?time=09:15:02&volatile=1"))
        .await
        .unwrap();
    let first = browser.screenshot().await.unwrap();
    std::fs::write(&reference, &first).unwrap();
    // The page (under a strict Content Security Policy) shows the time again after the
    // screenshot: the harness hides it only while it takes the picture.
    let visibility = browser
        .execute(
            "return getComputedStyle(document.querySelector('[data-volatile] b')).visibility;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(visibility, serde_json::json!("visible"));

    browser
        .goto(&format!("{site}/clock?time=23:48:57&volatile=1"))
        .await
        .unwrap();
    let second = browser.screenshot().await.unwrap();
    assert_eq!(
        compare_screenshot(&second, &reference, 0.0)
            .unwrap()
            .differing_share,
        0.0
    );

    // The control: without the attribute, the same change shows.
    browser
        .goto(&format!("{site}/clock?time=09:15:02&volatile=0"))
        .await
        .unwrap();
    std::fs::write(&reference, browser.screenshot().await.unwrap()).unwrap();
    browser
        .goto(&format!("{site}/clock?time=23:48:57&volatile=0"))
        .await
        .unwrap();
    let changed = browser.screenshot().await.unwrap();
    let err = compare_screenshot(&changed, &reference, 0.0).err().unwrap();
    assert!(matches!(err, Error::ScreenshotDiffers { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_violations_on_a_bad_page_only() {
    if !require_browser("axe_finds_violations_on_a_bad_page_only") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(1024, 768).await.unwrap();
    browser.goto(&format!("{site}/a11y-bad")).await.unwrap();
    let violations = browser.axe().await.unwrap();
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    assert!(
        ids.contains(&"image-alt") && ids.contains(&"label"),
        "{ids:?}"
    );
    let image_alt = violations.iter().find(|v| v.id == "image-alt").unwrap();
    assert_eq!(image_alt.impact.as_deref(), Some("critical"));
    assert!(
        image_alt
            .nodes
            .iter()
            .any(|node| node.contains("chart.png")),
        "{image_alt}"
    );
    assert!(serious(&violations).len() >= 2, "{violations:?}");
    // Running again on the same page reuses the injected axe.
    assert_eq!(browser.axe().await.unwrap().len(), violations.len());

    // A good page under a strict Content Security Policy: axe still runs, and finds nothing
    // serious.
    browser.goto(&format!("{site}/a11y-good")).await.unwrap();
    let violations = browser.axe().await.unwrap();
    let serious_ones: Vec<String> = serious(&violations)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(serious_ones.is_empty(), "{}", serious_ones.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_detector_sees_an_injected_script() {
    if !require_browser("alert_detector_sees_an_injected_script") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(800, 600).await.unwrap();
    let payload = "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E";
    // The escaping page shows the payload as text: no dialog.
    browser
        .goto(&format!("{site}/echo?escaped=1&q={payload}"))
        .await
        .unwrap();
    assert!(!browser.alerts_seen().await.unwrap());
    assert_eq!(
        browser.find("#q").await.unwrap().text().await.unwrap(),
        "<img src=x onerror=alert(1)>"
    );
    // The page that escapes nothing runs it.
    browser
        .goto(&format!("{site}/echo?escaped=0&q={payload}"))
        .await
        .unwrap();
    // Until a test looks, the dialog stays open, and every other command fails naming it.
    let blocked = browser.find("#q").await.err().unwrap().to_string();
    assert!(blocked.contains("unexpected alert open"), "{blocked}");
    assert!(browser.alerts_seen().await.unwrap());
    // Seen and dismissed: the session goes on.
    assert!(!browser.alerts_seen().await.unwrap());
    assert!(browser.find("#q img").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_errors_include_csp_violations() {
    if !require_browser("console_errors_include_csp_violations") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(800, 600).await.unwrap();
    browser.goto(&format!("{site}/a11y-good")).await.unwrap();
    assert_eq!(
        browser.console_errors().await.unwrap(),
        Vec::<String>::new()
    );
    // An inline script under `default-src 'none'` is refused, and says so.
    browser
        .goto(&format!("{site}/inline-script"))
        .await
        .unwrap();
    let errors = browser.console_errors().await.unwrap();
    assert!(
        errors.iter().any(|e| e.contains("Content Security Policy")),
        "{errors:?}"
    );
    assert!(browser.find_all("#ran").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_the_browser() {
    if !require_browser("no_process_outlives_the_browser") {
        return;
    }
    let site = serve().await;
    let browser = Browser::start(800, 600).await.unwrap();
    browser.goto(&format!("{site}/form")).await.unwrap();
    let home = browser.home_dir().to_owned();
    let pid = browser.chromedriver_pid();
    // While it runs: ChromeDriver, and browser processes that name the temporary home.
    assert!(is_running(pid));
    let running = processes_naming(&home);
    assert!(running.len() >= 3, "{running:?}");
    drop(browser);
    assert!(!is_running(pid), "chromedriver {pid} is still running");
    // The crash handler notices its browser is gone on its own; give it a moment.
    let mut left = processes_naming(&home);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = processes_naming(&home);
    }
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(!home.exists(), "{} was not removed", home.display());
}

/// Runs [`browser_gate`] in child processes with parts of the browser missing: under
/// `OSIRIS_REQUIRE_ROOT=1` (as in `scripts/test`) the test fails and says to run
/// `scripts/setup`; without it, the test skips loudly.
#[test]
fn a_missing_browser_fails_under_require_root() {
    let missing = std::env::temp_dir().join("osiris-no-such-file/axe.min.js");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "browser_gate", "--nocapture"])
        .env("OSIRIS_AXE_JS", &missing)
        .env("OSIRIS_REQUIRE_ROOT", "1")
        .env_remove("CI")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{output}");
    assert!(
        output.contains("browser_gate needs a browser: axe-core is not installed")
            && output.contains(&missing.display().to_string())
            && output.contains("run scripts/setup"),
        "{output}"
    );

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "browser_gate", "--nocapture"])
        .env("OSIRIS_CHROMEDRIVER", "/nonexistent/chromedriver")
        .env_remove("OSIRIS_REQUIRE_ROOT")
        .env_remove("CI")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    assert!(
        output.contains("SKIPPED browser_gate needs a browser: chromedriver is not installed"),
        "{output}"
    );
}

/// The gate agrees with what is installed: when it says yes, a browser starts and axe runs;
/// when it says no, starting a browser or running axe fails and says to run `scripts/setup`.
/// [`a_missing_browser_fails_under_require_root`] runs it with parts missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_gate() {
    let ready = require_browser("browser_gate");
    let res = match Browser::start(320, 240).await {
        Ok(browser) => browser.axe().await.map(drop),
        Err(err) => Err(err),
    };
    match res {
        Ok(()) => assert!(ready),
        Err(err) => {
            assert!(!ready, "{err}");
            assert!(
                matches!(err, Error::NotInstalled { .. })
                    && err.to_string().contains("run scripts/setup"),
                "{err}"
            );
        }
    }
}

/// The test site: every page the tests load.
async fn serve() -> String {
    let router = Router::new()
        .route("/form", get(|| async { Html(FORM) }))
        .route("/delayed", get(|| async { Html(DELAYED) }))
        .route("/tall", get(|| async { Html(TALL) }))
        .route(
            "/page.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], PAGE_CSS) }),
        )
        .route("/box", get(box_page))
        .route("/clock", get(clock_page))
        .route("/a11y-bad", get(|| async { Html(A11Y_BAD) }))
        .route(
            "/a11y-good",
            get(|| async {
                (
                    [(header::CONTENT_SECURITY_POLICY, STRICT_CSP)],
                    Html(A11Y_GOOD),
                )
            }),
        )
        .route(
            "/chart.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], tiny_png(90)) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], tiny_png(30)) }),
        )
        .route("/echo", get(echo_page))
        .route(
            "/inline-script",
            get(|| async {
                (
                    [(header::CONTENT_SECURITY_POLICY, STRICT_CSP)],
                    Html(
                        "<!doctype html><html lang=en><title>Inline</title>\
                         <script>document.write('<p id=ran>ran</p>')</script><p>page</p></html>",
                    ),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

async fn box_page(RawQuery(query): RawQuery) -> impl IntoResponse {
    let colour = if param(query.as_deref(), "colour") == "red" {
        "#f00"
    } else {
        "#00f"
    };
    Html(format!(
        "<!doctype html><html lang=en><title>Box</title>\
         <body style=\"margin:0;background:#fff\">\
         <div style=\"position:absolute;left:50px;top:40px;width:100px;height:80px;background:{colour}\"></div>\
         </body></html>"
    ))
}

async fn clock_page(RawQuery(query): RawQuery) -> impl IntoResponse {
    let time = param(query.as_deref(), "time");
    let volatile = if param(query.as_deref(), "volatile") == "1" {
        " data-volatile"
    } else {
        ""
    };
    (
        [(header::CONTENT_SECURITY_POLICY, STRICT_CSP)],
        Html(format!(
            "<!doctype html><html lang=en><head><title>Clock</title>\
             <link rel=stylesheet href=/page.css></head><body>\
             <h1>Last scan</h1><p class=when{volatile}>at <b>{time}</b> UTC</p></body></html>"
        )),
    )
}

/// Echoes `q`: escaped when `escaped=1`, verbatim (the bug an XSS test looks for) otherwise.
async fn echo_page(RawQuery(query): RawQuery) -> impl IntoResponse {
    let q = param(query.as_deref(), "q");
    let shown = if param(query.as_deref(), "escaped") == "1" {
        q.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    } else {
        q
    };
    Html(format!(
        "<!doctype html><html lang=en><title>Search</title><p>You searched for:</p><div id=q>{shown}</div></html>"
    ))
}

fn param(query: Option<&str>, name: &str) -> String {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// A 2 × 2 grey PNG of the given shade.
fn tiny_png(shade: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 2, 2);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[shade; 12]).unwrap();
    writer.finish().unwrap();
    out
}

fn decode_rgba(png_bytes: &[u8]) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgba);
    buffer.truncate(frame.buffer_size());
    buffer
}

/// Whether a process runs (a zombie does not count: it has exited).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

/// The running processes whose command line names `path`, as `pid: command line`.
fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && is_running(pid) {
            found.push(format!(
                "{pid}: {}",
                cmdline.chars().take(120).collect::<String>()
            ));
        }
    }
    found
}

const FORM: &str = r#"<!doctype html><html lang=en><head><title>Form</title></head><body>
<label for=name>Name</label> <input id=name value=old>
<button id=copy type=button>Copy</button>
<p id=out data-kind=greeting></p>
<p id=hidden style="display:none">hidden</p>
<ul id="list"><li>one</li><li>two</li><li>three</li></ul>
<script>
document.getElementById('copy').addEventListener('click', () => {
  document.getElementById('out').textContent = 'Hello, ' + document.getElementById('name').value;
});
</script></body></html>"#;

const DELAYED: &str = r#"<!doctype html><html lang=en><head><title>Delayed</title></head><body>
<button id=add type=button>Add</button><p class=status>status: idle</p>
<script>
document.getElementById('add').addEventListener('click', () => {
  const status = document.querySelector('p.status');
  status.textContent = 'status: working';
  setTimeout(() => {
    const late = document.createElement('p');
    late.id = 'late';
    late.textContent = 'arrived';
    document.body.append(late);
  }, 400);
  setTimeout(() => { status.textContent = 'status: done'; }, 700);
});
</script></body></html>"#;

const TALL: &str = r#"<!doctype html><html lang=en><head><title>Tall</title>
<meta name=viewport content="width=device-width, initial-scale=1"></head>
<body style="margin:0;font-family:'DejaVu Sans'"><h1>A long page</h1>
<div style="height:3000px;background:linear-gradient(#fff,#036)"></div></body></html>"#;

const PAGE_CSS: &str = "body { margin: 16px; font: 16px 'DejaVu Sans'; color: #111; background: #fff; }\n\
                        .when b { color: #a00; }\n";

const A11Y_BAD: &str = r#"<!doctype html><html lang=en><head><title>Bad</title></head><body>
<main><h1>Report</h1><img src=/chart.png width=90 height=90>
<form><input type=text name=site></form></main></body></html>"#;

const A11Y_GOOD: &str = r#"<!doctype html><html lang=en><head><title>Good</title>
<link rel=stylesheet href=/page.css></head><body>
<header><p>OsirisCare</p></header>
<main><h1>Report</h1><img src=/chart.png width=90 height=90 alt="Compliance over the last 30 days">
<form><label for=site>Site</label> <input id=site type=text name=site>
<button type=submit>Search</button></form></main></body></html>"#;
