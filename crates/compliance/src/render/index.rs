//! The auditor kit's control-to-evidence index: for each framework control, its status and each
//! check result behind it (device, bundle seq, SHA-256 of the bundle's line), as CSV and as the
//! HTML section of the kit's manifest (every value escaped).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::assess::Assessment;
use crate::render::csv::field;
use crate::render::html::esc;

/// The index's CSV header (without its line end).
pub const INDEX_HEADER: &str = "framework,control,status,check,device,bundle_seq,bundle_sha256";

/// The index of `assessments` as CSV and as an HTML section; `line_sha256` gives the hex SHA-256
/// of each cited bundle's line (`sha256sum` of that line of bundles.jsonl, without its newline).
pub fn evidence_index(
    assessments: &[&Assessment<'_>],
    line_sha256: &BTreeMap<u64, String>,
) -> (String, String) {
    let mut csv = format!("{INDEX_HEADER}\r\n");
    let mut html = String::from(
        "<h2>Control-to-evidence index</h2>\n<table class=\"index\"><thead><tr><th>Framework</th><th>Control</th><th>Status</th><th>Check</th><th>Device</th><th>Bundle</th><th>Bundle SHA-256</th></tr></thead><tbody>\n",
    );
    for assessment in assessments {
        let framework = assessment.framework.framework.label();
        for control in &assessment.controls {
            let mut rows: Vec<(&str, &str, Option<u64>)> = control
                .checks
                .iter()
                .map(|line| (line.check, line.target, Some(line.seq)))
                .collect();
            if let Some(a) = control.attestation {
                rows.push(("attestation", "", Some(a.seq)));
            }
            if rows.is_empty() {
                rows.push(("", "", None));
            }
            for (check, device, seq) in rows {
                let seq_text = seq.map(|s| s.to_string()).unwrap_or_default();
                let hash = seq
                    .and_then(|s| line_sha256.get(&s))
                    .map_or("", String::as_str);
                let cells = [
                    framework,
                    &control.def.id,
                    control.status.as_str(),
                    check,
                    device,
                    &seq_text,
                    hash,
                ];
                let fields: Vec<String> = cells.iter().map(|c| field(c)).collect();
                let _ = write!(csv, "{}\r\n", fields.join(","));
                let cells: Vec<String> = cells
                    .iter()
                    .map(|c| format!("<td>{}</td>", esc(c)))
                    .collect();
                let _ = writeln!(html, "<tr>{}</tr>", cells.concat());
            }
        }
    }
    html.push_str("</tbody></table>\n");
    (csv, html)
}
