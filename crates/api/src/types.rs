//! Request and response bodies of every endpoint, shared by the daemon and its clients.

use serde::{Deserialize, Serialize};

/// `GET /v1/status`: everything the console's home screen and `osiris status` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub site: String,
    /// The daemon's version.
    pub version: String,
    /// The daemon's clock when it answered (clients compute "3 minutes ago" from it).
    pub now: i64,
    pub started_at: i64,
    /// False until the first-boot wizard finished (`POST /v1/setup/complete`).
    pub setup_complete: bool,
    pub devices: DeviceCounts,
    /// Newest scan of any device, if any.
    pub last_scan_at: Option<i64>,
    pub cycles: Vec<CycleState>,
    pub healing: HealingState,
    pub incidents: IncidentCounts,
    /// One entry per framework, HIPAA first.
    pub compliance: Vec<FrameworkScore>,
    pub evidence: EvidenceState,
    pub health: ApplianceHealth,
    /// The console's PIN and idle lock (absent from daemons that predate it: no PIN).
    #[serde(default)]
    pub console: ConsoleLock,
}

/// The console's PIN and idle lock, as status reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLock {
    /// A console PIN is set: operator actions from anyone but root need an unlock
    /// (`POST /v1/console/unlock`, then the token in [`crate::UNLOCK_HEADER`]).
    pub pin_set: bool,
    /// The console locks after this many seconds without a key (`daemon.console_lock_secs`);
    /// an unlock token the console stops using expires after as long.
    pub lock_after_secs: u64,
}

impl Default for ConsoleLock {
    fn default() -> ConsoleLock {
        ConsoleLock {
            pin_set: false,
            lock_after_secs: 300,
        }
    }
}

/// `POST /v1/console/unlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockRequest {
    pub pin: String,
}

/// The answer to a correct PIN: a token that unlocks operator actions for the same user
/// (send it as [`crate::UNLOCK_HEADER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlocked {
    pub token: String,
    /// The token expires after this many seconds in which no request carried it.
    pub expires_after_secs: u64,
}

/// `POST /v1/setup/pin`: the console PIN, 4 to 12 digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRequest {
    pub pin: String,
    /// The PIN set now, which allows changing it after setup is complete (as does the site's
    /// claim code in [`crate::CLAIM_CODE_HEADER`]).
    #[serde(default)]
    pub current_pin: Option<String>,
}

/// How many devices are in which state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounts {
    pub total: u32,
    /// Scanned at least once.
    pub checked: u32,
    pub compliant: u32,
    /// At least one check failed.
    pub drifted: u32,
    /// The last scan could not reach or read the device.
    pub errored: u32,
    pub by_class: Vec<ClassCount>,
}

/// Device counts of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    pub class: DeviceClass,
    pub total: u32,
    pub compliant: u32,
    pub drifted: u32,
    pub errored: u32,
}

/// What kind of machine a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    WindowsServer,
    Workstation,
    Linux,
}

/// One of the daemon's recurring jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// Servers and Linux hosts from the configuration: scan, then L1 healing.
    ServerScan,
    /// Workstations from the last AD inventory.
    WorkstationScan,
    /// Reading the computer inventory from Active Directory.
    Discovery,
    /// The `[[cloud]]` tenants through their providers' APIs (no healing).
    CloudScan,
    /// The `[[rmm]]` device inventories, reconciled with Active Directory's.
    RmmImport,
    /// Submitting checkpoints to OpenTimestamps calendars and upgrading pending proofs.
    Anchor,
    /// Signing a checkpoint of the evidence log.
    Checkpoint,
}

impl CycleKind {
    /// Every cycle, in the order status lists them.
    pub const ALL: [CycleKind; 7] = [
        CycleKind::ServerScan,
        CycleKind::WorkstationScan,
        CycleKind::Discovery,
        CycleKind::CloudScan,
        CycleKind::RmmImport,
        CycleKind::Anchor,
        CycleKind::Checkpoint,
    ];

    /// The name used in the API and logs (`server_scan`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::ServerScan => "server_scan",
            CycleKind::WorkstationScan => "workstation_scan",
            CycleKind::Discovery => "discovery",
            CycleKind::CloudScan => "cloud_scan",
            CycleKind::RmmImport => "rmm_import",
            CycleKind::Anchor => "anchor",
            CycleKind::Checkpoint => "checkpoint",
        }
    }
}

/// The state of one recurring job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleState {
    pub kind: CycleKind,
    /// False when the configuration does not call for it (e.g. no `[directory]`).
    pub enabled: bool,
    pub running: bool,
    pub runs: u64,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    /// One line: what the last run did, or why it failed.
    pub last_outcome: Option<String>,
    pub last_failed: bool,
    pub next_due_at: Option<i64>,
}

/// Whether L1 may remediate now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealingState {
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub paused_by: Option<String>,
    pub paused_at: Option<i64>,
    /// Current and future maintenance windows.
    pub maintenance: Vec<Maintenance>,
}

/// A period in which remediation stops (detection continues).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: u64,
    pub start: i64,
    pub end: i64,
    pub reason: String,
    /// Devices covered; empty means the whole site.
    pub targets: Vec<String>,
}

/// Incidents by phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentCounts {
    pub open: u32,
    pub healing: u32,
    /// Handed to a person and not closed.
    pub escalated: u32,
    /// Escalated and not yet acknowledged by anyone: what "needs you" counts.
    #[serde(default)]
    pub needs_you: u32,
    pub resolved: u32,
}

/// Compliance with one framework, counted per control of the framework's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkScore {
    /// `HIPAA`, `SOC2`, `PCI`, `NIST-CSF`, `CIS`.
    pub framework: String,
    /// Controls met (every check behind them passes).
    pub passing: u32,
    /// Controls with a failing check.
    pub failing: u32,
    /// Controls that apply (the rest are not applicable with a reason); controls neither met nor
    /// failing need an attestation or have no evidence yet.
    #[serde(default)]
    pub controls: u32,
    /// passing / controls, in tenths of a percent; `None` before the first result.
    pub permille: Option<u32>,
    /// Earlier values, oldest first (one per completed server scan cycle, at most 30).
    pub trend: Vec<u32>,
}

/// The evidence log and its anchoring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceState {
    pub bundles: u64,
    /// Hex SHA-256 of the newest bundle.
    pub head_hash: Option<String>,
    pub last_checkpoint_at: Option<i64>,
    pub checkpoint_size: u64,
    /// Checkpoints submitted to calendars and not yet in a Bitcoin block.
    pub ots_pending: u64,
    /// Checkpoints with a complete Bitcoin attestation.
    pub ots_anchored: u64,
    /// Hex id of the appliance's signing key.
    pub key_id: String,
    /// The newest monthly compliance packet `osirisd` made (absent from daemons that predate it).
    #[serde(default)]
    pub last_packet: Option<PacketState>,
}

/// A month's compliance packet kept in the data directory and sealed as a `packet` bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketState {
    /// The month it reports, `YYYY-MM`.
    pub period: String,
    /// When its bundle was sealed (Unix seconds).
    pub made_at: i64,
    /// The `packet` bundle's number.
    pub seq: u64,
    /// How many files it holds (the reports and `MANIFEST.sha256`).
    pub files: u32,
    /// False when the month held no scan evidence (its reports say so).
    pub evidence: bool,
}

/// The appliance box itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceHealth {
    pub uptime_secs: u64,
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    /// The appliance's own LAN addresses.
    pub addresses: Vec<String>,
    /// Short code the partner asks for on the phone (derived from the signing key).
    pub support_code: String,
    pub update: UpdateState,
}

/// The image update mechanism's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    pub current: String,
    pub available: Option<String>,
    /// `idle`, `staged`, `pending_health`, `good`, `rolled_back`, or `unavailable`.
    pub state: String,
    pub detail: Option<String>,
    pub can_apply: bool,
    pub can_roll_back: bool,
}

/// `GET /v1/targets`: one entry per known device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub name: String,
    pub class: DeviceClass,
    /// `linux`, `windows-server`, `windows-workstation`.
    pub platform: String,
    pub address: Option<String>,
    pub status: DeviceStatus,
    pub last_scan_at: Option<i64>,
    pub checks_total: u32,
    pub checks_failed: u32,
    pub failing: Vec<FailingCheck>,
    /// Why the last scan could not complete, in plain words.
    pub error: Option<String>,
    /// What Microsoft Intune last reported about this machine (a `[[cloud]]` tenant's managed
    /// device of the same name), so a laptop that never reaches the office still shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intune: Option<IntuneState>,
}

/// A managed device's state as the tenant's Intune reported it in the last cloud scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntuneState {
    /// The `[[cloud]]` tenant that reported it.
    pub tenant: String,
    /// Intune's `complianceState`: `compliant`, `noncompliant`, `inGracePeriod`, `unknown`, ….
    pub compliance: String,
    pub encrypted: bool,
    /// When the cloud scan read it (Unix seconds).
    pub seen_at: i64,
}

/// A device's state after its last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Compliant,
    Drifted,
    Error,
    /// Not scanned yet.
    Unknown,
}

/// A check that failed on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingCheck {
    pub check: String,
    pub title: String,
    pub severity: String,
}

/// `GET /v1/incidents`: open, healing, escalated and recently resolved incidents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub target: String,
    pub check: String,
    pub title: String,
    pub severity: String,
    /// `open`, `healing`, `escalated`, `resolved`, `closed`.
    pub phase: String,
    pub opened_at: i64,
    pub updated_at: i64,
    pub occurrences: u32,
    pub flapping: bool,
    pub acknowledged: bool,
    /// True when the appliance cannot fix it and a person must act.
    pub needs_human: bool,
    /// What the appliance did, oldest first, in plain words.
    pub history: Vec<String>,
}

/// `GET /v1/healing`: remediation attempts and escalations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealingEntry {
    pub at: i64,
    pub target: String,
    pub check: String,
    pub runbook: Option<String>,
    /// `L1` today.
    pub tier: String,
    /// `fixed`, `not_fixed`, `escalated`.
    pub result: String,
    pub reason: String,
    pub evidence_seq: Option<u64>,
}

/// `POST /v1/scan` and `POST /v1/heal`: answer to a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggered {
    pub cycle: CycleKind,
    /// True when a run was already going and this one will follow it.
    pub queued: bool,
    pub message: String,
}

/// `POST /v1/healing/pause` and `/v1/healing/resume`: who and why (recorded as evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    pub reason: String,
    pub by: String,
}

/// `POST /v1/maintenance`: a new window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRequest {
    pub start: i64,
    pub end: i64,
    pub reason: String,
    #[serde(default)]
    pub targets: Vec<String>,
}

/// `POST /v1/incidents/{id}/ack`: a person took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub by: String,
}

/// `POST /v1/evidence/export`: write an auditor kit into a directory (e.g. a mounted USB stick).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// An existing, writable directory; the kit goes into a new subdirectory of it.
    pub dest_dir: String,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportResult {
    /// The kit directory that was written.
    pub path: String,
    pub bundles: u64,
    pub bytes: u64,
}

/// `POST /v1/compliance/packets/export`: one month's packet onto a USB stick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketExportRequest {
    /// The month, `YYYY-MM`, of a packet the daemon made.
    pub period: String,
    /// An existing, writable directory on removable media; the packet goes into a new
    /// subdirectory of it.
    pub dest_dir: String,
}

/// A packet copied onto a stick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketExportResult {
    /// The directory that was written.
    pub path: String,
    pub files: u32,
    pub bytes: u64,
}

/// `GET /v1/compliance/records`: the accepted risks and attestations in the log, with their expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceRecords {
    /// Newest first.
    pub exceptions: Vec<ExceptionRecord>,
    /// Newest first.
    pub attestations: Vec<AttestationRecord>,
}

/// An accepted risk: one check failing on one target does not count until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRecord {
    pub check: String,
    pub target: String,
    pub reason: String,
    pub owner: String,
    /// The last day it counts (`YYYY-MM-DD`, UTC).
    pub expires: String,
    /// False once `expires` has passed: the finding counts again.
    pub counts: bool,
    /// Its bundle.
    pub seq: u64,
}

/// A person's signed statement that a control holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRecord {
    /// `HIPAA 164.308(a)(1)(ii)(A)`.
    pub control: String,
    pub statement: String,
    pub by: String,
    /// The last day it counts (`YYYY-MM-DD`, UTC).
    pub expires: String,
    /// False once `expires` has passed: the control needs a new attestation.
    pub counts: bool,
    pub seq: u64,
}

/// `GET /v1/setup`: the first-boot wizard's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupState {
    pub complete: bool,
    pub interfaces: Vec<Interface>,
    pub network: Option<NetworkSettings>,
    pub claim: ClaimInfo,
    /// Directory settings saved by the wizard or the configuration (never the password).
    pub directory: Option<DirectorySettings>,
    /// Which credential slots hold a secret (`windows`, `linux`, `directory`).
    pub credentials: Vec<CredentialSlot>,
    /// IANA name, e.g. `America/Chicago`.
    pub timezone: String,
    /// A console PIN is set (`POST /v1/setup/pin`).
    #[serde(default)]
    pub pin_set: bool,
}

/// A network interface the appliance sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub up: bool,
    /// Addresses in CIDR form.
    pub addresses: Vec<String>,
}

/// `POST /v1/setup/network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSettings {
    pub interface: String,
    pub mode: NetworkMode,
    /// CIDR, static mode only.
    pub address: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
}

/// How the appliance gets its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    Dhcp,
    Static,
}

/// The site claim: the code the partner enters in Central, and a URL for the QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInfo {
    pub code: String,
    pub url: String,
    /// Set once a claim code was entered on the console.
    pub claimed_with: Option<String>,
}

/// `POST /v1/setup/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub code: String,
}

/// Saved Active Directory settings (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorySettings {
    pub domain: String,
    pub dc: Option<String>,
    pub bind_user: String,
}

/// `POST /v1/setup/directory/test` and `POST /v1/setup/directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRequest {
    pub domain: String,
    /// Host name or address of a DC; empty/absent means "find it in DNS".
    pub dc: Option<String>,
    pub bind_user: String,
    pub password: String,
}

/// The result of "test connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub ok: bool,
    /// Plain words for the office manager ("The password for scanner@clinic.local is wrong").
    pub message: String,
    /// The technical detail for the partner (the server's own error text).
    pub detail: Option<String>,
}

/// A credential slot the wizard fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSlot {
    /// The Windows account used for WinRM on servers and workstations.
    Windows,
    /// The Linux account used over SSH.
    Linux,
    /// The AD bind account.
    Directory,
}

/// `POST /v1/setup/credentials`: an account for a slot; the secret goes to the encrypted vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRequest {
    pub slot: CredentialSlot,
    pub user: String,
    /// A password, or an OpenSSH private key (Linux slot only).
    pub secret: String,
}

/// `POST /v1/setup/timezone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimezoneRequest {
    pub timezone: String,
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, in one sentence.
    pub error: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// `POST /v1/agents/tokens`: a new enrollment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTokenRequest {
    /// How many agents may enroll with it (1–10,000).
    pub uses: u32,
    /// How long it is valid, in seconds (60 s–30 days).
    pub expires_secs: u64,
    /// Who asks (recorded as evidence).
    pub by: String,
}

/// A token just made. `token` is shown this once and never stored (only its SHA-256 is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentToken {
    pub token: String,
    pub id: String,
    pub uses: u32,
    /// Unix seconds.
    pub expires_at: i64,
    /// What the agent connects to, `host:port`.
    pub gateway: String,
    /// The agent CA's fingerprint the agent pins (`sha256:…`).
    pub ca_pin: String,
}

/// A stored token (never its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTokenInfo {
    pub id: String,
    pub uses_total: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub expires_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    /// `usable`, `used up`, `expired` or `revoked`.
    pub state: String,
}

/// `POST /v1/agents/tokens/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTokenRevokeRequest {
    pub id: String,
    pub by: String,
}

/// `GET /v1/agents`: the gateway and every enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsState {
    /// `host:port` agents connect to; `None` when `[agents]` is not configured.
    pub gateway: Option<String>,
    /// The agent CA's fingerprint.
    pub ca_pin: Option<String>,
    pub agents: Vec<AgentView>,
}

/// One enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent_id: String,
    pub hostname: String,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    pub os: String,
    pub agent_version: String,
    /// Unix seconds.
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
    /// Whether its stream is open now.
    pub connected: bool,
    /// When it last delivered items (unix seconds).
    pub last_seen_at: Option<i64>,
    /// Every item up to this number is sealed.
    pub stored_seq: u64,
    /// Items waiting in its queue at its last heartbeat.
    pub queue_items: u64,
    /// Its clock minus the appliance's at its last heartbeat (ms).
    pub clock_skew_ms: i64,
    /// When its client certificate expires (unix seconds).
    pub certificate_expires_at: i64,
}

/// `POST /v1/agents/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRevokeRequest {
    pub agent_id: String,
    pub by: String,
    pub reason: String,
}

/// `POST /v1/agents/releases`: a vendor-signed agent release to store and offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReleaseRequest {
    /// The signed manifest (JSON text, docs/AGENT-UPDATES.md).
    pub manifest: String,
    /// Newer signed roots that come with it, oldest first (JSON texts; may be empty).
    pub roots: Vec<String>,
    /// Absolute path of the binary on the appliance (the daemon reads and copies it).
    pub binary_path: String,
    /// Share of agents offered it, 0–100.
    pub rollout_percent: u8,
    pub by: String,
}

/// `POST /v1/agents/releases/rollout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRolloutRequest {
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    pub version: String,
    pub percent: u8,
    pub by: String,
}

/// The stored agent releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReleases {
    /// The version of the newest agent root the appliance holds.
    pub root_version: u64,
    pub releases: Vec<AgentReleaseInfo>,
    /// Connected agents offered a release by this request (0 for a plain listing).
    pub offered_now: u64,
}

/// One stored agent release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReleaseInfo {
    pub platform: String,
    pub version: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub rollout_percent: u8,
    /// Unix seconds.
    pub added_at: u64,
    /// Why it is not offered (e.g. its key was rotated out).
    pub problem: Option<String>,
}

/// `GET /v1/l2/pending`: an L2 plan for a high-risk runbook, waiting for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L2Plan {
    /// `l2-<seq>`, the sequence number of its `l2` bundle.
    pub id: String,
    pub target: String,
    pub check: String,
    pub runbook: String,
    /// The plan's parameters (absent ones keep the site's values).
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    pub confidence: f64,
    pub rationale: String,
    /// Unix seconds.
    pub at: i64,
}

/// The body of a person's decision (`…/approve`, `…/reject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// Who decides (a claim, recorded beside the caller's uid).
    pub by: String,
}

/// What deciding a waiting L2 plan did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Decided {
    pub id: String,
    pub approved: bool,
    /// The `operator_action` bundle that records the decision.
    pub action_seq: u64,
    /// For an approval: `fixed`, `not fixed: <reason>`, or none when the check passed by then
    /// and nothing was run.
    pub outcome: Option<String>,
    pub target: String,
    pub check: String,
    /// The `heal` bundle of the run.
    pub heal_seq: Option<u64>,
}

/// `GET /v1/flywheel`: the patterns of executed L2 plans and the resolutions by tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlywheelState {
    /// Most attempts first.
    pub patterns: Vec<FlywheelPattern>,
    /// Oldest day first.
    pub tiers: Vec<TierDay>,
}

/// One pattern: a check, the shape of what was observed, a runbook and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlywheelPattern {
    /// `fw-` and 10 hex digits.
    pub id: String,
    pub check: String,
    pub runbook: String,
    pub successes: u32,
    pub attempts: u32,
    pub hosts: u32,
    /// `learning`, `proposed`, `promoted`, `demoted` or `rejected`.
    pub standing: String,
    /// The L1 rule a promotion adds, in the rules-file format (for proposed patterns).
    pub proposed_rule: Option<String>,
    /// Whether the running daemon's L1 rules include this pattern's rule now.
    pub in_effect: bool,
}

/// Resolutions on one UTC day: fixed by L1 (promoted flywheel rules included), fixed by L2,
/// handed to a person (L3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDay {
    /// Unix days.
    pub day: i64,
    pub l1: u64,
    pub l2: u64,
    pub l3: u64,
}

/// What a person's decision about a pattern did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlywheelDecided {
    pub id: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The `operator_action` bundle that records it.
    pub action_seq: u64,
    /// The running daemon's L1 rules after the decision was applied (built-in plus promoted).
    pub rules_in_effect: u32,
}

/// `POST /v1/compliance/records`: an attestation or an exception to seal while `osirisd` holds
/// the store (`osiris attest`, `osiris exception add`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceRecordRequest {
    /// `attestation` or `exception`.
    pub kind: String,
    /// The bundle body as docs/EVIDENCE-FORMAT.md describes it for that kind.
    pub body: serde_json::Value,
}

/// What sealing a compliance record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord {
    /// The bundle's sequence number.
    pub seq: u64,
}
