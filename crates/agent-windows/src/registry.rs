//! One registry value under `HKEY_LOCAL_MACHINE` (64-bit view) as a `value::Value`, through
//! `RegGetValueW`; an absent key or value is `None`, not an error.

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    HKEY_LOCAL_MACHINE, REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_NONE, REG_QWORD,
    REG_SZ, RRF_RT_ANY, RRF_SUBKEY_WOW6464KEY, RegGetValueW,
};

use crate::value::{SourceError, Value};

/// Reads `HKLM\<key>\<value>`.
pub(crate) fn read_local_machine(key: &str, value: &str) -> Result<Option<Value>, SourceError> {
    let key_w = wide(key);
    let value_w = wide(value);
    let mut buffer: Vec<u8> = vec![0; 256];
    loop {
        let mut kind = 0u32;
        let mut size = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: both names are NUL-terminated UTF-16 that outlive the call; `buffer` has
        // `size` writable bytes and `size` is updated to what was written (or is needed).
        let status = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key_w.as_ptr(),
                value_w.as_ptr(),
                RRF_RT_ANY | RRF_SUBKEY_WOW6464KEY,
                &mut kind,
                buffer.as_mut_ptr().cast(),
                &mut size,
            )
        };
        match status {
            ERROR_SUCCESS => {
                buffer.truncate(size as usize);
                return Ok(Some(decode(kind, &buffer)));
            }
            ERROR_FILE_NOT_FOUND => return Ok(None),
            ERROR_MORE_DATA if (size as usize) > buffer.len() && size <= 1 << 20 => {
                buffer = vec![0; size as usize];
            }
            other => {
                return Err(SourceError {
                    code: Some(i64::from(other)),
                    message: format!(r"reading HKLM\{key}\{value}"),
                });
            }
        }
    }
}

/// A value's bytes as its registry type says.
fn decode(kind: u32, bytes: &[u8]) -> Value {
    let units = || -> Vec<u16> {
        bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|pair| u16::from_le_bytes(*pair))
            .collect()
    };
    match kind {
        REG_DWORD if bytes.len() == 4 => Value::Int(i64::from(u32::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ]))),
        REG_QWORD if bytes.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes);
            i64::try_from(u64::from_le_bytes(raw)).map_or_else(
                |_| Value::Unsupported("REG_QWORD beyond i64".into()),
                Value::Int,
            )
        }
        REG_SZ | REG_EXPAND_SZ => {
            let units = units();
            let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
            Value::Text(String::from_utf16_lossy(&units[..end]))
        }
        REG_MULTI_SZ => Value::Array(
            units()
                .split(|&u| u == 0)
                .filter(|part| !part.is_empty())
                .map(|part| Value::Text(String::from_utf16_lossy(part)))
                .collect(),
        ),
        REG_NONE => Value::Unsupported("REG_NONE".into()),
        REG_BINARY => Value::Unsupported("REG_BINARY".into()),
        other => Value::Unsupported(format!("registry type {other}")),
    }
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain([0]).collect()
}
