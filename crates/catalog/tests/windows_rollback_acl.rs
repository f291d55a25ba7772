//! Issue 14 finding 9: Windows rollback state lives under `HKLM:\SOFTWARE\OsirisCare`, which
//! inherits from `HKLM\SOFTWARE` (readable by Users). The prelude applies a protected access list
//! (SYSTEM and Administrators only) before every write. No Windows host runs here, so this checks
//! the scripts themselves: the access list is the intended one, every write to the key goes
//! through the function that applies it, and no other script touches the key. What only a real
//! Windows host confirms: that `Set-Acl` with this SDDL leaves Users without read access
//! (`(Get-Acl HKLM:\SOFTWARE\OsirisCare).Sddl`), and that it succeeds for the WinRM admin.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;

fn powershell_scripts(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            powershell_scripts(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "ps1") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn the_rollback_key_is_protected_before_every_write() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let prelude = std::fs::read_to_string(root.join("windows/lib/prelude.ps1")).unwrap();
    // The access list: protected (no inheritance), SYSTEM and BUILTIN\Administrators, full
    // control, inherited by subkeys; nothing else.
    assert!(
        prelude.contains("$OsirisKeySddl = 'D:P(A;OICI;KA;;;SY)(A;OICI;KA;;;BA)'"),
        "the SDDL changed"
    );
    // Every function that writes under the key calls Protect-OsirisKey first.
    let writer = "function Save-OsirisState";
    let start = prelude
        .find(writer)
        .unwrap_or_else(|| panic!("{writer} is gone"));
    let body = &prelude[start..];
    let protect = body.find("Protect-OsirisKey").unwrap();
    let write = body.find("New-Item").unwrap();
    assert!(protect < write, "{writer} writes before protecting the key");
    // Writes to the key happen only in those functions (and Protect-OsirisKey itself).
    let mut scripts = Vec::new();
    powershell_scripts(&root, &mut scripts);
    assert!(
        scripts.len() > 5,
        "found only {} PowerShell scripts",
        scripts.len()
    );
    for (path, text) in &scripts {
        if path.ends_with("lib/prelude.ps1") {
            continue;
        }
        for (idx, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            assert!(
                !code.contains("OsirisCare")
                    && !code.contains("$OsirisRootKey")
                    && !code.contains("$OsirisRollbackRoot"),
                "{path}:{}: writes under the OsirisCare key outside the prelude: {line}",
                idx + 1
            );
        }
    }
}
