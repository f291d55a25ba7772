//! AWS (IAM, S3, CloudTrail, EC2) through the services' own APIs signed with SigV4: which sources
//! the selected checks need, reading them concurrently with one client (each failure kept beside
//! its source, a denial naming the IAM action to allow), and the pure observations the
//! catalogue's `aws` checks judge.

pub mod client;
pub mod observe;
pub mod sigv4;
pub mod source;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use client::{AwsClient, AwsError, Service};
use source::{Bucket, Facts, RegionEncryption, Source};

/// Most ListBuckets pages (at [`BUCKET_PAGE`] a page: 100,000 buckets, the S3 quota's ceiling).
pub const MAX_PAGES: usize = 100;
/// Buckets per ListBuckets page.
pub const BUCKET_PAGE: usize = 1_000;
/// Requests in flight at once for per-bucket and per-region reads.
const CONCURRENCY: usize = 16;

const IAM_VERSION: &str = "2010-05-08";
const EC2_VERSION: &str = "2016-11-15";
const STS_VERSION: &str = "2011-06-15";
const CLOUDTRAIL_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";

/// Confirms the access key works and belongs to the configured account (STS GetCallerIdentity,
/// which needs no permission).
///
/// # Errors
/// Why the key cannot scan this account, in words.
pub async fn sign_in(client: &AwsClient) -> Result<(), String> {
    let text = client
        .query(
            Service::Sts,
            client.home_region(),
            "GetCallerIdentity",
            STS_VERSION,
        )
        .await
        .map_err(|err| format!("sts:GetCallerIdentity: {err}"))?;
    let account = source::caller_account(&text)?;
    let configured = &client.settings().account_id;
    if &account != configured {
        return Err(format!(
            "the access key belongs to account {}, not the configured account {configured}: store the key of a user in account {configured}",
            account.escape_debug()
        ));
    }
    Ok(())
}

/// Reads `sources` from the account, concurrently.
pub async fn collect(client: &AwsClient, sources: &BTreeSet<Source>) -> Facts {
    let mut tasks = tokio::task::JoinSet::new();
    for &source in sources {
        let client = client.clone();
        tasks.spawn(async move {
            let mut facts = Facts::default();
            match source {
                Source::AccountSummary => {
                    facts.account_summary = Some(account_summary(&client).await);
                }
                Source::CredentialReport => {
                    facts.credential_report = Some(credential_report(&client).await);
                }
                Source::AccountPublicAccessBlock => {
                    facts.account_public_access_block =
                        Some(account_public_access_block(&client).await);
                }
                Source::Buckets => facts.buckets = Some(buckets(&client).await),
                Source::Trails => facts.trails = Some(trails(&client).await),
                Source::EbsEncryption => facts.ebs_encryption = Some(ebs_encryption(&client).await),
            }
            (source, facts)
        });
    }
    let mut facts = Facts::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((source, read)) => {
                if let Some(Err(err)) = source.collected(&read) {
                    tracing::warn!(source = ?source, error = %err, "AWS source not read.");
                }
                merge(&mut facts, read);
            }
            Err(err) => tracing::error!(error = %err, "AWS collection task failed."),
        }
    }
    facts
}

/// Every source the given collectors read (unknown collectors read none).
pub fn sources_for<'a>(collectors: impl IntoIterator<Item = &'a str>) -> BTreeSet<Source> {
    collectors
        .into_iter()
        .filter_map(observe::sources_of)
        .flat_map(|sources| sources.iter().copied())
        .collect()
}

/// A failed call in words: a denial names the IAM action to allow.
fn explain(action: &str, err: &AwsError) -> String {
    match err {
        AwsError::Denied { .. } => format!(
            "needs IAM permission {action} (allow it in the scanning user's policy; AWS's managed SecurityAudit policy includes it); {action}: {err}"
        ),
        _ => format!("{action}: {err}"),
    }
}

fn merge(into: &mut Facts, from: Facts) {
    into.account_summary = into.account_summary.take().or(from.account_summary);
    into.credential_report = into.credential_report.take().or(from.credential_report);
    into.account_public_access_block = into
        .account_public_access_block
        .take()
        .or(from.account_public_access_block);
    into.buckets = into.buckets.take().or(from.buckets);
    into.trails = into.trails.take().or(from.trails);
    into.ebs_encryption = into.ebs_encryption.take().or(from.ebs_encryption);
}

async fn account_summary(client: &AwsClient) -> Result<source::AccountSummary, String> {
    let action = "iam:GetAccountSummary";
    let text = client
        .query(
            Service::Iam,
            client.home_region(),
            "GetAccountSummary",
            IAM_VERSION,
        )
        .await
        .map_err(|err| explain(action, &err))?;
    source::account_summary(&text).map_err(|err| format!("{action}: {err}"))
}

/// Generates the credential report (waiting while AWS builds it), then reads it.
async fn credential_report(client: &AwsClient) -> Result<Vec<source::ReportRow>, String> {
    let region = client.home_region();
    let mut wait = Duration::from_millis(250);
    loop {
        let action = "iam:GenerateCredentialReport";
        let text = client
            .query(
                Service::Iam,
                region,
                "GenerateCredentialReport",
                IAM_VERSION,
            )
            .await
            .map_err(|err| explain(action, &err))?;
        let state = source::report_state(&text).map_err(|err| format!("{action}: {err}"))?;
        if state == "COMPLETE" {
            break;
        }
        tracing::debug!(state = %state, "Waiting for the IAM credential report.");
        if !client.pause(wait).await {
            return Err(format!(
                "{action}: the credential report was still {state} when the scan's time ran out"
            ));
        }
        wait = (wait * 2).min(Duration::from_secs(4));
    }
    let action = "iam:GetCredentialReport";
    let text = client
        .query(Service::Iam, region, "GetCredentialReport", IAM_VERSION)
        .await
        .map_err(|err| explain(action, &err))?;
    source::credential_report(&text).map_err(|err| format!("{action}: {err}"))
}

async fn account_public_access_block(
    client: &AwsClient,
) -> Result<Option<source::PublicAccessBlock>, String> {
    let action = "s3:GetAccountPublicAccessBlock";
    let account = client.settings().account_id.clone();
    match client
        .rest_get(
            Service::S3Control,
            client.home_region(),
            "/v20180820/configuration/publicAccessBlock",
            &[],
            &[("x-amz-account-id", &account)],
        )
        .await
    {
        Ok(text) => source::public_access_block("GetPublicAccessBlock", &text)
            .map(Some)
            .map_err(|err| format!("{action}: {err}")),
        Err(AwsError::Service { code, .. }) if code == "NoSuchPublicAccessBlockConfiguration" => {
            Ok(None)
        }
        Err(err) => Err(explain(action, &err)),
    }
}

/// Every bucket (ListBuckets, paged), then each one's Block Public Access, a few at a time.
async fn buckets(client: &AwsClient) -> Result<Vec<Bucket>, String> {
    let action = "s3:ListAllMyBuckets";
    let home = client.home_region().to_owned();
    let page_size = BUCKET_PAGE.to_string();
    let mut names: Vec<source::NamedBucket> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(format!(
                "{action}: more than {MAX_PAGES} pages of buckets; refusing to page further"
            ));
        }
        let mut query = vec![("max-buckets", page_size.as_str())];
        if let Some(token) = &token {
            query.push(("continuation-token", token.as_str()));
        }
        let text = client
            .rest_get(Service::S3, &home, "/", &query, &[])
            .await
            .map_err(|err| explain(action, &err))?;
        let (page, next) = source::bucket_page(&text).map_err(|err| format!("{action}: {err}"))?;
        names.extend(page);
        match next {
            Some(next) if Some(&next) == token.as_ref() => {
                return Err(format!(
                    "{action}: the continuation token did not change; refusing to loop"
                ));
            }
            Some(next) => token = Some(next),
            None => break,
        }
    }
    if let Some((bad, _)) = names.iter().find(|(name, _)| !source::is_bucket_name(name)) {
        return Err(format!(
            "{action}: the bucket list holds `{}`, which is not a valid S3 bucket name; refusing to put it in a URL",
            bad.escape_debug()
        ));
    }
    if let Some(bad) = names
        .iter()
        .filter_map(|(_, region)| region.as_deref())
        .find(|region| !client::is_region(region))
    {
        return Err(format!(
            "{action}: a bucket's region `{}` is not an AWS region name; refusing to put it in a URL",
            bad.escape_debug()
        ));
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (idx, (name, region)) in names.iter().enumerate() {
        let client = client.clone();
        let limit = limit.clone();
        let name = name.clone();
        let region = region.clone().unwrap_or_else(|| home.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let res = match client
                .rest_get(
                    Service::S3,
                    &region,
                    &format!("/{name}"),
                    &[("publicAccessBlock", "")],
                    &[],
                )
                .await
            {
                Ok(text) => source::public_access_block("GetPublicAccessBlock", &text).map(Some),
                Err(AwsError::Service { code, .. })
                    if code == "NoSuchPublicAccessBlockConfiguration" =>
                {
                    Ok(None)
                }
                Err(err) => Err(explain("s3:GetBucketPublicAccessBlock", &err)),
            };
            (idx, res.map_err(|err| format!("bucket {name}: {err}")))
        });
    }
    let mut blocks = vec![None; names.len()];
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((idx, Ok(block))) => blocks[idx] = block,
            Ok((_, Err(err))) => failed.push(err),
            Err(err) => failed.push(format!("a bucket read failed: {err}")),
        }
    }
    if !failed.is_empty() {
        failed.sort();
        return Err(format!(
            "{} of {} buckets not read; first: {}",
            failed.len(),
            names.len(),
            failed[0]
        ));
    }
    Ok(names
        .into_iter()
        .zip(blocks)
        .map(|((name, region), block)| Bucket {
            name,
            region,
            block,
        })
        .collect())
}

/// The home region's trails (multi-region trails show in every region) and each one's status.
async fn trails(client: &AwsClient) -> Result<Vec<source::Trail>, String> {
    let region = client.home_region().to_owned();
    let action = "cloudtrail:DescribeTrails";
    let json = client
        .json(
            Service::CloudTrail,
            &region,
            &format!("{CLOUDTRAIL_TARGET}.DescribeTrails"),
            &serde_json::json!({"includeShadowTrails": true}),
        )
        .await
        .map_err(|err| explain(action, &err))?;
    let mut trails = source::trails(&json).map_err(|err| format!("{action}: {err}"))?;
    let action = "cloudtrail:GetTrailStatus";
    for trail in &mut trails {
        let status = client
            .json(
                Service::CloudTrail,
                &region,
                &format!("{CLOUDTRAIL_TARGET}.GetTrailStatus"),
                &serde_json::json!({"Name": trail.arn}),
            )
            .await
            .map_err(|err| format!("trail {}: {}", trail.name, explain(action, &err)))?;
        trail.logging = source::trail_logging(&status).map_err(|err| format!("{action}: {err}"))?;
    }
    Ok(trails)
}

async fn ebs_encryption(client: &AwsClient) -> Result<Vec<RegionEncryption>, String> {
    let action = "ec2:GetEbsEncryptionByDefault";
    let mut tasks = tokio::task::JoinSet::new();
    for (idx, region) in client.settings().regions.iter().enumerate() {
        let client = client.clone();
        let region = region.clone();
        tasks.spawn(async move {
            let res = client
                .query(
                    Service::Ec2,
                    &region,
                    "GetEbsEncryptionByDefault",
                    EC2_VERSION,
                )
                .await
                .map_err(|err| explain(action, &err))
                .and_then(|text| {
                    source::ebs_by_default(&text).map_err(|err| format!("{action}: {err}"))
                })
                .map_err(|err| format!("region {region}: {err}"));
            (idx, region, res)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.map_err(|err| format!("{action}: {err}"))?);
    }
    // In configuration order, so the first failure named is the same on every run.
    answers.sort_by_key(|(idx, _, _)| *idx);
    answers
        .into_iter()
        .map(|(_, region, res)| res.map(|by_default| RegionEncryption { region, by_default }))
        .collect()
}
