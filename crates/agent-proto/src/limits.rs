//! The protocol's size and count limits, and the bounds a configuration must stay within.
//!
//! Both sides apply them: the codec refuses a message over [`MAX_MESSAGE_BYTES`] before decoding
//! it (`OUT_OF_RANGE`), and `validate` refuses a decoded message that breaks any other limit
//! (`INVALID_ARGUMENT`). docs/AGENT-PROTOCOL.md lists them with their reasons.

use std::ops::RangeInclusive;

/// The largest encoded message either side sends or accepts, in bytes (256 KiB).
///
/// The largest legitimate messages are an `EnrollResponse` with a certificate chain and a full
/// configuration (about 80 KiB at the limits below) and a `CheckResult` with every fact at its
/// longest (about 70 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Sequenced items an agent may have sent beyond the last acknowledgement. The gateway may end a
/// stream that goes past it with `RESOURCE_EXHAUSTED`; the agent waits for an `Ack` instead.
pub const MAX_ITEMS_IN_FLIGHT: u64 = 256;

/// Longest ID (agent, check, runbook, request), in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Longest enrollment token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Longest host name, in bytes (RFC 1035's limit for a full name).
pub const MAX_HOSTNAME_BYTES: usize = 253;

/// Longest short text (operating system name and version, agent version, catalogue version,
/// release version), in bytes.
pub const MAX_LABEL_BYTES: usize = 128;

/// Longest certificate signing request, in bytes (DER).
pub const MAX_CSR_BYTES: usize = 4 * 1024;

/// Longest certificate, in bytes (DER).
pub const MAX_CERTIFICATE_BYTES: usize = 8 * 1024;

/// Most certificates in a chain (leaf and intermediates).
pub const MAX_CHAIN_CERTIFICATES: usize = 4;

/// Most facts in one check result.
pub const MAX_FACTS: usize = 64;

/// Longest fact name, in bytes.
pub const MAX_FACT_KEY_BYTES: usize = 64;

/// Longest fact value, in bytes.
pub const MAX_FACT_VALUE_BYTES: usize = 1024;

/// Longest remediation outcome detail, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// Most checks in one configuration, and most check IDs in one `RunNow`.
pub const MAX_CHECKS: usize = 256;

/// Most parameters of one remediation request.
pub const MAX_PARAMS: usize = 32;

/// Longest parameter name, in bytes.
pub const MAX_PARAM_NAME_BYTES: usize = 64;

/// Longest string parameter value, in bytes.
pub const MAX_PARAM_STRING_BYTES: usize = 1024;

/// Longest release manifest, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// Longest download path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;

/// Roots relayed in one `UpdateOffer`.
pub const MAX_ROOTS: usize = 32;

/// Bytes in one `DownloadChunk`.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Length of an Ed25519 public key, in bytes.
pub const DEVICE_KEY_BYTES: usize = 32;

/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_BYTES: usize = 64;

/// Shortest and longest check interval, in seconds (one minute, one week).
pub const CHECK_INTERVAL_SECONDS: RangeInclusive<u32> = 60..=7 * 24 * 3600;

/// Shortest and longest heartbeat interval, in seconds (ten seconds, one hour).
pub const HEARTBEAT_INTERVAL_SECONDS: RangeInclusive<u32> = 10..=3600;

/// Shortest and longest full-report interval, in seconds (one hour, one week).
pub const FULL_REPORT_INTERVAL_SECONDS: RangeInclusive<u32> = 3600..=7 * 24 * 3600;

/// Fewest and most items an agent may be told to queue.
pub const QUEUE_ITEMS: RangeInclusive<u64> = 16..=1_000_000;

/// Fewest and most bytes an agent may be told to queue (64 KiB, 1 GiB).
pub const QUEUE_BYTES: RangeInclusive<u64> = 64 * 1024..=1024 * 1024 * 1024;

/// Shortest and longest age an agent may be told to keep a queued item, in seconds (one hour,
/// 90 days).
pub const QUEUE_AGE_SECONDS: RangeInclusive<u32> = 3600..=90 * 24 * 3600;

/// The protocol version this crate speaks (`Hello.protocol_version`,
/// `AgentConfig.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 1;
