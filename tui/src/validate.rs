//! Inline validation of everything typed into the console: each rule returns the hint to show.

use std::net::IpAddr;

use crate::model::FieldId;

/// Shown on the network step when the daemon reported no interface.
pub const NO_INTERFACE_HINT: &str = "No network port found yet: check the cable and press Esc";

/// Checks one wizard field; `Err` carries the plain-words hint shown under it.
/// Optional fields accept empty text.
pub fn field(field: FieldId, value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    match field {
        FieldId::Interface | FieldId::Mode => Ok(()),
        FieldId::Address => check(cidr(value), "Type address/prefix, like 192.168.1.20/24"),
        FieldId::Gateway => check(
            value.parse::<IpAddr>().is_ok(),
            "Type the router's address, like 192.168.1.1",
        ),
        FieldId::Dns => check(
            dns_list(value).is_some(),
            "Type addresses with commas, like 192.168.1.1, 1.1.1.1",
        ),
        FieldId::ClaimCode => check(
            value.is_empty() || claim_code(value),
            "4 to 32 letters, digits and dashes, like K7QF-3MZP",
        ),
        FieldId::Domain => check(
            host_name(value) && value.contains('.'),
            "Type the domain's full name, like clinic.local",
        ),
        FieldId::DomainController => check(
            value.is_empty() || host_name(value) || value.parse::<IpAddr>().is_ok(),
            "A name like dc1.clinic.local, an address, or nothing",
        ),
        FieldId::BindUser | FieldId::WindowsUser => check(
            windows_account(value),
            "Type it like scanner@clinic.local or CLINIC\\scanner",
        ),
        FieldId::LinuxUser => check(
            linux_account(value),
            "Lower-case letters, digits, - and _, like osiris",
        ),
        FieldId::BindPassword | FieldId::WindowsPassword | FieldId::LinuxPassword => check(
            !value.is_empty() && value.chars().count() <= 256,
            "Type the account's password (it is never shown)",
        ),
        FieldId::Timezone => check(timezone(value), "Type Area/City, like America/Chicago"),
        FieldId::Pin | FieldId::PinAgain => check(pin(value), PIN_HINT),
    }
}

/// The rule for a console PIN, as the daemon enforces it.
pub const PIN_HINT: &str = "4 to 12 digits (0-9), nothing else";

/// True for a console PIN: 4 to 12 ASCII digits.
pub fn pin(value: &str) -> bool {
    (4..=12).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

/// Splits a DNS list ("a, b c") into addresses; `None` when empty or any entry is not an address.
pub fn dns_list(value: &str) -> Option<Vec<String>> {
    let res: Vec<String> = value
        .split([',', ' ', ';'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let all_ok = res.iter().all(|s| s.parse::<IpAddr>().is_ok());
    (all_ok && !res.is_empty()).then_some(res)
}

/// Checks the operator's name ("who are you?").
pub fn person(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    check(
        !value.is_empty() && value.chars().count() <= 64,
        "Type your name so the record shows who did this",
    )
}

/// Checks the reason for pausing or resuming healing.
pub fn reason(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    check(
        value.chars().count() >= 3 && value.chars().count() <= 200,
        "Say in a few words why (it is kept in the evidence log)",
    )
}

/// Checks an export destination (the daemon checks that it exists and is writable).
pub fn export_path(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    check(
        value.starts_with('/') && !value.contains('\0'),
        "Type the folder of the USB stick, starting with /, like /media/usb",
    )
}

/// The rule for how many computers may enroll with one token, as the daemon enforces it.
pub const TOKEN_USES_HINT: &str = "How many computers: 1 to 10,000";

/// The rule for how long a token is valid, as the daemon enforces it.
pub const TOKEN_VALIDITY_HINT: &str =
    "How long, like 24h, 7d or 30m (1 minute to 30 days; a plain number is hours)";

/// Reads how many computers may enroll with a token: 1 to 10,000.
pub fn token_uses(value: &str) -> Result<u32, &'static str> {
    let value = value.trim().replace(',', "");
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or(TOKEN_USES_HINT)
}

/// Reads how long a token is valid, in seconds: `30m`, `24h`, `7d`, `90s`, or a plain number of
/// hours; 1 minute to 30 days.
pub fn token_validity(value: &str) -> Result<u64, &'static str> {
    let value = value.trim().to_ascii_lowercase();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "" | "h" => 3600,
        "d" => 86_400,
        _ => return Err(TOKEN_VALIDITY_HINT),
    };
    digits
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(scale))
        .filter(|secs| (60..=30 * 86_400).contains(secs))
        .ok_or(TOKEN_VALIDITY_HINT)
}

/// Time zones offered as suggestions; any `Area/City` name is accepted too.
pub const TIMEZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Boise",
    "America/Detroit",
    "America/Indiana/Indianapolis",
    "America/Kentucky/Louisville",
    "America/Puerto_Rico",
    "America/Halifax",
    "America/Toronto",
    "America/Vancouver",
    "America/Winnipeg",
    "America/Edmonton",
    "America/Regina",
    "America/St_Johns",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "America/Bogota",
    "America/Lima",
    "America/Santiago",
    "Pacific/Honolulu",
    "Pacific/Guam",
    "Pacific/Auckland",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Zurich",
    "Europe/Vienna",
    "Europe/Stockholm",
    "Europe/Oslo",
    "Europe/Copenhagen",
    "Europe/Helsinki",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Kyiv",
    "Europe/Moscow",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Manila",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Taipei",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Asia/Jerusalem",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Australia/Melbourne",
    "UTC",
];

/// Up to `limit` known time zones containing the typed text (case-insensitive).
pub fn timezone_suggestions(typed: &str, limit: usize) -> Vec<&'static str> {
    let typed = typed.trim().to_lowercase();
    if typed.is_empty() {
        return Vec::new();
    }
    TIMEZONES
        .iter()
        .copied()
        .filter(|tz| tz.to_lowercase().contains(&typed) && tz.to_lowercase() != typed)
        .take(limit)
        .collect()
}

fn check(ok: bool, hint: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(hint) }
}

fn cidr(value: &str) -> bool {
    let Some((addr, prefix)) = value.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => (1..=32).contains(&prefix),
        Ok(IpAddr::V6(_)) => (1..=128).contains(&prefix),
        Err(_) => false,
    }
}

fn claim_code(value: &str) -> bool {
    (4..=32).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && value.chars().any(|c| c.is_ascii_alphanumeric())
}

fn host_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && value.chars().any(|c| c.is_ascii_alphabetic())
}

fn windows_account(value: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 104
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '$'))
    };
    if let Some((user, domain)) = value.split_once('@') {
        plain(user) && host_name(domain)
    } else if let Some((domain, user)) = value.split_once('\\') {
        plain(domain) && plain(user)
    } else {
        plain(value)
    }
}

fn linux_account(value: &str) -> bool {
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && value.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
}

fn timezone(value: &str) -> bool {
    if TIMEZONES.contains(&value) {
        return true;
    }
    let parts: Vec<&str> = value.split('/').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && part.len() <= 30
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_values_pass_and_bad_ones_get_a_hint() {
        let good = [
            (FieldId::Address, "192.168.1.20/24"),
            (FieldId::Address, "fd00::5/64"),
            (FieldId::Gateway, "192.168.1.1"),
            (FieldId::Dns, "192.168.1.1, 1.1.1.1"),
            (FieldId::ClaimCode, ""),
            (FieldId::ClaimCode, "K7QF-3MZP"),
            (FieldId::Domain, "clinic.local"),
            (FieldId::DomainController, ""),
            (FieldId::DomainController, "10.0.0.5"),
            (FieldId::BindUser, "scanner@clinic.local"),
            (FieldId::WindowsUser, "CLINIC\\osiris"),
            (FieldId::LinuxUser, "osiris"),
            (FieldId::LinuxPassword, "x"),
            (FieldId::Timezone, "America/Chicago"),
            (FieldId::Timezone, "America/Argentina/Salta"),
            (FieldId::Timezone, "UTC"),
        ];
        for (field_id, value) in good {
            assert_eq!(field(field_id, value), Ok(()), "{field_id:?} {value:?}");
        }
        let bad = [
            (FieldId::Address, "192.168.1.20"),
            (FieldId::Address, "192.168.1.300/24"),
            (FieldId::Address, "10.0.0.1/33"),
            (FieldId::Gateway, "router"),
            (FieldId::Dns, "1.1.1.1, dns"),
            (FieldId::Dns, ""),
            (FieldId::ClaimCode, "ab"),
            (FieldId::Domain, "clinic"),
            (FieldId::Domain, "-bad-.local"),
            (FieldId::BindUser, "scanner@"),
            (FieldId::BindUser, "two words"),
            (FieldId::LinuxUser, "Root"),
            (FieldId::WindowsPassword, ""),
            (FieldId::Timezone, "chicago"),
            (FieldId::Timezone, "America/"),
        ];
        for (field_id, value) in bad {
            assert!(field(field_id, value).is_err(), "{field_id:?} {value:?}");
        }
    }

    #[test]
    fn token_uses_and_validity_follow_the_daemon_limits() {
        assert_eq!(token_uses("1"), Ok(1));
        assert_eq!(token_uses(" 10,000 "), Ok(10_000));
        for bad in ["", "0", "10001", "-1", "two"] {
            assert_eq!(token_uses(bad), Err(TOKEN_USES_HINT), "{bad:?}");
        }
        assert_eq!(token_validity("24h"), Ok(86_400));
        assert_eq!(token_validity("24"), Ok(86_400));
        assert_eq!(token_validity("7d"), Ok(7 * 86_400));
        assert_eq!(token_validity("30 m"), Ok(1800));
        assert_eq!(token_validity("60s"), Ok(60));
        assert_eq!(token_validity("30D"), Ok(30 * 86_400));
        for bad in [
            "",
            "h",
            "59s",
            "31d",
            "721",
            "1w",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(token_validity(bad), Err(TOKEN_VALIDITY_HINT), "{bad:?}");
        }
    }

    #[test]
    fn suggestions_match_inside_names() {
        assert_eq!(
            timezone_suggestions("chic", 3),
            vec!["America/Chicago"],
            "substring match"
        );
        assert!(timezone_suggestions("", 3).is_empty());
        assert_eq!(timezone_suggestions("America", 3).len(), 3);
    }
}
