//! Records what this Windows machine's native check sources return, in the fixture form
//! `tests/fixtures/*.json` use (one document per check; `snapshot_from_json` reads them back).
//! On a real host, as an administrator (the BitLocker namespace needs one):
//! `record.exe > recorded.json`; build it with
//! `cargo build -p agent-windows --example record --target x86_64-pc-windows-gnu`.

#![allow(clippy::print_stdout, reason = "the example's output is its purpose")]

#[cfg(windows)]
fn main() {
    let recorded_at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let documents: Vec<serde_json::Value> = agent_windows::CHECK_IDS
        .iter()
        .filter_map(|id| {
            let sources = agent_windows::source::sources(id)?;
            let snapshot = agent_windows::read_snapshot(sources);
            Some(serde_json::json!({
                "check": id,
                "recorded_at": format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    recorded_at.year(),
                    u8::from(recorded_at.month()),
                    recorded_at.day(),
                    recorded_at.hour(),
                    recorded_at.minute(),
                    recorded_at.second()
                ),
                "note": "recorded with examples/record.rs",
                "snapshot": agent_windows::snapshot_to_json(&snapshot),
            }))
        })
        .collect();
    match serde_json::to_string_pretty(&documents) {
        Ok(text) => println!("{text}"),
        Err(err) => println!("{{\"error\": \"{err}\"}}"),
    }
}

#[cfg(not(windows))]
fn main() {
    println!("record reads Windows sources; build it for x86_64-pc-windows-gnu");
}
