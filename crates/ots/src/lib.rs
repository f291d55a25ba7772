//! OpenTimestamps: the `.ots` proof format, a calendar client, and Bitcoin header verification.
//!
//! The pure part ([`Timestamp`], [`DetachedTimestamp`], [`bitcoin`]) does no IO and matches the
//! reference Python library `opentimestamps` byte for byte.
//! The [`client`] module talks HTTP to calendars and to an Esplora block explorer.

pub mod bitcoin;
pub mod client;

mod attestation;
mod error;
mod op;
mod serialize;
mod timestamp;

pub use crate::attestation::Attestation;
pub use crate::error::OtsError;
pub use crate::op::{HashOp, Op};
pub use crate::timestamp::{DetachedTimestamp, HEADER_MAGIC, Timestamp};
