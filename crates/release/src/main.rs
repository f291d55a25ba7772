//! `osiris-release`: the vendor's tool for publishing an appliance release (docs/UPDATES.md
//! "Publishing a release"). It makes the vendor key, and signs the manifest that names the system
//! closure, its binary cache and the Secure Boot-signed UKI, after checking the UKI's signature
//! with `sbverify` and everything an appliance will check (`update_manifest::release`).
//!
//! ```text
//! osiris-release keygen NAME OUT.key            # secret to OUT.key (0600), public key to stdout
//! osiris-release manifest --signing-key KEY --version V --min-version V --system PATH
//!     --cache-url URL --cache-key NAME:KEY... --counter N [--expires-days D]
//!     [--uki FILE --db-cert CERT] --out manifest.json
//! osiris-release show --vendor-key NAME:KEY manifest.json
//! osiris-release sign-iso --key db.key --cert db.crt --out signed.iso installer.iso
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool that prints its results and errors"
)]

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;
use sha2::Digest as _;
use update_manifest::release::{self, MAX_VALIDITY_DAYS, Release};
use update_manifest::{SignedManifest, Uki, VendorKey};

mod iso;

/// Publish appliance releases: vendor keys and signed update manifests.
#[derive(Parser)]
#[command(name = "osiris-release", about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a vendor key: the secret into OUT (mode 0600, never overwritten), the public key
    /// (`name:base64`, what appliances pin as their vendor key) to stdout.
    Keygen { name: String, out: PathBuf },
    /// Sign the manifest of a release.
    Manifest {
        /// The vendor key file (`osiris-release keygen`).
        #[arg(long)]
        signing_key: PathBuf,
        /// The release, MAJOR.MINOR.PATCH.
        #[arg(long)]
        version: String,
        /// The oldest installed release that may update to this one.
        #[arg(long)]
        min_version: String,
        /// The system closure's top-level store path.
        #[arg(long)]
        system: String,
        /// The binary cache holding the closure and the UKI (https:// or file://).
        #[arg(long)]
        cache_url: String,
        /// A narinfo signing key of the cache (`name:base64`), repeatable.
        #[arg(long = "cache-key", required = true)]
        cache_keys: Vec<String>,
        /// Above the counter of every manifest published before.
        #[arg(long)]
        counter: u64,
        /// Days until the manifest expires (1 to 90); re-sign the current release before then.
        #[arg(long, default_value_t = 30)]
        expires_days: i64,
        /// The Secure Boot-signed UKI: its file in the store (`/nix/store/…-uki/osiris_V.efi`).
        #[arg(long, requires = "db_cert")]
        uki: Option<PathBuf>,
        /// The certificate of the Secure Boot key that must have signed the UKI (`db.crt`).
        #[arg(long, requires = "uki")]
        db_cert: Option<PathBuf>,
        /// Where to write the manifest; an existing one is replaced only by a higher counter.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a manifest under the vendor key and print what it offers.
    Show {
        #[arg(long)]
        vendor_key: String,
        manifest: PathBuf,
    },
    /// Secure Boot-sign the installer ISO: every EFI binary in its El Torito UEFI boot image
    /// (the installer UKI as EFI/BOOT/BOOTX64.EFI), into a new ISO (src/iso.rs).
    SignIso {
        /// The Secure Boot signing key (`db.key`, mode 0600); only named to sbsign.
        #[arg(long)]
        key: PathBuf,
        /// Its certificate (`db.crt`), the one enrolled in the machines' db.
        #[arg(long)]
        cert: PathBuf,
        /// The signed ISO to write; never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// The installer ISO as built; never changed.
        iso: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("osiris-release: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Keygen { name, out } => keygen(&name, &out),
        Command::SignIso {
            key,
            cert,
            out,
            iso,
        } => {
            let signed = iso::sign_iso(&key, &cert, &out, &iso)?;
            for (path, verdict) in &signed.binaries {
                println!("{path}: {verdict}");
            }
            println!(
                "wrote {}: only its EFI boot image ({} bytes at byte {}) differs from {}",
                out.display(),
                signed.image_len,
                signed.image_offset,
                iso.display()
            );
            Ok(())
        }
        Command::Manifest {
            signing_key,
            version,
            min_version,
            system,
            cache_url,
            cache_keys,
            counter,
            expires_days,
            uki,
            db_cert,
            out,
        } => {
            if !(1..=MAX_VALIDITY_DAYS).contains(&expires_days) {
                bail!("--expires-days {expires_days}: give 1 to {MAX_VALIDITY_DAYS} days");
            }
            let (key_name, key) = read_key(&signing_key)?;
            let uki = match (uki, db_cert) {
                (Some(uki), Some(cert)) => Some(signed_uki(&uki, &cert)?),
                _ => None,
            };
            let now = time::OffsetDateTime::now_utc();
            let release = Release {
                version,
                min_version,
                system,
                cache_url,
                cache_keys,
                counter,
                expires: now + time::Duration::days(expires_days),
                uki,
            };
            let signed = release::sign(&release, now, &key_name, &key)?;
            let public = VendorKey::from_signing_key(&key_name, &key);
            check_replaces(&out, &public, counter)?;
            let mut json = serde_json::to_vec_pretty(&signed)?;
            json.push(b'\n');
            durable::write(&out, &json, 0o644)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "signed {} (release {}, counter {counter}, {}) with {}",
                out.display(),
                release.version,
                if release.uki.is_some() {
                    "with its Secure Boot UKI"
                } else {
                    "no UKI: only for appliances without Secure Boot"
                },
                public
            );
            Ok(())
        }
        Command::Show {
            vendor_key,
            manifest,
        } => {
            let pinned = VendorKey::parse(&vendor_key)?;
            let bytes = std::fs::read(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let (manifest, uki) = SignedManifest::from_json(&bytes)?.verify_release(&pinned)?;
            println!(
                "release {} (from {} on)",
                manifest.version, manifest.min_version
            );
            println!("system {}", manifest.system);
            println!(
                "cache {} ({})",
                manifest.cache_url,
                manifest.cache_keys.join(", ")
            );
            println!(
                "counter {}, released {}, expires {}",
                manifest.counter, manifest.released, manifest.expires
            );
            match uki {
                Some(uki) => println!("uki {} sha256 {}", uki.path, uki.sha256),
                None => println!("uki none: appliances with Secure Boot refuse this release"),
            }
            Ok(())
        }
    }
}

fn keygen(name: &str, out: &Path) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        bail!("key name `{name}`: use letters, digits, `-`, `.` and `_` (e.g. osiris-vendor-1)");
    }
    if out.symlink_metadata().is_ok() {
        bail!(
            "{} exists: a vendor key is never overwritten; choose another file",
            out.display()
        );
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let key = SigningKey::from_bytes(&seed);
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = format!("{name}:{}\n", b64.encode(seed));
    seed.fill(0);
    durable::write(out, text.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", VendorKey::from_signing_key(name, &key));
    Ok(())
}

/// The key file: `name:base64(32-byte seed)`, readable by its owner only.
fn read_key(path: &Path) -> anyhow::Result<(String, SigningKey)> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    if !meta.is_file() {
        bail!("signing key {} is not a regular file", path.display());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "signing key {} is readable by others (mode {:o}): chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    let bad = || {
        anyhow::anyhow!(
            "signing key {} is not `name:base64` (osiris-release keygen writes it)",
            path.display()
        )
    };
    let (name, seed) = text.trim().split_once(':').ok_or_else(bad)?;
    let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(seed)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(bad)?;
    Ok((name.to_owned(), SigningKey::from_bytes(&seed)))
}

/// The UKI's path and hash, once `sbverify` confirmed the Secure Boot key of `cert` signed it.
fn signed_uki(path: &Path, cert: &Path) -> anyhow::Result<Uki> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("reading the UKI {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "UKI {} is not a regular file (a symlink or directory): give the file in the store",
            path.display()
        );
    }
    if meta.nlink() == 0 {
        bail!("UKI {} is gone", path.display());
    }
    let status = std::process::Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running sbverify (install sbsigntool)")?;
    if !status.success() {
        bail!(
            "UKI {} is not signed by the Secure Boot key of {}: sign it with `sbsign --key db.key --cert db.crt`, add the signed file to the store and publish that",
            path.display(),
            cert.display()
        );
    }
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading the UKI {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading the UKI {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Uki {
        path: path.display().to_string(),
        sha256: hex::encode(hasher.finalize()),
    })
}

/// An existing manifest at `out` is replaced only by one of the same vendor with a higher counter
/// (appliances refuse a counter that goes back, so publishing one would stop every update).
fn check_replaces(out: &Path, public: &VendorKey, counter: u64) -> anyhow::Result<()> {
    let Ok(bytes) = std::fs::read(out) else {
        return Ok(());
    };
    let old = SignedManifest::from_json(&bytes)
        .and_then(|signed| signed.verify_release(public))
        .map_err(|err| {
            anyhow::anyhow!(
                "{} exists and is not a manifest signed by {public} ({err}): move it away first",
                out.display()
            )
        })?;
    if counter <= old.0.counter {
        bail!(
            "counter {counter} is not above the published manifest's {} in {}: appliances refuse a counter that goes back; use {}",
            old.0.counter,
            out.display(),
            old.0.counter + 1
        );
    }
    Ok(())
}
