//! Typed runbook parameters: their declared types, validation, and rendering for scripts.
//!
//! Parameters reach scripts only as validated values in environment variables
//! (`OSIRIS_PARAM_<NAME>`), never spliced into script text.

use std::collections::BTreeMap;
use std::fmt;

/// The declared type of a parameter, with its constraints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ParamType {
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    /// Free text without control characters, at most `max_len` bytes.
    String {
        max_len: usize,
    },
    /// One of a fixed set of words.
    Enum {
        values: Vec<String>,
    },
    /// An absolute path without `..` components or control characters.
    Path,
}

/// A parameter a runbook accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamSpec {
    /// Lowercase `[a-z][a-z0-9_]*`.
    pub name: String,
    pub ty: ParamType,
    pub default: ParamValue,
    pub description: String,
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ParamValue {
    Integer(i64),
    Boolean(bool),
    Text(String),
}

/// Parameter values after validation, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedParams {
    values: BTreeMap<String, ParamValue>,
}

/// Why a parameter value or declaration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The name is not a lowercase identifier.
    #[error(
        "parameter name `{0}` is invalid: use lowercase letters, digits and `_`, starting with a letter"
    )]
    BadName(String),
    /// A value was given for a parameter the runbook does not declare.
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    /// The value does not have the declared type.
    #[error("parameter `{name}` must be {expected}, got {got}")]
    WrongType {
        name: String,
        expected: String,
        got: String,
    },
    /// The value is outside the declared constraints.
    #[error("parameter `{name}`: {problem}")]
    OutOfRange { name: String, problem: String },
}

/// Checks `overrides` against `specs` and fills in defaults.
pub fn resolve_params(
    specs: &[ParamSpec],
    overrides: &BTreeMap<String, ParamValue>,
) -> Result<ResolvedParams, ParamError> {
    if let Some(unknown) = overrides
        .keys()
        .find(|k| !specs.iter().any(|s| &s.name == *k))
    {
        return Err(ParamError::Unknown(unknown.clone()));
    }
    let mut values = BTreeMap::new();
    for spec in specs {
        let value = overrides.get(&spec.name).unwrap_or(&spec.default);
        spec.check(value)?;
        values.insert(spec.name.clone(), value.clone());
    }
    Ok(ResolvedParams { values })
}

impl ParamSpec {
    /// Validates a value against this parameter's name, type and constraints.
    pub fn check(&self, value: &ParamValue) -> Result<(), ParamError> {
        check_name(&self.name)?;
        let wrong = || ParamError::WrongType {
            name: self.name.clone(),
            expected: self.ty.to_string(),
            got: value.type_name().to_owned(),
        };
        let out_of_range = |problem: String| ParamError::OutOfRange {
            name: self.name.clone(),
            problem,
        };
        match (&self.ty, value) {
            (ParamType::Integer { min, max }, ParamValue::Integer(n)) => {
                if let Some(min) = min.filter(|min| n < min) {
                    return Err(out_of_range(format!("{n} is below the minimum {min}")));
                }
                if let Some(max) = max.filter(|max| n > max) {
                    return Err(out_of_range(format!("{n} is above the maximum {max}")));
                }
                Ok(())
            }
            (ParamType::Boolean, ParamValue::Boolean(_)) => Ok(()),
            (ParamType::String { max_len }, ParamValue::Text(s)) => {
                if s.len() > *max_len {
                    return Err(out_of_range(format!("longer than {max_len} bytes")));
                }
                if s.chars().any(char::is_control) {
                    return Err(out_of_range("contains control characters".to_owned()));
                }
                Ok(())
            }
            (ParamType::Enum { values }, ParamValue::Text(s)) => {
                if values.iter().any(|v| v == s) {
                    Ok(())
                } else {
                    Err(out_of_range(format!(
                        "`{s}` is not one of {}",
                        values.join(", ")
                    )))
                }
            }
            (ParamType::Path, ParamValue::Text(s)) => {
                if !s.starts_with('/') {
                    return Err(out_of_range(format!("`{s}` is not an absolute path")));
                }
                if s.split('/').any(|part| part == "..") {
                    return Err(out_of_range(format!("`{s}` contains `..`")));
                }
                if s.chars().any(char::is_control) || s.len() > 4096 {
                    return Err(out_of_range(
                        "contains control characters or is too long".to_owned(),
                    ));
                }
                Ok(())
            }
            _ => Err(wrong()),
        }
    }
}

impl ResolvedParams {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    /// Environment variables for scripts: `OSIRIS_PARAM_<NAME>` = rendered value.
    pub fn env(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(name, value)| {
                (
                    format!("OSIRIS_PARAM_{}", name.to_ascii_uppercase()),
                    value.to_string(),
                )
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl ParamValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Integer(_) => "an integer",
            ParamValue::Boolean(_) => "a boolean",
            ParamValue::Text(_) => "a string",
        }
    }

    /// The value as JSON, for comparing with detect output.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Integer(n) => serde_json::Value::from(*n),
            ParamValue::Boolean(b) => serde_json::Value::from(*b),
            ParamValue::Text(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Integer(n) => write!(f, "{n}"),
            ParamValue::Boolean(b) => write!(f, "{b}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Integer { .. } => f.write_str("an integer"),
            ParamType::Boolean => f.write_str("a boolean"),
            ParamType::String { .. } => f.write_str("a string"),
            ParamType::Enum { values } => write!(f, "one of {}", values.join(", ")),
            ParamType::Path => f.write_str("an absolute path"),
        }
    }
}

fn check_name(name: &str) -> Result<(), ParamError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(ParamError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: ParamType, default: ParamValue) -> ParamSpec {
        ParamSpec {
            name: "p".to_owned(),
            ty,
            default,
            description: String::new(),
        }
    }

    #[test]
    fn hostile_values_are_rejected() {
        let path = spec(ParamType::Path, ParamValue::Text("/etc".to_owned()));
        for bad in ["etc", "/etc/../root", "/etc\n; rm -rf /", "/tmp/\u{0}x"] {
            assert!(
                path.check(&ParamValue::Text(bad.to_owned())).is_err(),
                "{bad:?} accepted"
            );
        }
        let text = spec(
            ParamType::String { max_len: 8 },
            ParamValue::Text(String::new()),
        );
        assert!(
            text.check(&ParamValue::Text("a\u{1b}[2J".to_owned()))
                .is_err()
        );
        assert!(
            text.check(&ParamValue::Text("123456789".to_owned()))
                .is_err()
        );
        let int = spec(
            ParamType::Integer {
                min: Some(1),
                max: Some(365),
            },
            ParamValue::Integer(90),
        );
        assert_eq!(
            int.check(&ParamValue::Integer(0)).unwrap_err().to_string(),
            "parameter `p`: 0 is below the minimum 1"
        );
        assert_eq!(
            int.check(&ParamValue::Text("90; reboot".to_owned()))
                .unwrap_err()
                .to_string(),
            "parameter `p` must be an integer, got a string"
        );
    }

    #[test]
    fn resolve_fills_defaults_and_rejects_unknown() {
        let specs = [spec(
            ParamType::Integer {
                min: None,
                max: None,
            },
            ParamValue::Integer(7),
        )];
        let res = resolve_params(&specs, &BTreeMap::new()).unwrap();
        assert_eq!(
            res.env(),
            vec![("OSIRIS_PARAM_P".to_owned(), "7".to_owned())]
        );
        let mut extra = BTreeMap::new();
        extra.insert("q".to_owned(), ParamValue::Integer(1));
        assert_eq!(
            resolve_params(&specs, &extra).unwrap_err(),
            ParamError::Unknown("q".to_owned())
        );
    }
}
