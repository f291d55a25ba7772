//! The compliance trend chart: an SVG drawn on the server from daily points (no chart library
//! in the browser), with a text summary for screen readers. Pure.

use maud::{Markup, html};

use crate::scope::TrendPoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// Days from `YYYY-MM-DD` to the Unix epoch day.
fn day_number(day: &str) -> Option<i64> {
    let date = time::Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(i64::from(date.to_julian_day()))
}

/// The chart of `points` over the `days` days ending `today` (`YYYY-MM-DD`): a line of the daily
/// values, gridlines at 0/50/90/100 %, the first and last day labelled. `label` names it
/// (`HIPAA compliance, last 90 days`).
pub fn trend(label: &str, points: &[TrendPoint], days: i64, today: &str) -> Markup {
    let end = day_number(today).unwrap_or(0);
    let start = end - days + 1;
    let x =
        |day: i64| LEFT + (day - start) as f64 * (WIDTH - LEFT - RIGHT) / (days - 1).max(1) as f64;
    let y = |permille: i64| {
        TOP + (1000 - permille.clamp(0, 1000)) as f64 * (HEIGHT - TOP - BOTTOM) / 1000.0
    };
    let plotted: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((day_number(&p.day)?, p.permille)))
        .filter(|(day, _)| (start..=end).contains(day))
        .map(|(day, permille)| (x(day), y(permille)))
        .collect();
    let line: String = plotted
        .iter()
        .map(|(px, py)| format!("{px:.1},{py:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let summary = match (points.first(), points.last()) {
        (Some(first), Some(last)) => format!(
            "{label}: {} on {}, {} on {} ({} days with reports)",
            super::percent(Some(first.permille)),
            first.day,
            super::percent(Some(last.permille)),
            last.day,
            points.len()
        ),
        _ => format!("{label}: no reports in this period"),
    };
    let first_day = time::Date::from_julian_day(i32::try_from(start).unwrap_or(0))
        .map(|d| d.to_string())
        .unwrap_or_default();
    html! {
        figure .chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) xmlns="http://www.w3.org/2000/svg" {
                title { (summary) }
                @for (permille, text) in [(1000, "100 %"), (900, "90 %"), (500, "50 %"), (0, "0 %")] {
                    line .grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(permille)) y2=(y(permille)) {}
                    text .axis x=(LEFT - 4.0) y=(y(permille) + 4.0) text-anchor="end" { (text) }
                }
                text .axis x=(LEFT) y=(HEIGHT - 6.0) data-volatile { (first_day) }
                text .axis x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" data-volatile { (today) }
                @if plotted.len() > 1 {
                    polyline .trend points=(line) fill="none" {}
                }
                @for (px, py) in &plotted {
                    circle .point cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="2.5" {}
                }
                @if plotted.is_empty() {
                    text .axis x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" { "No reports in this period" }
                }
            }
            figcaption { (label) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(day: &str, permille: i64) -> TrendPoint {
        TrendPoint {
            day: day.to_owned(),
            permille,
        }
    }

    #[test]
    fn points_land_where_their_day_and_value_say() {
        let svg = trend(
            "HIPAA compliance, last 90 days",
            &[point("2026-09-06", 500), point("2026-12-04", 1000)],
            90,
            "2026-12-04",
        )
        .into_string();
        // The first day sits on the left edge at mid height, the last on the right at the top.
        assert!(svg.contains(r#"points="44.0,82.0 632.0,10.0""#), "{svg}");
        assert!(svg.contains(
            "50.0\u{a0}% on 2026-09-06, 100.0\u{a0}% on 2026-12-04 (2 days with reports)"
        ));
        assert!(svg.contains("data-volatile>2026-09-06</text>"), "{svg}");
    }

    #[test]
    fn days_outside_the_window_are_left_out_and_an_empty_chart_says_so() {
        let svg = trend("t", &[point("2025-01-01", 900)], 90, "2026-12-04").into_string();
        assert!(!svg.contains("<circle"), "{svg}");
        assert!(!svg.contains("<polyline"), "{svg}");
        let empty = trend("t", &[], 90, "2026-12-04").into_string();
        assert!(empty.contains("No reports in this period"));
        assert!(empty.contains("t: no reports in this period"));
    }
}
