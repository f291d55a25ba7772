//! Turning a detect script's output into a check outcome: pass, fail, error or skipped.
//!
//! The contract with detect scripts: stdout is exactly one JSON object.
//! `{"applicable": false, "reason": "…"}` means the check does not apply to this machine.
//! Anything else that does not satisfy the expectations is `fail`; output that cannot be
//! read against them is `error`, never `pass`.

use std::fmt;

use serde_json::Value;

use crate::param::ResolvedParams;
use crate::runbook::{ExpectOp, Expectation, Operand, Runbook};

/// The result of one check on one target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Error,
    Skipped,
}

/// A check's status plus what was seen and why.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    pub status: CheckStatus,
    /// The detect output (or `null` when there was none).
    pub observed: Value,
    /// The expectations in words.
    pub expected: String,
    /// Why the status is what it is; empty for a plain pass.
    pub reason: String,
}

/// Evaluates detect output (`stdout` of a script that exited 0) against a runbook.
pub fn evaluate(runbook: &Runbook, params: &ResolvedParams, stdout: &str) -> CheckOutcome {
    let expected = describe(&runbook.expect, params);
    let observed: Value = match serde_json::from_str(stdout.trim()) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) | Err(_) => {
            return CheckOutcome {
                status: CheckStatus::Error,
                observed: Value::Null,
                expected,
                reason: format!("detect output is not one JSON object: {}", excerpt(stdout)),
            };
        }
    };
    if observed.get("applicable") == Some(&Value::Bool(false)) {
        let reason = observed
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("not applicable to this machine")
            .to_owned();
        return CheckOutcome {
            status: CheckStatus::Skipped,
            observed,
            expected,
            reason,
        };
    }
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    for expectation in &runbook.expect {
        match check_one(expectation, params, &observed) {
            Verdict::Holds => {}
            Verdict::Fails(reason) => failures.push(reason),
            Verdict::Unreadable(reason) => errors.push(reason),
        }
    }
    let (status, reasons) = if !errors.is_empty() {
        (CheckStatus::Error, errors)
    } else if !failures.is_empty() {
        (CheckStatus::Fail, failures)
    } else {
        (CheckStatus::Pass, Vec::new())
    };
    CheckOutcome {
        status,
        observed,
        expected,
        reason: reasons.join("; "),
    }
}

/// Whether every expectation holds on `observed` (a missing field or a type mismatch counts as not holding).
pub fn all_hold(expect: &[Expectation], observed: &Value) -> bool {
    let params = ResolvedParams::default();
    expect
        .iter()
        .all(|e| matches!(check_one(e, &params, observed), Verdict::Holds))
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Error => "error",
            CheckStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Verdict {
    Holds,
    Fails(String),
    Unreadable(String),
}

fn check_one(expectation: &Expectation, params: &ResolvedParams, observed: &Value) -> Verdict {
    let field = &expectation.field;
    let Some(actual) = lookup(observed, field) else {
        return Verdict::Unreadable(format!("detect output has no field `{field}`"));
    };
    let operand = match resolve_operand(&expectation.operand, params) {
        Ok(operand) => operand,
        Err(reason) => return Verdict::Unreadable(reason),
    };
    let holds = match expectation.op {
        ExpectOp::Eq => Ok(json_eq(actual, &operand)),
        ExpectOp::Ne => Ok(!json_eq(actual, &operand)),
        ExpectOp::In | ExpectOp::NotIn => match operand.as_array() {
            Some(items) => {
                let found = items.iter().any(|item| json_eq(actual, item));
                Ok(found == (expectation.op == ExpectOp::In))
            }
            None => Err(format!(
                "expectation on `{field}` needs a list to compare with"
            )),
        },
        ExpectOp::Lt | ExpectOp::Le | ExpectOp::Gt | ExpectOp::Ge => {
            match (actual.as_f64(), operand.as_f64()) {
                (Some(a), Some(b)) => Ok(match expectation.op {
                    ExpectOp::Lt => a < b,
                    ExpectOp::Le => a <= b,
                    ExpectOp::Gt => a > b,
                    _ => a >= b,
                }),
                _ => Err(format!(
                    "field `{field}` is {}, expected a number",
                    kind(actual)
                )),
            }
        }
        ExpectOp::Empty => match actual {
            Value::Array(items) => Ok(items.is_empty()),
            Value::Object(map) => Ok(map.is_empty()),
            Value::String(s) => Ok(s.is_empty()),
            _ => Err(format!(
                "field `{field}` is {}, expected a list",
                kind(actual)
            )),
        },
    };
    match holds {
        Ok(true) => Verdict::Holds,
        Ok(false) => Verdict::Fails(format!("`{field}` is {}", excerpt(&actual.to_string()))),
        Err(reason) => Verdict::Unreadable(reason),
    }
}

fn resolve_operand(operand: &Operand, params: &ResolvedParams) -> Result<Value, String> {
    match operand {
        Operand::None => Ok(Value::Null),
        Operand::Literal(value) => Ok(value.clone()),
        Operand::Param(name) => params
            .get(name)
            .map(|value| value.to_json())
            .ok_or_else(|| format!("parameter `{name}` has no value")),
    }
}

fn describe(expect: &[Expectation], params: &ResolvedParams) -> String {
    expect
        .iter()
        .map(|e| match (&e.operand, e.op) {
            (_, ExpectOp::Empty) => format!("{} {}", e.field, e.op),
            (Operand::Param(name), _) => {
                let value = params
                    .get(name)
                    .map(|v| v.to_json().to_string())
                    .unwrap_or_default();
                format!("{} {} {value} ({name})", e.field, e.op)
            }
            (operand, _) => {
                let value = resolve_operand(operand, params).unwrap_or(Value::Null);
                format!("{} {} {value}", e.field, e.op)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    let text = text.trim();
    if text.is_empty() {
        return "(empty)".to_owned();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::{Expect, expect};

    use super::*;
    use crate::param::{ParamSpec, ParamType, ParamValue, resolve_params};
    use crate::runbook::{Script, Severity, Shell};
    use crate::target::Platform;

    fn runbook(expect: Vec<Expectation>) -> Runbook {
        Runbook {
            id: "T-1".to_owned(),
            title: "t".to_owned(),
            description: String::new(),
            platforms: vec![Platform::Linux],
            severity: Severity::High,
            controls: Vec::new(),
            params: vec![ParamSpec {
                name: "max_days".to_owned(),
                ty: ParamType::Integer {
                    min: Some(1),
                    max: Some(365),
                },
                default: ParamValue::Integer(90),
                description: String::new(),
            }],
            detect: Script {
                shell: Shell::Sh,
                body: String::new(),
                source: "t.sh".to_owned(),
            },
            expect,
            remediate: None,
            verify: None,
            rollback: None,
            auto_heal: false,
            timeout: Duration::from_secs(5),
            interval: None,
        }
    }

    fn exp(field: &str, op: ExpectOp, operand: Operand) -> Expectation {
        Expectation {
            field: field.to_owned(),
            op,
            operand,
        }
    }

    #[track_caller]
    fn check(stdout: &str, expect: Expect) {
        let rb = runbook(vec![
            exp(
                "root_login",
                ExpectOp::In,
                Operand::Literal(serde_json::json!(["no", "prohibit-password"])),
            ),
            exp(
                "pass_max_days",
                ExpectOp::Le,
                Operand::Param("max_days".to_owned()),
            ),
            exp("world_writable", ExpectOp::Empty, Operand::None),
        ]);
        let params = resolve_params(&rb.params, &Default::default()).unwrap();
        let outcome = evaluate(&rb, &params, stdout);
        expect.assert_eq(&format!(
            "{}: {}\nexpected: {}",
            outcome.status, outcome.reason, outcome.expected
        ));
    }

    #[test]
    fn pass() {
        check(
            r#"{"root_login":"no","pass_max_days":60,"world_writable":[]}"#,
            expect![[r#"
                pass: 
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }

    #[test]
    fn fail_lists_every_failed_expectation() {
        check(
            r#"{"root_login":"yes","pass_max_days":99999,"world_writable":["/etc/x"]}"#,
            expect![[r#"
                fail: `root_login` is "yes"; `pass_max_days` is 99999; `world_writable` is ["/etc/x"]
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }

    #[test]
    fn missing_field_is_error_not_pass() {
        check(
            r#"{"root_login":"no","world_writable":[]}"#,
            expect![[r#"
                error: detect output has no field `pass_max_days`
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }

    #[test]
    fn wrong_type_is_error() {
        check(
            r#"{"root_login":"no","pass_max_days":"unknown","world_writable":[]}"#,
            expect![[r#"
                error: field `pass_max_days` is a string, expected a number
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }

    #[test]
    fn garbage_and_empty_output_are_errors() {
        check(
            "sh: 1: sshd: not found",
            expect![[r#"
                error: detect output is not one JSON object: sh: 1: sshd: not found
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
        check(
            "",
            expect![[r#"
                error: detect output is not one JSON object: (empty)
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
        check(
            "[1,2]",
            expect![[r#"
                error: detect output is not one JSON object: [1,2]
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }

    #[test]
    fn not_applicable_is_skipped() {
        check(
            r#"{"applicable":false,"reason":"openssh-server is not installed"}"#,
            expect![[r#"
                skipped: openssh-server is not installed
                expected: root_login in ["no","prohibit-password"]; pass_max_days ≤ 90 (max_days); world_writable is empty"#]],
        );
    }
}
