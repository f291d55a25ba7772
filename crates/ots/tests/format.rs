//! Parser and serialiser of `.ots` files: published example proofs and hostile inputs.

use ots::{Attestation, DetachedTimestamp, HEADER_MAGIC, HashOp, Op, OtsError, Timestamp};
use sha2::{Digest, Sha256};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

fn summary(detached: &DetachedTimestamp) -> Vec<String> {
    detached
        .timestamp
        .all_attestations()
        .into_iter()
        .map(|(_, attestation)| match attestation {
            Attestation::Pending { uri } => format!("pending {uri}"),
            Attestation::Bitcoin { height } => format!("bitcoin {height}"),
            Attestation::Litecoin { height } => format!("litecoin {height}"),
            Attestation::Unknown { tag, payload } => {
                format!("unknown {} {}", hex::encode(tag), payload.len())
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[track_caller]
fn check_example(name: &str, expect_attestations: &[&str]) {
    let bytes = data(&format!("{name}.ots"));
    let detached = DetachedTimestamp::from_bytes(&bytes)
        .unwrap_or_else(|err| panic!("parsing {name}.ots: {err}"));
    assert_eq!(detached.file_hash_op, HashOp::Sha256);
    let file_digest = Sha256::digest(data(name));
    assert_eq!(
        detached.digest(),
        file_digest.as_slice(),
        "digest of {name}"
    );
    let mut got = summary(&detached);
    got.sort();
    assert_eq!(got, expect_attestations, "attestations of {name}");
    assert_eq!(detached.to_bytes(), bytes, "re-serialisation of {name}");
}

#[test]
fn published_examples_parse_and_reserialise_byte_identically() {
    check_example("hello-world.txt", &["bitcoin 358391"]);
    check_example("empty", &["bitcoin 129405"]);
    check_example(
        "incomplete.txt",
        &["pending https://alice.btc.calendar.opentimestamps.org"],
    );
    check_example(
        "two-calendars.txt",
        &[
            "pending https://alice.btc.calendar.opentimestamps.org",
            "pending https://bob.btc.calendar.opentimestamps.org",
        ],
    );
    check_example(
        "merkle2.txt",
        &[
            "pending https://alice.btc.calendar.opentimestamps.org",
            "pending https://bob.btc.calendar.opentimestamps.org",
        ],
    );
    check_example(
        "known-and-unknown-notary.txt",
        &[
            "pending https://bob.btc.calendar.opentimestamps.org",
            "unknown 0102030405060708 46",
        ],
    );
    check_example(
        "different-blockchains.txt",
        &[
            "bitcoin 455605",
            "pending https://eth.ots.eternitywall.com",
            "pending https://ots.eternitywall.it",
            "unknown 30fe8087b5c7ead7 4",
        ],
    );
}

#[test]
fn hello_world_bitcoin_commitment_is_reached_through_ripemd160() {
    let detached = DetachedTimestamp::from_bytes(&data("hello-world.txt.ots")).unwrap();
    let attestations = detached.timestamp.all_attestations();
    let [(commitment, Attestation::Bitcoin { height: 358_391 })] = attestations.as_slice() else {
        panic!("unexpected attestations {attestations:?}");
    };
    assert_eq!(commitment.len(), 32);
    assert!(uses_op(&detached.timestamp, &Op::Ripemd160));
}

fn uses_op(stamp: &Timestamp, wanted: &Op) -> bool {
    stamp
        .ops
        .iter()
        .any(|(op, child)| op == wanted || uses_op(child, wanted))
}

#[test]
fn published_invalid_examples_are_rejected() {
    let err = DetachedTimestamp::from_bytes(&data("invalid-bad-major-version.ots")).unwrap_err();
    assert!(matches!(err, OtsError::UnsupportedVersion(1151)), "{err}");
    let err =
        DetachedTimestamp::from_bytes(&data("invalid-exceeds-max-msg-length.ots")).unwrap_err();
    assert!(
        matches!(err, OtsError::OpInput { op: "append", .. }),
        "{err}"
    );
    let err =
        DetachedTimestamp::from_bytes(&data("invalid-invalid-file-digest-type.ots")).unwrap_err();
    assert!(matches!(err, OtsError::UnknownFileHashOp(0xf3)), "{err}");
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["hello-world.txt.ots", "different-blockchains.txt.ots"] {
        let bytes = data(name);
        for len in 0..bytes.len() {
            let res = DetachedTimestamp::from_bytes(&bytes[..len]);
            assert!(res.is_err(), "{name} truncated to {len} bytes parsed");
        }
    }
}

#[test]
fn single_byte_flips_never_panic_and_parsed_results_reserialise() {
    let bytes = data("hello-world.txt.ots");
    let mut n_rejected = 0;
    for idx in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut mutated = bytes.clone();
            mutated[idx] ^= flip;
            match DetachedTimestamp::from_bytes(&mutated) {
                // A flip inside an argument still parses; it must stay a fixed point.
                Ok(detached) => {
                    let again = DetachedTimestamp::from_bytes(&detached.to_bytes()).unwrap();
                    assert_eq!(again, detached);
                }
                Err(_) => n_rejected += 1,
            }
            if idx < HEADER_MAGIC.len() + 2 {
                // Magic, version and file hash op: every change must be refused.
                assert!(
                    DetachedTimestamp::from_bytes(&mutated).is_err(),
                    "flip at {idx} accepted"
                );
            }
        }
    }
    // Flips in digests and op arguments legitimately parse; flips of tags and lengths do not.
    assert!(
        n_rejected > 3 * (HEADER_MAGIC.len() + 2),
        "only {n_rejected} mutations rejected"
    );
}

#[test]
fn bad_magic_and_trailing_bytes_are_rejected() {
    let mut bytes = data("hello-world.txt.ots");
    bytes[1] = b'o';
    assert!(matches!(
        DetachedTimestamp::from_bytes(&bytes),
        Err(OtsError::BadMagic)
    ));
    let mut bytes = data("hello-world.txt.ots");
    bytes.push(0);
    let err = DetachedTimestamp::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(err, OtsError::TrailingBytes { n_extra: 1, .. }),
        "{err}"
    );
}

fn header_with_sha256_digest() -> Vec<u8> {
    let mut bytes = HEADER_MAGIC.to_vec();
    bytes.extend([0x01, 0x08]);
    bytes.extend([0x11; 32]);
    bytes
}

#[test]
fn deep_nesting_is_rejected_at_the_reference_limit() {
    let nested = |depth: usize| {
        let mut bytes = header_with_sha256_digest();
        bytes.extend(std::iter::repeat_n(0x08, depth));
        bytes.extend([0x00]);
        bytes.extend(hex::decode("0588960d73d7190101").unwrap());
        bytes.push(0x2a);
        bytes
    };
    // 255 ops give 256 nodes, the most the reference library accepts.
    let ok = DetachedTimestamp::from_bytes(&nested(255)).unwrap();
    assert_eq!(ok.to_bytes(), nested(255));
    let err = DetachedTimestamp::from_bytes(&nested(256)).unwrap_err();
    assert!(
        matches!(err, OtsError::RecursionLimit { limit: 256 }),
        "{err}"
    );
    let err = DetachedTimestamp::from_bytes(&nested(100_000)).unwrap_err();
    assert!(matches!(err, OtsError::RecursionLimit { .. }), "{err}");
}

#[test]
fn huge_and_overlong_lengths_are_rejected() {
    // Append with a 2^40-byte argument.
    let mut bytes = header_with_sha256_digest();
    bytes.extend([0xf0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    let err = DetachedTimestamp::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            OtsError::BadLength {
                what: "append argument",
                ..
            }
        ),
        "{err}"
    );
    // Attestation payload of 9000 bytes.
    let mut bytes = header_with_sha256_digest();
    bytes.extend([0x00]);
    bytes.extend([0x01; 8]);
    bytes.extend([0xa8, 0x46]);
    bytes.extend(vec![0u8; 9000]);
    let err = DetachedTimestamp::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            OtsError::BadLength {
                what: "attestation payload",
                len: 9000,
                ..
            }
        ),
        "{err}"
    );
    // A varuint longer than 64 bits.
    let mut bytes = HEADER_MAGIC.to_vec();
    bytes.extend([0xff; 11]);
    bytes.push(0x01);
    let err = DetachedTimestamp::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, OtsError::BadVaruint { .. }), "{err}");
}

#[test]
fn pending_uri_with_forbidden_characters_is_rejected() {
    let mut bytes = header_with_sha256_digest();
    bytes.push(0x00);
    bytes.extend(hex::decode("83dfe30d2ef90c8e").unwrap());
    let uri = b"http://x?y";
    bytes.push(uri.len() as u8 + 1);
    bytes.push(uri.len() as u8);
    bytes.extend(uri);
    let err = DetachedTimestamp::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, OtsError::BadUri { .. }), "{err}");
}

#[test]
fn merge_combines_branches_and_refuses_other_messages() {
    let mut left = Timestamp::new(vec![1; 32]);
    left.add_op(Op::Append(vec![2]))
        .unwrap()
        .add_attestation(Attestation::Bitcoin { height: 7 });
    let mut right = Timestamp::new(vec![1; 32]);
    right
        .add_op(Op::Sha256)
        .unwrap()
        .add_attestation(Attestation::pending("https://a.example").unwrap());
    right
        .add_op(Op::Append(vec![2]))
        .unwrap()
        .add_attestation(Attestation::Litecoin { height: 9 });
    left.merge(right).unwrap();
    let heights: Vec<String> = left
        .all_attestations()
        .iter()
        .map(|(_, a)| format!("{a:?}"))
        .collect();
    assert_eq!(
        heights,
        [
            "Pending { uri: \"https://a.example\" }",
            "Bitcoin { height: 7 }",
            "Litecoin { height: 9 }",
        ]
    );
    let err = left.merge(Timestamp::new(vec![3; 32])).unwrap_err();
    assert!(matches!(err, OtsError::MessageMismatch { .. }), "{err}");
}

#[test]
fn serialisation_sorts_hand_built_trees_like_the_reference() {
    let mut stamp = Timestamp::new(vec![0xaa; 32]);
    // Pushed out of order on purpose: the reference sorts attestations by tag, ops by tag then argument.
    stamp.attestations.push(Attestation::Bitcoin { height: 5 });
    stamp
        .attestations
        .push(Attestation::pending("http://b").unwrap());
    stamp.ops.push((Op::Sha256, Timestamp::new(vec![])));
    stamp.ops[0]
        .1
        .attestations
        .push(Attestation::Bitcoin { height: 1 });
    let detached = DetachedTimestamp {
        file_hash_op: HashOp::Sha256,
        timestamp: stamp,
    };
    let bytes = detached.to_bytes();
    let tree = &bytes[HEADER_MAGIC.len() + 2 + 32..];
    let expected = [
        "ff00",
        "0588960d73d71901",
        "0105",
        "ff00",
        "83dfe30d2ef90c8e",
        "0908",
        "687474703a2f2f62",
        "08",
        "00",
        "0588960d73d71901",
        "0101",
    ]
    .concat();
    assert_eq!(hex::encode(tree), expected);
}

mod prop {
    use proptest::prelude::*;

    use ots::{DetachedTimestamp, HEADER_MAGIC};

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic_and_accepted_ones_roundtrip(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = HEADER_MAGIC.to_vec();
            bytes.extend([0x01, 0x08]);
            bytes.extend([0x42; 32]);
            bytes.extend(&body);
            if let Ok(detached) = DetachedTimestamp::from_bytes(&bytes) {
                let again = DetachedTimestamp::from_bytes(&detached.to_bytes());
                prop_assert_eq!(again.ok(), Some(detached));
            }
        }
    }
}
