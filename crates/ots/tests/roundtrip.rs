//! End to end against the loopback calendar: submit, serialise, mine, upgrade, verify.

use std::time::Duration;

use ots::bitcoin::{WorkFloor, parse_headers_file, verify_attestation};
use ots::client::{CalendarAllowlist, CalendarClient, EsploraClient, UpgradeStatus};
use ots::{Attestation, DetachedTimestamp, Op, OtsError};
use sha2::{Digest, Sha256};
use test_support::calendar::LabCalendar;

#[tokio::test]
async fn submit_mine_upgrade_and_verify() {
    let calendar = LabCalendar::start().unwrap();
    let client = CalendarClient::new(Duration::from_secs(10)).unwrap();
    let allowed = CalendarAllowlist::for_submitted(&[calendar.base_url().to_owned()]);
    let digest: [u8; 32] = Sha256::digest(b"checkpoint 42\n").into();

    // Submit: the calendar's proof appends a nonce, hashes, and ends pending at the calendar.
    let mut detached = DetachedTimestamp::from_sha256_digest(digest);
    let stamp = client.submit(calendar.base_url(), &digest).await.unwrap();
    assert!(matches!(stamp.ops.as_slice(), [(Op::Append(nonce), _)] if nonce.len() == 16));
    detached.timestamp.merge(stamp).unwrap();
    let pending = detached.timestamp.all_attestations();
    let [(commitment, Attestation::Pending { uri })] = pending.as_slice() else {
        panic!("expected one pending attestation, got {pending:?}");
    };
    assert_eq!(uri, calendar.base_url());
    assert_eq!(calendar.n_pending(), 1);

    // Pending proofs round-trip byte for byte.
    let pending_bytes = detached.to_bytes();
    let reparsed = DetachedTimestamp::from_bytes(&pending_bytes).unwrap();
    assert_eq!(reparsed, detached);
    assert_eq!(reparsed.to_bytes(), pending_bytes);
    assert_eq!(reparsed.digest(), digest);

    // Before mining the calendar says pending and nothing changes.
    let report = client.upgrade(&mut detached, &allowed).await.unwrap();
    assert!(
        matches!(report.outcomes.as_slice(), [outcome] if matches!(outcome.status, UpgradeStatus::Pending))
    );
    assert_eq!(detached.to_bytes(), pending_bytes);

    // A second digest shares the block, so the calendar merkle tree has two leaves.
    let other: [u8; 32] = Sha256::digest(b"another checkpoint\n").into();
    client.submit(calendar.base_url(), &other).await.unwrap();
    let height = calendar.mine();
    assert_eq!(height, test_support::calendar::FIRST_HEIGHT);
    assert_eq!(calendar.n_pending(), 0);

    let report = client.upgrade(&mut detached, &allowed).await.unwrap();
    let [outcome] = report.outcomes.as_slice() else {
        panic!("expected one outcome, got {:?}", report.outcomes);
    };
    assert_eq!(&outcome.commitment, commitment);
    assert!(
        matches!(&outcome.status, UpgradeStatus::Upgraded { bitcoin_heights } if *bitcoin_heights == [height])
    );
    let attestations = detached.timestamp.all_attestations();
    let [(merkle_root, Attestation::Bitcoin { height: attested })] = attestations.as_slice() else {
        panic!("expected only a Bitcoin attestation, got {attestations:?}");
    };
    assert_eq!(*attested, height);

    // Complete proofs round-trip too.
    let complete_bytes = detached.to_bytes();
    assert_eq!(
        DetachedTimestamp::from_bytes(&complete_bytes)
            .unwrap()
            .to_bytes(),
        complete_bytes
    );

    // Verify against the header from Esplora and from the headers file.
    let esplora = EsploraClient::new(calendar.base_url(), WorkFloor::REGTEST).unwrap();
    let header = esplora.header(height).await.unwrap();
    header.check_proof_of_work().unwrap();
    assert_eq!(header.bits(), 0x207f_ffff);
    let time = verify_attestation(merkle_root, &header).unwrap();
    assert_eq!(time, header.time());
    let headers = parse_headers_file(&calendar.headers_file(), WorkFloor::REGTEST).unwrap();
    assert_eq!(headers.get(&height), Some(&header));

    // A different block's header does not verify.
    calendar.mine();
    let wrong = esplora.header(height + 1).await.unwrap();
    assert_eq!(wrong.prev_block_hash(), header.block_hash());
    let err = verify_attestation(merkle_root, &wrong).unwrap_err();
    assert!(matches!(err, OtsError::MerkleRootMismatch { .. }), "{err}");
    let err = esplora.header(height + 5).await.unwrap_err();
    assert!(
        matches!(err, OtsError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    assert!(calendar.n_requests() >= 9);
}

#[tokio::test]
async fn calendar_refuses_oversized_digests_and_unknown_commitments_stay_pending() {
    let calendar = LabCalendar::start().unwrap();
    let client = CalendarClient::new(Duration::from_secs(10)).unwrap();
    let err = client
        .submit(calendar.base_url(), &[7; 65])
        .await
        .unwrap_err();
    assert!(
        matches!(err, OtsError::HttpStatus { status: 400, .. }),
        "{err}"
    );

    let allowed = CalendarAllowlist::for_submitted(&[format!("{}/", calendar.base_url())]);
    let mut detached = DetachedTimestamp::from_sha256_digest([9; 32]);
    detached
        .timestamp
        .add_attestation(Attestation::pending(calendar.base_url()).unwrap());
    let report = client.upgrade(&mut detached, &allowed).await.unwrap();
    assert!(matches!(report.outcomes[0].status, UpgradeStatus::Pending));
    assert_eq!(calendar.n_requests(), 2);
}

#[test]
fn headers_file_errors_name_the_line() {
    let err = parse_headers_file("# comment\n\n800000 abcd\n", WorkFloor::REGTEST).unwrap_err();
    assert!(
        matches!(err, OtsError::HeadersFile { line: 3, .. }),
        "{err}"
    );
    let calendar = LabCalendar::start().unwrap();
    calendar.mine();
    let text = calendar.headers_file();
    let doubled = format!("{text}{text}");
    let err = parse_headers_file(&doubled, WorkFloor::REGTEST).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    // The lab chain's regtest headers are refused at the real floor.
    let err = parse_headers_file(&text, WorkFloor::MAINNET).unwrap_err();
    assert!(matches!(err, OtsError::BelowWorkFloor { .. }), "{err}");
}
