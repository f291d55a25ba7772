//! Plain-words formatting of times, sizes, percentages and states.

use api::UpdateState;

/// "just now", "1 minute ago", "3 hours ago", "2 days ago"; "in the future" for clock skew.
pub fn ago(now: i64, then: i64) -> String {
    let secs = now.saturating_sub(then);
    if secs < 0 {
        return "just now".into();
    }
    let (n, unit) = match secs {
        0..60 => return "just now".into(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// "in 12 minutes", "now".
pub fn until(now: i64, then: i64) -> String {
    let secs = then.saturating_sub(now);
    match secs {
        ..60 => "now".into(),
        60..3600 => format!("in {} min", secs / 60),
        3600..86_400 => format!("in {} h", secs / 3600),
        _ => format!("in {} days", secs / 86_400),
    }
}

/// A length of time in words, rounded to the minute: "30 minutes", "24 hours", "7 days",
/// "1 hour 30 minutes".
pub fn span(secs: i64) -> String {
    let minutes = (secs.max(0) + 30) / 60;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if minutes < 60 {
        plural(minutes, "minute")
    } else if minutes % 1440 == 0 {
        plural(minutes / 1440, "day")
    } else if minutes % 60 == 0 {
        plural(minutes / 60, "hour")
    } else {
        format!(
            "{} {}",
            plural(minutes / 60, "hour"),
            plural(minutes % 60, "minute")
        )
    }
}

/// Uptime as "3 days 4 h", "5 h 2 min", "12 min".
pub fn duration(secs: u64) -> String {
    let days = secs / 86_400;
    let hours = secs % 86_400 / 3600;
    let minutes = secs % 3600 / 60;
    if days > 0 {
        format!("{days} day{} {hours} h", if days == 1 { "" } else { "s" })
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min")
    }
}

/// Bytes in binary units with one decimal: "41.2 GB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Tenths of a percent as "92.4 %".
pub fn permille(value: u32) -> String {
    format!("{}.{} %", value / 10, value % 10)
}

/// Thousands separators: 12,345.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut res = String::new();
    for (idx, c) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            res.push(',');
        }
        res.push(c);
    }
    res
}

/// A one-line sparkline of values (▁ to █), scaled between their minimum and maximum.
pub fn sparkline(values: &[u32], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = &values[values.len().saturating_sub(width)..];
    let (Some(min), Some(max)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    let span = (max - min).max(1);
    values
        .iter()
        .map(|v| {
            if max == min {
                BARS[3]
            } else {
                BARS[((v - min) * 7 / span) as usize]
            }
        })
        .collect()
}

/// The update state in plain words.
pub fn update_state(update: &UpdateState) -> String {
    let available = update.available.as_deref();
    match (update.state.as_str(), available) {
        ("unavailable", _) => "updates are not set up on this appliance".into(),
        ("staged", Some(version)) => format!("version {version} is ready to apply"),
        ("pending_health", Some(version)) => {
            format!("version {version} is being checked after the restart")
        }
        ("rolled_back", _) => format!(
            "the last update was undone; running {}",
            non_empty(&update.current)
        ),
        (_, Some(version)) => format!("version {version} is available"),
        _ => format!("up to date ({})", non_empty(&update.current)),
    }
}

/// Shortens a hex hash for display: first 16 characters then "…".
pub fn short_hash(hash: &str) -> String {
    if hash.chars().count() > 16 {
        format!("{}…", hash.chars().take(16).collect::<String>())
    } else {
        hash.to_owned()
    }
}

fn non_empty(text: &str) -> &str {
    if text.is_empty() {
        "unknown version"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words() {
        assert_eq!(ago(1000, 1000), "just now");
        assert_eq!(ago(1000, 1000 - 60), "1 minute ago");
        assert_eq!(ago(1000, 1000 - 180), "3 minutes ago");
        assert_eq!(ago(100_000, 100_000 - 2 * 86_400), "2 days ago");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GB");
        assert_eq!(permille(924), "92.4 %");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3 days 4 h");
        assert_eq!(sparkline(&[1, 5, 9], 10), "▁▄█");
        assert_eq!(sparkline(&[], 10), "");
        assert_eq!(span(86_400), "1 day");
        assert_eq!(span(86_400 - 2), "1 day");
        assert_eq!(span(36 * 3600), "36 hours");
        assert_eq!(span(7 * 86_400), "7 days");
        assert_eq!(span(60), "1 minute");
        assert_eq!(span(5400), "1 hour 30 minutes");
    }
}
