//! From a snapshot to a check result: observe, then judge with the catalogue's own expectations
//! and parameters (`model::evaluate`, the same evaluation as an SSH or WinRM scan), then reduce
//! what was observed to short facts.

use std::collections::BTreeMap;

use model::{CheckStatus, ParamValue, Runbook, resolve_params};
use time::OffsetDateTime;

use crate::observe::{Unreadable, observe};
use crate::source::sources;
use crate::value::{Snapshot, SourceError};

/// Most facts per result, and most bytes per fact's value.
pub const MAX_FACTS: usize = 64;
/// See [`MAX_FACTS`].
pub const MAX_FACT_BYTES: usize = 1024;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pass,
    Fail,
    /// Could not decide (a source could not be read, a value not understood); never a pass.
    Error,
    /// The check does not apply to this machine.
    NotApplicable,
}

/// One native check's result.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeResult {
    /// The catalogue ID (e.g. `WIN-WSFW-001`).
    pub check_id: String,
    pub status: Status,
    /// What was observed: the fields of the catalogue's detect script, or `null` when unreadable.
    pub observed: serde_json::Value,
    /// The expectations in words.
    pub expected: String,
    /// Why the status is what it is; empty for a plain pass.
    pub reason: String,
    /// `observed` flattened to short text (`profiles.0.name` → `Domain`), or where reading failed.
    pub facts: BTreeMap<String, String>,
}

impl Status {
    /// `pass`, `fail`, `error` or `not_applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::NotApplicable => "not_applicable",
        }
    }
}

/// Judges one runbook's snapshot with the runbook's parameters (defaults plus `overrides`).
pub fn judge(
    runbook: &Runbook,
    overrides: &BTreeMap<String, ParamValue>,
    snapshot: &Snapshot,
    now: OffsetDateTime,
) -> NativeResult {
    let params = match resolve_params(&runbook.params, overrides) {
        Ok(params) => params,
        Err(err) => {
            return error_result(
                &runbook.id,
                format!("invalid parameters: {err}"),
                BTreeMap::new(),
            );
        }
    };
    match observe(&runbook.id, snapshot, now) {
        Ok(observed) => {
            let outcome = model::evaluate(runbook, &params, &observed.to_string());
            let status = match outcome.status {
                CheckStatus::Pass => Status::Pass,
                CheckStatus::Fail => Status::Fail,
                CheckStatus::Error => Status::Error,
                CheckStatus::Skipped => Status::NotApplicable,
            };
            NativeResult {
                check_id: runbook.id.clone(),
                status,
                facts: facts(&outcome.observed),
                observed: outcome.observed,
                expected: outcome.expected,
                reason: outcome.reason,
            }
        }
        Err(unreadable) => unreadable_result(&runbook.id, &unreadable),
    }
}

/// An `error` result for a check that could not run at all (e.g. no native implementation).
pub fn error_result(
    check_id: &str,
    reason: String,
    facts: BTreeMap<String, String>,
) -> NativeResult {
    NativeResult {
        check_id: check_id.to_owned(),
        status: Status::Error,
        observed: serde_json::Value::Null,
        expected: String::new(),
        reason,
        facts,
    }
}

/// `observed` as at most [`MAX_FACTS`] `path → text` pairs (nulls left out, long text cut).
pub fn facts(observed: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    flatten("", observed, &mut out);
    out.into_iter().take(MAX_FACTS).collect()
}

fn unreadable_result(check_id: &str, unreadable: &Unreadable) -> NativeResult {
    // Name the source as a place (`WMI root\…\Class`), not only by its snapshot name.
    let place = sources(check_id)
        .and_then(|all| all.iter().find(|s| s.name == unreadable.source))
        .map_or_else(|| unreadable.source.clone(), |s| s.source.describe());
    let described = SourceError {
        code: unreadable.code,
        message: unreadable.reason.clone(),
    }
    .describe();
    let mut facts = BTreeMap::new();
    facts.insert("unreadable.source".to_owned(), cut(&place));
    if let Some(code) = unreadable.code {
        facts.insert(
            "unreadable.code".to_owned(),
            format!("{:#010X}", code as u32),
        );
    }
    error_result(check_id, format!("cannot read {place}: {described}"), facts)
}

fn flatten(path: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                flatten(&join(&fact_key(key)), item, out);
            }
        }
        serde_json::Value::Array(items)
            if items.iter().all(|i| !i.is_object() && !i.is_array()) =>
        {
            let text: Vec<String> = items.iter().map(scalar).collect();
            out.insert(path.to_owned(), cut(&text.join(",")));
        }
        serde_json::Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                flatten(&join(&idx.to_string()), item, out);
            }
        }
        scalar_value => {
            out.insert(path.to_owned(), cut(&scalar(scalar_value)));
        }
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Keys of `a-z 0-9 _ . -` only, whatever a field is called.
fn fact_key(key: &str) -> String {
    key.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '_',
        })
        .collect()
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_FACT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_FACT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
