//! A real-browser test harness: Debian's Chromium, headless, driven through ChromeDriver by a
//! small W3C WebDriver client of our own, with axe-core accessibility checks and screenshot
//! comparison against committed references. Dev-only: tests depend on it, shipped binaries never.
//!
//! ```no_run
//! # async fn example() -> browser_test::Result<()> {
//! use std::time::Duration;
//! if !browser_test::require_browser("login_page") {
//!     return Ok(());
//! }
//! let browser = browser_test::Browser::start(1280, 800).await?;
//! browser.goto("http://127.0.0.1:8080/login").await?;
//! browser.find("input[name=user]").await?.send_keys("alice").await?;
//! browser.find("button[type=submit]").await?.click().await?;
//! browser.wait_for_text("h1", "Sites", Duration::from_secs(5)).await?;
//! let violations = browser.axe().await?;
//! assert!(browser_test::serious(&violations).is_empty());
//! let png = browser.screenshot().await?;
//! browser_test::compare_screenshot(&png, "tests/screenshots/sites.png".as_ref(), 0.001)?;
//! # Ok(())
//! # }
//! ```
//!
//! What it needs is installed by `scripts/setup`: the Debian packages `chromium`,
//! `chromium-driver` and `fonts-dejavu-core` (the only fonts, so text renders the same on every
//! machine set up that way), and axe-core, pinned by `axe/package-lock.json` and installed with
//! `npm ci` by `scripts/setup-axe`. [`require_browser`] is the gate a test calls first.
//! `OSIRIS_CHROMIUM`, `OSIRIS_CHROMEDRIVER` and `OSIRIS_AXE_JS` (set by `scripts/test`) say
//! where they are when not in their usual places.
//!
//! Why not fantoccini or thirtyfour: measured cold debug builds in a scratch project on the
//! project's kind of machine (2 cores, Rust 1.98), fantoccini 0.22.1 compiles 116 crates in
//! 26.8 s with its default OpenSSL TLS, or 120 crates in 40.1 s with `rustls-tls` (which pulls
//! aws-lc-rs and its C build), and adds 15–16 packages to our `Cargo.lock` (Mozilla's
//! `webdriver` types, `cookie`, ICU segmentation, a TLS stack). The commands a test needs are a
//! dozen JSON requests to a loopback server, so `webdriver.rs` speaks them over `reqwest` and
//! `serde_json`, which the workspace already builds: no new crate for the WebDriver part.
//! Screenshots are decoded and encoded with `png` 0.18 (2.4 s cold, 10 crates).

mod axe;
mod browser;
mod driver;
mod error;
mod install;
mod screenshot;
mod webdriver;

pub use axe::{Violation, serious};
pub use browser::{Browser, Element};
pub use error::{Error, Result};
pub use install::require_browser;
pub use screenshot::{
    CHANNEL_THRESHOLD, Comparison, compare_screenshot, failure_dir, png_dimensions,
};
