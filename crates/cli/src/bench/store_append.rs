//! Measurements of the store: append throughput through group commit, and the time to open a large log.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evidence::log::BundleDraft;
use store::{Store, StoreConfig, StoreError};

/// What one throughput run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput {
    /// Bundles appended and acknowledged.
    pub(crate) n_bundles: u64,
    /// Wall time from the first append to the last acknowledgement.
    pub(crate) elapsed: Duration,
    /// Time `Store::open` took before the run (resuming whatever `data_dir` already held).
    pub(crate) open_elapsed: Duration,
    /// Log size when the store was opened.
    pub(crate) opened_size: u64,
}

/// What a throughput run does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThroughputConfig {
    /// Bundles to append in total.
    pub(crate) n_bundles: u64,
    /// Concurrent producers (for example scan workers).
    pub(crate) n_producers: usize,
    /// Appends each producer keeps awaiting at once; 1 means each append waits for the previous ack.
    pub(crate) in_flight_per_producer: usize,
    /// Distinct devices the bundles are scans of (`None`: every bundle its own device).
    pub(crate) n_devices: Option<u64>,
}

impl Throughput {
    /// Acknowledged bundles per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.n_bundles as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Opens the store in `data_dir` and appends scan bundles of about 600 bytes as `cfg` says.
///
/// Every append is awaited individually, so group commit only batches what producers have in flight.
pub(crate) async fn append_throughput(
    data_dir: &Path,
    cfg: ThroughputConfig,
) -> Result<Throughput, StoreError> {
    let n_bundles = cfg.n_bundles;
    let store_cfg = StoreConfig {
        data_dir: data_dir.to_owned(),
        site: "bench".to_owned(),
    };
    let open_started = Instant::now();
    let store = Arc::new(Store::open(&store_cfg).await?);
    let open_elapsed = open_started.elapsed();
    let opened_size = store.size();
    let n_producers = (cfg.n_producers.max(1) * cfg.in_flight_per_producer.max(1)) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer_idx in 0..n_producers {
        let store = Arc::clone(&store);
        let share = n_bundles / n_producers + u64::from(producer_idx < n_bundles % n_producers);
        let devices = cfg.n_devices;
        tasks.push(tokio::spawn(async move {
            for n in 0..share {
                store.append(scan_draft(producer_idx, n, devices)).await?;
            }
            Ok::<(), StoreError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|_| StoreError::WriterStopped)??;
    }
    let elapsed = started.elapsed();
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(Throughput {
        n_bundles,
        elapsed,
        open_elapsed,
        opened_size,
    })
}

/// A scan bundle draft of about 600 bytes once sealed.
fn scan_draft(producer_idx: u64, n: u64, devices: Option<u64>) -> BundleDraft {
    let id = producer_idx << 32 | n;
    let mut draft =
        crate::bench::evidence_log::sample_scan_draft(devices.map_or(id, |d| id % d.max(1)));
    draft.time = time::OffsetDateTime::now_utc();
    draft
}
