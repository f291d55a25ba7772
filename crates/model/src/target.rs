//! Targets: the machines a site asks us to check, and the platform each runs.

use std::fmt;
use std::str::FromStr;

/// The operating-system family a runbook applies to and a target runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Platform {
    Linux,
    WindowsServer,
    WindowsWorkstation,
    Macos,
    /// A Microsoft 365 tenant (Entra ID, Intune, Defender): checked through Microsoft Graph by
    /// the `cloud` crate, never by a script on a host.
    Microsoft365,
    /// A Google Workspace account (Directory users, mobile devices, admin roles): checked
    /// through the Admin SDK Directory API by the `cloud` crate.
    GoogleWorkspace,
    /// An AWS account (IAM, S3, CloudTrail, EC2): checked through the AWS APIs by the `cloud`
    /// crate, never by a script on a host.
    Aws,
    /// An Okta org (users, enrolled factors, administrator roles, password and sign-on
    /// policies): checked through the Okta Management API by the `cloud` crate.
    Okta,
}

/// Whether a target is a server or an end-user workstation (reported separately in evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    Server,
    Workstation,
    /// A cloud tenant (the target of a cloud scan).
    Tenant,
}

/// One machine to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Stable display name (host name, or `localhost` for the machine osiris runs on).
    pub name: String,
    pub platform: Platform,
    pub device_type: DeviceType,
}

/// A platform name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown platform `{0}` (known: linux, windows-server, windows-workstation, macos, microsoft365, google-workspace, aws, okta)"
)]
pub struct UnknownPlatform(pub String);

impl Platform {
    pub const ALL: [Platform; 8] = [
        Platform::Linux,
        Platform::WindowsServer,
        Platform::WindowsWorkstation,
        Platform::Macos,
        Platform::Microsoft365,
        Platform::GoogleWorkspace,
        Platform::Aws,
        Platform::Okta,
    ];

    /// Windows platforms are reached over WinRM, the others locally or over SSH.
    pub fn is_windows(self) -> bool {
        matches!(self, Platform::WindowsServer | Platform::WindowsWorkstation)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::WindowsServer => "windows-server",
            Platform::WindowsWorkstation => "windows-workstation",
            Platform::Macos => "macos",
            Platform::Microsoft365 => "microsoft365",
            Platform::GoogleWorkspace => "google-workspace",
            Platform::Aws => "aws",
            Platform::Okta => "okta",
        }
    }

    /// A cloud tenant rather than a machine: its checks are typed collectors over a provider's
    /// API (`osiris cloud scan`), and no `[[target]]` may name it.
    pub fn is_cloud(self) -> bool {
        matches!(
            self,
            Platform::Microsoft365 | Platform::GoogleWorkspace | Platform::Aws | Platform::Okta
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Server => "server",
            DeviceType::Workstation => "workstation",
            DeviceType::Tenant => "tenant",
        }
    }
}
