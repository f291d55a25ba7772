//! The agent's log: one line per `tracing` event (and per `log` record of its libraries),
//! `TIME LEVEL message key=value…`, to stderr or the Windows service's file, filtered by level
//! per target as `RUST_LOG` says (`info`, or `warn,agent=debug`). Written here rather than with
//! `tracing-subscriber`, which cost 70 KB of the agent's 3 MB budget; spans are not shown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Which levels pass, per target prefix; the longest matching prefix decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Every target at `level`.
    pub fn at(level: LevelFilter) -> Filter {
        Filter {
            default: level,
            targets: Vec::new(),
        }
    }

    /// Parses `RUST_LOG`-style text (`LEVEL` and `target=LEVEL`, comma-separated); `None` when
    /// any part is not understood.
    pub fn parse(text: &str) -> Option<Filter> {
        let mut filter = Filter {
            default: LevelFilter::OFF,
            targets: Vec::new(),
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => filter
                    .targets
                    .push((target.to_owned(), level.parse().ok()?)),
                None => filter.default = part.parse().ok()?,
            }
        }
        filter
            .targets
            .sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        Some(filter)
    }

    /// Whether an event of `level` from `target` is written.
    pub fn allows(&self, target: &str, level: Level) -> bool {
        let limit = self
            .targets
            .iter()
            .find(|(prefix, _)| {
                target
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .map_or(self.default, |(_, limit)| *limit);
        level <= limit
    }

    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, std::cmp::max)
    }
}

/// Writes the lines.
pub struct Logger {
    filter: Filter,
    out: Mutex<Box<dyn std::io::Write + Send>>,
    timestamps: bool,
}

impl Logger {
    /// A logger writing to `out`, with RFC 3339 timestamps unless `timestamps` is false (the
    /// journal adds its own).
    pub fn new(filter: Filter, out: Box<dyn std::io::Write + Send>, timestamps: bool) -> Logger {
        Logger {
            filter,
            out: Mutex::new(out),
            timestamps,
        }
    }

    /// Makes this the process's logger for `tracing` and `log`; a second call does nothing.
    pub fn install(self) {
        let max = self.filter.max();
        let logger: &'static Logger = Box::leak(Box::new(self));
        if tracing::subscriber::set_global_default(Forward(logger)).is_ok() {
            log::set_max_level(match max {
                LevelFilter::OFF => log::LevelFilter::Off,
                LevelFilter::ERROR => log::LevelFilter::Error,
                LevelFilter::WARN => log::LevelFilter::Warn,
                LevelFilter::INFO => log::LevelFilter::Info,
                LevelFilter::DEBUG => log::LevelFilter::Debug,
                _ => log::LevelFilter::Trace,
            });
            let _ = log::set_logger(logger);
        }
    }

    /// One line: time, level, message, then the other fields.
    pub fn line(&self, level: Level, message: &str, fields: &str) -> String {
        let mut line = String::with_capacity(64 + message.len() + fields.len());
        if self.timestamps {
            let now = time::OffsetDateTime::now_utc();
            let _ = write!(
                line,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z ",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second(),
                now.microsecond()
            );
        }
        let _ = write!(line, "{level:>5} {message}{fields}");
        line.push('\n');
        line
    }

    fn write(&self, line: &str) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// The `tracing` side of a [`Logger`].
struct Forward(&'static Logger);

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.filter.allows(metadata.target(), *metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.0.filter.max())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = self
            .0
            .line(*event.metadata().level(), &fields.message, &fields.rest);
        self.0.write(&line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// An event's message and its other fields as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = match metadata.level() {
            log::Level::Error => Level::ERROR,
            log::Level::Warn => Level::WARN,
            log::Level::Info => Level::INFO,
            log::Level::Debug => Level::DEBUG,
            log::Level::Trace => Level::TRACE,
        };
        self.filter.allows(metadata.target(), level)
    }

    fn log(&self, record: &log::Record<'_>) {
        if log::Log::enabled(self, record.metadata()) {
            let level = match record.level() {
                log::Level::Error => Level::ERROR,
                log::Level::Warn => Level::WARN,
                log::Level::Info => Level::INFO,
                log::Level::Debug => Level::DEBUG,
                log::Level::Trace => Level::TRACE,
            };
            let line = self.line(
                level,
                &record.args().to_string(),
                &format!(" target={:?}", record.target()),
            );
            self.write(&line);
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_levels_apply_per_target_prefix() {
        let filter = Filter::parse("warn,agent=debug,agent::run=trace").unwrap();
        assert!(filter.allows("agent", Level::DEBUG));
        assert!(!filter.allows("agent", Level::TRACE));
        assert!(filter.allows("agent::run", Level::TRACE));
        assert!(filter.allows("agent::run::inner", Level::TRACE));
        assert!(!filter.allows("agentx", Level::INFO), "a prefix ends at ::");
        assert!(!filter.allows("h2", Level::INFO));
        assert!(filter.allows("h2", Level::WARN));
        assert_eq!(Filter::parse("loud"), None);
        assert_eq!(Filter::parse("agent=loud"), None);
    }

    #[test]
    fn lines_carry_level_message_and_fields() {
        let logger = Logger::new(
            Filter::parse("info").unwrap(),
            Box::new(std::io::sink()),
            false,
        );
        assert_eq!(
            logger.line(Level::WARN, "Queue full.", " dropped=3"),
            " WARN Queue full. dropped=3\n"
        );
        let timed = Logger::new(
            Filter::parse("info").unwrap(),
            Box::new(std::io::sink()),
            true,
        );
        let line = timed.line(Level::INFO, "Stopped.", "");
        assert!(line.ends_with("Z  INFO Stopped.\n"), "{line}");
        assert_eq!(
            line.len(),
            "2026-12-04T09:30:00.000000Z  INFO Stopped.\n".len()
        );
    }
}
