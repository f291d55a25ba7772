//! PowerShell batches: the script that runs a set of Windows checks (or one remediation) in one
//! command, and the one JSON document it answers with (docs/WINDOWS-PROTOCOL.md §2–§3).
//!
//! Parameters travel as base64 JSON data decoded on the host; script bodies travel as
//! single-quoted here-strings, so nothing in a parameter or a body is ever expanded as code.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use model::ResolvedParams;

/// What a PowerShell batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Detect,
    Remediate,
    Rollback,
}

/// One script of a batch.
#[derive(Debug, Clone, Copy)]
pub struct PsCheck<'a> {
    pub id: &'a str,
    pub body: &'a str,
    pub params: &'a ResolvedParams,
}

/// Why a batch could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A body line starts with `'@`, which would end its here-string early.
    #[error(
        "{id}: line {line} of the script starts with `'@`, which would end the here-string that carries it; change that line"
    )]
    HereStringTerminator { id: String, line: usize },
}

/// Why a batch's output could not be read; every check of the batch becomes an `error` with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("PowerShell output is not UTF-8")]
    NotUtf8,
    #[error("PowerShell output is not one JSON document ({reason}): {excerpt}")]
    NotJson { reason: String, excerpt: String },
    #[error("PowerShell output is not an osiris v1 result document: {0}")]
    Shape(String),
}

/// A check's answer from the batch: its output object, or the error its script raised.
pub type PsResult = Result<Value, String>;

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Detect => "detect",
            Phase::Remediate => "remediate",
            Phase::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds the batch script for `checks`, run in order, after the catalogue's `prelude`.
pub fn build(phase: Phase, prelude: &str, checks: &[PsCheck<'_>]) -> Result<String, BuildError> {
    let input = serde_json::json!({
        "osiris": 1,
        "phase": phase.as_str(),
        "checks": checks.iter().map(|check| {
            let params: Map<String, Value> = check
                .params
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_json()))
                .collect();
            serde_json::json!({"id": check.id, "params": params})
        }).collect::<Vec<_>>(),
    });
    let input = base64::engine::general_purpose::STANDARD.encode(input.to_string());
    let mut script =
        String::with_capacity(HEADER.len() + input.len() + prelude.len() + RUNNER.len() + 4096);
    script.push_str(HEADER);
    script.push_str(&format!(
        "$OsirisInput = ConvertFrom-Json ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('{input}')))\n"
    ));
    if !prelude.is_empty() {
        script.push_str(prelude);
        if !prelude.ends_with('\n') {
            script.push('\n');
        }
    }
    script.push_str("$OsirisBodies = @{}\n");
    for check in checks {
        if let Some(line) = check.body.lines().position(|line| line.starts_with("'@")) {
            return Err(BuildError::HereStringTerminator {
                id: check.id.to_owned(),
                line: line + 1,
            });
        }
        // IDs come from the catalogue (validated there), but quote them anyway: `'` doubles.
        script.push_str(&format!(
            "$OsirisBodies['{}'] = @'\n",
            check.id.replace('\'', "''")
        ));
        script.push_str(check.body);
        if !check.body.ends_with('\n') {
            script.push('\n');
        }
        script.push_str("'@\n");
    }
    script.push_str(RUNNER);
    Ok(script)
}

/// Reads a batch's stdout: one result per check in `ids`, in order.
pub fn parse(stdout: &[u8], phase: Phase, ids: &[&str]) -> Result<Vec<PsResult>, ParseError> {
    let text = std::str::from_utf8(stdout).map_err(|_| ParseError::NotUtf8)?;
    let text = text.trim_start_matches('\u{feff}').trim();
    let doc: Value = serde_json::from_str(text).map_err(|err| ParseError::NotJson {
        reason: err.to_string(),
        excerpt: excerpt(text),
    })?;
    let shape = |msg: String| ParseError::Shape(msg);
    let Value::Object(doc) = doc else {
        return Err(shape("the document is not a JSON object".to_owned()));
    };
    if doc.get("osiris") != Some(&Value::from(1)) {
        return Err(shape("`osiris` is not 1".to_owned()));
    }
    if doc.get("phase").and_then(Value::as_str) != Some(phase.as_str()) {
        return Err(shape(format!(
            "`phase` is {}, expected \"{phase}\"",
            doc.get("phase")
                .map_or_else(|| "missing".to_owned(), Value::to_string)
        )));
    }
    // PowerShell 5.1 writes a one-element array as that element when it is not forced to an array.
    let results = match doc.get("results") {
        Some(Value::Array(items)) => items.clone(),
        Some(item @ Value::Object(_)) => vec![item.clone()],
        _ => return Err(shape("`results` is missing or not an array".to_owned())),
    };
    if results.len() != ids.len() {
        return Err(shape(format!(
            "{} results for {} checks",
            results.len(),
            ids.len()
        )));
    }
    results
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(idx, (result, id))| {
            let Value::Object(mut result) = result else {
                return Err(shape(format!("result {idx} is not an object")));
            };
            if result.get("id").and_then(Value::as_str) != Some(*id) {
                return Err(shape(format!(
                    "result {idx} is for {}, expected {id}",
                    result
                        .get("id")
                        .map_or_else(|| "no id".to_owned(), Value::to_string)
                )));
            }
            match result.get("ok") {
                Some(Value::Bool(true)) => Ok(Ok(result.remove("output").unwrap_or(Value::Null))),
                Some(Value::Bool(false)) => Ok(Err(result
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the script failed without a message")
                    .to_owned())),
                _ => Err(shape(format!("result {idx} ({id}) has no boolean `ok`"))),
            }
        })
        .collect()
}

const HEADER: &str = "# osiris powershell batch v1\n";

/// Runs every body in input order, each in its own script block under try/catch, and writes
/// one JSON document. `$Params` is the check's parameters (data, never code).
const RUNNER: &str = r#"$OsirisResults = New-Object System.Collections.Generic.List[object]
foreach ($OsirisCheck in @($OsirisInput.checks)) {
    $Params = $OsirisCheck.params
    try {
        $OsirisBlock = [ScriptBlock]::Create($OsirisBodies[$OsirisCheck.id])
        $OsirisOut = @(& $OsirisBlock)
        if ($OsirisOut.Count -ne 1) {
            throw "the script emitted $($OsirisOut.Count) objects instead of one"
        }
        $OsirisResults.Add([ordered]@{ id = $OsirisCheck.id; ok = $true; output = $OsirisOut[0] })
    } catch {
        $OsirisResults.Add([ordered]@{ id = $OsirisCheck.id; ok = $false; error = [string]$_.Exception.Message })
    }
}
$OsirisDoc = [ordered]@{ osiris = 1; phase = $OsirisInput.phase; results = $OsirisResults.ToArray() }
[Console]::Out.Write((ConvertTo-Json -InputObject $OsirisDoc -Depth 10 -Compress))
exit 0
"#;

fn excerpt(text: &str) -> String {
    let cut = text.char_indices().nth(160).map_or(text.len(), |(i, _)| i);
    let mut out: String = text[..cut]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{ParamSpec, ParamType, ParamValue, resolve_params};
    use std::collections::BTreeMap;

    fn params(value: &str) -> ResolvedParams {
        let spec = ParamSpec {
            name: "allow".to_owned(),
            ty: ParamType::String { max_len: 200 },
            default: ParamValue::Text(String::new()),
            description: String::new(),
        };
        let mut overrides = BTreeMap::new();
        overrides.insert("allow".to_owned(), ParamValue::Text(value.to_owned()));
        resolve_params(&[spec], &overrides).expect("valid params")
    }

    fn decode_input(script: &str) -> Value {
        let line = script
            .lines()
            .find(|l| l.starts_with("$OsirisInput = "))
            .expect("input line");
        let start = line.find("FromBase64String('").expect("b64 start") + 18;
        let end = line[start..].find('\'').expect("b64 end") + start;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&line[start..end])
            .expect("base64");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn hostile_parameters_travel_only_as_base64_data() {
        let hostile = "x'; Remove-Item C:\\ -Recurse; $(whoami) `n \"@ '@";
        let p = params(hostile);
        let script = build(
            Phase::Detect,
            "function Get-Osiris { 1 }\n",
            &[PsCheck {
                id: "WIN-T-001",
                body: "[ordered]@{ allow = $Params.allow }",
                params: &p,
            }],
        )
        .expect("builds");
        assert!(!script.contains("Remove-Item"), "{script}");
        assert!(!script.contains("whoami"));
        let input = decode_input(&script);
        assert_eq!(input["phase"], "detect");
        assert_eq!(input["checks"][0]["id"], "WIN-T-001");
        assert_eq!(input["checks"][0]["params"]["allow"], hostile);
        // Body verbatim inside a single-quoted here-string, prelude once, before the bodies.
        assert!(script.contains("@'\n[ordered]@{ allow = $Params.allow }\n'@\n"));
        assert_eq!(script.matches("function Get-Osiris").count(), 1);
        assert!(script.find("function Get-Osiris") < script.find("$OsirisBodies = @{}"));
    }

    #[test]
    fn a_body_that_would_end_its_here_string_is_refused() {
        let p = params("");
        let err = build(
            Phase::Remediate,
            "",
            &[PsCheck {
                id: "WIN-T-002",
                body: "Write-Output 1\n'@\nRemove-Item x\n",
                params: &p,
            }],
        )
        .expect_err("must refuse");
        assert_eq!(
            err,
            BuildError::HereStringTerminator {
                id: "WIN-T-002".to_owned(),
                line: 2
            }
        );
    }

    #[test]
    fn results_are_read_in_order_with_errors_per_check() {
        let out = br#"{"osiris":1,"phase":"detect","results":[{"id":"A","ok":true,"output":{"x":1}},{"id":"B","ok":false,"error":"Access is denied."}]}"#;
        let results = parse(out, Phase::Detect, &["A", "B"]).expect("parses");
        assert_eq!(results[0], Ok(serde_json::json!({"x": 1})));
        assert_eq!(results[1], Err("Access is denied.".to_owned()));
    }

    #[test]
    fn a_single_result_unwrapped_by_powershell_is_accepted() {
        let out = "\u{feff}{\"osiris\":1,\"phase\":\"remediate\",\"results\":{\"id\":\"A\",\"ok\":true,\"output\":{\"changed\":true}}}\r\n";
        let results = parse(out.as_bytes(), Phase::Remediate, &["A"]).expect("parses");
        assert_eq!(results, vec![Ok(serde_json::json!({"changed": true}))]);
    }

    #[test]
    fn malformed_documents_are_errors_that_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe", "not UTF-8"),
            (b"Der Befehl wurde nicht gefunden", "not one JSON document"),
            (br#"[1,2]"#, "not a JSON object"),
            (br#"{"osiris":2,"phase":"detect","results":[]}"#, "`osiris` is not 1"),
            (br#"{"osiris":1,"phase":"remediate","results":[]}"#, "expected \"detect\""),
            (br#"{"osiris":1,"phase":"detect","results":[]}"#, "0 results for 2 checks"),
            (
                br#"{"osiris":1,"phase":"detect","results":[{"id":"B","ok":true},{"id":"A","ok":true}]}"#,
                "result 0 is for \"B\", expected A",
            ),
            (
                br#"{"osiris":1,"phase":"detect","results":[{"id":"A","ok":"yes"},{"id":"B","ok":true}]}"#,
                "no boolean `ok`",
            ),
        ];
        for (out, want) in cases {
            let err = parse(out, Phase::Detect, &["A", "B"]).expect_err("must fail");
            assert!(
                err.to_string().contains(want),
                "{err} should contain {want}"
            );
        }
    }
}
