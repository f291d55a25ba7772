//! OSCAL 1.2.1 JSON: an `assessment-results` document with one result for the period (a finding
//! per control with a claim, an observation per check result and attestation), and a
//! `plan-of-action-and-milestones` for the open findings. Serde types of our own, only the parts
//! we write; UUIDs are derived from the content (RFC 4122 version 5 layout over SHA-256), so the
//! same evidence gives the same document.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::assess::{Assessment, ControlAssessment, ControlStatus};
use crate::ledger::{CheckStatus, Ledger};
use crate::render::stamp::Stamp;
use crate::render::{ReportContext, consistency_text, rfc3339, sample_bundles, sample_devices};

/// The OSCAL version the documents follow.
pub const OSCAL_VERSION: &str = "1.2.1";

/// Namespace of our own properties (OSCAL reserves the default namespace for NIST's names).
pub const NS: &str = "https://osiriscare.example/ns/oscal";

/// The `assessment-results` document.
pub fn assessment_results(
    assessment: &Assessment<'_>,
    ledger: &Ledger,
    cx: &ReportContext<'_>,
) -> serde_json::Value {
    let ids = Ids::new(assessment, ledger, cx);
    let (mut observations, inventory) = observations(assessment, ledger, &ids);
    observations.extend(sample_observations(cx, &ids));
    let findings: Vec<Finding> = assessment
        .controls
        .iter()
        .filter_map(|control| finding(control, &ids))
        .collect();
    let doc = AssessmentResultsDoc {
        assessment_results: AssessmentResults {
            uuid: ids.uuid("assessment-results", ""),
            metadata: metadata(assessment, ledger, cx, "Assessment results"),
            import_ap: Href {
                href: format!(
                    "urn:osiriscare:assessment-plan:{}:{}",
                    assessment.framework.framework.key(),
                    ledger.period().label
                ),
            },
            results: vec![AssessmentResult {
                uuid: ids.uuid("result", ""),
                title: format!(
                    "{} — {} — {}",
                    assessment.framework.name,
                    cx.site,
                    ledger.period().label
                ),
                description: crate::render::summary_sentences(assessment, ledger).join(" "),
                start: rfc3339(ledger.period().start),
                end: rfc3339(ledger.until()),
                props: vec![
                    prop("framework-version", &assessment.framework.version),
                    prop("control-catalogue-version", cx.frameworks_version),
                    prop("runbook-catalogue-version", cx.catalog_version),
                    prop("evidence-log", cx.origin),
                    prop("appliance-key-id", cx.key_id),
                ],
                local_definitions: (!inventory.is_empty()).then_some(LocalDefinitions {
                    inventory_items: inventory,
                }),
                reviewed_controls: ReviewedControls {
                    control_selections: vec![ControlSelection {
                        include_controls: assessment
                            .controls
                            .iter()
                            .map(|c| ControlId {
                                control_id: control_id(assessment, c),
                            })
                            .collect(),
                    }],
                },
                observations: non_empty(observations),
                findings: non_empty(findings),
            }],
            back_matter: back_matter(cx, &ids),
        },
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// The `plan-of-action-and-milestones` document: one item per failing, partly checked or
/// unattested control, and the accepted risks (exceptions) with their deadlines.
pub fn poam(
    assessment: &Assessment<'_>,
    ledger: &Ledger,
    cx: &ReportContext<'_>,
) -> serde_json::Value {
    let ids = Ids::new(assessment, ledger, cx);
    let (observations, inventory) = observations(assessment, ledger, &ids);
    let mut risks = Vec::new();
    let mut items = Vec::new();
    for control in &assessment.controls {
        let open = matches!(
            control.status,
            ControlStatus::Failing | ControlStatus::Partial | ControlStatus::NeedsAttestation
        );
        let accepted: Vec<_> = control
            .checks
            .iter()
            .filter_map(|c| c.exception.map(|e| (c, e)))
            .collect();
        if !open && accepted.is_empty() {
            continue;
        }
        let mut related_risks = Vec::new();
        for (line, exception) in &accepted {
            let uuid = ids.uuid(
                "risk",
                &format!("{}/{}/{}", control.def.id, line.check, line.target),
            );
            risks.push(Risk {
                uuid: uuid.clone(),
                title: format!("{} fails on {} (accepted)", line.check, line.target),
                description: exception.reason.clone(),
                statement: format!(
                    "Compensating controls: {}. Owner: {}.",
                    exception.compensating, exception.owner
                ),
                status: "deviation-approved",
                deadline: Some(format!("{}T23:59:59Z", exception.expires)),
                related_observations: vec![RelatedObservation {
                    observation_uuid: ids
                        .uuid("observation", &format!("{}/{}", line.check, line.target)),
                }],
            });
            related_risks.push(RiskRef { risk_uuid: uuid });
        }
        let failing: Vec<RelatedObservation> = control
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail && c.exception.is_none())
            .map(|c| RelatedObservation {
                observation_uuid: ids.uuid("observation", &format!("{}/{}", c.check, c.target)),
            })
            .collect();
        if control.status == ControlStatus::Failing {
            let uuid = ids.uuid("risk", &control.def.id);
            risks.push(Risk {
                uuid: uuid.clone(),
                title: format!("{} not met", control.def.id),
                description: control.explanation(),
                statement: control.def.title.clone(),
                status: "open",
                deadline: None,
                related_observations: failing.clone(),
            });
            related_risks.push(RiskRef { risk_uuid: uuid });
        }
        items.push(PoamItem {
            uuid: ids.uuid("poam-item", &control.def.id),
            title: format!("{} {}", control.def.id, control.def.title),
            description: control.explanation(),
            props: vec![
                prop("control-id", &control.def.id),
                prop("control-status", control.status.as_str()),
            ],
            related_observations: non_empty(failing),
            related_risks: non_empty(related_risks),
        });
    }
    let doc = PoamDoc {
        poam: Poam {
            uuid: ids.uuid("poam", ""),
            metadata: metadata(assessment, ledger, cx, "Plan of action and milestones"),
            system_id: SystemId {
                identifier_type: "https://ietf.org/rfc/rfc4122",
                id: ids.uuid("system", cx.origin),
            },
            local_definitions: (!inventory.is_empty()).then_some(LocalDefinitions {
                inventory_items: inventory,
            }),
            observations: non_empty(observations),
            risks: non_empty(risks),
            poam_items: items,
        },
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// An OSCAL token for a control: `hipaa-164.312.a.1`, `cis-4.4` (ids must start with a letter
/// and hold no parentheses); the framework's own id is kept in a property.
fn control_id(assessment: &Assessment<'_>, control: &ControlAssessment<'_>) -> String {
    let mut res = assessment.framework.framework.key().replace('_', "-");
    res.push('-');
    let mut last_dot = false;
    for c in control.def.id.chars() {
        if c.is_ascii_alphanumeric() {
            res.push(c.to_ascii_lowercase());
            last_dot = false;
        } else if !last_dot {
            res.push('.');
            last_dot = true;
        }
    }
    res.trim_end_matches('.').to_owned()
}

fn finding(control: &ControlAssessment<'_>, ids: &Ids) -> Option<Finding> {
    let (state, implementation) = match control.status {
        ControlStatus::Met => ("satisfied", None),
        ControlStatus::Failing | ControlStatus::NeedsAttestation => ("not-satisfied", None),
        ControlStatus::Partial => ("not-satisfied", Some("partial")),
        ControlStatus::NotApplicable => ("satisfied", Some("not-applicable")),
        // No result in the period: no claim either way.
        ControlStatus::NoEvidence | ControlStatus::CouldNotCheck => return None,
    };
    let mut related: Vec<RelatedObservation> = control
        .checks
        .iter()
        .map(|c| RelatedObservation {
            observation_uuid: ids.uuid("observation", &format!("{}/{}", c.check, c.target)),
        })
        .collect();
    if let Some(a) = control.attestation {
        related.push(RelatedObservation {
            observation_uuid: ids.uuid("attestation", &a.seq.to_string()),
        });
    }
    Some(Finding {
        uuid: ids.uuid("finding", &control.def.id),
        title: format!("{} {}", control.def.id, control.def.title),
        description: control.explanation(),
        props: [
            prop("control-id", &control.def.id),
            prop("control-status", control.status.as_str()),
        ]
        .into_iter()
        .chain(trend_props(control))
        .chain(
            control
                .incidents()
                .iter()
                .map(|text| prop("open-incident", text)),
        )
        .collect(),
        target: FindingTarget {
            kind: "objective-id",
            target_id: ids
                .control_ids
                .get(&control.def.id)
                .cloned()
                .unwrap_or_default(),
            status: TargetStatus { state },
            implementation_status: implementation.map(|state| ImplementationStatus { state }),
        },
        related_observations: non_empty(related),
    })
}

fn observations(
    assessment: &Assessment<'_>,
    ledger: &Ledger,
    ids: &Ids,
) -> (Vec<Observation>, Vec<InventoryItem>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut res = Vec::new();
    let mut inventory = Vec::new();
    for target in ledger.targets() {
        inventory.push(InventoryItem {
            uuid: ids.uuid("inventory-item", target),
            description: format!("Device {target} as scanned by the appliance"),
            props: vec![prop("target-name", target)],
        });
    }
    for control in &assessment.controls {
        for line in &control.checks {
            let key = format!("{}/{}", line.check, line.target);
            if !seen.insert(key.clone()) {
                continue;
            }
            res.push(Observation {
                uuid: ids.uuid("observation", &key),
                title: Some(format!(
                    "{} on {}: {}",
                    line.check,
                    line.target,
                    line.status.as_str()
                )),
                description: format!(
                    "Observed {}; {}. {} pass and {} fail results in the period.",
                    line.observed, line.reason, line.passes, line.fails
                ),
                methods: vec!["TEST"],
                props: vec![
                    prop("check", line.check),
                    prop("result", line.status.as_str()),
                    prop("bundle-seq", &line.seq.to_string()),
                ],
                subjects: vec![Subject {
                    subject_uuid: ids.uuid("inventory-item", line.target),
                    kind: "inventory-item",
                }],
                relevant_evidence: vec![Evidence {
                    href: format!("bundles.jsonl#seq={}", line.seq),
                    description: format!(
                        "Signed evidence bundle #{} in the appliance's log {}",
                        line.seq, ids.origin
                    ),
                }],
                collected: rfc3339(ledger.until().min(ledger.period().end)),
            });
        }
        if let Some(a) = control.attestation {
            let key = a.seq.to_string();
            if !seen.insert(format!("attestation/{key}")) {
                continue;
            }
            res.push(Observation {
                uuid: ids.uuid("attestation", &key),
                title: Some(format!("Attestation by {}", a.by)),
                description: a.statement.clone(),
                methods: vec!["EXAMINE"],
                props: vec![
                    prop("attested-by", &a.by),
                    prop("expires", &a.expires.to_string()),
                    prop("bundle-seq", &key),
                ],
                subjects: Vec::new(),
                relevant_evidence: vec![Evidence {
                    href: format!("bundles.jsonl#seq={}", a.seq),
                    description: match &a.document {
                        Some((name, sha)) => format!(
                            "Signed attestation bundle #{}; document {name} with SHA-256 {sha}",
                            a.seq
                        ),
                        None => format!("Signed attestation bundle #{}", a.seq),
                    },
                }],
                collected: rfc3339(a.at),
            });
        }
    }
    (res, inventory)
}

/// An observation per control per auditor sample moment: its status then, the devices and the
/// bundles behind it.
fn sample_observations(cx: &ReportContext<'_>, ids: &Ids) -> Vec<Observation> {
    let mut res = Vec::new();
    for (sample, sample_ledger) in cx.samples {
        let at = rfc3339(sample_ledger.until());
        for control in &sample.controls {
            let bundles = sample_bundles(control);
            let devices = sample_devices(control);
            let key = format!("{at}/{}", control.def.id);
            res.push(Observation {
                uuid: ids.uuid("sample", &key),
                title: Some(format!(
                    "Auditor sample as of {at}: {} {}",
                    control.def.id,
                    control.status.as_str()
                )),
                description: format!(
                    "{} was {} as of {at}: {}",
                    control.def.id,
                    control.status.as_str(),
                    control.explanation()
                ),
                methods: vec!["EXAMINE"],
                props: vec![
                    prop("sample-date", &at),
                    prop("control", &control.def.id),
                    prop("status", control.status.as_str()),
                    prop("devices", &devices.join(" ")),
                    prop(
                        "bundle-seqs",
                        &bundles
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                ],
                subjects: devices
                    .iter()
                    .map(|device| Subject {
                        subject_uuid: ids.uuid("inventory-item", device),
                        kind: "inventory-item",
                    })
                    .collect(),
                relevant_evidence: bundles
                    .iter()
                    .map(|seq| Evidence {
                        href: format!("bundles.jsonl#seq={seq}"),
                        description: format!("Signed evidence bundle #{seq}"),
                    })
                    .collect(),
                collected: at.clone(),
            });
        }
    }
    res
}

/// A back-matter resource per inclusion proof and one for the `--as-of` consistency proof.
fn back_matter(cx: &ReportContext<'_>, ids: &Ids) -> Option<BackMatter> {
    let (size, _) = cx.checkpoint?;
    let proofs = cx.proofs;
    let mut resources: Vec<Resource> = proofs
        .inclusion
        .iter()
        .map(|proof| Resource {
            uuid: ids.uuid("inclusion-proof", &proof.seq.to_string()),
            title: format!("Inclusion proof of bundle #{}", proof.seq),
            description: format!(
                "RFC 9162 inclusion proof of bundles.jsonl line {} in the checkpoint of {size} bundles",
                proof.seq + 1
            ),
            props: vec![
                prop("bundle-seq", &proof.seq.to_string()),
                prop("tree-size", &size.to_string()),
                prop("leaf-hash", &proof.leaf),
                prop(
                    "audit-path",
                    &if proof.path.is_empty() {
                        "-".to_owned()
                    } else {
                        proof.path.join(" ")
                    },
                ),
            ],
        })
        .collect();
    if let Some(consistency) = &proofs.consistency {
        resources.push(Resource {
            uuid: ids.uuid("consistency-proof", &consistency.from.0.to_string()),
            title: format!(
                "Consistency proof from checkpoint {} to checkpoint {}",
                consistency.from.0, consistency.to.0
            ),
            description: consistency_text(consistency),
            props: vec![
                prop("from-tree-size", &consistency.from.0.to_string()),
                prop("to-tree-size", &consistency.to.0.to_string()),
                prop("from-signed-at", &consistency.from_signed_at),
                prop(
                    "proof",
                    &if consistency.path.is_empty() {
                        "-".to_owned()
                    } else {
                        consistency.path.join(" ")
                    },
                ),
            ],
        });
    }
    non_empty(resources).map(|resources| BackMatter { resources })
}

fn metadata(
    assessment: &Assessment<'_>,
    ledger: &Ledger,
    cx: &ReportContext<'_>,
    what: &str,
) -> Metadata {
    let stamp = Stamp::new(assessment, ledger, cx);
    Metadata {
        title: format!(
            "{what}: {} for {} ({})",
            assessment.framework.name,
            cx.site,
            ledger.period().label
        ),
        last_modified: rfc3339(cx.generated_at),
        version: format!("{}+{}", ledger.period().label, cx.catalog_version),
        oscal_version: OSCAL_VERSION,
        props: vec![
            prop("generator", &format!("osiris {}", cx.tool_version)),
            prop(
                "evidence-bundles",
                &stamp
                    .evidence
                    .map_or("none".to_owned(), |(low, high)| format!("{low}-{high}")),
            ),
            prop("content-sha256", &stamp.content_sha256),
            prop("report-stamp", &stamp.encode()),
        ],
    }
}

/// The control's trend: a `trend-week` property per week of the period
/// (`2026-11-01/2026-11-07 passes=12 fails=1`), none for a control no check covers.
fn trend_props(control: &ControlAssessment<'_>) -> Vec<Prop> {
    if control.runbooks.is_empty() {
        return Vec::new();
    }
    control
        .trend
        .iter()
        .map(|w| {
            prop(
                "trend-week",
                &format!(
                    "{}/{} passes={} fails={}",
                    w.first, w.last, w.passes, w.fails
                ),
            )
        })
        .collect()
}

fn prop(name: &str, value: &str) -> Prop {
    Prop {
        name: name.to_owned(),
        ns: NS,
        // OSCAL strings must not be empty or start/end with white space.
        value: match value.trim() {
            "" => "-".to_owned(),
            trimmed => trimmed.to_owned(),
        },
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// Content-derived UUIDs and OSCAL control ids.
struct Ids {
    seed: String,
    origin: String,
    control_ids: std::collections::BTreeMap<String, String>,
}

impl Ids {
    fn new(assessment: &Assessment<'_>, ledger: &Ledger, cx: &ReportContext<'_>) -> Ids {
        Ids {
            seed: format!(
                "{}|{}|{}|{}",
                cx.origin,
                assessment.framework.framework.key(),
                ledger.period().label,
                rfc3339(ledger.until())
            ),
            origin: cx.origin.to_owned(),
            control_ids: assessment
                .controls
                .iter()
                .map(|c| (c.def.id.clone(), control_id(assessment, c)))
                .collect(),
        }
    }

    fn uuid(&self, kind: &str, name: &str) -> String {
        let digest = Sha256::digest(format!("{}|{kind}|{name}", self.seed).as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

#[derive(Serialize)]
struct AssessmentResultsDoc {
    #[serde(rename = "assessment-results")]
    assessment_results: AssessmentResults,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AssessmentResults {
    uuid: String,
    metadata: Metadata,
    import_ap: Href,
    results: Vec<AssessmentResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    back_matter: Option<BackMatter>,
}

#[derive(Serialize)]
struct BackMatter {
    resources: Vec<Resource>,
}

#[derive(Serialize)]
struct Resource {
    uuid: String,
    title: String,
    description: String,
    props: Vec<Prop>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Metadata {
    title: String,
    last_modified: String,
    version: String,
    oscal_version: &'static str,
    props: Vec<Prop>,
}

#[derive(Serialize, Clone)]
struct Prop {
    name: String,
    ns: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Href {
    href: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AssessmentResult {
    uuid: String,
    title: String,
    description: String,
    start: String,
    end: String,
    props: Vec<Prop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_definitions: Option<LocalDefinitions>,
    reviewed_controls: ReviewedControls,
    #[serde(skip_serializing_if = "Option::is_none")]
    observations: Option<Vec<Observation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    findings: Option<Vec<Finding>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LocalDefinitions {
    inventory_items: Vec<InventoryItem>,
}

#[derive(Serialize)]
struct InventoryItem {
    uuid: String,
    description: String,
    props: Vec<Prop>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ReviewedControls {
    control_selections: Vec<ControlSelection>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ControlSelection {
    include_controls: Vec<ControlId>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ControlId {
    control_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Observation {
    uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    description: String,
    props: Vec<Prop>,
    methods: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<Subject>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relevant_evidence: Vec<Evidence>,
    collected: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Subject {
    subject_uuid: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Evidence {
    href: String,
    description: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Finding {
    uuid: String,
    title: String,
    description: String,
    props: Vec<Prop>,
    target: FindingTarget,
    #[serde(skip_serializing_if = "Option::is_none")]
    related_observations: Option<Vec<RelatedObservation>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct FindingTarget {
    #[serde(rename = "type")]
    kind: &'static str,
    target_id: String,
    status: TargetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    implementation_status: Option<ImplementationStatus>,
}

#[derive(Serialize)]
struct TargetStatus {
    state: &'static str,
}

#[derive(Serialize)]
struct ImplementationStatus {
    state: &'static str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct RelatedObservation {
    observation_uuid: String,
}

#[derive(Serialize)]
struct PoamDoc {
    #[serde(rename = "plan-of-action-and-milestones")]
    poam: Poam,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Poam {
    uuid: String,
    metadata: Metadata,
    system_id: SystemId,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_definitions: Option<LocalDefinitions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observations: Option<Vec<Observation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risks: Option<Vec<Risk>>,
    poam_items: Vec<PoamItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SystemId {
    identifier_type: &'static str,
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Risk {
    uuid: String,
    title: String,
    description: String,
    statement: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_observations: Vec<RelatedObservation>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RiskRef {
    risk_uuid: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct PoamItem {
    uuid: String,
    title: String,
    description: String,
    props: Vec<Prop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related_observations: Option<Vec<RelatedObservation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related_risks: Option<Vec<RiskRef>>,
}
