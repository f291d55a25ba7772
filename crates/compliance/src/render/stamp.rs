//! The stamp every HTML, PDF and OSCAL report carries: what it describes (framework, period,
//! moment, sample dates) and where it comes from (site, log, key, catalogues, checkpoint, when it
//! was made), machine-readable, so `osiris evidence verify-report` can make the same report again
//! from an auditor kit and compare it whole; plus the SHA-256 of the same report's CSV rendering,
//! which ties the formats together (`sha256sum report.csv` gives the digest a PDF prints).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::assess::Assessment;
use crate::ledger::Ledger;
use crate::proofs::Proofs;
use crate::render::{ReportContext, rfc3339};

/// What precedes the stamp's base64url text in a report.
pub const STAMP_MARKER: &str = "osiris-report-stamp-v1:";

/// What a report describes and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// `hipaa`, `soc2`, `pci`, `nist-csf` or `cis`.
    pub framework: String,
    /// `YYYY-MM`.
    pub period: String,
    /// The moment described (RFC 3339).
    pub as_of: String,
    /// Auditor sample moments (RFC 3339).
    pub sample_dates: Vec<String>,
    pub site: String,
    pub origin: String,
    pub key_id: String,
    pub catalog_version: String,
    pub frameworks_version: String,
    pub tool_version: String,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// The newest checkpoint when the report was made: `(tree size, signed note)`.
    pub checkpoint: Option<(u64, String)>,
    /// The lowest and highest seq of the scan and agent result bundles the report counts.
    pub evidence: Option<(u64, u64)>,
    /// Hex SHA-256 of the CSV rendering of the same assessment.
    pub content_sha256: String,
    /// The inclusion proofs of the cited bundles and the `--as-of` consistency proof.
    #[serde(default)]
    pub proofs: Proofs,
}

/// A stamp that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error(
        "the report carries no `{STAMP_MARKER}` stamp: it was not written by `osiris report`, or the stamp was removed"
    )]
    Missing,
    #[error("the report's stamp is damaged ({0}): the file was edited")]
    Damaged(String),
}

impl Stamp {
    /// The stamp of a report of `assessment`.
    pub fn new(assessment: &Assessment<'_>, ledger: &Ledger, cx: &ReportContext<'_>) -> Stamp {
        Stamp {
            framework: assessment.framework.framework.cli_name().to_owned(),
            period: ledger.period().label.clone(),
            as_of: rfc3339(ledger.until()),
            sample_dates: cx.samples.iter().map(|(_, l)| rfc3339(l.until())).collect(),
            site: cx.site.to_owned(),
            origin: cx.origin.to_owned(),
            key_id: cx.key_id.to_owned(),
            catalog_version: cx.catalog_version.to_owned(),
            frameworks_version: cx.frameworks_version.to_owned(),
            tool_version: cx.tool_version.to_owned(),
            generated_at: rfc3339(cx.generated_at),
            checkpoint: cx.checkpoint.map(|(size, note)| (size, note.to_owned())),
            evidence: ledger.results_seqs(),
            content_sha256: content_sha256(assessment, ledger, cx),
            proofs: cx.proofs.clone(),
        }
    }

    /// `osiris-report-stamp-v1:` and the stamp's JSON as base64url (no character any of the
    /// formats escapes).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{STAMP_MARKER}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Finds and reads the stamp in a report's bytes.
    pub fn find(report: &[u8]) -> Result<Stamp, StampError> {
        let marker = STAMP_MARKER.as_bytes();
        let start = report
            .windows(marker.len())
            .position(|w| w == marker)
            .ok_or(StampError::Missing)?
            + marker.len();
        let text: Vec<u8> = report[start..]
            .iter()
            .copied()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .collect();
        let json = URL_SAFE_NO_PAD
            .decode(&text)
            .map_err(|e| StampError::Damaged(format!("base64: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| StampError::Damaged(e.to_string()))
    }

    /// The moment described.
    pub fn as_of(&self) -> Result<OffsetDateTime, StampError> {
        parse(&self.as_of)
    }

    /// The auditor sample moments.
    pub fn sample_moments(&self) -> Result<Vec<OffsetDateTime>, StampError> {
        self.sample_dates.iter().map(|d| parse(d)).collect()
    }

    /// The context the report was made in, to make it again (with no samples: the caller
    /// assesses the sample moments and sets them).
    pub fn context(&self) -> Result<ReportContext<'_>, StampError> {
        Ok(ReportContext {
            site: &self.site,
            origin: &self.origin,
            key_id: &self.key_id,
            catalog_version: &self.catalog_version,
            frameworks_version: &self.frameworks_version,
            generated_at: parse(&self.generated_at)?,
            checkpoint: self
                .checkpoint
                .as_ref()
                .map(|(size, note)| (*size, note.as_str())),
            tool_version: &self.tool_version,
            samples: &[],
            proofs: &self.proofs,
        })
    }
}

/// Hex SHA-256 of the CSV rendering of an assessment.
pub fn content_sha256(
    assessment: &Assessment<'_>,
    ledger: &Ledger,
    cx: &ReportContext<'_>,
) -> String {
    Sha256::digest(crate::render::csv(assessment, ledger, cx).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// "bundles #a–#b" of a stamp's evidence, for the appendices.
pub(crate) fn evidence_text(stamp: &Stamp, ledger: &Ledger) -> String {
    match stamp.evidence {
        Some((low, high)) => format!(
            "{} scan bundle(s) and {} agent result(s) of the period, bundles #{low} to #{high} of the log",
            ledger.scans_in_period(),
            ledger.agent_results_in_period()
        ),
        None => "no scan or agent result bundle in the period".to_owned(),
    }
}

fn parse(text: &str) -> Result<OffsetDateTime, StampError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StampError::Damaged(format!("time `{text}`: {e}")))
}
