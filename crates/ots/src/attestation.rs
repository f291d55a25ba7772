//! Time attestations (the leaves of a timestamp tree) and their binary encoding.

use std::cmp::Ordering;

use crate::error::OtsError;
use crate::serialize::{Reader, write_varbytes, write_varuint};

/// A claim that a commitment existed at some time, checkable against a calendar or a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attestation {
    /// The calendar at `uri` has recorded the commitment and will later upgrade it.
    Pending {
        /// The calendar's base URL.
        uri: String,
    },
    /// The commitment is the merkle root of the Bitcoin block at `height`.
    Bitcoin {
        /// Block height.
        height: u64,
    },
    /// The commitment is the merkle root of the Litecoin block at `height`.
    Litecoin {
        /// Block height.
        height: u64,
    },
    /// An attestation kind this library does not know; kept verbatim.
    Unknown {
        /// The 8-byte attestation tag.
        tag: [u8; 8],
        /// The raw payload.
        payload: Vec<u8>,
    },
}

/// Tag of a pending (calendar) attestation.
pub(crate) const PENDING_TAG: [u8; 8] = [0x83, 0xdf, 0xe3, 0x0d, 0x2e, 0xf9, 0x0c, 0x8e];
/// Tag of a Bitcoin block header attestation.
pub(crate) const BITCOIN_TAG: [u8; 8] = [0x05, 0x88, 0x96, 0x0d, 0x73, 0xd7, 0x19, 0x01];
/// Tag of a Litecoin block header attestation.
pub(crate) const LITECOIN_TAG: [u8; 8] = [0x06, 0x86, 0x9a, 0x0d, 0x73, 0xd7, 0x1b, 0x45];
/// Largest attestation payload the reference library accepts.
const MAX_PAYLOAD_LENGTH: usize = 8192;
/// Largest calendar URI the reference library accepts.
const MAX_URI_LENGTH: usize = 1000;

impl Attestation {
    /// The 8-byte tag identifying the attestation kind.
    pub fn tag(&self) -> [u8; 8] {
        match self {
            Attestation::Pending { .. } => PENDING_TAG,
            Attestation::Bitcoin { .. } => BITCOIN_TAG,
            Attestation::Litecoin { .. } => LITECOIN_TAG,
            Attestation::Unknown { tag, .. } => *tag,
        }
    }

    /// Builds a pending attestation, checking the URI as the reference library does
    /// (at most 1000 bytes of `A-Za-z0-9-._/:`).
    pub fn pending(uri: &str) -> Result<Attestation, OtsError> {
        check_uri(uri.as_bytes())?;
        Ok(Attestation::Pending {
            uri: uri.to_owned(),
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag());
        let mut payload = Vec::new();
        match self {
            Attestation::Pending { uri } => write_varbytes(&mut payload, uri.as_bytes()),
            Attestation::Bitcoin { height } | Attestation::Litecoin { height } => {
                write_varuint(&mut payload, *height);
            }
            Attestation::Unknown { payload: raw, .. } => payload.extend_from_slice(raw),
        }
        write_varbytes(out, &payload);
    }

    /// Reads an attestation after its 0x00 marker.
    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Attestation, OtsError> {
        let tag_bytes = reader.read_bytes(8)?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(tag_bytes);
        let payload = reader.read_varbytes("attestation payload", 0, MAX_PAYLOAD_LENGTH)?;
        let mut inner = Reader::new(payload);
        let res = match tag {
            PENDING_TAG => {
                let uri = inner.read_varbytes("calendar URI", 0, MAX_URI_LENGTH)?;
                check_uri(uri)?;
                // The character check admits only ASCII, so this conversion cannot fail.
                let uri = String::from_utf8_lossy(uri).into_owned();
                Attestation::Pending { uri }
            }
            BITCOIN_TAG => Attestation::Bitcoin {
                height: inner.read_varuint()?,
            },
            LITECOIN_TAG => Attestation::Litecoin {
                height: inner.read_varuint()?,
            },
            _ => {
                return Ok(Attestation::Unknown {
                    tag,
                    payload: payload.to_vec(),
                });
            }
        };
        if inner.remaining() != 0 {
            return Err(OtsError::AttestationTrailingBytes {
                n_extra: inner.remaining(),
            });
        }
        Ok(res)
    }

    fn sort_key(&self) -> ([u8; 8], SortKey<'_>) {
        let key = match self {
            Attestation::Pending { uri } => SortKey::Uri(uri),
            Attestation::Bitcoin { height } | Attestation::Litecoin { height } => {
                SortKey::Height(*height)
            }
            Attestation::Unknown { payload, .. } => SortKey::Payload(payload),
        };
        (self.tag(), key)
    }
}

/// Orders attestations as the reference library does: by tag, then URI, height or payload.
impl Ord for Attestation {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Attestation {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    Uri(&'a str),
    Height(u64),
    Payload(&'a [u8]),
}

fn check_uri(uri: &[u8]) -> Result<(), OtsError> {
    if uri.len() > MAX_URI_LENGTH {
        return Err(OtsError::BadUri {
            reason: format!("{} bytes, more than {MAX_URI_LENGTH}", uri.len()),
        });
    }
    if let Some(bad) = uri
        .iter()
        .find(|c| !(c.is_ascii_alphanumeric() || b"-._/:".contains(c)))
    {
        return Err(OtsError::BadUri {
            reason: format!(
                "forbidden character 0x{bad:02x}; only A-Z a-z 0-9 - . _ / : are allowed"
            ),
        });
    }
    Ok(())
}
