//! The agents screen: where agents connect (the gateway's address and CA pin), the enrolled
//! endpoint agents in plain words, and an enrollment token just made, as text and as a QR code
//! holding its enrollment link.

use api::{AgentToken, AgentView, AgentsState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::model::{Model, Tone};
use crate::update::{AGENTS_OFF, AGENTS_TURN_ON};
use crate::view::{badge, bold, dim, format, panel, qr, style, wrapped_height};

/// What the QR code of an enrollment token holds: one line,
/// `osiris-agent://enroll?appliance=HOST:PORT&ca-pin=sha256:HEX&token=TOKEN`, each value
/// percent-encoded (RFC 3986: letters, digits and `-._~:` stay as they are).
pub fn enrollment_link(token: &AgentToken) -> String {
    format!(
        "osiris-agent://enroll?appliance={}&ca-pin={}&token={}",
        percent_encode(&token.gateway),
        percent_encode(&token.ca_pin),
        percent_encode(&token.token)
    )
}

/// The command a technician runs on the computer (the token is read from a file, never from the
/// command line, like `osiris agent token create` prints it).
pub fn enroll_command(gateway: &str, ca_pin: &str) -> String {
    format!("osiris-agent enroll --appliance {gateway} --ca-pin {ca_pin} --token-file TOKEN_FILE")
}

pub(crate) fn render(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    if let Some(token) = &model.agents_view.token {
        render_token(model, &token.0, frame, area);
        return;
    }
    match &model.agents {
        None => frame.render_widget(
            Paragraph::new("Asking the appliance for its agents…").block(panel("Agents")),
            area,
        ),
        Some(AgentsState { gateway: None, .. }) => render_off(frame, area),
        Some(state) => render_list(model, state, frame, area),
    }
}

fn render_off(frame: &mut Frame<'_>, area: Rect) {
    let lines = vec![
        Line::from(badge(Tone::Info, AGENTS_OFF)),
        Line::raw(""),
        Line::raw(
            "An agent is a small program on an office computer: it checks the computer itself and sends the results here.",
        ),
        Line::raw(""),
        Line::raw(AGENTS_TURN_ON),
        Line::styled(
            "Until then the appliance checks computers over the network as before.",
            dim(),
        ),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel("Agents — off")),
        area,
    );
}

fn render_list(model: &Model, state: &AgentsState, frame: &mut Frame<'_>, area: Rect) {
    let now = model.now();
    let agents = &state.agents;
    let gateway = vec![
        Span::raw(" Agents connect to "),
        Span::styled(state.gateway.clone().unwrap_or_default(), bold()),
    ];
    let pin = vec![
        Span::raw(" CA pin "),
        Span::raw(state.ca_pin.clone().unwrap_or_else(|| "unknown".into())),
    ];
    // One line when it fits, else the pin on a line of its own.
    let one_line = Line::from([gateway.clone(), vec![Span::raw(" ·")], pin.clone()].concat());
    let header = if one_line.width() <= usize::from(area.width) {
        vec![one_line]
    } else {
        vec![Line::from(gateway), Line::from(pin)]
    };
    let [header_area, table_area, detail_area] = Layout::vertical([
        Constraint::Length(wrapped_height(&header, area.width)),
        Constraint::Fill(1),
        Constraint::Length(6),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(header).wrap(Wrap { trim: false }),
        header_area,
    );

    let n_connected = agents.iter().filter(|a| a.connected).count();
    let n_revoked = agents.iter().filter(|a| a.revoked_at.is_some()).count();
    let mut title = if agents.is_empty() {
        "Agents — none enrolled yet".to_owned()
    } else {
        format!(
            "Agents — {} enrolled, {n_connected} connected",
            agents.len() - n_revoked
        )
    };
    if n_revoked > 0 {
        title.push_str(&format!(", {n_revoked} revoked"));
    }
    let rows: Vec<Row<'_>> = agents
        .iter()
        .map(|agent| {
            let (tone, word) = agent_state(now, agent);
            Row::new(vec![
                Cell::from(agent.hostname.clone()),
                Cell::from(platform_word(&agent.platform)),
                Cell::from(badge(tone, &word)),
                Cell::from(agent.agent_version.clone()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(32),
            Constraint::Length(9),
        ],
    )
    .header(Row::new(["Computer", "System", "State", "Version"]).style(bold()))
    .row_highlight_style(style(Tone::Info).add_modifier(Modifier::REVERSED))
    .highlight_symbol("▸ ")
    .block(panel(&title));
    let mut state_widget =
        TableState::default().with_selected((!empty).then_some(model.agents_view.selected));
    frame.render_stateful_widget(table, table_area, &mut state_widget);

    let selected = agents.get(model.agents_view.selected);
    let detail = match selected {
        None => vec![Line::raw(
            "No agents enrolled yet. Press N to make an enrollment token, then enroll each computer with it.",
        )],
        Some(agent) => agent_details(now, agent),
    };
    let detail_title = selected
        .map(|a| format!("{} ({})", a.hostname, a.agent_id))
        .unwrap_or_else(|| "Details".into());
    frame.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .block(panel(&detail_title)),
        detail_area,
    );
}

fn render_token(model: &Model, token: &AgentToken, frame: &mut Frame<'_>, area: Rect) {
    let qr = qr::lines(&enrollment_link(token));
    let qr_width = qr.first().map_or(0, |l| l.width() as u16);
    let qr_height = qr.len() as u16;
    let qr_fits = !qr.is_empty() && qr_width + 40 <= area.width && qr_height + 2 <= area.height;
    let text_area = if qr_fits {
        let [left, right] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(qr_width + 4)]).areas(area);
        frame.render_widget(Paragraph::new(qr).block(panel("Scan me")), right);
        left
    } else {
        area
    };
    let inner_width = usize::from(text_area.width.saturating_sub(2));
    let computers = if token.uses == 1 {
        "1 computer".to_owned()
    } else {
        format!("{} computers", format::count(u64::from(token.uses)))
    };
    let validity = format::span(token.expires_at - model.now());
    let mut lines = vec![
        Line::from(badge(
            Tone::Good,
            &format!(
                "Token {} is ready: {computers} may enroll with it within {validity}.",
                token.id
            ),
        )),
        Line::raw(""),
    ];
    for (label, value) in [
        ("Token", &token.token),
        ("Appliance", &token.gateway),
        ("CA pin", &token.ca_pin),
    ] {
        // A value that does not fit beside its label goes on the next line, whole.
        if 12 + value.chars().count() <= inner_width {
            lines.push(Line::from(vec![
                Span::styled(format!("{label:<12}"), dim()),
                Span::styled(value.clone(), bold()),
            ]));
        } else {
            lines.push(Line::styled(label.to_owned(), dim()));
            lines.push(Line::styled(format!("  {value}"), bold()));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "On the computer, save the token in a file and run:",
    ));
    lines.push(Line::raw(format!(
        "  {}",
        enroll_command(&token.gateway, &token.ca_pin)
    )));
    // The terminal size that shows the code: the body's needs plus header, notice and footer.
    let (need_width, need_height) = (qr_width + 40, qr_height + 2 + 5);
    lines.push(if qr_fits {
        Line::raw("Or scan the QR code: it holds all three as one enrollment link.")
    } else {
        Line::styled(
            format!("(A window of at least {need_width}×{need_height} shows the QR code.)"),
            dim(),
        )
    });
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        badge(Tone::Attention, "Keep the token secret:"),
        Span::raw(" anyone who has it can enroll a computer."),
    ]));
    lines.push(Line::raw(
        "  It is shown only now; Esc or another screen hides it for good.",
    ));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel("New enrollment token")),
        text_area,
    );
}

/// An agent's state in plain words: connected, its last report, never reported, or revoked.
fn agent_state(now: i64, agent: &AgentView) -> (Tone, String) {
    if let Some(at) = agent.revoked_at {
        return (Tone::Info, format!("Revoked {}", format::ago(now, at)));
    }
    if agent.connected {
        return (Tone::Good, "Connected".into());
    }
    match agent.last_seen_at {
        // A computer switched off overnight is fine; one silent for more than a day is not.
        Some(at) => {
            let tone = if now - at > 86_400 {
                Tone::Attention
            } else {
                Tone::Info
            };
            (tone, format!("Last report {}", format::ago(now, at)))
        }
        None => (Tone::Attention, "Never reported".into()),
    }
}

fn agent_details(now: i64, agent: &AgentView) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw(format!(
        "{} · agent {} · enrolled {}",
        agent.os,
        agent.agent_version,
        format::ago(now, agent.enrolled_at)
    ))];
    if let Some(at) = agent.revoked_at {
        lines.push(Line::from(vec![
            badge(Tone::Info, &format!("Revoked {}:", format::ago(now, at))),
            Span::raw(
                " the appliance refuses it. To check this computer again, enroll it with a new token.",
            ),
        ]));
        return lines;
    }
    let mut results = format!("Results kept up to no. {}", format::count(agent.stored_seq));
    if agent.connected {
        results.push_str(&format!(
            " · {} waiting on the computer",
            format::count(agent.queue_items)
        ));
        let skew_secs = agent.clock_skew_ms.abs() / 1000;
        if skew_secs >= 5 {
            results.push_str(&format!(" · clock {skew_secs} s off"));
        }
    }
    lines.push(Line::raw(results));
    let expires_at = agent.certificate_expires_at;
    lines.push(if expires_at <= now {
        Line::from(vec![
            badge(Tone::Attention, "Its certificate has expired:"),
            Span::raw(" it cannot connect until it is enrolled again with a new token."),
        ])
    } else {
        Line::styled(
            format!(
                "Its certificate expires {}; the agent renews it while it is connected.",
                format::until(now, expires_at)
            ),
            dim(),
        )
    });
    lines
}

fn platform_word(platform: &str) -> &str {
    match platform.split('-').next() {
        Some("windows") => "Windows",
        Some("linux") => "Linux",
        _ => platform,
    }
}

fn percent_encode(text: &str) -> String {
    let mut res = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            res.push(char::from(byte));
        } else {
            res.push_str(&format!("%{byte:02X}"));
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_holds_the_gateway_pin_and_token_encoded() {
        let token = AgentToken {
            token: "osat_abc234".into(),
            id: "t-aaaa".into(),
            uses: 1,
            expires_at: 0,
            gateway: "[fd00::5]:7443".into(),
            ca_pin: "sha256:00ff".into(),
        };
        assert_eq!(
            enrollment_link(&token),
            "osiris-agent://enroll?appliance=%5Bfd00::5%5D:7443&ca-pin=sha256:00ff&token=osat_abc234"
        );
    }
}
