//! `osiris status`: what the running daemon says, through its local API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The appliance configuration (names the daemon's socket).
    #[arg(long, default_value = "/etc/osiris/appliance.toml")]
    config: PathBuf,
    /// Print the daemon's answers as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(Some(&args.config))?;
    let client = api::Client::new(&config.daemon.socket);
    let status = client
        .status()
        .map_err(|err| crate::Failed(err.to_string()))?;
    let incidents = client
        .incidents()
        .context("reading incidents from the daemon")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({"status": status, "incidents": incidents});
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    write!(out, "{}", render(&status, &incidents))?;
    Ok(ExitCode::SUCCESS)
}

fn ago(now: i64, at: Option<i64>) -> String {
    match at {
        None => "never".to_owned(),
        Some(at) => {
            let secs = (now - at).max(0);
            match secs {
                0..60 => format!("{secs} s ago"),
                60..3600 => format!("{} min ago", secs / 60),
                3600..86400 => format!("{} h ago", secs / 3600),
                _ => format!("{} days ago", secs / 86400),
            }
        }
    }
}

fn render(status: &api::Status, incidents: &[api::Incident]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let d = &status.devices;
    let _ = writeln!(
        out,
        "site {}: {} devices, {} checked {}: {} compliant, {} need attention, {} unreachable",
        status.site,
        d.total,
        d.checked,
        ago(status.now, status.last_scan_at),
        d.compliant,
        d.drifted,
        d.errored
    );
    if status.healing.paused {
        let _ = writeln!(
            out,
            "healing PAUSED by {} ({})",
            status.healing.paused_by.as_deref().unwrap_or("?"),
            status.healing.paused_reason.as_deref().unwrap_or("")
        );
    }
    for score in &status.compliance {
        if let Some(permille) = score.permille {
            let _ = writeln!(
                out,
                "  {:<9} {:>3}.{}%  ({} of {} controls met, {} failing)",
                score.framework,
                permille / 10,
                permille % 10,
                score.passing,
                score.controls,
                score.failing
            );
        }
    }
    let _ = writeln!(out, "cycles:");
    for cycle in status.cycles.iter().filter(|c| c.enabled) {
        let state = if cycle.running { "running" } else { "idle" };
        let _ = writeln!(
            out,
            "  {:<17} {state:<8} runs {:<4} last {:<12} {}",
            cycle.kind.as_str(),
            cycle.runs,
            ago(status.now, cycle.last_finished_at),
            cycle.last_outcome.as_deref().unwrap_or("")
        );
    }
    let e = &status.evidence;
    let _ = writeln!(
        out,
        "evidence: {} bundles, checkpoint at {}, OTS {} anchored / {} pending, key {}",
        e.bundles, e.checkpoint_size, e.ots_anchored, e.ots_pending, e.key_id
    );
    if let Some(packet) = &e.last_packet {
        let _ = writeln!(
            out,
            "monthly packet: {} made {} (bundle #{}, {} files{})",
            packet.period,
            ago(status.now, Some(packet.made_at)),
            packet.seq,
            packet.files,
            if packet.evidence {
                ""
            } else {
                "; no scan evidence that month"
            }
        );
    }
    let open: Vec<&api::Incident> = incidents
        .iter()
        .filter(|i| matches!(i.phase.as_str(), "open" | "healing" | "escalated"))
        .collect();
    let _ = writeln!(out, "incidents: {} open", open.len());
    for i in open {
        let _ = writeln!(
            out,
            "  #{:<4} {:<9} {:<8} {:<14} {:<18} {}{}",
            i.id,
            i.phase,
            i.severity,
            i.target,
            i.check,
            i.title,
            if i.needs_human {
                "  ← needs a person"
            } else {
                ""
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn status() -> api::Status {
        let cycle = |kind, runs, outcome: &str| api::CycleState {
            kind,
            enabled: true,
            running: false,
            runs,
            last_started_at: Some(9_880),
            last_finished_at: Some(9_900),
            last_outcome: Some(outcome.to_owned()),
            last_failed: false,
            next_due_at: Some(10_200),
        };
        api::Status {
            site: "clinic".into(),
            version: "0.0.0".into(),
            now: 10_000,
            started_at: 1_000,
            setup_complete: true,
            devices: api::DeviceCounts {
                total: 3,
                checked: 3,
                compliant: 1,
                drifted: 1,
                errored: 1,
                by_class: Vec::new(),
            },
            last_scan_at: Some(9_900),
            cycles: vec![
                cycle(
                    api::CycleKind::ServerScan,
                    12,
                    "3 servers scanned; 1 fixed, 1 for a person, 0 held",
                ),
                api::CycleState {
                    enabled: false,
                    ..cycle(api::CycleKind::Discovery, 0, "")
                },
            ],
            healing: api::HealingState {
                paused: true,
                paused_reason: Some("PACS upgrade".into()),
                paused_by: Some("alice".into()),
                paused_at: Some(9_000),
                maintenance: Vec::new(),
            },
            incidents: api::IncidentCounts::default(),
            compliance: vec![
                api::FrameworkScore {
                    framework: "HIPAA".into(),
                    passing: 41,
                    failing: 3,
                    controls: 44,
                    permille: Some(931),
                    trend: vec![900, 931],
                },
                api::FrameworkScore {
                    framework: "SOC2".into(),
                    passing: 0,
                    failing: 0,
                    controls: 0,
                    permille: None,
                    trend: Vec::new(),
                },
            ],
            evidence: api::EvidenceState {
                bundles: 120,
                checkpoint_size: 118,
                ots_pending: 1,
                ots_anchored: 4,
                key_id: "9c3e8c54".into(),
                ..api::EvidenceState::default()
            },
            health: api::ApplianceHealth::default(),
            console: api::ConsoleLock::default(),
        }
    }

    #[test]
    fn status_reads_as_one_screen() {
        let incidents = vec![api::Incident {
            id: 7,
            target: "fileserver".into(),
            check: "LIN-SSH-002".into(),
            title: "SSH password authentication disabled".into(),
            severity: "high".into(),
            phase: "escalated".into(),
            opened_at: 9_000,
            updated_at: 9_100,
            occurrences: 3,
            flapping: false,
            acknowledged: false,
            needs_human: true,
            history: Vec::new(),
        }];
        expect![[r#"
            site clinic: 3 devices, 3 checked 1 min ago: 1 compliant, 1 need attention, 1 unreachable
            healing PAUSED by alice (PACS upgrade)
              HIPAA      93.1%  (41 of 44 controls met, 3 failing)
            cycles:
              server_scan       idle     runs 12   last 1 min ago    3 servers scanned; 1 fixed, 1 for a person, 0 held
            evidence: 120 bundles, checkpoint at 118, OTS 4 anchored / 1 pending, key 9c3e8c54
            incidents: 1 open
              #7    escalated high     fileserver     LIN-SSH-002        SSH password authentication disabled  ← needs a person
        "#]].assert_eq(&render(&status(), &incidents));
    }
}
