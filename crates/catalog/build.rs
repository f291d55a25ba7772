//! Embeds every file under `runbooks/` and `frameworks/` into the crate as `(relative path, contents)`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let mut out = String::new();
    embed(
        &mut out,
        &manifest_dir.join("runbooks"),
        "FILES",
        "runbooks/",
    );
    embed(
        &mut out,
        &manifest_dir.join("frameworks"),
        "FRAMEWORK_FILES",
        "frameworks/",
    );
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}

fn embed(out: &mut String, root: &Path, name: &str, what: &str) {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    writeln!(
        out,
        "/// Every file under {what}, `(relative path, contents)`.\npub(crate) static {name}: &[(&str, &str)] = &["
    )
    .expect("write to String");
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .expect("write to String");
    }
    out.push_str("];\n");
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            files.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
}
