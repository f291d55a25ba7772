//! The signed image update manifest (docs/UPDATES.md): its JSON format, Ed25519 verification
//! against the pinned vendor key, the version rules (no downgrade, no skipping past
//! `min_version`), and freshness: every manifest expires, and its counter never goes back (an old
//! signed manifest replayed by whoever sits between the appliance and the vendor is refused).
//! Pure: the appliance's updater and Central Command (which relays manifests to its fleet) both
//! judge manifests with it.

use std::fmt;
use std::str::FromStr;

pub mod release;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separation: the signature covers this prefix followed by the payload bytes.
pub const MANIFEST_SIGNING_CONTEXT: &[u8] = b"osiris-update-manifest/v1\n";

/// The `schema` value of every v1 manifest payload.
pub const MANIFEST_SCHEMA_V1: &str = "osiris.update/v1";

/// The payload key naming the signed UKI.
const UKI_KEY: &str = "uki";

/// The Nix store directory every store path in a manifest lives in.
const STORE_DIR: &str = "/nix/store/";

/// What the vendor publishes: the payload (manifest JSON) and a detached signature over it.
///
/// The payload travels base64-encoded so that the signed bytes are exactly the bytes verified;
/// no JSON canonicalisation is involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    /// Name of the signing key, e.g. `osiris-vendor-1`; must equal the pinned key's name.
    pub key: String,
    /// Standard base64 of the manifest JSON bytes.
    pub payload: String,
    /// Standard base64 Ed25519 signature over [`MANIFEST_SIGNING_CONTEXT`] ‖ payload bytes.
    pub signature: String,
}

/// One update: which system to boot next and where to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_SCHEMA_V1`].
    pub schema: String,
    /// Release version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The installed version must be at least this to apply the update.
    pub min_version: String,
    /// The NixOS system closure's top-level store path, e.g. `/nix/store/…-nixos-system-osiris-1.2.0`.
    pub system: String,
    /// Binary cache holding the closure: `https://…` (or `file://…` for tests and offline media).
    pub cache_url: String,
    /// Keys (`name:base64`) whose narinfo signatures are accepted for this closure.
    /// Each must also be pinned on the appliance; the manifest cannot add trust.
    pub cache_keys: Vec<String>,
    /// RFC 3339 release time (informational; recorded in evidence).
    pub released: String,
    /// RFC 3339 time after which the manifest is refused, so a network attacker cannot keep
    /// offering an old release forever (freeze) or hold one back for later. Required: a
    /// manifest without it does not verify (`default` only lets old state files load).
    #[serde(default)]
    pub expires: String,
    /// The vendor's manifest counter, increased with every manifest published; an appliance
    /// never accepts a lower counter than the last manifest it accepted. Required, at least 1.
    #[serde(default)]
    pub counter: u64,
}

/// A signed unified kernel image (kernel, initrd and command line in one EFI binary) named by the
/// optional `uki` key of a manifest payload, beside the [`Manifest`] fields and covered by the same
/// signature ([`SignedManifest::verify_release`]). A payload without `uki` verifies as before; it
/// is applicable only on appliances without Secure Boot ([`check_secure_boot`]). The UKI is: its own store path in the binary cache (signed like every closure path) and the
/// SHA-256 of the file, checked again before it is copied to the ESP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uki {
    /// The UKI file: a store path, or a file directly inside one
    /// (`/nix/store/…-osiris-uki-1.2.0/osiris_1.2.0.efi`).
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The pinned vendor key that signs manifests, written `name:base64(32-byte public key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorKey {
    name: String,
    key: VerifyingKey,
}

/// A release version `MAJOR.MINOR.PATCH`, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Features.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
}

/// Why a manifest was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file is not a `SignedManifest` JSON object.
    #[error(
        "update manifest is not valid JSON ({0}); fetch it again or ask the vendor for a new one"
    )]
    Envelope(serde_json::Error),
    /// The signature names another key than the pinned one.
    #[error(
        "update manifest is signed by key `{got}` but this appliance only trusts `{pinned}`; refusing it"
    )]
    WrongKey {
        /// Key name in the manifest.
        got: String,
        /// Pinned key name.
        pinned: String,
    },
    /// Payload or signature is not base64, or the signature is not 64 bytes.
    #[error("update manifest {what} is malformed: {reason}")]
    Encoding {
        /// `payload` or `signature`.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The signature does not verify under the pinned key.
    #[error(
        "update manifest signature does not verify under the pinned vendor key `{key}`; it was altered or signed by someone else"
    )]
    BadSignature {
        /// Pinned key name.
        key: String,
    },
    /// The signed payload is not a valid manifest.
    #[error("signed update manifest is not a valid v1 manifest: {0}")]
    Payload(String),
    /// The manifest's version is not newer than the installed one.
    #[error(
        "update {offered} is not newer than the installed {installed}; downgrades and re-installs are refused"
    )]
    Downgrade {
        /// Version in the manifest.
        offered: Version,
        /// Installed version.
        installed: Version,
    },
    /// The installed version is older than the manifest's `min_version`.
    #[error(
        "update {offered} needs at least {min_version} installed, but this appliance runs {installed}; apply the intermediate release first"
    )]
    TooOld {
        /// Version in the manifest.
        offered: Version,
        /// The manifest's `min_version`.
        min_version: Version,
        /// Installed version.
        installed: Version,
    },
    /// The manifest names a cache key this appliance does not pin.
    #[error(
        "update manifest names cache key `{0}`, which is not pinned on this appliance; refusing it"
    )]
    UnpinnedCacheKey(String),
    /// The manifest's `expires` time has passed.
    #[error(
        "update manifest {counter} expired at {expires}; fetch the current manifest from the vendor"
    )]
    Expired {
        /// The manifest's counter.
        counter: u64,
        /// The manifest's `expires`.
        expires: String,
    },
    /// The appliance boots with Secure Boot on and the manifest names no signed UKI.
    #[error(
        "update {0} names no signed kernel image (`uki`), but this appliance boots with Secure Boot on and would refuse an unsigned kernel; ask the vendor for a manifest with `uki`"
    )]
    NoUki(String),
    /// The manifest's counter is below (or, for another manifest, equal to) the last accepted.
    #[error(
        "update manifest counter {offered} is not above {accepted}, the counter of the last manifest this appliance accepted; an old manifest was replayed"
    )]
    Replayed {
        /// The offered manifest's counter.
        offered: u64,
        /// The counter of the last accepted manifest.
        accepted: u64,
    },
}

/// A key string that could not be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "key `{input}` is invalid: {reason}; expected `name:base64` of a 32-byte Ed25519 public key"
)]
pub struct KeyParseError {
    input: String,
    reason: String,
}

/// A version string that is not `MAJOR.MINOR.PATCH`.
#[derive(Debug, thiserror::Error)]
#[error("version `{0}` is invalid: use MAJOR.MINOR.PATCH with decimal numbers, e.g. 1.4.2")]
pub struct VersionParseError(String);

impl SignedManifest {
    /// Parses the published JSON (does not verify it).
    pub fn from_json(bytes: &[u8]) -> Result<SignedManifest, ManifestError> {
        serde_json::from_slice(bytes).map_err(ManifestError::Envelope)
    }

    /// Signs a manifest (vendor side and tests): the payload is the manifest's JSON.
    pub fn sign(manifest: &Manifest, key_name: &str, signing_key: &SigningKey) -> SignedManifest {
        SignedManifest::sign_release(manifest, None, key_name, signing_key)
    }

    /// Signs a manifest naming the release's signed UKI (`uki` beside the manifest's fields).
    pub fn sign_release(
        manifest: &Manifest,
        uki: Option<&Uki>,
        key_name: &str,
        signing_key: &SigningKey,
    ) -> SignedManifest {
        // Serialising a struct of strings cannot fail.
        let mut value = serde_json::to_value(manifest).unwrap_or_default();
        if let (Some(uki), Some(fields)) = (uki, value.as_object_mut()) {
            fields.insert(
                UKI_KEY.to_owned(),
                serde_json::to_value(uki).unwrap_or_default(),
            );
        }
        let payload = serde_json::to_vec(&value).unwrap_or_default();
        let signature = signing_key.sign(&signed_bytes(&payload));
        let b64 = base64::engine::general_purpose::STANDARD;
        SignedManifest {
            key: key_name.to_owned(),
            payload: b64.encode(&payload),
            signature: b64.encode(signature.to_bytes()),
        }
    }

    /// Verifies the signature under `pinned` (strict Ed25519) and returns the manifest (a `uki`
    /// in the payload is checked and dropped; see [`SignedManifest::verify_release`]).
    pub fn verify(&self, pinned: &VendorKey) -> Result<Manifest, ManifestError> {
        self.verify_release(pinned).map(|(manifest, _)| manifest)
    }

    /// Verifies the signature under `pinned` (strict Ed25519) and returns the manifest and the
    /// signed UKI it names, if any.
    pub fn verify_release(
        &self,
        pinned: &VendorKey,
    ) -> Result<(Manifest, Option<Uki>), ManifestError> {
        if self.key != pinned.name {
            return Err(ManifestError::WrongKey {
                got: self.key.clone(),
                pinned: pinned.name.clone(),
            });
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64
            .decode(&self.payload)
            .map_err(|err| ManifestError::Encoding {
                what: "payload",
                reason: err.to_string(),
            })?;
        let signature = b64
            .decode(&self.signature)
            .map_err(|err| ManifestError::Encoding {
                what: "signature",
                reason: err.to_string(),
            })?;
        let signature: [u8; 64] =
            signature
                .try_into()
                .map_err(|bytes: Vec<u8>| ManifestError::Encoding {
                    what: "signature",
                    reason: format!("{} bytes instead of 64", bytes.len()),
                })?;
        pinned
            .key
            .verify_strict(&signed_bytes(&payload), &Signature::from_bytes(&signature))
            .map_err(|_| ManifestError::BadSignature {
                key: pinned.name.clone(),
            })?;
        let mut value: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|err| ManifestError::Payload(err.to_string()))?;
        let uki = match value
            .as_object_mut()
            .and_then(|fields| fields.remove(UKI_KEY))
        {
            None => None,
            Some(uki) => {
                let uki: Uki = serde_json::from_value(uki)
                    .map_err(|err| ManifestError::Payload(format!("uki: {err}")))?;
                uki.check_shape()?;
                Some(uki)
            }
        };
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|err| ManifestError::Payload(err.to_string()))?;
        manifest.check_shape()?;
        Ok((manifest, uki))
    }
}

impl Manifest {
    /// The release version.
    ///
    /// A verified manifest always has a valid version; this re-parses it.
    pub fn version(&self) -> Result<Version, VersionParseError> {
        self.version.parse()
    }

    /// Checks that the update may be applied on an appliance running `installed` whose pinned
    /// narinfo keys are `pinned_cache_keys` (`name:base64` strings).
    pub fn check_applicable(
        &self,
        installed: Version,
        pinned_cache_keys: &[String],
    ) -> Result<(), ManifestError> {
        let offered = self.parsed(&self.version)?;
        let min_version = self.parsed(&self.min_version)?;
        if offered <= installed {
            return Err(ManifestError::Downgrade { offered, installed });
        }
        if installed < min_version {
            return Err(ManifestError::TooOld {
                offered,
                min_version,
                installed,
            });
        }
        if let Some(unpinned) = self
            .cache_keys
            .iter()
            .find(|key| !pinned_cache_keys.contains(key))
        {
            return Err(ManifestError::UnpinnedCacheKey(unpinned.clone()));
        }
        Ok(())
    }

    /// Checks freshness at `now`: the manifest has not expired, and its counter is above the
    /// counter of `last_accepted` (the manifest this appliance accepted last, if any); the same
    /// manifest offered again is allowed.
    pub fn check_fresh(
        &self,
        now: time::OffsetDateTime,
        last_accepted: Option<&Manifest>,
    ) -> Result<(), ManifestError> {
        let expires = self.expiry()?;
        if now > expires {
            return Err(ManifestError::Expired {
                counter: self.counter,
                expires: self.expires.clone(),
            });
        }
        if let Some(last) = last_accepted
            && self != last
            && self.counter <= last.counter
        {
            return Err(ManifestError::Replayed {
                offered: self.counter,
                accepted: last.counter,
            });
        }
        Ok(())
    }

    /// When the manifest expires (`expires`, RFC 3339).
    pub fn expiry(&self) -> Result<time::OffsetDateTime, ManifestError> {
        time::OffsetDateTime::parse(
            &self.expires,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|err| {
            ManifestError::Payload(format!(
                "expires `{}` is not an RFC 3339 time: {err}",
                self.expires
            ))
        })
    }

    fn parsed(&self, text: &str) -> Result<Version, ManifestError> {
        text.parse()
            .map_err(|err: VersionParseError| ManifestError::Payload(err.to_string()))
    }

    fn check_shape(&self) -> Result<(), ManifestError> {
        let bad = |reason: String| Err(ManifestError::Payload(reason));
        if self.schema != MANIFEST_SCHEMA_V1 {
            return bad(format!(
                "schema is `{}`, expected `{MANIFEST_SCHEMA_V1}`",
                self.schema
            ));
        }
        self.parsed(&self.version)?;
        self.parsed(&self.min_version)?;
        if !self.system.starts_with('/') || self.system.contains("..") {
            return bad(format!(
                "system `{}` is not an absolute store path",
                self.system
            ));
        }
        if !(self.cache_url.starts_with("https://") || self.cache_url.starts_with("file://")) {
            return bad(format!(
                "cache_url `{}` must be https:// or file://",
                self.cache_url
            ));
        }
        if self.cache_keys.is_empty() {
            return bad("cache_keys is empty: a closure must be signed".to_owned());
        }
        if self.counter == 0 {
            return bad(
                "counter is missing or 0: every manifest carries a counter of at least 1"
                    .to_owned(),
            );
        }
        self.expiry()?;
        Ok(())
    }
}

/// Checks a release fits the appliance's boot chain: with Secure Boot on, the manifest must name a
/// signed UKI; without, a `uki` is allowed and unused (a type #1 entry is staged).
pub fn check_secure_boot(
    manifest: &Manifest,
    uki: Option<&Uki>,
    secure_boot: bool,
) -> Result<(), ManifestError> {
    if secure_boot && uki.is_none() {
        return Err(ManifestError::NoUki(manifest.version.clone()));
    }
    Ok(())
}

impl Uki {
    /// The store path holding the file (`/nix/store/<hash>-<name>`).
    pub fn store_path(&self) -> &str {
        let rest = self.path.strip_prefix(STORE_DIR).unwrap_or(&self.path);
        let end = rest.find('/').unwrap_or(rest.len());
        &self.path[..self.path.len() - rest.len() + end]
    }

    fn check_shape(&self) -> Result<(), ManifestError> {
        let bad = |reason: String| Err(ManifestError::Payload(reason));
        let rest = self.path.strip_prefix(STORE_DIR).unwrap_or_default();
        let mut parts = rest.split('/');
        let name = parts.next().unwrap_or_default();
        let inner: Vec<&str> = parts.collect();
        let ok_component = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
        };
        if name.len() < 34
            || name.as_bytes()[32] != b'-'
            || !ok_component(name)
            || inner.len() > 1
            || !inner.iter().all(|part| ok_component(part))
        {
            return bad(format!(
                "uki path `{}` is not a store path or a file directly inside one",
                self.path
            ));
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return bad(format!(
                "uki sha256 `{}` is not 64 lowercase hex digits",
                self.sha256
            ));
        }
        Ok(())
    }
}

impl VendorKey {
    /// Parses `name:base64`.
    pub fn parse(input: &str) -> Result<VendorKey, KeyParseError> {
        let fail = |reason: &str| KeyParseError {
            input: input.trim().to_owned(),
            reason: reason.to_owned(),
        };
        let (name, encoded) = input.trim().split_once(':').ok_or_else(|| fail("no `:`"))?;
        if name.is_empty() {
            return Err(fail("empty name"));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| fail("not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| fail("not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| fail("not a valid point"))?;
        if key.is_weak() {
            return Err(fail("weak (small-order) key"));
        }
        Ok(VendorKey {
            name: name.to_owned(),
            key,
        })
    }

    /// The public half of `signing_key`, named `name` (vendor tooling and tests).
    pub fn from_signing_key(name: &str, signing_key: &SigningKey) -> VendorKey {
        VendorKey {
            name: name.to_owned(),
            key: signing_key.verifying_key(),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for VendorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes());
        write!(f, "{}:{encoded}", self.name)
    }
}

impl FromStr for Version {
    type Err = VersionParseError;

    fn from_str(text: &str) -> Result<Version, VersionParseError> {
        let fail = || VersionParseError(text.to_owned());
        let mut parts = text.split('.');
        let mut next = || -> Result<u64, VersionParseError> {
            let part = parts.next().ok_or_else(fail)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 9 {
                return Err(fail());
            }
            part.parse().map_err(|_| fail())
        };
        let version = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(fail());
        }
        Ok(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MANIFEST_SIGNING_CONTEXT.len() + payload.len());
    bytes.extend_from_slice(MANIFEST_SIGNING_CONTEXT);
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn manifest(version: &str) -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA_V1.to_owned(),
            version: version.to_owned(),
            min_version: "1.0.0".to_owned(),
            system: "/nix/store/fasxgd8wp5lvfmc49983i5c39alw3qfy-osiris-system-1.1.0".to_owned(),
            cache_url: "https://updates.example.invalid/cache".to_owned(),
            cache_keys: vec!["cache-1:AAAA".to_owned()],
            released: "2026-11-28T00:00:00Z".to_owned(),
            expires: "2026-12-28T00:00:00Z".to_owned(),
            counter: 7,
        }
    }

    const UKI_STORE: &str = "/nix/store/0c3n6lv3nn7d8ywh7jm0bqdj7xqrvrhf-osiris-uki-1.2.0";

    /// The `uki` key: covered by the signature, optional for appliances without Secure Boot,
    /// required with it, and shape-checked (a store path, a hex SHA-256).
    #[test]
    fn uki_is_signed_optional_without_secure_boot_and_required_with_it() {
        let pinned = VendorKey::from_signing_key("vendor-1", &key(1));
        let plain = manifest("1.2.0");
        // A manifest without `uki` signs the same bytes as before the key existed.
        let signed = SignedManifest::sign(&plain, "vendor-1", &key(1));
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            b64.decode(&signed.payload).unwrap(),
            serde_json::to_vec(&plain).unwrap()
        );
        let (verified, uki) = signed.verify_release(&pinned).unwrap();
        assert_eq!(uki, None);
        check_secure_boot(&verified, None, false).unwrap();
        let err = check_secure_boot(&verified, None, true).unwrap_err();
        assert!(matches!(err, ManifestError::NoUki(_)), "{err}");
        assert!(err.to_string().contains("Secure Boot"), "{err}");

        let uki = Uki {
            path: format!("{UKI_STORE}/osiris_1.2.0.efi"),
            sha256: "ab".repeat(32),
        };
        let signed = SignedManifest::sign_release(&plain, Some(&uki), "vendor-1", &key(1));
        let (verified, got) = signed.verify_release(&pinned).unwrap();
        assert_eq!(verified, plain);
        assert_eq!(got.as_ref(), Some(&uki));
        check_secure_boot(&verified, got.as_ref(), true).unwrap();
        assert_eq!(uki.store_path(), UKI_STORE);
        // `verify` (Central Command's relay) accepts the payload and drops the UKI.
        assert_eq!(signed.verify(&pinned).unwrap(), plain);

        // The signature covers the UKI: another hash in the same envelope does not verify.
        let mut altered = signed.clone();
        let forged = Uki {
            sha256: "cd".repeat(32),
            ..uki.clone()
        };
        altered.payload =
            SignedManifest::sign_release(&plain, Some(&forged), "vendor-1", &key(1)).payload;
        assert!(matches!(
            altered.verify_release(&pinned),
            Err(ManifestError::BadSignature { .. })
        ));
        // Unknown keys inside `uki` are refused like anywhere else in the payload.
        let mut value = serde_json::to_value(&plain).unwrap();
        value["uki"] =
            serde_json::json!({"path": UKI_STORE, "sha256": "ab".repeat(32), "extra": 1});
        let payload = serde_json::to_vec(&value).unwrap();
        let odd = SignedManifest {
            key: "vendor-1".to_owned(),
            payload: b64.encode(&payload),
            signature: b64.encode(key(1).sign(&signed_bytes(&payload)).to_bytes()),
        };
        let err = odd.verify_release(&pinned).unwrap_err();
        assert!(err.to_string().contains("uki"), "{err}");
    }

    #[test]
    fn uki_paths_and_hashes_are_shape_checked() {
        let pinned = VendorKey::from_signing_key("vendor-1", &key(1));
        let good = "ab".repeat(32);
        for (path, sha256, complaint) in [
            ("/boot/EFI/Linux/osiris.efi", good.as_str(), "store path"),
            (
                &format!("{UKI_STORE}/../../etc/shadow") as &str,
                &good,
                "store path",
            ),
            (&format!("{UKI_STORE}/a/b.efi"), &good, "store path"),
            ("/nix/store/short-uki", &good, "store path"),
            (UKI_STORE, "AB", "sha256"),
            (UKI_STORE, &"AB".repeat(32), "sha256"),
        ] {
            let uki = Uki {
                path: path.to_owned(),
                sha256: sha256.to_owned(),
            };
            let err =
                SignedManifest::sign_release(&manifest("1.2.0"), Some(&uki), "vendor-1", &key(1))
                    .verify_release(&pinned)
                    .unwrap_err();
            assert!(err.to_string().contains(complaint), "{path}: {err}");
        }
        let bare = Uki {
            path: UKI_STORE.to_owned(),
            sha256: good,
        };
        let (_, got) =
            SignedManifest::sign_release(&manifest("1.2.0"), Some(&bare), "vendor-1", &key(1))
                .verify_release(&pinned)
                .unwrap();
        assert_eq!(got.unwrap().store_path(), UKI_STORE);
    }

    fn at(text: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn manifests_without_expiry_or_counter_do_not_verify() {
        let pinned = VendorKey::from_signing_key("vendor-1", &key(1));
        let mut old_style = serde_json::to_value(manifest("1.1.0")).unwrap();
        let fields = old_style.as_object_mut().unwrap();
        fields.remove("expires");
        fields.remove("counter");
        let payload = serde_json::to_vec(&old_style).unwrap();
        let signed = SignedManifest {
            key: "vendor-1".to_owned(),
            payload: base64::engine::general_purpose::STANDARD.encode(&payload),
            signature: base64::engine::general_purpose::STANDARD
                .encode(key(1).sign(&signed_bytes(&payload)).to_bytes()),
        };
        let err = signed.verify(&pinned).unwrap_err();
        assert!(err.to_string().contains("counter"), "{err}");
        let mut no_expiry = manifest("1.1.0");
        no_expiry.expires = "next year".to_owned();
        let err = SignedManifest::sign(&no_expiry, "vendor-1", &key(1))
            .verify(&pinned)
            .unwrap_err();
        assert!(err.to_string().contains("expires"), "{err}");
    }

    /// Issue 14: an attacker between appliance and vendor replays an old, validly signed
    /// manifest (an older release the appliance has not passed yet, or one the vendor
    /// withdrew), or keeps offering a stale one.
    #[test]
    fn expired_and_replayed_manifests_are_refused() {
        let current = manifest("1.2.0");
        let now = at("2026-12-01T00:00:00Z");
        current.check_fresh(now, None).unwrap();
        current.check_fresh(now, Some(&current)).unwrap();
        let err = current
            .check_fresh(at("2026-12-28T00:00:01Z"), None)
            .unwrap_err();
        assert!(
            matches!(err, ManifestError::Expired { counter: 7, .. }),
            "{err}"
        );

        let mut older = manifest("1.1.5");
        older.counter = 6;
        let err = older.check_fresh(now, Some(&current)).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::Replayed {
                    offered: 6,
                    accepted: 7
                }
            ),
            "{err}"
        );
        let mut same_counter = manifest("1.3.0");
        same_counter.counter = 7;
        assert!(same_counter.check_fresh(now, Some(&current)).is_err());
        let mut newer = manifest("1.3.0");
        newer.counter = 8;
        newer.check_fresh(now, Some(&current)).unwrap();
    }

    #[test]
    fn signed_manifest_round_trips_through_json_and_verifies() {
        let signed = SignedManifest::sign(&manifest("1.1.0"), "vendor-1", &key(1));
        let json = serde_json::to_vec(&signed).unwrap();
        let parsed = SignedManifest::from_json(&json).unwrap();
        let pinned =
            VendorKey::parse(&VendorKey::from_signing_key("vendor-1", &key(1)).to_string())
                .unwrap();
        assert_eq!(parsed.verify(&pinned).unwrap(), manifest("1.1.0"));
    }

    #[test]
    fn wrong_key_name_wrong_key_and_altered_payload_are_refused() {
        let signed = SignedManifest::sign(&manifest("1.1.0"), "vendor-1", &key(1));
        let other = VendorKey::from_signing_key("vendor-2", &key(1));
        assert!(matches!(
            signed.verify(&other),
            Err(ManifestError::WrongKey { .. })
        ));
        let impostor = VendorKey::from_signing_key("vendor-1", &key(2));
        let err = signed.verify(&impostor).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
        assert!(err.to_string().contains("does not verify"), "{err}");

        let mut altered = signed.clone();
        let forged = serde_json::to_vec(&manifest("9.0.0")).unwrap();
        altered.payload = base64::engine::general_purpose::STANDARD.encode(forged);
        let pinned = VendorKey::from_signing_key("vendor-1", &key(1));
        assert!(matches!(
            altered.verify(&pinned),
            Err(ManifestError::BadSignature { .. })
        ));
    }

    #[test]
    fn downgrade_reinstall_and_too_old_are_refused() {
        let pinned = vec!["cache-1:AAAA".to_owned()];
        let m = manifest("1.1.0");
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(m.check_applicable(v("1.0.9"), &pinned).is_ok());
        assert!(matches!(
            m.check_applicable(v("1.1.0"), &pinned),
            Err(ManifestError::Downgrade { .. })
        ));
        assert!(matches!(
            m.check_applicable(v("1.10.0"), &pinned),
            Err(ManifestError::Downgrade { .. })
        ));
        assert!(matches!(
            m.check_applicable(v("0.9.0"), &pinned),
            Err(ManifestError::TooOld { .. })
        ));
        assert!(matches!(
            m.check_applicable(v("1.0.0"), &["other:BBBB".to_owned()]),
            Err(ManifestError::UnpinnedCacheKey(_))
        ));
    }

    #[test]
    fn versions_parse_strictly_and_compare_numerically() {
        assert!("1.10.0".parse::<Version>().unwrap() > "1.9.9".parse().unwrap());
        for bad in ["1.2", "1.2.3.4", "1.-2.3", "v1.2.3", "", "1..3", "1.2.x"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }
}
