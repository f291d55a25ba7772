//! The appliance's remediation requests: a `RunRemediation` names a runbook of the agent's own
//! embedded catalogue, an action and typed parameters; it never carries script text.
//!
//! [`plan`] accepts a request only for a runbook of this catalogue and platform that has the
//! asked-for script, with parameters its declarations accept (names, types and bounds, through
//! `model`'s one validation); anything else is refused with the reason. An accepted
//! remediation runs the runbook's remediate script, then its detect script again to verify,
//! and its rollback when either fails; each phase is reported as a `RemediationOutcome`.

use agent_proto::v1::{RemediationAction, RunRemediation, param};
use model::{ParamValue, Runbook, resolve_params};

use crate::platform::Params;

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Refuse it, saying why.
    Refused(String),
    /// Run the remediation, verify, roll back on failure.
    Remediate {
        /// The runbook.
        runbook: Box<Runbook>,
        /// Its parameters, checked.
        params: Params,
    },
    /// Run the rollback.
    Rollback {
        /// The runbook.
        runbook: Box<Runbook>,
        /// Its parameters, checked.
        params: Params,
    },
}

/// Decides what to do with `request` for this `catalog` on `platform`.
#[must_use]
pub(crate) fn plan(
    catalog: &catalog::Catalog,
    platform: model::Platform,
    request: &RunRemediation,
) -> Plan {
    let id = &request.runbook_id;
    let Some(runbook) = catalog.get(id) else {
        return Plan::Refused(format!(
            "runbook {id} is not in this agent's catalogue (version {})",
            catalog.version()
        ));
    };
    if !runbook.applies_to(platform) {
        return Plan::Refused(format!(
            "runbook {id} is not for {platform}, the platform this agent runs on"
        ));
    }
    let action = RemediationAction::try_from(request.action).ok();
    let (has_script, what) = match action {
        Some(RemediationAction::Remediate) => (runbook.remediate.is_some(), "remediation"),
        Some(RemediationAction::Rollback) => (runbook.rollback.is_some(), "rollback"),
        _ => {
            return Plan::Refused(format!(
                "action {} is not one this agent knows",
                request.action
            ));
        }
    };
    if !has_script {
        return Plan::Refused(format!("runbook {id} has no {what}"));
    }
    let mut params = Params::new();
    for (name, value) in &request.parameters {
        let value = match &value.value {
            Some(param::Value::StringValue(text)) => ParamValue::Text(text.clone()),
            Some(param::Value::IntValue(number)) => ParamValue::Integer(*number),
            Some(param::Value::BoolValue(flag)) => ParamValue::Boolean(*flag),
            None => return Plan::Refused(format!("parameter `{name}` has no value")),
        };
        params.insert(name.clone(), value);
    }
    if let Err(err) = resolve_params(&runbook.params, &params) {
        return Plan::Refused(format!("runbook {id}: {err}"));
    }
    let runbook = Box::new(runbook.clone());
    match action {
        Some(RemediationAction::Rollback) => Plan::Rollback { runbook, params },
        _ => Plan::Remediate { runbook, params },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use agent_proto::v1::Param;
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(
        runbook_id: &str,
        action: RemediationAction,
        params: &[(&str, Param)],
        expect: Expect,
    ) {
        let catalog = crate::embedded_catalog().unwrap();
        let request = RunRemediation {
            request_id: "r-1".to_owned(),
            runbook_id: runbook_id.to_owned(),
            action: action.into(),
            parameters: params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        };
        let shown = match plan(&catalog, model::Platform::Linux, &request) {
            Plan::Refused(why) => format!("refused: {why}").replace(catalog.version(), "V"),
            Plan::Remediate { runbook, params } => format!("remediate {} {params:?}", runbook.id),
            Plan::Rollback { runbook, params } => format!("rollback {} {params:?}", runbook.id),
        };
        expect.assert_eq(&shown);
    }

    fn int(value: i64) -> Param {
        Param {
            value: Some(param::Value::IntValue(value)),
        }
    }

    fn text(value: &str) -> Param {
        Param {
            value: Some(param::Value::StringValue(value.to_owned())),
        }
    }

    #[test]
    fn only_this_catalogues_runbooks_with_fitting_parameters_are_accepted() {
        check(
            "LIN-SSH-001",
            RemediationAction::Remediate,
            &[],
            expect!["remediate LIN-SSH-001 {}"],
        );
        check(
            "LIN-SSH-001",
            RemediationAction::Rollback,
            &[],
            expect!["rollback LIN-SSH-001 {}"],
        );
        check(
            "LIN-NOPE-001",
            RemediationAction::Remediate,
            &[],
            expect!["refused: runbook LIN-NOPE-001 is not in this agent's catalogue (version V)"],
        );
        check(
            "WIN-FW-001",
            RemediationAction::Remediate,
            &[],
            // A Linux agent carries only the Linux runbooks (build.rs).
            expect!["refused: runbook WIN-FW-001 is not in this agent's catalogue (version V)"],
        );
        check(
            "LIN-DISK-001",
            RemediationAction::Remediate,
            &[],
            expect!["refused: runbook LIN-DISK-001 has no remediation"],
        );
        check(
            "LIN-SSH-001",
            RemediationAction::Unspecified,
            &[],
            expect!["refused: action 0 is not one this agent knows"],
        );
        check(
            "LIN-SSH-001",
            RemediationAction::Remediate,
            &[("script", text("rm -rf /"))],
            expect!["refused: runbook LIN-SSH-001: unknown parameter `script`"],
        );
    }

    #[test]
    fn parameters_are_checked_against_their_declarations() {
        let catalog = crate::embedded_catalog().unwrap();
        let (runbook, spec) = catalog
            .for_platform(model::Platform::Linux)
            .filter(|runbook| runbook.remediate.is_some())
            .find_map(|runbook| {
                runbook
                    .params
                    .iter()
                    .find(|spec| matches!(spec.ty, model::ParamType::Integer { max: Some(_), .. }))
                    .map(|spec| (runbook, spec))
            })
            .expect("a Linux runbook with a bounded integer parameter");
        let model::ParamType::Integer { max: Some(max), .. } = spec.ty else {
            unreachable!("matched above");
        };
        let request = |value: Param| RunRemediation {
            request_id: "r-2".to_owned(),
            runbook_id: runbook.id.clone(),
            action: RemediationAction::Remediate.into(),
            parameters: [(spec.name.clone(), value)].into_iter().collect(),
        };
        let linux = model::Platform::Linux;
        assert!(matches!(
            plan(&catalog, linux, &request(int(max))),
            Plan::Remediate { .. }
        ));
        let Plan::Refused(why) = plan(&catalog, linux, &request(int(max + 1))) else {
            panic!("an out-of-bounds value was accepted");
        };
        assert!(why.contains(&format!("above the maximum {max}")), "{why}");
        let Plan::Refused(why) = plan(&catalog, linux, &request(text("90; reboot"))) else {
            panic!("a string for an integer was accepted");
        };
        assert!(why.contains("must be an integer, got a string"), "{why}");
    }
}
