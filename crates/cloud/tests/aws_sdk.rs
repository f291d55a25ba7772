//! The AWS peer and the Rust signer as AWS's own client sees them
//! (`tests/python/botocore_check.py`): botocore's clients read every source the checks use from
//! the peer (so the peer speaks the services' real protocols, as the service models describe
//! them), and botocore's SigV4 signer computes the same `Authorization` as ours for the same
//! requests (an independent check of our signing).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write as _;
use std::process::{Command, Stdio};

use cloud::aws::sigv4::{self, Credentials};
use test_support::aws::{ACCESS_KEY_ID, ACCOUNT, FakeAws, SECRET};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/botocore_check.py"
);

fn read_with_botocore(python: &std::path::Path, peer: &FakeAws, secret: &str) -> String {
    let out = Command::new(python)
        .arg(SCRIPT)
        .args(["read", &peer.endpoint(), ACCOUNT, ACCESS_KEY_ID, secret])
        .args(test_support::aws::REGIONS)
        .env("AWS_CA_BUNDLE", peer.ca_file())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn botocore_reads_the_peer_as_aws() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeAws::start(&python, &[]);
    expect_test::expect![[r#"
        {
         "account": "404122885710",
         "account_block": {
          "BlockPublicAcls": true,
          "BlockPublicPolicy": true,
          "IgnorePublicAcls": true,
          "RestrictPublicBuckets": true
         },
         "active_keys": [
          "backup-agent 1",
          "dr.smith 1",
          "ehr-integration 1",
          "it.contractor 1"
         ],
         "bucket_pages": 1,
         "buckets": 6,
         "buckets_blocked": 4,
         "buckets_open": [
          "smithpractice-website",
          "smithpractice-tmp-share"
         ],
         "console_without_mfa": [
          "office.manager"
         ],
         "ebs": {
          "us-east-1": true,
          "us-west-2": false
         },
         "root_keys": 0,
         "root_mfa": 1,
         "trails": [
          {
           "logging": true,
           "multi_region": true,
           "name": "practice-trail",
           "validation": true
          }
         ]
        }
    "#]]
    .assert_eq(&read_with_botocore(&python, &peer, SECRET));
    let refused = read_with_botocore(&python, &peer, "not-the-secret");
    expect_test::expect![[r#"
        {"error": "SignatureDoesNotMatch"}
    "#]]
    .assert_eq(&refused);
}

/// One request signed by both signers.
struct Case {
    service: &'static str,
    region: &'static str,
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
}

const CASES: &[Case] = &[
    // IAM's query protocol: a form body, signed for us-east-1.
    Case {
        service: "iam",
        region: "us-east-1",
        method: "POST",
        host: "iam.amazonaws.com",
        path: "/",
        query: &[],
        headers: &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body: "Action=GenerateCredentialReport&Version=2010-05-08",
        token: None,
    },
    // S3 with an empty-valued sub-resource, a token with `+/=`, and a session token.
    Case {
        service: "s3",
        region: "eu-west-1",
        method: "GET",
        host: "s3.eu-west-1.amazonaws.com",
        path: "/clinic-backups.2026",
        query: &[("publicAccessBlock", "")],
        headers: &[],
        body: "",
        token: Some("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="),
    },
    Case {
        service: "s3",
        region: "us-east-1",
        method: "GET",
        host: "127.0.0.1:8443",
        path: "/",
        query: &[
            ("max-buckets", "1000"),
            ("continuation-token", "ZXhh+bXBs/ZQ=="),
        ],
        headers: &[],
        body: "",
        token: None,
    },
    // S3 Control's account header.
    Case {
        service: "s3",
        region: "us-west-2",
        method: "GET",
        host: "404122885710.s3-control.us-west-2.amazonaws.com",
        path: "/v20180820/configuration/publicAccessBlock",
        query: &[],
        headers: &[("x-amz-account-id", "404122885710")],
        body: "",
        token: None,
    },
    // CloudTrail's JSON 1.1 with a target header and runs of spaces in a value.
    Case {
        service: "cloudtrail",
        region: "ap-southeast-2",
        method: "POST",
        host: "cloudtrail.ap-southeast-2.amazonaws.com",
        path: "/",
        query: &[],
        headers: &[
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.GetTrailStatus",
            ),
            ("x-test-spaces", "  a   b  "),
        ],
        body: r#"{"Name": "arn:aws:cloudtrail:us-east-1:404122885710:trail/practice-trail"}"#,
        token: None,
    },
    // A path that needs encoding (twice, outside S3) and a query with reserved characters.
    Case {
        service: "service",
        region: "us-gov-west-1",
        method: "GET",
        host: "example.amazonaws.com",
        path: "/a path/ü@x",
        query: &[("b", "x y/z"), ("a", "ä&=")],
        headers: &[],
        body: "",
        token: None,
    },
];

#[test]
fn our_signatures_match_botocore_s() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let time = "20261204T120000Z";
    let cases: Vec<serde_json::Value> = CASES
        .iter()
        .map(|c| {
            serde_json::json!({
                "key_id": ACCESS_KEY_ID, "secret": SECRET, "token": c.token,
                "service": c.service, "region": c.region, "time": time,
                "method": c.method, "host": c.host, "path": c.path,
                "query": c.query, "headers": c.headers, "body": c.body,
            })
        })
        .collect();
    let mut child = Command::new(&python)
        .args([SCRIPT, "sign"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let botocore: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let ours: Vec<String> = CASES
        .iter()
        .map(|c| {
            let credentials = Credentials {
                access_key_id: ACCESS_KEY_ID.to_owned(),
                secret_access_key: zeroize::Zeroizing::new(SECRET.to_owned()),
                session_token: c.token.map(|t| zeroize::Zeroizing::new(t.to_owned())),
            };
            let added = sigv4::sign(
                &credentials,
                &sigv4::Request {
                    method: c.method,
                    host: c.host,
                    path: c.path,
                    query: c.query,
                    headers: c.headers,
                    payload: c.body.as_bytes(),
                },
                sigv4::Scope {
                    region: c.region,
                    service: c.service,
                    amz_date: time,
                },
            );
            added
                .into_iter()
                .find(|(name, _)| *name == "authorization")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(ours.len(), CASES.len());
    assert_eq!(ours, botocore);
}
