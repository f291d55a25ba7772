//! `osiris evidence …`: export an auditor kit, verify one offline, anchor checkpoints with
//! OpenTimestamps, upgrade pending proofs, and show the log's state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use crate::report::count;
use crate::{Failed, setup};

#[derive(Debug, Subcommand)]
pub(crate) enum EvidenceCommand {
    /// Write an auditor kit (bundles, checkpoints, proofs, OpenTimestamps proofs, public key) to a new directory.
    Export {
        /// Directory to create; must not exist or be empty.
        #[arg(long)]
        out: PathBuf,
        /// Also write the auditor's files for this month (YYYY-MM): `auditor/control-evidence.csv`
        /// (framework, control, status, check, device, bundle seq, bundle SHA-256) and
        /// `auditor/manifest.html` (every file of the kit with its SHA-256 and what it is, and the
        /// index), both signed by the MANIFEST.
        #[arg(long)]
        period: Option<String>,
        /// The frameworks of the index: hipaa, soc2, pci, nist-csf, cis or all.
        #[arg(long, default_value = "all", requires = "period")]
        framework: String,
        /// The index describes the state at this moment (RFC 3339 or YYYY-MM-DD) instead of the
        /// end of the period.
        #[arg(long, requires = "period")]
        as_of: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Check a kit offline; exit 0 only if every signature, hash, chain link and proof holds and
    /// the kit is signed by the appliance key you pinned with --key.
    ///
    /// Exit codes: 0 verified against the pinned key; 1 a problem was found; 3 UNPINNED: everything
    /// holds, but only against the key the kit carries itself (pass --key, or --trust-kit-key).
    Verify {
        /// The kit directory.
        dir: PathBuf,
        /// The appliance key to require (verifier key text, or a file holding it), obtained
        /// independently of the kit: from the MSP's records or `osiris evidence show` on the appliance.
        #[arg(long)]
        key: Option<String>,
        /// Accept the key the kit carries in appliance.pub without pinning it (exit 0 instead of 3).
        /// A forged kit carries its own key too: this proves integrity, not origin.
        #[arg(long, conflicts_with_all = ["key", "witness_key"])]
        trust_kit_key: bool,
        /// Require cosignatures by this witness (the partner's Central Command; the key text
        /// `osiris-central link witness-key` prints, or a file holding it). A checkpoint the
        /// witness cosigned also vouches for the appliance key, so this pins it too.
        #[arg(long)]
        witness_key: Option<String>,
        /// Bitcoin block headers file (`<height> <header hex>` per line) for checking anchored proofs.
        #[arg(long)]
        block_headers: Option<PathBuf>,
        /// Fetch the needed Bitcoin block headers from this Esplora-compatible API instead.
        #[arg(long)]
        esplora: Option<String>,
        /// Configuration file whose `evidence.esplora_url` is used when --esplora is not given.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Timestamp the newest checkpoint with the OpenTimestamps calendars.
    Anchor {
        #[command(flatten)]
        place: Place,
        /// Calendar URL (repeatable); replaces the configured calendars.
        #[arg(long = "calendar")]
        calendars: Vec<String>,
    },
    /// Check a report against a kit: verify the kit, make the report again from the kit's
    /// bundles (same framework, period and moment; for HTML, PDF and OSCAL the context its stamp
    /// names) and compare; exit 0 only if they agree.
    VerifyReport {
        /// The report (`osiris report`: CSV, HTML, PDF, or OSCAL assessment results or POA&M).
        report: PathBuf,
        /// The kit directory (`osiris evidence export`).
        kit: PathBuf,
        /// The appliance key to require (as for `evidence verify`).
        #[arg(long)]
        key: Option<String>,
        /// Accept the key the kit carries (integrity, not origin).
        #[arg(long, conflicts_with = "key")]
        trust_kit_key: bool,
    },
    /// Ask the calendars whether pending proofs are now anchored in Bitcoin.
    Upgrade {
        #[command(flatten)]
        place: Place,
    },
    /// Show the log's size, head, checkpoints and anchoring state.
    Show {
        #[command(flatten)]
        place: Place,
    },
}

/// Which appliance data to use.
#[derive(Debug, clap::Args)]
pub(crate) struct Place {
    /// Configuration file (for the data directory, site and calendars).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub(crate) fn run(command: EvidenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvidenceCommand::Export {
            out,
            period,
            framework,
            as_of,
            place,
        } => export(
            &out,
            period
                .map(|period| crate::compliance_cmd::IndexArgs {
                    period,
                    framework,
                    as_of,
                })
                .as_ref(),
            place,
        ),
        EvidenceCommand::Verify {
            dir,
            key,
            trust_kit_key,
            witness_key,
            block_headers,
            esplora,
            config,
        } => {
            let esplora = match (esplora, config) {
                (Some(url), _) => Some(url),
                (None, Some(path)) => setup::load_config(Some(&path))?.evidence.esplora_url,
                (None, None) => None,
            };
            let trust = match key {
                Some(key) => KeyTrust::Pinned(Box::new(parse_key_arg(&key)?)),
                None if trust_kit_key => KeyTrust::KitKeyAccepted,
                None => KeyTrust::Unpinned,
            };
            let witness = witness_key.as_deref().map(parse_witness_arg).transpose()?;
            verify(
                &dir,
                trust,
                witness,
                block_headers.as_deref(),
                esplora.as_deref(),
            )
        }
        EvidenceCommand::Anchor { place, calendars } => anchor(place, calendars),
        EvidenceCommand::Upgrade { place } => upgrade(place),
        EvidenceCommand::VerifyReport {
            report,
            kit,
            key,
            trust_kit_key,
        } => {
            let pinned_key = key.as_deref().map(parse_key_arg).transpose()?;
            crate::verify_report::verify_report(&report, &kit, pinned_key, trust_kit_key)
        }
        EvidenceCommand::Show { place } => show(place),
    }
}

fn open(place: Place) -> anyhow::Result<(config::Config, PathBuf)> {
    let config = setup::load_config(place.config.as_deref())?;
    let data_dir = setup::data_dir(place.data_dir, &config);
    if !data_dir.join("osiris.db").exists() {
        anyhow::bail!(
            "no evidence in {}: run `osiris scan` first, or point --data-dir at an appliance data directory",
            data_dir.display()
        );
    }
    Ok((config, data_dir))
}

fn export(
    out: &Path,
    index: Option<&crate::compliance_cmd::IndexArgs>,
    place: Place,
) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = open(place)?;
    let index = index
        .map(|index| index.validate(&config.site))
        .transpose()?;
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let auditor = match &index {
            Some(index) => Some(crate::compliance_cmd::auditor_files(&store, index).await?),
            None => None,
        };
        let summary = store
            .export_kit_with(out, auditor)
            .await
            .with_context(|| format!("exporting the kit to {}", out.display()))?;
        let key = store.verifier().to_string();
        store.close().await;
        // The key is printed here, on the appliance, for the auditor to record; the kit itself
        // cannot vouch for it.
        writeln!(
            std::io::stdout(),
            "wrote auditor kit {}: {}, {}\nappliance key: {key}\ncheck it with: osiris evidence verify {} --key '{key}'",
            out.display(),
            count(summary.bundles, "bundle"),
            count(summary.checkpoints, "checkpoint"),
            out.display()
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Exit code of `osiris evidence verify` when the kit holds together but only against its own key.
const EXIT_UNPINNED: u8 = 3;

/// Where the key a kit must be signed by comes from.
enum KeyTrust {
    /// `--key`: obtained independently of the kit; a different key is a problem.
    Pinned(Box<evidence::VerifierKey>),
    /// `--trust-kit-key`: the auditor knowingly accepts the kit's own `appliance.pub`.
    KitKeyAccepted,
    /// Neither: the kit's own key is checked for consistency, and the result is UNPINNED.
    Unpinned,
    /// `--witness-key` only, and the witness cosigned checkpoints of this log.
    Witnessed,
}

fn verify(
    dir: &Path,
    mut trust: KeyTrust,
    witness: Option<evidence::WitnessVerifier>,
    headers_file: Option<&Path>,
    esplora: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let pinned_key = match &trust {
        KeyTrust::Pinned(key) => Some((**key).clone()),
        KeyTrust::KitKeyAccepted | KeyTrust::Unpinned | KeyTrust::Witnessed => None,
    };
    let mut block_headers = BTreeMap::new();
    if let Some(path) = headers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading block headers {}", path.display()))?;
        block_headers = ots::bitcoin::parse_headers_file(&text, ots::client::work_floor())
            .with_context(|| format!("parsing block headers {}", path.display()))?;
    }
    let mut opts = evidence::kit::VerifyOptions {
        pinned_key,
        block_headers,
        witness: witness.clone(),
    };
    let mut report = evidence::kit::verify(dir, &opts);
    if let Some(base_url) = esplora {
        // Fetch exactly the headers the kit's proofs need, then verify again with them.
        let missing: Vec<u64> = report
            .ots
            .iter()
            .filter_map(|cp| match cp.status {
                evidence::kit::OtsStatus::Bitcoin {
                    height,
                    header_missing: true,
                    ..
                } => Some(height),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            let fetched = setup::runtime()?.block_on(async {
                let client = ots::client::EsploraClient::new(base_url, ots::client::work_floor())?;
                let mut fetched = BTreeMap::new();
                for height in missing {
                    let header = client
                        .header(height)
                        .await
                        .with_context(|| format!("fetching block {height} from {base_url}"))?;
                    fetched.insert(height, header);
                }
                anyhow::Ok(fetched)
            })?;
            opts.block_headers.extend(fetched);
            report = evidence::kit::verify(dir, &opts);
        }
    }
    let mut out = std::io::stdout().lock();
    if !report.problems.is_empty() {
        for problem in &report.problems {
            let location = match problem.line {
                Some(line) => format!("{}/{}:{line}", dir.display(), problem.path),
                None => format!("{}/{}", dir.display(), problem.path),
            };
            writeln!(out, "{location}: {}", problem.message)?;
        }
        out.flush()?;
        return Err(Failed(format!(
            "kit {} does NOT verify: {} problem{}",
            dir.display(),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        ))
        .into());
    }
    // The witness only cosigns checkpoints signed by the key of the appliance it claimed, so a
    // verified cosignature vouches for the kit's key.
    if witness.is_some() && !report.witnessed.is_empty() && matches!(trust, KeyTrust::Unpinned) {
        trust = KeyTrust::Witnessed;
    }
    match trust {
        KeyTrust::Unpinned => writeln!(
            out,
            "kit {} is intact but UNPINNED: it is checked only against the key it carries itself",
            dir.display()
        )?,
        KeyTrust::Pinned(_) | KeyTrust::KitKeyAccepted | KeyTrust::Witnessed => {
            writeln!(out, "kit {} verifies", dir.display())?
        }
    }
    if let Some(key) = &report.key {
        let source = match trust {
            KeyTrust::Pinned(_) => " (matches --key)",
            KeyTrust::KitKeyAccepted => " (taken from the kit, NOT pinned: --trust-kit-key)",
            KeyTrust::Unpinned => " (taken from the kit, NOT pinned)",
            KeyTrust::Witnessed => " (vouched for by the witness's cosignatures)",
        };
        writeln!(out, "  key          {key}{source}")?;
    }
    if let Some(witness) = &witness
        && let Some((newest, time)) = report.witnessed.iter().max().copied()
    {
        writeln!(
            out,
            "  witness      {}: {} cosigned, the newest covers bundles 1..{newest} ({})",
            witness.name(),
            count(report.witnessed.len() as u64, "checkpoint"),
            rfc3339(time)
        )?;
        if newest < report.bundles {
            writeln!(
                out,
                "               bundles {}..{} are not witnessed yet (appended after the newest cosigned checkpoint)",
                newest + 1,
                report.bundles
            )?;
        }
    } else if report.cosigned_files > 0 {
        writeln!(
            out,
            "  witness      {} carry cosignatures; pass --witness-key to check them",
            count(report.cosigned_files, "checkpoint")
        )?;
    }
    writeln!(
        out,
        "  bundles      {}: every signature valid, hash chain intact",
        report.bundles
    )?;
    if let Some(root) = report.root {
        writeln!(
            out,
            "  log root     {} (size {}), {} consistent",
            hex::encode(root),
            report.bundles,
            count(report.checkpoints, "checkpoint")
        )?;
    }
    for agent in &report.agents {
        let gaps: Vec<String> = agent
            .gaps
            .iter()
            .map(|gap| {
                format!(
                    "items {}–{} lost: {}",
                    gap.first_seq,
                    gap.last_seq,
                    gap.reason.replace('_', " ")
                )
            })
            .collect();
        writeln!(
            out,
            "  agent        {}: {} signed by the device, {}, every number to {} accounted for{}{}",
            agent.agent_id,
            count(agent.results, "result"),
            count(agent.remediations, "remediation step"),
            agent.last_seq,
            if gaps.is_empty() {
                String::new()
            } else {
                format!("; {}", gaps.join("; "))
            },
            if agent.revocation_line.is_some() {
                "; revoked"
            } else {
                ""
            }
        )?;
    }
    for checkpoint in &report.ots {
        writeln!(
            out,
            "  timestamp    checkpoint {}: {}",
            checkpoint.size,
            ots_words(&checkpoint.status)
        )?;
    }
    if report.ots.is_empty() {
        writeln!(
            out,
            "  timestamp    none: no checkpoint has been anchored yet (osiris evidence anchor)"
        )?;
    }
    if let KeyTrust::Unpinned = trust {
        out.flush()?;
        drop(out);
        writeln!(
            std::io::stderr(),
            "UNPINNED: anyone can make a kit that is consistent with a key of their own, so this does not \
             show the kit came from the appliance.\nPin the appliance key you obtained independently (your \
             MSP's records, or `osiris evidence show` on the appliance): osiris evidence verify {} --key KEY\n\
             (--trust-kit-key accepts the kit's own key knowingly.)",
            dir.display()
        )?;
        return Ok(ExitCode::from(EXIT_UNPINNED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--witness-key` takes the witness's key itself or a path to a file holding it.
fn parse_witness_arg(arg: &str) -> anyhow::Result<evidence::WitnessVerifier> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading witness key file {arg}"))?
    } else {
        arg.to_owned()
    };
    text.trim().parse().map_err(|err| {
        anyhow::anyhow!(
            "--witness-key: not a witness key ({err}); expected `<name>+<keyid>+<base64>` as `osiris-central link witness-key` prints it"
        )
    })
}

fn rfc3339(time: u64) -> String {
    i64::try_from(time)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| time.to_string())
}

/// `--key` takes the verifier key itself or a path to a file holding it.
fn parse_key_arg(arg: &str) -> anyhow::Result<evidence::VerifierKey> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading key file {arg}"))?
    } else {
        arg.to_owned()
    };
    text.trim().parse().map_err(|err| {
        anyhow::anyhow!("--key: not a verifier key ({err}); expected `<name>+<keyid>+<base64>`")
    })
}

fn anchor(place: Place, calendars: Vec<String>) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = open(place)?;
    let calendars = if calendars.is_empty() {
        config.evidence.calendars.clone()
    } else {
        calendars
    };
    let timeout = Duration::from_secs(config.evidence.timeout_secs);
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let submitted = ops::anchor::submit_checkpoint(&store, &calendars, timeout).await;
        store.close().await;
        let submitted = submitted?;
        writeln!(
            std::io::stdout(),
            "checkpoint {} submitted to {} of {} calendars; proof pending until it is in a Bitcoin block (run `osiris evidence upgrade` later)",
            submitted.checkpoint_size,
            submitted.accepted.len(),
            calendars.len()
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

fn upgrade(place: Place) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = open(place)?;
    let timeout = Duration::from_secs(config.evidence.timeout_secs);
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let esplora = config.evidence.esplora_url.as_deref();
        let upgraded = ops::anchor::upgrade_pending(&store, esplora, timeout).await;
        store.close().await;
        let mut out = std::io::stdout().lock();
        let upgraded = upgraded?;
        if upgraded.is_empty() {
            writeln!(out, "no pending proofs")?;
        }
        for one in upgraded {
            let size = one.checkpoint_size;
            match (one.bitcoin_height, one.unverified_height, one.problem) {
                (Some(height), _, _) => {
                    writeln!(out, "checkpoint {size}: anchored in Bitcoin block {height}")?
                }
                (None, Some(claimed), problem) => writeln!(
                    out,
                    "checkpoint {size}: still pending: a calendar claims Bitcoin block {claimed}, UNVERIFIED ({})",
                    problem.unwrap_or_else(|| {
                        "set evidence.esplora_url to check its block header".to_owned()
                    })
                )?,
                (None, None, Some(problem)) => {
                    writeln!(out, "checkpoint {size}: still pending ({problem})")?
                }
                (None, None, None) => writeln!(out, "checkpoint {size}: still pending")?,
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn show(place: Place) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = open(place)?;
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "appliance    {}", store.origin())?;
        writeln!(out, "key          {}", store.verifier())?;
        writeln!(out, "bundles      {}", store.size())?;
        if let Some(head) = store.head() {
            writeln!(
                out,
                "head         #{} {}",
                head.seq,
                hex::encode(head.line_hash)
            )?;
        }
        let checkpoints = store.checkpoints().await?;
        writeln!(out, "checkpoints  {}", checkpoints.len())?;
        for proof in store.ots_proofs().await? {
            let state = match (proof.status, proof.bitcoin_height) {
                (store::OtsStatus::Anchored, Some(height)) => {
                    format!("anchored in Bitcoin block {height}")
                }
                _ => format!("pending at {}", proof.calendars.join(", ")),
            };
            writeln!(
                out,
                "timestamp    checkpoint {}: {state}",
                proof.checkpoint_size
            )?;
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn ots_words(status: &evidence::kit::OtsStatus) -> String {
    use evidence::kit::OtsStatus;
    match status {
        OtsStatus::None => {
            "not anchored yet (the appliance runs `osiris evidence anchor`)".to_owned()
        }
        OtsStatus::Pending { calendars } => format!(
            "pending at {} (not yet in a Bitcoin block)",
            calendars.join(", ")
        ),
        OtsStatus::Bitcoin {
            height,
            verified_time: Some(time),
            ..
        } => {
            let when = time::OffsetDateTime::from_unix_timestamp(i64::from(*time))
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| time.to_string());
            format!(
                "anchored in Bitcoin block {height}, verified against its header (block time {when})"
            )
        }
        OtsStatus::Bitcoin { height, .. } => format!(
            "Bitcoin attestation at block {height}, UNVERIFIED: its header was not checked (pass --block-headers FILE or --esplora URL)"
        ),
        OtsStatus::Invalid => "invalid proof (see problems)".to_owned(),
        _ => "unknown".to_owned(),
    }
}
