//! Google Workspace through the Admin SDK Directory API: which listings the selected checks
//! need, reading them concurrently with one client (a token per scope), and the pure
//! observations the catalogue's `google-workspace` checks judge.

pub mod observe;
pub mod source;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::google::{DirectoryClient, DirectoryError};
use source::{Facts, Source};

/// Reads `sources` of account `customer` (a validated customer ID or `my_customer`),
/// concurrently; each one's failure is kept beside it (a missing scope or privilege is named),
/// so one missing grant errs only the checks that need it.
pub async fn collect(
    client: &DirectoryClient,
    customer: &str,
    sources: &BTreeSet<Source>,
) -> Facts {
    let mut tasks = tokio::task::JoinSet::new();
    for &source in sources {
        let client = client.clone();
        let customer = customer.to_owned();
        tasks.spawn(async move {
            let res = read(&client, &customer, source)
                .await
                .map_err(|err| explain(source, &client, &err));
            (source, res)
        });
    }
    let mut facts = Facts::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((source, res)) => {
                if let Err(err) = &res {
                    tracing::warn!(source = ?source, error = %err, "Directory API source not read.");
                }
                source.store(&mut facts, res);
            }
            Err(err) => tracing::error!(error = %err, "Directory API collection task failed."),
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

/// One source's items: a listing, or for the super admins the roles and then each super admin
/// role's assignments.
async fn read(
    client: &DirectoryClient,
    customer: &str,
    source: Source,
) -> Result<Vec<Value>, DirectoryError> {
    let scope = source.scope();
    match source {
        Source::Users => {
            client
                .list(
                    &["users"],
                    &[
                        ("customer", customer),
                        ("maxResults", "500"),
                        ("projection", "basic"),
                        ("orderBy", "email"),
                    ],
                    "users",
                    scope,
                )
                .await
        }
        Source::MobileDevices => {
            client
                .list(
                    &["customer", customer, "devices", "mobile"],
                    &[("maxResults", "100"), ("projection", "FULL")],
                    "mobiledevices",
                    scope,
                )
                .await
        }
        Source::SuperAdmins => {
            let roles = client
                .list(
                    &["customer", customer, "roles"],
                    &[("maxResults", "100")],
                    "items",
                    scope,
                )
                .await?;
            let mut assignments = Vec::new();
            for role in roles.iter().filter(|r| r["isSuperAdminRole"] == true) {
                let Some(role_id) = role["roleId"].as_str() else {
                    return Err(DirectoryError::Malformed(
                        "a super admin role has no `roleId`".to_owned(),
                    ));
                };
                assignments.extend(
                    client
                        .list(
                            &["customer", customer, "roleassignments"],
                            &[("roleId", role_id), ("maxResults", "200")],
                            "items",
                            scope,
                        )
                        .await?,
                );
            }
            Ok(assignments)
        }
    }
}

/// A source's failure in words: a refused token names the scope to authorize, a 403 the
/// privilege the acting administrator lacks.
fn explain(source: Source, client: &DirectoryClient, err: &DirectoryError) -> String {
    match err {
        DirectoryError::Forbidden { reason, .. }
            if reason == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
                || reason == "insufficientPermissions" =>
        {
            format!(
                "needs scope {} for the service account {} (authorize it under domain-wide delegation in the Admin console); {err}",
                source.scope(),
                client.service_account()
            )
        }
        DirectoryError::Forbidden { .. } => format!(
            "the acting administrator lacks the privilege {} (or the scope {}); {err}",
            source.privilege(),
            source.scope()
        ),
        _ => err.to_string(),
    }
}
