//! The month's packet: every framework's report in every format (HTML, PDF, CSV, OSCAL
//! assessment results and POA&M) and `MANIFEST.sha256`, made in memory from one ledger. The
//! caller (`osiris report --framework all`, `osirisd` on the 1st) reads the log and writes the files.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Figures, Ledger, Proofs, assess, cited_bundles, render};

/// Who made the packet, from what log: the parts of a [`render::ReportContext`] every report of
/// the packet shares.
#[derive(Debug, Clone, Copy)]
pub struct PacketSource<'a> {
    pub site: &'a str,
    pub origin: &'a str,
    pub key_id: &'a str,
    /// The newest checkpoint covering the evidence: `(tree size, signed note)`.
    pub checkpoint: Option<(u64, &'a str)>,
    pub generated_at: OffsetDateTime,
    pub tool_version: &'a str,
}

/// One file of a packet.
#[derive(Debug, Clone)]
pub struct PacketFile {
    /// A plain file name (`hipaa-2026-11.pdf`): no directory, no path separator.
    pub name: String,
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// The packet of one period.
#[derive(Debug, Clone)]
pub struct Packet {
    /// `YYYY-MM`.
    pub period: String,
    /// The reports, then `MANIFEST.sha256` (`sha256sum -c` checks it), last.
    pub files: Vec<PacketFile>,
    /// Each framework's figures, in catalogue order: `(cli name, figures)`.
    pub figures: Vec<(&'static str, Figures)>,
    /// False when the period holds no scan or agent result: every report says so and claims no
    /// status a check would give.
    pub has_evidence: bool,
}

/// The name of the manifest file in every packet.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// A report of the packet could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("encoding {file}: {source}")]
pub struct PacketError {
    /// The file that could not be encoded.
    pub file: String,
    #[source]
    pub source: serde_json::Error,
}

/// Makes the packet of `ledger`'s period: for each framework of `frameworks`, its assessment
/// rendered five ways, with the inclusion proofs `proofs` gives for the bundles it cites.
pub fn packet(
    ledger: &Ledger,
    runbooks: &catalog::Catalog,
    frameworks: &catalog::Frameworks,
    source: PacketSource<'_>,
    proofs: impl Fn(&BTreeSet<u64>) -> Proofs,
) -> Result<Packet, PacketError> {
    let mut files = Vec::new();
    let mut figures = Vec::new();
    let period = ledger.period().label.clone();
    for catalog in frameworks.catalogs() {
        let assessment = assess(catalog, runbooks, ledger);
        let proofs = proofs(&cited_bundles([&assessment]));
        let cx = render::ReportContext {
            site: source.site,
            origin: source.origin,
            key_id: source.key_id,
            catalog_version: runbooks.version(),
            frameworks_version: frameworks.version(),
            generated_at: source.generated_at,
            checkpoint: source.checkpoint,
            tool_version: source.tool_version,
            samples: &[],
            proofs: &proofs,
        };
        let stem = format!("{}-{period}", catalog.framework.cli_name());
        let results = render::oscal::assessment_results(&assessment, ledger, &cx);
        let poam = render::oscal::poam(&assessment, ledger, &cx);
        let made = [
            (
                format!("{stem}.html"),
                render::html(&assessment, ledger, &cx).into_bytes(),
            ),
            (format!("{stem}.pdf"), render::pdf(&assessment, ledger, &cx)),
            (
                format!("{stem}.csv"),
                render::csv(&assessment, ledger, &cx).into_bytes(),
            ),
            encode(format!("{stem}-assessment-results.json"), &results)?,
            encode(format!("{stem}-poam.json"), &poam)?,
        ];
        for (name, bytes) in made {
            files.push(file(name, bytes));
        }
        figures.push((catalog.framework.cli_name(), assessment.figures));
    }
    let manifest = manifest(&files);
    files.push(file(MANIFEST.to_owned(), manifest.into_bytes()));
    Ok(Packet {
        period,
        files,
        figures,
        has_evidence: ledger.has_results(),
    })
}

/// `MANIFEST.sha256` of `files`: one `<sha256>  <name>` line each, as `sha256sum` writes it.
pub fn manifest(files: &[PacketFile]) -> String {
    files
        .iter()
        .filter(|f| f.name != MANIFEST)
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect()
}

fn file(name: String, bytes: Vec<u8>) -> PacketFile {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    PacketFile {
        name,
        bytes,
        sha256,
    }
}

fn encode(name: String, value: &impl serde::Serialize) -> Result<(String, Vec<u8>), PacketError> {
    match serde_json::to_vec_pretty(value) {
        Ok(bytes) => Ok((name, bytes)),
        Err(source) => Err(PacketError { file: name, source }),
    }
}
