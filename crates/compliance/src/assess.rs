//! The status of every control of one framework, from the ledger of a period.
//!
//! A control is met when every applicable check behind it passes (or fails under a valid
//! exception) and at least one fully covers it, or when a person's valid attestation says so;
//! failing when any check fails without an exception; partial when its checks pass but only
//! partly cover it and nobody attested the rest; and otherwise needs an attestation, has no
//! evidence, could not be checked, or is not applicable.

use catalog::{Catalog, ControlDef, FrameworkCatalog};

use crate::ledger::{Attestation, CheckStatus, Exception, Incident, Ledger, Week};

/// What is known about one control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ControlStatus {
    /// A check behind it fails and no exception covers the failure.
    Failing,
    /// Its checks could not run (errors only).
    CouldNotCheck,
    /// Checks cover it but produced no result in the period.
    NoEvidence,
    /// Its checks pass but cover only part of it; the rest needs an attestation.
    Partial,
    /// No check covers it and no valid attestation exists.
    NeedsAttestation,
    Met,
    NotApplicable,
}

/// One check on one target behind a control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine<'a> {
    pub check: &'a str,
    pub target: &'a str,
    pub status: CheckStatus,
    pub observed: &'a str,
    pub reason: &'a str,
    /// The bundle with the newest result.
    pub seq: u64,
    /// Passing and failing results over the period.
    pub passes: u32,
    pub fails: u32,
    /// A valid exception that accepts this failure.
    pub exception: Option<&'a Exception>,
    /// An exception that expired, so the failure counts again.
    pub expired_exception: Option<&'a Exception>,
    /// The open incident behind a failing result (escalated to a person, still failing).
    pub incident: Option<&'a Incident>,
}

/// One control with its status and everything behind it.
#[derive(Debug, Clone)]
pub struct ControlAssessment<'a> {
    pub def: &'a ControlDef,
    pub status: ControlStatus,
    /// The runbooks mapped to it, with the reason when the mapping is partial.
    pub runbooks: Vec<(&'a str, Option<&'a str>)>,
    pub checks: Vec<CheckLine<'a>>,
    /// The newest valid attestation.
    pub attestation: Option<&'a Attestation>,
    /// The newest attestation that had expired, when no valid one exists.
    pub expired_attestation: Option<&'a Attestation>,
    /// Its checks' passing and failing results per week of the period, up to the moment
    /// described (empty weeks have no results; a control without checks has all weeks empty).
    pub trend: Vec<Week>,
}

/// Counts of controls by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub total: u32,
    pub met: u32,
    pub failing: u32,
    pub partial: u32,
    pub needs_attestation: u32,
    pub no_evidence: u32,
    pub could_not_check: u32,
    pub not_applicable: u32,
}

/// One framework, control by control.
#[derive(Debug, Clone)]
pub struct Assessment<'a> {
    pub framework: &'a FrameworkCatalog,
    pub controls: Vec<ControlAssessment<'a>>,
    pub figures: Figures,
}

/// Assesses every control of `framework` from the ledger, using the runbook mappings of `catalog`.
pub fn assess<'a>(
    framework: &'a FrameworkCatalog,
    catalog: &'a Catalog,
    ledger: &'a Ledger,
) -> Assessment<'a> {
    let day = ledger.until().date();
    let mut controls = Vec::with_capacity(framework.controls.len());
    let mut figures = Figures::default();
    // A cloud platform's checks count only for a site that scans such a tenant (some check of
    // that platform has a result in the period); elsewhere their controls stay as they were.
    let cloud_seen: std::collections::BTreeSet<model::Platform> = catalog
        .runbooks()
        .iter()
        .filter(|rb| ledger.latest_of(&rb.id).next().is_some())
        .flat_map(|rb| rb.platforms.iter().copied().filter(|p| p.is_cloud()))
        .collect();
    let counts = |rb: &model::Runbook| {
        rb.platforms
            .iter()
            .any(|p| !p.is_cloud() || cloud_seen.contains(p))
    };
    for def in &framework.controls {
        let runbooks: Vec<(&str, Option<&str>)> = catalog
            .runbooks()
            .iter()
            .filter(|rb| counts(rb))
            .flat_map(|rb| {
                rb.controls
                    .iter()
                    .filter(|c| c.framework == framework.framework && c.id == def.id)
                    .map(move |c| (rb.id.as_str(), c.partial.as_deref()))
            })
            .collect();
        let mut checks = Vec::new();
        let mut trend = ledger.weeks();
        for (check, _) in &runbooks {
            for observation in ledger.latest_of(check) {
                if observation.status == CheckStatus::Skipped {
                    continue;
                }
                let (passes, fails) = ledger.counts(&observation.target, check);
                let weekly = ledger.weekly_counts(&observation.target, check);
                for (week, (p, f)) in trend.iter_mut().zip(weekly) {
                    week.passes += p;
                    week.fails += f;
                }
                let failing = observation.status == CheckStatus::Fail;
                checks.push(CheckLine {
                    check: observation.check.as_str(),
                    target: observation.target.as_str(),
                    status: observation.status,
                    observed: observation.observed.as_str(),
                    reason: observation.reason.as_str(),
                    seq: observation.seq,
                    passes,
                    fails,
                    exception: failing
                        .then(|| ledger.exception_for(check, &observation.target))
                        .flatten(),
                    expired_exception: failing
                        .then(|| ledger.expired_exception_for(check, &observation.target))
                        .flatten(),
                    incident: ledger.open_incident_for(check, &observation.target),
                });
            }
        }
        let of_control =
            |a: &&Attestation| a.framework == framework.framework && a.control == def.id;
        let attestation = ledger
            .attestations()
            .iter()
            .rev()
            .filter(of_control)
            .find(|a| a.expires >= day);
        let expired_attestation = match attestation {
            Some(_) => None,
            None => ledger.attestations().iter().rev().find(of_control),
        };
        let status = status(def, &runbooks, &checks, attestation.is_some());
        figures.total += 1;
        match status {
            ControlStatus::Met => figures.met += 1,
            ControlStatus::Failing => figures.failing += 1,
            ControlStatus::Partial => figures.partial += 1,
            ControlStatus::NeedsAttestation => figures.needs_attestation += 1,
            ControlStatus::NoEvidence => figures.no_evidence += 1,
            ControlStatus::CouldNotCheck => figures.could_not_check += 1,
            ControlStatus::NotApplicable => figures.not_applicable += 1,
        }
        controls.push(ControlAssessment {
            def,
            status,
            runbooks,
            checks,
            attestation,
            expired_attestation,
            trend,
        });
    }
    Assessment {
        framework,
        controls,
        figures,
    }
}

impl ControlStatus {
    /// The words a practice owner reads.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlStatus::Met => "met",
            ControlStatus::Failing => "failing",
            ControlStatus::Partial => "partly checked",
            ControlStatus::NeedsAttestation => "needs attestation",
            ControlStatus::NoEvidence => "no evidence",
            ControlStatus::CouldNotCheck => "could not check",
            ControlStatus::NotApplicable => "not applicable",
        }
    }
}

impl Figures {
    /// Controls that apply (all but the not-applicable ones).
    pub fn applicable(&self) -> u32 {
        self.total - self.not_applicable
    }

    /// Met controls per applicable control, in tenths of a percent; `None` if none applies.
    pub fn permille(&self) -> Option<u32> {
        let applicable = self.applicable();
        (applicable > 0).then(|| self.met * 1000 / applicable)
    }
}

impl ControlAssessment<'_> {
    /// The open incidents behind it in words (`LIN-SSH-002 on web1: escalated 2026-11-04 (…),
    /// bundle #12`), one per failing check result with an open incident.
    pub fn incidents(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|c| c.incident)
            .map(incident_text)
            .collect()
    }
    /// The trend in words: each week's share of passing results (`1–7 Nov 2026: 96 % of 25`),
    /// or `no results` for a week without any; empty when no check covers the control.
    pub fn trend_text(&self) -> String {
        if self.runbooks.is_empty() {
            return String::new();
        }
        self.trend
            .iter()
            .map(|w| {
                let span = format!("{}–{}", w.first, w.last);
                match w.pass_percent() {
                    Some(pct) => format!("{span}: {pct} % pass of {}", w.passes + w.fails),
                    None => format!("{span}: no results"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// One sentence on why the control has its status.
    pub fn explanation(&self) -> String {
        let failing = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail && c.exception.is_none())
            .count();
        let targets = {
            let mut targets: Vec<&str> = self.checks.iter().map(|c| c.target).collect();
            targets.sort_unstable();
            targets.dedup();
            targets.len()
        };
        match self.status {
            ControlStatus::NotApplicable => self.def.not_applicable.clone().unwrap_or_default(),
            ControlStatus::Failing => {
                format!("{failing} check result(s) fail on {targets} device(s) checked")
            }
            ControlStatus::CouldNotCheck => "its checks could not run in this period".to_owned(),
            ControlStatus::NoEvidence => {
                "checks cover it, but none ran in this period: no status is claimed".to_owned()
            }
            ControlStatus::Partial => {
                let gaps: Vec<&str> = self
                    .runbooks
                    .iter()
                    .filter(|(id, _)| self.checks.iter().any(|c| c.check == *id))
                    .filter_map(|(_, p)| *p)
                    .collect();
                format!(
                    "its checks pass on {targets} device(s) but cover it only in part ({}); a person's attestation must cover the rest",
                    gaps.join("; ")
                )
            }
            ControlStatus::NeedsAttestation => match self.expired_attestation {
                Some(expired) => format!(
                    "no check covers it; the attestation by {} expired on {}",
                    expired.by, expired.expires
                ),
                None => "no check covers it; a person must attest it (osiris attest)".to_owned(),
            },
            ControlStatus::Met => match (self.attestation, self.checks.is_empty()) {
                (Some(a), true) => format!("attested by {} until {}", a.by, a.expires),
                (Some(a), false) => format!(
                    "checks pass on {targets} device(s); attested by {} until {}",
                    a.by, a.expires
                ),
                (None, _) => {
                    let accepted = self.checks.iter().filter(|c| c.exception.is_some()).count();
                    if accepted > 0 {
                        format!(
                            "checks pass on {targets} device(s); {accepted} failure(s) accepted by exception"
                        )
                    } else {
                        format!("checks pass on {targets} device(s)")
                    }
                }
            },
        }
    }
}

fn status(
    def: &ControlDef,
    runbooks: &[(&str, Option<&str>)],
    checks: &[CheckLine<'_>],
    attested: bool,
) -> ControlStatus {
    if def.not_applicable.is_some() {
        return ControlStatus::NotApplicable;
    }
    if runbooks.is_empty() {
        return if attested {
            ControlStatus::Met
        } else {
            ControlStatus::NeedsAttestation
        };
    }
    let failing = checks
        .iter()
        .any(|c| c.status == CheckStatus::Fail && c.exception.is_none());
    if failing {
        return ControlStatus::Failing;
    }
    let holding: Vec<&CheckLine<'_>> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Pass || c.exception.is_some())
        .collect();
    // Fully covered only if a check whose mapping is not partial produced a holding result.
    let fully_covered = holding.iter().any(|c| {
        runbooks
            .iter()
            .any(|(id, partial)| *id == c.check && partial.is_none())
    });
    if !holding.is_empty() {
        return if fully_covered || attested {
            ControlStatus::Met
        } else {
            ControlStatus::Partial
        };
    }
    if attested {
        return ControlStatus::Met;
    }
    if checks.iter().any(|c| c.status == CheckStatus::Error) {
        ControlStatus::CouldNotCheck
    } else {
        ControlStatus::NoEvidence
    }
}

/// One open incident in words.
pub(crate) fn incident_text(incident: &Incident) -> String {
    format!(
        "{} on {}: escalated {} ({}), bundle #{}",
        incident.check,
        incident.target,
        incident.at.date(),
        incident.reason,
        incident.seq
    )
}
