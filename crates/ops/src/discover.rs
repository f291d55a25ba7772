//! Active Directory discovery: read the computer inventory, seal it (with what changed since the
//! last one) as a signed `inventory` bundle, and keep the latest for the workstation cycle.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;

use discovery::{ComputerClass, Inventory, InventoryChange};
use evidence_schema::{ComputerRecord, InventoryBody, InventoryChangeRecord, InventoryCounts};

/// The latest complete inventory, kept beside the database so the next run can say what changed.
const LATEST: &str = "inventory.json";

/// The discovery settings of the configuration's `[directory]` section, password read.
pub fn directory_config(
    config: &config::Config,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<discovery::DirectoryConfig> {
    let Some(directory) = &config.directory else {
        return Err(crate::BadConfig(
            "no [directory] section; add domain, dc, bind_user, password_file and ca_file to discover computers from Active Directory".to_owned(),
        )
        .into());
    };
    let password = secrets.password("directory", &directory.password)?;
    let ca_pem = std::fs::read(&directory.ca_file).with_context(|| {
        format!(
            "reading the directory CA file {}",
            directory.ca_file.display()
        )
    })?;
    Ok(discovery::DirectoryConfig {
        domain: directory.domain.clone(),
        dc: directory.dc.clone(),
        resolver: directory
            .resolver
            .map(|ip| std::net::SocketAddr::new(ip, 53)),
        base_dn: directory.base_dn.clone(),
        bind_user: directory.bind_user.clone(),
        bind_password: discovery::BindPassword::new(password),
        tls: match directory.tls {
            config::DirectoryTls::Ldaps => discovery::TlsMode::Ldaps,
            config::DirectoryTls::StartTls => discovery::TlsMode::StartTls,
        },
        ca_pem: Some(ca_pem),
        stale_after_days: directory.stale_after_days,
        page_size: 500,
        timeout: Duration::from_secs(30),
    })
}

/// Discovers, seals the `inventory` bundle and a checkpoint, then keeps the inventory as the
/// latest. A failed or partial search is an error: nothing is recorded, the last inventory stays.
/// Returns the body and the bundle's sequence number.
pub async fn discover_and_record(
    store: &store::Store,
    config: &config::Config,
    cfg: &discovery::DirectoryConfig,
    data_dir: &Path,
) -> anyhow::Result<(InventoryBody, u64)> {
    let now = OffsetDateTime::now_utc();
    let inventory = discovery::discover(cfg, now)
        .await
        .with_context(|| format!("discovering computers in {}", cfg.domain))?;
    let previous = read_latest(data_dir)?;
    let changes = previous
        .as_ref()
        .map(|old| inventory.diff(old))
        .unwrap_or_default();
    let body = inventory_body(&cfg.domain, &inventory, &changes);
    let appended = store
        .append(evidence::BundleDraft {
            site: config.site.clone(),
            kind: evidence_schema::KIND_INVENTORY.to_owned(),
            catalog: String::new(),
            time: now,
            body: serde_json::to_value(&body)?,
        })
        .await
        .context("recording the inventory as evidence")?;
    store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    write_latest(data_dir, &inventory)?;
    write_latest_seq(data_dir, appended.seq, inventory.computers.len())?;
    Ok((body, appended.seq))
}

fn inventory_body(
    domain: &str,
    inventory: &Inventory,
    changes: &[InventoryChange],
) -> InventoryBody {
    let count = |f: &dyn Fn(&discovery::Computer) -> bool| {
        inventory.computers.iter().filter(|c| f(c)).count() as u64
    };
    InventoryBody {
        domain: domain.to_owned(),
        domain_controller: inventory.domain_controller.clone(),
        counts: InventoryCounts {
            total: inventory.computers.len() as u64,
            domain_controllers: count(&|c| c.class == ComputerClass::DomainController),
            servers: count(&|c| c.class == ComputerClass::Server),
            workstations: count(&|c| c.class == ComputerClass::Workstation),
            other: count(&|c| c.class == ComputerClass::Other),
            disabled: count(&|c| c.disabled),
            stale: count(&|c| c.stale),
        },
        computers: inventory.computers.iter().map(record).collect(),
        changes: changes.iter().map(change_record).collect(),
    }
}

fn record(c: &discovery::Computer) -> ComputerRecord {
    ComputerRecord {
        account: c.sam_account_name.clone(),
        dns_host_name: c.dns_host_name.clone(),
        operating_system: c.operating_system.clone(),
        operating_system_version: c.operating_system_version.clone(),
        class: c.class.as_str().to_owned(),
        disabled: c.disabled,
        stale: c.stale,
        duplicate_dns_host_name: c.duplicate_dns_host_name,
        last_logon: c
            .last_logon
            .and_then(|t| evidence::log::format_time(t).ok()),
    }
}

fn change_record(change: &InventoryChange) -> InventoryChangeRecord {
    let os = |(name, version): &(Option<String>, Option<String>)| {
        format!(
            "{} {}",
            name.as_deref().unwrap_or(""),
            version.as_deref().unwrap_or("")
        )
        .trim()
        .to_owned()
    };
    match change {
        InventoryChange::Appeared {
            sam_account_name, ..
        } => InventoryChangeRecord {
            change: "appeared".to_owned(),
            account: sam_account_name.clone(),
            from: None,
            to: None,
        },
        InventoryChange::Disappeared {
            sam_account_name, ..
        } => InventoryChangeRecord {
            change: "disappeared".to_owned(),
            account: sam_account_name.clone(),
            from: None,
            to: None,
        },
        InventoryChange::OsChanged {
            sam_account_name,
            old,
            new,
        } => InventoryChangeRecord {
            change: "os_changed".to_owned(),
            account: sam_account_name.clone(),
            from: Some(os(old)),
            to: Some(os(new)),
        },
        other => InventoryChangeRecord {
            change: "changed".to_owned(),
            account: format!("{other:?}"),
            from: None,
            to: None,
        },
    }
}

fn read_latest(data_dir: &Path) -> anyhow::Result<Option<Inventory>> {
    let path = data_dir.join(LATEST);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let computers: Vec<LatestComputer> =
                serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is damaged; delete it to start the change history afresh",
                        path.display()
                    )
                })?;
            Ok(Some(Inventory {
                computers: computers
                    .into_iter()
                    .map(LatestComputer::into_computer)
                    .collect(),
                fetched_pages: 0,
                domain_controller: String::new(),
                duplicate_dns_host_names: Vec::new(),
            }))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaced durably, so a crash never leaves half an inventory.
fn write_latest(data_dir: &Path, inventory: &Inventory) -> anyhow::Result<()> {
    let latest: Vec<LatestComputer> = inventory
        .computers
        .iter()
        .map(LatestComputer::from)
        .collect();
    durable::write(&data_dir.join(LATEST), &serde_json::to_vec(&latest)?, 0o600)
        .context("keeping the latest inventory")?;
    Ok(())
}

/// Which `inventory` bundle the latest inventory was sealed in.
const LATEST_SEQ: &str = "inventory.seq.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct LatestSeq {
    seq: u64,
    computers: usize,
}

/// Kept after the latest inventory, so a crash between the two writes leaves a record whose
/// count does not match ([`stored_inventory_seq`] then says `None`).
fn write_latest_seq(data_dir: &Path, seq: u64, computers: usize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(&LatestSeq { seq, computers })?;
    durable::write(&data_dir.join(LATEST_SEQ), &bytes, 0o600)
        .context("keeping the latest inventory's sequence number")
}

/// The sequence number of the `inventory` bundle `computers` (the stored latest) was sealed in,
/// when known.
pub fn stored_inventory_seq(data_dir: &Path, computers: &[LatestComputer]) -> Option<u64> {
    let bytes = std::fs::read(data_dir.join(LATEST_SEQ)).ok()?;
    let latest: LatestSeq = serde_json::from_slice(&bytes).ok()?;
    (latest.computers == computers.len()).then_some(latest.seq)
}

/// What the change history and the workstation cycle need of each computer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LatestComputer {
    pub account: String,
    pub class: String,
    operating_system: Option<String>,
    operating_system_version: Option<String>,
    #[serde(default)]
    pub dns_host_name: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub stale: bool,
    /// Distinguished name (empty in an inventory kept before scopes existed).
    #[serde(default)]
    pub dn: String,
    /// Direct group memberships (distinguished names).
    #[serde(default)]
    pub member_of: Vec<String>,
    /// Every group, directly or through groups inside groups (empty in an inventory kept before
    /// nested groups were followed).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `mS-DS-CreatorSID`: set when a non-administrator created the object.
    #[serde(default)]
    pub creator_sid: Option<String>,
}

/// The computers of the last complete inventory (`None` before the first `osiris discover`).
pub fn stored_computers(data_dir: &Path) -> anyhow::Result<Option<Vec<LatestComputer>>> {
    let path = data_dir.join(LATEST);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is damaged; run `osiris discover` again", path.display())
        })?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

impl From<&discovery::Computer> for LatestComputer {
    fn from(c: &discovery::Computer) -> Self {
        LatestComputer {
            account: c.sam_account_name.clone(),
            class: c.class.as_str().to_owned(),
            operating_system: c.operating_system.clone(),
            operating_system_version: c.operating_system_version.clone(),
            dns_host_name: c.dns_host_name.clone(),
            disabled: c.disabled,
            stale: c.stale,
            dn: c.dn.clone(),
            member_of: c.member_of.clone(),
            groups: c.groups.clone(),
            creator_sid: c.creator_sid.clone(),
        }
    }
}

impl LatestComputer {
    fn into_computer(self) -> discovery::Computer {
        let class = match self.class.as_str() {
            "domain_controller" => ComputerClass::DomainController,
            "server" => ComputerClass::Server,
            "workstation" => ComputerClass::Workstation,
            _ => ComputerClass::Other,
        };
        discovery::Computer {
            dn: String::new(),
            name: self.account.trim_end_matches('$').to_owned(),
            sam_account_name: self.account,
            dns_host_name: None,
            operating_system: self.operating_system,
            operating_system_version: self.operating_system_version,
            class,
            disabled: false,
            stale: false,
            duplicate_dns_host_name: false,
            last_logon: None,
            when_created: None,
            user_account_control: 0,
            primary_group_id: None,
            has_control_characters: false,
            member_of: self.member_of,
            groups: self.groups,
            creator_sid: self.creator_sid,
        }
    }
}
