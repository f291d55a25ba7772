//! The runbook catalogue: TOML runbooks and their scripts, parsed into the model and validated.
//!
//! The catalogue shipped with osiris is embedded at build time from `runbooks/`; `load` also
//! accepts any other set of files (read by the caller), which is how `osiris catalog check DIR`
//! validates a catalogue under development.

mod format;
mod frameworks;

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use model::{Platform, Runbook};

pub use frameworks::{
    ControlDef, FrameworkCatalog, Frameworks, HipaaKind, embedded_frameworks, load_frameworks,
};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// A validated set of runbooks.
#[derive(Debug, Clone)]
pub struct Catalog {
    runbooks: Vec<Runbook>,
    version: String,
    powershell_prelude: String,
}

/// One catalogue file: its path relative to the catalogue root, and its text.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

/// One problem in a catalogue file, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in a catalogue; the catalogue is unusable if there is any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct CatalogErrors(pub Vec<CatalogError>);

/// The catalogue compiled into this binary.
///
/// Fails only if the shipped catalogue is broken, which the test suite rules out.
pub fn embedded() -> Result<Catalog, CatalogErrors> {
    let files: Vec<SourceFile<'_>> = FILES
        .iter()
        .map(|(path, text)| SourceFile { path, text })
        .collect();
    load(&files)
}

/// Where the PowerShell prelude lives, relative to the catalogue root.
pub const POWERSHELL_PRELUDE: &str = "windows/lib/prelude.ps1";

/// Parses and validates a catalogue from its files.
///
/// Files ending in `.toml` are runbooks; every other file is a script a runbook may reference.
/// Every control a runbook maps to must exist in the embedded framework catalogues.
pub fn load(files: &[SourceFile<'_>]) -> Result<Catalog, CatalogErrors> {
    let frameworks = embedded_frameworks()?;
    load_with(files, &frameworks)
}

/// `load` against the given framework catalogues.
pub fn load_with(
    files: &[SourceFile<'_>],
    frameworks: &Frameworks,
) -> Result<Catalog, CatalogErrors> {
    let scripts: BTreeMap<&str, &str> = files.iter().map(|f| (f.path, f.text)).collect();
    let mut errors = Vec::new();
    let mut runbooks: Vec<(Runbook, String, usize)> = Vec::new();
    for file in files.iter().filter(|f| f.path.ends_with(".toml")) {
        match format::parse_runbook(file, &scripts, frameworks) {
            Ok((runbook, id_line)) => {
                if let Some((_, first_path, first_line)) =
                    runbooks.iter().find(|(rb, ..)| rb.id == runbook.id)
                {
                    errors.push(CatalogError {
                        path: file.path.to_owned(),
                        line: id_line,
                        column: 1,
                        message: format!(
                            "duplicate runbook id `{}` (first defined at {first_path}:{first_line}); give this runbook a new id",
                            runbook.id
                        ),
                    });
                } else {
                    runbooks.push((runbook, file.path.to_owned(), id_line));
                }
            }
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    let powershell_prelude = scripts
        .get(POWERSHELL_PRELUDE)
        .copied()
        .unwrap_or("")
        .to_owned();
    if let Some((line, column, message)) = format::powershell_problem(&powershell_prelude) {
        errors.push(CatalogError {
            path: POWERSHELL_PRELUDE.to_owned(),
            line,
            column,
            message,
        });
    }
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    let mut runbooks: Vec<Runbook> = runbooks.into_iter().map(|(rb, ..)| rb).collect();
    runbooks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Catalog {
        runbooks,
        version: version_of(files),
        powershell_prelude,
    })
}

impl Catalog {
    pub fn runbooks(&self) -> &[Runbook] {
        &self.runbooks
    }

    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|rb| rb.id == id)
    }

    /// The runbooks that apply to a platform, in ID order.
    pub fn for_platform(&self, platform: Platform) -> impl Iterator<Item = &Runbook> {
        self.runbooks
            .iter()
            .filter(move |rb| rb.applies_to(platform))
    }

    /// The PowerShell helpers (`windows/lib/prelude.ps1`, empty if absent).
    ///
    /// Unlike the `sh` prelude this is not prepended to each body: the scan engine puts it once
    /// at the top of a PowerShell batch, before the bodies' here-strings.
    pub fn powershell_prelude(&self) -> &str {
        &self.powershell_prelude
    }

    /// `<crate version>+<first 12 hex of SHA-256 over all files>`: changes whenever any file does.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

fn render(errors: &[CatalogError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn version_of(files: &[SourceFile<'_>]) -> String {
    let mut sorted: Vec<&SourceFile<'_>> = files.iter().collect();
    sorted.sort_by_key(|f| f.path);
    let mut hasher = Sha256::new();
    for file in sorted {
        hasher.update((file.path.len() as u64).to_be_bytes());
        hasher.update(file.path.as_bytes());
        hasher.update((file.text.len() as u64).to_be_bytes());
        hasher.update(file.text.as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    format!("{}+{}", env!("CARGO_PKG_VERSION"), &digest[..12])
}
