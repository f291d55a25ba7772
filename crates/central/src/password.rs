//! Passwords: the policy a new password must meet and argon2id hashing (PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per login).
pub const MAX_LEN: usize = 1024;

/// A password that cannot be used, or a hash that cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Too short or too long.
    #[error("a password must be {MIN_LEN} to {MAX_LEN} characters long (this one has {0})")]
    Length(usize),
    /// Control characters (a pasted newline in the middle, a terminal escape).
    #[error("a password must not contain control characters")]
    Control,
    /// argon2 failed (never expected with fixed parameters).
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the policy.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(PasswordError::Length(len));
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::Control);
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a password that meets the policy.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| PasswordError::Hash(err.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

/// Whether `password` matches the stored PHC string (constant-time comparison inside argon2).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), PasswordError> {
    getrandom::fill(buf).map_err(|err| PasswordError::Hash(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_never_contains_it() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterx", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        // Two hashes of one password differ (random salt).
        assert_ne!(phc, hash("correct horse battery").unwrap());
    }

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert_eq!(
            check_policy("short").unwrap_err().to_string(),
            "a password must be 12 to 1024 characters long (this one has 5)"
        );
        assert!(matches!(
            check_policy("twelve chars\nmore"),
            Err(PasswordError::Control)
        ));
        assert!(check_policy("twelve chars").is_ok());
    }
}
