//! The PDF report read back by poppler: `pdftotext` finds every control in the order of the HTML
//! report, and `pdftoppm`'s rendering of each page matches the committed reference images within
//! a tolerance (`UPDATE_SCREENSHOTS=1` rewrites them).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use time::OffsetDateTime;

use compliance::render::{ReportContext, html, pdf};
use compliance::{Ledger, Period, assess};
use model::Framework;

fn ledger() -> Ledger {
    let mut ledger = Ledger::new(Period::month("2026-11").unwrap(), None);
    let lines = [
        json!({"kind": "scan", "time": "2026-11-02T10:00:00Z", "body": {
            "target": {"name": "reception-pc", "platform": "linux", "device_type": "server"},
            "started": "2026-11-02T10:00:00Z", "finished": "2026-11-02T10:00:00Z",
            "results": [
                {"check": "LIN-SSH-002", "title": "t", "severity": "high", "status": "fail",
                 "observed": {"password_authentication": "yes"}, "expected": "e", "reason": "r", "controls": []},
                {"check": "LIN-AUDIT-001", "title": "t", "severity": "high", "status": "pass",
                 "observed": {"auditd": "active"}, "expected": "e", "reason": "r", "controls": []}],
            "summary": {"total": 2, "pass": 1, "fail": 1, "error": 0, "skipped": 0}}}),
        json!({"kind": "attestation", "time": "2026-11-04T10:00:00Z", "body": {
            "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis reviewed with the MSP",
            "by": "Dr. Ada Example", "expires": "2027-11-01", "document": null}}),
    ];
    for (seq, line) in lines.iter().enumerate() {
        ledger
            .add_line(seq as u64, line.to_string().as_bytes())
            .unwrap();
    }
    ledger
}

static NO_PROOFS: compliance::Proofs = compliance::Proofs::NONE;

fn context() -> ReportContext<'static> {
    ReportContext {
        site: "example-clinic",
        origin: "osiris.example/appliance/abc",
        key_id: "0011",
        catalog_version: "0.0.0+aaa",
        frameworks_version: "0.0.0+bbb",
        generated_at: OffsetDateTime::UNIX_EPOCH,
        checkpoint: Some((2, "osiris.example/appliance/abc\n2\nROOT=\n\n— sig\n")),
        tool_version: "0.0.0",
        samples: &[],
        proofs: &NO_PROOFS,
    }
}

#[test]
fn pdf_text_lists_every_control_in_the_order_of_the_html_report() {
    let Some(_) = poppler() else { return };
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let dir = temp_dir("text");
    let file = dir.join("hipaa.pdf");
    std::fs::write(&file, pdf(&assessment, &ledger, &context())).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let page = html(&assessment, &ledger, &context());

    // The controls in the HTML report, in order, and each one's status.
    let html_ids: Vec<&str> = page
        .split("<tr id=\"c-")
        .skip(1)
        .map(|row| {
            row.split("<b>")
                .nth(1)
                .unwrap()
                .split("</b>")
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(html_ids.len(), 65);
    let mut at = text.find("Every control").unwrap();
    for (id, control) in html_ids.iter().zip(&assessment.controls) {
        let heading = format!(
            "{id}{}",
            control
                .def
                .kind
                .map(|k| format!(" ({})", k.as_str()))
                .unwrap_or_default()
        );
        let found = text[at..]
            .find(&heading)
            .unwrap_or_else(|| panic!("{heading} not found after byte {at}"));
        at += found;
        let status = control.status.as_str().to_uppercase();
        assert!(
            text[at..].starts_with(&format!("{heading} — {status}")),
            "{heading}: {}",
            &text[at..at + 80]
        );
    }
    assert!(
        text.contains(
            "Of the 61 HIPAA Security Rule controls that apply to the practice, 3 are met"
        )
    );
    assert!(text.contains("Attested by Dr. Ada Example until 2027-11-01"));
    assert!(text.contains("LIN-SSH-002 on reception-pc: fail"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pdf_pages_look_like_the_reference_images() {
    let Some(_) = poppler() else { return };
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let dir = temp_dir("pages");
    let file = dir.join("hipaa.pdf");
    std::fs::write(&file, pdf(&assessment, &ledger, &context())).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-png", "-gray", "-r", "40", "-f", "1", "-l", "2"])
        .arg(&file)
        .arg(dir.join("page"))
        .status()
        .unwrap();
    assert!(status.success());
    let reference_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pdf-reference");
    for n in 1..=2 {
        let actual = dir.join(format!("page-{n}.png"));
        let reference = reference_dir.join(format!("hipaa-page-{n}.png"));
        if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            std::fs::create_dir_all(&reference_dir).unwrap();
            std::fs::copy(&actual, &reference).unwrap();
            continue;
        }
        let (aw, ah, a) = gray(&actual);
        let (rw, rh, r) = gray(&reference);
        assert_eq!((aw, ah), (rw, rh), "page {n} size");
        let differing = a
            .iter()
            .zip(&r)
            .filter(|(x, y)| x.abs_diff(**y) > 64)
            .count();
        // Font rasterisation may differ slightly between poppler versions: allow 1 % of pixels.
        assert!(
            differing * 100 <= a.len(),
            "page {n}: {differing} of {} pixels differ (actual image: {})",
            a.len(),
            actual.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn gray(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => panic!("{}: indexed colour", path.display()),
    };
    // One grey value per pixel: the mean of the colour channels.
    let gray = buf
        .chunks(channels)
        .map(|px| {
            let colours = &px[..channels.min(3)];
            (colours.iter().map(|&c| u32::from(c)).sum::<u32>() / colours.len() as u32) as u8
        })
        .collect();
    (info.width, info.height, gray)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osiris-pdf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// poppler-utils (`pdftotext`, `pdftoppm`; scripts/setup installs them): the shared gate, a loud
/// skip on a developer's machine and a failure under CI.
fn poppler() -> Option<()> {
    test_support::root::require_tools("the PDF read-back tests", &["pdftotext", "pdftoppm"])
        .then_some(())
}
