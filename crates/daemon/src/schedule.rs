//! When each cycle runs: which are enabled by the configuration, their intervals, and jitter.
//! Pure: the random draw and the clock are parameters.

use api::CycleKind;

/// Whether the configuration calls for this cycle at all.
pub(crate) fn enabled(config: &config::Config, kind: CycleKind) -> bool {
    match kind {
        CycleKind::ServerScan => !config.targets.is_empty(),
        CycleKind::WorkstationScan => config.workstations.is_some() && config.directory.is_some(),
        CycleKind::Discovery => config.directory.is_some(),
        CycleKind::CloudScan => !config.cloud.is_empty(),
        CycleKind::RmmImport => !config.rmm.is_empty(),
        CycleKind::Anchor => !config.evidence.calendars.is_empty(),
        CycleKind::Checkpoint => true,
    }
}

/// The configured interval of a cycle, in seconds.
pub(crate) fn interval(daemon: &config::DaemonConfig, kind: CycleKind) -> u64 {
    match kind {
        CycleKind::ServerScan => daemon.server_scan_secs,
        CycleKind::WorkstationScan => daemon.workstation_scan_secs,
        CycleKind::Discovery => daemon.discovery_secs,
        CycleKind::CloudScan => daemon.cloud_scan_secs,
        CycleKind::RmmImport => daemon.rmm_import_secs,
        CycleKind::Anchor => daemon.anchor_secs,
        CycleKind::Checkpoint => daemon.checkpoint_secs,
    }
}

/// `secs` shifted by up to ±`percent` %, using `draw` ∈ [0, 1). Never below 1 s.
pub(crate) fn jittered(secs: u64, percent: u8, draw: f64) -> u64 {
    let spread = secs as f64 * f64::from(percent) / 100.0;
    let shifted = secs as f64 + spread * (2.0 * draw.clamp(0.0, 1.0) - 1.0);
    (shifted.round() as u64).max(1)
}

/// When a cycle first runs after start: where its schedule left off if it ran recently,
/// else a few seconds after start (discovery first, so workstations have an inventory).
pub(crate) fn first_due(
    kind: CycleKind,
    last_started: Option<i64>,
    interval_secs: u64,
    now: i64,
) -> i64 {
    let soon = now
        + match kind {
            CycleKind::Discovery | CycleKind::ServerScan => 1,
            CycleKind::WorkstationScan | CycleKind::CloudScan => 3,
            // After discovery, so the first import reconciles with a fresh inventory.
            CycleKind::RmmImport => 5,
            CycleKind::Anchor | CycleKind::Checkpoint => interval_secs.min(60) as i64,
        };
    match last_started {
        Some(last) if last + interval_secs as i64 > now => {
            (last + interval_secs as i64).min(now + interval_secs as i64)
        }
        _ => soon,
    }
}

/// When the server scan runs next: sooner after drift, so a fix (or its absence) shows quickly.
pub(crate) fn next_server_scan(
    daemon: &config::DaemonConfig,
    found_drift: bool,
    now: i64,
    draw: f64,
) -> i64 {
    let base = if found_drift {
        daemon.drift_rescan_secs
    } else {
        daemon.server_scan_secs
    };
    now + jittered(base, daemon.jitter_percent, draw) as i64
}

/// The month whose packet is due at `now` (`YYYY-MM`): the previous one, unless its packet is
/// sealed already or the month ended before the log's first bundle (the appliance did not exist
/// then; an empty log has nothing to report either).
pub(crate) fn packet_due(
    now: time::OffsetDateTime,
    first_bundle_at: Option<time::OffsetDateTime>,
    sealed: &std::collections::BTreeSet<String>,
) -> Option<String> {
    let month_start = month_start(now);
    let first = first_bundle_at?;
    let period = ops::report::previous_month(now);
    (first < month_start && !sealed.contains(&period)).then_some(period)
}

/// Midnight (UTC) of the 1st of the month after the one `now` falls in: when the next packet is due.
pub(crate) fn next_month_start(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let start = month_start(now);
    // The 1st plus 32 days is always in the next month.
    month_start(start + time::Duration::days(32))
}

fn month_start(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.replace_date(now.date().replace_day(1).unwrap_or(now.date()))
        .replace_time(time::Time::MIDNIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_of_the_previous_month_is_due_once_from_the_1st() {
        use time::macros::datetime;
        let sealed = std::collections::BTreeSet::new();
        let first = Some(datetime!(2026-10-20 08:00 UTC));
        // On the 1st at midnight, and any day after while it is missing (the daemon was off).
        for now in [
            datetime!(2026-12-01 00:00 UTC),
            datetime!(2026-12-17 13:05 UTC),
            datetime!(2026-12-31 23:59:59 UTC),
        ] {
            assert_eq!(
                packet_due(now, first, &sealed).as_deref(),
                Some("2026-11"),
                "{now}"
            );
        }
        // January's packet reports December of the year before.
        assert_eq!(
            packet_due(datetime!(2027-01-01 00:00:01 UTC), first, &sealed).as_deref(),
            Some("2026-12")
        );
        // Sealed already: not again.
        let done = std::collections::BTreeSet::from(["2026-11".to_owned()]);
        assert_eq!(
            packet_due(datetime!(2026-12-02 00:00 UTC), first, &done),
            None
        );
        // A month that ended before the first bundle, and an empty log: nothing.
        assert_eq!(
            packet_due(
                datetime!(2026-12-02 00:00 UTC),
                Some(datetime!(2026-12-01 00:00 UTC)),
                &sealed
            ),
            None
        );
        assert_eq!(
            packet_due(datetime!(2026-12-02 00:00 UTC), None, &sealed),
            None
        );
        // A log that began in November, the month reported: due.
        assert_eq!(
            packet_due(
                datetime!(2026-12-02 00:00 UTC),
                Some(datetime!(2026-11-30 23:59 UTC)),
                &sealed
            )
            .as_deref(),
            Some("2026-11")
        );
    }

    #[test]
    fn the_next_packet_is_looked_for_on_the_next_1st() {
        use time::macros::datetime;
        for (now, next) in [
            (
                datetime!(2026-12-01 00:00 UTC),
                datetime!(2027-01-01 00:00 UTC),
            ),
            (
                datetime!(2026-01-31 23:00 UTC),
                datetime!(2026-02-01 00:00 UTC),
            ),
            (
                datetime!(2026-02-28 12:00 UTC),
                datetime!(2026-03-01 00:00 UTC),
            ),
        ] {
            assert_eq!(next_month_start(now), next, "{now}");
        }
    }

    #[test]
    fn jitter_stays_within_its_percentage() {
        let cases = [
            (300, 10, 0.0, 270),
            (300, 10, 0.5, 300),
            (300, 10, 0.999_999, 330),
            (300, 0, 0.9, 300),
            (5, 50, 0.0, 3),
            (1, 50, 0.0, 1),
        ];
        for (secs, percent, draw, want) in cases {
            assert_eq!(
                jittered(secs, percent, draw),
                want,
                "{secs} {percent} {draw}"
            );
        }
    }

    #[test]
    fn a_restart_resumes_the_schedule_instead_of_rescanning_at_once() {
        // Ran 100 s ago with a 300 s interval: next run in 200 s.
        assert_eq!(first_due(CycleKind::Discovery, Some(900), 300, 1000), 1200);
        // Ran long ago (or never): soon.
        assert_eq!(first_due(CycleKind::Discovery, Some(10), 300, 1000), 1001);
        assert_eq!(first_due(CycleKind::WorkstationScan, None, 600, 1000), 1003);
        // A clock that jumped back never pushes the run beyond one interval.
        assert_eq!(
            first_due(CycleKind::ServerScan, Some(5000), 300, 1000),
            1300
        );
    }

    #[test]
    fn drift_brings_the_next_server_scan_forward() {
        let daemon = config::DaemonConfig {
            jitter_percent: 0,
            ..config::DaemonConfig::default()
        };
        assert_eq!(next_server_scan(&daemon, false, 0, 0.3), 300);
        assert_eq!(next_server_scan(&daemon, true, 0, 0.3), 60);
    }

    #[test]
    fn cycles_follow_the_configuration() {
        let config = config::Config::embedded_default();
        assert!(enabled(&config, CycleKind::ServerScan));
        assert!(!enabled(&config, CycleKind::Discovery));
        assert!(!enabled(&config, CycleKind::WorkstationScan));
        assert!(enabled(&config, CycleKind::Checkpoint));
    }
}
