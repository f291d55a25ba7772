//! `osiris attest`, `osiris exception …` and `osiris report`: signed attestations and accepted
//! risks in the evidence log, and per-framework reports (HTML, CSV, OSCAL) read back from it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};

use compliance::{Ledger, Period};
use model::Framework;

use crate::setup;

#[cfg(test)]
use ops::report::fill_ledger;
pub(crate) use ops::report::{fill_ledger_from_summary, proofs_from_tree};

/// Where the data lives.
#[derive(Debug, clap::Args)]
pub(crate) struct Place {
    /// Configuration file (for the data directory and site).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AttestArgs {
    /// The control, as FRAMEWORK:ID (e.g. `hipaa:164.308(a)(1)(ii)(A)`, `cis:14.1`).
    control: String,
    /// What you state about the control, in your words.
    #[arg(long)]
    statement: String,
    /// A supporting document (policy, plan, contract); its SHA-256 goes into the signed bundle and
    /// a copy is kept in the data directory.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Who attests (name and role).
    #[arg(long)]
    by: String,
    /// The last day the attestation counts (YYYY-MM-DD, in the future).
    #[arg(long)]
    expires: String,
    #[command(flatten)]
    place: Place,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ExceptionCommand {
    /// Accept the risk of one check failing on one target until a date (a signed bundle).
    Add {
        /// The check (runbook id), e.g. LIN-SSH-002.
        check: String,
        /// The target, as configured or as named in scan evidence.
        #[arg(long)]
        target: String,
        /// Why the finding is accepted.
        #[arg(long)]
        reason: String,
        /// What limits the risk meanwhile.
        #[arg(long)]
        compensating: String,
        /// Who owns the risk.
        #[arg(long)]
        owner: String,
        /// The last day the exception counts (YYYY-MM-DD, in the future); after it the finding counts again.
        #[arg(long)]
        expires: String,
        #[command(flatten)]
        place: Place,
    },
    /// List the recorded exceptions and whether each still counts.
    List {
        #[command(flatten)]
        place: Place,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// hipaa, soc2, pci, nist-csf or cis; `all` writes the month's packet: every framework in
    /// every format into the directory --out, with a SHA-256 manifest.
    #[arg(long)]
    framework: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    period: String,
    /// Describe the state at this moment (RFC 3339 or YYYY-MM-DD) instead of the end of the period.
    #[arg(long)]
    as_of: Option<String>,
    /// html, pdf, csv or oscal (OSCAL writes FILE as assessment-results and FILE's stem + `-poam.json`).
    #[arg(long, default_value = "html")]
    format: String,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// Auditor sample dates (YYYY-MM-DD or RFC 3339, separated by commas, within the period): the
    /// HTML report adds each control's status and evidence as of each (end of that day).
    #[arg(long, value_delimiter = ',')]
    sample_dates: Vec<String>,
    #[command(flatten)]
    place: Place,
}

pub(crate) fn attest(args: AttestArgs) -> anyhow::Result<ExitCode> {
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    let (framework, id) = parse_control(&args.control)?;
    let catalog = frameworks
        .get(framework)
        .context("framework without a catalogue")?;
    let Some(def) = catalog.control(id) else {
        anyhow::bail!(
            "unknown control `{id}` in {}: see `osiris catalog controls {}` for the ids",
            catalog.name,
            framework.cli_name()
        );
    };
    if let Some(reason) = &def.not_applicable {
        anyhow::bail!(
            "{} {} is not applicable ({reason}); there is nothing to attest",
            framework.label(),
            def.id
        );
    }
    let expires = future_date(&args.expires)?;
    non_empty("--statement", &args.statement)?;
    non_empty("--by", &args.by)?;
    let (config, data_dir) = open(&args.place, true)?;
    let document = match &args.file {
        Some(file) => Some(keep_document(file, &data_dir)?),
        None => None,
    };
    let body = evidence_schema::AttestationBody {
        control: format!("{}:{}", framework.label(), def.id),
        statement: args.statement.trim().to_owned(),
        by: args.by.trim().to_owned(),
        expires: expires.to_string(),
        document,
    };
    let seq = seal(
        &config,
        &data_dir,
        evidence_schema::KIND_ATTESTATION,
        serde_json::to_value(&body)?,
    )?;
    writeln!(
        std::io::stdout(),
        "attestation of {} {} by {} until {} sealed as bundle #{seq}",
        framework.label(),
        def.id,
        body.by,
        body.expires
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn exception(command: ExceptionCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExceptionCommand::Add {
            check,
            target,
            reason,
            compensating,
            owner,
            expires,
            place,
        } => {
            let runbooks = setup::load_catalog()?;
            if runbooks.get(&check).is_none() {
                anyhow::bail!(
                    "unknown check `{check}`: see `osiris catalog list` for the check ids"
                );
            }
            let expires = future_date(&expires)?;
            non_empty("--reason", &reason)?;
            non_empty("--compensating", &compensating)?;
            non_empty("--owner", &owner)?;
            let (config, data_dir) = open(&place, false)?;
            let known = known_targets(&config, &data_dir)?;
            if !known.iter().any(|t| t == &target) {
                anyhow::bail!(
                    "unknown target `{target}`: neither configured nor in any scan evidence (known: {})",
                    if known.is_empty() {
                        "none yet; run `osiris scan` first".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            let body = evidence_schema::ExceptionBody {
                check,
                target,
                reason: reason.trim().to_owned(),
                compensating: compensating.trim().to_owned(),
                owner: owner.trim().to_owned(),
                expires: expires.to_string(),
            };
            let seq = seal(
                &config,
                &data_dir,
                evidence_schema::KIND_EXCEPTION,
                serde_json::to_value(&body)?,
            )?;
            writeln!(
                std::io::stdout(),
                "exception for {} on {} until {} sealed as bundle #{seq}",
                body.check,
                body.target,
                body.expires
            )?;
            Ok(ExitCode::SUCCESS)
        }
        ExceptionCommand::List { place } => {
            let (config, data_dir) = open(&place, false)?;
            let now = OffsetDateTime::now_utc();
            let ledger = read_ledger(&config, &data_dir, Period::month(&month_of(now))?, None)?.0;
            let mut out = std::io::stdout().lock();
            if ledger.exceptions().is_empty() {
                writeln!(out, "no exceptions recorded")?;
            }
            for e in ledger.exceptions() {
                let state = if e.expires >= now.date() {
                    "counts"
                } else {
                    "EXPIRED"
                };
                writeln!(
                    out,
                    "#{:<6} {:<16} {:<20} until {} {state:<8} owner {}: {}",
                    e.seq, e.check, e.target, e.expires, e.owner, e.reason
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.framework == "all" {
        return packet(&args);
    }
    let framework = Framework::from_cli_name(&args.framework).map_err(|_| {
        anyhow::anyhow!(
            "unknown framework `{}` (known: hipaa, soc2, pci, nist-csf, cis)",
            args.framework
        )
    })?;
    let period = Period::month(&args.period)?;
    let format = match args.format.as_str() {
        "html" | "csv" | "oscal" | "pdf" => args.format.as_str(),
        other => anyhow::bail!("unknown format `{other}` (known: html, pdf, csv, oscal)"),
    };
    let as_of = args.as_of.as_deref().map(parse_moment).transpose()?;
    let samples = args
        .sample_dates
        .iter()
        .map(|d| {
            parse_moment(d).map_err(|_| {
                anyhow::anyhow!("--sample-dates `{d}` is neither RFC 3339 nor YYYY-MM-DD")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let now = OffsetDateTime::now_utc();
    for (sample, text) in samples.iter().zip(&args.sample_dates) {
        // A date is the end of that day, so today is allowed (it means "now").
        let future = match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(at) => at > now,
            Err(_) => *sample - time::Duration::days(1) > now,
        };
        if future {
            anyhow::bail!(
                "--sample-dates {text} is in the future (now is {}): an auditor samples evidence that exists",
                rfc3339(now)
            );
        }
        if *sample <= period.start || *sample > period.end {
            anyhow::bail!(
                "--sample-dates {text} is outside the period {}: give dates in that month",
                period.label
            );
        }
    }
    let (config, data_dir) = open(&args.place, false)?;
    let runbooks = setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    // A period that has not ended yet is described as of now.
    let until = as_of.unwrap_or_else(OffsetDateTime::now_utc);
    let (ledger, log) = read_ledger(&config, &data_dir, period.clone(), Some(until))?;
    // A sample moment after the one the report describes (later today) is taken as that moment:
    // evidence sealed after the report was made must not change what it says.
    let sample_ledgers = samples
        .iter()
        .map(|at| {
            read_ledger(&config, &data_dir, period.clone(), Some((*at).min(until))).map(|(l, _)| l)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let (Some(as_of), first) = (as_of, ledger.first_bundle_at()) {
        match first {
            Some(first) if as_of < first => anyhow::bail!(
                "--as-of {} is before the first evidence bundle ({}): there is no state to report then",
                rfc3339(as_of),
                rfc3339(first)
            ),
            None => anyhow::bail!("the evidence log is empty: run `osiris scan` first"),
            Some(_) => {}
        }
    }
    for (sample, text) in samples.iter().zip(&args.sample_dates) {
        match ledger.first_bundle_at() {
            Some(first) if *sample < first => anyhow::bail!(
                "--sample-dates {text} is before the first evidence bundle ({}): the log holds no evidence then; give dates after it",
                rfc3339(first)
            ),
            None => anyhow::bail!("the evidence log is empty: run `osiris scan` first"),
            Some(_) => {}
        }
    }
    let catalog = frameworks
        .get(framework)
        .context("framework without a catalogue")?;
    let assessment = compliance::assess(catalog, &runbooks, &ledger);
    let sample_assessments: Vec<_> = sample_ledgers
        .iter()
        .map(|l| compliance::assess(catalog, &runbooks, l))
        .collect();
    let pairs: Vec<_> = sample_assessments.iter().zip(&sample_ledgers).collect();
    let proofs = read_proofs(
        &data_dir,
        log.checkpoint.as_ref(),
        &compliance::cited_bundles(std::iter::once(&assessment).chain(&sample_assessments)),
        as_of,
    )?;
    let cx = log.context(
        &config,
        &runbooks,
        &frameworks,
        OffsetDateTime::now_utc(),
        &pairs,
        &proofs,
    );
    let mut written = vec![args.out.clone()];
    match format {
        "html" => write_file(
            &args.out,
            compliance::render::html(&assessment, &ledger, &cx).as_bytes(),
        )?,
        "pdf" => write_file(
            &args.out,
            &compliance::render::pdf(&assessment, &ledger, &cx),
        )?,
        "csv" => write_file(
            &args.out,
            compliance::render::csv(&assessment, &ledger, &cx).as_bytes(),
        )?,
        _ => {
            let results = compliance::render::oscal::assessment_results(&assessment, &ledger, &cx);
            let poam = compliance::render::oscal::poam(&assessment, &ledger, &cx);
            let poam_path = poam_path(&args.out);
            write_file(&args.out, &serde_json::to_vec_pretty(&results)?)?;
            write_file(&poam_path, &serde_json::to_vec_pretty(&poam)?)?;
            written.push(poam_path);
        }
    }
    let f = assessment.figures;
    let mut out = std::io::stdout().lock();
    for path in written {
        writeln!(out, "wrote {}", path.display())?;
    }
    writeln!(
        out,
        "{} {}: {} of {} applicable controls met, {} failing, {} partly checked, {} need attestation, {} without evidence{}",
        catalog.name,
        ledger.period().label,
        f.met,
        f.applicable(),
        f.failing,
        f.partial,
        f.needs_attestation,
        f.no_evidence + f.could_not_check,
        if !ledger.has_results() {
            " (no scan evidence in this period)"
        } else {
            ""
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `osiris report --framework all`: the month's packet, every framework in every format, and
/// `MANIFEST.sha256` (`sha256sum -c` checks it).
fn packet(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let period = Period::month(&args.period)?;
    if !args.sample_dates.is_empty() {
        anyhow::bail!("--sample-dates is for one framework's report, not the packet");
    }
    let as_of = args.as_of.as_deref().map(parse_moment).transpose()?;
    let dir = &args.out;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} exists and is not empty: give a new directory for the packet",
            dir.display()
        );
    }
    let (config, data_dir) = open(&args.place, false)?;
    let runbooks = setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    let until = as_of.unwrap_or_else(OffsetDateTime::now_utc);
    let (ledger, log) = read_ledger(&config, &data_dir, period, Some(until))?;
    let mut out = std::io::stdout().lock();
    let generated_at = OffsetDateTime::now_utc();
    let tree = read_tree(&data_dir, log.checkpoint.as_ref())?;
    let consistency = match (as_of, &tree) {
        (Some(as_of), Some(tree)) => read_consistency(&data_dir, tree, as_of)?,
        _ => None,
    };
    let packet = compliance::packet::packet(
        &ledger,
        &runbooks,
        &frameworks,
        compliance::packet::PacketSource {
            site: &config.site,
            origin: &log.origin,
            key_id: &log.key_id,
            checkpoint: log
                .checkpoint
                .as_ref()
                .map(|(size, note)| (*size, note.as_str())),
            generated_at,
            tool_version: env!("CARGO_PKG_VERSION"),
        },
        |cited| proofs_from_tree(tree.as_ref(), cited, consistency.clone()),
    )?;
    ops::report::write_packet(dir, &packet)?;
    for (framework, f) in &packet.figures {
        let name = Framework::from_cli_name(framework)
            .ok()
            .and_then(|framework| frameworks.get(framework))
            .map_or(*framework, |catalog| catalog.name.as_str());
        writeln!(
            out,
            "{name}: {} of {} applicable controls met, {} failing",
            f.met,
            f.applicable(),
            f.failing
        )?;
    }
    writeln!(
        out,
        "wrote the {} packet to {}",
        ledger.period().label,
        dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The log's identity and newest checkpoint, for the report's appendix.
struct LogFacts {
    origin: String,
    key_id: String,
    checkpoint: Option<(u64, String)>,
}

impl LogFacts {
    /// The context of a report made now from this log.
    fn context<'a>(
        &'a self,
        config: &'a config::Config,
        runbooks: &'a catalog::Catalog,
        frameworks: &'a catalog::Frameworks,
        generated_at: OffsetDateTime,
        samples: &'a [(&'a compliance::Assessment<'a>, &'a Ledger)],
        proofs: &'a compliance::Proofs,
    ) -> compliance::render::ReportContext<'a> {
        compliance::render::ReportContext {
            site: &config.site,
            origin: &self.origin,
            key_id: &self.key_id,
            catalog_version: runbooks.version(),
            frameworks_version: frameworks.version(),
            generated_at,
            checkpoint: self
                .checkpoint
                .as_ref()
                .map(|(size, note)| (*size, note.as_str())),
            tool_version: env!("CARGO_PKG_VERSION"),
            samples,
            proofs,
        }
    }
}

fn read_ledger(
    config: &config::Config,
    data_dir: &Path,
    period: Period,
    as_of: Option<OffsetDateTime>,
) -> anyhow::Result<(Ledger, LogFacts)> {
    setup::runtime()?.block_on(async {
        let mut ledger = Ledger::new(period, as_of);
        let cfg = store::StoreConfig {
            data_dir: data_dir.to_owned(),
            site: config.site.clone(),
        };
        let (reader, identity) = match store::LogReader::open_migrated(&cfg).await {
            Ok((reader, identity)) => (reader, Some(identity)),
            // osirisd holds the data directory (and has migrated it): read through a read-only
            // connection; who signs the log is read from its newest checkpoint.
            Err(store::StoreError::InUse { .. }) => (
                store::LogReader::open(data_dir).await.with_context(|| {
                    format!("reading the evidence log in {}", data_dir.display())
                })?,
                None,
            ),
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("opening the evidence store in {}", data_dir.display())
                });
            }
        };
        let size = reader.size().await?;
        fill_ledger_from_summary(reader.reads(), size, &mut ledger).await?;
        let checkpoint = newest_checkpoint(reader.reads()).await?;
        reader.close().await;
        let (origin, key_id) = match identity {
            Some(identity) => (identity.origin, identity.key_id),
            None => checkpoint
                .as_ref()
                .map(|(_, note)| note_signer(note))
                .unwrap_or_default(),
        };
        Ok((
            ledger,
            LogFacts {
                origin,
                key_id,
                checkpoint,
            },
        ))
    })
}

/// `osiris evidence export --period …`: which index the kit carries.
#[derive(Debug, Clone)]
pub(crate) struct IndexArgs {
    pub(crate) period: String,
    pub(crate) framework: String,
    pub(crate) as_of: Option<String>,
}

/// [`IndexArgs`] checked: the frameworks, the period and the moment.
pub(crate) struct Index {
    frameworks: Vec<Framework>,
    period: Period,
    until: OffsetDateTime,
    site: String,
}

impl IndexArgs {
    pub(crate) fn validate(&self, site: &str) -> anyhow::Result<Index> {
        let frameworks = if self.framework == "all" {
            Framework::ALL.to_vec()
        } else {
            vec![Framework::from_cli_name(&self.framework).map_err(|_| {
                anyhow::anyhow!(
                    "unknown framework `{}` (known: hipaa, soc2, pci, nist-csf, cis, all)",
                    self.framework
                )
            })?]
        };
        let period = Period::month(&self.period)?;
        let until = match &self.as_of {
            Some(text) => parse_moment(text)?,
            None => OffsetDateTime::now_utc().min(period.end),
        };
        Ok(Index {
            frameworks,
            period,
            until,
            site: site.to_owned(),
        })
    }
}

/// The auditor's files of a kit: the control-to-evidence index of each framework (CSV) and the
/// same as the HTML manifest's section.
pub(crate) async fn auditor_files(
    store: &store::Store,
    index: &Index,
) -> anyhow::Result<evidence::kit::AuditorFiles> {
    let runbooks = setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    // The checkpoint brings the report summary up to the log.
    store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    let mut ledger = Ledger::new(index.period.clone(), Some(index.until));
    fill_ledger_from_summary(store.reads(), store.size(), &mut ledger).await?;
    let assessments = index
        .frameworks
        .iter()
        .map(|framework| {
            frameworks
                .get(*framework)
                .context("framework without a catalogue")
                .map(|catalog| compliance::assess(catalog, &runbooks, &ledger))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let refs: Vec<&compliance::Assessment<'_>> = assessments.iter().collect();
    let mut line_sha256 = std::collections::BTreeMap::new();
    for seq in compliance::cited_bundles(refs.iter().copied()) {
        let entry = store
            .entry(seq)
            .await
            .with_context(|| format!("reading bundle #{seq}"))?
            .with_context(|| format!("bundle #{seq} is cited but not stored"))?;
        line_sha256.insert(seq, hex::encode(entry.line_hash));
    }
    let (csv, html) = compliance::render::evidence_index(&refs, &line_sha256);
    let escape = compliance::render::escape_html;
    Ok(evidence::kit::AuditorFiles {
        title: escape(&format!(
            "Auditor kit of {} — {} as of {}",
            index.site,
            index.period.label,
            rfc3339(index.until)
        )),
        files: vec![(
            "control-evidence.csv".to_owned(),
            csv.into_bytes(),
            escape(&format!(
                "Control-to-evidence index of {} as of {}: framework, control, status, check, device, bundle seq, SHA-256 of the bundle's line in bundles.jsonl",
                index.period.label,
                rfc3339(index.until)
            )),
        )],
        html_section: html,
    })
}

/// The inclusion proofs of `cited` to the report's checkpoint and, for a report `--as-of` a
/// moment, the consistency proof from the checkpoint of that moment, read from the store.
fn read_proofs(
    data_dir: &Path,
    checkpoint: Option<&(u64, String)>,
    cited: &std::collections::BTreeSet<u64>,
    as_of: Option<OffsetDateTime>,
) -> anyhow::Result<compliance::Proofs> {
    let tree = read_tree(data_dir, checkpoint)?;
    let consistency = match (as_of, &tree) {
        (Some(as_of), Some(tree)) => read_consistency(data_dir, tree, as_of)?,
        _ => None,
    };
    Ok(proofs_from_tree(tree.as_ref(), cited, consistency))
}

/// The log's Merkle tree at the report's checkpoint, with that checkpoint's size.
fn read_tree(
    data_dir: &Path,
    checkpoint: Option<&(u64, String)>,
) -> anyhow::Result<Option<(u64, evidence::MerkleTree)>> {
    let Some((size, _)) = checkpoint else {
        return Ok(None);
    };
    let size = *size;
    setup::runtime()?.block_on(async {
        let reader = store::LogReader::open(data_dir)
            .await
            .with_context(|| format!("reading the evidence log in {}", data_dir.display()))?;
        let tree = reader
            .reads()
            .merkle_tree(size)
            .await
            .context("reading the evidence log's Merkle tree");
        reader.close().await;
        Ok(Some((size, tree?)))
    })
}

/// The consistency proof from the newest checkpoint signed at or before `as_of` to the newest
/// anchored checkpoint the tree covers (else the report's own), or `None` when no checkpoint
/// was signed by then.
fn read_consistency(
    data_dir: &Path,
    (size, tree): &(u64, evidence::MerkleTree),
    as_of: OffsetDateTime,
) -> anyhow::Result<Option<compliance::ConsistencyProof>> {
    let states = setup::runtime()?.block_on(async {
        let reader = store::LogReader::open(data_dir)
            .await
            .with_context(|| format!("reading the evidence log in {}", data_dir.display()))?;
        let states = reader
            .reads()
            .checkpoint_states()
            .await
            .context("reading the checkpoints");
        reader.close().await;
        states
    })?;
    let signed_at = |s: &store::CheckpointState| {
        OffsetDateTime::parse(&s.checkpoint.created_at, &Rfc3339).with_context(|| {
            format!(
                "checkpoint {} has an unreadable time `{}`",
                s.checkpoint.size, s.checkpoint.created_at
            )
        })
    };
    let mut from = None;
    for state in &states {
        if signed_at(state)? <= as_of {
            from = Some(state);
        }
    }
    let Some(from) = from else {
        return Ok(None);
    };
    let in_tree = |s: &&store::CheckpointState| {
        s.checkpoint.size >= from.checkpoint.size && s.checkpoint.size <= *size
    };
    let to = states
        .iter()
        .filter(in_tree)
        .rfind(|s| s.anchored)
        .or_else(|| states.iter().rfind(in_tree))
        .unwrap_or(from);
    let path = tree
        .consistency_proof(from.checkpoint.size, to.checkpoint.size)
        .context("the tree is smaller than the checkpoints it should cover")?;
    Ok(Some(compliance::ConsistencyProof {
        from: (from.checkpoint.size, from.checkpoint.note.clone()),
        to: (to.checkpoint.size, to.checkpoint.note.clone()),
        from_signed_at: from.checkpoint.created_at.clone(),
        to_anchored: to.anchored,
        path: path.iter().map(hex::encode).collect(),
    }))
}

async fn newest_checkpoint(reads: store::LogReads<'_>) -> anyhow::Result<Option<(u64, String)>> {
    Ok(reads
        .latest_checkpoint()
        .await
        .context("reading the newest checkpoint")?
        .map(|c| (c.size, c.note)))
}

/// `(origin, key id hex)` of a signed note: its first line, and the key hash of its signature.
fn note_signer(note: &str) -> (String, String) {
    use base64::Engine as _;
    let origin = note.lines().next().unwrap_or_default().to_owned();
    let key_id = note
        .lines()
        .find_map(|l| l.strip_prefix("— "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|bytes| bytes.len() >= 4)
        .map(|bytes| hex::encode(&bytes[..4]))
        .unwrap_or_default();
    (origin, key_id)
}

fn seal(
    config: &config::Config,
    data_dir: &Path,
    kind: &str,
    body: serde_json::Value,
) -> anyhow::Result<u64> {
    // While osirisd runs it holds the store: the record goes through its local API, which checks
    // it again and counts it at once. Only for the daemon's own data directory.
    if data_dir == setup::data_dir(None, config) {
        let request = api::ComplianceRecordRequest {
            kind: kind.to_owned(),
            body: body.clone(),
        };
        match api::Client::new(&config.daemon.socket)
            .call(&api::endpoint::SealComplianceRecord, &request)
        {
            Ok(sealed) => return Ok(sealed.seq),
            Err(api::ClientError::DaemonDown { .. }) => {}
            Err(err) => return Err(crate::Failed(err.to_string()).into()),
        }
    }
    let catalog = setup::load_catalog()?;
    setup::runtime()?.block_on(async {
        let store = setup::open_store(data_dir, &config.site).await?;
        let appended = store
            .append(evidence::BundleDraft {
                site: config.site.clone(),
                kind: kind.to_owned(),
                catalog: catalog.version().to_owned(),
                time: OffsetDateTime::now_utc(),
                body,
            })
            .await
            .with_context(|| format!("sealing the {kind} bundle"))?;
        store
            .create_checkpoint()
            .await
            .context("signing a checkpoint")?;
        store.close().await;
        Ok(appended.seq)
    })
}

/// Targets from the configuration and from scan evidence.
fn known_targets(config: &config::Config, data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    if data_dir.join("osiris.db").exists() {
        let everything = Period {
            label: "all".to_owned(),
            start: OffsetDateTime::UNIX_EPOCH,
            end: OffsetDateTime::now_utc() + time::Duration::days(1),
        };
        let (ledger, _) = read_ledger(config, data_dir, everything, None)?;
        targets.extend(ledger.targets().into_iter().map(str::to_owned));
    }
    targets.sort();
    targets.dedup();
    Ok(targets)
}

fn open(place: &Place, create: bool) -> anyhow::Result<(config::Config, PathBuf)> {
    let config = setup::load_config(place.config.as_deref())?;
    let data_dir = setup::data_dir(place.data_dir.clone(), &config);
    if !create && !data_dir.join("osiris.db").exists() {
        anyhow::bail!(
            "no evidence in {}: run `osiris scan` first, or point --data-dir at an appliance data directory",
            data_dir.display()
        );
    }
    Ok((config, data_dir))
}

/// Copies a document into `<data-dir>/documents/<sha256>` (never overwriting a different file).
fn keep_document(file: &Path, data_dir: &Path) -> anyhow::Result<evidence_schema::DocumentRecord> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let dir = data_dir.join("documents");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stored = dir.join(&sha256);
    if !stored.exists() {
        durable::write(&stored, &bytes, 0o600)
            .with_context(|| format!("keeping a copy in {}", stored.display()))?;
    }
    Ok(evidence_schema::DocumentRecord {
        name: file.file_name().map_or_else(
            || "document".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        ),
        sha256: sha256.clone(),
        size: bytes.len() as u64,
        stored_as: format!("documents/{sha256}"),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    durable::write(path, bytes, 0o644).with_context(|| format!("writing {}", path.display()))
}

/// `report.json` → `report-poam.json`.
fn poam_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-poam.json"))
}

/// `hipaa:164.312(b)` or `HIPAA:164.312(b)` → (framework, id).
fn parse_control(text: &str) -> anyhow::Result<(Framework, &str)> {
    let Some((framework, id)) = text.split_once(':') else {
        anyhow::bail!(
            "control `{text}` names no framework: write FRAMEWORK:ID, e.g. hipaa:164.308(a)(1)(ii)(A)"
        );
    };
    let framework = Framework::from_cli_name(&framework.to_ascii_lowercase())
        .or_else(|_| {
            Framework::ALL
                .into_iter()
                .find(|f| f.label().eq_ignore_ascii_case(framework))
                .ok_or(())
        })
        .map_err(|()| {
            anyhow::anyhow!(
                "unknown framework `{framework}` in `{text}` (known: hipaa, soc2, pci, nist-csf, cis)"
            )
        })?;
    Ok((framework, id.trim()))
}

fn future_date(text: &str) -> anyhow::Result<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format)
        .map_err(|_| anyhow::anyhow!("--expires `{text}` is not a date: write YYYY-MM-DD"))?;
    let today = OffsetDateTime::now_utc().date();
    if date < today {
        anyhow::bail!("--expires {date} is in the past (today is {today}): give a future date");
    }
    Ok(date)
}

fn parse_moment(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format)
        .map_err(|_| anyhow::anyhow!("--as-of `{text}` is neither RFC 3339 nor YYYY-MM-DD"))?;
    // A date means the end of that day (UTC).
    Ok(date.with_time(Time::MIDNIGHT).assume_utc() + time::Duration::days(1))
}

fn non_empty(flag: &str, value: &str) -> anyhow::Result<()> {
    if value.trim().is_empty() {
        anyhow::bail!("{flag} is empty: say it in words");
    }
    Ok(())
}

fn month_of(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
#[path = "compliance_cmd_tests.rs"]
mod tests;
