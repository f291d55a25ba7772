//! The fleet's image releases and staged rollouts: which vendor-signed manifest each appliance is
//! offered. Releases are the vendor's manifests kept verbatim (checked against `[fleet]
//! vendor_key` when added, and again by every appliance against the key it pins, so Central
//! Command can withhold an update but never forge one); a partner's rollout offers a release to
//! a share of its appliances and to named practices first.

use sha2::Digest;
use sqlx::PgPool;
use update_manifest::{SignedManifest, VendorKey, Version};

/// Why a release could not be added; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The manifest is not the vendor's, or not usable.
    #[error("the manifest is refused")]
    Manifest(#[from] update_manifest::ManifestError),
    /// Its version is not `MAJOR.MINOR.PATCH`.
    #[error(transparent)]
    Version(#[from] update_manifest::VersionParseError),
    /// The same version is already kept with a counter at least as high.
    #[error(
        "release {version} is already kept with counter {kept}; a re-signed manifest must carry a higher counter than {offered}"
    )]
    NotNewer {
        /// The version.
        version: String,
        /// The kept counter.
        kept: i64,
        /// The offered counter.
        offered: u64,
    },
    /// No such release.
    #[error("no release {0}; `osiris-central admin release list` shows them")]
    NoSuchRelease(String),
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

/// The bucket (0–99) an appliance falls in for one release: fixed, so raising a rollout's share
/// only ever adds appliances, and different per release, so the same appliances are not always
/// first.
pub fn bucket(appliance_key: &str, version: &str) -> u8 {
    let digest = sha2::Sha256::digest(format!("{appliance_key}\n{version}").as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    (head % 100) as u8
}

/// A partner's rollout of one release, as the offer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The release's version.
    pub version: Version,
    /// The share of the partner's appliances offered it (0–100).
    pub percent: u8,
    /// Practices offered it whatever the share.
    pub practices: Vec<i64>,
    /// POSIX seconds after which the manifest is refused by appliances.
    pub expires_at: i64,
    /// The vendor's signed manifest, verbatim.
    pub manifest: Vec<u8>,
}

/// Whether `rollout` includes the appliance with key `appliance_key` in practice `practice_id`.
pub fn includes(rollout: &Rollout, appliance_key: &str, practice_id: i64) -> bool {
    rollout.practices.contains(&practice_id)
        || bucket(appliance_key, &rollout.version.to_string()) < rollout.percent
}

/// The rollout an appliance is offered now: the newest release that includes it and has not
/// expired.
pub fn offer<'a>(
    rollouts: &'a [Rollout],
    appliance_key: &str,
    practice_id: i64,
    now: i64,
) -> Option<&'a Rollout> {
    rollouts
        .iter()
        .filter(|r| r.expires_at > now && includes(r, appliance_key, practice_id))
        .max_by_key(|r| r.version)
}

/// Keeps a vendor-signed manifest as a release (or replaces the kept manifest of the same
/// version with a re-signed one of a higher counter); returns its version.
pub async fn add_release(
    pool: &PgPool,
    vendor: &VendorKey,
    manifest_json: &[u8],
    actor: &str,
    now: time::OffsetDateTime,
) -> Result<String, FleetError> {
    let signed = SignedManifest::from_json(manifest_json)?;
    let manifest = signed.verify(vendor)?;
    manifest.check_fresh(now, None)?;
    let version = manifest.version()?.to_string();
    let expires = manifest.expiry()?;
    let counter = i64::try_from(manifest.counter).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    let kept: Option<i64> =
        sqlx::query_scalar("SELECT counter FROM releases WHERE version = $1 FOR UPDATE")
            .bind(&version)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(kept) = kept
        && kept >= counter
    {
        return Err(FleetError::NotNewer {
            version,
            kept,
            offered: manifest.counter,
        });
    }
    sqlx::query(
        "INSERT INTO releases (version, manifest, counter, expires_at, added_by)
         VALUES ($1, $2, $3, to_timestamp($4), $5)
         ON CONFLICT (version) DO UPDATE SET manifest = EXCLUDED.manifest, counter = EXCLUDED.counter,
             expires_at = EXCLUDED.expires_at, added_at = now(), added_by = EXCLUDED.added_by",
    )
    .bind(&version)
    .bind(manifest_json)
    .bind(counter)
    .bind(expires.unix_timestamp() as f64)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES (NULL, $1, 'release.add', $2)",
    )
    .bind(actor)
    .bind(serde_json::json!({"version": version, "counter": counter}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// A partner's rollouts, each with its release's manifest.
pub async fn partner_rollouts(pool: &PgPool, partner_id: i64) -> Result<Vec<Rollout>, sqlx::Error> {
    /// Version, share, practices, expiry (POSIX seconds), manifest.
    type Row = (String, i32, Vec<i64>, i64, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.version, o.percent, o.practices, extract(epoch FROM r.expires_at)::bigint, r.manifest
         FROM rollouts o JOIN releases r ON r.id = o.release_id WHERE o.partner_id = $1",
    )
    .bind(partner_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(version, percent, practices, expires_at, manifest)| {
            Some(Rollout {
                version: version.parse().ok()?,
                percent: u8::try_from(percent.clamp(0, 100)).unwrap_or(0),
                practices,
                expires_at,
                manifest,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(version: &str, percent: u8, practices: &[i64]) -> Rollout {
        Rollout {
            version: version.parse().unwrap(),
            percent,
            practices: practices.to_vec(),
            expires_at: 2_000_000_000,
            manifest: Vec::new(),
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("osiris-appliance/{i:08x}+0badc0de+AQ=="))
            .collect()
    }

    #[test]
    fn a_share_offers_about_that_share_and_raising_it_only_adds() {
        let keys = keys(2000);
        let offered = |percent: u8| -> Vec<&String> {
            let r = rollout("1.2.0", percent, &[]);
            keys.iter().filter(|k| includes(&r, k, 1)).collect()
        };
        let (none, ten, fifty, all) = (offered(0), offered(10), offered(50), offered(100));
        assert!(none.is_empty());
        assert_eq!(all.len(), 2000);
        assert!((150..=250).contains(&ten.len()), "{}", ten.len());
        assert!((900..=1100).contains(&fifty.len()), "{}", fifty.len());
        assert!(
            ten.iter().all(|k| fifty.contains(k)),
            "raising the share removed an appliance"
        );
        // Another release picks other appliances first.
        let other = rollout("1.3.0", 10, &[]);
        let other_ten: Vec<&String> = keys.iter().filter(|k| includes(&other, k, 1)).collect();
        assert_ne!(ten, other_ten);
    }

    #[test]
    fn named_practices_first_then_the_newest_release_that_includes_the_appliance() {
        let key = "osiris-appliance/00000001+0badc0de+AQ==";
        let first = rollout("1.2.0", 0, &[7]);
        let later = rollout("1.3.0", 0, &[]);
        let rollouts = [first.clone(), later.clone()];
        assert_eq!(offer(&rollouts, key, 7, 0), Some(&first));
        assert_eq!(offer(&rollouts, key, 8, 0), None);
        let everyone = rollout("1.3.0", 100, &[]);
        assert_eq!(
            offer(&[first.clone(), everyone.clone()], key, 7, 0),
            Some(&everyone)
        );
        // An expired manifest is never offered (the appliance would refuse it).
        assert_eq!(
            offer(std::slice::from_ref(&first), key, 7, 2_000_000_000),
            None
        );
    }
}
