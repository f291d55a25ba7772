//! The updater's settings: `/etc/osiris/update.toml`, written by the `services.osiris.updates`
//! NixOS module, parsed into typed values (the trust [`Policy`] included). `osiris update` reads
//! them; the daemon needs only the state directory, which its own configuration names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::state::Policy;
use update_manifest::VendorKey;

/// Where the updater finds manifests and keeps its state, and what it trusts.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    /// Where the signed manifest is published (`https://…` or `file://…`).
    pub manifest_url: String,
    /// Pinned keys, the running release, boot tries and the health gate's deadline.
    pub policy: Policy,
    /// The updater's state directory.
    pub state_dir: PathBuf,
    /// The EFI system partition's mount point.
    pub esp: PathBuf,
    /// Where `LoaderEntrySelected` is read.
    pub efivars: PathBuf,
    /// The appliance configuration (site, data directory, API socket).
    pub appliance_config: PathBuf,
    /// The `nix` program used to import the verified closure.
    pub nix: PathBuf,
    /// Network timeout per request.
    pub timeout: Duration,
}

/// Update settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateConfigError {
    /// The file cannot be read.
    #[error("cannot read update settings {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the position.
        message: String,
    },
    /// A value does not parse.
    #[error("update settings: {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why (the parser's message).
        reason: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdateConfig {
    /// Where the signed manifest is published (`https://…` or `file://…`).
    manifest_url: String,
    /// Pinned manifest signing key, `name:base64`.
    vendor_key: String,
    /// Pinned narinfo signing keys, `name:base64`.
    cache_keys: Vec<String>,
    /// The running release.
    installed_version: String,
    /// The updater's state directory.
    state_dir: PathBuf,
    /// The EFI system partition's mount point.
    esp: PathBuf,
    /// Where `LoaderEntrySelected` is read.
    #[serde(default = "default_efivars")]
    efivars: PathBuf,
    /// Boot attempts for a new entry.
    #[serde(default = "default_tries")]
    tries: u32,
    /// Health gate deadline after the first boot, in seconds.
    #[serde(default = "default_health_deadline")]
    health_deadline_secs: u64,
    /// The appliance configuration (site, data directory, API socket).
    appliance_config: PathBuf,
    /// The `nix` program used to import the verified closure.
    #[serde(default = "default_nix")]
    nix: PathBuf,
    /// Network timeout per request, in seconds.
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// The appliance boots only signed UKIs (`services.osiris.secureBoot`): stage the manifest's
    /// `uki` as a type #2 entry and refuse manifests without one.
    #[serde(default)]
    secure_boot: bool,
}

impl UpdateConfig {
    /// Reads and parses the settings file.
    pub fn load(path: &Path) -> Result<UpdateConfig, UpdateConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| UpdateConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        UpdateConfig::parse(path, &text)
    }

    /// Parses the settings' text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<UpdateConfig, UpdateConfigError> {
        let raw: RawUpdateConfig =
            toml::from_str(text).map_err(|err| UpdateConfigError::Syntax {
                path: path.to_path_buf(),
                message: err.to_string(),
            })?;
        let invalid = |field, reason: &dyn std::fmt::Display| UpdateConfigError::Invalid {
            field,
            reason: reason.to_string(),
        };
        let policy = Policy {
            vendor_key: VendorKey::parse(&raw.vendor_key)
                .map_err(|err| invalid("vendor_key", &err))?,
            cache_keys: raw.cache_keys,
            installed: raw
                .installed_version
                .parse()
                .map_err(|err| invalid("installed_version", &err))?,
            tries: raw.tries,
            health_deadline: Duration::from_secs(raw.health_deadline_secs),
            secure_boot: raw.secure_boot,
        };
        Ok(UpdateConfig {
            manifest_url: raw.manifest_url,
            policy,
            state_dir: raw.state_dir,
            esp: raw.esp,
            efivars: raw.efivars,
            appliance_config: raw.appliance_config,
            nix: raw.nix,
            timeout: Duration::from_secs(raw.timeout_secs),
        })
    }
}

fn default_efivars() -> PathBuf {
    PathBuf::from("/sys/firmware/efi/efivars")
}
const fn default_tries() -> u32 {
    3
}
const fn default_health_deadline() -> u64 {
    900
}
fn default_nix() -> PathBuf {
    PathBuf::from("nix")
}
const fn default_timeout() -> u64 {
    60
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Expect) {
        let actual = match UpdateConfig::parse(Path::new("update.toml"), text) {
            Ok(cfg) => format!(
                "ok: installed {} tries {} deadline {:?} timeout {:?} nix {} secure boot {}",
                cfg.policy.installed,
                cfg.policy.tries,
                cfg.policy.health_deadline,
                cfg.timeout,
                cfg.nix.display(),
                cfg.policy.secure_boot
            ),
            Err(err) => err.to_string(),
        };
        expect.assert_eq(&actual);
    }

    const KEY: &str = "vendor:WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=";

    #[test]
    fn the_nixos_module_settings_parse_and_bad_values_are_named() {
        let base = |extra: &str| {
            format!(
                "manifest_url = \"file:///m.json\"\nvendor_key = \"{KEY}\"\ncache_keys = []\nstate_dir = \"/s\"\nesp = \"/boot\"\nappliance_config = \"/etc/osiris/appliance.toml\"\n{extra}"
            )
        };
        check(
            &base("installed_version = \"1.2.3\"\n"),
            expect![
                "ok: installed 1.2.3 tries 3 deadline 900s timeout 60s nix nix secure boot false"
            ],
        );
        check(
            &base("installed_version = \"1.2.3\"\nsecure_boot = true\n"),
            expect![
                "ok: installed 1.2.3 tries 3 deadline 900s timeout 60s nix nix secure boot true"
            ],
        );
        check(
            &base("installed_version = \"one\"\n"),
            expect![
                "update settings: installed_version: version `one` is invalid: use MAJOR.MINOR.PATCH with decimal numbers, e.g. 1.4.2"
            ],
        );
        check(
            &base("installed_version = \"1.2.3\"\ntries = \"3\"\n"),
            expect![[r#"
                update.toml: TOML parse error at line 8, column 9
                  |
                8 | tries = "3"
                  |         ^^^
                invalid type: string "3", expected u32
            "#]],
        );
    }
}
