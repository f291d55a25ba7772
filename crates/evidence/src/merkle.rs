//! RFC 9162 §2.1 Merkle tree hashing: an in-memory append-only tree with inclusion and consistency proofs.

use sha2::{Digest, Sha256};

/// An append-only Merkle tree that keeps the hash of every perfect subtree.
///
/// `levels[k][i]` is the hash of leaves `i * 2^k .. (i + 1) * 2^k`.
/// Any subtree hash therefore costs O(log n) lookups, a root O(log n) and a proof O(log² n).
/// Memory is about 64 bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<[u8; 32]>>,
}

/// Returns the RFC 9162 leaf hash: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Returns the RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Returns the root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> [u8; 32] {
    Sha256::digest([]).into()
}

impl MerkleTree {
    /// Returns an empty tree.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// Appends a leaf, given by its leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf_hash: [u8; 32]) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf_hash);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let count = self.levels[level].len();
            let parent = node_hash(
                &self.levels[level][count - 2],
                &self.levels[level][count - 1],
            );
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// Returns the number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Returns true when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<[u8; 32]> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Returns the root of the whole tree.
    pub fn root(&self) -> [u8; 32] {
        self.subtree(0, self.len())
    }

    /// Returns the root the tree had when it held `size` leaves, or `None` if `size` exceeds [`Self::len`].
    pub fn root_at(&self, size: u64) -> Option<[u8; 32]> {
        (size <= self.len()).then(|| self.subtree(0, size))
    }

    /// Returns the RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves.
    ///
    /// Returns `None` unless `index < size <= len()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<[u8; 32]>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Some(proof)
    }

    /// Returns the RFC 9162 §2.1.4.1 consistency proof between the trees of `old` and `new` leaves.
    ///
    /// The proof is empty when `old` is 0 or equals `new`.
    /// Returns `None` unless `old <= new <= len()`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<[u8; 32]>> {
        if old > new || new > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Some(proof)
    }

    /// Returns MTH(D[start:end]) where `start` is aligned as in the RFC recursion.
    fn subtree(&self, start: u64, end: u64) -> [u8; 32] {
        let count = end - start;
        if count == 0 {
            return empty_root();
        }
        if count.is_power_of_two() && start.is_multiple_of(count) {
            let level = count.trailing_zeros() as usize;
            let node_idx = (start / count) as usize;
            return self.levels[level][node_idx];
        }
        let split = largest_power_of_two_below(count);
        node_hash(
            &self.subtree(start, start + split),
            &self.subtree(start + split, end),
        )
    }

    fn path(&self, index: u64, start: u64, end: u64, proof: &mut Vec<[u8; 32]>) {
        let count = end - start;
        if count <= 1 {
            return;
        }
        let split = largest_power_of_two_below(count);
        if index < split {
            self.path(index, start, start + split, proof);
            proof.push(self.subtree(start + split, end));
        } else {
            self.path(index - split, start + split, end, proof);
            proof.push(self.subtree(start, start + split));
        }
    }

    fn subproof(&self, old: u64, start: u64, end: u64, complete: bool, proof: &mut Vec<[u8; 32]>) {
        let count = end - start;
        if old == count {
            if !complete {
                proof.push(self.subtree(start, end));
            }
            return;
        }
        let split = largest_power_of_two_below(count);
        if old <= split {
            self.subproof(old, start, start + split, complete, proof);
            proof.push(self.subtree(start + split, end));
        } else {
            self.subproof(old - split, start + split, end, false, proof);
            proof.push(self.subtree(start, start + split));
        }
    }
}

/// Verifies an RFC 9162 §2.1.3.2 inclusion proof of `leaf` (a leaf hash) at `index` in a tree of `size` leaves.
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let mut first_node = index;
    let mut second_node = size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        if second_node == 0 {
            return false;
        }
        if first_node & 1 == 1 || first_node == second_node {
            hash = node_hash(sibling, &hash);
            if first_node & 1 == 0 {
                while first_node & 1 == 0 && first_node != 0 {
                    first_node >>= 1;
                    second_node >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        first_node >>= 1;
        second_node >>= 1;
    }
    second_node == 0 && hash == *root
}

/// Verifies an RFC 9162 §2.1.4.2 consistency proof between the trees of `old` and `new` leaves.
///
/// Sizes 0 and `old == new` are consistent exactly when the proof is empty (and, for equal sizes, the roots match).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    let (seed, path) = if old.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let mut first_node = old - 1;
    let mut second_node = new - 1;
    while first_node & 1 == 1 {
        first_node >>= 1;
        second_node >>= 1;
    }
    let mut first_hash = *seed;
    let mut second_hash = *seed;
    for node in path {
        if second_node == 0 {
            return false;
        }
        if first_node & 1 == 1 || first_node == second_node {
            first_hash = node_hash(node, &first_hash);
            second_hash = node_hash(node, &second_hash);
            while first_node & 1 == 0 && first_node != 0 {
                first_node >>= 1;
                second_node >>= 1;
            }
        } else {
            second_hash = node_hash(&second_hash, node);
        }
        first_node >>= 1;
        second_node >>= 1;
    }
    first_hash == *old_root && second_hash == *new_root && second_node == 0
}

fn largest_power_of_two_below(count: u64) -> u64 {
    // For count >= 2, the largest power of two strictly less than count.
    1 << (63 - (count - 1).leading_zeros())
}
