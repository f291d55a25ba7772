//! RFC 8785 JSON Canonicalization Scheme (JCS) for `serde_json::Value`.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JcsError {
    /// The number is NaN or infinite, which JSON cannot represent.
    #[error(
        "number {0} is not finite; JCS (RFC 8785) only allows finite numbers: replace it with a string or null"
    )]
    NonFinite(String),
    /// The integer does not fit an IEEE 754 double exactly, so JCS would change its value.
    #[error(
        "integer {0} is outside ±2^53 and would lose precision in JCS (RFC 8785): send it as a string instead"
    )]
    UnsafeInteger(String),
}

/// Returns the RFC 8785 canonical serialisation of `value`.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut res = Vec::with_capacity(256);
    write_value(value, &mut res)?;
    Ok(res)
}

/// Appends the canonical serialisation of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out)?,
        Value::String(string) => write_string(string, out),
        Value::Array(items) => {
            out.push(b'[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (member_idx, (key, member)) in sorted_members(map).into_iter().enumerate() {
                if member_idx > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(member, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends a JSON string literal for `string`, escaped as RFC 8785 §3.2.2.2 requires.
pub fn write_string(string: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = string.as_bytes();
    let mut start = 0;
    for (byte_idx, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..byte_idx]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = byte_idx + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Returns the members of `map` in JCS order: by the UTF-16 code units of their names.
pub fn sorted_members(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|(left, _), (right, _)| compare_utf16(left, right));
    members
}

/// Compares two strings by their UTF-16 code units, as RFC 8785 §3.2.3 requires.
pub fn compare_utf16(left: &str, right: &str) -> Ordering {
    if left.is_ascii() && right.is_ascii() {
        return left.as_bytes().cmp(right.as_bytes());
    }
    left.encode_utf16().cmp(right.encode_utf16())
}

fn write_number(number: &Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    const MAX_SAFE: u64 = 1 << 53;
    let float = if let Some(unsigned) = number.as_u64() {
        if unsigned > MAX_SAFE {
            return Err(JcsError::UnsafeInteger(number.to_string()));
        }
        // Exact: the value is at most 2^53.
        unsigned as f64
    } else if let Some(signed) = number.as_i64() {
        if signed.unsigned_abs() > MAX_SAFE {
            return Err(JcsError::UnsafeInteger(number.to_string()));
        }
        // Exact: the magnitude is at most 2^53.
        signed as f64
    } else {
        match number.as_f64() {
            Some(float) => float,
            None => return Err(JcsError::NonFinite(number.to_string())),
        }
    };
    write_f64(float, out)
}

/// Appends `float` formatted as ECMAScript `Number.prototype.toString` does (RFC 8785 §3.2.2.3).
pub fn write_f64(float: f64, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if !float.is_finite() {
        return Err(JcsError::NonFinite(float.to_string()));
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(float).as_bytes());
    Ok(())
}
