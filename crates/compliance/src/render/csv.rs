//! The CSV report: one row per control and check result (RFC 4180 quoting), so a spreadsheet
//! can filter by status, device or check; each row carries the inclusion proofs of the bundles
//! it cites, and each auditor sample moment adds its own rows.

use std::fmt::Write as _;

use crate::assess::{Assessment, ControlAssessment};
use crate::ledger::Ledger;
use crate::render::{ReportContext, rfc3339};

/// The header row (without its line end).
pub const CSV_HEADER: &str = "framework,control,group,kind,status,explanation,check,target,result,observed,passes,fails,trend,bundle,exception_until,open_incident,attested_by,attested_until,attestation_bundle,proofs,sample_date,period,as_of";

/// Renders one row per control and check result of the report's moment, then the same rows for
/// each auditor sample moment (`sample_date` set, `passes`/`fails` counted up to that moment).
///
/// `proofs`: the inclusion proof of each bundle the row cites (`#SEQ@SIZE LEAF PATH/…`,
/// separated by `; `; see `InclusionProof::text`). The same evidence, framework, period, moment, samples
/// and checkpoint always give the same bytes, so `osiris evidence verify-report` can recompute a
/// report from a kit and compare.
pub fn csv(assessment: &Assessment<'_>, ledger: &Ledger, cx: &ReportContext<'_>) -> String {
    let mut out = format!("{CSV_HEADER}\r\n");
    let as_of = rfc3339(ledger.until());
    let rows = Rows {
        framework: assessment.framework.framework.label(),
        period: &ledger.period().label,
        as_of: &as_of,
        cx,
    };
    for control in &assessment.controls {
        rows.control(&mut out, control, "");
    }
    for (sample, sample_ledger) in cx.samples {
        let at = rfc3339(sample_ledger.until());
        for control in &sample.controls {
            rows.control(&mut out, control, &at);
        }
    }
    out
}

struct Rows<'a> {
    framework: &'a str,
    period: &'a str,
    as_of: &'a str,
    cx: &'a ReportContext<'a>,
}

impl Rows<'_> {
    fn control(&self, out: &mut String, control: &ControlAssessment<'_>, sample_date: &str) {
        let kind = control.def.kind.map_or("", |k| k.as_str());
        let explanation = control.explanation();
        let (by, until, attestation_seq) = match control.attestation {
            Some(a) => (a.by.clone(), a.expires.to_string(), a.seq.to_string()),
            None => (String::new(), String::new(), String::new()),
        };
        let proofs_of = |seqs: &[Option<u64>]| -> String {
            if self.cx.checkpoint.is_none() {
                return String::new();
            }
            let texts: Vec<String> = seqs
                .iter()
                .flatten()
                .map(|seq| self.cx.proofs.text_of(*seq))
                .collect();
            texts.join("; ")
        };
        let mut row = |fields: &[&str]| {
            let cells: Vec<String> = fields.iter().map(|f| field(f)).collect();
            let _ = write!(out, "{}\r\n", cells.join(","));
        };
        let attestation = control.attestation.map(|a| a.seq);
        let trend = control.trend_text();
        if control.checks.is_empty() {
            row(&[
                self.framework,
                &control.def.id,
                &control.def.group,
                kind,
                control.status.as_str(),
                &explanation,
                "",
                "",
                "",
                "",
                "",
                "",
                &trend,
                "",
                "",
                "",
                &by,
                &until,
                &attestation_seq,
                &proofs_of(&[attestation]),
                sample_date,
                self.period,
                self.as_of,
            ]);
        }
        for line in &control.checks {
            let exception_until = line
                .exception
                .map(|e| e.expires.to_string())
                .unwrap_or_default();
            row(&[
                self.framework,
                &control.def.id,
                &control.def.group,
                kind,
                control.status.as_str(),
                &explanation,
                line.check,
                line.target,
                line.status.as_str(),
                line.observed,
                &line.passes.to_string(),
                &line.fails.to_string(),
                &trend,
                &line.seq.to_string(),
                &exception_until,
                &line
                    .incident
                    .map(crate::assess::incident_text)
                    .unwrap_or_default(),
                &by,
                &until,
                &attestation_seq,
                &proofs_of(&[
                    Some(line.seq),
                    line.exception.map(|e| e.seq),
                    line.incident.map(|i| i.seq),
                    attestation,
                ]),
                sample_date,
                self.period,
                self.as_of,
            ]);
        }
    }
}

/// One RFC 4180 field; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet
/// never runs a host's text as a formula.
pub(crate) fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Splits RFC 4180 text into records of fields (quoted fields may hold commas, quotes and line
/// breaks); the reverse of what [`csv`] writes, for checking a report.
pub fn parse_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        records.push(record);
    }
    records
}
