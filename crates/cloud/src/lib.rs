//! Cloud and SaaS posture: a tenant is the target, its provider's API the transport.
//!
//! Each provider is a module (`microsoft365`, `google_workspace`, `aws`, `okta`) with two halves: IO that reads the sources
//! the selected checks need into typed facts (`collect`), and pure observations that turn facts
//! and a check's parameters into the JSON object the catalogue's expectations judge, exactly as
//! a host check's detect script output is judged (`model::evaluate`). [`judge`] is that second
//! half for any provider behind the [`Provider`] trait, so evaluation is a sync function of
//! facts, parameters and time. A source that could not be read makes every check that needs it
//! `error` with the reason (a refusal names the missing permission), never `pass`.
//! Providers to come slot in as further modules with their own client and a [`Provider`].
//! `rmm` is not a posture provider: it imports an RMM's device inventory (Datto RMM, ConnectWise
//! Automate) and reconciles it with the directory's.

pub mod aws;
pub mod google;
pub mod google_workspace;
pub mod graph;
pub mod microsoft365;
pub mod oauth;
pub mod okta;
pub mod rmm;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use model::{CheckOutcome, CheckStatus, Platform, ResolvedParams, Runbook, Shell, Target};
use scan::{CheckResult, Diagnostic, ParamOverrides, TargetReport};

/// One provider's pure half: the platform its checks carry and its observations.
pub trait Provider {
    /// What the provider read from one tenant.
    type Facts;
    /// The catalogue platform of its checks.
    const PLATFORM: Platform;
    /// The JSON object `collector` observes in `facts`, or why it cannot.
    fn observe(
        collector: &str,
        facts: &Self::Facts,
        params: &ResolvedParams,
        now: OffsetDateTime,
    ) -> Result<Value, String>;
}

/// Microsoft 365 through Microsoft Graph.
#[derive(Debug, Clone, Copy)]
pub struct Microsoft365;

/// One Microsoft 365 tenant to scan.
#[derive(Debug)]
pub struct Microsoft365Tenant {
    /// The target name in evidence (the `[[cloud]]` name).
    pub name: String,
    pub graph: graph::GraphSettings,
    /// The whole scan, throttling waits included.
    pub timeout: Duration,
}

impl Provider for Microsoft365 {
    type Facts = microsoft365::source::Facts;
    const PLATFORM: Platform = Platform::Microsoft365;

    fn observe(
        collector: &str,
        facts: &Self::Facts,
        params: &ResolvedParams,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        microsoft365::observe::observe(collector, facts, params, now)
    }
}

/// Google Workspace through the Admin SDK Directory API.
#[derive(Debug, Clone, Copy)]
pub struct GoogleWorkspace;

/// One Google Workspace account to scan.
#[derive(Debug)]
pub struct GoogleWorkspaceTenant {
    /// The target name in evidence (the `[[cloud]]` name).
    pub name: String,
    /// The account's customer ID, or `my_customer` (validated by the configuration).
    pub customer_id: String,
    pub directory: google::GoogleSettings,
    /// The whole scan, throttling waits included.
    pub timeout: Duration,
}

impl Provider for GoogleWorkspace {
    type Facts = google_workspace::source::Facts;
    const PLATFORM: Platform = Platform::GoogleWorkspace;

    fn observe(
        collector: &str,
        facts: &Self::Facts,
        params: &ResolvedParams,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        google_workspace::observe::observe(collector, facts, params, now)
    }
}

/// AWS through IAM, S3, CloudTrail and EC2 (SigV4).
#[derive(Debug, Clone, Copy)]
pub struct Aws;

/// One AWS account to scan.
#[derive(Debug)]
pub struct AwsAccount {
    /// The target name in evidence (the `[[cloud]]` name).
    pub name: String,
    pub settings: aws::client::AwsSettings,
    /// The whole scan, back-off waits included.
    pub timeout: Duration,
}

impl Provider for Aws {
    type Facts = aws::source::Facts;
    const PLATFORM: Platform = Platform::Aws;

    fn observe(
        collector: &str,
        facts: &Self::Facts,
        params: &ResolvedParams,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        aws::observe::observe(collector, facts, params, now)
    }
}

/// Okta through the Management API.
#[derive(Debug, Clone, Copy)]
pub struct Okta;

/// One Okta org to scan.
#[derive(Debug)]
pub struct OktaOrg {
    /// The target name in evidence (the `[[cloud]]` name).
    pub name: String,
    /// How to reach the org; a service app's scopes are replaced by the ones the selected checks
    /// need.
    pub settings: okta::OktaSettings,
    /// The whole scan, rate-limit waits included.
    pub timeout: Duration,
}

impl Provider for Okta {
    type Facts = okta::source::Facts;
    const PLATFORM: Platform = Platform::Okta;

    fn observe(
        collector: &str,
        facts: &Self::Facts,
        params: &ResolvedParams,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        okta::observe::observe(collector, facts, params, now)
    }
}

/// One tenant's scan: the report to seal, what an operator should know, and the Intune managed
/// devices read on the way (empty when none were read), for the machines' own records.
#[derive(Debug)]
pub struct TenantScan {
    pub report: TargetReport,
    pub diagnostics: Vec<Diagnostic>,
    pub managed_devices: Vec<microsoft365::source::Device>,
}

/// Judges every runbook against the facts (pure): the collector's observation through the
/// runbook's expectations; a missing fact, an unknown collector or a bad parameter is `error`.
pub fn judge<P: Provider>(
    runbooks: &[&Runbook],
    facts: &P::Facts,
    overrides: &ParamOverrides,
    now: OffsetDateTime,
) -> Vec<(String, CheckOutcome)> {
    let empty = BTreeMap::new();
    runbooks
        .iter()
        .map(|runbook| {
            let outcome = match model::resolve_params(
                &runbook.params,
                overrides.get(&runbook.id).unwrap_or(&empty),
            ) {
                Err(err) => error_outcome(format!("configuration: {err}")),
                Ok(_) if runbook.detect.shell != Shell::Cloud => {
                    error_outcome("not a cloud check".to_owned())
                }
                Ok(params) => match P::observe(&runbook.detect.body, facts, &params, now) {
                    Ok(observed) => model::evaluate(runbook, &params, &observed.to_string()),
                    Err(reason) => error_outcome(reason),
                },
            };
            (runbook.id.clone(), outcome)
        })
        .collect()
}

/// Scans one Microsoft 365 tenant with the given runbooks (its platform's): sign in, read what
/// they need, judge. Never fails as a whole: a refused sign-in makes every check `error`.
pub async fn scan_microsoft365(
    tenant: Microsoft365Tenant,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> TenantScan {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let target = Target {
        name: tenant.name.clone(),
        platform: Platform::Microsoft365,
        device_type: model::DeviceType::Tenant,
    };
    let mut diagnostics = Vec::new();
    let mut managed_devices = Vec::new();
    let signed_in = match graph::GraphClient::new(tenant.graph, clock + tenant.timeout) {
        Ok(client) => client.sign_in().await.map(|()| client),
        Err(err) => Err(err),
    };
    let outcomes = match signed_in {
        Ok(client) => {
            let sources =
                microsoft365::sources_for(runbooks.iter().map(|rb| rb.detect.body.as_str()));
            let facts = microsoft365::collect(&client, &sources).await;
            let outcomes =
                judge::<Microsoft365>(runbooks, &facts, overrides, OffsetDateTime::now_utc());
            if let Some(Ok(devices)) = facts.managed_devices {
                managed_devices = devices;
            }
            outcomes
        }
        Err(err) => not_checked(&tenant.name, &err.to_string(), runbooks, &mut diagnostics),
    };
    TenantScan {
        report: report(target, started, clock.elapsed(), outcomes),
        diagnostics,
        managed_devices,
    }
}

/// Scans one Google Workspace account with the given runbooks (its platform's): a token per
/// scope the selected checks need, read, judge. Never fails as a whole: an unusable key makes
/// every check `error`, a refused token the checks of its scope.
pub async fn scan_google_workspace(
    tenant: GoogleWorkspaceTenant,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> TenantScan {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let target = Target {
        name: tenant.name.clone(),
        platform: Platform::GoogleWorkspace,
        device_type: model::DeviceType::Tenant,
    };
    let mut diagnostics = Vec::new();
    let outcomes = match google::DirectoryClient::new(tenant.directory, clock + tenant.timeout) {
        Ok(client) => {
            let sources =
                google_workspace::sources_for(runbooks.iter().map(|rb| rb.detect.body.as_str()));
            let facts = google_workspace::collect(&client, &tenant.customer_id, &sources).await;
            for source in &sources {
                if let Some(Err(err)) = source.collected(&facts) {
                    diagnostics.push(Diagnostic {
                        target: tenant.name.clone(),
                        message: format!("{}: {err}", source.describe()),
                    });
                }
            }
            judge::<GoogleWorkspace>(runbooks, &facts, overrides, OffsetDateTime::now_utc())
        }
        Err(err) => not_checked(&tenant.name, &err.to_string(), runbooks, &mut diagnostics),
    };
    TenantScan {
        report: report(target, started, clock.elapsed(), outcomes),
        diagnostics,
        managed_devices: Vec::new(),
    }
}

/// Scans one AWS account with the given runbooks (its platform's): confirm the key belongs to
/// the account, read what they need, judge. Never fails as a whole: a refused key makes every
/// check `error`.
pub async fn scan_aws(
    account: AwsAccount,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> TenantScan {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let target = Target {
        name: account.name.clone(),
        platform: Platform::Aws,
        device_type: model::DeviceType::Tenant,
    };
    let signed_in = match aws::client::AwsClient::new(account.settings, clock + account.timeout) {
        Ok(client) => aws::sign_in(&client).await.map(|()| client),
        Err(err) => Err(err.to_string()),
    };
    let mut diagnostics = Vec::new();
    let outcomes = match signed_in {
        Ok(client) => {
            let sources = aws::sources_for(runbooks.iter().map(|rb| rb.detect.body.as_str()));
            let facts = aws::collect(&client, &sources).await;
            judge::<Aws>(runbooks, &facts, overrides, OffsetDateTime::now_utc())
        }
        Err(err) => not_checked(&account.name, &err, runbooks, &mut diagnostics),
    };
    TenantScan {
        report: report(target, started, clock.elapsed(), outcomes),
        diagnostics,
        managed_devices: Vec::new(),
    }
}

/// Scans one Okta org with the given runbooks (its platform's): read what they need (a service
/// app asks for exactly their scopes), judge. Never fails as a whole: a refused credential makes
/// every check `error`, a missing scope the checks of its sources.
pub async fn scan_okta(
    org: OktaOrg,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> TenantScan {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let target = Target {
        name: org.name.clone(),
        platform: Platform::Okta,
        device_type: model::DeviceType::Tenant,
    };
    let sources = okta::sources_for(runbooks.iter().map(|rb| rb.detect.body.as_str()));
    let mut settings = org.settings;
    if let okta::OktaCredential::PrivateKeyJwt { scopes, .. } = &mut settings.credential {
        *scopes = okta::scopes_for(&sources);
    }
    let mut diagnostics = Vec::new();
    let outcomes = match okta::OktaClient::new(settings, clock + org.timeout) {
        Ok(client) => {
            let facts = okta::collect(&client, &sources).await;
            for source in &sources {
                if let Some(Err(err)) = source.collected(&facts) {
                    diagnostics.push(Diagnostic {
                        target: org.name.clone(),
                        message: format!("{}: {err}", source.describe()),
                    });
                }
            }
            judge::<Okta>(runbooks, &facts, overrides, OffsetDateTime::now_utc())
        }
        Err(err) => not_checked(&org.name, &err.to_string(), runbooks, &mut diagnostics),
    };
    TenantScan {
        report: report(target, started, clock.elapsed(), outcomes),
        diagnostics,
        managed_devices: Vec::new(),
    }
}

/// Every check `error` because the tenant could not be signed in to (`err` says why), and the
/// diagnostic for the operator.
fn not_checked(
    name: &str,
    err: &str,
    runbooks: &[&Runbook],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, CheckOutcome)> {
    tracing::warn!(tenant = %name, error = %err, "Cannot sign in to the tenant.");
    diagnostics.push(Diagnostic {
        target: name.to_owned(),
        message: err.to_owned(),
    });
    runbooks
        .iter()
        .map(|rb| (rb.id.clone(), error_outcome(format!("not checked: {err}"))))
        .collect()
}

/// The sources of `collector` in a provider's table of collectors; `None` for an unknown name.
pub(crate) fn sources_in<S>(
    table: &'static [(&str, &'static [S])],
    collector: &str,
) -> Option<&'static [S]> {
    table
        .iter()
        .find(|(name, _)| *name == collector)
        .map(|(_, sources)| *sources)
}

/// `Ok` when every source a collector needs was read; else what was not, and why.
pub(crate) fn all_read<'a>(
    collector: &str,
    sources: Option<impl IntoIterator<Item = (&'static str, Option<Result<(), &'a str>>)>>,
) -> Result<(), String> {
    let Some(sources) = sources else {
        return Err(format!(
            "unknown collector `{collector}`: this appliance's cloud crate does not provide it"
        ));
    };
    let missing: Vec<String> = sources
        .into_iter()
        .filter_map(|(describe, state)| match state {
            Some(Ok(())) => None,
            Some(Err(err)) => Some(format!("{describe}: {err}")),
            None => Some(format!("{describe} was not read")),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("could not read {}", missing.join("; ")))
    }
}

/// The target's report: every outcome with the scan's elapsed time.
fn report(
    target: Target,
    started: OffsetDateTime,
    elapsed: Duration,
    outcomes: Vec<(String, CheckOutcome)>,
) -> TargetReport {
    let results = outcomes
        .into_iter()
        .map(|(runbook_id, outcome)| CheckResult {
            runbook_id,
            outcome,
            elapsed,
        })
        .collect();
    TargetReport {
        target,
        started,
        finished: OffsetDateTime::now_utc(),
        carried: Default::default(),
        target_cpu: Default::default(),
        results,
    }
}

fn error_outcome(reason: String) -> CheckOutcome {
    CheckOutcome {
        status: CheckStatus::Error,
        observed: Value::Null,
        expected: String::new(),
        reason,
    }
}
