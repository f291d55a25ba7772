//! The vendor's side of a release (`osiris-release manifest`, docs/UPDATES.md "Publishing a
//! release"): a manifest is built from what the release pipeline produced, checked the way an
//! appliance will check it, and signed. Everything an appliance would refuse, and what would make
//! a release unusable or weaken the freshness rules (a `min_version` above the release, a manifest
//! valid for more than [`MAX_VALIDITY_DAYS`]), is refused here, before anything is published.

use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

use crate::{MANIFEST_SCHEMA_V1, Manifest, ManifestError, SignedManifest, Uki, VendorKey, Version};

/// The longest a manifest may stay valid: the vendor re-signs the current manifest before it
/// expires; a long validity lets whoever holds an old manifest freeze an appliance that long.
pub const MAX_VALIDITY_DAYS: i64 = 90;

/// What the release pipeline produced and the vendor decides for one release.
#[derive(Debug, Clone)]
pub struct Release {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The oldest installed release that may update to this one.
    pub min_version: String,
    /// The system closure's top-level store path.
    pub system: String,
    /// The binary cache holding the closure (and the UKI): `https://…` or `file://…`.
    pub cache_url: String,
    /// The narinfo keys (`name:base64`) that signed the closure.
    pub cache_keys: Vec<String>,
    /// Above every counter the vendor published before.
    pub counter: u64,
    /// When the manifest stops being accepted.
    pub expires: OffsetDateTime,
    /// The Secure Boot-signed UKI, for appliances with Secure Boot (required there).
    pub uki: Option<Uki>,
}

/// Why a release was not signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The manifest would not verify on an appliance.
    #[error("an appliance would refuse this manifest: {0}")]
    Refused(#[from] ManifestError),
    /// `min_version` above `version`: no appliance could ever install the release.
    #[error(
        "min_version {min_version} is above the release's version {version}: no appliance could install it; give a min_version at most {version}"
    )]
    MinVersionAbove {
        /// The release.
        version: Version,
        /// The minimum asked for.
        min_version: Version,
    },
    /// A cache key that is not `name:base64` of an Ed25519 public key.
    #[error(
        "cache key `{0}` is not `name:base64` of a 32-byte Ed25519 public key (as `nix key convert-secret-to-public` prints it)"
    )]
    CacheKey(String),
    /// The manifest would expire at once, or too late.
    #[error(
        "expires {expires} is {reason}: give a time between now and {MAX_VALIDITY_DAYS} days from now, and re-sign the current release before it expires"
    )]
    Validity {
        /// The requested expiry (RFC 3339).
        expires: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Builds, checks and signs the manifest of `release` at `now` with the vendor key `key_name`.
pub fn sign(
    release: &Release,
    now: OffsetDateTime,
    key_name: &str,
    signing_key: &SigningKey,
) -> Result<SignedManifest, ReleaseError> {
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let expires = rfc3339(release.expires);
    if release.expires <= now {
        return Err(ReleaseError::Validity {
            expires,
            reason: "not in the future",
        });
    }
    if release.expires - now > time::Duration::days(MAX_VALIDITY_DAYS) {
        return Err(ReleaseError::Validity {
            expires,
            reason: "too far ahead",
        });
    }
    for key in &release.cache_keys {
        VendorKey::parse(key).map_err(|_| ReleaseError::CacheKey(key.clone()))?;
    }
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA_V1.to_owned(),
        version: release.version.clone(),
        min_version: release.min_version.clone(),
        system: release.system.clone(),
        cache_url: release.cache_url.clone(),
        cache_keys: release.cache_keys.clone(),
        released: rfc3339(now),
        expires,
        counter: release.counter,
    };
    let signed =
        SignedManifest::sign_release(&manifest, release.uki.as_ref(), key_name, signing_key);
    // The appliance's own checks: signature, shape (versions, store paths, cache URL, counter,
    // expiry, the UKI's path and hash), freshness.
    let (checked, _) =
        signed.verify_release(&VendorKey::from_signing_key(key_name, signing_key))?;
    checked.check_fresh(now, None)?;
    let (version, min_version) = (
        checked
            .version()
            .map_err(|err| ManifestError::Payload(err.to_string()))?,
        checked
            .min_version
            .parse::<Version>()
            .map_err(|err| ManifestError::Payload(err.to_string()))?,
    );
    if min_version > version {
        return Err(ReleaseError::MinVersionAbove {
            version,
            min_version,
        });
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn cache_key() -> String {
        VendorKey::from_signing_key("cache-1", &SigningKey::from_bytes(&[9; 32])).to_string()
    }

    fn release() -> Release {
        Release {
            version: "1.2.0".to_owned(),
            min_version: "1.0.0".to_owned(),
            system: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-osiris-1.2.0"
                .to_owned(),
            cache_url: "https://updates.example/cache".to_owned(),
            cache_keys: vec![cache_key()],
            counter: 12,
            expires: now() + time::Duration::days(30),
            uki: Some(Uki {
                path:
                    "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-osiris-uki-1.2.0/osiris_1.2.0.efi"
                        .to_owned(),
                sha256: "ab".repeat(32),
            }),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    #[test]
    fn a_signed_release_verifies_under_the_vendor_key_with_its_uki() {
        let signed = sign(&release(), now(), "osiris-vendor-1", &key()).unwrap();
        let (manifest, uki) = signed
            .verify_release(&VendorKey::from_signing_key("osiris-vendor-1", &key()))
            .unwrap();
        assert_eq!(manifest.version, "1.2.0");
        assert_eq!(manifest.counter, 12);
        assert_eq!(uki, release().uki);
        crate::check_secure_boot(&manifest, uki.as_ref(), true).unwrap();
    }

    #[test]
    fn what_an_appliance_would_refuse_is_not_signed() {
        type Change = Box<dyn Fn(&mut Release)>;
        let cases: Vec<(&str, Change)> = vec![
            ("not in the future", Box::new(|r| r.expires = now())),
            (
                "too far ahead",
                Box::new(|r| r.expires = now() + time::Duration::days(91)),
            ),
            (
                "no appliance could install it",
                Box::new(|r| r.min_version = "1.3.0".to_owned()),
            ),
            (
                "MAJOR.MINOR.PATCH",
                Box::new(|r| r.version = "1.2".to_owned()),
            ),
            (
                "https:// or file://",
                Box::new(|r| r.cache_url = "http://updates.example".to_owned()),
            ),
            ("counter", Box::new(|r| r.counter = 0)),
            (
                "is not `name:base64`",
                Box::new(|r| r.cache_keys = vec!["cache-1".to_owned()]),
            ),
            (
                "uki",
                Box::new(|r| r.uki.as_mut().unwrap().sha256 = "AB".repeat(32)),
            ),
            (
                "uki",
                Box::new(|r| {
                    r.uki.as_mut().unwrap().path = "/boot/EFI/Linux/osiris.efi".to_owned()
                }),
            ),
        ];
        for (expected, change) in cases {
            let mut r = release();
            change(&mut r);
            let err = sign(&r, now(), "osiris-vendor-1", &key())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
    }
}
