//! Active Directory discovery: finds every computer object in a domain over LDAP (StartTLS or
//! LDAPS, CA verified, paged) and classifies it; the pure parts live in [`inventory`].

mod directory;
pub mod dns;
pub mod inventory;
pub mod laps;

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::directory::{DiscoveryError, discover, read_laps, search_computer_names};
pub use crate::inventory::{
    Computer, ComputerClass, Inventory, InventoryChange, escape_filter_value,
};

/// How the TLS session with the domain controller is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// TLS from the first byte on port 636.
    Ldaps,
    /// Plain LDAP on port 389, upgraded with the StartTLS extended operation before the bind.
    StartTls,
}

/// The bind password; never printed by `Debug`, wiped from memory when dropped.
#[derive(Clone)]
pub struct BindPassword(zeroize::Zeroizing<String>);

impl BindPassword {
    /// Wraps a password (read it from a credential file, never from config).
    pub fn new(password: impl Into<zeroize::Zeroizing<String>>) -> BindPassword {
        BindPassword(password.into())
    }

    /// The password itself, for the bind.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BindPassword {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BindPassword(<redacted>)")
    }
}

/// Where and how to search the directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// DNS domain, e.g. `lab.example`.
    pub domain: String,
    /// Domain controller host name or IP address; `None` locates one through the SRV record
    /// `_ldap._tcp.dc._msdcs.<domain>` asked of `resolver`.
    pub dc: Option<String>,
    /// DNS resolver for the SRV lookup (required when `dc` is `None`).
    pub resolver: Option<SocketAddr>,
    /// Search base; `None` derives it from `domain` (`lab.example` → `DC=lab,DC=example`).
    pub base_dn: Option<String>,
    /// Bind user as UPN (`svc@lab.example`) or DN.
    pub bind_user: String,
    /// Bind password.
    pub bind_password: BindPassword,
    /// StartTLS or LDAPS.
    pub tls: TlsMode,
    /// PEM bundle of the CA(s) that issued the DC's certificate (required: `None` is a config error,
    /// because AD certificates come from a private CA and are never checked against public roots).
    pub ca_pem: Option<Vec<u8>>,
    /// Accounts not logged on for this many days are stale (90 is the usual choice).
    pub stale_after_days: u32,
    /// Entries per result page (500 is the usual choice; AD caps pages at 1,000).
    pub page_size: u32,
    /// Bound on connecting and on each LDAP operation.
    pub timeout: Duration,
}

impl DirectoryConfig {
    /// The search base: `base_dn`, or one `DC=` component per label of `domain`.
    pub fn effective_base_dn(&self) -> String {
        match &self.base_dn {
            Some(base_dn) => base_dn.clone(),
            None => self
                .domain
                .trim_end_matches('.')
                .split('.')
                .map(|label| format!("DC={label}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}
