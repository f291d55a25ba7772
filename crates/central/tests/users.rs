//! Partners' users against the real server and PostgreSQL: login with TOTP enrolment and codes,
//! the session cookie's attributes, CSRF, lockout and per-address rate limiting, roles, and a
//! walk over every user route as a user of another partner that must find nothing of it.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::postgres::PgServer;

mod common;
use common::user::{User, code, secret_of};
use common::{central, free_port, ok, text, write_private};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sql(pg: &PgServer, query: &str) -> String {
    let out = pg.client("psql", &["-d", "central", "-At", "-c", query]);
    assert!(out.status.success(), "{query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn start(dir: &Path, url: &str) -> (Server, u16) {
    let port = free_port();
    std::fs::write(
        dir.join("central.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n[link]\nca_dir = \"{d}/link-ca\"\nwitness_key_file = \"{d}/witness.key\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    // The link keys (the channel secrets' at-rest key is derived from the witness key).
    let init = Command::new(env!("CARGO_BIN_EXE_osiris-central"))
        .args([
            "--config",
            "central.toml",
            "link",
            "init",
            "--witness-name",
            "central.test/witness",
        ])
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_osiris-central"))
            .args(["--config", "central.toml", "serve"])
            .current_dir(dir)
            .env("DATABASE_URL", url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

const PW: &str = "a long admin password";

#[test]
fn users_log_in_with_totp_and_never_see_another_partners_data() {
    let Some(pg) = PgServer::start("users_log_in_with_totp_and_never_see_another_partners_data")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    write_private(&dir.join("pw"), &format!("{PW}\n"));
    std::fs::write(dir.join("central.toml"), "").unwrap();
    for (n, partner) in [(1, "Acme IT"), (2, "Beta MSP")] {
        ok(&central(
            dir,
            &url,
            &[
                "admin",
                "partner",
                "create",
                partner,
                "--admin",
                &format!("admin@{n}.example"),
                "--password-file",
                "pw",
            ],
        ));
        ok(&central(
            dir,
            &url,
            &[
                "admin",
                "practice",
                "--partner",
                &n.to_string(),
                &format!("Practice <b>{n}</b>"),
            ],
        ));
        ok(&central(
            dir,
            &url,
            &[
                "admin",
                "site",
                "--practice",
                &n.to_string(),
                &format!("Site of {partner}"),
            ],
        ));
    }
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "user",
            "--partner",
            "1",
            "--email",
            "viewer@1.example",
            "--role",
            "practice_viewer",
            "--practice",
            "1",
            "--password-file",
            "pw",
        ],
    ));
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "user",
            "--partner",
            "1",
            "--email",
            "auditor@1.example",
            "--role",
            "auditor",
            "--expires-days",
            "30",
            "--password-file",
            "pw",
        ],
    ));
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "user",
            "--partner",
            "1",
            "--email",
            "old-auditor@1.example",
            "--role",
            "auditor",
            "--expires-days",
            "1",
            "--password-file",
            "pw",
        ],
    ));
    sql(
        &pg,
        "UPDATE users SET expires_at = now() - interval '1 day' WHERE email = 'old-auditor@1.example'",
    );
    // Partner A has an appliance and a critical alert about it.
    sql(
        &pg,
        "INSERT INTO appliances (partner_id, site_id, appliance_key, cert_sha256, certificate) VALUES (1, 1, 'osiris-appliance/acme0001+00000000+AQ==', decode(repeat('11', 32), 'hex'), '\\x00')",
    );
    sql(
        &pg,
        "INSERT INTO alerts (partner_id, appliance_id, severity, kind, message) VALUES (1, 1, 'critical', 'evidence_fork', 'Acme appliance log rewritten')",
    );
    // … an incident and a healing-log entry its appliance reported.
    sql(
        &pg,
        "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase, updated_at, occurrences, flapping, acknowledged)
         VALUES (1, 7, now(), 'Acme-FRONTDESK', 'WIN-BITLOCKER-001', 'high', 'escalated', now(), 2, false, false)",
    );
    sql(
        &pg,
        "INSERT INTO healing_log (appliance_id, entry_id, at, device, check_id, tier, rule, result)
         VALUES (1, 1, now(), 'Acme-web1', 'LIN-SSH-001', 'L1', 'L1-LIN-SSH-001', 'fixed')",
    );
    // … and an evidence kit it delivered, verified and kept.
    sql(
        &pg,
        "INSERT INTO kit_requests (partner_id, appliance_id, requested_by, status, finished_at, bundles, kit)
         VALUES (1, 1, 1, 'verified', now(), 3, convert_to('Acme kit bytes', 'UTF8'))",
    );
    // A release the operator added (releases belong to the server, rollouts to partners).
    sql(
        &pg,
        "INSERT INTO releases (version, manifest, counter, expires_at, added_by) VALUES ('1.2.0', '\\x7b7d', 1, now() + interval '1 day', 'test')",
    );
    // … and an agent release (its document is only relayed here; appliances verify it).
    sql(
        &pg,
        "INSERT INTO agent_releases (platform, version, manifest, file_name, body, sha256, size, added_by)
         VALUES ('linux-x86_64', '1.4.2', '\\x7b7d', 'osiris-agent', '\\x00', sha256('\\x00'), 1, 'test')",
    );
    let (_server, port) = start(dir, &url);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Partner A's administrator: the cookie's attributes, then TOTP enrolment before anything.
        let mut a = User::new(port);
        let answer = a.login("ADMIN@1.example", PW, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let cookie = answer.set_cookie.unwrap();
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert_eq!(
            a.get("/v1/sites").await.status,
            403,
            "a partner role must enrol TOTP first"
        );
        let answer = a
            .post("/v1/session/totp/begin", serde_json::json!({}))
            .await;
        let uri = answer.body["uri"].as_str().unwrap().to_owned();
        assert!(
            uri.starts_with(
                "otpauth://totp/OsirisCare%20Central%20Command:admin%401.example?secret="
            ),
            "{uri}"
        );
        let secret = secret_of(&uri);
        let wrong = a
            .post(
                "/v1/session/totp/confirm",
                serde_json::json!({"code": "000000"}),
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert_eq!(
            a.post(
                "/v1/session/totp/confirm",
                serde_json::json!({"code": code(&secret, 0)})
            )
            .await
            .status,
            204
        );
        let sites = a.get("/v1/sites").await;
        assert_eq!(sites.status, 200);
        assert_eq!(sites.body[0]["name"], "Site of Acme IT");
        assert_eq!(
            sites.body[0]["practice"], "Practice <b>1</b>",
            "stored and returned as data"
        );

        // The site's incidents and healing log, as the appliance reported them.
        let incidents = a.get("/v1/sites/1/incidents").await;
        assert_eq!(incidents.status, 200);
        assert_eq!(
            (
                incidents.body[0]["device"].as_str(),
                incidents.body[0]["phase"].as_str()
            ),
            (Some("Acme-FRONTDESK"), Some("escalated"))
        );
        let healing = a.get("/v1/sites/1/healing").await;
        assert_eq!(
            (
                healing.body[0]["tier"].as_str(),
                healing.body[0]["result"].as_str()
            ),
            (Some("L1"), Some("fixed"))
        );

        // Evidence kits: asked for with an optional period, listed, downloaded once verified.
        let appliance_id = sql(&pg, "SELECT id FROM appliances");
        let kits_path = format!("/v1/appliances/{appliance_id}/kits");
        let asked = a
            .post(
                &kits_path,
                serde_json::json!({"from": "2026-11-01", "to": "2026-11-30"}),
            )
            .await;
        assert_eq!(
            (asked.status, asked.body["status"].as_str()),
            (202, Some("pending"))
        );
        let pending_id = asked.body["id"].as_i64().unwrap();
        for (body, want) in [
            (
                serde_json::json!({"from": "yesterday"}),
                "from must be a date as YYYY-MM-DD, not `yesterday`",
            ),
            (
                serde_json::json!({"from": "2026-12-01", "to": "2026-11-01"}),
                "the period ends (2026-11-01) before it starts (2026-12-01)",
            ),
        ] {
            let refused = a.post(&kits_path, body).await;
            assert_eq!(
                (refused.status, refused.body["error"].as_str()),
                (400, Some(want))
            );
        }
        let listed = a.get("/v1/kits").await;
        assert_eq!(listed.status, 200);
        assert_eq!(
            listed.body[0]["period_from"].as_str(),
            Some("2026-11-01"),
            "{}",
            listed.body
        );
        let not_yet = a.get(&format!("/v1/kits/{pending_id}/download")).await;
        assert_eq!(not_yet.status, 409);
        assert!(
            not_yet.body["error"]
                .as_str()
                .unwrap()
                .contains("has not been delivered yet"),
            "{}",
            not_yet.body
        );
        let kit_id = sql(&pg, "SELECT id FROM kit_requests WHERE status = 'verified'");
        // A monthly packet of A's appliance, whose report names A.
        let packet_id = sql(
            &pg,
            &format!(
                "WITH kept AS (INSERT INTO packets (partner_id, appliance_id, period, bundle_seq, bundle_line, evidence, generated_at, complete)
                 SELECT partner_id, id, '2026-11', 9, '\\x7b7d'::bytea, true, '2026-12-01T00:00:04Z', true FROM appliances WHERE id = {appliance_id}
                 RETURNING id) SELECT id FROM kept"
            ),
        );
        sql(
            &pg,
            &format!(
                "INSERT INTO packet_files (packet_id, name, sha256, size_bytes, content)
                 VALUES ({packet_id}, 'hipaa-2026-11.html', sha256('Acme report'::bytea), 11, 'Acme report'::bytea)"
            ),
        );
        let download = a.get(&format!("/v1/kits/{kit_id}/download")).await;
        assert_eq!(
            (download.status, download.raw.as_slice()),
            (200, b"Acme kit bytes".as_slice())
        );

        // Fleet: A's administrator offers the release to its practice first; the fleet view shows
        // the offer next to each appliance's version and update state.
        let release = sql(&pg, "SELECT id FROM releases");
        let listed = a.get("/v1/releases").await;
        assert_eq!(listed.body[0]["version"], "1.2.0", "{}", listed.body);
        let practice = sql(&pg, "SELECT id FROM practices WHERE partner_id = 1");
        let rollout_path = format!("/v1/releases/{release}/rollout");
        for (body, status) in [
            (serde_json::json!({"percent": 101}), 400),
            (
                serde_json::json!({"percent": 0, "practices": [999_999]}),
                404,
            ),
            (
                serde_json::json!({"percent": 0, "practices": [practice.parse::<i64>().unwrap()]}),
                204,
            ),
        ] {
            assert_eq!(a.post(&rollout_path, body).await.status, status);
        }
        let fleet = a.get("/v1/fleet").await;
        assert_eq!(
            (fleet.status, fleet.body[0]["offered"].as_str()),
            (200, Some("1.2.0")),
            "{}",
            fleet.body
        );
        assert_eq!(fleet.body[0]["agents_offered"], serde_json::json!({}));

        // Agent releases: the same, per platform; the fleet view shows what each is offered.
        let agent_release = sql(&pg, "SELECT id FROM agent_releases");
        let listed = a.get("/v1/agent-releases").await;
        assert_eq!(
            (listed.body[0]["platform"].as_str(), listed.body[0]["version"].as_str()),
            (Some("linux-x86_64"), Some("1.4.2")),
            "{}",
            listed.body
        );
        let agent_rollout_path = format!("/v1/agent-releases/{agent_release}/rollout");
        for (body, status) in [
            (serde_json::json!({"percent": -1}), 400),
            (
                serde_json::json!({"percent": 0, "practices": [999_999]}),
                404,
            ),
            (
                serde_json::json!({"percent": 0, "practices": [practice.parse::<i64>().unwrap()]}),
                204,
            ),
        ] {
            assert_eq!(a.post(&agent_rollout_path, body).await.status, status);
        }
        assert_eq!(
            a.post("/v1/agent-releases/999999/rollout", serde_json::json!({"percent": 1}))
                .await
                .status,
            404
        );
        let fleet = a.get("/v1/fleet").await;
        assert_eq!(
            fleet.body[0]["agents_offered"],
            serde_json::json!({"linux-x86_64": "1.4.2"}),
            "{}",
            fleet.body
        );
        let listed = a.get("/v1/agent-releases").await;
        assert_eq!(
            (listed.body[0]["percent"].as_i64(), listed.body[0]["practices"].clone()),
            (Some(0), serde_json::json!([practice.parse::<i64>().unwrap()]))
        );

        // Escalation channels: set once for all of A's appliances; the secret never comes back.
        let slack = "https://hooks.slack.example/services/T0/B0/Acme-secret-part";
        for (body, status, words) in [
            (
                serde_json::json!({"name": "oncall", "kind": "carrier-pigeon", "secret": "x"}),
                400,
                "channel kind `carrier-pigeon`: one of slack, teams, pagerduty, webhook, email",
            ),
            (
                serde_json::json!({"name": "hook", "kind": "webhook", "secret": "s3cret"}),
                400,
                "a webhook channel needs url = an https:// address",
            ),
            (
                serde_json::json!({"name": "Bad Name", "kind": "slack", "secret": slack}),
                400,
                "channel name `Bad Name`: 1-48 of a-z, 0-9, - and _",
            ),
            (
                serde_json::json!({"name": "oncall", "kind": "slack", "secret": "not a url"}),
                400,
                "secret: the incoming-webhook https:// URL",
            ),
            (
                serde_json::json!({"name": "mail", "kind": "email", "secret": "pw", "email": {
                    "server": "smtp.acme.example", "port": 587, "security": "starttls",
                    "from": "osiris@acme.example", "to": ["oncall@acme.example", "bob <bob@x.example>"],
                    "username": "osiris@acme.example"}}),
                400,
                "email recipient `bob <bob@x.example>` is not an e-mail address",
            ),
            (
                serde_json::json!({"name": "mail", "kind": "email", "secret": "pw", "email": {
                    "server": "smtp.acme.example", "port": 25, "security": "none",
                    "from": "osiris@acme.example", "to": ["oncall@acme.example"],
                    "username": "osiris@acme.example"}}),
                400,
                "email security `none`: starttls or tls",
            ),
            (
                serde_json::json!({"name": "mail", "kind": "email", "secret": "pw"}),
                400,
                "an email channel needs email = {server, port, security, from, to, username}",
            ),
        ] {
            let refused = a.post("/v1/channels", body).await;
            assert_eq!(
                (refused.status, refused.body["error"].as_str()),
                (status, Some(words))
            );
        }
        let set = a
            .post(
                "/v1/channels",
                serde_json::json!({"name": "oncall", "kind": "slack", "min_severity": "critical", "secret": slack}),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.body);
        let mail = a
            .post(
                "/v1/channels",
                serde_json::json!({"name": "mail", "kind": "email", "secret": "smtp-Acme-password", "email": {
                    "server": "smtp.acme.example", "port": 587, "security": "starttls",
                    "from": "osiris@acme.example", "to": ["oncall@acme.example"],
                    "username": "osiris@acme.example"}}),
            )
            .await;
        assert_eq!(mail.status, 200, "{}", mail.body);
        assert_eq!(
            sql(&pg, "SELECT count(*) FROM partner_channels WHERE secret_sealed::text LIKE '%smtp-Acme%'"),
            "0"
        );
        let listed = a.get("/v1/channels").await;
        assert_eq!(listed.body[1]["name"], "oncall");
        assert_eq!(listed.body[1]["min_severity"], "critical");
        assert_eq!(listed.body[0]["kind"], "email");
        assert_eq!(listed.body[0]["email"]["to"][0], "oncall@acme.example");
        let text = listed.body.to_string();
        assert!(!text.contains("secret-part") && !text.contains("smtp-Acme"), "{text}");
        assert_eq!(
            sql(&pg, "SELECT count(*) FROM partner_channels WHERE secret_sealed::text LIKE '%secret-part%'"),
            "0",
            "the secret is kept sealed"
        );
        let audit = a.get("/v1/audit").await.body.to_string();
        assert!(audit.contains("channel.set") && !audit.contains("secret-part"), "{audit}");
        assert!(audit.contains("agent_rollout.set"), "{audit}");

        // CSRF: a state-changing request without the session's token is refused.
        let alert_id = sql(&pg, "SELECT id FROM alerts").parse::<i64>().unwrap();
        let path = format!("/v1/alerts/{alert_id}/acknowledge");
        assert_eq!(
            a.call("POST", &path, Some(serde_json::json!({})), false)
                .await
                .status,
            403
        );

        // Later logins need the code; a code already used (the enrolment's step) is refused.
        let mut again = User::new(port);
        let answer = again.login("admin@1.example", PW, None).await;
        assert_eq!(
            (answer.status, answer.body["totp_required"].as_bool()),
            (401, Some(true))
        );
        assert_eq!(
            again
                .login("admin@1.example", PW, Some(code(&secret, 0)))
                .await
                .status,
            401,
            "replayed code"
        );
        assert_eq!(
            again
                .login("admin@1.example", PW, Some(code(&secret, 1)))
                .await
                .status,
            200
        );

        // Partner B's administrator walks every route with A's ids: nothing of A comes back.
        let mut b = User::new(port);
        b.enrol("admin@2.example", PW).await;
        let appliance = sql(&pg, "SELECT id FROM appliances");
        let kit_id = sql(&pg, "SELECT id FROM kit_requests WHERE status = 'verified'");
        let opened = sql(
            &pg,
            "SELECT extract(epoch from opened_at)::bigint FROM incidents WHERE incident_id = 7",
        );
        let ids = [
            ("{site}", "1"),
            ("{appliance}", appliance.as_str()),
            ("{incident}", "7"),
            ("{opened}", opened.as_str()),
            ("{alert}", &alert_id.to_string()),
            ("{kit}", kit_id.as_str()),
            ("{packet}", packet_id.as_str()),
            ("{name}", "hipaa-2026-11.html"),
            ("{release}", release.as_str()),
            ("{agent_release}", agent_release.as_str()),
            ("{channel}", "oncall"),
        ];
        for (method, template) in central::api::ROUTES {
            if template.starts_with("/v1/session") {
                continue;
            }
            let mut path = template.to_string();
            for (placeholder, id) in ids {
                path = path.replace(placeholder, id);
            }
            let body = (*method == "POST")
                .then(|| serde_json::json!({"code": "AAAA-BBBB-CCCC"}).to_string());
            let body = body.map(|b| {
                if path.ends_with("/claim") {
                    serde_json::from_str(&b).unwrap()
                } else if path == "/v1/channels" {
                    // B sets its own channel: only B's appliances will ever see it.
                    serde_json::json!({"name": "b-oncall", "kind": "pagerduty", "secret": "b-routing-key"})
                } else if path.ends_with("/actions") {
                    // B comments on A's incident (a body that would be taken for B's own).
                    serde_json::json!({"action": "comment", "text": "B was here"})
                } else if path.ends_with("/rollout") {
                    // B names A's practice (the release itself is the server's, seen by all).
                    serde_json::json!({"percent": 100, "practices": [1]})
                } else {
                    serde_json::json!({})
                }
            });
            let answer = b.call(method, &path, body, true).await;
            let text = format!("{} {}", answer.body, String::from_utf8_lossy(&answer.raw));
            assert!(
                !text.contains("Acme")
                    && !text.contains("acme0001")
                    && !text.contains("Practice <b>1</b>"),
                "{method} {path} leaked partner A's data: {text}"
            );
            if template.contains('{') {
                assert_eq!(answer.status, 404, "{method} {path}: {text}");
            } else {
                assert_eq!(answer.status, 200, "{method} {path}: {text}");
            }
        }
        assert_eq!(
            sql(&pg, "SELECT acknowledged_at IS NULL FROM alerts"),
            "t",
            "B acknowledged A's alert"
        );
        assert_eq!(
            sql(&pg, "SELECT count(*) FROM incident_actions"),
            "0",
            "B acted on A's incident"
        );
        assert_eq!(
            sql(&pg, "SELECT partner_id || ' ' || name FROM partner_channels ORDER BY 1"),
            "1 mail\n1 oncall\n2 b-oncall",
            "B's DELETE of `oncall` removed A's channel"
        );
        assert_eq!(a.call("DELETE", "/v1/channels/oncall", None, true).await.status, 204);
        assert_eq!(a.call("DELETE", "/v1/channels/oncall", None, true).await.status, 404);

        // A acknowledges its own alert; it is in A's audit log, not B's.
        assert_eq!(a.post(&path, serde_json::json!({})).await.status, 204);
        let audit = a.get("/v1/audit").await;
        assert!(
            audit.body.to_string().contains("alert.acknowledge"),
            "{}",
            audit.body
        );
        assert!(
            !b.get("/v1/audit")
                .await
                .body
                .to_string()
                .contains("alert.acknowledge")
        );

        // Roles: a practice viewer reads but cannot change; an auditor sees no operations.
        let mut viewer = User::new(port);
        assert_eq!(viewer.login("viewer@1.example", PW, None).await.status, 200);
        assert_eq!(
            viewer.get("/v1/sites").await.body[0]["name"],
            "Site of Acme IT"
        );
        assert_eq!(viewer.post(&path, serde_json::json!({})).await.status, 403);
        assert_eq!(
            viewer
                .post(
                    "/v1/sites/1/claim",
                    serde_json::json!({"code": "AAAA-BBBB-CCCC"})
                )
                .await
                .status,
            403
        );
        assert_eq!(viewer.get("/v1/audit").await.status, 403);
        let mut auditor = User::new(port);
        assert_eq!(
            auditor.login("auditor@1.example", PW, None).await.status,
            200
        );
        assert_eq!(auditor.get("/v1/alerts").await.status, 403);
        assert_eq!(auditor.get("/v1/fleet").await.status, 403);
        assert_eq!(viewer.get("/v1/releases").await.status, 403);
        assert_eq!(viewer.get("/v1/channels").await.status, 403);
        assert_eq!(
            viewer
                .call("DELETE", "/v1/channels/oncall", None, true)
                .await
                .status,
            403
        );
        assert_eq!(
            viewer
                .post(&rollout_path, serde_json::json!({"percent": 100}))
                .await
                .status,
            403
        );
        // Auditors ask for kits and download them; practice viewers only read the list.
        assert_eq!(
            auditor.post(&kits_path, serde_json::json!({})).await.status,
            202
        );
        assert_eq!(
            auditor
                .get(&format!("/v1/kits/{kit_id}/download"))
                .await
                .raw,
            b"Acme kit bytes"
        );
        assert_eq!(
            viewer.post(&kits_path, serde_json::json!({})).await.status,
            403
        );
        assert_eq!(auditor.get("/v1/sites/1/incidents").await.status, 403);
        assert_eq!(auditor.get("/v1/sites/1/healing").await.status, 403);
        assert_eq!(viewer.get("/v1/sites/1/incidents").await.status, 200);
        assert_eq!(
            auditor
                .get(&format!("/v1/appliances/{appliance}"))
                .await
                .status,
            200
        );
        let expired = User::new(port)
            .login("old-auditor@1.example", PW, None)
            .await;
        assert_eq!(expired.status, 403, "{}", expired.body);
        assert!(expired.body["error"].as_str().unwrap().contains("expired"));

        // Five wrong passwords lock the account, even for the right one afterwards.
        let mut guesser = User::new(port);
        for _ in 0..5 {
            assert_eq!(
                guesser
                    .login("viewer@1.example", "wrong password!!", None)
                    .await
                    .status,
                401
            );
        }
        let locked = guesser.login("viewer@1.example", PW, None).await;
        assert_eq!(locked.status, 423, "{}", locked.body);
        // Unknown and known addresses get the same answer.
        let unknown = guesser
            .login("nobody@nowhere.example", "wrong password!!", None)
            .await;
        assert_eq!(
            (unknown.status, unknown.body["error"].clone()),
            (
                401,
                serde_json::json!("the e-mail address, password or code is wrong")
            )
        );
        // Twenty failures from one address: the address waits, whatever account it tries.
        for n in 0..20 {
            guesser
                .login(
                    &format!("spray{n}@nowhere.example"),
                    "wrong password!!",
                    None,
                )
                .await;
        }
        assert_eq!(guesser.login("admin@2.example", PW, None).await.status, 429);

        // Logging out ends the session on the server, not only in the browser.
        let old_cookie = a.cookie.clone();
        assert_eq!(
            a.post("/v1/session/logout", serde_json::json!({}))
                .await
                .status,
            204
        );
        a.cookie = old_cookie;
        assert_eq!(a.get("/v1/sites").await.status, 401);
    });
    // Every login, failure and action is in the audit log, which cannot be edited.
    assert!(
        sql(
            &pg,
            "SELECT count(*) FROM audit_log WHERE action = 'session.login_failed'"
        )
        .parse::<i64>()
        .unwrap()
            >= 5
    );
    assert!(
        pg.client("psql", &["-d", "central", "-c", "DELETE FROM audit_log"])
            .status
            .code()
            != Some(0)
    );
}

/// Partner users act on an incident (acknowledge, assign, comment) through the API: roles that
/// do not change things are refused, another partner's incident is not found, a bad assignee or
/// comment is refused with words saying what is wrong, markup in a comment is stored as typed,
/// and every action is in the audit log (without the comment's text).
#[test]
fn partner_users_act_on_incidents_and_everyone_else_is_refused() {
    let Some(pg) = PgServer::start("partner_users_act_on_incidents_and_everyone_else_is_refused")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    write_private(&dir.join("pw"), &format!("{PW}\n"));
    std::fs::write(dir.join("central.toml"), "").unwrap();
    let admin = |args: &[&str]| ok(&central(dir, &url, args));
    for (n, partner) in [(1, "Acme IT"), (2, "Beta MSP")] {
        let email = format!("admin@{n}.example");
        admin(&[
            "admin",
            "partner",
            "create",
            partner,
            "--admin",
            &email,
            "--password-file",
            "pw",
        ]);
        admin(&[
            "admin",
            "practice",
            "--partner",
            &n.to_string(),
            &format!("Practice {n}"),
        ]);
        admin(&[
            "admin",
            "site",
            "--practice",
            &n.to_string(),
            &format!("Site {n}"),
        ]);
    }
    // Acme's second practice (3), seen by a technician limited to it.
    admin(&[
        "admin",
        "practice",
        "--partner",
        "1",
        "Acme's other practice",
    ]);
    for (email, role, extra) in [
        ("tech@1.example", "partner_technician", vec![]),
        (
            "tech-p3@1.example",
            "partner_technician",
            vec!["--practice", "3"],
        ),
        (
            "viewer@1.example",
            "practice_viewer",
            vec!["--practice", "1"],
        ),
        ("auditor@1.example", "auditor", vec!["--expires-days", "30"]),
    ] {
        let mut args = vec![
            "admin",
            "user",
            "--partner",
            "1",
            "--email",
            email,
            "--role",
            role,
            "--password-file",
            "pw",
        ];
        args.extend(extra);
        admin(&args);
    }
    // Each partner's appliance has reported an escalated incident 7 (same id, other appliance);
    // Acme's incident 8 is acknowledged already.
    for (appliance, partner, site) in [(1, 1, 1), (2, 2, 2)] {
        sql(
            &pg,
            &format!(
                "INSERT INTO appliances (partner_id, site_id, appliance_key, cert_sha256, certificate)
                 VALUES ({partner}, {site}, 'osiris-appliance/box{appliance}+00000000+AQ==', decode(repeat('{appliance}{appliance}', 32), 'hex'), '\\x00')"
            ),
        );
        sql(
            &pg,
            &format!(
                "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase, updated_at, occurrences, flapping, acknowledged)
                 VALUES ({appliance}, 7, to_timestamp(1764000000), 'FRONTDESK-{appliance}', 'WIN-BITLOCKER-001', 'high', 'escalated', to_timestamp(1764000060), 2, false, false)"
            ),
        );
    }
    sql(
        &pg,
        "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase, updated_at, occurrences, flapping, acknowledged)
         VALUES (1, 8, to_timestamp(1764000100), 'FRONTDESK-1', 'WIN-SCREENLOCK-001', 'medium', 'open', to_timestamp(1764000100), 1, false, true)",
    );
    let (_server, port) = start(dir, &url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut a = User::new(port);
        a.enrol("admin@1.example", PW).await;
        // The site's incident list gives what names the incident.
        let listed = a.get("/v1/sites/1/incidents").await;
        let escalated = &listed.body[0];
        assert_eq!(
            (escalated["incident_id"].as_i64(), escalated["opened_unix"].as_i64()),
            (Some(7), Some(1_764_000_000)),
            "{}",
            listed.body
        );
        let incident = "/v1/incidents/1/7/1764000000";
        let actions = format!("{incident}/actions");
        let detail = a.get(incident).await;
        assert_eq!(detail.status, 200, "{}", detail.body);
        assert_eq!(
            (
                detail.body["site_name"].as_str(),
                detail.body["practice"].as_str(),
                detail.body["incident"]["device"].as_str(),
                detail.body["actions"].as_array().map(Vec::len),
                &detail.body["assignee"],
            ),
            (
                Some("Site 1"),
                Some("Practice 1"),
                Some("FRONTDESK-1"),
                Some(0),
                &serde_json::Value::Null
            )
        );

        // Acknowledge once (a second one waits already), assign, comment.
        let ack = a.post(&actions, serde_json::json!({"action": "acknowledge"})).await;
        assert_eq!((ack.status, ack.body["status"].as_str()), (202, Some("waiting")));
        let again = a.post(&actions, serde_json::json!({"action": "acknowledge"})).await;
        assert_eq!(
            (again.status, again.body["error"].as_str()),
            (409, Some("an acknowledgement of this incident already waits for the appliance"))
        );
        let done = a
            .post(
                "/v1/incidents/1/8/1764000100/actions",
                serde_json::json!({"action": "acknowledge"}),
            )
            .await;
        assert_eq!(
            (done.status, done.body["error"].as_str()),
            (409, Some("this incident is already acknowledged on the appliance"))
        );
        let assigned = a
            .post(&actions, serde_json::json!({"action": "assign", "to": " TECH@1.example "}))
            .await;
        assert_eq!(assigned.status, 202, "{}", assigned.body);
        let typed = "  <script>alert('owned')</script>\r\nsecond line\n ";
        let commented = a
            .post(&actions, serde_json::json!({"action": "comment", "text": typed}))
            .await;
        assert_eq!(commented.status, 202, "{}", commented.body);
        let stored = "<script>alert('owned')</script>\nsecond line";
        assert_eq!(
            sql(&pg, "SELECT text FROM incident_actions WHERE kind = 'comment'"),
            stored,
            "stored as typed (trimmed, line breaks as \\n): escaping is the page's job"
        );

        // Refused with words.
        let long = "x".repeat(2001);
        for (body, status, words) in [
            (
                serde_json::json!({"action": "assign", "to": "viewer@1.example"}),
                400,
                "`viewer@1.example` is not one of your partner administrators or technicians; assign the incident to one of them",
            ),
            (
                serde_json::json!({"action": "assign", "to": "admin@2.example"}),
                400,
                "`admin@2.example` is not one of your partner administrators or technicians; assign the incident to one of them",
            ),
            (
                serde_json::json!({"action": "assign", "to": "tech-p3@1.example"}),
                400,
                "`tech-p3@1.example` sees only another practice; assign the incident to someone who sees this site",
            ),
            (
                serde_json::json!({"action": "assign", "to": "  "}),
                400,
                "assign needs `to`: the e-mail address of one of your partner administrators or technicians",
            ),
            (
                serde_json::json!({"action": "comment", "text": " \n "}),
                400,
                "the comment is empty",
            ),
            (
                serde_json::json!({"action": "comment", "text": long}),
                400,
                "the comment has 2001 characters; at most 2000",
            ),
            (
                serde_json::json!({"action": "comment", "text": "ring\u{7}ring"}),
                400,
                "the comment holds a control character (U+0007); only line breaks may be in it",
            ),
        ] {
            let refused = a.post(&actions, body.clone()).await;
            assert_eq!(
                (refused.status, refused.body["error"].as_str()),
                (status, Some(words)),
                "{body}"
            );
        }
        for body in [
            serde_json::json!({"action": "acknowledge", "by": "someone else"}),
            serde_json::json!({"action": "delete"}),
            serde_json::json!({"action": "comment"}),
        ] {
            assert_eq!(a.post(&actions, body.clone()).await.status, 422, "{body}");
        }
        assert_eq!(
            a.get("/v1/incidents/1/7/1764000001").await.status,
            404,
            "another opening time is another incident"
        );

        // The page's view: oldest first, who did what, all waiting for the appliance.
        let mut tech = User::new(port);
        tech.enrol("tech@1.example", PW).await;
        let detail = tech.get(incident).await;
        assert_eq!(detail.status, 200);
        let rows: Vec<(String, String, serde_json::Value, serde_json::Value)> = detail.body
            ["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["kind"].as_str().unwrap().to_owned(),
                    row["by"].as_str().unwrap().to_owned(),
                    row["sealed_seq"].clone(),
                    row["delivered_at"].clone(),
                )
            })
            .collect();
        let waiting = serde_json::Value::Null;
        assert_eq!(
            rows,
            [
                ("acknowledge".into(), "admin@1.example".into(), waiting.clone(), waiting.clone()),
                ("assign".into(), "admin@1.example".into(), waiting.clone(), waiting.clone()),
                ("comment".into(), "admin@1.example".into(), waiting.clone(), waiting.clone()),
            ]
        );
        assert_eq!(detail.body["assignee"], "tech@1.example");
        assert_eq!(detail.body["actions"][2]["text"], stored);
        // A technician acts too.
        assert_eq!(
            tech.post(&actions, serde_json::json!({"action": "comment", "text": "on it"}))
                .await
                .status,
            202
        );

        // Roles: a practice viewer reads, an auditor does not see operations, neither acts.
        let mut viewer = User::new(port);
        assert_eq!(viewer.login("viewer@1.example", PW, None).await.status, 200);
        assert_eq!(viewer.get(incident).await.status, 200);
        let mut auditor = User::new(port);
        assert_eq!(auditor.login("auditor@1.example", PW, None).await.status, 200);
        assert_eq!(auditor.get(incident).await.status, 403);
        for user in [&mut viewer, &mut auditor] {
            let refused = user
                .post(&actions, serde_json::json!({"action": "comment", "text": "hi"}))
                .await;
            assert_eq!(
                (refused.status, refused.body["error"].as_str()),
                (403, Some("your role does not allow this"))
            );
        }
        // Another partner's administrator: A's incident is not found, and B's own is B's.
        let mut b = User::new(port);
        b.enrol("admin@2.example", PW).await;
        assert_eq!(b.get(incident).await.status, 404);
        assert_eq!(
            b.post(&actions, serde_json::json!({"action": "acknowledge"})).await.status,
            404
        );
        let own = b.get("/v1/incidents/2/7/1764000000").await;
        assert_eq!(
            (own.status, own.body["incident"]["device"].as_str()),
            (200, Some("FRONTDESK-2"))
        );
        assert!(!own.body.to_string().contains("admin@1.example"), "{}", own.body);

        // The audit log has every action, not the comment's text.
        let audit = a.get("/v1/audit").await.body.to_string();
        for action in ["incident.acknowledge", "incident.assign", "incident.comment"] {
            assert!(audit.contains(action), "{action}: {audit}");
        }
        assert!(!audit.contains("owned"), "{audit}");
    });
    assert_eq!(
        sql(
            &pg,
            "SELECT partner_id || ' ' || kind || ' ' || coalesce(assignee_user::text, '-') FROM incident_actions ORDER BY id"
        ),
        "1 acknowledge -\n1 assign 3\n1 comment -\n1 comment -"
    );

    // The people an incident can be assigned to: the partner's administrators and technicians.
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let scope = |role, practice_id| central::scope::Scope {
            user_id: 1,
            partner_id: 1,
            practice_id,
            role,
        };
        use central::scope::Role;
        assert_eq!(
            central::scope::partner_people(&pool, &scope(Role::PartnerTechnician, None))
                .await
                .unwrap(),
            ["admin@1.example", "tech-p3@1.example", "tech@1.example"]
        );
        assert_eq!(
            central::scope::partner_people(&pool, &scope(Role::PartnerTechnician, Some(1)))
                .await
                .unwrap(),
            ["admin@1.example", "tech@1.example"]
        );
        assert!(matches!(
            central::scope::partner_people(&pool, &scope(Role::PracticeViewer, Some(1))).await,
            Err(central::scope::ScopeError::Forbidden)
        ));

        // A monthly packet of Acme's appliance (practice 1): seen and served within practice 1
        // and partner-wide, not to a user limited to Acme's other practice (3).
        let packet: i64 = sqlx::query_scalar(
            "INSERT INTO packets (partner_id, appliance_id, period, bundle_seq, bundle_line, evidence, generated_at, complete)
             VALUES (1, 1, '2026-11', 9, '\\x7b7d'::bytea, true, '2026-12-01T00:00:04Z', true) RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO packet_files (packet_id, name, sha256, size_bytes, content)
             VALUES ($1, 'cis-2026-11.csv', sha256('framework'::bytea), 9, 'framework'::bytea)",
        )
        .bind(packet)
        .execute(&pool)
        .await
        .unwrap();
        for (practice, seen) in [(None, true), (Some(1), true), (Some(3), false)] {
            let scope = scope(Role::PartnerTechnician, practice);
            let listed = central::scope::packets(&pool, &scope).await.unwrap();
            assert_eq!(listed.len(), usize::from(seen), "{practice:?}");
            let file = central::scope::packet_file(&pool, &scope, packet, "cis-2026-11.csv").await;
            match file {
                Ok((content, _)) => assert!(seen && content == b"framework", "{practice:?}"),
                Err(central::scope::ScopeError::NotFound) => assert!(!seen, "{practice:?}"),
                Err(err) => panic!("{practice:?}: {err}"),
            }
        }
    });
}
