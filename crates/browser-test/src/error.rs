//! The harness's one error type: what went wrong, with the selector, page URL or file that a
//! failing test needs to name.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program or file the browser tests need is not installed.
    #[error("{what} is not installed (looked for {looked}); run scripts/setup")]
    NotInstalled {
        /// What is missing (`chromium`, `chromedriver`, `axe-core`).
        what: &'static str,
        /// Where the harness looked.
        looked: String,
    },
    /// chromedriver could not be started, or did not say which port it listens on.
    #[error("starting chromedriver: {message}")]
    Start {
        /// What happened.
        message: String,
    },
    /// The HTTP exchange with chromedriver failed (it died, or did not answer in time).
    #[error("WebDriver {command}: {source}")]
    Http {
        /// The command, as `METHOD /path`.
        command: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// chromedriver answered a command with a WebDriver error.
    #[error("WebDriver {command} on {url}: {error}: {message}")]
    WebDriver {
        /// The command, as `METHOD /path`.
        command: String,
        /// The page the browser was on (empty when it could not be read).
        url: String,
        /// The W3C error code (`no such element`, `javascript error`, …).
        error: String,
        /// chromedriver's message, without its stack trace.
        message: String,
    },
    /// An answer that does not have the shape the W3C specification gives it.
    #[error("WebDriver {command}: unexpected answer: {answer}")]
    Protocol {
        /// The command, as `METHOD /path`.
        command: String,
        /// The answer, shortened.
        answer: String,
    },
    /// No element matches a CSS selector.
    #[error("no element matches `{selector}` on {url}")]
    NotFound {
        /// The CSS selector.
        selector: String,
        /// The page the browser was on.
        url: String,
    },
    /// A wait ran out of time.
    #[error("waited {waited:?} for {what} on {url}")]
    Timeout {
        /// What was awaited (the selector, and the text when there was one).
        what: String,
        /// The page the browser was on.
        url: String,
        /// How long the harness waited.
        waited: Duration,
    },
    /// The viewport did not take the requested size.
    #[error("the viewport is {got:?} pixels, not the requested {wanted:?}")]
    Viewport {
        /// The requested width and height.
        wanted: (u32, u32),
        /// The width and height the page reports.
        got: (u32, u32),
    },
    /// A script run in the page (axe, the screenshot preparation) reported a failure.
    #[error("script in {url}: {message}")]
    Script {
        /// The page the browser was on.
        url: String,
        /// What the script reported.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// `reading` or `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A PNG could not be decoded or encoded.
    #[error("PNG {what}: {message}")]
    Png {
        /// Which image (`screenshot`, or a file's path).
        what: String,
        /// The decoder's or encoder's message.
        message: String,
    },
    /// A screenshot has no reference yet and `UPDATE_SCREENSHOTS=1` is not set.
    #[error(
        "no reference screenshot {}; the actual one is {}; run with UPDATE_SCREENSHOTS=1 to write it",
        reference.display(),
        actual.display()
    )]
    MissingReference {
        /// The reference that does not exist.
        reference: PathBuf,
        /// Where the screenshot was written instead.
        actual: PathBuf,
    },
    /// A screenshot's dimensions differ from its reference's.
    #[error(
        "screenshot is {actual_size:?} pixels but the reference {} is {reference_size:?}; the actual one is {}",
        reference.display(),
        actual.display()
    )]
    SizeDiffers {
        /// The reference.
        reference: PathBuf,
        /// The reference's width and height.
        reference_size: (u32, u32),
        /// The screenshot's width and height.
        actual_size: (u32, u32),
        /// Where the screenshot was written.
        actual: PathBuf,
    },
    /// More pixels differ from the reference than the tolerance allows.
    #[error(
        "{:.4}% of pixels differ from {} (tolerance {:.4}%); actual {}, differences in red {}; run with UPDATE_SCREENSHOTS=1 if the change is intended",
        differing_share * 100.0,
        reference.display(),
        tolerance * 100.0,
        actual.display(),
        diff.display()
    )]
    ScreenshotDiffers {
        /// The reference.
        reference: PathBuf,
        /// The share of pixels that differ, from 0 to 1.
        differing_share: f64,
        /// The share allowed.
        tolerance: f64,
        /// Where the screenshot was written.
        actual: PathBuf,
        /// Where the difference image was written.
        diff: PathBuf,
    },
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
