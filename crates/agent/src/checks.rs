//! What the agent reports about a check: the wire result built from a check's outcome (its
//! status, and what it observed as short named values), and when a result is worth sending
//! (its status changed, or the full-report interval passed since it was last sent).
//!
//! Facts: each field of the detect script's JSON object becomes one fact (nested objects as
//! `outer.inner`, lists as compact JSON), names lower-cased with anything outside
//! `a-z 0-9 _ . -` as `_`, values cut to the protocol's 1,024 bytes (ending in `...` when cut);
//! the outcome's reason is the fact `reason`. At most 64 facts: beyond that the first ones by
//! name are kept and `facts_omitted` says how many were left out.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use agent_proto::limits::{MAX_FACT_KEY_BYTES, MAX_FACT_VALUE_BYTES, MAX_FACTS};
use agent_proto::v1;
use model::{CheckOutcome, CheckStatus};
use serde_json::Value;

/// The wire status of a check status (`skipped` is "not applicable to this device").
#[must_use]
pub fn wire_status(status: CheckStatus) -> v1::CheckStatus {
    match status {
        CheckStatus::Pass => v1::CheckStatus::Pass,
        CheckStatus::Fail => v1::CheckStatus::Fail,
        CheckStatus::Error => v1::CheckStatus::Error,
        CheckStatus::Skipped => v1::CheckStatus::NotApplicable,
    }
}

/// An `error` outcome for a check that could not run, with the reason.
#[must_use]
pub fn error_outcome(reason: String) -> CheckOutcome {
    CheckOutcome {
        status: CheckStatus::Error,
        observed: Value::Null,
        expected: String::new(),
        reason,
    }
}

/// The unsigned result (sequence number 0, no signature) of one run of `check_id`.
#[must_use]
pub fn result_for(
    check_id: &str,
    outcome: &CheckOutcome,
    observed_at_unix_ms: i64,
    catalog_version: &str,
) -> v1::CheckResult {
    v1::CheckResult {
        seq: 0,
        check_id: check_id.to_owned(),
        status: wire_status(outcome.status).into(),
        facts: facts(outcome),
        observed_at_unix_ms,
        catalog_version: catalog_version.to_owned(),
        signature: Vec::new(),
    }
}

/// What `outcome` observed, as facts within the protocol's limits.
#[must_use]
pub fn facts(outcome: &CheckOutcome) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    if let Value::Object(fields) = &outcome.observed {
        for (name, value) in fields {
            flatten(&fact_name(name), value, &mut all);
        }
    }
    let reason = (!outcome.reason.is_empty()).then(|| clip(&outcome.reason));
    if let Some(reason) = &reason {
        all.remove("reason");
        all.insert("reason".to_owned(), reason.clone());
    }
    if all.len() <= MAX_FACTS {
        return all;
    }
    let n_all = all.len();
    let mut kept: BTreeMap<String, String> = all
        .into_iter()
        .filter(|(name, _)| name != "reason")
        .take(MAX_FACTS - 2)
        .collect();
    let n_kept = kept.len() + usize::from(reason.is_some());
    kept.insert("facts_omitted".to_owned(), (n_all - n_kept).to_string());
    if let Some(reason) = reason {
        kept.insert("reason".to_owned(), reason);
    }
    kept
}

/// Remembers what was last sent for each check, to decide what to send next.
#[derive(Debug, Default)]
pub struct Reporter {
    sent: HashMap<String, Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    status: i32,
    at: Instant,
}

impl Reporter {
    /// Whether a result with `status` for `check_id` at `now` should be sent: its status differs
    /// from the one last sent, none was sent since this agent started, or the last was sent at
    /// least `full_report_every` ago.
    #[must_use]
    pub fn should_send(
        &self,
        check_id: &str,
        status: i32,
        now: Instant,
        full_report_every: Duration,
    ) -> bool {
        match self.sent.get(check_id) {
            None => true,
            Some(sent) => {
                sent.status != status || now.saturating_duration_since(sent.at) >= full_report_every
            }
        }
    }

    /// Records that a result for `check_id` with `status` was queued at `now`.
    pub fn record(&mut self, check_id: &str, status: i32, now: Instant) {
        self.sent
            .insert(check_id.to_owned(), Sent { status, at: now });
    }
}

/// Adds `value` under `name` to `out`, objects as `name.field` (while names fit).
fn flatten(name: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    if name.is_empty() {
        return;
    }
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (field, inner) in fields {
                let nested = format!("{name}.{}", fact_name(field));
                if nested.len() <= MAX_FACT_KEY_BYTES {
                    flatten(&nested, inner, out);
                } else {
                    out.insert(name.to_owned(), clip(&value.to_string()));
                    return;
                }
            }
        }
        Value::String(text) => {
            out.insert(name.to_owned(), clip(text));
        }
        other => {
            out.insert(name.to_owned(), clip(&other.to_string()));
        }
    }
}

/// A fact name from a JSON field name: lower case, `a-z 0-9 _ . -` only, at most 64 bytes.
fn fact_name(field: &str) -> String {
    field
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FACT_KEY_BYTES)
        .collect()
}

/// `text` cut to the fact value limit, ending in `...` when cut.
fn clip(text: &str) -> String {
    if text.len() <= MAX_FACT_VALUE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_FACT_VALUE_BYTES - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(observed: &str, reason: &str, expect: Expect) {
        let outcome = CheckOutcome {
            status: CheckStatus::Fail,
            observed: serde_json::from_str(observed).unwrap_or(Value::Null),
            expected: String::new(),
            reason: reason.to_owned(),
        };
        let facts = facts(&outcome);
        let mut out = String::new();
        for (name, value) in &facts {
            let shown = if value.len() > 40 {
                format!("{}…({} bytes)", &value[..20], value.len())
            } else {
                value.clone()
            };
            writeln!(out, "{name} = {shown}").unwrap_or_default();
        }
        let result = result_for("LIN-SSH-001", &outcome, 1_764_000_000_000, "c0ffee");
        let mut signed = result.clone();
        signed.seq = 1;
        signed.signature = vec![0; 64];
        agent_proto::Validate::validate(&signed).unwrap_or_else(|err| panic!("{err}: {facts:?}"));
        expect.assert_eq(&out);
    }

    #[test]
    fn observed_fields_become_facts() {
        check(
            r#"{"permit_root_login": "yes", "port": 22, "PasswordAuthentication": true,
                "listening": [22, 80], "sshd": {"version": "9.2", "t": {"x": null}}, "empty": {}}"#,
            "permit_root_login = yes, expected in [no, prohibit-password]",
            expect![[r#"
                empty = {}
                listening = [22,80]
                passwordauthentication = true
                permit_root_login = yes
                port = 22
                reason = permit_root_login = …(60 bytes)
                sshd.t.x = null
                sshd.version = 9.2
            "#]],
        );
    }

    #[test]
    fn names_and_values_are_cut_to_the_limits() {
        let long_value = "é".repeat(600);
        let long_name = "N".repeat(70);
        check(
            &format!(r#"{{"{long_name}": "v", "big": "{long_value}", "a b/c": 1}}"#),
            "",
            expect![[r#"
                a_b_c = 1
                big = éééééééééé…(1023 bytes)
                nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn = v
            "#]],
        );
    }

    #[test]
    fn too_many_facts_keep_the_first_and_count_the_rest() {
        let fields: Vec<String> = (0..70).map(|i| format!(r#""f{i:02}": {i}"#)).collect();
        let observed = format!("{{{}}}", fields.join(","));
        let outcome = CheckOutcome {
            status: CheckStatus::Fail,
            observed: serde_json::from_str(&observed).unwrap_or(Value::Null),
            expected: String::new(),
            reason: "too many".to_owned(),
        };
        let facts = facts(&outcome);
        assert_eq!(facts.len(), MAX_FACTS);
        assert_eq!(facts["facts_omitted"], "8");
        assert_eq!(facts["reason"], "too many");
        assert_eq!(facts["f61"], "61");
        assert!(!facts.contains_key("f62"));
    }

    #[test]
    fn results_go_out_on_change_and_at_the_full_report_interval() {
        let start = Instant::now();
        let day = Duration::from_secs(86_400);
        let mut reporter = Reporter::default();
        let pass = v1::CheckStatus::Pass as i32;
        let fail = v1::CheckStatus::Fail as i32;
        let mut log = String::new();
        let mut step = |minutes: u64, status: i32, reporter: &mut Reporter| {
            let now = start + Duration::from_secs(minutes * 60);
            let send = reporter.should_send("LIN-SSH-001", status, now, day);
            if send {
                reporter.record("LIN-SSH-001", status, now);
            }
            let _ = writeln!(
                log,
                "minute {minutes:04}, status {status}: {}",
                if send { "send" } else { "-" }
            );
        };
        step(0, pass, &mut reporter);
        step(60, pass, &mut reporter);
        step(120, fail, &mut reporter);
        step(180, fail, &mut reporter);
        step(240, pass, &mut reporter);
        step(1439 + 240, pass, &mut reporter);
        step(1440 + 240, pass, &mut reporter);
        step(1440 + 300, pass, &mut reporter);
        expect![[r#"
            minute 0000, status 1: send
            minute 0060, status 1: -
            minute 0120, status 2: send
            minute 0180, status 2: -
            minute 0240, status 1: send
            minute 1679, status 1: -
            minute 1680, status 1: send
            minute 1740, status 1: -
        "#]]
        .assert_eq(&log);
    }
}
