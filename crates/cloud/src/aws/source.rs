//! What the AWS checks read: one [`Source`] per API (with the IAM actions it needs), its typed
//! records, and the pure parse of the services' XML, JSON and the credential report's CSV into
//! them (a record of the wrong shape is an error naming it, never a default).

use serde_json::Value;
use time::OffsetDateTime;

/// One API the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// IAM's account summary (root MFA, root access keys).
    AccountSummary,
    /// IAM's credential report (every user's password, MFA and access keys).
    CredentialReport,
    /// S3 Block Public Access for the account (S3 Control).
    AccountPublicAccessBlock,
    /// Every bucket with its own Block Public Access configuration.
    Buckets,
    /// CloudTrail trails with their logging status.
    Trails,
    /// EBS encryption by default, per configured region.
    EbsEncryption,
}

/// The account summary's entries the checks judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSummary {
    pub root_mfa: bool,
    pub root_access_keys: u64,
}

/// One row of the credential report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The user name, `<root_account>` for the root user.
    pub user: String,
    pub root: bool,
    pub password_enabled: bool,
    pub mfa_active: bool,
    pub access_keys: Vec<AccessKey>,
}

/// One of a user's two access key slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessKey {
    /// 1 or 2.
    pub slot: u8,
    pub active: bool,
    pub last_rotated: Option<OffsetDateTime>,
}

/// The four Block Public Access settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// A bucket and its own Block Public Access configuration (`None`: none set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    pub region: Option<String>,
    pub block: Option<PublicAccessBlock>,
}

/// A trail as DescribeTrails lists it, with GetTrailStatus's `IsLogging`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub log_file_validation: bool,
    pub logging: bool,
}

/// EBS encryption by default in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEncryption {
    pub region: String,
    pub by_default: bool,
}

/// Everything read from one account, each source on its own (one failing does not hide another).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub account_summary: Option<Result<AccountSummary, String>>,
    pub credential_report: Option<Result<Vec<ReportRow>, String>>,
    pub account_public_access_block: Option<Result<Option<PublicAccessBlock>, String>>,
    pub buckets: Option<Result<Vec<Bucket>, String>>,
    pub trails: Option<Result<Vec<Trail>, String>>,
    pub ebs_encryption: Option<Result<Vec<RegionEncryption>, String>>,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::AccountSummary,
        Source::CredentialReport,
        Source::AccountPublicAccessBlock,
        Source::Buckets,
        Source::Trails,
        Source::EbsEncryption,
    ];

    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Source::AccountSummary => "the IAM account summary",
            Source::CredentialReport => "the IAM credential report",
            Source::AccountPublicAccessBlock => "the account's S3 Block Public Access",
            Source::Buckets => "the S3 buckets and their Block Public Access",
            Source::Trails => "the CloudTrail trails",
            Source::EbsEncryption => "EBS encryption by default",
        }
    }

    /// Whether `facts` holds this source's answer (read or failed).
    pub fn collected(self, facts: &Facts) -> Option<Result<(), &str>> {
        fn state<T>(slot: &Option<Result<T, String>>) -> Option<Result<(), &str>> {
            slot.as_ref()
                .map(|res| res.as_ref().map(drop).map_err(String::as_str))
        }
        match self {
            Source::AccountSummary => state(&facts.account_summary),
            Source::CredentialReport => state(&facts.credential_report),
            Source::AccountPublicAccessBlock => state(&facts.account_public_access_block),
            Source::Buckets => state(&facts.buckets),
            Source::Trails => state(&facts.trails),
            Source::EbsEncryption => state(&facts.ebs_encryption),
        }
    }
}

impl PublicAccessBlock {
    /// All four settings on.
    pub fn all(self) -> bool {
        self.block_public_acls
            && self.ignore_public_acls
            && self.block_public_policy
            && self.restrict_public_buckets
    }
}

/// A well-formed XML document, or why not (naming the answer).
pub fn xml<'a>(what: &str, text: &'a str) -> Result<roxmltree::Document<'a>, String> {
    roxmltree::Document::parse(text)
        .map_err(|err| format!("the {what} answer is not well-formed XML: {err}"))
}

/// The text of the first element named `name` below `node`, if any.
pub fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or_default())
}

/// The account ID in GetCallerIdentity's answer.
pub fn caller_account(text: &str) -> Result<String, String> {
    let doc = xml("GetCallerIdentity", text)?;
    child_text(doc.root(), "Account")
        .map(|a| a.trim().to_owned())
        .ok_or_else(|| "the GetCallerIdentity answer has no `Account`".to_owned())
}

/// GetAccountSummary's `SummaryMap` entries.
pub fn account_summary(text: &str) -> Result<AccountSummary, String> {
    let doc = xml("GetAccountSummary", text)?;
    let map = doc
        .descendants()
        .find(|n| n.tag_name().name() == "SummaryMap")
        .ok_or_else(|| "the GetAccountSummary answer has no `SummaryMap`".to_owned())?;
    let entry = |key: &str| -> Result<u64, String> {
        let found = map
            .children()
            .filter(|n| n.tag_name().name() == "entry")
            .find(|e| child_text(*e, "key").map(str::trim) == Some(key))
            .ok_or_else(|| format!("the account summary has no `{key}` entry"))?;
        let value = child_text(found, "value").unwrap_or_default().trim();
        value
            .parse()
            .map_err(|_| format!("the account summary's `{key}` is `{value}`, not a count"))
    };
    Ok(AccountSummary {
        root_mfa: entry("AccountMFAEnabled")? > 0,
        root_access_keys: entry("AccountAccessKeysPresent")?,
    })
}

/// GenerateCredentialReport's `State` (`STARTED`, `INPROGRESS`, `COMPLETE`).
pub fn report_state(text: &str) -> Result<String, String> {
    let doc = xml("GenerateCredentialReport", text)?;
    child_text(doc.root(), "State")
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| "the GenerateCredentialReport answer has no `State`".to_owned())
}

/// GetCredentialReport's base64 `Content`, decoded and parsed.
pub fn credential_report(text: &str) -> Result<Vec<ReportRow>, String> {
    use base64::Engine as _;
    let doc = xml("GetCredentialReport", text)?;
    let content = child_text(doc.root(), "Content")
        .ok_or_else(|| "the GetCredentialReport answer has no `Content`".to_owned())?;
    let compact: String = content.split_whitespace().collect();
    let csv = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|err| format!("the credential report's `Content` is not base64: {err}"))?;
    let csv =
        String::from_utf8(csv).map_err(|_| "the credential report is not UTF-8".to_owned())?;
    report_rows(&csv)
}

/// The credential report's CSV (header row first) into rows.
pub fn report_rows(csv: &str) -> Result<Vec<ReportRow>, String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().ok_or("the credential report is empty")?);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("the credential report has no `{name}` column"))
    };
    let user = column("user")?;
    let password = column("password_enabled")?;
    let mfa = column("mfa_active")?;
    let keys = [
        (
            1u8,
            column("access_key_1_active")?,
            column("access_key_1_last_rotated")?,
        ),
        (
            2u8,
            column("access_key_2_active")?,
            column("access_key_2_last_rotated")?,
        ),
    ];
    let mut rows = Vec::new();
    for (idx, line) in lines.enumerate() {
        let fields = csv_fields(line);
        let field = |i: usize| -> Result<&str, String> {
            fields.get(i).map(String::as_str).ok_or_else(|| {
                format!(
                    "credential report line {} has {} fields, fewer than its header",
                    idx + 2,
                    fields.len()
                )
            })
        };
        let flag = |i: usize| -> Result<bool, String> {
            match field(i)? {
                "true" => Ok(true),
                "false" | "not_supported" | "N/A" => Ok(false),
                other => Err(format!(
                    "credential report line {}: `{}` is not true or false",
                    idx + 2,
                    other.escape_debug()
                )),
            }
        };
        let name = field(user)?.to_owned();
        let mut access_keys = Vec::new();
        for (slot, active, rotated) in keys {
            access_keys.push(AccessKey {
                slot,
                active: flag(active)?,
                last_rotated: report_time(field(rotated)?)
                    .map_err(|err| format!("credential report line {}: {err}", idx + 2))?,
            });
        }
        rows.push(ReportRow {
            root: name == "<root_account>",
            user: name,
            password_enabled: flag(password)?,
            mfa_active: flag(mfa)?,
            access_keys,
        });
    }
    Ok(rows)
}

/// The Block Public Access configuration in an S3 or S3 Control answer.
pub fn public_access_block(what: &str, text: &str) -> Result<PublicAccessBlock, String> {
    let doc = xml(what, text)?;
    let config = doc
        .descendants()
        .find(|n| n.tag_name().name() == "PublicAccessBlockConfiguration")
        .ok_or_else(|| format!("the {what} answer has no `PublicAccessBlockConfiguration`"))?;
    let flag = |name: &str| -> Result<bool, String> {
        match child_text(config, name).map(str::trim) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!(
                "the {what} answer's `{name}` is `{}`, not true or false",
                other.escape_debug()
            )),
        }
    };
    Ok(PublicAccessBlock {
        block_public_acls: flag("BlockPublicAcls")?,
        ignore_public_acls: flag("IgnorePublicAcls")?,
        block_public_policy: flag("BlockPublicPolicy")?,
        restrict_public_buckets: flag("RestrictPublicBuckets")?,
    })
}

/// A bucket's name and, when ListBuckets gives it, its region.
pub type NamedBucket = (String, Option<String>);

/// One ListBuckets page: the buckets and the continuation token.
pub fn bucket_page(text: &str) -> Result<(Vec<NamedBucket>, Option<String>), String> {
    let doc = xml("ListBuckets", text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "ListAllMyBucketsResult" {
        return Err(format!(
            "the ListBuckets answer is a `{}`, not a `ListAllMyBucketsResult`",
            root.tag_name().name()
        ));
    }
    let mut buckets = Vec::new();
    for bucket in root
        .descendants()
        .filter(|n| n.tag_name().name() == "Bucket")
    {
        let name = child_text(bucket, "Name")
            .ok_or_else(|| "a ListBuckets bucket has no `Name`".to_owned())?;
        buckets.push((
            name.to_owned(),
            child_text(bucket, "BucketRegion").map(str::to_owned),
        ));
    }
    let token = root
        .children()
        .find(|n| n.tag_name().name() == "ContinuationToken")
        .and_then(|n| n.text())
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok((buckets, token))
}

/// DescribeTrails' `trailList`, without status.
pub fn trails(json: &Value) -> Result<Vec<Trail>, String> {
    let list = json
        .get("trailList")
        .and_then(Value::as_array)
        .ok_or_else(|| "the DescribeTrails answer has no `trailList` array".to_owned())?;
    list.iter()
        .map(|trail| {
            let text = |name: &str| {
                trail[name]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("a trail has no string `{name}`"))
            };
            Ok(Trail {
                name: text("Name")?,
                arn: text("TrailARN")?,
                home_region: text("HomeRegion")?,
                multi_region: trail["IsMultiRegionTrail"].as_bool().unwrap_or(false),
                log_file_validation: trail["LogFileValidationEnabled"].as_bool().unwrap_or(false),
                logging: false,
            })
        })
        .collect()
}

/// GetTrailStatus's `IsLogging`.
pub fn trail_logging(json: &Value) -> Result<bool, String> {
    json.get("IsLogging")
        .and_then(Value::as_bool)
        .ok_or_else(|| "the GetTrailStatus answer has no boolean `IsLogging`".to_owned())
}

/// GetEbsEncryptionByDefault's `ebsEncryptionByDefault`.
pub fn ebs_by_default(text: &str) -> Result<bool, String> {
    let doc = xml("GetEbsEncryptionByDefault", text)?;
    match child_text(doc.root(), "ebsEncryptionByDefault").map(str::trim) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(
            "the GetEbsEncryptionByDefault answer has no boolean `ebsEncryptionByDefault`"
                .to_owned(),
        ),
    }
}

/// A bucket name as S3 allows it (3 to 63 lowercase letters, digits, `.` and `-`, starting and
/// ending with a letter or digit); anything else never reaches a URL.
pub fn is_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

/// One CSV line's fields (double-quoted fields may hold commas and `""`).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// A credential report time (`2026-01-31T09:00:00+00:00`), or `None` for `N/A` and friends.
fn report_time(text: &str) -> Result<Option<OffsetDateTime>, String> {
    match text {
        "N/A" | "not_supported" | "no_information" | "" => Ok(None),
        _ => OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Some)
            .map_err(|err| format!("`{}` is not a date and time: {err}", text.escape_debug())),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    #[track_caller]
    fn check(csv: &str, expect: Expect) {
        let actual = match super::report_rows(csv) {
            Ok(rows) => format!("{rows:#?}"),
            Err(err) => err,
        };
        expect.assert_eq(&actual);
    }

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n";

    #[test]
    fn a_quoted_name_and_a_bad_flag() {
        check(
            &format!(
                "{HEADER}\"a,b\",arn:aws:iam::111122223333:user/a,2024-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,true,2025-02-03T04:05:06+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
            ),
            expect![[r#"
                [
                    ReportRow {
                        user: "a,b",
                        root: false,
                        password_enabled: true,
                        mfa_active: false,
                        access_keys: [
                            AccessKey {
                                slot: 1,
                                active: true,
                                last_rotated: Some(
                                    2025-02-03 4:05:06.0 +00:00:00,
                                ),
                            },
                            AccessKey {
                                slot: 2,
                                active: false,
                                last_rotated: None,
                            },
                        ],
                    },
                ]"#]],
        );
        check(
            &format!(
                "{HEADER}bob,arn,x,maybe,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
            ),
            expect!["credential report line 2: `maybe` is not true or false"],
        );
        check(
            "user,arn\n",
            expect!["the credential report has no `password_enabled` column"],
        );
    }

    #[test]
    fn bucket_names() {
        for good in ["abc", "clinic-backups.2026", "a1b"] {
            assert!(super::is_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "Upper",
            "a/b",
            "a..b",
            "-ab",
            "ab-",
            "a b",
            "a%2fb",
            "a?x",
            "x".repeat(64).as_str(),
        ] {
            assert!(!super::is_bucket_name(bad), "{bad}");
        }
    }
}
