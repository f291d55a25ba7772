//! `osiris evidence verify-report REPORT KIT`: the kit verifies, and the report — CSV, HTML, PDF or
//! OSCAL — is exactly what the kit's bundles give. A CSV report names its framework, period and
//! moment in every row; the other formats carry a stamp (`compliance::render::Stamp`) with those
//! and the context they were made in, so the report is made again from the kit and compared whole.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use compliance::render::Stamp;
use compliance::{Ledger, Period};
use model::Framework;

use crate::setup;

/// What a report file is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Html,
    Pdf,
    Oscal,
}

impl Format {
    fn detect(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"%PDF-") {
            Some(Format::Pdf)
        } else if bytes.starts_with(b"<!DOCTYPE html>") {
            Some(Format::Html)
        } else if bytes.starts_with(b"{") {
            Some(Format::Oscal)
        } else if bytes.starts_with(b"framework,") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// `osiris evidence verify-report`: exit 0 when the kit verifies and the report is what it gives,
/// 1 when not (with the first difference), 3 when it agrees but no key was pinned.
pub(crate) fn verify_report(
    report: &Path,
    kit: &Path,
    pinned_key: Option<evidence::VerifierKey>,
    trust_kit_key: bool,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(report).with_context(|| format!("reading {}", report.display()))?;
    let Some(format) = Format::detect(&bytes) else {
        anyhow::bail!(
            "{} is not a report osiris writes (CSV, HTML, PDF or OSCAL JSON from `osiris report`)",
            report.display()
        );
    };
    let mut out = std::io::stdout().lock();
    let pinned = pinned_key.is_some();
    let kit_report = evidence::kit::verify(
        kit,
        &evidence::kit::VerifyOptions {
            pinned_key,
            block_headers: std::collections::BTreeMap::new(),
            witness: None,
        },
    );
    if !kit_report.problems.is_empty() {
        for problem in &kit_report.problems {
            writeln!(out, "kit: {problem}")?;
        }
        writeln!(
            out,
            "FAILED: the kit does not verify, so the report cannot be checked against it"
        )?;
        return Ok(ExitCode::FAILURE);
    }
    let bundles_path = kit.join("bundles.jsonl");
    let bundles = std::fs::read_to_string(&bundles_path)
        .with_context(|| format!("reading {}", bundles_path.display()))?;
    let runbooks = setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    let (framework, period, as_of, stamp) = match format {
        Format::Csv => {
            let (framework, period, as_of) = csv_header(report, &bytes)?;
            (framework, period, as_of, None)
        }
        _ => {
            let stamp =
                Stamp::find(&bytes).with_context(|| format!("reading {}", report.display()))?;
            if let Some(problem) = checkpoint_problem(&stamp, kit) {
                writeln!(out, "FAILED: {problem}")?;
                return Ok(ExitCode::FAILURE);
            }
            let framework = Framework::from_cli_name(&stamp.framework).map_err(|_| {
                anyhow::anyhow!(
                    "{}: unknown framework `{}` in the stamp",
                    report.display(),
                    stamp.framework
                )
            })?;
            let period = Period::month(&stamp.period)?;
            let as_of = stamp.as_of()?;
            (framework, period, as_of, Some(stamp))
        }
    };
    let catalog = frameworks
        .get(framework)
        .context("framework without a catalogue")?;
    let ledger = kit_ledger(&bundles, &bundles_path, period.clone(), as_of)?;
    let assessment = compliance::assess(catalog, &runbooks, &ledger);
    let difference = match (format, &stamp) {
        (Format::Csv, _) | (_, None) => text_difference(
            &String::from_utf8_lossy(&bytes),
            &compliance::render::csv(&assessment, &ledger),
        ),
        (Format::Html, Some(stamp)) => {
            let samples = stamp
                .sample_moments()?
                .into_iter()
                .map(|at| kit_ledger(&bundles, &bundles_path, period.clone(), at))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let sample_assessments: Vec<_> = samples
                .iter()
                .map(|l| compliance::assess(catalog, &runbooks, l))
                .collect();
            let pairs: Vec<_> = sample_assessments.iter().zip(&samples).collect();
            let expected = compliance::render::html_with_samples(
                &assessment,
                &ledger,
                &stamp.context()?,
                &pairs,
            );
            text_difference(&String::from_utf8_lossy(&bytes), &expected)
        }
        (Format::Pdf, Some(stamp)) => byte_difference(
            &bytes,
            &compliance::render::pdf(&assessment, &ledger, &stamp.context()?),
        ),
        (Format::Oscal, Some(stamp)) => {
            let cx = stamp.context()?;
            let found: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not JSON", report.display()))?;
            let expected = if found.get("plan-of-action-and-milestones").is_some() {
                compliance::render::oscal::poam(&assessment, &ledger, &cx)
            } else {
                compliance::render::oscal::assessment_results(&assessment, &ledger, &cx)
            };
            json_difference("$", &found, &expected)
        }
    };
    if let Some(difference) = difference {
        writeln!(
            out,
            "FAILED: {} is not what the kit's evidence gives for {} {} as of {}: {difference}",
            report.display(),
            catalog.name,
            period.label,
            as_of.format(&Rfc3339).unwrap_or_default()
        )?;
        return Ok(ExitCode::FAILURE);
    }
    writeln!(
        out,
        "report matches the kit: {} {} as of {} ({} controls{}) recomputed from {} bundles{}",
        catalog.name,
        period.label,
        as_of.format(&Rfc3339).unwrap_or_default(),
        assessment.controls.len(),
        match format {
            Format::Csv => ", CSV".to_owned(),
            Format::Html => ", HTML".to_owned(),
            Format::Pdf => ", PDF".to_owned(),
            Format::Oscal => ", OSCAL".to_owned(),
        },
        bundles.lines().count(),
        if pinned {
            ", signed by the pinned key"
        } else {
            ""
        }
    )?;
    if !pinned && !trust_kit_key {
        writeln!(
            out,
            "UNPINNED: pass --key to require the appliance key (or --trust-kit-key)"
        )?;
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// The framework, period and moment a CSV report's first row names.
fn csv_header(report: &Path, bytes: &[u8]) -> anyhow::Result<(Framework, Period, OffsetDateTime)> {
    let text = String::from_utf8_lossy(bytes);
    let Some(first) = text.lines().nth(1) else {
        anyhow::bail!(
            "{} has no rows: is it a CSV report (osiris report --format csv)?",
            report.display()
        );
    };
    let cells: Vec<&str> = first.split(',').collect();
    let (Some(label), Some(as_of), Some(period)) = (
        cells.first(),
        cells.last(),
        cells.len().checked_sub(2).and_then(|i| cells.get(i)),
    ) else {
        anyhow::bail!("{} is not a CSV report", report.display());
    };
    let framework = Framework::ALL
        .into_iter()
        .find(|f| f.label() == *label)
        .ok_or_else(|| anyhow::anyhow!("{}: unknown framework `{label}`", report.display()))?;
    let period = Period::month(period)?;
    let as_of = OffsetDateTime::parse(as_of.trim(), &Rfc3339)
        .with_context(|| format!("{}: as_of `{as_of}`", report.display()))?;
    Ok((framework, period, as_of))
}

/// The state the kit's bundles give for a period at a moment.
fn kit_ledger(
    bundles: &str,
    bundles_path: &Path,
    period: Period,
    as_of: OffsetDateTime,
) -> anyhow::Result<Ledger> {
    let mut ledger = Ledger::new(period, Some(as_of));
    for (seq, line) in bundles.lines().enumerate() {
        ledger
            .add_line(seq as u64, line.as_bytes())
            .with_context(|| format!("reading {}", bundles_path.display()))?;
    }
    Ok(ledger)
}

/// Why the checkpoint a stamped report cites does not hold in the kit, if it does not.
fn checkpoint_problem(stamp: &Stamp, kit: &Path) -> Option<String> {
    let (size, note) = stamp.checkpoint.as_ref()?;
    let path = kit.join(format!("checkpoints/{size:012}.txt"));
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim_end() == note.trim_end() => {
            (note.lines().next() != Some(stamp.origin.as_str())).then(|| {
                format!(
                    "the report names the log `{}`, but its checkpoint is of `{}`",
                    stamp.origin,
                    note.lines().next().unwrap_or_default()
                )
            })
        }
        Ok(_) => Some(format!(
            "the report cites a checkpoint of {size} bundles that differs from the kit's {}",
            path.display()
        )),
        Err(_) => Some(format!(
            "the report cites a checkpoint of {size} bundles that the kit does not hold: export a kit that covers it (osiris evidence export)"
        )),
    }
}

/// The first line that differs, or `None`.
fn text_difference(found: &str, expected: &str) -> Option<String> {
    if found == expected {
        return None;
    }
    let (n, (a, b)) = found
        .split('\n')
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(
            expected
                .split('\n')
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .enumerate()
        .find(|(_, (a, b))| a != b)?;
    let show = |line: Option<&str>| {
        line.map_or("(no line)".to_owned(), |l| clip(l.trim_end_matches('\r')))
    };
    Some(format!(
        "line {} differs\n  report: {}\n  kit:    {}",
        n + 1,
        show(a),
        show(b)
    ))
}

/// Where two byte strings part, or `None`.
fn byte_difference(found: &[u8], expected: &[u8]) -> Option<String> {
    if found == expected {
        return None;
    }
    let at = found
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(expected.len()));
    Some(format!(
        "the PDF differs from byte {at} on (the report has {} bytes, the kit's evidence gives {}): it was edited, or made from other evidence",
        found.len(),
        expected.len()
    ))
}

/// The first JSON path at which two documents differ, or `None`.
fn json_difference(
    path: &str,
    found: &serde_json::Value,
    expected: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (found, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, b_value) in b {
                let at = format!("{path}.{key}");
                match a.get(key) {
                    Some(a_value) => {
                        if let Some(d) = json_difference(&at, a_value, b_value) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{at} is missing from the report")),
                }
            }
            a.keys()
                .find(|key| !b.contains_key(*key))
                .map(|key| format!("{path}.{key} is in the report but not in the kit's evidence"))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (a_value, b_value)) in a.iter().zip(b).enumerate() {
                if let Some(d) = json_difference(&format!("{path}[{i}]"), a_value, b_value) {
                    return Some(d);
                }
            }
            (a.len() != b.len()).then(|| {
                format!(
                    "{path} has {} entries in the report, {} in the kit's evidence",
                    a.len(),
                    b.len()
                )
            })
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{path} differs\n  report: {}\n  kit:    {}",
            clip(&a.to_string()),
            clip(&b.to_string())
        )),
    }
}

/// At most 300 characters of a line, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
