//! Input checks done before anything reaches a socket or a shell.

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
    if !model::is_valid_host(&target.address) {
        return Err(refuse(format!(
            "address {:?} is not a valid host name or IP address: use an IP address or a DNS name made of letters, digits, '-' and dots",
            target.address
        )));
    }
    if !model::is_valid_user(&target.user) {
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

/// `[A-Z][A-Z0-9_]*`: a name that is safe to place after `export` unquoted.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z'))
        && bytes.all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'))
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
    fn env_names() {
        assert!(is_env_name("OSIRIS_PARAM_MAX_DAYS"));
        for bad in ["", "osiris", "_X", "X-Y", "X;rm", "X Y", "1X"] {
            assert!(!is_env_name(bad), "{bad:?}");
        }
    }
}
