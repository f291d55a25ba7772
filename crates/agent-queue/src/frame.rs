//! The queue's on-disk record format: segment headers, and frames of operations, each frame length-prefixed and CRC-32-checked (pure: bytes in, operations out).
//!
//! A segment file is [`SEGMENT_MAGIC`] followed by frames.
//! A frame is a 12-byte header, then the body (one or more operations). The header is the body's
//! length, the CRC-32 (IEEE) of the body, and the CRC-32 of those eight bytes (`u32` each,
//! little-endian): a header that passes its own check gives a length that can be trusted, so a
//! frame cut short by a crash (it claims more bytes than the file has) is told apart from a
//! damaged length in the middle of a file.
//! A frame is written with one `write` and synced before the operation returns, so after a crash
//! only the newest segment's last frame can be incomplete; the checksums tell a torn frame from a
//! whole one, and a frame is applied whole or not at all.
//!
//! Operations, each a tag byte and little-endian fields:
//! - `1` checkpoint (the first frame of every segment, and only there): segment number,
//!   `next_seq`, `acked_through`, `dropped` (`u64` each), the number of gaps (`u32`), then each
//!   gap as `first`, `last` (`u64`) and its reason (`u8`);
//! - `2` push: `seq` (`u64`), the time in Unix nanoseconds (`i64`), the kind's length (`u8`) and
//!   bytes, the payload's length (`u32`) and bytes;
//! - `3` drop: `first`, `last` (`u64`) and the reason (`u8`): sequence numbers turned into a gap;
//! - `4` acknowledgement: `up_to` (`u64`).

use crate::GapReason;

/// The first bytes of every segment file: the format's name and version.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"OSQSEG1\n";

/// A frame's length and checksums, before its body.
pub(crate) const HEADER_BYTES: usize = 12;

/// The largest payload the queue stores.
pub(crate) const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// The largest frame body: a payload of the largest size with room for the rest, or a checkpoint
/// of about 4.9 million gaps. A longer length field is damage, not a frame.
const MAX_BODY_BYTES: usize = 80 * 1024 * 1024;

const TAG_CHECKPOINT: u8 = 1;
const TAG_PUSH: u8 = 2;
const TAG_DROP: u8 = 3;
const TAG_ACK: u8 = 4;

/// A run of dropped sequence numbers, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) reason: GapReason,
}

/// The queue's counters and gaps when a segment begins: everything the segments before it said,
/// except the items they still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The segment this checkpoint begins.
    pub(crate) segment: u64,
    pub(crate) next_seq: u64,
    pub(crate) acked_through: u64,
    pub(crate) dropped: u64,
    pub(crate) gaps: Vec<Gap>,
}

/// One operation in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Checkpoint(Checkpoint),
    Push {
        seq: u64,
        at_ns: i64,
        kind: &'a str,
        payload: &'a [u8],
    },
    Drop(Gap),
    Ack {
        up_to: u64,
    },
}

/// Why the bytes at an offset are not a whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Fewer bytes are left than a frame's header.
    ShortHeader,
    /// The header fails its own checksum: its length cannot be trusted.
    Header,
    /// The (checked) length says the frame ends after the last byte there is.
    BeyondEnd { frame_bytes: u64 },
    /// The (checked) length is zero or larger than any frame.
    Length { body_bytes: u32 },
    /// The frame is all there but its body's checksum does not match.
    Checksum { frame_bytes: usize },
    /// The checksum matches but the body does not parse: written by another format.
    Body { detail: String },
}

/// Encodes `ops` as one frame, header included.
///
/// # Panics
/// If the body would exceed the format's largest frame: callers bound payloads by
/// [`MAX_PAYLOAD_BYTES`] and kinds by 64 bytes first, and a checkpoint reaches it only with
/// about 4.9 million gaps (one per push whose drops changed reason, none acknowledged).
pub(crate) fn encode(ops: &[Op<'_>]) -> Vec<u8> {
    let mut frame = vec![0; HEADER_BYTES];
    for op in ops {
        encode_op(&mut frame, op);
    }
    let body_len = frame.len() - HEADER_BYTES;
    assert!(
        (1..=MAX_BODY_BYTES).contains(&body_len),
        "a frame body of {body_len} bytes"
    );
    let len = u32::try_from(body_len).expect("bounded by MAX_BODY_BYTES");
    let body_crc = Crc32::new().update(&frame[HEADER_BYTES..]).finish();
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = Crc32::new().update(&frame[..8]).finish();
    frame[8..HEADER_BYTES].copy_from_slice(&head_crc.to_le_bytes());
    frame
}

/// Decodes the frame at the start of `bytes`; returns its operations and its length in bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Vec<Op<'_>>, usize), BadFrame> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_BYTES>() else {
        return Err(BadFrame::ShortHeader);
    };
    let [l0, l1, l2, l3, b0, b1, b2, b3, h0, h1, h2, h3] = *header;
    if Crc32::new().update(&header[..8]).finish() != u32::from_le_bytes([h0, h1, h2, h3]) {
        return Err(BadFrame::Header);
    }
    let body_len = u32::from_le_bytes([l0, l1, l2, l3]);
    let body_crc = u32::from_le_bytes([b0, b1, b2, b3]);
    let body_bytes = usize::try_from(body_len).unwrap_or(usize::MAX);
    if body_bytes > rest.len() {
        return Err(BadFrame::BeyondEnd {
            frame_bytes: u64::from(body_len) + HEADER_BYTES as u64,
        });
    }
    if body_len == 0 || body_bytes > MAX_BODY_BYTES {
        return Err(BadFrame::Length {
            body_bytes: body_len,
        });
    }
    let body = &rest[..body_bytes];
    if Crc32::new().update(body).finish() != body_crc {
        return Err(BadFrame::Checksum {
            frame_bytes: HEADER_BYTES + body_bytes,
        });
    }
    let mut reader = Reader { bytes: body };
    let mut ops = Vec::new();
    while !reader.bytes.is_empty() {
        ops.push(
            reader
                .op()
                .ok_or_else(|| BadFrame::Body {
                    detail: format!(
                        "operation {} does not parse ({} bytes left of the body)",
                        ops.len() + 1,
                        reader.bytes.len()
                    ),
                })?
                .map_err(|detail| BadFrame::Body { detail })?,
        );
    }
    Ok((ops, HEADER_BYTES + body_bytes))
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::ShortHeader => write!(f, "a frame header is cut short"),
            BadFrame::Header => write!(f, "a frame header fails its checksum"),
            BadFrame::BeyondEnd { frame_bytes } => {
                write!(
                    f,
                    "a frame of {frame_bytes} bytes runs past the end of the file"
                )
            }
            BadFrame::Length { body_bytes } => {
                write!(f, "a frame length of {body_bytes} bytes is impossible")
            }
            BadFrame::Checksum { frame_bytes } => {
                write!(f, "a frame of {frame_bytes} bytes fails its checksum")
            }
            BadFrame::Body { detail } => write!(f, "a whole frame does not parse: {detail}"),
        }
    }
}

/// Whether a whole frame begins anywhere in `bytes` after its first byte: after a damaged
/// header, whether anything readable would be lost by cutting the file there.
pub(crate) fn frame_follows(bytes: &[u8]) -> bool {
    (1..bytes.len()).any(|offset| decode(&bytes[offset..]).is_ok())
}

/// The bytes a push of `kind` and `payload_len` bytes takes in a frame, header included.
pub(crate) fn push_frame_bytes(kind: &str, payload_len: u64) -> u64 {
    (HEADER_BYTES + 1 + 8 + 8 + 1 + kind.len() + 4) as u64 + payload_len
}

fn encode_op(out: &mut Vec<u8>, op: &Op<'_>) {
    match op {
        Op::Checkpoint(checkpoint) => {
            out.push(TAG_CHECKPOINT);
            for value in [
                checkpoint.segment,
                checkpoint.next_seq,
                checkpoint.acked_through,
                checkpoint.dropped,
            ] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            let n_gaps = u32::try_from(checkpoint.gaps.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&n_gaps.to_le_bytes());
            for gap in &checkpoint.gaps {
                encode_gap(out, gap);
            }
        }
        Op::Push {
            seq,
            at_ns,
            kind,
            payload,
        } => {
            out.push(TAG_PUSH);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&at_ns.to_le_bytes());
            out.push(u8::try_from(kind.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(kind.as_bytes());
            let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&payload_len.to_le_bytes());
            out.extend_from_slice(payload);
        }
        Op::Drop(gap) => {
            out.push(TAG_DROP);
            encode_gap(out, gap);
        }
        Op::Ack { up_to } => {
            out.push(TAG_ACK);
            out.extend_from_slice(&up_to.to_le_bytes());
        }
    }
}

fn encode_gap(out: &mut Vec<u8>, gap: &Gap) {
    out.extend_from_slice(&gap.first.to_le_bytes());
    out.extend_from_slice(&gap.last.to_le_bytes());
    out.push(reason_code(gap.reason));
}

fn reason_code(reason: GapReason) -> u8 {
    match reason {
        GapReason::QueueFull => 1,
        GapReason::TooOld => 2,
        GapReason::DiskFull => 3,
    }
}

/// Reads operations from a frame body; `None` when the body ends inside a field.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn op(&mut self) -> Option<Result<Op<'a>, String>> {
        let res = match self.u8()? {
            TAG_CHECKPOINT => {
                let segment = self.u64()?;
                let next_seq = self.u64()?;
                let acked_through = self.u64()?;
                let dropped = self.u64()?;
                let n_gaps = self.u32()?;
                let mut gaps = Vec::new();
                for _ in 0..n_gaps {
                    match self.gap()? {
                        Ok(gap) => gaps.push(gap),
                        Err(detail) => return Some(Err(detail)),
                    }
                }
                Ok(Op::Checkpoint(Checkpoint {
                    segment,
                    next_seq,
                    acked_through,
                    dropped,
                    gaps,
                }))
            }
            TAG_PUSH => {
                let seq = self.u64()?;
                let at_ns = i64::from_le_bytes(self.array()?);
                let kind_len = self.u8()?;
                let kind = self.take(usize::from(kind_len))?;
                let payload_len = self.u32()?;
                let payload = self.take(usize::try_from(payload_len).ok()?)?;
                match std::str::from_utf8(kind) {
                    Ok(kind) => Ok(Op::Push {
                        seq,
                        at_ns,
                        kind,
                        payload,
                    }),
                    Err(_) => Err(format!("the kind of seq {seq} is not UTF-8")),
                }
            }
            TAG_DROP => self.gap()?.map(Op::Drop),
            TAG_ACK => Ok(Op::Ack { up_to: self.u64()? }),
            tag => Err(format!("unknown operation tag {tag}")),
        };
        Some(res)
    }

    fn gap(&mut self) -> Option<Result<Gap, String>> {
        let first = self.u64()?;
        let last = self.u64()?;
        let reason = match self.u8()? {
            1 => GapReason::QueueFull,
            2 => GapReason::TooOld,
            3 => GapReason::DiskFull,
            code => return Some(Err(format!("unknown gap reason {code}"))),
        };
        Some(Ok(Gap {
            first,
            last,
            reason,
        }))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[byte]| byte)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib and Ethernet), a byte at a time from a table built
/// at compile time: about 25 lines instead of a dependency, and fast enough to check a full queue
/// at open (hundreds of MB/s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut idx = 0;
    while idx < 256 {
        let mut crc = idx as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[idx] = crc;
        idx += 1;
    }
    table
};

impl Crc32 {
    pub(crate) fn new() -> Crc32 {
        Crc32(!0)
    }

    pub(crate) fn update(self, bytes: &[u8]) -> Crc32 {
        let mut crc = self.0;
        for byte in bytes {
            crc = CRC_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
        }
        Crc32(crc)
    }

    pub(crate) fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use expect_test::{Expect, expect};

    use crate::GapReason;
    use crate::frame::{Checkpoint, Crc32, Gap, Op, decode, encode};

    /// Encodes `ops`, shows the frame in hex (header on its own line) and checks it decodes back.
    #[track_caller]
    fn check(ops: &[Op<'_>], expect: Expect) {
        let frame = encode(ops);
        let (decoded, len) = decode(&frame).expect("decodes");
        assert_eq!(decoded, ops);
        assert_eq!(len, frame.len());
        let mut out = String::new();
        let (header, body) = frame.split_at(12);
        writeln!(out, "{}", hex(header)).expect("write");
        for chunk in body.chunks(24) {
            writeln!(out, "{}", hex(chunk)).expect("write");
        }
        expect.assert_eq(&out);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(
            Crc32::new().update(b"123456789").finish(),
            0xCBF4_3926,
            "check value"
        );
        assert_eq!(
            Crc32::new().update(b"1234").update(b"56789").finish(),
            0xCBF4_3926,
            "in pieces"
        );
    }

    #[test]
    fn a_push_with_a_drop() {
        check(
            &[
                Op::Drop(Gap {
                    first: 1,
                    last: 2,
                    reason: GapReason::QueueFull,
                }),
                Op::Push {
                    seq: 3,
                    at_ns: -1,
                    kind: "result",
                    payload: b"abc",
                },
            ],
            expect![[r#"
                31000000f7ba384bb1fdac09
                030100000000000000020000000000000001020300000000
                000000ffffffffffffffff06726573756c74030000006162
                63
            "#]],
        );
    }

    #[test]
    fn a_checkpoint_and_an_ack() {
        check(
            &[Op::Checkpoint(Checkpoint {
                segment: 7,
                next_seq: 10,
                acked_through: 2,
                dropped: 4,
                gaps: vec![Gap {
                    first: 3,
                    last: 6,
                    reason: GapReason::DiskFull,
                }],
            })],
            expect![[r#"
                36000000376e6bbc6aeeeb4d
                0107000000000000000a0000000000000002000000000000
                000400000000000000010000000300000000000000060000
                000000000003
            "#]],
        );
        check(
            &[Op::Ack { up_to: 258 }],
            expect![[r#"
                090000006b49b75f157651b9
                040201000000000000
            "#]],
        );
    }

    #[test]
    fn damage_is_told_apart() {
        let frame = encode(&[Op::Ack { up_to: 5 }]);
        let mut out = String::new();
        let mut flipped = frame.clone();
        flipped[14] ^= 1;
        let mut long = frame.clone();
        long[..4].copy_from_slice(&100u32.to_le_bytes());
        let mut zero = frame.clone();
        zero[..4].copy_from_slice(&0u32.to_le_bytes());
        let head_crc = Crc32::new().update(&zero[..8]).finish();
        zero[8..12].copy_from_slice(&head_crc.to_le_bytes());
        let mut unknown_frame = frame.clone();
        unknown_frame[12] = 9;
        let body_crc = Crc32::new().update(&unknown_frame[12..]).finish();
        unknown_frame[4..8].copy_from_slice(&body_crc.to_le_bytes());
        let head_crc = Crc32::new().update(&unknown_frame[..8]).finish();
        unknown_frame[8..12].copy_from_slice(&head_crc.to_le_bytes());
        let mut long_checked = long.clone();
        let head_crc = Crc32::new().update(&long_checked[..8]).finish();
        long_checked[8..12].copy_from_slice(&head_crc.to_le_bytes());
        for (name, bytes) in [
            ("whole", &frame[..]),
            ("cut in the header", &frame[..5]),
            ("cut in the body", &frame[..frame.len() - 1]),
            ("a bit flipped", &flipped[..]),
            ("a long length, header unchecked", &long[..]),
            ("a long length, header checked", &long_checked[..]),
            ("a zero length", &zero[..]),
            ("an unknown operation", &unknown_frame[..]),
        ] {
            let res = match decode(bytes) {
                Ok((ops, len)) => format!("{ops:?} in {len} bytes"),
                Err(bad) => format!("{bad}"),
            };
            writeln!(out, "{name}: {res}").expect("write");
        }
        expect![[r#"
            whole: [Ack { up_to: 5 }] in 21 bytes
            cut in the header: a frame header is cut short
            cut in the body: a frame of 21 bytes runs past the end of the file
            a bit flipped: a frame of 21 bytes fails its checksum
            a long length, header unchecked: a frame header fails its checksum
            a long length, header checked: a frame of 112 bytes runs past the end of the file
            a zero length: a frame length of 0 bytes is impossible
            an unknown operation: a whole frame does not parse: unknown operation tag 9
        "#]]
        .assert_eq(&out);
    }
}
