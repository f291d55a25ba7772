//! The queue's files: the locked anchor file, the segment files and their replay at open, durable appends, segment rotation and removal, and reading items back (synchronous IO).
//!
//! Files, for a queue at `<dir>/<name>`:
//! - `<name>`, the anchor: a fixed text naming the format, held with an exclusive OS lock
//!   (`flock`, `LockFileEx`) while the queue is open, so a second opener fails with `InUse`;
//!   a SIGKILLed process holds no lock. It is complete only once the first segment exists, so
//!   a queue whose segments were deleted is reported rather than silently restarted at seq 1.
//! - `<name>.<n>.log`, the segments, numbered without holes: [`frame::SEGMENT_MAGIC`], a
//!   checkpoint frame (the counters and gaps when the segment began), then one frame per write.
//!
//! Durability: a frame is written and `fdatasync`ed before the operation returns; a new segment
//! is written whole, synced, and its directory synced before anything relies on it. After a
//! crash only the newest segment's last frame can be incomplete: opening cuts it off (that
//! operation never returned), and any other damage is an error naming the file and offset.
//!
//! Space: the newest segment takes writes until it passes its target size (1/32 of `max_bytes`,
//! 64 KiB to 4 MiB), then a new one begins; a segment none of whose items is still queued is
//! removed, oldest first. So the files hold the queued items, their segments' leftovers, and at
//! most one segment of acknowledged or dropped data; nothing is ever copied.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::evict::{Eviction, Front};
use crate::frame::{self, BadFrame, Gap, HEADER_BYTES, Op, SEGMENT_MAGIC};
use crate::state::{ItemRef, Location, State};
use crate::{Entry, Limits, QueueError};

/// The anchor file's whole contents.
const ANCHOR: &[u8] = b"osiris agent queue\nformat 1\n";
/// How every anchor begins, whatever its format.
const ANCHOR_NAME: &[u8] = b"osiris agent queue\nformat ";

const MIN_SEGMENT_BYTES: u64 = 64 * 1024;
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// An open queue's files and state. Every method runs to the end (no await inside), so the
/// state in memory changes only after the files say the same.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The anchor file.
    path: PathBuf,
    dir: PathBuf,
    name: String,
    /// The anchor, locked while this exists.
    _lock: File,
    pub(crate) limits: Limits,
    /// The segments, oldest first; the last is the one written to.
    segments: VecDeque<Segment>,
    /// The newest segment, open for reading and writing.
    writer: File,
    /// An older segment open for reading, kept between reads of the same segment.
    reader: Option<(u64, File)>,
    pub(crate) state: State,
    /// A write failed and could not be undone: the files may hold more than `state` says, so
    /// the next operation reads them again first.
    poisoned: bool,
    #[cfg(test)]
    pub(crate) test: TestKnobs,
}

/// What tests change to reach the rare paths: a cap on the segments' total size (a write past
/// it fails like a full disk, after writing what fits) and the segments' target size.
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TestKnobs {
    pub(crate) space_cap: Option<u64>,
    pub(crate) segment_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    number: u64,
    /// The end of its last whole frame (the file's length).
    len: u64,
    /// The end of its checkpoint frame: a segment no longer than this holds no writes.
    checkpoint_end: u64,
}

/// A failed write, told apart so a full disk can be handled.
#[derive(Debug)]
pub(crate) enum Failed {
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    Queue(QueueError),
}

/// The segments read at open.
struct Loaded {
    segments: VecDeque<Segment>,
    writer: File,
    state: State,
}

/// How a segment ends, as replay found it.
enum SegmentEnd {
    /// Every byte belongs to a whole frame.
    Whole { checkpoint_end: u64 },
    /// The newest segment's last frame was cut short by a crash; whole frames end at `valid`.
    Torn { valid: u64, checkpoint_end: u64 },
    /// The newest segment was being created when the process died: no whole checkpoint.
    Unborn,
}

impl Journal {
    /// Opens the queue whose anchor is `path`, creating it if missing, and replays its segments.
    pub(crate) fn open(path: &Path, limits: Limits) -> Result<Journal, QueueError> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| QueueError::Create {
                path: path.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the queue's path needs a file name in UTF-8",
                ),
            })?
            .to_owned();
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| QueueError::Create {
                path: path.to_owned(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(QueueError::InUse {
                    path: path.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(io_error(path, "locking it", source));
            }
        }
        let mut anchor = Vec::new();
        (&mut lock)
            .take(4096)
            .read_to_end(&mut anchor)
            .map_err(|source| io_error(path, "reading it", source))?;
        let complete = if anchor == ANCHOR {
            true
        } else if ANCHOR.starts_with(&anchor) {
            // Created, but the first segment may not have been: see `load`.
            false
        } else if anchor.starts_with(ANCHOR_NAME) {
            let format = String::from_utf8_lossy(&anchor[ANCHOR_NAME.len()..])
                .trim()
                .to_owned();
            return Err(QueueError::Format {
                path: path.to_owned(),
                format,
            });
        } else {
            return Err(QueueError::NotAQueue {
                path: path.to_owned(),
            });
        };
        let loaded = load(&dir, &name, complete)?;
        if !complete {
            write_anchor(&mut lock, path, &dir)?;
        }
        Ok(Journal {
            path: path.to_owned(),
            dir,
            name,
            _lock: lock,
            limits,
            segments: loaded.segments,
            writer: loaded.writer,
            reader: None,
            state: loaded.state,
            poisoned: false,
            #[cfg(test)]
            test: TestKnobs::default(),
        })
    }

    /// Reads the files again if a failed write may have left them ahead of the state in memory.
    pub(crate) fn recover(&mut self) -> Result<(), QueueError> {
        if !self.poisoned {
            return Ok(());
        }
        let loaded = load(&self.dir, &self.name, true)?;
        self.segments = loaded.segments;
        self.writer = loaded.writer;
        self.state = loaded.state;
        self.reader = None;
        self.poisoned = false;
        Ok(())
    }

    /// Marks the journal as after a write that could not be undone (for tests of recovery).
    #[cfg(test)]
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Whether [`Journal::recover`] has work to do.
    pub(crate) fn needs_recovery(&self) -> bool {
        self.poisoned
    }

    /// Appends the push of item `seq` (the state's next seq), after dropping what the limits
    /// require. On a failed write nothing changes in memory.
    pub(crate) fn try_push(
        &mut self,
        seq: u64,
        kind: &str,
        payload: &[u8],
        at_ns: i64,
    ) -> Result<(), Failed> {
        self.recover().map_err(Failed::Queue)?;
        if seq != self.state.next_seq {
            // The caller holds the queue's lock from reading `next_seq` on, and checks it again
            // after recovering from a failed write.
            return Err(Failed::Queue(QueueError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "a push prepared for seq {seq} found the next seq at {}",
                    self.state.next_seq
                ),
            }));
        }
        let mut eviction = Eviction::for_push(
            &self.limits,
            self.state.n_items(),
            self.state.n_bytes(),
            payload.len() as u64,
            at_ns,
        );
        if eviction.might_drop(self.state.front_at_ns()) {
            self.offer_front(&mut eviction);
        }
        let mut ops: Vec<Op<'_>> = eviction.drops().iter().map(drop_op).collect();
        ops.push(Op::Push {
            seq,
            at_ns,
            kind,
            payload,
        });
        self.write(&ops)?;
        // The state applied the same drops the eviction decided: the oldest item left is the
        // one it kept, or the new one.
        debug_assert!(
            eviction.drops().is_empty()
                || self.state.front_at_ns() == eviction.kept_front_at_ns().or(Some(at_ns)),
            "the eviction and the state disagree on the queue's front"
        );
        Ok(())
    }

    /// After the disk refused a write of `needed` bytes: drops the oldest items, as a `disk_full`
    /// gap, so that whole segments holding at least `needed` bytes can be removed (all items and
    /// a fresh segment when the older segments are not enough). Returns how many were dropped;
    /// fails only when even the gap record cannot be written.
    pub(crate) fn make_room(&mut self, needed: u64) -> Result<u64, Failed> {
        self.recover().map_err(Failed::Queue)?;
        let current = self.current().number;
        let mut freed_file_bytes = 0;
        let mut free_through = None;
        for segment in &self.segments {
            if segment.number == current {
                break;
            }
            freed_file_bytes += segment.len;
            if freed_file_bytes >= needed {
                free_through = Some(segment.number);
                break;
            }
        }
        let needed_payload: u64 = match free_through {
            Some(last) => self
                .state
                .items()
                .take_while(|(_, item)| item.segment <= last)
                .map(|(_, item)| u64::from(item.bytes))
                .sum(),
            None => self.state.n_bytes(),
        };
        let mut eviction =
            Eviction::for_disk_full(self.state.n_items(), self.state.n_bytes(), needed_payload);
        if !eviction.might_drop(self.state.front_at_ns()) {
            return Ok(0);
        }
        self.offer_front(&mut eviction);
        let ops: Vec<Op<'_>> = eviction.drops().iter().map(drop_op).collect();
        let n_dropped = eviction.drops().iter().map(|run| run.n_items).sum();
        self.append_and_apply(&ops)?;
        self.remove_unused_segments();
        if self.state.n_items() == 0 && self.current().len > self.current().checkpoint_end {
            // The newest segment held items too: begin another so it can go. If that fails
            // the retry will tell.
            if self.rotate().is_ok() {
                self.remove_unused_segments();
            }
        }
        Ok(n_dropped)
    }

    /// Records that everything up to `up_to` is acknowledged (`up_to` lies after what already
    /// is and before the next seq).
    pub(crate) fn ack(&mut self, up_to: u64) -> Result<(), QueueError> {
        self.write(&[Op::Ack { up_to }])
            .map_err(|failed| failed.into_error())
    }

    /// Up to `limit` entries after `after_seq`, in order.
    pub(crate) fn pending(
        &mut self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        self.recover()?;
        let Some(from) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for gap in self.state.gaps() {
            if entries.len() >= limit {
                return Ok(entries);
            }
            if gap.last >= from {
                entries.push(Entry::Gap {
                    first: gap.first.max(from),
                    last: gap.last,
                    reason: gap.reason,
                });
            }
        }
        let mut seq = from.max(self.state.front_seq());
        while entries.len() < limit {
            let Some(item) = self.state.item(seq) else {
                break;
            };
            entries.push(self.read_item(seq, item)?);
            seq += 1;
        }
        Ok(entries)
    }

    /// The anchor file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The segment files' paths, oldest first (for tests).
    #[cfg(test)]
    pub(crate) fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments
            .iter()
            .map(|segment| segment_path(&self.dir, &self.name, segment.number))
            .collect()
    }

    /// Offers the queued items, oldest first, until the eviction keeps one.
    fn offer_front(&self, eviction: &mut Eviction) {
        for (seq, item) in self.state.items() {
            let front = Front {
                seq,
                bytes: u64::from(item.bytes),
                at_ns: item.at_ns,
            };
            if !eviction.offer(front) {
                return;
            }
        }
    }

    /// One write: a new segment first if the newest is full, then the frame, then the state,
    /// then the segments nothing refers to any more.
    fn write(&mut self, ops: &[Op<'_>]) -> Result<(), Failed> {
        self.recover().map_err(Failed::Queue)?;
        let current = *self.current();
        if current.len >= self.segment_target() && current.len > current.checkpoint_end {
            // A segment that cannot be begun now is tried again at the next write; this write
            // goes to the newest segment meanwhile. A leftover of the attempt poisons the
            // journal, and then this write must wait for the files to be read again.
            if self.rotate().is_err() && self.poisoned {
                self.recover().map_err(Failed::Queue)?;
            }
        }
        self.append_and_apply(ops)?;
        self.remove_unused_segments();
        Ok(())
    }

    /// Appends `ops` as one frame to the newest segment, syncs it, and applies them.
    fn append_and_apply(&mut self, ops: &[Op<'_>]) -> Result<(), Failed> {
        let frame = frame::encode(ops);
        let room = self.room();
        let segment = *self.current();
        let path = self.segment_path(segment.number);
        let res = (|| {
            self.writer.seek(SeekFrom::Start(segment.len))?;
            if let Some(room) = room
                && room < frame.len() as u64
            {
                let fits = usize::try_from(room).unwrap_or(0);
                self.writer.write_all(&frame[..fits])?;
                return Err(io::ErrorKind::StorageFull.into());
            }
            self.writer.write_all(&frame)?;
            self.writer.sync_data()
        })();
        if let Err(source) = res {
            // Cut off whatever part of the frame reached the file, so the next frame follows
            // the last whole one. If even that fails, the files are read again before the next
            // operation (opening cuts a partial frame off the same way).
            let undone = self
                .writer
                .set_len(segment.len)
                .and_then(|()| self.writer.sync_data());
            if undone.is_err() {
                self.poisoned = true;
            }
            return Err(Failed::Io {
                path,
                action: "appending to it",
                source,
            });
        }
        let location = Location {
            segment: segment.number,
            offset: segment.len,
        };
        for op in ops {
            if let Err(detail) = self.state.apply(op, location) {
                // The frame is durable but contradicts the state: a bug. The files are read
                // again before the next operation, which reports it if it persists.
                self.poisoned = true;
                return Err(Failed::Queue(QueueError::Corrupt { path, detail }));
            }
        }
        self.segments
            .back_mut()
            .expect("the newest segment always exists")
            .len += frame.len() as u64;
        Ok(())
    }

    /// Begins a new segment with a checkpoint of the state, written whole and synced before the
    /// writes go there.
    fn rotate(&mut self) -> Result<(), Failed> {
        let number = self.current().number + 1;
        let path = self.segment_path(number);
        let checkpoint = self.state.checkpoint(number);
        let mut bytes = SEGMENT_MAGIC.to_vec();
        bytes.extend_from_slice(&frame::encode(&[Op::Checkpoint(checkpoint)]));
        match create_segment(&path, &self.dir, &bytes, self.room()) {
            Ok(file) => {
                self.writer = file;
                self.segments.push_back(Segment {
                    number,
                    len: bytes.len() as u64,
                    checkpoint_end: bytes.len() as u64,
                });
                Ok(())
            }
            Err((action, source, left_behind)) => {
                if left_behind {
                    self.poisoned = true;
                }
                Err(Failed::Io {
                    path,
                    action,
                    source,
                })
            }
        }
    }

    /// Removes the oldest segments while none of their items is queued (never the newest).
    /// A removal that fails is tried again after the next write.
    fn remove_unused_segments(&mut self) {
        let current = self.current().number;
        let in_use = self.state.oldest_segment_in_use().unwrap_or(current);
        let mut removed = false;
        while let Some(oldest) = self.segments.front().copied()
            && oldest.number < in_use.min(current)
        {
            if self
                .reader
                .as_ref()
                .is_some_and(|(number, _)| *number == oldest.number)
            {
                self.reader = None;
            }
            match fs::remove_file(self.segment_path(oldest.number)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => break,
            }
            self.segments.pop_front();
            removed = true;
        }
        if removed {
            // Not needed for correctness: a removed segment that comes back after a power cut
            // is replayed and its items found acknowledged or dropped by the segments after it.
            let _ = sync_dir(&self.dir);
        }
    }

    /// Reads item `seq` back from its frame, checking the frame's checksum again.
    fn read_item(&mut self, seq: u64, item: ItemRef) -> Result<Entry, QueueError> {
        let path = self.segment_path(item.segment);
        let offset = u64::from(item.offset);
        let segment_len = self
            .segments
            .iter()
            .find(|segment| segment.number == item.segment)
            .map(|segment| segment.len)
            .ok_or_else(|| QueueError::Corrupt {
                path: path.clone(),
                detail: format!("item {seq} is indexed in a segment the queue does not hold"),
            })?;
        let file = if item.segment == self.current().number {
            &mut self.writer
        } else {
            if self
                .reader
                .as_ref()
                .is_none_or(|(number, _)| *number != item.segment)
            {
                let file =
                    File::open(&path).map_err(|source| io_error(&path, "opening it", source))?;
                self.reader = Some((item.segment, file));
            }
            &mut self.reader.as_mut().expect("opened above").1
        };
        let damaged = |detail: String| QueueError::Damaged {
            path: path.clone(),
            offset,
            detail,
        };
        let mut frame = vec![0; HEADER_BYTES];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut frame))
            .map_err(|source| io_error(&path, "reading an item", source))?;
        let body_len = u64::from(u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]));
        if offset + HEADER_BYTES as u64 + body_len > segment_len {
            return Err(damaged(format!(
                "the frame of item {seq} claims {body_len} bytes, past the segment's end at {segment_len}"
            )));
        }
        frame.resize(HEADER_BYTES + usize::try_from(body_len).unwrap_or(0), 0);
        file.read_exact(&mut frame[HEADER_BYTES..])
            .map_err(|source| io_error(&path, "reading an item", source))?;
        let (ops, _) = frame::decode(&frame).map_err(|bad| damaged(bad.to_string()))?;
        let push = ops.iter().find_map(|op| match *op {
            Op::Push {
                seq: pushed,
                at_ns,
                kind,
                payload,
            } if pushed == seq => Some((at_ns, kind, payload)),
            _ => None,
        });
        let Some((at_ns, kind, payload)) = push else {
            return Err(damaged(format!("the frame holds no push of item {seq}")));
        };
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ns))
            .map_err(|_| damaged(format!("item {seq} has time {at_ns} ns")))?;
        Ok(Entry::Item {
            seq,
            kind: kind.to_owned(),
            payload: payload.to_vec(),
            at,
        })
    }

    fn current(&self) -> &Segment {
        self.segments
            .back()
            .expect("a journal always has its newest segment")
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        segment_path(&self.dir, &self.name, number)
    }

    fn segment_target(&self) -> u64 {
        #[cfg(test)]
        if let Some(bytes) = self.test.segment_bytes {
            return bytes;
        }
        (self.limits.max_bytes / 32).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
    }

    /// How many more bytes the files may take: unbounded (`None`) except under a test's cap.
    fn room(&self) -> Option<u64> {
        #[cfg(test)]
        if let Some(cap) = self.test.space_cap {
            let used: u64 = self.segments.iter().map(|segment| segment.len).sum();
            return Some(cap.saturating_sub(used));
        }
        None
    }
}

impl Failed {
    pub(crate) fn into_error(self) -> QueueError {
        match self {
            Failed::Io {
                path,
                action,
                source,
            } => QueueError::Io {
                path,
                action,
                source,
            },
            Failed::Queue(err) => err,
        }
    }

    /// Whether the disk (or a quota, or the file size limit) refused the write.
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, Failed::Io { source, .. } if is_full(source))
    }
}

/// Whether an OS error means there is no space for the write.
pub(crate) fn is_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

fn drop_op(run: &crate::evict::Dropped) -> Op<'static> {
    Op::Drop(Gap {
        first: run.first,
        last: run.last,
        reason: run.reason,
    })
}

/// Reads every segment of the queue `<dir>/<name>`, in order, cutting off a torn last frame and
/// removing a segment whose creation a crash interrupted; creates the first segment of a new
/// queue (`anchor_complete` false: the anchor was not finished, so no segment may be missing).
fn load(dir: &Path, name: &str, anchor_complete: bool) -> Result<Loaded, QueueError> {
    let mut numbers = list_segments(dir, name)?;
    numbers.sort_unstable();
    for pair in numbers.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(QueueError::Corrupt {
                path: segment_path(dir, name, pair[0] + 1),
                detail: format!(
                    "this segment is missing (segments {} and {} are there)",
                    pair[0], pair[1]
                ),
            });
        }
    }
    let mut state: Option<State> = None;
    let mut segments = VecDeque::new();
    let mut cut_at = None;
    for (idx, &number) in numbers.iter().enumerate() {
        let path = segment_path(dir, name, number);
        let bytes = fs::read(&path).map_err(|source| io_error(&path, "reading it", source))?;
        let newest = idx + 1 == numbers.len();
        let len = bytes.len() as u64;
        match replay_segment(&path, number, &bytes, newest, &mut state)? {
            SegmentEnd::Whole { checkpoint_end } => segments.push_back(Segment {
                number,
                len,
                checkpoint_end,
            }),
            SegmentEnd::Torn {
                valid,
                checkpoint_end,
            } => {
                segments.push_back(Segment {
                    number,
                    len: valid,
                    checkpoint_end,
                });
                cut_at = Some(valid);
            }
            SegmentEnd::Unborn => {
                if segments.is_empty() && number != 1 {
                    return Err(QueueError::Corrupt {
                        path,
                        detail: "the only segment has no checkpoint, and the older ones are gone"
                            .to_owned(),
                    });
                }
                fs::remove_file(&path)
                    .map_err(|source| io_error(&path, "removing an unfinished segment", source))?;
                sync_dir(dir).map_err(|source| io_error(dir, "syncing it", source))?;
            }
        }
    }
    if let Some(state) = state {
        let Some(newest) = segments.back() else {
            unreachable!("a replayed checkpoint belongs to a segment");
        };
        let path = segment_path(dir, name, newest.number);
        state
            .check_complete()
            .map_err(|detail| QueueError::Corrupt {
                path: path.clone(),
                detail,
            })?;
        let writer = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| io_error(&path, "opening it", source))?;
        if let Some(valid) = cut_at {
            writer
                .set_len(valid)
                .and_then(|()| writer.sync_data())
                .map_err(|source| io_error(&path, "cutting off a torn write", source))?;
        }
        return Ok(Loaded {
            segments,
            writer,
            state,
        });
    }
    if anchor_complete {
        return Err(QueueError::Corrupt {
            path: segment_path(dir, name, 1),
            detail: "the queue's segment files are missing".to_owned(),
        });
    }
    let state = State::from_checkpoint(&frame::Checkpoint {
        segment: 1,
        next_seq: 1,
        acked_through: 0,
        dropped: 0,
        gaps: Vec::new(),
    })
    .expect("the empty queue's checkpoint is valid");
    let path = segment_path(dir, name, 1);
    let mut bytes = SEGMENT_MAGIC.to_vec();
    bytes.extend_from_slice(&frame::encode(&[Op::Checkpoint(state.checkpoint(1))]));
    let writer = create_segment(&path, dir, &bytes, None)
        .map_err(|(action, source, _)| io_error(&path, action, source))?;
    Ok(Loaded {
        segments: VecDeque::from([Segment {
            number: 1,
            len: bytes.len() as u64,
            checkpoint_end: bytes.len() as u64,
        }]),
        writer,
        state,
    })
}

/// Replays one segment into `state` (set from its checkpoint when it is the oldest).
fn replay_segment(
    path: &Path,
    number: u64,
    bytes: &[u8],
    newest: bool,
    state: &mut Option<State>,
) -> Result<SegmentEnd, QueueError> {
    let corrupt = |offset: usize, detail: String| QueueError::Corrupt {
        path: path.to_owned(),
        detail: format!("at offset {offset}: {detail}"),
    };
    let Some(frames) = bytes.strip_prefix(SEGMENT_MAGIC) else {
        let head = &bytes[..bytes.len().min(SEGMENT_MAGIC.len())];
        if newest && (SEGMENT_MAGIC.starts_with(head) || head.iter().all(|byte| *byte == 0)) {
            return Ok(SegmentEnd::Unborn);
        }
        return Err(QueueError::Damaged {
            path: path.to_owned(),
            offset: 0,
            detail: "the file does not begin like a queue segment".to_owned(),
        });
    };
    let mut offset = SEGMENT_MAGIC.len();
    let mut checkpoint_end = None;
    let mut rest = frames;
    while !rest.is_empty() {
        let (ops, len) = match frame::decode(rest) {
            Ok(decoded) => decoded,
            Err(bad) => {
                if newest && is_torn(&bad, rest) {
                    return Ok(match checkpoint_end {
                        Some(checkpoint_end) => SegmentEnd::Torn {
                            valid: offset as u64,
                            checkpoint_end,
                        },
                        None => SegmentEnd::Unborn,
                    });
                }
                return Err(QueueError::Damaged {
                    path: path.to_owned(),
                    offset: offset as u64,
                    detail: format!("{bad}, and {} bytes follow it", rest.len()),
                });
            }
        };
        match (&mut *state, checkpoint_end, ops.as_slice()) {
            (_, None, [Op::Checkpoint(checkpoint)]) if checkpoint.segment != number => {
                return Err(corrupt(
                    offset,
                    format!("the checkpoint names segment {}", checkpoint.segment),
                ));
            }
            (None, None, [Op::Checkpoint(checkpoint)]) => {
                *state = Some(
                    State::from_checkpoint(checkpoint).map_err(|detail| corrupt(offset, detail))?,
                );
            }
            (Some(state), None, [Op::Checkpoint(checkpoint)]) => state
                .check_checkpoint(checkpoint)
                .map_err(|detail| corrupt(offset, detail))?,
            (_, None, _) => {
                return Err(corrupt(
                    offset,
                    "the segment does not begin with a checkpoint".to_owned(),
                ));
            }
            (None, Some(_), _) => unreachable!("a checkpoint sets the state"),
            (Some(state), Some(_), ops) => {
                let location = Location {
                    segment: number,
                    offset: offset as u64,
                };
                for op in ops {
                    state
                        .apply(op, location)
                        .map_err(|detail| corrupt(offset, detail))?;
                }
            }
        }
        offset += len;
        rest = &rest[len..];
        checkpoint_end = checkpoint_end.or(Some(offset as u64));
    }
    Ok(match checkpoint_end {
        Some(checkpoint_end) => SegmentEnd::Whole { checkpoint_end },
        None if newest => SegmentEnd::Unborn,
        None => {
            return Err(corrupt(
                offset,
                "the segment holds no checkpoint".to_owned(),
            ));
        }
    })
}

/// Whether a bad frame at the end of the newest segment, `rest` being everything from it to the
/// end of the file, is a write a crash interrupted. Only the last write can be torn, so nothing
/// readable may follow it: torn when its (checked) length runs past the end of the file, when
/// it fills the rest of the file but its body fails the checksum (the file grew before all of
/// the data reached the disk), when its header is damaged but no whole frame follows, or when
/// nothing but zeros is left. Anything else is damage.
fn is_torn(bad: &BadFrame, rest: &[u8]) -> bool {
    if rest.iter().all(|byte| *byte == 0) {
        return true;
    }
    match bad {
        BadFrame::ShortHeader | BadFrame::BeyondEnd { .. } => true,
        BadFrame::Checksum { frame_bytes } => *frame_bytes == rest.len(),
        BadFrame::Header => !frame::frame_follows(rest),
        BadFrame::Length { .. } | BadFrame::Body { .. } => false,
    }
}

/// The numbers of the queue's segment files in `dir`, unsorted.
fn list_segments(dir: &Path, name: &str) -> Result<Vec<u64>, QueueError> {
    let prefix = format!("{name}.");
    let mut numbers = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| io_error(dir, "listing it", source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error(dir, "listing it", source))?;
        let file_name = entry.file_name();
        let Some(number) = file_name
            .to_str()
            .and_then(|file_name| file_name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".log"))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
        else {
            continue;
        };
        numbers.push(number);
    }
    Ok(numbers)
}

fn segment_path(dir: &Path, name: &str, number: u64) -> PathBuf {
    dir.join(format!("{name}.{number}.log"))
}

/// Creates segment `path` with `bytes`, synced with its directory entry. On failure removes
/// what it created; returns the step, the OS error and whether a file was left behind.
fn create_segment(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    room: Option<u64>,
) -> Result<File, (&'static str, io::Error, bool)> {
    let mut file = private_options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| ("creating it", source, false))?;
    let written = (|| {
        if let Some(room) = room
            && room < bytes.len() as u64
        {
            file.write_all(&bytes[..usize::try_from(room).unwrap_or(0)])?;
            return Err(io::ErrorKind::StorageFull.into());
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        sync_dir(dir)
    })();
    match written {
        Ok(()) => Ok(file),
        Err(source) => {
            drop(file);
            let left_behind = fs::remove_file(path).is_err();
            if !left_behind {
                let _ = sync_dir(dir);
            }
            Err(("writing a new segment", source, left_behind))
        }
    }
}

/// Writes the anchor's contents once the first segment exists, and syncs them.
fn write_anchor(lock: &mut File, path: &Path, dir: &Path) -> Result<(), QueueError> {
    lock.seek(SeekFrom::Start(0))
        .and_then(|_| lock.write_all(ANCHOR))
        .and_then(|()| lock.set_len(ANCHOR.len() as u64))
        .and_then(|()| lock.sync_all())
        .and_then(|()| sync_dir(dir))
        .map_err(|source| io_error(path, "writing it", source))
}

/// Options that create files readable and writable by their owner only (on Unix; on Windows
/// the agent's data directory's ACL protects them).
fn private_options() -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = OpenOptions::new();
        options.mode(0o600);
        options
    }
    #[cfg(not(unix))]
    {
        OpenOptions::new()
    }
}

/// Syncs a directory, so entries created or removed in it survive a power cut. Windows has no
/// such call (NTFS journals its metadata), so there it does nothing.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn io_error(path: &Path, action: &'static str, source: io::Error) -> QueueError {
    QueueError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}
