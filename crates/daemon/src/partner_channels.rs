//! The escalation channels the partner set once at Central Command for all its appliances: kept
//! as `<data_dir>/partner-channels.json` (names, kinds, severities, webhook URLs; 0600) with
//! each secret in the credential vault as `partner-channel-<name>`, loaded at start and replaced
//! when the link brings a change. They deliver next to the configured channels, named
//! `partner-<name>` in notifications and evidence.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The file that lists them.
pub(crate) const FILE: &str = "partner-channels.json";

/// A channel as kept on disk (its secret is in the vault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    name: String,
    kind: String,
    min_severity: String,
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<link_proto::EmailSettings>,
}

fn vault_name(channel: &str) -> String {
    format!("partner-channel-{channel}")
}

/// Opens the site's credential vault, making its key file first when the key is a file that
/// does not exist yet (a site that never stored a credential).
fn vault(config: &config::Config, data_dir: &Path) -> anyhow::Result<credentials::Vault> {
    let path = credentials::default_vault_path(config.credentials.vault.as_deref(), data_dir);
    let key = credentials::KeySource::resolve(config.credentials.key_file.as_deref(), data_dir);
    if let credentials::KeySource::File(file) = &key
        && !file.exists()
    {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        credentials::Vault::init_key(file)
            .with_context(|| format!("creating the vault key {}", file.display()))?;
    }
    credentials::Vault::open(&path, &key)
        .with_context(|| format!("opening the credential vault {}", path.display()))
}

fn channel(kept: &Kept, secret: &str) -> anyhow::Result<escalate::Channel> {
    let min_severity = kept
        .min_severity
        .parse()
        .map_err(|_| anyhow::anyhow!("partner channel `{}`: severity", kept.name))?;
    let kind = match (kept.kind.as_str(), &kept.url, &kept.email) {
        ("slack", None, None) => escalate::ChannelKind::Slack {
            url: secret.to_owned(),
        },
        ("teams", None, None) => escalate::ChannelKind::Teams {
            url: secret.to_owned(),
        },
        ("pagerduty", None, None) => escalate::ChannelKind::PagerDuty {
            routing_key: secret.to_owned(),
            events_url: escalate::channel::PAGERDUTY_EVENTS_URL.to_owned(),
        },
        ("webhook", Some(url), None) => escalate::ChannelKind::Webhook {
            url: url.clone(),
            secret: secret.as_bytes().to_vec(),
        },
        ("email", None, Some(email)) => escalate::ChannelKind::Email {
            server: email.server.clone(),
            port: email.port,
            security: if email.security == "tls" {
                escalate::EmailSecurity::Tls
            } else {
                escalate::EmailSecurity::StartTls
            },
            from: email.from.clone(),
            to: email.to.clone(),
            username: Some(email.username.clone()),
            password: Some(secret.to_owned()),
            ca_pem: None,
        },
        (kind, _, _) => anyhow::bail!("partner channel `{}`: unusable kind `{kind}`", kept.name),
    };
    let channel = escalate::Channel {
        name: format!("partner-{}", kept.name),
        min_severity,
        kind,
    };
    if let Some(problem) = channel.problems().into_iter().next() {
        anyhow::bail!(problem);
    }
    Ok(channel)
}

/// The partner's channels as kept (none before the first link brought any). Blocking.
pub(crate) fn load(
    config: &config::Config,
    data_dir: &Path,
) -> anyhow::Result<Vec<escalate::Channel>> {
    let path = data_dir.join(FILE);
    let kept: Vec<Kept> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", path.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let vault = vault(config, data_dir)?;
    kept.iter()
        .map(|k| {
            let secret = vault.get(&vault_name(&k.name))?.ok_or_else(|| {
                anyhow::anyhow!("partner channel `{}`: no secret in the vault", k.name)
            })?;
            channel(k, secret.secret.expose())
        })
        .collect()
}

/// Replaces the partner's channels: secrets into the vault (old ones removed), the list into
/// [`FILE`]; returns them ready to deliver. Blocking.
pub(crate) fn replace(
    config: &config::Config,
    data_dir: &Path,
    offered: &[link_client::PartnerChannel],
) -> anyhow::Result<Vec<escalate::Channel>> {
    let kept: Vec<Kept> = offered
        .iter()
        .map(|c| Kept {
            name: c.name.clone(),
            kind: c.kind.clone(),
            min_severity: c.min_severity.clone(),
            url: c.url.clone(),
            email: c.email.clone(),
        })
        .collect();
    // Judge them all before anything is written.
    let channels = kept
        .iter()
        .zip(offered)
        .map(|(k, c)| channel(k, &c.secret))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut vault = vault(config, data_dir)?;
    for c in offered {
        vault.set(
            &vault_name(&c.name),
            credentials::CredentialKind::Password,
            credentials::Secret::new(c.secret.to_string()),
        )?;
    }
    let gone: Vec<String> = vault
        .list()
        .into_iter()
        .map(|info| info.name)
        .filter(|name| {
            name.strip_prefix("partner-channel-")
                .is_some_and(|n| !offered.iter().any(|c| c.name == n))
        })
        .collect();
    for name in gone {
        vault.remove(&name)?;
    }
    let bytes = serde_json::to_vec_pretty(&kept).context("encoding the partner channels")?;
    durable::write(&data_dir.join(FILE), &bytes, 0o600)?;
    Ok(channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(kind: &str, url: Option<&str>, email: Option<link_proto::EmailSettings>) -> Kept {
        Kept {
            name: "oncall".to_owned(),
            kind: kind.to_owned(),
            min_severity: "high".to_owned(),
            url: url.map(str::to_owned),
            email,
        }
    }

    #[test]
    fn partner_channels_become_deliverable_channels_or_a_clear_refusal() {
        let email = link_proto::EmailSettings {
            server: "smtp.acme.example".to_owned(),
            port: 465,
            security: "tls".to_owned(),
            from: "osiris@acme.example".to_owned(),
            to: vec!["oncall@acme.example".to_owned()],
            username: "osiris@acme.example".to_owned(),
        };
        let mail = channel(&kept("email", None, Some(email)), "smtp-password").unwrap();
        assert_eq!(mail.name, "partner-oncall");
        assert_eq!(mail.kind.as_str(), "email");
        assert!(matches!(
            mail.kind,
            escalate::ChannelKind::Email {
                security: escalate::EmailSecurity::Tls,
                ..
            }
        ));
        let slack = channel(&kept("slack", None, None), "https://hooks.slack.example/x").unwrap();
        assert_eq!(slack.kind.as_str(), "slack");
        let hook = channel(
            &kept("webhook", Some("https://hooks.acme.example/osiris"), None),
            "signing",
        )
        .unwrap();
        assert_eq!(hook.kind.as_str(), "webhook");
        for (bad, why) in [
            (kept("email", None, None), "unusable kind `email`"),
            (kept("webhook", None, None), "unusable kind `webhook`"),
            (kept("fax", None, None), "unusable kind `fax`"),
        ] {
            let err = channel(&bad, "x").unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
