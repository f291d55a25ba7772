//! Incidents: one open problem per host and check, its lifecycle (open → healing → resolved or
//! escalated → closed), flap detection, and maintenance windows (the daemon asks
//! [`maintenance_for`] before each heal, which feeds `rules`' `in_maintenance`).
//!
//! Pure and synchronous: every function takes the time it should use, so the daemon's behaviour
//! is reproducible from its inputs. The daemon feeds scan and heal outcomes in as [`Event`]s and
//! acts on the returned [`Effect`]s (notify, record evidence).

use std::collections::BTreeMap;
use std::fmt;

use model::Severity;

/// Where an incident is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A check failed; nothing has been tried yet.
    Open,
    /// L1 is remediating.
    Healing,
    /// Handed to a person (no rule, a fix that did not hold, or flapping).
    Escalated,
    /// The check passes again.
    Resolved,
    /// A person closed it (resolved incidents close themselves after a quiet period).
    Closed,
}

/// One problem on one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub id: u64,
    pub target: String,
    pub check: String,
    #[serde(with = "severity_name")]
    pub severity: Severity,
    pub phase: Phase,
    /// Unix seconds.
    pub opened_at: i64,
    pub updated_at: i64,
    /// Failed scans seen while it was open (the first included).
    pub occurrences: u32,
    /// Resolved and failed again `flap_count` times within the flap window.
    pub flapping: bool,
    pub acknowledged: bool,
    pub transitions: Vec<Transition>,
}

/// One phase change, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    pub at: i64,
    pub from: Phase,
    pub to: Phase,
    pub why: String,
}

/// Something that happened to a host and check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A scan found the check failing.
    Failed { severity: Severity },
    /// A scan found the check passing.
    Passed,
    /// L1 started a remediation.
    HealStarted,
    /// The remediation verified.
    HealFixed,
    /// The remediation failed or did not verify, or no rule covers it: a person must act.
    Escalated { reason: String },
    /// A person acknowledged the incident (stops reminders).
    Acknowledged { by: String },
    /// A person closed the incident.
    Closed { by: String },
}

/// What the caller should do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Opened {
        id: u64,
    },
    /// The same problem again after it had been resolved.
    Reopened {
        id: u64,
    },
    /// The problem keeps coming back: escalate instead of healing again.
    Flapping {
        id: u64,
        returns: u32,
    },
    PhaseChanged {
        id: u64,
        from: Phase,
        to: Phase,
    },
    /// The event did not apply (e.g. `HealFixed` with no open incident); the reason says why.
    Ignored {
        reason: String,
    },
}

/// Lifecycle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentPolicy {
    /// This many returns after resolution within `flap_window_secs` make an incident flapping.
    pub flap_count: u32,
    pub flap_window_secs: i64,
    /// A resolved incident closes by itself after this long without failing again.
    pub close_after_secs: i64,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            flap_count: 3,
            flap_window_secs: 24 * 3600,
            close_after_secs: 24 * 3600,
        }
    }
}

/// Every incident of a site, keyed by host and check, so a problem is never opened twice.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    incidents: BTreeMap<(String, String), Incident>,
    /// When each host+check was last resolved, for flap detection.
    resolutions: BTreeMap<(String, String), Vec<i64>>,
    next_id: u64,
}

impl Ledger {
    /// Applies one event for `target`/`check` at `now`.
    pub fn apply(
        &mut self,
        target: &str,
        check: &str,
        event: Event,
        now: i64,
        policy: &IncidentPolicy,
    ) -> Vec<Effect> {
        let key = (target.to_owned(), check.to_owned());
        let live = self
            .incidents
            .get(&key)
            .is_some_and(|i| !matches!(i.phase, Phase::Resolved | Phase::Closed));
        match event {
            // De-duplication: the same problem while it is open only counts as another occurrence.
            Event::Failed { severity } if live => {
                if let Some(incident) = self.incidents.get_mut(&key) {
                    incident.occurrences += 1;
                    incident.updated_at = now;
                    incident.severity = incident.severity.max(severity);
                }
                Vec::new()
            }
            Event::Failed { severity } => {
                let returned = self.incidents.get(&key).map(|i| i.id);
                let window_start = now - policy.flap_window_secs;
                let returns = self.resolutions.get(&key).map_or(0, |times| {
                    times.iter().filter(|&&t| t >= window_start).count()
                }) as u32;
                self.next_id += 1;
                let id = self.next_id;
                let flapping = returns >= policy.flap_count;
                self.incidents.insert(
                    key,
                    Incident {
                        id,
                        target: target.to_owned(),
                        check: check.to_owned(),
                        severity,
                        phase: Phase::Open,
                        opened_at: now,
                        updated_at: now,
                        occurrences: 1,
                        flapping,
                        acknowledged: false,
                        transitions: Vec::new(),
                    },
                );
                let mut effects = vec![if returned.is_some() {
                    Effect::Reopened { id }
                } else {
                    Effect::Opened { id }
                }];
                if flapping {
                    effects.push(Effect::Flapping { id, returns });
                }
                effects
            }
            Event::Passed if live => {
                self.resolutions.entry(key.clone()).or_default().push(now);
                self.transition(&key, Phase::Resolved, now, "the check passes again")
            }
            Event::Passed => Vec::new(),
            Event::HealStarted => self.transition_from(
                &key,
                &[Phase::Open],
                Phase::Healing,
                now,
                "L1 remediation started",
            ),
            Event::HealFixed => {
                let effects = self.transition_from(
                    &key,
                    &[Phase::Healing],
                    Phase::Resolved,
                    now,
                    "L1 fixed it and the check verified",
                );
                if effects
                    .iter()
                    .any(|e| matches!(e, Effect::PhaseChanged { .. }))
                {
                    self.resolutions.entry(key).or_default().push(now);
                }
                effects
            }
            Event::Escalated { reason } => self.transition_from(
                &key,
                &[Phase::Open, Phase::Healing],
                Phase::Escalated,
                now,
                &reason,
            ),
            Event::Acknowledged { by } => match self.incidents.get_mut(&key) {
                Some(incident) if live => {
                    incident.acknowledged = true;
                    incident.updated_at = now;
                    incident.transitions.push(Transition {
                        at: now,
                        from: incident.phase,
                        to: incident.phase,
                        why: format!("acknowledged by {by}"),
                    });
                    Vec::new()
                }
                _ => vec![ignored(target, check, "nothing open to acknowledge")],
            },
            Event::Closed { by } => self.transition_from(
                &key,
                &[Phase::Open, Phase::Escalated, Phase::Resolved],
                Phase::Closed,
                now,
                &format!("closed by {by}"),
            ),
        }
    }

    /// Closes resolved incidents that stayed quiet for `close_after_secs`; returns their effects.
    pub fn tick(&mut self, now: i64, policy: &IncidentPolicy) -> Vec<Effect> {
        let due: Vec<(String, String)> = self
            .incidents
            .iter()
            .filter(|(_, i)| {
                i.phase == Phase::Resolved && now - i.updated_at >= policy.close_after_secs
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.iter()
            .flat_map(|key| self.transition(key, Phase::Closed, now, "resolved and quiet"))
            .collect()
    }

    /// Everything the ledger knows, for saving across restarts.
    pub fn snapshot(&self) -> LedgerSnapshot {
        LedgerSnapshot {
            incidents: self.incidents.values().cloned().collect(),
            resolutions: self
                .resolutions
                .iter()
                .map(|((target, check), times)| Resolutions {
                    target: target.clone(),
                    check: check.clone(),
                    times: times.clone(),
                })
                .collect(),
            next_id: self.next_id,
        }
    }

    /// The ledger a [`snapshot`](Ledger::snapshot) was taken of.
    pub fn restore(snapshot: LedgerSnapshot) -> Ledger {
        let next_id = snapshot
            .incidents
            .iter()
            .map(|i| i.id)
            .max()
            .unwrap_or(0)
            .max(snapshot.next_id);
        Ledger {
            incidents: snapshot
                .incidents
                .into_iter()
                .map(|i| ((i.target.clone(), i.check.clone()), i))
                .collect(),
            resolutions: snapshot
                .resolutions
                .into_iter()
                .map(|r| ((r.target, r.check), r.times))
                .collect(),
            next_id,
        }
    }

    /// Every incident, in whatever phase, by id.
    pub fn all(&self) -> Vec<&Incident> {
        let mut all: Vec<&Incident> = self.incidents.values().collect();
        all.sort_by_key(|i| i.id);
        all
    }

    /// Drops closed incidents last changed before `before` (their history lives in the evidence).
    pub fn forget_closed_before(&mut self, before: i64) {
        self.incidents
            .retain(|_, i| !(i.phase == Phase::Closed && i.updated_at < before));
    }

    /// The incident of a host and check, in whatever phase.
    pub fn get(&self, target: &str, check: &str) -> Option<&Incident> {
        self.incidents.get(&(target.to_owned(), check.to_owned()))
    }

    /// Incidents that are not resolved or closed, oldest first.
    pub fn open(&self) -> Vec<&Incident> {
        let mut open: Vec<&Incident> = self
            .incidents
            .values()
            .filter(|i| !matches!(i.phase, Phase::Resolved | Phase::Closed))
            .collect();
        open.sort_by_key(|i| (i.opened_at, i.id));
        open
    }

    fn transition_from(
        &mut self,
        key: &(String, String),
        from: &[Phase],
        to: Phase,
        now: i64,
        why: &str,
    ) -> Vec<Effect> {
        match self.incidents.get(key) {
            Some(incident) if from.contains(&incident.phase) => self.transition(key, to, now, why),
            Some(incident) => vec![ignored(
                &key.0,
                &key.1,
                &format!("cannot go from {} to {to}", incident.phase),
            )],
            None => vec![ignored(&key.0, &key.1, "no incident")],
        }
    }

    fn transition(
        &mut self,
        key: &(String, String),
        to: Phase,
        now: i64,
        why: &str,
    ) -> Vec<Effect> {
        let Some(incident) = self.incidents.get_mut(key) else {
            return Vec::new();
        };
        let from = incident.phase;
        incident.phase = to;
        incident.updated_at = now;
        incident.transitions.push(Transition {
            at: now,
            from,
            to,
            why: why.to_owned(),
        });
        vec![Effect::PhaseChanged {
            id: incident.id,
            from,
            to,
        }]
    }
}

fn ignored(target: &str, check: &str, why: &str) -> Effect {
    Effect::Ignored {
        reason: format!("{target}/{check}: {why}"),
    }
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Healing => "healing",
            Phase::Escalated => "escalated",
            Phase::Resolved => "resolved",
            Phase::Closed => "closed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A period in which remediation waits (detection never does), for some or all targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Unix seconds, inclusive.
    pub start: i64,
    /// Unix seconds, exclusive.
    pub end: i64,
    /// Empty: every target.
    pub targets: Vec<String>,
    pub reason: String,
}

impl MaintenanceWindow {
    /// Whether remediation on `target` waits at `now`.
    pub fn covers(&self, target: &str, now: i64) -> bool {
        (self.start..self.end).contains(&now)
            && (self.targets.is_empty() || self.targets.iter().any(|t| t == target))
    }
}

/// The window that holds remediation on `target` at `now`, if any.
pub fn maintenance_for<'a>(
    windows: &'a [MaintenanceWindow],
    target: &str,
    now: i64,
) -> Option<&'a MaintenanceWindow> {
    windows.iter().find(|w| w.covers(target, now))
}

/// A saved [`Ledger`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerSnapshot {
    pub incidents: Vec<Incident>,
    pub resolutions: Vec<Resolutions>,
    pub next_id: u64,
}

/// When one host and check was resolved (for flap detection).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolutions {
    pub target: String,
    pub check: String,
    pub times: Vec<i64>,
}

/// Severities by name (`low` … `critical`) in saved ledgers.
mod severity_name {
    use model::Severity;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(severity: &Severity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(severity.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
