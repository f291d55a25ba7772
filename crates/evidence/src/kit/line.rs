//! Checks of single bundle lines, spread over worker threads: JSON structure, canonical (JCS) form, members, the bodies of agent and packet bundles, and signatures in batches.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use evidence_schema::{BUNDLE_MEMBERS, BUNDLE_SCHEMA_V1};
use serde::Deserialize as _;
use sha2::{Digest, Sha256};

use crate::jcs;
use crate::kit::agent::{self, AgentItem};
use crate::merkle;

/// What one worker found about one bundle line.
pub(crate) struct LineCheck {
    /// SHA-256 of the line (the next line's `prev`).
    pub(crate) line_hash: [u8; 32],
    /// The line's Merkle leaf hash.
    pub(crate) leaf_hash: [u8; 32],
    /// The line's `prev`, when it is well-formed.
    pub(crate) prev: Option<[u8; 32]>,
    /// Everything wrong with the line on its own.
    pub(crate) problems: Vec<String>,
    /// What an `agent_*` bundle tells about its agent, for the checks in log order.
    pub(crate) agent: Option<AgentItem>,
}

/// Checks a chunk of lines on two threads; results are in line order.
pub(crate) fn check_chunk(
    chunk: &[Vec<u8>],
    first_seq: u64,
    key: Option<&VerifyingKey>,
    expected_fields: Option<&(String, String)>,
) -> Vec<LineCheck> {
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, 8);
    let per_thread = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per_thread)
            .enumerate()
            .map(|(part_idx, part)| {
                let part_first = first_seq + (part_idx * per_thread) as u64;
                scope.spawn(move || check_part(part, part_first, key, expected_fields))
            })
            .collect();
        let mut res = Vec::with_capacity(chunk.len());
        for (part_idx, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(part) => res.extend(part),
                Err(_) => {
                    // A worker panicked (a bug); report its lines as unchecked rather than aborting.
                    let part_len = chunk
                        .chunks(per_thread)
                        .nth(part_idx)
                        .map_or(0, <[Vec<u8>]>::len);
                    res.extend((0..part_len).map(|_| LineCheck {
                        line_hash: [0; 32],
                        leaf_hash: [0; 32],
                        prev: None,
                        problems: vec!["internal error while checking this line".to_owned()],
                        agent: None,
                    }));
                }
            }
        }
        res
    })
}

/// Checks consecutive lines: structure, canonical form, fields; then their signatures in one batch.
fn check_part(
    lines: &[Vec<u8>],
    first_seq: u64,
    key: Option<&VerifyingKey>,
    expected_fields: Option<&(String, String)>,
) -> Vec<LineCheck> {
    let mut checks = Vec::with_capacity(lines.len());
    let mut to_verify: Vec<(usize, Vec<u8>, Signature)> = Vec::with_capacity(lines.len());
    for (line_idx, line) in lines.iter().enumerate() {
        let seq = first_seq + line_idx as u64;
        let mut check = LineCheck {
            line_hash: Sha256::digest(line).into(),
            leaf_hash: merkle::leaf_hash(line),
            prev: None,
            problems: Vec::new(),
            agent: None,
        };
        if let Some((unsigned, signature)) = check_fields(line, seq, expected_fields, &mut check)
            && key.is_some()
        {
            to_verify.push((line_idx, unsigned, signature));
        }
        checks.push(check);
    }
    let Some(key) = key else { return checks };
    let messages: Vec<&[u8]> = to_verify
        .iter()
        .map(|(_, unsigned, _)| unsigned.as_slice())
        .collect();
    let signatures: Vec<Signature> = to_verify
        .iter()
        .map(|(_, _, signature)| *signature)
        .collect();
    let keys = vec![*key; to_verify.len()];
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
        for (line_idx, unsigned, signature) in &to_verify {
            if key.verify_strict(unsigned, signature).is_err() {
                checks[*line_idx]
                    .problems
                    .push("signature does not verify under appliance.pub (bundle altered, or signed by another key)".to_owned());
            }
        }
    }
    checks
}

/// Checks one line's JSON structure and fields; returns the signed message and signature when they are well-formed.
fn check_fields(
    line: &[u8],
    seq: u64,
    expected_fields: Option<&(String, String)>,
    check: &mut LineCheck,
) -> Option<(Vec<u8>, Signature)> {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            check.problems.push(format!(
                "not valid JSON ({error}): the line was altered or cut"
            ));
            return None;
        }
    };
    let Some(map) = value.as_object() else {
        check.problems.push("not a JSON object".to_owned());
        return None;
    };
    let unsigned = check_canonical(line, map, check)?;
    check_members(map, seq, expected_fields, check);
    if let (Some(kind), Some(body)) = (
        map.get("kind").and_then(serde_json::Value::as_str),
        map.get("body"),
    ) {
        check.agent = agent::check_body(kind, body, &mut check.problems);
        if kind == evidence_schema::KIND_PACKET {
            check_packet(body, &mut check.problems);
        }
    }
    let signature = check_signature(map, check)?;
    Some((unsigned, signature))
}

/// Checks that `line` is exactly the JCS form of its parse; returns the JCS form without `sig` (the signed message).
fn check_canonical(
    line: &[u8],
    map: &serde_json::Map<String, serde_json::Value>,
    check: &mut LineCheck,
) -> Option<Vec<u8>> {
    let mut full = Vec::with_capacity(line.len());
    let mut unsigned = Vec::with_capacity(line.len());
    full.push(b'{');
    unsigned.push(b'{');
    for (member_idx, (name, member)) in jcs::sorted_members(map).into_iter().enumerate() {
        let mut encoded = Vec::new();
        if member_idx > 0 {
            encoded.push(b',');
        }
        jcs::write_string(name, &mut encoded);
        encoded.push(b':');
        if let Err(error) = jcs::write_value(member, &mut encoded) {
            check
                .problems
                .push(format!("member {name} has no canonical form: {error}"));
            return None;
        }
        full.extend_from_slice(&encoded);
        if name != "sig" {
            if unsigned.len() == 1 && encoded.first() == Some(&b',') {
                unsigned.extend_from_slice(&encoded[1..]);
            } else {
                unsigned.extend_from_slice(&encoded);
            }
        }
    }
    full.push(b'}');
    unsigned.push(b'}');
    if full != line {
        check.problems.push(
            "not in canonical JCS form: bytes outside the signed content were changed".to_owned(),
        );
    }
    Some(unsigned)
}

/// Checks the members other than `sig`: names, schema, `seq`, appliance and key ids, strings, time, body and `prev`.
fn check_members(
    map: &serde_json::Map<String, serde_json::Value>,
    seq: u64,
    expected_fields: Option<&(String, String)>,
    check: &mut LineCheck,
) {
    if let Some(extra) = map
        .keys()
        .find(|name| !BUNDLE_MEMBERS.contains(&name.as_str()))
    {
        check
            .problems
            .push(format!("unexpected member {extra:?} (not a v1 bundle)"));
    }
    let text = |name: &str| map.get(name).and_then(serde_json::Value::as_str);
    if text("schema") != Some(BUNDLE_SCHEMA_V1) {
        check
            .problems
            .push(format!("schema is not {BUNDLE_SCHEMA_V1}"));
    }
    match map.get("seq").and_then(serde_json::Value::as_u64) {
        Some(found) if found == seq => {}
        found => check.problems.push(format!(
            "seq is {}, expected {seq} (a bundle was removed, inserted or reordered)",
            found.map_or_else(|| "missing".to_owned(), |found| found.to_string())
        )),
    }
    if let Some((appliance, key_id)) = expected_fields {
        if text("appliance") != Some(appliance.as_str()) {
            check.problems.push(format!("appliance is not {appliance}, the id of appliance.pub (bundle from another appliance)"));
        }
        if text("key") != Some(key_id.as_str()) {
            check.problems.push(format!(
                "key is not {key_id}, the key id of appliance.pub (bundle signed by another key)"
            ));
        }
    }
    for name in ["site", "kind", "catalog"] {
        if text(name).is_none() {
            check
                .problems
                .push(format!("{name} is missing or not a string"));
        }
    }
    if !text("time").is_some_and(is_bundle_time) {
        check.problems.push(
            "time is not an RFC 3339 UTC time with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)"
                .to_owned(),
        );
    }
    if !map.get("body").is_some_and(serde_json::Value::is_object) {
        check
            .problems
            .push("body is missing or not an object".to_owned());
    }
    let mut prev = [0u8; 32];
    match text("prev") {
        Some(hex_text)
            if hex_text.len() == 64
                && !hex_text.bytes().any(|b| b.is_ascii_uppercase())
                && hex::decode_to_slice(hex_text, &mut prev).is_ok() =>
        {
            check.prev = Some(prev);
        }
        _ => check
            .problems
            .push("prev is not 64 lowercase hex digits".to_owned()),
    }
}

/// The `sig` member as an Ed25519 signature whose R strict verification would accept.
fn check_signature(
    map: &serde_json::Map<String, serde_json::Value>,
    check: &mut LineCheck,
) -> Option<Signature> {
    let signature = map
        .get("sig")
        .and_then(serde_json::Value::as_str)
        .and_then(|sig| BASE64.decode(sig).ok())
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok());
    let Some(signature) = signature else {
        check
            .problems
            .push("sig is not a base64 Ed25519 signature".to_owned());
        return None;
    };
    if !r_is_canonical_and_not_small_order(&signature) {
        check.problems.push(
            "signature has a non-canonical or small-order R (rejected by strict verification)"
                .to_owned(),
        );
        return None;
    }
    Some(Signature::from_bytes(&signature))
}

/// Batch verification is not "strict", so R is checked here as `verify_strict` would reject it:
/// its y coordinate must be canonical (y < 2^255 - 19) and it must not be one of the 8 small-order points.
/// Comparing encodings with the sign bit masked covers both signs of every torsion point without decoding R.
/// Non-canonical S (S ≥ L) is rejected by the batch verifier itself; the key is checked with `is_weak` once.
pub(crate) fn r_is_canonical_and_not_small_order(signature: &[u8; 64]) -> bool {
    static SMALL_ORDER: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let small_order = SMALL_ORDER.get_or_init(|| {
        curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|point| {
                let mut bytes = point.compress().to_bytes();
                bytes[31] &= 0x7f;
                bytes
            })
            .collect()
    });
    let mut y = [0u8; 32];
    y.copy_from_slice(&signature[..32]);
    y[31] &= 0x7f;
    // y >= p exactly when the top byte is 0x7f, bytes 1..31 are 0xff and the low byte is at least 0xed.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|byte| *byte == 0xff) && y[0] >= 0xed;
    !non_canonical && !small_order.contains(&y)
}

fn is_bundle_time(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(idx, byte)| match idx {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'.',
            23 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

/// A `packet` body fits its schema and names its files plainly with their SHA-256
/// (docs/EVIDENCE-FORMAT.md, "Body of `kind = \"packet\"`").
fn check_packet(body: &serde_json::Value, problems: &mut Vec<String>) {
    match evidence_schema::PacketBody::deserialize(body) {
        Ok(packet) => {
            if let Some(problem) = packet.problem() {
                problems.push(format!("packet body: {problem}"));
            }
        }
        Err(error) => problems.push(format!("packet body does not fit its schema: {error}")),
    }
}
