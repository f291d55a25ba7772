//! TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30-second steps — what every authenticator app does):
//! secrets, their `otpauth://` URI for enrolment, and checking a code with one step of drift.

use hmac::{KeyInit, Mac};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

/// A new random 160-bit secret (RFC 4226's recommended length).
pub fn new_secret() -> Result<[u8; 20], getrandom::Error> {
    let mut secret = [0u8; 20];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

/// The code for `secret` at step `counter` (RFC 4226 HOTP with dynamic truncation).
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The step a code is accepted for, if `code` is valid for `secret` at `now` (POSIX seconds),
/// allowing one step of clock drift either way. Callers refuse a step at or before the last one
/// accepted, so a code cannot be replayed.
pub fn check(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let current = now / STEP;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| constant_time_eq(hotp(secret, *step), wanted))
}

fn constant_time_eq(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

/// The `otpauth://totp/…` URI an authenticator app reads from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{}:{}", encode(issuer), encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        base32(secret),
        encode(issuer)
    )
}

/// RFC 4648 base 32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            out.push(char::from(ALPHABET[((buffer >> (bits - 5)) & 31) as usize]));
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encoding of everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B (SHA-1 rows; the RFC prints 8 digits, we use the last 6) and
    /// RFC 4226 Appendix D.
    #[test]
    fn the_rfc_test_vectors_hold() {
        let secret = b"12345678901234567890";
        for (time, eight_digits) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                hotp(secret, time / STEP),
                eight_digits % 1_000_000,
                "T={time}"
            );
        }
        let rfc4226 = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, code) in rfc4226.into_iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64), code);
        }
    }

    #[test]
    fn codes_are_checked_with_one_step_of_drift_only() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = format!("{:06}", hotp(secret, now / STEP));
        assert_eq!(check(secret, &code, now), Some(now / STEP));
        assert_eq!(check(secret, &code, now + STEP), Some(now / STEP));
        assert_eq!(check(secret, &code, now - STEP), Some(now / STEP));
        assert_eq!(check(secret, &code, now + 2 * STEP), None);
        assert_eq!(check(secret, "12345", now), None);
        assert_eq!(check(secret, "12345a", now), None);
        assert_eq!(check(b"another secret!!!!!!", &code, now), None);
    }

    #[test]
    fn the_enrolment_uri_is_what_authenticator_apps_read() {
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(
            otpauth_uri(
                "Acme IT (OsirisCare)",
                "admin@acme.example",
                b"12345678901234567890"
            ),
            "otpauth://totp/Acme%20IT%20%28OsirisCare%29:admin%40acme.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20IT%20%28OsirisCare%29&algorithm=SHA1&digits=6&period=30"
        );
    }
}
