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
    let mut tree = evidence::MerkleTree::new();
    for line in bundles.lines() {
        tree.push(evidence::leaf_hash(line.as_bytes()));
    }
    let runbooks = setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let (framework, period, as_of, stamp, csv_claims) = match format {
        Format::Csv => {
            let (framework, period, as_of) = csv_header(report, &bytes)?;
            let claims = csv_claims(&text)?;
            (framework, period, as_of, None, Some(claims))
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
            (framework, period, as_of, Some(stamp), None)
        }
    };
    // Every proof the report carries must hold against the kit's own checkpoints.
    let proof_problems = match (&stamp, &csv_claims) {
        (Some(stamp), _) => stamp_proof_problems(stamp, kit, &tree),
        (None, Some(claims)) => claims
            .proofs
            .iter()
            .filter_map(|(row, proof, size)| {
                inclusion_problem(proof, *size, kit, &tree).map(|p| format!("row {row}: {p}"))
            })
            .collect(),
        (None, None) => Vec::new(),
    };
    if !proof_problems.is_empty() {
        for problem in &proof_problems {
            writeln!(out, "proof: {problem}")?;
        }
        writeln!(
            out,
            "FAILED: {} proof(s) in {} do not hold against the kit's checkpoints",
            proof_problems.len(),
            report.display()
        )?;
        return Ok(ExitCode::FAILURE);
    }
    let catalog = frameworks
        .get(framework)
        .context("framework without a catalogue")?;
    let ledger = kit_ledger(&bundles, &bundles_path, period.clone(), as_of)?;
    let assessment = compliance::assess(catalog, &runbooks, &ledger);
    let sample_moments = match (&stamp, &csv_claims) {
        (Some(stamp), _) => stamp.sample_moments()?,
        (None, Some(claims)) => claims.samples.clone(),
        (None, None) => Vec::new(),
    };
    let samples = sample_moments
        .into_iter()
        .map(|at| kit_ledger(&bundles, &bundles_path, period.clone(), at))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sample_assessments: Vec<_> = samples
        .iter()
        .map(|l| compliance::assess(catalog, &runbooks, l))
        .collect();
    let pairs: Vec<_> = sample_assessments.iter().zip(&samples).collect();
    let cited = compliance::cited_bundles(std::iter::once(&assessment).chain(&sample_assessments));
    // The proofs the kit gives for what the kit's evidence cites; the report must carry exactly these.
    let checkpoint_size = match (&stamp, &csv_claims) {
        (Some(stamp), _) => stamp.checkpoint.as_ref().map(|(size, _)| *size),
        (None, Some(claims)) => claims.tree_size,
        (None, None) => None,
    };
    let sized_tree = checkpoint_size.map(|size| (size, tree));
    let expected_proofs = crate::compliance_cmd::proofs_from_tree(
        sized_tree.as_ref(),
        &cited,
        stamp.as_ref().and_then(|s| s.proofs.consistency.clone()),
    );
    let csv_note = checkpoint_size
        .map(|size| kit_checkpoint_note(kit, size))
        .transpose()?;
    let difference = match (format, &stamp) {
        (Format::Csv, _) | (_, None) => {
            let cx = compliance::render::ReportContext {
                site: "",
                origin: "",
                key_id: "",
                catalog_version: "",
                frameworks_version: "",
                generated_at: OffsetDateTime::UNIX_EPOCH,
                checkpoint: checkpoint_size.zip(csv_note.as_deref()),
                tool_version: "",
                samples: &pairs,
                proofs: &expected_proofs,
            };
            text_difference(&text, &compliance::render::csv(&assessment, &ledger, &cx))
        }
        (Format::Html, Some(stamp)) => {
            let mut cx = stamp.context()?;
            cx.samples = &pairs;
            cx.proofs = &expected_proofs;
            text_difference(&text, &compliance::render::html(&assessment, &ledger, &cx))
        }
        (Format::Pdf, Some(stamp)) => {
            let mut cx = stamp.context()?;
            cx.samples = &pairs;
            cx.proofs = &expected_proofs;
            byte_difference(&bytes, &compliance::render::pdf(&assessment, &ledger, &cx))
        }
        (Format::Oscal, Some(stamp)) => {
            let mut cx = stamp.context()?;
            cx.samples = &pairs;
            cx.proofs = &expected_proofs;
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

/// What a CSV report claims beyond its rows: the proofs it carries (with their row) and its
/// auditor sample moments.
struct CsvClaims {
    /// `(row number, proof, tree size)`.
    proofs: Vec<(usize, compliance::InclusionProof, u64)>,
    /// The checkpoint size its proofs name.
    tree_size: Option<u64>,
    samples: Vec<OffsetDateTime>,
}

fn csv_claims(text: &str) -> anyhow::Result<CsvClaims> {
    let records = compliance::render::parse_records(text);
    let header: Vec<&str> = compliance::render::CSV_HEADER.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(proofs_at), Some(sample_at)) = (column("proofs"), column("sample_date")) else {
        anyhow::bail!("the CSV header lacks the proofs or sample_date column");
    };
    if records.first().map(|r| r.join(",")).as_deref() != Some(compliance::render::CSV_HEADER) {
        anyhow::bail!(
            "the CSV's header is not `{}`: it was edited, or made by another version of osiris",
            compliance::render::CSV_HEADER
        );
    }
    let mut claims = CsvClaims {
        proofs: Vec::new(),
        tree_size: None,
        samples: Vec::new(),
    };
    for (idx, record) in records.iter().enumerate().skip(1) {
        let row = idx + 1;
        if record.len() != header.len() {
            anyhow::bail!(
                "row {row} has {} fields, the header {}: the CSV was edited",
                record.len(),
                header.len()
            );
        }
        let sample = &record[sample_at];
        if !sample.is_empty() {
            let at = OffsetDateTime::parse(sample, &Rfc3339)
                .with_context(|| format!("row {row}: sample_date `{sample}`"))?;
            if !claims.samples.contains(&at) {
                claims.samples.push(at);
            }
        }
        for text in record[proofs_at].split("; ").filter(|t| !t.is_empty()) {
            if let Some(size) = text
                .split_once(" sealed after the checkpoint of ")
                .and_then(|(_, rest)| rest.strip_suffix(" bundles"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                claims.tree_size.get_or_insert(size);
                continue;
            }
            let (proof, size) = compliance::InclusionProof::parse(text)
                .with_context(|| format!("row {row} of the CSV"))?;
            claims.tree_size.get_or_insert(size);
            claims.proofs.push((row, proof, size));
        }
    }
    Ok(claims)
}

/// The problems of a stamped report's proofs: each inclusion proof and the consistency proof.
fn stamp_proof_problems(stamp: &Stamp, kit: &Path, tree: &evidence::MerkleTree) -> Vec<String> {
    let mut res: Vec<String> = stamp
        .proofs
        .inclusion
        .iter()
        .filter_map(|proof| inclusion_problem(proof, stamp.proofs.tree_size, kit, tree))
        .collect();
    if let Some(consistency) = &stamp.proofs.consistency {
        let roots = [&consistency.from, &consistency.to].map(|(size, note)| {
            let kit_note = kit_checkpoint_note(kit, *size).ok();
            match kit_note {
                Some(kit_note) if kit_note.trim_end() == note.trim_end() => note_root(note)
                    .ok_or_else(|| {
                        format!("the checkpoint of {size} bundles it names is malformed")
                    }),
                Some(_) => Err(format!(
                    "the checkpoint of {size} bundles it names differs from the kit's"
                )),
                None => Err(format!(
                    "the kit holds no checkpoint of {size} bundles: export a kit that covers it"
                )),
            }
        });
        match roots {
            [Ok(from_root), Ok(to_root)] => {
                let path = decode_hashes(&consistency.path);
                let holds = path.as_ref().is_some_and(|path| {
                    evidence::verify_consistency(
                        consistency.from.0,
                        consistency.to.0,
                        &from_root,
                        &to_root,
                        path,
                    )
                });
                if !holds {
                    res.push(format!(
                        "the consistency proof from the checkpoint of {} bundles to that of {} does not hold: the log was not extended from the one signed then",
                        consistency.from.0, consistency.to.0
                    ));
                }
            }
            [from, to] => {
                for problem in [from.err(), to.err()].into_iter().flatten() {
                    res.push(format!("consistency proof: {problem}"));
                }
            }
        }
    }
    res
}

/// Why one inclusion proof does not hold against the kit's checkpoint of `size`, if it does not.
fn inclusion_problem(
    proof: &compliance::InclusionProof,
    size: u64,
    kit: &Path,
    tree: &evidence::MerkleTree,
) -> Option<String> {
    let seq = proof.seq;
    let Ok(note) = kit_checkpoint_note(kit, size) else {
        return Some(format!(
            "bundle #{seq}: the kit holds no checkpoint of {size} bundles: export a kit that covers it"
        ));
    };
    let Some(root) = note_root(&note) else {
        return Some(format!(
            "the kit's checkpoint of {size} bundles is malformed"
        ));
    };
    let (Some(leaf), Some(path)) = (
        decode_hashes(std::slice::from_ref(&proof.leaf)),
        decode_hashes(&proof.path),
    ) else {
        return Some(format!(
            "bundle #{seq}: its proof is not hex SHA-256 hashes"
        ));
    };
    if tree.leaf(seq) != Some(leaf[0]) {
        return Some(format!(
            "bundle #{seq}: the leaf hash the report gives is not the hash of the kit's bundle #{seq}"
        ));
    }
    (!evidence::verify_inclusion(&leaf[0], seq, size, &path, &root)).then(|| {
        format!(
            "bundle #{seq}: its inclusion proof does not lead to the root of the kit's checkpoint of {size} bundles"
        )
    })
}

/// The signed note of the kit's checkpoint of `size`.
fn kit_checkpoint_note(kit: &Path, size: u64) -> anyhow::Result<String> {
    let path = kit.join(format!("checkpoints/{size:012}.txt"));
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The root hash a checkpoint note's body names.
fn note_root(note: &str) -> Option<[u8; 32]> {
    let body: String = note.lines().take(3).map(|l| format!("{l}\n")).collect();
    evidence::Checkpoint::parse_body(&body).ok().map(|c| c.root)
}

fn decode_hashes(hexes: &[String]) -> Option<Vec<[u8; 32]>> {
    hexes
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
        })
        .collect()
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
