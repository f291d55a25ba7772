//! What the queue holds, as the operations in its segments leave it: counters, gaps and an index of the queued items (pure: operations in, state or a contradiction out).
//!
//! Opening a queue replays every segment through [`State::apply`], and every write applies the
//! operations it just made durable through the same function, so the state in memory is by
//! construction the state the files give after a restart.
//! A contradiction (a push of the wrong sequence number, a drop that does not start at the front,
//! an acknowledgement of nothing) is reported, never repaired.

use std::collections::VecDeque;

use crate::frame::{Checkpoint, Gap, Op};

/// Where an item's frame is: its segment and the frame's offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

/// One queued item, without its kind and payload (those stay on disk): 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemRef {
    pub(crate) segment: u64,
    /// Offset of the frame holding the item's push, in its segment.
    pub(crate) offset: u32,
    /// The payload's length.
    pub(crate) bytes: u32,
    /// The item's time, Unix nanoseconds.
    pub(crate) at_ns: i64,
}

/// The queue's counters, gaps and items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// The sequence number the next push gets.
    pub(crate) next_seq: u64,
    /// Everything up to here is acknowledged and gone.
    pub(crate) acked_through: u64,
    /// Items dropped over the queue's whole life.
    pub(crate) dropped: u64,
    /// Runs of dropped sequence numbers not yet acknowledged, oldest first; they precede every item.
    gaps: VecDeque<Gap>,
    /// The queued items known so far, oldest first, with consecutive sequence numbers from
    /// `first_item_seq`. While a replay has not yet seen older segments' items (they were
    /// removed once nothing in them was queued) this is only the newest of them.
    items: VecDeque<ItemRef>,
    first_item_seq: u64,
    /// The payload bytes of `items`.
    n_bytes: u64,
}

impl State {
    /// The state a checkpoint describes, with no item known yet.
    pub(crate) fn from_checkpoint(checkpoint: &Checkpoint) -> Result<State, String> {
        let state = State {
            next_seq: checkpoint.next_seq,
            acked_through: checkpoint.acked_through,
            dropped: checkpoint.dropped,
            gaps: checkpoint.gaps.iter().copied().collect(),
            items: VecDeque::new(),
            first_item_seq: checkpoint.next_seq,
            n_bytes: 0,
        };
        state.check_counters()?;
        Ok(state)
    }

    /// The checkpoint that begins segment `segment` after this state.
    pub(crate) fn checkpoint(&self, segment: u64) -> Checkpoint {
        Checkpoint {
            segment,
            next_seq: self.next_seq,
            acked_through: self.acked_through,
            dropped: self.dropped,
            gaps: self.gaps.iter().copied().collect(),
        }
    }

    /// Checks that a later segment's checkpoint says what the segments before it did.
    pub(crate) fn check_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        let expected = self.checkpoint(checkpoint.segment);
        if *checkpoint != expected {
            return Err(format!(
                "the segment's checkpoint (next seq {}, acknowledged through {}, {} dropped, gaps {}) disagrees with the segments before it (next seq {}, acknowledged through {}, {} dropped, gaps {})",
                checkpoint.next_seq,
                checkpoint.acked_through,
                checkpoint.dropped,
                gaps_text(&checkpoint.gaps),
                expected.next_seq,
                expected.acked_through,
                expected.dropped,
                gaps_text(&expected.gaps),
            ));
        }
        Ok(())
    }

    /// Applies one operation other than a checkpoint, found at `location`.
    pub(crate) fn apply(&mut self, op: &Op<'_>, location: Location) -> Result<(), String> {
        match *op {
            Op::Checkpoint(_) => Err("a checkpoint in the middle of a segment".to_owned()),
            Op::Push {
                seq,
                at_ns,
                payload,
                ..
            } => {
                if seq != self.next_seq {
                    return Err(format!(
                        "a push of seq {seq}, but the next seq is {}",
                        self.next_seq
                    ));
                }
                let item = ItemRef {
                    segment: location.segment,
                    offset: u32::try_from(location.offset)
                        .map_err(|_| format!("a frame at offset {}", location.offset))?,
                    bytes: u32::try_from(payload.len())
                        .map_err(|_| format!("a payload of {} bytes", payload.len()))?,
                    at_ns,
                };
                if self.items.is_empty() {
                    self.first_item_seq = seq;
                }
                self.items.push_back(item);
                self.n_bytes += u64::from(item.bytes);
                self.next_seq = seq
                    .checked_add(1)
                    .ok_or_else(|| "the sequence numbers are used up".to_owned())?;
                Ok(())
            }
            Op::Drop(gap) => {
                let front = self.front_seq();
                if gap.first != front || gap.last < gap.first || gap.last >= self.next_seq {
                    return Err(format!(
                        "a drop of {}..={}, but the oldest queued seq is {front} and the next seq {}",
                        gap.first, gap.last, self.next_seq
                    ));
                }
                self.remove_items_through(gap.last);
                match self.gaps.back_mut() {
                    Some(newest) if newest.reason == gap.reason && newest.last + 1 == gap.first => {
                        newest.last = gap.last;
                    }
                    _ => self.gaps.push_back(gap),
                }
                self.dropped += gap.last - gap.first + 1;
                Ok(())
            }
            Op::Ack { up_to } => {
                if up_to <= self.acked_through || up_to >= self.next_seq {
                    return Err(format!(
                        "an acknowledgement up to seq {up_to}, but seqs {}..{} are unacknowledged",
                        self.acked_through + 1,
                        self.next_seq
                    ));
                }
                self.remove_items_through(up_to);
                while self.gaps.front().is_some_and(|gap| gap.last <= up_to) {
                    self.gaps.pop_front();
                }
                // A gap acknowledged in part keeps only its unacknowledged tail.
                if let Some(gap) = self.gaps.front_mut()
                    && gap.first <= up_to
                {
                    gap.first = up_to + 1;
                }
                self.acked_through = up_to;
                Ok(())
            }
        }
    }

    /// Checks, after a replay, that items and gaps account for every unacknowledged sequence
    /// number: an item missing here lived in a segment file that is gone.
    pub(crate) fn check_complete(&self) -> Result<(), String> {
        let front = self.front_seq();
        let first_known = if self.items.is_empty() {
            self.next_seq
        } else {
            self.first_item_seq
        };
        if first_known != front {
            return Err(format!(
                "items {front}..={} are neither in a segment nor recorded as dropped (a segment file is missing)",
                first_known - 1
            ));
        }
        Ok(())
    }

    /// The first sequence number neither acknowledged nor dropped: the oldest item's, if any.
    pub(crate) fn front_seq(&self) -> u64 {
        self.gaps
            .back()
            .map_or(self.acked_through + 1, |gap| gap.last + 1)
    }

    pub(crate) fn n_items(&self) -> u64 {
        self.items.len() as u64
    }

    pub(crate) fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    pub(crate) fn gaps(&self) -> &VecDeque<Gap> {
        &self.gaps
    }

    /// The queued items, oldest first, with their sequence numbers.
    pub(crate) fn items(&self) -> impl Iterator<Item = (u64, ItemRef)> + '_ {
        (self.first_item_seq..).zip(self.items.iter().copied())
    }

    /// The queued item `seq`, if it is queued.
    pub(crate) fn item(&self, seq: u64) -> Option<ItemRef> {
        let idx = usize::try_from(seq.checked_sub(self.first_item_seq)?).ok()?;
        self.items.get(idx).copied()
    }

    /// The time of the oldest queued item, if any.
    pub(crate) fn front_at_ns(&self) -> Option<i64> {
        self.items.front().map(|item| item.at_ns)
    }

    /// The oldest segment that still holds a queued item.
    pub(crate) fn oldest_segment_in_use(&self) -> Option<u64> {
        self.items.front().map(|item| item.segment)
    }

    fn remove_items_through(&mut self, seq: u64) {
        while !self.items.is_empty() && self.first_item_seq <= seq {
            if let Some(item) = self.items.pop_front() {
                self.n_bytes -= u64::from(item.bytes);
            }
            self.first_item_seq += 1;
        }
        if self.items.is_empty() {
            self.first_item_seq = self.next_seq;
        }
    }

    /// The invariants a checkpoint must meet on its own: acknowledged below the next seq, and
    /// gaps ordered, apart from each other, after what is acknowledged and before the next seq.
    fn check_counters(&self) -> Result<(), String> {
        if self.next_seq == 0 || self.acked_through >= self.next_seq {
            return Err(format!(
                "a checkpoint acknowledges through seq {} with next seq {}",
                self.acked_through, self.next_seq
            ));
        }
        let mut after = self.acked_through;
        for gap in &self.gaps {
            if gap.first <= after || gap.last < gap.first || gap.last >= self.next_seq {
                return Err(format!(
                    "a checkpoint's gap {}..={} is out of order (acknowledged through {}, next seq {})",
                    gap.first, gap.last, self.acked_through, self.next_seq
                ));
            }
            after = gap.last;
        }
        let gap_seqs: u64 = self.gaps.iter().map(|gap| gap.last - gap.first + 1).sum();
        if gap_seqs > self.dropped {
            return Err(format!(
                "a checkpoint's gaps hold {gap_seqs} seqs but it counts {} dropped",
                self.dropped
            ));
        }
        Ok(())
    }
}

fn gaps_text(gaps: &[Gap]) -> String {
    if gaps.is_empty() {
        return "none".to_owned();
    }
    gaps.iter()
        .map(|gap| format!("{}..={} {}", gap.first, gap.last, gap.reason.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
