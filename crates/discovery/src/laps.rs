//! LAPS: the per-host local administrator passwords a directory may hold for a computer (Windows
//! LAPS `msLAPS-Password`, legacy Microsoft LAPS `ms-Mcs-AdmPwd`), what they mean ([`interpret`],
//! pure) and reading them for the computers about to be scanned ([`read_laps`]).
//!
//! A password the bind account may not read is simply absent from the answer: the directory
//! does not tell "no LAPS" from "not allowed to read it".

use std::fmt;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::inventory::filetime_to_datetime;

/// The attributes read per computer.
pub const LAPS_ATTRIBUTES: [&str; 5] = [
    WINDOWS_PASSWORD,
    WINDOWS_EXPIRY,
    WINDOWS_ENCRYPTED,
    LEGACY_PASSWORD,
    LEGACY_EXPIRY,
];

const WINDOWS_PASSWORD: &str = "msLAPS-Password";
const WINDOWS_EXPIRY: &str = "msLAPS-PasswordExpirationTime";
const WINDOWS_ENCRYPTED: &str = "msLAPS-EncryptedPassword";
const LEGACY_PASSWORD: &str = "ms-Mcs-AdmPwd";
const LEGACY_EXPIRY: &str = "ms-Mcs-AdmPwdExpirationTime";

/// Which LAPS wrote the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LapsKind {
    /// Windows LAPS, unencrypted (`msLAPS-Password`, JSON naming the account).
    Windows,
    /// Legacy Microsoft LAPS (`ms-Mcs-AdmPwd`, the password alone).
    Legacy,
}

/// One computer's readable LAPS password.
pub struct LapsPassword {
    pub kind: LapsKind,
    /// The managed local account as Windows LAPS names it (`n`); `None` for legacy LAPS, which
    /// does not record it.
    pub account: Option<String>,
    /// Wiped from memory when dropped.
    pub password: Zeroizing<String>,
    /// When the host will rotate it (`…ExpirationTime`), if the directory says.
    pub expires: Option<OffsetDateTime>,
}

impl fmt::Debug for LapsPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LapsPassword")
            .field("kind", &self.kind)
            .field("account", &self.account)
            .field("password", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

/// What the directory holds for one computer.
#[derive(Debug)]
pub enum LapsState {
    /// A password the appliance can use.
    Password(LapsPassword),
    /// Only `msLAPS-EncryptedPassword` (DPAPI-NG, decryptable only by the principals Windows LAPS
    /// encrypted it for, never by the appliance).
    EncryptedOnly,
    /// No LAPS attribute, or none this account may read.
    Absent,
    /// An attribute is present but not in the form LAPS writes; the reason never holds the value.
    Invalid(String),
}

/// The LAPS attribute values of one computer as the directory returned them.
#[derive(Default)]
pub struct RawLaps {
    pub windows: Option<Zeroizing<String>>,
    pub windows_expiry: Option<String>,
    pub encrypted: bool,
    pub legacy: Option<Zeroizing<String>>,
    pub legacy_expiry: Option<String>,
}

/// What the attributes say. Windows LAPS comes first: when it stores the password encrypted, a
/// legacy `ms-Mcs-AdmPwd` left beside it is not used (Windows LAPS manages the account now, so
/// the legacy value is stale at best), and the host is [`LapsState::EncryptedOnly`].
pub fn interpret(raw: RawLaps) -> LapsState {
    if let Some(json) = raw.windows {
        return match windows_password(&json, raw.windows_expiry.as_deref()) {
            Ok(password) => LapsState::Password(password),
            Err(reason) => LapsState::Invalid(reason),
        };
    }
    if raw.encrypted {
        return LapsState::EncryptedOnly;
    }
    let Some(password) = raw.legacy else {
        return LapsState::Absent;
    };
    if password.is_empty() {
        return LapsState::Invalid(format!("{LEGACY_PASSWORD} is empty"));
    }
    let expires = match raw.legacy_expiry.as_deref().map(filetime) {
        None => None,
        Some(Ok(expires)) => expires,
        Some(Err(())) => {
            return LapsState::Invalid(format!("{LEGACY_EXPIRY} is not a FILETIME number"));
        }
    };
    LapsState::Password(LapsPassword {
        kind: LapsKind::Legacy,
        account: None,
        password,
        expires,
    })
}

/// `{"n": account, "t": hex FILETIME of the update, "p": password}`.
fn windows_password(json: &str, expiry: Option<&str>) -> Result<LapsPassword, String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        n: String,
        t: String,
        p: String,
    }
    let stored: Stored = serde_json::from_str(json).map_err(|err| {
        // serde's message may quote the value; only its position is reported.
        format!(
            "{WINDOWS_PASSWORD} is not the JSON Windows LAPS writes ({{\"n\": account, \"t\": time, \"p\": password}}; unreadable at line {} column {})",
            err.line(),
            err.column()
        )
    })?;
    let password = Zeroizing::new(stored.p);
    if password.is_empty() {
        return Err(format!("{WINDOWS_PASSWORD} holds an empty password"));
    }
    if i64::from_str_radix(&stored.t, 16).is_err() {
        return Err(format!(
            "{WINDOWS_PASSWORD}: the update time `t` is not a hexadecimal FILETIME"
        ));
    }
    let expires = match expiry.map(filetime) {
        None => None,
        Some(Ok(expires)) => expires,
        Some(Err(())) => return Err(format!("{WINDOWS_EXPIRY} is not a FILETIME number")),
    };
    Ok(LapsPassword {
        kind: LapsKind::Windows,
        account: Some(stored.n),
        password,
        expires,
    })
}

/// A decimal FILETIME (`0` or "never" give `None`).
fn filetime(text: &str) -> Result<Option<OffsetDateTime>, ()> {
    text.trim()
        .parse::<i64>()
        .map(filetime_to_datetime)
        .map_err(|_| ())
}

/// Takes the LAPS attributes out of an entry's values, each value wrapped for wiping at once
/// (whatever else the entry held of them is wiped too).
pub(crate) fn raw_from_entry(entry: &mut ldap3::SearchEntry) -> RawLaps {
    let mut take = |name: &str| -> Option<Zeroizing<String>> {
        let key = entry
            .attrs
            .keys()
            .find(|key| key.eq_ignore_ascii_case(name))?
            .clone();
        let values = entry.attrs.remove(&key)?;
        let mut values: Vec<Zeroizing<String>> = values.into_iter().map(Zeroizing::new).collect();
        values.drain(..).next()
    };
    let windows = take(WINDOWS_PASSWORD);
    let windows_expiry = take(WINDOWS_EXPIRY).map(|v| v.to_string());
    let legacy = take(LEGACY_PASSWORD);
    let legacy_expiry = take(LEGACY_EXPIRY).map(|v| v.to_string());
    let encrypted = take(WINDOWS_ENCRYPTED).is_some()
        || entry
            .bin_attrs
            .keys()
            .any(|key| key.eq_ignore_ascii_case(WINDOWS_ENCRYPTED));
    RawLaps {
        windows,
        windows_expiry,
        encrypted,
        legacy,
        legacy_expiry,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// `input`: one `attribute: value` per line (`msLAPS-EncryptedPassword` with any value).
    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let mut raw = RawLaps::default();
        for line in input.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').expect("attribute: value");
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match name {
                WINDOWS_PASSWORD => raw.windows = Some(Zeroizing::new(value)),
                WINDOWS_EXPIRY => raw.windows_expiry = Some(value),
                WINDOWS_ENCRYPTED => raw.encrypted = true,
                LEGACY_PASSWORD => raw.legacy = Some(Zeroizing::new(value)),
                LEGACY_EXPIRY => raw.legacy_expiry = Some(value),
                other => panic!("unknown attribute {other}"),
            }
        }
        let actual = match interpret(raw) {
            LapsState::Password(p) => format!(
                "{:?} account={:?} password={} expires={:?}",
                p.kind,
                p.account,
                p.password.as_str(),
                p.expires
            ),
            other => format!("{other:?}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn windows_laps_json_names_the_account() {
        check(
            r#"
msLAPS-Password: {"n":"LapsAdmin","t":"1d9a0b2c3d4e5f6","p":"Tq7#pW2!zx"}
msLAPS-PasswordExpirationTime: 134061120000000000
"#,
            expect![[
                r#"Windows account=Some("LapsAdmin") password=Tq7#pW2!zx expires=Some(2025-10-28 8:00:00.0 +00:00:00)"#
            ]],
        );
    }

    #[test]
    fn legacy_laps_has_only_the_password() {
        check(
            "ms-Mcs-AdmPwd: k9{Lq]2vB\nms-Mcs-AdmPwdExpirationTime: 0\n",
            expect![[r#"Legacy account=None password=k9{Lq]2vB expires=None"#]],
        );
        check("", expect![[r#"Absent"#]]);
    }

    #[test]
    fn an_encrypted_password_is_said_never_replaced_by_a_stale_legacy_one() {
        check(
            "msLAPS-EncryptedPassword: x\nms-Mcs-AdmPwd: old-legacy-pw\n",
            expect![[r#"EncryptedOnly"#]],
        );
        // The unencrypted Windows LAPS copy wins when both are present.
        check(
            r#"
msLAPS-EncryptedPassword: x
msLAPS-Password: {"n":"Administrator","t":"1d9a0b2c3d4e5f6","p":"pw-1"}
"#,
            expect![[r#"Windows account=Some("Administrator") password=pw-1 expires=None"#]],
        );
    }

    #[test]
    fn malformed_values_are_invalid_without_quoting_the_password() {
        check(
            r#"msLAPS-Password: {"n":"Administrator","t":"1d9","p":42}"#,
            expect![[
                r#"Invalid("msLAPS-Password is not the JSON Windows LAPS writes ({\"n\": account, \"t\": time, \"p\": password}; unreadable at line 1 column 37)")"#
            ]],
        );
        check(
            r#"msLAPS-Password: Secr3t-not-json"#,
            expect![[
                r#"Invalid("msLAPS-Password is not the JSON Windows LAPS writes ({\"n\": account, \"t\": time, \"p\": password}; unreadable at line 1 column 1)")"#
            ]],
        );
        check(
            r#"msLAPS-Password: {"n":"Administrator","t":"yesterday","p":"pw"}"#,
            expect![[
                r#"Invalid("msLAPS-Password: the update time `t` is not a hexadecimal FILETIME")"#
            ]],
        );
        check(
            "ms-Mcs-AdmPwd: pw\nms-Mcs-AdmPwdExpirationTime: soon\n",
            expect![[r#"Invalid("ms-Mcs-AdmPwdExpirationTime is not a FILETIME number")"#]],
        );
        check(
            "ms-Mcs-AdmPwd: \n",
            expect![[r#"Invalid("ms-Mcs-AdmPwd is empty")"#]],
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let LapsState::Password(p) = interpret(RawLaps {
            legacy: Some(Zeroizing::new("hunter2-secret".to_owned())),
            ..RawLaps::default()
        }) else {
            panic!("a password");
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
