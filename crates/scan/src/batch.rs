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
///
/// A body that starts with its directory's prelude (the catalogue prepends `lib/prelude.sh`,
/// followed by `# --- <path>`) travels without it: each distinct prelude is sent once, and the
/// target puts it back in front of the rest, so every check file holds exactly its body.
pub(crate) fn build(checks: &[(&Runbook, &ResolvedParams)]) -> Option<String> {
    let mut script = String::from(PREAMBLE);
    let mut preludes: Vec<&str> = Vec::new();
    for (idx, (runbook, params)) in checks.iter().enumerate() {
        let body = runbook.detect.body.as_str();
        let marker = format!("\n# --- {}\n", runbook.detect.source);
        let (prelude, rest) = match body.find(&marker) {
            Some(at) if at > 0 => (Some(&body[..at]), &body[at..]),
            _ => (None, body),
        };
        let source = match prelude {
            None => String::new(),
            Some(prelude) => {
                let k = match preludes.iter().position(|p| *p == prelude) {
                    Some(k) => k,
                    None => {
                        let k = preludes.len();
                        let delimiter = delimiter_for(&format!("P{k}"), prelude)?;
                        script.push_str(&format!(
                            "cat > \"$osiris_dir/p{k}.sh\" <<'{delimiter}'\n{prelude}\n{delimiter}\n"
                        ));
                        preludes.push(prelude);
                        k
                    }
                };
                // The here-document below adds a newline after the prelude's last line; `head`
                // drops it again so the check file is byte for byte the body.
                format!("head -c {} \"$osiris_dir/p{k}.sh\"; ", prelude.len())
            }
        };
        let delimiter = delimiter_for(&idx.to_string(), rest)?;
        script.push_str(&format!(
            "{{ {source}cat; }} > \"$osiris_dir/{idx}.sh\" <<'{delimiter}'\n{rest}"
        ));
        if !rest.ends_with('\n') {
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

/// A here-document delimiter that no line of `text` equals; `None` if every one tried does.
fn delimiter_for(tag: &str, text: &str) -> Option<String> {
    (0..16u32)
        .map(|attempt| {
            format!(
                "OSIRIS_EOF_{tag}_{attempt}_{:08x}",
                fnv(text.as_bytes()) ^ attempt
            )
        })
        .find(|delimiter| !text.lines().any(|line| line.trim() == delimiter))
}

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

    /// The prelude crosses the wire once per batch, and every check still runs exactly its body:
    /// here each check prints its own script file, run through `sh` as a target would.
    #[test]
    fn the_prelude_travels_once_and_each_check_runs_exactly_its_body() {
        let catalog = catalog::embedded().unwrap();
        let linux: Vec<Runbook> = catalog
            .for_platform(model::Platform::Linux)
            .take(5)
            .cloned()
            .map(|mut runbook| {
                // The body as shipped (with the prelude), then a line that prints the file.
                runbook.detect.body.push_str("\ncat \"$0\"; exit 0\n");
                runbook
            })
            .collect();
        let prelude_len = linux[0]
            .detect
            .body
            .find(&format!("\n# --- {}\n", linux[0].detect.source))
            .unwrap();
        assert!(prelude_len > 1000, "the catalogue prepends its prelude");
        let prelude = &linux[0].detect.body[..prelude_len];
        let params = ResolvedParams::default();
        let checks: Vec<(&Runbook, &ResolvedParams)> =
            linux.iter().map(|runbook| (runbook, &params)).collect();
        let script = build(&checks).unwrap();
        assert_eq!(script.matches(prelude).count(), 1);
        let total: usize = linux.iter().map(|r| r.detect.body.len()).sum();
        assert!(script.len() < total - 3 * prelude.len(), "{} of {total}", script.len());

        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let results = parse(&out.stdout, linux.len()).unwrap();
        // Each check prints its detect result, then its own file: exactly its body.
        for (runbook, result) in linux.iter().zip(&results) {
            let printed = String::from_utf8_lossy(&result.stdout);
            let (verdict, file) = printed.split_at(printed.len() - runbook.detect.body.len());
            assert_eq!(file, runbook.detect.body, "{}", runbook.id);
            assert!(verdict.starts_with('{'), "{}: {verdict}", runbook.id);
        }
    }
}
