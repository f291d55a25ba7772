//! Writers of an assessment: HTML for people, CSV for spreadsheets, OSCAL for tools.

mod csv;
mod html;
mod index;
pub mod oscal;
mod pdf;
pub mod stamp;

pub use csv::{CSV_HEADER, csv, parse_records};
pub use html::{esc as escape_html, html};
pub use index::{INDEX_HEADER, evidence_index};
pub use pdf::pdf;
pub use stamp::{STAMP_MARKER, Stamp, StampError};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::assess::{Assessment, ControlAssessment, ControlStatus};
use crate::ledger::Ledger;
use crate::proofs::{ConsistencyProof, Proofs};

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
    /// Auditor samples: the assessment of the same framework as of each sample moment, with its
    /// ledger (every format has a section, rows or observations for each).
    pub samples: &'a [(&'a Assessment<'a>, &'a Ledger)],
    /// The inclusion proofs of the cited bundles and the `--as-of` consistency proof.
    pub proofs: &'a Proofs,
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

/// The bundles behind a control at an auditor sample moment (check results and attestation).
pub(crate) fn sample_bundles(control: &ControlAssessment<'_>) -> Vec<u64> {
    let mut bundles: Vec<u64> = control.checks.iter().map(|c| c.seq).collect();
    bundles.extend(control.attestation.map(|a| a.seq));
    bundles.sort_unstable();
    bundles.dedup();
    bundles
}

/// The devices behind a control at an auditor sample moment, sorted.
pub(crate) fn sample_devices<'a>(control: &ControlAssessment<'a>) -> Vec<&'a str> {
    let mut devices: Vec<&str> = control.checks.iter().map(|c| c.target).collect();
    devices.sort_unstable();
    devices.dedup();
    devices
}

/// What the appendices say about the proofs, before the list of inclusion proofs.
pub(crate) fn proofs_intro(proofs: &Proofs) -> String {
    let mut res = format!(
        "Inclusion proofs (RFC 9162) of the {} cited bundle(s) to the checkpoint of {} bundles: bundle, leaf hash (SHA-256 of 0x00 and the bundle's line), audit path from the leaf up, in hex.",
        proofs.inclusion.len(),
        proofs.tree_size
    );
    if !proofs.uncovered.is_empty() {
        let seqs: Vec<String> = proofs.uncovered.iter().map(|s| format!("#{s}")).collect();
        res.push_str(&format!(
            " Sealed after that checkpoint, so not proven yet: {}.",
            seqs.join(", ")
        ));
    }
    res
}

/// The `--as-of` consistency proof in words and hex.
pub(crate) fn consistency_text(proof: &ConsistencyProof) -> String {
    format!(
        "Consistency proof (RFC 9162) from the checkpoint of {} bundles signed {} (the newest at the moment described) to the {}checkpoint of {} bundles: {}. It shows that the log this report was made from extends, unchanged, the log as it was signed then.",
        proof.from.0,
        proof.from_signed_at,
        if proof.to_anchored {
            "Bitcoin-anchored "
        } else {
            ""
        },
        proof.to.0,
        if proof.path.is_empty() {
            "empty (same tree)".to_owned()
        } else {
            proof.path.join("/")
        }
    )
}
