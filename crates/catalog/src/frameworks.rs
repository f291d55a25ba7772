//! The control catalogues of the compliance frameworks (`frameworks/<key>.toml`): every control
//! of each framework, parsed and validated like the runbooks.
//!
//! A control is covered by the runbooks that map to it (fully, or partially when the check is
//! weaker than the control's text), needs a person's attestation when no runbook maps to it, or
//! is not applicable with a stated reason.

use std::collections::BTreeSet;
use std::str::FromStr as _;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use model::Framework;

use crate::{CatalogError, CatalogErrors, SourceFile};

/// Every framework's control catalogue, in `Framework::ALL` order.
#[derive(Debug, Clone)]
pub struct Frameworks {
    catalogs: Vec<FrameworkCatalog>,
    version: String,
}

/// One framework's controls, in the order the framework lists them.
#[derive(Debug, Clone)]
pub struct FrameworkCatalog {
    pub framework: Framework,
    /// Full name, e.g. `HIPAA Security Rule`.
    pub name: String,
    /// Which edition of the framework the catalogue follows.
    pub version: String,
    /// Where the framework's own text is published.
    pub source: String,
    pub controls: Vec<ControlDef>,
}

/// One control of a framework as the framework states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDef {
    pub id: String,
    /// The control's text, condensed to one sentence.
    pub title: String,
    /// The section, function or requirement it belongs to.
    pub group: String,
    /// HIPAA only: standard, or a required or addressable implementation specification.
    pub kind: Option<HipaaKind>,
    /// Why the control does not apply to a practice running the appliance.
    pub not_applicable: Option<String>,
}

/// What the HIPAA Security Rule makes of a control (45 CFR 164.306(d)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HipaaKind {
    Standard,
    Required,
    Addressable,
}

/// The framework catalogues compiled into this binary.
///
/// Fails only if a shipped catalogue is broken, which the test suite rules out.
pub fn embedded_frameworks() -> Result<Frameworks, CatalogErrors> {
    let files: Vec<SourceFile<'_>> = crate::FRAMEWORK_FILES
        .iter()
        .map(|(path, text)| SourceFile { path, text })
        .collect();
    load_frameworks(&files)
}

/// Parses and validates framework catalogues: one `<key>.toml` per framework, every framework
/// present, control ids unique, titles and reasons non-empty.
pub fn load_frameworks(files: &[SourceFile<'_>]) -> Result<Frameworks, CatalogErrors> {
    let mut errors = Vec::new();
    let mut catalogs = Vec::new();
    for file in files.iter().filter(|f| f.path.ends_with(".toml")) {
        match parse(file) {
            Ok(catalog) => catalogs.push(catalog),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    for framework in Framework::ALL {
        if errors.is_empty() && !catalogs.iter().any(|c| c.framework == framework) {
            errors.push(CatalogError {
                path: format!("{}.toml", framework.key()),
                line: 1,
                column: 1,
                message: format!(
                    "no control catalogue for {}: add {}.toml",
                    framework.display_name(),
                    framework.key()
                ),
            });
        }
    }
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    catalogs.sort_by_key(|c| c.framework);
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
    Ok(Frameworks {
        catalogs,
        version: format!("{}+{}", env!("CARGO_PKG_VERSION"), &digest[..12]),
    })
}

impl Frameworks {
    pub fn catalogs(&self) -> &[FrameworkCatalog] {
        &self.catalogs
    }

    /// The catalogue of one framework (every framework has one: `load_frameworks` checks it).
    pub fn get(&self, framework: Framework) -> Option<&FrameworkCatalog> {
        self.catalogs.iter().find(|c| c.framework == framework)
    }

    /// `<crate version>+<first 12 hex of SHA-256 over all framework files>`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl FrameworkCatalog {
    pub fn control(&self, id: &str) -> Option<&ControlDef> {
        self.controls.iter().find(|c| c.id == id)
    }
}

impl HipaaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HipaaKind::Standard => "standard",
            HipaaKind::Required => "required",
            HipaaKind::Addressable => "addressable",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkFile {
    framework: Spanned<String>,
    name: String,
    version: String,
    source: String,
    control: Vec<Spanned<ControlFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlFile {
    id: Spanned<String>,
    title: String,
    group: String,
    kind: Option<Spanned<String>>,
    not_applicable: Option<String>,
}

fn parse(file: &SourceFile<'_>) -> Result<FrameworkCatalog, Vec<CatalogError>> {
    let mut errors = Vec::new();
    let mut error = |span: std::ops::Range<usize>, message: String| {
        let before = &file.text[..span.start.min(file.text.len())];
        errors.push(CatalogError {
            path: file.path.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message,
        });
    };
    let raw: FrameworkFile = match toml::from_str(file.text) {
        Ok(raw) => raw,
        Err(err) => {
            error(err.span().unwrap_or(0..0), err.message().to_owned());
            return Err(errors);
        }
    };
    let framework = match Framework::from_str(raw.framework.get_ref()) {
        Ok(framework) => framework,
        Err(err) => {
            error(raw.framework.span(), err.to_string());
            return Err(errors);
        }
    };
    let stem = file
        .path
        .rsplit('/')
        .next()
        .unwrap_or(file.path)
        .trim_end_matches(".toml");
    if stem != framework.key() {
        error(
            raw.framework.span(),
            format!(
                "framework `{}` does not match its file name `{stem}.toml`; name the file {}.toml",
                framework.key(),
                framework.key()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    let mut controls = Vec::new();
    for control in &raw.control {
        let span = control.span();
        let control = control.get_ref();
        let id = control.id.get_ref().trim();
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            error(
                control.id.span(),
                format!("control id `{id}` is empty or contains spaces"),
            );
        }
        if !seen.insert(id.to_owned()) {
            error(
                control.id.span(),
                format!("duplicate control id `{id}`; each control is listed once"),
            );
        }
        if control.title.trim().is_empty() || control.group.trim().is_empty() {
            error(
                span.clone(),
                format!("control `{id}` needs a non-empty `title` and `group`"),
            );
        }
        if control
            .not_applicable
            .as_deref()
            .is_some_and(|reason| reason.trim().is_empty())
        {
            error(
                span.clone(),
                format!("control `{id}`: `not_applicable` needs the reason, not an empty string"),
            );
        }
        let kind = match (&control.kind, framework) {
            (None, Framework::Hipaa) => {
                error(
                    span.clone(),
                    format!(
                        "HIPAA control `{id}` needs `kind` (standard, required or addressable)"
                    ),
                );
                None
            }
            (None, _) => None,
            (Some(kind), Framework::Hipaa) => match kind.get_ref().as_str() {
                "standard" => Some(HipaaKind::Standard),
                "required" => Some(HipaaKind::Required),
                "addressable" => Some(HipaaKind::Addressable),
                other => {
                    error(
                        kind.span(),
                        format!("unknown kind `{other}` (known: standard, required, addressable)"),
                    );
                    None
                }
            },
            (Some(kind), _) => {
                error(
                    kind.span(),
                    "`kind` is for HIPAA controls only (standard, required, addressable)"
                        .to_owned(),
                );
                None
            }
        };
        controls.push(ControlDef {
            id: id.to_owned(),
            title: control.title.trim().to_owned(),
            group: control.group.trim().to_owned(),
            kind,
            not_applicable: control.not_applicable.as_ref().map(|r| r.trim().to_owned()),
        });
    }
    if controls.is_empty() {
        error(
            raw.framework.span(),
            "no controls: list each control as a `[[control]]` entry".to_owned(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(FrameworkCatalog {
        framework,
        name: raw.name,
        version: raw.version,
        source: raw.source,
        controls,
    })
}
