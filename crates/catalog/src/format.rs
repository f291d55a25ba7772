//! The on-disk runbook format (one TOML file per runbook) and its conversion into the model.

use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr as _;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use model::{
    Control, ExpectOp, Expectation, Framework, Operand, ParamSpec, ParamType, ParamValue, Platform,
    Runbook, Script, Severity, Shell,
};

use crate::{CatalogError, Frameworks, SourceFile};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbookFile {
    /// Stable ID; the file must be named `<id>.toml`.
    id: Spanned<String>,
    title: String,
    description: String,
    platforms: Vec<Spanned<String>>,
    severity: Spanned<String>,
    /// Whether L1 may remediate without a human; off unless said.
    #[serde(default)]
    auto_heal: bool,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// How often the check must run while it passes, e.g. `"24h"`; absent: every scan.
    interval: Option<Spanned<String>>,
    controls: Spanned<ControlsFile>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<ParamFile>>,
    detect: ScriptFile,
    expect: Spanned<Vec<Spanned<ExpectFile>>>,
    remediate: Option<ScriptFile>,
    verify: Option<ScriptFile>,
    rollback: Option<ScriptFile>,
}

/// Controls per framework. The field names are the framework keys of `model::Framework`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsFile {
    #[serde(default)]
    hipaa: Vec<Spanned<ControlEntry>>,
    #[serde(default)]
    soc2: Vec<Spanned<ControlEntry>>,
    #[serde(default)]
    pci_dss: Vec<Spanned<ControlEntry>>,
    #[serde(default)]
    nist_csf: Vec<Spanned<ControlEntry>>,
    #[serde(default)]
    cis: Vec<Spanned<ControlEntry>>,
}

/// `"164.312(b)"`, or `{ id = "5.4", partial = "what the check leaves out" }` when the check is
/// weaker than the control's text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ControlEntry {
    Full(String),
    Partial { id: String, partial: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamFile {
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
    default: Option<toml::Value>,
    min: Option<i64>,
    max: Option<i64>,
    max_len: Option<usize>,
    values: Option<Vec<String>>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    #[serde(default = "default_shell")]
    shell: Spanned<String>,
    /// Path of the script, relative to the runbook file's directory (not for `shell = "cloud"`).
    #[serde(default)]
    script: Option<Spanned<String>>,
    /// The `cloud` crate's collector that observes the tenant (only for `shell = "cloud"`).
    #[serde(default)]
    collector: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    field: String,
    op: Spanned<String>,
    value: Option<toml::Value>,
    param: Option<String>,
}

/// Shared helpers prepended to every `sh` script in the same platform directory.
const PRELUDE: &str = "lib/prelude.sh";

const fn default_timeout() -> u64 {
    30
}

fn default_shell() -> Spanned<String> {
    Spanned::new(0..0, "sh".to_owned())
}

/// The first forbidden construct in a PowerShell body: `(line, column, message)`, 1-based.
///
/// Bodies travel inside single-quoted here-strings, so a line starting with `'@` would end the
/// here-string early; and runbooks must never build code from data, so `Invoke-Expression`,
/// its alias `iex` and `Add-Type` are rejected.
pub(crate) fn powershell_problem(body: &str) -> Option<(usize, usize, String)> {
    for (line_idx, line) in body.lines().enumerate() {
        // Only a terminator in column 1 ends a here-string; an indented `'@` is plain text.
        if line.starts_with("'@") {
            return Some((
                line_idx + 1,
                1,
                "a line starting with `'@` would end the here-string the body travels in; indent it or rewrite the string".to_owned(),
            ));
        }
        let code = line.split('#').next().unwrap_or("");
        let lower = code.to_ascii_lowercase();
        for word in ["invoke-expression", "iex", "add-type"] {
            if let Some(column) = find_word(&lower, word) {
                return Some((
                    line_idx + 1,
                    column + 1,
                    format!(
                        "`{word}` builds or compiles code at run time; runbooks must only read data, so use cmdlets, CIM or the registry instead"
                    ),
                ));
            }
        }
    }
    None
}

/// Parses one runbook file; returns the runbook and the line of its `id`.
pub(crate) fn parse_runbook(
    file: &SourceFile<'_>,
    scripts: &BTreeMap<&str, &str>,
    frameworks: &Frameworks,
) -> Result<(Runbook, usize), Vec<CatalogError>> {
    let mut cx = Cx {
        file,
        errors: Vec::new(),
    };
    let raw: RunbookFile = match toml::from_str(file.text) {
        Ok(raw) => raw,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            cx.error(span, err.message().to_owned());
            return Err(cx.errors);
        }
    };

    let id = cx.runbook_id(&raw.id);

    let mut platforms = Vec::new();
    for platform in &raw.platforms {
        match platform.get_ref().parse::<Platform>() {
            Ok(p) => platforms.push(p),
            Err(err) => cx.error(platform.span(), err.to_string()),
        }
    }
    if raw.platforms.is_empty() {
        cx.error(
            raw.id.span(),
            "`platforms` is empty: name at least one platform".to_owned(),
        );
    }
    // The one parser of severity names, with its message (known names listed).
    let severity = Severity::from_str(raw.severity.get_ref()).unwrap_or_else(|err| {
        cx.error(raw.severity.span(), err.to_string());
        Severity::Low
    });
    if raw.timeout_secs == 0 || raw.timeout_secs > 3600 {
        cx.error(
            raw.id.span(),
            format!(
                "timeout_secs = {} is out of range 1..=3600",
                raw.timeout_secs
            ),
        );
    }

    let interval = raw.interval.as_ref().and_then(|interval| {
        parse_interval(interval.get_ref())
            .map_err(|err| cx.error(interval.span(), err))
            .ok()
    });

    let controls = cx.controls(&id, raw.controls.get_ref(), frameworks);
    if controls.is_empty() && cx.errors.is_empty() {
        cx.error(
            raw.controls.span(),
            "no framework controls: map the runbook to at least one control".to_owned(),
        );
    }

    let mut params = Vec::new();
    for (name, param) in &raw.params {
        if let Some(spec) = cx.param(name, param) {
            params.push(spec);
        }
    }

    let Steps {
        detect,
        remediate,
        verify,
        rollback,
    } = cx.steps(&raw, scripts);
    let expect = cx.expectations(&raw.expect, &params);
    if let Some(detect) = &detect {
        let cloud_platforms = platforms.iter().filter(|p| p.is_cloud()).count();
        let is_cloud = detect.shell == Shell::Cloud;
        if (cloud_platforms > 0 && !is_cloud) || (is_cloud && cloud_platforms != platforms.len()) {
            cx.error(
                raw.id.span(),
                "a cloud platform's checks detect with `shell = \"cloud\"` and name only cloud platforms; host checks name no cloud platform".to_owned(),
            );
        }
        if is_cloud && (raw.remediate.is_some() || raw.rollback.is_some()) {
            cx.error(
                raw.id.span(),
                "cloud checks only observe the tenant: drop `remediate` and `rollback`".to_owned(),
            );
        }
    }

    let id_line = cx.line_col(raw.id.span().start).0;
    let Some(detect) = detect.filter(|_| cx.errors.is_empty()) else {
        return Err(cx.errors);
    };
    let runbook = Runbook {
        id,
        title: raw.title,
        description: raw.description,
        platforms,
        severity,
        controls,
        params,
        detect,
        expect,
        remediate,
        verify,
        rollback,
        auto_heal: raw.auto_heal,
        timeout: Duration::from_secs(raw.timeout_secs),
        interval,
    };
    Ok((runbook, id_line))
}

/// `interval = "30m"`, `"6h"`, `"1d"`: a whole number of minutes, hours or days, from 10 minutes
/// to 30 days.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "interval {text:?} is not a duration: write a whole number of minutes, hours or days, such as \"30m\", \"6h\" or \"1d\" (10 minutes to 30 days)"
        )
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let count: u64 = match number.parse() {
        Ok(count) if number.bytes().all(|b| b.is_ascii_digit()) => count,
        _ => return Err(bad()),
    };
    let minutes = match unit {
        "m" => count,
        "h" => count.saturating_mul(60),
        "d" => count.saturating_mul(24 * 60),
        _ => return Err(bad()),
    };
    if !(10..=30 * 24 * 60).contains(&minutes) {
        return Err(bad());
    }
    Ok(Duration::from_secs(minutes * 60))
}

/// The char column of `word` in `line` where it stands alone (not inside a longer identifier).
fn find_word(line: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$';
    let mut start = 0;
    while let Some(found) = line[start..].find(word) {
        let at = start + found;
        let end = at + word.len();
        let before_ok = line[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let after_ok = line[end..].chars().next().is_none_or(|c| !is_ident(c));
        if before_ok && after_ok {
            return Some(line[..at].chars().count());
        }
        start = end;
    }
    None
}

struct Cx<'a> {
    file: &'a SourceFile<'a>,
    errors: Vec<CatalogError>,
}

/// A runbook's scripts, each present only when its file exists and passed its checks.
struct Steps {
    detect: Option<Script>,
    remediate: Option<Script>,
    verify: Option<Script>,
    rollback: Option<Script>,
}

impl Cx<'_> {
    /// The runbook's controls, each checked against its framework's control catalogue.
    fn controls(
        &mut self,
        runbook_id: &str,
        raw: &ControlsFile,
        frameworks: &Frameworks,
    ) -> Vec<Control> {
        let per_framework = [
            (Framework::Hipaa, &raw.hipaa),
            (Framework::Soc2, &raw.soc2),
            (Framework::PciDss, &raw.pci_dss),
            (Framework::NistCsf, &raw.nist_csf),
            (Framework::Cis, &raw.cis),
        ];
        let mut res = Vec::new();
        for (framework, entries) in per_framework {
            for entry in entries {
                let (id, partial) = match entry.get_ref() {
                    ControlEntry::Full(id) => (id.clone(), None),
                    ControlEntry::Partial { id, partial } => (id.clone(), Some(partial.clone())),
                };
                if partial.as_deref().is_some_and(|p| p.trim().is_empty()) {
                    self.error(
                        entry.span(),
                        format!("runbook {runbook_id}: partial mapping to {} `{id}` needs the reason (what the check leaves out)", framework.label()),
                    );
                }
                match frameworks.get(framework).map(|c| (c, c.control(&id))) {
                    Some((_, Some(def))) if def.not_applicable.is_some() => self.error(
                        entry.span(),
                        format!(
                            "runbook {runbook_id} maps to {} control `{id}`, which frameworks/{}.toml marks not applicable; remove the mapping or the mark",
                            framework.label(),
                            framework.key()
                        ),
                    ),
                    Some((_, Some(_))) => {}
                    Some((catalog, None)) => self.error(
                        entry.span(),
                        format!(
                            "runbook {runbook_id} maps to unknown {} control `{id}`: {} has no such control (see frameworks/{}.toml, or `osiris catalog controls {}`)",
                            framework.label(),
                            catalog.name,
                            framework.key(),
                            framework.cli_name()
                        ),
                    ),
                    None => {}
                }
                res.push(Control {
                    framework,
                    id,
                    partial,
                });
            }
        }
        res
    }

    /// The runbook id, checked for its form and against the file name.
    fn runbook_id(&mut self, raw: &Spanned<String>) -> String {
        let id = raw.get_ref().clone();
        let id_valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-');
        if !id_valid {
            self.error(raw.span(), format!("runbook id `{id}` is invalid: use uppercase letters, digits and `-`, like `LIN-SSH-001`"));
        }
        let stem = self
            .file
            .path
            .rsplit('/')
            .next()
            .unwrap_or(self.file.path)
            .trim_end_matches(".toml");
        if stem != id {
            self.error(
                raw.span(),
                format!(
                    "runbook id `{id}` does not match its file name `{stem}.toml`; rename one of them"
                ),
            );
        }
        id
    }

    /// The detect, remediate, verify and rollback scripts, and the rules that tie them together.
    fn steps(&mut self, raw: &RunbookFile, scripts: &BTreeMap<&str, &str>) -> Steps {
        let steps = Steps {
            detect: self.script(&raw.detect, scripts),
            remediate: raw.remediate.as_ref().and_then(|s| self.script(s, scripts)),
            verify: raw.verify.as_ref().and_then(|s| self.script(s, scripts)),
            rollback: raw.rollback.as_ref().and_then(|s| self.script(s, scripts)),
        };
        if raw.verify.is_some() && raw.remediate.is_none() {
            self.error(
                raw.id.span(),
                "`verify` without `remediate`: add the remediation or drop the verify script"
                    .to_owned(),
            );
        }
        if raw.auto_heal && raw.remediate.is_none() {
            self.error(
                raw.id.span(),
                "`auto_heal = true` but there is no `remediate` script".to_owned(),
            );
        }
        steps
    }

    /// Every valid `[[expect]]` entry; at least one is required.
    fn expectations(
        &mut self,
        raw: &Spanned<Vec<Spanned<ExpectFile>>>,
        params: &[ParamSpec],
    ) -> Vec<Expectation> {
        if raw.get_ref().is_empty() {
            self.error(
                raw.span(),
                "no `[[expect]]` entries: a check needs at least one expectation".to_owned(),
            );
        }
        raw.get_ref()
            .iter()
            .filter_map(|entry| self.expectation(entry, params))
            .collect()
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        let (line, column) = self.line_col(span.start);
        self.errors.push(CatalogError {
            path: self.file.path.to_owned(),
            line,
            column,
            message,
        });
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.file.text[..offset.min(self.file.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn script(&mut self, raw: &ScriptFile, scripts: &BTreeMap<&str, &str>) -> Option<Script> {
        let shell = match raw.shell.get_ref().as_str() {
            "sh" => Shell::Sh,
            "powershell" => Shell::PowerShell,
            "cloud" => return self.collector(raw),
            other => {
                self.error(
                    raw.shell.span(),
                    format!("unknown shell `{other}` (known: sh, powershell, cloud)"),
                );
                return None;
            }
        };
        if let Some(collector) = &raw.collector {
            self.error(
                collector.span(),
                "`collector` belongs to `shell = \"cloud\"` steps; a script step names its `script`"
                    .to_owned(),
            );
            return None;
        }
        let Some(script) = &raw.script else {
            self.error(
                raw.shell.span(),
                "this step has no `script`: name the script file (relative to the runbook's directory)"
                    .to_owned(),
            );
            return None;
        };
        let dir = self.file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let rel = script.get_ref();
        let path = if dir.is_empty() {
            rel.clone()
        } else {
            format!("{dir}/{rel}")
        };
        let want_ext = if shell == Shell::Sh { ".sh" } else { ".ps1" };
        if !rel.ends_with(want_ext) {
            self.error(
                script.span(),
                format!("a {} script must end in `{want_ext}`", raw.shell.get_ref()),
            );
            return None;
        }
        match scripts.get(path.as_str()) {
            Some(body) if !body.trim().is_empty() => {
                // PowerShell bodies travel in a here-string and must not build code from data.
                if shell == Shell::PowerShell
                    && let Some((line, column, problem)) = powershell_problem(body)
                {
                    self.errors.push(CatalogError {
                        path: path.clone(),
                        line,
                        column,
                        message: problem,
                    });
                    return None;
                }
                // Every sh script of a platform directory runs after that directory's prelude.
                let prelude_path = if dir.is_empty() {
                    PRELUDE.to_owned()
                } else {
                    format!("{dir}/{PRELUDE}")
                };
                let body = match scripts.get(prelude_path.as_str()) {
                    Some(prelude) if shell == Shell::Sh => {
                        format!("{prelude}\n# --- {path}\n{body}")
                    }
                    _ => (*body).to_owned(),
                };
                Some(Script {
                    shell,
                    body,
                    source: path,
                })
            }
            Some(_) => {
                self.error(script.span(), format!("script `{path}` is empty"));
                None
            }
            None => {
                self.error(script.span(), format!("script `{path}` not found; create it or fix the path (relative to the runbook's directory)"));
                None
            }
        }
    }

    /// A cloud step: the name of a typed collector (`lower_snake_case`), never a script.
    fn collector(&mut self, raw: &ScriptFile) -> Option<Script> {
        if let Some(script) = &raw.script {
            self.error(
                script.span(),
                "a `shell = \"cloud\"` step runs no script: name its `collector` instead"
                    .to_owned(),
            );
            return None;
        }
        let Some(collector) = &raw.collector else {
            self.error(
                raw.shell.span(),
                "a `shell = \"cloud\"` step needs a `collector` (the cloud crate's observation, e.g. `mfa_registration`)"
                    .to_owned(),
            );
            return None;
        };
        let name = collector.get_ref();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            self.error(
                collector.span(),
                format!("collector `{name}` is invalid: use lowercase letters, digits and `_`"),
            );
            return None;
        }
        Some(Script {
            shell: Shell::Cloud,
            body: name.clone(),
            source: format!("cloud:{name}"),
        })
    }

    fn param(&mut self, name: &str, raw: &Spanned<ParamFile>) -> Option<ParamSpec> {
        let span = raw.span();
        let raw = raw.get_ref();
        let Some(ty_name) = &raw.ty else {
            self.error(
                span,
                format!(
                    "parameter `{name}` has no `type` (one of integer, boolean, string, enum, path)"
                ),
            );
            return None;
        };
        let ty = match ty_name.get_ref().as_str() {
            "integer" => ParamType::Integer {
                min: raw.min,
                max: raw.max,
            },
            "boolean" => ParamType::Boolean,
            "string" => ParamType::String {
                max_len: raw.max_len.unwrap_or(256),
            },
            "path" => ParamType::Path,
            "enum" => match &raw.values {
                Some(values) if !values.is_empty() => ParamType::Enum {
                    values: values.clone(),
                },
                _ => {
                    self.error(
                        span,
                        format!("enum parameter `{name}` needs a non-empty `values` list"),
                    );
                    return None;
                }
            },
            other => {
                self.error(
                    ty_name.span(),
                    format!("parameter `{name}` has unknown type `{other}` (known: integer, boolean, string, enum, path)"),
                );
                return None;
            }
        };
        let Some(default) = &raw.default else {
            self.error(span, format!("parameter `{name}` has no `default`"));
            return None;
        };
        let default = match default {
            toml::Value::Integer(n) => ParamValue::Integer(*n),
            toml::Value::Boolean(b) => ParamValue::Boolean(*b),
            toml::Value::String(s) => ParamValue::Text(s.clone()),
            other => {
                self.error(
                    span,
                    format!(
                        "parameter `{name}` default must be an integer, boolean or string, not {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        let spec = ParamSpec {
            name: name.to_owned(),
            ty,
            default,
            description: raw.description.clone(),
        };
        if let Err(err) = spec.check(&spec.default) {
            self.error(span, format!("default value rejected: {err}"));
            return None;
        }
        Some(spec)
    }

    fn expectation(
        &mut self,
        raw: &Spanned<ExpectFile>,
        params: &[ParamSpec],
    ) -> Option<Expectation> {
        let span = raw.span();
        let raw = raw.get_ref();
        let Some(op) = ExpectOp::parse(raw.op.get_ref()) else {
            let known: Vec<&str> = ExpectOp::ALL.iter().map(|op| op.key()).collect();
            self.error(
                raw.op.span(),
                format!(
                    "unknown op `{}` (known: {})",
                    raw.op.get_ref(),
                    known.join(", ")
                ),
            );
            return None;
        };
        let operand = match (&raw.value, &raw.param) {
            (Some(_), Some(_)) => {
                self.error(span, "give either `value` or `param`, not both".to_owned());
                return None;
            }
            (Some(value), None) => match serde_json::to_value(value) {
                Ok(json) => Operand::Literal(json),
                Err(err) => {
                    self.error(span, format!("`value` cannot be compared: {err}"));
                    return None;
                }
            },
            (None, Some(param)) => {
                if !params.iter().any(|p| &p.name == param) {
                    self.error(span, format!("expectation refers to undeclared parameter `{param}`; declare it under [params.{param}]"));
                    return None;
                }
                Operand::Param(param.clone())
            }
            (None, None) => Operand::None,
        };
        if op.takes_operand() == matches!(operand, Operand::None) {
            let problem = if op.takes_operand() {
                "needs a `value` or `param`"
            } else {
                "takes no operand"
            };
            self.error(raw.op.span(), format!("op `{}` {problem}", op.key()));
            return None;
        }
        if matches!(op, ExpectOp::In | ExpectOp::NotIn)
            && !matches!(&operand, Operand::Literal(serde_json::Value::Array(_)))
        {
            self.error(
                raw.op.span(),
                format!("op `{}` needs a list `value`", op.key()),
            );
            return None;
        }
        if raw.field.is_empty() || raw.field.split('.').any(str::is_empty) {
            self.error(span, format!("field `{}` is not a dotted path", raw.field));
            return None;
        }
        Some(Expectation {
            field: raw.field.clone(),
            op,
            operand,
        })
    }
}
