//! The health gate seen from outside the daemon, through its local API: `osirisd` answers, a scan
//! completes after its start (one is requested), and the evidence log grows.

use std::path::Path;
use std::time::Duration;

use crate::state::{HealthGate, Probe};

/// [`HealthGate`] over `osirisd`'s local API socket.
#[derive(Debug)]
pub struct DaemonGate {
    client: api::Client,
    baseline_bundles: Option<u64>,
    scan_requested: bool,
}

impl DaemonGate {
    /// A gate that asks the daemon listening on `socket`.
    pub fn new(socket: &Path) -> DaemonGate {
        DaemonGate {
            client: api::Client::new(socket).with_timeout(Duration::from_secs(10)),
            baseline_bundles: None,
            scan_requested: false,
        }
    }
}

impl HealthGate for DaemonGate {
    fn daemon_up(&mut self) -> Probe {
        match self.client.status() {
            Ok(status) => {
                if self.baseline_bundles.is_none() {
                    self.baseline_bundles = Some(status.evidence.bundles);
                }
                if !self.scan_requested {
                    self.scan_requested = self.client.scan_now().is_ok();
                }
                Probe::Pass
            }
            Err(err) => Probe::Pending(format!(
                "osirisd does not answer on {}: {err}",
                self.client.socket().display()
            )),
        }
    }

    fn scan_completed(&mut self) -> Probe {
        match self.client.status() {
            Ok(status)
                if status
                    .last_scan_at
                    .is_some_and(|at| at >= status.started_at) =>
            {
                Probe::Pass
            }
            Ok(_) => Probe::Pending("no scan has finished since osirisd started".to_owned()),
            Err(err) => Probe::Pending(format!("status unavailable: {err}")),
        }
    }

    fn evidence_appended(&mut self) -> Probe {
        match (self.client.status(), self.baseline_bundles) {
            (Ok(status), Some(baseline)) if status.evidence.bundles > baseline => Probe::Pass,
            (Ok(_), _) => Probe::Pending("no evidence bundle appended yet".to_owned()),
            (Err(err), _) => Probe::Pending(format!("status unavailable: {err}")),
        }
    }
}
