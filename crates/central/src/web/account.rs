//! Logging in (password, then the authenticator code), logging out, setting up the
//! authenticator (a QR code drawn on the server) and the account page with the password change.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{AnyViewer, PageError, St, Viewer, check_csrf, csrf_field, layout};
use crate::api::ClientAddr;
use crate::auth::{self, AuthError};

/// `GET /login`'s query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginParams {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path of this server may follow a login (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_form(email: &str, next: &str, error: Option<&str>, code_needed: bool) -> Markup {
    html! {
        div .narrow {
            h1 { "Log in" }
            @if let Some(error) = error { p .error role="alert" #login-error { (error) } }
            form method="post" action="/login" .stack {
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail address" }
                input #email type="email" name="email" value=(email) required autocomplete="username" autofocus[!code_needed];
                label for="password" { "Password" }
                input #password type="password" name="password" required autocomplete="current-password";
                label for="code" { "Authenticator code" span .muted { " (6 digits, once set up)" } }
                input #code type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" autofocus[code_needed];
                button type="submit" { "Log in" }
            }
        }
    }
}

pub(super) async fn login_page(Query(params): Query<LoginParams>) -> Response {
    layout(
        "Log in",
        None,
        "",
        login_form("", &safe_next(params.next.as_deref()), None, false),
    )
}

/// `POST /login`.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

pub(super) async fn login(
    State(state): St,
    axum::Extension(addr): axum::Extension<ClientAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let code = form
        .code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    match auth::login(
        &state.pool,
        &form.email,
        &form.password,
        code,
        &addr.0.to_string(),
    )
    .await
    {
        Ok(logged_in) => {
            let to = if logged_in.session.mfa_done {
                next
            } else {
                "/account/totp".to_owned()
            };
            let mut response = super::see_other(&to);
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&logged_in.token, auth::SESSION_MAX_SECS),
            );
            Ok(response)
        }
        Err(AuthError::Db(error)) => Err(AuthError::Db(error).into()),
        Err(err) => {
            let status = match err {
                AuthError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                AuthError::Locked => StatusCode::LOCKED,
                AuthError::Expired => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let code_needed = matches!(err, AuthError::TotpRequired);
            let page = layout(
                "Log in",
                None,
                "",
                login_form(&form.email, &next, Some(&err.to_string()), code_needed),
            );
            Ok((status, page).into_response())
        }
    }
}

fn session_cookie(token: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}",
        crate::api::COOKIE
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("osiris_session=; Max-Age=0"))
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

pub(super) async fn logout(
    State(state): St,
    AnyViewer(session): AnyViewer,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    auth::logout(&state.pool, &session).await?;
    let mut response = super::see_other("/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

/// `GET /account`'s query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AccountParams {
    #[serde(default)]
    changed: Option<String>,
}

fn role_words(role: crate::scope::Role) -> &'static str {
    match role {
        crate::scope::Role::PartnerAdmin => "Partner administrator",
        crate::scope::Role::PartnerTechnician => "Partner technician",
        crate::scope::Role::PracticeViewer => "Practice viewer",
        crate::scope::Role::Auditor => "Auditor",
    }
}

fn account_content(session: &auth::Session, notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        h1 { "Account" }
        @if let Some(notice) = notice { p .notice role="status" { (notice) } }
        dl .figures {
            div { dt { "E-mail" } dd { (session.email) } }
            div { dt { "Role" } dd { (role_words(session.scope.role)) } }
        }
        section aria-labelledby="password-h" .narrow {
            h2 #password-h { "Change password" }
            @if let Some(error) = error { p .error role="alert" { (error) } }
            form method="post" action="/account/password" .stack {
                (csrf_field(session))
                input type="hidden" name="username" value=(session.email) autocomplete="username";
                label for="current" { "Current password" }
                input #current type="password" name="current" required autocomplete="current-password";
                label for="new" { "New password (at least " (crate::scope::MIN_PASSWORD) " characters)" }
                input #new type="password" name="new" required minlength=(crate::scope::MIN_PASSWORD) autocomplete="new-password";
                label for="again" { "New password again" }
                input #again type="password" name="again" required minlength=(crate::scope::MIN_PASSWORD) autocomplete="new-password";
                button type="submit" { "Change password" }
            }
            p .muted { "Changing it ends your other sessions." }
        }
    }
}

pub(super) async fn page(Viewer(session): Viewer, Query(params): Query<AccountParams>) -> Response {
    let notice = params
        .changed
        .is_some()
        .then_some("Your password was changed.");
    layout(
        "Account",
        Some(&session),
        "/account",
        account_content(&session, notice, None),
    )
}

/// `POST /account/password`.
#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    again: String,
}

pub(super) async fn password(
    State(state): St,
    Viewer(session): Viewer,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let current = zeroize::Zeroizing::new(form.current);
    let new = zeroize::Zeroizing::new(form.new);
    let again = zeroize::Zeroizing::new(form.again);
    let result = if *new != *again {
        Err(crate::scope::ScopeError::Invalid(
            "the two new passwords differ".to_owned(),
        ))
    } else {
        crate::scope::change_password(
            &state.pool,
            &session.scope,
            &current,
            &new,
            &session.token_sha256,
        )
        .await
    };
    match result {
        Ok(()) => Ok(super::see_other("/account?changed=1")),
        Err(crate::scope::ScopeError::Invalid(words)) => Ok((
            StatusCode::BAD_REQUEST,
            layout(
                "Account",
                Some(&session),
                "/account",
                account_content(&session, None, Some(&words)),
            ),
        )
            .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// The QR code of `text` as SVG modules (drawn here; no image request, no script).
fn qr_svg(text: &str) -> Markup {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return html! {};
    };
    let width = code.width();
    let colors = code.to_colors();
    let mut path = String::new();
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            path.push_str(&format!("M{},{}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    let size = width + 8;
    html! {
        svg .qr viewBox=(format!("0 0 {size} {size}")) role="img" aria-label="QR code for your authenticator app" xmlns="http://www.w3.org/2000/svg" {
            rect width=(size) height=(size) fill="#fff" {}
            path d=(path) fill="#000" {}
        }
    }
}

const ISSUER: &str = "OsirisCare Central Command";

/// The base32 key in an `otpauth://` URI, for typing.
fn secret_of(uri: &str) -> String {
    uri.split_once("secret=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

pub(super) async fn totp_page(
    State(state): St,
    AnyViewer(session): AnyViewer,
) -> Result<Response, PageError> {
    if session.mfa_done {
        return Ok(super::see_other("/account"));
    }
    let uri = auth::totp_pending_or_begin(&state.pool, &session, ISSUER).await?;
    let secret = secret_of(&uri);
    Ok(layout(
        "Set up your authenticator",
        Some(&session),
        "",
        totp_content(&session, &uri, &secret, None),
    ))
}

fn totp_content(session: &auth::Session, uri: &str, secret: &str, error: Option<&str>) -> Markup {
    html! {
        div .narrow {
            h1 { "Set up your authenticator" }
            p { "Your role needs a second factor. Scan this code with an authenticator app (or type the key), then enter the 6-digit code it shows." }
            (qr_svg(uri))
            p { "Key: " code #totp-secret { (secret) } }
            @if let Some(error) = error { p .error role="alert" { (error) } }
            form method="post" action="/account/totp" .stack {
                (csrf_field(session))
                label for="code" { "Code from the app" }
                input #code type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required autocomplete="one-time-code";
                button type="submit" { "Confirm" }
            }
        }
    }
}

/// `POST /account/totp`.
#[derive(Debug, Deserialize)]
pub(crate) struct TotpForm {
    csrf: String,
    code: String,
}

pub(super) async fn totp_confirm(
    State(state): St,
    AnyViewer(session): AnyViewer,
    Form(form): Form<TotpForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    match auth::totp_confirm(&state.pool, &session, form.code.trim()).await {
        Ok(()) => Ok(super::see_other("/")),
        Err(AuthError::Invalid) => {
            let uri = auth::totp_pending_or_begin(&state.pool, &session, ISSUER).await?;
            let secret = secret_of(&uri);
            Ok((
                StatusCode::BAD_REQUEST,
                layout("Set up your authenticator", Some(&session), "", totp_content(&session, &uri, &secret, Some("That code did not match. Check the app's clock and enter the code it shows now."))),
            )
                .into_response())
        }
        Err(other) => Err(other.into()),
    }
}
