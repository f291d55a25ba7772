//! What the link tests share: running `osiris-central` against a test PostgreSQL with its own
//! TLS certificate, link CA and witness key.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, IsCa, Issuer, KeyPair, PKCS_ED25519};

pub(crate) mod appliance;
pub(crate) mod user;

pub(crate) const CODE: &str = "7K3M-9Q2X-ABCD";

pub(crate) fn central(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris-central"))
        .args(["--config", "central.toml"])
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// One query against the test database `central`, its answer unaligned and trimmed.
#[track_caller]
pub(crate) fn psql(pg: &test_support::postgres::PgServer, sql: &str) -> String {
    let out = pg.client("psql", &["-d", "central", "-At", "-c", sql]);
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The server's own TLS: a test CA and a leaf for 127.0.0.1 (what a partner's real certificate is).
pub(crate) fn server_tls(dir: &Path) -> String {
    let ca_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    write_private(&dir.join("server.key"), &leaf_key.serialize_pem());
    ca_cert.pem()
}

/// An HTTPS client trusting the test server CA, with an optional client identity (PEM cert, PEM key).
pub(crate) fn https_client(server_ca: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_cert(server_ca)).unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            use rustls::pki_types::pem::PemObject;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder
                .with_client_auth_cert(vec![pem_cert(cert)], key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub(crate) fn pem_cert(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// The same with ECDSA P-256 keys, which browsers accept (Chromium has no Ed25519 in TLS):
/// replaces `server.pem` and `server.key` in `dir`; returns the CA's PEM.
pub(crate) fn server_tls_for_browsers(dir: &Path) -> String {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    write_private(&dir.join("server.key"), &leaf_key.serialize_pem());
    ca_cert.pem()
}

pub(crate) fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts `osiris-central serve` in `dir` and waits until `/healthz` answers over TLS.
    pub(crate) fn start(dir: &Path, url: &str, port: u16) -> Server {
        let server = Server(
            Command::new(env!("CARGO_BIN_EXE_osiris-central"))
                .args(["--config", "central.toml", "serve"])
                .current_dir(dir)
                .env("DATABASE_URL", url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

/// A Central Command in `dir`: config with TLS and link keys, `link init`, and one partner with
/// one practice and one site per name in `partners`. Returns (port, server CA PEM, witness key).
pub(crate) fn setup(dir: &Path, url: &str, partners: &[&str]) -> (u16, String, String) {
    let server_ca = server_tls(dir);
    let port = free_port();
    std::fs::write(
        dir.join("central.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n[tls]\ncert_file = \"{d}/server.pem\"\nkey_file = \"{d}/server.key\"\n[link]\nca_dir = \"{d}/link-ca\"\nwitness_key_file = \"{d}/witness.key\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let out = ok(&central(
        dir,
        url,
        &[
            "link",
            "init",
            "--witness-name",
            "central.acme-it.example/witness",
        ],
    ));
    let witness_key = out
        .lines()
        .find_map(|l| l.strip_prefix("witness key: "))
        .unwrap()
        .to_owned();
    write_private(&dir.join("admin.pw"), "a long admin password\n");
    for (idx, partner) in partners.iter().enumerate() {
        let n = (idx + 1).to_string();
        ok(&central(
            dir,
            url,
            &[
                "admin",
                "partner",
                "create",
                partner,
                "--admin",
                &format!("admin{n}@{n}.example"),
                "--password-file",
                "admin.pw",
            ],
        ));
        ok(&central(
            dir,
            url,
            &[
                "admin",
                "practice",
                "--partner",
                &n,
                &format!("Practice of {partner}"),
            ],
        ));
        ok(&central(
            dir,
            url,
            &["admin", "site", "--practice", &n, "Main office"],
        ));
    }
    (port, server_ca, witness_key)
}

/// A vendor-signed manifest for `version`, signed with `seed`'s key, expiring in a day.
pub(crate) fn signed_manifest(
    seed: u8,
    version: &str,
    counter: u64,
) -> (Vec<u8>, update_manifest::VendorKey) {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let vendor = update_manifest::VendorKey::from_signing_key("osiris-vendor-1", &signing);
    let fmt = &time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let manifest = update_manifest::Manifest {
        schema: update_manifest::MANIFEST_SCHEMA_V1.to_owned(),
        version: version.to_owned(),
        min_version: "0.0.0".to_owned(),
        system: format!(
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-osiris-{version}"
        ),
        cache_url: "https://cache.vendor.example".to_owned(),
        cache_keys: vec![format!(
            "osiris-cache-1:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
        )],
        released: now.format(fmt).unwrap(),
        expires: (now + time::Duration::days(1)).format(fmt).unwrap(),
        counter,
    };
    let signed = update_manifest::SignedManifest::sign(&manifest, "osiris-vendor-1", &signing);
    (serde_json::to_vec(&signed).unwrap(), vendor)
}

/// Sets partner `partner`'s channel as `POST /v1/channels` would: its secret sealed to Central
/// Command's at-rest key (derived from the witness key in `dir`). Returns the SQL to run.
pub(crate) fn channel_sql(
    dir: &Path,
    partner: i64,
    name: &str,
    kind: &str,
    secret: &str,
) -> String {
    let witness = std::fs::read_to_string(dir.join("witness.key")).unwrap();
    let at_rest = central::link::channel_key_from(&witness);
    let sealed = link_proto::seal::seal(
        &at_rest.public(),
        secret.as_bytes(),
        &central::scope::channel_at_rest_info(partner, name),
    )
    .unwrap();
    format!(
        "INSERT INTO partner_channels (partner_id, name, kind, min_severity, secret_sealed, updated_by)
         VALUES ({partner}, '{name}', '{kind}', 'high', '{}', 'test')
         ON CONFLICT (partner_id, name) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed",
        serde_json::to_string(&sealed).unwrap()
    )
}

/// A vendor of endpoint-agent releases: its signed root and the release key that signs
/// manifests (as `scripts/agent-release-sign` makes them).
pub(crate) struct AgentVendor {
    /// The signed root (what `[fleet] agent_root` and `[agents] release_root` name).
    pub(crate) root: Vec<u8>,
    release_key: agent_release::SecretKey,
}

impl AgentVendor {
    pub(crate) fn new(name: &str) -> AgentVendor {
        use agent_release::vendor::{self, RootSpec};
        let root_key = agent_release::SecretKey::generate(&format!("{name}-root")).unwrap();
        let release_key = agent_release::SecretKey::generate(&format!("{name}-release")).unwrap();
        let root = vendor::sign_root(
            &RootSpec {
                version: 1,
                expires_unix: 4_102_444_800,
                root_keys: vec![root_key.public()],
                root_threshold: 1,
                release_keys: vec![release_key.public()],
                release_threshold: 1,
            },
            &[&root_key],
        )
        .unwrap();
        AgentVendor { root, release_key }
    }

    /// A Linux agent release of `version` for `binary`: writes `manifest-{tag}.json` and
    /// `agent-{tag}` into `dir` and returns their file names.
    pub(crate) fn release(
        &self,
        dir: &Path,
        tag: &str,
        version: &str,
        binary: &[u8],
    ) -> (String, String) {
        use agent_release::vendor::{self, ManifestSpec};
        let manifest = vendor::sign_manifest(
            &ManifestSpec::for_binary(
                agent_release::Platform::LinuxX86_64,
                version.parse().unwrap(),
                "osiris-agent",
                binary,
            ),
            &[&self.release_key],
        )
        .unwrap();
        let (m, b) = (format!("manifest-{tag}.json"), format!("agent-{tag}"));
        std::fs::write(dir.join(&m), manifest).unwrap();
        std::fs::write(dir.join(&b), binary).unwrap();
        (m, b)
    }
}
