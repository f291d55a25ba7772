//! Loading what every command needs: configuration, catalogue, data directory.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::BadConfig;

/// Reads and validates the configuration file, or the embedded default when none is given.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<config::Config> {
    let Some(path) = path else {
        return Ok(config::Config::embedded_default());
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        BadConfig(format!(
            "cannot read configuration {}: {err}",
            path.display()
        ))
    })?;
    config::parse(&path.display().to_string(), &text)
        .map_err(|err| BadConfig(err.to_string()).into())
}

/// The built-in catalogue; a broken one is a configuration error.
pub fn load_catalog() -> anyhow::Result<catalog::Catalog> {
    catalog::embedded()
        .map_err(|errors| BadConfig(format!("built-in catalogue is invalid:\n{errors}")).into())
}

/// A catalogue from a directory on disk (every file under it, paths relative to it).
pub fn load_catalog_dir(dir: &Path) -> anyhow::Result<catalog::Catalog> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)
        .with_context(|| format!("reading catalogue directory {}", dir.display()))?;
    if !files.iter().any(|(path, _)| path.ends_with(".toml")) {
        return Err(BadConfig(format!(
            "{}: no runbook files (*.toml) found",
            dir.display()
        ))
        .into());
    }
    let sources: Vec<catalog::SourceFile<'_>> = files
        .iter()
        .map(|(path, text)| catalog::SourceFile { path, text })
        .collect();
    catalog::load(&sources).map_err(|errors| {
        let located: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("{}/{e}", dir.display()))
            .collect();
        BadConfig(located.join("\n")).into()
    })
}

/// Checks that every `[checks.ID]` override names a known runbook and valid parameter values.
pub fn check_overrides(config: &config::Config, catalog: &catalog::Catalog) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (id, params) in config.param_overrides() {
        match catalog.get(&id) {
            None => problems.push(format!(
                "checks.{id}: no runbook with this id (see `osiris catalog list`)"
            )),
            Some(runbook) => {
                if let Err(err) = model::resolve_params(&runbook.params, &params) {
                    problems.push(format!("checks.{id}: {err}"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BadConfig(problems.join("\n")).into())
    }
}

/// `--data-dir`, else the configuration's `data_dir`, else `./osiris-data`.
pub fn data_dir(flag: Option<PathBuf>, config: &config::Config) -> PathBuf {
    flag.or_else(|| config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("osiris-data"))
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let text = std::fs::read_to_string(&path).map_err(|err| {
                std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
            })?;
            files.push((rel.to_string_lossy().into_owned(), text));
        }
    }
    Ok(())
}

/// The async runtime for commands that touch the store or the network; built after config loads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Opens (or creates) the evidence store in `data_dir`.
pub async fn open_store(data_dir: &Path, site: &str) -> anyhow::Result<store::Store> {
    let cfg = store::StoreConfig {
        data_dir: data_dir.to_path_buf(),
        site: site.to_owned(),
    };
    store::Store::open(&cfg)
        .await
        .with_context(|| format!("opening the evidence store in {}", data_dir.display()))
}

/// Refuses a credential file that others can read: it must be mode 0600 (or stricter).
pub fn check_secret_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|err| BadConfig(format!("credential file {}: {err}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(BadConfig(format!(
            "credential file {} has mode {mode:o}: others can read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        ))
        .into());
    }
    Ok(())
}
