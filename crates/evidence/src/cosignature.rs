//! C2SP `tlog-cosignature` (https://c2sp.org/tlog-cosignature), Ed25519 type: a witness's
//! timestamped statement that a checkpoint is the largest consistent tree head it has seen for
//! that log. Central Command signs them; kits carry them; `osiris evidence verify --witness-key`
//! checks them.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::keys::KeyError;

/// Signature type byte of Ed25519 cosignatures (`cosignature/v1`) in key ids and vkeys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// Length of the decoded signature blob: key id, big-endian timestamp, Ed25519 signature.
const BLOB_LEN: usize = 4 + 8 + 64;

/// A witness's signing key and name (a schema-less URL naming the witness).
#[derive(Clone)]
pub struct WitnessKey {
    signing: SigningKey,
    verifier: WitnessVerifier,
}

/// A witness's public key in the signed-note vkey encoding:
/// `<name>+<keyid hex>+<base64(0x04 ‖ public key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

/// Why a cosignature is absent or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// No signature line carries the witness's name and key id.
    #[error("no cosignature by witness {name} (key id {key_id})")]
    Missing {
        /// The witness name.
        name: String,
        /// Its key id, hex.
        key_id: String,
    },
    /// The line exists but is not a well-formed cosignature.
    #[error("the cosignature by witness {name} is malformed: {reason}")]
    Malformed {
        /// The witness name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature does not verify over this checkpoint and time.
    #[error(
        "the cosignature by witness {name} does not verify: the checkpoint was altered, or another key signed it"
    )]
    BadSignature {
        /// The witness name.
        name: String,
    },
}

/// A verified cosignature: who signed and when (POSIX seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosigned {
    /// The cosignature's timestamp.
    pub time: u64,
}

/// The exact bytes an Ed25519 cosignature signs: `cosignature/v1`, `time <t>`, then the note
/// body (its text lines up to and including the last newline, without signature lines).
pub fn signed_message(body: &str, time: u64) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
    message.extend_from_slice(body.as_bytes());
    message
}

fn key_id_of(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_COSIGNATURE_V1]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty()
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(KeyError::Malformed {
            what: "witness key",
            reason: "the name must be non-empty, without spaces, `+` or control characters".into(),
        });
    }
    Ok(())
}

impl WitnessKey {
    /// A key from a 32-byte seed, named `name`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<WitnessKey, KeyError> {
        check_name(name)?;
        let signing = SigningKey::from_bytes(seed);
        let key = signing.verifying_key();
        Ok(WitnessKey {
            verifier: WitnessVerifier {
                name: name.to_owned(),
                key_id: key_id_of(name, &key),
                key,
            },
            signing,
        })
    }

    /// The public half.
    pub fn verifier(&self) -> &WitnessVerifier {
        &self.verifier
    }

    /// The signature line (with its final newline) cosigning the note body `body` at `time`.
    pub fn cosign(&self, body: &str, time: u64) -> String {
        let signature = self.signing.sign(&signed_message(body, time));
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.extend_from_slice(&self.verifier.key_id);
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("\u{2014} {} {}\n", self.verifier.name, BASE64.encode(&blob))
    }

    /// The private key as `PRIVATE+KEY+<name>+<keyid>+<base64(0x04 ‖ seed)>`, for a 0600 file.
    pub fn private_key_text(&self) -> String {
        let mut material = Vec::with_capacity(33);
        material.push(ALG_COSIGNATURE_V1);
        material.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.verifier.name,
            hex::encode(self.verifier.key_id),
            BASE64.encode(&material)
        )
    }
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitnessKey")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl FromStr for WitnessKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<WitnessKey, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            what: "witness signer key",
            reason: reason.to_owned(),
        };
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed("it does not start with PRIVATE+KEY+"))?;
        let (name, key_id, material) =
            split_fields(rest).ok_or_else(|| malformed("expected <name>+<keyid>+<key>"))?;
        let seed = match material.as_slice() {
            [ALG_COSIGNATURE_V1, seed @ ..] => <[u8; 32]>::try_from(seed)
                .map_err(|_| malformed("the Ed25519 seed must be 32 bytes"))?,
            _ => return Err(malformed("the key is not a cosignature/v1 (type 0x04) key")),
        };
        let key = WitnessKey::from_seed(name, &seed)?;
        if key.verifier.key_id != key_id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(key)
    }
}

impl WitnessVerifier {
    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Checks the cosignature by this witness in `note` (a signed note: body, blank line,
    /// signature lines) and returns its time. Other signature lines are ignored.
    pub fn verify(&self, note: &str) -> Result<Cosigned, CosignatureError> {
        let malformed = |reason| CosignatureError::Malformed {
            name: self.name.clone(),
            reason,
        };
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("the note has no blank line before its signatures"))?;
        let body = &note[..=split];
        let mut blob = None;
        for line in note[split + 2..].lines() {
            let Some((name, encoded)) = line
                .strip_prefix("\u{2014} ")
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            if name != self.name {
                continue;
            }
            let Ok(decoded) = BASE64.decode(encoded) else {
                continue;
            };
            if decoded.len() >= 4 && decoded[..4] == self.key_id {
                blob = Some(decoded);
                break;
            }
        }
        let blob = blob.ok_or_else(|| CosignatureError::Missing {
            name: self.name.clone(),
            key_id: hex::encode(self.key_id),
        })?;
        if blob.len() != BLOB_LEN {
            return Err(malformed(
                "it is not key id, timestamp and a 64-byte signature",
            ));
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&blob[4..12]);
        let time = u64::from_be_bytes(time);
        if time > i64::MAX as u64 {
            return Err(malformed("its timestamp exceeds 2^63 - 1"));
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&blob[12..]);
        self.key
            .verify_strict(
                &signed_message(body, time),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| CosignatureError::BadSignature {
                name: self.name.clone(),
            })?;
        Ok(Cosigned { time })
    }
}

impl fmt::Display for WitnessVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = Vec::with_capacity(33);
        material.push(ALG_COSIGNATURE_V1);
        material.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            BASE64.encode(&material)
        )
    }
}

impl fmt::Debug for WitnessVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessVerifier({self})")
    }
}

impl FromStr for WitnessVerifier {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<WitnessVerifier, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            what: "witness key",
            reason: reason.to_owned(),
        };
        let (name, key_id, material) = split_fields(text.trim_end_matches('\n'))
            .ok_or_else(|| malformed("expected <name>+<keyid>+<key>"))?;
        check_name(name)?;
        let public = match material.as_slice() {
            [ALG_COSIGNATURE_V1, public @ ..] => <[u8; 32]>::try_from(public)
                .map_err(|_| malformed("the Ed25519 public key must be 32 bytes"))?,
            _ => return Err(malformed("the key is not a cosignature/v1 (type 0x04) key")),
        };
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| malformed("the public key is not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(malformed("the public key has small order"));
        }
        if key_id_of(name, &key) != key_id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(WitnessVerifier {
            name: name.to_owned(),
            key_id,
            key,
        })
    }
}

/// `<name>+<keyid hex>+<base64>` → its parts (the name may not contain `+`).
fn split_fields(text: &str) -> Option<(&str, [u8; 4], Vec<u8>)> {
    let mut parts = text.splitn(3, '+');
    let name = parts.next()?;
    let key_id = hex::decode(parts.next()?).ok()?;
    let material = BASE64.decode(parts.next()?).ok()?;
    Some((name, <[u8; 4]>::try_from(key_id).ok()?, material))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn witness() -> WitnessKey {
        WitnessKey::from_seed("witness.example.com/w1", &[7; 32]).unwrap()
    }

    fn note_with(lines: &[String]) -> String {
        format!("{BODY}\n{}", lines.concat())
    }

    #[test]
    fn a_cosignature_verifies_with_its_time_and_keys_round_trip() {
        let key = witness();
        let line = key.cosign(BODY, 1_679_315_147);
        let note = note_with(&["\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n".to_owned(), line]);
        assert_eq!(key.verifier().verify(&note).unwrap().time, 1_679_315_147);
        let vkey: WitnessVerifier = key.verifier().to_string().parse().unwrap();
        assert_eq!(&vkey, key.verifier());
        let again: WitnessKey = key.private_key_text().parse().unwrap();
        assert_eq!(again.verifier(), key.verifier());
        assert!(!format!("{key:?}").contains(&key.private_key_text()));
    }

    #[test]
    fn the_signed_message_is_the_specs_layout() {
        assert_eq!(
            String::from_utf8(signed_message(BODY, 1_679_315_147)).unwrap(),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn altered_checkpoints_other_witnesses_and_bad_blobs_are_refused() {
        let key = witness();
        let line = key.cosign(BODY, 1_700_000_000);
        let altered = note_with(std::slice::from_ref(&line)).replace("20852163", "20852164");
        assert!(matches!(
            key.verifier().verify(&altered),
            Err(CosignatureError::BadSignature { .. })
        ));
        // A different time in the blob breaks the signature.
        let mut blob = BASE64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        blob[11] ^= 1;
        let forged = format!("\u{2014} witness.example.com/w1 {}\n", BASE64.encode(&blob));
        assert!(matches!(
            key.verifier().verify(&note_with(&[forged])),
            Err(CosignatureError::BadSignature { .. })
        ));
        // Another witness's key with the same name is not this witness.
        let other = WitnessKey::from_seed("witness.example.com/w1", &[8; 32]).unwrap();
        let note = note_with(&[other.cosign(BODY, 1_700_000_000)]);
        assert!(matches!(
            key.verifier().verify(&note),
            Err(CosignatureError::Missing { .. })
        ));
        // A truncated blob.
        let short = format!(
            "\u{2014} witness.example.com/w1 {}\n",
            BASE64.encode(&blob[..40])
        );
        assert!(matches!(
            key.verifier().verify(&note_with(&[short])),
            Err(CosignatureError::Malformed { .. })
        ));
        assert!("bad name+00000000+AA==".parse::<WitnessVerifier>().is_err());
        // An appliance (type 0x01) key is not a witness key.
        let appliance = crate::ApplianceKey::from_seed(&[1; 32])
            .verifier()
            .to_string();
        let mut parts = appliance.splitn(3, '+');
        let (name, id) = (parts.next().unwrap(), parts.next().unwrap());
        let material = parts.next().unwrap();
        assert!(
            format!("{name}+{id}+{material}")
                .parse::<WitnessVerifier>()
                .is_err()
        );
    }
}
