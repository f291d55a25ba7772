//! `osiris update …`: check for, apply, health-gate, mark good and roll back signed image
//! updates (the `update` crate), recording every step as an `update` evidence bundle.
//!
//! Settings come from the update file the NixOS module writes (`/etc/osiris/update.toml`).
//! osirisd holds the evidence store's lock while it runs; records that cannot be sealed then go
//! to `<state_dir>/pending-evidence.jsonl`, one body per line, for the daemon to seal.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use time::OffsetDateTime;
use update::{
    BootLoader as _, Cache, GateDecision, HealthGate, Importer, Phase, Policy, Probe,
    SignedManifest, Step, SystemdBoot, UpdateRecord, Updater, VendorKey,
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
    let cfg = UpdateConfig::load(config_path)?;
    let policy = cfg.policy()?;
    let boot = SystemdBoot::new(&cfg.esp, &cfg.efivars);
    let mut updater = Updater::open(&cfg.state_dir, boot)
        .with_context(|| format!("opening update state in {}", cfg.state_dir.display()))?;
    let mut out = std::io::stdout().lock();
    match cmd {
        UpdateCommand::Check => {
            let signed = fetch_signed(&cfg)?;
            let step = updater.accept_manifest(&signed, &policy, OffsetDateTime::now_utc());
            let manifest = finish(&cfg, step)?;
            writeln!(
                out,
                "update {} is available (installed {}); run `osiris update apply`",
                manifest.version, policy.installed
            )?;
        }
        UpdateCommand::Apply { reboot } => {
            if !matches!(updater.phase(), Phase::Downloaded { .. }) {
                let signed = fetch_signed(&cfg)?;
                let step = updater.accept_manifest(&signed, &policy, OffsetDateTime::now_utc());
                finish(&cfg, step)?;
            }
            let cache_url = updater
                .phase()
                .manifest()
                .map(|manifest| manifest.cache_url.clone())
                .unwrap_or_default();
            let cache = Cache::open(&cache_url, Duration::from_secs(cfg.timeout_secs))
                .context("opening the update's binary cache")?;
            let importer = Importer::Nix {
                program: cfg.nix.clone(),
                to: None,
                root: PathBuf::from("/"),
            };
            finish(
                &cfg,
                updater.fetch(&cache, &importer, OffsetDateTime::now_utc()),
            )?;
            finish(
                &cfg,
                updater.stage(&importer, &policy, OffsetDateTime::now_utc()),
            )?;
            writeln!(
                out,
                "update staged as the next boot entry with {} tries; reboot to use it",
                policy.tries
            )?;
            if reboot {
                reboot_now(&mut out)?;
            }
        }
        UpdateCommand::Status { json } => {
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
                    "phase": updater.phase(), "installed": policy.installed.to_string(),
                    "booted": booted, "entries": entries,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
            } else {
                let phase = updater.phase();
                let version = phase.manifest().map_or("-", |m| m.version.as_str());
                writeln!(
                    out,
                    "installed {}, update {version}: {}",
                    policy.installed,
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
            }
        }
        UpdateCommand::MarkGood { wait, reboot } => {
            let step = updater.after_boot(&policy, OffsetDateTime::now_utc());
            if finish(&cfg, step)? == GateDecision::Idle {
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
                    &cfg,
                    updater.mark_good(&operator(), OffsetDateTime::now_utc()),
                )?;
                writeln!(out, "update marked good by the operator")?;
                return Ok(());
            }
            let mut gate = ApiGate::new(&cfg.socket);
            let step = updater.run_health_gate(&mut gate, Duration::from_secs(5));
            match finish(&cfg, step)? {
                GateDecision::Good => writeln!(out, "health gate passed; update marked good")?,
                GateDecision::RebootNow => {
                    let reason = match updater.phase() {
                        Phase::RolledBack { reason, .. } => reason.clone(),
                        _ => String::new(),
                    };
                    writeln!(out, "update rolled back: {reason}")?;
                    if reboot {
                        reboot_now(&mut out)?;
                    }
                }
                other => writeln!(out, "health gate: {other:?}")?,
            }
        }
        UpdateCommand::Rollback { reason, reboot } => {
            let step = updater.rollback(
                &format!("{reason} (by {})", operator()),
                OffsetDateTime::now_utc(),
            );
            finish(&cfg, step)?;
            writeln!(out, "update rolled back; the previous system boots next")?;
            if reboot {
                reboot_now(&mut out)?;
            }
        }
    }
    Ok(())
}

/// `/etc/osiris/update.toml`, written by the `services.osiris.updates` NixOS module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateConfig {
    /// Where the signed manifest is published (`https://…` or `file://…`).
    manifest_url: String,
    /// Pinned manifest signing key, `name:base64`.
    vendor_key: String,
    /// Pinned narinfo signing keys, `name:base64`.
    cache_keys: Vec<String>,
    /// The running release.
    installed_version: String,
    /// The updater's state directory.
    state_dir: PathBuf,
    /// The EFI system partition's mount point.
    esp: PathBuf,
    /// Where `LoaderEntrySelected` is read.
    #[serde(default = "default_efivars")]
    efivars: PathBuf,
    /// Boot attempts for a new entry.
    #[serde(default = "default_tries")]
    tries: u32,
    /// Health gate deadline after the first boot, in seconds.
    #[serde(default = "default_health_deadline")]
    health_deadline_secs: u64,
    /// The appliance configuration (site, data directory, API socket).
    appliance_config: PathBuf,
    /// The `nix` program used to import the verified closure.
    #[serde(default = "default_nix")]
    nix: PathBuf,
    /// Network timeout per request, in seconds.
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// Filled from the appliance configuration.
    #[serde(skip)]
    site: String,
    #[serde(skip)]
    data_dir: PathBuf,
    #[serde(skip)]
    socket: PathBuf,
}

impl UpdateConfig {
    fn load(path: &Path) -> anyhow::Result<UpdateConfig> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            crate::BadConfig(format!(
                "cannot read update settings {}: {err}",
                path.display()
            ))
        })?;
        let mut cfg: UpdateConfig = toml::from_str(&text)
            .map_err(|err| crate::BadConfig(format!("{}: {err}", path.display())))?;
        let appliance = setup::load_config(Some(&cfg.appliance_config))?;
        cfg.data_dir = setup::data_dir(None, &appliance);
        cfg.site = appliance.site;
        cfg.socket = appliance.daemon.socket;
        Ok(cfg)
    }

    fn policy(&self) -> anyhow::Result<Policy> {
        let bad = |what: &str, err: &dyn std::fmt::Display| {
            crate::BadConfig(format!("update settings: {what}: {err}"))
        };
        Ok(Policy {
            vendor_key: VendorKey::parse(&self.vendor_key)
                .map_err(|err| bad("vendor_key", &err))?,
            cache_keys: self.cache_keys.clone(),
            installed: self
                .installed_version
                .parse()
                .map_err(|err| bad("installed_version", &err))?,
            tries: self.tries,
            health_deadline: Duration::from_secs(self.health_deadline_secs),
        })
    }
}

fn default_efivars() -> PathBuf {
    PathBuf::from("/sys/firmware/efi/efivars")
}
const fn default_tries() -> u32 {
    3
}
const fn default_health_deadline() -> u64 {
    900
}
fn default_nix() -> PathBuf {
    PathBuf::from("nix")
}
const fn default_timeout() -> u64 {
    60
}

fn fetch_signed(cfg: &UpdateConfig) -> anyhow::Result<SignedManifest> {
    let bytes = update::fetch_manifest(&cfg.manifest_url, Duration::from_secs(cfg.timeout_secs))
        .context("fetching the update manifest")?;
    Ok(SignedManifest::from_json(&bytes)?)
}

/// Records a step's evidence, then returns its outcome.
fn finish<T>(cfg: &UpdateConfig, step: Step<T>) -> anyhow::Result<T> {
    record(cfg, &step.records)?;
    Ok(step.result?)
}

/// Seals the records as `update` bundles, or queues them when osirisd holds the store.
fn record(cfg: &UpdateConfig, records: &[UpdateRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let sealed = setup::runtime().and_then(|runtime| {
        runtime.block_on(async {
            let store = setup::open_store(&cfg.data_dir, &cfg.site).await?;
            for record in records {
                store
                    .append(evidence::BundleDraft {
                        site: cfg.site.clone(),
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
        let path = cfg.state_dir.join("pending-evidence.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        for record in records {
            writeln!(file, "{}", serde_json::to_string(&record.body())?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        file.sync_all()
            .with_context(|| format!("writing {}", path.display()))?;
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

/// The health gate seen from outside the daemon, through its local API.
struct ApiGate {
    client: api::Client,
    baseline_bundles: Option<u64>,
    scan_requested: bool,
}

impl ApiGate {
    fn new(socket: &Path) -> ApiGate {
        ApiGate {
            client: api::Client::new(socket).with_timeout(Duration::from_secs(10)),
            baseline_bundles: None,
            scan_requested: false,
        }
    }
}

impl HealthGate for ApiGate {
    fn daemon_up(&mut self) -> Probe {
        match self.client.status() {
            Ok(status) => {
                if self.baseline_bundles.is_none() {
                    self.baseline_bundles = Some(status.evidence.bundles);
                }
                if !self.scan_requested {
                    self.scan_requested = self.client.scan_now().is_ok();
                }
                Probe::Pass
            }
            Err(err) => Probe::Pending(format!(
                "osirisd does not answer on {}: {err}",
                self.client.socket().display()
            )),
        }
    }

    fn scan_completed(&mut self) -> Probe {
        match self.client.status() {
            Ok(status)
                if status
                    .last_scan_at
                    .is_some_and(|at| at >= status.started_at) =>
            {
                Probe::Pass
            }
            Ok(_) => Probe::Pending("no scan has finished since osirisd started".to_owned()),
            Err(err) => Probe::Pending(format!("status unavailable: {err}")),
        }
    }

    fn evidence_appended(&mut self) -> Probe {
        match (self.client.status(), self.baseline_bundles) {
            (Ok(status), Some(baseline)) if status.evidence.bundles > baseline => Probe::Pass,
            (Ok(_), _) => Probe::Pending("no evidence bundle appended yet".to_owned()),
            (Err(err), _) => Probe::Pending(format!("status unavailable: {err}")),
        }
    }
}
