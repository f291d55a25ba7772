//! Issue 14, finding 1, LAPS: each workstation is logged into with its own LAPS-managed local
//! account, read from the lab's real Samba AD DC (whose schema `dc up` extends with the Windows
//! LAPS and legacy LAPS attributes): WS001 holds a Windows LAPS `msLAPS-Password`, WS002 a legacy
//! `ms-Mcs-AdmPwd`, WS003 none, WS004 only an `msLAPS-EncryptedPassword`. The lab's WinRM peer
//! knows each host's own account only at that host's address and logs every login attempt.
//!
//! Checked: with `laps = "prefer"` WS001 and WS002 are reached by NTLM inside HTTPS as their own
//! accounts and no host receives another's account or the domain account's NTLM; WS003 falls back
//! to the domain account by Kerberos; WS004 is not checked, with what to do. With `require`,
//! WS003 is skipped with the reason. The attack: an impostor at WS001's address (DNS pointed at
//! it) with a certificate the appliance trusts, but for another name, and on plain HTTP, receives
//! no login attempt at all. Needs root (namespaces).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{LAB_TOOLS, Lab, osiris, scan_json, text};

/// The root namespace's address on the lab bridge: the impostor's host.
const IMPOSTOR_HOST: &str = "10.77.0.1";

#[test]
fn each_workstation_gets_only_its_own_laps_account() {
    if !test_support::require_root(
        "each_workstation_gets_only_its_own_laps_account",
        &[LAB_TOOLS, &["samba", "openssl", "ldapsearch"]].concat(),
    ) {
        return;
    }
    let Some(python) = test_support::python::reference_python_with("spnego") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "4"),
            (
                "LAB_WIN_PROFILES",
                "workstation-clean workstation-clean workstation-drift workstation-clean",
            ),
            ("DC_SEED", "small"),
        ],
    );
    let env = &lab.env;
    let peers: Vec<String> = env["LAB_WIN_HOSTS"]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let names = ["ws001", "ws002", "ws003", "ws004"];
    for (name, ip) in names.iter().zip(&peers) {
        lab.dns_add(name, ip);
    }
    // The peer knows each host's own LAPS account, at that host's address only.
    let laps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("dc/laps.json")).unwrap())
            .unwrap();
    let own = |computer: &str| -> (String, String) {
        (
            laps[computer]["account"].as_str().unwrap().to_owned(),
            laps[computer]["password"].as_str().unwrap().to_owned(),
        )
    };
    let (ws1_account, ws1_password) = own("WS001");
    let (ws2_account, ws2_password) = own("WS002");
    assert_ne!(ws1_password, ws2_password);
    let host_users = serde_json::json!({
        &peers[0]: [["WS001", &ws1_account, &ws1_password]],
        &peers[1]: [["WS002", &ws2_account, &ws2_password]],
    });
    write_private(
        &lab.dir.join("win/host-users.json"),
        &host_users.to_string(),
    );

    let config = lab.dir.join("site.toml");
    let out = osiris(
        work.path(),
        &["discover", "--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The site's [directory] without the lab's configured targets (whose WinRM logins would go to
    // the same peer addresses), plus [workstations].
    let directory_only: String = std::fs::read_to_string(&config)
        .unwrap()
        .split("\n[")
        .enumerate()
        .filter(|(n, section)| *n == 0 || !section.starts_with("[target]]"))
        .map(|(n, section)| {
            if n == 0 {
                section.to_owned()
            } else {
                format!("\n[{section}")
            }
        })
        .collect();
    assert!(directory_only.contains("[directory]"));
    // `require` needs no domain account: the site gives none.
    let ws_config = |mode: &str| {
        let mut text = directory_only.clone();
        text.push_str(&format!(
            "\n[workstations]\nca_file = {:?}\nscope = \"OU=Workstations,{}\"\nlaps = \"{mode}\"\n",
            env["LAB_CA"], env["LAB_DC_BASE_DN"]
        ));
        if mode != "require" {
            text.push_str(&format!(
                "user = \"administrator@{}\"\npassword_file = {:?}\n",
                env["LAB_DC_DOMAIN"],
                lab.dir.join("dc/samba/admin-password"),
            ));
        }
        let path = lab.dir.join(format!("laps-{mode}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };

    // prefer: WS001 and WS002 by their own accounts, WS003 by Kerberos, WS004 not at all.
    let scan = scan_json(work.path(), &ws_config("prefer"));
    let summary = &scan["workstations"];
    let results = scan["results"].as_array().unwrap();
    for name in &names[..3] {
        let host = format!("{name}.lab.example");
        let mine: Vec<_> = results.iter().filter(|r| r["target"] == host).collect();
        assert!(!mine.is_empty(), "{host} was not scanned: {summary:#}");
        assert!(
            mine.iter().all(|r| r["status"] != "error"),
            "{host}: {mine:#?}"
        );
    }
    assert_eq!(summary["checked"], 3, "{summary:#}");
    assert_eq!(
        summary["drifted"], 1,
        "WS003 runs the drift profile: {summary:#}"
    );
    let ws4 = not_checked(summary, "WS004$");
    assert!(
        ws4.contains("msLAPS-EncryptedPassword") && ws4.contains("cannot decrypt"),
        "{ws4}"
    );
    assert!(
        !results.iter().any(|r| r["target"] == "ws004.lab.example"),
        "{results:#?}"
    );

    let log = peer_log(&env["LAB_WIN_LOG"]);
    let ntlm: Vec<&serde_json::Value> = log.iter().filter(|e| e["method"] == "ntlm").collect();
    let kerberos: Vec<&serde_json::Value> =
        log.iter().filter(|e| e["method"] == "kerberos").collect();
    // Every NTLM attempt went over HTTPS, named the host's own account at its own address, and
    // was accepted; the domain account never went by NTLM.
    let expected_account = |host: &str| -> Option<String> {
        if host == peers[0] {
            Some(format!("WS001\\{ws1_account}"))
        } else if host == peers[1] {
            Some(format!("WS002\\{ws2_account}"))
        } else {
            None
        }
    };
    assert!(!ntlm.is_empty());
    for entry in &ntlm {
        let host = entry["host"].as_str().unwrap();
        assert_eq!(
            entry["account"].as_str().map(str::to_owned),
            expected_account(host),
            "{entry}"
        );
        assert_eq!(entry["https"], true, "{entry}");
        assert!(entry.get("error").is_none(), "{entry}");
    }
    for host in &peers[..2] {
        assert!(ntlm.iter().any(|e| e["host"] == host.as_str()), "{host}");
        assert!(
            !kerberos.iter().any(|e| e["host"] == host.as_str()),
            "{host} got the domain account: {kerberos:#?}"
        );
    }
    // WS003 has no LAPS password: the domain account by Kerberos.
    assert!(
        kerberos.iter().any(|e| e["host"] == peers[2].as_str()
            && e["principal"] == "administrator@LAB.EXAMPLE"
            && e.get("error").is_none()),
        "{kerberos:#?}"
    );
    // WS004 was told nothing.
    assert!(
        !log.iter()
            .any(|e| e["host"] == peers[3].as_str() && e["action"] == "auth"),
        "{log:#?}"
    );

    // The attributes are confidential: the discovery account reads WS001's password through the
    // grant on the OU, while a plain domain user gets the object without it, exactly as for a
    // computer without LAPS (so a missing grant looks like "no LAPS").
    let admin = std::fs::read_to_string(lab.dir.join("dc/samba/admin-password")).unwrap();
    let plain_password = "Plain!User-9a7b3c";
    let out = Command::new("samba-tool")
        .args(["user", "create", "plainuser", plain_password])
        .args(["-H", &format!("ldap://{}", env["LAB_DC_HOST"])])
        .arg(format!("-UAdministrator%{}", admin.trim()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain_file = lab.dir.join("plain-password");
    write_private(&plain_file, plain_password);
    let ws1_dn = format!("CN=WS001,OU=Workstations,{}", env["LAB_DC_BASE_DN"]);
    let read_as = |user: &str, password_file: &Path| {
        let out = Command::new("ldapsearch")
            .args(["-LLL", "-x", "-ZZ", "-o", "ldif-wrap=no"])
            .args(["-H", &format!("ldap://{}", env["LAB_DC_HOST"])])
            .args(["-D", &format!("{user}@{}", env["LAB_DC_DOMAIN"])])
            .arg("-y")
            .arg(password_file)
            .args(["-s", "base", "-b", &ws1_dn, "(objectClass=computer)"])
            .args(["sAMAccountName", "msLAPS-Password"])
            .env("LDAPTLS_CACERT", &env["LAB_CA"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapsearch as {user}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let as_discovery = read_as("svc-osiris", Path::new(&env["LAB_DC_PASSWORD_FILE"]));
    assert!(as_discovery.contains("msLAPS-Password"), "{as_discovery}");
    let as_plain = read_as("plainuser", &plain_file);
    assert!(as_plain.contains("sAMAccountName: WS001$"), "{as_plain}");
    assert!(!as_plain.contains("msLAPS-Password"), "{as_plain}");

    // require: WS003 is skipped with the reason; the LAPS hosts are scanned as before.
    let before = log.len();
    let scan = scan_json(work.path(), &ws_config("require"));
    let summary = &scan["workstations"];
    assert_eq!(summary["checked"], 2, "{summary:#}");
    let ws3 = not_checked(summary, "WS003$");
    assert!(
        ws3.starts_with("no LAPS password readable in the directory"),
        "{ws3}"
    );
    let log = peer_log(&env["LAB_WIN_LOG"]);
    assert!(
        !log[before..]
            .iter()
            .any(|e| e["method"] == "kerberos" || e["host"] == peers[2].as_str()),
        "{:#?}",
        &log[before..]
    );

    // The attack: ws001's DNS record now points at an impostor holding a certificate from the
    // CA the appliance trusts, but for another name; it serves HTTPS and plain HTTP and would
    // accept every account the lab knows.
    let out = Command::new("samba-tool")
        .args([
            "dns",
            "delete",
            &env["LAB_DC_HOST"],
            &env["LAB_DC_DOMAIN"],
            "ws001",
            "A",
            &peers[0],
        ])
        .arg(format!("-UAdministrator%{}", admin.trim()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    lab.dns_add("ws001", IMPOSTOR_HOST);
    let impostor_dir = work.path().join("impostor");
    std::fs::create_dir(&impostor_dir).unwrap();
    let impostor_users = format!(
        "LAB:administrator:{}\nWS001:{ws1_account}:{ws1_password}\n",
        admin.trim()
    );
    let log_path = impostor_dir.join("peer.jsonl");
    for (ports, label) in [
        (["5985", "5986"], "HTTPS and HTTP"),
        (["5985", "-1"], "HTTP only"),
    ] {
        let impostor = Impostor::start(
            &python,
            &lab.dir,
            &impostor_dir,
            &impostor_users,
            &log_path,
            ports,
        );
        let scan = scan_json(work.path(), &ws_config("prefer"));
        drop(impostor);
        let results = scan["results"].as_array().unwrap();
        assert!(
            results
                .iter()
                .filter(|r| r["target"] == "ws001.lab.example")
                .all(|r| r["status"] == "error"),
            "{label}: {results:#?}"
        );
        let seen = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(
            !seen.contains("\"auth\"")
                && !seen.contains("\"user\"")
                && !seen.contains("\"account\""),
            "{label}: the impostor received a login attempt:\n{seen}"
        );
        if label == "HTTP only" {
            // Nothing answers HTTPS there: the host is offline to the appliance.
            let ws1 = not_checked(&scan["workstations"], "WS001$");
            assert!(ws1.starts_with("offline"), "{ws1}");
        }
    }
    assert!(
        !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains(&ws1_password)
    );
}

/// The reason `account` was not checked, from a workstation summary.
fn not_checked(summary: &serde_json::Value, account: &str) -> String {
    summary["not_checked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["account"] == account)
        .unwrap_or_else(|| panic!("{account} is not in not_checked: {summary:#}"))["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn peer_log(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The lab WinRM peer at [`IMPOSTOR_HOST`], its certificate from the lab CA for a name that is not
/// the workstation's; killed on drop.
struct Impostor(Child);

impl Impostor {
    fn start(
        python: &Path,
        lab_dir: &Path,
        dir: &Path,
        users: &str,
        log: &Path,
        [http, https]: [&str; 2],
    ) -> Impostor {
        let pki = lab_dir.join("pki");
        let openssl = |args: &[&str]| test_support::smtp::openssl_in(dir, args);
        if !dir.join("cert.pem").exists() {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "req.csr",
                "-subj",
                "/CN=impostor.lab.test",
            ]);
            std::fs::write(
                dir.join("ext"),
                "subjectAltName=DNS:impostor.lab.test\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                "req.csr",
                "-CA",
                pki.join("ca.pem").to_str().unwrap(),
                "-CAkey",
                pki.join("ca-key.pem").to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext",
                "-out",
                "cert.pem",
            ]);
        }
        write_private(&dir.join("users"), users);
        let mut child = Command::new(python)
            .arg(test_support::winrm::FAKEWINRM_SCRIPT)
            .args([
                "--listen",
                IMPOSTOR_HOST,
                "--http-port",
                http,
                "--https-port",
                https,
            ])
            .args(["--cert", "cert.pem", "--key", "key.pem", "--users", "users"])
            .arg("--fixtures")
            .arg(Path::new(test_support::winrm::FAKEWINRM_SCRIPT).with_file_name("fixtures"))
            .arg("--log")
            .arg(log)
            .args(["--default-profile", "workstation-clean"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            // Its TLS handshakes with the appliance fail by design; their tracebacks stay here.
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("READY"), "impostor: {line}");
        Impostor(child)
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
