//! The Linux prelude's JSON helpers (`json_str`, `json_lines_array`) run by the real `sh` with
//! what a host can hand them: whatever a value holds, the output is valid JSON holding the value
//! (control characters as `?`), whether it takes the plain-value path that starts no process or
//! the escaping path.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

fn prelude() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/linux/lib/prelude.sh"),
    )
    .unwrap()
}

/// What the JSON must hold: the value without one trailing newline (the shell's lines), control
/// characters other than newline as `?`.
fn expected(value: &str) -> String {
    let value = value.strip_suffix('\n').unwrap_or(value);
    value
        .chars()
        .map(|c| {
            if c.is_ascii_control() && c != '\n' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

const VALUES: &[&str] = &[
    "",
    "sshd",
    "synchronized",
    "1234",
    "a b ~ % %s %d $HOME `id` $(id) ' *",
    "quote \" inside",
    "back\\slash \\n not a newline",
    "tab\there",
    "line one\nline two",
    "\n\nx\n\n",
    "ends with a newline\n",
    "carriage\rreturn",
    "bell\u{7} delete\u{7f} escape\u{1b}[31m",
    "ünïcode ✓",
    "\"}], \"injected\": true, \"x\": [\"",
];

#[test]
fn json_str_gives_valid_json_holding_any_value() {
    let prelude = prelude();
    for value in VALUES {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude}\njson_str \"$1\""))
            .arg("sh")
            .arg(value)
            .output()
            .unwrap();
        assert!(out.status.success(), "{value:?}: {out:?}");
        let parsed: String = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "{value:?} gave invalid JSON {:?}: {err}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(parsed, expected(value), "{value:?}");
    }
}

#[test]
fn json_lines_array_gives_valid_json_of_at_most_fifty_lines() {
    let prelude = prelude();
    let mut lines: Vec<String> = VALUES
        .iter()
        .flat_map(|value| value.split('\n'))
        .map(str::to_owned)
        .collect();
    lines.extend((0..60).map(|n| format!("line {n}\twith a tab")));
    let mut input = lines.join("\n");
    input.push('\n');
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{prelude}\njson_lines_array"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let parsed: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<String> = lines.iter().take(50).map(|line| expected(line)).collect();
    assert_eq!(parsed, want);
}

#[test]
fn json_lines_gives_what_json_lines_array_and_count_lines_give_with_builtins() {
    let prelude = prelude();
    let mut many: Vec<String> = (0..60).map(|n| format!("line {n}")).collect();
    many.push("last \"quoted\"".to_owned());
    let many = many.join("\n");
    let mut texts: Vec<&str> = VALUES.to_vec();
    texts.push(&many);
    for text in texts {
        // The text as a script's `$(...)` holds it: no trailing newlines.
        let text = text.trim_end_matches('\n');
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{prelude}\njson_lines \"$1\"\nprintf '%s\\n%s\\n' \"$json_array\" \"$json_count\"\n\
                 printf '%s' \"$1\" | json_lines_array; printf '\\n'; printf '%s' \"$1\" | count_lines"
            ))
            .arg("sh")
            .arg(text)
            .output()
            .unwrap();
        assert!(out.status.success());
        let out = String::from_utf8(out.stdout).unwrap();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got.len(), 4, "{out}");
        assert_eq!(got[0], got[2], "array of {text:?}");
        assert_eq!(got[1], got[3], "count of {text:?}");
        let parsed: Vec<String> = serde_json::from_str(got[0]).unwrap();
        assert_eq!(parsed.len(), got[1].parse::<usize>().unwrap().min(50));
    }
}
