//! What a report needs to prove its citations: the log's Merkle tree at a checkpoint's size,
//! rebuilt from the stored leaf hashes, and the checkpoints with when they were signed and
//! whether their OpenTimestamps proof is anchored.

use evidence::merkle::MerkleTree;
use sqlx::Row;

use crate::db::classify;
use crate::summary::LogReads;
use crate::{StoreError, StoredCheckpoint, checkpoint_from_row, to_i64};

/// A stored checkpoint and whether Bitcoin anchors it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointState {
    pub checkpoint: StoredCheckpoint,
    /// Its OpenTimestamps proof is anchored in a Bitcoin block.
    pub anchored: bool,
}

/// Leaf hashes read per query (one row per chunk, as the writer does when it resumes).
const TREE_CHUNK: u64 = 8192;

impl LogReads<'_> {
    /// The Merkle tree of the first `size` bundles, from their stored leaf hashes (about 64 bytes
    /// of memory per bundle; the hashes are pushed chunk by chunk, never held twice).
    pub async fn merkle_tree(self, size: u64) -> Result<MerkleTree, StoreError> {
        let read = |err| classify(self.db_path, "reading the evidence log's leaf hashes", err);
        let corrupt = |detail: String| StoreError::Corrupt {
            path: self.db_path.to_owned(),
            detail,
        };
        let mut tree = MerkleTree::new();
        let mut start = 0u64;
        while start < size {
            let end = (start + TREE_CHUNK).min(size);
            let row = sqlx::query(
                "SELECT COUNT(*), CAST(group_concat(leaf_hash, '' ORDER BY seq) AS BLOB) \
                 FROM evidence WHERE seq >= ? AND seq < ?",
            )
            .bind(to_i64(start))
            .bind(to_i64(end))
            .fetch_one(self.readers)
            .await
            .map_err(read)?;
            let count: i64 = row.try_get(0).map_err(read)?;
            let hashes: Option<Vec<u8>> = row.try_get(1).map_err(read)?;
            let hashes = hashes.unwrap_or_default();
            let (chunks, rest) = hashes.as_chunks::<32>();
            if u64::try_from(count).ok() != Some(end - start)
                || chunks.len() as u64 != end - start
                || !rest.is_empty()
            {
                return Err(corrupt(format!(
                    "the leaf hashes of bundles {start} to {} are missing or not 32 bytes long",
                    end - 1
                )));
            }
            for leaf in chunks {
                tree.push(*leaf);
            }
            start = end;
        }
        Ok(tree)
    }

    /// Every stored checkpoint, oldest first, with whether it is anchored.
    pub async fn checkpoint_states(self) -> Result<Vec<CheckpointState>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.size, c.note, c.created_at, COALESCE(o.status = 'anchored', 0) \
             FROM checkpoints c LEFT JOIN ots_proofs o ON o.checkpoint_size = c.size ORDER BY c.size",
        )
        .fetch_all(self.readers)
        .await
        .map_err(|err| classify(self.db_path, "reading checkpoints", err))?;
        rows.iter()
            .map(|row| {
                let anchored: bool = row
                    .try_get(3)
                    .map_err(|err| classify(self.db_path, "reading checkpoints", err))?;
                Ok(CheckpointState {
                    checkpoint: checkpoint_from_row(self.db_path, row)?,
                    anchored,
                })
            })
            .collect()
    }
}
