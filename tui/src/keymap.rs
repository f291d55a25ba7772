//! The one place where keys become actions, and the footer's list of the keys that work now.

use api::DeviceClass;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action::Action;
use crate::model::{FinishState, Focusable, Modal, Model, Screen};

/// The action a key means in the model's current context, if any.
pub fn action_for(model: &Model, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::ForceQuitRequest);
    }
    if locked(model) {
        return text_key(key.code);
    }
    match &model.modal {
        Some(Modal::Prompt(_)) => return text_key(key.code),
        Some(Modal::TokenForm(_)) => {
            return match key.code {
                KeyCode::Tab | KeyCode::Down => Some(Action::NextField),
                KeyCode::BackTab | KeyCode::Up => Some(Action::PreviousField),
                code => text_key(code),
            };
        }
        Some(Modal::Confirm(_)) => {
            return match key.code {
                KeyCode::Enter | KeyCode::Char('y' | 'Y') => Some(Action::Submit),
                KeyCode::Esc | KeyCode::Char('n' | 'N') => Some(Action::Back),
                _ => None,
            };
        }
        Some(Modal::Update) => {
            return match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('u' | 'U' | 'q' | 'Q') => {
                    Some(Action::Back)
                }
                _ => None,
            };
        }
        Some(Modal::Help | Modal::Working { .. }) => {
            return matches!(
                key.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?' | 'q' | 'Q')
            )
            .then_some(Action::Back);
        }
        None => {}
    }
    if model.wizard_active {
        return wizard_key(model, key.code);
    }
    if model.screen == Screen::Devices && model.devices_view.searching {
        return match key.code {
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            code => text_key(code),
        };
    }
    screen_key(model, key.code)
}

/// The keys that work now, as (key, what it does), for the footer.
pub fn hints(model: &Model) -> Vec<(&'static str, &'static str)> {
    if locked(model) {
        return vec![
            ("0-9", "PIN"),
            ("Enter", "Unlock"),
            ("Esc", "Clear"),
            ("Ctrl-C", "Quit"),
        ];
    }
    match &model.modal {
        Some(Modal::Prompt(_)) => return vec![("Enter", "OK"), ("Esc", "Cancel")],
        Some(Modal::TokenForm(_)) => {
            return vec![
                ("Tab", "Other field"),
                ("Enter", "Make the token"),
                ("Esc", "Cancel"),
            ];
        }
        Some(Modal::Confirm(_)) => return vec![("Enter/Y", "Yes"), ("Esc/N", "No")],
        Some(Modal::Update | Modal::Help | Modal::Working { .. }) => {
            return vec![("Esc", "Close")];
        }
        None => {}
    }
    if model.wizard_active {
        if model.wizard.busy.is_some() || model.wizard.finish != FinishState::NotStarted {
            return vec![("Ctrl-C", "Quit")];
        }
        let mut res = vec![("Tab/↓", "Next field"), ("Shift-Tab/↑", "Previous")];
        match model.wizard.focused() {
            Some(Focusable::Field(field)) if field.is_choice() => res.push(("←/→", "Choose")),
            Some(Focusable::TestConnection) => res.push(("Enter", "Test connection")),
            Some(Focusable::RunFirstScan) => res.push(("Enter", "Run first scan")),
            _ => {}
        }
        if !matches!(
            model.wizard.focused(),
            Some(Focusable::TestConnection | Focusable::RunFirstScan)
        ) {
            res.push(("Enter", "Save and continue"));
        }
        if model.wizard.step.number() > 1 {
            res.push(("Esc", "Back"));
        }
        return res;
    }
    if model.screen == Screen::Devices && model.devices_view.searching {
        return vec![("Enter", "Done"), ("Esc", "Clear search")];
    }
    let mut res = vec![("F1-F7/Tab", "Screens")];
    match model.screen {
        Screen::Home => {}
        Screen::Devices => {
            res.push(("1/2/3/0", "Servers/Workstations/Linux/All"));
            res.push(("/", "Search"));
        }
        Screen::Incidents => res.push(("A", "Acknowledge")),
        Screen::Healing => res.push(("↑/↓", "Scroll")),
        Screen::Evidence => {
            res.push(("E", "Export kit to USB"));
            res.push(("M", "Export monthly packet"));
        }
        Screen::Agents if model.agents_view.token.is_some() => {
            res.push(("Esc", "Done: hide the token"));
            res.push(("N", "Another token"));
        }
        Screen::Agents => {
            if model.agents.as_ref().is_none_or(|a| a.gateway.is_some()) {
                res.push(("N", "New enrollment token"));
            }
            if !model.agents().is_empty() {
                res.push(("X", "Revoke agent"));
            }
        }
        Screen::Approvals => {
            if !model.approvals.rows().is_empty() {
                res.push(("A", "Approve"));
                res.push(("X", "Reject"));
            }
        }
    }
    if matches!(model.connection, crate::model::Connection::Down(_)) {
        res.push(("R", "Retry"));
    }
    res.push(("S", "Scan now"));
    let paused = model.status.as_ref().is_some_and(|s| s.healing.paused);
    res.push((
        "P",
        if paused {
            "Resume fixing"
        } else {
            "Pause fixing"
        },
    ));
    res.push(("U", "Update"));
    res.push(("?", "Help"));
    res.push((
        "Q",
        if model.screen == Screen::Home {
            "Quit"
        } else {
            "Home"
        },
    ));
    res
}

/// The lock screen has the keys (a quit question on top of it keeps its own).
fn locked(model: &Model) -> bool {
    model.lock.locked && !matches!(model.modal, Some(Modal::Confirm(_)))
}

fn text_key(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Char(c) => Some(Action::Input(c)),
        KeyCode::Backspace => Some(Action::Backspace),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Esc => Some(Action::Back),
        _ => None,
    }
}

fn wizard_key(model: &Model, code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Tab | KeyCode::Down => Some(Action::NextField),
        KeyCode::BackTab | KeyCode::Up => Some(Action::PreviousField),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Left => Some(Action::Left),
        KeyCode::Right => Some(Action::Right),
        KeyCode::Backspace if model.text_input_active() => Some(Action::Backspace),
        KeyCode::Char(' ') if !model.text_input_active() => Some(Action::Right),
        KeyCode::Char(c) if model.text_input_active() => Some(Action::Input(c)),
        _ => None,
    }
}

fn screen_key(model: &Model, code: KeyCode) -> Option<Action> {
    let action = match code {
        KeyCode::F(n @ 1..=7) => Action::Goto(Screen::ALL[usize::from(n) - 1]),
        KeyCode::Tab => Action::NextScreen,
        KeyCode::BackTab => Action::PreviousScreen,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Enter => Action::Submit,
        KeyCode::Esc => Action::Back,
        KeyCode::Char(c) => return char_key(model, c),
        _ => return None,
    };
    Some(action)
}

fn char_key(model: &Model, c: char) -> Option<Action> {
    if model.screen == Screen::Devices {
        let filter = match c {
            '0' => Some(None),
            '1' => Some(Some(DeviceClass::WindowsServer)),
            '2' => Some(Some(DeviceClass::Workstation)),
            '3' => Some(Some(DeviceClass::Linux)),
            _ => None,
        };
        if let Some(filter) = filter {
            return Some(Action::Filter(filter));
        }
        if c == '/' {
            return Some(Action::StartSearch);
        }
    }
    let action = match c.to_ascii_lowercase() {
        digit @ '1'..='7' => Action::Goto(Screen::ALL[usize::from(digit as u8 - b'1')]),
        'h' => Action::Goto(Screen::Home),
        'd' => Action::Goto(Screen::Devices),
        'i' => Action::Goto(Screen::Incidents),
        'l' => Action::Goto(Screen::Healing),
        'v' => Action::Goto(Screen::Evidence),
        'g' => Action::Goto(Screen::Agents),
        'f' => Action::Goto(Screen::Approvals),
        'r' => Action::Retry,
        's' => Action::ScanNow,
        'p' => Action::ToggleHealing,
        'u' => Action::OpenUpdate,
        '?' => Action::Help,
        'q' => Action::Quit,
        'a' if model.screen == Screen::Incidents => Action::Acknowledge,
        'e' if model.screen == Screen::Evidence => Action::Export,
        'm' if model.screen == Screen::Evidence => Action::ExportPacket,
        'n' if model.screen == Screen::Agents => Action::NewAgentToken,
        'x' if model.screen == Screen::Agents => Action::RevokeAgent,
        'a' if model.screen == Screen::Approvals => Action::Approve,
        'x' if model.screen == Screen::Approvals => Action::Reject,
        _ => return None,
    };
    Some(action)
}
