//! `[central]`: the partner's Central Command this appliance links to (outbound HTTPS only).

use std::path::PathBuf;

use serde::Deserialize;

/// The link to Central Command, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralConfig {
    /// Its base URL, `https://…/`.
    pub url: String,
    /// A PEM file of the CA that issued Central Command's server certificate; none: the system's
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// How often the newest checkpoint is pushed once linked (seconds).
    pub push_secs: u64,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCentral {
    url: String,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default = "default_push")]
    push_secs: u64,
}

fn default_push() -> u64 {
    300
}

impl RawCentral {
    /// The typed section, or `None` with every problem pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<CentralConfig> {
        let before = problems.len();
        let url = self.url.trim();
        let host = url
            .strip_prefix("https://")
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        match host {
            None => problems.push(format!(
                "central.url `{url}` must be an https:// URL (the link to Central Command is always TLS)"
            )),
            Some(host) if host.is_empty() || host.contains('@') || host.chars().any(char::is_whitespace) => {
                problems.push(format!("central.url `{url}` has no usable host"));
            }
            Some(_) => {}
        }
        if let Some(file) = &self.ca_file
            && !file.is_absolute()
        {
            problems.push(format!(
                "central.ca_file `{}` must be an absolute path",
                file.display()
            ));
        }
        if !(5..=86_400).contains(&self.push_secs) {
            problems.push(format!(
                "central.push_secs = {} is out of range 5..=86400",
                self.push_secs
            ));
        }
        (problems.len() == before).then(|| CentralConfig {
            url: if url.ends_with('/') {
                url.to_owned()
            } else {
                format!("{url}/")
            },
            ca_file: self.ca_file.clone(),
            push_secs: self.push_secs,
        })
    }
}
