//! The lab WinRM peer against independent clients from PyPI (pywinrm, pypsrp).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use test_support::winrm::{FakeWinrm, FakeWinrmConfig};

/// Runs `hostname` and osiris-shaped batches with pywinrm's Protocol API; prints one JSON document.
const PYWINRM_CLIENT: &str = r##"
import base64, json, sys
from winrm.protocol import Protocol
cfg = json.loads(sys.argv[1])
BOOT = ("$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"
        "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false\n"
        "$osirisPayload = [Console]::In.ReadToEnd()\n"
        "$osirisScript = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($osirisPayload.Trim()))\n"
        "& ([ScriptBlock]::Create($osirisScript))")
kw = dict(transport=cfg["transport"], username=cfg["user"], password=cfg["password"])
if cfg["url"].startswith("https"):
    kw.update(ca_trust_path=cfg["ca"], server_cert_validation="validate")
else:
    kw.update(message_encryption="never" if cfg["transport"] == "basic" or cfg.get("plaintext") else "always")
out = {}
try:
    p = Protocol(cfg["url"], **kw)
    shell = p.open_shell(codepage=65001, noprofile=True)
    def run(command, args=(), stdin=None):
        c = p.run_command(shell, command, list(args))
        if stdin is not None:
            half = len(stdin) // 2
            p.send_command_input(shell, c, stdin[:half], end=False)
            p.send_command_input(shell, c, stdin[half:], end=True)
        so, se, rc = p.get_command_output(shell, c)
        p.cleanup_command(shell, c)
        return {"stdout": so.decode(), "stderr": se.decode(), "rc": rc}
    out["hostname"] = run("hostname")
    out["unknown"] = run("frobnicate")
    enc = base64.b64encode(BOOT.encode("utf-16-le")).decode()
    for i, (phase, checks) in enumerate(cfg["batches"]):
        inp = base64.b64encode(json.dumps({"osiris": 1, "phase": phase, "checks": checks}).encode()).decode()
        script = ("# osiris powershell batch v1\n$OsirisInput = ConvertFrom-Json ([System.Text.Encoding]::UTF8"
                  ".GetString([System.Convert]::FromBase64String('" + inp + "')))\n$OsirisBodies = @{}\n")
        r = run("powershell.exe", ["-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
                "-EncodedCommand", enc], base64.b64encode(script.encode()).decode() + "\r\n")
        r["doc"] = json.loads(r["stdout"])
        out["batch%d" % i] = r
    p.close_shell(shell)
except Exception as err:
    out["error"] = type(err).__name__ + ": " + str(err)
print(json.dumps(out))
"##;

/// Runs `whoami` through pypsrp's WinRS client.
const PYPSRP_CLIENT: &str = r#"
import json, sys
from pypsrp.wsman import WSMan
from pypsrp.shell import Process, SignalCode, WinRS
cfg = json.loads(sys.argv[1])
wsman = WSMan("127.0.0.1", port=cfg["port"], ssl=False, auth="ntlm", encryption="always",
              username=cfg["user"], password=cfg["password"])
with wsman, WinRS(wsman) as shell:
    process = Process(shell, "whoami")
    process.invoke()
    process.signal(SignalCode.CTRL_C)
print(json.dumps({"stdout": process.stdout.decode(), "rc": process.rc}))
"#;

/// Drives one NTLM handshake by hand with pyspnego over HTTPS, so the test chooses the channel binding
/// and whether the Type 3 message travels on the Type 1's TCP connection; prints one JSON document.
const RAW_NTLM_CLIENT: &str = r#"
import base64, json, sys, requests, spnego
from spnego.channel_bindings import GssChannelBindings
cfg = json.loads(sys.argv[1])
CREATE = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
          'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
          'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
          '<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action>'
          '<a:MessageID>uuid:11111111-1111-1111-1111-111111111111</a:MessageID>'
          '<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>'
          '</s:Header><s:Body><rsp:Shell xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
          '<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>'
          '</rsp:Shell></s:Body></s:Envelope>')
def attempt(binding_hex, same_connection):
    cbt = None
    if binding_hex is not None:
        cbt = GssChannelBindings(application_data=b"tls-server-end-point:" + bytes.fromhex(binding_hex))
    ctx = spnego.client(cfg["user"], cfg["password"], protocol="ntlm", channel_bindings=cbt)
    first = requests.Session()
    r1 = first.post(cfg["url"], data=b"", verify=cfg["ca"],
                    headers={"Authorization": "Negotiate " + base64.b64encode(ctx.step()).decode()})
    t3 = ctx.step(base64.b64decode(r1.headers["WWW-Authenticate"].split(" ", 1)[1]))
    second = first if same_connection else requests.Session()
    r2 = second.post(cfg["url"], data=CREATE.encode(), verify=cfg["ca"],
                     headers={"Authorization": "Negotiate " + base64.b64encode(t3).decode(),
                              "Content-Type": "application/soap+xml;charset=UTF-8"})
    return {"status": r2.status_code, "created": b"CreateResponse" in r2.content}
print(json.dumps({name: attempt(*case) for name, case in cfg["cases"].items()}))
"#;

/// Replays one pypsrp recording with pypsrp's WinRS client, as pypsrp's own tests drive it.
const PYPSRP_REPLAY_CLIENT: &str = r#"
import json, sys
from pypsrp.wsman import WSMan
from pypsrp.shell import Process, SignalCode, WinRS
cfg = json.loads(sys.argv[1])
name = cfg["name"]
wsman = WSMan("127.0.0.1", port=cfg["port"], ssl=False, auth="basic", encryption="never",
              username="replay", password="replay")
with wsman, WinRS(wsman, codepage=65001 if name == "test_winrs_unicode" else None) as shell:
    if name == "test_winrs_standard":
        process = Process(shell, "cmd.exe", ["/c", "echo", "hi"])
        process.invoke()
    elif name == "test_winrs_stderr_rc":
        process = Process(shell, "cmd.exe", ["/c echo out && echo err>&2 && exit 1"])
        process.invoke()
    elif name == "test_winrs_send":
        process = Process(shell, "powershell.exe", ["-"])
        process.begin_invoke()
        process.send(b'Write-Host "output 1";', end=False)
        process.send(b'Write-Host "output 2";')
        process.end_invoke()
    else:
        process = Process(shell, "powershell.exe", ["Write-Host こんにちは"])
        process.invoke()
    process.signal(SignalCode.CTRL_C)
print(json.dumps({"stdout": process.stdout.decode("utf-8"), "stderr": process.stderr.decode("utf-8"),
                  "rc": process.rc}))
"#;

fn write_fixtures(dir: &Path) {
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let runbook = json!({"id": "WIN-FW-001", "provenance": "test fixture",
        "states": {"compliant": {"output": {"profiles": [{"name": "Domain", "enabled": true}]}},
                   "drift": {"output": {"profiles": [{"name": "Domain", "enabled": false}]}}},
        "remediate": {"to": "compliant", "output": {"changed": true}},
        "rollback": {"to": "drift", "output": {"changed": true}}});
    std::fs::write(dir.join("runbooks/WIN-FW-001.json"), runbook.to_string()).unwrap();
    let denied = json!({"id": "WIN-BL-001", "provenance": "test fixture",
        "states": {"compliant": {"error": "Get-BitLockerVolume : Access is denied."}}});
    std::fs::write(dir.join("runbooks/WIN-BL-001.json"), denied.to_string()).unwrap();
    std::fs::write(dir.join("runbooks/WIN-BAD-001.json"), "{\"id\": ").unwrap();
    let profile = json!({"platform": "windows-server", "states": {"WIN-FW-001": "drift"}});
    std::fs::write(dir.join("profiles/server-drift.json"), profile.to_string()).unwrap();
}

fn start(fixtures: &Path) -> Option<FakeWinrm> {
    start_with(fixtures, false)
}

fn start_with(fixtures: &Path, ntlm_any_connection: bool) -> Option<FakeWinrm> {
    write_fixtures(fixtures);
    FakeWinrm::start(&FakeWinrmConfig {
        fixtures: fixtures.to_owned(),
        default_profile: "server-drift".to_owned(),
        ntlm_any_connection,
        replay: None,
        replay_skip: false,
        shell_idle_timeout: None,
    })
    .unwrap()
}

fn raw_ntlm(peer: &FakeWinrm, cases: &Value) -> Value {
    let cfg = json!({"url": format!("https://127.0.0.1:{}/wsman", peer.https_port()),
        "user": format!("{}\\{}", FakeWinrm::DOMAIN, FakeWinrm::USER), "password": FakeWinrm::PASSWORD,
        "ca": peer.ca_path(), "cases": cases});
    run_python(peer, RAW_NTLM_CLIENT, &cfg)
}

fn run_python(peer: &FakeWinrm, script: &str, cfg: &Value) -> Value {
    let output = Command::new(peer.python())
        .args(["-c", script, &cfg.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

fn pywinrm(peer: &FakeWinrm, url: &str, transport: &str, password: &str) -> Value {
    let detect = json!(["detect", [{"id": "WIN-FW-001", "params": {"max_age_days": 35}},
                                   {"id": "WIN-BL-001", "params": {}},
                                   {"id": "WIN-NOPE-999", "params": {}},
                                   {"id": "WIN-BAD-001", "params": {}}]]);
    let remediate = json!(["remediate", [{"id": "WIN-FW-001", "params": {}}]]);
    let cfg = json!({"url": url, "transport": transport,
        "user": format!("{}\\{}", FakeWinrm::DOMAIN, FakeWinrm::USER), "password": password,
        "ca": peer.ca_path(), "batches": [detect, remediate, detect]});
    run_python(peer, PYWINRM_CLIENT, &cfg)
}

/// Checks what every transport must give: the answers the fixtures say, and a remediation that sticks.
fn assert_batches(res: &Value) {
    assert_eq!(res.get("error"), None, "{res}");
    assert_eq!(res["hostname"]["stdout"], "WIN-LOCAL\r\n");
    assert_eq!(res["hostname"]["rc"], 0);
    assert_eq!(res["unknown"]["rc"], 1);
    assert!(
        res["unknown"]["stderr"]
            .as_str()
            .unwrap()
            .starts_with("'frobnicate' is not recognized as an internal or external command")
    );
    let first = &res["batch0"]["doc"];
    assert_eq!(first["phase"], "detect");
    assert_eq!(first["results"][0]["id"], "WIN-FW-001");
    assert_eq!(
        first["results"][0]["output"]["profiles"][0]["enabled"],
        false
    );
    assert_eq!(
        first["results"][1],
        json!({"id": "WIN-BL-001", "ok": false, "error": "Get-BitLockerVolume : Access is denied."})
    );
    assert_eq!(first["results"][2]["ok"], false);
    assert!(
        first["results"][2]["error"]
            .as_str()
            .unwrap()
            .starts_with("The term 'WIN-NOPE-999' is not recognized")
    );
    assert_eq!(first["results"][3]["ok"], false);
    assert!(
        first["results"][3]["error"]
            .as_str()
            .unwrap()
            .contains("WIN-BAD-001.json is unreadable or not JSON"),
        "{first}"
    );
    assert_eq!(first["results"].as_array().unwrap().len(), 4);
    assert_eq!(
        res["batch1"]["doc"]["results"][0],
        json!({"id": "WIN-FW-001", "ok": true, "output": {"changed": true}})
    );
    assert_eq!(
        res["batch2"]["doc"]["results"][0]["output"]["profiles"][0]["enabled"],
        true
    );
    assert_eq!(res["batch2"]["rc"], 0);
}

#[test]
fn pywinrm_ntlm_sealed_over_http_runs_commands_and_batches() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/wsman", peer.http_port());
    let res = pywinrm(&peer, &url, "ntlm", FakeWinrm::PASSWORD);
    assert_batches(&res);
    let log = peer.log_entries().unwrap();
    let sends: Vec<&Value> = log.iter().filter(|e| e.get("phase").is_some()).collect();
    assert_eq!(sends.len(), 3);
    assert_eq!(
        sends[0]["check_ids"],
        json!(["WIN-FW-001", "WIN-BL-001", "WIN-NOPE-999", "WIN-BAD-001"])
    );
    assert_eq!(sends[1]["phase"], "remediate");
    assert!(
        sends[0]["script"]
            .as_str()
            .unwrap()
            .starts_with("# osiris powershell batch v1\n$OsirisInput = ")
    );
    assert!(sends.iter().all(|e| e["user"] == "LAB\\administrator"));
    let commands: Vec<&Value> = log.iter().filter(|e| e["action"] == "Command").collect();
    assert!(
        commands[2]["encoded_script"]
            .as_str()
            .unwrap()
            .contains("[Console]::In.ReadToEnd()")
    );
}

#[test]
fn pywinrm_ntlm_over_https_with_channel_binding_runs_batches() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/wsman", peer.https_port());
    assert_batches(&pywinrm(&peer, &url, "ntlm", FakeWinrm::PASSWORD));
}

#[test]
fn pywinrm_basic_over_https_runs_batches() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/wsman", peer.https_port());
    assert_batches(&pywinrm(&peer, &url, "basic", FakeWinrm::PASSWORD));
}

#[test]
fn wrong_password_and_basic_over_http_are_refused() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let http = format!("http://127.0.0.1:{}/wsman", peer.http_port());
    let res = pywinrm(&peer, &http, "ntlm", "wrong");
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("InvalidCredentialsError"),
        "{res}"
    );
    let res = pywinrm(&peer, &http, "basic", FakeWinrm::PASSWORD);
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("InvalidCredentialsError"),
        "{res}"
    );
    let https = format!("https://127.0.0.1:{}/wsman", peer.https_port());
    let res = pywinrm(&peer, &https, "basic", "wrong");
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("InvalidCredentialsError"),
        "{res}"
    );
    let errors: Vec<String> = peer
        .log_entries()
        .unwrap()
        .iter()
        .filter_map(|e| e["error"].as_str().map(str::to_owned))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("NTLM authentication failed")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("Basic auth refused over HTTP")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("Basic auth failed")),
        "{errors:?}"
    );
    assert!(
        !peer
            .log_entries()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "Create")
    );
}

#[test]
fn pypsrp_winrs_client_runs_a_command() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let cfg = json!({"port": peer.http_port(), "user": "LAB\\administrator", "password": FakeWinrm::PASSWORD});
    let res = run_python(&peer, PYPSRP_CLIENT, &cfg);
    assert_eq!(res, json!({"stdout": "lab\\administrator\r\n", "rc": 0}));
}

#[test]
fn cert_sha256_is_the_listener_certificate() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let script = "import ssl,hashlib,sys; print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(('127.0.0.1', int(sys.argv[1]))))).hexdigest())";
    let output = Command::new(peer.python())
        .args(["-c", script, &peer.https_port().to_string()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        hex::encode(peer.cert_sha256())
    );
}

/// Runs one WinRS command with pypsrp or pywinrm against a `--replay` peer; prints stdout, stderr, rc.
const REPLAY_CLIENT: &str = r##"
import json, sys
cfg = json.loads(sys.argv[1])
if cfg["client"] == "pypsrp":
    from pypsrp.wsman import WSMan
    from pypsrp.shell import Process, SignalCode, WinRS
    wsman = WSMan("127.0.0.1", port=cfg["port"], ssl=False, auth="basic", encryption="never",
                  username="u", password="p")
    with wsman, WinRS(wsman) as shell:
        process = Process(shell, cfg["command"], cfg["args"])
        process.invoke()
        process.signal(SignalCode.CTRL_C)
    so, se, rc = process.stdout, process.stderr, process.rc
else:
    from winrm.protocol import Protocol
    p = Protocol("http://127.0.0.1:%d/wsman" % cfg["port"], transport="basic", username="u", password="p",
                 message_encryption="never")
    shell = p.open_shell()
    c = p.run_command(shell, cfg["command"], cfg["args"])
    so, se, rc = p.get_command_output(shell, c)
    p.cleanup_command(shell, c)
    p.close_shell(shell)
print(json.dumps({"stdout": so.decode(), "stderr": se.decode(), "rc": rc}))
"##;

fn replay(recording: &str, client: &str, command: &str, args: &[&str]) -> Option<Value> {
    let fixtures = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../vm-tests/lab/winrm/recordings")
        .join(recording);
    let peer = FakeWinrm::start(&FakeWinrmConfig {
        fixtures: fixtures.path().to_owned(),
        default_profile: "none".to_owned(),
        ntlm_any_connection: false,
        replay: Some(path),
        replay_skip: false,
        shell_idle_timeout: None,
    })
    .unwrap()?;
    let cfg = json!({"client": client, "port": peer.http_port(), "command": command, "args": args});
    let res = run_python(&peer, REPLAY_CLIENT, &cfg);
    let replayed = peer
        .log_entries()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "replay")
        .count();
    assert_eq!(replayed, 5, "every recorded response is used once");
    Some(res)
}

#[test]
fn replay_of_real_windows_echo_satisfies_pywinrm() {
    let Some(res) = replay(
        "test_winrs_standard.yml",
        "pywinrm",
        "cmd.exe",
        &["/c", "echo", "hi"],
    ) else {
        return;
    };
    assert_eq!(res, json!({"stdout": "hi\r\n", "stderr": "", "rc": 0}));
}

#[test]
fn replay_of_real_windows_stderr_and_exit_code_satisfies_pypsrp() {
    let args = ["/c echo out && echo err>&2 && exit 1"];
    let Some(res) = replay("test_winrs_stderr_rc.yml", "pypsrp", "cmd.exe", &args) else {
        return;
    };
    assert_eq!(
        res,
        json!({"stdout": "out \r\n", "stderr": "err \r\n", "rc": 1})
    );
}

#[test]
fn ntlm_over_https_checks_the_channel_binding() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let right = hex::encode(peer.cert_sha256());
    let res = raw_ntlm(
        &peer,
        &json!({"right": [right, true], "wrong": ["00".repeat(32), true], "absent": [null, true]}),
    );
    assert_eq!(
        res["right"],
        json!({"status": 200, "created": true}),
        "{res}"
    );
    assert_eq!(
        res["wrong"],
        json!({"status": 401, "created": false}),
        "{res}"
    );
    assert_eq!(
        res["absent"],
        json!({"status": 401, "created": false}),
        "{res}"
    );
    let log = peer.log_entries().unwrap();
    let failures = log
        .iter()
        .filter(|e| {
            e["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("NTLM authentication failed"))
        })
        .count();
    assert_eq!(failures, 2, "{log:?}");
}

#[test]
fn ntlm_handshake_is_bound_to_its_tcp_connection_unless_relaxed() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(strict) = start(fixtures.path()) else {
        return;
    };
    let right = hex::encode(strict.cert_sha256());
    let cases = json!({"same": [right, true], "split": [right, false]});
    let res = raw_ntlm(&strict, &cases);
    assert_eq!(
        res["same"],
        json!({"status": 200, "created": true}),
        "{res}"
    );
    assert_eq!(
        res["split"],
        json!({"status": 401, "created": false}),
        "{res}"
    );
    drop(strict);

    let relaxed_fixtures = tempfile::tempdir().unwrap();
    let Some(relaxed) = start_with(relaxed_fixtures.path(), true) else {
        return;
    };
    let right = hex::encode(relaxed.cert_sha256());
    let res = raw_ntlm(&relaxed, &json!({"split": [right, false]}));
    assert_eq!(
        res["split"],
        json!({"status": 200, "created": true}),
        "{res}"
    );
    let notes: Vec<Value> = relaxed
        .log_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e["note"] == "NOTE: NTLM Type 3 completed on another connection")
        .collect();
    assert_eq!(notes.len(), 1);
}

#[test]
fn plaintext_body_over_http_after_ntlm_is_refused() {
    let fixtures = tempfile::tempdir().unwrap();
    let Some(peer) = start(fixtures.path()) else {
        return;
    };
    let cfg = json!({"url": format!("http://127.0.0.1:{}/wsman", peer.http_port()), "transport": "ntlm",
        "user": format!("{}\\{}", FakeWinrm::DOMAIN, FakeWinrm::USER), "password": FakeWinrm::PASSWORD,
        "plaintext": true, "batches": []});
    let res = run_python(&peer, PYWINRM_CLIENT, &cfg);
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("WinRMTransportError"),
        "{res}"
    );
    let log = peer.log_entries().unwrap();
    assert!(
        log.iter()
            .any(|e| e["error"] == "plaintext body over HTTP after auth"),
        "{log:?}"
    );
    assert!(!log.iter().any(|e| e["action"] == "Create"));
}

#[test]
fn replay_of_real_windows_stdin_chunks_and_unicode_satisfies_pypsrp() {
    let recordings =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/lab/winrm/recordings");
    let cases = [
        (
            "test_winrs_send",
            json!({"stdout": "output 1\noutput 2\n", "stderr": "", "rc": 0}),
        ),
        (
            "test_winrs_unicode",
            json!({"stdout": "こんにちは\n", "stderr": "", "rc": 0}),
        ),
    ];
    for (name, expected) in cases {
        let recording = recordings.join(format!("{name}.yml"));
        let n_messages = std::fs::read_to_string(&recording)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("- request:"))
            .count();
        let fixtures = tempfile::tempdir().unwrap();
        let Some(peer) = FakeWinrm::start(&FakeWinrmConfig {
            fixtures: fixtures.path().to_owned(),
            default_profile: "none".to_owned(),
            ntlm_any_connection: false,
            replay: Some(recording),
            replay_skip: false,
            shell_idle_timeout: None,
        })
        .unwrap() else {
            return;
        };
        let cfg = json!({"name": name, "port": peer.http_port()});
        assert_eq!(
            run_python(&peer, PYPSRP_REPLAY_CLIENT, &cfg),
            expected,
            "{name}"
        );
        let log = peer.log_entries().unwrap();
        let replayed: Vec<&Value> = log.iter().filter(|e| e["action"] == "replay").collect();
        assert_eq!(replayed.len(), n_messages, "{name}: {log:?}");
        assert!(
            replayed.iter().all(|e| e.get("error").is_none()),
            "{name}: {log:?}"
        );
    }
}
