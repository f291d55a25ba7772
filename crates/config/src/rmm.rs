//! `[[rmm]]`: the RMMs whose device inventory the appliance imports and reconciles with Active
//! Directory (Datto RMM, ConnectWise Automate): one site (client) each, the API secret or
//! integrator password named by vault entry, never held here.

use std::path::PathBuf;

use serde::Deserialize;

/// One RMM, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmmConfig {
    /// Display name, unique among `[[rmm]]` tables (`osiris rmm import --name`).
    pub name: String,
    pub kind: RmmKind,
    /// Datto: the platform's API URL (`https://concord-api.centrastage.net`, …); Automate: the
    /// server's URL. An https origin, no path.
    pub api_url: String,
    /// Datto: the practice's site UID; Automate: its client ID.
    pub site: String,
    /// Datto: the API user's API key; Automate: the integrator user name.
    pub api_user: String,
    /// Automate: the integration's client ID (a GUID); `None` for Datto.
    pub client_id: Option<String>,
    /// The vault entry holding Datto's API secret key or the integrator's password.
    pub credential: String,
    /// Seconds a whole import may take, rate-limit waits included.
    pub timeout_secs: u64,
    /// A PEM file of the only CA to trust; none: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// Which RMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmmKind {
    Datto,
    ConnectWiseAutomate,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRmm {
    name: String,
    /// `datto` or `connectwise-automate`.
    kind: String,
    api_url: String,
    site: String,
    api_user: String,
    #[serde(default)]
    client_id: Option<String>,
    credential: String,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: u64,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

fn default_timeout_secs() -> u64 {
    300
}

/// The `[[rmm]]` tables, each typed, or `None` when any has a problem (all are reported).
pub(crate) fn parse_rmm(raw: &[RawRmm], problems: &mut Vec<String>) -> Option<Vec<RmmConfig>> {
    let before = problems.len();
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for raw in raw {
        let what = format!("rmm `{}`", raw.name.escape_debug());
        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            problems.push(format!(
                "{what}: the name must be 1-64 letters, digits, `-`, `_` or `.`"
            ));
        }
        if !names.insert(raw.name.as_str()) {
            problems.push(format!(
                "{what}: the name is used twice; names must be unique"
            ));
        }
        let kind = match raw.kind.as_str() {
            "datto" => Some(RmmKind::Datto),
            "connectwise-automate" => Some(RmmKind::ConnectWiseAutomate),
            other => {
                problems.push(format!(
                    "{what}: unknown kind `{}` (known: datto, connectwise-automate)",
                    other.escape_debug()
                ));
                None
            }
        };
        let api_url = raw.api_url.trim().trim_end_matches('/');
        let origin_ok = api_url.strip_prefix("https://").is_some_and(|host| {
            !host.is_empty()
                && !host.contains(['/', '@', '?', '#'])
                && !host.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !origin_ok {
            problems.push(format!(
                "{what}: api_url `{}` must be an https:// origin without a path (Datto: the platform's API URL such as https://concord-api.centrastage.net; Automate: https://your-automate-server)",
                raw.api_url.escape_debug()
            ));
        }
        match kind {
            Some(RmmKind::Datto) => {
                if !is_guid(&raw.site) {
                    problems.push(format!(
                        "{what}: site `{}` must be the Datto site's UID (a GUID, from Sites > the site)",
                        raw.site.escape_debug()
                    ));
                }
                if raw.client_id.is_some() {
                    problems.push(format!(
                        "{what}: `client_id` belongs to kind = \"connectwise-automate\"; Datto signs in with api_user (the API key) and the secret key in the vault"
                    ));
                }
            }
            Some(RmmKind::ConnectWiseAutomate) => {
                if raw.site.is_empty()
                    || raw.site.len() > 18
                    || !raw.site.bytes().all(|b| b.is_ascii_digit())
                {
                    problems.push(format!(
                        "{what}: site `{}` must be the Automate client's numeric ID",
                        raw.site.escape_debug()
                    ));
                }
                if !raw.client_id.as_deref().is_some_and(is_guid) {
                    problems.push(format!(
                        "{what}: client_id must be the integration's client ID, a GUID ConnectWise issues (developer registration)"
                    ));
                }
            }
            None => {}
        }
        if raw.api_user.trim().is_empty()
            || raw.api_user.len() > 256
            || raw.api_user.chars().any(char::is_control)
        {
            problems.push(format!(
                "{what}: api_user must be Datto's API key or Automate's integrator user name (no control characters)"
            ));
        }
        if raw.credential.is_empty() {
            problems.push(format!(
                "{what}: `credential` must name the vault entry holding the API secret key or the integrator's password (`osiris credentials set NAME --kind password`)"
            ));
        }
        if raw.timeout_secs == 0 || raw.timeout_secs > 3_600 {
            problems.push(format!(
                "{what}: timeout_secs = {} is out of range 1..=3600",
                raw.timeout_secs
            ));
        }
        if let Some(kind) = kind {
            out.push(RmmConfig {
                name: raw.name.clone(),
                kind,
                api_url: api_url.to_owned(),
                site: raw.site.to_lowercase(),
                api_user: raw.api_user.trim().to_owned(),
                client_id: raw.client_id.clone(),
                credential: raw.credential.clone(),
                timeout_secs: raw.timeout_secs,
                ca_file: raw.ca_file.clone(),
            });
        }
    }
    (problems.len() == before).then_some(out)
}

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_problem_is_named() {
        let text = r#"
site = "s"
[[rmm]]
name = "datto"
kind = "datto"
api_url = "http://concord-api.centrastage.net/api"
site = "not-a-uid"
api_user = ""
client_id = "x"
credential = ""
timeout_secs = 0

[[rmm]]
name = "cw"
kind = "connectwise-automate"
api_url = "https://rmm.example.com"
site = "17; DROP"
api_user = "integrator"
credential = "cw"

[[rmm]]
name = "cw"
kind = "kaseya"
api_url = "https://x.example.com"
site = "1"
api_user = "u"
credential = "c"
"#;
        let problems = crate::parse("site.toml", text).unwrap_err().to_string();
        for needle in [
            "api_url `http://concord-api.centrastage.net/api` must be an https:// origin",
            "site `not-a-uid` must be the Datto site's UID",
            "`client_id` belongs to kind = \"connectwise-automate\"",
            "api_user must be",
            "`credential` must name the vault entry",
            "timeout_secs = 0 is out of range",
            "site `17; DROP` must be the Automate client's numeric ID",
            "client_id must be the integration's client ID",
            "rmm `cw`: the name is used twice",
            "unknown kind `kaseya`",
        ] {
            assert!(problems.contains(needle), "{needle} not in:\n{problems}");
        }
    }

    #[test]
    fn a_good_table_is_typed() {
        let text = r#"
site = "s"
[[rmm]]
name = "datto"
kind = "datto"
api_url = "https://concord-api.centrastage.net/"
site = "8A2F3C4D-1B2C-4D5E-8F90-0123456789AB"
api_user = "K3Y"
credential = "datto-secret"
"#;
        let config = crate::parse("site.toml", text).unwrap();
        let rmm = &config.rmm[0];
        assert_eq!(rmm.kind, super::RmmKind::Datto);
        assert_eq!(rmm.api_url, "https://concord-api.centrastage.net");
        assert_eq!(rmm.site, "8a2f3c4d-1b2c-4d5e-8f90-0123456789ab");
        assert_eq!(rmm.timeout_secs, 300);
    }
}
