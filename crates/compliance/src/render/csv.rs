//! The CSV report: one row per control and check result (RFC 4180 quoting), so a spreadsheet
//! can filter by status, device or check; also the control-to-evidence index of a kit.

use std::fmt::Write as _;

use crate::assess::Assessment;
use crate::ledger::Ledger;
use crate::render::rfc3339;

/// Renders `framework,control,group,kind,status,explanation,check,target,result,observed,passes,fails,bundle,exception_until,attested_by,attested_until,attestation_bundle,period,as_of`.
///
/// The same evidence, framework, period and moment always give the same bytes, so
/// `osiris evidence verify-report` can recompute a report from a kit and compare.
pub fn csv(assessment: &Assessment<'_>, ledger: &Ledger) -> String {
    let mut out = String::from(
        "framework,control,group,kind,status,explanation,check,target,result,observed,passes,fails,bundle,exception_until,attested_by,attested_until,attestation_bundle,period,as_of\r\n",
    );
    let framework = assessment.framework.framework.label();
    let as_of = rfc3339(ledger.until());
    let period = &ledger.period().label;
    for control in &assessment.controls {
        let kind = control.def.kind.map_or("", |k| k.as_str());
        let explanation = control.explanation();
        let (by, until, attestation_seq) = match control.attestation {
            Some(a) => (a.by.clone(), a.expires.to_string(), a.seq.to_string()),
            None => (String::new(), String::new(), String::new()),
        };
        let mut row = |fields: &[&str]| {
            let cells: Vec<String> = fields.iter().map(|f| field(f)).collect();
            let _ = write!(out, "{}\r\n", cells.join(","));
        };
        if control.checks.is_empty() {
            row(&[
                framework,
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
                "",
                "",
                &by,
                &until,
                &attestation_seq,
                period,
                &as_of,
            ]);
        }
        for line in &control.checks {
            let exception_until = line
                .exception
                .map(|e| e.expires.to_string())
                .unwrap_or_default();
            row(&[
                framework,
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
                &line.seq.to_string(),
                &exception_until,
                &by,
                &until,
                &attestation_seq,
                period,
                &as_of,
            ]);
        }
    }
    out
}

/// One RFC 4180 field; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet
/// never runs a host's text as a formula.
fn field(text: &str) -> String {
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
