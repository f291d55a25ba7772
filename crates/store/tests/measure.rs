//! Release-mode measurements (throughput, open time at a large size), gated by `RUN_SLOW_TESTS`.

use std::io::Write;

use store::bench::ThroughputConfig;

/// Measures append throughput for 2 and 8 producers, with 1 to 64 appends in flight each, and the open/resume time of a large log.
///
/// Run with `RUN_SLOW_TESTS=1 cargo test --release -p store --test measure -- --nocapture`.
/// `OSIRIS_MEASURE_ROWS` sets the size of the large log (default 1,000,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_throughput_and_open_time() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        return;
    }
    let mut report = std::io::stderr();
    for (n_producers, in_flight_per_producer) in [(2, 1), (8, 1), (2, 64), (8, 16), (8, 64)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ThroughputConfig {
            n_bundles: 50_000,
            n_producers,
            in_flight_per_producer,
        };
        let res = store::bench::append_throughput(dir.path(), cfg)
            .await
            .expect("bench");
        writeln!(
            report,
            "producers {n_producers} x {in_flight_per_producer} in flight: {} bundles in {:.2} s = {:.0} bundles/s",
            res.n_bundles,
            res.elapsed.as_secs_f64(),
            res.per_second()
        )
        .expect("report");
        assert_eq!(res.n_bundles, 50_000);
    }
    let n_rows: u64 = std::env::var("OSIRIS_MEASURE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let fill = store::bench::append_throughput(
        dir.path(),
        ThroughputConfig {
            n_bundles: n_rows,
            n_producers: 8,
            in_flight_per_producer: 64,
        },
    )
    .await
    .expect("fill");
    writeln!(
        report,
        "fill: {} bundles in {:.1} s = {:.0} bundles/s",
        fill.n_bundles,
        fill.elapsed.as_secs_f64(),
        fill.per_second()
    )
    .expect("report");
    let reopen = store::bench::append_throughput(
        dir.path(),
        ThroughputConfig {
            n_bundles: 1,
            n_producers: 1,
            in_flight_per_producer: 1,
        },
    )
    .await
    .expect("reopen");
    assert_eq!(reopen.opened_size, n_rows);
    writeln!(
        report,
        "open/resume at {} rows: {:.3} s",
        reopen.opened_size,
        reopen.open_elapsed.as_secs_f64()
    )
    .expect("report");
}
