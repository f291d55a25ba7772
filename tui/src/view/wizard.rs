//! The first-boot wizard: one step per screen, fields with inline hints, the claim QR code and
//! the first scan's progress.

use api::{CredentialSlot, CycleKind, NetworkMode};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::{Connection, FieldId, FinishState, Focusable, Model, Tone, WizardStep};
use crate::validate;
use crate::view::{badge, bold, dim, format, home, panel, qr, style};

pub(crate) fn render(model: &Model, frame: &mut Frame<'_>, header: Rect, body: Rect) {
    let step = model.wizard.step;
    render_header(model, frame, header);
    let mut lines: Vec<Line<'static>> = intro(model)
        .into_iter()
        .map(|text| Line::raw(text.to_owned()))
        .collect();
    lines.push(Line::raw(""));
    if step == WizardStep::Claim {
        lines.extend(claim_lines(model));
    }
    let qr = if step == WizardStep::Claim {
        qr_lines(model)
    } else {
        Vec::new()
    };
    let qr_width = qr.first().map_or(0, |l| l.width() as u16);
    let qr_fits =
        !qr.is_empty() && qr_width + 40 <= body.width && qr.len() as u16 + 2 <= body.height;
    let content_width = if qr_fits {
        body.width.saturating_sub(qr_width + 6)
    } else {
        body.width.saturating_sub(2)
    };
    // Hints sit under the field's text when there is room, else just indented.
    let indent = if content_width >= 22 + 56 { 22 } else { 4 };
    lines.extend(step_lines(model, indent));
    lines.extend(status_lines(model));
    let block = panel(step.title());
    if step == WizardStep::Claim {
        if qr_fits {
            let [left, right] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Length(qr_width + 4)])
                    .areas(body);
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block),
                left,
            );
            frame.render_widget(Paragraph::new(qr).block(panel("Scan me")), right);
            return;
        }
        lines.push(Line::styled(
            "(Make the window bigger to see the QR code.)",
            dim(),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        body,
    );
}

/// The title line, the connection badge and the step with its progress dots.
fn render_header(model: &Model, frame: &mut Frame<'_>, header: Rect) {
    let step = model.wizard.step;
    let mut dots = String::new();
    for other in WizardStep::ALL {
        dots.push(if other.number() <= step.number() {
            '●'
        } else {
            '○'
        });
    }
    let connection = match &model.connection {
        Connection::Down(message) => badge(Tone::Problem, message),
        Connection::Connecting => badge(Tone::Info, "Connecting to the appliance service…"),
        Connection::Up => Span::raw(""),
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(" OsirisCare ", bold().add_modifier(Modifier::REVERSED)),
                Span::raw(" First-time setup  "),
                connection,
            ]),
            Line::from(vec![
                Span::styled(
                    format!(
                        " Step {} of {} — {}",
                        step.number(),
                        WizardStep::ALL.len(),
                        step.title()
                    ),
                    bold().fg(Color::Indexed(39)),
                ),
                Span::styled(format!("   {dots}"), dim()),
            ]),
        ]),
        header,
    );
}

/// The site code, its web address and the claim, on the claim step.
fn claim_lines(model: &Model) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let Some(setup) = &model.setup else {
        return lines;
    };
    let claim = &setup.claim;
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<20}", "Site code"), dim()),
        Span::styled(claim.code.clone(), bold().fg(Color::Indexed(39))),
    ]));
    lines.push(Line::styled("  Web address", dim()));
    lines.push(Line::raw(format!("  {}", claim.url)));
    if let Some(code) = &claim.claimed_with {
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(22)),
            badge(Tone::Good, &format!("Claimed with {code}")),
        ]));
    }
    lines.push(Line::raw(""));
    lines
}

/// The step's fields (with their hints) and buttons.
fn step_lines(model: &Model, indent: usize) -> Vec<Line<'static>> {
    let wizard = &model.wizard;
    let mut lines = Vec::new();
    let n_interfaces = model.setup.as_ref().map_or(0, |s| s.interfaces.len());
    let focused = wizard.focused();
    for focusable in wizard.focusables() {
        let is_focused = focused == Some(focusable);
        match focusable {
            Focusable::Field(field) => {
                lines.push(field_line(model, field, is_focused));
                if let Some(hint) = wizard.visible_hint(field, n_interfaces) {
                    lines.push(Line::from(vec![
                        Span::raw(" ".repeat(indent)),
                        Span::styled(format!("! {hint}"), style(Tone::Attention)),
                    ]));
                }
                if field == FieldId::Timezone && is_focused {
                    let suggestions = validate::timezone_suggestions(wizard.value(field), 4);
                    if !suggestions.is_empty() {
                        lines.push(Line::styled(
                            format!("{}Known: {}", " ".repeat(indent), suggestions.join(", ")),
                            dim(),
                        ));
                    }
                }
            }
            Focusable::TestConnection => {
                lines.push(Line::raw(""));
                lines.push(button("Test connection", is_focused));
                if let Some(test) = &wizard.directory_test {
                    let tone = if test.ok { Tone::Good } else { Tone::Problem };
                    lines.push(Line::styled(
                        format!("{} {}", super::symbol(tone), test.message),
                        style(tone).add_modifier(Modifier::BOLD),
                    ));
                    if let Some(detail) = &test.detail {
                        lines.push(Line::styled(format!("  {detail}"), dim()));
                    }
                }
            }
            Focusable::RunFirstScan => {
                lines.extend(finish_summary(model));
                lines.push(Line::raw(""));
                if wizard.finish == FinishState::NotStarted {
                    lines.push(button("Run first scan", is_focused));
                }
            }
        }
    }
    lines
}

/// The first scan's progress, what is being saved, and why the last save failed.
fn status_lines(model: &Model) -> Vec<Line<'static>> {
    let wizard = &model.wizard;
    let mut lines = Vec::new();
    if let FinishState::Scanning { .. } = wizard.finish {
        lines.extend(scan_progress(model));
    }
    if let Some(busy) = &wizard.busy {
        lines.push(Line::raw(""));
        lines.push(Line::from(badge(Tone::Info, busy)));
    }
    if let Some(error) = &wizard.error {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            badge(Tone::Problem, "Not saved:"),
            Span::styled(format!(" {error}"), style(Tone::Problem)),
        ]));
    }
    lines
}

fn intro(model: &Model) -> Vec<&'static str> {
    let saved = |slot: CredentialSlot| {
        model
            .setup
            .as_ref()
            .is_some_and(|s| s.credentials.contains(&slot))
    };
    match model.wizard.step {
        WizardStep::Network => vec![
            "How does the appliance join your office network?",
            "Most offices get addresses automatically (DHCP). Choose a fixed address only if your IT partner asks.",
        ],
        WizardStep::Claim => vec![
            "Your IT partner links this appliance to your practice.",
            "Read them the code below, or let them scan the QR code with their phone.",
            "If they gave you a claim code, type it here; otherwise just press Enter.",
        ],
        WizardStep::Directory => vec![
            "The appliance reads the list of office computers from Active Directory.",
            "Your IT partner gives you these details. Leave everything empty to skip this step.",
        ],
        WizardStep::Windows if saved(CredentialSlot::Windows) => vec![
            "The account the appliance uses to check Windows servers and workstations.",
            "✔ An account is already saved. Leave both fields empty to keep it.",
        ],
        WizardStep::Windows => vec![
            "The account the appliance uses to check Windows servers and workstations.",
            "Leave both fields empty to skip (Windows computers are then not checked).",
        ],
        WizardStep::Linux if saved(CredentialSlot::Linux) => vec![
            "The account the appliance uses to check Linux machines.",
            "✔ An account is already saved. Leave both fields empty to keep it.",
        ],
        WizardStep::Linux => vec![
            "The account the appliance uses to check Linux machines.",
            "Leave both fields empty to skip if the office has none.",
        ],
        WizardStep::Timezone => {
            vec!["Which time zone is the office in? Reports and schedules use it."]
        }
        WizardStep::Pin if model.setup.as_ref().is_some_and(|s| s.pin_set) => vec![
            "A PIN locks this console when nobody uses it, so a passer-by cannot pause fixing or copy evidence.",
            "✔ A PIN is already set. Leave both fields empty to keep it.",
        ],
        WizardStep::Pin => vec![
            "A PIN locks this console when nobody uses it, so a passer-by cannot pause fixing or copy evidence.",
            "Choose 4 to 12 digits and type them twice. Leave both empty to skip (not recommended).",
        ],
        WizardStep::Finish => {
            vec!["Everything is set. The appliance now checks every device for the first time."]
        }
    }
}

fn field_line(model: &Model, field: FieldId, focused: bool) -> Line<'static> {
    let wizard = &model.wizard;
    let marker = if focused { "▸ " } else { "  " };
    let label = Span::styled(
        format!("{marker}{:<20}", field.label()),
        if focused { bold() } else { Style::new() },
    );
    let value_style = if focused {
        bold().fg(Color::Indexed(39))
    } else {
        Style::new()
    };
    let value = match field {
        FieldId::Interface => {
            let interfaces = model
                .setup
                .as_ref()
                .map(|s| s.interfaces.as_slice())
                .unwrap_or_default();
            match interfaces.get(wizard.interface_idx) {
                Some(interface) => {
                    let link = if interface.up {
                        "connected"
                    } else {
                        "no cable"
                    };
                    let addresses = if interface.addresses.is_empty() {
                        "no address yet".to_owned()
                    } else {
                        interface.addresses.join(", ")
                    };
                    let more = if interfaces.len() > 1 {
                        format!("  ({} of {})", wizard.interface_idx + 1, interfaces.len())
                    } else {
                        String::new()
                    };
                    format!("◂ {} — {link}, {addresses} ▸{more}", interface.name)
                }
                None => "(looking for network ports…)".into(),
            }
        }
        FieldId::Mode => match wizard.mode {
            NetworkMode::Dhcp => "◂ Automatic (DHCP) ▸".into(),
            NetworkMode::Static => "◂ Fixed address ▸".into(),
        },
        _ => {
            let text = wizard.value(field);
            let shown = if field.is_secret() {
                "•".repeat(text.chars().count())
            } else {
                text.to_owned()
            };
            let cursor = if focused { "█" } else { "" };
            let placeholder = if text.is_empty() && !focused {
                placeholder(field)
            } else {
                ""
            };
            if placeholder.is_empty() {
                format!("{shown}{cursor}")
            } else {
                return Line::from(vec![label, Span::styled(placeholder.to_owned(), dim())]);
            }
        }
    };
    Line::from(vec![label, Span::styled(value, value_style)])
}

fn placeholder(field: FieldId) -> &'static str {
    match field {
        FieldId::Address => "e.g. 192.168.1.20/24",
        FieldId::Gateway => "e.g. 192.168.1.1",
        FieldId::Dns => "e.g. 192.168.1.1, 1.1.1.1",
        FieldId::ClaimCode => "(optional)",
        FieldId::Domain => "e.g. clinic.local",
        FieldId::DomainController => "(optional: found automatically)",
        FieldId::BindUser => "e.g. scanner@clinic.local",
        FieldId::WindowsUser => "e.g. CLINIC\\osiris",
        FieldId::LinuxUser => "e.g. osiris",
        FieldId::Timezone => "e.g. America/Chicago",
        _ => "",
    }
}

fn button(text: &str, focused: bool) -> Line<'static> {
    if focused {
        Line::from(vec![
            Span::styled("▸ ", bold()),
            Span::styled(
                format!("[ {text} ]"),
                bold()
                    .fg(Color::Indexed(39))
                    .add_modifier(Modifier::REVERSED),
            ),
            Span::styled("  press Enter", dim()),
        ])
    } else {
        Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("[ {text} ]"), bold()),
        ])
    }
}

fn finish_summary(model: &Model) -> Vec<Line<'static>> {
    let Some(setup) = &model.setup else {
        return vec![Line::styled(
            "(The saved settings are not known yet.)",
            dim(),
        )];
    };
    let network = match &setup.network {
        Some(n) if n.mode == NetworkMode::Static => format!(
            "{}: fixed address {}",
            n.interface,
            n.address.as_deref().unwrap_or("?")
        ),
        Some(n) => format!("{}: automatic (DHCP)", n.interface),
        None => "automatic (DHCP)".into(),
    };
    let claim = match &setup.claim.claimed_with {
        Some(code) => format!("claimed with {code}"),
        None => format!("code {} (your partner claims it)", setup.claim.code),
    };
    let directory = setup
        .directory
        .as_ref()
        .map(|d| format!("{} as {}", d.domain, d.bind_user))
        .unwrap_or_else(|| "skipped".into());
    let slot = |slot: CredentialSlot| {
        if setup.credentials.contains(&slot) {
            badge(Tone::Good, "saved")
        } else {
            Span::styled("skipped", dim())
        }
    };
    let row = |label: &str, value: Vec<Span<'static>>| {
        let mut spans = vec![Span::styled(format!("  {label:<20}"), dim())];
        spans.extend(value);
        Line::from(spans)
    };
    vec![
        row("Network", vec![Span::raw(network)]),
        row("Site claim", vec![Span::raw(claim)]),
        row("Active Directory", vec![Span::raw(directory)]),
        row("Windows account", vec![slot(CredentialSlot::Windows)]),
        row("Linux account", vec![slot(CredentialSlot::Linux)]),
        row("Time zone", vec![Span::raw(setup.timezone.clone())]),
        row(
            "Console PIN",
            vec![if setup.pin_set {
                badge(Tone::Good, "set")
            } else {
                badge(Tone::Attention, "not set: the console never locks")
            }],
        ),
    ]
}

fn scan_progress(model: &Model) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::raw(""),
        Line::from(badge(
            Tone::Info,
            "Checking your devices for the first time… This can take a few minutes.",
        )),
    ];
    if let Some(status) = &model.status {
        for cycle in status
            .cycles
            .iter()
            .filter(|c| c.enabled && matches!(c.kind, CycleKind::ServerScan | CycleKind::Discovery))
        {
            let state = if cycle.running {
                let since = cycle
                    .last_started_at
                    .map(|at| format!(" (started {})", format::ago(status.now, at)))
                    .unwrap_or_default();
                format!("running{since}")
            } else {
                cycle
                    .last_outcome
                    .clone()
                    .unwrap_or_else(|| "waiting".into())
            };
            lines.push(Line::raw(format!(
                "  {:<20}{state}",
                home::cycle_name(cycle.kind)
            )));
        }
        lines.push(Line::raw(format!(
            "  {:<20}{} of {}",
            "Devices checked", status.devices.checked, status.devices.total
        )));
    }
    lines.push(Line::styled(
        "The home screen opens by itself when the scan is done.",
        dim(),
    ));
    lines
}

/// The claim URL as a QR code (level L keeps a typical claim URL at version 3, 29 modules, which
/// fits 80×24).
fn qr_lines(model: &Model) -> Vec<Line<'static>> {
    model
        .setup
        .as_ref()
        .map(|s| qr::lines(&s.claim.url))
        .unwrap_or_default()
}
