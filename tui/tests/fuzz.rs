//! Random key sequences, daemon answers (or a daemon that vanished) and terminal sizes through
//! keymap, update and view: the console never panics and always draws something.

mod common;

use std::collections::VecDeque;

use osiris_console::action::Action;
use osiris_console::fixture::{self, Recorded};
use osiris_console::keymap;
use osiris_console::model::Model;
use osiris_console::runtime::execute;
use osiris_console::update::{Command, update};
use proptest::prelude::*;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone)]
enum Step {
    Key(KeyEvent),
    /// Answer every request sent so far, from a working or a stopped daemon.
    Answer {
        down: bool,
    },
    Resize(u16, u16),
    Tick,
    /// The console's clock moves on (the idle lock may close it).
    Clock(u64),
}

fn key() -> impl Strategy<Value = KeyEvent> {
    let code = prop_oneof![
        4 => proptest::char::range(' ', '~').prop_map(KeyCode::Char),
        1 => proptest::char::any().prop_map(KeyCode::Char),
        1 => (1u8..=12).prop_map(KeyCode::F),
        1 => proptest::sample::select(vec![
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Backspace,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::Delete,
        ]),
    ];
    let modifiers = prop_oneof![
        8 => Just(KeyModifiers::NONE),
        1 => Just(KeyModifiers::SHIFT),
        1 => Just(KeyModifiers::ALT),
    ];
    (code, modifiers).prop_map(|(code, modifiers)| KeyEvent::new(code, modifiers))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => key().prop_map(Step::Key),
        2 => any::<bool>().prop_map(|down| Step::Answer { down }),
        1 => (1u16..=200, 1u16..=70).prop_map(|(w, h)| Step::Resize(w, h)),
        1 => Just(Step::Tick),
        1 => (0u64..2000).prop_map(Step::Clock),
    ]
}

fn start(kind: u8, size: (u16, u16)) -> Model {
    match kind {
        0 => fixture::loaded_model(size),
        1 => common::wizard_start(size),
        _ => Model::new(size),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_keys_and_sizes_never_panic(
        kind in 0u8..3,
        width in 1u16..=200,
        height in 1u16..=70,
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let mut model = start(kind, (width, height));
        let mut size = (width, height);
        let mut pending: VecDeque<Command> = VecDeque::new();
        for step in steps {
            let actions: Vec<Action> = match step {
                Step::Key(key) => keymap::action_for(&model, key).into_iter().collect(),
                Step::Answer { down } => {
                    let daemon = Recorded { down, ..Recorded::default() };
                    pending
                        .drain(..)
                        .map(|command| match command {
                            Command::Api(call) => execute(&daemon, call),
                            Command::FindUsb => Action::UsbFound(Some("/media/usb".into())),
                        })
                        .collect()
                }
                Step::Resize(w, h) => {
                    size = (w, h);
                    vec![Action::Resize(w, h)]
                }
                Step::Tick => vec![Action::Tick],
                Step::Clock(secs) => vec![Action::Clock(std::time::Duration::from_secs(secs))],
            };
            for action in actions {
                pending.extend(update(&mut model, action));
            }
            let text = common::screen_text(&model, size.0, size.1);
            prop_assert!(!text.trim().is_empty(), "blank screen at {size:?}");
            if model.quit {
                break;
            }
        }
    }
}
