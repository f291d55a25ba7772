//! What the agent read from Windows, before any judgement: WMI instances and registry values as
//! plain values, per named source, or why a source could not be read.
//!
//! The same shapes come from the live readers (`collect`, Windows only) and from recorded
//! snapshots (JSON fixtures, written on a real host by `examples/record.rs`), so every decision
//! is made by pure code that the Linux tests exercise.

use std::collections::BTreeMap;
use std::fmt;

/// One property value: CIM and registry types reduced to what the checks compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `VT_NULL`/`VT_EMPTY`: the property exists but has no value.
    Null,
    /// `VT_BOOL` (CIM `boolean`).
    Bool(bool),
    /// Any CIM integer (`uint8` … `sint64`), a `REG_DWORD` or a `REG_QWORD` that fits an `i64`.
    Int(i64),
    /// `VT_BSTR` (CIM `string` and `datetime`), `REG_SZ`, `REG_EXPAND_SZ`.
    Text(String),
    /// `VT_ARRAY` of any of the above, `REG_MULTI_SZ`.
    Array(Vec<Value>),
    /// A type the checks do not read (the type's name, e.g. `VT_R8`, `REG_BINARY`).
    Unsupported(String),
}

/// One WMI instance (or method result, or registry value) by property name.
pub type Instance = BTreeMap<String, Value>;

/// Every source one check read, by the source's name (see `source::sources`).
pub type Snapshot = BTreeMap<String, Result<Vec<Instance>, SourceError>>;

/// Why a source could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// The failing call's HRESULT or Win32 error code, when there was one.
    pub code: Option<i64>,
    /// What failed, in words (e.g. `connecting to WMI namespace root\StandardCimv2`).
    pub message: String,
}

/// A recorded snapshot that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("snapshot is malformed at {path}: {problem}")]
pub struct SnapshotError {
    /// Where in the document (e.g. `MSFT_MpComputerStatus[0].AMServiceEnabled`).
    pub path: String,
    /// What is wrong there.
    pub problem: String,
}

impl SourceError {
    /// The error in words, with the code named when it is a known one.
    pub fn describe(&self) -> String {
        match self.code {
            Some(code) => {
                let code32 = code as u32;
                match code_name(code32) {
                    Some(name) => format!("{} ({name}, {code32:#010X})", self.message),
                    None => format!("{} ({code32:#010X})", self.message),
                }
            }
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The name of an HRESULT or Win32 error that reading a source commonly ends with.
pub fn code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x8004_1001 => "WBEM_E_FAILED",
        0x8004_1002 => "WBEM_E_NOT_FOUND",
        0x8004_1003 => "WBEM_E_ACCESS_DENIED",
        0x8004_1008 => "WBEM_E_INVALID_PARAMETER",
        0x8004_100C => "WBEM_E_NOT_SUPPORTED",
        0x8004_100E => "WBEM_E_INVALID_NAMESPACE",
        0x8004_1010 => "WBEM_E_INVALID_CLASS",
        0x8004_1013 => "WBEM_E_PROVIDER_LOAD_FAILURE",
        0x8004_1017 => "WBEM_E_INVALID_QUERY",
        0x8004_102E => "WBEM_E_INVALID_METHOD",
        0x8004_1032 => "WBEM_E_CALL_CANCELLED",
        0x8007_0005 => "E_ACCESSDENIED",
        0x8000_4005 => "E_FAIL",
        0x8001_0106 => "RPC_E_CHANGED_MODE",
        0x8004_0154 => "REGDB_E_CLASSNOTREG",
        0x8007_06BA => "RPC_S_SERVER_UNAVAILABLE",
        2 => "ERROR_FILE_NOT_FOUND",
        5 => "ERROR_ACCESS_DENIED",
        _ => return None,
    })
}

/// Reads a snapshot from its JSON form: `{"source": [ {"Property": value, …}, … ]}` or
/// `{"source": {"error": {"code": n, "message": "…"}}}`; JSON `null`, booleans, integers,
/// strings and arrays are values, `{"unsupported": "TYPE"}` a value of a type the checks do not read.
pub fn snapshot_from_json(document: &serde_json::Value) -> Result<Snapshot, SnapshotError> {
    let bad = |path: &str, problem: &str| SnapshotError {
        path: path.to_owned(),
        problem: problem.to_owned(),
    };
    let sources = document
        .as_object()
        .ok_or_else(|| bad("(top)", "expected an object of sources"))?;
    let mut snapshot = Snapshot::new();
    for (name, reading) in sources {
        let read = match reading {
            serde_json::Value::Array(instances) => {
                let mut out = Vec::with_capacity(instances.len());
                for (idx, instance) in instances.iter().enumerate() {
                    let path = format!("{name}[{idx}]");
                    let properties = instance
                        .as_object()
                        .ok_or_else(|| bad(&path, "expected an object of properties"))?;
                    let mut props = Instance::new();
                    for (property, value) in properties {
                        let value = value_from_json(value)
                            .map_err(|problem| bad(&format!("{path}.{property}"), &problem))?;
                        props.insert(property.clone(), value);
                    }
                    out.push(props);
                }
                Ok(out)
            }
            serde_json::Value::Object(object) => {
                let error = object
                    .get("error")
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| bad(name, "expected a list of instances or {\"error\": …}"))?;
                let message = error
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| bad(name, "the error has no message"))?;
                Err(SourceError {
                    code: error.get("code").and_then(serde_json::Value::as_i64),
                    message: message.to_owned(),
                })
            }
            _ => return Err(bad(name, "expected a list of instances or {\"error\": …}")),
        };
        snapshot.insert(name.clone(), read);
    }
    Ok(snapshot)
}

/// The JSON form of a snapshot, as `snapshot_from_json` reads it (what `examples/record.rs` writes).
pub fn snapshot_to_json(snapshot: &Snapshot) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, reading) in snapshot {
        let value = match reading {
            Ok(instances) => serde_json::Value::Array(
                instances
                    .iter()
                    .map(|instance| {
                        serde_json::Value::Object(
                            instance
                                .iter()
                                .map(|(k, v)| (k.clone(), value_to_json(v)))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
            Err(error) => serde_json::json!({
                "error": { "code": error.code, "message": error.message }
            }),
        };
        out.insert(name.clone(), value);
    }
    serde_json::Value::Object(out)
}

fn value_from_json(value: &serde_json::Value) -> Result<Value, String> {
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Int(
            n.as_i64()
                .ok_or_else(|| format!("{n} is not an integer that fits 64 bits"))?,
        ),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(value_from_json)
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(object) => match object.get("unsupported") {
            Some(serde_json::Value::String(kind)) if object.len() == 1 => {
                Value::Unsupported(kind.clone())
            }
            _ => return Err("objects are not values (only {\"unsupported\": \"TYPE\"})".into()),
        },
    })
}

fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => serde_json::Value::from(*n),
        Value::Text(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(value_to_json).collect()),
        Value::Unsupported(kind) => serde_json::json!({ "unsupported": kind }),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use crate::value::{snapshot_from_json, snapshot_to_json};

    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let document: serde_json::Value = serde_json::from_str(input).expect("test JSON");
        let actual = match snapshot_from_json(&document) {
            Ok(snapshot) => {
                // What is read back writes out the same.
                assert_eq!(snapshot_to_json(&snapshot), document);
                format!("{snapshot:?}")
            }
            Err(err) => err.to_string(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn reads_instances_errors_and_unsupported_values() {
        check(
            r#"{"A": [{"N": 1, "S": "x", "B": true, "Z": null, "L": ["a"], "R": {"unsupported": "VT_R8"}}],
                "B": {"error": {"code": 2147749902, "message": "connecting"}}}"#,
            expect![[
                r#"{"A": Ok([{"B": Bool(true), "L": Array([Text("a")]), "N": Int(1), "R": Unsupported("VT_R8"), "S": Text("x"), "Z": Null}]), "B": Err(SourceError { code: Some(2147749902), message: "connecting" })}"#
            ]],
        );
    }

    #[test]
    fn refuses_what_is_not_a_snapshot() {
        check(
            r#"{"A": [{"N": 1.5}]}"#,
            expect!["snapshot is malformed at A[0].N: 1.5 is not an integer that fits 64 bits"],
        );
        check(
            r#"{"A": [{"N": {"x": 1}}]}"#,
            expect![[
                r#"snapshot is malformed at A[0].N: objects are not values (only {"unsupported": "TYPE"})"#
            ]],
        );
        check(
            r#"{"A": 3}"#,
            expect![[
                r#"snapshot is malformed at A: expected a list of instances or {"error": …}"#
            ]],
        );
        check(
            r#"{"A": {"error": {}}}"#,
            expect!["snapshot is malformed at A: the error has no message"],
        );
    }

    #[test]
    fn names_known_codes() {
        let error = crate::SourceError {
            code: Some(0x8004_100E),
            message: "connecting to WMI namespace root\\x".into(),
        };
        expect![[r#"connecting to WMI namespace root\x (WBEM_E_INVALID_NAMESPACE, 0x8004100E)"#]]
            .assert_eq(&error.describe());
        let error = crate::SourceError {
            code: Some(0x8004_7777),
            message: "m".into(),
        };
        expect!["m (0x80047777)"].assert_eq(&error.describe());
    }
}
