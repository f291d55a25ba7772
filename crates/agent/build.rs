//! Embeds the catalogue for the target's platform as JSON, validated here at build time, so the
//! agent carries neither the other platforms' scripts nor the TOML parser and the catalogue
//! checks (301 KB of its 3 MB budget; docs/PERFORMANCE.md), deflated.

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
    // Deflated: the shell scripts shrink 4× (92 KB → 22 KB for Linux), more than the inflater
    // costs the binary (docs/PERFORMANCE.md).
    let deflated = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 10);
    std::fs::write(out.join("catalog.json.deflate"), deflated).expect("write catalog.json.deflate");

    // Identical code folding in optimised Linux builds: the generic code of tonic, h2 and serde
    // leaves many byte-identical functions (−40 KB of the stripped agent). Only this package's
    // binaries, only optimised builds, and only where the linker takes the flag (rust-lld, the
    // default on x86_64 Linux, and gold do; GNU ld, which a packager's toolchain may use, does
    // not): a one-line program is linked with it first, and without it the agent is just larger.
    let optimised = std::env::var("PROFILE").is_ok_and(|profile| profile == "release");
    if os == "linux" && optimised && linker_folds_code(&out) {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}

/// Whether `rustc` for this target, with this build's linker, links a program with `--icf=all`.
fn linker_folds_code(out: &std::path::Path) -> bool {
    let source = out.join("icf_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut probe = std::process::Command::new(rustc);
    probe
        .arg(&source)
        .arg("-o")
        .arg(out.join("icf_probe"))
        .args(["-C", "link-arg=-Wl,--icf=all"]);
    if let Ok(target) = std::env::var("TARGET") {
        probe.args(["--target", &target]);
    }
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        probe.arg("-C").arg({
            let mut arg = std::ffi::OsString::from("linker=");
            arg.push(linker);
            arg
        });
    }
    probe
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
