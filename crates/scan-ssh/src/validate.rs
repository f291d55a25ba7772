//! Input checks done before anything reaches a socket or a shell, and POSIX shell quoting.

use std::net::IpAddr;

use transport::TransportError;

use crate::SshTarget;

/// Checks name, address, user and port of a target.
pub(crate) fn target(target: &SshTarget) -> Result<(), TransportError> {
    let refuse = |message: String| TransportError::Connect {
        target: format!("{:?}", target.name),
        message,
    };
    if !is_target_name(&target.name) {
        return Err(refuse(format!(
            "target name {:?} is not usable: use 1 to 253 printable characters without spaces",
            target.name
        )));
    }
    if !is_host(&target.address) {
        return Err(refuse(format!(
            "address {:?} is not a valid host name or IP address: use an IP address or a DNS name made of letters, digits, '-' and dots",
            target.address
        )));
    }
    if !is_user(&target.user) {
        return Err(refuse(format!(
            "user {:?} is not a valid user name: use up to 32 characters from a-z, 0-9, '_' and '-', starting with a letter or '_'",
            target.user
        )));
    }
    if target.port == 0 {
        return Err(refuse(
            "port 0 is not a valid SSH port: use 1 to 65535".to_owned(),
        ));
    }
    Ok(())
}

/// An IP address or an RFC 1123 host name.
pub(crate) fn is_host(address: &str) -> bool {
    if address.parse::<IpAddr>().is_ok() {
        return true;
    }
    address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[a-z_][a-z0-9_-]*`, at most 32 characters.
pub(crate) fn is_user(user: &str) -> bool {
    let mut bytes = user.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && user.len() <= 32
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// `[A-Z][A-Z0-9_]*`: a name that is safe to place after `export` unquoted.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z'))
        && bytes.all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'))
}

/// Quotes `value` for a POSIX shell: inside single quotes, `'` becomes `'\''`.
pub(crate) fn shell_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A name that fits in one whitespace-separated `known_hosts` field.
fn is_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control())
        && !name.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_addresses() {
        for good in [
            "10.0.0.1",
            "::1",
            "fe80::1",
            "db-01.clinic.example",
            "localhost",
            "a1",
        ] {
            assert!(is_host(good), "{good}");
        }
        for bad in [
            "",
            "10.0.0.1; reboot",
            "$(id)",
            "`id`",
            "-oProxyCommand=x",
            "a b",
            "host-.example",
            "a..b",
            "x\n",
            "[::1]",
            "h\u{e9}te",
        ] {
            assert!(!is_host(bad), "{bad:?}");
        }
    }

    #[test]
    fn user_names() {
        for good in ["root", "_svc", "osiris-scan", "a0_b-c"] {
            assert!(is_user(good), "{good}");
        }
        for bad in [
            "",
            "Root",
            "-root",
            "0day",
            "a b",
            "root;id",
            &"a".repeat(33),
        ] {
            assert!(!is_user(bad), "{bad:?}");
        }
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("OSIRIS_PARAM_MAX_DAYS"));
        for bad in ["", "osiris", "_X", "X-Y", "X;rm", "X Y", "1X"] {
            assert!(!is_env_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        for value in [
            "plain",
            "",
            "x'; touch /nonexistent; echo '",
            "$(id) `id` \"q\" \\ \n",
        ] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(value)))
                .output()
                .expect("run /bin/sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }
}
