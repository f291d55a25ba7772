//! Vault behaviour seen from outside: round trips, encryption at rest, key checks, tamper
//! detection, atomic writes, concurrent writers and key rotation.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use credentials::{CredentialKind, KeyError, KeySource, Secret, Vault, VaultError, rotate_key};

struct Fixture {
    dir: tempfile::TempDir,
    vault: PathBuf,
    key: KeySource,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("credentials.key");
    Vault::init_key(&key_path).unwrap();
    Fixture {
        vault: dir.path().join("credentials.vault"),
        key: KeySource::File(key_path),
        dir,
    }
}

fn secret(value: &str) -> Secret {
    Secret::new(value.to_owned())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn round_trip_set_get_list_remove() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    assert!(vault.is_empty(), "a missing vault file is an empty vault");
    vault
        .set(
            "winrm.admin",
            CredentialKind::Password,
            secret("pa ss\nword"),
        )
        .unwrap();
    let key_text = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
    vault
        .set("fileserver", CredentialKind::SshKey, secret(key_text))
        .unwrap();

    let reopened = Vault::open(&fx.vault, &fx.key).unwrap();
    let admin = reopened.get("winrm.admin").unwrap().unwrap();
    assert_eq!(admin.kind, CredentialKind::Password);
    assert_eq!(admin.secret.expose(), "pa ss\nword");
    let ssh = reopened.get("fileserver").unwrap().unwrap();
    assert_eq!(ssh.kind, CredentialKind::SshKey);
    assert_eq!(ssh.secret.as_bytes(), key_text.as_bytes());
    assert!(reopened.get("absent").unwrap().is_none());
    let names: Vec<(String, CredentialKind)> = reopened
        .list()
        .into_iter()
        .map(|info| (info.name, info.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("fileserver".to_owned(), CredentialKind::SshKey),
            ("winrm.admin".to_owned(), CredentialKind::Password)
        ]
    );

    // Replacing keeps the creation time and moves the update time forward.
    vault
        .set("winrm.admin", CredentialKind::Password, secret("new"))
        .unwrap();
    let replaced = Vault::open(&fx.vault, &fx.key)
        .unwrap()
        .get("winrm.admin")
        .unwrap()
        .unwrap();
    assert_eq!(replaced.secret.expose(), "new");
    assert_eq!(replaced.created, admin.created);
    assert!(replaced.updated >= admin.updated);

    assert!(vault.remove("winrm.admin").unwrap());
    assert!(!vault.remove("winrm.admin").unwrap());
    let after = Vault::open(&fx.vault, &fx.key).unwrap();
    assert_eq!(after.len(), 1);
    assert!(after.get("winrm.admin").unwrap().is_none());
}

#[test]
fn vault_file_holds_no_plaintext_and_is_private() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    let value = "correct-horse-battery-staple-7731";
    vault
        .set("ad.bind", CredentialKind::Password, secret(value))
        .unwrap();
    let bytes = std::fs::read(&fx.vault).unwrap();
    assert!(bytes.starts_with(b"OSIRISCV\x01\x01"));
    for needle in [value.as_bytes(), b"correct-horse", b"ad.bind", b"password"] {
        assert!(
            !bytes.windows(needle.len()).any(|window| window == needle),
            "vault file contains {:?} in clear",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(mode(&fx.vault), 0o600);
    let key_path = fx.dir.path().join("credentials.key");
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(std::fs::read(&key_path).unwrap().len(), 32);

    // A fresh nonce per write: the same contents never encrypt to the same bytes.
    vault
        .set("ad.bind", CredentialKind::Password, secret(value))
        .unwrap();
    assert_ne!(std::fs::read(&fx.vault).unwrap(), bytes);
}

#[test]
fn wrong_key_is_a_clear_error() {
    let fx = fixture();
    Vault::open(&fx.vault, &fx.key)
        .unwrap()
        .set("a", CredentialKind::Password, secret("x"))
        .unwrap();
    let other_path = fx.dir.path().join("other.key");
    Vault::init_key(&other_path).unwrap();
    let err = Vault::open(&fx.vault, &KeySource::File(other_path.clone())).unwrap_err();
    assert!(matches!(err, VaultError::Undecryptable { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "vault {} cannot be decrypted with key file {}: wrong key or the file was modified; restore from backup or re-enter credentials",
            fx.vault.display(),
            other_path.display()
        )
    );
}

#[test]
fn flipped_byte_anywhere_is_refused_and_never_overwritten() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    vault
        .set("fileserver", CredentialKind::Password, secret("s3cret"))
        .unwrap();
    let good = std::fs::read(&fx.vault).unwrap();
    for idx in 0..good.len() {
        let mut bad = good.clone();
        bad[idx] ^= 0x01;
        std::fs::write(&fx.vault, &bad).unwrap();
        let open_err = Vault::open(&fx.vault, &fx.key).unwrap_err();
        let set_err = vault
            .set("other", CredentialKind::Password, secret("y"))
            .unwrap_err();
        for err in [&open_err, &set_err] {
            // The 10-byte header is checked before decryption; everything after it is authenticated.
            if idx < 10 {
                assert!(
                    matches!(err, VaultError::Unrecognized { .. }),
                    "byte {idx}: {err}"
                );
            } else {
                assert!(
                    matches!(err, VaultError::Undecryptable { .. }),
                    "byte {idx}: {err}"
                );
            }
            assert!(err.to_string().contains("restore from backup"), "{err}");
        }
        assert_eq!(
            std::fs::read(&fx.vault).unwrap(),
            bad,
            "byte {idx}: file was rewritten"
        );
    }
    // Truncated and empty files are refused too.
    for len in [0, 10, 49] {
        std::fs::write(&fx.vault, &good[..len]).unwrap();
        let err = vault
            .set("other", CredentialKind::Password, secret("y"))
            .unwrap_err();
        assert!(
            matches!(err, VaultError::Unrecognized { .. }),
            "len {len}: {err}"
        );
        assert_eq!(std::fs::read(&fx.vault).unwrap(), &good[..len]);
    }
    std::fs::write(&fx.vault, &good).unwrap();
    assert_eq!(Vault::open(&fx.vault, &fx.key).unwrap().len(), 1);
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let fx = fixture();
    let key_path = fx.dir.path().join("credentials.key");
    for (file_mode, accepted) in [
        (0o600, true),
        (0o400, true),
        (0o644, false),
        (0o640, false),
        (0o604, false),
        (0o660, false),
        (0o602, false),
    ] {
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(file_mode)).unwrap();
        let res = Vault::open(&fx.vault, &fx.key);
        if accepted {
            assert!(res.is_ok(), "mode {file_mode:o}: {:?}", res.err());
            continue;
        }
        let err = res.unwrap_err();
        assert!(
            matches!(err, VaultError::Key(KeyError::TooOpen { mode, .. }) if mode == file_mode),
            "mode {file_mode:o}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", key_path.display())),
            "{err}"
        );
    }
}

#[test]
fn key_of_wrong_length_or_missing_is_refused() {
    let fx = fixture();
    for len in [0, 31, 33, 64] {
        let path = fx.dir.path().join(format!("len{len}.key"));
        std::fs::write(&path, vec![1u8; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Vault::open(&fx.vault, &KeySource::File(path)).unwrap_err();
        let expected_len = len.min(33);
        assert!(
            matches!(err, VaultError::Key(KeyError::WrongLength { len, .. }) if len == expected_len),
            "{err}"
        );
    }
    let missing = KeySource::File(fx.dir.path().join("missing.key"));
    let err = Vault::open(&fx.vault, &missing).unwrap_err();
    assert!(
        matches!(err, VaultError::Key(KeyError::Read { .. })),
        "{err}"
    );
}

#[test]
fn init_key_never_overwrites() {
    let fx = fixture();
    let key_path = fx.dir.path().join("credentials.key");
    let before = std::fs::read(&key_path).unwrap();
    let err = Vault::init_key(&key_path).unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&key_path).unwrap(), before);
    let second = fx.dir.path().join("second.key");
    Vault::init_key(&second).unwrap();
    assert_ne!(std::fs::read(&second).unwrap(), before, "keys are random");
}

#[test]
fn credential_names_are_validated() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    let long_ok = "a".repeat(64);
    let too_long = "a".repeat(65);
    for name in [
        "a",
        "0",
        "fileserver.admin",
        "ad_bind-1",
        "9.x",
        long_ok.as_str(),
    ] {
        vault
            .set(name, CredentialKind::Password, secret("v"))
            .unwrap_or_else(|err| panic!("`{name}` should be valid: {err}"));
    }
    for name in [
        "",
        "A",
        "Admin",
        "-x",
        ".x",
        "_x",
        "a b",
        "a/b",
        "../x",
        "é",
        "a\n",
        too_long.as_str(),
    ] {
        let err = vault
            .set(name, CredentialKind::Password, secret("v"))
            .unwrap_err();
        assert!(
            matches!(err, VaultError::InvalidName { .. }),
            "`{name}`: {err}"
        );
        assert!(err.to_string().contains("1 to 64 characters"), "{err}");
        assert!(matches!(
            vault.get(name),
            Err(VaultError::InvalidName { .. })
        ));
        assert!(matches!(
            vault.remove(name),
            Err(VaultError::InvalidName { .. })
        ));
    }
    assert_eq!(Vault::open(&fx.vault, &fx.key).unwrap().len(), 6);
}

#[test]
fn empty_secret_is_refused() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    let err = vault
        .set("a", CredentialKind::Password, secret(""))
        .unwrap_err();
    assert!(matches!(err, VaultError::EmptySecret { .. }), "{err}");
    assert!(!fx.vault.exists());
}

#[test]
fn concurrent_writers_lose_no_updates() {
    let fx = fixture();
    std::thread::scope(|scope| {
        for thread_idx in 0..8 {
            let (path, key) = (&fx.vault, &fx.key);
            scope.spawn(move || {
                // Each thread has its own vault handle, as the CLI and the daemon would.
                let mut vault = Vault::open(path, key).unwrap();
                for cred_idx in 0..10 {
                    vault
                        .set(
                            &format!("t{thread_idx}-c{cred_idx}"),
                            CredentialKind::Password,
                            secret(&format!("v{thread_idx}.{cred_idx}")),
                        )
                        .unwrap();
                }
            });
        }
    });
    let vault = Vault::open(&fx.vault, &fx.key).unwrap();
    assert_eq!(vault.len(), 80);
    for thread_idx in 0..8 {
        for cred_idx in 0..10 {
            let cred = vault
                .get(&format!("t{thread_idx}-c{cred_idx}"))
                .unwrap()
                .unwrap();
            assert_eq!(cred.secret.expose(), format!("v{thread_idx}.{cred_idx}"));
        }
    }
}

/// A vault path whose file name leaves no room for the temporary sibling's suffix: the lock
/// (`<name>.lock`) still fits in 255 bytes, the temporary file cannot be created, even by root.
fn unwritable_name(fx: &Fixture) -> PathBuf {
    fx.dir.path().join("v".repeat(250))
}

#[test]
fn failed_write_keeps_the_previous_vault() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    vault
        .set("kept", CredentialKind::Password, secret("old"))
        .unwrap();
    let stuck = unwritable_name(&fx);
    std::fs::rename(&fx.vault, &stuck).unwrap();
    let before = std::fs::read(&stuck).unwrap();
    let mut vault = Vault::open(&stuck, &fx.key).unwrap();
    let err = vault
        .set("kept", CredentialKind::Password, secret("new"))
        .unwrap_err();
    assert!(matches!(err, VaultError::Write { .. }), "{err}");
    assert!(
        err.to_string().contains("the previous vault is unchanged"),
        "{err}"
    );
    assert_eq!(std::fs::read(&stuck).unwrap(), before);
    assert_eq!(vault.get("kept").unwrap().unwrap().secret.expose(), "old");
    let reopened = Vault::open(&stuck, &fx.key).unwrap();
    assert_eq!(
        reopened.get("kept").unwrap().unwrap().secret.expose(),
        "old"
    );
    let names: Vec<String> = std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "temporary files left behind: {names:?}");

    // Under a name with room for the temporary file, writing works again.
    std::fs::rename(&stuck, &fx.vault).unwrap();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    vault
        .set("kept", CredentialKind::Password, secret("new"))
        .unwrap();
    let reopened = Vault::open(&fx.vault, &fx.key).unwrap();
    assert_eq!(
        reopened.get("kept").unwrap().unwrap().secret.expose(),
        "new"
    );
}

#[test]
fn a_failed_write_prints_each_cause_once() {
    let fx = fixture();
    Vault::open(&fx.vault, &fx.key)
        .unwrap()
        .set("kept", CredentialKind::Password, secret("old"))
        .unwrap();
    let stuck = unwritable_name(&fx);
    std::fs::rename(&fx.vault, &stuck).unwrap();
    let err = Vault::open(&stuck, &fx.key)
        .unwrap()
        .set("kept", CredentialKind::Password, secret("new"))
        .unwrap_err();
    let chain: Vec<String> =
        std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |cause| {
            cause.source()
        })
        .map(ToString::to_string)
        .collect();
    let os_reason = std::io::Error::from_raw_os_error(36).to_string();
    assert_eq!(chain.len(), 3, "{chain:#?}");
    assert_eq!(
        chain[0],
        format!(
            "cannot write vault {} (the previous vault is unchanged)",
            stuck.display()
        )
    );
    assert!(chain[1].starts_with("creating "), "{chain:#?}");
    assert_eq!(chain[2], os_reason);
    let printed = chain.join(": ");
    assert_eq!(
        printed.matches(&os_reason).count(),
        1,
        "the OS reason is printed once: {printed}"
    );
    assert_eq!(
        printed.matches("cannot write vault").count(),
        1,
        "{printed}"
    );
}

#[test]
fn missing_directory_is_a_lock_error() {
    let fx = fixture();
    let path = fx.dir.path().join("no-such-dir").join("credentials.vault");
    let mut vault = Vault::open(&path, &fx.key).unwrap();
    let err = vault
        .set("a", CredentialKind::Password, secret("x"))
        .unwrap_err();
    assert!(matches!(err, VaultError::Lock { .. }), "{err}");
    assert!(err.to_string().contains("directory exists"), "{err}");
}

#[test]
fn rotate_key_re_encrypts_under_the_new_key() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    for name in ["a", "b", "c"] {
        vault
            .set(
                name,
                CredentialKind::Password,
                secret(&format!("secret-{name}")),
            )
            .unwrap();
    }
    let new_path = fx.dir.path().join("new.key");
    assert_eq!(rotate_key(&fx.vault, &fx.key, &new_path).unwrap(), 3);
    assert_eq!(mode(&new_path), 0o600);
    let new_key = KeySource::File(new_path.clone());
    let rotated = Vault::open(&fx.vault, &new_key).unwrap();
    for name in ["a", "b", "c"] {
        assert_eq!(
            rotated.get(name).unwrap().unwrap().secret.expose(),
            format!("secret-{name}")
        );
    }
    let err = Vault::open(&fx.vault, &fx.key).unwrap_err();
    assert!(matches!(err, VaultError::Undecryptable { .. }), "{err}");

    // Rotating onto an existing file is refused and changes nothing.
    let before = std::fs::read(&fx.vault).unwrap();
    let key_before = std::fs::read(&new_path).unwrap();
    let err = rotate_key(&fx.vault, &new_key, &new_path).unwrap_err();
    assert!(
        matches!(err, VaultError::Key(KeyError::Exists { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(&fx.vault).unwrap(), before);
    assert_eq!(std::fs::read(&new_path).unwrap(), key_before);

    // Rotating with the wrong old key creates no key file.
    let stray = fx.dir.path().join("stray.key");
    let err = rotate_key(&fx.vault, &fx.key, &stray).unwrap_err();
    assert!(matches!(err, VaultError::Undecryptable { .. }), "{err}");
    assert!(!stray.exists());

    // A failed vault write removes the new key again; the old key still opens the vault.
    let stuck = unwritable_name(&fx);
    std::fs::rename(&fx.vault, &stuck).unwrap();
    let third = fx.dir.path().join("third.key");
    let err = rotate_key(&stuck, &new_key, &third).unwrap_err();
    assert!(matches!(err, VaultError::Write { .. }), "{err}");
    assert!(!third.exists());
    assert_eq!(Vault::open(&stuck, &new_key).unwrap().len(), 3);
}

#[test]
fn debug_and_display_never_show_secrets() {
    let fx = fixture();
    let value = "zebra-unicorn-5521";
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    vault
        .set("fileserver", CredentialKind::SshKey, secret(value))
        .unwrap();
    let cred = vault.get("fileserver").unwrap().unwrap();
    let key_bytes = std::fs::read(fx.dir.path().join("credentials.key")).unwrap();
    let rendered = [
        format!("{:?}", secret(value)),
        format!("{}", secret(value)),
        format!("{cred:?}"),
        format!("{:#?}", cred),
        format!("{vault:?}"),
        format!("{:?}", vault.list()),
    ];
    assert_eq!(rendered[0], "[redacted]");
    assert_eq!(rendered[1], "[redacted]");
    for text in &rendered {
        assert!(!text.contains(value), "secret leaked: {text}");
        assert!(!text.contains("zebra"), "secret leaked: {text}");
        assert!(
            !text.contains(&format!("{key_bytes:?}")),
            "key leaked: {text}"
        );
    }
    assert!(rendered[2].contains("fileserver") && rendered[2].contains("[redacted]"));
}

/// Small secrets keep this quick in debug builds, where ChaCha20 runs unoptimised.
#[test]
fn open_and_get_with_200_credentials() {
    let fx = fixture();
    let mut vault = Vault::open(&fx.vault, &fx.key).unwrap();
    for idx in 0..200 {
        vault
            .set(
                &format!("host{idx:03}"),
                CredentialKind::SshKey,
                secret(&format!("{idx:03}{}", "k".repeat(61))),
            )
            .unwrap();
    }
    let reopened = Vault::open(&fx.vault, &fx.key).unwrap();
    assert_eq!(reopened.len(), 200);
    let last = reopened.get("host199").unwrap().unwrap();
    assert_eq!(last.secret.expose(), format!("199{}", "k".repeat(61)));
}
