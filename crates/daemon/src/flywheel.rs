//! The L1 rules in effect: the built-in rules plus the flywheel's promoted patterns, reloaded
//! before every heal and right after a person's decision through the local API, so an approval
//! or a demotion takes effect without a restart (docs/L2.md, "The flywheel").

use std::sync::{Arc, RwLock};

use crate::Shared;

/// The rules every L1 decision uses now, and the promoted rules' text they were built from.
pub(crate) struct L1Rules {
    current: RwLock<(Arc<rules::RuleSet>, String)>,
}

impl L1Rules {
    pub(crate) fn new(rules: rules::RuleSet, promoted: String) -> L1Rules {
        L1Rules {
            current: RwLock::new((Arc::new(rules), promoted)),
        }
    }

    /// The rules in effect.
    pub(crate) fn get(&self) -> Arc<rules::RuleSet> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0,
        )
    }

    fn promoted(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    fn set(&self, rules: rules::RuleSet, promoted: String) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (Arc::new(rules), promoted);
    }
}

/// The built-in rules with the promoted patterns' rules, and the promoted rules' text; on any
/// error the built-in rules alone (logged), since healing must go on.
pub(crate) async fn load(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    builtin: &rules::RuleSet,
    data_dir: &std::path::Path,
) -> (rules::RuleSet, String) {
    let promoted = match ops::l2::flywheel_rules(store, config, catalog, data_dir).await {
        Ok(promoted) => promoted,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "The flywheel's decisions cannot be read; running with the built-in rules.");
            return (builtin.clone(), String::new());
        }
    };
    if promoted.is_empty() {
        return (builtin.clone(), promoted);
    }
    match rules::embedded_with(catalog.runbooks(), "flywheel.json", &promoted) {
        Ok(with_promoted) => (with_promoted, promoted),
        Err(err) => {
            tracing::error!(error = %err, "The flywheel's promoted rules are invalid; running with the built-in rules.");
            (builtin.clone(), String::new())
        }
    }
}

/// Loads the rules again; logs when the promoted rules changed.
pub(crate) async fn reload(shared: &Shared) {
    let settings = &shared.settings;
    let (rules, promoted) = load(
        &shared.store,
        &settings.config,
        &settings.catalog,
        &settings.rules,
        &settings.data_dir,
    )
    .await;
    if promoted != shared.l1.promoted() {
        tracing::info!(
            rules = rules.rules().len(),
            "L1 rules reloaded: the flywheel's promoted patterns changed."
        );
        shared.l1.set(rules, promoted);
    }
}

/// Whether the rules in effect include pattern `id`'s rule (`L1-FLY-<hex>` for `fw-<hex>`).
pub(crate) fn in_effect(rules: &rules::RuleSet, id: &str) -> bool {
    let Some(hex) = id.strip_prefix("fw-") else {
        return false;
    };
    rules
        .rules()
        .iter()
        .any(|rule| rule.id.strip_prefix("L1-FLY-") == Some(hex))
}
