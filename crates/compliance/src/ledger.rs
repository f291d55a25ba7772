//! What the evidence log says about one period: the newest result of each check on each target,
//! how often each passed and failed, and the attestations and exceptions recorded so far.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr as _;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time};

use evidence_schema::{
    AgentEnrollmentBody, AgentResultBody, AttestationBody, ExceptionBody, KIND_AGENT_ENROLLMENT,
    KIND_AGENT_RESULT, KIND_ATTESTATION, KIND_ESCALATION, KIND_EXCEPTION, KIND_SCAN,
};
use model::Framework;

/// The bundle kinds a ledger reads; a reader may skip every other kind.
pub const LEDGER_KINDS: [&str; 6] = [
    KIND_SCAN,
    KIND_AGENT_ENROLLMENT,
    KIND_AGENT_RESULT,
    KIND_ATTESTATION,
    KIND_EXCEPTION,
    KIND_ESCALATION,
];

/// A reporting period: `[start, end)` in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `2026-11`.
    pub label: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// A period that is not a month in `YYYY-MM` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period `{0}` is not a month: write it as YYYY-MM, e.g. 2026-11")]
pub struct PeriodError(pub String);

/// The status of one check on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckStatus {
    Pass,
    Fail,
    Error,
    /// The check does not apply to the target.
    Skipped,
}

/// The newest result of one check on one target within the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub target: String,
    pub check: String,
    pub status: CheckStatus,
    /// What the check observed, as compact JSON.
    pub observed: String,
    pub reason: String,
    pub at: OffsetDateTime,
    /// The bundle that holds it.
    pub seq: u64,
}

/// A person's signed statement that a control holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub framework: Framework,
    pub control: String,
    pub statement: String,
    pub by: String,
    pub at: OffsetDateTime,
    /// The last day it counts.
    pub expires: Date,
    /// `(file name, hex SHA-256)` of the supporting document.
    pub document: Option<(String, String)>,
    pub seq: u64,
}

/// An accepted risk: one check's failure on one target does not count until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub check: String,
    pub target: String,
    pub reason: String,
    pub compensating: String,
    pub owner: String,
    pub at: OffsetDateTime,
    /// The last day it counts.
    pub expires: Date,
    pub seq: u64,
}

/// A failed check handed to a person (an `escalation` bundle): an incident, open while the
/// check's newest result on that device still fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub check: String,
    pub target: String,
    /// Why it went to a person.
    pub reason: String,
    pub at: OffsetDateTime,
    pub seq: u64,
}

/// A bundle line the ledger cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bundle {seq}: {message}")]
pub struct LedgerError {
    pub seq: u64,
    pub message: String,
}

/// The evidence of one period, as of one moment (`until`).
#[derive(Debug, Clone)]
pub struct Ledger {
    period: Period,
    until: OffsetDateTime,
    /// Per target, per check: the newest observation and (passes, fails) over the period.
    latest: BTreeMap<String, BTreeMap<String, Slot>>,
    attestations: Vec<Attestation>,
    exceptions: Vec<Exception>,
    /// The newest escalation per (target, check).
    escalations: BTreeMap<(String, String), Incident>,
    scans_in_period: u64,
    agent_results_in_period: u64,
    /// Endpoint agents' host names by agent id (from their enrollment bundles).
    agents: BTreeMap<String, String>,
    first_bundle_at: Option<OffsetDateTime>,
    newest_seq: Option<u64>,
    /// The lowest and highest seq of the check results counted (scans and agent results).
    results_seqs: Option<(u64, u64)>,
}

/// One check on one device on one UTC day, as a day summary of the log gives it: the day's
/// pass and fail counts and its newest result (`osiris report` reads these from the store's
/// report summary instead of every bundle of the month).
#[derive(Debug, Clone, Copy)]
pub struct DayResult<'a> {
    /// From an endpoint agent (`target` is then the agent id), else from a scan.
    pub agent: bool,
    pub target: &'a str,
    pub check: &'a str,
    pub passes: u32,
    pub fails: u32,
    /// The newest result's status as the bundle says it (`pass`, `fail`, …).
    pub status: &'a str,
    pub observed: &'a str,
    pub reason: &'a str,
    /// The newest result's bundle time (RFC 3339).
    pub at: &'a str,
    pub seq: u64,
}

/// The bundles of one kind sealed on one UTC day, as a day summary of the log gives them.
#[derive(Debug, Clone, Copy)]
pub struct DayBundles<'a> {
    pub day: Date,
    /// `scan` or `agent_result`.
    pub kind: &'a str,
    pub bundles: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The earliest bundle time of the day (RFC 3339).
    pub first_at: &'a str,
}

/// How to read a ledger from day summaries: every day's bundle counts (`Ledger::add_day_bundles`)
/// and the check results of the whole UTC days `from..to` (`Ledger::add_day_result`), then, when
/// the moment described is not a midnight, the scan and agent result bundles of the day `partial`
/// itself (`Ledger::add_line_of_day`);
/// attestations, exceptions and agent enrollments always come from their bundles (`add_line`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayPlan {
    pub from: Date,
    pub to: Date,
    pub partial: Option<Date>,
}

impl Period {
    /// Parses `YYYY-MM`.
    pub fn month(text: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year = i32::from_str(year).map_err(|_| bad())?;
        let month = u8::from_str(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(bad)?;
        let first = Date::from_calendar_date(year, month, 1).map_err(|_| bad())?;
        let next = match month {
            Month::December => Date::from_calendar_date(year + 1, Month::January, 1),
            _ => Date::from_calendar_date(year, month.next(), 1),
        }
        .map_err(|_| bad())?;
        Ok(Period {
            label: text.to_owned(),
            start: first.with_time(Time::MIDNIGHT).assume_utc(),
            end: next.with_time(Time::MIDNIGHT).assume_utc(),
        })
    }
}

impl CheckStatus {
    pub fn parse(text: &str) -> Option<CheckStatus> {
        match text {
            "pass" => Some(CheckStatus::Pass),
            "fail" => Some(CheckStatus::Fail),
            "error" => Some(CheckStatus::Error),
            "skipped" | "not_applicable" => Some(CheckStatus::Skipped),
            _ => None,
        }
    }

    /// `(passes, fails)` one result of this status adds.
    fn counts(self) -> (u32, u32) {
        match self {
            CheckStatus::Pass => (1, 0),
            CheckStatus::Fail => (0, 1),
            CheckStatus::Error | CheckStatus::Skipped => (0, 0),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Error => "error",
            CheckStatus::Skipped => "not applicable",
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    observation: Observation,
    passes: u32,
    fails: u32,
    /// `(passes, fails)` per week of the period (days 1–7, 8–14, 15–21, 22–28, 29–31).
    weeks: [(u32, u32); WEEKS],
}

/// The weeks a month is cut into for its trend: days 1–7, 8–14, 15–21, 22–28 and 29 to the end.
pub const WEEKS: usize = 5;

/// One week of a period's trend: its first and last day (within the period) and the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub first: Date,
    pub last: Date,
    pub passes: u32,
    pub fails: u32,
}

impl Week {
    /// The share of passing results in percent (rounded down); `None` without results.
    pub fn pass_percent(&self) -> Option<u32> {
        let total = u64::from(self.passes) + u64::from(self.fails);
        (total > 0).then(|| (u64::from(self.passes) * 100 / total) as u32)
    }
}

/// The members every line is read for first (the body is skipped unparsed).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Envelope {
    body: serde_json::Value,
}

/// A scan line, read without building a JSON tree of the whole body.
#[derive(Deserialize)]
struct ScanLine<'a> {
    #[serde(borrow)]
    body: ScanLite<'a>,
}

#[derive(Deserialize)]
struct ScanLite<'a> {
    #[serde(borrow)]
    target: TargetLite<'a>,
    #[serde(borrow)]
    results: Vec<ResultLite<'a>>,
}

/// An escalation line (a `HealBody`), read for its device, check and reason only.
#[derive(Deserialize)]
struct EscalationLine<'a> {
    #[serde(borrow)]
    body: EscalationLite<'a>,
}

#[derive(Deserialize)]
struct EscalationLite<'a> {
    #[serde(borrow)]
    target: TargetLite<'a>,
    #[serde(borrow)]
    check: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TargetLite<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ResultLite<'a> {
    #[serde(borrow)]
    check: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    observed: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

impl Ledger {
    /// An empty ledger for `period`, evaluated at the end of the period or at `as_of` if earlier.
    pub fn new(period: Period, as_of: Option<OffsetDateTime>) -> Ledger {
        let until = as_of.map_or(period.end, |as_of| as_of.min(period.end));
        Ledger {
            period,
            until,
            latest: BTreeMap::new(),
            attestations: Vec::new(),
            exceptions: Vec::new(),
            escalations: BTreeMap::new(),
            scans_in_period: 0,
            agent_results_in_period: 0,
            agents: BTreeMap::new(),
            first_bundle_at: None,
            newest_seq: None,
            results_seqs: None,
        }
    }

    /// Which days a reader takes from a day summary and which it reads bundle by bundle.
    pub fn day_plan(&self) -> DayPlan {
        let from = self.period.start.date();
        let until_day = self.until.date();
        DayPlan {
            from,
            to: until_day.max(from),
            partial: (self.until.time() != Time::MIDNIGHT).then_some(until_day),
        }
    }

    /// Counts one day's bundles of one kind from a day summary (days of any date: the log's first
    /// bundle and the newest bundle read count every day before the moment described).
    pub fn add_day_bundles(&mut self, day: DayBundles<'_>) -> Result<(), LedgerError> {
        let at = parse_time(day.first_seq, day.first_at)?;
        if self.first_bundle_at.is_none_or(|first| at < first) {
            self.first_bundle_at = Some(at);
        }
        if day.day >= self.until.date() {
            return Ok(());
        }
        self.newest_seq = Some(
            self.newest_seq
                .map_or(day.last_seq, |n| n.max(day.last_seq)),
        );
        let plan = self.day_plan();
        if day.day < plan.from || day.day >= plan.to {
            return Ok(());
        }
        match day.kind {
            KIND_SCAN => self.scans_in_period += day.bundles,
            KIND_AGENT_RESULT => self.agent_results_in_period += day.bundles,
            _ => return Ok(()),
        }
        self.count_results_seq(day.first_seq);
        self.count_results_seq(day.last_seq);
        Ok(())
    }

    /// Merges one device's check of one whole day (of `day_plan().from..to`) from a day summary;
    /// days must come in order, after the attestations, exceptions and enrollments.
    pub fn add_day_result(&mut self, day: DayResult<'_>) -> Result<(), LedgerError> {
        let err = |message: String| LedgerError {
            seq: day.seq,
            message,
        };
        let at = parse_time(day.seq, day.at)?;
        let status = CheckStatus::parse(day.status)
            .ok_or_else(|| err(format!("unknown check status `{}`", day.status)))?;
        let target = if day.agent {
            self.agents
                .get(day.target)
                .cloned()
                .unwrap_or_else(|| day.target.to_owned())
        } else {
            day.target.to_owned()
        };
        self.record(
            &target,
            day.check,
            status,
            (day.passes, day.fails),
            day.observed,
            day.reason,
            at,
            day.seq,
        );
        Ok(())
    }

    /// Reads one scan or agent result bundle of the day `day_plan().partial` (a reader may pass
    /// a seq range that also holds other days' bundles: only that day's results count, and only
    /// within the period).
    pub fn add_line_of_day(&mut self, seq: u64, line: &[u8], day: Date) -> Result<(), LedgerError> {
        let since = day.with_time(Time::MIDNIGHT).assume_utc();
        self.add(seq, line, since.max(self.period.start))
    }

    fn count_results_seq(&mut self, seq: u64) {
        self.results_seqs = Some(match self.results_seqs {
            Some((low, high)) => (low.min(seq), high.max(seq)),
            None => (seq, seq),
        });
    }

    /// Reads one bundle line of the log (lines may come in any order); kinds other than scans,
    /// agent results and enrollments, attestations and exceptions only count towards the log's
    /// first bundle time.
    pub fn add_line(&mut self, seq: u64, line: &[u8]) -> Result<(), LedgerError> {
        self.add(seq, line, self.period.start)
    }

    /// As `add_line`; check results before `since` are left out.
    fn add(&mut self, seq: u64, line: &[u8], since: OffsetDateTime) -> Result<(), LedgerError> {
        let err = |message: String| LedgerError { seq, message };
        let head: Head<'_> =
            serde_json::from_slice(line).map_err(|e| err(format!("not a bundle: {e}")))?;
        let at = parse_time(seq, &head.time)?;
        // Lines may come in any order (a reader may read ranges in parallel): keep the extremes.
        if self.first_bundle_at.is_none_or(|first| at < first) {
            self.first_bundle_at = Some(at);
        }
        if at >= self.until {
            return Ok(());
        }
        self.newest_seq = Some(self.newest_seq.map_or(seq, |newest| newest.max(seq)));
        let body = || -> Result<serde_json::Value, LedgerError> {
            let envelope: Envelope =
                serde_json::from_slice(line).map_err(|e| err(format!("not a bundle: {e}")))?;
            Ok(envelope.body)
        };
        match head.kind.as_ref() {
            KIND_SCAN => {
                if at < since {
                    return Ok(());
                }
                let scan: ScanLine<'_> =
                    serde_json::from_slice(line).map_err(|e| err(format!("scan body: {e}")))?;
                self.scans_in_period += 1;
                self.count_results_seq(seq);
                let target = scan.body.target.name;
                for result in scan.body.results {
                    let status = CheckStatus::parse(&result.status)
                        .ok_or_else(|| err(format!("unknown check status `{}`", result.status)))?;
                    self.record(
                        &target,
                        &result.check,
                        status,
                        status.counts(),
                        result.observed.get(),
                        &result.reason,
                        at,
                        seq,
                    );
                }
            }
            KIND_AGENT_ENROLLMENT => {
                let body: AgentEnrollmentBody = serde_json::from_value(body()?)
                    .map_err(|e| err(format!("agent enrollment body: {e}")))?;
                self.agents.insert(body.agent_id, body.hostname);
            }
            KIND_AGENT_RESULT => {
                if at < since {
                    return Ok(());
                }
                let body: AgentResultBody = serde_json::from_value(body()?)
                    .map_err(|e| err(format!("agent result body: {e}")))?;
                let status = CheckStatus::parse(&body.status)
                    .ok_or_else(|| err(format!("unknown check status `{}`", body.status)))?;
                // The device name the daemon shows: the host name the agent enrolled with.
                let target = self
                    .agents
                    .get(&body.agent_id)
                    .cloned()
                    .unwrap_or_else(|| body.agent_id.clone());
                self.agent_results_in_period += 1;
                self.count_results_seq(seq);
                let reason = format!("reported by endpoint agent {}", body.agent_id);
                let facts = serde_json::to_string(&body.facts).unwrap_or_default();
                self.record(
                    &target,
                    &body.check_id,
                    status,
                    status.counts(),
                    &facts,
                    &reason,
                    at,
                    seq,
                );
            }
            KIND_ATTESTATION => {
                let body: AttestationBody = serde_json::from_value(body()?)
                    .map_err(|e| err(format!("attestation body: {e}")))?;
                let (label, id) = body
                    .control
                    .split_once(':')
                    .ok_or_else(|| err(format!("control `{}` has no framework", body.control)))?;
                let framework = Framework::ALL
                    .into_iter()
                    .find(|f| f.label() == label)
                    .ok_or_else(|| err(format!("unknown framework `{label}`")))?;
                self.attest(Attestation {
                    framework,
                    control: id.to_owned(),
                    statement: body.statement,
                    by: body.by,
                    at,
                    expires: parse_date(&body.expires).map_err(err)?,
                    document: body.document.map(|d| (d.name, d.sha256)),
                    seq,
                });
            }
            KIND_ESCALATION => {
                let line: EscalationLine<'_> = serde_json::from_slice(line)
                    .map_err(|e| err(format!("escalation body: {e}")))?;
                let key = (
                    line.body.target.name.into_owned(),
                    line.body.check.into_owned(),
                );
                let newer = self
                    .escalations
                    .get(&key)
                    .is_none_or(|old| (at, seq) > (old.at, old.seq));
                if newer {
                    self.escalations.insert(
                        key.clone(),
                        Incident {
                            target: key.0,
                            check: key.1,
                            reason: line.body.reason.into_owned(),
                            at,
                            seq,
                        },
                    );
                }
            }
            KIND_EXCEPTION => {
                let body: ExceptionBody = serde_json::from_value(body()?)
                    .map_err(|e| err(format!("exception body: {e}")))?;
                self.except(Exception {
                    check: body.check,
                    target: body.target,
                    reason: body.reason,
                    compensating: body.compensating,
                    owner: body.owner,
                    at,
                    expires: parse_date(&body.expires).map_err(err)?,
                    seq,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Records one check result (newer results replace older ones of the same check and target).
    pub fn observe(&mut self, observation: Observation) {
        let Observation {
            target,
            check,
            status,
            observed,
            reason,
            at,
            seq,
        } = observation;
        self.record(
            &target,
            &check,
            status,
            status.counts(),
            &observed,
            &reason,
            at,
            seq,
        );
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one observation, not copied"
    )]
    fn record(
        &mut self,
        target: &str,
        check: &str,
        status: CheckStatus,
        (pass, fail): (u32, u32),
        observed: &str,
        reason: &str,
        at: OffsetDateTime,
        seq: u64,
    ) {
        if !self.latest.contains_key(target) {
            self.latest.insert(target.to_owned(), BTreeMap::new());
        }
        let week = week_of(self.period.start.date(), at.date());
        let Some(per_target) = self.latest.get_mut(target) else {
            return;
        };
        match per_target.get_mut(check) {
            Some(slot) => {
                slot.passes += pass;
                slot.fails += fail;
                slot.weeks[week].0 += pass;
                slot.weeks[week].1 += fail;
                if at >= slot.observation.at {
                    let o = &mut slot.observation;
                    o.status = status;
                    // Reuse the buffers: most results repeat the previous cycle's text.
                    if o.observed != observed {
                        o.observed.clear();
                        o.observed.push_str(observed);
                    }
                    if o.reason != reason {
                        o.reason.clear();
                        o.reason.push_str(reason);
                    }
                    o.at = at;
                    o.seq = seq;
                }
            }
            None => {
                per_target.insert(
                    check.to_owned(),
                    Slot {
                        observation: Observation {
                            target: target.to_owned(),
                            check: check.to_owned(),
                            status,
                            observed: observed.to_owned(),
                            reason: reason.to_owned(),
                            at,
                            seq,
                        },
                        passes: pass,
                        fails: fail,
                        weeks: {
                            let mut weeks = [(0, 0); WEEKS];
                            weeks[week] = (pass, fail);
                            weeks
                        },
                    },
                );
            }
        }
    }

    /// Records an attestation (for callers that read them elsewhere than from bundle lines).
    pub fn attest(&mut self, attestation: Attestation) {
        // Kept in seq order, whatever order lines come in: "newest" means the highest seq.
        let at = self
            .attestations
            .partition_point(|a| a.seq <= attestation.seq);
        self.attestations.insert(at, attestation);
    }

    /// Records an exception (for callers that read them elsewhere than from bundle lines).
    pub fn except(&mut self, exception: Exception) {
        let at = self.exceptions.partition_point(|e| e.seq <= exception.seq);
        self.exceptions.insert(at, exception);
    }

    pub fn period(&self) -> &Period {
        &self.period
    }

    /// The moment the report describes: the end of the period, or `as_of` if earlier.
    pub fn until(&self) -> OffsetDateTime {
        self.until
    }

    /// The newest result of every check on every target, by (target, check).
    pub fn latest(&self) -> impl Iterator<Item = &Observation> {
        self.latest
            .values()
            .flat_map(|checks| checks.values().map(|slot| &slot.observation))
    }

    /// The newest results of one check, one per target.
    pub fn latest_of<'a>(&'a self, check: &'a str) -> impl Iterator<Item = &'a Observation> + 'a {
        self.latest
            .values()
            .filter_map(move |checks| checks.get(check).map(|slot| &slot.observation))
    }

    /// `(passes, fails)` of one check on one target over the period.
    pub fn counts(&self, target: &str, check: &str) -> (u32, u32) {
        self.latest
            .get(target)
            .and_then(|checks| checks.get(check))
            .map_or((0, 0), |slot| (slot.passes, slot.fails))
    }

    /// `(passes, fails)` of one check on one target per week of the period (`WEEKS` entries).
    pub fn weekly_counts(&self, target: &str, check: &str) -> [(u32, u32); WEEKS] {
        self.latest
            .get(target)
            .and_then(|checks| checks.get(check))
            .map_or([(0, 0); WEEKS], |slot| slot.weeks)
    }

    /// The weeks of the period up to the moment described, with no results counted yet: the
    /// first and last day of each (the last week runs to the month's end, or to `until`).
    pub fn weeks(&self) -> Vec<Week> {
        let start = self.period.start.date();
        // The last day with results: the day before `until` when it is a midnight.
        let last_day = (self.until - time::Duration::nanoseconds(1))
            .date()
            .max(start);
        let period_last = (self.period.end - time::Duration::days(1)).date();
        (0..WEEKS)
            .filter_map(|i| {
                let first = start + time::Duration::days(7 * i as i64);
                if first > last_day {
                    return None;
                }
                let last = if i + 1 == WEEKS {
                    period_last
                } else {
                    first + time::Duration::days(6)
                };
                Some(Week {
                    first,
                    last: last.min(last_day),
                    passes: 0,
                    fails: 0,
                })
            })
            .collect()
    }

    pub fn attestations(&self) -> &[Attestation] {
        &self.attestations
    }

    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    /// Scan bundles sealed within the period (before `until`).
    pub fn scans_in_period(&self) -> u64 {
        self.scans_in_period
    }

    /// Endpoint agent results sealed within the period (before `until`).
    pub fn agent_results_in_period(&self) -> u64 {
        self.agent_results_in_period
    }

    /// Whether the period holds any check result (scans or agent results).
    pub fn has_results(&self) -> bool {
        self.scans_in_period + self.agent_results_in_period > 0
    }

    /// The lowest and highest seq of the scan and agent result bundles counted in the period.
    pub fn results_seqs(&self) -> Option<(u64, u64)> {
        self.results_seqs
    }

    /// When the log's first bundle was sealed.
    pub fn first_bundle_at(&self) -> Option<OffsetDateTime> {
        self.first_bundle_at
    }

    /// The newest bundle the ledger read before `until`.
    pub fn newest_seq(&self) -> Option<u64> {
        self.newest_seq
    }

    /// Distinct targets with results in the period.
    pub fn targets(&self) -> Vec<&str> {
        self.latest.keys().map(String::as_str).collect()
    }

    /// The valid exception for a check on a target at `until`, if any (the newest one).
    pub fn exception_for(&self, check: &str, target: &str) -> Option<&Exception> {
        let day = self.until.date();
        self.exceptions
            .iter()
            .rev()
            .find(|e| e.check == check && e.target == target && e.expires >= day)
    }

    /// The open incident of a check on a target at `until`: its newest escalation, while the
    /// check's newest result on that target in the period still fails.
    pub fn open_incident_for(&self, check: &str, target: &str) -> Option<&Incident> {
        let slot = self.latest.get(target)?.get(check)?;
        if slot.observation.status != CheckStatus::Fail {
            return None;
        }
        self.escalations.get(&(target.to_owned(), check.to_owned()))
    }

    /// Exceptions for a check on a target that had expired by `until`.
    pub fn expired_exception_for(&self, check: &str, target: &str) -> Option<&Exception> {
        let day = self.until.date();
        self.exceptions
            .iter()
            .rev()
            .find(|e| e.check == check && e.target == target && e.expires < day)
    }
}

/// The week of the period (0 for days 1–7, …, 4 for day 29 onwards) a day falls in.
fn week_of(period_start: Date, day: Date) -> usize {
    let days = (day - period_start).whole_days().max(0);
    ((days / 7) as usize).min(WEEKS - 1)
}

/// Parses a bundle's RFC 3339 time.
fn parse_time(seq: u64, text: &str) -> Result<OffsetDateTime, LedgerError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| LedgerError {
        seq,
        message: format!("time `{text}`: {e}"),
    })
}

/// Parses `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).map_err(|_| format!("date `{text}` is not YYYY-MM-DD"))
}
