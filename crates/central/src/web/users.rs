//! The users page (partner administrators): who has access, with which role, second factor and
//! expiry, and the form that adds a user.

use axum::extract::{Form, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageError, St, Viewer, ago, check_csrf, csrf_field, layout};
use crate::scope::{self, NewUser, Role};

/// The roles offered, with what each may do.
const ROLES: [(&str, &str, &str); 4] = [
    (
        "partner_admin",
        "Partner administrator",
        "everything, including users and settings",
    ),
    (
        "partner_technician",
        "Partner technician",
        "every site, not users",
    ),
    (
        "practice_viewer",
        "Practice viewer",
        "one practice, read-only",
    ),
    ("auditor", "Auditor", "evidence only, for a limited time"),
];

fn role_words(role: Role) -> &'static str {
    match role {
        Role::PartnerAdmin => ROLES[0].1,
        Role::PartnerTechnician => ROLES[1].1,
        Role::PracticeViewer => ROLES[2].1,
        Role::Auditor => ROLES[3].1,
    }
}

/// `GET /users`'s query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    #[serde(default)]
    added: Option<String>,
}

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let users = scope::users(&state.pool, &session.scope).await?;
    let practices = scope::practices(&state.pool, &session.scope).await?;
    let now = super::now();
    let content = html! {
        h1 { "Users and roles" }
        @if let Some(added) = &params.added { p .notice role="status" { "Added " (added) ". They set up their authenticator at first login." } }
        div .scroll { table .users {
            thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Authenticator" } th scope="col" { "Access" } } }
            tbody {
                @for u in &users {
                    tr {
                        th scope="row" data-label="User" { (u.email) }
                        td data-label="Role" { (role_words(u.role)) @if let Some(p) = &u.practice { span .muted { " — " (p) } } }
                        td data-label="Authenticator" { @if u.mfa { "set up" } @else { span .warn { "not set up" } } }
                        td data-label="Access" {
                            @if u.expired { span .bad { "expired" } }
                            @else if let Some(until) = &u.expires_at { "ends " (ago(Some(until), now)) }
                            @else { "no end" }
                            @if let Some(locked) = &u.locked_until { br; span .bad { "locked until " (locked) } }
                            @if !u.expired && u.id != session.scope.user_id {
                                form method="post" action=(format!("/users/{}/end", u.id)) .inline {
                                    (csrf_field(&session))
                                    button type="submit" aria-label=(format!("End the access of {}", u.email)) { "End access" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        section aria-labelledby="add-h" {
            h2 #add-h { "Add a user" }
            form method="post" action="/users" .stack {
                (csrf_field(&session))
                label for="email" { "E-mail address" }
                input #email type="email" name="email" required autocomplete="off";
                fieldset {
                    legend { "Role" }
                    @for (i, (key, words, what)) in ROLES.iter().enumerate() {
                        label .choice { input type="radio" name="role" value=(key) required checked[i == 1]; " " (words) span .muted { " — " (what) } }
                    }
                }
                label for="practice" { "Practice (practice viewers)" }
                select #practice name="practice" {
                    option value="" { "—" }
                    @for (id, name) in &practices { option value=(id) { (name) } }
                }
                label for="days" { "Days of access (auditors, 1–365)" }
                input #days type="number" name="days" min="1" max="365" .short;
                label for="new-password" { "First password (at least " (scope::MIN_PASSWORD) " characters; tell them in person or by phone)" }
                input #new-password type="password" name="password" required minlength=(scope::MIN_PASSWORD) autocomplete="new-password";
                button type="submit" { "Add user" }
            }
        }
    };
    Ok(layout("Users", Some(&session), "/users", content))
}

/// `POST /users`.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    email: String,
    role: String,
    #[serde(default)]
    practice: Option<String>,
    #[serde(default)]
    days: Option<String>,
    password: String,
}

pub(super) async fn create(
    State(state): St,
    Viewer(session): Viewer,
    Form(form): Form<AddForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let invalid = |words: &str| PageError::from(scope::ScopeError::Invalid(words.to_owned()));
    let role = Role::parse(&form.role).ok_or_else(|| invalid("choose one of the four roles"))?;
    let number = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::parse::<i64>)
            .transpose()
    };
    let practice_id =
        number(&form.practice).map_err(|_| invalid("choose a practice from the list"))?;
    let days = number(&form.days)
        .map_err(|_| invalid("days of access must be a whole number from 1 to 365"))?
        .map(|d| u32::try_from(d).unwrap_or(0));
    let email = form.email.trim().to_owned();
    scope::create_user(
        &state.pool,
        &session.scope,
        NewUser {
            email: email.clone(),
            role,
            practice_id,
            expires_days: days,
            password: zeroize::Zeroizing::new(form.password),
        },
    )
    .await?;
    Ok(super::see_other(&format!(
        "/users?added={}",
        super::encode_component(&email)
    )))
}

/// `POST /users/{user}/end`.
#[derive(Debug, Deserialize)]
pub(crate) struct EndForm {
    csrf: String,
}

pub(super) async fn end(
    State(state): St,
    Viewer(session): Viewer,
    axum::extract::Path(user): axum::extract::Path<i64>,
    Form(form): Form<EndForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    scope::end_access(&state.pool, &session.scope, user).await?;
    Ok(super::see_other("/users"))
}
