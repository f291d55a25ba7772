//! Timing of the first frame and of home-screen redraws, for `osiris-console --bench-startup`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::action::Action;
use crate::fixture;
use crate::model::Model;
use crate::update::update;
use crate::view;

/// Measured times.
#[derive(Debug, Clone)]
pub struct Report {
    /// From `started` to the first home frame (80×24) built from a recorded status.
    pub first_frame: Duration,
    /// Full redraws of the home screen at 160×48 (every cell written).
    pub redraws: usize,
    pub redraw_mean: Duration,
    pub redraw_max: Duration,
}

/// Renders the first frame from a recorded status, then `redraws` full home redraws.
pub fn run(started: Instant, redraws: usize) -> Report {
    let mut model = Model::new((80, 24));
    update(&mut model, Action::StatusLoaded(Ok(fixture::status())));
    let mut terminal = ok(Terminal::new(TestBackend::new(80, 24)));
    ok(terminal
        .draw(|frame| view::render(&model, frame))
        .map(|_| ()));
    let first_frame = started.elapsed();

    let model = fixture::loaded_model((160, 48));
    let mut terminal = ok(Terminal::new(TestBackend::new(160, 48)));
    let mut total = Duration::ZERO;
    let mut max = Duration::ZERO;
    for _ in 0..redraws {
        let start = Instant::now();
        ok(terminal.clear());
        ok(terminal
            .draw(|frame| view::render(&model, frame))
            .map(|_| ()));
        let took = start.elapsed();
        total += took;
        max = max.max(took);
    }
    Report {
        first_frame,
        redraws,
        redraw_mean: total / u32::try_from(redraws.max(1)).unwrap_or(u32::MAX),
        redraw_max: max,
    }
}

/// The value of a result that cannot fail (the test backend never errs).
pub fn ok<T>(res: Result<T, Infallible>) -> T {
    match res {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
