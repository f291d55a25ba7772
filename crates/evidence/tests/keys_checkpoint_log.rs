//! Key files, signed-note checkpoints (with the golang.org/x/mod/sumdb/note vector) and the log writer.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use evidence::keys::KeyError;
use evidence::{
    ApplianceKey, BundleDraft, Checkpoint, CheckpointError, LogWriter, VerifierKey, note,
};

/// golang.org/x/mod/sumdb/note: the PeterNeumann example key and signed note.
const GO_SIGNER: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn go_sumdb_note_vector_signs_and_opens_byte_for_byte() {
    let key: ApplianceKey = GO_SIGNER.parse().expect("signer key");
    assert_eq!(key.verifier().to_string(), GO_VERIFIER);
    assert_eq!(key.key_id_hex(), "c74f20a3");
    assert_eq!(key.private_key_text(), GO_SIGNER);
    assert_eq!(note::sign(GO_TEXT, &key), GO_NOTE);
    let verifier: VerifierKey = GO_VERIFIER.parse().expect("verifier key");
    assert_eq!(note::open(GO_NOTE, &verifier), Ok(GO_TEXT));
    let altered = GO_NOTE.replace("cryptography", "cryptographY");
    assert!(matches!(
        note::open(&altered, &verifier),
        Err(note::NoteError::BadSignature { .. })
    ));
    assert!(
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            .parse::<VerifierKey>()
            .is_err()
    );
}

#[test]
fn checkpoint_round_trip_wrong_key_and_altered_body() {
    let key = ApplianceKey::generate();
    let checkpoint = Checkpoint {
        origin: key.origin().to_owned(),
        size: 42,
        root: [7; 32],
    };
    let text = checkpoint.sign(&key);
    assert!(text.starts_with(&format!(
        "{}\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u{2014} {} ",
        key.origin(),
        key.origin()
    )));
    assert_eq!(
        Checkpoint::parse_and_verify(&text, &key.verifier()),
        Ok(checkpoint.clone())
    );

    let other = ApplianceKey::generate();
    assert!(matches!(
        Checkpoint::parse_and_verify(&text, &other.verifier()),
        Err(CheckpointError::Note(note::NoteError::NoSignature { .. }))
    ));
    let altered = text.replacen("\n42\n", "\n43\n", 1);
    assert!(matches!(
        Checkpoint::parse_and_verify(&altered, &key.verifier()),
        Err(CheckpointError::Note(note::NoteError::BadSignature { .. }))
    ));
}

#[test]
fn key_file_is_created_0600_in_0700_dir_and_round_trips() {
    let temp = tempfile::tempdir().expect("tempdir");
    let path = temp.path().join("keys/appliance.key");
    let created = ApplianceKey::load_or_create(&path).expect("create");
    let file_mode = fs::metadata(&path).expect("file").permissions().mode() & 0o777;
    let dir_mode = fs::metadata(temp.path().join("keys"))
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!((file_mode, dir_mode), (0o600, 0o700));
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.starts_with(&format!(
        "PRIVATE+KEY+osiris-appliance/{}+{}+",
        created.appliance_id(),
        created.key_id_hex()
    )));
    assert!(text.ends_with('\n'));
    let loaded = ApplianceKey::load_or_create(&path).expect("load");
    assert_eq!(loaded.verifier(), created.verifier());
    assert_eq!(created.appliance_id().len(), 16);
    assert_eq!(
        created.verifier().derived_appliance_id(),
        created.appliance_id()
    );
}

#[test]
fn key_file_readable_by_others_is_refused_with_chmod_hint() {
    let temp = tempfile::tempdir().expect("tempdir");
    let path = temp.path().join("appliance.key");
    ApplianceKey::load_or_create(&path).expect("create");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = ApplianceKey::load_or_create(&path).expect_err("must refuse");
    assert!(matches!(
        error,
        KeyError::InsecurePermissions { mode: 0o644, .. }
    ));
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

fn draft(n: u64) -> BundleDraft {
    BundleDraft {
        site: "clinic-1".to_owned(),
        kind: "scan".to_owned(),
        catalog: "2026.11".to_owned(),
        time: time::macros::datetime!(2026-11-28 03:40:12.123456 UTC),
        body: serde_json::json!({"n": n, "text": "é\n\"", "z": [1.5, null]}),
    }
}

#[test]
fn sealed_line_is_the_jcs_of_itself_chains_and_verifies() {
    let key = ApplianceKey::generate();
    let mut writer = LogWriter::new(key.clone());
    let first = writer.seal(&draft(0)).expect("seal");
    let second = writer.seal(&draft(1)).expect("seal");
    assert_eq!((first.seq, second.seq, writer.size()), (0, 1, 2));
    let mut value: serde_json::Value = serde_json::from_slice(&second.line).expect("json");
    assert_eq!(evidence::canonicalize(&value).expect("jcs"), second.line);
    assert_eq!(value["prev"], hex::encode(first.line_hash));
    assert_eq!(value["time"], "2026-11-28T03:40:12.123Z");
    assert_eq!(value["appliance"], key.appliance_id());
    let members: Vec<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(members, evidence_schema::BUNDLE_MEMBERS);
    assert_eq!(value["seq"], 1);
    assert_eq!(value["schema"], evidence_schema::BUNDLE_SCHEMA_V1);
    let sig = value
        .as_object_mut()
        .expect("object")
        .remove("sig")
        .expect("sig");
    let sig: [u8; 64] = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        sig.as_str().expect("str"),
    )
    .expect("b64")
    .try_into()
    .expect("64");
    assert!(
        key.verifier()
            .verify_strict(&evidence::canonicalize(&value).expect("jcs"), &sig)
    );
    let first_value: serde_json::Value = serde_json::from_slice(&first.line).expect("json");
    assert_eq!(first_value["prev"], "0".repeat(64));

    let resumed = LogWriter::resume(
        key.clone(),
        [first.line.clone(), second.line.clone()].into_iter(),
    )
    .expect("resume");
    assert_eq!(
        (resumed.tree().root(), resumed.last_line_hash()),
        (writer.tree().root(), writer.last_line_hash())
    );
    assert!(LogWriter::resume(key, [second.line].into_iter()).is_err());
    let (checkpoint, text) = writer.checkpoint();
    assert_eq!(
        Checkpoint::parse_and_verify(&text, &writer.key().verifier()),
        Ok(checkpoint)
    );
}
