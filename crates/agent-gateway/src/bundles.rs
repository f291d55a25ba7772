//! The evidence drafts of the agent bundles (`evidence_schema`'s agent bodies): what the gateway
//! seals for an enrollment, a signed result, a gap, a remediation phase and a revocation.

use agent_proto::v1::{
    CheckResult, CheckStatus, Gap, GapReason, RemediationOutcome, RemediationPhase,
    RemediationStatus,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence::log::BundleDraft;
use evidence_schema::{
    AgentEnrollmentBody, AgentGapBody, AgentRemediationBody, AgentResultBody, AgentRevocationBody,
    KIND_AGENT_ENROLLMENT, KIND_AGENT_GAP, KIND_AGENT_REMEDIATION, KIND_AGENT_RESULT,
    KIND_AGENT_REVOCATION,
};
use serde::Serialize;

/// What every draft of one gateway shares.
#[derive(Debug, Clone)]
pub struct DraftContext {
    /// The site id.
    pub site: String,
    /// The catalogue version of the appliance.
    pub catalog: String,
}

impl DraftContext {
    fn draft(&self, kind: &str, body: &impl Serialize) -> BundleDraft {
        BundleDraft {
            site: self.site.clone(),
            kind: kind.to_owned(),
            catalog: self.catalog.clone(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::to_value(body).unwrap_or_default(),
        }
    }

    pub(crate) fn enrollment(&self, body: &AgentEnrollmentBody) -> BundleDraft {
        self.draft(KIND_AGENT_ENROLLMENT, body)
    }

    pub(crate) fn result(&self, agent_id: &str, result: &CheckResult) -> BundleDraft {
        let body = AgentResultBody {
            agent_id: agent_id.to_owned(),
            seq: result.seq,
            check_id: result.check_id.clone(),
            status: status_name(result.status()).to_owned(),
            facts: result.facts.clone().into_iter().collect(),
            observed_at_unix_ms: result.observed_at_unix_ms,
            catalog_version: result.catalog_version.clone(),
            signed: BASE64.encode(agent_proto::result_signing_bytes(result)),
            signature: BASE64.encode(&result.signature),
        };
        self.draft(KIND_AGENT_RESULT, &body)
    }

    pub(crate) fn gap(&self, agent_id: &str, gap: &Gap) -> BundleDraft {
        let body = AgentGapBody {
            agent_id: agent_id.to_owned(),
            first_seq: gap.first_seq,
            last_seq: gap.last_seq,
            reason: gap_reason_name(gap.reason()).to_owned(),
            recorded_at_unix_ms: gap.recorded_at_unix_ms,
        };
        self.draft(KIND_AGENT_GAP, &body)
    }

    pub(crate) fn remediation(&self, agent_id: &str, outcome: &RemediationOutcome) -> BundleDraft {
        let body = AgentRemediationBody {
            agent_id: agent_id.to_owned(),
            seq: outcome.seq,
            request_id: outcome.request_id.clone(),
            runbook_id: outcome.runbook_id.clone(),
            phase: phase_name(outcome.phase()).to_owned(),
            status: remediation_status_name(outcome.status()).to_owned(),
            detail: outcome.detail.clone(),
            finished_at_unix_ms: outcome.finished_at_unix_ms,
        };
        self.draft(KIND_AGENT_REMEDIATION, &body)
    }

    pub(crate) fn revocation(&self, agent_id: &str, by: &str, reason: &str) -> BundleDraft {
        let body = AgentRevocationBody {
            agent_id: agent_id.to_owned(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        self.draft(KIND_AGENT_REVOCATION, &body)
    }
}

/// The evidence name of a check status (the same words as the appliance's own scans).
#[must_use]
pub const fn status_name(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "pass",
        CheckStatus::Fail => "fail",
        CheckStatus::Error | CheckStatus::Unspecified => "error",
        CheckStatus::NotApplicable => "not_applicable",
    }
}

/// The evidence name of a gap reason.
#[must_use]
pub const fn gap_reason_name(reason: GapReason) -> &'static str {
    match reason {
        GapReason::QueueFull | GapReason::Unspecified => "queue_full",
        GapReason::TooOld => "too_old",
        GapReason::DiskFull => "disk_full",
    }
}

/// The evidence name of a remediation phase.
#[must_use]
pub const fn phase_name(phase: RemediationPhase) -> &'static str {
    match phase {
        RemediationPhase::Accepted | RemediationPhase::Unspecified => "accepted",
        RemediationPhase::Remediate => "remediate",
        RemediationPhase::Verify => "verify",
        RemediationPhase::Rollback => "rollback",
    }
}

/// The evidence name of a remediation phase's outcome.
#[must_use]
pub const fn remediation_status_name(status: RemediationStatus) -> &'static str {
    match status {
        RemediationStatus::Succeeded => "succeeded",
        RemediationStatus::Failed | RemediationStatus::Unspecified => "failed",
        RemediationStatus::Refused => "refused",
        RemediationStatus::TimedOut => "timed_out",
    }
}
