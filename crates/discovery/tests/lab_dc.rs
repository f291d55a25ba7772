//! Discovery against a real Samba AD DC brought up by `vm-tests/lab/dc/dc` (root only; skips
//! loudly otherwise, fails under `OSIRIS_REQUIRE_ROOT=1`), compared with the seed's `expected.json`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "test helpers outside #[test] functions; skips and timings go to stderr"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use discovery::{
    BindPassword, ComputerClass, DirectoryConfig, DiscoveryError, InventoryChange, TlsMode,
    discover, search_computer_names,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The DC uses fixed names (namespace, bridge, address): one lab at a time in this binary.
static LAB_LOCK: Mutex<()> = Mutex::new(());

const DC_BRIDGE: &str = "br-tdc";
const DC_BRIDGE_ADDR: &str = "10.78.0.1/24";
const DC_ADDR: &str = "10.78.0.2";
const DC_NETNS: &str = "tlab-tdc";

struct Lab {
    _dir: tempfile::TempDir,
    lab_dir: PathBuf,
    seed: &'static str,
    env: BTreeMap<String, String>,
    expected: serde_json::Value,
}

impl Lab {
    fn up(seed: &'static str) -> Option<Lab> {
        if !test_support::require_root(
            &format!("lab DC test (seed {seed})"),
            &["samba", "samba-tool", "ip", "openssl"],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let lab_dir = dir.path().join("lab");
        let mut lab = Lab {
            _dir: dir,
            lab_dir,
            seed,
            env: BTreeMap::new(),
            expected: serde_json::Value::Null,
        };
        let started = Instant::now();
        let status = lab
            .command("up")
            .status()
            .expect("running vm-tests/lab/dc/dc up");
        assert!(status.success(), "dc up failed");
        eprintln!(
            "dc up (seed {seed}) took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let dc_dir = lab.lab_dir.join("dc");
        let env_text = std::fs::read_to_string(dc_dir.join("dc.env")).unwrap();
        lab.env = env_text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        lab.expected =
            serde_json::from_str(&std::fs::read_to_string(dc_dir.join("expected.json")).unwrap())
                .unwrap();
        Some(lab)
    }

    fn command(&self, action: &str) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/lab/dc/dc");
        let mut command = Command::new(script);
        command
            .arg(action)
            .env("LAB_DIR", &self.lab_dir)
            .env("DC_BRIDGE", DC_BRIDGE)
            .env("DC_BRIDGE_ADDR", DC_BRIDGE_ADDR)
            .env("DC_ADDR", DC_ADDR)
            .env("DC_NETNS", DC_NETNS)
            .env("DC_SEED", self.seed)
            .env_remove("LAB_CA")
            .env_remove("LAB_CA_KEY");
        command
    }

    fn down(&self) {
        let status = self.command("down").status().expect("running dc down");
        assert!(status.success(), "dc down failed");
    }

    fn config(&self, tls: TlsMode) -> DirectoryConfig {
        let password = std::fs::read_to_string(&self.env["LAB_DC_PASSWORD_FILE"]).unwrap();
        DirectoryConfig {
            domain: self.env["LAB_DC_DOMAIN"].clone(),
            dc: Some(self.env["LAB_DC_HOST"].clone()),
            resolver: None,
            base_dn: Some(self.env["LAB_DC_BASE_DN"].clone()),
            bind_user: self.env["LAB_DC_USER"].clone(),
            bind_password: BindPassword::new(password.trim_end().to_owned()),
            tls,
            ca_pem: Some(std::fs::read(&self.env["LAB_CA"]).unwrap()),
            stale_after_days: 90,
            page_size: 500,
            timeout: Duration::from_secs(10),
        }
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::parse(self.expected["now"].as_str().unwrap(), &Rfc3339).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.command("down").status();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn class_name(class: ComputerClass) -> &'static str {
    class.as_str()
}

/// Checks an inventory against expected.json: same names, classes, flags and count.
fn assert_matches_expected(lab: &Lab, inventory: &discovery::Inventory) {
    let expected = lab.expected["computers"].as_array().unwrap();
    let want: BTreeMap<String, (String, bool, bool, bool)> = expected
        .iter()
        .map(|c| {
            (
                c["sam_account_name"].as_str().unwrap().to_owned(),
                (
                    c["class"].as_str().unwrap().to_owned(),
                    c["disabled"].as_bool().unwrap(),
                    c["stale"].as_bool().unwrap(),
                    c["duplicate_dns_host_name"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    let got: BTreeMap<String, (String, bool, bool, bool)> = inventory
        .computers
        .iter()
        .map(|c| {
            (
                c.sam_account_name.clone(),
                (
                    class_name(c.class).to_owned(),
                    c.disabled,
                    c.stale,
                    c.duplicate_dns_host_name,
                ),
            )
        })
        .collect();
    assert_eq!(
        inventory.computers.len(),
        lab.expected["count"].as_u64().unwrap() as usize
    );
    assert_eq!(
        got.len(),
        inventory.computers.len(),
        "sAMAccountNames are unique"
    );
    let mismatches: Vec<_> = want
        .iter()
        .filter(|(name, flags)| got.get(*name) != Some(flags))
        .map(|(name, flags)| format!("{name}: want {flags:?}, got {:?}", got.get(name)))
        .chain(
            got.keys()
                .filter(|name| !want.contains_key(*name))
                .map(|name| format!("{name}: not seeded")),
        )
        .collect();
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn small_seed_discovery_matches_expected_over_starttls_ldaps_and_srv() {
    let _guard = LAB_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(lab) = Lab::up("small") else { return };
    let rt = runtime();

    let ldaps = rt
        .block_on(discover(&lab.config(TlsMode::Ldaps), lab.now()))
        .unwrap();
    assert_matches_expected(&lab, &ldaps);
    assert_eq!(ldaps.fetched_pages, 1);
    assert_eq!(ldaps.duplicate_dns_host_names, ["dup.lab.example"]);
    let hostile = ldaps
        .computers
        .iter()
        .find(|c| c.name == "HOSTILE2")
        .unwrap();
    assert!(hostile.has_control_characters);
    assert_eq!(
        hostile.operating_system.as_deref(),
        Some("Windows 10 Pro\\u{1b}[2J\\u{7}\\u{d}\\u{a}Edition")
    );
    let dc = ldaps.computers.iter().find(|c| c.name == "DC1").unwrap();
    assert_eq!(dc.class, ComputerClass::DomainController);

    // StartTLS with small pages gives the same inventory, fetched in several pages.
    let mut starttls_config = lab.config(TlsMode::StartTls);
    starttls_config.page_size = 10;
    let starttls = rt.block_on(discover(&starttls_config, lab.now())).unwrap();
    assert_eq!(starttls.computers, ldaps.computers);
    assert_eq!(
        starttls.fetched_pages as usize,
        ldaps.computers.len().div_ceil(10)
    );

    // No DC configured: located through the DC's own DNS (SRV + A) and verified by name.
    let mut srv_config = lab.config(TlsMode::Ldaps);
    srv_config.dc = None;
    srv_config.resolver = Some(SocketAddr::new(DC_ADDR.parse().unwrap(), 53));
    let by_srv = rt.block_on(discover(&srv_config, lab.now())).unwrap();
    assert_eq!(by_srv.domain_controller, "dc1.lab.example:636");
    assert_eq!(by_srv.computers, ldaps.computers);

    // Diff against an inventory missing one computer and with one OS changed.
    let mut older = ldaps.clone();
    older.computers.retain(|c| c.name != "WS001");
    let ws002 = older
        .computers
        .iter_mut()
        .find(|c| c.name == "WS002")
        .unwrap();
    ws002.operating_system = Some("Windows 7 Professional".to_owned());
    let changes = ldaps.diff(&older);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.contains(&InventoryChange::Appeared {
        sam_account_name: "WS001$".to_owned(),
        class: ComputerClass::Workstation
    }));
    assert!(changes.iter().any(|change| matches!(change,
        InventoryChange::OsChanged { sam_account_name, new, .. }
            if sam_account_name == "WS002$" && new.0.as_deref() == Some("Windows 10 Enterprise"))));
    lab.down();
}

/// Holds the lab bridge open across `dc down`, so the stopped DC's address stays on-link and a
/// connection attempt never leaves the machine through the default route.
struct BridgeGuard;

impl BridgeGuard {
    fn create() -> BridgeGuard {
        let run = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().unwrap();
            assert!(status.success(), "ip {args:?}");
        };
        let _ = Command::new("ip").args(["link", "del", DC_BRIDGE]).status();
        run(&["link", "add", DC_BRIDGE, "type", "bridge"]);
        run(&["addr", "add", DC_BRIDGE_ADDR, "dev", DC_BRIDGE]);
        run(&["link", "set", DC_BRIDGE, "up"]);
        BridgeGuard
    }
}

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", DC_BRIDGE]).status();
    }
}

#[test]
fn wrong_password_untrusted_ca_hostile_filters_and_dc_down() {
    let _guard = LAB_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !test_support::require_root(
        "wrong_password_untrusted_ca_hostile_filters_and_dc_down",
        &["samba", "samba-tool", "ip", "openssl"],
    ) {
        return;
    }
    let _bridge = BridgeGuard::create();
    let Some(lab) = Lab::up("small") else { return };
    let rt = runtime();

    // Wrong password: AD's own text, including the sub-code.
    let mut wrong = lab.config(TlsMode::StartTls);
    wrong.bind_password = BindPassword::new("not-the-password".to_owned());
    let err = rt.block_on(discover(&wrong, lab.now())).unwrap_err();
    assert!(
        matches!(err, DiscoveryError::InvalidCredentials { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("data 52e"), "{message}");
    assert!(message.contains("svc-osiris@lab.example"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");

    // A CA that did not issue the DC's certificate: TLS error, over both modes.
    let other_ca = lab.lab_dir.join("other-ca.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=someone else", "-keyout"])
        .arg(lab.lab_dir.join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for tls in [TlsMode::Ldaps, TlsMode::StartTls] {
        let mut untrusted = lab.config(tls);
        untrusted.ca_pem = Some(std::fs::read(&other_ca).unwrap());
        let err = rt.block_on(discover(&untrusted, lab.now())).unwrap_err();
        assert!(
            matches!(err, DiscoveryError::Tls { .. }),
            "{tls:?}: {err:?}"
        );
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    }
    // Garbage instead of a CA bundle.
    let mut garbage = lab.config(TlsMode::Ldaps);
    garbage.ca_pem = Some(b"not a pem".to_vec());
    let err = rt.block_on(discover(&garbage, lab.now())).unwrap_err();
    assert!(matches!(err, DiscoveryError::InvalidCa { .. }), "{err:?}");

    // Hostile values in a real filter match exactly the object that holds them.
    let cfg = lab.config(TlsMode::Ldaps);
    let search = |attribute: &str, value: &str| {
        rt.block_on(search_computer_names(&cfg, attribute, value))
            .unwrap()
    };
    assert_eq!(search("description", "*)(cn=*"), ["HOSTILE1"]);
    assert_eq!(search("description", "x*)(cn=*y"), ["DECOY1"]);
    assert_eq!(search("description", "*"), Vec::<String>::new());
    assert_eq!(
        search("operatingSystem", "Windows 10 Pro (*)"),
        ["HOSTILE1"]
    );
    assert_eq!(
        search("operatingSystem", "Windows Server 2022 \\ Standard"),
        ["HOSTILE3"]
    );
    assert_eq!(
        search("description", "line1\nline2\x1b[31m\x7f"),
        ["HOSTILE2"]
    );
    assert_eq!(search("cn", "WS00*"), Vec::<String>::new());
    assert_eq!(search("cn", "WS001"), ["WS001"]);
    let err = rt
        .block_on(search_computer_names(&cfg, "cn=*)(x", "y"))
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Config { .. }), "{err:?}");

    // DC down: unreachable, quickly, naming the address.
    let mut down_cfg = lab.config(TlsMode::Ldaps);
    down_cfg.timeout = Duration::from_secs(3);
    lab.down();
    let started = Instant::now();
    let err = rt.block_on(discover(&down_cfg, lab.now())).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(DC_ADDR), "{err}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");

    // Nothing listening on the port at all: refused at once.
    let mut refused = down_cfg.clone();
    refused.dc = Some("127.0.0.1".to_owned());
    let started = Instant::now();
    let err = rt.block_on(discover(&refused, lab.now())).unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:636"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn big_seed_pages_past_one_thousand() {
    let _guard = LAB_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(lab) = Lab::up("big") else { return };
    let rt = runtime();
    let mut cfg = lab.config(TlsMode::StartTls);
    cfg.page_size = 1000;
    let inventory = rt.block_on(discover(&cfg, lab.now())).unwrap();
    assert!(inventory.computers.len() > 1000);
    assert_eq!(
        inventory.fetched_pages as usize,
        inventory.computers.len().div_ceil(1000)
    );
    assert_matches_expected(&lab, &inventory);
    lab.down();
}
