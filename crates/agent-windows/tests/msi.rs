//! The MSI (`scripts/build-agent-msi`, msitools' wixl) holds the cross-built agent at
//! Program Files\OsirisCare\Agent and registers the OsirisAgent service; signed with a throwaway
//! self-signed certificate (passphrase from a 0600 file), it verifies with `osslsigncode verify`,
//! and a changed byte does not.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use test_support::wine::{agent_exe, require_tools};

const TOOLS: &[&str] = &["wixl", "msiinfo", "msiextract", "osslsigncode", "openssl"];

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent-msi")
}

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn table(msi: &Path, name: &str) -> String {
    let out = run(Command::new("msiinfo").arg("export").arg(msi).arg(name));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_msi_installs_the_agent_as_a_service_and_signs() {
    let test = "the_msi_installs_the_agent_as_a_service_and_signs";
    if !require_tools(test, TOOLS) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let msi = work.path().join("osiris-agent.msi");
    run(Command::new(script())
        .arg("--exe")
        .arg(&exe)
        .args(["--version", "1.2.3", "--out"])
        .arg(&msi));
    let files = table(&msi, "File");
    let size = std::fs::metadata(&exe).unwrap().len();
    assert!(
        files.contains(&format!(
            "OsirisAgentExe\tAgentExe\tosiris-agent.exe\t{size}\t"
        )),
        "{files}"
    );
    let directories = table(&msi, "Directory");
    for row in [
        "INSTALLDIR\tOsirisCareFolder\tAgent",
        "OsirisCareFolder\tProgramFiles64Folder\tOsirisCare",
    ] {
        assert!(directories.contains(row), "{directories}");
    }
    // Own process (16), automatic start (2), normal error control (1), LocalSystem (no account).
    let services = table(&msi, "ServiceInstall");
    assert!(
        services.contains("OsirisAgentService\tOsirisAgent\tOsirisCare Agent\t16\t2\t1\t\t\t\t\trun --service\tAgentExe\t"),
        "{services}"
    );
    // Start on install (1), stop on install and uninstall (2 + 32), delete on uninstall (128).
    let control = table(&msi, "ServiceControl");
    assert!(
        control.contains("OsirisAgentControl\tOsirisAgent\t163\t\t1\tAgentExe"),
        "{control}"
    );
    let property = table(&msi, "Property");
    assert!(property.contains("ProductVersion\t1.2.3"), "{property}");
    let listed = run(Command::new("msiextract").arg("--list").arg(&msi));
    assert_eq!(
        String::from_utf8(listed.stdout).unwrap().trim(),
        "OsirisCare/Agent/osiris-agent.exe"
    );
    // Unsigned: osslsigncode finds no signature.
    let unsigned = Command::new("osslsigncode")
        .args(["verify", "-in"])
        .arg(&msi)
        .output()
        .unwrap();
    assert!(!unsigned.status.success());

    // A throwaway code-signing certificate whose key is encrypted under a passphrase in a file.
    let key = work.path().join("key.pem");
    let cert = work.path().join("cert.pem");
    let pass = work.path().join("pass");
    std::fs::write(&pass, "throwaway passphrase").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-days", "2", "-subj"])
        .args([
            "/CN=OsirisCare test code signing",
            "-addext",
            "extendedKeyUsage=codeSigning",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .arg("-passout")
        .arg(format!("file:{}", pass.display())));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let signed = work.path().join("signed.msi");
    let sign = |out: &Path| {
        Command::new(script())
            .arg("--exe")
            .arg(&exe)
            .args(["--version", "1.2.3", "--out"])
            .arg(out)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--key-pass-file")
            .arg(&pass)
            .output()
            .unwrap()
    };
    // A key readable by others is refused before anything is signed.
    let refused = sign(&signed);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must be 0600"));
    assert!(!signed.exists());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sign(&signed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |file: &Path| {
        Command::new("osslsigncode")
            .args(["verify", "-in"])
            .arg(file)
            .arg("-CAfile")
            .arg(&cert)
            .output()
            .unwrap()
    };
    let verified = verify(&signed);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Signature verification: ok"));
    // The exe inside is signed too.
    let extracted = work.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run(Command::new("msiextract")
        .arg("-C")
        .arg(&extracted)
        .arg(&signed));
    assert!(
        verify(&extracted.join("OsirisCare/Agent/osiris-agent.exe"))
            .status
            .success()
    );
    // One changed byte in the signed MSI's content: the signature no longer verifies.
    let mut bytes = std::fs::read(&signed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    let tampered = work.path().join("tampered.msi");
    std::fs::write(&tampered, bytes).unwrap();
    assert!(!verify(&tampered).status.success());
}
