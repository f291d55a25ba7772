//! Checks the shipped L1 rules against the shipped catalogue: they load, and every Windows runbook
//! has exactly one rule that heals what may heal and escalates what must not.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use model::Platform;
use rules::Action;

#[test]
fn shipped_rules_cover_every_windows_runbook() {
    let catalog = catalog::embedded().unwrap();
    let rule_set = rules::embedded(catalog.runbooks()).unwrap();
    let windows: Vec<&model::Runbook> = catalog
        .runbooks()
        .iter()
        .filter(|rb| {
            rb.applies_to(Platform::WindowsServer) || rb.applies_to(Platform::WindowsWorkstation)
        })
        .collect();
    assert_eq!(windows.len(), 36);
    let (mut n_heal, mut n_escalate) = (0, 0);
    for runbook in windows {
        let matching: Vec<&rules::Rule> = rule_set
            .rules()
            .iter()
            .filter(|rule| rule.check == runbook.id)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{} has {} rules",
            runbook.id,
            matching.len()
        );
        match &matching[0].action {
            Action::Escalate => {
                assert!(
                    !runbook.auto_heal,
                    "{} auto-heals but escalates",
                    runbook.id
                );
                n_escalate += 1;
            }
            Action::Remediate { runbook: target } => {
                assert_eq!(
                    target, &runbook.id,
                    "rule of {} runs another runbook",
                    runbook.id
                );
                assert!(
                    runbook.remediate.is_some(),
                    "{} has no fix to run",
                    runbook.id
                );
                n_heal += 1;
            }
        }
    }
    assert_eq!((n_heal, n_escalate), (21, 15));
}
