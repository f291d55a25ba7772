//! Writers of an assessment: HTML for people, CSV for spreadsheets, OSCAL for tools.

mod csv;
mod html;
pub mod oscal;
mod pdf;
pub mod stamp;

pub use csv::csv;
pub use html::{html, html_with_samples};
pub use pdf::pdf;
pub use stamp::{STAMP_MARKER, Stamp, StampError};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::assess::{Assessment, ControlStatus};
use crate::ledger::Ledger;

/// What every report states about where it comes from.
#[derive(Debug, Clone)]
pub struct ReportContext<'a> {
    /// Site id from the configuration.
    pub site: &'a str,
    /// The appliance's log origin (C2SP checkpoint origin line).
    pub origin: &'a str,
    /// Hex id of the appliance signing key.
    pub key_id: &'a str,
    /// Runbook catalogue version and framework catalogue version.
    pub catalog_version: &'a str,
    pub frameworks_version: &'a str,
    /// When the report was made.
    pub generated_at: OffsetDateTime,
    /// The newest checkpoint covering the evidence: `(tree size, signed note)`.
    pub checkpoint: Option<(u64, &'a str)>,
    /// The version of osiris that made it.
    pub tool_version: &'a str,
}

/// The practice owner's summary in plain words (a few sentences).
pub fn summary_sentences(assessment: &Assessment<'_>, ledger: &Ledger) -> Vec<String> {
    let f = &assessment.figures;
    let name = &assessment.framework.name;
    let mut res = Vec::new();
    if !ledger.has_results() {
        res.push(format!(
            "No scan evidence was recorded in {}{}: this report claims no status for the {} controls that checks cover.",
            ledger.period().label,
            if ledger.until() < ledger.period().end {
                format!(" up to {}", rfc3339(ledger.until()))
            } else {
                String::new()
            },
            f.no_evidence
        ));
    } else {
        res.push(format!(
            "In {} the appliance checked {} device(s) in {} scan(s){}.",
            ledger.period().label,
            ledger.targets().len(),
            ledger.scans_in_period(),
            match ledger.agent_results_in_period() {
                0 => String::new(),
                n => format!(" and received {n} result(s) from endpoint agents"),
            }
        ));
    }
    res.push(format!(
        "Of the {} {name} controls that apply to the practice, {} are met{}.",
        f.applicable(),
        f.met,
        match f.permille() {
            Some(p) => format!(" ({}.{} %)", p / 10, p % 10),
            None => String::new(),
        }
    ));
    if f.failing > 0 {
        res.push(format!(
            "{} control(s) fail: a check behind each found a problem on at least one device; the list below says which and where.",
            f.failing
        ));
    } else if ledger.has_results() {
        res.push("No control fails a check.".to_owned());
    }
    if f.needs_attestation + f.partial > 0 {
        res.push(format!(
            "{} control(s) are about policies, people or paperwork that no scan can see (or that checks cover only in part): they count as met only when a person attests them with `osiris attest`.",
            f.needs_attestation + f.partial
        ));
    }
    if f.could_not_check + f.no_evidence > 0 && ledger.has_results() {
        res.push(format!(
            "{} control(s) have checks that did not produce a result in this period (no matching device, or the check could not run): no status is claimed for them.",
            f.could_not_check + f.no_evidence
        ));
    }
    let exceptions = assessment
        .controls
        .iter()
        .flat_map(|c| &c.checks)
        .filter(|c| c.exception.is_some())
        .count();
    if exceptions > 0 {
        res.push(format!(
            "{exceptions} failing result(s) are accepted risks under a signed exception that has not expired."
        ));
    }
    res.push(format!(
        "{} control(s) do not apply to a medical practice; each says why.",
        f.not_applicable
    ));
    res
}

/// Status order for the "needs action" part of a summary.
pub(crate) fn needs_action(status: ControlStatus) -> bool {
    matches!(
        status,
        ControlStatus::Failing | ControlStatus::Partial | ControlStatus::NeedsAttestation
    )
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}
