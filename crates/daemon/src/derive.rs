//! Pure translations from scan and heal results to what the daemon keeps and shows: device
//! records, incident events, healing-log entries and framework compliance.

use std::collections::BTreeMap;

use heal::{HealRecord, HealResult};
use incidents::Event;
use model::{CheckStatus, Framework, Platform, TargetVerdict};
use scan::TargetReport;

/// Frameworks in the order status shows them (HIPAA first).
pub(crate) const FRAMEWORKS: [Framework; 5] = [
    Framework::Hipaa,
    Framework::Soc2,
    Framework::PciDss,
    Framework::NistCsf,
    Framework::Cis,
];

/// The newest status of each check (by runbook id) on one device, for per-control compliance.
pub(crate) type Scores = BTreeMap<String, compliance::CheckStatus>;

/// The device record for a finished scan.
pub(crate) fn device(
    catalog: &catalog::Catalog,
    report: &TargetReport,
    address: Option<String>,
) -> api::Device {
    let summary = report.summary();
    let failing: Vec<api::FailingCheck> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == CheckStatus::Fail)
        .map(|r| {
            let runbook = catalog.get(&r.runbook_id);
            api::FailingCheck {
                check: r.runbook_id.clone(),
                title: runbook.map(|rb| rb.title.clone()).unwrap_or_default(),
                severity: runbook
                    .map(|rb| rb.severity.as_str().to_owned())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let verdict = report.verdict();
    let unreadable = verdict == TargetVerdict::ScanFailed;
    let status = match verdict {
        TargetVerdict::ScanFailed => api::DeviceStatus::Error,
        TargetVerdict::Drifted => api::DeviceStatus::Drifted,
        TargetVerdict::Compliant => api::DeviceStatus::Compliant,
    };
    let error = unreadable
        .then(|| report.results.first().map(|r| r.outcome.reason.clone()))
        .flatten();
    api::Device {
        name: report.target.name.clone(),
        class: class(report.target.platform),
        platform: report.target.platform.as_str().to_owned(),
        address,
        status,
        last_scan_at: Some(report.finished.unix_timestamp()),
        checks_total: summary.total as u32,
        checks_failed: summary.fail as u32,
        failing,
        error,
        intune: None,
    }
}

/// A device known (configured or discovered) but not scanned yet.
pub(crate) fn unscanned(name: String, platform: Platform, address: Option<String>) -> api::Device {
    api::Device {
        name,
        class: class(platform),
        platform: platform.as_str().to_owned(),
        address,
        status: api::DeviceStatus::Unknown,
        last_scan_at: None,
        checks_total: 0,
        checks_failed: 0,
        failing: Vec::new(),
        error: None,
        intune: None,
    }
}

/// The key a machine and an Intune managed device share: the first DNS label, lowercase
/// (Intune's `deviceName` is the computer name).
pub(crate) fn machine_key(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_ascii_lowercase()
}

/// What one tenant's Intune reported, by machine key.
pub(crate) fn intune_states(
    tenant: &str,
    managed: &[cloud::microsoft365::source::Device],
    now: i64,
) -> BTreeMap<String, api::IntuneState> {
    managed
        .iter()
        .map(|device| {
            (
                machine_key(&device.name),
                api::IntuneState {
                    tenant: tenant.to_owned(),
                    compliance: device.compliance_state.clone(),
                    encrypted: device.encrypted,
                    seen_at: now,
                },
            )
        })
        .collect()
}

/// The class the console groups a platform under.
pub(crate) fn class(platform: Platform) -> api::DeviceClass {
    match platform {
        Platform::WindowsWorkstation => api::DeviceClass::Workstation,
        Platform::WindowsServer => api::DeviceClass::WindowsServer,
        _ => api::DeviceClass::Linux,
    }
}

/// Incident events a scan implies: a failed check opens (or re-counts) its incident, a passing
/// one resolves it. Errors and skips say nothing about the problem, so they change nothing.
pub(crate) fn scan_events(
    catalog: &catalog::Catalog,
    report: &TargetReport,
) -> Vec<(String, String, Event)> {
    report
        .results
        .iter()
        .filter_map(|r| {
            let event = match r.outcome.status {
                CheckStatus::Fail => Event::Failed {
                    severity: catalog
                        .get(&r.runbook_id)
                        .map_or(model::Severity::Medium, |rb| rb.severity),
                },
                CheckStatus::Pass => Event::Passed,
                CheckStatus::Error | CheckStatus::Skipped => return None,
            };
            Some((report.target.name.clone(), r.runbook_id.clone(), event))
        })
        .collect()
}

/// Incident events of one L1 decision. Held findings stay as they are (open, waiting).
pub(crate) fn heal_events(record: &HealRecord) -> Vec<Event> {
    match &record.result {
        HealResult::Fixed => vec![Event::HealStarted, Event::HealFixed],
        HealResult::NotFixed {
            reason,
            rolled_back,
        } => vec![
            Event::HealStarted,
            Event::Escalated {
                reason: format!(
                    "L1 remediation did not fix it: {reason}{}",
                    if *rolled_back { " (rolled back)" } else { "" }
                ),
            },
        ],
        HealResult::Escalated { reason } => vec![Event::Escalated {
            reason: reason.clone(),
        }],
        HealResult::NoRule => vec![Event::Escalated {
            reason: "no L1 rule covers this finding".to_owned(),
        }],
        HealResult::Held { .. } | HealResult::Planned { .. } => Vec::new(),
    }
}

/// What one run's heal results add up to, for the cycle's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) fixed: u32,
    /// Results that escalate their incident ([`heal_events`]): a person must act.
    pub(crate) for_person: u32,
    pub(crate) held: u32,
}

impl Tally {
    pub(crate) fn add(&mut self, result: &HealResult) {
        match result {
            HealResult::Fixed => self.fixed += 1,
            HealResult::NotFixed { .. } | HealResult::Escalated { .. } | HealResult::NoRule => {
                self.for_person += 1;
            }
            HealResult::Held { .. } => self.held += 1,
            // Dry runs only: nothing was done and nobody is asked.
            HealResult::Planned { .. } => {}
        }
    }
}

/// The healing-log entry of one L1 decision, if it is one worth listing.
pub(crate) fn healing_entry(
    target: &str,
    record: &HealRecord,
    seq: Option<u64>,
    now: i64,
) -> Option<api::HealingEntry> {
    let (result, reason) = match &record.result {
        HealResult::Fixed => ("fixed", String::new()),
        HealResult::NotFixed {
            reason,
            rolled_back,
        } => (
            "not_fixed",
            format!(
                "{reason}{}",
                if *rolled_back { " (rolled back)" } else { "" }
            ),
        ),
        HealResult::Escalated { reason } => ("escalated", reason.clone()),
        HealResult::NoRule => ("escalated", "no L1 rule covers this finding".to_owned()),
        HealResult::Held { .. } | HealResult::Planned { .. } => return None,
    };
    let runbook = match &record.decision {
        rules::Decision::Remediate { runbook, .. } => Some(runbook.clone()),
        _ => None,
    };
    Some(api::HealingEntry {
        at: now,
        target: target.to_owned(),
        check: record.check.clone(),
        runbook,
        tier: "L1".to_owned(),
        result: result.to_owned(),
        reason,
        evidence_seq: seq,
    })
}

/// The newest status of each check on one device.
pub(crate) fn scores(report: &TargetReport) -> Scores {
    report
        .results
        .iter()
        .map(|result| {
            let status = match result.outcome.status {
                CheckStatus::Pass => compliance::CheckStatus::Pass,
                CheckStatus::Fail => compliance::CheckStatus::Fail,
                CheckStatus::Error => compliance::CheckStatus::Error,
                CheckStatus::Skipped => compliance::CheckStatus::Skipped,
            };
            (result.runbook_id.clone(), status)
        })
        .collect()
}

/// The attestations and exceptions of the evidence log, read once at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accepted {
    pub(crate) attestations: Vec<compliance::Attestation>,
    pub(crate) exceptions: Vec<compliance::Exception>,
}

/// Reads every attestation and exception bundle of the log.
pub(crate) async fn accepted_risks(store: &store::Store) -> anyhow::Result<Accepted> {
    use anyhow::Context as _;
    use futures_util::TryStreamExt as _;
    let period = compliance::Period {
        label: "all".to_owned(),
        start: time::OffsetDateTime::UNIX_EPOCH,
        end: time::OffsetDateTime::now_utc() + time::Duration::days(1),
    };
    let mut ledger = compliance::Ledger::new(period, None);
    let kinds = [
        evidence_schema::KIND_ATTESTATION,
        evidence_schema::KIND_EXCEPTION,
    ];
    let mut lines = std::pin::pin!(store.lines_of_kinds(0..store.size(), &kinds));
    while let Some((seq, line)) = lines
        .try_next()
        .await
        .context("reading attestations and exceptions")?
    {
        ledger
            .add_line(seq, &line)
            .context("reading attestations and exceptions")?;
    }
    Ok(Accepted {
        attestations: ledger.attestations().to_vec(),
        exceptions: ledger.exceptions().to_vec(),
    })
}

/// The framework control catalogues built into the daemon.
///
/// # Panics
/// If the shipped catalogues are broken, which the catalogue's tests rule out.
pub(crate) fn frameworks() -> &'static catalog::Frameworks {
    static FRAMEWORK_CATALOGS: std::sync::OnceLock<catalog::Frameworks> =
        std::sync::OnceLock::new();
    FRAMEWORK_CATALOGS.get_or_init(|| {
        catalog::embedded_frameworks()
            .unwrap_or_else(|errors| panic!("shipped framework catalogues are broken: {errors}"))
    })
}

/// Site-wide compliance per framework, counted per control of the framework's catalogue (HIPAA
/// first): `(label, controls met, controls failing, applicable controls, ‰ met)`.
///
/// Valid attestations meet controls and valid exceptions accept failures, as in `osiris report`;
/// expired ones count no more.
pub(crate) fn site_compliance<'a>(
    catalog: &catalog::Catalog,
    frameworks: &catalog::Frameworks,
    accepted: &Accepted,
    devices: impl Iterator<Item = (&'a String, &'a Scores)>,
) -> Vec<(String, u32, u32, u32, Option<u32>)> {
    let now = time::OffsetDateTime::now_utc();
    let period = compliance::Period {
        label: "now".to_owned(),
        start: time::OffsetDateTime::UNIX_EPOCH,
        end: now,
    };
    let mut ledger = compliance::Ledger::new(period, None);
    for attestation in &accepted.attestations {
        ledger.attest(attestation.clone());
    }
    for exception in &accepted.exceptions {
        ledger.except(exception.clone());
    }
    let mut any = false;
    for (device, scores) in devices {
        for (check, status) in scores {
            any = true;
            ledger.observe(compliance::Observation {
                target: device.clone(),
                check: check.clone(),
                status: *status,
                observed: String::new(),
                reason: String::new(),
                at: now,
                seq: 0,
            });
        }
    }
    FRAMEWORKS
        .iter()
        .filter_map(|f| frameworks.get(*f))
        .map(|framework| {
            let figures = compliance::assess(framework, catalog, &ledger).figures;
            (
                framework.framework.label().to_owned(),
                figures.met,
                figures.failing,
                figures.applicable(),
                figures.permille().filter(|_| any),
            )
        })
        .collect()
}

/// Device counts for status.
pub(crate) fn device_counts<'a>(
    devices: impl Iterator<Item = &'a api::Device>,
) -> api::DeviceCounts {
    let mut counts = api::DeviceCounts::default();
    let mut by_class: BTreeMap<api::DeviceClass, api::ClassCount> = BTreeMap::new();
    for device in devices {
        counts.total += 1;
        let class = by_class.entry(device.class).or_insert(api::ClassCount {
            class: device.class,
            total: 0,
            compliant: 0,
            drifted: 0,
            errored: 0,
        });
        class.total += 1;
        if device.last_scan_at.is_some() {
            counts.checked += 1;
        }
        match device.status {
            api::DeviceStatus::Compliant => {
                counts.compliant += 1;
                class.compliant += 1;
            }
            api::DeviceStatus::Drifted => {
                counts.drifted += 1;
                class.drifted += 1;
            }
            api::DeviceStatus::Error => {
                counts.errored += 1;
                class.errored += 1;
            }
            api::DeviceStatus::Unknown => {}
        }
    }
    counts.by_class = by_class.into_values().collect();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{CheckOutcome, DeviceType, Target};
    use std::time::Duration;
    use time::OffsetDateTime;

    fn report(results: &[(&str, CheckStatus)]) -> TargetReport {
        TargetReport {
            target: Target {
                name: "h1".into(),
                platform: Platform::Linux,
                device_type: DeviceType::Server,
            },
            started: OffsetDateTime::UNIX_EPOCH,
            finished: OffsetDateTime::UNIX_EPOCH + Duration::from_secs(60),
            carried: Default::default(),
            target_cpu: Default::default(),
            results: results
                .iter()
                .map(|(id, status)| scan::CheckResult {
                    runbook_id: (*id).to_owned(),
                    outcome: CheckOutcome {
                        status: *status,
                        observed: serde_json::Value::Null,
                        expected: String::new(),
                        reason: format!("{id} reason"),
                    },
                    elapsed: Duration::ZERO,
                })
                .collect(),
        }
    }

    fn catalog() -> catalog::Catalog {
        catalog::embedded().unwrap()
    }

    #[test]
    fn device_status_follows_the_worst_meaningful_result() {
        let catalog = catalog();
        let linux: Vec<&str> = catalog
            .for_platform(Platform::Linux)
            .map(|rb| rb.id.as_str())
            .take(3)
            .collect();
        let cases = [
            (
                vec![CheckStatus::Pass, CheckStatus::Pass, CheckStatus::Skipped],
                api::DeviceStatus::Compliant,
                0,
            ),
            (
                vec![CheckStatus::Pass, CheckStatus::Fail, CheckStatus::Error],
                api::DeviceStatus::Drifted,
                1,
            ),
            (
                vec![CheckStatus::Error, CheckStatus::Error, CheckStatus::Error],
                api::DeviceStatus::Error,
                0,
            ),
        ];
        for (statuses, want, failing) in cases {
            let results: Vec<(&str, CheckStatus)> = linux
                .iter()
                .copied()
                .zip(statuses.iter().copied())
                .collect();
            let device = device(&catalog, &report(&results), Some("10.0.0.1".into()));
            assert_eq!(device.status, want, "{statuses:?}");
            assert_eq!(device.failing.len(), failing);
            assert_eq!(device.last_scan_at, Some(60));
            assert_eq!(device.error.is_some(), want == api::DeviceStatus::Error);
        }
    }

    #[test]
    fn scans_open_and_resolve_incidents_but_errors_say_nothing() {
        let catalog = catalog();
        let ids: Vec<&str> = catalog
            .for_platform(Platform::Linux)
            .map(|rb| rb.id.as_str())
            .take(3)
            .collect();
        let events = scan_events(
            &catalog,
            &report(&[
                (ids[0], CheckStatus::Fail),
                (ids[1], CheckStatus::Pass),
                (ids[2], CheckStatus::Error),
            ]),
        );
        assert_eq!(events.len(), 2);
        assert!(matches!(events[0].2, Event::Failed { .. }));
        assert_eq!(events[1].2, Event::Passed);
    }

    #[test]
    fn compliance_counts_controls_of_each_framework() {
        let catalog = catalog();
        let frameworks = catalog::embedded_frameworks().unwrap();
        let scores = scores(&report(&[
            ("LIN-SSH-002", CheckStatus::Fail),
            ("LIN-AUDIT-001", CheckStatus::Pass),
        ]));
        let devices = [("web1".to_owned(), scores)];
        let none = Accepted::default();
        let site = site_compliance(
            &catalog,
            &frameworks,
            &none,
            devices.iter().map(|(n, s)| (n, s)),
        );
        let hipaa = &site[0];
        // LIN-AUDIT-001 meets 164.312(b) and 164.308(a)(1)(ii)(D); LIN-SSH-002 fails
        // 164.312(d) and 164.312(a)(2)(i); 61 HIPAA controls apply.
        assert_eq!(hipaa, &("HIPAA".to_owned(), 2, 2, 61, Some(32)));
        let nothing = site_compliance(&catalog, &frameworks, &none, std::iter::empty());
        assert_eq!(nothing[0].4, None);

        // An exception accepts the SSH failure and an attestation meets the risk analysis;
        // once both expire the figures are as before.
        let today = time::OffsetDateTime::now_utc().date();
        let accepted = |expires: time::Date| Accepted {
            attestations: vec![compliance::Attestation {
                framework: Framework::Hipaa,
                control: "164.308(a)(1)(ii)(A)".to_owned(),
                statement: "s".to_owned(),
                by: "Dr. Ada".to_owned(),
                at: time::OffsetDateTime::UNIX_EPOCH,
                expires,
                document: None,
                seq: 1,
            }],
            exceptions: vec![compliance::Exception {
                check: "LIN-SSH-002".to_owned(),
                target: "web1".to_owned(),
                reason: "r".to_owned(),
                compensating: "c".to_owned(),
                owner: "o".to_owned(),
                at: time::OffsetDateTime::UNIX_EPOCH,
                expires,
                seq: 2,
            }],
        };
        let valid = accepted(today + time::Duration::days(30));
        let site = site_compliance(
            &catalog,
            &frameworks,
            &valid,
            devices.iter().map(|(n, s)| (n, s)),
        );
        assert_eq!(site[0], ("HIPAA".to_owned(), 5, 0, 61, Some(81)));
        let expired = accepted(today - time::Duration::days(1));
        let site = site_compliance(
            &catalog,
            &frameworks,
            &expired,
            devices.iter().map(|(n, s)| (n, s)),
        );
        assert_eq!(site[0], ("HIPAA".to_owned(), 2, 2, 61, Some(32)));
    }

    #[test]
    fn the_tally_counts_for_a_person_exactly_what_escalates_an_incident() {
        let results = [
            (
                HealResult::Fixed,
                Tally {
                    fixed: 1,
                    ..Tally::default()
                },
            ),
            (
                HealResult::NotFixed {
                    rolled_back: true,
                    reason: "still failing".into(),
                },
                Tally {
                    for_person: 1,
                    ..Tally::default()
                },
            ),
            (
                HealResult::Escalated {
                    reason: "declarative target".into(),
                },
                Tally {
                    for_person: 1,
                    ..Tally::default()
                },
            ),
            (
                HealResult::NoRule,
                Tally {
                    for_person: 1,
                    ..Tally::default()
                },
            ),
            (
                HealResult::Held {
                    reason: "paused".into(),
                },
                Tally {
                    held: 1,
                    ..Tally::default()
                },
            ),
            (
                HealResult::Planned {
                    runbook: "LIN-SSH-001".into(),
                },
                Tally::default(),
            ),
        ];
        for (result, want) in results {
            let mut tally = Tally::default();
            tally.add(&result);
            assert_eq!(tally, want, "{result:?}");
            let record = HealRecord {
                target: "h1".into(),
                check: "LIN-SSH-001".into(),
                decision: rules::Decision::NoRule,
                before: CheckOutcome {
                    status: CheckStatus::Fail,
                    observed: serde_json::Value::Null,
                    expected: String::new(),
                    reason: String::new(),
                },
                remediation: None,
                after: None,
                rollback: None,
                result,
            };
            let escalates = heal_events(&record)
                .iter()
                .any(|e| matches!(e, Event::Escalated { .. }));
            assert_eq!(want.for_person == 1, escalates, "{:?}", record.result);
        }
    }
}
