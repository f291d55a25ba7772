//! Scanning the configured cloud tenants (`[[cloud]]`): each tenant's application secret (a
//! service account key, an access key, an Okta API token or service app key) read from the vault, its catalogue checks run through the `cloud` crate, all tenants at once, and
//! the reports sealed like any target's (`scan::record_scans`).

use std::time::Duration;

use anyhow::Context;

use config::{CloudProvider, CloudTenantConfig, Microsoft365Auth, PasswordSource};
use model::Platform;

use crate::BadConfig;

/// Scans the configured tenants (only `only` when given), concurrently; one scan per tenant,
/// in configuration order. A tenant that cannot be reached yields `error` results, not an error.
///
/// # Errors
/// When no tenant is configured or named `only`, or a secret or CA file cannot be read.
pub async fn scan_tenants(
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &std::path::Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<cloud::TenantScan>> {
    let tenants: Vec<&CloudTenantConfig> = config
        .cloud
        .iter()
        .filter(|t| only.is_none_or(|name| t.name == name))
        .collect();
    if tenants.is_empty() {
        return Err(BadConfig(match only {
            Some(name) => format!(
                "no `[[cloud]]` tenant named `{name}` in the configuration (configured: {})",
                config
                    .cloud
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no `[[cloud]]` tenant in the configuration: add one (kind, tenant_id, client_id, credential)".to_owned(),
        })
        .into());
    }
    // Read every secret first, so a credential problem stops the run before any request.
    let secrets = crate::secrets::Secrets::new(config, data_dir);
    let mut jobs = Vec::new();
    for tenant in tenants {
        jobs.push(match &tenant.provider {
            CloudProvider::GoogleWorkspace(google) => {
                Job::GoogleWorkspace(google_workspace_tenant(tenant, google, &secrets)?)
            }
            CloudProvider::Aws(aws) => Job::Aws(aws_account(tenant, aws, &secrets)?),
            CloudProvider::Okta(okta) => Job::Okta(okta_org(tenant, okta, &secrets)?),
            _ => Job::Microsoft365(microsoft365_tenant(tenant, &secrets)?),
        });
    }
    let overrides = config.param_overrides();
    let runbooks: Vec<&model::Runbook> = catalog.for_platform(Platform::Microsoft365).collect();
    let google_runbooks: Vec<&model::Runbook> =
        catalog.for_platform(Platform::GoogleWorkspace).collect();
    let aws_runbooks: Vec<&model::Runbook> = catalog.for_platform(Platform::Aws).collect();
    let okta_runbooks: Vec<&model::Runbook> = catalog.for_platform(Platform::Okta).collect();
    let scans = jobs.into_iter().map(|job| {
        let (runbooks, google_runbooks, aws_runbooks, okta_runbooks, overrides) = (
            &runbooks,
            &google_runbooks,
            &aws_runbooks,
            &okta_runbooks,
            &overrides,
        );
        async move {
            match job {
                Job::Microsoft365(tenant) => {
                    cloud::scan_microsoft365(tenant, runbooks, overrides).await
                }
                Job::GoogleWorkspace(tenant) => {
                    cloud::scan_google_workspace(tenant, google_runbooks, overrides).await
                }
                Job::Aws(account) => cloud::scan_aws(account, aws_runbooks, overrides).await,
                Job::Okta(org) => cloud::scan_okta(org, okta_runbooks, overrides).await,
            }
        }
    });
    let done = futures_util::future::join_all(scans).await;
    for diagnostic in done.iter().flat_map(|scan| &scan.diagnostics) {
        tracing::warn!(tenant = %diagnostic.target, error = %diagnostic.message, "Cloud scan problem.");
    }
    Ok(done)
}

/// One tenant's scan to run, by provider.
enum Job {
    Microsoft365(cloud::Microsoft365Tenant),
    GoogleWorkspace(cloud::GoogleWorkspaceTenant),
    Aws(cloud::AwsAccount),
    Okta(cloud::OktaOrg),
}

/// The `cloud` crate's settings for one Okta org, its API token or service app key read from
/// the vault now (the scan asks for the scopes its checks need).
fn okta_org(
    tenant: &CloudTenantConfig,
    okta: &config::OktaConfig,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<cloud::OktaOrg> {
    let what = format!("cloud `{}`", tenant.name);
    let stored = secrets.password(&what, &PasswordSource::Credential(okta.credential.clone()))?;
    let credential = match &okta.auth {
        config::OktaAuth::Ssws => cloud::okta::OktaCredential::ApiToken(stored),
        config::OktaAuth::PrivateKeyJwt { client_id, key_id } => {
            cloud::okta::OktaCredential::PrivateKeyJwt {
                client_id: client_id.clone(),
                private_key_pem: stored,
                key_id: key_id.clone(),
                scopes: vec!["okta.users.read".to_owned()],
            }
        }
    };
    Ok(cloud::OktaOrg {
        name: tenant.name.clone(),
        settings: cloud::okta::OktaSettings {
            org_url: okta.org_url.clone(),
            credential,
            ca_pem: ca_pem(tenant, &what)?,
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(tenant.timeout_secs),
    })
}

/// The `cloud` crate's settings for one Google Workspace account, the service account's JSON key
/// read from the vault now.
fn google_workspace_tenant(
    tenant: &CloudTenantConfig,
    google: &config::GoogleWorkspaceConfig,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<cloud::GoogleWorkspaceTenant> {
    let what = format!("cloud `{}`", tenant.name);
    let key_json = secrets.password(
        &what,
        &PasswordSource::Credential(google.credential.clone()),
    )?;
    Ok(cloud::GoogleWorkspaceTenant {
        name: tenant.name.clone(),
        customer_id: google.customer_id.clone(),
        directory: cloud::google::GoogleSettings {
            token_url: google.token_url.clone(),
            directory_base: google.directory_base.clone(),
            subject: google.admin_subject.clone(),
            key_json,
            ca_pem: ca_pem(tenant, &what)?,
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(tenant.timeout_secs),
    })
}

/// The `cloud` crate's settings for one AWS account, its access key read from the vault now.
fn aws_account(
    tenant: &CloudTenantConfig,
    aws: &config::AwsConfig,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<cloud::AwsAccount> {
    let what = format!("cloud `{}`", tenant.name);
    let stored = secrets.password(&what, &PasswordSource::Credential(aws.credential.clone()))?;
    let credentials = cloud::aws::sigv4::Credentials::from_vault_text(&stored).map_err(|err| {
        BadConfig(format!(
            "{what}: vault entry `{}`: {err} (store it again with `osiris credentials set {} --kind password`)",
            aws.credential, aws.credential
        ))
    })?;
    Ok(cloud::AwsAccount {
        name: tenant.name.clone(),
        settings: cloud::aws::client::AwsSettings {
            account_id: aws.account_id.clone(),
            regions: aws.regions.clone(),
            credentials,
            endpoint: aws.endpoint.clone(),
            ca_pem: ca_pem(tenant, &what)?,
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(tenant.timeout_secs),
    })
}

/// The tenant's `ca_file`, read now.
fn ca_pem(tenant: &CloudTenantConfig, what: &str) -> anyhow::Result<Option<Vec<u8>>> {
    tenant
        .ca_file
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("{what}: reading ca_file {}", path.display()))
        })
        .transpose()
}

/// The `cloud` crate's settings for one tenant, its secret read from the vault now.
fn microsoft365_tenant(
    tenant: &CloudTenantConfig,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<cloud::Microsoft365Tenant> {
    let what = format!("cloud `{}`", tenant.name);
    let CloudProvider::Microsoft365(m365) = &tenant.provider else {
        return Err(BadConfig(format!("{what}: this appliance cannot scan its kind")).into());
    };
    let stored = secrets.password(&what, &PasswordSource::Credential(m365.credential.clone()))?;
    let credential = match m365.auth {
        Microsoft365Auth::ClientSecret => cloud::graph::ClientCredential::Secret(stored),
        Microsoft365Auth::Certificate => cloud::graph::ClientCredential::Certificate(stored),
    };
    let ca_pem = ca_pem(tenant, &what)?;
    Ok(cloud::Microsoft365Tenant {
        name: tenant.name.clone(),
        graph: cloud::graph::GraphSettings {
            token_url: m365.token_url.clone(),
            graph_base: m365.graph_base.clone(),
            client_id: m365.client_id.clone(),
            credential,
            ca_pem,
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(tenant.timeout_secs),
    })
}
