//! The fleet page: every appliance with its version, update state and the release it is
//! offered, and the vendor's releases with this partner's staged rollout of each.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageError, St, Viewer, ago, check_csrf, csrf_field, layout};
use crate::scope::{self, Role};

/// `GET /fleet`'s query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    #[serde(default)]
    page: Option<usize>,
}

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    axum::extract::Query(params): axum::extract::Query<Params>,
) -> Result<Response, PageError> {
    let scope = &session.scope;
    let fleet = scope::fleet(&state.pool, scope).await?;
    let releases = scope::releases(&state.pool, scope).await?;
    let sites = scope::sites(&state.pool, scope).await?;
    let practices = scope::practices(&state.pool, scope).await?;
    let site_name = |id: i64| {
        sites.iter().find(|s| s.id == id).map_or_else(
            || format!("site {id}"),
            |s| format!("{} — {}", s.name, s.practice),
        )
    };
    let now = super::now();
    let may_roll_out = scope.role == Role::PartnerAdmin && scope.practice_id.is_none();
    let page = params.page.unwrap_or(1).max(1);
    // Those that need a look first: rolled back, then offered something, then by id.
    let mut fleet = fleet;
    fleet.sort_by_key(|a| {
        let state = a.update.as_ref().map(|u| u.state.as_str());
        (
            state != Some("rolled_back"),
            a.offered.is_none(),
            a.appliance_id,
        )
    });
    let total = fleet.len();
    let fleet = super::page_of(&fleet, page);
    let content = html! {
        h1 { "Fleet" }
        section aria-labelledby="appliances-h" {
            h2 #appliances-h { "Appliances" }
            @if fleet.is_empty() { p .empty { "No appliance claimed yet." } } @else {
                div .scroll { table {
                    thead { tr {
                        th scope="col" { "Appliance" } th scope="col" { "Site" } th scope="col" { "Version" }
                        th scope="col" { "Update state" } th scope="col" { "Offered" } th scope="col" { "Last report" }
                    } }
                    tbody {
                        @for a in fleet {
                            tr {
                                td data-label="Appliance" { "#" (a.appliance_id) }
                                td data-label="Site" { a href=(format!("/sites/{}", a.site_id)) { (site_name(a.site_id)) } }
                                td data-label="Version" { (a.software_version.as_deref().unwrap_or("—")) }
                                td data-label="Update state" {
                                    @if let Some(u) = &a.update {
                                        span class=(format!("update {}", u.state)) { (u.state.replace('_', " ")) }
                                        @if let Some(detail) = &u.detail { br; span .muted { (detail) } }
                                    } @else { "—" }
                                }
                                td data-label="Offered" { (a.offered.as_deref().unwrap_or("—")) }
                                td data-label="Last report" { (ago(a.last_seen.as_deref(), now)) }
                            }
                        }
                    }
                } }
                (super::pager(total, page, |n| format!("/fleet?page={n}")))
            }
        }
        section aria-labelledby="releases-h" {
            h2 #releases-h { "Releases and rollouts" }
            @if releases.is_empty() { p .empty { "No vendor release known yet." } } @else {
                div .scroll { table {
                    thead { tr {
                        th scope="col" { "Version" } th scope="col" { "Manifest expires" } th scope="col" { "Rollout" }
                        @if may_roll_out { th scope="col" { "Change rollout" } }
                    } }
                    tbody {
                        @for r in &releases {
                            tr {
                                td data-label="Version" { (r.version) }
                                td data-label="Manifest expires" { (ago(Some(&r.expires_at), now)) }
                                td data-label="Rollout" {
                                    @match r.percent {
                                        Some(p) => { (p) " % of appliances"
                                            @if let Some(first) = &r.practices {
                                                @if !first.is_empty() {
                                                    ", first: "
                                                    (first.iter().map(|id| practices.iter().find(|(p, _)| p == id).map_or_else(|| id.to_string(), |(_, n)| n.clone())).collect::<Vec<_>>().join(", "))
                                                }
                                            }
                                        },
                                        None => span .muted { "not rolled out" },
                                    }
                                }
                                @if may_roll_out {
                                    td data-label="Change rollout" {
                                        form method="post" action=(format!("/fleet/releases/{}/rollout", r.id)) .inline {
                                            (csrf_field(&session))
                                            label { "Share " input type="number" name="percent" min="0" max="100" required value=(r.percent.unwrap_or(0)) .short; " %" }
                                            button type="submit" { "Set" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(layout("Fleet", Some(&session), "/fleet", content))
}

/// `POST /fleet/releases/{release}/rollout`.
#[derive(Debug, Deserialize)]
pub(crate) struct RolloutForm {
    csrf: String,
    percent: i64,
}

pub(super) async fn rollout(
    State(state): St,
    Viewer(session): Viewer,
    Path(release): Path<i64>,
    Form(form): Form<RolloutForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    // The practices offered it first stay as they were.
    let first = scope::releases(&state.pool, &session.scope)
        .await?
        .into_iter()
        .find(|r| r.id == release)
        .and_then(|r| r.practices)
        .unwrap_or_default();
    scope::set_rollout(&state.pool, &session.scope, release, form.percent, &first).await?;
    Ok(super::see_other("/fleet"))
}
