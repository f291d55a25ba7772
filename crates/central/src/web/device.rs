//! The device page: its checks now and over time, its incidents, its healing and the evidence
//! bundles that recorded it.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;

use super::site::{
    Cell, WORKSTATION_CHECKS, cells, class_words, failing_list, healing_table, incidents_table,
    unchecked_words,
};
use super::{PageError, St, Viewer, ago, layout};
use crate::scope::{self, HealingRow};

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Path((appliance_id, name)): Path<(i64, String)>,
) -> Result<Response, PageError> {
    let detail = scope::device_detail(&state.pool, &session.scope, appliance_id, &name).await?;
    let now = super::now();
    let d = &detail.device;
    let healing: Vec<&HealingRow> = detail.healing.iter().collect();
    let content = html! {
        p .crumbs {
            a href="/" { "Overview" } " › "
            a href=(format!("/sites/{}", detail.site_id)) { (detail.site_name) }
        }
        h1 { (d.name) " " span class=(format!("status {}", d.status)) { (d.status) } }
        dl .figures {
            div { dt { "Kind" } dd { (class_words(&d.class)) } }
            div { dt { "Appliance" } dd { "#" (d.appliance_id) } }
            div { dt { "Checks" } dd { (d.checks_total - d.checks_failed) " of " (d.checks_total) " pass" } }
            div { dt { "Last scan" } dd {
                @if d.last_scan_at.is_some() { (ago(d.last_scan_at.as_deref(), now)) }
                @else { (unchecked_words(d.unchecked.as_deref(), &d.status)) }
            } }
            div { dt { "Reported" } dd { (ago(Some(&d.observed_at), now)) } }
        }
        @if d.class == "workstation" {
            section aria-labelledby="checks-h" {
                h2 #checks-h { "The five workstation checks" }
                ul .checks {
                    @for ((id, title), cell) in WORKSTATION_CHECKS.iter().zip(cells(d)) {
                        li {
                            @match cell {
                                Cell::Pass => span .cell .pass { "pass" },
                                Cell::Fail => span .cell .fail { "FAIL" },
                                Cell::NotChecked => span .cell .none { "not checked" },
                            }
                            " " (title) " " code { (id) }
                        }
                    }
                }
            }
        } @else {
            section aria-labelledby="checks-h" {
                h2 #checks-h { "Failing checks" }
                p { (failing_list(&d.failing)) }
            }
        }
        section aria-labelledby="history-h" {
            h2 #history-h { "Checks over time" }
            @if detail.history.is_empty() {
                p .empty { "No changes recorded yet." }
            } @else {
                div .scroll { table {
                    thead { tr { th scope="col" { "Reported" } th scope="col" { "State" } th scope="col" { "Checks" } th scope="col" { "Failing" } } }
                    tbody {
                        @for change in &detail.history {
                            tr {
                                td data-label="Reported" { (ago(Some(&change.observed_at), now)) }
                                td data-label="State" { span class=(format!("status {}", change.status)) { (change.status) } }
                                td data-label="Checks" { (change.checks_total) }
                                td data-label="Failing" { (failing_list(&serde_json::json!(change.failing))) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="incidents-h" {
            h2 #incidents-h { "Incidents" }
            (incidents_table(&detail.incidents, now))
        }
        section aria-labelledby="healing-h" {
            h2 #healing-h { "Healing and its evidence" }
            @if healing.is_empty() { p .empty { "Nothing healed on this device yet." } }
            @else { (healing_table(&healing, now, false)) }
        }
    };
    Ok(layout(&d.name, Some(&session), "", content))
}
