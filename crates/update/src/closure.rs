//! Fetching a system closure from a binary cache and proving it is the one the vendor signed:
//! every narinfo signature against the pinned keys, FileHash/FileSize of each download,
//! NarHash/NarSize after decompression, and the whole `References` graph.
//! Then importing it into a Nix store.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix_derivation::{HashAlgorithm, NixHash, NixHasher, StoreDir, StorePath};
use nix_narinfo::{Compression, NarInfo, TrustedPublicKey};

/// Largest closure accepted, in store paths (a NixOS system has a few thousand).
pub const MAX_CLOSURE_PATHS: usize = 50_000;

/// Largest narinfo accepted, in bytes.
pub const MAX_NARINFO_BYTES: u64 = 1024 * 1024;

/// Where narinfos and NARs come from.
#[derive(Debug)]
pub struct Cache {
    url: String,
    source: Source,
}

/// A closure whose every path verified; its files sit in a local `file://` cache directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClosure {
    /// The top-level store path, absolute.
    pub root: String,
    /// Every path of the closure, absolute, root first, then breadth-first.
    pub paths: Vec<VerifiedPath>,
    /// The local binary cache directory holding the verified narinfos and NAR files.
    pub local_cache: PathBuf,
    /// The keys (`name:base64`) the closure was verified against.
    pub keys: Vec<String>,
}

/// One verified store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPath {
    /// Absolute store path.
    pub store_path: String,
    /// `sha256:<nixbase32>` of the uncompressed NAR.
    pub nar_hash: String,
    /// Size of the uncompressed NAR.
    pub nar_size: u64,
    /// Size of the downloaded (compressed) file.
    pub file_size: u64,
    /// Names of the keys whose signatures verified.
    pub signed_by: Vec<String>,
}

/// Why a closure was refused. Nothing is left in the local cache directory when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClosureError {
    /// The cache URL is neither `file://` nor `https://`.
    #[error("binary cache URL `{0}` is not supported: use https:// (or file:// for local media)")]
    UnsupportedUrl(String),
    /// The HTTPS client could not be built.
    #[error("cannot set up the HTTPS client: {0}")]
    HttpClient(String),
    /// A pinned key does not parse.
    #[error(
        "pinned cache key `{key}` is invalid ({reason}); fix the appliance's update configuration"
    )]
    BadKey {
        /// The key text.
        key: String,
        /// Parser message.
        reason: String,
    },
    /// A store path in the manifest or a narinfo does not parse.
    #[error("`{path}` is not a valid store path: {reason}")]
    BadStorePath {
        /// The offending text.
        path: String,
        /// Parser message.
        reason: String,
    },
    /// A download failed.
    #[error("fetching {url}: {reason}; check the network and the cache URL, then retry")]
    Fetch {
        /// What was fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A narinfo does not parse.
    #[error("narinfo for {path} is malformed: {reason}")]
    NarInfo {
        /// The store path asked for.
        path: String,
        /// Parser message.
        reason: String,
    },
    /// The narinfo describes another path than the one asked for.
    #[error("cache answered for {got} when asked for {wanted}; the cache is broken or hostile")]
    WrongPath {
        /// Asked for.
        wanted: String,
        /// Described by the narinfo.
        got: String,
    },
    /// No signature by a pinned key verifies.
    #[error(
        "narinfo for {path} has no valid signature by a pinned key ({keys}); it was altered or signed by someone else, refusing the update"
    )]
    Unsigned {
        /// The store path.
        path: String,
        /// The pinned key names.
        keys: String,
    },
    /// The narinfo lacks FileHash/FileSize, names an unsupported compression, or an unsafe URL.
    #[error("narinfo for {path} cannot be checked: {reason}")]
    Unverifiable {
        /// The store path.
        path: String,
        /// What is missing or unsupported.
        reason: String,
    },
    /// The downloaded file is shorter than FileSize.
    #[error("download of {path} is truncated: {got} of {expected} bytes; retry the update")]
    Truncated {
        /// The store path.
        path: String,
        /// Bytes received.
        got: u64,
        /// FileSize.
        expected: u64,
    },
    /// Size or hash of the downloaded file or of the NAR differs from the signed narinfo.
    #[error(
        "{what} of {path} does not match the signed narinfo (expected {expected}, got {got}); the download was tampered with or corrupted, refusing the update"
    )]
    Mismatch {
        /// The store path.
        path: String,
        /// `FileSize`, `FileHash`, `NarSize` or `NarHash`.
        what: &'static str,
        /// Signed value.
        expected: String,
        /// Observed value.
        got: String,
    },
    /// Decompression failed.
    #[error("cannot decompress the NAR of {path}: {reason}; the download is corrupt")]
    Decompress {
        /// The store path.
        path: String,
        /// Decoder message.
        reason: String,
    },
    /// The closure has more paths than [`MAX_CLOSURE_PATHS`].
    #[error("closure of {0} has more than {MAX_CLOSURE_PATHS} paths; refusing it")]
    TooLarge(String),
    /// Local disk IO failed.
    #[error("{action} {path} (check free space and permissions)")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
}

/// Importing a verified closure failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// `nix copy` could not be started.
    #[error("cannot run {program} (is Nix installed?)")]
    Spawn {
        /// The program.
        program: String,
        /// The IO error.
        source: io::Error,
    },
    /// `nix copy` exited with an error.
    #[error("`nix copy` from the verified cache failed ({status}): {stderr}")]
    NixCopy {
        /// Exit status.
        status: String,
        /// What Nix said.
        stderr: String,
    },
    /// Unpacking a NAR failed.
    #[error("unpacking {path}: {reason}")]
    Unpack {
        /// The store path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl Cache {
    /// A cache at `url` (`file:///dir` or `https://host/path`; HTTPS with rustls/ring and the
    /// platform's trust roots).
    pub fn open(url: &str, timeout: Duration) -> Result<Cache, ClosureError> {
        let trimmed = url.trim_end_matches('/');
        let source = if let Some(dir) = trimmed.strip_prefix("file://") {
            Source::Dir(PathBuf::from(dir))
        } else if trimmed.starts_with("https://") {
            Source::Https(https_client(timeout)?)
        } else {
            return Err(ClosureError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Cache {
            url: trimmed.to_owned(),
            source,
        })
    }

    /// The cache's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Copies `relative` to `dest`, refusing more than `limit` bytes; returns the bytes written.
    fn download(&self, relative: &str, dest: &Path, limit: u64) -> Result<u64, ClosureError> {
        let url = format!("{}/{relative}", self.url);
        let fetch_error = |reason: String| ClosureError::Fetch {
            url: url.clone(),
            reason,
        };
        let mut out = File::create(dest).map_err(|source| ClosureError::Io {
            action: "creating",
            path: dest.to_path_buf(),
            source,
        })?;
        let mut reader: Box<dyn Read> = match &self.source {
            Source::Dir(dir) => {
                let path = dir.join(relative);
                Box::new(File::open(&path).map_err(|err| fetch_error(err.to_string()))?)
            }
            Source::Https(client) => {
                let response = client
                    .get(&url)
                    .send()
                    .map_err(|err| fetch_error(err.to_string()))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(fetch_error(format!("HTTP {status}")));
                }
                Box::new(response)
            }
        };
        let written = io::copy(&mut reader.by_ref().take(limit + 1), &mut out)
            .map_err(|err| fetch_error(err.to_string()))?;
        if written > limit {
            return Err(fetch_error(format!("more than {limit} bytes")));
        }
        out.sync_all().map_err(|source| ClosureError::Io {
            action: "writing",
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(written)
    }
}

/// Fetches a signed manifest from `url` (`https://…` or `file://…`), at most 1 MiB.
pub fn fetch_manifest(url: &str, timeout: Duration) -> Result<Vec<u8>, ClosureError> {
    const LIMIT: u64 = 1024 * 1024;
    let fetch_error = |reason: String| ClosureError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let reader: Box<dyn Read> = if let Some(path) = url.strip_prefix("file://") {
        Box::new(File::open(path).map_err(|err| fetch_error(err.to_string()))?)
    } else if url.starts_with("https://") {
        let response = https_client(timeout)?
            .get(url)
            .send()
            .map_err(|err| fetch_error(err.to_string()))?;
        if !response.status().is_success() {
            return Err(fetch_error(format!("HTTP {}", response.status())));
        }
        Box::new(response)
    } else {
        return Err(ClosureError::UnsupportedUrl(url.to_owned()));
    };
    let mut bytes = Vec::new();
    reader
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| fetch_error(err.to_string()))?;
    if bytes.len() as u64 > LIMIT {
        return Err(fetch_error(format!(
            "manifest is larger than {LIMIT} bytes"
        )));
    }
    Ok(bytes)
}

/// Fetches the closure of `root` (an absolute store path) from `cache`, verifies every path
/// against `keys` (`name:base64`, the pinned narinfo keys), and leaves the verified files in
/// `local_cache` (created; must not exist). On any error `local_cache` is removed again.
pub fn fetch_and_verify(
    cache: &Cache,
    root: &str,
    keys: &[String],
    local_cache: &Path,
) -> Result<VerifiedClosure, ClosureError> {
    let res = fetch_and_verify_inner(cache, root, keys, local_cache);
    if res.is_err() {
        let _ = fs::remove_dir_all(local_cache);
    }
    res
}

impl VerifiedClosure {
    /// Imports the closure into a Nix store with `nix copy`, which re-checks every signature
    /// against the same pinned keys. `to` is a store URI (`None`: the system store).
    ///
    /// The argv is fixed; see [`VerifiedClosure::nix_copy_args`].
    pub fn import_with_nix(&self, nix: &Path, to: Option<&str>) -> Result<(), ImportError> {
        let output = Command::new(nix)
            .args(self.nix_copy_args(to))
            .output()
            .map_err(|source| ImportError::Spawn {
                program: nix.display().to_string(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ImportError::NixCopy {
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// The arguments given to `nix` by [`VerifiedClosure::import_with_nix`].
    pub fn nix_copy_args(&self, to: Option<&str>) -> Vec<OsString> {
        let mut from = OsString::from("file://");
        from.push(&self.local_cache);
        let mut args: Vec<OsString> = vec![
            "--extra-experimental-features".into(),
            "nix-command".into(),
            "copy".into(),
            "--from".into(),
            from,
        ];
        if let Some(to) = to {
            args.extend(["--to".into(), to.into()]);
        }
        args.extend([
            "--option".into(),
            "substituters".into(),
            "".into(),
            "--option".into(),
            "require-sigs".into(),
            "true".into(),
            "--option".into(),
            "trusted-public-keys".into(),
            self.keys.join(" ").into(),
            self.root.clone().into(),
        ]);
        args
    }

    /// Unpacks every NAR into `store_root/<basename>` without Nix (inspection and tests).
    pub fn unpack_into(&self, store_root: &Path) -> Result<(), ImportError> {
        let store_dir = StoreDir::default();
        fs::create_dir_all(store_root).map_err(|err| ImportError::Unpack {
            path: store_root.display().to_string(),
            reason: err.to_string(),
        })?;
        for path in &self.paths {
            let unpack_error = |reason: String| ImportError::Unpack {
                path: path.store_path.clone(),
                reason,
            };
            let store_path = store_dir
                .parse_path(path.store_path.as_bytes())
                .map_err(|err| unpack_error(err.to_string()))?;
            let basename = store_path.to_basename();
            if fs::symlink_metadata(store_root.join(&basename)).is_ok() {
                // Store paths are immutable: one already there is the same path.
                continue;
            }
            let info_path = self
                .local_cache
                .join(format!("{}.narinfo", hash_part(&basename)));
            let text = fs::read(&info_path).map_err(|err| unpack_error(err.to_string()))?;
            let info = NarInfo::parse_in(&store_dir, &text)
                .map_err(|err| unpack_error(err.to_string()))?;
            let nar_file = self.local_cache.join(info.url());
            let nar_path = self.local_cache.join(format!("{basename}.nar"));
            let mut output =
                File::create(&nar_path).map_err(|err| unpack_error(err.to_string()))?;
            decompress(info.compression(), &nar_file, &mut output).map_err(&unpack_error)?;
            drop(output);
            let reader =
                BufReader::new(File::open(&nar_path).map_err(|err| unpack_error(err.to_string()))?);
            let decoder =
                nix_nar::Decoder::new(reader).map_err(|err| unpack_error(err.to_string()))?;
            decoder
                .unpack(store_root.join(&basename))
                .map_err(|err| unpack_error(err.to_string()))?;
            let _ = fs::remove_file(&nar_path);
        }
        Ok(())
    }
}

enum Source {
    Dir(PathBuf),
    Https(reqwest::blocking::Client),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(dir) => write!(f, "Dir({})", dir.display()),
            Source::Https(_) => f.write_str("Https"),
        }
    }
}

fn fetch_and_verify_inner(
    cache: &Cache,
    root: &str,
    keys: &[String],
    local_cache: &Path,
) -> Result<VerifiedClosure, ClosureError> {
    let store_dir = StoreDir::default();
    let trusted = keys
        .iter()
        .map(|key| {
            TrustedPublicKey::parse(key).map_err(|err| ClosureError::BadKey {
                key: key.clone(),
                reason: err.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_names = trusted
        .iter()
        .map(|key| key.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let root_path = parse_store_path(&store_dir, root)?;
    let io_error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ClosureError::Io {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(local_cache.join("nar")).map_err(io_error("creating", local_cache))?;
    let info_file = local_cache.join("nix-cache-info");
    fs::write(&info_file, format!("StoreDir: {store_dir}\n"))
        .map_err(io_error("writing", &info_file))?;

    let mut seen = BTreeSet::from([root_path.clone()]);
    let mut queue = VecDeque::from([root_path]);
    let mut paths = Vec::new();
    while let Some(store_path) = queue.pop_front() {
        let absolute = store_path.to_absolute_path_in(&store_dir);
        let basename = store_path.to_basename();
        let hash = hash_part(&basename).to_owned();
        let info_name = format!("{hash}.narinfo");
        let info_dest = local_cache.join(&info_name);
        cache.download(&info_name, &info_dest, MAX_NARINFO_BYTES)?;
        let text = fs::read(&info_dest).map_err(io_error("reading", &info_dest))?;
        let info = NarInfo::parse_in(&store_dir, &text).map_err(|err| ClosureError::NarInfo {
            path: absolute.clone(),
            reason: err.to_string(),
        })?;
        if info.store_path() != &store_path {
            return Err(ClosureError::WrongPath {
                wanted: absolute,
                got: info.store_path().to_absolute_path_in(&store_dir),
            });
        }
        let signed_by: Vec<String> = trusted
            .iter()
            .filter(|key| info.has_valid_signature(&store_dir, std::slice::from_ref(key)))
            .map(|key| key.name.clone())
            .collect();
        if signed_by.is_empty() {
            return Err(ClosureError::Unsigned {
                path: absolute,
                keys: key_names,
            });
        }
        let verified = verify_nar(cache, &info, &absolute, local_cache, signed_by)?;
        paths.push(verified);
        for reference in info.references() {
            if seen.insert(reference.clone()) {
                if seen.len() > MAX_CLOSURE_PATHS {
                    return Err(ClosureError::TooLarge(root.to_owned()));
                }
                queue.push_back(reference.clone());
            }
        }
    }
    Ok(VerifiedClosure {
        root: root.to_owned(),
        paths,
        local_cache: local_cache.to_path_buf(),
        keys: keys.to_vec(),
    })
}

fn verify_nar(
    cache: &Cache,
    info: &NarInfo,
    absolute: &str,
    local_cache: &Path,
    signed_by: Vec<String>,
) -> Result<VerifiedPath, ClosureError> {
    let unverifiable = |reason: String| ClosureError::Unverifiable {
        path: absolute.to_owned(),
        reason,
    };
    let mismatch = |what, expected: String, got: String| ClosureError::Mismatch {
        path: absolute.to_owned(),
        what,
        expected,
        got,
    };
    let (Some(file_hash), Some(file_size)) = (info.file_hash(), info.file_size()) else {
        return Err(unverifiable("FileHash or FileSize is missing".to_owned()));
    };
    match info.compression() {
        Compression::None | Compression::Xz => {}
        other => {
            return Err(unverifiable(format!(
                "compression `{other}` is not supported (publish the cache with compression=xz or none)"
            )));
        }
    }
    let url = info.url();
    let url_ok = url.starts_with("nar/")
        && url.len() > 4
        && url[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !url_ok {
        return Err(unverifiable(format!(
            "NAR URL `{url}` is not a plain nar/<file> name"
        )));
    }
    let nar_dest = local_cache.join(url);
    let got = cache.download(url, &nar_dest, file_size)?;
    if got < file_size {
        return Err(ClosureError::Truncated {
            path: absolute.to_owned(),
            got,
            expected: file_size,
        });
    }
    let got_file_hash = hash_file(&nar_dest)?;
    if &got_file_hash != file_hash {
        return Err(mismatch(
            "FileHash",
            file_hash.to_nix_nixbase32_string(),
            got_file_hash.to_nix_nixbase32_string(),
        ));
    }
    let mut sink = HashingSink {
        hasher: NixHasher::new(HashAlgorithm::Sha256),
        written: 0,
        limit: info.nar_size(),
    };
    decompress(info.compression(), &nar_dest, &mut sink).map_err(|reason| {
        if sink.written > info.nar_size() {
            mismatch(
                "NarSize",
                info.nar_size().to_string(),
                format!("more than {}", info.nar_size()),
            )
        } else {
            ClosureError::Decompress {
                path: absolute.to_owned(),
                reason,
            }
        }
    })?;
    if sink.written != info.nar_size() {
        return Err(mismatch(
            "NarSize",
            info.nar_size().to_string(),
            sink.written.to_string(),
        ));
    }
    let nar_hash = sink.hasher.finalize();
    if &nar_hash != info.nar_hash() {
        return Err(mismatch(
            "NarHash",
            info.nar_hash().to_nix_nixbase32_string(),
            nar_hash.to_nix_nixbase32_string(),
        ));
    }
    Ok(VerifiedPath {
        store_path: absolute.to_owned(),
        nar_hash: format!("sha256:{}", nar_hash.to_nix_nixbase32_string()),
        nar_size: info.nar_size(),
        file_size,
        signed_by,
    })
}

fn https_client(timeout: Duration) -> Result<reqwest::blocking::Client, ClosureError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|err| ClosureError::HttpClient(err.to_string()))?
        .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .https_only(true)
        .user_agent(concat!("osiris-update/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ClosureError::HttpClient(err.to_string()))
}

fn parse_store_path(store_dir: &StoreDir, path: &str) -> Result<StorePath, ClosureError> {
    store_dir
        .parse_path(path.as_bytes())
        .map_err(|err| ClosureError::BadStorePath {
            path: path.to_owned(),
            reason: err.to_string(),
        })
}

fn hash_part(basename: &str) -> &str {
    basename.split_once('-').map_or(basename, |(hash, _)| hash)
}

fn hash_file(path: &Path) -> Result<NixHash, ClosureError> {
    let io_error = |source| ClosureError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = NixHasher::new(HashAlgorithm::Sha256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize())
}

/// Decompresses `file` (as named by `compression`) into `out`.
fn decompress(compression: &Compression, file: &Path, out: &mut dyn Write) -> Result<(), String> {
    let mut input = BufReader::new(File::open(file).map_err(|err| err.to_string())?);
    match compression {
        Compression::None => io::copy(&mut input, out)
            .map(|_| ())
            .map_err(|err| err.to_string()),
        Compression::Xz => {
            let mut out = out;
            lzma_rs::xz_decompress(&mut input, &mut out).map_err(|err| format!("{err:?}"))
        }
        other => Err(format!("compression `{other}` is not supported")),
    }
}

/// Hashes and counts what is written; refuses to go past `limit` bytes (a lying NarSize).
struct HashingSink {
    hasher: NixHasher,
    written: u64,
    limit: u64,
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > self.limit {
            return Err(io::Error::other("NAR is larger than NarSize"));
        }
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_urls_other_than_https_and_file_are_refused() {
        for url in ["http://cache.example/", "ftp://x", "/plain/path"] {
            let err = Cache::open(url, Duration::from_secs(1)).unwrap_err();
            assert!(
                matches!(err, ClosureError::UnsupportedUrl(_)),
                "{url}: {err}"
            );
        }
        // The HTTPS client (rustls with ring and the platform roots) builds without a network.
        let cache = Cache::open("https://127.0.0.1:9/cache/", Duration::from_secs(1)).unwrap();
        assert_eq!(cache.url(), "https://127.0.0.1:9/cache");
    }

    #[test]
    fn manifest_fetch_reads_files_and_caps_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("manifest.json");
        fs::write(&small, b"{}").unwrap();
        let url = format!("file://{}", small.display());
        assert_eq!(fetch_manifest(&url, Duration::from_secs(1)).unwrap(), b"{}");
        let big = dir.path().join("big.json");
        fs::write(&big, vec![b' '; 1024 * 1024 + 1]).unwrap();
        let err = fetch_manifest(&format!("file://{}", big.display()), Duration::from_secs(1))
            .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let err =
            fetch_manifest("http://example.invalid/m.json", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ClosureError::UnsupportedUrl(_)), "{err}");
    }
}
