//! Helpers shared by the console's tests: driving the model with actions and rendering it.

#![allow(dead_code, unreachable_pub)]

pub mod tmux;

use osiris_console::action::Action;
use osiris_console::bench::ok;
use osiris_console::fixture;
use osiris_console::model::{FieldId, Focusable, Model, WizardStep};
use osiris_console::update::{Command, update};
use osiris_console::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Applies actions in order and returns every command they asked for.
pub fn drive(model: &mut Model, actions: impl IntoIterator<Item = Action>) -> Vec<Command> {
    actions
        .into_iter()
        .flat_map(|action| update(model, action))
        .collect()
}

/// Renders the model at `width`×`height`.
pub fn render(model: &Model, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = ok(Terminal::new(TestBackend::new(width, height)));
    ok(terminal.draw(|frame| view::render(model, frame)));
    terminal
}

/// The rendered screen as plain text, one line per row.
pub fn screen_text(model: &Model, width: u16, height: u16) -> String {
    let terminal = render(model, width, height);
    let buffer = terminal.backend().buffer();
    let mut res = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            res.push_str(buffer[(x, y)].symbol());
        }
        res.push('\n');
    }
    res
}

/// Types text as key actions.
pub fn typed(text: &str) -> Vec<Action> {
    text.chars().map(Action::Input).collect()
}

/// A new appliance showing the wizard's first step with the interfaces loaded.
pub fn wizard_start(size: (u16, u16)) -> Model {
    let mut model = Model::new(size);
    drive(
        &mut model,
        [
            Action::StatusLoaded(Ok(fixture::fresh_status())),
            Action::SetupLoaded(Ok(fixture::setup_state())),
        ],
    );
    model
}

/// The wizard at `step`, every earlier step saved (or skipped) as a user would.
pub fn wizard_at(step: WizardStep, size: (u16, u16)) -> Model {
    let mut model = wizard_start(size);
    while model.wizard.step != step {
        let commands = drive(&mut model, [Action::Submit]);
        if !commands.is_empty() {
            drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);
        }
    }
    model
}

/// Moves the wizard's focus to `field` with Tab.
pub fn focus(model: &mut Model, field: FieldId) {
    for _ in 0..model.wizard.focusables().len() {
        if model.wizard.focused() == Some(Focusable::Field(field)) {
            return;
        }
        drive(model, [Action::NextField]);
    }
    panic!("{field:?} is not on step {:?}", model.wizard.step);
}
