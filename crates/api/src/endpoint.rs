//! Every endpoint of the local API, declared once: its method, its route, the body it takes and
//! the answer it gives.
//!
//! The daemon's router binds a handler to each [`Endpoint`] by its [`Endpoint::METHOD`] and
//! [`Endpoint::ROUTE`]; [`crate::Client::call`] sends one and decodes its answer; the console
//! calls them through the same types. [`ALL`] lists them for tests that check nothing is left
//! unrouted. docs/LOCAL-API.md describes each in words.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types;

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    /// The method as it appears on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One endpoint. A value of the type carries what goes into the path (an incident's id, a
/// limit); the body is sent separately as [`Endpoint::Body`].
pub trait Endpoint {
    /// The HTTP method.
    const METHOD: Method;
    /// The route as the router writes it, with `{name}` for path parameters.
    const ROUTE: &'static str;
    /// The JSON request body (`()` for none, [`Empty`] for `{}`).
    type Body: Serialize + DeserializeOwned;
    /// The JSON answer on success.
    type Answer: Serialize + DeserializeOwned;

    /// The path to request, with this value's parameters filled in.
    fn path(&self) -> String {
        Self::ROUTE.to_owned()
    }
}

/// The empty JSON object some `POST`s take as their body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Empty {}

/// Declares endpoints without path parameters.
macro_rules! endpoints {
    ($($(#[$doc:meta])* $name:ident: $method:ident $route:literal, $body:ty => $answer:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
            pub struct $name;

            impl Endpoint for $name {
                const METHOD: Method = Method::$method;
                const ROUTE: &'static str = $route;
                type Body = $body;
                type Answer = $answer;
            }
        )*
    };
}

endpoints! {
    /// `GET /v1/status`: the one-screen state of the appliance.
    Status: Get "/v1/status", () => types::Status;
    /// `GET /v1/targets`: every configured or discovered device.
    Targets: Get "/v1/targets", () => Vec<types::Device>;
    /// `GET /v1/incidents`: the incidents that are not closed.
    Incidents: Get "/v1/incidents", () => Vec<types::Incident>;
    /// `GET /v1/evidence`: the evidence log's state.
    Evidence: Get "/v1/evidence", () => types::EvidenceState;
    /// `POST /v1/evidence/export`: an auditor kit into a directory.
    Export: Post "/v1/evidence/export", types::ExportRequest => types::ExportResult;
    /// `POST /v1/scan`: run the server scan now (or once more after the running one).
    ScanNow: Post "/v1/scan", Empty => types::Triggered;
    /// `POST /v1/heal`: healing follows every server scan, so this triggers a scan.
    HealNow: Post "/v1/heal", Empty => types::Triggered;
    /// `POST /v1/healing/pause`: stop automatic fixing (detection goes on).
    PauseHealing: Post "/v1/healing/pause", types::PauseRequest => types::HealingState;
    /// `POST /v1/healing/resume`: fix automatically again.
    ResumeHealing: Post "/v1/healing/resume", types::PauseRequest => types::HealingState;
    /// `POST /v1/maintenance`: a maintenance window.
    AddMaintenance: Post "/v1/maintenance", types::MaintenanceRequest => types::Maintenance;
    /// `GET /v1/setup`: the first-boot wizard's state.
    Setup: Get "/v1/setup", () => types::SetupState;
    /// `POST /v1/setup/network`: the appliance's network settings.
    SetNetwork: Post "/v1/setup/network", types::NetworkSettings => types::SetupState;
    /// `POST /v1/setup/claim`: the partner's claim code.
    Claim: Post "/v1/setup/claim", types::ClaimRequest => types::SetupState;
    /// `POST /v1/setup/directory/test`: a real bind and search against Active Directory.
    TestDirectory: Post "/v1/setup/directory/test", types::DirectoryRequest => types::ConnectionTest;
    /// `POST /v1/setup/directory`: the Active Directory settings (password to the vault).
    SaveDirectory: Post "/v1/setup/directory", types::DirectoryRequest => types::SetupState;
    /// `POST /v1/setup/credentials`: one credential slot (secret to the vault).
    SetCredential: Post "/v1/setup/credentials", types::CredentialRequest => types::SetupState;
    /// `POST /v1/setup/timezone`: the appliance's time zone.
    SetTimezone: Post "/v1/setup/timezone", types::TimezoneRequest => types::SetupState;
    /// `POST /v1/setup/pin`: the console PIN (salted argon2id hash in a 0600 file).
    SetPin: Post "/v1/setup/pin", types::PinRequest => types::SetupState;
    /// `POST /v1/console/unlock`: the console PIN for a token that unlocks operator actions;
    /// wrong PINs are answered more and more slowly.
    Unlock: Post "/v1/console/unlock", types::UnlockRequest => types::Unlocked;
    /// `POST /v1/setup/complete`: the wizard is done; the first scan starts.
    CompleteSetup: Post "/v1/setup/complete", Empty => types::SetupState;
    /// `POST /v1/update/apply`: always refused (409); the partner applies updates.
    ApplyUpdate: Post "/v1/update/apply", Empty => types::UpdateState;
    /// `POST /v1/update/rollback`: always refused (409); the partner rolls back.
    RollBackUpdate: Post "/v1/update/rollback", Empty => types::UpdateState;
    /// `POST /v1/agents/tokens`: a one-time enrollment token for endpoint agents.
    CreateAgentToken: Post "/v1/agents/tokens", types::AgentTokenRequest => types::AgentToken;
    /// `GET /v1/agents/tokens`: every enrollment token (never its text).
    AgentTokens: Get "/v1/agents/tokens", () => Vec<types::AgentTokenInfo>;
    /// `POST /v1/agents/tokens/revoke`: a token nobody may enroll with any more.
    RevokeAgentToken: Post "/v1/agents/tokens/revoke", types::AgentTokenRevokeRequest => Vec<types::AgentTokenInfo>;
    /// `GET /v1/agents`: the agent gateway and every enrolled agent.
    Agents: Get "/v1/agents", () => types::AgentsState;
    /// `POST /v1/agents/revoke`: an agent whose certificate is refused from now on.
    RevokeAgent: Post "/v1/agents/revoke", types::AgentRevokeRequest => types::AgentView;
    /// `GET /v1/agents/releases`: the stored agent releases and their rollout.
    AgentReleaseList: Get "/v1/agents/releases", () => types::AgentReleases;
    /// `POST /v1/agents/releases`: store a vendor-signed agent release and offer it.
    AddAgentRelease: Post "/v1/agents/releases", types::AgentReleaseRequest => types::AgentReleases;
    /// `POST /v1/agents/releases/rollout`: change the share of agents offered a release.
    SetAgentRollout: Post "/v1/agents/releases/rollout", types::AgentRolloutRequest => types::AgentReleases;
    /// `GET /v1/l2/pending`: the L2 plans waiting for a person, oldest first.
    L2Pending: Get "/v1/l2/pending", () => Vec<types::L2Plan>;
    /// `GET /v1/flywheel`: the flywheel's patterns and the resolutions by tier.
    Flywheel: Get "/v1/flywheel", () => types::FlywheelState;
    /// `POST /v1/compliance/records`: seal an attestation or an exception; in effect at once.
    SealComplianceRecord: Post "/v1/compliance/records", types::ComplianceRecordRequest => types::SealedRecord;
    /// `GET /v1/compliance/records`: the exceptions and attestations with their expiry.
    ComplianceRecords: Get "/v1/compliance/records", () => types::ComplianceRecords;
    /// `GET /v1/compliance/packets`: the monthly packets the daemon made, newest first.
    Packets: Get "/v1/compliance/packets", () => Vec<types::PacketState>;
    /// `POST /v1/compliance/packets/export`: one packet onto a USB stick (as the kit export).
    ExportPacket: Post "/v1/compliance/packets/export", types::PacketExportRequest => types::PacketExportResult;
}

/// Declares endpoints that take one id in their path, `{id}` in the route.
macro_rules! id_endpoints {
    ($($(#[$doc:meta])* $name:ident: $method:ident $route:literal, $body:ty => $answer:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct $name {
                pub id: String,
            }

            impl Endpoint for $name {
                const METHOD: Method = Method::$method;
                const ROUTE: &'static str = $route;
                type Body = $body;
                type Answer = $answer;

                fn path(&self) -> String {
                    Self::ROUTE.replace("{id}", &path_segment(&self.id))
                }
            }
        )*
    };
}

id_endpoints! {
    /// `POST /v1/l2/pending/{id}/approve`: run a waiting plan now (its check is re-run first).
    ApproveL2: Post "/v1/l2/pending/{id}/approve", types::DecisionRequest => types::L2Decided;
    /// `POST /v1/l2/pending/{id}/reject`: drop a waiting plan.
    RejectL2: Post "/v1/l2/pending/{id}/reject", types::DecisionRequest => types::L2Decided;
    /// `POST /v1/flywheel/{id}/approve`: promote a proposed pattern to an L1 rule, in effect at once.
    ApproveFlywheel: Post "/v1/flywheel/{id}/approve", types::DecisionRequest => types::FlywheelDecided;
    /// `POST /v1/flywheel/{id}/reject`: a pattern that is never proposed again.
    RejectFlywheel: Post "/v1/flywheel/{id}/reject", types::DecisionRequest => types::FlywheelDecided;
}

/// An id as one path segment: anything but ASCII letters, digits, `-` and `_` is
/// percent-encoded, so an id can neither add segments nor a query.
fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET /v1/healing?limit=N`: the newest `limit` healing log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Healing {
    pub limit: u32,
}

impl Endpoint for Healing {
    const METHOD: Method = Method::Get;
    const ROUTE: &'static str = "/v1/healing";
    type Body = ();
    type Answer = Vec<types::HealingEntry>;

    fn path(&self) -> String {
        format!("{}?limit={}", Self::ROUTE, self.limit)
    }
}

/// `POST /v1/incidents/{id}/ack`: a person took the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledge {
    pub id: u64,
}

impl Endpoint for Acknowledge {
    const METHOD: Method = Method::Post;
    const ROUTE: &'static str = "/v1/incidents/{id}/ack";
    type Body = types::AckRequest;
    type Answer = types::Incident;

    fn path(&self) -> String {
        format!("/v1/incidents/{}/ack", self.id)
    }
}

/// `DELETE /v1/maintenance/{id}`: end a maintenance window early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveMaintenance {
    pub id: u64,
}

impl Endpoint for RemoveMaintenance {
    const METHOD: Method = Method::Delete;
    const ROUTE: &'static str = "/v1/maintenance/{id}";
    type Body = ();
    type Answer = types::HealingState;

    fn path(&self) -> String {
        format!("/v1/maintenance/{}", self.id)
    }
}

/// Method and route of every endpoint.
pub const ALL: &[(Method, &str)] = &[
    route::<Status>(),
    route::<Targets>(),
    route::<Incidents>(),
    route::<Acknowledge>(),
    route::<Healing>(),
    route::<Evidence>(),
    route::<Export>(),
    route::<ScanNow>(),
    route::<HealNow>(),
    route::<PauseHealing>(),
    route::<ResumeHealing>(),
    route::<AddMaintenance>(),
    route::<RemoveMaintenance>(),
    route::<Setup>(),
    route::<SetNetwork>(),
    route::<Claim>(),
    route::<TestDirectory>(),
    route::<SaveDirectory>(),
    route::<SetCredential>(),
    route::<SetTimezone>(),
    route::<SetPin>(),
    route::<Unlock>(),
    route::<CompleteSetup>(),
    route::<ApplyUpdate>(),
    route::<RollBackUpdate>(),
    route::<CreateAgentToken>(),
    route::<AgentTokens>(),
    route::<RevokeAgentToken>(),
    route::<Agents>(),
    route::<RevokeAgent>(),
    route::<AgentReleaseList>(),
    route::<AddAgentRelease>(),
    route::<SetAgentRollout>(),
    route::<L2Pending>(),
    route::<ApproveL2>(),
    route::<RejectL2>(),
    route::<Flywheel>(),
    route::<ApproveFlywheel>(),
    route::<RejectFlywheel>(),
    route::<SealComplianceRecord>(),
    route::<ComplianceRecords>(),
    route::<Packets>(),
    route::<ExportPacket>(),
];

const fn route<E: Endpoint>() -> (Method, &'static str) {
    (E::METHOD, E::ROUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_in_their_parameters() {
        assert_eq!(Acknowledge { id: 41 }.path(), "/v1/incidents/41/ack");
        assert_eq!(RemoveMaintenance { id: 3 }.path(), "/v1/maintenance/3");
        assert_eq!(Healing { limit: 200 }.path(), "/v1/healing?limit=200");
        assert_eq!(Status.path(), "/v1/status");
        assert_eq!(
            ApproveFlywheel {
                id: "fw-0a1b2c3d4e".to_owned()
            }
            .path(),
            "/v1/flywheel/fw-0a1b2c3d4e/approve"
        );
        // An id cannot reach another endpoint or add a query.
        assert_eq!(
            RejectL2 {
                id: "../../agents/revoke?x=1".to_owned()
            }
            .path(),
            "/v1/l2/pending/%2E%2E%2F%2E%2E%2Fagents%2Frevoke%3Fx%3D1/reject"
        );
    }

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for (method, route) in ALL {
            assert!(route.starts_with("/v1/"), "{route}");
            assert!(
                seen.insert((method, route)),
                "{} {route} twice",
                method.as_str()
            );
        }
    }

    #[test]
    fn an_empty_body_is_the_empty_object() {
        assert_eq!(serde_json::to_string(&Empty {}).ok().as_deref(), Some("{}"));
    }
}
