//! Embeds the catalogue for the target's platform as JSON, validated here at build time, so the
//! agent carries neither the other platforms' scripts nor the TOML parser and the catalogue
//! checks (301 KB of its 3 MB budget; docs/PERFORMANCE.md).

use std::path::PathBuf;

use model::Platform;

fn main() {
    let catalog = catalog::embedded().unwrap_or_else(|errors| {
        panic!("the shipped catalogue does not load: {errors}");
    });
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let platforms: &[Platform] = match os.as_str() {
        "windows" => &[Platform::WindowsWorkstation, Platform::WindowsServer],
        "macos" => &[Platform::Macos],
        _ => &[Platform::Linux],
    };
    let json = catalog.subset(platforms).to_json();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("catalog.json"), json).expect("write catalog.json");
}
