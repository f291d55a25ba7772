//! Validation of host names, addresses and login names before they reach a socket or a shell.
//!
//! Names come from configuration and (later) Active Directory; anything that is not a plain
//! host name, IP address or login name is refused, so it can never be interpreted by a shell.

use std::net::IpAddr;

/// An IP address, or a DNS name made of RFC 1123 labels (letters, digits, inner `-`), at most 253 bytes.
pub fn is_valid_host(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() {
        return true;
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A POSIX login name: `[a-z_][a-z0-9_-]*`, at most 32 bytes.
pub fn is_valid_user(text: &str) -> bool {
    let mut chars = text.chars();
    text.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// An AWS region name: lowercase words and a one- or two-digit number joined by `-`
/// (`us-east-1`, `us-gov-west-1`, `ap-southeast-4`), at most 32 characters; such a name is safe
/// in a host name and a URL.
pub fn is_aws_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    text.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for good in [
            "10.77.0.11",
            "::1",
            "fe80::1",
            "ws-0001.clinic.local",
            "DC1",
            "server1.",
            "a",
        ] {
            assert!(is_valid_host(good), "{good} refused");
        }
        for bad in [
            "",
            "10.0.0.1; reboot",
            "$(id)",
            "`id`",
            "-oProxyCommand=x",
            "a b",
            "host\nname",
            "a..b",
            "-lead.example",
            "trail-.example",
            "x'y",
            "under_score.example",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_host(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn users() {
        for good in ["alice", "_svc", "osiris-scan", "a1"] {
            assert!(is_valid_user(good), "{good} refused");
        }
        for bad in [
            "",
            "Alice",
            "1a",
            "a;b",
            "a b",
            "-a",
            "$(id)",
            &"a".repeat(33),
        ] {
            assert!(!is_valid_user(bad), "{bad:?} accepted");
        }
    }
}
