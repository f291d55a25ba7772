//! The partner dashboard: server-rendered pages (maud templates compiled into the binary) over
//! the same [`Scope`](crate::scope::Scope)d queries as the JSON API, with the page session,
//! the form CSRF check, the security headers (a Content-Security-Policy without
//! `unsafe-inline`), the static assets and the layout. Pages work without JavaScript; the one
//! script refreshes the parts of a page that change (`data-live`) by polling.

mod account;
pub mod chart;
mod claim;
mod device;
mod fleet;
mod incident;
mod overview;
mod site;
mod users;
pub mod verdict;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use sqlx::PgPool;

use crate::api::COOKIE;
use crate::auth::{self, AuthError, Session};
use crate::link::LinkKeys;
use crate::scope::{Role, ScopeError};

/// What the pages need.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The database.
    pub pool: PgPool,
    /// The link CA (to claim appliances), when configured.
    pub link: Option<Arc<LinkKeys>>,
    /// How often live parts of a page refresh, in milliseconds.
    pub live_interval_ms: u32,
}

/// How often the live parts of a page refresh.
pub const LIVE_INTERVAL_MS: u32 = 5000;

/// The page routes, for documentation and the test that walks them as another tenant. `{site}`,
/// `{appliance}` are ids; `{device}` is a device name (percent-encoded).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/claim"),
    ("POST", "/claim"),
    ("GET", "/sites/{site}"),
    ("GET", "/devices/{appliance}/{device}"),
    ("GET", "/incidents/{appliance}/{incident}/{opened}"),
    (
        "POST",
        "/incidents/{appliance}/{incident}/{opened}/acknowledge",
    ),
    ("GET", "/fleet"),
    ("POST", "/fleet/releases/{release}/rollout"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{user}/end"),
    ("GET", "/evidence"),
    ("POST", "/evidence/kits"),
    ("GET", "/account"),
    ("POST", "/account/password"),
];

/// The Content-Security-Policy of every page: only this server's own script and style, no
/// inline code, no framing, forms only to this server.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

/// The page routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", axum::routing::post(account::logout))
        .route("/account", get(account::page))
        .route("/account/password", axum::routing::post(account::password))
        .route(
            "/account/totp",
            get(account::totp_page).post(account::totp_confirm),
        )
        .route("/claim", get(claim::page).post(claim::claim))
        .route("/sites/{site}", get(site::page))
        .route("/devices/{appliance}/{device}", get(device::page))
        .route(
            "/incidents/{appliance}/{incident}/{opened}",
            get(incident::page),
        )
        .route(
            "/incidents/{appliance}/{incident}/{opened}/{action}",
            axum::routing::post(incident::act),
        )
        .route("/fleet", get(fleet::page))
        .route(
            "/fleet/releases/{release}/rollout",
            axum::routing::post(fleet::rollout),
        )
        .route("/users", get(users::page).post(users::create))
        .route("/users/{user}/end", axum::routing::post(users::end))
        .route("/evidence", get(site::evidence_page))
        .route("/evidence/kits", axum::routing::post(site::request_kit))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every page answer; POSTs whose `Origin` is another site are refused
/// before any handler runs (the session cookie is SameSite=Strict as well, and forms carry the
/// session's CSRF token).
async fn headers(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form was sent from another site and was refused.",
        );
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A POST without `Origin` (old clients) passes; with one, its host must be this request's.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// A logged-in user with the second factor done. Without a session the page answers with a
/// redirect to the login page (and back afterwards); with the second factor pending, to its
/// enrolment.
#[derive(Debug, Clone)]
pub struct Viewer(pub Session);

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Log in first (then come back to this path).
    Login(String),
    /// Finish the second factor first.
    Totp,
    /// An error page with this status and words.
    Status(StatusCode, String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(next) => {
                Redirect::to(&format!("/login?next={}", encode_component(&next))).into_response()
            }
            PageError::Totp => Redirect::to("/account/totp").into_response(),
            PageError::Status(status, words) => error_page(status, &words),
        }
    }
}

impl From<ScopeError> for PageError {
    fn from(err: ScopeError) -> PageError {
        match err {
            ScopeError::NotFound => PageError::Status(
                StatusCode::NOT_FOUND,
                "There is nothing here, or it is not yours to see.".to_owned(),
            ),
            ScopeError::Forbidden => PageError::Status(
                StatusCode::FORBIDDEN,
                "Your role does not allow this page or action.".to_owned(),
            ),
            ScopeError::Invalid(words) => PageError::Status(StatusCode::BAD_REQUEST, words),
            ScopeError::Conflict(words) => PageError::Status(StatusCode::CONFLICT, words),
            ScopeError::Db(error) => {
                tracing::warn!(%error, "page: database");
                PageError::Status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is unavailable; try again shortly.".to_owned(),
                )
            }
        }
    }
}

impl From<AuthError> for PageError {
    fn from(err: AuthError) -> PageError {
        match err {
            AuthError::Db(error) => ScopeError::Db(error).into(),
            AuthError::NoSession => PageError::Login("/".to_owned()),
            AuthError::MfaPending => PageError::Totp,
            other => PageError::Status(StatusCode::FORBIDDEN, other.to_string()),
        }
    }
}

fn error_page(status: StatusCode, words: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (status.canonical_reason().unwrap_or("Error")) " — Central Command" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                main #main .narrow {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p .error role="alert" { (words) }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        }
    };
    (status, html_response(body)).into_response()
}

fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

async fn any_session(parts: &Parts, pool: &PgPool) -> Result<Session, PageError> {
    let next = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let token = cookie_token(&parts.headers).ok_or_else(|| PageError::Login(next.clone()))?;
    auth::session(pool, &token)
        .await?
        .ok_or(PageError::Login(next))
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let session = any_session(parts, &state.pool).await?;
        if !session.mfa_done {
            return Err(PageError::Totp);
        }
        Ok(Viewer(session))
    }
}

/// A session whose second factor may still be pending (the enrolment page only).
#[derive(Debug, Clone)]
pub struct AnyViewer(pub Session);

impl FromRequestParts<WebState> for AnyViewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        Ok(AnyViewer(any_session(parts, &state.pool).await?))
    }
}

/// Checks a form's `csrf` field against the session's token (constant time).
pub(crate) fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    let expected = session.csrf_token.as_bytes();
    let ok = sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        Ok(())
    } else {
        Err(PageError::Status(
            StatusCode::FORBIDDEN,
            "This form has expired (it belongs to another session). Reload the page and try again."
                .to_owned(),
        ))
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// Percent-encodes one path segment or query value.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where a menu entry leads and whether the role sees it.
struct MenuEntry {
    path: &'static str,
    label: &'static str,
    shown: fn(Role) -> bool,
}

const MENU: &[MenuEntry] = &[
    MenuEntry {
        path: "/",
        label: "Overview",
        shown: |role| role != Role::Auditor,
    },
    MenuEntry {
        path: "/fleet",
        label: "Fleet",
        shown: |role| matches!(role, Role::PartnerAdmin | Role::PartnerTechnician),
    },
    MenuEntry {
        path: "/evidence",
        label: "Evidence",
        shown: |role| role != Role::PracticeViewer,
    },
    MenuEntry {
        path: "/users",
        label: "Users",
        shown: |role| role == Role::PartnerAdmin,
    },
    MenuEntry {
        path: "/account",
        label: "Account",
        shown: |_| true,
    },
];

/// The page frame: skip link, menu for the role, the content, the script.
pub(crate) fn layout(
    title: &str,
    session: Option<&Session>,
    current: &str,
    content: Markup,
) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Central Command" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a .skip href="#main" { "Skip to content" }
                header .top {
                    span .brand { "OsirisCare " span .muted { "Central Command" } }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                @for entry in MENU.iter().filter(|e| (e.shown)(session.scope.role)) {
                                    li {
                                        @if entry.path == current {
                                            a href=(entry.path) aria-current="page" { (entry.label) }
                                        } @else {
                                            a href=(entry.path) { (entry.label) }
                                        }
                                    }
                                }
                                li {
                                    form method="post" action="/logout" .inline {
                                        (csrf_field(session))
                                        button type="submit" .link { "Log out" }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main { (content) }
            }
        }
    };
    html_response(body)
}

/// A time as text: `3 min ago` (or the date when older than a day), with the exact UTC time in
/// `datetime` and `title`. Marked volatile: screenshots hide it.
pub(crate) fn ago(rfc3339: Option<&str>, now: i64) -> Markup {
    let Some(text) = rfc3339 else {
        return html! { span .muted { "never" } };
    };
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok();
    let words = parsed.map_or_else(|| text.to_owned(), |t| relative(t.unix_timestamp(), now));
    html! { time datetime=(text) title=(text) data-volatile { (words) } }
}

/// `just now`, `5 min ago`, `3 h ago`, `2 d ago` (or `in …` for the future).
pub fn relative(at: i64, now: i64) -> String {
    let delta = now - at;
    let (amount, future) = (delta.unsigned_abs(), delta < 0);
    let words = match amount {
        0..60 => return "just now".to_owned(),
        60..3600 => format!("{} min", amount / 60),
        3600..86_400 => format!("{} h", amount / 3600),
        _ => format!("{} d", amount / 86_400),
    };
    if future {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

/// A permille as `91.5 %` (a no-break space before the sign), or `—` when unknown.
pub fn percent(permille: Option<i64>) -> String {
    match permille {
        Some(p) => format!("{}.{}\u{a0}%", p / 10, p % 10),
        None => "—".to_owned(),
    }
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A section that refreshes itself: the page's own URL with `?part=NAME` answers only it.
pub(crate) fn live(id: &str, url: &str, interval_ms: u32, content: Markup) -> Markup {
    html! {
        div id=(id) data-live=(url) data-live-interval=(interval_ms) aria-live="polite" { (content) }
    }
}

/// An HTML fragment answer (for `?part=…`).
pub(crate) fn fragment(markup: Markup) -> Response {
    html_response(markup)
}

/// Rows per page of a long list.
pub const PER_PAGE: usize = 50;

/// Page `page` (from 1) of `rows`.
pub(crate) fn page_of<T>(rows: &[T], page: usize) -> &[T] {
    let start = (page.max(1) - 1).saturating_mul(PER_PAGE).min(rows.len());
    &rows[start..(start + PER_PAGE).min(rows.len())]
}

/// Links to the pages of a list of `total` rows (nothing when one page holds them).
pub(crate) fn pager(total: usize, page: usize, url: impl Fn(usize) -> String) -> Markup {
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    html! {
        @if pages > 1 {
            nav .pager aria-label="Pages" {
                @if page > 1 { a href=(url(page - 1)) rel="prev" { "← Previous" } " " }
                span { "Page " (page) " of " (pages) " (" (total) " in all)" }
                @if page < pages { " " a href=(url(page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

/// Redirect after a successful form (POST-redirect-GET).
pub(crate) fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The incoming `State` type for handlers.
pub(crate) type St = State<WebState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let now = 1_000_000;
        assert_eq!(relative(now - 5, now), "just now");
        assert_eq!(relative(now - 600, now), "10 min ago");
        assert_eq!(relative(now - 7200, now), "2 h ago");
        assert_eq!(relative(now - 3 * 86_400, now), "3 d ago");
        assert_eq!(relative(now + 120, now), "in 2 min");
    }

    #[test]
    fn percent_shows_one_decimal_or_a_dash() {
        assert_eq!(percent(Some(915)), "91.5\u{a0}%");
        assert_eq!(percent(Some(1000)), "100.0\u{a0}%");
        assert_eq!(percent(None), "—");
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("ws-01.clinic"), "ws-01.clinic");
        assert_eq!(encode_component("a b/<x>"), "a%20b%2F%3Cx%3E");
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_static("central.example:8443"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://central.example:8443"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
