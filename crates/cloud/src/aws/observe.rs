//! The AWS collectors (pure): each turns the typed facts and the check's parameters into the one
//! JSON object the catalogue's `aws` expectations judge.

use serde_json::{Value, json};
use time::OffsetDateTime;

use model::{ParamValue, ResolvedParams};

use crate::aws::source::{Facts, Source};

/// Most names an observation lists (the counts are always whole).
pub const MAX_LISTED: usize = 20;

/// Every collector the catalogue may name, with the sources it reads.
pub const COLLECTORS: &[(&str, &[Source])] = &[
    ("root_mfa", &[Source::AccountSummary]),
    ("root_access_keys", &[Source::AccountSummary]),
    ("console_user_mfa", &[Source::CredentialReport]),
    ("access_key_age", &[Source::CredentialReport]),
    (
        "s3_public_access",
        &[Source::AccountPublicAccessBlock, Source::Buckets],
    ),
    ("cloudtrail", &[Source::Trails]),
    ("ebs_encryption", &[Source::EbsEncryption]),
];

/// The sources a collector reads; `None` for a name this crate does not know.
pub fn sources_of(collector: &str) -> Option<&'static [Source]> {
    crate::sources_in(COLLECTORS, collector)
}

/// The observation of `collector` over `facts` at `now`; `Err` when a source it needs was not
/// read (the message says why, a denial names the IAM action) or a parameter is unusable.
pub fn observe(
    collector: &str,
    facts: &Facts,
    params: &ResolvedParams,
    now: OffsetDateTime,
) -> Result<Value, String> {
    crate::all_read(
        collector,
        sources_of(collector).map(|sources| {
            sources
                .iter()
                .map(|&source| (source.describe(), source.collected(facts)))
        }),
    )?;
    match collector {
        "root_mfa" => {
            let summary = read(&facts.account_summary)?;
            Ok(json!({"root_mfa_enabled": summary.root_mfa}))
        }
        "root_access_keys" => {
            let summary = read(&facts.account_summary)?;
            Ok(json!({"root_access_keys": summary.root_access_keys}))
        }
        "console_user_mfa" => {
            let console: Vec<_> = read(&facts.credential_report)?
                .iter()
                .filter(|row| !row.root && row.password_enabled)
                .collect();
            let without: Vec<String> = console
                .iter()
                .filter(|row| !row.mfa_active)
                .map(|row| row.user.clone())
                .collect();
            Ok(json!({
                "console_users": console.len(),
                "without_mfa": without.len(),
                "without_mfa_users": listed(without),
            }))
        }
        "access_key_age" => {
            let max_days = match params.get("max_key_age_days") {
                Some(ParamValue::Integer(n)) => *n,
                _ => return Err("parameter `max_key_age_days` is not an integer".to_owned()),
            };
            let mut active = 0;
            let mut old = Vec::new();
            for row in read(&facts.credential_report)?.iter().filter(|r| !r.root) {
                for key in row.access_keys.iter().filter(|k| k.active) {
                    active += 1;
                    // An active key without a rotation date has no known age: count it as old.
                    let days = key.last_rotated.map(|t| (now - t).whole_days());
                    if days.is_none_or(|d| d > max_days) {
                        old.push(match days {
                            Some(days) => format!("{} (key {}, {days} days)", row.user, key.slot),
                            None => format!("{} (key {}, age unknown)", row.user, key.slot),
                        });
                    }
                }
            }
            Ok(json!({
                "active_keys": active,
                "older": old.len(),
                "old_keys": listed(old),
                "max_days": max_days,
            }))
        }
        "s3_public_access" => {
            let account = read(&facts.account_public_access_block)?;
            let buckets = read(&facts.buckets)?;
            let open: Vec<String> = buckets
                .iter()
                .filter(|b| !b.block.is_some_and(|block| block.all()))
                .map(|b| b.name.clone())
                .collect();
            Ok(json!({
                "account_level_blocked": account.is_some_and(|block| block.all()),
                "account_level_configured": account.is_some(),
                "buckets": buckets.len(),
                "buckets_not_blocked": open.len(),
                "buckets_not_blocked_names": listed(open),
            }))
        }
        "cloudtrail" => {
            let trails = read(&facts.trails)?;
            let good: Vec<String> = trails
                .iter()
                .filter(|t| t.multi_region && t.log_file_validation && t.logging)
                .map(|t| t.name.clone())
                .collect();
            let described: Vec<Value> = trails
                .iter()
                .take(MAX_LISTED)
                .map(|t| {
                    json!({
                        "name": t.name,
                        "home_region": t.home_region,
                        "multi_region": t.multi_region,
                        "log_file_validation": t.log_file_validation,
                        "logging": t.logging,
                    })
                })
                .collect();
            Ok(json!({
                "trails": trails.len(),
                "compliant": good.len(),
                "compliant_trails": listed(good),
                "all_trails": described,
            }))
        }
        "ebs_encryption" => {
            let regions = read(&facts.ebs_encryption)?;
            let off: Vec<String> = regions
                .iter()
                .filter(|r| !r.by_default)
                .map(|r| r.region.clone())
                .collect();
            Ok(json!({
                "regions": regions.len(),
                "unencrypted": off.len(),
                "unencrypted_regions": off,
            }))
        }
        other => Err(format!("collector `{other}` has no observation")),
    }
}

/// A fact the caller has checked is present.
fn read<T>(slot: &Option<Result<T, String>>) -> Result<&T, String> {
    match slot {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(err.clone()),
        None => Err("not read".to_owned()),
    }
}

fn listed(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names.into_iter().take(MAX_LISTED).collect()
}
