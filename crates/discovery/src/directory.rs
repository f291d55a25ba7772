//! The LDAP side of discovery: locating the DC, TLS (CA verified), simple bind, and the paged
//! search of computer objects.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, StdStream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::inventory::{Inventory, RawComputer, build_inventory, computer_from_raw};
use crate::laps::{LAPS_ATTRIBUTES, LapsState};
use crate::{DirectoryConfig, TlsMode, dns, escape_filter_value};

/// Why discovery failed. No variant ever comes with a partial inventory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configuration cannot work as given.
    #[error("invalid directory configuration: {reason}; fix the discovery settings")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The CA bundle could not be used.
    #[error(
        "the CA bundle for the domain controller is unusable: {reason}; give a PEM file with the CA certificate that issued the DC's certificate"
    )]
    InvalidCa {
        /// What is wrong with it.
        reason: String,
    },
    /// The SRV lookup for a domain controller failed.
    #[error(
        "cannot locate a domain controller for {domain} (set the DC explicitly or check the resolver)"
    )]
    Locate {
        /// The domain whose DC was looked up.
        domain: String,
        /// The DNS failure.
        source: dns::DnsError,
    },
    /// No TCP connection to the domain controller.
    #[error(
        "the domain controller at {address} is unreachable: {reason}; check that it runs, the address and port, and any firewall in between"
    )]
    Unreachable {
        /// Address and port tried.
        address: String,
        /// The connect error or timeout.
        reason: String,
    },
    /// TLS failed: certificate not trusted, name mismatch, or handshake error.
    #[error(
        "TLS with the domain controller at {address} failed: {reason}; trust the CA that issued the DC's certificate (ca_pem) and connect by a name or address the certificate lists"
    )]
    Tls {
        /// Host and port connected to.
        address: String,
        /// The TLS error, e.g. an unknown issuer or a name mismatch.
        reason: String,
    },
    /// The DC rejected the bind user or password (LDAP result 49).
    #[error(
        "the domain controller at {address} rejected the credentials of {user}: {text}; check the bind user and the password file (AD 'data 52e' = wrong password, '775' = locked out, '533' = disabled)"
    )]
    InvalidCredentials {
        /// Host and port connected to.
        address: String,
        /// The bind user.
        user: String,
        /// The DC's diagnostic text, e.g. `... AcceptSecurityContext error, data 52e, v1db1`.
        text: String,
    },
    /// The bind failed for another reason.
    #[error(
        "binding to the domain controller at {address} failed: {reason}; check the bind user and the DC's logs"
    )]
    Bind {
        /// Host and port connected to.
        address: String,
        /// The LDAP error.
        reason: String,
    },
    /// The search failed before the last page; no inventory is returned.
    #[error(
        "searching computers on {address} failed after {n_pages} page(s) and {n_computers} computer(s): {reason}; the previous inventory stays in force, retry later or check the DC"
    )]
    SearchFailed {
        /// Host and port connected to.
        address: String,
        /// Pages received before the failure.
        n_pages: u32,
        /// Computers received before the failure.
        n_computers: usize,
        /// The LDAP error.
        reason: String,
    },
}

/// Binds to the directory and reads every computer object under the base DN, page by page.
///
/// `now` is the instant staleness is judged against. The inventory is complete or this is an
/// error: a search that fails after some pages is [`DiscoveryError::SearchFailed`].
pub async fn discover(
    cfg: &DirectoryConfig,
    now: OffsetDateTime,
) -> Result<Inventory, DiscoveryError> {
    let mut session = Session::open(cfg).await?;
    let res = session.fetch_computers(cfg, now).await;
    session.close().await;
    res
}

/// Names (`cn`) of the computers whose `attribute` equals `value` exactly, in name order.
///
/// The value goes through [`escape_filter_value`], so metacharacters in it match literally.
pub async fn search_computer_names(
    cfg: &DirectoryConfig,
    attribute: &str,
    value: &str,
) -> Result<Vec<String>, DiscoveryError> {
    if attribute.is_empty()
        || !attribute
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(DiscoveryError::Config {
            reason: format!("{attribute:?} is not an attribute name"),
        });
    }
    let filter = format!(
        "(&(objectCategory=computer)({attribute}={}))",
        escape_filter_value(value)
    );
    let mut session = Session::open(cfg).await?;
    let res = session.search_names(cfg, &filter).await;
    session.close().await;
    res
}

/// The LAPS state of each computer named by its distinguished name, in the order given: one base
/// search per computer on one connection. Only the computers about to be scanned are asked for,
/// so no other host's password is ever held.
pub async fn read_laps(
    cfg: &DirectoryConfig,
    dns: &[String],
) -> Result<Vec<LapsState>, DiscoveryError> {
    let mut session = Session::open(cfg).await?;
    let res = session.read_laps(cfg, dns).await;
    session.close().await;
    res
}

const COMPUTER_ATTRIBUTES: [&str; 11] = [
    "cn",
    "sAMAccountName",
    "dNSHostName",
    "operatingSystem",
    "operatingSystemVersion",
    "lastLogonTimestamp",
    "userAccountControl",
    "primaryGroupID",
    "whenCreated",
    "memberOf",
    "mS-DS-CreatorSID",
];

struct Session {
    ldap: Ldap,
    address: String,
}

impl Session {
    async fn open(cfg: &DirectoryConfig) -> Result<Session, DiscoveryError> {
        let default_port = match cfg.tls {
            TlsMode::Ldaps => 636,
            TlsMode::StartTls => 389,
        };
        let (host, socket) = locate(cfg, default_port).await?;
        let address = format!("{host}:{}", socket.port());
        let stream = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(socket))
            .await
            .map_err(|_| DiscoveryError::Unreachable {
                address: socket.to_string(),
                reason: format!("no TCP connection within {:?}", cfg.timeout),
            })?
            .map_err(|err| DiscoveryError::Unreachable {
                address: socket.to_string(),
                reason: err.to_string(),
            })?;
        let stream = stream
            .into_std()
            .map_err(|err| DiscoveryError::Unreachable {
                address: socket.to_string(),
                reason: err.to_string(),
            })?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(cfg.timeout)
            .set_starttls(cfg.tls == TlsMode::StartTls)
            .set_config(Arc::new(tls_config(cfg.ca_pem.as_deref())?))
            .set_std_stream(StdStream::Tcp(stream));
        let scheme = match cfg.tls {
            TlsMode::Ldaps => "ldaps",
            TlsMode::StartTls => "ldap",
        };
        let url_host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => host.clone(),
        };
        let url = format!("{scheme}://{url_host}:{}", socket.port());
        let connect = LdapConnAsync::with_settings(settings, &url);
        let (conn, mut ldap) = tokio::time::timeout(cfg.timeout, connect)
            .await
            .map_err(|_| DiscoveryError::Tls {
                address: address.clone(),
                reason: format!("no TLS session within {:?}", cfg.timeout),
            })?
            .map_err(|err| connect_error(&address, &err))?;
        tokio::spawn(async move {
            if let Err(err) = conn.drive().await {
                tracing::debug!(error = %err, "LDAP connection ended.");
            }
        });
        let bind = ldap
            .with_timeout(cfg.timeout)
            .simple_bind(&cfg.bind_user, cfg.bind_password.expose())
            .await
            .map_err(|err| DiscoveryError::Bind {
                address: address.clone(),
                reason: err.to_string(),
            })?;
        match bind.rc {
            0 => Ok(Session { ldap, address }),
            49 => Err(DiscoveryError::InvalidCredentials {
                address,
                user: cfg.bind_user.clone(),
                text: format!("invalidCredentials (49): {}", bind.text),
            }),
            rc => Err(DiscoveryError::Bind {
                address,
                reason: format!("LDAP result {rc}: {}", bind.text),
            }),
        }
    }

    async fn fetch_computers(
        &mut self,
        cfg: &DirectoryConfig,
        now: OffsetDateTime,
    ) -> Result<Inventory, DiscoveryError> {
        let mut computers = Vec::new();
        let n_pages = self
            .paged(
                cfg,
                "(objectCategory=computer)",
                &COMPUTER_ATTRIBUTES,
                |entry| {
                    let raw = raw_computer(entry);
                    computers.push(computer_from_raw(&raw, now, cfg.stale_after_days));
                },
            )
            .await
            .map_err(|(reason, n_pages)| DiscoveryError::SearchFailed {
                address: self.address.clone(),
                n_pages,
                n_computers: computers.len(),
                reason,
            })?;
        // The groups and the groups they are in, so a scope group reaches computers placed in
        // groups inside it.
        let mut parents = std::collections::BTreeMap::new();
        self.paged(cfg, "(objectCategory=group)", &["memberOf"], |entry| {
            let up = entry.attrs.get("memberOf").cloned().unwrap_or_default();
            if !up.is_empty() {
                parents.insert(entry.dn.to_lowercase(), up);
            }
        })
        .await
        .map_err(|(reason, n_pages)| DiscoveryError::SearchFailed {
            address: self.address.clone(),
            n_pages,
            n_computers: computers.len(),
            reason: format!("reading the groups: {reason}"),
        })?;
        crate::inventory::nest_groups(&mut computers, &parents);
        tracing::debug!(
            n_computers = computers.len(),
            n_nested_groups = parents.len(),
            n_pages,
            dc = %self.address,
            "Computer search finished."
        );
        Ok(build_inventory(computers, n_pages, self.address.clone()))
    }

    /// Runs a paged subtree search under the base DN, handing each entry to `each`; returns the
    /// number of pages, or why it failed and after how many pages.
    async fn paged(
        &mut self,
        cfg: &DirectoryConfig,
        filter: &str,
        attributes: &[&str],
        mut each: impl FnMut(SearchEntry),
    ) -> Result<u32, (String, u32)> {
        let base_dn = cfg.effective_base_dn();
        let page_size = i32::try_from(cfg.page_size.clamp(1, 1000)).unwrap_or(1000);
        let mut n_pages: u32 = 0;
        let mut cookie = Vec::new();
        loop {
            let control = PagedResults {
                size: page_size,
                cookie: std::mem::take(&mut cookie),
            };
            let search = self
                .ldap
                .with_controls(control)
                .with_timeout(cfg.timeout)
                .search(&base_dn, Scope::Subtree, filter, attributes.to_vec())
                .await
                .map_err(|err| (err.to_string(), n_pages))?;
            let ldap3::SearchResult(entries, result) = search;
            if result.rc != 0 {
                return Err((
                    format!("LDAP result {}: {}", result.rc, result.text),
                    n_pages,
                ));
            }
            n_pages += 1;
            for entry in entries {
                each(SearchEntry::construct(entry));
            }
            cookie = result
                .ctrls
                .iter()
                .find_map(|Control(kind, raw)| {
                    (matches!(kind, Some(ControlType::PagedResults)) && raw.val.is_some())
                        .then(|| raw.parse::<PagedResults>().cookie)
                })
                .unwrap_or_default();
            if cookie.is_empty() {
                return Ok(n_pages);
            }
        }
    }

    async fn search_names(
        &mut self,
        cfg: &DirectoryConfig,
        filter: &str,
    ) -> Result<Vec<String>, DiscoveryError> {
        let base_dn = cfg.effective_base_dn();
        let failed = |reason: String| DiscoveryError::SearchFailed {
            address: self.address.clone(),
            n_pages: 0,
            n_computers: 0,
            reason,
        };
        let (entries, _) = self
            .ldap
            .with_timeout(cfg.timeout)
            .search(&base_dn, Scope::Subtree, filter, vec!["cn"])
            .await
            .and_then(|search| search.success())
            .map_err(|err| failed(err.to_string()))?;
        let mut names: Vec<String> = entries
            .into_iter()
            .filter_map(|entry| raw_computer(SearchEntry::construct(entry)).cn)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn read_laps(
        &mut self,
        cfg: &DirectoryConfig,
        dns: &[String],
    ) -> Result<Vec<LapsState>, DiscoveryError> {
        let mut states = Vec::with_capacity(dns.len());
        for (n, dn) in dns.iter().enumerate() {
            let failed = |reason: String| DiscoveryError::SearchFailed {
                address: self.address.clone(),
                n_pages: 0,
                n_computers: n,
                reason: format!("reading the LAPS attributes of {dn}: {reason}"),
            };
            let search = self
                .ldap
                .with_timeout(cfg.timeout)
                .search(
                    dn,
                    Scope::Base,
                    "(objectClass=computer)",
                    LAPS_ATTRIBUTES.to_vec(),
                )
                .await
                .map_err(|err| failed(err.to_string()))?;
            let ldap3::SearchResult(entries, result) = search;
            // noSuchObject: the computer left the directory after the last discovery.
            if result.rc == 32 {
                states.push(LapsState::Invalid(
                    "the computer object is no longer in the directory; run discovery again"
                        .to_owned(),
                ));
                continue;
            }
            if result.rc != 0 {
                return Err(failed(format!(
                    "LDAP result {}: {}",
                    result.rc, result.text
                )));
            }
            let state = match entries.into_iter().next() {
                Some(entry) => {
                    let mut entry = SearchEntry::construct(entry);
                    crate::laps::interpret(crate::laps::raw_from_entry(&mut entry))
                }
                None => LapsState::Absent,
            };
            states.push(state);
        }
        Ok(states)
    }

    async fn close(mut self) {
        if let Err(err) = self.ldap.unbind().await {
            tracing::debug!(error = %err, "LDAP unbind failed.");
        }
    }
}

async fn locate(
    cfg: &DirectoryConfig,
    default_port: u16,
) -> Result<(String, SocketAddr), DiscoveryError> {
    if let Some(dc) = &cfg.dc {
        if let Ok(ip) = dc.parse::<IpAddr>() {
            return Ok((dc.clone(), SocketAddr::new(ip, default_port)));
        }
        let mut addresses = tokio::net::lookup_host((dc.as_str(), default_port))
            .await
            .map_err(|err| DiscoveryError::Unreachable {
                address: format!("{dc}:{default_port}"),
                reason: format!("cannot resolve the name: {err}"),
            })?;
        let socket = addresses
            .next()
            .ok_or_else(|| DiscoveryError::Unreachable {
                address: format!("{dc}:{default_port}"),
                reason: "the name has no address".to_owned(),
            })?;
        return Ok((dc.clone(), socket));
    }
    let Some(resolver) = cfg.resolver else {
        return Err(DiscoveryError::Config {
            reason: "neither a domain controller nor a DNS resolver for the SRV lookup is set"
                .to_owned(),
        });
    };
    let name = format!("_ldap._tcp.dc._msdcs.{}", cfg.domain.trim_end_matches('.'));
    let location = dns::locate_service(resolver, &name, cfg.timeout)
        .await
        .map_err(|source| DiscoveryError::Locate {
            domain: cfg.domain.clone(),
            source,
        })?;
    // The SRV record names the LDAP port; LDAPS keeps its own port.
    let port = match cfg.tls {
        TlsMode::Ldaps => default_port,
        TlsMode::StartTls => location.port,
    };
    Ok((location.host, SocketAddr::new(location.address, port)))
}

fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidCa { reason };
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|err| invalid(format!("not PEM: {err}")))?;
                roots
                    .add(cert)
                    .map_err(|err| invalid(format!("bad certificate: {err}")))?;
            }
            if roots.is_empty() {
                return Err(invalid("no certificate in the PEM data".to_owned()));
            }
        }
        None => {
            return Err(DiscoveryError::Config {
                reason: "no CA bundle given (ca_pem); the DC's certificate cannot be verified without one".to_owned(),
            });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(format!("TLS setup: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn connect_error(address: &str, err: &LdapError) -> DiscoveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return DiscoveryError::Tls {
                address: address.to_owned(),
                reason: tls.to_string(),
            };
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return DiscoveryError::Tls {
                address: address.to_owned(),
                reason: tls.to_string(),
            };
        }
        source = current.source();
    }
    match err {
        LdapError::LdapResult { result } => DiscoveryError::Tls {
            address: address.to_owned(),
            reason: format!(
                "StartTLS refused: LDAP result {}: {}",
                result.rc, result.text
            ),
        },
        other => DiscoveryError::Unreachable {
            address: address.to_owned(),
            reason: format!("connection failed during LDAP/TLS set-up: {other}"),
        },
    }
}

fn raw_computer(entry: SearchEntry) -> RawComputer {
    let SearchEntry {
        dn,
        attrs,
        bin_attrs,
    } = entry;
    let value = |name: &str| -> Option<String> {
        attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first().cloned())
            .or_else(|| {
                bin_attrs
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .and_then(|(_, values)| values.first())
                    .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            })
    };
    let values = |name: &str| -> Vec<String> {
        attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
    };
    // A SID whose bytes happen to be valid UTF-8 arrives as text; its bytes are the SID all the same.
    let bytes = |name: &str| -> Option<Vec<u8>> {
        attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(|text| text.as_bytes().to_vec())
            .or_else(|| {
                bin_attrs
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .and_then(|(_, values)| values.first().cloned())
            })
    };
    RawComputer {
        member_of: values("memberOf"),
        creator_sid: bytes("mS-DS-CreatorSID"),
        cn: value("cn"),
        sam_account_name: value("sAMAccountName"),
        dns_host_name: value("dNSHostName"),
        operating_system: value("operatingSystem"),
        operating_system_version: value("operatingSystemVersion"),
        last_logon_timestamp: value("lastLogonTimestamp"),
        user_account_control: value("userAccountControl"),
        primary_group_id: value("primaryGroupID"),
        when_created: value("whenCreated"),
        dn,
    }
}
