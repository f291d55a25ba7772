//! The state file's own types: the shape `daemon-state.json` has had since version 1, kept apart
//! from the local API's wire types so that neither can change the other by accident.
//!
//! Every field has a default, so a file written by an older daemon (with fewer fields) loads.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::state::{CycleRecord, Maintenance, Pause, Saved, Sent, SetupRecord, State};

/// Current format of the state file.
pub(super) const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct File {
    version: u32,
    ledger: incidents::LedgerSnapshot,
    devices: BTreeMap<String, Device>,
    sent: BTreeMap<String, Sent>,
    healing_log: VecDeque<HealingEntry>,
    pause: Option<Pause>,
    maintenance: Vec<Window>,
    next_maintenance_id: u64,
    trend: BTreeMap<String, Vec<u32>>,
    cycles: BTreeMap<String, CycleRecord>,
    setup: Setup,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Device {
    name: String,
    class: DeviceClass,
    platform: String,
    address: Option<String>,
    status: DeviceStatus,
    last_scan_at: Option<i64>,
    checks_total: u32,
    checks_failed: u32,
    failing: Vec<FailingCheck>,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeviceClass {
    WindowsServer,
    Workstation,
    Linux,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeviceStatus {
    Compliant,
    Drifted,
    Error,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FailingCheck {
    check: String,
    title: String,
    severity: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HealingEntry {
    at: i64,
    target: String,
    check: String,
    runbook: Option<String>,
    tier: String,
    result: String,
    reason: String,
    evidence_seq: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Window {
    id: u64,
    start: i64,
    end: i64,
    reason: String,
    targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Setup {
    complete: bool,
    network: Option<Network>,
    claimed_with: Option<String>,
    directory: Option<Directory>,
    accounts: BTreeMap<String, String>,
    timezone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Network {
    interface: String,
    mode: NetworkMode,
    address: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    dns: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum NetworkMode {
    Dhcp,
    Static,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Directory {
    domain: String,
    dc: Option<String>,
    bind_user: String,
}

impl File {
    /// The saved form of a live state.
    pub(super) fn of(state: &State) -> File {
        let saved = &state.saved;
        File {
            version: VERSION,
            ledger: state.ledger.snapshot(),
            devices: saved
                .devices
                .iter()
                .map(|(name, device)| (name.clone(), Device::from(device)))
                .collect(),
            sent: saved.sent.clone(),
            healing_log: saved.healing_log.iter().map(HealingEntry::from).collect(),
            pause: saved.pause.clone(),
            maintenance: saved.maintenance.iter().map(Window::from).collect(),
            next_maintenance_id: saved.next_maintenance_id,
            trend: saved.trend.clone(),
            cycles: saved.cycles.clone(),
            setup: Setup::from(&saved.setup),
        }
    }

    /// The live state this file describes.
    pub(super) fn into_state(self) -> State {
        State {
            ledger: incidents::Ledger::restore(self.ledger),
            saved: Saved {
                devices: self
                    .devices
                    .into_iter()
                    .map(|(name, device)| (name, device.into()))
                    .collect(),
                sent: self.sent,
                healing_log: self.healing_log.into_iter().map(Into::into).collect(),
                pause: self.pause,
                maintenance: self.maintenance.into_iter().map(Into::into).collect(),
                next_maintenance_id: self.next_maintenance_id,
                trend: self.trend,
                cycles: self.cycles,
                setup: self.setup.into(),
            },
            scores: BTreeMap::new(),
            intune: BTreeMap::new(),
        }
    }
}

impl From<&api::Device> for Device {
    fn from(d: &api::Device) -> Device {
        Device {
            name: d.name.clone(),
            class: match d.class {
                api::DeviceClass::WindowsServer => DeviceClass::WindowsServer,
                api::DeviceClass::Workstation => DeviceClass::Workstation,
                api::DeviceClass::Linux => DeviceClass::Linux,
            },
            platform: d.platform.clone(),
            address: d.address.clone(),
            status: match d.status {
                api::DeviceStatus::Compliant => DeviceStatus::Compliant,
                api::DeviceStatus::Drifted => DeviceStatus::Drifted,
                api::DeviceStatus::Error => DeviceStatus::Error,
                api::DeviceStatus::Unknown => DeviceStatus::Unknown,
            },
            last_scan_at: d.last_scan_at,
            checks_total: d.checks_total,
            checks_failed: d.checks_failed,
            failing: d
                .failing
                .iter()
                .map(|f| FailingCheck {
                    check: f.check.clone(),
                    title: f.title.clone(),
                    severity: f.severity.clone(),
                })
                .collect(),
            error: d.error.clone(),
        }
    }
}

impl From<Device> for api::Device {
    fn from(d: Device) -> api::Device {
        api::Device {
            // Not kept on disk: the next cloud cycle (minutes after a start) reads it again.
            intune: None,
            name: d.name,
            class: match d.class {
                DeviceClass::WindowsServer => api::DeviceClass::WindowsServer,
                DeviceClass::Workstation => api::DeviceClass::Workstation,
                DeviceClass::Linux => api::DeviceClass::Linux,
            },
            platform: d.platform,
            address: d.address,
            status: match d.status {
                DeviceStatus::Compliant => api::DeviceStatus::Compliant,
                DeviceStatus::Drifted => api::DeviceStatus::Drifted,
                DeviceStatus::Error => api::DeviceStatus::Error,
                DeviceStatus::Unknown => api::DeviceStatus::Unknown,
            },
            last_scan_at: d.last_scan_at,
            checks_total: d.checks_total,
            checks_failed: d.checks_failed,
            failing: d
                .failing
                .into_iter()
                .map(|f| api::FailingCheck {
                    check: f.check,
                    title: f.title,
                    severity: f.severity,
                })
                .collect(),
            error: d.error,
        }
    }
}

impl From<&api::HealingEntry> for HealingEntry {
    fn from(e: &api::HealingEntry) -> HealingEntry {
        HealingEntry {
            at: e.at,
            target: e.target.clone(),
            check: e.check.clone(),
            runbook: e.runbook.clone(),
            tier: e.tier.clone(),
            result: e.result.clone(),
            reason: e.reason.clone(),
            evidence_seq: e.evidence_seq,
        }
    }
}

impl From<HealingEntry> for api::HealingEntry {
    fn from(e: HealingEntry) -> api::HealingEntry {
        api::HealingEntry {
            at: e.at,
            target: e.target,
            check: e.check,
            runbook: e.runbook,
            tier: e.tier,
            result: e.result,
            reason: e.reason,
            evidence_seq: e.evidence_seq,
        }
    }
}

impl From<&Maintenance> for Window {
    fn from(m: &Maintenance) -> Window {
        Window {
            id: m.id,
            start: m.window.start,
            end: m.window.end,
            reason: m.window.reason.clone(),
            targets: m.window.targets.clone(),
        }
    }
}

impl From<Window> for Maintenance {
    fn from(w: Window) -> Maintenance {
        Maintenance {
            id: w.id,
            window: incidents::MaintenanceWindow {
                start: w.start,
                end: w.end,
                targets: w.targets,
                reason: w.reason,
            },
        }
    }
}

impl From<&SetupRecord> for Setup {
    fn from(s: &SetupRecord) -> Setup {
        Setup {
            complete: s.complete,
            network: s.network.as_ref().map(|n| Network {
                interface: n.interface.clone(),
                mode: match n.mode {
                    api::NetworkMode::Dhcp => NetworkMode::Dhcp,
                    api::NetworkMode::Static => NetworkMode::Static,
                },
                address: n.address.clone(),
                gateway: n.gateway.clone(),
                dns: n.dns.clone(),
            }),
            claimed_with: s.claimed_with.clone(),
            directory: s.directory.as_ref().map(|d| Directory {
                domain: d.domain.clone(),
                dc: d.dc.clone(),
                bind_user: d.bind_user.clone(),
            }),
            accounts: s.accounts.clone(),
            timezone: s.timezone.clone(),
        }
    }
}

impl From<Setup> for SetupRecord {
    fn from(s: Setup) -> SetupRecord {
        SetupRecord {
            complete: s.complete,
            network: s.network.map(|n| api::NetworkSettings {
                interface: n.interface,
                mode: match n.mode {
                    NetworkMode::Dhcp => api::NetworkMode::Dhcp,
                    NetworkMode::Static => api::NetworkMode::Static,
                },
                address: n.address,
                gateway: n.gateway,
                dns: n.dns,
            }),
            claimed_with: s.claimed_with,
            directory: s.directory.map(|d| api::DirectorySettings {
                domain: d.domain,
                dc: d.dc,
                bind_user: d.bind_user,
            }),
            accounts: s.accounts,
            timezone: s.timezone,
        }
    }
}
