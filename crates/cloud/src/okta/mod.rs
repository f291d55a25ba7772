//! Okta through the Management API: the client ([`client`]), which listings the selected checks
//! need, reading them with one client (each failure kept beside its source, a refusal naming the
//! OAuth scope to grant), and the pure observations the catalogue's `okta` checks judge.

pub mod client;
pub mod observe;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use client::{
    MAX_PAGES, MAX_RATE_LIMIT_WAIT, OktaClient, OktaCredential, OktaError, OktaSettings, next_link,
    rate_limit_reset,
};
use source::{Facts, Source};

/// Factor listings in flight at once (one request per active user; Okta's limit is per minute,
/// and the client waits a window out when it is reached).
const CONCURRENCY: usize = 8;

/// Users per page (Okta's most).
const PAGE: &str = "200";

/// Every source the given collectors read (unknown collectors read none).
pub fn sources_for<'a>(collectors: impl IntoIterator<Item = &'a str>) -> BTreeSet<Source> {
    collectors
        .into_iter()
        .filter_map(observe::sources_of)
        .flat_map(|sources| sources.iter().copied())
        .collect()
}

/// The OAuth scopes reading `sources` needs (what a service app asks its token for).
pub fn scopes_for(sources: &BTreeSet<Source>) -> Vec<String> {
    sources
        .iter()
        .map(|s| s.scope().to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Reads `sources` of the org: the users (then each active user's factors) beside the role
/// assignments and the policies; each source's failure is kept beside it (a refusal names the
/// scope to grant), so one missing scope errs only the checks that need it.
pub async fn collect(client: &OktaClient, sources: &BTreeSet<Source>) -> Facts {
    let wanted = |s: Source| sources.contains(&s);
    let people = async {
        if !wanted(Source::Users) && !wanted(Source::Factors) {
            return (None, None);
        }
        let users = client
            .list(&["users"], &[("limit", PAGE)], Source::Users.scope())
            .await
            .map_err(|err| err.to_string())
            .and_then(|values| {
                values
                    .into_iter()
                    .map(source::user)
                    .collect::<Result<Vec<_>, _>>()
            });
        let factors = if !wanted(Source::Factors) {
            None
        } else {
            Some(match &users {
                Ok(users) => factors(client, users).await,
                Err(err) => Err(format!("{} were not read: {err}", Source::Users.describe())),
            })
        };
        (Some(users), factors)
    };
    let admins = async {
        if !wanted(Source::Admins) {
            return None;
        }
        Some(
            client
                .list_in(
                    &["iam", "assignees", "users"],
                    &[("limit", "100")],
                    "value",
                    Source::Admins.scope(),
                )
                .await
                .map_err(|err| err.to_string())
                .and_then(|values| values.into_iter().map(source::assignee).collect()),
        )
    };
    let passwords = async {
        if !wanted(Source::PasswordPolicies) {
            return None;
        }
        Some(
            client
                .list(
                    &["policies"],
                    &[("type", "PASSWORD")],
                    Source::PasswordPolicies.scope(),
                )
                .await
                .map_err(|err| err.to_string())
                .and_then(|values| values.into_iter().map(source::password_policy).collect()),
        )
    };
    let sign_on = async {
        if !wanted(Source::SignOnRules) {
            return None;
        }
        Some(sign_on_rules(client).await)
    };
    let ((users, factors), admins, password_policies, sign_on_rules) =
        tokio::join!(people, admins, passwords, sign_on);
    let facts = Facts {
        users,
        factors,
        admins,
        password_policies,
        sign_on_rules,
    };
    for source in sources {
        if let Some(Err(err)) = source.collected(&facts) {
            tracing::warn!(source = ?source, error = %err, "Okta source not read.");
        }
    }
    facts
}

/// Each active user's enrolled factors, a bounded number of requests at a time.
async fn factors(
    client: &OktaClient,
    users: &[source::User],
) -> Result<BTreeMap<String, Vec<source::Factor>>, String> {
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for user in users.iter().filter(|u| u.is_active()) {
        let client = client.clone();
        let limit = limit.clone();
        let id = user.id.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let res = client
                .list(&["users", &id, "factors"], &[], Source::Factors.scope())
                .await
                .map_err(|err| err.to_string())
                .and_then(|values| values.into_iter().map(source::factor).collect());
            (id, res)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, Ok(factors))) => {
                out.insert(id, factors);
            }
            Ok((_, Err(err))) => {
                tasks.abort_all();
                return Err(err);
            }
            Err(err) => return Err(format!("a factor listing task failed: {err}")),
        }
    }
    Ok(out)
}

/// The allowing rules of every active global session and authentication policy.
async fn sign_on_rules(client: &OktaClient) -> Result<Vec<source::SignOnRule>, String> {
    let scope = Source::SignOnRules.scope();
    let mut out = Vec::new();
    for kind in ["OKTA_SIGN_ON", "ACCESS_POLICY"] {
        let policies = client
            .list(&["policies"], &[("type", kind)], scope)
            .await
            .map_err(|err| err.to_string())?;
        for policy in policies {
            if policy["status"].as_str() != Some("ACTIVE") {
                continue;
            }
            let (Some(id), Some(name)) = (policy["id"].as_str(), policy["name"].as_str()) else {
                return Err(format!("a {kind} policy has no `id` or `name`"));
            };
            let rules = client
                .list(&["policies", id, "rules"], &[], scope)
                .await
                .map_err(|err| err.to_string())?;
            out.extend(source::sign_on_rules(name, kind, rules)?);
        }
    }
    Ok(out)
}
