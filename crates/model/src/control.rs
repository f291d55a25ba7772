//! Compliance frameworks and the controls a runbook provides evidence for.

use std::fmt;
use std::str::FromStr;

/// A compliance framework the catalogue maps checks to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Framework {
    Hipaa,
    Soc2,
    PciDss,
    NistCsf,
    Cis,
}

/// One control of one framework that a runbook provides evidence for, e.g. HIPAA `164.312(a)(1)`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Control {
    pub framework: Framework,
    pub id: String,
    /// Set when the check is weaker than the control's text: what the check leaves to a person.
    /// A control covered only partially by checks needs an attestation as well to be met.
    pub partial: Option<String>,
}

/// A framework key that is not one we map to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framework `{0}` (known: hipaa, soc2, pci_dss, nist_csf, cis)")]
pub struct UnknownFramework(pub String);

impl Framework {
    /// Report order: HIPAA first, it is what our users are audited against.
    pub const ALL: [Framework; 5] = [
        Framework::Hipaa,
        Framework::Soc2,
        Framework::PciDss,
        Framework::NistCsf,
        Framework::Cis,
    ];

    /// The key used in catalogue files and in evidence (`hipaa`, `pci_dss`, …).
    pub fn key(self) -> &'static str {
        match self {
            Framework::Hipaa => "hipaa",
            Framework::Soc2 => "soc2",
            Framework::PciDss => "pci_dss",
            Framework::NistCsf => "nist_csf",
            Framework::Cis => "cis",
        }
    }

    /// The name people use for it.
    pub fn display_name(self) -> &'static str {
        match self {
            Framework::Hipaa => "HIPAA Security Rule",
            Framework::Soc2 => "SOC 2",
            Framework::PciDss => "PCI DSS",
            Framework::NistCsf => "NIST CSF",
            Framework::Cis => "CIS Controls",
        }
    }

    /// The name used on the command line (`osiris report --framework pci`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Framework::Hipaa => "hipaa",
            Framework::Soc2 => "soc2",
            Framework::PciDss => "pci",
            Framework::NistCsf => "nist-csf",
            Framework::Cis => "cis",
        }
    }

    /// Parses a command-line name (`hipaa`, `soc2`, `pci`, `nist-csf`, `cis`) or a catalogue key.
    pub fn from_cli_name(name: &str) -> Result<Framework, UnknownFramework> {
        Framework::ALL
            .into_iter()
            .find(|f| f.cli_name() == name || f.key() == name)
            .ok_or_else(|| UnknownFramework(name.to_owned()))
    }

    /// The short label used in control references (`HIPAA:164.312(b)`).
    pub fn label(self) -> &'static str {
        match self {
            Framework::Hipaa => "HIPAA",
            Framework::Soc2 => "SOC2",
            Framework::PciDss => "PCI",
            Framework::NistCsf => "NIST-CSF",
            Framework::Cis => "CIS",
        }
    }
}

impl FromStr for Framework {
    type Err = UnknownFramework;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Framework::ALL
            .into_iter()
            .find(|f| f.key() == s)
            .ok_or_else(|| UnknownFramework(s.to_owned()))
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.framework.label(), self.id)
    }
}
