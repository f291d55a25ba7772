//! Wire schema of evidence bundles v1 and their bodies (docs/EVIDENCE-FORMAT.md); types only, no logic.

use serde::{Deserialize, Serialize};

/// The value of the `schema` member of every v1 bundle.
pub const BUNDLE_SCHEMA_V1: &str = "osiris.bundle/v1";

/// The `kind` of a bundle that carries a [`ScanBody`].
pub const KIND_SCAN: &str = "scan";

/// The members of every v1 bundle, in JCS (sorted) order; docs/EVIDENCE-FORMAT.md says what each holds.
///
/// There is no envelope struct: the writer (`evidence::log`) assembles the canonical line from
/// pre-canonicalised parts so each body is serialised once, and the verifier (`evidence::kit`) reads
/// lines as generic JSON so it can report every problem of a line instead of the first serde error.
/// Both take the member names from here.
pub const BUNDLE_MEMBERS: [&str; 11] = [
    "appliance",
    "body",
    "catalog",
    "key",
    "kind",
    "prev",
    "schema",
    "seq",
    "sig",
    "site",
    "time",
];

/// Body of a bundle with `kind = "scan"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// The scanned target.
    pub target: TargetRecord,
    /// RFC 3339 UTC start time, millisecond precision.
    pub started: String,
    /// RFC 3339 UTC end time, millisecond precision.
    pub finished: String,
    /// One record per check run.
    pub results: Vec<CheckResultRecord>,
    /// Counts per status.
    pub summary: Summary,
    /// The target's checks that were not run at this scan (their interval had not passed since
    /// a passing run, or a re-scan after drift looked only at what drifted), each with the
    /// status and time of the run it carries; absent when every check ran. Their results are in the bundle of that earlier scan, not in `results`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<CarriedRecord>,
}

/// A check that a scan did not run because its last result was still fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedRecord {
    /// Check id, e.g. `LIN-SUIDBASE-001`.
    pub check: String,
    /// The status it carries (`pass` or `skipped` when it was not due; any status when a
    /// re-scan after drift looked only at the drifted checks).
    pub status: String,
    /// RFC 3339 UTC time the carried result was observed, millisecond precision.
    pub observed_at: String,
}

/// The target a scan ran against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRecord {
    /// Host name or address as configured.
    pub name: String,
    /// Platform, e.g. `linux` or `windows`.
    pub platform: String,
    /// Device type, e.g. `server` or `workstation`.
    pub device_type: String,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResultRecord {
    /// Check id, e.g. `LIN-SSH-001`.
    pub check: String,
    /// Human-readable title.
    pub title: String,
    /// Severity, e.g. `high`.
    pub severity: String,
    /// One of `pass`, `fail`, `error`, `skipped`.
    pub status: String,
    /// What was observed on the target.
    pub observed: serde_json::Value,
    /// What the check expected, in words.
    pub expected: String,
    /// Why the status was reached.
    pub reason: String,
    /// Control references, e.g. `HIPAA:164.312(a)(1)`.
    pub controls: Vec<String>,
}

/// Counts of check results by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Number of checks run.
    pub total: u64,
    /// Checks that passed.
    pub pass: u64,
    /// Checks that failed.
    pub fail: u64,
    /// Checks that could not be evaluated.
    pub error: u64,
    /// Checks that were skipped.
    pub skipped: u64,
}

/// The `kind` of a bundle that carries a [`HealBody`] for a remediation attempt.
pub const KIND_HEAL: &str = "heal";

/// The `kind` of a bundle that records a finding handed to a person.
pub const KIND_ESCALATION: &str = "escalation";

/// Body of a `heal` or `escalation` bundle: one failed check and what L1 did about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealBody {
    /// The target.
    pub target: TargetRecord,
    /// The failed check.
    pub check: String,
    /// The L1 rule that decided, if any.
    pub rule: Option<String>,
    /// The runbook whose remediation ran, if any.
    pub runbook: Option<String>,
    /// `fixed`, `not_fixed` or `escalated`.
    pub result: String,
    /// Why (empty when fixed).
    pub reason: String,
    /// The check before healing.
    pub before: CheckState,
    /// The check after the remediation (re-run detect), if one ran.
    pub after: Option<CheckState>,
    /// The remediation script run.
    pub remediation: Option<StepRecord>,
    /// The rollback script run, when the fix did not verify.
    pub rollback: Option<StepRecord>,
}

/// A check's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckState {
    /// `pass`, `fail`, `error` or `skipped`.
    pub status: String,
    /// The detect output.
    pub observed: serde_json::Value,
    /// Why the status is what it is.
    pub reason: String,
}

/// One script run (output cut to 4 KiB per stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// Exit code, absent when the script did not finish.
    pub exit_code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Why the script could not run to completion.
    pub error: Option<String>,
}

/// The `kind` of a bundle that records one L2 consultation (docs/L2.md).
pub const KIND_L2: &str = "l2";

/// Body of an `l2` bundle: one consultation of the LLM planner about one failed check, from the
/// scrubbed request to the outcome. Only scrubbed text left the appliance; `params` are the
/// plan's parameters after the pseudonyms were mapped back, as they ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L2Body {
    /// The target.
    pub target: TargetRecord,
    /// The failed check.
    pub check: String,
    /// `anthropic` or `openai`.
    pub provider: String,
    /// The model asked (the configuration's name).
    pub model: String,
    /// The model that answered, as the provider named it.
    pub answered_by: Option<String>,
    /// SHA-256 (hex) of the request body exactly as sent.
    pub request_sha256: String,
    /// The request body exactly as sent (scrubbed).
    pub request: String,
    /// How many distinct values of each kind were replaced by pseudonyms (never the values).
    pub pseudonyms: std::collections::BTreeMap<String, u64>,
    /// The provider's answer body as received (at most 64 KiB), if any.
    pub reply: Option<String>,
    /// One line per guardrail applied, in order.
    pub guardrails: Vec<String>,
    /// `accepted`, `needs_approval`, `dry_run` or `escalated`.
    pub verdict: String,
    /// Why it escalated (empty otherwise).
    pub reason: String,
    /// The runbook of the plan, if the answer named a valid one.
    pub runbook: Option<String>,
    /// The plan's parameters as they ran (pseudonyms mapped back).
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    /// The model's confidence, if it gave a valid plan.
    pub confidence: Option<f64>,
    /// Tokens billed: input (with cache reads and writes) and output.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The provider reported no usage (a cut-off answer): the reserved worst case was charged.
    pub tokens_estimated: bool,
    /// The cost at the configured prices, e.g. `$0.004542`.
    pub cost_usd: String,
    /// HTTP attempts made (retries after 429/529 included).
    pub attempts: u32,
    /// `fixed`, `not_fixed`, `escalated`, `awaiting_approval` or `dry_run`.
    pub outcome: String,
    /// The check before.
    pub before: CheckState,
    /// The failed check re-run after the remediation (with the site's parameters).
    pub after: Option<CheckState>,
    /// The remediation script run.
    pub remediation: Option<StepRecord>,
    /// The rollback script run, when the fix did not verify.
    pub rollback: Option<StepRecord>,
}

/// The `kind` of a bundle that records an automatic flywheel event (docs/L2.md, "The flywheel").
pub const KIND_FLYWHEEL: &str = "flywheel";

/// Body of a `flywheel` bundle: a promoted pattern demoted because its success rate fell below
/// the threshold (promotions are `operator_action` bundles, `flywheel_approve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlywheelBody {
    /// `demoted`.
    pub event: String,
    /// The pattern id, `fw-` and 10 hex digits.
    pub pattern: String,
    pub check: String,
    pub runbook: String,
    /// The pattern's parameters as JSON text.
    pub params: std::collections::BTreeMap<String, String>,
    /// Plans (L2) and rule runs (L1) counted for the pattern, and how many verified.
    pub attempts: u64,
    pub successes: u64,
    /// Distinct hosts with a verified fix.
    pub hosts: u64,
    /// The L1 rule that is no longer loaded.
    pub rule: String,
}

/// The `kind` of a bundle that records one complete Active Directory inventory.
pub const KIND_INVENTORY: &str = "inventory";

/// Body of an `inventory` bundle: every computer object the directory returned, and what changed
/// since the previous complete inventory. Only complete inventories are ever recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryBody {
    /// DNS domain.
    pub domain: String,
    /// The domain controller that answered.
    pub domain_controller: String,
    /// Counts by class and flag.
    pub counts: InventoryCounts,
    /// Every computer, sorted by account name.
    pub computers: Vec<ComputerRecord>,
    /// Differences from the previous recorded inventory (empty for the first one).
    pub changes: Vec<InventoryChangeRecord>,
}

/// Inventory counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryCounts {
    pub total: u64,
    pub domain_controllers: u64,
    pub servers: u64,
    pub workstations: u64,
    pub other: u64,
    pub disabled: u64,
    pub stale: u64,
}

/// One computer object, as the directory described it (control characters escaped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputerRecord {
    pub account: String,
    pub dns_host_name: Option<String>,
    pub operating_system: Option<String>,
    pub operating_system_version: Option<String>,
    /// `domain_controller`, `server`, `workstation` or `other`.
    pub class: String,
    pub disabled: bool,
    pub stale: bool,
    pub duplicate_dns_host_name: bool,
    /// RFC 3339 UTC, if the computer ever logged on.
    pub last_logon: Option<String>,
}

/// One inventory change: `appeared`, `disappeared` or `os_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryChangeRecord {
    pub change: String,
    pub account: String,
    /// For `os_changed`: `operatingSystem operatingSystemVersion` before and after.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The `kind` of a bundle that records one RMM's device inventory, reconciled with the last
/// complete Active Directory inventory.
pub const KIND_RMM_INVENTORY: &str = "rmm_inventory";

/// Body of an `rmm_inventory` bundle: every device the RMM holds for the practice's site, and
/// each machine's standing between the RMM and the directory. Only complete imports are
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmmInventoryBody {
    /// The `[[rmm]]` name.
    pub source: String,
    /// `datto` or `connectwise-automate`.
    pub provider: String,
    /// The RMM's site UID or client ID.
    pub site: String,
    /// The directory inventory reconciled against; `None` before the first `osiris discover`
    /// (then `reconciliation` is empty).
    pub directory: Option<RmmDirectoryRecord>,
    pub counts: RmmCounts,
    /// Every device, sorted by host name then ID.
    pub devices: Vec<RmmDeviceRecord>,
    /// Each machine once: `matched`, `rmm_only`, `directory_only` or `directory_only_inactive`.
    pub reconciliation: Vec<RmmReconcileRecord>,
}

/// The directory inventory an RMM import was reconciled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmmDirectoryRecord {
    /// DNS domain.
    pub domain: String,
    /// Computers in that inventory.
    pub computers: u64,
    /// The sequence number of its `inventory` bundle, when the log holds it.
    pub inventory_seq: Option<u64>,
}

/// RMM inventory counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmmCounts {
    /// Devices the RMM holds for the site (all, retired and non-computers included).
    pub devices: u64,
    pub matched: u64,
    pub rmm_only: u64,
    pub directory_only: u64,
    pub directory_only_inactive: u64,
}

/// One device as the RMM holds it (control characters escaped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmmDeviceRecord {
    pub id: String,
    pub hostname: String,
    pub domain: Option<String>,
    pub operating_system: Option<String>,
    pub device_type: Option<String>,
    pub ip_address: Option<String>,
    /// RFC 3339 UTC.
    pub last_seen: Option<String>,
    pub online: Option<bool>,
    /// A computer with an agent (not a printer or network device).
    pub computer: bool,
    /// Deleted or suspended in the RMM.
    pub retired: bool,
}

/// One machine's standing between the RMM and the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmmReconcileRecord {
    /// The host name's first label, lower case (the matching key).
    pub name: String,
    pub standing: String,
    pub directory_account: Option<String>,
    pub rmm_ids: Vec<String>,
    pub note: String,
}

/// The `kind` of the site summary of one workstation cycle.
pub const KIND_WORKSTATION_SUMMARY: &str = "workstation_summary";

/// Body of a `workstation_summary` bundle: every workstation the directory knows, accounted for.
/// Coverage is checked ÷ known; a workstation that was not checked is listed with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkstationSummaryBody {
    /// Workstations in the last complete inventory (enabled or not).
    pub known: u64,
    /// Scanned with at least one check evaluated.
    pub checked: u64,
    /// Checked and passing every check that applied.
    pub compliant: u64,
    /// Checked with at least one failed check.
    pub drifted: u64,
    /// Reached, but no check could be evaluated.
    pub scan_failed: u64,
    /// Of the workstations counted above, those checked by their endpoint agent rather than over
    /// WinRM (absent in bundles from before agents: 0).
    #[serde(default)]
    pub checked_by_agent: u64,
    /// Known workstations not checked this cycle, with the reason (disabled, offline, not in DNS…).
    pub not_checked: Vec<NotChecked>,
    /// Accounts the directory marks stale (no logon within the configured age).
    pub stale: Vec<String>,
    /// checked × 1000 ÷ known.
    pub coverage_permille: u64,
    /// Per check: results over the checked workstations.
    pub checks: std::collections::BTreeMap<String, CheckCounts>,
}

/// A known workstation that was not checked, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotChecked {
    pub account: String,
    pub dns_host_name: Option<String>,
    pub reason: String,
    pub stale: bool,
}

/// Results of one check across the checked workstations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCounts {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub skipped: u64,
    /// pass × 1000 ÷ (pass + fail); `None` when no workstation could be judged.
    pub compliance_permille: Option<u64>,
}

/// The `kind` of a bundle that records one L3 notification (first or reminder) and its delivery.
pub const KIND_NOTIFICATION: &str = "notification";

/// Body of a `notification` bundle: what was told to whom, and every delivery attempt.
/// Secrets (passwords, webhook URLs, routing keys) are never recorded, only channel names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationBody {
    /// The incident it is about.
    pub incident: u64,
    /// De-duplication key `site/target/check`.
    pub key: String,
    pub target: String,
    pub check: String,
    pub severity: String,
    /// The headline as sent.
    pub headline: String,
    /// A reminder of an earlier notification nobody acknowledged.
    pub reminder: bool,
    /// One entry per channel the severity routed to.
    pub deliveries: Vec<DeliveryRecord>,
}

/// Delivering one notification to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRecord {
    /// The configured channel name.
    pub channel: String,
    /// `email`, `slack`, `teams`, `pagerduty` or `webhook`.
    pub kind: String,
    pub delivered: bool,
    pub attempts: Vec<DeliveryAttempt>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryAttempt {
    /// RFC 3339 UTC.
    pub at: String,
    /// The receiver's answer (`250 2.0.0 Ok: queued`, `HTTP 202`) when it accepted.
    pub answer: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The `kind` of a bundle that records a person's action on the appliance.
pub const KIND_OPERATOR_ACTION: &str = "operator_action";

/// Body of an `operator_action` bundle: healing paused or resumed, a maintenance window added,
/// an incident acknowledged, an export written; or a partner user's action on an incident at
/// Central Command (`details.source = "central_command"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorActionBody {
    /// `pause_healing`, `resume_healing`, `maintenance`, `acknowledge`, `export`, `setup`,
    /// `l2_approve`, `l2_reject`, `flywheel_approve`, `flywheel_reject`; from Central Command also
    /// `assign` and `comment`.
    pub action: String,
    /// Who, as they gave it (console user name, `osiris` CLI user): a claim, not proof. From
    /// Central Command: the partner user's e-mail address as Central Command authenticated it.
    pub by: String,
    pub reason: String,
    /// Action-specific details (window bounds, incident id, export path).
    pub details: serde_json::Value,
    /// The local process that asked, as the kernel reported it on the API socket
    /// (`SO_PEERCRED`); absent only in bundles sealed before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerCredentials>,
}

/// A local API caller's credentials from the kernel, with the user name `/etc/passwd` gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCredentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id, when the kernel gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The user's name, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The `kind` of a bundle that records an endpoint agent's enrollment (issue 17): the device key
/// every later `agent_result` of that agent is signed with.
pub const KIND_AGENT_ENROLLMENT: &str = "agent_enrollment";

/// Body of an `agent_enrollment` bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEnrollmentBody {
    /// The agent's ID on this appliance (1–128 of `A-Z a-z 0-9 . _ : -`).
    pub agent_id: String,
    /// The host name the device gave.
    pub hostname: String,
    /// Operating system name and version as the device gave them.
    pub os: String,
    pub os_version: String,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    /// The agent's version at enrollment.
    pub agent_version: String,
    /// The Ed25519 device public key (32 bytes), standard base64 with padding.
    pub device_public_key: String,
    /// SHA-256 of the client certificate issued (DER), lower-case hex.
    pub certificate_sha256: String,
    /// The enrollment token's ID (never the token itself).
    pub token_id: String,
}

/// The `kind` of a bundle that records one check result an agent reported, with the device's own
/// signature over it.
pub const KIND_AGENT_RESULT: &str = "agent_result";

/// Body of an `agent_result` bundle. `signed` is exactly the bytes the device signed (layout 1 of
/// docs/AGENT-PROTOCOL.md, "What is signed"); the other members repeat what those bytes say, for
/// people and tools that do not parse the layout, and a verifier checks that they agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentResultBody {
    /// The agent (its `agent_enrollment` bundle comes earlier in the log).
    pub agent_id: String,
    /// The agent's sequence number of this item.
    pub seq: u64,
    /// The runbook ID of the check.
    pub check_id: String,
    /// `pass`, `fail`, `error` or `not_applicable`.
    pub status: String,
    /// What the check observed (keys in byte order).
    pub facts: std::collections::BTreeMap<String, String>,
    /// When the check ran by the device's clock, milliseconds since 1970 UTC.
    pub observed_at_unix_ms: i64,
    /// The catalogue version the agent ran the check from.
    pub catalog_version: String,
    /// The signing bytes, standard base64 with padding.
    pub signed: String,
    /// The device key's Ed25519 signature over `signed`, standard base64 with padding.
    pub signature: String,
}

/// The `kind` of a bundle that records sequence numbers an agent had to drop.
pub const KIND_AGENT_GAP: &str = "agent_gap";

/// Body of an `agent_gap` bundle: "agent X: items 120–180 lost: queue full".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGapBody {
    pub agent_id: String,
    /// The first and last dropped sequence numbers (`last_seq` is also the gap's own number).
    pub first_seq: u64,
    pub last_seq: u64,
    /// `queue_full`, `too_old` or `disk_full`.
    pub reason: String,
    /// When the agent dropped them by its clock, milliseconds since 1970 UTC.
    pub recorded_at_unix_ms: i64,
}

/// The `kind` of a bundle that records one phase of a remediation an agent ran at the
/// appliance's request.
pub const KIND_AGENT_REMEDIATION: &str = "agent_remediation";

/// Body of an `agent_remediation` bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRemediationBody {
    pub agent_id: String,
    /// The agent's sequence number of this item.
    pub seq: u64,
    /// The appliance's request ID.
    pub request_id: String,
    pub runbook_id: String,
    /// `accepted`, `remediate`, `verify` or `rollback`.
    pub phase: String,
    /// `succeeded`, `failed`, `refused` or `timed_out`.
    pub status: String,
    pub detail: String,
    /// When the phase ended by the device's clock, milliseconds since 1970 UTC.
    pub finished_at_unix_ms: i64,
}

/// The `kind` of a bundle that records an agent's revocation: from it on, the appliance refuses
/// the agent's certificate.
pub const KIND_AGENT_REVOCATION: &str = "agent_revocation";

/// Body of an `agent_revocation` bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRevocationBody {
    pub agent_id: String,
    /// Who asked (as `operator_action`'s `by`).
    pub by: String,
    pub reason: String,
}

/// The `kind` of a bundle that carries an [`AttestationBody`]: a person's signed statement that a
/// control holds, for the controls no scan can check.
pub const KIND_ATTESTATION: &str = "attestation";

/// Body of a bundle with `kind = "attestation"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationBody {
    /// The attested control, e.g. `HIPAA:164.308(a)(1)(ii)(A)`.
    pub control: String,
    /// What the person states, in their words.
    pub statement: String,
    /// Who attests (name and role as given).
    pub by: String,
    /// The last day (UTC, `YYYY-MM-DD`) the attestation counts; after it the control needs a new one.
    pub expires: String,
    /// The supporting document, if any.
    pub document: Option<DocumentRecord>,
}

/// A document kept in the data directory beside the evidence log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRecord {
    /// The file name the person gave.
    pub name: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the copy is kept, relative to the data directory (`documents/<sha256>`).
    pub stored_as: String,
}

/// The `kind` of a bundle that carries an [`ExceptionBody`]: an accepted risk for one check on one target.
pub const KIND_EXCEPTION: &str = "exception";

/// Body of a bundle with `kind = "exception"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionBody {
    /// Check id, e.g. `LIN-SSH-002`.
    pub check: String,
    /// Target name as configured or as seen in scan evidence.
    pub target: String,
    /// Why the finding is accepted.
    pub reason: String,
    /// What limits the risk meanwhile.
    pub compensating: String,
    /// Who owns the risk and is told when it expires.
    pub owner: String,
    /// The last day (UTC, `YYYY-MM-DD`) the exception counts; after it the finding counts again.
    pub expires: String,
}

/// The `kind` of a bundle that carries a [`PacketBody`]: the month's packet of compliance reports
/// that `osirisd` made and keeps, each file named with its SHA-256.
pub const KIND_PACKET: &str = "packet";

/// Body of a bundle with `kind = "packet"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketBody {
    /// The month the packet reports (`YYYY-MM`).
    pub period: String,
    /// When the reports were made (RFC 3339 UTC).
    pub generated_at: String,
    /// Where the files are kept, relative to the data directory (`packets/<period>`).
    pub directory: String,
    /// False when the month holds no scan or agent result: its reports say so and claim no status
    /// a check would give.
    pub evidence: bool,
    /// Every file of the packet, `MANIFEST.sha256` last.
    pub files: Vec<PacketFileRecord>,
}

/// One file of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketFileRecord {
    /// A plain file name (`hipaa-2026-11.pdf`).
    pub name: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl PacketBody {
    /// What is wrong with the body, if anything: a period that is not `YYYY-MM`, a directory other
    /// than `packets/<period>`, a file name that is not a plain name, a SHA-256 that is not 64
    /// lowercase hex digits, a name twice, no `MANIFEST.sha256` last.
    pub fn problem(&self) -> Option<String> {
        let p = self.period.as_bytes();
        let period_ok = p.len() == 7
            && p[4] == b'-'
            && p.iter()
                .enumerate()
                .all(|(i, b)| i == 4 || b.is_ascii_digit());
        if !period_ok {
            return Some(format!("period `{}` is not YYYY-MM", self.period));
        }
        if self.directory != format!("packets/{}", self.period) {
            return Some(format!(
                "directory `{}` is not packets/{}",
                self.directory, self.period
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for file in &self.files {
            let plain = !file.name.is_empty()
                && file.name.len() <= 128
                && !file.name.starts_with('.')
                && file
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !plain {
                return Some(format!("file name `{}` is not a plain name", file.name));
            }
            if file.sha256.len() != 64
                || !file
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Some(format!(
                    "{}: SHA-256 `{}` is not 64 lowercase hex digits",
                    file.name, file.sha256
                ));
            }
            if !seen.insert(file.name.as_str()) {
                return Some(format!("{} is listed twice", file.name));
            }
        }
        if self.files.last().map(|f| f.name.as_str()) != Some("MANIFEST.sha256") {
            return Some("MANIFEST.sha256 is not the last file".to_owned());
        }
        None
    }
}
