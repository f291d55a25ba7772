//! Per-check cadence: which of a target's checks are due at a scan, and the results carried
//! from the last run of those that are not. Pure: the caller keeps the [`Schedule`] (the
//! appliance keeps it in its data directory) and passes the time.
//!
//! A check is due when it never ran on the target, when its last result was not a pass (or
//! skip), when its script, expectations or parameters changed since (its fingerprint), when it
//! has no `interval`, or when its interval has passed. Everything else is carried: its last
//! outcome, with the time it was observed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use model::{CheckOutcome, CheckStatus, ResolvedParams, Runbook};

use crate::{CheckResult, TargetReport};

/// The last run of every check on every target: target name → check ID → run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub targets: BTreeMap<String, BTreeMap<String, LastRun>>,
}

/// One check's last run on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastRun {
    /// When the target was checked (the scan's end), Unix milliseconds.
    pub observed_at_unix_ms: i64,
    /// [`fingerprint`] of the script, expectations and parameters it ran with.
    pub fingerprint: String,
    pub status: CheckStatus,
    pub observed: serde_json::Value,
    pub expected: String,
    pub reason: String,
}

/// What to run at one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Due {
    /// What is due by the rules above.
    #[default]
    Cadence,
    /// Every check (`osiris scan --all`).
    All,
}

/// A scan's plan for one target: the runbooks to run, and the results carried for the rest.
#[derive(Debug)]
pub struct Plan<'a> {
    pub run: Vec<&'a Runbook>,
    /// Check ID → its last run, for the checks that are not run now.
    pub carried: BTreeMap<String, LastRun>,
}

/// A stable digest of what decides a check's result besides the target: its detect script, its
/// expectations and its resolved parameters. (FNV-1a, 64 bits: it only needs to change when
/// they do; a new osiris version may change it, which costs one re-run.)
pub fn fingerprint(runbook: &Runbook, params: Option<&ResolvedParams>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    feed(runbook.detect.body.as_bytes());
    feed(format!("{:?}", runbook.expect).as_bytes());
    if let Some(params) = params {
        for (name, value) in params.env() {
            feed(name.as_bytes());
            feed(value.as_bytes());
        }
    }
    format!("{hash:016x}")
}

/// Which of `runbooks` to run on a target whose last runs are `last`, at `now`.
/// `focus`, when given, narrows the run to those check IDs (a re-scan after drift): the others
/// are carried whenever they have a last run with the same fingerprint.
pub fn plan<'a>(
    runbooks: &[&'a Runbook],
    fingerprints: &[String],
    last: Option<&BTreeMap<String, LastRun>>,
    now: OffsetDateTime,
    due: Due,
    focus: Option<&BTreeSet<String>>,
) -> Plan<'a> {
    let now_ms = unix_ms(now);
    let mut plan = Plan {
        run: Vec::with_capacity(runbooks.len()),
        carried: BTreeMap::new(),
    };
    for (runbook, fingerprint) in runbooks.iter().zip(fingerprints) {
        let previous = last
            .and_then(|runs| runs.get(&runbook.id))
            .filter(|run| run.fingerprint == *fingerprint);
        let carry = match (due, previous) {
            (Due::All, _) | (_, None) => false,
            (Due::Cadence, Some(run)) => match focus {
                Some(focus) => !focus.contains(&runbook.id),
                None => {
                    let settled = matches!(run.status, CheckStatus::Pass | CheckStatus::Skipped);
                    let fresh = runbook.interval.is_some_and(|interval| {
                        let age = now_ms.saturating_sub(run.observed_at_unix_ms);
                        // A run in the future (the clock went back) is not trusted to be fresh.
                        (0..duration_ms(interval)).contains(&age)
                    });
                    settled && fresh
                }
            },
        };
        match previous {
            Some(run) if carry => {
                plan.carried.insert(runbook.id.clone(), run.clone());
            }
            _ => plan.run.push(runbook),
        }
    }
    plan
}

/// The whole report of a target: `report` (the checks that ran, in their order) with the carried
/// results put back in catalogue order (`runbooks`), each with the time it was observed.
/// When the target could not be reached (`unreachable`: no session opened, so every check that
/// ran is an error saying why), nothing is carried: a host that cannot be checked now (or whose
/// host key changed) shows every check in error, not an older pass.
pub fn merge(
    runbooks: &[&Runbook],
    mut report: TargetReport,
    carried: BTreeMap<String, LastRun>,
    unreachable: bool,
) -> TargetReport {
    if carried.is_empty() {
        return report;
    }
    if unreachable {
        let reason = report
            .results
            .first()
            .map(|result| result.outcome.reason.clone())
            .unwrap_or_else(|| "not checked: the target could not be reached".to_owned());
        let mut ran: BTreeMap<String, CheckResult> = report
            .results
            .drain(..)
            .map(|result| (result.runbook_id.clone(), result))
            .collect();
        for runbook in runbooks {
            if let Some(result) = ran.remove(&runbook.id) {
                report.results.push(result);
            } else if carried.contains_key(&runbook.id) {
                report.results.push(CheckResult {
                    runbook_id: runbook.id.clone(),
                    outcome: crate::error_outcome(reason.clone()),
                    elapsed: Duration::ZERO,
                });
            }
        }
        report.results.extend(ran.into_values());
        return report;
    }
    let mut ran: BTreeMap<String, CheckResult> = report
        .results
        .drain(..)
        .map(|result| (result.runbook_id.clone(), result))
        .collect();
    let mut carried = carried;
    for runbook in runbooks {
        if let Some(result) = ran.remove(&runbook.id) {
            report.results.push(result);
        } else if let Some(run) = carried.remove(&runbook.id) {
            let observed_at = OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(run.observed_at_unix_ms) * 1_000_000,
            )
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            report.carried.insert(runbook.id.clone(), observed_at);
            report.results.push(CheckResult {
                runbook_id: runbook.id.clone(),
                outcome: CheckOutcome {
                    status: run.status,
                    observed: run.observed,
                    expected: run.expected,
                    reason: run.reason,
                },
                elapsed: Duration::ZERO,
            });
        }
    }
    // Anything left (not in `runbooks`) keeps its place at the end.
    report.results.extend(ran.into_values());
    report
}

/// Records the checks of `report` that ran (not the carried ones) as the target's last runs.
pub fn record(
    schedule: &mut Schedule,
    report: &TargetReport,
    fingerprints: &BTreeMap<String, String>,
) {
    let runs = schedule
        .targets
        .entry(report.target.name.clone())
        .or_default();
    let at = unix_ms(report.finished);
    for result in &report.results {
        if report.carried.contains_key(&result.runbook_id) {
            continue;
        }
        let Some(fingerprint) = fingerprints.get(&result.runbook_id) else {
            continue;
        };
        runs.insert(
            result.runbook_id.clone(),
            LastRun {
                observed_at_unix_ms: at,
                fingerprint: fingerprint.clone(),
                status: result.outcome.status,
                observed: result.outcome.observed.clone(),
                expected: result.outcome.expected.clone(),
                reason: result.outcome.reason.clone(),
            },
        );
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<Runbook> {
        let catalog = catalog_for_tests();
        ["A", "B", "C"]
            .into_iter()
            .zip([None, Some(60), Some(24 * 60)])
            .map(|(id, minutes)| {
                let mut runbook = catalog.clone();
                runbook.id = id.to_owned();
                runbook.detect.body = format!("echo {id}");
                runbook.interval = minutes.map(|m: u64| Duration::from_secs(m * 60));
                runbook
            })
            .collect()
    }

    fn catalog_for_tests() -> Runbook {
        let catalog = catalog::embedded().unwrap();
        let first = catalog.for_platform(model::Platform::Linux).next().unwrap();
        first.clone()
    }

    fn run(at_min: i64, status: CheckStatus, fingerprint: &str) -> LastRun {
        LastRun {
            observed_at_unix_ms: at_min * 60_000,
            fingerprint: fingerprint.to_owned(),
            status,
            observed: serde_json::json!({"seen": at_min}),
            expected: String::new(),
            reason: String::new(),
        }
    }

    fn ids(plan: &Plan<'_>) -> (Vec<String>, Vec<String>) {
        (
            plan.run.iter().map(|r| r.id.clone()).collect(),
            plan.carried.keys().cloned().collect(),
        )
    }

    /// The cadence table: each row a situation, what runs and what is carried.
    #[test]
    fn what_is_due() {
        let runbooks = catalog();
        let refs: Vec<&Runbook> = runbooks.iter().collect();
        let fps: Vec<String> = refs.iter().map(|r| fingerprint(r, None)).collect();
        let at = |minutes: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes);
        let last = |b: LastRun, c: LastRun| -> BTreeMap<String, LastRun> {
            [
                ("A".to_owned(), run(0, CheckStatus::Pass, &fps[0])),
                ("B".to_owned(), b),
                ("C".to_owned(), c),
            ]
            .into_iter()
            .collect()
        };
        let fresh = last(
            run(0, CheckStatus::Pass, &fps[1]),
            run(0, CheckStatus::Pass, &fps[2]),
        );
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // Never ran: everything.
        assert_eq!(
            ids(&plan(&refs, &fps, None, at(5), Due::Cadence, None)),
            (s(&["A", "B", "C"]), s(&[]))
        );
        // 5 minutes after passing runs: only the check without an interval.
        assert_eq!(
            ids(&plan(&refs, &fps, Some(&fresh), at(5), Due::Cadence, None)),
            (s(&["A"]), s(&["B", "C"]))
        );
        // An hour later B is due again; a day later C too.
        assert_eq!(
            ids(&plan(&refs, &fps, Some(&fresh), at(60), Due::Cadence, None)),
            (s(&["A", "B"]), s(&["C"]))
        );
        assert_eq!(
            ids(&plan(
                &refs,
                &fps,
                Some(&fresh),
                at(24 * 60),
                Due::Cadence,
                None
            )),
            (s(&["A", "B", "C"]), s(&[]))
        );
        // `--all`.
        assert_eq!(
            ids(&plan(&refs, &fps, Some(&fresh), at(5), Due::All, None)),
            (s(&["A", "B", "C"]), s(&[]))
        );
        // A failing or erroring check runs every time until it passes.
        let failing = last(
            run(0, CheckStatus::Fail, &fps[1]),
            run(0, CheckStatus::Error, &fps[2]),
        );
        assert_eq!(
            ids(&plan(
                &refs,
                &fps,
                Some(&failing),
                at(5),
                Due::Cadence,
                None
            )),
            (s(&["A", "B", "C"]), s(&[]))
        );
        // Other parameters or another script since: runs.
        let changed = last(
            run(0, CheckStatus::Pass, "other"),
            run(0, CheckStatus::Pass, &fps[2]),
        );
        assert_eq!(
            ids(&plan(
                &refs,
                &fps,
                Some(&changed),
                at(5),
                Due::Cadence,
                None
            )),
            (s(&["A", "B"]), s(&["C"]))
        );
        // The clock went back: a run "in the future" is not fresh.
        assert_eq!(
            ids(&plan(&refs, &fps, Some(&fresh), at(-5), Due::Cadence, None)),
            (s(&["A", "B", "C"]), s(&[]))
        );
        // A re-scan after drift: only the drifted check, even one without an interval is carried.
        let focus: BTreeSet<String> = ["B".to_owned()].into();
        assert_eq!(
            ids(&plan(
                &refs,
                &fps,
                Some(&failing),
                at(5),
                Due::Cadence,
                Some(&focus)
            )),
            (s(&["B"]), s(&["A", "C"]))
        );
        // ...but a check that never ran (nothing to carry) still runs.
        assert_eq!(
            ids(&plan(&refs, &fps, None, at(5), Due::Cadence, Some(&focus))),
            (s(&["A", "B", "C"]), s(&[]))
        );
    }

    /// Carried results come back in catalogue order with their observation time, and are not
    /// recorded again as runs.
    #[test]
    fn merge_and_record() {
        let runbooks = catalog();
        let refs: Vec<&Runbook> = runbooks.iter().collect();
        let fps: BTreeMap<String, String> = refs
            .iter()
            .map(|r| (r.id.clone(), fingerprint(r, None)))
            .collect();
        let target = model::Target {
            name: "h1".to_owned(),
            platform: model::Platform::Linux,
            device_type: model::DeviceType::Server,
        };
        let finished = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(10);
        let ran = |id: &str| CheckResult {
            runbook_id: id.to_owned(),
            outcome: CheckOutcome {
                status: CheckStatus::Fail,
                observed: serde_json::json!({}),
                expected: String::new(),
                reason: "r".to_owned(),
            },
            elapsed: Duration::ZERO,
        };
        let report = TargetReport {
            target,
            started: finished,
            finished,
            results: vec![ran("A"), ran("C")],
            carried: BTreeMap::new(),
            target_cpu: BTreeMap::new(),
        };
        let carried: BTreeMap<String, LastRun> =
            [("B".to_owned(), run(3, CheckStatus::Pass, &fps["B"]))].into();
        let unreachable = merge(&refs, report.clone(), carried.clone(), true);
        // Unreachable: nothing carried, every check an error saying why.
        assert!(unreachable.carried.is_empty());
        assert_eq!(unreachable.results[1].runbook_id, "B");
        assert_eq!(unreachable.results[1].outcome.status, CheckStatus::Error);
        assert_eq!(unreachable.results[1].outcome.reason, "r");
        let report = merge(&refs, report, carried, false);
        let order: Vec<&str> = report
            .results
            .iter()
            .map(|r| r.runbook_id.as_str())
            .collect();
        assert_eq!(order, ["A", "B", "C"]);
        assert_eq!(report.results[1].outcome.status, CheckStatus::Pass);
        assert_eq!(
            report.results[1].outcome.observed,
            serde_json::json!({"seen": 3})
        );
        assert_eq!(
            report.carried.get("B"),
            Some(&(OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(3)))
        );
        let mut schedule = Schedule::default();
        schedule
            .targets
            .entry("h1".to_owned())
            .or_default()
            .insert("B".to_owned(), run(3, CheckStatus::Pass, &fps["B"]));
        record(&mut schedule, &report, &fps);
        let runs = &schedule.targets["h1"];
        assert_eq!(runs["A"].observed_at_unix_ms, 10 * 60_000);
        assert_eq!(runs["A"].status, CheckStatus::Fail);
        // B keeps the time it was really observed.
        assert_eq!(runs["B"].observed_at_unix_ms, 3 * 60_000);
        // The schedule survives its file format.
        let text = serde_json::to_string(&schedule).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), schedule);
    }
}
