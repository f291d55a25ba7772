//! Endpoint agents in a kit: the layout v1 signing bytes of a check result, and the checks of the `agent_*` bundles in log order (enrollment, device signatures, sequence numbers, revocation).
//!
//! docs/EVIDENCE-FORMAT.md ("Bodies of the agent kinds") says what each check proves, and
//! docs/AGENT-PROTOCOL.md ("What is signed") defines the layout. The layout is parsed here instead
//! of being taken from `agent_proto`, which pulls tonic into a crate that must stay synchronous and
//! light; the tests check this parser against that crate's byte-exact snapshot of its encoder.
//!
//! The work is split like the rest of `verify`:
//! [`check_body`] runs on the worker threads with each line and needs nothing but the line (the
//! body's schema, the signed bytes parsed and compared with the body, the signature's encoding);
//! [`AgentLedger::observe`] sees the items in log order on one thread (an enrollment before
//! everything else of its agent, one enrollment per agent ID and per device key, nothing after a
//! revocation, sequence numbers without holes or repeats) and queues each result's signature with
//! its device key; [`AgentLedger::verify_signatures`] checks the queued signatures in batches on
//! the worker threads.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use evidence_schema::{
    AgentEnrollmentBody, AgentGapBody, AgentRemediationBody, AgentResultBody, AgentRevocationBody,
    KIND_AGENT_ENROLLMENT, KIND_AGENT_GAP, KIND_AGENT_REMEDIATION, KIND_AGENT_RESULT,
    KIND_AGENT_REVOCATION,
};
use serde::Deserialize;

use crate::kit::line::r_is_canonical_and_not_small_order;
use crate::kit::{AgentGap, AgentSummary};

/// The first bytes of a check result's signing bytes, layout v1.
pub(crate) const RESULT_SIGNING_DOMAIN: &[u8; 28] = b"osiris.agent.v1.CheckResult\0";

/// A check result as its device signed it (layout v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedResult {
    pub(crate) seq: u64,
    pub(crate) check_id: String,
    /// The `CheckStatus` wire number: 1 pass, 2 fail, 3 error, 4 not applicable.
    pub(crate) status: i32,
    pub(crate) observed_at_unix_ms: i64,
    pub(crate) catalog_version: String,
    /// In strictly ascending byte order of key.
    pub(crate) facts: Vec<(String, String)>,
}

/// Why signing bytes are not a layout v1 check result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LayoutError {
    /// The bytes do not start with [`RESULT_SIGNING_DOMAIN`].
    #[error("it does not start with the domain \"osiris.agent.v1.CheckResult\\0\"")]
    Domain,
    /// The bytes end inside a fixed-size field or a length prefix.
    #[error("it ends inside {field}, which needs {needed} bytes ({left} left)")]
    Truncated {
        field: Field,
        needed: usize,
        left: usize,
    },
    /// A length prefix runs past the end of the bytes.
    #[error("{field} is said to be {len} bytes long, but only {left} bytes are left")]
    Overlong { field: Field, len: u32, left: usize },
    /// A string is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 { field: Field },
    /// The fact count cannot fit in what is left (each fact takes at least 8 bytes).
    #[error("the fact count is {count}, but the {left} bytes left hold at most {} facts", left / 8)]
    FactCount { count: u32, left: usize },
    /// A fact key equals the one before it.
    #[error(
        "the key {key:?} of fact {fact} is the key of the fact before it (keys must be strictly ascending by bytes)"
    )]
    DuplicateKey {
        /// 1-based.
        fact: u64,
        key: String,
    },
    /// A fact key sorts before the one before it.
    #[error(
        "the key {key:?} of fact {fact} sorts before the key {previous:?} of the fact before it (keys must be strictly ascending by bytes)"
    )]
    UnsortedKey {
        /// 1-based.
        fact: u64,
        key: String,
        previous: String,
    },
    /// Bytes follow the last fact.
    #[error("{count} trailing byte(s) follow the last fact")]
    Trailing { count: usize },
}

/// A field of the layout, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Seq,
    CheckId,
    Status,
    ObservedAt,
    CatalogVersion,
    FactCount,
    /// The key of the fact at this 0-based index.
    FactKey(u32),
    /// The value of the fact at this 0-based index.
    FactValue(u32),
}

/// What one bundle line tells the ledger about an agent, once its body has been checked on its own.
#[derive(Debug, Clone)]
pub(crate) enum AgentItem {
    Enrollment {
        agent_id: String,
        /// `None` when the body's key is unusable (already reported).
        key: Option<VerifyingKey>,
    },
    Result {
        agent_id: String,
        seq: u64,
        /// The signed bytes and the signature, `None` when either is unusable (already reported).
        signed: Option<(Vec<u8>, Signature)>,
    },
    Gap {
        agent_id: String,
        first_seq: u64,
        last_seq: u64,
        reason: String,
    },
    Remediation {
        agent_id: String,
        seq: u64,
    },
    Revocation {
        agent_id: String,
    },
}

/// The agents of a log, fed its agent items in log order.
#[derive(Debug, Default)]
pub(crate) struct AgentLedger {
    agents: BTreeMap<String, AgentState>,
    /// Which agent enrolled each device key, and at which line.
    keys: HashMap<[u8; 32], (String, u64)>,
    /// Signatures waiting for [`AgentLedger::verify_signatures`].
    pending: Vec<PendingSignature>,
}

#[derive(Debug)]
struct AgentState {
    enrollment_line: u64,
    key: Option<VerifyingKey>,
    revocation_line: Option<u64>,
    /// The number the next item must carry (or a gap must start at).
    next_seq: u64,
    results: u64,
    remediations: u64,
    gaps: Vec<AgentGap>,
}

#[derive(Debug)]
struct PendingSignature {
    line: u64,
    agent_id: String,
    key_line: u64,
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
}

/// Parses layout v1 of a check result's signing bytes, strictly: every byte must be where the
/// layout puts it, so two different byte strings never parse to the same result.
pub(crate) fn parse_signed_result(bytes: &[u8]) -> Result<SignedResult, LayoutError> {
    let mut reader = Reader {
        rest: bytes
            .strip_prefix(RESULT_SIGNING_DOMAIN.as_slice())
            .ok_or(LayoutError::Domain)?,
    };
    let seq = u64::from_be_bytes(reader.array(Field::Seq)?);
    let check_id = reader.string(Field::CheckId)?;
    let status = i32::from_be_bytes(reader.array(Field::Status)?);
    let observed_at_unix_ms = i64::from_be_bytes(reader.array(Field::ObservedAt)?);
    let catalog_version = reader.string(Field::CatalogVersion)?;
    let count = u32::from_be_bytes(reader.array(Field::FactCount)?);
    // Each fact takes at least its two length prefixes, so a count the rest cannot hold is
    // refused before anything is allocated for it.
    if u64::from(count) * 8 > reader.rest.len() as u64 {
        return Err(LayoutError::FactCount {
            count,
            left: reader.rest.len(),
        });
    }
    let mut facts: Vec<(String, String)> = Vec::with_capacity(count as usize);
    for fact_idx in 0..count {
        let key = reader.string(Field::FactKey(fact_idx))?;
        if let Some((previous, _)) = facts.last() {
            let fact = u64::from(fact_idx) + 1;
            match key.as_bytes().cmp(previous.as_bytes()) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => return Err(LayoutError::DuplicateKey { fact, key }),
                std::cmp::Ordering::Less => {
                    return Err(LayoutError::UnsortedKey {
                        fact,
                        key,
                        previous: previous.clone(),
                    });
                }
            }
        }
        let value = reader.string(Field::FactValue(fact_idx))?;
        facts.push((key, value));
    }
    if !reader.rest.is_empty() {
        return Err(LayoutError::Trailing {
            count: reader.rest.len(),
        });
    }
    Ok(SignedResult {
        seq,
        check_id,
        status,
        observed_at_unix_ms,
        catalog_version,
        facts,
    })
}

/// Checks the body of an `agent_*` bundle on its own; returns what the ledger needs of it, or
/// `None` for other kinds and for bodies too broken to account for (the problem is reported).
pub(crate) fn check_body(
    kind: &str,
    body: &serde_json::Value,
    problems: &mut Vec<String>,
) -> Option<AgentItem> {
    match kind {
        KIND_AGENT_ENROLLMENT => check_enrollment(parse_body(kind, body, problems)?, problems),
        KIND_AGENT_RESULT => check_result(parse_body(kind, body, problems)?, problems),
        KIND_AGENT_GAP => check_gap(parse_body(kind, body, problems)?, problems),
        KIND_AGENT_REMEDIATION => check_remediation(parse_body(kind, body, problems)?, problems),
        KIND_AGENT_REVOCATION => {
            let body: AgentRevocationBody = parse_body(kind, body, problems)?;
            check_agent_id(&body.agent_id, problems)?;
            Some(AgentItem::Revocation {
                agent_id: body.agent_id,
            })
        }
        _ => None,
    }
}

impl AgentLedger {
    /// Takes the next agent item of the log, found on `line`; problems go to `problems` with
    /// their line.
    pub(crate) fn observe(
        &mut self,
        line: u64,
        item: AgentItem,
        problems: &mut Vec<(u64, String)>,
    ) {
        match item {
            AgentItem::Enrollment { agent_id, key } => self.enroll(line, agent_id, key, problems),
            AgentItem::Result {
                agent_id,
                seq,
                signed,
            } => {
                let Some(state) = self.sequenced(line, &agent_id, KIND_AGENT_RESULT, problems)
                else {
                    return;
                };
                state.results += 1;
                account(state, line, &agent_id, seq, seq, problems);
                let (key, key_line) = (state.key, state.enrollment_line);
                match (key, signed) {
                    (Some(key), Some((message, signature))) => {
                        self.pending.push(PendingSignature {
                            line,
                            agent_id,
                            key_line,
                            key,
                            message,
                            signature,
                        });
                    }
                    (None, Some(_)) => problems.push((
                        line,
                        format!("agent {agent_id}: its enrollment at line {key_line} has no usable device key, so the device signature cannot be checked"),
                    )),
                    (_, None) => {}
                }
            }
            AgentItem::Gap {
                agent_id,
                first_seq,
                last_seq,
                reason,
            } => {
                let Some(state) = self.sequenced(line, &agent_id, KIND_AGENT_GAP, problems) else {
                    return;
                };
                account(state, line, &agent_id, first_seq, last_seq, problems);
                state.gaps.push(AgentGap {
                    first_seq,
                    last_seq,
                    reason,
                });
            }
            AgentItem::Remediation { agent_id, seq } => {
                let Some(state) =
                    self.sequenced(line, &agent_id, KIND_AGENT_REMEDIATION, problems)
                else {
                    return;
                };
                state.remediations += 1;
                account(state, line, &agent_id, seq, seq, problems);
            }
            AgentItem::Revocation { agent_id } => match self.agents.get_mut(&agent_id) {
                None => problems.push((
                    line,
                    format!("agent {agent_id}: agent_revocation without an agent_enrollment earlier in the log"),
                )),
                Some(AgentState {
                    revocation_line: Some(first),
                    ..
                }) => problems.push((
                    line,
                    format!("agent {agent_id}: revoked again (first at line {first})"),
                )),
                Some(state) => state.revocation_line = Some(line),
            },
        }
    }

    /// Verifies the signatures queued since the last call; returns a problem for each that fails.
    ///
    /// Batch verification (`ed25519_dalek::verify_batch`) on the worker threads, not
    /// `verify_strict` one by one, which costs several times as much per signature (measured on
    /// one core of the 2-core test machine: 34 µs strict, 9.5 µs in batches of 4,000; the agent
    /// checks then add 11 µs of CPU time per result in all, 5.8 µs of wall time). A batch accepts
    /// exactly what strict verification accepts, but for three differences, all closed before a
    /// signature gets here, as for the appliance's own signatures (`line.rs`): `R` must be a
    /// canonical encoding and not of small order ([`check_body`]), the device key must not be of
    /// small order (checked at enrollment), and `S` must be below the group order (the batch
    /// verifier refuses it itself). What is left is a torsion component in `R` that the batch's
    /// random coefficients happen to cancel: only the holder of the device's private key can make
    /// such a signature, and it is then still a signature by that key over exactly these bytes.
    /// A batch that fails is checked again signature by signature with `verify_strict`, so every
    /// failure reported is a strict failure and names its line.
    pub(crate) fn verify_signatures(&mut self) -> Vec<(u64, String)> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Vec::new();
        }
        let threads = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(1, 8);
        let per_thread = pending.len().div_ceil(threads).max(64);
        std::thread::scope(|scope| {
            let handles: Vec<_> = pending
                .chunks(per_thread)
                .map(|part| scope.spawn(move || failed_signatures(part)))
                .collect();
            let mut res = Vec::new();
            for (handle, part) in handles.into_iter().zip(pending.chunks(per_thread)) {
                match handle.join() {
                    Ok(failed) => res.extend(failed.into_iter().map(|one| {
                        (
                            one.line,
                            format!(
                                "agent {}: the device signature does not verify with the key enrolled at line {} (the result was altered, or signed by another device)",
                                one.agent_id, one.key_line
                            ),
                        )
                    })),
                    // A worker panicked (a bug): its signatures are reported unchecked, never good.
                    Err(_) => res.extend(part.iter().map(|one| {
                        (
                            one.line,
                            "internal error while checking the device signature of this line"
                                .to_owned(),
                        )
                    })),
                }
            }
            res
        })
    }

    /// The agents and what the log accounts for of each, by agent ID.
    pub(crate) fn finish(self) -> Vec<AgentSummary> {
        self.agents
            .into_iter()
            .map(|(agent_id, state)| AgentSummary {
                agent_id,
                enrollment_line: state.enrollment_line,
                revocation_line: state.revocation_line,
                results: state.results,
                remediations: state.remediations,
                last_seq: state.next_seq - 1,
                gaps: state.gaps,
            })
            .collect()
    }

    fn enroll(
        &mut self,
        line: u64,
        agent_id: String,
        key: Option<VerifyingKey>,
        problems: &mut Vec<(u64, String)>,
    ) {
        if let Some(first) = self.agents.get(&agent_id) {
            // An agent's sequence numbers start at 1 with its device key, so a second enrollment
            // under the same ID would make its numbers ambiguous: a device enrolled again gets
            // a new ID, also after a revocation.
            problems.push((
                line,
                format!(
                    "agent {agent_id}: enrolled again (first at line {}): an agent ID is enrolled once, a device enrolled again gets a new ID",
                    first.enrollment_line
                ),
            ));
            return;
        }
        if let Some(key) = &key {
            // The signed bytes do not name the agent, so only the key ties a result to it.
            match self.keys.get(key.as_bytes()) {
                Some((other, other_line)) => problems.push((
                    line,
                    format!("agent {agent_id}: its device key is already enrolled for agent {other} at line {other_line}: each agent has its own key"),
                )),
                None => {
                    self.keys
                        .insert(key.to_bytes(), (agent_id.clone(), line));
                }
            }
        }
        self.agents.insert(
            agent_id,
            AgentState {
                enrollment_line: line,
                key,
                revocation_line: None,
                next_seq: 1,
                results: 0,
                remediations: 0,
                gaps: Vec::new(),
            },
        );
    }

    /// The state of the agent of a sequenced item, or `None` (and a problem) when it has none.
    fn sequenced(
        &mut self,
        line: u64,
        agent_id: &str,
        kind: &str,
        problems: &mut Vec<(u64, String)>,
    ) -> Option<&mut AgentState> {
        let Some(state) = self.agents.get_mut(agent_id) else {
            // A kit holds the whole log from bundle 0 (verify checks the first line's seq and
            // prev), so the enrollment cannot be outside it.
            problems.push((
                line,
                format!("agent {agent_id}: {kind} without an agent_enrollment earlier in the log"),
            ));
            return None;
        };
        if let Some(revoked) = state.revocation_line {
            problems.push((
                line,
                format!("agent {agent_id}: {kind} sealed after its agent_revocation at line {revoked}: a revoked agent is no longer heard"),
            ));
        }
        Some(state)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seq => f.write_str("seq"),
            Self::CheckId => f.write_str("check_id"),
            Self::Status => f.write_str("status"),
            Self::ObservedAt => f.write_str("observed_at_unix_ms"),
            Self::CatalogVersion => f.write_str("catalog_version"),
            Self::FactCount => f.write_str("the fact count"),
            Self::FactKey(idx) => write!(f, "the key of fact {}", u64::from(*idx) + 1),
            Self::FactValue(idx) => write!(f, "the value of fact {}", u64::from(*idx) + 1),
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: Field, needed: usize) -> Result<&'a [u8], LayoutError> {
        if self.rest.len() < needed {
            return Err(LayoutError::Truncated {
                field,
                needed,
                left: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(needed);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], LayoutError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn string(&mut self, field: Field) -> Result<String, LayoutError> {
        let len = u32::from_be_bytes(self.array(field)?);
        let left = self.rest.len();
        let Some(bytes) = usize::try_from(len)
            .ok()
            .filter(|len| *len <= left)
            .and_then(|len| self.take(field, len).ok())
        else {
            return Err(LayoutError::Overlong { field, len, left });
        };
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| LayoutError::NotUtf8 { field })
    }
}

/// Checks that items `first_seq..=last_seq` continue the agent's sequence exactly, and moves it on.
fn account(
    state: &mut AgentState,
    line: u64,
    agent_id: &str,
    first_seq: u64,
    last_seq: u64,
    problems: &mut Vec<(u64, String)>,
) {
    let expected = state.next_seq;
    let last_accounted = expected - 1;
    let message = if first_seq == expected {
        None
    } else if first_seq > expected {
        let missing = if first_seq - 1 == expected {
            format!("{expected} missing")
        } else {
            format!("{expected}–{} missing", first_seq - 1)
        };
        Some(if last_accounted == 0 {
            format!(
                "agent {agent_id}: sequence starts at {first_seq} without a gap record ({missing})"
            )
        } else {
            format!(
                "agent {agent_id}: sequence jumps from {last_accounted} to {first_seq} without a gap record ({missing})"
            )
        })
    } else if first_seq == 0 {
        Some(format!(
            "agent {agent_id}: sequence number 0 (an agent's numbers start at 1)"
        ))
    } else if first_seq != last_seq {
        Some(format!(
            "agent {agent_id}: gap {first_seq}–{last_seq} covers numbers already accounted for (up to {last_accounted})"
        ))
    } else if first_seq == last_accounted {
        Some(format!(
            "agent {agent_id}: sequence number {first_seq} repeated"
        ))
    } else {
        Some(format!(
            "agent {agent_id}: sequence goes back from {last_accounted} to {first_seq}"
        ))
    };
    if let Some(message) = message {
        problems.push((line, message));
    }
    // One problem per break: the sequence goes on from here, never backwards.
    state.next_seq = state.next_seq.max(last_seq.saturating_add(1));
}

/// The signatures of `part` that do not verify (strictly), after one batch for all of them.
fn failed_signatures(part: &[PendingSignature]) -> Vec<&PendingSignature> {
    let messages: Vec<&[u8]> = part.iter().map(|one| one.message.as_slice()).collect();
    let signatures: Vec<Signature> = part.iter().map(|one| one.signature).collect();
    let keys: Vec<VerifyingKey> = part.iter().map(|one| one.key).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return Vec::new();
    }
    part.iter()
        .filter(|one| one.key.verify_strict(&one.message, &one.signature).is_err())
        .collect()
}

fn parse_body<T: for<'de> Deserialize<'de>>(
    kind: &str,
    body: &serde_json::Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    match T::deserialize(body) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            problems.push(format!("{kind} body does not fit its schema: {error}"));
            None
        }
    }
}

/// An agent ID is 1–128 ASCII letters, digits, `.`, `_`, `:`, `-` (docs/AGENT-PROTOCOL.md), so it
/// can be printed in a problem as it is.
fn check_agent_id(agent_id: &str, problems: &mut Vec<String>) -> Option<()> {
    let valid = (1..=128).contains(&agent_id.len())
        && agent_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
    if valid {
        Some(())
    } else {
        problems.push(format!(
            "agent_id {agent_id:?} is not an agent ID (1–128 of A-Z a-z 0-9 . _ : -)"
        ));
        None
    }
}

fn check_enrollment(body: AgentEnrollmentBody, problems: &mut Vec<String>) -> Option<AgentItem> {
    check_agent_id(&body.agent_id, problems)?;
    let bytes = BASE64
        .decode(&body.device_public_key)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    let key = match bytes.map(|bytes| VerifyingKey::from_bytes(&bytes)) {
        None => {
            problems.push(
                "agent_enrollment device_public_key is not a base64 Ed25519 public key (32 bytes)"
                    .to_owned(),
            );
            None
        }
        Some(Err(_)) => {
            problems
                .push("agent_enrollment device_public_key is not a valid Ed25519 point".to_owned());
            None
        }
        Some(Ok(key)) if key.is_weak() => {
            problems.push("agent_enrollment device_public_key has small order (a weak key, under which forged signatures verify)".to_owned());
            None
        }
        Some(Ok(key)) => Some(key),
    };
    Some(AgentItem::Enrollment {
        agent_id: body.agent_id,
        key,
    })
}

fn check_result(body: AgentResultBody, problems: &mut Vec<String>) -> Option<AgentItem> {
    check_agent_id(&body.agent_id, problems)?;
    if status_number(&body.status).is_none() {
        problems.push(format!(
            "agent_result status {:?} is not pass, fail, error or not_applicable",
            body.status
        ));
    }
    let message = match BASE64.decode(&body.signed) {
        Ok(message) => {
            match parse_signed_result(&message) {
                Ok(signed) => compare_signed(&body, &signed, problems),
                Err(error) => problems.push(format!(
                    "agent_result signed is not a layout v1 check result: {error}"
                )),
            }
            Some(message)
        }
        Err(_) => {
            problems.push("agent_result signed is not standard base64".to_owned());
            None
        }
    };
    let signature = BASE64
        .decode(&body.signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok());
    let signature = match signature {
        None => {
            problems.push("agent_result signature is not a base64 Ed25519 signature".to_owned());
            None
        }
        Some(bytes) if !r_is_canonical_and_not_small_order(&bytes) => {
            problems.push("agent_result signature has a non-canonical or small-order R (rejected by strict verification)".to_owned());
            None
        }
        Some(bytes) => Some(Signature::from_bytes(&bytes)),
    };
    Some(AgentItem::Result {
        agent_id: body.agent_id,
        seq: body.seq,
        signed: message.zip(signature),
    })
}

/// Reports every member of the body that says something other than the signed bytes.
fn compare_signed(body: &AgentResultBody, signed: &SignedResult, problems: &mut Vec<String>) {
    const ALTERED: &str = "(the body was altered after the device signed)";
    if body.seq != signed.seq {
        problems.push(format!(
            "agent_result seq is {} but the device signed {} {ALTERED}",
            body.seq, signed.seq
        ));
    }
    if body.check_id != signed.check_id {
        problems.push(format!(
            "agent_result check_id is {:?} but the device signed {:?} {ALTERED}",
            body.check_id, signed.check_id
        ));
    }
    if status_number(&body.status).is_some_and(|number| number != signed.status) {
        let name = status_name(signed.status).unwrap_or("not a known status");
        problems.push(format!(
            "agent_result status is {:?} but the device signed {} ({name}) {ALTERED}",
            body.status, signed.status
        ));
    }
    if body.observed_at_unix_ms != signed.observed_at_unix_ms {
        problems.push(format!(
            "agent_result observed_at_unix_ms is {} but the device signed {} {ALTERED}",
            body.observed_at_unix_ms, signed.observed_at_unix_ms
        ));
    }
    if body.catalog_version != signed.catalog_version {
        problems.push(format!(
            "agent_result catalog_version is {:?} but the device signed {:?} {ALTERED}",
            body.catalog_version, signed.catalog_version
        ));
    }
    // Both sides are in ascending byte order of key: walk them together.
    let mut in_body = body.facts.iter().peekable();
    let mut in_signed = signed.facts.iter().peekable();
    loop {
        let order = match (in_body.peek(), in_signed.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((body_key, _)), Some((signed_key, _))) => {
                body_key.as_bytes().cmp(signed_key.as_bytes())
            }
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((key, value)) = in_body.next() {
                    problems.push(format!(
                        "agent_result fact {key:?} = {value:?} is not among the facts the device signed {ALTERED}"
                    ));
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((key, value)) = in_signed.next() {
                    problems.push(format!(
                        "agent_result fact {key:?} = {value:?} the device signed is missing from the body {ALTERED}"
                    ));
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((key, body_value)), Some((_, signed_value))) =
                    (in_body.next(), in_signed.next())
                    && body_value != signed_value
                {
                    problems.push(format!(
                        "agent_result fact {key:?} is {body_value:?} but the device signed {signed_value:?} {ALTERED}"
                    ));
                }
            }
        }
    }
}

fn check_gap(body: AgentGapBody, problems: &mut Vec<String>) -> Option<AgentItem> {
    check_agent_id(&body.agent_id, problems)?;
    if !["queue_full", "too_old", "disk_full"].contains(&body.reason.as_str()) {
        problems.push(format!(
            "agent_gap reason {:?} is not queue_full, too_old or disk_full",
            body.reason
        ));
    }
    if body.first_seq == 0 || body.first_seq > body.last_seq {
        problems.push(format!(
            "agent_gap {}–{} is not a range of sequence numbers (1 ≤ first_seq ≤ last_seq)",
            body.first_seq, body.last_seq
        ));
        return None;
    }
    Some(AgentItem::Gap {
        agent_id: body.agent_id,
        first_seq: body.first_seq,
        last_seq: body.last_seq,
        reason: body.reason,
    })
}

fn check_remediation(body: AgentRemediationBody, problems: &mut Vec<String>) -> Option<AgentItem> {
    check_agent_id(&body.agent_id, problems)?;
    if !["accepted", "remediate", "verify", "rollback"].contains(&body.phase.as_str()) {
        problems.push(format!(
            "agent_remediation phase {:?} is not accepted, remediate, verify or rollback",
            body.phase
        ));
    }
    if !["succeeded", "failed", "refused", "timed_out"].contains(&body.status.as_str()) {
        problems.push(format!(
            "agent_remediation status {:?} is not succeeded, failed, refused or timed_out",
            body.status
        ));
    }
    Some(AgentItem::Remediation {
        agent_id: body.agent_id,
        seq: body.seq,
    })
}

/// The `CheckStatus` wire number of a result status as bundles write it.
fn status_number(status: &str) -> Option<i32> {
    match status {
        "pass" => Some(1),
        "fail" => Some(2),
        "error" => Some(3),
        "not_applicable" => Some(4),
        _ => None,
    }
}

fn status_name(number: i32) -> Option<&'static str> {
    match number {
        1 => Some("pass"),
        2 => Some("fail"),
        3 => Some("error"),
        4 => Some("not_applicable"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// The byte-exact snapshot of `agent_proto::result_signing_bytes` in
    /// crates/agent-proto/tests/signing.rs (one field per line as hex; the label is ignored).
    const SNAPSHOT: &str = "
        domain  6f73697269732e6167656e742e76312e436865636b526573756c7400
        seq     000000000000002a
        check   0000000a 57494e2d46572d303031
        status  00000002
        time    0000019ab697e87b
        catalog 00000006 336632613963
        facts   00000002
          key   00000007 656e61626c6564
          value 00000005 66616c7365
          key   00000007 70726f66696c65
          value 00000006 646f6d61696e
    ";

    /// Parses the hex of `input` (each line a label, then hex) and renders the result or the error.
    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let hex_text: String = input
            .lines()
            .flat_map(|line| line.split_whitespace().skip(1))
            .collect();
        let bytes = hex::decode(hex_text).expect("hex");
        let rendered = match parse_signed_result(&bytes) {
            Ok(signed) => {
                let mut out = format!(
                    "seq {}\ncheck_id {:?}\nstatus {}\nobserved_at_unix_ms {}\ncatalog_version {:?}\n",
                    signed.seq,
                    signed.check_id,
                    signed.status,
                    signed.observed_at_unix_ms,
                    signed.catalog_version
                );
                for (key, value) in &signed.facts {
                    out.push_str(&format!("fact {key:?} = {value:?}\n"));
                }
                out
            }
            Err(error) => format!("error: {error}\n"),
        };
        expect.assert_eq(&rendered);
    }

    #[test]
    fn the_real_encoders_snapshot_parses() {
        check(
            SNAPSHOT,
            expect![[r#"
                seq 42
                check_id "WIN-FW-001"
                status 2
                observed_at_unix_ms 1764000000123
                catalog_version "3f2a9c"
                fact "enabled" = "false"
                fact "profile" = "domain"
            "#]],
        );
        // The empty result of the same snapshot file: every length and count, nothing else.
        check(
            "
            domain  6f73697269732e6167656e742e76312e436865636b526573756c7400
            seq     0000000000000000
            check   00000000
            status  00000000
            time    0000000000000000
            catalog 00000000
            facts   00000000
            ",
            expect![[r#"
                seq 0
                check_id ""
                status 0
                observed_at_unix_ms 0
                catalog_version ""
            "#]],
        );
    }

    #[test]
    fn bytes_outside_the_layout_are_refused() {
        check(
            &format!("{SNAPSHOT}\nextra 00"),
            expect![[r#"
                error: 1 trailing byte(s) follow the last fact
            "#]],
        );
        check(
            &SNAPSHOT.replace("6f7369726973", "6f7369726974"),
            expect![[r#"
                error: it does not start with the domain "osiris.agent.v1.CheckResult\0"
            "#]],
        );
        // Four bytes of the time missing.
        check(
            &SNAPSHOT.replace("0000019ab697e87b", "0000019a"),
            expect![[r#"
                error: catalog_version is said to be 862335585 bytes long, but only 47 bytes are left
            "#]],
        );
        check(
            "domain  6f73697269732e6167656e742e76312e436865636b526573756c7400\nseq 0000",
            expect![[r#"
                error: it ends inside seq, which needs 8 bytes (2 left)
            "#]],
        );
    }

    #[test]
    fn fact_keys_must_be_strictly_ascending() {
        let swapped = SNAPSHOT
            .replace("00000007 656e61626c6564", "KEY_A")
            .replace("00000007 70726f66696c65", "00000007 656e61626c6564")
            .replace("KEY_A", "00000007 70726f66696c65");
        check(
            &swapped,
            expect![[r#"
                error: the key "enabled" of fact 2 sorts before the key "profile" of the fact before it (keys must be strictly ascending by bytes)
            "#]],
        );
        let twice = SNAPSHOT.replace("00000007 70726f66696c65", "00000007 656e61626c6564");
        check(
            &twice,
            expect![[r#"
                error: the key "enabled" of fact 2 is the key of the fact before it (keys must be strictly ascending by bytes)
            "#]],
        );
        // A key sorts after its own prefix.
        check(
            &SNAPSHOT
                .replace("00000007 656e61626c6564", "00000001 61")
                .replace("00000007 70726f66696c65", "00000002 6162"),
            expect![[r#"
                seq 42
                check_id "WIN-FW-001"
                status 2
                observed_at_unix_ms 1764000000123
                catalog_version "3f2a9c"
                fact "a" = "false"
                fact "ab" = "domain"
            "#]],
        );
    }

    #[test]
    fn lengths_counts_and_text_are_checked() {
        check(
            &SNAPSHOT.replace(
                "0000000a 57494e2d46572d303031",
                "ffffffff 57494e2d46572d303031",
            ),
            expect![[r#"
                error: check_id is said to be 4294967295 bytes long, but only 77 bytes are left
            "#]],
        );
        // A length one too long shifts every field after it.
        check(
            &SNAPSHOT.replace(
                "0000000a 57494e2d46572d303031",
                "0000000b 57494e2d46572d303031",
            ),
            expect![[r#"
                error: catalog_version is said to be 1587 bytes long, but only 50 bytes are left
            "#]],
        );
        check(
            &SNAPSHOT.replace("facts   00000002", "facts ffffffff"),
            expect![[r#"
                error: the fact count is 4294967295, but the 41 bytes left hold at most 5 facts
            "#]],
        );
        check(
            &SNAPSHOT.replace("facts   00000002", "facts 00000001"),
            expect![[r#"
                error: 21 trailing byte(s) follow the last fact
            "#]],
        );
        check(
            &SNAPSHOT.replace("0000000a 57494e2d46572d303031", "00000002 c328"),
            expect![[r#"
                error: check_id is not UTF-8
            "#]],
        );
        check(
            &SNAPSHOT.replace("00000006 646f6d61696e", "00000006 646f6d6169ff"),
            expect![[r#"
                error: the value of fact 2 is not UTF-8
            "#]],
        );
    }
}
