//! Endpoint-agent releases and their staged rollouts: which vendor-signed agent release each
//! appliance is offered, per platform. Releases are the vendor's documents kept verbatim with
//! their binaries (checked against `[fleet] agent_root` when it is set, and always the binary
//! against the document's size and SHA-256); every appliance verifies both again against the
//! root it is configured with, so Central Command can withhold a release but never forge one.
//! Rollouts work as image rollouts do ([`crate::fleet`]): a fixed bucket per appliance and
//! release, named practices first.

use std::collections::BTreeMap;

use agent_release::{Platform, TrustedRoot, Version};
use sha2::Digest;
use sqlx::PgPool;

/// Why an agent release could not be added; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentFleetError {
    /// The document is malformed or does not verify under the configured root.
    #[error("the agent release document is refused: {0}")]
    Document(#[from] agent_release::VerifyError),
    /// The binary is not the one the document names.
    #[error(
        "the binary is not the one the document names: {what}; give the binary the vendor published with this document"
    )]
    Binary {
        /// What differs.
        what: String,
    },
    /// A version below the newest kept for its platform.
    #[error(
        "agent release {platform} {offered} is older than {newest}, already kept; downgrades are refused"
    )]
    Downgrade {
        /// Its platform.
        platform: Platform,
        /// The version offered.
        offered: Version,
        /// The newest kept.
        newest: Version,
    },
    /// The same version is kept with another binary.
    #[error(
        "agent release {platform} {version} is already kept with another binary (SHA-256 {kept}); a changed build needs a new version"
    )]
    SameVersionOtherBinary {
        /// Its platform.
        platform: Platform,
        /// The version.
        version: Version,
        /// The kept binary's SHA-256, hex.
        kept: String,
    },
    /// The same release is kept already.
    #[error("agent release {platform} {version} is already kept (id {id}); nothing to do")]
    AlreadyKept {
        /// Its platform.
        platform: Platform,
        /// The version.
        version: Version,
        /// Its id.
        id: i64,
    },
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

/// A kept agent release, as `add` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Its id (what `POST /v1/agent-releases/{id}/rollout` names).
    pub id: i64,
    /// Its platform.
    pub platform: Platform,
    /// Its version.
    pub version: Version,
    /// Whether the document verified under `[fleet] agent_root` (else only its form was read).
    pub verified: bool,
}

/// Keeps a vendor-signed agent release document and its binary. With `root`, the document must
/// verify under it at `now_unix`; always, the binary must match the document's size and SHA-256,
/// and the version must be above every kept version of its platform.
pub async fn add_agent_release(
    pool: &PgPool,
    root: Option<&TrustedRoot>,
    manifest: &[u8],
    binary: &[u8],
    actor: &str,
    now_unix: u64,
) -> Result<Added, AgentFleetError> {
    let facts = agent_release::read_unverified(manifest)?;
    if let Some(root) = root {
        root.verify_manifest(manifest, now_unix)?;
    }
    if binary.len() as u64 != facts.size {
        return Err(AgentFleetError::Binary {
            what: format!(
                "it is {} bytes, the document says {}",
                binary.len(),
                facts.size
            ),
        });
    }
    let sha256: [u8; 32] = sha2::Sha256::digest(binary).into();
    if sha256 != facts.sha256 {
        return Err(AgentFleetError::Binary {
            what: format!(
                "its SHA-256 is {}, the document says {}",
                hex::encode(sha256),
                hex::encode(facts.sha256)
            ),
        });
    }
    let platform = facts.platform;
    let version = facts.version;
    let mut tx = pool.begin().await?;
    // One writer per platform at a time (the version check and the insert are one decision).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('agent_releases:' || $1))")
        .bind(platform.as_str())
        .execute(&mut *tx)
        .await?;
    let kept: Vec<(i64, String, Vec<u8>)> =
        sqlx::query_as("SELECT id, version, sha256 FROM agent_releases WHERE platform = $1")
            .bind(platform.as_str())
            .fetch_all(&mut *tx)
            .await?;
    for (id, kept_version, kept_sha) in &kept {
        let Ok(kept_version) = kept_version.parse::<Version>() else {
            continue;
        };
        if kept_version == version {
            return Err(if kept_sha.as_slice() == sha256.as_slice() {
                AgentFleetError::AlreadyKept {
                    platform,
                    version,
                    id: *id,
                }
            } else {
                AgentFleetError::SameVersionOtherBinary {
                    platform,
                    version,
                    kept: hex::encode(kept_sha),
                }
            });
        }
    }
    if let Some(newest) = kept
        .iter()
        .filter_map(|(_, v, _)| v.parse::<Version>().ok())
        .max()
        && newest > version
    {
        return Err(AgentFleetError::Downgrade {
            platform,
            offered: version,
            newest,
        });
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO agent_releases (platform, version, manifest, file_name, body, sha256, size, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(platform.as_str())
    .bind(version.to_string())
    .bind(manifest)
    .bind(&facts.file_name)
    .bind(binary)
    .bind(sha256.as_slice())
    .bind(i64::try_from(facts.size).unwrap_or(i64::MAX))
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES (NULL, $1, 'agent_release.add', $2)",
    )
    .bind(actor)
    .bind(serde_json::json!({
        "platform": platform.as_str(),
        "version": version.to_string(),
        "sha256": hex::encode(sha256),
        "verified": root.is_some(),
    }))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Added {
        id,
        platform,
        version,
        verified: root.is_some(),
    })
}

/// A partner's rollout of one agent release, as the offer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRollout {
    /// The release's id.
    pub id: i64,
    /// Its platform.
    pub platform: Platform,
    /// Its version.
    pub version: Version,
    /// The share of the partner's appliances offered it (0–100).
    pub percent: u8,
    /// Practices offered it whatever the share.
    pub practices: Vec<i64>,
}

/// Whether `rollout` includes the appliance with key `appliance_key` in practice `practice_id`
/// (the bucket is per platform and version, so different releases pick different appliances
/// first).
pub fn includes(rollout: &AgentRollout, appliance_key: &str, practice_id: i64) -> bool {
    rollout.practices.contains(&practice_id)
        || crate::fleet::bucket(
            appliance_key,
            &format!("agent/{}/{}", rollout.platform, rollout.version),
        ) < rollout.percent
}

/// What an appliance is offered now: per platform, the newest release that includes it.
pub fn offers<'a>(
    rollouts: &'a [AgentRollout],
    appliance_key: &str,
    practice_id: i64,
) -> BTreeMap<Platform, &'a AgentRollout> {
    let mut offered: BTreeMap<Platform, &AgentRollout> = BTreeMap::new();
    for rollout in rollouts
        .iter()
        .filter(|r| includes(r, appliance_key, practice_id))
    {
        let newer = offered
            .get(&rollout.platform)
            .is_none_or(|kept| kept.version < rollout.version);
        if newer {
            offered.insert(rollout.platform, rollout);
        }
    }
    offered
}

/// A partner's agent rollouts.
pub async fn partner_rollouts(
    pool: &PgPool,
    partner_id: i64,
) -> Result<Vec<AgentRollout>, sqlx::Error> {
    type Row = (i64, String, String, i32, Vec<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.id, r.platform, r.version, o.percent, o.practices
         FROM agent_rollouts o JOIN agent_releases r ON r.id = o.agent_release_id
         WHERE o.partner_id = $1",
    )
    .bind(partner_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, platform, version, percent, practices)| {
            Some(AgentRollout {
                id,
                platform: platform.parse().ok()?,
                version: version.parse().ok()?,
                percent: u8::try_from(percent.clamp(0, 100)).unwrap_or(0),
                practices,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(platform: &str, version: &str, percent: u8, practices: &[i64]) -> AgentRollout {
        AgentRollout {
            id: 1,
            platform: platform.parse().unwrap(),
            version: version.parse().unwrap(),
            percent,
            practices: practices.to_vec(),
        }
    }

    #[test]
    fn each_platform_offers_its_newest_release_that_includes_the_appliance() {
        let key = "osiris-appliance/00000001+0badc0de+AQ==";
        let linux_named = rollout("linux-x86_64", "1.2.0", 0, &[7]);
        let linux_nobody = rollout("linux-x86_64", "1.3.0", 0, &[]);
        let windows_all = rollout("windows-x86_64", "2.0.0", 100, &[]);
        let rollouts = [linux_named.clone(), linux_nobody, windows_all.clone()];
        let offered = offers(&rollouts, key, 7);
        assert_eq!(offered.len(), 2);
        assert_eq!(offered[&linux_named.platform], &linux_named);
        assert_eq!(offered[&windows_all.platform], &windows_all);
        let other_practice = offers(&rollouts, key, 8);
        assert_eq!(
            other_practice.values().copied().collect::<Vec<_>>(),
            vec![&windows_all]
        );
    }

    #[test]
    fn raising_a_share_only_adds_appliances() {
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("osiris-appliance/{i:08x}+0badc0de+AQ=="))
            .collect();
        let offered = |percent: u8| -> Vec<&String> {
            let r = rollout("linux-x86_64", "1.2.0", percent, &[]);
            keys.iter().filter(|k| includes(&r, k, 1)).collect()
        };
        let (none, ten, fifty) = (offered(0), offered(10), offered(50));
        assert!(none.is_empty());
        assert!((50..=150).contains(&ten.len()), "{}", ten.len());
        assert!(ten.iter().all(|k| fifty.contains(k)));
    }
}
