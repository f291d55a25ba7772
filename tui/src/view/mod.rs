//! Pure rendering of the model into a frame: the frame around every screen, dialogs, and the
//! "window too small" message.

mod agents;
mod approvals;
pub mod format;
mod home;
mod lists;
mod qr;
mod wizard;

pub use agents::{enroll_command, enrollment_link};
pub use home::verdict;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::keymap;
use crate::model::{
    Confirm, Connection, Modal, Model, Notice, PromptPurpose, Screen, TokenField, TokenForm, Tone,
};

/// The smallest terminal the console lays out for.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Shown instead of the console when the terminal is smaller than [`MIN_SIZE`].
pub const TOO_SMALL: &str = "Make the window bigger (needs 80×24)";

/// Shown in the notice line while no console PIN is set.
pub const NO_PIN: &str = "No console PIN: anyone here can pause fixing. Set one at setup.";

/// Draws the whole console.
pub fn render(model: &Model, frame: &mut Frame<'_>) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = Paragraph::new(TOO_SMALL)
            .style(style(Tone::Attention))
            .wrap(Wrap { trim: true })
            .centered();
        let [_, middle, _] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(2),
            Constraint::Fill(1),
        ])
        .areas(area);
        frame.render_widget(text, middle);
        return;
    }
    let footer = footer_lines(model, area.width);
    let [header, body, notice, footer_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(footer.len() as u16),
    ])
    .areas(area);
    if model.lock.locked && !model.wizard_active {
        render_lock(model, frame, header, body);
    } else if model.wizard_active {
        wizard::render(model, frame, header, body);
    } else {
        render_header(model, frame, header);
        match model.screen {
            Screen::Home => home::render(model, frame, body),
            Screen::Devices => lists::devices(model, frame, body),
            Screen::Incidents => lists::incidents(model, frame, body),
            Screen::Healing => lists::healing(model, frame, body),
            Screen::Evidence => home::evidence(model, frame, body),
            Screen::Agents => agents::render(model, frame, body),
            Screen::Approvals => approvals::render(model, frame, body),
        }
    }
    // Without a PIN the console never locks: say so whenever nothing else is said.
    let no_pin = Notice {
        tone: Tone::Attention,
        text: NO_PIN.to_owned(),
    };
    let no_pin = (!model.wizard_active
        && model.status.as_ref().is_some_and(|s| s.setup_complete)
        && !model.pin_set())
    .then_some(&no_pin);
    if let Some(line) = model
        .notice
        .as_ref()
        .or(no_pin)
        .filter(|_| !model.lock.locked)
    {
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!(" {} ", symbol(line.tone)), style(line.tone)),
                Span::raw(line.text.as_str()),
            ])),
            notice,
        );
    }
    frame.render_widget(Paragraph::new(footer), footer_area);
    let modal = model
        .modal
        .as_ref()
        .filter(|modal| !model.lock.locked || matches!(modal, Modal::Confirm(_)));
    if let Some(modal) = modal {
        render_modal(model, modal, frame, area);
    }
}

/// The lock screen: no site data at all (not even the practice's name), the PIN as dots, and
/// the daemon's answer to the last one.
fn render_lock(model: &Model, frame: &mut Frame<'_>, header: Rect, body: Rect) {
    let connection = match &model.connection {
        Connection::Connecting => badge(Tone::Info, "Connecting…"),
        Connection::Up => badge(Tone::Good, "Service running"),
        Connection::Down(_) => badge(Tone::Problem, "Service not running"),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" OsirisCare ", bold().add_modifier(Modifier::REVERSED)),
            Span::raw("  "),
            connection,
        ])),
        header,
    );
    let lock = &model.lock;
    let mut lines = vec![
        Line::styled("This console is locked.", bold()),
        Line::raw(""),
        Line::raw("Type the console PIN and press Enter."),
        Line::raw(""),
        Line::from(vec![
            Span::raw("PIN  "),
            Span::styled(
                format!("{}█", "•".repeat(lock.pin.chars().count())),
                bold().fg(Color::Indexed(39)),
            ),
        ]),
    ];
    if lock.busy {
        lines.push(Line::raw(""));
        lines.push(Line::from(badge(Tone::Info, "Checking…")));
    } else if let Some(message) = &lock.message {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", symbol(message.tone)), style(message.tone)),
            Span::raw(message.text.clone()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Forgot the PIN? Your IT partner can set a new one.",
        dim(),
    ));
    let width = body.width.saturating_sub(4).min(72);
    let height = (wrapped_height(&lines, width.saturating_sub(4)) + 2).min(body.height);
    let rect = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + body.height.saturating_sub(height) / 2,
        width,
        height,
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel("Locked").padding(ratatui::widgets::Padding::horizontal(1))),
        rect,
    );
}

/// The symbol that goes with a tone: the word or symbol always carries the meaning, colour
/// only helps.
pub fn symbol(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => "✔",
        Tone::Info => "•",
        Tone::Attention => "!",
        Tone::Problem => "✖",
    }
}

/// Colour-blind-safe styles: blue for good, amber for attention, magenta for problems.
pub fn style(tone: Tone) -> Style {
    match tone {
        Tone::Good => Style::new().fg(Color::Indexed(39)),
        Tone::Info => Style::new(),
        Tone::Attention => Style::new()
            .fg(Color::Indexed(214))
            .add_modifier(Modifier::BOLD),
        Tone::Problem => Style::new()
            .fg(Color::Indexed(170))
            .add_modifier(Modifier::BOLD),
    }
}

/// "✔ OK"-style span: symbol and word, coloured.
pub fn badge(tone: Tone, word: &str) -> Span<'static> {
    Span::styled(format!("{} {word}", symbol(tone)), style(tone))
}

/// Dim text for secondary details.
pub fn dim() -> Style {
    Style::new().fg(Color::Indexed(245))
}

/// Bold text.
pub fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// A block with a rounded border and a title.
pub fn panel(title: &str) -> Block<'_> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(dim())
        .title(Span::styled(format!(" {title} "), bold()))
}

/// Rows that lines take when wrapped at `width` (an estimate by display width).
pub fn wrapped_height(lines: &[Line<'_>], width: u16) -> u16 {
    let width = width.max(1);
    lines
        .iter()
        .map(|line| (line.width() as u16).div_ceil(width).max(1))
        .sum()
}

fn render_header(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let site = model.status.as_ref().map(|s| s.site.as_str()).unwrap_or("");
    let connection = match &model.connection {
        Connection::Connecting => badge(Tone::Info, "Connecting…"),
        Connection::Up => badge(Tone::Good, "Service running"),
        Connection::Down(_) => badge(Tone::Problem, "Service not running"),
    };
    let title = Line::from(vec![
        Span::styled(" OsirisCare ", bold().add_modifier(Modifier::REVERSED)),
        Span::raw(format!(" {site}  ")),
        connection,
    ]);
    let mut tabs = vec![Span::raw(" ")];
    // Tabs are spaced apart when they fit (each tab's text is padded on both sides anyway); a
    // narrow terminal gets the digit keys (which work as well as F1-F7) and short titles.
    let n_tabs = Screen::ALL.len();
    let text_width: usize = Screen::ALL.iter().map(|s| s.title().len() + 5).sum();
    let spaced = 1 + text_width + n_tabs <= usize::from(area.width);
    let full = text_width < usize::from(area.width);
    for (idx, screen) in Screen::ALL.iter().enumerate() {
        let text = if full {
            format!(" F{} {} ", idx + 1, screen.title())
        } else {
            format!(" {} {} ", idx + 1, screen.short_title())
        };
        tabs.push(if *screen == model.screen {
            Span::styled(format!("[{}]", text.trim()), bold().fg(Color::Indexed(39)))
        } else {
            Span::styled(text, dim())
        });
        if spaced {
            tabs.push(Span::raw(" "));
        }
    }
    frame.render_widget(Paragraph::new(vec![title, Line::from(tabs)]), area);
}

fn footer_lines(model: &Model, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    for (key, label) in keymap::hints(model) {
        let len = key.chars().count() + label.chars().count() + 3;
        if used + len > usize::from(width) && !current.is_empty() {
            lines.push(Line::from(std::mem::take(&mut current)));
            used = 0;
        }
        current.push(Span::styled(
            format!(" {key} "),
            Style::new().add_modifier(Modifier::REVERSED),
        ));
        current.push(Span::raw(format!(" {label} ")));
        used += len + 1;
    }
    if !current.is_empty() {
        lines.push(Line::from(current));
    }
    lines.truncate(2);
    lines
}

fn render_modal(model: &Model, modal: &Modal, frame: &mut Frame<'_>, area: Rect) {
    let (title, text): (&str, Text<'_>) = match modal {
        Modal::Help => ("Help", help_text(model)),
        Modal::Confirm(confirm) => {
            let question = match confirm {
                Confirm::Quit => {
                    "Close the console? The appliance keeps working in the background.".to_owned()
                }
                Confirm::RevokeAgent(agent) => format!(
                    "Revoke the agent on {}? The appliance refuses it from now on and takes no more results from it. To check this computer again, it must be enrolled again with a new token.",
                    agent.hostname
                ),
                Confirm::Decide(decision) => decision_question(decision),
            };
            (
                "Please confirm",
                Text::from(vec![
                    Line::raw(question),
                    Line::raw(""),
                    Line::styled("Enter or Y = yes     Esc or N = no", bold()),
                ]),
            )
        }
        Modal::Prompt(prompt) => {
            let (title, question): (&str, String) = match &prompt.purpose {
                PromptPurpose::Name(_) => (
                    "Who are you?",
                    "Type your name. It is recorded with what you do here.".into(),
                ),
                PromptPurpose::HealingReason => {
                    let paused = model.status.as_ref().is_some_and(|s| s.healing.paused);
                    if paused {
                        (
                            "Resume automatic fixing",
                            "Why is it safe to fix problems again? (kept in the evidence log)"
                                .into(),
                        )
                    } else {
                        (
                            "Pause automatic fixing",
                            "Why pause? Problems are still found and shown, but not fixed. (kept in the evidence log)".into(),
                        )
                    }
                }
                PromptPurpose::ExportPath => (
                    "Export evidence kit",
                    "Plug in a USB stick. Folder to write the kit into:".into(),
                ),
                PromptPurpose::PacketExportPath(period) => (
                    "Export monthly packet",
                    format!(
                        "Plug in a USB stick. Folder to write the {period} compliance packet into:"
                    ),
                ),
                PromptPurpose::RevokeReason(agent) => (
                    "Revoke agent",
                    format!(
                        "Why revoke the agent on {}? (kept in the evidence log)",
                        agent.hostname
                    ),
                ),
            };
            let mut lines = vec![
                Line::raw(question),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("▸ ", bold()),
                    Span::styled(format!("{}█", prompt.value), bold()),
                ]),
            ];
            if let Some(hint) = &prompt.hint {
                lines.push(Line::raw(""));
                lines.push(Line::from(vec![
                    badge(Tone::Attention, ""),
                    Span::styled(hint.as_str(), style(Tone::Attention)),
                ]));
            }
            (title, Text::from(lines))
        }
        Modal::Update => ("Updates", update_text(model)),
        Modal::TokenForm(form) => ("New enrollment token", token_form_text(form)),
        Modal::Working { title, text, done } => {
            let status = match done {
                None => badge(Tone::Info, "Working…"),
                Some(Tone::Good) => badge(Tone::Good, "Done"),
                Some(tone) => badge(*tone, "Did not work"),
            };
            (
                title.as_str(),
                Text::from(vec![
                    Line::from(status),
                    Line::raw(""),
                    Line::raw(text.as_str()),
                ]),
            )
        }
    };
    let width = area.width.saturating_sub(8).min(76);
    let inner_width = width.saturating_sub(4).max(1);
    let n_lines: u16 = text
        .lines
        .iter()
        .map(|line| (line.width() as u16).div_ceil(inner_width).max(1))
        .sum();
    let height = (n_lines + 2).min(area.height.saturating_sub(2));
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            panel(title)
                .border_style(Style::new())
                .padding(ratatui::widgets::Padding::horizontal(1)),
        ),
        rect,
    );
}

/// The confirmation of a decision about a fix, in plain words.
fn decision_question(decision: &crate::model::Decision) -> String {
    use crate::model::DecisionItem;
    match (&decision.item, decision.approve) {
        (
            DecisionItem::Plan {
                target,
                check,
                runbook,
                ..
            },
            true,
        ) => format!(
            "Run fix {runbook} on {target} now for {check}? The appliance checks the problem again first, then fixes it, checks the fix and undoes it if it did not work. Your name is recorded as evidence."
        ),
        (DecisionItem::Plan { target, check, .. }, false) => format!(
            "Reject the proposed fix for {check} on {target}? Nothing is changed on the computer; the problem stays an incident. Your name is recorded as evidence."
        ),
        (DecisionItem::Pattern { check, .. }, true) => format!(
            "Let the appliance make this fix for {check} automatically from now on? It stops by itself if the fix stops working. Your name is recorded as evidence."
        ),
        (DecisionItem::Pattern { check, .. }, false) => format!(
            "Reject the learned fix for {check}? It will not be suggested again. Your name is recorded as evidence."
        ),
    }
}

fn help_text(model: &Model) -> Text<'static> {
    let (addresses, support) = model
        .status
        .as_ref()
        .map(|s| (s.health.addresses.join(", "), s.health.support_code.clone()))
        .unwrap_or_else(|| ("unknown (service not running)".into(), "unknown".into()));
    Text::from(vec![
        Line::from(vec![
            Span::raw("Appliance address: "),
            Span::styled(addresses, bold()),
        ]),
        Line::from(vec![
            Span::raw("Support code:      "),
            Span::styled(support, bold()),
        ]),
        Line::raw(""),
        Line::raw("Give these to your IT partner when you call them."),
        Line::raw(""),
        Line::raw("F1-F7 or Tab: screens   ↑/↓: move   S: scan now   P: pause/resume fixing"),
        Line::raw(
            "U: updates   E: export evidence, M: monthly packet (Evidence screen)   A: acknowledge (Incidents)",
        ),
        Line::raw("N: new enrollment token   X: revoke an agent (Agents screen)"),
        Line::raw("A: approve   X: reject a fix (Approvals screen)"),
        Line::raw("Q: quit (from Home)   Esc: close a window"),
    ])
}

fn token_form_text(form: &TokenForm) -> Text<'static> {
    let field = |field: TokenField, label: &str, value: &str, help: &str| {
        let focused = form.focus == field;
        let marker = if focused { "▸ " } else { "  " };
        let cursor = if focused && !form.selected { "█" } else { "" };
        Line::from(vec![
            Span::styled(
                format!("{marker}{label:<20}"),
                if focused { bold() } else { Style::new() },
            ),
            Span::styled(
                format!("{value}{cursor}"),
                match (focused, form.selected) {
                    (true, true) => bold()
                        .fg(Color::Indexed(39))
                        .add_modifier(Modifier::REVERSED),
                    (true, false) => bold().fg(Color::Indexed(39)),
                    (false, _) => Style::new(),
                },
            ),
            Span::styled(format!("  {help}"), dim()),
        ])
    };
    let mut lines = vec![
        Line::raw(
            "An agent on an office computer enrolls with a token. Anyone who has the token can enroll a computer, so make it for as few computers and as short a time as you need.",
        ),
        Line::raw(""),
        field(
            TokenField::Uses,
            "How many computers",
            &form.uses,
            "1 to 10,000",
        ),
        field(
            TokenField::ValidFor,
            "Valid for",
            &form.valid_for,
            "like 24h, 7d or 30m",
        ),
    ];
    if let Some(hint) = &form.hint {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            badge(Tone::Attention, ""),
            Span::styled(hint.clone(), style(Tone::Attention)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Enter = make the token     Tab = other field     Esc = cancel",
        bold(),
    ));
    Text::from(lines)
}

fn update_text(model: &Model) -> Text<'static> {
    let Some(status) = &model.status else {
        return Text::raw(
            "The update state is not known yet: the appliance service has not answered.",
        );
    };
    let update = &status.health.update;
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Running version: "),
            Span::styled(non_empty(&update.current), bold()),
        ]),
        Line::raw(format!("State: {}", format::update_state(update))),
    ];
    if let Some(detail) = &update.detail {
        lines.push(Line::styled(detail.clone(), dim()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw("Your IT partner applies and rolls back updates."));
    Text::from(lines)
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "unknown".into()
    } else {
        text.to_owned()
    }
}
