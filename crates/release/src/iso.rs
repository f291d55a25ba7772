//! `osiris-release sign-iso`: Secure Boot-signs the EFI binaries inside an installer ISO's El
//! Torito UEFI boot image (a FAT image whose `EFI/BOOT/BOOTX64.EFI` is the installer UKI) and
//! writes a new ISO in which only the bytes of that image differ.
//!
//! The ISO is parsed here (volume descriptors, El Torito boot catalog, the FAT boot sector);
//! the FAT image is read and written in the copy with mtools at its byte offset
//! (`mcopy -i FILE@@OFFSET`), the binaries are signed with `sbsign` and checked with
//! `sbverify --cert`. Arguments go to those programs directly, never through a shell; the key
//! file is only named to `sbsign`, never read, copied or printed here.
//!
//! Decisions: a binary already signed by the given certificate is left as it is (signing an
//! ISO twice gives the same ISO); one that carries a signature the certificate does not
//! verify is refused (the vendor signs the unsigned build output, so a foreign signature
//! means the wrong input). The output is never overwritten and the input never changed.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

const SECTOR: u64 = 2048;
/// El Torito's platform id for UEFI.
const PLATFORM_EFI: u8 = 0xEF;

/// One signed ISO: where the EFI image lies and what was signed.
pub(crate) struct Signed {
    pub(crate) image_offset: u64,
    pub(crate) image_len: u64,
    /// `(path in the FAT image, "signed" | "already signed")`.
    pub(crate) binaries: Vec<(String, &'static str)>,
}

/// Signs `iso` into the new file `out` with the Secure Boot key `key` and certificate `cert`.
pub(crate) fn sign_iso(key: &Path, cert: &Path, out: &Path, iso: &Path) -> anyhow::Result<Signed> {
    check_key(key)?;
    if !cert.is_file() {
        bail!("certificate {} is not a file", cert.display());
    }
    if out.symlink_metadata().is_ok() {
        bail!(
            "{} exists: sign-iso never overwrites; choose another --out or move it away",
            out.display()
        );
    }
    let (image_offset, image_len) = efi_image(iso)?;
    let parent = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .with_context(|| format!("--out {} names no file", out.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.sign-iso-{}", std::process::id()));
    if tmp.to_string_lossy().contains("@@") {
        bail!(
            "--out {}: its path contains `@@`, which mtools reads as an offset; choose another",
            out.display()
        );
    }
    let work = parent.join(format!(".{name}.sign-iso-{}.d", std::process::id()));
    std::fs::create_dir(&work).with_context(|| format!("creating {}", work.display()))?;
    let _cleanup = Cleanup(vec![tmp.clone(), work.clone()]);
    std::fs::copy(iso, &tmp)
        .with_context(|| format!("copying {} to {}", iso.display(), tmp.display()))?;
    let image = format!("{}@@{image_offset}", tmp.display());

    let files = fat_files(&image)?;
    let mut binaries = Vec::new();
    for (n, path) in files.iter().enumerate() {
        let plain = work.join(format!("{n}.in"));
        mtools(
            &["mcopy", "-n", "-i", &image, &format!("::{path}")],
            Some(&plain),
        )?;
        if !is_pe(&plain)? {
            continue;
        }
        let verdict = if has_signature(&plain)? {
            if verifies(cert, &plain)? {
                "already signed"
            } else {
                bail!(
                    "{path} in the EFI image of {} is already signed by another key (not {}): sign the unsigned build output",
                    iso.display(),
                    cert.display()
                );
            }
        } else {
            let signed = work.join(format!("{n}.signed"));
            let status = Command::new("sbsign")
                .arg("--key")
                .arg(key)
                .arg("--cert")
                .arg(cert)
                .arg("--output")
                .arg(&signed)
                .arg(&plain)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("running sbsign (install sbsigntool)")?;
            if !status.success() || !verifies(cert, &signed)? {
                bail!(
                    "signing {path} failed: does {} belong to {}? (sbsign refused, or sbverify --cert does not accept the result)",
                    key.display(),
                    cert.display()
                );
            }
            mtools(
                &[
                    "mcopy",
                    "-o",
                    "-i",
                    &image,
                    &signed.to_string_lossy(),
                    &format!("::{path}"),
                ],
                None,
            )
            .with_context(|| {
                format!("writing the signed {path} back (is the EFI image full? build it with a few KiB free per binary)")
            })?;
            let back = work.join(format!("{n}.back"));
            mtools(
                &["mcopy", "-n", "-i", &image, &format!("::{path}")],
                Some(&back),
            )?;
            if !verifies(cert, &back)? {
                bail!("{path} read back from the new image does not verify; nothing written");
            }
            "signed"
        };
        binaries.push((path.clone(), verdict));
    }
    if binaries.is_empty() {
        bail!(
            "the UEFI boot image of {} holds no EFI binary (expected EFI/BOOT/BOOTX64.EFI)",
            iso.display()
        );
    }
    // Never replaces: hard_link fails when `out` appeared meanwhile.
    std::fs::hard_link(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(Signed {
        image_offset,
        image_len,
        binaries,
    })
}

/// Removes its paths (the temporary copy and work directory) on every exit.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn check_key(key: &Path) -> anyhow::Result<()> {
    let meta = key
        .symlink_metadata()
        .with_context(|| format!("reading the Secure Boot key {}", key.display()))?;
    if !meta.is_file() {
        bail!("Secure Boot key {} is not a regular file", key.display());
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "Secure Boot key {} is readable by others (mode {:o}): chmod 600 it",
            key.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Byte offset and length of the El Torito UEFI boot image (a FAT file system) in `iso`.
fn efi_image(iso: &Path) -> anyhow::Result<(u64, u64)> {
    let mut file = File::open(iso).with_context(|| format!("reading {}", iso.display()))?;
    let size = file.metadata()?.len();
    let not_iso = || {
        anyhow::anyhow!(
            "{} is not an ISO 9660 image (no volume descriptor CD001 at sector 16)",
            iso.display()
        )
    };
    let mut catalog_lba = None;
    let mut seen_primary = false;
    for n in 16..64u64 {
        let Ok(sector) = read_at(&mut file, n * SECTOR, SECTOR as usize) else {
            return Err(not_iso());
        };
        if &sector[1..6] != b"CD001" {
            return Err(not_iso());
        }
        match sector[0] {
            0 if sector[7..30] == *b"EL TORITO SPECIFICATION" => {
                catalog_lba = Some(u64::from(u32::from_le_bytes(
                    sector[0x47..0x4B].try_into()?,
                )));
            }
            1 => seen_primary = true,
            255 => break,
            _ => {}
        }
    }
    if !seen_primary {
        return Err(not_iso());
    }
    let no_uefi = |why: &str| {
        anyhow::anyhow!(
            "{} has no UEFI boot image ({why}): build it with an EFI El Torito entry (xorriso -e efi.img -no-emul-boot)",
            iso.display()
        )
    };
    let catalog_lba = catalog_lba.ok_or_else(|| no_uefi("no El Torito boot record"))?;
    let catalog = read_at(&mut file, catalog_lba * SECTOR, SECTOR as usize)
        .map_err(|_| no_uefi("the boot catalog lies outside the file"))?;
    if catalog[0] != 1 || catalog[30] != 0x55 || catalog[31] != 0xAA {
        return Err(no_uefi("the boot catalog's validation entry is broken"));
    }
    let mut efi_lba = None;
    if catalog[1] == PLATFORM_EFI && catalog[32] == 0x88 {
        efi_lba = Some(u32::from_le_bytes(catalog[40..44].try_into()?));
    }
    let mut at = 64;
    while efi_lba.is_none() && at + 32 <= catalog.len() {
        let header = catalog[at];
        if header != 0x90 && header != 0x91 {
            break;
        }
        let platform = catalog[at + 1];
        let entries = usize::from(u16::from_le_bytes(catalog[at + 2..at + 4].try_into()?));
        at += 32;
        for _ in 0..entries {
            if at + 32 > catalog.len() {
                break;
            }
            let entry = &catalog[at..at + 32];
            at += 32;
            if platform == PLATFORM_EFI && entry[0] == 0x88 && efi_lba.is_none() {
                efi_lba = Some(u32::from_le_bytes(entry[8..12].try_into()?));
            }
            // Section entry extensions follow their entry.
            while at + 32 <= catalog.len() && catalog[at] == 0x44 {
                at += 32;
            }
        }
        if header == 0x91 {
            break;
        }
    }
    let lba =
        u64::from(efi_lba.ok_or_else(|| no_uefi("no bootable EFI entry in the boot catalog"))?);
    let offset = lba * SECTOR;
    let boot = read_at(&mut file, offset, 512)
        .map_err(|_| no_uefi("the EFI entry points outside the file"))?;
    let bytes_per_sector = u64::from(u16::from_le_bytes(boot[11..13].try_into()?));
    let small = u64::from(u16::from_le_bytes(boot[19..21].try_into()?));
    let large = u64::from(u32::from_le_bytes(boot[32..36].try_into()?));
    let sectors = if small != 0 { small } else { large };
    if boot[510] != 0x55
        || boot[511] != 0xAA
        || !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || sectors == 0
    {
        return Err(no_uefi("its EFI entry is not a FAT file system"));
    }
    let len = sectors * bytes_per_sector;
    if offset + len > size {
        return Err(no_uefi("its FAT image runs past the end of the file"));
    }
    Ok((offset, len))
}

fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Runs an mtools program on the FAT image at `image` (`FILE@@OFFSET`); its stdout goes to
/// `stdout_to` when given (mcopy to a file) and is returned otherwise.
fn mtools(args: &[&str], stdout_to: Option<&Path>) -> anyhow::Result<String> {
    let (program, args) = args.split_first().context("no mtools program")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env("MTOOLSRC", "/dev/null")
        .env("MTOOLS_SKIP_CHECK", "1")
        .stdin(Stdio::null());
    if let Some(path) = stdout_to {
        // `mcopy ::FILE TARGET` with TARGET a path on the host.
        command.arg(path);
    }
    let output = command
        .output()
        .with_context(|| format!("running {program} (install mtools)"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every file in the FAT image, as `/DIR/NAME`.
fn fat_files(image: &str) -> anyhow::Result<Vec<String>> {
    let listing =
        mtools(&["mdir", "-/", "-b", "-i", image, "::/"], None).context("listing the EFI image")?;
    let mut files = Vec::new();
    for line in listing.lines() {
        let Some(path) = line.strip_prefix("::") else {
            continue;
        };
        // `mdir -b` lists directories with a trailing `/`.
        if path.is_empty() || path.ends_with('/') {
            continue;
        }
        files.push(path.to_owned());
    }
    Ok(files)
}

/// A PE/COFF image: `MZ`, and `PE\0\0` where the DOS header points.
fn is_pe(path: &Path) -> anyhow::Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 0x40 || &bytes[..2] != b"MZ" {
        return Ok(false);
    }
    let at = u32::from_le_bytes(bytes[0x3C..0x40].try_into()?) as usize;
    Ok(bytes.get(at..at + 4) == Some(b"PE\0\0".as_slice()))
}

/// Whether the PE image carries an Authenticode signature table (`sbverify --list`).
fn has_signature(path: &Path) -> anyhow::Result<bool> {
    let output = Command::new("sbverify")
        .arg("--list")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running sbverify (install sbsigntool)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(output.status.success() && text.contains("signature 1"))
}

fn verifies(cert: &Path, path: &Path) -> anyhow::Result<bool> {
    Ok(Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running sbverify (install sbsigntool)")?
        .success())
}
