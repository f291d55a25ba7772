//! RFC 9162 Merkle tree: published vectors and an exhaustive cross-check against the RFC's recursive definitions.

use evidence::merkle::{
    self, MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};

/// Leaf inputs of transparency-dev/merkle `testonly/constants.go`.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots for sizes 0..=8, from transparency-dev/merkle `testonly/constants.go` (`RootHashes`).
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Inclusion proofs from transparency-dev/merkle `proof/verify_test.go` (`inclusionProofs`; leaf is 1-based there).
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// Consistency proofs from transparency-dev/merkle `proof/verify_test.go` (`consistencyProofs`).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(hex_text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).expect("hex");
    out
}

fn vector_tree() -> MerkleTree {
    let mut tree = MerkleTree::new();
    for leaf in LEAVES {
        tree.push(leaf_hash(&hex::decode(leaf).expect("hex")));
    }
    tree
}

#[test]
fn roots_match_transparency_dev_vectors() {
    let tree = vector_tree();
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(
            hex::encode(tree.root_at(size as u64).expect("size in range")),
            *root,
            "size {size}"
        );
    }
    assert_eq!(tree.root_at(9), None);
    assert_eq!(hex::encode(merkle::empty_root()), ROOTS[0]);
}

#[test]
fn inclusion_proofs_match_transparency_dev_vectors() {
    let tree = vector_tree();
    for (leaf, size, expected) in INCLUSION {
        let index = leaf - 1;
        let proof = tree.inclusion_proof(index, size).expect("in range");
        let expected: Vec<[u8; 32]> = expected.iter().map(|hash| h(hash)).collect();
        assert_eq!(proof, expected, "leaf {index} size {size}");
        let root = h(ROOTS[size as usize]);
        let leaf_hash = tree.leaf(index).expect("leaf");
        assert!(verify_inclusion(&leaf_hash, index, size, &proof, &root));
        assert!(!verify_inclusion(
            &leaf_hash,
            index + 1,
            size,
            &proof,
            &root
        ));
        assert!(!verify_inclusion(
            &leaf_hash,
            index,
            size * 2,
            &proof,
            &root
        ));
    }
}

#[test]
fn consistency_proofs_match_transparency_dev_vectors() {
    let tree = vector_tree();
    for (old, new, expected) in CONSISTENCY {
        let proof = tree.consistency_proof(old, new).expect("in range");
        let expected: Vec<[u8; 32]> = expected.iter().map(|hash| h(hash)).collect();
        assert_eq!(proof, expected, "{old} -> {new}");
        let (old_root, new_root) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
        if !proof.is_empty() {
            assert!(
                !verify_consistency(old, new, &new_root, &old_root, &proof),
                "swapped roots {old} -> {new}"
            );
            assert!(
                !verify_consistency(old, new, &old_root, &new_root, &proof[1..]),
                "truncated {old} -> {new}"
            );
        }
    }
}

/// MTH straight from RFC 9162 §2.1.1.
fn naive_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n);
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// PATH straight from RFC 9162 §2.1.3.1.
fn naive_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        let mut path = naive_path(m, &leaves[..k]);
        path.push(naive_root(&leaves[k..]));
        path
    } else {
        let mut path = naive_path(m - k, &leaves[k..]);
        path.push(naive_root(&leaves[..k]));
        path
    }
}

/// SUBPROOF straight from RFC 9162 §2.1.4.1.
fn naive_subproof(m: usize, leaves: &[[u8; 32]], complete: bool) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![naive_root(leaves)]
        };
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        let mut proof = naive_subproof(m, &leaves[..k], complete);
        proof.push(naive_root(&leaves[k..]));
        proof
    } else {
        let mut proof = naive_subproof(m - k, &leaves[k..], false);
        proof.push(naive_root(&leaves[..k]));
        proof
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

#[test]
fn exhaustive_cross_check_against_rfc_definitions_up_to_64_leaves() {
    let leaves: Vec<[u8; 32]> = (0u32..64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut tree = MerkleTree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    let roots: Vec<[u8; 32]> = (0..=64).map(|size| naive_root(&leaves[..size])).collect();
    for size in 0..=64usize {
        assert_eq!(tree.root_at(size as u64), Some(roots[size]), "root {size}");
        for index in 0..size {
            let proof = tree
                .inclusion_proof(index as u64, size as u64)
                .expect("in range");
            assert_eq!(
                proof,
                naive_path(index, &leaves[..size]),
                "path {index} {size}"
            );
            assert!(verify_inclusion(
                &leaves[index],
                index as u64,
                size as u64,
                &proof,
                &roots[size]
            ));
            let other = (index + 1) % size;
            if other != index {
                assert!(!verify_inclusion(
                    &leaves[other],
                    index as u64,
                    size as u64,
                    &proof,
                    &roots[size]
                ));
            }
        }
        assert_eq!(tree.inclusion_proof(size as u64, size as u64), None);
        for old in 1..=size {
            let proof = tree
                .consistency_proof(old as u64, size as u64)
                .expect("in range");
            let expected = if old == size {
                Vec::new()
            } else {
                naive_subproof(old, &leaves[..size], true)
            };
            assert_eq!(proof, expected, "consistency {old} {size}");
            assert!(
                verify_consistency(old as u64, size as u64, &roots[old], &roots[size], &proof),
                "verify {old} {size}"
            );
            if old < size {
                let mut forked = roots[old];
                forked[0] ^= 1;
                assert!(
                    !verify_consistency(old as u64, size as u64, &forked, &roots[size], &proof),
                    "forked {old} {size}"
                );
                assert!(
                    !verify_consistency(old as u64, size as u64, &roots[old], &forked, &proof),
                    "forked new {old} {size}"
                );
            }
        }
    }
}
