//! The incident page: what failed where, its timeline (phase changes on the appliance and what
//! people did here, each with whether the appliance has sealed it), and the forms to
//! acknowledge, assign and comment — each action travels to the appliance over the link and is
//! sealed there as an `operator_action` bundle.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::site::device_url;
use super::{PageError, St, Viewer, ago, check_csrf, csrf_field, layout, live};
use crate::scope::{self, IncidentAction, IncidentDetail, IncidentKey, Role};

/// A part of the page to refresh.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Part {
    #[serde(default)]
    part: Option<String>,
}

fn key_url(key: &IncidentKey) -> String {
    format!(
        "/incidents/{}/{}/{}",
        key.appliance_id, key.incident_id, key.opened_at
    )
}

/// One line of the timeline, oldest first: (POSIX seconds or RFC 3339 text, what happened).
fn timeline(detail: &IncidentDetail, now: i64) -> Markup {
    let incident = &detail.incident;
    let mut lines: Vec<(String, Markup)> = Vec::new();
    lines.push((
        incident.opened_at.clone(),
        html! { "Opened on the appliance: " code { (incident.check) } " failed on " (incident.device) },
    ));
    if let Some(changes) = incident.transitions.as_array() {
        for change in changes {
            let at = change["at"].as_i64().unwrap_or_default();
            let at = time::OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let from = change["from"].as_str().unwrap_or("?").to_owned();
            let to = change["to"].as_str().unwrap_or("?").to_owned();
            lines.push((
                at,
                html! { "The appliance moved it from " (from) " to " strong { (to) } },
            ));
        }
    }
    for action in &detail.actions {
        let what = match action.kind.as_str() {
            "acknowledge" => html! { (action.by) " acknowledged it" },
            "assign" => {
                html! { (action.by) " assigned it to " strong { (action.assignee.as_deref().unwrap_or("?")) } }
            }
            _ => {
                html! { (action.by) " commented: " q .comment { (action.text.as_deref().unwrap_or_default()) } }
            }
        };
        let sealed = match (action.sealed_seq, &action.sealed_at) {
            (Some(seq), _) => {
                html! { span .good .sealed { " — sealed on the appliance as bundle #" (seq) } }
            }
            _ => html! { span .muted .waiting { " — waiting for the appliance" } },
        };
        lines.push((action.at.clone(), html! { (what) (sealed) }));
    }
    // RFC 3339 in UTC sorts as text.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    html! {
        ol .timeline {
            @for (at, what) in &lines {
                li { (ago(Some(at), now)) ": " (what) }
            }
        }
    }
}

fn actions_part(detail: &IncidentDetail, now: i64) -> Markup {
    let i = &detail.incident;
    html! {
        dl .figures {
            div { dt { "Phase" } dd #phase { (i.phase) @if i.acknowledged { span .muted { " · acknowledged" } } } }
            div { dt { "Severity" } dd { span class=(format!("sev {}", i.severity)) { (i.severity) } } }
            div { dt { "Assigned to" } dd #assignee { (detail.assignee.as_deref().unwrap_or("nobody")) } }
            div { dt { "Failed scans" } dd { (i.occurrences) } }
            div { dt { "Reported" } dd { (ago(Some(&i.observed_at), now)) } }
        }
        h2 { "Timeline" }
        (timeline(detail, now))
    }
}

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Path((appliance_id, incident_id, opened_at)): Path<(i64, i64, i64)>,
    axum::extract::Query(part): axum::extract::Query<Part>,
) -> Result<Response, PageError> {
    let key = IncidentKey {
        appliance_id,
        incident_id,
        opened_at,
    };
    let detail = scope::incident_detail(&state.pool, &session.scope, key).await?;
    let now = super::now();
    let url = key_url(&key);
    if part.part.as_deref() == Some("state") {
        return Ok(super::fragment(actions_part(&detail, now)));
    }
    let may_act = matches!(
        session.scope.role,
        Role::PartnerAdmin | Role::PartnerTechnician
    );
    let people = if may_act {
        scope::partner_people(&state.pool, &session.scope).await?
    } else {
        Vec::new()
    };
    let i = &detail.incident;
    let title = format!("Incident #{} — {}", i.incident_id, i.check);
    let content = html! {
        p .crumbs {
            a href="/" { "Overview" } " › "
            a href=(format!("/sites/{}", detail.site_id)) { (detail.site_name) } " › "
            a href=(device_url(i.appliance_id, &i.device)) { (i.device) }
        }
        h1 { "Incident #" (i.incident_id) ": " code { (i.check) } " on " (i.device) }
        (live("incident-state", &format!("{url}?part=state"), state.live_interval_ms, actions_part(&detail, now)))
        @if may_act {
            section aria-labelledby="act-h" {
                h2 #act-h { "Act" }
                p .muted { "Each action is sent to the appliance and sealed in its evidence log." }
                @if !i.acknowledged {
                    form method="post" action=(format!("{url}/acknowledge")) .inline {
                        (csrf_field(&session))
                        button type="submit" #acknowledge { "Acknowledge" }
                    }
                }
                form method="post" action=(format!("{url}/assign")) .inline {
                    (csrf_field(&session))
                    label for="to" { "Assign to " }
                    select #to name="to" {
                        @for person in &people {
                            option value=(person) selected[detail.assignee.as_deref() == Some(person.as_str())] { (person) }
                        }
                    }
                    button type="submit" { "Assign" }
                }
                form method="post" action=(format!("{url}/comment")) .stack {
                    (csrf_field(&session))
                    label for="comment" { "Comment (no patient information)" }
                    textarea #comment name="text" required maxlength="2000" {}
                    button type="submit" { "Add comment" }
                }
            }
        }
    };
    Ok(layout(&title, Some(&session), "", content))
}

/// The fields of the three forms (each uses its own).
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    csrf: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

pub(super) async fn act(
    State(state): St,
    Viewer(session): Viewer,
    Path((appliance_id, incident_id, opened_at, verb)): Path<(i64, i64, i64, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let key = IncidentKey {
        appliance_id,
        incident_id,
        opened_at,
    };
    let action = match verb.as_str() {
        "acknowledge" => IncidentAction::Acknowledge,
        "assign" => IncidentAction::Assign {
            to: form.to.unwrap_or_default(),
        },
        "comment" => IncidentAction::Comment {
            text: form.text.unwrap_or_default(),
        },
        _ => {
            return Err(PageError::Status(
                axum::http::StatusCode::NOT_FOUND,
                "There is no such action.".to_owned(),
            ));
        }
    };
    scope::act_on_incident(&state.pool, &session.scope, key, action).await?;
    Ok(super::see_other(&key_url(&key)))
}
