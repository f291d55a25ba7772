//! Reading the evidence log into a compliance ledger (the report summary, and bundle lines where
//! it does not reach), the inclusion proofs a report cites, and the month's packet: made from the
//! log, kept under `<data_dir>/packets/<period>/` and sealed as a `packet` bundle naming each
//! file's SHA-256. `osiris report` and `osirisd` both read and write through here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::TryStreamExt as _;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use compliance::{Ledger, Period};

/// The directory under the data directory that keeps the packets, one directory per month.
pub const PACKETS_DIR: &str = "packets";

/// A packet that was made, kept and sealed.
#[derive(Debug, Clone)]
pub struct PacketMade {
    /// `YYYY-MM`.
    pub period: String,
    /// Where its files are.
    pub dir: PathBuf,
    /// The `packet` bundle that names them.
    pub seq: u64,
    /// When the bundle was sealed (RFC 3339).
    pub sealed_at: String,
    pub body: evidence_schema::PacketBody,
}

/// What the log says about one packet already sealed.
#[derive(Debug, Clone)]
pub struct SealedPacket {
    pub seq: u64,
    /// The bundle's `time`.
    pub sealed_at: String,
    pub body: evidence_schema::PacketBody,
}

/// The month before the one `now` falls in (`YYYY-MM`, UTC): the month whose packet is due on the 1st.
pub fn previous_month(now: OffsetDateTime) -> String {
    let first = now.date().replace_day(1).unwrap_or(now.date());
    let last_of_previous = first.previous_day().unwrap_or(first);
    format!(
        "{:04}-{:02}",
        last_of_previous.year(),
        u8::from(last_of_previous.month())
    )
}

/// Every `packet` bundle of the log, by period (the first one of a period, should there be more).
pub async fn sealed_packets(
    reads: store::LogReads<'_>,
    size: u64,
) -> anyhow::Result<BTreeMap<String, SealedPacket>> {
    let mut res = BTreeMap::new();
    let mut lines = std::pin::pin!(reads.lines_of_kinds(0..size, &[evidence_schema::KIND_PACKET]));
    while let Some((seq, line)) = lines
        .try_next()
        .await
        .context("reading the packet bundles")?
    {
        #[derive(serde::Deserialize)]
        struct Line {
            time: String,
            body: evidence_schema::PacketBody,
        }
        let parsed: Line = serde_json::from_slice(&line)
            .with_context(|| format!("bundle #{seq}: not a packet bundle"))?;
        res.entry(parsed.body.period.clone())
            .or_insert(SealedPacket {
                seq,
                sealed_at: parsed.time,
                body: parsed.body,
            });
    }
    Ok(res)
}

/// Makes the packet of `period` (`YYYY-MM`, a month that has ended) from the store, keeps it
/// under `<data_dir>/packets/<period>/` and seals a `packet` bundle naming each file's SHA-256.
///
/// The packet is made once: when the directory is already there (a crash after it was kept and
/// before the bundle was sealed), its files are checked against its manifest and sealed as they
/// are. Rendering and writing run on blocking threads.
pub async fn make_packet(
    store: &store::Store,
    data_dir: &Path,
    runbooks: std::sync::Arc<catalog::Catalog>,
    period: &str,
    now: OffsetDateTime,
) -> anyhow::Result<PacketMade> {
    let period = Period::month(period)?;
    if period.end > now {
        anyhow::bail!(
            "the month {} has not ended yet: its packet is made on the 1st of the next",
            period.label
        );
    }
    // The checkpoint brings the report summary up to the log (and covers what is cited).
    let checkpoint = store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    let size = checkpoint.size;
    let mut ledger = Ledger::new(period.clone(), Some(period.end));
    fill_ledger_from_summary(store.reads(), size, &mut ledger).await?;
    let dir = data_dir.join(PACKETS_DIR).join(&period.label);
    let body = if dir.exists() {
        let (dir, label, evidence) = (dir.clone(), period.label.clone(), ledger.has_results());
        tokio::task::spawn_blocking(move || kept_body(&dir, &label, evidence))
            .await
            .context("checking a kept packet")??
    } else {
        let tree = store
            .reads()
            .merkle_tree(size)
            .await
            .context("reading the evidence log's Merkle tree")?;
        let (origin, key_id) = (store.origin().to_owned(), store.verifier().key_id_hex());
        let site = store.site().to_owned();
        let (data_dir, note) = (data_dir.to_owned(), checkpoint.note);
        let runbooks = std::sync::Arc::clone(&runbooks);
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let frameworks = catalog::embedded_frameworks()
                .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
            let tree = Some((size, tree));
            let packet = compliance::packet::packet(
                &ledger,
                &runbooks,
                &frameworks,
                compliance::packet::PacketSource {
                    site: &site,
                    origin: &origin,
                    key_id: &key_id,
                    checkpoint: Some((size, note.as_str())),
                    generated_at: now,
                    tool_version: env!("CARGO_PKG_VERSION"),
                },
                |cited| proofs_from_tree(tree.as_ref(), cited, None),
            )?;
            keep_packet(&data_dir, &packet)?;
            Ok(body_of(&packet, now))
        })
        .await
        .context("making the packet")??
    };
    let sealed_at = OffsetDateTime::now_utc();
    let appended = store
        .append(evidence::BundleDraft {
            site: store.site().to_owned(),
            kind: evidence_schema::KIND_PACKET.to_owned(),
            catalog: runbooks.version().to_owned(),
            time: sealed_at,
            body: serde_json::to_value(&body).context("encoding the packet bundle")?,
        })
        .await
        .with_context(|| format!("sealing the packet of {}", period.label))?;
    store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    Ok(PacketMade {
        period: period.label,
        dir: data_dir.join(&body.directory),
        seq: appended.seq,
        sealed_at: sealed_at.format(&Rfc3339).unwrap_or_default(),
        body,
    })
}

/// Writes a packet's files into `dir`, which must not exist or be empty, plus nothing else.
pub fn write_packet(dir: &Path, packet: &compliance::packet::Packet) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in &packet.files {
        let path = dir.join(&file.name);
        durable::write(&path, &file.bytes, 0o644)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Keeps the packet under `<data_dir>/packets/<period>/`: written whole into a hidden sibling,
/// synced, then moved into place, so the directory appears complete or not at all.
fn keep_packet(data_dir: &Path, packet: &compliance::packet::Packet) -> anyhow::Result<()> {
    let parent = data_dir.join(PACKETS_DIR);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let dest = parent.join(&packet.period);
    let temp = durable::temp_sibling(&dest)?;
    write_packet(&temp, packet)?;
    durable::sync_dir(&temp)?;
    durable::publish_dir(&temp, &dest)?;
    Ok(())
}

/// The bundle body of a packet made at `generated_at`.
fn body_of(
    packet: &compliance::packet::Packet,
    generated_at: OffsetDateTime,
) -> evidence_schema::PacketBody {
    evidence_schema::PacketBody {
        period: packet.period.clone(),
        generated_at: generated_at.format(&Rfc3339).unwrap_or_default(),
        directory: format!("{PACKETS_DIR}/{}", packet.period),
        evidence: packet.has_evidence,
        files: packet
            .files
            .iter()
            .map(|f| evidence_schema::PacketFileRecord {
                name: f.name.clone(),
                sha256: f.sha256.clone(),
                size: f.bytes.len() as u64,
            })
            .collect(),
    }
}

/// The body of a packet kept but not sealed (a crash between the two): every file its manifest
/// names must be there with that SHA-256, and nothing else.
fn kept_body(
    dir: &Path,
    period: &str,
    evidence: bool,
) -> anyhow::Result<evidence_schema::PacketBody> {
    use sha2::Digest as _;
    let manifest_path = dir.join(compliance::packet::MANIFEST);
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut files = Vec::new();
    let mut named = BTreeSet::new();
    for line in manifest.lines() {
        let (sha256, name) = line.split_once("  ").with_context(|| {
            format!(
                "{}: line `{line}` is not `SHA256  NAME`",
                manifest_path.display()
            )
        })?;
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            anyhow::bail!(
                "{}: `{name}` is not a plain file name; remove the directory to make the packet again",
                manifest_path.display()
            );
        }
        let bytes = std::fs::read(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))?;
        let actual = hex::encode(sha2::Sha256::digest(&bytes));
        if actual != sha256 {
            anyhow::bail!(
                "{}: {name} has SHA-256 {actual}, the manifest says {sha256}; remove the directory to make the packet again",
                dir.display()
            );
        }
        named.insert(name.to_owned());
        files.push(evidence_schema::PacketFileRecord {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            size: bytes.len() as u64,
        });
    }
    let bytes = manifest.as_bytes();
    files.push(evidence_schema::PacketFileRecord {
        name: compliance::packet::MANIFEST.to_owned(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        size: bytes.len() as u64,
    });
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != compliance::packet::MANIFEST && !named.contains(&name) {
            anyhow::bail!(
                "{}: {name} is not in the manifest; remove the directory to make the packet again",
                dir.display()
            );
        }
    }
    let modified = std::fs::metadata(&manifest_path)
        .and_then(|m| m.modified())
        .map(OffsetDateTime::from)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let body = evidence_schema::PacketBody {
        period: period.to_owned(),
        generated_at: modified.format(&Rfc3339).unwrap_or_default(),
        directory: format!("{PACKETS_DIR}/{period}"),
        evidence,
        files,
    };
    if let Some(problem) = body.problem() {
        anyhow::bail!("{}: {problem}", dir.display());
    }
    Ok(body)
}

/// Fills a ledger from the store without reading a month of scans: attestations, exceptions,
/// escalations and agent enrollments from their bundles, whole days from the report summary (per
/// device, check and day: counts and the newest result), the last day, when the moment described
/// is not a midnight, bundle by bundle, and the bundles the summary does not cover yet (sealed
/// since the last checkpoint) bundle by bundle.
pub async fn fill_ledger_from_summary(
    reads: store::LogReads<'_>,
    size: u64,
    ledger: &mut Ledger,
) -> anyhow::Result<()> {
    use evidence_schema::{
        KIND_AGENT_ENROLLMENT, KIND_AGENT_RESULT, KIND_ATTESTATION, KIND_ESCALATION,
        KIND_EXCEPTION, KIND_SCAN,
    };
    let context = "reading the evidence log's report summary";
    fill_ledger(
        reads.lines_of_kinds(
            0..size,
            &[
                KIND_AGENT_ENROLLMENT,
                KIND_ATTESTATION,
                KIND_EXCEPTION,
                KIND_ESCALATION,
            ],
        ),
        ledger,
    )
    .await?;
    let plan = ledger.day_plan();
    let through = reads.summary_through().await.context(context)?.min(size);
    let mut partial: Option<std::ops::Range<u64>> = None;
    for day in reads.bundle_days().await.context(context)? {
        let date = parse_day(&day.day).context(context)?;
        ledger
            .add_day_bundles(compliance::DayBundles {
                day: date,
                kind: &day.kind,
                bundles: day.bundles,
                first_seq: day.first_seq,
                last_seq: day.last_seq,
                first_at: &day.first_at,
            })
            .context(context)?;
        if plan.partial == Some(date) {
            let range = day.first_seq..(day.last_seq + 1).min(through);
            partial = Some(match partial {
                Some(r) => r.start.min(range.start)..r.end.max(range.end),
                None => range,
            });
        }
    }
    let mut rows = std::pin::pin!(reads.check_days(&plan.from.to_string(), &plan.to.to_string()));
    while let Some(row) = rows.try_next().await.context(context)? {
        ledger
            .add_day_result(compliance::DayResult {
                agent: row.agent,
                target: &row.target,
                check: &row.check,
                passes: row.passes,
                fails: row.fails,
                status: &row.status,
                observed: &row.observed,
                reason: &row.reason,
                at: &row.at,
                seq: row.seq,
            })
            .context(context)?;
    }
    if let (Some(day), Some(range)) = (plan.partial, partial) {
        let mut lines =
            std::pin::pin!(reads.lines_of_kinds(range, &[KIND_SCAN, KIND_AGENT_RESULT]));
        while let Some((seq, line)) = lines.try_next().await.context(context)? {
            ledger.add_line_of_day(seq, &line, day).context(context)?;
        }
    }
    fill_ledger(
        reads.lines_of_kinds(through..size, &[KIND_SCAN, KIND_AGENT_RESULT]),
        ledger,
    )
    .await?;
    Ok(())
}

/// Feeds a ledger the lines of the kinds it reads (from a store or a read-only view), in seq
/// order. Returns the bytes read.
pub async fn fill_ledger(
    lines: impl futures_util::Stream<Item = Result<(u64, Vec<u8>), store::StoreError>>,
    ledger: &mut Ledger,
) -> anyhow::Result<u64> {
    let mut n_bytes = 0;
    let mut lines = std::pin::pin!(lines);
    while let Some((seq, line)) = lines.try_next().await.context("reading the evidence log")? {
        n_bytes += line.len() as u64;
        ledger
            .add_line(seq, &line)
            .context("reading the evidence log")?;
    }
    Ok(n_bytes)
}

/// Inclusion proofs of `cited` in the tree of the checkpoint's size; bundles sealed after the
/// checkpoint are listed as not covered yet.
pub fn proofs_from_tree(
    tree: Option<&(u64, evidence::MerkleTree)>,
    cited: &BTreeSet<u64>,
    consistency: Option<compliance::ConsistencyProof>,
) -> compliance::Proofs {
    let Some((size, tree)) = tree else {
        return compliance::Proofs::default();
    };
    let mut proofs = compliance::Proofs {
        tree_size: *size,
        consistency,
        ..compliance::Proofs::default()
    };
    for &seq in cited {
        match (tree.leaf(seq), tree.inclusion_proof(seq, *size)) {
            (Some(leaf), Some(path)) => proofs.inclusion.push(compliance::InclusionProof {
                seq,
                leaf: hex::encode(leaf),
                path: path.iter().map(hex::encode).collect(),
            }),
            _ => proofs.uncovered.push(seq),
        }
    }
    proofs
}

fn parse_day(text: &str) -> anyhow::Result<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).with_context(|| format!("day `{text}` is not YYYY-MM-DD"))
}
