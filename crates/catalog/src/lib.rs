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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

    /// The runbooks for `platforms` only, with this catalogue's version (a subset of it, not
    /// another catalogue): what a binary for one platform needs to carry.
    pub fn subset(&self, platforms: &[Platform]) -> Catalog {
        Catalog {
            runbooks: self
                .runbooks
                .iter()
                .filter(|rb| platforms.iter().any(|p| rb.applies_to(*p)))
                .cloned()
                .collect(),
            version: self.version.clone(),
            powershell_prelude: if platforms.iter().any(|p| p.is_windows()) {
                self.powershell_prelude.clone()
            } else {
                String::new()
            },
        }
    }

    /// The validated catalogue as JSON, for a build script to embed (see [`Catalog::from_json`]).
    /// Each `sh` script carries its directory's prelude; the JSON holds each prelude once.
    pub fn to_json(&self) -> String {
        let mut packed = Packed {
            preludes: Vec::new(),
            catalog: self.clone(),
        };
        for script in packed.catalog.runbooks.iter_mut().flat_map(scripts_mut) {
            let marker = format!("\n# --- {}\n", script.source);
            let Some(at) = script.body.find(&marker) else {
                continue;
            };
            let prelude = &script.body[..at];
            let idx = match packed.preludes.iter().position(|p| p == prelude) {
                Some(idx) => idx,
                None => {
                    packed.preludes.push(prelude.to_owned());
                    packed.preludes.len() - 1
                }
            };
            script.body = format!("{PACKED}{idx}{PACKED}{}", &script.body[at..]);
        }
        serde_json::to_string(&packed).unwrap_or_default()
    }

    /// A catalogue that [`load`] validated and [`Catalog::to_json`] wrote at build time (the
    /// endpoint agent's): read without the TOML parser and the checks, which the agent does not
    /// carry. Not for catalogue files from elsewhere: those go through [`load`].
    pub fn from_json(text: &str) -> Result<Catalog, String> {
        let damaged = |why: String| format!("the embedded catalogue is damaged: {why}");
        let mut packed: Packed =
            serde_json::from_str(text).map_err(|err| damaged(err.to_string()))?;
        for script in packed.catalog.runbooks.iter_mut().flat_map(scripts_mut) {
            let Some(rest) = script.body.strip_prefix(PACKED) else {
                continue;
            };
            let (idx, rest) = rest
                .split_once(PACKED)
                .ok_or_else(|| damaged(format!("{}: bad prelude reference", script.source)))?;
            let prelude = idx
                .parse::<usize>()
                .ok()
                .and_then(|idx| packed.preludes.get(idx))
                .ok_or_else(|| damaged(format!("{}: unknown prelude", script.source)))?;
            script.body = format!("{prelude}{rest}");
        }
        Ok(packed.catalog)
    }
}

/// Marks a packed script body's prelude reference (`\0<index>\0`); no script contains NUL.
const PACKED: char = '\0';

/// [`Catalog::to_json`]'s form: the preludes once, the bodies referring to them.
#[derive(serde::Serialize, serde::Deserialize)]
struct Packed {
    preludes: Vec<String>,
    catalog: Catalog,
}

fn scripts_mut(runbook: &mut Runbook) -> impl Iterator<Item = &mut model::Script> {
    std::iter::once(&mut runbook.detect).chain(
        [
            runbook.remediate.as_mut(),
            runbook.verify.as_mut(),
            runbook.rollback.as_mut(),
        ]
        .into_iter()
        .flatten(),
    )
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
