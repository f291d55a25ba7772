//! When to notify: severity routing, de-duplication of an open problem, reminders past the
//! acknowledgement SLA, and retry back-off. Pure: every decision is a function of its inputs.

use std::time::Duration;

use model::Severity;

/// The site's notification rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPolicy {
    /// Remind when a notification is not acknowledged within this many seconds, per severity
    /// (`None`: never remind).
    pub remind_after_secs: [Option<i64>; 4],
    /// At most this many reminders per open problem.
    pub max_reminders: u32,
    /// Attempts per delivery (first try included).
    pub max_attempts: u32,
    /// First retry delay; doubles each time up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// What was already sent for one open problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentState {
    /// Unix seconds of the last notification or reminder.
    pub last_sent: i64,
    pub reminders: u32,
    pub acknowledged: bool,
}

/// What to do about an escalation now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyDecision {
    /// First notification for this problem.
    Send,
    /// Already notified and not yet due for a reminder.
    Suppress,
    /// Notified, not acknowledged, past the SLA: send a reminder.
    Remind,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            // low, medium, high, critical
            remind_after_secs: [None, Some(24 * 3600), Some(4 * 3600), Some(3600)],
            max_reminders: 3,
            max_attempts: 5,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl NotifyPolicy {
    /// Decides for one problem (`state` is `None` when nothing was sent yet).
    pub fn decide(
        &self,
        severity: Severity,
        state: Option<&SentState>,
        now: i64,
    ) -> NotifyDecision {
        let Some(state) = state else {
            return NotifyDecision::Send;
        };
        if state.acknowledged || state.reminders >= self.max_reminders {
            return NotifyDecision::Suppress;
        }
        match self.remind_after_secs[severity_index(severity)] {
            Some(after) if now - state.last_sent >= after => NotifyDecision::Remind,
            _ => NotifyDecision::Suppress,
        }
    }

    /// The delay before retry number `retry` (1-based), or `None` when no attempts are left.
    /// A server's `Retry-After` wins when it asks for longer (capped at `max_backoff`).
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_attempts {
            return None;
        }
        let doubling = self
            .first_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let delay = doubling.max(retry_after.unwrap_or_default());
        Some(delay.min(self.max_backoff))
    }
}

/// Whether a channel configured for `min` takes a notification of `severity`.
pub fn routes(min: Severity, severity: Severity) -> bool {
    severity >= min
}

fn severity_index(severity: Severity) -> usize {
    match severity {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_problem_is_sent_once_then_reminded_past_its_sla_until_acknowledged() {
        let policy = NotifyPolicy::default();
        let now = 1_000_000;
        assert_eq!(
            policy.decide(Severity::High, None, now),
            NotifyDecision::Send
        );
        let sent = SentState {
            last_sent: now,
            reminders: 0,
            acknowledged: false,
        };
        assert_eq!(
            policy.decide(Severity::High, Some(&sent), now + 60),
            NotifyDecision::Suppress
        );
        assert_eq!(
            policy.decide(Severity::High, Some(&sent), now + 4 * 3600),
            NotifyDecision::Remind
        );
        assert_eq!(
            policy.decide(Severity::Critical, Some(&sent), now + 3600),
            NotifyDecision::Remind
        );
        assert_eq!(
            policy.decide(Severity::Low, Some(&sent), now + 365 * 86400),
            NotifyDecision::Suppress
        );
        let acked = SentState {
            acknowledged: true,
            ..sent
        };
        assert_eq!(
            policy.decide(Severity::Critical, Some(&acked), now + 86400),
            NotifyDecision::Suppress
        );
        let tired = SentState {
            reminders: 3,
            ..sent
        };
        assert_eq!(
            policy.decide(Severity::Critical, Some(&tired), now + 86400),
            NotifyDecision::Suppress
        );
    }

    #[test]
    fn backoff_doubles_honours_retry_after_and_stops() {
        let policy = NotifyPolicy::default();
        let secs = |r, after: Option<u64>| {
            policy
                .backoff(r, after.map(Duration::from_secs))
                .map(|d| d.as_secs())
        };
        assert_eq!(secs(1, None), Some(2));
        assert_eq!(secs(2, None), Some(4));
        assert_eq!(secs(4, None), Some(16));
        assert_eq!(secs(5, None), None);
        assert_eq!(secs(1, Some(30)), Some(30));
        assert_eq!(secs(1, Some(100_000)), Some(300));
    }

    #[test]
    fn routing_by_minimum_severity() {
        assert!(routes(Severity::High, Severity::Critical));
        assert!(routes(Severity::High, Severity::High));
        assert!(!routes(Severity::High, Severity::Medium));
    }
}
