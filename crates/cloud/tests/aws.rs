//! The AWS scan against the AWS peer (`vm-tests/lab/cloud/fakeaws.py`, which recomputes every
//! SigV4 signature with botocore's signer) over HTTPS: the small practice's known failures, a
//! large account's paging, throttling, a denied action, a revoked key, another account's key,
//! malformed XML, a hostile bucket name and bad endpoints or regions.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use cloud::aws::client::AwsSettings;
use cloud::aws::sigv4::Credentials;
use test_support::aws::{ACCESS_KEY_ID, ACCOUNT, FakeAws, REGIONS, SECRET};

/// The small practice's statuses: its known failures (see the peer's `practice()`).
const SMALL_PRACTICE: &str = "\
AWS-EBS-001 fail
AWS-IAM-001 fail
AWS-IAM-002 fail
AWS-ROOT-001 pass
AWS-ROOT-002 pass
AWS-S3-001 fail
AWS-TRAIL-001 pass
";

/// A check's ID, status and reason.
type Judged = (String, String, String);

fn credentials(key_id: &str, secret: &str) -> Credentials {
    Credentials {
        access_key_id: key_id.to_owned(),
        secret_access_key: zeroize::Zeroizing::new(secret.to_owned()),
        session_token: None,
    }
}

fn settings(peer: &FakeAws, credentials: Credentials) -> AwsSettings {
    AwsSettings {
        account_id: ACCOUNT.to_owned(),
        regions: REGIONS.iter().map(|r| (*r).to_owned()).collect(),
        credentials,
        endpoint: Some(peer.endpoint()),
        ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
        request_timeout: Duration::from_secs(20),
    }
}

/// The catalogue's AWS checks with `settings`.
fn judge(settings: AwsSettings, timeout: Duration) -> Vec<Judged> {
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog.for_platform(model::Platform::Aws).collect();
    let account = cloud::AwsAccount {
        name: "clinic-aws".to_owned(),
        settings,
        timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(cloud::scan_aws(account, &runbooks, &Default::default()))
        .report;
    report
        .results
        .iter()
        .map(|r| {
            (
                r.runbook_id.clone(),
                r.outcome.status.as_str().to_owned(),
                r.outcome.reason.clone(),
            )
        })
        .collect()
}

/// The checks against a peer started with `flags`, with the peer's own key.
fn scan(flags: &[&str]) -> Option<(Vec<Judged>, FakeAws)> {
    let python = test_support::python::reference_python_with("botocore")?;
    let peer = FakeAws::start(&python, flags);
    let results = judge(
        settings(&peer, credentials(ACCESS_KEY_ID, SECRET)),
        Duration::from_secs(60),
    );
    Some((results, peer))
}

fn statuses(results: &[Judged]) -> String {
    results
        .iter()
        .map(|(id, status, _)| format!("{id} {status}\n"))
        .collect()
}

fn reason<'a>(results: &'a [Judged], id: &str) -> &'a str {
    &results.iter().find(|(i, _, _)| i == id).unwrap().2
}

#[test]
fn small_practice_fails_exactly_its_known_problems() {
    let Some((results, peer)) = scan(&[]) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    // The credential report was generated, waited for, then read.
    assert_eq!(peer.answered("GenerateCredentialReport", 200), 2);
    assert_eq!(peer.answered("GetCredentialReport", 200), 1);
    // One Block Public Access read per bucket, each in the bucket's own region.
    assert_eq!(peer.answered("GetPublicAccessBlock", 200), 5 + 1);
    assert_eq!(peer.answered("GetPublicAccessBlock", 404), 1);
    assert_eq!(peer.answered("GetEbsEncryptionByDefault", 200), 2);
    let failing: String = results
        .iter()
        .filter(|(_, status, _)| status == "fail")
        .map(|(id, _, reason)| format!("{id}: {reason}\n"))
        .collect();
    expect_test::expect![[r#"
        AWS-EBS-001: `unencrypted` is 1
        AWS-IAM-001: `without_mfa` is 1
        AWS-IAM-002: `older` is 1
        AWS-S3-001: `buckets_not_blocked` is 2
    "#]]
    .assert_eq(&failing);
}

#[test]
fn a_large_account_is_paged_and_judged() {
    let Some((results, peer)) =
        scan(&["--profile", "large", "--users", "500", "--buckets", "2100"])
    else {
        return;
    };
    assert_eq!(
        results
            .iter()
            .filter(|(_, status, _)| status != "pass")
            .map(|(id, status, reason)| format!("{id} {status}: {reason}\n"))
            .collect::<String>(),
        "",
        "every check of the compliant large account passes"
    );
    // 2,100 buckets at 1,000 a page: three pages, then one read per bucket.
    assert_eq!(peer.answered("ListBuckets", 200), 3);
    assert_eq!(peer.answered("GetPublicAccessBlock", 200), 2100 + 1);
}

#[test]
fn throttling_is_retried_with_back_off_until_answered() {
    let Some((results, peer)) = scan(&["--throttle-first"]) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    let throttled: std::collections::BTreeSet<String> = peer
        .requests()
        .iter()
        .filter(|r| r["code"].is_string())
        .map(|r| {
            format!(
                "{} {} {}",
                r["operation"].as_str().unwrap(),
                r["status"],
                r["code"].as_str().unwrap()
            )
        })
        .collect();
    expect_test::expect![[r#"
        {
            "DescribeTrails 400 ThrottlingException",
            "GenerateCredentialReport 400 Throttling",
            "GetAccountSummary 400 Throttling",
            "GetCallerIdentity 400 Throttling",
            "GetCredentialReport 400 Throttling",
            "GetEbsEncryptionByDefault 503 RequestLimitExceeded",
            "GetPublicAccessBlock 404 NoSuchPublicAccessBlockConfiguration",
            "GetPublicAccessBlock 503 SlowDown",
            "GetTrailStatus 400 ThrottlingException",
            "ListBuckets 503 SlowDown",
        }
    "#]]
    .assert_debug_eq(&throttled);
}

#[test]
fn an_account_that_throttles_every_call_errs_every_check_in_time() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeAws::start(&python, &["--throttle-all"]);
    let results = judge(
        settings(&peer, credentials(ACCESS_KEY_ID, SECRET)),
        Duration::from_secs(3),
    );
    for (id, status, reason) in &results {
        assert_eq!(status, "error", "{id}");
        assert!(
            reason.starts_with(
                "not checked: sts:GetCallerIdentity: AWS kept throttling (Throttling, "
            ),
            "{id}: {reason}"
        );
    }
}

#[test]
fn a_denied_action_errs_only_its_checks_and_names_the_action() {
    let Some((results, _peer)) = scan(&[
        "--deny",
        "s3:GetBucketPublicAccessBlock",
        "--deny",
        "ec2:GetEbsEncryptionByDefault",
    ]) else {
        return;
    };
    expect_test::expect![[r#"
        AWS-EBS-001 error
        AWS-IAM-001 fail
        AWS-IAM-002 fail
        AWS-ROOT-001 pass
        AWS-ROOT-002 pass
        AWS-S3-001 error
        AWS-TRAIL-001 pass
    "#]]
    .assert_eq(&statuses(&results));
    expect_test::expect!["could not read the S3 buckets and their Block Public Access: 6 of 6 buckets not read; first: bucket smithpractice-billing-exports: needs IAM permission s3:GetBucketPublicAccessBlock (allow it in the scanning user's policy; AWS's managed SecurityAudit policy includes it); s3:GetBucketPublicAccessBlock: AWS denied the request (AccessDenied: User: arn:aws:iam::404122885710:user/osiris-audit is not authorized to perform: s3:GetBucketPublicAccessBlock on resource: * because no identity-based policy allows the s3:GetBucketPublicAccessBlock action)"]
        .assert_eq(reason(&results, "AWS-S3-001"));
    expect_test::expect!["could not read EBS encryption by default: region us-east-1: needs IAM permission ec2:GetEbsEncryptionByDefault (allow it in the scanning user's policy; AWS's managed SecurityAudit policy includes it); ec2:GetEbsEncryptionByDefault: AWS denied the request (UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:iam::404122885710:user/osiris-audit is not authorized to perform: ec2:GetEbsEncryptionByDefault because no identity-based policy allows the ec2:GetEbsEncryptionByDefault action)"]
        .assert_eq(reason(&results, "AWS-EBS-001"));
}

#[test]
fn a_revoked_key_or_a_wrong_secret_errs_every_check_with_aws_s_reason() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeAws::start(&python, &[]);
    let revoked = judge(
        settings(&peer, credentials("AKIAQ3EGREVOKEDKEY99", SECRET)),
        Duration::from_secs(30),
    );
    assert!(revoked.iter().all(|(_, status, _)| status == "error"));
    expect_test::expect!["not checked: sts:GetCallerIdentity: AWS refused the access key (InvalidClientTokenId: The security token included in the request is invalid.): it is wrong, deactivated, deleted or expired; create a new access key for the scanning user and store it with `osiris credentials set`"]
        .assert_eq(&revoked[0].2);
    let wrong_secret = judge(
        settings(&peer, credentials(ACCESS_KEY_ID, "not-the-secret")),
        Duration::from_secs(30),
    );
    assert!(wrong_secret.iter().all(|(_, status, _)| status == "error"));
    assert!(
        wrong_secret[0]
            .2
            .contains("(SignatureDoesNotMatch: The request signature we calculated does not match"),
        "{}",
        wrong_secret[0].2
    );
    assert!(
        !wrong_secret[0].2.contains("not-the-secret"),
        "the secret is never echoed"
    );
}

#[test]
fn another_account_s_key_is_refused_before_any_read() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeAws::start(&python, &[]);
    let mut other = settings(&peer, credentials(ACCESS_KEY_ID, SECRET));
    other.account_id = "111122223333".to_owned();
    let results = judge(other, Duration::from_secs(30));
    assert!(results.iter().all(|(_, status, _)| status == "error"));
    expect_test::expect!["not checked: the access key belongs to account 404122885710, not the configured account 111122223333: store the key of a user in account 111122223333"]
        .assert_eq(&results[0].2);
    assert_eq!(peer.requests().len(), 1, "only GetCallerIdentity was sent");
}

#[test]
fn malformed_xml_or_json_errs_the_checks_that_read_it() {
    let Some((results, _peer)) = scan(&[
        "--malformed",
        "GetAccountSummary",
        "--malformed",
        "DescribeTrails",
    ]) else {
        return;
    };
    let root = reason(&results, "AWS-ROOT-001");
    assert!(
        root.starts_with("could not read the IAM account summary: iam:GetAccountSummary: the GetAccountSummary answer is not well-formed XML: "),
        "{root}"
    );
    assert_eq!(reason(&results, "AWS-ROOT-002"), root);
    let trail = reason(&results, "AWS-TRAIL-001");
    assert!(
        trail.starts_with("could not read the CloudTrail trails: cloudtrail:DescribeTrails: AWS's answer is malformed: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails: the JSON does not parse: "),
        "{trail}"
    );
    assert_eq!(
        statuses(&results)
            .lines()
            .filter(|l| l.ends_with("error"))
            .count(),
        3,
        "only the checks of the account summary and the trails"
    );
}

#[test]
fn a_hostile_bucket_name_in_an_answer_never_reaches_a_url() {
    let evil = "../v20180820/configuration/publicAccessBlock?x=$(id)&y=`id`";
    let Some((results, peer)) = scan(&["--evil-bucket", evil]) else {
        return;
    };
    expect_test::expect![[r#"could not read the S3 buckets and their Block Public Access: s3:ListAllMyBuckets: the bucket list holds `../v20180820/configuration/publicAccessBlock?x=$(id)&y=`id``, which is not a valid S3 bucket name; refusing to put it in a URL"#]]
        .assert_eq(reason(&results, "AWS-S3-001"));
    assert!(
        peer.requests()
            .iter()
            .all(|r| !r["path"].as_str().unwrap().contains("id")),
        "no request carried the name"
    );
}

#[test]
fn endpoints_and_regions_are_validated_before_any_request() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeAws::start(&python, &[]);
    let mut plain_http = settings(&peer, credentials(ACCESS_KEY_ID, SECRET));
    plain_http.endpoint = Some(peer.endpoint().replace("https://", "http://"));
    let mut with_query = settings(&peer, credentials(ACCESS_KEY_ID, SECRET));
    with_query.endpoint = Some(format!("{}/?x=1", peer.endpoint()));
    let mut bad_region = settings(&peer, credentials(ACCESS_KEY_ID, SECRET));
    bad_region.regions = vec!["us-east-1.attacker.example/x?".to_owned()];
    let reasons: Vec<String> = [plain_http, with_query, bad_region]
        .into_iter()
        .map(|s| judge(s, Duration::from_secs(10))[0].2.clone())
        .collect();
    let port = peer.endpoint().rsplit(':').next().unwrap().to_owned();
    expect_test::expect![[r#"
        [
            "not checked: endpoint `http://127.0.0.1:PORT` is not an https:// URL",
            "not checked: endpoint `https://127.0.0.1:PORT/?x=1` is not an https:// URL",
            "not checked: region `us-east-1.attacker.example/x?` is not an AWS region name such as us-east-1",
        ]
    "#]]
    .assert_debug_eq(&reasons.iter().map(|r| r.replace(&port, "PORT")).collect::<Vec<_>>());
    assert!(peer.requests().is_empty(), "nothing was sent");
}

#[test]
fn every_shipped_aws_check_names_a_collector_this_crate_provides_and_maps_hipaa() {
    let catalog = catalog::embedded().unwrap();
    let shipped: Vec<_> = catalog.for_platform(model::Platform::Aws).collect();
    assert_eq!(shipped.len(), 7);
    for runbook in shipped {
        assert!(
            cloud::aws::observe::sources_of(&runbook.detect.body).is_some(),
            "{} names unknown collector `{}`",
            runbook.id,
            runbook.detect.body
        );
        assert_eq!(runbook.detect.shell, model::Shell::Cloud, "{}", runbook.id);
        assert!(
            runbook.remediate.is_none() && !runbook.auto_heal,
            "{}",
            runbook.id
        );
        assert!(
            runbook
                .controls
                .iter()
                .any(|c| c.framework == model::Framework::Hipaa),
            "{} maps no HIPAA control",
            runbook.id
        );
    }
}
