//! Batching: every `sh` detect script of one target in one script run, so a remote target pays
//! for one channel instead of one session per check.
//!
//! Each check's body is written to its own file (with `printf` of a single-quoted string) and
//! sourced in a subshell with its parameters exported as single-quoted values, under the batch's
//! watchdog, which kills a check (and everything it started) that outlives its `timeout_secs`. Results come back framed by byte counts, so nothing a
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
    /// CPU time (user + system) of the batch shell's children after this check: the
    /// cumulative figure `times` gives, so one check's cost is the difference to the previous.
    pub(crate) children_cpu: Option<std::time::Duration>,
}

/// Builds the batch script for `checks`.
///
/// A body that starts with its directory's prelude (the catalogue prepends `lib/prelude.sh`,
/// followed by `# --- <path>`) travels without it: each distinct prelude is sent once, as a shell
/// variable, and the target puts it back in front of the rest, so every check file holds exactly
/// its body. Each check runs in a subshell of the batch shell that sources its file (a fork, no
/// `exec` of a new shell), under one watchdog for the whole batch instead of a `timeout` process
/// per check. The target's shell writes and reads its files with builtins; apart from each
/// check's own processes the batch starts `mktemp`, `id`, the watchdog (one `sleep` per second
/// the batch runs), one `wc`, one `cat` and `rm`, so the framing costs the target next to
/// nothing: what a plain script running the same checks in subshells would cost.
pub(crate) fn build(checks: &[(&Runbook, &ResolvedParams)]) -> String {
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
                        script.push_str(&format!("osiris_p{k}={}\n", transport::sh_quote(prelude)));
                        preludes.push(prelude);
                        k
                    }
                };
                format!("\"$osiris_p{k}\"")
            }
        };
        script.push_str(&format!(
            "printf '%s%s' {source}{} {} > \"$osiris_dir/{idx}.sh\"\n( ",
            if source.is_empty() { "''" } else { "" },
            transport::sh_quote(rest)
        ));
        for (name, value) in params.env() {
            script.push_str(&format!("export {name}={}; ", transport::sh_quote(&value)));
        }
        script.push_str(&format!(
            "osiris_check=\"$osiris_dir/{idx}.sh\"; . \"$osiris_check\" ) > \"$osiris_dir/{idx}.out\" 2> \"$osiris_dir/{idx}.err\" < /dev/null &\nosiris_wait {idx} {}\n",
            runbook.timeout.as_secs().max(1)
        ));
    }
    let indices: Vec<String> = (0..checks.len()).map(|i| i.to_string()).collect();
    let files: Vec<String> = indices
        .iter()
        .flat_map(|i| [format!("{i}.out"), format!("{i}.err")])
        .collect();
    script.push_str(&format!(
        "cd \"$osiris_dir\" || exit 97\nfor osiris_i in {}; do\n  osiris_report \"$osiris_i\"\ndone\necho OSIRIS-SIZES\nwc -c {files} || exit 97\necho OSIRIS-DATA\ncat {files} || exit 97\n",
        indices.join(" "),
        files = files.join(" ")
    ));
    script
}

/// Splits a batch's stdout into `n` results; `None` if it is not exactly `n` well-formed
/// results: a status line per check in order, the sizes of their outputs, then exactly that
/// many bytes. The sizes come before any byte a check printed, so no check can forge another's
/// result.
pub(crate) fn parse(stdout: &[u8], n: usize) -> Option<Vec<RawResult>> {
    let data_at = find(stdout, b"\nOSIRIS-DATA\n")?;
    let head = std::str::from_utf8(&stdout[..data_at]).ok()?;
    let mut data = &stdout[data_at + b"\nOSIRIS-DATA\n".len()..];
    let mut lines = head.lines();
    let mut status = Vec::with_capacity(n);
    for idx in 0..n {
        let fields: Vec<&str> = lines.next()?.split(' ').collect();
        let (index, exit_code, cpu) = match fields[..] {
            ["OSIRIS-RC", index, exit_code] => (index, exit_code, None),
            ["OSIRIS-RC", index, exit_code, user, system] => {
                (index, exit_code, parse_times(user, system))
            }
            _ => return None,
        };
        if index.parse::<usize>().ok()? != idx {
            return None;
        }
        status.push((exit_code.parse::<i32>().ok()?, cpu));
    }
    if lines.next()? != "OSIRIS-SIZES" {
        return None;
    }
    let mut sizes = Vec::with_capacity(2 * n);
    for idx in 0..n {
        for stream in ["out", "err"] {
            let mut fields = lines.next()?.split_whitespace();
            let size: usize = fields.next()?.parse().ok()?;
            if fields.next()? != format!("{idx}.{stream}") || fields.next().is_some() {
                return None;
            }
            sizes.push(size);
        }
    }
    // `wc` ends with a total line when it counts several files.
    if let Some(total) = lines.next()
        && (!total.trim_end().ends_with("total") || lines.next().is_some())
    {
        return None;
    }
    let mut results = Vec::with_capacity(n);
    for (idx, (exit_code, children_cpu)) in status.into_iter().enumerate() {
        let (out_size, err_size) = (sizes[2 * idx], sizes[2 * idx + 1]);
        if data.len() < out_size + err_size {
            return None;
        }
        let (out, rest) = data.split_at(out_size);
        let (err, rest) = rest.split_at(err_size);
        data = rest;
        results.push(RawResult {
            exit_code,
            stdout: out[..out_size.min(CHECK_STDOUT_MAX)].to_vec(),
            stderr: err[..err_size.min(CHECK_STDERR_MAX)].to_vec(),
            truncated: out_size > CHECK_STDOUT_MAX,
            children_cpu,
        });
    }
    data.is_empty().then_some(results)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

const PREAMBLE: &str = r#"osiris_dir=$(mktemp -d 2>/dev/null) || { echo "cannot create a temporary directory" >&2; exit 97; }
trap 'rm -rf "$osiris_dir"' EXIT
# Private to this batch (mode 0700): what one detect script computed for the others.
OSIRIS_BATCH_DIR=$osiris_dir; export OSIRIS_BATCH_DIR
OSIRIS_EUID=$(id -u); export OSIRIS_EUID
# One watchdog for the whole batch instead of a `timeout` process per check: `w` names the
# running check's process and its limit in seconds; past it, the check and every process under
# it are stopped and killed (exit status 137, as `timeout -s KILL` gives).
osiris_kill() {
  kill -STOP "$1" 2>/dev/null
  for osiris_c in $(pgrep -P "$1" 2>/dev/null); do osiris_kill "$osiris_c"; done
  kill -KILL "$1" 2>/dev/null
}
osiris_watch() {
  osiris_tick=0
  osiris_seen=
  osiris_start=0
  while [ -f "$osiris_dir/w" ] && kill -0 "$1" 2>/dev/null; do
    sleep 1 || break
    osiris_tick=$((osiris_tick + 1))
    osiris_pid=
    osiris_limit=
    read -r osiris_pid osiris_limit < "$osiris_dir/w" 2>/dev/null || continue
    case "$osiris_pid$osiris_limit" in '' | *[!0-9]*) continue ;; esac
    if [ "$osiris_pid" != "$osiris_seen" ]; then
      osiris_seen=$osiris_pid
      osiris_start=$osiris_tick
    elif [ $((osiris_tick - osiris_start)) -ge "$osiris_limit" ]; then
      osiris_kill "$osiris_pid"
    fi
  done
}
: > "$osiris_dir/w"
osiris_watch $$ < /dev/null > /dev/null 2>&1 &
osiris_watcher=$!
trap 'kill "$osiris_watcher" 2>/dev/null; rm -rf "$osiris_dir"' EXIT
# osiris_wait INDEX LIMIT: waits for the check just started in the background, under the watchdog.
osiris_wait() {
  osiris_pid=$!
  printf '%s %s\n' "$osiris_pid" "$2" > "$osiris_dir/w"
  wait "$osiris_pid"
  echo $? > "$osiris_dir/$1.rc"
  : > "$osiris_dir/w"
  times > "$osiris_dir/$1.t"
}
osiris_report() {
  read -r osiris_rc < "$1.rc"
  osiris_t=
  while IFS= read -r osiris_l; do osiris_t=$osiris_l; done < "$1.t"
  printf 'OSIRIS-RC %s %s %s\n' "$1" "$osiris_rc" "$osiris_t"
}
"#;

/// The children's line of `times` (`0m0.012s 0m0.008s`: user and system) as one duration;
/// `None` when it is not in that form.
fn parse_times(user: &str, system: &str) -> Option<std::time::Duration> {
    let one = |part: &str| -> Option<f64> {
        let (minutes, seconds) = part.strip_suffix('s')?.split_once('m')?;
        let minutes: u32 = minutes.parse().ok()?;
        let seconds: f64 = seconds.parse().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| f64::from(minutes) * 60.0 + seconds)
    };
    Some(std::time::Duration::from_secs_f64(
        one(user)? + one(system)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_parse_and_forged_results_do_not() {
        let stdout = b"OSIRIS-RC 0 0 0m0.250000s 0m0.005s\nOSIRIS-RC 1 3\nOSIRIS-SIZES\n 5 0.out\n 0 0.err\n 2 1.out\n 3 1.err\n 10 total\nOSIRIS-DATA\nhello{}err";
        let results = parse(stdout, 2).unwrap();
        assert_eq!(results[0].stdout, b"hello");
        assert_eq!(
            results[0].children_cpu,
            Some(std::time::Duration::from_millis(255))
        );
        assert_eq!(
            (
                results[1].exit_code,
                results[1].stdout.as_slice(),
                results[1].stderr.as_slice(),
                results[1].children_cpu
            ),
            (3, &b"{}"[..], &b"err"[..], None)
        );
        // A byte more or less, a count mismatch, results out of order, a size line for another
        // file: not trusted.
        let swap = |from: &str, to: &str| {
            String::from_utf8_lossy(stdout)
                .replacen(from, to, 1)
                .into_bytes()
        };
        assert!(parse(&[stdout.as_slice(), b"!"].concat(), 2).is_none());
        assert!(parse(&stdout[..stdout.len() - 1], 2).is_none());
        assert!(parse(stdout, 3).is_none());
        assert!(parse(&swap("OSIRIS-RC 1 3", "OSIRIS-RC 0 3"), 2).is_none());
        assert!(parse(&swap(" 2 1.out", " 2 0.out"), 2).is_none());
        // What a check prints after the sizes cannot add a result.
        let forged = b"OSIRIS-RC 0 0\nOSIRIS-SIZES\n 29 0.out\n 0 0.err\nOSIRIS-DATA\n{}\nOSIRIS-RC 1 0\nOSIRIS-DATA\n";
        let one = parse(forged, 1).unwrap();
        assert_eq!(one.len(), 1);
        assert!(parse(forged, 2).is_none());
        // `times` as dash, bash and busybox print it; anything else is no figure, not an error.
        assert_eq!(
            parse_times("1m2.5s", "0m0.000000s"),
            Some(std::time::Duration::from_millis(62_500))
        );
        assert_eq!(parse_times("1.2", "x"), None);
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
                runbook
                    .detect
                    .body
                    .push_str("\ncat \"$osiris_check\"; exit 0\n");
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
        let script = build(&checks);
        assert_eq!(script.matches(&transport::sh_quote(prelude)).count(), 1);
        let total: usize = linux.iter().map(|r| r.detect.body.len()).sum();
        assert!(
            script.len() < total - 3 * prelude.len(),
            "{} of {total}",
            script.len()
        );

        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
