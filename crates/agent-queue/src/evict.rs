//! Which of the oldest items must go, and why: the queue's bounds as a pure decision over the front of the queue.
//!
//! The queue offers its items oldest first; each is either dropped (with a reason) or kept, and
//! the first one kept ends the eviction, because only the oldest items are ever dropped.
//! Dropped items are gathered into runs of consecutive sequence numbers with one reason each,
//! which become gap records.

use crate::{GapReason, Limits};

/// What the eviction needs to know about one queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Front {
    pub(crate) seq: u64,
    /// The payload's length in bytes.
    pub(crate) bytes: u64,
    /// The item's time, Unix nanoseconds.
    pub(crate) at_ns: i64,
}

/// A run of consecutive sequence numbers dropped for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) reason: GapReason,
    /// How many items the run held (`last - first + 1`, as items are consecutive).
    pub(crate) n_items: u64,
    /// The bytes those items held.
    pub(crate) n_bytes: u64,
}

/// One eviction in progress: the rule it applies, what remains queued, and what it dropped.
#[derive(Debug, Clone)]
pub(crate) struct Eviction {
    rule: Rule,
    n_items: u64,
    n_bytes: u64,
    drops: Vec<Dropped>,
    /// The first item offered and kept: the queue's front once the drops are applied.
    kept: Option<Front>,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A push: make room for one more item of `incoming_bytes` and drop what is older than
    /// `max_age_ns` at `now_ns`.
    Push {
        max_items: u64,
        max_bytes: u64,
        max_age_ns: i128,
        now_ns: i128,
        incoming_bytes: u64,
    },
    /// The disk refused a push: free at least `needed_bytes` of payload (and at least one item).
    DiskFull { needed_bytes: u64 },
}

impl Eviction {
    /// The eviction before pushing an item of `incoming_bytes` at `now_ns` onto a queue holding
    /// `n_items` items of `n_bytes` bytes in all.
    pub(crate) fn for_push(
        limits: &Limits,
        n_items: u64,
        n_bytes: u64,
        incoming_bytes: u64,
        now_ns: i64,
    ) -> Eviction {
        Eviction {
            rule: Rule::Push {
                max_items: limits.max_items,
                max_bytes: limits.max_bytes,
                max_age_ns: i128::try_from(limits.max_age.as_nanos()).unwrap_or(i128::MAX),
                now_ns: i128::from(now_ns),
                incoming_bytes,
            },
            n_items,
            n_bytes,
            drops: Vec::new(),
            kept: None,
        }
    }

    /// The eviction after the disk refused an item of `needed_bytes`.
    pub(crate) fn for_disk_full(n_items: u64, n_bytes: u64, needed_bytes: u64) -> Eviction {
        Eviction {
            rule: Rule::DiskFull { needed_bytes },
            n_items,
            n_bytes,
            drops: Vec::new(),
            kept: None,
        }
    }

    /// Whether any item could be dropped, given the time of the oldest one (`None`: queue empty).
    /// When this is false the queue need not be read.
    pub(crate) fn might_drop(&self, front_at_ns: Option<i64>) -> bool {
        let Some(front_at_ns) = front_at_ns else {
            return false;
        };
        let stub = Front {
            seq: 0,
            bytes: 0,
            at_ns: front_at_ns,
        };
        self.reason_for(stub).is_some()
    }

    /// Offers the oldest item not yet offered; returns whether it is dropped.
    /// Once an item is kept, every later offer is kept too: only the oldest items are dropped.
    pub(crate) fn offer(&mut self, front: Front) -> bool {
        if self.kept.is_some() {
            return false;
        }
        let Some(reason) = self.reason_for(front) else {
            self.kept = Some(front);
            return false;
        };
        self.n_items = self.n_items.saturating_sub(1);
        self.n_bytes = self.n_bytes.saturating_sub(front.bytes);
        match self.drops.last_mut() {
            Some(run) if run.reason == reason && run.last.checked_add(1) == Some(front.seq) => {
                run.last = front.seq;
                run.n_items += 1;
                run.n_bytes += front.bytes;
            }
            _ => self.drops.push(Dropped {
                first: front.seq,
                last: front.seq,
                reason,
                n_items: 1,
                n_bytes: front.bytes,
            }),
        }
        true
    }

    /// The runs dropped so far, oldest first.
    pub(crate) fn drops(&self) -> &[Dropped] {
        &self.drops
    }

    /// The time of the queue's oldest item once the drops are applied, if an offered item was
    /// kept; `None` when every offered item was dropped or none was offered.
    pub(crate) fn kept_front_at_ns(&self) -> Option<i64> {
        self.kept.map(|front| front.at_ns)
    }

    /// Whether the queue as it stands (after the drops so far) breaks a size bound.
    fn over_bounds(&self) -> bool {
        match self.rule {
            Rule::Push {
                max_items,
                max_bytes,
                incoming_bytes,
                ..
            } => {
                self.n_items.saturating_add(1) > max_items
                    || self.n_bytes.saturating_add(incoming_bytes) > max_bytes
            }
            Rule::DiskFull { needed_bytes } => {
                let freed: u64 = self.drops.iter().map(|run| run.n_bytes).sum();
                self.drops.is_empty() || freed < needed_bytes
            }
        }
    }

    /// Why `front`, the oldest remaining item, must be dropped, or `None` to keep it.
    fn reason_for(&self, front: Front) -> Option<GapReason> {
        match self.rule {
            Rule::Push {
                max_age_ns, now_ns, ..
            } => {
                if now_ns - i128::from(front.at_ns) > max_age_ns {
                    Some(GapReason::TooOld)
                } else if self.over_bounds() {
                    Some(GapReason::QueueFull)
                } else {
                    None
                }
            }
            Rule::DiskFull { .. } => self.over_bounds().then_some(GapReason::DiskFull),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;
    use std::time::Duration;

    use expect_test::{Expect, expect};

    use crate::Limits;
    use crate::evict::{Eviction, Front};

    /// `input`: a header line, then one line per queued item, oldest first: `<seq> <bytes> <at s>`.
    /// Header: `push items=N bytes=N age=S now=S incoming=N` or `disk_full needed=N`.
    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let mut lines = input.lines().map(str::trim).filter(|line| !line.is_empty());
        let header = lines.next().expect("header line");
        let fronts: Vec<Front> = lines
            .map(|line| {
                let numbers: Vec<i64> = line
                    .split_whitespace()
                    .map(|word| word.parse().expect("number"))
                    .collect();
                Front {
                    seq: u64::try_from(numbers[0]).expect("seq"),
                    bytes: u64::try_from(numbers[1]).expect("bytes"),
                    at_ns: numbers[2] * 1_000_000_000,
                }
            })
            .collect();
        let n_items = fronts.len() as u64;
        let n_bytes = fronts.iter().map(|front| front.bytes).sum();
        let (mode, args) = header.split_once(' ').expect("header");
        let arg = |name: &str| -> u64 {
            args.split_whitespace()
                .find_map(|word| word.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name}= missing"))
                .parse()
                .expect("number")
        };
        let mut eviction = match mode {
            "push" => Eviction::for_push(
                &Limits {
                    max_items: arg("items"),
                    max_bytes: arg("bytes"),
                    max_age: Duration::from_secs(arg("age")),
                },
                n_items,
                n_bytes,
                arg("incoming"),
                i64::try_from(arg("now")).expect("now") * 1_000_000_000,
            ),
            "disk_full" => Eviction::for_disk_full(n_items, n_bytes, arg("needed")),
            other => panic!("unknown mode {other}"),
        };
        let mut out = String::new();
        let might = eviction.might_drop(fronts.first().map(|front| front.at_ns));
        writeln!(out, "might drop: {might}").expect("write");
        for front in &fronts {
            if !eviction.offer(*front) {
                break;
            }
        }
        for run in eviction.drops() {
            writeln!(
                out,
                "drop {}..={} {} ({} items, {} bytes)",
                run.first,
                run.last,
                run.reason.as_str(),
                run.n_items,
                run.n_bytes
            )
            .expect("write");
        }
        let front = eviction.kept_front_at_ns().map(|at| at / 1_000_000_000);
        writeln!(out, "front at: {front:?}").expect("write");
        expect.assert_eq(&out);
    }

    #[test]
    fn within_bounds_nothing_is_dropped() {
        check(
            "push items=3 bytes=100 age=60 now=10 incoming=10
             1 10 0
             2 10 5",
            expect![[r#"
                might drop: false
                front at: Some(0)
            "#]],
        );
    }

    #[test]
    fn one_item_too_many_drops_the_oldest() {
        check(
            "push items=2 bytes=100 age=60 now=10 incoming=10
             7 10 0
             8 10 5",
            expect![[r#"
                might drop: true
                drop 7..=7 queue_full (1 items, 10 bytes)
                front at: Some(5)
            "#]],
        );
    }

    #[test]
    fn bytes_bound_drops_until_the_new_item_fits() {
        check(
            "push items=100 bytes=100 age=60 now=10 incoming=70
             1 30 0
             2 30 1
             3 30 2
             4 10 3",
            expect![[r#"
                might drop: true
                drop 1..=3 queue_full (3 items, 90 bytes)
                front at: Some(3)
            "#]],
        );
    }

    #[test]
    fn old_items_go_first_then_the_size_bound() {
        check(
            "push items=2 bytes=100 age=60 now=100 incoming=1
             1 1 10
             2 1 30
             3 1 50
             4 1 90",
            expect![[r#"
                might drop: true
                drop 1..=2 too_old (2 items, 2 bytes)
                drop 3..=3 queue_full (1 items, 1 bytes)
                front at: Some(90)
            "#]],
        );
    }

    #[test]
    fn age_exactly_max_age_is_kept() {
        check(
            "push items=10 bytes=100 age=60 now=100 incoming=1
             1 1 40
             2 1 41",
            expect![[r#"
                might drop: false
                front at: Some(40)
            "#]],
        );
    }

    #[test]
    fn a_young_front_protects_older_items_behind_it() {
        // The clock went back between pushes 1 and 2: only the oldest items are ever dropped,
        // so item 2 waits behind item 1 until item 1 ages out.
        check(
            "push items=10 bytes=100 age=60 now=100 incoming=1
             1 1 90
             2 1 5",
            expect![[r#"
                might drop: false
                front at: Some(90)
            "#]],
        );
    }

    #[test]
    fn everything_old_is_dropped_and_no_front_remains() {
        check(
            "push items=10 bytes=100 age=60 now=1000 incoming=1
             4 1 10
             5 1 20",
            expect![[r#"
                might drop: true
                drop 4..=5 too_old (2 items, 2 bytes)
                front at: None
            "#]],
        );
    }

    #[test]
    fn empty_queue_never_drops() {
        check(
            "push items=1 bytes=1 age=1 now=1000 incoming=1",
            expect![[r#"
                might drop: false
                front at: None
            "#]],
        );
    }

    #[test]
    fn disk_full_frees_at_least_the_new_payload() {
        check(
            "disk_full needed=50
             1 20 0
             2 20 0
             3 20 0
             4 20 0",
            expect![[r#"
                might drop: true
                drop 1..=3 disk_full (3 items, 60 bytes)
                front at: Some(0)
            "#]],
        );
    }

    #[test]
    fn disk_full_drops_at_least_one_item_for_an_empty_payload() {
        check(
            "disk_full needed=0
             1 20 0
             2 20 0",
            expect![[r#"
                might drop: true
                drop 1..=1 disk_full (1 items, 20 bytes)
                front at: Some(0)
            "#]],
        );
    }
}
