//! The appliance link's contract, shared by `osirisd` (client) and `osiris-central` (server): the
//! JSON messages of each endpoint, the claim code's normal form, the claim proof (an HMAC keyed
//! by the code the console shows, so the code itself never travels) and the messages the
//! appliance signs with its evidence key. docs/CENTRAL-PROTOCOL.md is the prose version.

pub mod seal;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

/// Endpoint paths (all under HTTPS; the `push` ones need the appliance's client certificate).
pub mod path {
    /// `POST` [`super::EnrollRequest`] → [`super::EnrollResponse`].
    pub const ENROLL: &str = "/v1/link/enroll";
    /// `POST` [`super::PickupRequest`] → [`super::PickupResponse`].
    pub const PICKUP: &str = "/v1/link/certificate";
    /// `POST` [`super::PushRequest`] → [`super::PushResponse`] (mutual TLS).
    pub const PUSH: &str = "/v1/link/push";
    /// `POST {}` → [`super::KitRequests`] (mutual TLS): the evidence kits asked of this appliance.
    pub const KIT_REQUESTS: &str = "/v1/link/kit-requests";
    /// `POST` a kit as a tar archive → [`super::KitUploadResponse`] (mutual TLS); the route,
    /// with `{id}` the request's id ([`super::kit_upload_path`]).
    pub const KIT_UPLOAD: &str = "/v1/link/kits/{id}";
    /// `POST {}` → [`super::ManifestOffer`] (mutual TLS): the image release offered to this
    /// appliance by its partner's rollout.
    pub const MANIFEST: &str = "/v1/link/manifest";
    /// `POST {}` → [`super::AgentReleaseOffers`] (mutual TLS): per platform, the newest
    /// endpoint-agent release the partner's rollouts offer this appliance.
    pub const AGENT_RELEASES: &str = "/v1/link/agent-releases";
    /// `POST {}` → the binary of an offered agent release (`application/octet-stream`, mutual
    /// TLS; 404 unless the release is offered to this appliance); the route, with `{id}` the
    /// release's id ([`super::agent_release_binary_path`]).
    pub const AGENT_RELEASE_BINARY: &str = "/v1/link/agent-releases/{id}/binary";
    /// `POST` [`super::ChannelsRequest`] → [`super::ChannelsOffer`] (mutual TLS): the partner's
    /// escalation channels, their secrets sealed to the appliance.
    pub const CHANNELS: &str = "/v1/link/channels";
    /// `POST {}` → [`super::OperatorActions`] (mutual TLS): what partner users did about this
    /// appliance's incidents and the appliance has not reported sealed yet.
    pub const OPERATOR_ACTIONS: &str = "/v1/link/operator-actions";
    /// `POST` [`super::SealedActions`] → [`super::SealedAnswer`] (mutual TLS): which of them the
    /// appliance sealed, as which evidence bundle.
    pub const OPERATOR_ACTIONS_SEALED: &str = "/v1/link/operator-actions/sealed";
    /// `POST {}` → [`super::PacketsHeld`] (mutual TLS): the monthly packets Central Command
    /// keeps for this appliance, and what it still lacks of those it began.
    pub const PACKETS: &str = "/v1/link/packets";
    /// `POST` [`super::PacketOffer`] → [`super::PacketProgress`] (mutual TLS): a packet's sealed
    /// bundle, which names its files; the route, with `{period}` its month
    /// ([`super::packet_path`]).
    pub const PACKET: &str = "/v1/link/packets/{period}";
    /// `POST` one file of a packet (`application/octet-stream`) → [`super::PacketProgress`]
    /// (mutual TLS); the route ([`super::packet_file_path`]).
    pub const PACKET_FILE: &str = "/v1/link/packets/{period}/files/{name}";
}

/// Where the sealed bundle of the monthly packet of `period` (`YYYY-MM`) is offered.
pub fn packet_path(period: &str) -> String {
    path::PACKET.replace("{period}", period)
}

/// Where one file of the monthly packet of `period` is uploaded (`name` is a plain file name,
/// as the sealed bundle names it).
pub fn packet_file_path(period: &str, name: &str) -> String {
    path::PACKET_FILE
        .replace("{period}", period)
        .replace("{name}", name)
}

/// The largest packet file Central Command accepts in one request (as a kit); a packet is sent
/// file by file, so its whole size is not bounded by this.
pub const MAX_PACKET_FILE: usize = MAX_KIT;

/// The monthly packets Central Command keeps for the asking appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketsHeld {
    /// The months (`YYYY-MM`) whose packet is complete.
    pub periods: Vec<String>,
    /// Packets begun (their bundle taken) and the files they still lack.
    pub pending: Vec<PacketProgress>,
}

/// A packet's sealed `packet` bundle (docs/EVIDENCE-FORMAT.md), which names every file with its
/// SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketOffer {
    /// The bundle's line as the appliance signed it (without its newline).
    pub bundle: String,
}

/// Where a packet stands at Central Command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketProgress {
    pub period: String,
    /// The files still to send; empty when the packet is complete.
    pub missing: Vec<String>,
}

/// Where the binary of offered agent release `id` is fetched.
pub fn agent_release_binary_path(id: i64) -> String {
    path::AGENT_RELEASE_BINARY.replace("{id}", &id.to_string())
}

/// Where the kit answering request `id` is uploaded.
pub fn kit_upload_path(id: i64) -> String {
    path::KIT_UPLOAD.replace("{id}", &id.to_string())
}

/// The largest request body any link endpoint accepts (kit uploads excepted).
pub const MAX_BODY: usize = 256 * 1024;

/// The largest kit archive Central Command accepts.
pub const MAX_KIT: usize = 256 * 1024 * 1024;

/// The kits asked of an appliance and not yet delivered, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitRequests {
    /// At most 10 at a time.
    pub requests: Vec<KitRequest>,
}

/// One kit asked for: the appliance answers with a kit of its whole log as of now (a superset
/// of any period: a kit is verifiable only whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitRequest {
    /// The request's id (the upload goes to [`kit_upload_path`]).
    pub id: i64,
}

/// The image release a partner's rollout offers this appliance, if any: the vendor's signed
/// manifest verbatim (the appliance's updater verifies it against the vendor key it pins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestOffer {
    /// The release's version.
    pub version: Option<String>,
    /// The signed manifest JSON, as the vendor published it.
    pub manifest: Option<String>,
}

/// The endpoint-agent releases the partner's rollouts offer this appliance: per platform the
/// newest, at most one each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReleaseOffers {
    /// The offers, by platform.
    pub releases: Vec<AgentReleaseOffer>,
}

/// One offered endpoint-agent release: the vendor's signed document verbatim (the appliance
/// verifies it, and the binary, against its own `[agents] release_root`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReleaseOffer {
    /// The release's id (its binary is at [`agent_release_binary_path`]).
    pub id: i64,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The signed release document (manifest JSON), as the vendor published it.
    pub manifest: String,
    /// The binary's size in bytes.
    pub size: u64,
    /// The binary's SHA-256, lowercase hex.
    pub sha256: String,
}

/// The escalation-channel kinds a partner can set for its appliances.
pub const CHANNEL_KINDS: [&str; 5] = ["slack", "teams", "pagerduty", "webhook", "email"];

/// An e-mail channel's settings (its SMTP password is the channel's secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server's host name.
    pub server: String,
    /// Its port (587 for STARTTLS, 465 for TLS).
    pub port: u16,
    /// `starttls` or `tls`: partner channels never send mail in the clear.
    pub security: String,
    /// The sender address.
    pub from: String,
    /// The recipients (1–20).
    pub to: Vec<String>,
    /// The SMTP login.
    pub username: String,
}

impl EmailSettings {
    /// What is wrong with them, if anything.
    pub fn problem(&self) -> Option<String> {
        let host_ok = !self.server.is_empty()
            && self.server.len() <= 253
            && self
                .server
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let address_ok = |a: &str| {
            a.len() <= 254
                && a.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                })
                && !a
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"".contains(c))
        };
        if !host_ok {
            Some(format!(
                "email server `{}` is not a host name",
                self.server.escape_debug()
            ))
        } else if self.port == 0 {
            Some("email port must be 1-65535".to_owned())
        } else if !matches!(self.security.as_str(), "starttls" | "tls") {
            Some(format!(
                "email security `{}`: starttls or tls",
                self.security.escape_debug()
            ))
        } else if !address_ok(&self.from) {
            Some(format!(
                "email from `{}` is not an e-mail address",
                self.from.escape_debug()
            ))
        } else if self.to.is_empty() || self.to.len() > 20 {
            Some("email to: 1 to 20 recipients".to_owned())
        } else if let Some(bad) = self.to.iter().find(|a| !address_ok(a)) {
            Some(format!(
                "email recipient `{}` is not an e-mail address",
                bad.escape_debug()
            ))
        } else if self.username.is_empty()
            || self.username.len() > 254
            || self.username.chars().any(char::is_control)
        {
            Some("email username: the SMTP login (1-254 characters)".to_owned())
        } else {
            None
        }
    }
}

/// An appliance asks for its partner's channels, giving the X25519 key to seal secrets to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRequest {
    /// The appliance's sealing public key, standard base64 of 32 bytes.
    pub sealing_key: String,
}

/// The partner's escalation channels, as this appliance should use them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsOffer {
    /// Every channel (an empty list removes the partner's channels from the appliance).
    pub channels: Vec<ChannelOffer>,
}

/// One partner channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOffer {
    /// Its name (1–48 of `a-z 0-9 - _`).
    pub name: String,
    /// One of [`CHANNEL_KINDS`].
    pub kind: String,
    /// The least severity it receives: `low`, `medium`, `high` or `critical`.
    pub min_severity: String,
    /// For `webhook`: where to POST (not a secret; the signing secret is).
    pub url: Option<String>,
    /// For `email`: the server, addresses and login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
    /// The secret (Slack or Teams webhook URL, PagerDuty routing key, webhook signing secret,
    /// SMTP password),
    /// sealed to the appliance with [`seal::channel_info`].
    pub secret: seal::Sealed,
}

/// Whether `name` is a channel name: 1–48 of `a-z 0-9 - _` (the appliance keeps its secret in
/// the vault as `partner-channel-<name>`).
pub fn is_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Central Command's judgement of an uploaded kit (the same checks as `osiris evidence verify`
/// with the appliance's key pinned and, once it has one, the witness's cosignature required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitUploadResponse {
    /// The request.
    pub id: i64,
    /// `verified` (kept for download) or `refused` (not kept).
    pub status: String,
    /// What is wrong, when refused (at most 20).
    pub problems: Vec<String>,
}

/// What a partner user can do about an incident at Central Command.
pub const OPERATOR_ACTION_KINDS: [&str; 3] = ["acknowledge", "assign", "comment"];

/// The most operator actions one answer or one report carries.
pub const MAX_OPERATOR_ACTIONS: usize = 50;

/// The longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// The operator actions waiting for this appliance, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorActions {
    /// At most [`MAX_OPERATOR_ACTIONS`]; the rest come at the next step.
    pub actions: Vec<OperatorAction>,
}

/// One thing a partner user did about one of this appliance's incidents, for the appliance to
/// seal as an `operator_action` bundle (and, for `acknowledge`, to acknowledge the incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorAction {
    /// Central Command's id of the action (positive, increasing): the appliance seals each id
    /// once.
    pub id: i64,
    /// The appliance's incident id…
    pub incident: u64,
    /// …and its opening time (POSIX seconds): together they name the incident.
    pub opened_at: i64,
    /// One of [`OPERATOR_ACTION_KINDS`].
    pub kind: String,
    /// The partner user's e-mail address, as Central Command authenticated them.
    pub by: String,
    /// For `assign`: the e-mail address of the partner user now in charge; else `null`.
    pub assignee: Option<String>,
    /// For `comment`: the comment ([`comment_problem`] says what a comment may be); else `null`.
    pub text: Option<String>,
    /// When the user did it at Central Command (POSIX seconds).
    pub at: i64,
}

impl OperatorAction {
    /// What is wrong with it, if anything: both sides refuse an action that is not one.
    pub fn problem(&self) -> Option<String> {
        let id = self.id;
        if id < 1 {
            return Some(format!("operator action {id}: ids are positive"));
        }
        if i64::try_from(self.incident).is_err() || !is_plausible_time(self.opened_at) {
            return Some(format!(
                "operator action {id}: the incident's id or opening time is out of range"
            ));
        }
        if !is_plausible_time(self.at) {
            return Some(format!("operator action {id}: its time is out of range"));
        }
        if !is_email(&self.by) {
            return Some(format!(
                "operator action {id}: by `{}` is not an e-mail address",
                shown(&self.by)
            ));
        }
        match (self.kind.as_str(), &self.assignee, &self.text) {
            ("acknowledge", None, None) => None,
            ("assign", Some(assignee), None) if is_email(assignee) => None,
            ("assign", Some(assignee), None) => Some(format!(
                "operator action {id}: assignee `{}` is not an e-mail address",
                shown(assignee)
            )),
            ("comment", None, Some(text)) => {
                comment_problem(text).map(|problem| format!("operator action {id}: {problem}"))
            }
            ("acknowledge" | "assign" | "comment", _, _) => Some(format!(
                "operator action {id}: an acknowledge carries neither assignee nor text, an assign only an assignee, a comment only a text"
            )),
            (other, _, _) => Some(format!(
                "operator action {id}: unknown kind `{}` (acknowledge, assign or comment)",
                shown(other)
            )),
        }
    }
}

/// The appliance's report of the operator actions it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedActions {
    /// At most [`MAX_OPERATOR_ACTIONS`], each id once.
    pub sealed: Vec<SealedAction>,
}

/// One operator action the appliance sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedAction {
    /// The action's id ([`OperatorAction::id`]).
    pub id: i64,
    /// The sequence number of the `operator_action` bundle that records it in the appliance's
    /// evidence log.
    pub seq: u64,
    /// When it was sealed (POSIX seconds, the bundle's time).
    pub at: i64,
}

impl SealedAction {
    /// What is wrong with it, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.id < 1 || i64::try_from(self.seq).is_err() || !is_plausible_time(self.at) {
            Some(format!(
                "sealed action {}: its id, sequence number or time is out of range",
                self.id
            ))
        } else {
            None
        }
    }
}

/// Central Command's answer to a [`SealedActions`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedAnswer {
    /// How many were recorded now (an action reported before keeps its first report).
    pub recorded: u32,
}

/// A comment as it is kept: surrounding white space trimmed and `\r\n` line breaks made `\n`.
/// [`comment_problem`] then judges it.
pub fn normalize_comment(text: &str) -> String {
    text.replace("\r\n", "\n").trim().to_owned()
}

/// What is wrong with a (normalised) comment, if anything: 1 to [`MAX_COMMENT_CHARS`]
/// characters, no control characters but line breaks (`\n`), no white space around it.
pub fn comment_problem(text: &str) -> Option<String> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        Some("the comment is empty".to_owned())
    } else if chars > MAX_COMMENT_CHARS {
        Some(format!(
            "the comment has {chars} characters; at most {MAX_COMMENT_CHARS}"
        ))
    } else if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
        Some(format!(
            "the comment holds a control character (U+{:04X}); only line breaks may be in it",
            u32::from(c)
        ))
    } else if text.trim() != text {
        Some("the comment has white space around it".to_owned())
    } else {
        None
    }
}

/// Whether `text` looks like a user's e-mail address as Central Command keeps them: 3–254
/// characters, one `@` with something on both sides, no white space or control characters.
pub fn is_email(text: &str) -> bool {
    (3..=254).contains(&text.len())
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A plausible POSIX time: 2000-01-01 up to year 2200.
fn is_plausible_time(t: i64) -> bool {
    (946_684_800..7_258_118_400).contains(&t)
}

/// Text as shown in an error: at most 80 characters, control characters escaped.
fn shown(text: &str) -> String {
    text.chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// Crockford's base-32 digits, as the console shows them.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A claim code that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimCodeError {
    /// Wrong number of characters once dashes and spaces are removed.
    #[error("a claim code has 12 characters (XXXX-XXXX-XXXX); this one has {0}")]
    Length(usize),
    /// A character the console never shows.
    #[error("`{0}` is not a character of a claim code (digits and letters except U)")]
    Character(char),
}

/// The code in its normal form (`XXXXXXXXXXXX`): upper case, without dashes or spaces, with the
/// look-alikes the console never shows read as what they look like (`O` → `0`, `I`/`L` → `1`).
pub fn normalize_claim_code(text: &str) -> Result<String, ClaimCodeError> {
    let mut out = String::with_capacity(12);
    for c in text.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return Err(ClaimCodeError::Character(c));
        }
        out.push(c);
    }
    let len = out.chars().count();
    if len != 12 {
        return Err(ClaimCodeError::Length(len));
    }
    Ok(out)
}

/// The text both the claim proof and the enrollment signature cover.
fn enrollment_text(label: &str, appliance_key: &str, tls_public_key: &str) -> Vec<u8> {
    format!("{label}\n{appliance_key}\n{tls_public_key}\n").into_bytes()
}

/// HMAC-SHA256, keyed by the normalised claim code, over the appliance's evidence key and the
/// public key of its link certificate. Central Command recomputes it for every open enrollment
/// when a partner types the code, so the code never crosses the network.
pub fn claim_proof(
    code: &str,
    appliance_key: &str,
    tls_public_key: &str,
) -> Result<[u8; 32], ClaimCodeError> {
    let code = normalize_claim_code(code)?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(code.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&enrollment_text(
        "osiris-claim/v1",
        appliance_key,
        tls_public_key,
    ));
    Ok(mac.finalize().into_bytes().into())
}

/// Whether `proof` is the claim proof of `code` for these keys (constant-time comparison).
pub fn claim_proof_matches(
    code: &str,
    appliance_key: &str,
    tls_public_key: &str,
    proof: &[u8],
) -> bool {
    let Ok(code) = normalize_claim_code(code) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(code.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&enrollment_text(
        "osiris-claim/v1",
        appliance_key,
        tls_public_key,
    ));
    mac.verify_slice(proof).is_ok()
}

/// The bytes the appliance signs with its evidence key to ask for enrollment: proves it holds
/// the key whose log it will push.
pub fn enroll_message(appliance_key: &str, tls_public_key: &str) -> Vec<u8> {
    enrollment_text("osiris-enroll/v1", appliance_key, tls_public_key)
}

/// The bytes the appliance signs to collect its certificate.
pub fn pickup_message(enrollment_id: i64, time: u64) -> Vec<u8> {
    format!("osiris-pickup/v1\n{enrollment_id}\n{time}\n").into_bytes()
}

/// Checks an Ed25519 signature (standard base64) by the appliance key over `message`.
pub fn verify_appliance_signature(
    key: &evidence::VerifierKey,
    message: &[u8],
    signature_b64: &str,
) -> bool {
    BASE64
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .is_some_and(|signature| key.verify_strict(message, &signature))
}

/// Signs `message` with the appliance key, standard base64.
pub fn sign_with_appliance_key(key: &evidence::ApplianceKey, message: &[u8]) -> String {
    BASE64.encode(key.sign(message))
}

/// `POST /v1/link/enroll`: an appliance asks to be claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The evidence verifier key (`<name>+<keyid>+<base64>`).
    pub appliance_key: String,
    /// Standard base64 of the DER SubjectPublicKeyInfo of the key its link certificate will name.
    pub tls_public_key: String,
    /// Standard base64 of [`claim_proof`].
    pub claim_proof: String,
    /// Standard base64 Ed25519 signature by the appliance key over [`enroll_message`].
    pub signature: String,
}

/// The answer to an enrollment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// Quote it when collecting the certificate.
    pub enrollment_id: i64,
    /// RFC 3339 time after which an unclaimed request is forgotten (ask again).
    pub expires_at: String,
}

/// `POST /v1/link/certificate`: collect the certificate once a partner has claimed the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickupRequest {
    /// From [`EnrollResponse`].
    pub enrollment_id: i64,
    /// POSIX seconds now (Central Command refuses more than 5 minutes of skew).
    pub time: u64,
    /// Standard base64 signature by the appliance key over [`pickup_message`].
    pub signature: String,
}

/// The certificate, once issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickupResponse {
    /// `pending` (not claimed yet: ask again later) or `issued`.
    pub status: String,
    /// The appliance's id at Central Command.
    pub appliance_id: Option<i64>,
    /// PEM of the client certificate for mutual TLS.
    pub certificate_pem: Option<String>,
    /// The witness's verifier key (cosignature/v1 vkey) to pin for cosignatures.
    pub witness_key: Option<String>,
}

/// `POST /v1/link/push` (mutual TLS): one item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// 1, 2, 3, … per appliance; Central Command takes only the next one, so an appliance that
    /// was offline catches up in order and a replay changes nothing.
    pub seq: u64,
    /// What is pushed.
    pub item: PushItem,
}

/// What an appliance pushes. No PHI: docs/CENTRAL-PROTOCOL.md lists every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PushItem {
    /// A signed checkpoint and the consistency proof from `proof_from` (the witnessed head the
    /// appliance last heard of; 0 for its first).
    Checkpoint {
        /// The signed checkpoint note.
        note: String,
        /// The size the proof starts at.
        proof_from: u64,
        /// The proof's hashes, standard base64.
        proof: Vec<String>,
    },
    /// The appliance's devices and compliance now: a whole snapshot that replaces the last one.
    Devices {
        /// POSIX seconds when it was taken.
        at: i64,
        /// Every known device.
        devices: Vec<DeviceSummary>,
        /// The site's score per framework.
        compliance: Vec<FrameworkSummary>,
    },
    /// Incidents that changed since the last push, each whole with its phase changes.
    Incidents {
        /// At most [`MAX_BATCH`].
        incidents: Vec<IncidentSummary>,
    },
    /// Healing-log entries after the last one pushed, oldest first.
    Healing {
        /// At most [`MAX_BATCH`], ids increasing.
        entries: Vec<HealEntry>,
    },
    /// The appliance's software and image-update state, when it changed.
    Update {
        /// The state now.
        state: UpdateSummary,
    },
}

/// The most incidents or healing entries one push may carry.
pub const MAX_BATCH: usize = 500;

/// The incident phases, as pushed.
pub const INCIDENT_PHASES: [&str; 5] = ["open", "healing", "escalated", "resolved", "closed"];
/// The severities, as pushed.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// The healing tiers: L1 deterministic runbooks, L2 the guarded LLM, L3 a person.
pub const TIERS: [&str; 3] = ["L1", "L2", "L3"];
/// The outcomes of a healing entry.
pub const HEAL_RESULTS: [&str; 3] = ["fixed", "not_fixed", "escalated"];
/// The image-update states, as `osiris status` words them.
pub const UPDATE_STATES: [&str; 9] = [
    "unavailable",
    "idle",
    "downloaded",
    "verified",
    "staged",
    "pending_health",
    "good",
    "rolled_back",
    "unknown",
];

/// One incident in a [`PushItem::Incidents`] push: one problem of one device and check. The
/// appliance's incident id and its opening time together name it (ids restart if the appliance's
/// state is ever reset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSummary {
    /// The appliance's incident id.
    pub id: u64,
    /// The device (host or AD computer name).
    pub device: String,
    /// The failed check's catalogue id.
    pub check: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// `open`, `healing`, `escalated`, `resolved` or `closed`.
    pub phase: String,
    /// POSIX seconds.
    pub opened_at: i64,
    /// POSIX seconds of the last change.
    pub updated_at: i64,
    /// Failed scans seen while it was open.
    pub occurrences: u32,
    /// Resolving and failing again repeatedly.
    pub flapping: bool,
    /// A person acknowledged it.
    pub acknowledged: bool,
    /// Its phase changes, oldest first (at most 100, the newest kept). No reason text: that can
    /// carry what a host printed.
    pub transitions: Vec<PhaseChange>,
}

/// One phase change of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseChange {
    /// POSIX seconds.
    pub at: i64,
    /// The phase before.
    pub from: String,
    /// The phase after.
    pub to: String,
}

/// One healing-log entry: what a tier did about one failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealEntry {
    /// The appliance's entry id, increasing.
    pub id: i64,
    /// POSIX seconds.
    pub at: i64,
    /// The device.
    pub device: String,
    /// The check's catalogue id.
    pub check: String,
    /// `L1`, `L2` or `L3`.
    pub tier: String,
    /// The rule (L1) or runbook that acted, if any.
    pub rule: Option<String>,
    /// `fixed`, `not_fixed` or `escalated`.
    pub result: String,
    /// The evidence bundle that records it (its sequence number in the log).
    pub evidence_seq: Option<u64>,
}

/// The appliance's software and update state in a [`PushItem::Update`] push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSummary {
    /// The running osiris version.
    pub current: String,
    /// The image version offered or being installed, if any.
    pub available: Option<String>,
    /// One of [`UPDATE_STATES`].
    pub state: String,
    /// The updater's own words on it (at most 500 characters), e.g. why it rolled back.
    pub detail: Option<String>,
    /// The evidence log's OpenTimestamps anchoring, when the appliance reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ots: Option<OtsCounts>,
}

/// Checkpoints submitted to OpenTimestamps calendars: waiting for a Bitcoin block, and anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtsCounts {
    /// Submitted, no Bitcoin attestation yet.
    pub pending: u64,
    /// With a complete Bitcoin attestation.
    pub anchored: u64,
}

/// Whether a catalogue or rule id is acceptable: 1–64 ASCII letters, digits, `-`, `_`, `.`.
pub fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// One device in a [`PushItem::Devices`] snapshot: what the partner's dashboard shows, never an
/// observed value, an address or a host's own text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSummary {
    /// The device's name (host name or AD computer name).
    pub name: String,
    /// `windows_server`, `workstation` or `linux`.
    pub class: String,
    /// `compliant`, `drifted`, `error` or `unknown`.
    pub status: String,
    /// POSIX seconds of its last scan.
    pub last_scan_at: Option<i64>,
    /// Checks run at the last scan.
    pub checks_total: u32,
    /// Checks failed at the last scan.
    pub checks_failed: u32,
    /// The ids of the failed checks (catalogue ids such as `WIN-BITLOCKER-001`).
    pub failing: Vec<String>,
    /// Why a known device has no current result, one of [`UNCHECKED_REASONS`] (never a host's
    /// own words); absent when its last scan completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
}

/// Why a known device was not checked: never scanned yet, no answer on the network, the login
/// was refused, or the scan failed for another reason.
pub const UNCHECKED_REASONS: [&str; 4] = [
    "not_scanned_yet",
    "unreachable",
    "login_refused",
    "scan_failed",
];

/// One framework's score in a [`PushItem::Devices`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkSummary {
    /// `HIPAA`, `SOC 2`, …
    pub framework: String,
    /// Passing share in tenths of a percent, when anything maps to it.
    pub permille: Option<u32>,
}

/// The most devices one snapshot may carry.
pub const MAX_DEVICES: usize = 20_000;

/// Whether a device or check name is acceptable: 1–255 characters, no control characters.
pub fn is_plain_name(text: &str) -> bool {
    !text.is_empty() && text.chars().count() <= 255 && !text.chars().any(char::is_control)
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushResponse {
    /// The sequence number Central Command expects next.
    pub next_seq: u64,
    /// For a checkpoint: the witness's cosignature line.
    pub cosignature: Option<String>,
    /// The size of the newest witnessed checkpoint (the next proof starts there).
    pub witness_size: Option<u64>,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong and what to do, in words.
    pub error: String,
    /// For an out-of-order push: the sequence number expected.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_seq: Option<u64>,
    /// For a proof from the wrong size: the witnessed size to prove from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub witness_size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_codes_normalise_as_read_out_on_the_phone() {
        assert_eq!(
            normalize_claim_code("7K3M-9Q2X-ABCD").unwrap(),
            "7K3M9Q2XABCD"
        );
        assert_eq!(
            normalize_claim_code(" 7k3m 9q2x abcd ").unwrap(),
            "7K3M9Q2XABCD"
        );
        assert_eq!(
            normalize_claim_code("OIL0-0000-0000").unwrap(),
            "011000000000"
        );
        assert_eq!(
            normalize_claim_code("7K3M-9Q2X-ABC").unwrap_err(),
            ClaimCodeError::Length(11)
        );
        assert_eq!(
            normalize_claim_code("7K3M-9Q2X-ABCU").unwrap_err(),
            ClaimCodeError::Character('U')
        );
        assert_eq!(
            normalize_claim_code("7K3M-9Q2X-AB;D").unwrap_err(),
            ClaimCodeError::Character(';')
        );
    }

    #[test]
    fn the_claim_proof_binds_the_code_to_both_keys() {
        let proof = claim_proof("7K3M-9Q2X-ABCD", "key-a", "tls-a").unwrap();
        assert!(claim_proof_matches(
            "7k3m9q2xabcd",
            "key-a",
            "tls-a",
            &proof
        ));
        assert!(!claim_proof_matches(
            "7K3M-9Q2X-ABCE",
            "key-a",
            "tls-a",
            &proof
        ));
        assert!(!claim_proof_matches(
            "7K3M-9Q2X-ABCD",
            "key-b",
            "tls-a",
            &proof
        ));
        assert!(!claim_proof_matches(
            "7K3M-9Q2X-ABCD",
            "key-a",
            "tls-b",
            &proof
        ));
        assert!(!claim_proof_matches(
            "7K3M-9Q2X-ABCD",
            "key-a",
            "tls-a",
            &proof[..31]
        ));
    }

    #[test]
    fn enrollment_signatures_verify_only_for_the_signed_keys() {
        let key = evidence::ApplianceKey::from_seed(&[4; 32]);
        let message = enroll_message(&key.verifier().to_string(), "tls-a");
        let signature = sign_with_appliance_key(&key, &message);
        assert!(verify_appliance_signature(
            &key.verifier(),
            &message,
            &signature
        ));
        let other = enroll_message(&key.verifier().to_string(), "tls-b");
        assert!(!verify_appliance_signature(
            &key.verifier(),
            &other,
            &signature
        ));
        assert!(!verify_appliance_signature(
            &key.verifier(),
            &message,
            "not base64!"
        ));
    }

    #[test]
    fn push_items_are_tagged_and_unknown_fields_refused() {
        let push = PushRequest {
            seq: 3,
            item: PushItem::Checkpoint {
                note: "n".into(),
                proof_from: 2,
                proof: vec![],
            },
        };
        let json = serde_json::to_string(&push).unwrap();
        assert_eq!(
            json,
            r#"{"seq":3,"item":{"kind":"checkpoint","note":"n","proof_from":2,"proof":[]}}"#
        );
        assert!(
            serde_json::from_str::<PushRequest>(&json.replace("\"seq\"", "\"sequence\"")).is_err()
        );
        assert!(
            serde_json::from_str::<PushRequest>(r#"{"seq":1,"item":{"kind":"patient_list"}}"#)
                .is_err()
        );
    }

    fn action(kind: &str, assignee: Option<&str>, text: Option<&str>) -> OperatorAction {
        OperatorAction {
            id: 12,
            incident: 7,
            opened_at: 1_764_000_000,
            kind: kind.into(),
            by: "tech@acme.example".into(),
            assignee: assignee.map(str::to_owned),
            text: text.map(str::to_owned),
            at: 1_764_000_100,
        }
    }

    #[test]
    fn operator_actions_are_judged_by_their_kind() {
        assert_eq!(action("acknowledge", None, None).problem(), None);
        assert_eq!(
            action("assign", Some("admin@acme.example"), None).problem(),
            None
        );
        assert_eq!(
            action("comment", None, Some("<script>alert(1)</script>\nline two")).problem(),
            None,
            "markup is text: escaping is the page's job"
        );
        for (bad, want) in [
            (
                action("assign", Some("not an address"), None),
                "assignee `not an address` is not an e-mail address",
            ),
            (
                action("acknowledge", None, Some("why")),
                "an acknowledge carries neither assignee nor text",
            ),
            (
                action("comment", None, Some("beep\u{7}")),
                "control character (U+0007)",
            ),
            (action("delete", None, None), "unknown kind `delete`"),
            (
                OperatorAction {
                    by: "tech\n@acme.example".into(),
                    ..action("acknowledge", None, None)
                },
                "by `tech\\n@acme.example` is not an e-mail address",
            ),
            (
                OperatorAction {
                    opened_at: 12,
                    ..action("acknowledge", None, None)
                },
                "opening time is out of range",
            ),
            (
                OperatorAction {
                    id: 0,
                    ..action("acknowledge", None, None)
                },
                "ids are positive",
            ),
        ] {
            let problem = bad.problem().expect(want);
            assert!(problem.contains(want), "{problem}");
        }
        let sealed = SealedAction {
            id: 12,
            seq: 40,
            at: 1_764_000_200,
        };
        assert_eq!(sealed.problem(), None);
        assert!(
            SealedAction {
                seq: u64::MAX,
                ..sealed
            }
            .problem()
            .is_some()
        );
        assert!(SealedAction { at: 0, ..sealed }.problem().is_some());
    }

    #[test]
    fn comments_are_trimmed_line_breaks_kept_and_bounded() {
        assert_eq!(normalize_comment("  one\r\ntwo\n "), "one\ntwo");
        assert_eq!(comment_problem("one\ntwo"), None);
        assert_eq!(
            comment_problem(&normalize_comment(" \n\t ")).as_deref(),
            Some("the comment is empty")
        );
        assert_eq!(comment_problem(&"é".repeat(MAX_COMMENT_CHARS)), None);
        assert_eq!(
            comment_problem(&"x".repeat(MAX_COMMENT_CHARS + 1)).as_deref(),
            Some("the comment has 2001 characters; at most 2000")
        );
        assert!(
            comment_problem("a\rb")
                .unwrap()
                .contains("control character (U+000D)")
        );
        assert!(comment_problem(" padded").is_some());
    }
}
