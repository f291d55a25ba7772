//! Secure Boot staging over a real ESP directory tree: a signed UKI becomes a Boot Loader
//! Specification type #2 entry `EFI/Linux/osiris_<version>+<tries>.efi`, is counted, blessed and
//! marked bad like a type #1 entry, old UKIs are collected, and every refusal (wrong hash,
//! symlink, target outside the ESP, older version, bad version) writes nothing. The last test
//! builds a real UKI from a kernel and systemd's stub, signs it with `sbsign`, and checks that
//! `sbverify` and the updater both refuse a byte-flipped copy.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};
use update::{BootError, BootLoader, Counter, EntrySpec, LOADER_GUID, SystemdBoot};

struct Esp {
    _dir: tempfile::TempDir,
    esp: PathBuf,
    efivars: PathBuf,
    store: PathBuf,
}

impl Esp {
    fn new() -> Esp {
        let dir = tempfile::tempdir().unwrap();
        let esp = dir.path().join("boot");
        let efivars = dir.path().join("efivars");
        let store = dir.path().join("store");
        for d in [&esp, &efivars, &store] {
            fs::create_dir_all(d).unwrap();
        }
        Esp {
            _dir: dir,
            esp,
            efivars,
            store,
        }
    }

    fn loader(&self) -> SystemdBoot {
        SystemdBoot::new(&self.esp, &self.efivars)
    }

    /// A UKI for `version` in the "store"; returns its path and SHA-256.
    fn uki(&self, version: &str) -> (PathBuf, String) {
        let bytes = format!("MZ signed kernel image {version}").into_bytes();
        let path = self.store.join(format!("osiris_{version}.efi"));
        fs::write(&path, &bytes).unwrap();
        (path, sha256(&bytes))
    }

    fn spec(&self, version: &str) -> EntrySpec {
        let (file, hash) = self.uki(version);
        EntrySpec::new(
            version,
            &format!("/nix/store/{version}-system"),
            &self.store,
        )
        .with_uki(&file, &hash)
    }

    /// Every file on the ESP (relative paths, sorted), temporary files included.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.esp, &self.esp, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            walk(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn counter(tries_left: u32, tries_done: u32) -> Option<Counter> {
    Some(Counter {
        tries_left,
        tries_done,
    })
}

#[test]
fn a_uki_is_staged_counted_blessed_and_marked_bad_like_a_type_1_entry() {
    let esp = Esp::new();
    let mut boot = esp.loader();
    let entry = boot.install(&esp.spec("1.1.0"), 3).unwrap();
    assert_eq!(entry.id, "osiris_1.1.0.efi");
    assert_eq!(entry.version, "1.1.0");
    assert_eq!(entry.counter, counter(3, 0));
    assert_eq!(
        esp.files(),
        ["EFI/Linux/osiris_1.1.0+3.efi", "loader/loader.conf"]
    );
    assert_eq!(
        fs::read(esp.esp.join("EFI/Linux/osiris_1.1.0+3.efi")).unwrap(),
        fs::read(esp.store.join("osiris_1.1.0.efi")).unwrap()
    );
    let conf = fs::read_to_string(esp.esp.join("loader/loader.conf")).unwrap();
    assert!(
        conf.contains("editor no") && !conf.contains("default"),
        "{conf}"
    );

    // The firmware boots it: the counter goes down and LoaderEntrySelected names the type #2 entry.
    assert_eq!(
        boot.emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris_1.1.0.efi")
    );
    assert_eq!(esp.files()[0], "EFI/Linux/osiris_1.1.0+2-1.efi");
    let var = fs::read(
        esp.efivars
            .join(format!("LoaderEntrySelected-{LOADER_GUID}")),
    )
    .unwrap();
    let text: Vec<u16> = var[4..]
        .chunks(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    assert_eq!(String::from_utf16(&text).unwrap(), "osiris_1.1.0.efi\0");
    assert_eq!(boot.booted().unwrap().as_deref(), Some("osiris_1.1.0.efi"));

    boot.bless("osiris_1.1.0.efi").unwrap();
    assert_eq!(esp.files()[0], "EFI/Linux/osiris_1.1.0.efi");

    // The next release: preferred while it has tries; marked bad, the blessed one is next.
    boot.install(&esp.spec("1.2.0"), 3).unwrap();
    assert_eq!(
        boot.next_boot().unwrap().unwrap().id,
        "osiris_1.2.0.efi",
        "a new entry with tries left comes first"
    );
    boot.mark_bad("osiris_1.2.0.efi").unwrap();
    assert_eq!(
        esp.files(),
        [
            "EFI/Linux/osiris_1.1.0.efi",
            "EFI/Linux/osiris_1.2.0+0-3.efi",
            "loader/loader.conf"
        ]
    );
    let next = boot.next_boot().unwrap().unwrap();
    assert_eq!(next.id, "osiris_1.1.0.efi");
    assert_eq!(next.counter, None);
    assert!(boot.entries().unwrap()[1].is_bad());

    // A fixed release replaces the bad one; the running entry is kept as the rollback target.
    boot.install(&esp.spec("1.2.1"), 2).unwrap();
    assert_eq!(
        esp.files(),
        [
            "EFI/Linux/osiris_1.1.0.efi",
            "EFI/Linux/osiris_1.2.1+2.efi",
            "loader/loader.conf"
        ]
    );
}

#[test]
fn old_ukis_are_collected_but_the_running_one_is_kept() {
    let esp = Esp::new();
    let mut boot = esp.loader();
    boot.install(&esp.spec("1.0.0"), 3).unwrap();
    boot.emulate_firmware_boot().unwrap();
    boot.bless("osiris_1.0.0.efi").unwrap();
    // Three releases staged one after another without a reboot in between (each superseded).
    for version in ["1.1.0", "1.2.0", "1.3.0"] {
        boot.install(&esp.spec(version), 3).unwrap();
    }
    assert_eq!(
        esp.files(),
        [
            "EFI/Linux/osiris_1.0.0.efi",
            "EFI/Linux/osiris_1.3.0+3.efi",
            "loader/loader.conf"
        ]
    );
    // Re-staging the same release replaces its copy and its counter.
    boot.install(&esp.spec("1.3.0"), 2).unwrap();
    assert_eq!(esp.files()[1], "EFI/Linux/osiris_1.3.0+2.efi");

    // Without LoaderEntrySelected, the entry the loader would pick now is the one kept.
    let esp = Esp::new();
    let mut boot = esp.loader();
    boot.install(&esp.spec("2.0.0"), 3).unwrap();
    boot.bless("osiris_2.0.0.efi").unwrap();
    boot.install(&esp.spec("2.1.0"), 3).unwrap();
    boot.install(&esp.spec("2.2.0"), 3).unwrap();
    assert_eq!(
        esp.files(),
        [
            "EFI/Linux/osiris_2.1.0+3.efi",
            "EFI/Linux/osiris_2.2.0+3.efi",
            "loader/loader.conf"
        ]
    );
}

/// Each refusal names its cause and leaves the ESP exactly as it was.
#[test]
fn a_wrong_hash_a_symlink_a_target_outside_the_esp_and_an_older_version_are_refused() {
    let esp = Esp::new();
    let mut boot = esp.loader();
    boot.install(&esp.spec("1.1.0"), 3).unwrap();
    boot.emulate_firmware_boot().unwrap();
    boot.bless("osiris_1.1.0.efi").unwrap();
    let before = esp.files();

    // Altered after the manifest was signed: the hash names the file and both digests.
    let (file, hash) = esp.uki("1.2.0");
    fs::write(&file, b"MZ something else").unwrap();
    let spec = EntrySpec::new("1.2.0", "/nix/store/s", &esp.store).with_uki(&file, &hash);
    let err = boot.install(&spec, 3).unwrap_err();
    assert!(matches!(err, BootError::UkiHash { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&hash) && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(esp.files(), before);

    // A symlink in the store, even to a file with the right hash.
    let (real, hash) = esp.uki("1.2.1");
    let link = esp.store.join("link.efi");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let spec = EntrySpec::new("1.2.1", "/nix/store/s", &esp.store).with_uki(&link, &hash);
    let err = boot.install(&spec, 3).unwrap_err();
    assert!(matches!(err, BootError::NotRegular { .. }), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(esp.files(), before);

    // A version that goes backwards behind a good entry.
    let err = boot.install(&esp.spec("1.0.9"), 3).unwrap_err();
    assert!(matches!(err, BootError::Backwards { .. }), "{err}");
    assert!(err.to_string().contains("osiris_1.1.0.efi"), "{err}");
    assert_eq!(esp.files(), before);

    // A version that is not MAJOR.MINOR.PATCH could name a path: refused before any read.
    let (file, hash) = esp.uki("9.9.9");
    for version in ["../../../etc/9.9.9", "9.9.9/x", "9.9"] {
        let spec = EntrySpec::new(version, "/nix/store/s", &esp.store).with_uki(&file, &hash);
        let err = boot.install(&spec, 3).unwrap_err();
        assert!(matches!(err, BootError::BadId(_)), "{version}: {err}");
    }
    assert_eq!(esp.files(), before);

    // `EFI/Linux` replaced by a symlink to a directory outside the ESP.
    let outside = esp.store.join("outside");
    fs::create_dir(&outside).unwrap();
    for item in fs::read_dir(esp.esp.join("EFI/Linux")).unwrap() {
        let path = item.unwrap().path();
        fs::rename(&path, outside.join(path.file_name().unwrap())).unwrap();
    }
    fs::remove_dir(esp.esp.join("EFI/Linux")).unwrap();
    std::os::unix::fs::symlink(&outside, esp.esp.join("EFI/Linux")).unwrap();
    let listing = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|item| item.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let outside_before = listing(&outside);
    let err = boot.install(&esp.spec("1.3.0"), 3).unwrap_err();
    assert!(matches!(err, BootError::NotRegular { .. }), "{err}");
    assert!(err.to_string().contains("EFI/Linux"), "{err}");
    assert_eq!(listing(&outside), outside_before);
}

/// Type #1 entries (the installer's, or from before Secure Boot) and type #2 entries sort
/// together: the newest good one first.
#[test]
fn type_1_and_type_2_entries_sort_together() {
    let esp = Esp::new();
    let system = esp.store.join("system");
    fs::create_dir(&system).unwrap();
    for (file, text) in [("kernel", "k"), ("initrd", "i"), ("kernel-params", "quiet")] {
        fs::write(system.join(file), text).unwrap();
    }
    let mut boot = esp.loader();
    boot.install(&EntrySpec::new("1.0.0", "/nix/store/s", &system), 3)
        .unwrap();
    boot.bless("osiris-1.0.0").unwrap();
    boot.install(&esp.spec("1.1.0"), 3).unwrap();
    let ids: Vec<String> = boot.entries().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["osiris_1.1.0.efi", "osiris-1.0.0"]);
    boot.mark_bad("osiris_1.1.0.efi").unwrap();
    assert_eq!(boot.next_boot().unwrap().unwrap().id, "osiris-1.0.0");
    // The type #1 entry is never collected by UKI staging.
    boot.install(&esp.spec("1.1.1"), 3).unwrap();
    assert!(
        esp.files()
            .contains(&"loader/entries/osiris-1.0.0.conf".to_owned())
    );
}

/// A real UKI: a Debian kernel and systemd's EFI stub joined with `objcopy`, signed by `sbsign`
/// with a throwaway db key. `sbverify` accepts it and rejects a copy with one byte flipped in the
/// kernel; the updater refuses the flipped copy by its hash before writing anything and stages
/// the signed one bit for bit.
#[test]
fn a_real_signed_uki_is_staged_and_a_flipped_copy_is_refused_by_hash() {
    let Some((kernel, stub)) = uki_inputs() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);
    fs::write(w("os-release"), "ID=osiris\nVERSION_ID=1.2.0\n").unwrap();
    fs::write(w("cmdline"), "console=ttyS0 panic=-1\0").unwrap();
    fs::write(w("initrd"), b"initrd placeholder").unwrap();
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".osrel={}", w("os-release").display()))
        .args(["--change-section-vma", ".osrel=0x20000", "--add-section"])
        .arg(format!(".cmdline={}", w("cmdline").display()))
        .args(["--change-section-vma", ".cmdline=0x30000", "--add-section"])
        .arg(format!(".linux={}", kernel.display()))
        .args(["--change-section-vma", ".linux=0x2000000", "--add-section"])
        .arg(format!(".initrd={}", w("initrd").display()))
        .args(["--change-section-vma", ".initrd=0x3000000"])
        .arg(&stub)
        .arg(w("unsigned.efi")));
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=osiris test db/",
        "-keyout",
        w("db.key").to_str().unwrap(),
        "-out",
        w("db.crt").to_str().unwrap(),
    ]));
    run(Command::new("sbsign")
        .arg("--key")
        .arg(w("db.key"))
        .arg("--cert")
        .arg(w("db.crt"))
        .arg("--output")
        .arg(w("osiris_1.2.0.efi"))
        .arg(w("unsigned.efi")));
    let sbverify = |file: &Path| {
        Command::new("sbverify")
            .arg("--cert")
            .arg(w("db.crt"))
            .arg(file)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(sbverify(&w("osiris_1.2.0.efi")), "the signed UKI verifies");
    assert!(!sbverify(&w("unsigned.efi")), "the unsigned UKI does not");

    let signed = fs::read(w("osiris_1.2.0.efi")).unwrap();
    let hash = sha256(&signed);
    // Flip one byte inside the kernel: the image is still a PE, but no longer the signed one.
    let kernel_bytes = fs::read(&kernel).unwrap();
    let at = find(&signed, &kernel_bytes[4096..4160]).unwrap() + 32;
    let mut flipped = signed.clone();
    flipped[at] ^= 0x01;
    let flipped_dir = work.path().join("flipped");
    fs::create_dir(&flipped_dir).unwrap();
    let flipped_file = flipped_dir.join("osiris_1.2.0.efi");
    fs::write(&flipped_file, &flipped).unwrap();
    assert!(
        !sbverify(&flipped_file),
        "sbverify rejects the flipped copy"
    );

    let esp = Esp::new();
    let mut boot = esp.loader();
    let spec = EntrySpec::new("1.2.0", "/nix/store/s", work.path()).with_uki(&flipped_file, &hash);
    let err = boot.install(&spec, 3).unwrap_err();
    assert!(matches!(err, BootError::UkiHash { .. }), "{err}");
    assert_eq!(esp.files(), Vec::<String>::new(), "nothing was written");

    let spec = EntrySpec::new("1.2.0", "/nix/store/s", work.path())
        .with_uki(&w("osiris_1.2.0.efi"), &hash);
    boot.install(&spec, 3).unwrap();
    let staged = esp.esp.join("EFI/Linux/osiris_1.2.0+3.efi");
    assert_eq!(fs::read(&staged).unwrap(), signed);
    assert!(sbverify(&staged), "the staged copy still verifies");
}

/// The kernel (`OSIRIS_TEST_KERNEL`, which scripts/test sets to the one scripts/setup extracts,
/// or `/boot/vmlinuz-*`) and systemd's x86-64 EFI stub (Debian's systemd-boot-efi).
fn uki_inputs() -> Option<(PathBuf, PathBuf)> {
    if !test_support::root::require_tools(
        "real UKI (sbsigntool, binutils, openssl)",
        &["objcopy", "sbsign", "sbverify", "openssl"],
    ) {
        return None;
    }
    let kernel = std::env::var_os("OSIRIS_TEST_KERNEL")
        .map(PathBuf::from)
        .or_else(|| {
            let mut found: Vec<PathBuf> = fs::read_dir("/boot")
                .ok()?
                .filter_map(|item| item.ok().map(|item| item.path()))
                .filter(|path| path.to_string_lossy().contains("vmlinuz-"))
                .collect();
            found.sort();
            found.pop()
        })
        .filter(|path| path.is_file());
    let stub = PathBuf::from("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    let mut missing = Vec::new();
    if kernel.is_none() {
        missing.push("a kernel image (set OSIRIS_TEST_KERNEL; scripts/setup extracts one)");
    }
    if !stub.is_file() {
        missing.push("systemd's EFI stub (Debian package systemd-boot-efi)");
    }
    if missing.is_empty() {
        return kernel.map(|kernel| (kernel, stub));
    }
    let missing: Vec<String> = missing.into_iter().map(str::to_owned).collect();
    test_support::root::require_setup("the real UKI test", &missing);
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A real Secure Boot boot under qemu (vm-tests/secure-boot-uki.sh): OVMF with Secure Boot on
/// and a throwaway certificate enrolled boots the signed UKI, directly and through signed
/// systemd-boot from the type #2 entry `EFI/Linux/osiris_1.2.0+3.efi` (which it counts down to
/// `+2-1`), and refuses the unsigned UKI and a byte-flipped copy.
#[test]
fn a_signed_uki_boots_under_secure_boot_and_altered_ones_are_refused() {
    let Some((kernel, _)) = uki_inputs() else {
        return;
    };
    if !test_support::root::require_tools(
        "Secure Boot boot under qemu (qemu-system-x86, gcc, cpio)",
        &["qemu-system-x86_64", "gcc", "cpio"],
    ) {
        return;
    }
    let python = std::env::var_os("OSIRIS_PYTHON").map(PathBuf::from);
    let virt_fw_vars = python
        .as_ref()
        .and_then(|python| python.parent())
        .map(|bin| bin.join("virt-fw-vars"))
        .filter(|path| path.is_file());
    let ovmf = Path::new("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
    let mut missing = Vec::new();
    if !ovmf.is_file() {
        missing.push("OVMF's Secure Boot firmware (Debian package ovmf)".to_owned());
    }
    if virt_fw_vars.is_none() {
        missing.push("virt-fw-vars in OSIRIS_PYTHON's venv (scripts/setup-python)".to_owned());
    }
    if !test_support::root::require_setup("the Secure Boot boot test", &missing) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/secure-boot-uki.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("OSIRIS_TEST_KERNEL", &kernel)
        .env("OSIRIS_PYTHON", python.unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "signed: booted",
        "loader: booted",
        "loader: entry after the boot: osiris_1.2.0+2-1.efi",
        "unsigned: refused",
        "flipped: refused",
        "secure-boot-uki: ok",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}
