//! The site page (verdict, compliance and its trend, appliances, the workstation × five checks
//! grid with coverage and the reasons a workstation was not checked, servers, incidents, the
//! healing log by tier, the evidence the witness holds) and the evidence page (every site's
//! evidence, the appliances' monthly compliance packets, kits to ask for and download).

use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::verdict;
use super::{
    PageError, St, Viewer, ago, check_csrf, csrf_field, encode_component, layout, live, percent,
};
use crate::scope::{self, DeviceRow, EvidenceRow, HealingRow, IncidentRow, PacketRow, Role};

/// The five workstation checks, in the grid's column order: catalogue id and column title.
pub(crate) const WORKSTATION_CHECKS: [(&str, &str); 5] = [
    ("WIN-WSBL-001", "BitLocker"),
    ("WIN-WSDEF-001", "Defender"),
    ("WIN-WSPATCH-001", "Patches"),
    ("WIN-WSFW-001", "Firewall"),
    ("WIN-WSLOCK-001", "Screen lock"),
];

/// A part of the page to refresh.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Part {
    /// `incidents` or `devices`.
    #[serde(default)]
    pub(crate) part: Option<String>,
}

/// One cell of the workstation grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// The check passed at the last scan.
    Pass,
    /// It failed.
    Fail,
    /// No current result for it.
    NotChecked,
}

/// A workstation's five cells: failed where the last scan listed the check as failing, passed
/// where a complete scan (all five checks ran) did not, not checked otherwise.
pub(crate) fn cells(device: &DeviceRow) -> [Cell; 5] {
    let scanned = matches!(device.status.as_str(), "compliant" | "drifted");
    let failing: Vec<&str> = device
        .failing
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    WORKSTATION_CHECKS.map(|(id, _)| {
        if failing.contains(&id) {
            Cell::Fail
        } else if scanned && device.checks_total >= 5 {
            Cell::Pass
        } else {
            Cell::NotChecked
        }
    })
}

/// The reason words for a device without a current result.
pub(crate) fn unchecked_words(reason: Option<&str>, status: &str) -> &'static str {
    match (reason, status) {
        (Some("not_scanned_yet"), _) | (None, "unknown") => "not scanned yet",
        (Some("unreachable"), _) => "did not answer on the network",
        (Some("login_refused"), _) => "refused the appliance's login",
        (Some("scan_failed"), _) | (None, "error") => "the scan failed",
        _ => "no current result",
    }
}

pub(super) fn device_url(appliance_id: i64, name: &str) -> String {
    format!("/devices/{appliance_id}/{}", encode_component(name))
}

pub(super) fn incident_url(incident: &IncidentRow) -> String {
    format!(
        "/incidents/{}/{}/{}",
        incident.appliance_id, incident.incident_id, incident.opened_unix
    )
}

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Path(site_id): Path<i64>,
    Query(part): Query<Part>,
) -> Result<Response, PageError> {
    let scope = &session.scope;
    let now = super::now();
    let url = format!("/sites/{site_id}");
    match part.part.as_deref() {
        Some("incidents") => {
            let incidents = scope::site_incidents(&state.pool, scope, site_id).await?;
            return Ok(super::fragment(incidents_table(&incidents, now)));
        }
        Some("devices") => {
            let devices = scope::site_devices(&state.pool, scope, site_id).await?;
            return Ok(super::fragment(devices_part(&devices, now)));
        }
        _ => {}
    }
    let summary = scope::site_summary(&state.pool, scope, site_id).await?;
    let (_, appliances) = scope::site(&state.pool, scope, site_id).await?;
    let devices = scope::site_devices(&state.pool, scope, site_id).await?;
    let incidents = scope::site_incidents(&state.pool, scope, site_id).await?;
    let healing = scope::site_healing(&state.pool, scope, site_id).await?;
    let evidence = scope::site_evidence(&state.pool, scope, site_id).await?;
    let trend = scope::trend(&state.pool, scope, Some(site_id), "HIPAA", 90).await?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (verdict, reasons) = verdict::judge(&summary);
    let content = html! {
        p .crumbs { a href="/" { "Overview" } " › " (summary.practice) }
        h1 { (summary.name) " " span class=(format!("pill {}", verdict.key())) { (verdict.word()) } }
        @if !reasons.is_empty() { p .reasons { (reasons.join("; ")) } }
        section aria-labelledby="compliance-h" {
            h2 #compliance-h { "Compliance" }
            @if summary.compliance.is_empty() {
                p .empty { "No compliance reported yet." }
            } @else {
                dl .figures {
                    @for (framework, permille) in &summary.compliance {
                        div { dt { (framework) } dd { (percent(*permille)) } }
                    }
                }
                p .muted { "Observed " (ago(summary.observed_at.as_deref(), now)) }
            }
            (super::chart::trend("HIPAA compliance of this site, last 90 days", &trend, 90, &today))
        }
        section aria-labelledby="appliances-h" {
            h2 #appliances-h { "Appliances" }
            @if appliances.is_empty() {
                p .empty { "No appliance claimed for this site yet." }
            } @else {
                div .scroll { table {
                    thead { tr { th scope="col" { "Appliance" } th scope="col" { "Version" } th scope="col" { "Update" } th scope="col" { "Last report" } } }
                    tbody {
                        @for a in &appliances {
                            tr {
                                td data-label="Appliance" { "#" (a.id) }
                                td data-label="Version" { (a.software_version.as_deref().unwrap_or("—")) }
                                td data-label="Update" {
                                    @if let Some(update) = &a.update {
                                        (update.state.replace('_', " "))
                                        @if let Some(available) = &update.available { " → " (available) }
                                    } @else { "—" }
                                }
                                td data-label="Last report" { (ago(a.last_seen.as_deref(), now)) }
                            }
                        }
                    }
                } }
            }
        }
        (live("devices", &format!("{url}?part=devices"), state.live_interval_ms, devices_part(&devices, now)))
        section aria-labelledby="incidents-h" {
            h2 #incidents-h { "Incidents" }
            (live("incidents", &format!("{url}?part=incidents"), state.live_interval_ms, incidents_table(&incidents, now)))
        }
        section aria-labelledby="healing-h" {
            h2 #healing-h { "Healing log" }
            (healing_by_tier(&healing, now))
        }
        section aria-labelledby="evidence-h" {
            h2 #evidence-h { "Evidence" }
            (evidence_table(&evidence, now))
            @if scope.role != Role::PracticeViewer {
                (kit_forms(&session, &evidence))
            }
        }
    };
    Ok(layout(&summary.name, Some(&session), "", content))
}

fn devices_part(devices: &[DeviceRow], now: i64) -> Markup {
    let workstations: Vec<&DeviceRow> = devices
        .iter()
        .filter(|d| d.class == "workstation")
        .collect();
    let servers: Vec<&DeviceRow> = devices
        .iter()
        .filter(|d| d.class != "workstation")
        .collect();
    let unchecked: Vec<&&DeviceRow> = workstations
        .iter()
        .filter(|d| !matches!(d.status.as_str(), "compliant" | "drifted"))
        .collect();
    let checked = workstations.len() - unchecked.len();
    let coverage = (!workstations.is_empty()).then(|| (checked * 1000 / workstations.len()) as i64);
    html! {
        section aria-labelledby="workstations-h" {
            h2 #workstations-h { "Workstations" }
            @if workstations.is_empty() {
                p .empty { "No workstations known yet (they come from Active Directory)." }
            } @else {
                p .coverage {
                    strong { (checked) " of " (workstations.len()) } " workstations checked (" (percent(coverage)) ")"
                }
                div .scroll { table .grid {
                    caption .sr { "Each workstation and its five checks" }
                    thead { tr {
                        th scope="col" { "Workstation" }
                        @for (_, title) in WORKSTATION_CHECKS { th scope="col" .cell { (title) } }
                        th scope="col" { "Last scan" }
                    } }
                    tbody {
                        @for d in &workstations {
                            tr {
                                th scope="row" data-label="Workstation" { a href=(device_url(d.appliance_id, &d.name)) { (d.name) } }
                                @for ((_, title), cell) in WORKSTATION_CHECKS.iter().zip(cells(d)) {
                                    @match cell {
                                        Cell::Pass => td .cell .pass data-label=(title) { "pass" },
                                        Cell::Fail => td .cell .fail data-label=(title) { "FAIL" },
                                        Cell::NotChecked => td .cell .none data-label=(title) { "—" span .sr { "not checked" } },
                                    }
                                }
                                td data-label="Last scan" { (last_scan(d, now)) }
                            }
                        }
                    }
                } }
                @if !unchecked.is_empty() {
                    h3 { "Not checked" }
                    ul .unchecked {
                        @for d in &unchecked {
                            li { a href=(device_url(d.appliance_id, &d.name)) { (d.name) } ": " (unchecked_words(d.unchecked.as_deref(), &d.status)) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="servers-h" {
            h2 #servers-h { "Servers" }
            @if servers.is_empty() {
                p .empty { "No servers configured on this site's appliances." }
            } @else {
                div .scroll { table {
                    thead { tr { th scope="col" { "Server" } th scope="col" { "Kind" } th scope="col" { "State" } th scope="col" { "Failing checks" } th scope="col" { "Last scan" } } }
                    tbody {
                        @for d in &servers {
                            tr {
                                th scope="row" data-label="Server" { a href=(device_url(d.appliance_id, &d.name)) { (d.name) } }
                                td data-label="Kind" { (class_words(&d.class)) }
                                td data-label="State" { span class=(format!("status {}", d.status)) { (d.status) } }
                                td data-label="Failing checks" { (failing_list(&d.failing)) }
                                td data-label="Last scan" { (last_scan(d, now)) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn last_scan(device: &DeviceRow, now: i64) -> Markup {
    match &device.last_scan_at {
        Some(at) => ago(Some(at), now),
        None => {
            html! { span .muted { (unchecked_words(device.unchecked.as_deref(), &device.status)) } }
        }
    }
}

pub(super) fn class_words(class: &str) -> &'static str {
    match class {
        "windows_server" => "Windows server",
        "linux" => "Linux",
        "workstation" => "Workstation",
        _ => "device",
    }
}

pub(super) fn failing_list(failing: &serde_json::Value) -> Markup {
    let ids: Vec<&str> = failing
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    html! {
        @if ids.is_empty() { span .muted { "none" } }
        @else { @for (i, id) in ids.iter().enumerate() { @if i > 0 { ", " } code { (id) } } }
    }
}

pub(super) fn incidents_table(incidents: &[IncidentRow], now: i64) -> Markup {
    html! {
        @if incidents.is_empty() {
            p .empty { "No incidents." }
        } @else {
            div .scroll { table .incidents {
                thead { tr {
                    th scope="col" { "Incident" } th scope="col" { "Device" } th scope="col" { "Check" }
                    th scope="col" { "Severity" } th scope="col" { "Phase" } th scope="col" { "Changed" }
                } }
                tbody {
                    @for i in incidents {
                        tr data-incident=(format!("{}-{}", i.appliance_id, i.incident_id)) {
                            td data-label="Incident" { a href=(incident_url(i)) { "#" (i.incident_id) } }
                            td data-label="Device" { a href=(device_url(i.appliance_id, &i.device)) { (i.device) } }
                            td data-label="Check" { code { (i.check) } }
                            td data-label="Severity" { span class=(format!("sev {}", i.severity)) { (i.severity) } }
                            td data-label="Phase" {
                                (i.phase)
                                @if i.acknowledged { span .muted { " · acknowledged" } }
                                @if i.flapping { span .warn { " · flapping" } }
                            }
                            td data-label="Changed" { (ago(Some(&i.updated_at), now)) }
                        }
                    }
                }
            } }
        }
    }
}

pub(super) fn healing_table(entries: &[&HealingRow], now: i64, with_device: bool) -> Markup {
    html! {
        div .scroll { table {
            thead { tr {
                th scope="col" { "When" }
                @if with_device { th scope="col" { "Device" } }
                th scope="col" { "Check" } th scope="col" { "Rule" } th scope="col" { "Result" } th scope="col" { "Evidence" }
            } }
            tbody {
                @for h in entries {
                    tr {
                        td data-label="When" { (ago(Some(&h.at), now)) }
                        @if with_device { td data-label="Device" { a href=(device_url(h.appliance_id, &h.device)) { (h.device) } } }
                        td data-label="Check" { code { (h.check) } }
                        td data-label="Rule" { (h.rule.as_deref().unwrap_or("—")) }
                        td data-label="Result" { span class=(format!("result {}", h.result)) { (h.result.replace('_', " ")) } }
                        td data-label="Evidence" {
                            @if let Some(seq) = h.evidence_seq { "bundle #" (seq) } @else { "—" }
                        }
                    }
                }
            }
        } }
    }
}

fn healing_by_tier(healing: &[HealingRow], now: i64) -> Markup {
    let tiers = [
        ("L1", "L1 — deterministic runbooks"),
        ("L2", "L2 — guarded assistant"),
        ("L3", "L3 — escalated to a person"),
    ];
    html! {
        @if healing.is_empty() {
            p .empty { "Nothing healed or escalated yet." }
        }
        @for (tier, title) in tiers {
            @let entries: Vec<&HealingRow> = healing.iter().filter(|h| h.tier == tier).collect();
            @let fixed = entries.iter().filter(|h| h.result == "fixed").count();
            details .tier open[tier == "L1" && !entries.is_empty()] {
                summary { (title) ": " (entries.len()) " entries, " (fixed) " fixed" }
                @if !entries.is_empty() { (healing_table(&entries, now, true)) }
            }
        }
    }
}

fn evidence_table(evidence: &[EvidenceRow], now: i64) -> Markup {
    html! {
        @if evidence.is_empty() {
            p .empty { "No appliance, no evidence yet." }
        } @else {
            div .scroll { table .evidence {
                thead { tr {
                    th scope="col" { "Appliance" } th scope="col" .num { "Witnessed bundles" } th scope="col" { "Last cosignature" }
                    th scope="col" .num { "Cosignatures" } th scope="col" .num { "OpenTimestamps anchored" } th scope="col" .num { "Waiting for Bitcoin" }
                    th scope="col" { "Forks refused" }
                } }
                tbody {
                    @for e in evidence {
                        tr {
                            td data-label="Appliance" { "#" (e.appliance_id) }
                            td data-label="Witnessed bundles" .num { (e.witnessed_size.map_or("—".to_owned(), |s| s.to_string())) }
                            td data-label="Last cosignature" { (ago(e.witnessed_at.as_deref(), now)) }
                            td data-label="Cosignatures" .num { (e.cosignatures) }
                            td data-label="OpenTimestamps anchored" .num { (e.ots_anchored.map_or("—".to_owned(), |n| n.to_string())) }
                            td data-label="Waiting for Bitcoin" .num { (e.ots_pending.map_or("—".to_owned(), |n| n.to_string())) }
                            td data-label="Forks refused" {
                                @if e.forks > 0 { span .bad { (e.forks) " — the log was rewritten; see alerts" } } @else { "none" }
                            }
                        }
                    }
                }
            } }
        }
    }
}

fn kit_forms(session: &crate::auth::Session, evidence: &[EvidenceRow]) -> Markup {
    html! {
        @for e in evidence {
            form method="post" action="/evidence/kits" .inline {
                (csrf_field(session))
                input type="hidden" name="appliance" value=(e.appliance_id);
                button type="submit" { "Ask appliance #" (e.appliance_id) " for an evidence kit" }
            }
        }
    }
}

/// The monthly packets: month, appliance, when made, whether the month held evidence, and a
/// download link per report (`/v1/packets/{id}/files/{name}`, within the viewer's scope).
fn packets_table(packets: &[PacketRow], now: i64) -> Markup {
    const KINDS: [(&str, &str); 5] = [
        (".pdf", "PDF"),
        (".html", "HTML"),
        (".csv", "CSV"),
        ("-assessment-results.json", "OSCAL"),
        ("-poam.json", "POA&M"),
    ];
    html! {
        @if packets.is_empty() {
            p .empty { "No monthly packet yet: appliances send the previous month's after the 1st." }
        } @else {
            div .scroll { table .packets {
                thead { tr {
                    th scope="col" { "Month" } th scope="col" { "Appliance" } th scope="col" { "Made" }
                    th scope="col" { "Reports" }
                } }
                tbody {
                    @for p in packets {
                        @let names: Vec<&str> = p.files.as_array().map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect()).unwrap_or_default();
                        tr {
                            td data-label="Month" {
                                (p.period)
                                @if !p.evidence { br; span .muted { "no scans that month" } }
                            }
                            td data-label="Appliance" { "#" (p.appliance_id) }
                            td data-label="Made" { (ago(Some(&p.received_at), now)) }
                            td data-label="Reports" {
                                @for framework in ["hipaa", "soc2", "pci", "nist-csf", "cis"] {
                                    @let stem = format!("{framework}-{}", p.period);
                                    span .report-links {
                                        (framework) ": "
                                        @for (suffix, label) in KINDS {
                                            @let name = format!("{stem}{suffix}");
                                            @if names.contains(&name.as_str()) {
                                                a href=(format!("/v1/packets/{}/files/{}", p.id, encode_component(&name))) download { (label) } " "
                                            }
                                        }
                                    }
                                    br;
                                }
                                @if names.contains(&"MANIFEST.sha256") {
                                    a href=(format!("/v1/packets/{}/files/MANIFEST.sha256", p.id)) download { "MANIFEST.sha256" }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// `POST /evidence/kits`.
#[derive(Debug, Deserialize)]
pub(crate) struct KitForm {
    csrf: String,
    appliance: i64,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

pub(super) async fn request_kit(
    State(state): St,
    Viewer(session): Viewer,
    Form(form): Form<KitForm>,
) -> Result<Response, PageError> {
    check_csrf(&session, &form.csrf)?;
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    scope::request_kit(
        &state.pool,
        &session.scope,
        form.appliance,
        nonempty(&form.from).as_deref(),
        nonempty(&form.to).as_deref(),
    )
    .await?;
    Ok(super::see_other("/evidence?asked=1"))
}

/// `GET /evidence`'s query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EvidenceParams {
    #[serde(default)]
    asked: Option<String>,
    #[serde(default)]
    part: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

/// Every site's evidence and the kits asked for: the auditor's portal (partners see it too).
pub(super) async fn evidence_page(
    State(state): St,
    Viewer(session): Viewer,
    Query(params): Query<EvidenceParams>,
) -> Result<Response, PageError> {
    let scope = &session.scope;
    if scope.role == Role::PracticeViewer {
        return Err(scope::ScopeError::Forbidden.into());
    }
    let now = super::now();
    let kits = scope::kits(&state.pool, scope).await?;
    let kits_table = html! {
        @if kits.is_empty() {
            p .empty { "No kits asked for yet." }
        } @else {
            div .scroll { table .kits {
                thead { tr {
                    th scope="col" { "Kit" } th scope="col" { "Appliance" } th scope="col" { "Asked" } th scope="col" { "Period" }
                    th scope="col" { "State" } th scope="col" { "Download" }
                } }
                tbody {
                    @for k in &kits {
                        tr {
                            td data-label="Kit" { "#" (k.id) }
                            td data-label="Appliance" { "#" (k.appliance_id) }
                            td data-label="Asked" { (ago(Some(&k.requested_at), now)) }
                            td data-label="Period" { (k.period_from.as_deref().unwrap_or("start")) " – " (k.period_to.as_deref().unwrap_or("now")) }
                            td data-label="State" {
                                @match k.status.as_str() {
                                    "verified" => span .good { "verified" },
                                    "refused" => span .bad { "refused: " (k.problems.as_array().map(|p| p.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("; ")).unwrap_or_default()) },
                                    _ => span .muted { "waiting for the appliance" },
                                }
                            }
                            td data-label="Download" {
                                @if k.status == "verified" {
                                    a href=(format!("/v1/kits/{}/download", k.id)) download { "kit-" (k.id) ".tar" }
                                    @if let Some(sha) = &k.sha256 { br; span .muted .hash { "SHA-256 " (sha) } }
                                } @else { "—" }
                            }
                        }
                    }
                }
            } }
        }
    };
    if params.part.as_deref() == Some("kits") {
        return Ok(super::fragment(kits_table));
    }
    let packets = scope::packets(&state.pool, scope).await?;
    let sites = scope::sites(&state.pool, scope).await?;
    let evidence = scope::all_evidence(&state.pool, scope).await?;
    let page = params.page.unwrap_or(1).max(1);
    let shown = super::page_of(&sites, page);
    let site_evidence: Vec<_> = shown
        .iter()
        .map(|site| {
            let rows: Vec<EvidenceRow> = evidence
                .iter()
                .filter(|e| e.site_id == site.id)
                .cloned()
                .collect();
            (site, rows)
        })
        .collect();
    let content = html! {
        h1 { "Evidence" }
        @if params.asked.is_some() { p .notice role="status" { "The appliance will deliver the kit at its next contact; it appears below when verified." } }
        p { "Each kit holds an appliance's whole evidence log, verified here against the appliance's key and the witness's cosignatures before it is offered. Verify it again offline with " code { "osiris evidence verify" } "." }
        section aria-labelledby="packets-h" {
            h2 #packets-h { "Monthly packets" }
            p { "On the 1st each appliance makes the previous month's reports of every framework; they are kept here once every file matched the SHA-256 its signed evidence bundle names." }
            (packets_table(&packets, now))
        }
        section aria-labelledby="kits-h" {
            h2 #kits-h { "Kits" }
            (live("kits", "/evidence?part=kits", state.live_interval_ms, kits_table))
        }
        section aria-labelledby="sites-h" {
            h2 #sites-h { "Sites" }
            (super::pager(sites.len(), page, |n| format!("/evidence?page={n}")))
            @for (site, evidence) in &site_evidence {
                h3 { (site.name) span .muted { " — " (site.practice) } }
                (evidence_table(evidence, now))
                (kit_forms(&session, evidence))
            }
        }
    };
    Ok(layout("Evidence", Some(&session), "/evidence", content))
}
