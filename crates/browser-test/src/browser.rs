//! The browser a test drives: one headless Chromium session behind its own ChromeDriver, with
//! an exact viewport, element lookup and waits, scripts, screenshots that hide volatile
//! elements, axe-core, paint timing, dialogs and console errors.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::axe::{self, Violation};
use crate::driver::Driver;
use crate::install;
use crate::webdriver::{self, Session};
use crate::{Error, Result};

/// How often the waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A headless Chromium and the ChromeDriver that drives it.
///
/// Dropping it ends the session (ChromeDriver closes the browser), kills ChromeDriver's whole
/// process group and removes the temporary home directory with the browser's profile, so no
/// process and no file outlives it.
pub struct Browser {
    // Fields drop in this order: the session's handle, then the processes, then their files.
    session: Session,
    driver: Driver,
    home: tempfile::TempDir,
}

/// An element found on the page; it keeps the selector that found it for error messages.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
    selector: String,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium whose viewport is exactly `width` × `height`
    /// CSS pixels (and, at a device scale factor of 1, screenshot pixels).
    ///
    /// The browser gets a fresh temporary profile and home directory, UTC, `en-US`, no proxy,
    /// no network of its own (no component updates, sync or background requests), and no name
    /// resolution but `localhost`: pages are loaded from IP addresses or `localhost`.
    pub async fn start(width: u32, height: u32) -> Result<Browser> {
        let chromium = install::chromium()?;
        let chromedriver = install::chromedriver()?;
        let home = tempfile::Builder::new()
            .prefix("osiris-browser-")
            .tempdir()
            .map_err(|source| Error::Io {
                action: "writing",
                path: std::env::temp_dir(),
                source,
            })?;
        let home_path = home.path().to_owned();
        let driver = tokio::task::spawn_blocking(move || Driver::start(&chromedriver, &home_path))
            .await
            .map_err(|err| Error::Start {
                message: format!("the task starting chromedriver failed: {err}"),
            })??;
        let profile = home.path().join("profile");
        let session = Session::create(
            driver.port(),
            capabilities(&chromium, &profile, width, height),
        )
        .await?;
        let browser = Browser {
            session,
            driver,
            home,
        };
        browser.resize(width, height).await?;
        Ok(browser)
    }

    /// Makes the viewport exactly `width` × `height`: sets the window, measures the page's
    /// inner size, and corrects the window by the difference (headless Chromium's window
    /// keeps room for a toolbar nobody sees).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        let wanted = (i64::from(width), i64::from(height));
        let mut window = wanted;
        let mut got = (0, 0);
        for _ in 0..3 {
            self.session
                .post(
                    "/window/rect",
                    json!({ "width": window.0, "height": window.1 }),
                )
                .await?;
            got = self.viewport().await?;
            if got == wanted {
                return Ok(());
            }
            window = (
                (window.0 + wanted.0 - got.0).max(1),
                (window.1 + wanted.1 - got.1).max(1),
            );
        }
        Err(Error::Viewport {
            wanted: (width, height),
            got: (
                u32::try_from(got.0).unwrap_or_default(),
                u32::try_from(got.1).unwrap_or_default(),
            ),
        })
    }

    /// Loads `url` and waits for the page to load. A dialog the page opens while loading is
    /// left open for [`Browser::alerts_seen`].
    pub async fn goto(&self, url: &str) -> Result<()> {
        match self
            .session
            .post_or_webdriver_error("/url", json!({ "url": url }))
            .await?
        {
            Ok(_) => Ok(()),
            Err((error, _)) if error == "unexpected alert open" => Ok(()),
            Err((error, message)) => Err(Error::WebDriver {
                command: format!("POST /url {url}"),
                url: self.session.url_for_error().await,
                error,
                message,
            }),
        }
    }

    /// The page's URL.
    pub async fn current_url(&self) -> Result<String> {
        let value = self.session.get("/url").await?;
        as_string("GET /url", value)
    }

    /// The first element matching a CSS selector; [`Error::NotFound`] names the selector and
    /// the page when there is none.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let command = "POST /element";
        match self
            .session
            .post_or_webdriver_error("/element", locator(css))
            .await?
        {
            Ok(value) => Ok(Element {
                session: self.session.clone(),
                id: Session::element_id(command, &value)?,
                selector: css.to_owned(),
            }),
            Err((error, _)) if error == "no such element" => Err(Error::NotFound {
                selector: css.to_owned(),
                url: self.session.url_for_error().await,
            }),
            Err((error, message)) => Err(Error::WebDriver {
                command: format!("{command} `{css}`"),
                url: self.session.url_for_error().await,
                error,
                message,
            }),
        }
    }

    /// Every element matching a CSS selector, in document order (none is not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let command = "POST /elements";
        let value = self.session.post("/elements", locator(css)).await?;
        let Value::Array(references) = value else {
            return Err(Error::Protocol {
                command: command.to_owned(),
                answer: value.to_string(),
            });
        };
        references
            .iter()
            .map(|reference| {
                Ok(Element {
                    session: self.session.clone(),
                    id: Session::element_id(command, reference)?,
                    selector: css.to_owned(),
                })
            })
            .collect()
    }

    /// The first element matching `css` once one is in the document, looking every 50 ms for
    /// at most `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find_all(css).await?.into_iter().next() {
                return Ok(element);
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    what: format!("an element matching `{css}`"),
                    url: self.session.url_for_error().await,
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The first element matching `css` whose rendered text (`innerText`) contains `text`,
    /// looking every 50 ms for at most `timeout`. On a timeout the error lists the texts of the
    /// elements that did match `css`.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> Result<Element> {
        const FIND: &str = "return Array.from(document.querySelectorAll(arguments[0])).find(\
                            (element) => element.innerText.includes(arguments[1])) ?? null;";
        const TEXTS: &str = "return Array.from(document.querySelectorAll(arguments[0]), \
                             (element) => element.innerText).slice(0, 10);";
        let started = Instant::now();
        loop {
            let found = self.execute(FIND, vec![json!(css), json!(text)]).await?;
            if !found.is_null() {
                return Ok(Element {
                    session: self.session.clone(),
                    id: Session::element_id("POST /execute/sync", &found)?,
                    selector: css.to_owned(),
                });
            }
            if started.elapsed() >= timeout {
                let seen = self.execute(TEXTS, vec![json!(css)]).await?;
                return Err(Error::Timeout {
                    what: format!(
                        "an element matching `{css}` whose text contains {text:?} (texts of the first matches: {seen})"
                    ),
                    url: self.session.url_for_error().await,
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Runs `js` as the body of a function in the page (`arguments[0]`… are `args`) and returns
    /// what it returns; a returned promise is awaited. Element references come back as
    /// WebDriver element objects.
    pub async fn execute(&self, js: &str, args: Vec<Value>) -> Result<Value> {
        self.session
            .post("/execute/sync", json!({ "script": js, "args": args }))
            .await
    }

    /// A PNG of the viewport. Before taking it, every element with a `data-volatile` attribute
    /// (and everything inside it) is hidden with `visibility: hidden`, so it keeps its space
    /// but not its run-to-run text; the text caret is made transparent, web fonts are awaited
    /// and two frames are painted. The page is restored afterwards.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        self.execute(PREPARE_SCREENSHOT, Vec::new()).await?;
        let taken = self.session.get("/screenshot").await;
        let restored = self.execute(RESTORE_AFTER_SCREENSHOT, Vec::new()).await;
        let encoded = as_string("GET /screenshot", taken?)?;
        restored?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|err| Error::Protocol {
                command: "GET /screenshot".to_owned(),
                answer: format!("not base64: {err}"),
            })
    }

    /// The page's current DOM serialised as HTML.
    pub async fn page_source(&self) -> Result<String> {
        let value = self.session.get("/source").await?;
        as_string("GET /source", value)
    }

    /// Runs axe-core (found as [`crate::require_browser`] describes) over the whole document and
    /// returns its violations. axe is injected through WebDriver, so a page's Content Security
    /// Policy does not stop it.
    pub async fn axe(&self) -> Result<Vec<Violation>> {
        let loaded = self.execute(axe::IS_LOADED, Vec::new()).await?;
        if loaded != Value::Bool(true) {
            let path = install::axe_js()?;
            let source = tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| Error::Io {
                    action: "reading",
                    path: path.clone(),
                    source,
                })?;
            let loaded = self
                .execute(&format!("{source}\n;{}", axe::IS_LOADED), Vec::new())
                .await?;
            if loaded != Value::Bool(true) {
                return Err(Error::Script {
                    url: self.session.url_for_error().await,
                    message: format!("{} did not define window.axe", path.display()),
                });
            }
        }
        let result = self.execute(axe::RUN, Vec::new()).await?;
        match axe::violations(&result) {
            Ok(violations) => Ok(violations),
            Err(message) => Err(Error::Script {
                url: self.session.url_for_error().await,
                message,
            }),
        }
    }

    /// When the page first painted content, in milliseconds since navigation started: the
    /// `first-contentful-paint` entry, else `first-paint`, else `None`.
    pub async fn first_paint_ms(&self) -> Result<Option<f64>> {
        const PAINT: &str = "const entries = performance.getEntriesByType('paint');\
            const entry = entries.find((e) => e.name === 'first-contentful-paint')\
                ?? entries.find((e) => e.name === 'first-paint');\
            return entry ? entry.startTime : null;";
        Ok(self.execute(PAINT, Vec::new()).await?.as_f64())
    }

    /// Whether a JavaScript dialog (`alert`, `confirm`, `prompt`) is open; an open one is
    /// dismissed, so the session can go on (a page that opens several shows the next).
    pub async fn alerts_seen(&self) -> Result<bool> {
        match self.session.get_or_webdriver_error("/alert/text").await? {
            Ok(_) => {
                self.session.post("/alert/dismiss", json!({})).await?;
                Ok(true)
            }
            Err((error, _)) if error == "no such alert" => Ok(false),
            Err((error, message)) => Err(Error::WebDriver {
                command: "GET /alert/text".to_owned(),
                url: self.session.url_for_error().await,
                error,
                message,
            }),
        }
    }

    /// The browser log's `SEVERE` entries since the last call: console errors, failed loads,
    /// Content Security Policy violations. (ChromeDriver's `goog:loggingPrefs` log, read
    /// through its `/se/log` command.)
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        let command = "POST /se/log";
        let value = self
            .session
            .post("/se/log", json!({ "type": "browser" }))
            .await?;
        let Value::Array(entries) = value else {
            return Err(Error::Protocol {
                command: command.to_owned(),
                answer: value.to_string(),
            });
        };
        Ok(entries
            .iter()
            .filter(|entry| entry.get("level").and_then(Value::as_str) == Some("SEVERE"))
            .filter_map(|entry| entry.get("message").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// The temporary directory that is the browser's home: its profile, ChromeDriver's log
    /// (`chromedriver.log`); removed on drop.
    pub fn home_dir(&self) -> &Path {
        self.home.path()
    }

    /// ChromeDriver's process id, which is also the process group of every browser process.
    pub fn chromedriver_pid(&self) -> u32 {
        self.driver.pid()
    }

    /// The page's inner (viewport) size.
    async fn viewport(&self) -> Result<(i64, i64)> {
        let value = self
            .execute(
                "return [window.innerWidth, window.innerHeight];",
                Vec::new(),
            )
            .await?;
        match (
            value.get(0).and_then(Value::as_i64),
            value.get(1).and_then(Value::as_i64),
        ) {
            (Some(width), Some(height)) => Ok((width, height)),
            _ => Err(Error::Protocol {
                command: "POST /execute/sync (viewport size)".to_owned(),
                answer: value.to_string(),
            }),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask ChromeDriver to close the browser cleanly; `driver`'s own drop then kills the
        // process group whatever happened, and `home` goes last.
        webdriver::delete_session_blocking(self.driver.port(), self.session.id());
    }
}

impl Element {
    /// Clicks the element (scrolled into view first, as WebDriver does).
    pub async fn click(&self) -> Result<()> {
        self.post("click", json!({})).await.map(drop)
    }

    /// Types `text` into the element.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.post("value", json!({ "text": text })).await.map(drop)
    }

    /// Empties an input or text area.
    pub async fn clear(&self) -> Result<()> {
        self.post("clear", json!({})).await.map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self) -> Result<String> {
        let value = self.get("text").await?;
        as_string(&format!("text of `{}`", self.selector), value)
    }

    /// An attribute's value (or the property of that name, as WebDriver defines it); `None`
    /// when there is neither.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let value = self.get(&format!("attribute/{name}")).await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Whether the element is displayed, as WebDriver judges it.
    pub async fn is_displayed(&self) -> Result<bool> {
        let value = self.get("displayed").await?;
        value.as_bool().ok_or_else(|| Error::Protocol {
            command: format!("displayed of `{}`", self.selector),
            answer: value.to_string(),
        })
    }

    /// The CSS selector that found the element.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    async fn get(&self, what: &str) -> Result<Value> {
        let res = self
            .session
            .get(&format!("/element/{}/{what}", self.id))
            .await;
        self.name_selector(res)
    }

    async fn post(&self, what: &str, body: Value) -> Result<Value> {
        let res = self
            .session
            .post(&format!("/element/{}/{what}", self.id), body)
            .await;
        self.name_selector(res)
    }

    /// Adds the selector to a WebDriver error, so the test says which element failed.
    fn name_selector(&self, res: Result<Value>) -> Result<Value> {
        res.map_err(|err| match err {
            Error::WebDriver {
                command,
                url,
                error,
                message,
            } => Error::WebDriver {
                command: format!("{command} (element `{}`)", self.selector),
                url,
                error,
                message,
            },
            other => other,
        })
    }
}

/// Hides volatile elements and the caret with a constructed style sheet (allowed under any
/// Content Security Policy), then waits for fonts and two animation frames.
const PREPARE_SCREENSHOT: &str = "const sheet = new CSSStyleSheet();\
    sheet.replaceSync('[data-volatile], [data-volatile] * { visibility: hidden !important; }\
        * { caret-color: transparent !important; }');\
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];\
    window.__osirisScreenshotSheet = sheet;\
    return document.fonts.ready.then(() => new Promise((done) =>\
        requestAnimationFrame(() => requestAnimationFrame(() => done(true)))));";

const RESTORE_AFTER_SCREENSHOT: &str = "const sheet = window.__osirisScreenshotSheet;\
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);\
    delete window.__osirisScreenshotSheet;\
    return true;";

/// The W3C capabilities of a session: headless Chromium with flags for a quiet, reproducible
/// browser, an initial window of the requested size, and the browser log at `SEVERE`.
fn capabilities(chromium: &Path, profile: &Path, width: u32, height: u32) -> Value {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        "--mute-audio",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--force-color-profile=srgb",
        "--font-render-hinting=none",
        "--lang=en-US",
        // Only loopback resolves (rules apply to IP literals too): a page cannot reach further.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={width},{height}"),
    ])
    .collect::<Vec<_>>();
    json!({
        "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            // Dialogs stay open until `alerts_seen` looks at them.
            "unhandledPromptBehavior": "ignore",
            // Test servers present certificates of a test CA the browser does not know; only
            // loopback resolves, so nothing else is reached this way.
            "acceptInsecureCerts": true,
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 60_000 },
            "goog:loggingPrefs": { "browser": "SEVERE" },
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": args,
                "prefs": { "intl.accept_languages": "en-US" },
            },
        }
    })
}

fn locator(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn as_string(command: &str, value: Value) -> Result<String> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(Error::Protocol {
            command: command.to_owned(),
            answer: other.to_string(),
        }),
    }
}
