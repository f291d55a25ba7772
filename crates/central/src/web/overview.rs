//! The partner overview: every site with its one-word verdict and why, compliance per framework
//! (HIPAA first), incidents that need a person, appliances offline or not updated, workstation
//! coverage; filtered and sorted by query parameters (worst first by default), with the
//! partner's 90-day HIPAA trend.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::verdict::{self, Verdict};
use super::{PageError, St, Viewer, ago, layout, live, percent};
use crate::scope::{self, Role, SiteSummary};

/// The overview's query: text filter, verdict filter, sort key, and a part to refresh.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    /// Matches practice or site names (case-insensitive).
    #[serde(default)]
    pub(crate) q: Option<String>,
    /// One verdict key.
    #[serde(default)]
    pub(crate) verdict: Option<String>,
    /// `worst` (default), `name`, `hipaa`, `incidents`, `coverage`.
    #[serde(default)]
    pub(crate) sort: Option<String>,
    /// `sites`: only the table (live refresh).
    #[serde(default)]
    pub(crate) part: Option<String>,
    /// Which page of [`super::PER_PAGE`] sites (from 1).
    #[serde(default)]
    pub(crate) page: Option<usize>,
}

/// The sort keys offered.
pub(crate) const SORTS: [(&str, &str); 5] = [
    ("worst", "Worst first"),
    ("name", "Name"),
    ("hipaa", "HIPAA compliance"),
    ("incidents", "Incidents needing a person"),
    ("coverage", "Workstation coverage"),
];

/// Frameworks in the order columns show them: HIPAA first.
const FRAMEWORKS: [&str; 5] = ["HIPAA", "SOC 2", "PCI DSS", "NIST CSF", "CIS"];

pub(super) async fn page(
    State(state): St,
    Viewer(session): Viewer,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    if session.scope.role == Role::Auditor {
        return Ok(Redirect::to("/evidence").into_response());
    }
    let sites = scope::overview(&state.pool, &session.scope).await?;
    let rows = select(sites, &params);
    let now = super::now();
    let url = overview_url(&params, Some("sites"));
    let table = sites_table(&rows, now, &params);
    if params.part.as_deref() == Some("sites") {
        return Ok(super::fragment(table));
    }
    let trend = scope::trend(&state.pool, &session.scope, None, "HIPAA", 90).await?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let partner = scope::partner_name(&state.pool, &session.scope).await?;
    let counts = count_verdicts(&rows);
    let content = html! {
        h1 { "Sites of " (partner) }
        p .summary {
            @for (verdict, n) in &counts {
                span class=(format!("pill {}", verdict.key())) { (n) " " (verdict.word()) }
                " "
            }
        }
        form method="get" action="/" .filters role="search" data-autosubmit {
            label { "Find " input type="search" name="q" value=(params.q.clone().unwrap_or_default()) placeholder="practice or site"; }
            label { "Verdict "
                select name="verdict" {
                    option value="" { "All" }
                    @for v in verdict::ALL {
                        option value=(v.key()) selected[params.verdict.as_deref() == Some(v.key())] { (v.word()) }
                    }
                }
            }
            label { "Sort "
                select name="sort" {
                    @for (key, words) in SORTS {
                        option value=(key) selected[params.sort.as_deref().unwrap_or("worst") == key] { (words) }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
        (live("sites", &url, state.live_interval_ms, table))
        section aria-labelledby="trend-h" {
            h2 #trend-h { "HIPAA compliance across your sites" }
            (super::chart::trend("HIPAA compliance, mean of all sites, last 90 days", &trend, 90, &today))
        }
    };
    Ok(layout("Overview", Some(&session), "/", content))
}

fn overview_url(params: &Params, part: Option<&str>) -> String {
    let page = params.page.filter(|p| *p > 1).map(|p| p.to_string());
    let mut query = Vec::new();
    for (name, value) in [
        ("q", params.q.as_deref()),
        ("verdict", params.verdict.as_deref()),
        ("sort", params.sort.as_deref()),
        ("page", page.as_deref()),
        ("part", part),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            query.push(format!("{name}={}", super::encode_component(value)));
        }
    }
    if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", query.join("&"))
    }
}

/// A site with its verdict, as the table shows it.
pub(crate) struct Judged {
    /// The site.
    pub(crate) site: SiteSummary,
    /// Its verdict.
    pub(crate) verdict: Verdict,
    /// Why.
    pub(crate) reasons: Vec<String>,
}

/// Judges, filters and sorts the sites as the query asks.
pub(crate) fn select(sites: Vec<SiteSummary>, params: &Params) -> Vec<Judged> {
    let needle = params
        .q
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_default();
    let wanted = params.verdict.as_deref().and_then(Verdict::parse);
    let mut rows: Vec<Judged> = sites
        .into_iter()
        .filter(|s| {
            needle.is_empty()
                || s.name.to_lowercase().contains(&needle)
                || s.practice.to_lowercase().contains(&needle)
        })
        .map(|site| {
            let (verdict, reasons) = verdict::judge(&site);
            Judged {
                site,
                verdict,
                reasons,
            }
        })
        .filter(|j| wanted.is_none_or(|w| j.verdict == w))
        .collect();
    let hipaa = |j: &Judged| {
        j.site
            .compliance
            .get("HIPAA")
            .copied()
            .flatten()
            .unwrap_or(-1)
    };
    let coverage = |j: &Judged| coverage_permille(&j.site).unwrap_or(1001);
    let name = |j: &Judged| (j.site.practice.to_lowercase(), j.site.name.to_lowercase());
    match params.sort.as_deref().unwrap_or("worst") {
        "name" => rows.sort_by_key(name),
        "hipaa" => rows.sort_by(|a, b| hipaa(a).cmp(&hipaa(b)).then_with(|| name(a).cmp(&name(b)))),
        "incidents" => rows.sort_by(|a, b| {
            b.site
                .escalated
                .cmp(&a.site.escalated)
                .then(b.site.open_incidents.cmp(&a.site.open_incidents))
                .then_with(|| name(a).cmp(&name(b)))
        }),
        "coverage" => rows.sort_by(|a, b| {
            coverage(a)
                .cmp(&coverage(b))
                .then_with(|| name(a).cmp(&name(b)))
        }),
        _ => rows.sort_by(|a, b| {
            a.verdict
                .cmp(&b.verdict)
                .then(b.site.escalated.cmp(&a.site.escalated))
                .then(hipaa(a).cmp(&hipaa(b)))
                .then_with(|| name(a).cmp(&name(b)))
        }),
    }
    rows
}

/// Checked workstations per known, in tenths of a percent; `None` without workstations.
pub(crate) fn coverage_permille(site: &SiteSummary) -> Option<i64> {
    (site.workstations_known > 0)
        .then(|| site.workstations_checked * 1000 / site.workstations_known)
}

fn count_verdicts(rows: &[Judged]) -> Vec<(Verdict, usize)> {
    verdict::ALL
        .into_iter()
        .map(|v| (v, rows.iter().filter(|r| r.verdict == v).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn sort_link(params: &Params, key: &str, words: &str) -> Markup {
    let current = params.sort.as_deref().unwrap_or("worst") == key;
    let url = overview_url(
        &Params {
            q: params.q.clone(),
            verdict: params.verdict.clone(),
            sort: Some(key.to_owned()),
            part: None,
            page: None,
        },
        None,
    );
    html! {
        @if current {
            a href=(url) aria-current="true" { (words) " ▾" }
        } @else {
            a href=(url) { (words) }
        }
    }
}

fn sites_table(all: &[Judged], now: i64, params: &Params) -> Markup {
    let page = params.page.unwrap_or(1).max(1);
    let rows = super::page_of(all, page);
    let pager = super::pager(all.len(), page, |n| {
        overview_url(
            &Params {
                q: params.q.clone(),
                verdict: params.verdict.clone(),
                sort: params.sort.clone(),
                part: None,
                page: Some(n),
            },
            None,
        )
    });
    let frameworks: Vec<&str> = FRAMEWORKS
        .into_iter()
        .filter(|f| rows.iter().any(|r| r.site.compliance.contains_key(*f)))
        .collect();
    html! {
        @if rows.is_empty() {
            p .empty { "No site matches." }
        } @else {
            div .scroll {
                table .sites {
                    caption .sr { "Sites, " (rows.len()) " of " (all.len()) " shown" }
                    thead { tr {
                        th scope="col" { (sort_link(params, "worst", "Verdict")) }
                        th scope="col" { (sort_link(params, "name", "Site")) }
                        @for f in &frameworks {
                            th scope="col" .num {
                                @if *f == "HIPAA" { (sort_link(params, "hipaa", f)) } @else { (f) }
                            }
                        }
                        th scope="col" .num { (sort_link(params, "incidents", "Needs a person")) }
                        th scope="col" { "Appliances" }
                        th scope="col" .num { (sort_link(params, "coverage", "Workstations checked")) }
                        th scope="col" { "Observed" }
                    } }
                    tbody {
                        @for row in rows {
                            @let s = &row.site;
                            tr data-site=(s.id) {
                                td data-label="Verdict" {
                                    span class=(format!("pill {}", row.verdict.key())) { (row.verdict.word()) }
                                    @if !row.reasons.is_empty() {
                                        span .reasons { (row.reasons.join("; ")) }
                                    }
                                }
                                td data-label="Site" {
                                    a href=(format!("/sites/{}", s.id)) { (s.name) }
                                    br;
                                    span .muted { (s.practice) }
                                }
                                @for f in &frameworks {
                                    td data-label=(f) .num { (percent(s.compliance.get(*f).copied().flatten())) }
                                }
                                td data-label="Needs a person" .num {
                                    (s.escalated)
                                    @if s.open_incidents > s.escalated {
                                        span .muted { " (+" (s.open_incidents - s.escalated) " open)" }
                                    }
                                }
                                td data-label="Appliances" {
                                    (s.appliances)
                                    @if s.offline > 0 { ", " span .bad { (s.offline) " offline" } }
                                    @if s.not_updated > 0 { ", " span .warn { (s.not_updated) " not updated" } }
                                }
                                td data-label="Workstations checked" .num {
                                    @if s.workstations_known > 0 {
                                        (s.workstations_checked) " of " (s.workstations_known)
                                        " (" (percent(coverage_permille(s))) ")"
                                    } @else { "—" }
                                }
                                td data-label="Observed" { (ago(s.observed_at.as_deref().or(s.last_seen.as_deref()), now)) }
                            }
                        }
                    }
                }
            }
            (pager)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: i64, name: &str, edit: impl FnOnce(&mut SiteSummary)) -> SiteSummary {
        let mut site = SiteSummary {
            id,
            practice: "Practice".into(),
            name: name.into(),
            appliances: 1,
            offline: 0,
            last_seen: None,
            not_updated: 0,
            forks: 0,
            escalated: 0,
            open_incidents: 0,
            devices: 3,
            devices_failing: 0,
            workstations_known: 10,
            workstations_checked: 10,
            compliance: [("HIPAA".to_owned(), Some(980))].into(),
            observed_at: None,
        };
        edit(&mut site);
        site
    }

    fn names(rows: &[Judged]) -> Vec<&str> {
        rows.iter().map(|r| r.site.name.as_str()).collect()
    }

    #[test]
    fn worst_first_filters_and_sorts_as_asked() {
        let sites = || {
            vec![
                site(1, "Alpha", |_| {}),
                site(2, "Bravo", |s| s.escalated = 1),
                site(3, "Charlie", |s| s.offline = 1),
                site(4, "Delta", |s| {
                    s.compliance = [("HIPAA".to_owned(), Some(700))].into()
                }),
                site(5, "Echo", |s| s.workstations_checked = 2),
            ]
        };
        let by = |q: Option<&str>, verdict: Option<&str>, sort: Option<&str>| {
            let params = Params {
                q: q.map(str::to_owned),
                verdict: verdict.map(str::to_owned),
                sort: sort.map(str::to_owned),
                part: None,
                page: None,
            };
            names(&select(sites(), &params))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            by(None, None, None),
            ["Bravo", "Charlie", "Delta", "Echo", "Alpha"]
        );
        assert_eq!(by(None, Some("attention"), None), ["Delta", "Echo"]);
        assert_eq!(by(Some("ech"), None, None), ["Echo"]);
        assert_eq!(
            by(None, None, Some("name")),
            ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
        );
        assert_eq!(by(None, None, Some("coverage"))[0], "Echo");
        assert_eq!(by(None, None, Some("hipaa"))[0], "Delta");
        assert_eq!(by(None, None, Some("incidents"))[0], "Bravo");
    }
}
