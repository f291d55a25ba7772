//! Microsoft 365 (Entra ID, Intune, Defender, Secure Score) through Microsoft Graph: which
//! sources the selected checks need, reading them concurrently with one client, and the pure
//! observations the catalogue's `microsoft365` checks judge.

pub mod observe;
pub mod source;

use std::collections::BTreeSet;

use crate::graph::{GraphClient, GraphError};
use source::{Facts, Source};

/// Reads `sources` from the tenant, concurrently; each one's failure is kept beside it (a 403
/// names the application permission it needs), so one missing permission errs only the checks
/// that need it.
pub async fn collect(client: &GraphClient, sources: &BTreeSet<Source>) -> Facts {
    let mut tasks = tokio::task::JoinSet::new();
    for &source in sources {
        let client = client.clone();
        tasks.spawn(async move {
            let (path, paged) = source.request();
            let res = if paged {
                client.list(path).await
            } else {
                client.get(path).await.map(|one| vec![one])
            };
            let res = res.map_err(|err| explain(source, &err));
            (source, res)
        });
    }
    let mut facts = Facts::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((source, res)) => {
                if let Err(err) = &res {
                    tracing::warn!(source = ?source, error = %err, "Graph source not read.");
                }
                source.store(&mut facts, res);
            }
            Err(err) => tracing::error!(error = %err, "Graph collection task failed."),
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

/// A source's failure in words: a refusal names the permission to grant.
fn explain(source: Source, err: &GraphError) -> String {
    let (path, _) = source.request();
    let path = path.split('?').next().unwrap_or(path);
    match err {
        // Documented for `signInActivity` and the sign-in reports: a licence, not a permission.
        GraphError::Forbidden { code, .. }
            if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant" =>
        {
            format!(
                "the tenant has no Microsoft Entra ID P1 or P2 licence, which {} needs; GET /{path}: {err}",
                source.describe()
            )
        }
        GraphError::Forbidden { .. } => format!(
            "needs application permission {} (grant it to the app registration and give admin consent); GET /{path}: {err}",
            source.permission()
        ),
        _ => format!("GET /{path}: {err}"),
    }
}
