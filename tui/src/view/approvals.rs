//! The approvals screen: fixes the assistant (L2) planned that change a computer in ways a
//! person must allow, the fixes it learned that could become automatic, and who fixed what.

use api::{FlywheelPattern, L2Plan, TierDay};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::model::{Model, Tone};
use crate::view::{badge, bold, dim, panel, style};

pub(crate) fn render(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let view = &model.approvals;
    let (Some(plans), Some(flywheel)) = (&view.plans, &view.flywheel) else {
        frame.render_widget(
            Paragraph::new("Asking the appliance what waits for your decision…")
                .block(panel("Approvals")),
            area,
        );
        return;
    };
    let plan_rows = u16::try_from(plans.len().max(1)).unwrap_or(u16::MAX);
    let [plans_area, patterns_area, tiers_area] = Layout::vertical([
        // The rows, their header, two lines of why, the border.
        Constraint::Length(plan_rows.saturating_add(5).min(area.height / 2)),
        Constraint::Fill(1),
        Constraint::Length(3),
    ])
    .areas(area);
    let selected = view.selected;
    render_plans(plans, selected, frame, plans_area);
    let pattern_selected = selected.checked_sub(plans.len());
    render_patterns(&flywheel.patterns, pattern_selected, frame, patterns_area);
    frame.render_widget(
        Paragraph::new(tiers_line(&flywheel.tiers))
            .wrap(Wrap { trim: true })
            .block(panel("Who fixed problems")),
        tiers_area,
    );
}

fn render_plans(plans: &[L2Plan], selected: usize, frame: &mut Frame<'_>, area: Rect) {
    if plans.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(badge(Tone::Good, "No fix waits for your OK.")),
                Line::styled(
                    "When the assistant proposes a fix that changes a computer in a way a person must allow, it shows here.",
                    dim(),
                ),
            ])
            .wrap(Wrap { trim: true })
            .block(panel("Fixes waiting for your OK")),
            area,
        );
        return;
    }
    let rows: Vec<Row<'_>> = plans
        .iter()
        .map(|plan| {
            Row::new(vec![
                Cell::from(plan.target.clone()),
                Cell::from(plan.check.clone()),
                Cell::from(plan.runbook.clone()),
                Cell::from(format!("{:.0} %", plan.confidence * 100.0)),
            ])
        })
        .collect();
    let title = format!(
        "Fixes waiting for your OK — {} (A: run it now, X: reject)",
        plans.len()
    );
    let block = panel(&title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let table_height = u16::try_from(plans.len() + 1).unwrap_or(u16::MAX);
    let [table_area, why_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Fill(1)]).areas(inner);
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["Computer", "Problem", "Fix", "Sure"]).style(bold()))
    .row_highlight_style(style(Tone::Info).add_modifier(Modifier::REVERSED))
    .highlight_symbol("▸ ");
    let shown = selected.min(plans.len() - 1);
    let mut state = TableState::default().with_selected((selected < plans.len()).then_some(shown));
    frame.render_stateful_widget(table, table_area, &mut state);
    // Why the assistant proposes the selected fix (the first one while a learned fix is selected).
    let plan = &plans[shown];
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("Why ({}): ", plan.target), dim()),
            Span::raw(plan.rationale.clone()),
        ]))
        .wrap(Wrap { trim: true }),
        why_area,
    );
}

fn render_patterns(
    patterns: &[FlywheelPattern],
    selected: Option<usize>,
    frame: &mut Frame<'_>,
    area: Rect,
) {
    if patterns.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "None yet. A fix the assistant made that keeps working (5 times on 2 computers) is proposed here to become automatic.",
                dim(),
            ))
            .wrap(Wrap { trim: true })
            .block(panel("Learned fixes")),
            area,
        );
        return;
    }
    let rows: Vec<Row<'_>> = patterns
        .iter()
        .map(|pattern| {
            let (tone, word) = standing(pattern);
            Row::new(vec![
                Cell::from(pattern.check.clone()),
                Cell::from(pattern.runbook.clone()),
                Cell::from(format!(
                    "{} of {} on {} computer{}",
                    pattern.successes,
                    pattern.attempts,
                    pattern.hosts,
                    if pattern.hosts == 1 { "" } else { "s" }
                )),
                Cell::from(badge(tone, word)),
            ])
        })
        .collect();
    let n_ready = patterns.iter().filter(|p| p.standing == "proposed").count();
    let title = if n_ready == 0 {
        "Learned fixes".to_owned()
    } else {
        format!("Learned fixes — {n_ready} ready to become automatic (A: approve, X: reject)")
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(26),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["Problem", "Fix", "Worked", "State"]).style(bold()))
    .row_highlight_style(style(Tone::Info).add_modifier(Modifier::REVERSED))
    .highlight_symbol("▸ ")
    .block(panel(&title));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// A pattern's standing in plain words.
fn standing(pattern: &FlywheelPattern) -> (Tone, &'static str) {
    match pattern.standing.as_str() {
        "proposed" => (Tone::Attention, "ready for your OK"),
        "promoted" if pattern.in_effect => (Tone::Good, "automatic"),
        "promoted" => (Tone::Info, "approved, automatic after a restart"),
        "demoted" => (Tone::Problem, "stopped: it stopped working"),
        "rejected" => (Tone::Info, "rejected"),
        _ => (Tone::Info, "learning"),
    }
}

/// Shares of the fixes over all days the log holds.
fn tiers_line(days: &[TierDay]) -> Line<'static> {
    let (l1, l2, l3) = days.iter().fold((0, 0, 0), |(a, b, c), day| {
        (a + day.l1, b + day.l2, c + day.l3)
    });
    let total = l1 + l2 + l3;
    if total == 0 {
        return Line::styled("Nothing was fixed or handed to a person yet.", dim());
    }
    let share = |n: u64| n * 100 / total;
    Line::raw(format!(
        "Automatic {l1} ({} %) · by the assistant {l2} ({} %) · by a person {l3} ({} %)",
        share(l1),
        share(l2),
        share(l3)
    ))
}
