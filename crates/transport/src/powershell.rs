//! How a PowerShell script is handed to `powershell.exe` (docs/WINDOWS-PROTOCOL.md §1), the
//! same by every transport that runs one (WinRM on a remote host, the Windows agent on its own
//! machine): a fixed command line whose last argument is the encoded [`BOOTSTRAP`], and the
//! script on stdin as base64 of its UTF-8 bytes, so nothing of a script or its parameters ever
//! reaches a command line.

use base64::Engine as _;

/// The fixed PowerShell text sent as `-EncodedCommand`: it reads the base64 script from stdin and
/// runs it.
pub const BOOTSTRAP: &str = "$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
$osirisPayload = [Console]::In.ReadToEnd()
$osirisScript = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($osirisPayload.Trim()))
& ([ScriptBlock]::Create($osirisScript))
";

/// The program every script run starts.
pub const PROGRAM: &str = "powershell.exe";

/// The arguments of every script run: these, then [`encoded_bootstrap`].
pub const ARGS: [&str; 6] = [
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
];

/// The bootstrap as PowerShell's `-EncodedCommand` wants it: base64 of UTF-16LE.
pub fn encoded_bootstrap() -> String {
    let utf16: Vec<u8> = BOOTSTRAP
        .encode_utf16()
        .flat_map(|unit| unit.to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(utf16)
}

/// What goes to the script's stdin: base64 of the script's UTF-8 bytes, then `\r\n`.
pub fn stdin_payload(script: &str) -> String {
    let mut payload = base64::engine::general_purpose::STANDARD.encode(script);
    payload.push_str("\r\n");
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_decodes_to_the_documented_text() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded_bootstrap())
            .expect("base64");
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).expect("utf-16"), BOOTSTRAP);
        // Well under the 32,767-character command-line limit, whatever the script's size.
        assert!(encoded_bootstrap().len() < 2000);
        let doc = include_str!("../../../docs/WINDOWS-PROTOCOL.md");
        assert!(
            doc.contains(BOOTSTRAP.trim_end()),
            "WINDOWS-PROTOCOL.md §1 and BOOTSTRAP differ"
        );
        let line = format!("{PROGRAM} {}", ARGS.join(" "));
        assert!(doc.contains(&format!("{line} <BOOTSTRAP>")), "{line}");
    }

    #[test]
    fn the_script_travels_as_base64_then_crlf() {
        let payload = stdin_payload("Write-Output 'é'");
        let text = payload.strip_suffix("\r\n").expect("crlf");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64");
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), "Write-Output 'é'");
    }
}
