//! Secrets sealed to one recipient's X25519 key (RFC 9180 HPKE, base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305): how escalation-channel secrets
//! travel from Central Command to an appliance, readable by that appliance only (not by a proxy
//! that terminates TLS), and how Central Command keeps them at rest. `info` binds a sealed
//! value to its purpose and owner, so one sealed for another appliance or channel does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// A sealed value: the encapsulated key and the ciphertext, standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// The sender's encapsulated (ephemeral) public key.
    pub enc: String,
    /// The ciphertext with its tag.
    pub ciphertext: String,
}

/// A value that does not open: wrong key, wrong `info`, or altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed secret does not open: {0}")]
pub struct SealError(String);

/// The operating system's randomness, for HPKE's ephemeral keys.
struct SysRng;

impl hpke::rand_core::RngCore for SysRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Without randomness no key can be made safely: stop rather than seal predictably.
        #[allow(clippy::expect_used, reason = "no safe fallback without OS randomness")]
        getrandom::fill(dest).expect("the operating system's random number generator failed");
    }
}

impl hpke::rand_core::CryptoRng for SysRng {}

/// A recipient's key pair from 32 secret bytes (any 32 random bytes, or derived with HKDF).
pub struct OpeningKey(<Kem as hpke::Kem>::PrivateKey);

impl std::fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpeningKey(<secret>)")
    }
}

impl OpeningKey {
    /// The key pair derived from `ikm` (at least 32 secret bytes), as RFC 9180 `DeriveKeyPair`.
    pub fn derive(ikm: &[u8]) -> OpeningKey {
        OpeningKey(Kem::derive_keypair(ikm).0)
    }

    /// The public key to seal to, standard base64.
    pub fn public(&self) -> String {
        BASE64.encode(Kem::sk_to_pk(&self.0).to_bytes())
    }

    /// Opens a value sealed to this key with the same `info`.
    pub fn open(&self, sealed: &Sealed, info: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let enc = BASE64
            .decode(&sealed.enc)
            .map_err(|_| SealError("enc is not base64".into()))?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc)
            .map_err(|err| SealError(format!("enc: {err}")))?;
        let ciphertext = BASE64
            .decode(&sealed.ciphertext)
            .map_err(|_| SealError("ciphertext is not base64".into()))?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &self.0,
            &enc,
            info,
            &ciphertext,
            b"",
        )
        .map(Zeroizing::new)
        .map_err(|err| SealError(err.to_string()))
    }
}

/// Seals `plaintext` to the public key `recipient` (standard base64 of 32 bytes) for `info`.
pub fn seal(recipient: &str, plaintext: &[u8], info: &[u8]) -> Result<Sealed, SealError> {
    let key = BASE64
        .decode(recipient)
        .map_err(|_| SealError("the recipient key is not base64".into()))?;
    let key = <Kem as hpke::Kem>::PublicKey::from_bytes(&key)
        .map_err(|err| SealError(format!("the recipient key: {err}")))?;
    let (enc, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &key,
        info,
        plaintext,
        b"",
        &mut SysRng,
    )
    .map_err(|err| SealError(err.to_string()))?;
    Ok(Sealed {
        enc: BASE64.encode(enc.to_bytes()),
        ciphertext: BASE64.encode(ciphertext),
    })
}

/// The `info` of a channel secret sealed for appliance `appliance_id`.
pub fn channel_info(appliance_id: i64, channel: &str) -> Vec<u8> {
    format!("osiris-link/channel-secret/v1\n{appliance_id}\n{channel}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_with_the_same_info_opens_it() {
        let appliance = OpeningKey::derive(&[7; 32]);
        let other = OpeningKey::derive(&[8; 32]);
        let info = channel_info(3, "oncall");
        let sealed = seal(
            &appliance.public(),
            b"https://hooks.example/T0/B0/secret",
            &info,
        )
        .unwrap();
        assert!(!sealed.ciphertext.contains("hooks"));
        assert_eq!(
            appliance.open(&sealed, &info).unwrap().as_slice(),
            b"https://hooks.example/T0/B0/secret"
        );
        // Another appliance's key, or the same secret presented for another appliance or
        // channel, does not open.
        assert!(other.open(&sealed, &info).is_err());
        assert!(appliance.open(&sealed, &channel_info(4, "oncall")).is_err());
        assert!(appliance.open(&sealed, &channel_info(3, "pager")).is_err());
        // Altered in transit: refused.
        let mut altered = sealed.clone();
        let mut bytes = BASE64.decode(&altered.ciphertext).unwrap();
        bytes[0] ^= 1;
        altered.ciphertext = BASE64.encode(bytes);
        assert!(appliance.open(&altered, &info).is_err());
        // Two seals of the same secret differ (fresh ephemeral keys).
        assert_ne!(
            seal(&appliance.public(), b"x", &info).unwrap(),
            seal(&appliance.public(), b"x", &info).unwrap()
        );
    }
}
