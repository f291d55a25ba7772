//! `osiris-agent`'s library: the endpoint agent that checks the machine it runs on with the
//! appliance's own catalogue and reports to the appliance's agent gateway (issue 17).
//!
//! - [`enroll`]: keys made on the device, the gateway trusted through the pinned agent CA only
//!   ([`tls`]), the one-time token exchanged for a client certificate and a configuration.
//! - [`run`]: checks on their schedule, results signed with the device key into the durable
//!   queue, one `Connect` stream ([`session`]) that delivers them in order exactly once.
//! - [`status`]: what the agent knows about itself, without the gateway.
//! - [`platform`]: what differs between operating systems (running a check, keeping the device
//!   key, installing the service): `platform::Linux`, and `platform::Windows` on the
//!   `agent-windows` crate.
//! - [`check_once`]: the catalogue's checks once, printed (`check --once`).
//!
//! The state directory's files are described in [`state`]; docs/AGENT-PROTOCOL.md ("The
//! agent") has the behaviour the gateway sees.

pub mod checks;
pub mod cli;
pub mod enroll;
pub mod log;
pub mod platform;
mod remediation;
pub mod run;
mod schedule;
mod session;
pub mod state;
pub mod status;
mod tls;
pub mod update;

use serde::Serialize;

use crate::platform::Platform;

pub use crate::update::agent_version;

/// One check's result as `check --once` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalResult {
    /// The catalogue id.
    pub check: String,
    /// `pass`, `fail`, `error` or `skipped`.
    pub status: String,
    /// What the detect script observed (its JSON object), or `null`.
    pub observed: serde_json::Value,
    /// Why the status is what it is; empty for a plain pass.
    pub reason: String,
}

/// Why local checks could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The embedded catalogue did not load (a build defect).
    #[error("the embedded check catalogue is invalid: {0}")]
    Catalog(String),
}

/// The catalogue this agent carries: the appliance's catalogue cut to this platform and
/// validated at build time (`build.rs`), with the full catalogue's version.
///
/// # Errors
/// Only if the embedded data is damaged, which the build rules out.
pub fn embedded_catalog() -> Result<catalog::Catalog, String> {
    /// Far above the catalogue's size (92 KB for Linux), so a damaged stream cannot take memory.
    const MAX_JSON: usize = 4 << 20;
    let deflated = include_bytes!(concat!(env!("OUT_DIR"), "/catalog.json.deflate"));
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, MAX_JSON)
        .map_err(|err| format!("the embedded catalogue does not inflate: {err}"))?;
    let json = String::from_utf8(json)
        .map_err(|err| format!("the embedded catalogue is not UTF-8: {err}"))?;
    catalog::Catalog::from_json(&json)
}

/// Runs every catalogue check for `platform` on this machine, in catalogue order (on Linux as
/// one batch through the appliance's scan engine, with `scan-local` as the transport; on
/// Windows natively, with one WMI connection).
///
/// # Errors
/// When the embedded catalogue does not load.
pub fn check_once(platform: &dyn Platform) -> Result<Vec<LocalResult>, AgentError> {
    let catalog = crate::embedded_catalog().map_err(|err| AgentError::Catalog(err.to_string()))?;
    let runbooks: Vec<_> = catalog.for_platform(platform.catalog_platform()).collect();
    let outcomes = platform.run_checks(&catalog, &runbooks);
    Ok(runbooks
        .iter()
        .zip(outcomes)
        .map(|(runbook, outcome)| LocalResult {
            check: runbook.id.clone(),
            status: outcome.status.to_string(),
            observed: outcome.observed,
            reason: outcome.reason,
        })
        .collect())
}

/// Now, in milliseconds since 1970 UTC.
#[must_use]
pub fn now_unix_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// An error and its sources, joined with `: ` (what `{:#}` does for anyhow).
#[must_use]
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
