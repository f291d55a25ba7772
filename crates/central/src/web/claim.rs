//! The claim page the appliance console's QR code opens (`/claim?code=…`): a partner
//! administrator or technician picks the site and binds the waiting appliance to it.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, St, Viewer, check_csrf, csrf_field, layout};
use crate::auth::Session;
use crate::scope::{self, SiteRow};

/// `GET /claim`'s query: the code the console shows.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    #[serde(default)]
    code: Option<String>,
}

fn form(session: &Session, sites: &[SiteRow], code: &str, error: Option<&str>) -> Markup {
    html! {
        div .narrow {
            h1 { "Claim an appliance" }
            p { "The code is on the appliance's console. Claiming it binds the appliance to the site you choose; it then reports here." }
            @if let Some(error) = error { p .error role="alert" { (error) } }
            form method="post" action="/claim" .stack {
                (csrf_field(session))
                label for="code" { "Claim code" }
                input #code name="code" value=(code) required autocomplete="off" spellcheck="false";
                label for="site" { "Site" }
                select #site name="site" required {
                    @for site in sites {
                        option value=(site.id) { (site.name) " — " (site.practice) }
                    }
                }
                button type="submit" { "Claim" }
            }
        }
    }
}

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let sites = scope::sites(&state.pool, &session.scope).await?;
    let code = params.code.unwrap_or_default();
    Ok(layout(
        "Claim an appliance",
        Some(&session),
        "",
        form(&session, &sites, &code, None),
    ))
}

/// `POST /claim`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClaimForm {
    csrf: String,
    code: String,
    site: i64,
}

pub(super) async fn claim(
    State(state): St,
    Viewer(session): Viewer,
    Form(request): Form<ClaimForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &request.csrf)?;
    scope::check_claim(&state.pool, &session.scope, request.site).await?;
    let Some(keys) = state.link.as_ref() else {
        return Err(PageError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "This Central Command has no link CA configured ([link] in its configuration)."
                .to_owned(),
        ));
    };
    let claimed = crate::claim::claim_appliance(
        &state.pool,
        &keys.ca,
        session.scope.partner_id,
        request.site,
        &request.code,
        &format!("user:{}", session.scope.user_id),
        Some(session.scope.user_id),
    )
    .await;
    match claimed {
        Ok(_) => Ok(super::see_other(&format!("/sites/{}", request.site))),
        Err(crate::claim::ClaimError::Db(error)) => Err(scope::ScopeError::Db(error).into()),
        Err(err) => {
            let sites = scope::sites(&state.pool, &session.scope).await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                layout(
                    "Claim an appliance",
                    Some(&session),
                    "",
                    form(&session, &sites, &request.code, Some(&err.to_string())),
                ),
            )
                .into_response())
        }
    }
}
