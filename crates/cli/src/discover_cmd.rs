//! `osiris discover`: read the computer inventory from Active Directory, record it (with what
//! changed since the last one) as a signed `inventory` bundle, and print it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;

use discovery::{ComputerClass, Inventory, InventoryChange};
use evidence_schema::{ComputerRecord, InventoryBody, InventoryChangeRecord, InventoryCounts};

use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct DiscoverArgs {
    /// Configuration file with a `[directory]` section.
    #[arg(long)]
    config: PathBuf,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// The latest complete inventory, kept beside the database so the next run can say what changed.
const LATEST: &str = "inventory.json";

pub(crate) fn run(args: DiscoverArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(Some(&args.config))?;
    let Some(directory) = config.directory.clone() else {
        return Err(crate::BadConfig(format!(
            "{}: no [directory] section; add domain, dc, bind_user, password_file and ca_file to discover computers from Active Directory",
            args.config.display()
        ))
        .into());
    };
    let data_dir = setup::data_dir(args.data_dir, &config);
    setup::check_secret_file(&directory.password_file)?;
    let password = std::fs::read_to_string(&directory.password_file)
        .with_context(|| format!("reading {}", directory.password_file.display()))?
        .trim_end_matches(['\n', '\r'])
        .to_owned();
    let ca_pem = std::fs::read(&directory.ca_file).with_context(|| {
        format!(
            "reading the directory CA file {}",
            directory.ca_file.display()
        )
    })?;
    let resolver = match &directory.resolver {
        Some(ip) => Some(std::net::SocketAddr::new(
            ip.parse().map_err(|_| {
                crate::BadConfig(format!("directory.resolver `{ip}` is not an IP address"))
            })?,
            53,
        )),
        None => None,
    };
    let cfg = discovery::DirectoryConfig {
        domain: directory.domain.clone(),
        dc: directory.dc.clone(),
        resolver,
        base_dn: directory.base_dn.clone(),
        bind_user: directory.bind_user.clone(),
        bind_password: discovery::BindPassword::new(password),
        tls: if directory.tls == "starttls" {
            discovery::TlsMode::StartTls
        } else {
            discovery::TlsMode::Ldaps
        },
        ca_pem: Some(ca_pem),
        stale_after_days: directory.stale_after_days,
        page_size: 500,
        timeout: Duration::from_secs(30),
    };
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let now = OffsetDateTime::now_utc();
        // A failed or partial search is an error: nothing is recorded, the last inventory stays.
        let inventory = discovery::discover(&cfg, now)
            .await
            .with_context(|| format!("discovering computers in {}", directory.domain))?;
        let previous = read_latest(&data_dir)?;
        let changes = previous
            .as_ref()
            .map(|old| inventory.diff(old))
            .unwrap_or_default();
        let body = inventory_body(&directory.domain, &inventory, &changes);
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
        write_latest(&data_dir, &inventory)?;
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({"inventory": body, "evidence": {"seq": appended.seq}});
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        } else {
            write!(out, "{}", render(&body, appended.seq))?;
        }
        out.flush()?;
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
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

fn render(body: &InventoryBody, seq: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &body.counts;
    let _ = writeln!(
        out,
        "{}: {} computers from {} ({} domain controllers, {} servers, {} workstations, {} other; {} disabled, {} stale)",
        body.domain,
        c.total,
        body.domain_controller,
        c.domain_controllers,
        c.servers,
        c.workstations,
        c.other,
        c.disabled,
        c.stale
    );
    let _ = writeln!(
        out,
        "  {:<18} {:<17} {:<32} OPERATING SYSTEM / FLAGS",
        "ACCOUNT", "CLASS", "DNS NAME"
    );
    for computer in &body.computers {
        let mut flags = Vec::new();
        if computer.disabled {
            flags.push("disabled");
        }
        if computer.stale {
            flags.push("stale");
        }
        if computer.duplicate_dns_host_name {
            flags.push("duplicate DNS name");
        }
        let os = computer
            .operating_system
            .as_deref()
            .unwrap_or("(no OS recorded)");
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        let _ = writeln!(
            out,
            "  {:<18} {:<17} {:<32} {os}{flags}",
            computer.account,
            computer.class,
            computer.dns_host_name.as_deref().unwrap_or("-")
        );
    }
    if !body.changes.is_empty() {
        let _ = writeln!(out, "Changes since the last inventory:");
        for change in &body.changes {
            let detail = match (&change.from, &change.to) {
                (Some(from), Some(to)) => format!(": {from} → {to}"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {:<12} {}{detail}", change.change, change.account);
        }
    }
    let _ = writeln!(out, "Recorded as evidence bundle #{seq}.");
    out
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

/// Written to a temporary file and renamed, so a crash never leaves half an inventory.
fn write_latest(data_dir: &Path, inventory: &Inventory) -> anyhow::Result<()> {
    let latest: Vec<LatestComputer> = inventory
        .computers
        .iter()
        .map(LatestComputer::from)
        .collect();
    let path = data_dir.join(LATEST);
    let tmp = data_dir.join(format!("{LATEST}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&latest)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// What the change history and the workstation cycle need of each computer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct LatestComputer {
    pub(crate) account: String,
    pub(crate) class: String,
    operating_system: Option<String>,
    operating_system_version: Option<String>,
    #[serde(default)]
    pub(crate) dns_host_name: Option<String>,
    #[serde(default)]
    pub(crate) disabled: bool,
    #[serde(default)]
    pub(crate) stale: bool,
}

/// The computers of the last complete inventory (`None` before the first `osiris discover`).
pub(crate) fn stored_computers(data_dir: &Path) -> anyhow::Result<Option<Vec<LatestComputer>>> {
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
        }
    }
}
