//! `[[target]]`: the machines to scan, parsed into one typed variant per transport (local, SSH,
//! WinRM), so a combination that cannot work (a key file for WinRM, Basic auth over HTTP, a pinned
//! certificate without HTTPS) cannot be represented. The TOML stays one flat table per target;
//! [`RawTarget`] reads it and [`RawTarget::parse`] reports every problem before anything is built.

use std::path::PathBuf;

use serde::Deserialize;

use model::Platform;

use crate::{is_valid_windows_user, password_source};

/// One machine to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Display name; unique within the file.
    pub name: String,
    pub platform: Platform,
    /// How to reach it.
    pub transport: TransportConfig,
}

/// How a target is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// The machine osiris runs on.
    Local,
    Ssh(SshConfig),
    WinRm(WinRmConfig),
}

/// An SSH target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// IP address or DNS name (validated with `model::is_valid_host`).
    pub address: String,
    /// Default 22.
    pub port: u16,
    /// Login user (validated with `model::is_valid_user`).
    pub user: String,
    pub login: SshLogin,
    /// `become = "sudo"`: run checks as root through `sudo -n`.
    pub become_root: bool,
    /// `host_key = "SHA256:…"`: the server's host key fingerprint as `ssh-keygen -lf` prints it.
    /// With it, any other key is refused before logging in; without it, a password login is
    /// refused on first contact (a key login pins the first key it sees).
    pub host_key: Option<String>,
}

/// Where an SSH login's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshLogin {
    /// A private key file (mode 0600).
    KeyFile(PathBuf),
    /// A file (mode 0600) holding the password.
    PasswordFile(PathBuf),
    /// A vault entry holding an SSH key or a password.
    Credential(String),
}

/// Where a password comes from: a 0600 file or a vault entry, never the configuration itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Credential(String),
    /// The host's own LAPS password, read from the directory for this cycle and held in memory
    /// only; never written in a configuration file (the workstation plan sets it).
    Directory,
}

/// A WinRM target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinRmConfig {
    /// IP address or DNS name.
    pub address: String,
    /// Default: [`WinRmSecurity::default_port`].
    pub port: Option<u16>,
    /// `user`, `DOMAIN\\user` or `user@domain`.
    pub user: String,
    pub password: PasswordSource,
    pub security: WinRmSecurity,
    /// The DNS name the HTTPS certificate must carry while the connection goes to `address`;
    /// set for discovered workstations (`address` is the IP their name resolved to), `None` for
    /// configured targets (the certificate must carry `address` itself).
    pub verify_name: Option<String>,
}

/// How WinRM messages are protected; only the safe combinations exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WinRmSecurity {
    /// HTTPS (port 5986), the server's certificate checked as `trust` says.
    Https { auth: WinRmAuth, trust: WinRmTrust },
    /// HTTP (port 5985) with NTLM message encryption.
    HttpNtlm,
}

/// WinRM authentication over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinRmAuth {
    Ntlm,
    Basic,
    /// Tickets from the domain's KDC (`[workstations]` only): the password goes only to the KDC,
    /// and the host must prove it holds its service key (mutual authentication).
    Kerberos,
}

/// How the server's HTTPS certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WinRmTrust {
    /// The system's roots.
    SystemRoots,
    /// A PEM file of the issuing CA.
    CaFile(PathBuf),
    /// The SHA-256 of the certificate's DER bytes.
    PinSha256([u8; 32]),
}

impl TargetConfig {
    /// The machine on this appliance (the default target).
    pub fn localhost() -> TargetConfig {
        TargetConfig {
            name: "localhost".to_owned(),
            platform: Platform::Linux,
            transport: TransportConfig::Local,
        }
    }

    /// The address a remote target is reached at (`None` for the local machine).
    pub fn address(&self) -> Option<&str> {
        match &self.transport {
            TransportConfig::Local => None,
            TransportConfig::Ssh(ssh) => Some(&ssh.address),
            TransportConfig::WinRm(winrm) => Some(&winrm.address),
        }
    }
}

impl WinRmSecurity {
    /// 5986 for HTTPS, 5985 for HTTP.
    pub fn default_port(&self) -> u16 {
        match self {
            WinRmSecurity::Https { .. } => 5986,
            WinRmSecurity::HttpNtlm => 5985,
        }
    }
}

/// A `[[target]]` table as written: one flat table for every transport.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    /// Display name; unique within the file.
    pub(crate) name: String,
    /// `linux`, `windows-server`, `windows-workstation` or `macos`.
    pub(crate) platform: String,
    /// How to reach it: `local` (the machine osiris runs on), `ssh` or `winrm`.
    transport: String,
    /// SSH, WinRM: IP address or DNS name.
    #[serde(default)]
    address: Option<String>,
    /// SSH (default 22), WinRM (default 5986, or 5985 without HTTPS): port.
    #[serde(default)]
    port: Option<u16>,
    /// SSH: login user; WinRM: Windows account.
    #[serde(default)]
    user: Option<String>,
    /// SSH: path to the private key file (mode 0600). Exactly one of `key_file`, `password_file`
    /// and `credential`.
    #[serde(default)]
    key_file: Option<PathBuf>,
    /// SSH, WinRM: path to a file (mode 0600) holding the password. Never put the password itself here.
    #[serde(default)]
    password_file: Option<PathBuf>,
    /// Instead of a key or password file: the name of a secret in the encrypted credential vault
    /// (`osiris credentials set NAME`): an SSH key or password for `ssh`, a password for `winrm`.
    #[serde(default)]
    credential: Option<String>,
    /// SSH: `sudo` to run checks as root through `sudo -n` (the user needs passwordless sudo).
    #[serde(default, rename = "become")]
    become_method: Option<String>,
    /// WinRM: `ntlm` (default) or `basic` (HTTPS only). Kerberos comes with AD support.
    #[serde(default)]
    auth: Option<String>,
    /// WinRM: `true` (default, port 5986) or `false` (port 5985, NTLM with message encryption only).
    #[serde(default)]
    https: Option<bool>,
    /// WinRM over HTTPS: PEM file of the CA that issued the host's certificate (default: system roots).
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// SSH: the host key's fingerprint, `SHA256:<base64>` as `ssh-keygen -lf` prints it.
    #[serde(default)]
    host_key: Option<String>,
    /// WinRM over HTTPS: pin the host's certificate by the SHA-256 of its DER bytes (64 hex digits)
    /// instead of trusting a CA.
    #[serde(default)]
    cert_sha256: Option<String>,
}

/// The transports a target names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    Ssh,
    WinRm,
}

impl RawTarget {
    /// The typed target, or `None` with every problem pushed; `platform` is `None` when its name
    /// was already reported as unknown.
    pub(crate) fn parse(
        &self,
        platform: Option<Platform>,
        problems: &mut Vec<String>,
    ) -> Option<TargetConfig> {
        let mut mine = Vec::new();
        let transport = self.transport(platform, &mut mine);
        let ok = mine.is_empty();
        problems.append(&mut mine);
        Some(TargetConfig {
            name: self.name.clone(),
            platform: platform?,
            transport: transport.filter(|_| ok)?,
        })
    }

    fn transport(
        &self,
        platform: Option<Platform>,
        problems: &mut Vec<String>,
    ) -> Option<TransportConfig> {
        let name = &self.name;
        if !model::is_valid_host(name) {
            problems.push(format!(
                "target name `{}` is invalid: use a host name (letters, digits, `-` and `.`)",
                name.escape_debug()
            ));
        }
        let (kind, applies): (Kind, &[&str]) = match self.transport.as_str() {
            "local" => (Kind::Local, &[]),
            "ssh" => (
                Kind::Ssh,
                &[
                    "address",
                    "port",
                    "user",
                    "key_file",
                    "password_file",
                    "credential",
                    "become",
                    "host_key",
                ],
            ),
            "winrm" => (
                Kind::WinRm,
                &[
                    "address",
                    "port",
                    "user",
                    "password_file",
                    "credential",
                    "auth",
                    "https",
                    "ca_file",
                    "cert_sha256",
                ],
            ),
            other => {
                problems.push(format!(
                    "target `{name}`: transport `{other}` is not available in this version (available: local, ssh, winrm)"
                ));
                return None;
            }
        };
        let given = [
            ("address", self.address.is_some()),
            ("port", self.port.is_some()),
            ("user", self.user.is_some()),
            ("key_file", self.key_file.is_some()),
            ("password_file", self.password_file.is_some()),
            ("credential", self.credential.is_some()),
            ("become", self.become_method.is_some()),
            ("auth", self.auth.is_some()),
            ("https", self.https.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("cert_sha256", self.cert_sha256.is_some()),
            ("host_key", self.host_key.is_some()),
        ];
        for (field, _) in given
            .iter()
            .filter(|(field, set)| *set && !applies.contains(field))
        {
            problems.push(format!(
                "target `{name}`: `{field}` does not apply to transport `{}`",
                self.transport
            ));
        }
        if let Some(platform) = platform
            && platform.is_windows() != (kind == Kind::WinRm)
        {
            problems.push(format!(
                "target `{name}`: platform `{platform}` is reached with transport `{}`; Windows targets use `winrm`, others `local` or `ssh`",
                self.transport
            ));
        }
        match kind {
            Kind::Local => Some(TransportConfig::Local),
            Kind::Ssh => self.ssh(problems).map(TransportConfig::Ssh),
            Kind::WinRm => self.winrm(problems).map(TransportConfig::WinRm),
        }
    }

    /// `address` and `port`, checked for both remote transports.
    fn address(&self, problems: &mut Vec<String>) -> Option<String> {
        let name = &self.name;
        let address = match &self.address {
            None => {
                problems.push(format!(
                    "target `{name}`: transport `{}` needs `address`",
                    self.transport
                ));
                None
            }
            Some(address) if !model::is_valid_host(address) => {
                problems.push(format!(
                    "target `{name}`: address `{}` is not an IP address or host name",
                    address.escape_debug()
                ));
                None
            }
            Some(address) => Some(address.clone()),
        };
        if self.port == Some(0) {
            problems.push(format!("target `{name}`: port 0 is not a valid port"));
        }
        address
    }

    fn ssh(&self, problems: &mut Vec<String>) -> Option<SshConfig> {
        let name = &self.name;
        let address = self.address(problems);
        let user = match &self.user {
            None => {
                problems.push(format!("target `{name}`: transport `ssh` needs `user`"));
                None
            }
            Some(user) if !model::is_valid_user(user) => {
                problems.push(format!(
                    "target `{name}`: user `{}` is not a valid login name",
                    user.escape_debug()
                ));
                None
            }
            Some(user) => Some(user.clone()),
        };
        let login = match (&self.key_file, &self.password_file, &self.credential) {
            (Some(key), None, None) => Some(SshLogin::KeyFile(key.clone())),
            (None, Some(path), None) => Some(SshLogin::PasswordFile(path.clone())),
            (None, None, Some(entry)) => Some(SshLogin::Credential(entry.clone())),
            _ => {
                problems.push(format!(
                    "target `{name}`: give exactly one of `key_file`, `password_file` and `credential`"
                ));
                None
            }
        };
        let become_root = match self.become_method.as_deref() {
            None => Some(false),
            Some("sudo") => Some(true),
            Some(method) => {
                problems.push(format!(
                    "target `{name}`: become = `{method}` is not supported (use \"sudo\")"
                ));
                None
            }
        };
        let host_key = match &self.host_key {
            None => Some(None),
            Some(fingerprint) if is_ssh_fingerprint(fingerprint) => Some(Some(fingerprint.clone())),
            Some(other) => {
                problems.push(format!(
                    "target `{name}`: host_key `{}` is not a SHA256 fingerprint; copy it from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server (e.g. SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s)",
                    other.escape_debug()
                ));
                None
            }
        };
        Some(SshConfig {
            address: address?,
            port: self.port.unwrap_or(22),
            user: user?,
            login: login?,
            become_root: become_root?,
            host_key: host_key?,
        })
    }

    fn winrm(&self, problems: &mut Vec<String>) -> Option<WinRmConfig> {
        let name = &self.name;
        let what = format!("target `{name}`");
        let address = self.address(problems);
        let user = match &self.user {
            None => {
                problems.push(format!("target `{name}`: transport `winrm` needs `user`"));
                None
            }
            Some(user) if !is_valid_windows_user(user) => {
                problems.push(format!(
                    "target `{name}`: user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
                    user.escape_debug()
                ));
                None
            }
            Some(user) => Some(user.clone()),
        };
        let password = password_source(&what, &self.password_file, &self.credential, problems);
        let https = self.https.unwrap_or(true);
        let auth = match self.auth.as_deref().unwrap_or("ntlm") {
            "ntlm" => Some(WinRmAuth::Ntlm),
            "basic" if https => Some(WinRmAuth::Basic),
            "basic" => {
                problems.push(format!(
                    "{what}: auth = \"basic\" sends the password readably over HTTP; use https = true, or auth = \"ntlm\" (encrypted messages)"
                ));
                None
            }
            "kerberos" => {
                problems.push(format!(
                    "{what}: auth = \"kerberos\" is available for the workstations found in the directory ([workstations] auth); for a configured target use \"ntlm\" over HTTPS"
                ));
                None
            }
            other => {
                problems.push(format!(
                    "{what}: auth = `{other}` is unknown (use \"ntlm\" or \"basic\")"
                ));
                None
            }
        };
        let trust_given = self.ca_file.is_some() || self.cert_sha256.is_some();
        if !https && trust_given {
            problems.push(format!(
                "{what}: `ca_file` and `cert_sha256` need https = true"
            ));
        }
        if self.ca_file.is_some() && self.cert_sha256.is_some() {
            problems.push(format!(
                "{what}: give at most one of `ca_file` and `cert_sha256`"
            ));
        }
        let pin = self.cert_sha256.as_deref().map(|pin| {
            let pin = parse_sha256(pin);
            if pin.is_none() {
                problems.push(format!(
                    "{what}: cert_sha256 must be 64 hex digits (colons allowed), the SHA-256 of the certificate"
                ));
            }
            pin
        });
        let trust = match (&self.ca_file, pin) {
            (Some(ca), None) => Some(WinRmTrust::CaFile(ca.clone())),
            (None, Some(pin)) => pin.map(WinRmTrust::PinSha256),
            (None, None) => Some(WinRmTrust::SystemRoots),
            (Some(_), Some(_)) => None,
        };
        let security = if https {
            WinRmSecurity::Https {
                auth: auth?,
                trust: trust?,
            }
        } else {
            WinRmSecurity::HttpNtlm
        };
        Some(WinRmConfig {
            address: address?,
            port: self.port,
            user: user?,
            password: password?,
            security,
            verify_name: None,
        })
    }
}

/// 64 hex digits, colons allowed between them.
fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// `SHA256:` and 43 characters of unpadded standard base64 (a SHA-256 digest).
fn is_ssh_fingerprint(text: &str) -> bool {
    text.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}
