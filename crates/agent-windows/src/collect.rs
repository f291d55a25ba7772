//! Runs the native checks on this machine: reads each check's sources (`source`) into a snapshot
//! through WMI, the registry and the environment, then judges it (`judge`).

use std::collections::BTreeMap;

use model::{ParamValue, Runbook};
use time::OffsetDateTime;

use crate::judge::{NativeResult, error_result, judge};
use crate::source::{NamedSource, Source, sources};
use crate::value::{Instance, Snapshot, SourceError, Value};
use crate::wmi::Wmi;

/// Runs every given runbook natively, in order; one without a native implementation is an
/// `error` result (never skipped silently). `overrides` holds parameter values by runbook ID.
pub fn check(
    runbooks: &[&Runbook],
    overrides: &BTreeMap<String, BTreeMap<String, ParamValue>>,
) -> Vec<NativeResult> {
    let wmi = Wmi::new();
    let empty = BTreeMap::new();
    runbooks
        .iter()
        .map(|runbook| match sources(&runbook.id) {
            Some(list) => {
                let snapshot = read(&wmi, list);
                judge(
                    runbook,
                    overrides.get(&runbook.id).unwrap_or(&empty),
                    &snapshot,
                    OffsetDateTime::now_utc(),
                )
            }
            None => error_result(
                &runbook.id,
                format!("no native check for {} in this build", runbook.id),
                BTreeMap::new(),
            ),
        })
        .collect()
}

/// Reads the given sources on this machine (what `examples/record.rs` records as fixtures).
pub fn read_snapshot(list: &[NamedSource]) -> Snapshot {
    read(&Wmi::new(), list)
}

fn read(wmi: &Result<Wmi, SourceError>, list: &[NamedSource]) -> Snapshot {
    list.iter()
        .map(|named| {
            (
                named.name.to_owned(),
                read_one(wmi, named.name, named.source),
            )
        })
        .collect()
}

fn read_one(
    wmi: &Result<Wmi, SourceError>,
    name: &str,
    source: Source,
) -> Result<Vec<Instance>, SourceError> {
    match source {
        Source::Query {
            namespace,
            class,
            properties,
        } => wmi
            .as_ref()
            .map_err(Clone::clone)?
            .query(namespace, class, properties),
        Source::Method {
            namespace,
            class,
            method,
            key,
            out,
        } => wmi
            .as_ref()
            .map_err(Clone::clone)?
            .call_each(namespace, class, method, key, out),
        Source::Registry { key, value } => Ok(crate::registry::read_local_machine(key, value)?
            .map(|read| Instance::from([(name.to_owned(), read)]))
            .into_iter()
            .collect()),
        Source::Environment { name: variable } => Ok(std::env::var(variable)
            .ok()
            .map(|text| Instance::from([(name.to_owned(), Value::Text(text))]))
            .into_iter()
            .collect()),
    }
}
