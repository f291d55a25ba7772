//! What the device says about itself at enrollment: its host name and its Windows edition and
//! version, read from the registry ([`read`], Windows only) and put into words by the pure
//! [`describe`], which is tested on Linux.
//!
//! | fact | registry (`HKEY_LOCAL_MACHINE`) |
//! |---|---|
//! | host name | `SYSTEM\CurrentControlSet\Services\Tcpip\Parameters` `Hostname` and `Domain` (the DNS name, as Active Directory lists the computer), else `SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName` `ComputerName` |
//! | edition | `SOFTWARE\Microsoft\Windows NT\CurrentVersion` `ProductName` (`Windows 10 Pro`; Windows 11 still says 10 there, so a build from 22000 on is named 11, as Microsoft documents) |
//! | version | the same key's `CurrentMajorVersionNumber`.`CurrentMinorVersionNumber`.`CurrentBuildNumber`.`UBR` (`10.0.22631.3447`), else `CurrentVersion`.`CurrentBuildNumber` |
//!
//! The host name is lower-cased (DNS names are case-insensitive; Windows keeps its NetBIOS
//! name upper-case) and holds no white space or control characters, as the protocol requires.

/// The registry key of the DNS host name.
pub const TCPIP_KEY: &str = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";
/// The registry key of the NetBIOS computer name.
pub const COMPUTER_NAME_KEY: &str =
    r"SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName";
/// The registry key of the Windows edition and version.
pub const CURRENT_VERSION_KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";

/// The first Windows 11 build.
const WINDOWS_11_BUILD: u64 = 22000;

/// What the registry said (each `None` when absent or unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings {
    pub hostname: Option<String>,
    pub domain: Option<String>,
    pub computer_name: Option<String>,
    pub product_name: Option<String>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub build: Option<String>,
    pub ubr: Option<i64>,
    pub current_version: Option<String>,
}

/// The device's facts for enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The DNS host name (fully qualified when the machine has a domain), lower case.
    pub hostname: String,
    /// E.g. `Windows 11 Pro`.
    pub os: String,
    /// E.g. `10.0.22631.3447`.
    pub os_version: String,
}

/// Puts the readings into words; what is missing falls back to the next source, then to
/// `fallback_hostname` (the `COMPUTERNAME` environment variable), `Windows` and `unknown`.
pub fn describe(readings: &Readings, fallback_hostname: Option<&str>) -> Device {
    let dns = readings
        .hostname
        .as_deref()
        .map(label)
        .filter(|name| !name.is_empty());
    let hostname = match (dns, readings.domain.as_deref().map(label)) {
        (Some(host), Some(domain)) if !domain.is_empty() => format!("{host}.{domain}"),
        (Some(host), _) => host,
        (None, _) => [readings.computer_name.as_deref(), fallback_hostname]
            .into_iter()
            .flatten()
            .map(label)
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    let build = readings
        .build
        .as_deref()
        .map(str::trim)
        .filter(|build| !build.is_empty() && build.bytes().all(|b| b.is_ascii_digit()));
    let product = readings
        .product_name
        .as_deref()
        .map(|name| text(name, 128))
        .filter(|name| !name.is_empty());
    let os = match (product, build.and_then(|build| build.parse::<u64>().ok())) {
        (Some(name), Some(build)) if build >= WINDOWS_11_BUILD && name.contains("Windows 10") => {
            name.replacen("Windows 10", "Windows 11", 1)
        }
        (Some(name), _) => name,
        (None, _) => "Windows".to_owned(),
    };
    let os_version = match (readings.major, readings.minor, build) {
        (Some(major), Some(minor), Some(build)) => match readings.ubr {
            Some(ubr) => format!("{major}.{minor}.{build}.{ubr}"),
            None => format!("{major}.{minor}.{build}"),
        },
        (_, _, build) => {
            let version = readings
                .current_version
                .as_deref()
                .map(|version| text(version, 64))
                .filter(|version| !version.is_empty());
            match (version, build) {
                (Some(version), Some(build)) => format!("{version}.{build}"),
                (Some(version), None) => version,
                (None, Some(build)) => build.to_owned(),
                (None, None) => "unknown".to_owned(),
            }
        }
    };
    Device {
        hostname,
        os,
        os_version: text(&os_version, 128),
    }
}

/// Reads the facts from this machine's registry and describes them.
#[cfg(windows)]
pub fn read() -> Device {
    use crate::registry::read_local_machine;
    use crate::value::Value;
    let text = |key: &str, value: &str| match read_local_machine(key, value) {
        Ok(Some(Value::Text(text))) => Some(text),
        _ => None,
    };
    let number = |key: &str, value: &str| match read_local_machine(key, value) {
        Ok(Some(Value::Int(number))) => Some(number),
        _ => None,
    };
    let readings = Readings {
        hostname: text(TCPIP_KEY, "Hostname"),
        domain: text(TCPIP_KEY, "Domain"),
        computer_name: text(COMPUTER_NAME_KEY, "ComputerName"),
        product_name: text(CURRENT_VERSION_KEY, "ProductName"),
        major: number(CURRENT_VERSION_KEY, "CurrentMajorVersionNumber"),
        minor: number(CURRENT_VERSION_KEY, "CurrentMinorVersionNumber"),
        build: text(CURRENT_VERSION_KEY, "CurrentBuildNumber"),
        ubr: number(CURRENT_VERSION_KEY, "UBR"),
        current_version: text(CURRENT_VERSION_KEY, "CurrentVersion"),
    };
    describe(&readings, std::env::var("COMPUTERNAME").ok().as_deref())
}

/// A host name's label: lower case, without white space, control characters or dots at the
/// ends, at most 253 bytes.
fn label(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .trim_matches('.')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    text(&cleaned, 253)
}

/// `value` trimmed, control characters as spaces, at most `max` bytes.
fn text(value: &str, max: usize) -> String {
    let mut out = String::new();
    for c in value.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(readings: Readings, fallback: Option<&str>, expect: Expect) {
        let device = describe(&readings, fallback);
        expect.assert_eq(&format!(
            "{} | {} | {}",
            device.hostname, device.os, device.os_version
        ));
    }

    #[test]
    fn the_registry_in_words() {
        let windows_11 = Readings {
            hostname: Some("WS-FrontDesk".to_owned()),
            domain: Some("clinic.local".to_owned()),
            computer_name: Some("WS-FRONTDESK".to_owned()),
            product_name: Some("Windows 10 Pro".to_owned()),
            major: Some(10),
            minor: Some(0),
            build: Some("22631".to_owned()),
            ubr: Some(3447),
            current_version: Some("6.3".to_owned()),
        };
        check(
            windows_11.clone(),
            None,
            expect!["ws-frontdesk.clinic.local | Windows 11 Pro | 10.0.22631.3447"],
        );
        check(
            Readings {
                domain: Some(String::new()),
                build: Some("19045".to_owned()),
                ubr: None,
                ..windows_11.clone()
            },
            None,
            expect!["ws-frontdesk | Windows 10 Pro | 10.0.19045"],
        );
        // Windows 7's registry: no major/minor numbers.
        check(
            Readings {
                hostname: None,
                domain: None,
                product_name: Some("Windows 7 Professional".to_owned()),
                major: None,
                minor: None,
                build: Some("7601".to_owned()),
                ubr: None,
                current_version: Some("6.1".to_owned()),
                ..windows_11
            },
            None,
            expect!["ws-frontdesk | Windows 7 Professional | 6.1.7601"],
        );
        check(
            Readings::default(),
            Some(" Front Desk\u{7}"),
            expect!["frontdesk | Windows | unknown"],
        );
        check(
            Readings::default(),
            None,
            expect!["localhost | Windows | unknown"],
        );
    }
}
