//! The names both sides agree on outside the protobuf messages: the TLS name the gateway's
//! certificate carries, the CA pin's written form, and how a client certificate names its agent.
//!
//! The agent never verifies the gateway by DNS: an appliance on a clinic LAN is reached by
//! whatever address the agent was given, and the trust comes from the per-appliance agent CA,
//! pinned by fingerprint at enrollment. So the gateway's certificate always carries the one DNS
//! name [`GATEWAY_TLS_NAME`] and the agent always asks for it (SNI and name check), whatever
//! address it connects to.

use std::fmt;

use sha2::{Digest, Sha256};

/// The DNS name in the gateway's server certificate, which the agent verifies (and sends as SNI)
/// whatever address it connects to. `.invalid` (RFC 6761) cannot resolve, so the name can never
/// belong to anything else.
pub const GATEWAY_TLS_NAME: &str = "agent-gateway.osiris.invalid";

/// The prefix of an agent's ID inside its client certificate's URI subject alternative name:
/// `urn:osiris:agent:<agent_id>`. The gateway identifies a connection by its certificate's
/// fingerprint in its own registry, never by this name; it is there for people reading the
/// certificate.
pub const AGENT_URI_PREFIX: &str = "urn:osiris:agent:";

/// The SHA-256 fingerprint of a certificate (DER): what `osiris agent token create` prints and
/// `osiris-agent enroll --ca-pin` takes, written `sha256:` followed by 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaPin([u8; 32]);

impl CaPin {
    /// The pin of `certificate_der`.
    #[must_use]
    pub fn of(certificate_der: &[u8]) -> Self {
        Self(Sha256::digest(certificate_der).into())
    }

    /// The raw digest.
    #[must_use]
    pub const fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `certificate_der` has this fingerprint.
    #[must_use]
    pub fn matches(&self, certificate_der: &[u8]) -> bool {
        Self::of(certificate_der) == *self
    }
}

impl fmt::Display for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A CA pin that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the CA pin {shown:?} is not a SHA-256 fingerprint: expected `sha256:` and 64 hex digits, as `osiris agent token create` prints it ({why})"
)]
pub struct CaPinError {
    shown: String,
    why: &'static str,
}

impl std::str::FromStr for CaPin {
    type Err = CaPinError;

    /// Reads `sha256:<64 hex>`; the prefix may be omitted, upper-case hex and `:` between bytes
    /// (as some tools print fingerprints) are accepted.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown: String = text.chars().take(100).collect();
        let error = |why| CaPinError {
            shown: shown.clone(),
            why,
        };
        let trimmed = text.trim();
        let hex = trimmed
            .strip_prefix("sha256:")
            .or_else(|| trimmed.strip_prefix("SHA256:"))
            .unwrap_or(trimmed);
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(error("wrong length"));
        }
        let mut digest = [0u8; 32];
        for (i, pair) in digits.as_chunks::<2>().0.iter().enumerate() {
            let high = hex_value(pair[0]).ok_or_else(|| error("not hex"))?;
            let low = hex_value(pair[1]).ok_or_else(|| error("not hex"))?;
            digest[i] = high << 4 | low;
        }
        Ok(Self(digest))
    }
}

const fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_reads_back_what_it_prints_and_refuses_other_text() {
        let pin = CaPin::of(b"certificate");
        let printed = pin.to_string();
        assert!(
            printed.starts_with("sha256:") && printed.len() == 71,
            "{printed}"
        );
        assert_eq!(printed.parse::<CaPin>(), Ok(pin));
        assert_eq!(
            printed
                .to_uppercase()
                .replace("SHA256:", "")
                .parse::<CaPin>(),
            Ok(pin)
        );
        assert!(pin.matches(b"certificate"));
        assert!(!pin.matches(b"another"));
        let colons: String = printed.as_bytes()[7..]
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<CaPin>(), Ok(pin));
        let short = printed[..70].to_owned();
        assert!(
            short
                .parse::<CaPin>()
                .unwrap_err()
                .to_string()
                .contains("wrong length")
        );
        let bad = format!("sha256:{}", "g".repeat(64));
        assert!(
            bad.parse::<CaPin>()
                .unwrap_err()
                .to_string()
                .contains("not hex")
        );
    }
}
