//! QR codes drawn with half-block characters, for the claim step and enrollment tokens.

use ratatui::style::{Color, Style};
use ratatui::text::Line;

/// `data` as a QR code in half-block characters (two modules per cell, one above the other, so
/// modules are square on a usual terminal font), light modules drawn, with a quiet zone of two
/// modules, in explicit black and white so it scans on any terminal theme. Error correction is
/// level L, which keeps the code as small as possible. Empty when `data` is empty or too long.
pub(crate) fn lines(data: &str) -> Vec<Line<'static>> {
    if data.is_empty() {
        return Vec::new();
    }
    let Ok(code) = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L)
    else {
        return Vec::new();
    };
    let width = code.width();
    let colors = code.to_colors();
    const QUIET: usize = 2;
    let size = width + 2 * QUIET;
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET || y < QUIET || x >= width + QUIET || y >= width + QUIET {
            return true;
        }
        colors[(y - QUIET) * width + (x - QUIET)] == qrcode::Color::Light
    };
    let qr_style = Style::new().fg(Color::White).bg(Color::Black);
    (0..size)
        .step_by(2)
        .map(|y| {
            let row: String = (0..size)
                .map(|x| {
                    let top = light(x, y);
                    let bottom = y + 1 >= size || light(x, y + 1);
                    match (top, bottom) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect();
            Line::styled(row, qr_style)
        })
        .collect()
}
