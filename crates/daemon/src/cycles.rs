//! One run of each cycle, and the loop that schedules it. Runs of the same cycle never overlap:
//! each cycle has one loop; a trigger while it runs queues exactly one more run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;

use api::CycleKind;
use incidents::Event;
use ops::heal::HealOptions;

use crate::{Shared, derive, now, schedule};

/// Runs `kind` whenever it is due or triggered, until shutdown.
pub(crate) async fn cycle_loop(shared: Arc<Shared>, kind: CycleKind) {
    let interval = schedule::interval(&shared.settings.config.daemon, kind);
    let last = shared
        .state()
        .saved
        .cycles
        .get(kind.as_str())
        .and_then(|c| c.last_started_at);
    let control = shared.cycle(kind);
    control.set_next_due(schedule::first_due(kind, last, interval, now()));
    let mut shutdown = shared.shutdown.clone();
    loop {
        let due = control.next_due().unwrap_or_else(now);
        let wait = std::time::Duration::from_secs(due.saturating_sub(now()).max(0) as u64);
        let triggered = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = control.trigger.notified() => true,
            _ = shutdown.changed() => false,
        };
        if *shutdown.borrow() {
            return;
        }
        if triggered {
            // Someone asked for a scan: it runs what is due, not only the last drift.
            take_drift_focus(&shared);
        }
        let found_drift = run_once(&shared, kind).await;
        let draw: f64 = rand::random();
        let daemon = &shared.settings.config.daemon;
        let next = match kind {
            CycleKind::ServerScan => schedule::next_server_scan(daemon, found_drift, now(), draw),
            _ => now() + schedule::jittered(interval, daemon.jitter_percent, draw) as i64,
        };
        control.set_next_due(next);
    }
}

/// Runs one cycle, records its outcome; returns whether it found drift.
pub(crate) async fn run_once(shared: &Arc<Shared>, kind: CycleKind) -> bool {
    let started = now();
    shared.cycle(kind).set_running(true);
    {
        let mut state = shared.state();
        let record = state
            .saved
            .cycles
            .entry(kind.as_str().to_owned())
            .or_default();
        record.last_started_at = Some(started);
    }
    shared.save().await;
    tracing::info!(cycle = kind.as_str(), "Cycle started.");
    let result = match kind {
        CycleKind::ServerScan => server_scan(shared).await,
        CycleKind::WorkstationScan => workstation_scan(shared).await,
        CycleKind::Discovery => discovery(shared).await,
        CycleKind::CloudScan => cloud_scan(shared).await,
        CycleKind::RmmImport => rmm_import(shared).await,
        CycleKind::Anchor => anchor(shared).await,
        CycleKind::Checkpoint => checkpoint(shared).await,
    };
    let finished = now();
    let (outcome, failed, drift) = match result {
        Ok(outcome) => (outcome.summary, false, outcome.drift),
        Err(err) => {
            tracing::error!(cycle = kind.as_str(), error = %format!("{err:#}"), "Cycle failed.");
            (format!("failed: {err:#}"), true, false)
        }
    };
    if !failed {
        tracing::info!(cycle = kind.as_str(), secs = finished - started, outcome = %outcome, "Cycle finished.");
    }
    {
        let mut state = shared.state();
        let record = state
            .saved
            .cycles
            .entry(kind.as_str().to_owned())
            .or_default();
        record.runs += 1;
        record.last_finished_at = Some(finished);
        record.last_outcome = Some(outcome);
        record.last_failed = failed;
    }
    shared.cycle(kind).set_running(false);
    shared.save().await;
    drift
}

/// What one run did.
struct Outcome {
    summary: String,
    drift: bool,
}

/// Scans the configured targets, heals what L1 covers, and updates devices and incidents.
/// The quicker run after drift checks only what still failed then; its other results are
/// carried from the run that found the drift.
async fn server_scan(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let config = &shared.settings.config;
    let focus = take_drift_focus(shared);
    let focused = !focus.is_empty();
    if focused {
        let checks: usize = focus.values().map(BTreeSet::len).sum();
        tracing::info!(
            targets = focus.len(),
            checks,
            "Re-scanning only the checks that drifted."
        );
    }
    let options = ops::scan::ScanOptions {
        focus: (!focus.is_empty()).then_some(focus),
        ..Default::default()
    };
    let (outcome, reports) = scan_and_heal_reports(
        shared,
        config,
        &ops::secrets::HostPasswords::default(),
        "servers",
        &options,
    )
    .await?;
    // Only a full run names the next run's focus: while drift persists, focused and full runs
    // alternate, so the checks that pass are never carried for longer than one quick re-scan.
    if outcome.drift && !focused {
        let focus: BTreeMap<String, BTreeSet<String>> = reports
            .iter()
            .filter_map(|report| {
                let failing: BTreeSet<String> = report
                    .results
                    .iter()
                    .filter(|r| r.outcome.status == model::CheckStatus::Fail)
                    .map(|r| r.runbook_id.clone())
                    .collect();
                (!failing.is_empty()).then(|| (report.target.name.clone(), failing))
            })
            .collect();
        if let Ok(mut slot) = shared.drift_focus.lock() {
            *slot = focus;
        }
    }
    Ok(outcome)
}

fn take_drift_focus(shared: &Shared) -> BTreeMap<String, BTreeSet<String>> {
    shared
        .drift_focus
        .lock()
        .map(|mut slot| std::mem::take(&mut *slot))
        .unwrap_or_default()
}

/// Scans the workstations of the last AD inventory that answer, then heals them like servers.
async fn workstation_scan(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let settings = &shared.settings;
    let Some(plan) = ops::workstations::plan(&settings.config, &settings.data_dir).await? else {
        return Ok(Outcome {
            summary: "no [workstations] configured".to_owned(),
            drift: false,
        });
    };
    let mut config = settings.config.clone();
    // A workstation with a fresh agent is checked by its agent, not polled over WinRM; one that
    // did not answer WinRM (a laptop away from the office) but whose agent reports counts too.
    let now = now();
    let agents = shared.agents.get();
    let covered = |name: &str| agents.is_some_and(|a| a.covers(name, now));
    let (by_agent, by_winrm): (Vec<_>, Vec<_>) = plan
        .targets
        .iter()
        .cloned()
        .partition(|target| covered(&target.name));
    let mut plan = plan;
    let mut agent_names: Vec<String> = by_agent.iter().map(|t| t.name.clone()).collect();
    plan.not_checked.retain(|entry| {
        match entry.dns_host_name.as_deref().filter(|name| covered(name)) {
            Some(name) => {
                agent_names.push(name.to_lowercase());
                false
            }
            None => true,
        }
    });
    let agent_reports: Vec<ops::workstations::AgentReport> = agent_names
        .iter()
        .map(|name| ops::workstations::AgentReport {
            name: name.clone(),
            results: agents.map(|a| a.latest(name)).unwrap_or_default(),
        })
        .collect();
    let winrm_names: Vec<String> = by_winrm.iter().map(|t| t.name.clone()).collect();
    config.targets = by_winrm;
    let (outcome, reports) = scan_and_heal_reports(
        shared,
        &config,
        &plan.passwords,
        "workstations",
        &ops::scan::ScanOptions::default(),
    )
    .await?;
    let ws_reports: Vec<&scan::TargetReport> = reports
        .iter()
        .filter(|r| winrm_names.contains(&r.target.name))
        .collect();
    let body = ops::workstations::summary(&plan, &ws_reports, &agent_reports);
    let appended = shared
        .store
        .append(evidence::BundleDraft {
            site: settings.config.site.clone(),
            kind: evidence_schema::KIND_WORKSTATION_SUMMARY.to_owned(),
            catalog: settings.catalog.version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::to_value(&body)?,
        })
        .await
        .context("recording the workstation summary")?;
    Ok(Outcome {
        summary: format!(
            "{} ({} known, {} checked, {} of them by their agent, {} not checked; summary bundle #{})",
            outcome.summary,
            body.known,
            body.checked,
            body.checked_by_agent,
            body.not_checked.len(),
            appended.seq
        ),
        drift: outcome.drift,
    })
}

/// Scans the `[[cloud]]` tenants, seals their reports, and files their results as incidents and
/// compliance scores like a target's. Tenants are not machines, so they join no device list
/// (nor Central Command's, whose device classes are machines'); nothing heals them.
async fn cloud_scan(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let settings = &shared.settings;
    let config = &settings.config;
    let catalog = &settings.catalog;
    let scans = ops::cloud::scan_tenants(config, catalog, &settings.data_dir, None).await?;
    let reports: Vec<scan::TargetReport> = scans.iter().map(|s| s.report.clone()).collect();
    let bundles = ops::scan::record_scans(&shared.store, config, catalog, &reports).await?;
    let derived: Vec<_> = reports
        .iter()
        .map(|report| {
            (
                report.target.name.clone(),
                derive::scores(report),
                derive::scan_events(catalog, report),
                report.summary(),
            )
        })
        .collect();
    let (mut failed, mut errors, mut joined) = (0, 0, 0);
    {
        let mut state = shared.state();
        let now = now();
        for scan in &scans {
            let tenant = &scan.report.target.name;
            let reported = derive::intune_states(tenant, &scan.managed_devices, now);
            joined = state.set_intune(tenant, reported);
        }
        for (name, scores, events, summary) in derived {
            failed += summary.fail;
            errors += summary.error;
            state.scores.insert(name, scores);
            for (target, check, event) in events {
                let failing = matches!(event, incidents::Event::Failed { .. });
                state
                    .ledger
                    .apply(&target, &check, event, now, &settings.incident_policy);
                // Nothing heals a tenant's setting: a person changes it in the provider's admin
                // centre, so a failure goes to a person as an L1 finding without a rule does.
                if failing {
                    let reason =
                        "a cloud tenant's setting: change it in the provider's admin centre"
                            .to_owned();
                    state.ledger.apply(
                        &target,
                        &check,
                        incidents::Event::Escalated { reason },
                        now,
                        &settings.incident_policy,
                    );
                }
            }
        }
    }
    shared.save().await;
    if failed > 0 {
        shared.notifier.notify_one();
    }
    Ok(Outcome {
        summary: format!(
            "{} tenants scanned; {failed} checks failed, {errors} could not be checked; {joined} machines joined with Intune; bundles {}",
            reports.len(),
            bundles
                .iter()
                .map(|(name, seq)| format!("#{seq} ({name})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        drift: false,
    })
}

/// Scans `config`'s targets, heals what L1 covers, and updates devices and incidents; returns
/// the outcome and the scan reports.
/// `passwords`: this cycle's LAPS passwords of the discovered workstations.
async fn scan_and_heal_reports(
    shared: &Arc<Shared>,
    config: &config::Config,
    passwords: &ops::secrets::HostPasswords,
    what: &str,
    options: &ops::scan::ScanOptions,
) -> anyhow::Result<(Outcome, Vec<scan::TargetReport>)> {
    let settings = &shared.settings;
    let catalog = &settings.catalog;
    let scanned =
        ops::scan::scan_with(config, catalog, &settings.data_dir, passwords, options).await?;
    let reports: Vec<scan::TargetReport> = scanned.iter().map(|s| s.report.clone()).collect();
    ops::scan::record_scans(&shared.store, config, catalog, &reports).await?;
    let now = now();
    // Derived outside the locks, so the API keeps answering while a big site is processed.
    let addresses: std::collections::HashMap<&str, &str> = config
        .targets
        .iter()
        .filter_map(|t| Some((t.name.as_str(), t.address()?)))
        .collect();
    let derived: Vec<_> = reports
        .iter()
        .map(|report| {
            let address = addresses
                .get(report.target.name.as_str())
                .map(|a| (*a).to_owned());
            (
                derive::device(catalog, report, address),
                derive::scores(report),
                derive::scan_events(catalog, report),
            )
        })
        .collect();
    let drift = derived
        .iter()
        .any(|(device, _, _)| device.status == api::DeviceStatus::Drifted);
    {
        let mut state = shared.state();
        for (device, device_scores, events) in derived {
            state.scores.insert(device.name.clone(), device_scores);
            state.put_device(device);
            for (target, check, event) in events {
                state
                    .ledger
                    .apply(&target, &check, event, now, &settings.incident_policy);
            }
        }
        if what == "servers" {
            let site = derive::site_compliance(
                catalog,
                derive::frameworks(),
                &shared.accepted(),
                state.scores.iter(),
            );
            let points: Vec<(String, Option<u32>)> =
                site.into_iter().map(|(f, _, _, _, p)| (f, p)).collect();
            state.push_trend(&points);
        }
    }
    shared.save().await;
    let (paused, windows) = {
        let state = shared.state();
        let windows: Vec<incidents::MaintenanceWindow> = state
            .saved
            .maintenance
            .iter()
            .map(|m| m.window.clone())
            .collect();
        (state.saved.pause.is_some(), windows)
    };
    let mut policy = ops::heal::policy(&config.healing);
    policy.paused |= paused;
    let in_maintenance =
        move |target: &str| incidents::maintenance_for(&windows, target, crate::now()).is_some();
    let options = HealOptions {
        policy,
        in_maintenance: &in_maintenance,
        dry_run: false,
        l2: settings.l2.as_ref(),
    };
    // A person's flywheel decision, or a demotion the last heals earned, takes effect now.
    crate::flywheel::reload(shared).await;
    let rules = shared.l1.get();
    let healed =
        ops::heal::heal_scanned(&shared.store, config, catalog, &rules, scanned, &options).await?;
    let mut tally = derive::Tally::default();
    {
        let mut state = shared.state();
        let now = crate::now();
        for one in &healed {
            tally.add(&one.record.result);
            apply_heal(
                &mut state,
                settings,
                &one.target.name,
                &one.record,
                one.seq,
                now,
            );
        }
        let effects = state.ledger.tick(now, &settings.incident_policy);
        tracing::debug!(closed = effects.len(), "Quiet resolved incidents closed.");
    }
    shared.save().await;
    if tally.for_person > 0 {
        shared.notifier.notify_one();
    }
    let derive::Tally {
        fixed,
        for_person,
        held,
    } = tally;
    Ok((
        Outcome {
            summary: format!(
                "{} {what} scanned; {fixed} fixed, {for_person} for a person, {held} held",
                reports.len()
            ),
            drift,
        },
        reports,
    ))
}

/// Applies one L1 outcome to the incident ledger and the healing log.
pub(crate) fn apply_heal(
    state: &mut crate::state::State,
    settings: &crate::shared::Settings,
    target: &str,
    record: &heal::HealRecord,
    seq: Option<u64>,
    now: i64,
) {
    for event in derive::heal_events(record) {
        state
            .ledger
            .apply(target, &record.check, event, now, &settings.incident_policy);
    }
    if let Some(entry) = derive::healing_entry(target, record, seq, now) {
        state.log_healing(entry);
    }
}

/// Reads AD; known workstations that were never scanned appear as devices of unknown state.
async fn discovery(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let settings = &shared.settings;
    let secrets = ops::secrets::Secrets::new(&settings.config, &settings.data_dir);
    let cfg = ops::discover::directory_config(&settings.config, &secrets)?;
    let (body, seq) = ops::discover::discover_and_record(
        &shared.store,
        &settings.config,
        &cfg,
        &settings.data_dir,
    )
    .await?;
    {
        let mut state = shared.state();
        for computer in body
            .computers
            .iter()
            .filter(|c| c.class == "workstation" && !c.disabled)
        {
            // The same name the workstation cycle scans it under (its DNS name, lower case).
            let name = computer
                .dns_host_name
                .as_deref()
                .unwrap_or_else(|| computer.account.trim_end_matches('$'))
                .to_lowercase();
            state.saved.devices.entry(name.clone()).or_insert_with(|| {
                derive::unscanned(name, model::Platform::WindowsWorkstation, None)
            });
        }
    }
    Ok(Outcome {
        summary: format!(
            "{} computers in {} ({} workstations), inventory bundle #{seq}",
            body.counts.total, body.domain, body.counts.workstations
        ),
        drift: false,
    })
}

/// Imports each `[[rmm]]` inventory, reconciled with the last AD inventory, and seals it. One
/// RMM failing does not stop the others; the cycle fails naming every one that did.
async fn rmm_import(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let settings = &shared.settings;
    let config = &settings.config;
    let secrets = ops::secrets::Secrets::new(config, &settings.data_dir);
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for rmm in ops::rmm::selected(config, None)? {
        let imported = match ops::rmm::settings(rmm, &secrets) {
            Ok(rmm_settings) => {
                ops::rmm::import_and_record(
                    &shared.store,
                    config,
                    rmm,
                    &rmm_settings,
                    &settings.data_dir,
                )
                .await
            }
            Err(err) => Err(err),
        };
        match imported {
            Ok((body, seq)) => {
                let c = &body.counts;
                done.push(if body.directory.is_some() {
                    format!(
                        "{}: {} devices, {} only in the RMM, {} without an RMM agent (bundle #{seq})",
                        rmm.name, c.devices, c.rmm_only, c.directory_only
                    )
                } else {
                    format!(
                        "{}: {} devices, not reconciled (no AD inventory yet) (bundle #{seq})",
                        rmm.name, c.devices
                    )
                });
            }
            Err(err) => failed.push(format!("{}: {err:#}", rmm.name)),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{}{}",
            failed.join("; "),
            if done.is_empty() {
                String::new()
            } else {
                format!(" (imported: {})", done.join("; "))
            }
        );
    }
    Ok(Outcome {
        summary: done.join("; "),
        drift: false,
    })
}

async fn anchor(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    let evidence = &shared.settings.config.evidence;
    let timeout = std::time::Duration::from_secs(evidence.timeout_secs);
    let esplora = evidence.esplora_url.as_deref();
    let upgraded = ops::anchor::upgrade_pending(&shared.store, esplora, timeout).await?;
    let anchored = upgraded
        .iter()
        .filter(|u| u.bitcoin_height.is_some())
        .count();
    let submitted = ops::anchor::submit_checkpoint(&shared.store, &evidence.calendars, timeout)
        .await
        .context("submitting a checkpoint to the OpenTimestamps calendars");
    refresh_ots_counts(shared).await;
    let submitted = submitted?;
    Ok(Outcome {
        summary: format!(
            "checkpoint {} submitted to {} calendars; {anchored} earlier proofs anchored",
            submitted.checkpoint_size,
            submitted.accepted.len()
        ),
        drift: false,
    })
}

async fn checkpoint(shared: &Arc<Shared>) -> anyhow::Result<Outcome> {
    crate::updates::seal_pending(shared).await;
    let size = shared.store.size();
    let latest = shared.store.latest_checkpoint().await?;
    if latest.as_ref().is_some_and(|c| c.size == size) {
        return Ok(Outcome {
            summary: format!("log unchanged at {size} bundles"),
            drift: false,
        });
    }
    let checkpoint = shared
        .store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    Ok(Outcome {
        summary: format!("checkpoint signed at {} bundles", checkpoint.size),
        drift: false,
    })
}

/// Re-reads how many proofs are pending and anchored (status shows the cached counts).
pub(crate) async fn refresh_ots_counts(shared: &Shared) {
    match shared.store.ots_proofs().await {
        Ok(proofs) => {
            let pending = proofs
                .iter()
                .filter(|p| p.status == store::OtsStatus::Pending)
                .count() as u64;
            shared
                .facts
                .set_ots_counts(pending, proofs.len() as u64 - pending);
        }
        Err(err) => {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::new(err)), "Could not count the OpenTimestamps proofs.")
        }
    }
}

/// Applies one incident event from outside a scan (acknowledge, close) and saves.
pub(crate) async fn incident_event(shared: &Shared, target: &str, check: &str, event: Event) {
    {
        let mut state = shared.state();
        state.ledger.apply(
            target,
            check,
            event,
            now(),
            &shared.settings.incident_policy,
        );
    }
    shared.save().await;
}
