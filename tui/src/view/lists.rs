//! The list screens: devices (filter and search), incidents (with history) and the healing log.

use api::{DeviceClass, DeviceStatus, Incident};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::model::{Model, Tone};
use crate::view::{badge, bold, dim, format, panel, style};

pub(crate) fn devices(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let shown = model.shown_devices();
    let now = model.now();
    let view = &model.devices_view;
    let class_name = match view.class {
        None => "All devices",
        Some(class) => class_title(class),
    };
    let search = if view.searching {
        format!("  Search: {}█", view.search)
    } else if !view.search.is_empty() {
        format!("  Search: {}", view.search)
    } else {
        String::new()
    };
    let title = format!(
        "Devices — {class_name} ({} of {}){search}",
        shown.len(),
        model.devices.len()
    );
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(6)]).areas(area);
    let rows: Vec<Row<'_>> = shown
        .iter()
        .map(|device| {
            let (tone, word) = device_status(device.status);
            let failing = if device.checks_failed > 0 {
                format!("{} of {}", device.checks_failed, device.checks_total)
            } else {
                "—".into()
            };
            let last = device
                .last_scan_at
                .map(|at| format::ago(now, at))
                .unwrap_or_else(|| "never".into());
            Row::new(vec![
                Cell::from(device.name.clone()),
                Cell::from(class_word(device.class)),
                Cell::from(badge(tone, word)),
                Cell::from(failing),
                Cell::from(last),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Length(12),
            Constraint::Length(18),
            Constraint::Length(9),
            Constraint::Length(15),
        ],
    )
    .header(Row::new(["Name", "Kind", "Status", "Failing", "Last scan"]).style(bold()))
    .row_highlight_style(selected_style())
    .highlight_symbol("▸ ")
    .block(panel(&title));
    let mut state = TableState::default().with_selected((!empty).then_some(view.selected));
    frame.render_stateful_widget(table, table_area, &mut state);
    let detail: Vec<Line<'_>> = match shown.get(view.selected) {
        None if model.devices.is_empty() => {
            vec![Line::raw(
                "No devices known yet. They appear after the first scan.",
            )]
        }
        None => vec![Line::raw(
            "No device matches. Press Esc to clear the search and filter.",
        )],
        Some(device) => {
            let mut lines = Vec::new();
            if let Some(error) = &device.error {
                lines.push(Line::from(vec![
                    badge(Tone::Problem, "Could not check:"),
                    Span::raw(format!(" {error}")),
                ]));
            }
            for check in &device.failing {
                lines.push(Line::from(vec![
                    badge(Tone::Attention, &check.severity),
                    Span::raw(format!(" {}", check.title)),
                    Span::styled(format!("  ({})", check.check), dim()),
                ]));
            }
            if lines.is_empty() {
                lines.push(Line::from(badge(Tone::Good, "Every check passed.")));
            }
            if let Some(intune) = &device.intune {
                lines.push(intune_line(intune));
            }
            lines
        }
    };
    let detail_title = shown
        .get(view.selected)
        .map(|d| {
            format!(
                "{} {}",
                d.name,
                d.address
                    .as_deref()
                    .map(|a| format!("({a})"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "Details".into());
    frame.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .block(panel(&detail_title)),
        detail_area,
    );
}

pub(crate) fn incidents(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let now = model.now();
    let needs_you = model
        .incidents
        .iter()
        .filter(|i| {
            i.needs_human && !i.acknowledged && i.phase != "resolved" && i.phase != "closed"
        })
        .count();
    let verb = if needs_you == 1 { "needs" } else { "need" };
    let title = format!(
        "Incidents — {} listed, {needs_you} {verb} you",
        model.incidents.len()
    );
    let list_height = (model.incidents.len() as u16 + 3).clamp(5, area.height / 2);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Fill(1)]).areas(area);
    let rows: Vec<Row<'_>> = model
        .incidents
        .iter()
        .map(|incident| {
            let (tone, word) = incident_marker(incident);
            Row::new(vec![
                Cell::from(badge(tone, word)),
                Cell::from(incident.title.clone()),
                Cell::from(incident.target.clone()),
                Cell::from(format::ago(now, incident.opened_at)),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Fill(3),
            Constraint::Fill(1),
            Constraint::Length(15),
        ],
    )
    .header(Row::new(["", "What", "Device", "Opened"]).style(bold()))
    .row_highlight_style(selected_style())
    .highlight_symbol("▸ ")
    .block(panel(&title));
    let mut state = TableState::default().with_selected((!empty).then_some(model.incident_idx));
    frame.render_stateful_widget(table, list_area, &mut state);
    let detail: Vec<Line<'_>> = match model.incidents.get(model.incident_idx) {
        None => vec![Line::from(badge(
            Tone::Good,
            "No incidents. Nothing to do.",
        ))],
        Some(incident) => {
            let mut lines = vec![Line::from(vec![
                Span::styled(incident.title.clone(), bold()),
                Span::styled(
                    format!(
                        "  {} on {} · seen {} time{} · severity {}",
                        incident.check,
                        incident.target,
                        incident.occurrences,
                        if incident.occurrences == 1 { "" } else { "s" },
                        incident.severity
                    ),
                    dim(),
                ),
            ])];
            if incident.needs_human && !incident.acknowledged {
                lines.push(Line::from(vec![
                    badge(Tone::Attention, "Needs you:"),
                    Span::raw(" the appliance cannot fix this. Call your IT partner, then press A to mark it as taken."),
                ]));
            } else if incident.acknowledged {
                lines.push(Line::from(badge(
                    Tone::Good,
                    "Acknowledged — a person is on it.",
                )));
            }
            if incident.flapping {
                lines.push(Line::from(badge(
                    Tone::Attention,
                    "Keeps coming back after being fixed.",
                )));
            }
            lines.push(Line::styled("What the appliance did:", bold()));
            for step in &incident.history {
                lines.push(Line::raw(format!("  • {step}")));
            }
            lines
        }
    };
    frame.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: false })
            .block(panel("Details")),
        detail_area,
    );
}

pub(crate) fn healing(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let now = model.now();
    // Below 120 columns the check id gives way to the reason, which matters more.
    let wide = area.width >= 120;
    let rows: Vec<Row<'_>> = model
        .healing
        .iter()
        .skip(model.healing_offset)
        .map(|entry| {
            let (tone, word) = match entry.result.as_str() {
                "fixed" => (Tone::Good, "Fixed"),
                "escalated" => (Tone::Attention, "Sent to a person"),
                "not_fixed" => (Tone::Problem, "Not fixed"),
                _ => (Tone::Info, entry.result.as_str()),
            };
            let mut cells = vec![
                Cell::from(format::ago(now, entry.at)),
                Cell::from(entry.target.clone()),
            ];
            if wide {
                cells.push(Cell::from(entry.check.clone()));
            }
            cells.push(Cell::from(badge(tone, word)));
            cells.push(Cell::from(entry.reason.clone()));
            Row::new(cells)
        })
        .collect();
    let title = format!(
        "Healing log — what the appliance fixed, newest first ({} entries)",
        model.healing.len()
    );
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(
                "Nothing fixed yet. When the appliance repairs a setting, it is listed here.",
            )
            .block(panel(&title)),
            area,
        );
        return;
    }
    let (widths, header) = if wide {
        (
            vec![
                Constraint::Length(15),
                Constraint::Length(14),
                Constraint::Length(24),
                Constraint::Length(19),
                Constraint::Fill(1),
            ],
            vec!["When", "Device", "Check", "Result", "Why"],
        )
    } else {
        (
            vec![
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(19),
                Constraint::Fill(1),
            ],
            vec!["When", "Device", "Result", "Why"],
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(bold()))
        .block(panel(&title));
    frame.render_widget(table, area);
}

/// Name of a device class, plural, for the filter title.
pub(crate) fn class_title(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::WindowsServer => "Servers",
        DeviceClass::Workstation => "Workstations",
        DeviceClass::Linux => "Linux",
    }
}

fn class_word(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::WindowsServer => "Server",
        DeviceClass::Workstation => "Workstation",
        DeviceClass::Linux => "Linux",
    }
}

/// What Intune last said about a machine: compliance and encryption, in one line.
fn intune_line(intune: &api::IntuneState) -> Line<'static> {
    let good = intune.compliance == "compliant" && intune.encrypted;
    Line::from(vec![
        badge(if good { Tone::Good } else { Tone::Attention }, "Intune:"),
        Span::raw(format!(
            " {}, {} (tenant {})",
            intune.compliance,
            if intune.encrypted {
                "encrypted"
            } else {
                "NOT encrypted"
            },
            intune.tenant
        )),
    ])
}

fn device_status(status: DeviceStatus) -> (Tone, &'static str) {
    match status {
        DeviceStatus::Compliant => (Tone::Good, "OK"),
        DeviceStatus::Drifted => (Tone::Attention, "Needs attention"),
        DeviceStatus::Error => (Tone::Problem, "Cannot check"),
        DeviceStatus::Unknown => (Tone::Info, "Not checked yet"),
    }
}

fn incident_marker(incident: &Incident) -> (Tone, &'static str) {
    match incident.phase.as_str() {
        "resolved" | "closed" => (Tone::Good, "Resolved"),
        _ if incident.needs_human && !incident.acknowledged => (Tone::Attention, "Needs you"),
        _ if incident.acknowledged => (Tone::Info, "Taken"),
        "healing" => (Tone::Info, "Being fixed"),
        _ => (Tone::Info, "Open"),
    }
}

fn selected_style() -> ratatui::style::Style {
    style(Tone::Info).add_modifier(Modifier::REVERSED)
}
