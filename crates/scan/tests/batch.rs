//! Batched detect runs: same results as one-by-one runs, parameters stay data, a hanging or
//! lying check cannot disturb the others.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::time::Duration;

use model::{CheckStatus, DeviceType, ParamValue, Platform, Target};

fn target() -> Target {
    Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    }
}

fn runbook(id: &str, script: &str, timeout: u64, param: bool) -> (String, String, String) {
    let params = if param {
        "[params.value]\ntype = \"string\"\ndefault = \"x\"\nmax_len = 200\n"
    } else {
        ""
    };
    let toml = format!(
        "id = \"{id}\"\ntitle = \"t\"\ndescription = \"d\"\nplatforms = [\"linux\"]\nseverity = \"low\"\ntimeout_secs = {timeout}\n[controls]\nhipaa = [\"164.312(b)\"]\n{params}[detect]\nscript = \"scripts/{id}.sh\"\n[[expect]]\nfield = \"ok\"\nop = \"eq\"\nvalue = true\n"
    );
    (format!("{id}.toml"), toml, script.to_owned())
}

fn catalog(runbooks: &[(String, String, String)]) -> catalog::Catalog {
    let mut files = Vec::new();
    for (path, toml, script) in runbooks {
        files.push((path.clone(), toml.clone()));
        files.push((
            format!("scripts/{}.sh", path.trim_end_matches(".toml")),
            script.clone(),
        ));
    }
    let sources: Vec<_> = files
        .iter()
        .map(|(path, text)| catalog::SourceFile { path, text })
        .collect();
    catalog::load(&sources).unwrap()
}

#[test]
fn batched_results_equal_one_by_one_results_for_the_shipped_catalogue() {
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog.for_platform(Platform::Linux).collect();
    let (batched, _) = scan::scan_target(
        &target(),
        &scan_local::LocalTransport,
        &runbooks,
        &scan::ScriptContext {
            overrides: &Default::default(),
            powershell_prelude: "",
        },
    );
    let mut session = transport::Transport::open(&scan_local::LocalTransport).unwrap();
    for (runbook, result) in runbooks.iter().zip(&batched.results) {
        let single = scan::run_check(
            session.as_mut(),
            runbook,
            &scan::ScriptContext {
                overrides: &Default::default(),
                powershell_prelude: "",
            },
        );
        assert_eq!(result.outcome.status, single.status, "{}", runbook.id);
        assert_eq!(result.outcome.reason, single.reason, "{}", runbook.id);
    }
}

#[test]
fn hostile_parameter_values_stay_data_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let echo = r#"printf '{"ok":true,"value":"%s"}\n' "$(printf '%s' "$OSIRIS_PARAM_VALUE" | od -An -tx1 | tr -d ' \n')""#;
    let catalog = catalog(&[
        runbook("T-ECHO-001", echo, 5, true),
        runbook("T-OK-001", r#"echo '{"ok":true}'"#, 5, false),
    ]);
    let hostile = format!(
        "x'; touch {}; echo '$(touch {})`touch {}`\\",
        pwned.display(),
        pwned.display(),
        pwned.display()
    );
    let mut overrides = scan::ParamOverrides::new();
    overrides.insert(
        "T-ECHO-001".to_owned(),
        BTreeMap::from([("value".to_owned(), ParamValue::Text(hostile.clone()))]),
    );
    let runbooks: Vec<_> = catalog.runbooks().iter().collect();
    let (report, _) = scan::scan_target(
        &target(),
        &scan_local::LocalTransport,
        &runbooks,
        &scan::ScriptContext {
            overrides: &overrides,
            powershell_prelude: "",
        },
    );
    let echoed = report
        .results
        .iter()
        .find(|r| r.runbook_id == "T-ECHO-001")
        .unwrap();
    assert_eq!(
        echoed.outcome.status,
        CheckStatus::Pass,
        "{:?}",
        echoed.outcome
    );
    let hex: String = hostile.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(echoed.outcome.observed["value"], hex.as_str());
    assert!(!pwned.exists(), "a parameter value was executed");
}

#[test]
fn a_hanging_check_times_out_alone_and_a_lying_check_cannot_forge_results() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    // Hangs in a process of its own (which must not outlive the check) and in the shell.
    let hang = format!(
        "sleep 30 & echo $! > '{}'; wait; echo '{{\"ok\":true}}'",
        pid_file.display()
    );
    let catalog = catalog(&[
        runbook("T-A-001", r#"echo '{"ok":true}'"#, 5, false),
        runbook("T-HANG-001", &hang, 1, false),
        // Prints a fake frame claiming the next check passed, then fails itself.
        runbook(
            "T-LIAR-001",
            "printf 'OSIRIS-RESULT 3 0 11 0\\n{\"ok\":true}\\n'; echo '{\"ok\":false}'",
            5,
            false,
        ),
        runbook("T-Z-001", r#"echo '{"ok":false}'"#, 5, false),
    ]);
    let runbooks: Vec<_> = catalog.runbooks().iter().collect();
    let started = std::time::Instant::now();
    let (report, _) = scan::scan_target(
        &target(),
        &scan_local::LocalTransport,
        &runbooks,
        &scan::ScriptContext {
            overrides: &Default::default(),
            powershell_prelude: "",
        },
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hanging check held up the batch"
    );
    let by_id: BTreeMap<_, _> = report
        .results
        .iter()
        .map(|r| (r.runbook_id.as_str(), &r.outcome))
        .collect();
    assert_eq!(by_id["T-A-001"].status, CheckStatus::Pass);
    assert_eq!(by_id["T-HANG-001"].status, CheckStatus::Error);
    let pid = std::fs::read_to_string(&pid_file).expect("the hanging check wrote its child's pid");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
    // Killed, and reaped by init once its parent was gone: no `/proc` entry within a few seconds.
    let waiting = std::time::Instant::now();
    while proc_dir.exists() && waiting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !proc_dir.exists(),
        "the process the timed-out check started still runs"
    );
    assert_eq!(
        by_id["T-HANG-001"].reason,
        "detect script: timed out after 1s and was stopped"
    );
    assert_eq!(
        by_id["T-LIAR-001"].status,
        CheckStatus::Error,
        "{:?}",
        by_id["T-LIAR-001"]
    );
    assert_eq!(
        by_id["T-Z-001"].status,
        CheckStatus::Fail,
        "{:?}",
        by_id["T-Z-001"]
    );
}
