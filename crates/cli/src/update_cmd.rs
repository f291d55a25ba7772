//! `osiris update …`: check for, apply, health-gate, mark good and roll back signed image
//! updates (the `update` crate), recording every step as an `update` evidence bundle.
//!
//! Settings come from the update file the NixOS module writes (`/etc/osiris/update.toml`,
//! parsed by `update::UpdateConfig`). osirisd holds the evidence store's lock while it runs;
//! records that cannot be sealed then go to the update crate's queue for the daemon to seal.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use time::OffsetDateTime;
use update::{
    BootLoader as _, Cache, DaemonGate, GateDecision, Importer, Phase, SignedManifest, Step,
    SystemdBoot, UpdateConfig, UpdateRecord, Updater,
};

use crate::setup;

/// The `osiris update` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UpdateCommand {
    /// Fetch the signed manifest and say whether it offers an applicable update.
    Check,
    /// Verify the update's closure against the pinned keys, import it, and stage it as the
    /// next boot entry with boot counting.
    Apply {
        /// Reboot into the update once it is staged.
        #[arg(long)]
        reboot: bool,
    },
    /// Show where the update stands and the boot entries.
    Status {
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// After booting an update: mark it good now, or with --wait run the health gate first
    /// (daemon up, a scan completes, evidence appends) and roll back if it fails.
    MarkGood {
        /// Run the health gate until it decides or its deadline passes.
        #[arg(long)]
        wait: bool,
        /// Reboot when the gate rolled the update back.
        #[arg(long)]
        reboot: bool,
    },
    /// Give up on a staged or booted update: the previous boot entry is used next.
    Rollback {
        /// Why (recorded as evidence).
        #[arg(long, default_value = "operator request")]
        reason: String,
        /// Reboot into the previous system now.
        #[arg(long)]
        reboot: bool,
    },
}

/// Runs one `osiris update` subcommand with the update settings in `config_path`.
pub(crate) fn run(cmd: UpdateCommand, config_path: &Path) -> anyhow::Result<()> {
    let ctx = Context::load(config_path)?;
    let boot = SystemdBoot::new(&ctx.cfg.esp, &ctx.cfg.efivars);
    let mut updater = Updater::open(&ctx.cfg.state_dir, boot)
        .with_context(|| format!("opening update state in {}", ctx.cfg.state_dir.display()))?;
    let mut out = std::io::stdout().lock();
    match cmd {
        UpdateCommand::Check => check(&ctx, &mut updater, &mut out),
        UpdateCommand::Apply { reboot } => apply(&ctx, &mut updater, reboot, &mut out),
        UpdateCommand::Status { json } => status(&ctx, &updater, json, &mut out),
        UpdateCommand::MarkGood { wait, reboot } => {
            mark_good(&ctx, &mut updater, wait, reboot, &mut out)
        }
        UpdateCommand::Rollback { reason, reboot } => {
            rollback(&ctx, &mut updater, &reason, reboot, &mut out)
        }
    }
}

/// The update settings and what they need of the appliance configuration.
struct Context {
    cfg: UpdateConfig,
    site: String,
    data_dir: PathBuf,
    socket: PathBuf,
}

impl Context {
    fn load(path: &Path) -> anyhow::Result<Context> {
        let cfg = UpdateConfig::load(path)
            .map_err(|err| crate::BadConfig(format!("{:#}", anyhow::Error::new(err))))?;
        let appliance = setup::load_config(Some(&cfg.appliance_config))?;
        Ok(Context {
            data_dir: setup::data_dir(None, &appliance),
            site: appliance.site,
            socket: appliance.daemon.socket,
            cfg,
        })
    }
}

fn check(
    ctx: &Context,
    updater: &mut Updater<SystemdBoot>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let policy = &ctx.cfg.policy;
    let signed = fetch_signed(&ctx.cfg)?;
    let step = updater.accept_manifest(&signed, policy, OffsetDateTime::now_utc());
    let manifest = finish(ctx, step)?;
    writeln!(
        out,
        "update {} is available (installed {}); run `osiris update apply`",
        manifest.version, policy.installed
    )?;
    Ok(())
}

fn apply(
    ctx: &Context,
    updater: &mut Updater<SystemdBoot>,
    reboot: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let policy = &ctx.cfg.policy;
    if !matches!(updater.phase(), Phase::Downloaded { .. }) {
        let signed = fetch_signed(&ctx.cfg)?;
        let step = updater.accept_manifest(&signed, policy, OffsetDateTime::now_utc());
        finish(ctx, step)?;
    }
    let cache_url = updater
        .phase()
        .manifest()
        .map(|manifest| manifest.cache_url.clone())
        .unwrap_or_default();
    let cache =
        Cache::open(&cache_url, ctx.cfg.timeout).context("opening the update's binary cache")?;
    let importer = Importer::Nix {
        program: ctx.cfg.nix.clone(),
        to: None,
        root: PathBuf::from("/"),
    };
    finish(
        ctx,
        updater.fetch(&cache, &importer, OffsetDateTime::now_utc()),
    )?;
    finish(
        ctx,
        updater.stage(&importer, policy, OffsetDateTime::now_utc()),
    )?;
    writeln!(
        out,
        "update staged as the next boot entry with {} tries; reboot to use it",
        policy.tries
    )?;
    if reboot {
        reboot_now(out)?;
    }
    Ok(())
}

fn status(
    ctx: &Context,
    updater: &Updater<SystemdBoot>,
    json: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let installed = ctx.cfg.policy.installed;
    let entries = updater.boot().entries().context("reading boot entries")?;
    let booted = updater
        .boot()
        .booted()
        .context("reading the booted entry")?;
    if json {
        let entries: Vec<_> = entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "id": entry.id, "version": entry.version, "system": entry.system,
                    "tries_left": entry.counter.map(|c| c.tries_left),
                    "tries_done": entry.counter.map(|c| c.tries_done),
                    "bad": entry.is_bad(),
                })
            })
            .collect();
        let status = serde_json::json!({
            "phase": updater.phase(), "installed": installed.to_string(),
            "booted": booted, "entries": entries,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    let phase = updater.phase();
    let version = phase.manifest().map_or("-", |m| m.version.as_str());
    writeln!(
        out,
        "installed {installed}, update {version}: {}",
        phase.name()
    )?;
    if let Phase::RolledBack { reason, .. } = phase {
        writeln!(out, "rolled back: {reason}")?;
    }
    for entry in &entries {
        let marker = if booted.as_deref() == Some(entry.id.as_str()) {
            "*"
        } else {
            " "
        };
        let state = match entry.counter {
            None => "good".to_owned(),
            Some(_) if entry.is_bad() => "bad".to_owned(),
            Some(c) => format!("{} tries left", c.tries_left),
        };
        writeln!(
            out,
            "{marker} {:<24} {:<10} {state}",
            entry.id, entry.version
        )?;
    }
    Ok(())
}

fn mark_good(
    ctx: &Context,
    updater: &mut Updater<SystemdBoot>,
    wait: bool,
    reboot: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let step = updater.after_boot(&ctx.cfg.policy, OffsetDateTime::now_utc());
    if finish(ctx, step)? == GateDecision::Idle {
        let phase = updater.phase();
        writeln!(
            out,
            "no update is waiting for its health gate ({})",
            phase.name()
        )?;
        if let Phase::RolledBack { reason, .. } = phase {
            writeln!(out, "rolled back: {reason}")?;
        }
        return Ok(());
    }
    if !wait {
        finish(
            ctx,
            updater.mark_good(&operator(), OffsetDateTime::now_utc()),
        )?;
        writeln!(out, "update marked good by the operator")?;
        return Ok(());
    }
    let mut gate = DaemonGate::new(&ctx.socket);
    let step = updater.run_health_gate(&mut gate, std::time::Duration::from_secs(5));
    match finish(ctx, step)? {
        GateDecision::Good => writeln!(out, "health gate passed; update marked good")?,
        GateDecision::RebootNow => {
            let reason = match updater.phase() {
                Phase::RolledBack { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            writeln!(out, "update rolled back: {reason}")?;
            if reboot {
                reboot_now(out)?;
            }
        }
        other => writeln!(out, "health gate: {other:?}")?,
    }
    Ok(())
}

fn rollback(
    ctx: &Context,
    updater: &mut Updater<SystemdBoot>,
    reason: &str,
    reboot: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let step = updater.rollback(
        &format!("{reason} (by {})", operator()),
        OffsetDateTime::now_utc(),
    );
    finish(ctx, step)?;
    writeln!(out, "update rolled back; the previous system boots next")?;
    if reboot {
        reboot_now(out)?;
    }
    Ok(())
}

fn fetch_signed(cfg: &UpdateConfig) -> anyhow::Result<SignedManifest> {
    let bytes = update::fetch_manifest(&cfg.manifest_url, cfg.timeout)
        .context("fetching the update manifest")?;
    Ok(SignedManifest::from_json(&bytes)?)
}

/// Records a step's evidence, then returns its outcome.
fn finish<T>(ctx: &Context, step: Step<T>) -> anyhow::Result<T> {
    record(ctx, &step.records)?;
    Ok(step.result?)
}

/// Seals the records as `update` bundles, or queues them when osirisd holds the store.
fn record(ctx: &Context, records: &[UpdateRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let sealed = setup::runtime().and_then(|runtime| {
        runtime.block_on(async {
            let store = setup::open_store(&ctx.data_dir, &ctx.site).await?;
            for record in records {
                store
                    .append(evidence::BundleDraft {
                        site: ctx.site.clone(),
                        kind: update::KIND_UPDATE.to_owned(),
                        catalog: String::new(),
                        time: OffsetDateTime::now_utc(),
                        body: record.body(),
                    })
                    .await
                    .context("recording the update step as evidence")?;
            }
            store.close().await;
            anyhow::Ok(())
        })
    });
    if let Err(err) = sealed {
        tracing::info!(error = %format!("{err:#}"), "Evidence store busy; queueing update records.");
        update::enqueue(&spool(&ctx.cfg.state_dir)?, records)?;
    }
    Ok(())
}

fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".to_owned())
}

fn reboot_now(out: &mut impl std::io::Write) -> anyhow::Result<()> {
    writeln!(out, "rebooting")?;
    out.flush()?;
    let status = Command::new("systemctl")
        .arg("reboot")
        .status()
        .context("running systemctl reboot")?;
    anyhow::ensure!(status.success(), "systemctl reboot failed ({status})");
    Ok(())
}

/// The spool directory for update records, created (0700) if missing. On NixOS it exists and
/// belongs to the daemon's user; records written here are given to that user.
fn spool(state_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    use std::os::unix::fs::DirBuilderExt;
    let dir = update::spool_dir(state_dir);
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the update spool {}", dir.display()))?;
    }
    Ok(dir)
}
