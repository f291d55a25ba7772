//! Optional Prometheus metrics: the text exposition format on a loopback TCP port, off unless
//! `daemon.metrics_listen` is set (configuration refuses any non-loopback address).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::routing::get;

use crate::Shared;

pub(crate) async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot serve metrics on {addr}: {err}"))
}

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared);
    if let Err(err) = axum::serve(listener, router).await {
        tracing::error!(error = %err, "The metrics endpoint stopped.");
    }
}

async fn metrics(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> String {
    render(&shared)
}

/// The current values in Prometheus text format.
pub(crate) fn render(shared: &Shared) -> String {
    let mut out = String::new();
    let state = shared.state();
    let counts = crate::derive::device_counts(state.saved.devices.values());
    let _ = writeln!(
        out,
        "# HELP osiris_devices Devices by state after their last scan.\n# TYPE osiris_devices gauge"
    );
    for (label, value) in [
        ("compliant", counts.compliant),
        ("drifted", counts.drifted),
        ("error", counts.errored),
        (
            "unknown",
            counts.total - counts.compliant - counts.drifted - counts.errored,
        ),
    ] {
        let _ = writeln!(out, "osiris_devices{{state=\"{label}\"}} {value}");
    }
    let _ = writeln!(
        out,
        "# HELP osiris_incidents_open Incidents not resolved or closed.\n# TYPE osiris_incidents_open gauge"
    );
    let _ = writeln!(out, "osiris_incidents_open {}", state.ledger.open().len());
    let _ = writeln!(
        out,
        "# HELP osiris_cycle_runs_total Completed runs per cycle.\n# TYPE osiris_cycle_runs_total counter"
    );
    for kind in api::CycleKind::ALL {
        let runs = state.saved.cycles.get(kind.as_str()).map_or(0, |c| c.runs);
        let _ = writeln!(
            out,
            "osiris_cycle_runs_total{{cycle=\"{}\"}} {runs}",
            kind.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP osiris_cycle_running Whether the cycle is running now.\n# TYPE osiris_cycle_running gauge"
    );
    for kind in api::CycleKind::ALL {
        let running = u8::from(shared.cycle(kind).running());
        let _ = writeln!(
            out,
            "osiris_cycle_running{{cycle=\"{}\"}} {running}",
            kind.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP osiris_evidence_bundles Bundles in the evidence log.\n# TYPE osiris_evidence_bundles gauge"
    );
    let _ = writeln!(out, "osiris_evidence_bundles {}", shared.store.size());
    out
}
