//! Importing the configured RMMs' device inventories (`[[rmm]]`): each secret read from the
//! vault, the devices read through `cloud::rmm`, reconciled with the last complete Active
//! Directory inventory, and sealed as a signed `rmm_inventory` bundle with a checkpoint.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use cloud::rmm::reconcile::{DirectoryComputer, Reconciled, Standing};
use cloud::rmm::{RmmDevice, RmmKind, RmmSettings};
use config::{PasswordSource, RmmConfig};
use evidence_schema::{
    RmmCounts, RmmDeviceRecord, RmmDirectoryRecord, RmmInventoryBody, RmmReconcileRecord,
};

use crate::BadConfig;

/// The `[[rmm]]` tables to import: all, or the one named `only`.
///
/// # Errors
/// When none is configured, or none is named `only`.
pub fn selected<'a>(
    config: &'a config::Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'a RmmConfig>> {
    let chosen: Vec<&RmmConfig> = config
        .rmm
        .iter()
        .filter(|r| only.is_none_or(|name| r.name == name))
        .collect();
    if chosen.is_empty() {
        return Err(BadConfig(match only {
            Some(name) => format!(
                "no `[[rmm]]` named `{name}` in the configuration (configured: {})",
                config
                    .rmm
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no `[[rmm]]` in the configuration: add one (name, kind, api_url, site, api_user, credential)".to_owned(),
        })
        .into());
    }
    Ok(chosen)
}

/// The `cloud` crate's settings for `rmm`, its secret read from the vault now.
///
/// # Errors
/// When the secret or the CA file cannot be read.
pub fn settings(rmm: &RmmConfig, secrets: &crate::secrets::Secrets) -> anyhow::Result<RmmSettings> {
    let what = format!("rmm `{}`", rmm.name);
    let secret = secrets.password(&what, &PasswordSource::Credential(rmm.credential.clone()))?;
    let ca_pem = rmm
        .ca_file
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("{what}: reading the CA file {}", path.display()))
        })
        .transpose()?;
    Ok(RmmSettings {
        kind: match rmm.kind {
            config::RmmKind::Datto => RmmKind::Datto,
            config::RmmKind::ConnectWiseAutomate => RmmKind::ConnectWiseAutomate,
        },
        api_url: rmm.api_url.clone(),
        site: rmm.site.clone(),
        user: rmm.api_user.clone(),
        secret,
        client_id: rmm.client_id.clone(),
        ca_pem,
        request_timeout: Duration::from_secs(30),
    })
}

/// Imports one RMM, reconciles it with the stored directory inventory and seals the result
/// (bundle and checkpoint). A failed import records nothing.
///
/// # Errors
/// When the RMM cannot be read completely, or the evidence cannot be written.
pub async fn import_and_record(
    store: &store::Store,
    config: &config::Config,
    rmm: &RmmConfig,
    settings: &RmmSettings,
    data_dir: &Path,
) -> anyhow::Result<(RmmInventoryBody, u64)> {
    let deadline = Instant::now() + Duration::from_secs(rmm.timeout_secs);
    let devices = cloud::rmm::devices(settings, deadline)
        .await
        .with_context(|| format!("importing the devices of rmm `{}`", rmm.name))?;
    let stored = crate::discover::stored_computers(data_dir)?;
    let domain = config.directory.as_ref().map(|d| d.domain.clone());
    let body = inventory_body(rmm, &devices, stored.as_deref(), domain, data_dir);
    let appended = store
        .append(evidence::BundleDraft {
            site: config.site.clone(),
            kind: evidence_schema::KIND_RMM_INVENTORY.to_owned(),
            catalog: String::new(),
            time: OffsetDateTime::now_utc(),
            body: serde_json::to_value(&body)?,
        })
        .await
        .context("recording the RMM inventory as evidence")?;
    store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    Ok((body, appended.seq))
}

/// The bundle body: every device, and the reconciliation when a directory inventory exists.
fn inventory_body(
    rmm: &RmmConfig,
    devices: &[RmmDevice],
    stored: Option<&[crate::discover::LatestComputer]>,
    domain: Option<String>,
    data_dir: &Path,
) -> RmmInventoryBody {
    let (directory, lines) = match stored {
        Some(computers) => {
            let directory: Vec<DirectoryComputer> = computers
                .iter()
                .map(|c| DirectoryComputer {
                    account: c.account.clone(),
                    dns_host_name: c.dns_host_name.clone(),
                    class: c.class.clone(),
                    disabled: c.disabled,
                    stale: c.stale,
                })
                .collect();
            let lines = cloud::rmm::reconcile::reconcile(&directory, devices, domain.as_deref());
            (
                Some(RmmDirectoryRecord {
                    domain: domain.unwrap_or_default(),
                    computers: computers.len() as u64,
                    inventory_seq: crate::discover::stored_inventory_seq(data_dir, computers),
                }),
                lines,
            )
        }
        None => (None, Vec::new()),
    };
    let count = |standing: Standing| lines.iter().filter(|l| l.standing == standing).count() as u64;
    let mut records: Vec<RmmDeviceRecord> = devices.iter().map(device_record).collect();
    records.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
    RmmInventoryBody {
        source: rmm.name.clone(),
        provider: match rmm.kind {
            config::RmmKind::Datto => RmmKind::Datto.as_str(),
            config::RmmKind::ConnectWiseAutomate => RmmKind::ConnectWiseAutomate.as_str(),
        }
        .to_owned(),
        site: rmm.site.clone(),
        directory,
        counts: RmmCounts {
            devices: devices.len() as u64,
            matched: count(Standing::Matched),
            rmm_only: count(Standing::RmmOnly),
            directory_only: count(Standing::DirectoryOnly),
            directory_only_inactive: count(Standing::DirectoryOnlyInactive),
        },
        devices: records,
        reconciliation: lines.iter().map(reconcile_record).collect(),
    }
}

fn device_record(device: &RmmDevice) -> RmmDeviceRecord {
    RmmDeviceRecord {
        id: device.id.clone(),
        hostname: device.hostname.clone(),
        domain: device.domain.clone(),
        operating_system: device.operating_system.clone(),
        device_type: device.device_type.clone(),
        ip_address: device.ip_address.clone(),
        last_seen: device.last_seen.and_then(|t| t.format(&Rfc3339).ok()),
        online: device.online,
        computer: device.computer,
        retired: device.retired,
    }
}

fn reconcile_record(line: &Reconciled) -> RmmReconcileRecord {
    RmmReconcileRecord {
        name: line.name.clone(),
        standing: line.standing.as_str().to_owned(),
        directory_account: line.directory_account.clone(),
        rmm_ids: line.rmm_ids.clone(),
        note: line.note.clone(),
    }
}
