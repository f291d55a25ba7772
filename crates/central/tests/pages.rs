//! The partner pages over real HTTP against the real server and PostgreSQL, as a browser without
//! JavaScript sees them: log in with the authenticator (enrolment included), every page with its
//! security headers and weight, the overview's filter and sort, escaping of what appliances
//! report, forms refused without their CSRF token or from another site, and every page route
//! walked as a user of another partner (nothing found) and by roles that may not see it.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use test_support::postgres::PgServer;

/// A browser without JavaScript: a session cookie, no redirects followed.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    csp: Option<String>,
    body: String,
}

impl Visitor {
    fn new(base: &str) -> Visitor {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("osiris_session={cookie}"));
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(form) = form {
            let body: Vec<String> = form
                .iter()
                .map(|(k, v)| format!("{k}={}", central::web::encode_component(v)))
                .collect();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.join("&"));
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        if let Some(cookie) = header("set-cookie") {
            let value = cookie
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("osiris_session=")
                .to_owned();
            self.cookie = (!value.is_empty()).then_some(value);
        }
        let (status, location, csp) = (
            response.status().as_u16(),
            header("location"),
            header("content-security-policy"),
        );
        Page {
            status,
            location,
            csp,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form), None).await
    }

    /// The CSRF token in a page's forms.
    fn csrf(page: &Page) -> String {
        between(&page.body, r#"name="csrf" value=""#, "\"").unwrap()
    }

    /// Logs in through the login form; enrols the authenticator when asked. Returns its secret.
    async fn log_in(&mut self, email: &str, password: &str, secret: Option<&[u8]>) -> Vec<u8> {
        let given = secret.map(|s| code(s, 0));
        let mut form = vec![("email", email), ("password", password), ("next", "/")];
        if let Some(given) = &given {
            form.push(("code", given));
        }
        let page = self.post("/login", &form).await;
        assert_eq!(page.status, 303, "{}", page.body);
        if let Some(secret) = secret {
            assert_eq!(page.location.as_deref(), Some("/"));
            return secret.to_vec();
        }
        assert_eq!(page.location.as_deref(), Some("/account/totp"));
        let enrol = self.get("/account/totp").await;
        assert_eq!(enrol.status, 200, "{}", enrol.body);
        assert!(
            enrol.body.contains("<svg class=\"qr\""),
            "a QR code drawn on the server"
        );
        let secret = base32(&between(&enrol.body, r#"id="totp-secret">"#, "<").unwrap());
        let csrf = Visitor::csrf(&enrol);
        let wrong = self
            .post("/account/totp", &[("csrf", &csrf), ("code", "000000")])
            .await;
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("did not match"), "{}", wrong.body);
        let done = self
            .post(
                "/account/totp",
                &[("csrf", &csrf), ("code", &code(&secret, 0))],
            )
            .await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/")),
            "{}",
            done.body
        );
        secret
    }
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

fn base32(encoded: &str) -> Vec<u8> {
    let (mut bits, mut count, mut out) = (0u64, 0, Vec::new());
    for c in encoded.chars() {
        bits = (bits << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).unwrap() as u64;
        count += 5;
        if count >= 8 {
            out.push((bits >> (count - 8)) as u8);
            count -= 8;
        }
    }
    out
}

/// What an authenticator app shows (RFC 6238, independent of the server's code).
fn code(secret: &[u8], offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&((now / 30 + offset) as u64).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let o = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[o] & 0x7f,
        digest[o + 1],
        digest[o + 2],
        digest[o + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

const PW: &str = "a long admin password";
const XSS: &str = "<img src=x onerror=alert(1)>";

struct World {
    _pg: PgServer,
    pool: sqlx::PgPool,
    base: String,
    site: i64,
    appliance: i64,
    other_site: i64,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn world(test: &str) -> Option<World> {
    let pg = PgServer::start(test)?;
    let url = pg.create_database("central");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .unwrap();
    central::db::migrate(&pool).await.unwrap();
    let first = central::admin::create_partner(&pool, "Acme IT", "admin@1.example", PW, "test")
        .await
        .unwrap();
    let second = central::admin::create_partner(&pool, "Beta MSP", "admin@2.example", PW, "test")
        .await
        .unwrap();
    let seeded = central::demo::seed(
        &pool,
        first.partner_id,
        central::demo::Sizes {
            sites: 12,
            devices: 40,
        },
    )
    .await
    .unwrap();
    let other = central::demo::seed(
        &pool,
        second.partner_id,
        central::demo::Sizes {
            sites: 2,
            devices: 5,
        },
    )
    .await
    .unwrap();
    // What an appliance may push as a host name, verbatim.
    sqlx::query(
        "INSERT INTO devices (appliance_id, name, class, status, checks_total, checks_failed, failing, observed_at, unchecked)
         VALUES ($1, $2, 'workstation', 'error', 0, 0, '[]', now(), 'unreachable')",
    )
    .bind(seeded.first_appliance)
    .bind(XSS)
    .execute(&pool)
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = central::server::AppState {
        pool: pool.clone(),
        link: None,
        l2: None,
    };
    tokio::spawn(central::server::serve_plain(listener, state, async {
        let _ = stopped.await;
    }));
    Some(World {
        _pg: pg,
        pool,
        base,
        site: seeded.first_site,
        appliance: seeded.first_appliance,
        other_site: other.first_site,
        _stop: stop,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_walk_every_page_log_in_with_totp_and_see_what_appliances_sent_as_text() {
    let Some(w) = world("partners_walk_every_page").await else {
        return;
    };
    let mut admin = Visitor::new(&w.base);
    // Without a session every page leads to the login, and back after it.
    let page = admin.get(&format!("/sites/{}", w.site)).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/login?next=%2Fsites%2F{}", w.site).as_str())
    );
    let wrong = admin
        .post(
            "/login",
            &[("email", "admin@1.example"), ("password", "not it")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("password or code is wrong"),
        "{}",
        wrong.body
    );
    let _secret = admin.log_in("admin@1.example", PW, None).await;

    let device = format!(
        "/devices/{}/{}",
        w.appliance,
        central::web::encode_component(XSS)
    );
    let pages = [
        "/".to_owned(),
        format!("/sites/{}", w.site),
        device.clone(),
        "/fleet".to_owned(),
        "/users".to_owned(),
        "/evidence".to_owned(),
        "/account".to_owned(),
    ];
    for path in &pages {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_eq!(page.csp.as_deref(), Some(central::web::CSP), "{path}");
        assert!(!page.csp.unwrap().contains("unsafe-inline"));
        assert!(
            page.body.len() < 200 * 1024,
            "{path} weighs {} bytes",
            page.body.len()
        );
        // No inline script or style, nothing from another host.
        assert!(
            !page.body.contains("<script>") && !page.body.contains(" style="),
            "{path}"
        );
        assert!(
            !page.body.contains("src=\"http") && !page.body.contains("href=\"http"),
            "{path}"
        );
        // The appliance's host name is text, never markup.
        assert!(!page.body.contains(XSS), "{path} carries the raw tag");
    }
    let site = admin.get(&format!("/sites/{}", w.site)).await.body;
    assert!(
        site.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "escaped, shown: {site}"
    );
    for column in [
        "BitLocker",
        "Defender",
        "Patches",
        "Firewall",
        "Screen lock",
    ] {
        assert!(site.contains(&format!(">{column}</th>")), "{column}");
    }
    assert!(site.contains("workstations checked"), "coverage");
    assert!(
        site.contains("did not answer on the network"),
        "reason for a workstation not checked"
    );
    assert!(
        site.contains("L1 — deterministic runbooks") && site.contains("L3 — escalated to a person")
    );
    assert!(site.contains("Witnessed bundles"));
    assert!(site.contains("<svg") && site.contains("HIPAA compliance of this site, last 90 days"));
    let page = admin.get(&device).await.body;
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;</h1>")
            || page.contains("&lt;img src=x onerror=alert(1)&gt; <span"),
        "{page}"
    );

    // The overview: worst first, filtered, sorted.
    let overview = admin.get("/").await.body;
    // The rows' verdicts (the summary pills above the table are skipped), worst first.
    let order = ["critical", "offline", "attention", "unclaimed", "healthy"];
    let table = &overview[overview.find("<table").unwrap()..];
    let ranks: Vec<usize> = table
        .match_indices("class=\"pill ")
        .map(|(i, _)| {
            let word = table[i + 12..].split('"').next().unwrap();
            order.iter().position(|o| *o == word).unwrap()
        })
        .collect();
    assert_eq!(ranks.len(), 12, "the twelve demo sites: {ranks:?}");
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "worst first: {ranks:?}"
    );
    assert!(
        ranks.first() < ranks.last(),
        "more than one verdict: {ranks:?}"
    );
    let critical = admin.get("/?verdict=critical").await.body;
    assert!(
        critical.contains("pill critical") && !critical.contains("pill healthy\""),
        "only critical sites"
    );
    let found = admin.get("/?q=site+00003&sort=name").await.body;
    assert_eq!(found.matches("data-site=").count(), 1, "one site matches");
    let part = admin.get("/?part=sites").await.body;
    assert!(
        part.starts_with("<div class=\"scroll\">") && !part.contains("<html"),
        "a live part is a fragment"
    );

    // Forms need the session's token and this site's origin.
    let account = admin.get("/account").await;
    let csrf = Visitor::csrf(&account);
    let refused = admin
        .post(
            "/account/password",
            &[
                ("csrf", "forged"),
                ("current", PW),
                ("new", "x"),
                ("again", "x"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let cross = admin
        .send(
            "POST",
            "/account/password",
            Some(&[
                ("csrf", &csrf),
                ("current", PW),
                ("new", "x"),
                ("again", "x"),
            ]),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(cross.status, 403);
    let short = admin
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PW),
                ("new", "short"),
                ("again", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 400);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );

    // Adding users: an auditor sees only evidence, a practice viewer no fleet.
    let users = admin.get("/users").await;
    let csrf = Visitor::csrf(&users);
    let practice: i64 = sqlx::query_scalar("SELECT practice_id FROM sites WHERE id = $1")
        .bind(w.site)
        .fetch_one(&w.pool)
        .await
        .unwrap();
    let practice = practice.to_string();
    for (email, role, extra) in [
        ("audit@cpa.example", "auditor", ("days", "30")),
        (
            "office@practice.example",
            "practice_viewer",
            ("practice", practice.as_str()),
        ),
    ] {
        let added = admin
            .post(
                "/users",
                &[
                    ("csrf", &csrf),
                    ("email", email),
                    ("role", role),
                    extra,
                    ("password", "first password 123"),
                ],
            )
            .await;
        assert_eq!(added.status, 303, "{}", added.body);
    }
    let no_expiry = admin
        .post(
            "/users",
            &[
                ("csrf", &csrf),
                ("email", "x@cpa.example"),
                ("role", "auditor"),
                ("password", "first password 123"),
            ],
        )
        .await;
    assert_eq!(no_expiry.status, 400);
    assert!(no_expiry.body.contains("1-365 days"), "{}", no_expiry.body);
    assert!(admin.get("/users").await.body.contains("audit@cpa.example"));

    let mut auditor = Visitor::new(&w.base);
    let login = auditor
        .post(
            "/login",
            &[
                ("email", "audit@cpa.example"),
                ("password", "first password 123"),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(
        auditor.get("/").await.location.as_deref(),
        Some("/evidence")
    );
    assert_eq!(auditor.get("/evidence").await.status, 200);
    for path in [
        format!("/sites/{}", w.site),
        "/fleet".to_owned(),
        "/users".to_owned(),
        device.clone(),
    ] {
        assert_eq!(auditor.get(&path).await.status, 403, "{path}");
    }
    let mut viewer = Visitor::new(&w.base);
    let login = viewer
        .post(
            "/login",
            &[
                ("email", "office@practice.example"),
                ("password", "first password 123"),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let mine = viewer.get("/").await.body;
    assert_eq!(
        mine.matches("data-site=").count(),
        5,
        "a practice viewer sees the practice's five sites"
    );
    assert_eq!(viewer.get(&format!("/sites/{}", w.site)).await.status, 200);
    for path in ["/fleet", "/users", "/evidence"] {
        assert_eq!(viewer.get(path).await.status, 403, "{path}");
    }

    // An incident: its timeline, and the actions that travel to the appliance.
    let (incident, opened): (i64, i64) = sqlx::query_as(
        "SELECT incident_id, extract(epoch from opened_at)::bigint FROM incidents WHERE appliance_id = $1 ORDER BY incident_id LIMIT 1",
    )
    .bind(w.appliance)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    let url = format!("/incidents/{}/{incident}/{opened}", w.appliance);
    let site = admin.get(&format!("/sites/{}", w.site)).await.body;
    assert!(
        site.contains(&format!("href=\"{url}\"")),
        "the site page links the incident"
    );
    let page = admin.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Opened on the appliance"),
        "{}",
        page.body
    );
    let csrf = Visitor::csrf(&page);
    let acked = admin
        .post(&format!("{url}/acknowledge"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (acked.status, acked.location.as_deref()),
        (303, Some(url.as_str())),
        "{}",
        acked.body
    );
    let commented = admin
        .post(
            &format!("{url}/comment"),
            &[
                ("csrf", &csrf),
                ("text", "<script>alert(2)</script> called the office"),
            ],
        )
        .await;
    assert_eq!(commented.status, 303, "{}", commented.body);
    let assigned = admin
        .post(
            &format!("{url}/assign"),
            &[("csrf", &csrf), ("to", "nobody@else.example")],
        )
        .await;
    assert_eq!(
        assigned.status, 400,
        "an assignee who is not a partner user is refused"
    );
    let page = admin.get(&url).await.body;
    assert!(page.contains("admin@1.example acknowledged it"), "{page}");
    assert!(page.contains("waiting for the appliance"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(2)&lt;/script&gt; called the office"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(2)"));
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM incident_actions WHERE sealed_seq IS NULL")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(waiting, 2, "two actions wait for the appliance");
    let seen = viewer.get(&url).await;
    assert_eq!(seen.status, 200);
    assert!(
        !seen.body.contains("Acknowledge"),
        "a practice viewer sees no forms"
    );
    let viewer_csrf = Visitor::csrf(&viewer.get("/account").await);
    let refused = viewer
        .post(
            &format!("{url}/comment"),
            &[("csrf", &viewer_csrf), ("text", "hi")],
        )
        .await;
    assert_eq!(refused.status, 403);

    // Ending an auditor's access: logged out at once, and the login refused.
    let users = admin.get("/users").await;
    let auditor_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'audit@cpa.example'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert!(
        users
            .body
            .contains(&format!("action=\"/users/{auditor_id}/end\""))
    );
    let ended = admin
        .post(
            &format!("/users/{auditor_id}/end"),
            &[("csrf", &Visitor::csrf(&users))],
        )
        .await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    assert_eq!(
        auditor.get("/evidence").await.status,
        303,
        "the auditor's session ended"
    );
    let again = auditor
        .post(
            "/login",
            &[
                ("email", "audit@cpa.example"),
                ("password", "first password 123"),
            ],
        )
        .await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("access has expired"), "{}", again.body);

    // Another partner's administrator finds nothing of this partner on any page.
    let mut other = Visitor::new(&w.base);
    other.log_in("admin@2.example", PW, None).await;
    let listed = other.get("/").await.body;
    assert!(!listed.contains(&format!("href=\"/sites/{}\"", w.site)));
    for (method, route) in central::web::ROUTES {
        let path = route
            .replace("{site}", &w.site.to_string())
            .replace("{appliance}", &w.appliance.to_string())
            .replace("{device}", &central::web::encode_component(XSS))
            .replace("{incident}", &incident.to_string())
            .replace("{opened}", &opened.to_string())
            .replace("{release}", "1")
            .replace("{user}", &auditor_id.to_string());
        let page = if *method == "GET" {
            other.get(&path).await
        } else {
            other.post(&path, &[]).await
        };
        assert!(
            !page.body.contains("Acme IT") && !page.body.contains("onerror"),
            "{method} {path}"
        );
        if *method == "GET" && (route.contains("{site}") || route.contains("{appliance}")) {
            assert_eq!(page.status, 404, "{method} {path}: {}", page.body);
        }
    }
    let other_csrf = Visitor::csrf(&other.get("/users").await);
    let admin_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'admin@1.example'")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    let foreign = other
        .post(&format!("/users/{admin_id}/end"), &[("csrf", &other_csrf)])
        .await;
    assert_eq!(foreign.status, 404, "another partner's user is not found");
    assert_eq!(admin.get("/").await.status, 200, "and keeps their access");
    assert_eq!(
        other.get(&format!("/sites/{}", w.other_site)).await.status,
        200,
        "its own site"
    );
}
