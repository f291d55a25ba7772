//! `osiris-release sign-iso` on real ISOs made with xorriso: the signed ISO's EFI boot image
//! holds binaries `sbverify --cert` accepts, every byte outside that image is unchanged, the
//! input is untouched, and signing again is a no-op. Refused with nothing written: not an ISO,
//! an ISO without UEFI boot, an EFI image with no EFI binary, a binary signed by another key, a
//! key that does not match the certificate, a key file others can read, an existing output. A
//! FAT file name made of shell syntax reaches no shell. Then a real Secure Boot boot under
//! qemu/OVMF (vm-tests/secure-boot-iso.sh): the signed ISO boots, the unsigned one and one
//! signed by another key are refused by the firmware.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{db_key, run, text, tool};

const LOADER: &str = common::EFI_BINARY;

/// An ISO whose El Torito UEFI entry is a 4 MiB FAT image holding `files` (FAT path, host file).
fn make_iso(dir: &Path, name: &str, files: &[(&str, &Path)]) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    let tree = dir.join(format!("{name}.tree"));
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::write(tree.join("README.TXT"), "installer\n").unwrap();
    run(Command::new("truncate").arg("-s").arg("4M").arg(&img));
    run(Command::new("mformat").arg("-i").arg(&img).arg("::"));
    run(Command::new("mmd")
        .arg("-i")
        .arg(&img)
        .args(["::/EFI", "::/EFI/BOOT"]));
    for (path, host) in files {
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(host)
            .arg(format!("::{path}")));
    }
    std::fs::copy(&img, tree.join("boot/efi.img")).unwrap();
    let iso = dir.join(format!("{name}.iso"));
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso)
        .args(["-V", "OSIRIS", "-e", "boot/efi.img", "-no-emul-boot"])
        .args(["-isohybrid-gpt-basdat"])
        .arg(&tree));
    iso
}

/// A file out of the FAT image at byte `offset` of `iso`.
fn extract(iso: &Path, offset: u64, path: &str, to: &Path) {
    let _ = std::fs::remove_file(to);
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@{offset}", iso.display()))
        .arg(format!("::{path}"))
        .arg(to));
}

fn verifies(cert: &Path, file: &Path) -> bool {
    Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

/// `(offset, length)` of the EFI image from the tool's last line.
fn image_range(stdout: &str) -> (u64, u64) {
    let line = stdout.lines().last().unwrap();
    let (_, rest) = line.split_once("image (").unwrap();
    let (len, rest) = rest.split_once(" bytes at byte ").unwrap();
    let (offset, _) = rest.split_once(')').unwrap();
    (offset.parse().unwrap(), len.parse().unwrap())
}

fn refused(args: &[&Path], expect: &str, out: &Path) {
    let output = tool(args);
    assert!(!output.status.success(), "{args:?} was accepted");
    let stderr = text(&output.stderr);
    assert!(stderr.contains(expect), "no `{expect}` in: {stderr}");
    assert!(!out.exists(), "{} written on refusal", out.display());
}

#[test]
fn an_iso_is_signed_outside_nothing_changes_and_bad_inputs_are_refused() {
    if !test_support::require_root(
        "an_iso_is_signed_outside_nothing_changes_and_bad_inputs_are_refused",
        &[
            "sbsign", "sbverify", "openssl", "xorriso", "mformat", "mcopy", "mdir",
        ],
    ) {
        return;
    }
    if !Path::new(LOADER).exists()
        && !test_support::root::require_setup(
            "an_iso_is_signed_outside_nothing_changes_and_bad_inputs_are_refused",
            &[format!(
                "{LOADER} (systemd-boot-efi; scripts/setup installs it)"
            )],
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = db_key(d, "db");
    let (other_key, other_cert) = db_key(d, "other");
    let sign = |key: &Path, cert: &Path, out: &Path, iso: &Path| {
        tool(&[
            Path::new("sign-iso"),
            Path::new("--key"),
            key,
            Path::new("--cert"),
            cert,
            Path::new("--out"),
            out,
            iso,
        ])
    };

    // A loader, a second EFI binary whose name is shell syntax, and a text file.
    let readme = d.join("readme.txt");
    std::fs::write(&readme, "not a binary\n").unwrap();
    let evil = "/EFI/BOOT/$(touch PWNED);x.efi";
    let iso = make_iso(
        d,
        "installer",
        &[
            ("/EFI/BOOT/BOOTX64.EFI", Path::new(LOADER)),
            (evil, Path::new(LOADER)),
            ("/README.TXT", &readme),
        ],
    );
    let before = std::fs::read(&iso).unwrap();
    let signed = d.join("signed.iso");
    let output = sign(&key, &cert, &signed, &iso);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("/EFI/BOOT/BOOTX64.EFI: signed"), "{stdout}");
    assert!(stdout.contains(&format!("{evil}: signed")), "{stdout}");
    assert!(
        !stdout.contains("README"),
        "a text file was signed: {stdout}"
    );
    assert!(!d.join("PWNED").exists() && !Path::new("PWNED").exists());
    assert_eq!(
        std::fs::read(&iso).unwrap(),
        before,
        "the input ISO changed"
    );
    let after = std::fs::read(&signed).unwrap();
    assert_eq!(after.len(), before.len());
    let (offset, len) = image_range(&stdout);
    let outside = |bytes: &[u8]| {
        let (offset, len) = (
            usize::try_from(offset).unwrap(),
            usize::try_from(len).unwrap(),
        );
        [bytes[..offset].to_vec(), bytes[offset + len..].to_vec()].concat()
    };
    assert_eq!(
        outside(&after),
        outside(&before),
        "bytes outside the EFI image changed"
    );
    assert_ne!(after, before);
    let efi = d.join("BOOTX64.EFI");
    for path in ["/EFI/BOOT/BOOTX64.EFI", evil] {
        extract(&signed, offset, path, &efi);
        assert!(verifies(&cert, &efi), "{path} does not verify");
        assert!(!verifies(&other_cert, &efi));
    }
    extract(&iso, offset, "/EFI/BOOT/BOOTX64.EFI", &efi);
    assert!(
        !verifies(&cert, &efi),
        "the input's loader was signed in place"
    );
    // No temporary copy or work directory is left beside the output.
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("sign-iso"))
        .collect();
    names.sort();
    assert_eq!(names, Vec::<String>::new());

    // Signing the signed ISO again changes nothing.
    let again = d.join("again.iso");
    let output = sign(&key, &cert, &again, &signed);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("BOOTX64.EFI: already signed"));
    assert_eq!(std::fs::read(&again).unwrap(), after);

    let out = d.join("refused.iso");
    let args = |key: &Path, cert: &Path, iso: &Path| -> Vec<PathBuf> {
        ["sign-iso", "--key"]
            .iter()
            .map(PathBuf::from)
            .chain([key.to_path_buf(), "--cert".into(), cert.to_path_buf()])
            .chain(["--out".into(), out.clone(), iso.to_path_buf()])
            .collect()
    };
    let check = |argv: Vec<PathBuf>, expect: &str| {
        let argv: Vec<&Path> = argv.iter().map(PathBuf::as_path).collect();
        refused(&argv, expect, &out);
    };
    // Signed by another key.
    check(
        args(&other_key, &other_cert, &signed),
        "already signed by another key",
    );
    // Key and certificate of different pairs.
    check(args(&other_key, &cert, &iso), "does");
    check(args(&other_key, &cert, &iso), "belong to");
    // Not an ISO.
    check(args(&key, &cert, &cert), "is not an ISO 9660 image");
    // An ISO without El Torito.
    let plain = d.join("plain.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&plain)
        .arg(d.join("installer.tree")));
    check(args(&key, &cert, &plain), "has no UEFI boot image");
    // An EFI image with no EFI binary.
    let empty = make_iso(d, "empty", &[("/EFI/BOOT/README.TXT", &readme)]);
    check(args(&key, &cert, &empty), "holds no EFI binary");
    // A key file others can read: refused before anything runs.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    check(args(&key, &cert, &iso), "readable by others");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // An existing output is never overwritten.
    let output = sign(&key, &cert, &again, &iso);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read(&again).unwrap(), after);
    // An output path mtools would misread.
    let odd = d.join("a@@1.iso");
    let output = sign(&key, &cert, &odd, &iso);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("@@"),
        "{}",
        text(&output.stderr)
    );
    assert!(!odd.exists());
}

/// A real Secure Boot boot of the signed ISO as a CD-ROM under qemu (vm-tests/secure-boot-iso.sh).
#[test]
fn a_signed_iso_boots_under_secure_boot_and_unsigned_or_foreign_ones_are_refused() {
    let name = "a_signed_iso_boots_under_secure_boot_and_unsigned_or_foreign_ones_are_refused";
    if !test_support::require_root(
        name,
        &[
            "sbsign",
            "sbverify",
            "openssl",
            "objcopy",
            "xorriso",
            "mformat",
            "mcopy",
            "gcc",
            "cpio",
            "qemu-system-x86_64",
        ],
    ) {
        return;
    }
    let kernel = std::env::var_os("OSIRIS_TEST_KERNEL")
        .map(PathBuf::from)
        .filter(|path| path.is_file());
    let python = std::env::var_os("OSIRIS_PYTHON").map(PathBuf::from);
    let virt_fw_vars = python
        .as_ref()
        .and_then(|python| python.parent())
        .map(|bin| bin.join("virt-fw-vars"))
        .filter(|path| path.is_file());
    let mut missing = Vec::new();
    if kernel.is_none() {
        missing
            .push("a kernel image (set OSIRIS_TEST_KERNEL; scripts/setup extracts one)".to_owned());
    }
    if !Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub").is_file() {
        missing.push("systemd's EFI stub (Debian package systemd-boot-efi)".to_owned());
    }
    if !Path::new("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd").is_file() {
        missing.push("OVMF's Secure Boot firmware (Debian package ovmf)".to_owned());
    }
    if virt_fw_vars.is_none() {
        missing.push("virt-fw-vars in OSIRIS_PYTHON's venv (scripts/setup-python)".to_owned());
    }
    if !test_support::root::require_setup(name, &missing) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/secure-boot-iso.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("OSIRIS_TEST_KERNEL", kernel.unwrap())
        .env("OSIRIS_PYTHON", python.unwrap())
        .env("OSIRIS_RELEASE", env!("CARGO_BIN_EXE_osiris-release"))
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "signed: booted",
        "unsigned: refused",
        "other: refused",
        "secure-boot-iso: ok",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}
