//! The update state machine (Idle → Downloaded → Verified → Staged → Booted → Good | RolledBack),
//! persisted in a state file so that a reboot mid-way resumes, the health gate, and the
//! evidence records every step produces.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::boot::{BootError, BootLoader, EntrySpec};
use crate::closure::{Cache, ClosureError, ImportError, VerifiedClosure, fetch_and_verify};
use update_manifest::{
    Manifest, ManifestError, SignedManifest, Uki, VendorKey, Version, check_secure_boot,
};

/// The `kind` of evidence bundles that carry an [`UpdateRecord`] body.
pub const KIND_UPDATE: &str = "update";

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "update-state.json";

/// Where an update stands. Persisted as JSON (`"phase": "staged"`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Phase {
    /// No update in progress.
    Idle,
    /// A signed manifest was verified and accepted; the closure is not fetched yet.
    Downloaded {
        /// The accepted manifest.
        manifest: Manifest,
        /// The signed UKI it names, kept only when this appliance boots with Secure Boot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uki: Option<Uki>,
    },
    /// The closure verified and was imported into the store.
    Verified {
        /// The accepted manifest.
        manifest: Manifest,
        /// Number of store paths in the closure.
        paths: usize,
        /// The signed UKI, verified and imported with the closure (Secure Boot only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uki: Option<Uki>,
    },
    /// The new system is the next boot entry, with boot counting.
    Staged {
        /// The accepted manifest.
        manifest: Manifest,
        /// The new boot entry id.
        entry: String,
        /// The entry that was running when it was staged (the rollback target).
        previous: Option<String>,
        /// Boot attempts granted.
        tries: u32,
    },
    /// The new system booted and is being health-gated.
    Booted {
        /// The accepted manifest.
        manifest: Manifest,
        /// The running entry id.
        entry: String,
        /// The rollback target.
        previous: Option<String>,
        /// RFC 3339: the gate must pass before this.
        deadline: String,
    },
    /// The new system passed its health gate; its entry is blessed.
    Good {
        /// The accepted manifest.
        manifest: Manifest,
        /// The blessed entry id.
        entry: String,
    },
    /// The new system was given up on; the boot loader prefers the previous entry.
    RolledBack {
        /// The manifest that was given up on.
        manifest: Manifest,
        /// The entry marked bad.
        entry: String,
        /// The entry the appliance goes back to.
        previous: Option<String>,
        /// Why.
        reason: String,
    },
}

/// What this appliance trusts and how patient it is: fixed at build time by the NixOS module.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The pinned vendor key that signs manifests.
    pub vendor_key: VendorKey,
    /// The pinned narinfo keys (`name:base64`).
    pub cache_keys: Vec<String>,
    /// The running release.
    pub installed: Version,
    /// Boot attempts granted to a new entry (systemd-boot `+N`).
    pub tries: u32,
    /// How long after boot the health gate may take.
    pub health_deadline: Duration,
    /// The appliance boots only signed UKIs: manifests must name one, and it is staged as a
    /// type #2 entry.
    pub secure_boot: bool,
}

/// How the verified closure gets into the store the boot entry points at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Importer {
    /// `nix copy --from file://<verified cache>` into the system store (or `to`), re-checking
    /// signatures against the pinned keys.
    Nix {
        /// The `nix` program.
        program: PathBuf,
        /// Target store URI; `None`: the system store.
        to: Option<String>,
        /// Where store paths can be read afterwards (`/` for the system store, the chroot root
        /// for `local?root=`).
        root: PathBuf,
    },
    /// Unpack the NARs into `store_root/<basename>` (tests, inspection).
    Unpack {
        /// Directory that plays `/nix/store`.
        store_root: PathBuf,
    },
}

/// One probe of the health gate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// The probe passed.
    Pass,
    /// Not yet; may pass later (the reason says what is awaited).
    Pending(String),
    /// Failed for good: roll back now.
    Fail(String),
}

/// The health gate after an update's first boot; the daemon implements it.
pub trait HealthGate {
    /// Is `osirisd` running and answering on its local API?
    fn daemon_up(&mut self) -> Probe;
    /// Has a scan cycle completed since boot?
    fn scan_completed(&mut self) -> Probe;
    /// Has a bundle been appended to the evidence log since boot?
    fn evidence_appended(&mut self) -> Probe;
}

/// What the caller must do after a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateDecision {
    /// Nothing to gate (no update pending).
    Idle,
    /// Not decided yet; check again later.
    Wait,
    /// The new system is good.
    Good,
    /// Rolled back: reboot now to return to the previous system.
    RebootNow,
}

/// One step of an update, as evidence. The caller seals it as a bundle of kind [`KIND_UPDATE`]
/// with [`UpdateRecord::body`] as the body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateRecord {
    /// `manifest_verified`, `manifest_refused`, `closure_verified`, `closure_refused`,
    /// `closure_imported`, `entry_staged`, `booted`, `boot_fallback`, `health_check`,
    /// `marked_good`, `rolled_back`.
    pub step: String,
    /// `ok`, `refused`, `failed` or `pending`.
    pub outcome: String,
    /// RFC 3339 UTC time of the step.
    pub at: String,
    /// Release version concerned.
    pub version: Option<String>,
    /// System store path concerned.
    pub system: Option<String>,
    /// Step-specific facts (path counts, hashes, probe results, error text).
    pub detail: serde_json::Value,
}

/// The result of an updater step: the evidence it produced, whatever the outcome, and the outcome.
#[derive(Debug)]
pub struct Step<T> {
    /// Records to append to the evidence log, in order.
    pub records: Vec<UpdateRecord>,
    /// The outcome.
    pub result: Result<T, UpdateError>,
}

/// Drives one update through its phases over a state directory and a boot loader.
#[derive(Debug)]
pub struct Updater<B: BootLoader> {
    state_dir: PathBuf,
    boot: B,
    phase: Phase,
}

/// Why an updater step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The manifest was refused.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The closure was refused or could not be fetched.
    #[error(transparent)]
    Closure(#[from] ClosureError),
    /// Importing into the store failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A boot-entry operation failed.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The step does not apply in the current phase.
    #[error("cannot {action} while the update is {phase}; run `osiris update status`")]
    WrongPhase {
        /// What was asked.
        action: &'static str,
        /// The current phase's name.
        phase: &'static str,
    },
    /// The state file cannot be written (the step, the path and the reason are the source).
    #[error("saving the update state")]
    Save(#[from] durable::Error),
    /// The state file cannot be read or parsed.
    #[error("{action} update state {path}: {reason}")]
    State {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl Phase {
    /// The phase's name as written in the state file.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Downloaded { .. } => "downloaded",
            Phase::Verified { .. } => "verified",
            Phase::Staged { .. } => "staged",
            Phase::Booted { .. } => "booted",
            Phase::Good { .. } => "good",
            Phase::RolledBack { .. } => "rolled_back",
        }
    }

    /// The manifest of the update in progress or last finished.
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Phase::Idle => None,
            Phase::Downloaded { manifest, .. }
            | Phase::Verified { manifest, .. }
            | Phase::Staged { manifest, .. }
            | Phase::Booted { manifest, .. }
            | Phase::Good { manifest, .. }
            | Phase::RolledBack { manifest, .. } => Some(manifest),
        }
    }
}

/// The phase persisted in `state_dir`; `None` when no update was ever started there.
pub fn read_phase(state_dir: &Path) -> Result<Option<Phase>, UpdateError> {
    let path = state_dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| UpdateError::State {
                action: "parsing",
                path,
                reason: format!("{err}; move the file aside to start over"),
            }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(UpdateError::State {
            action: "reading",
            path,
            reason: err.to_string(),
        }),
    }
}

impl UpdateRecord {
    /// The evidence bundle body: this record as a JSON object.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Importer {
    /// Where the files of store path `system` can be read after import.
    pub fn system_dir(&self, system: &str) -> PathBuf {
        match self {
            Importer::Nix { root, .. } => root.join(system.trim_start_matches('/')),
            Importer::Unpack { store_root } => {
                store_root.join(system.rsplit('/').next().unwrap_or(system))
            }
        }
    }

    /// Where the store file `path` (a store path or a file inside one) can be read after import.
    pub fn store_file(&self, path: &str) -> PathBuf {
        match self {
            Importer::Nix { root, .. } => root.join(path.trim_start_matches('/')),
            Importer::Unpack { store_root } => {
                store_root.join(path.strip_prefix("/nix/store/").unwrap_or(path))
            }
        }
    }

    fn import(&self, closure: &VerifiedClosure) -> Result<(), ImportError> {
        match self {
            Importer::Nix { program, to, .. } => closure.import_with_nix(program, to.as_deref()),
            Importer::Unpack { store_root } => closure.unpack_into(store_root),
        }
    }
}

impl<B: BootLoader> Updater<B> {
    /// Opens the updater over `state_dir` (created if missing), resuming the persisted phase.
    pub fn open(state_dir: &Path, boot: B) -> Result<Updater<B>, UpdateError> {
        fs::create_dir_all(state_dir).map_err(|err| UpdateError::State {
            action: "creating",
            path: state_dir.to_path_buf(),
            reason: err.to_string(),
        })?;
        let phase = read_phase(state_dir)?.unwrap_or(Phase::Idle);
        Ok(Updater {
            state_dir: state_dir.to_path_buf(),
            boot,
            phase,
        })
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The boot loader.
    pub fn boot(&self) -> &B {
        &self.boot
    }

    /// Verifies a signed manifest and checks it may be applied: Idle/Good/RolledBack → Downloaded.
    pub fn accept_manifest(
        &mut self,
        signed: &SignedManifest,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Step<Manifest> {
        if !matches!(
            self.phase,
            Phase::Idle | Phase::Good { .. } | Phase::RolledBack { .. } | Phase::Downloaded { .. }
        ) {
            return self.wrong_phase("accept a new manifest");
        }
        let checked = signed
            .verify_release(&policy.vendor_key)
            .and_then(|(manifest, uki)| {
                manifest.check_applicable(policy.installed, &policy.cache_keys)?;
                // Every phase but Idle holds the last accepted manifest: its counter never goes back.
                manifest.check_fresh(now, self.phase.manifest())?;
                check_secure_boot(&manifest, uki.as_ref(), policy.secure_boot)?;
                Ok((manifest, uki.filter(|_| policy.secure_boot)))
            });
        match checked {
            Ok((manifest, uki)) => {
                let mut detail = serde_json::json!({
                    "key": signed.key,
                    "installed": policy.installed.to_string(),
                    "min_version": manifest.min_version,
                    "cache_url": manifest.cache_url,
                    "released": manifest.released,
                });
                // Only with Secure Boot: the signed UKI the appliance will boot.
                if let (Some(uki), Some(fields)) = (&uki, detail.as_object_mut()) {
                    fields.insert("uki".to_owned(), serde_json::json!(uki));
                }
                let record = record("manifest_verified", "ok", now, Some(&manifest), detail);
                self.transition(
                    Phase::Downloaded {
                        manifest: manifest.clone(),
                        uki,
                    },
                    vec![record],
                    manifest,
                )
            }
            Err(err) => Step {
                records: vec![record(
                    "manifest_refused",
                    "refused",
                    now,
                    None,
                    serde_json::json!({"key": signed.key, "error": error_text(&err)}),
                )],
                result: Err(err.into()),
            },
        }
    }

    /// Fetches and verifies the closure, then imports it: Downloaded → Verified.
    /// On refusal the phase stays Downloaded and nothing is staged.
    pub fn fetch(&mut self, cache: &Cache, importer: &Importer, now: OffsetDateTime) -> Step<()> {
        let Phase::Downloaded { manifest, uki } = &self.phase else {
            return self.wrong_phase("fetch the closure");
        };
        let manifest = manifest.clone();
        let uki = uki.clone();
        let mut records = Vec::new();
        let local_cache = self.state_dir.join(format!("cache-{}", manifest.version));
        let paths = match self.fetch_one(
            cache,
            importer,
            (&manifest.system, &local_cache),
            ("closure", &manifest, now),
            &mut records,
        ) {
            Ok(paths) => paths,
            Err(err) => {
                return Step {
                    records,
                    result: Err(err),
                };
            }
        };
        // The signed UKI is its own store path in the cache, verified and imported the same way.
        if let Some(uki) = &uki {
            let local_cache = self
                .state_dir
                .join(format!("cache-{}-uki", manifest.version));
            if let Err(err) = self.fetch_one(
                cache,
                importer,
                (uki.store_path(), &local_cache),
                ("uki", &manifest, now),
                &mut records,
            ) {
                return Step {
                    records,
                    result: Err(err),
                };
            }
        }
        self.transition(
            Phase::Verified {
                manifest,
                paths,
                uki,
            },
            records,
            (),
        )
    }

    /// Fetches, verifies and imports the closure of `root` into `local_cache`, recording
    /// `<what>_refused`/`<what>_verified`/`<what>_imported`; returns its number of paths.
    fn fetch_one(
        &self,
        cache: &Cache,
        importer: &Importer,
        (root, local_cache): (&str, &Path),
        (what, manifest, now): (&str, &Manifest, OffsetDateTime),
        records: &mut Vec<UpdateRecord>,
    ) -> Result<usize, UpdateError> {
        let _ = fs::remove_dir_all(local_cache);
        let closure = match fetch_and_verify(cache, root, &manifest.cache_keys, local_cache) {
            Ok(closure) => closure,
            Err(err) => {
                records.push(record(
                    &format!("{what}_refused"),
                    "refused",
                    now,
                    Some(manifest),
                    serde_json::json!({"cache_url": cache.url(), "root": root, "error": error_text(&err)}),
                ));
                return Err(err.into());
            }
        };
        let nar_bytes: u64 = closure.paths.iter().map(|path| path.nar_size).sum();
        let file_bytes: u64 = closure.paths.iter().map(|path| path.file_size).sum();
        records.push(record(
            &format!("{what}_verified"),
            "ok",
            now,
            Some(manifest),
            serde_json::json!({
                "cache_url": cache.url(),
                "paths": closure.paths.len(),
                "nar_bytes": nar_bytes,
                "download_bytes": file_bytes,
                "root_nar_hash": closure.paths.first().map(|path| path.nar_hash.clone()),
                "signed_by": closure.paths.first().map(|path| path.signed_by.clone()),
            }),
        ));
        if let Err(err) = importer.import(&closure) {
            records.push(record(
                &format!("{what}_imported"),
                "failed",
                now,
                Some(manifest),
                serde_json::json!({"error": error_text(&err)}),
            ));
            return Err(err.into());
        }
        records.push(record(
            &format!("{what}_imported"),
            "ok",
            now,
            Some(manifest),
            serde_json::json!({"paths": closure.paths.len()}),
        ));
        Ok(closure.paths.len())
    }

    /// Installs the new boot entry with `policy.tries` attempts: Verified → Staged.
    /// The caller reboots afterwards.
    pub fn stage(&mut self, importer: &Importer, policy: &Policy, now: OffsetDateTime) -> Step<()> {
        let Phase::Verified { manifest, uki, .. } = &self.phase else {
            return self.wrong_phase("stage a boot entry");
        };
        let manifest = manifest.clone();
        let uki = uki.clone();
        if policy.secure_boot && uki.is_none() {
            let err = ManifestError::NoUki(manifest.version.clone());
            return self.failed("entry_staged", &manifest, err.into(), now);
        }
        let previous = match self.boot.booted() {
            Ok(booted) => booted,
            Err(err) => return self.failed("entry_staged", &manifest, err.into(), now),
        };
        let spec = EntrySpec::new(
            &manifest.version,
            &manifest.system,
            &importer.system_dir(&manifest.system),
        );
        let spec = match uki.as_ref().filter(|_| policy.secure_boot) {
            Some(uki) => spec.with_uki(&importer.store_file(&uki.path), &uki.sha256),
            None => spec,
        };
        let entry = match self.boot.install(&spec, policy.tries) {
            Ok(entry) => entry,
            Err(err) => return self.failed("entry_staged", &manifest, err.into(), now),
        };
        let records = vec![record(
            "entry_staged",
            "ok",
            now,
            Some(&manifest),
            serde_json::json!({"entry": entry.id, "tries": policy.tries, "previous": previous}),
        )];
        self.transition(
            Phase::Staged {
                manifest,
                entry: entry.id,
                previous,
                tries: policy.tries,
            },
            records,
            (),
        )
    }

    /// Called once after every boot: Staged → Booted (the new entry is running, the gate starts)
    /// or Staged → RolledBack (the boot loader fell back after the tries ran out).
    pub fn after_boot(&mut self, policy: &Policy, now: OffsetDateTime) -> Step<GateDecision> {
        let Phase::Staged {
            manifest,
            entry,
            previous,
            ..
        } = &self.phase
        else {
            return Step {
                records: Vec::new(),
                result: Ok(match self.phase {
                    Phase::Booted { .. } => GateDecision::Wait,
                    _ => GateDecision::Idle,
                }),
            };
        };
        let (manifest, entry, previous) = (manifest.clone(), entry.clone(), previous.clone());
        let booted = match self.boot.booted() {
            Ok(booted) => booted,
            Err(err) => return self.failed("booted", &manifest, err.into(), now),
        };
        if booted.as_deref() == Some(entry.as_str()) {
            let deadline = now + policy.health_deadline;
            let deadline = deadline.format(&Rfc3339).unwrap_or_default();
            let records = vec![record(
                "booted",
                "ok",
                now,
                Some(&manifest),
                serde_json::json!({"entry": entry, "health_deadline": deadline}),
            )];
            return self.transition(
                Phase::Booted {
                    manifest,
                    entry,
                    previous,
                    deadline,
                },
                records,
                GateDecision::Wait,
            );
        }
        // The firmware chose another entry: the new one used up its tries (or was never chosen).
        let reason = format!(
            "the new system did not come up: the boot loader started `{}` instead of `{entry}`",
            booted.as_deref().unwrap_or("an unknown entry")
        );
        let _ = self.boot.mark_bad(&entry);
        let records = vec![record(
            "boot_fallback",
            "failed",
            now,
            Some(&manifest),
            serde_json::json!({"entry": entry, "booted": booted, "reason": reason}),
        )];
        self.transition(
            Phase::RolledBack {
                manifest,
                entry,
                previous: booted,
                reason,
            },
            records,
            GateDecision::Idle,
        )
    }

    /// Runs the health probes once: Booted → Good (all pass), → RolledBack (a probe failed, or
    /// the deadline passed while one was pending), or stays Booted (`Wait`).
    pub fn check_health(
        &mut self,
        gate: &mut dyn HealthGate,
        now: OffsetDateTime,
    ) -> Step<GateDecision> {
        let Phase::Booted {
            manifest,
            entry,
            previous,
            deadline,
        } = &self.phase
        else {
            return Step {
                records: Vec::new(),
                result: Ok(GateDecision::Idle),
            };
        };
        let (manifest, entry, previous) = (manifest.clone(), entry.clone(), previous.clone());
        let deadline_passed = OffsetDateTime::parse(deadline, &Rfc3339).map_or(true, |d| now >= d);
        let probes = [
            ("daemon_up", gate.daemon_up()),
            ("scan_completed", gate.scan_completed()),
            ("evidence_appended", gate.evidence_appended()),
        ];
        let describe = |probe: &Probe| match probe {
            Probe::Pass => serde_json::json!("pass"),
            Probe::Pending(why) => serde_json::json!({"pending": why}),
            Probe::Fail(why) => serde_json::json!({"fail": why}),
        };
        let detail: serde_json::Map<String, serde_json::Value> = probes
            .iter()
            .map(|(name, probe)| ((*name).to_owned(), describe(probe)))
            .collect();
        let failed = probes.iter().find_map(|(name, probe)| match probe {
            Probe::Fail(why) => Some(format!("{name}: {why}")),
            _ => None,
        });
        let pending = probes.iter().find_map(|(name, probe)| match probe {
            Probe::Pending(why) => Some(format!("{name}: {why}")),
            _ => None,
        });
        let outcome = match (&failed, &pending) {
            (Some(_), _) => "failed",
            (None, Some(_)) if deadline_passed => "failed",
            (None, Some(_)) => "pending",
            (None, None) => "ok",
        };
        let mut records = vec![record(
            "health_check",
            outcome,
            now,
            Some(&manifest),
            serde_json::json!({"entry": entry, "probes": detail, "deadline": deadline}),
        )];
        let reason = match (failed, pending) {
            (Some(reason), _) => format!("health gate failed: {reason}"),
            (None, Some(reason)) if deadline_passed => {
                format!("health gate deadline {deadline} passed while waiting for {reason}")
            }
            (None, Some(_)) => {
                return Step {
                    records,
                    result: Ok(GateDecision::Wait),
                };
            }
            (None, None) => {
                if let Err(err) = self.boot.bless(&entry) {
                    let mut step = self.failed("marked_good", &manifest, err.into(), now);
                    records.append(&mut step.records);
                    step.records = records;
                    return step;
                }
                records.push(record(
                    "marked_good",
                    "ok",
                    now,
                    Some(&manifest),
                    serde_json::json!({"entry": entry, "by": "health_gate"}),
                ));
                return self.transition(
                    Phase::Good { manifest, entry },
                    records,
                    GateDecision::Good,
                );
            }
        };
        let mut step = self.roll_back(manifest, entry, previous, reason, now);
        records.append(&mut step.records);
        step.records = records;
        step
    }

    /// Polls [`Updater::check_health`] every `poll` until it decides (or the deadline decides).
    pub fn run_health_gate(
        &mut self,
        gate: &mut dyn HealthGate,
        poll: Duration,
    ) -> Step<GateDecision> {
        let mut records = Vec::new();
        loop {
            let mut step = self.check_health(gate, OffsetDateTime::now_utc());
            records.append(&mut step.records);
            match step.result {
                Ok(GateDecision::Wait) => std::thread::sleep(poll),
                result => return Step { records, result },
            }
        }
    }

    /// An operator's decision that the running update is good: Booted → Good.
    pub fn mark_good(&mut self, by: &str, now: OffsetDateTime) -> Step<()> {
        let Phase::Booted {
            manifest, entry, ..
        } = &self.phase
        else {
            return self.wrong_phase("mark the update good");
        };
        let (manifest, entry) = (manifest.clone(), entry.clone());
        if let Err(err) = self.boot.bless(&entry) {
            return self.failed("marked_good", &manifest, err.into(), now);
        }
        let records = vec![record(
            "marked_good",
            "ok",
            now,
            Some(&manifest),
            serde_json::json!({"entry": entry, "by": by}),
        )];
        self.transition(Phase::Good { manifest, entry }, records, ())
    }

    /// An operator's rollback of a staged or booted update: → RolledBack. The caller reboots
    /// when the update was booted.
    pub fn rollback(&mut self, reason: &str, now: OffsetDateTime) -> Step<GateDecision> {
        match &self.phase {
            Phase::Staged {
                manifest,
                entry,
                previous,
                ..
            }
            | Phase::Booted {
                manifest,
                entry,
                previous,
                ..
            } => {
                let (manifest, entry, previous) =
                    (manifest.clone(), entry.clone(), previous.clone());
                self.roll_back(manifest, entry, previous, reason.to_owned(), now)
            }
            _ => self.wrong_phase("roll back"),
        }
    }

    fn roll_back(
        &mut self,
        manifest: Manifest,
        entry: String,
        previous: Option<String>,
        reason: String,
        now: OffsetDateTime,
    ) -> Step<GateDecision> {
        if let Err(err) = self.boot.mark_bad(&entry) {
            return self.failed("rolled_back", &manifest, err.into(), now);
        }
        let next = self.boot.next_boot().ok().flatten().map(|entry| entry.id);
        let records = vec![record(
            "rolled_back",
            "ok",
            now,
            Some(&manifest),
            serde_json::json!({"entry": entry, "previous": previous, "next_boot": next, "reason": reason}),
        )];
        self.transition(
            Phase::RolledBack {
                manifest,
                entry,
                previous,
                reason,
            },
            records,
            GateDecision::RebootNow,
        )
    }

    fn transition<T>(&mut self, phase: Phase, records: Vec<UpdateRecord>, value: T) -> Step<T> {
        let path = self.state_dir.join(STATE_FILE);
        let res = write_state(&path, &phase);
        if res.is_ok() {
            self.phase = phase;
        }
        Step {
            records,
            result: res.map(|()| value),
        }
    }

    fn wrong_phase<T>(&self, action: &'static str) -> Step<T> {
        Step {
            records: Vec::new(),
            result: Err(UpdateError::WrongPhase {
                action,
                phase: self.phase.name(),
            }),
        }
    }

    fn failed<T>(
        &self,
        step: &str,
        manifest: &Manifest,
        err: UpdateError,
        now: OffsetDateTime,
    ) -> Step<T> {
        Step {
            records: vec![record(
                step,
                "failed",
                now,
                Some(manifest),
                serde_json::json!({"error": error_text(&err)}),
            )],
            result: Err(err),
        }
    }
}

fn record(
    step: &str,
    outcome: &str,
    now: OffsetDateTime,
    manifest: Option<&Manifest>,
    detail: serde_json::Value,
) -> UpdateRecord {
    UpdateRecord {
        step: step.to_owned(),
        outcome: outcome.to_owned(),
        at: now.format(&Rfc3339).unwrap_or_default(),
        version: manifest.map(|m| m.version.clone()),
        system: manifest.map(|m| m.system.clone()),
        detail,
    }
}

/// Replaces the state file durably (temporary sibling, fsync, rename, fsync the directory).
fn write_state(path: &Path, phase: &Phase) -> Result<(), UpdateError> {
    let bytes = serde_json::to_vec_pretty(phase).map_err(|err| UpdateError::State {
        action: "encoding",
        path: path.to_path_buf(),
        reason: err.to_string(),
    })?;
    // Readable by the daemon for status: it holds the phase and the manifest, no secret.
    Ok(durable::write(path, &bytes, 0o644)?)
}

/// An error and its causes, each once, as evidence records them.
fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn a_failed_save_names_each_cause_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        // A non-empty directory where the state file belongs: the rename cannot replace it.
        fs::create_dir_all(path.join("in-the-way")).expect("directory in the way");
        let err = write_state(&path, &Phase::Idle).expect_err("the save must fail");
        let text = error_text(&err).replace(&dir.path().display().to_string(), "$DIR");
        expect!["saving the update state: replacing $DIR/update-state.json: Is a directory (os error 21)"]
            .assert_eq(&text);
    }
}
