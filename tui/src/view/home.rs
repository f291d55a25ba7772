//! The home screen (verdict, compliance, incidents, activity, health) and the evidence screen.

use api::{CycleKind, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::{Connection, Model, Tone};
use crate::view::{badge, bold, dim, format, panel, style, symbol};

/// The big line at the top of home: tone and plain words.
pub fn verdict(model: &Model) -> (Tone, String) {
    if let Connection::Down(message) = &model.connection {
        return (Tone::Problem, message.clone());
    }
    let Some(status) = &model.status else {
        return (Tone::Info, "Connecting to the appliance service…".into());
    };
    let devices = &status.devices;
    let attention = devices.drifted + devices.errored;
    let Some(last_scan) = status.last_scan_at else {
        return (Tone::Info, "Checking devices for the first time…".into());
    };
    if devices.total == 0 {
        return (
            Tone::Attention,
            "No devices are set up yet — ask your IT partner to add them".into(),
        );
    }
    let when = format::ago(status.now, last_scan);
    let checked = if devices.checked >= devices.total {
        format!("All {} devices checked {when}", devices.total)
    } else {
        format!(
            "{} of {} devices checked {when}",
            devices.checked, devices.total
        )
    };
    if attention == 0 {
        (Tone::Good, format!("{checked} — everything is OK"))
    } else {
        let verb = if attention == 1 { "needs" } else { "need" };
        (
            Tone::Attention,
            format!("{checked} — {attention} {verb} attention"),
        )
    }
}

pub(crate) fn render(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let (tone, text) = verdict(model);
    let mut verdict_lines = vec![Line::from(vec![Span::styled(
        format!("{} {text}", symbol(tone)),
        style(tone).add_modifier(ratatui::style::Modifier::BOLD),
    )])];
    if matches!(model.connection, Connection::Down(_)) {
        let code = model
            .status
            .as_ref()
            .map(|s| s.health.support_code.as_str())
            .filter(|c| !c.is_empty());
        verdict_lines.push(Line::raw(match code {
            Some(code) => format!(
                "Press R to retry; if this stays, call your IT partner and give them support code {code}"
            ),
            None => "Press R to retry; if this stays, call your IT partner".into(),
        }));
    } else if let Some(status) = &model.status
        && status.healing.paused
    {
        let healing = &status.healing;
        let by = healing.paused_by.as_deref().unwrap_or("someone");
        let why = healing
            .paused_reason
            .as_deref()
            .unwrap_or("no reason given");
        let when = healing
            .paused_at
            .map(|at| format!(" {}", format::ago(status.now, at)))
            .unwrap_or_default();
        verdict_lines.push(Line::from(vec![
            badge(Tone::Attention, "Automatic fixing is paused"),
            Span::raw(format!(" by {by}{when}: {why} (P to resume)")),
        ]));
    }
    let verdict_height = super::wrapped_height(&verdict_lines, area.width.saturating_sub(2)) + 2;
    let activity = model
        .status
        .as_ref()
        .map(|status| activity_lines(status, area.height))
        .unwrap_or_default();
    let activity_height = super::wrapped_height(&activity, area.width.saturating_sub(2)) + 2;
    let [verdict_area, middle, activity_area, _] = Layout::vertical([
        Constraint::Length(verdict_height),
        Constraint::Length(7),
        Constraint::Length(activity_height),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(verdict_lines)
            .wrap(Wrap { trim: true })
            .block(panel("Today")),
        verdict_area,
    );
    let Some(status) = &model.status else {
        return;
    };
    let [compliance_area, incidents_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
    frame.render_widget(
        Paragraph::new(compliance_lines(status, compliance_area.width)).block(panel("Compliance")),
        compliance_area,
    );
    frame.render_widget(
        Paragraph::new(incident_lines(status)).block(panel("Incidents")),
        incidents_area,
    );
    frame.render_widget(
        Paragraph::new(activity)
            .wrap(Wrap { trim: true })
            .block(panel("Appliance")),
        activity_area,
    );
}

pub(crate) fn evidence(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let Some(status) = &model.status else {
        frame.render_widget(
            Paragraph::new(
                "The evidence state is not known yet: the appliance service has not answered.",
            )
            .block(panel("Evidence")),
            area,
        );
        return;
    };
    let evidence = &status.evidence;
    let head = match evidence.head_hash.as_deref() {
        Some(hash) if area.width < 100 => format::short_hash(hash),
        Some(hash) => hash.to_owned(),
        None => "none yet".into(),
    };
    let checkpoint = evidence
        .last_checkpoint_at
        .map(|at| {
            format!(
                "{} (covers {} records)",
                format::ago(status.now, at),
                format::count(evidence.checkpoint_size)
            )
        })
        .unwrap_or_else(|| "none yet".into());
    let ots = if evidence.ots_anchored + evidence.ots_pending == 0 {
        vec![Span::raw("no checkpoint submitted yet")]
    } else {
        vec![
            badge(
                Tone::Good,
                &format!("{} anchored in Bitcoin", evidence.ots_anchored),
            ),
            Span::raw("   "),
            if evidence.ots_pending > 0 {
                badge(
                    Tone::Info,
                    &format!(
                        "{} pending (normal: takes a few hours)",
                        evidence.ots_pending
                    ),
                )
            } else {
                Span::raw("")
            },
        ]
    };
    let row = |label: &str, value: Vec<Span<'static>>| {
        let mut spans = vec![Span::styled(format!("{label:<20}"), dim())];
        spans.extend(value);
        Line::from(spans)
    };
    // On short terminals the introduction gives its rows to the packets and records.
    let mut lines = if area.height >= 30 {
        vec![
            Line::raw(
                "Every check, fix and decision is written to a signed, chained evidence log.",
            ),
            Line::raw(""),
        ]
    } else {
        Vec::new()
    };
    lines.extend([
        row(
            "Records",
            vec![Span::styled(format::count(evidence.bundles), bold())],
        ),
        row("Newest record", vec![Span::raw(head)]),
        row("Last checkpoint", vec![Span::raw(checkpoint)]),
        row("Timestamps", ots),
        row("Signing key", vec![Span::raw(evidence.key_id.clone())]),
        Line::raw(""),
        Line::raw("Press E to copy the evidence kit to a USB stick for your auditor."),
    ]);
    let inner_width = area.width.saturating_sub(2);
    let top = (crate::view::wrapped_height(&lines, inner_width) + 2).min(area.height);
    let [top_area, bottom_area] =
        Layout::vertical([Constraint::Length(top), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel("Evidence")),
        top_area,
    );
    if bottom_area.height > 2 {
        let rows = usize::from(bottom_area.height - 2);
        frame.render_widget(
            Paragraph::new(packet_and_record_lines(model, status.now, rows))
                .block(panel("Monthly packets and accepted risks")),
            bottom_area,
        );
    }
}

/// The monthly packets (the selected one marked), then the accepted risks and attestations with
/// their expiry, in at most `rows` lines.
fn packet_and_record_lines(model: &Model, now: i64, rows: usize) -> Vec<Line<'static>> {
    let mut packets: Vec<Line<'static>> = Vec::new();
    match model.packets.as_deref() {
        None => packets.push(Line::styled("Monthly packets: loading…", dim())),
        Some([]) => packets.push(Line::raw(
            "No monthly packet yet: the appliance makes the previous month's reports on the 1st.",
        )),
        Some(list) => {
            packets.push(Line::from(vec![
                Span::styled("Monthly packets", bold()),
                Span::styled("  (M copies the selected one to a USB stick)", dim()),
            ]));
            for (idx, packet) in list.iter().enumerate() {
                let selected = idx == model.packet_idx;
                let mut text = format!(
                    "{} {}  made {} · {} files",
                    if selected { "›" } else { " " },
                    packet.period,
                    format::ago(now, packet.made_at),
                    packet.files
                );
                if !packet.evidence {
                    text.push_str(" · no scans that month");
                }
                packets.push(if selected {
                    Line::styled(text, bold())
                } else {
                    Line::raw(text)
                });
            }
        }
    }
    let mut records: Vec<Line<'static>> = Vec::new();
    match &model.records {
        None => {}
        Some(r) if r.exceptions.is_empty() && r.attestations.is_empty() => {
            records.push(Line::raw("No accepted risks or attestations recorded."));
        }
        Some(r) => {
            records.push(Line::styled("Accepted risks and attestations", bold()));
            for e in &r.exceptions {
                records.push(record_line(
                    e.counts,
                    format!("risk accepted: {} on {}", e.check, e.target),
                    &e.expires,
                    &e.owner,
                ));
            }
            for a in &r.attestations {
                records.push(record_line(
                    a.counts,
                    format!("attested: {}", a.control),
                    &a.expires,
                    &a.by,
                ));
            }
        }
    }
    // Packets get the rows first (keeping the selected one in view), records the rest.
    let packet_rows = packets
        .len()
        .min(rows.saturating_sub(records.len().min(3)).max(2));
    let mut res = window(packets, packet_rows, model.packet_idx + 1);
    let left = rows.saturating_sub(res.len());
    let n_records = records.len();
    if n_records > left && left > 0 {
        records.truncate(left - 1);
        records.push(Line::styled(
            format!("… {} more (osiris exception list)", n_records - left + 1),
            dim(),
        ));
    }
    res.extend(records.into_iter().take(left));
    res
}

/// `✔ Risk accepted: … until DATE (who)`, or `! Expired DATE: …` once it counts no more.
fn record_line(counts: bool, what: String, expires: &str, who: &str) -> Line<'static> {
    if counts {
        let mut chars = what.chars();
        let what: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        Line::from(vec![
            badge(Tone::Good, ""),
            Span::raw(format!("{what} until {expires} ({who})")),
        ])
    } else {
        Line::from(vec![
            badge(Tone::Attention, ""),
            Span::raw(format!("Expired {expires}, counts no more: {what} ({who})")),
        ])
    }
}

/// `lines[0]` (the heading) and a window of the rest of `rows` lines that shows line `keep`.
fn window(lines: Vec<Line<'static>>, rows: usize, keep: usize) -> Vec<Line<'static>> {
    if lines.len() <= rows || rows < 2 {
        return lines.into_iter().take(rows).collect();
    }
    let shown = rows - 1;
    let first = (keep + 1).saturating_sub(shown).max(1);
    let mut iter = lines.into_iter();
    let mut res: Vec<Line<'static>> = iter.next().into_iter().collect();
    res.extend(iter.skip(first - 1).take(shown));
    res
}

fn compliance_lines(status: &Status, width: u16) -> Vec<Line<'static>> {
    if status.compliance.is_empty() {
        return vec![Line::raw("No results yet: shown after the first scan.")];
    }
    let spark_width = usize::from(width.saturating_sub(30)).clamp(4, 30);
    status
        .compliance
        .iter()
        .take(5)
        .map(|score| {
            let value = match score.permille {
                Some(p) => format::permille(p),
                None => "no data".into(),
            };
            let tone = match score.permille {
                Some(p) if p >= 950 => Tone::Good,
                Some(_) => Tone::Attention,
                None => Tone::Info,
            };
            Line::from(vec![
                Span::styled(format!("{:<9}", score.framework), bold()),
                Span::styled(format!("{} {value:>8}", symbol(tone)), style(tone)),
                Span::raw("  "),
                Span::styled(
                    format::sparkline(&score.trend, spark_width),
                    style(Tone::Good),
                ),
                Span::styled(format!("  {} failing", score.failing), dim()),
            ])
        })
        .collect()
}

fn incident_lines(status: &Status) -> Vec<Line<'static>> {
    let counts = &status.incidents;
    let mut lines = Vec::new();
    if counts.needs_you > 0 {
        let verb = if counts.needs_you == 1 {
            "needs"
        } else {
            "need"
        };
        lines.push(Line::from(badge(
            Tone::Attention,
            &format!("{} {verb} you (see Incidents, F3)", counts.needs_you),
        )));
    } else {
        lines.push(Line::from(badge(Tone::Good, "Nothing needs you")));
    }
    let taken = counts.escalated.saturating_sub(counts.needs_you);
    if taken > 0 {
        lines.push(Line::raw(format!("{taken} acknowledged, with a person")));
    }
    lines.push(Line::raw(format!(
        "{} being fixed by the appliance",
        counts.healing
    )));
    lines.push(Line::raw(format!("{} open", counts.open)));
    lines.push(Line::styled(
        format!("{} resolved recently", counts.resolved),
        dim(),
    ));
    lines
}

fn activity_lines(status: &Status, body_height: u16) -> Vec<Line<'static>> {
    let now = status.now;
    let mut lines = Vec::new();
    let scan = status
        .cycles
        .iter()
        .find(|c| c.kind == CycleKind::ServerScan);
    let scan_text = match scan {
        Some(cycle) if cycle.running => "running now".to_owned(),
        Some(cycle) => {
            let last = cycle
                .last_finished_at
                .map(|at| format::ago(now, at))
                .unwrap_or_else(|| "not yet".into());
            let outcome = cycle
                .last_outcome
                .as_deref()
                .map(|o| format!(" — {o}"))
                .unwrap_or_default();
            let next = cycle
                .next_due_at
                .map(|at| format!("; next {}", format::until(now, at)))
                .unwrap_or_default();
            format!("{last}{outcome}{next}")
        }
        None => "not set up".into(),
    };
    lines.push(label_line("Last scan", vec![Span::raw(scan_text)]));
    let healing = if status.healing.paused {
        badge(Tone::Attention, "Paused")
    } else {
        badge(Tone::Good, "On — known problems are fixed automatically")
    };
    lines.push(label_line("Fixing", vec![healing]));
    let evidence = &status.evidence;
    let checkpoint = evidence
        .last_checkpoint_at
        .map(|at| format!("checkpoint {}", format::ago(now, at)))
        .unwrap_or_else(|| "no checkpoint yet".into());
    lines.push(label_line(
        "Evidence",
        vec![Span::raw(format!(
            "{} records · {checkpoint} · {} anchored, {} pending",
            format::count(evidence.bundles),
            evidence.ots_anchored,
            evidence.ots_pending
        ))],
    ));
    let health = &status.health;
    let disk_tone =
        if health.disk_total_bytes > 0 && health.disk_free_bytes * 10 < health.disk_total_bytes {
            Tone::Attention
        } else {
            Tone::Good
        };
    lines.push(label_line(
        "Health",
        vec![
            badge(
                disk_tone,
                &format!(
                    "disk {} free of {}",
                    format::bytes(health.disk_free_bytes),
                    format::bytes(health.disk_total_bytes)
                ),
            ),
            Span::raw(format!(
                " · memory {} free of {}",
                format::bytes(health.mem_available_bytes),
                format::bytes(health.mem_total_bytes),
            )),
        ],
    ));
    let update_tone = if health.update.can_apply {
        Tone::Attention
    } else {
        Tone::Info
    };
    lines.push(label_line(
        "Version",
        vec![
            Span::raw(format!(
                "{} · up {} · ",
                status.version,
                format::duration(health.uptime_secs)
            )),
            badge(
                update_tone,
                &format!("update: {}", format::update_state(&health.update)),
            ),
        ],
    ));
    if body_height >= 30 {
        lines.push(Line::raw(""));
        lines.push(Line::styled("What the appliance does on its own:", bold()));
        for cycle in status.cycles.iter().filter(|c| c.enabled) {
            let state = if cycle.running {
                badge(Tone::Info, "running")
            } else if cycle.last_failed {
                badge(Tone::Problem, "failed")
            } else {
                badge(Tone::Good, "ok")
            };
            let outcome = cycle.last_outcome.clone().unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{:<18}", cycle_name(cycle.kind)), dim()),
                state,
                Span::styled(format!("  {outcome}"), dim()),
            ]));
        }
    }
    lines
}

/// Plain name of a recurring job.
pub(crate) fn cycle_name(kind: CycleKind) -> &'static str {
    match kind {
        CycleKind::ServerScan => "Server scan",
        CycleKind::WorkstationScan => "Workstation scan",
        CycleKind::Discovery => "Finding computers",
        CycleKind::Anchor => "Timestamping",
        CycleKind::Checkpoint => "Checkpoint",
        CycleKind::CloudScan => "Cloud scan",
        CycleKind::RmmImport => "RMM inventory",
    }
}

fn label_line(label: &str, value: Vec<Span<'static>>) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{label:<11}"), dim())];
    spans.extend(value);
    Line::from(spans)
}
