//! Issue 19, item 7: a real `osirisd` makes the previous month's compliance packet (every
//! framework in every format and `MANIFEST.sha256`) when it is due, keeps it in the data
//! directory and seals a `packet` bundle naming each file's SHA-256; status says when; after a
//! restart it is not made again; a month without scan evidence gets a packet that says so; the
//! exported kit with the packet bundle verifies.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use std::path::Path;

use sha2::Digest as _;
use time::OffsetDateTime;

use daemon_proc::{osiris, start, start_answering, text, wait_for};

/// Noon on the 3rd of the month before `now`'s: inside the month whose packet is due.
fn in_previous_month(now: OffsetDateTime) -> OffsetDateTime {
    let first = now.date().replace_day(1).unwrap();
    let day = first.previous_day().unwrap().replace_day(3).unwrap();
    day.with_hms(12, 0, 0).unwrap().assume_utc()
}

fn previous_month(now: OffsetDateTime) -> String {
    let at = in_previous_month(now);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

fn scan(at: OffsetDateTime, status: &str) -> evidence::BundleDraft {
    let stamp = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    evidence::BundleDraft {
        site: "clinic".to_owned(),
        kind: evidence_schema::KIND_SCAN.to_owned(),
        catalog: "test".to_owned(),
        time: at,
        body: serde_json::json!({
            "target": {"name": "pacs-01", "platform": "linux", "device_type": "server"},
            "started": stamp, "finished": stamp,
            "results": [{
                "check": "LIN-SSH-001", "title": "SSH root login disabled", "severity": "high",
                "status": status, "observed": {"permit_root_login": "yes"},
                "expected": "permit_root_login in [no, prohibit-password]",
                "reason": "permit_root_login is \"yes\"", "controls": ["HIPAA:164.312(a)(1)"]
            }],
            "summary": {"total": 1, "pass": u64::from(status == "pass"), "fail": u64::from(status == "fail"), "error": 0, "skipped": 0}
        }),
    }
}

fn record(kind: &str, body: serde_json::Value, at: OffsetDateTime) -> evidence::BundleDraft {
    evidence::BundleDraft {
        site: "clinic".to_owned(),
        kind: kind.to_owned(),
        catalog: "test".to_owned(),
        time: at,
        body,
    }
}

/// A tmpfs mounted as a fake USB stick, unmounted when dropped.
struct Stick(std::path::PathBuf);

impl Stick {
    fn mount(at: &Path) -> Stick {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "osiris-test-usb"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        Stick(at.to_owned())
    }
}

impl Drop for Stick {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn write_config(dir: &Path, data_dir: &Path) -> std::path::PathBuf {
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"clinic\"\ndata_dir = \"{}\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\nexport_roots = [\"{}\"]\n",
            data_dir.display(),
            dir.join("api.sock").display(),
            dir.join("media").display(),
        ),
    )
    .unwrap();
    config
}

/// Every bundle of the log: `(seq, line as JSON)`.
fn bundles(data_dir: &Path) -> Vec<(u64, serde_json::Value)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ops::setup::open_store(data_dir, "clinic").await.unwrap();
        let mut res = Vec::new();
        let mut seq = 0;
        while let Some(entry) = store.entry(seq).await.unwrap() {
            res.push((seq, serde_json::from_slice(&entry.line).unwrap()));
            seq += 1;
        }
        store.close().await;
        res
    })
}

fn seed(data_dir: &Path, drafts: Vec<evidence::BundleDraft>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ops::setup::open_store(data_dir, "clinic").await.unwrap();
        for draft in drafts {
            store.append(draft).await.unwrap();
        }
        store.create_checkpoint().await.unwrap();
        store.close().await;
    });
}

/// The packet bundles of the log.
fn packets(data_dir: &Path) -> Vec<(u64, serde_json::Value)> {
    bundles(data_dir)
        .into_iter()
        .filter(|(_, line)| line["kind"] == "packet")
        .collect()
}

#[test]
fn the_previous_months_packet_is_made_once_sealed_and_shown_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let now = OffsetDateTime::now_utc();
    let period = previous_month(now);
    let at = in_previous_month(now);
    let today = now.date();
    seed(
        &data_dir,
        vec![
            scan(at, "pass"),
            scan(at + time::Duration::days(1), "fail"),
            record(
                evidence_schema::KIND_EXCEPTION,
                serde_json::json!({
                    "check": "LIN-SSH-001", "target": "pacs-02", "reason": "vendor <b>needs</b> root",
                    "compensating": "imaging VLAN only", "owner": "Dr. Ada Example",
                    "expires": (today + time::Duration::days(30)).to_string(),
                }),
                at,
            ),
            record(
                evidence_schema::KIND_ATTESTATION,
                serde_json::json!({
                    "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis reviewed",
                    "by": "Dr. Ada Example", "expires": (today - time::Duration::days(1)).to_string(),
                    "document": null,
                }),
                at,
            ),
        ],
    );
    let config = write_config(dir.path(), &data_dir);
    let log = dir.path().join("osirisd.log");
    let socket = dir.path().join("api.sock");

    let daemon = start_answering(&config, &socket, &log);
    wait_for(120, "the monthly packet", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("Monthly compliance packet made and sealed.")
            .then_some(())
    });
    // Status (the local API and `osiris status`) says when it was made.
    let status = api::Client::new(&socket).status().unwrap();
    let last = status.evidence.last_packet.clone().unwrap();
    assert_eq!(last.period, period);
    assert_eq!(last.files, 26);
    assert!(last.evidence);
    assert!(status.now - last.made_at < 600, "{last:?}");
    let out = osiris(&config, &["status"]);
    assert!(
        text(&out.stdout).contains(&format!("monthly packet: {period} made ")),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The console's reads: the packets, and the exceptions and attestations with their expiry.
    let client = api::Client::new(&socket).with_timeout(std::time::Duration::from_secs(60));
    let listed = client.call(&api::endpoint::Packets, &()).unwrap();
    assert_eq!(listed, vec![last.clone()]);
    let records = client.call(&api::endpoint::ComplianceRecords, &()).unwrap();
    assert_eq!(records.exceptions.len(), 1);
    assert_eq!(records.exceptions[0].check, "LIN-SSH-001");
    assert!(records.exceptions[0].counts);
    assert_eq!(records.attestations.len(), 1);
    assert_eq!(
        records.attestations[0].control,
        "HIPAA 164.308(a)(1)(ii)(A)"
    );
    assert!(!records.attestations[0].counts, "it expired yesterday");
    // Export onto a USB stick, through the kit export's checks.
    if test_support::require_root("packet export onto a stick", &["mount", "umount"]) {
        let export = |period: &str, dest: &Path| {
            client.call(
                &api::endpoint::ExportPacket,
                &api::PacketExportRequest {
                    period: period.to_owned(),
                    dest_dir: dest.display().to_string(),
                },
            )
        };
        let err = export(&period, Path::new("/etc")).unwrap_err();
        assert!(err.to_string().contains("not on removable media"), "{err}");
        let stick = Stick::mount(&dir.path().join("media/usb"));
        let err = export("1999-01", &stick.0).unwrap_err();
        assert!(
            err.to_string().contains("no packet of `1999-01` was made"),
            "{err}"
        );
        let exported = export(&period, &stick.0).unwrap();
        assert_eq!(exported.files, 26);
        let copy = Path::new(&exported.path);
        assert!(copy.starts_with(&stick.0));
        let html = std::fs::read(copy.join(format!("hipaa-{period}.html"))).unwrap();
        let manifest = std::fs::read_to_string(
            data_dir
                .join("packets")
                .join(&period)
                .join("MANIFEST.sha256"),
        )
        .unwrap();
        let line = format!(
            "{}  hipaa-{period}.html",
            hex::encode(sha2::Sha256::digest(&html))
        );
        assert!(manifest.lines().any(|l| l == line), "{manifest}");
        // A report changed in the data directory after it was sealed is not exported.
        let kept = data_dir
            .join("packets")
            .join(&period)
            .join(format!("soc2-{period}.csv"));
        let original = std::fs::read(&kept).unwrap();
        std::fs::write(&kept, b"framework,control\nsoc2,edited\n").unwrap();
        let err = export(&period, &stick.0).unwrap_err();
        assert!(
            err.to_string().contains("no longer matches the SHA-256"),
            "{err}"
        );
        std::fs::write(&kept, original).unwrap();
        let entries = std::fs::read_dir(&stick.0).unwrap().count();
        assert_eq!(entries, 1, "only the first, finished copy");
    }
    drop(daemon);

    // Sealed once, naming every file with its SHA-256; the files are there with those hashes.
    let sealed = packets(&data_dir);
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    let (seq, line) = &sealed[0];
    assert_eq!(*seq, last.seq);
    let body = &line["body"];
    assert_eq!(body["period"], period.as_str());
    assert_eq!(body["evidence"], true);
    assert_eq!(body["directory"], format!("packets/{period}"));
    let packet_dir = data_dir.join("packets").join(&period);
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 26);
    let mut on_disk: Vec<String> = std::fs::read_dir(&packet_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = files
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    assert_eq!(on_disk, named);
    for framework in ["hipaa", "soc2", "pci", "nist-csf", "cis"] {
        for suffix in [
            ".html",
            ".pdf",
            ".csv",
            "-assessment-results.json",
            "-poam.json",
        ] {
            let name = format!("{framework}-{period}{suffix}");
            assert!(named.contains(&name), "{name} missing from {named:?}");
        }
    }
    for file in files {
        let bytes = std::fs::read(packet_dir.join(file["name"].as_str().unwrap())).unwrap();
        assert_eq!(
            file["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&bytes))
        );
        assert_eq!(file["size"].as_u64().unwrap(), bytes.len() as u64);
    }
    // The reports say what the month held: the failing check on its device.
    let html = std::fs::read_to_string(packet_dir.join(format!("hipaa-{period}.html"))).unwrap();
    assert!(html.contains("pacs-01") && html.contains("LIN-SSH-001"));
    assert!(!html.contains("No scan evidence was recorded"));
    let csv = std::fs::read_to_string(packet_dir.join(format!("hipaa-{period}.csv"))).unwrap();
    assert!(csv.contains(",failing,"), "{csv}");
    let manifest = std::fs::read_to_string(packet_dir.join("MANIFEST.sha256")).unwrap();
    assert_eq!(manifest.lines().count(), 25);

    // After a restart it is not made again, and the status still names it.
    let before: Vec<_> = std::fs::read(packet_dir.join(format!("hipaa-{period}.pdf"))).unwrap();
    let daemon = start_answering(&config, &socket, &log);
    wait_for(
        30,
        "status naming the packet after the restart",
        &log,
        || {
            api::Client::new(&socket)
                .status()
                .ok()
                .and_then(|s| s.evidence.last_packet)
                .filter(|p| p.seq == last.seq)
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(daemon);
    assert_eq!(packets(&data_dir).len(), 1);
    assert_eq!(
        std::fs::read(packet_dir.join(format!("hipaa-{period}.pdf"))).unwrap(),
        before
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log_text
            .matches("Making the monthly compliance packet.")
            .count(),
        1
    );

    // The exported kit, packet bundle included, verifies.
    let kit = dir.path().join("kit");
    let out = osiris(
        &config,
        &["evidence", "export", "--out", kit.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = osiris(
        &config,
        &[
            "evidence",
            "verify",
            kit.to_str().unwrap(),
            "--trust-kit-key",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_month_without_scan_evidence_gets_a_packet_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let now = OffsetDateTime::now_utc();
    let period = previous_month(now);
    // The appliance existed before that month (a scan two months back), but nothing was scanned in it.
    let earlier = in_previous_month(now) - time::Duration::days(31);
    seed(&data_dir, vec![scan(earlier, "pass")]);
    let config = write_config(dir.path(), &data_dir);
    let log = dir.path().join("osirisd.log");
    let daemon = start(&config, &log);
    wait_for(120, "the monthly packet", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("Monthly compliance packet made and sealed.")
            .then_some(())
    });
    drop(daemon);
    let sealed = packets(&data_dir);
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].1["body"]["evidence"], false);
    let packet_dir = data_dir.join("packets").join(&period);
    let html = std::fs::read_to_string(packet_dir.join(format!("hipaa-{period}.html"))).unwrap();
    assert!(
        html.contains(&format!("No scan evidence was recorded in {period}")),
        "{html}"
    );
    // No status a check would give is claimed: no control is met or failing by a check.
    let csv = std::fs::read_to_string(packet_dir.join(format!("hipaa-{period}.csv"))).unwrap();
    assert!(!csv.contains(",failing,"), "{csv}");
}

#[test]
fn a_packet_kept_but_not_sealed_is_sealed_as_it_is_and_a_damaged_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let now = OffsetDateTime::now_utc();
    let period = previous_month(now);
    seed(&data_dir, vec![scan(in_previous_month(now), "fail")]);
    let config = write_config(dir.path(), &data_dir);
    // A crash after the packet was kept and before its bundle was sealed leaves the directory:
    // made here by hand the same way (`osiris report --framework all`).
    let packet_dir = data_dir.join("packets").join(&period);
    let out = osiris(
        &config,
        &[
            "report",
            "--framework",
            "all",
            "--period",
            &period,
            "--out",
            packet_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pdf = packet_dir.join(format!("cis-{period}.pdf"));
    let kept = std::fs::read(&pdf).unwrap();

    // Damaged first: one byte of a report changed. Refused with what to do, nothing sealed.
    let mut damaged = kept.clone();
    let last = damaged.len() - 10;
    damaged[last] ^= 1;
    std::fs::write(&pdf, &damaged).unwrap();
    let log = dir.path().join("osirisd.log");
    let daemon = start(&config, &log);
    wait_for(60, "the damaged packet refused", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("Making the monthly compliance packet failed")
            .then_some(text)
    });
    drop(daemon);
    let text_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        text_log.contains(&format!("cis-{period}.pdf has SHA-256"))
            && text_log.contains("remove the directory to make the packet again"),
        "{text_log}"
    );
    assert!(packets(&data_dir).is_empty());

    // Repaired: sealed as it is, not made again.
    std::fs::write(&pdf, &kept).unwrap();
    let daemon = start(&config, &log);
    wait_for(60, "the kept packet sealed", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("Monthly compliance packet made and sealed.")
            .then_some(())
    });
    drop(daemon);
    let sealed = packets(&data_dir);
    assert_eq!(sealed.len(), 1);
    assert_eq!(std::fs::read(&pdf).unwrap(), kept);
    let named = sealed[0].1["body"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == format!("cis-{period}.pdf"))
        .unwrap()["sha256"]
        .clone();
    assert_eq!(named, hex::encode(sha2::Sha256::digest(&kept)).as_str());
    assert_eq!(sealed[0].1["body"]["evidence"], true);
}
