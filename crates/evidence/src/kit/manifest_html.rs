//! The kit's HTML manifest for an auditor (`auditor/manifest.html`): every file of the kit with
//! its SHA-256, size and what it is, then the caller's section. The caller gives the title, the
//! descriptions of its files and the section as HTML it escaped; everything else on the page is
//! markup-free by construction (kit paths of checked names, hex hashes, numbers, the origin of
//! a validated key).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::kit::{BUNDLES, MANIFEST, PUBKEY, README};

/// The page: `files` are the kit's files so far (path → SHA-256, size), `described` what the
/// caller's own files are.
pub(crate) fn render(
    title: &str,
    origin: &str,
    files: &BTreeMap<String, ([u8; 32], u64)>,
    described: &[(String, String)],
    section: &str,
) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto}}\
         table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top}}\
         code{{word-break:break-all;font-size:.8em}}</style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <p>Evidence log {}. Every file below is listed with the same SHA-256 in the signed <code>{MANIFEST}</code>; \
         check the whole kit with <code>osiris evidence verify</code>. This page is listed there too; \
         {MANIFEST} and {README} are not listed here (the MANIFEST signs this page, the README is unsigned).</p>\n\
         <h2>Files</h2>\n<table class=\"files\"><thead><tr><th>File</th><th>SHA-256</th><th>Bytes</th><th>What it is</th></tr></thead><tbody>\n",
        title, title, origin
    );
    for (path, (hash, size)) in files {
        let what = described
            .iter()
            .find(|(p, _)| p == path)
            .map_or_else(|| what_it_is(path), |(_, what)| what.clone());
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{size}</td><td>{}</td></tr>",
            path,
            hex::encode(hash),
            what
        );
    }
    out.push_str("</tbody></table>\n");
    out.push_str(section);
    out.push_str("</body>\n</html>\n");
    out
}

fn what_it_is(path: &str) -> String {
    if path == BUNDLES {
        "Every evidence bundle of the log, one signed JSON line each, in seq order".to_owned()
    } else if path == PUBKEY {
        "The appliance's verifier key (compare it with the one you recorded)".to_owned()
    } else if path.ends_with(".txt.ots") {
        "OpenTimestamps proof of the checkpoint file".to_owned()
    } else if path.ends_with(".txt.cosig") {
        "Witness cosignatures of the checkpoint".to_owned()
    } else if path.starts_with("checkpoints/") {
        "Signed checkpoint: tree size and Merkle root of the log".to_owned()
    } else if path.starts_with("proofs/") {
        "Consistency proof between two consecutive checkpoints".to_owned()
    } else {
        "File of the kit".to_owned()
    }
}
