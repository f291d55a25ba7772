//! The rule file format (TOML) and its validation against the catalogue.

use serde::Deserialize;

use model::{ExpectOp, Expectation, Operand, Runbook};

use crate::{Action, Rule, RuleSet};

const EMBEDDED: &str = include_str!("../l1-rules.toml");

/// A rule file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct RuleError(pub Vec<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    check: String,
    #[serde(default)]
    runbook: Option<String>,
    #[serde(default = "default_action")]
    action: String,
    #[serde(default = "default_priority")]
    priority: u32,
    #[serde(default = "default_cooldown")]
    cooldown_secs: u64,
    #[serde(default)]
    when: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: String,
    op: String,
    #[serde(default)]
    value: Option<toml::Value>,
}

fn default_action() -> String {
    "remediate".to_owned()
}

const fn default_priority() -> u32 {
    100
}

const fn default_cooldown() -> u64 {
    300
}

/// The rules shipped with osiris, checked against `runbooks`.
pub fn embedded(runbooks: &[Runbook]) -> Result<RuleSet, RuleError> {
    parse("l1-rules.toml", EMBEDDED, runbooks)
}

/// The built-in rules with `local` (more rules in the same format, e.g. the flywheel's approved
/// ones) appended; `local_path` names them in messages.
pub fn embedded_with(
    runbooks: &[Runbook],
    local_path: &str,
    local: &str,
) -> Result<RuleSet, RuleError> {
    if local.trim().is_empty() {
        return embedded(runbooks);
    }
    parse(
        &format!("l1-rules.toml + {local_path}"),
        &format!("{EMBEDDED}\n{local}"),
        runbooks,
    )
}

/// Parses a rule file and checks every rule against the catalogue's runbooks.
pub fn parse(path: &str, text: &str, runbooks: &[Runbook]) -> Result<RuleSet, RuleError> {
    let file: RuleFile = toml::from_str(text)
        .map_err(|err| RuleError(vec![format!("{path}: {}", err.message())]))?;
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for raw in file.rule {
        let id = raw.id.clone();
        let mut problem =
            |message: String| problems.push(format!("{path}: rule `{id}`: {message}"));
        let id_ok = raw.id.len() >= 3
            && raw.id.len() <= 64
            && raw
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            problem("id must be 3-64 letters, digits, `-` or `_`".to_owned());
        }
        if !runbooks.iter().any(|rb| rb.id == raw.check) {
            problem(format!("check `{}` is not in the catalogue", raw.check));
        }
        let action = match raw.action.as_str() {
            "remediate" => {
                let runbook = raw.runbook.clone().unwrap_or_else(|| raw.check.clone());
                match runbooks.iter().find(|rb| rb.id == runbook) {
                    None => problem(format!("runbook `{runbook}` is not in the catalogue")),
                    Some(rb) if rb.remediate.is_none() => {
                        problem(format!("runbook `{runbook}` has no remediate script"));
                    }
                    Some(_) => {}
                }
                Action::Remediate { runbook }
            }
            "escalate" => {
                if raw.runbook.is_some() {
                    problem("an escalate rule takes no runbook".to_owned());
                }
                Action::Escalate
            }
            other => {
                problem(format!(
                    "unknown action `{other}` (known: remediate, escalate)"
                ));
                continue;
            }
        };
        let mut when = Vec::new();
        for condition in &raw.when {
            let Some(op) = ExpectOp::parse(&condition.op) else {
                problem(format!("unknown op `{}`", condition.op));
                continue;
            };
            let operand = match &condition.value {
                Some(value) => match serde_json::to_value(value) {
                    Ok(json) => Operand::Literal(json),
                    Err(err) => {
                        problem(format!("condition on `{}`: {err}", condition.field));
                        continue;
                    }
                },
                None => Operand::None,
            };
            if op.takes_operand() == matches!(operand, Operand::None) {
                problem(format!(
                    "condition on `{}`: op `{}` and value do not fit",
                    condition.field,
                    op.key()
                ));
                continue;
            }
            when.push(Expectation {
                field: condition.field.clone(),
                op,
                operand,
            });
        }
        if rules.iter().any(|r: &Rule| r.id == raw.id) {
            problem("id is used twice".to_owned());
        }
        rules.push(Rule {
            id: raw.id,
            check: raw.check,
            when,
            action,
            priority: raw.priority,
            cooldown_secs: raw.cooldown_secs,
        });
    }
    if !problems.is_empty() {
        return Err(RuleError(problems));
    }
    rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    Ok(RuleSet { rules })
}
