//! The learning flywheel, pure: executed L2 plans grouped by pattern (check + normalised
//! observation + runbook + parameters), a pattern's standing against the promotion thresholds,
//! and the proposed L1 rule in the rules-file format. Where outcomes come from (the `l2` bundles)
//! and where decisions are kept is the caller's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// One executed plan and whether the failed check passed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub check: String,
    /// The detect output before the fix; normalised by [`normalise`] into the pattern.
    pub observed: Value,
    pub runbook: String,
    /// The plan's parameters, rendered as their JSON text.
    pub params: BTreeMap<String, String>,
    pub host: String,
    pub fixed: bool,
    /// Unix seconds.
    pub at: i64,
}

/// What makes two plans the same lesson.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatternKey {
    pub check: String,
    /// The observation's shape: keys kept, strings and numbers replaced by their type, booleans
    /// and empty/non-empty kept (they are what rules test).
    pub observation: String,
    pub runbook: String,
    pub params: BTreeMap<String, String>,
}

/// When a pattern becomes a proposed rule, and when a promoted one is demoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Verified fixes needed (default 5).
    pub min_successes: u32,
    /// Success share needed, in thousandths (default 900).
    pub min_rate_permille: u32,
    /// Distinct hosts needed (default 2).
    pub min_hosts: u32,
}

/// A person's decision about a proposal, or the recorded demotion of an approved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected,
    /// Approved earlier, demoted when its success rate fell (sealed once); only a new approval
    /// of a new pattern brings the lesson back.
    Demoted,
}

/// Where a pattern stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not enough evidence yet.
    Learning,
    /// Meets the thresholds; waits for a person.
    Proposed,
    /// Approved and still meets the success rate.
    Promoted,
    /// Approved earlier, but its success rate fell below the threshold.
    Demoted,
    /// A person said no.
    Rejected,
}

/// A pattern with its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub key: PatternKey,
    /// Stable short id (`fw-` + 10 hex digits of the key's hash), for `osiris flywheel approve`.
    pub id: String,
    pub attempts: u32,
    pub successes: u32,
    pub hosts: BTreeSet<String>,
    pub last_at: i64,
}

impl Thresholds {
    /// The issue's defaults: 5 successes, 90 %, 2 hosts.
    pub const DEFAULT: Thresholds = Thresholds {
        min_successes: 5,
        min_rate_permille: 900,
        min_hosts: 2,
    };
}

/// Groups outcomes by pattern, most attempts first (then by id).
pub fn patterns(outcomes: &[Outcome]) -> Vec<Pattern> {
    let mut by_key: BTreeMap<PatternKey, Pattern> = BTreeMap::new();
    for outcome in outcomes {
        let key = PatternKey {
            check: outcome.check.clone(),
            observation: normalise(&outcome.observed).to_string(),
            runbook: outcome.runbook.clone(),
            params: outcome.params.clone(),
        };
        let pattern = by_key.entry(key.clone()).or_insert_with(|| Pattern {
            id: pattern_id(&key),
            key,
            attempts: 0,
            successes: 0,
            hosts: BTreeSet::new(),
            last_at: i64::MIN,
        });
        pattern.attempts += 1;
        if outcome.fixed {
            pattern.successes += 1;
            pattern.hosts.insert(outcome.host.clone());
        }
        pattern.last_at = pattern.last_at.max(outcome.at);
    }
    let mut all: Vec<Pattern> = by_key.into_values().collect();
    all.sort_by(|a, b| b.attempts.cmp(&a.attempts).then_with(|| a.id.cmp(&b.id)));
    all
}

/// Where `pattern` stands given a person's decision (if any).
pub fn standing(
    pattern: &Pattern,
    thresholds: &Thresholds,
    decision: Option<Decision>,
) -> Standing {
    let rate_ok = u64::from(pattern.successes) * 1000
        >= u64::from(thresholds.min_rate_permille) * u64::from(pattern.attempts.max(1));
    match decision {
        Some(Decision::Rejected) => Standing::Rejected,
        Some(Decision::Demoted) => Standing::Demoted,
        Some(Decision::Approved) if rate_ok => Standing::Promoted,
        Some(Decision::Approved) => Standing::Demoted,
        None if rate_ok
            && pattern.successes >= thresholds.min_successes
            && pattern.hosts.len() >= thresholds.min_hosts as usize =>
        {
            Standing::Proposed
        }
        None => Standing::Learning,
    }
}

/// The observation's shape (see [`PatternKey::observation`]).
pub fn normalise(observed: &Value) -> Value {
    match observed {
        Value::Null | Value::Bool(_) => observed.clone(),
        Value::Number(_) => Value::String("<number>".to_owned()),
        Value::String(s) if s.is_empty() => Value::String(String::new()),
        Value::String(_) => Value::String("<text>".to_owned()),
        Value::Array(items) if items.is_empty() => Value::Array(Vec::new()),
        Value::Array(items) => {
            let mut shapes: Vec<Value> = items.iter().map(normalise).collect();
            shapes.sort_by_key(Value::to_string);
            shapes.dedup();
            Value::Array(shapes)
        }
        Value::Object(map) => {
            // Keys sorted, so the same shape from two hosts is one pattern.
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, normalise(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
    }
}

/// The proposed L1 rule in the rules-file format (`crates/rules/l1-rules.toml`), with the
/// pattern's record and its parameters as comments (L1 rules take parameters from the site's
/// `[checks.<runbook>]`, so a person sets those when the pattern's parameters are not the
/// defaults).
pub fn proposed_rule(pattern: &Pattern) -> String {
    let key = &pattern.key;
    let mut text = format!(
        "# Proposed by the L2 flywheel ({}): {} of {} plans verified on {} hosts.\n# Observation shape: {}\n",
        pattern.id,
        pattern.successes,
        pattern.attempts,
        pattern.hosts.len(),
        key.observation
    );
    if !key.params.is_empty() {
        text.push_str(&format!(
            "# Set in the site configuration: [checks.{}]",
            key.runbook
        ));
        for (name, value) in &key.params {
            text.push_str(&format!(" {name} = {value}"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "[[rule]]\nid = \"L1-FLY-{}\"\ncheck = \"{}\"\nrunbook = \"{}\"\npriority = 90\n",
        &pattern.id[3..],
        key.check,
        key.runbook
    ));
    text
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{standing:<9}` lines up a listing.
        f.pad(match self {
            Standing::Learning => "learning",
            Standing::Proposed => "proposed",
            Standing::Promoted => "promoted",
            Standing::Demoted => "demoted",
            Standing::Rejected => "rejected",
        })
    }
}

fn pattern_id(key: &PatternKey) -> String {
    let mut hasher = Sha256::new();
    for part in [&key.check, &key.observation, &key.runbook] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    for (name, value) in &key.params {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    format!("fw-{}", &hex::encode(hasher.finalize())[..10])
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::json;

    use super::*;

    fn outcome(host: &str, fixed: bool, observed: Value) -> Outcome {
        Outcome {
            check: "LIN-SSH-001".to_owned(),
            observed,
            runbook: "LIN-SSH-001".to_owned(),
            params: BTreeMap::new(),
            host: host.to_owned(),
            fixed,
            at: 1_780_000_000,
        }
    }

    #[test]
    fn a_pattern_is_proposed_after_five_fixes_on_two_hosts_at_ninety_percent() {
        let observed = json!({"permit_root_login": "yes", "files": ["/etc/ssh/sshd_config"]});
        let mut outcomes: Vec<Outcome> = (0..4)
            .map(|_| outcome("pc1", true, observed.clone()))
            .collect();
        let t = Thresholds::DEFAULT;
        let one = |outcomes: &[Outcome]| patterns(outcomes).remove(0);
        // Four fixes on one host: still learning.
        assert_eq!(standing(&one(&outcomes), &t, None), Standing::Learning);
        // A fifth on another host (a different file list is the same shape).
        outcomes.push(outcome(
            "pc2",
            true,
            json!({"permit_root_login": "without-password", "files": ["/etc/ssh/x", "/etc/ssh/y"]}),
        ));
        let pattern = one(&outcomes);
        assert_eq!(
            (pattern.attempts, pattern.successes, pattern.hosts.len()),
            (5, 5, 2)
        );
        assert_eq!(standing(&pattern, &t, None), Standing::Proposed);
        assert_eq!(
            standing(&pattern, &t, Some(Decision::Rejected)),
            Standing::Rejected
        );
        assert_eq!(
            standing(&pattern, &t, Some(Decision::Approved)),
            Standing::Promoted
        );
        // One failure in six is 83 %: below 90 %, a promoted rule is demoted.
        outcomes.push(outcome("pc3", false, observed.clone()));
        let pattern = one(&outcomes);
        assert_eq!(standing(&pattern, &t, None), Standing::Learning);
        assert_eq!(
            standing(&pattern, &t, Some(Decision::Approved)),
            Standing::Demoted
        );
        expect![[r##"
            # Proposed by the L2 flywheel (fw-cfe8383c82): 5 of 6 plans verified on 2 hosts.
            # Observation shape: {"files":["<text>"],"permit_root_login":"<text>"}
            [[rule]]
            id = "L1-FLY-cfe8383c82"
            check = "LIN-SSH-001"
            runbook = "LIN-SSH-001"
            priority = 90
        "##]]
        .assert_eq(&proposed_rule(&pattern));
    }

    #[test]
    fn different_parameters_or_shapes_are_different_lessons() {
        let mut with_params = outcome("pc1", true, json!({"a": true}));
        with_params
            .params
            .insert("max_days".to_owned(), "90".to_owned());
        let outcomes = vec![
            outcome("pc1", true, json!({"a": true})),
            outcome("pc1", true, json!({"a": false})),
            outcome("pc1", true, json!({"a": []})),
            with_params,
        ];
        assert_eq!(patterns(&outcomes).len(), 4);
    }
}
