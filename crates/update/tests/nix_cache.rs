//! End-to-end update tests against binary caches that Nix itself builds and signs during the
//! test (`nix-build`, `nix-store --generate-binary-cache-key`, `nix copy --to file://…`).
//! They need root and Nix; without them they skip loudly, or fail under `OSIRIS_REQUIRE_ROOT=1`
//! (CI runs as root after `scripts/nix-check` installed Nix).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use time::OffsetDateTime;

use update::{
    BootLoader, Cache, ClosureError, GateDecision, HealthGate, Importer, MANIFEST_SCHEMA_V1,
    Manifest, Phase, Policy, Probe, SignedManifest, SystemdBoot, UpdateError, Updater, VendorKey,
};

/// A system closure built and signed by Nix, shared by every test (each copies the cache).
struct Fixture {
    dir: tempfile::TempDir,
    system: String,
    /// A stand-in for the signed UKI: its own store path holding `osiris_1.1.0.efi`.
    uki: String,
    payload: String,
    cache_key: String,
    cache_secret: PathBuf,
    other_key: String,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture).as_ref()
}

fn build_fixture() -> Option<Fixture> {
    if !test_support::require_root(
        "Nix update tests (Nix 2.8+: scripts/nix-check installs nix-bin)",
        &["nix-build", "nix-store", "nix"],
    ) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let nix_file = dir.path().join("system.nix");
    // A payload with a file, an executable and a symlink, and a "system" referencing it with
    // the files a boot entry needs. The builder is the host's /bin/sh: no nixpkgs needed.
    let unique = format!(
        "{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    fs::write(
        &nix_file,
        format!(
            r#"let
  payload = derivation {{
    name = "osiris-test-payload";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir -p $out/bin && echo hello-{unique} > $out/data && /bin/ln -s data $out/link && printf '#!/bin/sh\necho hi\n' > $out/bin/hi && /bin/chmod +x $out/bin/hi" ];
  }};
in {{
  uki = derivation {{
    name = "osiris-uki-1.1.0";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir -p $out && echo MZ-signed-uki-{unique} > $out/osiris_1.1.0.efi" ];
  }};
  system = derivation {{
  name = "nixos-system-osiris-1.1.0";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out && echo kernel-{unique} > $out/kernel && echo initrd > $out/initrd && echo 'quiet loglevel=4' > $out/kernel-params && /bin/ln -s ${{payload}} $out/sw" ];
  }};
}}
"#
        ),
    )
    .unwrap();
    let build = |attr: &str| {
        run(Command::new("nix-build").arg(&nix_file).args([
            "-A",
            attr,
            "--no-out-link",
            "--option",
            "substituters",
            "",
        ]))
        .trim()
        .to_owned()
    };
    let system = build("system");
    let uki = build("uki");
    let payload = run(Command::new("nix-store").args(["-q", "--references", &system]));
    let payload = payload.trim().to_owned();
    let key = |name: &str| {
        let secret = dir.path().join(format!("{name}.sec"));
        let public = dir.path().join(format!("{name}.pub"));
        run(Command::new("nix-store")
            .arg("--generate-binary-cache-key")
            .arg(name)
            .arg(&secret)
            .arg(&public));
        (
            secret,
            fs::read_to_string(public).unwrap().trim().to_owned(),
        )
    };
    let (cache_secret, cache_key) = key("osiris-test-cache-1");
    let (_, other_key) = key("osiris-test-cache-2");
    let cache = dir.path().join("cache");
    run(Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "copy"])
        .arg("--to")
        .arg(format!(
            "file://{}?secret-key={}&compression=xz",
            cache.display(),
            cache_secret.display()
        ))
        .args(["--option", "substituters", ""])
        .arg(&system)
        .arg(&uki));
    Some(Fixture {
        dir,
        system,
        uki,
        payload,
        cache_key,
        cache_secret,
        other_key,
    })
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One test's world: its own copy of the cache, a state dir, an ESP, efivars and a store root.
struct World {
    tmp: tempfile::TempDir,
    cache_dir: PathBuf,
    vendor: SigningKey,
}

impl World {
    fn new(fx: &Fixture) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let cache_dir = tmp.path().join("cache");
        copy_dir(&fx.dir.path().join("cache"), &cache_dir);
        let world = World {
            tmp,
            cache_dir,
            vendor: SigningKey::from_bytes(&[7; 32]),
        };
        // The appliance currently runs 1.0.0 from a blessed entry.
        let old_system = world.tmp.path().join("old-system");
        fs::create_dir_all(&old_system).unwrap();
        for (file, text) in [
            ("kernel", "k0"),
            ("initrd", "i0"),
            ("kernel-params", "quiet"),
        ] {
            fs::write(old_system.join(file), text).unwrap();
        }
        let mut boot = world.boot();
        boot.install(
            &update::EntrySpec::new("1.0.0", "/nix/store/old-system", &old_system),
            3,
        )
        .unwrap();
        boot.bless("osiris-1.0.0").unwrap();
        assert_eq!(
            boot.emulate_firmware_boot().unwrap().as_deref(),
            Some("osiris-1.0.0")
        );
        world
    }

    fn boot(&self) -> SystemdBoot {
        SystemdBoot::new(
            &self.tmp.path().join("esp"),
            &self.tmp.path().join("efivars"),
        )
    }

    fn updater(&self) -> Updater<SystemdBoot> {
        Updater::open(&self.tmp.path().join("state"), self.boot()).unwrap()
    }

    fn importer(&self) -> Importer {
        Importer::Unpack {
            store_root: self.tmp.path().join("store"),
        }
    }

    fn cache(&self) -> Cache {
        Cache::open(
            &format!("file://{}", self.cache_dir.display()),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn policy(&self, pinned_cache_key: &str) -> Policy {
        Policy {
            vendor_key: VendorKey::from_signing_key("osiris-vendor-test", &self.vendor),
            cache_keys: vec![pinned_cache_key.to_owned()],
            installed: "1.0.0".parse().unwrap(),
            tries: 3,
            health_deadline: Duration::from_secs(600),
            secure_boot: false,
        }
    }

    fn signed_manifest(&self, fx: &Fixture, cache_key: &str) -> SignedManifest {
        let manifest = Manifest {
            schema: MANIFEST_SCHEMA_V1.to_owned(),
            version: "1.1.0".to_owned(),
            min_version: "1.0.0".to_owned(),
            system: fx.system.clone(),
            cache_url: format!("file://{}", self.cache_dir.display()),
            cache_keys: vec![cache_key.to_owned()],
            released: "2026-11-28T00:00:00Z".to_owned(),
            expires: "2099-01-01T00:00:00Z".to_owned(),
            counter: 1,
        };
        SignedManifest::sign(&manifest, "osiris-vendor-test", &self.vendor)
    }

    /// Manifest accepted and closure fetched; returns the fetch step's error, if any.
    fn accept_and_fetch(
        &self,
        fx: &Fixture,
        updater: &mut Updater<SystemdBoot>,
        pinned: &str,
    ) -> (Vec<String>, Result<(), UpdateError>) {
        let policy = self.policy(pinned);
        let signed = self.signed_manifest(fx, pinned);
        let step = updater.accept_manifest(&signed, &policy, OffsetDateTime::now_utc());
        step.result.unwrap();
        let mut steps: Vec<String> = step.records.iter().map(|r| r.step.clone()).collect();
        let step = updater.fetch(&self.cache(), &self.importer(), OffsetDateTime::now_utc());
        steps.extend(
            step.records
                .iter()
                .map(|r| format!("{}:{}", r.step, r.outcome)),
        );
        (steps, step.result)
    }

    /// Staged and booted into the new entry, health gate running.
    fn booted_into_new(&self, fx: &Fixture, policy: &Policy) -> Updater<SystemdBoot> {
        let mut updater = self.updater();
        let (_, res) = self.accept_and_fetch(fx, &mut updater, &fx.cache_key);
        res.unwrap();
        updater
            .stage(&self.importer(), policy, OffsetDateTime::now_utc())
            .result
            .unwrap();
        assert_eq!(
            self.boot().emulate_firmware_boot().unwrap().as_deref(),
            Some("osiris-1.1.0")
        );
        // A reboot: the updater is re-opened from its state file.
        drop(updater);
        let mut updater = self.updater();
        assert_eq!(updater.phase().name(), "staged");
        let step = updater.after_boot(policy, OffsetDateTime::now_utc());
        assert_eq!(step.result.unwrap(), GateDecision::Wait);
        assert_eq!(step.records[0].step, "booted");
        updater
    }

    fn entry_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.tmp.path().join("esp/loader/entries"))
            .map(|read| {
                read.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn nar_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.cache_dir.join("nar"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn narinfo(&self, store_path: &str) -> PathBuf {
        let base = store_path.rsplit('/').next().unwrap();
        let hash = base.split('-').next().unwrap();
        self.cache_dir.join(format!("{hash}.narinfo"))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

struct Gate {
    daemon: Probe,
    scan: Probe,
    evidence: Probe,
}

impl HealthGate for Gate {
    fn daemon_up(&mut self) -> Probe {
        self.daemon.clone()
    }
    fn scan_completed(&mut self) -> Probe {
        self.scan.clone()
    }
    fn evidence_appended(&mut self) -> Probe {
        self.evidence.clone()
    }
}

/// After a refused closure: the phase is still `downloaded`, no verified files remain, and the
/// boot loader still has only the old entry.
#[track_caller]
fn assert_nothing_staged(world: &World, updater: &Updater<SystemdBoot>) {
    assert_eq!(updater.phase().name(), "downloaded");
    assert!(!world.tmp.path().join("state/cache-1.1.0").exists());
    assert!(!world.tmp.path().join("store").exists());
    assert_eq!(world.entry_files(), ["osiris-1.0.0.conf"]);
}

#[test]
fn good_update_verifies_imports_and_stages_with_three_tries() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let mut updater = world.updater();
    let (steps, res) = world.accept_and_fetch(fx, &mut updater, &fx.cache_key);
    res.unwrap();
    assert_eq!(
        steps,
        [
            "manifest_verified",
            "closure_verified:ok",
            "closure_imported:ok"
        ]
    );
    // The unpacked closure is byte-identical to what Nix built.
    let store = world.tmp.path().join("store");
    for path in [&fx.system, &fx.payload] {
        let base = path.rsplit('/').next().unwrap();
        let diff = Command::new("diff")
            .arg("-r")
            .arg(path)
            .arg(store.join(base))
            .output()
            .unwrap();
        assert!(
            diff.status.success(),
            "{}",
            String::from_utf8_lossy(&diff.stdout)
        );
    }
    let policy = world.policy(&fx.cache_key);
    let step = updater.stage(&world.importer(), &policy, OffsetDateTime::now_utc());
    step.result.unwrap();
    assert_eq!(step.records[0].step, "entry_staged");
    assert_eq!(step.records[0].detail["previous"], "osiris-1.0.0");
    assert_eq!(
        world.entry_files(),
        ["osiris-1.0.0.conf", "osiris-1.1.0+3.conf"]
    );
    let next = world.boot().next_boot().unwrap().unwrap();
    assert_eq!(next.id, "osiris-1.1.0");
    assert_eq!(next.system, fx.system);
    let entry_text = fs::read_to_string(
        world
            .tmp
            .path()
            .join("esp/loader/entries/osiris-1.1.0+3.conf"),
    )
    .unwrap();
    assert!(
        entry_text.contains(&format!("options init={}/init quiet loglevel=4", fx.system)),
        "{entry_text}"
    );
    let kernel = fs::read_to_string(
        world
            .tmp
            .path()
            .join("esp/EFI/osiris/osiris-1.1.0-linux.efi"),
    )
    .unwrap();
    assert_eq!(
        kernel,
        fs::read_to_string(format!("{}/kernel", fx.system)).unwrap()
    );
}

#[test]
fn nix_copy_import_rechecks_signatures_against_the_pinned_keys() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let cache = world.cache();
    let local = world.tmp.path().join("verified");
    let closure = update::fetch_and_verify(
        &cache,
        &fx.system,
        std::slice::from_ref(&fx.cache_key),
        &local,
    )
    .unwrap();
    assert_eq!(closure.paths.len(), 2);
    assert_eq!(closure.paths[0].store_path, fx.system);
    assert_eq!(closure.paths[1].store_path, fx.payload);
    assert_eq!(closure.paths[0].signed_by, ["osiris-test-cache-1"]);
    let root = world.tmp.path().join("chroot");
    closure
        .import_with_nix(Path::new("nix"), Some(root.to_str().unwrap()))
        .unwrap();
    assert_eq!(
        fs::read_to_string(root.join(fx.payload.trim_start_matches('/')).join("data")).unwrap(),
        fs::read_to_string(format!("{}/data", fx.payload)).unwrap()
    );
    // Nix itself refuses the same files when told to trust another key.
    let mut untrusted = closure.clone();
    untrusted.keys = vec![fx.other_key.clone()];
    let err = untrusted
        .import_with_nix(
            Path::new("nix"),
            Some(world.tmp.path().join("chroot2").to_str().unwrap()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("lacks a valid signature"), "{err}");
}

#[test]
fn closure_signed_by_an_unpinned_key_is_refused_and_nothing_staged() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let mut updater = world.updater();
    let (steps, res) = world.accept_and_fetch(fx, &mut updater, &fx.other_key);
    let err = res.unwrap_err();
    assert!(
        matches!(err, UpdateError::Closure(ClosureError::Unsigned { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("no valid signature by a pinned key (osiris-test-cache-2)"),
        "{message}"
    );
    assert_eq!(steps, ["manifest_verified", "closure_refused:refused"]);
    assert_nothing_staged(&world, &updater);
}

#[test]
fn tampered_nar_is_refused_by_file_hash_and_nothing_staged() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    for nar in world.nar_files() {
        let mut bytes = fs::read(&nar).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&nar, bytes).unwrap();
    }
    let mut updater = world.updater();
    let (_, res) = world.accept_and_fetch(fx, &mut updater, &fx.cache_key);
    let err = res.unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Closure(ClosureError::Mismatch {
                what: "FileHash",
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("tampered with or corrupted"),
        "{err}"
    );
    assert_nothing_staged(&world, &updater);
}

#[test]
fn truncated_download_is_refused_and_nothing_staged() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    // Only the dependency's NAR is cut short: the walk must reach it through References.
    let payload_info = fs::read_to_string(world.narinfo(&fx.payload)).unwrap();
    let url = payload_info
        .lines()
        .find_map(|line| line.strip_prefix("URL: "))
        .unwrap();
    let nar = world.cache_dir.join(url);
    let bytes = fs::read(&nar).unwrap();
    fs::write(&nar, &bytes[..bytes.len() / 2]).unwrap();
    let mut updater = world.updater();
    let (_, res) = world.accept_and_fetch(fx, &mut updater, &fx.cache_key);
    let err = res.unwrap_err();
    match &err {
        UpdateError::Closure(ClosureError::Truncated {
            path,
            got,
            expected,
            ..
        }) => {
            assert_eq!(path, &fx.payload);
            assert_eq!(*got as usize, bytes.len() / 2);
            assert_eq!(*expected as usize, bytes.len());
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_nothing_staged(&world, &updater);
}

#[test]
fn narinfo_with_changed_nar_size_is_refused() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let info_path = world.narinfo(&fx.payload);
    let text = fs::read_to_string(&info_path).unwrap();
    let size: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("NarSize: "))
        .unwrap()
        .parse()
        .unwrap();
    let changed = text.replace(
        &format!("NarSize: {size}\n"),
        &format!("NarSize: {}\n", size + 1),
    );
    fs::write(&info_path, &changed).unwrap();
    let mut updater = world.updater();
    let (_, res) = world.accept_and_fetch(fx, &mut updater, &fx.cache_key);
    let err = res.unwrap_err();
    // NarSize is part of the signed fingerprint.
    assert!(
        matches!(err, UpdateError::Closure(ClosureError::Unsigned { ref path, .. }) if path == &fx.payload),
        "{err}"
    );
    assert_nothing_staged(&world, &updater);

    // Even re-signed with the pinned key, a NarSize that does not match the NAR is refused.
    let resigned = resign(&changed, &fx.cache_secret);
    fs::write(&info_path, resigned).unwrap();
    let mut updater = world.updater();
    let step = updater.fetch(&world.cache(), &world.importer(), OffsetDateTime::now_utc());
    let err = step.result.unwrap_err();
    match &err {
        UpdateError::Closure(ClosureError::Mismatch {
            what,
            expected,
            got,
            ..
        }) => {
            assert_eq!(*what, "NarSize");
            assert_eq!(expected, &(size + 1).to_string());
            assert_eq!(got, &size.to_string());
        }
        other => panic!("expected a NarSize mismatch, got {other}"),
    }
    assert_nothing_staged(&world, &updater);
}

/// Replaces the `Sig:` line with a signature by the Nix secret key file `secret`.
fn resign(narinfo: &str, secret: &Path) -> String {
    let secret = fs::read_to_string(secret).unwrap();
    let (name, encoded) = secret.trim().split_once(':').unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let key = SigningKey::from_bytes(&bytes[..32].try_into().unwrap());
    let unsigned: String = narinfo
        .lines()
        .filter(|line| !line.starts_with("Sig: "))
        .map(|line| format!("{line}\n"))
        .collect();
    let store_dir = nix_derivation::StoreDir::default();
    let info = nix_narinfo::NarInfo::parse_in(&store_dir, unsigned.as_bytes()).unwrap();
    let signature = key.sign(info.fingerprint(&store_dir).as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
    format!("{unsigned}Sig: {name}:{encoded}\n")
}

#[test]
fn health_gate_failure_rolls_back_to_the_previous_entry() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = world.policy(&fx.cache_key);
    let mut updater = world.booted_into_new(fx, &policy);
    // The firmware counted one attempt.
    assert_eq!(
        world.entry_files(),
        ["osiris-1.0.0.conf", "osiris-1.1.0+2-1.conf"]
    );
    let mut gate = Gate {
        daemon: Probe::Pass,
        scan: Probe::Fail("osirisd exited with status 78 (bad configuration)".to_owned()),
        evidence: Probe::Pending("no bundle yet".to_owned()),
    };
    let step = updater.check_health(&mut gate, OffsetDateTime::now_utc());
    assert_eq!(step.result.unwrap(), GateDecision::RebootNow);
    let steps: Vec<_> = step
        .records
        .iter()
        .map(|r| format!("{}:{}", r.step, r.outcome))
        .collect();
    assert_eq!(steps, ["health_check:failed", "rolled_back:ok"]);
    assert_eq!(step.records[0].detail["probes"]["daemon_up"], "pass");
    assert_eq!(step.records[1].detail["next_boot"], "osiris-1.0.0");
    match updater.phase() {
        Phase::RolledBack {
            reason, previous, ..
        } => {
            assert!(
                reason.contains("scan_completed: osirisd exited with status 78"),
                "{reason}"
            );
            assert_eq!(previous.as_deref(), Some("osiris-1.0.0"));
        }
        other => panic!("expected rolled back, got {other:?}"),
    }
    assert_eq!(
        world.entry_files(),
        ["osiris-1.0.0.conf", "osiris-1.1.0+0-3.conf"]
    );
    assert_eq!(
        world.boot().emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris-1.0.0")
    );
}

#[test]
fn health_gate_deadline_expiry_rolls_back() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = Policy {
        health_deadline: Duration::from_millis(300),
        secure_boot: false,
        ..world.policy(&fx.cache_key)
    };
    let mut updater = world.booted_into_new(fx, &policy);
    let mut gate = Gate {
        daemon: Probe::Pass,
        scan: Probe::Pending("first scan still running".to_owned()),
        evidence: Probe::Pass,
    };
    let step = updater.check_health(&mut gate, OffsetDateTime::now_utc());
    assert_eq!(step.result.unwrap(), GateDecision::Wait);
    assert_eq!(step.records[0].outcome, "pending");
    assert_eq!(updater.phase().name(), "booted");
    let step = updater.run_health_gate(&mut gate, Duration::from_millis(50));
    assert_eq!(step.result.unwrap(), GateDecision::RebootNow);
    let last = step.records.last().unwrap();
    assert_eq!(last.step, "rolled_back");
    assert!(
        last.detail["reason"].as_str().unwrap().contains("deadline"),
        "{}",
        last.detail
    );
    assert_eq!(
        world.boot().next_boot().unwrap().unwrap().id,
        "osiris-1.0.0"
    );
}

#[test]
fn passing_health_gate_blesses_the_entry() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = world.policy(&fx.cache_key);
    let mut updater = world.booted_into_new(fx, &policy);
    let mut gate = Gate {
        daemon: Probe::Pass,
        scan: Probe::Pass,
        evidence: Probe::Pass,
    };
    let step = updater.check_health(&mut gate, OffsetDateTime::now_utc());
    assert_eq!(step.result.unwrap(), GateDecision::Good);
    assert_eq!(step.records[1].step, "marked_good");
    assert_eq!(updater.phase().name(), "good");
    assert_eq!(
        world.entry_files(),
        ["osiris-1.0.0.conf", "osiris-1.1.0.conf"]
    );
    // A good entry keeps being chosen: no counter is left to run out.
    for _ in 0..4 {
        assert_eq!(
            world.boot().emulate_firmware_boot().unwrap().as_deref(),
            Some("osiris-1.1.0")
        );
    }
}

#[test]
fn boot_counting_decrements_and_an_exhausted_entry_is_not_chosen() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = Policy {
        tries: 2,
        ..world.policy(&fx.cache_key)
    };
    let mut updater = world.updater();
    world
        .accept_and_fetch(fx, &mut updater, &fx.cache_key)
        .1
        .unwrap();
    updater
        .stage(&world.importer(), &policy, OffsetDateTime::now_utc())
        .result
        .unwrap();
    // Two boots that never reach the health gate (e.g. a kernel panic).
    let mut boot = world.boot();
    assert_eq!(
        boot.emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris-1.1.0")
    );
    assert_eq!(world.entry_files()[1], "osiris-1.1.0+1-1.conf");
    assert_eq!(
        boot.emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris-1.1.0")
    );
    assert_eq!(world.entry_files()[1], "osiris-1.1.0+0-2.conf");
    assert!(boot.entries().unwrap()[1].is_bad());
    // The third power-on skips the bad entry.
    assert_eq!(
        boot.emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris-1.0.0")
    );
    let step = updater.after_boot(&policy, OffsetDateTime::now_utc());
    assert_eq!(step.result.unwrap(), GateDecision::Idle);
    assert_eq!(step.records[0].step, "boot_fallback");
    assert_eq!(updater.phase().name(), "rolled_back");
}

#[test]
fn operator_can_roll_back_a_staged_update_and_a_new_manifest_is_then_accepted() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = world.policy(&fx.cache_key);
    let mut updater = world.updater();
    world
        .accept_and_fetch(fx, &mut updater, &fx.cache_key)
        .1
        .unwrap();
    // Marking good before booting the update makes no sense and is refused.
    updater
        .stage(&world.importer(), &policy, OffsetDateTime::now_utc())
        .result
        .unwrap();
    let err = updater
        .mark_good("tester", OffsetDateTime::now_utc())
        .result
        .unwrap_err();
    assert!(
        err.to_string().contains("while the update is staged"),
        "{err}"
    );
    let step = updater.rollback("operator changed their mind", OffsetDateTime::now_utc());
    assert_eq!(step.result.unwrap(), GateDecision::RebootNow);
    assert_eq!(
        world.boot().next_boot().unwrap().unwrap().id,
        "osiris-1.0.0"
    );
    let step = updater.accept_manifest(
        &world.signed_manifest(fx, &fx.cache_key),
        &policy,
        OffsetDateTime::now_utc(),
    );
    step.result.unwrap();
    assert_eq!(updater.phase().name(), "downloaded");
}

/// Secure Boot: a manifest without `uki` is refused; with one, the UKI's store path is fetched
/// and verified like the closure, staged as `EFI/Linux/osiris_1.1.0+3.efi`, booted (the firmware
/// names `osiris_1.1.0.efi`) and rolled back to the previous entry by marking it bad; a `uki`
/// whose signed hash does not match the store file stages nothing.
#[test]
fn secure_boot_update_stages_the_signed_uki_as_a_type_2_entry() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = Policy {
        secure_boot: true,
        ..world.policy(&fx.cache_key)
    };
    let now = OffsetDateTime::now_utc();
    let plain = world.signed_manifest(fx, &fx.cache_key);
    let mut updater = world.updater();
    let step = updater.accept_manifest(&plain, &policy, now);
    let err = step.result.unwrap_err();
    assert!(err.to_string().contains("Secure Boot"), "{err}");
    assert_eq!(step.records[0].step, "manifest_refused");

    let uki_file = format!("{}/osiris_1.1.0.efi", fx.uki);
    let uki_bytes = fs::read(&uki_file).unwrap();
    let sign = |sha256: String| {
        let manifest = plain.verify(&policy.vendor_key).unwrap();
        let uki = update::Uki {
            path: uki_file.clone(),
            sha256,
        };
        SignedManifest::sign_release(&manifest, Some(&uki), "osiris-vendor-test", &world.vendor)
    };

    // The signed hash does not match the file in the (validly signed) store path: nothing staged.
    updater
        .accept_manifest(&sign("00".repeat(32)), &policy, now)
        .result
        .unwrap();
    updater
        .fetch(&world.cache(), &world.importer(), now)
        .result
        .unwrap();
    let err = updater
        .stage(&world.importer(), &policy, now)
        .result
        .unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert!(!world.tmp.path().join("esp/EFI/Linux").exists());
    assert_eq!(updater.phase().name(), "verified");

    let mut updater = {
        drop(updater);
        fs::remove_dir_all(world.tmp.path().join("state")).unwrap();
        world.updater()
    };
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&uki_bytes));
    updater
        .accept_manifest(&sign(hash), &policy, now)
        .result
        .unwrap();
    let step = updater.fetch(&world.cache(), &world.importer(), now);
    step.result.unwrap();
    let steps: Vec<String> = step
        .records
        .iter()
        .map(|r| format!("{}:{}", r.step, r.outcome))
        .collect();
    assert_eq!(
        steps,
        [
            "closure_verified:ok",
            "closure_imported:ok",
            "uki_verified:ok",
            "uki_imported:ok"
        ]
    );
    updater
        .stage(&world.importer(), &policy, now)
        .result
        .unwrap();
    let staged = world.tmp.path().join("esp/EFI/Linux/osiris_1.1.0+3.efi");
    assert_eq!(fs::read(&staged).unwrap(), uki_bytes);
    assert_eq!(
        world.boot().emulate_firmware_boot().unwrap().as_deref(),
        Some("osiris_1.1.0.efi")
    );
    drop(updater);
    let mut updater = world.updater();
    let step = updater.after_boot(&policy, now);
    assert_eq!(step.result.unwrap(), GateDecision::Wait);
    assert_eq!(updater.phase().name(), "booted");
    updater.rollback("operator test", now).result.unwrap();
    assert!(
        world
            .tmp
            .path()
            .join("esp/EFI/Linux/osiris_1.1.0+0-3.efi")
            .exists()
    );
    assert_eq!(
        world.boot().next_boot().unwrap().unwrap().id,
        "osiris-1.0.0"
    );
}

/// The UKI's store path is held to the same signatures as the closure: with its narinfo's
/// signature removed, the fetch is refused at `uki_refused`, and nothing is staged.
#[test]
fn an_unsigned_uki_store_path_is_refused_and_nothing_staged() {
    let Some(fx) = fixture() else { return };
    let world = World::new(fx);
    let policy = Policy {
        secure_boot: true,
        ..world.policy(&fx.cache_key)
    };
    let now = OffsetDateTime::now_utc();
    let narinfo = world.narinfo(&fx.uki);
    let text = fs::read_to_string(&narinfo).unwrap();
    assert!(text.contains("Sig: "), "{text}");
    let unsigned: String = text
        .lines()
        .filter(|line| !line.starts_with("Sig: "))
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(&narinfo, unsigned).unwrap();
    let uki_file = format!("{}/osiris_1.1.0.efi", fx.uki);
    let manifest = world
        .signed_manifest(fx, &fx.cache_key)
        .verify(&policy.vendor_key)
        .unwrap();
    let uki = update::Uki {
        path: uki_file.clone(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            fs::read(&uki_file).unwrap(),
        )),
    };
    let signed =
        SignedManifest::sign_release(&manifest, Some(&uki), "osiris-vendor-test", &world.vendor);
    let mut updater = world.updater();
    updater
        .accept_manifest(&signed, &policy, now)
        .result
        .unwrap();
    let step = updater.fetch(&world.cache(), &world.importer(), now);
    let err = step.result.unwrap_err();
    assert!(
        matches!(err, UpdateError::Closure(ClosureError::Unsigned { .. })),
        "{err}"
    );
    let steps: Vec<String> = step
        .records
        .iter()
        .map(|r| format!("{}:{}", r.step, r.outcome))
        .collect();
    assert_eq!(
        steps,
        [
            "closure_verified:ok",
            "closure_imported:ok",
            "uki_refused:refused"
        ]
    );
    assert_eq!(updater.phase().name(), "downloaded");
    assert!(!world.tmp.path().join("esp/EFI/Linux").exists());
    assert_eq!(world.entry_files(), ["osiris-1.0.0.conf"]);
}
