//! When each configured check runs next: every check runs once soon after the agent starts or
//! the check first appears in the configuration (after a random delay of up to its jitter), then
//! every `interval` plus a fresh random delay of up to its jitter, so a practice's agents spread
//! out. A new configuration keeps the rhythm of checks whose interval did not change.
//!
//! Pure: time and randomness are arguments.

use std::time::{Duration, Instant};

use agent_proto::v1::CheckSchedule;

/// The plan of every configured check.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    checks: Vec<Planned>,
}

#[derive(Debug, Clone)]
struct Planned {
    check_id: String,
    interval: Duration,
    jitter: Duration,
    next: Instant,
    last_run: Option<Instant>,
}

impl Schedule {
    /// Adopts `checks` at `now`. A check planned before with the same interval keeps its next
    /// run; one whose interval changed runs an interval (plus jitter) after its last run; a new
    /// one runs within its jitter from now; one no longer listed is forgotten. A check listed
    /// twice is planned once. `random(max)` returns a delay from zero to `max`.
    pub(crate) fn configure(
        &mut self,
        checks: &[CheckSchedule],
        now: Instant,
        random: &mut impl FnMut(Duration) -> Duration,
    ) {
        let mut planned: Vec<Planned> = Vec::with_capacity(checks.len());
        for check in checks {
            if planned.iter().any(|p| p.check_id == check.check_id) {
                continue;
            }
            let interval = Duration::from_secs(u64::from(check.interval_seconds));
            let jitter = Duration::from_secs(u64::from(check.jitter_seconds));
            let before = self.checks.iter().find(|p| p.check_id == check.check_id);
            let (next, last_run) = match before {
                Some(before) if before.interval == interval => (before.next, before.last_run),
                Some(before) => match before.last_run {
                    Some(last) => ((last + interval + random(jitter)).max(now), Some(last)),
                    None => (before.next, None),
                },
                None => (now + random(jitter), None),
            };
            planned.push(Planned {
                check_id: check.check_id.clone(),
                interval,
                jitter,
                next,
                last_run,
            });
        }
        self.checks = planned;
    }

    /// When the next check is due (`None`: nothing is configured).
    #[must_use]
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.checks.iter().map(|p| p.next).min()
    }

    /// The checks due at `now`, the earliest first.
    #[must_use]
    pub(crate) fn due(&self, now: Instant) -> Vec<String> {
        let mut due: Vec<&Planned> = self.checks.iter().filter(|p| p.next <= now).collect();
        due.sort_by_key(|p| p.next);
        due.into_iter().map(|p| p.check_id.clone()).collect()
    }

    /// Whether `check_id` is configured.
    #[must_use]
    pub(crate) fn contains(&self, check_id: &str) -> bool {
        self.checks.iter().any(|p| p.check_id == check_id)
    }

    /// Every configured check, in configuration order.
    #[must_use]
    pub(crate) fn check_ids(&self) -> Vec<String> {
        self.checks.iter().map(|p| p.check_id.clone()).collect()
    }

    /// Records that `check_id` ran at `now` and plans its next run.
    pub(crate) fn ran(
        &mut self,
        check_id: &str,
        now: Instant,
        random: &mut impl FnMut(Duration) -> Duration,
    ) {
        if let Some(planned) = self.checks.iter_mut().find(|p| p.check_id == check_id) {
            planned.last_run = Some(now);
            planned.next = now + planned.interval + random(planned.jitter);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use expect_test::expect;

    use super::*;

    fn check(check_id: &str, interval_seconds: u32, jitter_seconds: u32) -> CheckSchedule {
        CheckSchedule {
            check_id: check_id.to_owned(),
            interval_seconds,
            jitter_seconds,
        }
    }

    /// Runs the schedule minute by minute for `minutes`, each due check running at once,
    /// and logs the runs.
    fn simulate(
        schedule: &mut Schedule,
        start: Instant,
        from_minute: u64,
        minutes: u64,
        random: &mut impl FnMut(Duration) -> Duration,
        log: &mut String,
    ) {
        for minute in from_minute..from_minute + minutes {
            let now = start + Duration::from_secs(minute * 60);
            for check_id in schedule.due(now) {
                let _ = writeln!(log, "minute {minute:02}: {check_id}");
                schedule.ran(&check_id, now, random);
            }
        }
    }

    #[test]
    fn checks_run_at_start_then_every_interval_plus_jitter() {
        let start = Instant::now();
        // A deterministic "random": the whole jitter, then nothing, alternately.
        let mut flip = false;
        let mut random = |max: Duration| {
            flip = !flip;
            if flip { max } else { Duration::ZERO }
        };
        let mut schedule = Schedule::default();
        schedule.configure(
            &[
                check("LIN-SSH-001", 600, 120),
                check("LIN-FW-001", 3600, 0),
                check("LIN-SSH-001", 60, 0),
            ],
            start,
            &mut random,
        );
        assert_eq!(schedule.check_ids(), ["LIN-SSH-001", "LIN-FW-001"]);
        let mut log = String::new();
        simulate(&mut schedule, start, 0, 40, &mut random, &mut log);
        let _ = writeln!(log, "new configuration at minute 40");
        schedule.configure(
            &[
                check("LIN-SSH-001", 300, 0),
                check("LIN-FW-001", 3600, 0),
                check("LIN-NTP-001", 60, 60),
            ],
            start + Duration::from_secs(40 * 60),
            &mut random,
        );
        simulate(&mut schedule, start, 40, 30, &mut random, &mut log);
        expect![[r#"
            minute 00: LIN-FW-001
            minute 02: LIN-SSH-001
            minute 12: LIN-SSH-001
            minute 24: LIN-SSH-001
            minute 34: LIN-SSH-001
            new configuration at minute 40
            minute 40: LIN-SSH-001
            minute 41: LIN-NTP-001
            minute 43: LIN-NTP-001
            minute 44: LIN-NTP-001
            minute 45: LIN-SSH-001
            minute 46: LIN-NTP-001
            minute 48: LIN-NTP-001
            minute 49: LIN-NTP-001
            minute 50: LIN-SSH-001
            minute 51: LIN-NTP-001
            minute 53: LIN-NTP-001
            minute 54: LIN-NTP-001
            minute 55: LIN-SSH-001
            minute 56: LIN-NTP-001
            minute 58: LIN-NTP-001
            minute 59: LIN-NTP-001
            minute 60: LIN-SSH-001
            minute 60: LIN-FW-001
            minute 61: LIN-NTP-001
            minute 62: LIN-NTP-001
            minute 64: LIN-NTP-001
            minute 65: LIN-SSH-001
            minute 65: LIN-NTP-001
            minute 66: LIN-NTP-001
            minute 68: LIN-NTP-001
            minute 69: LIN-NTP-001
        "#]]
        .assert_eq(&log);
        schedule.configure(&[], start, &mut random);
        assert_eq!(schedule.next_due(), None);
    }
}
