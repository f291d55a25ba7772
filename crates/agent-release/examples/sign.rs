//! The vendor's signing tool for agent releases (dev and release process; `scripts/agent-release-sign`).
//!
//! ```text
//! sign keygen NAME OUT.key                      # writes OUT.key (0600) and prints the public key
//! sign root --version N --expires-days D --root-key PUB... --root-threshold T
//!           --release-key PUB... --release-threshold T --sign KEYFILE... OUT.json
//! sign add-signature DOC.json KEYFILE           # one more holder signs a root (or manifest)
//! sign manifest --platform P --version V --binary FILE --sign KEYFILE... OUT.json
//! sign verify ROOT.json [--newer ROOT.json...] MANIFEST.json --running V --platform P
//! ```

#![allow(
    clippy::print_stdout,
    reason = "a program that prints its results, like a main.rs"
)]
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agent_release::vendor::{self, ManifestSpec, RootSpec};
use agent_release::{Platform, PublicKey, SecretKey, TrustedRoot, Version, verify_offer};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Sign and check agent release roots and manifests.
#[derive(Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a key: the secret into OUT (0600), the public key (`name:base64`) to stdout.
    Keygen { name: String, out: PathBuf },
    /// Sign a root.
    Root {
        #[arg(long)]
        version: u64,
        #[arg(long)]
        expires_days: u64,
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<PublicKey>,
        #[arg(long)]
        root_threshold: u32,
        #[arg(long = "release-key", required = true)]
        release_keys: Vec<PublicKey>,
        #[arg(long)]
        release_threshold: u32,
        /// Secret key files to sign with (for a rotation: the old root keys and the new ones).
        #[arg(long = "sign", required = true)]
        sign: Vec<PathBuf>,
        out: PathBuf,
    },
    /// Add a signature to a signed root or manifest, in place.
    AddSignature { document: PathBuf, key: PathBuf },
    /// Sign a release manifest for a binary.
    Manifest {
        #[arg(long)]
        platform: Platform,
        #[arg(long)]
        version: Version,
        #[arg(long)]
        binary: PathBuf,
        #[arg(long = "sign", required = true)]
        sign: Vec<PathBuf>,
        out: PathBuf,
    },
    /// Verify a manifest as an agent would.
    Verify {
        root: PathBuf,
        #[arg(long = "newer")]
        newer: Vec<PathBuf>,
        manifest: PathBuf,
        #[arg(long)]
        running: Version,
        #[arg(long)]
        platform: Platform,
    },
}

fn main() -> anyhow::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    match Args::parse().command {
        Command::Keygen { name, out } => {
            let key = SecretKey::generate(&name)?;
            write(&out, format!("{}\n", key.encode()).as_bytes(), 0o600)?;
            println!("{}", key.public());
        }
        Command::Root {
            version,
            expires_days,
            root_keys,
            root_threshold,
            release_keys,
            release_threshold,
            sign,
            out,
        } => {
            let spec = RootSpec {
                version,
                expires_unix: now + expires_days * 86_400,
                root_keys,
                root_threshold,
                release_keys,
                release_threshold,
            };
            let keys = read_keys(&sign)?;
            let bytes = vendor::sign_root(&spec, &keys.iter().collect::<Vec<_>>())?;
            write(&out, &bytes, 0o644)?;
        }
        Command::AddSignature { document, key } => {
            let bytes = read(&document)?;
            let key = read_keys(&[key])?.remove(0);
            write(&document, &vendor::add_signature(&bytes, &key)?, 0o644)?;
        }
        Command::Manifest {
            platform,
            version,
            binary,
            sign,
            out,
        } => {
            let bytes = read(&binary)?;
            let file_name = binary
                .file_name()
                .and_then(|name| name.to_str())
                .context("the binary's file name is not UTF-8")?;
            let spec = ManifestSpec::for_binary(platform, version, file_name, &bytes);
            let keys = read_keys(&sign)?;
            let signed = vendor::sign_manifest(&spec, &keys.iter().collect::<Vec<_>>())?;
            write(&out, &signed, 0o644)?;
        }
        Command::Verify {
            root,
            newer,
            manifest,
            running,
            platform,
        } => {
            let root = TrustedRoot::pin(&read(&root)?)?;
            let newer = newer
                .iter()
                .map(|path| read(path))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let release = verify_offer(&root, &newer, &read(&manifest)?, running, platform, now)?;
            println!("{release:?}");
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<SecretKey>> {
    paths
        .iter()
        .map(|path| {
            let text = String::from_utf8(read(path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            SecretKey::parse(&text).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
