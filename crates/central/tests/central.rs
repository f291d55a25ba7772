//! `osiris-central` end to end against a real PostgreSQL started by the test (initdb in a
//! temporary directory): migrations, partner creation, the append-only audit log, the
//! configuration's refusals and `/healthz` while the database goes away and comes back.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use test_support::postgres::PgServer;

fn central(dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osiris-central"));
    command.args(args).current_dir(dir).env_remove("RUST_LOG");
    match url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn psql(pg: &PgServer, db: &str, sql: &str) -> Output {
    pg.client(
        "psql",
        &["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
    )
}

fn query(pg: &PgServer, db: &str, sql: &str) -> String {
    let out = psql(pg, db, sql);
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn password_file(dir: &Path, name: &str, password: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn migrate_create_partners_and_the_audit_log_is_append_only() {
    let Some(pg) = PgServer::start("migrate_create_partners_and_the_audit_log_is_append_only")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    let out = central(dir, Some(&url), &["migrate"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("is up to date"),
        "{}",
        text(&out.stdout)
    );
    // The password of the URL is never printed.
    assert!(!text(&out.stdout).contains(pg.password()));
    assert!(!text(&out.stderr).contains(pg.password()));
    // Migrating again is a no-op.
    assert_exit(&central(dir, Some(&url), &["migrate"]), 0);

    let secret = "correct horse battery staple";
    let pw = password_file(dir, "admin.pw", secret, 0o600);
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            "Acme IT",
            "--admin",
            "Admin@Acme.example",
            "--password-file",
            &pw,
        ],
    );
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("created partner `Acme IT`"),
        "{}",
        text(&out.stdout)
    );

    // Stored: argon2id, never the password; e-mail lower-cased; role partner_admin.
    let row = query(
        &pg,
        "central",
        "SELECT email, role, password_hash FROM users",
    );
    let fields: Vec<&str> = row.split('|').collect();
    assert_eq!(fields[..2], ["admin@acme.example", "partner_admin"]);
    assert!(fields[2].starts_with("$argon2id$"), "{row}");
    assert!(!row.contains(secret));
    let audit = query(
        &pg,
        "central",
        "SELECT actor, action, detail->>'name' FROM audit_log",
    );
    assert!(audit.starts_with("cli:uid="), "{audit}");
    assert!(audit.ends_with("|partner.create|Acme IT"), "{audit}");

    // The same name in other case: refused, clearly, and nothing added.
    let pw2 = password_file(dir, "other.pw", "another long password", 0o600);
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            "ACME it",
            "--admin",
            "x@other.example",
            "--password-file",
            &pw2,
        ],
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("a partner named `ACME it` already exists"),
        "{}",
        text(&out.stderr)
    );
    // The same administrator e-mail under another partner: refused, and the partner row rolled back.
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            "Beta MSP",
            "--admin",
            "ADMIN@acme.example",
            "--password-file",
            &pw2,
        ],
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(query(&pg, "central", "SELECT count(*) FROM partners"), "1");
    assert_eq!(query(&pg, "central", "SELECT count(*) FROM audit_log"), "1");

    // SQL and HTML metacharacters are data, stored and listed verbatim.
    let hostile = "O'Brien\"; DROP TABLE partners;-- <script>x</script>";
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            hostile,
            "--admin",
            "ob@brien.example",
            "--password-file",
            &pw2,
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        query(
            &pg,
            "central",
            "SELECT name FROM partners ORDER BY id DESC LIMIT 1"
        ),
        hostile
    );
    let out = central(dir, Some(&url), &["admin", "partner", "list"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("Acme IT"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("DROP TABLE partners"),
        "{}",
        text(&out.stdout)
    );

    // Bad passwords: a file others can read, a short one. Nothing is created.
    let open = password_file(dir, "open.pw", "a long enough password", 0o644);
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            "Gamma",
            "--admin",
            "g@gamma.example",
            "--password-file",
            &open,
        ],
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
    let short = password_file(dir, "short.pw", "short", 0o600);
    let out = central(
        dir,
        Some(&url),
        &[
            "admin",
            "partner",
            "create",
            "Gamma",
            "--admin",
            "g@gamma.example",
            "--password-file",
            &short,
        ],
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("12 to 1024 characters"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(query(&pg, "central", "SELECT count(*) FROM partners"), "2");

    // The audit log cannot be edited, deleted or truncated, even by the database owner's SQL.
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let out = psql(&pg, "central", sql);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            text(&out.stderr).contains("append-only"),
            "{sql}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(query(&pg, "central", "SELECT count(*) FROM audit_log"), "2");
}

#[test]
fn a_site_cannot_hang_under_another_partners_practice() {
    let Some(pg) = PgServer::start("a_site_cannot_hang_under_another_partners_practice") else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    assert_exit(&central(work.path(), Some(&url), &["migrate"]), 0);
    query(
        &pg,
        "central",
        "INSERT INTO partners (name) VALUES ('A'), ('B'); INSERT INTO practices (partner_id, name) VALUES (1, 'Clinic of A')",
    );
    // Partner B's site under partner A's practice: refused by the schema itself.
    let out = psql(
        &pg,
        "central",
        "INSERT INTO sites (partner_id, practice_id, name) VALUES (2, 1, 'smuggled')",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("foreign key"),
        "{}",
        text(&out.stderr)
    );
    query(
        &pg,
        "central",
        "INSERT INTO sites (partner_id, practice_id, name) VALUES (1, 1, 'Main office')",
    );
}

#[test]
fn configuration_refusals_exit_78_and_never_echo_a_password() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("ok.toml"), "listen = \"127.0.0.1:8443\"\n[database]\nurl = \"postgres://central@db.example/central\"\n").unwrap();
    let out = central(dir, None, &["--config", "ok.toml", "validate"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("ok.toml: valid"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(
        dir.join("secret.toml"),
        "[database]\nurl = \"postgres://central:s3cr3t-pass@db.example/central\"\n",
    )
    .unwrap();
    let out = central(dir, None, &["--config", "secret.toml", "validate"]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains("database.url"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("s3cr3t"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(dir.join("typo.toml"), "listn = \"127.0.0.1:1\"\n").unwrap();
    let out = central(dir, None, &["--config", "typo.toml", "validate"]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains("unknown field `listn`"),
        "{}",
        text(&out.stderr)
    );

    // No database anywhere: a clear 78 naming both ways to give one.
    let out = central(dir, None, &["migrate"]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains("DATABASE_URL"),
        "{}",
        text(&out.stderr)
    );
    let out = central(dir, Some("mysql://u:pw@db/x"), &["migrate"]);
    assert_exit(&out, 78);
    assert!(!text(&out.stderr).contains(":pw@"), "{}", text(&out.stderr));
}

/// `GET path` over plain HTTP/1.1; returns the status code, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for(port: u16, want: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = get(port, "/healthz");
        if got == Some(want) || Instant::now() > deadline {
            return got.unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn healthz_follows_the_database_down_and_back_up() {
    let Some(pg) = PgServer::start("healthz_follows_the_database_down_and_back_up") else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_osiris-central"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(work.path())
        .env("DATABASE_URL", &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_for(port, 200), 200);
    assert_eq!(get(port, "/no-such-page"), Some(404));
    pg.stop();
    assert_eq!(wait_for(port, 503), 503, "the database is down");
    pg.restart();
    assert_eq!(wait_for(port, 200), 200, "the database is back");
    // SIGTERM stops it cleanly.
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
