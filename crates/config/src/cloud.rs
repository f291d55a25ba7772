//! `[[cloud]]`: the cloud tenants the appliance checks through their providers' APIs (Microsoft
//! 365, Google Workspace, AWS, Okta), each with its application's credential named by vault entry, never
//! held here.

use std::path::PathBuf;

use serde::Deserialize;

/// One cloud tenant, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTenantConfig {
    /// Display name, unique among targets and tenants; the scan's target name in evidence.
    pub name: String,
    /// Which provider and how to reach it.
    pub provider: CloudProvider,
    /// Seconds a whole tenant scan may take, throttling waits included.
    pub timeout_secs: u64,
    /// A PEM file of the only CA to trust for the provider's endpoints (a TLS-inspecting proxy,
    /// a private cloud); none: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// A provider and its settings; one variant per provider.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloudProvider {
    /// Microsoft 365 through Microsoft Graph with an Entra ID application (client credentials).
    Microsoft365(Microsoft365Config),
    /// Google Workspace through the Admin SDK Directory API with a service account and
    /// domain-wide delegation.
    GoogleWorkspace(GoogleWorkspaceConfig),
    /// An AWS account through IAM, S3, CloudTrail and EC2 with an IAM user's access key (SigV4).
    Aws(AwsConfig),
    /// An Okta org through the Management API with an API token or a service app's
    /// `private_key_jwt` client credentials.
    Okta(OktaConfig),
}

/// An Okta org and how the appliance signs in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaConfig {
    /// The org's URL, `https://{yourOktaDomain}` (an origin, no path).
    pub org_url: String,
    pub auth: OktaAuth,
    /// The vault entry holding the API token (`ssws`) or the service app's RSA private key as
    /// PEM (`private_key_jwt`).
    pub credential: String,
}

/// How the appliance signs in to an Okta org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OktaAuth {
    /// An API token (`Authorization: SSWS …`) of a read-only administrator.
    Ssws,
    /// A service app's client credentials: an RS256 client assertion signed with its key.
    PrivateKeyJwt {
        /// The service app's client ID (`0oa…`).
        client_id: String,
        /// The key's ID in the app's JWKS (the assertion's `kid`), when the app has several.
        key_id: Option<String>,
    },
}

/// An AWS account and the IAM user's access key that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The 12-digit account ID; the access key must belong to it.
    pub account_id: String,
    /// The regions to check, the first being the home region (S3's bucket list, CloudTrail).
    pub regions: Vec<String>,
    /// The vault entry holding the access key, as the AWS credentials file writes it:
    /// `aws_access_key_id = …`, `aws_secret_access_key = …`, optionally `aws_session_token = …`.
    pub credential: String,
    /// One `https://` base for every service instead of AWS's public endpoints (a private
    /// endpoint proxy); `None`: AWS's endpoints.
    pub endpoint: Option<String>,
}

/// A Microsoft 365 tenant's Entra ID application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Microsoft365Config {
    /// The directory (tenant) ID, a GUID, or its verified domain name.
    pub tenant_id: String,
    /// The application (client) ID, a GUID.
    pub client_id: String,
    /// The vault entry holding the application's client secret, or its certificate and key.
    pub credential: String,
    /// How the application proves itself.
    pub auth: Microsoft365Auth,
    /// The token endpoint, `https://…/{tenant}/oauth2/v2.0/token` with the tenant filled in.
    pub token_url: String,
    /// Microsoft Graph's base, `https://graph.microsoft.com/v1.0` or a national cloud's.
    pub graph_base: String,
}

/// A Google Workspace account's service account, acting for one of its administrators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleWorkspaceConfig {
    /// The account's customer ID (`C0…` from the Admin console), or `my_customer`: the
    /// account of `admin_subject`.
    pub customer_id: String,
    /// The administrator the service account acts as (domain-wide delegation's `sub`).
    pub admin_subject: String,
    /// The vault entry holding the service account's JSON key, as the Cloud console gives it.
    pub credential: String,
    /// Google's OAuth 2.0 token endpoint.
    pub token_url: String,
    /// The Directory API's base, `https://admin.googleapis.com/admin/directory/v1`.
    pub directory_base: String,
}

/// How a Microsoft 365 application signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Microsoft365Auth {
    /// The vault entry is the client secret.
    ClientSecret,
    /// The vault entry is PEM text with the RSA private key and the certificate registered on
    /// the application (a signed JWT assertion per token).
    Certificate,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCloud {
    /// Display name; unique.
    pub(crate) name: String,
    /// `microsoft365`, `google-workspace`, `aws` or `okta`.
    kind: String,
    /// Microsoft 365: the directory (tenant) ID or its domain.
    #[serde(default)]
    tenant_id: Option<String>,
    /// Microsoft 365: the application (client) ID.
    #[serde(default)]
    client_id: Option<String>,
    /// The vault entry with the client secret (`osiris credentials set NAME --kind password`).
    #[serde(default)]
    credential: Option<String>,
    /// Microsoft 365: `client_secret` (default) or `certificate` (the vault entry holds the
    /// application's RSA key and certificate as PEM).
    #[serde(default)]
    auth: Option<String>,
    /// Refused with a message: secrets live in the vault.
    #[serde(default)]
    client_secret: Option<toml::Value>,
    /// Microsoft 365: the authority, default `https://login.microsoftonline.com` (national clouds:
    /// `https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`).
    #[serde(default)]
    authority: Option<String>,
    /// Microsoft 365: Graph's base URL, default `https://graph.microsoft.com/v1.0`.
    #[serde(default)]
    graph_base: Option<String>,
    /// Google Workspace: the customer ID (`C0…`) or `my_customer`.
    #[serde(default)]
    customer_id: Option<String>,
    /// Google Workspace: the administrator's address the service account acts as.
    #[serde(default)]
    admin_subject: Option<String>,
    /// Refused with a message: the service account's key lives in the vault.
    #[serde(default)]
    private_key: Option<toml::Value>,
    /// Google Workspace: the token endpoint, default `https://oauth2.googleapis.com/token`.
    #[serde(default)]
    token_url: Option<String>,
    /// Google Workspace: the Directory API's base URL, default
    /// `https://admin.googleapis.com/admin/directory/v1`.
    #[serde(default)]
    directory_base: Option<String>,
    /// AWS: the 12-digit account ID.
    #[serde(default)]
    account_id: Option<String>,
    /// AWS: the regions to check (the first is the home region), such as `["us-east-1"]`.
    #[serde(default)]
    regions: Option<Vec<String>>,
    /// AWS: one https:// base for every service instead of AWS's public endpoints.
    #[serde(default)]
    endpoint: Option<String>,
    /// Refused with a message: secrets live in the vault.
    #[serde(default)]
    aws_secret_access_key: Option<toml::Value>,
    /// Okta: the org's URL, `https://your-org.okta.com`.
    #[serde(default)]
    org_url: Option<String>,
    /// Okta (`private_key_jwt`): the key's ID in the service app's JWKS.
    #[serde(default)]
    key_id: Option<String>,
    /// Refused with a message: the API token lives in the vault.
    #[serde(default)]
    api_token: Option<toml::Value>,
    /// Seconds a tenant scan may take (default 300).
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// PEM file of the only CA to trust (default: the system's roots).
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

const fn default_timeout() -> u64 {
    300
}

/// Microsoft's public authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph's public v1.0 endpoint.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.microsoft.com/v1.0";
/// Google's OAuth 2.0 token endpoint.
pub const DEFAULT_GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The Admin SDK Directory API's public base.
pub const DEFAULT_DIRECTORY_BASE: &str = "https://admin.googleapis.com/admin/directory/v1";

impl RawCloud {
    /// The typed tenant, or `None` with every problem pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<CloudTenantConfig> {
        let before = problems.len();
        let what = format!("cloud `{}`", self.name.escape_debug());
        if !model::is_valid_host(&self.name) {
            problems.push(format!(
                "{what}: the name is invalid: use letters, digits, `-` and `.` (it names the tenant in evidence like a host name)"
            ));
        }
        if self.client_secret.is_some() {
            problems.push(format!(
                "{what}: `client_secret` does not belong in the configuration; store it with `osiris credentials set NAME --kind password` and name it with `credential = \"NAME\"`"
            ));
        }
        if !(10..=3600).contains(&self.timeout_secs) {
            problems.push(format!(
                "{what}: timeout_secs = {} is out of range 10..=3600",
                self.timeout_secs
            ));
        }
        if let Some(file) = self.ca_file.as_ref().filter(|f| !f.is_absolute()) {
            problems.push(format!(
                "{what}: ca_file `{}` must be an absolute path",
                file.display()
            ));
        }
        let provider = match self.kind.as_str() {
            "microsoft365" => self.microsoft365(&what, problems),
            "google-workspace" => self.google_workspace(&what, problems),
            "aws" => self.aws(&what, problems),
            "okta" => self.okta(&what, problems),
            other => {
                problems.push(format!(
                    "{what}: unknown kind `{}` (known: microsoft365, google-workspace, aws, okta)",
                    other.escape_debug()
                ));
                None
            }
        };
        let provider = provider?;
        (problems.len() == before).then(|| CloudTenantConfig {
            name: self.name.clone(),
            provider,
            timeout_secs: self.timeout_secs,
            ca_file: self.ca_file.clone(),
        })
    }

    fn microsoft365(&self, what: &str, problems: &mut Vec<String>) -> Option<CloudProvider> {
        let before = problems.len();
        let tenant_id = self.tenant_id.as_deref().unwrap_or_default();
        let tenant_ok = is_guid(tenant_id)
            || (tenant_id.contains('.')
                && tenant_id.len() <= 253
                && model::is_valid_host(tenant_id));
        if !tenant_ok {
            problems.push(format!(
                "{what}: tenant_id `{}` must be the directory (tenant) ID, a GUID such as 00000000-0000-0000-0000-000000000000, or the tenant's domain such as contoso.onmicrosoft.com",
                tenant_id.escape_debug()
            ));
        }
        let client_id = self.client_id.as_deref().unwrap_or_default();
        if !is_guid(client_id) {
            problems.push(format!(
                "{what}: client_id `{}` must be the application (client) ID, a GUID",
                client_id.escape_debug()
            ));
        }
        let credential = self.credential.clone().unwrap_or_default();
        if credential.is_empty() {
            problems.push(format!(
                "{what}: `credential` must name the vault entry holding the application's client secret (`osiris credentials set NAME --kind password`)"
            ));
        }
        let auth = match self.auth.as_deref().unwrap_or("client_secret") {
            "client_secret" => Some(Microsoft365Auth::ClientSecret),
            "certificate" => Some(Microsoft365Auth::Certificate),
            other => {
                problems.push(format!(
                    "{what}: auth `{}` is unknown (known: client_secret, certificate)",
                    other.escape_debug()
                ));
                None
            }
        };
        let authority = https_base(
            what,
            "authority",
            self.authority.as_deref().unwrap_or(DEFAULT_AUTHORITY),
            problems,
        );
        let graph_base = https_base(
            what,
            "graph_base",
            self.graph_base.as_deref().unwrap_or(DEFAULT_GRAPH_BASE),
            problems,
        );
        for (key, set, provider) in [
            (
                "customer_id",
                self.customer_id.is_some(),
                "a Google Workspace",
            ),
            (
                "admin_subject",
                self.admin_subject.is_some(),
                "a Google Workspace",
            ),
            (
                "private_key",
                self.private_key.is_some(),
                "a Google Workspace",
            ),
            ("token_url", self.token_url.is_some(), "a Google Workspace"),
            (
                "directory_base",
                self.directory_base.is_some(),
                "a Google Workspace",
            ),
            ("account_id", self.account_id.is_some(), "an AWS"),
            ("regions", self.regions.is_some(), "an AWS"),
            ("endpoint", self.endpoint.is_some(), "an AWS"),
            (
                "aws_secret_access_key",
                self.aws_secret_access_key.is_some(),
                "an AWS",
            ),
        ] {
            if set {
                problems.push(format!(
                    "{what}: `{key}` is {provider} setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base"
                ));
            }
        }
        self.refuse_okta_keys(what, "a Microsoft 365 tenant", problems);
        if problems.len() != before {
            return None;
        }
        Some(CloudProvider::Microsoft365(Microsoft365Config {
            token_url: format!("{}/{tenant_id}/oauth2/v2.0/token", authority?),
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            credential,
            auth: auth?,
            graph_base: graph_base?,
        }))
    }
}

impl RawCloud {
    /// Pushes a problem for each Okta-only key set on a tenant of another kind.
    fn refuse_okta_keys(&self, what: &str, kind: &str, problems: &mut Vec<String>) {
        for (key, set) in [
            ("org_url", self.org_url.is_some()),
            ("key_id", self.key_id.is_some()),
            ("api_token", self.api_token.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "{what}: `{key}` belongs to kind = \"okta\"; it means nothing to {kind}"
                ));
            }
        }
    }

    fn okta(&self, what: &str, problems: &mut Vec<String>) -> Option<CloudProvider> {
        let before = problems.len();
        if self.api_token.is_some() {
            problems.push(format!(
                "{what}: `api_token` does not belong in the configuration; store the token with `osiris credentials set NAME --kind password` and name it with `credential = \"NAME\"`"
            ));
        }
        if self.private_key.is_some() {
            problems.push(format!(
                "{what}: `private_key` does not belong in the configuration; store the service app's PEM key with `osiris credentials set NAME --kind password` and name it with `credential = \"NAME\"`"
            ));
        }
        for (key, set, kind) in [
            ("tenant_id", self.tenant_id.is_some(), "microsoft365"),
            ("authority", self.authority.is_some(), "microsoft365"),
            ("graph_base", self.graph_base.is_some(), "microsoft365"),
            (
                "customer_id",
                self.customer_id.is_some(),
                "google-workspace",
            ),
            (
                "admin_subject",
                self.admin_subject.is_some(),
                "google-workspace",
            ),
            ("token_url", self.token_url.is_some(), "google-workspace"),
            (
                "directory_base",
                self.directory_base.is_some(),
                "google-workspace",
            ),
            ("account_id", self.account_id.is_some(), "aws"),
            ("regions", self.regions.is_some(), "aws"),
            ("endpoint", self.endpoint.is_some(), "aws"),
            (
                "aws_secret_access_key",
                self.aws_secret_access_key.is_some(),
                "aws",
            ),
        ] {
            if set {
                problems.push(format!(
                    "{what}: `{key}` belongs to kind = \"{kind}\"; an Okta org takes org_url, auth, client_id, key_id and credential"
                ));
            }
        }
        let org_url = self.org_url.as_deref().unwrap_or_default();
        let org_ok = org_url.strip_prefix("https://").is_some_and(|host| {
            let host = host.strip_suffix('/').unwrap_or(host);
            let (name, port) = host.split_once(':').unwrap_or((host, "443"));
            model::is_valid_host(name)
                && name.len() <= 253
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !org_ok {
            problems.push(format!(
                "{what}: org_url `{}` must be the org's https:// address without a path, such as https://clinic.okta.com",
                org_url.escape_debug()
            ));
        }
        let credential = self.credential.clone().unwrap_or_default();
        if credential.is_empty() {
            problems.push(format!(
                "{what}: `credential` must name the vault entry holding the API token or the service app's private key (`osiris credentials set NAME --kind password`)"
            ));
        }
        let client_id = self.client_id.clone().unwrap_or_default();
        let auth = match self.auth.as_deref() {
            Some("ssws") => {
                for (key, set) in [
                    ("client_id", self.client_id.is_some()),
                    ("key_id", self.key_id.is_some()),
                ] {
                    if set {
                        problems.push(format!(
                            "{what}: `{key}` is for auth = \"private_key_jwt\"; an API token (ssws) needs none"
                        ));
                    }
                }
                Some(OktaAuth::Ssws)
            }
            Some("private_key_jwt") => {
                if !(10..=64).contains(&client_id.len())
                    || !client_id.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    problems.push(format!(
                        "{what}: client_id `{}` must be the service app's client ID from the Admin Console (Applications > the app > General), such as 0oa1b2c3d4e5f6g7h8i9",
                        client_id.escape_debug()
                    ));
                }
                let key_id = self.key_id.clone();
                if let Some(kid) = key_id.as_deref().filter(|k| {
                    k.is_empty()
                        || k.len() > 128
                        || !k
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                }) {
                    problems.push(format!(
                        "{what}: key_id `{}` must be the key's ID as the app's public keys list it (letters, digits, `-`, `_`, `.`)",
                        kid.escape_debug()
                    ));
                }
                Some(OktaAuth::PrivateKeyJwt { client_id, key_id })
            }
            other => {
                problems.push(format!(
                    "{what}: auth `{}` must be \"private_key_jwt\" (a service app, recommended) or \"ssws\" (an API token)",
                    other.unwrap_or_default().escape_debug()
                ));
                None
            }
        };
        if problems.len() != before {
            return None;
        }
        Some(CloudProvider::Okta(OktaConfig {
            org_url: org_url.trim_end_matches('/').to_owned(),
            auth: auth?,
            credential,
        }))
    }

    fn google_workspace(&self, what: &str, problems: &mut Vec<String>) -> Option<CloudProvider> {
        let before = problems.len();
        let microsoft_keys = [
            ("tenant_id", self.tenant_id.is_some()),
            ("client_id", self.client_id.is_some()),
            ("auth", self.auth.is_some()),
            ("authority", self.authority.is_some()),
            ("graph_base", self.graph_base.is_some()),
        ];
        for (key, _) in microsoft_keys.iter().filter(|(_, set)| *set) {
            problems.push(format!(
                "{what}: `{key}` belongs to kind = \"microsoft365\"; a Google Workspace account is named by customer_id and admin_subject"
            ));
        }
        let aws_keys = [
            ("account_id", self.account_id.is_some()),
            ("regions", self.regions.is_some()),
            ("endpoint", self.endpoint.is_some()),
            (
                "aws_secret_access_key",
                self.aws_secret_access_key.is_some(),
            ),
        ];
        for (key, _) in aws_keys.iter().filter(|(_, set)| *set) {
            problems.push(format!(
                "{what}: `{key}` belongs to kind = \"aws\"; a Google Workspace account is named by customer_id and admin_subject"
            ));
        }
        if self.private_key.is_some() {
            problems.push(format!(
                "{what}: `private_key` does not belong in the configuration; store the service account's JSON key with `osiris credentials set NAME --kind password` and name it with `credential = \"NAME\"`"
            ));
        }
        let customer_id = self.customer_id.as_deref().unwrap_or_default();
        if !is_customer_id(customer_id) {
            problems.push(format!(
                "{what}: customer_id `{}` must be the account's customer ID from the Admin console (Account > Account settings), such as C01abc2de, or `my_customer`",
                customer_id.escape_debug()
            ));
        }
        let admin_subject = self.admin_subject.as_deref().unwrap_or_default();
        if !is_mail_address(admin_subject) {
            problems.push(format!(
                "{what}: admin_subject `{}` must be the address of an administrator the service account acts for, such as admin@clinic.example",
                admin_subject.escape_debug()
            ));
        }
        let credential = self.credential.clone().unwrap_or_default();
        if credential.is_empty() {
            problems.push(format!(
                "{what}: `credential` must name the vault entry holding the service account's JSON key (`osiris credentials set NAME --kind password`)"
            ));
        }
        let token_url = https_base(
            what,
            "token_url",
            self.token_url
                .as_deref()
                .unwrap_or(DEFAULT_GOOGLE_TOKEN_URL),
            problems,
        );
        let directory_base = https_base(
            what,
            "directory_base",
            self.directory_base
                .as_deref()
                .unwrap_or(DEFAULT_DIRECTORY_BASE),
            problems,
        );
        self.refuse_okta_keys(what, "a Google Workspace account", problems);
        if problems.len() != before {
            return None;
        }
        Some(CloudProvider::GoogleWorkspace(GoogleWorkspaceConfig {
            customer_id: customer_id.to_owned(),
            admin_subject: admin_subject.to_owned(),
            credential,
            token_url: token_url?,
            directory_base: directory_base?,
        }))
    }

    fn aws(&self, what: &str, problems: &mut Vec<String>) -> Option<CloudProvider> {
        let before = problems.len();
        if self.aws_secret_access_key.is_some() {
            problems.push(format!(
                "{what}: `aws_secret_access_key` does not belong in the configuration; store the access key with `osiris credentials set NAME --kind password` (the text `aws_access_key_id = …` and `aws_secret_access_key = …` on two lines) and name it with `credential = \"NAME\"`"
            ));
        }
        let account_id = self.account_id.as_deref().unwrap_or_default();
        if !(account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit())) {
            problems.push(format!(
                "{what}: account_id `{}` must be the 12-digit AWS account ID, such as \"123456789012\" (a quoted string: leading zeros count)",
                account_id.escape_debug()
            ));
        }
        let regions = self.regions.clone().unwrap_or_default();
        if regions.is_empty() {
            problems.push(format!(
                "{what}: `regions` must list the regions to check, the home region first, such as [\"us-east-1\"]"
            ));
        }
        for region in &regions {
            if !model::is_aws_region(region) {
                problems.push(format!(
                    "{what}: region `{}` is not an AWS region name such as us-east-1 or eu-west-2",
                    region.escape_debug()
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = regions.iter().find(|r| !seen.insert(r.as_str())) {
            problems.push(format!(
                "{what}: region `{}` is listed twice",
                twice.escape_debug()
            ));
        }
        let credential = self.credential.clone().unwrap_or_default();
        if credential.is_empty() {
            problems.push(format!(
                "{what}: `credential` must name the vault entry holding the access key (`osiris credentials set NAME --kind password`)"
            ));
        }
        for (key, set) in [
            ("tenant_id", self.tenant_id.is_some()),
            ("client_id", self.client_id.is_some()),
            ("auth", self.auth.is_some()),
            ("authority", self.authority.is_some()),
            ("graph_base", self.graph_base.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "{what}: `{key}` is a Microsoft 365 setting; an AWS account takes account_id, regions, credential and endpoint"
                ));
            }
        }
        for (key, set) in [
            ("customer_id", self.customer_id.is_some()),
            ("admin_subject", self.admin_subject.is_some()),
            ("private_key", self.private_key.is_some()),
            ("token_url", self.token_url.is_some()),
            ("directory_base", self.directory_base.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "{what}: `{key}` is a Google Workspace setting; an AWS account takes account_id, regions, credential and endpoint"
                ));
            }
        }
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|text| https_base(what, "endpoint", text, problems));
        self.refuse_okta_keys(what, "an AWS account", problems);
        if problems.len() != before {
            return None;
        }
        Some(CloudProvider::Aws(AwsConfig {
            account_id: account_id.to_owned(),
            regions,
            credential,
            endpoint: endpoint.flatten(),
        }))
    }
}

/// `my_customer`, or a customer ID as the Admin console shows it (`C` and letters and digits).
fn is_customer_id(text: &str) -> bool {
    text == "my_customer"
        || (text.starts_with('C')
            && (6..=20).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A plain mail address: `local@domain`, the local part of letters, digits and `._%+-`, the
/// domain a host name with a dot.
fn is_mail_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && domain.contains('.')
        && domain.len() <= 253
        && model::is_valid_host(domain)
}

/// A GUID in its 8-4-4-4-12 hexadecimal form.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// An `https://host[:port][/path]` base without user info, query or fragment, with no trailing `/`.
fn https_base(what: &str, key: &str, text: &str, problems: &mut Vec<String>) -> Option<String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://");
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    let ok = host.is_some_and(|h| !h.is_empty())
        && !trimmed.contains(['@', '?', '#'])
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Some(trimmed.to_owned())
    } else {
        problems.push(format!(
            "{what}: {key} `{}` must be an https:// URL without user, query or fragment",
            text.escape_debug()
        ));
        None
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    #[track_caller]
    fn check(text: &str, expect: Expect) {
        let actual = match crate::parse("site.toml", text) {
            Ok(config) => format!("{:#?}", config.cloud),
            Err(err) => err.to_string(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn a_microsoft365_tenant_with_defaults() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-m365"
kind = "microsoft365"
tenant_id = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b"
client_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
credential = "m365-app"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-m365",
                        provider: Microsoft365(
                            Microsoft365Config {
                                tenant_id: "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b",
                                client_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                                credential: "m365-app",
                                auth: ClientSecret,
                                token_url: "https://login.microsoftonline.com/8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b/oauth2/v2.0/token",
                                graph_base: "https://graph.microsoft.com/v1.0",
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: None,
                    },
                ]"#]],
        );
    }

    #[test]
    fn a_national_cloud_by_domain() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "gov"
kind = "microsoft365"
tenant_id = "clinic.onmicrosoft.us"
client_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
credential = "m365-gov"
authority = "https://login.microsoftonline.us/"
graph_base = "https://graph.microsoft.us/v1.0"
auth = "certificate"
ca_file = "/etc/osiris/proxy-ca.pem"
timeout_secs = 60
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "gov",
                        provider: Microsoft365(
                            Microsoft365Config {
                                tenant_id: "clinic.onmicrosoft.us",
                                client_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                                credential: "m365-gov",
                                auth: Certificate,
                                token_url: "https://login.microsoftonline.us/clinic.onmicrosoft.us/oauth2/v2.0/token",
                                graph_base: "https://graph.microsoft.us/v1.0",
                            },
                        ),
                        timeout_secs: 60,
                        ca_file: Some(
                            "/etc/osiris/proxy-ca.pem",
                        ),
                    },
                ]"#]],
        );
    }

    #[test]
    fn every_problem_is_named() {
        check(
            r#"site = "clinic"
[[target]]
name = "m365"
platform = "microsoft365"
transport = "local"
[[cloud]]
name = "m365"
kind = "microsoft365"
tenant_id = "../../evil"
client_id = "not-a-guid"
client_secret = "hunter2"
auth = "password"
authority = "http://login.example/"
graph_base = "https://user@graph.example/v1.0"
ca_file = "relative.pem"
timeout_secs = 5
[[cloud]]
name = "mystery"
kind = "onelogin"
"#,
            expect![[r#"
                site.toml: target `m365`: microsoft365 is a cloud tenant, not a machine: configure it as a `[[cloud]]` table
                site.toml: cloud `m365`: `client_secret` does not belong in the configuration; store it with `osiris credentials set NAME --kind password` and name it with `credential = "NAME"`
                site.toml: cloud `m365`: timeout_secs = 5 is out of range 10..=3600
                site.toml: cloud `m365`: ca_file `relative.pem` must be an absolute path
                site.toml: cloud `m365`: tenant_id `../../evil` must be the directory (tenant) ID, a GUID such as 00000000-0000-0000-0000-000000000000, or the tenant's domain such as contoso.onmicrosoft.com
                site.toml: cloud `m365`: client_id `not-a-guid` must be the application (client) ID, a GUID
                site.toml: cloud `m365`: `credential` must name the vault entry holding the application's client secret (`osiris credentials set NAME --kind password`)
                site.toml: cloud `m365`: auth `password` is unknown (known: client_secret, certificate)
                site.toml: cloud `m365`: authority `http://login.example/` must be an https:// URL without user, query or fragment
                site.toml: cloud `m365`: graph_base `https://user@graph.example/v1.0` must be an https:// URL without user, query or fragment
                site.toml: cloud `mystery`: unknown kind `onelogin` (known: microsoft365, google-workspace, aws, okta)"#]],
        );
    }

    #[test]
    fn a_google_workspace_account_with_defaults() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-google"
kind = "google-workspace"
customer_id = "C01abc2de"
admin_subject = "it.admin@smithfamilypractice.example"
credential = "google-sa"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-google",
                        provider: GoogleWorkspace(
                            GoogleWorkspaceConfig {
                                customer_id: "C01abc2de",
                                admin_subject: "it.admin@smithfamilypractice.example",
                                credential: "google-sa",
                                token_url: "https://oauth2.googleapis.com/token",
                                directory_base: "https://admin.googleapis.com/admin/directory/v1",
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: None,
                    },
                ]"#]],
        );
    }

    #[test]
    fn a_google_workspace_account_through_other_endpoints() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-google"
kind = "google-workspace"
customer_id = "my_customer"
admin_subject = "admin@clinic.example"
credential = "google-sa"
token_url = "https://oauth2.proxy.example/token"
directory_base = "https://admin.proxy.example:8443/admin/directory/v1/"
ca_file = "/etc/osiris/proxy-ca.pem"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-google",
                        provider: GoogleWorkspace(
                            GoogleWorkspaceConfig {
                                customer_id: "my_customer",
                                admin_subject: "admin@clinic.example",
                                credential: "google-sa",
                                token_url: "https://oauth2.proxy.example/token",
                                directory_base: "https://admin.proxy.example:8443/admin/directory/v1",
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: Some(
                            "/etc/osiris/proxy-ca.pem",
                        ),
                    },
                ]"#]],
        );
    }

    #[test]
    fn google_workspace_values_that_would_change_a_url_are_refused() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-google"
kind = "google-workspace"
customer_id = "C01abc/../../users?customer=other"
admin_subject = "admin@clinic.example&sub=root@other.example"
private_key = "-----BEGIN PRIVATE KEY-----"
tenant_id = "clinic.onmicrosoft.com"
regions = ["us-east-1"]
token_url = "https://oauth2.googleapis.com@evil.example/token"
directory_base = "http://admin.googleapis.com/admin/directory/v1"
[[cloud]]
name = "second"
kind = "google-workspace"
customer_id = "my_customer"
admin_subject = "admin"
"#,
            expect![[r#"
                site.toml: cloud `clinic-google`: `tenant_id` belongs to kind = "microsoft365"; a Google Workspace account is named by customer_id and admin_subject
                site.toml: cloud `clinic-google`: `regions` belongs to kind = "aws"; a Google Workspace account is named by customer_id and admin_subject
                site.toml: cloud `clinic-google`: `private_key` does not belong in the configuration; store the service account's JSON key with `osiris credentials set NAME --kind password` and name it with `credential = "NAME"`
                site.toml: cloud `clinic-google`: customer_id `C01abc/../../users?customer=other` must be the account's customer ID from the Admin console (Account > Account settings), such as C01abc2de, or `my_customer`
                site.toml: cloud `clinic-google`: admin_subject `admin@clinic.example&sub=root@other.example` must be the address of an administrator the service account acts for, such as admin@clinic.example
                site.toml: cloud `clinic-google`: `credential` must name the vault entry holding the service account's JSON key (`osiris credentials set NAME --kind password`)
                site.toml: cloud `clinic-google`: token_url `https://oauth2.googleapis.com@evil.example/token` must be an https:// URL without user, query or fragment
                site.toml: cloud `clinic-google`: directory_base `http://admin.googleapis.com/admin/directory/v1` must be an https:// URL without user, query or fragment
                site.toml: cloud `second`: admin_subject `admin` must be the address of an administrator the service account acts for, such as admin@clinic.example
                site.toml: cloud `second`: `credential` must name the vault entry holding the service account's JSON key (`osiris credentials set NAME --kind password`)"#]],
        );
    }

    #[test]
    fn an_aws_account() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-aws"
kind = "aws"
account_id = "012345678901"
regions = ["us-east-1", "us-west-2"]
credential = "aws-audit"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-aws",
                        provider: Aws(
                            AwsConfig {
                                account_id: "012345678901",
                                regions: [
                                    "us-east-1",
                                    "us-west-2",
                                ],
                                credential: "aws-audit",
                                endpoint: None,
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: None,
                    },
                ]"#]],
        );
    }

    #[test]
    fn an_aws_account_behind_an_endpoint() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-aws"
kind = "aws"
account_id = "012345678901"
regions = ["us-gov-west-1"]
credential = "aws-audit"
endpoint = "https://aws-proxy.clinic.example:8443/"
ca_file = "/etc/osiris/proxy-ca.pem"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-aws",
                        provider: Aws(
                            AwsConfig {
                                account_id: "012345678901",
                                regions: [
                                    "us-gov-west-1",
                                ],
                                credential: "aws-audit",
                                endpoint: Some(
                                    "https://aws-proxy.clinic.example:8443",
                                ),
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: Some(
                            "/etc/osiris/proxy-ca.pem",
                        ),
                    },
                ]"#]],
        );
    }

    #[test]
    fn every_aws_problem_is_named() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "aws"
kind = "aws"
account_id = "1234-5678-9012"
regions = ["us-east-1", "us-east-1", "eu-west-1.evil.example/", "us-east-1?x=${HOME}", ""]
aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
tenant_id = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b"
customer_id = "my_customer"
endpoint = "http://127.0.0.1:9000"
[[cloud]]
name = "aws3"
kind = "aws"
regions = []
endpoint = "https://evil.example/?a=b"
"#,
            expect![[r#"
                site.toml: cloud `aws`: `aws_secret_access_key` does not belong in the configuration; store the access key with `osiris credentials set NAME --kind password` (the text `aws_access_key_id = …` and `aws_secret_access_key = …` on two lines) and name it with `credential = "NAME"`
                site.toml: cloud `aws`: account_id `1234-5678-9012` must be the 12-digit AWS account ID, such as "123456789012" (a quoted string: leading zeros count)
                site.toml: cloud `aws`: region `eu-west-1.evil.example/` is not an AWS region name such as us-east-1 or eu-west-2
                site.toml: cloud `aws`: region `us-east-1?x=${HOME}` is not an AWS region name such as us-east-1 or eu-west-2
                site.toml: cloud `aws`: region `` is not an AWS region name such as us-east-1 or eu-west-2
                site.toml: cloud `aws`: region `us-east-1` is listed twice
                site.toml: cloud `aws`: `credential` must name the vault entry holding the access key (`osiris credentials set NAME --kind password`)
                site.toml: cloud `aws`: `tenant_id` is a Microsoft 365 setting; an AWS account takes account_id, regions, credential and endpoint
                site.toml: cloud `aws`: `customer_id` is a Google Workspace setting; an AWS account takes account_id, regions, credential and endpoint
                site.toml: cloud `aws`: endpoint `http://127.0.0.1:9000` must be an https:// URL without user, query or fragment
                site.toml: cloud `aws3`: account_id `` must be the 12-digit AWS account ID, such as "123456789012" (a quoted string: leading zeros count)
                site.toml: cloud `aws3`: `regions` must list the regions to check, the home region first, such as ["us-east-1"]
                site.toml: cloud `aws3`: `credential` must name the vault entry holding the access key (`osiris credentials set NAME --kind password`)
                site.toml: cloud `aws3`: endpoint `https://evil.example/?a=b` must be an https:// URL without user, query or fragment"#]],
        );
        check(
            r#"site = "clinic"
[[cloud]]
name = "m365"
kind = "microsoft365"
tenant_id = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b"
client_id = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
credential = "graph"
customer_id = "my_customer"
private_key = "-----BEGIN PRIVATE KEY-----"
account_id = "123456789012"
regions = ["us-east-1"]
aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
"#,
            expect![[r#"
                site.toml: cloud `m365`: `customer_id` is a Google Workspace setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base
                site.toml: cloud `m365`: `private_key` is a Google Workspace setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base
                site.toml: cloud `m365`: `account_id` is an AWS setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base
                site.toml: cloud `m365`: `regions` is an AWS setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base
                site.toml: cloud `m365`: `aws_secret_access_key` is an AWS setting; a Microsoft 365 tenant takes tenant_id, client_id, auth, credential, authority and graph_base"#]],
        );
        check(
            r#"site = "clinic"
[[cloud]]
name = "aws2"
kind = "aws"
account_id = 12345678901
"#,
            expect!["site.toml:5:14: invalid type: integer `12345678901`, expected a string"],
        );
    }

    #[test]
    fn an_okta_org_with_a_service_app_and_one_with_a_token() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-okta"
kind = "okta"
org_url = "https://smithfamily.okta.com/"
auth = "private_key_jwt"
client_id = "0oa1b2c3d4e5f6g7h8i9"
key_id = "osiris-1"
credential = "okta-app-key"
[[cloud]]
name = "clinic-okta-token"
kind = "okta"
org_url = "https://smithfamily.oktapreview.com"
auth = "ssws"
credential = "okta-token"
"#,
            expect![[r#"
                [
                    CloudTenantConfig {
                        name: "clinic-okta",
                        provider: Okta(
                            OktaConfig {
                                org_url: "https://smithfamily.okta.com",
                                auth: PrivateKeyJwt {
                                    client_id: "0oa1b2c3d4e5f6g7h8i9",
                                    key_id: Some(
                                        "osiris-1",
                                    ),
                                },
                                credential: "okta-app-key",
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: None,
                    },
                    CloudTenantConfig {
                        name: "clinic-okta-token",
                        provider: Okta(
                            OktaConfig {
                                org_url: "https://smithfamily.oktapreview.com",
                                auth: Ssws,
                                credential: "okta-token",
                            },
                        ),
                        timeout_secs: 300,
                        ca_file: None,
                    },
                ]"#]],
        );
    }

    #[test]
    fn every_okta_problem_is_named() {
        check(
            r#"site = "clinic"
[[cloud]]
name = "clinic-okta"
kind = "okta"
org_url = "https://evil.example/api/v1?x=1"
auth = "private_key_jwt"
client_id = "0oa/../../x"
key_id = "k\"1"
private_key = "-----BEGIN PRIVATE KEY-----"
api_token = "00abc"
tenant_id = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b"
regions = ["us-east-1"]
[[cloud]]
name = "clinic-okta-token"
kind = "okta"
org_url = "http://smithfamily.okta.com"
auth = "password"
[[cloud]]
name = "clinic-okta-ssws"
kind = "okta"
org_url = "https://smithfamily.okta.com"
auth = "ssws"
client_id = "0oa1b2c3d4e5f6g7h8i9"
credential = "okta-token"
[[cloud]]
name = "clinic-aws"
kind = "aws"
account_id = "123456789012"
regions = ["us-east-1"]
credential = "aws-key"
org_url = "https://smithfamily.okta.com"
"#,
            expect![[r#"
                site.toml: cloud `clinic-okta`: `api_token` does not belong in the configuration; store the token with `osiris credentials set NAME --kind password` and name it with `credential = "NAME"`
                site.toml: cloud `clinic-okta`: `private_key` does not belong in the configuration; store the service app's PEM key with `osiris credentials set NAME --kind password` and name it with `credential = "NAME"`
                site.toml: cloud `clinic-okta`: `tenant_id` belongs to kind = "microsoft365"; an Okta org takes org_url, auth, client_id, key_id and credential
                site.toml: cloud `clinic-okta`: `regions` belongs to kind = "aws"; an Okta org takes org_url, auth, client_id, key_id and credential
                site.toml: cloud `clinic-okta`: org_url `https://evil.example/api/v1?x=1` must be the org's https:// address without a path, such as https://clinic.okta.com
                site.toml: cloud `clinic-okta`: `credential` must name the vault entry holding the API token or the service app's private key (`osiris credentials set NAME --kind password`)
                site.toml: cloud `clinic-okta`: client_id `0oa/../../x` must be the service app's client ID from the Admin Console (Applications > the app > General), such as 0oa1b2c3d4e5f6g7h8i9
                site.toml: cloud `clinic-okta`: key_id `k\"1` must be the key's ID as the app's public keys list it (letters, digits, `-`, `_`, `.`)
                site.toml: cloud `clinic-okta-token`: org_url `http://smithfamily.okta.com` must be the org's https:// address without a path, such as https://clinic.okta.com
                site.toml: cloud `clinic-okta-token`: `credential` must name the vault entry holding the API token or the service app's private key (`osiris credentials set NAME --kind password`)
                site.toml: cloud `clinic-okta-token`: auth `password` must be "private_key_jwt" (a service app, recommended) or "ssws" (an API token)
                site.toml: cloud `clinic-okta-ssws`: `client_id` is for auth = "private_key_jwt"; an API token (ssws) needs none
                site.toml: cloud `clinic-aws`: `org_url` belongs to kind = "okta"; it means nothing to an AWS account"#]],
        );
    }
}
