//! The appliance's operations, from configuration to sealed evidence: scanning the configured
//! targets, L1 healing, Active Directory discovery, the workstation cycle and the month's compliance packet. `osiris` runs each
//! once per command; `osirisd` runs them on its schedule. Application glue: errors are `anyhow`
//! with context; [`BadConfig`] marks a configuration problem (exit 78), [`Failed`] one already
//! explained to the user.

pub mod anchor;
pub mod cloud;
pub mod discover;
pub mod heal;
pub mod l2;
pub mod report;
pub mod rmm;
pub mod scan;
pub mod secrets;
pub mod setup;
pub mod workstations;

/// An invalid configuration or catalogue: exit code 78 (`EX_CONFIG`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadConfig(pub String);

/// A command that ran and found a problem it has already reported (e.g. a kit that fails to verify).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);
