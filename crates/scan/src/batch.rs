//! Batching: every `sh` detect script of one target in one script run, so a remote target pays
//! for one channel instead of one session per check.
//!
//! Each check's body is written to its own file (quoted here-document with a delimiter that does
//! not occur in it) and run in a subshell with its parameters exported as single-quoted values,
//! under `timeout` when the target has it. Results come back framed by byte counts, so nothing a
//! check prints can forge another check's result.

use model::{ResolvedParams, Runbook};

/// Most bytes of one check's stdout (and, separately, stderr) that a batch returns.
pub(crate) const CHECK_STDOUT_MAX: usize = 64 * 1024;
pub(crate) const CHECK_STDERR_MAX: usize = 4 * 1024;

/// One check's raw result from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawResult {
    pub(crate) exit_code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) truncated: bool,
}

/// Builds the batch script for `checks`; `None` if a body contains every delimiter we try.
pub(crate) fn build(checks: &[(&Runbook, &ResolvedParams)]) -> Option<String> {
    let mut script = String::from(PREAMBLE);
    for (idx, (runbook, params)) in checks.iter().enumerate() {
        let body = &runbook.detect.body;
        let delimiter = (0..16u32)
            .map(|attempt| {
                format!(
                    "OSIRIS_EOF_{idx}_{attempt}_{:08x}",
                    fnv(body.as_bytes()) ^ attempt
                )
            })
            .find(|delimiter| !body.lines().any(|line| line.trim() == delimiter))?;
        script.push_str(&format!(
            "cat > \"$osiris_dir/{idx}.sh\" <<'{delimiter}'\n{body}"
        ));
        if !body.ends_with('\n') {
            script.push('\n');
        }
        script.push_str(&format!("{delimiter}\n( "));
        for (name, value) in params.env() {
            script.push_str(&format!("export {name}={}; ", transport::sh_quote(&value)));
        }
        script.push_str(&format!(
            "osiris_run {idx} {} ) > \"$osiris_dir/{idx}.out\" 2> \"$osiris_dir/{idx}.err\" < /dev/null\necho $? > \"$osiris_dir/{idx}.rc\"\n",
            runbook.timeout.as_secs().max(1)
        ));
    }
    script.push_str(&format!(
        "osiris_i=0\nwhile [ \"$osiris_i\" -lt {} ]; do\n  osiris_report \"$osiris_i\"\n  osiris_i=$((osiris_i + 1))\ndone\n",
        checks.len()
    ));
    Some(script)
}

/// Splits a batch's stdout into `n` results; `None` if it is not exactly `n` well-formed frames.
pub(crate) fn parse(mut stdout: &[u8], n: usize) -> Option<Vec<RawResult>> {
    let mut results = Vec::with_capacity(n);
    for idx in 0..n {
        let newline = stdout.iter().position(|b| *b == b'\n')?;
        let header = std::str::from_utf8(&stdout[..newline]).ok()?;
        stdout = &stdout[newline + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        let [tag, index, exit_code, out_size, err_size] = fields[..] else {
            return None;
        };
        if tag != "OSIRIS-RESULT" || index.parse::<usize>().ok()? != idx {
            return None;
        }
        let exit_code: i32 = exit_code.parse().ok()?;
        let out_size: usize = out_size.parse().ok()?;
        let err_size: usize = err_size.parse().ok()?;
        let out_len = out_size.min(CHECK_STDOUT_MAX);
        let err_len = err_size.min(CHECK_STDERR_MAX);
        if stdout.len() < out_len + err_len {
            return None;
        }
        let (out, rest) = stdout.split_at(out_len);
        let (err, rest) = rest.split_at(err_len);
        stdout = rest;
        results.push(RawResult {
            exit_code,
            stdout: out.to_vec(),
            stderr: err.to_vec(),
            truncated: out_size > CHECK_STDOUT_MAX,
        });
    }
    stdout.is_empty().then_some(results)
}

const PREAMBLE: &str = r#"osiris_dir=$(mktemp -d 2>/dev/null) || { echo "cannot create a temporary directory" >&2; exit 97; }
trap 'rm -rf "$osiris_dir"' EXIT
if command -v timeout >/dev/null 2>&1; then osiris_has_timeout=1; else osiris_has_timeout=0; fi
osiris_run() {
  if [ "$osiris_has_timeout" = 1 ]; then timeout -s KILL "$2" sh "$osiris_dir/$1.sh"; else sh "$osiris_dir/$1.sh"; fi
}
osiris_report() {
  printf 'OSIRIS-RESULT %s %s %s %s\n' "$1" "$(cat "$osiris_dir/$1.rc")" "$(wc -c < "$osiris_dir/$1.out" | tr -d ' ')" "$(wc -c < "$osiris_dir/$1.err" | tr -d ' ')"
  head -c 65536 "$osiris_dir/$1.out"
  head -c 4096 "$osiris_dir/$1.err"
}
"#;

/// FNV-1a, to vary delimiters with the body; uniqueness is checked, not assumed.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_forged_frames_do_not() {
        let stdout = b"OSIRIS-RESULT 0 0 5 0\nhelloOSIRIS-RESULT 1 3 2 3\n{}err";
        let results = parse(stdout, 2).unwrap();
        assert_eq!(results[0].stdout, b"hello");
        assert_eq!(
            (
                results[1].exit_code,
                results[1].stdout.as_slice(),
                results[1].stderr.as_slice()
            ),
            (3, &b"{}"[..], &b"err"[..])
        );
        // Extra or missing bytes, wrong order, or a frame count mismatch: not trusted.
        assert!(parse(b"OSIRIS-RESULT 0 0 5 0\nhello!", 1).is_none());
        assert!(parse(b"OSIRIS-RESULT 1 0 0 0\n", 1).is_none());
        assert!(parse(b"OSIRIS-RESULT 0 0 9 0\nhello", 1).is_none());
        assert!(parse(stdout, 3).is_none());
    }
}
