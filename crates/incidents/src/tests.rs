//! Lifecycle scenarios as data: each step is an event at a time, and the effects it must have.

use super::*;

const T: &str = "win1";
const C: &str = "WIN-FW-001";

fn failed() -> Event {
    Event::Failed {
        severity: Severity::High,
    }
}

/// Runs `(time, event, expected effects)` steps on one host+check and returns the ledger.
fn run(steps: Vec<(i64, Event, Vec<Effect>)>) -> Ledger {
    let policy = IncidentPolicy::default();
    let mut ledger = Ledger::default();
    for (idx, (at, event, want)) in steps.into_iter().enumerate() {
        let got = ledger.apply(T, C, event.clone(), at, &policy);
        assert_eq!(got, want, "step {idx}: {event:?}");
    }
    ledger
}

fn changed(id: u64, from: Phase, to: Phase) -> Vec<Effect> {
    vec![Effect::PhaseChanged { id, from, to }]
}

#[test]
fn a_fixed_problem_opens_heals_and_resolves_once() {
    let ledger = run(vec![
        (0, failed(), vec![Effect::Opened { id: 1 }]),
        (60, failed(), vec![]),
        (
            70,
            Event::HealStarted,
            changed(1, Phase::Open, Phase::Healing),
        ),
        (
            80,
            Event::HealFixed,
            changed(1, Phase::Healing, Phase::Resolved),
        ),
        (90, Event::Passed, vec![]),
    ]);
    let incident = ledger.get(T, C).unwrap_or_else(|| unreachable!());
    assert_eq!(incident.phase, Phase::Resolved);
    assert_eq!(
        incident.occurrences, 2,
        "the repeat failure is de-duplicated"
    );
    assert!(ledger.open().is_empty());
}

#[test]
fn a_fix_that_does_not_hold_is_escalated_and_waits_for_a_person() {
    let ledger = run(vec![
        (0, failed(), vec![Effect::Opened { id: 1 }]),
        (
            10,
            Event::HealStarted,
            changed(1, Phase::Open, Phase::Healing),
        ),
        (
            20,
            Event::Escalated {
                reason: "did not verify".into(),
            },
            changed(1, Phase::Healing, Phase::Escalated),
        ),
        (
            30,
            Event::HealStarted,
            vec![Effect::Ignored {
                reason: "win1/WIN-FW-001: cannot go from escalated to healing".into(),
            }],
        ),
        (
            40,
            Event::Acknowledged {
                by: "tech@msp".into(),
            },
            vec![],
        ),
        (
            50,
            Event::Closed {
                by: "tech@msp".into(),
            },
            changed(1, Phase::Escalated, Phase::Closed),
        ),
    ]);
    let incident = ledger.get(T, C).unwrap_or_else(|| unreachable!());
    assert!(incident.acknowledged);
    assert_eq!(
        incident.transitions.last().map(|t| t.why.as_str()),
        Some("closed by tech@msp")
    );
}

#[test]
fn a_problem_that_keeps_returning_is_flapping() {
    let mut steps = Vec::new();
    let mut id = 0;
    for round in 0..4 {
        id += 1;
        let at = round * 600;
        let opened = if round == 0 {
            Effect::Opened { id }
        } else {
            Effect::Reopened { id }
        };
        let mut effects = vec![opened];
        if round == 3 {
            effects.push(Effect::Flapping { id, returns: 3 });
        }
        steps.push((at, failed(), effects));
        steps.push((
            at + 300,
            Event::Passed,
            changed(id, Phase::Open, Phase::Resolved),
        ));
    }
    run(steps);
}

#[test]
fn returns_outside_the_window_are_not_flapping_and_quiet_incidents_close() {
    let policy = IncidentPolicy::default();
    let mut ledger = Ledger::default();
    for round in 0..4 {
        let at = round * 2 * 86_400;
        let effects = ledger.apply(T, C, failed(), at, &policy);
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Flapping { .. })),
            "{effects:?}"
        );
        ledger.apply(T, C, Event::Passed, at + 60, &policy);
    }
    assert_eq!(ledger.tick(6 * 86_400 + 60 + 86_399, &policy), vec![]);
    assert_eq!(
        ledger.tick(6 * 86_400 + 60 + 86_400, &policy),
        changed(4, Phase::Resolved, Phase::Closed)
    );
}

#[test]
fn hosts_and_checks_are_separate_incidents() {
    let policy = IncidentPolicy::default();
    let mut ledger = Ledger::default();
    ledger.apply("win1", "A", failed(), 0, &policy);
    ledger.apply("win2", "A", failed(), 5, &policy);
    ledger.apply(
        "win1",
        "B",
        Event::Failed {
            severity: Severity::Critical,
        },
        10,
        &policy,
    );
    ledger.apply(
        "win1",
        "A",
        Event::Failed {
            severity: Severity::Critical,
        },
        20,
        &policy,
    );
    let open: Vec<(&str, &str, Severity)> = ledger
        .open()
        .iter()
        .map(|i| (i.target.as_str(), i.check.as_str(), i.severity))
        .collect();
    assert_eq!(
        open,
        [
            ("win1", "A", Severity::Critical),
            ("win2", "A", Severity::High),
            ("win1", "B", Severity::Critical)
        ]
    );
    assert_eq!(
        ledger.apply("win3", "A", Event::HealFixed, 30, &policy),
        vec![Effect::Ignored {
            reason: "win3/A: no incident".into()
        }]
    );
}

#[test]
fn maintenance_windows_hold_only_their_targets_and_times() {
    let windows = vec![
        MaintenanceWindow {
            start: 100,
            end: 200,
            targets: vec!["win1".into()],
            reason: "patch night".into(),
        },
        MaintenanceWindow {
            start: 500,
            end: 600,
            targets: vec![],
            reason: "site move".into(),
        },
    ];
    assert_eq!(
        maintenance_for(&windows, "win1", 150).map(|w| w.reason.as_str()),
        Some("patch night")
    );
    assert!(maintenance_for(&windows, "win2", 150).is_none());
    assert!(
        maintenance_for(&windows, "win1", 200).is_none(),
        "end is exclusive"
    );
    assert_eq!(
        maintenance_for(&windows, "anything", 500).map(|w| w.reason.as_str()),
        Some("site move")
    );
}

#[test]
fn a_restored_ledger_continues_where_the_saved_one_stopped() {
    let policy = IncidentPolicy::default();
    let mut ledger = Ledger::default();
    ledger.apply(
        "h1",
        "C1",
        Event::Failed {
            severity: Severity::High,
        },
        10,
        &policy,
    );
    ledger.apply(
        "h1",
        "C1",
        Event::Escalated {
            reason: "no rule".into(),
        },
        11,
        &policy,
    );
    ledger.apply(
        "h2",
        "C2",
        Event::Failed {
            severity: Severity::Low,
        },
        12,
        &policy,
    );
    ledger.apply("h2", "C2", Event::Passed, 13, &policy);
    let text = serde_json::to_string(&ledger.snapshot()).unwrap();
    let mut restored = Ledger::restore(serde_json::from_str(&text).unwrap());
    assert_eq!(restored.snapshot(), ledger.snapshot());
    let open = restored.open();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].target.as_str(), open[0].phase),
        ("h1", Phase::Escalated)
    );
    // The same problem seen again after the restart is not a new incident...
    assert!(
        restored
            .apply(
                "h1",
                "C1",
                Event::Failed {
                    severity: Severity::High
                },
                20,
                &policy
            )
            .is_empty()
    );
    // ...and a new one gets the next id, not a reused one.
    let effects = restored.apply(
        "h3",
        "C3",
        Event::Failed {
            severity: Severity::Medium,
        },
        21,
        &policy,
    );
    assert_eq!(effects, vec![Effect::Opened { id: 3 }]);
}
