//! Central Command's TOML configuration: where to listen, which database, metrics. Parsed into
//! typed values; never holds a secret (the database password comes from `DATABASE_URL` in the
//! environment or a 0600 `password_file`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default listen address of `serve` when neither the config nor `--listen` names one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// A configuration that cannot be used; the message names the field and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown field or a wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The configuration file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// The field, e.g. `database.url`.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// The database, if the file names one (`DATABASE_URL` in the environment wins).
    pub database: Option<Database>,
    /// Where Prometheus metrics are served; off unless set.
    pub metrics_listen: Option<SocketAddr>,
    /// The server's certificate and key (PEM files); required unless `listen` is loopback.
    pub tls: Option<Tls>,
    /// The appliance link: the link CA directory and the witness key.
    pub link: Option<Link>,
    /// Image and agent releases relayed to the fleet: the vendor keys they must be signed with.
    pub fleet: Option<Fleet>,
    /// Remote L2: the provider Central Command calls for its appliances (`POST /v1/l2/plan`).
    pub l2: Option<L2>,
}

/// Remote L2 (docs/L2.md, "Remote L2"): Central Command holds the provider's API key and each
/// partner's daily budget; appliances in `mode = "remote"` send it their scrubbed requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2 {
    /// `anthropic` or `openai` (OpenAI-compatible servers included).
    pub provider: l2::Provider,
    /// The provider's base URL as its SDK takes it; `http://` only to loopback.
    pub endpoint: String,
    /// The model every relayed request is sent to (the appliance's choice is replaced).
    pub model: String,
    /// A 0600 file holding only the provider's API key.
    pub api_key_file: PathBuf,
    /// Millionths of a dollar per million input and output tokens of `model`.
    pub input_micro_usd_per_mtok: u64,
    pub output_micro_usd_per_mtok: u64,
    /// A request's `max_tokens` is lowered to this.
    pub max_tokens: u32,
    pub timeout_secs: u64,
    /// Each partner's daily limits (UTC days) unless `osiris-central admin l2 budget` sets others.
    pub partner_daily_tokens: u64,
    pub partner_daily_micro_usd: u64,
}

/// What the fleet's releases must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The vendor's manifest key (`name:base64`), the same the appliances pin; image releases
    /// cannot be added without it.
    pub vendor_key: Option<update_manifest::VendorKey>,
    /// The vendor's signed agent release root (a file, the one the appliances name in
    /// `[agents] release_root`); when set, agent releases are verified against it when added.
    pub agent_root: Option<PathBuf>,
}

/// The HTTPS server's certificate chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (0600).
    pub key_file: PathBuf,
}

/// The appliance link's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link CA's directory (`ca.pem`, `ca.key`), made by `osiris-central link init`.
    pub ca_dir: PathBuf,
    /// The witness's signing key (0600), made by `osiris-central link init`.
    pub witness_key_file: PathBuf,
}

/// The database connection, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// `postgres://user@host:port/dbname` (no password in it).
    pub url: url::Url,
    /// A 0600 file holding the password, if the server needs one.
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    metrics_listen: Option<String>,
    database: Option<RawDatabase>,
    tls: Option<RawTls>,
    link: Option<RawLink>,
    fleet: Option<RawFleet>,
    l2: Option<RawL2>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawL2 {
    provider: String,
    endpoint: String,
    model: String,
    api_key_file: PathBuf,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    #[serde(default = "default_l2_max_tokens")]
    max_tokens: u32,
    #[serde(default = "default_l2_timeout")]
    timeout_secs: u64,
    partner_daily_token_budget: u64,
    partner_daily_budget_usd: f64,
}

fn default_l2_max_tokens() -> u32 {
    1024
}

fn default_l2_timeout() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    vendor_key: Option<String>,
    agent_root: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    ca_dir: PathBuf,
    witness_key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    password_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| unreachable!()),
            database: None,
            metrics_listen: None,
            tls: None,
            link: None,
            fleet: None,
            l2: None,
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        let invalid = |field: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            message,
        };
        let addr = |field: &'static str, value: &str| {
            value.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    field,
                    format!("`{value}` is not an address with a port, e.g. 127.0.0.1:8443"),
                )
            })
        };
        let listen = match raw.listen {
            Some(listen) => addr("listen", &listen)?,
            None => Config::default().listen,
        };
        let metrics_listen = raw
            .metrics_listen
            .map(|value| addr("metrics_listen", &value))
            .transpose()?;
        let database = raw
            .database
            .map(|db| {
                let url =
                    parse_database_url(&db.url).map_err(|msg| invalid("database.url", msg))?;
                if url.password().is_some() {
                    return Err(invalid(
                        "database.url",
                        "holds a password; configuration files never hold secrets: put it in \
                         database.password_file (mode 0600) or DATABASE_URL in the service's \
                         environment"
                            .to_owned(),
                    ));
                }
                if let Some(file) = &db.password_file
                    && !file.is_absolute()
                {
                    return Err(invalid(
                        "database.password_file",
                        format!("`{}` must be an absolute path", file.display()),
                    ));
                }
                Ok(Database {
                    url,
                    password_file: db.password_file,
                })
            })
            .transpose()?;
        let absolute = |field: &'static str, path: PathBuf| {
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(invalid(
                    field,
                    format!("`{}` must be an absolute path", path.display()),
                ))
            }
        };
        let tls = raw
            .tls
            .map(|tls| {
                Ok::<_, ConfigError>(Tls {
                    cert_file: absolute("tls.cert_file", tls.cert_file)?,
                    key_file: absolute("tls.key_file", tls.key_file)?,
                })
            })
            .transpose()?;
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(invalid(
                "tls",
                format!(
                    "listening on {listen} needs [tls] cert_file and key_file: plain HTTP is only for this machine (127.0.0.1)"
                ),
            ));
        }
        let link = raw
            .link
            .map(|link| {
                Ok::<_, ConfigError>(Link {
                    ca_dir: absolute("link.ca_dir", link.ca_dir)?,
                    witness_key_file: absolute("link.witness_key_file", link.witness_key_file)?,
                })
            })
            .transpose()?;
        let fleet = raw
            .fleet
            .map(|fleet| {
                let vendor_key = fleet
                    .vendor_key
                    .map(|key| {
                        update_manifest::VendorKey::parse(&key).map_err(|err| {
                            invalid(
                                "fleet.vendor_key",
                                format!("{err}; write it as NAME:BASE64, the key the appliances pin (services.osiris.updates.vendorKey)"),
                            )
                        })
                    })
                    .transpose()?;
                let agent_root = fleet
                    .agent_root
                    .map(|path| absolute("fleet.agent_root", path))
                    .transpose()?;
                if vendor_key.is_none() && agent_root.is_none() {
                    return Err(invalid(
                        "fleet",
                        "an empty [fleet] table: set vendor_key (image releases) or agent_root (agent releases), or remove the table".to_owned(),
                    ));
                }
                Ok(Fleet {
                    vendor_key,
                    agent_root,
                })
            })
            .transpose()?;
        let l2 = raw
            .l2
            .map(|raw| {
                let provider = match raw.provider.as_str() {
                    "anthropic" => l2::Provider::Anthropic,
                    "openai" => l2::Provider::OpenAi,
                    other => {
                        return Err(invalid(
                            "l2.provider",
                            format!("`{other}` is not a provider: write \"anthropic\" or \"openai\" (OpenAI-compatible servers use \"openai\")"),
                        ));
                    }
                };
                let endpoint = raw.endpoint.trim().to_owned();
                let endpoint_ok = url::Url::parse(&endpoint).is_ok_and(|url| match url.scheme() {
                    "https" => url.host().is_some(),
                    "http" => matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
                    _ => false,
                });
                if !endpoint_ok {
                    return Err(invalid(
                        "l2.endpoint",
                        format!("`{endpoint}` must be an https:// URL (plain http:// only to this machine)"),
                    ));
                }
                if raw.model.trim().is_empty() || raw.model.len() > 200 || raw.model.chars().any(char::is_control) {
                    return Err(invalid("l2.model", "name the provider's model, e.g. \"claude-sonnet-4-5\"".to_owned()));
                }
                let usd = |field: &'static str, value: f64, most: f64| {
                    if value.is_finite() && (0.0..=most).contains(&value) {
                        Ok((value * 1_000_000.0).round() as u64)
                    } else {
                        Err(invalid(field, format!("{value} is not an amount between 0 and {most} US dollars")))
                    }
                };
                if !(1..=100_000).contains(&raw.max_tokens) {
                    return Err(invalid("l2.max_tokens", format!("{} is not between 1 and 100000", raw.max_tokens)));
                }
                if !(1..=600).contains(&raw.timeout_secs) {
                    return Err(invalid("l2.timeout_secs", format!("{} is not between 1 and 600", raw.timeout_secs)));
                }
                Ok(L2 {
                    provider,
                    endpoint,
                    model: raw.model.trim().to_owned(),
                    api_key_file: absolute("l2.api_key_file", raw.api_key_file)?,
                    input_micro_usd_per_mtok: usd("l2.input_usd_per_mtok", raw.input_usd_per_mtok, 10_000.0)?,
                    output_micro_usd_per_mtok: usd("l2.output_usd_per_mtok", raw.output_usd_per_mtok, 10_000.0)?,
                    max_tokens: raw.max_tokens,
                    timeout_secs: raw.timeout_secs,
                    partner_daily_tokens: raw.partner_daily_token_budget,
                    partner_daily_micro_usd: usd("l2.partner_daily_budget_usd", raw.partner_daily_budget_usd, 1_000_000.0)?,
                })
            })
            .transpose()?;
        Ok(Config {
            listen,
            database,
            metrics_listen,
            tls,
            link,
            fleet,
            l2,
        })
    }
}

/// Parses a PostgreSQL URL (`postgres://` or `postgresql://`), explaining what is wrong.
pub fn parse_database_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text)
        .map_err(|err| format!("`{}` is not a URL ({err})", redact_url_text(text)))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "`{}`: the scheme must be postgres:// (PostgreSQL is the only supported database)",
            redact(&url)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{}` names no host", redact(&url)));
    }
    Ok(url)
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    shown.to_string()
}

/// Best effort for text that did not parse as a URL: drop anything between `:` and `@` of the
/// authority, so a password never reaches an error message.
fn redact_url_text(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let authority = &text[scheme_end + 3..at];
            match authority.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:REDACTED{}", &text[..scheme_end + 3], &text[at..])
                }
                None => text.to_owned(),
            }
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("central.toml")).map_err(|err| err.to_string())
    }

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn a_full_file_parses_into_typed_values() {
        let config = parse(
            r#"listen = "0.0.0.0:443"
metrics_listen = "127.0.0.1:9464"

[database]
url = "postgres://central@db.example:5432/central"
password_file = "/run/keys/db"

[tls]
cert_file = "/etc/central/cert.pem"
key_file = "/etc/central/key.pem"

[link]
ca_dir = "/var/lib/central/link-ca"
witness_key_file = "/var/lib/central/witness.key"

[fleet]
agent_root = "/etc/central/agent-root.json"
"#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 443);
        assert_eq!(config.metrics_listen.unwrap().port(), 9464);
        let db = config.database.unwrap();
        assert_eq!(db.url.host_str(), Some("db.example"));
        assert_eq!(db.password_file.unwrap(), Path::new("/run/keys/db"));
        assert_eq!(
            config.tls.unwrap().key_file,
            Path::new("/etc/central/key.pem")
        );
        assert_eq!(
            config.link.unwrap().ca_dir,
            Path::new("/var/lib/central/link-ca")
        );
        let fleet = config.fleet.unwrap();
        assert_eq!(
            (fleet.vendor_key, fleet.agent_root.as_deref()),
            (None, Some(Path::new("/etc/central/agent-root.json")))
        );
    }

    #[test]
    fn plain_http_is_only_for_this_machine() {
        let err = parse("listen = \"0.0.0.0:8080\"").unwrap_err();
        assert!(err.contains("needs [tls] cert_file and key_file"), "{err}");
        assert!(parse("listen = \"127.0.0.1:8080\"").is_ok());
        assert!(parse("listen = \"[::1]:8080\"").is_ok());
    }

    #[test]
    fn bad_values_name_the_field_and_what_to_do() {
        let cases = [
            (
                "listen = \"localhost\"",
                "central.toml: listen: `localhost` is not an address with a port",
            ),
            ("lisen = \"1.2.3.4:1\"", "unknown field `lisen`"),
            (
                "[database]\nurl = \"mysql://db/x\"",
                "database.url: `mysql://db/x`: the scheme must be postgres://",
            ),
            ("[database]\nurl = \"postgres:///x\"", "names no host"),
            (
                "[database]\nurl = \"postgres://u@db/x\"\npassword_file = \"db.pw\"",
                "database.password_file: `db.pw` must be an absolute path",
            ),
            (
                "[fleet]\nagent_root = \"root.json\"",
                "fleet.agent_root: `root.json` must be an absolute path",
            ),
            ("[fleet]\n", "fleet: an empty [fleet] table: set vendor_key"),
            (
                "[fleet]\nagent_roots = \"/x\"",
                "unknown field `agent_roots`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_password_in_the_file_is_refused_and_never_echoed() {
        let err = parse("[database]\nurl = \"postgres://central:hunter2-secret@db/central\"")
            .unwrap_err();
        assert!(err.contains("never hold secrets"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err =
            parse("[database]\nurl = \"mysql://central:hunter2-secret@db/central\"").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("[database]\nurl = \"postgres://central:hunter2-secret@[db/central\"")
            .unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
