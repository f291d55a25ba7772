//! The Windows build (`x86_64-pc-windows-gnu`, cross-compiled with mingw-w64) run under Wine
//! (Debian's wine64, a throwaway prefix, headless). Wine's WMI has no BitLocker, Defender or
//! firewall classes, so those checks must say `error` and why, never `pass`; its registry is
//! real, so the screen-lock check reads the policy value natively and judges it.
//! `scripts/test` builds the exe and names it in `OSIRIS_AGENT_WINDOWS_EXE`.
//!
//! The stream test runs the exe against a real `osirisd` (the workspace's debug build, beside
//! this test's binary): enroll, run, the appliance holding its results; the appliance down, the
//! agent queueing and being killed; the appliance back, the queue delivered exactly once; the
//! kit verified with every number accounted for. The remediation test runs it against the
//! tests' toy gateway, which can ask for remediations: the catalogue's PowerShell runs through
//! `powershell.exe` (Wine's is a stub that prints nothing), anything else is refused.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers outside #[test] functions; a failing test prints the logs"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_proto::v1::{
    AgentMessage, RemediationAction, RemediationOutcome, RunRemediation, agent_message,
    gateway_message,
};
use common::{RunningGateway, ToyGateway, config, wait_for};
use test_support::wine::{Wine, agent_exe, require_wine, workspace_binaries};

mod common;

const TIMEOUT: Duration = Duration::from_secs(120);
const POLICIES: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System";

/// `check --once --json` under `wine`: each check's status and reason, by check ID.
fn check_once(wine: &Wine, exe: &Path) -> BTreeMap<String, (String, String, serde_json::Value)> {
    let out = wine
        .run(exe, ["check", "--once", "--json"], &[], TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    document["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                    r["observed"].clone(),
                ),
            )
        })
        .collect()
}

fn set_policy(wine: &Wine, seconds: u32) {
    let out = wine
        .builtin("reg")
        .args([
            "add",
            POLICIES,
            "/v",
            "InactivityTimeoutSecs",
            "/t",
            "REG_DWORD",
        ])
        .args(["/d", &seconds.to_string(), "/f"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn under_wine_no_check_passes_and_each_unreadable_one_says_why() {
    let test = "under_wine_no_check_passes_and_each_unreadable_one_says_why";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    let results = check_once(&wine, &exe);
    assert_eq!(
        results.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "WIN-WSBL-001",
            "WIN-WSDEF-001",
            "WIN-WSFW-001",
            "WIN-WSLOCK-001",
            "WIN-WSPATCH-001"
        ],
        "{results:#?}"
    );
    assert!(
        results.values().all(|(status, _, _)| status != "pass"),
        "{results:#?}"
    );
    // No WMI provider for these under Wine: `error`, naming the namespace and the WMI error.
    for (id, namespace) in [
        (
            "WIN-WSBL-001",
            r"root\cimv2\Security\MicrosoftVolumeEncryption",
        ),
        ("WIN-WSDEF-001", r"root\Microsoft\Windows\Defender"),
        ("WIN-WSFW-001", r"root\StandardCimv2"),
    ] {
        let (status, reason, observed) = &results[id];
        assert_eq!(status, "error", "{id}: {reason}");
        assert!(observed.is_null(), "{id}: {observed}");
        assert!(
            reason.contains(&format!("connecting to WMI namespace {namespace}"))
                && reason.contains("WBEM_E_INVALID_NAMESPACE"),
            "{id}: {reason}"
        );
    }
    // Wine's WMI lists one placeholder update whose date is day-first: unreadable, so `error`.
    let (status, reason, _) = &results["WIN-WSPATCH-001"];
    assert_eq!(status, "error", "{reason}");
    assert!(
        reason.contains(r"WMI root\cimv2\Win32_QuickFixEngineering")
            && reason.contains("no install date this agent can read"),
        "{reason}"
    );
    // The registry is real under Wine and the policy is not set: the session never locks.
    let (status, reason, observed) = &results["WIN-WSLOCK-001"];
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("fail", "`configured` is false")
    );
    assert_eq!(
        observed,
        &serde_json::json!({ "configured": false, "inactivity_timeout_secs": 0 })
    );

    // The table names every check with its status.
    let table = wine.run(&exe, ["check", "--once"], &[], TIMEOUT).unwrap();
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with("error ") || l.starts_with("fail ")),
        "{text}"
    );
}

#[test]
fn under_wine_the_screen_lock_policy_is_read_from_the_registry() {
    let test = "under_wine_the_screen_lock_policy_is_read_from_the_registry";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    set_policy(&wine, 600);
    let (status, reason, observed) = check_once(&wine, &exe)["WIN-WSLOCK-001"].clone();
    assert_eq!(status, "pass", "{reason}");
    assert_eq!(
        observed,
        serde_json::json!({ "configured": true, "inactivity_timeout_secs": 600 })
    );
    // Longer than the catalogue's default limit (900 s): `fail`, naming the value.
    set_policy(&wine, 1800);
    let (status, reason, _) = check_once(&wine, &exe)["WIN-WSLOCK-001"].clone();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("fail", "`inactivity_timeout_secs` is 1800")
    );
}

/// A real appliance: `osirisd` with `[agents]` on loopback, and `osiris` to talk to it.
struct Appliance {
    dir: tempfile::TempDir,
    osirisd: PathBuf,
    osiris: PathBuf,
    config: PathBuf,
    daemon: Option<Child>,
}

impl Appliance {
    fn new(osirisd: PathBuf, osiris: PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("appliance.toml");
        let this = Self {
            dir,
            osirisd,
            osiris,
            config,
            daemon: None,
        };
        this.configure("127.0.0.1:0");
        this
    }

    /// Writes the configuration with the gateway on `listen`. Checks every 60 s (the least
    /// allowed; the first run comes within the 6 s jitter), heartbeats every 10 s; healing
    /// paused, so every item is a check result (the remediation test asks for remediations
    /// itself).
    fn configure(&self, listen: &str) {
        let dir = self.dir.path();
        std::fs::write(
            &self.config,
            format!(
                "site = \"wine\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"{listen}\"\ncheck_secs = 60\nheartbeat_secs = 10\n[healing]\npaused = true\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
                dir.join("data").display(),
                dir.join("run/api.sock").display()
            ),
        )
        .unwrap();
    }

    fn start(&mut self) {
        assert!(self.daemon.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("osirisd.log"))
            .unwrap();
        let child = Command::new(&self.osirisd)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        wait_until("osirisd answers", Duration::from_secs(20), || {
            self.osiris_raw(&["agent", "list", "--json"])
                .status
                .success()
        });
    }

    /// SIGTERM, then waits: the store closes cleanly.
    fn stop(&mut self) {
        let mut child = self.daemon.take().unwrap();
        signal(&child, "TERM");
        child.wait().unwrap();
    }

    fn osiris_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.osiris)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn osiris(&self, args: &[&str]) -> String {
        let out = self.osiris_raw(args);
        assert!(
            out.status.success(),
            "osiris {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `GET /v1/agents` through `osiris agent list --json`.
    fn agents(&self) -> serde_json::Value {
        serde_json::from_str(&self.osiris(&["agent", "list", "--json"])).unwrap()
    }

    /// The one agent's stored sequence number.
    fn stored_seq(&self) -> u64 {
        self.agents()["agents"][0]["stored_seq"].as_u64().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("osirisd.log")).unwrap_or_default()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- osirisd log ---\n{}", self.log());
        }
    }
}

/// `osiris-agent run` under Wine, its log in a file.
struct RunningAgent {
    child: Child,
}

impl RunningAgent {
    /// `run` with `args`, its log appended to `log`.
    fn start(wine: &Wine, exe: &Path, log: &Path, args: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = wine
            .command(exe)
            .arg("run")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Ctrl+C (Wine turns SIGINT into the console's CTRL_C_EVENT): the agent stops cleanly.
    fn interrupt(mut self) -> std::process::ExitStatus {
        signal(&self.child, "INT");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not stop on Ctrl+C"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no chance to clean up.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The queue's figures in the running agent's `status.json`, read from the prefix.
fn queue_figures(state_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(state_dir.join("status.json")).ok()?;
    let status: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(status["queue"].clone()).filter(|queue| queue.is_object())
}

/// Prints the agent's log when the test fails.
struct ShowOnFailure(PathBuf);

impl Drop for ShowOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- agent log ---\n{}",
                std::fs::read_to_string(&self.0).unwrap_or_default()
            );
        }
    }
}

#[test]
fn under_wine_the_agent_enrolls_streams_queues_offline_and_delivers_exactly_once() {
    let test = "under_wine_the_agent_enrolls_streams_queues_offline_and_delivers_exactly_once";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let Some(bins) = workspace_binaries(test, &[("osirisd", "daemon"), ("osiris", "cli")]) else {
        return;
    };
    let started = Instant::now();
    let wine = Wine::new().unwrap();
    let mut appliance = Appliance::new(bins[0].clone(), bins[1].clone());
    let agent_log = appliance.dir.path().join("agent.log");
    let _show = ShowOnFailure(agent_log.clone());
    appliance.start();

    // Enroll with a token from a file on C: (never from the command line).
    let token: serde_json::Value =
        serde_json::from_str(&appliance.osiris(&["agent", "token", "create", "--json"])).unwrap();
    let gateway = token["gateway"].as_str().unwrap().to_owned();
    std::fs::write(
        wine.host_path(r"C:\osiris-token.txt"),
        format!("{}\n", token["token"].as_str().unwrap()),
    )
    .unwrap();
    let enrolled = wine
        .run(
            &exe,
            [
                "enroll",
                "--appliance",
                &gateway,
                "--ca-pin",
                token["ca_pin"].as_str().unwrap(),
                "--token-file",
                r"C:\osiris-token.txt",
            ],
            &[],
            TIMEOUT,
        )
        .unwrap();
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    // The default state directory, %ProgramData%\OsirisCare\Agent; the device key sealed by
    // DPAPI (a blob, not the 32-byte seed).
    let state_dir = wine.host_path(r"C:\ProgramData\OsirisCare\Agent");
    assert!(state_dir.join("state.json").is_file());
    assert!(std::fs::read(state_dir.join("device.key")).unwrap().len() > 32);
    let listed = appliance.agents();
    let agent = &listed["agents"][0];
    assert_eq!(agent["platform"], "windows-x86_64", "{listed}");
    assert!(
        agent["os"].as_str().unwrap().contains("Windows"),
        "{listed}"
    );
    let hostname = agent["hostname"].as_str().unwrap();
    assert!(
        !hostname.is_empty() && hostname == hostname.to_lowercase(),
        "{listed}"
    );
    eprintln!(
        "{test}: enrolled as {hostname}, {}",
        agent["os"].as_str().unwrap()
    );

    // Online: the five checks' results reach the appliance (each check's first result is sent).
    let run = RunningAgent::start(&wine, &exe, &agent_log, &[]);
    wait_until("results stored", Duration::from_secs(40), || {
        appliance.stored_seq() >= 5
    });
    assert!(
        appliance.agents()["agents"][0]["connected"]
            .as_bool()
            .unwrap()
    );
    // `status` beside the running agent: the queue is held, so it reads status.json.
    let status = wine.run(&exe, ["status", "--json"], &[], TIMEOUT).unwrap();
    assert!(status.status.success());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (status["enrolled"].as_bool(), status["running"].as_bool()),
        (Some(true), Some(true)),
        "{status}"
    );
    assert!(run.interrupt().success(), "Ctrl+C stops the agent cleanly");
    let online = appliance.stored_seq();

    // Offline: the appliance stops; the agent runs its checks again and queues them, and is
    // killed with them unsent.
    appliance.stop();
    let run = RunningAgent::start(&wine, &exe, &agent_log, &[]);
    let mut queued = 0;
    wait_until("results queued offline", Duration::from_secs(40), || {
        queued = queue_figures(&state_dir)
            .and_then(|queue| queue["newest_seq"].as_u64())
            .unwrap_or(0);
        queued >= online + 5
    });
    run.kill();

    // Back: the appliance on the same address; the queue is delivered, each item once.
    appliance.configure(&gateway);
    appliance.start();
    let run = RunningAgent::start(&wine, &exe, &agent_log, &[]);
    wait_until("the queue delivered", Duration::from_secs(40), || {
        appliance.stored_seq() >= queued
    });
    assert!(run.interrupt().success());
    let stored = appliance.stored_seq();
    appliance.stop();

    // The kit: every item once, in order, nothing else; no check passes under Wine.
    let kit = appliance.dir.path().join("kit");
    appliance.osiris(&["evidence", "export", "--out", kit.to_str().unwrap()]);
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    let mut seqs = Vec::new();
    let mut statuses = BTreeMap::<String, Vec<String>>::new();
    for line in bundles.lines() {
        let bundle: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = &bundle["body"];
        match bundle["kind"].as_str().unwrap() {
            "agent_result" => {
                seqs.push(body["seq"].as_u64().unwrap());
                statuses
                    .entry(body["check_id"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(body["status"].as_str().unwrap().to_owned());
            }
            "agent_remediation" | "agent_gap" => {
                panic!("healing is paused and nothing was dropped, yet: {body}")
            }
            _ => {}
        }
    }
    assert_eq!(
        seqs,
        (1..=stored).collect::<Vec<_>>(),
        "each item sealed once, in order"
    );
    assert_eq!(statuses.len(), 5, "{statuses:?}");
    for (check, seen) in &statuses {
        let expected = if check == "WIN-WSLOCK-001" {
            "fail"
        } else {
            "error"
        };
        assert!(
            seen.iter().all(|status| status == expected),
            "{check}: {seen:?}"
        );
        assert!(seen.len() >= 2, "{check}: online and offline: {seen:?}");
    }
    let verified = appliance.osiris_raw(&[
        "evidence",
        "verify",
        kit.to_str().unwrap(),
        "--trust-kit-key",
    ]);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        said.contains(&format!("every number to {stored} accounted for")),
        "{said}"
    );
    eprintln!(
        "{test}: {stored} items ({online} online, {} queued offline) in {:.1} s",
        queued - online,
        started.elapsed().as_secs_f64()
    );
}

/// The remediation outcomes among `items`, as `request phase status: detail`.
fn outcomes(items: &BTreeMap<u64, AgentMessage>) -> Vec<String> {
    items
        .values()
        .filter_map(|message| match &message.kind {
            Some(agent_message::Kind::RemediationOutcome(RemediationOutcome {
                request_id,
                phase,
                status,
                detail,
                ..
            })) => Some(format!(
                "{request_id} {} {}: {detail}",
                agent_proto::v1::RemediationPhase::try_from(*phase)
                    .unwrap()
                    .as_str_name(),
                agent_proto::v1::RemediationStatus::try_from(*status)
                    .unwrap()
                    .as_str_name()
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn under_wine_remediation_runs_the_catalogues_powershell_and_refuses_the_rest() {
    let test = "under_wine_remediation_runs_the_catalogues_powershell_and_refuses_the_rest";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    let gateway = RunningGateway::start(
        ToyGateway::new(&["tok-w"], config(1, &["WIN-WSLOCK-001"])),
        0,
    )
    .await;
    let toy = gateway.toy.clone();
    std::fs::write(wine.host_path(r"C:\token.txt"), "tok-w\n").unwrap();
    let enrolled = wine
        .run(
            &exe,
            [
                "enroll",
                "--appliance",
                &gateway.address(),
                "--ca-pin",
                &toy.ca.pin(),
                "--token-file",
                r"C:\token.txt",
                "--state-dir",
                r"C:\agent",
            ],
            &[],
            TIMEOUT,
        )
        .unwrap();
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let log = wine.host_path(r"C:\agent.log");
    let _show = ShowOnFailure(log.clone());
    let _run = RunningAgent::start(&wine, &exe, &log, &["--state-dir", r"C:\agent"]);
    wait_for("the first result", || {
        toy.with(|state| state.items().len()) == 1
    })
    .await;
    let ask = |request_id: &str, runbook_id: &str| {
        gateway_message::Kind::RunRemediation(RunRemediation {
            request_id: request_id.to_owned(),
            runbook_id: runbook_id.to_owned(),
            action: RemediationAction::Remediate.into(),
            parameters: Default::default(),
        })
    };
    toy.send("agent-1", ask("r-1", "WIN-WSLOCK-001")).await;
    toy.send("agent-1", ask("r-2", "LIN-SSH-001")).await;
    wait_for("every phase reported", || {
        toy.with(|state| outcomes(&state.items()).len()) == 4
    })
    .await;
    let said = toy.with(|state| outcomes(&state.items()));
    // The remediation ran through powershell.exe with the script on stdin: Wine's stub reads
    // nothing, prints nothing and exits 0, so no result document came back and the step failed;
    // the rollback the same way. Real Windows runs the catalogue's script.
    let stub = "PowerShell output is not one JSON document (EOF while parsing a value at line 1 column 0):  (PowerShell ended with exit code 0)";
    assert_eq!(
        said,
        [
            "r-1 REMEDIATION_PHASE_ACCEPTED REMEDIATION_STATUS_SUCCEEDED: accepted".to_owned(),
            format!("r-1 REMEDIATION_PHASE_REMEDIATE REMEDIATION_STATUS_FAILED: {stub}"),
            format!("r-1 REMEDIATION_PHASE_ROLLBACK REMEDIATION_STATUS_FAILED: {stub}"),
            // The Windows agent carries only the Windows runbooks (crates/agent/build.rs).
            format!(
                "r-2 REMEDIATION_PHASE_ACCEPTED REMEDIATION_STATUS_REFUSED: runbook LIN-SSH-001 is not in this agent's catalogue (version {})",
                catalog::embedded().unwrap().version()
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_wine_install_runs_the_agent_as_a_service_and_uninstall_removes_it() {
    let test = "under_wine_install_runs_the_agent_as_a_service_and_uninstall_removes_it";
    if !require_wine(test) {
        return;
    }
    let Some(exe) = agent_exe(test) else {
        return;
    };
    let wine = Wine::new().unwrap();
    let gateway = RunningGateway::start(
        ToyGateway::new(&["tok-s"], config(1, &["WIN-WSLOCK-001"])),
        0,
    )
    .await;
    let toy = gateway.toy.clone();
    // The service runs the exe from where it was installed: a copy on C:, as the MSI places it.
    let installed = wine.host_path(r"C:\Program Files\OsirisCare\Agent\osiris-agent.exe");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(&exe, &installed).unwrap();
    let log = wine.host_path(r"C:\ProgramData\OsirisCare\Agent\agent.log");
    let _show = ShowOnFailure(log.clone());
    let agent = |args: &[&str]| wine.run(&installed, args, &[], TIMEOUT).unwrap();
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // Not enrolled: nothing to install.
    wine.wait_for_server();
    let refused = agent(&["install"]);
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("not enrolled"),
        "{}",
        said(&refused)
    );

    std::fs::write(wine.host_path(r"C:\token.txt"), "tok-s\n").unwrap();
    let enrolled = agent(&[
        "enroll",
        "--appliance",
        &gateway.address(),
        "--ca-pin",
        &toy.ca.pin(),
        "--token-file",
        r"C:\token.txt",
    ]);
    assert!(enrolled.status.success(), "{}", said(&enrolled));
    // The service manager of a fresh wineserver, not of the one the last command left behind.
    wine.wait_for_server();
    let done = agent(&["install"]);
    assert!(done.status.success(), "{}", said(&done));
    let text = said(&done);
    assert!(
        text.contains("installed service OsirisAgent")
            && text.contains("started service OsirisAgent"),
        "{text}"
    );

    // The service control manager runs `run --service`: it connects and reports, logging to
    // agent.log in the state directory.
    wait_for("the service's first result", || {
        toy.with(|state| state.items().len()) >= 1
    })
    .await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("Running as a Windows service.") && logged.contains("Agent started."),
        "{logged}"
    );
    let again = agent(&["install"]);
    assert!(!again.status.success());
    assert!(
        said(&again).contains("already installed"),
        "{}",
        said(&again)
    );

    // Uninstall stops it (it logs its stop) and removes it; the state stays.
    let removed = agent(&["uninstall"]);
    assert!(removed.status.success(), "{}", said(&removed));
    assert!(
        said(&removed).contains("stopped and removed service OsirisAgent"),
        "{}",
        said(&removed)
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Stopped."), "{logged}");
    assert!(
        wine.host_path(r"C:\ProgramData\OsirisCare\Agent\state.json")
            .is_file()
    );
    let gone = agent(&["uninstall"]);
    assert!(!gone.status.success());
    assert!(said(&gone).contains("not installed"), "{}", said(&gone));
}
